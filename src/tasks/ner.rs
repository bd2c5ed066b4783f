//! Zero-shot entity extraction in two steps. First constrained decoding: the model lists
//! entities one per line, but at every step it may only choose tokens that keep the entity a
//! substring of the input starting and ending at word boundaries, so every span is real text
//! with exact character offsets. Spans made only of function words ("I", "it", "the") or
//! without a letter are then dropped from the answer; they stay in the list the model
//! continues from, so decoding itself is unchanged. A 135M model finds mentions far better
//! from type-free examples than it names types while writing them.
//!
//! Then each span is typed. The language model scores the types like any classification
//! (`prompts/ner-type.txt`, uncalibrated). When the model has a sentence embedder, the mention
//! alone is also embedded and compared by cosine with a description of each type built from
//! its phrase ("person name", "creative work name"), and the answer is
//! `w · softmax(cos / τ) + (1 − w) · LM distribution`, w and τ being the typing prompt's
//! `embedding_weight` and `embedding_temperature` (0.9 and 0.05), so they are versioned with
//! it. The 135M model types almost everything "person"; the embedder tells names of places,
//! products and works apart far better (BENCHMARKS.md, "Zero-shot quality").
use super::classify::{argmax, combine, Classifier, ClassifierOptions, TaskError};
use super::labels::LabelSet;
use super::prompt::{item_tokens, PromptSettings, PromptTemplate};
use crate::engine::{cosine, log_softmax_rows, Job, KvCache, LoadedModel};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    /// Offsets in Unicode scalar values, end exclusive.
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub text: String,
    pub confidence: f64,
}

/// Most entities one text may yield: a small model can otherwise repeat itself until the
/// context runs out.
const MAX_ENTITIES: usize = 12;
/// Longest entity, in tokens.
const MAX_SPAN_TOKENS: usize = 16;
/// A span whose best next step has a log-probability below this is a dead end.
const DEAD_END: f32 = -8.0;
const MAX_RETRIES: usize = 3;

pub struct Extractor<'m> {
    model: &'m LoadedModel,
    pub prompt_version: String,
    prefix: KvCache,
    after_ids: Vec<u32>,
    lead: String,
    /// Token ids whose bytes start with each byte value.
    by_first_byte: Vec<Vec<u32>>,
    /// Scores each span's type with the language model (boxed: it is large, and `Labeler`
    /// holds an extractor or a classifier side by side).
    typer: Box<Classifier<'m>>,
    /// The embedding of each type's description (`type_description`), when the model has a
    /// sentence embedder and the typing prompt gives the embedding a weight.
    type_vecs: Option<Vec<Vec<f32>>>,
    /// The typing prompt's settings: the embedding's weight and temperature.
    type_settings: PromptSettings,
    /// The token that ends an entity's line.
    newline: u32,
    /// Tokens the model uses to say "nothing (more)" at the start of a line: end of turn,
    /// a blank line, or "none".
    stop: Vec<u32>,
    max_text: usize,
}

