//! Zero-shot classification by label scoring: the prompt's shared part runs once and its KV
//! cache serves every item; each item's text, the rest of the prompt and the whole label trie
//! go through one tree-shaped forward, and several items share that forward. The label
//! log-probabilities are calibrated against content-free inputs and normalised over the set,
//! so the answer is always a valid label with a distribution over all labels.
//!
//! Large label sets go in two stages when the model has a sentence embedder and the prompt's
//! settings ask for a shortlist: the text and every label phrase are embedded (labels once,
//! when the classifier is made), the labels closest to the text by cosine are scored by the
//! language model as above, and the final distribution mixes the language model's calibrated
//! distribution over that shortlist with a softmax over all labels' cosines. Scoring ten
//! labels instead of a trie of 77–151 made intent labeling 2–4 times faster, and the embedder
//! carries most of the accuracy on large sets (BENCHMARKS.md, "Zero-shot quality").
use super::labels::{LabelError, LabelSet, LabelTrie};
use super::prompt::{item_tokens, ItemTokens, PromptError, PromptSettings, PromptTemplate};
use crate::engine::{cosine, log_softmax_rows, EngineError, KvCache, LoadedModel};

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Labels(#[from] LabelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The inference server behind `--model openai:…` did not answer as it should.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// A task this model cannot do (the message says which can).
    #[error("{0}")]
    Unsupported(String),
    #[error("the prompt leaves no room for text in a context of {0} tokens")]
    NoRoom(usize),
    /// The model thread caught a panic while answering (a bug, not the caller's input).
    #[error("the model failed on this request: {0}")]
    Panicked(String),
}

impl From<candle_core::Error> for TaskError {
    fn from(e: candle_core::Error) -> Self {
        TaskError::Engine(e.into())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassPrediction {
    pub label: String,
    pub confidence: f64,
    /// Every label with its probability, in label-set order.
    pub scores: Vec<(String, f64)>,
    pub truncated: bool,
    /// The language model's view of the text (the hidden state where its answer begins, less the content-free inputs' mean, unit length), for the learner; None
    /// where the prediction did not come from the language model.
    pub features: Option<Vec<f32>>,
}

impl ClassPrediction {
    /// The prediction of a distribution `p` over `labels` that no model read the text for (a
    /// learner's mix, the rules' combination): its argmax, with every label's probability.
    pub fn from_distribution(labels: &[String], p: &[f64]) -> ClassPrediction {
        let best = argmax(p);
        ClassPrediction {
            label: labels[best].clone(),
            confidence: p[best],
            scores: labels.iter().cloned().zip(p.iter().copied()).collect(),
            truncated: false,
            features: None,
        }
    }
}

/// Inputs that carry no content: the label distribution the model gives them is its bias,
/// which calibration divides out. Several are averaged; one alone was noisy (the shared ENGINE-NOTES.md, outside this repository).
pub(crate) const CONTENT_FREE: [&str; 3] = ["", "N/A", "[MASK]"];

/// Tokens fed per forward when items are packed together. On the CPU attention follows the
/// tree (packed items never see each other), so a bigger pack only makes the matmuls more
/// efficient: SST-2 labels/s went 15 → 19 from 320 to 2048 (a CLI chunk of 32 items fits).
pub(crate) const PACK_TOKENS: usize = 2048;

/// Rows of logits asked for per forward: each is a whole vocabulary (49k floats for SmolLM2),
/// held twice while it becomes log-probabilities, so a pack of large label tries is cut by
/// this before it reaches PACK_TOKENS.
pub(crate) const PACK_ROWS: usize = 128;

/// Longest text scored, in tokens; longer texts are cut and flagged. Attention memory grows
/// with the square of the length, and labels rarely need more.
pub const MAX_TEXT_TOKENS: usize = 2048;

#[derive(Debug, Clone)]
pub struct ClassifierOptions {
    /// Divide out the content-free label distribution when the prompt's settings ask for
    /// it (off only for studies).
    pub calibrate: bool,
    /// Reuse the shared prompt prefix's KV cache (off only to measure what it saves).
    pub prefix_cache: bool,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            calibrate: true,
            prefix_cache: true,
        }
    }
}

