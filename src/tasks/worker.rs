//! The model's own OS thread. Requests arrive through a bounded queue and are answered through
//! a one-shot channel; labelers (with their prefix caches) are kept per task spec, so the
//! instruction prefix is computed once per (prompt, label set) and reused across batches.
use super::classify::{ClassifierOptions, TaskError};
use super::labeler::{Labeler, Prediction, Task};
use super::labels::LabelSet;
use super::prompt::PromptTemplate;
use crate::engine::{generate, Generation, LoadedModel, Message, SamplingParams, WordState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;

/// Requests waiting for the model beyond the one it is working on.
const QUEUE: usize = 16;
/// Labelers kept warm; more distinct specs than this and the cache starts over.
const MAX_LABELERS: usize = 8;

/// What to label with: the task, its prompt (a built-in name) and its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskSpec {
    pub task: Task,
    pub labels: Vec<String>,
}

impl TaskSpec {
    /// The prompt's version (the hash of its template), known without the model.
    pub fn prompt_version(&self) -> Result<String, TaskError> {
        Ok(PromptTemplate::builtin(self.task.prompt())?.version)
    }

    fn labeler<'m>(&self, model: &'m LoadedModel) -> Result<Labeler<'m>, TaskError> {
        let template = PromptTemplate::builtin(self.task.prompt())?;
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

type Reply<T> = mpsc::Sender<Result<T, TaskError>>;

enum Request {
    Label {
        spec: TaskSpec,
        texts: Vec<String>,
        reply: Reply<Vec<Prediction>>,
    },
    /// Sentence embeddings (unit length) from the embedded encoder.
    Embed {
        texts: Vec<String>,
        reply: Reply<Vec<Vec<f32>>>,
    },
    /// Each text's words with the encoder's contextual vector of each (and whether the text was
    /// cut to fit the encoder): what the span learner reads.
    WordStates {
        texts: Vec<String>,
        reply: Reply<Vec<(Vec<WordState>, bool)>>,
    },
    /// A reply to a conversation, sampled with `params`.
    Generate {
        messages: Vec<Message>,
        params: SamplingParams,
        reply: Reply<Generation>,
    },
}

/// A handle to the model thread; cheap to clone.
#[derive(Clone)]
pub struct ModelHandle {
    tx: SyncSender<Request>,
    model_id: Arc<str>,
    chat_version: Arc<str>,
    /// The sentence embedder's id, when one is loaded.
    embedder_id: Option<Arc<str>>,
    waiting: Arc<AtomicUsize>,
}

impl ModelHandle {
    /// Starts the thread, loads the model on it, and returns once it is ready.
    pub fn spawn(
        load: impl FnOnce() -> anyhow::Result<LoadedModel> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Request>(QUEUE);
        let (ready_tx, ready_rx) =
            mpsc::channel::<anyhow::Result<(String, String, Option<String>)>>();
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
                let _ = ready_tx.send(Ok((
                    model.id.clone(),
                    model.chat.version.clone(),
                    model.embedder.as_ref().map(|e| e.id.clone()),
                )));
                let mut labelers: HashMap<TaskSpec, Labeler<'_>> = HashMap::new();
                for req in rx {
                    thread_waiting.fetch_sub(1, Ordering::Relaxed);
                    match req {
                        Request::Label { spec, texts, reply } => {
                            let out = (|| {
                                if !labelers.contains_key(&spec) {
                                    if labelers.len() >= MAX_LABELERS {
                                        labelers.clear();
                                    }
                                    labelers.insert(spec.clone(), spec.labeler(&model)?);
                                }
                                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                                labelers[&spec].label(&texts)
                            })();
                            let _ = reply.send(out);
                        }
                        Request::Embed { texts, reply } => {
                            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                            let out = match &model.embedder {
                                Some(e) => e.embed(&refs).map(|(v, _)| v).map_err(TaskError::from),
                                None => Ok(Vec::new()),
                            };
                            let _ = reply.send(out);
                        }
                        Request::WordStates { texts, reply } => {
                            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                            let out = match &model.embedder {
                                Some(e) => e.word_states(&refs).map_err(TaskError::from),
                                None => Ok(Vec::new()),
                            };
                            let _ = reply.send(out);
                        }
                        Request::Generate {
                            messages,
                            params,
                            reply,
                        } => {
                            let _ = reply.send(reply_to(&model, &messages, &params));
                        }
                    }
                }
            })?;
        let (model_id, chat_version, embedder_id) = ready_rx
            .recv()
            .map_err(|_| anyhow::anyhow!("the model thread died while loading"))??;
        Ok(ModelHandle {
            tx,
            model_id: model_id.into(),
            chat_version: chat_version.into(),
            embedder_id: embedder_id.map(Into::into),
            waiting,
        })
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

    fn send(&self, req: Request) -> Result<(), WorkerError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.tx.send(req).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            WorkerError::Stopped
        })
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

/// Renders the conversation with the model's chat template and samples a reply. A prompt too
/// long for the context keeps its end (the latest turns), leaving room for the reply.
fn reply_to(
    model: &LoadedModel,
    messages: &[Message],
    params: &SamplingParams,
) -> Result<Generation, TaskError> {
    let text = model.chat.render(messages)?;
    let mut ids = model.tokenizer.encode_prompt(&text)?;
    let room = model
        .transformer
        .config()
        .context_length
        .saturating_sub(params.max_tokens)
        .max(1);
    if ids.len() > room {
        ids.drain(..ids.len() - room);
    }
    Ok(generate(model, &ids, params)?)
}
