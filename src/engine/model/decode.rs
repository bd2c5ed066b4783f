//! One generated token through the model on the CPU. For a single row candle's op-by-op
//! tensors cost more than the arithmetic (an allocation and a pool dispatch per op, and a
//! copy of the whole KV cache per layer to append one position), so this path reads the same
//! 8-bit weights and KV cache in place: the matrix-vector products run on candle's worker pool
//! (`matvec`), the small vector work on the calling thread. The arithmetic is the candle
//! path's; `tests/it/engine_parity.rs` holds both to llama.cpp's logits.
use super::{Linear, Transformer, Weights};
use crate::engine::attention::{self, Cache, Heads};
use crate::engine::config::RopeStyle;
use crate::engine::kv::KvCache;
use crate::engine::matvec::{self, Q8Block};
use crate::engine::view::View;
use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{Device, Result, Tensor};
use std::borrow::Cow;

/// The logits (1, vocab) after `token` at position `prefix.len()`, and the token's cache
/// entries; None when this path does not apply (not the CPU, or a weight not in 8-bit
/// blocks), and the caller runs the general forward. The caller has checked the position
/// against the context.
pub(super) fn step(
    t: &Transformer,
    w: &Weights,
    prefix: &KvCache,
    token: u32,
) -> Result<Option<(Tensor, KvCache)>> {
    if !t.device.is_cpu() {
        return Ok(None);
    }
    let Some(layers) = w
        .blocks
        .iter()
        .map(|b| {
            Some([
                q8_blocks(&b.qkv)?,
                q8_blocks(&b.out)?,
                q8_blocks(&b.gate_up)?,
                q8_blocks(&b.down)?,
            ])
        })
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    let Some(whead) = q8_blocks(&w.head) else {
        return Ok(None);
    };
    let cfg = &t.cfg;
    let (d, hd, h, hkv) = (cfg.d_model, cfg.head_dim, cfg.n_heads, cfg.n_kv_heads);
    let (pos, n_qkv) = (prefix.len(), (h + 2 * hkv) * hd);
    let heads = Heads {
        q: h,
        kv: hkv,
        dim: hd,
    };
    let embed = View::of(&t.embed)?;
    let token = token as usize;
    let mut x = embed
        .slice()?
        .get(token * d..(token + 1) * d)
        .ok_or_else(|| candle_core::Error::Msg(format!("token {token} is not in the vocabulary")))?
        .to_vec();
    let (cos, sin) = (View::of(&t.cos)?, View::of(&t.sin)?);
    let half = hd / 2;
    let cos = &cos.slice()?[pos * half..(pos + 1) * half];
    let sin = &sin.slice()?[pos * half..(pos + 1) * half];

    let mut xn = vec![0f32; d];
    let mut xq = Vec::new();
    let mut qkv = vec![0f32; n_qkv];
    let mut att = vec![0f32; h * hd];
    let mut proj = vec![0f32; d];
    let mut gate_up = vec![0f32; 2 * cfg.d_ff];
    let mut new_layers = Vec::with_capacity(layers.len());
    let eps = cfg.rms_eps as f32;
    for (layer, (block, [wqkv, wout, wgate_up, wdown])) in w.blocks.iter().zip(&layers).enumerate()
    {
        rms_norm(&x, View::of(&block.attn_norm)?.slice()?, eps, &mut xn);
        matvec::quantize(&xn, &mut xq);
        product(wqkv, &xq, &mut qkv)?;
        if let Some(b) = &block.qkv.b {
            add(&mut qkv, View::of(b)?.slice()?);
        }
        let (q, kv) = qkv.split_at_mut(h * hd);
        let (k, v) = kv.split_at_mut(hkv * hd);
        for head in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
            rope(head, cos, sin, cfg.rope_style);
        }

        let cached = prefix.layer(layer)?;
        let (k_prev, v_prev) = match &cached {
            Some((kc, vc)) => (Some(View::of(kc)?), Some(View::of(vc)?)),
            None => (None, None),
        };
        let k_prev = View::slice_or_empty(k_prev.as_ref())?;
        let v_prev = View::slice_or_empty(v_prev.as_ref())?;
        let keys = Cache {
            prefix: k_prev,
            new: k,
        };
        let values = Cache {
            prefix: v_prev,
            new: v,
        };
        attention::attend(&heads, q, keys, values, &[None], &mut att);
        new_layers.push((
            Tensor::from_slice(k, (1, hkv, hd), &Device::Cpu)?,
            Tensor::from_slice(v, (1, hkv, hd), &Device::Cpu)?,
        ));

        matvec::quantize(&att, &mut xq);
        product(wout, &xq, &mut proj)?;
        add(&mut x, &proj);

        rms_norm(&x, View::of(&block.ffn_norm)?.slice()?, eps, &mut xn);
        matvec::quantize(&xn, &mut xq);
        product(wgate_up, &xq, &mut gate_up)?;
        let (gate, up) = gate_up.split_at_mut(cfg.d_ff);
        for (g, u) in gate.iter_mut().zip(up.iter()) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        matvec::quantize(gate, &mut xq);
        product(wdown, &xq, &mut proj)?;
        add(&mut x, &proj);
    }
    rms_norm(&x, View::of(&t.final_norm)?.slice()?, eps, &mut xn);
    matvec::quantize(&xn, &mut xq);
    let mut logits = vec![0f32; whead.len() / xq.len()];
    product(whead, &xq, &mut logits)?;
    let vocab = logits.len();
    Ok(Some((
        Tensor::from_vec(logits, (1, vocab), &Device::Cpu)?,
        KvCache::from_layers(new_layers)?,
    )))
}

