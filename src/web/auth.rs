//! Who is calling: a bearer token (API clients) or the session cookie (the browser, with a CSRF
//! token on every state-changing request). Login is rate limited per address.
use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::app::AppError;
use crate::store::users::{self, User};
use crate::store::{Actor, StoreError};
use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use rand::RngCore;

const SESSION_USER: &str = "uid";
const SESSION_CSRF: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated caller and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub addr: Option<String>,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id),
            addr: self.addr.clone(),
        }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only an admin may do this"))
        }
    }
}

pub fn peer_addr(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The session's CSRF token, created on first use.
pub fn csrf_token(session: &Session) -> String {
    match session.get::<String>(SESSION_CSRF) {
        Ok(Some(t)) => t,
        _ => {
            let t = random_token();
            let _ = session.insert(SESSION_CSRF, &t);
            t
        }
    }
}

pub fn check_csrf(session: &Session, given: &str) -> Result<(), ApiError> {
    match session.get::<String>(SESSION_CSRF) {
        Ok(Some(t)) if !given.is_empty() && constant_time_eq(t.as_bytes(), given.as_bytes()) => {
            Ok(())
        }
        _ => Err(ApiError::new(
            ErrorCode::Csrf,
            "missing or wrong CSRF token; reload the page",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts a session for the user: a fresh session id and CSRF token (no fixation).
pub fn log_in(session: &Session, user: &User) -> Result<(), ApiError> {
    session.renew();
    session
        .insert(SESSION_USER, user.id)
        .and_then(|_| session.insert(SESSION_CSRF, random_token()))
        .map_err(|e| ApiError::internal(&e))
}

pub fn log_out(session: &Session) {
    session.purge();
}

/// The user of the session, if any.
pub async fn session_user(state: &AppState, session: &Session) -> Result<Option<User>, ApiError> {
    let Ok(Some(uid)) = session.get::<i64>(SESSION_USER) else {
        return Ok(None);
    };
    match state.read(move |c| users::get(c, uid)).await {
        Ok(u) => Ok(Some(u)),
        Err(AppError::Store(StoreError::NotFound(_))) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// API callers: a bearer token, or the browser session with `X-CSRF-Token` on unsafe methods.
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal_msg("no app state"))?
                .clone();
            let addr = peer_addr(&req);
            if let Some(h) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
                let token = h
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(|t| t.trim().to_string())
                    .ok_or_else(|| {
                        ApiError::unauthorized("Authorization must be 'Bearer TOKEN'")
                    })?;
                let user = state
                    .read(move |c| users::by_token(c, &token))
                    .await?
                    .ok_or_else(|| ApiError::unauthorized("unknown API token"))?;
                return Ok(Caller { user, addr });
            }
            let session = req.get_session();
            let user = session_user(&state, &session).await?.ok_or_else(|| {
                ApiError::unauthorized("log in, or send Authorization: Bearer TOKEN")
            })?;
            if !req.method().is_safe() {
                let given = req
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                check_csrf(&session, given)?;
            }
            Ok(Caller { user, addr })
        })
    }
}
