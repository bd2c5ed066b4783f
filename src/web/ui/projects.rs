//! The projects pages: the list, a new project, a project's page with its settings, members
//! and jobs.
use super::{html, markdown, redirect, Nav, PageUser, UiError};
use crate::domain::{NewProject, Project, ProjectUpdate, QueueOrder, TaskKind};
use crate::store::items::{self, ItemSummary};
use crate::store::jobs::{self, Job};
use crate::store::learning::{self, LearnerRow};
use crate::store::projects::{self, Counts};
use crate::store::users::{self, User};
use crate::store::{Page, StoreError};
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

struct ProjectRow {
    id: i64,
    name: String,
    task: &'static str,
    labels: String,
    items: i64,
    done: i64,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    nav: Option<Nav>,
    projects: Vec<ProjectRow>,
}

/// Labels as a short readable list.
fn label_summary(labels: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = labels
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if labels.len() > SHOWN {
        s.push_str(&format!(" … ({} in all)", labels.len()));
    }
    s
}

pub async fn projects(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let user = me.caller.user.clone();
    let rows = state
        .read(move |c| {
            projects::list_for(c, &user)?
                .into_iter()
                .map(|p| {
                    let counts = projects::counts(c, p.id)?;
                    Ok(ProjectRow {
                        id: p.id,
                        task: p.task.as_str(),
                        labels: label_summary(&p.labels),
                        name: p.name,
                        items: counts.items,
                        done: counts.done,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    html(ProjectsPage {
        nav: me.nav(),
        projects: rows,
    })
}

#[derive(Deserialize)]
pub struct NewProjectForm {
    csrf: String,
    name: String,
    task: TaskKind,
    labels: String,
    prompt: Option<String>,
    guidelines: Option<String>,
    queue_order: Option<QueueOrder>,
    overlap: Option<i64>,
    gold_rate: Option<f64>,
}

pub async fn create_project(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<NewProjectForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let f = form.into_inner();
    let new = NewProject {
        name: f.name,
        task: f.task,
        labels: f
            .labels
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        prompt: f.prompt.filter(|p| !p.is_empty()),
        guidelines: f.guidelines,
        queue_order: f.queue_order,
        overlap: f.overlap,
        generation: None,
        gold_rate: f.gold_rate,
        precision_target: None,
        retrain_every: None,
        near_duplicate_cosine: None,
    };
    let actor = me.caller.actor();
    let p = state
        .write(move |tx| projects::create(tx, &actor, &new))
        .await?;
    Ok(redirect(&format!("/projects/{}", p.id)))
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    nav: Option<Nav>,
    csrf: String,
    is_admin: bool,
    can_review: bool,
    p: Project,
    labels: String,
    counts: Counts,
    predicted: i64,
    jobs: Vec<Job>,
    guidelines_html: String,
    members: Vec<User>,
    items: Page<ItemSummary>,
    preference: bool,
    /// Classification and NER projects have a learner (and its settings).
    learns: bool,
    ner: bool,
    /// The latest learner trained for the project.
    learner: Option<LearnerRow>,
}

#[derive(Deserialize)]
pub struct AfterQuery {
    pub after: Option<i64>,
    pub target: Option<String>,
}

pub async fn project(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    q: web::Query<AfterQuery>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let (id, after, user) = (id.into_inner(), q.after, me.caller.user.clone());
    let (p, counts, predicted, jobs, members, items, learner) = state
        .read(move |c| {
            let p = projects::visible(c, &user, id)?;
            let learner = match p.task.learns() {
                true => learning::latest_learner(c, id)?,
                false => None,
            };
            Ok((
                p,
                projects::counts(c, id)?,
                crate::store::predictions::count_for_project(c, id)?,
                jobs::for_project(c, id)?.into_iter().take(5).collect(),
                projects::members(c, id)?,
                items::list(c, id, after, 50)?,
                learner,
            ))
        })
        .await?;
    html(ProjectPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        is_admin: me.caller.user.is_admin(),
        can_review: me.caller.user.can_review(),
        labels: label_summary(&p.labels),
        guidelines_html: markdown(&p.guidelines.body),
        preference: p.task == TaskKind::Preference,
        learns: p.task.learns(),
        ner: p.task == TaskKind::Ner,
        learner,
        p,
        counts,
        predicted,
        jobs,
        members,
        items,
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    csrf: String,
    guidelines: Option<String>,
    queue_order: Option<QueueOrder>,
    overlap: Option<i64>,
    gold_rate: Option<f64>,
    precision_target: Option<f64>,
    retrain_every: Option<i64>,
    near_duplicate_cosine: Option<f64>,
}

pub async fn save_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let id = id.into_inner();
    let f = form.into_inner();
    let up = ProjectUpdate {
        // Browsers send textarea line ends as CRLF; keep what the person typed.
        guidelines: f.guidelines.map(|g| g.replace("\r\n", "\n")),
        queue_order: f.queue_order,
        overlap: f.overlap,
        generation: None,
        gold_rate: f.gold_rate,
        precision_target: f.precision_target,
        retrain_every: f.retrain_every,
        near_duplicate_cosine: f.near_duplicate_cosine,
    };
    let actor = me.caller.actor();
    state
        .write(move |tx| projects::update(tx, &actor, id, &up))
        .await?;
    Ok(redirect(&format!("/projects/{id}")))
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf: String,
    name: String,
}

async fn set_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: i64,
    form: MemberForm,
    member: bool,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let actor = me.caller.actor();
    state
        .write(move |tx| {
            let user = users::by_name(tx, form.name.trim())?;
            projects::set_member(tx, &actor, id, user.id, member)
        })
        .await?;
    Ok(redirect(&format!("/projects/{id}")))
}

pub async fn add_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, UiError> {
    set_member(
        req,
        state,
        session,
        id.into_inner(),
        form.into_inner(),
        true,
    )
    .await
}

pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<MemberForm>,
) -> Result<HttpResponse, UiError> {
    set_member(
        req,
        state,
        session,
        id.into_inner(),
        form.into_inner(),
        false,
    )
    .await
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn start_job(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let id = id.into_inner();
    state.start_job(me.caller.actor(), id).await?;
    Ok(redirect(&format!("/projects/{id}")))
}

/// "Retrain now": queues a retrain of the project's learner (a conflict while one is queued or
/// running) and wakes the runner.
pub async fn retrain(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let id = id.into_inner();
    state.queue_retrain(me.caller.actor(), id).await?;
    Ok(redirect(&format!("/projects/{id}")))
}

pub async fn cancel_job(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let actor = me.caller.actor();
    let job = state
        .write(move |tx| jobs::cancel(tx, &actor, id.into_inner()))
        .await?;
    Ok(redirect(&format!("/projects/{}", job.project_id)))
}