/// The blocks of an 8-bit weight in CPU memory, borrowed; None for any other weight.
fn q8_blocks(l: &Linear) -> Option<&[Q8Block]> {
    match &l.w {
        QMatMul::QTensor(q) if q.dtype() == GgmlDType::Q8_0 => match q.data().ok()? {
            Cow::Borrowed(bytes) => matvec::blocks(bytes),
            Cow::Owned(_) => None,
        },
        _ => None,
    }
}

/// `out = w · a`, checking that the shapes agree.
fn product(w: &[Q8Block], a: &[Q8Block], out: &mut [f32]) -> Result<()> {
    if w.len() != out.len() * a.len() {
        candle_core::bail!(
            "a weight of {} blocks is not {} rows of {} blocks",
            w.len(),
            out.len(),
            a.len()
        );
    }
    matvec::matvec(w, a, out);
    Ok(())
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (mean + eps).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(weight) {
        *o = v * r * g;
    }
}

fn rope(x: &mut [f32], cos: &[f32], sin: &[f32], style: RopeStyle) {
    let half = x.len() / 2;
    for i in 0..half {
        let (a, b) = match style {
            RopeStyle::Interleaved => (2 * i, 2 * i + 1),
            RopeStyle::Halves => (i, i + half),
        };
        let (x0, x1) = (x[a], x[b]);
        x[a] = x0 * cos[i] - x1 * sin[i];
        x[b] = x0 * sin[i] + x1 * cos[i];
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both rotary layouts agree with candle's kernels, which the many-token path uses.
    #[test]
    fn rope_matches_candle_in_both_layouts() {
        let (heads, hd, pos) = (3, 8, 5);
        let x: Vec<f32> = (0..heads * hd).map(|i| (i as f32 * 0.37).sin()).collect();
        let angles: Vec<f32> = (0..hd / 2)
            .map(|i| pos as f32 / 10f32.powf(i as f32 / 4.0))
            .collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        let t = |v: &[f32], shape: (usize, usize)| Tensor::from_slice(v, shape, &Device::Cpu);
        let xt = Tensor::from_slice(&x, (1, heads, 1, hd), &Device::Cpu).unwrap();
        let (ct, st) = (t(&cos, (1, hd / 2)).unwrap(), t(&sin, (1, hd / 2)).unwrap());
        for style in [RopeStyle::Interleaved, RopeStyle::Halves] {
            let want = match style {
                RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&xt, &ct, &st),
                RopeStyle::Halves => candle_nn::rotary_emb::rope(&xt, &ct, &st),
            }
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
            let mut got = x.clone();
            for head in got.chunks_exact_mut(hd) {
                rope(head, &cos, &sin, style);
            }
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{style:?}: {got:?} vs {want:?}");
            }
        }
    }
}
