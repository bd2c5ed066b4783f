//! Multinomial logistic regression with an L2 penalty, fitted full-batch by L-BFGS.
//!
//! At labeling scale (hundreds to tens of thousands of answers, 384-dimensional embeddings,
//! up to a few hundred classes) one objective evaluation is two passes of n·K dot products
//! over d floats, so a few dozen iterations fit in tens of milliseconds; nothing here needs a
//! linear-algebra crate.
use rayon::prelude::*;

/// Training rows: `x` holds `n` embeddings of `dim` floats each, row after row.
pub struct Rows<'a> {
    pub x: &'a [f32],
    pub dim: usize,
    /// Class of each row, in `0..classes`.
    pub y: &'a [usize],
}

impl Rows<'_> {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
}

/// A fitted model: `classes` weight rows of `dim` floats, then one bias per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax {
    pub classes: usize,
    pub dim: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

impl Softmax {
    pub fn zeros(classes: usize, dim: usize) -> Self {
        Softmax {
            classes,
            dim,
            weights: vec![0.0; classes * dim],
            bias: vec![0.0; classes],
        }
    }

    /// The class probabilities of one embedding.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f64> {
        let mut z = self.logits(x);
        softmax_in_place(&mut z);
        z
    }

    fn logits(&self, x: &[f32]) -> Vec<f64> {
        (0..self.classes)
            .map(|k| f64::from(dot(x, self.row(k)) + self.bias[k]))
            .collect()
    }

    fn row(&self, k: usize) -> &[f32] {
        &self.weights[k * self.dim..(k + 1) * self.dim]
    }

    fn to_params(&self) -> Vec<f64> {
        self.weights
            .iter()
            .chain(&self.bias)
            .map(|&v| f64::from(v))
            .collect()
    }

    fn from_params(classes: usize, dim: usize, theta: &[f64]) -> Self {
        let (w, b) = theta.split_at(classes * dim);
        Softmax {
            classes,
            dim,
            weights: w.iter().map(|&v| v as f32).collect(),
            bias: b.iter().map(|&v| v as f32).collect(),
        }
    }
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    pub max_iterations: usize,
    /// Stop when the largest gradient component is below this.
    pub gradient_tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_iterations: 200,
            gradient_tolerance: 1e-5,
        }
    }
}

/// Minimises the mean cross-entropy plus `l2 / 2 · |W|²` (biases unpenalised), starting
/// from `start` (a warm start from a nearby penalty converges in a few iterations).
pub fn fit(rows: &Rows, classes: usize, l2: f64, start: &Softmax, opts: FitOptions) -> Softmax {
    debug_assert!(rows.y.iter().all(|&y| y < classes));
    let dim = rows.dim;
    let objective = |theta: &[f64], grad: &mut [f64]| {
        objective(
            rows,
            classes,
            l2,
            &Softmax::from_params(classes, dim, theta),
            grad,
        )
    };
    let theta = lbfgs(objective, start.to_params(), opts);
    Softmax::from_params(classes, dim, &theta)
}

/// Classes whose gradient rows one parallel task accumulates.
const CLASSES_PER_TASK: usize = 4;
/// Training rows read per cache-sized block of the gradient pass (~250 KB at 960 floats).
const ROWS_PER_BLOCK: usize = 64;

