//! The model's own OS thread. Requests arrive through a bounded queue (`handle::ModelHandle`)
//! and are answered through a one-shot channel; labelers (with their prefix caches) are kept
//! per task spec, so the instruction prefix is computed once per (prompt, label set) and
//! reused across batches.
mod handle;

pub use handle::{ModelHandle, ModelHealth};

use super::backend::Backend;
use super::classify::{ClassifierOptions, TaskError};
use super::labeler::{Labeler, Prediction, Task};
use super::labels::LabelSet;
use super::prompt::PromptTemplate;
use super::remote::RemoteModel;
use crate::engine::{generate, Generation, LoadedModel, Message, SamplingParams, WordState};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

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

    fn labeler<'m>(&self, model: &'m Backend) -> Result<Labeler<'m>, TaskError> {
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

/// A request with the caller's tracing span, which the thread enters while serving it.
struct Envelope {
    span: tracing::Span,
    request: Request,
}

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

/// Answers requests until every handle is gone. A request that panics is answered with
/// `TaskError::Panicked` and the warm labelers are dropped (they may be half-updated); the
/// thread goes on with the next request. Each request runs inside the caller's tracing span.
/// `waiting` counts the requests queued and not yet taken.
fn serve(model: &Backend, rx: mpsc::Receiver<Envelope>, waiting: &AtomicUsize) {
    let mut labelers: HashMap<TaskSpec, Labeler<'_>> = HashMap::new();
    for Envelope { span, request } in rx {
        waiting.fetch_sub(1, Ordering::Relaxed);
        let _entered = span.enter();
        let panicked = match request {
            Request::Label { spec, texts, reply } => answer(reply, || {
                if !labelers.contains_key(&spec) {
                    if labelers.len() >= MAX_LABELERS {
                        labelers.clear();
                    }
                    labelers.insert(spec.clone(), spec.labeler(model)?);
                }
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                labelers[&spec].label(&texts)
            }),
            Request::Embed { texts, reply } => answer(reply, || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                match model.embedder() {
                    Some(e) => Ok(e.embed(&refs).map(|(v, _)| v)?),
                    None => Ok(Vec::new()),
                }
            }),
            Request::WordStates { texts, reply } => answer(reply, || {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                match model.embedder() {
                    Some(e) => Ok(e.word_states(&refs)?),
                    None => Ok(Vec::new()),
                }
            }),
            Request::Generate {
                messages,
                params,
                reply,
            } => answer(reply, || match model {
                Backend::Local(m) => reply_to(m, &messages, &params),
                Backend::Remote(r) => remote_reply(r, &messages, &params),
            }),
        };
        if panicked {
            labelers.clear();
        }
    }
}

/// Runs `f` and sends its result; a panic is logged and answered as an error. Returns whether
/// `f` panicked.
fn answer<T>(reply: Reply<T>, f: impl FnOnce() -> Result<T, TaskError>) -> bool {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(out) => {
            let _ = reply.send(out);
            false
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            tracing::error!(panic = %what, "the model thread caught a panic");
            let _ = reply.send(Err(TaskError::Panicked(what)));
            true
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

/// A reply from the inference server, which renders the conversation with its own template.
fn remote_reply(
    model: &RemoteModel,
    messages: &[Message],
    params: &SamplingParams,
) -> Result<Generation, TaskError> {
    let c = model.reply(
        messages,
        params.max_tokens,
        params.temperature,
        params.top_p,
        params.seed,
    )?;
    Ok(Generation {
        ids: Vec::new(), // the server's token ids are not sent back
        text: c.text,
        stopped: c.stopped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_request_is_answered_and_reported() {
        let (reply, rx) = mpsc::channel::<Result<u32, TaskError>>();
        assert!(answer(reply, || panic!("index out of range")));
        match rx.recv() {
            Ok(Err(TaskError::Panicked(what))) => assert_eq!(what, "index out of range"),
            other => panic!("{other:?}"),
        }
        let (reply, rx) = mpsc::channel::<Result<u32, TaskError>>();
        assert!(!answer(reply, || Ok(7)));
        assert!(matches!(rx.recv(), Ok(Ok(7))));
    }
}
