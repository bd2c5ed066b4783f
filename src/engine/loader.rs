//! Opening a GGUF file: metadata, tokenizer, chat template and the two weight copies.
use super::chat::ChatTemplate;
use super::config::ModelConfig;
use super::embed::{SentenceEmbedder, DEFAULT_EMBEDDER};
use super::file_id::model_id;
use super::model::Transformer;
use super::tokenizer::TextTokenizer;
use super::{EngineError, Result};
use candle_core::quantized::gguf_file;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

impl Device {
    pub fn candle(self) -> Result<candle_core::Device> {
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

        let transformer = Transformer::from_gguf(&content, &mut reader, cfg, device, corrupt)?;
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
