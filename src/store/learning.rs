//! The learning loop's rows: each item's sentence embedding, the learners trained from
//! people's answers, what they are trained from, and the online accuracy of what was shown.
use super::jobs::{self, Job};
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use crate::domain::Span;
use crate::domain::TaskKind;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use std::collections::HashMap;

/// The `source` of language-model features: the model, prompt version and label set of the
/// predictions they came with.
pub fn feature_source(model_id: &str, prompt_version: &str, labels_hash: &str) -> String {
    format!("{model_id} {prompt_version} {labels_hash}")
}

/// The two per-item vector tables: the table, and the column naming what made the vector.
#[derive(Clone, Copy)]
enum Vectors {
    /// Sentence embeddings, by embedder.
    Embeddings,
    /// The language model's features, by `feature_source`.
    LmFeatures,
    /// The zero-shot extractor's scored candidates, by `feature_source`.
    SpanCandidates,
}

impl Vectors {
    /// The table, the column naming what made the blob, and the blob's column.
    fn table(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Vectors::Embeddings => ("embeddings", "embedder", "vector"),
            Vectors::LmFeatures => ("lm_features", "source", "vector"),
            Vectors::SpanCandidates => ("span_candidates", "source", "data"),
        }
    }
}

/// The stored blobs of those of `items` that have one (made by `by`, when given).
fn blobs_of(
    conn: &Connection,
    kind: Vectors,
    items: &[i64],
    by: Option<&str>,
) -> Result<HashMap<i64, Vec<u8>>> {
    let (table, column, value) = kind.table();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT item_id, {value} FROM {table}
         WHERE item_id IN (SELECT value FROM json_each(?1)) AND (?2 IS NULL OR {column} = ?2)"
    ))?;
    let ids = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
    let rows = stmt.query_map(params![ids, by], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The stored vectors of those of `items` that have one (made by `by`, when given).
fn vectors_of(
    conn: &Connection,
    kind: Vectors,
    items: &[i64],
    by: Option<&str>,
) -> Result<HashMap<i64, Vec<f32>>> {
    Ok(blobs_of(conn, kind, items, by)?
        .into_iter()
        .map(|(item, b)| (item, from_blob(&b)))
        .collect())
}

/// Stores (or replaces) the zero-shot candidates of items (opaque bytes), from `source`.
pub fn put_span_candidates(tx: &Transaction, source: &str, rows: &[(i64, Vec<u8>)]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO span_candidates (item_id, source, data) VALUES (?1, ?2, ?3)
         ON CONFLICT (item_id) DO UPDATE SET source = excluded.source, data = excluded.data",
    )?;
    for (item, data) in rows {
        stmt.execute(params![item, source, data])?;
    }
    Ok(())
}

/// The zero-shot candidates of those of `items` that have them from `source`.
pub fn span_candidates_of(
    conn: &Connection,
    items: &[i64],
    source: &str,
) -> Result<HashMap<i64, Vec<u8>>> {
    blobs_of(conn, Vectors::SpanCandidates, items, Some(source))
}

/// What pre-labeling keeps of the language model's reading of one item: its features and its
/// distribution over the labels, in label-set order.
pub struct LmView {
    pub item_id: i64,
    pub features: Vec<f32>,
    pub scores: Vec<f32>,
}

/// Stores (or replaces) the language model's views of items, from `source`.
pub fn put_lm_features(tx: &Transaction, source: &str, rows: &[LmView]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO lm_features (item_id, source, vector, scores) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (item_id) DO UPDATE
           SET source = excluded.source, vector = excluded.vector, scores = excluded.scores",
    )?;
    for row in rows {
        stmt.execute(params![
            row.item_id,
            source,
            to_blob(&row.features),
            to_blob(&row.scores)
        ])?;
    }
    Ok(())
}

/// The language model's features of those of `items` that have them from `source`.
pub fn lm_features_of(
    conn: &Connection,
    items: &[i64],
    source: &str,
) -> Result<HashMap<i64, Vec<f32>>> {
    vectors_of(conn, Vectors::LmFeatures, items, Some(source))
}

