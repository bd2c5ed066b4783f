//! Preference pairs out, one JSON object per line, in the shapes trainers take as they are:
//!
//! - `dpo`: TRL's standard preference format, `{"prompt": str, "chosen": str, "rejected": str}`.
//! - `dpo-chat`: TRL's conversational format: the prompt a list of messages, `chosen` and
//!   `rejected` each one assistant message.
//! - `openai-dpo`: OpenAI preference fine-tuning, `{"input": {"messages"}, "preferred_output",
//!   "non_preferred_output"}`, nothing else (OpenAI refuses fields it does not know).
//! - `sft`: `{"messages": [prompt..., chosen as assistant]}`, for supervised tuning on winners.
//!
//! The TRL formats also carry `id`, `votes`, `agreement` (TRL ignores extra columns), and
//! `margin` when known (TRL's reward trainer reads it). `sft` carries `id`.
//!
//! `write` does not buffer: give it a `BufWriter`.
use super::pairs::{Message, Prompt};
use serde::Serialize;
use std::borrow::Cow;
use std::io::{self, Write};

/// One pair to export: the winner, the loser, and how sure the votes are.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceExample {
    pub id: String,
    pub prompt: Prompt,
    pub chosen: String,
    pub rejected: String,
    /// How much better `chosen` is; written when given. Give it for every pair of a file or for
    /// none: `datasets` fails on a file (over ~10 MB, read in chunks) where only some rows have
    /// it ("column names don't match").
    pub margin: Option<f64>,
    pub votes: u32,
    /// How much the voters agree, 0..=1.
    pub agreement: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PreferenceFormat {
    Dpo,
    DpoChat,
    OpenaiDpo,
    Sft,
}

impl PreferenceFormat {
    pub const ALL: [PreferenceFormat; 4] = [
        PreferenceFormat::Dpo,
        PreferenceFormat::DpoChat,
        PreferenceFormat::OpenaiDpo,
        PreferenceFormat::Sft,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PreferenceFormat::Dpo => "dpo",
            PreferenceFormat::DpoChat => "dpo-chat",
            PreferenceFormat::OpenaiDpo => "openai-dpo",
            PreferenceFormat::Sft => "sft",
        }
    }
}

impl std::fmt::Display for PreferenceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PreferenceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown preference format {s:?} (expected dpo, dpo-chat, openai-dpo or sft)"
                )
            })
    }
}

/// A message borrowed for writing.
#[derive(Serialize)]
struct Msg<'a> {
    role: &'a str,
    content: &'a str,
}

fn assistant(content: &str) -> [Msg<'_>; 1] {
    [Msg {
        role: "assistant",
        content,
    }]
}

impl<'a> From<&'a Message> for Msg<'a> {
    fn from(m: &'a Message) -> Self {
        Msg {
            role: &m.role,
            content: &m.content,
        }
    }
}

/// A TRL column: a string (`dpo`) or messages (`dpo-chat`).
#[derive(Serialize)]
#[serde(untagged)]
enum TrlValue<'a> {
    Text(Cow<'a, str>),
    Messages(Vec<Msg<'a>>),
}

#[derive(Serialize)]
struct TrlRow<'a> {
    id: &'a str,
    prompt: TrlValue<'a>,
    chosen: TrlValue<'a>,
    rejected: TrlValue<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    margin: Option<f64>,
    votes: u32,
    agreement: f64,
}

#[derive(Serialize)]
struct OpenaiRow<'a> {
    input: OpenaiInput<'a>,
    preferred_output: [Msg<'a>; 1],
    non_preferred_output: [Msg<'a>; 1],
}

#[derive(Serialize)]
struct OpenaiInput<'a> {
    messages: &'a [Message],
}

#[derive(Serialize)]
struct SftRow<'a> {
    id: &'a str,
    messages: Vec<Msg<'a>>,
}

/// The prompt as one string for TRL's standard format. A single user message is its text; a
/// longer conversation (a system message, several turns) becomes `role: content` lines, since
/// the standard format has no roles; use `dpo-chat` to keep them.
pub fn prompt_text(prompt: &Prompt) -> Cow<'_, str> {
    match prompt {
        Prompt::Messages(m) if m.len() == 1 && m[0].role == "user" => Cow::Borrowed(&m[0].content),
        p => p.as_text(),
    }
}

