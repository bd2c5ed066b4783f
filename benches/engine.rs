//! Engine throughput on the embedded model: prefill at 128 and 512 tokens, token-by-token
//! generation (after an empty context and after 448 tokens), sentiment labels per second on
//! the SST-2 dev file with and without the prefix cache, intent labels per second on
//! Banking77, entity sentences per second on the WNUT-17 dev file, what a span retrain costs
//! (the embedder's word states per second, and training the span learner on 100 of those
//! sentences' gold spans), and peak RSS.
//! Run through scripts/bench-engine.sh, which also runs llama.cpp on the same GGUF.
use std::time::Instant;
use wick::engine::{configure_threads, KvCache, LoadOptions, LoadedModel, Transformer, WeightCopy};
use wick::learn::spans::{Answered, SpanLearner, TypedSpan};
use wick::tasks::classify::{Classifier, ClassifierOptions};
use wick::tasks::labels::LabelSet;
use wick::tasks::ner::{self, Extractor};
use wick::tasks::prompt::PromptTemplate;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn texts(path: &str) -> anyhow::Result<Vec<String>> {
    let body = std::fs::read_to_string(path)?;
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok(v["text"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// Each row's gold entities as type indices of `names` (types outside them left out).
fn gold_spans(path: &str, names: &[String]) -> anyhow::Result<Vec<Vec<TypedSpan>>> {
    let body = std::fs::read_to_string(path)?;
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)?;
            let spans = v["entities"].as_array().cloned().unwrap_or_default();
            Ok(spans
                .iter()
                .filter_map(|e| {
                    Some(TypedSpan {
                        start: e["start"].as_u64()? as usize,
                        end: e["end"].as_u64()? as usize,
                        kind: names
                            .iter()
                            .position(|n| Some(n.as_str()) == e["label"].as_str())?,
                    })
                })
                .collect())
        })
        .collect()
}

fn labels_per_second(classifier: &Classifier, texts: &[String]) -> anyhow::Result<f64> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let start = Instant::now();
    for chunk in refs.chunks(32) {
        classifier.classify(chunk)?;
    }
    Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
}