/// Stores (or replaces) item embeddings made by `embedder`, each with the next `seq`.
pub fn put_embeddings(tx: &Transaction, embedder: &str, rows: &[(i64, Vec<f32>)]) -> Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO embeddings (item_id, embedder, vector, seq)
         VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM embeddings))
         ON CONFLICT (item_id) DO UPDATE
           SET embedder = excluded.embedder, vector = excluded.vector, seq = excluded.seq",
    )?;
    for (item, v) in rows {
        stmt.execute(params![item, embedder, to_blob(v)])?;
    }
    Ok(())
}

/// One stored embedding as the similar-items index reads it.
pub struct EmbeddingRow {
    pub seq: i64,
    pub item_id: i64,
    pub project_id: i64,
    pub embedder: String,
    pub vector: Vec<f32>,
}

/// Embeddings written after `seq` (of every project, so the caller's mark moves past other
/// projects' rows too), in write order, at most `limit`.
pub fn embeddings_since(conn: &Connection, seq: i64, limit: usize) -> Result<Vec<EmbeddingRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.seq, e.item_id, i.project_id, e.embedder, e.vector
         FROM embeddings e INDEXED BY embeddings_seq JOIN items i ON i.id = e.item_id
         WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![seq, limit as i64], |r| {
        Ok(EmbeddingRow {
            seq: r.get(0)?,
            item_id: r.get(1)?,
            project_id: r.get(2)?,
            embedder: r.get(3)?,
            vector: from_blob(&r.get::<_, Vec<u8>>(4)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The highest `seq` written so far (0: none).
pub fn max_embedding_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM embeddings")?
        .query_row([], |r| r.get(0))?)
}

/// Hands every embedding of the project's items made by `embedder` to `each`, in item order,
/// one row at a time (a million of them would be 1.5 GB as one list).
pub fn each_project_embedding(
    conn: &Connection,
    project_id: i64,
    embedder: &str,
    mut each: impl FnMut(i64, &[f32]),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.item_id, e.vector FROM items i INDEXED BY items_project
         JOIN embeddings e ON e.item_id = i.id
         WHERE i.project_id = ?1 AND e.embedder = ?2 ORDER BY i.id",
    )?;
    let mut rows = stmt.query(params![project_id, embedder])?;
    let mut v = Vec::new();
    while let Some(row) = rows.next()? {
        v.clear();
        floats_into(
            row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?,
            &mut v,
        );
        each(row.get(0)?, &v);
    }
    Ok(())
}

/// The embedder and embedding of one item (only `embedder`'s, when given).
pub fn embedding_of(
    conn: &Connection,
    item_id: i64,
    embedder: Option<&str>,
) -> Result<Option<(String, Vec<f32>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT embedder, vector FROM embeddings WHERE item_id = ?1 AND (?2 IS NULL OR embedder = ?2)",
        )?
        .query_row(params![item_id, embedder], |r| {
            Ok((r.get(0)?, from_blob(&r.get::<_, Vec<u8>>(1)?)))
        })
        .optional()?)
}

/// The stored embeddings of `items` made by `embedder`.
pub fn embeddings_from(
    conn: &Connection,
    items: &[i64],
    embedder: &str,
) -> Result<HashMap<i64, Vec<f32>>> {
    vectors_of(conn, Vectors::Embeddings, items, Some(embedder))
}

pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

pub fn from_blob(b: &[u8]) -> Vec<f32> {
    let mut v = Vec::with_capacity(b.len() / 4);
    floats_into(b, &mut v);
    v
}

