//! End to end in a real browser: Debian's headless Chromium, driven through chromedriver, against
//! the real `wick serve` binary with the embedded model and a real SQLite file.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
//! scripts/test.sh installs them). Without them the test fails: it never passes silently. The
//! WebDriver harness lives in tests/common/browser.rs.
use crate::common;

use crate::browser::{
    self, annotate_next, annotate_ready, assert_clean_console, assert_no_alert, js, keys, log_in,
    marks, select_text, text_of, wait_js,
};
use anyhow::{ensure, Context, Result};
use common::server::{add_user, wait_job, Api, Server, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

/// Code point offsets of `needle` in `text`, as the server counts them.
fn span_of(text: &str, needle: &str, label: &str) -> Value {
    let byte = text.find(needle).expect("needle in text");
    let start = text[..byte].chars().count();
    json!({"start": start, "end": start + needle.chars().count(), "label": label})
}

/// The API ids of a project's items, by external id.
fn item_ids(api: &Api, project: i64) -> std::collections::HashMap<String, i64> {
    let (status, body) = api.get(&format!("/projects/{project}/items?limit=500"));
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["ext_id"].as_str().unwrap().to_string(),
                i["id"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The caller's latest annotation of an item.
fn last_annotation(api: &Api, item: i64) -> Value {
    let (status, body) = api.get(&format!("/items/{item}"));
    assert_eq!(status, 200, "{body}");
    body["annotations"]
        .as_array()
        .and_then(|a| a.iter().max_by_key(|a| a["id"].as_i64()))
        .cloned()
        .unwrap_or_else(|| panic!("item {item} has no annotations: {body}"))
}

const REVIEWS: &[(&str, &str)] = &[
    (
        "r1",
        "An absolute delight from start to finish, I loved every minute.",
    ),
    (
        "r2",
        "Dull, slow and far too long. I walked out halfway through.",
    ),
    (
        "r3",
        "The acting was wonderful and the story moved me to tears.",
    ),
    (
        "r4",
        "A boring mess with a terrible script and wooden acting.",
    ),
    (
        "r5",
        "Funny, warm and beautifully shot. Highly recommended!",
    ),
    ("r6", "I hated it. The worst film I have seen this year."),
];

/// The reviews project as the form makes it, created and filled through the API.
fn reviews_project(admin: &Api) -> Result<i64> {
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Movie reviews", "task": "classification",
               "labels": ["positive", "negative"], "prompt": "sentiment"}),
    );
    ensure!(status == 201, "create the reviews project: {p}");
    let cls = p["id"].as_i64().context("project id")?;
    import(admin, cls, REVIEWS)?;
    Ok(cls)
}

/// Imports `rows` (external id, text) through the API, all of them.
fn import(admin: &Api, project: i64, rows: &[(&str, &str)]) -> Result<()> {
    let body: String = rows
        .iter()
        .map(|(id, text)| format!("{}\n", json!({"id": id, "text": text})))
        .collect();
    let (status, r) = admin.post_raw(
        &format!("/projects/{project}/items"),
        "application/x-ndjson",
        body.as_bytes(),
    );
    ensure!(
        status == 200 && r["inserted"] == rows.len(),
        "import into {project}: {status} {r}"
    );
    Ok(())
}

/// Runs the pre-labeling job through the API and waits for it to finish.
fn prelabel(admin: &Api, project: i64) -> Result<()> {
    let (status, job) = admin.post(&format!("/projects/{project}/jobs"), json!({}));
    ensure!(
        status == 202 || status == 201,
        "start pre-labeling: {status} {job}"
    );
    let job = wait_job(admin, job["id"].as_i64().context("job id")?);
    ensure!(job["status"] == "done", "pre-labeling ended as {job}");
    Ok(())
}

/// An NER project with a sequential queue over `rows` (external id, text).
fn ner_project(admin: &Api, name: &str, rows: &[(&str, &str)]) -> Result<i64> {
    let (status, p) = admin.post(
        "/projects",
        json!({"name": name, "task": "ner", "labels": ["PER", "ORG", "LOC"],
               "queue_order": "sequential"}),
    );
    ensure!(status == 201, "create the NER project: {p}");
    let ner = p["id"].as_i64().context("NER project id")?;
    import(admin, ner, rows)?;
    Ok(ner)
}

