//! SQLite storage: one writer connection behind a mutex (SQLite has one writer anyway, and
//! queueing in-process avoids the busy-handler's sleeps) and a small pool of readers.
//! Nothing here knows about HTTP.
pub mod annotations;
pub mod answered;
pub mod audit;
pub mod auto_accept;
pub mod batches;
pub mod import;
pub mod item_detail;
pub mod items;
pub mod jobs;
pub mod learning;
pub mod pairs;
pub mod predictions;
pub mod projects;
pub mod quality;
pub mod queue;
pub mod review;
pub mod rules;
mod schema;
pub mod users;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A field of the request is wrong; the message names it.
    #[error(transparent)]
    Invalid(#[from] crate::domain::Invalid),
    #[error("{0}")]
    Forbidden(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid(crate::domain::Invalid::new(field, message))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who did a write and from where, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub addr: Option<String>,
}

impl Actor {
    /// Writes done by the server itself or the command line.
    pub fn system() -> Self {
        Actor {
            user_id: None,
            addr: None,
        }
    }
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_IDLE_READERS: usize = 16;
/// How much of the file a reader maps (SQLite caps it near 2 GiB; beyond that it reads).
const READ_MMAP_BYTES: i64 = 2 << 30;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// The writer's page cache during [`Store::write_bulk`], in KiB.
const BULK_CACHE_KIB: i64 = 256 * 1024;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrate(&mut writer)?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a read-only connection.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
        {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&c)?;
                // Readers see the file through mmap: a re-score reads every item's vectors, and
                // through read() calls that took 2.6x as long (BENCHMARKS.md, bench-learn).
                // The pages are the OS's file cache, shared, not this process's memory.
                c.pragma_update(None, "mmap_size", READ_MMAP_BYTES)?;
                c
            }
        };
        let out = f(&conn);
        let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` in one immediate transaction on the writer; commits if it returns Ok.
    pub fn write<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        immediate(&mut conn, f)
    }

    /// [`Store::write`] for a transaction that writes hundreds of megabytes (an apply's
    /// predictions over a whole project): the writer's page cache is raised to
    /// [`BULK_CACHE_KIB`] for it, so dirty pages are not spilled into the WAL and read back
    /// mid-transaction, then given back.
    pub fn write_bulk<T>(&self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let before: i64 = conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB)?;
        let out = immediate(&mut conn, f);
        conn.pragma_update(None, "cache_size", before)?;
        out
    }

    /// A setting kept in the database (e.g. the session key), created by `init` on first use.
    pub fn setting_or_init(&self, key: &str, init: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>> {
        self.write(|tx| {
            let found: Option<Vec<u8>> = tx
                .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .map(Some)
                .or_else(none_if_missing)?;
            match found {
                Some(v) => Ok(v),
                None => {
                    let v = init();
                    tx.execute(
                        "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                        rusqlite::params![key, v],
                    )?;
                    Ok(v)
                }
            }
        })
    }
}

/// Runs `f` in one immediate transaction on `conn`; commits if it returns Ok.
fn immediate<T>(conn: &mut Connection, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Runs `f` with index `name` dropped, then builds it again from its stored definition, in
/// the caller's transaction (other connections never see it missing): for bulk updates of
/// the indexed columns.
pub(crate) fn without_index<T>(
    tx: &Transaction,
    name: &str,
    f: impl FnOnce(&Transaction) -> Result<T>,
) -> Result<T> {
    let sql: String = tx.query_row(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
        [name],
        |r| r.get(0),
    )?;
    tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
    let out = f(tx)?;
    tx.execute_batch(&sql)?;
    Ok(out)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    // Some migrations rebuild a table to change a CHECK, which SQLite only allows with foreign
    // keys off; they are checked as a whole before the commit instead.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let migrated = run_migrations(conn);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrated
}

fn run_migrations(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let applied: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if applied as usize > schema::MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {applied}, newer than this wick ({})",
            schema::MIGRATIONS.len()
        )));
    }
    let pending = schema::MIGRATIONS.iter().enumerate().skip(applied as usize);
    let migrated = pending.len() > 0;
    for (i, sql) in pending {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            rusqlite::params![i as i64 + 1, now_ms()],
        )?;
    }
    // Only a migration can leave a dangling reference (it runs with foreign keys off); the
    // check reads every table, close to a second on a gigabyte database, so skip it otherwise.
    if migrated {
        let broken: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()?;
        if let Some(table) = broken {
            return Err(StoreError::Corrupt(format!(
                "a migration left a dangling reference in table {table}"
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 text for a stored time.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `query_row` answers an error for no rows; this turns that one into `None`.
pub fn none_if_missing<T>(e: rusqlite::Error) -> Result<Option<T>> {
    match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(None),
        e => Err(e.into()),
    }
}

/// A keyset page: rows after a cursor, and the cursor for the next page.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `LIMIT limit + 1`; `id` gives each row's cursor.
    pub fn from_rows(mut rows: Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> Self {
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(id)
        } else {
            None
        };
        Page { items: rows, next }
    }
}
