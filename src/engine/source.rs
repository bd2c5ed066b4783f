//! Where a `--model` comes from: a local `.gguf` path, or `hf:OWNER/REPO/FILE.gguf[@REVISION]`
//! looked up in the Hugging Face hub cache and downloaded only when missing and not offline.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

/// The bundled default model, fetched by `scripts/fetch-model.sh`.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

const HUB_PREFIX: &str = "hf:";
const DEFAULT_REVISION: &str = "main";

/// A parsed `--model` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A `.gguf` file on disk.
    Path(PathBuf),
    /// A file in a Hugging Face model repo at a branch, tag or commit.
    Hub {
        /// `OWNER/REPO`.
        repo: String,
        /// Path of the file inside the repo; may contain `/`.
        file: String,
        /// Branch, tag or commit hash (`main` unless given after `@`).
        revision: String,
    },
}

/// Why a model spec could not be turned into a local file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The spec is malformed.
    #[error("{0}")]
    BadSpec(String),
    /// A plain path that does not exist.
    #[error("model file {} not found{}", .path.display(), fetch_hint(.path))]
    NotFound { path: PathBuf },
    /// Offline and the file is not in the hub cache.
    #[error(
        "{file} of {repo} at revision {revision} is not in the Hugging Face cache {} \
         and HF_HUB_OFFLINE is set, so it was not downloaded",
        .cache.display()
    )]
    NotCached {
        repo: String,
        file: String,
        revision: String,
        cache: PathBuf,
    },
    /// The hub download failed.
    #[error("could not download {file} from {repo} at revision {revision}")]
    Download {
        repo: String,
        file: String,
        revision: String,
        #[source]
        source: ApiError,
    },
}

fn fetch_hint(path: &Path) -> &'static str {
    if path.file_name() == Path::new(DEFAULT_MODEL).file_name() {
        " (run scripts/fetch-model.sh to download the default model)"
    } else {
        ""
    }
}

impl FromStr for ModelSpec {
    type Err = SourceError;

    fn from_str(s: &str) -> Result<Self, SourceError> {
        let Some(rest) = s.strip_prefix(HUB_PREFIX) else {
            if s.is_empty() {
                return Err(SourceError::BadSpec("model spec is empty".into()));
            }
            return Ok(Self::Path(s.into()));
        };
        let bad = |why: &str| SourceError::BadSpec(format!("hf: spec {why}, got '{s}'"));
        let (path, revision) = rest.rsplit_once('@').unwrap_or((rest, DEFAULT_REVISION));
        let mut parts = path.splitn(3, '/');
        let (Some(owner), Some(name), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("needs OWNER/REPO/FILE"));
        };
        if !clean(owner) || !clean(name) || file.is_empty() {
            return Err(bad("needs OWNER/REPO/FILE"));
        }
        if !file.split('/').all(clean) {
            return Err(bad("has an empty, '.' or '..' segment in FILE"));
        }
        if !file.ends_with(".gguf") {
            return Err(bad("needs FILE to be a .gguf file"));
        }
        if !revision.split('/').all(clean) {
            return Err(bad("has an empty or invalid REVISION after '@'"));
        }
        Ok(Self::Hub {
            repo: format!("{owner}/{name}"),
            file: file.into(),
            revision: revision.into(),
        })
    }
}

/// A path segment that stays inside its folder.
fn clean(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".." && !segment.contains('\\')
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Hub {
                repo,
                file,
                revision,
            } => write!(f, "{HUB_PREFIX}{repo}/{file}@{revision}"),
        }
    }
}

impl ModelSpec {
    /// The local file for this spec: an existing path as is, or the hub cache entry,
    /// downloading it first unless `HF_HUB_OFFLINE` is set.
    pub fn resolve(&self) -> Result<PathBuf, SourceError> {
        match self {
            Self::Path(path) if path.exists() => Ok(path.clone()),
            Self::Path(path) => Err(SourceError::NotFound { path: path.clone() }),
            Self::Hub {
                repo,
                file,
                revision,
            } => resolve_hub(repo, file, revision),
        }
    }
}

/// Parses `spec` and resolves it to a local file.
pub fn resolve(spec: &str) -> Result<PathBuf, SourceError> {
    spec.parse::<ModelSpec>()?.resolve()
}

