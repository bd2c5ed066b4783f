//! An item's page: its text and everything said about it, oldest first.
use super::{html, Nav, PageUser, UiError};
use crate::domain::TaskKind;
use crate::store::annotations::Annotation;
use crate::store::item_detail::{self, Item};
use crate::store::predictions::Prediction;
use crate::store::projects;
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

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
    /// The nearest items by stored embedding, or why there are none.
    similar: Result<Vec<crate::app::similar::Neighbour>, String>,
}

/// Neighbours shown on an item's page.
const SIMILAR_ON_PAGE: usize = 10;

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
    // The page shows without its neighbours rather than fail over them.
    // Preference items show their responses instead.
    let similar = match responses.is_empty() {
        true => state
            .similar_to_item(me.caller.user.clone(), item.project_id, id, SIMILAR_ON_PAGE)
            .await
            .map(|s| s.items)
            .map_err(|e| e.to_string()),
        false => Ok(Vec::new()),
    };
    html(ItemPage {
        similar,
        nav: me.nav(),
        project_name: project.name,
        current,
        history: history.into_iter().map(|(_, h)| h).collect(),
        item,
        responses,
        votes,
    })
}
