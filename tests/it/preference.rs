//! Preference projects through the real server: the shared HH-RLHF dev pairs imported, votes
//! cast by three raters through the API, the leaderboard, and every export format loaded by
//! Hugging Face `datasets` (scripts/check_export.py; test.sh installs datasets).
use crate::common;

use common::server::{add_user, Api, Server};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Votes on the next pair as `choice` says, given which response is the file's chosen one.
fn vote_next(
    api: &Api,
    project: i64,
    chosen: &HashMap<String, String>,
    choice: &str,
    strength: Option<u8>,
) -> Value {
    let (status, body) = api.post(&format!("/projects/{project}/next"), json!({}));
    assert_eq!(status, 200, "{body}");
    let pair = &body["pair"];
    let chosen_text = &chosen[pair["ext_id"].as_str().unwrap()];
    let chosen_left = pair["left"]["text"].as_str() == Some(chosen_text.as_str());
    // "a" and "b" are about the displayed sides: A is the left response.
    let displayed = match (choice, chosen_left) {
        ("chosen", true) | ("rejected", false) => "a",
        ("chosen", false) | ("rejected", true) => "b",
        (other, _) => other,
    };
    let (status, vote) = api.post(
        &format!("/pairs/{}/votes", pair["id"]),
        json!({"choice": displayed, "left": pair["left"]["id"], "strength": strength, "rationale": "test", "seconds": 1.5}),
    );
    assert_eq!(status, 201, "{vote}");
    pair.clone()
}