impl<'m> Extractor<'m> {
    /// `template` lists the entities; `type_template` names the type of one of them.
    pub fn new(
        model: &'m LoadedModel,
        template: &PromptTemplate,
        type_template: &PromptTemplate,
        types: LabelSet,
    ) -> Result<Self, TaskError> {
        let tok = &model.tokenizer;
        let rendered = template.render(&model.chat, &[], &types.names)?;
        let prefix_ids = tok.encode_prompt(&rendered.before)?;
        let prefix = model.transformer.prefill(&prefix_ids)?;
        let after_ids = tok.encode_prompt(&rendered.after)?;
        let mut by_first_byte = vec![Vec::new(); 256];
        for id in 0..tok.vocab_size() as u32 {
            if tok.stop_ids().contains(&id) {
                continue;
            }
            if let Some(&b) = tok.bytes(id).first() {
                by_first_byte[b as usize].push(id);
            }
        }
        let newline = match tok.encode_text("\n")?.as_slice() {
            [id] => *id,
            _ => {
                return Err(TaskError::Engine(crate::engine::EngineError::Tokenizer(
                    "newline is not one token".into(),
                )))
            }
        };
        // A blank line ends a list as well as the end of the turn does.
        let mut stop = tok.stop_ids().to_vec();
        stop.push(newline);
        for word in ["none", "None"] {
            if let Some(&first) = tok.encode_text(word)?.first() {
                stop.push(first);
            }
        }
        let context = model.transformer.config().context_length;
        let budget = MAX_ENTITIES * (MAX_SPAN_TOKENS + 8);
        let max_text = context
            .checked_sub(prefix_ids.len() + after_ids.len() + budget)
            .filter(|&n| n > 0)
            .ok_or(TaskError::NoRoom(context))?
            .min(super::classify::MAX_TEXT_TOKENS);
        let type_settings = type_template.settings.clone();
        let type_vecs = match &model.embedder {
            Some(e) if type_settings.embedding_weight > 0.0 => {
                let descriptions: Vec<String> =
                    types.phrases.iter().map(|p| type_description(p)).collect();
                let refs: Vec<&str> = descriptions.iter().map(String::as_str).collect();
                Some(e.embed(&refs)?.0)
            }
            _ => None,
        };
        let typer = Box::new(Classifier::new(
            model,
            type_template,
            types,
            ClassifierOptions::default(),
        )?);
        Ok(Self {
            model,
            prompt_version: format!("{}+{}", template.version, type_template.version),
            prefix,
            after_ids,
            lead: rendered.lead.clone(),
            by_first_byte,
            typer,
            type_vecs,
            type_settings,
            newline,
            stop,
            max_text,
        })
    }

    /// Entities in `text`, and whether the text was cut to fit the context.
    pub fn extract(&self, text: &str) -> Result<(Vec<Entity>, bool), TaskError> {
        let item = item_tokens(&self.model.tokenizer, &self.lead, text, self.max_text)?;
        // Only the part the model saw can hold entities.
        let seen = match item.truncated {
            true => {
                let decoded = self.model.tokenizer.decode(&item.text);
                decoded
                    .strip_prefix(self.lead.as_str())
                    .unwrap_or(&decoded)
                    .to_string()
            }
            false => text.to_string(),
        };
        let seen = &text[..common_prefix_len(text, &seen)];
        let bounds = Boundaries::of(seen);
        let mut feed: Vec<u32> = item.text.clone();
        feed.extend_from_slice(&self.after_ids);
        let mut session = Session {
            x: self,
            cache: self.prefix.clone(),
            dist: Vec::new(),
        };
        session.feed(&feed)?;

        let mut spans: Vec<Span> = Vec::new();
        while spans.len() < MAX_ENTITIES {
            let Some(span) = session.span(seen, &bounds)? else {
                break;
            };
            if spans.iter().any(|s| s.start == span.start) {
                break; // a repeated entity means the model has started to loop
            }
            session.feed(&[self.newline])?;
            spans.push(span);
        }
        // Pronouns and other closed-class words stay in the list the model continues from
        // (taking them out would change what it writes next) but are not entities.
        spans.retain(|s| !is_function_phrase(&seen[s.start..s.end]));
        let types = self.type_spans(seen, &spans)?;
        let mut entities: Vec<Entity> = spans
            .iter()
            .zip(types)
            .map(|(span, (label, confidence))| {
                let start = seen[..span.start].chars().count();
                let piece = &seen[span.start..span.end];
                Entity {
                    start,
                    end: start + piece.chars().count(),
                    label,
                    text: piece.to_string(),
                    confidence: span.logprob.exp() * confidence,
                }
            })
            .collect();
        entities.sort_by_key(|e| (e.start, e.end));
        Ok((entities, item.truncated))
    }
}

