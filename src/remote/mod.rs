//! Inference servers outside the process: llama.cpp's `llama-server` (and, through the same
//! OpenAI-compatible chat endpoint, vLLM or SGLang for generation). This layer knows HTTP, the
//! servers' JSON shapes, retries, back-off and the circuit breaker; nothing of labels or
//! prompts (`tasks::remote` builds label scoring on it).
mod client;
mod endpoint;
mod llama;

pub use client::{Client, Policy};
pub use endpoint::Endpoint;
pub use llama::{Completion, LlamaServer, ServerProps, TopLogprobs};

/// Why a call to the inference server did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No connection, a timeout, or a 429/5xx that outlasted the retries: worth trying again
    /// later, and a job waits for it.
    #[error("the inference server at {url} is unavailable: {reason}")]
    Unavailable { url: String, reason: String },
    /// Too many failures in a row: calls are refused without trying until `retry_in_s` passes.
    #[error("the inference server at {url} failed {failures} times in a row; not calling it for {retry_in_s} s")]
    CircuitOpen {
        url: String,
        failures: u32,
        retry_in_s: u64,
    },
    /// A 4xx other than 429: the request itself is wrong, and retrying will not help.
    #[error("the inference server at {url} refused the request with HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    /// An answer that is not what this server's API promises.
    #[error("the inference server at {url} answered something unexpected: {message}")]
    BadReply { url: String, message: String },
    /// A `--model openai:…` value that cannot be read.
    #[error("{0}")]
    BadEndpoint(String),
}

impl RemoteError {
    /// Whether the server may answer later (a job waits and tries again).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RemoteError::Unavailable { .. } | RemoteError::CircuitOpen { .. }
        )
    }
}
