//! Projects: task, label set, guidelines (versioned), members and queue settings.
use super::users::User;
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use crate::domain::project::{
    check_labels, check_near_duplicate, check_overlap, check_retrain_every, check_share,
};
use crate::domain::{
    Decision, Guidelines, LearningSettings, NewProject, Project, ProjectUpdate, Prompt,
    QualitySettings, QueueOrder, TaskKind,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

/// The SQL expression giving an item's queue priority (lower is served first).
/// Uncertainty: the margin between the model's two best labels (confidence for spans),
/// items the model has not seen last.
pub(crate) fn priority_sql(order: QueueOrder) -> &'static str {
    match order {
        QueueOrder::Sequential => "0.0",
        QueueOrder::Random => "(abs(random()) % 1000000000) / 1e9",
        QueueOrder::Uncertainty => {
            "COALESCE((SELECT p.margin FROM predictions p WHERE p.item_id = items.id ORDER BY p.id DESC LIMIT 1), 2.0)"
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(s: &str, what: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("unknown {what} {s:?}")))
}

pub fn create(tx: &Transaction, actor: &Actor, new: &NewProject) -> Result<Project> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(StoreError::invalid("name", "1 to 200 characters"));
    }
    // A preference project's "labels" are its vote choices, fixed by Wick.
    let labels = match new.task {
        TaskKind::Preference => Vec::new(),
        // The decisions are the labels, so agreement and the report work on them as on labels.
        TaskKind::Instruction => Decision::ALL
            .iter()
            .map(|d| d.as_str().to_string())
            .collect(),
        _ => check_labels(&new.labels)?,
    };
    let prompt = match &new.prompt {
        None => new.task.prompts()[0],
        Some(name) => match Prompt::parse(name) {
            Some(p) if new.task.prompts().contains(&p) => p,
            _ => {
                let names: Vec<&str> = new.task.prompts().iter().map(|p| p.as_str()).collect();
                return Err(StoreError::invalid(
                    "prompt",
                    format!("{name:?} is not one of {}", names.join(", ")),
                ));
            }
        },
    };
    // Three votes per pair by default, as OpenAssistant collects them.
    let default_overlap = if new.task == TaskKind::Preference {
        3
    } else {
        1
    };
    let overlap = check_overlap(new.overlap.unwrap_or(default_overlap))?;
    let generation = match (new.task, new.generation) {
        (TaskKind::Preference, g) => {
            Some(serde_json::to_string(&g.unwrap_or_default().checked()?).unwrap_or_default())
        }
        (_, None) => None,
        (_, Some(_)) => {
            return Err(StoreError::invalid(
                "generation",
                "only preference projects generate responses",
            ))
        }
    };
    let gold_rate = check_share("gold_rate", new.gold_rate.unwrap_or(0.05), true)?;
    let precision_target = check_share(
        "precision_target",
        new.precision_target.unwrap_or(0.95),
        false,
    )?;
    let retrain_every = check_retrain_every(new.retrain_every.unwrap_or(20))?;
    let near_duplicate = check_near_duplicate(new.near_duplicate_cosine.unwrap_or(0.95))?;
    let exists: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE name = ?1)",
        [name],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::Conflict(format!(
            "a project named {name:?} exists"
        )));
    }
    let now = now_ms();
    tx.execute(
        "INSERT INTO projects (name, task, labels, prompt, queue_order, overlap, created_at, generation, gold_rate, precision_target,
             retrain_every, near_duplicate_cosine)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            name,
            new.task.as_str(),
            serde_json::to_string(&labels).unwrap_or_default(),
            prompt.as_str(),
            new.queue_order.unwrap_or(QueueOrder::Uncertainty).as_str(),
            overlap,
            now,
            generation,
            gold_rate,
            precision_target,
            retrain_every,
            near_duplicate
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO guidelines (project_id, version, body, user_id, created_at) VALUES (?1, 1, ?2, ?3, ?4)",
        params![id, new.guidelines.clone().unwrap_or_default(), actor.user_id, now],
    )?;
    audit::record(
        tx,
        actor,
        "project.create",
        &format!("project:{id}"),
        &serde_json::json!({"name": name, "task": new.task, "labels": labels}),
    )?;
    get(tx, id)
}

