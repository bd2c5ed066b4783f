//! `wick eval --train`: the learner trained from labeled rows as if people had answered them,
//! and its figures on a test file beside the language model's, at one or several sizes.
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::time::Instant;
use wick::engine::SentenceEmbedder;
use wick::learn::{Learner, TrainingSet};
use wick::tasks::labeler::{Labeler, Prediction};
use wick::tasks::labels::LabelSet;
use wick::tasks::metrics::{self, ClassificationReport};

/// Texts and their gold label indices.
#[derive(Default)]
pub struct Labeled {
    pub texts: Vec<String>,
    pub gold: Vec<usize>,
}

/// What `wick eval --train` was asked for.
pub struct CurveOptions {
    /// Training sizes, one row each.
    pub sizes: Vec<usize>,
    /// One size without --curve: the report keeps the zero-shot report's top-level fields.
    pub single: bool,
    pub json: bool,
    /// Each label's phrase counts as one more answer (off only for comparison).
    pub names: bool,
    /// The learner reads the language model's features beside the embeddings (off only for
    /// comparison).
    pub lm_features: bool,
    /// Also score the test rows with this many retrieved examples in the prompt.
    pub few_shot: Option<usize>,
}

pub fn curve(
    model: &wick::tasks::backend::Backend,
    labeler: &Labeler,
    labels: &LabelSet,
    train: &Labeled,
    test: &Labeled,
    opts: &CurveOptions,
) -> Result<()> {
    let CurveOptions {
        sizes,
        single,
        json: as_json,
        names,
        lm_features,
        few_shot,
    } = opts;
    let (single, as_json, names, few_shot) = (*single, *as_json, *names, *few_shot);
    let embedder = model.embedder().context(
        "--train needs the sentence embedder (all-MiniLM-L6-v2 next to the model, or --embedder DIR)",
    )?;
    let most = sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .min(train.texts.len());
    let bar = super::progress((most + test.texts.len()) as u64);
    let read = Reader {
        labeler,
        embedder,
        lm_features: *lm_features,
    };
    let (lm_train, emb_train) = read.rows(&train.texts[..most], &bar)?;
    let (lm_test, emb_test) = read.rows(&test.texts, &bar)?;
    bar.finish_and_clear();
    let dim = emb_test.first().map_or(0, Vec::len);
    let names = match names {
        true => Some(
            read.rows(&labels.phrases, &indicatif::ProgressBar::hidden())?
                .1,
        ),
        false => None,
    };
    let lm_figures = figures(&test.gold, &lm_test, labels.len());
    if !as_json && !single {
        println!(
            "{:>7}  {:>22}  {:>22}  {:>22}  {:>6}",
            "train_n",
            "lm acc / F1 / ECE",
            "learner acc / F1 / ECE",
            "mix acc / F1 / ECE",
            "weight"
        );
    }
    for &size in sizes {
        let n = size.min(most);
        let mut set = training_set(dim, labels.len(), names.as_deref())?;
        for i in 0..n {
            set.push(&emb_train[i], train.gold[i], Some(&lm_train[i]))?;
        }
        let start = Instant::now();
        let learner = Learner::train(&set);
        let seconds = start.elapsed().as_secs_f64();
        let mut row = Map::new();
        row.insert("train_n".into(), json!(n));
        row.insert("n".into(), json!(test.texts.len()));
        row.insert("lm".into(), report(&lm_figures));
        let mix_figures = match &learner {
            Ok(l) => {
                let seen = l.seen();
                let alone: Vec<Vec<f64>> = emb_test.iter().map(|e| l.alone(e)).collect();
                let mixed: Vec<Vec<f64>> = emb_test
                    .iter()
                    .zip(&lm_test)
                    .map(|(e, lm)| l.predict(e, lm, &seen))
                    .collect();
                row.insert(
                    "learner".into(),
                    report(&figures(&test.gold, &alone, labels.len())),
                );
                row.insert("mix_kind".into(), json!(l.mix.kind));
                row.insert("weight".into(), json!(l.mix.weight));
                row.insert("temperature".into(), json!(l.mix.temperature));
                row.insert("l2".into(), json!(l.l2));
                row.insert("labels_seen".into(), json!(l.used.len()));
                row.insert("train_seconds".into(), json!(seconds));
                figures(&test.gold, &mixed, labels.len())
            }
            Err(e) => {
                row.insert("learner".into(), Value::Null);
                row.insert("learner_error".into(), json!(e.to_string()));
                lm_figures.clone()
            }
        };
        row.insert("mix".into(), report(&mix_figures));
        if single {
            // The single-size report keeps the zero-shot report's top-level fields.
            for (k, v) in [
                ("accuracy", mix_figures.0.accuracy),
                ("macro_f1", mix_figures.0.macro_f1),
                ("ece", mix_figures.0.ece),
            ] {
                row.insert(k.into(), json!(v));
            }
        }
        if as_json {
            println!("{}", Value::Object(row));
        } else if single {
            for (k, v) in &row {
                println!("{k:>14}  {v}");
            }
        } else {
            let cell = |v: Option<&Value>| match v {
                Some(Value::Object(m)) => format!(
                    "{:.3} / {:.3} / {:.3}",
                    m["accuracy"].as_f64().unwrap_or(0.0),
                    m["macro_f1"].as_f64().unwrap_or(0.0),
                    m["ece"].as_f64().unwrap_or(0.0)
                ),
                _ => "-".into(),
            };
            println!(
                "{n:>7}  {:>22}  {:>22}  {:>22}  {:>6}",
                cell(row.get("lm")),
                cell(row.get("learner")),
                cell(row.get("mix")),
                row.get("weight")
                    .and_then(Value::as_f64)
                    .map_or("-".into(), |w| format!("{w:.2}"))
            );
        }
    }
    if let Some(k) = few_shot {
        let n = sizes.iter().copied().max().unwrap_or(0).min(most);
        let texts: Vec<String> = emb_test
            .iter()
            .zip(&test.texts)
            .map(|(e, text)| {
                few_shot_text(
                    e,
                    text,
                    &emb_train[..n],
                    &train.texts[..n],
                    &train.gold[..n],
                    labels,
                    k,
                )
            })
            .collect();
        let bar = super::progress(texts.len() as u64);
        let lm = distributions(labeler, &texts, &bar)?.0;
        bar.finish_and_clear();
        let (r, conf) = figures(&test.gold, &lm, labels.len());
        let row = json!({"few_shot": k, "train_n": n, "n": test.texts.len(),
            "lm": report(&(r, conf))});
        println!("{row}");
    }
    Ok(())
}

