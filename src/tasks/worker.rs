//! The model's own OS thread. Requests arrive through a bounded queue and are answered through
//! a one-shot channel; labelers (with their prefix caches) are kept per task spec, so the
//! instruction prefix is computed once per (prompt, label set) and reused across batches.
use super::classify::{ClassifierOptions, TaskError};
use super::labeler::{Labeler, Prediction, Task};
use super::labels::LabelSet;
use super::prompt::PromptTemplate;
use crate::engine::LoadedModel;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;

/// Requests waiting for the model beyond the one it is working on.
const QUEUE: usize = 16;
/// Labelers kept warm; more distinct specs than this and the cache starts over.
const MAX_LABELERS: usize = 8;

/// What to label with: the task, its prompt (a built-in name) and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskSpec {
    pub task: Task,
    pub prompt: String,
    pub labels: Vec<String>,
}

impl TaskSpec {
    /// The prompt's version (the hash of its template), known without the model.
    pub fn prompt_version(&self) -> Result<String, TaskError> {
        Ok(PromptTemplate::builtin(&self.prompt)?.version)
    }

    fn labeler<'m>(&self, model: &'m LoadedModel) -> Result<Labeler<'m>, TaskError> {
        let template = PromptTemplate::builtin(&self.prompt)?;
        let labels = self.task.label_set(&self.labels)?;
        Labeler::new(
            model,
            self.task,
            &template,
            labels,
            ClassifierOptions::default(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the model is busy; try again shortly")]
    Busy,
    #[error("the model thread has stopped")]
    Stopped,
    #[error(transparent)]
    Task(Box<TaskError>),
}

impl From<TaskError> for WorkerError {
    fn from(e: TaskError) -> Self {
        WorkerError::Task(Box::new(e))
    }
}

type Reply = mpsc::Sender<Result<Vec<Prediction>, TaskError>>;

struct Request {
    spec: TaskSpec,
    texts: Vec<String>,
    reply: Reply,
}

/// A handle to the model thread; cheap to clone.
#[derive(Clone)]
pub struct ModelHandle {
    tx: SyncSender<Request>,
    model_id: Arc<str>,
    waiting: Arc<AtomicUsize>,
}

impl ModelHandle {
    /// Starts the thread, loads the model on it, and returns once it is ready.
    pub fn spawn(
        load: impl FnOnce() -> anyhow::Result<LoadedModel> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Request>(QUEUE);
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<String>>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let thread_waiting = waiting.clone();
        std::thread::Builder::new()
            .name("wick-model".into())
            .spawn(move || {
                let model = match load() {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(model.id.clone()));
                let mut labelers: HashMap<TaskSpec, Labeler<'_>> = HashMap::new();
                for req in rx {
                    thread_waiting.fetch_sub(1, Ordering::Relaxed);
                    let out = (|| {
                        if !labelers.contains_key(&req.spec) {
                            if labelers.len() >= MAX_LABELERS {
                                labelers.clear();
                            }
                            labelers.insert(req.spec.clone(), req.spec.labeler(&model)?);
                        }
                        let labeler = &labelers[&req.spec];
                        let texts: Vec<&str> = req.texts.iter().map(String::as_str).collect();
                        labeler.label(&texts)
                    })();
                    let _ = req.reply.send(out);
                }
            })?;
        let model_id = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the model thread died while loading"))??;
        Ok(ModelHandle {
            tx,
            model_id: model_id.into(),
            waiting,
        })
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Requests queued for the model.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Labels `texts`, waiting for room in the queue (for background jobs).
    pub fn label(
        &self,
        spec: &TaskSpec,
        texts: Vec<String>,
    ) -> Result<Vec<Prediction>, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if self
            .tx
            .send(Request {
                spec: spec.clone(),
                texts,
                reply,
            })
            .is_err()
        {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(WorkerError::Stopped);
        }
        Ok(rx.recv().map_err(|_| WorkerError::Stopped)??)
    }

    /// Labels `texts` if the queue has room, or answers Busy at once (for interactive callers,
    /// which turn it into 429).
    pub fn try_label(
        &self,
        spec: &TaskSpec,
        texts: Vec<String>,
    ) -> Result<Vec<Prediction>, WorkerError> {
        let (reply, rx) = mpsc::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(Request {
            spec: spec.clone(),
            texts,
            reply,
        }) {
            Ok(()) => Ok(rx.recv().map_err(|_| WorkerError::Stopped)??),
            Err(e) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => WorkerError::Busy,
                    TrySendError::Disconnected(_) => WorkerError::Stopped,
                })
            }
        }
    }
}

impl Task {
    /// The label set for these names: names a task knows (e.g. `PER`) are scored by its phrase
    /// (`person`); others by the name itself, underscores read as spaces.
    pub fn label_set(self, names: &[String]) -> Result<LabelSet, super::labels::LabelError> {
        let known = self.default_labels();
        let phrases = names
            .iter()
            .map(|n| {
                known
                    .as_ref()
                    .and_then(|k| k.index(n).map(|i| k.phrases[i].clone()))
                    .unwrap_or_else(|| n.replace('_', " ").trim().to_string())
            })
            .collect();
        LabelSet::new(names.to_vec(), phrases)
    }
}
