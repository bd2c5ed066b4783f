//! Import rows for a project, from JSONL or CSV, streamed: one row at a time, bad rows reported
//! with their line number and the reason.
use super::jsonl::{self, id_field, meta_and_rest, BadLine};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::io::{BufReader, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// From a file name's extension; JSONL unless it ends in `.csv`.
    pub fn from_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Jsonl,
        }
    }
}

/// An entity given in an import row: offsets in Unicode scalar values, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EntityIn {
    pub start: usize,
    pub end: usize,
    pub label: String,
    /// If given, must equal the text at the offsets.
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub line: usize,
    pub id: Option<String>,
    pub text: String,
    /// `meta`, and any field Wick does not know, kept with the item.
    pub meta: Option<Map<String, Value>>,
    pub label: Option<String>,
    pub entities: Option<Vec<EntityIn>>,
    /// A gold item: its label or entities are the known answer annotators are scored against.
    pub gold: bool,
}

const KNOWN: [&str; 6] = ["id", "text", "meta", "label", "entities", "gold"];

fn from_fields(
    line: usize,
    text: String,
    fields: Map<String, Value>,
) -> Result<ImportRow, BadLine> {
    let bad = |reason: String| BadLine { line, reason };
    if text.trim().is_empty() {
        return Err(bad("field \"text\" is empty".into()));
    }
    let id = id_field(&fields).map_err(bad)?;
    let label = match fields.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("field \"label\" must be a string".into())),
    };
    let entities = match fields.get("entities") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let list: Vec<EntityIn> = serde_json::from_value(v.clone())
                .map_err(|e| bad(format!("field \"entities\": {e}")))?;
            for (i, e) in list.iter().enumerate() {
                if let Some(t) = &e.text {
                    let at: String = text
                        .chars()
                        .skip(e.start)
                        .take(e.end.saturating_sub(e.start))
                        .collect();
                    if *t != at {
                        return Err(bad(format!(
                            "entities[{i}]: text {t:?} is not what the offsets {}..{} cover ({at:?})",
                            e.start, e.end
                        )));
                    }
                }
            }
            Some(list)
        }
    };
    if label.is_some() && entities.is_some() {
        return Err(bad(
            "a row has either \"label\" or \"entities\", not both".into()
        ));
    }
    let gold = match fields.get("gold") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        // CSV cells arrive as strings.
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(bad(format!(
                    "field \"gold\" must be true or false, not {s:?}"
                )))
            }
        },
        Some(_) => return Err(bad("field \"gold\" must be true or false".into())),
    };
    if gold && label.is_none() && entities.is_none() {
        return Err(bad(
            "a gold row needs its answer in \"label\" or \"entities\"".into(),
        ));
    }
    let meta = meta_and_rest(fields, &KNOWN).map_err(bad)?;
    Ok(ImportRow {
        line,
        id,
        text,
        meta,
        label,
        entities,
        gold,
    })
}

/// Every row of the input, good or bad, in order.
pub fn rows<'a, R: Read + 'a>(
    format: Format,
    reader: R,
) -> Box<dyn Iterator<Item = Result<ImportRow, BadLine>> + 'a> {
    match format {
        Format::Jsonl => Box::new(
            jsonl::rows(BufReader::with_capacity(1 << 16, reader))
                .map(|r| r.and_then(|row| from_fields(row.line, row.text, row.fields))),
        ),
        Format::Csv => csv_rows(reader),
    }
}