impl Extractor<'_> {
    /// The type of each span, with its probability: the language model's distribution over
    /// the types, mixed with the softmax of the cosines between the mention's embedding and
    /// each type's description when the model has a sentence embedder.
    fn type_spans(&self, text: &str, spans: &[Span]) -> Result<Vec<(String, f64)>, TaskError> {
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        let questions: Vec<String> = spans
            .iter()
            .map(|s| format!("Text: {text}\nEntity: {}", &text[s.start..s.end]))
            .collect();
        let refs: Vec<&str> = questions.iter().map(String::as_str).collect();
        let lm = self.typer.classify(&refs)?;
        let (Some(embedder), Some(type_vecs)) = (&self.model.embedder, &self.type_vecs) else {
            return Ok(lm.into_iter().map(|p| (p.label, p.confidence)).collect());
        };
        // The mention alone: with its sentence around it, the embedding is mostly about the
        // sentence, and typing was worse (BENCHMARKS.md, "Zero-shot quality").
        let mentions: Vec<&str> = spans.iter().map(|s| &text[s.start..s.end]).collect();
        let (vecs, _) = embedder.embed(&mentions)?;
        let names = &self.typer.labels.names;
        // Every type is scored by the language model: its "shortlist" is the whole set.
        let all: Vec<usize> = (0..names.len()).collect();
        Ok(lm
            .iter()
            .zip(&vecs)
            .map(|(p, v)| {
                let cosines: Vec<f64> = type_vecs.iter().map(|t| cosine(v, t)).collect();
                let probs: Vec<f64> = p.scores.iter().map(|(_, q)| *q).collect();
                let mixed = combine(&probs, &all, &cosines, &self.type_settings);
                let best = argmax(&mixed);
                (names[best].clone(), mixed[best])
            })
            .collect())
    }
}

/// What a type is compared with by embedding: its phrase read as a kind of name ("person
/// name", "creative work name"), since a mention is a name, not a description of its type.
fn type_description(phrase: &str) -> String {
    format!("{} name", phrase.replace(['-', '_'], " ").trim())
}

/// Pronouns, determiners, prepositions, conjunctions, auxiliaries and a few interjections and
/// deictic words: a span made only of these is never a name. The 135M model lists "I" in a
/// third of its answers.
#[rustfmt::skip]
const FUNCTION_WORDS: &[&str] = &[
    "i", "me", "my", "mine", "myself", "you", "your", "yours", "yourself", "u", "ur", "he",
    "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself", "we", "us",
    "our", "ours", "ourselves", "they", "them", "their", "theirs", "themselves", "this", "that",
    "these", "those", "who", "whom", "whose", "which", "what", "someone", "somebody",
    "something", "anyone", "anybody", "anything", "everyone", "everybody", "everything",
    "nobody", "nothing", "one", "a", "an", "the", "some", "any", "all", "every", "each", "no",
    "both", "either", "neither", "another", "other", "such", "many", "much", "more", "most",
    "of", "in", "on", "at", "to", "from", "by", "with", "about", "for", "into", "onto", "over",
    "under", "after", "before", "between", "through", "during", "without", "up", "down", "out",
    "off", "than", "like", "and", "or", "but", "nor", "so", "yet", "if", "because", "while",
    "when", "where", "how", "why", "then", "as", "be", "am", "is", "are", "was", "were", "been",
    "being", "do", "does", "did", "have", "has", "had", "would", "shall", "should",
    "can", "could", "might", "must", "not", "s", "t", "ll", "re", "ve", "d", "m",
    "here", "there", "now", "today", "tonight", "tomorrow", "yesterday", "yes", "yeah", "ok",
    "okay", "oh", "hey", "hi", "hello", "please", "thanks", "lol", "very", "just", "also",
    "too", "only", "really",
];

/// Whether `span` holds no name: no letter at all, or only function words. A word in
/// capitals of two letters or more is an acronym ("US", "IT"), not the function word.
fn is_function_phrase(span: &str) -> bool {
    if !span.chars().any(char::is_alphabetic) {
        return true;
    }
    let acronym = |w: &str| w.chars().count() > 1 && w.chars().all(char::is_uppercase);
    span.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| !acronym(w) && FUNCTION_WORDS.contains(&w.to_lowercase().as_str()))
}

