//! Wick: a labeling server for NLP teams with an in-process small language model.
//!
//! Layers point downwards only (`layers.rs` checks it on the sources, and docs/architecture.md
//! draws it): `domain`, `engine` and `learn` at the bottom; `formats` and `tasks` on them; then
//! `store`; then `quality`, `export` and `jobs`; `web` on top, and the command line above all.
pub mod app;
pub mod domain;
pub mod engine;
pub mod export;
pub mod formats;
pub mod jobs;
#[cfg(test)]
mod layers;
pub mod learn;
pub mod quality;
pub mod remote;
pub mod rules;
pub mod store;
pub mod tasks;
pub mod vectors;
pub mod web;
