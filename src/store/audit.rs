//! The audit log: every write, with who, from where and when. Written in the same transaction
//! as the change it describes, so the two can never disagree.
use super::{format_ms, now_ms, Actor, Page, Result};
use rusqlite::{params, Connection, Transaction};
use serde::Serialize;

pub fn record(
    tx: &Transaction,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &serde_json::Value,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO audit (user_id, action, target, detail, addr, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![actor.user_id, action, target, detail.to_string(), actor.addr, now_ms()])?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: i64,
    pub user: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
    pub addr: Option<String>,
    pub created_at: String,
}

/// Newest first: `after` is the id of the last entry already seen.
pub fn list(
    conn: &Connection,
    after: Option<i64>,
    limit: usize,
    target: Option<&str>,
) -> Result<Page<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, u.name, a.action, a.target, a.detail, a.addr, a.created_at
         FROM audit a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.id < ?1 AND (?2 IS NULL OR a.target = ?2)
         ORDER BY a.id DESC LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(
            params![after.unwrap_or(i64::MAX), target, limit as i64 + 1],
            |r| {
                let detail: Option<String> = r.get(4)?;
                Ok(Entry {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    action: r.get(2)?,
                    target: r.get(3)?,
                    detail: detail
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(serde_json::Value::Null),
                    addr: r.get(5)?,
                    created_at: format_ms(r.get(6)?),
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |e| e.id))
}
