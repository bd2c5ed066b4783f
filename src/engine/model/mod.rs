//! The decoder-only transformer (llama and qwen2 layouts), owned by the project so that a
//! forward can take a tree of new tokens after a cached prefix and return logits only for
//! the positions asked for. candle's own quantized models return only the last position and
//! cannot share a prefix between branches, which label scoring needs.
mod decode;
mod load;

use super::attention::{self, Cache, Heads};
use super::config::{ModelConfig, RopeStyle};
use super::kv::KvCache;
use super::view::View;
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Result, Tensor, D};

/// Which weight copy a forward uses. Scoring feeds many tokens at once and is compute-bound:
/// f32 weights through candle's gemm are fastest. Generation feeds one token at a time and is
/// memory-bound: 8-bit weights are fastest (the measurements are in the shared ENGINE-NOTES.md, outside this repository, and in BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightCopy {
    Scoring,
    Generation,
}

struct Linear {
    w: QMatMul,
    b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.w.forward(x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

struct Block {
    attn_norm: Tensor,
    /// q, k and v projections stacked into one matmul.
    qkv: Linear,
    out: Linear,
    ffn_norm: Tensor,
    /// gate and up projections stacked into one matmul.
    gate_up: Linear,
    down: Linear,
}

struct Weights {
    blocks: Vec<Block>,
    head: Linear,
}

/// Rows of the feed-forward computed at once.
const FFN_ROWS: usize = 512;

/// What every layer of one forward shares: the rotary tables at the new tokens' positions,
/// and who sees whom (parents on the CPU, an additive mask elsewhere).
struct Tree<'a> {
    cos: Tensor,
    sin: Tensor,
    parents: &'a [Option<usize>],
    mask: Option<Tensor>,
}

/// What one forward returns: logits of the wanted rows, their hidden states (not on the
/// single-token decode path), and the new tokens' cache when asked to keep it.
struct Forward {
    logits: Tensor,
    hidden: Option<Tensor>,
    cache: Option<KvCache>,
}

pub struct Transformer {
    cfg: ModelConfig,
    embed: Tensor,
    final_norm: Tensor,
    cos: Tensor,
    sin: Tensor,
    /// None when scoring shares the generation weights (large models, where an f32 copy
    /// would not fit comfortably in memory).
    scoring: Option<Weights>,
    generation: Weights,
    device: Device,
}

impl Transformer {
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn weights(&self, job: WeightCopy) -> &Weights {
        match (job, &self.scoring) {
            (WeightCopy::Scoring, Some(w)) => w,
            _ => &self.generation,
        }
    }

    /// The KV cache of a prompt prefix shared by many items (empty for no tokens).
    pub fn prefill(&self, tokens: &[u32]) -> Result<KvCache> {
        match tokens.len() {
            0 => Ok(KvCache::empty()),
            n => Ok(self
                .forward_chain(WeightCopy::Scoring, &KvCache::empty(), tokens, &[n - 1])?
                .1),
        }
    }

    /// Feeds a chain of tokens after `prefix`; returns the logits at `want` (indices into
    /// `tokens`) and the cache entries of the new tokens.
    pub fn forward_chain(
        &self,
        job: WeightCopy,
        prefix: &KvCache,
        tokens: &[u32],
        want: &[usize],
    ) -> Result<(Tensor, KvCache)> {
        let parents: Vec<Option<usize>> = (0..tokens.len()).map(|i| i.checked_sub(1)).collect();
        let out = self.forward(job, prefix, tokens, &parents, want, true)?;
        Ok((out.logits, out.cache.unwrap_or_default()))
    }

    /// Feeds a forest of new tokens after `prefix`. `parents[i]` is the index of token i's
    /// parent among `tokens` (it must come earlier), or None when token i follows the prefix
    /// directly. Each token sees the whole prefix and its own ancestors, at position
    /// `prefix.len() + depth`: one call scores many items, or every label of a label trie.
    /// Returns logits (len(want), vocab) for the rows in `want`. The new tokens' cache entries
    /// are dropped layer by layer (for a pack of 2048 tokens they would hold ~94 MB).
    pub fn forward_tree(
        &self,
        job: WeightCopy,
        prefix: &KvCache,
        tokens: &[u32],
        parents: &[Option<usize>],
        want: &[usize],
    ) -> Result<Tensor> {
        Ok(self
            .forward(job, prefix, tokens, parents, want, false)?
            .logits)
    }

