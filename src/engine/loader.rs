//! Opening a GGUF file: metadata, tokenizer, chat template and the two weight copies.
use super::chat::ChatTemplate;
use super::config::ModelConfig;
use super::embed::{SentenceEmbedder, DEFAULT_EMBEDDER};
use super::model::{Block, Linear, Transformer, Weights};
use super::tokenizer::TextTokenizer;
use super::{EngineError, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Tensor};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

impl Device {
    fn candle(self) -> Result<candle_core::Device> {
        match self {
            Device::Cpu => Ok(candle_core::Device::Cpu),
            Device::Cuda if cfg!(feature = "cuda") => candle_core::Device::new_cuda(0)
                .map_err(|e| EngineError::Device(format!("cannot open CUDA device 0: {e}"))),
            Device::Cuda => Err(EngineError::Device(
                "this build has no CUDA support; rebuild with `cargo build --release --features cuda`"
                    .into(),
            )),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub device: Device,
    /// Where the sentence embedder lives (a folder with config.json, model.safetensors and
    /// tokenizer.json); by default `all-MiniLM-L6-v2` next to the GGUF file. A missing default
    /// folder is not an error: the model then runs without it (see `LoadedModel::embedder`).
    pub embedder: Option<PathBuf>,
}

/// Above this many parameters, scoring shares the 8-bit generation weights instead of
/// keeping an f32 copy (which costs 4 bytes a parameter).
const F32_SCORING_MAX_PARAMS: usize = 600_000_000;

pub struct LoadedModel {
    pub transformer: Transformer,
    pub tokenizer: TextTokenizer,
    pub chat: ChatTemplate,
    /// The sentence embedder that shortlists labels of large label sets, when one was found.
    pub embedder: Option<SentenceEmbedder>,
    /// File name and sha256 prefix (`NAME@HASH`, then `+EMBEDDER@HASH` when an embedder is
    /// loaded): what a prediction records as its model.
    pub id: String,
    pub path: PathBuf,
}

impl LoadedModel {
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        if !path.exists() {
            return Err(EngineError::NotFound(path.to_path_buf()));
        }
        let io = |source| EngineError::Io {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |reason: String| EngineError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let mut reader = BufReader::new(File::open(path).map_err(io)?);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| corrupt(e.to_string()))?;
        let cfg = ModelConfig::from_gguf(&content)?;
        let file_len = std::fs::metadata(path).map_err(io)?.len();
        check_extent(&content, file_len).map_err(corrupt)?;

        let tokenizer = TextTokenizer::for_model(path, &content)?;
        let chat = ChatTemplate::from_gguf(&content)?;
        let device = opts.device.candle()?;
        // First, while little else is resident: loading copies the mapped safetensors file
        // into tensors, so for a moment it takes twice its size.
        let embedder = load_embedder(path, opts.embedder.as_deref(), &device)?;

        let mut read = |name: &str| -> Result<QTensor> {
            content
                .tensor(&mut reader, name, &device)
                .map_err(|e| corrupt(format!("tensor {name}: {e}")))
        };
        let f32_of = |q: &QTensor| -> Result<Tensor> { Ok(q.dequantize(&device)?) };

        let embed = f32_of(&read("token_embd.weight")?)?;
        let head_f32 = match content.tensor_infos.contains_key("output.weight") {
            true => f32_of(&read("output.weight")?)?,
            false => embed.clone(),
        };
        let final_norm = f32_of(&read("output_norm.weight")?)?;
        let n_params: usize = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count())
            .sum();
        let keep_f32 = n_params <= F32_SCORING_MAX_PARAMS;

        let mut scoring = Vec::new();
        let mut generation = Vec::new();
        for i in 0..cfg.n_layers {
            let mut w = |s: &str| read(&format!("blk.{i}.{s}")).and_then(|q| f32_of(&q));
            let attn_norm = w("attn_norm.weight")?;
            let ffn_norm = w("ffn_norm.weight")?;
            let qkv = Tensor::cat(
                &[
                    w("attn_q.weight")?,
                    w("attn_k.weight")?,
                    w("attn_v.weight")?,
                ],
                0,
            )?;
            let qkv_bias = match content
                .tensor_infos
                .contains_key(&format!("blk.{i}.attn_q.bias"))
            {
                true => Some(Tensor::cat(
                    &[w("attn_q.bias")?, w("attn_k.bias")?, w("attn_v.bias")?],
                    0,
                )?),
                false => None,
            };
            let out = w("attn_output.weight")?;
            let gate_up = Tensor::cat(&[w("ffn_gate.weight")?, w("ffn_up.weight")?], 0)?;
            let down = w("ffn_down.weight")?;
            let make = |to_q8: bool| -> Result<Block> {
                let lin = |t: &Tensor, b: Option<&Tensor>| -> Result<Linear> {
                    Ok(Linear {
                        w: matmul_weight(t, to_q8)?,
                        b: b.cloned(),
                    })
                };
                Ok(Block {
                    attn_norm: attn_norm.clone(),
                    qkv: lin(&qkv, qkv_bias.as_ref())?,
                    out: lin(&out, None)?,
                    ffn_norm: ffn_norm.clone(),
                    gate_up: lin(&gate_up, None)?,
                    down: lin(&down, None)?,
                })
            };
            if keep_f32 {
                scoring.push(make(false)?);
            }
            generation.push(make(true)?);
        }
        let head = |to_q8| -> Result<Linear> {
            Ok(Linear {
                w: matmul_weight(&head_f32, to_q8)?,
                b: None,
            })
        };
        let scoring = match keep_f32 {
            true => Some(Weights {
                blocks: scoring,
                head: head(false)?,
            }),
            false => None,
        };
        let generation = Weights {
            blocks: generation,
            head: head(true)?,
        };
        let rope_factors = match content.tensor_infos.contains_key("rope_freqs.weight") {
            true => Some(f32_of(&read("rope_freqs.weight")?)?.to_vec1::<f32>()?),
            false => None,
        };
        let (cos, sin) = rope_tables(&cfg, rope_factors.as_deref(), &device)?;
        let transformer = Transformer {
            cfg,
            embed,
            final_norm,
            cos,
            sin,
            scoring,
            generation,
            device,
        };
        let mut id = model_id(path)?;
        if let Some(e) = &embedder {
            id = format!("{id}+{}", e.id);
        }
        Ok(Self {
            transformer,
            tokenizer,
            chat,
            embedder,
            id,
            path: path.to_path_buf(),
        })
    }
}

