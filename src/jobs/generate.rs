//! A preference project's responses, written by the model: every prompt without responses gets
//! them sampled, with a comparison for each pair.
use super::task::{patiently, RunError};
use crate::domain::Project;
use crate::engine::{Message, SamplingParams};
use crate::formats::pairs::Prompt;
use crate::store::jobs::{self, Job, JobStatus};
use crate::store::pairs::{self, Generated};
use crate::store::Store;
use crate::tasks::worker::ModelHandle;
use serde_json::json;

/// Prompts handled per step of a generation job: each takes seconds, so one at a time keeps
/// cancel and progress prompt.
const GENERATE_BATCH: usize = 1;

/// Samples the project's responses for every prompt that has none, and a comparison for each
/// pair of them. A prompt's responses commit together with the job's progress.
pub(super) fn run(
    store: &Store,
    model: &ModelHandle,
    job: &Job,
    project: &Project,
) -> Result<(), RunError> {
    let settings = project.generation.unwrap_or_default();
    let (total, done) = store.read(|c| jobs::response_coverage(c, project.id))?;
    store.write(|tx| {
        jobs::start_run(
            tx,
            job.id,
            model.model_id(),
            model.chat_version(),
            total,
            done,
        )
    })?;
    let mut after = 0;
    loop {
        if store.read(|c| jobs::status(c, job.id))? != JobStatus::Running {
            return Ok(());
        }
        let batch = store
            .read(|c| jobs::prompts_without_responses(c, project.id, after, GENERATE_BATCH))?;
        let Some(&(last, _, _)) = batch.last() else {
            store.write(|tx| jobs::finish(tx, job.id, JobStatus::Done, None))?;
            return Ok(());
        };
        after = last;
        for (item_id, prompt, text) in batch {
            let prompt: Prompt = prompt
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(Prompt::Text(text));
            let messages: Vec<Message> = prompt
                .messages()
                .iter()
                .map(|m| Message::new(&m.role, m.content.clone()))
                .collect();
            let mut responses = Vec::with_capacity(settings.responses as usize);
            for i in 0..u64::from(settings.responses) {
                let params = SamplingParams {
                    temperature: settings.temperature,
                    top_p: Some(settings.top_p),
                    seed: settings.seed + i,
                    max_tokens: settings.max_tokens as usize,
                };
                let Some(out) = patiently(store, job.id, || {
                    model.generate(messages.clone(), params.clone())
                })?
                else {
                    return Ok(()); // cancelled while the inference server was away
                };
                responses.push(Generated {
                    text: out.text.trim().to_string(),
                    // Each seed is a source, so the leaderboard can compare sampling runs.
                    source: format!("{} seed {}", model.model_id(), params.seed),
                    model_id: model.model_id().to_string(),
                    settings: json!({"temperature": params.temperature, "top_p": settings.top_p, "seed": params.seed,
                        "max_tokens": settings.max_tokens, "finished": out.stopped}),
                    prompt_version: model.chat_version().to_string(),
                });
            }
            store.write(|tx| {
                pairs::add_generated(tx, project, item_id, &responses)?;
                jobs::add_done(tx, job.id, 1)
            })?;
        }
    }
}