/// The item's text after its `k` most similar training rows, each with its label's phrase: the
/// few-shot prompt the retrieval experiment scores (BENCHMARKS.md).
fn few_shot_text(
    embedding: &[f32],
    text: &str,
    train: &[Vec<f32>],
    train_texts: &[String],
    gold: &[usize],
    labels: &LabelSet,
    k: usize,
) -> String {
    let mut order: Vec<usize> = (0..train.len()).collect();
    let cos = |i: usize| wick::engine::cosine(embedding, &train[i]);
    order.sort_by(|&a, &b| cos(b).total_cmp(&cos(a)));
    let mut out = String::from("Examples:\n");
    for &i in order.iter().take(k).rev() {
        out.push_str(&format!(
            "\"{}\": {}\n",
            train_texts[i], labels.phrases[gold[i]]
        ));
    }
    out.push_str(&format!("Now this one:\n{text}"));
    out
}

/// An empty training set of `dim` floats, each label's phrase as one answer when given.
fn training_set(dim: usize, labels: usize, names: Option<&[Vec<f32>]>) -> Result<TrainingSet> {
    let set = TrainingSet::new(dim, labels);
    Ok(match names {
        Some(names) => set.with_label_names(names)?,
        None => set,
    })
}

/// Per text, in order: the language model's features, or the learner's whole input.
type Features = Vec<Vec<f32>>;

/// Reads texts as the learner sees them: the language model's calibrated distribution, and the
/// learner's input (the embedding, then the language model's features when asked).
struct Reader<'a> {
    labeler: &'a Labeler<'a>,
    embedder: &'a SentenceEmbedder,
    lm_features: bool,
}

impl Reader<'_> {
    fn rows(
        &self,
        texts: &[String],
        bar: &indicatif::ProgressBar,
    ) -> Result<(Vec<Vec<f64>>, Features)> {
        let (lm, features) = distributions(self.labeler, texts, bar)?;
        let mut x = embed(self.embedder, texts)?;
        if self.lm_features {
            x.iter_mut().zip(features).for_each(|(x, f)| x.extend(f));
        }
        Ok((lm, x))
    }
}

