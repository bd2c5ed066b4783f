//! One front for every task, so the command line (and later the server) treats
//! classification and entity extraction alike.
use super::backend::Backend;
use super::classify::{ClassPrediction, Classifier, ClassifierOptions, TaskError};
use super::labels::LabelSet;
use super::ner::{entities, Entity, Extractor};
use super::prompt::PromptTemplate;
use super::remote::RemoteClassifier;
use crate::domain::Prompt;
use crate::learn::spans::ZeroShot;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Task {
    Sentiment,
    Intent,
    Ner,
    Classify,
}

impl Task {
    pub fn name(self) -> &'static str {
        self.prompt().as_str()
    }

    /// The built-in prompt the task is asked with.
    pub fn prompt(self) -> Prompt {
        match self {
            Task::Sentiment => Prompt::Sentiment,
            Task::Intent => Prompt::Intent,
            Task::Ner => Prompt::Ner,
            Task::Classify => Prompt::Classify,
        }
    }

    /// The task a project's prompt asks for; None for prompts that do not label.
    pub fn for_prompt(prompt: Prompt) -> Option<Task> {
        match prompt {
            Prompt::Sentiment => Some(Task::Sentiment),
            Prompt::Intent => Some(Task::Intent),
            Prompt::Ner => Some(Task::Ner),
            Prompt::Classify => Some(Task::Classify),
            Prompt::Generate | Prompt::Review => None,
        }
    }

    /// The label set used when none is given, if the task has one. The CoNLL-style entity
    /// types are scored as words: a 135M model reads "person" but not "PER".
    pub fn default_labels(self) -> Option<LabelSet> {
        let set = |names: &[&str], phrases: &[&str]| {
            let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
            LabelSet::new(own(names), own(phrases)).ok()
        };
        match self {
            Task::Sentiment => set(&["positive", "negative"], &["positive", "negative"]),
            Task::Ner => set(
                &["PER", "ORG", "LOC", "MISC"],
                &["person", "organization", "location", "miscellaneous"],
            ),
            Task::Intent | Task::Classify => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    Class(ClassPrediction),
    Entities {
        entities: Vec<Entity>,
        truncated: bool,
        /// Every scored candidate behind `entities`, for the span learner.
        zero_shot: ZeroShot,
    },
}

impl Prediction {
    /// The `prediction` object of an output row.
    pub fn to_json(&self) -> Value {
        let mut v = match self {
            Prediction::Class(p) => json!({
                "label": p.label,
                "confidence": p.confidence,
                "scores": p.scores.iter().map(|(l, s)| (l.clone(), json!(s))).collect::<serde_json::Map<_, _>>(),
            }),
            Prediction::Entities { entities, .. } => json!({ "entities": entities }),
        };
        if self.truncated() {
            v["truncated"] = json!(true);
        }
        v
    }

    pub fn truncated(&self) -> bool {
        match self {
            Prediction::Class(p) => p.truncated,
            Prediction::Entities { truncated, .. } => *truncated,
        }
    }
}

pub enum Labeler<'m> {
    Classifier(Classifier<'m>),
    Extractor(Extractor<'m>),
    /// Classification by an inference server.
    Remote(RemoteClassifier<'m>),
}

impl<'m> Labeler<'m> {
    pub fn new(
        model: &'m Backend,
        task: Task,
        template: &PromptTemplate,
        labels: LabelSet,
        opts: ClassifierOptions,
    ) -> Result<Self, TaskError> {
        Ok(match (model, task) {
            (Backend::Local(m), Task::Ner) => {
                Labeler::Extractor(Extractor::new(m, template, labels)?)
            }
            (Backend::Local(m), _) => {
                Labeler::Classifier(Classifier::new(m, template, labels, opts)?)
            }
            (Backend::Remote(_), Task::Ner) => {
                return Err(TaskError::Unsupported(
                    "entity extraction runs on the in-process model only; an inference server \
                 (--model openai:…) labels classification projects and writes responses"
                        .into(),
                ))
            }
            (Backend::Remote(r), _) => {
                Labeler::Remote(RemoteClassifier::new(r, template, labels, opts.calibrate)?)
            }
        })
    }

    pub fn label(&self, texts: &[&str]) -> Result<Vec<Prediction>, TaskError> {
        match self {
            Labeler::Classifier(c) => Ok(c
                .classify(texts)?
                .into_iter()
                .map(Prediction::Class)
                .collect()),
            Labeler::Extractor(x) => Ok(texts
                .iter()
                .zip(x.score(texts)?)
                .map(|(text, s)| {
                    let zero_shot = ZeroShot {
                        candidates: s.candidates,
                        threshold: x.threshold(),
                    };
                    Prediction::Entities {
                        entities: entities(text, &zero_shot.spans(), &x.types().names),
                        truncated: s.truncated,
                        zero_shot,
                    }
                })
                .collect()),
            Labeler::Remote(c) => Ok(c
                .classify(texts)?
                .into_iter()
                .map(Prediction::Class)
                .collect()),
        }
    }

    pub fn prompt_version(&self) -> &str {
        match self {
            Labeler::Classifier(c) => &c.prompt_version,
            Labeler::Extractor(x) => &x.prompt_version,
            Labeler::Remote(c) => &c.prompt_version,
        }
    }
}
