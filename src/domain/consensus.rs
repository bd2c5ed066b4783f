//! An item's agreed answer from its annotators' latest answers, and whether a reviewer should
//! settle it: a label needs a strict majority; spans are kept when a strict majority marked them,
//! and a span marked by exactly half the annotators leaves the item without a majority.
use super::{Answer, Span};
use std::collections::HashMap;

/// A model prediction at or above this confidence that the people's answer contradicts sends
/// the item to adjudication: either the people or a confident model are wrong.
pub const CONFIDENT: f64 = 0.9;

#[derive(Debug, Clone, PartialEq)]
pub struct Consensus {
    /// None when there is no majority.
    pub value: Option<Answer>,
    /// Share of annotators whose answer is exactly the agreed one (0 without a majority).
    pub agreement: f64,
}

pub fn consensus(answers: &[Answer]) -> Consensus {
    let n = answers.len();
    let value = match answers.first() {
        None => None,
        Some(Answer::Entities { .. }) => majority_spans(answers),
        Some(_) => majority(answers),
    };
    let agreement = match &value {
        Some(v) if n > 0 => answers.iter().filter(|a| *a == v).count() as f64 / n as f64,
        _ => 0.0,
    };
    Consensus { value, agreement }
}

/// The answer more than half the annotators gave (a label, or a review decision with its edit).
fn majority(answers: &[Answer]) -> Option<Answer> {
    answers
        .iter()
        .find(|a| 2 * answers.iter().filter(|b| b == a).count() > answers.len())
        .cloned()
}

fn majority_spans(answers: &[Answer]) -> Option<Answer> {
    let n = answers.len();
    let mut support: HashMap<(usize, usize, &str), usize> = HashMap::new();
    for a in answers {
        if let Answer::Entities { entities } = a {
            let mut seen: Vec<(usize, usize, &str)> = entities
                .iter()
                .map(|s| (s.start, s.end, s.label.as_str()))
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for s in seen {
                *support.entry(s).or_default() += 1;
            }
        }
    }
    if support.values().any(|&c| 2 * c == n) {
        return None;
    }
    let mut entities: Vec<Span> = support
        .into_iter()
        .filter(|&(_, c)| 2 * c > n)
        .map(|((start, end, label), _)| Span {
            start,
            end,
            label: label.to_string(),
        })
        .collect();
    entities.sort_by_key(|s| (s.start, s.end));
    Some(Answer::Entities { entities })
}

/// Whether a reviewer should settle the item: no majority, or a majority that contradicts a
/// confident model.
pub fn needs_review(c: &Consensus, model: Option<(&Answer, f64)>) -> bool {
    match (&c.value, model) {
        (None, _) => true,
        (Some(v), Some((m, confidence))) => confidence >= CONFIDENT && !same(v, m),
        (Some(_), None) => false,
    }
}

/// Equal answers, spans compared as sets.
pub fn same(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Entities { entities: x }, Answer::Entities { entities: y }) => {
            let key = |s: &Span| (s.start, s.end, s.label.clone());
            let mut x: Vec<_> = x.iter().map(key).collect();
            let mut y: Vec<_> = y.iter().map(key).collect();
            x.sort_unstable();
            y.sort_unstable();
            x.dedup();
            y.dedup();
            x == y
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(l: &str) -> Answer {
        Answer::Label { label: l.into() }
    }

    fn spans(s: &[(usize, usize, &str)]) -> Answer {
        Answer::Entities {
            entities: s
                .iter()
                .map(|&(start, end, l)| Span {
                    start,
                    end,
                    label: l.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn labels_need_a_strict_majority() {
        let c = consensus(&[label("a"), label("b"), label("a")]);
        assert_eq!(c.value, Some(label("a")));
        assert!((c.agreement - 2.0 / 3.0).abs() < 1e-12);
        let split = consensus(&[label("a"), label("b")]);
        assert_eq!(split.value, None);
        assert_eq!(split.agreement, 0.0);
        assert!(needs_review(&split, None));
        assert_eq!(consensus(&[label("a")]).value, Some(label("a")));
    }

    #[test]
    fn spans_are_kept_per_span_by_majority_and_a_half_split_has_none() {
        let c = consensus(&[
            spans(&[(0, 3, "PER"), (5, 9, "LOC")]),
            spans(&[(0, 3, "PER")]),
            spans(&[(0, 3, "PER"), (5, 9, "ORG")]),
        ]);
        assert_eq!(c.value, Some(spans(&[(0, 3, "PER")])));
        assert!((c.agreement - 1.0 / 3.0).abs() < 1e-12);
        let tie = consensus(&[spans(&[(0, 3, "PER")]), spans(&[])]);
        assert_eq!(tie.value, None);
    }

    #[test]
    fn a_confident_model_that_disagrees_sends_the_item_to_review() {
        let c = consensus(&[label("a"), label("a")]);
        assert!(!needs_review(&c, Some((&label("a"), 0.99))));
        assert!(!needs_review(&c, Some((&label("b"), CONFIDENT - 0.01))));
        assert!(needs_review(&c, Some((&label("b"), CONFIDENT))));
        let s = consensus(&[spans(&[(0, 3, "PER"), (4, 5, "LOC")])]);
        assert!(!needs_review(
            &s,
            Some((&spans(&[(4, 5, "LOC"), (0, 3, "PER")]), 0.95))
        ));
    }
}
