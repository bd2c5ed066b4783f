//! Labeling-function benchmark: how fast a project's rules match, how long the label model
//! takes to fit, and what the rules table, the live preview and the apply job cost on real
//! SQLite files.
//!
//! The data: short banking-like messages (about 60–120 characters, 20 intents with skewed
//! shares), each made of filler words around zero, one or two of its intent's phrases (now and
//! then with a typo, in capitals, or from another intent), with amounts in euros, pounds or
//! dollars in a fifth of them (so about one message in ten has a `€` or `£`, which is not ASCII)
//! and a payment reference in a few. Item `i` is drawn from a generator seeded by `i` alone, so
//! the in-memory corpus and the databases hold the same texts. A stand-in language model labels
//! every item, right 65 % of the time (otherwise mostly the intent's neighbour). The rules: two
//! keyword rules per intent (its phrases and "my …" forms; its later phrases and one-typo
//! forms, or for the ATM and PIN intents a case-sensitive list in capitals), 40 in all with
//! 10–30 terms each, plus 15 regular expressions in the style of scripts/rules/banking77.json.
//!
//! 1. Matching alone, in memory: `RuleSet::compile`, then `RuleSet::fired` over N texts on one
//!    thread and on `WICK_BENCH_THREADS` (a `Scratch` per thread, contiguous slices), both
//!    collecting every item's fired rules (with the CPU time, so a busy machine shows); then,
//!    on a slice: threads sharing one set against a set each, the keyword rules alone, the
//!    patterns alone, the ASCII and non-ASCII texts apart, and two variants of the patterns
//!    tried for comparison (the patterns as one `RegexSet`, the matcher before; that set with
//!    ASCII word boundaries).
//! 2. The label model: `Votes` from those rules plus the model voter, `LabelModel::fit` with
//!    `FitOptions::balanced` at N, with the answered items known (as the job fits) and
//!    without, and with the prior learned (`FitOptions::shrunk`, the fit before); its accuracy against the generator's intent, what it does where no rule fired,
//!    and how many distinct vote patterns the N items have.
//! 3. Through SQLite: a project of N items (imported through `store::import`, 0.2 % with a
//!    label; one stored prediction per item with all 20 scores, as a pre-labeling job writes
//!    them; the 55 rules saved), and one of 100,000 for the preview. Built once and kept under
//!    `target/bench-rules/` (named by N, the generator's version and a hash of the schema
//!    source); each run copies it and works on the copy. In a process of its own (so that its
//!    peak RSS is not the setup's): the scan, query by query (`store::rules::scan`, the same
//!    query without the prediction subquery, the subquery alone), matching the scanned texts;
//!    `app::rules::rules_table` at N; `app::rules::preview` of a keyword rule and of a pattern
//!    being typed, on the 100k project and at N; the apply job end to end (`queue_apply` +
//!    `jobs::rules::run`) at N with its peak RSS and heap growth, the moment its scan ended
//!    (read from the job's progress), and a check that it wrote the predictions its summary
//!    counts; the prediction subquery again, and with a partial covering index tried on the
//!    copy; and last the apply's write, timed apart from an empty WAL (prediction rows,
//!    `predictions::insert`, commit): with every score, the top 3, and the top 3 without the
//!    queue-priority update. WICK_BENCH_PARTS=apply runs only the apply (to profile it).
//!
//! Settings (environment): WICK_BENCH_ITEMS (1000000), WICK_BENCH_THREADS (2),
//! WICK_BENCH_REPEATS (3: preview repeats are 2 more), WICK_BENCH_PREVIEW_ITEMS (100000),
//! WICK_BENCH_FRESH (1: rebuild the cached databases). Output: a summary on stdout and
//! `target/bench-rules.json`. Run through scripts/bench-rules.sh.
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wick::domain::{NewProject, TaskKind};
use wick::learn::label_model::{majority, FitOptions, LabelModel, Votes};
use wick::rules::matcher::Scratch;
use wick::rules::{Rule, RuleSet, RuleSpec};
use wick::store::predictions::{self, NewPrediction, Output, Provenance};
use wick::store::rules::{self as stored, Save, Wants};
use wick::store::{projects, Actor, Store};

/// Bump when the generator or the rules change, so cached databases are rebuilt.
const GENERATOR_VERSION: u32 = 1;
const PROJECT: &str = "bench-rules";
const LM_MODEL: &str = "bench-lm";
const LM_PROMPT: &str = "bench-prompt-v1";
/// Share of items the stand-in language model labels right.
const MODEL_RIGHT: f64 = 0.65;
/// One imported label (a human answer) per this many items.
const LABELED_EVERY: usize = 500;
/// Items matched for the per-kind and ASCII/non-ASCII rows of part 1.
const SLICE: usize = 200_000;

const LABELS: [&str; 20] = [
    "card_arrival",
    "lost_or_stolen_card",
    "request_refund",
    "transfer_failed",
    "exchange_rate",
    "top_up",
    "pin_blocked",
    "cash_withdrawal",
    "card_payment_fee",
    "terminate_account",
    "balance_not_updated",
    "direct_debit",
    "declined_card_payment",
    "verify_my_identity",
    "change_address",
    "atm_support",
    "wrong_amount_of_cash",
    "pending_card_payment",
    "virtual_card",
    "apple_pay_or_google_pay",
];
const ATM: usize = 15;
const PIN: usize = 6;

/// Each intent's phrases: what its messages say, and what its keyword rules list.
const PHRASES: [&[&str]; 20] = [
    &[
        "card arrival",
        "card hasn't arrived",
        "card not arrived",
        "still waiting for my card",
        "card never came",
        "card not here",
        "when will my card arrive",
        "card in the post",
        "new card delivery",
        "track my card",
        "card delivery",
        "card shipped",
        "card tracking",
        "card still not here",
    ],
    &[
        "lost my card",
        "lost card",
        "stolen card",
        "card stolen",
        "card was stolen",
        "misplaced my card",
        "can't find my card",
        "card is missing",
        "card got stolen",
        "someone stole my card",
        "freeze my card",
        "block my card",
        "card lost",
    ],
    &[
        "refund",
        "refunds",
        "money back",
        "reimburse",
        "reimbursement",
        "return my money",
        "get my money back",
        "refund request",
        "want a refund",
        "refund still not showing",
        "give me a refund",
        "chargeback",
        "charge back",
    ],
    &[
        "transfer failed",
        "failed transfer",
        "transfer didn't go through",
        "transfer declined",
        "transfer rejected",
        "transfer bounced",
        "transfer error",
        "couldn't transfer",
        "transfer not working",
        "transfer was returned",
        "transfer is stuck",
        "transfer came back",
    ],
    &[
        "exchange rate",
        "exchange rates",
        "conversion rate",
        "rate of exchange",
        "currency rate",
        "fx rate",
        "interbank rate",
        "mid-market rate",
        "conversion fee",
        "currency conversion",
        "convert 100 euros to dollars",
        "change 50 pounds into euros",
    ],
    &[
        "top up",
        "top-up",
        "topup",
        "topped up",
        "top up failed",
        "add money",
        "add funds",
        "load money",
        "top up my account",
        "topping up",
        "top up is pending",
        "top up declined",
    ],
    &[
        "pin blocked",
        "blocked pin",
        "pin locked",
        "locked pin",
        "wrong pin",
        "forgot my pin",
        "pin is blocked",
        "unblock my pin",
        "pin not working",
        "entered the wrong pin",
        "reset pin",
        "pin attempts",
    ],
    &[
        "cash withdrawal",
        "withdraw cash",
        "withdrawal",
        "withdrawals",
        "take out cash",
        "get cash",
        "cash machine",
        "withdrawal limit",
        "withdrew",
        "cash out",
        "withdrawing cash",
        "withdrawal was charged",
    ],
    &[
        "fee charged",
        "extra fee",
        "charged a fee",
        "card payment fee",
        "transaction fee",
        "hidden fee",
        "service charge",
        "unexpected fee",
        "fees",
        "commission",
        "surcharge",
        "why was i charged",
    ],
    &[
        "close my account",
        "close account",
        "delete my account",
        "delete account",
        "terminate my account",
        "cancel my account",
        "account closure",
        "shut down my account",
        "leave the bank",
        "end my account",
        "deactivate account",
        "remove my account",
    ],
    &[
        "balance not updated",
        "balance hasn't updated",
        "balance is wrong",
        "balance didn't change",
        "balance not showing",
        "wrong balance",
        "balance still the same",
        "balance not reflecting",
        "balance update",
        "incorrect balance",
        "balance is off",
        "old balance",
    ],
    &[
        "direct debit",
        "direct debits",
        "standing order",
        "standing orders",
        "recurring payment",
        "mandate",
        "debit order",
        "unknown direct debit",
        "cancel direct debit",
        "set up a direct debit",
        "subscription payment",
        "automatic payment",
    ],
    &[
        "card declined",
        "declined",
        "payment declined",
        "card was declined",
        "card got declined",
        "card rejected",
        "card refused",
        "payment refused",
        "card not accepted",
        "declined at the shop",
        "card doesn't work",
        "declined online",
    ],
    &[
        "verify my identity",
        "identity verification",
        "verify identity",
        "id check",
        "proof of identity",
        "upload my id",
        "passport photo",
        "selfie",
        "kyc",
        "verification failed",
        "identity check",
        "id verification",
    ],
    &[
        "change my address",
        "change address",
        "new address",
        "update my address",
        "moved house",
        "address change",
        "wrong address",
        "update address",
        "moving home",
        "postal address",
        "home address",
        "edit my address",
    ],
    &[
        "atm",
        "atms",
        "cash machine near",
        "which atm",
        "atm near me",
        "atm network",
        "atm abroad",
        "atm not working",
        "atm fee",
        "use an atm",
        "find an atm",
        "atm location",
    ],
    &[
        "wrong amount",
        "less cash",
        "incorrect amount",
        "only got",
        "didn't get all",
        "missing cash",
        "atm gave me less",
        "short changed",
        "wrong cash",
        "not the full amount",
        "got less money",
        "amount was wrong",
    ],
    &[
        "pending payment",
        "payment pending",
        "still pending",
        "pending transaction",
        "transaction pending",
        "payment is pending",
        "pending for days",
        "pending charge",
        "not yet cleared",
        "awaiting clearance",
        "shows as pending",
        "pending status",
    ],
    &[
        "virtual card",
        "virtual cards",
        "disposable card",
        "online card",
        "digital card",
        "virtual card number",
        "single use card",
        "one-time card",
        "get a virtual card",
        "create a virtual card",
        "virtual debit card",
        "temporary card",
    ],
    &[
        "apple pay",
        "google pay",
        "applepay",
        "googlepay",
        "android pay",
        "mobile wallet",
        "phone payment",
        "pay with my phone",
        "samsung pay",
        "wallet app",
        "add card to wallet",
        "apple pay not working",
    ],
];