/// Appends the little-endian f32s of `b` to `out`.
fn floats_into(b: &[u8], out: &mut Vec<f32>) {
    out.extend(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

/// Items of the project without an embedding from `embedder`, after `after`.
pub fn items_without_embedding(
    conn: &Connection,
    project_id: i64,
    embedder: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.text FROM items i LEFT JOIN embeddings e ON e.item_id = i.id
         WHERE i.project_id = ?1 AND i.id > ?3 AND (e.item_id IS NULL OR e.embedder != ?2)
         ORDER BY i.id LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![project_id, embedder, after, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The project's items after `after`, in id order, with their texts: a span re-score reads
/// them page by page.
pub fn texts_after(
    conn: &Connection,
    project_id: i64,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, text FROM items INDEXED BY items_project WHERE project_id = ?1 AND id > ?2
         ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![project_id, after, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The texts of `items`, in the order given (missing ids left out).
pub fn texts_of(conn: &Connection, items: &[i64]) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.text FROM json_each(?1) j JOIN items i ON i.id = j.value ORDER BY j.key",
    )?;
    let ids = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
    let rows = stmt.query_map([ids], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn count_without_embedding(conn: &Connection, project_id: i64, embedder: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM items i LEFT JOIN embeddings e ON e.item_id = i.id
         WHERE i.project_id = ?1 AND (e.item_id IS NULL OR e.embedder != ?2)",
        params![project_id, embedder],
        |r| r.get(0),
    )?)
}

/// The stored embeddings of `items` (those that have one).
pub fn embeddings_of(conn: &Connection, items: &[i64]) -> Result<HashMap<i64, Vec<f32>>> {
    vectors_of(conn, Vectors::Embeddings, items, None)
}

/// The label each answered item is known by, as the learner is taught: a reviewer's
/// adjudication, else the gold answer, else the strict majority of the people's latest
/// answers, else (nobody answered) the latest imported label. Model labels never count.
/// Returns (item, label) in item order, and the newest annotation read.
pub fn human_labels(conn: &Connection, project_id: i64) -> Result<Settled<String>> {
    human_answers(conn, project_id, |v| {
        v.get("label")?.as_str().map(String::from)
    })
}

/// The entities each answered sentence is known by, chosen as `human_labels` chooses (a
/// majority means the same spans). An answer with no entities says the sentence has none.
pub fn human_spans(conn: &Connection, project_id: i64) -> Result<Settled<Vec<Span>>> {
    human_answers(conn, project_id, |v| {
        let mut spans: Vec<Span> = serde_json::from_value(v.get("entities")?.clone()).ok()?;
        spans.sort_by_key(|s| (s.start, s.end));
        Some(spans)
    })
}

/// Each answered item with what people settled on, in item order, and the newest annotation
/// read.
pub type Settled<T> = (Vec<(i64, T)>, i64);

/// What people say of each item, read from answer values by `read` (None: not an answer of
/// this kind), settled in the order `human_labels` describes.
fn human_answers<T: Clone + PartialEq>(
    conn: &Connection,
    project_id: i64,
    read: impl Fn(&serde_json::Value) -> Option<T>,
) -> Result<Settled<T>> {
    let value_of = |value: &str| {
        serde_json::from_str::<serde_json::Value>(value)
            .ok()
            .and_then(|v| read(&v))
    };
    let mut decided: HashMap<i64, T> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT r.item_id, r.value FROM resolutions r JOIN items i ON i.id = r.item_id
         WHERE i.project_id = ?1 AND r.source = 'adjudicated' ORDER BY r.id",
    )?;
    for row in stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))? {
        let (item, value) = row?;
        if let Some(l) = value_of(&value) {
            decided.insert(item, l);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, gold FROM items INDEXED BY items_gold WHERE project_id = ?1 AND gold IS NOT NULL",
    )?;
    for row in stmt.query_map([project_id], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))? {
        let (item, value) = row?;
        if let Some(l) = value_of(&value) {
            decided.entry(item).or_insert(l);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT a.item_id, a.id, a.user_id, a.source, a.value FROM annotations a
         JOIN items i ON i.id = a.item_id WHERE i.project_id = ?1 ORDER BY a.item_id, a.id",
    )?;
    let mut rows = stmt.query([project_id])?;
    let mut out: Vec<(i64, T)> = Vec::new();
    let mut newest = 0i64;
    let mut current: Option<Answers<T>> = None;
    let settle = |Answers {
                      item,
                      people,
                      import,
                  }: Answers<T>,
                  decided: &mut HashMap<i64, T>,
                  out: &mut Vec<(i64, T)>| {
        if let Some(l) = decided.remove(&item) {
            out.push((item, l));
            return;
        }
        if people.is_empty() {
            if let Some(l) = import {
                out.push((item, l));
            }
            return;
        }
        let n = people.len();
        if let Some((_, l)) = people
            .iter()
            .find(|(_, l)| 2 * people.iter().filter(|(_, m)| m == l).count() > n)
        {
            out.push((item, l.clone()));
        }
    };
    while let Some(r) = rows.next()? {
        let item: i64 = r.get(0)?;
        let id: i64 = r.get(1)?;
        let user: Option<i64> = r.get(2)?;
        let source: String = r.get(3)?;
        let value: String = r.get(4)?;
        newest = newest.max(id);
        if current.as_ref().is_some_and(|c| c.item != item) {
            if let Some(c) = current.take() {
                settle(c, &mut decided, &mut out);
            }
        }
        let entry = current.get_or_insert_with(|| Answers {
            item,
            people: Vec::new(),
            import: None,
        });
        let Some(label) = value_of(&value) else {
            continue;
        };
        match (source.as_str(), user) {
            ("human", Some(u)) => match entry.people.iter_mut().find(|(who, _)| *who == u) {
                Some(slot) => slot.1 = label,
                None => entry.people.push((u, label)),
            },
            _ => entry.import = Some(label),
        }
    }
    if let Some(c) = current.take() {
        settle(c, &mut decided, &mut out);
    }
    // Adjudicated or gold items nobody annotated.
    out.extend(decided);
    out.sort_by_key(|(item, _)| *item);
    Ok((out, newest))
}

/// One item's answers while they are read: each person's latest answer, and the latest
/// imported one.
struct Answers<T> {
    item: i64,
    people: Vec<(i64, T)>,
    import: Option<T>,
}

/// The language-model predictions a learner mixes with: the model and prompt of the project's
/// latest pre-labeling run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Base {
    pub model_id: String,
    pub prompt_version: String,
}

pub fn base(conn: &Connection, project_id: i64) -> Result<Option<Base>> {
    Ok(conn
        .query_row(
            "SELECT model_id, prompt_version FROM jobs WHERE project_id = ?1 AND kind = 'prelabel'
               AND model_id IS NOT NULL AND prompt_version IS NOT NULL ORDER BY id DESC LIMIT 1",
            [project_id],
            |r| {
                Ok(Base {
                    model_id: r.get(0)?,
                    prompt_version: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Each item's latest language-model distribution from `base` over `labels_hash`, in the order
/// of `labels`.
pub fn lm_scores(
    conn: &Connection,
    items: &[i64],
    base: &Base,
    labels_hash: &str,
    labels: &[String],
) -> Result<HashMap<i64, Vec<f64>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT p.output FROM predictions p
         WHERE p.id = (SELECT MAX(q.id) FROM predictions q WHERE q.item_id = ?1 AND q.learner_id IS NULL
                         AND q.model_id = ?2 AND q.prompt_version = ?3 AND q.labels_hash = ?4)",
    )?;
    let index = label_index(labels);
    let mut out = HashMap::new();
    for &item in items {
        let output: Option<String> = stmt
            .query_row(
                params![item, base.model_id, base.prompt_version, labels_hash],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(scores) = output.as_deref().and_then(|o| scores_of(o, &index)) {
            out.insert(item, scores);
        }
    }
    Ok(out)
}

fn label_index(labels: &[String]) -> HashMap<&str, usize> {
    labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect()
}

/// The `scores` object of a stored prediction output as a distribution in label order (0 for
/// a label it lacks), if it has one. Parsed into borrowed keys and skipping the other fields:
/// a re-score reads one of these per item.
fn scores_of(output: &str, index: &HashMap<&str, usize>) -> Option<Vec<f64>> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        #[serde(borrow)]
        scores: HashMap<std::borrow::Cow<'a, str>, f64>,
    }
    let stored: Stored = serde_json::from_str(output).ok()?;
    let mut p = vec![0.0; index.len()];
    for (label, v) in stored.scores {
        if let Some(&i) = index.get(label.as_ref()) {
            p[i] = v;
        }
    }
    Some(p)
}

/// An item to re-score: its embedding, and its language model's scores and features, if any.
pub struct ToScore {
    pub item_id: i64,
    pub embedding: Vec<f32>,
    /// In label order.
    pub scores: Option<Vec<f64>>,
    pub lm_features: Option<Vec<f32>>,
}

/// Items of the project after `after` that have an embedding from `embedder`, with the scores
/// of their latest prediction from `base` over `labels_hash` in the order of `labels`.
#[allow(clippy::too_many_arguments)]
pub fn to_score(
    conn: &Connection,
    project_id: i64,
    embedder: &str,
    base: &Base,
    labels_hash: &str,
    labels: &[String],
    after: i64,
    limit: usize,
) -> Result<Vec<ToScore>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, e.vector, f.vector, f.scores,
           CASE WHEN f.scores IS NULL THEN
             (SELECT p.output FROM predictions p WHERE p.item_id = i.id AND p.learner_id IS NULL
                AND p.model_id = ?3 AND p.prompt_version = ?4 AND p.labels_hash = ?5 ORDER BY p.id DESC LIMIT 1)
           END
         FROM items i INDEXED BY items_project JOIN embeddings e ON e.item_id = i.id AND e.embedder = ?2
           LEFT JOIN lm_features f ON f.item_id = i.id AND f.source = ?8
         WHERE i.project_id = ?1 AND i.id > ?6 ORDER BY i.id LIMIT ?7",
    )?;
    let source = feature_source(&base.model_id, &base.prompt_version, labels_hash);
    let index = label_index(labels);
    let rows = stmt.query_map(
        params![
            project_id,
            embedder,
            base.model_id,
            base.prompt_version,
            labels_hash,
            after,
            limit as i64,
            source
        ],
        |r| {
            // Stored with the features, or else parsed from the prediction.
            let stored = r.get_ref(3)?.as_blob_or_null()?;
            let scores = match stored {
                Some(blob) if blob.len() == 4 * labels.len() => {
                    Some(from_blob(blob).into_iter().map(f64::from).collect())
                }
                _ => r
                    .get_ref(4)?
                    .as_str_or_null()?
                    .and_then(|o| scores_of(o, &index)),
            };
            Ok(ToScore {
                item_id: r.get(0)?,
                embedding: from_blob(r.get_ref(1)?.as_blob()?),
                scores,
                lm_features: r.get_ref(2)?.as_blob_or_null()?.map(from_blob),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A trained learner as stored.
#[derive(Debug, Clone, Serialize)]
pub struct LearnerRow {
    pub id: i64,
    pub project_id: i64,
    pub version: String,
    pub base_model: String,
    pub prompt_version: String,
    pub labels_hash: String,
    /// Human labels it was trained on.
    pub labels: i64,
    pub last_annotation: i64,
    /// Items it re-scored.
    pub rescored: i64,
    /// Training and re-scoring, wall time.
    pub seconds: f64,
    pub job_id: Option<i64>,
    pub created_at: String,
    #[serde(skip)]
    pub state: Vec<u8>,
}

/// What a new learner row holds.
pub struct NewLearner<'a> {
    pub project_id: i64,
    pub version: &'a str,
    pub base: &'a Base,
    pub labels_hash: &'a str,
    pub labels: i64,
    pub last_annotation: i64,
    pub state: &'a [u8],
    pub rescored: i64,
    pub seconds: f64,
    pub job_id: Option<i64>,
}

pub fn insert_learner(tx: &Transaction, l: &NewLearner) -> Result<i64> {
    tx.execute(
        "INSERT INTO learners (project_id, version, base_model, prompt_version, labels_hash, labels,
             last_annotation, state, rescored, seconds, job_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            l.project_id,
            l.version,
            l.base.model_id,
            l.base.prompt_version,
            l.labels_hash,
            l.labels,
            l.last_annotation,
            l.state,
            l.rescored,
            l.seconds,
            l.job_id,
            now_ms()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

const LEARNER: &str =
    "SELECT id, project_id, version, base_model, prompt_version, labels_hash, labels,
    last_annotation, rescored, seconds, job_id, created_at, state FROM learners";

fn learner_row(r: &rusqlite::Row) -> rusqlite::Result<LearnerRow> {
    Ok(LearnerRow {
        id: r.get(0)?,
        project_id: r.get(1)?,
        version: r.get(2)?,
        base_model: r.get(3)?,
        prompt_version: r.get(4)?,
        labels_hash: r.get(5)?,
        labels: r.get(6)?,
        last_annotation: r.get(7)?,
        rescored: r.get(8)?,
        seconds: r.get(9)?,
        job_id: r.get(10)?,
        created_at: format_ms(r.get(11)?),
        state: r.get(12)?,
    })
}

pub fn latest_learner(conn: &Connection, project_id: i64) -> Result<Option<LearnerRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "{LEARNER} WHERE project_id = ?1 ORDER BY id DESC LIMIT 1"
        ))?
        .query_row([project_id], learner_row)
        .optional()?)
}

pub fn learners(conn: &Connection, project_id: i64) -> Result<Vec<LearnerRow>> {
    let mut stmt = conn.prepare_cached(&format!("{LEARNER} WHERE project_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([project_id], learner_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How a curve point scores what was shown against what people answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Share of answers whose label was the one shown.
    Accuracy,
    /// Micro F1 of the spans shown against the spans answered (same start, end and type).
    SpanF1,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Accuracy => "accuracy",
            Measure::SpanF1 => "span F1",
        }
    }
}

/// Online quality over the answers given while one model was shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Human answers the shown model was trained on (0: the language model alone).
    pub labels: i64,
    /// The learner version, None for the language model alone.
    pub version: Option<String>,
    pub answers: i64,
    pub measure: Measure,
    /// The shown prediction's score on those answers.
    pub shown: f64,
    /// The language model's own prediction's score, on the same answers.
    pub lm: f64,
}

/// A point's tallies while the answers are read: for accuracy, `hit` answers right of `gold`;
/// for spans, `hit` spans right of `gold` answered and `said` shown.
#[derive(Default, Clone, Copy)]
struct Tally {
    gold: usize,
    said: usize,
    hit: usize,
}

impl Tally {
    fn score(self, measure: Measure) -> f64 {
        match measure {
            Measure::Accuracy => self.hit as f64 / self.gold.max(1) as f64,
            // Nothing answered and nothing shown: nothing was missed.
            Measure::SpanF1 if self.gold + self.said == 0 => 1.0,
            Measure::SpanF1 => 2.0 * self.hit as f64 / (self.gold + self.said) as f64,
        }
    }
}

fn spans_in(v: Option<&serde_json::Value>) -> Option<Vec<(usize, usize, String)>> {
    let spans: Vec<Span> = serde_json::from_value(v?.clone()).ok()?;
    Some(
        spans
            .into_iter()
            .map(|s| (s.start, s.end, s.label))
            .collect(),
    )
}

/// Prequential quality: every human answer against the prediction shown to that person before
/// they answered (and the language model's prediction beneath it), one point per learner.
/// Labels score by accuracy, entity answers by span F1.
pub fn curve(conn: &Connection, project_id: i64) -> Result<Vec<CurvePoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.value, p.output, p.learner_id, l.labels, l.version
         FROM annotations a JOIN items i ON i.id = a.item_id
         JOIN predictions p ON p.id = a.prediction_id
         LEFT JOIN learners l ON l.id = p.learner_id
         WHERE i.project_id = ?1 AND a.source = 'human' ORDER BY a.id",
    )?;
    struct Point {
        learner: i64,
        labels: i64,
        version: Option<String>,
        answers: i64,
        measure: Measure,
        shown: Tally,
        lm: Tally,
    }
    let mut points: Vec<Point> = Vec::new();
    let mut rows = stmt.query([project_id])?;
    while let Some(r) = rows.next()? {
        let parse = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
            Ok(serde_json::from_str(&r.get::<_, String>(i)?).ok())
        };
        let (Some(answer), Some(output)) = (parse(0)?, parse(1)?) else {
            continue;
        };
        let learner: Option<i64> = r.get(2)?;
        // Under a learner the language model's own answer is kept beneath the mix.
        let (own, lm_key) = match answer.get("label") {
            Some(_) => ("label", "lm_label"),
            None => ("entities", "lm_entities"),
        };
        let lm = match learner {
            None => output.get(own),
            Some(_) => output.get(lm_key),
        };
        let (measure, shown, lm) = match answer.get("label").and_then(|l| l.as_str()) {
            Some(label) => {
                let right = |v: Option<&serde_json::Value>| {
                    usize::from(v.and_then(|v| v.as_str()) == Some(label))
                };
                let one = |hit| Tally {
                    gold: 1,
                    said: 1,
                    hit,
                };
                (
                    Measure::Accuracy,
                    one(right(output.get("label"))),
                    one(right(lm)),
                )
            }
            None => {
                let Some(gold) = spans_in(answer.get("entities")) else {
                    continue;
                };
                let tally = |v: Option<&serde_json::Value>| {
                    let said = spans_in(v).unwrap_or_default();
                    Tally {
                        gold: gold.len(),
                        said: said.len(),
                        hit: said.iter().filter(|s| gold.contains(s)).count(),
                    }
                };
                (Measure::SpanF1, tally(output.get("entities")), tally(lm))
            }
        };
        let key = learner.unwrap_or(0);
        let at = match points.iter().position(|p| p.learner == key) {
            Some(at) => at,
            None => {
                points.push(Point {
                    learner: key,
                    labels: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    version: r.get(4)?,
                    answers: 0,
                    measure,
                    shown: Tally::default(),
                    lm: Tally::default(),
                });
                points.len() - 1
            }
        };
        let p = &mut points[at];
        p.answers += 1;
        for (sum, add) in [(&mut p.shown, shown), (&mut p.lm, lm)] {
            sum.gold += add.gold;
            sum.said += add.said;
            sum.hit += add.hit;
        }
    }
    let mut out: Vec<CurvePoint> = points
        .into_iter()
        .map(|p| CurvePoint {
            labels: p.labels,
            version: p.version,
            answers: p.answers,
            measure: p.measure,
            shown: p.shown.score(p.measure),
            lm: p.lm.score(p.measure),
        })
        .collect();
    out.sort_by_key(|p| p.labels);
    Ok(out)
}

