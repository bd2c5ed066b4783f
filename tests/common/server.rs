//! Starts the real `wick serve` binary on 127.0.0.1 with a real SQLite file, and talks to it.
//! The tests and `benches/server.rs` share it.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// The `wick` binary cargo built with this test or bench, or `WICK_BENCH_BIN`: the server
/// bench drives another build with it to compare two.
pub fn wick() -> Command {
    match std::env::var_os("WICK_BENCH_BIN") {
        Some(bin) => Command::new(bin),
        None => Command::new(env!("CARGO_BIN_EXE_wick")),
    }
}

/// How `wick serve` is started: without a model unless one is given (a path or any other
/// `--model` value).
#[derive(Default)]
pub struct Serve {
    pub model: Option<String>,
    pub http_workers: Option<usize>,
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub db: PathBuf,
}

impl Server {
    /// `wick serve` on a free port; `model` false starts it with --no-model.
    pub fn start(db: &Path, model: bool) -> Server {
        let serve = Serve {
            model: model.then(|| super::model_path().display().to_string()),
            ..Serve::default()
        };
        Self::spawn(db, &serve).expect("start wick serve")
    }

    /// `wick serve` on a free port, once it says where it listens.
    pub fn spawn(db: &Path, serve: &Serve) -> anyhow::Result<Server> {
        let mut cmd = wick();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("WICK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("WICK_THREADS", "2")
            .env_remove("WICK_MODEL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        match &serve.model {
            Some(model) => cmd.arg("--model").arg(model),
            None => cmd.arg("--no-model"),
        };
        if let Some(w) = serve.http_workers {
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
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server {
            child,
            base,
            db: db.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// An API token for a user, made with `wick token create`.
    pub fn token(&self, user: &str) -> String {
        let out = wick()
            .args(["token", "create", user, "--db"])
            .arg(&self.db)
            .output()
            .expect("wick token create");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }

    /// An API client acting as `user`.
    pub fn client(&self, user: &str) -> Api {
        Api::new(&self.base, &self.token(user), Duration::from_secs(60))
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Adds a user with `wick user add`.
pub fn add_user(db: &Path, name: &str, role: &str, password: &str) {
    let out = wick()
        .args(["user", "add", name, "--role", role, "--db"])
        .arg(db)
        .env("WICK_PASSWORD", password)
        .output()
        .expect("wick user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Api {
    pub base: String,
    pub token: String,
    pub agent: ureq::Agent,
}

/// Status and JSON body of a response, error statuses included.
pub type Reply = (u16, serde_json::Value);

impl Api {
    pub fn new(base: &str, token: &str, timeout: Duration) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
        }
    }

    fn finish(r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().unwrap_or_default();
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, body)
    }

    /// A request to `/api/v1{path}` with this client's token, for bodies and answers that are
    /// not JSON.
    pub fn req(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}/api/v1{}", self.base, path))
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::finish(self.req("GET", path).call())
    }

    pub fn send(&self, method: &str, path: &str, body: serde_json::Value) -> Reply {
        Self::finish(self.req(method, path).send_json(body))
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send("POST", path, body)
    }

    /// The JSON body of a 2xx answer to a GET; any other status, or no answer, is an error.
    pub fn try_get(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Self::json_of(self.req("GET", path).call()?)
    }

    /// As `try_get`, for a POST of `body`.
    pub fn try_post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        Self::json_of(self.req("POST", path).send_json(body)?)
    }

    fn json_of(resp: ureq::Response) -> anyhow::Result<serde_json::Value> {
        let text = resp.into_string()?;
        Ok(if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        Self::finish(
            self.req("POST", path)
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    /// Imports (external id, text) rows into `project` as JSONL; panics unless it answers 200.
    pub fn import_texts<'a>(
        &self,
        project: i64,
        rows: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> serde_json::Value {
        let body: String = rows
            .into_iter()
            .map(|(id, text)| format!("{}\n", serde_json::json!({"id": id, "text": text})))
            .collect();
        let (status, report) = self.post_raw(
            &format!("/projects/{project}/items"),
            "application/x-ndjson",
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{report}");
        report
    }
}

/// Polls a job until it leaves queued/running (at most five minutes).
pub fn wait_job(api: &Api, job: i64) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let (_, j) = api.get(&format!("/jobs/{job}"));
        if !matches!(j["status"].as_str(), Some("queued") | Some("running")) {
            return j;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job} did not finish: {j}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The project's retrain jobs, newest first.
pub fn retrain_jobs(api: &Api, project: i64) -> Vec<serde_json::Value> {
    let (_, jobs) = api.get(&format!("/projects/{project}/jobs"));
    jobs["items"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == "retrain")
        .cloned()
        .collect()
}

/// Waits for the project's `count`-th retrain job to exist (at most two minutes), then for it
/// to finish.
pub fn wait_retrain(api: &Api, project: i64, count: usize) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let jobs = retrain_jobs(api, project);
        if jobs.len() >= count {
            let id = jobs[jobs.len() - count]["id"].as_i64().expect("id");
            return wait_job(api, id);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "retrain {count} was not queued"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
