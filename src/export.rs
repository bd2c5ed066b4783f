//! Exports that stream from SQLite row by row into a writer: nothing holds a whole project.
use crate::formats::labels::{Gold, LabelFormat, LabeledItem, Span};
use crate::formats::preference::{self, LeftOut, PreferenceExample, PreferenceFormat, Summary};
use crate::store::pairs::{self, Choice};
use crate::store::projects::{self, TaskKind};
use crate::store::{Store, StoreError};
use std::io::Write;

/// Which voted pairs make it into a preference export.
#[derive(Debug, Clone, Copy)]
pub struct PreferenceFilter {
    pub min_votes: u32,
    /// Share of votes for the majority outcome, 0 to 1.
    pub min_agreement: f64,
}

impl Default for PreferenceFilter {
    fn default() -> Self {
        PreferenceFilter {
            min_votes: 1,
            min_agreement: 0.0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes every voted pair that passes `filter` in `format`; ties, both-bad outcomes and
/// filtered pairs are counted in the summary instead.
pub fn preferences(
    store: &Store,
    project_id: i64,
    format: PreferenceFormat,
    filter: PreferenceFilter,
    out: &mut impl Write,
) -> Result<Summary, ExportError> {
    let mut summary = Summary::default();
    read_streaming(store, |c, io_error| {
        if projects::get(c, project_id)?.task != TaskKind::Preference {
            return Err(StoreError::invalid(
                "project",
                "preference exports come from preference projects",
            ));
        }
        pairs::for_each_voted(c, project_id, |p| {
            let left_out = if p.tally.votes() < filter.min_votes {
                Some(LeftOut::TooFewVotes)
            } else {
                match p.majority {
                    None | Some(Choice::Tie) => Some(LeftOut::Tie),
                    Some(Choice::BothBad) => Some(LeftOut::BothBad),
                    Some(_) if p.agreement < filter.min_agreement => Some(LeftOut::LowAgreement),
                    Some(_) => None,
                }
            };
            if let Some(why) = left_out {
                summary.leave_out(why);
                return Ok(());
            }
            let a_won = p.majority == Some(Choice::A);
            let (chosen, rejected, margin) = if a_won {
                (p.a.text, p.b.text, p.tally.strength_a)
            } else {
                (p.b.text, p.a.text, p.tally.strength_b)
            };
            let ex = PreferenceExample {
                id: format!("{}:{}", p.ext_id, p.id),
                prompt: p.prompt,
                chosen,
                rejected,
                margin,
                votes: p.tally.votes(),
                agreement: p.agreement,
            };
            wrote(preference::write(format, &ex, out), io_error)?;
            summary.exported += 1;
            Ok(())
        })
    })?;
    out.flush()?;
    Ok(summary)
}

/// Which labeled items make it into a label export.
#[derive(Debug, Clone, Default)]
pub struct LabelFilter {
    /// Leave out items whose only answers were imported.
    pub human_only: bool,
    /// Share of an item's annotators who agree with its answer, 0 to 1.
    pub min_agreement: f64,
    /// Keep only these labels (entity types: other spans are dropped); empty keeps all.
    pub labels: Vec<String>,
}

/// What a label export wrote and left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LabelSummary {
    pub exported: u64,
    pub import_only: u64,
    pub low_agreement: u64,
    pub other_label: u64,
}

impl std::fmt::Display for LabelSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exported {} items; left out {} imported-only, {} below the agreement, {} with other labels",
            self.exported, self.import_only, self.low_agreement, self.other_label
        )
    }
}

/// One annotation row of the export scan.
struct Answered {
    item: i64,
    ext_id: String,
    text: String,
    who: Option<String>,
    value: serde_json::Value,
    model: Option<String>,
    prompt_version: Option<String>,
}

/// The task instruction of the instruction-tuning shapes.
fn instruction(project: &projects::Project) -> String {
    const LISTED: usize = 50;
    let labels = if project.labels.len() <= LISTED {
        project.labels.join(", ")
    } else {
        format!("{}, …", project.labels[..LISTED].join(", "))
    };
    match project.task {
        TaskKind::Ner => format!("List the entities in the text with their types ({labels})."),
        _ => format!("Classify the text. Answer with one label: {labels}."),
    }
}

/// The item's answer from each annotator's latest row (an import counts as one annotator): the
/// most common value, ties to the latest.
fn agreed(rows: &[Answered]) -> Option<(serde_json::Value, f64, Vec<String>, bool)> {
    let mut latest: Vec<&Answered> = Vec::new();
    for r in rows.iter().rev() {
        if !latest.iter().any(|l| l.who == r.who) {
            latest.push(r);
        }
    }
    let best = latest
        .iter()
        .rev()
        .max_by_key(|a| latest.iter().filter(|b| b.value == a.value).count())?;
    let agree = latest.iter().filter(|b| b.value == best.value).count();
    let people: Vec<String> = latest.iter().rev().filter_map(|r| r.who.clone()).collect();
    let import_only = people.is_empty();
    Some((
        best.value.clone(),
        agree as f64 / latest.len() as f64,
        people,
        import_only,
    ))
}

