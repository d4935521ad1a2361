//! Search text shared by the stores: which query terms can match at all,
//! snippets and their marks, and the plain matcher `MemStore` searches
//! with (`SqliteStore` matches with FTS5, and only borrows the snippet
//! code).

use crate::hub::search::Query;

/// About how long a snippet is, in characters (PROTOCOL-2 section 4).
pub(crate) const SNIPPET_CHARS: usize = 200;

/// Characters kept before the first hit when a long snippet is cut.
const LEAD: usize = 40;

/// What marks a cut snippet's ends.
pub(crate) const ELLIPSIS: char = '\u{2026}';

/// Whether a query term can match anything: the index only knows letters
/// and digits (FTS5's unicode61 tokenizer: categories L*, N* and Co), so a
/// term with none of them (`-`, `:`, an emoji) would be an empty phrase.
/// Both stores drop such terms, so they agree on what is left.
pub(crate) fn has_word_char(term: &str) -> bool {
    term.chars().any(is_word_char)
}

fn is_word_char(c: char) -> bool {
    // Co (private use) counts for unicode61; Rust has no category test,
    // so the three private-use ranges are named.
    c.is_alphanumeric()
        || matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
}

/// A snippet in which `open` and `close` mark the hits (characters stored
/// text cannot hold) made plain: the markers are removed and become
/// `[from, to)` pairs of code-point offsets. A marker out of place (an
/// unmatched one) is dropped, never trusted.
pub(crate) fn unmark(raw: &str, open: char, close: char) -> (Vec<char>, Vec<(usize, usize)>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut marks = Vec::new();
    let mut start = None;
    for c in raw.chars() {
        if c == open {
            start = Some(out.len());
        } else if c == close {
            if let Some(s) = start.take() {
                if s < out.len() {
                    marks.push((s, out.len()));
                }
            }
        } else {
            out.push(c);
        }
    }
    (out, marks)
}

/// Cuts a snippet longer than [`SNIPPET_CHARS`] to that length around its
/// first hit (a few words before it kept), with an ellipsis at each cut
/// end; marks are moved with it, and those outside dropped or clipped.
pub(crate) fn fit(chars: Vec<char>, marks: Vec<(usize, usize)>) -> (String, Vec<(usize, usize)>) {
    if chars.len() <= SNIPPET_CHARS {
        return (chars.into_iter().collect(), marks);
    }
    let first = marks.first().map_or(0, |m| m.0);
    let start = first.saturating_sub(LEAD).min(chars.len() - SNIPPET_CHARS);
    let end = start + SNIPPET_CHARS;
    let lead = usize::from(start > 0);
    let mut out: String = String::with_capacity(SNIPPET_CHARS * 2);
    if start > 0 {
        out.push(ELLIPSIS);
    }
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push(ELLIPSIS);
    }
    let marks = marks
        .into_iter()
        .filter(|&(from, to)| to > start && from < end)
        .map(|(from, to)| (from.max(start) - start + lead, to.min(end) - start + lead))
        .collect();
    (out, marks)
}

/// The snippet of a hit found without words (`from:` alone): the start of
/// its text, no marks.
pub(crate) fn head(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(SNIPPET_CHARS).collect();
    if chars.next().is_some() {
        out.push(ELLIPSIS);
    }
    out
}

/// Lowercase without accents, for the few accents people type most
/// (Latin-1 and a little more): enough for a test store, where SQLite's
/// tokenizer folds all of Unicode.
fn fold(c: char) -> impl Iterator<Item = char> {
    c.to_lowercase().map(|c| match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ñ' | 'ń' | 'ň' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => 'u',
        'ý' | 'ÿ' => 'y',
        'š' | 'ś' => 's',
        'ž' | 'ź' | 'ż' => 'z',
        c => c,
    })
}

/// The search index's own spelling of `word`, if natter can be sure of it:
/// one token of ASCII letters and digits or of the accented Latin letters
/// [`fold`] knows, lowercased and with its accents removed, as SQLite's
/// `unicode61 remove_diacritics 2` tokenizer spells it. `None` for anything
/// else (another script, a word the tokenizer would split): the caller then
/// leaves the word to FTS5.
pub(crate) fn index_term(word: &str) -> Option<String> {
    let folded: String = word.chars().flat_map(fold).collect();
    let simple = !folded.is_empty() && folded.bytes().all(|b| b.is_ascii_alphanumeric());
    simple.then_some(folded)
}

/// A text's words, folded, each with its `[from, to)` code-point span.
fn words(text: &str) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, usize)> = None;
    let mut n = 0;
    for (i, c) in text.chars().enumerate() {
        n = i + 1;
        if is_word_char(c) {
            cur.get_or_insert_with(|| (String::new(), i))
                .0
                .extend(fold(c));
        } else if let Some((w, from)) = cur.take() {
            out.push((w, from, i));
        }
    }
    if let Some((w, from)) = cur {
        out.push((w, from, n));
    }
    out
}

