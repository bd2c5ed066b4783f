//! Quality work in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against the real `wick serve` binary (no model) and a real SQLite file.
//!
//! A gold item reaches an annotator on the labeling page and scores them; two annotators split
//! on an item, which a reviewer settles on the adjudication page by keyboard; the dashboard
//! renders its charts and tables from the same figures as the API. Needs /usr/bin/chromium and
//! /usr/bin/chromedriver, as tests/browser.rs does (the harness is in tests/common/browser.rs).
use crate::common;

use crate::browser::{self, assert_clean_console, js, keys, log_in, text_of, wait_js};
use anyhow::{ensure, Context, Result};
use common::server::{Api, Server};
use serde_json::{json, Value};
use thirtyfour::prelude::*;

const PASSWORD: &str = "quality-pass-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_gold_adjudication_and_dashboard() -> Result<()> {
    browser::run("quality", false, |d, server, admin, _| {
        Box::pin(steps(d, server, admin))
    })
    .await
}

/// A user of `role` in `project`.
fn member(server: &Server, admin: &Api, project: i64, name: &str, role: &str) -> Result<Api> {
    Ok(browser::member(server, admin, project, name, role, PASSWORD)?.0)
}

/// The external id of the item the labeling page shows once it is idle ("" when none is left).
async fn shown(d: &WebDriver, labeled: usize) -> Result<String> {
    let v = wait_js(
        d,
        &format!("the labeling page to be idle with {labeled} labeled"),
        30,
        &format!(
            "const $ = (id) => document.getElementById(id);
             if (!$('annotate') || $('annotate').classList.contains('busy')) return null;
             if ($('counter').textContent !== '{labeled} labeled this session') return null;
             if (!$('item').hidden) return {{ ext: $('item-ext-id').textContent }};
             if (!$('empty').hidden) return {{ ext: '' }};
             return null;"
        ),
    )
    .await?;
    Ok(v["ext"].as_str().unwrap_or_default().to_string())
}

