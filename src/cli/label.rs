//! `wick label`: predictions for every row of a JSONL file.
use super::{ModelArgs, TaskArgs, CHUNK};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use wick::formats::jsonl::{rows, TextRow};

#[derive(Args)]
pub struct LabelArgs {
    #[command(flatten)]
    task: TaskArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// JSONL rows with a "text" field.
    input: PathBuf,
    /// Output JSONL (default: stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(args: LabelArgs) -> Result<ExitCode> {
    let input =
        File::open(&args.input).with_context(|| format!("opening {}", args.input.display()))?;
    let total = count_lines(&args.input)?;
    let model = args.model.load()?;
    let labeler = args.task.labeler(&model)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let bar = super::progress(total);
    let mut bad = 0usize;
    let mut chunk: Vec<TextRow> = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<TextRow>, out: &mut dyn Write| -> Result<()> {
        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
        let predictions = labeler.label(&texts)?;
        for (row, prediction) in chunk.drain(..).zip(predictions) {
            let mut fields = row.fields;
            fields.insert("prediction".into(), prediction.to_json());
            fields.insert("model".into(), json!(model.id()));
            fields.insert("prompt_version".into(), json!(labeler.prompt_version()));
            serde_json::to_writer(&mut *out, &Value::Object(fields))?;
            out.write_all(b"\n")?;
            bar.inc(1);
        }
        Ok(())
    };
    for row in rows(BufReader::new(input)) {
        match row {
            Ok(row) => {
                chunk.push(row);
                if chunk.len() == CHUNK {
                    flush(&mut chunk, &mut out)?;
                }
            }
            Err(b) => {
                bar.suspend(|| eprintln!("{}: {b}", args.input.display()));
                bar.inc(1);
                bad += 1;
            }
        }
    }
    flush(&mut chunk, &mut out)?;
    out.flush()?;
    bar.finish_and_clear();
    if bad > 0 {
        eprintln!("{bad} bad line(s) skipped; the other rows were labeled");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn count_lines(path: &std::path::Path) -> Result<u64> {
    use std::io::BufRead;
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count() as u64)
}
