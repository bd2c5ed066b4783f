//! What a job asks of the model, how a job fails, and how the model's answers become
//! prediction rows: shared by pre-labeling and retraining.
use crate::domain::Project;
use crate::store::predictions::{NewPrediction, Output};
use crate::store::StoreError;
use crate::tasks::labeler::{Prediction, Task};
use crate::tasks::worker::TaskSpec;
use serde_json::json;
use sha2::{Digest, Sha256};

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
