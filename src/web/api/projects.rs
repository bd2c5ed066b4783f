use crate::domain::{NewProject, ProjectUpdate};
use crate::store::projects;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let projects = state
        .read(move |c| projects::list_for(c, &caller.user))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"items": projects, "next": null})))
}

pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewProject>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let actor = caller.actor();
    let project = state
        .write(move |tx| projects::create(tx, &actor, &body))
        .await?;
    Ok(HttpResponse::Created().json(project))
}

pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (project, counts, predicted) = state
        .read(move |c| {
            let p = projects::visible(c, &caller.user, id)?;
            Ok((
                p,
                projects::counts(c, id)?,
                crate::store::predictions::count_for_project(c, id)?,
            ))
        })
        .await?;
    let mut v = serde_json::to_value(project).map_err(|e| ApiError::internal(&e))?;
    v["counts"] = json!(counts);
    v["counts"]["predicted"] = json!(predicted);
    Ok(HttpResponse::Ok().json(v))
}

pub async fn update(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<ProjectUpdate>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let actor = caller.actor();
    let id = id.into_inner();
    let project = state
        .write(move |tx| projects::update(tx, &actor, id, &body))
        .await?;
    Ok(HttpResponse::Ok().json(project))
}

pub async fn members(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let members = state
        .read(move |c| {
            projects::visible(c, &caller.user, id)?;
            projects::members(c, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"items": members, "next": null})))
}

async fn set_member(
    caller: Caller,
    state: web::Data<AppState>,
    ids: (i64, i64),
    member: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let actor = caller.actor();
    state
        .write(move |tx| projects::set_member(tx, &actor, ids.0, ids.1, member))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn add_member(
    caller: Caller,
    state: web::Data<AppState>,
    ids: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    set_member(caller, state, ids.into_inner(), true).await
}

pub async fn remove_member(
    caller: Caller,
    state: web::Data<AppState>,
    ids: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    set_member(caller, state, ids.into_inner(), false).await
}
