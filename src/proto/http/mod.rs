//! HTTP/1.1, sans I/O: request heads in, response bytes out.
//!
//! [`RequestParser`] turns the buffered input of a connection into a
//! [`Request`] (method, target, version, headers; the head only: natter takes
//! no request bodies), resuming where it stopped when more bytes arrive and
//! enforcing the caps of PROTOCOL.md "HTTP" (414 for a request line over
//! 8 KiB, 431 for a header section over 8 KiB) as soon as they are passed.
//! [`Response`] renders a status, headers and a body into the bytes on the
//! wire. [`HttpError`] is every way a peer can get its request head wrong,
//! with one renderer for all of them; [`error_response`] renders the errors
//! the shell finds itself (408, 426, 503, ...) the same way.
//!
//! [`Route::parse`] maps a method and path to a [`Route`] (or the 404, 405
//! or 400 a [`RouteError`] renders), from tables: which path leads where is
//! decided there and only there; what each route answers is the shell's.
//!
//! This module never touches a socket, a clock or mio, and never panics on
//! what a peer sends. It writes no `Date` header because it reads no clock.
//!
//! Read next: `request` (the parser and the rules it checks, with their RFC
//! 9112 sections), `response`, `route`, then `proto::ws` (the upgrade
//! handshake built on a parsed [`Request`]) and `server::http` (who feeds the
//! parser, drains the consumed bytes and queues the answer).

use std::fmt;

mod request;
mod response;
mod route;

pub use request::{
    decode_path_segment, decode_query_component, Request, RequestParser, Status, Version, MAX_HEAD,
    MAX_HEADERS, MAX_LEADING_EMPTY_LINES, MAX_REQUEST_LINE,
};
pub use response::{error_response, reason, Response};
pub use route::{Asset, Methods, Route, RouteError, ASSETS, GET_HEAD};

/// A request head the peer got wrong (or, for [`HttpError::Timeout`], too
/// slowly). Every variant is the peer's fault and is answered with
/// [`HttpError::response`], after which the connection is closed: once
/// framing is in doubt nothing later on the stream can be trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// 400: a malformed request line or header, or a head natter refuses
    /// (no `Host`, a `Transfer-Encoding`, conflicting `Content-Length`s).
    /// The text says which rule was broken, for the answer's body.
    BadRequest(&'static str),
    /// 414: the request line is over [`MAX_REQUEST_LINE`] bytes.
    UriTooLong,
    /// 431: the header section is over [`MAX_HEAD`] bytes.
    HeaderTooLarge,
    /// 431: more than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// 408: the head did not arrive within `--header-timeout`. The parser
    /// cannot see this (it reads no clock); the shell's timer reports it,
    /// through the same renderer as the rest.
    Timeout,
}

impl HttpError {
    /// The status code this error is answered with: the only place the
    /// mapping lives.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::UriTooLong => 414,
            HttpError::HeaderTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::Timeout => 408,
        }
    }

    /// What was wrong, in words, for the answer's body and the debug log.
    pub fn detail(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) => why,
            HttpError::UriTooLong => "the request line is over 8 KiB",
            HttpError::HeaderTooLarge => "the header section is over 8 KiB",
            HttpError::TooManyHeaders => "more than 100 header lines",
            HttpError::Timeout => "the request head did not arrive in time",
        }
    }

    /// One renderer for every error: a short text/plain body saying what
    /// was wrong. Send it with `close` set (see the type's docs).
    pub fn response(&self) -> Response {
        error_response(self.status(), self.detail())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        write!(f, "{status} {}: {}", reason(status), self.detail())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_status_and_renders_once() {
        let cases = [
            (
                HttpError::BadRequest("no Host header"),
                400,
                "400 Bad Request: no Host header\n",
            ),
            (
                HttpError::UriTooLong,
                414,
                "414 URI Too Long: the request line is over 8 KiB\n",
            ),
            (
                HttpError::HeaderTooLarge,
                431,
                "431 Request Header Fields Too Large: the header section is over 8 KiB\n",
            ),
            (
                HttpError::TooManyHeaders,
                431,
                "431 Request Header Fields Too Large: more than 100 header lines\n",
            ),
            (
                HttpError::Timeout,
                408,
                "408 Request Timeout: the request head did not arrive in time\n",
            ),
        ];
        for (error, status, body) in cases {
            assert_eq!(error.status(), status, "{error:?}");
            let response = error.response();
            assert_eq!(response.status, status);
            assert_eq!(&response.body[..], body.as_bytes(), "{error:?}");
            assert_eq!(format!("{error}\n"), body);
        }
        // The texts spell out the limits; they must not drift from them.
        assert_eq!(MAX_REQUEST_LINE, 8 * 1024);
        assert_eq!(MAX_HEAD, 8 * 1024);
        assert!(HttpError::TooManyHeaders
            .detail()
            .contains(&MAX_HEADERS.to_string()));
    }
}
