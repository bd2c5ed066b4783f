//! How a fitted learner is named and stored, whatever it predicts: a JSON header line (its
//! settings and figures, serialized without the model), then the softmax model's input length
//! (u32) and its weights and biases as little-endian f32.
use super::learner::LearnError;
use super::logistic::Softmax;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A prefix of the sha256 of the header and the model's parameters.
pub fn hash(header: &impl Serialize, model: Option<&Softmax>) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(header).unwrap_or_default());
    if let Some(m) = model {
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

pub fn to_bytes(header: &impl Serialize, model: Option<&Softmax>) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    if let Some(m) = model {
        out.extend((m.dim as u32).to_le_bytes());
        for v in m.weights.iter().chain(&m.bias) {
            out.extend(v.to_le_bytes());
        }
    }
    out
}

/// The header and the model of stored bytes; `classes` tells from the header how many classes
/// the model has, so weights of the wrong size are refused.
pub fn from_bytes<H: DeserializeOwned>(
    bytes: &[u8],
    classes: impl Fn(&H) -> usize,
) -> Result<(H, Softmax), LearnError> {
    let corrupt = |m: &str| LearnError::Corrupt(m.to_string());
    let split = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header"))?;
    let header: H =
        serde_json::from_slice(&bytes[..split]).map_err(|e| LearnError::Corrupt(e.to_string()))?;
    let (dim, floats) = bytes[split + 1..]
        .split_at_checked(4)
        .ok_or_else(|| corrupt("no weights"))?;
    let dim = u32::from_le_bytes(dim.try_into().map_err(|_| corrupt("dimension"))?) as usize;
    let k = classes(&header);
    if floats.len() != 4 * k * (dim + 1) {
        return Err(corrupt("weights of the wrong size"));
    }
    let values: Vec<f32> = floats
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let (w, b) = values.split_at(k * dim);
    let model = Softmax {
        classes: k,
        dim,
        weights: w.to_vec(),
        bias: b.to_vec(),
    };
    Ok((header, model))
}
