//! Key/value caches. A cache is immutable once built: a prefix cache is shared by every
//! item of a task, and a forward returns only the entries of the tokens it added.
//!
//! Extending a cache by a token used to copy the whole cache (per layer, per token: 22 MB a
//! token at 480 positions, ~1.2 ms of a ~9 ms step). Buffers now have room to grow, and the
//! cache that holds the furthest position written may append in place: positions a cache can
//! see are never written again, so every cache sharing a buffer still reads what it held.
use candle_core::{Result, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Positions a new buffer holds at least, so short chains do not reallocate every token.
const MIN_CAPACITY: usize = 64;

/// Keys and values per layer, each shaped (capacity, kv_heads, head_dim): positions first,
/// so appending writes one contiguous block and the first `len` positions are a contiguous
/// view. Positions `len..` belong to whoever extends at the frontier.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
    /// How many positions of these buffers some cache has written: the only place anybody
    /// may append in place.
    frontier: Arc<AtomicUsize>,
}

impl KvCache {
    pub fn empty() -> Self {
        Self::default()
    }

    /// A cache of the given layers, each (positions, kv_heads, head_dim).
    pub(crate) fn from_layers(layers: Vec<(Tensor, Tensor)>) -> Result<Self> {
        let len = match layers.first() {
            Some((k, _)) => k.dim(0)?,
            None => 0,
        };
        Ok(Self {
            layers,
            len,
            frontier: Arc::new(AtomicUsize::new(len)),
        })
    }

    /// Number of positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys and values of `layer`, each (len, kv_heads, head_dim) and contiguous; None
    /// for an empty cache.
    pub(crate) fn layer(&self, layer: usize) -> Result<Option<(Tensor, Tensor)>> {
        match self.layers.get(layer) {
            Some((k, v)) if self.len > 0 => {
                Ok(Some((k.narrow(0, 0, self.len)?, v.narrow(0, 0, self.len)?)))
            }
            _ => Ok(None),
        }
    }

    /// This cache followed by `more` (a chain: `more`'s tokens come after this one's).
    pub fn extend(&self, more: &KvCache) -> Result<KvCache> {
        if self.is_empty() {
            return Ok(more.clone());
        }
        if more.is_empty() {
            return Ok(self.clone());
        }
        let len = self.len + more.len;
        let room = self
            .layers
            .first()
            .map_or(0, |(k, _)| k.dim(0).unwrap_or(0));
        let at_frontier = len <= room
            && self
                .frontier
                .compare_exchange(self.len, len, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if at_frontier {
            for ((k, v), (k1, v1)) in self.layers.iter().zip(&more.layers) {
                k.slice_set(&k1.narrow(0, 0, more.len)?, 0, self.len)?;
                v.slice_set(&v1.narrow(0, 0, more.len)?, 0, self.len)?;
            }
            return Ok(KvCache {
                layers: self.layers.clone(),
                len,
                frontier: self.frontier.clone(),
            });
        }
        // A new buffer with room for as many positions again.
        let capacity = (2 * len).max(MIN_CAPACITY);
        let grow = |a: &Tensor, b: &Tensor| -> Result<Tensor> {
            let (_, heads, dim) = a.dims3()?;
            let buffer = Tensor::zeros((capacity, heads, dim), a.dtype(), a.device())?;
            buffer.slice_set(&a.narrow(0, 0, self.len)?, 0, 0)?;
            buffer.slice_set(&b.narrow(0, 0, more.len)?, 0, self.len)?;
            Ok(buffer)
        };
        let layers = self
            .layers
            .iter()
            .zip(&more.layers)
            .map(|((k0, v0), (k1, v1))| Ok((grow(k0, k1)?, grow(v0, v1)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len,
            frontier: Arc::new(AtomicUsize::new(len)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A one-layer cache whose positions hold the values in `pos` (2 heads of 2 values).
    fn cache(pos: &[f32]) -> KvCache {
        let data: Vec<f32> = pos.iter().flat_map(|&p| [p; 4]).collect();
        let t = Tensor::from_vec(data, (pos.len(), 2, 2), &Device::Cpu).unwrap();
        KvCache::from_layers(vec![(t.clone(), t)]).unwrap()
    }

    fn positions(c: &KvCache) -> Vec<f32> {
        let (k, _) = c.layer(0).unwrap().unwrap();
        let v: Vec<Vec<Vec<f32>>> = k.to_vec3().unwrap();
        v.iter().map(|p| p[0][0]).collect()
    }

    /// Where a cache's keys start in memory: the same for caches sharing a buffer.
    fn first_key(c: &KvCache) -> *const f32 {
        let (k, _) = c.layer(0).unwrap().unwrap();
        let view = crate::engine::view::View::of(&k).unwrap();
        let first = view.slice().unwrap().as_ptr();
        first
    }

    /// Caches that share a buffer never see each other's later positions: a branch taken
    /// from an older cache copies instead of writing over the furthest one's rows.
    #[test]
    fn branches_sharing_a_buffer_keep_their_own_positions() {
        let base = cache(&[1.0, 2.0]).extend(&cache(&[3.0])).unwrap();
        let a = base.extend(&cache(&[4.0])).unwrap(); // in place, at the frontier
        let b = base.extend(&cache(&[5.0])).unwrap(); // behind the frontier: copied
        let a2 = a.extend(&cache(&[6.0])).unwrap();
        assert_eq!(positions(&base), vec![1.0, 2.0, 3.0]);
        assert_eq!(positions(&a), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(positions(&b), vec![1.0, 2.0, 3.0, 5.0]);
        assert_eq!(positions(&a2), vec![1.0, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(first_key(&a), first_key(&a2));
        assert_ne!(first_key(&a), first_key(&b));
    }

    #[test]
    fn a_long_chain_grows_past_its_buffer() {
        let mut c = KvCache::empty();
        for p in 0..(3 * MIN_CAPACITY) {
            c = c.extend(&cache(&[p as f32])).unwrap();
        }
        let want: Vec<f32> = (0..3 * MIN_CAPACITY).map(|p| p as f32).collect();
        assert_eq!(positions(&c), want);
    }
}
