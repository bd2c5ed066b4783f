//! Learning-loop benchmark: how long the project learner takes to train, and how long a retrain
//! takes to re-score a project, on synthetic data shaped like Banking77 embedded by
//! all-MiniLM-L6-v2 with the language model's features (77 labels, 384 + 576 floats per item).
//!
//! The data: one unit centre per label (the labels come in 11 groups of 7 whose centres share a
//! group direction, so neighbouring intents overlap), each item its label's centre plus Gaussian
//! noise, normalised; each label's name embedding near its centre (passed with
//! `TrainingSet::with_label_names`, as a retrain does); and per item a language-model
//! distribution that is peaked on the true label 60 % of the time and on another label
//! otherwise (the true label then usually second). Every run draws the same data (fixed seeds).
//!
//! 1. `Learner::train` on 100, 1,000 and 10,000 human labels: seconds (median of the repeats),
//!    the fitted mix, the fold accuracies and the peak RSS over the fit.
//! 2. `wick::jobs::retrain::train_and_rescore` on a real SQLite file: a classification project of
//!    100,000 items with 77 labels, each with a stored language-model prediction (from a finished
//!    `prelabel` job, as `learning::base` finds them) and an embedding, 1,000 of them imported
//!    with a label (imported labels are human labels for the learner). A retrain job is queued
//!    and marked running, and only the call itself is timed; afterwards the bench checks that
//!    99,000 learner predictions were written, and fails if not. Between repeats the learner's
//!    predictions are deleted (untimed), so every repeat writes into the same database. This
//!    part runs in a process of its own (the bench starts itself with `--rescore-child`), so its
//!    peak RSS is the retrain's, not the setup's.
//! 3. A breakdown of (2) by phase, timed with the same public functions the retrain calls, in
//!    its order (reading the labels with their embeddings and scores, training, reading the
//!    pages to re-score, mixing, building the prediction rows, inserting them, committing), and
//!    on its own the `to_score` query without JSON parsing, with and without mmap.
//!
//! Settings (environment): WICK_BENCH_REPEATS (3), WICK_BENCH_SIZES (100,1000,10000),
//! WICK_BENCH_ITEMS (100000), WICK_BENCH_HUMAN (1000), WICK_BENCH_RESCORE (1: run 2 and 3),
//! WICK_BENCH_BREAKDOWN (1: run 3). Output: a summary on stdout and `target/bench-learn.json`.
//! Run through scripts/bench-learn.sh.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Instant;
use wick::domain::{NewProject, TaskKind};
use wick::learn::features::join;
use wick::learn::{Learner, TrainingSet};
use wick::store::batches::ImportReport;
use wick::store::import;
use wick::store::jobs::{self, JobStatus};
use wick::store::learning;
use wick::store::predictions::{self, NewPrediction, Output, Provenance};
use wick::store::projects;
use wick::store::{Actor, Store};

