//! Exports that stream from SQLite row by row into a writer: nothing holds a whole project.
pub mod card;

use crate::domain::Span;
use crate::domain::TaskKind;
use crate::formats::labels::{Gold, LabelFormat, LabeledItem};
use crate::formats::preference::{self, LeftOut, PreferenceExample, PreferenceFormat, Summary};
use crate::store::answered::{self, Answered};
use crate::store::pairs::{self, Choice};
use crate::store::projects;
use crate::store::{Store, StoreError};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Only answers people gave or settled: leave out import-only and auto-accepted items.
    pub human_only: bool,
    /// Share of an item's annotators who agree with its answer, 0 to 1.
    pub min_agreement: f64,
    /// Keep only these labels (entity types: other spans are dropped); empty keeps all.
    pub labels: Vec<String>,
    /// Keep only one side of the train/validation split: the side and the validation share.
    pub split: Option<(Split, f64)>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Validation,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }

    /// The side an item falls on: by the hash of its id, so it never moves when items are added
    /// or the export is filtered differently.
    pub fn of(id: &str, validation_share: f64) -> Split {
        let h = sha2::Sha256::digest(id.as_bytes());
        let mut top = [0u8; 8];
        top.copy_from_slice(&h[..8]);
        let x = u64::from_be_bytes(top) as f64 / 2f64.powi(64);
        if x < validation_share {
            Split::Validation
        } else {
            Split::Train
        }
    }
}

/// What a label export wrote and left out, and what the dataset card says about it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LabelSummary {
    pub exported: u64,
    pub import_only: u64,
    pub model_only: u64,
    pub low_agreement: u64,
    pub other_label: u64,
    pub other_split: u64,
    /// Instruction records the reviewers rejected.
    pub rejected: u64,
    /// Exported items by source (human, consensus, adjudicated, model, import).
    pub sources: BTreeMap<String, u64>,
    /// Exported labels (NER: entity types of the exported spans).
    pub labels: BTreeMap<String, u64>,
    /// Exported items each person answered.
    pub annotators: BTreeMap<String, u64>,
    pub models: BTreeSet<String>,
    pub prompt_versions: BTreeSet<String>,
    /// Mean agreement over the exported items that have one.
    pub mean_agreement: Option<f64>,
    #[serde(skip)]
    agreement_sum: (f64, u64),
}

impl LabelSummary {
    /// Adds another export's figures (the two sides of a split) to these.
    pub fn merge(&mut self, other: LabelSummary) {
        self.exported += other.exported;
        self.import_only += other.import_only;
        self.model_only += other.model_only;
        self.low_agreement += other.low_agreement;
        self.other_label += other.other_label;
        self.rejected += other.rejected;
        for (k, v) in other.sources {
            *self.sources.entry(k).or_default() += v;
        }
        for (k, v) in other.labels {
            *self.labels.entry(k).or_default() += v;
        }
        for (k, v) in other.annotators {
            *self.annotators.entry(k).or_default() += v;
        }
        self.models.extend(other.models);
        self.prompt_versions.extend(other.prompt_versions);
        self.agreement_sum.0 += other.agreement_sum.0;
        self.agreement_sum.1 += other.agreement_sum.1;
        self.mean_agreement =
            (self.agreement_sum.1 > 0).then(|| self.agreement_sum.0 / self.agreement_sum.1 as f64);
    }

    fn count(&mut self, item: &LabeledItem) {
        self.exported += 1;
        *self.sources.entry(item.source.to_string()).or_default() += 1;
        match &item.gold {
            Gold::Label(l) => *self.labels.entry(l.clone()).or_default() += 1,
            Gold::Instruction { edited, .. } => {
                let d = if *edited { "edit" } else { "accept" };
                *self.labels.entry(d.to_string()).or_default() += 1
            }
            Gold::Entities(spans) => {
                for s in spans {
                    *self.labels.entry(s.label.clone()).or_default() += 1;
                }
            }
        }
        for a in &item.annotators {
            *self.annotators.entry(a.clone()).or_default() += 1;
        }
        self.models.extend(item.model.clone());
        self.prompt_versions.extend(item.prompt_version.clone());
        if let Some(a) = item.agreement {
            self.agreement_sum.0 += a;
            self.agreement_sum.1 += 1;
            self.mean_agreement = Some(self.agreement_sum.0 / self.agreement_sum.1 as f64);
        }
    }
}

impl std::fmt::Display for LabelSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exported {} items; left out {} imported-only, {} auto-accepted, {} below the agreement, {} with other labels, {} in the other split, {} rejected",
            self.exported, self.import_only, self.model_only, self.low_agreement, self.other_label, self.other_split, self.rejected
        )
    }
}

