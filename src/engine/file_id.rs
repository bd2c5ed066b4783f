//! A weight file's id for the predictions it makes: its name and a prefix of its sha256.
use super::{EngineError, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// `NAME@sha256[..12]`: hashing the whole file once at load makes two files with the same
/// name (a re-quantized model, say) never pass for each other.
pub(super) fn model_id(path: &Path) -> Result<String> {
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(format!("{name}@{}", sha256_prefix(path)?))
}

/// The first 12 hex digits of a file's sha256.
pub(super) fn sha256_prefix(path: &Path) -> Result<String> {
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(6).map(|b| format!("{b:02x}")).collect())
}
