//! HTML pages, rendered on the server with askama (autoescaping on). Forms carry the session's
//! CSRF token; the annotation page and uploads talk to the JSON API.
mod annotate;
pub mod charts;
mod items;
mod login;
mod pairs;
mod projects;
mod quality;
mod rules;
mod users;

use super::auth::{self, Caller};
use super::error::ApiError;
use super::AppState;
use crate::domain::Project;
use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use askama::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login::page))
        .route("/login", web::post().to(login::submit))
        .route("/logout", web::post().to(login::logout))
        .route("/", web::get().to(projects::projects))
        .route("/projects", web::post().to(projects::create_project))
        .route("/projects/{id}", web::get().to(projects::project))
        .route(
            "/projects/{id}/settings",
            web::post().to(projects::save_settings),
        )
        .route(
            "/projects/{id}/members",
            web::post().to(projects::add_member),
        )
        .route(
            "/projects/{id}/members/remove",
            web::post().to(projects::remove_member),
        )
        .route("/projects/{id}/jobs", web::post().to(projects::start_job))
        .route("/projects/{id}/retrain", web::post().to(projects::retrain))
        .route("/jobs/{id}/cancel", web::post().to(projects::cancel_job))
        .route("/projects/{id}/annotate", web::get().to(annotate::annotate))
        .route("/projects/{id}/vote", web::get().to(pairs::vote))
        .route(
            "/projects/{id}/leaderboard",
            web::get().to(pairs::leaderboard),
        )
        .route(
            "/projects/{id}/dashboard",
            web::get().to(quality::dashboard),
        )
        .route(
            "/projects/{id}/auto-accept",
            web::post().to(quality::auto_accept),
        )
        .route("/projects/{id}/review", web::get().to(quality::review))
        .route("/projects/{id}/rules", web::get().to(rules::page))
        .route("/items/{id}", web::get().to(items::item))
        .route("/users", web::get().to(users::users))
        .route("/users", web::post().to(users::create_user))
        .route("/users/{id}/tokens", web::post().to(users::create_token))
        .route("/audit", web::get().to(users::audit));
}

/// What the top bar needs.
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub is_admin: bool,
    pub csrf: String,
}

/// A page's error: log in first (a redirect), or an HTML error page.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("log in first")]
    Login(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<crate::app::AppError> for UiError {
    fn from(e: crate::app::AppError) -> Self {
        UiError::Api(e.into())
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(e: crate::store::StoreError) -> Self {
        UiError::Api(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: String,
    message: String,
}

impl ResponseError for UiError {
    fn status_code(&self) -> StatusCode {
        match self {
            UiError::Login(_) => StatusCode::SEE_OTHER,
            UiError::Api(e) => e.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            UiError::Login(next) => {
                let to = format!("/login?next={}", urlencode(next));
                HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, to))
                    .finish()
            }
            UiError::Api(e) => {
                let page = ErrorPage {
                    nav: None,
                    status: format!(
                        "{} {}",
                        e.status().as_u16(),
                        e.status().canonical_reason().unwrap_or("")
                    ),
                    message: e.message.clone(),
                };
                HttpResponse::build(e.status())
                    .content_type("text/html; charset=utf-8")
                    .body(page.render().unwrap_or_else(|_| e.message.clone()))
            }
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The logged-in user of a page, or a redirect to the login page.
pub struct PageUser {
    pub caller: Caller,
    pub csrf: String,
}

impl PageUser {
    pub async fn from(
        req: &HttpRequest,
        state: &AppState,
        session: &Session,
    ) -> Result<Self, UiError> {
        let user = auth::session_user(state, session)
            .await?
            .ok_or_else(|| UiError::Login(req.uri().to_string()))?;
        Ok(PageUser {
            csrf: auth::csrf_token(session),
            caller: Caller {
                user,
                addr: auth::peer_addr(req),
            },
        })
    }

    pub fn nav(&self) -> Option<Nav> {
        Some(Nav {
            user: self.caller.user.name.clone(),
            role: self.caller.user.role.as_str(),
            is_admin: self.caller.user.is_admin(),
            csrf: self.csrf.clone(),
        })
    }

    /// For an admin's form post: the logged-in user, who must be an admin, with the form's
    /// CSRF field matching the session's.
    pub async fn admin_post(
        req: &HttpRequest,
        state: &AppState,
        session: &Session,
        csrf: &str,
    ) -> Result<Self, UiError> {
        let me = Self::from(req, state, session).await?;
        auth::check_csrf(session, csrf)?;
        me.require_admin()?;
        Ok(me)
    }

    /// A project this user may see (a hidden one reads as missing).
    pub async fn project(&self, state: &AppState, id: i64) -> Result<Project, UiError> {
        let user = self.caller.user.clone();
        Ok(state
            .read(move |c| crate::store::projects::visible(c, &user, id))
            .await?)
    }

    pub fn require_admin(&self) -> Result<(), UiError> {
        self.caller.require_admin().map_err(UiError::Api)
    }
}

pub fn html(page: impl Template) -> Result<HttpResponse, UiError> {
    let body = page
        .render()
        .map_err(|e| UiError::Api(ApiError::internal(&e)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// Markdown guidelines as HTML. Raw HTML in the source is shown as text, never passed through.
pub fn markdown(src: &str) -> String {
    use pulldown_cmark::{Event, Parser};
    let events = Parser::new(src).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        e => e,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_escapes_raw_html() {
        let out =
            super::markdown("**bold** <script>alert(1)</script>\n\n<img src=x onerror=alert(1)>");
        assert!(out.contains("<strong>bold</strong>"));
        assert!(!out.contains("<script>") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
    }
}
