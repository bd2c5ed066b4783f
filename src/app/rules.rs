//! The rules of a project as the API and the pages use them: saving (checked against the
//! project's labels, compiled once so a bad pattern or a missing example is refused before it is
//! stored), the rules table with every rule's figures, the live preview of a rule being typed,
//! samples of a rule's hits and disagreements, and queueing the apply job.
use super::{App, AppError};
use crate::domain::Project;
use crate::jobs::rules::{self as apply, Example, Method, Sample, Scope};
use crate::rules::{Analysis, RuleFigures, RuleSet, RuleSpec};
use crate::store::jobs::Job;
use crate::store::rules::{self as stored, RuleVersion, Save, StoredRule};
use crate::store::{projects, Actor, Store, StoreError};
use serde::Serialize;

/// Items a live preview reads at most (beside every answered one): it answers while the rule is
/// typed, so a large project is sampled.
pub const PREVIEW_SAMPLE: u32 = 20_000;
/// Examples a preview shows.
const PREVIEW_EXAMPLES: usize = 8;

/// One rule with its figures over the project.
#[derive(Debug, Serialize)]
pub struct RuleRow {
    #[serde(flatten)]
    pub rule: StoredRule,
    #[serde(flatten)]
    pub figures: RuleFigures,
    pub coverage: Option<f64>,
    pub model_agreement: Option<f64>,
    pub accuracy: Option<f64>,
}

/// The rules table: every current rule with its figures, the set's own, and what the last
/// apply found.
#[derive(Debug, Serialize)]
pub struct RulesTable {
    pub items: u64,
    pub covered: u64,
    pub coverage: Option<f64>,
    pub conflicted: u64,
    pub annotated: u64,
    pub annotated_covered: u64,
    /// The rule set's hash; the last apply was of this set when `applied.rules_hash` equals it.
    pub rules_hash: String,
    pub rules: Vec<RuleRow>,
    pub applied: Option<serde_json::Value>,
}

/// A rule being typed, measured as it would be.
#[derive(Debug, Serialize)]
pub struct Preview {
    /// Items read, and the project's size: a large project is sampled.
    pub sampled: u64,
    pub items: u64,
    #[serde(flatten)]
    pub figures: RuleFigures,
    pub coverage: Option<f64>,
    pub model_agreement: Option<f64>,
    pub accuracy: Option<f64>,
    pub examples: Vec<PreviewExample>,
    /// Stored rules the figures leave out because they no longer fit the project (their
    /// label was removed, say), each with why: an overlap or conflict with them is not counted.
    pub left_out: Vec<LeftOut>,
}

#[derive(Debug, Serialize)]
pub struct LeftOut {
    pub name: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct PreviewExample {
    #[serde(flatten)]
    pub example: Example,
    /// Where the rule matched, `[start, end)` in Unicode scalar values (none for similarity).
    pub spans: Vec<[usize; 2]>,
}

fn figures_row(f: RuleFigures, items: u64) -> (Option<f64>, Option<f64>, Option<f64>, RuleFigures) {
    (f.coverage(items), f.model_agreement(), f.accuracy(), f)
}

fn table(
    project_rules: Vec<StoredRule>,
    set: &RuleSet,
    a: Analysis,
    applied: Option<serde_json::Value>,
) -> RulesTable {
    // The set is compiled from the rules in the store's order, so figures line up by position.
    let rules = project_rules
        .into_iter()
        .zip(a.rules)
        .map(|(rule, f)| {
            let (coverage, model_agreement, accuracy, figures) = figures_row(f, a.items);
            RuleRow {
                rule,
                figures,
                coverage,
                model_agreement,
                accuracy,
            }
        })
        .collect();
    RulesTable {
        items: a.items,
        covered: a.covered,
        coverage: (a.items > 0).then(|| a.covered as f64 / a.items as f64),
        conflicted: a.conflicted,
        annotated: a.annotated,
        annotated_covered: a.annotated_covered,
        rules_hash: set.hash().to_string(),
        rules,
        applied,
    }
}

/// The project's rules table, computed over every item.
pub fn rules_table(store: &Store, project_id: i64) -> Result<RulesTable, StoreError> {
    let project = store.read(|c| projects::get(c, project_id))?;
    // One read of the rules: the table lines their rows up with the figures by position.
    let current = store.read(|c| stored::current(c, project_id))?;
    let set = apply::compile_rules(store, &project, apply::checked(&project, &current)?)?;
    let scope = Scope {
        sample_every: 1,
        examples: None,
        examples_only: false,
    };
    let (analysis, _) = apply::evaluate(store, &project, &set, &scope)?;
    let applied = store
        .read(|c| stored::last_applied(c, project_id))?
        .map(|(job, mut p)| {
            p["job_id"] = serde_json::json!(job);
            p
        });
    Ok(table(current, &set, analysis, applied))
}

/// `spec` measured beside the project's other rules (a rule of the same name is replaced), on a
/// sample of at most `PREVIEW_SAMPLE` items plus every answered one.
pub fn preview(store: &Store, project_id: i64, spec: RuleSpec) -> Result<Preview, StoreError> {
    let project = store.read(|c| projects::get(c, project_id))?;
    let rule = spec.validated(project.task, &project.labels)?;
    let mut rules = Vec::new();
    let mut left_out = Vec::new();
    for r in store.read(|c| stored::current(c, project_id))? {
        if r.spec.name == rule.name() {
            continue;
        }
        let name = r.spec.name.clone();
        match r.spec.validated(project.task, &project.labels) {
            Ok(valid) => rules.push(valid),
            Err(e) => left_out.push(LeftOut {
                name,
                field: e.field,
                message: e.message,
            }),
        }
    }
    rules.push(rule.clone());
    let at = rules.len() - 1;
    let set = apply::compile_rules(store, &project, rules)?;
    let alone = apply::compile_rules(store, &project, vec![rule])?;
    let items = store.read(|c| crate::store::items::count(c, project_id))? as u64;
    let every = (items / u64::from(PREVIEW_SAMPLE)).max(1) as u32;
    let scope = Scope {
        sample_every: every,
        examples: Some((at, Sample::Hits, PREVIEW_EXAMPLES)),
        examples_only: false,
    };
    let (mut analysis, examples) = apply::evaluate(store, &project, &set, &scope)?;
    let mut scratch = Default::default();
    let examples = examples
        .into_iter()
        .map(|example| {
            let spans = alone
                .spans(&example.text, &mut scratch)
                .into_iter()
                .map(|s| [s.start, s.end])
                .collect();
            PreviewExample { example, spans }
        })
        .collect();
    let f = analysis.rules.swap_remove(at);
    let (coverage, model_agreement, accuracy, figures) = figures_row(f, analysis.items);
    Ok(Preview {
        sampled: analysis.items,
        items,
        figures,
        coverage,
        model_agreement,
        accuracy,
        examples,
        left_out,
    })
}

/// Checks a rule against the project and compiles it (a similarity rule's examples must have
/// embeddings), so what is stored can be applied.
fn checked(
    store: &Store,
    project: &Project,
    spec: RuleSpec,
) -> Result<crate::rules::Rule, StoreError> {
    let rule = spec.validated(project.task, &project.labels)?;
    apply::compile_rules(store, project, vec![rule.clone()])?;
    Ok(rule)
}

impl App {
    pub async fn rules(&self, project_id: i64) -> Result<Vec<StoredRule>, AppError> {
        self.read(move |c| {
            projects::get(c, project_id)?;
            stored::current(c, project_id)
        })
        .await
    }

