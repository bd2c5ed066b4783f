//! Labeling functions in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against the real `wick serve` binary (no model) and a real SQLite file.
//!
//! A support-ticket project has items that say "refund", "money back" or "card", a rule on
//! "card" made through the API and a few human answers. On the rules page the admin types a
//! keyword rule and watches the live preview count its hits and highlight what matched, saves
//! it with Ctrl+Enter and reads its figures in the table, sees a half-typed pattern refused
//! inline with its position, opens a rule's hits and disagreements, and applies the rules by
//! majority vote. The predictions reach the item API and the labeling queue; an annotator sees
//! the table without the editor. Needs /usr/bin/chromium and /usr/bin/chromedriver.
use crate::common;

use crate::browser::{self, assert_clean_console, assert_no_alert, js, keys, log_in, wait_js};
use anyhow::{ensure, Context, Result};
use common::server::{Api, Server, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use thirtyfour::components::SelectElement;
use thirtyfour::prelude::*;

const PASSWORD: &str = "rules-pass-1";

/// (external id, text): ten items with "refund" (r10 also says "card"), three with "money
/// back", ten with "card" and seven with neither, in import order.
const ITEMS: [(&str, &str); 30] = [
    ("r01", "Please refund my order, it arrived broken."),
    ("r02", "I asked for a refund last week and heard nothing."),
    ("r03", "The refund shows on my statement twice."),
    ("r04", "Where is my refund?"),
    ("r05", "Can I get a refund for the late delivery?"),
    ("r06", "Refund please, the parcel never came."),
    ("r07", "I want a refund, not a voucher."),
    ("r08", "No refund has arrived yet."),
    ("r09", "How long does a refund take?"),
    ("r10", "Put the refund back on my card please."),
    ("m01", "I want my money back."),
    ("m02", "Give me my money back now."),
    ("m03", "Money back guarantee, they said."),
    ("c01", "My card was declined at checkout."),
    ("c02", "I lost my card yesterday."),
    ("c03", "The reader rejected my card."),
    ("c04", "Can I add a second card to the account?"),
    ("c05", "My card expired last month."),
    ("c06", "Why was my card charged twice?"),
    ("c07", "The new card has not arrived."),
    ("c08", "Block my card, it was stolen."),
    ("c09", "Is a virtual card available?"),
    ("c10", "My card PIN does not work."),
    ("o01", "What are your opening hours?"),
    ("o02", "How do I change my address?"),
    ("o03", "The app keeps crashing."),
    ("o04", "Do you ship to Canada?"),
    ("o05", "I forgot my password."),
    ("o06", "Thanks for the quick help!"),
    ("o07", "Where can I find the invoice?"),
];

/// The admin's answers: r03 is answered "card", so a "refund" rule is right on 2 of 3.
const ANSWERS: [(&str, &str); 5] = [
    ("r01", "refund"),
    ("r02", "refund"),
    ("r03", "card"),
    ("c01", "card"),
    ("o01", "other"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_rules_editor_preview_and_apply() -> Result<()> {
    browser::run("rules", false, |d, server, admin, _| {
        Box::pin(steps(d, server, admin))
    })
    .await
}

/// The project, its items (by external id) and the answers, through the API.
fn fixture(admin: &Api) -> Result<(i64, HashMap<String, i64>)> {
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Support tickets", "task": "classification",
               "labels": ["refund", "card", "other"], "queue_order": "sequential"}),
    );
    ensure!(status == 201, "create the project: {status} {p}");
    let project = p["id"].as_i64().context("project id")?;
    let rows: String = ITEMS
        .iter()
        .map(|(id, text)| format!("{}\n", json!({"id": id, "text": text})))
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{project}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    ensure!(
        status == 200 && report["inserted"] == 30,
        "import: {report}"
    );
    let (_, page) = admin.get(&format!("/projects/{project}/items?limit=100"));
    let ids: HashMap<String, i64> = page["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|i| Some((i["ext_id"].as_str()?.to_string(), i["id"].as_i64()?)))
        .collect();
    ensure!(ids.len() == 30, "30 items listed: {page}");
    for (ext, label) in ANSWERS {
        let (status, body) = admin.post(
            &format!("/items/{}/annotations", ids[ext]),
            json!({"label": label, "seconds": 2.0}),
        );
        ensure!(status == 201, "answer {ext}: {status} {body}");
    }
    let (status, rule) = admin.post(
        &format!("/projects/{project}/rules"),
        json!({"name": "card_words", "label": "card", "kind": "keywords", "terms": ["card"]}),
    );
    ensure!(status == 201, "the card rule: {status} {rule}");
    Ok((project, ids))
}

/// The live preview once it shows `hits` hits: its figures and the highlighted matches.
async fn preview_with(d: &WebDriver, hits: u64) -> Result<Value> {
    wait_js(
        d,
        &format!("the preview to show {hits} hits"),
        20,
        &format!(
            "const n = document.getElementById('preview-hits');
             if (!n || n.textContent !== '{hits}') return null;
             return {{ coverage: document.getElementById('preview-coverage').textContent,
                      accuracy: document.getElementById('preview-accuracy').textContent,
                      figures: document.getElementById('preview-figures').textContent,
                      error: document.getElementById('rule-error').hidden ? null : document.getElementById('rule-error').textContent,
                      examples: [...document.querySelectorAll('#preview-examples li')].map((li) => ({{
                        ext: li.querySelector('code').textContent,
                        marks: [...li.querySelectorAll('mark.hit')].map((m) => m.textContent) }})) }};"
        ),
    )
    .await
}

/// The table's row of `rule` once the table has it: its cells by class.
async fn table_row(d: &WebDriver, rule: &str) -> Result<Value> {
    wait_js(
        d,
        &format!("rule {rule} in the table"),
        20,
        &format!(
            "const row = [...document.querySelectorAll('#rules-table tr.rule')].find((r) => r.dataset.rule === '{rule}');
             if (!row) return null;
             const cell = (c) => row.querySelector('.rule-' + c).textContent.trim().replace(/\\s+/g, ' ');
             return {{ kind: cell('kind'), label: cell('label'), coverage: cell('coverage'), hits: cell('hits'),
                      overlaps: cell('overlaps'), conflicts: cell('conflicts'), model: cell('model'),
                      accuracy: cell('accuracy'), version: cell('version') }};"
        ),
    )
    .await
}

/// The external ids listed in the rule's sample panel once it has `n` of them.
async fn sample(d: &WebDriver, what: &str, n: usize) -> Result<BTreeSet<String>> {
    let v = wait_js(
        d,
        &format!("{n} {what} in the sample panel"),
        20,
        &format!(
            "const items = [...document.querySelectorAll('#examples-list li')];
             if (document.getElementById('rule-examples').hidden || items.length !== {n}) return null;
             return items.map((li) => ({{ ext: li.querySelector('code').textContent,
                                          href: li.querySelector('a').getAttribute('href'),
                                          id: li.dataset.item }}));"
        ),
    )
    .await?;
    let mut out = BTreeSet::new();
    for item in v.as_array().context("sample")? {
        let id = item["id"].as_str().unwrap_or_default();
        ensure!(
            item["href"].as_str() == Some(&format!("/items/{id}")),
            "each sample links to its item page: {item}"
        );
        out.insert(item["ext"].as_str().unwrap_or_default().to_string());
    }
    Ok(out)
}

fn ext_set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

async fn ctrl_enter(d: &WebDriver) -> Result<()> {
    d.action_chain()
        .key_down(Key::Control)
        .key_down(Key::Enter)
        .key_up(Key::Enter)
        .key_up(Key::Control)
        .perform()
        .await?;
    Ok(())
}

/// Drains the console, where Chromium logs each refused preview (the 422 of a half-typed
/// pattern) as a failed load: nothing else may be there.
async fn only_refused_previews(d: &WebDriver) -> Result<()> {
    let log = d.browser_log().await.context("read the browser console")?;
    let other: Vec<&str> = log
        .iter()
        .filter(|e| e.level == "SEVERE" || e.level == "WARNING")
        .map(|e| e.message.as_str())
        .filter(|m| !(m.contains("/rules/preview ") && m.contains("status of 422")))
        .collect();
    ensure!(
        other.is_empty(),
        "the browser console shows errors: {other:#?}"
    );
    Ok(())
}

async fn focused(d: &WebDriver) -> Result<String> {
    let v = js(
        d,
        "return document.activeElement.id || document.activeElement.tagName;",
        vec![],
    )
    .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

async fn steps(d: &WebDriver, server: &Server, admin: &Api) -> Result<()> {
    let base = server.base.as_str();
    let (project, ids) = fixture(admin)?;

    // ---- the project page links to the rules page, which draws the card rule ----
    log_in(d, base, "admin", ADMIN_PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}")).await?;
    d.find(By::Id("rules-link")).await?.click().await?;
    let card = table_row(d, "card_words").await?;
    ensure!(
        card == json!({"kind": "keywords", "label": "card", "coverage": "36.7%", "hits": "11",
                       "overlaps": "0", "conflicts": "0", "model": "— 0/0", "accuracy": "100.0% 1/1",
                       "version": card["version"]}),
        "the card rule's row: {card}"
    );
    ensure!(
        card["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1 admin")),
        "{card}"
    );

    // ---- `n` starts a rule; the preview follows the terms as they are typed ----
    keys(d, "n").await?;
    ensure!(
        focused(d).await? == "rule-name",
        "n focuses the rule's name"
    );
    keys(d, "refund_words").await?;
    SelectElement::new(&d.find(By::Id("rule-label")).await?)
        .await?
        .select_by_value("refund")
        .await?;
    d.find(By::Id("rule-text")).await?.click().await?;
    keys(d, "refund").await?;
    let p = preview_with(d, 10).await?;
    ensure!(
        p["coverage"] == "33.3%" && p["accuracy"] == "66.7%" && p["error"].is_null(),
        "the preview of \"refund\": {p}"
    );
    ensure!(
        p["figures"]
            .as_str()
            .is_some_and(|f| f.contains("1 overlap · 1 conflict")),
        "r10 also says card: {p}"
    );
    let examples = p["examples"].as_array().context("examples")?;
    ensure!(
        !examples.is_empty()
            && examples[0]["ext"] == "r01"
            && examples[0]["marks"] == json!(["refund"]),
        "the first match is r01 with \"refund\" highlighted: {p}"
    );
    ensure!(
        examples
            .iter()
            .all(|e| e["marks"].as_array().is_some_and(|m| m.len() == 1
                && m[0].as_str().map(str::to_lowercase).as_deref() == Some("refund"))),
        "every match highlights the keyword: {p}"
    );
    keys(d, Key::Enter).await?;
    keys(d, "money back").await?;
    let p = preview_with(d, 13).await?;
    ensure!(p["coverage"] == "43.3%", "{p}");
    let marks: Vec<String> = p["examples"]
        .as_array()
        .context("examples")?
        .iter()
        .flat_map(|e| e["marks"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_lowercase))
        .collect();
    ensure!(
        marks.iter().all(|m| m == "refund" || m == "money back"),
        "only the terms are highlighted: {p}"
    );

    // ---- Ctrl+Enter saves it; the table draws its figures and the set's ----
    ctrl_enter(d).await?;
    let refund = table_row(d, "refund_words").await?;
    ensure!(
        refund
            == json!({"kind": "keywords", "label": "refund", "coverage": "43.3%", "hits": "13",
                      "overlaps": "1", "conflicts": "1", "model": "— 0/0", "accuracy": "66.7% 2/3",
                      "version": refund["version"]}),
        "the saved rule's row: {refund}"
    );
    let totals = js(
        d,
        "const t = (id) => document.getElementById(id).textContent;
         return [t('total-coverage'), t('total-covered'), t('total-conflicted'), t('total-annotated-covered'),
                 document.getElementById('rule-name').value, document.getElementById('message').textContent];",
        vec![],
    )
    .await?;
    ensure!(
        totals.as_array().map(|t| &t[..4])
            == Some(&[json!("76.7%"), json!("23"), json!("1"), json!("4")][..]),
        "23 of 30 items covered, r10 conflicted, 4 of 5 answered ones covered: {totals}"
    );
    ensure!(
        totals[4] == "" && totals[5] == "Saved rule refund_words (version 1).",
        "the editor is cleared after saving: {totals}"
    );
    let (_, api_rules) = admin.get(&format!("/projects/{project}/rules"));
    ensure!(
        api_rules["rules"][1]["name"] == "refund_words" && api_rules["rules"][1]["hits"] == 13,
        "page and API agree: {api_rules}"
    );

    assert_clean_console(d, base, &[]).await?;

    // ---- a half-typed pattern is refused inline, naming where ----
    d.find(By::Id("rule-name")).await?.click().await?;
    keys(d, "bad_pattern").await?;
    SelectElement::new(&d.find(By::Id("rule-kind")).await?)
        .await?
        .select_by_value("regex")
        .await?;
    d.find(By::Id("rule-text")).await?.click().await?;
    keys(d, "money (back").await?;
    let error = wait_js(
        d,
        "the pattern's error",
        20,
        "const e = document.getElementById('rule-error');
         return !e.hidden && e.textContent.startsWith('pattern:') ? e.textContent : null;",
    )
    .await?;
    ensure!(
        error
            .as_str()
            .is_some_and(|e| e.starts_with("pattern: at character 7") && e.contains("unclosed")),
        "the error names the open parenthesis: {error}"
    );
    assert_no_alert(d, "the rules page").await;
    only_refused_previews(d).await?;
    keys(d, Key::Escape).await?;
    ensure!(focused(d).await? == "BODY", "Esc leaves the editor");
    d.find(By::Id("rule-clear")).await?.click().await?;

    // ---- a rule's hits and disagreements ----
    d.find(By::Css(
        "#rules-table tr.rule[data-rule='refund_words'] .rule-name",
    ))
    .await?
    .click()
    .await?;
    let hits = sample(d, "hits", 13).await?;
    let want: Vec<&str> = ITEMS
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| id.starts_with('r') || id.starts_with('m'))
        .collect();
    ensure!(hits == ext_set(&want), "the refund rule's hits: {hits:?}");
    d.find(By::Id("show-disagreements")).await?.click().await?;
    let against = sample(d, "disagreements", 2).await?;
    ensure!(
        against == ext_set(&["r03", "r10"]),
        "people say card on r03, the card rule on r10: {against:?}"
    );

    // ---- apply by majority vote; the job's end redraws the last apply ----
    SelectElement::new(&d.find(By::Id("apply-method")).await?)
        .await?
        .select_by_value("majority")
        .await?;
    d.find(By::Id("apply-run")).await?.click().await?;
    let applied = wait_js(
        d,
        "the apply job to finish and the table to show it",
        60,
        "const s = document.getElementById('apply-status');
         const m = document.getElementById('applied-method');
         if (s.dataset.status !== 'done' || !m) return null;
         return { method: m.textContent, predicted: document.getElementById('applied-predicted').textContent,
                  stale: !!document.getElementById('applied-stale'),
                  voters: [...document.querySelectorAll('#applied-voters tbody tr')].map((tr) =>
                    [...tr.cells].map((c) => c.textContent.trim()).join(' | ')) };",
    )
    .await?;
    // 23 covered items less the 4 people answered.
    ensure!(
        applied
            == json!({"method": "majority vote", "predicted": "19", "stale": false,
                      "voters": ["card_words | rule | 11 | —", "refund_words | rule | 13 | —"]}),
        "the last apply: {applied}"
    );

    // ---- the predictions: the rules' label on r04, an even split on r10 ----
    let latest = |ext: &str| -> Result<Value> {
        let (_, item) = admin.get(&format!("/items/{}", ids[ext]));
        item["predictions"]
            .as_array()
            .and_then(|p| p.last().cloned())
            .with_context(|| format!("{ext} has no prediction: {item}"))
    };
    let r04 = latest("r04")?;
    ensure!(
        r04["model_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("rules@"))
            && r04["label"] == "refund"
            && r04["confidence"].as_f64() == Some(1.0),
        "r04's prediction: {r04}"
    );
    let r10 = latest("r10")?;
    ensure!(
        r10["confidence"].as_f64() == Some(0.5),
        "r10's two rules tie: {r10}"
    );
    let (_, o02) = admin.get(&format!("/items/{}", ids["o02"]));
    ensure!(
        o02["predictions"].as_array().is_some_and(Vec::is_empty),
        "no rule covers o02: {o02}"
    );

    // ---- the labeling queue serves r04 (the first unanswered item) with the rules' label ----
    d.goto(format!("{base}/projects/{project}/annotate"))
        .await?;
    let ext = browser::annotate_ready(d, 0).await?;
    let suggestion = crate::browser::text_of(d, "#suggestion").await?;
    ensure!(
        ext == "r04" && suggestion.contains("refund") && suggestion.contains("100%"),
        "the queue shows {ext} with {suggestion:?}"
    );
    assert_clean_console(d, base, &[]).await?;

    // ---- Edit loads a rule into the editor; saving it makes version 2 and the apply stale ----
    d.goto(format!("{base}/projects/{project}/rules")).await?;
    d.find(By::Css(
        "#rules-table tr.rule[data-rule='card_words'] .rule-edit",
    ))
    .await?
    .click()
    .await?;
    let loaded = wait_js(
        d,
        "card_words in the editor",
        20,
        "const $ = (id) => document.getElementById(id);
         if ($('rule-name').value !== 'card_words') return null;
         return [$('rule-kind').value, $('rule-label').value, $('rule-text').value, $('editor-title').textContent];",
    )
    .await?;
    ensure!(
        loaded
            == json!([
                "keywords",
                "card",
                "card",
                "Edit rule card_words (saving makes a new version)"
            ]),
        "{loaded}"
    );
    d.find(By::Id("rule-text")).await?.click().await?;
    keys(d, Key::End).await?;
    keys(d, Key::Enter).await?;
    keys(d, "debit").await?;
    ctrl_enter(d).await?;
    let edited = wait_js(
        d,
        "version 2 of card_words",
        20,
        "const row = document.querySelector(\"#rules-table tr.rule[data-rule='card_words']\");
         const v = row && row.querySelector('.rule-version').textContent;
         if (!v || !v.startsWith('v2')) return null;
         return { what: row.querySelector('.rule-what').textContent, hits: row.querySelector('.rule-hits').textContent,
                  stale: !!document.getElementById('applied-stale') };",
    )
    .await?;
    ensure!(
        edited == json!({"what": "card, debit", "hits": "11", "stale": true}),
        "{edited}"
    );
    assert_clean_console(d, base, &[]).await?;

    // ---- an NER project's rules page measures spans ----
    let (status, ner) = admin.post(
        "/projects",
        json!({"name": "Entities", "task": "ner", "labels": ["PER"]}),
    );
    ensure!(status == 201, "create the NER project: {status} {ner}");
    d.goto(format!("{base}/projects/{}/rules", ner["id"]))
        .await?;
    let page = wait_js(
        d,
        "the NER project's rules page",
        20,
        "const e = document.getElementById('rule-form');
         return e && { text: document.getElementById('rules').textContent,
                       note: !!document.getElementById('rules-unavailable') };",
    )
    .await?;
    ensure!(
        page["text"]
            .as_str()
            .is_some_and(|t| t.contains("proposes spans of its type"))
            && page["note"] == false,
        "{page}"
    );

    // ---- an annotator sees the figures, not the editor ----
    browser::member(server, admin, project, "ann", "annotator", PASSWORD)?;
    d.delete_all_cookies().await?;
    log_in(d, base, "ann", PASSWORD).await?;
    d.goto(format!("{base}/projects/{project}/rules")).await?;
    let view = wait_js(
        d,
        "the annotator's rules page",
        20,
        "if (document.readyState !== 'complete' || !document.getElementById('rules-table')) return null;
         return { rows: document.querySelectorAll('#rules-table tr.rule').length,
                  editor: !!document.getElementById('rule-form'), apply: !!document.getElementById('apply-form'),
                  delete: document.querySelectorAll('.rule-delete').length };",
    )
    .await?;
    ensure!(
        view == json!({"rows": 2, "editor": false, "apply": false, "delete": 0}),
        "{view}"
    );
    d.find(By::Css(
        "#rules-table tr.rule[data-rule='card_words'] .rule-name",
    ))
    .await?
    .click()
    .await?;
    let hits = sample(d, "hits", 11).await?;
    ensure!(hits.contains("r10") && hits.contains("c01"), "{hits:?}");
    assert_clean_console(d, base, &[]).await?;
    Ok(())
}
