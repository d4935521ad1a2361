//! The error codes of PROTOCOL.md, mapped to their wire strings in one table.
//!
//! Every error a client can cause is one of these codes plus a human message.
//! The line protocol renders it as `!!! CODE: message`, the JSON protocol as
//! `{"type":"error","code":...}`; neither renderer invents codes of its own.

use std::fmt;

/// One code per row of PROTOCOL.md "Error codes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `bad_request`: a request that cannot be carried out as sent: a JSON
    /// field missing or mistyped, a command without its arguments (`/nick`,
    /// `/msg NICK`), an empty text, a `cid` not 1-64 characters. Also sent
    /// for the server's own faults (a message the store could not keep, a
    /// store that cannot be read), which the contract has no code for.
    BadRequest,
    /// `bad_json`: a WebSocket message that is not valid JSON.
    BadJson,
    /// `bad_utf8`: a line that is not valid UTF-8; it is dropped. (Invalid
    /// UTF-8 on a WebSocket is close code 1007 instead.)
    BadUtf8,
    /// `unknown_type`: a JSON request with a `type` the server does not know.
    UnknownType,
    /// `unknown_command`: a line starting with `/` that names no command.
    UnknownCommand,
    /// `nick_invalid`: a nick that breaks PROTOCOL.md's rules (1-24
    /// characters of `A-Z a-z 0-9 _ -`, starting with a letter).
    NickInvalid,
    /// `nick_taken`: a nick someone else holds, compared case-insensitively.
    NickTaken,
    /// `room_invalid`: a room name that breaks PROTOCOL.md's rules (1-32
    /// characters of `A-Z a-z 0-9 _ -`).
    RoomInvalid,
    /// `not_in_room`: a message, image, typing hint or leave for a room the
    /// client is not in, or a request for the current room while in none.
    NotInRoom,
    /// `no_such_user`: a direct message to a nick nobody holds.
    NoSuchUser,
    /// `too_long`: a line over `--max-line` (dropped, the connection stays
    /// open) or a text over `--max-message`.
    TooLong,
    /// `too_large`: an image over `--max-image`.
    TooLarge,
    /// `bad_image`: image data that is not base64, or not a PNG, JPEG, GIF
    /// or WebP file by its magic bytes.
    BadImage,
    /// `rate_limited`: messages past `--rate` and `--burst` (dropped, told at
    /// most once a second), or more history asked for in one loop turn than
    /// a client may be sent.
    RateLimited,
    /// `server_full`: a connection past `--max-per-ip` or
    /// `--max-connections`, told so once and closed (past
    /// `--max-connections`, an HTTP client gets `503` instead).
    ServerFull,
    /// `slow_consumer`: the goodbye to a line client dropped as a slow
    /// consumer (`--max-outbound`, `--max-outbound-total`); a WebSocket
    /// client gets close code 1008 instead.
    SlowConsumer,
    /// `nick_registered`: a nick that is a registered account, asked for by a guest (PROTOCOL-2 section 1).
    NickRegistered,
    /// `login_failed`: a wrong nick or password, or an unknown or expired login token; never says which.
    LoginFailed,
    /// `login_required`: under `--require-login`, a guest's join, message, image or direct message.
    LoginRequired,
    /// `insecure`: a password sent over plain TCP from an address that is not loopback (unless `--allow-plaintext-passwords`).
    Insecure,
    /// `not_permitted`: a moderation action by someone not allowed it, `/register` under `--registration closed`, a nick change while logged in.
    NotPermitted,
    /// `banned`: a join of a room one is banned from.
    Banned,
    /// `muted`: a message, image or reaction in a room one is muted in; says until when.
    Muted,
    /// `invite_only`: a join of an invite-only room without an invite.
    InviteOnly,
    /// `no_such_message`: an edit, delete, reply or reaction naming a
    /// message the room does not have (or has no more: deleted), or a line
    /// command's "last message" when there is none (PROTOCOL-2 section 3).
    NoSuchMessage,
    /// `edit_window`: an edit more than `--edit-window` seconds after the
    /// message was sent.
    EditWindow,
    /// `unavailable`: with `--redis`, a request that needs the shared
    /// store while it cannot be reached; nothing was done, and a retry
    /// (with the same `cid`) is safe (PROTOCOL-2 section 6).
    Unavailable,
}

