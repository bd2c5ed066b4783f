//! Annotation quality: agreement metrics, queue helpers and rankings live here.
//!
//! For now: pairwise-preference rankings (`ranking`) and the leaderboard built on them
//! (`leaderboard`).
pub mod leaderboard;
pub mod ranking;
