//! A labeled stretch of an item's text: the one span type of answers, imports, exports and
//! evaluation alike.
use serde::{Deserialize, Serialize};

/// A character span, offsets in Unicode scalar values, end exclusive. Ordered by start, then
/// end, then label, so sorted spans read left to right and set comparisons are exact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub label: String,
}
