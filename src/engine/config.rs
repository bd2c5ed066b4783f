//! Model hyper-parameters read from GGUF metadata.
use super::{EngineError, Result};
use candle_core::quantized::gguf_file::{Content, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama family: SmolLM2, Llama 3.x, TinyLlama, Mistral-style dense models.
    Llama,
    /// Qwen2 / Qwen2.5: llama with biases on q, k and v.
    Qwen2,
}

/// How rotary embeddings pair up dimensions. llama.cpp's converter permutes llama q/k
/// weights so pairs are adjacent (interleaved); qwen2 keeps the halves layout (NeoX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    Interleaved,
    Halves,
}

#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub arch: Architecture,
    pub n_layers: usize,
    pub d_model: usize,
    pub d_ff: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_base: f32,
    pub rope_style: RopeStyle,
    pub context_length: usize,
    pub vocab_size: usize,
}

/// Longest context a table of rotary frequencies is built for; larger contexts are capped
/// (labeling prompts are short, and the table costs memory per position).
const MAX_CONTEXT: usize = 8192;

impl ModelConfig {
    pub fn from_gguf(content: &Content) -> Result<Self> {
        let md = &content.metadata;
        let arch_name = string(md.get("general.architecture"), "general.architecture")?;
        let arch = match arch_name.as_str() {
            "llama" | "mistral" => Architecture::Llama,
            "qwen2" => Architecture::Qwen2,
            other => return Err(EngineError::UnsupportedArchitecture(other.to_string())),
        };
        let key = |k: &str| format!("{arch_name}.{k}");
        let get_usize = |k: &str| -> Result<usize> {
            let full = key(k);
            md.get(&full)
                .and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)))
                .map(|v| v as usize)
                .ok_or(EngineError::Metadata { key: full })
        };
        let d_model = get_usize("embedding_length")?;
        let n_heads = get_usize("attention.head_count")?;
        let n_kv_heads = get_usize("attention.head_count_kv").unwrap_or(n_heads);
        if n_heads == 0 || d_model % n_heads != 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(EngineError::Metadata {
                key: key("attention.head_count"),
            });
        }
        let rms_eps = md
            .get(&key("attention.layer_norm_rms_epsilon"))
            .and_then(|v| v.to_f32().ok())
            .ok_or(EngineError::Metadata {
                key: key("attention.layer_norm_rms_epsilon"),
            })? as f64;
        let rope_base = md
            .get(&key("rope.freq_base"))
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let vocab_size = match md.get("tokenizer.ggml.tokens") {
            Some(Value::Array(tokens)) => tokens.len(),
            _ => content
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
                .ok_or(EngineError::Metadata {
                    key: "token_embd.weight".into(),
                })?,
        };
        Ok(Self {
            arch,
            n_layers: get_usize("block_count")?,
            d_model,
            d_ff: get_usize("feed_forward_length")?,
            n_heads,
            n_kv_heads,
            head_dim: d_model / n_heads,
            rms_eps,
            rope_base,
            rope_style: match arch {
                Architecture::Llama => RopeStyle::Interleaved,
                Architecture::Qwen2 => RopeStyle::Halves,
            },
            context_length: get_usize("context_length").unwrap_or(2048).min(MAX_CONTEXT),
            vocab_size,
        })
    }
}

fn string(v: Option<&Value>, key: &str) -> Result<String> {
    v.and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or(EngineError::Metadata { key: key.into() })
}
