//! The review queue: which item a person gets next, and the lease that keeps two people off it.
use super::predictions::{self, Prediction};
use super::projects;
use super::users::User;
use super::{now_ms, Result};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

/// How long an item stays with the person it was handed to.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Serialize)]
pub struct QueueItem {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    pub guideline_version: i64,
    pub prediction: Option<Prediction>,
    /// Instruction projects: the record under review (instruction, context, response, category).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<serde_json::Value>,
}

/// The next item for `user` in the project's order, leased to them; `exclude` lists items the
/// caller already holds (the one on screen and the prefetched one).
pub fn next(
    tx: &Transaction,
    user: &User,
    project_id: i64,
    exclude: &[i64],
) -> Result<Option<QueueItem>> {
    let project = projects::visible(tx, user, project_id)?;
    let now = now_ms();
    let exclude = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into());
    let rate = project.quality.gold_rate;
    // Gold items are served at the project's rate, unleased (everyone answers each of them),
    // and look like any other item.
    if rate > 0.0 && rand::random::<f64>() < rate {
        if let Some(found) = next_gold(tx, user, project_id, &exclude)? {
            return queue_item(tx, found, &project);
        }
    }
    // The partial index holds only open items, in queue order; the scan stops at the first one
    // this user may take.
    let found: Option<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT i.id, i.ext_id, i.text FROM items i INDEXED BY items_queue
             WHERE i.project_id = ?1 AND i.done = 0
               AND (i.lease_until < ?2 OR i.lease_user = ?3)
               AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = ?3)
               AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.user_id = ?3 AND s.item_id = i.id)
               AND i.id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY i.priority, i.id LIMIT 1",
        )?
        .query_row(params![project_id, now, user.id, exclude], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some(found) = found else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE items SET lease_user = ?2, lease_until = ?3 WHERE id = ?1")?
        .execute(params![found.0, user.id, now + LEASE_MS])?;
    queue_item(tx, found, &project)
}

/// A gold item this user has not answered or skipped, picked at random.
fn next_gold(
    tx: &Transaction,
    user: &User,
    project_id: i64,
    exclude: &str,
) -> Result<Option<(i64, String, String)>> {
    Ok(tx
        .prepare_cached(
            "SELECT i.id, i.ext_id, i.text FROM items i INDEXED BY items_gold
             WHERE i.project_id = ?1 AND i.gold IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = ?2)
               AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.user_id = ?2 AND s.item_id = i.id)
               AND i.id NOT IN (SELECT value FROM json_each(?3))
             ORDER BY random() LIMIT 1",
        )?
        .query_row(params![project_id, user.id, exclude], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?)
}

fn queue_item(
    tx: &Transaction,
    (id, ext_id, text): (i64, String, String),
    project: &projects::Project,
) -> Result<Option<QueueItem>> {
    let record = match project.task {
        projects::TaskKind::Instruction => tx
            .prepare_cached("SELECT prompt FROM items WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))?
            .and_then(|r| serde_json::from_str(&r).ok()),
        _ => None,
    };
    Ok(Some(QueueItem {
        id,
        ext_id,
        text,
        guideline_version: project.guidelines.version,
        prediction: predictions::latest(tx, id)?,
        record,
    }))
}
