//! The review queue: which item a person gets next, and the lease that keeps two people off it.
//!
//! Items come in the project's priority order (least confident first under `uncertainty`).
//! Near-duplicates would crowd that order: twenty rewordings of one complaint all sit at the
//! same margin, and answering them one after the other teaches the learner little and tires the
//! person. So when the project sets `near_duplicate_cosine`, the queue looks at the first
//! `CANDIDATES` items instead of one and hands out the first whose sentence embedding is below
//! that cosine to every item among the last `RECENT` served to the same person (recorded in
//! `served`). A passed-over item is not lost: it comes back once the items it resembles have
//! dropped out of the person's recent window, and when every candidate is a near-duplicate the
//! first is served anyway, so nobody is left without work while items remain.
use super::learning;
use super::predictions::{self, Prediction};
use super::projects;
use super::users::User;
use super::{now_ms, Result};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

/// How long an item stays with the person it was handed to.
pub const LEASE_MS: i64 = 10 * 60 * 1000;

/// Items at the head of the queue considered when the near-duplicate check is on: enough to
/// step past a run of rewordings, few enough that the check stays a handful of dot products.
const CANDIDATES: i64 = 20;
/// Items served to a person that a candidate is compared with.
const RECENT: i64 = 50;
/// `served` rows kept per person and project; older ones are deleted as new ones come in.
const KEEP_SERVED: i64 = 200;

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
            record_served(tx, user.id, project_id, found.0, now)?;
            return queue_item(tx, found, &project);
        }
    }
    let threshold = project.learning.near_duplicate_cosine;
    // The partial index holds only open items, in queue order; the scan stops at the first one
    // this user may take (or the first `CANDIDATES` when near-duplicates are checked).
    let limit = if threshold.is_some() { CANDIDATES } else { 1 };
    let mut candidates: Vec<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT i.id, i.ext_id, i.text FROM items i INDEXED BY items_queue
             WHERE i.project_id = ?1 AND i.done = 0
               AND (i.lease_until < ?2 OR i.lease_user = ?3)
               AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = ?3)
               AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.user_id = ?3 AND s.item_id = i.id)
               AND i.id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY i.priority, i.id LIMIT ?5",
        )?
        .query_map(params![project_id, now, user.id, exclude, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    if candidates.is_empty() {
        return Ok(None);
    }
    let pick = match threshold {
        Some(cos) if candidates.len() > 1 => {
            first_distinct(tx, user.id, project_id, &candidates, cos)?
        }
        _ => 0,
    };
    let found = candidates.swap_remove(pick);
    tx.prepare_cached("UPDATE items SET lease_user = ?2, lease_until = ?3 WHERE id = ?1")?
        .execute(params![found.0, user.id, now + LEASE_MS])?;
    record_served(tx, user.id, project_id, found.0, now)?;
    queue_item(tx, found, &project)
}

/// The index of the first candidate whose embedding is below cosine `threshold` to every item
/// among the last `RECENT` served to the user in the project; 0 when all of them are above
/// (serving a near-duplicate beats serving nothing). A candidate without an embedding, or with
/// one of another size (another embedder), has nothing to compare and is never a duplicate.
fn first_distinct(
    tx: &Transaction,
    user_id: i64,
    project_id: i64,
    candidates: &[(i64, String, String)],
    threshold: f64,
) -> Result<usize> {
    let recent: Vec<i64> = tx
        .prepare_cached(
            "SELECT item_id FROM served WHERE user_id = ?1 AND project_id = ?2
             ORDER BY at DESC, rowid DESC LIMIT ?3",
        )?
        .query_map(params![user_id, project_id, RECENT], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if recent.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = recent
        .iter()
        .copied()
        .chain(candidates.iter().map(|c| c.0))
        .collect();
    let vectors = learning::embeddings_of(tx, &ids)?;
    let seen: Vec<(i64, &Vec<f32>)> = recent
        .iter()
        .filter_map(|id| vectors.get(id).map(|v| (*id, v)))
        .collect();
    let duplicate = |id: i64| -> bool {
        let Some(v) = vectors.get(&id) else {
            return false;
        };
        seen.iter()
            // The item itself may be among the recent ones (the page was reloaded and its lease
            // hands it back): that is the same item again, not a duplicate of it.
            .filter(|(other, w)| *other != id && w.len() == v.len())
            .any(|(_, w)| crate::engine::cosine(v, w) >= threshold)
    };
    Ok(candidates.iter().position(|c| !duplicate(c.0)).unwrap_or(0))
}

/// Notes that `item_id` was handed to the user, for the near-duplicate check, and trims the
/// user's rows for the project to the newest `KEEP_SERVED` so the table stays small (the check
/// reads only the newest `RECENT`).
fn record_served(
    tx: &Transaction,
    user_id: i64,
    project_id: i64,
    item_id: i64,
    now: i64,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO served (user_id, project_id, item_id, at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![user_id, project_id, item_id, now])?;
    tx.prepare_cached(
        "DELETE FROM served WHERE rowid IN (
             SELECT rowid FROM served WHERE user_id = ?1 AND project_id = ?2
             ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?3)",
    )?
    .execute(params![user_id, project_id, KEEP_SERVED])?;
    Ok(())
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
    project: &crate::domain::Project,
) -> Result<Option<QueueItem>> {
    let record = match project.task {
        crate::domain::TaskKind::Instruction => tx
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
