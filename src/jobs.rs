//! Runs pre-labeling jobs on a thread of their own, feeding the model thread in small batches
//! and committing each batch's predictions with the job's progress in one transaction. A job is
//! resumed after a restart from its row: the items still without a prediction are what is left.
use crate::domain::Project;
use crate::engine::{Message, SamplingParams};
use crate::formats::pairs::Prompt;
use crate::learn::features;
use crate::retrain::Current;
use crate::store::jobs::{self, Job, JobStatus, Lane};
use crate::store::pairs::{self, Generated};
use crate::store::predictions::{self, NewPrediction, Output, Provenance};
use crate::store::projects;
use crate::store::{auto_accept, learning};
use crate::store::{Store, StoreError};
use crate::tasks::labeler::{Prediction, Task};
use crate::tasks::worker::{ModelHandle, TaskSpec};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::mpsc;
use std::time::Duration;

/// Items per model request: small enough that cancel and progress react within seconds.
const BATCH: usize = 8;
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Wakes the runner when a job is queued.
#[derive(Clone)]
pub struct JobRunner {
    wake: Vec<mpsc::Sender<()>>,
}

impl JobRunner {
    pub fn spawn(store: Store, model: Option<ModelHandle>) -> std::io::Result<Self> {
        let (model_wake, model_rx) = mpsc::channel();
        let (learn_wake, learn_rx) = mpsc::channel();
        Self::lane(store.clone(), model.clone(), Lane::Model, model_rx)?;
        Self::lane(store, model, Lane::Learning, learn_rx)?;
        Ok(JobRunner {
            wake: vec![model_wake, learn_wake],
        })
    }

