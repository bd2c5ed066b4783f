//! Reading input rows and writing output rows.
pub mod import;
pub mod instructions;
pub mod jsonl;
pub mod labels;
pub mod pairs;
pub mod preference;
