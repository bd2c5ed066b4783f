//! The labeling queue passes over an item whose sentence embedding is a near-duplicate of one
//! recently served to the same person, through the real store on a real SQLite file.
use wick::domain::Answer;
use wick::domain::{NewProject, ProjectUpdate, TaskKind};
use wick::formats::import::{rows, Format};
use wick::store::annotations::{self, Submission};
use wick::store::projects;
use wick::store::users::{self, Role, User};
use wick::store::{import, learning, queue, Actor, Store};

/// A store in a fresh temporary directory (kept alive by the returned guard).
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("wick.db")).expect("open store");
    (dir, store)
}

fn annotator(store: &Store, name: &str) -> User {
    store
        .write(|tx| {
            users::create(
                tx,
                &Actor::system(),
                name,
                Role::Annotator,
                "annotator-pass",
            )
        })
        .expect("create user")
}

/// A classification project with `items` (ext id, embedding) imported in that queue order,
/// `users` as members.
fn project(
    store: &Store,
    users: &[&User],
    overlap: i64,
    gold_rate: f64,
    items: &[(&str, Option<Vec<f32>>)],
) -> i64 {
    let new = NewProject {
        name: "Tone".into(),
        task: TaskKind::Classification,
        labels: vec!["pos".into(), "neg".into()],
        prompt: None,
        guidelines: None,
        queue_order: None,
        overlap: Some(overlap),
        generation: None,
        gold_rate: Some(gold_rate),
        precision_target: None,
        retrain_every: Some(0),
        near_duplicate_cosine: None,
    };
    let p = store
        .write(|tx| projects::create(tx, &Actor::system(), &new))
        .expect("create project");
    assert_eq!(
        p.learning.near_duplicate_cosine,
        Some(0.95),
        "the check is on by default"
    );
    for u in users {
        store
            .write(|tx| projects::set_member(tx, &Actor::system(), p.id, u.id, true))
            .expect("add member");
    }
    let jsonl: String = items
        .iter()
        .map(|(id, _)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "text": format!("text of {id}")})
            )
        })
        .collect();
    let report = import::import(
        store,
        &Actor::system(),
        p.id,
        rows(Format::Jsonl, jsonl.as_bytes()),
        |_| {},
    )
    .expect("import");
    assert_eq!(report.inserted, items.len() as u64, "{:?}", report.errors);
    let mut vectors = Vec::new();
    for (rank, (ext, v)) in items.iter().enumerate() {
        let id = item_id(store, p.id, ext);
        // The queue serves the lowest priority first: set the order the test means.
        store
            .write(|tx| {
                tx.execute(
                    "UPDATE items SET priority = ?2 WHERE id = ?1",
                    rusqlite::params![id, rank as f64 / 10.0],
                )?;
                Ok(())
            })
            .expect("set priority");
        if let Some(v) = v {
            vectors.push((id, v.clone()));
        }
    }
    store
        .write(|tx| learning::put_embeddings(tx, "test-embedder", &vectors))
        .expect("put embeddings");
    p.id
}

fn item_id(store: &Store, project: i64, ext: &str) -> i64 {
    store
        .read(|c| {
            Ok(c.query_row(
                "SELECT id FROM items WHERE project_id = ?1 AND ext_id = ?2",
                rusqlite::params![project, ext],
                |r| r.get(0),
            )?)
        })
        .expect("item id")
}

/// The ext id of the item `user` is handed next, holding `exclude` (ext ids) on screen.
fn next(store: &Store, user: &User, project: i64, exclude: &[&str]) -> Option<String> {
    let exclude: Vec<i64> = exclude.iter().map(|e| item_id(store, project, e)).collect();
    store
        .write(|tx| queue::next(tx, user, project, &exclude))
        .expect("next")
        .map(|item| item.ext_id)
}

fn answer(store: &Store, user: &User, project: i64, ext: &str) {
    let id = item_id(store, project, ext);
    store
        .write(|tx| {
            annotations::submit(
                tx,
                &Actor::system(),
                user,
                id,
                Submission {
                    answer: Answer::Label {
                        label: "pos".into(),
                    },
                    seconds: Some(1.0),
                    prediction_id: None,
                },
            )
        })
        .expect("answer");
}

fn served(store: &Store, user: &User, project: i64) -> i64 {
    store
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM served WHERE user_id = ?1 AND project_id = ?2",
                rusqlite::params![user.id, project],
                |r| r.get(0),
            )?)
        })
        .expect("served count")
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// A; A', cosine 0.995 to A; B, orthogonal to both nearly.
fn a_a2_b() -> Vec<(&'static str, Option<Vec<f32>>)> {
    vec![
        ("A", Some(unit(&[1.0, 0.0, 0.0, 0.0]))),
        ("A2", Some(unit(&[1.0, 0.1, 0.0, 0.0]))),
        ("B", Some(unit(&[0.0, 0.0, 1.0, 0.0]))),
    ]
}

