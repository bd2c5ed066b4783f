//! Candidate entity spans, proposed cheaply and generously so that the scorer (which can say
//! "not an entity") decides: every run of capitalised words and its sub-runs, every content
//! word and pair of adjacent content words (names in chat text are often lower case), and
//! @/# tokens with and without their sign. On the shared WNUT-17 dev set these cover about
//! 0.9 of the gold spans (BENCHMARKS.md, "Entity proposals").

/// Longest proposed span, in words.
const MAX_WORDS: usize = 6;
/// Most proposals per text: runs of capitalised words first, so a long text keeps those.
pub const MAX_PROPOSALS: usize = 48;

/// A proposed span, as byte offsets into the text (end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Candidate {
    pub start: usize,
    pub end: usize,
}

/// One word: a run of non-space characters with its leading and trailing punctuation cut
/// off (a leading @ or # stays).
#[derive(Debug, Clone, Copy)]
struct Word<'t> {
    start: usize,
    end: usize,
    text: &'t str,
    /// Whether only spaces, or joining marks (: - & '), separate it from the word before.
    joined: bool,
}

/// Words that may sit inside a name between capitalised words ("Game of Thrones",
/// "Beauty and the Beast") but never begin or end one.
const CONNECTORS: &[&str] = &["of", "the", "and", "&", "de", "for", "on", "in", "a", "'s"];

pub fn propose(text: &str) -> Vec<Candidate> {
    let words = words(text);
    let mut out: Vec<Candidate> = Vec::new();
    let push = |out: &mut Vec<Candidate>, a: &Word, b: &Word| {
        let c = Candidate {
            start: a.start,
            end: b.end,
        };
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for (i, j) in capitalised_runs(&words) {
        for a in i..j {
            for b in a + 1..=j.min(a + MAX_WORDS) {
                if !is_connector(words[a].text) && !is_connector(words[b - 1].text) {
                    push(&mut out, &words[a], &words[b - 1]);
                }
            }
        }
    }
    for (k, w) in words.iter().enumerate() {
        if let Some(bare) = w.text.strip_prefix(['@', '#']).filter(|b| !b.is_empty()) {
            push(&mut out, w, w);
            let inner = Word {
                start: w.end - bare.len(),
                ..*w
            };
            push(&mut out, &inner, w);
        } else if is_content(w.text) {
            push(&mut out, w, w);
            if let Some(next) = words.get(k + 1).filter(|n| n.joined && is_content(n.text)) {
                push(&mut out, w, next);
            }
        }
    }
    out.retain(|c| !is_function_phrase(&text[c.start..c.end]));
    out.truncate(MAX_PROPOSALS);
    out
}

fn words(text: &str) -> Vec<Word<'_>> {
    let mut out: Vec<Word> = Vec::new();
    let mut gap_start = 0;
    for (start, piece) in split_spaces(text) {
        let lead = piece
            .char_indices()
            .find(|&(_, c)| c.is_alphanumeric() || c == '@' || c == '#')
            .map(|(i, _)| i);
        let trail = piece
            .char_indices()
            .rev()
            .find(|&(_, c)| is_word_char(c))
            .map(|(i, c)| i + c.len_utf8());
        let (Some(a), Some(b)) = (lead, trail) else {
            continue;
        };
        if a >= b {
            continue;
        }
        let (s, e) = (start + a, start + b);
        // What lies between this word and the one before: only spaces and joining marks
        // keep a name going; a comma or a full stop ends it.
        let gap = &text[gap_start..s];
        let joined = !out.is_empty()
            && gap
                .chars()
                .all(|c| c.is_whitespace() || matches!(c, ':' | '-' | '&' | '\''));
        out.push(Word {
            start: s,
            end: e,
            text: &text[s..e],
            joined,
        });
        gap_start = e;
    }
    out
}

/// (byte offset, piece) of each run of non-whitespace characters.
fn split_spaces(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// Maximal runs [i, j) of capitalised words, with digits after the first word ("Galaxy S 8")
/// and connectors between capitalised words.
fn capitalised_runs(words: &[Word]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if !is_capitalised(words[i].text) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < words.len() && words[j].joined {
            let w = words[j].text;
            if is_capitalised(w) || w.chars().all(|c| c.is_ascii_digit()) {
                j += 1;
            } else if is_connector(w)
                && words
                    .get(j + 1)
                    .is_some_and(|n| n.joined && is_capitalised(n.text))
            {
                j += 2;
            } else {
                break;
            }
        }
        runs.push((i, j));
        i = j;
    }
    runs
}

