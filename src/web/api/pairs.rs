use crate::store::pairs::{self, VoteIn};
use crate::store::projects;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};

pub async fn vote(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: web::Json<VoteIn>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let actor = caller.actor();
    let v = body.into_inner();
    let vote = state
        .write(move |tx| pairs::vote(tx, &actor, &caller.user, id, v))
        .await?;
    Ok(HttpResponse::Created().json(vote))
}

pub async fn leaderboard(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let votes = state
        .read(move |c| {
            projects::visible(c, &caller.user, id)?;
            pairs::source_votes(c, id)
        })
        .await?;
    let board =
        web::block(move || crate::quality::leaderboard::Leaderboard::from_votes(&votes)).await?;
    Ok(HttpResponse::Ok().json(board))
}

#[derive(serde::Deserialize)]
pub struct PairsQuery {
    after: Option<i64>,
    limit: Option<usize>,
    #[serde(default)]
    split: bool,
}

/// Voted pairs with majority, agreement and a split flag (`?split=true`: only split ones).
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<PairsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let q = q.into_inner();
    let limit = super::PageQuery {
        after: q.after,
        limit: q.limit,
    }
    .limit();
    let page = state
        .read(move |c| {
            projects::visible(c, &caller.user, id)?;
            pairs::list_voted(c, id, q.after, limit, q.split)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
