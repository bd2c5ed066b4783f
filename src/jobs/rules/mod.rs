//! A project's rules at work: measured over its items (`evaluate`, the figures of the rules
//! table and of the live preview) and applied (`run`, the job): the rules' votes, the language
//! model's label and the learner's join in a label model (Dawid–Skene, `learn::label_model`) or
//! a majority vote, and every covered item nobody answered gets the combined distribution as a
//! prediction of its own (model id `rules@HASH/METHOD+VOTERS`). The predictions and the job's
//! end commit in one transaction: a crash or cancel mid-way leaves the previous ones in force.
use crate::domain::{Project, TaskKind};
use crate::jobs::task::{labels_hash, to_row, RunError};
use crate::learn::label_model::{majority, FitOptions, LabelModel, Votes};
use crate::learn::{features, Learner};
use crate::rules::analysis::ItemVotes;
use crate::rules::matcher::Scratch;
use crate::rules::{Analysis, Rule, RuleSet};
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::predictions::{self, Provenance};
use crate::store::rules::{self as stored, ScanRow, StoredRule, Wants, MODEL_PREFIX};
use crate::store::{auto_accept, learning, projects, Store, StoreError};
use crate::tasks::classify::{argmax, ClassPrediction};
use crate::tasks::labeler::Prediction;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// Items read per page.
const PAGE: usize = 5_000;

mod spans;
use spans::evaluate_spans;

/// How the voters' labels become one distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Dawid–Skene: each voter's accuracy per class learned without gold labels.
    #[default]
    LabelModel,
    /// Each vote counts the same; ties split evenly.
    Majority,
}

impl Method {
    fn id(self) -> &'static str {
        match self {
            Method::LabelModel => "dawid-skene",
            Method::Majority => "majority",
        }
    }
}

/// The project's current rules, checked against its label set now (a rule whose label was
/// since removed is named) and compiled.
pub fn compile(store: &Store, project: &Project) -> Result<RuleSet, StoreError> {
    let current = store.read(|c| stored::current(c, project.id))?;
    compile_rules(store, project, checked(project, &current)?)
}

/// Stored rules checked against the project's label set now, in the order given.
pub fn checked(project: &Project, stored: &[StoredRule]) -> Result<Vec<Rule>, StoreError> {
    stored
        .iter()
        .map(|s| {
            s.spec
                .clone()
                .validated(project.task, &project.labels)
                .map_err(|e| StoreError::invalid("rules", format!("rule {:?}: {e}", s.spec.name)))
        })
        .collect()
}

/// Compiles `rules` for the project, reading the stored embeddings of the items its
/// similarity rules name.
pub fn compile_rules(
    store: &Store,
    project: &Project,
    rules: Vec<Rule>,
) -> Result<RuleSet, StoreError> {
    let mut examples: Vec<String> = Vec::new();
    for r in &rules {
        if let crate::rules::Matcher::Similar { examples: e, .. } = r.matcher() {
            examples.extend(e.iter().cloned());
        }
    }
    let vectors = if examples.is_empty() {
        HashMap::new()
    } else {
        store.read(|c| stored::embeddings_by_ext_id(c, project.id, &examples))?
    };
    RuleSet::compile(rules, &project.labels, &vectors).map_err(StoreError::Invalid)
}

/// An item a rule fired on, as the rules table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    pub item_id: i64,
    pub ext_id: String,
    pub text: String,
    /// The labels of the rules that fired, by rule name.
    pub votes: Vec<(String, String)>,
    pub model: Option<String>,
    pub human: Option<String>,
}

/// Which items of one rule to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sample {
    Hits,
    /// Hits where people, the model or another rule say otherwise.
    Disagreements,
}

/// What `evaluate` reads and gathers.
pub struct Scope {
    /// Read one item in this many (and every answered one); 1: all.
    pub sample_every: u32,
    /// Gather up to `limit` examples of this rule.
    pub examples: Option<(usize, Sample, usize)>,
    /// Only the examples are wanted: the scan stops once they are gathered.
    pub examples_only: bool,
}

impl Scope {
    /// Whether a scan that gathered `found` examples may stop.
    fn done(&self, found: usize) -> bool {
        self.examples_only && self.examples.is_some_and(|(_, _, limit)| found >= limit)
    }
}

