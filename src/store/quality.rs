//! What the quality report reads: each answered item with its annotators' latest answers, its
//! gold answer, the model's latest prediction and its resolution; and who answered when.
use super::review::{model_answer, PersonAnswer};
use super::{predictions, Result, StoreError};
use crate::domain::Answer;
use rusqlite::{params, Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    pub gold: Option<Answer>,
    /// Each annotator's latest answer.
    pub answers: Vec<PersonAnswer>,
    pub prediction: Option<(Answer, f64)>,
    /// The latest resolution: `adjudicated` or `model`, and its answer.
    pub resolution: Option<(String, Answer)>,
}

fn parse(value: &str, item: i64) -> Result<Answer> {
    serde_json::from_str(value)
        .map_err(|e| StoreError::Corrupt(format!("an answer of item {item}: {e}")))
}

/// Every item of the project that a person answered, in id order.
pub fn answered_items(conn: &Connection, project_id: i64) -> Result<Vec<ItemRecord>> {
    let mut stmt = conn.prepare(
        "SELECT i.id, i.ext_id, i.text, i.gold, u.name, a.value
         FROM items i JOIN annotations a ON a.item_id = i.id AND a.source = 'human'
         JOIN users u ON u.id = a.user_id
         WHERE i.project_id = ?1 ORDER BY i.id, a.id",
    )?;
    let mut rows = stmt.query([project_id])?;
    let mut out: Vec<ItemRecord> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        if out.last().is_none_or(|l| l.id != id) {
            let gold: Option<String> = r.get(3)?;
            out.push(ItemRecord {
                id,
                ext_id: r.get(1)?,
                text: r.get(2)?,
                gold: gold.map(|g| parse(&g, id)).transpose()?,
                answers: Vec::new(),
                prediction: None,
                resolution: None,
            });
        }
        let (user, value): (String, String) = (r.get(4)?, r.get(5)?);
        let value = parse(&value, id)?;
        let Some(item) = out.last_mut() else { continue };
        // Rows come oldest first, so a later answer replaces the annotator's earlier one.
        match item.answers.iter_mut().find(|a| a.user == user) {
            Some(a) => a.value = value,
            None => item.answers.push(PersonAnswer { user, value }),
        }
    }
    let mut resolution = conn.prepare_cached(
        "SELECT source, value FROM resolutions WHERE item_id = ?1 ORDER BY id DESC LIMIT 1",
    )?;
    for item in &mut out {
        item.prediction = predictions::latest(conn, item.id)?.and_then(|p| model_answer(&p));
        let res: Option<(String, String)> = resolution
            .query_row([item.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        item.resolution = res
            .map(|(s, v)| parse(&v, item.id).map(|a| (s, a)))
            .transpose()?;
    }
    Ok(out)
}

/// One human annotation: who, when, on which item, how long it took.
#[derive(Debug, Clone)]
pub struct Activity {
    pub user: String,
    pub item_id: i64,
    pub at_ms: i64,
    pub seconds: Option<f64>,
}

pub fn activity(conn: &Connection, project_id: i64) -> Result<Vec<Activity>> {
    let mut stmt = conn.prepare(
        "SELECT u.name, a.item_id, a.created_at, a.seconds
         FROM items i JOIN annotations a ON a.item_id = i.id AND a.source = 'human'
         JOIN users u ON u.id = a.user_id WHERE i.project_id = ?1 ORDER BY a.created_at",
    )?;
    let rows = stmt.query_map([project_id], |r| {
        Ok(Activity {
            user: r.get(0)?,
            item_id: r.get(1)?,
            at_ms: r.get(2)?,
            seconds: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many items nobody answered have a latest prediction at or above `threshold` and no
/// resolution yet: what auto-accepting at that threshold would label.
pub fn unlabeled_above(conn: &Connection, project_id: i64, threshold: f64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM items i
             JOIN predictions p ON p.id = (SELECT MAX(id) FROM predictions WHERE item_id = i.id)
             WHERE i.project_id = ?1 AND i.annotators = 0 AND i.gold IS NULL AND p.confidence >= ?2
               AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.item_id = i.id)",
        )?
        .query_row(params![project_id, threshold], |r| r.get(0))?)
}
