//! The pages behind the top bar: projects, a project, annotation, item history, users, audit.
use super::{html, markdown, redirect, Nav, PageUser, UiError};
use crate::domain::{NewProject, Project, ProjectUpdate, QueueOrder, TaskKind};
use crate::store::annotations::Annotation;
use crate::store::audit::{self, Entry};
use crate::store::item_detail::{self, Item};
use crate::store::items::{self, ItemSummary};
use crate::store::jobs::{self, Job};
use crate::store::learning::{self, LearnerRow};
use crate::store::predictions::Prediction;
use crate::store::projects::{self, Counts};
use crate::store::users::{self, Role, User};
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
    after: Option<i64>,
    target: Option<String>,
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
    csrf: String,
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

/// One line of an item's history: a prediction or an annotation.
struct HistoryRow {
    when: String,
    who: String,
    kind: &'static str,
    value: String,
    details: String,
}

fn prediction_row(p: &Prediction) -> HistoryRow {
    let value = match p.output.get("label") {
        Some(l) => format!(
            "{} ({:.0}%)",
            l.as_str().unwrap_or(""),
            p.confidence * 100.0
        ),
        None => p
            .output
            .get("entities")
            .map(|e| e.to_string())
            .unwrap_or_default(),
    };
    HistoryRow {
        when: p.created_at.clone(),
        who: p.model_id.clone(),
        kind: "prediction",
        value,
        details: format!(
            "prompt {} · labels {}{}",
            p.prompt_version,
            p.labels_hash,
            if p.truncated { " · truncated" } else { "" }
        ),
    }
}

/// An answer as one line: the label, or the entities as JSON.
fn answer_text(value: &serde_json::Value) -> String {
    match value.get("label") {
        Some(l) => l.as_str().unwrap_or("").to_string(),
        None => value
            .get("entities")
            .map(|e| e.to_string())
            .unwrap_or_default(),
    }
}

fn annotation_row(a: &Annotation) -> HistoryRow {
    let value = answer_text(&a.value);
    let mut details = Vec::new();
    match a.accepted {
        Some(true) => details.push("accepted as suggested".to_string()),
        Some(false) => details.push("corrected".to_string()),
        None => {}
    }
    if let Some(s) = a.seconds {
        details.push(format!("{s:.1} s"));
    }
    if let Some(v) = a.guideline_version {
        details.push(format!("guidelines v{v}"));
    }
    HistoryRow {
        when: a.created_at.clone(),
        who: a.user.clone().unwrap_or_else(|| a.source.clone()),
        kind: if a.source == "import" {
            "import"
        } else {
            "annotation"
        },
        value,
        details: details.join(" · "),
    }
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage {
    nav: Option<Nav>,
    item: Item,
    project_name: String,
    current: Option<String>,
    history: Vec<HistoryRow>,
    /// Preference items: the responses and every vote on their pairs.
    responses: Vec<crate::store::pairs::ResponseRow>,
    votes: Vec<crate::store::pairs::VoteRow>,
}

pub async fn item(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let (id, user) = (id.into_inner(), me.caller.user.clone());
    let (item, project, responses, votes) = state
        .read(move |c| {
            let mut item = item_detail::get(c, id)?;
            let project = projects::visible_for(c, &user, item.project_id, &format!("item {id}"))?;
            if !user.can_review() {
                item.gold = None;
            }
            let (responses, votes) = match project.task {
                TaskKind::Preference => (
                    crate::store::pairs::responses(c, id)?,
                    crate::store::pairs::votes_for_item(c, id)?,
                ),
                _ => (Vec::new(), Vec::new()),
            };
            Ok((item, project, responses, votes))
        })
        .await?;
    let mut history: Vec<(String, HistoryRow)> = item
        .predictions
        .iter()
        .map(|p| (p.created_at.clone(), prediction_row(p)))
        .chain(
            item.annotations
                .iter()
                .map(|a| (a.created_at.clone(), annotation_row(a))),
        )
        .collect();
    history.extend(item.resolutions.iter().map(|r| {
        let row = HistoryRow {
            when: r.created_at.clone(),
            who: r.user.clone().unwrap_or_else(|| "model".into()),
            kind: if r.source == "model" {
                "auto-accept"
            } else {
                "adjudication"
            },
            value: answer_text(&r.value),
            details: r.note.clone().unwrap_or_default(),
        };
        (r.created_at.clone(), row)
    }));
    history.sort_by(|a, b| a.0.cmp(&b.0));
    let current = item.current.as_ref().map(answer_text);
    html(ItemPage {
        nav: me.nav(),
        project_name: project.name,
        current,
        history: history.into_iter().map(|(_, h)| h).collect(),
        item,
        responses,
        votes,
    })
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Option<Nav>,
    csrf: String,
    users: Vec<User>,
    new_token: Option<(String, String)>,
    error: Option<String>,
}

async fn users_page(
    me: &PageUser,
    state: &AppState,
    new_token: Option<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, UiError> {
    me.require_admin()?;
    let list = state.read(users::list).await?;
    html(UsersPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        users: list,
        new_token,
        error,
    })
}

pub async fn users(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    users_page(&me, &state, None, None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    csrf: String,
    name: String,
    role: Role,
    password: String,
}

pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<NewUserForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let actor = me.caller.actor();
    let f = form.into_inner();
    match state
        .write(move |tx| users::create(tx, &actor, &f.name, f.role, &f.password))
        .await
        .map_err(crate::web::error::ApiError::from)
    {
        Ok(_) => Ok(redirect("/users")),
        Err(e) if e.status().is_client_error() => {
            users_page(&me, &state, None, Some(e.message)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn create_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let (id, actor) = (id.into_inner(), me.caller.actor());
    let (name, token) = state
        .write(move |tx| {
            let name = users::get(tx, id)?.name;
            Ok((name, users::create_token(tx, &actor, id)?))
        })
        .await?;
    users_page(&me, &state, Some((name, token)), None).await
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    entries: Vec<Entry>,
    next: Option<i64>,
    target: Option<String>,
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    q: web::Query<AfterQuery>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    me.require_admin()?;
    let q = q.into_inner();
    let (after, target) = (q.after, q.target.clone());
    let page = state
        .read(move |c| audit::list(c, after, 100, target.as_deref()))
        .await?;
    html(AuditPage {
        nav: me.nav(),
        entries: page.items,
        next: page.next,
        target: q.target,
    })
}

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
