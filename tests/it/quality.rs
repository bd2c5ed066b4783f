//! Gold items, overlap and adjudication, the quality report, and auto-accept, through the real
//! server on 127.0.0.1 with a real SQLite file (and the real model where predictions matter).
use crate::common;

use common::server::{add_user, wait_job, Api, Server};
use serde_json::{json, Value};

fn jsonl(rows: &[Value]) -> Vec<u8> {
    rows.iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

/// A user of `role` who is a member of `project`.
fn member(server: &Server, admin: &Api, project: i64, name: &str, role: &str) -> Api {
    add_user(&server.db, name, role, "member-pass");
    let api = server.client(name);
    let uid = api.get("/me").1["id"].as_i64().expect("user id");
    let (status, body) = admin.send(
        "PUT",
        &format!("/projects/{project}/members/{uid}"),
        json!({}),
    );
    assert_eq!(status, 204, "{body}");
    api
}

fn next(api: &Api, project: i64) -> Value {
    let (status, body) = api.post(&format!("/projects/{project}/next"), json!({}));
    assert_eq!(status, 200, "{body}");
    body["item"].clone()
}

fn answer(api: &Api, item: i64, label: &str) {
    let (status, body) = api.post(
        &format!("/items/{item}/annotations"),
        json!({"label": label, "seconds": 2.0}),
    );
    assert_eq!(status, 201, "{body}");
}

fn export_rows(admin: &Api, project: i64, query: &str) -> Vec<Value> {
    admin
        .req(
            "GET",
            &format!("/projects/{project}/export?format=labels{query}"),
        )
        .call()
        .expect("export")
        .into_string()
        .expect("body")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON row"))
        .collect()
}

#[test]
fn gold_items_overlap_adjudication_and_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), false);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Tone", "task": "classification", "labels": ["pos", "neg", "neu"],
               "overlap": 2, "gold_rate": 1.0, "queue_order": "sequential"}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["quality"]["gold_rate"], 1.0);
    let bad = admin.send(
        "PATCH",
        &format!("/projects/{id}"),
        json!({"gold_rate": 1.5}),
    );
    assert_eq!(bad.0, 422);
    assert!(bad.1.to_string().contains("gold_rate"), "{}", bad.1);

    let rows = [
        json!({"id": "g1", "text": "Wonderful.", "label": "pos", "gold": true}),
        json!({"id": "g2", "text": "Awful.", "label": "neg", "gold": true}),
        json!({"id": "g3", "text": "No answer given.", "gold": true}),
        json!({"id": "i1", "text": "Great stuff."}),
        json!({"id": "i2", "text": "Not sure about this."}),
        json!({"id": "i3", "text": "Terrible."}),
        json!({"id": "i4", "text": "It exists."}),
    ];
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["inserted"].as_i64(), report["gold"].as_i64()),
        (Some(6), Some(2))
    );
    assert_eq!(report["errors"][0]["line"], 3, "{report}");
    let counts = admin.get(&format!("/projects/{id}")).1;
    assert_eq!(
        (
            counts["counts"]["items"].as_i64(),
            counts["counts"]["gold"].as_i64()
        ),
        (Some(4), Some(2)),
        "{counts}"
    );

    let ann = member(&server, &admin, id, "ann", "annotator");
    let bob = member(&server, &admin, id, "bob", "annotator");
    let rev = member(&server, &admin, id, "rev", "reviewer");

    // At a gold rate of 1 the gold items come first; they look like any other item, and an
    // annotator cannot read their answers.
    let mut served = Vec::new();
    for (api, labels) in [(&ann, ["pos", "pos"]), (&bob, ["pos", "neg"])] {
        for _ in 0..2 {
            let item = next(api, id);
            assert!(item.get("gold").is_none(), "{item}");
            let ext = item["ext_id"].as_str().unwrap().to_string();
            assert!(ext.starts_with('g'), "gold first, got {item}");
            let shown = api.get(&format!("/items/{}", item["id"])).1;
            assert_eq!(shown["gold"], Value::Null, "{shown}");
            let label = if ext == "g1" { labels[0] } else { labels[1] };
            answer(api, item["id"].as_i64().unwrap(), label);
            served.push(ext);
        }
    }
    served.sort();
    assert_eq!(served, ["g1", "g1", "g2", "g2"]);
    assert_eq!(admin.get("/items/1").1["gold"], json!({"label": "pos"}));

    // Then the ordinary items, each to both annotators (overlap 2).
    let plan = [
        ("i1", "pos", "pos"),
        ("i2", "pos", "neg"),
        ("i3", "neg", "neg"),
        ("i4", "neu", "neg"),
    ];
    let mut ids = std::collections::HashMap::new();
    for (api, pick) in [(&ann, 1), (&bob, 2)] {
        for _ in 0..4 {
            let item = next(api, id);
            let ext = item["ext_id"].as_str().unwrap().to_string();
            let row = plan
                .iter()
                .find(|p| p.0 == ext)
                .unwrap_or_else(|| panic!("unexpected {item}"));
            let label = if pick == 1 { row.1 } else { row.2 };
            ids.insert(ext, item["id"].as_i64().unwrap());
            answer(api, item["id"].as_i64().unwrap(), label);
        }
        assert_eq!(next(api, id), Value::Null, "gold answered, queue empty");
    }
    let project = admin.get(&format!("/projects/{id}")).1;
    assert_eq!(
        project["counts"]["review"], 2,
        "i2 and i4 have no majority: {project}"
    );

    // Only reviewers and admins adjudicate.
    let refused = ann.post(&format!("/projects/{id}/review/next"), json!({}));
    assert_eq!(refused.0, 403, "{}", refused.1);
    let (status, body) = rev.post(&format!("/projects/{id}/review/next"), json!({}));
    assert_eq!(status, 200, "{body}");
    let item = &body["item"];
    assert_eq!(item["ext_id"], "i2");
    assert_eq!(item["reason"], "no majority");
    assert_eq!(
        item["answers"],
        json!([{"user": "ann", "value": {"label": "pos"}}, {"user": "bob", "value": {"label": "neg"}}])
    );
    let i2 = ids["i2"];
    let bad = rev.post(
        &format!("/items/{i2}/resolution"),
        json!({"label": "maybe"}),
    );
    assert_eq!(bad.0, 422);
    assert!(bad.1.to_string().contains("label"), "{}", bad.1);
    let (status, res) = rev.post(
        &format!("/items/{i2}/resolution"),
        json!({"label": "neg", "note": "sarcasm counts as negative"}),
    );
    assert_eq!(status, 201, "{res}");
    assert_eq!(
        (res["source"].as_str(), res["user"].as_str()),
        (Some("adjudicated"), Some("rev"))
    );
    let shown = admin.get(&format!("/items/{i2}")).1;
    assert_eq!(shown["current"], json!({"label": "neg"}));
    assert_eq!(shown["review"], false);
    let (_, body) = rev.post(&format!("/projects/{id}/review/next"), json!({}));
    assert_eq!(body["item"]["ext_id"], "i4");
    let audit = admin.get("/audit?limit=100").1;
    assert!(audit.to_string().contains("item.adjudicate"), "{audit}");

    // The report.
    let (status, s) = admin.get(&format!("/projects/{id}/stats"));
    assert_eq!(status, 200, "{s}");
    let who = |name: &str| {
        s["annotators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["user"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(who("ann")["gold"]["accuracy"], 0.5, "{s}");
    assert_eq!(who("ann")["gold"]["per_label"]["neg"], json!([1, 0]));
    assert_eq!(who("bob")["gold"]["accuracy"], 1.0);
    assert_eq!(who("ann")["annotations"], 6);
    assert_eq!(who("ann")["per_hour"], 1800.0);
    // ann: pos pos pos pos neg neu, bob: pos neg pos neg neg neg over g1 g2 i1..i4:
    // p_o = 3/6, p_e = 4/6·2/6 + 1/6·4/6 = 1/3, kappa = (1/2 − 1/3) / (2/3) = 0.25.
    let pair = &s["agreement"]["pairs"][0];
    assert_eq!(
        (
            pair["a"].as_str(),
            pair["b"].as_str(),
            pair["items"].as_i64()
        ),
        (Some("ann"), Some("bob"), Some(6))
    );
    assert!(
        (pair["cohen_kappa"].as_f64().unwrap() - 0.25).abs() < 1e-9,
        "{pair}"
    );
    assert_eq!(s["agreement"]["items"], 6);
    assert_eq!(s["agreement"]["fleiss_items"], 6);
    assert!(s["agreement"]["krippendorff_alpha"].is_f64());
    assert_eq!(s["agreement"]["per_label"].as_array().unwrap().len(), 3);
    assert_eq!(s["model"], Value::Null, "no predictions yet");
    let hot: Vec<&str> = s["hotspots"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["ext_id"].as_str().unwrap())
        .collect();
    assert_eq!(hot, ["i2", "i4"], "{s}");
    let confused: Vec<(String, String, i64)> = s["hotspots"]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["a"].as_str().unwrap().into(),
                c["b"].as_str().unwrap().into(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        confused,
        [
            ("neg".into(), "neu".into(), 1),
            ("neg".into(), "pos".into(), 1)
        ]
    );

    // Exports: adjudicated beats the annotators; gold items stay out.
    let rows = export_rows(&admin, id, "");
    let by_id = |ext: &str| {
        rows.iter()
            .find(|r| r["id"] == ext)
            .cloned()
            .unwrap_or_else(|| panic!("{ext} missing"))
    };
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        (
            by_id("i2")["label"].as_str(),
            by_id("i2")["source"].as_str()
        ),
        (Some("neg"), Some("adjudicated"))
    );
    assert_eq!(by_id("i2")["agreement"], 0.5);
    assert_eq!(
        (
            by_id("i1")["source"].as_str(),
            by_id("i1")["agreement"].as_f64()
        ),
        (Some("consensus"), Some(1.0))
    );
    assert_eq!(export_rows(&admin, id, "&min_agreement=1").len(), 2);
    let card = admin
        .req("GET", &format!("/projects/{id}/export/card?format=labels"))
        .call()
        .expect("card")
        .into_string()
        .expect("body");
    for want in [
        "| adjudicated | 1 |",
        "| consensus | 3 |",
        "| ann | 4 |",
        "| neg | 3 |",
        "Tone",
    ] {
        assert!(card.contains(want), "{want:?} missing from\n{card}");
    }
}