    /// `forward_tree` that also returns the final hidden state of each row in `want` (after
    /// the last norm, before the output head): what the model knows at that position.
    pub fn forward_tree_hidden(
        &self,
        prefix: &KvCache,
        tokens: &[u32],
        parents: &[Option<usize>],
        want: &[usize],
    ) -> Result<(Tensor, Tensor)> {
        let out = self.forward(WeightCopy::Scoring, prefix, tokens, parents, want, false)?;
        let hidden = out
            .hidden
            .ok_or_else(|| candle_core::Error::Msg("no hidden rows".into()))?;
        Ok((out.logits, hidden.to_dtype(DType::F32)?))
    }

    /// The forward of `forward_tree`, keeping the new cache entries when `keep_cache`.
    fn forward(
        &self,
        job: WeightCopy,
        prefix: &KvCache,
        tokens: &[u32],
        parents: &[Option<usize>],
        want: &[usize],
        keep_cache: bool,
    ) -> Result<Forward> {
        let t = tokens.len();
        if t == 0 || parents.len() != t {
            candle_core::bail!("forward_tree needs one parent entry per token (got {t} tokens)");
        }
        let p = prefix.len();
        let mut depth = vec![0usize; t];
        for (i, parent) in parents.iter().enumerate() {
            if let Some(j) = *parent {
                if j >= i {
                    candle_core::bail!("token {i} has parent {j}, which does not come before it");
                }
                depth[i] = depth[j] + 1;
            }
        }
        let max_pos = p + depth.iter().max().copied().unwrap_or(0);
        if max_pos >= self.cos.dim(0)? {
            candle_core::bail!(
                "position {max_pos} is beyond the model's context of {}",
                self.cos.dim(0)?
            );
        }
        if let (WeightCopy::Generation, [token], [0]) = (job, tokens, want) {
            if let Some((logits, cache)) = decode::step(self, self.weights(job), prefix, *token)? {
                return Ok(Forward {
                    logits,
                    hidden: None,
                    cache: Some(cache),
                });
            }
        }
        let positions: Vec<u32> = depth.iter().map(|d| (p + d) as u32).collect();
        let positions = Tensor::new(positions.as_slice(), &self.device)?;
        let cos = self.cos.index_select(&positions, 0)?;
        let sin = self.sin.index_select(&positions, 0)?;
        // The CPU attends along the tree itself (attention.rs); other devices use a mask.
        let mask = match self.device.is_cpu() {
            true => None,
            false => tree_mask(p, parents, &self.device)?,
        };

        let tree = Tree {
            cos,
            sin,
            parents,
            mask,
        };
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self.embed.index_select(&ids, 0)?;
        let weights = self.weights(job);
        let mut new_layers = Vec::with_capacity(weights.blocks.len());
        for (layer, block) in weights.blocks.iter().enumerate() {
            let cached = prefix.layer(layer)?;
            let (y, (k, v)) = self.block_forward(block, &x, cached.as_ref(), &tree)?;
            x = y;
            if keep_cache {
                // The cache holds positions first (kv.rs).
                new_layers.push((
                    k.transpose(0, 1)?.contiguous()?,
                    v.transpose(0, 1)?.contiguous()?,
                ));
            }
        }
        let want: Vec<u32> = want.iter().map(|&i| i as u32).collect();
        let rows = x.index_select(&Tensor::new(want.as_slice(), &self.device)?, 0)?;
        let rows = candle_nn::ops::rms_norm(&rows, &self.final_norm, self.cfg.rms_eps as f32)?;
        let logits = weights.head.forward(&rows)?.to_dtype(DType::F32)?;
        let cache = match keep_cache {
            true => Some(KvCache::from_layers(new_layers)?),
            false => None,
        };
        Ok(Forward {
            logits,
            hidden: Some(rows),
            cache,
        })
    }

