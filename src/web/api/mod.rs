//! `/api/v1`: JSON endpoints. Each module maps one aggregate's store calls to HTTP.
mod export;
mod items;
mod jobs;
mod learning;
pub mod openapi;
mod pairs;
mod projects;
pub(crate) mod quality;
mod queue;
mod rules;
mod similar;
mod users;

use actix_web::web;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi::document))
        .route("/me", web::get().to(users::me))
        .route("/users", web::get().to(users::list))
        .route("/users", web::post().to(users::create))
        .route("/users/{id}/tokens", web::post().to(users::create_token))
        .route("/audit", web::get().to(users::audit))
        .route("/projects", web::get().to(projects::list))
        .route("/projects", web::post().to(projects::create))
        .route("/projects/{id}", web::get().to(projects::get))
        .route("/projects/{id}", web::patch().to(projects::update))
        .route("/projects/{id}/members", web::get().to(projects::members))
        .route(
            "/projects/{id}/members/{user_id}",
            web::put().to(projects::add_member),
        )
        .route(
            "/projects/{id}/members/{user_id}",
            web::delete().to(projects::remove_member),
        )
        .route("/projects/{id}/items", web::post().to(items::import))
        .route("/projects/{id}/items", web::get().to(items::list))
        .route(
            "/projects/{id}/items/{item}/similar",
            web::get().to(similar::to_item),
        )
        .route("/projects/{id}/similar", web::get().to(similar::to_text))
        .route("/projects/{id}/next", web::post().to(queue::next))
        .route("/projects/{id}/stats", web::get().to(quality::stats))
        .route(
            "/projects/{id}/review/next",
            web::post().to(quality::review_next),
        )
        .route(
            "/projects/{id}/auto-accept",
            web::post().to(quality::auto_accept),
        )
        .route("/items/{id}/resolution", web::post().to(quality::resolve))
        .route("/projects/{id}/jobs", web::post().to(jobs::create))
        .route("/projects/{id}/jobs", web::get().to(jobs::list))
        .route("/projects/{id}/retrain", web::post().to(learning::retrain))
        .route("/projects/{id}/learning", web::get().to(learning::get))
        .route("/projects/{id}/rules", web::get().to(rules::table))
        .route("/projects/{id}/rules", web::post().to(rules::add))
        .route(
            "/projects/{id}/rules/preview",
            web::post().to(rules::preview),
        )
        .route("/projects/{id}/rules/apply", web::post().to(rules::apply))
        .route("/projects/{id}/rules/{name}", web::put().to(rules::update))
        .route(
            "/projects/{id}/rules/{name}",
            web::delete().to(rules::delete),
        )
        .route(
            "/projects/{id}/rules/{name}/history",
            web::get().to(rules::history),
        )
        .route(
            "/projects/{id}/rules/{name}/examples",
            web::get().to(rules::examples),
        )
        .route("/items/{id}", web::get().to(items::get))
        .route("/items/{id}/annotations", web::post().to(items::annotate))
        .route("/items/{id}/skip", web::post().to(items::skip))
        .route(
            "/projects/{id}/leaderboard",
            web::get().to(pairs::leaderboard),
        )
        .route("/projects/{id}/pairs", web::get().to(pairs::list))
        .route("/projects/{id}/export", web::get().to(export::export))
        .route("/projects/{id}/export/card", web::get().to(export::card))
        .route("/pairs/{id}/votes", web::post().to(pairs::vote))
        .route("/jobs/{id}", web::get().to(jobs::get))
        .route("/jobs/{id}/cancel", web::post().to(jobs::cancel));
}

/// `?after=ID&limit=N` on list endpoints.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub after: Option<i64>,
    pub limit: Option<usize>,
}

impl PageQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, 500)
    }
}
