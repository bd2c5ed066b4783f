//! The figures of a rule set over a project, as Snorkel's LF analysis and Argilla's weak-label
//! summary give them: for each rule its coverage, overlaps (it fired with another rule),
//! conflicts (another rule voted a different label), agreement with the model's prediction
//! and accuracy against people's current answers, each with the count it is a share of.
//!
//! In an NER project a rule proposes spans, and its figures count spans: `hits` are the spans it
//! proposed, an overlap is a span crossing another rule's, a conflict one crossing another
//! rule's span of another type, agreement with the model an exact match (offsets and type) of
//! one of the model's spans, and accuracy the share of its spans in answered sentences that
//! people marked exactly so (precision). `covered` counts sentences with a proposed span.
use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleFigures {
    /// Items it fired on.
    pub hits: u64,
    /// Of those, items where another rule fired too.
    pub overlaps: u64,
    /// Of those, items where another rule voted a different label.
    pub conflicts: u64,
    /// Of the hits, items with a model prediction, and how many of them it agreed with.
    pub with_model: u64,
    pub agrees_with_model: u64,
    /// Of the hits, items people answered, and how many it got right.
    pub annotated: u64,
    pub correct: u64,
}

impl RuleFigures {
    fn share(part: u64, whole: u64) -> Option<f64> {
        (whole > 0).then(|| part as f64 / whole as f64)
    }

    pub fn coverage(&self, items: u64) -> Option<f64> {
        Self::share(self.hits, items)
    }

    pub fn model_agreement(&self) -> Option<f64> {
        Self::share(self.agrees_with_model, self.with_model)
    }

    /// Empirical accuracy (precision) against people's answers.
    pub fn accuracy(&self) -> Option<f64> {
        Self::share(self.correct, self.annotated)
    }

    fn merge(&mut self, o: &RuleFigures) {
        self.hits += o.hits;
        self.overlaps += o.overlaps;
        self.conflicts += o.conflicts;
        self.with_model += o.with_model;
        self.agrees_with_model += o.agrees_with_model;
        self.annotated += o.annotated;
        self.correct += o.correct;
    }
}

/// The figures of every rule, and of the set as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Analysis {
    pub items: u64,
    /// Items any rule fired on.
    pub covered: u64,
    /// Items with at least two rules voting different labels.
    pub conflicted: u64,
    /// Items people answered, and how many of those any rule covers.
    pub annotated: u64,
    pub annotated_covered: u64,
    pub rules: Vec<RuleFigures>,
}

/// What one item says: the rules that fired on it (each once), the label each votes, and the
/// model's and people's labels, all as label indices.
pub struct ItemVotes<'a> {
    pub fired: &'a [usize],
    pub label_of: &'a dyn Fn(usize) -> usize,
    pub model: Option<usize>,
    pub human: Option<usize>,
}

impl Analysis {
    pub fn new(rules: usize) -> Self {
        Analysis {
            rules: vec![RuleFigures::default(); rules],
            ..Default::default()
        }
    }

    pub fn add(&mut self, item: &ItemVotes) {
        self.items += 1;
        self.annotated += u64::from(item.human.is_some());
        if item.fired.is_empty() {
            return;
        }
        self.covered += 1;
        self.annotated_covered += u64::from(item.human.is_some());
        let label = |r: usize| (item.label_of)(r);
        let first = label(item.fired[0]);
        let split = item.fired.iter().any(|&r| label(r) != first);
        self.conflicted += u64::from(split);
        for &r in item.fired {
            let l = label(r);
            let f = &mut self.rules[r];
            f.hits += 1;
            f.overlaps += u64::from(item.fired.len() > 1);
            f.conflicts += u64::from(split && item.fired.iter().any(|&o| label(o) != l));
            if let Some(m) = item.model {
                f.with_model += 1;
                f.agrees_with_model += u64::from(m == l);
            }
            if let Some(h) = item.human {
                f.annotated += 1;
                f.correct += u64::from(h == l);
            }
        }
    }

