//! Shared by the integration tests: where the real model and the shared dev data live.
#![allow(dead_code)]
pub mod browser;
pub mod server;

use std::path::PathBuf;
use std::sync::OnceLock;
use wick::engine::{LoadOptions, LoadedModel};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The embedded default model; the test command runs scripts/fetch-model.sh first.
pub fn model_path() -> PathBuf {
    let p = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        p.exists(),
        "{} is missing: run scripts/fetch-model.sh",
        p.display()
    );
    p
}

/// `../shared/data/NAME`, or `$WICK_SHARED_DATA/NAME`.
pub fn shared_data(name: &str) -> PathBuf {
    let dir = std::env::var_os("WICK_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data"));
    let p = dir.join(name);
    assert!(p.exists(), "shared dev data {} is missing", p.display());
    p
}

/// One loaded model per test binary: loading re-quantizes weights and takes a second or two.
pub fn model() -> &'static LoadedModel {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        wick::engine::configure_threads(Some(2));
        LoadedModel::load(&model_path(), &LoadOptions::default()).expect("load the embedded model")
    })
}
