//! Prompt templates: files in `prompts/`, one per task, compiled into the binary (a user may
//! pass their own). A file has `### system`, `### user` and `### assistant` sections, each a
//! minijinja template over `text`, `labels` and `types`. The sha256 of the file's bytes is the
//! prompt version every prediction records.
use crate::domain::Prompt;
use crate::engine::{ChatTemplate, EngineError, Message, TextTokenizer};
use minijinja::{context, Environment};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("cannot read prompt file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Stands in for the item text while rendering, so the prompt splits into the part before
/// the text (cached once per task) and the part after it.
const TEXT_SLOT: &str = "\u{E000}wick-text\u{E000}";
/// Stands in for a candidate span in an entity prompt: what lies after the text splits again
/// around it, so many candidates share the text's forward.
const MENTION_SLOT: &str = "\u{E000}wick-mention\u{E000}";

#[derive(Debug, Clone)]
pub struct PromptTemplate {
    pub name: String,
    /// First 12 hex digits of the sha256 of the template file.
    pub version: String,
    system: Option<String>,
    user: String,
    assistant: String,
    pub settings: PromptSettings,
}

/// The `### settings` section: `key: value` lines tuned together with the prompt's wording.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSettings {
    /// Temperature applied to the calibrated label scores (fit on dev data for the
    /// built-in prompts: below 1 sharpens an under-confident prompt).
    pub temperature: f64,
    /// Whether to divide out the label distribution of content-free inputs.
    pub calibrate: bool,
    /// With more labels than this and a sentence embedder loaded, only this many labels (the
    /// closest to the text by embedding) are scored by the language model; 0 scores all.
    pub shortlist: usize,
    /// Weight of the embedding distribution in the final mixture when shortlisting (the
    /// language model's distribution over the shortlist has the rest).
    pub embedding_weight: f64,
    /// Temperature of the softmax over label cosines that makes the embedding distribution.
    pub embedding_temperature: f64,
    /// Entity prompts: the phrase of the answer "this candidate is not an entity", scored
    /// beside the types (`{{ not_entity }}` in the template).
    pub not_entity: String,
    /// Entity prompts: the embedding's weight in P(entity) (`embedding_weight` is its weight
    /// in the choice of type).
    pub entity_weight: f64,
    /// Entity prompts: the least probability of being an entity a kept span has.
    pub threshold: f64,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            calibrate: true,
            shortlist: 0,
            embedding_weight: 0.2,
            embedding_temperature: 0.05,
            not_entity: "common word".into(),
            entity_weight: 0.5,
            threshold: 0.5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_settings_and_version() {
        let t = PromptTemplate::parse(
            "t",
            "### user\nSay {{ text }}\n### assistant\nIt is\n### settings\ntemperature: 0.5\n",
        )
        .unwrap();
        assert_eq!(t.user, "Say {{ text }}");
        assert_eq!(t.assistant, "It is");
        assert_eq!(t.settings.temperature, 0.5);
        assert!(t.settings.calibrate);
        assert_eq!(t.settings.shortlist, 0);
        let s = PromptTemplate::parse(
            "t",
            "### user\n{{ text }}\n### settings\nshortlist: 12\nembedding_weight: 0.3\nembedding_temperature: 0.04\n",
        )
        .unwrap()
        .settings;
        assert_eq!(
            (s.shortlist, s.embedding_weight, s.embedding_temperature),
            (12, 0.3, 0.04)
        );
        assert_eq!(t.version.len(), 12);
        let other = PromptTemplate::parse("t", "### user\nSay {{ text }}\n").unwrap();
        assert_ne!(t.version, other.version);
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let err = |src: &str| PromptTemplate::parse("t", src).unwrap_err().to_string();
        assert!(err("### user\nno slot\n").contains("{{ text }}"));
        assert!(err("### bogus\n").contains("unknown section"));
        assert!(
            err("### user\n{{ text }}\n### settings\ntemperature: -1\n").contains("temperature")
        );
        assert!(err("### user\n{{ text }}\n### settings\nshortlist: 2.5\n").contains("shortlist"));
        assert!(
            err("### user\n{{ text }}\n### settings\nembedding_weight: 1.5\n")
                .contains("embedding_weight")
        );
        assert!(err("stray\n### user\n{{ text }}\n").contains("before the first section"));
        assert!(err("### user\n{{ text }}\n### settings\nthreshold: 1\n").contains("threshold"));
        assert!(
            err("### user\n{{ text }}\n### settings\nentity_weight: -0.1\n")
                .contains("entity_weight")
        );
    }

    #[test]
    fn the_mention_splits_what_follows_the_text() {
        let chat = ChatTemplate::new(
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}".into(),
            String::new(),
            String::new(),
        )
        .unwrap();
        let t = PromptTemplate::parse(
            "t",
            "### user\nText: {{ text }}\n### assistant\nSo {{ mention }} is a\n### settings\nnot_entity: plain word\nthreshold: 0.9\nentity_weight: 0.7\n",
        )
        .unwrap();
        assert_eq!(t.settings.not_entity, "plain word");
        assert_eq!((t.settings.threshold, t.settings.entity_weight), (0.9, 0.7));
        let r = t.render(&chat, &[], &[]).unwrap();
        let m = r.mention.unwrap();
        assert_eq!((r.lead.as_str(), r.after.as_str()), (" ", "\nSo"));
        assert_eq!((m.lead.as_str(), m.after.as_str()), (" ", " is a"));
        let bad = |src: &str| {
            PromptTemplate::parse("t", src)
                .unwrap()
                .render(&chat, &[], &[])
                .unwrap_err()
                .to_string()
        };
        assert!(bad("### user\n{{ mention }} {{ text }}\n").contains("after {{ text }}"));
        assert!(bad("### user\n{{ text }} {{ mention }} {{ mention }}\n").contains("at most once"));
    }
}