#[test]
fn model_against_people_threshold_and_auto_accept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Reviews", "task": "classification", "labels": ["positive", "negative"],
               "prompt": "sentiment", "precision_target": 0.8, "gold_rate": 0}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    let positive = [
        "A wonderful, moving film.",
        "I loved every minute of it.",
        "Brilliant acting and a great story.",
        "An absolute delight.",
        "One of the best films this year.",
        "Funny, warm and beautifully made.",
        "A masterpiece.",
        "Great fun for the whole family.",
        "Superb in every way.",
        "I would happily watch it again.",
        "A joyful, charming film.",
        "Excellent from start to finish.",
        "Gorgeous and heartfelt.",
        "Highly recommended.",
        "The best performance of her career.",
        "Smart, funny and touching.",
        "A real treat.",
    ];
    let negative = [
        "A boring, lifeless film.",
        "I hated every minute of it.",
        "Terrible acting and a dull story.",
        "An absolute mess.",
        "One of the worst films this year.",
        "Tedious and badly made.",
        "A disaster.",
        "Painfully unfunny.",
        "Awful in every way.",
        "I walked out halfway through.",
        "A dreary, pointless film.",
        "Dreadful from start to finish.",
        "Ugly and cynical.",
        "Avoid it.",
        "The worst script I have read.",
        "Dull, dumb and far too long.",
        "A waste of time.",
    ];
    let mut truth = std::collections::HashMap::new();
    let mut rows = Vec::new();
    for (i, t) in positive.iter().enumerate() {
        rows.push(json!({"id": format!("p{i}"), "text": t}));
        truth.insert(format!("p{i}"), "positive");
    }
    for (i, t) in negative.iter().enumerate() {
        rows.push(json!({"id": format!("n{i}"), "text": t}));
        truth.insert(format!("n{i}"), "negative");
    }
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&admin, job["id"].as_i64().unwrap());
    assert_eq!(job["status"], "done", "{job}");

    // People label 28 of the 34 items with their true sentiment; 6 stay unlabeled.
    let ann = member(&server, &admin, id, "ann", "annotator");
    let mut checked = Vec::new(); // (confidence, model right)
    let mut contradicted = 0;
    for _ in 0..28 {
        let item = next(&ann, id);
        let ext = item["ext_id"].as_str().unwrap();
        let label = truth[ext];
        let p = &item["prediction"];
        let conf = p["confidence"].as_f64().unwrap();
        let right = p["label"] == label;
        if !right && conf >= wick::domain::consensus::CONFIDENT {
            contradicted += 1;
        }
        checked.push((conf, right));
        answer(&ann, item["id"].as_i64().unwrap(), label);
    }
    let (status, s) = admin.get(&format!("/projects/{id}/stats"));
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        s["counts"]["review"], contradicted,
        "people contradicting a confident model go to review"
    );
    let m = &s["model"];
    assert_eq!(m["items"], 28);
    let accuracy = checked.iter().filter(|c| c.1).count() as f64 / 28.0;
    assert!(
        (m["score"].as_f64().unwrap() - accuracy).abs() < 1e-9,
        "{m}"
    );
    let cells: u64 = m["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(cells, 28);
    let binned: u64 = m["reliability"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(binned, 28);
    assert!(m["ece"].as_f64().unwrap() >= 0.0);

    // The threshold, checked against the items themselves: the precision at or above it meets
    // the target on at least 20 items, and one step lower it would not.
    let t = m["threshold"]["threshold"]
        .as_f64()
        .unwrap_or_else(|| panic!("no threshold: {m}"));
    let above: Vec<&(f64, bool)> = checked.iter().filter(|c| c.0 >= t).collect();
    let precision = above.iter().filter(|c| c.1).count() as f64 / above.len() as f64;
    assert!(
        above.len() >= 20 && precision >= 0.8,
        "{} items, precision {precision}",
        above.len()
    );
    assert_eq!(m["threshold"]["support"], above.len());
    if let Some(lower) = checked
        .iter()
        .map(|c| c.0)
        .filter(|&c| c < t)
        .max_by(f64::total_cmp)
    {
        let wider: Vec<&(f64, bool)> = checked.iter().filter(|c| c.0 >= lower).collect();
        let p = wider.iter().filter(|c| c.1).count() as f64 / wider.len() as f64;
        assert!(
            p < 0.8,
            "a lower threshold {lower} would keep precision {p}"
        );
    }
    let would = s["would_accept"].as_i64().unwrap();

    // Auto-accept: annotators only; then unlabeled items at or above the threshold become labels
    // with source model, and leave the queue.
    assert_eq!(
        ann.post(
            &format!("/projects/{id}/auto-accept"),
            json!({"enabled": true})
        )
        .0,
        403
    );
    let (status, on) = admin.post(
        &format!("/projects/{id}/auto-accept"),
        json!({"enabled": true}),
    );
    assert_eq!(status, 200, "{on}");
    assert_eq!(on["threshold"].as_f64(), Some(t));
    assert_eq!(on["accepted"].as_i64(), Some(would));
    let rows = export_rows(&admin, id, "");
    let model_rows: Vec<&Value> = rows.iter().filter(|r| r["source"] == "model").collect();
    assert_eq!(model_rows.len() as i64, would);
    for r in &model_rows {
        assert_eq!(r["agreement"], Value::Null);
        assert_eq!(r["annotators"], json!([]));
    }
    assert_eq!(rows.len() as i64, 28 + would);
    assert_eq!(export_rows(&admin, id, "&human_only=true").len(), 28);
    let mut left = 0;
    loop {
        let item = next(&ann, id);
        if item.is_null() {
            break;
        }
        answer(&ann, item["id"].as_i64().unwrap(), "positive");
        left += 1;
    }
    assert_eq!(left + would, 6, "accepted items left the queue");
    let (_, off) = admin.post(
        &format!("/projects/{id}/auto-accept"),
        json!({"enabled": false}),
    );
    assert_eq!(off["threshold"], Value::Null);
    assert_eq!(
        admin.get(&format!("/projects/{id}")).1["quality"]["auto_accept"],
        Value::Null
    );
}
