//! Logging in and out. Failed logins are rate limited per address and audited.
use super::{html, redirect, UiError};
use crate::store::{audit, users, Actor};
use crate::web::auth::{self, peer_addr};
use crate::web::error::{ApiError, ErrorCode};
use crate::web::AppState;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<super::Nav>,
    csrf: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only paths on this server are followed after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

pub async fn page(session: Session, q: web::Query<NextQuery>) -> Result<HttpResponse, UiError> {
    html(LoginPage {
        nav: None,
        csrf: auth::csrf_token(&session),
        next: safe_next(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, UiError> {
    auth::check_csrf(&session, &form.csrf)?;
    let ip = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    if state.login_limiter.check_key(&ip).is_err() {
        return Err(ApiError::new(
            ErrorCode::TooManyRequests,
            "too many login attempts; wait a minute",
        )
        .into());
    }
    let form = form.into_inner();
    let (name, password) = (form.name.trim().to_string(), form.password);
    let user = {
        let name = name.clone();
        state
            .read(move |c| users::verify_password(c, &name, &password))
            .await?
    };
    let addr = peer_addr(&req);
    let Some(user) = user else {
        let actor = Actor {
            user_id: None,
            addr,
        };
        state
            .write(move |tx| {
                audit::record(
                    tx,
                    &actor,
                    "user.login_failed",
                    &format!("user:{name}"),
                    &serde_json::Value::Null,
                )
            })
            .await?;
        let page = LoginPage {
            nav: None,
            csrf: auth::csrf_token(&session),
            next: safe_next(form.next.as_deref()),
            error: Some("Wrong name or password.".into()),
        };
        let mut res = html(page)?;
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(res);
    };
    auth::log_in(&session, &user)?;
    let actor = Actor {
        user_id: Some(user.id),
        addr,
    };
    state
        .write(move |tx| {
            audit::record(
                tx,
                &actor,
                "user.login",
                &format!("user:{}", user.id),
                &serde_json::Value::Null,
            )
        })
        .await?;
    Ok(redirect(&safe_next(form.next.as_deref())))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

pub async fn logout(session: Session, form: web::Form<CsrfForm>) -> Result<HttpResponse, UiError> {
    auth::check_csrf(&session, &form.csrf)?;
    auth::log_out(&session);
    Ok(redirect("/login"))
}
