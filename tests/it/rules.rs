//! Labeling functions through the real server, model and SQLite file: rules are written and
//! refused with clear errors, their figures counted against the model's labels and people's
//! answers, previewed, applied by majority vote and by the label model into `rules@`
//! predictions that move the queue, auto-accepted and exported as `source: rules`; a cancelled
//! apply writes nothing.
use crate::common;

use common::server::{wait_job, Api, Server};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::Path;

const REFUND: [&str; 6] = [
    "I would like a refund for the broken headphones.",
    "Please refund my last order, it never came.",
    "How long does a refund take to reach my account?",
    "Can I get my money back for the cancelled trip?",
    "I returned the shoes, where is my refund?",
    "Refund me for the duplicate purchase please.",
];
const CARD: [&str; 5] = [
    "My new card has not arrived yet.",
    "When will my card arrive in the post?",
    "The card you sent me still did not come.",
    "I am waiting for my card to arrive.",
    "Has my replacement card been sent? It has not arrived.",
];
const OTHER: [&str; 5] = [
    "What are your opening hours on Sunday?",
    "I want to change my address.",
    "Is there a fee for transfers abroad?",
    "How do I reset my password?",
    "Can I open a second account?",
];

fn rows() -> Vec<(String, &'static str)> {
    REFUND
        .iter()
        .chain(&CARD)
        .chain(&OTHER)
        .enumerate()
        .map(|(i, t)| (format!("m{i:02}"), *t))
        .collect()
}

fn project(admin: &Api) -> i64 {
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Support", "task": "classification",
               "labels": ["refund", "card_arrival", "other"], "retrain_every": 0}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().expect("id");
    admin.import_texts(id, rows().iter().map(|(ext, text)| (ext.as_str(), *text)));
    id
}

fn item_id(db: &Path, ext: &str) -> i64 {
    Connection::open(db)
        .expect("db")
        .query_row("SELECT id FROM items WHERE ext_id = ?1", [ext], |r| {
            r.get(0)
        })
        .expect("item")
}

