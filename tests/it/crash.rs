//! SIGKILL in the middle of an import and of a pre-labeling job: after a restart every committed
//! row is intact, the import finishes by running it again, and the job resumes by itself.
use crate::common;

use common::server::{Api, Server};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

fn count(db: &Path, sql: &str) -> i64 {
    let c = Connection::open(db).expect("open db");
    c.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn integrity_ok(db: &Path) {
    let c = Connection::open(db).expect("open db");
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create_project(api: &Api, body: Value) -> i64 {
    let (status, p) = api.post("/projects", body);
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().expect("id")
}

#[test]
fn killed_during_an_import_keeps_whole_batches_and_reimport_completes() {
    const ROWS: usize = 300_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let mut server = Server::start(&db, false);
    let api = server.client("admin");
    let id = create_project(
        &api,
        json!({"name": "Big", "task": "classification", "labels": ["a", "b"]}),
    );
    let body: Vec<u8> = (0..ROWS)
        .map(|i| format!("{{\"id\":\"r{i}\",\"text\":\"row {i}: some text to label, long enough to be a sentence.\"}}\n"))
        .collect::<String>()
        .into_bytes();
    let body = std::sync::Arc::new(body);
    let upload = {
        let (api, body) = (server.client("admin"), body.clone());
        std::thread::spawn(move || {
            api.req("POST", &format!("/projects/{id}/items"))
                .send_bytes(&body)
                .is_ok()
        })
    };
    wait_until(
        "the import to commit a few batches",
        Duration::from_secs(120),
        || count(&db, "SELECT COUNT(*) FROM items") >= 5_000,
    );
    server.kill();
    let finished = upload.join().expect("upload thread");
    assert!(
        !finished,
        "the server was killed before the import could answer"
    );

    integrity_ok(&db);
    let kept = count(&db, "SELECT COUNT(*) FROM items");
    assert!(kept > 0 && (kept as usize) < ROWS, "kept {kept}");
    assert_eq!(
        kept % 1000,
        0,
        "only whole batches of 1000 rows are committed"
    );
    // Each committed batch wrote its audit entry in the same transaction.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit WHERE action = 'items.import'"
        ),
        kept / 1000
    );

    let server = Server::start(&db, false);
    let api = server.client("admin");
    let (status, report) = api.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["duplicates"].as_i64(), Some(kept), "{report}");
    assert_eq!(
        report["inserted"].as_i64(),
        Some(ROWS as i64 - kept),
        "{report}"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM items"), ROWS as i64);
    integrity_ok(&db);
}

#[test]
fn killed_during_prelabeling_resumes_where_it_stopped() {
    const ITEMS: i64 = 60;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let mut server = Server::start(&db, true);
    let api = server.client("admin");
    let id = create_project(
        &api,
        json!({"name": "S", "task": "classification", "labels": ["positive", "negative"], "prompt": "sentiment"}),
    );
    let rows: String = (0..ITEMS)
        .map(|i| format!("{}\n", json!({"id": format!("s{i}"), "text": format!("Review {i}: the film was {} overall.", if i % 2 == 0 { "wonderful" } else { "tedious" })})))
        .collect();
    api.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    let (status, job) = api.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_i64().expect("job id");
    wait_until("some predictions", Duration::from_secs(300), || {
        count(&db, "SELECT COUNT(*) FROM predictions") >= 8
    });
    server.kill();

    integrity_ok(&db);
    let predicted = count(&db, "SELECT COUNT(*) FROM predictions");
    assert!(
        predicted < ITEMS,
        "the job had finished before the kill ({predicted})"
    );
    // Progress and predictions are committed together.
    assert_eq!(
        count(&db, &format!("SELECT done FROM jobs WHERE id = {job_id}")),
        predicted
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT status = 'running' FROM jobs WHERE id = {job_id}")
        ),
        1
    );

    // On restart the job resumes by itself with the items that have no prediction.
    let server = Server::start(&db, true);
    let api = server.client("admin");
    let deadline = Instant::now() + Duration::from_secs(300);
    let job = loop {
        let (_, j) = api.get(&format!("/jobs/{job_id}"));
        if j["status"] != "running" && j["status"] != "queued" {
            break j;
        }
        assert!(Instant::now() < deadline, "job did not resume: {j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        (
            job["status"].as_str(),
            job["done"].as_i64(),
            job["total"].as_i64()
        ),
        (Some("done"), Some(ITEMS), Some(ITEMS)),
        "{job}"
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM predictions"), ITEMS);
    assert_eq!(
        count(&db, "SELECT COUNT(DISTINCT item_id) FROM predictions"),
        ITEMS,
        "no item predicted twice"
    );
    integrity_ok(&db);
}
