//! The span learner, trained from the people's span answers: a BIO tagger and a candidate
//! classifier on the embedder's contextual word states, mixed with the zero-shot extractor.
//!
//! - The tagger tags each word O, B-type or I-type by a multinomial logistic regression reading
//!   the word's state beside its neighbours' (the tag of a word depends on whether the words
//!   around it are part of a name). A span's probability under the tagger is that of its tag
//!   run: B at its first word, I at the others, and no I right after it. It can find spans the
//!   zero-shot never proposed.
//! - The candidate classifier re-reads each zero-shot candidate as a whole: the mean state of
//!   its words, the words on either side, its length and the zero-shot's own probabilities,
//!   and gives it a probability per type or "not an entity". It mends the zero-shot's typing,
//!   which is where most of its errors are.
//!
//! All three speak of the same thing: P(this character range is an entity of this type). The
//! shown spans are `a · tagger + b · classifier + (1 − a − b) · zero-shot`, kept above a
//! threshold and resolved by non-maximum suppression; `a`, `b` and the threshold are chosen by
//! span F1 and each model's L2 strength by its log-loss, all on cross-validation folds of the
//! answered sentences. With no answers the mix is the zero-shot extractor alone.
use super::error::LearnError;
use super::logistic::{self, FitOptions, Rows, Softmax};
use super::stored;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A span in Unicode scalar offsets (end exclusive) with a type index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TypedSpan {
    pub start: usize,
    pub end: usize,
    pub kind: usize,
}

/// A candidate span and its probability of being each type (the rest: not an entity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub start: usize,
    pub end: usize,
    pub p: Vec<f64>,
}

/// A text's words as the embedder read them: offsets and one state each, in order.
#[derive(Debug, Clone, Default)]
pub struct Words {
    pub offsets: Vec<(usize, usize)>,
    /// `offsets.len()` unit vectors of `dim` floats, row after row.
    pub states: Vec<f32>,
    pub dim: usize,
}

impl Words {
    pub fn new(dim: usize) -> Self {
        Words {
            dim,
            ..Default::default()
        }
    }

