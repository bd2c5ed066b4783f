//! Shared by the integration tests: where the real model and the shared dev data live.
pub mod llama;
pub mod ner;
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

fn python() -> PathBuf {
    let python = std::env::var_os("WICK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/pyenv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh creates it with `datasets` and `spacy` installed",
        python.display()
    );
    python
}

fn check_export(args: &[String]) {
    let out = std::process::Command::new(python())
        .arg(root().join("scripts/check_export.py"))
        .args(args)
        .output()
        .expect("run check_export.py");
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Loads an export with Hugging Face `datasets` (scripts/check_export.py) and checks its shape
/// and row count; spacy rows are also made into spaCy Docs. The Python is `$WICK_PYTHON`, or the
/// venv scripts/test.sh makes.
pub fn loads_in_datasets(format: &str, file: &std::path::Path, rows: usize) {
    check_export(&[format.into(), file.display().to_string(), rows.to_string()]);
}

/// Loads a folder of split files with its README.md card as one dataset; `splits` is like
/// "train:3,validation:1".
pub fn loads_in_folder(dir: &std::path::Path, splits: &str) {
    check_export(&["folder".into(), dir.display().to_string(), splits.into()]);
}
