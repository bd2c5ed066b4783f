//! Labeling functions: rules a team writes once (keyword lists, regular expressions, lookup
//! lists, "similar to these items") that vote a label on the items they match, or propose
//! spans of one type in an NER project. Validation (`spec`), matching (`matcher`, one
//! Aho–Corasick automaton for the whole set's terms, each pattern alone) and the per-rule figures
//! (`analysis`) are here; the store keeps the rules and `jobs::rules` combines their votes
//! with the model's through the label model in `learn::label_model`.
pub mod analysis;
pub mod lookup;
pub mod matcher;
pub mod spec;

pub use analysis::{Analysis, RuleFigures};
pub use matcher::{RuleSet, SpanMatch};
pub use spec::{Matcher, Rule, RuleSpec};
