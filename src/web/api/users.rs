use super::PageQuery;
use crate::store::audit;
use crate::store::users::{self, Role};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

pub async fn me(caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(&caller.user)
}

pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let users = state.read(users::list).await?;
    Ok(HttpResponse::Ok().json(json!({"items": users, "next": null})))
}

#[derive(Deserialize)]
pub struct NewUser {
    name: String,
    role: Role,
    password: String,
}

pub async fn create(
    caller: Caller,
    state: web::Data<AppState>,
    body: web::Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let actor = caller.actor();
    let b = body.into_inner();
    let user = state
        .write(move |tx| users::create(tx, &actor, &b.name, b.role, &b.password))
        .await?;
    Ok(HttpResponse::Created().json(user))
}

pub async fn create_token(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if caller.user.id != id {
        caller.require_admin()?;
    }
    let actor = caller.actor();
    let token = state
        .write(move |tx| users::create_token(tx, &actor, id))
        .await?;
    Ok(HttpResponse::Created().json(json!({"token": token})))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<usize>,
    target: Option<String>,
}

pub async fn audit(
    caller: Caller,
    state: web::Data<AppState>,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    let q = q.into_inner();
    let limit = PageQuery {
        after: q.after,
        limit: q.limit,
    }
    .limit();
    let page = state
        .read(move |c| audit::list(c, q.after, limit, q.target.as_deref()))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
