//! `wick eval --task ner --train`: the span learner trained from labeled rows as if people had
//! answered them, and its span figures on a test file beside the zero-shot extractor's.
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::time::Instant;
use wick::domain::Span;
use wick::learn::spans::{Answered, SpanLearner, TypedSpan, Words};
use wick::tasks::backend::Backend;
use wick::tasks::metrics::{self, SpanReport};
use wick::tasks::ner::{self, Extractor};

/// Texts and their gold spans.
#[derive(Default)]
pub struct SpanRows {
    pub texts: Vec<String>,
    pub gold: Vec<Vec<Span>>,
}

pub fn curve(
    model: &Backend,
    extractor: &Extractor,
    train: &SpanRows,
    test: &SpanRows,
    sizes: &[usize],
    single: bool,
    as_json: bool,
) -> Result<()> {
    let embedder = model.embedder().context(
        "--train needs the sentence embedder (all-MiniLM-L6-v2 next to the model, or --embedder DIR)",
    )?;
    let names = &extractor.types().names;
    let most = sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .min(train.texts.len());
    let bar = super::progress((most + test.texts.len()) as u64);
    let read = |texts: &[String]| -> Result<Vec<(Words, Vec<ner::SpanCandidate>)>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(super::CHUNK) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let scored = extractor.score(&refs)?;
            let states = embedder.word_states(&refs)?;
            for ((s, (w, _)), text) in scored.into_iter().zip(states).zip(&refs) {
                out.push((ner::words(text, &w)?, s.candidates));
            }
            bar.inc(chunk.len() as u64);
        }
        Ok(out)
    };
    let train_read = read(&train.texts[..most])?;
    let test_read = read(&test.texts)?;
    bar.finish_and_clear();
    let typed = |spans: &[Span]| -> Vec<TypedSpan> {
        spans
            .iter()
            .filter_map(|s| {
                let kind = names.iter().position(|n| *n == s.label)?;
                Some(TypedSpan {
                    start: s.start,
                    end: s.end,
                    kind,
                })
            })
            .collect()
    };
    let unknown: usize = train.gold[..most]
        .iter()
        .map(|g| g.len() - typed(g).len())
        .sum();
    if unknown > 0 {
        eprintln!("{unknown} training spans have a type outside the label set and are left out");
    }
    let as_spans = |shown: &[(TypedSpan, f64)]| -> Vec<Span> {
        shown
            .iter()
            .map(|(s, _)| Span {
                start: s.start,
                end: s.end,
                label: names[s.kind].clone(),
            })
            .collect()
    };
    let zero_shot: Vec<Vec<Span>> = test_read
        .iter()
        .map(|(_, c)| {
            as_spans(&wick::learn::spans::zero_shot_spans(
                c,
                extractor.threshold(),
            ))
        })
        .collect();
    let zero_shot = metrics::spans(&test.gold, &zero_shot);
    if !as_json && !single {
        println!(
            "{:>7}  {:>20}  {:>20}  {:>6}  {:>10}  {:>9}",
            "train_n",
            "zero-shot P / R / F1",
            "mix P / R / F1",
            "tagger",
            "classifier",
            "threshold"
        );
    }
    for &size in sizes {
        let n = size.min(most);
        let set: Vec<Answered> = train_read[..n]
            .iter()
            .zip(&train.gold)
            .map(|((words, cands), gold)| Answered {
                words: words.clone(),
                gold: typed(gold),
                zero_shot: cands.clone(),
            })
            .collect();
        let start = Instant::now();
        let learner = SpanLearner::train(&set, names.len(), extractor.threshold());
        let seconds = start.elapsed().as_secs_f64();
        let mut row = Map::new();
        row.insert("train_n".into(), json!(n));
        row.insert("n".into(), json!(test.texts.len()));
        row.insert("zero_shot".into(), report(&zero_shot));
        let mix = match &learner {
            Ok(l) => {
                let shown: Vec<Vec<Span>> = test_read
                    .iter()
                    .map(|(w, c)| as_spans(&l.predict(w, c)))
                    .collect();
                row.insert("weight".into(), json!(l.weight));
                row.insert("classifier_weight".into(), json!(l.classifier_weight));
                row.insert("threshold".into(), json!(l.threshold));
                row.insert("l2".into(), json!(l.l2));
                row.insert("folds".into(), json!(l.folds));
                row.insert("train_seconds".into(), json!(seconds));
                metrics::spans(&test.gold, &shown)
            }
            Err(e) => {
                row.insert("learner_error".into(), json!(e.to_string()));
                zero_shot.clone()
            }
        };
        row.insert("mix".into(), report(&mix));
        if single {
            for (k, v) in [
                ("precision", mix.precision),
                ("recall", mix.recall),
                ("f1", mix.f1),
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
            let cell =
                |r: &SpanReport| format!("{:.3} / {:.3} / {:.3}", r.precision, r.recall, r.f1);
            let figure = |key: &str| {
                row.get(key)
                    .and_then(Value::as_f64)
                    .map_or("-".into(), |w| format!("{w:.2}"))
            };
            println!(
                "{n:>7}  {:>20}  {:>20}  {:>6}  {:>10}  {:>9}",
                cell(&zero_shot),
                cell(&mix),
                figure("weight"),
                figure("classifier_weight"),
                figure("threshold"),
            );
        }
    }
    Ok(())
}

fn report(r: &SpanReport) -> Value {
    json!({"precision": r.precision, "recall": r.recall, "f1": r.f1, "predicted": r.predicted, "gold": r.gold})
}
