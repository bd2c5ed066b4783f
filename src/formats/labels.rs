//! Labeled items out, one JSON object per line (CoNLL: one token per line), in the shapes
//! trainers and NLP tools take as they are:
//!
//! - `labels`: `{"id","text","label"}` or `{"id","text","entities":[{"start","end","label","text"}]}`
//!   with `source` (human, consensus, adjudicated, model or import), `annotators`, `agreement`,
//!   `model`, `prompt_version`.
//! - `spacy`: `{"text","spans":[{"start","end","label"}]}` (offsets in code points, as Python's).
//! - `conll`: `token<TAB>BIO-tag` lines, a blank line after each item (NER only).
//! - `sft`: `{"messages":[system, user (instruction + text), assistant (label or JSON entities)]}`.
//! - `prompt-completion`: `{"prompt","completion"}`; `alpaca`: `{"instruction","input","output"}`.
use crate::domain::Span;
use serde_json::json;
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelFormat {
    Labels,
    Spacy,
    Conll,
    Sft,
    PromptCompletion,
    Alpaca,
}

impl LabelFormat {
    pub const ALL: [LabelFormat; 6] = [
        LabelFormat::Labels,
        LabelFormat::Spacy,
        LabelFormat::Conll,
        LabelFormat::Sft,
        LabelFormat::PromptCompletion,
        LabelFormat::Alpaca,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LabelFormat::Labels => "labels",
            LabelFormat::Spacy => "spacy",
            LabelFormat::Conll => "conll",
            LabelFormat::Sft => "sft",
            LabelFormat::PromptCompletion => "prompt-completion",
            LabelFormat::Alpaca => "alpaca",
        }
    }

    /// Whether the format holds spans (and so needs an NER project).
    pub fn needs_spans(self) -> bool {
        matches!(self, LabelFormat::Spacy | LabelFormat::Conll)
    }
}

impl std::str::FromStr for LabelFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            format!("unknown label format {s:?} (expected labels, spacy, conll, sft, prompt-completion or alpaca)")
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    Label(String),
    Entities(Vec<Span>),
    /// An instruction record as reviewed: the response is the edited one if it was edited.
    Instruction {
        record: super::instructions::Instruction,
        edited: bool,
    },
}

/// One item with its agreed answer and where the answer came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledItem {
    pub id: String,
    pub text: String,
    pub gold: Gold,
    /// `human` (one person), `consensus` (several), `adjudicated` (a reviewer), `model`
    /// (an auto-accepted prediction) or `import`.
    pub source: &'static str,
    pub annotators: Vec<String>,
    /// Share of the item's annotators whose latest answer is `gold`; None without annotators.
    pub agreement: Option<f64>,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
}

fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

/// The answer as an assistant would write it: the label, or the entities as JSON.
fn answer_text(item: &LabeledItem) -> String {
    match &item.gold {
        Gold::Label(l) => l.clone(),
        Gold::Instruction { record, .. } => record.response.clone(),
        Gold::Entities(spans) => json!(spans
            .iter()
            .map(|s| json!({"text": slice(&item.text, s.start, s.end), "label": s.label}))
            .collect::<Vec<_>>())
        .to_string(),
    }
}

/// Whitespace tokens with their offsets in code points.
fn tokens(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.chars().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.chars().count()));
    }
    out
}

/// Writes `item` in `format`; `instruction` is the task instruction of the instruction formats.
pub fn write(
    format: LabelFormat,
    item: &LabeledItem,
    instruction: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    if let Gold::Instruction { record, edited } = &item.gold {
        return write_instruction(format, item, record, *edited, out);
    }
    let line = match (format, &item.gold) {
        (LabelFormat::Labels, gold) => {
            let mut v = json!({"id": item.id, "text": item.text});
            match gold {
                Gold::Label(l) => v["label"] = json!(l),
                Gold::Instruction { .. } => {}
                Gold::Entities(spans) => {
                    v["entities"] = json!(spans
                        .iter()
                        .map(|s| json!({"start": s.start, "end": s.end, "label": s.label, "text": slice(&item.text, s.start, s.end)}))
                        .collect::<Vec<_>>())
                }
            }
            v["source"] = json!(item.source);
            v["annotators"] = json!(item.annotators);
            v["agreement"] = json!(item.agreement);
            v["model"] = json!(item.model);
            v["prompt_version"] = json!(item.prompt_version);
            v
        }
        (LabelFormat::Spacy, Gold::Entities(spans)) => json!({"text": item.text, "spans": spans}),
        (LabelFormat::Conll, Gold::Entities(spans)) => {
            for (start, end) in tokens(&item.text) {
                let tag = match spans.iter().find(|s| s.start < end && start < s.end) {
                    Some(s) if s.start >= start => format!("B-{}", s.label),
                    Some(s) => format!("I-{}", s.label),
                    None => "O".to_string(),
                };
                writeln!(out, "{}\t{tag}", slice(&item.text, start, end))?;
            }
            return writeln!(out);
        }
        (LabelFormat::Spacy | LabelFormat::Conll, _) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spacy and conll exports hold entities: use an NER project",
            ))
        }
        (LabelFormat::Sft, _) => json!({"messages": [
            {"role": "system", "content": "You label text for a dataset. Answer with the answer only."},
            {"role": "user", "content": format!("{instruction}\n\n{}", item.text)},
            {"role": "assistant", "content": answer_text(item)},
        ]}),
        (LabelFormat::PromptCompletion, _) => {
            json!({"prompt": format!("{instruction}\n\n{}\n\nAnswer:", item.text), "completion": format!(" {}", answer_text(item))})
        }
        (LabelFormat::Alpaca, _) => {
            json!({"instruction": instruction, "input": item.text, "output": answer_text(item)})
        }
    };
    let mut bytes = serde_json::to_vec(&line)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