    fn block_forward(
        &self,
        block: &Block,
        x: &Tensor,
        cached: Option<&(Tensor, Tensor)>,
        tree: &Tree,
    ) -> Result<(Tensor, (Tensor, Tensor))> {
        let (cos, sin) = (&tree.cos, &tree.sin);
        let cfg = &self.cfg;
        let (t, _) = x.dims2()?;
        let (h, hkv, hd) = (cfg.n_heads, cfg.n_kv_heads, cfg.head_dim);

        let normed = candle_nn::ops::rms_norm(x, &block.attn_norm, cfg.rms_eps as f32)?;
        let qkv = block.qkv.forward(&normed)?;
        let heads = |start: usize, n: usize| -> Result<Tensor> {
            qkv.narrow(1, start * hd, n * hd)?
                .reshape((t, n, hd))?
                .transpose(0, 1)?
                .contiguous()?
                .unsqueeze(0)
        };
        let q = self.rope(&heads(0, h)?, cos, sin)?;
        let k = self.rope(&heads(h, hkv)?, cos, sin)?.squeeze(0)?;
        let v = heads(h + hkv, hkv)?.squeeze(0)?;

        let heads = Heads {
            q: h,
            kv: hkv,
            dim: hd,
        };
        let out = match self.device.is_cpu() {
            true => attend_cpu(&heads, &q.squeeze(0)?, &k, &v, cached, tree.parents)?,
            false => attend_masked(&heads, &q, &k, &v, cached, tree.mask.as_ref())?,
        };
        let x = (x + block.out.forward(&out)?)?;

        let normed = candle_nn::ops::rms_norm(&x, &block.ffn_norm, cfg.rms_eps as f32)?;
        // Tokens are independent here; in slices, a large pack's (t, 2·d_ff) intermediates
        // stay small (a whole 2048-token pack held ~50 MB more at the peak).
        let ffn = match t > FFN_ROWS {
            true => Tensor::cat(
                &(0..t)
                    .step_by(FFN_ROWS)
                    .map(|s| Self::ffn(block, &normed.narrow(0, s, FFN_ROWS.min(t - s))?))
                    .collect::<Result<Vec<_>>>()?,
                0,
            )?,
            false => Self::ffn(block, &normed)?,
        };
        Ok(((x + ffn)?, (k, v)))
    }

    fn ffn(block: &Block, x: &Tensor) -> Result<Tensor> {
        let gate_up = block.gate_up.forward(x)?;
        let d_ff = gate_up.dim(D::Minus1)? / 2;
        let gate = candle_nn::ops::silu(&gate_up.narrow(1, 0, d_ff)?)?;
        let up = gate_up.narrow(1, d_ff, d_ff)?;
        block.down.forward(&(gate * up)?)
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        match self.cfg.rope_style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, cos, sin),
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, cos, sin),
        }
    }
}

/// Additive attention mask (t, p + t): every token sees the prefix and its ancestors.
/// None for a single token, which sees everything there is.
fn tree_mask(p: usize, parents: &[Option<usize>], device: &Device) -> Result<Option<Tensor>> {
    let t = parents.len();
    if t == 1 {
        return Ok(None);
    }
    let width = p + t;
    let mut mask = vec![f32::NEG_INFINITY; t * width];
    for i in 0..t {
        let row = &mut mask[i * width..(i + 1) * width];
        row[..p].fill(0.0);
        let mut node = Some(i);
        while let Some(j) = node {
            row[p + j] = 0.0;
            node = parents[j];
        }
    }
    Tensor::from_vec(mask, (t, width), device).map(Some)
}

