//! Retrain jobs: a classification project's learner is trained from people's current answers on the stored
//! embeddings, and every item nobody has answered is re-scored by mixing its stored
//! language-model distribution with the new learner (the language model is not asked again).
//!
//! The new learner and all of its predictions commit in one transaction, so a crash or a
//! cancel mid-way leaves the previous predictions in force. NER projects retrain their span
//! learner (`spans`).
use crate::domain::{Project, TaskKind};
use crate::jobs::task::{labels_hash, to_row, RunError};
use crate::learn::spans::SpanLearner;
use crate::learn::{features, Learner, TrainingSet};
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::learning::{self, Base, NewLearner};
use crate::store::predictions::{self, NewPrediction, Provenance};
use crate::store::projects;
use crate::store::Store;
use crate::tasks::classify::{argmax, ClassPrediction};
use crate::tasks::labeler::{Prediction, Task};
use crate::tasks::worker::ModelHandle;
use rusqlite::Transaction;
use serde_json::json;
use std::collections::HashSet;
use std::time::Instant;

/// Items embedded per model request while filling in missing embeddings.
const EMBED_BATCH: usize = 64;
/// Items read per page while re-scoring.
const SCORE_PAGE: usize = 2_000;

/// What stands in for the language model when a project was never pre-labeled.
const NO_BASE: &str = "none";

mod spans;

pub(crate) use spans::mix_spans;

pub(crate) fn run(store: &Store, model: Option<&ModelHandle>, job: &Job) -> Result<(), RunError> {
    let project = store.read(|c| projects::get(c, job.project_id))?;
    if !matches!(project.task, TaskKind::Classification | TaskKind::Ner) {
        return Err(RunError::Model(
            "the learner is for classification and NER projects".into(),
        ));
    }
    let Some(model) = model else {
        return Err(RunError::Model(
            "retraining needs the sentence embedder, and the server was started without a model (--no-model)".into(),
        ));
    };
    let Some(embedder) = model.embedder_id().map(String::from) else {
        return Err(RunError::Model(
            "retraining needs the sentence embedder (all-MiniLM-L6-v2 next to the model, or --embedder DIR)".into(),
        ));
    };
    if project.task == TaskKind::Ner {
        return spans::run(store, model, job, &project);
    }
    let base = store.read(|c| learning::base(c, project.id))?;
    let missing = store.read(|c| learning::count_without_embedding(c, project.id, &embedder))?;
    let items = store.read(|c| crate::store::items::count(c, project.id))?;
    store.write(|tx| {
        jobs::start_run(
            tx,
            job.id,
            base.as_ref().map_or(model.model_id(), |b| &b.model_id),
            base.as_ref().map_or("", |b| &b.prompt_version),
            missing + items,
            0,
        )
    })?;
    if !embed_missing(store, model, job, &project, &embedder)? {
        return Ok(()); // cancelled
    }

    let names = Task::Classify
        .label_set(&project.labels)
        .map_err(model_error)?;
    let mut name_vectors = model.embed(names.phrases.clone()).map_err(model_error)?;
    if let Some(lm) = name_features(model, &project, base.as_ref(), &names.phrases)? {
        for (v, f) in name_vectors.iter_mut().zip(lm) {
            v.extend(f);
        }
    }
    train_and_rescore(store, job, &project, &embedder, &name_vectors)
}

/// The language model's features of each label's phrase, read as a text: present when the
/// project's current prompt is the one its stored features came from (`base`), so the
/// learner reads the items' features beside their embeddings.
fn name_features(
    model: &ModelHandle,
    project: &Project,
    base: Option<&Base>,
    phrases: &[String],
) -> Result<Option<Vec<Vec<f32>>>, RunError> {
    let (Some(base), Some(spec)) = (base, crate::jobs::task::task_spec(project)) else {
        return Ok(None);
    };
    if !model.lm_features() {
        return Ok(None); // an inference server gives no hidden states to read the names with
    }
    let current = spec.prompt_version().map_err(model_error)?;
    if base.model_id != model.model_id() || base.prompt_version != current {
        return Ok(None);
    }
    let predictions = model.label(&spec, phrases.to_vec()).map_err(model_error)?;
    Ok(predictions
        .into_iter()
        .map(|p| match p {
            Prediction::Class(c) => c.features,
            Prediction::Entities { .. } => None,
        })
        .collect())
}

