//! Import rows for an instruction dataset, from JSONL, streamed: an instruction, optional
//! context, the response to review, and an optional category (the Dolly / self-instruct shape).
//!
//! ```text
//! {"id"?, "instruction": str, "context"?: str, "response": str, "category"?: str, "meta"?: {...}}
//! ```
use super::jsonl::{id_field, kind, meta_and_rest, BadLine};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufReader, Read};

/// The record people review: what is asked, with what context, and the answer under review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instruction {
    pub instruction: String,
    #[serde(default)]
    pub context: String,
    pub response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

impl Instruction {
    /// The instruction with its context, as a user turn or a prompt.
    pub fn prompt(&self) -> String {
        if self.context.trim().is_empty() {
            self.instruction.clone()
        } else {
            format!("{}\n\n{}", self.instruction, self.context)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InstructionRow {
    pub line: usize,
    pub id: Option<String>,
    pub record: Instruction,
    /// `meta`, and any field Wick does not know, kept with the item.
    pub meta: Option<Map<String, Value>>,
}

const KNOWN: [&str; 6] = [
    "id",
    "instruction",
    "context",
    "response",
    "category",
    "meta",
];

/// Every row of the input, good or bad, in order.
pub fn rows<R: Read>(reader: R) -> impl Iterator<Item = Result<InstructionRow, BadLine>> {
    super::jsonl::objects(BufReader::with_capacity(1 << 16, reader)).map(|r| {
        r.and_then(|(line, fields)| {
            from_fields(line, fields).map_err(|reason| BadLine { line, reason })
        })
    })
}

fn string(
    fields: &Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) if required => Err(format!("missing field \"{name}\"")),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if required && s.trim().is_empty() => {
            Err(format!("field \"{name}\" is empty"))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!(
            "field \"{name}\" must be a string, got {}",
            kind(v)
        )),
    }
}

fn from_fields(line: usize, fields: Map<String, Value>) -> Result<InstructionRow, String> {
    let id = id_field(&fields)?;
    let record = Instruction {
        instruction: string(&fields, "instruction", true)?.unwrap_or_default(),
        context: string(&fields, "context", false)?.unwrap_or_default(),
        response: string(&fields, "response", true)?.unwrap_or_default(),
        category: string(&fields, "category", false)?.filter(|c| !c.is_empty()),
    };
    let meta = meta_and_rest(fields, &KNOWN)?;
    Ok(InstructionRow {
        line,
        id,
        record,
        meta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_need_an_instruction_and_a_response_and_report_bad_lines() {
        let input = concat!(
            "{\"instruction\": \"Summarize.\", \"context\": \"Long text.\", \"response\": \"Short.\", \"category\": \"summarization\", \"source\": \"dolly\"}\n",
            "{\"instruction\": \"Say hi.\", \"response\": \"\"}\n",
            "{\"instruction\": 3, \"response\": \"x\"}\n",
            "\n",
            "[1]\n",
            "{\"id\": 9, \"instruction\": \"Name a colour.\", \"response\": \"Blue.\"}\n",
        );
        let out: Vec<_> = rows(input.as_bytes()).collect();
        assert_eq!(out.len(), 5);
        let first = out[0].as_ref().unwrap();
        assert_eq!(first.record.prompt(), "Summarize.\n\nLong text.");
        assert_eq!(first.record.category.as_deref(), Some("summarization"));
        assert_eq!(first.meta.as_ref().unwrap()["source"], "dolly");
        let empty = out[1].as_ref().unwrap_err();
        assert_eq!(
            (empty.line, empty.reason.as_str()),
            (2, "field \"response\" is empty")
        );
        assert!(out[2]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("must be a string"));
        assert_eq!(out[3].as_ref().unwrap_err().line, 5);
        let last = out[4].as_ref().unwrap();
        assert_eq!(
            (last.id.as_deref(), last.record.prompt().as_str()),
            (Some("9"), "Name a colour.")
        );
    }
}
