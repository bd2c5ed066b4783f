//! A project's learner: logistic regression on the stored sentence embeddings of the items
//! people labeled, mixed with the language model's distribution.
//!
//! Everything that is chosen is chosen on cross-validation folds of the human labels: the L2
//! strength, the mixing form and weight (minimum log-loss of the mix), and the temperature.
//! With few labels the folds rarely hold an item whose label was seen in the other folds, so
//! the weight stays at or near 0 and the mix is the language model; it rises as labels
//! accumulate and the learner proves itself on held-out answers.
use super::error::LearnError;
use super::logistic::{self, FitOptions, Rows, Softmax};
use super::mix::{self, Mix, MixKind};
use super::stored;
use serde::{Deserialize, Serialize};

/// Human-labeled items: embedding, label index and the language model's distribution.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    dim: usize,
    labels: usize,
    x: Vec<f32>,
    y: Vec<usize>,
    lm: Vec<f64>,
    /// The embedding of each label's phrase, one pseudo-answer per label (empty: none).
    names: Vec<f32>,
}

impl TrainingSet {
    pub fn new(dim: usize, labels: usize) -> Self {
        TrainingSet {
            dim,
            labels,
            x: Vec::new(),
            y: Vec::new(),
            lm: Vec::new(),
            names: Vec::new(),
        }
    }

    /// Adds each label's phrase embedding as one more answer for that label, in every fold.
    /// With a few answers per label the name is worth about one more of them (Banking77 dev,
    /// 10 folds of 270 answers: 0.64 -> 0.72 for the regression alone), and a label nobody has
    /// used still has a direction in the regression.
    pub fn with_label_names(mut self, names: &[Vec<f32>]) -> Result<Self, LearnError> {
        if names.len() != self.labels {
            return Err(LearnError::Names {
                got: names.len(),
                want: self.labels,
            });
        }
        self.names.clear();
        for v in names {
            if v.len() != self.dim {
                return Err(LearnError::Dimension {
                    got: v.len(),
                    want: self.dim,
                });
            }
            self.names.extend_from_slice(v);
        }
        Ok(self)
    }

    /// Adds one answer. An item without a language-model distribution gets a uniform one.
    pub fn push(
        &mut self,
        embedding: &[f32],
        label: usize,
        lm: Option<&[f64]>,
    ) -> Result<(), LearnError> {
        if embedding.len() != self.dim {
            return Err(LearnError::Dimension {
                got: embedding.len(),
                want: self.dim,
            });
        }
        if label >= self.labels {
            return Err(LearnError::LabelOutOfRange {
                index: label,
                labels: self.labels,
            });
        }
        match lm {
            Some(p) if p.len() != self.labels => {
                return Err(LearnError::Distribution {
                    got: p.len(),
                    want: self.labels,
                })
            }
            Some(p) => self.lm.extend_from_slice(p),
            None => self
                .lm
                .extend(std::iter::repeat_n(1.0 / self.labels as f64, self.labels)),
        }
        self.x.extend_from_slice(embedding);
        self.y.push(label);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }

    fn lm(&self, i: usize) -> &[f64] {
        &self.lm[i * self.labels..(i + 1) * self.labels]
    }

    /// The rows `which` (and the label names, if any), as logistic-regression input over the
    /// labels they use; `seen` marks the labels people used in them.
    fn subset(&self, which: &[usize]) -> Subset {
        let mut seen = vec![false; self.labels];
        for &i in which {
            seen[self.y[i]] = true;
        }
        let named = !self.names.is_empty();
        let classes: Vec<usize> = (0..self.labels).filter(|&l| named || seen[l]).collect();
        let mut class_of = vec![usize::MAX; self.labels];
        for (k, &l) in classes.iter().enumerate() {
            class_of[l] = k;
        }
        let mut x = Vec::with_capacity((which.len() + self.labels) * self.dim);
        let mut y: Vec<usize> = Vec::with_capacity(which.len() + self.labels);
        for &i in which {
            x.extend_from_slice(self.row(i));
            y.push(class_of[self.y[i]]);
        }
        if named {
            x.extend_from_slice(&self.names);
            y.extend(0..self.labels);
        }
        Subset {
            x,
            y,
            classes,
            seen,
        }
    }
}