/// The objective at `model`, writing its gradient into `grad` (weights, then biases).
fn objective(rows: &Rows, classes: usize, l2: f64, model: &Softmax, grad: &mut [f64]) -> f64 {
    let n = rows.len();
    let dim = rows.dim;
    // Residuals p - onehot(y), one row of `classes` per example, and each row's loss.
    let mut resid = vec![0.0f32; n * classes];
    let loss: f64 = resid
        .par_chunks_mut(classes)
        .enumerate()
        .map(|(i, r)| {
            let mut z = model.logits(rows.row(i));
            let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            let y = rows.y[i];
            let loss = lse - z[y];
            for (rk, zk) in r.iter_mut().zip(z.iter_mut()) {
                *rk = (*zk - lse).exp() as f32;
            }
            r[y] -= 1.0;
            loss
        })
        .sum();
    let scale = 1.0 / n.max(1) as f32;
    let (gw, gb) = grad.split_at_mut(classes * dim);
    // Gradient rows = residualsᵀ · X, a few classes per task, walking the rows in blocks that
    // stay in cache while each class of the task reads them (one pass over X per class read
    // the whole matrix from memory 77 times per evaluation).
    gw.par_chunks_mut(dim * CLASSES_PER_TASK)
        .enumerate()
        .for_each(|(t, g)| {
            let first = t * CLASSES_PER_TASK;
            let mut acc = vec![0.0f32; g.len()];
            for block in (0..n).step_by(ROWS_PER_BLOCK) {
                let rows_here = block..(block + ROWS_PER_BLOCK).min(n);
                for (j, a) in acc.chunks_exact_mut(dim).enumerate() {
                    let k = first + j;
                    let weight = |i: usize| resid[i * classes + k] * scale;
                    let mut i = rows_here.start;
                    while i + 4 <= rows_here.end {
                        let w = [weight(i), weight(i + 1), weight(i + 2), weight(i + 3)];
                        let x = a
                            .iter_mut()
                            .zip(rows.row(i))
                            .zip(rows.row(i + 1))
                            .zip(rows.row(i + 2))
                            .zip(rows.row(i + 3));
                        for ((((a, x0), x1), x2), x3) in x {
                            *a = w[3].mul_add(
                                *x3,
                                w[2].mul_add(*x2, w[1].mul_add(*x1, w[0].mul_add(*x0, *a))),
                            );
                        }
                        i += 4;
                    }
                    for i in i..rows_here.end {
                        axpy(weight(i), rows.row(i), a);
                    }
                }
            }
            for (j, (g, a)) in g
                .chunks_exact_mut(dim)
                .zip(acc.chunks_exact(dim))
                .enumerate()
            {
                for ((g, a), w) in g.iter_mut().zip(a).zip(model.row(first + j)) {
                    *g = f64::from(*a) + l2 * f64::from(*w);
                }
            }
        });
    for (k, g) in gb.iter_mut().enumerate() {
        *g = (0..n)
            .map(|i| f64::from(resid[i * classes + k]))
            .sum::<f64>()
            * f64::from(scale);
    }
    let penalty: f64 = model.weights.iter().map(|&w| f64::from(w * w)).sum();
    loss / n.max(1) as f64 + 0.5 * l2 * penalty
}

