//! Similar items over HTTP: "more like this" for an item, and a search by meaning.
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// How many neighbours when the request does not say, and the most one may ask for.
const DEFAULT_K: usize = 20;
const MAX_K: usize = 200;

#[derive(Deserialize)]
pub struct SimilarQuery {
    /// Neighbours wanted (1 to 200); read as text so a bad value is answered by name.
    k: Option<String>,
    /// The text to search by meaning (`/projects/{id}/similar` only).
    q: Option<String>,
}

impl SimilarQuery {
    fn k(&self) -> Result<usize, ApiError> {
        let Some(k) = &self.k else {
            return Ok(DEFAULT_K);
        };
        match k.trim().parse::<usize>() {
            Ok(k @ 1..=MAX_K) => Ok(k),
            _ => Err(ApiError::bad_request(format!(
                "k must be 1 to {MAX_K}, got {k:?}"
            ))),
        }
    }
}

/// `GET /projects/{id}/items/{item}/similar?k=`: the item's nearest neighbours in the project.
pub async fn to_item(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    q: web::Query<SimilarQuery>,
) -> Result<HttpResponse, ApiError> {
    let (project, item) = path.into_inner();
    let found = state
        .similar_to_item(caller.user, project, item, q.k()?)
        .await?;
    Ok(HttpResponse::Ok().json(found))
}

/// `GET /projects/{id}/similar?q=&k=`: the project's items closest in meaning to `q`.
pub async fn to_text(
    caller: Caller,
    state: web::Data<AppState>,
    project: web::Path<i64>,
    q: web::Query<SimilarQuery>,
) -> Result<HttpResponse, ApiError> {
    let k = q.k()?;
    let text = q.into_inner().q.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("q: the search text is empty"));
    }
    let found = state
        .similar_to_text(caller.user, project.into_inner(), text, k)
        .await?;
    Ok(HttpResponse::Ok().json(found))
}
