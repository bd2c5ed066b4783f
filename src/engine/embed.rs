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
            id: format!("{name}@{}", super::loader::sha256_prefix(&weights)?),
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

    fn embed_batch(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Vec<bool>)> {
        let device = &self.model.device;
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
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
        let states = self.model.forward(&ids, &types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
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

/// The cosine of two unit-length vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum()
}