struct Subset {
    x: Vec<f32>,
    y: Vec<usize>,
    /// Label index of each class.
    classes: Vec<usize>,
    seen: Vec<bool>,
}

impl Subset {
    fn rows(&self, dim: usize) -> Rows<'_> {
        Rows {
            x: &self.x,
            dim,
            y: &self.y,
        }
    }
}

/// What the folds said, kept with the learner for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldFigures {
    pub folds: usize,
    /// Held-out answers whose label occurred in the other folds (the only ones the learner
    /// can get right, and the ones its weight is fitted on).
    pub scored: usize,
    pub lm_log_loss: f64,
    pub mix_log_loss: f64,
    pub lm_accuracy: f64,
    pub mix_accuracy: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learner {
    /// Size of the project's label set.
    pub labels: usize,
    /// The label index of each of the model's classes: every label when the names were
    /// given, else the labels people used.
    pub classes: Vec<usize>,
    /// The labels people used: only these are mixed; the others keep the model's mass.
    pub used: Vec<usize>,
    /// Human labels it was trained on.
    pub n: usize,
    pub l2: f64,
    pub mix: Mix,
    pub folds: FoldFigures,
    #[serde(skip)]
    model: Option<Softmax>,
}

/// Folds for choosing; fewer when there are fewer answers.
const FOLDS: usize = 5;
/// L2 strengths tried, as `c / n` (sklearn's C = 1/c), strongest first so each fit warm-starts
/// the next.
const PENALTIES: [f64; 5] = [0.3, 0.1, 0.03, 0.01, 0.003];
/// Mixing weights tried.
const WEIGHT_STEPS: usize = 20;
/// Held-out answers with a seen label needed before the learner gets any weight.
const MIN_SCORED: usize = 8;

