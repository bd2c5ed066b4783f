//! Background jobs, each lane on a thread of its own: the model lane pre-labels items (or writes
//! a preference project's responses), the learning lane retrains and applies rules. A job is resumed after a
//! restart from its row: the items still without a prediction are what is left.
mod generate;
mod prelabel;
pub mod retrain;
pub mod rules;
pub(crate) mod task;

pub use task::{labels_hash, task_spec, RunError};

use crate::store::jobs::{self, JobStatus, Lane};
use crate::store::Store;
use crate::tasks::worker::ModelHandle;
use std::sync::mpsc;
use std::time::Duration;

const IDLE_POLL: Duration = Duration::from_secs(2);

/// Wakes the runner when a job is queued.
#[derive(Clone)]
pub struct JobRunner {
    wake: Vec<mpsc::Sender<()>>,
}

impl JobRunner {
    pub fn spawn(store: Store, model: Option<ModelHandle>) -> std::io::Result<Self> {
        let (model_wake, model_rx) = mpsc::channel();
        let (learn_wake, learn_rx) = mpsc::channel();
        Self::lane(store.clone(), model.clone(), Lane::Model, model_rx)?;
        Self::lane(store, model, Lane::Learning, learn_rx)?;
        Ok(JobRunner {
            wake: vec![model_wake, learn_wake],
        })
    }

    /// One thread running the lane's jobs one after another.
    fn lane(
        store: Store,
        model: Option<ModelHandle>,
        lane: Lane,
        rx: mpsc::Receiver<()>,
    ) -> std::io::Result<()> {
        let name = match lane {
            Lane::Model => "wick-jobs",
            Lane::Learning => "wick-learn",
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                match store.read(|c| jobs::next_runnable(c, lane)) {
                    Ok(Some(job)) => {
                        let ran = match lane {
                            Lane::Model => prelabel::run(&store, model.as_ref(), &job),
                            Lane::Learning if job.kind == "rules" => rules::run(&store, &job),
                            Lane::Learning => retrain::run(&store, model.as_ref(), &job),
                        };
                        if let Err(e) = ran {
                            tracing::error!(job = job.id, "job failed: {e}");
                            let _ = store.write(|tx| {
                                jobs::finish(tx, job.id, JobStatus::Failed, Some(&e.to_string()))
                            });
                        }
                    }
                    Ok(None) => match rx.recv_timeout(IDLE_POLL) {
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        _ => continue,
                    },
                    Err(e) => {
                        tracing::error!("cannot read jobs: {e}");
                        std::thread::sleep(IDLE_POLL);
                    }
                }
            })?;
        Ok(())
    }

    pub fn wake(&self) {
        for w in &self.wake {
            let _ = w.send(());
        }
    }
}
