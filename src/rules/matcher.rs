//! A project's rules compiled once for matching many items: every keyword and lookup term of
//! every rule in one Aho–Corasick automaton per case mode, every pattern compiled alone, and
//! the example vectors of the similarity rules. Offsets are Unicode scalar values.
//!
//! Patterns are asked one by one rather than through one `RegexSet`: a set must find every
//! pattern that matches (no early stop, no per-pattern literal prefilter), and with Unicode
//! `\b` its lazy DFA gives up on non-ASCII text and falls back to the PikeVM. On the bench's
//! 15 patterns that made 2.5 µs per ASCII text and 36 µs per non-ASCII one, against 1.4 and
//! 4.0 µs one by one (BENCHMARKS.md, "Labeling functions: applying rules").
use super::spec::{compile_one, Matcher, Rule};
use crate::domain::Invalid;
use aho_corasick::AhoCorasick;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// One automaton over the terms of several rules.
struct Terms {
    automaton: AhoCorasick,
    /// Per pattern: the rule it belongs to and whether it must match whole words.
    owner: Vec<(usize, bool)>,
    /// Patterns and texts are case-folded char by char first.
    folded: bool,
}

/// A pattern and its rule.
struct Pattern {
    rule: usize,
    regex: regex::Regex,
}

struct Similar {
    rule: usize,
    examples: Vec<Vec<f32>>,
    threshold: f32,
}

pub struct RuleSet {
    rules: Vec<Rule>,
    /// Each rule's label, as an index into the project's label set.
    label_of: Vec<usize>,
    terms: Vec<Terms>,
    patterns: Vec<Pattern>,
    similar: Vec<Similar>,
    hash: String,
}

/// A span a rule proposes (NER): `[start, end)` in Unicode scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanMatch {
    pub rule: usize,
    pub start: usize,
    pub end: usize,
}

/// Reusable buffers for matching, one per thread.
#[derive(Default)]
pub struct Scratch {
    folded: String,
    fired: Vec<bool>,
}

