//! How the learner's distribution joins the language model's, and the calibration on top.
//!
//! The learner only knows the labels people have used (`seen`); every other label keeps the
//! probability the language model gave it, so a label nobody has used yet can still win.
//! Within the seen labels the two distributions are mixed with weight `w` on the learner,
//! either linearly or geometrically (a product of experts), and the result is sharpened or
//! softened by a temperature. All three are fitted on cross-validation folds.
use serde::{Deserialize, Serialize};

/// Probability floor, so a log-loss stays finite.
const FLOOR: f64 = 1e-12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixKind {
    /// `(1 − w)·lm + w·m·learner` over the seen labels (m: the language model's mass there).
    Linear,
    /// `lm^(1 − w) · learner^w` over the seen labels, renormalised to the same mass m.
    Geometric,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    pub kind: MixKind,
    /// The learner's weight, 0 (language model alone) to 1 (learner alone on seen labels).
    pub weight: f64,
    /// Applied last: `p^(1/T)`, renormalised.
    pub temperature: f64,
}

impl Mix {
    /// The language model alone, uncalibrated.
    pub const NONE: Mix = Mix {
        kind: MixKind::Linear,
        weight: 0.0,
        temperature: 1.0,
    };

    /// The mixed distribution over every label. Only the learner's distribution over the
    /// labels marked in `seen` counts (renormalised there).
    pub fn apply(&self, lm: &[f64], learner: &[f64], seen: &[bool]) -> Vec<f64> {
        let mass: f64 = lm
            .iter()
            .zip(seen)
            .filter(|(_, &s)| s)
            .map(|(p, _)| p)
            .sum();
        let known: f64 = learner
            .iter()
            .zip(seen)
            .filter(|(_, &s)| s)
            .map(|(p, _)| p)
            .sum();
        let learner: Vec<f64> = learner
            .iter()
            .zip(seen)
            .map(|(&q, &s)| if s && known > 0.0 { q / known } else { 0.0 })
            .collect();
        let w = self.weight;
        let mut p: Vec<f64> = match self.kind {
            MixKind::Linear => lm
                .iter()
                .zip(&learner)
                .zip(seen)
                .map(|((&l, &q), &s)| if s { (1.0 - w) * l + w * mass * q } else { l })
                .collect(),
            MixKind::Geometric => {
                let mut p: Vec<f64> = lm
                    .iter()
                    .zip(&learner)
                    .zip(seen)
                    .map(|((&l, &q), &s)| {
                        if s {
                            (l.max(FLOOR).ln() * (1.0 - w) + q.max(FLOOR).ln() * w).exp()
                        } else {
                            l
                        }
                    })
                    .collect();
                let inside: f64 = p.iter().zip(seen).filter(|(_, &s)| s).map(|(v, _)| v).sum();
                if inside > 0.0 {
                    for (v, &s) in p.iter_mut().zip(seen) {
                        if s {
                            *v *= mass / inside;
                        }
                    }
                }
                p
            }
        };
        if (self.temperature - 1.0).abs() > 1e-12 {
            temper(&mut p, self.temperature);
        }
        p
    }
}

/// `p^(1/T)`, renormalised.
pub fn temper(p: &mut [f64], temperature: f64) {
    let inv = 1.0 / temperature;
    let logs: Vec<f64> = p.iter().map(|v| v.max(FLOOR).ln() * inv).collect();
    let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (v, l) in p.iter_mut().zip(&logs) {
        *v = (l - max).exp();
        sum += *v;
    }
    p.iter_mut().for_each(|v| *v /= sum);
}

/// Negative log-likelihood of label `y`.
pub fn nll(p: &[f64], y: usize) -> f64 {
    -p[y].max(FLOOR).ln()
}

