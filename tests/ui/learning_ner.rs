//! The span learning loop in a real browser, against the real `wick serve` with the embedded
//! model and a real SQLite file: an annotator corrects the model's spans with the mouse and the
//! keyboard, the answers retrain the span learner, the next sentences arrive with the learner's
//! spans (fewer to correct), the project page shows the learner and the dashboard draws the
//! online span-F1 curve. Needs /usr/bin/chromium and /usr/bin/chromedriver, as tests/browser.rs
//! does (the harness is in tests/common/browser.rs).
use crate::common;

use crate::browser::{
    self, annotate_next, annotate_ready, assert_clean_console, js, keys, log_in, marks,
    select_text, wait_js,
};
use anyhow::{ensure, Context, Result};
use common::ner::{sentences, spans_of, Spans};
use common::server::{wait_job, wait_retrain, Api, Server, ADMIN_PASSWORD};
use serde_json::json;
use std::collections::HashMap;
use thirtyfour::prelude::*;

/// Answers that queue each retrain.
const EVERY: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_span_corrections_retrain_the_learner() -> Result<()> {
    browser::run("learning-ner", true, |d, server, admin, _| {
        Box::pin(steps(d, server, admin))
    })
    .await
}

/// Corrects the sentence on screen to `gold`: removes every drawn span that is not in it (a
/// click, then Delete) and draws the missing ones (a selection, then the type's key). Returns
/// how many edits that took.
async fn correct(d: &WebDriver, text: &str, gold: &Spans, types: &[&str]) -> Result<usize> {
    let mut edits = 0;
    for (start, end, label, _) in marks(d).await? {
        if gold.contains(&(start as usize, end as usize, label.clone())) {
            continue;
        }
        d.find(By::Css(format!(
            "#item-text mark.span[data-start='{start}']"
        )))
        .await?
        .click()
        .await?;
        wait_js(
            d,
            "the clicked span to be selected",
            5,
            &format!(
                "return !!document.querySelector('#item-text mark.span.selected[data-start=\"{start}\"]');"
            ),
        )
        .await?;
        keys(d, Key::Delete).await?;
        edits += 1;
    }
    let drawn = marks(d).await?;
    for (start, end, label) in gold {
        if drawn
            .iter()
            .any(|m| (m.0 as usize, m.1 as usize, &m.2) == (*start, *end, label))
        {
            continue;
        }
        let piece: String = text.chars().skip(*start).take(end - start).collect();
        select_text(d, &piece).await?;
        let key = types.iter().position(|t| t == label).context("a type")? + 1;
        keys(d, key.to_string()).await?;
        edits += 1;
    }
    let now: Spans = marks(d)
        .await?
        .into_iter()
        .map(|(s, e, l, _)| (s as usize, e as usize, l))
        .collect();
    ensure!(now == *gold, "after correcting: {now:?}, want {gold:?}");
    Ok(edits)
}

/// Corrects `n` sentences in a row on the annotation page (`done` answered before) and submits
/// each; returns the edits they took.
async fn correct_next(
    d: &WebDriver,
    rows: &HashMap<String, (String, Spans)>,
    types: &[&str],
    done: usize,
    n: usize,
) -> Result<usize> {
    let mut edits = 0;
    let mut ext = annotate_ready(d, done).await?;
    for i in 0..n {
        let (text, gold) = rows.get(&ext).context("a known sentence on screen")?;
        edits += correct(d, text, gold, types).await?;
        keys(d, Key::Enter).await?;
        ext = annotate_next(d, done + i + 1, &ext).await?;
    }
    Ok(edits)
}

