//! Labeling functions of a project, versioned by name as the guidelines are: every change is a
//! new row with its author and time (and an audit entry in the same transaction); a deletion is
//! a row without a spec. Also the scan that applying or measuring a rule set reads, and the
//! jobs that apply one.
use super::jobs::{self, Job};
use super::{audit, format_ms, now_ms, Actor, Result, StoreError};
use crate::rules::{Rule, RuleSpec};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

/// The model id of every prediction a rule set made begins with this.
pub const MODEL_PREFIX: &str = "rules@";

#[derive(Debug, Clone, Serialize)]
pub struct StoredRule {
    pub version: i64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub author: Option<String>,
    pub created_at: String,
}

/// One version of a rule; `spec` None: the rule was deleted then.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVersion {
    pub name: String,
    pub version: i64,
    pub spec: Option<RuleSpec>,
    pub author: Option<String>,
    pub created_at: String,
}

fn parse_spec(name: &str, json: Option<String>) -> Result<Option<RuleSpec>> {
    json.map(|j| {
        serde_json::from_str(&j)
            .map_err(|e| StoreError::Corrupt(format!("rule {name:?} does not parse: {e}")))
    })
    .transpose()
}

const VERSIONS: &str = "SELECT r.name, r.version, r.spec, u.name, r.created_at
    FROM rules r LEFT JOIN users u ON u.id = r.user_id";

/// (name, version, spec JSON, author, created_at) as `VERSIONS` selects them.
type VersionRow = (String, i64, Option<String>, Option<String>, i64);

fn version_row(r: &rusqlite::Row) -> rusqlite::Result<VersionRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// The project's rules as they are now (each rule's latest version, deleted ones left out), by
/// name.
pub fn current(conn: &Connection, project_id: i64) -> Result<Vec<StoredRule>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{VERSIONS} WHERE r.project_id = ?1 AND r.spec IS NOT NULL
           AND r.version = (SELECT MAX(version) FROM rules WHERE project_id = r.project_id AND name = r.name)
         ORDER BY r.name"
    ))?;
    let rows = stmt.query_map([project_id], version_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, version, spec, author, at) = row?;
        if let Some(spec) = parse_spec(&name, spec)? {
            out.push(StoredRule {
                version,
                spec,
                author,
                created_at: format_ms(at),
            });
        }
    }
    Ok(out)
}

/// Every version of one rule, oldest first.
pub fn history(conn: &Connection, project_id: i64, name: &str) -> Result<Vec<RuleVersion>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{VERSIONS} WHERE r.project_id = ?1 AND r.name = ?2 ORDER BY r.version"
    ))?;
    let rows = stmt.query_map(params![project_id, name], version_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, version, spec, author, at) = row?;
        out.push(RuleVersion {
            spec: parse_spec(&name, spec)?,
            name,
            version,
            author,
            created_at: format_ms(at),
        });
    }
    if out.is_empty() {
        return Err(StoreError::NotFound(format!("rule {name:?}")));
    }
    Ok(out)
}

