//! Starting background work: a project's model job (pre-labeling, or a preference project's
//! responses) and a retrain of its learner. Each is queued in the store and the runner woken.
use super::{App, AppError};
use crate::store::jobs::{self, Job};
use crate::store::{learning, Actor};

/// Why the API refuses a retrain on a server without a model.
pub const RETRAIN_NEEDS_MODEL: &str =
    "retraining needs the sentence embedder; the server was started without a model";

impl App {
    /// Queues the project's model job; refused on a server without a model.
    pub async fn start_job(&self, actor: Actor, project_id: i64) -> Result<Job, AppError> {
        self.require_model("the server was started without a model")?;
        let job = self
            .write(move |tx| jobs::create(tx, &actor, project_id))
            .await?;
        self.jobs.wake();
        Ok(job)
    }

    /// Queues a retrain of the project's learner (a conflict while one is queued or running).
    /// On a server without a model the job is queued and fails with the reason, where the
    /// pages show it; the API refuses up front (`RETRAIN_NEEDS_MODEL`).
    pub async fn queue_retrain(&self, actor: Actor, project_id: i64) -> Result<Job, AppError> {
        let job = self
            .write(move |tx| learning::queue_retrain(tx, &actor, project_id))
            .await?;
        self.jobs.wake();
        Ok(job)
    }
}
