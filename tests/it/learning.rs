//! The learning loop: people's answers retrain the learner on the stored embeddings, the
//! unanswered items get mixed predictions with the learner's version, the queue reorders and the
//! online-accuracy curve gains a point per retrain; through the real server, model and SQLite
//! file. Bad input: one label used, a second retrain while one is active, a write that fails
//! half-way.
use crate::common;

use common::server::{retrain_jobs, wait_job, wait_retrain, Api, Server};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::Path;
use wick::store::{self, jobs, learning, predictions, projects, Actor};

fn jsonl(rows: &[Value]) -> Vec<u8> {
    rows.iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Rows (id, text, gold label) of two topics under labels whose names tell the language model
/// nothing ("alpha" is cooking, "beta" football): zero-shot it guesses, while the embeddings
/// separate the topics, so a few answers are enough for the learner to earn its weight.
fn two_topics(n: usize) -> Vec<(String, String, String)> {
    let cooking = [
        "baked bread",
        "simmered a tomato soup",
        "roasted garlic",
        "whisked eggs for an omelette",
        "kneaded pizza dough",
    ];
    let football = [
        "scored a penalty",
        "was shown a red card",
        "headed the ball into the net",
        "saved a free kick",
        "dribbled past two defenders",
    ];
    let when = [
        "this morning",
        "last night",
        "on Sunday",
        "after lunch",
        "in the second half",
        "yesterday",
    ];
    (0..n)
        .map(|i| {
            let (label, text) = if i % 2 == 0 {
                (
                    "alpha",
                    format!("In the kitchen I {} {}.", cooking[i / 2 % 5], when[i % 6]),
                )
            } else {
                (
                    "beta",
                    format!("Our striker {} {}.", football[i / 2 % 5], when[i % 6]),
                )
            };
            (format!("t{i}"), format!("{text} ({i})"), label.to_string())
        })
        .collect()
}

fn embedded_dim(c: &Connection) -> usize {
    let bytes: i64 = c
        .query_row("SELECT length(vector) FROM embeddings LIMIT 1", [], |r| {
            r.get(0)
        })
        .expect("an embedding");
    bytes as usize / 4
}

fn queue_order(db: &Path, project: i64) -> Vec<i64> {
    let c = Connection::open(db).expect("open db");
    let mut stmt = c
        .prepare("SELECT id FROM items WHERE project_id = ?1 AND done = 0 ORDER BY priority, id")
        .expect("prepare");
    stmt.query_map([project], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Takes `n` items from the queue and answers each with its gold label, naming the prediction
/// shown. Returns the ids answered.
fn answer_next(api: &Api, project: i64, n: usize, gold: &dyn Fn(&str) -> String) -> Vec<i64> {
    let mut answered = Vec::new();
    for _ in 0..n {
        let (status, body) = api.post(&format!("/projects/{project}/next"), json!({}));
        assert_eq!(status, 200, "{body}");
        let item = &body["item"];
        let id = item["id"].as_i64().expect("an item to answer");
        let shown = item["prediction"]["id"]
            .as_i64()
            .expect("a prediction shown");
        let label = gold(item["ext_id"].as_str().expect("ext_id"));
        let (status, body) = api.post(
            &format!("/items/{id}/annotations"),
            json!({"label": label, "seconds": 1.5, "prediction_id": shown}),
        );
        assert_eq!(status, 201, "{body}");
        answered.push(id);
    }
    answered
}

#[test]
fn answers_retrain_the_learner_rescore_the_items_and_reorder_the_queue() {
    let rows = two_topics(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Topics", "task": "classification",
               "labels": ["alpha", "beta"], "retrain_every": 10}),
    );
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["learning"]["retrain_every"], 10);
    assert_eq!(p["learning"]["near_duplicate_cosine"], 0.95);
    let id = p["id"].as_i64().expect("id");
    let items: Vec<Value> = rows
        .iter()
        .map(|(ext, text, _)| json!({"id": ext, "text": text}))
        .collect();
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&items),
    );
    assert_eq!(status, 200, "{report}");
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    assert_eq!(
        wait_job(&admin, job["id"].as_i64().expect("id"))["status"],
        "done"
    );
    // Pre-labeling kept every item's embedding.
    let c = Connection::open(&db).expect("open db");
    let embedded: i64 = c
        .query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get(0))
        .expect("count");
    assert_eq!(embedded, 60);
    // And the language model's features of each, from the prediction's model, prompt and labels.
    let hidden = common::model().transformer.config().d_model;
    let (featured, sizes): (i64, i64) = c
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT length(vector)) FROM lm_features f
             JOIN predictions p ON p.item_id = f.item_id
               AND f.source = p.model_id || ' ' || p.prompt_version || ' ' || p.labels_hash",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("count");
    assert_eq!((featured, sizes), (60, 1));
    let size: i64 = c
        .query_row("SELECT length(vector) FROM lm_features LIMIT 1", [], |r| {
            r.get(0)
        })
        .expect("size");
    assert_eq!(size as usize, 4 * hidden);

    let gold = |ext: &str| {
        rows.iter()
            .find(|(e, _, _)| e == ext)
            .map(|(_, _, l)| l.clone())
            .expect("a known row")
    };
    // Nine answers queue nothing; the tenth queues a retrain.
    answer_next(&admin, id, 9, &gold);
    assert!(retrain_jobs(&admin, id).is_empty());
    let mut before = queue_order(&db, id);
    let tenth = answer_next(&admin, id, 1, &gold);
    before.retain(|i| !tenth.contains(i));
    let first = wait_retrain(&admin, id, 1);
    assert_eq!(first["status"], "done", "{first}");

    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    let learners = learning["learners"].as_array().expect("learners");
    assert_eq!(learners.len(), 1, "{learning}");
    assert_eq!(learners[0]["labels"], 10);
    assert_eq!(
        learners[0]["rescored"], 50,
        "every unanswered item is re-scored"
    );
    assert!(
        learners[0]["mix"]["weight"].as_f64() > Some(0.0),
        "ten answers on separable topics earn the learner weight: {learning}"
    );
    // The learner reads each item's embedding and then the language model's features.
    let state: Vec<u8> = c
        .query_row("SELECT state FROM learners", [], |r| r.get(0))
        .expect("state");
    let stored = wick::learn::Learner::from_bytes(&state).expect("a readable learner");
    assert_eq!(stored.dim(), Some(embedded_dim(&c) + hidden));
    let version = learners[0]["version"].as_str().expect("version");
    assert!(
        version.contains("+learner@") && version.ends_with("/10"),
        "{version}"
    );
    // Each unanswered item's latest prediction is the learner's, with the model's label beneath
    // it; the language model's own prediction is still there.
    let after = queue_order(&db, id);
    let (status, item) = admin.get(&format!("/items/{}", after[0]));
    assert_eq!(status, 200, "{item}");
    let preds = item["predictions"].as_array().expect("predictions");
    assert_eq!(preds.len(), 2, "{item}");
    assert_eq!(preds[1]["model_id"], version);
    assert!(preds[1]["lm_label"].is_string(), "{item}");
    assert!(!preds[0]["model_id"]
        .as_str()
        .expect("model id")
        .contains("learner"));
    // The queue follows the new margins: each open item's priority is its latest margin.
    let mismatched: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM items i WHERE i.project_id = ?1 AND i.done = 0 AND i.priority !=
               (SELECT p.margin FROM predictions p WHERE p.item_id = i.id ORDER BY p.id DESC LIMIT 1)",
            [id],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(mismatched, 0);
    let mut a = before.clone();
    let mut b = after.clone();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b, "the same open items");
    assert_ne!(before, after, "the retrain reordered the queue");

    // Ten more answers, shown the learner's predictions, make the second retrain and a second
    // point on the curve.
    answer_next(&admin, id, 10, &gold);
    let second = wait_retrain(&admin, id, 2);
    assert_eq!(second["status"], "done", "{second}");
    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    assert_eq!(learning["learners"].as_array().map(Vec::len), Some(2));
    assert_eq!(learning["learners"][1]["labels"], 20);
    let curve = learning["curve"].as_array().expect("curve");
    assert_eq!(curve.len(), 2, "{learning}");
    assert_eq!(
        (curve[0]["labels"].as_i64(), curve[0]["answers"].as_i64()),
        (Some(0), Some(10))
    );
    assert_eq!(
        (curve[1]["labels"].as_i64(), curve[1]["answers"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(curve[1]["version"], version);
    // Before the first learner, what was shown was the language model's; after it, the mix
    // did better than the language model on the same answers.
    assert_eq!(curve[0]["shown"], curve[0]["lm"]);
    assert!(
        curve[1]["shown"].as_f64() > curve[1]["lm"].as_f64(),
        "{learning}"
    );
    for p in curve {
        assert_eq!(p["measure"], "accuracy", "{p}");
        let acc = p["shown"].as_f64().expect("accuracy");
        assert!((0.0..=1.0).contains(&acc), "{p}");
    }

    // By hand: a second retrain while one is queued or running is refused.
    let (status, manual) = admin.post(&format!("/projects/{id}/retrain"), json!({}));
    assert_eq!(status, 202, "{manual}");
    let (status, again) = admin.post(&format!("/projects/{id}/retrain"), json!({}));
    let first_still_active = matches!(
        admin.get(&format!("/jobs/{}", manual["id"])).1["status"].as_str(),
        Some("queued" | "running")
    );
    if status == 202 {
        // Only possible when the first had already finished.
        assert!(!first_still_active);
    } else {
        assert_eq!(status, 409, "{again}");
        assert!(again["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already queued or running")));
    }
    assert_eq!(
        wait_job(&admin, manual["id"].as_i64().expect("id"))["status"],
        "done"
    );
    // Items imported after a retrain get the learner's mix as soon as they are pre-labeled.
    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    let latest = learning["learners"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["version"].as_str())
        .expect("the latest learner")
        .to_string();
    let fresh: Vec<Value> = two_topics(64)[60..]
        .iter()
        .map(|(ext, text, _)| json!({"id": ext, "text": text}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&fresh),
    );
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&admin, job["id"].as_i64().expect("id"));
    assert_eq!(
        (job["status"].as_str(), job["done"].as_i64()),
        (Some("done"), Some(64)),
        "{job}"
    );
    let newest: Vec<String> = {
        let mut stmt = c
            .prepare(
                "SELECT (SELECT p.model_id FROM predictions p WHERE p.item_id = i.id ORDER BY p.id DESC LIMIT 1)
                 FROM items i WHERE i.ext_id IN ('t60', 't61', 't62', 't63') ORDER BY i.id",
            )
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(newest, vec![latest; 4]);

    // An annotator of the project may read the learning curve but not start a retrain.
    common::server::add_user(&db, "ann", "annotator", "annotator-pass");
    let ann = server.client("ann");
    let uid = ann.get("/me").1["id"].as_i64().expect("user id");
    let (status, body) = admin.send("PUT", &format!("/projects/{id}/members/{uid}"), json!({}));
    assert_eq!(status, 204, "{body}");
    assert_eq!(ann.get(&format!("/projects/{id}/learning")).0, 200);
    assert_eq!(
        ann.post(&format!("/projects/{id}/retrain"), json!({})).0,
        403
    );
}

#[test]
fn a_project_with_one_label_used_gets_a_message_instead_of_a_learner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "One", "task": "classification", "labels": ["spam", "ham"]}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().expect("id");
    let rows: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("r{i}"), "text": format!("message number {i}"), "label": "spam"}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    let (status, job) = admin.post(&format!("/projects/{id}/retrain"), json!({}));
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&admin, job["id"].as_i64().expect("id"));
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().expect("an error message");
    assert!(
        error.contains("only one label has been used") && error.contains("two different labels"),
        "{error}"
    );
    let (_, learning) = admin.get(&format!("/projects/{id}/learning"));
    assert_eq!(learning["learners"].as_array().map(Vec::len), Some(0));
    // The embeddings it made on the way are kept for the next try.
    let c = Connection::open(&db).expect("open db");
    let embedded: i64 = c
        .query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get(0))
        .expect("count");
    assert_eq!(embedded, 6);
}