const LABELS: usize = 77;
/// What a retrain reads per item: the 384-d embedding, then SmolLM2-135M's 576-d features.
const EMB_DIM: usize = 384;
const DIM: usize = EMB_DIM + 576;
const GROUPS: usize = 11;
/// Norm of the noise added to a label's centre before normalising (the centre has norm 1).
const NOISE: f64 = 3.5;
/// Norm of the noise on a label-name embedding.
const NAME_NOISE: f64 = 0.8;
/// Share of items whose language-model distribution peaks on the true label.
const LM_RIGHT: f64 = 0.6;
const EMBEDDER: &str = "bench-embedder";
const LM_MODEL: &str = "bench-lm";
const LM_PROMPT: &str = "bench-prompt-v1";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` field in MB (VmHWM: peak resident set, VmRSS: current).
fn self_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets this process's VmHWM to its current RSS (`clear_refs` 5); false where the kernel
/// refuses (the peak is then the process's peak so far).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn gaussian(rng: &mut StdRng) -> f64 {
    // Box-Muller.
    let u: f64 = rng.random::<f64>().max(1e-300);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn unit(v: &mut [f64]) {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

fn random_unit(rng: &mut StdRng) -> Vec<f64> {
    let mut v: Vec<f64> = (0..DIM).map(|_| gaussian(rng)).collect();
    unit(&mut v);
    v
}

/// The label set's geometry: a unit centre per label and each label's name embedding.
struct World {
    centres: Vec<Vec<f64>>,
    names: Vec<Vec<f32>>,
    label_names: Vec<String>,
}

impl World {
    fn new() -> World {
        let mut rng = StdRng::seed_from_u64(77);
        let groups: Vec<Vec<f64>> = (0..GROUPS).map(|_| random_unit(&mut rng)).collect();
        let centres: Vec<Vec<f64>> = (0..LABELS)
            .map(|l| {
                let own = random_unit(&mut rng);
                let mut c: Vec<f64> = groups[l % GROUPS]
                    .iter()
                    .zip(&own)
                    .map(|(g, o)| 0.85 * g + 0.5 * o)
                    .collect();
                unit(&mut c);
                c
            })
            .collect();
        let names = centres
            .iter()
            .map(|c| noisy(&mut rng, c, NAME_NOISE))
            .collect();
        let label_names = (0..LABELS)
            .map(|l| format!("banking_intent_{l:02}"))
            .collect();
        World {
            centres,
            names,
            label_names,
        }
    }

    /// One item of label `y`: its embedding and the language model's distribution.
    fn item(&self, rng: &mut StdRng, y: usize) -> (Vec<f32>, Vec<f64>) {
        let x = noisy(rng, &self.centres[y], NOISE);
        let peak = if rng.random::<f64>() < LM_RIGHT {
            y
        } else {
            let other = rng.random_range(0..LABELS - 1);
            if other >= y {
                other + 1
            } else {
                other
            }
        };
        let top = rng.random_range(0.35..0.95);
        let mut rest: Vec<f64> = (0..LABELS)
            .map(|l| {
                let w = (1.2 * gaussian(rng)).exp();
                // A wrong language model usually still ranks the true label high.
                if l == y && peak != y {
                    8.0 * w
                } else {
                    w
                }
            })
            .collect();
        rest[peak] = 0.0;
        let sum: f64 = rest.iter().sum();
        let mut p: Vec<f64> = rest.iter().map(|w| (1.0 - top) * w / sum).collect();
        p[peak] = top;
        (x, p)
    }
}

/// `centre` plus Gaussian noise of norm about `noise`, normalised, as f32.
fn noisy(rng: &mut StdRng, centre: &[f64], noise: f64) -> Vec<f32> {
    let sigma = noise / (DIM as f64).sqrt();
    let mut v: Vec<f64> = centre.iter().map(|c| c + sigma * gaussian(rng)).collect();
    unit(&mut v);
    v.into_iter().map(|x| x as f32).collect()
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Part 1: `Learner::train` at each size.
fn train_sizes(world: &World, sizes: &[usize], repeats: usize) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for &n in sizes {
        let mut rng = StdRng::seed_from_u64(1000 + n as u64);
        let mut set = TrainingSet::new(DIM, LABELS).with_label_names(&world.names)?;
        for _ in 0..n {
            let y = rng.random_range(0..LABELS);
            let (x, lm) = world.item(&mut rng, y);
            set.push(&x, y, Some(&lm))?;
        }
        let mut secs = Vec::new();
        let mut peak: Option<f64> = None;
        let mut learner = None;
        for _ in 0..repeats {
            let reset = reset_peak();
            let t = Instant::now();
            let l = Learner::train(&set)?;
            secs.push(t.elapsed().as_secs_f64());
            let hwm = self_mb("VmHWM:").filter(|_| reset);
            peak = match (peak, hwm) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if let Some(prev) = &learner {
                anyhow::ensure!(
                    Learner::hash(prev) == l.hash(),
                    "{n} labels: two trainings on the same answers gave different learners"
                );
            }
            learner = Some(l);
        }
        let l = learner.expect("at least one repeat");
        let row = json!({
            "labels": n,
            "seconds": round(median(&secs), 3),
            "runs": secs.iter().map(|s| round(*s, 3)).collect::<Vec<_>>(),
            "mix": {"kind": l.mix.kind, "weight": l.mix.weight, "temperature": round(l.mix.temperature, 3)},
            "l2": l.l2,
            "folds": {"scored": l.folds.scored, "lm_accuracy": round(l.folds.lm_accuracy, 3),
                      "mix_accuracy": round(l.folds.mix_accuracy, 3),
                      "lm_log_loss": round(l.folds.lm_log_loss, 3), "mix_log_loss": round(l.folds.mix_log_loss, 3)},
            "peak_rss_mb": peak.map(|p| round(p, 1)),
        });
        println!(
            "train {n:>6} labels   {:>7.3} s (runs {})   mix {:?} weight {:.2} T {:.2}   fold accuracy lm {:.3} -> mix {:.3}   peak RSS {} MB",
            median(&secs),
            secs.iter().map(|s| format!("{s:.3}")).collect::<Vec<_>>().join(", "),
            l.mix.kind,
            l.mix.weight,
            l.mix.temperature,
            l.folds.lm_accuracy,
            l.folds.mix_accuracy,
            row["peak_rss_mb"]
        );
        out.push(row);
    }
    Ok(out)
}

/// The stored prediction of a language-model distribution, shaped as src/jobs.rs `to_row`
/// makes it: {"label": L, "scores": {label: p, ...}} over every label.
fn lm_row(item_id: i64, labels: &[String], p: &[f64]) -> NewPrediction {
    let best = argmax(p);
    let mut sorted = p.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let entropy = -p
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|v| v * v.ln())
        .sum::<f64>();
    let mut output = Output::new();
    output.insert("label".into(), json!(labels[best]));
    output.insert(
        "scores".into(),
        Value::Object(
            labels
                .iter()
                .zip(p)
                .map(|(l, v)| (l.clone(), json!(v)))
                .collect(),
        ),
    );
    NewPrediction {
        item_id,
        label: Some(labels[best].clone()),
        output,
        confidence: sorted[0],
        margin: sorted[0] - sorted[1],
        entropy,
        truncated: false,
    }
}

struct Project {
    store: Store,
    project: wick::domain::Project,
    path: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
    db_mb: f64,
    setup_s: f64,
}

/// Part 2's database: `items` items with predictions and embeddings, `human` of them labeled.
fn build_project(world: &World, items: usize, human: usize) -> anyhow::Result<Project> {
    let t = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("wick-bench-learn")
        .tempdir()?;
    let path = dir.path().join("wick.db");
    let store = Store::open(&path)?;
    let actor = Actor::system();
    let project = store.write(|tx| {
        projects::create(
            tx,
            &actor,
            &NewProject {
                name: "banking-like".into(),
                task: TaskKind::Classification,
                labels: world.label_names.clone(),
                prompt: None,
                guidelines: None,
                queue_order: None,
                overlap: None,
                generation: None,
                gold_rate: None,
                precision_target: None,
                retrain_every: Some(0),
                near_duplicate_cosine: None,
            },
        )
    })?;
    let labels = project.labels.clone();
    let every = (items / human.max(1)).max(1);
    let mut rng = StdRng::seed_from_u64(2024);
    // Truth, embedding and language-model distribution of every item, drawn up front.
    let mut truth = Vec::with_capacity(items);
    let mut data = Vec::with_capacity(items);
    for _ in 0..items {
        let y = rng.random_range(0..LABELS);
        truth.push(y);
        data.push(world.item(&mut rng, y));
    }
    let rows = (0..items).map(|i| {
        Ok::<_, wick::formats::jsonl::BadLine>(wick::formats::import::ImportRow {
            line: i + 1,
            id: Some(format!("r{i:07}")),
            text: format!("synthetic banking question {i} about {}", labels[truth[i]]),
            meta: None,
            label: (i % every == 0 && i / every < human).then(|| labels[truth[i]].clone()),
            entities: None,
            gold: false,
        })
    });
    let report: ImportReport = import::import(&store, &actor, project.id, rows, |_| {})?;
    anyhow::ensure!(
        report.inserted as usize == items && report.annotations as usize == human,
        "import: {} items and {} labels, wanted {items} and {human} ({} errors: {:?})",
        report.inserted,
        report.annotations,
        report.error_count,
        report.errors.iter().take(3).collect::<Vec<_>>()
    );
    let ids: Vec<i64> = store.read(|c| {
        let mut stmt = c.prepare("SELECT id FROM items WHERE project_id = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([project.id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    })?;
    anyhow::ensure!(
        ids.len() == items,
        "{} item ids for {items} items",
        ids.len()
    );
    let by = Provenance {
        model_id: LM_MODEL.into(),
        prompt_version: LM_PROMPT.into(),
        labels_hash: wick::jobs::labels_hash(&labels),
        learner_id: None,
    };
    store.write(|tx| {
        tx.execute(
            "INSERT INTO jobs (project_id, kind, status, model_id, prompt_version, created_at)
             VALUES (?1, 'prelabel', 'done', ?2, ?3, 0)",
            rusqlite::params![project.id, LM_MODEL, LM_PROMPT],
        )?;
        Ok(())
    })?;
    for (chunk, rows) in ids.chunks(2000).zip(data.chunks(2000)) {
        let batch: Vec<NewPrediction> = chunk
            .iter()
            .zip(rows)
            .map(|(&id, (_, p))| lm_row(id, &labels, p))
            .collect();
        let embeddings: Vec<(i64, Vec<f32>)> = chunk
            .iter()
            .zip(rows)
            .map(|(&id, (x, _))| (id, x[..EMB_DIM].to_vec()))
            .collect();
        let views: Vec<learning::LmView> = chunk
            .iter()
            .zip(rows)
            .map(|(&item_id, (x, p))| learning::LmView {
                item_id,
                features: x[EMB_DIM..].to_vec(),
                scores: p.iter().map(|&v| v as f32).collect(),
            })
            .collect();
        let source = learning::feature_source(LM_MODEL, LM_PROMPT, &by.labels_hash);
        store.write(|tx| {
            predictions::insert(tx, &by, project.queue_order, &batch)?;
            learning::put_embeddings(tx, EMBEDDER, &embeddings)?;
            learning::put_lm_features(tx, &source, &views)
        })?;
    }
    // Start the timed part from a checkpointed database, as a long-running server would be.
    store.write(|tx| {
        tx.execute_batch("ANALYZE")?;
        Ok(())
    })?;
    store
        .read(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .ok();
    let db_mb = std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6);
    Ok(Project {
        store,
        project,
        path,
        _dir: Some(dir),
        db_mb,
        setup_s: t.elapsed().as_secs_f64(),
    })
}

fn count(store: &Store, sql: &str, param: i64) -> anyhow::Result<i64> {
    Ok(store.read(|c| Ok(c.query_row(sql, [param], |r| r.get(0))?))?)
}

/// Part 2: `train_and_rescore`, timed alone, `repeats` times.
fn rescore(
    world: &World,
    p: &Project,
    items: usize,
    human: usize,
    repeats: usize,
) -> anyhow::Result<Value> {
    let store = &p.store;
    let project = &p.project;
    let expected = (items - human) as i64;
    let mut secs = Vec::new();
    let mut peak: Option<f64> = None;
    let mut weight = 0.0;
    let mut rss_before = 0.0f64;
    let mut growth: Option<(f64, f64)> = None;
    for r in 0..repeats {
        // Untimed: clear the previous repeat's learner predictions, queue and start a retrain.
        store.write(|tx| {
            tx.execute("DELETE FROM predictions WHERE learner_id IS NOT NULL", [])?;
            Ok(())
        })?;
        let job = store.write(|tx| {
            let job = learning::queue_retrain(tx, &Actor::system(), project.id)?;
            jobs::start_run(tx, job.id, LM_MODEL, LM_PROMPT, items as i64, 0)?;
            jobs::get(tx, job.id)
        })?;
        anyhow::ensure!(
            job.status == JobStatus::Running,
            "retrain job {} is {:?}",
            job.id,
            job.status
        );
        let reset = reset_peak();
        let before = self_mb("VmRSS:");
        let t = Instant::now();
        wick::jobs::retrain::train_and_rescore(store, &job, project, EMBEDDER, &world.names)
            .map_err(|e| anyhow::anyhow!("train_and_rescore: {e}"))?;
        let s = t.elapsed().as_secs_f64();
        let hwm = self_mb("VmHWM:").filter(|_| reset);
        peak = match (peak, hwm) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        secs.push(s);
        let status = store.read(|c| jobs::status(c, job.id))?;
        anyhow::ensure!(
            status == JobStatus::Done,
            "retrain job {} ended {status:?}",
            job.id
        );
        let written = count(
            store,
            "SELECT COUNT(*) FROM predictions p JOIN items i ON i.id = p.item_id
             WHERE i.project_id = ?1 AND p.learner_id IS NOT NULL",
            project.id,
        )?;
        let distinct = count(
            store,
            "SELECT COUNT(DISTINCT p.item_id) FROM predictions p JOIN items i ON i.id = p.item_id
             WHERE i.project_id = ?1 AND p.learner_id IS NOT NULL",
            project.id,
        )?;
        anyhow::ensure!(
            written == expected && distinct == expected,
            "retrain {}: {written} learner predictions on {distinct} items, wanted {expected}",
            r + 1
        );
        let learner = store
            .read(|c| learning::latest_learner(c, project.id))?
            .ok_or_else(|| anyhow::anyhow!("no learner row after the retrain"))?;
        anyhow::ensure!(
            learner.labels == human as i64 && learner.rescored == expected,
            "learner row: {} labels, {} rescored",
            learner.labels,
            learner.rescored
        );
        weight = Learner::from_bytes(&learner.state)
            .map(|l| l.mix.weight)
            .unwrap_or(f64::NAN);
        eprintln!(
            "rescore run {}: {s:.2} s, {written} learner predictions, learner {} (weight {weight:.2}), peak RSS {} MB (RSS before the call {} MB)",
            r + 1,
            learner.version,
            hwm.map_or("?".into(), |h| format!("{h:.1}")),
            before.map_or("?".into(), |h| format!("{h:.1}"))
        );
        if r == 0 {
            rss_before = before.unwrap_or(0.0);
            let file = std::fs::metadata(&p.path).map_or(0.0, |m| m.len() as f64 / 1e6);
            growth = Some((file, db_size_mb(&p.path) - file));
        }
    }
    Ok(json!({
        "items": items,
        "human_labels": human,
        "rescored": expected,
        "seconds": round(median(&secs), 2),
        "runs": secs.iter().map(|s| round(*s, 2)).collect::<Vec<_>>(),
        "items_per_sec": round(expected as f64 / median(&secs), 0),
        "weight": weight,
        "peak_rss_mb": peak.map(|p| round(p, 1)),
        "rss_mb_before_first_call": round(rss_before, 1),
        "db_mb": round(p.db_mb, 1),
        "db_file_mb_after_first_retrain": growth.map(|g| round(g.0, 1)),
        "wal_mb_after_first_retrain": growth.map(|g| round(g.1, 1)),
    }))
}

/// Part 3: the phases of `train_and_rescore`, each through the public function it calls, in
/// the same order and pages (src/retrain.rs; its private `Scored::to_row` is copied), one after the other: the
/// retrain itself reads the next page on a second thread while it mixes the current one. The predictions are written and committed as the retrain does, under another
/// model id, and deleted afterwards (untimed). Also timed on their own, outside the total:
/// the `to_score` query without its parsing, and the JSON text of the rows.
fn breakdown(world: &World, p: &Project) -> anyhow::Result<Value> {
    let store = &p.store;
    let project = &p.project;
    let labels = &project.labels;
    let hash = wick::jobs::labels_hash(labels);
    let mut phases: Vec<(&str, f64)> = Vec::new();
    let mut t = Instant::now();
    let lap = |name: &'static str, t: &mut Instant, phases: &mut Vec<(&str, f64)>| {
        phases.push((name, t.elapsed().as_secs_f64()));
        *t = Instant::now();
    };
    let base = store
        .read(|c| learning::base(c, project.id))?
        .ok_or_else(|| anyhow::anyhow!("no base"))?;
    let (human, _) = store.read(|c| learning::human_labels(c, project.id))?;
    let ids: Vec<i64> = human.iter().map(|(i, _)| *i).collect();
    let vectors = store.read(|c| learning::embeddings_of(c, &ids))?;
    let source = learning::feature_source(&base.model_id, &base.prompt_version, &hash);
    let features = store.read(|c| learning::lm_features_of(c, &ids, &source))?;
    let scores = store.read(|c| learning::lm_scores(c, &ids, &base, &hash, labels))?;
    lap(
        "read labels, their embeddings and scores",
        &mut t,
        &mut phases,
    );
    let mut set = TrainingSet::new(DIM, labels.len()).with_label_names(&world.names)?;
    for (item, l) in &human {
        let y = labels.iter().position(|n| n == l).unwrap();
        let x = join(DIM, &vectors[item], features.get(item).map(Vec::as_slice));
        set.push(&x, y, scores.get(item).map(Vec::as_slice))?;
    }
    let learner = Learner::train(&set)?;
    lap("Learner::train", &mut t, &mut phases);
    let trained: HashSet<i64> = ids.iter().copied().collect();
    let seen = learner.seen();
    let (mut after, mut read_s, mut alone_s, mut mix_s) = (0i64, 0.0, 0.0, 0.0);
    let mut scored: Vec<(i64, Vec<f32>, usize)> = Vec::new();
    loop {
        let t0 = Instant::now();
        let page = store.read(|c| {
            learning::to_score(c, project.id, EMBEDDER, &base, &hash, labels, after, 2000)
        })?;
        read_s += t0.elapsed().as_secs_f64();
        let Some(last) = page.last().map(|p| p.item_id) else {
            break;
        };
        after = last;
        for item in page {
            if trained.contains(&item.item_id) {
                continue;
            }
            let lm = item
                .scores
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("item {} has no scores", item.item_id))?;
            let t2 = Instant::now();
            let q = learner.alone(&join(DIM, &item.embedding, item.lm_features.as_deref()));
            let t3 = Instant::now();
            let p = learner.mix.apply(lm, &q, &seen);
            scored.push((
                item.item_id,
                p.iter().map(|&v| v as f32).collect(),
                argmax(lm),
            ));
            let t4 = Instant::now();
            alone_s += (t3 - t2).as_secs_f64();
            mix_s += (t4 - t3).as_secs_f64();
        }
    }
    phases.push(("to_score pages (SQL + scores parse)", read_s));
    phases.push(("Learner::alone (77 dots)", alone_s));
    phases.push(("Mix::apply + f32 copy", mix_s));
    let by = Provenance {
        model_id: "breakdown".into(),
        prompt_version: LM_PROMPT.into(),
        labels_hash: hash.clone(),
        learner_id: None,
    };
    let (mut rows_s, mut insert_s) = (0.0, 0.0);
    t = Instant::now();
    store.write(|tx| {
        for chunk in scored.chunks(2000) {
            let t0 = Instant::now();
            let batch: Vec<NewPrediction> = chunk
                .iter()
                .map(|(id, p, lm_label)| {
                    let p: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
                    let mut row = lm_row(*id, labels, &p);
                    row.output
                        .insert("lm_label".into(), json!(labels[*lm_label]));
                    row
                })
                .collect();
            let t1 = Instant::now();
            predictions::insert(tx, &by, project.queue_order, &batch)?;
            rows_s += (t1 - t0).as_secs_f64();
            insert_s += t1.elapsed().as_secs_f64();
        }
        Ok(())
    })?;
    let write_s = t.elapsed().as_secs_f64();
    phases.push(("prediction rows (to_row)", rows_s));
    phases.push(("predictions::insert", insert_s));
    phases.push(("commit (+ WAL checkpoint)", write_s - rows_s - insert_s));
    let total: f64 = phases.iter().map(|(_, s)| s).sum();
    // Apart: the query alone, as the store's connections run it and with SQLite reading the
    // file through mmap and a bigger page cache; and the rows' JSON text alone.
    let (model, prompt) = (base.model_id.as_str(), base.prompt_version.as_str());
    let scan = |c: &rusqlite::Connection| -> wick::store::Result<i64> {
        let mut stmt = c.prepare(
            "SELECT i.id, e.vector, f.vector, f.scores,
               CASE WHEN f.scores IS NULL THEN
                 (SELECT p.output FROM predictions p WHERE p.item_id = i.id AND p.learner_id IS NULL
                    AND p.model_id = ?3 AND p.prompt_version = ?4 AND p.labels_hash = ?5 ORDER BY p.id DESC LIMIT 1)
               END
             FROM items i INDEXED BY items_project JOIN embeddings e ON e.item_id = i.id AND e.embedder = ?2
               LEFT JOIN lm_features f ON f.item_id = i.id AND f.source = ?8
             WHERE i.project_id = ?1 AND i.id > ?6 ORDER BY i.id LIMIT ?7",
        )?;
        let (mut after, mut bytes) = (0i64, 0i64);
        loop {
            let mut rows = stmt.query(rusqlite::params![
                project.id, EMBEDDER, model, prompt, hash, after, 2000, source
            ])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                after = r.get(0)?;
                for column in 1..=3 {
                    bytes += r.get_ref(column)?.as_blob().map_or(0, |b| b.len()) as i64;
                }
                bytes += r.get_ref(4)?.as_str().map_or(0, |s| s.len()) as i64;
                n += 1;
            }
            if n == 0 {
                return Ok(bytes);
            }
        }
    };
    let t0 = Instant::now();
    let bytes = store.read(|c| scan(c))?;
    let sql_only = t0.elapsed().as_secs_f64();
    let mapped = {
        let c = rusqlite::Connection::open_with_flags(
            &p.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        c.pragma_update(None, "mmap_size", 4i64 << 30)?;
        c.pragma_update(None, "cache_size", -262_144i64)?;
        let t0 = Instant::now();
        scan(&c)?;
        t0.elapsed().as_secs_f64()
    };
    let t0 = Instant::now();
    let mut json_bytes = 0usize;
    for chunk in scored.chunks(2000) {
        for (id, p, lm_label) in chunk {
            let p: Vec<f64> = p.iter().map(|&v| f64::from(v)).collect();
            let mut row = lm_row(*id, labels, &p);
            row.output
                .insert("lm_label".into(), json!(labels[*lm_label]));
            json_bytes += Value::Object(row.output.clone()).to_string().len();
        }
    }
    let json_s = t0.elapsed().as_secs_f64();
    store.write(|tx| {
        tx.execute("DELETE FROM predictions WHERE model_id = 'breakdown'", [])?;
        Ok(())
    })?;
    println!(
        "breakdown of one retrain, phase by phase ({} labels, {} items re-scored):",
        human.len(),
        scored.len()
    );
    for (name, s) in &phases {
        println!("  {name:<42} {s:>7.3} s  {:>5.1} %", 100.0 * s / total);
    }
    println!("  {:<42} {total:>7.3} s", "total");
    println!(
        "  apart: the to_score query alone (no parsing, {:.0} MB read) {sql_only:.3} s, {mapped:.3} s with mmap_size 4 GiB and a 256 MiB cache; the rows' JSON text alone (to_row + to_string, {:.0} MB) {json_s:.3} s",
        bytes as f64 / 1e6,
        json_bytes as f64 / 1e6
    );
    let mut out: serde_json::Map<String, Value> = phases
        .iter()
        .map(|(n, s)| (n.to_string(), json!(round(*s, 3))))
        .collect();
    out.insert("total".into(), json!(round(total, 3)));
    out.insert("to_score_sql_only".into(), json!(round(sql_only, 3)));
    out.insert("to_score_sql_only_mmap".into(), json!(round(mapped, 3)));
    out.insert("rows_json_text_only".into(), json!(round(json_s, 3)));
    out.insert(
        "json_mb_written".into(),
        json!(round(json_bytes as f64 / 1e6, 1)),
    );
    Ok(Value::Object(out))
}

/// The size of the database file and its WAL, in MB.
fn db_size_mb(path: &std::path::Path) -> f64 {
    let len = |p: std::path::PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    (len(path.to_path_buf()) + len(wal)) as f64 / 1e6
}

/// Part 2 in a process of its own, so that its peak RSS is the retrain's and not the setup's:
/// the bench runs itself with `--rescore-child DB PROJECT ITEMS HUMAN` and reads the JSON it
/// prints.
fn rescore_child(args: &[String]) -> anyhow::Result<()> {
    let path = std::path::PathBuf::from(&args[0]);
    let project_id: i64 = args[1].parse()?;
    let items: usize = args[2].parse()?;
    let human: usize = args[3].parse()?;
    let repeats: usize = env_or("WICK_BENCH_REPEATS", 3usize).max(1);
    let world = World::new();
    let store = Store::open(&path)?;
    let project = store.read(|c| projects::get(c, project_id))?;
    let p = Project {
        store,
        project,
        db_mb: db_size_mb(&path),
        path,
        _dir: None,
        setup_s: 0.0,
    };
    let r = rescore(&world, &p, items, human, repeats)?;
    println!("{r}");
    Ok(())
}

/// The figures as the Markdown table BENCHMARKS.md keeps.
fn print_table(report: &Value) {
    let runs = |v: &Value| {
        v["runs"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!("\n== table ({} repeats, median)", report["repeats"]);
    println!("| measurement | median s | runs (s) | peak RSS MB | mix weight | notes |");
    println!("|---|---|---|---|---|---|");
    for t in report["train"].as_array().into_iter().flatten() {
        let n = t["labels"].as_u64().unwrap_or(0);
        let goal = if n == 1000 { "; goal <= 2 s" } else { "" };
        println!(
            "| `Learner::train`, {n} labels | {} | {} | {} | {} ({}) | fold accuracy lm {} -> mix {}{goal} |",
            t["seconds"],
            runs(t),
            t["peak_rss_mb"],
            t["mix"]["weight"],
            t["mix"]["kind"].as_str().unwrap_or(""),
            t["folds"]["lm_accuracy"],
            t["folds"]["mix_accuracy"]
        );
    }
    let r = &report["rescore"];
    if !r.is_null() {
        println!(
            "| `train_and_rescore`, {} items, {} labels | {} | {} | {} | {} | {} learner predictions written ({:.0} items/s); database {} MB -> {} MB{} |",
            r["items"],
            r["human_labels"],
            r["seconds"],
            runs(r),
            r["peak_rss_mb"],
            r["weight"],
            r["rescored"],
            r["items_per_sec"].as_f64().unwrap_or(0.0),
            r["db_mb"],
            r["db_file_mb_after_first_retrain"],
            if r["items"] == 100_000 { "; goal <= 10 s" } else { "" }
        );
    }
    let b = &report["breakdown"];
    if let Some(b) = b.as_object() {
        let total = b.get("total").and_then(Value::as_f64).unwrap_or(0.0);
        println!("\n| phase of one retrain (breakdown) | s | share |");
        println!("|---|---|---|");
        for (name, s) in b {
            let apart = [
                "total",
                "to_score_sql_only",
                "to_score_sql_only_mmap",
                "rows_json_text_only",
                "json_mb_written",
            ];
            if let (Some(s), false) = (s.as_f64(), apart.contains(&name.as_str())) {
                println!("| {name} | {s:.3} | {:.0} % |", 100.0 * s / total);
            }
        }
        println!("| total | {total:.3} | |");
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--rescore-child") {
        return rescore_child(&args[at + 1..]);
    }
    let repeats: usize = env_or("WICK_BENCH_REPEATS", 3usize).max(1);
    let sizes: Vec<usize> = std::env::var("WICK_BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000,10000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    let items: usize = env_or("WICK_BENCH_ITEMS", 100_000usize);
    let human: usize = env_or("WICK_BENCH_HUMAN", 1000usize).min(items);
    let do_rescore = env_or("WICK_BENCH_RESCORE", 1u8) == 1;
    let do_breakdown = env_or("WICK_BENCH_BREAKDOWN", 1u8) == 1;
    println!(
        "== learner: {LABELS} labels, {DIM}-d embeddings, language model right {:.0} %, {repeats} repeats (median); rayon threads {}",
        100.0 * LM_RIGHT,
        rayon::current_num_threads()
    );
    let world = World::new();
    let train = train_sizes(&world, &sizes, repeats)?;
    let mut report = json!({
        "labels": LABELS, "dim": DIM, "repeats": repeats,
        "machine": {"cores": std::thread::available_parallelism().map_or(0, |n| n.get())},
        "train": train,
    });
    let goal = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut failures = Vec::new();
    if let Some(t) = train.iter().find(|t| t["labels"] == 1000) {
        let s = t["seconds"].as_f64().unwrap_or(f64::INFINITY);
        println!(
            "goal: train on 1,000 labels <= 2 s: {s:.3} s, {}",
            goal(s <= 2.0)
        );
        report["goals"]["train_1000_le_2s"] = json!(s <= 2.0);
    }
    if do_rescore {
        println!("== re-score: {items} items, {human} labeled; building the database (untimed)");
        let p = build_project(&world, items, human)?;
        println!("   setup {:.1} s, database {:.0} MB", p.setup_s, p.db_mb);
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("--rescore-child")
            .arg(&p.path)
            .arg(p.project.id.to_string())
            .arg(items.to_string())
            .arg(human.to_string())
            .stderr(std::process::Stdio::inherit())
            .output()?;
        anyhow::ensure!(
            child.status.success(),
            "the re-score process failed ({})",
            child.status
        );
        let mut r: Value = serde_json::from_slice(&child.stdout)?;
        r["setup_seconds"] = json!(round(p.setup_s, 1));
        r["db_mb"] = json!(round(p.db_mb, 1));
        let s = r["seconds"].as_f64().unwrap_or(f64::INFINITY);
        println!(
            "rescore {items} items: {s:.2} s median (runs {}), {} learner predictions, peak RSS {} MB (the re-score process, {} MB before its first call); database {} MB -> {} MB after one retrain (+ WAL {} MB)",
            r["runs"], r["rescored"], r["peak_rss_mb"], r["rss_mb_before_first_call"], r["db_mb"],
            r["db_file_mb_after_first_retrain"], r["wal_mb_after_first_retrain"]
        );
        if items == 100_000 {
            println!(
                "goal: 100k items re-scored <= 10 s: {s:.2} s, {}",
                goal(s <= 10.0)
            );
            report["goals"]["rescore_100k_le_10s"] = json!(s <= 10.0);
        }
        report["rescore"] = r;
        if do_breakdown {
            match breakdown(&world, &p) {
                Ok(b) => report["breakdown"] = b,
                Err(e) => failures.push(format!("breakdown: {e}")),
            }
        }
    }
    report["peak_rss_mb_process"] = json!(self_mb("VmHWM:").map(|p| round(p, 1)));
    print_table(&report);
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let out = target.join("bench-learn.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    println!("json: {}", out.display());
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}
