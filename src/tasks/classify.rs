//! Zero-shot classification by label scoring: the prompt's shared part runs once and its KV
//! cache serves every item; each item's text, the rest of the prompt and the whole label trie
//! go through one tree-shaped forward, and several items share that forward. The label
//! log-probabilities are calibrated against content-free inputs and normalised over the set,
//! so the answer is always a valid label with a distribution over all labels.
use super::labels::{LabelError, LabelSet, LabelTrie};
use super::prompt::{item_tokens, ItemTokens, PromptError, PromptTemplate};
use crate::engine::{log_softmax_rows, EngineError, Job, KvCache, LoadedModel};

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Labels(#[from] LabelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the prompt leaves no room for text in a context of {0} tokens")]
    NoRoom(usize),
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
}

/// Inputs that carry no content: the label distribution the model gives them is its bias,
/// which calibration divides out. Several are averaged; one alone was noisy (ENGINE-NOTES).
const CONTENT_FREE: [&str; 3] = ["", "N/A", "[MASK]"];

/// Tokens fed per forward when items are packed together: large enough for efficient
/// matmuls, small enough that the masked attention across packed items stays cheap.
const PACK_TOKENS: usize = 320;

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
    inner: Vec<usize>,
    /// ln of the mean content-free probability of each label (zeros when not calibrating).
    bias: Vec<f64>,
    max_text: usize,
}

impl<'m> Classifier<'m> {
    pub fn new(
        model: &'m LoadedModel,
        template: &PromptTemplate,
        labels: LabelSet,
        opts: ClassifierOptions,
    ) -> Result<Self, TaskError> {
        let rendered = template.render(&model.chat, &labels.phrases, &[])?;
        let tok = &model.tokenizer;
        let prefix_ids = tok.encode_prompt(&rendered.before)?;
        let after_ids = tok.encode_prompt(&rendered.after)?;
        // The answer follows the prompt: after a word ("Sentiment:") it starts with a space.
        let lead = match rendered.after.chars().last() {
            Some(c) if !c.is_whitespace() => " ",
            _ => "",
        };
        let sequences = labels
            .phrases
            .iter()
            .map(|p| tok.encode_text(&format!("{lead}{p}")))
            .collect::<Result<Vec<_>, _>>()?;
        let trie = LabelTrie::build(&labels, &sequences)?;
        let inner = trie.inner_nodes();
        let depth = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let context = model.transformer.config().context_length;
        let overhead = prefix_ids.len() + after_ids.len() + depth + 1;
        let max_text = context
            .checked_sub(overhead)
            .filter(|&n| n > 0)
            .ok_or(TaskError::NoRoom(context))?
            .min(MAX_TEXT_TOKENS);
        let prefix = match opts.prefix_cache {
            true => model.transformer.prefill(&prefix_ids)?,
            false => KvCache::empty(),
        };
        let mut this = Self {
            model,
            prompt_version: template.version.clone(),
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
            inner,
            bias: Vec::new(),
            max_text,
        };
        this.bias = vec![0.0; this.labels.len()];
        if this.opts.calibrate {
            let items = CONTENT_FREE
                .iter()
                .map(|t| this.tokens(t))
                .collect::<Result<Vec<_>, _>>()?;
            let mut mean = vec![0.0; this.labels.len()];
            for lp in this.label_logprobs(&items)? {
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

    pub fn classify(&self, texts: &[&str]) -> Result<Vec<ClassPrediction>, TaskError> {
        let items = texts
            .iter()
            .map(|t| self.tokens(t))
            .collect::<Result<Vec<_>, _>>()?;
        let logprobs = self.label_logprobs(&items)?;
        Ok(items
            .iter()
            .zip(logprobs)
            .map(|(item, lp)| {
                let z: Vec<f64> = lp
                    .iter()
                    .zip(&self.bias)
                    .map(|(l, b)| (l - b) / self.temperature)
                    .collect();
                let probs = softmax(&z);
                let best = argmax(&probs);
                ClassPrediction {
                    label: self.labels.names[best].clone(),
                    confidence: probs[best],
                    scores: self.labels.names.iter().cloned().zip(probs).collect(),
                    truncated: item.truncated,
                }
            })
            .collect())
    }

    /// Uncalibrated log-probability of every label for every item, packing items into
    /// forwards of about PACK_TOKENS tokens.
    fn label_logprobs(&self, items: &[ItemTokens]) -> Result<Vec<Vec<f64>>, TaskError> {
        let mut out = Vec::with_capacity(items.len());
        let mut start = 0;
        while start < items.len() {
            let mut end = start;
            let mut budget = 0;
            while end < items.len()
                && (end == start || budget + self.cost(&items[end]) <= PACK_TOKENS)
            {
                budget += self.cost(&items[end]);
                end += 1;
            }
            out.extend(self.forward_pack(&items[start..end])?);
            start = end;
        }
        Ok(out)
    }

    fn chain_len(&self, item: &ItemTokens) -> usize {
        let prefix = if self.opts.prefix_cache {
            0
        } else {
            self.prefix_ids.len()
        };
        prefix + item.text.len() + self.after_ids.len()
    }

    fn cost(&self, item: &ItemTokens) -> usize {
        self.chain_len(item) + self.inner.len()
    }

    fn forward_pack(&self, items: &[ItemTokens]) -> Result<Vec<Vec<f64>>, TaskError> {
        let mut tokens = Vec::new();
        let mut parents = Vec::new();
        let mut want = Vec::new();
        // Per item: index in `want` of the prompt end, and of each inner trie node.
        let mut layout = Vec::with_capacity(items.len());
        for item in items {
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
            let mut node_pos = vec![usize::MAX; self.trie.nodes.len()];
            let mut node_row = vec![None; self.trie.nodes.len()];
            for &n in &self.inner {
                let node = &self.trie.nodes[n];
                node_pos[n] = tokens.len();
                parents.push(Some(node.parent.map_or(end, |p| node_pos[p])));
                tokens.push(node.token);
                node_row[n] = Some(want.len());
                want.push(tokens.len() - 1);
            }
            layout.push((root_row, node_row));
        }
        let (logits, _) = self.model.transformer.forward_tree(
            Job::Scoring,
            &self.prefix,
            &tokens,
            &parents,
            &want,
        )?;
        let rows = log_softmax_rows(&logits)?;
        Ok(layout
            .iter()
            .map(|(root_row, node_row)| {
                let at = |n: usize| node_row[n];
                self.trie.score(&rows[*root_row], &at, &rows)
            })
            .collect())
    }
}

pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}
