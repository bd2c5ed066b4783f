//! Pre-labeling: feeds the model thread in small batches and commits each batch's predictions
//! (and, where a learner exists, the mix with it) with the job's progress in one transaction.
use super::task::{labels_hash, patiently, task_spec, to_row, RunError};
use crate::jobs::retrain::Current;
use crate::learn::features;
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::predictions::{self, NewPrediction, Provenance};
use crate::store::projects;
use crate::store::Store;
use crate::store::{auto_accept, learning};
use crate::tasks::labeler::Prediction;
use crate::tasks::worker::ModelHandle;

/// Items per model request: small enough that cancel and progress react within seconds.
const BATCH: usize = 8;

pub(super) fn run(store: &Store, model: Option<&ModelHandle>, job: &Job) -> Result<(), RunError> {
    let project = store.read(|c| projects::get(c, job.project_id))?;
    let Some(model) = model else {
        return Err(RunError::Model(
            "the server was started without a model (--no-model)".into(),
        ));
    };
    let Some(spec) = task_spec(&project) else {
        return super::generate::run(store, model, job, &project);
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
    let learner = crate::jobs::retrain::current_learner(store, &project, &by)?;
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
        let Some(preds) = patiently(store, job.id, || model.label(&spec, texts.clone()))? else {
            return Ok(()); // cancelled while the inference server was away
        };
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
                            Some(crate::jobs::retrain::mixed_row(
                                *id,
                                &project.labels,
                                &mix,
                                top,
                            ))
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
                crate::jobs::retrain::mix_spans(model, &project, l, sentences)?
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
