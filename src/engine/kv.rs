//! Key/value caches. A cache is immutable once built: a prefix cache is shared by every
//! item of a task, and a forward returns only the entries of the tokens it added.
use candle_core::{Result, Tensor};

/// Keys and values per layer, each shaped (kv_heads, len, head_dim).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    pub(crate) layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    pub fn empty() -> Self {
        Self::default()
    }

    pub(crate) fn from_layers(layers: Vec<(Tensor, Tensor)>) -> Result<Self> {
        let len = match layers.first() {
            Some((k, _)) => k.dim(1)?,
            None => 0,
        };
        Ok(Self { layers, len })
    }

    /// Number of positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This cache followed by `more` (a chain: `more`'s tokens come after this one's).
    pub fn extend(&self, more: &KvCache) -> Result<KvCache> {
        if self.is_empty() {
            return Ok(more.clone());
        }
        if more.is_empty() {
            return Ok(self.clone());
        }
        let layers = self
            .layers
            .iter()
            .zip(&more.layers)
            .map(|((k0, v0), (k1, v1))| {
                Ok((Tensor::cat(&[k0, k1], 1)?, Tensor::cat(&[v0, v1], 1)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            layers,
            len: self.len + more.len,
        })
    }
}