fn resolve_hub(repo_id: &str, file: &str, revision: &str) -> Result<PathBuf, SourceError> {
    let cache = hub_cache();
    let repo = Repo::with_revision(repo_id.into(), RepoType::Model, revision.into());
    if let Some(path) = cached(&cache, &repo, file) {
        return Ok(path);
    }
    let context = || (repo_id.to_owned(), file.to_owned(), revision.to_owned());
    if offline() {
        let (repo, file, revision) = context();
        return Err(SourceError::NotCached {
            repo,
            file,
            revision,
            cache: cache.path().clone(),
        });
    }
    // hf-hub reads the token only from `$HF_HOME/token`; honour `HF_TOKEN` too.
    let mut builder = ApiBuilder::from_env().with_cache_dir(cache.path().clone());
    if let Some(token) = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        builder = builder.with_token(Some(token));
    }
    builder
        .build()
        .and_then(|api| api.repo(repo).download(file))
        .map_err(|source| {
            let (repo, file, revision) = context();
            SourceError::Download {
                repo,
                file,
                revision,
                source,
            }
        })
}

/// The hub cache folder: `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
/// (hf-hub itself ignores `HF_HUB_CACHE`.)
fn hub_cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => Cache::new(dir.into()),
        _ => Cache::from_env(),
    }
}

/// `CacheRepo::get`, plus two cases it misses: a ref file ending in a newline, and a
/// revision that is itself a commit hash (`snapshots/HASH/` with no `refs/HASH`).
fn cached(cache: &Cache, repo: &Repo, file: &str) -> Option<PathBuf> {
    cache.repo(repo.clone()).get(file).or_else(|| {
        let dir = cache.path().join(repo.folder_name());
        let commit = std::fs::read_to_string(dir.join("refs").join(repo.revision()))
            .map_or_else(|_| repo.revision().to_owned(), |c| c.trim().to_owned());
        let path = dir.join("snapshots").join(commit).join(file);
        path.is_file().then_some(path)
    })
}

fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(repo: &str, file: &str, revision: &str) -> ModelSpec {
        ModelSpec::Hub {
            repo: repo.into(),
            file: file.into(),
            revision: revision.into(),
        }
    }

    fn bad_spec(spec: &str) -> String {
        match spec.parse::<ModelSpec>() {
            Err(SourceError::BadSpec(msg)) => msg,
            other => panic!("{spec}: expected BadSpec, got {other:?}"),
        }
    }

    #[test]
    fn parses_paths_and_hub_specs() {
        let parse = |s: &str| s.parse::<ModelSpec>().unwrap();
        assert_eq!(
            parse("models/x.gguf"),
            ModelSpec::Path("models/x.gguf".into())
        );
        assert_eq!(parse("hf:o/r/m.gguf"), hub("o/r", "m.gguf", "main"));
        assert_eq!(
            parse("hf:o/r/sub/dir/m.gguf@v1.0"),
            hub("o/r", "sub/dir/m.gguf", "v1.0")
        );
        assert_eq!(
            parse("hf:o/r/m.gguf@refs/pr/3"),
            hub("o/r", "m.gguf", "refs/pr/3")
        );
    }

    #[test]
    fn display_round_trips() {
        for s in ["hf:o/r/sub/m.gguf@main", "models/x.gguf"] {
            assert_eq!(s.parse::<ModelSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_hub_specs() {
        assert_eq!(
            bad_spec("hf:foo"),
            "hf: spec needs OWNER/REPO/FILE, got 'hf:foo'"
        );
        assert!(bad_spec("hf:o/r").contains("OWNER/REPO/FILE"));
        assert!(bad_spec("hf:o//m.gguf").contains("OWNER/REPO/FILE"));
        assert!(bad_spec("hf:o/r/").contains("OWNER/REPO/FILE"));
        assert!(bad_spec("hf:o/r/../../etc/m.gguf").contains("'..'"));
        assert!(bad_spec("hf:o/r/a//m.gguf").contains("segment"));
        assert!(bad_spec("hf:o/r/m.bin").contains(".gguf"));
        assert!(bad_spec("hf:o/r/m.gguf@").contains("REVISION"));
        assert!(bad_spec("hf:o/r/m.gguf@../x").contains("REVISION"));
        assert!(bad_spec("").contains("empty"));
    }

    #[test]
    fn missing_path_is_not_found_with_hint_for_default_model() {
        let err = resolve("/nonexistent/dir/SmolLM2-135M-Instruct.Q4_1.gguf").unwrap_err();
        assert!(matches!(err, SourceError::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/dir/SmolLM2-135M-Instruct.Q4_1.gguf"),
            "{msg}"
        );
        assert!(msg.contains("scripts/fetch-model.sh"), "{msg}");

        let msg = resolve("/nonexistent/other.gguf").unwrap_err().to_string();
        assert!(
            msg.contains("/nonexistent/other.gguf") && !msg.contains("fetch-model"),
            "{msg}"
        );
    }

    #[test]
    fn errors_are_send_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<SourceError>();
    }
}
