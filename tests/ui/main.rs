//! The browser tests, as one binary: Debian's headless Chromium through chromedriver against
//! the real server. They take turns (`browser::Chromedriver` holds a lock), as they did when
//! each file was a binary of its own.
mod browser;
// The browser tests use the server harness but not the model and export helpers.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod end_to_end;
mod learning;
mod learning_ner;
mod quality;
mod rules;
mod vote;
