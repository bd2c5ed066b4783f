//! Annotation quality: agreement metrics, queue helpers and rankings live here.
//!
//! For now: inter-annotator agreement (`agreement`), pairwise-preference rankings (`ranking`)
//! and the leaderboard built on them (`leaderboard`).
pub mod agreement;
pub mod leaderboard;
pub mod ranking;
