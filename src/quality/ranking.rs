//! Rankings of response sources (models, seeds, imported sources) from A/B preference votes:
//! win rates, a Bradley–Terry fit with bootstrap intervals, online Elo and position bias.
//!
//! Bradley–Terry maximises, over log-strengths `θ` (σ = logistic function),
//!
//! ```text
//!   Σ_votes  s·log σ(θa − θb) + (1 − s)·log σ(θb − θa)        (a tie, s = ½, is half a win each)
//! + Σ_sources ½·log σ(θi) + ½·log σ(−θi)                      (regulariser)
//! ```
//!
//! The regulariser is one virtual tie per source against an opponent of strength 0 (the
//! log-F(1,1) prior of penalised logistic regression). Without it a source that never lost
//! (or never won) has an infinite MLE; with it the objective is strictly concave and the
//! optimum finite and unique, while its weight (one game per source) fades as votes accrue.
//! `scripts/reference/bradley_terry.py` fits the same objective with scipy for the tests.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One vote between two sources. `score` is 1.0 if `a` won, 0.0 if `b` won, 0.5 for a tie.
/// (Both-bad votes are not comparisons; callers leave them out, or pass them as ties if they choose.)
/// Votes with `a == b` carry no information and are ignored by every function here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: usize,
    pub b: usize,
    pub score: f64,
}

/// A Bradley–Terry fit. `strength` holds log-strengths centred to mean 0 over the sources that
/// appear in at least one vote; sources with no votes get exactly 0 (the prior's "average").
/// `P(i beats j) = σ(strength[i] − strength[j])`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BtFit {
    pub strength: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
}

/// A confidence interval on the centred log-strength scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// Per-source tallies. Ties count half a win in `rate`; `rate` is 0 when `games` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct WinRate {
    pub wins: f64,
    pub losses: f64,
    pub ties: f64,
    pub games: f64,
    pub rate: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `log σ(x)` without overflow for large |x|.
fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// `wins[i][j]`: wins of `i` over `j`, a tie counting half to each side.
fn tally(n: usize, comps: &[Comparison]) -> Vec<Vec<f64>> {
    let mut wins = vec![vec![0.0; n]; n];
    for c in comps.iter().filter(|c| c.a != c.b) {
        wins[c.a][c.b] += c.score;
        wins[c.b][c.a] += 1.0 - c.score;
    }
    wins
}

fn objective(wins: &[Vec<f64>], theta: &[f64]) -> f64 {
    let mut f = 0.0;
    for (i, row) in wins.iter().enumerate() {
        f += 0.5 * (log_sigmoid(theta[i]) + log_sigmoid(-theta[i]));
        for (j, &w) in row.iter().enumerate() {
            if w > 0.0 {
                f += w * log_sigmoid(theta[i] - theta[j]);
            }
        }
    }
    f
}

/// Solves `h·x = g` for symmetric positive definite `h` by Cholesky (`h` is overwritten).
fn solve_spd(mut h: Vec<Vec<f64>>, g: &[f64]) -> Vec<f64> {
    let n = g.len();
    for j in 0..n {
        let d = (h[j][j] - (0..j).map(|k| h[j][k] * h[j][k]).sum::<f64>()).sqrt();
        h[j][j] = d;
        for i in j + 1..n {
            h[i][j] = (h[i][j] - (0..j).map(|k| h[i][k] * h[j][k]).sum::<f64>()) / d;
        }
    }
    let mut x = g.to_vec();
    for i in 0..n {
        x[i] = (x[i] - (0..i).map(|k| h[i][k] * x[k]).sum::<f64>()) / h[i][i];
    }
    for i in (0..n).rev() {
        x[i] = (x[i] - (i + 1..n).map(|k| h[k][i] * x[k]).sum::<f64>()) / h[i][i];
    }
    x
}

