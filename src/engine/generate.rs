//! Token-by-token generation (the prompt is fed in one forward on the f32 copy, every new
//! token on the 8-bit copy).
use super::{KvCache, LoadedModel, Result, WeightCopy};
use candle_transformers::generation::{LogitsProcessor, Sampling};

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub max_tokens: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: None,
            seed: 0,
            max_tokens: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub ids: Vec<u32>,
    pub text: String,
    /// True when the model ended its turn, false when `max_tokens` cut it off.
    pub stopped: bool,
}

/// Continues `prompt_ids` until a stop token or `max_tokens`.
pub fn generate(
    model: &LoadedModel,
    prompt_ids: &[u32],
    params: &SamplingParams,
) -> Result<Generation> {
    let sampling = match (params.temperature, params.top_p) {
        (t, _) if t <= 0.0 => Sampling::ArgMax,
        (temperature, Some(p)) => Sampling::TopP { p, temperature },
        (temperature, None) => Sampling::All { temperature },
    };
    let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
    let t = &model.transformer;
    let mut ids = Vec::new();
    if prompt_ids.is_empty() || params.max_tokens == 0 {
        return Ok(Generation {
            ids,
            text: String::new(),
            stopped: false,
        });
    }
    let last = prompt_ids.len() - 1;
    let (mut logits, mut cache) =
        t.forward_chain(WeightCopy::Scoring, &KvCache::empty(), prompt_ids, &[last])?;
    let room = t.config().context_length.saturating_sub(prompt_ids.len());
    let mut stopped = false;
    while ids.len() < params.max_tokens.min(room) {
        let next = sampler.sample(&logits.squeeze(0)?)?;
        if model.tokenizer.stop_ids().contains(&next) {
            stopped = true;
            break;
        }
        ids.push(next);
        let (l, kv) = t.forward_chain(WeightCopy::Generation, &cache, &[next], &[0])?;
        cache = cache.extend(&kv)?;
        logits = l;
    }
    let text = model.tokenizer.decode(&ids);
    Ok(Generation { ids, text, stopped })
}
