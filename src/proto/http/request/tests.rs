//! Tests of the request parser: RFC 9112's rules, limits, pipelining and
//! path decoding.

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
    let mut buf =
        b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\nHost: x\n\n\r\nGET /c HTTP/1.1\r\nHo"
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
