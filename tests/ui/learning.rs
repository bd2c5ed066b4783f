//! The learning loop in a real browser: Debian's headless Chromium, driven through
//! chromedriver, against the real `wick serve` binary (no model) and a real SQLite file.
//!
//! An admin asks for a retrain on the project page, sees the job listed and, since this server
//! has no model, its failure with the reason in the jobs table; the learner settings save from
//! the settings form; and with answers and learners written into the database the project page
//! shows the latest learner and the dashboard draws the online-accuracy curve, one marker per
//! learner for each of its two series. Needs /usr/bin/chromium and /usr/bin/chromedriver, as
//! tests/browser.rs does (the harness is in tests/common/browser.rs).
use crate::common;

use crate::browser::{self, assert_clean_console, js, log_in, wait_js};
use anyhow::{bail, ensure, Context, Result};
use common::server::{Api, Server, ADMIN_PASSWORD};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_retrain_and_learning_curve() -> Result<()> {
    browser::run("learning", false, |d, server, admin, _| {
        Box::pin(steps(d, server, admin))
    })
    .await
}

/// The retrain job rows of the project page: (id, status, error text).
const RETRAIN_JOBS: &str = "return Array.from(document.querySelectorAll('#jobs .job[data-kind=\"retrain\"]')).map((j) => ({
       id: Number(j.dataset.job), status: j.dataset.status,
       label: j.querySelector('span').textContent,
       error: j.querySelector('.job-error') ? j.querySelector('.job-error').textContent : null }));";