#[test]
fn hh_pairs_votes_leaderboard_and_exports_load_in_datasets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), false);
    let admin = server.client("admin");
    let (status, project) = admin.post(
        "/projects",
        json!({"name": "HH", "task": "preference", "queue_order": "sequential", "labels": []}),
    );
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["overlap"], 3, "three votes per pair by default");
    let id = project["id"].as_i64().unwrap();

    let file =
        std::fs::read(common::shared_data("preference_hh_harmless_dev.jsonl")).expect("read HH");
    let rows: Vec<Value> = String::from_utf8_lossy(&file)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let chosen: HashMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["chosen"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &file,
    );
    assert_eq!(status, 200);
    assert_eq!(
        (
            report["inserted"].as_u64(),
            report["annotations"].as_u64(),
            report["error_count"].as_u64()
        ),
        (Some(200), Some(200), Some(0)),
        "{report}"
    );

    // Bad rows and bad votes are refused by name; nothing else is lost.
    let bad = b"{\"prompt\": \"p\", \"responses\": [\"only one\"]}\n{\"prompt\": \"p\", \"responses\": [\"x\", 7]}\n{\"id\": \"k3\", \"prompt\": [{\"role\": \"user\", \"content\": \"Pick one\"}], \"responses\": [\"r1\", \"r2\", \"r3\"], \"sources\": [\"m1\", \"m2\", \"m3\"]}\n";
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        bad,
    );
    assert_eq!(report["inserted"], 1, "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("responses"),
        "{report}"
    );
    assert!(
        report["errors"][1]["message"]
            .as_str()
            .unwrap()
            .contains("responses[1]"),
        "{report}"
    );

    // Three raters. Pairs come in file order (sequential queue): the first ten get two more
    // votes for the file's chosen response, five get two ties, three two both-bad votes, and
    // two split (rejected, tie).
    for n in ["r1", "r2", "r3"] {
        add_user(&server.db, n, "annotator", "rater-password");
    }
    let raters: Vec<Api> = ["r1", "r2", "r3"]
        .iter()
        .map(|n| server.client(n))
        .collect();
    for r in &raters {
        let uid = r.get("/me").1["id"].as_i64().unwrap();
        admin.send("PUT", &format!("/projects/{id}/members/{uid}"), json!({}));
    }
    let plan: Vec<(&str, &str, Option<u8>)> =
        std::iter::repeat_n(("chosen", "chosen", Some(3)), 10)
            .chain(std::iter::repeat_n(("tie", "tie", None), 5))
            .chain(std::iter::repeat_n(("both_bad", "both_bad", None), 3))
            .chain(std::iter::repeat_n(("rejected", "tie", None), 2))
            .collect();
    let mut lefts = Vec::new();
    for (first, second, strength) in &plan {
        let p1 = vote_next(&raters[0], id, &chosen, first, *strength);
        let p2 = vote_next(&raters[1], id, &chosen, second, *strength);
        assert_eq!(p1["id"], p2["id"], "both raters get the same pair in turn");
        lefts.push(p1["left"]["id"] == p2["left"]["id"]);
    }
    assert!(
        lefts.iter().any(|same| !same),
        "sides are shuffled per rater"
    );

    // A rater never sees a pair twice, and votes only once on it.
    let (_, first) = raters[0].post(&format!("/projects/{id}/next"), json!({}));
    let first_id = first["pair"]["id"].as_i64().unwrap();
    assert!(first_id > plan.len() as i64, "{first}");
    let again = raters[0].post("/pairs/1/votes", json!({"choice": "a", "left": 1}));
    assert_eq!(again.0, 409, "{}", again.1);
    let unknown = raters[2].post("/pairs/1/votes", json!({"choice": "maybe", "left": 1}));
    assert_eq!(unknown.0, 422);
    assert!(
        unknown.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant `maybe`"),
        "{}",
        unknown.1
    );
    let strength_on_tie = raters[2].post(
        "/pairs/1/votes",
        json!({"choice": "tie", "left": 1, "strength": 2}),
    );
    assert!(
        strength_on_tie.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("strength"),
        "{}",
        strength_on_tie.1
    );

    // The leaderboard: the file's chosen responses are "response 1".
    let (status, board) = admin.get(&format!("/projects/{id}/leaderboard"));
    assert_eq!(status, 200);
    assert_eq!(board["sources"][0]["source"], "response 1", "{board}");
    assert!(board["sources"][0]["rating"].as_f64() > board["sources"][1]["rating"].as_f64());
    assert_eq!(board["both_bad"], 6);
    let decided = board["left_wins"].as_u64().unwrap() + board["right_wins"].as_u64().unwrap();
    assert_eq!(decided, 22, "{board}");

    // Per pair: majority, agreement and a split flag. The two (rejected, tie) pairs split
    // three ways; so do none of the others.
    let (status, split) = admin.get(&format!("/projects/{id}/pairs?split=true"));
    assert_eq!(status, 200, "{split}");
    let split = split["items"].as_array().unwrap();
    assert_eq!(split.len(), 2, "{split:?}");
    assert!(split
        .iter()
        .all(|p| p["split"] == true && p["majority"].is_null()));
    let (_, first_page) = admin.get(&format!("/projects/{id}/pairs?limit=5"));
    assert_eq!(first_page["items"][0]["majority"], "a", "{first_page}");
    assert_eq!(first_page["items"][0]["agreement"], 1.0);
    assert_eq!(first_page["items"][0]["tally"]["a"], 3);
    assert!(first_page["next"].as_i64().is_some());

    // Exports: 190 pairs have a majority for one response (10 with three votes, 180 with the
    // imported vote alone); 7 are ties or split, 3 both bad.
    let expected = [
        ("dpo", 190),
        ("dpo-chat", 190),
        ("openai-dpo", 190),
        ("sft", 190),
    ];
    for (format, rows) in expected {
        let resp = admin
            .req("GET", &format!("/projects/{id}/export?format={format}"))
            .call()
            .expect("export");
        assert_eq!(resp.content_type(), "application/x-ndjson");
        let body = resp.into_string().expect("body");
        assert_eq!(body.lines().count(), rows, "{format}");
        let path = dir.path().join(format!("{format}.jsonl"));
        std::fs::write(&path, &body).expect("write export");
        common::loads_in_datasets(format, &path, rows);
    }
    // The command line: filters and the summary.
    let out = common::server::wick()
        .args([
            "export",
            "--project",
            "HH",
            "--format",
            "dpo",
            "--min-votes",
            "3",
            "--db",
        ])
        .arg(&server.db)
        .output()
        .expect("wick export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(text.lines().count(), 10);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).expect("json");
    assert_eq!(
        (
            first["votes"].as_u64(),
            first["agreement"].as_f64(),
            first["margin"].as_f64()
        ),
        (Some(3), Some(1.0), Some(7.0 / 3.0)),
        "{first}"
    );
    assert_eq!(
        first["chosen"],
        chosen[first["id"].as_str().unwrap().split(':').next().unwrap()]
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("exported 10 pairs")
            && summary.contains("both bad")
            && summary.contains("too few votes"),
        "{summary}"
    );
}