/// A word with a capital letter anywhere ("London", "iPhone", "NASA"), not a lone "I".
fn is_capitalised(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_alphanumeric)
        && word.chars().any(char::is_uppercase)
        && word != "I"
}

fn is_connector(word: &str) -> bool {
    CONNECTORS.contains(&word.to_lowercase().as_str())
}

/// A word that may be a name by itself: letters (or letters and digits, "ps4"), more than one
/// character, and not a function word.
fn is_content(word: &str) -> bool {
    word.chars().count() > 1
        && word.chars().any(char::is_alphabetic)
        && word.chars().all(is_word_char)
        && !is_function_word(word)
}

/// Letters, digits and the combining marks written after them ("e\u{301}"), which a word
/// must not lose.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c, '\u{300}'..='\u{36f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}' | '\u{20d0}'..='\u{20ff}' | '\u{fe20}'..='\u{fe2f}')
}

/// Pronouns, determiners, prepositions, conjunctions, auxiliaries and a few interjections and
/// deictic words: a span made only of these is never a name.
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

/// Whether `span` holds no name: no letter at all, or only function words.
fn is_function_phrase(span: &str) -> bool {
    if !span.chars().any(char::is_alphabetic) {
        return true;
    }
    span.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(is_function_word)
}

/// A word in capitals of two letters or more is an acronym ("US", "IT"), not the function
/// word.
fn is_function_word(word: &str) -> bool {
    let acronym = word.chars().count() > 1 && word.chars().all(char::is_uppercase);
    !acronym && FUNCTION_WORDS.contains(&word.to_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<&str> {
        propose(text)
            .iter()
            .map(|c| &text[c.start..c.end])
            .collect()
    }

    #[test]
    fn capitalised_runs_and_their_parts_are_proposed() {
        let t = texts("Go to Clark Airbase Hospital, then Game of Thrones.");
        for want in [
            "Clark Airbase Hospital",
            "Clark",
            "Airbase Hospital",
            "Game of Thrones",
            "Thrones",
            "Go",
        ] {
            assert!(t.contains(&want), "{want} not in {t:?}");
        }
        // A comma ends a name; connectors never begin or end one.
        assert!(!t.iter().any(|s| s.contains("Hospital, then")));
        assert!(!t.contains(&"Game of"));
    }

    #[test]
    fn lower_case_words_pairs_and_tags_are_proposed() {
        let t = texts("can't wait for the galaxy s8 , love @bob and #rust");
        for want in [
            "galaxy",
            "galaxy s8",
            "s8",
            "love",
            "@bob",
            "bob",
            "#rust",
            "rust",
        ] {
            assert!(t.contains(&want), "{want} not in {t:?}");
        }
        // Function words alone are not proposed, nor pairs across a comma.
        assert!(!t.contains(&"the") && !t.contains(&"for"));
        assert!(!t.contains(&"s8 , love"));
    }

    #[test]
    fn offsets_hold_in_any_script() {
        for text in [
            "Ünïcode Straße 😊 in Zürich",
            "東京 に 行く Tokyo",
            "e\u{301}cole Paris",
        ] {
            for c in propose(text) {
                assert!(text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
                assert!(c.start < c.end && c.end <= text.len());
            }
        }
        assert!(texts("東京 に 行く Tokyo").contains(&"Tokyo"));
        assert!(texts("met Rene\u{301} Dupont").contains(&"Rene\u{301} Dupont"));
        assert!(texts("cafe\u{301} time").contains(&"cafe\u{301}"));
        assert!(texts("Ünïcode Straße 😊 in Zürich").contains(&"Ünïcode Straße"));
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
        assert!(!texts("It was fun").contains(&"It"));
    }

    #[test]
    fn proposals_are_bounded() {
        let long = "Alpha Beta Gamma Delta ".repeat(40);
        assert_eq!(propose(&long).len(), MAX_PROPOSALS);
        assert!(propose("").is_empty() && propose(" , . ").is_empty());
    }
}
