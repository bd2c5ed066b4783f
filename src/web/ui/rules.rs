//! The rules page: a project's labeling functions with their figures, the last apply, and (for
//! admins) the editor with its live preview and the apply form. The table is drawn here;
//! `rules.js` talks to the JSON API and swaps in this page's table after a change.
use super::{html, Nav, PageUser, UiError};
use crate::app::rules::{RuleRow, RulesTable};
use crate::domain::TaskKind;
use crate::rules::Matcher;
use crate::web::AppState;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::Value;

/// Characters of a rule's terms or pattern the table shows.
const SUMMARY_CHARS: usize = 80;

/// A share as a percentage, or "—" when its base is empty.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |v| format!("{:.1}%", v * 100.0))
}

/// A short reading of what a rule matches, for the table.
fn summary(m: &Matcher) -> String {
    let s = match m {
        Matcher::Keywords { terms, .. } => terms.join(", "),
        Matcher::Regex { pattern, .. } => pattern.clone(),
        Matcher::Lookup {
            file_name, terms, ..
        } => format!("{file_name} ({} terms)", terms.len()),
        Matcher::Similar {
            examples,
            threshold,
        } => format!("cosine ≥ {threshold} to {}", examples.join(", ")),
    };
    match s.chars().count() > SUMMARY_CHARS {
        true => s.chars().take(SUMMARY_CHARS).chain(['…']).collect(),
        false => s,
    }
}

/// One table row, its shares formatted.
struct RuleView {
    name: String,
    kind: &'static str,
    label: String,
    summary: String,
    coverage: String,
    hits: u64,
    overlaps: u64,
    conflicts: u64,
    model_agreement: String,
    agrees_with_model: u64,
    with_model: u64,
    accuracy: String,
    correct: u64,
    annotated: u64,
    version: i64,
    author: String,
    created_at: String,
    /// The day of `created_at`, which the table shows.
    created_on: String,
}

impl From<&RuleRow> for RuleView {
    fn from(r: &RuleRow) -> Self {
        let (spec, f) = (&r.rule.spec, &r.figures);
        RuleView {
            name: spec.name.clone(),
            kind: spec.matcher.kind(),
            label: spec.label.clone(),
            summary: summary(&spec.matcher),
            coverage: pct(r.coverage),
            hits: f.hits,
            overlaps: f.overlaps,
            conflicts: f.conflicts,
            model_agreement: pct(r.model_agreement),
            agrees_with_model: f.agrees_with_model,
            with_model: f.with_model,
            accuracy: pct(r.accuracy),
            correct: f.correct,
            annotated: f.annotated,
            version: r.rule.version,
            author: r.rule.author.clone().unwrap_or_else(|| "—".into()),
            created_at: r.rule.created_at.clone(),
            created_on: r.rule.created_at.chars().take(10).collect(),
        }
    }
}

struct VoterView {
    name: String,
    kind: String,
    votes: u64,
    accuracy: String,
}

/// What the last apply job recorded (its params, written by the job).
struct AppliedView {
    job_id: i64,
    method: String,
    predicted: u64,
    items: u64,
    model_id: String,
    /// The apply was of the rules as they are now.
    current: bool,
    voters: Vec<VoterView>,
}

fn text_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

fn applied_view(v: &Value, rules_hash: &str) -> AppliedView {
    let voters = v["voters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|voter| VoterView {
                    name: text_of(voter, "name"),
                    kind: text_of(voter, "kind"),
                    votes: voter["votes"].as_u64().unwrap_or(0),
                    accuracy: pct(voter["accuracy"].as_f64()),
                })
                .collect()
        })
        .unwrap_or_default();
    let method = match v["method"].as_str() {
        Some("majority") => "majority vote".to_string(),
        Some("label_model") => "label model".to_string(),
        other => other.unwrap_or("—").to_string(),
    };
    AppliedView {
        job_id: v["job_id"].as_i64().unwrap_or(0),
        method,
        predicted: v["predicted"].as_u64().unwrap_or(0),
        items: v["items"].as_u64().unwrap_or(0),
        model_id: text_of(v, "model_id"),
        current: v["rules_hash"].as_str() == Some(rules_hash),
        voters,
    }
}

/// The set's own figures and rows, ready to draw.
struct TableView {
    items: u64,
    covered: u64,
    coverage: String,
    conflicted: u64,
    annotated: u64,
    annotated_covered: u64,
    rules: Vec<RuleView>,
    applied: Option<AppliedView>,
}

impl From<&RulesTable> for TableView {
    fn from(t: &RulesTable) -> Self {
        TableView {
            items: t.items,
            covered: t.covered,
            coverage: pct(t.coverage),
            conflicted: t.conflicted,
            annotated: t.annotated,
            annotated_covered: t.annotated_covered,
            rules: t.rules.iter().map(RuleView::from).collect(),
            applied: t.applied.as_ref().map(|a| applied_view(a, &t.rules_hash)),
        }
    }
}

#[derive(Template)]
#[template(path = "rules.html")]
struct RulesPage {
    nav: Option<Nav>,
    csrf: String,
    is_admin: bool,
    project_id: i64,
    project_name: String,
    task: &'static str,
    labels: Vec<String>,
    /// None: the project's task has no rules page.
    t: Option<TableView>,
}

pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, UiError> {
    let me = PageUser::from(&req, &state, &session).await?;
    let p = me.project(&state, id.into_inner()).await?;
    let t = match p.task {
        TaskKind::Classification | TaskKind::Ner => {
            Some(TableView::from(&state.rules_table(p.id).await?))
        }
        _ => None,
    };
    html(RulesPage {
        nav: me.nav(),
        csrf: me.csrf.clone(),
        is_admin: me.caller.user.is_admin(),
        project_id: p.id,
        project_name: p.name,
        task: p.task.as_str(),
        labels: p.labels,
        t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_without_a_base_read_as_a_dash() {
        assert_eq!(pct(None), "—");
        assert_eq!(pct(Some(2.0 / 3.0)), "66.7%");
    }

    #[test]
    fn long_summaries_are_cut_on_characters() {
        let m = Matcher::Regex {
            pattern: "é".repeat(100),
            case_sensitive: false,
        };
        let s = summary(&m);
        assert_eq!(s.chars().count(), SUMMARY_CHARS + 1);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn the_last_apply_is_current_only_for_the_same_rules() {
        let v = serde_json::json!({"job_id": 4, "method": "majority", "predicted": 12, "items": 30,
            "model_id": "rules@ab/majority", "rules_hash": "ab",
            "voters": [{"name": "r", "kind": "rule", "votes": 12, "accuracy": null}]});
        let a = applied_view(&v, "ab");
        assert!(a.current && a.method == "majority vote" && a.predicted == 12);
        assert_eq!(a.voters[0].accuracy, "—");
        assert!(!applied_view(&v, "cd").current);
    }
}
