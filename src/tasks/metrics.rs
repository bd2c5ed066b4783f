//! Evaluation figures for zero-shot labeling: accuracy, macro-F1 and
//! calibration for classification, exact-match precision/recall/F1 for spans.
//!
//! Empty inputs never produce NaN or panic: every ratio with a zero denominator is 0.0.

use crate::domain::Span;
use std::collections::BTreeSet;

/// Number of equal-width bins used for the ECE in [`classification`]
/// (the customary choice, so figures compare with published numbers).
const CLASSIFICATION_ECE_BINS: usize = 10;

/// Classification figures over n items.
///
/// `ece` uses 10 equal-width bins (see [`expected_calibration_error`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationReport {
    /// Number of items scored.
    pub n: usize,
    /// Fraction of items with `pred == gold`.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1 over labels seen in gold or predictions
    /// (scikit-learn's `f1_score(average="macro")` without `labels=`).
    pub macro_f1: f64,
    /// Expected calibration error of the predicted label's confidence.
    pub ece: f64,
    /// One entry per label index, in order, including labels never seen.
    pub per_label: Vec<LabelReport>,
}

/// Figures for one label, treating it as the positive class.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReport {
    /// Label index.
    pub label: usize,
    /// Items whose gold label is this one.
    pub support: usize,
    /// Items predicted as this label.
    pub predicted: usize,
    /// Correct / predicted; 0.0 when nothing was predicted as this label.
    pub precision: f64,
    /// Correct / support; 0.0 when the label never occurs in gold.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0.0 when both are 0.
    pub f1: f64,
}

/// Exact-match span figures (micro over all items): a predicted span counts only if
/// (start, end, label) equal a gold span of the same item.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanReport {
    /// Number of items scored.
    pub n: usize,
    /// Distinct predicted spans that exactly match a gold span of the same item.
    pub true_positives: usize,
    /// Distinct predicted spans (identical duplicates within an item count once).
    pub predicted: usize,
    /// Distinct gold spans (identical duplicates within an item count once).
    pub gold: usize,
    /// `true_positives / predicted`, 0.0 when nothing was predicted.
    pub precision: f64,
    /// `true_positives / gold`, 0.0 when there is no gold span.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0.0 when both are 0.
    pub f1: f64,
}

/// `num / den`, or 0.0 when `den` is 0 (so empty inputs never yield NaN).
fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// F1 from counts: `2tp / (predicted + gold)`, which equals `2PR / (P + R)`
/// and is 0.0 exactly when P + R is 0.
fn f1_from_counts(tp: usize, predicted: usize, gold: usize) -> f64 {
    ratio(2 * tp, predicted + gold)
}

/// Classification figures for `gold[i]` vs `pred[i]`.
///
/// `gold[i]`, `pred[i]` are label indices in `0..n_labels`; `confidence[i]` is the
/// probability the model gave `pred[i]`. A label index >= `n_labels` is not an
/// error: `per_label` is extended to cover it, so it still counts in macro-F1.
///
/// # Panics
/// If the three slices differ in length.
#[must_use]
pub fn classification(
    gold: &[usize],
    pred: &[usize],
    confidence: &[f64],
    n_labels: usize,
) -> ClassificationReport {
    assert_eq!(
        gold.len(),
        pred.len(),
        "metrics::classification: gold and pred must have the same length"
    );
    assert_eq!(
        gold.len(),
        confidence.len(),
        "metrics::classification: gold and confidence must have the same length"
    );
    let n = gold.len();
    let n_classes = gold
        .iter()
        .chain(pred)
        .map(|&l| l + 1)
        .max()
        .unwrap_or(0)
        .max(n_labels);

    let mut support = vec![0usize; n_classes];
    let mut predicted = vec![0usize; n_classes];
    let mut tp = vec![0usize; n_classes];
    let mut correct = Vec::with_capacity(n);
    for (&g, &p) in gold.iter().zip(pred) {
        support[g] += 1;
        predicted[p] += 1;
        if g == p {
            tp[g] += 1;
        }
        correct.push(g == p);
    }

    let per_label: Vec<LabelReport> = (0..n_classes)
        .map(|label| LabelReport {
            label,
            support: support[label],
            predicted: predicted[label],
            precision: ratio(tp[label], predicted[label]),
            recall: ratio(tp[label], support[label]),
            f1: f1_from_counts(tp[label], predicted[label], support[label]),
        })
        .collect();

    // Labels absent from both gold and predictions carry no information and
    // would drag the mean to 0, so they are left out (as scikit-learn does).
    let seen: Vec<f64> = per_label
        .iter()
        .filter(|r| r.support > 0 || r.predicted > 0)
        .map(|r| r.f1)
        .collect();
    let macro_f1 = if seen.is_empty() {
        0.0
    } else {
        seen.iter().sum::<f64>() / seen.len() as f64
    };

    ClassificationReport {
        n,
        accuracy: ratio(tp.iter().sum(), n),
        macro_f1,
        ece: expected_calibration_error(&correct, confidence, CLASSIFICATION_ECE_BINS),
        per_label,
    }
}