    /// One thread running the lane's jobs one after another.
    fn lane(
        store: Store,
        model: Option<ModelHandle>,
        lane: Lane,
        rx: mpsc::Receiver<()>,
    ) -> std::io::Result<()> {
        let name = match lane {
            Lane::Model => "wick-jobs",
            Lane::Learning => "wick-learn",
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                match store.read(|c| jobs::next_runnable(c, lane)) {
                    Ok(Some(job)) => {
                        let ran = match lane {
                            Lane::Model => run(&store, model.as_ref(), &job),
                            Lane::Learning => crate::retrain::run(&store, model.as_ref(), &job),
                        };
                        if let Err(e) = ran {
                            tracing::error!(job = job.id, "job failed: {e}");
                            let _ = store.write(|tx| {
                                jobs::finish(tx, job.id, JobStatus::Failed, Some(&e.to_string()))
                            });
                        }
                    }
                    Ok(None) => match rx.recv_timeout(IDLE_POLL) {
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        _ => continue,
                    },
                    Err(e) => {
                        tracing::error!("cannot read jobs: {e}");
                        std::thread::sleep(IDLE_POLL);
                    }
                }
            })?;
        Ok(())
    }

    pub fn wake(&self) {
        for w in &self.wake {
            let _ = w.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Model(String),
}

/// What the model is asked to label a project with; None for projects that are not labeled.
pub fn task_spec(project: &Project) -> Option<TaskSpec> {
    Some(TaskSpec {
        task: Task::for_prompt(project.prompt)?,
        labels: project.labels.clone(),
    })
}

fn run(store: &Store, model: Option<&ModelHandle>, job: &Job) -> Result<(), RunError> {
    let project = store.read(|c| projects::get(c, job.project_id))?;
    let Some(model) = model else {
        return Err(RunError::Model(
            "the server was started without a model (--no-model)".into(),
        ));
    };
    let Some(spec) = task_spec(&project) else {
        return generate_responses(store, model, job, &project);
    };
    let by = Provenance {
        model_id: model.model_id().to_string(),
        prompt_version: spec
            .prompt_version()
            .map_err(|e| RunError::Model(e.to_string()))?,
        labels_hash: labels_hash(&project.labels),
        learner_id: None,
    };
    let (total, done) =
        store.read(|c| jobs::coverage(c, project.id, &by.model_id, &by.prompt_version))?;
    store.write(|tx| jobs::start_run(tx, job.id, &by.model_id, &by.prompt_version, total, done))?;
    tracing::info!(
        job = job.id,
        project = project.id,
        total,
        done,
        "pre-labeling"
    );
    // Items imported after a retrain get the learner's mix as soon as they are pre-labeled.
    let learner = crate::retrain::current_learner(store, &project, &by)?;
    let mut after = 0;
    loop {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            return Ok(()); // cancelled meanwhile
        }
        let batch = store.read(|c| {
            jobs::pending_items(
                c,
                project.id,
                &by.model_id,
                &by.prompt_version,
                after,
                BATCH,
            )
        })?;
        let Some(&(last, _)) = batch.last() else {
            store.write(|tx| jobs::finish(tx, job.id, JobStatus::Done, None))?;
            return Ok(());
        };
        after = last;
        let (ids, texts): (Vec<i64>, Vec<String>) = batch.into_iter().unzip();
        // Each item's sentence embedding is kept, once, for the learner and the queue.
        let embedded = match model.embedder_id() {
            Some(embedder) => {
                let vectors = model
                    .embed(texts.clone())
                    .map_err(|e| RunError::Model(e.to_string()))?;
                Some((
                    embedder,
                    ids.iter().copied().zip(vectors).collect::<Vec<_>>(),
                ))
            }
            None => None,
        };
        let preds = model
            .label(&spec, texts.clone())
            .map_err(|e| RunError::Model(e.to_string()))?;
        let rows: Vec<NewPrediction> = ids
            .iter()
            .zip(&preds)
            .map(|(&id, p)| to_row(id, p))
            .collect();
        // And the language model's own view of each text, for the learner.
        let features: Vec<learning::LmView> = ids
            .iter()
            .zip(&preds)
            .filter_map(|(&item_id, p)| match p {
                Prediction::Class(c) => c.features.clone().map(|features| learning::LmView {
                    item_id,
                    features,
                    scores: c.scores.iter().map(|(_, s)| *s as f32).collect(),
                }),
                Prediction::Entities { .. } => None,
            })
            .collect();
        // And every scored entity candidate, for the span learner.
        let types = project.labels.len();
        let candidates: Vec<(i64, Vec<u8>)> = ids
            .iter()
            .zip(&preds)
            .filter_map(|(&item_id, p)| match p {
                Prediction::Entities { zero_shot, .. } => {
                    Some((item_id, zero_shot.to_bytes(types)))
                }
                Prediction::Class(_) => None,
            })
            .collect();
        let mixed: Vec<NewPrediction> = match (&learner, &embedded) {
            (Some((_, Current::Labels(l))), Some((_, vectors))) => {
                let seen = l.seen();
                let dim = l.dim().unwrap_or(0);
                vectors
                    .iter()
                    .zip(&preds)
                    .filter_map(|((id, v), p)| match p {
                        Prediction::Class(c) => {
                            let lm: Vec<f64> = c.scores.iter().map(|(_, s)| *s).collect();
                            let x = features::join(dim, v, c.features.as_deref());
                            let mix = l.predict(&x, &lm, &seen);
                            let top = crate::tasks::classify::argmax(&lm);
                            Some(crate::retrain::mixed_row(*id, &project.labels, &mix, top))
                        }
                        Prediction::Entities { .. } => None,
                    })
                    .collect()
            }
            (Some((_, Current::Spans(l))), _) => {
                let sentences = ids
                    .iter()
                    .zip(&texts)
                    .zip(&preds)
                    .filter_map(|((&id, text), p)| match p {
                        Prediction::Entities { zero_shot, .. } => {
                            Some((id, text.clone(), zero_shot.clone()))
                        }
                        Prediction::Class(_) => None,
                    })
                    .collect();
                crate::retrain::mix_spans(model, &project, l, sentences)?
            }
            _ => Vec::new(),
        };
        store.write(|tx| {
            if let Some((embedder, vectors)) = &embedded {
                learning::put_embeddings(tx, embedder, vectors)?;
            }
            let source =
                learning::feature_source(&by.model_id, &by.prompt_version, &by.labels_hash);
            learning::put_lm_features(tx, &source, &features)?;
            learning::put_span_candidates(tx, &source, &candidates)?;
            predictions::insert(tx, &by, project.queue_order, &rows)?;
            if let Some((learner_by, _)) = &learner {
                predictions::insert(tx, learner_by, project.queue_order, &mixed)?;
            }
            auto_accept::after_predictions(tx, project.id, &ids)?;
            jobs::add_done(tx, job.id, rows.len() as i64)
        })?;
    }
}

/// Prompts handled per step of a generation job: each takes seconds, so one at a time keeps
/// cancel and progress prompt.
const GENERATE_BATCH: usize = 1;

