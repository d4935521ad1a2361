//! Rendering a response: status line, headers, body, as bytes for an outbox.
//!
//! The framing headers are written here and only here: `Content-Length`
//! from the body (kept for `HEAD`, RFC 9110 §9.3.2), `Connection: close`
//! when the shell will close after this answer, and `Server`. Callers add
//! the rest with [`Response::with_header`]. Every error page goes through
//! [`error_response`], so they all look alike.
//!
//! Nothing here writes to a socket or reads a clock (hence no `Date`; the
//! shell may add one). Read next: `server::http`, which queues the bytes.

use bytes::Bytes;

/// An answer to render: the caller owns the content headers, [`encode`]
/// adds the framing ones.
///
/// [`encode`]: Response::encode
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code (RFC 9110 §15); [`reason`] gives the phrase on the
    /// status line.
    pub status: u16,
    /// Headers in the order they go out. Must not hold `Content-Length`,
    /// `Server` or `Connection: close`: `encode` writes those.
    pub headers: Vec<(&'static str, String)>,
    /// The content. Its length is the `Content-Length`, also in the answer
    /// to a `HEAD`, which leaves the bytes out. A 1xx, 204 or 304 never
    /// carries it (RFC 9110 §15).
    pub body: Bytes,
}

impl Response {
    /// An empty answer with no headers of its own.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A `text/plain; charset=utf-8` answer.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            body: Bytes::from(body.into()),
        }
    }

    /// An `application/json` answer of already serialized JSON.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body: Bytes::from(body),
        }
    }

    /// Replaces the body (a `Bytes` clone, e.g. of a cached page or image,
    /// costs no copy).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Appends a header, e.g. `Allow: GET, HEAD` on a 405 or
    /// `Sec-WebSocket-Version: 13` on a 426.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire: status line, the caller's headers,
    /// `Content-Length`, `Connection: close` when `close` (keep-alive is the
    /// HTTP/1.1 default, so nothing is said then), `Server`, the empty line,
    /// then the body unless `head_only` (the answer to a `HEAD` keeps the
    /// `Content-Length` of the `GET` body).
    pub fn encode(&self, head_only: bool, close: bool) -> Bytes {
        let (head, body) = self.encode_parts(head_only, close);
        if body.is_empty() {
            return head;
        }
        let mut wire = Vec::with_capacity(head.len() + body.len());
        wire.extend_from_slice(&head);
        wire.extend_from_slice(&body);
        Bytes::from(wire)
    }

    /// [`encode`](Response::encode) as the head and the body apart, for an
    /// outbox of `Bytes`: queuing both costs a refcount bump, not a copy of
    /// the body (which matters for images in `/media/ID`).
    pub fn encode_parts(&self, head_only: bool, close: bool) -> (Bytes, Bytes) {
        let mut head = Vec::with_capacity(128 + self.headers.len() * 32);
        push_line(
            &mut head,
            &format!("HTTP/1.1 {} {}", self.status, reason(self.status)),
        );
        for (name, value) in &self.headers {
            push_line(&mut head, &format!("{name}: {value}"));
        }
        let has_body = status_has_body(self.status);
        // RFC 9110 §8.6: no Content-Length in a 1xx or a 204 answer; a 304
        // would have to repeat the length of a body we do not know here.
        if has_body {
            push_line(&mut head, &format!("Content-Length: {}", self.body.len()));
        }
        if close {
            push_line(&mut head, "Connection: close");
        }
        push_line(
            &mut head,
            concat!("Server: natter/", env!("CARGO_PKG_VERSION")),
        );
        head.extend_from_slice(b"\r\n");
        let body = if has_body && !head_only {
            self.body.clone()
        } else {
            Bytes::new()
        };
        (Bytes::from(head), body)
    }
}

/// RFC 9110 §15: 1xx, 204 and 304 answers never carry content.
fn status_has_body(status: u16) -> bool {
    !(100..200).contains(&status) && status != 204 && status != 304
}

/// Appends `line` and CRLF. A CR, LF or other control character that found
/// its way into a header value (say, echoed from a request) becomes a space,
/// so no caller can split the head and inject headers of its own.
fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend(line.bytes().map(|b| {
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            b' '
        } else {
            b
        }
    }));
    out.extend_from_slice(b"\r\n");
}

/// An error page in the one house format: text/plain, body
/// `"<code> <reason>: <detail>\n"`. For the errors the shell finds itself;
/// parser errors come through [`HttpError::response`](super::HttpError::response),
/// which uses this too.
pub fn error_response(status: u16, detail: &str) -> Response {
    Response::text(status, format!("{status} {}: {detail}\n", reason(status)))
}

