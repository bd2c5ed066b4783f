//! The learning loop's mathematics: a learner trained on the sentence embeddings (and the
//! language model's features) of the items people labeled, mixed with the language model's
//! calibrated distribution. Nothing here knows about the store, the model or HTTP: callers
//! hand in embeddings, label indices and the language model's distributions.
mod error;
pub mod features;
pub mod label_model;
pub mod learner;
pub mod logistic;
pub mod mix;
pub mod spans;
mod stored;

pub use error::LearnError;
pub use learner::{FoldFigures, Learner, TrainingSet};
pub use mix::{Mix, MixKind};