/// Tokens per second over the last 64 of `ids`, fed one at a time after the others.
fn generation_tokens_per_s(t: &Transformer, ids: &[u32], reps: usize) -> anyhow::Result<f64> {
    let depth = ids.len() - 64;
    let mut seconds = 0.0;
    for _ in 0..reps {
        let mut cache = match depth {
            0 => KvCache::empty(),
            _ => {
                t.forward_chain(
                    WeightCopy::Scoring,
                    &KvCache::empty(),
                    &ids[..depth],
                    &[depth - 1],
                )?
                .1
            }
        };
        let start = Instant::now();
        for i in depth..ids.len() {
            let (_, kv) = t.forward_chain(WeightCopy::Generation, &cache, &ids[i..i + 1], &[0])?;
            cache = cache.extend(&kv)?;
        }
        seconds += start.elapsed().as_secs_f64();
    }
    Ok((64 * reps) as f64 / seconds)
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let threads = configure_threads(arg("--threads").and_then(|t| t.parse().ok()));
    let path = arg("--model").unwrap_or_else(|| "models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let data = arg("--data").unwrap_or_else(|| "../shared/data".into());
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(3);
    let model = LoadedModel::load(path.as_ref(), &LoadOptions::default())?;
    let t = &model.transformer;
    println!("model {} threads {threads}", model.id);
    let filler =
        "The quick brown fox jumps over the lazy dog while the cat watches from the window. ";
    let ids = model.tokenizer.encode_text(&filler.repeat(64))?;
    for n in [128usize, 512] {
        let toks = &ids[..n];
        t.forward_chain(WeightCopy::Scoring, &KvCache::empty(), toks, &[n - 1])?; // warm-up
        let start = Instant::now();
        for _ in 0..reps {
            t.forward_chain(WeightCopy::Scoring, &KvCache::empty(), toks, &[n - 1])?;
        }
        let tps = (n * reps) as f64 / start.elapsed().as_secs_f64();
        println!("prefill_{n}_tokens_per_s {tps:.1}");
    }
    // Generation as llama-bench's tg64 measures it: 64 tokens after an empty context, and
    // after 448 tokens of context (llama-bench -d 448), where the cache weighs more.
    for depth in [0usize, 448] {
        let tps = generation_tokens_per_s(t, &ids[..depth + 64], reps)?;
        println!("generate_64_tokens_at_depth_{depth}_per_s {tps:.1}");
    }

    let sst2 = texts(&format!("{data}/sentiment_sst2_dev.jsonl"))?;
    let template = PromptTemplate::builtin(wick::domain::Prompt::Sentiment)?;
    for cache in [true, false] {
        let opts = ClassifierOptions {
            prefix_cache: cache,
            ..Default::default()
        };
        let c = Classifier::new(
            &model,
            &template,
            LabelSet::parse_list("positive,negative")?,
            opts,
        )?;
        let name = if cache { "with" } else { "without" };
        println!(
            "sentiment_items_per_s_{name}_prefix_cache {:.2}",
            labels_per_second(&c, &sst2)?
        );
    }
    let banking = texts(&format!("{data}/intent_banking77_dev.jsonl"))?;
    let labels = LabelSet::from_file(format!("{data}/intent_banking77_dev.labels.json").as_ref())?;
    let c = Classifier::new(
        &model,
        &PromptTemplate::builtin(wick::domain::Prompt::Intent)?,
        labels,
        ClassifierOptions::default(),
    )?;
    let n = arg("--intent-rows")
        .and_then(|r| r.parse().ok())
        .unwrap_or(100)
        .min(banking.len());
    println!(
        "banking77_intent_items_per_s {:.2}",
        labels_per_second(&c, &banking[..n])?
    );
    let wnut = texts(&format!("{data}/ner_wnut17_dev.jsonl"))?;
    let types = LabelSet::from_file(format!("{data}/ner_wnut17_dev.labels.json").as_ref())?;
    let gold = gold_spans(&format!("{data}/ner_wnut17_dev.jsonl"), &types.names)?;
    let x = Extractor::new(
        &model,
        &PromptTemplate::builtin(wick::domain::Prompt::Ner)?,
        types,
    )?;
    let refs: Vec<&str> = wnut.iter().map(String::as_str).collect();
    let start = Instant::now();
    let mut scored = Vec::with_capacity(refs.len());
    for chunk in refs.chunks(32) {
        for s in x.score(chunk)? {
            // What pre-labeling shows, so the figure is that of `extract`.
            std::hint::black_box(wick::learn::spans::zero_shot_spans(
                &s.candidates,
                x.threshold(),
            ));
            scored.push(s);
        }
    }
    println!(
        "wnut17_ner_items_per_s {:.2}",
        wnut.len() as f64 / start.elapsed().as_secs_f64()
    );
    if let Some(embedder) = &model.embedder {
        let start = Instant::now();
        let states = embedder.word_states(&refs)?;
        println!(
            "wnut17_word_states_per_s {:.1}",
            wnut.len() as f64 / start.elapsed().as_secs_f64()
        );
        let set: Vec<Answered> = states
            .iter()
            .zip(&refs)
            .zip(scored)
            .zip(gold)
            .take(100)
            .map(|(((w, text), s), gold)| {
                Ok(Answered {
                    words: ner::words(text, &w.0)?,
                    gold,
                    zero_shot: s.candidates,
                })
            })
            .collect::<Result<_, wick::learn::LearnError>>()?;
        let start = Instant::now();
        SpanLearner::train(&set, x.types().len(), x.threshold())?;
        println!(
            "span_learner_train_100_sentences_s {:.2}",
            start.elapsed().as_secs_f64()
        );
    }
    if let Some(mb) = peak_rss_mb() {
        println!("peak_rss_mb {mb:.0}");
    }
    Ok(())
}