/// Human answers in the project newer than annotation `after`.
pub fn answers_since(conn: &Connection, project_id: i64, after: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM annotations a JOIN items i ON i.id = a.item_id
             WHERE a.id > ?2 AND a.source = 'human' AND i.project_id = ?1",
        )?
        .query_row(params![project_id, after], |r| r.get(0))?)
}

/// Queues a retrain of the project, unless one is queued or running already.
pub fn queue_retrain(tx: &Transaction, actor: &Actor, project_id: i64) -> Result<Job> {
    let project = super::projects::get(tx, project_id)?;
    if !project.task.learns() {
        return Err(StoreError::invalid(
            "project",
            "the learner is for classification and NER projects",
        ));
    }
    if let Some(id) = active_retrain(tx, project_id)? {
        return Err(StoreError::Conflict(format!(
            "a retrain of this project is already queued or running (job {id})"
        )));
    }
    // Answers up to here are the ones this retrain was queued for.
    let mark: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM annotations", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT INTO jobs (project_id, kind, status, user_id, created_at, since_annotation)
         VALUES (?1, 'retrain', 'queued', ?2, ?3, ?4)",
        params![project_id, actor.user_id, now_ms(), mark],
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        actor,
        "job.create",
        &format!("project:{project_id}"),
        &serde_json::json!({"job_id": id, "kind": "retrain"}),
    )?;
    jobs::get(tx, id)
}