/// Case-sensitive lists for the ATM and PIN intents (their second keyword rule).
const ATM_CAPS: &[&str] = &[
    "ATM",
    "ATMs",
    "ATM fee",
    "ATM abroad",
    "ATM near me",
    "ATM network",
    "ATM withdrawal",
    "ATM not working",
    "use an ATM",
    "find an ATM",
    "which ATM",
    "ATM location",
];
const PIN_CAPS: &[&str] = &[
    "PIN",
    "PIN blocked",
    "PIN locked",
    "wrong PIN",
    "my PIN",
    "PIN code",
    "PIN number",
    "reset PIN",
    "new PIN",
    "PIN attempts",
    "forgot my PIN",
    "unblock my PIN",
];

/// (name, intent, pattern, case_sensitive): the 15 regex rules.
const PATTERNS: [(&str, usize, &str, bool); 15] = [
    (
        "card_arrival_re",
        0,
        r"\bcard\b.*\b(arriv|come|received|receive|still not here|not here|yet)",
        false,
    ),
    (
        "lost_card_re",
        1,
        r"\b(lost|stolen|stole|lose)\b.*\bcard\b|\bcard\b.*\b(lost|stolen|missing)\b",
        false,
    ),
    (
        "refund_missing_re",
        2,
        r"\brefund\b.*\b(not|n't|yet|still|missing|show|appear)",
        false,
    ),
    (
        "transfer_ref_re",
        3,
        r"(?i:\b(ref|reference|transaction id)\b)\W+[A-Z]{2}\d{6}\b",
        true,
    ),
    (
        "exchange_re",
        4,
        r"\b\d+(\.\d\d)? ?(eur|euros?|gbp|usd|dollars?|pounds?)\b.*\b(in|to|into)\b.*\b(eur|euros?|gbp|usd|dollars?|pounds?)\b",
        false,
    ),
    (
        "top_up_re",
        5,
        r"\btop[- ]?up\b.*\b(fail\w*|declin\w*|pending|not work\w*)",
        false,
    ),
    (
        "pin_blocked_re",
        6,
        r"\bpin\b.*\b(block|locked|lock)",
        false,
    ),
    (
        "withdrawal_fee_re",
        8,
        r"\b(withdraw\w*|atm)\b.*\b(fee|charge|charged)\b",
        false,
    ),
    (
        "terminate_re",
        9,
        r"\b(close|delete|terminate|cancel)\b.*\baccount\b",
        false,
    ),
    (
        "declined_re",
        12,
        r"\b(declin\w*|refused|rejected)\b.*\b(shop|store|online|restaurant|terminal|abroad)\b",
        false,
    ),
    ("verify_re", 13, r"\bverif\w*\b.*\b(identity|id)\b", false),
    (
        "address_re",
        14,
        r"\b(change|update|edit)\b.*\b(address|postcode|post code)\b",
        false,
    ),
    (
        "wrong_cash_re",
        16,
        r"\b(wrong|less|incorrect|didn't get|did not get|only got)\b.*\b(cash|money|amount)\b",
        false,
    ),
    (
        "pending_re",
        17,
        r"\b(pending|not cleared|still processing)\b.*\b(days?|week|hours?)\b",
        false,
    ),
    (
        "wallet_re",
        19,
        r"\b(apple|google|samsung) ?pay\b.*\b(not work\w*|add|set ?up|fail\w*)",
        false,
    ),
];