    /// Adds the next word; `state` must have `dim` floats.
    pub fn push(&mut self, start: usize, end: usize, state: &[f32]) -> Result<(), LearnError> {
        if state.len() != self.dim {
            return Err(LearnError::Dimension {
                got: state.len(),
                want: self.dim,
            });
        }
        self.offsets.push((start, end));
        self.states.extend_from_slice(state);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    fn state(&self, i: usize) -> &[f32] {
        &self.states[i * self.dim..(i + 1) * self.dim]
    }

    /// Word `j`'s state, or zeros where there is no such word (past either end).
    fn push_state(&self, j: Option<usize>, out: &mut Vec<f32>) {
        match j.filter(|&j| j < self.len()) {
            Some(j) => out.extend_from_slice(self.state(j)),
            None => out.extend(std::iter::repeat_n(0.0, self.dim)),
        }
    }

    /// What the tagger reads of word `i`: its state, then the previous and next words' (zeros
    /// at the ends).
    fn features(&self, i: usize, out: &mut Vec<f32>) {
        out.extend_from_slice(self.state(i));
        self.push_state(i.checked_sub(1), out);
        self.push_state(Some(i + 1), out);
    }

    fn all_features(&self) -> Vec<f32> {
        let mut x = Vec::with_capacity(self.len() * self.dim * CONTEXT);
        (0..self.len()).for_each(|i| self.features(i, &mut x));
        x
    }

    /// The words lying wholly within `start..end`, as an index range.
    fn within(&self, start: usize, end: usize) -> std::ops::Range<usize> {
        let first = self.offsets.partition_point(|&(a, _)| a < start);
        let last = self.offsets.partition_point(|&(_, b)| b <= end).max(first);
        first..last
    }

    /// What the candidate classifier reads of a candidate: the mean state of its words, the
    /// states of the words just before and after it (zeros at the ends), its length in words
    /// (one-hot, 1 to 4 or more), and the zero-shot's log-probabilities, scaled to [0, 1].
    fn candidate_features(&self, c: &Candidate, out: &mut Vec<f32>) {
        let inside = self.within(c.start, c.end);
        let mut mean = vec![0.0f32; self.dim];
        for i in inside.clone() {
            mean.iter_mut()
                .zip(self.state(i))
                .for_each(|(m, v)| *m += v);
        }
        let n = inside.len().max(1) as f32;
        out.extend(mean.iter().map(|m| m / n));
        self.push_state(inside.start.checked_sub(1), out);
        self.push_state(Some(inside.end), out);
        let words = inside.len().clamp(1, LENGTHS);
        out.extend((1..=LENGTHS).map(|k| if k == words { 1.0 } else { 0.0 }));
        let none = 1.0 - c.p.iter().sum::<f64>();
        for p in c.p.iter().copied().chain([none]) {
            out.push((1.0 + p.max(FLOOR).ln() / -FLOOR.ln()) as f32);
        }
    }

    /// The tag of each word under `spans`: a word is inside a span when it lies wholly within
    /// it, and begins it when it is the first such word.
    fn tags(&self, spans: &[TypedSpan]) -> Vec<usize> {
        let mut tags = vec![OUTSIDE; self.len()];
        for s in spans {
            let mut first = true;
            for (i, &(a, b)) in self.offsets.iter().enumerate() {
                if a >= s.start && b <= s.end && tags[i] == OUTSIDE {
                    tags[i] = if first { begin(s.kind) } else { inside(s.kind) };
                    first = false;
                }
            }
        }
        tags
    }
}

/// Word states read per word: its own and its two neighbours'.
const CONTEXT: usize = 3;
const OUTSIDE: usize = 0;
fn begin(kind: usize) -> usize {
    1 + 2 * kind
}
fn inside(kind: usize) -> usize {
    2 + 2 * kind
}

/// Candidate lengths told apart, in words (the last: this many or more).
const LENGTHS: usize = 4;
/// Zero-shot probabilities below this read as this (its log is the feature's zero).
const FLOOR: f64 = 1e-4;
fn candidate_dim(word_dim: usize, types: usize) -> usize {
    CONTEXT * word_dim + LENGTHS + types + 1
}

/// Longest span the tagger proposes, in words.
const MAX_SPAN_WORDS: usize = 8;
/// Tagger spans below this probability are left out of the mix.
const MIN_SPAN_PROBABILITY: f64 = 0.01;

/// One answered sentence: its words, the people's spans, and the zero-shot candidates.
#[derive(Debug, Clone)]
pub struct Answered {
    pub words: Words,
    pub gold: Vec<TypedSpan>,
    pub zero_shot: Vec<Candidate>,
}

/// What the folds said, kept with the learner for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpanFigures {
    pub folds: usize,
    /// Gold spans in the held-out sentences.
    pub gold: usize,
    /// Span F1 of the zero-shot extractor at its own threshold on the held-out sentences.
    pub zero_shot_f1: f64,
    /// Span F1 of the tagger alone (weight 1, best threshold).
    pub tagger_f1: f64,
    /// Span F1 of the candidate classifier alone (weight 1, best threshold).
    #[serde(default)]
    pub classifier_f1: f64,
    /// Span F1 of the chosen mix.
    pub mix_f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLearner {
    pub types: usize,
    /// Answered sentences it was trained on.
    pub n: usize,
    pub l2: f64,
    /// The tagger's weight in the mix.
    pub weight: f64,
    /// The candidate classifier's weight in the mix (the zero-shot has the rest).
    #[serde(default)]
    pub classifier_weight: f64,
    /// A mixed span is shown when its probability of being an entity reaches this.
    pub threshold: f64,
    pub folds: SpanFigures,
    #[serde(skip)]
    model: Option<Softmax>,
    #[serde(skip)]
    classifier: Option<Softmax>,
}

/// The learned parts' shares of the mix; the zero-shot has what they leave.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Weights {
    tagger: f64,
    classifier: f64,
}

const FOLDS: usize = 5;
/// L2 strengths tried, as `c / n`, strongest first so each fit warm-starts the next.
const PENALTIES: [f64; 4] = [1.0, 0.3, 0.1, 0.03];
const WEIGHT_STEPS: usize = 10;
const THRESHOLDS: [f64; 17] = [
    0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99,
];

