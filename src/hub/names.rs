//! Validating newtypes: `Nick`, `RoomName`, and the text sanitizer.
//!
//! A value of these types is valid by construction, so the rest of the hub
//! never re-checks a name. Rules are those of PROTOCOL.md "Names".

use std::fmt;
use std::rc::Rc;

use super::error::{ErrorCode, HubError};

/// Longest nick, in characters (all ASCII, so also bytes).
pub const MAX_NICK: usize = 24;
/// Longest room name.
pub const MAX_ROOM: usize = 32;

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A nick as the user typed it; compared by [`Nick::key`], its lowercase form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nick(Rc<str>);

impl Nick {
    /// 1-24 characters of `A-Z a-z 0-9 _ -`, starting with a letter.
    pub fn parse(s: &str) -> Result<Nick, HubError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= MAX_NICK
            && b[0].is_ascii_alphabetic()
            && b.iter().all(|&c| is_name_byte(c));
        if ok {
            Ok(Nick(s.into()))
        } else {
            Err(HubError::new(
                ErrorCode::NickInvalid,
                "a nick is 1-24 characters of A-Z a-z 0-9 _ -, starting with a letter",
            ))
        }
    }

    /// The case-insensitive identity of the nick: what uniqueness is checked on.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The nick as its holder spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// For `join(", ")` over a member list (equal nicks are equal strings).
impl std::borrow::Borrow<str> for Nick {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A nick goes on the wire as its string (`joined`, `who`).
impl serde::Serialize for Nick {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Nicks for tests' member lists, from known-good names.
#[cfg(test)]
pub(crate) fn nick_list(names: &[&str]) -> Vec<Nick> {
    names
        .iter()
        .map(|n| Nick::parse(n).expect("nick"))
        .collect()
}

/// A room name, always lowercase (rooms are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Rc<str>);

impl RoomName {
    /// 1-32 characters of `A-Z a-z 0-9 _ -`; one leading `#` is ignored.
    pub fn parse(s: &str) -> Result<RoomName, HubError> {
        let s = s.strip_prefix('#').unwrap_or(s);
        let b = s.as_bytes();
        if !b.is_empty() && b.len() <= MAX_ROOM && b.iter().all(|&c| is_name_byte(c)) {
            Ok(RoomName(s.to_ascii_lowercase().into()))
        } else {
            Err(HubError::new(
                ErrorCode::RoomInvalid,
                "a room name is 1-32 characters of A-Z a-z 0-9 _ -",
            ))
        }
    }

    /// The lowercase name, without a `#`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Replaces every control character except tab (U+0000-U+001F, U+007F-U+009F)
/// with U+FFFD, so nobody can send terminal escape sequences to a netcat user.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Checks a message text against `--max-message` (bytes, as received) and
/// returns it sanitized. Empty texts are refused: there is nothing to say.
pub fn message_text(s: &str, max: usize) -> Result<String, HubError> {
    if s.len() > max {
        return Err(HubError::new(
            ErrorCode::TooLong,
            format!("a message is at most {max} bytes; this one is {}", s.len()),
        ));
    }
    if s.trim().is_empty() {
        return Err(HubError::new(ErrorCode::BadRequest, "the message is empty"));
    }
    Ok(sanitize(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks() {
        for ok in ["a", "alice", "Bob_2", "x-y", "abcdefghijklmnopqrstuvwx"] {
            assert_eq!(Nick::parse(ok).map(|n| n.to_string()), Ok(ok.to_string()));
        }
        for bad in [
            "",
            "1abc",
            "_a",
            "-a",
            "a b",
            "é",
            "abcdefghijklmnopqrstuvwxy",
            "a.b",
            "#a",
        ] {
            assert_eq!(
                Nick::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::NickInvalid),
                "{bad:?}"
            );
        }
        assert_eq!(Nick::parse("AlIcE").unwrap().key(), "alice");
    }

    #[test]
    fn rooms() {
        assert_eq!(RoomName::parse("#Dev").unwrap().as_str(), "dev");
        assert_eq!(RoomName::parse("9-lives_").unwrap().as_str(), "9-lives_");
        assert_eq!(RoomName::parse(&"a".repeat(32)).unwrap().as_str().len(), 32);
        for bad in ["", "#", "##a", "a b", "a".repeat(33).as_str(), "ü"] {
            assert_eq!(
                RoomName::parse(bad).map_err(|e| e.code),
                Err(ErrorCode::RoomInvalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn sanitize_replaces_controls_but_keeps_tab() {
        assert_eq!(sanitize("a\x1b[31mb"), "a\u{FFFD}[31mb");
        assert_eq!(sanitize("tab\there"), "tab\there");
        assert_eq!(
            sanitize("\u{0}\u{1f}\u{7f}\u{80}\u{9f}\u{a0}"),
            "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}\u{a0}"
        );
        assert_eq!(sanitize("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn message_limits() {
        assert_eq!(message_text("hi", 4), Ok("hi".to_string()));
        assert_eq!(message_text("hiya", 4), Ok("hiya".to_string()));
        assert_eq!(
            message_text("hiyas", 4).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
        assert_eq!(
            message_text("  ", 4).map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
    }
}
