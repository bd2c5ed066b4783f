//! Auto-accept: predictions at or above a project's confidence threshold become the labels of
//! items nobody answered, as resolutions with source `model` (never mistaken for a person's
//! answer). Accepted items leave the labeling queue.
use super::{audit, now_ms, Actor, Result, StoreError};
use crate::domain::Answer;
use rusqlite::{params, Transaction};

/// Turns auto-accept on at `threshold` (and accepts what already qualifies) or off (`None`;
/// accepted items keep their label). Returns how many items were accepted now.
pub fn set(
    tx: &Transaction,
    actor: &Actor,
    project_id: i64,
    threshold: Option<f64>,
) -> Result<u64> {
    if let Some(t) = threshold {
        if !(t.is_finite() && t > 0.0 && t <= 1.0) {
            return Err(StoreError::invalid("threshold", "above 0, at most 1"));
        }
    }
    super::projects::get(tx, project_id)?;
    tx.execute(
        "UPDATE projects SET auto_accept = ?2 WHERE id = ?1",
        params![project_id, threshold],
    )?;
    let accepted = match threshold {
        Some(t) => accept(tx, project_id, t, None)?,
        None => 0,
    };
    audit::record(
        tx,
        actor,
        "project.auto_accept",
        &format!("project:{project_id}"),
        &serde_json::json!({"threshold": threshold, "accepted": accepted}),
    )?;
    Ok(accepted)
}

/// After new predictions: accepts those of `items` that qualify under the project's current
/// threshold, if auto-accept is on.
pub fn after_predictions(tx: &Transaction, project_id: i64, items: &[i64]) -> Result<u64> {
    let threshold: Option<f64> = tx
        .prepare_cached("SELECT auto_accept FROM projects WHERE id = ?1")?
        .query_row([project_id], |r| r.get(0))?;
    match threshold {
        Some(t) => accept(tx, project_id, t, Some(items)),
        None => Ok(0),
    }
}

/// Unanswered, unresolved, non-gold items (all of the project's, or only `items`) whose latest
/// prediction reaches `threshold`.
fn accept(tx: &Transaction, project_id: i64, threshold: f64, items: Option<&[i64]>) -> Result<u64> {
    let only = items.map(|i| serde_json::to_string(i).unwrap_or_else(|_| "[]".into()));
    let mut find = tx.prepare_cached(
        "SELECT i.id, p.id, p.output FROM items i
         JOIN predictions p ON p.id = (SELECT MAX(id) FROM predictions WHERE item_id = i.id)
         WHERE i.project_id = ?1 AND i.annotators = 0 AND i.gold IS NULL AND p.confidence >= ?2
           AND (?3 IS NULL OR i.id IN (SELECT value FROM json_each(?3)))
           AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.item_id = i.id)",
    )?;
    let found: Vec<(i64, i64, String)> = find
        .query_map(params![project_id, threshold, only], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let now = now_ms();
    let note = format!("confidence threshold {threshold}");
    let mut insert = tx.prepare_cached(
        "INSERT INTO resolutions (item_id, source, value, prediction_id, note, created_at)
         VALUES (?1, 'model', ?2, ?3, ?4, ?5)",
    )?;
    let mut close = tx.prepare_cached(
        "UPDATE items SET done = 1, lease_user = NULL, lease_until = 0 WHERE id = ?1",
    )?;
    let mut accepted = 0;
    for (item, prediction, output) in found {
        let answer = serde_json::from_str(&output)
            .ok()
            .and_then(|o| Answer::from_prediction(&o))
            .ok_or_else(|| StoreError::Corrupt(format!("prediction {prediction} has no answer")))?;
        insert.execute(params![item, answer.to_json(), prediction, note, now])?;
        close.execute([item])?;
        accepted += 1;
    }
    Ok(accepted)
}