impl SpanLearner {
    /// Trains from answered sentences; `zero_shot_threshold` is what the extractor keeps on
    /// its own (the figure the folds compare with, and the choice while the tagger has no
    /// weight).
    pub fn train(
        set: &[Answered],
        types: usize,
        zero_shot_threshold: f64,
    ) -> Result<SpanLearner, LearnError> {
        if set.is_empty() {
            return Err(LearnError::NoLabels);
        }
        let dim = set[0].words.dim * CONTEXT;
        for s in set {
            if s.words.dim * CONTEXT != dim && !s.words.is_empty() {
                return Err(LearnError::Dimension {
                    got: s.words.dim * CONTEXT,
                    want: dim,
                });
            }
            if let Some(g) = s.gold.iter().find(|g| g.kind >= types) {
                return Err(LearnError::LabelOutOfRange {
                    index: g.kind,
                    labels: types,
                });
            }
        }
        let features: Vec<Vec<f32>> = set.iter().map(|s| s.words.all_features()).collect();
        let tags: Vec<Vec<usize>> = set.iter().map(|s| s.words.tags(&s.gold)).collect();
        if tags.iter().flatten().all(|&t| t == OUTSIDE) {
            return Err(LearnError::NoLabels);
        }
        let n = set.len();
        let folds = FOLDS.min(n);
        let tagger = cross_fit(&features, &tags, dim, 1 + 2 * types, folds);
        let tagged: Vec<Vec<Candidate>> = set
            .iter()
            .zip(&tagger.oof)
            .map(|(s, d)| tagger_spans(&s.words, d, types))
            .collect();
        let (cand_x, cand_y) = candidate_rows(set, types);
        let cand_dim = candidate_dim(set[0].words.dim, types);
        let classifier = cand_y
            .iter()
            .flatten()
            .any(|&y| y < types)
            .then(|| cross_fit(&cand_x, &cand_y, cand_dim, types + 1, folds));
        let rescored: Vec<Vec<Candidate>> = match &classifier {
            Some(c) => set
                .iter()
                .zip(&c.oof)
                .map(|(s, d)| rescore(&s.zero_shot, d, types))
                .collect(),
            None => vec![Vec::new(); n],
        };
        let score = |w: Weights, threshold: f64| {
            let mut counts = Counts::default();
            for ((s, t), r) in set.iter().zip(&tagged).zip(&rescored) {
                let shown = decide(&mix(&s.zero_shot, t, r, w), threshold);
                counts.add(&s.gold, &shown);
            }
            counts.f1()
        };
        // Span F1 over weights and thresholds. Where several settings tie (with no zero-shot
        // candidate, every weight above 0 is the same choice at a scaled threshold), the middle
        // of the tied settings is taken, away from the edges of the plateau.
        let alone = Weights::default();
        let mut grid = vec![(
            alone,
            zero_shot_threshold,
            score(alone, zero_shot_threshold),
        )];
        let cand_steps = if classifier.is_some() {
            WEIGHT_STEPS
        } else {
            0
        };
        for a in 0..=WEIGHT_STEPS {
            for b in 0..=cand_steps.min(WEIGHT_STEPS - a) {
                let w = Weights {
                    tagger: a as f64 / WEIGHT_STEPS as f64,
                    classifier: b as f64 / WEIGHT_STEPS as f64,
                };
                grid.extend(THRESHOLDS.iter().map(|&t| (w, t, score(w, t))));
            }
        }
        let top = grid.iter().map(|g| g.2).fold(0.0, f64::max);
        let tied: Vec<&(Weights, f64, f64)> = grid.iter().filter(|g| g.2 >= top - 1e-9).collect();
        let best = *tied[tied.len() / 2];
        let alone_f1 = |w: Weights| THRESHOLDS.iter().map(|&t| score(w, t)).fold(0.0, f64::max);
        let tagger_f1 = alone_f1(Weights {
            tagger: 1.0,
            classifier: 0.0,
        });
        let classifier_f1 = alone_f1(Weights {
            tagger: 0.0,
            classifier: 1.0,
        });
        Ok(SpanLearner {
            types,
            n,
            l2: PENALTIES[tagger.penalty],
            weight: best.0.tagger,
            classifier_weight: best.0.classifier,
            threshold: best.1,
            folds: SpanFigures {
                folds,
                gold: set.iter().map(|s| s.gold.len()).sum(),
                zero_shot_f1: grid[0].2,
                tagger_f1,
                classifier_f1,
                mix_f1: best.2,
            },
            model: Some(tagger.model),
            // A classifier the mix gives no weight is not kept.
            classifier: classifier
                .filter(|_| best.0.classifier > 0.0)
                .map(|c| c.model),
        })
    }