/// Regularised Bradley–Terry fit (see the module doc) by damped Newton, to steps below 1e-10.
/// Newton rather than MM: MM crawls (thousands of steps) when a source rarely loses.
pub fn bradley_terry(n: usize, comps: &[Comparison]) -> BtFit {
    let wins = tally(n, comps);
    let mut theta = vec![0.0; n];
    let mut iterations = 0;
    while iterations < 200 {
        iterations += 1;
        // Gradient and negated Hessian; the prior's σ(1−σ) on the diagonal keeps it definite.
        let mut grad = vec![0.0; n];
        let mut hess = vec![vec![0.0; n]; n];
        for i in 0..n {
            let p = sigmoid(theta[i]);
            grad[i] += 0.5 - p;
            hess[i][i] += p * (1.0 - p);
            for j in (0..n).filter(|&j| j != i) {
                let games = wins[i][j] + wins[j][i];
                let p = sigmoid(theta[i] - theta[j]);
                grad[i] += wins[i][j] - games * p;
                hess[i][i] += games * p * (1.0 - p);
                hess[i][j] -= games * p * (1.0 - p);
            }
        }
        let step = solve_spd(hess, &grad);
        let at = |t: f64| -> Vec<f64> { theta.iter().zip(&step).map(|(x, d)| x + t * d).collect() };
        if step.iter().all(|d| d.abs() < 1e-10) {
            theta = at(1.0);
            break;
        }
        // Halve the step while the objective drops by more than rounding (far from the optimum).
        let f0 = objective(&wins, &theta);
        let mut t = 1.0;
        while t > 1e-6 && objective(&wins, &at(t)) < f0 - 1e-12 * f0.abs() {
            t *= 0.5;
        }
        theta = at(t);
    }
    // Centre over sources that played; the others stay at the prior's mode, 0.
    let played: Vec<usize> = (0..n)
        .filter(|&i| (0..n).any(|j| wins[i][j] + wins[j][i] > 0.0))
        .collect();
    let mean = played.iter().map(|&i| theta[i]).sum::<f64>() / played.len().max(1) as f64;
    let mut strength = vec![0.0; n];
    for &i in &played {
        strength[i] = theta[i] - mean;
    }
    BtFit {
        strength,
        iterations,
    }
}

/// Linear-interpolated quantile of sorted, non-empty `s` (numpy's default).
fn quantile(s: &[f64], q: f64) -> f64 {
    let h = (s.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

/// Percentile-bootstrap intervals for `bradley_terry` strengths: `rounds` refits on votes
/// resampled with replacement (as Chatbot Arena does), seeded so results are reproducible.
/// `level` is the coverage, e.g. 0.95. A source absent from a resample counts 0 in that round;
/// sources with no votes at all get [0, 0].
pub fn bootstrap_intervals(
    n: usize,
    comps: &[Comparison],
    rounds: usize,
    seed: u64,
    level: f64,
) -> Vec<Interval> {
    assert!(rounds > 0 && 0.0 < level && level < 1.0);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut samples = vec![Vec::with_capacity(rounds); n];
    let mut resample = Vec::with_capacity(comps.len());
    for _ in 0..rounds {
        resample.clear();
        resample.extend((0..comps.len()).map(|_| comps[rng.random_range(0..comps.len())]));
        for (s, x) in samples.iter_mut().zip(bradley_terry(n, &resample).strength) {
            s.push(x);
        }
    }
    let tail = (1.0 - level) / 2.0;
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            Interval {
                lo: quantile(&s, tail),
                hi: quantile(&s, 1.0 - tail),
            }
        })
        .collect()
}

/// Online Elo in vote order as on Chatbot Arena's first leaderboard: start 1000, scale 400,
/// base 10, update step `k` (Arena used 4). Order-dependent by design; prefer Bradley–Terry.
pub fn elo(n: usize, comps: &[Comparison], k: f64) -> Vec<f64> {
    let mut r = vec![1000.0; n];
    for c in comps.iter().filter(|c| c.a != c.b) {
        let expected_a = 1.0 / (1.0 + 10f64.powf((r[c.b] - r[c.a]) / 400.0));
        let delta = k * (c.score - expected_a);
        r[c.a] += delta;
        r[c.b] -= delta;
    }
    r
}

/// Bradley–Terry log-strengths on the Elo scale, as Arena reports them: `1000 + 400·log10(e)·s`,
/// so a 400-point gap means 10:1 odds. Works for intervals' bounds too.
pub fn bt_to_elo_scale(strength: &[f64]) -> Vec<f64> {
    let to_elo = |s: &f64| 1000.0 + 400.0 * std::f64::consts::LOG10_E * s;
    strength.iter().map(to_elo).collect()
}