impl RuleSet {
    /// Compiles `rules` (labels indexed into `labels`). `examples` holds the stored embedding of
    /// each item a similarity rule names, by item id.
    pub fn compile(
        rules: Vec<Rule>,
        labels: &[String],
        examples: &HashMap<String, Vec<f32>>,
    ) -> Result<RuleSet, Invalid> {
        let mut label_of = Vec::with_capacity(rules.len());
        for r in &rules {
            let i = labels.iter().position(|l| l == r.label()).ok_or_else(|| {
                Invalid::new(
                    "label",
                    format!(
                        "rule {}: {:?} is not a label of the project",
                        r.name(),
                        r.label()
                    ),
                )
            })?;
            label_of.push(i);
        }
        let mut exact: (Vec<String>, Vec<(usize, bool)>) = Default::default();
        let mut folded: (Vec<String>, Vec<(usize, bool)>) = Default::default();
        let mut patterns: Vec<(usize, String, bool)> = Vec::new();
        let mut similar = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            match r.matcher() {
                Matcher::Keywords {
                    terms,
                    case_sensitive,
                    whole_word,
                }
                | Matcher::Lookup {
                    terms,
                    case_sensitive,
                    whole_word,
                    ..
                } => {
                    let into = if *case_sensitive {
                        &mut exact
                    } else {
                        &mut folded
                    };
                    for t in terms {
                        let t = if *case_sensitive { t.clone() } else { fold(t) };
                        into.0.push(t);
                        into.1.push((i, *whole_word));
                    }
                }
                Matcher::Regex {
                    pattern,
                    case_sensitive,
                } => patterns.push((i, pattern.clone(), *case_sensitive)),
                Matcher::Similar {
                    examples: ids,
                    threshold,
                } => {
                    let vectors = ids
                        .iter()
                        .map(|id| {
                            examples.get(id).cloned().ok_or_else(|| {
                                Invalid::new(
                                    "examples",
                                    format!(
                                        "rule {}: item {id:?} is not in the project or has no embedding yet (pre-label or retrain first)",
                                        r.name()
                                    ),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    similar.push(Similar {
                        rule: i,
                        examples: vectors,
                        threshold: *threshold,
                    });
                }
            }
        }
        let mut terms = Vec::new();
        for ((patterns, owner), is_folded) in [(exact, false), (folded, true)] {
            if patterns.is_empty() {
                continue;
            }
            let automaton = AhoCorasick::new(&patterns)
                .map_err(|e| Invalid::new("terms", format!("cannot build the matcher: {e}")))?;
            terms.push(Terms {
                automaton,
                owner,
                folded: is_folded,
            });
        }
        let patterns = patterns
            .iter()
            .map(|(rule, p, cs)| {
                Ok(Pattern {
                    rule: *rule,
                    regex: compile_one(p, *cs)?,
                })
            })
            .collect::<Result<_, Invalid>>()?;
        let hash = hash_of(&rules);
        Ok(RuleSet {
            rules,
            label_of,
            terms,
            patterns,
            similar,
            hash,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The label index rule `rule` votes.
    pub fn label_of(&self, rule: usize) -> usize {
        self.label_of[rule]
    }

    /// Names the rule set's content: the sorted rules' JSON, hashed (12 hex digits).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether any rule needs the item's embedding.
    pub fn needs_embeddings(&self) -> bool {
        !self.similar.is_empty()
    }

    /// The rules that fire on an item, in rule order (each once), into `out`. `embedding` is
    /// the item's stored one; without it, similarity rules abstain.
    pub fn fired(
        &self,
        text: &str,
        embedding: Option<&[f32]>,
        scratch: &mut Scratch,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        scratch.fired.clear();
        scratch.fired.resize(self.rules.len(), false);
        for t in &self.terms {
            let hay = haystack(t, text, &mut scratch.folded);
            for m in t.automaton.find_overlapping_iter(hay) {
                let (rule, whole) = t.owner[m.pattern().as_usize()];
                if !scratch.fired[rule] && (!whole || at_word_edges(hay, m.start(), m.end())) {
                    scratch.fired[rule] = true;
                }
            }
        }
        for p in &self.patterns {
            if !scratch.fired[p.rule] && p.regex.is_match(text) {
                scratch.fired[p.rule] = true;
            }
        }
        if let Some(e) = embedding {
            for s in &self.similar {
                if s.examples.iter().any(|x| dot(x, e) >= s.threshold) {
                    scratch.fired[s.rule] = true;
                }
            }
        }
        out.extend(
            scratch
                .fired
                .iter()
                .enumerate()
                .filter(|(_, &f)| f)
                .map(|(i, _)| i),
        );
    }

    /// Every span a rule proposes in `text` (NER), in text order; overlapping proposals are
    /// all kept, for the caller to resolve.
    pub fn spans(&self, text: &str, scratch: &mut Scratch) -> Vec<SpanMatch> {
        let mut out = Vec::new();
        for t in &self.terms {
            let hay = haystack(t, text, &mut scratch.folded);
            let chars = CharIndex::new(hay);
            for m in t.automaton.find_overlapping_iter(hay) {
                let (rule, whole) = t.owner[m.pattern().as_usize()];
                if !whole || at_word_edges(hay, m.start(), m.end()) {
                    out.push(SpanMatch {
                        rule,
                        start: chars.of(m.start()),
                        end: chars.of(m.end()),
                    });
                }
            }
        }
        if !self.patterns.is_empty() {
            let chars = CharIndex::new(text);
            for p in &self.patterns {
                for m in p.regex.find_iter(text).filter(|m| !m.is_empty()) {
                    out.push(SpanMatch {
                        rule: p.rule,
                        start: chars.of(m.start()),
                        end: chars.of(m.end()),
                    });
                }
            }
        }
        out.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end), s.rule));
        out.dedup();
        out
    }
}

fn haystack<'a>(t: &Terms, text: &'a str, buf: &'a mut String) -> &'a str {
    if t.folded {
        fold_into(text, buf);
        buf.as_str()
    } else {
        text
    }
}

/// Lower case, one char for one char (a char whose lower case is several chars stays as it
/// is), so a match's char offsets in the folded text are its offsets in the original.
pub fn fold(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    fold_into(text, &mut s);
    s
}

fn fold_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        out.push_str(text);
        out.make_ascii_lowercase();
        return;
    }
    for c in text.chars() {
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => out.push(l),
            _ => out.push(c),
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A term that begins (ends) with a word character must not continue a word there: "card"
/// does not match inside "discard", while "@user" or "$5" need no edge on their symbol side.
fn at_word_edges(hay: &str, start: usize, end: usize) -> bool {
    let m = &hay[start..end];
    let left = match (m.chars().next(), hay[..start].chars().next_back()) {
        (Some(first), Some(before)) => !(is_word(first) && is_word(before)),
        _ => true,
    };
    let right = match (m.chars().next_back(), hay[end..].chars().next()) {
        (Some(last), Some(after)) => !(is_word(last) && is_word(after)),
        _ => true,
    };
    left && right
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Byte offset to char offset, for a text's match ends.
struct CharIndex {
    /// The byte offset where each char starts, plus the text's length.
    starts: Vec<usize>,
}

impl CharIndex {
    fn new(text: &str) -> Self {
        let mut starts: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        starts.push(text.len());
        CharIndex { starts }
    }

    fn of(&self, byte: usize) -> usize {
        self.starts.partition_point(|&b| b < byte)
    }
}

fn hash_of(rules: &[Rule]) -> String {
    let mut specs: Vec<String> = rules
        .iter()
        .map(|r| serde_json::to_string(r.spec()).unwrap_or_default())
        .collect();
    specs.sort();
    let digest = Sha256::digest(specs.join("\n").as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TaskKind;
    use crate::rules::RuleSpec;

    fn labels() -> Vec<String> {
        ["refund", "card", "LOC", "other"]
            .map(String::from)
            .to_vec()
    }

    fn set(rules: serde_json::Value, task: TaskKind) -> RuleSet {
        let specs: Vec<RuleSpec> = serde_json::from_value(rules).unwrap();
        let rules = specs
            .into_iter()
            .map(|s| s.validated(task, &labels()).unwrap())
            .collect();
        let examples = HashMap::from([
            ("e1".to_string(), vec![1.0, 0.0]),
            ("e2".to_string(), vec![0.0, 1.0]),
        ]);
        RuleSet::compile(rules, &labels(), &examples).unwrap()
    }

    fn fired(set: &RuleSet, text: &str, embedding: Option<&[f32]>) -> Vec<usize> {
        let mut out = Vec::new();
        set.fired(text, embedding, &mut Scratch::default(), &mut out);
        out
    }

    #[test]
    fn keywords_respect_case_and_word_edges() {
        let s = set(
            serde_json::json!([
                {"name": "refund", "label": "refund", "kind": "keywords", "terms": ["refund", "money back"]},
                {"name": "Card", "label": "card", "kind": "keywords", "terms": ["Card"], "case_sensitive": true},
                {"name": "part", "label": "other", "kind": "keywords", "terms": ["fund"], "whole_word": false},
                {"name": "at", "label": "other", "kind": "keywords", "terms": ["@bank"]}
            ]),
            TaskKind::Classification,
        );
        assert_eq!(fired(&s, "I want a REFUND now", None), [0, 2]);
        assert_eq!(fired(&s, "refunded? give my Money Back", None), [0, 2]);
        assert_eq!(fired(&s, "refunded", None), [2], "whole words only");
        assert_eq!(fired(&s, "my card, my Card!", None), [1]);
        assert_eq!(fired(&s, "my card", None), Vec::<usize>::new());
        assert_eq!(
            fired(&s, "ask@bank today", None),
            [3],
            "no edge needed on the symbol side"
        );
    }

    #[test]
    fn folding_keeps_char_offsets_outside_ascii() {
        let s = set(
            serde_json::json!([{"name": "city", "label": "LOC", "kind": "keywords", "terms": ["köln", "İzmir"]}]),
            TaskKind::Ner,
        );
        // 'İ' lowercases to two chars, so it is kept as it is and offsets stay aligned.
        let text = "Von KÖLN nach İzmir";
        let spans = s.spans(text, &mut Scratch::default());
        let got: Vec<String> = spans
            .iter()
            .map(|m| text.chars().skip(m.start).take(m.end - m.start).collect())
            .collect();
        assert_eq!(got, ["KÖLN", "İzmir"]);
    }

    #[test]
    fn patterns_and_similar_items_fire() {
        let s = set(
            serde_json::json!([
                {"name": "arrive", "label": "card", "kind": "regex", "pattern": r"\bcard\b.*\barriv"},
                {"name": "CAPS", "label": "other", "kind": "regex", "pattern": "[A-Z]{4,}", "case_sensitive": true},
                {"name": "like", "label": "refund", "kind": "similar", "examples": ["e1"], "threshold": 0.9}
            ]),
            TaskKind::Classification,
        );
        assert_eq!(fired(&s, "When will my Card ARRIVE", None), [0, 1]);
        assert_eq!(
            fired(&s, "when will my card arrive", Some(&[0.95, 0.31])),
            [0, 2]
        );
        assert_eq!(
            fired(&s, "nothing", Some(&[0.5, 0.86])),
            Vec::<usize>::new()
        );
        assert_eq!(s.label_of(2), 0);
    }

    #[test]
    fn spans_carry_char_offsets_from_terms_and_patterns() {
        let s = set(
            serde_json::json!([
                {"name": "cities", "label": "LOC", "kind": "lookup", "file": "New York\nYork\n"},
                {"name": "tags", "label": "other", "kind": "regex", "pattern": r"#\w+"}
            ]),
            TaskKind::Ner,
        );
        let text = "Ünï in new york #travel";
        let spans = s.spans(text, &mut Scratch::default());
        assert_eq!(
            spans,
            [
                SpanMatch {
                    rule: 0,
                    start: 7,
                    end: 15
                },
                SpanMatch {
                    rule: 0,
                    start: 11,
                    end: 15
                },
                SpanMatch {
                    rule: 1,
                    start: 16,
                    end: 23
                },
            ]
        );
    }

    #[test]
    fn the_hash_names_the_content_not_the_order() {
        let a =
            serde_json::json!({"name": "a", "label": "card", "kind": "keywords", "terms": ["x"]});
        let b = serde_json::json!({"name": "b", "label": "card", "kind": "regex", "pattern": "y"});
        let one = set(serde_json::json!([a, b]), TaskKind::Classification);
        let two = set(serde_json::json!([b, a]), TaskKind::Classification);
        let other = set(serde_json::json!([a]), TaskKind::Classification);
        assert_eq!(one.hash(), two.hash());
        assert_ne!(one.hash(), other.hash());
        assert_eq!(one.hash().len(), 12);
    }

    #[test]
    fn a_similarity_rule_needs_stored_examples() {
        let specs: Vec<RuleSpec> = serde_json::from_value(serde_json::json!([
            {"name": "like", "label": "refund", "kind": "similar", "examples": ["missing"], "threshold": 0.9}
        ]))
        .unwrap();
        let rules = specs
            .into_iter()
            .map(|s| s.validated(TaskKind::Classification, &labels()).unwrap())
            .collect();
        let e = RuleSet::compile(rules, &labels(), &HashMap::new())
            .err()
            .unwrap();
        assert_eq!(e.field, "examples");
        assert!(
            e.message.contains("\"missing\" is not in the project"),
            "{e}"
        );
    }
}
