//! What the learner reads of an item: its sentence embedding, then the language model's view
//! of the text (its hidden state where the answer begins, `ClassPrediction::features`). The two
//! carry different evidence: on the shared dev sets the pair beat the embedding alone on all
//! three (BENCHMARKS.md, "Learning from answers").

/// The learner's input of `dim` floats: `embedding`, then `lm` when it fills the rest exactly;
/// zeros in its place when the item has none (predicted before features were kept, or by
/// another model), so such an item is read by its embedding alone.
pub fn join(dim: usize, embedding: &[f32], lm: Option<&[f32]>) -> Vec<f32> {
    let mut x = Vec::with_capacity(dim);
    x.extend_from_slice(&embedding[..embedding.len().min(dim)]);
    match lm {
        Some(lm) if x.len() + lm.len() == dim => x.extend_from_slice(lm),
        _ => x.resize(dim, 0.0),
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_the_embedding_when_they_fit() {
        assert_eq!(
            join(4, &[1.0, 2.0], Some(&[3.0, 4.0])),
            vec![1.0, 2.0, 3.0, 4.0]
        );
    }

    #[test]
    fn missing_or_misfit_features_read_as_zeros() {
        assert_eq!(join(4, &[1.0, 2.0], None), vec![1.0, 2.0, 0.0, 0.0]);
        assert_eq!(join(4, &[1.0, 2.0], Some(&[3.0])), vec![1.0, 2.0, 0.0, 0.0]);
    }

    #[test]
    fn a_learner_of_embeddings_alone_reads_no_features() {
        assert_eq!(join(2, &[1.0, 2.0], Some(&[3.0, 4.0])), vec![1.0, 2.0]);
    }
}