    /// Adds one sentence of an NER project: the spans the rules proposed (`rule` indexes the
    /// rules, whose type is `label_of`), the model's spans and people's, when there are any.
    pub fn add_spans(
        &mut self,
        proposed: &[super::SpanMatch],
        label_of: &dyn Fn(usize) -> usize,
        model: Option<&[(usize, usize, usize)]>,
        human: Option<&[(usize, usize, usize)]>,
    ) {
        self.items += 1;
        self.annotated += u64::from(human.is_some());
        if proposed.is_empty() {
            return;
        }
        self.covered += 1;
        self.annotated_covered += u64::from(human.is_some());
        let crosses =
            |a: &super::SpanMatch, b: &super::SpanMatch| a.start < b.end && b.start < a.end;
        let mut split = false;
        for (i, s) in proposed.iter().enumerate() {
            let l = label_of(s.rule);
            let others = proposed
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && o.rule != s.rule && crosses(s, o));
            let (mut overlap, mut conflict) = (false, false);
            for (_, o) in others {
                overlap = true;
                conflict |= label_of(o.rule) != l;
            }
            split |= conflict;
            let exact = |spans: &[(usize, usize, usize)]| spans.contains(&(s.start, s.end, l));
            let f = &mut self.rules[s.rule];
            f.hits += 1;
            f.overlaps += u64::from(overlap);
            f.conflicts += u64::from(conflict);
            if let Some(m) = model {
                f.with_model += 1;
                f.agrees_with_model += u64::from(exact(m));
            }
            if let Some(h) = human {
                f.annotated += 1;
                f.correct += u64::from(exact(h));
            }
        }
        self.conflicted += u64::from(split);
    }

    /// Adds the figures of another part of the same project (scanned on another thread).
    pub fn merge(&mut self, o: &Analysis) {
        self.items += o.items;
        self.covered += o.covered;
        self.conflicted += o.conflicted;
        self.annotated += o.annotated;
        self.annotated_covered += o.annotated_covered;
        for (a, b) in self.rules.iter_mut().zip(&o.rules) {
            a.merge(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_what_they_say() {
        // Rules 0 and 1 vote label 0, rule 2 votes label 1.
        let label_of = |r: usize| usize::from(r == 2);
        let mut a = Analysis::new(3);
        let items: [(&[usize], Option<usize>, Option<usize>); 5] = [
            (&[0], Some(0), Some(0)),
            (&[0, 1], Some(1), None),
            (&[0, 2], None, Some(1)),
            (&[], Some(0), Some(0)),
            (&[2], Some(1), Some(1)),
        ];
        for (fired, model, human) in items {
            a.add(&ItemVotes {
                fired,
                label_of: &label_of,
                model,
                human,
            });
        }
        assert_eq!((a.items, a.covered, a.conflicted), (5, 4, 1));
        assert_eq!((a.annotated, a.annotated_covered), (4, 3));
        let r0 = &a.rules[0];
        assert_eq!((r0.hits, r0.overlaps, r0.conflicts), (3, 2, 1));
        assert_eq!((r0.with_model, r0.agrees_with_model), (2, 1));
        assert_eq!((r0.annotated, r0.correct), (2, 1));
        assert_eq!(r0.accuracy(), Some(0.5));
        assert_eq!(
            a.rules[1].conflicts, 0,
            "it overlapped a rule of its own label only"
        );
        let r2 = &a.rules[2];
        assert_eq!(
            (r2.hits, r2.conflicts, r2.correct, r2.annotated),
            (2, 1, 2, 2)
        );
        assert_eq!(r2.coverage(a.items), Some(0.4));
        assert_eq!(
            RuleFigures::default().accuracy(),
            None,
            "no answers: no figure, not 0"
        );

        let mut twice = a.clone();
        twice.merge(&Analysis::new(3));
        assert_eq!(twice, a, "an empty part adds nothing");
        twice.merge(&a);
        assert_eq!(twice.rules[0].hits, 6);
        assert_eq!(twice.items, 10);
    }

    #[test]
    fn span_figures_count_spans() {
        use crate::rules::SpanMatch;
        // Rules 0 and 1 propose type 0, rule 2 type 1.
        let label_of = |r: usize| usize::from(r == 2);
        let span = |rule, start, end| SpanMatch { rule, start, end };
        let mut a = Analysis::new(3);
        // "New York" by rule 0 (people agree), "York" by rule 1 (inside it), "York" by rule 2
        // as the other type; the model found only "New York".
        a.add_spans(
            &[span(0, 0, 8), span(1, 4, 8), span(2, 4, 8)],
            &label_of,
            Some(&[(0, 8, 0)]),
            Some(&[(0, 8, 0)]),
        );
        a.add_spans(&[], &label_of, None, Some(&[]));
        a.add_spans(&[span(0, 3, 5)], &label_of, None, None);
        assert_eq!(
            (
                a.items,
                a.covered,
                a.conflicted,
                a.annotated,
                a.annotated_covered
            ),
            (3, 2, 1, 2, 1)
        );
        let r0 = &a.rules[0];
        assert_eq!((r0.hits, r0.overlaps, r0.conflicts), (2, 1, 1));
        assert_eq!(
            (
                r0.with_model,
                r0.agrees_with_model,
                r0.annotated,
                r0.correct
            ),
            (1, 1, 1, 1)
        );
        let r1 = &a.rules[1];
        assert_eq!(
            (r1.hits, r1.conflicts, r1.correct, r1.annotated),
            (1, 1, 0, 1)
        );
        assert_eq!(a.rules[2].agrees_with_model, 0);
    }
}
