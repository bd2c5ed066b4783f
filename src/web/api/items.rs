use super::PageQuery;
use crate::domain::TaskKind;
use crate::domain::{Answer, Decision, Span};
use crate::formats::import::Format;
use crate::store::annotations::{self, Submission};
use crate::store::StoreError;
use crate::store::{import, item_detail, items, projects};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use std::io::Read;
use tokio::sync::mpsc;

/// Feeds the request body, as it arrives, to the importer on the blocking pool.
struct BodyReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(c)) => self.chunk = c,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

#[derive(Deserialize)]
pub struct ImportQuery {
    format: Option<String>,
}

pub async fn import(
    caller: Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    q: web::Query<ImportQuery>,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let user = caller.user.clone();
    let project = state.read(move |c| projects::visible(c, &user, id)).await?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = match q.format.as_deref() {
        Some("csv") => Format::Csv,
        Some("jsonl") | Some("ndjson") => Format::Jsonl,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: use jsonl or csv"
            )))
        }
        None if content_type.starts_with("text/csv") => Format::Csv,
        None => Format::Jsonl,
    };
    let (tx, rx) = mpsc::channel(16);
    let store = state.store.clone();
    let actor = caller.actor();
    let task = web::block(move || {
        let reader = BodyReader {
            rx,
            chunk: Bytes::new(),
        };
        import::by_task(&store, &actor, &project, format, reader, |_| {})
    });
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
        if tx.send(chunk).await.is_err() {
            break; // the importer stopped early (a database error): its result says why
        }
    }
    drop(tx);
    let report = task.await??;
    Ok(HttpResponse::Ok().json(report))
}

pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (after, limit) = (q.after, q.limit());
    let page = state
        .read(move |c| {
            projects::visible(c, &caller.user, id)?;
            items::list(c, id, after, limit)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (item, responses) = state
        .read(move |c| {
            let project = items::project_of(c, id)?;
            let project = projects::visible_for(c, &caller.user, project, &format!("item {id}"))?;
            // A preference item is a prompt: its responses come with it.
            let responses = match project.task {
                TaskKind::Preference => Some(crate::store::pairs::responses(c, id)?),
                _ => None,
            };
            let mut item = item_detail::get(c, id)?;
            // Gold answers score annotators: only reviewers and admins see them.
            if !caller.user.can_review() {
                item.gold = None;
            }
            Ok((item, responses))
        })
        .await?;
    let mut body = serde_json::to_value(item).map_err(|e| ApiError::internal(&e))?;
    if let Some(r) = responses {
        body["responses"] = serde_json::to_value(r).map_err(|e| ApiError::internal(&e))?;
    }
    Ok(HttpResponse::Ok().json(body))
}

/// `label` or `entities`; unknown fields are refused by name.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnotationBody {
    label: Option<String>,
    entities: Option<Vec<Span>>,
    /// Instruction projects: accept, edit (with `response`) or reject.
    decision: Option<Decision>,
    response: Option<String>,
    seconds: Option<f64>,
    prediction_id: Option<i64>,
}

/// The answer a request gives: exactly one of a label, entities, or a review decision (an edit
/// with its response).
pub(super) fn answer_of(
    label: Option<String>,
    entities: Option<Vec<Span>>,
    decision: Option<Decision>,
    response: Option<String>,
) -> Result<Answer, ApiError> {
    match (label, entities, decision) {
        (Some(label), None, None) => Ok(Answer::Label { label }),
        (None, Some(entities), None) => Ok(Answer::Entities { entities }),
        (None, None, Some(decision)) => Ok(Answer::Review { decision, response }),
        _ => Err(StoreError::invalid("label", "give one of label, entities or decision").into()),
    }
}

pub async fn annotate(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<AnnotationBody>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let actor = caller.actor();
    let b = body.into_inner();
    let answer = answer_of(b.label, b.entities, b.decision, b.response)?;
    let sub = Submission {
        answer,
        seconds: b.seconds,
        prediction_id: b.prediction_id,
    };
    let annotation = state
        .write(move |tx| annotations::submit(tx, &actor, &caller.user, id, sub))
        .await?;
    // The answer may have queued a retrain.
    state.jobs.wake();
    Ok(HttpResponse::Created().json(annotation))
}

pub async fn skip(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let actor = caller.actor();
    state
        .write(move |tx| annotations::skip(tx, &actor, &caller.user, id))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