/// Wins, losses and ties per source: score above ½ is a win for `a`, below ½ for `b`, ½ a tie.
pub fn win_rates(n: usize, comps: &[Comparison]) -> Vec<WinRate> {
    let mut w = vec![WinRate::default(); n];
    for c in comps.iter().filter(|c| c.a != c.b) {
        if c.score == 0.5 {
            w[c.a].ties += 1.0;
            w[c.b].ties += 1.0;
        } else {
            let (winner, loser) = if c.score > 0.5 {
                (c.a, c.b)
            } else {
                (c.b, c.a)
            };
            w[winner].wins += 1.0;
            w[loser].losses += 1.0;
        }
    }
    for r in &mut w {
        r.games = r.wins + r.losses + r.ties;
        r.rate = (r.wins + 0.5 * r.ties) / r.games.max(1.0); // 0 with no games
    }
    w
}

/// Position bias: the share of decided votes (ties and both-bad left out) won by the response
/// shown on the left; 0.5 means no bias, `None` when no vote was decided.
pub fn left_win_share(left_wins: u64, right_wins: u64) -> Option<f64> {
    let total = left_wins + right_wins;
    (total > 0).then(|| left_wins as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Votes written as "0>1" (0 beats 1), "0<1" (1 beats 0) or "0=1" (tie), as in the script.
    fn votes(s: &str) -> Vec<Comparison> {
        let vote = |v: &str| {
            let at = v.find(['>', '<', '=']).unwrap();
            let score = [1.0, 0.0, 0.5]["><=".find(&v[at..at + 1]).unwrap()];
            let (a, b) = (v[..at].parse().unwrap(), v[at + 1..].parse().unwrap());
            Comparison { a, b, score }
        };
        s.split_whitespace().map(vote).collect()
    }

    fn random_fixture() -> (usize, Vec<Comparison>) {
        #[derive(Deserialize)]
        struct Fixture {
            n: usize,
            votes: Vec<(usize, usize, f64)>,
        }
        let f: Fixture =
            serde_json::from_str(include_str!("../../tests/fixtures/bt_votes.json")).unwrap();
        let comparison = |(a, b, score)| Comparison { a, b, score };
        (f.n, f.votes.into_iter().map(comparison).collect())
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        let diff = got.iter().zip(want).map(|(g, w)| (g - w).abs());
        let diff = diff.fold(0.0, f64::max);
        println!("max |got - want| = {diff:.2e}");
        assert!(diff < tol, "got {got:?}, want {want:?}");
    }

    // Expected strengths were printed by scripts/reference/bradley_terry.py (scipy L-BFGS-B on
    // the same objective, centred the same way), for the same fixtures.
    #[test]
    fn matches_scipy_reference() {
        let small = votes("0>1 0>1 0<1 1>2 1>2 1<2 0>2 0>2");
        let want = [0.854902, 0.0, -0.854902];
        assert_close(&bradley_terry(3, &small).strength, &want, 1e-3);

        // Source 0 never loses, 3 never wins, 4 has no votes.
        let ties = votes("0>1 0=1 2=0 0>2 0>3 1=2 1>2 2>1 3<1 2>3 3=2");
        let want = [1.015281, 0.143064, 0.026665, -1.185010, 0.0];
        assert_close(&bradley_terry(5, &ties).strength, &want, 1e-3);

        let (n, random) = random_fixture();
        let fit = bradley_terry(n, &random);
        let want = [0.918822, 0.632575, 0.029064, 0.083368, -0.550276, -1.113553];
        assert_close(&fit.strength, &want, 1e-3);
        assert!(fit.iterations < 20, "{} Newton steps", fit.iterations);
    }

    #[test]
    fn swapping_sides_gives_the_same_fit() {
        let (n, comps) = random_fixture();
        let swap = |c: &Comparison| Comparison {
            a: c.b,
            b: c.a,
            score: 1.0 - c.score,
        };
        let swapped: Vec<_> = comps.iter().map(swap).collect();
        assert_close(
            &bradley_terry(n, &swapped).strength,
            &bradley_terry(n, &comps).strength,
            1e-12,
        );
    }

    #[test]
    fn two_sources_closed_form() {
        // One vote, 0 beats 1. The objective is unchanged by (θ0, θ1) -> (−θ1, −θ0) and strictly
        // concave, so θ1 = −θ0 = −t. Setting d/dθ0 = 0: 1 − σ(2t) + ½ − σ(t) = 0. With x = e^t,
        // σ(2t) = x²/(1+x²), σ(t) = x/(1+x); clearing denominators gives x³ − x² − x − 3 = 0,
        // whose one real root (Cardano, x = y + ⅓, y³ − 4/3·y − 92/27 = 0) is
        // x = (1 + ∛(46 + 6√57) + ∛(46 − 6√57)) / 3 ≈ 2.1304, t = ln x ≈ 0.7563.
        let r = 6.0 * 57f64.sqrt();
        let t = ((1.0 + (46.0 + r).cbrt() + (46.0 - r).cbrt()) / 3.0).ln();
        assert_close(&bradley_terry(2, &votes("0>1")).strength, &[t, -t], 1e-9);
        // Unregularised the MLE would be infinite; here even 1000-0 stays finite.
        let s = bradley_terry(2, &votes(&"0>1 ".repeat(1000))).strength;
        assert!(s[0].is_finite() && s[0] > 3.0 && s[0] < 5.0, "{s:?}");
    }

    #[test]
    fn elo_by_hand() {
        // k = 32. Vote 1: equal ratings, E = 0.5, 0 gains 16: [1016, 984, 1000].
        // Vote 2 (1 ties 2): E1 = 1/(1 + 10^(16/400)) = 0.476990, Δ = 32·(0.5 − E1) = 0.736307.
        // Vote 3 (2 beats 0): gap 1016 − 999.263693 = 16.736307, E0 = 0.524067, Δ = −16.770140.
        let r = elo(3, &votes("0>1 1=2 0<2"), 32.0);
        assert_close(&r, &[999.229860, 984.736307, 1016.033833], 1e-5);
        let ln10 = std::f64::consts::LN_10;
        assert_close(&bt_to_elo_scale(&[ln10, 0.0]), &[1400.0, 1000.0], 1e-9);
    }

    #[test]
    fn win_rates_count_ties_half() {
        let w = win_rates(3, &votes("0>1 0=1 0<1 0>1"));
        let row = |r: &WinRate| (r.wins, r.losses, r.ties, r.games, r.rate);
        assert_eq!(row(&w[0]), (2.0, 1.0, 1.0, 4.0, 0.625));
        assert_eq!(row(&w[1]), (1.0, 2.0, 1.0, 4.0, 0.375));
        assert_eq!(row(&w[2]), (0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(left_win_share(3, 1), Some(0.75));
        assert_eq!(left_win_share(0, 0), None);
    }

    #[test]
    fn bootstrap_contains_estimate_shrinks_and_is_deterministic() {
        let (n, comps) = random_fixture();
        let point = bradley_terry(n, &comps).strength;
        let ci = bootstrap_intervals(n, &comps, 200, 7, 0.95);
        for (iv, p) in ci.iter().zip(&point) {
            assert!(iv.lo < *p && *p < iv.hi, "{iv:?} misses {p}");
        }
        assert_eq!(ci, bootstrap_intervals(n, &comps, 200, 7, 0.95));
        assert_ne!(ci, bootstrap_intervals(n, &comps, 200, 8, 0.95));
        // Four times the votes: widths should roughly halve.
        let narrower = bootstrap_intervals(n, &comps.repeat(4), 200, 7, 0.95);
        for (b, s) in ci.iter().zip(&narrower) {
            assert!(s.hi - s.lo < 0.7 * (b.hi - b.lo), "{s:?} vs {b:?}");
        }
        // A source with no votes sits at 0 with an empty interval.
        let iv = bootstrap_intervals(3, &votes("0>1 0=1"), 50, 1, 0.9);
        assert_eq!(iv[2], Interval { lo: 0.0, hi: 0.0 });
    }
}
