//! Background jobs (pre-labeling). The row is the job's whole state, so a job interrupted by a
//! crash or restart is found again and resumed with the items that still lack a prediction.
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Cancelled,
    Failed,
}

impl JobStatus {
    fn parse(s: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(s.into()))
            .map_err(|_| StoreError::Corrupt(format!("unknown job status {s:?}")))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Failed => "failed",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: i64,
    pub project_id: i64,
    pub kind: String,
    pub status: JobStatus,
    pub model_id: Option<String>,
    pub prompt_version: Option<String>,
    pub total: i64,
    pub done: i64,
    /// Over the current run (since the last start or resume).
    pub items_per_sec: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

const SELECT: &str = "SELECT id, project_id, kind, status, model_id, prompt_version, total, done,
    run_started_at, run_done_at_start, error, created_at, finished_at FROM jobs";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<(Job, String, Option<i64>, i64)> {
    let finished: Option<i64> = r.get(12)?;
    Ok((
        Job {
            id: r.get(0)?,
            project_id: r.get(1)?,
            kind: r.get(2)?,
            status: JobStatus::Queued,
            model_id: r.get(4)?,
            prompt_version: r.get(5)?,
            total: r.get(6)?,
            done: r.get(7)?,
            items_per_sec: None,
            eta_seconds: None,
            error: r.get(10)?,
            created_at: format_ms(r.get(11)?),
            finished_at: finished.map(format_ms),
        },
        r.get(3)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn finish_row(
    (mut job, status, started, done_at_start): (Job, String, Option<i64>, i64),
) -> Result<Job> {
    job.status = JobStatus::parse(&status)?;
    if let (JobStatus::Running, Some(started)) = (job.status, started) {
        let secs = (now_ms() - started) as f64 / 1000.0;
        let done = (job.done - done_at_start) as f64;
        if secs > 0.5 && done > 0.0 {
            let rate = done / secs;
            job.items_per_sec = Some(rate);
            job.eta_seconds = Some((job.total - job.done).max(0) as f64 / rate);
        }
    }
    Ok(job)
}

pub fn create(tx: &Transaction, actor: &Actor, project_id: i64) -> Result<Job> {
    // Labeling projects are pre-labeled; preference projects get responses generated.
    let kind = match super::projects::get(tx, project_id)?.task {
        crate::domain::TaskKind::Preference => "generate",
        crate::domain::TaskKind::Instruction => {
            return Err(StoreError::invalid(
                "project",
                "an instruction project is reviewed by people; the model has no job in it",
            ))
        }
        _ => "prelabel",
    };
    let active: Option<i64> = tx
        .query_row(
            "SELECT id FROM jobs WHERE project_id = ?1 AND kind IN ('prelabel', 'generate') AND status IN ('queued', 'running')",
            [project_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = active {
        return Err(StoreError::Conflict(format!(
            "job {id} is already running for this project"
        )));
    }
    tx.execute(
        "INSERT INTO jobs (project_id, kind, status, user_id, created_at) VALUES (?1, ?2, 'queued', ?3, ?4)",
        params![project_id, kind, actor.user_id, now_ms()],
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        actor,
        "job.create",
        &format!("project:{project_id}"),
        &serde_json::json!({"job_id": id, "kind": kind}),
    )?;
    get(tx, id)
}

/// Prompts of a preference project that have no responses yet, after `after_id`.
pub fn prompts_without_responses(
    conn: &Connection,
    project_id: i64,
    after_id: i64,
    limit: usize,
) -> Result<Vec<(i64, Option<String>, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.prompt, i.text FROM items i WHERE i.project_id = ?1 AND i.id > ?2
           AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.item_id = i.id)
         ORDER BY i.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![project_id, after_id, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (prompts in the project, prompts with responses).
pub fn response_coverage(conn: &Connection, project_id: i64) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(EXISTS (SELECT 1 FROM responses r WHERE r.item_id = i.id)), 0)
         FROM items i WHERE i.project_id = ?1",
        [project_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

pub fn get(conn: &Connection, id: i64) -> Result<Job> {
    conn.prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .map(finish_row)
        .unwrap_or_else(|| Err(StoreError::NotFound(format!("job {id}"))))
}

pub fn for_project(conn: &Connection, project_id: i64) -> Result<Vec<Job>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE project_id = ?1 ORDER BY id DESC LIMIT 50"
    ))?;
    let rows = stmt.query_map([project_id], from_row)?;
    rows.map(|r| finish_row(r?)).collect()
}

/// Which runner thread takes a job: the model's jobs (pre-labeling, generation) take minutes
/// to hours, so retraining and applying rules run beside them instead of waiting behind them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Model,
    Learning,
}

impl Lane {
    fn kinds(self) -> &'static str {
        match self {
            Lane::Model => r#"["prelabel","generate"]"#,
            Lane::Learning => r#"["retrain","rules"]"#,
        }
    }
}

/// The oldest job of the lane that should be running: queued, or running when the server
/// stopped.
pub fn next_runnable(conn: &Connection, lane: Lane) -> Result<Option<Job>> {
    conn.prepare_cached(&format!(
        "{SELECT} WHERE status IN ('queued', 'running') AND kind IN (SELECT value FROM json_each(?1)) ORDER BY id LIMIT 1"
    ))?
    .query_row([lane.kinds()], from_row)
    .optional()?
    .map(finish_row)
    .transpose()
}

/// Marks the job running from now on, with what it will use and how far it already is.
pub fn start_run(
    tx: &Transaction,
    id: i64,
    model_id: &str,
    prompt_version: &str,
    total: i64,
    done: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET status = 'running', model_id = ?2, prompt_version = ?3, total = ?4, done = ?5,
             run_started_at = ?6, run_done_at_start = ?5, error = NULL
         WHERE id = ?1 AND status IN ('queued', 'running')",
        params![id, model_id, prompt_version, total, done, now_ms()],
    )?;
    Ok(())
}

