//! `--model openai:BASE_URL#MODEL`: where the server is and which of its models to ask.
use super::RemoteError;
use std::str::FromStr;

pub const PREFIX: &str = "openai:";

/// A parsed remote model spec. The API key never appears here: it comes from
/// `WICK_OPENAI_API_KEY`, so that it does not show up in `ps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http(s)://host:port`, without a trailing `/` or `/v1`.
    pub base: String,
    /// The model name the server knows (`MODEL` after `#`; empty when the server has one).
    pub model: String,
}

impl Endpoint {
    /// Whether a `--model` value names a remote server rather than a file.
    pub fn is_remote(spec: &str) -> bool {
        spec.starts_with(PREFIX)
    }
}

impl FromStr for Endpoint {
    type Err = RemoteError;

    fn from_str(spec: &str) -> Result<Self, RemoteError> {
        let bad = |why: &str| {
            RemoteError::BadEndpoint(format!(
                "--model {spec:?}: {why} (expected openai:http://HOST:PORT#MODEL)"
            ))
        };
        let rest = spec
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("no openai: prefix"))?;
        let (url, model) = rest.split_once('#').unwrap_or((rest, ""));
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad("the address must start with http:// or https://"));
        }
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        if base.split("://").nth(1).is_none_or(str::is_empty) {
            return Err(bad("the address has no host"));
        }
        Ok(Endpoint {
            base: base.to_string(),
            model: model.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_or_without_v1_and_model() {
        let e: Endpoint = "openai:http://127.0.0.1:8080/v1/#smol".parse().unwrap();
        assert_eq!(
            e,
            Endpoint {
                base: "http://127.0.0.1:8080".into(),
                model: "smol".into()
            }
        );
        let e: Endpoint = "openai:https://gpu.example:8000".parse().unwrap();
        assert_eq!(
            (e.base.as_str(), e.model.as_str()),
            ("https://gpu.example:8000", "")
        );
        for bad in ["openai:127.0.0.1:8080", "openai:http://", "models/x.gguf"] {
            let err = bad.parse::<Endpoint>().unwrap_err().to_string();
            assert!(err.contains("expected openai:http://"), "{bad}: {err}");
        }
        assert!(Endpoint::is_remote("openai:http://x") && !Endpoint::is_remote("hf:a/b/c.gguf"));
    }
}