    /// The spans to show for a text: its words and the zero-shot candidates, mixed. Each span
    /// comes with its probability (of being an entity of that type).
    pub fn predict(&self, words: &Words, zero_shot: &[Candidate]) -> Vec<(TypedSpan, f64)> {
        let tagged = match &self.model {
            Some(m) if !words.is_empty() && m.dim == words.dim * CONTEXT => tagger_spans(
                words,
                &distributions(m, &words.all_features(), m.dim),
                self.types,
            ),
            _ => Vec::new(),
        };
        let rescored = match &self.classifier {
            Some(m) if m.dim == candidate_dim(words.dim, self.types) => {
                let mut x = Vec::with_capacity(zero_shot.len() * m.dim);
                zero_shot
                    .iter()
                    .for_each(|c| words.candidate_features(c, &mut x));
                rescore(zero_shot, &distributions(m, &x, m.dim), self.types)
            }
            _ => Vec::new(),
        };
        let w = Weights {
            tagger: self.weight,
            classifier: self.classifier_weight,
        };
        decide(&mix(zero_shot, &tagged, &rescored, w), self.threshold)
    }

    /// Identifies the fitted learner: a prefix of the sha256 of its parameters.
    pub fn hash(&self) -> String {
        stored::hash(self, &self.models())
    }

    /// The learner as bytes: a JSON header line, then the tagger and (where the mix gives it
    /// weight) the candidate classifier, each as its input length and its weights and biases
    /// as little-endian f32.
    pub fn to_bytes(&self) -> Vec<u8> {
        stored::to_bytes(self, &self.models())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SpanLearner, LearnError> {
        let (mut learner, models) = stored::from_bytes(bytes, |l: &SpanLearner| {
            let tagger = 1 + 2 * l.types;
            match l.classifier_weight > 0.0 {
                true => vec![tagger, l.types + 1],
                false => vec![tagger],
            }
        })?;
        let mut models = models.into_iter();
        learner.model = models.next();
        learner.classifier = models.next();
        Ok(learner)
    }

    fn models(&self) -> Vec<&Softmax> {
        self.model.iter().chain(&self.classifier).collect()
    }
}

/// The zero-shot extractor's own choice: its candidates at `threshold`, without a tagger.
pub fn zero_shot_spans(zero_shot: &[Candidate], threshold: f64) -> Vec<(TypedSpan, f64)> {
    decide(&mix(zero_shot, &[], &[], Weights::default()), threshold)
}

/// A text's zero-shot reading: every scored candidate, and the threshold the extractor shows
/// them at. Pre-labeling keeps it so a retrain mixes without asking the language model again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZeroShot {
    pub candidates: Vec<Candidate>,
    pub threshold: f64,
}

impl ZeroShot {
    /// The spans the extractor shows on its own.
    pub fn spans(&self) -> Vec<(TypedSpan, f64)> {
        zero_shot_spans(&self.candidates, self.threshold)
    }

