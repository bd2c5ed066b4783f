//! What can stop a learner from being trained or read back.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LearnError {
    #[error("no human labels yet: the learner needs answers with at least two different labels")]
    NoLabels,
    #[error(
        "only one label has been used ({0}); the learner needs answers with at least two different labels"
    )]
    OneLabel(usize),
    #[error("label index {index} is outside the label set of {labels}")]
    LabelOutOfRange { index: usize, labels: usize },
    #[error("embedding of {got} floats where the set has {want}")]
    Dimension { got: usize, want: usize },
    #[error("the language model's distribution has {got} labels where the set has {want}")]
    Distribution { got: usize, want: usize },
    #[error("{got} label-name embeddings for a set of {want} labels")]
    Names { got: usize, want: usize },
    #[error("stored learner is unreadable: {0}")]
    Corrupt(String),
}