pub fn add_done(tx: &Transaction, id: i64, n: i64) -> Result<()> {
    tx.prepare_cached("UPDATE jobs SET done = done + ?2 WHERE id = ?1")?
        .execute(params![id, n])?;
    Ok(())
}

/// Sets or clears what a running job says while it waits (say, for an inference server that
/// went away); a job no longer running keeps its own.
pub fn note(tx: &Transaction, id: i64, note: Option<&str>) -> Result<()> {
    tx.prepare_cached("UPDATE jobs SET error = ?2 WHERE id = ?1 AND status = 'running'")?
        .execute(params![id, note])?;
    Ok(())
}

pub fn status(conn: &Connection, id: i64) -> Result<JobStatus> {
    let s: String = conn
        .prepare_cached("SELECT status FROM jobs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    JobStatus::parse(&s)
}

/// Ends an active job; a job that already ended (say, cancelled meanwhile) keeps its status.
pub fn finish(tx: &Transaction, id: i64, status: JobStatus, error: Option<&str>) -> Result<()> {
    let changed = tx.execute(
        "UPDATE jobs SET status = ?2, error = ?3, finished_at = ?4 WHERE id = ?1 AND status IN ('queued', 'running')",
        params![id, status.as_str(), error, now_ms()],
    )?;
    if changed > 0 {
        let project: i64 =
            tx.query_row("SELECT project_id FROM jobs WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        audit::record(
            tx,
            &Actor::system(),
            &format!("job.{}", status.as_str()),
            &format!("project:{project}"),
            &serde_json::json!({"job_id": id, "error": error}),
        )?;
    }
    Ok(())
}

pub fn cancel(tx: &Transaction, actor: &Actor, id: i64) -> Result<Job> {
    let job = get(tx, id)?;
    if !job.status.is_active() {
        return Err(StoreError::Conflict(format!(
            "job {id} is already {}",
            job.status.as_str()
        )));
    }
    tx.execute(
        "UPDATE jobs SET status = 'cancelled', finished_at = ?2 WHERE id = ?1",
        params![id, now_ms()],
    )?;
    audit::record(
        tx,
        actor,
        "job.cancel",
        &format!("project:{}", job.project_id),
        &serde_json::json!({"job_id": id}),
    )?;
    get(tx, id)
}

/// Items of the project with no prediction from this model and prompt, after `after_id`.
pub fn pending_items(
    conn: &Connection,
    project_id: i64,
    model_id: &str,
    prompt_version: &str,
    after_id: i64,
    limit: usize,
) -> Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.text FROM items i WHERE i.project_id = ?1 AND i.id > ?4
           AND NOT EXISTS (SELECT 1 FROM predictions p WHERE p.item_id = i.id AND p.model_id = ?2 AND p.prompt_version = ?3)
         ORDER BY i.id LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![project_id, model_id, prompt_version, after_id, limit as i64],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (items in the project, items with a prediction from this model and prompt).
pub fn coverage(
    conn: &Connection,
    project_id: i64,
    model_id: &str,
    prompt_version: &str,
) -> Result<(i64, i64)> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(EXISTS (SELECT 1 FROM predictions p WHERE p.item_id = i.id AND p.model_id = ?2 AND p.prompt_version = ?3)), 0)
         FROM items i WHERE i.project_id = ?1",
        params![project_id, model_id, prompt_version],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}