pub struct Classifier<'m> {
    model: &'m LoadedModel,
    pub labels: LabelSet,
    pub prompt_version: String,
    opts: ClassifierOptions,
    temperature: f64,
    prefix_ids: Vec<u32>,
    prefix: KvCache,
    after_ids: Vec<u32>,
    lead: String,
    trie: LabelTrie,
    /// Each label's tokens as scored (with the leading space when the prompt needs one).
    sequences: Vec<Vec<u32>>,
    /// ln of the mean content-free probability of each label (zeros when not calibrating).
    bias: Vec<f64>,
    /// The mean hidden state of the content-free inputs, subtracted from every item's.
    center: Vec<f32>,
    max_text: usize,
    /// The embedding of every label phrase, when this label set is shortlisted.
    label_vecs: Option<Vec<Vec<f32>>>,
    settings: PromptSettings,
}

impl<'m> Classifier<'m> {
    pub fn new(
        model: &'m LoadedModel,
        template: &PromptTemplate,
        labels: LabelSet,
        opts: ClassifierOptions,
    ) -> Result<Self, TaskError> {
        let (rendered, lead) = render_for_labels(template, &model.chat, &labels)?;
        let tok = &model.tokenizer;
        let prefix_ids = tok.encode_prompt(&rendered.before)?;
        let after_ids = tok.encode_prompt(&rendered.after)?;
        let sequences = labels
            .phrases
            .iter()
            .map(|p| tok.encode_text(&format!("{lead}{p}")))
            .collect::<Result<Vec<_>, _>>()?;
        let trie = LabelTrie::build(&labels, &sequences)?;
        let depth = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let overhead = prefix_ids.len() + after_ids.len() + depth + 1;
        let max_text = text_room(model.transformer.config().context_length, overhead)?;
        let prefix = match opts.prefix_cache {
            true => model.transformer.prefill(&prefix_ids)?,
            false => KvCache::empty(),
        };
        let settings = template.settings.clone();
        let label_vecs = shortlist_vectors(model.embedder.as_ref(), &settings, &labels)?;
        let mut this = Self {
            model,
            prompt_version: template.version.clone(),
            label_vecs,
            settings,
            labels,
            temperature: template.settings.temperature,
            opts: ClassifierOptions {
                calibrate: opts.calibrate && template.settings.calibrate,
                ..opts
            },
            prefix_ids,
            prefix,
            after_ids,
            lead: rendered.lead.clone(),
            trie,
            sequences,
            bias: Vec::new(),
            center: Vec::new(),
            max_text,
        };
        let items = CONTENT_FREE
            .iter()
            .map(|t| this.tokens(t))
            .collect::<Result<Vec<_>, _>>()?;
        let full = vec![&this.trie; items.len()];
        let (lps, hidden) = this.label_logprobs(&items, &full)?;
        this.center = mean_of(&hidden);
        this.bias = vec![0.0; this.labels.len()];
        if this.opts.calibrate {
            let mut mean = vec![0.0; this.labels.len()];
            for lp in lps {
                for (m, p) in mean.iter_mut().zip(softmax(&lp)) {
                    *m += p / CONTENT_FREE.len() as f64;
                }
            }
            this.bias = mean.iter().map(|p| p.max(1e-12).ln()).collect();
        }
        Ok(this)
    }

    pub fn model_id(&self) -> &str {
        &self.model.id
    }

    fn tokens(&self, text: &str) -> Result<ItemTokens, EngineError> {
        item_tokens(&self.model.tokenizer, &self.lead, text, self.max_text)
    }

