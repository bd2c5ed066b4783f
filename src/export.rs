//! Exports that stream from SQLite row by row into a writer: nothing holds a whole project.
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
    let mut io_error = None;
    store
        .read(|c| {
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
                        Some(_) if p.agreement < filter.min_agreement => {
                            Some(LeftOut::LowAgreement)
                        }
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
                if let Err(e) = preference::write(format, &ex, out) {
                    io_error = Some(e);
                    // Stop reading: the reader has gone away.
                    return Err(StoreError::Conflict("export stopped".into()));
                }
                summary.exported += 1;
                Ok(())
            })
        })
        .map_err(|e| match io_error.take() {
            Some(io) => ExportError::Io(io),
            None => ExportError::Store(e),
        })?;
    out.flush()?;
    Ok(summary)
}
