//! Labeling functions over HTTP: the rules table, saving and deleting rules (admins), the live
//! preview of a rule being typed, samples of a rule's hits and disagreements, and applying the
//! rule set.
use crate::jobs::rules::{Method, Sample};
use crate::rules::RuleSpec;
use crate::store::projects;
use crate::store::rules::Save;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ErrorCode};
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

async fn visible(caller: &Caller, state: &AppState, id: i64) -> Result<(), ApiError> {
    let user = caller.user.clone();
    state
        .read(move |c| projects::visible(c, &user, id).map(drop))
        .await?;
    Ok(())
}

/// `GET /projects/{id}/rules`: every current rule with its figures over the project.
pub async fn table(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    visible(&caller, &state, id).await?;
    Ok(HttpResponse::Ok().json(state.rules_table(id).await?))
}

/// `POST /projects/{id}/rules`: adds a rule (409 if the name is taken).
pub async fn add(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let rule = state
        .save_rule(
            caller.actor(),
            id.into_inner(),
            body.into_inner(),
            Save::Add,
        )
        .await?;
    Ok(HttpResponse::Created().json(rule))
}

/// `PUT /projects/{id}/rules/{name}`: a new version of the rule.
pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let (id, name) = path.into_inner();
    let spec = body.into_inner();
    if spec.name.trim() != name {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            "name: a rule keeps its name; add a new rule for another one",
        ));
    }
    let rule = state
        .save_rule(caller.actor(), id, spec, Save::Update)
        .await?;
    Ok(HttpResponse::Ok().json(rule))
}

/// `DELETE /projects/{id}/rules/{name}`: the rule stops voting; its versions stay.
pub async fn delete(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let (id, name) = path.into_inner();
    state.delete_rule(caller.actor(), id, name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /projects/{id}/rules/{name}/history`: every version, oldest first.
pub async fn history(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    visible(&caller, &state, id).await?;
    let versions = state.rule_history(id, name).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": versions })))
}

#[derive(Debug, Deserialize)]
pub struct ExamplesQuery {
    pub sample: Option<Sample>,
    pub limit: Option<usize>,
}

/// `GET /projects/{id}/rules/{name}/examples?sample=hits|disagreements`: items the rule fired
/// on (or those where people, the model or another rule say otherwise), in item order.
pub async fn examples(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(i64, String)>,
    query: web::Query<ExamplesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    visible(&caller, &state, id).await?;
    let sample = query.sample.unwrap_or(Sample::Hits);
    let limit = query.limit.unwrap_or(20).clamp(1, 200);
    let items = state.rule_examples(id, name, sample, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// `POST /projects/{id}/rules/preview`: a rule as it is being typed, measured on (a sample
/// of) the project beside the other rules, with a few of its matches.
pub async fn preview(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<RuleSpec>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let preview = state
        .preview_rule(id.into_inner(), body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(preview))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyBody {
    #[serde(default)]
    pub method: Method,
}

/// `POST /projects/{id}/rules/apply`: queues the job that combines the rules, the model and
/// the learner into predictions (202; 409 while one is queued or running).
pub async fn apply(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ApplyBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let job = state
        .apply_rules(caller.actor(), id.into_inner(), body.method)
        .await?;
    Ok(HttpResponse::Accepted().json(job))
}
