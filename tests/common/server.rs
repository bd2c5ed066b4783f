//! Starts the real `wick serve` binary on 127.0.0.1 with a real SQLite file, and talks to it.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub fn wick() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wick"))
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub db: PathBuf,
}

impl Server {
    /// `wick serve` on a free port; `model` false starts it with --no-model.
    pub fn start(db: &Path, model: bool) -> Server {
        let mut cmd = wick();
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--db"])
            .arg(db)
            .env("WICK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("WICK_THREADS", "2")
            .env_remove("WICK_MODEL")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if model {
            cmd.arg("--model").arg(super::model_path());
        } else {
            cmd.arg("--no-model");
        }
        let mut child = cmd.spawn().expect("start wick serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("wick serve exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("Wick is listening on ") {
                break rest.trim_end_matches('/').to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            base,
            db: db.to_path_buf(),
        }
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
        Api {
            base: self.base.clone(),
            token: self.token(user),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
        }
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

    fn req(&self, method: &str, path: &str) -> ureq::Request {
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

    pub fn post_raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        Self::finish(
            self.req("POST", path)
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
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