struct Span {
    start: usize,
    end: usize,
    logprob: f64,
}

/// One text being decoded: the cache so far and the next-token distribution.
struct Session<'a, 'm> {
    x: &'a Extractor<'m>,
    cache: KvCache,
    dist: Vec<f32>,
}

impl Session<'_, '_> {
    fn feed(&mut self, tokens: &[u32]) -> Result<(), TaskError> {
        if tokens.is_empty() {
            return Ok(());
        }
        // Many tokens at once are compute-bound (f32 weights); one at a time, memory-bound.
        let job = if tokens.len() > 1 {
            Job::Scoring
        } else {
            Job::Generation
        };
        let last = tokens.len() - 1;
        let (logits, kv) =
            self.x
                .model
                .transformer
                .forward_chain(job, &self.cache, tokens, &[last])?;
        self.cache = self.cache.extend(&kv)?;
        self.dist = log_softmax_rows(&logits)?.remove(0);
        Ok(())
    }

    /// Decodes one entity, or None when the model prefers to stop. A first token that leads
    /// only to unlikely text (the model wanted "iPhone", the text allows only "is") is taken
    /// back and banned, up to MAX_RETRIES times.
    fn span(&mut self, text: &str, bounds: &Boundaries) -> Result<Option<Span>, TaskError> {
        let (cache, dist) = (self.cache.clone(), self.dist.clone());
        let mut banned = Vec::new();
        for _ in 0..=MAX_RETRIES {
            match self.try_span(text, bounds, &banned)? {
                Attempt::Done(span) => return Ok(span),
                Attempt::DeadEnd(first) => {
                    banned.push(first);
                    self.cache = cache.clone();
                    self.dist = dist.clone();
                }
            }
        }
        Ok(None)
    }

    fn try_span(
        &mut self,
        text: &str,
        bounds: &Boundaries,
        banned: &[u32],
    ) -> Result<Attempt, TaskError> {
        let bytes = text.as_bytes();
        let mut starts: Vec<usize> = bounds.starts.clone();
        let mut len = 0usize;
        let mut logprob = 0f64;
        let mut first = None;
        for step in 0..=MAX_SPAN_TOKENS {
            let ends_here: Vec<usize> = starts
                .iter()
                .copied()
                .filter(|&s| bounds.is_end(s + len))
                .collect();
            let mut options: Vec<(u32, f32)> = Vec::new();
            if step < MAX_SPAN_TOKENS {
                let mut seen = std::collections::HashSet::new();
                for &s in &starts {
                    let Some(&b) = bytes.get(s + len) else {
                        continue;
                    };
                    for &id in &self.x.by_first_byte[b as usize] {
                        if (step > 0 || !banned.contains(&id))
                            && bytes[s + len..].starts_with(self.x.model.tokenizer.bytes(id))
                            && seen.insert(id)
                        {
                            options.push((id, self.dist[id as usize]));
                        }
                    }
                }
            }
            // Ending the line, or, before anything is written, stopping.
            let close_lp = match (step, ends_here.is_empty()) {
                (0, _) => logsumexp(self.x.stop.iter().map(|&t| self.dist[t as usize])),
                (_, false) => self.dist[self.x.newline as usize],
                _ => f32::NEG_INFINITY,
            };
            let norm = logsumexp(options.iter().map(|o| o.1).chain([close_lp]));
            let best = options.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
            let best_lp = best.map_or(f32::NEG_INFINITY, |b| b.1).max(close_lp);
            if let (Some(first), true) = (first, best_lp < DEAD_END) {
                return Ok(Attempt::DeadEnd(first));
            }
            match best {
                Some((id, lp)) if lp > close_lp => {
                    logprob += (lp - norm) as f64;
                    let piece = self.x.model.tokenizer.bytes(id);
                    starts.retain(|&s| bytes[s + len..].starts_with(piece));
                    len += piece.len();
                    first.get_or_insert(id);
                    self.feed(&[id])?;
                }
                _ if step == 0 || ends_here.is_empty() => return Ok(Attempt::Done(None)),
                _ => {
                    logprob += (close_lp - norm) as f64;
                    let start = ends_here[0];
                    return Ok(Attempt::Done(Some(Span {
                        start,
                        end: start + len,
                        logprob,
                    })));
                }
            }
        }
        Ok(Attempt::Done(None))
    }
}