/// Bin of `c` among `bins` equal-width bins: bin i holds `(i/bins, (i+1)/bins]`.
/// Values <= 0 (and NaN) go to bin 0, values >= 1 to the last bin. The one binning for the
/// ECE and the reliability diagram drawn beside it.
pub fn bin_index(c: f64, bins: usize) -> usize {
    if c.is_nan() || c <= 0.0 {
        return 0;
    }
    if c >= 1.0 {
        return bins - 1;
    }
    let edge = |i: usize| i as f64 / bins as f64;
    let mut i = ((c * bins as f64).ceil() as usize)
        .saturating_sub(1)
        .min(bins - 1);
    // `c * bins` can round onto an edge (the double just above 1/3, times 3, is
    // exactly 1.0), so settle against the edges themselves: edge(i) < c <= edge(i + 1).
    while i > 0 && c <= edge(i) {
        i -= 1;
    }
    while i + 1 < bins && c > edge(i + 1) {
        i += 1;
    }
    i
}

/// Expected calibration error with `bins` equal-width bins over `[0, 1]` (bin i holds
/// confidences in `(i/bins, (i+1)/bins]`, confidence 0 goes to bin 0), weighted by bin
/// size: sum_b |B|/n * |acc(B) - conf(B)|.
///
/// Returns 0.0 for empty input or `bins == 0`. Confidences outside `[0, 1]` are binned
/// into the first/last bin but keep their value in conf(B).
///
/// # Panics
/// If `correct` and `confidence` differ in length.
#[must_use]
pub fn expected_calibration_error(correct: &[bool], confidence: &[f64], bins: usize) -> f64 {
    assert_eq!(
        correct.len(),
        confidence.len(),
        "metrics::expected_calibration_error: correct and confidence must have the same length"
    );
    let n = correct.len();
    if n == 0 || bins == 0 {
        return 0.0;
    }
    // Per bin: number correct and sum of confidences. |B|/n * |acc - conf|
    // simplifies to |hits - conf_sum| / n, which avoids dividing by |B|.
    let mut hits = vec![0usize; bins];
    let mut conf_sum = vec![0.0f64; bins];
    for (&ok, &c) in correct.iter().zip(confidence) {
        let b = bin_index(c, bins);
        hits[b] += usize::from(ok);
        conf_sum[b] += c;
    }
    hits.iter()
        .zip(&conf_sum)
        .map(|(&h, &s)| (h as f64 - s).abs())
        .sum::<f64>()
        / n as f64
}

