//! Lookup lists uploaded as a file: one term per line. Blank lines and lines starting with `#`
//! are skipped; every other line must be a usable term, and a bad one is reported with its
//! line number (all of them, up to a few), so the file can be mended in one go.
use crate::domain::Invalid;

/// The longest term kept (longer lines are almost always a pasted paragraph, not a term).
pub const MAX_TERM_CHARS: usize = 200;
/// Bad lines named in one error.
const NAMED: usize = 5;

/// The terms of a lookup file, in file order, duplicates dropped.
pub fn parse(file: &str) -> Result<Vec<String>, Invalid> {
    let mut terms = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut bad = Vec::new();
    for (i, line) in file.lines().enumerate() {
        let term = line.trim();
        if term.is_empty() || term.starts_with('#') {
            continue;
        }
        let n = i + 1;
        if term.contains('\u{fffd}') {
            bad.push(format!("line {n}: not UTF-8 text"));
        } else if term.chars().any(char::is_control) {
            bad.push(format!(
                "line {n}: holds a tab or control character (one term per line)"
            ));
        } else if term.chars().count() > MAX_TERM_CHARS {
            bad.push(format!("line {n}: longer than {MAX_TERM_CHARS} characters"));
        } else if seen.insert(term.to_string()) {
            terms.push(term.to_string());
        }
    }
    if !bad.is_empty() {
        let more = bad.len().saturating_sub(NAMED);
        let mut message = bad[..bad.len().min(NAMED)].join("; ");
        if more > 0 {
            message.push_str(&format!("; and {more} more bad lines"));
        }
        return Err(Invalid::new("file", message));
    }
    if terms.is_empty() {
        return Err(Invalid::new("file", "holds no terms (one term per line)"));
    }
    Ok(terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_in_order_without_comments_blanks_or_repeats() {
        let terms = parse("# cities\nLondon\n\n  Paris \nLondon\r\nKöln\n").unwrap();
        assert_eq!(terms, ["London", "Paris", "Köln"]);
    }

    #[test]
    fn bad_lines_are_named() {
        let long = "x".repeat(MAX_TERM_CHARS + 1);
        let e = parse(&format!("ok\nfoo\tbar\n{long}\nfine\n\u{fffd}\n")).unwrap_err();
        assert_eq!(e.field, "file");
        assert!(e.message.contains("line 2: holds a tab"), "{e}");
        assert!(e.message.contains("line 3: longer than 200"), "{e}");
        assert!(e.message.contains("line 5: not UTF-8"), "{e}");
        assert!(!e.message.contains("line 4"), "{e}");
    }

    #[test]
    fn many_bad_lines_are_counted() {
        let e = parse(&"a\tb\n".repeat(9)).unwrap_err();
        assert!(e.message.ends_with("and 4 more bad lines"), "{e}");
        assert!(parse("# only a comment\n\n")
            .unwrap_err()
            .message
            .contains("no terms"));
    }
}
