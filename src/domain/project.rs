//! A project's settings and their checks: task, label set, prompt, queue order, overlap,
//! guidelines, generation, quality and learning settings.
use super::Invalid;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Classification,
    Ner,
    /// Pairs of responses to a prompt, voted on.
    Preference,
    /// Instruction/response records, reviewed: accepted, edited or rejected.
    Instruction,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] = [
        TaskKind::Classification,
        TaskKind::Ner,
        TaskKind::Preference,
        TaskKind::Instruction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Classification => "classification",
            TaskKind::Ner => "ner",
            TaskKind::Preference => "preference",
            TaskKind::Instruction => "instruction",
        }
    }

    /// Whether people's answers retrain a learner: labels and spans do, votes and reviews not.
    pub fn learns(self) -> bool {
        matches!(self, TaskKind::Classification | TaskKind::Ner)
    }

    /// The built-in prompts a project of this kind may use; the first is the default.
    pub fn prompts(self) -> &'static [Prompt] {
        match self {
            TaskKind::Classification => &[Prompt::Classify, Prompt::Sentiment, Prompt::Intent],
            TaskKind::Ner => &[Prompt::Ner],
            TaskKind::Preference => &[Prompt::Generate],
            TaskKind::Instruction => &[Prompt::Review],
        }
    }
}

/// The built-in prompts, by the name a project stores and the API takes. Each task kind has its
/// own (`TaskKind::prompts`); the labeling ones have a template in `prompts/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prompt {
    Classify,
    Sentiment,
    Intent,
    Ner,
    /// Writes a preference project's responses.
    Generate,
    /// An instruction project is reviewed by people; the name only records that.
    Review,
}

impl Prompt {
    pub const ALL: [Prompt; 6] = [
        Prompt::Classify,
        Prompt::Sentiment,
        Prompt::Intent,
        Prompt::Ner,
        Prompt::Generate,
        Prompt::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Prompt::Classify => "classify",
            Prompt::Sentiment => "sentiment",
            Prompt::Intent => "intent",
            Prompt::Ner => "ner",
            Prompt::Generate => "generate",
            Prompt::Review => "review",
        }
    }

    pub fn parse(name: &str) -> Option<Prompt> {
        Prompt::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The prompts a new classification or NER project may name.
    pub fn labeling() -> impl Iterator<Item = Prompt> {
        [TaskKind::Classification, TaskKind::Ner]
            .into_iter()
            .flat_map(|t| t.prompts().iter().copied())
    }
}

impl std::fmt::Display for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueOrder {
    Uncertainty,
    Sequential,
    Random,
}

impl QueueOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Uncertainty => "uncertainty",
            QueueOrder::Sequential => "sequential",
            QueueOrder::Random => "random",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Guidelines {
    pub version: i64,
    pub body: String,
}

/// How a preference project's responses are sampled when Wick generates them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationSettings {
    /// Responses per prompt; each pair of them is voted on.
    pub responses: u32,
    pub temperature: f64,
    pub top_p: f64,
    /// Response i is sampled with seed `seed + i`.
    pub seed: u64,
    pub max_tokens: u32,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        GenerationSettings {
            responses: 2,
            temperature: 0.8,
            top_p: 0.95,
            seed: 1,
            max_tokens: 128,
        }
    }
}

