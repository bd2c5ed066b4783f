//! Pre-labeling and responses on an inference server: the real llama.cpp `llama-server`
//! serving the embedded GGUF on 127.0.0.1, reached with `--model openai:URL`.
use crate::common;
use common::llama::{free_port, LlamaServer};
use common::server::{wick, Serve, Server};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn labels_of(path: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("read labels")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON row");
            (
                v["prediction"]["label"]
                    .as_str()
                    .expect("label")
                    .to_string(),
                v["model"].as_str().expect("model").to_string(),
            )
        })
        .collect()
}

/// `wick label --model MODEL` with `task` (its arguments) over `input`.
fn label_file(model: &str, task: &[String], input: &std::path::Path, out: &std::path::Path) {
    let o = wick()
        .arg("label")
        .args(task)
        .args(["--threads", "2", "--model", model, "-o"])
        .arg(out)
        .arg(input)
        .env_remove("WICK_MODEL")
        .output()
        .expect("wick label");
    assert!(
        o.status.success(),
        "wick label --model {model}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The share of rows where the server's labels and the engine's agree, and the server's
/// model id.
fn agreement(task: &[String], data: &std::path::Path, rows: usize) -> (f64, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.jsonl");
    let text = std::fs::read_to_string(data).expect("read data");
    let head: Vec<&str> = text.lines().take(rows).collect();
    std::fs::write(&input, head.join("\n")).expect("write input");
    let llama = LlamaServer::start(free_port());
    let (remote, local) = (
        dir.path().join("remote.jsonl"),
        dir.path().join("local.jsonl"),
    );
    label_file(&llama.spec(), task, &input, &remote);
    label_file(
        &common::model_path().display().to_string(),
        task,
        &input,
        &local,
    );
    let (remote, local) = (labels_of(&remote), labels_of(&local));
    assert_eq!((remote.len(), local.len()), (head.len(), head.len()));
    let agree = remote
        .iter()
        .zip(&local)
        .filter(|(r, l)| r.0 == l.0)
        .count();
    eprintln!(
        "llama-server and the engine agree on {agree} of {} rows of {}",
        remote.len(),
        data.display()
    );
    (agree as f64 / remote.len() as f64, remote[0].1.clone())
}

#[test]
fn llama_server_labels_agree_with_the_engine_on_sst2() {
    let task = ["--task", "sentiment"].map(String::from);
    let (share, model) = agreement(&task, &common::shared_data("sentiment_sst2_dev.jsonl"), 300);
    assert!(
        model.starts_with("llama-server:SmolLM2-135M-Instruct.Q4_1.gguf/trie-top100"),
        "the model id names the server and the method: {model}"
    );
    assert!(share >= 0.95, "agreement {share:.3} is under 0.95");
}

/// Banking77's labels are several tokens long and shortlisted by the embedder: the trie walk
/// goes past its first level, and labels that leave the top 100 are bounded.
#[test]
fn llama_server_walks_multi_token_labels_like_the_engine() {
    let labels = common::shared_data("intent_banking77_dev.labels.json");
    let task = vec![
        "--task".into(),
        "intent".into(),
        "--labels-file".into(),
        labels.display().to_string(),
    ];
    let (share, _) = agreement(
        &task,
        &common::shared_data("intent_banking77_dev.jsonl"),
        60,
    );
    assert!(share >= 0.85, "agreement {share:.3} is under 0.85");
}

#[test]
fn a_bad_endpoint_or_a_dead_server_is_a_clear_error() {
    let o = wick()
        .args([
            "label",
            "--task",
            "sentiment",
            "--model",
            "openai:localhost:1",
            "/dev/null",
        ])
        .output()
        .expect("wick label");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("expected openai:http://HOST:PORT#MODEL"),
        "{err}"
    );
    let port = free_port();
    let o = wick()
        .args(["label", "--task", "sentiment", "--model"])
        .arg(format!("openai:http://127.0.0.1:{port}"))
        .arg("/dev/null")
        .output()
        .expect("wick label");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains(&format!("127.0.0.1:{port}"))
            && err.contains("unavailable"),
        "{err}"
    );
}

