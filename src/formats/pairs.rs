//! Import rows for a preference project, from JSONL, streamed: a prompt with k ≥ 2 responses
//! (any two of them can be voted on later), or an existing `chosen`/`rejected` pair that comes
//! with its vote. Bad rows are reported with their line number and a reason naming the field.
//!
//! ```text
//! {"id"?, "prompt": str | [{"role", "content"}...], "responses": [str, str, ...], "sources"?: [str...], "meta"?: {...}}
//! {"id"?, "prompt": ..., "chosen": str, "rejected": str, "sources"?: [chosen's, rejected's]}
//! ```
use super::jsonl::BadLine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What the responses answer: plain text, or a conversation (stored as given, serde untagged, so
/// it reads and writes as either a JSON string or a list of messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Messages(Vec<Message>),
}

impl Prompt {
    /// For display: the text, or the messages as `role: content` lines.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            Prompt::Text(t) => Cow::Borrowed(t),
            Prompt::Messages(m) => Cow::Owned(
                m.iter()
                    .map(|m| format!("{}: {}", m.role, m.content))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }

    /// As a conversation: a text prompt is one user message.
    pub fn messages(&self) -> Cow<'_, [Message]> {
        match self {
            Prompt::Text(t) => Cow::Owned(vec![Message {
                role: "user".into(),
                content: t.clone(),
            }]),
            Prompt::Messages(m) => Cow::Borrowed(m),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    pub line: usize,
    pub id: Option<String>,
    pub prompt: Prompt,
    /// At least two, no two the same. A chosen/rejected row gives `[chosen, rejected]`.
    pub responses: Vec<String>,
    /// Where each response came from (a model name, say); same length as `responses`.
    pub sources: Option<Vec<String>>,
    /// `(winner, loser)` indexes into `responses`: the imported vote of a chosen/rejected row.
    pub preferred: Option<(usize, usize)>,
    /// `meta`, and any field Wick does not know, kept with the item.
    pub meta: Option<Map<String, Value>>,
}

const KNOWN: [&str; 7] = [
    "id",
    "prompt",
    "responses",
    "chosen",
    "rejected",
    "sources",
    "meta",
];
const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// Every row of the input, good or bad, in order. Blank lines are skipped; an I/O error ends
/// the stream as a bad line. (Not `jsonl::rows`: that one requires a `text` field.)
pub fn rows<R: Read>(reader: R) -> impl Iterator<Item = Result<PairRow, BadLine>> {
    let mut failed = false;
    BufReader::with_capacity(1 << 16, reader)
        .lines()
        .enumerate()
        .map_while(move |(i, line)| {
            if failed {
                return None;
            }
            let line_no = i + 1;
            Some(match line {
                Ok(l) if l.trim().is_empty() => None,
                Ok(l) => Some(parse_line(line_no, &l)),
                Err(e) => {
                    failed = true;
                    Some(Err(BadLine {
                        line: line_no,
                        reason: format!("cannot read: {e}"),
                    }))
                }
            })
        })
        .flatten()
}

/// One non-blank line (1-based `line` for messages).
pub fn parse_line(line: usize, raw: &str) -> Result<PairRow, BadLine> {
    let bad = |reason: String| BadLine { line, reason };
    match serde_json::from_str::<Value>(raw.trim()) {
        Ok(Value::Object(fields)) => from_fields(line, fields).map_err(bad),
        Ok(other) => Err(bad(format!("expected a JSON object, got {}", kind(&other)))),
        Err(e) => Err(bad(format!("not valid JSON ({e})"))),
    }
}

fn from_fields(line: usize, mut fields: Map<String, Value>) -> Result<PairRow, String> {
    let id = match fields.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("field \"id\" must be a non-empty string or a number".into()),
    };
    let prompt = prompt(fields.get("prompt"))?;
    let has = |k: &str| !matches!(fields.get(k), None | Some(Value::Null));
    let (responses, preferred) = match (has("responses"), has("chosen"), has("rejected")) {
        (true, false, false) => (responses(&fields["responses"])?, None),
        (false, true, true) => {
            let chosen = text("chosen", &fields["chosen"])?;
            let rejected = text("rejected", &fields["rejected"])?;
            if chosen == rejected {
                return Err("fields \"chosen\" and \"rejected\" are the same text".into());
            }
            (vec![chosen, rejected], Some((0, 1)))
        }
        (true, _, _) => {
            return Err(
                "a row has either \"responses\" or \"chosen\" and \"rejected\", not both".into(),
            )
        }
        (false, true, false) => return Err("field \"chosen\" needs \"rejected\" too".into()),
        (false, false, true) => return Err("field \"rejected\" needs \"chosen\" too".into()),
        (false, false, false) => {
            return Err("missing field \"responses\" (or \"chosen\" and \"rejected\")".into())
        }
    };
    let sources = match fields.get("sources") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            if list.len() != responses.len() {
                return Err(format!(
                    "sources: got {}, need one per response ({})",
                    list.len(),
                    responses.len()
                ));
            }
            let names = list.iter().enumerate().map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                v => Err(format!("sources[{i}] must be a string, got {}", kind(v))),
            });
            Some(names.collect::<Result<Vec<_>, _>>()?)
        }
        Some(v) => return Err(format!("sources must be a list, got {}", kind(v))),
    };
    let mut meta = match fields.remove("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("field \"meta\" must be an object".into()),
    };
    for (k, v) in fields {
        if !KNOWN.contains(&k.as_str()) {
            meta.insert(k, v);
        }
    }
    Ok(PairRow {
        line,
        id,
        prompt,
        responses,
        sources,
        preferred,
        meta: (!meta.is_empty()).then_some(meta),
    })
}