async fn steps(d: &WebDriver, server: &Server, admin: &Api) -> Result<()> {
    let base = server.base.as_str();

    // ---- a classification project with a few items, through the API ----
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Learning loop", "task": "classification", "labels": ["pos", "neg"],
               "queue_order": "sequential"}),
    );
    ensure!(status == 201, "create the project: {status} {p}");
    let project = p["id"].as_i64().context("project id")?;
    let rows: String = (1..=6)
        .map(|i| format!("{{\"id\": \"t{i}\", \"text\": \"Sentence number {i}.\"}}\n"))
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{project}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    ensure!(status == 200 && report["inserted"] == 6, "import: {report}");

    // ---- the project page: no learner yet; "Retrain now" queues a job ----
    log_in(d, base, "admin", ADMIN_PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}")).await?;
    let before = wait_js(
        d,
        "the learner section",
        20,
        "const l = document.getElementById('learner');
         if (document.readyState !== 'complete' || !l) return null;
         return { text: l.textContent, button: !!document.getElementById('retrain-now'),
                  jobs: document.querySelectorAll('#jobs .job').length };",
    )
    .await?;
    ensure!(
        before["text"]
            .as_str()
            .is_some_and(|t| t.contains("No learner yet")),
        "{before}"
    );
    ensure!(before["button"] == true && before["jobs"] == 0, "{before}");
    d.find(By::Id("retrain-now")).await?.click().await?;
    let listed = wait_js(
        d,
        "the retrain job on the project page",
        20,
        &format!(
            "if (document.readyState !== 'complete') return null;
             const jobs = (() => {{ {RETRAIN_JOBS} }})();
             return location.pathname === '/projects/{project}' && jobs.length ? jobs : null;"
        ),
    )
    .await?;
    let job = &listed[0];
    let job_id = job["id"].as_i64().context("job id")?;
    ensure!(
        listed.as_array().map(Vec::len) == Some(1),
        "one retrain job: {listed}"
    );
    // Without a model the runner fails it at once, so the page may already show that.
    ensure!(
        matches!(
            job["status"].as_str(),
            Some("queued" | "running" | "failed")
        ),
        "{job}"
    );
    ensure!(
        job["label"]
            .as_str()
            .is_some_and(|l| l.contains(&format!("Retrain job {job_id}"))),
        "{job}"
    );
    let (_, api_job) = admin.get(&format!("/jobs/{job_id}"));
    ensure!(
        api_job["kind"] == "retrain" && api_job["project_id"] == project,
        "{api_job}"
    );

    // ---- the failure and its reason reach the jobs table (reloading until they do) ----
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let jobs = js(d, RETRAIN_JOBS, vec![]).await.unwrap_or(Value::Null);
        let row = jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["id"] == job_id))
            .cloned();
        if let Some(row) = row.filter(|r| r["status"] == "failed" && !r["error"].is_null()) {
            break row;
        }
        if Instant::now() > deadline {
            bail!("job {job_id} did not show as failed within 30 s: {jobs}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        d.refresh().await?;
    };
    let error = failed["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("the server was started without a model"),
        "the jobs table shows {failed}"
    );
    let (_, api_job) = admin.get(&format!("/jobs/{job_id}"));
    ensure!(
        api_job["status"] == "failed" && api_job["error"].as_str() == Some(error),
        "page and API agree: {api_job} vs {failed}"
    );

    // ---- the learner settings save from the settings form ----
    d.find(By::Css("#settings-form"))
        .await?
        .find(By::XPath(".."))
        .await?
        .find(By::Tag("summary"))
        .await?
        .click()
        .await?;
    let every = d.find(By::Id("retrain-every")).await?;
    ensure!(
        every.prop("value").await?.as_deref() == Some("20"),
        "the default is 20"
    );
    every.clear().await?;
    every.send_keys("7").await?;
    let cosine = d.find(By::Id("near-duplicate-cosine")).await?;
    ensure!(
        cosine.prop("value").await?.as_deref() == Some("0.95"),
        "the default is 0.95"
    );
    cosine.clear().await?;
    cosine.send_keys("0").await?;
    d.find(By::Id("save-settings")).await?.click().await?;
    let saved = wait_js(
        d,
        "the saved settings",
        20,
        "const s = document.getElementById('learner-settings');
         return document.readyState === 'complete' && s && s.textContent.includes('every 7 new answers') ? s.textContent : null;",
    )
    .await?;
    ensure!(
        saved
            .as_str()
            .is_some_and(|s| s.contains("near-duplicates in the queue: off")),
        "{saved}"
    );
    let (_, p) = admin.get(&format!("/projects/{project}"));
    ensure!(
        p["learning"] == json!({"retrain_every": 7, "near_duplicate_cosine": null}),
        "settings through the API: {p}"
    );

    // ---- the dashboard before any answer: the chart says when it appears ----
    d.goto(format!("{base}/projects/{project}/dashboard"))
        .await?;
    let empty = wait_js(
        d,
        "the empty learning chart",
        20,
        "const svg = document.querySelector('#chart-learning svg.chart-learning-curve');
         if (document.readyState !== 'complete' || !svg) return null;
         return { text: svg.textContent, points: svg.querySelectorAll('circle.chart-point').length,
                  table: !!document.getElementById('learning-table') };",
    )
    .await?;
    ensure!(
        empty["text"]
            .as_str()
            .is_some_and(|t| t.contains("appears after the first answers"))
            && empty["points"] == 0
            && empty["table"] == false,
        "{empty}"
    );

    // ---- answers against what was shown, written into the database ----
    seed_curve(&server.db, project)?;

    // The project page shows the latest learner.
    d.goto(format!("{base}/projects/{project}")).await?;
    let learner = wait_js(
        d,
        "the latest learner",
        20,
        "const t = document.getElementById('learner-latest');
         if (document.readyState !== 'complete' || !t || t.tagName !== 'TABLE') return null;
         const v = (c) => t.querySelector(c).textContent.trim();
         return { version: v('.learner-version'), labels: v('.learner-labels'), rescored: v('.learner-rescored'),
                  seconds: v('.learner-seconds'), when: v('.learner-when') };",
    )
    .await?;
    ensure!(
        learner
            == json!({"version": "lm-test+learner@bbbb/5", "labels": "5 human labels",
                      "rescored": "4", "seconds": "1.2 s", "when": learner["when"]}),
        "{learner}"
    );
    ensure!(
        learner["when"]
            .as_str()
            .is_some_and(|w| w.starts_with("20")),
        "{learner}"
    );

    // The dashboard draws one marker per learner in each series, in label order.
    d.goto(format!("{base}/projects/{project}/dashboard"))
        .await?;
    let chart = wait_js(
        d,
        "the learning curve",
        20,
        "const svg = document.querySelector('#chart-learning svg.chart-learning-curve');
         if (document.readyState !== 'complete' || !svg) return null;
         const pts = (s) => Array.from(svg.querySelectorAll('circle.chart-point[data-series=\"' + s + '\"]')).map((c) => ({
           labels: Number(c.dataset.labels), answers: Number(c.dataset.answers),
           x: Number(c.getAttribute('cx')), y: Number(c.getAttribute('cy')), title: c.querySelector('title').textContent }));
         return { shown: pts('shown'), lm: pts('lm'), circles: svg.querySelectorAll('circle').length,
                  rows: Array.from(document.querySelectorAll('#learning-table tbody tr')).map((tr) =>
                    Array.from(tr.cells).map((c) => c.textContent.trim()).join(' | ')),
                  width: svg.getBoundingClientRect().width };",
    )
    .await?;
    let series = |name: &str| -> Result<Vec<Value>> {
        Ok(chart[name].as_array().context("markers")?.clone())
    };
    let (shown, lm) = (series("shown")?, series("lm")?);
    ensure!(
        shown.len() == 3 && lm.len() == 3 && chart["circles"] == 6,
        "three markers per series: {chart}"
    );
    for s in [&shown, &lm] {
        let labels: Vec<i64> = s.iter().filter_map(|p| p["labels"].as_i64()).collect();
        let answers: Vec<i64> = s.iter().filter_map(|p| p["answers"].as_i64()).collect();
        ensure!(labels == [0, 2, 5] && answers == [2, 3, 1], "{chart}");
        ensure!(
            s.windows(2)
                .all(|w| w[0]["x"].as_f64() < w[1]["x"].as_f64()),
            "x grows with the labels: {chart}"
        );
    }
    // Shown: 0.5, 1.0, 1.0; language model: 0.5, 0.33, 0 (higher accuracy is higher up).
    let y = |s: &[Value], i: usize| s[i]["y"].as_f64().unwrap_or(f64::NAN);
    ensure!(
        y(&shown, 1) < y(&shown, 0)
            && y(&shown, 1) == y(&shown, 2)
            && y(&lm, 0) == y(&shown, 0)
            && y(&lm, 0) < y(&lm, 1)
            && y(&lm, 1) < y(&lm, 2),
        "{chart}"
    );
    ensure!(
        shown[1]["title"].as_str() == Some("2 human labels · prediction shown 1.00 · 3 answers")
            && lm[2]["title"].as_str()
                == Some("5 human labels · language model alone 0.00 · 1 answer"),
        "{chart}"
    );
    ensure!(
        chart["rows"]
            == json!([
                "0 | language model alone | 2 | 0.50 | 0.50",
                "2 | lm-test+learner@aaaa/2 | 3 | 1.00 | 0.33",
                "5 | lm-test+learner@bbbb/5 | 1 | 1.00 | 0.00",
            ]),
        "{chart}"
    );
    ensure!(
        chart["width"].as_f64().unwrap_or(0.0) > 100.0,
        "the chart is drawn: {chart}"
    );
    assert_clean_console(d, base, &[]).await?;
    Ok(())
}

