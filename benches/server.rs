//! Server load benchmark (issue 3): imports N generated items (1,000,000 by default) into one
//! classification project with `wick import`, starts `wick serve --no-model`, and drives it
//! with annotator clients over HTTP on 127.0.0.1: each client is a distinct user looping
//! next -> submit. Reports import rows/s, next and submit latency (p50/p90/p99/max) for one
//! client alone and for `WICK_BENCH_CLIENTS` at once, submit throughput, and the server's peak
//! RSS. The load generator runs on the same machine as the server and shares its cores.
//!
//! Settings (environment): WICK_BENCH_ITEMS (1000000), WICK_BENCH_SECONDS (20, the measured
//! window), WICK_BENCH_WARMUP (5), WICK_BENCH_CLIENTS (50), WICK_BENCH_API_IMPORT (1: also time
//! `POST /projects/{id}/items` with the same file into a second project, after the load run),
//! WICK_BENCH_HTTP_WORKERS (unset: the server's default), WICK_BENCH_BIN (another `wick` binary
//! to drive, to compare two builds). Output: a summary on stdout and `target/bench-server.json`.
//! Run through scripts/bench-server.sh.
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// The `wick` binary built with this bench, or `WICK_BENCH_BIN` (to compare two builds).
fn wick() -> Command {
    match std::env::var_os("WICK_BENCH_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_wick")),
    }
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

/// One JSONL row: an id and a sentence-like text of 60 to 200 characters.
fn row(rng: &mut Rng, n: usize, out: &mut String) {
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
    out.push_str(&format!("{{\"id\":\"r{n:07}\",\"text\":\"{text}\"}}\n"));
}

/// Writes (or reuses) the N-row file.
fn data_file(dir: &Path, items: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("items-{items}.jsonl"));
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!("items-{items}.jsonl.part"));
    let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut line = String::new();
    for n in 0..items {
        row(&mut rng, n, &mut line);
        w.write_all(line.as_bytes())?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(db: &Path, workers: Option<usize>) -> anyhow::Result<Server> {
        let mut cmd = wick();
        cmd.args(["serve", "--no-model", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("WICK_ADMIN_PASSWORD", PASSWORD)
            .env_remove("WICK_MODEL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(w) = workers {
            cmd.arg("--http-workers").arg(w.to_string());
        }
        let mut child = cmd.spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("wick serve exited before listening"))??;
            if let Some(rest) = line.strip_prefix("Wick is listening on ") {
                break rest.trim_end_matches('/').to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, base })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Client {
    fn new(base: &str, token: &str, timeout: Duration) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            base: base.to_string(),
            auth: format!("Bearer {token}"),
        }
    }

    fn req(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}/api/v1{}", self.base, path))
            .set("Authorization", &self.auth)
    }

    fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let resp = self.req("POST", path).send_json(body)?;
        let text = resp.into_string()?;
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self.req("GET", path).call()?.into_json()?)
    }
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
fn client_loop(c: &Client, project: i64, measure_from: Instant, stop: Instant) -> Work {
    let mut w = Work::default();
    while Instant::now() < stop {
        let t0 = Instant::now();
        let next = c.post(&format!("/projects/{project}/next"), json!({}));
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
        let sub = c.post(
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
fn load(clients: &[Client], project: i64, warmup: Duration, window: Duration) -> (Vec<Work>, f64) {
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
    let file = data_file(&dir, items)?;
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
    let server = Server::start(&db, workers)?;
    let pid = server.pid().to_string();
    let admin = Client::new(&server.base, &admin_token, Duration::from_secs(600));
    let project_id = admin.get("/projects")?["items"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "bench"))
        .and_then(|p| p["id"].as_i64())
        .ok_or_else(|| anyhow::anyhow!("project bench not listed"))?;
    let clients: Vec<Client> = tokens
        .iter()
        .map(|t| Client::new(&server.base, t, Duration::from_secs(60)))
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
    let p = admin.get(&format!("/projects/{project_id}"))?;
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
        let p2 = admin.post(
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
    drop(server);

    let next_p99 = many["next"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
    let sub_rate = many["submit"]["per_sec"].as_f64().unwrap_or(0.0);
    let sub_p99 = many["submit"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
    let peak = peak_after_load.unwrap_or(f64::MAX);
    let goals = json!({
        "import_rows_per_sec >= 50000": goal(import_rate >= 50_000.0),
        "next_p99_ms <= 20 (at load)": goal(next_p99 <= 20.0),
        "submits_per_sec >= 2000 with p99 <= 50 ms": goal(sub_rate >= 2000.0 && sub_p99 <= 50.0),
        "peak_rss_mb <= 300": goal(peak <= 300.0),
    });
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
    println!("errors                  {}", errors.len());
    for e in errors.iter().take(10) {
        println!("  {e}");
    }
    println!("json: {}", out.display());
    anyhow::ensure!(errors.is_empty(), "the run had errors");
    Ok(())
}
