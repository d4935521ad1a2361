//! The error codes of PROTOCOL.md, mapped to their wire strings in one table.
//!
//! Every error a client can cause is one of these codes plus a human message.
//! The line protocol renders it as `!!! CODE: message`, the JSON protocol as
//! `{"type":"error","code":...}`; neither renderer invents codes of its own.

use std::fmt;

/// One code per row of PROTOCOL.md "Error codes".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
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
}

impl ErrorCode {
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
    pub code: ErrorCode,
    pub message: String,
}

impl HubError {
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

    #[test]
    fn every_code_has_a_distinct_snake_case_spelling() {
        let all = [
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
        ];
        let mut seen = std::collections::HashSet::new();
        for code in all {
            let s = code.as_str();
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate {s}");
        }
        assert_eq!(seen.len(), 16);
    }
}
