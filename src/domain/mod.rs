//! Wick's own types and their rules, below every other layer: what a project is, what an answer
//! is and when it is valid, and how annotators' answers settle into one. Nothing here touches
//! SQLite, HTTP or the model; the store, quality, export and web all build on it.
pub mod answer;
pub mod consensus;
pub mod project;
pub mod span;

pub use answer::{Answer, Decision};
pub use project::{
    GenerationSettings, Guidelines, LearningSettings, NewProject, Project, ProjectUpdate, Prompt,
    QualitySettings, QueueOrder, TaskKind,
};
pub use span::Span;

/// A field that breaks a rule; the message says which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