fn error_message(reply: &(u16, Value)) -> String {
    reply.1["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The latest prediction of every item: ext_id -> (model_id, label, confidence, margin, output).
fn latest(db: &Path) -> std::collections::HashMap<String, (String, String, f64, f64, Value)> {
    let c = Connection::open(db).expect("db");
    let mut stmt = c
        .prepare(
            "SELECT i.ext_id, p.model_id, COALESCE(p.label, ''), p.confidence, p.margin, p.output FROM items i
             JOIN predictions p ON p.id = (SELECT MAX(id) FROM predictions WHERE item_id = i.id)",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        let output: String = r.get(5)?;
        Ok((
            r.get(0)?,
            (
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                serde_json::from_str(&output).unwrap_or(Value::Null),
            ),
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

#[test]
fn rules_are_measured_previewed_applied_accepted_and_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let id = project(&admin);
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        wait_job(&admin, job["id"].as_i64().expect("id"))["status"],
        "done"
    );
    let rules = format!("/projects/{id}/rules");

    // Bad rules are refused, naming the field and, for a pattern, the position.
    let bad = admin.post(
        &rules,
        json!({"name": "r", "label": "card_arrival", "kind": "regex", "pattern": "card (arriv"}),
    );
    assert_eq!(bad.0, 422, "{}", bad.1);
    assert_eq!(
        error_message(&bad),
        "pattern: at character 6: unclosed group"
    );
    let bad = admin.post(
        &rules,
        json!({"name": "r", "label": "nope", "kind": "keywords", "terms": ["x"]}),
    );
    assert_eq!(
        (
            bad.0,
            error_message(&bad).starts_with("label: \"nope\" is not one of")
        ),
        (422, true),
        "{}",
        bad.1
    );
    let bad = admin.post(
        &rules,
        json!({"name": "r", "label": "other", "kind": "keywords", "terms": []}),
    );
    assert_eq!(
        (bad.0, error_message(&bad)),
        (422, "terms: give at least one term".to_string())
    );
    let bad = admin.post(&rules, json!({"name": "r", "label": "other", "kind": "lookup", "file_name": "x.txt", "file": "hours\nopen\tclosed\n"}));
    assert_eq!(
        error_message(&bad),
        "file: line 2: holds a tab or control character (one term per line)"
    );
    let bad = admin.post(
        &rules,
        json!({"name": "r", "label": "other", "kind": "regex", "pattern": "(\\w{200}){200}"}),
    );
    assert!(
        error_message(&bad).starts_with("pattern: compiles to more than"),
        "{}",
        bad.1
    );
    let bad = admin.post(&rules, json!({"name": "r", "label": "other", "kind": "similar", "examples": ["m99"], "threshold": 0.9}));
    assert!(
        error_message(&bad).contains("\"m99\" is not in the project"),
        "{}",
        bad.1
    );
    let annotator_try = {
        common::server::add_user(&db, "ann", "annotator", "password-ann");
        server.client("ann").post(
            &rules,
            json!({"name": "r", "label": "other", "kind": "keywords", "terms": ["x"]}),
        )
    };
    assert_eq!(annotator_try.0, 403, "{}", annotator_try.1);

    // Two rules: "refund" (6 refund messages, one says "money back" instead: 5 + the lookup of
    // the phrase below) and card arrival.
    let (status, r) = admin.post(
        &rules,
        json!({"name": "refund", "label": "refund", "kind": "keywords", "terms": ["refund"]}),
    );
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["version"], 1);
    let dup = admin.post(
        &rules,
        json!({"name": "refund", "label": "refund", "kind": "keywords", "terms": ["x"]}),
    );
    assert_eq!(dup.0, 409, "{}", dup.1);
    let (status, r) = admin.post(
        &rules,
        json!({"name": "arrival", "label": "card_arrival", "kind": "regex",
        "pattern": r"\bcard\b.*\b(arriv|come)"}),
    );
    assert_eq!(status, 201, "{r}");
    // A lookup rule that contradicts: "account" voted as other (it fires on a refund message too).
    let (status, r) = admin.post(
        &rules,
        json!({"name": "accounts", "label": "other", "kind": "lookup",
        "file_name": "words.txt", "file": "# support words\naccount\npassword\n"}),
    );
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["terms"], json!(["account", "password"]));

    // People answer three refund messages; one of them calls it "other".
    for (ext, label) in [("m00", "refund"), ("m01", "refund"), ("m02", "other")] {
        let item = item_id(&db, ext);
        let (status, body) = admin.post(
            &format!("/items/{item}/annotations"),
            json!({"label": label}),
        );
        assert_eq!(status, 201, "{body}");
    }

    let (status, table) = admin.get(&rules);
    assert_eq!(status, 200, "{table}");
    assert_eq!(table["items"], 16);
    let by_name = |name: &str| -> Value {
        table["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .expect("rule row")
    };
    let refund = by_name("refund");
    // m00, m01, m02, m04, m05 say "refund" (m05 as "Refund", matched in any case).
    assert_eq!(
        (
            refund["hits"].as_u64(),
            refund["annotated"].as_u64(),
            refund["correct"].as_u64()
        ),
        (Some(5), Some(3), Some(2))
    );
    assert!((refund["accuracy"].as_f64().expect("accuracy") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(refund["with_model"], 5, "every item was pre-labeled");
    // m02 ("reach my account") is covered by two rules with different labels.
    assert_eq!(
        (refund["overlaps"].as_u64(), refund["conflicts"].as_u64()),
        (Some(1), Some(1))
    );
    let arrival = by_name("arrival");
    assert_eq!(arrival["hits"], 5, "{arrival}");
    let accounts = by_name("accounts");
    assert_eq!(
        accounts["hits"], 3,
        "m02, m13 password, m15 account: {accounts}"
    );
    assert_eq!(table["covered"], 12);
    assert_eq!(table["conflicted"], 1);
    assert_eq!(
        (
            table["annotated"].as_u64(),
            table["annotated_covered"].as_u64()
        ),
        (Some(3), Some(3))
    );

    // The disagreements of "refund": m02 (a person and another rule say otherwise), and any item
    // where the model said otherwise.
    let (_, dis) = admin.get(&format!("{rules}/refund/examples?sample=disagreements"));
    let dis: Vec<&str> = dis["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["ext_id"].as_str().unwrap_or(""))
        .collect();
    assert!(dis.contains(&"m02"), "{dis:?}");

    // A preview while typing: the phrase matches the one message that says it, with its span.
    let (status, preview) = admin.post(
        &format!("{rules}/preview"),
        json!({"name": "draft", "label": "refund", "kind": "keywords", "terms": ["money back"]}),
    );
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        (preview["hits"].as_u64(), preview["sampled"].as_u64()),
        (Some(1), Some(16))
    );
    let example = &preview["examples"][0];
    assert_eq!(example["ext_id"], "m03");
    let text: Vec<char> = example["text"].as_str().expect("text").chars().collect();
    let span = &example["spans"][0];
    let (s, e) = (
        span[0].as_u64().expect("start") as usize,
        span[1].as_u64().expect("end") as usize,
    );
    assert_eq!(text[s..e].iter().collect::<String>(), "money back");
    let half = admin.post(
        &format!("{rules}/preview"),
        json!({"name": "draft", "label": "refund", "kind": "regex", "pattern": "money (back"}),
    );
    assert_eq!(
        (half.0, error_message(&half)),
        (422, "pattern: at character 7: unclosed group".to_string())
    );

    // A new version of "refund" with the phrase; the history keeps both.
    let (status, v2) = admin.send("PUT", &format!("{rules}/refund"), json!({"name": "refund", "label": "refund", "kind": "keywords", "terms": ["refund", "money back"]}));
    assert_eq!((status, v2["version"].as_i64()), (200, Some(2)), "{v2}");
    let renamed = admin.send(
        "PUT",
        &format!("{rules}/refund"),
        json!({"name": "other", "label": "refund", "kind": "keywords", "terms": ["x"]}),
    );
    assert_eq!(renamed.0, 422, "{}", renamed.1);

    // Majority vote first: where the rule and the model agree the item gets confidence 1, and
    // auto-accept at 0.99 takes exactly those.
    let before = latest(&db);
    let (status, a) = admin.post(
        &format!("/projects/{id}/auto-accept"),
        json!({"enabled": true, "threshold": 0.99}),
    );
    assert_eq!(status, 200, "{a}");
    let (status, job) = admin.post(&format!("{rules}/apply"), json!({"method": "majority"}));
    assert_eq!(status, 202, "{job}");
    let again = admin.post(&format!("{rules}/apply"), json!({"method": "majority"}));
    let job = wait_job(&admin, job["id"].as_i64().expect("id"));
    assert_eq!(job["status"], "done", "{job}");
    assert!(
        again.0 == 202 || again.0 == 409,
        "a second apply is queued or refused: {}",
        again.1
    );
    if again.0 == 202 {
        wait_job(&admin, again.1["id"].as_i64().expect("id"));
    }
    let after = latest(&db);
    let rule_label = |ext: &str| -> Option<&str> {
        let i: usize = ext[1..].parse().ok()?;
        let text = rows()[i].1.to_lowercase();
        if text.contains("refund") || text.contains("money back") {
            Some("refund")
        } else if text.contains("card") && (text.contains("arriv") || text.contains("come")) {
            Some("card_arrival")
        } else if text.contains("account") || text.contains("password") {
            Some("other")
        } else {
            None
        }
    };
    let mut agreeing = 0;
    for (ext, _) in rows() {
        let (model_id, label, confidence, _, output) = &after[&ext];
        let answered = ["m00", "m01", "m02"].contains(&ext.as_str());
        match (rule_label(&ext), answered) {
            (Some(rule), false) => {
                assert!(
                    model_id.starts_with("rules@") && model_id.contains("/majority+model"),
                    "{ext}: {model_id}"
                );
                let model = before[&ext].1.as_str();
                if model == rule {
                    agreeing += 1;
                    assert_eq!((label.as_str(), *confidence), (rule, 1.0), "{ext}");
                } else {
                    assert!(
                        (*confidence - 0.5).abs() < 1e-9,
                        "{ext}: a tie of rule and model"
                    );
                }
                assert_eq!(output["votes"]["model"], json!(model), "{ext}: {output}");
            }
            // Uncovered or answered: the language model's prediction stays the latest.
            _ => assert_eq!(model_id, &before[&ext].0, "{ext}"),
        }
    }
    assert!(agreeing >= 1, "the model agrees with the rules somewhere");
    let c = Connection::open(&db).expect("db");
    let accepted: i64 = c
        .query_row("SELECT COUNT(*) FROM resolutions r JOIN predictions p ON p.id = r.prediction_id WHERE p.model_id LIKE 'rules@%'", [], |r| r.get(0))
        .expect("count");
    assert_eq!(accepted, agreeing, "auto-accept took the unanimous ones");
    // The export says which labels came from rules.
    let export = admin
        .req("GET", &format!("/projects/{id}/export?format=labels"))
        .call()
        .expect("export")
        .into_string()
        .expect("body");
    let from_rules = export
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["source"] == "rules")
        .count();
    assert_eq!(from_rules as i64, agreeing, "{export}");

    // The label model: covered unanswered items not accepted get its distribution, and the
    // queue orders by its margin.
    admin.post(
        &format!("/projects/{id}/auto-accept"),
        json!({"enabled": false}),
    );
    let (_, job) = admin.post(&format!("{rules}/apply"), json!({"method": "label_model"}));
    let job = wait_job(&admin, job["id"].as_i64().expect("id"));
    assert_eq!(job["status"], "done", "{job}");
    let after = latest(&db);
    let m03 = &after["m03"];
    assert!(m03.0.contains("/dawid-skene+model"), "{}", m03.0);
    let p: f64 = m03.4["scores"]
        .as_object()
        .expect("scores")
        .values()
        .filter_map(Value::as_f64)
        .sum();
    assert!((p - 1.0).abs() < 1e-6, "a distribution: {}", m03.4);
    let priority: f64 = c
        .query_row("SELECT priority FROM items WHERE ext_id = 'm03'", [], |r| {
            r.get(0)
        })
        .expect("priority");
    assert!(
        (priority - m03.3).abs() < 1e-9,
        "the queue moved to the rules' margin"
    );
    let (_, table) = admin.get(&rules);
    let applied = &table["applied"];
    assert_eq!(applied["method"], "label_model");
    assert_eq!(applied["rules_hash"], table["rules_hash"]);
    let voters: Vec<&str> = applied["voters"]
        .as_array()
        .expect("voters")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(voters, ["accounts", "arrival", "refund", "model"]);
    for v in applied["voters"].as_array().expect("voters") {
        let a = v["accuracy"].as_f64().expect("an estimated accuracy");
        assert!((0.0..=1.0).contains(&a), "{v}");
    }

    // Deleting keeps the history; every change is in the audit log.
    let (status, _) = admin.send("DELETE", &format!("{rules}/accounts"), json!({}));
    assert_eq!(status, 204);
    let (_, history) = admin.get(&format!("{rules}/accounts/history"));
    let versions = history["items"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    assert!(versions[1]["spec"].is_null());
    let actions: Vec<String> = {
        let mut stmt = c
            .prepare("SELECT action FROM audit WHERE action LIKE 'rule.%' ORDER BY id")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        actions,
        [
            "rule.add",
            "rule.add",
            "rule.add",
            "rule.update",
            "rule.delete"
        ]
    );
    let (_, table) = admin.get(&rules);
    assert_eq!(table["rules"].as_array().map(Vec::len), Some(2));
}

/// A project in a store of its own under `dir`: `extra` (JSON) added to its settings, `body`
/// imported as JSONL, `rules` saved.
fn stored_project(
    dir: &Path,
    extra: Value,
    body: &str,
    rules: &[Value],
) -> (wick::store::Store, wick::domain::Project) {
    let store = wick::store::Store::open(&dir.join("wick.db")).expect("store");
    let actor = wick::store::Actor::system();
    let mut settings = json!({"name": "P", "task": "classification", "labels": ["a", "b"]});
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let new: wick::domain::NewProject = serde_json::from_value(settings).expect("project");
    let project = store
        .write(|tx| wick::store::projects::create(tx, &actor, &new))
        .expect("create");
    wick::store::import::by_task(
        &store,
        &actor,
        &project,
        wick::formats::import::Format::Jsonl,
        body.as_bytes(),
        |_| {},
    )
    .expect("import");
    for spec in rules {
        let spec: wick::rules::RuleSpec = serde_json::from_value(spec.clone()).expect("spec");
        let rule = spec.validated(project.task, &project.labels).expect("rule");
        store
            .write(|tx| {
                wick::store::rules::save(
                    tx,
                    &actor,
                    project.id,
                    &rule,
                    wick::store::rules::Save::Add,
                )
            })
            .expect("save");
    }
    (store, project)
}

#[test]
fn a_cancelled_apply_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, project) = stored_project(
        dir.path(),
        json!({}),
        "{\"text\": \"alpha one\"}\n{\"text\": \"beta two\"}\n",
        &[json!({"name": "a", "label": "a", "kind": "keywords", "terms": ["alpha"]})],
    );
    let actor = wick::store::Actor::system();
    let job = store
        .write(|tx| {
            wick::store::rules::queue_apply(tx, &actor, project.id, &json!({"method": "majority"}))
        })
        .expect("queue");
    store
        .write(|tx| wick::store::jobs::cancel(tx, &actor, job.id))
        .expect("cancel");
    wick::jobs::rules::run(&store, &job).expect("run");
    let written: i64 = store
        .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM predictions", [], |r| r.get(0))?))
        .expect("count");
    assert_eq!(written, 0);
    assert_eq!(
        store
            .read(|c| wick::store::jobs::status(c, job.id))
            .expect("status"),
        wick::store::jobs::JobStatus::Cancelled
    );
    // Not cancelled, the same job writes the covered item's prediction.
    let job = store
        .write(|tx| {
            wick::store::rules::queue_apply(tx, &actor, project.id, &json!({"method": "majority"}))
        })
        .expect("queue");
    wick::jobs::rules::run(&store, &job).expect("run");
    let written: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM predictions WHERE model_id LIKE 'rules@%'",
                [],
                |r| r.get(0),
            )?)
        })
        .expect("count");
    assert_eq!(written, 1);
}