/// The embedder named in the options (an error when it cannot be loaded), else the default
/// folder next to the GGUF file; without that folder, none, with a one-line warning.
fn load_embedder(
    gguf: &Path,
    named: Option<&Path>,
    device: &candle_core::Device,
) -> Result<Option<SentenceEmbedder>> {
    if let Some(dir) = named {
        return SentenceEmbedder::load(dir, device).map(Some);
    }
    let dir = gguf
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(DEFAULT_EMBEDDER);
    if !dir.join("model.safetensors").exists() {
        tracing::warn!(
            "no sentence embedder at {}: large label sets are scored by the language model alone (slower)",
            dir.display()
        );
        return Ok(None);
    }
    SentenceEmbedder::load(&dir, device).map(Some)
}

/// A weight for `x @ w^T`: 8-bit blocks where the row length allows, else f32.
fn matmul_weight(w: &Tensor, to_q8: bool) -> Result<QMatMul> {
    let k = w.dim(candle_core::D::Minus1)?;
    if to_q8 && k % GgmlDType::Q8_0.block_size() == 0 {
        let q = QTensor::quantize(&w.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
        return Ok(QMatMul::from_qtensor(q)?);
    }
    Ok(QMatMul::Tensor(w.to_dtype(DType::F32)?))
}

/// A truncated file is caught here, before a tensor read fails halfway through loading.
fn check_extent(content: &gguf_file::Content, file_len: u64) -> std::result::Result<(), String> {
    for (name, info) in &content.tensor_infos {
        let elems = info.shape.elem_count();
        let bytes = elems / info.ggml_dtype.block_size() * info.ggml_dtype.type_size();
        let end = content.tensor_data_offset + info.offset + bytes as u64;
        if end > file_len {
            return Err(format!(
                "tensor {name} ends at byte {end} but the file has only {file_len} bytes"
            ));
        }
    }
    Ok(())
}

fn rope_tables(
    cfg: &ModelConfig,
    factors: Option<&[f32]>,
    device: &candle_core::Device,
) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let f = 1.0 / cfg.rope_base.powf(2.0 * i as f32 / cfg.head_dim as f32);
            f / factors.and_then(|fs| fs.get(i)).copied().unwrap_or(1.0)
        })
        .collect();
    let n = cfg.context_length;
    let mut angles = Vec::with_capacity(n * half);
    for pos in 0..n {
        angles.extend(inv_freq.iter().map(|f| pos as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (n, half), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// `NAME@sha256[..12]`: hashing the whole file once at load makes two files with the same
/// name (a re-quantized model, say) never pass for each other.
fn model_id(path: &Path) -> Result<String> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(format!("{name}@{}", sha256_prefix(path)?))
}

/// The first 12 hex digits of a file's sha256.
pub(super) fn sha256_prefix(path: &Path) -> Result<String> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}
