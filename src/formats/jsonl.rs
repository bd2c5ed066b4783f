//! JSONL input for the command line: one object per line with a `text` field. A bad line is
//! reported with its number and skipped; the rest go on.
use serde_json::{Map, Value};
use std::io::BufRead;

/// One good input row: the whole object (written back out with the prediction added).
#[derive(Debug, Clone, PartialEq)]
pub struct TextRow {
    pub line: usize,
    pub text: String,
    pub fields: Map<String, Value>,
}

/// A line that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parses one line (1-based `line` for messages). Blank lines are skipped (None).
pub fn parse_line(line: usize, raw: &str) -> Option<Result<TextRow, BadLine>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let bad = |reason: String| Some(Err(BadLine { line, reason }));
    let fields = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => map,
        Ok(other) => return bad(format!("expected a JSON object, got {}", kind(&other))),
        Err(e) => return bad(format!("not valid JSON ({e})")),
    };
    let text = match fields.get("text") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return bad(format!("field \"text\" is {}, not a string", kind(other))),
        None => return bad("missing field \"text\"".into()),
    };
    Some(Ok(TextRow { line, text, fields }))
}

/// Every row of a reader, good or bad, in order. An I/O error ends the stream as a bad line.
pub fn rows<R: BufRead>(reader: R) -> impl Iterator<Item = Result<TextRow, BadLine>> {
    let mut failed = false;
    reader
        .lines()
        .enumerate()
        .map_while(move |(i, line)| {
            if failed {
                return None;
            }
            Some(match line {
                Ok(l) => parse_line(i + 1, &l),
                Err(e) => {
                    failed = true;
                    Some(Err(BadLine {
                        line: i + 1,
                        reason: format!("cannot read: {e}"),
                    }))
                }
            })
        })
        .flatten()
}

/// Every non-blank line as a JSON object with its 1-based line number; a line that is not an
/// object is a bad line, and an I/O error ends the stream as one.
pub fn objects<R: BufRead>(
    reader: R,
) -> impl Iterator<Item = Result<(usize, Map<String, Value>), BadLine>> {
    let mut failed = false;
    reader
        .lines()
        .enumerate()
        .map_while(move |(i, line)| {
            if failed {
                return None;
            }
            let line_no = i + 1;
            let bad = |reason: String| {
                Some(Err(BadLine {
                    line: line_no,
                    reason,
                }))
            };
            Some(match line {
                Ok(l) if l.trim().is_empty() => None,
                Ok(l) => match serde_json::from_str::<Value>(l.trim()) {
                    Ok(Value::Object(map)) => Some(Ok((line_no, map))),
                    Ok(other) => bad(format!("expected a JSON object, got {}", kind(&other))),
                    Err(e) => bad(format!("not valid JSON ({e})")),
                },
                Err(e) => {
                    failed = true;
                    bad(format!("cannot read: {e}"))
                }
            })
        })
        .flatten()
}

/// A row's optional `id`: a non-empty string or a number (kept as its text).
pub(crate) fn id_field(fields: &Map<String, Value>) -> Result<Option<String>, String> {
    match fields.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err("field \"id\" must be a non-empty string or a number".into()),
    }
}

/// A row's `meta` object with every field not in `known` added to it: nothing a user sends is
/// lost. None when there is nothing.
pub(crate) fn meta_and_rest(
    mut fields: Map<String, Value>,
    known: &[&str],
) -> Result<Option<Map<String, Value>>, String> {
    let mut meta = match fields.remove("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("field \"meta\" must be an object".into()),
    };
    for (k, v) in fields {
        if !known.contains(&k.as_str()) {
            meta.insert(k, v);
        }
    }
    Ok((!meta.is_empty()).then_some(meta))
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_bad_and_blank_lines() {
        let input = "{\"id\":\"a\",\"text\":\"hi\"}\n\nnot json\n{\"id\":1}\n{\"text\":5}\n[1]\n{\"text\":\"\"}\n";
        let out: Vec<_> = rows(input.as_bytes()).collect();
        assert_eq!(out.len(), 6);
        assert_eq!(out[0].as_ref().unwrap().text, "hi");
        assert_eq!(out[0].as_ref().unwrap().fields["id"], "a");
        let bad: Vec<(usize, String)> = out
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|b| (b.line, b.reason.clone()))
            .collect();
        assert_eq!(bad[0].0, 3);
        assert!(bad[0].1.starts_with("not valid JSON"));
        assert_eq!(bad[1], (4, "missing field \"text\"".into()));
        assert_eq!(
            bad[2],
            (5, "field \"text\" is a number, not a string".into())
        );
        assert_eq!(bad[3], (6, "expected a JSON object, got an array".into()));
        // Empty text is a valid item.
        assert_eq!(out[5].as_ref().unwrap().line, 7);
    }
}