/// `MemStore`'s matcher: whether `text` has every word of `query` (the
/// last one also as a prefix, from two letters on) and every phrase, each as consecutive words,
/// ignoring case and common accents; `Some` with the hits' spans (every
/// occurrence of every term, merged) if so. A query with no usable term
/// matches everything (`from:` alone); the caller decides what that means.
pub(crate) fn mem_match(query: &Query, text: &str) -> Option<Vec<(usize, usize)>> {
    let have = words(text);
    let kept: Vec<&String> = query.words.iter().filter(|w| has_word_char(w)).collect();
    let mut terms: Vec<(Vec<String>, bool)> = kept
        .iter()
        .enumerate()
        .map(|(i, w)| {
            // As in the SQLite store: a prefix from two letters on.
            let letters = w.chars().filter(|c| c.is_alphanumeric()).count();
            (term_words(w), i + 1 == kept.len() && letters >= 2)
        })
        .collect();
    terms.extend(
        query
            .phrases
            .iter()
            .filter(|p| has_word_char(p))
            .map(|p| (term_words(p), false)),
    );
    let mut spans = Vec::new();
    for (want, prefix) in &terms {
        let before = spans.len();
        for start in 0..have.len() {
            let Some(window) = have.get(start..start + want.len()) else {
                break;
            };
            let hit = window.iter().zip(want).enumerate().all(|(k, (h, w))| {
                if *prefix && k + 1 == want.len() {
                    h.0.starts_with(w.as_str())
                } else {
                    h.0 == *w
                }
            });
            if hit {
                spans.push((window[0].1, window[window.len() - 1].2));
            }
        }
        if spans.len() == before {
            return None;
        }
    }
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    Some(merged)
}

/// The words of `query` a wide sieve can look for as they are (Redis's
/// `read.lua`): each word of its terms, folded, that is ASCII letters and
/// digits only (a word of another script is left to the exact match). A
/// text [`mem_match`] finds has each of them, each letter there in either
/// case or as one non-ASCII character.
pub(crate) fn sieve_words(query: &Query) -> Vec<String> {
    let mut out: Vec<String> = query
        .words
        .iter()
        .chain(&query.phrases)
        .flat_map(|t| term_words(t))
        .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn term_words(term: &str) -> Vec<String> {
    words(term).into_iter().map(|w| w.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmark_turns_markers_into_code_point_offsets() {
        let (chars, marks) = unmark("é \u{1}café\u{2} x \u{1}b\u{2}", '\u{1}', '\u{2}');
        assert_eq!(chars.iter().collect::<String>(), "é café x b");
        assert_eq!(marks, [(2, 6), (9, 10)]);
        // Stray markers are dropped, not trusted.
        let (chars, marks) = unmark("\u{2}a\u{1}\u{1}b", '\u{1}', '\u{2}');
        assert_eq!(chars.iter().collect::<String>(), "ab");
        assert!(marks.is_empty());
    }

    #[test]
    fn fit_cuts_long_snippets_around_the_first_hit() {
        let text: Vec<char> = "x".repeat(500).chars().collect();
        let (s, marks) = fit(text, vec![(300, 305), (480, 490)]);
        assert_eq!(s.chars().count(), SNIPPET_CHARS + 2);
        assert!(s.starts_with(ELLIPSIS) && s.ends_with(ELLIPSIS));
        assert_eq!(marks, [(LEAD + 1, LEAD + 6)]);
        let short: Vec<char> = "short".chars().collect();
        assert_eq!(fit(short, vec![(0, 5)]), ("short".into(), vec![(0, 5)]));
        // A hit near the end keeps the last SNIPPET_CHARS characters.
        let text: Vec<char> = "y".repeat(250).chars().collect();
        let (s, marks) = fit(text, vec![(245, 250)]);
        assert!(s.starts_with(ELLIPSIS) && !s.ends_with(ELLIPSIS));
        assert_eq!(marks, [(196, 201)]);
    }

    #[test]
    fn index_terms_are_folded_or_left_to_the_index() {
        assert_eq!(index_term("Déploy").as_deref(), Some("deploy"));
        assert_eq!(index_term("FRIDAY2").as_deref(), Some("friday2"));
        for other in ["don't", "naïve-ish", "日本", "Ωmega", ""] {
            assert_eq!(index_term(other), None, "{other:?}");
        }
    }

    #[test]
    fn the_sieve_keeps_ascii_words_folded_and_leaves_other_scripts_out() {
        let q = Query::parse("CAFÉ \"b-c d\" 日本 naï");
        assert_eq!(sieve_words(&q), ["b", "c", "cafe", "d", "nai"]);
        assert!(sieve_words(&Query::parse("日本 ✓")).is_empty());
    }

    #[test]
    fn mem_match_folds_case_and_accents() {
        let q = Query::parse("CAFE nai");
        assert_eq!(mem_match(&q, "un café naïve"), Some(vec![(3, 7), (8, 13)]));
        assert_eq!(mem_match(&q, "un café"), None);
        let q = Query::parse("\"b c\"");
        assert_eq!(mem_match(&q, "a b c d"), Some(vec![(2, 5)]));
        assert_eq!(mem_match(&q, "a c b d"), None);
        assert_eq!(head(&"z".repeat(300)).chars().count(), SNIPPET_CHARS + 1);
    }
}
