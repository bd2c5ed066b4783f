//! `--model hf:...` resolution against a hand-built Hugging Face cache; never touches the network.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use wick::engine::source::{resolve, ModelSpec, SourceError};

const REPO: &str = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const MAIN_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const V1_COMMIT: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(FILE);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model.sh",
        path.display()
    );
    path
}

fn head(path: &Path) -> Vec<u8> {
    let mut buf = Vec::new();
    fs::File::open(path)
        .unwrap()
        .take(1024)
        .read_to_end(&mut buf)
        .unwrap();
    buf
}

/// Writes `hub/models--OWNER--REPO/refs/REF` = `commit` (when `git_ref` is given) and
/// `snapshots/COMMIT/FILE` pointing at `target`, the layout hf-hub reads.
fn add_snapshot(
    hub: &Path,
    git_ref: Option<&str>,
    commit: &str,
    file: &str,
    target: &Path,
) -> PathBuf {
    let repo_dir = hub.join(format!("models--{}", REPO.replace('/', "--")));
    if let Some(git_ref) = git_ref {
        let ref_path = repo_dir.join("refs").join(git_ref);
        fs::create_dir_all(ref_path.parent().unwrap()).unwrap();
        fs::write(&ref_path, commit).unwrap();
    }
    let snapshot = repo_dir.join("snapshots").join(commit).join(file);
    fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
    if !snapshot.exists() {
        link(target, &snapshot);
    }
    snapshot
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    fs::copy(target, at).unwrap();
}

fn hub_spec(file_and_rev: &str) -> String {
    format!("hf:{REPO}/{file_and_rev}")
}

/// Every case that sets env vars lives here: they are process-global.
#[test]
fn resolves_hub_specs_from_local_cache() {
    let model = model();
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join("hub");
    std::env::set_var("HF_HOME", home.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::remove_var("HF_HUB_CACHE");

    let main = add_snapshot(&hub, Some("main"), MAIN_COMMIT, FILE, &model);
    let nested = add_snapshot(&hub, None, MAIN_COMMIT, &format!("q4/{FILE}"), &model);
    let v1 = add_snapshot(&hub, Some("v1"), V1_COMMIT, FILE, &model);
    fs::write(
        hub.join(format!("models--{}/refs/newline", REPO.replace('/', "--"))),
        format!("{MAIN_COMMIT}\n"),
    )
    .unwrap();

    // Default revision `main`, the file's bytes are the model's.
    let got = resolve(&hub_spec(FILE)).unwrap();
    assert_eq!(got, main);
    assert_eq!(head(&got), head(&model));
    assert_eq!(
        hub_spec(FILE)
            .parse::<ModelSpec>()
            .unwrap()
            .resolve()
            .unwrap(),
        main
    );

    // Explicit revisions: another ref, a bare commit hash, a ref file ending in a newline.
    assert_eq!(resolve(&hub_spec(&format!("{FILE}@v1"))).unwrap(), v1);
    assert_eq!(
        resolve(&hub_spec(&format!("{FILE}@{V1_COMMIT}"))).unwrap(),
        v1
    );
    assert_eq!(
        resolve(&hub_spec(&format!("{FILE}@newline"))).unwrap(),
        main
    );

    // FILE in a subfolder of the repo.
    assert_eq!(resolve(&hub_spec(&format!("q4/{FILE}"))).unwrap(), nested);

    // Not cached while offline: names repo, file, revision and the cache folder.
    match resolve(&hub_spec("missing.Q8_0.gguf@v1")) {
        Err(err @ SourceError::NotCached { .. }) => {
            let msg = err.to_string();
            for part in [REPO, "missing.Q8_0.gguf", "v1", hub.to_str().unwrap()] {
                assert!(msg.contains(part), "{msg:?} does not name {part:?}");
            }
        }
        other => panic!("expected NotCached, got {other:?}"),
    }
    assert!(matches!(
        resolve(&hub_spec(&format!("{FILE}@nope"))),
        Err(SourceError::NotCached { .. })
    ));

    // `HF_HUB_CACHE` wins over `HF_HOME`.
    std::env::set_var("HF_HOME", home.path().join("elsewhere"));
    std::env::set_var("HF_HUB_CACHE", &hub);
    assert_eq!(resolve(&hub_spec(FILE)).unwrap(), main);
    std::env::remove_var("HF_HUB_CACHE");
    assert!(matches!(
        resolve(&hub_spec(FILE)),
        Err(SourceError::NotCached { .. })
    ));

    // Malformed spec.
    match resolve("hf:onlyowner") {
        Err(err @ SourceError::BadSpec(_)) => {
            assert!(err.to_string().contains("OWNER/REPO/FILE"), "{err}")
        }
        other => panic!("expected BadSpec, got {other:?}"),
    }

    // Plain paths: an existing one is returned as is, a missing one is NotFound.
    assert_eq!(resolve(model.to_str().unwrap()).unwrap(), model);
    let missing = home.path().join("nope.gguf");
    match resolve(missing.to_str().unwrap()) {
        Err(err @ SourceError::NotFound { .. }) => {
            assert!(err.to_string().contains(missing.to_str().unwrap()), "{err}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
