//! Prometheus text at `/metrics`: request counts and latency by status class, plus gauges read
//! from the database and the model queue when scraped.
use super::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

const BUCKETS_MS: [u64; 8] = [1, 5, 10, 25, 50, 100, 500, 2500];

#[derive(Default)]
pub struct Metrics {
    /// Requests by status class 1xx..5xx.
    by_class: [AtomicU64; 5],
    /// Cumulative latency histogram, plus the sum in microseconds.
    buckets: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await;
    if let Some(state) = state {
        let m = &state.metrics;
        let status = match &res {
            Ok(r) => r.status().as_u16(),
            Err(e) => e.as_response_error().status_code().as_u16(),
        };
        let class = (status / 100).clamp(1, 5) as usize - 1;
        m.by_class[class].fetch_add(1, Ordering::Relaxed);
        let us = start.elapsed().as_micros() as u64;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if us <= b * 1000 {
                m.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        m.sum_us.fetch_add(us, Ordering::Relaxed);
    }
    res
}

pub async fn render(state: web::Data<AppState>) -> Result<HttpResponse, super::error::ApiError> {
    let (items, annotations, predictions, running) = state
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM annotations),
                        (SELECT COUNT(*) FROM predictions), (SELECT COUNT(*) FROM jobs WHERE status = 'running')",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?)),
            )?)
        })
        .await?;
    let m = &state.metrics;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP wick_http_requests_total HTTP requests answered, by status class.\n# TYPE wick_http_requests_total counter");
    for (i, c) in m.by_class.iter().enumerate() {
        let _ = writeln!(
            out,
            "wick_http_requests_total{{class=\"{}xx\"}} {}",
            i + 1,
            c.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(out, "# HELP wick_http_request_duration_seconds Time to answer a request.\n# TYPE wick_http_request_duration_seconds histogram");
    for (i, b) in BUCKETS_MS.iter().enumerate() {
        let _ = writeln!(
            out,
            "wick_http_request_duration_seconds_bucket{{le=\"{}\"}} {}",
            *b as f64 / 1000.0,
            m.buckets[i].load(Ordering::Relaxed)
        );
    }
    let count = m.count.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "wick_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
    );
    let _ = writeln!(
        out,
        "wick_http_request_duration_seconds_sum {}",
        m.sum_us.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(out, "wick_http_request_duration_seconds_count {count}");
    for (name, help, v) in [
        ("wick_items", "Items in all projects.", items),
        ("wick_annotations", "Annotation rows.", annotations),
        ("wick_predictions", "Prediction rows.", predictions),
        ("wick_jobs_running", "Pre-labeling jobs running.", running),
        (
            "wick_model_queue_depth",
            "Requests waiting for the model.",
            state.model.as_ref().map_or(0, |h| h.queue_depth() as i64),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
