//! Zero-shot entity extraction by proposing and scoring. `proposals` offers many candidate
//! spans per text (runs of capitalised words, content words and pairs, @/# tokens); the
//! language model then answers, for each candidate, which type it is, with "not an entity"
//! (the prompt's `not_entity` phrase) as one more answer. The text is fed once; every
//! candidate is a branch after it, and every answer a branch of the label trie after that, all
//! in one tree-shaped forward, several texts to a forward. The answer distribution is
//! calibrated as classification's is (content-free inputs, the prompt's temperature).
//!
//! A candidate is kept when its probability of being an entity (one minus "not an entity")
//! reaches the prompt's `threshold`; overlapping kept candidates are resolved by that
//! probability, highest first. The type of a kept span mixes the language model's
//! distribution over the types with the embedder's: the mention alone is embedded and compared
//! by cosine with a description of each type ("person name", "creative work name"), giving
//! `w · softmax(cos / τ) + (1 − w) · LM types`, w and τ the prompt's `embedding_weight` and
//! `embedding_temperature`. A span's confidence is P(entity) × P(its type | entity).
use super::classify::{
    combine, softmax, TaskError, CONTENT_FREE, MAX_TEXT_TOKENS, PACK_ROWS, PACK_TOKENS,
};
use super::labels::{LabelSet, LabelTrie};
use super::prompt::{item_tokens, PromptError, PromptSettings, PromptTemplate};
use super::proposals::{propose, Candidate};
use crate::engine::WordState;
use crate::engine::{cosine, log_softmax_rows, KvCache, LoadedModel, WeightCopy};
pub use crate::learn::spans::Candidate as SpanCandidate;
use crate::learn::spans::{zero_shot_spans, TypedSpan, Words};
use crate::learn::LearnError;
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

/// Longest candidate scored, in tokens.
const MAX_MENTION_TOKENS: usize = 24;
/// The name of the "not an entity" answer among the types (never shown to anyone).
const NOT_ENTITY: &str = "\u{0}not-an-entity";

pub struct Extractor<'m> {
    model: &'m LoadedModel,
    pub prompt_version: String,
    types: LabelSet,
    prefix: KvCache,
    /// The spaces before the text, tokenized with it.
    lead: String,
    /// After the text, up to the mention.
    middle_ids: Vec<u32>,
    /// The spaces before the mention, tokenized with it.
    mention_lead: String,
    /// After the mention, up to where the answer begins.
    tail_ids: Vec<u32>,
    /// The types' phrases, then the `not_entity` phrase last.
    trie: LabelTrie,
    inner: Vec<usize>,
    /// ln of the mean content-free probability of each answer (zeros when not calibrating).
    bias: Vec<f64>,
    settings: PromptSettings,
    /// The embedding of each type's description (`type_description`), when the model has a
    /// sentence embedder and the prompt gives the embedding a weight.
    type_vecs: Option<Vec<Vec<f32>>>,
    max_text: usize,
}

/// One text ready to score: the part the model sees, its tokens, and its candidates.
struct Prepared<'t> {
    seen: &'t str,
    /// The text's tokens, then the prompt up to the mention.
    chain: Vec<u32>,
    candidates: Vec<Candidate>,
    /// Per candidate: its tokens, then the prompt after the mention.
    branches: Vec<Vec<u32>>,
    truncated: bool,
}