/// Writes `ex` as one line of `format`. A margin or agreement that is NaN or infinite (a bug
/// upstream; JSON would get `null`) is an `InvalidInput` error naming the pair.
pub fn write(
    format: PreferenceFormat,
    ex: &PreferenceExample,
    out: &mut impl Write,
) -> io::Result<()> {
    let margin = ex.margin;
    if matches!(format, PreferenceFormat::Dpo | PreferenceFormat::DpoChat) {
        for (name, v) in [
            ("margin", margin.unwrap_or(0.0)),
            ("agreement", ex.agreement),
        ] {
            if !v.is_finite() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("pair {:?}: {name} is {v}, not a finite number", ex.id),
                ));
            }
        }
    }
    let messages = ex.prompt.messages();
    let trl = |prompt, chosen, rejected| TrlRow {
        id: &ex.id,
        prompt,
        chosen,
        rejected,
        margin,
        votes: ex.votes,
        agreement: ex.agreement,
    };
    // Serialized whole, so an unbuffered writer gets one write per line, not one per token.
    let mut line = match format {
        PreferenceFormat::Dpo => serde_json::to_vec(&trl(
            TrlValue::Text(prompt_text(&ex.prompt)),
            TrlValue::Text(Cow::Borrowed(ex.chosen.as_str())),
            TrlValue::Text(Cow::Borrowed(ex.rejected.as_str())),
        )),
        PreferenceFormat::DpoChat => serde_json::to_vec(&trl(
            TrlValue::Messages(messages.iter().map(Msg::from).collect()),
            TrlValue::Messages(assistant(&ex.chosen).into()),
            TrlValue::Messages(assistant(&ex.rejected).into()),
        )),
        PreferenceFormat::OpenaiDpo => serde_json::to_vec(&OpenaiRow {
            input: OpenaiInput {
                messages: &messages,
            },
            preferred_output: assistant(&ex.chosen),
            non_preferred_output: assistant(&ex.rejected),
        }),
        PreferenceFormat::Sft => serde_json::to_vec(&SftRow {
            id: &ex.id,
            messages: messages
                .iter()
                .map(Msg::from)
                .chain(assistant(&ex.chosen))
                .collect(),
        }),
    }?;
    line.push(b'\n');
    out.write_all(&line)
}

/// Why a pair was not exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeftOut {
    /// The votes do not pick a winner.
    Tie,
    /// Voters marked both responses bad: neither is worth learning from.
    BothBad,
    TooFewVotes,
    LowAgreement,
}

impl LeftOut {
    pub const ALL: [LeftOut; 4] = [
        LeftOut::Tie,
        LeftOut::BothBad,
        LeftOut::TooFewVotes,
        LeftOut::LowAgreement,
    ];

    /// As in `Summary`'s fields (and its JSON).
    pub fn name(self) -> &'static str {
        match self {
            LeftOut::Tie => "tie",
            LeftOut::BothBad => "both_bad",
            LeftOut::TooFewVotes => "too_few_votes",
            LeftOut::LowAgreement => "low_agreement",
        }
    }
}

/// What an export did: pairs written, and pairs left out by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub exported: u64,
    pub tie: u64,
    pub both_bad: u64,
    pub too_few_votes: u64,
    pub low_agreement: u64,
}

impl Summary {
    pub fn leave_out(&mut self, why: LeftOut) {
        *self.count_mut(why) += 1;
    }

    pub fn count(&self, why: LeftOut) -> u64 {
        match why {
            LeftOut::Tie => self.tie,
            LeftOut::BothBad => self.both_bad,
            LeftOut::TooFewVotes => self.too_few_votes,
            LeftOut::LowAgreement => self.low_agreement,
        }
    }

    pub fn left_out(&self) -> u64 {
        self.tie + self.both_bad + self.too_few_votes + self.low_agreement
    }

    fn count_mut(&mut self, why: LeftOut) -> &mut u64 {
        match why {
            LeftOut::Tie => &mut self.tie,
            LeftOut::BothBad => &mut self.both_bad,
            LeftOut::TooFewVotes => &mut self.too_few_votes,
            LeftOut::LowAgreement => &mut self.low_agreement,
        }
    }
}

