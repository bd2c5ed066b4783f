//! Engine throughput on the embedded model: prefill at 128 and 512 tokens, token-by-token
//! generation, and (with a data file) labels per second with and without the prefix cache.
//! Run through scripts/bench-engine.sh, which also runs llama.cpp on the same GGUF.
use std::time::Instant;
use wick::engine::{configure_threads, Job, KvCache, LoadOptions, LoadedModel};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let threads = configure_threads(arg("--threads").and_then(|t| t.parse().ok()));
    let path = arg("--model").unwrap_or_else(|| "models/SmolLM2-135M-Instruct.Q4_1.gguf".into());
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(3);
    let model = LoadedModel::load(path.as_ref(), &LoadOptions::default())?;
    let t = &model.transformer;
    println!("model {} threads {threads}", model.id);
    let text = "The quick brown fox jumps over the lazy dog while the cat watches from the window. ";
    let ids = model.tokenizer.encode_text(&text.repeat(64))?;
    for job in [Job::Scoring, Job::Generation] {
        for n in [128usize, 512] {
            let toks = &ids[..n];
            t.forward_chain(job, &KvCache::empty(), toks, &[n - 1])?; // warm-up
            let start = Instant::now();
            for _ in 0..reps {
                t.forward_chain(job, &KvCache::empty(), toks, &[n - 1])?;
            }
            let tps = (n * reps) as f64 / start.elapsed().as_secs_f64();
            println!("prefill {n} {job:?}: {tps:.1} tokens/s");
        }
    }
    for job in [Job::Generation, Job::Scoring] {
        let (_, mut cache) = t.forward_chain(job, &KvCache::empty(), &ids[..16], &[15])?;
        let n = 64;
        let start = Instant::now();
        for i in 0..n {
            let (_, kv) = t.forward_chain(job, &cache, &ids[16 + i..17 + i], &[0])?;
            cache = cache.extend(&kv)?;
        }
        let tps = n as f64 / start.elapsed().as_secs_f64();
        println!("generate {n} {job:?}: {tps:.1} tokens/s");
    }
    Ok(())
}