impl<'m> Extractor<'m> {
    pub fn new(
        model: &'m LoadedModel,
        template: &PromptTemplate,
        types: LabelSet,
    ) -> Result<Self, TaskError> {
        let tok = &model.tokenizer;
        let rendered = template.render(&model.chat, &types.phrases, &types.phrases)?;
        let invalid = |message: &str| PromptError::Invalid {
            name: template.name.clone(),
            message: message.into(),
        };
        let slot = rendered
            .mention
            .clone()
            .ok_or_else(|| invalid("an entity prompt needs {{ mention }} after {{ text }}"))?;
        let settings = template.settings.clone();
        let prefix_ids = tok.encode_prompt(&rendered.before)?;
        let middle_ids = tok.encode_prompt(&rendered.after)?;
        let tail_ids = tok.encode_prompt(&slot.after)?;
        if tail_ids.is_empty() {
            return Err(invalid("an entity prompt needs text after {{ mention }}").into());
        }
        let answer_lead = match slot.after.chars().last() {
            Some(c) if !c.is_whitespace() => " ",
            _ => "",
        };
        let mut names = types.names.clone();
        names.push(NOT_ENTITY.into());
        let mut phrases = types.phrases.clone();
        phrases.push(settings.not_entity.clone());
        let answers = LabelSet::new(names, phrases)?;
        let sequences = answers
            .phrases
            .iter()
            .map(|p| tok.encode_text(&format!("{answer_lead}{p}")))
            .collect::<Result<Vec<_>, _>>()?;
        let trie = LabelTrie::build(&answers, &sequences)?;
        let depth = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let context = model.transformer.config().context_length;
        let overhead =
            prefix_ids.len() + middle_ids.len() + MAX_MENTION_TOKENS + tail_ids.len() + depth + 1;
        let max_text = context
            .checked_sub(overhead)
            .filter(|&n| n > 0)
            .ok_or(TaskError::NoRoom(context))?
            .min(MAX_TEXT_TOKENS);
        let type_vecs = match &model.embedder {
            Some(e) if settings.embedding_weight > 0.0 => {
                let mut descriptions: Vec<String> =
                    types.phrases.iter().map(|p| type_description(p)).collect();
                descriptions.push(settings.not_entity.clone());
                let refs: Vec<&str> = descriptions.iter().map(String::as_str).collect();
                Some(e.embed(&refs)?.0)
            }
            _ => None,
        };
        let mut this = Self {
            model,
            prompt_version: template.version.clone(),
            types,
            prefix: model.transformer.prefill(&prefix_ids)?,
            lead: rendered.lead.clone(),
            middle_ids,
            mention_lead: slot.lead,
            tail_ids,
            inner: trie.inner_nodes(),
            bias: vec![0.0; answers.len()],
            trie,
            settings,
            type_vecs,
            max_text,
        };
        if this.settings.calibrate {
            // Content-free texts, each its own whole mention.
            let free = CONTENT_FREE
                .iter()
                .map(|t| {
                    let ids = item_tokens(tok, &this.lead, t, this.max_text)?.text;
                    this.prepared(
                        t,
                        ids,
                        false,
                        vec![Candidate {
                            start: 0,
                            end: t.len(),
                        }],
                    )
                })
                .collect::<Result<Vec<_>, TaskError>>()?;
            let mut mean = vec![0.0; answers.len()];
            for lp in this.logprobs(&free)?.iter().flatten() {
                for (m, p) in mean.iter_mut().zip(softmax(lp)) {
                    *m += p / CONTENT_FREE.len() as f64;
                }
            }
            this.bias = mean.iter().map(|p| p.max(1e-12).ln()).collect();
        }
        Ok(this)
    }

    /// The entities of each text, and whether the text was cut to fit the context.
    pub fn extract(&self, texts: &[&str]) -> Result<Vec<(Vec<Entity>, bool)>, TaskError> {
        let scored = self.score(texts)?;
        Ok(texts
            .iter()
            .zip(scored)
            .map(|(text, s)| {
                let shown = zero_shot_spans(&s.candidates, self.settings.threshold);
                (entities(text, &shown, &self.types.names), s.truncated)
            })
            .collect())
    }