/// Attention along the tree on the CPU; `q` is (heads, t, head_dim).
fn attend_cpu(
    heads: &Heads,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cached: Option<&(Tensor, Tensor)>,
    parents: &[Option<usize>],
) -> Result<Tensor> {
    let (kp, vp) = match cached {
        Some((kc, vc)) => (Some(View::of(kc)?), Some(View::of(vc)?)),
        None => (None, None),
    };
    let (qv, kv, vv) = (View::of(q)?, View::of(k)?, View::of(v)?);
    let keys = Cache {
        prefix: View::slice_or_empty(kp.as_ref())?,
        new: kv.slice()?,
    };
    let values = Cache {
        prefix: View::slice_or_empty(vp.as_ref())?,
        new: vv.slice()?,
    };
    let t = parents.len();
    let mut out = vec![0f32; t * heads.q * heads.dim];
    attention::attend(heads, qv.slice()?, keys, values, parents, &mut out);
    Tensor::from_vec(out, (t, heads.q * heads.dim), q.device())
}

/// Attention as dense products with an additive mask (devices other than the CPU).
fn attend_masked(
    heads: &Heads,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cached: Option<&(Tensor, Tensor)>,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let (h, hkv, hd) = (heads.q, heads.kv, heads.dim);
    let (group, t) = (h / hkv, k.dim(1)?);
    let (k_all, v_all) = match cached {
        Some((k0, v0)) => (
            Tensor::cat(&[&k0.transpose(0, 1)?, k], 1)?,
            Tensor::cat(&[&v0.transpose(0, 1)?, v], 1)?,
        ),
        None => (k.clone(), v.clone()),
    };
    let width = k_all.dim(1)?;
    // Query heads that share a kv head are stacked along the rows, so no kv copy is made.
    let q = (q.squeeze(0)? * (1.0 / (hd as f64).sqrt()))?.reshape((hkv, group * t, hd))?;
    let mut att = q.matmul(&k_all.t()?)?;
    if let Some(mask) = mask {
        att = att
            .reshape((hkv, group, t, width))?
            .broadcast_add(mask)?
            .reshape((hkv, group * t, width))?;
    }
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    att.matmul(&v_all.contiguous()?)?
        .reshape((h, t, hd))?
        .transpose(0, 1)?
        .reshape((t, h * hd))
}

/// Natural-log softmax of each row, as plain vectors. Done in place on the one copy out of
/// the tensor: candle's op would allocate several full (rows, vocab) intermediates, which for
/// a label trie of 150 rows is over 100 MB at the peak.
pub fn log_softmax_rows(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let mut rows = logits.to_vec2::<f32>()?;
    for row in &mut rows {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + row.iter().map(|x| (x - max).exp()).sum::<f32>().ln();
        row.iter_mut().for_each(|x| *x -= lse);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masked product that other devices use agrees with the CPU's walk along the tree,
    /// with a cached prefix laid out positions first (as the cache holds it) and new tokens
    /// in two branches.
    #[test]
    fn masked_attention_matches_the_tree_walk() -> Result<()> {
        let heads = Heads {
            q: 6,
            kv: 2,
            dim: 8,
        };
        let (p, parents) = (5, [None, Some(0), Some(1), None, Some(3)]);
        let (t, dev) = (parents.len(), Device::Cpu);
        let tensor = |shape: (usize, usize, usize), seed: f32| {
            let n = shape.0 * shape.1 * shape.2;
            let v: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
            Tensor::from_vec(v, shape, &dev)
        };
        let q = tensor((heads.q, t, heads.dim), 0.1)?;
        let (k, v) = (
            tensor((heads.kv, t, heads.dim), 0.2)?,
            tensor((heads.kv, t, heads.dim), 0.3)?,
        );
        let cached = (
            tensor((p, heads.kv, heads.dim), 0.4)?,
            tensor((p, heads.kv, heads.dim), 0.5)?,
        );
        let walked = attend_cpu(&heads, &q, &k, &v, Some(&cached), &parents)?;
        let mask = tree_mask(p, &parents, &dev)?;
        let masked = attend_masked(
            &heads,
            &q.unsqueeze(0)?,
            &k,
            &v,
            Some(&cached),
            mask.as_ref(),
        )?;
        let diff = (walked - masked)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "largest difference {diff}");
        Ok(())
    }
}