impl Learner {
    pub fn train(set: &TrainingSet) -> Result<Learner, LearnError> {
        let distinct = {
            let mut seen = vec![false; set.labels];
            set.y.iter().for_each(|&y| seen[y] = true);
            seen.iter().filter(|&&s| s).count()
        };
        match (set.len(), distinct) {
            (0, _) => return Err(LearnError::NoLabels),
            (_, 1) => return Err(LearnError::OneLabel(set.y[0])),
            _ => {}
        }
        let n = set.len();
        let folds = FOLDS.min(n);
        let fold_of = stratified_folds(&set.y, folds);
        let quick = FitOptions {
            max_iterations: 100,
            gradient_tolerance: 1e-4,
        };
        // Out-of-fold learner distributions (over all labels) and seen masks, per penalty.
        let mut oof: Vec<Vec<(Vec<f64>, Vec<bool>)>> =
            vec![vec![(Vec::new(), Vec::new()); n]; PENALTIES.len()];
        // Each fold's models per penalty, with their classes: the folds share most of their
        // rows, so a fold starts where the last one ended at the strongest penalty, and the
        // final fit starts from the folds' mean at the chosen one.
        let mut fold_models: Vec<Vec<(Vec<usize>, Softmax)>> = vec![Vec::new(); PENALTIES.len()];
        for f in 0..folds {
            let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
            let held: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
            let sub = set.subset(&train);
            let mut model = fold_models[0]
                .last()
                .filter(|(classes, _)| *classes == sub.classes)
                .map_or_else(
                    || Softmax::zeros(sub.classes.len(), set.dim),
                    |(_, m)| m.clone(),
                );
            for (p, c) in PENALTIES.iter().enumerate() {
                if sub.classes.len() >= 2 {
                    model = logistic::fit(
                        &sub.rows(set.dim),
                        sub.classes.len(),
                        c / sub.y.len() as f64,
                        &model,
                        quick,
                    );
                }
                for &i in &held {
                    let q = spread(&sub.classes, set.labels, &fitted(&model, set.row(i)));
                    oof[p][i] = (q, sub.seen.clone());
                }
                fold_models[p].push((sub.classes.clone(), model.clone()));
            }
        }
        let scored: Vec<usize> = (0..n).filter(|&i| oof[0][i].1[set.y[i]]).collect();
        // The penalty by the learner's own held-out log-loss (on answers it could get right),
        // then the mixing form and weight by the mix's log-loss on every held-out answer.
        let penalty = (0..PENALTIES.len())
            .map(|p| {
                let loss =
                    mix::log_loss(scored.iter().map(|&i| (oof[p][i].0.as_slice(), set.y[i])));
                (p, loss)
            })
            .fold((0, f64::INFINITY), |best, (p, loss)| {
                if loss < best.1 - 1e-12 {
                    (p, loss)
                } else {
                    best
                }
            })
            .0;
        let rows = &oof[penalty];
        let steps = if scored.len() >= MIN_SCORED {
            WEIGHT_STEPS
        } else {
            0
        };
        // Candidates from the simplest (weight 0, the language model) up; each with the
        // held-out log-loss of every answer.
        let candidates: Vec<(Mix, Vec<f64>)> = (0..=steps)
            .flat_map(|step| {
                [MixKind::Linear, MixKind::Geometric].map(|kind| Mix {
                    kind,
                    weight: step as f64 / WEIGHT_STEPS as f64,
                    temperature: 1.0,
                })
            })
            .map(|mix| {
                let losses = (0..n)
                    .map(|i| mix::nll(&mix.apply(set.lm(i), &rows[i].0, &rows[i].1), set.y[i]))
                    .collect();
                (mix, losses)
            })
            .collect();
        let mut chosen = mix::one_standard_error(&candidates).unwrap_or(Mix::NONE);
        let mixed: Vec<(Vec<f64>, usize)> = (0..n)
            .map(|i| {
                let (q, seen) = &oof[penalty][i];
                (chosen.apply(set.lm(i), q, seen), set.y[i])
            })
            .collect();
        // With weight 0 the mix is the language model, calibrated by its own prompt already.
        if chosen.weight > 0.0 {
            chosen.temperature = mix::fit_temperature(&mixed);
        }
        let figures = {
            let lm_rows: Vec<(&[f64], usize)> = (0..n).map(|i| (set.lm(i), set.y[i])).collect();
            let tempered: Vec<(Vec<f64>, usize)> = mixed
                .into_iter()
                .map(|(mut p, y)| {
                    mix::temper(&mut p, chosen.temperature);
                    (p, y)
                })
                .collect();
            FoldFigures {
                folds,
                scored: scored.len(),
                lm_log_loss: mix::log_loss(lm_rows.iter().copied()),
                mix_log_loss: mix::log_loss(tempered.iter().map(|(p, y)| (p.as_slice(), *y))),
                lm_accuracy: accuracy(lm_rows.iter().copied()),
                mix_accuracy: accuracy(tempered.iter().map(|(p, y)| (p.as_slice(), *y))),
            }
        };
        let all: Vec<usize> = (0..n).collect();
        let sub = set.subset(&all);
        let l2 = PENALTIES[penalty] / sub.y.len() as f64;
        let start = mean_model(&fold_models[penalty], &sub.classes)
            .unwrap_or_else(|| Softmax::zeros(sub.classes.len(), set.dim));
        let model = logistic::fit(
            &sub.rows(set.dim),
            sub.classes.len(),
            l2,
            &start,
            FitOptions::default(),
        );
        let used = (0..set.labels).filter(|&l| sub.seen[l]).collect();
        Ok(Learner {
            labels: set.labels,
            used,
            classes: sub.classes,
            n,
            l2,
            mix: chosen,
            folds: figures,
            model: Some(model),
        })
    }

    /// Which labels the learner knows.
    pub fn seen(&self) -> Vec<bool> {
        let mut seen = vec![false; self.labels];
        self.used.iter().for_each(|&l| seen[l] = true);
        seen
    }

    /// The learner's own distribution over its classes (zero elsewhere).
    pub fn alone(&self, embedding: &[f32]) -> Vec<f64> {
        match &self.model {
            Some(m) => spread(&self.classes, self.labels, &fitted(m, embedding)),
            None => vec![1.0 / self.labels as f64; self.labels],
        }
    }

    /// The distribution to show: the language model's `lm` mixed with the learner's.
    pub fn predict(&self, embedding: &[f32], lm: &[f64], seen: &[bool]) -> Vec<f64> {
        self.mix.apply(lm, &self.alone(embedding), seen)
    }

