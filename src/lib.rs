//! Wick: a labeling server for NLP teams with an in-process small language model.
//!
//! Layers point downwards only: `tasks` (zero-shot labelers) and `formats` (row parsing)
//! build on `engine` (everything candle); `engine` knows nothing of labels.
pub mod domain;
pub mod engine;
pub mod export;
pub mod formats;
pub mod jobs;
pub mod learn;
pub mod quality;
pub mod store;
pub mod tasks;
pub mod web;
