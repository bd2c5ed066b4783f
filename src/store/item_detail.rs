//! One item with everything said about it: predictions, annotations, resolutions and the
//! answer they settle on. It reads the other aggregates, which is why it is not in `items`.
use super::annotations::{self, Annotation};
use super::predictions::{self, Prediction};
use super::review::{self, Resolution};
use super::{format_ms, Result, StoreError};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Item {
    pub id: i64,
    pub project_id: i64,
    pub ext_id: String,
    pub text: String,
    pub meta: Option<serde_json::Value>,
    pub created_at: String,
    pub annotators: i64,
    pub done: bool,
    /// A gold item's known answer.
    pub gold: Option<serde_json::Value>,
    /// Waiting in the adjudication queue.
    pub review: bool,
    /// The settled answer: an adjudication, else the annotators' (see `annotations::current`),
    /// else an auto-accepted prediction.
    pub current: Option<serde_json::Value>,
    pub predictions: Vec<Prediction>,
    pub annotations: Vec<Annotation>,
    pub resolutions: Vec<Resolution>,
}

/// The item with every prediction and annotation, oldest first. Visibility is the caller's check.
pub fn get(conn: &Connection, id: i64) -> Result<Item> {
    let row = conn
        .prepare_cached("SELECT id, project_id, ext_id, text, meta, created_at, annotators, done, gold, review FROM items WHERE id = ?1")?
        .query_row([id], |r| {
            let meta: Option<String> = r.get(4)?;
            Ok(Item {
                id: r.get(0)?,
                project_id: r.get(1)?,
                ext_id: r.get(2)?,
                text: r.get(3)?,
                meta: meta.and_then(|m| serde_json::from_str(&m).ok()),
                created_at: format_ms(r.get(5)?),
                annotators: r.get(6)?,
                done: r.get(7)?,
                gold: r
                    .get::<_, Option<String>>(8)?
                    .and_then(|g| serde_json::from_str(&g).ok()),
                review: r.get(9)?,
                current: None,
                predictions: Vec::new(),
                annotations: Vec::new(),
                resolutions: Vec::new(),
            })
        })
        .optional()?;
    let mut item = row.ok_or_else(|| StoreError::NotFound(format!("item {id}")))?;
    item.predictions = predictions::for_item(conn, id)?;
    item.annotations = annotations::for_item(conn, id)?;
    item.resolutions = review::for_item(conn, id)?;
    let latest = |source: &str| {
        item.resolutions
            .iter()
            .rev()
            .find(|r| r.source == source)
            .map(|r| r.value.clone())
    };
    item.current = latest("adjudicated")
        .or_else(|| annotations::current(&item.annotations))
        .or_else(|| latest("model"));
    Ok(item)
}