/// `exported 120 pairs; left out 15: 8 ties, 4 both bad, 2 with too few votes, 1 with low
/// agreement` (reasons with no pairs are not named).
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: u64| if n == 1 { "" } else { "s" };
        write!(f, "exported {} pair{}", self.exported, s(self.exported))?;
        if self.left_out() == 0 {
            return Ok(());
        }
        write!(f, "; left out {}:", self.left_out())?;
        let mut sep = " ";
        for why in LeftOut::ALL {
            let n = self.count(why);
            if n > 0 {
                match why {
                    LeftOut::Tie => write!(f, "{sep}{n} tie{}", s(n)),
                    LeftOut::BothBad => write!(f, "{sep}{n} both bad"),
                    LeftOut::TooFewVotes => write!(f, "{sep}{n} with too few votes"),
                    LeftOut::LowAgreement => write!(f, "{sep}{n} with low agreement"),
                }?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;
    use PreferenceFormat::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    fn text_example() -> PreferenceExample {
        PreferenceExample {
            id: "p1".into(),
            prompt: Prompt::Text("What is 2+2?".into()),
            chosen: "4".into(),
            rejected: "5".into(),
            margin: Some(1.5),
            votes: 3,
            agreement: 0.75,
        }
    }

    fn chat_example() -> PreferenceExample {
        PreferenceExample {
            id: "p2".into(),
            prompt: Prompt::Messages(vec![
                msg("system", "Be brief."),
                msg("user", "What is 2+2?"),
            ]),
            margin: None,
            agreement: 1.0,
            ..text_example()
        }
    }

    fn line(format: PreferenceFormat, ex: &PreferenceExample) -> String {
        let mut out = Vec::new();
        write(format, ex, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_format_for_a_text_prompt_with_a_margin() {
        let ex = text_example();
        let expect = [
            (
                Dpo,
                r#"{"id":"p1","prompt":"What is 2+2?","chosen":"4","rejected":"5","margin":1.5,"votes":3,"agreement":0.75}"#,
            ),
            (
                DpoChat,
                r#"{"id":"p1","prompt":[{"role":"user","content":"What is 2+2?"}],"chosen":[{"role":"assistant","content":"4"}],"rejected":[{"role":"assistant","content":"5"}],"margin":1.5,"votes":3,"agreement":0.75}"#,
            ),
            (
                OpenaiDpo,
                r#"{"input":{"messages":[{"role":"user","content":"What is 2+2?"}]},"preferred_output":[{"role":"assistant","content":"4"}],"non_preferred_output":[{"role":"assistant","content":"5"}]}"#,
            ),
            (
                Sft,
                r#"{"id":"p1","messages":[{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"4"}]}"#,
            ),
        ];
        for (format, json) in expect {
            assert_eq!(line(format, &ex), format!("{json}\n"), "{format}");
        }
    }

    #[test]
    fn every_format_for_a_conversation_without_a_margin() {
        let ex = chat_example();
        let expect = [
            (
                Dpo,
                r#"{"id":"p2","prompt":"system: Be brief.\nuser: What is 2+2?","chosen":"4","rejected":"5","votes":3,"agreement":1.0}"#,
            ),
            (
                DpoChat,
                r#"{"id":"p2","prompt":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}],"chosen":[{"role":"assistant","content":"4"}],"rejected":[{"role":"assistant","content":"5"}],"votes":3,"agreement":1.0}"#,
            ),
            (
                OpenaiDpo,
                r#"{"input":{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"}]},"preferred_output":[{"role":"assistant","content":"4"}],"non_preferred_output":[{"role":"assistant","content":"5"}]}"#,
            ),
            (
                Sft,
                r#"{"id":"p2","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"4"}]}"#,
            ),
        ];
        for (format, json) in expect {
            assert_eq!(line(format, &ex), format!("{json}\n"), "{format}");
        }
    }

    #[test]
    fn dpo_prompt_text_and_bad_numbers() {
        let one = Prompt::Messages(vec![msg("user", "Hi")]);
        assert_eq!(prompt_text(&one), "Hi");
        let ex = PreferenceExample {
            margin: Some(f64::NAN),
            ..text_example()
        };
        let err = write(DpoChat, &ex, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "pair \"p1\": margin is NaN, not a finite number"
        );
        // Formats without the number do not care.
        assert!(line(Sft, &ex).starts_with("{\"id\":\"p1\""));
    }

    #[test]
    fn format_names_match_clap_and_from_str() {
        for f in PreferenceFormat::ALL {
            assert_eq!(f.name().parse::<PreferenceFormat>(), Ok(f));
            assert_eq!(f.to_possible_value().unwrap().get_name(), f.name());
        }
        assert!("dpo_chat"
            .parse::<PreferenceFormat>()
            .unwrap_err()
            .contains("dpo-chat"));
    }

    #[test]
    fn summary_counts_and_reads_well() {
        let mut s = Summary {
            exported: 120,
            ..Summary::default()
        };
        assert_eq!(s.to_string(), "exported 120 pairs");
        for why in [LeftOut::Tie, LeftOut::Tie, LeftOut::LowAgreement] {
            s.leave_out(why);
        }
        assert_eq!((s.count(LeftOut::Tie), s.left_out()), (2, 3));
        assert_eq!(
            s.to_string(),
            "exported 120 pairs; left out 3: 2 ties, 1 with low agreement"
        );
        s = Summary {
            exported: 1,
            tie: 1,
            both_bad: 4,
            too_few_votes: 2,
            low_agreement: 0,
        };
        assert_eq!(
            s.to_string(),
            "exported 1 pair; left out 7: 1 tie, 4 both bad, 2 with too few votes"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(&format!("\"{}\":4", LeftOut::BothBad.name())));
    }

    /// With `WICK_EXPORT_SAMPLES=DIR`, writes `DIR/<format>.jsonl` (2 rows each) for
    /// `scripts/check_export.py FORMAT FILE 2`.
    #[test]
    fn samples_for_check_export() {
        let Some(dir) = std::env::var_os("WICK_EXPORT_SAMPLES") else {
            return;
        };
        for f in PreferenceFormat::ALL {
            let path = std::path::Path::new(&dir).join(format!("{f}.jsonl"));
            let all = line(f, &text_example()) + &line(f, &chat_example());
            std::fs::write(&path, all).unwrap();
            println!("{}", path.display());
        }
    }
}
