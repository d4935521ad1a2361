//! The request head parser: RFC 9112 §2-§6, strictly, for an origin server
//! that takes no request bodies.
//!
//! [`RequestParser::parse`] is handed the connection's whole buffered input
//! each time more bytes arrive and answers [`Status::Partial`], a complete
//! [`Request`] with the number of head bytes to drain, or an [`HttpError`].
//! Each line is checked and copied into the owned head once, when its line
//! feed arrives; a read that adds bytes costs only a scan of those bytes.
//! The caps (414, 431) fire as soon as the bytes received prove them passed,
//! so a peer cannot make the shell buffer an endless head.
//!
//! This parser never reads past the head (the body, if any, is the caller's
//! to skip or refuse), never allocates in proportion to anything but the
//! capped head, and never panics on input.
//!
//! Read next: `response` (how the answer is rendered), then `proto::ws`.

use super::HttpError;

/// Longest request line, its line ending not counted; past it: 414.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest header section: every header line with its line ending, the empty
/// line that ends the head not counted; past it: 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header lines in one head; past it: 431.
pub const MAX_HEADERS: usize = 100;
/// Most empty lines ignored before a request line (RFC 9112 §2.2 asks to
/// ignore at least one); past it: 400, so CRLFs cannot keep a parser busy
/// for free.
pub const MAX_LEADING_EMPTY_LINES: usize = 16;

/// The HTTP-version of a request line (RFC 9112 §2.3). Only these two are
/// served; any other version is a 400.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`: the connection is closed after the answer (see
    /// [`Request::keep_alive`]); `Host` is optional.
    Http10,
    /// `HTTP/1.1`: persistent unless `Connection: close`; the head must
    /// carry exactly one `Host` (RFC 9112 §3.2).
    Http11,
}

/// A parsed request head. Only the head: `body_len` says how many body
/// bytes follow it on the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// As sent, case-sensitive (RFC 9110 §9.1): "GET", "HEAD", ...
    pub method: String,
    /// Origin-form as sent, not decoded, e.g. `/api/rooms/lobby/messages?limit=5`;
    /// or `*` for `OPTIONS`. Printable ASCII only.
    pub target: String,
    /// From the request line; decides [`Request::keep_alive`] and whether
    /// `Host` is required.
    pub version: Version,
    /// In the order sent. Names lowercased; values with surrounding spaces
    /// and tabs trimmed, non-ASCII bytes (obs-text) decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// From a valid `Content-Length`, 0 if absent. The body is not part of
    /// the `consumed` count of [`Status::Complete`].
    pub body_len: usize,
}

impl Request {
    /// The target before any `?`, not percent-decoded.
    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => &self.target,
        }
    }

    /// The first value of query parameter `name`, percent-decoded with `+`
    /// as a space (`application/x-www-form-urlencoded`, as browsers send
    /// it). `None` if absent or if the value is not UTF-8 once decoded.
    /// A parameter without `=` has the empty value.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if decode_query_component(key).as_deref() == Some(name) {
                return decode_query_component(value);
            }
        }
        None
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `token` is in the comma-separated list of header `name`,
    /// across repeated headers, case-insensitively (RFC 9110 §5.3, §5.6.1):
    /// `Connection: keep-alive, Upgrade`, `Upgrade: websocket`.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after the answer. HTTP/1.1 is
    /// persistent unless `Connection: close` (RFC 9112 §9.3). natter closes
    /// HTTP/1.0 connections after the answer even if they ask to keep them:
    /// 1.0 keep-alive is a legacy opt-in not worth its corner cases.
    pub fn keep_alive(&self) -> bool {
        self.version == Version::Http11 && !self.header_has_token("connection", "close")
    }

    /// Whether the method is `HEAD` (case-sensitive): the answer then goes
    /// out without its body (RFC 9110 §9.3.2), see
    /// [`Response::encode`](super::Response::encode).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Percent-decodes one query key or value: `%XX` is a byte, `+` a space.
/// A `%` not followed by two hex digits stays as it is (as browsers do).
/// `None` if the result is not UTF-8.
pub fn decode_query_component(s: &str) -> Option<String> {
    percent_decode(s, true)
}

/// Percent-decodes one path segment (e.g. a room name in
/// `/api/rooms/ROOM/messages`): like [`decode_query_component`], but `+`
/// stays a `+` (RFC 3986 gives it no special meaning in a path).
pub fn decode_path_segment(s: &str) -> Option<String> {
    percent_decode(s, false)
}

fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => hex(hi).zip(hex(lo)).map(|(hi, lo)| hi << 4 | lo),
            _ => None,
        };
        if let Some(decoded) = escaped {
            out.push(decoded);
            i += 3;
        } else {
            out.push(if b == b'+' && plus_is_space { b' ' } else { b });
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What [`RequestParser::parse`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    /// No complete head yet, and nothing wrong so far: read more.
    Partial,
    /// A complete head. `consumed` counts its bytes from the start of the
    /// buffer: any empty lines before it, the request line, the headers and
    /// the empty line that ends it. The caller drains exactly that many.
    Complete {
        /// The head, owned: nothing in it borrows from the buffer.
        request: Request,
        /// Head bytes at the start of the buffer, counted as above; a body
        /// ([`Request::body_len`]) is not included.
        consumed: usize,
    },
}

/// A resumable request head parser.
///
/// Contract: every call gets the same buffer as the call before, possibly
/// longer (bytes appended, none removed or changed). After
/// [`Status::Complete`] the parser has reset itself: drain `consumed` bytes
/// from the buffer and call `parse` again on what is left, with the same
/// parser, to get the next pipelined request. After an error the parser
/// returns that same error on every call (answer it and close; [`reset`]
/// exists for tests and for a caller that wants to start over anyway).
///
/// [`reset`]: RequestParser::reset
#[derive(Debug, Default)]
pub struct RequestParser {
    /// Offset in the buffer up to which every byte has been looked at. No
    /// line feed lies in `line_start..scanned`.
    scanned: usize,
    /// Offset of the first byte of the line not finished yet.
    line_start: usize,
    stage: Stage,
    /// The error already returned; returned again on every later call.
    failed: Option<HttpError>,
}

#[derive(Debug)]
enum Stage {
    /// Before the request line, having skipped `empty_lines` empty lines.
    RequestLine { empty_lines: usize },
    /// After the request line, collecting header lines.
    Headers {
        method: String,
        target: String,
        version: Version,
        headers: Vec<(String, String)>,
        /// Bytes of the header lines so far, line endings included; at most
        /// [`MAX_HEAD`].
        bytes: usize,
    },
}

impl Default for Stage {
    fn default() -> Stage {
        Stage::RequestLine { empty_lines: 0 }
    }
}

impl RequestParser {
    /// A parser at the start of a stream: nothing scanned, no request line
    /// yet.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Forgets everything, as if new.
    pub fn reset(&mut self) {
        *self = RequestParser::new();
    }

    /// Looks at the bytes added to `buf` since the last call. See the type's
    /// docs for what `buf` must be.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Status, HttpError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if buf.len() < self.scanned {
            // The caller drained without a Complete: its buffer is not the
            // one we scanned. Starting over is the only safe reading.
            self.reset();
        }
        let result = self.advance(buf);
        match &result {
            Ok(Status::Complete { .. }) => self.reset(),
            Ok(Status::Partial) => {}
            Err(error) => self.failed = Some(error.clone()),
        }
        result
    }

    fn advance(&mut self, buf: &[u8]) -> Result<Status, HttpError> {
        while let Some(lf) = buf[self.scanned..].iter().position(|&b| b == b'\n') {
            let next = self.scanned + lf + 1;
            let raw = &buf[self.line_start..next];
            self.scanned = next;
            self.line_start = next;
            // RFC 9112 §2.2: a bare LF may be taken as a line terminator; a
            // CR anywhere else is a control character and rejected below.
            let line = strip_line_ending(raw);
            match &mut self.stage {
                Stage::RequestLine { empty_lines } => {
                    if line.is_empty() {
                        *empty_lines += 1;
                        if *empty_lines > MAX_LEADING_EMPTY_LINES {
                            return Err(HttpError::BadRequest(
                                "too many empty lines before the request line",
                            ));
                        }
                        continue;
                    }
                    let (method, target, version) = parse_request_line(line)?;
                    self.stage = Stage::Headers {
                        method,
                        target,
                        version,
                        headers: Vec::new(),
                        bytes: 0,
                    };
                }
                Stage::Headers { headers, bytes, .. } => {
                    if line.is_empty() {
                        let stage = std::mem::take(&mut self.stage);
                        let request = finish(stage)?;
                        return Ok(Status::Complete {
                            request,
                            consumed: next,
                        });
                    }
                    *bytes += raw.len();
                    if *bytes > MAX_HEAD {
                        return Err(HttpError::HeaderTooLarge);
                    }
                    if headers.len() == MAX_HEADERS {
                        return Err(HttpError::TooManyHeaders);
                    }
                    headers.push(parse_header_line(line)?);
                }
            }
        }
        self.scanned = buf.len();
        self.check_unfinished_line(&buf[self.line_start..])?;
        Ok(Status::Partial)
    }

    /// Applies the caps to a line whose line feed has not arrived, as soon
    /// as its bytes prove them passed: the line can only grow.
    fn check_unfinished_line(&self, line: &[u8]) -> Result<(), HttpError> {
        // A lone CR may yet be the start of an empty line's CRLF.
        if line.is_empty() || line == b"\r" {
            return Ok(());
        }
        match &self.stage {
            Stage::RequestLine { .. } => {
                // A trailing CR may be the first half of the line ending.
                let shortest = line.len() - usize::from(line.ends_with(b"\r"));
                if shortest > MAX_REQUEST_LINE {
                    return Err(HttpError::UriTooLong);
                }
            }
            Stage::Headers { headers, bytes, .. } => {
                // This line will count with at least its line feed.
                if bytes + line.len() + 1 > MAX_HEAD {
                    return Err(HttpError::HeaderTooLarge);
                }
                // It is not the empty line, so it is one header too many.
                if headers.len() == MAX_HEADERS {
                    return Err(HttpError::TooManyHeaders);
                }
            }
        }
        Ok(())
    }
}