async fn steps(d: &WebDriver, server: &Server, admin: &Api) -> Result<()> {
    let base = server.base.as_str();
    let types = ["person", "location"];
    let data = sentences(3 * EVERY);
    let rows: HashMap<String, (String, Spans)> = data
        .iter()
        .map(|(id, t, s)| (id.clone(), (t.clone(), s.clone())))
        .collect();
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Travels", "task": "ner", "labels": types,
               "retrain_every": EVERY, "queue_order": "sequential"}),
    );
    ensure!(status == 201, "create the project: {p}");
    let project = p["id"].as_i64().context("project id")?;
    let body: String = data
        .iter()
        .map(|(id, text, _)| format!("{}\n", json!({"id": id, "text": text})))
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{project}/items"),
        "application/x-ndjson",
        body.as_bytes(),
    );
    ensure!(status == 200, "import: {report}");
    let (status, job) = admin.post(&format!("/projects/{project}/jobs"), json!({}));
    ensure!(status == 202, "pre-label: {job}");
    let job = wait_job(admin, job["id"].as_i64().context("job id")?);
    ensure!(job["status"] == "done", "{job}");

    // ---- the first sentences arrive with the zero-shot spans; the annotator corrects them ----
    log_in(d, base, "admin", ADMIN_PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}/annotate"))
        .await?;
    let before = correct_next(d, &rows, &types, 0, EVERY).await?;
    let first = wait_retrain(admin, project, 1);
    ensure!(first["status"] == "done", "the first retrain: {first}");

    // ---- the next sentence shows the learner's spans ----
    d.goto(format!("{base}/projects/{project}/annotate"))
        .await?;
    let ext = annotate_ready(d, 0).await?;
    let (_, learning) = admin.get(&format!("/projects/{project}/learning"));
    let version = learning["learners"][0]["version"]
        .as_str()
        .context("a learner")?
        .to_string();
    ensure!(version.contains("+spans@"), "{learning}");
    let item_id: i64 = {
        let (_, items) = admin.get(&format!("/projects/{project}/items?limit=100"));
        items["items"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["ext_id"] == ext.as_str()))
            .and_then(|i| i["id"].as_i64())
            .context("the shown item")?
    };
    let (_, item) = admin.get(&format!("/items/{item_id}"));
    let latest = item["predictions"]
        .as_array()
        .and_then(|p| p.last())
        .cloned()
        .context("a prediction")?;
    ensure!(latest["model_id"] == version.as_str(), "{item}");
    let drawn: Spans = marks(d)
        .await?
        .into_iter()
        .map(|(s, e, l, _)| (s as usize, e as usize, l))
        .collect();
    ensure!(
        drawn == spans_of(&latest["entities"]),
        "the page draws {drawn:?}, the learner said {}",
        latest["entities"]
    );
    let suggestion = js(
        d,
        "return document.getElementById('suggestion').textContent;",
        vec![],
    )
    .await?;
    ensure!(
        suggestion
            .as_str()
            .is_some_and(|s| s.contains("Model found")),
        "{suggestion}"
    );

    // ---- with the learner's spans shown, the next sentences take fewer edits ----
    let after = correct_next(d, &rows, &types, 0, EVERY).await?;
    eprintln!("edits for {EVERY} sentences: zero-shot spans shown {before}, learner's {after}");
    ensure!(
        after < before,
        "edits with the learner's spans {after}, with zero-shot {before}"
    );
    let second = wait_retrain(admin, project, 2);
    ensure!(second["status"] == "done", "the second retrain: {second}");

    // ---- the project page names the latest learner ----
    d.goto(format!("{base}/projects/{project}")).await?;
    let shown = wait_js(
        d,
        "the learner section",
        20,
        "const v = document.querySelector('#learner .learner-version');
         if (document.readyState !== 'complete' || !v) return null;
         return { version: v.textContent,
                  labels: document.querySelector('#learner .learner-labels').textContent };",
    )
    .await?;
    ensure!(
        shown["version"]
            .as_str()
            .is_some_and(|v| v.contains("+spans@") && v.ends_with(&format!("/{}", 2 * EVERY))),
        "{shown}"
    );
    ensure!(
        shown["labels"] == format!("{} answered sentences", 2 * EVERY),
        "{shown}"
    );

    // ---- the dashboard draws one span-F1 point per shown model, for both series ----
    d.goto(format!("{base}/projects/{project}/dashboard"))
        .await?;
    let chart = wait_js(
        d,
        "the learning chart",
        20,
        "const c = document.querySelector('#chart-learning svg');
         if (document.readyState !== 'complete' || !c) return null;
         const pts = (s) => [...c.querySelectorAll(`circle[data-series='${s}']`)]
           .map((p) => [Number(p.dataset.labels), Number(p.dataset.answers)]);
         return { shown: pts('shown'), lm: pts('lm'), text: c.textContent,
                  head: document.querySelector('#learning-table thead').textContent,
                  rows: document.querySelectorAll('#learning-table tbody tr').length };",
    )
    .await?;
    let want = json!([[0, EVERY], [EVERY, EVERY]]);
    ensure!(
        chart["shown"] == want && chart["lm"] == want,
        "curve points {chart}"
    );
    ensure!(
        chart["text"]
            .as_str()
            .is_some_and(|t| t.contains("span F1") && t.contains("answered sentences so far"))
            && chart["head"]
                .as_str()
                .is_some_and(|t| t.contains("Shown span F1"))
            && chart["rows"] == 2,
        "{chart}"
    );
    let (_, learning) = admin.get(&format!("/projects/{project}/learning"));
    let curve = learning["curve"].as_array().context("curve")?;
    ensure!(
        curve[1]["shown"].as_f64() > curve[0]["shown"].as_f64(),
        "the learner's spans scored better online than zero-shot: {learning}"
    );
    assert_clean_console(d, base, &[]).await
}