/// `wick eval --folds K`: every row of `rows` predicted by a learner trained on the other
/// folds (row i in fold i mod K), the language model read once per row. Prints the pooled
/// figures of the language model alone, the learner alone and the mix, and each fold's weight.
pub fn folds(
    model: &wick::tasks::backend::Backend,
    labeler: &Labeler,
    labels: &LabelSet,
    rows: &Labeled,
    k: usize,
    opts: &CurveOptions,
) -> Result<()> {
    anyhow::ensure!(
        k >= 2 && k <= rows.texts.len(),
        "--folds needs 2 to {} folds (one row at least in each)",
        rows.texts.len()
    );
    let embedder = model.embedder().context(
        "--folds needs the sentence embedder (all-MiniLM-L6-v2 next to the model, or --embedder DIR)",
    )?;
    let read = Reader {
        labeler,
        embedder,
        lm_features: opts.lm_features,
    };
    let bar = super::progress((rows.texts.len() + labels.len()) as u64);
    let (lm, x) = read.rows(&rows.texts, &bar)?;
    let names = match opts.names {
        true => Some(read.rows(&labels.phrases, &bar)?.1),
        false => None,
    };
    bar.finish_and_clear();
    let dim = x.first().map_or(0, Vec::len);
    let n = rows.texts.len();
    let (mut alone, mut mixed) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut weights = Vec::with_capacity(k);
    for fold in 0..k {
        let mut set = training_set(dim, labels.len(), names.as_deref())?;
        for i in (0..n).filter(|i| i % k != fold) {
            set.push(&x[i], rows.gold[i], Some(&lm[i]))?;
        }
        let learner = Learner::train(&set).with_context(|| format!("fold {fold}"))?;
        let seen = learner.seen();
        for i in (0..n).filter(|i| i % k == fold) {
            alone[i] = learner.alone(&x[i]);
            mixed[i] = learner.predict(&x[i], &lm[i], &seen);
        }
        weights.push(learner.mix.weight);
    }
    let mut row = Map::new();
    row.insert("folds".into(), json!(k));
    row.insert("n".into(), json!(n));
    row.insert("train_n".into(), json!(n - n.div_ceil(k)));
    for (key, dists) in [("lm", &lm), ("learner", &alone), ("mix", &mixed)] {
        row.insert(
            key.into(),
            report(&figures(&rows.gold, dists, labels.len())),
        );
    }
    row.insert("weights".into(), json!(weights));
    match opts.json {
        true => println!("{}", Value::Object(row)),
        false => {
            println!("{k} folds of {n} rows, every row predicted by the other folds' learner");
            for key in ["lm", "learner", "mix"] {
                let m = &row[key];
                println!(
                    "{key:>8}  accuracy {:.3}  macro-F1 {:.3}  ECE {:.3}",
                    m["accuracy"].as_f64().unwrap_or(0.0),
                    m["macro_f1"].as_f64().unwrap_or(0.0),
                    m["ece"].as_f64().unwrap_or(0.0)
                );
            }
            println!("  weights {weights:.2?}");
        }
    }
    Ok(())
}

/// The language model's calibrated distribution of each text, in label-set order, and its
/// features of the text.
fn distributions(
    labeler: &Labeler,
    texts: &[String],
    bar: &indicatif::ProgressBar,
) -> Result<(Vec<Vec<f64>>, Features)> {
    let (mut dists, mut features) = (Vec::with_capacity(texts.len()), Vec::new());
    for chunk in texts.chunks(super::CHUNK) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for p in labeler.label(&refs)? {
            match p {
                Prediction::Class(c) => {
                    dists.push(c.scores.iter().map(|(_, s)| *s).collect());
                    features.push(c.features.unwrap_or_default());
                }
                Prediction::Entities { .. } => anyhow::bail!("--train applies to classification"),
            }
        }
        bar.inc(chunk.len() as u64);
    }
    Ok((dists, features))
}

fn embed(embedder: &SentenceEmbedder, texts: &[String]) -> Result<Vec<Vec<f32>>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(embedder.embed(&refs)?.0)
}

/// The figures, and the mean confidence (above the accuracy: overconfident).
fn figures(gold: &[usize], dists: &[Vec<f64>], labels: usize) -> (ClassificationReport, f64) {
    let (pred, conf): (Vec<usize>, Vec<f64>) = dists
        .iter()
        .map(|p| {
            p.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or((0, 0.0), |(i, &v)| (i, v))
        })
        .unzip();
    let mean = conf.iter().sum::<f64>() / conf.len().max(1) as f64;
    (metrics::classification(gold, &pred, &conf, labels), mean)
}

fn report((r, confidence): &(ClassificationReport, f64)) -> Value {
    json!({"accuracy": r.accuracy, "macro_f1": r.macro_f1, "ece": r.ece, "mean_confidence": confidence})
}
