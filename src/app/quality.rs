//! A project's figures as the caller may see them, and the auto-accept switch that acts on
//! them; the API and the dashboard share both.
use super::{App, AppError};
use crate::domain::{Project, TaskKind};
use crate::quality::report::{self, Report};
use crate::store::projects::{self, Counts};
use crate::store::users::User;
use crate::store::{quality, Actor, StoreError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub project: Project,
    pub counts: Counts,
    /// Unanswered items the current threshold would accept (0 when there is none).
    pub would_accept: i64,
    #[serde(flatten)]
    pub report: Report,
}

/// The report of a classification or NER project, as the caller may see it.
pub fn stats_of(c: &rusqlite::Connection, user: &User, id: i64) -> Result<Stats, StoreError> {
    let project = projects::visible(c, user, id)?;
    if project.task == TaskKind::Preference {
        return Err(StoreError::invalid(
            "project",
            "a preference project's figures are on its leaderboard",
        ));
    }
    let items = quality::answered_items(c, id)?;
    let activity = quality::activity(c, id)?;
    let report = report::build(&project, &items, &activity);
    let would_accept = match report.model.as_ref().and_then(|m| m.threshold.threshold) {
        Some(t) => quality::unlabeled_above(c, id, t)?,
        None => 0,
    };
    Ok(Stats {
        counts: projects::counts(c, id)?,
        project,
        would_accept,
        report,
    })
}

/// How to set auto-accept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AutoAccept {
    Off,
    /// At the lowest confidence that keeps the project's precision target.
    Computed,
    At(f64),
}

impl App {
    /// Sets the project's auto-accept; returns the threshold in force and how many
    /// predictions it accepted. `Computed` is a conflict while no threshold keeps the target.
    pub async fn set_auto_accept(
        &self,
        actor: Actor,
        user: User,
        project_id: i64,
        how: AutoAccept,
    ) -> Result<(Option<f64>, u64), AppError> {
        let threshold = match how {
            AutoAccept::Off => None,
            AutoAccept::At(t) => Some(t),
            AutoAccept::Computed => Some(
                self.read(move |c| computed_threshold(c, &user, project_id))
                    .await?,
            ),
        };
        let accepted = self
            .write(move |tx| crate::store::auto_accept::set(tx, &actor, project_id, threshold))
            .await?;
        Ok((threshold, accepted))
    }
}

fn computed_threshold(c: &rusqlite::Connection, user: &User, id: i64) -> Result<f64, StoreError> {
    let stats = stats_of(c, user, id)?;
    let model = stats.report.model;
    let checked = model.as_ref().map_or(0, |m| m.items);
    model.and_then(|m| m.threshold.threshold).ok_or_else(|| {
        StoreError::Conflict(format!(
            "on {checked} human-checked items no confidence threshold keeps the model's precision at {} (with at least {} items above it)",
            stats.project.quality.precision_target,
            report::MIN_THRESHOLD_SUPPORT
        ))
    })
}