    /// As bytes, little-endian: the number of types (u32) and the threshold (f32), then each
    /// candidate's start and end (u32) and its probabilities (f32).
    pub fn to_bytes(&self, types: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.candidates.len() * (8 + 4 * types));
        out.extend((types as u32).to_le_bytes());
        out.extend((self.threshold as f32).to_le_bytes());
        for c in &self.candidates {
            out.extend((c.start as u32).to_le_bytes());
            out.extend((c.end as u32).to_le_bytes());
            for i in 0..types {
                out.extend((c.p.get(i).copied().unwrap_or(0.0) as f32).to_le_bytes());
            }
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ZeroShot, LearnError> {
        let words: Vec<[u8; 4]> = bytes
            .chunks(4)
            .map(|c| c.try_into())
            .collect::<Result<_, _>>()
            .map_err(|_| LearnError::Corrupt("candidates: not whole words".into()))?;
        let [types, threshold, rest @ ..] = words.as_slice() else {
            return Err(LearnError::Corrupt("candidates: no header".into()));
        };
        let types = u32::from_le_bytes(*types) as usize;
        let record = 2 + types;
        if rest.len() % record != 0 {
            return Err(LearnError::Corrupt("candidates: a cut record".into()));
        }
        let candidates = rest
            .chunks_exact(record)
            .map(|r| Candidate {
                start: u32::from_le_bytes(r[0]) as usize,
                end: u32::from_le_bytes(r[1]) as usize,
                p: r[2..]
                    .iter()
                    .map(|b| f64::from(f32::from_le_bytes(*b)))
                    .collect(),
            })
            .collect();
        Ok(ZeroShot {
            candidates,
            threshold: f64::from(f32::from_le_bytes(*threshold)),
        })
    }
}

fn fit(
    x: &[f32],
    y: &[usize],
    dim: usize,
    classes: usize,
    c: f64,
    start: &Softmax,
    opts: FitOptions,
) -> Softmax {
    let rows = Rows { x, dim, y };
    logistic::fit(&rows, classes, c / y.len().max(1) as f64, start, opts)
}

/// A softmax model fitted on sentences' rows, with the L2 strength of least out-of-fold
/// log-loss, and each sentence's out-of-fold distributions at that strength.
struct CrossFit {
    penalty: usize,
    oof: Vec<Vec<Vec<f64>>>,
    model: Softmax,
}

fn cross_fit(
    features: &[Vec<f32>],
    labels: &[Vec<usize>],
    dim: usize,
    classes: usize,
    folds: usize,
) -> CrossFit {
    let n = features.len();
    let quick = FitOptions {
        max_iterations: 100,
        gradient_tolerance: 1e-4,
    };
    let mut oof: Vec<Vec<Vec<Vec<f64>>>> = vec![vec![Vec::new(); n]; PENALTIES.len()];
    let mut start = Softmax::zeros(classes, dim);
    for f in 0..folds {
        let (x, y) = stack(features, labels, |i| i % folds != f);
        let mut model = start.clone();
        for (p, c) in PENALTIES.iter().enumerate() {
            model = fit(&x, &y, dim, classes, *c, &model, quick);
            if p == 0 {
                start = model.clone();
            }
            for i in (0..n).filter(|i| i % folds == f) {
                oof[p][i] = distributions(&model, &features[i], dim);
            }
        }
    }
    let penalty = (0..PENALTIES.len())
        .min_by(|&a, &b| log_loss(&oof[a], labels).total_cmp(&log_loss(&oof[b], labels)))
        .unwrap_or(0);
    let (x, y) = stack(features, labels, |_| true);
    let mut model = start;
    for c in &PENALTIES[..=penalty] {
        model = fit(&x, &y, dim, classes, *c, &model, quick);
    }
    let model = fit(
        &x,
        &y,
        dim,
        classes,
        PENALTIES[penalty],
        &model,
        FitOptions::default(),
    );
    CrossFit {
        penalty,
        oof: oof.swap_remove(penalty),
        model,
    }
}

/// The candidate classifier's rows per sentence: each zero-shot candidate, labelled with the
/// type of the gold span of exactly its range, or `types` (not an entity).
fn candidate_rows(set: &[Answered], types: usize) -> (Vec<Vec<f32>>, Vec<Vec<usize>>) {
    set.iter()
        .map(|s| {
            let mut x = Vec::new();
            let y = s
                .zero_shot
                .iter()
                .map(|c| {
                    s.words.candidate_features(c, &mut x);
                    s.gold
                        .iter()
                        .find(|g| g.start == c.start && g.end == c.end)
                        .map_or(types, |g| g.kind)
                })
                .collect();
            (x, y)
        })
        .unzip()
}

/// The zero-shot candidates with the classifier's probabilities per type.
fn rescore(zero_shot: &[Candidate], dists: &[Vec<f64>], types: usize) -> Vec<Candidate> {
    zero_shot
        .iter()
        .zip(dists)
        .map(|(c, d)| Candidate {
            start: c.start,
            end: c.end,
            p: d[..types].to_vec(),
        })
        .collect()
}

/// The words of the sentences `keep` picks, as training rows.
fn stack(
    features: &[Vec<f32>],
    tags: &[Vec<usize>],
    keep: impl Fn(usize) -> bool,
) -> (Vec<f32>, Vec<usize>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, (f, t)) in features.iter().zip(tags).enumerate() {
        if keep(i) {
            x.extend_from_slice(f);
            y.extend_from_slice(t);
        }
    }
    (x, y)
}