fn prompt(v: Option<&Value>) -> Result<Prompt, String> {
    let list = match v {
        None | Some(Value::Null) => return Err("missing field \"prompt\"".into()),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err("field \"prompt\" is empty".into())
        }
        Some(Value::String(s)) => return Ok(Prompt::Text(s.clone())),
        Some(Value::Array(list)) => list,
        Some(v) => {
            return Err(format!(
                "field \"prompt\" must be a string or a list of messages, got {}",
                kind(v)
            ))
        }
    };
    let mut messages = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let field = |k: &str| match m.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(format!("prompt[{i}].{k} must be a string, got {}", kind(v))),
            None => Err(format!("prompt[{i}] needs \"{k}\"")),
        };
        if !m.is_object() {
            return Err(format!(
                "prompt[{i}] must be a {{\"role\", \"content\"}} object, got {}",
                kind(m)
            ));
        }
        let (role, content) = (field("role")?, field("content")?);
        if !ROLES.contains(&role.as_str()) {
            return Err(format!(
                "prompt[{i}].role: unknown role {role:?} (expected system, user or assistant)"
            ));
        }
        messages.push(Message { role, content });
    }
    if messages.iter().all(|m| m.content.trim().is_empty()) {
        return Err("field \"prompt\" is empty".into());
    }
    // The responses answer the conversation, so it must end on the user's turn; trainers and
    // OpenAI would otherwise get two assistant turns in a row.
    let last = &messages[messages.len() - 1].role;
    if last != "user" {
        return Err(format!(
            "prompt: the last message must be from \"user\", got {last:?}"
        ));
    }
    Ok(Prompt::Messages(messages))
}

fn responses(v: &Value) -> Result<Vec<String>, String> {
    let Value::Array(list) = v else {
        return Err(format!(
            "field \"responses\" must be a list of strings, got {}",
            kind(v)
        ));
    };
    if list.len() < 2 {
        return Err(format!("responses: need at least 2, got {}", list.len()));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let r = text(&format!("responses[{i}]"), r)?;
        // Two equal responses would make a pair no one can choose between.
        if let Some(j) = out.iter().position(|o| *o == r) {
            return Err(format!("responses[{i}] is the same text as responses[{j}]"));
        }
        out.push(r);
    }
    Ok(out)
}

