//! Inter-annotator agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha (nominal),
//! pairwise Cohen's kappa over shared items, and for NER exact-match span F1 and token alpha.
//!
//! Pure functions over plain data. On the fixtures in `scripts/reference/agreement.py` the
//! figures equal scikit-learn `cohen_kappa_score`, statsmodels
//! `fleiss_kappa(method='fleiss')` and the `krippendorff` package (nominal) to 1e-6. Where
//! those libraries return NaN (or raise), these functions return `None`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

/// Cohen's kappa of two annotators' labels on the same items (`a[i]` and `b[i]` label item
/// `i`): `(p_o - p_e) / (1 - p_e)`. `None` when the slices differ in length or are empty, and
/// when `p_e == 1`, i.e. both used one and the same label only (sklearn returns NaN there).
pub fn cohen_kappa<L: Eq + Hash>(a: &[L], b: &[L]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let n = a.len() as u64;
    let (mut ca, mut cb) = (HashMap::<&L, u64>::new(), HashMap::<&L, u64>::new());
    let mut agree = 0u64;
    for (x, y) in a.iter().zip(b) {
        *ca.entry(x).or_default() += 1;
        *cb.entry(y).or_default() += 1;
        agree += u64::from(x == y);
    }
    // n^2 * p_e, in integers so the undefined case is detected exactly.
    let chance: u64 = ca.iter().map(|(l, c)| c * cb.get(l).unwrap_or(&0)).sum();
    if chance == n * n {
        return None;
    }
    let p_o = agree as f64 / n as f64;
    let p_e = chance as f64 / (n * n) as f64;
    Some((p_o - p_e) / (1.0 - p_e))
}

/// Fleiss' kappa of an items × categories count table (`counts[i][c]` = raters who put item
/// `i` in category `c`). `None` when the table is empty, rows differ in length, items have
/// different numbers of raters or fewer than 2, or the expected agreement is 1 (a single
/// category used throughout; statsmodels returns NaN there).
pub fn fleiss_kappa(counts: &[Vec<u32>]) -> Option<f64> {
    let k = counts.first()?.len();
    let row_sum = |row: &Vec<u32>| row.iter().map(|&c| u64::from(c)).sum::<u64>();
    let r = row_sum(&counts[0]);
    if r < 2 || counts.iter().any(|row| row.len() != k || row_sum(row) != r) {
        return None;
    }
    let mut per_cat = vec![0u64; k];
    let mut p_sum = 0.0; // sum over items of the item's observed pairwise agreement
    for row in counts {
        let mut sq = 0u64;
        for (total, &c) in per_cat.iter_mut().zip(row) {
            *total += u64::from(c);
            sq += u64::from(c) * u64::from(c);
        }
        p_sum += (sq - r) as f64 / (r * (r - 1)) as f64;
    }
    let total = counts.len() as u64 * r;
    if per_cat.iter().map(|c| c * c).sum::<u64>() == total * total {
        return None;
    }
    let p_mean = p_sum / counts.len() as f64;
    let p_e: f64 = per_cat
        .iter()
        .map(|&c| (c as f64 / total as f64).powi(2))
        .sum();
    Some((p_mean - p_e) / (1.0 - p_e))
}

/// Krippendorff's alpha, nominal level, of reliability data given as units × coders
/// (`units[u][c]` = coder `c`'s value for unit `u`, `None` if missing; rows may differ in
/// length). The Python `krippendorff` package takes the transpose (coders × units). Units
/// with fewer than 2 values are not pairable and are dropped. `None` when no unit is pairable
/// or the pairable values are all the same (the package raises or returns NaN there).
pub fn krippendorff_alpha_nominal<L: Eq + Hash>(units: &[Vec<Option<L>>]) -> Option<f64> {
    let mut n_c: HashMap<&L, u64> = HashMap::new(); // pairable values per category
    let mut agree = 0.0; // sum of the coincidence matrix's diagonal
    for unit in units {
        let mut counts: HashMap<&L, u64> = HashMap::new();
        for v in unit.iter().flatten() {
            *counts.entry(v).or_default() += 1;
        }
        let m: u64 = counts.values().sum();
        if m < 2 {
            continue;
        }
        for (v, c) in counts {
            agree += (c * (c - 1)) as f64 / (m - 1) as f64;
            *n_c.entry(v).or_default() += c;
        }
    }
    let n: u64 = n_c.values().sum();
    let same: u64 = n_c.values().map(|c| c * c).sum();
    if n == 0 || same == n * n {
        return None;
    }
    // alpha = 1 - D_o / D_e with D_o = n - agree, D_e = (n^2 - sum n_c^2) / (n - 1).
    Some(1.0 - (n - 1) as f64 * (n as f64 - agree) / (n * n - same) as f64)
}

