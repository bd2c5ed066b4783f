//! Annotations: append-only answers. A correction or an undo adds a row; the current label of an
//! item is derived from the latest row of each annotator.
use super::projects;
use super::users::User;
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use crate::domain::consensus;
use crate::domain::Answer;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Annotation {
    pub id: i64,
    pub item_id: i64,
    pub user: Option<String>,
    pub source: String,
    pub value: serde_json::Value,
    pub accepted: Option<bool>,
    pub seconds: Option<f64>,
    pub guideline_version: Option<i64>,
    pub prediction_id: Option<i64>,
    pub created_at: String,
}

pub struct Submission {
    pub answer: Answer,
    pub seconds: Option<f64>,
    pub prediction_id: Option<i64>,
}

/// Records a person's answer for an item in one transaction: the row, the item's counters,
/// the lease release and the audit entry.
pub fn submit(
    tx: &Transaction,
    actor: &Actor,
    user: &User,
    item_id: i64,
    sub: Submission,
) -> Result<Annotation> {
    let (project_id, text) = super::items::project_and_text(tx, item_id)?;
    let project = projects::visible_for(tx, user, project_id, &format!("item {item_id}"))?;
    let answer = sub.answer.validated(&project, &text)?;
    if let Some(s) = sub.seconds {
        if !(0.0..=86_400.0).contains(&s) {
            return Err(StoreError::invalid("seconds", "between 0 and 86400"));
        }
    }
    let accepted = match sub.prediction_id {
        None => None,
        Some(pid) => {
            let output: Option<String> = tx
                .prepare_cached("SELECT output FROM predictions WHERE id = ?1 AND item_id = ?2")?
                .query_row(params![pid, item_id], |r| r.get(0))
                .optional()?;
            let output = output.ok_or_else(|| {
                StoreError::invalid(
                    "prediction_id",
                    format!("prediction {pid} is not one of item {item_id}"),
                )
            })?;
            Some(matches_prediction(&answer, &output))
        }
    };
    let already: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM annotations WHERE item_id = ?1 AND user_id = ?2)",
        )?
        .query_row(params![item_id, user.id], |r| r.get(0))?;
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO annotations (item_id, user_id, source, value, accepted, seconds, guideline_version, prediction_id, created_at)
         VALUES (?1, ?2, 'human', ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![item_id, user.id, answer.to_json(), accepted, sub.seconds, project.guidelines.version, sub.prediction_id, now])?;
    let id = tx.last_insert_rowid();
    let new_annotator = i64::from(!already);
    // Gold items and settled items stay out of the labeling queue.
    let (done, gold): (bool, bool) = tx
        .prepare_cached(
            "UPDATE items SET annotators = annotators + ?2,
                 done = (done OR gold IS NOT NULL OR annotators + ?2 >= ?3),
                 lease_user = CASE WHEN lease_user = ?4 THEN NULL ELSE lease_user END,
                 lease_until = CASE WHEN lease_user = ?4 THEN 0 ELSE lease_until END
             WHERE id = ?1 RETURNING done, gold IS NOT NULL",
        )?
        .query_row(
            params![item_id, new_annotator, project.overlap, user.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    if done && !gold {
        super::review::reassess(tx, item_id)?;
    }
    super::learning::after_answer(tx, project_id)?;
    audit::record(
        tx,
        actor,
        "annotation.create",
        &format!("item:{item_id}"),
        &serde_json::json!({"annotation_id": id, "value": answer, "accepted": accepted, "supersedes_own": already}),
    )?;
    Ok(Annotation {
        id,
        item_id,
        user: Some(user.name.clone()),
        source: "human".into(),
        value: serde_json::to_value(&answer).unwrap_or_default(),
        accepted,
        seconds: sub.seconds,
        guideline_version: Some(project.guidelines.version),
        prediction_id: sub.prediction_id,
        created_at: format_ms(now),
    })
}

/// Whether the answer is exactly what the model predicted.
fn matches_prediction(answer: &Answer, output: &str) -> bool {
    serde_json::from_str(output)
        .ok()
        .and_then(|o| Answer::from_prediction(&o))
        .is_some_and(|p| consensus::same(answer, &p))
}

/// An item's annotations, oldest first.
pub fn for_item(conn: &Connection, item_id: i64) -> Result<Vec<Annotation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, a.item_id, u.name, a.source, a.value, a.accepted, a.seconds, a.guideline_version, a.prediction_id, a.created_at
         FROM annotations a LEFT JOIN users u ON u.id = a.user_id WHERE a.item_id = ?1 ORDER BY a.id",
    )?;
    let rows = stmt.query_map([item_id], |r| {
        let value: String = r.get(4)?;
        Ok(Annotation {
            id: r.get(0)?,
            item_id: r.get(1)?,
            user: r.get(2)?,
            source: r.get(3)?,
            value: serde_json::from_str(&value).unwrap_or(serde_json::Value::Null),
            accepted: r.get(5)?,
            seconds: r.get(6)?,
            guideline_version: r.get(7)?,
            prediction_id: r.get(8)?,
            created_at: format_ms(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The item's current answer: each annotator's latest row, and among those the most common
/// value (ties go to the most recent). None when nobody has answered.
pub fn current(annotations: &[Annotation]) -> Option<serde_json::Value> {
    let mut latest: Vec<&Annotation> = Vec::new();
    for a in annotations.iter().rev() {
        let who = (&a.user, &a.source);
        if !latest.iter().any(|l| (&l.user, &l.source) == who) {
            latest.push(a);
        }
    }
    // Reversed so that among equally common values the most recent wins.
    latest
        .iter()
        .rev()
        .max_by_key(|a| latest.iter().filter(|b| b.value == a.value).count())
        .map(|a| a.value.clone())
}

/// Takes the item out of this user's queue.
pub fn skip(tx: &Transaction, actor: &Actor, user: &User, item_id: i64) -> Result<()> {
    let project_id: i64 = tx
        .query_row(
            "SELECT project_id FROM items WHERE id = ?1",
            [item_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("item {item_id}")))?;
    projects::visible_for(tx, user, project_id, &format!("item {item_id}"))?;
    tx.execute(
        "INSERT OR IGNORE INTO skips (user_id, item_id, created_at) VALUES (?1, ?2, ?3)",
        params![user.id, item_id, now_ms()],
    )?;
    tx.execute(
        "UPDATE items SET lease_user = NULL, lease_until = 0 WHERE id = ?1 AND lease_user = ?2",
        params![item_id, user.id],
    )?;
    audit::record(
        tx,
        actor,
        "item.skip",
        &format!("item:{item_id}"),
        &serde_json::Value::Null,
    )
}
