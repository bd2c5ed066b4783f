use std::path::PathBuf;

/// What can go wrong loading or running a model. Messages name the file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {0} does not exist (for the embedded model run scripts/fetch-model.sh)")]
    NotFound(PathBuf),
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid GGUF file (truncated or corrupt?): {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("unsupported model architecture '{0}' (supported: llama, qwen2)")]
    UnsupportedArchitecture(String),
    #[error("GGUF metadata key '{key}' is missing or has the wrong type")]
    Metadata { key: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error(transparent)]
    Source(#[from] crate::engine::source::SourceError),
    #[error("device: {0}")]
    Device(String),
    #[error("model forward failed: {0}")]
    Candle(#[from] candle_core::Error),
}
