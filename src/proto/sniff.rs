//! Deciding what a new connection speaks from its first bytes.
//!
//! PROTOCOL.md "One port": an HTTP request line means HTTP; a first byte
//! `0x16` (a TLS ClientHello) means a TLS client we cannot serve; anything
//! else is a line client. Silence is handled by the shell's sniff timer:
//! netcat waits for the server to speak first. Pure function, no I/O.

/// Longest first line that can still be an HTTP request line.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;

/// What a new connection speaks, as far as its first bytes tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Could still become an HTTP request line: wait for more bytes.
    NeedMore,
    /// The first line is an HTTP request line, or the start of one that is
    /// over [`MAX_REQUEST_LINE`] (the parser answers 414) or never finished
    /// (see [`on_first_line_timeout`]): an HTTP connection.
    Http,
    /// A line (netcat) client: its first line is not a request line, or it
    /// stayed silent (see [`on_silence`]). Bytes already received are its
    /// first input.
    Line,
    /// A TLS handshake record (first byte `0x16`): the server starts a TLS
    /// session with these bytes, or closes quietly if TLS is not configured.
    Tls,
}

/// Classifies the bytes received so far on a fresh connection.
pub fn sniff(buf: &[u8]) -> Sniff {
    let Some(&first) = buf.first() else {
        return Sniff::NeedMore;
    };
    if first == 0x16 {
        return Sniff::Tls;
    }
    if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
        let line = &buf[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        return if is_request_line(line) {
            Sniff::Http
        } else {
            Sniff::Line
        };
    }
    if !could_be_request_line(buf) {
        return Sniff::Line;
    }
    if buf.len() > MAX_REQUEST_LINE {
        // An over-long request line is still HTTP: it earns a 414.
        return Sniff::Http;
    }
    Sniff::NeedMore
}

/// What the sniff timer decides: silence means a line client (netcat waits
/// for a greeting). A first line that has started is not silence: it is
/// waited for until its newline decides (a person typing in character mode
/// sends `H`, then `ELLO\n`), bounded by the shell's first-line timeout.
pub fn on_silence(buf: &[u8]) -> Sniff {
    if buf.is_empty() {
        Sniff::Line
    } else {
        sniff(buf)
    }
}

/// What the first-line timeout decides about a first line that never
/// finished: only a prefix of a request line gets this far, so it is HTTP
/// (whose header timeout answers it).
pub fn on_first_line_timeout(buf: &[u8]) -> Sniff {
    match on_silence(buf) {
        Sniff::NeedMore => Sniff::Http,
        other => other,
    }
}

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase()
}

fn is_target_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

/// `METHOD SP TARGET SP HTTP/1.x`, with METHOD in uppercase letters.
pub fn is_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.len() <= 16
        && method.iter().all(|&b| is_method_byte(b))
        && !target.is_empty()
        && target.iter().all(|&b| is_target_byte(b))
        && version.len() == 8
        && version.starts_with(b"HTTP/1.")
        && version[7].is_ascii_digit()
}

/// Whether `buf` (no newline yet) is a prefix of some request line.
fn could_be_request_line(buf: &[u8]) -> bool {
    let method_len = buf.iter().take_while(|&&b| is_method_byte(b)).count();
    if method_len == buf.len() {
        return method_len <= 16;
    }
    if method_len == 0 || method_len > 16 || buf[method_len] != b' ' {
        return false;
    }
    let rest = &buf[method_len + 1..];
    let target_len = rest.iter().take_while(|&&b| is_target_byte(b)).count();
    if target_len == rest.len() {
        return true;
    }
    if target_len == 0 || rest[target_len] != b' ' {
        return false;
    }
    let version = &rest[target_len + 1..];
    let want = b"HTTP/1.";
    if version.len() <= want.len() {
        return want.starts_with(version);
    }
    // A CR may be the first half of the line ending; the version before it
    // must be complete and valid.
    let version = version.strip_suffix(b"\r").unwrap_or(version);
    version.len() == 8 && version.starts_with(want) && version[7].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert!(is_request_line(b"GET / HTTP/1.1"));
        assert!(is_request_line(b"HEAD /healthz HTTP/1.0"));
        assert!(is_request_line(b"POST /api?x=1 HTTP/1.1"));
        for bad in [
            &b"GET / HTTP/2.0"[..],
            b"get / HTTP/1.1",
            b"GET  / HTTP/1.1",
            b"GET / HTTP/1.1 extra",
            b"GET /",
            b"hello world",
            b"",
            b"GET / HTTP/1.x",
        ] {
            assert!(!is_request_line(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sniffing_complete_lines() {
        assert_eq!(sniff(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Sniff::Http);
        assert_eq!(sniff(b"GET / HTTP/1.0\n"), Sniff::Http);
        assert_eq!(sniff(b"hello\n"), Sniff::Line);
        assert_eq!(sniff(b"/nick bob\r\n"), Sniff::Line);
        assert_eq!(sniff(b"\n"), Sniff::Line);
        assert_eq!(sniff(b"\x16\x03\x01\x02\x00"), Sniff::Tls);
        assert_eq!(sniff(b""), Sniff::NeedMore);
    }

    #[test]
    fn every_prefix_of_a_request_line_waits_and_others_decide_early() {
        let req = b"GET /ws?nick=bob HTTP/1.1\r\n";
        for cut in 1..req.len() - 1 {
            assert_eq!(sniff(&req[..cut]), Sniff::NeedMore, "cut at {cut}");
        }
        assert_eq!(sniff(req), Sniff::Http);
        assert_eq!(sniff(b"hello"), Sniff::Line);
        assert_eq!(sniff(b"GETx"), Sniff::Line);
        assert_eq!(sniff(b"GET / HTTP/2"), Sniff::Line);
        assert_eq!(sniff(b"GET / HTTP/1.1 "), Sniff::Line);
        // Found by fuzzing: once Line, one more byte (a CR) must not undecide.
        assert_eq!(sniff(b"A / HTTP/1.x"), Sniff::Line);
        assert_eq!(sniff(b"A / HTTP/1.x\r"), Sniff::Line);
        assert_eq!(sniff(b"A / HTTP/1.\r\r"), Sniff::Line);
        assert_eq!(sniff(b"A / HTTP/1.1\r"), Sniff::NeedMore);
    }

    #[test]
    fn overlong_request_line_is_http_and_overlong_text_is_line() {
        let mut long = b"GET /".to_vec();
        long.resize(MAX_REQUEST_LINE + 10, b'a');
        assert_eq!(sniff(&long), Sniff::Http);
        assert_eq!(sniff(&[b'A'; 20]), Sniff::Line);
    }

    #[test]
    fn silence() {
        assert_eq!(on_silence(b""), Sniff::Line);
        assert_eq!(on_silence(b"GET / HT"), Sniff::NeedMore);
        assert_eq!(on_silence(b"H"), Sniff::NeedMore);
        assert_eq!(on_silence(b"hi"), Sniff::Line);
        assert_eq!(on_first_line_timeout(b"GET / HT"), Sniff::Http);
        assert_eq!(on_first_line_timeout(b"HELLO"), Sniff::Http);
        assert_eq!(on_first_line_timeout(b"hi"), Sniff::Line);
        assert_eq!(on_first_line_timeout(b""), Sniff::Line);
    }
}
