//! The few JS and CSS files the pages use, compiled into the binary so it runs from anywhere.
use actix_web::http::header;
use actix_web::{web, HttpResponse};

const FILES: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "page.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/page.js"),
    ),
    (
        "spans.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/spans.js"),
    ),
    (
        "annotate.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/annotate.js"),
    ),
    (
        "vote.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/vote.js"),
    ),
    (
        "instruct.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/instruct.js"),
    ),
    (
        "review.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/review.js"),
    ),
    (
        "project.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/project.js"),
    ),
    (
        "rules.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/rules.js"),
    ),
];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{name}", web::get().to(file))
        // Browsers ask for it on every page; answering spares a 404 in their console.
        .route("/favicon.ico", web::get().to(HttpResponse::NoContent));
}

async fn file(name: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, mime, body)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, *mime))
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(*body),
        None => HttpResponse::NotFound().finish(),
    }
}