fn active_retrain(conn: &Connection, project_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM jobs WHERE project_id = ?1 AND kind = 'retrain' AND status IN ('queued', 'running')",
        )?
        .query_row([project_id], |r| r.get(0))
        .optional()?)
}

/// After a person's answer: queues a retrain when the project's `retrain_every` human answers
/// have come in since the last retrain was queued (whether it then succeeded or not, so a
/// project whose retrain fails, say with one label used, tries again only after as many new
/// answers). Returns the queued job.
pub fn after_answer(tx: &Transaction, project_id: i64) -> Result<Option<Job>> {
    let (every, task): (i64, String) = tx
        .prepare_cached("SELECT retrain_every, task FROM projects WHERE id = ?1")?
        .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let learns = TaskKind::ALL
        .into_iter()
        .find(|k| k.as_str() == task)
        .is_some_and(TaskKind::learns);
    if every <= 0 || !learns || active_retrain(tx, project_id)?.is_some() {
        return Ok(None);
    }
    let mark: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(since_annotation), 0) FROM jobs WHERE project_id = ?1 AND kind = 'retrain'",
        )?
        .query_row([project_id], |r| r.get(0))?;
    if answers_since(tx, project_id, mark)? < every {
        return Ok(None);
    }
    queue_retrain(tx, &Actor::system(), project_id).map(Some)
}