/// The task instruction of the instruction-tuning shapes.
fn instruction(project: &crate::domain::Project) -> String {
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

/// An item's settled answer and where it came from.
struct Settled {
    value: serde_json::Value,
    source: &'static str,
    agreement: Option<f64>,
    annotators: Vec<String>,
}

/// A reviewer's adjudication wins; then the annotators' latest answers (an import counts as one
/// annotator): the most common value, ties to the latest; then an auto-accepted prediction
/// (source `rules` when the project's rules made it).
fn settle(rows: &[Answered]) -> Option<Settled> {
    let mut latest: Vec<(&Option<String>, &serde_json::Value)> = Vec::new();
    for r in rows.iter().rev() {
        if let Some(v) = &r.value {
            if !latest.iter().any(|l| *l.0 == r.who) {
                latest.push((&r.who, v));
            }
        }
    }
    let people: Vec<String> = latest.iter().rev().filter_map(|l| l.0.clone()).collect();
    let share = |v: &serde_json::Value| {
        (!latest.is_empty())
            .then(|| latest.iter().filter(|l| l.1 == v).count() as f64 / latest.len() as f64)
    };
    let resolution = rows.first().and_then(|r| r.resolution.as_ref());
    if let Some(("adjudicated", v)) = resolution.map(|(s, v)| (s.as_str(), v)) {
        return Some(Settled {
            agreement: share(v),
            value: v.clone(),
            source: "adjudicated",
            annotators: people,
        });
    }
    if let Some(best) = latest
        .iter()
        .rev()
        .max_by_key(|a| latest.iter().filter(|b| b.1 == a.1).count())
    {
        let source = match people.len() {
            0 => None,
            1 => Some("human"),
            _ => Some("consensus"),
        };
        // An auto-accepted prediction outranks an import but not a person.
        if source.is_some() || resolution.is_none() {
            return Some(Settled {
                agreement: share(best.1),
                value: best.1.clone(),
                source: source.unwrap_or("import"),
                annotators: people,
            });
        }
    }
    let by_rules = rows.first().is_some_and(|r| r.resolved_by_rules);
    resolution.map(|(_, v)| Settled {
        value: v.clone(),
        source: if by_rules { "rules" } else { "model" },
        agreement: None,
        annotators: Vec::new(),
    })
}

/// Writes every answered, adjudicated or auto-accepted item (gold items are the project's test
/// questions and stay out) of a classification or NER project in `format`, streaming from
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
        answered::for_each_item(c, project_id, |group| {
            let settled = settle(group);
            let Some(first) = group.first() else {
                return Ok(());
            };
            let Some(settled) = settled else {
                return Ok(());
            };
            let gold = if project.task == TaskKind::Instruction {
                reviewed(&settled.value, first.record.as_deref(), first.item)?
            } else {
                Some(to_gold(&settled.value, first.item, &filter.labels)?)
            };
            let Some(gold) = gold else {
                summary.rejected += 1;
                return Ok(());
            };
            let left_out = if filter.human_only && settled.source == "import" {
                Some(&mut summary.import_only)
            } else if filter.human_only && matches!(settled.source, "model" | "rules") {
                Some(&mut summary.model_only)
            } else if filter.min_agreement > 0.0
                && settled.agreement.unwrap_or(0.0) < filter.min_agreement
            {
                Some(&mut summary.low_agreement)
            } else if matches!(&gold, Gold::Label(l) if !filter.labels.is_empty() && !filter.labels.contains(l))
            {
                Some(&mut summary.other_label)
            } else if filter
                .split
                .is_some_and(|(side, share)| Split::of(&first.ext_id, share) != side)
            {
                Some(&mut summary.other_split)
            } else {
                None
            };
            if let Some(count) = left_out {
                *count += 1;
                return Ok(());
            }
            let item = LabeledItem {
                id: first.ext_id.clone(),
                text: first.text.clone(),
                gold,
                source: settled.source,
                annotators: settled.annotators,
                agreement: settled.agreement,
                model: first.model.clone(),
                prompt_version: first.prompt_version.clone(),
            };
            wrote(
                crate::formats::labels::write(format, &item, &instruction, out),
                io_error,
            )?;
            summary.count(&item);
            Ok(())
        })
    })?;
    out.flush()?;
    Ok(summary)
}

/// A reviewed instruction record as exported: None when it was rejected.
fn reviewed(
    value: &serde_json::Value,
    record: Option<&str>,
    item: i64,
) -> Result<Option<Gold>, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("item {item}: {what}"));
    let mut record: crate::formats::instructions::Instruction =
        serde_json::from_str(record.ok_or_else(|| corrupt("no instruction record".into()))?)
            .map_err(|e| corrupt(e.to_string()))?;
    let answer: crate::domain::Answer =
        serde_json::from_value(value.clone()).map_err(|e| corrupt(e.to_string()))?;
    use crate::domain::{Answer, Decision};
    Ok(match answer {
        Answer::Review {
            decision: Decision::Reject,
            ..
        } => None,
        Answer::Review {
            decision: Decision::Edit,
            response: Some(r),
        } => {
            record.response = r;
            Some(Gold::Instruction {
                record,
                edited: true,
            })
        }
        Answer::Review { .. } => Some(Gold::Instruction {
            record,
            edited: false,
        }),
        other => return Err(corrupt(format!("{other:?} is not a review"))),
    })
}

/// An answer as the export's label or spans, keeping only the `keep` entity types if any.
fn to_gold(value: &serde_json::Value, item: i64, keep: &[String]) -> Result<Gold, StoreError> {
    match (
        value.get("label").and_then(|l| l.as_str()),
        value.get("entities"),
    ) {
        (Some(l), _) => Ok(Gold::Label(l.to_string())),
        (None, Some(e)) => Ok(Gold::Entities(
            serde_json::from_value::<Vec<Span>>(e.clone())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .into_iter()
                .filter(|s| keep.is_empty() || keep.contains(&s.label))
                .collect(),
        )),
        _ => Err(StoreError::Corrupt(format!(
            "answer of item {item} is {value}"
        ))),
    }
}

/// Whether a project of this task can be exported in a label format.
pub fn check_label_format(task: TaskKind, format: LabelFormat) -> Result<(), StoreError> {
    match task {
        TaskKind::Preference => Err(StoreError::invalid(
            "format",
            "a preference project exports dpo, dpo-chat, openai-dpo or sft",
        )),
        TaskKind::Classification | TaskKind::Instruction if format.needs_spans() => {
            Err(StoreError::invalid(
                "format",
                format!("{} holds entities: it needs an NER project", format.name()),
            ))
        }
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
