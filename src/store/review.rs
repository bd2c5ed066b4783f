//! The adjudication queue and resolutions: a reviewer's decision on an item people disagree
//! about (or that contradicts a confident model), kept apart from the annotators' answers.
use super::predictions::{self, Prediction};
use super::projects;
use super::queue::LEASE_MS;
use super::users::User;
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use crate::domain::consensus;
use crate::domain::Answer;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub id: i64,
    pub item_id: i64,
    /// `adjudicated` (a reviewer) or `model` (auto-accepted prediction).
    pub source: String,
    pub value: serde_json::Value,
    pub user: Option<String>,
    pub note: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonAnswer {
    pub user: String,
    pub value: Answer,
}

/// The latest human answer of each of the item's annotators, in the order they first answered.
pub fn latest_answers(conn: &Connection, item_id: i64) -> Result<Vec<PersonAnswer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.name, a.value FROM annotations a JOIN users u ON u.id = a.user_id
         WHERE a.item_id = ?1 AND a.source = 'human'
           AND a.id = (SELECT MAX(b.id) FROM annotations b WHERE b.item_id = a.item_id AND b.user_id = a.user_id)
         ORDER BY (SELECT MIN(c.id) FROM annotations c WHERE c.item_id = a.item_id AND c.user_id = a.user_id)",
    )?;
    let rows = stmt.query_map([item_id], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|row| {
        let (user, value) = row?;
        let value = serde_json::from_str(&value)
            .map_err(|e| StoreError::Corrupt(format!("annotation of item {item_id}: {e}")))?;
        Ok(PersonAnswer { user, value })
    })
    .collect()
}

/// The latest prediction as an answer, with its confidence.
pub fn model_answer(p: &Prediction) -> Option<(Answer, f64)> {
    let output = serde_json::Value::Object(p.output.clone());
    Answer::from_prediction(&output).map(|a| (a, p.confidence))
}

/// Puts a finished item in the adjudication queue, or takes it out, from its annotators'
/// latest answers and the model's latest prediction. An adjudicated item stays settled.
pub fn reassess(tx: &Transaction, item_id: i64) -> Result<()> {
    let adjudicated: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM resolutions WHERE item_id = ?1 AND source = 'adjudicated')",
        )?
        .query_row([item_id], |r| r.get(0))?;
    if adjudicated {
        return Ok(());
    }
    let answers: Vec<Answer> = latest_answers(tx, item_id)?
        .into_iter()
        .map(|a| a.value)
        .collect();
    if answers.is_empty() {
        return Ok(());
    }
    let model = predictions::latest(tx, item_id)?.and_then(|p| model_answer(&p));
    let review = consensus::needs_review(
        &consensus::consensus(&answers),
        model.as_ref().map(|(a, c)| (a, *c)),
    );
    tx.prepare_cached("UPDATE items SET review = ?2 WHERE id = ?1 AND review != ?2")?
        .execute(params![item_id, review])?;
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    pub guideline_version: i64,
    pub answers: Vec<PersonAnswer>,
    pub prediction: Option<Prediction>,
    /// Why it is here.
    pub reason: &'static str,
}

fn can_review(user: &User) -> Result<()> {
    if user.can_review() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "adjudication needs the reviewer or admin role".into(),
        ))
    }
}

/// The next item waiting for a reviewer, leased to `user`; `exclude` as in the labeling queue.
pub fn next(
    tx: &Transaction,
    user: &User,
    project_id: i64,
    exclude: &[i64],
) -> Result<Option<ReviewItem>> {
    can_review(user)?;
    let project = projects::visible(tx, user, project_id)?;
    let now = now_ms();
    let exclude = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into());
    let found: Option<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT id, ext_id, text FROM items INDEXED BY items_review
             WHERE project_id = ?1 AND review = 1 AND (lease_until < ?2 OR lease_user = ?3)
               AND id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY id LIMIT 1",
        )?
        .query_row(params![project_id, now, user.id, exclude], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((id, ext_id, text)) = found else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE items SET lease_user = ?2, lease_until = ?3 WHERE id = ?1")?
        .execute(params![id, user.id, now + LEASE_MS])?;
    let answers = latest_answers(tx, id)?;
    let prediction = predictions::latest(tx, id)?;
    let values: Vec<Answer> = answers.iter().map(|a| a.value.clone()).collect();
    let reason = if consensus::consensus(&values).value.is_none() {
        "no majority"
    } else {
        "the annotators contradict a confident model"
    };
    Ok(Some(ReviewItem {
        id,
        ext_id,
        text,
        guideline_version: project.guidelines.version,
        answers,
        prediction,
        reason,
    }))
}

/// Records a reviewer's decision: the item leaves the adjudication queue and its label is
/// this answer (source `adjudicated`) in every export.
pub fn resolve(
    tx: &Transaction,
    actor: &Actor,
    user: &User,
    item_id: i64,
    answer: Answer,
    note: Option<String>,
) -> Result<Resolution> {
    can_review(user)?;
    let (project_id, text) = super::items::project_and_text(tx, item_id)?;
    let project = projects::visible_for(tx, user, project_id, &format!("item {item_id}"))?;
    let answer = answer.validated(&project, &text)?;
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(StoreError::invalid("note", "at most 2000 characters"));
    }
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO resolutions (item_id, source, value, user_id, note, guideline_version, created_at)
         VALUES (?1, 'adjudicated', ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![item_id, answer.to_json(), user.id, note, project.guidelines.version, now])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached(
        "UPDATE items SET review = 0, done = 1, lease_user = NULL, lease_until = 0 WHERE id = ?1",
    )?
    .execute([item_id])?;
    audit::record(
        tx,
        actor,
        "item.adjudicate",
        &format!("item:{item_id}"),
        &serde_json::json!({"resolution_id": id, "value": answer, "note": note}),
    )?;
    Ok(Resolution {
        id,
        item_id,
        source: "adjudicated".into(),
        value: serde_json::to_value(&answer).unwrap_or_default(),
        user: Some(user.name.clone()),
        note,
        created_at: format_ms(now),
    })
}

/// The item's resolutions, oldest first.
pub fn for_item(conn: &Connection, item_id: i64) -> Result<Vec<Resolution>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.id, r.source, r.value, u.name, r.note, r.created_at
         FROM resolutions r LEFT JOIN users u ON u.id = r.user_id WHERE r.item_id = ?1 ORDER BY r.id",
    )?;
    let rows = stmt.query_map([item_id], |r| {
        Ok(Resolution {
            id: r.get(0)?,
            item_id,
            source: r.get(1)?,
            value: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(serde_json::Value::Null),
            user: r.get(3)?,
            note: r.get(4)?,
            created_at: format_ms(r.get(5)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
