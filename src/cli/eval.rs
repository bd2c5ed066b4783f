//! `wick eval`: zero-shot figures against gold labels or entities.
use super::{ModelArgs, TaskArgs, CHUNK};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use wick::domain::Span;
use wick::formats::jsonl::{rows, BadLine, TextRow};
use wick::tasks::labeler::{Prediction, Task};
use wick::tasks::metrics;

#[derive(Args)]
pub struct EvalArgs {
    #[command(flatten)]
    task: TaskArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// JSONL rows with "text" and a gold "label" (or "entities" for ner).
    data: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write every row with its prediction here (JSONL), for error analysis.
    #[arg(long)]
    predictions: Option<PathBuf>,
    /// Rows with gold labels (or "entities" for ner) to train the learner on, as if people had
    /// given them; the figures are then those of the learner mixed with the model.
    #[arg(long)]
    train: Option<PathBuf>,
    /// Train on the first N rows of --train (default: all).
    #[arg(long, requires = "train", conflicts_with = "curve")]
    train_n: Option<usize>,
    /// A learning curve: comma-separated training sizes, one row each for the language model
    /// alone, the learner alone and the mix.
    #[arg(long, requires = "train", value_delimiter = ',')]
    curve: Option<Vec<usize>>,
    /// The learner is trained on the answers alone, without each label's phrase as one more
    /// answer (for comparison only).
    #[arg(long, hide = true, requires = "train")]
    learner_without_names: bool,
    /// The learner reads the sentence embeddings alone, without the language model's
    /// features (for comparison only).
    #[arg(long, hide = true, requires = "train")]
    learner_without_lm_features: bool,
    /// Also score each test row with its K most similar training rows and their labels as
    /// examples in the prompt (the few-shot retrieval experiment in BENCHMARKS.md).
    #[arg(long, hide = true, requires = "train")]
    few_shot: Option<usize>,
    /// Cross-validate the learner on the file itself: K folds (row i in fold i mod K), each
    /// predicted by a learner trained on the others, the language model read once per row.
    #[arg(long, conflicts_with = "train")]
    folds: Option<usize>,
}