fn distributions(model: &Softmax, features: &[f32], dim: usize) -> Vec<Vec<f64>> {
    features
        .chunks_exact(dim)
        .map(|x| model.probabilities(x))
        .collect()
}

fn log_loss(dists: &[Vec<Vec<f64>>], labels: &[Vec<usize>]) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (d, t) in dists.iter().zip(labels) {
        for (p, &y) in d.iter().zip(t) {
            sum -= p[y].max(1e-12).ln();
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

/// Every word run of up to `MAX_SPAN_WORDS` words whose tag run is likely enough, with the
/// probability of that run per type.
fn tagger_spans(words: &Words, dists: &[Vec<f64>], types: usize) -> Vec<Candidate> {
    let n = words.len();
    let mut out = Vec::new();
    for i in 0..n {
        for j in i + 1..=(i + MAX_SPAN_WORDS).min(n) {
            let p: Vec<f64> = (0..types)
                .map(|t| {
                    let run: f64 = (i + 1..j).map(|k| dists[k][inside(t)]).product();
                    let closed = if j < n {
                        1.0 - dists[j][inside(t)]
                    } else {
                        1.0
                    };
                    dists[i][begin(t)] * run * closed
                })
                .collect();
            if p.iter().sum::<f64>() >= MIN_SPAN_PROBABILITY {
                out.push(Candidate {
                    start: words.offsets[i].0,
                    end: words.offsets[j - 1].1,
                    p,
                });
            }
        }
    }
    out
}

/// The weighted sum of the zero-shot, tagger and classifier probabilities for every character
/// range any of them proposes.
fn mix(
    zero_shot: &[Candidate],
    tagged: &[Candidate],
    rescored: &[Candidate],
    w: Weights,
) -> Vec<Candidate> {
    let mut at: HashMap<(usize, usize), Vec<f64>> = HashMap::new();
    let rest = 1.0 - w.tagger - w.classifier;
    for (list, w) in [
        (zero_shot, rest),
        (tagged, w.tagger),
        (rescored, w.classifier),
    ] {
        if w <= 0.0 {
            continue;
        }
        for c in list {
            let p = at
                .entry((c.start, c.end))
                .or_insert_with(|| vec![0.0; c.p.len()]);
            p.iter_mut().zip(&c.p).for_each(|(m, v)| *m += w * v);
        }
    }
    let mut out: Vec<Candidate> = at
        .into_iter()
        .map(|((start, end), p)| Candidate { start, end, p })
        .collect();
    out.sort_by_key(|c| (c.start, c.end));
    out
}

/// The candidates whose probability of being an entity reaches `threshold`, likeliest first,
/// each dropped if it overlaps one kept before it; typed by their likeliest type. Ties go to
/// the longer span.
fn decide(candidates: &[Candidate], threshold: f64) -> Vec<(TypedSpan, f64)> {
    let mut kept: Vec<(&Candidate, f64)> = candidates
        .iter()
        .map(|c| (c, c.p.iter().sum::<f64>()))
        .filter(|(_, e)| *e >= threshold)
        .collect();
    kept.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then((b.0.end - b.0.start).cmp(&(a.0.end - a.0.start)))
            .then(a.0.start.cmp(&b.0.start))
    });
    let mut out: Vec<(TypedSpan, f64)> = Vec::new();
    for (c, _) in kept {
        if out.iter().any(|(s, _)| s.start < c.end && c.start < s.end) {
            continue;
        }
        let (kind, p) =
            c.p.iter()
                .copied()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
        out.push((
            TypedSpan {
                start: c.start,
                end: c.end,
                kind,
            },
            p,
        ));
    }
    out.sort_by_key(|(s, _)| (s.start, s.end));
    out
}

/// Exact-match span counts for micro F1.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub gold: usize,
    pub shown: usize,
    pub hit: usize,
}