/// Cohen's kappa for every pair of annotators over the items both annotated, from
/// `(annotator, item, label)` rows. Returns `((a, b), kappa, n_shared_items)` with `a < b`,
/// sorted by the pair; pairs with no shared item are left out; `kappa` is `None` where
/// [`cohen_kappa`] is. If an annotator labels an item twice, the last row wins.
pub fn pairwise_cohen<A, I, L>(annotations: &[(A, I, L)]) -> Vec<((A, A), Option<f64>, usize)>
where
    A: Ord + Clone,
    I: Eq + Hash,
    L: Eq + Hash,
{
    let mut by: BTreeMap<&A, HashMap<&I, &L>> = BTreeMap::new();
    for (a, i, l) in annotations {
        by.entry(a).or_default().insert(i, l);
    }
    let coders: Vec<_> = by.into_iter().collect();
    let mut out = Vec::new();
    for (x, (a, ma)) in coders.iter().enumerate() {
        for (b, mb) in &coders[x + 1..] {
            let (la, lb): (Vec<&L>, Vec<&L>) = ma
                .iter()
                .filter_map(|(i, l)| mb.get(i).map(|m| (*l, *m)))
                .unzip();
            if !la.is_empty() {
                let pair = ((*a).clone(), (*b).clone());
                out.push((pair, cohen_kappa(&la, &lb), la.len()));
            }
        }
    }
    out
}

/// Exact-match span F1 between two annotators' `(start, end, label)` spans:
/// `2 |A ∩ B| / (|A| + |B|)` over distinct spans. Symmetric; 1.0 when both are empty.
pub fn span_f1<L: Eq + Hash>(a: &[(usize, usize, L)], b: &[(usize, usize, L)]) -> f64 {
    let (sa, sb): (HashSet<_>, HashSet<_>) = (a.iter().collect(), b.iter().collect());
    if sa.is_empty() && sb.is_empty() {
        return 1.0;
    }
    2.0 * sa.intersection(&sb).count() as f64 / (sa.len() + sb.len()) as f64
}

/// Whitespace-separated words of `text` as `(start, end)` char offsets (end exclusive).
pub fn whitespace_tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut n = 0;
    for (i, ch) in text.chars().enumerate() {
        match (ch.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
        n = i + 1;
    }
    out.extend(start.map(|s| (s, n)));
    out
}

/// One label per whitespace token of `text`: the label of the first span (char offsets,
/// end exclusive) that overlaps the token, or `"O"` when none does.
pub fn token_labels<'a, L: AsRef<str>>(text: &str, spans: &'a [(usize, usize, L)]) -> Vec<&'a str> {
    whitespace_tokens(text)
        .into_iter()
        .map(|(ts, te)| {
            let hit = spans.iter().find(|(s, e, _)| *s < te && ts < *e);
            hit.map_or("O", |(_, _, l)| l.as_ref())
        })
        .collect()
}