/// Samples the project's responses for every prompt that has none, and a comparison for each
/// pair of them. A prompt's responses commit together with the job's progress.
fn generate_responses(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
) -> Result<(), RunError> {
    let settings = project.generation.unwrap_or_default();
    let (total, done) = store.read(|c| jobs::response_coverage(c, project.id))?;
    store.write(|tx| {
        jobs::start_run(
            tx,
            job.id,
            model.model_id(),
            model.chat_version(),
            total,
            done,
        )
    })?;
    let mut after = 0;
    loop {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            return Ok(());
        }
        let batch = store
            .read(|c| jobs::prompts_without_responses(c, project.id, after, GENERATE_BATCH))?;
        let Some(&(last, _, _)) = batch.last() else {
            store.write(|tx| jobs::finish(tx, job.id, JobStatus::Done, None))?;
            return Ok(());
        };
        after = last;
        for (item_id, prompt, text) in batch {
            let prompt: Prompt = prompt
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Prompt::Text(text));
            let messages: Vec<Message> = prompt
                .messages()
                .iter()
                .map(|m| Message::new(&m.role, m.content.clone()))
                .collect();
            let mut responses = Vec::with_capacity(settings.responses as usize);
            for i in 0..u64::from(settings.responses) {
                let params = SamplingParams {
                    temperature: settings.temperature,
                    top_p: Some(settings.top_p),
                    seed: settings.seed + i,
                    max_tokens: settings.max_tokens as usize,
                };
                let out = model
                    .generate(messages.clone(), params.clone())
                    .map_err(|e| RunError::Model(e.to_string()))?;
                responses.push(Generated {
                    text: out.text.trim().to_string(),
                    // Each seed is a source, so the leaderboard can compare sampling runs.
                    source: format!("{} seed {}", model.model_id(), params.seed),
                    model_id: model.model_id().to_string(),
                    settings: json!({"temperature": params.temperature, "top_p": settings.top_p, "seed": params.seed,
                        "max_tokens": settings.max_tokens, "finished": out.stopped}),
                    prompt_version: model.chat_version().to_string(),
                });
            }
            store.write(|tx| {
                pairs::add_generated(tx, project, item_id, &responses)?;
                jobs::add_done(tx, job.id, 1)
            })?;
        }
    }
}

/// Identifies the label set a prediction was made over.
pub fn labels_hash(labels: &[String]) -> String {
    let d = Sha256::digest(serde_json::to_string(labels).unwrap_or_default().as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Confidence given to an NER prediction with no entities: the extractor has no probability for
/// "nothing here", so such items sit mid-queue rather than last.
const EMPTY_NER_CONFIDENCE: f64 = 0.5;

pub(crate) fn to_row(item_id: i64, p: &Prediction) -> NewPrediction {
    match p {
        Prediction::Class(c) => {
            let mut probs: Vec<f64> = c.scores.iter().map(|(_, s)| *s).collect();
            probs.sort_by(|a, b| b.total_cmp(a));
            let margin = probs[0] - probs.get(1).copied().unwrap_or(0.0);
            let entropy = -probs
                .iter()
                .filter(|&&p| p > 0.0)
                .map(|p| p * p.ln())
                .sum::<f64>();
            let mut output = Output::new();
            output.insert("label".into(), json!(c.label));
            output.insert(
                "scores".into(),
                json!(c
                    .scores
                    .iter()
                    .map(|(l, s)| (l.clone(), json!(s)))
                    .collect::<serde_json::Map<_, _>>()),
            );
            NewPrediction {
                item_id,
                label: Some(c.label.clone()),
                output,
                confidence: c.confidence,
                margin,
                entropy,
                truncated: c.truncated,
            }
        }
        Prediction::Entities {
            entities,
            truncated,
            ..
        } => {
            let confidence = entities
                .iter()
                .map(|e| e.confidence)
                .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.min(c))));
            let binary = |p: f64| {
                if p <= 0.0 || p >= 1.0 {
                    0.0
                } else {
                    -(p * p.ln() + (1.0 - p) * (1.0 - p).ln())
                }
            };
            let entropy = if entities.is_empty() {
                0.0
            } else {
                entities.iter().map(|e| binary(e.confidence)).sum::<f64>() / entities.len() as f64
            };
            let confidence = confidence.unwrap_or(EMPTY_NER_CONFIDENCE);
            let mut output = Output::new();
            output.insert("entities".into(), json!(entities));
            NewPrediction {
                item_id,
                label: None,
                output,
                confidence,
                margin: confidence,
                entropy,
                truncated: *truncated,
            }
        }
    }
}
