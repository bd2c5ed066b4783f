//! The integration tests that need no browser, as one binary (one link of the whole crate
//! instead of one per file): the real model, real SQLite files, the real server on 127.0.0.1
//! and the real `wick` binary.
#[path = "../common/mod.rs"]
mod common;

mod cli;
mod crash;
mod engine_parity;
mod hf_source;
mod label_export;
mod learning;
mod learning_ner;
mod lm_features;
mod near_duplicates;
mod preference;
mod quality;
mod remote;
mod rules;
mod server_api;
mod shortlist;
mod similar;
