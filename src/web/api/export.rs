//! Streamed exports: preference pairs or labeled items, by the project's task.
use crate::export::{self, LabelFilter, PreferenceFilter};
use crate::formats::labels::LabelFormat;
use crate::formats::preference::PreferenceFormat;
use crate::store::projects::{self, TaskKind};
use crate::web::auth::Caller;
use crate::web::error::ApiError;
use crate::web::AppState;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};

#[derive(serde::Deserialize)]
pub struct ExportQuery {
    format: String,
    min_votes: Option<u32>,
    min_agreement: Option<f64>,
    #[serde(default)]
    human_only: bool,
    /// Comma-separated labels to keep (label exports).
    labels: Option<String>,
}

/// What to export: preference pairs or labeled items, by the project's task.
enum Export {
    Pairs(PreferenceFormat, PreferenceFilter),
    Labels(LabelFormat, LabelFilter),
}

/// Sends what the exporter writes on the blocking pool to the response as it is written.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

/// A streamed JSONL download; `wick export` prints the summary of what was left out.
pub async fn export(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let project = state
        .read(move |c| projects::visible(c, &caller.user, id))
        .await?;
    let q = q.into_inner();
    let bad = |e: String| ApiError::bad_request(e);
    let what = if project.task == TaskKind::Preference {
        let filter = PreferenceFilter {
            min_votes: q.min_votes.unwrap_or(1),
            min_agreement: q.min_agreement.unwrap_or(0.0),
        };
        Export::Pairs(q.format.parse().map_err(bad)?, filter)
    } else {
        let format: LabelFormat = q.format.parse().map_err(bad)?;
        export::check_label_format(project.task, format).map_err(|e| bad(e.to_string()))?;
        let filter = LabelFilter {
            human_only: q.human_only,
            min_agreement: q.min_agreement.unwrap_or(0.0),
            labels: q
                .labels
                .map(|l| {
                    l.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        Export::Labels(format, filter)
    };
    let format_name = match &what {
        Export::Pairs(f, _) => f.name(),
        Export::Labels(f, _) => f.name(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let store = state.store.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let done = match what {
            Export::Pairs(format, filter) => {
                export::preferences(&store, id, format, filter, &mut out).map(|s| s.to_string())
            }
            Export::Labels(format, filter) => {
                export::labels(&store, id, format, &filter, &mut out).map(|s| s.to_string())
            }
        };
        match done {
            Ok(summary) => tracing::info!(project = id, "export: {summary}"),
            Err(e) => tracing::warn!(project = id, "export stopped: {e}"),
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|c| c.map(Ok::<_, actix_web::Error>))
    });
    let name = format!(
        "{}-{}.jsonl",
        project
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        format_name
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(body))
}
