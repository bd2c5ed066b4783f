//! Nearest neighbours by brute force over int8-packed unit vectors: what "more like this" and a
//! search by meaning read. Each vector is stored as 8-bit codes with one scale (its largest
//! component maps to ±127), a quarter of its f32 size, and a query is one pass of integer dot
//! products split over the threads. The int8 scores only rank: the caller re-scores the few it
//! keeps from the exact vectors.
use rayon::prelude::*;
use std::collections::HashMap;

/// Rows scored per parallel task: large enough that the split costs nothing next to the work.
const ROWS_PER_TASK: usize = 4096;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VectorError {
    #[error("a vector of {got} floats where this index holds {want}")]
    Dimension { got: usize, want: usize },
}

/// One vector as codes and a scale: `v[i] ≈ codes[i] · scale`.
fn quantize(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Integer dot product, written so the compiler vectorises it (widening multiply-adds).
fn dot(a: &[i8], b: &[i8]) -> i32 {
    a.chunks(32)
        .zip(b.chunks(32))
        .map(|(a, b)| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum::<i32>()
        })
        .sum()
}

/// A set of vectors of one dimension (the first vector's), each under an id; an id added again
/// replaces its vector.
#[derive(Debug, Clone, Default)]
pub struct PackedVectors {
    dim: usize,
    ids: Vec<i64>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    position: HashMap<i64, usize>,
}

impl PackedVectors {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: i64) -> bool {
        self.position.contains_key(&id)
    }

    pub fn insert(&mut self, id: i64, v: &[f32]) -> Result<(), VectorError> {
        if self.is_empty() {
            self.dim = v.len();
        }
        if v.len() != self.dim {
            return Err(VectorError::Dimension {
                got: v.len(),
                want: self.dim,
            });
        }
        match self.position.get(&id) {
            Some(&at) => {
                let mut codes = Vec::with_capacity(self.dim);
                self.scales[at] = quantize(v, &mut codes);
                self.codes[at * self.dim..(at + 1) * self.dim].copy_from_slice(&codes);
            }
            None => {
                self.position.insert(id, self.ids.len());
                self.ids.push(id);
                let scale = quantize(v, &mut self.codes);
                self.scales.push(scale);
            }
        }
        Ok(())
    }

    /// Takes `id` out (the last vector moves into its place).
    pub fn remove(&mut self, id: i64) {
        let Some(at) = self.position.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if at != last {
            let moved = self.ids[last];
            self.ids[at] = moved;
            self.scales[at] = self.scales[last];
            self.codes
                .copy_within(last * self.dim..(last + 1) * self.dim, at * self.dim);
            self.position.insert(moved, at);
        }
        self.ids.pop();
        self.scales.pop();
        self.codes.truncate(last * self.dim);
    }

    /// The stored (dequantized) vector of `id`.
    pub fn get(&self, id: i64) -> Option<Vec<f32>> {
        let &at = self.position.get(&id)?;
        let scale = self.scales[at];
        Some(
            self.codes[at * self.dim..(at + 1) * self.dim]
                .iter()
                .map(|&c| f32::from(c) * scale)
                .collect(),
        )
    }

    /// The `k` ids whose vectors have the largest dot product with `query` (the cosine, for
    /// unit vectors), best first, with their approximate scores; `skip` ids are left out.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        skip: &(dyn Fn(i64) -> bool + Sync),
    ) -> Result<Vec<(i64, f32)>, VectorError> {
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        if query.len() != self.dim {
            return Err(VectorError::Dimension {
                got: query.len(),
                want: self.dim,
            });
        }
        let mut q = Vec::with_capacity(self.dim);
        let q_scale = quantize(query, &mut q);
        let best = self
            .codes
            .par_chunks(self.dim * ROWS_PER_TASK)
            .enumerate()
            .map(|(task, block)| {
                let mut top = TopK::new(k);
                for (j, row) in block.chunks_exact(self.dim).enumerate() {
                    let at = task * ROWS_PER_TASK + j;
                    let score = dot(&q, row) as f32 * self.scales[at];
                    if top.admits(score) && !skip(self.ids[at]) {
                        top.push(score, at);
                    }
                }
                top
            })
            .reduce(|| TopK::new(k), TopK::merge);
        Ok(best
            .into_sorted()
            .into_iter()
            .map(|(score, at)| (self.ids[at], score * q_scale))
            .collect())
    }
}