    /// Identifies the fitted learner: a prefix of the sha256 of its parameters.
    pub fn hash(&self) -> String {
        stored::hash(self, &self.models())
    }

    /// The learner as bytes for the database: a JSON header line, then the weights and biases
    /// as little-endian f32.
    pub fn to_bytes(&self) -> Vec<u8> {
        stored::to_bytes(self, &self.models())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Learner, LearnError> {
        let (mut learner, models) = stored::from_bytes(bytes, |l: &Learner| vec![l.classes.len()])?;
        learner.model = models.into_iter().next();
        Ok(learner)
    }

    fn models(&self) -> Vec<&Softmax> {
        self.model.iter().collect()
    }

    /// The embedding length the learner reads.
    pub fn dim(&self) -> Option<usize> {
        self.model.as_ref().map(|m| m.dim)
    }
}

/// A fold whose training part used one label only has a model of one class.
fn fitted(model: &Softmax, x: &[f32]) -> Vec<f64> {
    if model.classes == 1 {
        vec![1.0]
    } else {
        model.probabilities(x)
    }
}

/// Class probabilities as a distribution over every label.
fn spread(classes: &[usize], labels: usize, p: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; labels];
    for (&l, &v) in classes.iter().zip(p) {
        out[l] = v;
    }
    out
}

fn accuracy<'a>(rows: impl Iterator<Item = (&'a [f64], usize)>) -> f64 {
    let (mut hit, mut n) = (0usize, 0usize);
    for (p, y) in rows {
        let best = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        hit += usize::from(best == y);
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        hit as f64 / n as f64
    }
}

/// Fold of each row: rows sorted by label and dealt round-robin, so every label spreads over
/// the folds (deterministic, so a retrain on the same answers gives the same learner).
fn stratified_folds(y: &[usize], folds: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..y.len()).collect();
    order.sort_by_key(|&i| (y[i], i));
    let mut fold = vec![0; y.len()];
    for (rank, &i) in order.iter().enumerate() {
        fold[i] = rank % folds;
    }
    fold
}