/// A project of `n` items with made-up embeddings and language-model predictions, the first
/// `labeled` answered by import. Returns the store and the project.
fn seeded(db: &Path, n: usize, labeled: usize) -> (store::Store, wick::domain::Project) {
    let store = store::Store::open(db).expect("open store");
    let labels = vec!["a".to_string(), "b".to_string()];
    let project = store
        .write(|tx| {
            projects::create(
                tx,
                &Actor::system(),
                &wick::domain::NewProject {
                    name: "Seeded".into(),
                    task: wick::domain::TaskKind::Classification,
                    labels: labels.clone(),
                    prompt: None,
                    guidelines: None,
                    queue_order: None,
                    overlap: None,
                    generation: None,
                    gold_rate: None,
                    precision_target: None,
                    retrain_every: Some(0),
                    near_duplicate_cosine: None,
                },
            )
        })
        .expect("project");
    let rows: String = (0..n)
        .map(|i| {
            let label = if i < labeled {
                format!(",\"label\":\"{}\"", if i % 2 == 0 { "a" } else { "b" })
            } else {
                String::new()
            };
            format!("{{\"id\":\"r{i}\",\"text\":\"row {i}\"{label}}}\n")
        })
        .collect();
    store::import::by_task(
        &store,
        &Actor::system(),
        &project,
        wick::formats::import::Format::Jsonl,
        rows.as_bytes(),
        |_| {},
    )
    .expect("import");
    let by = predictions::Provenance {
        model_id: "lm".into(),
        prompt_version: "v1".into(),
        labels_hash: wick::jobs::labels_hash(&labels),
        learner_id: None,
    };
    store
        .write(|tx| {
            tx.execute(
                "INSERT INTO jobs (project_id, kind, status, model_id, prompt_version, created_at)
                 VALUES (?1, 'prelabel', 'done', 'lm', 'v1', 0)",
                [project.id],
            )?;
            let ids: Vec<i64> = tx
                .prepare("SELECT id FROM items WHERE project_id = ?1 ORDER BY id")?
                .query_map([project.id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut vectors = Vec::new();
            let mut batch = Vec::new();
            for (k, &item) in ids.iter().enumerate() {
                // Even rows lean to a, odd ones to b, in embedding and in the model.
                let lean = if k % 2 == 0 { 0.9f32 } else { 0.1 };
                let v = [lean, 1.0 - lean, 0.1];
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                vectors.push((item, v.iter().map(|x| x / norm).collect()));
                let pa: f64 = if k % 2 == 0 { 0.6 } else { 0.4 };
                let mut output = predictions::Output::new();
                output.insert("label".into(), json!(if pa > 0.5 { "a" } else { "b" }));
                output.insert("scores".into(), json!({"a": pa, "b": 1.0 - pa}));
                batch.push(predictions::NewPrediction {
                    item_id: item,
                    label: Some(if pa > 0.5 { "a" } else { "b" }.into()),
                    output,
                    confidence: pa.max(1.0 - pa),
                    margin: (2.0 * pa - 1.0).abs(),
                    entropy: 0.6,
                    truncated: false,
                });
            }
            learning::put_embeddings(tx, "emb", &vectors)?;
            predictions::insert(tx, &by, wick::domain::QueueOrder::Uncertainty, &batch)
        })
        .expect("seed");
    (store, project)
}

/// A retrain of `project` queued and started, as the job runner would, over the seeded "lm"
/// predictions.
fn running_retrain(store: &store::Store, project: i64) -> jobs::Job {
    store
        .write(|tx| {
            let job = learning::queue_retrain(tx, &Actor::system(), project)?;
            jobs::start_run(tx, job.id, "lm", "v1", 0, 0)?;
            jobs::get(tx, job.id)
        })
        .expect("job")
}

fn counts(db: &Path) -> (i64, i64, String) {
    let c = Connection::open(db).expect("open db");
    let one = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let priorities: String = c
        .query_row(
            "SELECT group_concat(priority, ',') FROM (SELECT priority FROM items ORDER BY id)",
            [],
            |r| r.get(0),
        )
        .expect("priorities");
    (
        one("SELECT COUNT(*) FROM learners"),
        one("SELECT COUNT(*) FROM predictions WHERE learner_id IS NOT NULL"),
        priorities,
    )
}

#[test]
fn a_retrain_that_fails_half_way_leaves_the_old_predictions_in_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let (store, project) = seeded(&db, 3_000, 40);
    let names = vec![vec![1.0f32, 0.0, 0.0], vec![0.0f32, 1.0, 0.0]];
    // A second retrain of the project is refused while the first is active.
    let job = running_retrain(&store, project.id);
    let twice = store.write(|tx| learning::queue_retrain(tx, &Actor::system(), project.id));
    assert!(
        matches!(twice, Err(store::StoreError::Conflict(ref m)) if m.contains(&format!("job {}", job.id))),
        "{twice:?}"
    );
    let before = counts(&db);
    assert_eq!((before.0, before.1), (0, 0));
    // The disk fills up (say) after 1,000 of the learner's predictions are written.
    Connection::open(&db)
        .expect("open db")
        .execute_batch(
            "CREATE TRIGGER fail_half_way BEFORE INSERT ON predictions
             WHEN NEW.learner_id IS NOT NULL
               AND (SELECT COUNT(*) FROM predictions WHERE learner_id IS NOT NULL) >= 1000
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;",
        )
        .expect("trigger");
    let failed = wick::jobs::retrain::train_and_rescore(&store, &job, &project, "emb", &names);
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("disk full")),
        "{:?}",
        failed.err()
    );
    assert_eq!(
        counts(&db),
        before,
        "nothing of the half-done retrain is left"
    );

    // Without the fault the same retrain goes through whole.
    Connection::open(&db)
        .expect("open db")
        .execute_batch("DROP TRIGGER fail_half_way")
        .expect("drop trigger");
    wick::jobs::retrain::train_and_rescore(&store, &job, &project, "emb", &names).expect("retrain");
    let after = counts(&db);
    assert_eq!((after.0, after.1), (1, 2_960));
    assert_ne!(after.2, before.2, "the queue follows the learner's margins");
    assert_eq!(
        store.read(|c| jobs::status(c, job.id)).expect("status"),
        jobs::JobStatus::Done
    );
}