/// The reason phrase for `status` (RFC 9110 §15). Clients ignore it, people
/// reading `curl -i` do not.
pub fn reason(status: u16) -> &'static str {
    if let Some(phrase) = known_reason(status) {
        return phrase;
    }
    // An unlisted code is read by its class (RFC 9110 §15).
    match status / 100 {
        1 => "Informational",
        2 => "Success",
        3 => "Redirection",
        4 => "Client Error",
        5 => "Server Error",
        _ => "Unknown",
    }
}

fn known_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = concat!("Server: natter/", env!("CARGO_PKG_VERSION"), "\r\n");

    fn wire(response: &Response, head_only: bool, close: bool) -> String {
        String::from_utf8(response.encode(head_only, close).to_vec()).unwrap()
    }

    #[test]
    fn get_and_head_keep_alive_and_close() {
        let r = Response::text(200, "ok");
        let head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n";
        assert_eq!(wire(&r, false, false), format!("{head}{SERVER}\r\nok"));
        assert_eq!(wire(&r, true, false), format!("{head}{SERVER}\r\n"));
        assert_eq!(
            wire(&r, false, true),
            format!("{head}Connection: close\r\n{SERVER}\r\nok")
        );
        assert_eq!(
            wire(&r, true, true),
            format!("{head}Connection: close\r\n{SERVER}\r\n")
        );
    }

    #[test]
    fn json_and_extra_headers_in_order() {
        let r = Response::json(200, br#"{"rooms":[]}"#.to_vec())
            .with_header("Cache-Control", "no-store")
            .with_header("X-Content-Type-Options", String::from("nosniff"));
        assert_eq!(
            wire(&r, false, false),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n\
                 X-Content-Type-Options: nosniff\r\nContent-Length: 12\r\n{SERVER}\r\n{{\"rooms\":[]}}"
            )
        );
    }

    #[test]
    fn parts_join_to_the_whole() {
        let r = Response::json(200, b"[1,2,3]".to_vec());
        for head_only in [false, true] {
            for close in [false, true] {
                let (head, body) = r.encode_parts(head_only, close);
                assert!(head.ends_with(b"\r\n\r\n"));
                assert_eq!(body.is_empty(), head_only);
                assert_eq!([head, body].concat(), r.encode(head_only, close).to_vec());
            }
        }
    }

    #[test]
    fn answers_without_content_say_no_length() {
        let upgrade = Response::new(101)
            .with_header("Upgrade", "websocket")
            .with_header("Connection", "Upgrade")
            .with_header("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            wire(&upgrade, false, false),
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{SERVER}\r\n"
            )
        );
        let no_content = Response::new(204).with_body(Bytes::from_static(b"dropped"));
        assert_eq!(
            wire(&no_content, false, false),
            format!("HTTP/1.1 204 No Content\r\n{SERVER}\r\n")
        );
        assert_eq!(
            wire(&Response::new(200), false, false),
            format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{SERVER}\r\n")
        );
        let html = Response::new(200)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_body(Bytes::from_static(b"<p>hi</p>"));
        assert_eq!(
            wire(&html, false, false),
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: 9\r\n{SERVER}\r\n<p>hi</p>"
            )
        );
    }

    #[test]
    fn error_pages_share_one_format() {
        let r = error_response(405, "use GET or HEAD").with_header("Allow", "GET, HEAD");
        assert_eq!(
            wire(&r, false, true),
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Allow: GET, HEAD\r\nContent-Length: 40\r\nConnection: close\r\n{SERVER}\r\n\
                 405 Method Not Allowed: use GET or HEAD\n"
            )
        );
        let r = error_response(426, "WebSocket version 13 only")
            .with_header("Sec-WebSocket-Version", "13");
        assert_eq!(r.status, 426);
        assert_eq!(
            &r.body[..],
            b"426 Upgrade Required: WebSocket version 13 only\n"
        );
        assert!(wire(&r, false, false).contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert_eq!(
            &error_response(503, "server full").body[..],
            b"503 Service Unavailable: server full\n"
        );
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let r = Response::new(200).with_header("X-Echo", "a\r\nSet-Cookie: evil\0\tok");
        let wire = wire(&r, false, false);
        assert!(
            wire.contains("\r\nX-Echo: a  Set-Cookie: evil \tok\r\n"),
            "{wire}"
        );
        assert!(!wire.contains("\r\nSet-Cookie"));
    }

    #[test]
    fn reasons() {
        for (status, want) in [
            (101, "Switching Protocols"),
            (200, "OK"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (304, "Not Modified"),
            (400, "Bad Request"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (408, "Request Timeout"),
            (413, "Content Too Large"),
            (414, "URI Too Long"),
            (426, "Upgrade Required"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (501, "Not Implemented"),
            (503, "Service Unavailable"),
            (505, "HTTP Version Not Supported"),
            (299, "Success"),
            (499, "Client Error"),
            (600, "Unknown"),
        ] {
            assert_eq!(reason(status), want, "{status}");
        }
    }
}
