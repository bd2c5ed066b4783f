use crate::domain::TaskKind;
use crate::store::projects;
use crate::store::{pairs, queue};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

/// `{"exclude": [ids]}`: what the caller already holds (the item on screen, a prefetched one).
#[derive(Deserialize, Default)]
pub struct NextBody {
    #[serde(default)]
    exclude: Vec<i64>,
}

impl NextBody {
    /// The ids to leave out of an optional body, at most 100.
    pub fn exclude(body: Option<web::Json<NextBody>>) -> Result<Vec<i64>, ApiError> {
        let exclude = body.map(|b| b.into_inner().exclude).unwrap_or_default();
        if exclude.len() > 100 {
            return Err(ApiError::bad_request("exclude: at most 100 ids"));
        }
        Ok(exclude)
    }
}

pub async fn next(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: Option<web::Json<NextBody>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let exclude = NextBody::exclude(body)?;
    // A preference project hands out pairs to vote on; the others items to label.
    let next = state
        .write(move |tx| {
            let project = projects::visible(tx, &caller.user, id)?;
            Ok(match project.task {
                TaskKind::Preference => {
                    json!({"pair": pairs::next(tx, &caller.user, id, &exclude)?})
                }
                _ => json!({"item": queue::next(tx, &caller.user, id, &exclude)?}),
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(next))
}