/// Mean negative log-likelihood of the true labels.
pub fn log_loss<'a>(rows: impl Iterator<Item = (&'a [f64], usize)>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (p, y) in rows {
        sum += nll(p, y);
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// The first candidate (they come simplest first) whose mean loss is within one standard error
/// of the best one's, the error taken over the per-answer differences. With few answers a
/// bigger weight or a sharper temperature must win clearly before it is taken: the folds are
/// small, and a choice that only fits their noise costs accuracy on the next items.
pub fn one_standard_error<T: Copy>(candidates: &[(T, Vec<f64>)]) -> Option<T> {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let best = candidates
        .iter()
        .min_by(|a, b| mean(&a.1).total_cmp(&mean(&b.1)))?;
    candidates.iter().find_map(|(c, losses)| {
        let diff: Vec<f64> = losses.iter().zip(&best.1).map(|(a, b)| a - b).collect();
        let n = diff.len().max(1) as f64;
        let m = mean(&diff);
        let var = diff.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        (m <= (var / n).sqrt() + 1e-12).then_some(*c)
    })
}

/// The temperature minimising the log-loss of `rows`, on a grid of ln T in [ln 1/4, ln 4].
/// It changes no argmax, so unlike the weight it needs no guard against noise. (Capping it at
/// T >= 1 was tried: the mix is underconfident more often than not, and ECE got worse.)
pub fn fit_temperature(rows: &[(Vec<f64>, usize)]) -> f64 {
    let loss = |t: f64| {
        rows.iter()
            .map(|(p, y)| {
                let mut p = p.clone();
                temper(&mut p, t);
                nll(&p, *y)
            })
            .sum::<f64>()
    };
    (-40..=40)
        .map(|k| (k as f64 * 4f64.ln() / 40.0).exp())
        .map(|t| (t, loss(t)))
        .fold((1.0, loss(1.0)), |best, (t, l)| {
            if l < best.1 - 1e-9 {
                (t, l)
            } else {
                best
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    const LM: [f64; 4] = [0.4, 0.3, 0.2, 0.1];
    const SEEN: [bool; 4] = [true, true, false, false];

    #[test]
    fn weight_zero_is_the_language_model() {
        let learner = [0.1, 0.9, 0.0, 0.0];
        for kind in [MixKind::Linear, MixKind::Geometric] {
            let m = Mix {
                kind,
                weight: 0.0,
                temperature: 1.0,
            };
            let p = m.apply(&LM, &learner, &SEEN);
            for (a, b) in p.iter().zip(LM) {
                assert!((a - b).abs() < 1e-12, "{kind:?}: {p:?}");
            }
        }
    }

    #[test]
    fn unseen_labels_keep_the_language_models_mass() {
        let learner = [0.1, 0.9, 0.0, 0.0];
        for kind in [MixKind::Linear, MixKind::Geometric] {
            let m = Mix {
                kind,
                weight: 0.8,
                temperature: 1.0,
            };
            let p = m.apply(&LM, &learner, &SEEN);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert_eq!((p[2], p[3]), (0.2, 0.1), "{kind:?}");
            // The learner's favourite overtakes the language model's among the seen labels.
            assert!(p[1] > p[0], "{kind:?}: {p:?}");
        }
    }

    #[test]
    fn linear_weight_one_puts_the_learner_on_the_seen_mass() {
        let m = Mix {
            kind: MixKind::Linear,
            weight: 1.0,
            temperature: 1.0,
        };
        let p = m.apply(&LM, &[0.25, 0.75, 0.0, 0.0], &SEEN);
        assert!((p[0] - 0.7 * 0.25).abs() < 1e-12 && (p[1] - 0.7 * 0.75).abs() < 1e-12);
    }

    #[test]
    fn a_choice_must_win_by_a_standard_error() {
        // The second candidate is better by far less than the spread of its differences.
        let noisy = vec![
            ("simple", vec![1.0, 1.0, 1.0, 1.0]),
            ("complex", vec![0.5, 1.5, 0.4, 1.5]),
        ];
        assert_eq!(one_standard_error(&noisy), Some("simple"));
        // Better on every answer: it wins.
        let clear = vec![
            ("simple", vec![1.0, 1.0, 1.0, 1.0]),
            ("complex", vec![0.6, 0.5, 0.7, 0.6]),
        ];
        assert_eq!(one_standard_error(&clear), Some("complex"));
        assert_eq!(one_standard_error::<&str>(&[]), None);
    }

    #[test]
    fn the_fitted_temperature_softens_overconfident_rows() {
        // Always 0.9 sure, right 70% of the time: the best temperature (about 2.6) brings the
        // confidence down to 0.7.
        let rows: Vec<(Vec<f64>, usize)> = (0..100)
            .map(|i| (vec![0.9, 0.1], usize::from(i % 10 >= 7)))
            .collect();
        let t = fit_temperature(&rows);
        assert!(t > 1.5, "{t}");
        let mut p = vec![0.9, 0.1];
        temper(&mut p, t);
        assert!((p[0] - 0.7).abs() < 0.05, "{p:?}");
    }
}
