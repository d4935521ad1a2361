//! Search queries as people type them (PROTOCOL-2 section 4), parsed into
//! words, phrases and a sender. Pure code: the store turns a [`Query`]
//! into its own index's syntax (`store::sqlite` into an FTS5 expression),
//! so no user input ever reaches an index as syntax.
//!
//! - Words are separated by white space; every word must match (the last
//!   one also as the start of a longer word).
//! - `"an exact phrase"` must match as it is; a quote left open runs to the
//!   end.
//! - `from:nick` keeps only messages sent under that nick.
//!
//! Matching ignores case and accents; that is the store's to do.

/// Most words (phrases and `from:` included) a query keeps; the rest are
/// dropped, which can only widen the results.
pub const MAX_TERMS: usize = 16;
/// Longest query text, in bytes; longer ones are cut at a character
/// boundary.
pub const MAX_QUERY: usize = 500;

/// A parsed query. Empty when there was nothing to look for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// Words that must all match, as typed; the last also matches as a
    /// prefix, from two letters on.
    pub words: Vec<String>,
    /// Phrases that must match as they are, as typed.
    pub phrases: Vec<String>,
    /// Only messages sent under this nick (as typed).
    pub from: Option<String>,
}

impl Query {
    /// Parses any string; never fails.
    pub fn parse(q: &str) -> Query {
        let mut q = q;
        if q.len() > MAX_QUERY {
            let mut end = MAX_QUERY;
            while !q.is_char_boundary(end) {
                end -= 1;
            }
            q = &q[..end];
        }
        let mut out = Query::default();
        let mut terms = 0;
        let mut rest = q;
        while terms < MAX_TERMS {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            if let Some(after) = rest.strip_prefix('"') {
                let (phrase, next) = after.split_once('"').unwrap_or((after, ""));
                rest = next;
                if !phrase.trim().is_empty() {
                    out.phrases.push(phrase.trim().to_string());
                    terms += 1;
                }
                continue;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            let (word, next) = rest.split_at(end);
            rest = next;
            let lower = word.to_lowercase();
            match lower.strip_prefix("from:") {
                Some(nick) if !nick.is_empty() => out.from = Some(word[5..].to_string()),
                Some(_) => {}
                None => out.words.push(word.to_string()),
            }
            terms += 1;
        }
        out
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty() && self.phrases.is_empty() && self.from.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(words: &[&str], phrases: &[&str], from: Option<&str>) -> Query {
        Query {
            words: words.iter().map(|s| s.to_string()).collect(),
            phrases: phrases.iter().map(|s| s.to_string()).collect(),
            from: from.map(str::to_string),
        }
    }

    #[test]
    fn words_phrases_and_from() {
        assert_eq!(
            Query::parse("deploy friday"),
            q(&["deploy", "friday"], &[], None)
        );
        assert_eq!(
            Query::parse("  \"release notes\" from:Alice draft "),
            q(&["draft"], &["release notes"], Some("Alice"))
        );
        assert_eq!(Query::parse("FROM:bob"), q(&[], &[], Some("bob")));
        assert_eq!(Query::parse("a\"b c\"d"), q(&["a", "d"], &["b c"], None));
        assert_eq!(
            Query::parse("\"open to the end"),
            q(&[], &["open to the end"], None)
        );
    }

    #[test]
    fn nothing_to_look_for_is_empty() {
        for s in ["", "   ", "\"\"", "\" \"", "from:", "\t\n"] {
            assert!(Query::parse(s).is_empty(), "{s:?}");
        }
    }

    #[test]
    fn hostile_input_parses_into_plain_terms() {
        // Index syntax stays text: the store quotes every term.
        assert_eq!(
            Query::parse("NEAR( a* -b : AND OR NOT ^c"),
            q(
                &["NEAR(", "a*", "-b", ":", "AND", "OR", "NOT", "^c"],
                &[],
                None
            )
        );
        assert_eq!(Query::parse("🎉 héllo"), q(&["🎉", "héllo"], &[], None));
    }

    #[test]
    fn long_queries_are_bounded() {
        let many = "w ".repeat(1000);
        assert_eq!(Query::parse(&many).words.len(), MAX_TERMS);
        let long = "é".repeat(MAX_QUERY); // two bytes each
        let parsed = Query::parse(&long);
        assert_eq!(parsed.words[0].len(), MAX_QUERY);
    }
}