enum Gold {
    Label(usize),
    Spans(Vec<Span>),
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let labels = args.task.label_set()?;
    let is_ner = args.task.task == Task::Ner;
    let (items, bad) = read_gold(&args.data, is_ner, &labels.names)?;
    let model = args.model.load()?;
    let labeler = args.task.labeler(&model)?;
    let sizes = |n: usize| match (&args.curve, args.train_n) {
        (Some(sizes), _) => sizes.clone(),
        (None, k) => vec![k.unwrap_or(n)],
    };
    if let (Some(train), wick::tasks::labeler::Labeler::Extractor(extractor)) =
        (&args.train, &labeler)
    {
        let (train_items, train_bad) = read_gold(train, true, &labels.names)?;
        let spans = |items: Vec<(TextRow, Gold)>| {
            let mut out = super::learn_spans::SpanRows::default();
            for (row, gold) in items {
                if let Gold::Spans(s) = gold {
                    out.texts.push(row.text);
                    out.gold.push(s);
                }
            }
            out
        };
        let train_rows = spans(train_items);
        super::learn_spans::curve(
            &model,
            extractor,
            &train_rows,
            &spans(items),
            &sizes(train_rows.texts.len()),
            args.curve.is_none(),
            args.json,
        )?;
        return Ok(if bad + train_bad > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    let curve_options = |sizes: Vec<usize>| super::learn::CurveOptions {
        sizes,
        single: args.curve.is_none(),
        json: args.json,
        names: !args.learner_without_names,
        lm_features: !args.learner_without_lm_features,
        few_shot: args.few_shot,
    };
    if let Some(k) = args.folds {
        anyhow::ensure!(!is_ner, "--folds applies to classification");
        let rows = super::learn::Labeled {
            texts: items.iter().map(|(r, _)| r.text.clone()).collect(),
            gold: items
                .iter()
                .filter_map(|(_, g)| match g {
                    Gold::Label(l) => Some(*l),
                    Gold::Spans(_) => None,
                })
                .collect(),
        };
        super::learn::folds(
            &model,
            &labeler,
            &labels,
            &rows,
            k,
            &curve_options(Vec::new()),
        )?;
        return Ok(if bad > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(train) = &args.train {
        let gold: Vec<usize> = items
            .iter()
            .filter_map(|(_, g)| match g {
                Gold::Label(l) => Some(*l),
                Gold::Spans(_) => None,
            })
            .collect();
        let texts: Vec<String> = items.iter().map(|(r, _)| r.text.clone()).collect();
        let (train_rows, train_bad) = read_rows(train, &labels.names)?;
        let sizes = sizes(train_rows.texts.len());
        let test = super::learn::Labeled { texts, gold };
        super::learn::curve(
            &model,
            &labeler,
            &labels,
            &train_rows,
            &test,
            &curve_options(sizes),
        )?;
        return Ok(if bad + train_bad > 0 {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    let bar = super::progress(items.len() as u64);
    let start = Instant::now();
    let mut predictions = Vec::with_capacity(items.len());
    for chunk in items.chunks(CHUNK) {
        let texts: Vec<&str> = chunk.iter().map(|(r, _)| r.text.as_str()).collect();
        predictions.extend(labeler.label(&texts)?);
        bar.inc(chunk.len() as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();

    if let Some(path) = &args.predictions {
        let mut out = std::io::BufWriter::new(File::create(path)?);
        for ((row, _), p) in items.iter().zip(&predictions) {
            let mut fields = row.fields.clone();
            fields.insert("prediction".into(), p.to_json());
            serde_json::to_writer(&mut out, &Value::Object(fields))?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
    }

    let mut report = Map::new();
    report.insert("task".into(), json!(args.task.task.name()));
    report.insert("n".into(), json!(items.len()));
    if is_ner {
        let gold: Vec<Vec<Span>> = items
            .iter()
            .map(|(_, g)| match g {
                Gold::Spans(s) => s.clone(),
                Gold::Label(_) => Vec::new(),
            })
            .collect();
        let pred: Vec<Vec<Span>> = predictions
            .iter()
            .map(|p| match p {
                Prediction::Entities { entities, .. } => entities
                    .iter()
                    .map(|e| Span {
                        start: e.start,
                        end: e.end,
                        label: e.label.clone(),
                    })
                    .collect(),
                Prediction::Class(_) => Vec::new(),
            })
            .collect();
        let r = metrics::spans(&gold, &pred);
        report.insert("precision".into(), json!(r.precision));
        report.insert("recall".into(), json!(r.recall));
        report.insert("f1".into(), json!(r.f1));
    } else {
        let mut gold = Vec::new();
        let mut pred = Vec::new();
        let mut conf = Vec::new();
        for ((_, g), p) in items.iter().zip(&predictions) {
            if let (Gold::Label(g), Prediction::Class(p)) = (g, p) {
                gold.push(*g);
                pred.push(labels.index(&p.label).unwrap_or(usize::MAX));
                conf.push(p.confidence);
            }
        }
        let r = metrics::classification(&gold, &pred, &conf, labels.len());
        report.insert("accuracy".into(), json!(r.accuracy));
        report.insert("macro_f1".into(), json!(r.macro_f1));
        report.insert("ece".into(), json!(r.ece));
    }
    report.insert(
        "items_per_s".into(),
        json!(items.len() as f64 / seconds.max(1e-9)),
    );
    if args.json {
        println!("{}", Value::Object(report));
    } else {
        for (k, v) in &report {
            match v.as_f64() {
                Some(f) if !v.is_u64() => println!("{k:>12}  {f:.4}"),
                _ => println!(
                    "{k:>12}  {}",
                    v.as_str().map_or_else(|| v.to_string(), String::from)
                ),
            }
        }
    }
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The rows of a gold file; bad lines are reported on stderr and counted.
fn read_gold(
    path: &Path,
    is_ner: bool,
    labels: &[String],
) -> Result<(Vec<(TextRow, Gold)>, usize)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut items = Vec::new();
    let mut bad = 0;
    for row in rows(BufReader::new(file)) {
        match row.and_then(|r| gold_of(&r, is_ner, labels).map(|g| (r, g))) {
            Ok(item) => items.push(item),
            Err(b) => {
                eprintln!("{}: {b}", path.display());
                bad += 1;
            }
        }
    }
    Ok((items, bad))
}

/// Labeled rows of a training file, in file order.
fn read_rows(path: &Path, labels: &[String]) -> Result<(super::learn::Labeled, usize)> {
    let (items, bad) = read_gold(path, false, labels)?;
    let mut out = super::learn::Labeled::default();
    for (row, gold) in items {
        if let Gold::Label(l) = gold {
            out.texts.push(row.text);
            out.gold.push(l);
        }
    }
    Ok((out, bad))
}

fn gold_of(row: &TextRow, is_ner: bool, labels: &[String]) -> Result<Gold, BadLine> {
    let bad = |reason: String| BadLine {
        line: row.line,
        reason,
    };
    if is_ner {
        let Some(Value::Array(list)) = row.fields.get("entities") else {
            return Err(bad("missing gold \"entities\" list".into()));
        };
        let n_chars = row.text.chars().count();
        let spans = list
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let start = e.get("start").and_then(Value::as_u64);
                let end = e.get("end").and_then(Value::as_u64);
                let label = e.get("label").and_then(Value::as_str);
                match (start, end, label) {
                    (Some(s), Some(t), Some(l)) if s < t && t as usize <= n_chars => Ok(Span {
                        start: s as usize,
                        end: t as usize,
                        label: l.to_string(),
                    }),
                    _ => Err(bad(format!(
                        "entities[{i}] needs start < end <= {n_chars} and a label"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Gold::Spans(spans));
    }
    let label = row
        .fields
        .get("label")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing gold \"label\"".into()))?;
    labels
        .iter()
        .position(|l| l == label)
        .map(Gold::Label)
        .ok_or_else(|| bad(format!("gold label {label:?} is not in the label set")))
}