/// A reviewed instruction record: the instruction (with its context) as the prompt, the
/// accepted or edited response as the answer.
fn write_instruction(
    format: LabelFormat,
    item: &LabeledItem,
    r: &super::instructions::Instruction,
    edited: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    let line = match format {
        LabelFormat::Labels => json!({
            "id": item.id, "instruction": r.instruction, "context": r.context, "response": r.response,
            "category": r.category, "decision": if edited { "edit" } else { "accept" },
            "source": item.source, "annotators": item.annotators, "agreement": item.agreement,
        }),
        LabelFormat::Sft => json!({"messages": [
            {"role": "user", "content": r.prompt()},
            {"role": "assistant", "content": r.response},
        ]}),
        LabelFormat::PromptCompletion => json!({"prompt": r.prompt(), "completion": r.response}),
        LabelFormat::Alpaca => {
            json!({"instruction": r.instruction, "input": r.context, "output": r.response})
        }
        LabelFormat::Spacy | LabelFormat::Conll => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spacy and conll exports hold entities: use an NER project",
            ))
        }
    };
    let mut bytes = serde_json::to_vec(&line)?;
    bytes.push(b'\n');
    out.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ner() -> LabeledItem {
        LabeledItem {
            id: "n1".into(),
            text: "🎉 Ana met Bob Smith".into(),
            gold: Gold::Entities(vec![
                Span {
                    start: 2,
                    end: 5,
                    label: "PER".into(),
                },
                Span {
                    start: 10,
                    end: 19,
                    label: "PER".into(),
                },
            ]),
            source: "consensus",
            annotators: vec!["a".into(), "b".into()],
            agreement: Some(1.0),
            model: None,
            prompt_version: None,
        }
    }

    fn written(format: LabelFormat, item: &LabeledItem) -> String {
        let mut out = Vec::new();
        write(format, item, "Tag the people.", &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ner_rows_in_each_shape() {
        let item = ner();
        let labels: serde_json::Value =
            serde_json::from_str(&written(LabelFormat::Labels, &item)).unwrap();
        assert_eq!(labels["entities"][1]["text"], "Bob Smith");
        assert_eq!(labels["source"], "consensus");
        assert_eq!(
            written(LabelFormat::Spacy, &item),
            "{\"text\":\"🎉 Ana met Bob Smith\",\"spans\":[{\"start\":2,\"end\":5,\"label\":\"PER\"},{\"start\":10,\"end\":19,\"label\":\"PER\"}]}\n"
        );
        assert_eq!(
            written(LabelFormat::Conll, &item),
            "🎉\tO\nAna\tB-PER\nmet\tO\nBob\tB-PER\nSmith\tI-PER\n\n"
        );
        let sft: serde_json::Value =
            serde_json::from_str(&written(LabelFormat::Sft, &item)).unwrap();
        assert_eq!(
            sft["messages"][2]["content"],
            "[{\"text\":\"Ana\",\"label\":\"PER\"},{\"text\":\"Bob Smith\",\"label\":\"PER\"}]"
        );
    }

    #[test]
    fn classification_rows_and_span_formats_refused() {
        let item = LabeledItem {
            gold: Gold::Label("positive".into()),
            text: "Great.".into(),
            ..ner()
        };
        assert_eq!(
            written(LabelFormat::Alpaca, &item),
            "{\"instruction\":\"Tag the people.\",\"input\":\"Great.\",\"output\":\"positive\"}\n"
        );
        let pc: serde_json::Value =
            serde_json::from_str(&written(LabelFormat::PromptCompletion, &item)).unwrap();
        assert_eq!(pc["completion"], " positive");
        assert!(write(LabelFormat::Conll, &item, "", &mut Vec::new()).is_err());
        assert_eq!(
            "prompt-completion".parse::<LabelFormat>(),
            Ok(LabelFormat::PromptCompletion)
        );
    }
}
