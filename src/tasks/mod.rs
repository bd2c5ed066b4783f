//! Zero-shot labelers built on the engine, and the figures that judge them.
pub mod backend;
pub mod classify;
pub mod labeler;
pub mod labels;
pub mod metrics;
pub mod ner;
pub mod prompt;
pub mod proposals;
pub mod remote;
pub mod worker;