/// Writes what the learning loop would have: the language model's predictions on t1 and t2,
/// a learner trained on 2 labels predicting t3–t5 and one on 5 labels predicting t6, and the
/// admin's answers to each item against the prediction they were shown (plus an imported label
/// pointing at a prediction, which the curve must leave out).
fn seed_curve(db: &std::path::Path, project: i64) -> Result<()> {
    let mut conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let tx = conn.transaction()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let admin: i64 = tx.query_row("SELECT id FROM users WHERE name = 'admin'", [], |r| {
        r.get(0)
    })?;
    let item = |ext: &str| -> rusqlite::Result<i64> {
        tx.query_row(
            "SELECT id FROM items WHERE project_id = ?1 AND ext_id = ?2",
            params![project, ext],
            |r| r.get(0),
        )
    };
    let learner = |version: &str, labels: i64, rescored: i64, seconds: f64| {
        tx.execute(
            "INSERT INTO learners (project_id, version, base_model, prompt_version, labels_hash, labels,
                 last_annotation, state, rescored, seconds, job_id, created_at)
             VALUES (?1, ?2, 'lm-test', 'p1', 'h1', ?3, 0, x'', ?4, ?5, NULL, ?6)",
            params![project, version, labels, rescored, seconds, now],
        )
        .map(|_| tx.last_insert_rowid())
    };
    let first = learner("lm-test+learner@aaaa/2", 2, 3, 0.4)?;
    let second = learner("lm-test+learner@bbbb/5", 5, 4, 1.23)?;
    // (item, learner, shown label, language model label beneath it, answer)
    let answers: [(&str, Option<i64>, &str, &str, &str); 6] = [
        ("t1", None, "pos", "pos", "pos"),
        ("t2", None, "pos", "pos", "neg"),
        ("t3", Some(first), "neg", "pos", "neg"),
        ("t4", Some(first), "pos", "pos", "pos"),
        ("t5", Some(first), "neg", "pos", "neg"),
        ("t6", Some(second), "neg", "pos", "neg"),
    ];
    let mut last_prediction = 0;
    for (ext, learner, shown, lm, answer) in answers {
        let item = item(ext)?;
        let (model, output) = match learner {
            None => ("lm-test".to_string(), json!({"label": shown})),
            Some(l) => (
                format!("learner-{l}"),
                json!({"label": shown, "lm_label": lm}),
            ),
        };
        tx.execute(
            "INSERT INTO predictions (item_id, model_id, prompt_version, labels_hash, label, output,
                 confidence, margin, entropy, truncated, created_at, learner_id)
             VALUES (?1, ?2, 'p1', 'h1', ?3, ?4, 0.8, 0.6, 0.5, 0, ?5, ?6)",
            params![item, model, shown, output.to_string(), now, learner],
        )?;
        last_prediction = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO annotations (item_id, user_id, source, value, accepted, seconds, prediction_id, created_at)
             VALUES (?1, ?2, 'human', ?3, ?4, 2.0, ?5, ?6)",
            params![
                item,
                admin,
                json!({"label": answer}).to_string(),
                shown == answer,
                last_prediction,
                now
            ],
        )?;
    }
    // Not a person's answer: left out of the curve.
    tx.execute(
        "INSERT INTO annotations (item_id, user_id, source, value, prediction_id, created_at)
         SELECT item_id, NULL, 'import', '{\"label\": \"pos\"}', id, ?2 FROM predictions WHERE id = ?1",
        params![last_prediction, now],
    )?;
    tx.commit()?;
    Ok(())
}