/// The part of a retrain that needs no model: trains the learner from the stored embeddings
/// and language-model features (`names`: each label's phrase read the same way: its embedding,
/// then its features when the items' are to be read too) and writes its predictions. `job`
/// must be running; a cancel is noticed between pages.
pub fn train_and_rescore(
    store: &Store,
    job: &Job,
    project: &Project,
    embedder: &str,
    names: &[Vec<f32>],
) -> Result<(), RunError> {
    let started = Instant::now();
    let hash = labels_hash(&project.labels);
    let base = store.read(|c| learning::base(c, project.id))?;
    let (labels, newest) = store.read(|c| learning::human_labels(c, project.id))?;
    let index = |l: &str| project.labels.iter().position(|n| n == l);
    let labeled: Vec<(i64, usize)> = labels
        .iter()
        .filter_map(|(item, l)| index(l).map(|i| (*item, i)))
        .collect();
    let ids: Vec<i64> = labeled.iter().map(|(i, _)| *i).collect();
    let vectors = store.read(|c| learning::embeddings_of(c, &ids))?;
    let (scores, lm_features) = match &base {
        Some(b) => store.read(|c| {
            let source = learning::feature_source(&b.model_id, &b.prompt_version, &hash);
            Ok((
                learning::lm_scores(c, &ids, b, &hash, &project.labels)?,
                learning::lm_features_of(c, &ids, &source)?,
            ))
        })?,
        None => Default::default(),
    };
    let dim = names.first().map_or(0, Vec::len);
    let mut set = TrainingSet::new(dim, project.labels.len())
        .with_label_names(names)
        .map_err(model_error)?;
    for (item, label) in &labeled {
        let Some(v) = vectors.get(item) else { continue };
        let x = features::join(dim, v, lm_features.get(item).map(Vec::as_slice));
        set.push(&x, *label, scores.get(item).map(Vec::as_slice))
            .map_err(model_error)?;
    }
    let learner = Learner::train(&set).map_err(model_error)?;
    let trained: HashSet<i64> = ids.into_iter().collect();
    let base = base.unwrap_or(Base {
        model_id: NO_BASE.into(),
        prompt_version: String::new(),
    });
    let version = format!("{}+learner@{}/{}", base.model_id, learner.hash(), learner.n);
    let Some(rows) = rescore(
        store, job, project, embedder, &base, &hash, &learner, &trained,
    )?
    else {
        return Ok(()); // cancelled
    };
    let state = learner.to_bytes();
    let seconds = started.elapsed().as_secs_f64();
    let row = NewLearner {
        project_id: project.id,
        version: &version,
        base: &base,
        labels_hash: &hash,
        labels: learner.n as i64,
        last_annotation: newest,
        state: &state,
        rescored: rows.len() as i64,
        seconds,
        job_id: Some(job.id),
    };
    commit(store, job, &row, |tx, by| {
        for chunk in rows.chunks(SCORE_PAGE) {
            let batch: Vec<NewPrediction> =
                chunk.iter().map(|s| s.to_row(&project.labels)).collect();
            predictions::insert(tx, by, project.queue_order, &batch)?;
        }
        jobs::add_done(tx, job.id, rows.len() as i64)
    })?;
    tracing::info!(
        job = job.id,
        project = project.id,
        labels = learner.n,
        weight = learner.mix.weight,
        rescored = rows.len(),
        seconds = started.elapsed().as_secs_f64(),
        "retrained"
    );
    Ok(())
}

/// Stores a trained learner, and (through `predictions`, under the learner's provenance) its
/// predictions, and finishes the job: all in one transaction, and nothing when the job was
/// cancelled meanwhile.
fn commit(
    store: &Store,
    job: &Job,
    learner: &NewLearner,
    predictions: impl Fn(&Transaction, &Provenance) -> crate::store::Result<()>,
) -> Result<(), RunError> {
    store.write(|tx| {
        if jobs::status(tx, job.id)? != JobStatus::Running {
            return Ok(());
        }
        let learner_id = learning::insert_learner(tx, learner)?;
        let by = Provenance {
            model_id: learner.version.to_string(),
            prompt_version: learner.base.prompt_version.clone(),
            labels_hash: learner.labels_hash.to_string(),
            learner_id: Some(learner_id),
        };
        predictions(tx, &by)?;
        crate::store::rules::reapply_after_retrain(tx, job.project_id)?;
        jobs::finish(tx, job.id, JobStatus::Done, None)
    })?;
    Ok(())
}

fn model_error(e: impl std::fmt::Display) -> RunError {
    RunError::Model(e.to_string())
}

/// Embeds the project's items that have no embedding from `embedder` (those imported before
/// embeddings were kept, or never pre-labeled). False when the job was cancelled meanwhile.
fn embed_missing(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
    embedder: &str,
) -> Result<bool, RunError> {
    let mut after = 0;
    loop {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            return Ok(false);
        }
        let batch = store.read(|c| {
            learning::items_without_embedding(c, project.id, embedder, after, EMBED_BATCH)
        })?;
        let Some(&(last, _)) = batch.last() else {
            return Ok(true);
        };
        after = last;
        let (ids, texts): (Vec<i64>, Vec<String>) = batch.into_iter().unzip();
        let vectors = model.embed(texts).map_err(model_error)?;
        let rows: Vec<(i64, Vec<f32>)> = ids.into_iter().zip(vectors).collect();
        store.write(|tx| {
            learning::put_embeddings(tx, embedder, &rows)?;
            jobs::add_done(tx, job.id, rows.len() as i64)
        })?;
    }
}