#[test]
fn generation_job_samples_responses_for_prompts_without_any() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), true);
    let admin = server.client("admin");
    let settings =
        json!({"responses": 2, "temperature": 0.9, "top_p": 0.95, "seed": 7, "max_tokens": 24});
    let bad = admin.post(
        "/projects",
        json!({"name": "G", "task": "preference", "labels": [], "generation": {"responses": 1}}),
    );
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("generation.responses"),
        "{}",
        bad.1
    );
    let (status, project) = admin.post("/projects", json!({"name": "G", "task": "preference", "labels": [], "queue_order": "sequential", "generation": settings}));
    assert_eq!(status, 201, "{project}");
    let id = project["id"].as_i64().unwrap();
    let rows = concat!(
        "{\"id\": \"p1\", \"prompt\": \"Name a fruit.\"}\n",
        "{\"id\": \"p2\", \"prompt\": [{\"role\": \"system\", \"content\": \"Answer briefly.\"}, {\"role\": \"user\", \"content\": \"What is the capital of France?\"}]}\n",
        "{\"id\": \"p3\", \"prompt\": \"Say hello.\", \"responses\": [\"Hello!\", \"Hi there.\"], \"sources\": [\"human\", \"human-2\"]}\n",
    );
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        rows.as_bytes(),
    );
    assert_eq!(report["inserted"], 3, "{report}");

    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(
        (status, job["kind"].as_str()),
        (202, Some("generate")),
        "{job}"
    );
    let job = common::server::wait_job(&admin, job["id"].as_i64().unwrap());
    assert_eq!(
        (
            job["status"].as_str(),
            job["done"].as_i64(),
            job["total"].as_i64()
        ),
        (Some("done"), Some(3), Some(3)),
        "{job}"
    );

    for item in [1, 2] {
        let body = admin.get(&format!("/items/{item}")).1;
        let responses = body["responses"].as_array().expect("responses");
        assert_eq!(responses.len(), 2, "{body}");
        for (i, r) in responses.iter().enumerate() {
            assert!(!r["text"].as_str().unwrap().is_empty(), "{r}");
            assert!(
                r["model_id"]
                    .as_str()
                    .unwrap()
                    .starts_with("SmolLM2-135M-Instruct"),
                "{r}"
            );
            assert_eq!(r["settings"]["seed"], 7 + i as u64, "{r}");
            assert_eq!(r["settings"]["temperature"], 0.9);
            assert_eq!(
                r["prompt_version"].as_str().unwrap().len(),
                12,
                "the chat template's version: {r}"
            );
            assert!(
                r["source"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("seed {}", 7 + i)),
                "{r}"
            );
        }
    }
    let imported = admin.get("/items/3").1;
    assert_eq!(
        imported["responses"][0]["source"], "human",
        "imported responses are kept as they were"
    );
    // Generated pairs reach the vote queue, after the imported pair that was there first.
    let (_, first) = admin.post(&format!("/projects/{id}/next"), json!({}));
    assert_eq!(first["pair"]["ext_id"], "p3", "{first}");
    let (_, next) = admin.post(
        &format!("/projects/{id}/next"),
        json!({"exclude": [first["pair"]["id"]]}),
    );
    assert_eq!(next["pair"]["ext_id"], "p1", "{next}");
    // A second job finds nothing to do.
    let (_, again) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    let again = common::server::wait_job(&admin, again["id"].as_i64().unwrap());
    assert_eq!(again["status"], "done");
    assert_eq!(
        admin.get("/items/1").1["responses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