impl GenerationSettings {
    pub fn checked(self) -> Result<Self, Invalid> {
        let bad = |field: &str, msg: &str| Err(Invalid::new(&format!("generation.{field}"), msg));
        if !(2..=8).contains(&self.responses) {
            return bad("responses", "between 2 and 8");
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad("temperature", "between 0 and 2");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "above 0, at most 1");
        }
        if !(1..=2048).contains(&self.max_tokens) {
            return bad("max_tokens", "between 1 and 2048");
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub task: TaskKind,
    pub labels: Vec<String>,
    pub prompt: Prompt,
    pub queue_order: QueueOrder,
    pub overlap: i64,
    pub guidelines: Guidelines,
    pub created_at: String,
    /// Preference projects only.
    pub generation: Option<GenerationSettings>,
    pub quality: QualitySettings,
    pub learning: LearningSettings,
}

/// How a classification or NER project's learner follows people's answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LearningSettings {
    /// New human answers that queue a retrain; 0: only by hand.
    pub retrain_every: i64,
    /// The queue passes over an item this close (cosine of the sentence embeddings) to one of
    /// the last 50 served to the same person; None: off.
    pub near_duplicate_cosine: Option<f64>,
}

pub fn check_retrain_every(v: i64) -> Result<i64, Invalid> {
    if !(0..=1_000_000).contains(&v) {
        return Err(Invalid::new(
            "retrain_every",
            "from 0 (only by hand) to 1000000 answers",
        ));
    }
    Ok(v)
}

/// 0 turns the near-duplicate check off.
pub fn check_near_duplicate(v: f64) -> Result<Option<f64>, Invalid> {
    if v == 0.0 {
        return Ok(None);
    }
    check_share("near_duplicate_cosine", v, false).map(Some)
}

/// How a project checks its labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QualitySettings {
    /// Share of an annotator's queue served from gold items, 0 to 1.
    pub gold_rate: f64,
    /// The model precision on human-checked items that auto-accepting must keep.
    pub precision_target: f64,
    /// Predictions at or above this confidence are labels (source `model`); None: off.
    pub auto_accept: Option<f64>,
}

pub fn check_share(field: &str, v: f64, zero_ok: bool) -> Result<f64, Invalid> {
    if !(v.is_finite() && v <= 1.0 && (v > 0.0 || (zero_ok && v == 0.0))) {
        let range = if zero_ok {
            "from 0 to 1"
        } else {
            "above 0, at most 1"
        };
        return Err(Invalid::new(field, range));
    }
    Ok(v)
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewProject {
    pub name: String,
    pub task: TaskKind,
    pub labels: Vec<String>,
    /// A built-in prompt's name (`Prompt`), checked against the task; None: its default.
    pub prompt: Option<String>,
    pub guidelines: Option<String>,
    pub queue_order: Option<QueueOrder>,
    pub overlap: Option<i64>,
    #[serde(default)]
    pub generation: Option<GenerationSettings>,
    pub gold_rate: Option<f64>,
    pub precision_target: Option<f64>,
    pub retrain_every: Option<i64>,
    /// 0: off.
    pub near_duplicate_cosine: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProjectUpdate {
    pub guidelines: Option<String>,
    pub queue_order: Option<QueueOrder>,
    pub overlap: Option<i64>,
    pub generation: Option<GenerationSettings>,
    pub gold_rate: Option<f64>,
    pub precision_target: Option<f64>,
    pub retrain_every: Option<i64>,
    /// 0 turns the near-duplicate check off.
    pub near_duplicate_cosine: Option<f64>,
}

const MAX_LABELS: usize = 1000;

pub fn check_labels(labels: &[String]) -> Result<Vec<String>, Invalid> {
    if labels.is_empty() || labels.len() > MAX_LABELS {
        return Err(Invalid::new("labels", format!("1 to {MAX_LABELS} labels")));
    }
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.chars().count() > 100 {
            return Err(Invalid::new(&format!("labels[{i}]"), "1 to 100 characters"));
        }
        if out.iter().any(|o| o == l) {
            return Err(Invalid::new(
                &format!("labels[{i}]"),
                format!("{l:?} is repeated"),
            ));
        }
        out.push(l.to_string());
    }
    Ok(out)
}

pub fn check_overlap(overlap: i64) -> Result<i64, Invalid> {
    if !(1..=100).contains(&overlap) {
        return Err(Invalid::new("overlap", "between 1 and 100"));
    }
    Ok(overlap)
}