async fn steps(d: &WebDriver, server: &Server, admin: &Api) -> Result<()> {
    let base = server.base.as_str();

    // ---- a project with a gold item, three people, through the API ----
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Tone check", "task": "classification", "labels": ["pos", "neg"],
               "overlap": 2, "gold_rate": 1.0, "queue_order": "sequential"}),
    );
    ensure!(status == 201, "create the project: {status} {p}");
    let project = p["id"].as_i64().context("project id")?;
    let rows = concat!(
        "{\"id\": \"g1\", \"text\": \"What a lovely day.\", \"label\": \"pos\", \"gold\": true}\n",
        "{\"id\": \"i1\", \"text\": \"Great <b>service</b>.\"}\n",
        "{\"id\": \"i2\", \"text\": \"Well, that happened.\"}\n",
    );
    let (status, report) = admin.post_raw(
        &format!("/projects/{project}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    ensure!(status == 200 && report["gold"] == 1, "import: {report}");
    member(server, admin, project, "ann", "annotator")?;
    let bob = member(server, admin, project, "bob", "annotator")?;
    member(server, admin, project, "rev", "reviewer")?;

    // ---- ann labels by keyboard: the gold item comes first (rate 1), like any other item ----
    log_in(d, base, "ann", PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}/annotate"))
        .await?;
    let mut labeled = 0;
    let mut seen = Vec::new();
    loop {
        let ext = shown(d, labeled).await?;
        if ext.is_empty() {
            break;
        }
        let text = text_of(d, "#item-text").await?;
        ensure!(!text.is_empty(), "item {ext} shows no text");
        seen.push(ext);
        keys(d, "1").await?; // pos
        keys(d, Key::Enter).await?;
        labeled += 1;
        ensure!(labeled <= 3, "more items than the project holds: {seen:?}");
    }
    ensure!(seen == ["g1", "i1", "i2"], "ann saw {seen:?}");
    ensure!(
        text_of(d, "#item-text")
            .await
            .unwrap_or_default()
            .is_empty()
            || !d.find(By::Id("item")).await?.is_displayed().await?,
        "an item is still on screen"
    );
    assert_clean_console(d, base, &[]).await?;

    // bob answers through the API: wrong on gold, agrees on i1, disagrees on i2.
    for (ext, label) in [("g1", "neg"), ("i1", "pos"), ("i2", "neg")] {
        let (_, next) = bob.post(&format!("/projects/{project}/next"), json!({}));
        let item = &next["item"];
        ensure!(item["ext_id"] == ext, "bob got {item}, expected {ext}");
        let (status, body) = bob.post(
            &format!("/items/{}/annotations", item["id"]),
            json!({"label": label, "seconds": 3.0}),
        );
        ensure!(status == 201, "bob on {ext}: {status} {body}");
    }
    let counts = admin.get(&format!("/projects/{project}")).1;
    ensure!(
        counts["counts"]["review"] == 1,
        "i2 waits for review: {counts}"
    );

    // ---- rev settles i2 on the adjudication page: keys 1–9 pick, Enter decides ----
    d.delete_all_cookies().await?;
    log_in(d, base, "rev", PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}")).await?;
    d.find(By::Id("review-link")).await?.click().await?;
    let v = wait_js(
        d,
        "the review item",
        30,
        "const $ = (id) => document.getElementById(id);
         if (!$('review') || $('item').hidden) return null;
         return { ext: $('item-ext-id').textContent, n: document.querySelectorAll('#candidates li').length,
                  answers: Array.from(document.querySelectorAll('#candidates li')).map((li) => li.textContent) };",
    )
    .await?;
    ensure!(v["ext"] == "i2" && v["n"] == 2, "review page shows {v}");
    ensure!(
        v["answers"][0]
            .as_str()
            .is_some_and(|a| a.contains("pos") && a.contains("ann"))
            && v["answers"][1]
                .as_str()
                .is_some_and(|a| a.contains("neg") && a.contains("bob")),
        "candidates {v}"
    );
    keys(d, "2").await?;
    let chosen = js(
        d,
        "return document.querySelector('#candidates li.selected').textContent",
        vec![],
    )
    .await?;
    ensure!(
        chosen.as_str().is_some_and(|c| c.contains("bob")),
        "selected {chosen}"
    );
    d.find(By::Id("note"))
        .await?
        .send_keys("dry irony reads as negative")
        .await?;
    d.find(By::Id("resolve")).await?.click().await?;
    wait_js(
        d,
        "the review queue to empty",
        30,
        "return !document.getElementById('empty').hidden",
    )
    .await?;
    let i2 = admin.get("/items/3").1;
    ensure!(i2["ext_id"] == "i2", "item 3 is {i2}");
    ensure!(i2["current"] == json!({"label": "neg"}), "settled as {i2}");
    let res = &i2["resolutions"][0];
    ensure!(
        res["user"] == "rev"
            && res["source"] == "adjudicated"
            && res["note"] == "dry irony reads as negative",
        "resolution {res}"
    );
    assert_clean_console(d, base, &[]).await?;

    // ---- the dashboard: charts drawn on the server, tables from the same figures as the API ----
    d.goto(format!("{base}/projects/{project}/dashboard"))
        .await?;
    let page = wait_js(
        d,
        "the dashboard",
        30,
        "const svg = (id) => document.querySelector('#' + id + ' svg');
         if (document.readyState !== 'complete' || !svg('chart-gold')) return null;
         const ids = ['chart-progress', 'chart-throughput', 'chart-labels', 'chart-agreement', 'chart-gold', 'chart-reliability'];
         return {
           charts: ids.filter((id) => svg(id) && svg(id).getAttribute('role') === 'img').length,
           goldBars: svg('chart-gold').querySelectorAll('rect.chart-bar').length,
           goldText: svg('chart-gold').textContent,
           throughputBars: svg('chart-throughput').querySelectorAll('rect.chart-bar').length,
           progressLines: svg('chart-progress').querySelectorAll('path, polyline').length,
           gold: Array.from(document.querySelectorAll('#gold-table tbody tr')).map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim()).join(' ')),
           pairs: document.querySelector('#agreement-pairs tbody').textContent,
           hot: Array.from(document.querySelectorAll('#hot-items tbody a')).map((a) => a.textContent),
           noModel: document.getElementById('model-summary').textContent,
           width: svg('chart-gold').getBoundingClientRect().width,
         };",
    )
    .await?;
    ensure!(page["charts"] == 6, "six charts: {page}");
    ensure!(
        page["goldBars"] == 2 && page["throughputBars"] == 2,
        "{page}"
    );
    ensure!(page["progressLines"].as_u64().unwrap_or(0) >= 2, "{page}");
    ensure!(
        page["width"].as_f64().unwrap_or(0.0) > 100.0,
        "the chart is drawn: {page}"
    );
    let gold: Vec<String> = page["gold"]
        .as_array()
        .context("gold rows")?
        .iter()
        .map(|r| {
            r.as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    ensure!(
        gold.iter().any(|r| r.starts_with("ann 1 1 1.00 pos 1/1"))
            && gold.iter().any(|r| r.starts_with("bob 1 0 0.00 pos 0/1")),
        "gold table {gold:?}"
    );
    ensure!(
        page["pairs"]
            .as_str()
            .is_some_and(|p| p.contains("ann · bob")),
        "{page}"
    );
    ensure!(page["hot"] == json!(["i2"]), "hotspots {page}");
    let stats = admin.get(&format!("/projects/{project}/stats")).1;
    let acc = |who: &str| -> Value {
        stats["annotators"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["user"] == who))
            .map(|x| x["gold"]["accuracy"].clone())
            .unwrap_or(Value::Null)
    };
    ensure!(
        acc("ann") == 1.0 && acc("bob") == 0.0,
        "API gold accuracy {stats}"
    );
    ensure!(
        page["goldText"]
            .as_str()
            .is_some_and(|t| t.contains("1.00 · n=1") && t.contains("0.00 · n=1")),
        "gold chart notes {page}"
    );
    assert_clean_console(d, base, &[]).await?;
    Ok(())
}
