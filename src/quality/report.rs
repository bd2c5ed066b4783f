//! A project's quality report: progress, throughput, gold accuracy, agreement, the model
//! against people, the auto-accept threshold and disagreement hotspots. Pure: it works on what
//! `store::quality` read, so the API and the dashboard show the same figures.
use super::agreement::{self, krippendorff_alpha_nominal, pairwise_cohen, token_labels};
use crate::domain::consensus::{self, consensus, same};
use crate::domain::{Answer, Span};
use crate::domain::{Project, TaskKind};
use crate::store::quality::{Activity, ItemRecord};
use crate::tasks::metrics;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Human-checked items needed above a threshold before it is offered for auto-accept.
pub const MIN_THRESHOLD_SUPPORT: usize = 20;
/// Bins of the reliability diagram (and of the ECE).
const BINS: usize = 10;
const HOTSPOT_ITEMS: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub progress: Vec<ProgressPoint>,
    pub annotators: Vec<AnnotatorStats>,
    pub label_distribution: Vec<LabelCount>,
    pub agreement: Agreement,
    pub model: Option<ModelVsHuman>,
    pub hotspots: Hotspots,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProgressPoint {
    /// Start of the bucket (an hour or a day), ms since the epoch.
    pub at_ms: i64,
    pub annotations: u64,
    /// Items with at least one annotation so far.
    pub items_cumulative: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorStats {
    pub user: String,
    pub annotations: u64,
    pub median_seconds: Option<f64>,
    /// Annotations per hour at the median pace.
    pub per_hour: Option<f64>,
    pub gold: GoldScore,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GoldScore {
    pub answered: u64,
    pub correct: u64,
    pub accuracy: Option<f64>,
    /// Per gold label (NER: per entity type of the gold spans): answered and correct.
    pub per_label: BTreeMap<String, (u64, u64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelCount {
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Agreement {
    /// Items with two or more annotators.
    pub items: usize,
    pub krippendorff_alpha: Option<f64>,
    /// Over the items with the most common number of annotators (Fleiss needs it constant).
    pub fleiss_kappa: Option<f64>,
    pub fleiss_items: usize,
    pub pairs: Vec<PairAgreement>,
    /// Alpha of "this label or not" (NER: over tokens, "this type or not").
    pub per_label: Vec<LabelAgreement>,
    /// NER: alpha over whitespace tokens labeled by their span's type (or O).
    pub token_alpha: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PairAgreement {
    pub a: String,
    pub b: String,
    pub items: usize,
    /// Classification: Cohen's kappa.
    pub cohen_kappa: Option<f64>,
    /// NER: exact-span F1 over the shared items (micro).
    pub span_f1: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelAgreement {
    pub label: String,
    pub alpha: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelVsHuman {
    /// Items with both a prediction and a human reference (adjudication, majority or gold).
    pub items: usize,
    /// Classification accuracy, or NER exact-span F1.
    pub score: f64,
    pub per_label: Vec<LabelScore>,
    /// Classification: rows are the human labels, columns the model's, in `labels` order.
    pub confusion: Option<Vec<Vec<u64>>>,
    pub reliability: Vec<ReliabilityBin>,
    pub ece: f64,
    pub threshold: Threshold,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelScore {
    pub label: String,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// One bar of the reliability diagram: the confidences in `(lo, hi]` (the first bin also
/// holds 0), binned as the ECE beside it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    pub confidence: f64,
    pub accuracy: f64,
}

/// The lowest confidence above which the model's answers on human-checked items are right at
/// least `target` of the time.
#[derive(Debug, Clone, Serialize)]
pub struct Threshold {
    pub target: f64,
    /// None when no confidence with enough support reaches the target.
    pub threshold: Option<f64>,
    pub precision: Option<f64>,
    /// Human-checked items at or above the threshold.
    pub support: usize,
    /// Their share of the human-checked items.
    pub coverage: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Hotspots {
    pub labels: Vec<ConfusedPair>,
    pub items: Vec<HotItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfusedPair {
    pub a: String,
    pub b: String,
    /// "annotators" or "model".
    pub between: &'static str,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct HotItem {
    pub id: i64,
    pub ext_id: String,
    pub text: String,
    pub reason: &'static str,
    /// Share of annotators who agree with the majority (0 without one).
    pub agreement: f64,
    pub model_confidence: Option<f64>,
}

/// The answer the model is judged against: a reviewer's adjudication, else a gold item's known
/// answer, else a majority of the annotators.
fn human_reference(item: &ItemRecord) -> Option<Answer> {
    if let Some(("adjudicated", a)) = item.resolution.as_ref().map(|(s, a)| (s.as_str(), a)) {
        return Some(a.clone());
    }
    if let Some(g) = &item.gold {
        return Some(g.clone());
    }
    let answers: Vec<Answer> = item.answers.iter().map(|a| a.value.clone()).collect();
    consensus(&answers).value
}

/// The label, or a review's decision (an instruction project's labels are its decisions).
fn label_of(a: &Answer) -> Option<&str> {
    match a {
        Answer::Label { label } => Some(label),
        Answer::Review { decision, .. } => Some(decision.as_str()),
        Answer::Entities { .. } => None,
    }
}

fn spans_of(a: &Answer) -> &[Span] {
    match a {
        Answer::Entities { entities } => entities,
        _ => &[],
    }
}

pub fn build(project: &Project, items: &[ItemRecord], activity: &[Activity]) -> Report {
    Report {
        progress: progress(activity),
        annotators: annotators(items, activity),
        label_distribution: label_distribution(project, items),
        agreement: agreement(project, items),
        model: model_vs_human(project, items),
        hotspots: hotspots(project, items),
    }
}

fn progress(activity: &[Activity]) -> Vec<ProgressPoint> {
    const HOUR: i64 = 3_600_000;
    let (Some(first), Some(last)) = (activity.first(), activity.last()) else {
        return Vec::new();
    };
    // Hours while a project is young, days after.
    let bucket = if last.at_ms - first.at_ms < 2 * 24 * HOUR {
        HOUR
    } else {
        24 * HOUR
    };
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<ProgressPoint> = Vec::new();
    for a in activity {
        let at = a.at_ms - a.at_ms.rem_euclid(bucket);
        if out.last().is_none_or(|p| p.at_ms != at) {
            let items = out.last().map_or(0, |p| p.items_cumulative);
            out.push(ProgressPoint {
                at_ms: at,
                annotations: 0,
                items_cumulative: items,
            });
        }
        if let Some(p) = out.last_mut() {
            p.annotations += 1;
            if seen.insert(a.item_id) {
                p.items_cumulative += 1;
            }
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn annotators(items: &[ItemRecord], activity: &[Activity]) -> Vec<AnnotatorStats> {
    let mut by_user: BTreeMap<&str, (u64, Vec<f64>)> = BTreeMap::new();
    for a in activity {
        let e = by_user.entry(&a.user).or_default();
        e.0 += 1;
        e.1.extend(a.seconds);
    }
    let mut gold: HashMap<&str, GoldScore> = HashMap::new();
    for item in items {
        let Some(g) = &item.gold else { continue };
        for a in &item.answers {
            let score = gold.entry(&a.user).or_default();
            let right = same(&a.value, g);
            score.answered += 1;
            score.correct += u64::from(right);
            let keys: Vec<String> = match g {
                Answer::Label { label } => vec![label.clone()],
                Answer::Review { decision, .. } => vec![decision.as_str().to_string()],
                Answer::Entities { entities } => {
                    let mut t: Vec<String> = entities.iter().map(|s| s.label.clone()).collect();
                    t.sort();
                    t.dedup();
                    t
                }
            };
            for k in keys {
                let e = score.per_label.entry(k).or_default();
                e.0 += 1;
                e.1 += u64::from(right);
            }
        }
    }
    by_user
        .into_iter()
        .map(|(user, (n, secs))| {
            let median_seconds = median(secs);
            let mut g = gold.remove(user).unwrap_or_default();
            g.accuracy = (g.answered > 0).then(|| g.correct as f64 / g.answered as f64);
            AnnotatorStats {
                user: user.to_string(),
                annotations: n,
                median_seconds,
                per_hour: median_seconds.filter(|s| *s > 0.0).map(|s| 3600.0 / s),
                gold: g,
            }
        })
        .collect()
}

/// Labels (NER: entity types) of the items' settled answers, most common first.
fn label_distribution(project: &Project, items: &[ItemRecord]) -> Vec<LabelCount> {
    let mut counts: HashMap<&str, u64> = project.labels.iter().map(|l| (l.as_str(), 0)).collect();
    let refs: Vec<Answer> = items
        .iter()
        .filter(|i| i.gold.is_none())
        .filter_map(human_reference)
        .collect();
    for r in &refs {
        match r {
            Answer::Label { label } => *counts.entry(label).or_default() += 1,
            Answer::Review { decision, .. } => *counts.entry(decision.as_str()).or_default() += 1,
            Answer::Entities { entities } => {
                for s in entities {
                    *counts.entry(&s.label).or_default() += 1;
                }
            }
        }
    }
    let mut out: Vec<LabelCount> = counts
        .into_iter()
        .map(|(label, count)| LabelCount {
            label: label.to_string(),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    out
}

fn agreement(project: &Project, items: &[ItemRecord]) -> Agreement {
    let multi: Vec<&ItemRecord> = items.iter().filter(|i| i.answers.len() >= 2).collect();
    let mut out = Agreement {
        items: multi.len(),
        ..Agreement::default()
    };
    if project.task == TaskKind::Ner {
        ner_agreement(project, &multi, &mut out);
        return out;
    }
    let units: Vec<Vec<Option<&str>>> = multi
        .iter()
        .map(|i| i.answers.iter().map(|a| label_of(&a.value)).collect())
        .collect();
    out.krippendorff_alpha = krippendorff_alpha_nominal(&units);
    // Fleiss' kappa over the items with the most common number of annotators.
    let mut sizes: HashMap<usize, usize> = HashMap::new();
    for i in &multi {
        *sizes.entry(i.answers.len()).or_default() += 1;
    }
    if let Some((&k, _)) = sizes.iter().max_by_key(|(k, n)| (**n, **k)) {
        let index: HashMap<&str, usize> = project
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let table: Vec<Vec<u32>> = multi
            .iter()
            .filter(|i| i.answers.len() == k)
            .map(|i| {
                let mut row = vec![0u32; project.labels.len()];
                for a in &i.answers {
                    if let Some(&c) = label_of(&a.value).and_then(|l| index.get(l)) {
                        row[c] += 1;
                    }
                }
                row
            })
            .collect();
        out.fleiss_items = table.len();
        out.fleiss_kappa = agreement::fleiss_kappa(&table);
    }
    let rows: Vec<(&str, i64, &str)> = multi
        .iter()
        .flat_map(|i| {
            i.answers
                .iter()
                .filter_map(move |a| Some((a.user.as_str(), i.id, label_of(&a.value)?)))
        })
        .collect();
    out.pairs = pairwise_cohen(&rows)
        .into_iter()
        .map(|((a, b), kappa, n)| PairAgreement {
            a: a.to_string(),
            b: b.to_string(),
            items: n,
            cohen_kappa: kappa,
            span_f1: None,
        })
        .collect();
    out.per_label = project
        .labels
        .iter()
        .map(|l| {
            let units: Vec<Vec<Option<bool>>> = units
                .iter()
                .map(|u| u.iter().map(|v| v.map(|v| v == l)).collect())
                .collect();
            LabelAgreement {
                label: l.clone(),
                alpha: krippendorff_alpha_nominal(&units),
            }
        })
        .collect();
    out
}

fn ner_agreement(project: &Project, multi: &[&ItemRecord], out: &mut Agreement) {
    // Token units across all items: each annotator's spans mapped onto whitespace tokens.
    let mut units: Vec<Vec<Option<String>>> = Vec::new();
    for i in multi {
        let per: Vec<Vec<String>> = i
            .answers
            .iter()
            .map(|a| {
                let spans: Vec<(usize, usize, &str)> = spans_of(&a.value)
                    .iter()
                    .map(|s| (s.start, s.end, s.label.as_str()))
                    .collect();
                token_labels(&i.text, &spans)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            })
            .collect();
        let n = per.first().map_or(0, Vec::len);
        units.extend((0..n).map(|t| per.iter().map(|p| Some(p[t].clone())).collect()));
    }
    out.token_alpha = krippendorff_alpha_nominal(&units);
    out.krippendorff_alpha = out.token_alpha;
    out.per_label = project
        .labels
        .iter()
        .map(|l| {
            let bin: Vec<Vec<Option<bool>>> = units
                .iter()
                .map(|u| u.iter().map(|v| v.as_ref().map(|v| v == l)).collect())
                .collect();
            LabelAgreement {
                label: l.clone(),
                alpha: krippendorff_alpha_nominal(&bin),
            }
        })
        .collect();
    // Micro span F1 for each pair of annotators over the items both answered.
    let mut pairs: BTreeMap<(&str, &str), (usize, usize, usize)> = BTreeMap::new();
    for i in multi {
        for (x, a) in i.answers.iter().enumerate() {
            for b in &i.answers[x + 1..] {
                let (a, b) = if a.user <= b.user { (a, b) } else { (b, a) };
                let key = |s: &Span| (s.start, s.end, s.label.clone());
                let sa: std::collections::HashSet<_> = spans_of(&a.value).iter().map(key).collect();
                let sb: std::collections::HashSet<_> = spans_of(&b.value).iter().map(key).collect();
                let e = pairs.entry((&a.user, &b.user)).or_default();
                e.0 += 1;
                e.1 += sa.intersection(&sb).count();
                e.2 += sa.len() + sb.len();
            }
        }
    }
    out.pairs = pairs
        .into_iter()
        .map(|((a, b), (n, both, total))| PairAgreement {
            a: a.to_string(),
            b: b.to_string(),
            items: n,
            cohen_kappa: None,
            span_f1: Some(if total == 0 {
                1.0
            } else {
                2.0 * both as f64 / total as f64
            }),
        })
        .collect();
}

fn model_vs_human(project: &Project, items: &[ItemRecord]) -> Option<ModelVsHuman> {
    let pairs: Vec<(Answer, &Answer, f64)> = items
        .iter()
        .filter_map(|i| {
            let (m, c) = i.prediction.as_ref()?;
            Some((human_reference(i)?, m, *c))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let correct: Vec<bool> = pairs.iter().map(|(h, m, _)| same(h, m)).collect();
    let confidence: Vec<f64> = pairs.iter().map(|p| p.2).collect();
    let (score, per_label, confusion) = if project.task == TaskKind::Ner {
        let to = |a: &Answer| spans_of(a).to_vec();
        let gold: Vec<Vec<Span>> = pairs.iter().map(|p| to(&p.0)).collect();
        let pred: Vec<Vec<Span>> = pairs.iter().map(|p| to(p.1)).collect();
        let per_label = project
            .labels
            .iter()
            .map(|l| {
                let keep = |v: &Vec<Vec<Span>>| -> Vec<Vec<Span>> {
                    v.iter()
                        .map(|s| s.iter().filter(|s| s.label == *l).cloned().collect())
                        .collect()
                };
                let r = metrics::spans(&keep(&gold), &keep(&pred));
                LabelScore {
                    label: l.clone(),
                    support: r.gold,
                    precision: r.precision,
                    recall: r.recall,
                    f1: r.f1,
                }
            })
            .collect();
        (metrics::spans(&gold, &pred).f1, per_label, None)
    } else {
        let index: HashMap<&str, usize> = project
            .labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.as_str(), i))
            .collect();
        let ix = |a: &Answer| label_of(a).and_then(|l| index.get(l).copied());
        let rows: Vec<(usize, usize)> = pairs
            .iter()
            .filter_map(|(h, m, _)| Some((ix(h)?, ix(m)?)))
            .collect();
        let gold: Vec<usize> = rows.iter().map(|r| r.0).collect();
        let pred: Vec<usize> = rows.iter().map(|r| r.1).collect();
        let conf: Vec<f64> = pairs
            .iter()
            .filter(|(h, m, _)| ix(h).is_some() && ix(m).is_some())
            .map(|p| p.2)
            .collect();
        let r = metrics::classification(&gold, &pred, &conf, project.labels.len());
        let mut matrix = vec![vec![0u64; project.labels.len()]; project.labels.len()];
        for (g, p) in &rows {
            matrix[*g][*p] += 1;
        }
        let per_label = r
            .per_label
            .iter()
            .map(|l| LabelScore {
                label: project.labels[l.label].clone(),
                support: l.support,
                precision: l.precision,
                recall: l.recall,
                f1: l.f1,
            })
            .collect();
        (r.accuracy, per_label, Some(matrix))
    };
    Some(ModelVsHuman {
        items: pairs.len(),
        score,
        per_label,
        confusion,
        reliability: reliability(&correct, &confidence),
        ece: metrics::expected_calibration_error(&correct, &confidence, BINS),
        threshold: threshold(&correct, &confidence, project.quality.precision_target),
    })
}

fn reliability(correct: &[bool], confidence: &[f64]) -> Vec<ReliabilityBin> {
    let mut bins: Vec<ReliabilityBin> = (0..BINS)
        .map(|b| ReliabilityBin {
            lo: b as f64 / BINS as f64,
            hi: (b + 1) as f64 / BINS as f64,
            count: 0,
            confidence: 0.0,
            accuracy: 0.0,
        })
        .collect();
    for (&ok, &c) in correct.iter().zip(confidence) {
        let b = metrics::bin_index(c, BINS);
        bins[b].count += 1;
        bins[b].confidence += c;
        bins[b].accuracy += f64::from(u8::from(ok));
    }
    for b in &mut bins {
        if b.count > 0 {
            b.confidence /= b.count as f64;
            b.accuracy /= b.count as f64;
        }
    }
    bins
}

/// The lowest confidence `t` such that the predictions at or above `t` are right at least
/// `target` of the time, over at least `MIN_THRESHOLD_SUPPORT` human-checked items.
pub fn threshold(correct: &[bool], confidence: &[f64], target: f64) -> Threshold {
    let mut order: Vec<usize> = (0..correct.len()).collect();
    order.sort_by(|&a, &b| confidence[b].total_cmp(&confidence[a]));
    let mut best: Option<(f64, f64, usize)> = None;
    let mut right = 0usize;
    for (n, &i) in order.iter().enumerate() {
        right += usize::from(correct[i]);
        let taken = n + 1;
        // Only cut between distinct confidences: equal ones are accepted together.
        if order
            .get(taken)
            .is_some_and(|&j| confidence[j] == confidence[i])
        {
            continue;
        }
        let precision = right as f64 / taken as f64;
        if taken >= MIN_THRESHOLD_SUPPORT && precision >= target {
            best = Some((confidence[i], precision, taken));
        }
    }
    Threshold {
        target,
        threshold: best.map(|b| b.0),
        precision: best.map(|b| b.1),
        support: best.map_or(0, |b| b.2),
        coverage: best.map_or(0.0, |b| b.2 as f64 / correct.len().max(1) as f64),
    }
}

fn hotspots(project: &Project, items: &[ItemRecord]) -> Hotspots {
    let mut pairs: HashMap<(String, String, &'static str), u64> = HashMap::new();
    let mut hot: Vec<HotItem> = Vec::new();
    let mut confuse = |x: &str, y: &str, between: &'static str| {
        if x != y {
            let (a, b) = if x < y { (x, y) } else { (y, x) };
            *pairs
                .entry((a.to_string(), b.to_string(), between))
                .or_default() += 1;
        }
    };
    for i in items.iter().filter(|i| i.gold.is_none()) {
        let answers: Vec<Answer> = i.answers.iter().map(|a| a.value.clone()).collect();
        let c = consensus(&answers);
        if project.task != TaskKind::Ner {
            for (x, a) in answers.iter().enumerate() {
                for b in &answers[x + 1..] {
                    if let (Some(a), Some(b)) = (label_of(a), label_of(b)) {
                        confuse(a, b, "annotators");
                    }
                }
            }
            if let (Some(h), Some((m, _))) = (human_reference(i), &i.prediction) {
                if let (Some(h), Some(m)) = (label_of(&h), label_of(m)) {
                    confuse(h, m, "model");
                }
            }
        }
        let model = i.prediction.as_ref();
        let reason = if answers.len() >= 2 && c.value.is_none() {
            Some("no majority")
        } else if answers.len() >= 2 && c.agreement < 1.0 {
            Some("annotators differ")
        } else if consensus::needs_review(&c, model.map(|(a, p)| (a, *p))) {
            Some("people contradict a confident model")
        } else {
            None
        };
        if let Some(reason) = reason {
            hot.push(HotItem {
                id: i.id,
                ext_id: i.ext_id.clone(),
                text: i.text.chars().take(200).collect(),
                reason,
                agreement: c.agreement,
                model_confidence: model.map(|m| m.1),
            });
        }
    }
    // Least agreement first; among equals, the most confident model.
    hot.sort_by(|a, b| {
        a.agreement.total_cmp(&b.agreement).then_with(|| {
            b.model_confidence
                .unwrap_or(0.0)
                .total_cmp(&a.model_confidence.unwrap_or(0.0))
        })
    });
    hot.truncate(HOTSPOT_ITEMS);
    let mut labels: Vec<ConfusedPair> = pairs
        .into_iter()
        .map(|((a, b, between), count)| ConfusedPair {
            a,
            b,
            between,
            count,
        })
        .collect();
    labels.sort_by(|x, y| {
        y.count
            .cmp(&x.count)
            .then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    labels.truncate(20);
    Hotspots { labels, items: hot }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::review::PersonAnswer;

    #[test]
    fn the_diagram_bins_as_the_ece_does() {
        // Confidences on the edges: 0.7 belongs to (0.6, 0.7], 0.1 to (0.0, 0.1], 1.0 to the
        // last bin and 0.0 to the first.
        let confidence = [0.7, 0.1, 1.0, 0.0, 0.75];
        let correct = [true, false, true, false, false];
        let bins = reliability(&correct, &confidence);
        let counts: Vec<u64> = bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 0, 0, 0, 0, 0, 1, 1, 0, 1]);
        // The ECE computed from the drawn bins is the figure printed beside them.
        let n = confidence.len() as f64;
        let from_bins: f64 = bins
            .iter()
            .map(|b| b.count as f64 / n * (b.accuracy - b.confidence).abs())
            .sum();
        let ece = metrics::expected_calibration_error(&correct, &confidence, BINS);
        assert!((from_bins - ece).abs() < 1e-12, "{from_bins} vs {ece}");
    }

    fn label(l: &str) -> Answer {
        Answer::Label { label: l.into() }
    }

    fn item(id: i64, answers: &[(&str, &str)], model: Option<(&str, f64)>) -> ItemRecord {
        ItemRecord {
            id,
            ext_id: id.to_string(),
            text: format!("text {id}"),
            gold: None,
            answers: answers
                .iter()
                .map(|(u, l)| PersonAnswer {
                    user: u.to_string(),
                    value: label(l),
                })
                .collect(),
            prediction: model.map(|(l, c)| (label(l), c)),
            resolution: None,
        }
    }

    #[test]
    fn threshold_is_the_lowest_confidence_that_keeps_the_precision() {
        // 30 right at 0.99..0.70, then wrong ones below 0.7.
        let mut correct = vec![true; 30];
        let mut conf: Vec<f64> = (0..30).map(|i| 0.99 - i as f64 * 0.01).collect();
        correct.extend([false, true, false, false]);
        conf.extend([0.65, 0.6, 0.55, 0.5]);
        let t = threshold(&correct, &conf, 0.95);
        assert_eq!(t.threshold, Some(0.6));
        assert_eq!(t.support, 32);
        assert!((t.precision.unwrap() - 31.0 / 32.0).abs() < 1e-12);
        let none = threshold(&correct[..10], &conf[..10], 0.95);
        assert_eq!(
            none.threshold, None,
            "fewer than {MIN_THRESHOLD_SUPPORT} items"
        );
    }

    #[test]
    fn gold_scores_agreement_and_hotspots_come_from_the_answers() {
        let project = Project {
            id: 1,
            name: "p".into(),
            task: TaskKind::Classification,
            labels: vec!["a".into(), "b".into()],
            prompt: crate::domain::Prompt::Classify,
            queue_order: crate::domain::QueueOrder::Sequential,
            overlap: 2,
            guidelines: crate::domain::Guidelines {
                version: 1,
                body: String::new(),
            },
            created_at: String::new(),
            generation: None,
            quality: crate::domain::QualitySettings {
                gold_rate: 0.05,
                precision_target: 0.95,
                auto_accept: None,
            },
            learning: crate::domain::LearningSettings {
                retrain_every: 20,
                near_duplicate_cosine: None,
            },
        };
        let mut gold = item(1, &[("ann", "a"), ("bob", "b")], Some(("a", 0.6)));
        gold.gold = Some(label("a"));
        let items = vec![
            gold,
            item(2, &[("ann", "a"), ("bob", "a")], Some(("a", 0.8))),
            item(3, &[("ann", "a"), ("bob", "b")], Some(("b", 0.95))),
            item(4, &[("ann", "b"), ("bob", "b")], Some(("a", 0.97))),
        ];
        let r = build(&project, &items, &[]);
        let ann = r.annotators.iter().find(|a| a.user == "ann");
        assert!(ann.is_none(), "no activity rows, no annotator rows");
        let gold = annotators(
            &items,
            &[Activity {
                user: "bob".into(),
                item_id: 1,
                at_ms: 0,
                seconds: Some(4.0),
            }],
        );
        assert_eq!(gold[0].gold.answered, 1);
        assert_eq!(gold[0].gold.correct, 0);
        assert_eq!(gold[0].per_hour, Some(900.0));
        assert_eq!(r.agreement.items, 4);
        assert_eq!(r.agreement.pairs.len(), 1);
        let m = r.model.expect("model figures");
        // Item 1 is judged by its gold answer (its annotators split), items 2 and 4 by their
        // majority; item 3 has no majority.
        assert_eq!(m.items, 3);
        assert!((m.score - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.confusion, Some(vec![vec![2, 0], vec![1, 0]]));
        let hot: Vec<i64> = r.hotspots.items.iter().map(|h| h.id).collect();
        assert_eq!(hot, vec![3, 4]);
        assert_eq!(r.hotspots.items[0].reason, "no majority");
        assert_eq!(
            r.hotspots.items[1].reason,
            "people contradict a confident model"
        );
    }
}
