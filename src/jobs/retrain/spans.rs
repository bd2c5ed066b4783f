//! Retraining an NER project: the span learner is trained from people's current span answers on
//! the embedder's word states, mixed with the zero-shot candidates pre-labeling kept, and every
//! sentence nobody has answered gets the mixed spans (the language model is not asked again).
//!
//! Word states are not stored (hundreds of floats per word); the embedder recomputes them, in
//! pages, for the answered sentences and for those re-scored. As for classification, the
//! learner and all of its predictions commit in one transaction.
use super::{model_error, NO_BASE};
use crate::domain::Project;
use crate::domain::Span;
use crate::jobs::task::{labels_hash, to_row, RunError};
use crate::learn::spans::{Answered, SpanLearner, TypedSpan, ZeroShot};
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::learning::{self, Base, NewLearner};
use crate::store::predictions::{self, NewPrediction};
use crate::store::Store;
use crate::tasks::labeler::Prediction;
use crate::tasks::ner::{self, entities};
use crate::tasks::worker::ModelHandle;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// Sentences read (and their word states computed) per step: a cancel is noticed between steps.
const PAGE: usize = 64;

/// The zero-shot threshold the folds compare with when no answered sentence was pre-labeled
/// (the zero-shot side is then empty, so it only names the figure).
const NO_ZERO_SHOT_THRESHOLD: f64 = 0.5;

pub(super) fn run(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
) -> Result<(), RunError> {
    let started = Instant::now();
    let hash = labels_hash(&project.labels);
    let base = store
        .read(|c| learning::base(c, project.id))?
        .unwrap_or(Base {
            model_id: NO_BASE.into(),
            prompt_version: String::new(),
        });
    let source = learning::feature_source(&base.model_id, &base.prompt_version, &hash);
    let (answers, newest) = store.read(|c| learning::human_spans(c, project.id))?;
    let items = store.read(|c| crate::store::items::count(c, project.id))?;
    store
        .write(|tx| jobs::start_run(tx, job.id, &base.model_id, &base.prompt_version, items, 0))?;

    let gold: HashMap<i64, &[Span]> = answers.iter().map(|(i, s)| (*i, s.as_slice())).collect();
    let ids: Vec<i64> = answers.iter().map(|(i, _)| *i).collect();
    let mut set = Vec::with_capacity(ids.len());
    let mut threshold = None;
    for page in ids.chunks(PAGE) {
        let Some(read) = read_page(store, model, job, project, &source, page)? else {
            return Ok(()); // cancelled
        };
        for sentence in read {
            threshold = threshold.or(sentence.zero_shot.as_ref().map(|z| z.threshold));
            let spans = gold.get(&sentence.item_id).copied().unwrap_or_default();
            set.push(Answered {
                words: sentence.words,
                gold: typed(project, spans),
                zero_shot: sentence.zero_shot.map(|z| z.candidates).unwrap_or_default(),
            });
        }
    }
    let learner = SpanLearner::train(
        &set,
        project.labels.len(),
        threshold.unwrap_or(NO_ZERO_SHOT_THRESHOLD),
    )
    .map_err(model_error)?;
    let trained: HashSet<i64> = ids.into_iter().collect();
    let Some(rows) = rescore(store, model, job, project, &source, &learner, &trained)? else {
        return Ok(());
    };
    let version = format!("{}+spans@{}/{}", base.model_id, learner.hash(), learner.n);
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
    super::commit(store, job, &row, |tx, by| {
        predictions::insert(tx, by, project.queue_order, &rows)
    })?;
    tracing::info!(
        job = job.id,
        project = project.id,
        sentences = learner.n,
        weight = learner.weight,
        classifier_weight = learner.classifier_weight,
        rescored = rows.len(),
        seconds = started.elapsed().as_secs_f64(),
        "retrained spans"
    );
    Ok(())
}

/// A sentence as the learner reads it.
struct Read {
    item_id: i64,
    text: String,
    words: crate::learn::spans::Words,
    truncated: bool,
    zero_shot: Option<ZeroShot>,
}

