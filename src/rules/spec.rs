//! A rule as a team writes it (`RuleSpec`, the JSON of the API, the CLI's RULES.json and the
//! store) and the checks that make it a `Rule`: a known label, a usable name, terms that are
//! not empty, a pattern that parses and stays small once compiled.
use crate::domain::{Invalid, TaskKind};
use serde::{Deserialize, Serialize};

pub const MAX_NAME_CHARS: usize = 60;
pub const MAX_TERMS: usize = 100_000;
pub const MAX_EXAMPLES: usize = 100;
/// Compiled size a pattern may reach: the `regex` crate never backtracks, so time is linear in
/// the text, and this bounds the memory (and build time) of a pattern like `(a{100}){100}`.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What a rule matches. `lookup` is a keyword list that came from an uploaded file: it is sent
/// as the file's text (`file`) and kept as the terms read from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Matcher {
    Keywords {
        terms: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
        #[serde(default = "yes")]
        whole_word: bool,
    },
    Regex {
        pattern: String,
        #[serde(default)]
        case_sensitive: bool,
    },
    Lookup {
        #[serde(default)]
        file_name: String,
        #[serde(default)]
        terms: Vec<String>,
        /// The uploaded file's text; read into `terms` by `RuleSpec::validated`.
        #[serde(default, skip_serializing)]
        file: Option<String>,
        #[serde(default)]
        case_sensitive: bool,
        #[serde(default = "yes")]
        whole_word: bool,
    },
    /// Items whose embedding is within `threshold` cosine of any of these items (by id).
    Similar {
        examples: Vec<String>,
        threshold: f32,
    },
}

fn yes() -> bool {
    true
}

impl Matcher {
    pub fn kind(&self) -> &'static str {
        match self {
            Matcher::Keywords { .. } => "keywords",
            Matcher::Regex { .. } => "regex",
            Matcher::Lookup { .. } => "lookup",
            Matcher::Similar { .. } => "similar",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    /// The label it votes (classification) or the entity type of its spans (NER).
    pub label: String,
    #[serde(flatten)]
    pub matcher: Matcher,
}

/// A rule that passed `RuleSpec::validated`: its label is in the project's set, its terms are
/// usable and its pattern compiles within the limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule(RuleSpec);

impl Rule {
    pub fn spec(&self) -> &RuleSpec {
        &self.0
    }
    pub fn name(&self) -> &str {
        &self.0.name
    }
    pub fn label(&self) -> &str {
        &self.0.label
    }
    pub fn matcher(&self) -> &Matcher {
        &self.0.matcher
    }
}

impl RuleSpec {
    /// Checks the rule against a project's task and label set.
    pub fn validated(mut self, task: TaskKind, labels: &[String]) -> Result<Rule, Invalid> {
        self.name = self.name.trim().to_string();
        check_name(&self.name)?;
        if !matches!(task, TaskKind::Classification | TaskKind::Ner) {
            return Err(Invalid::new(
                "project",
                "rules label classification and NER projects",
            ));
        }
        if !labels.contains(&self.label) {
            return Err(Invalid::new(
                "label",
                format!(
                    "{:?} is not one of the project's labels ({})",
                    self.label,
                    labels.join(", ")
                ),
            ));
        }
        match &mut self.matcher {
            Matcher::Keywords { terms, .. } => *terms = check_terms("terms", terms)?,
            Matcher::Lookup {
                terms,
                file,
                file_name,
                ..
            } => {
                if let Some(text) = file.take() {
                    *terms = super::lookup::parse(&text)?;
                }
                *terms = check_terms("file", terms)?;
                *file_name = file_name.trim().to_string();
            }
            Matcher::Regex {
                pattern,
                case_sensitive,
            } => {
                check_pattern(pattern)?;
                compile_one(pattern, *case_sensitive)?;
            }
            Matcher::Similar {
                examples,
                threshold,
            } => {
                if task == TaskKind::Ner {
                    return Err(Invalid::new(
                        "kind",
                        "an NER rule proposes spans: use keywords, a lookup list or a regex",
                    ));
                }
                examples.retain(|e| !e.trim().is_empty());
                if examples.is_empty() || examples.len() > MAX_EXAMPLES {
                    return Err(Invalid::new(
                        "examples",
                        format!("give 1 to {MAX_EXAMPLES} item ids"),
                    ));
                }
                if !(threshold.is_finite() && *threshold > 0.0 && *threshold <= 1.0) {
                    return Err(Invalid::new("threshold", "a cosine above 0, at most 1"));
                }
            }
        }
        Ok(Rule(self))
    }
}

fn check_name(name: &str) -> Result<(), Invalid> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(ok_char) {
        return Err(Invalid::new(
            "name",
            format!("1 to {MAX_NAME_CHARS} letters, digits, '_', '-' or '.'"),
        ));
    }
    Ok(())
}

/// The terms trimmed, blanks and repeats dropped; an empty list is refused.
fn check_terms(field: &str, terms: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for (i, t) in terms.iter().enumerate() {
        let t = t.trim();
        if t.chars().count() > super::lookup::MAX_TERM_CHARS {
            return Err(Invalid::new(
                field,
                format!(
                    "term {} is longer than {} characters",
                    i + 1,
                    super::lookup::MAX_TERM_CHARS
                ),
            ));
        }
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    if out.is_empty() {
        return Err(Invalid::new(field, "give at least one term"));
    }
    if out.len() > MAX_TERMS {
        return Err(Invalid::new(field, format!("at most {MAX_TERMS} terms")));
    }
    Ok(out)
}

/// Parses the pattern on its own first, so the error names the position in the user's text
/// (the compiled set would report it against the combined patterns).
fn check_pattern(pattern: &str) -> Result<(), Invalid> {
    if pattern.is_empty() {
        return Err(Invalid::new(
            "pattern",
            "an empty pattern matches everything",
        ));
    }
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        let at = pattern[..e.span().start.offset].chars().count() + 1;
        return Err(Invalid::new(
            "pattern",
            format!("at character {at}: {}", e.kind()),
        ));
    }
    Ok(())
}

