//! Writes imported rows in transactions of `BATCH` rows. Each batch commits whole or not at all,
//! and ids make a re-import idempotent, so an import cut off mid-way is finished by running it
//! again.
use super::batches::{in_batches, ImportReport};
use super::projects;
use super::{audit, now_ms, Actor, Result, Store, StoreError};
use crate::domain::{Answer, Span};
use crate::domain::{Project, QueueOrder, TaskKind};
use crate::formats::jsonl::BadLine;
use crate::formats::{self, import::Format, import::ImportRow, instructions::InstructionRow};
use rusqlite::{params, Transaction};
use sha2::{Digest, Sha256};

/// An id for a row that has none: the hash of its text, so importing the same file twice
/// does not double it.
fn content_id(text: &str) -> String {
    let h = Sha256::digest(text.as_bytes());
    format!(
        "sha256:{}",
        h[..10]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn initial_priority(order: QueueOrder) -> f64 {
    match order {
        QueueOrder::Sequential => 0.0,
        QueueOrder::Random => rand::random::<f64>(),
        QueueOrder::Uncertainty => 2.0,
    }
}

/// Imports a file into a project in the shape its task takes: text rows (JSONL or CSV) for
/// classification and NER, pairs for preference, instruction records for instruction projects.
pub fn by_task(
    store: &Store,
    actor: &Actor,
    project: &Project,
    format: Format,
    reader: impl std::io::Read,
    progress: impl FnMut(&ImportReport),
) -> Result<ImportReport> {
    let jsonl_only =
        |what: &str| StoreError::invalid("format", format!("{what} are imported from JSONL"));
    match project.task {
        TaskKind::Preference if format == Format::Csv => Err(jsonl_only("pairs")),
        TaskKind::Preference => {
            super::pairs::import(store, actor, project.id, formats::pairs::rows(reader))
        }
        TaskKind::Instruction if format == Format::Csv => Err(jsonl_only("instruction datasets")),
        TaskKind::Instruction => {
            instructions(store, actor, project, formats::instructions::rows(reader))
        }
        TaskKind::Classification | TaskKind::Ner => import(
            store,
            actor,
            project.id,
            formats::import::rows(format, reader),
            progress,
        ),
    }
}

/// Imports instruction records: each an item whose text is the instruction and whose record
/// (instruction, context, response, category) is what reviewers judge and exports carry.
fn instructions(
    store: &Store,
    actor: &Actor,
    project: &Project,
    rows: impl Iterator<Item = Result<InstructionRow, BadLine>>,
) -> Result<ImportReport> {
    in_batches(
        store,
        rows,
        |tx, batch, report| {
            let now = now_ms();
            let mut insert = tx.prepare_cached(
                "INSERT INTO items (project_id, ext_id, text, meta, created_at, priority, prompt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (project_id, ext_id) DO NOTHING",
            )?;
            let (mut inserted, mut duplicates) = (0u64, 0u64);
            for row in batch {
                let record = serde_json::to_string(&row.record).unwrap_or_default();
                let ext_id = row.id.clone().unwrap_or_else(|| content_id(&record));
                let meta = row
                    .meta
                    .as_ref()
                    .map(|m| serde_json::Value::Object(m.clone()).to_string());
                let added = insert.execute(params![
                    project.id,
                    ext_id,
                    row.record.instruction,
                    meta,
                    now,
                    initial_priority(project.queue_order),
                    record
                ])?;
                if added == 0 {
                    duplicates += 1;
                } else {
                    inserted += 1;
                }
            }
            report.inserted += inserted;
            report.duplicates += duplicates;
            audit::record(
                tx,
                actor,
                "items.import",
                &format!("project:{}", project.id),
                &serde_json::json!({"inserted": inserted, "duplicates": duplicates, "lines": [batch[0].line, batch[batch.len() - 1].line]}),
            )
        },
        &mut |_| {},
    )
}

/// Imports every row, calling `progress` after each committed batch.
pub fn import(
    store: &Store,
    actor: &Actor,
    project_id: i64,
    rows: impl Iterator<Item = Result<ImportRow, BadLine>>,
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport> {
    let project = store.read(|c| projects::get(c, project_id))?;
    in_batches(
        store,
        rows,
        |tx, batch, report| write_batch(tx, actor, &project, batch, report),
        &mut progress,
    )
}

fn write_batch(
    tx: &Transaction,
    actor: &Actor,
    project: &Project,
    batch: &[ImportRow],
    report: &mut ImportReport,
) -> Result<()> {
    let now = now_ms();
    let mut insert = tx.prepare_cached(
        "INSERT INTO items (project_id, ext_id, text, meta, created_at, priority, gold, done) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, ext_id) DO NOTHING",
    )?;
    let mut annotate = tx.prepare_cached(
        "INSERT INTO annotations (item_id, user_id, source, value, guideline_version, created_at)
         VALUES (?1, NULL, 'import', ?2, ?3, ?4)",
    )?;
    let mut count =
        tx.prepare_cached("UPDATE items SET annotators = 1, done = (1 >= ?2) WHERE id = ?1")?;
    let (mut inserted, mut duplicates) = (0u64, 0u64);
    for row in batch {
        let answer = match answer_of(row) {
            None => None,
            Some(a) => match a.validated(project, &row.text) {
                Ok(a) => Some(a),
                Err(e) => {
                    report.error(row.line, e.to_string());
                    continue;
                }
            },
        };
        let ext_id = row.id.clone().unwrap_or_else(|| content_id(&row.text));
        let meta = row
            .meta
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        // A gold item keeps its answer apart and stays out of the labeling queue's index.
        let gold = answer.as_ref().filter(|_| row.gold).map(Answer::to_json);
        let added = insert.execute(params![
            project.id,
            ext_id,
            row.text,
            meta,
            now,
            initial_priority(project.queue_order),
            gold,
            gold.is_some()
        ])?;
        if added == 0 {
            duplicates += 1;
            continue;
        }
        inserted += 1;
        if gold.is_some() {
            report.gold += 1;
        } else if let Some(answer) = answer {
            let item_id = tx.last_insert_rowid();
            annotate.execute(params![
                item_id,
                answer.to_json(),
                project.guidelines.version,
                now
            ])?;
            count.execute(params![item_id, project.overlap])?;
            report.annotations += 1;
        }
    }
    report.inserted += inserted;
    report.duplicates += duplicates;
    let lines = (batch[0].line, batch[batch.len() - 1].line);
    audit::record(
        tx,
        actor,
        "items.import",
        &format!("project:{}", project.id),
        &serde_json::json!({"inserted": inserted, "duplicates": duplicates, "lines": [lines.0, lines.1]}),
    )
}

fn answer_of(row: &ImportRow) -> Option<Answer> {
    if let Some(label) = &row.label {
        return Some(Answer::Label {
            label: label.clone(),
        });
    }
    row.entities.as_ref().map(|es| Answer::Entities {
        entities: es
            .iter()
            .map(|e| Span {
                start: e.start,
                end: e.end,
                label: e.label.clone(),
            })
            .collect(),
    })
}
