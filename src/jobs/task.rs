//! What a job asks of the model, how a job fails, and how the model's answers become
//! prediction rows: shared by pre-labeling and retraining.
use crate::domain::Project;
use crate::store::jobs::{self, JobStatus};
use crate::store::predictions::{NewPrediction, Output};
use crate::store::{Store, StoreError};
use crate::tasks::classify::TaskError;
use crate::tasks::labeler::{Prediction, Task};
use crate::tasks::ner::Entity;
use crate::tasks::worker::{TaskSpec, WorkerError};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// How long a job waits for an inference server that went away before it fails
/// (`WICK_REMOTE_PATIENCE_S`, default 30 minutes).
fn patience() -> Duration {
    let secs = std::env::var("WICK_REMOTE_PATIENCE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    Duration::from_secs(secs)
}

/// Asks the model with `ask` until it answers. While the inference server is unavailable the
/// job says so (its `error` field, cleared once the server is back) and tries again with
/// back-off, still reacting to cancel within a second or two. None: the job was cancelled
/// meanwhile.
pub(crate) fn patiently<T>(
    store: &Store,
    job: i64,
    mut ask: impl FnMut() -> Result<T, WorkerError>,
) -> Result<Option<T>, RunError> {
    let give_up = Instant::now() + patience();
    let mut wait = Duration::from_secs(1);
    let mut waited = false;
    loop {
        match ask() {
            Ok(v) => {
                if waited {
                    store.write(|tx| jobs::note(tx, job, None))?;
                    tracing::info!(job, "the inference server answers again");
                }
                return Ok(Some(v));
            }
            Err(WorkerError::Task(t))
                if matches!(&*t, TaskError::Remote(r) if r.is_unavailable())
                    && Instant::now() < give_up =>
            {
                let note = format!("waiting for the inference server: {t}");
                if !waited {
                    tracing::warn!(job, "{note}");
                }
                waited = true;
                store.write(|tx| jobs::note(tx, job, Some(&note)))?;
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if store.read(|c| jobs::status(c, job))? != JobStatus::Running {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
                wait = (wait * 2).min(Duration::from_secs(15));
            }
            Err(e) => return Err(RunError::Model(e.to_string())),
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
        } => entities_row(item_id, entities, *truncated),
    }
}

/// The prediction row of a sentence's spans: its confidence is the least sure span's (the
/// queue serves the sentence by its weakest span), its entropy the spans' mean.
pub(crate) fn entities_row(item_id: i64, entities: &[Entity], truncated: bool) -> NewPrediction {
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
        truncated,
    }
}