/// Reads `ids`' texts, zero-shot candidates and word states, and counts them as done. None when
/// the job was cancelled.
fn read_page(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
    source: &str,
    ids: &[i64],
) -> Result<Option<Vec<Read>>, RunError> {
    let (status, texts, mut stored) = store.read(|c| {
        Ok((
            jobs::status(c, job.id)?,
            learning::texts_of(c, ids)?,
            learning::span_candidates_of(c, ids, source)?,
        ))
    })?;
    if status != JobStatus::Running {
        return Ok(None);
    }
    let states = model
        .word_states(texts.iter().map(|(_, t)| t.clone()).collect())
        .map_err(model_error)?;
    let mut out = Vec::with_capacity(texts.len());
    for ((item_id, text), (states, truncated)) in texts.into_iter().zip(states) {
        // A candidate row that no longer parses (or is for another label set) is left out:
        // the sentence is then read by the tagger alone.
        let zero_shot = stored
            .remove(&item_id)
            .and_then(|b| ZeroShot::from_bytes(&b).ok())
            .filter(|z| {
                z.candidates
                    .iter()
                    .all(|c| c.p.len() == project.labels.len())
            });
        out.push(Read {
            item_id,
            words: ner::words(&text, &states).map_err(model_error)?,
            text,
            truncated,
            zero_shot,
        });
    }
    store.write(|tx| jobs::add_done(tx, job.id, out.len() as i64))?;
    Ok(Some(out))
}

/// People's spans as the learner's type indices; a span of a type the project no longer has is
/// left out.
fn typed(project: &Project, spans: &[Span]) -> Vec<TypedSpan> {
    spans
        .iter()
        .filter_map(|s| {
            Some(TypedSpan {
                start: s.start,
                end: s.end,
                kind: project.labels.iter().position(|l| *l == s.label)?,
            })
        })
        .collect()
}

/// The mixed prediction of every sentence nobody has answered; None when cancelled.
fn rescore(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
    source: &str,
    learner: &SpanLearner,
    trained: &HashSet<i64>,
) -> Result<Option<Vec<NewPrediction>>, RunError> {
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read(|c| learning::texts_after(c, project.id, after, PAGE))?;
        let Some(&(last, _)) = page.last() else {
            return Ok(Some(rows));
        };
        after = last;
        let ids: Vec<i64> = page
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !trained.contains(id))
            .collect();
        let Some(read) = read_page(store, model, job, project, source, &ids)? else {
            return Ok(None);
        };
        rows.extend(read.iter().map(|s| mixed_row(project, learner, s)));
    }
}

/// The learner's mix for freshly pre-labeled sentences: (item, text, zero-shot reading) each.
pub(crate) fn mix_spans(
    model: &ModelHandle,
    project: &Project,
    learner: &SpanLearner,
    sentences: Vec<(i64, String, ZeroShot)>,
) -> Result<Vec<NewPrediction>, RunError> {
    let states = model
        .word_states(sentences.iter().map(|(_, t, _)| t.clone()).collect())
        .map_err(model_error)?;
    sentences
        .into_iter()
        .zip(states)
        .map(|((item_id, text, zero_shot), (states, truncated))| {
            let read = Read {
                item_id,
                words: ner::words(&text, &states).map_err(model_error)?,
                text,
                truncated,
                zero_shot: Some(zero_shot),
            };
            Ok(mixed_row(project, learner, &read))
        })
        .collect()
}

/// The mixed spans of one sentence, recording the zero-shot spans beneath them (the
/// dashboard's curve compares both with what people answered).
fn mixed_row(project: &Project, learner: &SpanLearner, s: &Read) -> NewPrediction {
    let zero_shot = s.zero_shot.clone().unwrap_or_default();
    let shown = learner.predict(&s.words, &zero_shot.candidates);
    let lm = entities(&s.text, &zero_shot.spans(), &project.labels);
    let mut row = to_row(
        s.item_id,
        &Prediction::Entities {
            entities: entities(&s.text, &shown, &project.labels),
            truncated: s.truncated,
            zero_shot,
        },
    );
    row.output.insert("lm_entities".into(), json!(lm));
    row
}