/// Renders `text` as text, with no elements, in `#item-text`.
async fn assert_text_only(d: &WebDriver, text: &str, page: &str) -> Result<()> {
    let shown = js(
        d,
        "const t = document.getElementById('item-text');
         return t && { text: t.textContent, elements: t.querySelectorAll('*').length };",
        vec![],
    )
    .await?;
    ensure!(
        shown == json!({"text": text, "elements": 0}),
        "{page} renders the script item as {shown}"
    );
    assert_no_alert(d, page).await;
    Ok(())
}

const MERKEL: &str = "Angela Merkel visited Paris with Siemens executives.";
const EMOJI: &str = "🎉 Ana met Bob";
const XSS: &str = "<script>alert(1)</script>";

/// Each scenario below is one heading of the walk a new team takes; each gets its own server
/// and browser, so one failure hides nothing after it.
macro_rules! browser_test {
    ($name:ident, $model:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> Result<()> {
            browser::run(stringify!($name), $model, |d, server, admin, tmp| {
                Box::pin(scenario::$name(d, server, admin, tmp))
            })
            .await
        }
    };
}

browser_test!(form_import_prelabel, true);
browser_test!(keyboard_labeling, true);
browser_test!(ner_spans_by_mouse, false);
browser_test!(script_text_stays_text, false);
browser_test!(history_and_audit, true);
browser_test!(annotator_sees_one_project, false);

mod scenario {
    use super::*;

