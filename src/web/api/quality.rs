//! Quality endpoints: the project report, the adjudication queue and its decisions, and the
//! auto-accept switch.
use super::queue::NextBody;
use crate::domain::{Decision, Span};
use crate::domain::{Project, TaskKind};
use crate::quality::report::{self, Report};
use crate::store::projects::{self, Counts};
use crate::store::{quality, review, StoreError};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

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
pub fn stats_of(
    c: &rusqlite::Connection,
    user: &crate::store::users::User,
    id: i64,
) -> Result<Stats, StoreError> {
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

pub async fn stats(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let stats = state.read(move |c| stats_of(c, &caller.user, id)).await?;
    Ok(HttpResponse::Ok().json(stats))
}

pub async fn review_next(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: Option<web::Json<NextBody>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let exclude = NextBody::exclude(body)?;
    let item = state
        .write(move |tx| review::next(tx, &caller.user, id, &exclude))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "item": item })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    label: Option<String>,
    entities: Option<Vec<Span>>,
    decision: Option<Decision>,
    response: Option<String>,
    note: Option<String>,
}

pub async fn resolve(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ResolutionBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let actor = caller.actor();
    let b = body.into_inner();
    let answer = super::items::answer_of(b.label, b.entities, b.decision, b.response)?;
    let resolution = state
        .write(move |tx| review::resolve(tx, &actor, &caller.user, id, answer, b.note))
        .await?;
    Ok(HttpResponse::Created().json(resolution))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoAcceptBody {
    enabled: bool,
    /// Defaults to the lowest confidence that keeps the project's precision target.
    threshold: Option<f64>,
}

/// Turns auto-accept on (at the computed threshold unless one is given) or off. Admins only.
pub async fn auto_accept(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<AutoAcceptBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let b = body.into_inner();
    let actor = caller.actor();
    let user = caller.user.clone();
    let threshold = match (b.enabled, b.threshold) {
        (false, _) => None,
        (true, Some(t)) => Some(t),
        (true, None) => Some(computed_threshold(&state, user, id).await?),
    };
    let accepted = state
        .write(move |tx| crate::store::auto_accept::set(tx, &actor, id, threshold))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"threshold": threshold, "accepted": accepted})))
}

async fn computed_threshold(
    state: &AppState,
    user: crate::store::users::User,
    id: i64,
) -> Result<f64, ApiError> {
    let stats = state.read(move |c| stats_of(c, &user, id)).await?;
    let model = stats.report.model;
    let checked = model.as_ref().map_or(0, |m| m.items);
    model.and_then(|m| m.threshold.threshold).ok_or_else(|| {
        StoreError::Conflict(format!(
            "on {checked} human-checked items no confidence threshold keeps the model's precision at {} (with at least {} items above it)",
            stats.project.quality.precision_target,
            report::MIN_THRESHOLD_SUPPORT
        ))
        .into()
    })
}
