//! Server load benchmark: imports N generated items (1,000,000 by default) into one
//! classification project with `wick import`, starts `wick serve --no-model`, and drives it
//! with annotator clients over HTTP on 127.0.0.1: each client is a distinct user looping
//! next -> submit. Reports import rows/s, next and submit latency (p50/p90/p99/max) for one
//! client alone and for `WICK_BENCH_CLIENTS` at once, submit throughput, and the server's peak
//! RSS. The load generator runs on the same machine as the server and shares its cores.
//!
//! Then the export phase (issue: exports stream row by row, 1,000,000 labeled items in <= 10 s
//! with memory that does not grow with the project): a second project of the same N texts, 95 %
//! imported with a label (annotations with source `import`), one model prediction per item
//! (written by the store functions the pre-labeling job uses; the bench serves without a model),
//! the other 5 % labeled by turning auto-accept on through the API (resolutions with source
//! `model`), and the 50 clients reviewing items for `WICK_BENCH_REVIEW_SECONDS` at overlap 2
//! (human answers beside the imported ones). That project is exported as the streamed download
//! `GET /projects/{id}/export` (labels and sft) and with `wick export` (labels and sft), timing
//! each and taking the exporting process's peak RSS; a project of N/10 such items is exported the
//! same ways to show that the peak does not grow with the project. The run fails if an export's
//! line count differs from the number of labeled items, or the download and the file differ.
//!
//! Settings (environment): WICK_BENCH_ITEMS (1000000), WICK_BENCH_SECONDS (20, the measured
//! window), WICK_BENCH_WARMUP (5), WICK_BENCH_CLIENTS (50), WICK_BENCH_API_IMPORT (1: also time
//! `POST /projects/{id}/items` with the same file into a second project, after the load run),
//! WICK_BENCH_HTTP_WORKERS (unset: the server's default), WICK_BENCH_BIN (another `wick` binary
//! to drive, to compare two builds), WICK_BENCH_EXPORT (1: run the export phase),
//! WICK_BENCH_REVIEW_SECONDS (5: human review on the exported project). Output: a summary on stdout and `target/bench-server.json`.
//! Run through scripts/bench-server.sh.
#[allow(dead_code)]
#[path = "../tests/common/mod.rs"]
mod common;

use common::server::{wick, Api, Serve, Server};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const PASSWORD: &str = "bench-password-1";
const LABELS: [&str; 2] = ["positive", "negative"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Runs a wick command to completion; its stdout, or the reason it failed.
fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// A deterministic xorshift generator, so every run imports the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "service",
    "was",
    "really",
    "not",
    "great",
    "terrible",
    "order",
    "arrived",
    "late",
    "on",
    "time",
    "and",
    "but",
    "staff",
    "friendly",
    "rude",
    "food",
    "cold",
    "fresh",
    "delivery",
    "package",
    "broken",
    "perfect",
    "price",
    "too",
    "high",
    "cheap",
    "quality",
    "I",
    "would",
    "never",
    "buy",
    "again",
    "recommend",
    "it",
    "to",
    "my",
    "friends",
    "support",
    "answered",
    "quickly",
    "after",
    "three",
    "days",
    "refund",
    "still",
    "waiting",
    "for",
    "app",
    "crashes",
    "every",
    "login",
    "screen",
    "works",
    "fine",
    "now",
    "battery",
    "lasts",
    "all",
    "day",
    "room",
    "clean",
    "noisy",
    "hotel",
    "flight",
    "delayed",
    "hours",
    "seat",
    "comfortable",
    "movie",
    "boring",
    "plot",
    "acting",
    "brilliant",
    "soundtrack",
    "lovely",
    "ending",
    "weak",
    "with",
    "of",
    "this",
    "is",
    "very",
    "quite",
    "somewhat",
    "absolutely",
];

/// The label the labeled file gives row `n` (rows with `n % 20 == 19` have none), and the
/// label the bench's model predicts for it.
fn import_label(n: usize) -> &'static str {
    LABELS[(n / 3 + n / 7) % 2]
}

/// One JSONL row: an id and a sentence-like text of 60 to 200 characters; with `labeled`, 19 of
/// 20 rows also carry a label.
fn row(rng: &mut Rng, n: usize, labeled: bool, out: &mut String) {
    let target = 60 + rng.below(141);
    let mut text = String::with_capacity(target + 16);
    while text.len() < target {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len())]);
        if rng.below(12) == 0 {
            text.push('.');
        }
    }
    text.truncate(200);
    let text = text.trim_end();
    out.clear();
    if labeled && n % 20 != 19 {
        let label = import_label(n);
        out.push_str(&format!(
            "{{\"id\":\"r{n:07}\",\"text\":\"{text}\",\"label\":\"{label}\"}}\n"
        ));
    } else {
        out.push_str(&format!("{{\"id\":\"r{n:07}\",\"text\":\"{text}\"}}\n"));
    }
}