/// Krippendorff's alpha (nominal) over the tokens of `text`, each annotator's spans mapped to
/// per-token labels by [`token_labels`]: tokens are the units, annotators the coders.
pub fn token_alpha<L: AsRef<str>>(
    text: &str,
    annotators: &[Vec<(usize, usize, L)>],
) -> Option<f64> {
    let per: Vec<Vec<&str>> = annotators.iter().map(|s| token_labels(text, s)).collect();
    let n_tokens = per.first().map_or(0, Vec::len);
    let units: Vec<Vec<Option<&str>>> = (0..n_tokens)
        .map(|t| per.iter().map(|labels| Some(labels[t])).collect())
        .collect();
    krippendorff_alpha_nominal(&units)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: `python scripts/reference/agreement.py` (scikit-learn 1.9.1,
    // statsmodels 0.15.0, krippendorff 0.9.0).
    fn close(got: Option<f64>, want: f64) {
        let got = got.expect("defined");
        assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
    }

    fn some(units: &[Vec<u32>]) -> Vec<Vec<Option<u32>>> {
        units
            .iter()
            .map(|u| u.iter().map(|&v| Some(v)).collect())
            .collect()
    }

    /// items × raters labels 0..3 → items × categories counts.
    fn table(units: &[Vec<u32>]) -> Vec<Vec<u32>> {
        let k = units.iter().flatten().max().map_or(0, |&m| m as usize + 1);
        let mut t = vec![vec![0; k]; units.len()];
        for (row, u) in t.iter_mut().zip(units) {
            u.iter().for_each(|&v| row[v as usize] += 1);
        }
        t
    }

    /// (cohen on raters 0 and 1, fleiss, alpha) of complete units × raters data.
    fn check(units: &[Vec<u32>], want: [f64; 3]) {
        let (a, b): (Vec<u32>, Vec<u32>) = units.iter().map(|u| (u[0], u[1])).unzip();
        close(cohen_kappa(&a, &b), want[0]);
        close(fleiss_kappa(&table(units)), want[1]);
        close(krippendorff_alpha_nominal(&some(units)), want[2]);
    }

    fn rows(v: &[[u32; 2]]) -> Vec<Vec<u32>> {
        v.iter().map(|r| r.to_vec()).collect()
    }

    #[test]
    fn hand_checkable() {
        // p_o = 7/10, p_e = (4*4 + 4*3 + 2*3)/100 = 0.34, kappa = 0.36/0.66.
        let u = rows(&[
            [0, 0],
            [0, 0],
            [0, 1],
            [1, 1],
            [1, 1],
            [1, 2],
            [2, 2],
            [2, 2],
            [0, 0],
            [1, 0],
        ]);
        check(&u, [0.545454545455, 0.541984732824, 0.564885496183]);
    }

    #[test]
    fn perfect_agreement() {
        let u: Vec<Vec<u32>> = [0, 1, 2, 1, 0].iter().map(|&v| vec![v; 3]).collect();
        check(&u, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn label_used_by_one_annotator() {
        let u = rows(&[
            [0, 0],
            [1, 1],
            [2, 0],
            [2, 1],
            [0, 0],
            [1, 1],
            [0, 1],
            [2, 0],
        ]);
        check(&u, [0.272727272727, 0.209876543210, 0.259259259259]);
    }

    #[test]
    fn random_fixture() {
        let fx: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/agreement.json")).unwrap();
        let full: Vec<Vec<u32>> = serde_json::from_value(fx["ratings"].clone()).unwrap();
        check(&full, [0.430199430199, 0.585101367280, 0.587694483734]);
        let missing: Vec<Vec<Option<u32>>> =
            serde_json::from_value(fx["ratings_missing"].clone()).unwrap();
        close(krippendorff_alpha_nominal(&missing), 0.565891472868);
    }

    #[test]
    fn missing_values_and_pairwise() {
        // Krippendorff (2011) nominal example, units × coders; alpha = 0.743.
        let n = None;
        let kd: Vec<Vec<Option<u32>>> = [
            [Some(1), Some(1), n, Some(1)],
            [Some(2), Some(2), Some(3), Some(2)],
            [Some(3), Some(3), Some(3), Some(3)],
            [Some(3), Some(3), Some(3), Some(3)],
            [Some(2), Some(2), Some(2), Some(2)],
            [Some(1), Some(2), Some(3), Some(4)],
            [Some(4), Some(4), Some(4), Some(4)],
            [Some(1), Some(1), Some(2), Some(1)],
            [Some(2), Some(2), Some(2), Some(2)],
            [n, Some(5), Some(5), Some(5)],
            [n, n, Some(1), Some(1)],
            [n, Some(3), n, n],
        ]
        .iter()
        .map(|r| r.to_vec())
        .collect();
        close(krippendorff_alpha_nominal(&kd), 0.743421052632);
        let rows: Vec<(&str, usize, u32)> = kd
            .iter()
            .enumerate()
            .flat_map(|(i, u)| {
                let coders = ["A", "B", "C", "D"].into_iter().zip(u);
                coders.filter_map(move |(c, v)| v.map(|v| (c, i, v)))
            })
            .collect();
        let got = pairwise_cohen(&rows);
        let want = [
            (("A", "B"), 0.844827586207, 9),
            (("A", "C"), 0.478260869565, 8),
            (("A", "D"), 0.850000000000, 9),
            (("B", "C"), 0.542372881356, 9),
            (("B", "D"), 0.870129870130, 10),
            (("C", "D"), 0.615384615385, 10),
        ];
        assert_eq!(got.len(), want.len());
        for ((pair, k, n), (wpair, wk, wn)) in got.into_iter().zip(want) {
            assert_eq!((pair, n), (wpair, wn));
            close(k, wk);
        }
    }

    #[test]
    fn undefined_cases() {
        assert_eq!(cohen_kappa::<u32>(&[], &[]), None);
        assert_eq!(cohen_kappa(&[1, 1], &[1]), None);
        assert_eq!(cohen_kappa(&[1, 1, 1], &[1, 1, 1]), None); // sklearn: NaN
        close(cohen_kappa(&[1, 1], &[2, 2]), 0.0); // p_e = 0, p_o = 0
        assert_eq!(fleiss_kappa(&[]), None);
        assert_eq!(fleiss_kappa(&[vec![2, 0], vec![1, 0]]), None); // unequal raters
        assert_eq!(fleiss_kappa(&[vec![1, 0], vec![0, 1]]), None); // one rater each
        assert_eq!(fleiss_kappa(&[vec![3, 0], vec![3, 0]]), None); // statsmodels: NaN
        let one_value = vec![vec![Some(1), Some(1)], vec![Some(1), None]];
        assert_eq!(krippendorff_alpha_nominal(&one_value), None);
        // Value 2 is only in an unpairable unit: the package returns NaN.
        let unpairable = vec![vec![Some(1), Some(1)], vec![Some(2), None]];
        assert_eq!(krippendorff_alpha_nominal(&unpairable), None);
        assert_eq!(
            krippendorff_alpha_nominal::<u32>(&[vec![Some(1), None]]),
            None
        );
    }

    #[test]
    fn ner_spans_and_tokens() {
        let text = "Ada  Lovelace met Charles Babbage in London in 1833 .";
        let a = vec![(0, 13, "PER"), (18, 33, "PER"), (37, 43, "LOC")];
        let b = vec![
            (0, 13, "PER"),
            (18, 25, "PER"),
            (37, 43, "ORG"),
            (47, 51, "DATE"),
        ];
        assert_eq!(
            token_labels(text, &a),
            ["PER", "PER", "O", "PER", "PER", "O", "LOC", "O", "O", "O"]
        );
        assert_eq!(
            token_labels(text, &b),
            ["PER", "PER", "O", "PER", "O", "O", "ORG", "O", "DATE", "O"]
        );
        close(token_alpha(text, &[a.clone(), b.clone()]), 0.540322580645);
        // One exact match out of 3 + 4 spans.
        assert!((span_f1(&a, &b) - 2.0 / 7.0).abs() < 1e-12);
        assert_eq!(span_f1(&a, &b), span_f1(&b, &a));
        assert_eq!(span_f1::<&str>(&[], &[]), 1.0);
        assert_eq!(whitespace_tokens(" é b "), [(1, 2), (3, 4)]);
    }
}