/// The rule set's figures over the project (or a sample of it), with examples if asked.
pub fn evaluate(
    store: &Store,
    project: &Project,
    set: &RuleSet,
    scope: &Scope,
) -> Result<(Analysis, Vec<Example>), StoreError> {
    if project.task == TaskKind::Ner {
        return evaluate_spans(store, project, set, scope);
    }
    let humans = human_labels(store, project)?;
    let index = label_index(&project.labels);
    let mut analysis = Analysis::new(set.len());
    let mut examples = Vec::new();
    let wants = Wants {
        embeddings: set.needs_embeddings(),
        lm_features: None,
        sample_every: scope.sample_every,
        model_spans: false,
    };
    let label_of = |r: usize| set.label_of(r);
    scan(store, project.id, &wants, |page| {
        for (row, fired) in page.iter().zip(fired_on(set, page)) {
            let model = row
                .model_label
                .as_deref()
                .and_then(|l| index.get(l).copied());
            let human = humans.get(&row.item_id).copied();
            analysis.add(&ItemVotes {
                fired: &fired,
                label_of: &label_of,
                model,
                human,
            });
            if let Some((rule, sample, limit)) = scope.examples {
                if examples.len() < limit && fired.contains(&rule) {
                    let l = set.label_of(rule);
                    let wanted = match sample {
                        Sample::Hits => true,
                        Sample::Disagreements => {
                            human.is_some_and(|h| h != l)
                                || model.is_some_and(|m| m != l)
                                || fired.iter().any(|&o| set.label_of(o) != l)
                        }
                    };
                    if wanted {
                        examples.push(example(set, project, row, &fired, model, human));
                    }
                }
            }
        }
        Ok(!scope.done(examples.len()))
    })?;
    Ok((analysis, examples))
}

fn example(
    set: &RuleSet,
    project: &Project,
    row: &ScanRow,
    fired: &[usize],
    model: Option<usize>,
    human: Option<usize>,
) -> Example {
    let name = |l: usize| project.labels[l].clone();
    Example {
        item_id: row.item_id,
        ext_id: row.ext_id.clone(),
        text: row.text.clone(),
        votes: fired
            .iter()
            .map(|&r| (set.rules()[r].name().to_string(), name(set.label_of(r))))
            .collect(),
        model: model.map(name),
        human: human.map(name),
    }
}

/// The rules that fire on each row of a page, matched on every core: matching is most of a
/// scan's work once the reader thread keeps pages coming (`scripts/bench-rules.sh`).
fn fired_on(set: &RuleSet, page: &[ScanRow]) -> Vec<Vec<usize>> {
    use rayon::prelude::*;
    page.par_iter()
        .map_init(Scratch::default, |scratch, row| {
            let mut out = Vec::new();
            set.fired(&row.text, row.embedding.as_deref(), scratch, &mut out);
            out
        })
        .collect()
}

fn label_index(labels: &[String]) -> HashMap<&str, usize> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect()
}

/// What people settled on for each answered item, as label indices.
fn human_labels(store: &Store, project: &Project) -> Result<HashMap<i64, usize>, StoreError> {
    let (labels, _) = store.read(|c| learning::human_labels(c, project.id))?;
    let index = label_index(&project.labels);
    Ok(labels
        .into_iter()
        .filter_map(|(item, l)| index.get(l.as_str()).map(|&i| (item, i)))
        .collect())
}

/// Reads the project page by page on a second thread (the read is half of the work) and hands
/// each page to `each`; `each` answering false stops the scan.
fn scan(
    store: &Store,
    project_id: i64,
    wants: &Wants,
    mut each: impl FnMut(&[ScanRow]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let (pages, next) = std::sync::mpsc::sync_channel::<Result<Vec<ScanRow>, StoreError>>(1);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut after = 0;
            loop {
                let page = store.read(|c| stored::scan(c, project_id, after, PAGE, wants));
                let end = match &page {
                    Ok(rows) => match rows.last() {
                        Some(last) => {
                            after = last.item_id;
                            rows.len() < PAGE
                        }
                        None => true,
                    },
                    Err(_) => true,
                };
                if pages.send(page).is_err() || end {
                    return;
                }
            }
        });
        for page in next {
            let page = page?;
            if page.is_empty() || !each(&page)? {
                break;
            }
        }
        Ok(())
    })
}

/// A voter beside the rules.
struct Voters {
    rules: usize,
    /// The language model's label: voter `rules`.
    model: bool,
    /// The latest learner, its input length and the features it reads: voter `rules + model`.
    learner: Option<(Learner, usize)>,
}

impl Voters {
    fn count(&self) -> usize {
        self.rules + usize::from(self.model) + usize::from(self.learner.is_some())
    }

    fn names(&self, set: &RuleSet) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = set
            .rules()
            .iter()
            .map(|r| (r.name().to_string(), "rule"))
            .collect();
        if self.model {
            out.push(("model".into(), "model"));
        }
        if self.learner.is_some() {
            out.push(("learner".into(), "learner"));
        }
        out
    }
}