/// (latest version, whether it is a deletion) of a rule, if it ever existed.
fn latest(tx: &Transaction, project_id: i64, name: &str) -> Result<Option<(i64, Option<String>)>> {
    Ok(tx
        .prepare_cached(
            "SELECT version, spec FROM rules WHERE project_id = ?1 AND name = ?2 ORDER BY version DESC LIMIT 1",
        )?
        .query_row(params![project_id, name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Whether saving adds a new rule or changes one that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    Add,
    Update,
}

/// Adds a rule, or a new version of one. Saving what is already there adds nothing.
pub fn save(
    tx: &Transaction,
    actor: &Actor,
    project_id: i64,
    rule: &Rule,
    how: Save,
) -> Result<StoredRule> {
    super::projects::get(tx, project_id)?;
    let spec = serde_json::to_string(rule.spec())
        .map_err(|e| StoreError::Corrupt(format!("rule does not serialise: {e}")))?;
    let latest = latest(tx, project_id, rule.name())?;
    let live = latest
        .as_ref()
        .and_then(|(v, s)| s.as_ref().map(|s| (*v, s)));
    let version = match (how, live) {
        (Save::Add, Some(_)) => {
            return Err(StoreError::Conflict(format!(
                "a rule named {:?} exists already; change it instead",
                rule.name()
            )))
        }
        (Save::Update, None) => {
            return Err(StoreError::NotFound(format!("rule {:?}", rule.name())))
        }
        (Save::Update, Some((v, old))) if *old == spec => {
            return current_one(tx, project_id, rule.name(), v);
        }
        _ => latest.map_or(1, |(v, _)| v + 1),
    };
    tx.execute(
        "INSERT INTO rules (project_id, name, version, spec, user_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![project_id, rule.name(), version, spec, actor.user_id, now_ms()],
    )?;
    audit::record(
        tx,
        actor,
        if version == 1 || how == Save::Add {
            "rule.add"
        } else {
            "rule.update"
        },
        &format!("project:{project_id}"),
        &serde_json::json!({"rule": rule.name(), "version": version, "spec": rule.spec()}),
    )?;
    current_one(tx, project_id, rule.name(), version)
}

fn current_one(tx: &Transaction, project_id: i64, name: &str, version: i64) -> Result<StoredRule> {
    let (_, _, spec, author, at) = tx
        .prepare_cached(&format!(
            "{VERSIONS} WHERE r.project_id = ?1 AND r.name = ?2 AND r.version = ?3"
        ))?
        .query_row(params![project_id, name, version], version_row)?;
    let spec =
        parse_spec(name, spec)?.ok_or_else(|| StoreError::NotFound(format!("rule {name:?}")))?;
    Ok(StoredRule {
        version,
        spec,
        author,
        created_at: format_ms(at),
    })
}

/// Deletes a rule: a new version without a spec, so its history stays.
pub fn delete(tx: &Transaction, actor: &Actor, project_id: i64, name: &str) -> Result<()> {
    let Some((version, Some(_))) = latest(tx, project_id, name)? else {
        return Err(StoreError::NotFound(format!("rule {name:?}")));
    };
    tx.execute(
        "INSERT INTO rules (project_id, name, version, spec, user_id, created_at) VALUES (?1, ?2, ?3, NULL, ?4, ?5)",
        params![project_id, name, version + 1, actor.user_id, now_ms()],
    )?;
    audit::record(
        tx,
        actor,
        "rule.delete",
        &format!("project:{project_id}"),
        &serde_json::json!({"rule": name, "version": version + 1}),
    )
}

/// One item as a rule set reads it.
pub struct ScanRow {
    pub item_id: i64,
    pub ext_id: String,
    pub text: String,
    /// People (or an import) answered it, or it is a gold item: no rule prediction is written.
    pub settled: bool,
    /// The latest label of the language model (not of a learner's mix, not of rules).
    pub model_label: Option<String>,
    pub embedding: Option<Vec<f32>>,
    pub lm_features: Option<Vec<f32>>,
    /// The spans of that prediction (NER), when asked.
    pub model_spans: Option<Vec<ModelSpan>>,
}

/// A span of a stored NER prediction.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ModelSpan {
    pub start: usize,
    pub end: usize,
    pub label: String,
    #[serde(default)]
    pub confidence: Option<f64>,
}

/// What a scan reads beside the text: vectors cost a blob per item, so only when asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wants<'a> {
    pub embeddings: bool,
    /// The `learning::feature_source` of the language-model features to read.
    pub lm_features: Option<&'a str>,
    /// Read one item in `sample_every` (by a hash of the id), and every answered one; 1: all.
    pub sample_every: u32,
    /// The language model's spans (NER).
    pub model_spans: bool,
}

/// The project's items after `after`, in id order.
pub fn scan(
    conn: &Connection,
    project_id: i64,
    after: i64,
    limit: usize,
    wants: &Wants,
) -> Result<Vec<ScanRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.ext_id, i.text, i.annotators > 0 OR i.gold IS NOT NULL,
           (SELECT p.label FROM predictions p WHERE p.item_id = i.id AND p.learner_id IS NULL
              AND substr(p.model_id, 1, 6) != 'rules@' ORDER BY p.id DESC LIMIT 1),
           CASE WHEN ?4 THEN (SELECT e.vector FROM embeddings e WHERE e.item_id = i.id) END,
           CASE WHEN ?5 IS NOT NULL THEN
             (SELECT f.vector FROM lm_features f WHERE f.item_id = i.id AND f.source = ?5) END,
           CASE WHEN ?7 THEN (SELECT json_extract(p.output, '$.entities') FROM predictions p
              WHERE p.item_id = i.id AND p.learner_id IS NULL
              AND substr(p.model_id, 1, 6) != 'rules@' ORDER BY p.id DESC LIMIT 1) END
         FROM items i INDEXED BY items_project
         WHERE i.project_id = ?1 AND i.id > ?2
           AND (?6 <= 1 OR (i.id * 2654435761) % ?6 = 0 OR i.annotators > 0)
         ORDER BY i.id LIMIT ?3",
    )?;
    let blob = |r: &rusqlite::Row, i| -> rusqlite::Result<Option<Vec<f32>>> {
        Ok(r.get_ref(i)?
            .as_blob_or_null()?
            .map(super::learning::from_blob))
    };
    let rows = stmt.query_map(
        params![
            project_id,
            after,
            limit as i64,
            wants.embeddings,
            wants.lm_features,
            wants.sample_every.max(1),
            wants.model_spans
        ],
        |r| {
            Ok(ScanRow {
                item_id: r.get(0)?,
                ext_id: r.get(1)?,
                text: r.get(2)?,
                settled: r.get(3)?,
                model_label: r.get(4)?,
                embedding: blob(r, 5)?,
                lm_features: blob(r, 6)?,
                model_spans: r
                    .get::<_, Option<String>>(7)?
                    .and_then(|j| serde_json::from_str(&j).ok()),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The stored embeddings of the project's items named by id (ext_id), for similarity rules.
pub fn embeddings_by_ext_id(
    conn: &Connection,
    project_id: i64,
    ext_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<f32>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.ext_id, e.vector FROM items i JOIN embeddings e ON e.item_id = i.id
         WHERE i.project_id = ?1 AND i.ext_id IN (SELECT value FROM json_each(?2))",
    )?;
    let ids = serde_json::to_string(ext_ids).unwrap_or_else(|_| "[]".into());
    let rows = stmt.query_map(params![project_id, ids], |r| {
        Ok((
            r.get(0)?,
            super::learning::from_blob(r.get_ref(1)?.as_blob()?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Queues applying the project's rules with `params` (the combining method, as JSON), unless
/// an apply is queued or running already.
pub fn queue_apply(
    tx: &Transaction,
    actor: &Actor,
    project_id: i64,
    params: &serde_json::Value,
) -> Result<Job> {
    super::projects::get(tx, project_id)?;
    let active: Option<i64> = tx
        .query_row(
            "SELECT id FROM jobs WHERE project_id = ?1 AND kind = 'rules' AND status IN ('queued', 'running')",
            [project_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = active {
        return Err(StoreError::Conflict(format!(
            "the rules of this project are being applied already (job {id})"
        )));
    }
    tx.execute(
        "INSERT INTO jobs (project_id, kind, status, user_id, created_at, params) VALUES (?1, 'rules', 'queued', ?2, ?3, ?4)",
        params![project_id, actor.user_id, now_ms(), params.to_string()],
    )?;
    let id = tx.last_insert_rowid();
    audit::record(
        tx,
        actor,
        "job.create",
        &format!("project:{project_id}"),
        &serde_json::json!({"job_id": id, "kind": "rules", "params": params}),
    )?;
    jobs::get(tx, id)
}

/// After a retrain: the learner's new predictions are now the latest of every item they
/// cover, so a project whose rules were applied gets an apply again (same method as the last
/// one), which puts the rules' combination, with the new learner's votes, back on top. Nothing
/// when the rules were never applied, are all deleted, or an apply is queued or running.
pub fn reapply_after_retrain(tx: &Transaction, project_id: i64) -> Result<Option<Job>> {
    let last: Option<Option<String>> = tx
        .query_row(
            "SELECT params FROM jobs WHERE project_id = ?1 AND kind = 'rules' AND status = 'done'
             ORDER BY id DESC LIMIT 1",
            [project_id],
            |r| r.get(0),
        )
        .optional()?;
    let Some(params) = last else {
        return Ok(None);
    };
    if current(tx, project_id)?.is_empty() {
        return Ok(None);
    }
    let method = params
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p.get("method").cloned())
        .unwrap_or(serde_json::Value::Null);
    let params = match method {
        serde_json::Value::Null => serde_json::json!({}),
        m => serde_json::json!({ "method": m }),
    };
    match queue_apply(tx, &Actor::system(), project_id, &params) {
        Ok(job) => Ok(Some(job)),
        Err(StoreError::Conflict(_)) => Ok(None), // one is on its way already
        Err(e) => Err(e),
    }
}

/// A job's params (rules jobs), as JSON; `{}` when it has none.
pub fn job_params(conn: &Connection, job_id: i64) -> Result<serde_json::Value> {
    let text: Option<String> = conn
        .prepare_cached("SELECT params FROM jobs WHERE id = ?1")?
        .query_row([job_id], |r| r.get(0))?;
    Ok(text
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({})))
}

/// Replaces a job's params (a rules job records what it found there when it finishes).
pub fn set_job_params(tx: &Transaction, job_id: i64, params: &serde_json::Value) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET params = ?2 WHERE id = ?1",
        rusqlite::params![job_id, params.to_string()],
    )?;
    Ok(())
}

/// The params of the project's last rules job that finished, and its id.
pub fn last_applied(
    conn: &Connection,
    project_id: i64,
) -> Result<Option<(i64, serde_json::Value)>> {
    let row: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, params FROM jobs WHERE project_id = ?1 AND kind = 'rules' AND status = 'done'
             ORDER BY id DESC LIMIT 1",
            [project_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map(|(id, p)| {
        (
            id,
            p.and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_else(|| serde_json::json!({})),
        )
    }))
}
