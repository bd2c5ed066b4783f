//! Items: the texts to label. Listing pages by id; `item_detail` carries the full history.
use super::{Page, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ItemSummary {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    pub annotators: i64,
    pub done: bool,
    /// The latest prediction's label and confidence, if any.
    pub predicted: Option<String>,
    pub confidence: Option<f64>,
}

pub fn list(
    conn: &Connection,
    project_id: i64,
    after: Option<i64>,
    limit: usize,
) -> Result<Page<ItemSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.ext_id, substr(i.text, 1, 300), i.annotators, i.done, p.label, p.confidence
         FROM items i LEFT JOIN predictions p ON p.id = (SELECT MAX(id) FROM predictions WHERE item_id = i.id)
         WHERE i.project_id = ?1 AND i.id > ?2 ORDER BY i.id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![project_id, after.unwrap_or(0), limit as i64 + 1],
            |r| {
                Ok(ItemSummary {
                    id: r.get(0)?,
                    ext_id: r.get(1)?,
                    text: r.get(2)?,
                    annotators: r.get(3)?,
                    done: r.get(4)?,
                    predicted: r.get(5)?,
                    confidence: r.get(6)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |i| i.id))
}

/// The project an item belongs to.
pub fn project_of(conn: &Connection, id: i64) -> Result<i64> {
    conn.prepare_cached("SELECT project_id FROM items WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("item {id}")))
}

/// An item as a list of neighbours shows it (the text's first 500 characters).
#[derive(Debug, Serialize)]
pub struct ItemText {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
}

/// `ids` that exist, in no particular order.
pub fn texts(conn: &Connection, ids: &[i64]) -> Result<Vec<ItemText>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, ext_id, substr(text, 1, 500) FROM items
         WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    let rows = stmt.query_map([ids], |r| {
        Ok(ItemText {
            id: r.get(0)?,
            ext_id: r.get(1)?,
            text: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The item's project and text, what checking an answer against it needs.
pub fn project_and_text(conn: &Connection, id: i64) -> Result<(i64, String)> {
    conn.prepare_cached("SELECT project_id, text FROM items WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("item {id}")))
}

/// Items in the project.
pub fn count(conn: &Connection, project_id: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM items WHERE project_id = ?1")?
        .query_row([project_id], |r| r.get(0))?)
}
