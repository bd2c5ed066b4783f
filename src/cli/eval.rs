//! `wick eval`: zero-shot figures against gold labels or entities.
use super::{ModelArgs, TaskArgs, CHUNK};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Map, Value};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use wick::formats::jsonl::{rows, BadLine, TextRow};
use wick::tasks::labeler::{Prediction, Task};
use wick::tasks::metrics::{self, Span};

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
}

enum Gold {
    Label(usize),
    Spans(Vec<Span>),
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let file =
        File::open(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    let labels = args.task.label_set()?;
    let is_ner = args.task.task == Task::Ner;
    let mut items: Vec<(TextRow, Gold)> = Vec::new();
    let mut bad = 0;
    for row in rows(BufReader::new(file)) {
        match row.and_then(|r| gold_of(&r, is_ner, &labels.names).map(|g| (r, g))) {
            Ok(item) => items.push(item),
            Err(b) => {
                eprintln!("{}: {b}", args.data.display());
                bad += 1;
            }
        }
    }
    let model = args.model.load()?;
    let labeler = args.task.labeler(&model)?;
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