    /// Log in, create a project through the form, import a file, pre-label and follow the job.
    pub async fn form_import_prelabel(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        tmp: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();

        d.goto(format!("{base}/")).await?;
        wait_js(
            d,
            "the redirect to /login",
            10,
            "return location.pathname === '/login'",
        )
        .await
        .context("an anonymous visit to / must land on the login page")?;
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;

        d.find(By::Id("project-name"))
            .await?
            .send_keys("Movie reviews")
            .await?;
        d.find(By::Css("#project-task option[value='classification']"))
            .await?
            .click()
            .await?;
        d.find(By::Id("project-labels"))
            .await?
            .send_keys("positive, negative")
            .await?;
        d.find(By::Css("#project-prompt option[value='sentiment']"))
            .await?
            .click()
            .await?;
        d.find(By::Id("create-project")).await?.click().await?;
        let v = wait_js(
            d,
            "the new project's page",
            20,
            "const m = location.pathname.match(/^\\/projects\\/(\\d+)$/);
         return m && document.getElementById('project') ? Number(m[1]) : null;",
        )
        .await?;
        let cls = v.as_i64().context("project id")?;
        let heading = text_of(d, "#project h1").await?;
        ensure!(
            heading == "Movie reviews",
            "project page heading {heading:?}"
        );
        let (status, project) = admin.get(&format!("/projects/{cls}"));
        ensure!(status == 200, "GET project: {project}");
        ensure!(
            project["task"] == "classification"
                && project["labels"] == json!(["positive", "negative"])
                && project["prompt"] == "sentiment",
            "the form made {project}"
        );

        let file = tmp.join("reviews.jsonl");
        let jsonl: String = REVIEWS
            .iter()
            .map(|(id, text)| format!("{}\n", json!({"id": id, "text": text})))
            .collect();
        std::fs::write(&file, jsonl)?;
        d.find(By::Id("import-file"))
            .await?
            .send_keys(file.to_str().context("utf-8 path")?)
            .await?;
        d.find(By::Id("import-submit")).await?.click().await?;
        let report = wait_js(
            d,
            "the import report",
            30,
            "const r = document.getElementById('import-report');
         return !r.hidden && r.dataset.inserted !== undefined ? r.textContent : null;",
        )
        .await?;
        let report = report.as_str().unwrap_or_default();
        ensure!(
            report.starts_with("Imported 6 items (0 already there, 0 with labels), 0 bad rows."),
            "import report: {report:?}"
        );

        // Pre-label: the page follows the job (polling, then reloading when it ends).
        d.refresh().await?;
        d.find(By::Id("start-prelabel")).await?.click().await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut seen = Vec::new();
        let last = loop {
            let v = js(
                d,
                "const j = document.querySelector('#jobs .job');
             if (!j) return null;
             return { status: j.dataset.status, shown: j.querySelector('.job-status').textContent,
                      value: Number(j.querySelector('progress').value),
                      max: Number(j.querySelector('progress').max),
                      text: j.querySelector('.job-progress').textContent };",
                vec![],
            )
            .await
            .unwrap_or(Value::Null); // a reload in progress
            if !v.is_null() {
                let step = (v["value"].as_f64(), v["text"].as_str().map(String::from));
                if seen.last() != Some(&step) {
                    seen.push(step);
                }
                if v["status"] == "done" {
                    break v;
                }
                ensure!(
                    !matches!(v["status"].as_str(), Some("failed" | "cancelled")),
                    "the pre-label job ended as {v}"
                );
            }
            ensure!(
                Instant::now() < deadline,
                "pre-labeling did not finish within 120 s (last seen {v})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!("pre-label progress seen in the page: {seen:?}");
        ensure!(
            last["shown"] == "done"
                && last["text"] == "6 / 6"
                && last["value"].as_f64() == Some(6.0),
            "finished job shows {last}"
        );
        let counts = text_of(d, "#counts").await?;
        ensure!(counts.contains("6 pre-labeled"), "counts read {counts:?}");
        let models = js(
        d,
        "return [...document.querySelectorAll('#items tbody tr')].map((r) => r.cells[2].textContent.trim());",
        vec![],
    )
    .await?;
        let models: Vec<String> = serde_json::from_value(models)?;
        ensure!(
            models.len() == 6
                && models
                    .iter()
                    .all(|m| m.starts_with("positive ") || m.starts_with("negative ")),
            "the items table shows predictions {models:?}"
        );

        // Pre-labeling embedded every item: an item's page lists the other five by similarity,
        // and a click opens one.
        let r1 = item_ids(admin, cls)["r1"];
        d.goto(format!("{base}/items/{r1}")).await?;
        let rows = js(
            d,
            "return [...document.querySelectorAll('#similar tbody tr')].map((r) =>
               [Number(r.cells[0].textContent), r.cells[1].textContent.trim()]);",
            vec![],
        )
        .await?;
        let rows: Vec<(f64, String)> = serde_json::from_value(rows)?;
        ensure!(
            rows.len() == 5
                && rows.iter().all(|(_, ext)| ext != "r1")
                && rows.windows(2).all(|w| w[0].0 >= w[1].0),
            "the similar items are {rows:?}"
        );
        d.find(By::Css("#similar tbody tr a"))
            .await?
            .click()
            .await?;
        let heading = wait_js(
            d,
            "the similar item's page",
            10,
            &format!(
                "return location.pathname.startsWith('/items/') && location.pathname !== '/items/{r1}'
                   ? document.querySelector('h1').textContent : null;"
            ),
        )
        .await?;
        ensure!(
            heading == json!(format!("Item {}", rows[0].1)),
            "the first similar link opened {heading}"
        );
        Ok(())
    }

    /// Label three items by keyboard only: accept, correct, accept.
    pub async fn keyboard_labeling(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        _: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();
        let cls = reviews_project(admin)?;
        prelabel(admin, cls)?;
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;
        d.goto(format!("{base}/projects/{cls}")).await?;

        d.find(By::Id("start-labeling")).await?.click().await?;
        let mut ext = annotate_ready(d, 0).await?;
        let mut labeled = Vec::new(); // (ext id, label, accepted)
        for (n, accept) in [true, false, true].into_iter().enumerate() {
            ensure!(!ext.is_empty(), "no item to label (after {n})");
            let v = js(
                d,
                "const s = document.querySelector('#suggestion strong');
             return { suggested: s ? s.textContent : null,
                      buttons: [...document.querySelectorAll('#labels button.label')]
                        .map((b) => [b.dataset.label, b.querySelector('kbd').textContent]) };",
                vec![],
            )
            .await?;
            let suggested = v["suggested"]
                .as_str()
                .with_context(|| format!("item {ext} shows no model suggestion: {v}"))?
                .to_string();
            let buttons: Vec<(String, String)> = serde_json::from_value(v["buttons"].clone())?;
            let (label, key) = buttons
                .iter()
                .find(|(l, _)| (*l == suggested) == accept)
                .cloned()
                .with_context(|| format!("label buttons {buttons:?}"))?;
            keys(d, key.as_str()).await?;
            let pressed = js(
            d,
            "return [...document.querySelectorAll('#labels button.selected')].map((b) => b.dataset.label);",
            vec![],
        )
        .await?;
            ensure!(
                pressed == json!([label]),
                "after key {key} the selected label is {pressed}, not {label}"
            );
            keys(d, Key::Enter).await?;
            let next = annotate_next(d, n + 1, &ext).await?;
            labeled.push((std::mem::replace(&mut ext, next), label, accept));
        }
        let counter = text_of(d, "#counter").await?;
        ensure!(
            counter == "3 labeled this session",
            "counter reads {counter:?}"
        );
        let ids = item_ids(admin, cls);
        for (ext, label, accept) in &labeled {
            let a = last_annotation(admin, ids[ext]);
            ensure!(
                a["value"] == json!({ "label": label })
                    && a["accepted"] == json!(accept)
                    && a["user"] == "admin"
                    && a["prediction_id"].is_i64()
                    && a["seconds"].as_f64().is_some_and(|s| s > 0.0),
                "item {ext}: expected {label} (accepted {accept}), stored {a}"
            );
        }
        Ok(())
    }

    /// NER: spans by mouse selection, refusal of overlaps, relabel, remove, and offsets past an
    /// emoji (the page selects in UTF-16, the server counts code points).
    pub async fn ner_spans_by_mouse(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        _: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();
        let (merkel, emoji) = (MERKEL, EMOJI);
        let ner = ner_project(
            admin,
            "People and places",
            &[("n1", merkel), ("n2", emoji), ("n3", "Done.")],
        )?;
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;

        d.goto(format!("{base}/projects/{ner}/annotate")).await?;
        let ext = annotate_ready(d, 0).await?;
        ensure!(ext == "n1", "the sequential queue starts with {ext:?}");
        let shown = text_of(d, "#item-text").await?;
        ensure!(shown == merkel, "#item-text reads {shown:?}");

        select_text(d, "Paris").await?;
        keys(d, "3").await?; // LOC
        ensure!(
            marks(d).await? == vec![(22, 27, "LOC".into(), "Paris".into())],
            "after labeling Paris: {:?}",
            marks(d).await?
        );
        let collapsed = js(d, "return window.getSelection().isCollapsed;", vec![]).await?;
        ensure!(
            collapsed == json!(true),
            "the selection stays after adding a span"
        );
        select_text(d, "Angela Merkel").await?;
        keys(d, "1").await?; // PER
        select_text(d, "Siemens").await?;
        keys(d, "3").await?; // LOC, corrected below
        select_text(d, "executives").await?;
        keys(d, "2").await?; // ORG, removed below
        ensure!(
            marks(d).await?.len() == 4,
            "four spans: {:?}",
            marks(d).await?
        );

        // An overlapping selection is refused with a message.
        select_text(d, "Paris with").await?;
        keys(d, "1").await?;
        let msg = text_of(d, "#message").await?;
        ensure!(
            msg.contains("overlap"),
            "no overlap refusal, message {msg:?}"
        );
        ensure!(marks(d).await?.len() == 4, "an overlapping span was added");
        keys(d, Key::Escape).await?;

        // Click a span, relabel it with a key.
        d.find(By::Css("#item-text mark.span[data-start='33']"))
            .await?
            .click()
            .await?;
        let info = wait_js(
            d,
            "the span tools",
            5,
            "const t = document.getElementById('span-tools');
         return t.hidden ? null : document.getElementById('span-info').textContent;",
        )
        .await?;
        ensure!(
            info.as_str()
                .is_some_and(|i| i.contains("Siemens") && i.contains("LOC")),
            "span tools say {info}"
        );
        keys(d, "2").await?; // ORG
                             // Click another span and remove it with Delete.
        d.find(By::Css("#item-text mark.span[data-start='41']"))
            .await?
            .click()
            .await?;
        wait_js(
            d,
            "the 'executives' span to be selected",
            5,
            "return !!document.querySelector('#item-text mark.span.selected[data-start=\"41\"]');",
        )
        .await?;
        keys(d, Key::Delete).await?;
        let expected_marks = vec![
            (0, 13, "PER".to_string(), "Angela Merkel".to_string()),
            (22, 27, "LOC".into(), "Paris".into()),
            (33, 40, "ORG".into(), "Siemens".into()),
        ];
        ensure!(
            marks(d).await? == expected_marks,
            "spans before submitting: {:?}",
            marks(d).await?
        );
        let rendered = text_of(d, "#item-text").await?;
        ensure!(rendered == merkel, "marks changed the text: {rendered:?}");
        keys(d, Key::Enter).await?;
        let ext = annotate_next(d, 1, "n1").await?;
        ensure!(ext == "n2", "after n1 came {ext:?}");

        // An emoji before the entities: the page selects in UTF-16, the server counts code points.
        let (a16, _) = select_text(d, "Ana").await?;
        keys(d, "1").await?;
        let (b16, _) = select_text(d, "Bob").await?;
        keys(d, "1").await?;
        ensure!((a16, b16) == (3, 11), "UTF-16 offsets {a16}, {b16}");
        ensure!(
            marks(d).await?
                == vec![
                    (2, 5, "PER".to_string(), "Ana".to_string()),
                    (10, 13, "PER".into(), "Bob".into()),
                ],
            "emoji item spans: {:?}",
            marks(d).await?
        );
        keys(d, Key::Enter).await?;
        let ext = annotate_next(d, 2, "n2").await?;
        ensure!(ext == "n3", "after n2 came {ext:?}");

        let ids = item_ids(admin, ner);
        let a = last_annotation(admin, ids["n1"]);
        let want = json!([
            span_of(merkel, "Angela Merkel", "PER"),
            span_of(merkel, "Paris", "LOC"),
            span_of(merkel, "Siemens", "ORG"),
        ]);
        ensure!(a["value"]["entities"] == want, "n1 stored {a}, want {want}");
        ensure!(
            a["seconds"].as_f64().is_some_and(|s| s > 0.0),
            "n1 seconds: {a}"
        );
        let a = last_annotation(admin, ids["n2"]);
        let want = json!([span_of(emoji, "Ana", "PER"), span_of(emoji, "Bob", "PER")]);
        ensure!(
            want == json!([{"start": 2, "end": 5, "label": "PER"}, {"start": 10, "end": 13, "label": "PER"}])
                && a["value"]["entities"] == want,
            "n2 stored {a}, want {want}"
        );
        Ok(())
    }

    /// Item text that looks like markup stays text on the NER and classification annotation pages,
    /// the item page and the project's items table.
    pub async fn script_text_stays_text(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        _: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();
        let xss = XSS;
        let ner = ner_project(admin, "People and places", &[("n3", xss)])?;
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;
        d.goto(format!("{base}/projects/{ner}/annotate")).await?;
        ensure!(
            annotate_ready(d, 0).await? == "n3",
            "the XSS item is not shown"
        );
        assert_text_only(d, xss, "the NER annotation page").await?;

        let (status, p) = admin.post(
            "/projects",
            json!({"name": "Script test", "task": "classification", "labels": ["a", "b"]}),
        );
        ensure!(status == 201, "create the XSS project: {p}");
        let xp = p["id"].as_i64().context("project id")?;
        let row = format!("{}\n", json!({"id": "x1", "text": xss}));
        let (status, r) = admin.post_raw(
            &format!("/projects/{xp}/items"),
            "application/x-ndjson",
            row.as_bytes(),
        );
        ensure!(status == 200 && r["inserted"] == 1, "XSS import: {r}");
        d.goto(format!("{base}/projects/{xp}/annotate")).await?;
        ensure!(
            annotate_ready(d, 0).await? == "x1",
            "the XSS item is not shown"
        );
        assert_text_only(d, xss, "the classification annotation page").await?;
        let x1 = item_ids(admin, xp)["x1"];
        d.goto(format!("{base}/items/{x1}")).await?;
        assert_text_only(d, xss, "the item page").await?;
        // and the project page's items table
        d.goto(format!("{base}/projects/{xp}")).await?;
        let cell = text_of(d, "#items tbody td.text").await?;
        ensure!(cell == xss, "items table shows {cell:?}");
        assert_no_alert(d, "the project page").await;
        Ok(())
    }

    /// The item page's history shows the prediction and each person's answer, accepted or
    /// corrected, and the audit log records who answered from where.
    pub async fn history_and_audit(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        _: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();
        let cls = reviews_project(admin)?;
        prelabel(admin, cls)?;
        let ids = item_ids(admin, cls);
        let mut labeled = Vec::new(); // (ext id, label, accepted)
        for (ext, accept) in [("r1", true), ("r2", false)] {
            let (_, item) = admin.get(&format!("/items/{}", ids[ext]));
            let pred = &item["predictions"][0];
            let suggested = pred["label"].as_str().context("a prediction")?;
            let label = match (accept, suggested) {
                (true, l) => l,
                (false, "positive") => "negative",
                (false, _) => "positive",
            };
            let (status, ann) = admin.post(
                &format!("/items/{}/annotations", ids[ext]),
                json!({"label": label, "prediction_id": pred["id"], "seconds": 1.5}),
            );
            ensure!(
                status == 201 && ann["accepted"] == accept,
                "answer {ext}: {status} {ann}"
            );
            labeled.push((ext.to_string(), label.to_string(), accept));
        }
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;
        for (ext, label, accepted) in &labeled {
            let first = ids[ext.as_str()];
            d.goto(format!("{base}/items/{first}")).await?;
            let history = js(
                d,
                "return [...document.querySelectorAll('#history tbody tr')].map((r) =>
           ({ kind: r.className, who: r.cells[1].textContent, value: r.cells[3].textContent,
              details: r.cells[4].textContent }));",
                vec![],
            )
            .await?;
            let rows = history.as_array().context("history rows")?;
            ensure!(
                rows.iter().any(|r| r["kind"] == "prediction"
                    && r["who"].as_str().is_some_and(|w| w.contains("SmolLM2"))
                    && r["value"].as_str().is_some_and(|v| v.contains('%'))),
                "no prediction row in the history: {history}"
            );
            let detail = if *accepted {
                "accepted as suggested"
            } else {
                "corrected"
            };
            ensure!(
                rows.iter().any(|r| r["kind"] == "annotation"
                    && r["who"] == "admin"
                    && r["value"] == json!(label)
                    && r["details"].as_str().is_some_and(|d| d.contains(detail))),
                "no annotation row ({label}, {detail}) in the history: {history}"
            );
            let current = text_of(d, "#current").await?;
            ensure!(current == *label, "current answer reads {current:?}");

            d.goto(format!("{base}/audit")).await?;
            let audit = js(
        d,
        "return [...document.querySelectorAll('#audit tbody tr')].map((r) =>
           [r.cells[1].textContent, r.cells[2].textContent, r.cells[3].textContent, r.cells[4].textContent]);",
        vec![],
    )
    .await?;
            let audit: Vec<(String, String, String, String)> = serde_json::from_value(audit)?;
            let target = format!("item:{first}");
            ensure!(
                audit.iter().any(|(who, addr, action, t)| who == "admin"
                    && addr == "127.0.0.1"
                    && action == "annotation.create"
                    && *t == target),
                "no annotation.create entry from 127.0.0.1 for {target}: {audit:?}"
            );
        }