    /// Whether large label sets are shortlisted by the sentence embedder.
    pub fn shortlists(&self) -> bool {
        self.label_vecs.is_some()
    }

    pub fn classify(&self, texts: &[&str]) -> Result<Vec<ClassPrediction>, TaskError> {
        let items = texts
            .iter()
            .map(|t| self.tokens(t))
            .collect::<Result<Vec<_>, _>>()?;
        let calibrated = |lp: &[f64], which: &mut dyn Iterator<Item = usize>| -> Vec<f64> {
            lp.iter()
                .zip(which)
                .map(|(l, i)| (l - self.bias[i]) / self.temperature)
                .collect()
        };
        let (probs, cut, hidden): (Vec<Vec<f64>>, Vec<bool>, Vec<Vec<f32>>) =
            match (&self.label_vecs, &self.model.embedder) {
                (Some(label_vecs), Some(embedder)) => {
                    let (vecs, cut) = embedder.embed(texts)?;
                    let cosines: Vec<Vec<f64>> = vecs
                        .iter()
                        .map(|v| label_vecs.iter().map(|l| cosine(v, l)).collect())
                        .collect();
                    let shortlists: Vec<Vec<usize>> = cosines
                        .iter()
                        .map(|c| top_k(c, self.settings.shortlist))
                        .collect();
                    let tries = shortlists
                        .iter()
                        .map(|s| LabelTrie::for_subset(&self.labels, &self.sequences, s))
                        .collect::<Result<Vec<_>, _>>()?;
                    let (lps, hidden) =
                        self.label_logprobs(&items, &tries.iter().collect::<Vec<_>>())?;
                    let probs = lps
                        .iter()
                        .zip(&shortlists)
                        .zip(&cosines)
                        .map(|((lp, short), cos)| {
                            let z = calibrated(lp, &mut short.iter().copied());
                            combine(&softmax(&z), short, cos, &self.settings)
                        })
                        .collect();
                    (probs, cut, hidden)
                }
                _ => {
                    let full = vec![&self.trie; items.len()];
                    let (lps, hidden) = self.label_logprobs(&items, &full)?;
                    let probs = lps
                        .iter()
                        .map(|lp| softmax(&calibrated(lp, &mut (0..lp.len()))))
                        .collect();
                    (probs, vec![false; items.len()], hidden)
                }
            };
        Ok(items
            .iter()
            .zip(probs)
            .zip(cut)
            .zip(hidden)
            .map(|(((item, probs), cut), hidden)| {
                let best = argmax(&probs);
                ClassPrediction {
                    label: self.labels.names[best].clone(),
                    confidence: probs[best],
                    scores: self.labels.names.iter().cloned().zip(probs).collect(),
                    truncated: item.truncated || cut,
                    features: Some(self.centered(hidden)),
                }
            })
            .collect())
    }

    /// The language model's view of a text for a learner (`ClassPrediction::features`): its
    /// final hidden state where the answer begins, less the content-free inputs' mean (what
    /// every prompt shares), at unit length.
    fn centered(&self, hidden: Vec<f32>) -> Vec<f32> {
        let c: Vec<f32> = hidden
            .iter()
            .zip(&self.center)
            .map(|(h, m)| h - m)
            .collect();
        let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
        match norm > 0.0 {
            true => c.iter().map(|x| x / norm).collect(),
            false => c,
        }
    }