impl ErrorCode {
    /// Every code, in declaration order (the order of PROTOCOL.md's list).
    /// A test's exhaustive match fails to compile until a new variant is
    /// named there, and then fails until it is here too.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::BadRequest,
        ErrorCode::BadJson,
        ErrorCode::BadUtf8,
        ErrorCode::UnknownType,
        ErrorCode::UnknownCommand,
        ErrorCode::NickInvalid,
        ErrorCode::NickTaken,
        ErrorCode::RoomInvalid,
        ErrorCode::NotInRoom,
        ErrorCode::NoSuchUser,
        ErrorCode::TooLong,
        ErrorCode::TooLarge,
        ErrorCode::BadImage,
        ErrorCode::RateLimited,
        ErrorCode::ServerFull,
        ErrorCode::SlowConsumer,
        ErrorCode::NickRegistered,
        ErrorCode::LoginFailed,
        ErrorCode::LoginRequired,
        ErrorCode::Insecure,
        ErrorCode::NotPermitted,
        ErrorCode::Banned,
        ErrorCode::Muted,
        ErrorCode::InviteOnly,
        ErrorCode::NoSuchMessage,
        ErrorCode::EditWindow,
        ErrorCode::Unavailable,
    ];

    /// The wire string: the only place these spellings live.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadUtf8 => "bad_utf8",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::NickInvalid => "nick_invalid",
            ErrorCode::NickTaken => "nick_taken",
            ErrorCode::RoomInvalid => "room_invalid",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::TooLong => "too_long",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::BadImage => "bad_image",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::NickRegistered => "nick_registered",
            ErrorCode::LoginFailed => "login_failed",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::Insecure => "insecure",
            ErrorCode::NotPermitted => "not_permitted",
            ErrorCode::Banned => "banned",
            ErrorCode::Muted => "muted",
            ErrorCode::InviteOnly => "invite_only",
            ErrorCode::NoSuchMessage => "no_such_message",
            ErrorCode::EditWindow => "edit_window",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal sent back to the client that caused it: a code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubError {
    /// Which error: the `CODE` of `!!! CODE: message`, JSON `code`.
    pub code: ErrorCode,
    /// What was wrong, for a person to read; it may quote the client's
    /// input.
    pub message: String,
}

impl HubError {
    /// An error with `code` and the sentence `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> HubError {
        HubError {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `ALL` is every variant, once, in declaration order.
    #[test]
    fn all_names_every_variant() {
        // The match must name every variant or this does not compile; the
        // list it is built from must then equal `ALL`, so a variant added
        // to the enum but not to `ALL` fails here.
        macro_rules! every_variant {
            ($($v:ident),* $(,)?) => {{
                let _exhaustive = |c: ErrorCode| match c {
                    $(ErrorCode::$v => (),)*
                };
                [$(ErrorCode::$v),*]
            }};
        }
        let listed = every_variant![
            BadRequest,
            BadJson,
            BadUtf8,
            UnknownType,
            UnknownCommand,
            NickInvalid,
            NickTaken,
            RoomInvalid,
            NotInRoom,
            NoSuchUser,
            TooLong,
            TooLarge,
            BadImage,
            RateLimited,
            ServerFull,
            SlowConsumer,
            NickRegistered,
            LoginFailed,
            LoginRequired,
            Insecure,
            NotPermitted,
            Banned,
            Muted,
            InviteOnly,
            NoSuchMessage,
            EditWindow,
            Unavailable,
        ];
        assert_eq!(listed, ErrorCode::ALL);
    }

    #[test]
    fn every_code_has_a_distinct_snake_case_spelling() {
        let mut seen = BTreeSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate {s}");
        }
        assert_eq!(seen.len(), ErrorCode::ALL.len());
    }

    /// The codes listed under PROTOCOL.md's "## Error codes": the section's
    /// first sentence, a comma-separated list of backquoted codes.
    fn documented_codes(doc: &str) -> Vec<&str> {
        let section = doc
            .split("\n## ")
            .find_map(|s| s.strip_prefix("Error codes\n"))
            .expect("PROTOCOL.md has a \"## Error codes\" section");
        // The list ends at the first full stop outside backquotes.
        let mut quoted = false;
        let end = section
            .char_indices()
            .find(|&(_, c)| {
                quoted ^= c == '`';
                c == '.' && !quoted
            })
            .map(|(i, _)| i)
            .expect("the list of codes ends with a full stop");
        let list = &section[..end];
        list.split(',')
            .map(|item| {
                let item = item.trim();
                item.strip_prefix('`')
                    .and_then(|i| i.strip_suffix('`'))
                    .filter(|code| !code.is_empty() && !code.contains('`'))
                    .unwrap_or_else(|| {
                        panic!("{item:?} in PROTOCOL.md's list of error codes is not a `code`")
                    })
            })
            .collect()
    }

    #[test]
    fn protocol_md_lists_exactly_the_enum_codes() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let documented = documented_codes(doc);
        let doc_set: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(
            doc_set.len(),
            documented.len(),
            "PROTOCOL.md lists a code twice: {documented:?}"
        );
        let enum_set: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<_> = enum_set.difference(&doc_set).collect();
        let unknown: Vec<_> = doc_set.difference(&enum_set).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "ErrorCode and docs/PROTOCOL.md \"## Error codes\" disagree: \
             in the enum but not documented: {undocumented:?}; \
             documented but not in the enum: {unknown:?}"
        );
    }

    #[test]
    fn documented_codes_parser_reads_the_list_and_stops_at_its_end() {
        let doc = "# t\n\n## Error codes\n\n`a_b`, `c`,\n`d`. `e` is not listed.\n\n## Next\n`f`.";
        assert_eq!(documented_codes(doc), ["a_b", "c", "d"]);
    }
}
