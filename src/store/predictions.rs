//! Model predictions: immutable rows, one per (item, model, prompt version); a new model or
//! prompt adds rows beside the old ones.
use super::{format_ms, now_ms, Result};
use crate::domain::QueueOrder;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

pub type Output = serde_json::Map<String, serde_json::Value>;

#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub id: i64,
    pub item_id: i64,
    pub model_id: String,
    pub prompt_version: String,
    pub labels_hash: String,
    pub confidence: f64,
    pub margin: f64,
    pub entropy: f64,
    pub truncated: bool,
    pub created_at: String,
    /// `label` and `scores` (classification) or `entities` (NER).
    #[serde(flatten)]
    pub output: Output,
}

/// What the engine said about one item.
#[derive(Debug, Clone)]
pub struct NewPrediction {
    pub item_id: i64,
    pub label: Option<String>,
    pub output: Output,
    pub confidence: f64,
    pub margin: f64,
    pub entropy: f64,
    pub truncated: bool,
}

/// Who made a batch of predictions.
#[derive(Debug, Clone)]
pub struct Provenance {
    pub model_id: String,
    pub prompt_version: String,
    pub labels_hash: String,
    /// The learner whose mix this is; None for the language model's own predictions.
    pub learner_id: Option<i64>,
}

/// Stores a batch and, under the uncertainty order, moves the items in the queue.
pub fn insert(
    tx: &Transaction,
    by: &Provenance,
    order: QueueOrder,
    batch: &[NewPrediction],
) -> Result<()> {
    let outputs: Vec<String> = batch
        .iter()
        .map(|p| serde_json::Value::Object(p.output.clone()).to_string())
        .collect();
    insert_rows(
        tx,
        by,
        order,
        batch.iter().zip(&outputs).map(|(p, output)| Row {
            item_id: p.item_id,
            label: p.label.as_deref(),
            output,
            confidence: p.confidence,
            margin: p.margin,
            entropy: p.entropy,
            truncated: p.truncated,
        }),
    )
}

/// A prediction as it is written, its output already JSON: items that share one (a rules
/// apply's items with the same votes) serialize it once.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub item_id: i64,
    pub label: Option<&'a str>,
    pub output: &'a str,
    pub confidence: f64,
    pub margin: f64,
    pub entropy: f64,
    pub truncated: bool,
}

/// [`insert`] for rows whose output is serialized already.
pub fn insert_rows<'a, I>(
    tx: &Transaction,
    by: &Provenance,
    order: QueueOrder,
    rows: I,
) -> Result<()>
where
    I: IntoIterator<Item = Row<'a>>,
    I::IntoIter: ExactSizeIterator,
{
    let rows = rows.into_iter();
    if order == QueueOrder::Uncertainty && is_bulk(tx, rows.len())? {
        super::without_index(tx, QUEUE_INDEX, |tx| write_rows(tx, by, order, rows))
    } else {
        write_rows(tx, by, order, rows)
    }
}

/// The index the queue's priority update keeps in step.
const QUEUE_INDEX: &str = "items_queue";

/// Whether `rows` moves so much of the queue that dropping its index and building it again
/// beats keeping it in step row by row: 667k of 1M items' priorities took 5.2 s with the
/// index, 0.5 s without it plus 1.6 s to build it (sqlite3 3.40, BENCHMARKS.md).
fn is_bulk(tx: &Transaction, rows: usize) -> Result<bool> {
    if rows < 100_000 {
        return Ok(false);
    }
    let items: Option<i64> = tx.query_row("SELECT MAX(id) FROM items", [], |r| r.get(0))?;
    Ok(rows as i64 * 3 >= items.unwrap_or(0))
}

fn write_rows<'a>(
    tx: &Transaction,
    by: &Provenance,
    order: QueueOrder,
    rows: impl Iterator<Item = Row<'a>>,
) -> Result<()> {
    let now = now_ms();
    let mut ins = tx.prepare_cached(
        "INSERT INTO predictions (item_id, model_id, prompt_version, labels_hash, label, output, confidence, margin, entropy, truncated, created_at, learner_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut prio = tx.prepare_cached("UPDATE items SET priority = ?2 WHERE id = ?1")?;
    for p in rows {
        ins.execute(params![
            p.item_id,
            by.model_id,
            by.prompt_version,
            by.labels_hash,
            p.label,
            p.output,
            p.confidence,
            p.margin,
            p.entropy,
            p.truncated,
            now,
            by.learner_id
        ])?;
        if order == QueueOrder::Uncertainty {
            prio.execute(params![p.item_id, p.margin])?;
        }
    }
    Ok(())
}

const SELECT: &str = "SELECT id, item_id, model_id, prompt_version, labels_hash, confidence, margin, entropy, truncated, created_at, output FROM predictions";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Prediction> {
    let output: String = r.get(10)?;
    Ok(Prediction {
        id: r.get(0)?,
        item_id: r.get(1)?,
        model_id: r.get(2)?,
        prompt_version: r.get(3)?,
        labels_hash: r.get(4)?,
        confidence: r.get(5)?,
        margin: r.get(6)?,
        entropy: r.get(7)?,
        truncated: r.get(8)?,
        created_at: format_ms(r.get(9)?),
        output: serde_json::from_str(&output).unwrap_or_default(),
    })
}

pub fn for_item(conn: &Connection, item_id: i64) -> Result<Vec<Prediction>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE item_id = ?1 ORDER BY id"))?;
    let rows = stmt.query_map([item_id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn latest(conn: &Connection, item_id: i64) -> Result<Option<Prediction>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT} WHERE item_id = ?1 ORDER BY id DESC LIMIT 1"
        ))?
        .query_row([item_id], from_row)
        .optional()?)
}

pub fn count_for_project(conn: &Connection, project_id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COUNT(DISTINCT p.item_id) FROM predictions p JOIN items i ON i.id = p.item_id WHERE i.project_id = ?1",
        [project_id],
        |r| r.get(0),
    )?)
}