        assert_clean_console(d, base, &[]).await?;
        Ok(())
    }

    /// Access control: an annotator added to one project through the page sees only that project,
    /// gets the other project's pages and API as 404, and labels what nobody labeled yet.
    pub async fn annotator_sees_one_project(
        d: &WebDriver,
        server: &Server,
        admin: &Api,
        _: &Path,
    ) -> Result<()> {
        let base = server.base.as_str();
        let cls = reviews_project(admin)?;
        let ner = ner_project(admin, "People and places", &[("n1", MERKEL)])?;
        let ids = item_ids(admin, ner);
        let cls_ids = item_ids(admin, cls);
        let labeled = ["r1", "r2", "r3"];
        for ext in labeled {
            let (status, ann) = admin.post(
                &format!("/items/{}/annotations", cls_ids[ext]),
                json!({"label": "positive", "seconds": 1.0}),
            );
            ensure!(status == 201, "answer {ext}: {status} {ann}");
        }
        log_in(d, base, "admin", ADMIN_PASSWORD).await?;

        add_user(&server.db, "ann", "annotator", "ann-password-1");
        d.goto(format!("{base}/projects/{cls}")).await?;
        d.find(By::Id("member-name"))
            .await?
            .send_keys("ann")
            .await?;
        d.find(By::Id("add-member")).await?.click().await?;
        wait_js(
        d,
        "ann in the member list",
        10,
        "const m = document.getElementById('members');
         return m && [...m.querySelectorAll('li')].some((li) => li.textContent.trim().startsWith('ann'));",
    )
    .await?;

        d.delete_all_cookies().await?;
        d.goto(format!("{base}/")).await?;
        wait_js(
            d,
            "the login page",
            10,
            "return location.pathname === '/login'",
        )
        .await
        .context("without cookies the session must be gone")?;
        log_in(d, base, "ann", "ann-password-1").await?;
        let names = js(
        d,
        "return [...document.querySelectorAll('#projects tbody tr td:first-child')].map((c) => c.textContent);",
        vec![],
    )
    .await?;
        ensure!(
            names == json!(["Movie reviews"]),
            "the annotator sees projects {names}"
        );
        ensure!(
            d.find_all(By::Id("new-project")).await?.is_empty(),
            "the annotator sees the new project form"
        );
        let hidden = [
            format!("/projects/{ner}"),
            format!("/projects/{ner}/annotate"),
            format!("/items/{}", ids["n1"]),
        ];
        for path in &hidden {
            d.goto(format!("{base}{path}")).await?;
            let h1 = text_of(d, "h1").await?;
            ensure!(
                h1 == "404 Not Found",
                "{path} as the annotator shows {h1:?}"
            );
        }
        d.goto(format!("{base}/projects/{cls}")).await?;
        ensure!(
            text_of(d, "#project h1").await? == "Movie reviews",
            "the annotator cannot open their project"
        );
        ensure!(
            d.find_all(By::Id("start-prelabel")).await?.is_empty(),
            "the annotator sees the pre-label button"
        );
        // They can label in their project: the three items nobody labeled yet are theirs.
        d.find(By::Id("start-labeling")).await?.click().await?;
        let ext = annotate_ready(d, 0).await?;
        ensure!(
            !ext.is_empty() && labeled.iter().all(|e| *e != ext),
            "the annotator was given {ext:?}"
        );
        let ann = server.client("ann");
        let (status, body) = ann.get(&format!("/projects/{ner}"));
        ensure!(
            status == 404,
            "API: the other project answers {status} {body}"
        );
        let (status, body) = ann.get(&format!("/items/{}", ids["n1"]));
        ensure!(
            status == 404,
            "API: the other project's item answers {status} {body}"
        );
        let (status, body) = ann.get("/projects");
        ensure!(
            status == 200
                && body
                    .as_array()
                    .or_else(|| body["items"].as_array())
                    .is_some_and(|a| a.len() == 1 && a[0]["id"] == cls),
            "API: the annotator's projects are {body}"
        );
        // The other project's pages answered with the HTTP status 404, and nothing else failed.
        assert_clean_console(d, base, &hidden).await?;
        Ok(())
    }
}

#[test]
fn span_of_counts_code_points() {
    assert_eq!(
        span_of("🎉 Ana met Bob", "Bob", "PER"),
        json!({"start": 10, "end": 13, "label": "PER"})
    );
}
