//! The learning loop over HTTP: queue a retrain, read the learners and the online accuracy.
use crate::app::jobs::RETRAIN_NEEDS_MODEL;
use crate::domain::TaskKind;
use crate::learn::spans::SpanLearner;
use crate::learn::Learner;
use crate::store::learning;
use crate::store::projects;
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `POST /projects/{id}/retrain`: queues a retrain (409 while one is queued or running).
pub async fn retrain(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require_admin()?;
    state.require_model(RETRAIN_NEEDS_MODEL)?;
    let job = state.queue_retrain(caller.actor(), id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(job))
}

/// `GET /projects/{id}/learning`: the settings, every learner (oldest first, with its fitted
/// mix and cross-validation figures) and the prequential accuracy, one point per learner.
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (project, learners, curve) = state
        .read(move |c| {
            let p = projects::visible(c, &caller.user, id)?;
            Ok((p, learning::learners(c, id)?, learning::curve(c, id)?))
        })
        .await?;
    let learners: Vec<serde_json::Value> = learners
        .iter()
        .map(|row| {
            let mut v = json!(row);
            // A learner that no longer parses still lists, without its details.
            if project.task == TaskKind::Ner {
                if let Ok(l) = SpanLearner::from_bytes(&row.state) {
                    v["mix"] = json!({
                        "weight": l.weight,
                        "classifier_weight": l.classifier_weight,
                        "threshold": l.threshold,
                    });
                    v["l2"] = json!(l.l2);
                    v["folds"] = json!(l.folds);
                }
            } else if let Ok(l) = Learner::from_bytes(&row.state) {
                v["mix"] = json!(l.mix);
                v["l2"] = json!(l.l2);
                v["folds"] = json!(l.folds);
                v["labels_used"] = json!(l
                    .used
                    .iter()
                    .filter_map(|&i| project.labels.get(i))
                    .collect::<Vec<_>>());
            }
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "settings": project.learning,
        "learners": learners,
        "curve": curve,
    })))
}
