//! The admin pages: users with their API tokens, and the audit log.
use super::projects::{AfterQuery, CsrfForm};
use super::{html, redirect, Nav, PageUser, UiError};
use crate::store::audit::{self, Entry};
use crate::store::users::{self, Role, User};
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<User>,
    new_token: Option<(String, String)>,
    error: Option<String>,
}

async fn users_page(
    me: &PageUser,
    state: &AppState,
    new_token: Option<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    me.require_admin()?;
    let list = state.read(users::list).await?;
    html(UsersPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        users: list,
        new_token,
        error,
    })
}

pub async fn users(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    users_page(&me, &state, None, None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    role: Role,
    password: String,
}

pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let actor = me.caller.actor();
    let f = form.into_inner();
    match state
        .write(move |tx| users::create(tx, &actor, &f.name, f.role, &f.password))
        .await
        .map_err(crate::web::error::ApiError::from)
    {
        Ok(_) => Ok(redirect("/users")),
        Err(e) if e.status().is_client_error() => {
            users_page(&me, &state, None, Some(e.message)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let (id, actor) = (id.into_inner(), me.caller.actor());
    let (name, token) = state
        .write(move |tx| {
            let name = users::get(tx, id)?.name;
            Ok((name, users::create_token(tx, &actor, id)?))
        })
        .await?;
    users_page(&me, &state, Some((name, token)), None).await
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    entries: Vec<Entry>,
    next: Option<i64>,
    target: Option<String>,
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    q: web::Query<AfterQuery>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    me.require_admin()?;
    let q = q.into_inner();
    let (after, target) = (q.after, q.target.clone());
    let page = state
        .read(move |c| audit::list(c, after, 100, target.as_deref()))
        .await?;
    html(AuditPage {
        nav: me.nav(),
        entries: page.items,
        next: page.next,
        target: q.target,
    })
}