/// A non-empty string field; `name` is how the messages call it.
fn text(name: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) if s.trim().is_empty() => Err(format!("{name} is empty")),
        Value::String(s) => Ok(s.clone()),
        v => Err(format!("{name} must be a string, got {}", kind(v))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<PairRow, BadLine> {
        let mut out: Vec<_> = rows(line.as_bytes()).collect();
        assert_eq!(out.len(), 1, "{line}");
        out.pop().unwrap()
    }

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn k_responses_with_sources_meta_and_line_numbers() {
        let input = concat!(
            "\n",
            r#"{"id": 7, "prompt": "Say hi", "responses": ["hi", "hello", "hey"], "sources": ["a", "b", "c"], "lang": "en"}"#,
            "\n",
            r#"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}], "responses": ["a", "b"], "meta": {"k": 1}}"#,
            "\n",
        );
        let out: Vec<_> = rows(input.as_bytes()).collect();
        let first = out[0].as_ref().unwrap();
        assert_eq!((first.line, first.id.as_deref()), (2, Some("7")));
        assert_eq!(first.prompt, Prompt::Text("Say hi".into()));
        assert_eq!(first.responses, ["hi", "hello", "hey"]);
        assert_eq!(first.sources.as_deref().unwrap(), ["a", "b", "c"]);
        assert_eq!(first.preferred, None);
        assert_eq!(first.meta.as_ref().unwrap()["lang"], "en");
        let second = out[1].as_ref().unwrap();
        assert_eq!(second.line, 3);
        let conv = vec![msg("system", "Be brief."), msg("user", "Hi?")];
        assert_eq!(second.prompt, Prompt::Messages(conv.clone()));
        assert_eq!(second.prompt.as_text(), "system: Be brief.\nuser: Hi?");
        assert_eq!(*second.prompt.messages(), conv[..]);
        assert_eq!(first.prompt.messages()[..], [msg("user", "Say hi")]);
        assert_eq!(second.meta.as_ref().unwrap()["k"], 1);
    }

    #[test]
    fn chosen_rejected_is_two_responses_and_a_vote() {
        let row = one(r#"{"id": "p1", "prompt": "Q", "chosen": "good", "rejected": "bad", "sources": ["m1", "m2"]}"#)
            .unwrap();
        assert_eq!(row.responses, ["good", "bad"]);
        assert_eq!(row.preferred, Some((0, 1)));
        assert_eq!(row.sources.unwrap(), ["m1", "m2"]);
        assert_eq!(row.meta, None);
    }

    #[test]
    fn prompt_serializes_as_given() {
        let p: Prompt = serde_json::from_str(r#"[{"role":"user","content":"x"}]"#).unwrap();
        assert_eq!(p, Prompt::Messages(vec![msg("user", "x")]));
        assert_eq!(
            serde_json::to_string(&Prompt::Text("t".into())).unwrap(),
            "\"t\""
        );
    }

    #[test]
    fn bad_rows_name_the_field_and_line() {
        let cases = [
            (
                r#"{"prompt": "Q", "responses": ["only"]}"#,
                "responses: need at least 2, got 1",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", 5]}"#,
                "responses[1] must be a string, got a number",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", " "]}"#,
                "responses[1] is empty",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", "b", "a"]}"#,
                "responses[2] is the same text as responses[0]",
            ),
            (
                r#"{"prompt": "Q", "responses": "a"}"#,
                "field \"responses\" must be a list of strings, got a string",
            ),
            (
                r#"{"prompt": "", "responses": ["a", "b"]}"#,
                "field \"prompt\" is empty",
            ),
            (
                r#"{"prompt": [], "responses": ["a", "b"]}"#,
                "field \"prompt\" is empty",
            ),
            (r#"{"responses": ["a", "b"]}"#, "missing field \"prompt\""),
            (
                r#"{"prompt": 3, "responses": ["a", "b"]}"#,
                "field \"prompt\" must be a string or a list of messages, got a number",
            ),
            (
                r#"{"prompt": [{"role": "bot", "content": "x"}], "responses": ["a", "b"]}"#,
                "prompt[0].role: unknown role \"bot\" (expected system, user or assistant)",
            ),
            (
                r#"{"prompt": [{"role": "user"}], "responses": ["a", "b"]}"#,
                "prompt[0] needs \"content\"",
            ),
            (
                r#"{"prompt": [{"role": "user", "content": 1}], "responses": ["a", "b"]}"#,
                "prompt[0].content must be a string, got a number",
            ),
            (
                r#"{"prompt": ["hi"], "responses": ["a", "b"]}"#,
                "prompt[0] must be a {\"role\", \"content\"} object, got a string",
            ),
            (
                r#"{"prompt": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "responses": ["a", "b"]}"#,
                "prompt: the last message must be from \"user\", got \"assistant\"",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", "b"], "sources": ["m"]}"#,
                "sources: got 1, need one per response (2)",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", "b"], "sources": ["m", 2]}"#,
                "sources[1] must be a string, got a number",
            ),
            (
                r#"{"prompt": "Q", "chosen": "a", "rejected": "b", "sources": ["m"]}"#,
                "sources: got 1, need one per response (2)",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", "b"], "chosen": "a", "rejected": "b"}"#,
                "a row has either \"responses\" or \"chosen\" and \"rejected\", not both",
            ),
            (
                r#"{"prompt": "Q", "chosen": "a", "rejected": "a"}"#,
                "fields \"chosen\" and \"rejected\" are the same text",
            ),
            (
                r#"{"prompt": "Q", "chosen": "a"}"#,
                "field \"chosen\" needs \"rejected\" too",
            ),
            (
                r#"{"prompt": "Q", "rejected": "a"}"#,
                "field \"rejected\" needs \"chosen\" too",
            ),
            (
                r#"{"prompt": "Q", "chosen": ["a"], "rejected": "b"}"#,
                "chosen must be a string, got a list",
            ),
            (
                r#"{"prompt": "Q", "chosen": "a", "rejected": ""}"#,
                "rejected is empty",
            ),
            (
                r#"{"prompt": "Q"}"#,
                "missing field \"responses\" (or \"chosen\" and \"rejected\")",
            ),
            (
                r#"{"id": true, "prompt": "Q", "responses": ["a", "b"]}"#,
                "field \"id\" must be a non-empty string or a number",
            ),
            (
                r#"{"prompt": "Q", "responses": ["a", "b"], "meta": 1}"#,
                "field \"meta\" must be an object",
            ),
            ("[1]", "expected a JSON object, got a list"),
        ];
        // Each bad row after a good one, so the line number is checked too.
        let good = r#"{"prompt": "Q", "responses": ["a", "b"]}"#;
        for (row, reason) in cases {
            let out: Vec<_> = rows(format!("{good}\n{row}\n").as_bytes()).collect();
            assert!(out[0].is_ok());
            let bad = out[1].as_ref().unwrap_err();
            assert_eq!((bad.line, bad.reason.as_str()), (2, reason), "{row}");
        }
        assert!(one("not json")
            .unwrap_err()
            .reason
            .starts_with("not valid JSON"));
    }
}
