//! The model behind the labelers: the in-process engine, or an inference server with the
//! local sentence embedder beside it. Callers ask the same things of both.
use super::remote::RemoteModel;
use crate::engine::{LoadedModel, SentenceEmbedder};

// One per process, held for its life: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Local(LoadedModel),
    Remote(RemoteModel),
}

impl Backend {
    /// What predictions record as their model.
    pub fn id(&self) -> &str {
        match self {
            Backend::Local(m) => &m.id,
            Backend::Remote(r) => &r.id,
        }
    }

    /// The version of the chat template generation renders with.
    pub fn chat_version(&self) -> &str {
        match self {
            Backend::Local(m) => &m.chat.version,
            Backend::Remote(r) => &r.chat_version,
        }
    }

    pub fn embedder(&self) -> Option<&SentenceEmbedder> {
        match self {
            Backend::Local(m) => m.embedder.as_ref(),
            Backend::Remote(r) => r.embedder.as_ref(),
        }
    }
}
