//! Attention on the CPU for a tree of new tokens after a cached prefix, reading only the keys
//! each token may see: the whole prefix and its own ancestors. Packed items and label tries
//! are trees whose branches never see each other; a dense masked product would compute (and
//! softmax) every pair and throw most of them away, which grows with the square of the pack.
use rayon::prelude::*;

/// Query and key/value head counts, and the size of a head.
pub(crate) struct Heads {
    pub(crate) q: usize,
    pub(crate) kv: usize,
    pub(crate) dim: usize,
}

/// Keys or values: the cached prefix laid out (positions, kv heads, head dim), as the
/// cache holds it, and the new tokens (kv heads, new tokens, head dim), as a forward makes
/// them.
#[derive(Clone, Copy)]
pub(crate) struct Cache<'a> {
    pub(crate) prefix: &'a [f32],
    pub(crate) new: &'a [f32],
}

impl<'a> Cache<'a> {
    /// New token `j` (of `t`) of kv head `kh`.
    fn new_row(self, kh: usize, t: usize, j: usize, hd: usize) -> &'a [f32] {
        &self.new[(kh * t + j) * hd..(kh * t + j + 1) * hd]
    }
}

/// `out` (t, q heads · dim) from `q` (q heads, t, dim). `parents[i]` is token i's parent
/// among the new tokens (None: it follows the prefix). Rows run in parallel when there are
/// several.
pub(crate) fn attend(
    heads: &Heads,
    q: &[f32],
    keys: Cache,
    values: Cache,
    parents: &[Option<usize>],
    out: &mut [f32],
) {
    let t = parents.len();
    let width = heads.q * heads.dim;
    let row = |(i, out): (usize, &mut [f32])| attend_row(heads, q, keys, values, parents, i, out);
    if t == 1 {
        row((0, out));
    } else {
        out.par_chunks_mut(width).enumerate().for_each(row);
    }
}

fn attend_row(
    heads: &Heads,
    q: &[f32],
    keys: Cache,
    values: Cache,
    parents: &[Option<usize>],
    i: usize,
    out: &mut [f32],
) {
    let (t, hd) = (parents.len(), heads.dim);
    let p = keys.prefix.len() / (heads.kv * hd);
    let mut seen = vec![i];
    let mut node = i;
    while let Some(j) = parents[node] {
        seen.push(j);
        node = j;
    }
    let scale = 1.0 / (hd as f32).sqrt();
    let group = heads.q / heads.kv;
    let n = p + seen.len();
    let queries: Vec<&[f32]> = (0..heads.q)
        .map(|qh| &q[(qh * t + i) * hd..(qh * t + i + 1) * hd])
        .collect();
    // Scores (q heads, n). One pass over the cached positions for all heads: a position's
    // keys are contiguous, and each is read once for the query heads that share it (for a
    // generated token deep in a long context, these reads are most of the attention's time).
    // Each head still sums its positions in order, as it did head by head.
    let mut scores = vec![0f32; heads.q * n];
    let width = heads.kv * hd;
    let kv_of = |qh: usize| (qh / group) * hd..(qh / group + 1) * hd;
    for (r, position) in keys.prefix.chunks_exact(width).enumerate() {
        for (qh, query) in queries.iter().enumerate() {
            scores[qh * n + r] = dot(query, &position[kv_of(qh)]) * scale;
        }
    }
    for (s, &j) in seen.iter().enumerate() {
        for (qh, query) in queries.iter().enumerate() {
            scores[qh * n + p + s] = dot(query, keys.new_row(qh / group, t, j, hd)) * scale;
        }
    }
    scores.chunks_exact_mut(n).for_each(softmax);
    out.fill(0.0);
    for (r, position) in values.prefix.chunks_exact(width).enumerate() {
        for (qh, out) in out.chunks_exact_mut(hd).enumerate() {
            axpy(scores[qh * n + r], &position[kv_of(qh)], out);
        }
    }
    for (s, &j) in seen.iter().enumerate() {
        for (qh, out) in out.chunks_exact_mut(hd).enumerate() {
            axpy(
                scores[qh * n + p + s],
                values.new_row(qh / group, t, j, hd),
                out,
            );
        }
    }
}

/// Dot product in eight lanes, so that it vectorizes without reassociation.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for (l, (x, y)) in lanes.iter_mut().zip(x.iter().zip(y)) {
            *l += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

fn axpy(w: f32, x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += w * v;
    }
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    s.iter_mut().for_each(|v| *v /= sum);
}