/// `line` (ending in LF) without its LF or CRLF.
fn strip_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// RFC 9110 §5.6.2: `tchar`, the bytes of a method or a header name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.5: CTLs other than HTAB have no place in a field value.
fn is_forbidden_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// RFC 9112 §3: `method SP request-target SP HTTP-version`, single spaces.
fn parse_request_line(line: &[u8]) -> Result<(String, String, Version), HttpError> {
    if line.len() > MAX_REQUEST_LINE {
        return Err(HttpError::UriTooLong);
    }
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(HttpError::BadRequest(
            "control character in the request line",
        ));
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequest(
            "the request line is not METHOD SP TARGET SP VERSION",
        ));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequest("the method is not a token"));
    }
    // RFC 3986 URIs are printable ASCII; controls were rejected above.
    if target.is_empty() || !target.iter().all(u8::is_ascii_graphic) {
        return Err(HttpError::BadRequest(
            "the target has a byte a URI may not contain",
        ));
    }
    // RFC 9112 §3.2: natter serves origin-form, plus asterisk-form for
    // OPTIONS. It is no proxy, so absolute-form and authority-form are out.
    if !(target.starts_with(b"/") || target == b"*" && method == b"OPTIONS") {
        return Err(HttpError::BadRequest(
            "the target must be a path starting with /",
        ));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => {
            return Err(HttpError::BadRequest(
                "only HTTP/1.0 and HTTP/1.1 are served",
            ))
        }
    };
    // Both are ASCII, checked above, so nothing is lost.
    let method = String::from_utf8_lossy(method).into_owned();
    let target = String::from_utf8_lossy(target).into_owned();
    Ok((method, target, version))
}

/// RFC 9112 §5: `field-name ":" OWS field-value OWS`.
fn parse_header_line(line: &[u8]) -> Result<(String, String), HttpError> {
    // RFC 9112 §5.2: obsolete line folding may be rejected with 400; so may
    // whitespace before the first header (§2.2).
    if line.starts_with(b" ") || line.starts_with(b"\t") {
        return Err(HttpError::BadRequest(
            "a header line starts with whitespace (obsolete line folding)",
        ));
    }
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(HttpError::BadRequest("a header line has no colon"));
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // RFC 9112 §5.1: whitespace between name and colon MUST get a 400,
    // since proxies disagree on what it means.
    if name.ends_with(b" ") || name.ends_with(b"\t") {
        return Err(HttpError::BadRequest(
            "whitespace between a header name and its colon",
        ));
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequest("a header name is not a token"));
    }
    if value.iter().any(|&b| is_forbidden_control(b)) {
        return Err(HttpError::BadRequest("control character in a header value"));
    }
    let value = value.trim_ascii();
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    // obs-text (RFC 9110 §5.5) is allowed but has no defined charset.
    let value = String::from_utf8_lossy(value).into_owned();
    Ok((name, value))
}

/// The checks that need the whole header section, then the owned head.
fn finish(stage: Stage) -> Result<Request, HttpError> {
    let Stage::Headers {
        method,
        target,
        version,
        headers,
        ..
    } = stage
    else {
        // Only called on Headers; a request line is needed to finish.
        return Err(HttpError::BadRequest("no request line"));
    };
    let hosts = headers.iter().filter(|(n, _)| n == "host").count();
    // RFC 9112 §3.2: a 1.1 request without Host, or with more than one,
    // MUST get a 400.
    if hosts == 0 && version == Version::Http11 {
        return Err(HttpError::BadRequest(
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    if hosts > 1 {
        return Err(HttpError::BadRequest("more than one Host header"));
    }
    // natter takes no request bodies, so it need not decode chunked ones;
    // and with Content-Length too (RFC 9112 §6.1) it is a smuggling attempt.
    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(HttpError::BadRequest(
            "Transfer-Encoding is not accepted (natter takes no request bodies)",
        ));
    }
    let mut body_len = None;
    for (_, value) in headers.iter().filter(|(n, _)| n == "content-length") {
        let len = parse_content_length(value)?;
        // RFC 9112 §6.3 rule 5: differing lengths make the framing unknowable.
        if body_len.is_some_and(|seen| seen != len) {
            return Err(HttpError::BadRequest("conflicting Content-Length headers"));
        }
        body_len = Some(len);
    }
    Ok(Request {
        method,
        target,
        version,
        headers,
        body_len: body_len.unwrap_or(0),
    })
}

/// RFC 9110 §8.6: `Content-Length = 1*DIGIT`. A list such as `5, 5` is
/// refused too: only digits are taken.
fn parse_content_length(value: &str) -> Result<usize, HttpError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadRequest("Content-Length is not a number"));
    }
    value
        .parse()
        .map_err(|_| HttpError::BadRequest("Content-Length is too large"))
}

#[cfg(test)]
mod tests;
