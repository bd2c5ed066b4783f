//! Annotation quality: inter-annotator agreement (`agreement`), an item's consensus and whether
//! it needs a reviewer (`consensus`), the project quality report (`report`), and for preference
//! projects the rankings (`ranking`) and the leaderboard built on them (`leaderboard`).
pub mod agreement;
pub mod leaderboard;
pub mod ranking;
pub mod report;
