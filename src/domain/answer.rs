//! What a person (or an import) says about an item, and its check against the project.
use super::project::{Project, TaskKind};
use super::span::Span;
use super::Invalid;
use serde::{Deserialize, Serialize};

/// What a person (or an import) says about an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    Label {
        label: String,
    },
    Entities {
        entities: Vec<Span>,
    },
    /// An instruction dataset's record reviewed; `response` is the edited one.
    Review {
        decision: Decision,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Edit,
    Reject,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Accept, Decision::Edit, Decision::Reject];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Edit => "edit",
            Decision::Reject => "reject",
        }
    }
}

/// The longest edited response kept.
const MAX_RESPONSE_CHARS: usize = 100_000;

impl Answer {
    /// Checks the answer against the project's task and label set and the item's text.
    /// Entities come back sorted by start.
    pub fn validated(self, project: &Project, text: &str) -> Result<Answer, Invalid> {
        match (self, project.task) {
            (Answer::Label { label }, TaskKind::Classification) => {
                if !project.labels.contains(&label) {
                    return Err(Invalid::new(
                        "label",
                        format!("{label:?} is not a label of this project"),
                    ));
                }
                Ok(Answer::Label { label })
            }
            (Answer::Entities { mut entities }, TaskKind::Ner) => {
                let len = text.chars().count();
                entities.sort_by_key(|s| (s.start, s.end));
                for (i, s) in entities.iter().enumerate() {
                    let field = format!("entities[{i}]");
                    if !project.labels.contains(&s.label) {
                        return Err(Invalid::new(
                            &field,
                            format!("{:?} is not an entity type of this project", s.label),
                        ));
                    }
                    if s.start >= s.end || s.end > len {
                        return Err(Invalid::new(
                            &field,
                            format!(
                                "span {}..{} is not inside the text ({len} characters)",
                                s.start, s.end
                            ),
                        ));
                    }
                    if i > 0 && entities[i - 1].end > s.start {
                        return Err(Invalid::new(
                            &field,
                            format!(
                                "span {}..{} overlaps {}..{}",
                                s.start,
                                s.end,
                                entities[i - 1].start,
                                entities[i - 1].end
                            ),
                        ));
                    }
                }
                Ok(Answer::Entities { entities })
            }
            (Answer::Review { decision, response }, TaskKind::Instruction) => {
                let response = response.filter(|r| !r.trim().is_empty());
                match (decision, &response) {
                    (Decision::Edit, None) => Err(Invalid::new(
                        "response",
                        "an edit needs the edited response",
                    )),
                    (Decision::Edit, Some(r)) if r.chars().count() > MAX_RESPONSE_CHARS => {
                        Err(Invalid::new(
                            "response",
                            format!("at most {MAX_RESPONSE_CHARS} characters"),
                        ))
                    }
                    (Decision::Accept | Decision::Reject, Some(_)) => Err(Invalid::new(
                        "response",
                        "only an edit carries a response",
                    )),
                    _ => Ok(Answer::Review { decision, response }),
                }
            }
            (_, TaskKind::Instruction) => Err(Invalid::new(
                "decision",
                "an instruction project takes a decision: accept, edit (with the response) or reject",
            )),
            (Answer::Review { .. }, _) => Err(Invalid::new(
                "decision",
                "decisions are for instruction projects",
            )),
            (_, TaskKind::Preference) => Err(Invalid::new(
                "label",
                "a preference project takes votes on pairs, not labels",
            )),
            (Answer::Label { .. }, TaskKind::Ner) => Err(Invalid::new(
                "entities",
                "an NER project takes entities, not a label",
            )),
            (Answer::Entities { .. }, TaskKind::Classification) => Err(Invalid::new(
                "label",
                "a classification project takes a label, not entities",
            )),
        }
    }

    /// The answer a prediction's output (`label` or `entities`, among other fields) amounts to.
    pub fn from_prediction(output: &serde_json::Value) -> Option<Answer> {
        if let Some(label) = output.get("label").and_then(|l| l.as_str()) {
            return Some(Answer::Label {
                label: label.to_string(),
            });
        }
        let entities = serde_json::from_value(output.get("entities")?.clone()).ok()?;
        Some(Answer::Entities { entities })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
