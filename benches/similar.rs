//! Similar-items benchmark: the per-project index of stored embeddings (`app::similar`), at a
//! million items in a real SQLite file.
//!
//! The data: N items, each embedding a unit vector near one of 2,000 random centres (384-d,
//! like all-MiniLM-L6-v2), so every item has real neighbours. The database is built once per N
//! under `target/bench-similar/` (through the importer and `learning::put_embeddings`, as
//! pre-labeling writes them) and reused; WICK_BENCH_FRESH=1 rebuilds it.
//!
//! Measured, in this order:
//! 1. the first query: the index loads every embedding of the project (seconds, and the
//!    process's resident memory before and after, heap and mapped database pages apart; the
//!    bench's own copy of the vectors is in the heap before);
//! 2. WICK_BENCH_QUERIES "more like this" queries (k = 20) from random items: each reads the
//!    rows written since (none), searches the int8 codes and re-scores the best 40 from the
//!    stored vectors; p50, p99 and max milliseconds;
//! 3. the peer in the same run: an exact f32 brute force over the same vectors held in memory,
//!    split over the same threads, for the same queries (p50 and p99), and the recall of the int8
//!    search against it (the share of the exact top 20 it returns).
//!
//! Settings: WICK_BENCH_ITEMS (1000000), WICK_BENCH_QUERIES (100), RAYON_NUM_THREADS (the
//! threads). Run through scripts/bench-similar.sh.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;
use wick::app::similar::SimilarIndexes;
use wick::domain::{NewProject, TaskKind};
use wick::store::{import, learning, projects, Actor, Store};

const DIM: usize = 384;
const CENTRES: usize = 2000;
const NOISE: f32 = 0.6;
const EMBEDDER: &str = "bench-embedder";
const K: usize = 20;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unit(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

fn gaussian(rng: &mut StdRng) -> f32 {
    // Box-Muller; the second value is dropped, speed does not matter here.
    let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn vectors(n: usize) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(17);
    let centres: Vec<Vec<f32>> = (0..CENTRES)
        .map(|_| {
            let mut c: Vec<f32> = (0..DIM).map(|_| gaussian(&mut rng)).collect();
            unit(&mut c);
            c
        })
        .collect();
    let scale = NOISE / (DIM as f32).sqrt();
    (0..n)
        .map(|_| {
            let c = &centres[rng.random_range(0..CENTRES)];
            let mut v: Vec<f32> = c.iter().map(|x| x + scale * gaussian(&mut rng)).collect();
            unit(&mut v);
            v
        })
        .collect()
}

/// Resident memory in MB: (anonymous, that is the heap; file-backed, that is the database
/// pages SQLite maps, which the kernel may drop).
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// The database for `n` items, built if missing: (path, project id).
fn database(n: usize, data: &[Vec<f32>]) -> anyhow::Result<(PathBuf, i64)> {
    let dir = PathBuf::from("target/bench-similar");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{n}.db"));
    if std::env::var("WICK_BENCH_FRESH").as_deref() == Ok("1") || !path.exists() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let t = Instant::now();
        let store = Store::open(&path)?;
        let actor = Actor::system();
        let project = store.write(|tx| {
            projects::create(
                tx,
                &actor,
                &NewProject {
                    name: "similar".into(),
                    task: TaskKind::Classification,
                    labels: vec!["a".into(), "b".into()],
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
        let rows = (0..n).map(|i| {
            Ok::<_, wick::formats::jsonl::BadLine>(wick::formats::import::ImportRow {
                line: i + 1,
                id: Some(format!("r{i:07}")),
                text: format!("synthetic item {i}"),
                meta: None,
                label: None,
                entities: None,
                gold: false,
            })
        });
        let report = import::import(&store, &actor, project.id, rows, |_| {})?;
        anyhow::ensure!(
            report.inserted as usize == n,
            "imported {}",
            report.inserted
        );
        let ids: Vec<i64> = store.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM items WHERE project_id = ?1 ORDER BY id")?;
            let ids = stmt
                .query_map([project.id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(ids)
        })?;
        for (chunk, vs) in ids.chunks(10_000).zip(data.chunks(10_000)) {
            let rows: Vec<(i64, Vec<f32>)> =
                chunk.iter().copied().zip(vs.iter().cloned()).collect();
            store.write(|tx| learning::put_embeddings(tx, EMBEDDER, &rows))?;
        }
        // Closing the last connection checkpoints the WAL, as a restarted server finds it.
        drop(store);
        eprintln!(
            "built {} in {:.1} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok((path, 1))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let n = env("WICK_BENCH_ITEMS", 1_000_000);
    let queries = env("WICK_BENCH_QUERIES", 100);
    let data = vectors(n);
    let (path, project) = database(n, &data)?;
    let store = Store::open(&path)?;
    let indexes = SimilarIndexes::default();
    let first_item: i64 = store.read(|c| {
        Ok(c.query_row(
            "SELECT MIN(id) FROM items WHERE project_id = ?1",
            [project],
            |r| r.get(0),
        )?)
    })?;
    let before = rss_mb();
    let t = Instant::now();
    let found =
        store.read(|c| indexes.search(c, project, EMBEDDER, &data[0], K, Some(first_item)))?;
    let load_s = t.elapsed().as_secs_f64();
    let after = rss_mb();
    anyhow::ensure!(found.searched == n, "searched {} of {n}", found.searched);

    let mut rng = StdRng::seed_from_u64(5);
    let picks: Vec<usize> = (0..queries).map(|_| rng.random_range(0..n)).collect();
    let (mut ours, mut exact_ms, mut recall) = (Vec::new(), Vec::new(), 0.0);
    for &i in &picks {
        let item = first_item + i as i64;
        let t = Instant::now();
        let got = store.read(|c| indexes.search(c, project, EMBEDDER, &data[i], K, Some(item)))?;
        ours.push(t.elapsed().as_secs_f64() * 1e3);

        let t = Instant::now();
        let q = &data[i];
        let mut scores: Vec<(f32, usize)> = data
            .par_iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum::<f32>(), j))
            .collect();
        scores.select_nth_unstable_by(K - 1, |a, b| b.0.total_cmp(&a.0));
        exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let truth: Vec<i64> = scores[..K]
            .iter()
            .map(|(_, j)| first_item + *j as i64)
            .collect();
        recall += got.items.iter().filter(|x| truth.contains(&x.id)).count() as f64 / K as f64;
    }
    ours.sort_by(f64::total_cmp);
    exact_ms.sort_by(f64::total_cmp);
    let threads = rayon::current_num_threads();
    println!("== similar items: {n} items, {DIM}-d, {threads} threads, {queries} queries, k = {K}");
    println!(
        "first query (loads the index): {load_s:.2} s; heap {:.0} -> {:.0} MB, mapped file {:.0} -> {:.0} MB",
        before.0, after.0, before.1, after.1
    );
    println!(
        "int8 index:  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  recall@{K} {:.3}",
        percentile(&ours, 0.5),
        percentile(&ours, 0.99),
        ours[ours.len() - 1],
        recall / queries as f64
    );
    println!(
        "exact f32 peer (in memory): p50 {:.1} ms  p99 {:.1} ms",
        percentile(&exact_ms, 0.5),
        percentile(&exact_ms, 0.99)
    );
    Ok(())
}