#[test]
fn a_near_duplicate_waits_until_nothing_else_is_left() {
    let (_dir, store) = store();
    let ann = annotator(&store, "ann");
    let p = project(&store, &[&ann], 1, 0.0, &a_a2_b());
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    // A reload hands back the leased item: the item itself is not a near-duplicate of itself.
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    // The prefetch passes over A2, A's near-duplicate.
    assert_eq!(next(&store, &ann, p, &["A"]).as_deref(), Some("B"));
    answer(&store, &ann, p, "A");
    // Only A2 is left: a near-duplicate is served rather than nothing.
    assert_eq!(next(&store, &ann, p, &["B"]).as_deref(), Some("A2"));
    answer(&store, &ann, p, "B");
    answer(&store, &ann, p, "A2");
    assert_eq!(next(&store, &ann, p, &[]), None);
    assert_eq!(
        served(&store, &ann, p),
        4,
        "every handed-out item is recorded"
    );
}

#[test]
fn the_check_turned_off_keeps_the_priority_order() {
    let (_dir, store) = store();
    let ann = annotator(&store, "ann");
    let p = project(&store, &[&ann], 1, 0.0, &a_a2_b());
    let up = ProjectUpdate {
        near_duplicate_cosine: Some(0.0),
        ..Default::default()
    };
    let updated = store
        .write(|tx| projects::update(tx, &Actor::system(), p, &up))
        .expect("update");
    assert_eq!(updated.learning.near_duplicate_cosine, None);
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    assert_eq!(next(&store, &ann, p, &["A"]).as_deref(), Some("A2"));
    assert_eq!(next(&store, &ann, p, &["A", "A2"]).as_deref(), Some("B"));
    assert_eq!(
        served(&store, &ann, p),
        3,
        "recorded with the check off too"
    );
}

#[test]
fn an_item_without_an_embedding_is_served_in_its_place() {
    let (_dir, store) = store();
    let ann = annotator(&store, "ann");
    let mut items = a_a2_b();
    items.insert(2, ("N", None));
    let p = project(&store, &[&ann], 1, 0.0, &items);
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    assert_eq!(next(&store, &ann, p, &["A"]).as_deref(), Some("N"));
    assert_eq!(next(&store, &ann, p, &["A", "N"]).as_deref(), Some("B"));
    assert_eq!(
        next(&store, &ann, p, &["A", "N", "B"]).as_deref(),
        Some("A2")
    );
}

#[test]
fn what_one_person_was_served_does_not_reorder_another_queue() {
    let (_dir, store) = store();
    let (ann, bob) = (annotator(&store, "ann"), annotator(&store, "bob"));
    let p = project(&store, &[&ann, &bob], 1, 0.0, &a_a2_b());
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    // A is leased to ann. bob was served nothing: A2 is no near-duplicate of anything of his.
    assert_eq!(next(&store, &bob, p, &[]).as_deref(), Some("A2"));
    assert_eq!(next(&store, &ann, p, &["A"]).as_deref(), Some("B"));
}

#[test]
fn a_stricter_threshold_lets_the_reworded_item_through() {
    let (_dir, store) = store();
    let ann = annotator(&store, "ann");
    let p = project(&store, &[&ann], 1, 0.0, &a_a2_b());
    let up = ProjectUpdate {
        near_duplicate_cosine: Some(0.999),
        ..Default::default()
    };
    store
        .write(|tx| projects::update(tx, &Actor::system(), p, &up))
        .expect("update");
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("A"));
    // cosine(A, A2) = 0.995 < 0.999
    assert_eq!(next(&store, &ann, p, &["A"]).as_deref(), Some("A2"));
}

#[test]
fn gold_items_are_recorded_and_the_record_stays_small() {
    let (_dir, store) = store();
    let ann = annotator(&store, "ann");
    let p = project(&store, &[&ann], 1, 1.0, &a_a2_b());
    let gold = "{\"id\": \"G\", \"text\": \"Wonderful.\", \"label\": \"pos\", \"gold\": true}\n";
    let report = import::import(
        &store,
        &Actor::system(),
        p,
        rows(Format::Jsonl, gold.as_bytes()),
        |_| {},
    )
    .expect("import gold");
    assert_eq!(report.gold, 1, "{:?}", report.errors);
    // Gold rate 1: the gold item is what is served, and it counts as served.
    assert_eq!(next(&store, &ann, p, &[]).as_deref(), Some("G"));
    assert_eq!(served(&store, &ann, p), 1);
    let recorded: i64 = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT item_id FROM served WHERE user_id = ?1 AND project_id = ?2",
                rusqlite::params![ann.id, p],
                |r| r.get(0),
            )?)
        })
        .expect("served item");
    assert_eq!(recorded, item_id(&store, p, "G"));
    // Many reloads: only the newest 200 rows are kept.
    for _ in 0..230 {
        assert!(next(&store, &ann, p, &[]).is_some());
    }
    assert_eq!(served(&store, &ann, p), 200);
}
