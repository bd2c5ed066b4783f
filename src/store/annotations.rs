//! Annotations: append-only answers. A correction or an undo adds a row; the current label of an
//! item is derived from the latest row of each annotator.
use super::projects::{self, Project, TaskKind};
use super::users::User;
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

/// A character span, offsets in Unicode scalar values, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

/// What a person (or an import) says about an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Label {
        label: String,
    },
    Entities {
        entities: Vec<Span>,
    },
    /// An instruction dataset's record reviewed; `response` is the edited one.
    Review {
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Edit,
    Reject,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Accept, Decision::Edit, Decision::Reject];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Edit => "edit",
            Decision::Reject => "reject",
        }
    }
}

/// The longest edited response kept.
const MAX_RESPONSE_CHARS: usize = 100_000;

impl Answer {
    /// Checks the answer against the project's task and label set and the item's text.
    /// Entities come back sorted by start.
    pub fn validated(self, project: &Project, text: &str) -> Result<Answer> {
        match (self, project.task) {
            (Answer::Label { label }, TaskKind::Classification) => {
                if !project.labels.contains(&label) {
                    return Err(StoreError::invalid(
                        "label",
                        format!("{label:?} is not a label of this project"),
                    ));
                }
                Ok(Answer::Label { label })
            }
            (Answer::Entities { mut entities }, TaskKind::Ner) => {
                let len = text.chars().count();
                entities.sort_by_key(|s| (s.start, s.end));
                for (i, s) in entities.iter().enumerate() {
                    let field = format!("entities[{i}]");
                    if !project.labels.contains(&s.label) {
                        return Err(StoreError::invalid(
                            &field,
                            format!("{:?} is not an entity type of this project", s.label),
                        ));
                    }
                    if s.start >= s.end || s.end > len {
                        return Err(StoreError::invalid(
                            &field,
                            format!(
                                "span {}..{} is not inside the text ({len} characters)",
                                s.start, s.end
                            ),
                        ));
                    }
                    if i > 0 && entities[i - 1].end > s.start {
                        return Err(StoreError::invalid(
                            &field,
                            format!(
                                "span {}..{} overlaps {}..{}",
                                s.start,
                                s.end,
                                entities[i - 1].start,
                                entities[i - 1].end
                            ),
                        ));
                    }
                }
                Ok(Answer::Entities { entities })
            }
            (Answer::Review { decision, response }, TaskKind::Instruction) => {
                let response = response.filter(|r| !r.trim().is_empty());
                match (decision, &response) {
                    (Decision::Edit, None) => Err(StoreError::invalid(
                        "response",
                        "an edit needs the edited response",
                    )),
                    (Decision::Edit, Some(r)) if r.chars().count() > MAX_RESPONSE_CHARS => {
                        Err(StoreError::invalid(
                            "response",
                            format!("at most {MAX_RESPONSE_CHARS} characters"),
                        ))
                    }
                    (Decision::Accept | Decision::Reject, Some(_)) => Err(StoreError::invalid(
                        "response",
                        "only an edit carries a response",
                    )),
                    _ => Ok(Answer::Review { decision, response }),
                }
            }
            (_, TaskKind::Instruction) => Err(StoreError::invalid(
                "decision",
                "an instruction project takes a decision: accept, edit (with the response) or reject",
            )),
            (Answer::Review { .. }, _) => Err(StoreError::invalid(
                "decision",
                "decisions are for instruction projects",
            )),
            (_, TaskKind::Preference) => Err(StoreError::invalid(
                "label",
                "a preference project takes votes on pairs, not labels",
            )),
            (Answer::Label { .. }, TaskKind::Ner) => Err(StoreError::invalid(
                "entities",
                "an NER project takes entities, not a label",
            )),
            (Answer::Entities { .. }, TaskKind::Classification) => Err(StoreError::invalid(
                "label",
                "a classification project takes a label, not entities",
            )),
        }
    }

    /// The answer a prediction's output (`label` or `entities`, among other fields) amounts to.
    pub fn from_prediction(output: &serde_json::Value) -> Option<Answer> {
        if let Some(label) = output.get("label").and_then(|l| l.as_str()) {
            return Some(Answer::Label {
                label: label.to_string(),
            });
        }
        let entities = serde_json::from_value(output.get("entities")?.clone()).ok()?;
        Some(Answer::Entities { entities })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

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
        .is_some_and(|p| crate::quality::consensus::same(answer, &p))
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