const SELECT: &str =
    "SELECT p.id, p.name, p.task, p.labels, p.prompt, p.queue_order, p.overlap, p.created_at,
        g.version, g.body, p.generation, p.gold_rate, p.precision_target, p.auto_accept,
        p.retrain_every, p.near_duplicate_cosine
    FROM projects p JOIN guidelines g ON g.project_id = p.id
        AND g.version = (SELECT MAX(version) FROM guidelines WHERE project_id = p.id)";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Result<Project>> {
    let task: String = r.get(2)?;
    let labels: String = r.get(3)?;
    let order: String = r.get(5)?;
    let generation: Option<String> = r.get(10)?;
    let quality = QualitySettings {
        gold_rate: r.get(11)?,
        precision_target: r.get(12)?,
        auto_accept: r.get(13)?,
    };
    let learning = LearningSettings {
        retrain_every: r.get(14)?,
        near_duplicate_cosine: r.get(15)?,
    };
    let (id, name, prompt, overlap, created, version, body): (
        i64,
        String,
        String,
        i64,
        i64,
        i64,
        String,
    ) = (
        r.get(0)?,
        r.get(1)?,
        r.get(4)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    );
    Ok((|| {
        Ok(Project {
            id,
            name,
            task: parse(&task, "task")?,
            labels: serde_json::from_str(&labels)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            prompt: parse(&prompt, "prompt")?,
            queue_order: parse(&order, "queue order")?,
            overlap,
            guidelines: Guidelines { version, body },
            created_at: format_ms(created),
            generation: generation
                .map(|g| serde_json::from_str(&g).map_err(|e| StoreError::Corrupt(e.to_string())))
                .transpose()?,
            quality,
            learning,
        })
    })())
}

pub fn get(conn: &Connection, id: i64) -> Result<Project> {
    conn.prepare_cached(&format!("{SELECT} WHERE p.id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .unwrap_or_else(|| Err(StoreError::NotFound(format!("project {id}"))))
}

pub fn by_name(conn: &Connection, name: &str) -> Result<Project> {
    let id: Option<i64> = conn
        .query_row("SELECT id FROM projects WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    get(
        conn,
        id.ok_or_else(|| StoreError::NotFound(format!("project {name:?}")))?,
    )
}

/// The project if `user` may see it. Annotators outside it get NotFound, as if it did not exist.
pub fn visible(conn: &Connection, user: &User, id: i64) -> Result<Project> {
    if !user.is_admin() && !is_member(conn, id, user.id)? {
        return Err(StoreError::NotFound(format!("project {id}")));
    }
    get(conn, id)
}

/// As `visible`, for something inside the project (an item, a pair, a job): a caller who may not
/// see the project is told that `what` does not exist. Other errors pass through as they are.
pub fn visible_for(conn: &Connection, user: &User, project_id: i64, what: &str) -> Result<Project> {
    match visible(conn, user, project_id) {
        Err(StoreError::NotFound(_)) => Err(StoreError::NotFound(what.to_string())),
        other => other,
    }
}

pub fn list_for(conn: &Connection, user: &User) -> Result<Vec<Project>> {
    let sql = format!(
        "{SELECT} WHERE ?1 OR EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.user_id = ?2) ORDER BY p.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![user.is_admin(), user.id], from_row)?;
    rows.map(|r| r?).collect()
}

pub fn update(tx: &Transaction, actor: &Actor, id: i64, up: &ProjectUpdate) -> Result<Project> {
    let current = get(tx, id)?;
    if let Some(body) = &up.guidelines {
        if *body != current.guidelines.body {
            tx.execute(
                "INSERT INTO guidelines (project_id, version, body, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, current.guidelines.version + 1, body, actor.user_id, now_ms()],
            )?;
        }
    }
    if let Some(order) = up.queue_order {
        if order != current.queue_order {
            tx.execute(
                "UPDATE projects SET queue_order = ?1 WHERE id = ?2",
                params![order.as_str(), id],
            )?;
            tx.execute(
                &format!(
                    "UPDATE items SET priority = {} WHERE project_id = ?1",
                    priority_sql(order)
                ),
                [id],
            )?;
        }
    }
    if let Some(g) = up.generation {
        if current.task != TaskKind::Preference {
            return Err(StoreError::invalid(
                "generation",
                "only preference projects generate responses",
            ));
        }
        let g = serde_json::to_string(&g.checked()?).unwrap_or_default();
        tx.execute(
            "UPDATE projects SET generation = ?1 WHERE id = ?2",
            params![g, id],
        )?;
    }
    if let Some(rate) = up.gold_rate {
        tx.execute(
            "UPDATE projects SET gold_rate = ?1 WHERE id = ?2",
            params![check_share("gold_rate", rate, true)?, id],
        )?;
    }
    if let Some(target) = up.precision_target {
        tx.execute(
            "UPDATE projects SET precision_target = ?1 WHERE id = ?2",
            params![check_share("precision_target", target, false)?, id],
        )?;
    }
    if let Some(every) = up.retrain_every {
        tx.execute(
            "UPDATE projects SET retrain_every = ?1 WHERE id = ?2",
            params![check_retrain_every(every)?, id],
        )?;
    }
    if let Some(cos) = up.near_duplicate_cosine {
        tx.execute(
            "UPDATE projects SET near_duplicate_cosine = ?1 WHERE id = ?2",
            params![check_near_duplicate(cos)?, id],
        )?;
    }
    if let Some(overlap) = up.overlap {
        let overlap = check_overlap(overlap)?;
        tx.execute(
            "UPDATE projects SET overlap = ?1 WHERE id = ?2",
            params![overlap, id],
        )?;
        tx.execute(
            "UPDATE items SET done = (annotators >= ?1)
             WHERE project_id = ?2 AND gold IS NULL AND done != (annotators >= ?1)
               AND NOT EXISTS (SELECT 1 FROM resolutions r WHERE r.item_id = items.id)",
            params![overlap, id],
        )?;
    }
    let detail = serde_json::json!({
        "guidelines_changed": up.guidelines.as_ref().is_some_and(|b| *b != current.guidelines.body),
        "queue_order": up.queue_order,
        "overlap": up.overlap,
        "generation": up.generation,
        "gold_rate": up.gold_rate,
        "precision_target": up.precision_target,
        "retrain_every": up.retrain_every,
        "near_duplicate_cosine": up.near_duplicate_cosine,
    });
    audit::record(
        tx,
        actor,
        "project.update",
        &format!("project:{id}"),
        &detail,
    )?;
    get(tx, id)
}

pub fn is_member(conn: &Connection, project_id: i64, user_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM members WHERE project_id = ?1 AND user_id = ?2)",
        )?
        .query_row(params![project_id, user_id], |r| r.get(0))?)
}