/// The pattern as the set compiles it: Unicode-aware, case-folded unless asked otherwise.
pub(crate) fn pattern_source(pattern: &str, case_sensitive: bool) -> String {
    if case_sensitive {
        pattern.to_string()
    } else {
        format!("(?i:{pattern})")
    }
}

pub(crate) fn compile_one(pattern: &str, case_sensitive: bool) -> Result<regex::Regex, Invalid> {
    regex::RegexBuilder::new(&pattern_source(pattern, case_sensitive))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => Invalid::new(
                "pattern",
                format!(
                    "compiles to more than {} kB; repeat less (e.g. {{1000}}) or split it",
                    REGEX_SIZE_LIMIT >> 10
                ),
            ),
            // The AST parse passed, so this is a later check (e.g. an unknown Unicode class).
            e => Invalid::new(
                "pattern",
                e.to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["refund".into(), "card".into()]
    }

    fn spec(json: serde_json::Value) -> RuleSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn keywords_are_trimmed_and_deduplicated() {
        let r = spec(
            serde_json::json!({"name": " refund_kw ", "label": "refund", "kind": "keywords",
            "terms": [" refund", "money back", "refund", ""]}),
        )
        .validated(TaskKind::Classification, &labels())
        .unwrap();
        assert_eq!(r.name(), "refund_kw");
        let Matcher::Keywords {
            terms,
            whole_word,
            case_sensitive,
        } = r.matcher()
        else {
            panic!("kind changed")
        };
        assert_eq!(terms, &["refund", "money back"]);
        assert!(
            *whole_word && !*case_sensitive,
            "defaults: whole words, any case"
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        let check = |json: serde_json::Value| {
            spec(json)
                .validated(TaskKind::Classification, &labels())
                .unwrap_err()
        };
        let e = check(
            serde_json::json!({"name": "r", "label": "nope", "kind": "keywords", "terms": ["x"]}),
        );
        assert_eq!(e.field, "label");
        assert!(e.message.contains("\"nope\" is not one of"), "{e}");
        let e = check(
            serde_json::json!({"name": "r", "label": "card", "kind": "keywords", "terms": [" "]}),
        );
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("terms", "give at least one term")
        );
        let e = check(
            serde_json::json!({"name": "a b", "label": "card", "kind": "regex", "pattern": "x"}),
        );
        assert_eq!(e.field, "name");
        let e = check(
            serde_json::json!({"name": "r", "label": "card", "kind": "regex", "pattern": ""}),
        );
        assert_eq!(e.field, "pattern");
        let e = check(
            serde_json::json!({"name": "r", "label": "card", "kind": "similar", "examples": ["1"], "threshold": 1.5}),
        );
        assert_eq!(e.field, "threshold");
        let e = check(
            serde_json::json!({"name": "r", "label": "card", "kind": "lookup", "file": "ok\nbad\tline\n"}),
        );
        assert_eq!(
            e.to_string(),
            "file: line 2: holds a tab or control character (one term per line)"
        );
    }

    #[test]
    fn a_bad_pattern_is_refused_with_the_parsers_message_and_position() {
        let e = spec(serde_json::json!({"name": "r", "label": "card", "kind": "regex", "pattern": "card (arriv"}))
            .validated(TaskKind::Classification, &labels())
            .unwrap_err();
        assert_eq!(e.field, "pattern");
        assert_eq!(e.message, "at character 6: unclosed group");
        let e = spec(
            serde_json::json!({"name": "r", "label": "card", "kind": "regex", "pattern": "é[z-a]"}),
        )
        .validated(TaskKind::Classification, &labels())
        .unwrap_err();
        assert!(
            e.message
                .starts_with("at character 3: invalid character class range"),
            "{e}"
        );
    }

    #[test]
    fn a_catastrophic_pattern_is_bounded() {
        let e = spec(serde_json::json!({"name": "r", "label": "card", "kind": "regex", "pattern": "(\\w{100}){100}"}))
            .validated(TaskKind::Classification, &labels())
            .unwrap_err();
        assert_eq!(e.field, "pattern");
        assert!(
            e.message.starts_with("compiles to more than 1024 kB"),
            "{e}"
        );
    }

    #[test]
    fn lookup_files_become_terms_and_ner_has_no_similarity_rules() {
        let r = spec(
            serde_json::json!({"name": "cities", "label": "card", "kind": "lookup",
            "file_name": "cities.txt", "file": "# c\nLondon\nParis\n"}),
        )
        .validated(TaskKind::Ner, &labels())
        .unwrap();
        let stored = serde_json::to_value(r.spec()).unwrap();
        assert_eq!(stored["terms"], serde_json::json!(["London", "Paris"]));
        assert!(stored.get("file").is_none(), "the upload is not kept twice");
        let e = spec(serde_json::json!({"name": "s", "label": "card", "kind": "similar", "examples": ["1"], "threshold": 0.9}))
            .validated(TaskKind::Ner, &labels())
            .unwrap_err();
        assert_eq!(e.field, "kind");
    }
}