fn csv_rows<'a, R: Read + 'a>(
    reader: R,
) -> Box<dyn Iterator<Item = Result<ImportRow, BadLine>> + 'a> {
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let headers = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            return Box::new(std::iter::once(Err(BadLine {
                line: 1,
                reason: format!("cannot read the header: {e}"),
            })))
        }
    };
    let Some(text_col) = headers.iter().position(|h| h == "text") else {
        return Box::new(std::iter::once(Err(BadLine {
            line: 1,
            reason: format!(
                "the header has no \"text\" column (it has: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ),
        })));
    };
    Box::new(csv.into_records().map(move |rec| {
        let rec = rec.map_err(|e| BadLine {
            line: e.position().map(|p| p.line() as usize).unwrap_or(0),
            reason: e.to_string(),
        })?;
        let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
        let mut fields = Map::new();
        for (h, v) in headers.iter().zip(rec.iter()) {
            // An empty cell is no value, so an optional `id` or `label` column may have gaps.
            if !v.is_empty() && h != "text" {
                fields.insert(h.to_string(), Value::String(v.to_string()));
            }
        }
        from_fields(
            line,
            rec.get(text_col).unwrap_or_default().to_string(),
            fields,
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: Format, input: &str) -> Vec<Result<ImportRow, BadLine>> {
        rows(format, input.as_bytes()).collect()
    }

    #[test]
    fn jsonl_rows_keep_ids_meta_and_answers_and_report_bad_lines() {
        let input = concat!(
            "{\"id\": 7, \"text\": \"good\", \"label\": \"pos\", \"source\": \"web\"}\n",
            "\n",
            "{\"text\": \"\"}\n",
            "{\"text\": \"Ann went\", \"entities\": [{\"start\": 0, \"end\": 3, \"label\": \"PER\", \"text\": \"Ann\"}]}\n",
            "{\"text\": \"Ann went\", \"entities\": [{\"start\": 0, \"end\": 2, \"label\": \"PER\", \"text\": \"Ann\"}]}\n",
            "not json\n",
        );
        let out = all(Format::Jsonl, input);
        assert_eq!(out.len(), 5);
        let first = out[0].as_ref().unwrap();
        assert_eq!(first.id.as_deref(), Some("7"));
        assert_eq!(first.label.as_deref(), Some("pos"));
        assert_eq!(first.meta.as_ref().unwrap()["source"], "web");
        assert_eq!(out[1].as_ref().unwrap_err().line, 3);
        assert_eq!(
            out[2].as_ref().unwrap().entities.as_ref().unwrap()[0].end,
            3
        );
        let bad = out[3].as_ref().unwrap_err();
        assert_eq!(bad.line, 5);
        assert!(bad.reason.contains("entities[0]"), "{}", bad.reason);
        assert_eq!(out[4].as_ref().unwrap_err().line, 6);
    }

    #[test]
    fn gold_rows_need_an_answer_and_a_boolean() {
        let out = all(
            Format::Jsonl,
            concat!(
                "{\"text\": \"a\", \"label\": \"pos\", \"gold\": true}\n",
                "{\"text\": \"b\", \"gold\": true}\n",
                "{\"text\": \"c\", \"label\": \"pos\", \"gold\": \"maybe\"}\n",
            ),
        );
        assert!(out[0].as_ref().unwrap().gold);
        assert!(out[1]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("gold row needs"));
        assert!(out[2].as_ref().unwrap_err().reason.contains("\"gold\""));
        let csv = all(Format::Csv, "text,label,gold\nx,pos,true\ny,neg,\n");
        assert!(csv[0].as_ref().unwrap().gold);
        assert!(!csv[1].as_ref().unwrap().gold);
    }

    #[test]
    fn csv_needs_a_text_column_and_numbers_lines_from_the_header() {
        let out = all(
            Format::Csv,
            "id,text,label\na1,\"hello, world\",pos\na2,,neg\n,third,\n",
        );
        assert_eq!(out.len(), 3);
        let first = out[0].as_ref().unwrap();
        assert_eq!(
            (first.line, first.text.as_str(), first.label.as_deref()),
            (2, "hello, world", Some("pos"))
        );
        assert_eq!(out[1].as_ref().unwrap_err().line, 3);
        let third = out[2].as_ref().unwrap();
        assert_eq!((third.id.clone(), third.label.clone()), (None, None));
        let missing = all(Format::Csv, "body\nx\n");
        assert!(missing[0]
            .as_ref()
            .unwrap_err()
            .reason
            .contains("no \"text\" column"));
    }
}
