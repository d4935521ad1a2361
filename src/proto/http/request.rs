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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
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
    Complete { request: Request, consumed: usize },
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
mod tests {
    use super::*;

    /// A parse of `input` with a fresh parser, in one go.
    fn parse_once(input: &[u8]) -> Result<Status, HttpError> {
        RequestParser::new().parse(input)
    }

    fn complete(input: &[u8]) -> (Request, usize) {
        match parse_once(input) {
            Ok(Status::Complete { request, consumed }) => (request, consumed),
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(input)),
        }
    }

    fn request(target: &str) -> Request {
        complete(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).0
    }

    fn bad(why: &'static str) -> Result<(), HttpError> {
        Err(HttpError::BadRequest(why))
    }

    /// Valid heads, with their method, target, version, headers, body_len.
    #[allow(clippy::type_complexity)] // a test table, read row by row
    fn valid_cases() -> Vec<(
        &'static [u8],
        &'static str,
        &'static str,
        Version,
        Vec<(&'static str, &'static str)>,
        usize,
    )> {
        use Version::*;
        vec![
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/", Http11, vec![("host", "x")], 0),
            (b"GET / HTTP/1.0\r\n\r\n", "GET", "/", Http10, vec![], 0),
            (b"GET / HTTP/1.1\nHost: x\n\n", "GET", "/", Http11, vec![("host", "x")], 0),
            (b"GET / HTTP/1.1\r\nHost: x\n\r\n", "GET", "/", Http11, vec![("host", "x")], 0),
            (
                b"HEAD /api/rooms/lobby/messages?limit=5&before=9 HTTP/1.1\r\nHOST:  example.com:7878 \t\r\nX-Empty:\r\nAccept: */*\r\n\r\n",
                "HEAD",
                "/api/rooms/lobby/messages?limit=5&before=9",
                Http11,
                vec![("host", "example.com:7878"), ("x-empty", ""), ("accept", "*/*")],
                0,
            ),
            (b"\r\n\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/a", Http11, vec![("host", "x")], 0),
            (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", "get", "/", Http11, vec![("host", "x")], 0),
            (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS", "*", Http11, vec![("host", "x")], 0),
            (
                b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
                "POST",
                "/x",
                Http11,
                vec![("host", "x"), ("content-length", "5"), ("content-length", "5")],
                5,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Tab: a\tb\r\nX-Utf8: caf\xc3\xa9\r\nX-Latin1: caf\xe9\r\n\r\n",
                "GET",
                "/",
                Http11,
                vec![("host", "x"), ("x-tab", "a\tb"), ("x-utf8", "café"), ("x-latin1", "caf\u{fffd}")],
                0,
            ),
            (
                b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
                "GET",
                "/ws",
                Http11,
                vec![("host", "x"), ("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")],
                0,
            ),
            (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 00\r\n\r\n", "GET", "/", Http11, vec![("host", "x"), ("content-length", "00")], 0),
        ]
    }

    #[test]
    fn valid_heads_parse_to_their_fields() {
        for (input, method, target, version, headers, body_len) in valid_cases() {
            let (request, consumed) = complete(input);
            let headers: Vec<(String, String)> = headers
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let want = Request {
                method: method.to_string(),
                target: target.to_string(),
                version,
                headers,
                body_len,
            };
            assert_eq!(request, want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(consumed, input.len());
        }
    }

    #[test]
    fn malformed_heads_get_their_status() {
        let no_host = "an HTTP/1.1 request needs a Host header";
        let not_a_number = "Content-Length is not a number";
        let shape = "the request line is not METHOD SP TARGET SP VERSION";
        let version = "only HTTP/1.0 and HTTP/1.1 are served";
        let path = "the target must be a path starting with /";
        let target_byte = "the target has a byte a URI may not contain";
        let control_line = "control character in the request line";
        let control_value = "control character in a header value";
        let token = "a header name is not a token";
        let te = "Transfer-Encoding is not accepted (natter takes no request bodies)";
        let cases: Vec<(&[u8], Result<(), HttpError>)> = vec![
            // Request lines.
            (b"GET / HTTP/1.1\r\n\r\n", bad(no_host)),
            (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", bad(shape)),
            (b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", bad(shape)),
            (b" GET / HTTP/1.1\r\nHost: x\r\n\r\n", bad(shape)),
            (b"GET /\r\nHost: x\r\n\r\n", bad(shape)),
            (b"GET / HTTP/1.1 x\r\nHost: x\r\n\r\n", bad(shape)),
            (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", bad("the method is not a token")),
            (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", bad(version)),
            (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", bad(version)),
            (b"GET / http/1.1\r\nHost: x\r\n\r\n", bad(version)),
            (b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n", bad(control_line)),
            (b"GET /\ta HTTP/1.1\r\nHost: x\r\n\r\n", bad(control_line)),
            (b"GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n", bad(control_line)),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", bad(target_byte)),
            (b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", bad(path)),
            (b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", bad(path)),
            (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", bad(path)),
            (b"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", bad(path)),
            // Header lines.
            (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", bad("whitespace between a header name and its colon")),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n", bad("a header line starts with whitespace (obsolete line folding)")),
            (b"GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", bad("a header line starts with whitespace (obsolete line folding)")),
            (b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", bad("a header line has no colon")),
            (b"GET / HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n", bad(token)),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX[1]: x\r\n\r\n", bad(token)),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: x\r\n\r\n", bad(token)),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", bad(control_value)),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", bad(control_value)),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", bad(control_value)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\rX: 1\r\n\r\n", bad(token)),
            // Whole-head rules.
            (b"GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", bad("more than one Host header")),
            (b"GET / HTTP/1.0\r\nHost: x\r\nHost: x\r\n\r\n", bad("more than one Host header")),
            (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", bad(te)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad(te)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", bad("conflicting Content-Length headers")),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", bad(not_a_number)),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", bad("Content-Length is too large")),
        ];
        for (input, want) in cases {
            let got = parse_once(input).map(|_| ());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
            if let Err(error) = got {
                assert_eq!(error.status(), 400);
            }
        }
    }

    #[test]
    fn unfinished_heads_are_partial() {
        for input in [
            &b""[..],
            b"\r",
            b"\r\n",
            b"G",
            b"GET / HTTP/1.1",
            b"GET / HTTP/1.1\r",
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: x",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r",
            // Errors that need a finished line are not reported before it.
            b"GET / HTTP/1.1\r\nHost : x",
        ] {
            assert_eq!(
                parse_once(input),
                Ok(Status::Partial),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn leading_empty_lines_are_skipped_up_to_a_limit() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut input = b"\r\n".repeat(MAX_LEADING_EMPTY_LINES);
        input.extend_from_slice(head);
        let (request, consumed) = complete(&input);
        assert_eq!(request.path(), "/");
        assert_eq!(consumed, input.len());
        let mut input = b"\n".repeat(MAX_LEADING_EMPTY_LINES + 1);
        input.extend_from_slice(head);
        assert_eq!(
            parse_once(&input),
            Err(HttpError::BadRequest(
                "too many empty lines before the request line"
            ))
        );
    }

    /// `GET /aaa...a HTTP/1.1` exactly `len` bytes long.
    fn request_line(len: usize) -> Vec<u8> {
        let fixed = "GET / HTTP/1.1".len();
        format!("GET /{} HTTP/1.1", "a".repeat(len - fixed)).into_bytes()
    }

    #[test]
    fn request_line_at_the_limit_passes_and_one_byte_over_is_414() {
        let mut at = request_line(MAX_REQUEST_LINE);
        at.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        let (request, consumed) = complete(&at);
        assert_eq!(
            request.target.len(),
            MAX_REQUEST_LINE - "GET  HTTP/1.1".len()
        );
        assert_eq!(consumed, at.len());

        let mut over = request_line(MAX_REQUEST_LINE + 1);
        over.extend_from_slice(b"\r\nHost: x\r\n\r\n");
        assert_eq!(parse_once(&over), Err(HttpError::UriTooLong));
        // A bare LF ending does not change what counts.
        let mut over_lf = request_line(MAX_REQUEST_LINE + 1);
        over_lf.extend_from_slice(b"\nHost: x\n\n");
        assert_eq!(parse_once(&over_lf), Err(HttpError::UriTooLong));
    }

    #[test]
    fn overlong_request_line_is_414_before_its_line_ending() {
        let at = request_line(MAX_REQUEST_LINE);
        assert_eq!(parse_once(&at), Ok(Status::Partial));
        // The CR may be the start of the CRLF: still within the limit.
        let mut at_cr = at.clone();
        at_cr.push(b'\r');
        assert_eq!(parse_once(&at_cr), Ok(Status::Partial));
        let over = request_line(MAX_REQUEST_LINE + 1);
        assert_eq!(parse_once(&over), Err(HttpError::UriTooLong));
        // The same, found by a parser that saw the line grow byte by byte.
        let mut parser = RequestParser::new();
        for cut in 0..over.len() {
            assert_eq!(parser.parse(&over[..cut]), Ok(Status::Partial), "cut {cut}");
        }
        assert_eq!(parser.parse(&over), Err(HttpError::UriTooLong));
        // Garbage without a newline gets the same answer: it cannot be
        // buffered forever either.
        assert_eq!(
            parse_once(&[b'x'; MAX_REQUEST_LINE + 1]),
            Err(HttpError::UriTooLong)
        );
    }

    /// A head whose header section (header lines with their CRLFs) is
    /// exactly `len` bytes: `Host` and one long header.
    fn head_with_header_section(len: usize) -> Vec<u8> {
        let fixed = "Host: x\r\nX: \r\n".len();
        let value = "v".repeat(len - fixed);
        format!("GET / HTTP/1.1\r\nHost: x\r\nX: {value}\r\n\r\n").into_bytes()
    }

    #[test]
    fn header_section_at_the_limit_passes_and_one_byte_over_is_431() {
        let at = head_with_header_section(MAX_HEAD);
        let (request, consumed) = complete(&at);
        assert_eq!(consumed, at.len());
        let section: usize = request
            .headers
            .iter()
            .map(|(n, v)| n.len() + ": ".len() + v.len() + "\r\n".len())
            .sum();
        assert_eq!(section, MAX_HEAD);

        let over = head_with_header_section(MAX_HEAD + 1);
        assert_eq!(parse_once(&over), Err(HttpError::HeaderTooLarge));
        // Known as soon as the unfinished line proves it: one byte short of
        // the last CRLF still fits, the whole line without its LF does not.
        let without_end = &over[..over.len() - 2];
        assert_eq!(
            parse_once(&without_end[..without_end.len() - 2]),
            Ok(Status::Partial)
        );
        assert_eq!(
            parse_once(&without_end[..without_end.len() - 1]),
            Err(HttpError::HeaderTooLarge)
        );
        let mut parser = RequestParser::new();
        let mut first_error = None;
        for cut in 0..=over.len() {
            if let Err(error) = parser.parse(&over[..cut]) {
                first_error = Some((cut, error));
                break;
            }
        }
        assert_eq!(
            first_error,
            Some((over.len() - 3, HttpError::HeaderTooLarge))
        );
    }

    #[test]
    fn header_count_at_the_limit_passes_and_one_more_is_431() {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 1..MAX_HEADERS {
            head.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        let mut at = head.clone();
        at.extend_from_slice(b"\r\n");
        assert_eq!(complete(&at).0.headers.len(), MAX_HEADERS);

        let mut over = head.clone();
        over.extend_from_slice(b"X-Last: 1\r\n\r\n");
        assert_eq!(parse_once(&over), Err(HttpError::TooManyHeaders));
        // The first byte of line 101 is enough; a CR may still be the end.
        let mut started = head.clone();
        started.push(b'\r');
        assert_eq!(parse_once(&started), Ok(Status::Partial));
        head.push(b'X');
        assert_eq!(parse_once(&head), Err(HttpError::TooManyHeaders));
    }

    /// Feeds `input` to one parser as growing prefixes, the way the shell
    /// does, and returns the first non-Partial answer and where it came.
    fn feed_prefixes(
        parser: &mut RequestParser,
        input: &[u8],
        cuts: &[usize],
    ) -> (usize, Result<Status, HttpError>) {
        for &cut in cuts {
            match parser.parse(&input[..cut]) {
                Ok(Status::Partial) => {}
                other => return (cut, other),
            }
        }
        (input.len(), parser.parse(input))
    }

    #[test]
    fn every_split_of_a_valid_head_gives_the_same_request() {
        for (input, ..) in valid_cases() {
            let whole = parse_once(input);
            assert!(matches!(whole, Ok(Status::Complete { .. })));
            // Every prefix, one byte more each time.
            let every: Vec<usize> = (0..input.len()).collect();
            let (at, got) = feed_prefixes(&mut RequestParser::new(), input, &every);
            assert_eq!(at, input.len(), "{:?}", String::from_utf8_lossy(input));
            assert_eq!(got, whole);
            // Every pair of reads in between, a fresh parser each time: the
            // resumed scan must agree with a parse from scratch.
            for a in 0..input.len() {
                for b in a..input.len() {
                    let (at, got) = feed_prefixes(&mut RequestParser::new(), input, &[a, b]);
                    assert_eq!(at, input.len(), "cuts {a}, {b}");
                    assert_eq!(got, whole, "cuts {a}, {b}");
                }
                // A prefix alone, from scratch, is never more than Partial.
                assert_eq!(parse_once(&input[..a]), Ok(Status::Partial), "prefix {a}");
            }
        }
    }

    #[test]
    fn every_split_of_a_bad_head_gives_the_same_error_and_it_sticks() {
        for input in [
            &b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"GET / HTTP/3\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        ] {
            let whole = parse_once(input);
            assert!(whole.is_err());
            for a in 0..input.len() {
                let mut parser = RequestParser::new();
                let (_, got) = feed_prefixes(&mut parser, input, &[a]);
                assert_eq!(got, whole, "cut {a}");
                // Sticky: more bytes, or a valid head, do not revive it.
                assert_eq!(parser.parse(input), whole);
                assert_eq!(parser.parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), whole);
                parser.reset();
                assert!(matches!(
                    parser.parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                    Ok(Status::Complete { .. })
                ));
            }
        }
    }

    #[test]
    fn a_partial_head_is_not_scanned_twice() {
        let mut parser = RequestParser::new();
        let buf = b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/";
        assert_eq!(parser.parse(buf), Ok(Status::Partial));
        // Everything was looked at; the finished lines are already parsed.
        assert_eq!(parser.scanned, buf.len());
        assert_eq!(parser.line_start, buf.len() - "Accept: text/".len());
        let Stage::Headers { headers, bytes, .. } = &parser.stage else {
            panic!("still before the request line: {:?}", parser.stage);
        };
        assert_eq!(headers, &[("host".to_string(), "x".to_string())]);
        assert_eq!(*bytes, "Host: x\r\n".len());
    }

    #[test]
    fn pipelined_requests_come_one_at_a_time() {
        let mut buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\nHost: x\n\n\r\nGET /c HTTP/1.1\r\nHo"
            .to_vec();
        let mut parser = RequestParser::new();
        let Ok(Status::Complete { request, consumed }) = parser.parse(&buf) else {
            panic!("first request");
        };
        assert_eq!((request.path(), consumed), ("/a", 28));
        buf.drain(..consumed);
        let Ok(Status::Complete { request, consumed }) = parser.parse(&buf) else {
            panic!("second request");
        };
        assert!(request.is_head());
        assert_eq!((request.path(), consumed), ("/b", 26));
        buf.drain(..consumed);
        assert_eq!(parser.parse(&buf), Ok(Status::Partial));
        // The rest arrives: the parser resumes where it stopped.
        buf.extend_from_slice(b"st: x\r\n\r\n");
        let Ok(Status::Complete { request, consumed }) = parser.parse(&buf) else {
            panic!("third request");
        };
        // The stray CRLF before it was an ignored empty line.
        assert_eq!((request.path(), consumed), ("/c", buf.len()));
    }

    #[test]
    fn the_body_is_not_consumed() {
        let input = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc";
        let (request, consumed) = complete(input);
        assert_eq!(request.body_len, 3);
        assert_eq!(&input[consumed..], b"abc");
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let r = request(
            "/api?nick=bob%20smith&x=a+b&empty=&flag&bad=%zz%4&utf=caf%C3%A9&inv=%FF&dup=1&dup=2&k%65y=v&&plus=%2B&p=&p=2",
        );
        assert_eq!(r.path(), "/api");
        let cases = [
            ("nick", Some("bob smith")),
            ("x", Some("a b")),
            ("empty", Some("")),
            ("flag", Some("")),
            ("bad", Some("%zz%4")),
            ("utf", Some("café")),
            ("inv", None),
            ("dup", Some("1")),
            ("key", Some("v")),
            ("k%65y", None),
            ("plus", Some("+")),
            ("p", Some("")),
            ("missing", None),
            ("", None),
        ];
        for (name, want) in cases {
            assert_eq!(r.query_param(name).as_deref(), want, "{name}");
        }
        assert_eq!(request("/api").query_param("nick"), None);
        assert_eq!(request("/api?").query_param("nick"), None);
        assert_eq!(
            request("/?a=1?b=2").query_param("a").as_deref(),
            Some("1?b=2")
        );
        assert_eq!(request("/a%20b?x=1").path(), "/a%20b");
        assert_eq!(decode_path_segment("a+b%2Fc%23").as_deref(), Some("a+b/c#"));
        assert_eq!(decode_path_segment("%C3%A9").as_deref(), Some("é"));
        assert_eq!(decode_path_segment("%C3"), None);
        assert_eq!(decode_query_component("a+b").as_deref(), Some("a b"));
    }

    #[test]
    fn path_segments_decode_only_two_hex_digits() {
        let cases = [
            ("lobby", Some("lobby")),
            ("%23lobby", Some("#lobby")),
            ("lob%62y", Some("lobby")),
            ("%4c%4F", Some("LO")),
            ("", Some("")),
            // Not an escape: the `%` and what follows stay as sent.
            ("%", Some("%")),
            ("%2", Some("%2")),
            ("%zz", Some("%zz")),
            ("%%31", Some("%1")),
            // A sign is not a hex digit: `%+1` is not byte 1 (str::from_str_radix
            // would take it), nor is `%-1` or `%1+`.
            ("%+1", Some("%+1")),
            ("%+f", Some("%+f")),
            ("%-1", Some("%-1")),
            ("%1+", Some("%1+")),
            ("% 1", Some("% 1")),
            // Decoded bytes must be UTF-8.
            ("%ff", None),
            ("%C3", None),
            ("%C3%A9", Some("é")),
        ];
        for (input, want) in cases {
            assert_eq!(decode_path_segment(input).as_deref(), want, "{input:?}");
        }
        for input in ["%+1", "a%+1b", "%+1%+1"] {
            let decoded = decode_path_segment(input).unwrap_or_default();
            assert!(
                !decoded.contains('\u{1}'),
                "{input:?} decoded to byte 1: {decoded:?}"
            );
        }
    }

    #[test]
    fn headers_are_found_case_insensitively_and_tokens_across_repeats() {
        let (r, _) = complete(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-A: 1\r\nx-a: 2\r\nCONNECTION: Upgrade ,\tfoo\r\nUpgrade: WebSocket\r\n\r\n",
        );
        assert_eq!(r.header("HOST"), Some("x"));
        assert_eq!(r.header("x-a"), Some("1"));
        assert_eq!(r.header("X-B"), None);
        assert!(r.header_has_token("connection", "upgrade"));
        assert!(r.header_has_token("Connection", "KEEP-ALIVE"));
        assert!(r.header_has_token("connection", "foo"));
        assert!(!r.header_has_token("connection", "keep"));
        assert!(!r.header_has_token("connection", "close"));
        assert!(r.header_has_token("upgrade", "websocket"));
        assert!(!r.header_has_token("x-b", ""));
        assert!(!r.is_head());
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let cases: [(&[u8], bool); 7] = [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
                true,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nConnection: CLOSE\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n",
                true,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false),
        ];
        for (input, want) in cases {
            assert_eq!(
                complete(input).0.keep_alive(),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