pub fn members(conn: &Connection, project_id: i64) -> Result<Vec<User>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.name, u.role FROM members m JOIN users u ON u.id = m.user_id WHERE m.project_id = ?1 ORDER BY u.name",
    )?;
    let ids: Vec<i64> = stmt
        .query_map([project_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter()
        .map(|id| super::users::get(conn, id))
        .collect()
}

pub fn set_member(
    tx: &Transaction,
    actor: &Actor,
    project_id: i64,
    user_id: i64,
    member: bool,
) -> Result<()> {
    get(tx, project_id)?;
    super::users::get(tx, user_id)?;
    if member {
        tx.execute(
            "INSERT OR IGNORE INTO members (project_id, user_id) VALUES (?1, ?2)",
            params![project_id, user_id],
        )?;
    } else {
        tx.execute(
            "DELETE FROM members WHERE project_id = ?1 AND user_id = ?2",
            params![project_id, user_id],
        )?;
    }
    let action = if member {
        "member.add"
    } else {
        "member.remove"
    };
    audit::record(
        tx,
        actor,
        action,
        &format!("project:{project_id}"),
        &serde_json::json!({"user_id": user_id}),
    )
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Counts {
    /// Items to label (gold items are counted apart).
    pub items: i64,
    /// Items with at least one annotation.
    pub annotated: i64,
    /// Items with as many annotations as wanted.
    pub done: i64,
    pub annotations: i64,
    pub gold: i64,
    /// Items waiting for a reviewer.
    pub review: i64,
}

pub fn counts(conn: &Connection, project_id: i64) -> Result<Counts> {
    Ok(conn.query_row(
        "SELECT COUNT(*) - COUNT(gold), COALESCE(SUM(annotators > 0 AND gold IS NULL), 0),
             COALESCE(SUM(done AND gold IS NULL), 0), COALESCE(SUM(annotators), 0), COUNT(gold), COALESCE(SUM(review), 0)
         FROM items WHERE project_id = ?1",
        [project_id],
        |r| {
            Ok(Counts {
                items: r.get(0)?,
                annotated: r.get(1)?,
                done: r.get(2)?,
                annotations: r.get(3)?,
                gold: r.get(4)?,
                review: r.get(5)?,
            })
        },
    )?)
}