#[test]
fn ner_rules_propose_spans_measured_and_laid_over_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Places", "task": "ner", "labels": ["LOC", "PER"], "retrain_every": 0}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().expect("id");
    let texts = [
        "We flew from Köln to Lisbon on Monday.",
        "Maria met Tom in Lisbon.",
        "The office in Köln is closed.",
        "Nothing happened today.",
        "Lisbon and Porto are lovely in May.",
    ];
    let body: String = texts
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}\n", json!({"id": format!("s{i}"), "text": t})))
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{report}");
    let (_, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(
        wait_job(&admin, job["id"].as_i64().expect("id"))["status"],
        "done"
    );
    let rules = format!("/projects/{id}/rules");
    let (status, r) = admin.post(
        &rules,
        json!({"name": "cities", "label": "LOC", "kind": "lookup",
        "file_name": "cities.txt", "file": "Köln\nLisbon\nPorto\n"}),
    );
    assert_eq!(status, 201, "{r}");
    let bad = admin.post(&rules, json!({"name": "like", "label": "LOC", "kind": "similar", "examples": ["s0"], "threshold": 0.9}));
    assert_eq!(
        (
            bad.0,
            error_message(&bad).starts_with("kind: an NER rule proposes spans")
        ),
        (422, true),
        "{}",
        bad.1
    );
    // People mark s1: "Lisbon" as LOC (the rule is right) and s2 with "Köln" as PER (so it is wrong there).
    let chars = |t: &str, word: &str| {
        let at = t.find(word).expect("word");
        (
            t[..at].chars().count(),
            t[..at].chars().count() + word.chars().count(),
        )
    };
    for (ext, word, label) in [("s1", "Lisbon", "LOC"), ("s2", "Köln", "PER")] {
        let i: usize = ext[1..].parse().expect("index");
        let (start, end) = chars(texts[i], word);
        let item = item_id(&db, ext);
        let (status, body) = admin.post(
            &format!("/items/{item}/annotations"),
            json!({"entities": [{"start": start, "end": end, "label": label}]}),
        );
        assert_eq!(status, 201, "{body}");
    }
    let (_, table) = admin.get(&rules);
    let row = &table["rules"][0];
    // Köln, Lisbon (s0), Lisbon (s1), Köln (s2), Lisbon, Porto (s4): six spans in four sentences.
    assert_eq!(
        (row["hits"].as_u64(), table["covered"].as_u64()),
        (Some(6), Some(4)),
        "{table}"
    );
    assert_eq!(
        (row["annotated"].as_u64(), row["correct"].as_u64()),
        (Some(2), Some(1)),
        "{row}"
    );
    assert_eq!(row["with_model"], 6, "every sentence was pre-labeled");
    let (_, dis) = admin.get(&format!("{rules}/cities/examples?sample=disagreements"));
    let first = &dis["items"].as_array().expect("items")[0];
    assert!(
        first["votes"][0][1]
            .as_str()
            .is_some_and(|v| v.starts_with("LOC: ")),
        "{dis}"
    );

    let (_, job) = admin.post(&format!("{rules}/apply"), json!({}));
    let job = wait_job(&admin, job["id"].as_i64().expect("id"));
    assert_eq!(job["status"], "done", "{job}");
    let after = latest(&db);
    for ext in ["s0", "s4"] {
        let (model_id, _, _, _, output) = &after[ext];
        assert!(
            model_id.starts_with("rules@") && model_id.ends_with("/spans+model"),
            "{ext}: {model_id}"
        );
        let i: usize = ext[1..].parse().expect("index");
        let (start, end) = chars(texts[i], "Lisbon");
        let entities = output["entities"].as_array().expect("entities");
        // The rule's spans compete with the model's at the rule's smoothed precision (1+1)/(2+2).
        let lisbon = entities
            .iter()
            .find(|e| e["start"] == start && e["end"] == end);
        let model_there = output["lm_entities"]
            .as_array()
            .expect("lm")
            .iter()
            .any(|e| {
                e["start"].as_u64().is_some_and(|s| (s as usize) < end)
                    && e["end"].as_u64().is_some_and(|e| (e as usize) > start)
            });
        assert!(
            lisbon.is_some() || model_there,
            "{ext}: Lisbon is a rule span unless a surer model span covers it: {output}"
        );
        assert_eq!(
            output["votes"]["cities"].as_array().map(Vec::len),
            Some(2),
            "{output}"
        );
        // No two kept spans overlap.
        let mut spans: Vec<(u64, u64)> = entities
            .iter()
            .map(|e| {
                (
                    e["start"].as_u64().unwrap_or(0),
                    e["end"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        spans.sort();
        assert!(
            spans.windows(2).all(|w| w[0].1 <= w[1].0),
            "{ext}: {spans:?}"
        );
    }
    assert!(
        !after["s3"].0.is_empty() && !after["s3"].0.starts_with("rules@"),
        "no rule span: the model's stays"
    );
    assert!(
        !after["s1"].0.starts_with("rules@"),
        "answered sentences are not predicted over"
    );
}

/// An apply that moves most of a big queue drops the queue's index and builds it again inside
/// its transaction (`predictions::insert_rows`): the index must come back as it was, and the
/// queue read through it must agree with the table.
#[test]
fn a_bulk_apply_rebuilds_the_queue_index_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 150,000 items; the rules cover two in three (past the bulk threshold of 100,000 rows).
    let body: String = (0..150_000)
        .map(|i| match i % 3 {
            0 => format!("{{\"text\": \"gamma {i}\"}}\n"),
            1 => format!("{{\"text\": \"alpha {i}\"}}\n"),
            _ => format!("{{\"text\": \"alpha beta {i}\"}}\n"),
        })
        .collect();
    let (store, project) = stored_project(
        dir.path(),
        json!({"queue_order": "uncertainty"}),
        &body,
        &[
            json!({"name": "a", "label": "a", "kind": "keywords", "terms": ["alpha"]}),
            json!({"name": "b", "label": "b", "kind": "keywords", "terms": ["beta"]}),
        ],
    );
    let actor = wick::store::Actor::system();
    let index_sql = |store: &wick::store::Store| -> String {
        store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT sql FROM sqlite_master WHERE name = 'items_queue'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .expect("index")
    };
    let before = index_sql(&store);
    let job = store
        .write(|tx| {
            wick::store::rules::queue_apply(tx, &actor, project.id, &json!({"method": "majority"}))
        })
        .expect("queue");
    wick::jobs::rules::run(&store, &job).expect("run");
    assert_eq!(index_sql(&store), before);
    let (written, moved, integrity): (i64, i64, String) = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT COUNT(*) FROM predictions WHERE model_id LIKE 'rules@%'),
                        (SELECT COUNT(*) FROM items i JOIN predictions p ON p.item_id = i.id
                          WHERE p.model_id LIKE 'rules@%' AND i.priority = p.margin),
                        (SELECT integrity_check FROM pragma_integrity_check)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?)
        })
        .expect("figures");
    assert_eq!(written, 100_000);
    assert_eq!(
        moved, 100_000,
        "every covered item's priority is its new margin"
    );
    assert_eq!(integrity, "ok");
    // The queue's order read through the rebuilt index is the table's order.
    let order = |sql: &str| -> Vec<i64> {
        store
            .read(|c| {
                let mut stmt = c.prepare(sql)?;
                let ids = stmt
                    .query_map([project.id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<i64>>>()?;
                Ok(ids)
            })
            .expect("order")
    };
    let through_index = order(
        "SELECT id FROM items INDEXED BY items_queue WHERE project_id = ?1 AND done = 0
         ORDER BY priority, id LIMIT 50 OFFSET 49990",
    );
    let by_table = order(
        "SELECT id FROM items NOT INDEXED WHERE project_id = ?1 AND done = 0
         ORDER BY priority, id LIMIT 50 OFFSET 49990",
    );
    assert_eq!(through_index.len(), 50);
    assert_eq!(through_index, by_table);
}

/// A stored rule that no longer validates is named in the preview, not silently dropped from
/// its overlap and conflict figures.
#[test]
fn the_preview_names_the_stored_rules_it_leaves_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, project) = stored_project(
        dir.path(),
        json!({}),
        "{\"text\": \"alpha one\"}\n{\"text\": \"beta two\"}\n",
        &[
            json!({"name": "old", "label": "a", "kind": "keywords", "terms": ["alpha"]}),
            json!({"name": "fine", "label": "a", "kind": "keywords", "terms": ["one"]}),
        ],
    );
    // As if the rule had been stored under a label set it no longer fits.
    store
        .write(|tx| {
            tx.execute(
                "UPDATE rules SET spec = json_set(spec, '$.label', 'gone') WHERE name = 'old'",
                [],
            )?;
            Ok(())
        })
        .expect("edit");
    let draft: wick::rules::RuleSpec = serde_json::from_value(
        json!({"name": "draft", "label": "b", "kind": "keywords", "terms": ["beta", "one"]}),
    )
    .expect("spec");
    let preview = wick::app::rules::preview(&store, project.id, draft).expect("preview");
    let left: Vec<(&str, &str)> = preview
        .left_out
        .iter()
        .map(|r| (r.name.as_str(), r.field.as_str()))
        .collect();
    assert_eq!(left, [("old", "label")]);
    assert!(
        preview.left_out[0].message.contains("gone"),
        "{:?}",
        preview.left_out
    );
    // The valid rule still counts: "alpha one" is hit by the draft and by `fine`.
    assert_eq!(preview.figures.hits, 2);
    assert_eq!(preview.figures.conflicts, 1);
}
