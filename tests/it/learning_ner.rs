//! The learning loop for entities, through the real server, model and SQLite file: pre-labeling
//! keeps every sentence's scored candidates, people's span answers retrain the span learner,
//! the unanswered sentences get mixed spans that record the learner's version (with the
//! zero-shot spans beneath them), and the online span-F1 curve gains a point per learner.
use crate::common;

use common::ner::{f1, sentences, spans_of, Spans};
use common::server::{retrain_jobs, wait_job, wait_retrain, Api, Server};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Answers `n` sentences from the queue with their gold spans, naming the prediction shown.
fn answer_next(api: &Api, project: i64, n: usize, gold: &HashMap<String, Spans>) {
    for _ in 0..n {
        let (status, body) = api.post(&format!("/projects/{project}/next"), json!({}));
        assert_eq!(status, 200, "{body}");
        let item = &body["item"];
        let id = item["id"].as_i64().expect("an item to answer");
        let shown = item["prediction"]["id"]
            .as_i64()
            .expect("a prediction shown");
        let spans: Vec<Value> = gold[item["ext_id"].as_str().expect("ext_id")]
            .iter()
            .map(|(s, e, l)| json!({"start": s, "end": e, "label": l}))
            .collect();
        let (status, body) = api.post(
            &format!("/items/{id}/annotations"),
            json!({"entities": spans, "seconds": 2.0, "prediction_id": shown}),
        );
        assert_eq!(status, 201, "{body}");
    }
}

/// Each open sentence's latest prediction, as (gold, shown, zero-shot beneath it).
fn open_predictions(
    api: &Api,
    c: &Connection,
    project: i64,
    gold: &HashMap<String, Spans>,
) -> Vec<(Spans, Value)> {
    let mut stmt = c
        .prepare("SELECT id, ext_id FROM items WHERE project_id = ?1 AND done = 0 ORDER BY id")
        .expect("prepare");
    let open: Vec<(i64, String)> = stmt
        .query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    open.into_iter()
        .map(|(id, ext)| {
            let (status, item) = api.get(&format!("/items/{id}"));
            assert_eq!(status, 200, "{item}");
            let latest = item["predictions"]
                .as_array()
                .and_then(|p| p.last())
                .cloned()
                .expect("a prediction");
            (gold[&ext].clone(), latest)
        })
        .collect()
}

#[test]
fn span_answers_retrain_the_span_learner_and_change_the_next_pre_labels() {
    let rows = sentences(40);
    let gold: HashMap<String, Spans> = rows
        .iter()
        .map(|(id, _, s)| (id.clone(), s.clone()))
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Travels", "task": "ner", "labels": ["person", "location"],
               "retrain_every": 12, "queue_order": "sequential"}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().expect("id");
    admin.import_texts(
        id,
        rows.iter()
            .map(|(ext, text, _)| (ext.as_str(), text.as_str())),
    );
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        wait_job(&admin, job["id"].as_i64().expect("id"))["status"],
        "done"
    );

    // Pre-labeling kept every sentence's scored candidates, under the prediction's source.
    let c = Connection::open(&db).expect("open db");
    let kept: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM span_candidates s JOIN predictions p ON p.item_id = s.item_id
               AND s.source = p.model_id || ' ' || p.prompt_version || ' ' || p.labels_hash",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(kept, 40);

    // Eleven answers queue nothing; the twelfth queues the first span retrain.
    answer_next(&admin, id, 11, &gold);
    assert!(retrain_jobs(&admin, id).is_empty());
    answer_next(&admin, id, 1, &gold);
    let first = wait_retrain(&admin, id, 1);
    assert_eq!(first["status"], "done", "{first}");

    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    let learners = learning["learners"].as_array().expect("learners");
    assert_eq!(learners.len(), 1, "{learning}");
    let l = &learners[0];
    assert_eq!(l["labels"], 12, "{l}");
    assert_eq!(
        l["rescored"], 28,
        "every unanswered sentence is re-scored: {l}"
    );
    assert_eq!(l["folds"]["folds"], 5, "{l}");
    assert!(l["mix"]["weight"].as_f64().is_some(), "{l}");
    let version = l["version"].as_str().expect("version");
    assert!(
        version.contains("+spans@") && version.ends_with("/12"),
        "{version}"
    );

    // Every open sentence now shows the learner's spans, with the zero-shot spans beneath;
    // on these repeated frames the learner finds more of the people's spans than zero-shot.
    let open = open_predictions(&admin, &c, id, &gold);
    assert_eq!(open.len(), 28);
    let mut mixed = Vec::new();
    let mut zero_shot = Vec::new();
    for (g, p) in &open {
        assert_eq!(p["model_id"], version, "{p}");
        assert!(p["lm_entities"].is_array(), "{p}");
        mixed.push((g.clone(), spans_of(&p["entities"])));
        zero_shot.push((g.clone(), spans_of(&p["lm_entities"])));
    }
    let (f_mixed, f_zero) = (f1(&mixed), f1(&zero_shot));
    assert!(
        f_mixed > f_zero && f_mixed >= 0.8,
        "mixed F1 {f_mixed:.3} vs zero-shot {f_zero:.3}: {learning}"
    );

    // Twelve more answers, shown the learner's spans, make the second retrain; the curve has
    // one span-F1 point per shown model.
    answer_next(&admin, id, 12, &gold);
    let second = wait_retrain(&admin, id, 2);
    assert_eq!(second["status"], "done", "{second}");
    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    let curve = learning["curve"].as_array().expect("curve");
    assert_eq!(curve.len(), 2, "{learning}");
    for p in curve {
        assert_eq!(p["measure"], "span_f1", "{p}");
        assert_eq!(p["answers"], 12, "{p}");
    }
    assert_eq!(
        (curve[0]["labels"].as_i64(), curve[1]["labels"].as_i64()),
        (Some(0), Some(12))
    );
    assert_eq!(curve[0]["shown"], curve[0]["lm"], "{learning}");
    assert!(
        curve[1]["shown"].as_f64() > curve[1]["lm"].as_f64(),
        "{learning}"
    );
    assert_eq!(curve[1]["version"], version);

    // Sentences imported after a retrain are pre-labeled with the latest learner's mix.
    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    let latest = learning["learners"][1]["version"]
        .as_str()
        .expect("second version")
        .to_string();
    let text = "Yesterday Ines Moreau flew to Lagos on Monday.";
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        format!("{}\n", json!({"id": "late", "text": text})).as_bytes(),
    );
    assert_eq!(status, 200, "{report}");
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        wait_job(&admin, job["id"].as_i64().expect("id"))["status"],
        "done"
    );
    let late: i64 = c
        .query_row("SELECT id FROM items WHERE ext_id = 'late'", [], |r| {
            r.get(0)
        })
        .expect("late item");
    let (_, item) = admin.get(&format!("/items/{late}"));
    let preds = item["predictions"].as_array().expect("predictions");
    assert_eq!(preds.len(), 2, "{item}");
    assert_eq!(preds[1]["model_id"], latest, "{item}");
    // Spans are substrings of the text at their offsets.
    for e in preds[1]["entities"].as_array().expect("entities") {
        let (s, t) = (
            e["start"].as_u64().expect("start"),
            e["end"].as_u64().expect("end"),
        );
        let piece: String = text
            .chars()
            .skip(s as usize)
            .take((t - s) as usize)
            .collect();
        assert_eq!(e["text"], piece, "{e}");
    }
}
