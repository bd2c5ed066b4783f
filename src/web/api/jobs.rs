use crate::store::jobs;
use crate::store::projects;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let job = state.start_job(caller.actor(), id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(job))
}

pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let list = state
        .read(move |c| {
            projects::visible(c, &caller.user, id)?;
            jobs::for_project(c, id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"items": list, "next": null})))
}

pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let job = state
        .read(move |c| {
            let job = jobs::get(c, id)?;
            projects::visible_for(c, &caller.user, job.project_id, &format!("job {id}"))?;
            Ok(job)
        })
        .await?;
    Ok(HttpResponse::Ok().json(job))
}

pub async fn cancel(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let id = id.into_inner();
    let actor = caller.actor();
    let job = state.write(move |tx| jobs::cancel(tx, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(job))
}