pub fn run(store: &Store, job: &Job) -> Result<(), RunError> {
    let project = store.read(|c| projects::get(c, job.project_id))?;
    if project.task == TaskKind::Ner {
        return spans::run(store, job, &project);
    }
    if project.task != TaskKind::Classification {
        return Err(RunError::Model(
            "rules label classification and NER projects".into(),
        ));
    }
    let params = store.read(|c| stored::job_params(c, job.id))?;
    let method: Method = serde_json::from_value(
        params
            .get("method")
            .cloned()
            .unwrap_or(json!("label_model")),
    )
    .map_err(|e| RunError::Model(format!("method: {e}")))?;
    let set = compile(store, &project)?;
    if set.is_empty() {
        return Err(RunError::Model("the project has no rules to apply".into()));
    }
    let learner = latest_learner(store, &project)?;
    let features_source = learner.as_ref().map(|(_, s)| s.clone());
    let voters = Voters {
        rules: set.len(),
        model: true,
        learner: learner.map(|(l, _)| {
            let dim = l.dim().unwrap_or(0);
            (l, dim)
        }),
    };
    let items = store.read(|c| crate::store::items::count(c, project.id))?;
    let model_id_prefix = format!("{MODEL_PREFIX}{}/{}", set.hash(), method.id());
    store.write(|tx| jobs::start_run(tx, job.id, &model_id_prefix, "", items, 0))?;

    let index = label_index(&project.labels);
    // People's answers anchor the label model's fit (its votes alone cannot tell which of two
    // disagreeing voters is right); they are never written over.
    let humans = human_labels(store, &project)?;
    let wants = Wants {
        embeddings: set.needs_embeddings() || voters.learner.is_some(),
        lm_features: features_source.as_deref(),
        sample_every: 1,
        model_spans: false,
    };
    // Every item's votes (the fit needs them all); the ids of those to predict.
    let mut all = Votes::new(voters.count(), project.labels.len());
    let mut predict: Vec<(i64, usize)> = Vec::new();
    let mut cancelled = false;
    let mut row_votes: Vec<(usize, usize)> = Vec::new();
    scan(store, project.id, &wants, |page| {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            cancelled = true;
            return Ok(false);
        }
        for (row, fired) in page.iter().zip(fired_on(&set, page)) {
            row_votes.clear();
            row_votes.extend(fired.iter().map(|&r| (r, set.label_of(r))));
            if let Some(m) = row.model_label.as_deref().and_then(|l| index.get(l)) {
                row_votes.push((set.len(), *m));
            }
            if let (Some((learner, dim)), Some(e)) = (&voters.learner, &row.embedding) {
                let x = features::join(*dim, e, row.lm_features.as_deref());
                row_votes.push((set.len() + 1, argmax(&learner.alone(&x))));
            }
            if !fired.is_empty() && !row.settled {
                predict.push((row.item_id, all.len()));
            }
            all.push(&row_votes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(&h) = humans.get(&row.item_id) {
                all.know_last(h)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            }
        }
        store.write(|tx| jobs::add_done(tx, job.id, page.len() as i64))?;
        Ok(true)
    })?;
    if cancelled {
        return Ok(());
    }
    let names = voters.names(&set);
    let fitted = match method {
        Method::LabelModel => Some(
            LabelModel::fit(&all, &FitOptions::balanced(&all, Some(set.len())))
                .map_err(|e| RunError::Model(e.to_string()))?,
        ),
        Method::Majority => None,
    };
    let distribution = |votes: &[(u16, u16)]| -> Vec<f64> {
        match &fitted {
            Some(m) => m.posterior(votes),
            None => majority(votes, project.labels.len())
                .unwrap_or_else(|| vec![1.0 / project.labels.len() as f64; project.labels.len()]),
        }
    };
    // A voter that never voted (no pre-labeling run) is left out of the name.
    let coverage = all.coverage();
    let voter_names: Vec<&str> = names
        .iter()
        .enumerate()
        .skip(set.len())
        .filter(|(i, _)| coverage.get(*i).is_some_and(|&c| c > 0))
        .map(|(_, (n, _))| n.as_str())
        .collect();
    let model_id = if voter_names.is_empty() {
        model_id_prefix.clone()
    } else {
        format!("{model_id_prefix}+{}", voter_names.join("+"))
    };
    // Items with the same votes get the same prediction: it is made and serialized once per
    // distinct vote pattern (21,915 of them for 651,517 items in the 1M bench).
    let mut pattern_of: HashMap<&[(u16, u16)], usize> = HashMap::new();
    let mut shared: Vec<Shared> = Vec::new();
    let mut rows: Vec<(i64, usize)> = Vec::with_capacity(predict.len());
    for &(item, at) in &predict {
        let votes = all.item(at);
        let next = shared.len();
        let p = *pattern_of.entry(votes).or_insert(next);
        if p == next {
            shared.push(Shared::of(
                &project.labels,
                &distribution(votes),
                votes,
                &names,
            ));
        }
        rows.push((item, p));
    }
    let summary = json!({
        "method": method,
        "rules_hash": set.hash(),
        "model_id": model_id,
        "items": all.len(),
        "predicted": predict.len(),
        // Every rule; the model and the learner where they voted.
        "voters": names.iter().enumerate()
            .filter(|(i, (_, kind))| *kind == "rule" || coverage.get(*i).is_some_and(|&c| c > 0))
            .map(|(i, (name, kind))| json!({
            "name": name,
            "kind": kind,
            "votes": coverage.get(i).copied().unwrap_or(0),
            "accuracy": fitted.as_ref().map(|m| m.accuracy(i)),
        })).collect::<Vec<_>>(),
        "iterations": fitted.as_ref().map(|m| m.iterations),
    });
    let ids: Vec<i64> = predict.iter().map(|(i, _)| *i).collect();
    let write = |tx: &rusqlite::Transaction, by: &Provenance| {
        let rows = rows.iter().map(|&(item, p)| shared[p].row(item));
        predictions::insert_rows(tx, by, project.queue_order, rows)
    };
    commit(store, job, &project, &model_id, &ids, write, &summary)?;
    tracing::info!(
        job = job.id,
        project = project.id,
        predicted = predict.len(),
        "rules applied"
    );
    Ok(())
}

