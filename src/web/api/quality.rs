//! Quality endpoints: the project report, the adjudication queue and its decisions, and the
//! auto-accept switch.
use super::queue::NextBody;
use crate::app::quality::{self, AutoAccept};
use crate::domain::{Decision, Span};
use crate::store::review;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub async fn stats(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let stats = state
        .read(move |c| quality::stats_of(c, &caller.user, id))
        .await?;
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
    let threshold = match (b.enabled, b.threshold) {
        (false, _) => AutoAccept::Off,
        (true, Some(t)) => AutoAccept::At(t),
        (true, None) => AutoAccept::Computed,
    };
    let (threshold, accepted) = state
        .set_auto_accept(caller.actor(), caller.user.clone(), id, threshold)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"threshold": threshold, "accepted": accepted})))
}