    /// Every candidate of each text with its probability of being each type (in character
    /// offsets), before any is kept or dropped: what a span learner mixes with its own.
    pub fn score(&self, texts: &[&str]) -> Result<Vec<ScoredText>, TaskError> {
        let mut prepared = texts
            .iter()
            .map(|t| self.prepare(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cosines = self.cosines(&prepared)?;
        if let Some(cosines) = &mut cosines {
            self.prune(&mut prepared, cosines);
        }
        let logprobs = self.logprobs(&prepared)?;
        let answers = self.answers(&logprobs, cosines.as_deref());
        let n = self.types.len();
        Ok(prepared
            .iter()
            .zip(answers)
            .map(|(p, answers)| {
                let chars = |byte: usize| p.seen[..byte].chars().count();
                let candidates = p
                    .candidates
                    .iter()
                    .zip(answers)
                    .map(|(c, probs)| SpanCandidate {
                        start: chars(c.start),
                        end: chars(c.end),
                        p: probs[..n].to_vec(),
                    })
                    .collect();
                ScoredText {
                    candidates,
                    truncated: p.truncated,
                }
            })
            .collect())
    }

    /// Below this probability of being an entity, a zero-shot candidate is not shown.
    pub fn threshold(&self) -> f64 {
        self.settings.threshold
    }

    pub fn types(&self) -> &LabelSet {
        &self.types
    }
}

/// A text's candidates, scored.
#[derive(Debug, Clone)]
pub struct ScoredText {
    pub candidates: Vec<SpanCandidate>,
    pub truncated: bool,
}

/// A text's word states as the span learner reads them: the embedder's vector of each word,
/// then its shape (`SHAPE` flags). The embedder is uncased, and case is much of what marks a
/// name, so the shape puts it back.
pub fn words(text: &str, states: &[WordState]) -> Result<Words, LearnError> {
    let chars: Vec<char> = text.chars().collect();
    let dim = states.first().map_or(0, |w| w.vector.len() + SHAPE);
    let mut words = Words::new(dim);
    let mut state = Vec::with_capacity(dim);
    for (i, w) in states.iter().enumerate() {
        let piece = chars.get(w.start..w.end).unwrap_or_default();
        state.clear();
        state.extend_from_slice(&w.vector);
        state.extend(shape(piece, i == 0).map(|f| f32::from(f) * SHAPE_SCALE));
        words.push(w.start, w.end, &state)?;
    }
    Ok(words)
}

/// Shape flags per word.
const SHAPE: usize = 5;
/// A set flag's value beside the unit-length state (whose parts are ~0.05 each): 0.2 had the
/// best cross-validation span F1 within the training halves of WNUT-17 dev of 0, 0.2 and 1
/// (BENCHMARKS.md, "Learning spans from answers").
const SHAPE_SCALE: f32 = 0.2;

/// A word's shape: starts upper-case, is all upper-case (two letters or more), has a digit,
/// is a @ or # token, opens the text (where every word is capitalised).
fn shape(word: &[char], first: bool) -> [u8; SHAPE] {
    let letters = word.iter().filter(|c| c.is_alphabetic()).count();
    [
        word.first().is_some_and(|c| c.is_uppercase()),
        letters >= 2 && word.iter().all(|c| !c.is_lowercase()),
        word.iter().any(|c| c.is_numeric()),
        matches!(word.first(), Some('@' | '#')),
        first,
    ]
    .map(u8::from)
}

/// The entities of `text` for chosen spans (character offsets) of the types `names`.
pub fn entities(text: &str, spans: &[(TypedSpan, f64)], names: &[String]) -> Vec<Entity> {
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    spans
        .iter()
        .filter_map(|(s, p)| {
            let piece = text.get(*bytes.get(s.start)?..*bytes.get(s.end)?)?;
            Some(Entity {
                start: s.start,
                end: s.end,
                label: names.get(s.kind)?.clone(),
                text: piece.to_string(),
                confidence: *p,
            })
        })
        .collect()
}

impl<'m> Extractor<'m> {
    fn calibrated(&self, lp: &[f64]) -> Vec<f64> {
        lp.iter()
            .zip(&self.bias)
            .map(|(l, b)| (l - b) / self.settings.temperature)
            .collect()
    }

    fn prepare<'t>(&self, text: &'t str) -> Result<Prepared<'t>, TaskError> {
        let item = item_tokens(&self.model.tokenizer, &self.lead, text, self.max_text)?;
        // Only the part the model saw can hold entities.
        let seen = match item.truncated {
            true => {
                let decoded = self.model.tokenizer.decode(&item.text);
                let decoded = decoded.strip_prefix(self.lead.as_str()).unwrap_or(&decoded);
                &text[..common_prefix_len(text, decoded)]
            }
            false => text,
        };
        self.prepared(seen, item.text, item.truncated, propose(seen))
    }