impl Counts {
    pub fn add(&mut self, gold: &[TypedSpan], shown: &[(TypedSpan, f64)]) {
        self.gold += gold.len();
        self.shown += shown.len();
        self.hit += shown.iter().filter(|(s, _)| gold.contains(s)).count();
    }

    pub fn f1(&self) -> f64 {
        match self.gold + self.shown {
            0 => 0.0,
            total => 2.0 * self.hit as f64 / total as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words with one-hot-ish states: names are near one direction, other words another, and
    /// a place word a third; offsets as if each word were 4 characters and a space.
    fn sentence(kinds: &[u8]) -> Words {
        let dim = 4;
        let mut w = Words {
            dim,
            ..Default::default()
        };
        for (i, &k) in kinds.iter().enumerate() {
            w.offsets.push((i * 5, i * 5 + 4));
            let mut v = vec![0.05; dim];
            v[k as usize] = 1.0;
            w.states.extend(v);
        }
        w
    }

    fn answered(kinds: &[u8]) -> Answered {
        let words = sentence(kinds);
        let gold = kinds
            .iter()
            .enumerate()
            .filter(|(_, &k)| k > 0)
            .map(|(i, &k)| TypedSpan {
                start: i * 5,
                end: i * 5 + 4,
                kind: (k - 1) as usize,
            })
            .collect();
        Answered {
            words,
            gold,
            zero_shot: Vec::new(),
        }
    }

    #[test]
    fn tags_follow_words_inside_spans() {
        let w = sentence(&[0, 1, 1, 0]);
        let gold = [TypedSpan {
            start: 5,
            end: 14,
            kind: 1,
        }];
        assert_eq!(w.tags(&gold), vec![OUTSIDE, begin(1), inside(1), OUTSIDE]);
    }

    #[test]
    fn the_tagger_learns_what_the_zero_shot_misses() {
        // Word kind 1 is a type-0 entity, kind 2 a type-1 entity; the zero-shot finds nothing.
        let set: Vec<Answered> = (0..30)
            .map(|i| match i % 3 {
                0 => answered(&[0, 1, 0, 0]),
                1 => answered(&[0, 0, 2, 0]),
                _ => answered(&[1, 0, 0, 2]),
            })
            .collect();
        let learner = SpanLearner::train(&set, 2, 0.95).expect("trains");
        assert!(learner.weight > 0.0, "weight {}", learner.weight);
        assert!(learner.folds.mix_f1 > 0.9, "{:?}", learner.folds);
        assert_eq!(learner.folds.zero_shot_f1, 0.0);
        let spans = learner.predict(&sentence(&[2, 0, 1]), &[]);
        let found: Vec<(usize, usize, usize)> = spans
            .iter()
            .map(|(s, _)| (s.start, s.end, s.kind))
            .collect();
        assert_eq!(found, vec![(0, 4, 1), (10, 14, 0)]);
        // And the same after a trip through the database's bytes.
        let back = SpanLearner::from_bytes(&learner.to_bytes()).expect("reads");
        assert_eq!(back.predict(&sentence(&[2, 0, 1]), &[]), spans);
        assert_eq!(back.hash(), learner.hash());
    }

    #[test]
    fn a_good_zero_shot_keeps_its_weight() {
        // The zero-shot is right every time, and the words carry no signal.
        let set: Vec<Answered> = (0..20)
            .map(|i| {
                let mut a = answered(&[0, 0, 0]);
                a.words.states.iter_mut().for_each(|v| *v = 0.5);
                let at = i % 3;
                a.gold = vec![TypedSpan {
                    start: at * 5,
                    end: at * 5 + 4,
                    kind: 0,
                }];
                a.zero_shot = vec![
                    Candidate {
                        start: at * 5,
                        end: at * 5 + 4,
                        p: vec![0.97],
                    },
                    Candidate {
                        start: ((at + 1) % 3) * 5,
                        end: ((at + 1) % 3) * 5 + 4,
                        p: vec![0.3],
                    },
                ];
                a
            })
            .collect();
        let learner = SpanLearner::train(&set, 1, 0.95).expect("trains");
        assert_eq!(learner.folds.zero_shot_f1, 1.0);
        assert_eq!(learner.folds.mix_f1, 1.0);
        assert!(learner.weight < 0.5, "weight {}", learner.weight);
    }

    /// A sentence with one name (word kind 1) at `at`, of type `kind`, and the zero-shot's
    /// candidates: every word, the name always given the other type.
    fn mistyped(at: usize, kind: usize) -> Answered {
        let mut kinds = [0u8; 3];
        kinds[at] = 1;
        let mut a = answered(&kinds);
        a.gold[0].kind = kind;
        a.zero_shot = (0..3)
            .map(|w| Candidate {
                start: w * 5,
                end: w * 5 + 4,
                p: match (w == at, kind) {
                    (true, 0) => vec![0.1, 0.85],
                    (true, _) => vec![0.85, 0.1],
                    (false, _) => vec![0.3, 0.3],
                },
            })
            .collect();
        a
    }

    #[test]
    fn the_classifier_mends_the_zero_shot_typing() {
        // The words tell a name from a common word but not its type; the zero-shot finds the
        // names and always swaps their types, which only the classifier reads.
        let set: Vec<Answered> = (0..40).map(|i| mistyped(i % 3, (i / 3) % 2)).collect();
        let learner = SpanLearner::train(&set, 2, 0.5).expect("trains");
        let f = learner.folds;
        assert_eq!(f.zero_shot_f1, 0.0, "{f:?}");
        assert!(f.tagger_f1 < 0.8, "{f:?}");
        assert!(f.classifier_f1 > 0.95, "{f:?}");
        assert!(f.mix_f1 > 0.95, "{f:?}");
        assert!(learner.classifier_weight > 0.0, "{learner:?}");
        for kind in 0..2 {
            let a = mistyped(1, kind);
            let found: Vec<TypedSpan> = learner
                .predict(&a.words, &a.zero_shot)
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            assert_eq!(found, a.gold);
        }
        // Both models travel through the database's bytes.
        let a = mistyped(2, 1);
        let back = SpanLearner::from_bytes(&learner.to_bytes()).expect("reads");
        assert_eq!(
            back.predict(&a.words, &a.zero_shot),
            learner.predict(&a.words, &a.zero_shot)
        );
        assert_eq!(back.hash(), learner.hash());
        let bytes = learner.to_bytes();
        assert!(SpanLearner::from_bytes(&bytes[..bytes.len() - 4]).is_err());
    }

    #[test]
    fn no_spans_no_learner() {
        let set = vec![answered(&[0, 0]), answered(&[0])];
        assert_eq!(SpanLearner::train(&set, 1, 0.9), Err(LearnError::NoLabels));
        let bad = vec![Answered {
            gold: vec![TypedSpan {
                start: 0,
                end: 4,
                kind: 3,
            }],
            ..answered(&[1])
        }];
        assert!(matches!(
            SpanLearner::train(&bad, 1, 0.9),
            Err(LearnError::LabelOutOfRange { index: 3, .. })
        ));
    }

    #[test]
    fn overlaps_go_to_the_likelier_mixed_span() {
        let zs = vec![
            Candidate {
                start: 0,
                end: 9,
                p: vec![0.6, 0.0],
            },
            Candidate {
                start: 5,
                end: 9,
                p: vec![0.0, 0.9],
            },
        ];
        let shown = zero_shot_spans(&zs, 0.5);
        assert_eq!(shown.len(), 1);
        assert_eq!(
            shown[0].0,
            TypedSpan {
                start: 5,
                end: 9,
                kind: 1
            }
        );
    }
    #[test]
    fn zero_shot_round_trips_through_bytes() {
        let z = ZeroShot {
            candidates: vec![
                Candidate {
                    start: 0,
                    end: 5,
                    p: vec![0.5, 0.25],
                },
                Candidate {
                    start: 7,
                    end: 9,
                    p: vec![0.0, 1.0],
                },
            ],
            threshold: 0.75,
        };
        let back = ZeroShot::from_bytes(&z.to_bytes(2)).expect("parses");
        assert_eq!(back, z);
        assert_eq!(back.spans(), z.spans());
        let bytes = z.to_bytes(2);
        assert!(ZeroShot::from_bytes(&bytes[..bytes.len() - 4]).is_err());
        assert!(ZeroShot::from_bytes(&bytes[..3]).is_err());
    }
}
