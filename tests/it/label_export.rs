//! Label exports of classification and NER projects through the binary, each JSONL shape loaded
//! by Hugging Face `datasets` (scripts/check_export.py).
use crate::common;

use common::server::{add_user, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// `wick export` into a file; returns the file's lines and the summary on stderr.
fn export(
    db: &Path,
    dir: &Path,
    project: &str,
    format: &str,
    extra: &[&str],
) -> (Vec<String>, String, PathBuf) {
    let path = dir.join(format!(
        "{project}-{format}-{}.jsonl",
        extra.join("_").replace(['-', ','], "")
    ));
    let out = common::server::wick()
        .args(["export", "--project", project, "--format", format, "-o"])
        .arg(&path)
        .args(extra)
        .arg("--db")
        .arg(db)
        .output()
        .expect("wick export");
    assert!(
        out.status.success(),
        "{format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("read export");
    (
        text.lines().map(String::from).collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
    )
}

#[test]
fn classification_and_ner_exports_with_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), false);
    let admin = server.client("admin");
    let (_, p) = admin.post(
        "/projects",
        json!({"name": "Reviews", "task": "classification", "labels": ["positive", "negative"]}),
    );
    let id = p["id"].as_i64().unwrap();
    let rows = concat!(
        "{\"id\": \"r1\", \"text\": \"Loved it.\", \"label\": \"positive\"}\n",
        "{\"id\": \"r2\", \"text\": \"Hated it.\", \"label\": \"negative\"}\n",
        "{\"id\": \"r3\", \"text\": \"A fine film.\"}\n",
        "{\"id\": \"r4\", \"text\": \"Hard to say.\"}\n",
    );
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    for (name, answers) in [
        ("ann1", ["positive", "positive"]),
        ("ann2", ["positive", "negative"]),
    ] {
        add_user(&server.db, name, "annotator", "annotator-pass");
        let api = server.client(name);
        let uid = api.get("/me").1["id"].as_i64().unwrap();
        admin.send("PUT", &format!("/projects/{id}/members/{uid}"), json!({}));
        for (item, label) in [3, 4].iter().zip(answers) {
            let (status, body) = api.post(
                &format!("/items/{item}/annotations"),
                json!({"label": label, "seconds": 1.0}),
            );
            assert_eq!(status, 201, "{body}");
        }
    }

    let (lines, summary, path) = export(&server.db, dir.path(), "Reviews", "labels", &[]);
    assert_eq!(lines.len(), 4, "{summary}");
    let rows: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        (rows[0]["label"].as_str(), rows[0]["source"].as_str()),
        (Some("positive"), Some("import"))
    );
    assert_eq!(
        (rows[2]["source"].as_str(), rows[2]["agreement"].as_f64()),
        (Some("consensus"), Some(1.0))
    );
    assert_eq!(rows[2]["annotators"], json!(["ann1", "ann2"]));
    // ann1 said positive and ann2 negative: a tie goes to the latest answer.
    assert_eq!(
        (rows[3]["label"].as_str(), rows[3]["agreement"].as_f64()),
        (Some("negative"), Some(0.5))
    );
    common::loads_in_datasets("labels", &path, 4);

    let (lines, summary, _) = export(
        &server.db,
        dir.path(),
        "Reviews",
        "labels",
        &["--human-only"],
    );
    assert_eq!(lines.len(), 2);
    assert!(summary.contains("2 imported-only"), "{summary}");
    let (lines, summary, _) = export(
        &server.db,
        dir.path(),
        "Reviews",
        "labels",
        &["--min-agreement", "0.6"],
    );
    assert_eq!(lines.len(), 3);
    assert!(summary.contains("1 below the agreement"), "{summary}");
    let (lines, _, _) = export(
        &server.db,
        dir.path(),
        "Reviews",
        "labels",
        &["--labels", "negative"],
    );
    assert_eq!(lines.len(), 2);

    for format in ["sft", "prompt-completion", "alpaca"] {
        let (lines, _, path) = export(&server.db, dir.path(), "Reviews", format, &[]);
        assert_eq!(lines.len(), 4, "{format}");
        common::loads_in_datasets(format, &path, 4);
    }
    let (_, _, path) = export(&server.db, dir.path(), "Reviews", "sft", &[]);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["messages"][2]["content"], "positive");
    assert!(
        first["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("positive, negative"),
        "{first}"
    );

    // The same export as a streamed download.
    let body = admin
        .req(
            "GET",
            &format!("/projects/{id}/export?format=labels&human_only=true"),
        )
        .call()
        .expect("export download")
        .into_string()
        .expect("body");
    assert_eq!(body.lines().count(), 2);
    // A train/validation split by the hash of each id, with a dataset card beside it; the folder
    // loads in `datasets` with the splits the card names.
    let folder = dir.path().join("split");
    std::fs::create_dir(&folder).expect("mkdir");
    let split_export = || {
        let out = common::server::wick()
            .args([
                "export",
                "--project",
                "Reviews",
                "--format",
                "labels",
                "--validation-share",
                "0.7",
                "-o",
            ])
            .arg(folder.join("reviews.jsonl"))
            .arg("--db")
            .arg(&server.db)
            .output()
            .expect("wick export");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids = |side: &str| -> Vec<String> {
            std::fs::read_to_string(folder.join(format!("reviews.{side}.jsonl")))
                .expect("split file")
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        (ids("train"), ids("validation"))
    };
    let (train, validation) = split_export();
    assert_eq!(train.len() + validation.len(), 4);
    for id in ["r1", "r2", "r3", "r4"] {
        // The side is the top 64 bits of the id's SHA-256 as a fraction of 2^64.
        let h = <sha2::Sha256 as sha2::Digest>::digest(id.as_bytes());
        let x = u64::from_be_bytes(h[..8].try_into().unwrap()) as f64 / 2f64.powi(64);
        let side = if x < 0.7 { &validation } else { &train };
        assert!(
            side.contains(&id.to_string()),
            "{id} ({x}) is on the wrong side"
        );
    }
    assert_eq!(
        split_export(),
        (train.clone(), validation.clone()),
        "the split is stable"
    );
    let card = std::fs::read_to_string(folder.join("README.md")).expect("dataset card");
    // A README.md that Wick did not write is never replaced: the card goes beside it.
    let own = dir.path().join("own");
    std::fs::create_dir(&own).expect("mkdir");
    std::fs::write(own.join("README.md"), "mine\n").expect("write");
    let out = common::server::wick()
        .args(["export", "--project", "Reviews", "--format", "labels", "-o"])
        .arg(own.join("r.jsonl"))
        .arg("--db")
        .arg(&server.db)
        .output()
        .expect("wick export");
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(own.join("README.md")).unwrap(),
        "mine\n"
    );
    assert!(std::fs::read_to_string(own.join("r.README.md"))
        .unwrap()
        .contains("| consensus | 2 |"));
    for want in [
        "path: \"reviews.train.jsonl\"",
        "| consensus | 2 |",
        "| import | 2 |",
        "| ann1 | 2 |",
        "| positive | 2 |",
        "validation share 0.7",
    ] {
        assert!(
            card.contains(want),
            "{want:?} missing from the card:\n{card}"
        );
    }
    common::loads_in_folder(
        &folder,
        &format!("train:{},validation:{}", train.len(), validation.len()),
    );
    let refused = admin.get(&format!("/projects/{id}/export?format=spacy"));
    assert_eq!(refused.0, 400, "{}", refused.1);

    // Span formats need an NER project.
    let refused = common::server::wick()
        .args([
            "export",
            "--project",
            "Reviews",
            "--format",
            "conll",
            "--db",
        ])
        .arg(&server.db)
        .output()
        .expect("wick export");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NER project"));

    let (_, p) = admin.post(
        "/projects",
        json!({"name": "News", "task": "ner", "labels": ["PER", "LOC"]}),
    );
    let ner = p["id"].as_i64().unwrap();
    let rows = concat!(
        "{\"id\": \"n1\", \"text\": \"🎉 Ana met Bob in Rome\", \"entities\": [{\"start\": 2, \"end\": 5, \"label\": \"PER\"}, {\"start\": 17, \"end\": 21, \"label\": \"LOC\"}]}\n",
        "{\"id\": \"n2\", \"text\": \"Nobody here\", \"entities\": []}\n",
    );
    admin.post_raw(
        &format!("/projects/{ner}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    let (lines, _, path) = export(&server.db, dir.path(), "News", "spacy", &[]);
    assert_eq!(lines[0], "{\"text\":\"🎉 Ana met Bob in Rome\",\"spans\":[{\"start\":2,\"end\":5,\"label\":\"PER\"},{\"start\":17,\"end\":21,\"label\":\"LOC\"}]}");
    // spaCy reads the spans with Doc.char_span (scripts/check_export.py).
    common::loads_in_datasets("spacy", &path, 2);
    let (lines, _, _) = export(&server.db, dir.path(), "News", "conll", &[]);
    assert_eq!(
        lines,
        [
            "🎉\tO",
            "Ana\tB-PER",
            "met\tO",
            "Bob\tO",
            "in\tO",
            "Rome\tB-LOC",
            "",
            "Nobody\tO",
            "here\tO",
            ""
        ]
    );
    let (lines, _, _) = export(
        &server.db,
        dir.path(),
        "News",
        "labels",
        &["--labels", "LOC"],
    );
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(
        first["entities"],
        json!([{"start": 17, "end": 21, "label": "LOC", "text": "Rome"}])
    );
}

#[test]
fn instruction_dataset_import_review_and_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), false);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Instructions", "task": "instruction", "labels": []}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().unwrap();
    assert_eq!(p["labels"], json!(["accept", "edit", "reject"]));
    let mut body = std::fs::read(common::shared_data(
        "instruct_selfinstruct_user_oriented_dev.jsonl",
    ))
    .expect("dev set");
    body.extend_from_slice(b"{\"instruction\": \"No response here.\"}\n");
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["inserted"], 200, "{report}");
    assert_eq!(report["errors"][0]["line"], 201);
    assert_eq!(report["errors"][0]["message"], "missing field \"response\"");

    add_user(&server.db, "rita", "annotator", "annotator-pass");
    let rita = server.client("rita");
    let uid = rita.get("/me").1["id"].as_i64().unwrap();
    admin.send("PUT", &format!("/projects/{id}/members/{uid}"), json!({}));
    let mut reviewed = Vec::new();
    for decision in ["accept", "edit", "reject"] {
        let (_, next) = rita.post(&format!("/projects/{id}/next"), json!({}));
        let item = &next["item"];
        let record = &item["record"];
        assert_eq!(item["text"], record["instruction"], "{item}");
        assert!(
            record["response"].as_str().is_some_and(|r| !r.is_empty()),
            "{item}"
        );
        let item_id = item["id"].as_i64().unwrap();
        let path = format!("/items/{item_id}/annotations");
        if decision == "edit" {
            let bad = rita.post(&path, json!({"decision": "edit"}));
            assert_eq!(bad.0, 422);
            assert!(bad.1.to_string().contains("response"), "{}", bad.1);
            let bad = rita.post(&path, json!({"label": "accept"}));
            assert_eq!(bad.0, 422, "{}", bad.1);
            let (status, body) = rita.post(
                &path,
                json!({"decision": "edit", "response": "A corrected answer."}),
            );
            assert_eq!(status, 201, "{body}");
        } else {
            let (status, body) = rita.post(&path, json!({"decision": decision}));
            assert_eq!(status, 201, "{body}");
        }
        reviewed.push((item["ext_id"].as_str().unwrap().to_string(), record.clone()));
    }

    let (lines, summary, _) = export(&server.db, dir.path(), "Instructions", "labels", &[]);
    assert_eq!(lines.len(), 2, "{summary}");
    assert!(summary.contains("1 rejected"), "{summary}");
    let rows: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["id"], reviewed[0].0.as_str());
    assert_eq!(rows[0]["response"], reviewed[0].1["response"]);
    assert_eq!(rows[0]["decision"], "accept");
    assert_eq!(
        (rows[1]["response"].as_str(), rows[1]["decision"].as_str()),
        (Some("A corrected answer."), Some("edit"))
    );
    assert_eq!(rows[1]["category"], reviewed[1].1["category"]);

    for format in ["sft", "prompt-completion", "alpaca"] {
        let (lines, _, path) = export(&server.db, dir.path(), "Instructions", format, &[]);
        assert_eq!(lines.len(), 2, "{format}");
        assert!(
            lines[1].contains("A corrected answer."),
            "{format}: {}",
            lines[1]
        );
        common::loads_in_datasets(format, &path, 2);
    }
    let (_, _, path) = export(&server.db, dir.path(), "Instructions", "alpaca", &[]);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["instruction"], reviewed[0].1["instruction"]);
    assert_eq!(first["input"], reviewed[0].1["context"]);
}