    fn prepared<'t>(
        &self,
        seen: &'t str,
        text_ids: Vec<u32>,
        truncated: bool,
        proposals: Vec<Candidate>,
    ) -> Result<Prepared<'t>, TaskError> {
        let mut chain = text_ids;
        chain.extend_from_slice(&self.middle_ids);
        let (mut candidates, mut branches) = (Vec::new(), Vec::new());
        for c in proposals {
            let mention = &seen[c.start..c.end];
            let mut ids = self
                .model
                .tokenizer
                .encode_text(&format!("{}{mention}", self.mention_lead))?;
            if ids.len() > MAX_MENTION_TOKENS {
                continue;
            }
            ids.extend_from_slice(&self.tail_ids);
            candidates.push(c);
            branches.push(ids);
        }
        Ok(Prepared {
            seen,
            chain,
            candidates,
            branches,
            truncated,
        })
    }

    /// The uncalibrated log-probability of every answer for every candidate of every text,
    /// packing texts into forwards of about PACK_TOKENS tokens and PACK_ROWS logit rows.
    fn logprobs(&self, texts: &[Prepared]) -> Result<Vec<Vec<Vec<f64>>>, TaskError> {
        let cost = |p: &Prepared| match p.candidates.len() {
            0 => (0, 0), // nothing to score: the text is not fed at all
            k => (
                p.chain.len()
                    + p.branches.iter().map(Vec::len).sum::<usize>()
                    + k * self.inner.len(),
                k * (1 + self.inner.len()),
            ),
        };
        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        while start < texts.len() {
            let (mut end, mut tokens, mut rows) = (start, 0, 0);
            while end < texts.len() {
                let (t, r) = cost(&texts[end]);
                if end > start && (tokens + t > PACK_TOKENS || rows + r > PACK_ROWS) {
                    break;
                }
                (tokens, rows) = (tokens + t, rows + r);
                end += 1;
            }
            out.extend(self.forward_pack(&texts[start..end])?);
            start = end;
        }
        Ok(out)
    }

    fn forward_pack(&self, texts: &[Prepared]) -> Result<Vec<Vec<Vec<f64>>>, TaskError> {
        let (mut tokens, mut parents, mut want) = (Vec::new(), Vec::new(), Vec::new());
        // Per text, per candidate: the row of the answer's start and of each inner trie node.
        let mut layout: Vec<Vec<(usize, Vec<Option<usize>>)>> = Vec::with_capacity(texts.len());
        for p in texts {
            let mut rows_of = Vec::with_capacity(p.candidates.len());
            if p.candidates.is_empty() {
                layout.push(rows_of);
                continue;
            }
            let base = tokens.len();
            tokens.extend_from_slice(&p.chain);
            parents.extend((base..tokens.len()).map(|i| (i > base).then(|| i - 1)));
            let chain_end = (tokens.len() > base).then(|| tokens.len() - 1);
            for branch in &p.branches {
                let mut parent = chain_end;
                for &t in branch {
                    parents.push(parent);
                    tokens.push(t);
                    parent = Some(tokens.len() - 1);
                }
                // The tail is never empty, so the branch has a last token.
                let answer = tokens.len() - 1;
                let answer_row = want.len();
                want.push(answer);
                let mut node_pos = vec![usize::MAX; self.trie.nodes.len()];
                let mut node_row = vec![None; self.trie.nodes.len()];
                for &n in &self.inner {
                    let node = &self.trie.nodes[n];
                    node_pos[n] = tokens.len();
                    parents.push(Some(node.parent.map_or(answer, |q| node_pos[q])));
                    tokens.push(node.token);
                    node_row[n] = Some(want.len());
                    want.push(tokens.len() - 1);
                }
                rows_of.push((answer_row, node_row));
            }
            layout.push(rows_of);
        }
        if tokens.is_empty() {
            return Ok(layout.iter().map(|_| Vec::new()).collect());
        }
        let logits = self.model.transformer.forward_tree(
            WeightCopy::Scoring,
            &self.prefix,
            &tokens,
            &parents,
            &want,
        )?;
        let rows = log_softmax_rows(&logits)?;
        Ok(layout
            .iter()
            .map(|cands| {
                cands
                    .iter()
                    .map(|(answer_row, node_row)| {
                        self.trie.score(&rows[*answer_row], &|n| node_row[n], &rows)
                    })
                    .collect()
            })
            .collect())
    }

    /// The cosine between each candidate's mention and each answer's description (the types,
    /// then "not an entity"), when the model has a sentence embedder and the prompt gives it a
    /// weight. The mention is embedded alone: with its sentence around it, the embedding is
    /// mostly about the sentence, and typing was worse (BENCHMARKS.md, "Zero-shot quality").
    fn cosines(&self, texts: &[Prepared]) -> Result<Option<Vec<Vec<Vec<f64>>>>, TaskError> {
        let (Some(embedder), Some(answer_vecs)) = (&self.model.embedder, &self.type_vecs) else {
            return Ok(None);
        };
        let mentions: Vec<&str> = texts
            .iter()
            .flat_map(|p| p.candidates.iter().map(|c| &p.seen[c.start..c.end]))
            .collect();
        let vecs = match mentions.is_empty() {
            true => Vec::new(),
            false => embedder.embed(&mentions)?.0,
        };
        let mut vecs = vecs.iter();
        Ok(Some(
            texts
                .iter()
                .map(|p| {
                    vecs.by_ref()
                        .take(p.candidates.len())
                        .map(|v| answer_vecs.iter().map(|t| cosine(v, t)).collect())
                        .collect()
                })
                .collect(),
        ))
    }

    /// Drops the candidates the language model cannot carry over the threshold: P(entity) is
    /// at most 1 − w · (the embedding's share of "not an entity"), w the embedding's weight in
    /// it. The answer is the same as scoring them all; on WNUT-17 most candidates go.
    fn prune(&self, texts: &mut [Prepared], cosines: &mut [Vec<Vec<f64>>]) {
        let w = self.settings.entity_weight;
        for (p, cos) in texts.iter_mut().zip(cosines.iter_mut()) {
            let keep: Vec<bool> = cos
                .iter()
                .map(|c| {
                    let scaled: Vec<f64> = c
                        .iter()
                        .map(|x| x / self.settings.embedding_temperature)
                        .collect();
                    let none = softmax(&scaled).last().copied().unwrap_or(0.0);
                    1.0 - w * none >= self.settings.threshold
                })
                .collect();
            let mut k = keep.iter();
            p.candidates.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            p.branches.retain(|_| *k.next().unwrap_or(&true));
            let mut k = keep.iter();
            cos.retain(|_| *k.next().unwrap_or(&true));
        }
    }

    /// The distribution over the answers (the types, then "not an entity") of each candidate:
    /// the language model's, calibrated, mixed with the softmax of the cosines to the
    /// answers' descriptions when there are any: with `embedding_weight` for the choice of
    /// type and `entity_weight` for P(entity).
    fn answers(
        &self,
        logprobs: &[Vec<Vec<f64>>],
        cosines: Option<&[Vec<Vec<f64>>]>,
    ) -> Vec<Vec<Vec<f64>>> {
        let lm = logprobs
            .iter()
            .map(|c| c.iter().map(|lp| softmax(&self.calibrated(lp))).collect());
        let Some(cosines) = cosines else {
            return lm.collect();
        };
        let entity_settings = PromptSettings {
            embedding_weight: self.settings.entity_weight,
            ..self.settings.clone()
        };
        lm.zip(cosines)
            .map(|(cands, cos): (Vec<Vec<f64>>, _)| {
                cands
                    .iter()
                    .zip(cos)
                    .map(|(q, c)| {
                        let all: Vec<usize> = (0..c.len()).collect();
                        let typed = combine(q, &all, c, &self.settings);
                        let entity = combine(q, &all, c, &entity_settings);
                        // The types' shares from one mix, "not an entity" from the other.
                        let none = entity.last().copied().unwrap_or(0.0);
                        let typed_none = typed.last().copied().unwrap_or(0.0);
                        let scale = (1.0 - none) / (1.0 - typed_none).max(1e-12);
                        let mut out: Vec<f64> = typed.iter().map(|t| t * scale).collect();
                        if let Some(last) = out.last_mut() {
                            *last = none;
                        }
                        out
                    })
                    .collect()
            })
            .collect()
    }
}

