//! How a fitted learner is named and stored, whatever it predicts: a JSON header line (its
//! settings and figures, serialized without the models), then each softmax model in turn: its
//! input length (u32) and its weights and biases as little-endian f32.
use super::error::LearnError;
use super::logistic::Softmax;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A prefix of the sha256 of the header and the model's parameters.
pub fn hash(header: &impl Serialize, models: &[&Softmax]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(header).unwrap_or_default());
    for m in models {
        for v in m.weights.iter().chain(&m.bias) {
            h.update(v.to_le_bytes());
        }
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn to_bytes(header: &impl Serialize, models: &[&Softmax]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    for m in models {
        out.extend((m.dim as u32).to_le_bytes());
        for v in m.weights.iter().chain(&m.bias) {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// The header and the models of stored bytes; `classes` tells from the header how many
/// models there are and how many classes each has, so weights of the wrong size are refused.
pub fn from_bytes<H: DeserializeOwned>(
    bytes: &[u8],
    classes: impl Fn(&H) -> Vec<usize>,
) -> Result<(H, Vec<Softmax>), LearnError> {
    let corrupt = |m: &str| LearnError::Corrupt(m.to_string());
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header"))?;
    let header: H =
        serde_json::from_slice(&bytes[..split]).map_err(|e| LearnError::Corrupt(e.to_string()))?;
    let mut rest = &bytes[split + 1..];
    let mut models = Vec::new();
    for k in classes(&header) {
        let (dim, tail) = rest
            .split_at_checked(4)
            .ok_or_else(|| corrupt("no weights"))?;
        let dim = u32::from_le_bytes(dim.try_into().map_err(|_| corrupt("dimension"))?) as usize;
        let (floats, tail) = tail
            .split_at_checked(4 * k * (dim + 1))
            .ok_or_else(|| corrupt("weights of the wrong size"))?;
        let values: Vec<f32> = floats
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (w, b) = values.split_at(k * dim);
        models.push(Softmax {
            classes: k,
            dim,
            weights: w.to_vec(),
            bias: b.to_vec(),
        });
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(corrupt("weights of the wrong size"));
    }
    Ok((header, models))
}