/// The learner is a voter of the rules' apply once it exists: its argmax joins the rules'
/// and the model's votes, the apply's model id and summary name it, and where it and the
/// model outvote a rule the combination follows them.
#[test]
fn the_learner_votes_in_the_rules_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let (store, project) = seeded(&db, 400, 40);
    let names = vec![vec![1.0f32, 0.0, 0.0], vec![0.0f32, 1.0, 0.0]];
    let job = running_retrain(&store, project.id);
    wick::jobs::retrain::train_and_rescore(&store, &job, &project, "emb", &names).expect("retrain");
    // One rule says "a" for every row; on the odd rows the model and the learner say "b".
    let spec: wick::rules::RuleSpec = serde_json::from_value(
        json!({"name": "all-a", "label": "a", "kind": "keywords", "terms": ["row"]}),
    )
    .expect("spec");
    let rule = spec.validated(project.task, &project.labels).expect("rule");
    let apply = store
        .write(|tx| {
            wick::store::rules::save(
                tx,
                &Actor::system(),
                project.id,
                &rule,
                wick::store::rules::Save::Add,
            )?;
            wick::store::rules::queue_apply(
                tx,
                &Actor::system(),
                project.id,
                &json!({"method": "majority"}),
            )
        })
        .expect("queue apply");
    wick::jobs::rules::run(&store, &apply).expect("apply");
    let summary = store
        .read(|c| wick::store::rules::job_params(c, apply.id))
        .expect("summary");
    let model_id = summary["model_id"].as_str().unwrap_or_default();
    assert!(model_id.ends_with("+model+learner"), "{summary}");
    let learner = summary["voters"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["kind"] == "learner"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(learner["votes"], 400, "{summary}");
    // Row 1 (odd): rule a against model b and learner b.
    let (output, label): (String, String) = Connection::open(&db)
        .expect("open db")
        .query_row(
            "SELECT p.output, p.label FROM predictions p JOIN items i ON i.id = p.item_id
             WHERE i.ext_id = 'r41' AND p.model_id = ?1",
            [model_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("prediction of r41");
    let output: Value = serde_json::from_str(&output).expect("output");
    assert_eq!(
        output["votes"],
        json!({"all-a": "a", "model": "b", "learner": "b"}),
        "{output}"
    );
    assert_eq!(label, "b");

    // A retrain puts the learner's own predictions on top; it queues the apply again, with the
    // last apply's method, so the rules' combination comes back over them.
    let retrain = running_retrain(&store, project.id);
    wick::jobs::retrain::train_and_rescore(&store, &retrain, &project, "emb", &names)
        .expect("retrain");
    let (again, params): (i64, String) = Connection::open(&db)
        .expect("open db")
        .query_row(
            "SELECT id, params FROM jobs WHERE kind = 'rules' AND status = 'queued'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a queued apply");
    assert_eq!(
        serde_json::from_str::<Value>(&params).ok(),
        Some(json!({"method": "majority"}))
    );
    let again = store.read(|c| jobs::get(c, again)).expect("job");
    wick::jobs::rules::run(&store, &again).expect("apply again");
    let latest: String = Connection::open(&db)
        .expect("open db")
        .query_row(
            "SELECT p.model_id FROM predictions p JOIN items i ON i.id = p.item_id
             WHERE i.ext_id = 'r41' ORDER BY p.id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("latest of r41");
    assert!(latest.starts_with("rules@"), "{latest}");
}
