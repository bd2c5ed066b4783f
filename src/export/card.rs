//! The dataset card (`README.md`) written next to a label export: what is in it, where the labels
//! came from, and how far people agreed, with the Hugging Face dataset-card front matter.
use super::{LabelFilter, LabelSummary};
use crate::domain::Project;
use crate::formats::labels::LabelFormat;
use std::fmt::Write;

/// Marks a card as Wick's, so the next export may replace it (and never a README someone wrote).
pub const MARK: &str = "<!-- dataset card written by wick export -->";

/// Where the card of an export at `path` goes: `README.md` beside it (where `datasets` reads it),
/// unless a README.md that Wick did not write is there; then `<name>.README.md`.
pub fn card_path(path: &std::path::Path) -> std::path::PathBuf {
    let readme = path.with_file_name("README.md");
    match std::fs::read_to_string(&readme) {
        Ok(text) if !text.contains(MARK) => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            path.with_file_name(format!("{stem}.README.md"))
        }
        _ => readme,
    }
}

/// One file of the export and how many rows went into it.
pub struct Part {
    pub split: &'static str,
    pub file: String,
    pub rows: u64,
}

pub fn label_card(
    project: &Project,
    format: LabelFormat,
    filter: &LabelFilter,
    summary: &LabelSummary,
    parts: &[Part],
    date: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "---");
    let _ = writeln!(s, "pretty_name: {}", yaml_str(&project.name));
    let _ = writeln!(s, "configs:\n- config_name: default\n  data_files:");
    // `datasets` cannot load an empty file: an empty side is listed below, not loaded.
    for p in parts.iter().filter(|p| p.rows > 0) {
        let _ = writeln!(s, "  - split: {}\n    path: {}", p.split, yaml_str(&p.file));
    }
    let _ = writeln!(s, "---\n{MARK}\n");
    let _ = writeln!(s, "# {}\n", md(&project.name));
    let _ = writeln!(
        s,
        "Exported from Wick on {date}: a {} project, format `{}`, {} items.\n",
        project.task.as_str(),
        format.name(),
        summary.exported
    );
    let _ = writeln!(s, "## Files\n\n| split | file | rows |\n|---|---|---|");
    for p in parts {
        let _ = writeln!(s, "| {} | `{}` | {} |", p.split, md(&p.file), p.rows);
    }
    let mut filters = vec![format!("human only: {}", filter.human_only)];
    if filter.min_agreement > 0.0 {
        filters.push(format!("minimum agreement {}", filter.min_agreement));
    }
    if !filter.labels.is_empty() {
        filters.push(format!("labels {}", md(&filter.labels.join(", "))));
    }
    if let Some((_, share)) = filter.split {
        filters.push(format!(
            "validation share {share} (by the SHA-256 of each item's id, so an item keeps its side)"
        ));
    }
    let _ = writeln!(s, "\nFilters: {}.", filters.join("; "));
    let _ = writeln!(
        s,
        "Left out: {} import-only, {} auto-accepted, {} below the agreement, {} with other labels. Gold (test) items are never exported.\n",
        summary.import_only, summary.model_only, summary.low_agreement, summary.other_label
    );
    let _ = writeln!(
        s,
        "## Where the labels come from\n\n| source | items |\n|---|---|"
    );
    for (k, v) in &summary.sources {
        let _ = writeln!(s, "| {} | {v} |", md(k));
    }
    let _ = writeln!(
        s,
        "\n`human`: one annotator; `consensus`: the most common answer of several; `adjudicated`: a reviewer's decision; `model`: a prediction accepted above the project's confidence threshold; `import`: imported with the data."
    );
    let agreement = summary
        .mean_agreement
        .map_or("none measured".to_string(), |a| format!("{a:.3}"));
    let _ = writeln!(
        s,
        "\nMean agreement (share of an item's annotators who gave the exported answer): {agreement}.\n"
    );
    let _ = writeln!(s, "## Labels\n\n| label | count |\n|---|---|");
    let mut labels: Vec<(&String, &u64)> = summary.labels.iter().collect();
    labels.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (k, v) in labels {
        let _ = writeln!(s, "| {} | {v} |", md(k));
    }
    let _ = writeln!(s, "\n## Annotators\n\n| annotator | items |\n|---|---|");
    for (k, v) in &summary.annotators {
        let _ = writeln!(s, "| {} | {v} |", md(k));
    }
    let _ = writeln!(s, "\n## Model\n");
    let list = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            "none".to_string()
        } else {
            set.iter()
                .map(|m| format!("`{}`", md(m)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(s, "Pre-labeling model: {}.", list(&summary.models));
    let _ = writeln!(s, "Prompt versions: {}.", list(&summary.prompt_versions));
    let _ = writeln!(
        s,
        "\nGuidelines version {} applied when this was exported.",
        project.guidelines.version
    );
    s
}

/// Text safe inside a Markdown table cell.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
