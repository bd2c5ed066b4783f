//! Reading input rows and writing output rows.
pub mod jsonl;