/// Writes (or reuses) the N-row file (the same texts with or without labels).
fn data_file(dir: &Path, items: usize, labeled: bool) -> anyhow::Result<PathBuf> {
    let name = if labeled {
        format!("items-{items}-labeled.jsonl")
    } else {
        format!("items-{items}.jsonl")
    };
    let path = dir.join(&name);
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("{name}.part"));
    let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut line = String::new();
    for n in 0..items {
        row(&mut rng, n, labeled, &mut line);
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// A `/proc/PID/status` field in MB (VmHWM: peak resident set, VmRSS: current).
fn proc_mb(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// Latencies in microseconds of one kind of request.
#[derive(Default)]
struct Samples(Vec<u32>);

impl Samples {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    fn summary(mut self, seconds: f64) -> Value {
        self.0.sort_unstable();
        let n = self.0.len();
        let q = |p: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let i = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
            self.0[i] as f64 / 1000.0
        };
        let mean = self.0.iter().map(|&x| x as f64).sum::<f64>() / n.max(1) as f64 / 1000.0;
        json!({
            "count": n,
            "per_sec": round(n as f64 / seconds, 1),
            "mean_ms": round(mean, 2),
            "p50_ms": round(q(0.50), 2),
            "p90_ms": round(q(0.90), 2),
            "p99_ms": round(q(0.99), 2),
            "max_ms": round(q(1.0), 2),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// What one client thread did.
#[derive(Default)]
struct Work {
    next: Samples,
    submit: Samples,
    /// Every item the queue handed this client (warm-up included).
    handed: Vec<i64>,
    submitted: u64,
    errors: Vec<String>,
    empty_queue: bool,
}

/// Loops next -> submit until `stop`; samples are kept only for requests started at or after
/// `measure_from`.
fn client_loop(c: &Api, project: i64, measure_from: Instant, stop: Instant) -> Work {
    let mut w = Work::default();
    while Instant::now() < stop {
        let t0 = Instant::now();
        let next = c.try_post(&format!("/projects/{project}/next"), json!({}));
        let t1 = Instant::now();
        let id = match next {
            Ok(v) => match v["item"]["id"].as_i64() {
                Some(id) => id,
                None => {
                    w.empty_queue = true;
                    break;
                }
            },
            Err(e) => {
                w.errors.push(format!("next: {e}"));
                continue;
            }
        };
        if t0 >= measure_from {
            w.next.push(t1 - t0);
        }
        w.handed.push(id);
        let t2 = Instant::now();
        let sub = c.try_post(
            &format!("/items/{id}/annotations"),
            json!({"label": LABELS[(id % 2) as usize], "seconds": 1.0}),
        );
        let t3 = Instant::now();
        match sub {
            Ok(_) => {
                w.submitted += 1;
                if t2 >= measure_from && t2 < stop {
                    w.submit.push(t3 - t2);
                }
            }
            Err(e) => w.errors.push(format!("submit {id}: {e}")),
        }
    }
    w
}

/// Runs `clients` at once: warm-up, then the measured window.
fn load(clients: &[Api], project: i64, warmup: Duration, window: Duration) -> (Vec<Work>, f64) {
    let barrier = Arc::new(Barrier::new(clients.len() + 1));
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + warmup;
    let stop = measure_from + window;
    let works = std::thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .map(|c| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    barrier.wait();
                    std::thread::sleep(start.saturating_duration_since(Instant::now()));
                    client_loop(c, project, measure_from, stop)
                })
            })
            .collect();
        barrier.wait();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    let measured = stop
        .min(Instant::now())
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    (works, measured.max(1e-9))
}

fn summarize(works: Vec<Work>, seconds: f64) -> (Value, Vec<i64>, u64, Vec<String>, bool) {
    let (mut next, mut submit) = (Samples::default(), Samples::default());
    let (mut handed, mut submitted, mut errors, mut empty) = (Vec::new(), 0, Vec::new(), false);
    for w in works {
        // Each client must never be handed the same item twice.
        let mine: HashSet<i64> = w.handed.iter().copied().collect();
        if mine.len() != w.handed.len() {
            errors.push("a client was handed an item twice".to_string());
        }
        next.0.extend(w.next.0);
        submit.0.extend(w.submit.0);
        handed.extend(w.handed);
        submitted += w.submitted;
        errors.extend(w.errors);
        empty |= w.empty_queue;
    }
    let v = json!({
        "seconds": round(seconds, 2),
        "next": next.summary(seconds),
        "submit": submit.summary(seconds),
    });
    (v, handed, submitted, errors, empty)
}

/// The export phase's projects: N labeled items, and N/10 to compare memory with.
const EXPORT_PROJECT: &str = "bench-labeled";
const EXPORT_SMALL: &str = "bench-labeled-small";
/// Who the bench's stand-in predictions say they come from.
const BENCH_MODEL: &str = "bench-model.gguf@000000000000";
const BENCH_PROMPT: &str = "bench-prompt-0";

/// Rows of an N-row labeled file without a label (labeled by auto-accept instead).
fn unlabeled_rows(rows: usize) -> usize {
    (0..rows).filter(|n| n % 20 == 19).count()
}

/// Creates a classification project (sequential, overlap 2, the annotators as members) and
/// imports the `rows`-row labeled file into it with `wick import`.
fn labeled_project(
    db: &Path,
    dir: &Path,
    name: &str,
    rows: usize,
    members: &str,
) -> anyhow::Result<Value> {
    let file = data_file(dir, rows, true)?;
    run(wick()
        .args([
            "project",
            "create",
            name,
            "--task",
            "classification",
            "--labels",
            "positive,negative",
            "--queue-order",
            "sequential",
            "--overlap",
            "2",
            "--members",
            members,
            "--db",
        ])
        .arg(db))?;
    let t = Instant::now();
    let out = run(wick()
        .args(["import", "--project", name, "--db"])
        .arg(db)
        .arg(&file))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "cli import with labels ({name}): {out}; {secs:.1} s, {:.0} rows/s",
        rows as f64 / secs
    );
    Ok(
        json!({"rows": rows, "seconds": round(secs, 2), "rows_per_sec": round(rows as f64 / secs, 0),
              "data_mb": round(std::fs::metadata(&file)?.len() as f64 / 1e6, 1)}),
    )
}

/// The bench's stand-in for the model's prediction of row `n`: agrees with the imported label
/// 9 times in 10, confidence 0.5 to 0.99.
fn prediction(item_id: i64, n: usize) -> wick::store::predictions::NewPrediction {
    let other_of = |l: &str| if l == LABELS[0] { LABELS[1] } else { LABELS[0] };
    let label = if n % 10 == 3 {
        other_of(import_label(n))
    } else {
        import_label(n)
    };
    let other = other_of(label);
    let u = ((n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
    let p = 0.5 + 0.49 * u;
    let mut output = wick::store::predictions::Output::new();
    output.insert("label".into(), json!(label));
    output.insert("scores".into(), json!({label: p, other: 1.0 - p}));
    wick::store::predictions::NewPrediction {
        item_id,
        label: Some(label.to_string()),
        output,
        confidence: p,
        margin: 2.0 * p - 1.0,
        entropy: -(p * p.ln() + (1.0 - p) * (1.0 - p).ln()),
        truncated: false,
    }
}

/// One prediction per item of `project`, written the way the pre-labeling job writes them (its
/// query for items without one, `jobs::pending_items`, then `predictions::insert`), 1,000 per
/// transaction; the bench serves without a model, so the values are made up.
/// Returns (predictions, seconds).
fn predict(db: &Path, project: &str) -> anyhow::Result<(usize, f64)> {
    use wick::store::{jobs, predictions, projects};
    let t = Instant::now();
    let store = wick::store::Store::open(db)?;
    let project = store.read(|c| projects::by_name(c, project))?;
    let by = predictions::Provenance {
        model_id: BENCH_MODEL.into(),
        prompt_version: BENCH_PROMPT.into(),
        labels_hash: wick::jobs::labels_hash(&project.labels),
        learner_id: None,
    };
    let (mut after, mut n) = (0, 0usize);
    loop {
        let batch = store.read(|c| {
            jobs::pending_items(c, project.id, &by.model_id, &by.prompt_version, after, 1000)
        })?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        after = last;
        let rows: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(k, &(id, _))| prediction(id, n + k))
            .collect();
        n += rows.len();
        store.write(|tx| predictions::insert(tx, &by, project.queue_order, &rows))?;
    }
    Ok((n, t.elapsed().as_secs_f64()))
}

/// A `wick` command run to completion with its peak RSS (VmHWM sampled every 5 ms: it only
/// grows, so the last sample misses at most the final 5 ms) and CPU time.
struct Watched {
    seconds: f64,
    peak_rss_mb: Option<f64>,
    cpu_s: f64,
    stderr: String,
}

fn run_watched(cmd: &mut Command) -> anyhow::Result<Watched> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id().to_string();
    let mut err = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let (mut peak, mut cpu) = (None::<f64>, 0.0f64);
    let status = loop {
        if let Some(v) = proc_mb(&pid, "VmHWM:") {
            peak = Some(peak.map_or(v, |p| p.max(v)));
        }
        cpu = cpu.max(cpu_seconds(&pid));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = t.elapsed().as_secs_f64();
    let stderr = reader.join().unwrap_or_default();
    anyhow::ensure!(status.success(), "{cmd:?} failed: {stderr}");
    Ok(Watched {
        seconds,
        peak_rss_mb: peak,
        cpu_s: cpu,
        stderr,
    })
}

/// Lines and bytes of a file.
fn count_lines(path: &Path) -> anyhow::Result<(u64, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((lines, bytes));
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

/// Items exported by source, and rows without a string label, in a `labels` export.
fn sources(path: &Path) -> anyhow::Result<(Value, u64)> {
    let mut by = std::collections::BTreeMap::<String, u64>::new();
    let mut unlabeled = 0;
    for line in BufReader::new(std::fs::File::open(path)?).lines() {
        let v: Value = serde_json::from_str(&line?)?;
        if !v["label"].is_string() {
            unlabeled += 1;
        }
        let source = v["source"].as_str().unwrap_or("none").to_string();
        *by.entry(source).or_default() += 1;
    }
    Ok((json!(by), unlabeled))
}

/// Resets a process's VmHWM to its current RSS (`clear_refs` 5); false where the kernel refuses.
fn reset_peak(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Streams `GET /projects/{id}/export?format=F` to the end, counting lines and bytes, and takes
/// the server's CPU time and peak RSS over the download.
fn download(
    admin: &Api,
    pid: &str,
    project: i64,
    format: &str,
    expected: u64,
    errors: &mut Vec<String>,
) -> anyhow::Result<Value> {
    let reset = reset_peak(pid);
    let (rss0, hwm0, cpu0) = (
        proc_mb(pid, "VmRSS:"),
        proc_mb(pid, "VmHWM:"),
        cpu_seconds(pid),
    );
    let t = Instant::now();
    let resp = admin
        .req(
            "GET",
            &format!("/projects/{project}/export?format={format}"),
        )
        .call()?;
    let headers = t.elapsed().as_secs_f64();
    let mut body = resp.into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let (mut lines, mut bytes, mut first_row) = (0u64, 0u64, None);
    loop {
        let n = body.read(&mut buf)?;
        if n == 0 {
            break;
        }
        first_row.get_or_insert_with(|| t.elapsed().as_secs_f64());
        bytes += n as u64;
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let hwm = proc_mb(pid, "VmHWM:");
    if lines != expected {
        errors.push(format!(
            "GET export {format} of project {project}: {lines} lines, {expected} labeled items"
        ));
    }
    let r = |x: Option<f64>| x.map(|x| round(x, 1));
    Ok(json!({
        "seconds": round(secs, 2),
        "rows_per_sec": round(lines as f64 / secs, 0),
        "lines": lines,
        "mb": round(bytes as f64 / 1e6, 1),
        "bytes": bytes,
        "headers_ms": round(headers * 1000.0, 1),
        "first_rows_ms": first_row.map(|f| round(f * 1000.0, 1)),
        "server_cpu_s": round(cpu, 2),
        "server_rss_mb_before": r(rss0),
        "server_peak_rss_mb_before": r(hwm0),
        "server_peak_rss_mb_after": r(hwm),
        // With the peak reset before the download, the peak after it is the download's own.
        "server_peak_rss_mb_during": if reset { r(hwm) } else { None },
    }))
}

/// `wick export --project P --format F -o FILE`: time, peak RSS, and the file's lines.
fn cli_export(
    db: &Path,
    dir: &Path,
    project: &str,
    format: &str,
    expected: u64,
    errors: &mut Vec<String>,
) -> anyhow::Result<(Value, PathBuf)> {
    let file = dir.join(format!("export-{project}-{format}.jsonl"));
    let w = run_watched(
        wick()
            .args(["export", "--project", project, "--format", format, "-o"])
            .arg(&file)
            .arg("--db")
            .arg(db),
    )?;
    let (lines, bytes) = count_lines(&file)?;
    // "P: exported N items; left out ..."
    let reported: Option<u64> = w
        .stderr
        .split("exported ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    if lines != expected || reported != Some(lines) {
        errors.push(format!(
            "wick export {format} of {project}: {lines} lines (it reported {reported:?}), {expected} labeled items"
        ));
    }
    Ok((
        json!({
            "seconds": round(w.seconds, 2),
            "rows_per_sec": round(lines as f64 / w.seconds, 0),
            "lines": lines,
            "mb": round(bytes as f64 / 1e6, 1),
            "bytes": bytes,
            "peak_rss_mb": w.peak_rss_mb.map(|x| round(x, 1)),
            "cpu_s": round(w.cpu_s, 2),
        }),
        file,
    ))
}

/// What the export phase needs from the rest of the run.
struct ExportRun<'a> {
    db: &'a Path,
    dir: &'a Path,
    items: usize,
    small: usize,
    review: Duration,
    setup: Value,
}

/// The export phase (see the top of the file); stops the server before the CLI exports.
fn export_phase(
    x: ExportRun,
    server: Server,
    admin: &Api,
    clients: &[Api],
    errors: &mut Vec<String>,
) -> anyhow::Result<Value> {
    let pid = server.pid().to_string();
    let projects = admin.try_get("/projects")?;
    let id_of = |name: &str| {
        projects["items"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .and_then(|p| p["id"].as_i64())
            .ok_or_else(|| anyhow::anyhow!("project {name} not listed"))
    };
    let (big, small) = (id_of(EXPORT_PROJECT)?, id_of(EXPORT_SMALL)?);

    // Auto-accept labels the rows imported without one (every prediction is >= 0.5).
    let mut accepted = Vec::new();
    for (id, rows) in [(big, x.items), (small, x.small)] {
        let t = Instant::now();
        let r = admin.try_post(
            &format!("/projects/{id}/auto-accept"),
            json!({"enabled": true, "threshold": 0.5}),
        )?;
        let n = r["accepted"].as_u64().unwrap_or(0);
        if n != unlabeled_rows(rows) as u64 {
            errors.push(format!(
                "auto-accept labeled {n} items of project {id}, {} had no label",
                unlabeled_rows(rows)
            ));
        }
        accepted.push(json!({"accepted": n, "seconds": round(t.elapsed().as_secs_f64(), 2)}));
    }
    println!("auto-accept: {}", json!(accepted));

    // People review imported labels (overlap 2: each imported item waits for one person).
    let (works, s) = load(clients, big, Duration::ZERO, x.review);
    let (_, handed, reviewed, errs, _) = summarize(works, s);
    errors.extend(errs);
    if handed.iter().collect::<HashSet<_>>().len() != handed.len() {
        errors.push("review: an item was handed to two clients".into());
    }
    println!(
        "review: {reviewed} human answers in {:.1} s on {EXPORT_PROJECT}",
        x.review.as_secs_f64()
    );

    let (n_big, n_small) = (x.items as u64, x.small as u64);
    // The small project first: memory the server keeps after a download (allocator, SQLite
    // caches) would otherwise count in the next one's peak.
    let http_labels_small = download(admin, &pid, small, "labels", n_small, errors)?;
    println!("GET export labels ({n_small} items): {http_labels_small}");
    let http_labels = download(admin, &pid, big, "labels", n_big, errors)?;
    println!("GET export labels ({n_big} items): {http_labels}");
    let http_sft = download(admin, &pid, big, "sft", n_big, errors)?;
    println!("GET export sft ({n_big} items): {http_sft}");
    drop(server);

    let (cli_labels, labels_file) =
        cli_export(x.db, x.dir, EXPORT_PROJECT, "labels", n_big, errors)?;
    println!("wick export labels ({n_big} items): {cli_labels}");
    let (cli_labels_small, _) = cli_export(x.db, x.dir, EXPORT_SMALL, "labels", n_small, errors)?;
    println!("wick export labels ({n_small} items): {cli_labels_small}");
    let (cli_sft, _) = cli_export(x.db, x.dir, EXPORT_PROJECT, "sft", n_big, errors)?;
    println!("wick export sft ({n_big} items): {cli_sft}");

    if http_labels["lines"] != cli_labels["lines"] || http_labels["bytes"] != cli_labels["bytes"] {
        errors.push("the labels download and `wick export` differ in lines or bytes".into());
    }
    let (by_source, unlabeled) = sources(&labels_file)?;
    if unlabeled > 0 {
        errors.push(format!("{unlabeled} exported rows have no label"));
    }
    println!("labels export by source: {by_source}");
    Ok(json!({
        "items": x.items,
        "small_items": x.small,
        "setup": x.setup,
        "auto_accept": accepted,
        "human_answers": reviewed,
        "by_source": by_source,
        "db_mb": round(std::fs::metadata(x.db)?.len() as f64 / 1e6, 1),
        "http_labels": http_labels,
        "http_labels_small": http_labels_small,
        "http_sft": http_sft,
        "cli_labels": cli_labels,
        "cli_labels_small": cli_labels_small,
        "cli_sft": cli_sft,
    }))
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_default();
    let mem_gb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|kb| round(kb / 1024.0 / 1024.0, 1));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "loadavg_at_start": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "date": time::OffsetDateTime::now_utc().date().to_string(),
        "note": "server and load generator run on the same machine and share its cores",
    })
}

fn goal(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn main() -> anyhow::Result<()> {
    let items: usize = env_or("WICK_BENCH_ITEMS", 1_000_000);
    let seconds: f64 = env_or("WICK_BENCH_SECONDS", 20.0);
    let warmup: f64 = env_or("WICK_BENCH_WARMUP", 5.0);
    let n_clients: usize = env_or("WICK_BENCH_CLIENTS", 50);
    let api_import: bool = env_or("WICK_BENCH_API_IMPORT", 1u8) != 0;
    let export_on: bool = env_or("WICK_BENCH_EXPORT", 1u8) != 0;
    let review_s: f64 = env_or("WICK_BENCH_REVIEW_SECONDS", 5.0);
    let small = (items / 10).max(20);
    let workers: Option<usize> = std::env::var("WICK_BENCH_HTTP_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok());
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = target.join("bench-server");
    std::fs::create_dir_all(&dir)?;
    let machine = machine();
    println!(
        "server bench: {items} items, {n_clients} clients, {warmup} s warm-up + {seconds} s; machine {}",
        machine
    );

    // 1. Data, users, project, import.
    let t = Instant::now();
    let file = data_file(&dir, items, false)?;
    let file_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    println!(
        "data: {} ({file_mb:.0} MB) ready in {:.1} s",
        file.display(),
        t.elapsed().as_secs_f64()
    );
    let db = dir.join("bench.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    let names: Vec<String> = (0..n_clients).map(|i| format!("annotator{i:02}")).collect();
    let t = Instant::now();
    run(wick()
        .args(["user", "add", "admin", "--role", "admin", "--db"])
        .arg(&db)
        .env("WICK_PASSWORD", PASSWORD))?;
    for name in &names {
        run(wick()
            .args(["user", "add", name, "--role", "annotator", "--db"])
            .arg(&db)
            .env("WICK_PASSWORD", PASSWORD))?;
    }
    run(wick()
        .args([
            "project",
            "create",
            "bench",
            "--task",
            "classification",
            "--labels",
            "positive,negative",
            "--queue-order",
            "sequential",
            "--overlap",
            "1",
            "--members",
            &names.join(","),
            "--db",
        ])
        .arg(&db))?;
    let mut tokens = Vec::new();
    for name in &names {
        tokens.push(run(wick()
            .args(["token", "create", name, "--db"])
            .arg(&db))?);
    }
    let admin_token = run(wick().args(["token", "create", "admin", "--db"]).arg(&db))?;
    println!(
        "setup: {} users, project, tokens in {:.1} s",
        n_clients + 1,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let out = run(wick()
        .args(["import", "--project", "bench", "--db"])
        .arg(&db)
        .arg(&file))?;
    let import_s = t.elapsed().as_secs_f64();
    let import_rate = items as f64 / import_s;
    println!("cli import: {out}; {import_s:.1} s, {import_rate:.0} rows/s");
    let db_mb = std::fs::metadata(&db)?.len() as f64 / 1e6;

    // 2. Server.
    let server = Server::spawn(
        &db,
        &Serve {
            http_workers: workers,
            ..Serve::default()
        },
    )?;
    let pid = server.pid().to_string();
    let admin = Api::new(&server.base, &admin_token, Duration::from_secs(600));
    let project_id = admin.try_get("/projects")?["items"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "bench"))
        .and_then(|p| p["id"].as_i64())
        .ok_or_else(|| anyhow::anyhow!("project bench not listed"))?;
    let clients: Vec<Api> = tokens
        .iter()
        .map(|t| Api::new(&server.base, t, Duration::from_secs(60)))
        .collect();
    let rss_idle = proc_mb(&pid, "VmRSS:");

    // 3. One client alone: latency without contention (1 s warm-up, 5 s measured).
    let (works, s1) = load(
        &clients[..1],
        project_id,
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    let (single, mut handed, mut submitted, mut errors, _) = summarize(works, s1);
    println!("1 client: {single}");

    // 4. All clients at once.
    let (cpu_server0, cpu_self0) = (cpu_seconds(&pid), cpu_seconds("self"));
    let t_load = Instant::now();
    let (works, s) = load(
        &clients,
        project_id,
        Duration::from_secs_f64(warmup),
        Duration::from_secs_f64(seconds),
    );
    let wall = t_load.elapsed().as_secs_f64();
    let requests: usize = works.iter().map(|w| 2 * w.handed.len()).sum();
    let cpu_server_s = cpu_seconds(&pid) - cpu_server0;
    let cpu_server = cpu_server_s / wall;
    let cpu_self = (cpu_seconds("self") - cpu_self0) / wall;
    let server_us_per_request = cpu_server_s * 1e6 / requests.max(1) as f64;
    let (many, h, sub, errs, empty) = summarize(works, s);
    handed.extend(h);
    submitted += sub;
    errors.extend(errs);
    println!("{n_clients} clients: {many}");
    println!(
        "cpu during the load: server {cpu_server:.2} cores ({server_us_per_request:.0} us per request), load generator {cpu_self:.2} cores"
    );
    let rss_after_load = proc_mb(&pid, "VmRSS:");
    let peak_after_load = proc_mb(&pid, "VmHWM:");

    // 5. Consistency: no item handed to two people (overlap 1), and the server's counts agree.
    let unique: HashSet<i64> = handed.iter().copied().collect();
    if unique.len() != handed.len() {
        errors.push(format!(
            "{} items were handed to more than one client",
            handed.len() - unique.len()
        ));
    }
    let p = admin.try_get(&format!("/projects/{project_id}"))?;
    let done = p["counts"]["done"].as_u64().unwrap_or(0);
    if done != submitted {
        errors.push(format!(
            "server counts {done} done items, clients submitted {submitted}"
        ));
    }
    if empty {
        errors.push("the queue ran dry during the run: use more items".into());
    }

    // 6. The same file through the API, into a second project (after the load, so that it does
    //    not disturb it).
    let api = if api_import {
        let p2 = admin.try_post(
            "/projects",
            json!({"name": "bench-api", "task": "classification", "labels": LABELS, "queue_order": "sequential"}),
        )?;
        let p2 = p2["id"].as_i64().unwrap_or(0);
        let len = std::fs::metadata(&file)?.len();
        let t = Instant::now();
        let resp = admin
            .req("POST", &format!("/projects/{p2}/items"))
            .set("Content-Type", "application/x-ndjson")
            .set("Content-Length", &len.to_string())
            .send(std::fs::File::open(&file)?)?;
        let report: Value = resp.into_json()?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "api import: {} inserted, {} errors; {secs:.1} s, {:.0} rows/s",
            report["inserted"],
            report["error_count"],
            items as f64 / secs
        );
        json!({"seconds": round(secs, 2), "rows_per_sec": round(items as f64 / secs, 0),
               "inserted": report["inserted"], "errors": report["error_count"],
               "peak_rss_mb_after": proc_mb(&pid, "VmHWM:").map(|x| round(x, 1))})
    } else {
        Value::Null
    };

    // 7. Exports. Their projects are made now, after the load (so that the load runs on the
    //    same database as without the export phase), by CLI imports and store writes beside the
    //    idle server: the same texts with labels, and a prediction for each item.
    let export = if export_on {
        let members = names.join(",");
        let import_big = labeled_project(&db, &dir, EXPORT_PROJECT, items, &members)?;
        let import_small = labeled_project(&db, &dir, EXPORT_SMALL, small, &members)?;
        let (n, secs) = predict(&db, EXPORT_PROJECT)?;
        println!("predictions ({EXPORT_PROJECT}): {n} in {secs:.1} s");
        let (n_small, secs_small) = predict(&db, EXPORT_SMALL)?;
        let setup = json!({
            "import_with_labels": import_big,
            "import_with_labels_small": import_small,
            "predictions": n + n_small,
            "predictions_seconds": round(secs + secs_small, 1),
        });
        let x = ExportRun {
            db: &db,
            dir: &dir,
            items,
            small,
            review: Duration::from_secs_f64(review_s),
            setup,
        };
        // This stops the server.
        export_phase(x, server, &admin, &clients, &mut errors)?
    } else {
        drop(server);
        Value::Null
    };

    let next_p99 = many["next"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
    let sub_rate = many["submit"]["per_sec"].as_f64().unwrap_or(0.0);
    let sub_p99 = many["submit"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
    let peak = peak_after_load.unwrap_or(f64::MAX);
    // Seconds per 1,000,000 items, and the peak RSS at N items over the peak at N/10.
    let per_million =
        |v: &Value| v["seconds"].as_f64().unwrap_or(f64::MAX) * 1e6 / items.max(1) as f64;
    let growth = |big: &Value, small: &Value| {
        big.as_f64().unwrap_or(f64::MAX) / small.as_f64().unwrap_or(f64::MAX)
    };
    let cli_s = per_million(&export["cli_labels"]);
    let http_s = per_million(&export["http_labels"]);
    let cli_growth = growth(
        &export["cli_labels"]["peak_rss_mb"],
        &export["cli_labels_small"]["peak_rss_mb"],
    );
    let http_growth = growth(
        &export["http_labels"]["server_peak_rss_mb_during"],
        &export["http_labels_small"]["server_peak_rss_mb_during"],
    );
    let mut goals = json!({
        "import_rows_per_sec >= 50000": goal(import_rate >= 50_000.0),
        "next_p99_ms <= 20 (at load)": goal(next_p99 <= 20.0),
        "submits_per_sec >= 2000 with p99 <= 50 ms": goal(sub_rate >= 2000.0 && sub_p99 <= 50.0),
        "peak_rss_mb <= 300": goal(peak <= 300.0),
    });
    if !export.is_null() {
        goals["export labels <= 10 s per 1M items (wick export)"] = json!(goal(cli_s <= 10.0));
        goals["export labels <= 10 s per 1M items (GET export)"] = json!(goal(http_s <= 10.0));
        goals["export peak RSS at N <= 1.25 x at N/10 (wick export)"] =
            json!(goal(cli_growth <= 1.25));
        goals["export peak RSS at N <= 1.25 x at N/10 (server, GET export)"] =
            json!(goal(http_growth <= 1.25));
    }
    let report = json!({
        "machine": machine,
        "items": items,
        "data_mb": round(file_mb, 1),
        "db_mb_after_import": round(db_mb, 1),
        "clients": n_clients,
        "http_workers": workers,
        "import_cli": {"seconds": round(import_s, 2), "rows_per_sec": round(import_rate, 0)},
        "single_client": single,
        "load": many,
        "cpu_cores_used": {"server": round(cpu_server, 2), "load_generator": round(cpu_self, 2),
                           "server_us_per_request": round(server_us_per_request, 1)},
        "server_rss_mb": {"idle": rss_idle.map(|x| round(x, 1)), "after_load": rss_after_load.map(|x| round(x, 1)),
                          "peak": peak_after_load.map(|x| round(x, 1))},
        "import_api": api,
        "export": export,
        "submitted_total": submitted,
        "errors": errors.len(),
        "first_errors": errors.iter().take(10).collect::<Vec<_>>(),
        "goals": goals,
    });
    let out = target.join("bench-server.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;

    let ms = |v: &Value| {
        format!(
            "p50 {} / p90 {} / p99 {} / max {} ms",
            v["p50_ms"], v["p90_ms"], v["p99_ms"], v["max_ms"]
        )
    };
    println!("\n== summary ({items} items; server and load generator share the machine's cores)");
    println!(
        "import (wick import)    {import_rate:>9.0} rows/s ({import_s:.1} s)   goal >= 50000: {}",
        goal(import_rate >= 50_000.0)
    );
    if !api.is_null() {
        println!(
            "import (POST API)       {:>9.0} rows/s ({} s, peak RSS after it {} MB)",
            api["rows_per_sec"].as_f64().unwrap_or(0.0),
            api["seconds"],
            api["peak_rss_mb_after"]
        );
    }
    println!("next, 1 client          {}", ms(&single["next"]));
    println!("submit, 1 client        {}", ms(&single["submit"]));
    println!(
        "next, {n_clients} clients        {}   goal p99 <= 20: {}",
        ms(&many["next"]),
        goal(next_p99 <= 20.0)
    );
    println!("submit, {n_clients} clients      {}", ms(&many["submit"]));
    println!(
        "submits/s, {n_clients} clients   {sub_rate:>9.1}   goal >= 2000 with p99 <= 50 ms: {}",
        goal(sub_rate >= 2000.0 && sub_p99 <= 50.0)
    );
    println!(
        "server peak RSS         {:>9.1} MB (idle {:.1}, after load {:.1})   goal <= 300: {}",
        peak,
        rss_idle.unwrap_or(0.0),
        rss_after_load.unwrap_or(0.0),
        goal(peak <= 300.0)
    );
    println!(
        "cpu during load         server {cpu_server:.2} cores ({server_us_per_request:.0} us CPU per request), load generator {cpu_self:.2} cores"
    );
    if !export.is_null() {
        let line = |what: &str, v: &Value, rss: String| {
            println!(
                "{what:<24}{:>9.0} rows/s ({} s, {} lines, {} MB{rss})",
                v["rows_per_sec"].as_f64().unwrap_or(0.0),
                v["seconds"],
                v["lines"],
                v["mb"]
            );
        };
        let e = &export;
        println!(
            "export data             {} items: {}, {} human answers; {} items for the N/10 comparison",
            items, e["by_source"], e["human_answers"], small
        );
        let cli_rss = |v: &Value| format!(", peak RSS {} MB", v["peak_rss_mb"]);
        let srv_rss = |v: &Value| {
            format!(
                ", first rows after {} ms, server peak RSS during it {} MB, before {} MB",
                v["first_rows_ms"], v["server_peak_rss_mb_during"], v["server_rss_mb_before"]
            )
        };
        line(
            "wick export labels",
            &e["cli_labels"],
            cli_rss(&e["cli_labels"]),
        );
        line(
            "  same, N/10 items",
            &e["cli_labels_small"],
            cli_rss(&e["cli_labels_small"]),
        );
        line("wick export sft", &e["cli_sft"], cli_rss(&e["cli_sft"]));
        line(
            "GET export labels",
            &e["http_labels"],
            srv_rss(&e["http_labels"]),
        );
        line(
            "  same, N/10 items",
            &e["http_labels_small"],
            srv_rss(&e["http_labels_small"]),
        );
        line("GET export sft", &e["http_sft"], srv_rss(&e["http_sft"]));
        println!(
            "export goals            labels <= 10 s per 1M: wick export {cli_s:.1} s {}, GET {http_s:.1} s {}; peak RSS N vs N/10: wick export x{cli_growth:.2} {}, server x{http_growth:.2} {}",
            goal(cli_s <= 10.0),
            goal(http_s <= 10.0),
            goal(cli_growth <= 1.25),
            goal(http_growth <= 1.25)
        );
    }
    println!("errors                  {}", errors.len());
    for e in errors.iter().take(10) {
        println!("  {e}");
    }
    println!("json: {}", out.display());
    anyhow::ensure!(errors.is_empty(), "the run had errors");
    Ok(())
}
