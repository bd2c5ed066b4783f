//! The annotation page (classification, NER and instruction review).
use super::{html, markdown, Nav, PageUser, UiError};
use crate::domain::TaskKind;
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

#[derive(Template)]
#[template(path = "annotate.html")]
struct AnnotatePage {
    nav: Option<Nav>,
    csrf: String,
    user_name: String,
    project_id: i64,
    project_name: String,
    task: String,
    labels_json: String,
    guidelines_html: String,
    guideline_version: i64,
}

pub async fn annotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let p = me.project(&state, id.into_inner()).await?;
    let page = AnnotatePage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        user_name: me.caller.user.name.clone(),
        project_id: p.id,
        project_name: p.name.clone(),
        task: p.task.as_str().to_string(),
        labels_json: serde_json::to_string(&p.labels).unwrap_or_else(|_| "[]".into()),
        guidelines_html: markdown(&p.guidelines.body),
        guideline_version: p.guidelines.version,
    };
    match p.task {
        TaskKind::Instruction => html(InstructionsPage {
            nav: page.nav,
            csrf: page.csrf,
            project_id: page.project_id,
            project_name: page.project_name,
            guidelines_html: page.guidelines_html,
            guideline_version: page.guideline_version,
        }),
        _ => html(page),
    }
}

/// Instruction projects: the record under review with accept / edit / reject.
#[derive(Template)]
#[template(path = "instruct.html")]
struct InstructionsPage {
    nav: Option<Nav>,
    csrf: String,
    project_id: i64,
    project_name: String,
    guidelines_html: String,
    guideline_version: i64,
}