/// Writes every answered item of a classification or NER project in `format`, streaming from
/// SQLite: one item's annotations in memory at a time.
pub fn labels(
    store: &Store,
    project_id: i64,
    format: LabelFormat,
    filter: &LabelFilter,
    out: &mut impl Write,
) -> Result<LabelSummary, ExportError> {
    let mut summary = LabelSummary::default();
    read_streaming(store, |c, io_error| {
        let project = projects::get(c, project_id)?;
        check_label_format(project.task, format)?;
        let instruction = instruction(&project);
        let mut stmt = c.prepare(
                "SELECT i.id, i.ext_id, i.text, u.name, a.value,
                    (SELECT p.model_id FROM predictions p WHERE p.item_id = i.id ORDER BY p.id DESC LIMIT 1),
                    (SELECT p.prompt_version FROM predictions p WHERE p.item_id = i.id ORDER BY p.id DESC LIMIT 1)
                 FROM items i JOIN annotations a ON a.item_id = i.id LEFT JOIN users u ON u.id = a.user_id
                 WHERE i.project_id = ?1 ORDER BY i.id, a.id",
            )?;
        let mut rows = stmt.query([project_id])?;
        let mut group: Vec<Answered> = Vec::new();
        let mut emit = |group: &mut Vec<Answered>,
                        summary: &mut LabelSummary|
         -> Result<(), StoreError> {
            let Some((value, agreement, annotators, import_only)) = agreed(group) else {
                return Ok(());
            };
            let first = &group[0];
            let gold = match (
                value.get("label").and_then(|l| l.as_str()),
                value.get("entities"),
            ) {
                (Some(l), _) => Gold::Label(l.to_string()),
                (None, Some(e)) => Gold::Entities(
                    serde_json::from_value::<Vec<crate::store::annotations::Span>>(e.clone())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                        .into_iter()
                        .filter(|s| filter.labels.is_empty() || filter.labels.contains(&s.label))
                        .map(|s| Span {
                            start: s.start,
                            end: s.end,
                            label: s.label,
                        })
                        .collect(),
                ),
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "answer of item {} is {value}",
                        first.item
                    )))
                }
            };
            let left_out = if filter.human_only && import_only {
                Some(&mut summary.import_only)
            } else if agreement < filter.min_agreement {
                Some(&mut summary.low_agreement)
            } else if matches!(&gold, Gold::Label(l) if !filter.labels.is_empty() && !filter.labels.contains(l))
            {
                Some(&mut summary.other_label)
            } else {
                None
            };
            if let Some(count) = left_out {
                *count += 1;
                group.clear();
                return Ok(());
            }
            let item = LabeledItem {
                id: first.ext_id.clone(),
                text: first.text.clone(),
                gold,
                source: if import_only {
                    "import"
                } else if annotators.len() > 1 {
                    "consensus"
                } else {
                    "human"
                },
                annotators,
                agreement,
                model: first.model.clone(),
                prompt_version: first.prompt_version.clone(),
            };
            group.clear();
            wrote(
                crate::formats::labels::write(format, &item, &instruction, out),
                io_error,
            )?;
            summary.exported += 1;
            Ok(())
        };
        while let Some(r) = rows.next()? {
            let row = Answered {
                item: r.get(0)?,
                ext_id: r.get(1)?,
                text: r.get(2)?,
                who: r.get(3)?,
                value: serde_json::from_str(&r.get::<_, String>(4)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                model: r.get(5)?,
                prompt_version: r.get(6)?,
            };
            if group.first().is_some_and(|g| g.item != row.item) {
                emit(&mut group, &mut summary)?;
            }
            group.push(row);
        }
        emit(&mut group, &mut summary)
    })?;
    out.flush()?;
    Ok(summary)
}

/// Whether a project of this task can be exported in a label format.
pub fn check_label_format(task: TaskKind, format: LabelFormat) -> Result<(), StoreError> {
    match task {
        TaskKind::Preference => Err(StoreError::invalid(
            "format",
            "a preference project exports dpo, dpo-chat, openai-dpo or sft",
        )),
        TaskKind::Classification if format.needs_spans() => Err(StoreError::invalid(
            "format",
            format!("{} holds entities: it needs an NER project", format.name()),
        )),
        _ => Ok(()),
    }
}

/// Runs an export's read. A write error met inside it (kept by `wrote`) stops the read and is
/// what the export reports, rather than the database error that unwound the read.
fn read_streaming<T>(
    store: &Store,
    read: impl FnOnce(&rusqlite::Connection, &mut Option<std::io::Error>) -> Result<T, StoreError>,
) -> Result<T, ExportError> {
    let mut io_error = None;
    store
        .read(|c| read(c, &mut io_error))
        .map_err(|e| match io_error.take() {
            Some(io) => ExportError::Io(io),
            None => ExportError::Store(e),
        })
}

/// Keeps a failed write for `read_streaming` and stops the read.
fn wrote(
    result: std::io::Result<()>,
    io_error: &mut Option<std::io::Error>,
) -> Result<(), StoreError> {
    result.map_err(|e| {
        *io_error = Some(e);
        StoreError::Conflict("the export's writer failed".into())
    })
}
