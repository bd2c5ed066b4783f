//! Similar items through the real server, model and SQLite file: "more like this" for an item
//! and a search by meaning, both over the embeddings pre-labeling stored; items pre-labeled
//! after the first query are found by the next; bad requests are refused by name.
use crate::common;

use common::server::{add_user, wait_job, Api, Server};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use wick::store::learning::from_blob;

const COOKING: &[&str] = &[
    "kneaded the pizza dough and let it rise",
    "baked a loaf of sourdough bread",
    "simmered a tomato soup with basil",
    "whisked eggs for an omelette",
];
const FOOTBALL: &[&str] = &[
    "the striker scored a goal in the final minute",
    "the goalkeeper saved a penalty",
    "the football match ended in a draw",
    "the referee showed the defender a red card",
];
const WEATHER: &[&str] = &[
    "heavy rain and thunderstorms tonight",
    "a sunny and warm afternoon",
    "snow is expected over the mountains",
];

fn import(api: &Api, project: i64, rows: &[(String, &str)]) {
    api.import_texts(project, rows.iter().map(|(id, text)| (id.as_str(), *text)));
}

fn prelabel(api: &Api, project: i64) {
    let (status, job) = api.post(&format!("/projects/{project}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_i64().expect("job id");
    assert_eq!(wait_job(api, id)["status"], "done");
}

/// Item id by external id, and each item's stored embedding.
fn stored(db: &Path) -> (HashMap<String, i64>, HashMap<i64, Vec<f32>>) {
    let c = Connection::open(db).expect("open db");
    let ids = c
        .prepare("SELECT ext_id, id FROM items")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("items");
    let vectors = c
        .prepare("SELECT item_id, vector FROM embeddings")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?))))?
                .collect::<rusqlite::Result<_>>()
        })
        .expect("embeddings");
    (ids, vectors)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn ext_ids(found: &Value) -> Vec<String> {
    found["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["ext_id"].as_str().expect("ext_id").to_string())
        .collect()
}

#[test]
fn similar_items_by_item_and_by_meaning_follow_the_stored_embeddings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("wick.db");
    let server = Server::start(&db, true);
    let admin = server.client("admin");
    let (status, p) = admin.post(
        "/projects",
        json!({"name": "Topics", "task": "classification", "labels": ["pos", "neg"]}),
    );
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_i64().expect("id");
    let rows: Vec<(String, &str)> = [("c", COOKING), ("f", FOOTBALL), ("w", WEATHER)]
        .iter()
        .flat_map(|(tag, texts)| {
            texts
                .iter()
                .enumerate()
                .map(move |(i, t)| (format!("{tag}{i}"), *t))
        })
        .collect();
    import(&admin, id, &rows);

    // Before pre-labeling there is nothing to compare an item with.
    let (ids, _) = stored(&db);
    let (status, err) = admin.get(&format!("/projects/{id}/items/{}/similar", ids["c0"]));
    assert_eq!(status, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no embedding")),
        "{err}"
    );

    prelabel(&admin, id);
    let (ids, vectors) = stored(&db);
    let c0 = ids["c0"];
    let (status, found) = admin.get(&format!("/projects/{id}/items/{c0}/similar?k=3"));
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["searched"], rows.len());
    let got = ext_ids(&found);
    assert_eq!(got.len(), 3);
    assert!(
        !got.contains(&"c0".to_string()),
        "the item itself is left out"
    );
    // The exact top 3 by the stored vectors, and the similarities they carry.
    let mut exact: Vec<(f64, &String)> = ids
        .iter()
        .filter(|(ext, _)| *ext != "c0")
        .map(|(ext, item)| (cosine(&vectors[&c0], &vectors[item]), ext))
        .collect();
    exact.sort_by(|a, b| b.0.total_cmp(&a.0));
    let want: Vec<String> = exact[..3].iter().map(|(_, e)| (*e).clone()).collect();
    assert_eq!(got, want, "{found}");
    for (item, (sim, _)) in found["items"].as_array().expect("items").iter().zip(&exact) {
        let s = item["similarity"].as_f64().expect("similarity");
        assert!((s - sim).abs() < 1e-5, "{s} against {sim}");
        assert!(item["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    assert!(
        got.iter().filter(|e| e.starts_with('c')).count() >= 2,
        "cooking finds cooking: {got:?}"
    );

    // By meaning: a text that is in no item.
    let (status, found) = admin.get(&format!(
        "/projects/{id}/similar?q=a+goal+was+disallowed+for+offside&k=3"
    ));
    assert_eq!(status, 200, "{found}");
    let got = ext_ids(&found);
    assert!(
        got.iter().filter(|e| e.starts_with('f')).count() >= 2,
        "football finds football: {got:?}"
    );
    let sims: Vec<f64> = found["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["similarity"].as_f64().expect("similarity"))
        .collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");

    // Items pre-labeled after the index loaded are found by the next query.
    import(
        &admin,
        id,
        &[("c9".to_string(), "fried onions and garlic in olive oil")],
    );
    prelabel(&admin, id);
    let (status, found) = admin.get(&format!(
        "/projects/{id}/similar?q=cooking+onions+in+a+pan&k=1"
    ));
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["searched"], rows.len() + 1);
    assert_eq!(ext_ids(&found), ["c9"], "{found}");

    // Refusals, by name.
    for (path, status, needle) in [
        (
            format!("/projects/{id}/items/{c0}/similar?k=0"),
            400,
            "k must be 1 to 200",
        ),
        (
            format!("/projects/{id}/items/{c0}/similar?k=999"),
            400,
            "k must be 1 to 200",
        ),
        (
            format!("/projects/{id}/items/{c0}/similar?k=many"),
            400,
            "k",
        ),
        (
            format!("/projects/{id}/similar?q=+&k=3"),
            400,
            "search text is empty",
        ),
        (
            format!("/projects/{id}/items/999999/similar"),
            404,
            "item 999999",
        ),
    ] {
        let (got, err) = admin.get(&path);
        assert_eq!(got, status, "{path}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{path}: {err}");
    }
    // An item of another project is not found through this one.
    let (_, other) = admin.post(
        "/projects",
        json!({"name": "Other", "task": "classification", "labels": ["a", "b"]}),
    );
    let other = other["id"].as_i64().expect("id");
    let (status, _) = admin.get(&format!("/projects/{other}/items/{c0}/similar"));
    assert_eq!(status, 404);
    // Nor by someone outside the project.
    add_user(&db, "outsider", "annotator", "outsider-pass-1");
    let outsider = server.client("outsider");
    for path in [
        format!("/projects/{id}/items/{c0}/similar"),
        format!("/projects/{id}/similar?q=bread"),
    ] {
        assert_eq!(outsider.get(&path).0, 404, "{path}");
    }
}