/// Words around the phrases; a few of them (card, account, cash, fee, pending, wrong, amount)
/// also feed the patterns, as real messages do.
const FILLER: &[&str] = &[
    "i",
    "my",
    "the",
    "a",
    "to",
    "is",
    "it",
    "and",
    "was",
    "for",
    "on",
    "of",
    "in",
    "this",
    "that",
    "can",
    "you",
    "me",
    "please",
    "help",
    "why",
    "how",
    "what",
    "when",
    "do",
    "does",
    "did",
    "not",
    "have",
    "has",
    "been",
    "just",
    "still",
    "again",
    "today",
    "yesterday",
    "week",
    "last",
    "app",
    "account",
    "bank",
    "money",
    "payment",
    "online",
    "phone",
    "need",
    "want",
    "know",
    "tell",
    "check",
    "see",
    "there",
    "here",
    "some",
    "any",
    "with",
    "from",
    "at",
    "be",
    "are",
    "will",
    "would",
    "could",
    "should",
    "it's",
    "i'm",
    "can't",
    "don't",
    "really",
    "very",
    "so",
    "but",
    "or",
    "if",
    "now",
    "already",
    "since",
    "after",
    "before",
    "sure",
    "thanks",
    "thank",
    "hello",
    "hi",
    "issue",
    "problem",
    "question",
    "support",
    "service",
    "time",
    "days",
    "minutes",
    "hours",
    "morning",
    "evening",
    "friend",
    "family",
    "work",
    "home",
    "trip",
    "holiday",
    "abroad",
    "shop",
    "store",
    "restaurant",
    "transaction",
    "statement",
    "details",
    "information",
    "email",
    "message",
    "notification",
    "screen",
    "button",
    "option",
    "settings",
    "profile",
    "limit",
    "amount",
    "cash",
    "card",
    "transfer",
    "fee",
    "balance",
    "pending",
    "your",
    "our",
    "their",
    "we",
    "they",
    "he",
    "she",
    "one",
    "two",
    "three",
    "first",
    "second",
    "new",
    "old",
    "same",
    "different",
    "wrong",
    "right",
    "ok",
    "okay",
    "fine",
    "yet",
    "soon",
    "long",
    "ago",
    "never",
    "always",
    "sometimes",
    "maybe",
    "probably",
    "because",
    "about",
    "around",
    "into",
    "over",
    "under",
    "up",
    "out",
    "off",
    "more",
    "less",
    "much",
    "many",
    "get",
    "got",
    "make",
    "made",
    "use",
    "used",
    "try",
    "tried",
    "go",
    "went",
    "come",
    "came",
    "look",
    "looking",
    "find",
    "found",
    "wait",
    "waiting",
    "send",
    "sent",
    "pay",
    "paid",
    "buy",
    "bought",
    "order",
    "ordered",
    "receive",
    "received",
    "show",
    "shows",
    "showing",
    "happen",
    "happened",
    "change",
    "changed",
    "update",
    "updated",
    "working",
    "stop",
    "stopped",
    "keep",
    "kept",
    "someone",
    "everything",
    "nothing",
    "something",
    "contact",
    "customer",
    "number",
];
const OPENERS: &[&str] = &[
    "Hi,",
    "Hello,",
    "Hey,",
    "Good morning,",
    "Please help:",
    "Quick question:",
    "Urgent:",
    "Sorry,",
];
const PLACES: &[&str] = &["Zürich", "São Paulo", "Málaga", "Köln", "Kraków", "café"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// The phrase with one letter dropped from its longest word ("refund" -> "refnd").
fn typo(phrase: &str) -> String {
    let words: Vec<&str> = phrase.split(' ').collect();
    let (at, longest) = words
        .iter()
        .enumerate()
        .max_by_key(|(i, w)| (w.chars().count(), std::cmp::Reverse(*i)))
        .map(|(i, w)| (i, *w))
        .unwrap_or((0, phrase));
    let chars: Vec<char> = longest.chars().collect();
    if chars.len() < 4 {
        return phrase.to_string();
    }
    let cut = chars.len() / 2;
    let short: String = chars
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != cut)
        .map(|(_, c)| c)
        .collect();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == at { short.as_str() } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

/// ATM, PIN and KYC in capitals, as people often write them.
fn capitals(phrase: &str) -> String {
    phrase
        .split(' ')
        .map(|w| match w {
            "atm" | "pin" | "kyc" => w.to_ascii_uppercase(),
            "atms" => "ATMs".into(),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The generator: item `i`'s text, its intent and the stand-in model's label.
struct World {
    /// Cumulative intent shares (skewed: the first intent ~2.5x the last).
    cumulative: Vec<f64>,
}

struct Item {
    text: String,
    truth: usize,
    model: usize,
}

impl World {
    fn new() -> World {
        let w: Vec<f64> = (0..LABELS.len())
            .map(|k| 1.0 / (1.0 + 0.08 * k as f64))
            .collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let cumulative = w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect();
        World { cumulative }
    }

    fn item(&self, i: usize) -> Item {
        let mut rng = Rng::new((i as u64).wrapping_mul(0xA076_1D64_78BD_642F) ^ 0x1234_5678);
        let u = rng.unit();
        let truth = self
            .cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(LABELS.len() - 1);
        let model = if rng.chance(MODEL_RIGHT) {
            truth
        } else if rng.chance(0.5) {
            truth ^ 1 // the neighbouring intent: 0/1, 2/3, ...
        } else {
            (truth + 1 + rng.below(LABELS.len() - 1)) % LABELS.len()
        };
        let mut pieces: Vec<String> = Vec::with_capacity(4);
        let phrase = |rng: &mut Rng, of: usize| -> String {
            let p = rng.pick(PHRASES[of]);
            if rng.chance(0.08) {
                typo(p)
            } else if (of == ATM || of == PIN || of == 13) && rng.chance(0.4) {
                capitals(p)
            } else {
                p.to_string()
            }
        };
        if rng.chance(0.6) {
            pieces.push(phrase(&mut rng, truth));
            if rng.chance(0.15) {
                pieces.push(phrase(&mut rng, truth));
            }
        }
        if rng.chance(0.06) {
            let other = rng.below(LABELS.len());
            pieces.push(phrase(&mut rng, other));
        }
        if rng.chance(0.2) {
            let n = 5 + rng.below(495);
            pieces.push(match rng.below(6) {
                0 => format!("€{n}"),
                1 => format!("£{n}.{:02}", rng.below(100)),
                2 => format!("{n} euros"),
                3 => format!("{n} pounds"),
                4 => format!("${n}"),
                _ => format!("{n} dollars"),
            });
        }
        if rng.chance(if truth == 3 { 0.3 } else { 0.03 }) {
            let code = ["TX", "TR", "PX"][rng.below(3)];
            let word = ["ref", "reference", "transaction id"][rng.below(3)];
            pieces.push(format!("{word}: {code}{:06}", rng.below(1_000_000)));
        }
        if rng.chance(0.02) {
            pieces.push(format!("in {}", rng.pick(PLACES)));
        }
        let target = 60 + rng.below(61);
        let mut words: Vec<String> = Vec::with_capacity(24);
        let mut len: usize = pieces.iter().map(|p| p.len() + 1).sum();
        while len < target {
            let w = rng.pick(FILLER);
            len += w.len() + 1;
            words.push(w.to_string());
        }
        for p in pieces {
            let at = rng.below(words.len() + 1);
            words.insert(at, p);
        }
        let mut text = String::with_capacity(len + 24);
        if rng.chance(0.3) {
            text.push_str(rng.pick(OPENERS));
            text.push(' ');
        }
        text.push_str(&words.join(" "));
        text.push(if rng.chance(0.5) { '?' } else { '.' });
        if let Some(first) = text.get(0..1) {
            let up = first.to_ascii_uppercase();
            text.replace_range(0..1, &up);
        }
        Item { text, truth, model }
    }
}

fn labels() -> Vec<String> {
    LABELS.iter().map(|l| l.to_string()).collect()
}

/// The 55 rules as a team would write them, in JSON.
fn rule_specs() -> Vec<Value> {
    let mut out = Vec::new();
    for (k, label) in LABELS.iter().enumerate() {
        let phrases = PHRASES[k];
        let mut first: Vec<String> = phrases.iter().map(|p| p.to_string()).collect();
        first.extend(
            phrases
                .iter()
                .filter(|p| !p.starts_with("my "))
                .map(|p| format!("my {p}")),
        );
        out.push(
            json!({"name": format!("{label}_kw"), "label": label, "kind": "keywords",
                        "terms": first, "case_sensitive": false, "whole_word": true}),
        );
        let second = match k {
            ATM => json!({"name": "atm_caps", "label": label, "kind": "keywords",
                          "terms": ATM_CAPS, "case_sensitive": true, "whole_word": true}),
            PIN => json!({"name": "pin_caps", "label": label, "kind": "keywords",
                          "terms": PIN_CAPS, "case_sensitive": true, "whole_word": true}),
            _ => {
                let mut terms: Vec<String> = phrases[phrases.len() / 2..]
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                terms.extend(phrases.iter().map(|p| typo(p)));
                json!({"name": format!("{label}_alt"), "label": label, "kind": "keywords",
                       "terms": terms, "case_sensitive": false, "whole_word": true})
            }
        };
        out.push(second);
    }
    for (name, k, pattern, cs) in PATTERNS {
        out.push(json!({"name": name, "label": LABELS[k], "kind": "regex",
                        "pattern": pattern, "case_sensitive": cs}));
    }
    out
}

fn validated(specs: &[Value]) -> anyhow::Result<Vec<Rule>> {
    let labels = labels();
    specs
        .iter()
        .map(|s| {
            let spec: RuleSpec = serde_json::from_value(s.clone())?;
            Ok(spec.validated(TaskKind::Classification, &labels)?)
        })
        .collect()
}

fn compile(specs: &[Value]) -> anyhow::Result<RuleSet> {
    Ok(RuleSet::compile(
        validated(specs)?,
        &labels(),
        &HashMap::new(),
    )?)
}

fn terms_of(rule: &Rule) -> usize {
    match rule.matcher() {
        wick::rules::Matcher::Keywords { terms, .. } => terms.len(),
        _ => 0,
    }
}

/// A `/proc/self/status` field in MB (VmHWM: peak resident set, VmRSS: current).
fn self_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets this process's VmHWM to its current RSS (`clear_refs` 5); false where the kernel
/// refuses (the peak is then the process's peak so far).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn runs(v: &[f64], places: i32) -> Value {
    json!(v.iter().map(|s| round(*s, places)).collect::<Vec<_>>())
}

/// Hands the heap's free memory back to the OS (glibc keeps what a phase freed), so that the
/// RssAnon a phase starts from is what is live.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim only releases free memory; it takes no pointers.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// How far RssAnon (the heap, not the mapped database file) rose above where it started,
/// sampled every 5 ms while a phase runs.
struct AnonPeak {
    base: f64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<f64>,
}

impl AnonPeak {
    fn start() -> AnonPeak {
        trim_heap();
        let base = self_mb("RssAnon:").unwrap_or(0.0);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0.0f64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(self_mb("RssAnon:").unwrap_or(0.0));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak.max(self_mb("RssAnon:").unwrap_or(0.0))
        });
        AnonPeak { base, stop, handle }
    }

    /// (peak RssAnon, its rise over the start), MB.
    fn stop(self) -> (f64, f64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = self.handle.join().unwrap_or(0.0);
        (peak, (peak - self.base).max(0.0))
    }
}

/// Every text's fired rules, CSR-style.
struct Fired {
    offsets: Vec<usize>,
    rules: Vec<u16>,
}

impl Fired {
    fn item(&self, i: usize) -> &[u16] {
        &self.rules[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// `set.fired` over `texts` on `threads` threads (contiguous slices, a `Scratch` each); every
/// item's fired rules, in item order.
fn fire_all(set: &RuleSet, texts: &[String], threads: usize) -> Fired {
    fire_with(&vec![set; threads.max(1)], texts)
}

/// As `fire_all`, thread `k` matching with `sets[k]`.
fn fire_with(sets: &[&RuleSet], texts: &[String]) -> Fired {
    let chunk = texts.len().div_ceil(sets.len().max(1)).max(1);
    let parts: Vec<(Vec<usize>, Vec<u16>)> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .zip(sets)
            .map(|(slice, &set)| {
                s.spawn(move || {
                    let mut scratch = Scratch::default();
                    let mut out = Vec::new();
                    let mut lens = Vec::with_capacity(slice.len());
                    let mut rules = Vec::with_capacity(slice.len());
                    for t in slice {
                        set.fired(t, None, &mut scratch, &mut out);
                        lens.push(out.len());
                        rules.extend(out.iter().map(|&r| r as u16));
                    }
                    (lens, rules)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a matching thread panicked"))
            .collect()
    });
    let mut offsets = Vec::with_capacity(texts.len() + 1);
    offsets.push(0);
    let mut rules = Vec::new();
    for (lens, r) in parts {
        for l in lens {
            offsets.push(offsets.last().copied().unwrap_or(0) + l);
        }
        rules.extend(r);
    }
    Fired { offsets, rules }
}

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

fn items_per_s(n: usize, s: f64) -> f64 {
    round(n as f64 / s, 0)
}

/// Part 1: compile and match in memory.
fn matching(
    world: &World,
    n: usize,
    threads: usize,
    repeats: usize,
) -> anyhow::Result<(Value, Vec<Item>, Fired, RuleSet)> {
    let t = Instant::now();
    let items: Vec<Item> = (0..n).map(|i| world.item(i)).collect();
    let gen_s = t.elapsed().as_secs_f64();
    let texts: Vec<String> = items.iter().map(|it| it.text.clone()).collect();
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    let non_ascii = texts.iter().filter(|t| !t.is_ascii()).count();
    let specs = rule_specs();
    let rules = validated(&specs)?;
    let keyword_rules = rules.iter().filter(|r| terms_of(r) > 0).count();
    let term_counts: Vec<usize> = rules.iter().map(terms_of).filter(|&c| c > 0).collect();
    let mut compile_s = Vec::new();
    let mut set = None;
    for _ in 0..repeats {
        let rules = validated(&specs)?;
        let t = Instant::now();
        set = Some(RuleSet::compile(rules, &labels(), &HashMap::new())?);
        compile_s.push(t.elapsed().as_secs_f64());
    }
    let set = set.expect("at least one repeat");
    println!(
        "corpus: {n} texts generated in {gen_s:.1} s, mean {:.0} chars, {:.1} % not ASCII; rules: {} ({keyword_rules} keyword rules with {}–{} terms, {} terms in all; {} patterns); compile {:.1} ms",
        chars as f64 / n as f64,
        100.0 * non_ascii as f64 / n as f64,
        set.len(),
        term_counts.iter().min().unwrap_or(&0),
        term_counts.iter().max().unwrap_or(&0),
        term_counts.iter().sum::<usize>(),
        PATTERNS.len(),
        1e3 * median(&compile_s)
    );
    for i in 0..3.min(n) {
        println!("  e.g. [{}] {}", LABELS[items[i].truth], items[i].text);
    }
    let mut one = Vec::new();
    let mut many = Vec::new();
    let (mut cpu_one, mut cpu_many) = (0.0, 0.0);
    let mut fired = None;
    for _ in 0..repeats.min(2) {
        let (t, c) = (Instant::now(), cpu_seconds());
        let f = fire_all(&set, &texts, 1);
        one.push(t.elapsed().as_secs_f64());
        cpu_one += cpu_seconds() - c;
        fired = Some(f);
        let (t, c) = (Instant::now(), cpu_seconds());
        let f2 = fire_all(&set, &texts, threads);
        many.push(t.elapsed().as_secs_f64());
        cpu_many += cpu_seconds() - c;
        anyhow::ensure!(
            f2.rules.len() == fired.as_ref().map_or(0, |f| f.rules.len()),
            "{threads} threads found other rules than one"
        );
    }
    let fired = fired.expect("at least one repeat");
    let (s1, s2) = (median(&one), median(&many));
    // CPU seconds per wall second: 2 means both threads ran all the time.
    let busy_one = cpu_one / one.iter().sum::<f64>();
    let busy_many = cpu_many / many.iter().sum::<f64>();
    // What fires: coverage, per-rule hit rates, and how right the rules are.
    let mut hits = vec![0usize; set.len()];
    let mut right = vec![0usize; set.len()];
    let mut covered = 0;
    for (i, item) in items.iter().enumerate() {
        let f = fired.item(i);
        covered += usize::from(!f.is_empty());
        for &r in f {
            hits[r as usize] += 1;
            right[r as usize] += usize::from(set.label_of(r as usize) == item.truth);
        }
    }
    let rate = |h: usize| 100.0 * h as f64 / n as f64;
    let mut rates: Vec<f64> = hits.iter().map(|&h| rate(h)).collect();
    rates.sort_by(f64::total_cmp);
    let precision = right.iter().sum::<usize>() as f64 / hits.iter().sum::<usize>().max(1) as f64;
    println!(
        "matching {n} texts: 1 thread {s1:.2} s ({:.0} items/s, {busy_one:.2} cores busy), {threads} threads {s2:.2} s ({:.0} items/s, {:.2}x, {busy_many:.2} cores busy); coverage {:.1} %, {:.2} rules per item; rule hit rates {:.2}–{:.2} % (median {:.2} %); rule precision {:.2}",
        n as f64 / s1,
        n as f64 / s2,
        s1 / s2,
        100.0 * covered as f64 / n as f64,
        fired.rules.len() as f64 / n as f64,
        rates[0],
        rates[rates.len() - 1],
        median(&rates),
        precision
    );
    let hit_rates: serde_json::Map<String, Value> = set
        .rules()
        .iter()
        .zip(&hits)
        .map(|(r, &h)| (r.name().to_string(), json!(round(rate(h), 3))))
        .collect();
    // Where matching time goes, on a slice: keyword rules alone, patterns alone, and ASCII
    // against non-ASCII texts with the whole set.
    let slice = &texts[..SLICE.min(n)];
    let keywords: Vec<Value> = specs
        .iter()
        .filter(|s| s["kind"] == "keywords")
        .cloned()
        .collect();
    let patterns: Vec<Value> = specs
        .iter()
        .filter(|s| s["kind"] == "regex")
        .cloned()
        .collect();
    let time_on = |set: &RuleSet, texts: &[String]| -> f64 {
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            let f = fire_all(set, texts, 1);
            std::hint::black_box(f.rules.len());
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    };
    // `threads` threads on the slice sharing one compiled set, and with a set each.
    let own: Vec<RuleSet> = (0..threads)
        .map(|_| compile(&specs))
        .collect::<Result<_, _>>()?;
    let own_refs: Vec<&RuleSet> = own.iter().collect();
    let (mut shared_s, mut own_s) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats {
        let t = Instant::now();
        std::hint::black_box(fire_all(&set, slice, threads).rules.len());
        shared_s = shared_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(fire_with(&own_refs, slice).rules.len());
        own_s = own_s.min(t.elapsed().as_secs_f64());
    }
    let slice_one_s = time_on(&set, slice);
    drop(own);
    let kw_s = time_on(&compile(&keywords)?, slice);
    let re_s = time_on(&compile(&patterns)?, slice);
    let ascii: Vec<String> = slice.iter().filter(|t| t.is_ascii()).cloned().collect();
    let other: Vec<String> = slice.iter().filter(|t| !t.is_ascii()).cloned().collect();
    let ascii_s = time_on(&set, &ascii);
    let other_s = time_on(&set, &other);
    let other_re_s = time_on(&compile(&patterns)?, &other);
    let ascii_re_s = time_on(&compile(&patterns)?, &ascii);
    let per = |s: f64, k: usize| 1e6 * s / k.max(1) as f64;
    // The matcher asks each pattern alone; tried here for comparison: the patterns as one
    // `RegexSet` (the matcher before; a set can fall back only to the PikeVM), and that set with
    // ASCII word boundaries (which the lazy DFA handles on any text).
    let source = |p: &str, cs: bool| {
        if cs {
            p.to_string()
        } else {
            format!("(?i:{p})")
        }
    };
    let one_set = regex::RegexSet::new(PATTERNS.iter().map(|(_, _, p, cs)| source(p, *cs)))?;
    let ascii_set = regex::RegexSet::new(
        PATTERNS
            .iter()
            .map(|(_, _, p, cs)| source(&p.replace(r"\b", r"(?-u:\b)"), *cs)),
    )?;
    let time_fn = |texts: &[String], f: &dyn Fn(&str) -> usize| -> f64 {
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let t = Instant::now();
            let mut hits = 0usize;
            for text in texts {
                hits += f(text);
            }
            std::hint::black_box(hits);
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    };
    let set_fn = |t: &str| one_set.matches(t).iter().count();
    let ascii_set_fn = |t: &str| ascii_set.matches(t).iter().count();
    let set_other = time_fn(&other, &set_fn);
    let set_ascii = time_fn(&ascii, &set_fn);
    let ascii_b_other = time_fn(&other, &ascii_set_fn);
    let ascii_b_ascii = time_fn(&ascii, &ascii_set_fn);
    println!(
        "  on {} texts (best of {repeats}): 1 thread {slice_one_s:.3} s; {threads} threads sharing one set {shared_s:.3} s, with a set each {own_s:.3} s",
        slice.len()
    );
    println!(
        "  patterns tried apart (µs per text, ASCII / non-ASCII texts): one RegexSet (the matcher before) {:.2} / {:.2}; the set with ASCII word boundaries {:.2} / {:.2}",
        per(set_ascii, ascii.len()),
        per(set_other, other.len()),
        per(ascii_b_ascii, ascii.len()),
        per(ascii_b_other, other.len()),
    );
    println!(
        "  on {} texts, 1 thread (µs per text): all rules {:.2}; {keyword_rules} keyword rules alone {:.2}; {} patterns alone {:.2}; all rules on the {} ASCII texts {:.2}, on the {} others {:.2}; patterns alone on ASCII {:.2}, on the others {:.2}",
        slice.len(),
        per(s1, n),
        per(kw_s, slice.len()),
        PATTERNS.len(),
        per(re_s, slice.len()),
        ascii.len(),
        per(ascii_s, ascii.len()),
        other.len(),
        per(other_s, other.len()),
        per(ascii_re_s, ascii.len()),
        per(other_re_s, other.len()),
    );
    let report = json!({
        "items": n,
        "mean_chars": round(chars as f64 / n as f64, 1),
        "non_ascii_share": round(non_ascii as f64 / n as f64, 4),
        "rules": set.len(),
        "keyword_rules": keyword_rules,
        "patterns": PATTERNS.len(),
        "terms": term_counts.iter().sum::<usize>(),
        "terms_per_keyword_rule": [term_counts.iter().min(), term_counts.iter().max()],
        "compile_ms": round(1e3 * median(&compile_s), 2),
        "one_thread": {"seconds": round(s1, 3), "runs": runs(&one, 3), "items_per_sec": items_per_s(n, s1),
                       "cores_busy": round(busy_one, 2)},
        "threads": threads,
        "many_threads": {"seconds": round(s2, 3), "runs": runs(&many, 3), "items_per_sec": items_per_s(n, s2),
                         "cores_busy": round(busy_many, 2)},
        "slice_threads": {"one_thread_seconds": round(slice_one_s, 3), "shared_set_seconds": round(shared_s, 3),
                          "set_per_thread_seconds": round(own_s, 3)},
        "coverage": round(covered as f64 / n as f64, 4),
        "fires_per_item": round(fired.rules.len() as f64 / n as f64, 3),
        "rule_precision": round(precision, 3),
        "hit_rate_percent": hit_rates,
        "slice": {
            "texts": slice.len(),
            "us_per_text_all_rules": round(per(s1, n), 3),
            "us_per_text_keywords_only": round(per(kw_s, slice.len()), 3),
            "us_per_text_patterns_only": round(per(re_s, slice.len()), 3),
            "ascii_texts": ascii.len(),
            "us_per_ascii_text": round(per(ascii_s, ascii.len()), 3),
            "non_ascii_texts": other.len(),
            "us_per_non_ascii_text": round(per(other_s, other.len()), 3),
            "us_per_ascii_text_patterns_only": round(per(ascii_re_s, ascii.len()), 3),
            "us_per_non_ascii_text_patterns_only": round(per(other_re_s, other.len()), 3),
            "tried_regex_set_us_per_ascii_text": round(per(set_ascii, ascii.len()), 3),
            "tried_regex_set_us_per_non_ascii_text": round(per(set_other, other.len()), 3),
            "tried_ascii_word_boundary_set_us_per_ascii_text": round(per(ascii_b_ascii, ascii.len()), 3),
            "tried_ascii_word_boundary_set_us_per_non_ascii_text": round(per(ascii_b_other, other.len()), 3),
        },
    });
    Ok((report, items, fired, set))
}

/// How one fitted label model does against the generator's intents.
fn judge(
    m: &LabelModel,
    votes: &Votes,
    items: &[Item],
    fired: &Fired,
    model_voter: usize,
) -> Value {
    let (mut covered, mut lm_right, mut model_right, mut maj_right) = (0usize, 0, 0, 0);
    let (mut all_right, mut uncovered, mut kept) = (0usize, 0usize, 0usize);
    for (i, item) in items.iter().enumerate() {
        let v = votes.item(i);
        let best = argmax(&m.posterior(v));
        all_right += usize::from(best == item.truth);
        if fired.item(i).is_empty() {
            // The model's vote alone: how often the posterior keeps it.
            uncovered += 1;
            kept += usize::from(best == item.model);
            continue;
        }
        covered += 1;
        lm_right += usize::from(best == item.truth);
        model_right += usize::from(item.model == item.truth);
        if let Some(q) = majority(v, LABELS.len()) {
            maj_right += usize::from(argmax(&q) == item.truth);
        }
    }
    let acc = |k: usize| round(k as f64 / covered.max(1) as f64, 4);
    let top = argmax(m.prior());
    json!({
        "iterations": m.iterations,
        "accuracy_on_covered": {"model": acc(model_right), "majority": acc(maj_right), "label_model": acc(lm_right)},
        "accuracy_on_all": round(all_right as f64 / items.len().max(1) as f64, 4),
        "uncovered": uncovered,
        "uncovered_posterior_keeps_model_vote": round(kept as f64 / uncovered.max(1) as f64, 4),
        "prior_top": {"label": LABELS[top], "p": round(m.prior()[top], 4)},
        "model_voter_fitted_accuracy": round(m.accuracy(model_voter), 4),
    })
}

/// Part 2: the label model over the rules' votes and the model's, with the answered items
/// (one in `LABELED_EVERY`, as the databases hold them) known, as the apply job fits it, and
/// without them.
fn label_model(
    items: &[Item],
    fired: &Fired,
    set: &RuleSet,
    repeats: usize,
) -> anyhow::Result<Value> {
    let n = items.len();
    let model_voter = set.len();
    let t = Instant::now();
    let mut plain = Votes::new(set.len() + 1, LABELS.len());
    let mut anchored = Votes::new(set.len() + 1, LABELS.len());
    let mut row: Vec<(usize, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        row.clear();
        row.extend(
            fired
                .item(i)
                .iter()
                .map(|&r| (r as usize, set.label_of(r as usize))),
        );
        row.push((model_voter, item.model));
        plain.push(&row)?;
        anchored.push(&row)?;
        if i % LABELED_EVERY == LABELED_EVERY / 2 {
            anchored.know_last(item.truth)?;
        }
    }
    let build_s = t.elapsed().as_secs_f64() / 2.0;
    let mut fit_s = Vec::new();
    let mut fitted = None;
    let mut peak = None;
    for _ in 0..repeats.clamp(1, 2) {
        let reset = reset_peak();
        let t = Instant::now();
        let m = LabelModel::fit(
            &anchored,
            &FitOptions::balanced(&anchored, Some(model_voter)),
        )?;
        fit_s.push(t.elapsed().as_secs_f64());
        peak = self_mb("VmHWM:").filter(|_| reset);
        fitted = Some(m);
    }
    let m = fitted.expect("at least one repeat");
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(m.posterior(anchored.item(i)));
    }
    let posterior_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let unanchored = LabelModel::fit(&plain, &FitOptions::balanced(&plain, Some(model_voter)))?;
    let plain_s = t.elapsed().as_secs_f64();
    // The fit before the class balance was held: the prior learned by EM.
    let t = Instant::now();
    let learned = LabelModel::fit(&anchored, &FitOptions::shrunk())?;
    let learned_s = t.elapsed().as_secs_f64();
    // Distinct vote patterns: what a fit over (pattern, count) pairs would iterate over.
    let mut patterns: HashMap<&[(u16, u16)], usize> = HashMap::new();
    for i in 0..n {
        *patterns.entry(plain.item(i)).or_default() += 1;
    }
    let with = judge(&m, &anchored, items, fired, model_voter);
    let without = judge(&unanchored, &plain, items, fired, model_voter);
    let with_learned = judge(&learned, &anchored, items, fired, model_voter);
    let fit = median(&fit_s);
    for (name, j, s) in [
        (
            format!(
                "{} answered items known (as the job fits)",
                anchored.known()
            ),
            &with,
            fit,
        ),
        ("no item known".to_string(), &without, plain_s),
        (
            "answered items known, prior learned (the fit before)".to_string(),
            &with_learned,
            learned_s,
        ),
    ] {
        println!(
            "label model, {name}: fit {s:.2} s, {} iterations; accuracy on the covered items: model {}, majority {}, label model {}; on all items {}; the posterior keeps the model's vote on {} of the {} uncovered items; prior's largest class {} at {}; model voter's fitted accuracy {}",
            j["iterations"], j["accuracy_on_covered"]["model"], j["accuracy_on_covered"]["majority"],
            j["accuracy_on_covered"]["label_model"], j["accuracy_on_all"],
            j["uncovered_posterior_keeps_model_vote"], j["uncovered"], j["prior_top"]["label"],
            j["prior_top"]["p"], j["model_voter_fitted_accuracy"]
        );
    }
    println!(
        "  {n} items, {} voters, {} classes, {} distinct vote patterns; votes built in {build_s:.2} s; fit runs {}; posterior of every item {posterior_s:.2} s",
        plain.n_voters(),
        LABELS.len(),
        patterns.len(),
        runs(&fit_s, 2),
    );
    Ok(json!({
        "items": n,
        "voters": plain.n_voters(),
        "known": anchored.known(),
        "distinct_vote_patterns": patterns.len(),
        "votes_build_seconds": round(build_s, 3),
        "fit_seconds": round(fit, 3),
        "fit_runs": runs(&fit_s, 3),
        "iterations": m.iterations,
        "posterior_seconds_all_items": round(posterior_s, 3),
        "fit_peak_rss_mb": peak.map(|p| round(p, 1)),
        "anchored": with,
        "unanchored_fit_seconds": round(plain_s, 3),
        "unanchored": without,
        "learned_prior_fit_seconds": round(learned_s, 3),
        "learned_prior": with_learned,
    }))
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The stand-in model's stored prediction: peaked on its label, every label scored, shaped as a
/// pre-labeling job's row (`{"label", "scores": {...}}`).
fn model_row(item_id: i64, i: usize, label: usize) -> NewPrediction {
    let mut rng = Rng::new(i as u64 ^ 0xFEED);
    let top = 0.3 + 0.65 * rng.unit();
    let rest: Vec<f64> = (0..LABELS.len()).map(|_| 0.05 + rng.unit()).collect();
    let sum: f64 = rest
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != label)
        .map(|(_, v)| v)
        .sum();
    let p: Vec<f64> = rest
        .iter()
        .enumerate()
        .map(|(k, v)| {
            if k == label {
                top
            } else {
                (1.0 - top) * v / sum
            }
        })
        .collect();
    scored_row(item_id, &p)
}

/// A classification prediction over the 20 labels as `to_row` shapes one.
fn scored_row(item_id: i64, p: &[f64]) -> NewPrediction {
    let best = argmax(p);
    let mut sorted = p.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let entropy = -p
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|v| v * v.ln())
        .sum::<f64>();
    let mut output = Output::new();
    output.insert("label".into(), json!(LABELS[best]));
    output.insert(
        "scores".into(),
        Value::Object(
            LABELS
                .iter()
                .zip(p)
                .map(|(l, v)| (l.to_string(), json!(v)))
                .collect(),
        ),
    );
    NewPrediction {
        item_id,
        label: Some(LABELS[best].to_string()),
        output,
        confidence: p[best],
        margin: sorted[0] - sorted[1],
        entropy,
        truncated: false,
    }
}

/// A stable hash of the schema's source, so a cached database is rebuilt after a migration.
fn schema_hash() -> String {
    let src = include_str!("../src/store/schema.rs");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in src.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

fn db_files(path: &Path) -> [PathBuf; 3] {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    [
        path.to_path_buf(),
        path.with_file_name(format!("{name}-wal")),
        path.with_file_name(format!("{name}-shm")),
    ]
}

fn remove_db(path: &Path) {
    for f in db_files(path) {
        let _ = std::fs::remove_file(f);
    }
}

/// The database of an `n`-item project, from the cache or built (and then cached).
fn project_db(world: &World, dir: &Path, n: usize, fresh: bool) -> anyhow::Result<(PathBuf, f64)> {
    let path = dir.join(format!(
        "rules-g{GENERATOR_VERSION}-s{}-{n}.db",
        schema_hash()
    ));
    let done = path.with_extension("db.ok");
    if !fresh && done.exists() && path.exists() {
        println!("   {n}-item database: cached {}", path.display());
        return Ok((path, 0.0));
    }
    let _ = std::fs::remove_file(&done);
    remove_db(&path);
    let t = Instant::now();
    build_db(world, &path, n)?;
    let s = t.elapsed().as_secs_f64();
    std::fs::write(&done, format!("{s:.1}\n"))?;
    println!(
        "   {n}-item database built in {s:.1} s: {} ({:.0} MB)",
        path.display(),
        std::fs::metadata(&path).map_or(0.0, |m| m.len() as f64 / 1e6)
    );
    Ok((path, s))
}

fn build_db(world: &World, path: &Path, n: usize) -> anyhow::Result<()> {
    let store = Store::open(path)?;
    let actor = Actor::system();
    let project = store.write(|tx| {
        projects::create(
            tx,
            &actor,
            &NewProject {
                name: PROJECT.into(),
                task: TaskKind::Classification,
                labels: labels(),
                prompt: None,
                guidelines: None,
                queue_order: None,
                overlap: None,
                generation: None,
                gold_rate: None,
                precision_target: None,
                retrain_every: Some(0),
                near_duplicate_cosine: None,
            },
        )
    })?;
    let t = Instant::now();
    let rows = (0..n).map(|i| {
        let item = world.item(i);
        Ok::<_, wick::formats::jsonl::BadLine>(wick::formats::import::ImportRow {
            line: i + 1,
            id: Some(format!("m{i:07}")),
            text: item.text,
            meta: None,
            label: (i % LABELED_EVERY == LABELED_EVERY / 2).then(|| LABELS[item.truth].to_string()),
            entities: None,
            gold: false,
        })
    });
    let report = wick::store::import::import(&store, &actor, project.id, rows, |_| {})?;
    anyhow::ensure!(
        report.inserted as usize == n,
        "import: {} items of {n} ({} errors)",
        report.inserted,
        report.error_count
    );
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ids: Vec<i64> = store.read(|c| {
        let mut stmt = c.prepare("SELECT id FROM items WHERE project_id = ?1 ORDER BY id")?;
        let ids = stmt
            .query_map([project.id], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    })?;
    anyhow::ensure!(ids.len() == n, "{} item ids for {n} items", ids.len());
    let by = Provenance {
        model_id: LM_MODEL.into(),
        prompt_version: LM_PROMPT.into(),
        labels_hash: wick::jobs::labels_hash(&project.labels),
        learner_id: None,
    };
    store.write(|tx| {
        tx.execute(
            "INSERT INTO jobs (project_id, kind, status, model_id, prompt_version, created_at)
             VALUES (?1, 'prelabel', 'done', ?2, ?3, 0)",
            rusqlite::params![project.id, LM_MODEL, LM_PROMPT],
        )?;
        Ok(())
    })?;
    for (c, chunk) in ids.chunks(5000).enumerate() {
        let batch: Vec<NewPrediction> = chunk
            .iter()
            .enumerate()
            .map(|(k, &id)| {
                let i = c * 5000 + k;
                model_row(id, i, world.item(i).model)
            })
            .collect();
        store.write(|tx| predictions::insert(tx, &by, project.queue_order, &batch))?;
    }
    let predict_s = t.elapsed().as_secs_f64();
    let rules = validated(&rule_specs())?;
    store.write(|tx| {
        for r in &rules {
            stored::save(tx, &actor, project.id, r, Save::Add)?;
        }
        tx.execute_batch("ANALYZE")?;
        Ok(())
    })?;
    // Checkpointed and closed: the copy each run works on is the main file alone.
    drop(store);
    let c = rusqlite::Connection::open(path)?;
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(c);
    println!(
        "   built {n} items: import {import_s:.1} s ({:.0} rows/s), {n} model predictions {predict_s:.1} s",
        n as f64 / import_s
    );
    Ok(())
}

/// Copies a cached database (its WAL was checkpointed and truncated) to `to`.
fn working_copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    remove_db(to);
    std::fs::copy(from, to)?;
    let wal = &db_files(from)[1];
    if wal.exists() {
        std::fs::copy(wal, &db_files(to)[1])?;
    }
    Ok(())
}

/// What the child measures and hands back as JSON.
fn child(args: &[String]) -> anyhow::Result<()> {
    let main_db = PathBuf::from(&args[0]);
    let preview_db = PathBuf::from(&args[1]);
    let repeats: usize = env_or("WICK_BENCH_REPEATS", 3usize).max(1);
    let store = Store::open(&main_db)?;
    let project = store.read(|c| projects::by_name(c, PROJECT))?;
    let n = store.read(|c| wick::store::items::count(c, project.id))? as usize;
    let mut out = json!({"items": n, "rss_mb_at_start": self_mb("VmRSS:").map(|v| round(v, 1))});

    // WICK_BENCH_PARTS=apply: the apply job alone (to profile it).
    let all = std::env::var("WICK_BENCH_PARTS").map_or(true, |p| p != "apply");
    if all {
        // The scan, query by query.
        out["scan"] = scan_breakdown(&store, project.id)?;

        // The rules table at N.
        let mut table_s = Vec::new();
        let mut table_peak: Option<f64> = None;
        let mut table_heap = 0.0f64;
        let mut covered = 0u64;
        for _ in 0..repeats.min(2) {
            let reset = reset_peak();
            let sampler = AnonPeak::start();
            let t = Instant::now();
            let table = wick::app::rules::rules_table(&store, project.id)?;
            table_s.push(t.elapsed().as_secs_f64());
            table_peak = self_mb("VmHWM:").filter(|_| reset).or(table_peak);
            table_heap = table_heap.max(sampler.stop().1);
            anyhow::ensure!(
                table.items as usize == n && table.rules.len() == 55,
                "rules table: {} items, {} rules",
                table.items,
                table.rules.len()
            );
            covered = table.covered;
        }
        eprintln!("rules table at {n}: {table_s:?} s");
        out["rules_table"] = json!({"seconds": round(median(&table_s), 3), "runs": runs(&table_s, 3),
            "covered": covered, "peak_rss_mb": table_peak.map(|p| round(p, 1)),
            "heap_growth_mb": round(table_heap, 1)});

        // The live preview: on the 100k project, and at N.
        let preview_store = if preview_db == main_db {
            store.clone()
        } else {
            Store::open(&preview_db)?
        };
        let pp = preview_store.read(|c| projects::by_name(c, PROJECT))?;
        let pn = preview_store.read(|c| wick::store::items::count(c, pp.id))? as usize;
        out["preview"] = preview_times(&preview_store, pp.id, pn, repeats + 2)?;
        if pn != n {
            out["preview_at_n"] = preview_times(&store, project.id, n, repeats.min(3))?;
        }
    }

    // The apply job end to end.
    let reset = reset_peak();
    let before = self_mb("VmRSS:");
    let sampler = AnonPeak::start();
    let cpu_at_start = cpu_seconds();
    let t = Instant::now();
    let job = store.write(|tx| {
        stored::queue_apply(
            tx,
            &Actor::system(),
            project.id,
            &json!({"method": "label_model"}),
        )
    })?;
    // When the job's done count reaches its total, its scan and matching are over; the fit, the
    // prediction rows and the write are what follows.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (store, stop, id) = (store.clone(), stop.clone(), job.id);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let progress = store.read(|c| {
                    Ok(
                        c.query_row("SELECT done, total FROM jobs WHERE id = ?1", [id], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                        })?,
                    )
                });
                if let Ok((done, total)) = progress {
                    if total > 0 && done >= total {
                        return Some((t.elapsed().as_secs_f64(), cpu_seconds()));
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            None
        })
    };
    let ran = wick::jobs::rules::run(&store, &job);
    let apply_s = t.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let scanned = watcher.join().ok().flatten();
    let scanned_s = scanned.map(|(s, _)| s);
    // CPU seconds per wall second while it scanned and matched (2: both cores all the time).
    let scan_cores = scanned.map(|(s, cpu)| (cpu - cpu_at_start) / s.max(1e-9));
    ran.map_err(|e| anyhow::anyhow!("apply: {e}"))?;
    let peak = self_mb("VmHWM:").filter(|_| reset);
    let anon_peak = sampler.stop();
    let status = store.read(|c| wick::store::jobs::status(c, job.id))?;
    anyhow::ensure!(
        status == wick::store::jobs::JobStatus::Done,
        "apply job ended {status:?}"
    );
    let params = store.read(|c| stored::job_params(c, job.id))?;
    let written: i64 = store.read(|c| {
        Ok(c.query_row(
            "SELECT COUNT(*) FROM predictions WHERE model_id LIKE 'rules@%'",
            [],
            |r| r.get(0),
        )?)
    })?;
    anyhow::ensure!(
        written == params["predicted"].as_i64().unwrap_or(-1) && written > 0,
        "apply wrote {written} predictions, its summary says {}",
        params["predicted"]
    );
    let settled_covered: i64 = params["items"].as_i64().unwrap_or(0);
    eprintln!(
        "apply at {n}: {apply_s:.2} s, {written} predictions, peak RSS {peak:?} MB (before {before:?})"
    );
    out["apply"] = json!({
        "seconds": round(apply_s, 3),
        "items_per_sec": items_per_s(n, apply_s),
        "predicted": written,
        "items": settled_covered,
        "iterations": params["iterations"],
        "model_id": params["model_id"],
        "peak_rss_mb": peak.map(|p| round(p, 1)),
        "rss_mb_before": before.map(|p| round(p, 1)),
        // The readers map the database file: VmHWM counts its pages (RssFile) with the heap.
        "peak_rss_anon_mb": round(anon_peak.0, 1),
        "heap_growth_mb": round(anon_peak.1, 1),
        "scan_and_match_seconds": scanned_s.map(|v| round(v, 3)),
        "scan_and_match_cores_busy": scan_cores.map(|v| round(v, 2)),
        "fit_rows_write_seconds": scanned_s.map(|v| round(apply_s - v, 3)),
        "rss_anon_mb_after": self_mb("RssAnon:").map(|p| round(p, 1)),
        "rss_file_mb_after": self_mb("RssFile:").map(|p| round(p, 1)),
        "model_voter_accuracy": params["voters"].as_array().and_then(|v| v.last()).map(|v| v["accuracy"].clone()),
    });

    // The prediction subquery again, now that every covered item has a rules@ row as well;
    // then, tried on this copy only, with a partial covering index for it (dropped after).
    if all {
        let (after_s, _, _) = paged(&store, project.id, PREDICTION_SQL, None)?;
        let t = Instant::now();
        store.write(|tx| {
            tx.execute_batch(
                "CREATE INDEX bench_model_label ON predictions (item_id, id, label)
                 WHERE learner_id IS NULL AND substr(model_id, 1, 6) != 'rules@'",
            )?;
            Ok(())
        })?;
        let index_s = t.elapsed().as_secs_f64();
        // The planner keeps predictions_item by itself (its statistics predate the index).
        let forced = PREDICTION_SQL.replace(
            "FROM predictions p WHERE",
            "FROM predictions p INDEXED BY bench_model_label WHERE",
        );
        let forced_scan = SCAN_SQL.replace(
            "FROM predictions p WHERE",
            "FROM predictions p INDEXED BY bench_model_label WHERE",
        );
        let (indexed_s, _, _) = paged(&store, project.id, &forced, None)?;
        let (indexed_scan_s, _, _) = paged(&store, project.id, &forced_scan, Some(2))?;
        let plan: Vec<String> = store.read(|c| {
            let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {forced}"))?;
            let rows = stmt
                .query_map(rusqlite::params![project.id, 0i64, 5000i64], |r| {
                    r.get::<_, String>(3)
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        store.write(|tx| {
            tx.execute_batch("DROP INDEX bench_model_label")?;
            Ok(())
        })?;
        eprintln!(
            "prediction subquery after the apply {after_s:.2} s; with a covering partial index ({index_s:.1} s to build) {indexed_s:.2} s, the whole scan query {indexed_scan_s:.2} s; plan {plan:?}"
        );
        out["subquery_after_apply"] = json!({
            "seconds": round(after_s, 3),
            "tried_covering_index_build_seconds": round(index_s, 2),
            "tried_covering_index_seconds": round(indexed_s, 3),
            "tried_covering_index_scan_query_seconds": round(indexed_scan_s, 3),
            "tried_covering_index_plan": plan,
        });
    }

    // The apply's write, timed apart.
    if all {
        out["write"] = write_breakdown(&store, &project, n)?;
    }
    println!("{out}");
    Ok(())
}

/// `preview` of a keyword rule and of a pattern being typed, `repeats` times each.
fn preview_times(
    store: &Store,
    project_id: i64,
    n: usize,
    repeats: usize,
) -> anyhow::Result<Value> {
    let specs = [
        (
            "keywords",
            json!({"name": "typing_kw", "label": "request_refund", "kind": "keywords",
            "terms": ["refund", "money back", "reimbursement", "return the money", "refund status",
                      "refund pending", "charged back", "get a refund", "my refund", "refunded"]}),
        ),
        (
            "regex",
            json!({"name": "typing_re", "label": "card_arrival", "kind": "regex",
            "pattern": r"\b(where|when)\b.*\bcard\b.*\b(arriv|come|deliver)"}),
        ),
    ];
    let mut out = json!({"items": n});
    for (kind, spec) in specs {
        let mut secs = Vec::new();
        let mut sampled = 0;
        let mut hits = 0;
        for _ in 0..repeats {
            let spec: RuleSpec = serde_json::from_value(spec.clone())?;
            let t = Instant::now();
            let p = wick::app::rules::preview(store, project_id, spec)?;
            secs.push(t.elapsed().as_secs_f64());
            sampled = p.sampled;
            hits = p.figures.hits;
        }
        eprintln!("preview ({kind}) at {n}: {secs:?} s, {sampled} sampled, {hits} hits");
        out[kind] = json!({"seconds": round(median(&secs), 4), "max": round(secs.iter().copied().fold(0.0, f64::max), 4),
            "runs": runs(&secs, 4), "sampled": sampled, "hits": hits});
    }
    Ok(out)
}

const SCAN_SQL: &str = "SELECT i.id, i.ext_id, i.text, i.annotators > 0 OR i.gold IS NOT NULL,
   (SELECT p.label FROM predictions p WHERE p.item_id = i.id AND p.learner_id IS NULL
      AND substr(p.model_id, 1, 6) != 'rules@' ORDER BY p.id DESC LIMIT 1)
 FROM items i INDEXED BY items_project
 WHERE i.project_id = ?1 AND i.id > ?2
 ORDER BY i.id LIMIT ?3";
const ITEMS_SQL: &str = "SELECT i.id, i.ext_id, i.text, i.annotators > 0 OR i.gold IS NOT NULL
 FROM items i INDEXED BY items_project
 WHERE i.project_id = ?1 AND i.id > ?2
 ORDER BY i.id LIMIT ?3";
const PREDICTION_SQL: &str = "SELECT i.id,
   (SELECT p.label FROM predictions p WHERE p.item_id = i.id AND p.learner_id IS NULL
      AND substr(p.model_id, 1, 6) != 'rules@' ORDER BY p.id DESC LIMIT 1)
 FROM items i INDEXED BY items_project
 WHERE i.project_id = ?1 AND i.id > ?2
 ORDER BY i.id LIMIT ?3";

/// Pages of 5,000 through a query of the scan's shape: (seconds, rows, text bytes).
fn paged(
    store: &Store,
    project_id: i64,
    sql: &str,
    text_col: Option<usize>,
) -> anyhow::Result<(f64, usize, usize)> {
    let t = Instant::now();
    let (mut after, mut rows, mut bytes) = (0i64, 0usize, 0usize);
    loop {
        let (n, last, b) = store.read(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let mut q = stmt.query(rusqlite::params![project_id, after, 5000i64])?;
            let (mut n, mut last, mut b) = (0usize, after, 0usize);
            while let Some(r) = q.next()? {
                last = r.get(0)?;
                if let Some(col) = text_col {
                    let s: String = r.get(col)?;
                    b += s.len();
                } else {
                    let l: Option<String> = r.get(1)?;
                    b += l.map_or(0, |l| l.len());
                }
                n += 1;
            }
            Ok((n, last, b))
        })?;
        rows += n;
        bytes += b;
        after = last;
        if n < 5000 {
            break;
        }
    }
    Ok((t.elapsed().as_secs_f64(), rows, bytes))
}

fn scan_breakdown(store: &Store, project_id: i64) -> anyhow::Result<Value> {
    let project = store.read(|c| projects::get(c, project_id))?;
    // The scan as the job runs it (rows decoded into `ScanRow`s), on this thread.
    let wants = Wants {
        sample_every: 1,
        ..Wants::default()
    };
    let t = Instant::now();
    let mut texts: Vec<String> = Vec::new();
    let mut with_model = 0usize;
    let mut after = 0;
    loop {
        let page = store.read(|c| stored::scan(c, project_id, after, 5000, &wants))?;
        let Some(last) = page.last() else { break };
        after = last.item_id;
        let len = page.len();
        for row in page {
            with_model += usize::from(row.model_label.is_some());
            texts.push(row.text);
        }
        if len < 5000 {
            break;
        }
    }
    let scan_s = t.elapsed().as_secs_f64();
    let n = texts.len();
    let (items_s, _, text_bytes) = paged(store, project_id, ITEMS_SQL, Some(2))?;
    let (pred_s, _, _) = paged(store, project_id, PREDICTION_SQL, None)?;
    let (sql_s, _, _) = paged(store, project_id, SCAN_SQL, Some(2))?;
    let plan: Vec<String> = store.read(|c| {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {SCAN_SQL}"))?;
        let rows = stmt
            .query_map(rusqlite::params![project_id, 0i64, 5000i64], |r| {
                r.get::<_, String>(3)
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    // Matching the scanned texts, as the job's loop does, on one thread.
    let t = Instant::now();
    let set = wick::jobs::rules::compile(store, &project)?;
    let compile_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fired = fire_all(&set, &texts, 1);
    let match_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let fired2 = fire_all(&set, &texts, 2);
    let match2_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(fired.rules.len() == fired2.rules.len(), "threads disagree");
    let covered = (0..n).filter(|&i| !fired.item(i).is_empty()).count();
    eprintln!(
        "scan of {n}: stored::scan {scan_s:.2} s; items only {items_s:.2} s; prediction subquery only {pred_s:.2} s; both (raw) {sql_s:.2} s; match {match_s:.2} s (2 threads {match2_s:.2} s); plan {plan:?}"
    );
    Ok(json!({
        "items": n,
        "with_model_label": with_model,
        "covered": covered,
        "text_mb": round(text_bytes as f64 / 1e6, 1),
        "store_scan_seconds": round(scan_s, 3),
        "items_query_seconds": round(items_s, 3),
        "prediction_subquery_seconds": round(pred_s, 3),
        "scan_query_raw_seconds": round(sql_s, 3),
        "plan": plan,
        "compile_seconds": round(compile_s, 4),
        "match_seconds": round(match_s, 3),
        "match_seconds_2_threads": round(match2_s, 3),
    }))
}

/// The apply's write on its own: the prediction rows of every covered unanswered item (the
/// label, 20 scores and the votes, as `jobs::rules` builds them, here from a majority vote),
/// `predictions::insert` in chunks of 5,000, and the commit, in one transaction, under a model
/// id of its own.
fn write_breakdown(
    store: &Store,
    project: &wick::domain::Project,
    n: usize,
) -> anyhow::Result<Value> {
    let set = wick::jobs::rules::compile(store, project)?;
    let names: Vec<String> = set.rules().iter().map(|r| r.name().to_string()).collect();
    let wants = Wants {
        sample_every: 1,
        ..Wants::default()
    };
    let index: HashMap<&str, usize> = LABELS.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let mut todo: Vec<(i64, Vec<(usize, usize)>)> = Vec::new();
    let mut after = 0;
    let mut scratch = Scratch::default();
    let mut fired = Vec::new();
    loop {
        let page = store.read(|c| stored::scan(c, project.id, after, 5000, &wants))?;
        let Some(last) = page.last() else { break };
        after = last.item_id;
        for row in &page {
            set.fired(&row.text, None, &mut scratch, &mut fired);
            if fired.is_empty() || row.settled {
                continue;
            }
            let mut v: Vec<(usize, usize)> = fired.iter().map(|&r| (r, set.label_of(r))).collect();
            if let Some(m) = row.model_label.as_deref().and_then(|l| index.get(l)) {
                v.push((set.len(), *m));
            }
            todo.push((row.item_id, v));
        }
        if page.len() < 5000 {
            break;
        }
    }
    let order = project.queue_order;
    let full = write_pass(
        store,
        project,
        &todo,
        &names,
        "rules@breakdown",
        None,
        order,
    )?;
    let compact = write_pass(
        store,
        project,
        &todo,
        &names,
        "rules@compact",
        Some(3),
        order,
    )?;
    // The same without moving each item in the queue (`UPDATE items SET priority` per row,
    // which the uncertainty order, the default, asks for).
    let unqueued = write_pass(
        store,
        project,
        &todo,
        &names,
        "rules@unqueued",
        Some(3),
        wick::domain::QueueOrder::Sequential,
    )?;
    eprintln!(
        "write of {} prediction rows at {n} ({order:?} queue): every score {full}; top 3 scores {compact}; top 3 without the priority update {unqueued}",
        todo.len()
    );
    Ok(
        json!({"rows": todo.len(), "queue_order": format!("{order:?}"), "every_score": full,
              "top_3_scores": compact, "top_3_scores_no_priority_update": unqueued}),
    )
}

/// One pass of `write_breakdown` under `model_id`: every score, or only the `top` highest.
fn write_pass(
    store: &Store,
    project: &wick::domain::Project,
    todo: &[(i64, Vec<(usize, usize)>)],
    names: &[String],
    model_id: &str,
    top: Option<usize>,
    order: wick::domain::QueueOrder,
) -> anyhow::Result<Value> {
    let by = Provenance {
        model_id: model_id.into(),
        prompt_version: String::new(),
        labels_hash: wick::jobs::labels_hash(&project.labels),
        learner_id: None,
    };
    // Start from an empty WAL file, as the apply did (the cached database was checkpointed
    // and truncated): growing the WAL is part of what a large write costs.
    let c = rusqlite::Connection::open(store.path())?;
    let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    drop(c);
    let sampler = AnonPeak::start();
    let (mut rows_s, mut insert_s) = (0.0, 0.0);
    let t = Instant::now();
    let ids: Vec<i64> = todo.iter().map(|(i, _)| *i).collect();
    store.write(|tx| {
        for chunk in todo.chunks(5000) {
            let t0 = Instant::now();
            let batch: Vec<NewPrediction> = chunk
                .iter()
                .map(|(id, v)| {
                    let encoded: Vec<(u16, u16)> =
                        v.iter().map(|&(a, b)| (a as u16, b as u16)).collect();
                    let p = majority(&encoded, LABELS.len())
                        .unwrap_or_else(|| vec![1.0 / LABELS.len() as f64; LABELS.len()]);
                    let mut row = scored_row(*id, &p);
                    if let (Some(k), Some(Value::Object(scores))) =
                        (top, row.output.get_mut("scores"))
                    {
                        let mut kept: Vec<(String, Value)> =
                            std::mem::take(scores).into_iter().collect();
                        kept.sort_by(|a, b| {
                            b.1.as_f64()
                                .unwrap_or(0.0)
                                .total_cmp(&a.1.as_f64().unwrap_or(0.0))
                        });
                        kept.truncate(k);
                        scores.extend(kept);
                    }
                    let votes: serde_json::Map<String, Value> = v
                        .iter()
                        .map(|&(r, l)| {
                            let name = names.get(r).map_or("model", String::as_str);
                            (name.to_string(), json!(LABELS[l]))
                        })
                        .collect();
                    row.output.insert("votes".into(), Value::Object(votes));
                    row
                })
                .collect();
            let t1 = Instant::now();
            predictions::insert(tx, &by, order, &batch)?;
            rows_s += (t1 - t0).as_secs_f64();
            insert_s += t1.elapsed().as_secs_f64();
        }
        wick::store::auto_accept::after_predictions(tx, project.id, &ids)?;
        Ok(())
    })?;
    let total_s = t.elapsed().as_secs_f64();
    let heap = sampler.stop();
    let json_bytes: i64 = store.read(|c| {
        Ok(c.query_row(
            "SELECT COALESCE(SUM(length(output)), 0) FROM predictions WHERE model_id = ?1",
            [model_id],
            |r| r.get(0),
        )?)
    })?;
    Ok(json!({
        "rows_seconds": round(rows_s, 3),
        "insert_seconds": round(insert_s, 3),
        "transaction_seconds": round(total_s, 3),
        "commit_seconds": round(total_s - rows_s - insert_s, 3),
        "json_mb": round(json_bytes as f64 / 1e6, 1),
        "heap_growth_mb": round(heap.1, 1),
        "wal_truncated_first": busy == 0,
    }))
}

fn goal(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--sqlite-child") {
        return child(&args[at + 1..]);
    }
    let n: usize = env_or("WICK_BENCH_ITEMS", 1_000_000usize).max(1000);
    let threads: usize = env_or("WICK_BENCH_THREADS", 2usize).max(1);
    let repeats: usize = env_or("WICK_BENCH_REPEATS", 3usize).max(1);
    let preview_n: usize = env_or("WICK_BENCH_PREVIEW_ITEMS", 100_000usize).min(n);
    let fresh = env_or("WICK_BENCH_FRESH", 0u8) == 1;
    println!(
        "== rules bench: {n} items, {threads} threads, {repeats} repeats; preview on {preview_n} items"
    );
    let started = Instant::now();
    let world = World::new();
    let (matching_report, items, fired, set) = matching(&world, n, threads, repeats)?;
    let lm = label_model(&items, &fired, &set, repeats)?;
    drop((items, fired, set));

    println!("== through SQLite (databases under target/bench-rules/)");
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = target.join("bench-rules");
    std::fs::create_dir_all(&dir)?;
    let (main_db, main_build_s) = project_db(&world, &dir, n, fresh)?;
    let (preview_db, preview_build_s) = if preview_n == n {
        (main_db.clone(), 0.0)
    } else {
        project_db(&world, &dir, preview_n, fresh)?
    };
    let work = dir.join("work.db");
    let t = Instant::now();
    working_copy(&main_db, &work)?;
    let copy_s = t.elapsed().as_secs_f64();
    let preview_work = if preview_db == main_db {
        work.clone()
    } else {
        let w = dir.join("work-preview.db");
        working_copy(&preview_db, &w)?;
        w
    };
    let db_mb = std::fs::metadata(&work).map_or(0.0, |m| m.len() as f64 / 1e6);
    println!("   working copy {:.0} MB in {copy_s:.1} s", db_mb);
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("--sqlite-child")
        .arg(&work)
        .arg(&preview_work)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    remove_db(&work);
    remove_db(&preview_work);
    anyhow::ensure!(
        out.status.success(),
        "the SQLite process failed ({})",
        out.status
    );
    let sq: Value = serde_json::from_slice(&out.stdout)?;

    let m = &matching_report;
    let apply_s = sq["apply"]["seconds"].as_f64().unwrap_or(f64::INFINITY);
    let preview_kw = sq["preview"]["keywords"]["seconds"]
        .as_f64()
        .unwrap_or(f64::INFINITY);
    let preview_re = sq["preview"]["regex"]["seconds"]
        .as_f64()
        .unwrap_or(f64::INFINITY);
    let preview_worst = preview_kw.max(preview_re);
    let sc = &sq["scan"];
    let w = &sq["write"];
    println!(
        "\n== table ({n} items; {} rules: {} keyword rules, {} patterns)",
        m["rules"], m["keyword_rules"], m["patterns"]
    );
    println!("| measurement | figure | notes |");
    println!("|---|---|---|");
    println!(
        "| `RuleSet::compile`, {} rules ({} terms) | {} ms | |",
        m["rules"], m["terms"], m["compile_ms"]
    );
    println!(
        "| `fired` over {n} texts, 1 thread | {} s ({} items/s) | coverage {:.1} %, {} rules per item |",
        m["one_thread"]["seconds"], m["one_thread"]["items_per_sec"],
        100.0 * m["coverage"].as_f64().unwrap_or(0.0), m["fires_per_item"]
    );
    println!(
        "| `fired` over {n} texts, {threads} threads | {} s ({} items/s) | |",
        m["many_threads"]["seconds"], m["many_threads"]["items_per_sec"]
    );
    println!(
        "| µs per text: keyword rules alone / patterns alone | {} / {} | on {} texts |",
        m["slice"]["us_per_text_keywords_only"],
        m["slice"]["us_per_text_patterns_only"],
        m["slice"]["texts"]
    );
    println!(
        "| µs per text, all rules: ASCII / non-ASCII texts | {} / {} | patterns alone {} / {} |",
        m["slice"]["us_per_ascii_text"],
        m["slice"]["us_per_non_ascii_text"],
        m["slice"]["us_per_ascii_text_patterns_only"],
        m["slice"]["us_per_non_ascii_text_patterns_only"]
    );
    println!(
        "| `LabelModel::fit` (shrunk), {n} items, {} voters, {} known | {} s | {} iterations; {} distinct vote patterns; without known items {} s |",
        lm["voters"], lm["known"], lm["fit_seconds"], lm["iterations"], lm["distinct_vote_patterns"],
        lm["unanchored_fit_seconds"]
    );
    for key in ["anchored", "unanchored"] {
        let j = &lm[key];
        println!(
            "| accuracy on covered items ({key}): model / majority / label model | {} / {} / {} | uncovered items keep the model's vote: {}; prior's top {} {} |",
            j["accuracy_on_covered"]["model"],
            j["accuracy_on_covered"]["majority"],
            j["accuracy_on_covered"]["label_model"],
            j["uncovered_posterior_keeps_model_vote"],
            j["prior_top"]["label"],
            j["prior_top"]["p"]
        );
    }
    println!(
        "| `store::rules::scan`, {n} items (pages of 5,000) | {} s | items alone {} s, prediction subquery alone {} s |",
        sc["store_scan_seconds"], sc["items_query_seconds"], sc["prediction_subquery_seconds"]
    );
    let sa = &sq["subquery_after_apply"];
    println!(
        "| prediction subquery alone after the apply / with a partial covering index (tried) | {} / {} s | index built in {} s; the whole scan query with it {} s |",
        sa["seconds"], sa["tried_covering_index_seconds"], sa["tried_covering_index_build_seconds"],
        sa["tried_covering_index_scan_query_seconds"]
    );
    println!(
        "| matching the scanned texts, 1 / 2 threads | {} / {} s | |",
        sc["match_seconds"], sc["match_seconds_2_threads"]
    );
    println!(
        "| `rules_table`, {n} items | {} s | peak RSS {} MB (mostly the mapped database), the heap grew by {} MB |",
        sq["rules_table"]["seconds"], sq["rules_table"]["peak_rss_mb"], sq["rules_table"]["heap_growth_mb"]
    );
    for (key, label) in [("preview", "preview"), ("preview_at_n", "preview")] {
        let p = &sq[key];
        if p.is_null() {
            continue;
        }
        println!(
            "| `{label}`, {} items: keyword rule / pattern (median; max) | {} / {} s ({} / {}) | {} items sampled{} |",
            p["items"], p["keywords"]["seconds"], p["regex"]["seconds"], p["keywords"]["max"], p["regex"]["max"],
            p["keywords"]["sampled"],
            if key == "preview" { "; goal ≤ 0.3 s on 100k" } else { "" }
        );
    }
    println!(
        "| apply job (`queue_apply` + `jobs::rules::run`), {n} items | {} s ({} items/s) | scan + matching {} s ({} cores busy), then fit + rows + write {} s; {} predictions written; peak RSS {} MB, the heap grew by {} MB; goal ≤ 10 s at 1M |",
        sq["apply"]["seconds"], sq["apply"]["items_per_sec"], sq["apply"]["scan_and_match_seconds"],
        sq["apply"]["scan_and_match_cores_busy"],
        sq["apply"]["fit_rows_write_seconds"], sq["apply"]["predicted"], sq["apply"]["peak_rss_mb"],
        sq["apply"]["heap_growth_mb"]
    );
    println!(
        "| the apply's write alone (rows built per 5,000), every score: rows / insert / whole transaction | {} / {} / {} s | {} rows, {} MB of JSON, the heap grew by {} MB |",
        w["every_score"]["rows_seconds"], w["every_score"]["insert_seconds"], w["every_score"]["transaction_seconds"],
        w["rows"], w["every_score"]["json_mb"], w["every_score"]["heap_growth_mb"]
    );
    println!(
        "| the same with the top 3 scores only | {} / {} / {} s | {} MB of JSON |",
        w["top_3_scores"]["rows_seconds"],
        w["top_3_scores"]["insert_seconds"],
        w["top_3_scores"]["transaction_seconds"],
        w["top_3_scores"]["json_mb"]
    );
    println!(
        "| the same, top 3 scores, without the per-row queue-priority update | {} / {} / {} s | |",
        w["top_3_scores_no_priority_update"]["rows_seconds"],
        w["top_3_scores_no_priority_update"]["insert_seconds"],
        w["top_3_scores_no_priority_update"]["transaction_seconds"]
    );
    println!();
    if n == 1_000_000 {
        println!(
            "goal: apply 1M items <= 10 s: {apply_s:.2} s, {}",
            goal(apply_s <= 10.0)
        );
    }
    if preview_n == 100_000 {
        println!(
            "goal: preview on 100k items <= 0.3 s: keyword {preview_kw:.3} s, pattern {preview_re:.3} s, {}",
            goal(preview_worst <= 0.3)
        );
    }
    let report = json!({
        "items": n,
        "threads": threads,
        "repeats": repeats,
        "machine": {"cores": std::thread::available_parallelism().map_or(0, |c| c.get())},
        "matching": matching_report,
        "label_model": lm,
        "sqlite": sq,
        "db": {"mb": round(db_mb, 1), "build_seconds": round(main_build_s, 1),
               "preview_build_seconds": round(preview_build_s, 1), "copy_seconds": round(copy_s, 1)},
        "goals": {"apply_1m_le_10s": (n == 1_000_000).then_some(apply_s <= 10.0),
                  "preview_100k_le_300ms": (preview_n == 100_000).then_some(preview_worst <= 0.3)},
        "wall_seconds": round(started.elapsed().as_secs_f64(), 1),
    });
    let path = target.join("bench-rules.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
    println!(
        "json: {} (whole run {:.0} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
