//! The services under the HTTP layer: what the API and the pages both do (start a job, queue a
//! retrain, switch auto-accept, build a project's figures), with typed errors, and the store's
//! reads and writes moved off the async workers. Handlers parse a request, call in here, and
//! render the answer; nothing here knows about HTTP.
pub mod jobs;
pub mod quality;
pub mod rules;
pub mod similar;

use crate::jobs::JobRunner;
use crate::store::{Store, StoreError};
use crate::tasks::worker::ModelHandle;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The server runs without a model (`--no-model`) and the request needs one.
    #[error("{0}")]
    NoModel(&'static str),
    /// A thread the service relies on is gone or panicked mid-request.
    #[error("{0}")]
    Stopped(&'static str),
    #[error(transparent)]
    Worker(#[from] crate::tasks::worker::WorkerError),
}

/// The running server's parts: the store (with its writer thread), the job runner and the
/// model, when there is one.
pub struct App {
    pub store: Store,
    pub jobs: JobRunner,
    pub model: Option<ModelHandle>,
    /// In-memory indexes of the projects' embeddings, for similar items.
    pub similar: std::sync::Arc<similar::SimilarIndexes>,
    writer: Writer,
}

impl App {
    pub fn new(store: Store, jobs: JobRunner, model: Option<ModelHandle>) -> Self {
        App {
            writer: Writer::spawn(store.clone()),
            store,
            jobs,
            model,
            similar: Default::default(),
        }
    }

    /// The model, or `NoModel(why)` on a server started without one.
    pub fn require_model(&self, why: &'static str) -> Result<&ModelHandle, AppError> {
        self.model.as_ref().ok_or(AppError::NoModel(why))
    }

    /// A read on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let store = self.store.clone();
        Ok(blocking(move || store.read(f)).await??)
    }

    /// A write transaction, run on the writer thread in arrival order.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, AppError> {
        let Some(queue) = &self.writer.queue else {
            let store = self.store.clone();
            return Ok(blocking(move || store.write(f)).await??);
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        queue
            .send(Box::new(move |store: &Store| {
                let _ = reply.send(store.write(f));
            }))
            .map_err(|_| AppError::Stopped("the writer thread has stopped"))?;
        Ok(answer
            .await
            .map_err(|_| AppError::Stopped("the write transaction panicked"))??)
    }
}

/// Runs blocking work on the runtime's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AppError::Stopped("a blocking task panicked"))
}

type WriteJob = Box<dyn FnOnce(&Store) + Send>;

/// One thread that runs the API's write transactions one after another, in the order they
/// arrive. SQLite takes one writer at a time anyway (`Store::write` holds a mutex); with each
/// write on its own blocking-pool thread, dozens of threads woke up only to queue on that mutex,
/// and on a small machine the context switches cost more than the transactions, and the mutex's
/// lack of order stretched the tail (BENCHMARKS.md, "Server"). Reads still run in
/// parallel on the blocking pool.
struct Writer {
    /// None if the thread could not be started: writes then go through the blocking pool.
    queue: Option<std::sync::mpsc::Sender<WriteJob>>,
}

impl Writer {
    fn spawn(store: Store) -> Writer {
        let (queue, jobs) = std::sync::mpsc::channel::<WriteJob>();
        let started = std::thread::Builder::new()
            .name("wick-writer".into())
            .spawn(move || {
                // Ends when the last sender (the App) is dropped.
                for job in jobs {
                    // A panic fails its own request (the reply is dropped unsent), not the thread;
                    // the transaction rolls back as it unwinds.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&store)));
                }
            });
        match started {
            Ok(_) => Writer { queue: Some(queue) },
            Err(e) => {
                tracing::warn!("no writer thread ({e}); writes go through the blocking pool");
                Writer { queue: None }
            }
        }
    }
}
