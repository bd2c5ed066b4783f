//! A preference project's pages: voting on pairs and the leaderboard.
use super::{html, markdown, Nav, PageUser, UiError};
use crate::store::projects;
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

#[derive(Template)]
#[template(path = "vote.html")]
struct VotePage {
    nav: Option<Nav>,
    csrf: String,
    project_id: i64,
    project_name: String,
    guidelines_html: String,
    guideline_version: i64,
}

pub async fn vote(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let p = me.project(&state, id.into_inner()).await?;
    html(VotePage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        project_id: p.id,
        project_name: p.name.clone(),
        guidelines_html: markdown(&p.guidelines.body),
        guideline_version: p.guidelines.version,
    })
}

#[derive(Template)]
#[template(path = "leaderboard.html")]
struct LeaderboardPage {
    nav: Option<Nav>,
    project_id: i64,
    project_name: String,
    board: crate::quality::leaderboard::Leaderboard,
}

pub async fn leaderboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let (id, user) = (id.into_inner(), me.caller.user.clone());
    let (p, votes) = state
        .read(move |c| {
            let p = projects::visible(c, &user, id)?;
            Ok((p, crate::store::pairs::source_votes(c, id)?))
        })
        .await?;
    let board = web::block(move || crate::quality::leaderboard::Leaderboard::from_votes(&votes))
        .await
        .map_err(crate::web::error::ApiError::from)?;
    html(LeaderboardPage {
        nav: me.nav(),
        project_id: p.id,
        project_name: p.name,
        board,
    })
}
