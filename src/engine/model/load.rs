//! Reading a GGUF file's tensors into the transformer's two weight copies: f32 for scoring
//! (while the model is small enough), 8-bit blocks for generation.
use super::{Block, Linear, Transformer, Weights};
use crate::engine::config::ModelConfig;
use crate::engine::{EngineError, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Tensor};
use std::io::{Read, Seek};

/// Above this many parameters, scoring shares the 8-bit generation weights instead of
/// keeping an f32 copy (which costs 4 bytes a parameter).
const F32_SCORING_MAX_PARAMS: usize = 600_000_000;

impl Transformer {
    /// The transformer of an opened GGUF file; `corrupt` names the file in a read error.
    pub(crate) fn from_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        cfg: ModelConfig,
        device: candle_core::Device,
        corrupt: impl Fn(String) -> EngineError,
    ) -> Result<Transformer> {
        let mut read = |name: &str| -> Result<QTensor> {
            content
                .tensor(reader, name, &device)
                .map_err(|e| corrupt(format!("tensor {name}: {e}")))
        };
        let f32_of = |q: &QTensor| -> Result<Tensor> { Ok(q.dequantize(&device)?) };

        let embed = f32_of(&read("token_embd.weight")?)?;
        let head_f32 = match content.tensor_infos.contains_key("output.weight") {
            true => f32_of(&read("output.weight")?)?,
            false => embed.clone(),
        };
        let final_norm = f32_of(&read("output_norm.weight")?)?;
        let n_params: usize = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count())
            .sum();
        let keep_f32 = n_params <= F32_SCORING_MAX_PARAMS;

        let mut scoring = Vec::new();
        let mut generation = Vec::new();
        for i in 0..cfg.n_layers {
            let mut w = |s: &str| read(&format!("blk.{i}.{s}")).and_then(|q| f32_of(&q));
            let attn_norm = w("attn_norm.weight")?;
            let ffn_norm = w("ffn_norm.weight")?;
            let qkv = Tensor::cat(
                &[
                    w("attn_q.weight")?,
                    w("attn_k.weight")?,
                    w("attn_v.weight")?,
                ],
                0,
            )?;
            let qkv_bias = match content
                .tensor_infos
                .contains_key(&format!("blk.{i}.attn_q.bias"))
            {
                true => Some(Tensor::cat(
                    &[w("attn_q.bias")?, w("attn_k.bias")?, w("attn_v.bias")?],
                    0,
                )?),
                false => None,
            };
            let out = w("attn_output.weight")?;
            let gate_up = Tensor::cat(&[w("ffn_gate.weight")?, w("ffn_up.weight")?], 0)?;
            let down = w("ffn_down.weight")?;
            let make = |to_q8: bool| -> Result<Block> {
                let lin = |t: &Tensor, b: Option<&Tensor>| -> Result<Linear> {
                    Ok(Linear {
                        w: matmul_weight(t, to_q8)?,
                        b: b.cloned(),
                    })
                };
                Ok(Block {
                    attn_norm: attn_norm.clone(),
                    qkv: lin(&qkv, qkv_bias.as_ref())?,
                    out: lin(&out, None)?,
                    ffn_norm: ffn_norm.clone(),
                    gate_up: lin(&gate_up, None)?,
                    down: lin(&down, None)?,
                })
            };
            if keep_f32 {
                scoring.push(make(false)?);
            }
            generation.push(make(true)?);
        }
        let head = |to_q8| -> Result<Linear> {
            Ok(Linear {
                w: matmul_weight(&head_f32, to_q8)?,
                b: None,
            })
        };
        let scoring = match keep_f32 {
            true => Some(Weights {
                blocks: scoring,
                head: head(false)?,
            }),
            false => None,
        };
        let generation = Weights {
            blocks: generation,
            head: head(true)?,
        };
        let rope_factors = match content.tensor_infos.contains_key("rope_freqs.weight") {
            true => Some(f32_of(&read("rope_freqs.weight")?)?.to_vec1::<f32>()?),
            false => None,
        };
        let (cos, sin) = rope_tables(&cfg, rope_factors.as_deref(), &device)?;
        Ok(Transformer {
            cfg,
            embed,
            final_norm,
            cos,
            sin,
            scoring,
            generation,
            device,
        })
    }
}

/// A weight for `x @ w^T`: 8-bit blocks where the row length allows, else f32.
fn matmul_weight(w: &Tensor, to_q8: bool) -> Result<QMatMul> {
    let k = w.dim(candle_core::D::Minus1)?;
    if to_q8 && k % GgmlDType::Q8_0.block_size() == 0 {
        let q = QTensor::quantize(&w.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
        return Ok(QMatMul::from_qtensor(q)?);
    }
    Ok(QMatMul::Tensor(w.to_dtype(DType::F32)?))
}

fn rope_tables(
    cfg: &ModelConfig,
    factors: Option<&[f32]>,
    device: &candle_core::Device,
) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| {
            let f = 1.0 / cfg.rope_base.powf(2.0 * i as f32 / cfg.head_dim as f32);
            f / factors.and_then(|fs| fs.get(i)).copied().unwrap_or(1.0)
        })
        .collect();
    let n = cfg.context_length;
    let mut angles = Vec::with_capacity(n * half);
    for pos in 0..n {
        angles.extend(inv_freq.iter().map(|f| pos as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (n, half), device)?;
    Ok((angles.cos()?, angles.sin()?))
}
