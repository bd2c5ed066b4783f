//! Writing a stream of parsed rows in transactions of `BATCH`: the good rows commit, the bad
//! ones are reported by line. Every import (text rows, pairs, instruction records) goes through
//! here.
use super::{Result, Store};
use crate::formats::jsonl::BadLine;
use rusqlite::Transaction;
use serde::Serialize;

pub const BATCH: usize = 1000;
/// Bad rows listed one by one in a report; the count covers all of them.
const MAX_LISTED_ERRORS: usize = 1000;

#[derive(Debug, Default, Serialize)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    pub inserted: u64,
    /// Rows whose id was already in the project: left as they were.
    pub duplicates: u64,
    /// Labels or entities imported as annotations with source `import`.
    pub annotations: u64,
    /// Gold items (their answers are not annotations).
    pub gold: u64,
    pub errors: Vec<RowError>,
    pub error_count: u64,
}

impl ImportReport {
    pub(crate) fn error(&mut self, line: usize, message: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(RowError { line, message });
        }
    }
}

/// Commits the good rows in transactions of `BATCH` through `write`, reports the bad ones, and
/// calls `progress` after each commit.
pub(crate) fn in_batches<R>(
    store: &Store,
    rows: impl Iterator<Item = Result<R, BadLine>>,
    mut write: impl FnMut(&Transaction, &[R], &mut ImportReport) -> Result<()>,
    progress: &mut dyn FnMut(&ImportReport),
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        batch.clear();
        for row in rows.by_ref() {
            match row {
                Ok(r) => batch.push(r),
                Err(bad) => report.error(bad.line, bad.reason),
            }
            if batch.len() == BATCH {
                break;
            }
        }
        if batch.is_empty() {
            continue;
        }
        store.write(|tx| write(tx, &batch, &mut report))?;
        progress(&report);
    }
    // Parse errors are found before a batch is written, answer errors while it is: list both
    // in file order.
    report.errors.sort_by_key(|e| e.line);
    Ok(report)
}