/// An item's mixed distribution, kept as compact floats until it is written (a JSON object per
/// item would hold ~8 kB for 77 labels).
struct Scored {
    item_id: i64,
    p: Vec<f32>,
    lm_label: usize,
}

impl Scored {
    fn to_row(&self, labels: &[String]) -> NewPrediction {
        let p: Vec<f64> = self.p.iter().map(|&v| f64::from(v)).collect();
        mixed_row(self.item_id, labels, &p, self.lm_label)
    }
}

/// The prediction row of the mix `p`, recording the language model's own label (`lm_label`, an
/// index) beneath it: the dashboard compares both with what people answered.
pub(crate) fn mixed_row(
    item_id: i64,
    labels: &[String],
    p: &[f64],
    lm_label: usize,
) -> NewPrediction {
    let class = ClassPrediction::from_distribution(labels, p);
    let mut row = to_row(item_id, &Prediction::Class(class));
    row.output
        .insert("lm_label".into(), json!(labels[lm_label]));
    row
}

/// A project's learner, of the kind its task learns with.
pub(crate) enum Current {
    Labels(Learner),
    Spans(SpanLearner),
}

/// The project's latest learner, if it mixes with predictions made `by` (same model, prompt and
/// label set): pre-labeling then stores its mix for each new item too.
pub(crate) fn current_learner(
    store: &Store,
    project: &Project,
    by: &Provenance,
) -> Result<Option<(Provenance, Current)>, RunError> {
    Ok(match project.task {
        TaskKind::Ner => current(store, project.id, by, SpanLearner::from_bytes)?
            .map(|(by, l)| (by, Current::Spans(l))),
        _ => current(store, project.id, by, Learner::from_bytes)?
            .map(|(by, l)| (by, Current::Labels(l))),
    })
}

/// The latest learner row of the project that mixes with predictions made `by`, parsed.
fn current<L, E: std::fmt::Display>(
    store: &Store,
    project_id: i64,
    by: &Provenance,
    parse: impl Fn(&[u8]) -> Result<L, E>,
) -> Result<Option<(Provenance, L)>, RunError> {
    let Some(row) = store.read(|c| learning::latest_learner(c, project_id))? else {
        return Ok(None);
    };
    if (&row.base_model, &row.prompt_version, &row.labels_hash)
        != (&by.model_id, &by.prompt_version, &by.labels_hash)
    {
        return Ok(None);
    }
    let learner = parse(&row.state).map_err(model_error)?;
    Ok(Some((
        Provenance {
            model_id: row.version,
            prompt_version: row.prompt_version,
            labels_hash: row.labels_hash,
            learner_id: Some(row.id),
        },
        learner,
    )))
}

/// The mixed prediction of every item with an embedding that nobody has answered. None when
/// the job was cancelled meanwhile. A second thread reads (and parses) the next page while this
/// one mixes the current one: on two cores the read is half of the work.
#[allow(clippy::too_many_arguments)]
fn rescore(
    store: &Store,
    job: &Job,
    project: &Project,
    embedder: &str,
    base: &Base,
    labels_hash: &str,
    learner: &Learner,
    trained: &HashSet<i64>,
) -> Result<Option<Vec<Scored>>, RunError> {
    let seen = learner.seen();
    let dim = learner.dim().unwrap_or(0);
    let uniform = vec![1.0 / project.labels.len() as f64; project.labels.len()];
    // None: cancelled.
    let (pages, next) = std::sync::mpsc::sync_channel::<Result<Option<_>, RunError>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut after = 0;
            loop {
                let page = (|| {
                    if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
                        return Ok(None);
                    }
                    Ok(Some(store.read(|c| {
                        learning::to_score(
                            c,
                            project.id,
                            embedder,
                            base,
                            labels_hash,
                            &project.labels,
                            after,
                            SCORE_PAGE,
                        )
                    })?))
                })();
                let end = match &page {
                    Ok(Some(items)) => match items.last() {
                        Some(last) => {
                            after = last.item_id;
                            false
                        }
                        None => true,
                    },
                    _ => true,
                };
                if pages.send(page).is_err() || end {
                    return;
                }
            }
        });
        let mut out = Vec::new();
        for page in next {
            let Some(page) = page? else {
                return Ok(None);
            };
            if page.is_empty() {
                break;
            }
            for item in page {
                if trained.contains(&item.item_id) {
                    continue;
                }
                let lm = item.scores.as_deref().unwrap_or(&uniform);
                let x = features::join(dim, &item.embedding, item.lm_features.as_deref());
                let p = learner.predict(&x, lm, &seen);
                out.push(Scored {
                    item_id: item.item_id,
                    p: p.iter().map(|&v| v as f32).collect(),
                    lm_label: argmax(lm),
                });
            }
        }
        Ok(Some(out))
    })
}
