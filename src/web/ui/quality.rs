//! The quality pages: a project's dashboard (charts drawn on the server) and the reviewer's
//! adjudication page.
use super::charts::{self, AccuracyPoint, Bar, ReliabilityBin, Series};
use super::{html, redirect, Nav, PageUser, UiError};
use crate::app::quality::{stats_of, AutoAccept, Stats};
use crate::domain::TaskKind;
use crate::quality::report::MIN_THRESHOLD_SUPPORT;
use crate::store::learning::{self, CurvePoint};
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

/// The dashboard's charts, as SVG markup.
struct Charts {
    progress: String,
    throughput: String,
    labels: String,
    agreement: String,
    gold: String,
    reliability: String,
    confusion: Option<String>,
    /// Classification projects: online accuracy per learner.
    learning: Option<String>,
}

fn share_note(v: Option<f64>, n: impl std::fmt::Display) -> String {
    match v {
        Some(v) => format!("{v:.2} · n={n}"),
        None => format!("— · n={n}"),
    }
}

fn charts(s: &Stats, curve: &[CurvePoint]) -> Charts {
    let r = &s.report;
    let mut annotations = 0.0;
    let (mut done, mut items) = (Vec::new(), Vec::new());
    for p in &r.progress {
        annotations += p.annotations as f64;
        done.push((p.at_ms, annotations));
        items.push((p.at_ms, p.items_cumulative as f64));
    }
    let progress = charts::lines(
        "Progress",
        &[
            Series {
                name: "annotations".into(),
                points: done,
            },
            Series {
                name: "items annotated".into(),
                points: items,
            },
        ],
        "total",
    );
    let throughput = charts::bars(
        "Annotations per annotator",
        &r.annotators
            .iter()
            .map(|a| Bar {
                label: a.user.clone(),
                value: a.annotations as f64,
                note: match a.per_hour {
                    Some(h) => format!("{} · {h:.0}/h", a.annotations),
                    None => a.annotations.to_string(),
                },
            })
            .collect::<Vec<_>>(),
        None,
    );
    let labels = charts::bars(
        "Label distribution",
        &r.label_distribution
            .iter()
            .take(30)
            .map(|l| Bar {
                label: l.label.clone(),
                value: l.count as f64,
                note: l.count.to_string(),
            })
            .collect::<Vec<_>>(),
        None,
    );
    let agreement = charts::bars(
        "Agreement per label (Krippendorff's alpha, this label or not)",
        &r.agreement
            .per_label
            .iter()
            .filter(|l| l.alpha.is_some())
            .take(30)
            .map(|l| Bar {
                label: l.label.clone(),
                value: l.alpha.unwrap_or(0.0),
                note: l.alpha.map_or("—".into(), |a| format!("{a:.2}")),
            })
            .collect::<Vec<_>>(),
        Some(1.0),
    );
    let gold = charts::bars(
        "Gold accuracy per annotator",
        &r.annotators
            .iter()
            .filter(|a| a.gold.answered > 0)
            .map(|a| Bar {
                label: a.user.clone(),
                value: a.gold.accuracy.unwrap_or(0.0),
                note: share_note(a.gold.accuracy, a.gold.answered),
            })
            .collect::<Vec<_>>(),
        Some(1.0),
    );
    let bins: &[ReliabilityBin] = r.model.as_ref().map_or(&[], |m| &m.reliability);
    let reliability = charts::reliability(
        "Model reliability on human-checked items",
        bins,
        r.model.as_ref().map(|m| m.ece),
    );
    let confusion = r
        .model
        .as_ref()
        .and_then(|m| m.confusion.as_ref())
        .map(|c| {
            charts::confusion(
                "Confusion: people (rows) vs model (columns)",
                &s.project.labels,
                &s.project.labels,
                c,
            )
        });
    let learning = s.project.task.learns().then(|| {
        let (measure, trained_on) = match s.project.task {
            TaskKind::Ner => (learning::Measure::SpanF1, "answered sentences"),
            _ => (learning::Measure::Accuracy, "human labels"),
        };
        charts::learning_curve(
            &format!("Online {}", measure.name()),
            trained_on,
            measure.name(),
            &curve
                .iter()
                .map(|p| AccuracyPoint {
                    labels: p.labels,
                    answers: p.answers,
                    shown: p.shown,
                    lm: p.lm,
                })
                .collect::<Vec<_>>(),
        )
    });
    Charts {
        progress,
        throughput,
        labels,
        agreement,
        gold,
        reliability,
        confusion,
        learning,
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    csrf: String,
    is_admin: bool,
    s: Stats,
    c: Charts,
    /// The points behind the online-accuracy chart (classification projects).
    curve: Vec<CurvePoint>,
    ner: bool,
    min_support: usize,
}

pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let (id, user) = (id.into_inner(), me.caller.user.clone());
    let (s, curve) = state
        .read(move |c| {
            let s = stats_of(c, &user, id)?;
            let curve = match s.project.task.learns() {
                true => learning::curve(c, id)?,
                false => Vec::new(),
            };
            Ok((s, curve))
        })
        .await?;
    // String building only: a few milliseconds even for a large label set.
    let c = charts(&s, &curve);
    html(DashboardPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        is_admin: me.caller.user.is_admin(),
        ner: s.project.task == TaskKind::Ner,
        min_support: MIN_THRESHOLD_SUPPORT,
        c,
        s,
        curve,
    })
}

#[derive(Deserialize)]
pub struct AutoAcceptForm {
    csrf: String,
    enabled: bool,
}

/// The dashboard's auto-accept switch: on at the threshold the report computed, or off.
pub async fn auto_accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<AutoAcceptForm>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::admin_post(&req, &state, &session, &form.csrf).await?;
    let id = id.into_inner();
    let how = match form.enabled {
        true => AutoAccept::Computed,
        false => AutoAccept::Off,
    };
    state
        .set_auto_accept(me.caller.actor(), me.caller.user.clone(), id, how)
        .await?;
    Ok(redirect(&format!("/projects/{id}/dashboard")))
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Option<Nav>,
    csrf: String,
    project_id: i64,
    project_name: String,
    task: &'static str,
    labels_json: String,
}

/// The adjudication page; the items come from the JSON API (`review.js`).
pub async fn review(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    if !me.caller.user.can_review() {
        return Err(ApiError::forbidden("adjudication needs the reviewer or admin role").into());
    }
    let p = me.project(&state, id.into_inner()).await?;
    html(ReviewPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        project_id: p.id,
        task: p.task.as_str(),
        labels_json: serde_json::to_string(&p.labels).unwrap_or_default(),
        project_name: p.name,
    })
}