    pub async fn rule_history(
        &self,
        project_id: i64,
        name: String,
    ) -> Result<Vec<RuleVersion>, AppError> {
        self.read(move |c| stored::history(c, project_id, &name))
            .await
    }

    pub async fn save_rule(
        &self,
        actor: Actor,
        project_id: i64,
        spec: RuleSpec,
        how: Save,
    ) -> Result<StoredRule, AppError> {
        let store = self.store.clone();
        let rule = super::blocking(move || {
            let project = store.read(|c| projects::get(c, project_id))?;
            checked(&store, &project, spec)
        })
        .await??;
        self.write(move |tx| stored::save(tx, &actor, project_id, &rule, how))
            .await
    }

    pub async fn delete_rule(
        &self,
        actor: Actor,
        project_id: i64,
        name: String,
    ) -> Result<(), AppError> {
        self.write(move |tx| stored::delete(tx, &actor, project_id, &name))
            .await
    }

    pub async fn rules_table(&self, project_id: i64) -> Result<RulesTable, AppError> {
        let store = self.store.clone();
        Ok(super::blocking(move || rules_table(&store, project_id)).await??)
    }

    pub async fn preview_rule(&self, project_id: i64, spec: RuleSpec) -> Result<Preview, AppError> {
        let store = self.store.clone();
        Ok(super::blocking(move || preview(&store, project_id, spec)).await??)
    }

    /// Up to `limit` of the rule's hits (or of its disagreements), in item order.
    pub async fn rule_examples(
        &self,
        project_id: i64,
        name: String,
        sample: Sample,
        limit: usize,
    ) -> Result<Vec<Example>, AppError> {
        let store = self.store.clone();
        Ok(super::blocking(move || {
            let project = store.read(|c| projects::get(c, project_id))?;
            let set = apply::compile(&store, &project)?;
            let at = set
                .rules()
                .iter()
                .position(|r| r.name() == name)
                .ok_or_else(|| StoreError::NotFound(format!("rule {name:?}")))?;
            let scope = Scope {
                sample_every: 1,
                examples: Some((at, sample, limit)),
                examples_only: true,
            };
            apply::evaluate(&store, &project, &set, &scope).map(|(_, e)| e)
        })
        .await??)
    }

    /// Queues applying the project's rules, combined by `method`.
    pub async fn apply_rules(
        &self,
        actor: Actor,
        project_id: i64,
        method: Method,
    ) -> Result<Job, AppError> {
        let store = self.store.clone();
        super::blocking(move || -> Result<(), StoreError> {
            let project = store.read(|c| projects::get(c, project_id))?;
            if !matches!(
                project.task,
                crate::domain::TaskKind::Classification | crate::domain::TaskKind::Ner
            ) {
                return Err(StoreError::invalid(
                    "project",
                    "rules label classification and NER projects",
                ));
            }
            if apply::compile(&store, &project)?.is_empty() {
                return Err(StoreError::invalid(
                    "rules",
                    "the project has no rules to apply",
                ));
            }
            Ok(())
        })
        .await??;
        let params = serde_json::json!({ "method": method });
        let job = self
            .write(move |tx| stored::queue_apply(tx, &actor, project_id, &params))
            .await?;
        self.jobs.wake();
        Ok(job)
    }
}