/// What a type is compared with by embedding: its phrase read as a kind of name ("person
/// name", "creative work name"), since a mention is a name, not a description of its type.
fn type_description(phrase: &str) -> String {
    format!("{} name", phrase.replace(['-', '_'], " ").trim())
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .find(|((_, ca), cb)| ca != cb)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::classify::{argmax, softmax};

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
    #[test]
    fn words_carry_their_shape_after_the_state() {
        let text = "Visit @Ana in ÉCOLE 2day";
        let at = |start: usize, end: usize| WordState {
            start,
            end,
            vector: vec![0.6, 0.8],
        };
        let w = words(
            text,
            &[at(0, 5), at(6, 10), at(11, 13), at(14, 19), at(20, 24)],
        )
        .expect("words");
        assert_eq!(w.dim, 2 + SHAPE);
        let flags = |i: usize| -> Vec<u8> {
            w.states[i * w.dim + 2..(i + 1) * w.dim]
                .iter()
                .map(|&v| (v / SHAPE_SCALE).round() as u8)
                .collect()
        };
        assert_eq!(w.states[..2], [0.6, 0.8]);
        assert_eq!(flags(0), [1, 0, 0, 0, 1]); // capitalised, first
        assert_eq!(flags(1), [0, 0, 0, 1, 0]); // @ token
        assert_eq!(flags(2), [0, 0, 0, 0, 0]);
        assert_eq!(flags(3), [1, 1, 0, 0, 0]); // all capitals, past ASCII
        assert_eq!(flags(4), [0, 0, 1, 0, 0]); // a digit
                                               // Offsets past the text give a word with no shape rather than a panic.
        assert!(words(text, &[at(30, 40)]).is_ok());
    }
}