/// Exact-match span precision/recall/F1, micro-averaged over items.
///
/// Spans are compared as sets per item, so identical duplicates (predicted or
/// gold) count once and a span never matches one from another item.
///
/// # Panics
/// If `gold` and `pred` have different numbers of items.
#[must_use]
pub fn spans(gold: &[Vec<Span>], pred: &[Vec<Span>]) -> SpanReport {
    assert_eq!(
        gold.len(),
        pred.len(),
        "metrics::spans: gold and pred must have the same number of items"
    );
    let (mut tp, mut n_pred, mut n_gold) = (0usize, 0usize, 0usize);
    for (g, p) in gold.iter().zip(pred) {
        let g: BTreeSet<&Span> = g.iter().collect();
        let p: BTreeSet<&Span> = p.iter().collect();
        tp += p.intersection(&g).count();
        n_pred += p.len();
        n_gold += g.len();
    }
    SpanReport {
        n: gold.len(),
        true_positives: tp,
        predicted: n_pred,
        gold: n_gold,
        precision: ratio(tp, n_pred),
        recall: ratio(tp, n_gold),
        f1: f1_from_counts(tp, n_pred, n_gold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < EPS
    }

    macro_rules! assert_close {
        ($actual:expr, $expected:expr) => {{
            let (a, e): (f64, f64) = ($actual, $expected);
            assert!(close(a, e), "{} = {a}, expected {e}", stringify!($actual));
        }};
    }

    fn span(start: usize, end: usize, label: &str) -> Span {
        Span {
            start,
            end,
            label: label.to_string(),
        }
    }

    // ---- classification ----

    #[test]
    fn classification_perfect() {
        let gold = [0, 1, 2, 1, 0];
        let r = classification(&gold, &gold, &[1.0; 5], 3);
        assert_eq!(r.n, 5);
        assert_close!(r.accuracy, 1.0);
        assert_close!(r.macro_f1, 1.0);
        assert_close!(r.ece, 0.0);
        let supports: Vec<usize> = r.per_label.iter().map(|l| l.support).collect();
        assert_eq!(supports, vec![2, 2, 1]);
        for l in &r.per_label {
            assert_eq!(l.predicted, l.support);
            assert_close!(l.precision, 1.0);
            assert_close!(l.recall, 1.0);
            assert_close!(l.f1, 1.0);
        }
    }

    #[test]
    fn classification_perfect_ignores_unseen_label_in_macro() {
        // Label 2 occurs nowhere: listed in per_label with zeros, left out of macro-F1.
        let gold = [0, 1, 1];
        let r = classification(&gold, &gold, &[1.0; 3], 3);
        assert_close!(r.macro_f1, 1.0);
        assert_eq!(r.per_label.len(), 3);
        assert_eq!(
            r.per_label[2],
            LabelReport {
                label: 2,
                support: 0,
                predicted: 0,
                precision: 0.0,
                recall: 0.0,
                f1: 0.0
            }
        );
    }

    #[test]
    fn classification_all_wrong() {
        let r = classification(&[0, 1, 2], &[1, 2, 0], &[0.9; 3], 3);
        assert_eq!(r.n, 3);
        assert_close!(r.accuracy, 0.0);
        assert_close!(r.macro_f1, 0.0);
        // One bin (0.9, 1.0]: acc 0, conf 0.9.
        assert_close!(r.ece, 0.9);
        for l in &r.per_label {
            assert_eq!((l.support, l.predicted), (1, 1));
            assert_close!(l.precision, 0.0);
            assert_close!(l.recall, 0.0);
            assert_close!(l.f1, 0.0);
        }
    }

    /// Hand-worked, 3 seen labels plus an unseen label 3:
    ///   gold = [0,0,0,0,1,1,2,2,2,2]
    ///   pred = [0,0,1,2,1,0,2,2,2,1]
    ///   label 0: support 4, predicted 3, tp 2 -> P 2/3, R 1/2, F1 4/7
    ///   label 1: support 2, predicted 3, tp 1 -> P 1/3, R 1/2, F1 2/5
    ///   label 2: support 4, predicted 4, tp 3 -> P 3/4, R 3/4, F1 3/4
    ///   accuracy 6/10; macro-F1 (4/7 + 2/5 + 3/4) / 3 = 241/420
    /// Cross-checked with scikit-learn 1.9.1: accuracy_score = 0.6,
    /// f1_score(average="macro") = 0.5738095238095239,
    /// precision_recall_fscore_support(average=None) = P [0.6667, 0.3333, 0.75],
    /// R [0.5, 0.5, 0.75], F1 [0.5714, 0.4, 0.75].
    #[test]
    fn classification_three_label_macro_f1() {
        let gold = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
        let pred = [0, 0, 1, 2, 1, 0, 2, 2, 2, 1];
        let conf = [0.95, 0.85, 0.6, 0.55, 0.7, 0.4, 0.9, 0.8, 0.75, 0.3];
        let r = classification(&gold, &pred, &conf, 4);
        assert_eq!(r.n, 10);
        assert_close!(r.accuracy, 0.6);
        assert_close!(r.macro_f1, 241.0 / 420.0);
        assert_close!(r.macro_f1, 0.5738095238095239); // scikit-learn

        let expected = [
            (0, 4, 3, 2.0 / 3.0, 0.5, 4.0 / 7.0),
            (1, 2, 3, 1.0 / 3.0, 0.5, 0.4),
            (2, 4, 4, 0.75, 0.75, 0.75),
            (3, 0, 0, 0.0, 0.0, 0.0),
        ];
        assert_eq!(r.per_label.len(), expected.len());
        for (l, &(label, support, predicted, p, rc, f1)) in r.per_label.iter().zip(&expected) {
            assert_eq!(
                (l.label, l.support, l.predicted),
                (label, support, predicted)
            );
            assert_close!(l.precision, p);
            assert_close!(l.recall, rc);
            assert_close!(l.f1, f1);
        }

        // ECE with 10 bins, by hand (bin: items as (correct, conf)):
        //   (0.2,0.3]: (F,.3)                 |0 - .3|      = .3
        //   (0.3,0.4]: (F,.4)                 |0 - .4|      = .4
        //   (0.5,0.6]: (F,.6) (F,.55)         |0 - 1.15|    = 1.15
        //   (0.6,0.7]: (T,.7)                 |1 - .7|      = .3
        //   (0.7,0.8]: (T,.8) (T,.75)         |2 - 1.55|    = .45
        //   (0.8,0.9]: (T,.85) (T,.9)         |2 - 1.75|    = .25
        //   (0.9,1.0]: (T,.95)                |1 - .95|     = .05
        //   sum of |hits - conf_sum| = 2.9, / n = 0.29 (numpy check: 0.29000000000000004)
        assert_close!(r.ece, 0.29);
        let correct: Vec<bool> = gold.iter().zip(&pred).map(|(g, p)| g == p).collect();
        assert_close!(r.ece, expected_calibration_error(&correct, &conf, 10));
    }

    /// scikit-learn: f1_score([0,0],[0,1],average="macro") = 1/3 — a label that is
    /// only predicted (never gold) counts in the mean with F1 0.
    #[test]
    fn classification_label_only_predicted_counts_in_macro() {
        let r = classification(&[0, 0], &[0, 1], &[0.5, 0.5], 2);
        assert_close!(r.accuracy, 0.5);
        assert_close!(r.per_label[0].precision, 1.0);
        assert_close!(r.per_label[0].recall, 0.5);
        assert_close!(r.per_label[0].f1, 2.0 / 3.0);
        assert_eq!((r.per_label[1].support, r.per_label[1].predicted), (0, 1));
        assert_close!(r.per_label[1].precision, 0.0);
        assert_close!(r.per_label[1].recall, 0.0);
        assert_close!(r.macro_f1, 1.0 / 3.0);
    }

    #[test]
    fn classification_label_never_predicted_has_zero_precision() {
        // Label 1 in gold, never predicted: precision 0 (not NaN), recall 0.
        let r = classification(&[0, 1], &[0, 0], &[1.0, 1.0], 2);
        let l1 = &r.per_label[1];
        assert_eq!((l1.support, l1.predicted), (1, 0));
        assert_close!(l1.precision, 0.0);
        assert_close!(l1.recall, 0.0);
        assert_close!(l1.f1, 0.0);
        // label 0: P 1/2, R 1 -> F1 2/3; macro (2/3 + 0) / 2.
        assert_close!(r.macro_f1, 1.0 / 3.0);
    }

    #[test]
    fn classification_out_of_range_label_extends_per_label() {
        let r = classification(&[0, 3], &[0, 3], &[1.0, 1.0], 2);
        let labels: Vec<usize> = r.per_label.iter().map(|l| l.label).collect();
        assert_eq!(labels, vec![0, 1, 2, 3]);
        assert_close!(r.macro_f1, 1.0);
    }

    #[test]
    fn classification_empty() {
        let r = classification(&[], &[], &[], 3);
        assert_eq!(r.n, 0);
        assert_eq!(r.accuracy, 0.0);
        assert_eq!(r.macro_f1, 0.0);
        assert_eq!(r.ece, 0.0);
        assert_eq!(r.per_label.len(), 3);
        for (i, l) in r.per_label.iter().enumerate() {
            assert_eq!(
                *l,
                LabelReport {
                    label: i,
                    support: 0,
                    predicted: 0,
                    precision: 0.0,
                    recall: 0.0,
                    f1: 0.0
                }
            );
        }
        assert!(classification(&[], &[], &[], 0).per_label.is_empty());
    }

    #[test]
    #[should_panic(expected = "gold and pred must have the same length")]
    fn classification_length_mismatch_panics() {
        let _ = classification(&[0, 1], &[0], &[1.0], 2);
    }

    #[test]
    #[should_panic(expected = "gold and confidence must have the same length")]
    fn classification_confidence_length_mismatch_panics() {
        let _ = classification(&[0, 1], &[0, 1], &[1.0], 2);
    }

    // ---- expected calibration error ----

    /// 4 bins: (0,.25] (.25,.5] (.5,.75] (.75,1]
    ///   bin 0: (T,.2)          acc 1,  conf .2   -> 1/6 * .8
    ///   bin 1: (F,.3)          acc 0,  conf .3   -> 1/6 * .3
    ///   bin 2: (F,.7) (T,.6)   acc .5, conf .65  -> 2/6 * .15
    ///   bin 3: (T,.9) (T,.8)   acc 1,  conf .85  -> 2/6 * .15
    ///   ECE = (.8 + .3 + .3 + .3) / 6 = 1.7 / 6
    /// Cross-checked with a direct numpy evaluation of the formula: 0.28333333333333327.
    #[test]
    fn ece_four_bins_by_hand() {
        let correct = [true, true, false, true, false, true];
        let conf = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2];
        assert_close!(expected_calibration_error(&correct, &conf, 4), 1.7 / 6.0);
    }

    /// 2 bins (0,.5] (.5,1]; 0.0 must land in bin 0, 0.5 in bin 0, 1.0 in bin 1:
    ///   bin 0: (T,0.0) (T,0.5)  acc 1, conf .25 -> 2/3 * .75 = .5
    ///   bin 1: (F,1.0)          acc 0, conf 1   -> 1/3 * 1   = 1/3
    ///   ECE = 5/6. (Dropping 0.0, or putting 0.5 in bin 1, would give 1/2.)
    #[test]
    fn ece_confidence_exactly_zero_and_one() {
        let correct = [true, true, false];
        let conf = [0.0, 0.5, 1.0];
        assert_close!(expected_calibration_error(&correct, &conf, 2), 5.0 / 6.0);
        // Perfectly calibrated extremes.
        assert_close!(expected_calibration_error(&[true], &[1.0], 10), 0.0);
        assert_close!(expected_calibration_error(&[false], &[0.0], 10), 0.0);
        assert_close!(expected_calibration_error(&[true], &[0.0], 10), 1.0);
    }

    /// Upper edges are inclusive: 0.7 belongs to (0.6, 0.7] with 10 bins.
    ///   right: bin 6 (T,.7) -> .3/2; bin 7 (F,.75) -> .75/2; ECE .525
    ///   wrong: both in bin 7 -> |1 - 1.45| / 2 = .225
    /// (A numpy check with `np.linspace` edges also gives 0.525 here, but note its
    /// edge 7 is 0.7000000000000001, not 0.7; this module uses i/bins exactly.)
    #[test]
    fn ece_upper_edge_is_inclusive() {
        assert_eq!(bin_index(0.7, 10), 6);
        assert_eq!(bin_index(0.3, 10), 2);
        assert_eq!(bin_index(0.30000000000000004, 10), 3);
        assert_eq!(bin_index(0.0, 10), 0);
        assert_eq!(bin_index(1.0, 10), 9);
        assert_eq!(bin_index(1.0, 1), 0);
        assert_close!(
            expected_calibration_error(&[true, false], &[0.7, 0.75], 10),
            0.525
        );
    }

    /// The double just above 1/3 times 3 rounds to exactly 1.0, so a naive
    /// `ceil(c * bins) - 1` would put it in bin 0; it belongs in (1/3, 2/3].
    ///   right: bin 0 (T,1/3) -> |1 - 1/3| = 2/3; bin 1 (F,1/3+) -> 1/3; ECE 1/2
    ///   wrong: both in bin 0 -> |1 - 2/3| / 2 = 1/6
    #[test]
    fn ece_binning_survives_rounding_onto_an_edge() {
        let third = 1.0 / 3.0;
        let above = 0.33333333333333337; // next double after 1/3
        assert!(above > third && above * 3.0 == 1.0);
        assert_eq!(bin_index(third, 3), 0);
        assert_eq!(bin_index(above, 3), 1);
        assert_close!(
            expected_calibration_error(&[true, false], &[third, above], 3),
            0.5
        );
    }

    #[test]
    fn ece_out_of_range_confidence_does_not_panic() {
        // -0.5 -> bin 0, 1.5 -> last bin; values kept: |1 - (-0.5)| + |0 - 1.5| = 3, / 2.
        assert_close!(
            expected_calibration_error(&[true, false], &[-0.5, 1.5], 4),
            1.5
        );
    }

    #[test]
    fn ece_empty_or_no_bins() {
        assert_eq!(expected_calibration_error(&[], &[], 10), 0.0);
        assert_eq!(expected_calibration_error(&[true], &[0.5], 0), 0.0);
    }

    #[test]
    #[should_panic(expected = "correct and confidence must have the same length")]
    fn ece_length_mismatch_panics() {
        let _ = expected_calibration_error(&[true], &[], 10);
    }

    // ---- spans ----

    #[test]
    fn spans_perfect() {
        let gold = vec![vec![span(0, 5, "PER"), span(7, 9, "ORG")], vec![]];
        let r = spans(&gold, &gold);
        assert_eq!((r.n, r.true_positives, r.predicted, r.gold), (2, 2, 2, 2));
        assert_close!(r.precision, 1.0);
        assert_close!(r.recall, 1.0);
        assert_close!(r.f1, 1.0);
    }

    #[test]
    fn spans_label_mismatch() {
        // Same offsets, wrong label on the second span: 1 of 2 correct.
        let gold = vec![vec![span(0, 5, "PER"), span(10, 15, "ORG")]];
        let pred = vec![vec![span(0, 5, "PER"), span(10, 15, "LOC")]];
        let r = spans(&gold, &pred);
        assert_eq!((r.true_positives, r.predicted, r.gold), (1, 2, 2));
        assert_close!(r.precision, 0.5);
        assert_close!(r.recall, 0.5);
        assert_close!(r.f1, 0.5);
    }

    #[test]
    fn spans_boundary_mismatch() {
        // Off-by-one start or end is not a match.
        let gold = vec![vec![span(3, 8, "LOC"), span(20, 25, "PER")]];
        let pred = vec![vec![span(2, 8, "LOC"), span(20, 26, "PER")]];
        let r = spans(&gold, &pred);
        assert_eq!((r.true_positives, r.predicted, r.gold), (0, 2, 2));
        assert_close!(r.precision, 0.0);
        assert_close!(r.recall, 0.0);
        assert_close!(r.f1, 0.0);
    }

    /// Micro over items, by hand:
    ///   item 0: gold {PER 0-5, ORG 10-15}, pred {PER 0-5, LOC 10-15}   tp 1, p 2, g 2
    ///   item 1: gold {LOC 3-8},            pred {LOC 2-8}              tp 0, p 1, g 1
    ///   item 2: gold {},                   pred {PER 0-5}              tp 0, p 1, g 0
    ///   item 3: gold {PER 4-6},            pred {PER 4-6, PER 4-6}     tp 1, p 1, g 1
    ///   tp 2, predicted 5, gold 4 -> P 2/5, R 1/2, F1 2*2/(5+4) = 4/9
    /// Item 2's PER 0-5 matches item 0's gold only across items, so it is a miss.
    #[test]
    fn spans_micro_over_items() {
        let gold = vec![
            vec![span(0, 5, "PER"), span(10, 15, "ORG")],
            vec![span(3, 8, "LOC")],
            vec![],
            vec![span(4, 6, "PER")],
        ];
        let pred = vec![
            vec![span(0, 5, "PER"), span(10, 15, "LOC")],
            vec![span(2, 8, "LOC")],
            vec![span(0, 5, "PER")],
            vec![span(4, 6, "PER"), span(4, 6, "PER")],
        ];
        let r = spans(&gold, &pred);
        assert_eq!(
            r,
            SpanReport {
                n: 4,
                true_positives: 2,
                predicted: 5,
                gold: 4,
                precision: 0.4,
                recall: 0.5,
                f1: 4.0 / 9.0,
            }
        );
    }

    #[test]
    fn spans_duplicates_count_once() {
        let gold = vec![vec![span(1, 2, "X"), span(1, 2, "X")]];
        let pred = vec![vec![span(1, 2, "X"), span(1, 2, "X"), span(1, 2, "X")]];
        let r = spans(&gold, &pred);
        assert_eq!((r.true_positives, r.predicted, r.gold), (1, 1, 1));
        assert_close!(r.f1, 1.0);
    }

    #[test]
    fn spans_empty() {
        let zero = SpanReport {
            n: 0,
            true_positives: 0,
            predicted: 0,
            gold: 0,
            precision: 0.0,
            recall: 0.0,
            f1: 0.0,
        };
        assert_eq!(spans(&[], &[]), zero);
        // Items present but no spans anywhere: still all zeros, no NaN.
        assert_eq!(
            spans(&[vec![], vec![]], &[vec![], vec![]]),
            SpanReport { n: 2, ..zero }
        );
    }

    #[test]
    fn spans_no_predictions_or_no_gold() {
        let some = vec![vec![span(0, 1, "A")]];
        let none = vec![vec![]];
        let r = spans(&some, &none);
        assert_eq!((r.predicted, r.gold), (0, 1));
        assert_eq!((r.precision, r.recall, r.f1), (0.0, 0.0, 0.0));
        let r = spans(&none, &some);
        assert_eq!((r.predicted, r.gold), (1, 0));
        assert_eq!((r.precision, r.recall, r.f1), (0.0, 0.0, 0.0));
    }

    #[test]
    #[should_panic(expected = "gold and pred must have the same number of items")]
    fn spans_length_mismatch_panics() {
        let _ = spans(&[vec![]], &[]);
    }
}