/// Writes an apply's predictions (by `write`), auto-accepts those that qualify, records the
/// summary and finishes the job: one transaction, and nothing when the job was cancelled
/// meanwhile.
fn commit(
    store: &Store,
    job: &Job,
    project: &Project,
    model_id: &str,
    items: &[i64],
    write: impl FnOnce(&rusqlite::Transaction, &Provenance) -> Result<(), StoreError>,
    summary: &serde_json::Value,
) -> Result<(), StoreError> {
    store.write_bulk(|tx| {
        if jobs::status(tx, job.id)? != JobStatus::Running {
            return Ok(());
        }
        let by = Provenance {
            model_id: model_id.to_string(),
            prompt_version: String::new(),
            labels_hash: labels_hash(&project.labels),
            learner_id: None,
        };
        write(tx, &by)?;
        auto_accept::after_predictions(tx, project.id, items)?;
        stored::set_job_params(tx, job.id, summary)?;
        jobs::finish(tx, job.id, JobStatus::Done, None)
    })
}

/// An apply's scores are written to 4 decimals; those that round to 0 are left out.
const SCORE_SCALE: f64 = 1e4;

/// The prediction every item with one vote pattern gets: the combined distribution and the
/// votes behind it, serialized.
struct Shared {
    label: Option<String>,
    output: String,
    confidence: f64,
    margin: f64,
    entropy: f64,
}

impl Shared {
    fn of(
        labels: &[String],
        p: &[f64],
        votes: &[(u16, u16)],
        names: &[(String, &'static str)],
    ) -> Shared {
        let class = ClassPrediction::from_distribution(labels, p);
        let mut row = to_row(0, &Prediction::Class(class));
        // Every label's score at full precision made 60 % of a 600-byte row, and writing the
        // bytes was most of the apply; readers take a missing label as 0.
        let scores: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .zip(p)
            .map(|(l, &v)| (l, (v * SCORE_SCALE).round() / SCORE_SCALE))
            .filter(|(_, v)| *v > 0.0)
            .map(|(l, v)| (l.clone(), json!(v)))
            .collect();
        row.output
            .insert("scores".into(), serde_json::Value::Object(scores));
        let votes: serde_json::Map<String, serde_json::Value> = votes
            .iter()
            .map(|&(v, l)| (names[v as usize].0.clone(), json!(labels[l as usize])))
            .collect();
        row.output
            .insert("votes".into(), serde_json::Value::Object(votes));
        Shared {
            output: serde_json::Value::Object(row.output).to_string(),
            label: row.label,
            confidence: row.confidence,
            margin: row.margin,
            entropy: row.entropy,
        }
    }

    fn row(&self, item_id: i64) -> predictions::Row<'_> {
        predictions::Row {
            item_id,
            label: self.label.as_deref(),
            output: &self.output,
            confidence: self.confidence,
            margin: self.margin,
            entropy: self.entropy,
            truncated: false,
        }
    }
}

/// The project's latest learner and the `feature_source` of the features it reads.
fn latest_learner(store: &Store, project: &Project) -> Result<Option<(Learner, String)>, RunError> {
    let Some(row) = store.read(|c| learning::latest_learner(c, project.id))? else {
        return Ok(None);
    };
    if row.labels_hash != labels_hash(&project.labels) {
        return Ok(None); // trained over another label set
    }
    let learner = Learner::from_bytes(&row.state).map_err(|e| RunError::Model(e.to_string()))?;
    if learner.dim().is_none() {
        return Ok(None);
    }
    let source = learning::feature_source(&row.base_model, &row.prompt_version, &row.labels_hash);
    Ok(Some((learner, source)))
}