/// A rendered prompt, split around the item text.
#[derive(Debug, Clone)]
pub struct RenderedPrompt {
    /// Everything before the text: the same for every item, so its KV cache is shared.
    pub before: String,
    /// Everything after the text, up to where the answer begins.
    pub after: String,
    /// Spaces that stood right before the text. They are tokenized with the text, as they
    /// would be in one piece ("Review: great" is `Review`, `:`, `Ġgreat`); cached apart from
    /// it they would become a lone space token the model never saw in training.
    pub lead: String,
    /// In an entity prompt, where the candidate span goes after the text (`after` then ends
    /// where the mention begins).
    pub mention: Option<MentionSlot>,
}

#[derive(Debug, Clone)]
pub struct MentionSlot {
    /// Spaces right before the mention, tokenized with it.
    pub lead: String,
    /// Everything after the mention, up to where the answer begins.
    pub after: String,
}

impl PromptTemplate {
    pub fn builtin(prompt: Prompt) -> Result<Self, PromptError> {
        let source = match prompt {
            Prompt::Sentiment => include_str!("../../prompts/sentiment.txt"),
            Prompt::Intent => include_str!("../../prompts/intent.txt"),
            Prompt::Classify => include_str!("../../prompts/classify.txt"),
            Prompt::Ner => include_str!("../../prompts/ner.txt"),
            Prompt::Generate | Prompt::Review => {
                return Err(PromptError::Invalid {
                    name: prompt.as_str().into(),
                    message: "no built-in labeling template for this prompt".into(),
                })
            }
        };
        Self::parse(prompt.as_str(), source)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Self, PromptError> {
        let source = std::fs::read_to_string(path).map_err(|source| PromptError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| "prompt".into(), |s| s.to_string_lossy().into_owned());
        Self::parse(&name, &source)
    }

    pub fn parse(name: &str, source: &str) -> Result<Self, PromptError> {
        let invalid = |message: String| PromptError::Invalid {
            name: name.into(),
            message,
        };
        let mut sections: Vec<(String, String)> = Vec::new();
        for line in source.lines() {
            if let Some(section) = line.strip_prefix("### ") {
                sections.push((section.trim().to_string(), String::new()));
            } else if let Some((_, body)) = sections.last_mut() {
                body.push_str(line);
                body.push('\n');
            } else if !line.trim().is_empty() && !line.starts_with("{#") {
                return Err(invalid(format!("text before the first section: {line:?}")));
            }
        }
        let mut system = None;
        let mut settings = PromptSettings::default();
        let mut user = None;
        let mut assistant = String::new();
        for (section, body) in sections {
            // A section's final newline belongs to the file layout, not to the prompt.
            let body = body.strip_suffix('\n').unwrap_or(&body).to_string();
            match section.as_str() {
                "system" => system = Some(body),
                "user" => user = Some(body),
                "assistant" => assistant = body,
                "settings" => settings = parse_settings(&body).map_err(invalid)?,
                other => return Err(invalid(format!("unknown section '### {other}'"))),
            }
        }
        let user = user.ok_or_else(|| invalid("no '### user' section".into()))?;
        if !user.contains("{{ text }}") {
            return Err(invalid("the user section must contain {{ text }}".into()));
        }
        let digest = Sha256::digest(source.as_bytes());
        Ok(Self {
            name: name.into(),
            version: digest.iter().take(6).map(|b| format!("{b:02x}")).collect(),
            system,
            user,
            assistant,
            settings,
        })
    }

    /// Renders the chat prompt for a task with `labels` (classification) or `types` (NER).
    pub fn render(
        &self,
        chat: &ChatTemplate,
        labels: &[String],
        types: &[String],
    ) -> Result<RenderedPrompt, PromptError> {
        let invalid = |message: String| PromptError::Invalid {
            name: self.name.clone(),
            message,
        };
        let env = Environment::new();
        let fill = |source: &str| -> Result<String, PromptError> {
            env.render_str(
                source,
                context! {
                    text => TEXT_SLOT,
                    mention => MENTION_SLOT,
                    not_entity => self.settings.not_entity.clone(),
                    labels => labels.to_vec(),
                    types => types.to_vec()
                },
            )
            .map_err(|e| invalid(e.to_string()))
        };
        let mut messages = Vec::new();
        if let Some(system) = &self.system {
            messages.push(Message::new("system", fill(system)?));
        }
        messages.push(Message::new("user", fill(&self.user)?));
        let full = chat.render(&messages)? + &fill(&self.assistant)?;
        let mut parts = full.split(TEXT_SLOT);
        match (parts.next(), parts.next(), parts.next()) {
            (Some(before), Some(after), None) => {
                let (before, lead) = split_lead(before);
                let mut rest = after.split(MENTION_SLOT);
                let (after, mention) = match (rest.next(), rest.next(), rest.next()) {
                    (Some(after), None, _) => (after.to_string(), None),
                    (Some(middle), Some(tail), None) => {
                        let (middle, lead) = split_lead(middle);
                        let slot = MentionSlot {
                            lead,
                            after: tail.to_string(),
                        };
                        (middle, Some(slot))
                    }
                    _ => return Err(invalid("{{ mention }} must appear at most once".into())),
                };
                if full
                    .split(TEXT_SLOT)
                    .next()
                    .is_some_and(|b| b.contains(MENTION_SLOT))
                {
                    return Err(invalid("{{ mention }} must come after {{ text }}".into()));
                }
                Ok(RenderedPrompt {
                    before,
                    after,
                    lead,
                    mention,
                })
            }
            _ => Err(invalid("{{ text }} must appear exactly once".into())),
        }
    }
}

fn parse_settings(body: &str) -> Result<PromptSettings, String> {
    let mut settings = PromptSettings::default();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("settings line {line:?} is not `key: value`"))?;
        let value = value.trim();
        match key.trim() {
            "temperature" => {
                settings.temperature = value
                    .parse()
                    .ok()
                    .filter(|t: &f64| *t > 0.0)
                    .ok_or_else(|| format!("temperature {value:?} is not a positive number"))?
            }
            "calibrate" => {
                settings.calibrate = value
                    .parse()
                    .map_err(|_| format!("calibrate {value:?} is not true or false"))?
            }
            "shortlist" => {
                settings.shortlist = value
                    .parse()
                    .map_err(|_| format!("shortlist {value:?} is not a whole number"))?
            }
            "embedding_weight" => {
                settings.embedding_weight = value
                    .parse()
                    .ok()
                    .filter(|w: &f64| (0.0..=1.0).contains(w))
                    .ok_or_else(|| format!("embedding_weight {value:?} is not between 0 and 1"))?
            }
            "embedding_temperature" => {
                settings.embedding_temperature = value
                    .parse()
                    .ok()
                    .filter(|t: &f64| *t > 0.0)
                    .ok_or_else(|| {
                        format!("embedding_temperature {value:?} is not a positive number")
                    })?
            }
            "not_entity" => {
                settings.not_entity = Some(value)
                    .filter(|v| !v.is_empty())
                    .ok_or("not_entity is empty")?
                    .to_string()
            }
            "entity_weight" => {
                settings.entity_weight = value
                    .parse()
                    .ok()
                    .filter(|w: &f64| (0.0..=1.0).contains(w))
                    .ok_or_else(|| format!("entity_weight {value:?} is not between 0 and 1"))?
            }
            "threshold" => {
                settings.threshold = value
                    .parse()
                    .ok()
                    .filter(|t: &f64| (0.0..1.0).contains(t))
                    .ok_or_else(|| format!("threshold {value:?} is not in [0, 1)"))?
            }
            other => return Err(format!("unknown setting {other:?}")),
        }
    }
    Ok(settings)
}

/// Splits off the spaces that end `s`: they are tokenized with what follows them, as a word's
/// leading space is part of its token.
fn split_lead(s: &str) -> (String, String) {
    let kept = s.trim_end_matches([' ', '\t']);
    (kept.to_string(), s[kept.len()..].to_string())
}

/// Token ids of a rendered prompt around one item's text, with the text cut to `max_text`
/// tokens (the flag says whether it was cut).
pub struct ItemTokens {
    pub text: Vec<u32>,
    pub truncated: bool,
}

pub fn item_tokens(
    tok: &TextTokenizer,
    lead: &str,
    text: &str,
    max_text: usize,
) -> Result<ItemTokens, EngineError> {
    let mut ids = tok.encode_text(&format!("{lead}{text}"))?;
    let truncated = ids.len() > max_text;
    ids.truncate(max_text);
    Ok(ItemTokens {
        text: ids,
        truncated,
    })
}