enum Attempt {
    Done(Option<Span>),
    /// Every way on from here is unlikely; the span began with this token.
    DeadEnd(u32),
}

fn logsumexp(values: impl Iterator<Item = f32>) -> f32 {
    let v: Vec<f32> = values.collect();
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f32>().ln()
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

/// Where an entity may start and end, as byte offsets: at word boundaries, so a span never
/// cuts a word in two.
struct Boundaries {
    starts: Vec<usize>,
    ends: Vec<bool>,
}

impl Boundaries {
    fn of(text: &str) -> Self {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut starts = Vec::new();
        let mut ends = vec![false; text.len() + 1];
        for (k, &(i, c)) in chars.iter().enumerate() {
            let prev = k.checked_sub(1).map(|p| chars[p].1);
            let next = chars.get(k + 1).map(|n| n.1);
            if !c.is_whitespace()
                && prev.is_none_or(|p| !p.is_alphanumeric() || p.is_whitespace())
                && (c.is_alphanumeric() || prev.is_none_or(char::is_whitespace))
            {
                starts.push(i);
            }
            // A span may end after a letter or digit that ends a word ("Hospital ." ends
            // before the dot, "bob," before the comma).
            let end = i + c.len_utf8();
            if c.is_alphanumeric() && next.is_none_or(|n| !n.is_alphanumeric()) {
                ends[end] = true;
            }
        }
        Self { starts, ends }
    }

    fn is_end(&self, pos: usize) -> bool {
        self.ends.get(pos).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::classify::softmax;

    #[test]
    fn boundaries_follow_words() {
        let b = Boundaries::of("Hi @bob, U.S. é");
        assert_eq!(b.starts, vec![0, 3, 4, 9, 11, 14]);
        assert!(
            b.is_end(2)
                && b.is_end(7)
                && !b.is_end(8)
                && b.is_end(12)
                && !b.is_end(13)
                && b.is_end(16)
        );
        assert!(!Boundaries::of("Hospital .").is_end(10));
        assert!(!b.is_end(5));
    }

    #[test]
    fn function_words_are_not_names() {
        for span in ["I", "i", "It", "the", "an", "Am I", "2", "1 ."] {
            assert!(is_function_phrase(span), "{span}");
        }
        for span in [
            "Trump",
            "Game of Thrones",
            "S 8",
            "The View",
            "iPhone",
            "US",
            "Will",
        ] {
            assert!(!is_function_phrase(span), "{span}");
        }
    }

    #[test]
    fn types_are_described_as_names() {
        assert_eq!(type_description("creative-work"), "creative work name");
        assert_eq!(type_description("person"), "person name");
    }

    #[test]
    fn the_embedding_decides_unless_unsure() {
        let s = PromptSettings {
            embedding_weight: 0.9,
            embedding_temperature: 0.05,
            ..PromptSettings::default()
        };
        let mix_types = |lm: &[f64], cosines: &[f64]| combine(lm, &[0, 1], cosines, &s);
        // The language model prefers type 0, the embedding clearly type 1.
        let p = mix_types(&[0.8, 0.2], &[0.30, 0.45]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(argmax(&p), 1);
        let e = softmax(&[6.0, 9.0]);
        assert!((p[0] - (0.9 * e[0] + 0.1 * 0.8)).abs() < 1e-12);
        // Equal cosines leave the choice to the language model.
        assert_eq!(argmax(&mix_types(&[0.8, 0.2], &[0.4, 0.4])), 0);
    }

    #[test]
    fn common_prefix_stops_at_a_char() {
        assert_eq!(common_prefix_len("héllo", "hé"), 3);
        assert_eq!(common_prefix_len("abc", "abd"), 2);
    }
}
