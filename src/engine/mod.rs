//! Everything candle: loading GGUF models, tokenizing, chat templates, the transformer
//! forward with prefix KV caches and tree-shaped batches, and sampling.
mod attention;
mod chat;
mod config;
mod embed;
mod error;
mod file_id;
mod generate;
mod kv;
mod loader;
mod matvec;
mod model;
pub mod source;
mod threads;
mod tokenizer;
mod view;

pub use chat::{ChatTemplate, Message};
pub use config::{Architecture, ModelConfig, RopeStyle};
pub use embed::{cosine, SentenceEmbedder, WordState, DEFAULT_EMBEDDER};
pub use error::EngineError;
pub use generate::{generate, Generation, SamplingParams};
pub use kv::KvCache;
pub use loader::{Device, LoadOptions, LoadedModel};
pub use model::{log_softmax_rows, Transformer, WeightCopy};
pub use threads::configure_threads;
pub use tokenizer::TextTokenizer;

pub type Result<T> = std::result::Result<T, EngineError>;
