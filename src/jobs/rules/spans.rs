//! Rules in an NER project: each keyword, lookup or pattern rule proposes spans of its type,
//! like a gazetteer. Measured span by span (`evaluate_spans`), and applied (`run`) by laying the
//! rules' spans over the language model's: every proposal competes by its confidence (a rule's
//! precision against people's answers, smoothed; the model's own), the surest first, and no two
//! kept spans overlap. The sentence's prediction keeps the model's spans beneath it
//! (`lm_entities`) and which rule proposed what (`votes`).
use super::{label_index, scan, Example, Sample, Scope, PAGE};
use crate::domain::Project;
use crate::jobs::task::{entities_row, RunError};
use crate::rules::matcher::Scratch;
use crate::rules::{Analysis, RuleSet, SpanMatch};
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::predictions::{self, NewPrediction, Provenance};
use crate::store::rules::{ModelSpan, ScanRow, Wants, MODEL_PREFIX};
use crate::store::{learning, Store, StoreError};
use crate::tasks::ner::Entity;
use serde_json::json;
use std::collections::HashMap;

/// (start, end, type index) of a span.
type Triple = (usize, usize, usize);

fn triples(spans: &[ModelSpan], index: &HashMap<&str, usize>) -> Vec<Triple> {
    spans
        .iter()
        .filter_map(|s| index.get(s.label.as_str()).map(|&l| (s.start, s.end, l)))
        .collect()
}

/// What people marked in each answered sentence (none: the sentence has no entity).
fn human_spans(store: &Store, project: &Project) -> Result<HashMap<i64, Vec<Triple>>, StoreError> {
    let (answers, _) = store.read(|c| learning::human_spans(c, project.id))?;
    let index = label_index(&project.labels);
    Ok(answers
        .into_iter()
        .map(|(item, spans)| {
            let t = spans
                .iter()
                .filter_map(|s| index.get(s.label.as_str()).map(|&l| (s.start, s.end, l)))
                .collect();
            (item, t)
        })
        .collect())
}

pub(super) fn evaluate_spans(
    store: &Store,
    project: &Project,
    set: &RuleSet,
    scope: &Scope,
) -> Result<(Analysis, Vec<Example>), StoreError> {
    let humans = human_spans(store, project)?;
    let index = label_index(&project.labels);
    let mut analysis = Analysis::new(set.len());
    let mut examples = Vec::new();
    let wants = Wants {
        embeddings: false,
        lm_features: None,
        sample_every: scope.sample_every,
        model_spans: true,
    };
    let label_of = |r: usize| set.label_of(r);
    scan(store, project.id, &wants, |page| {
        for (row, proposed) in page.iter().zip(spans_on(set, page)) {
            let model = row.model_spans.as_deref().map(|m| triples(m, &index));
            let human = humans.get(&row.item_id);
            analysis.add_spans(
                &proposed,
                &label_of,
                model.as_deref(),
                human.map(Vec::as_slice),
            );
            let Some((rule, sample, limit)) = scope.examples else {
                continue;
            };
            if examples.len() >= limit {
                continue;
            }
            let mine: Vec<&SpanMatch> = proposed.iter().filter(|s| s.rule == rule).collect();
            let l = set.label_of(rule);
            let wanted = !mine.is_empty()
                && match sample {
                    Sample::Hits => true,
                    Sample::Disagreements => mine.iter().any(|s| {
                        let t = (s.start, s.end, l);
                        human.is_some_and(|h| !h.contains(&t))
                            || model.as_ref().is_some_and(|m| !m.contains(&t))
                            || proposed.iter().any(|o| {
                                o.rule != rule
                                    && set.label_of(o.rule) != l
                                    && o.start < s.end
                                    && s.start < o.end
                            })
                    }),
                };
            if wanted {
                examples.push(span_example(
                    set,
                    project,
                    row,
                    &proposed,
                    model.as_deref(),
                    human,
                ));
            }
        }
        Ok(!scope.done(examples.len()))
    })?;
    Ok((analysis, examples))
}