    /// Uncalibrated log-probability of every label of `tries[i]` for item `i`, and the hidden
    /// state where its answer begins, packing items into forwards of about PACK_TOKENS tokens.
    fn label_logprobs(
        &self,
        items: &[ItemTokens],
        tries: &[&LabelTrie],
    ) -> Result<Scored, TaskError> {
        let inner: Vec<Vec<usize>> = tries.iter().map(|t| t.inner_nodes()).collect();
        // Tokens fed, and rows of logits asked for (the prompt end and each inner node).
        let cost = |i: usize| {
            (
                self.chain_len(&items[i]) + inner[i].len(),
                1 + inner[i].len(),
            )
        };
        let (mut out, mut hidden) = (Vec::with_capacity(items.len()), Vec::new());
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let (mut tokens, mut rows) = (0, 0);
            while end < items.len() {
                let (t, r) = cost(end);
                if end > start && (tokens + t > PACK_TOKENS || rows + r > PACK_ROWS) {
                    break;
                }
                (tokens, rows) = (tokens + t, rows + r);
                end += 1;
            }
            let (lps, h) =
                self.forward_pack(&items[start..end], &tries[start..end], &inner[start..end])?;
            out.extend(lps);
            hidden.extend(h);
            start = end;
        }
        Ok((out, hidden))
    }

    fn chain_len(&self, item: &ItemTokens) -> usize {
        let prefix = if self.opts.prefix_cache {
            0
        } else {
            self.prefix_ids.len()
        };
        prefix + item.text.len() + self.after_ids.len()
    }

    fn forward_pack(
        &self,
        items: &[ItemTokens],
        tries: &[&LabelTrie],
        inner: &[Vec<usize>],
    ) -> Result<Scored, TaskError> {
        let mut tokens = Vec::new();
        let mut parents = Vec::new();
        let mut want = Vec::new();
        // Per item: index in `want` of the prompt end, and of each inner trie node.
        let mut layout = Vec::with_capacity(items.len());
        for ((item, trie), inner) in items.iter().zip(tries).zip(inner) {
            let base = tokens.len();
            if !self.opts.prefix_cache {
                tokens.extend_from_slice(&self.prefix_ids);
            }
            tokens.extend_from_slice(&item.text);
            tokens.extend_from_slice(&self.after_ids);
            let end = tokens.len() - 1;
            parents.extend((base..=end).map(|i| (i > base).then(|| i - 1)));
            let root_row = want.len();
            want.push(end);
            let mut node_pos = vec![usize::MAX; trie.nodes.len()];
            let mut node_row = vec![None; trie.nodes.len()];
            for &n in inner {
                let node = &trie.nodes[n];
                node_pos[n] = tokens.len();
                parents.push(Some(node.parent.map_or(end, |p| node_pos[p])));
                tokens.push(node.token);
                node_row[n] = Some(want.len());
                want.push(tokens.len() - 1);
            }
            layout.push((root_row, node_row));
        }
        let (logits, hidden) =
            self.model
                .transformer
                .forward_tree_hidden(&self.prefix, &tokens, &parents, &want)?;
        let rows = log_softmax_rows(&logits)?;
        let roots: Vec<u32> = layout.iter().map(|(r, _)| *r as u32).collect();
        let hidden = hidden
            .index_select(
                &candle_core::Tensor::new(roots.as_slice(), hidden.device())?,
                0,
            )?
            .to_vec2::<f32>()?;
        let lps = layout
            .iter()
            .zip(tries)
            .map(|((root_row, node_row), trie)| {
                let at = |n: usize| node_row[n];
                trie.score(&rows[*root_row], &at, &rows)
            })
            .collect();
        Ok((lps, hidden))
    }
}

/// The final distribution of a shortlisted item: the language model's probabilities `lm`
/// over the labels `shortlist`, mixed with the softmax of every label's cosine to the text:
/// `w · softmax(cos / τ) + (1 − w) · lm`, w and τ from the prompt's settings. Every label
/// keeps some probability, and the whole sums to one.
pub fn combine(lm: &[f64], shortlist: &[usize], cosines: &[f64], s: &PromptSettings) -> Vec<f64> {
    let scaled: Vec<f64> = cosines
        .iter()
        .map(|c| c / s.embedding_temperature)
        .collect();
    let mut p: Vec<f64> = softmax(&scaled)
        .into_iter()
        .map(|e| e * s.embedding_weight)
        .collect();
    for (&i, q) in shortlist.iter().zip(lm) {
        p[i] += (1.0 - s.embedding_weight) * q;
    }
    p
}