/// Limited-memory BFGS (10 correction pairs) with a backtracking Armijo line search.
fn lbfgs(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    mut x: Vec<f64>,
    opts: FitOptions,
) -> Vec<f64> {
    const MEMORY: usize = 10;
    let len = x.len();
    let mut g = vec![0.0; len];
    let mut fx = f(&x, &mut g);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::with_capacity(MEMORY);
    let mut x_new = vec![0.0; len];
    let mut g_new = vec![0.0; len];
    for _ in 0..opts.max_iterations {
        if max_abs(&g) < opts.gradient_tolerance {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let a = rho * dot64(s, &d);
            axpy64(-a, y, &mut d);
            alphas.push(a);
        }
        let gamma = history
            .back()
            .map_or(1.0 / max_abs(&g).max(1.0), |(s, y, _)| {
                dot64(s, y) / dot64(y, y)
            });
        d.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in history.iter().zip(alphas.iter().rev()) {
            let b = rho * dot64(y, &d);
            axpy64(a - b, s, &mut d);
        }
        let mut slope = dot64(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction (curvature went stale): restart from the gradient.
            history.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot64(&g, &d);
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            for ((xn, xi), di) in x_new.iter_mut().zip(&x).zip(&d) {
                *xn = xi + step * di;
            }
            let f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope {
                let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
                let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
                let sy = dot64(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                let improvement = fx - f_new;
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut g, &mut g_new);
                fx = f_new;
                accepted = improvement > 1e-12 * fx.abs().max(1.0);
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break; // no further progress at float precision
        }
    }
    x
}

pub fn softmax_in_place(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    z.iter_mut().for_each(|v| *v /= sum);
}

/// Dot product in four accumulators of eight lanes, so the compiler keeps them in vector
/// registers and the additions do not wait on each other.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut lanes = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..LANES {
            lanes[l] = x[l].mul_add(y[l], lanes[l]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy64(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well-separated clusters in two dimensions.
    fn clusters() -> (Vec<f32>, Vec<usize>) {
        let centres = [[1.0f32, 0.0], [-0.5, 0.8], [-0.5, -0.8]];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (k, c) in centres.iter().enumerate() {
            for j in 0..10 {
                let jitter = (j as f32 - 4.5) * 0.02;
                x.extend_from_slice(&[c[0] + jitter, c[1] - jitter]);
                y.push(k);
            }
        }
        (x, y)
    }

    #[test]
    fn separable_clusters_are_learned() {
        let (x, y) = clusters();
        let rows = Rows {
            x: &x,
            dim: 2,
            y: &y,
        };
        let m = fit(&rows, 3, 1e-3, &Softmax::zeros(3, 2), FitOptions::default());
        for i in 0..y.len() {
            let p = m.probabilities(rows.row(i));
            let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!(best, y[i], "row {i}: {p:?}");
            assert!(p[y[i]] > 0.9, "row {i}: {p:?}");
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let (x, y) = clusters();
        let rows = Rows {
            x: &x,
            dim: 2,
            y: &y,
        };
        let model = Softmax {
            classes: 3,
            dim: 2,
            weights: vec![0.3, -0.2, 0.1, 0.4, -0.5, 0.2],
            bias: vec![0.1, 0.0, -0.1],
        };
        let mut grad = vec![0.0; 9];
        objective(&rows, 3, 0.1, &model, &mut grad);
        let theta = model.to_params();
        for j in 0..theta.len() {
            let mut up = theta.clone();
            let mut down = theta.clone();
            up[j] += 1e-3;
            down[j] -= 1e-3;
            let mut scratch = vec![0.0; 9];
            let f = |t: &[f64], s: &mut [f64]| {
                objective(&rows, 3, 0.1, &Softmax::from_params(3, 2, t), s)
            };
            let numeric = (f(&up, &mut scratch) - f(&down, &mut scratch)) / 2e-3;
            assert!(
                (numeric - grad[j]).abs() < 1e-3,
                "component {j}: analytic {} numeric {numeric}",
                grad[j]
            );
        }
    }

    #[test]
    fn the_blocked_gradient_matches_a_plain_sum() {
        // More rows than one block and more classes than one task, neither a multiple of them.
        let (n, classes, dim) = (150, 9, 5);
        let x: Vec<f32> = (0..n * dim)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let y: Vec<usize> = (0..n).map(|i| i * 7 % classes).collect();
        let rows = Rows { x: &x, dim, y: &y };
        let model = Softmax {
            classes,
            dim,
            weights: (0..classes * dim)
                .map(|i| ((i % 13) as f32 - 6.0) / 10.0)
                .collect(),
            bias: (0..classes).map(|k| k as f32 / 20.0).collect(),
        };
        let mut grad = vec![0.0; classes * dim + classes];
        objective(&rows, classes, 0.01, &model, &mut grad);
        for k in 0..classes {
            for d in 0..dim {
                let plain: f64 = (0..n)
                    .map(|i| {
                        let p =
                            model.probabilities(rows.row(i))[k] - f64::from(u8::from(y[i] == k));
                        p * f64::from(rows.row(i)[d])
                    })
                    .sum::<f64>()
                    / n as f64
                    + 0.01 * f64::from(model.row(k)[d]);
                let got = grad[k * dim + d];
                assert!(
                    (got - plain).abs() < 1e-4,
                    "class {k} dim {d}: {got} vs {plain}"
                );
            }
        }
    }

    #[test]
    fn a_stronger_penalty_gives_smaller_weights_and_softer_probabilities() {
        let (x, y) = clusters();
        let rows = Rows {
            x: &x,
            dim: 2,
            y: &y,
        };
        let start = Softmax::zeros(3, 2);
        let weak = fit(&rows, 3, 1e-3, &start, FitOptions::default());
        let strong = fit(&rows, 3, 1.0, &start, FitOptions::default());
        let norm = |m: &Softmax| m.weights.iter().map(|w| w * w).sum::<f32>();
        assert!(norm(&strong) < norm(&weak));
        let p_weak = weak.probabilities(rows.row(0))[0];
        let p_strong = strong.probabilities(rows.row(0))[0];
        assert!(p_strong < p_weak && p_strong > 1.0 / 3.0);
    }

    #[test]
    fn dot_handles_lengths_off_the_lane_width() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b = vec![2.0f32; 19];
        assert_eq!(dot(&a, &b), 2.0 * (0..19).sum::<i32>() as f32);
    }
}