fn span_example(
    set: &RuleSet,
    project: &Project,
    row: &ScanRow,
    proposed: &[SpanMatch],
    model: Option<&[Triple]>,
    human: Option<&Vec<Triple>>,
) -> Example {
    let chars: Vec<char> = row.text.chars().collect();
    let show = |(s, e, l): Triple| {
        let text: String = chars
            .get(s..e)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        format!("{}: {text}", project.labels[l])
    };
    let list = |spans: &[Triple]| {
        spans
            .iter()
            .map(|&t| show(t))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Example {
        item_id: row.item_id,
        ext_id: row.ext_id.clone(),
        text: row.text.clone(),
        votes: proposed
            .iter()
            .map(|s| {
                (
                    set.rules()[s.rule].name().to_string(),
                    show((s.start, s.end, set.label_of(s.rule))),
                )
            })
            .collect(),
        model: model.map(list),
        human: human.map(|h| list(h)),
    }
}

/// The spans the rules propose in each row of a page, matched on every core.
fn spans_on(set: &RuleSet, page: &[ScanRow]) -> Vec<Vec<SpanMatch>> {
    use rayon::prelude::*;
    page.par_iter()
        .map_init(Scratch::default, |scratch, row| {
            set.spans(&row.text, scratch)
        })
        .collect()
}

/// A span competing for a place in the sentence's prediction.
struct Proposal {
    start: usize,
    end: usize,
    label: usize,
    confidence: f64,
}

/// The surest proposals first, each kept unless it overlaps one kept already; in text order.
fn resolve(mut proposals: Vec<Proposal>) -> Vec<Proposal> {
    proposals.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<Proposal> = Vec::new();
    for p in proposals {
        if !kept.iter().any(|k| p.start < k.end && k.start < p.end) {
            kept.push(p);
        }
    }
    kept.sort_by_key(|p| (p.start, p.end));
    kept
}

pub(super) fn run(store: &Store, job: &Job, project: &Project) -> Result<(), RunError> {
    let set = super::compile(store, project)?;
    if set.is_empty() {
        return Err(RunError::Model("the project has no rules to apply".into()));
    }
    let items = store.read(|c| crate::store::items::count(c, project.id))?;
    let model_id = format!("{MODEL_PREFIX}{}/spans+model", set.hash());
    store.write(|tx| jobs::start_run(tx, job.id, &model_id, "", items, 0))?;
    // Each rule's precision against people first: it is the confidence of the rule's spans.
    let scope = Scope {
        sample_every: 1,
        examples: None,
        examples_only: false,
    };
    let (analysis, _) = evaluate_spans(store, project, &set, &scope)?;
    let precision: Vec<f64> = analysis
        .rules
        .iter()
        .map(|f| (f.correct as f64 + 1.0) / (f.annotated as f64 + 2.0))
        .collect();
    let index = label_index(&project.labels);
    let wants = Wants {
        embeddings: false,
        lm_features: None,
        sample_every: 1,
        model_spans: true,
    };
    let mut rows: Vec<NewPrediction> = Vec::new();
    let mut cancelled = false;
    scan(store, project.id, &wants, |page| {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            cancelled = true;
            return Ok(false);
        }
        for (row, proposed) in page.iter().zip(spans_on(&set, page)) {
            if proposed.is_empty() || row.settled {
                continue;
            }
            rows.push(sentence_row(
                &set, project, row, &proposed, &precision, &index,
            ));
        }
        store.write(|tx| jobs::add_done(tx, job.id, page.len() as i64))?;
        Ok(true)
    })?;
    if cancelled {
        return Ok(());
    }
    let summary = json!({
        "method": "spans",
        "rules_hash": set.hash(),
        "model_id": model_id,
        "items": analysis.items,
        "predicted": rows.len(),
        "voters": set.rules().iter().zip(&analysis.rules).zip(&precision).map(|((r, f), p)| json!({
            "name": r.name(), "kind": "rule", "votes": f.hits, "accuracy": p,
        })).collect::<Vec<_>>(),
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.item_id).collect();
    let write = |tx: &rusqlite::Transaction, by: &Provenance| {
        rows.chunks(PAGE)
            .try_for_each(|page| predictions::insert(tx, by, project.queue_order, page))
    };
    super::commit(store, job, project, &model_id, &ids, write, &summary)?;
    Ok(())
}

fn sentence_row(
    set: &RuleSet,
    project: &Project,
    row: &ScanRow,
    proposed: &[SpanMatch],
    precision: &[f64],
    index: &HashMap<&str, usize>,
) -> NewPrediction {
    let model = row.model_spans.clone().unwrap_or_default();
    let mut proposals: Vec<Proposal> = proposed
        .iter()
        .map(|s| Proposal {
            start: s.start,
            end: s.end,
            label: set.label_of(s.rule),
            confidence: precision[s.rule],
        })
        .collect();
    proposals.extend(model.iter().filter_map(|m| {
        index.get(m.label.as_str()).map(|&label| Proposal {
            start: m.start,
            end: m.end,
            label,
            confidence: m.confidence.unwrap_or(0.5),
        })
    }));
    let chars: Vec<char> = row.text.chars().collect();
    let entities: Vec<Entity> = resolve(proposals)
        .into_iter()
        .map(|p| Entity {
            start: p.start,
            end: p.end,
            label: project.labels[p.label].clone(),
            text: chars
                .get(p.start..p.end)
                .map(|c| c.iter().collect())
                .unwrap_or_default(),
            confidence: p.confidence,
        })
        .collect();
    let mut out = entities_row(row.item_id, &entities, false);
    let mut votes: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for s in proposed {
        let name = set.rules()[s.rule].name().to_string();
        let entry = votes.entry(name).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(json!([s.start, s.end]));
        }
    }
    out.output
        .insert("votes".into(), serde_json::Value::Object(votes));
    out.output.insert(
        "lm_entities".into(),
        json!(model
            .iter()
            .map(|m| json!({"start": m.start, "end": m.end, "label": m.label}))
            .collect::<Vec<_>>()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surest_proposal_wins_an_overlap() {
        let p = |start, end, label, confidence| Proposal {
            start,
            end,
            label,
            confidence,
        };
        let kept = resolve(vec![
            p(0, 8, 0, 0.9),
            p(4, 8, 1, 0.95),
            p(10, 14, 0, 0.6),
            p(0, 3, 1, 0.5),
        ]);
        let got: Vec<(usize, usize, usize)> =
            kept.iter().map(|k| (k.start, k.end, k.label)).collect();
        assert_eq!(got, [(0, 3, 1), (4, 8, 1), (10, 14, 0)]);
    }
}
