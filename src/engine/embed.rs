//! A small sentence embedder: a BERT encoder (all-MiniLM-L6-v2 by default) read from a folder
//! holding `config.json`, `model.safetensors` and `tokenizer.json`. A text's embedding is the
//! mean of its token states, L2-normalised, so the dot product of two is their cosine.
use super::{EngineError, Result};
use candle_core::{DType, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The folder looked for next to the GGUF file when no embedder is named.
pub const DEFAULT_EMBEDDER: &str = "all-MiniLM-L6-v2";

/// Longest text embedded, in tokens; longer ones are cut (the model was trained on shorter).
const MAX_TOKENS: usize = 256;

/// Texts per encoder forward.
const BATCH: usize = 32;

pub struct SentenceEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    /// Folder name and sha256 prefix of the weights.
    pub id: String,
}

impl SentenceEmbedder {
    pub fn load(dir: &Path, device: &candle_core::Device) -> Result<Self> {
        let file = |name: &str| dir.join(name);
        for name in ["config.json", "model.safetensors", "tokenizer.json"] {
            if !file(name).exists() {
                return Err(EngineError::NotFound(file(name)));
            }
        }
        let corrupt = |path: &Path, reason: String| EngineError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let config_path = file("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|source| EngineError::Io {
                path: config_path.clone(),
                source,
            })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| corrupt(&config_path, e.to_string()))?;
        let weights = file("model.safetensors");
        // SAFETY: the file is mapped read-only and not modified while the model lives.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, device) }
            .map_err(|e| corrupt(&weights, e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| corrupt(&weights, e.to_string()))?;
        let mut tokenizer = Tokenizer::from_file(file("tokenizer.json"))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(Self {
            model,
            tokenizer,
            id: format!("{name}@{}", super::file_id::sha256_prefix(&weights)?),
        })
    }

    /// One unit-length vector per text, and whether the text was cut to fit.
    pub fn embed(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Vec<bool>)> {
        let mut vecs = Vec::with_capacity(texts.len());
        let mut cut = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            let (v, c) = self.embed_batch(chunk)?;
            vecs.extend(v);
            cut.extend(c);
        }
        Ok((vecs, cut))
    }

    /// The contextual state of every word of each text (the words past the encoder's window
    /// are left out), and whether the text was cut to fit.
    pub fn word_states(&self, texts: &[&str]) -> Result<Vec<(Vec<WordState>, bool)>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.word_states_batch(chunk)?);
        }
        Ok(out)
    }

    fn word_states_batch(&self, texts: &[&str]) -> Result<Vec<(Vec<WordState>, bool)>> {
        // Character offsets, so the words' offsets are in Unicode scalars as everywhere.
        let enc = self
            .tokenizer
            .encode_batch_char_offsets(texts.to_vec(), true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let states = self.forward(&enc)?;
        let dim = states.dim(2)?;
        let states = states.flatten_all()?.to_vec1::<f32>()?;
        let width = enc.first().map_or(0, |e| e.get_ids().len());
        Ok(enc
            .iter()
            .enumerate()
            .map(|(row, e)| {
                let mut words: Vec<WordState> = Vec::new();
                let mut last_word = None;
                for (t, (word, &(start, end))) in
                    e.get_word_ids().iter().zip(e.get_offsets()).enumerate()
                {
                    // Special tokens and padding have no word.
                    let Some(word) = *word else { continue };
                    let at = (row * width + t) * dim;
                    let piece = &states[at..at + dim];
                    if last_word == Some(word) {
                        if let Some(w) = words.last_mut() {
                            w.end = end;
                            w.vector.iter_mut().zip(piece).for_each(|(a, b)| *a += b);
                        }
                        continue;
                    }
                    last_word = Some(word);
                    words.push(WordState {
                        start,
                        end,
                        vector: piece.to_vec(),
                    });
                }
                for w in &mut words {
                    let norm = w
                        .vector
                        .iter()
                        .map(|v| v * v)
                        .sum::<f32>()
                        .sqrt()
                        .max(1e-12);
                    w.vector.iter_mut().for_each(|v| *v /= norm);
                }
                (words, !e.get_overflowing().is_empty())
            })
            .collect())
    }

    /// The last layer's states of a padded batch: (texts, tokens, dim).
    fn forward(&self, enc: &[tokenizers::Encoding]) -> Result<Tensor> {
        let device = &self.model.device;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let v: Vec<Tensor> = enc
                .iter()
                .map(|e| Tensor::new(f(e), device))
                .collect::<candle_core::Result<_>>()?;
            Ok(Tensor::stack(&v, 0)?)
        };
        let ids = rows(&|e| e.get_ids())?;
        let types = rows(&|e| e.get_type_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        Ok(self.model.forward(&ids, &types, Some(&mask))?)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Vec<bool>)> {
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let states = self.forward(&enc)?;
        let mask: Vec<Tensor> = enc
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &self.model.device))
            .collect::<candle_core::Result<_>>()?;
        let mask = Tensor::stack(&mask, 0)?
            .to_dtype(DType::F32)?
            .unsqueeze(2)?;
        let sum = states.broadcast_mul(&mask)?.sum(1)?;
        let mean = sum.broadcast_div(&mask.sum(1)?.clamp(1e-9, f64::MAX)?)?;
        let norm = mean
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let cut = enc
            .iter()
            .map(|e| !e.get_overflowing().is_empty())
            .collect();
        Ok((mean.broadcast_div(&norm)?.to_vec2::<f32>()?, cut))
    }
}

/// A word of a text as the encoder read it (its pre-tokenizer's words: runs of letters and
/// digits, and each punctuation mark), with the mean of its WordPieces' last-layer states.
#[derive(Debug, Clone, PartialEq)]
pub struct WordState {
    /// Offsets in Unicode scalar values, end exclusive.
    pub start: usize,
    pub end: usize,
    /// Unit length.
    pub vector: Vec<f32>,
}

/// The cosine of two unit-length vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}
