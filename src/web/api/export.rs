//! Streamed exports: preference pairs or labeled items, by the project's task.
use crate::domain::TaskKind;
use crate::export::card::{label_card, Part};
use crate::export::{self, LabelFilter, PreferenceFilter, Split};
use crate::formats::labels::LabelFormat;
use crate::formats::preference::PreferenceFormat;
use crate::store::projects;
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
    /// One side of the train/validation split (label exports).
    split: Option<Split>,
    /// The validation share of the split (default 0.1).
    validation_share: Option<f64>,
}

impl ExportQuery {
    fn label_filter(&self) -> Result<LabelFilter, ApiError> {
        let share = self.validation_share.unwrap_or(0.1);
        if !(0.0..1.0).contains(&share) {
            return Err(ApiError::bad_request(
                "validation_share: at least 0 and below 1",
            ));
        }
        Ok(LabelFilter {
            human_only: self.human_only,
            min_agreement: self.min_agreement.unwrap_or(0.0),
            labels: self
                .labels
                .as_deref()
                .map(|l| {
                    l.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            split: self.split.map(|side| (side, share)),
        })
    }
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
        let filter = q.label_filter()?;
        Export::Labels(format, filter)
    };
    let format_name = match &what {
        Export::Pairs(f, _) => f.name(),
        Export::Labels(f, _) => f.name(),
    };
    let split = match &what {
        Export::Labels(
            _,
            LabelFilter {
                split: Some((side, _)),
                ..
            },
        ) => format!(".{}", side.name()),
        _ => String::new(),
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
    let name = format!("{}{split}.jsonl", file_stem(&project.name, format_name));
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .streaming(body))
}

fn file_stem(project: &str, format: &str) -> String {
    format!(
        "{}-{format}",
        project.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// The dataset card (`README.md`) of a label export with these parameters: the export is run
/// without writing anything to count what it holds, each side of the split if one is asked for.
pub async fn card(
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
    let format: LabelFormat = q.format.parse().map_err(ApiError::bad_request)?;
    export::check_label_format(project.task, format)?;
    let mut filter = q.label_filter()?;
    let share = filter.split.map(|(_, share)| share);
    let store = state.store.clone();
    let stem = file_stem(&project.name, format.name());
    let card = web::block(move || -> Result<String, ApiError> {
        let run = |filter: &LabelFilter| {
            export::labels(&store, id, format, filter, &mut std::io::sink())
                .map_err(|e| ApiError::internal(&e))
        };
        let (summary, parts) = match share {
            None => {
                let s = run(&filter)?;
                let part = Part {
                    split: "train",
                    file: format!("{stem}.jsonl"),
                    rows: s.exported,
                };
                (s, vec![part])
            }
            Some(share) => {
                let mut total = export::LabelSummary::default();
                let mut parts = Vec::new();
                for side in [Split::Train, Split::Validation] {
                    let s = run(&LabelFilter {
                        split: Some((side, share)),
                        ..filter.clone()
                    })?;
                    parts.push(Part {
                        split: side.name(),
                        file: format!("{stem}.{}.jsonl", side.name()),
                        rows: s.exported,
                    });
                    total.merge(s);
                }
                filter.split = Some((Split::Validation, share));
                (total, parts)
            }
        };
        let date = time::OffsetDateTime::now_utc().date().to_string();
        Ok(label_card(
            &project, format, &filter, &summary, &parts, &date,
        ))
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(HttpResponse::Ok()
        .content_type("text/markdown; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"README.md\""))
        .body(card))
}
