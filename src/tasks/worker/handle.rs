//! The handle every caller holds to the model thread: it starts the thread, queues requests
//! (bounded, so a burst waits instead of piling up) and reports whether the thread still runs.
use super::{serve, Envelope, Request, TaskSpec, WorkerError, QUEUE};
use crate::engine::{Generation, Message, SamplingParams, WordState};
use crate::tasks::backend::Backend;
use crate::tasks::labeler::Prediction;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A handle to the model thread; cheap to clone.
#[derive(Clone)]
pub struct ModelHandle {
    tx: SyncSender<Envelope>,
    model_id: Arc<str>,
    chat_version: Arc<str>,
    /// The sentence embedder's id, when one is loaded.
    embedder_id: Option<Arc<str>>,
    /// Whether predictions carry the language model's hidden state (in-process only).
    lm_features: bool,
    waiting: Arc<AtomicUsize>,
    /// The thread itself: whether it has finished is the handle's health.
    thread: Arc<JoinHandle<()>>,
}

/// Whether the model thread still answers; `/healthz` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelHealth {
    Running,
    /// The thread has ended (every request from now on is refused with `Stopped`).
    Stopped,
}

impl ModelHandle {
    /// Starts the thread, loads the model on it, and returns once it is ready.
    pub fn spawn(
        load: impl FnOnce() -> anyhow::Result<Backend> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Envelope>(QUEUE);
        let (ready_tx, ready_rx) =
            mpsc::channel::<anyhow::Result<(String, String, Option<String>, bool)>>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let thread_waiting = waiting.clone();
        let thread = std::thread::Builder::new()
            .name("wick-model".into())
            .spawn(move || {
                let model = match load() {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok((
                    model.id().to_string(),
                    model.chat_version().to_string(),
                    model.embedder().map(|e| e.id.clone()),
                    matches!(model, Backend::Local(_)),
                )));
                serve(&model, rx, &thread_waiting);
            })?;
        let (model_id, chat_version, embedder_id, lm_features) = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the model thread died while loading"))??;
        Ok(ModelHandle {
            tx,
            model_id: model_id.into(),
            chat_version: chat_version.into(),
            embedder_id: embedder_id.map(Into::into),
            lm_features,
            waiting,
            thread: Arc::new(thread),
        })
    }

    /// Stopped once the thread has ended, however it ended (every request is then refused).
    pub fn health(&self) -> ModelHealth {
        match self.thread.is_finished() {
            true => ModelHealth::Stopped,
            false => ModelHealth::Running,
        }
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The version of the chat template that generation renders prompts with.
    pub fn chat_version(&self) -> &str {
        &self.chat_version
    }

    /// The sentence embedder's id (what stored embeddings record), when one is loaded.
    pub fn embedder_id(&self) -> Option<&str> {
        self.embedder_id.as_deref()
    }

    /// Whether label predictions carry the language model's view of each text (`features`):
    /// the in-process engine's do, an inference server's do not.
    pub fn lm_features(&self) -> bool {
        self.lm_features
    }

    /// Unit-length sentence embeddings of `texts`; empty when no embedder is loaded.
    pub fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.send(Request::Embed { texts, reply })?;
        Ok(rx.recv().map_err(|_| WorkerError::Stopped)??)
    }

    /// Each text's words and their contextual vectors; empty when no embedder is loaded.
    pub fn word_states(
        &self,
        texts: Vec<String>,
    ) -> Result<Vec<(Vec<WordState>, bool)>, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.send(Request::WordStates { texts, reply })?;
        Ok(rx.recv().map_err(|_| WorkerError::Stopped)??)
    }

    /// Requests queued for the model.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Labels `texts`, waiting for room in the queue (background jobs are the only callers; an
    /// interactive caller would use `try_send` and answer 429 when the queue is full).
    pub fn label(
        &self,
        spec: &TaskSpec,
        texts: Vec<String>,
    ) -> Result<Vec<Prediction>, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.send(Request::Label {
            spec: spec.clone(),
            texts,
            reply,
        })?;
        Ok(rx.recv().map_err(|_| WorkerError::Stopped)??)
    }

    /// A sampled reply to `messages`, waiting for room in the queue.
    pub fn generate(
        &self,
        messages: Vec<Message>,
        params: SamplingParams,
    ) -> Result<Generation, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.send(Request::Generate {
            messages,
            params,
            reply,
        })?;
        Ok(rx.recv().map_err(|_| WorkerError::Stopped)??)
    }

    /// Queues `request` inside the caller's tracing span.
    fn send(&self, request: Request) -> Result<(), WorkerError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let envelope = Envelope {
            span: tracing::Span::current(),
            request,
        };
        self.tx.send(envelope).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            WorkerError::Stopped
        })
    }
}