/// The k best (score, position) pairs seen so far.
struct TopK {
    k: usize,
    items: Vec<(f32, usize)>,
    /// The smallest kept score once `items` is full.
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(2 * k),
            floor: f32::NEG_INFINITY,
        }
    }

    fn admits(&self, score: f32) -> bool {
        score > self.floor
    }

    /// Keeps up to 2k and trims back to k when full, so a push is amortised O(1).
    fn push(&mut self, score: f32, at: usize) {
        self.items.push((score, at));
        if self.items.len() >= 2 * self.k {
            self.trim();
        }
    }

    fn trim(&mut self) {
        if self.items.len() > self.k {
            self.items
                .select_nth_unstable_by(self.k - 1, |a, b| b.0.total_cmp(&a.0));
            self.items.truncate(self.k);
            self.floor = self.items.iter().map(|x| x.0).fold(f32::INFINITY, f32::min);
        }
    }

    fn merge(mut self, other: TopK) -> TopK {
        for (score, at) in other.items {
            if self.admits(score) {
                self.push(score, at);
            }
        }
        self
    }

    fn into_sorted(mut self) -> Vec<(f32, usize)> {
        self.trim();
        // Ties go to the earlier position, so the order is the same on every run.
        self.items
            .sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random unit vectors.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn exact(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_nearest_match_an_exact_search() {
        let (n, dim) = (20_000, 64);
        let data = vectors(n, dim, 7);
        let mut index = PackedVectors::default();
        for (i, v) in data.iter().enumerate() {
            index.insert(i as i64 * 10, v).unwrap();
        }
        for query in vectors(5, dim, 99) {
            let got = index.nearest(&query, 10, &|_| false).unwrap();
            let mut truth: Vec<(usize, f32)> = data
                .iter()
                .enumerate()
                .map(|(i, v)| (i, exact(&query, v)))
                .collect();
            truth.sort_by(|a, b| b.1.total_cmp(&a.1));
            // int8 codes rank within their rounding error: 9 of the true top 10 at least.
            let top: Vec<i64> = truth[..10].iter().map(|(i, _)| *i as i64 * 10).collect();
            let hits = got.iter().filter(|(id, _)| top.contains(id)).count();
            assert!(hits >= 9, "{hits} of 10");
            for (id, score) in &got {
                let true_score = exact(&query, &data[(*id / 10) as usize]);
                assert!((score - true_score).abs() < 0.02, "{score} vs {true_score}");
            }
            assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
        }
    }

    #[test]
    fn a_vector_finds_itself_first_unless_skipped() {
        let data = vectors(500, 32, 3);
        let mut index = PackedVectors::default();
        for (i, v) in data.iter().enumerate() {
            index.insert(i as i64, v).unwrap();
        }
        let got = index.nearest(&data[42], 3, &|_| false).unwrap();
        assert_eq!(got[0].0, 42);
        assert!((got[0].1 - 1.0).abs() < 0.01);
        let got = index.nearest(&data[42], 3, &|id| id == 42).unwrap();
        assert!(got.iter().all(|(id, _)| *id != 42));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn inserting_an_id_again_replaces_its_vector() {
        let data = vectors(3, 8, 5);
        let mut index = PackedVectors::default();
        index.insert(1, &data[0]).unwrap();
        index.insert(2, &data[1]).unwrap();
        index.insert(1, &data[2]).unwrap();
        assert_eq!(index.len(), 2);
        let got = index.nearest(&data[2], 1, &|_| false).unwrap();
        assert_eq!(got[0].0, 1);
        let back = index.get(1).unwrap();
        assert!(back.iter().zip(&data[2]).all(|(a, b)| (a - b).abs() < 0.01));
        // Removing the first moves the last into its place; both stay findable by id.
        index.insert(3, &data[0]).unwrap();
        index.remove(1);
        index.remove(77);
        assert_eq!(index.len(), 2);
        assert!(!index.contains(1));
        assert_eq!(index.nearest(&data[0], 1, &|_| false).unwrap()[0].0, 3);
        assert_eq!(index.nearest(&data[1], 1, &|_| false).unwrap()[0].0, 2);
    }

    #[test]
    fn fewer_vectors_than_asked_and_wrong_dimensions() {
        let data = vectors(4, 8, 1);
        let mut index = PackedVectors::default();
        assert!(index.nearest(&data[0], 5, &|_| false).unwrap().is_empty());
        for (i, v) in data.iter().enumerate() {
            index.insert(i as i64, v).unwrap();
        }
        assert_eq!(index.nearest(&data[0], 50, &|_| false).unwrap().len(), 4);
        assert_eq!(
            index.insert(9, &[1.0; 3]),
            Err(VectorError::Dimension { got: 3, want: 8 })
        );
        assert!(index.nearest(&[1.0; 3], 1, &|_| false).is_err());
        // A zero vector is stored without dividing by zero and scores 0 everywhere.
        index.insert(9, &[0.0; 8]).unwrap();
        assert!(index
            .nearest(&data[1], 5, &|_| false)
            .unwrap()
            .iter()
            .any(|(id, s)| *id == 9 && *s == 0.0));
    }
}