/// The mean of the fold models that have exactly `classes`, if any do.
fn mean_model(models: &[(Vec<usize>, Softmax)], classes: &[usize]) -> Option<Softmax> {
    let same: Vec<&Softmax> = models
        .iter()
        .filter(|(c, _)| c == classes)
        .map(|(_, m)| m)
        .collect();
    let first = same.first()?;
    let mut mean = Softmax::zeros(first.classes, first.dim);
    let share = 1.0 / same.len() as f32;
    for m in &same {
        for (a, w) in mean.weights.iter_mut().zip(&m.weights) {
            *a += share * w;
        }
        for (a, b) in mean.bias.iter_mut().zip(&m.bias) {
            *a += share * b;
        }
    }
    Some(mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_label` answers for each of `labels` labels, each near its own axis of `dim`
    /// dimensions (unit length); the language model is uniform unless `lm` says otherwise.
    fn set(labels: usize, per_label: usize, lm: Option<&dyn Fn(usize) -> Vec<f64>>) -> TrainingSet {
        let dim = labels + 2;
        let mut s = TrainingSet::new(dim, labels);
        for j in 0..per_label {
            for l in 0..labels {
                let mut x = vec![0.0f32; dim];
                x[l] = 1.0;
                x[labels + j % 2] = 0.3 + 0.05 * j as f32;
                let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt();
                x.iter_mut().for_each(|v| *v /= norm);
                let p = lm.map(|f| f(l));
                s.push(&x, l, p.as_deref()).unwrap();
            }
        }
        s
    }

    #[test]
    fn one_label_gets_a_clear_message_instead_of_a_learner() {
        let mut s = TrainingSet::new(3, 4);
        assert_eq!(Learner::train(&s).unwrap_err(), LearnError::NoLabels);
        s.push(&[1.0, 0.0, 0.0], 2, None).unwrap();
        s.push(&[0.0, 1.0, 0.0], 2, None).unwrap();
        let e = Learner::train(&s).unwrap_err();
        assert_eq!(e, LearnError::OneLabel(2));
        assert!(e.to_string().contains("two different labels"), "{e}");
    }

    #[test]
    fn bad_rows_are_refused_with_what_is_wrong() {
        let mut s = TrainingSet::new(2, 3);
        assert!(matches!(
            s.push(&[1.0], 0, None),
            Err(LearnError::Dimension { got: 1, want: 2 })
        ));
        assert!(matches!(
            s.push(&[1.0, 0.0], 3, None),
            Err(LearnError::LabelOutOfRange {
                index: 3,
                labels: 3
            })
        ));
        assert!(matches!(
            s.push(&[1.0, 0.0], 0, Some(&[1.0])),
            Err(LearnError::Distribution { got: 1, want: 3 })
        ));
        assert!(s.is_empty());
    }

    #[test]
    fn a_useful_learner_earns_weight_over_an_uninformed_model() {
        let s = set(4, 6, None);
        let l = Learner::train(&s).unwrap();
        assert!(l.mix.weight > 0.5, "{:?}", l.mix);
        assert!(l.folds.mix_log_loss < l.folds.lm_log_loss, "{:?}", l.folds);
        assert_eq!(l.classes, vec![0, 1, 2, 3]);
        let seen = l.seen();
        let p = l.predict(s.row(1), &[0.25; 4], &seen);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p[1] > 0.5, "{p:?}");
    }

    #[test]
    fn a_learner_that_cannot_help_leaves_a_perfect_model_alone() {
        // The model is always right and sure; the embeddings carry the same information, so
        // the mix may use either, but it must never do worse than the model on the folds.
        let sure = |l: usize| {
            let mut p = vec![0.01; 4];
            p[l] = 0.97;
            p
        };
        let s = set(4, 6, Some(&sure));
        let l = Learner::train(&s).unwrap();
        assert!(
            l.folds.mix_log_loss <= l.folds.lm_log_loss + 1e-9,
            "{:?}",
            l.folds
        );
        assert_eq!(l.folds.mix_accuracy, 1.0);
    }

    #[test]
    fn with_too_few_held_out_answers_the_weight_stays_zero() {
        // Two labels, one answer each: no fold holds an answer whose label the others saw.
        let s = set(2, 1, None);
        let l = Learner::train(&s).unwrap();
        assert_eq!(l.mix.weight, 0.0);
        assert_eq!(l.folds.scored, 0);
    }

    #[test]
    fn unseen_labels_keep_the_language_models_probability() {
        let mut s = set(3, 5, None);
        // A fourth label exists in the set, but nobody used it.
        let mut wide = TrainingSet::new(s.dim, 4);
        for i in 0..s.len() {
            wide.push(s.row(i), s.y[i], Some(&[0.2, 0.2, 0.2, 0.4]))
                .unwrap();
        }
        s = wide;
        let l = Learner::train(&s).unwrap();
        assert_eq!(l.seen(), vec![true, true, true, false]);
        let p = l
            .mix
            .apply(&[0.2, 0.2, 0.2, 0.4], &l.alone(s.row(0)), &l.seen());
        // Before the temperature the unused label keeps exactly its 0.4; after it, it still
        // has a real share.
        assert!(p[3] > 0.05, "{p:?}");
        assert_eq!(l.alone(s.row(0))[3], 0.0);
    }

    #[test]
    fn the_same_answers_give_the_same_learner_and_it_survives_storage() {
        let s = set(3, 4, None);
        let a = Learner::train(&s).unwrap();
        let b = Learner::train(&s).unwrap();
        assert_eq!(a.hash(), b.hash());
        let back = Learner::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(back.hash(), a.hash());
        assert_eq!(back.alone(s.row(2)), a.alone(s.row(2)));
        let mut cut = a.to_bytes();
        cut.truncate(cut.len() - 3);
        assert!(matches!(
            Learner::from_bytes(&cut),
            Err(LearnError::Corrupt(_))
        ));
        // More answers make another learner.
        let c = Learner::train(&set(3, 5, None)).unwrap();
        assert_ne!(c.hash(), a.hash());
    }

    #[test]
    fn folds_spread_every_label() {
        let y = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2];
        let f = stratified_folds(&y, 3);
        for label in 0..3 {
            let folds: std::collections::BTreeSet<usize> = (0..y.len())
                .filter(|&i| y[i] == label)
                .map(|i| f[i])
                .collect();
            assert_eq!(folds.len(), 3, "label {label}: {f:?}");
        }
    }
}
