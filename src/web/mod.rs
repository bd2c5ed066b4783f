//! The HTTP layer: the JSON API under `/api/v1`, the HTML pages, auth and errors. Handlers
//! parse the request, call `app` (the services, and the store's reads and writes off the async
//! workers), and render the response.
pub mod api;
pub mod auth;
pub mod error;
mod prometheus;
mod static_files;
pub mod ui;

use crate::app::App;
use crate::jobs::JobRunner;
use crate::store::Store;
use crate::tasks::worker::{ModelHandle, ModelHealth};
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpResponse, HttpServer};
use error::ApiError;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use std::net::{IpAddr, TcpListener};
use std::num::NonZeroU32;

pub struct AppState {
    pub app: App,
    pub login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub metrics: prometheus::Metrics,
}

impl AppState {
    pub fn new(store: Store, jobs: JobRunner, model: Option<ModelHandle>) -> Self {
        // Ten tries a minute per address, with a burst of ten.
        let quota = Quota::per_minute(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        AppState {
            app: App::new(store, jobs, model),
            login_limiter: RateLimiter::keyed(quota),
            metrics: prometheus::Metrics::default(),
        }
    }
}

/// Handlers reach the services, the store and the model through the state.
impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

pub struct ServeOptions {
    /// Send the session cookie only over HTTPS (set when Wick is behind TLS).
    pub secure_cookies: bool,
    pub workers: Option<usize>,
}

/// Serves until the process is stopped.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    opts: ServeOptions,
) -> std::io::Result<()> {
    let key = state
        .store
        .setting_or_init("session_key", || {
            let mut k = vec![0u8; 64];
            rand::rng().fill_bytes(&mut k);
            k
        })
        .map_err(std::io::Error::other)?;
    let key = Key::try_from(key.as_slice()).map_err(std::io::Error::other)?;
    let state = web::Data::new(state);
    let workers = opts.workers;
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name("wick_session".into())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(opts.secure_cookies)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(actix_web::cookie::time::Duration::days(7)),
            )
            .build();
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(1 << 20)
                    .error_handler(error::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .app_data(web::FormConfig::default().error_handler(error::form_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .wrap(session)
            .wrap(from_fn(same_origin))
            .wrap(from_fn(security_headers))
            .wrap(from_fn(prometheus::record))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(prometheus::render))
            .service(
                web::scope("/api/v1")
                    .configure(api::routes)
                    .default_service(web::to(api_not_found)),
            )
            .configure(static_files::routes)
            .configure(ui::routes)
    })
    .listen(listener)?;
    match workers {
        Some(n) => server.workers(n.max(1)).run().await,
        None => server.run().await,
    }
}

async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await?;
    let health = state.model.as_ref().map(|m| m.health());
    // A model thread that has ended serves no job again: the server needs a restart.
    let mut answer = match health {
        Some(ModelHealth::Stopped) => HttpResponse::ServiceUnavailable(),
        _ => HttpResponse::Ok(),
    };
    Ok(answer.json(serde_json::json!({
        "status": if health == Some(ModelHealth::Stopped) { "degraded" } else { "ok" },
        "model": state.model.as_ref().map(|m| m.model_id()),
        "model_thread": health,
    })))
}

async fn api_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such endpoint"))
}

/// Refuses state-changing requests sent from another site (a second line behind CSRF tokens).
async fn same_origin(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !req.method().is_safe() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_ok = match req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
        {
            None | Some("null") => true,
            Some(o) => o.split_once("://").map(|(_, rest)| rest) == Some(host),
        };
        let cross_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            == Some("cross-site");
        if !origin_ok || cross_site {
            return Err(ApiError::forbidden("cross-origin request refused").into());
        }
    }
    next.call(req).await
}

async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    // Only our own scripts and styles: an injected inline script would not run.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    Ok(res)
}