/// Polls the job until `done` holds for it (at most `secs`).
fn job_until(
    api: &common::server::Api,
    job: i64,
    secs: u64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, j) = api.get(&format!("/jobs/{job}"));
        if done(&j) {
            return j;
        }
        assert!(
            Instant::now() < deadline,
            "job {job}: {what} did not happen: {j}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `wick serve` with its model on `llama`.
fn serve_on(llama: &LlamaServer, dir: &std::path::Path) -> Server {
    let serve = Serve {
        model: Some(llama.spec()),
        ..Serve::default()
    };
    Server::spawn(&dir.join("wick.db"), &serve).expect("wick serve")
}

#[test]
fn a_prelabel_job_waits_for_the_server_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut llama = LlamaServer::start(port);
    let server = serve_on(&llama, dir.path());
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "remote", "task": "classification", "labels": ["positive", "negative"],
               "prompt": "sentiment"}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    let rows: String = std::fs::read_to_string(common::shared_data("sentiment_sst2_dev.jsonl"))
        .unwrap()
        .lines()
        .take(120)
        .collect::<Vec<_>>()
        .join("\n");
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    assert_eq!(report["inserted"], 120, "{report}");

    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let job = job["id"].as_i64().unwrap();
    job_until(&admin, job, 120, "progress", |j| {
        j["done"].as_i64() > Some(0)
    });
    llama.kill();
    // The job waits, says why, and stays running.
    let waiting = job_until(&admin, job, 60, "the waiting note", |j| {
        j["error"]
            .as_str()
            .is_some_and(|e| e.contains("waiting for the inference server"))
    });
    assert_eq!(waiting["status"], "running", "{waiting}");
    let done_while_away = waiting["done"].as_i64().unwrap();
    assert!(done_while_away < 120, "{waiting}");
    let _llama = LlamaServer::start(port);
    let finished = job_until(&admin, job, 300, "the end", |j| {
        j["status"] != "running" && j["status"] != "queued"
    });
    assert_eq!(
        (
            finished["status"].as_str(),
            finished["done"].as_i64(),
            &finished["error"]
        ),
        (Some("done"), Some(120), &Value::Null),
        "{finished}"
    );
    // Every item has exactly one prediction, from the server.
    let (_, items) = admin.get(&format!("/projects/{id}/items?limit=500"));
    let items = items["items"].as_array().expect("items");
    assert_eq!(items.len(), 120);
    for item in items {
        let (_, detail) = admin.get(&format!("/items/{}", item["id"]));
        let preds = detail["predictions"].as_array().expect("predictions");
        assert_eq!(preds.len(), 1, "{detail}");
        assert!(
            preds[0]["model_id"]
                .as_str()
                .is_some_and(|m| m.starts_with("llama-server:")),
            "{detail}"
        );
    }
}

#[test]
fn responses_for_pairs_come_from_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let llama = LlamaServer::start(free_port());
    let server = serve_on(&llama, dir.path());
    let admin = server.client("admin");
    let settings =
        json!({"responses": 2, "temperature": 0.9, "top_p": 0.95, "seed": 7, "max_tokens": 24});
    let (status, project) = admin.post(
        "/projects",
        json!({"name": "G", "task": "preference", "labels": [], "queue_order": "sequential", "generation": settings}),
    );
    assert_eq!(status, 201, "{project}");
    let id = project["id"].as_i64().unwrap();
    let rows = "{\"id\": \"p1\", \"prompt\": \"Name a fruit.\"}\n{\"id\": \"p2\", \"prompt\": \"Say hello.\"}\n";
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    assert_eq!(report["inserted"], 2, "{report}");
    let (_, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    let job = common::server::wait_job(&admin, job["id"].as_i64().unwrap());
    assert_eq!(
        (job["status"].as_str(), job["done"].as_i64()),
        (Some("done"), Some(2)),
        "{job}"
    );
    for item in [1, 2] {
        let body = admin.get(&format!("/items/{item}")).1;
        let responses = body["responses"].as_array().expect("responses");
        assert_eq!(responses.len(), 2, "{body}");
        for r in responses {
            assert!(!r["text"].as_str().unwrap_or_default().is_empty(), "{r}");
            assert!(
                r["model_id"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("llama-server:SmolLM2")),
                "{r}"
            );
        }
    }
}