/// A classification prompt rendered with `chat` for `labels` (a `{{ mention }}` slot is
/// refused), and what goes before each label phrase: the answer follows the prompt, so after
/// a word ("Sentiment:") it starts with a space.
pub(crate) fn render_for_labels(
    template: &PromptTemplate,
    chat: &crate::engine::ChatTemplate,
    labels: &LabelSet,
) -> Result<(super::prompt::RenderedPrompt, &'static str), TaskError> {
    let rendered = template.render(chat, &labels.phrases, &[])?;
    if rendered.mention.is_some() {
        return Err(PromptError::Invalid {
            name: template.name.clone(),
            message: "{{ mention }} belongs in entity prompts only".into(),
        }
        .into());
    }
    let lead = match rendered.after.chars().last() {
        Some(c) if !c.is_whitespace() => " ",
        _ => "",
    };
    Ok((rendered, lead))
}

/// Tokens left for an item's text in a context of `context` after `overhead` tokens of
/// prompt and labels, at most MAX_TEXT_TOKENS.
pub(crate) fn text_room(context: usize, overhead: usize) -> Result<usize, TaskError> {
    Ok(context
        .checked_sub(overhead)
        .filter(|&n| n > 0)
        .ok_or(TaskError::NoRoom(context))?
        .min(MAX_TEXT_TOKENS))
}

/// Every label phrase's embedding, when the prompt shortlists and the set is larger than the
/// shortlist (and an embedder is loaded); None otherwise.
pub(crate) fn shortlist_vectors(
    embedder: Option<&crate::engine::SentenceEmbedder>,
    settings: &PromptSettings,
    labels: &LabelSet,
) -> Result<Option<Vec<Vec<f32>>>, EngineError> {
    match embedder {
        Some(e) if settings.shortlist > 0 && labels.len() > settings.shortlist => {
            let phrases: Vec<&str> = labels.phrases.iter().map(String::as_str).collect();
            Ok(Some(e.embed(&phrases)?.0))
        }
        _ => Ok(None),
    }
}

/// Per item: the uncalibrated log-probability of each label scored, and the hidden state
/// where the answer begins.
type Scored = (Vec<Vec<f64>>, Vec<Vec<f32>>);

/// The mean of equal-length vectors (empty for none).
fn mean_of(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut mean = vec![0.0; rows.first().map_or(0, Vec::len)];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v / rows.len() as f32;
        }
    }
    mean
}

/// Indices of the `k` largest values, largest first.
pub(crate) fn top_k(v: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
    idx.truncate(k);
    idx
}

pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

pub fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_takes_the_largest_first() {
        assert_eq!(top_k(&[0.1, 0.7, 0.3, 0.5], 2), vec![1, 3]);
        assert_eq!(top_k(&[0.2], 5), vec![0]);
    }

    #[test]
    fn combine_mixes_the_shortlist_with_the_embedding_softmax() {
        let s = PromptSettings {
            embedding_weight: 0.25,
            embedding_temperature: 0.5,
            ..PromptSettings::default()
        };
        let cosines = [0.9, 0.1, 0.5, 0.3];
        // The language model prefers label 2 of the shortlist [0, 2].
        let p = combine(&softmax(&[0.0, 2.0f64.ln()]), &[0, 2], &cosines, &s);
        let emb = softmax(&cosines.map(|c| c / 0.5));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] - (0.75 / 3.0 + 0.25 * emb[0])).abs() < 1e-12);
        assert!((p[2] - (0.75 * 2.0 / 3.0 + 0.25 * emb[2])).abs() < 1e-12);
        // Labels outside the shortlist keep only their embedding share, but keep it.
        assert!((p[1] - 0.25 * emb[1]).abs() < 1e-12 && p[1] > 0.0);
        assert_eq!(argmax(&p), 2);
    }
}
