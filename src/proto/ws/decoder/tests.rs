//! Tests of the frame decoder: RFC 6455 section by section, fragmentation,
//! limits, and the fast path against the slow one on random frames.

use super::*;
use crate::proto::ws::frame::encode_client_frame;
use crate::proto::ws::frame::opcode::{BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
use crate::testrng::Rng;

const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
const BIG: usize = 1 << 20;

/// An [`Incoming`] that outlives the decoder call, for comparing runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Text(String),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

fn own(event: Incoming<'_>) -> Ev {
    match event {
        Incoming::Text(t) => Ev::Text(t.to_string()),
        Incoming::Ping(p) => Ev::Ping(p.to_vec()),
        Incoming::Pong(p) => Ev::Pong(p.to_vec()),
        Incoming::Close { code, reason } => Ev::Close(code, reason.to_string()),
        Incoming::Binary(b) => panic!("binary {b:?} from a text-only decoder"),
    }
}

type Run = (Vec<Ev>, Result<(), WsError>);

/// Feeds `chunks` in order; the events of all calls and the last result.
fn feed<'a>(dec: &mut Decoder, chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let mut events = Vec::new();
    let mut result = Ok(());
    for chunk in chunks {
        result = dec.decode(chunk, |e| events.push(own(e)));
    }
    (events, result)
}

fn whole(max: usize, input: &[u8]) -> Run {
    feed(&mut Decoder::new(max), [input])
}

fn bytewise(max: usize, input: &[u8]) -> Run {
    feed(&mut Decoder::new(max), input.chunks(1))
}

fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    encode_client_frame(fin, 0, op, payload, MASK)
}

fn text(payload: &[u8]) -> Vec<u8> {
    frame(true, TEXT, payload)
}

fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut body = code.to_be_bytes().to_vec();
    body.extend_from_slice(reason);
    frame(true, CLOSE, &body)
}

/// A masked frame with a length field written by hand (`len7` and its
/// extension), for forms `encode_client_frame` never writes.
fn with_length(first: u8, len7: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first, 0x80 | len7];
    out.extend_from_slice(ext);
    out.extend_from_slice(&MASK);
    let start = out.len();
    out.extend_from_slice(payload);
    frame::apply_mask(&mut out[start..], MASK, 0);
    out
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn t(s: &str) -> Ev {
    Ev::Text(s.to_string())
}

// -----------------------------------------------------------------------
// Round trips and length forms
// -----------------------------------------------------------------------

#[test]
fn every_length_form_round_trips() {
    // Each length with the header size its shortest form takes.
    let forms = [
        (0, 6),
        (1, 6),
        (125, 6),
        (126, 8),
        (127, 8),
        (65535, 8),
        (65536, 14),
        (70000, 14),
    ];
    for (len, header) in forms {
        let payload: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let input = text(payload.as_bytes());
        assert_eq!(input.len(), header + len);
        assert_eq!(whole(BIG, &input), (vec![t(&payload)], Ok(())), "len {len}");
        // Split right after the header and in the middle of the payload.
        let mut dec = Decoder::new(BIG);
        let (a, b) = input.split_at(header + len / 2);
        assert_eq!(
            feed(&mut dec, [&input[..header], &a[header..], b]),
            (vec![t(&payload)], Ok(()))
        );
    }
    for len in [0, 1, 125] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        assert_eq!(
            whole(16, &frame(true, PING, &payload)),
            (vec![Ev::Ping(payload.clone())], Ok(()))
        );
        assert_eq!(
            whole(16, &frame(true, PONG, &payload)),
            (vec![Ev::Pong(payload)], Ok(()))
        );
    }
}

#[test]
fn non_minimal_lengths_are_accepted() {
    let forms: [Vec<u8>; 3] = [
        with_length(0x81, 126, &[0, 5], b"hello"),
        with_length(0x81, 127, &[0, 0, 0, 0, 0, 0, 0, 5], b"hello"),
        with_length(0x81, 127, &[0, 0, 0, 0, 0, 0, 1, 0], &[b'x'; 256]),
    ];
    assert_eq!(whole(BIG, &forms[0]), (vec![t("hello")], Ok(())));
    assert_eq!(whole(BIG, &forms[1]), (vec![t("hello")], Ok(())));
    assert_eq!(whole(BIG, &forms[2]), (vec![t(&"x".repeat(256))], Ok(())));
    // Control frames too: the length is what counts, not its form.
    let ping = with_length(0x89, 126, &[0, 2], b"hi");
    assert_eq!(whole(BIG, &ping), (vec![Ev::Ping(b"hi".to_vec())], Ok(())));
}

#[test]
fn zero_length_messages_are_valid() {
    assert_eq!(whole(BIG, &text(b"")), (vec![t("")], Ok(())));
    let fragmented = cat(&[
        frame(false, TEXT, b""),
        frame(false, CONTINUATION, b""),
        frame(true, CONTINUATION, b""),
    ]);
    assert_eq!(whole(BIG, &fragmented), (vec![t("")], Ok(())));
    // Even with a limit of zero.
    assert_eq!(whole(0, &text(b"")), (vec![t("")], Ok(())));
}

#[test]
fn the_limit_is_inclusive() {
    assert_eq!(
        whole(16, &text(&[b'a'; 16])),
        (vec![t(&"a".repeat(16))], Ok(()))
    );
    let two = cat(&[
        frame(false, TEXT, &[b'a'; 8]),
        frame(true, CONTINUATION, &[b'b'; 8]),
    ]);
    assert_eq!(whole(16, &two), (vec![t("aaaaaaaabbbbbbbb")], Ok(())));
    // Control frames do not count towards the message.
    let with_ping = cat(&[
        frame(false, TEXT, &[b'a'; 8]),
        frame(true, PING, &[0; 100]),
        frame(true, CONTINUATION, &[b'b'; 8]),
    ]);
    assert_eq!(whole(16, &with_ping).1, Ok(()));
}

// -----------------------------------------------------------------------
// Violations, each with its close code
// -----------------------------------------------------------------------

#[test]
fn each_violation_gets_its_close_code() {
    use Violation::*;
    let top_bit = [0x80, 0, 0, 0, 0, 0, 0, 5];
    let huge = [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    let bad_reason = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
    let rows: Vec<(Violation, u16, &str, Vec<u8>)> = vec![
        (Unmasked, 1002, "unmasked", vec![0x81, 0x02, b'h', b'i']),
        (Unmasked, 1002, "unmasked ping", vec![0x89, 0x00]),
        (
            ReservedBits,
            1002,
            "rsv1",
            encode_client_frame(true, 4, TEXT, b"hi", MASK),
        ),
        (
            ReservedBits,
            1002,
            "rsv2",
            encode_client_frame(true, 2, TEXT, b"hi", MASK),
        ),
        (
            ReservedBits,
            1002,
            "rsv3",
            encode_client_frame(true, 1, TEXT, b"hi", MASK),
        ),
        (
            ReservedBits,
            1002,
            "rsv ping",
            encode_client_frame(true, 4, PING, b"", MASK),
        ),
        (
            LengthTopBit,
            1002,
            "64-bit top bit",
            with_length(0x81, 127, &top_bit, b"hello"),
        ),
        (
            LengthTopBit,
            1002,
            "64-bit all ones",
            with_length(0x81, 127, &[0xFF; 8], b""),
        ),
        (
            ControlTooLong,
            1002,
            "ping of 126",
            frame(true, PING, &[0; 126]),
        ),
        (
            ControlTooLong,
            1002,
            "pong of 126",
            frame(true, PONG, &[0; 126]),
        ),
        (
            ControlTooLong,
            1002,
            "close of 126",
            close_body(1000, &[b'a'; 124]),
        ),
        (
            FragmentedControl,
            1002,
            "ping without fin",
            frame(false, PING, b""),
        ),
        (
            FragmentedControl,
            1002,
            "close without fin",
            frame(false, CLOSE, b""),
        ),
        (
            StrayContinuation,
            1002,
            "continuation",
            frame(true, CONTINUATION, b"x"),
        ),
        (
            StrayContinuation,
            1002,
            "continuation, no fin",
            frame(false, CONTINUATION, b""),
        ),
        (
            InterleavedMessage,
            1002,
            "text inside a fragmented text",
            cat(&[frame(false, TEXT, b"a"), text(b"b")]),
        ),
        (
            InterleavedMessage,
            1002,
            "binary inside a fragmented text",
            cat(&[frame(false, TEXT, b"a"), frame(true, BINARY, b"b")]),
        ),
        (Binary, 1003, "binary", frame(true, BINARY, b"\x00\x01")),
        (Binary, 1003, "empty binary", frame(true, BINARY, b"")),
        (
            Binary,
            1003,
            "fragmented binary",
            frame(false, BINARY, b"ab"),
        ),
        (TooBig, 1009, "text over the limit", text(&[b'a'; 17])),
        (
            TooBig,
            1009,
            "fragments over the limit",
            cat(&[
                frame(false, TEXT, &[b'a'; 10]),
                frame(true, CONTINUATION, &[b'a'; 7]),
            ]),
        ),
        (
            TooBig,
            1009,
            "huge 64-bit length",
            with_length(0x81, 127, &huge, b""),
        ),
        (BadUtf8, 1007, "invalid byte", text(b"ab\xffcd")),
        (BadUtf8, 1007, "overlong", text(b"\xc0\xaf")),
        (BadUtf8, 1007, "surrogate", text(b"\xed\xa0\x80")),
        (BadUtf8, 1007, "past U+10FFFF", text(b"\xf4\x90\x80\x80")),
        (
            BadUtf8,
            1007,
            "cut at the end of a fin frame",
            text(b"ok\xe2\x82"),
        ),
        (
            BadUtf8,
            1007,
            "cut at the end of a fragmented message",
            cat(&[
                frame(false, TEXT, b"ok"),
                frame(true, CONTINUATION, b"\xf0\x9f\x98"),
            ]),
        ),
        (
            BadUtf8,
            1007,
            "bad across fragments",
            cat(&[
                frame(false, TEXT, b"\xe2"),
                frame(true, CONTINUATION, b"\x28"),
            ]),
        ),
        (
            CloseBodyTooShort,
            1002,
            "close of 1 byte",
            frame(true, CLOSE, b"\x03"),
        ),
        (
            BadCloseReason,
            1007,
            "close reason not UTF-8",
            close_body(1000, bad_reason),
        ),
    ];
    let mut cases: Vec<(Violation, u16, String, Vec<u8>)> = rows
        .into_iter()
        .map(|(v, code, name, input)| (v, code, name.to_string(), input))
        .collect();
    for op in (3..=7).chain(0xB..=0xF) {
        let input = frame(true, op, b"");
        cases.push((ReservedOpcode, 1002, format!("opcode {op:#x}"), input));
    }
    for code in [
        0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let input = close_body(code, b"");
        cases.push((BadCloseCode, 1002, format!("close code {code}"), input));
    }
    for (violation, code, name, input) in cases {
        let want = (vec![], Err(violation.error()));
        assert_eq!(violation.error().code, code, "{name}");
        assert_eq!(whole(16, &input), want, "{name}");
        assert_eq!(bytewise(16, &input), want, "{name}, byte by byte");
    }
}

#[test]
fn events_before_a_violation_are_delivered() {
    let input = cat(&[
        frame(true, PING, b"a"),
        text(b"ok"),
        frame(true, BINARY, b""),
    ]);
    let want = (
        vec![Ev::Ping(b"a".to_vec()), t("ok")],
        Err(Violation::Binary.error()),
    );
    assert_eq!(whole(16, &input), want);
    assert_eq!(bytewise(16, &input), want);
    let input = cat(&[text(b"a"), frame(true, CONTINUATION, b"b")]);
    let want = (vec![t("a")], Err(Violation::StrayContinuation.error()));
    assert_eq!(whole(16, &input), want);
}

#[test]
fn valid_close_frames() {
    let table: &[(Vec<u8>, Ev)] = &[
        (frame(true, CLOSE, b""), Ev::Close(None, String::new())),
        (close_body(1000, b""), Ev::Close(Some(1000), String::new())),
        (
            close_body(1001, b"bye"),
            Ev::Close(Some(1001), "bye".into()),
        ),
        (close_body(1012, b""), Ev::Close(Some(1012), String::new())),
        (
            close_body(3000, "\u{e9}t\u{e9}".as_bytes()),
            Ev::Close(Some(3000), "\u{e9}t\u{e9}".into()),
        ),
        (
            close_body(4999, &[b'r'; 123]),
            Ev::Close(Some(4999), "r".repeat(123)),
        ),
    ];
    for (input, event) in table {
        let mut dec = Decoder::new(16);
        assert_eq!(feed(&mut dec, [&input[..]]), (vec![event.clone()], Ok(())));
        assert!(dec.is_closed());
    }
}

#[test]
fn too_big_is_judged_on_the_header_alone() {
    // Only the header of a huge frame: refused before any payload.
    let header = &with_length(0x81, 127, &[0, 0, 1, 0, 0, 0, 0, 0], b"")[..14];
    let mut dec = Decoder::new(1024);
    assert_eq!(
        feed(&mut dec, [header]),
        (vec![], Err(Violation::TooBig.error()))
    );
    assert_eq!(dec.allocated(), 0);
    // The 16-bit form, header only.
    let header = &with_length(0x81, 126, &[0x04, 0x01], b"")[..8];
    assert_eq!(
        whole(1024, header),
        (vec![], Err(Violation::TooBig.error()))
    );
    // A continuation's header tips the message over: its payload never comes.
    let first = frame(false, TEXT, &[b'a'; 1000]);
    let next = &frame(true, CONTINUATION, &[b'b'; 25])[..6];
    let mut dec = Decoder::new(1024);
    assert_eq!(feed(&mut dec, [&first[..]]), (vec![], Ok(())));
    assert_eq!(dec.buffered(), 1000);
    assert_eq!(
        feed(&mut dec, [next]),
        (vec![], Err(Violation::TooBig.error()))
    );
}

#[test]
fn errors_are_sticky() {
    let mut dec = Decoder::new(BIG);
    let want = Err(Violation::InterleavedMessage.error());
    assert_eq!(
        feed(
            &mut dec,
            [&frame(false, TEXT, b"part")[..], &frame(true, BINARY, b"")]
        ),
        (vec![], want)
    );
    assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
    // Perfectly good frames afterwards change nothing and produce nothing.
    for input in [
        text(b"hello"),
        frame(true, CONTINUATION, b"rest"),
        frame(true, PING, b""),
        close_body(1000, b""),
    ] {
        assert_eq!(feed(&mut dec, [&input[..]]), (vec![], want));
    }
    assert_eq!(feed(&mut dec, [&b""[..]]), (vec![], want));
    assert!(!dec.is_closed());
}

#[test]
fn nothing_is_accepted_after_close() {
    let mut dec = Decoder::new(BIG);
    let input = cat(&[
        frame(false, TEXT, b"unfinished"),
        close_body(1000, b"bye"),
        text(b"after"),
        vec![0xFF; 3],
    ]);
    assert_eq!(
        feed(&mut dec, [&input[..]]),
        (vec![Ev::Close(Some(1000), "bye".into())], Ok(()))
    );
    assert!(dec.is_closed());
    assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
    // Neither valid nor invalid input produces anything now.
    for input in [
        text(b"more"),
        frame(true, PING, b""),
        frame(true, BINARY, b""),
        vec![0x81, 0x00],
    ] {
        assert_eq!(feed(&mut dec, [&input[..]]), (vec![], Ok(())));
    }
    // The same, byte by byte.
    assert_eq!(
        bytewise(BIG, &input),
        (vec![Ev::Close(Some(1000), "bye".into())], Ok(()))
    );
}

// -----------------------------------------------------------------------
// Fragmentation and every split point
// -----------------------------------------------------------------------

/// A fragmented message with control frames between its fragments and a
/// char (é) cut by a fragment boundary, then more messages.
fn conversation() -> (Vec<u8>, Vec<Ev>) {
    let input = cat(&[
        frame(false, TEXT, b"h\xc3"),
        frame(true, PING, b"p1"),
        frame(false, CONTINUATION, b"\xa9l"),
        frame(true, PONG, b""),
        frame(false, CONTINUATION, b""),
        frame(true, PING, &[0xFF; 7]),
        frame(true, CONTINUATION, "lo w\u{f6}rld".as_bytes()),
        text(b""),
        text("\u{1f600}".as_bytes()),
        close_body(1000, b"bye"),
    ]);
    let events = vec![
        Ev::Ping(b"p1".to_vec()),
        Ev::Pong(vec![]),
        Ev::Ping(vec![0xFF; 7]),
        t("h\u{e9}llo w\u{f6}rld"),
        t(""),
        t("\u{1f600}"),
        Ev::Close(Some(1000), "bye".into()),
    ];
    (input, events)
}

#[test]
fn fragments_with_controls_between_give_the_same_events_at_every_split() {
    let (input, events) = conversation();
    let want = (events, Ok(()));
    assert_eq!(whole(BIG, &input), want);
    assert_eq!(bytewise(BIG, &input), want);
    let n = input.len();
    for i in 0..=n {
        assert_eq!(
            feed(&mut Decoder::new(BIG), [&input[..i], &input[i..]]),
            want,
            "split {i}"
        );
        for j in i..=n {
            let chunks = [&input[..i], &input[i..j], &input[j..]];
            assert_eq!(feed(&mut Decoder::new(BIG), chunks), want, "split {i} {j}");
        }
    }
}

#[test]
fn growing_prefixes_hold_what_is_unfinished() {
    // After each prefix the decoder has produced exactly the events whose
    // frames are complete, and holds no more than the unfinished part.
    let (input, _) = conversation();
    let (all, _) = whole(BIG, &input);
    for i in 0..=input.len() {
        let mut dec = Decoder::new(BIG);
        let (events, result) = feed(&mut dec, [&input[..i]]);
        assert_eq!(result, Ok(()));
        assert_eq!(events[..], all[..events.len()], "prefix {i}");
        assert!(dec.buffered() <= i, "prefix {i}");
        // And the rest, in one more call, finishes the job.
        let (rest, _) = feed(&mut dec, [&input[i..]]);
        assert_eq!([events, rest].concat(), all, "prefix {i}");
    }
}

// -----------------------------------------------------------------------
// UTF-8 across fragments, failing fast
// -----------------------------------------------------------------------

#[test]
fn an_invalid_byte_is_reported_before_the_message_ends() {
    let bad = Err(Violation::BadUtf8.error());
    // Inside a fragment whose frame has only partly arrived: the header
    // announces 10 bytes, 3 have come, the third can never be valid.
    let mut dec = Decoder::new(BIG);
    assert_eq!(
        feed(&mut dec, [&frame(false, TEXT, b"ok")[..]]),
        (vec![], Ok(()))
    );
    let next = frame(false, CONTINUATION, b"ab\xffdefghi");
    assert_eq!(feed(&mut dec, [&next[..6 + 2]]), (vec![], Ok(())));
    assert_eq!(feed(&mut dec, [&next[8..9]]), (vec![], bad));
    // Inside a single FIN frame, fed partway.
    let one = text(b"abc\xc0 and much more text");
    assert_eq!(
        feed(&mut Decoder::new(BIG), [&one[..6 + 3]]),
        (vec![], Ok(()))
    );
    assert_eq!(feed(&mut Decoder::new(BIG), [&one[..6 + 4]]), (vec![], bad));
    // A sequence cut by a fragment boundary and broken in the next one,
    // whose frame is not even FIN.
    let mut dec = Decoder::new(BIG);
    let input = cat(&[
        frame(false, TEXT, b"\xe2\x82"),
        frame(false, CONTINUATION, b"("),
    ]);
    assert_eq!(feed(&mut dec, [&input[..]]), (vec![], bad));
    // E0 may still become valid; E0 80 never can (overlong).
    let mut dec = Decoder::new(BIG);
    let input = text(b"\xe0\x80\x80");
    assert_eq!(feed(&mut dec, [&input[..7]]), (vec![], Ok(())));
    assert_eq!(feed(&mut dec, [&input[7..8]]), (vec![], bad));
}

#[test]
fn a_char_split_across_fragments_is_accepted() {
    let euro = "\u{20ac}".as_bytes();
    let smile = "\u{1f600}".as_bytes();
    let input = cat(&[
        frame(false, TEXT, &euro[..1]),
        frame(false, CONTINUATION, &euro[1..2]),
        frame(true, PING, b""),
        frame(false, CONTINUATION, &[&euro[2..], &smile[..1]].concat()),
        frame(false, CONTINUATION, &smile[1..2]),
        frame(false, CONTINUATION, &smile[2..3]),
        frame(true, CONTINUATION, &smile[3..]),
    ]);
    let want = (vec![Ev::Ping(vec![]), t("\u{20ac}\u{1f600}")], Ok(()));
    assert_eq!(whole(BIG, &input), want);
    assert_eq!(bytewise(BIG, &input), want);
}

// -----------------------------------------------------------------------
// Fast path against slow path, random frames
// -----------------------------------------------------------------------

/// A WebSocket client's masking key.
fn random_mask(rng: &mut Rng) -> [u8; 4] {
    (rng.next_u64() as u32).to_le_bytes()
}

/// Up to `max_chars` chars, of 1 to 4 bytes in UTF-8, edges included.
fn random_text(rng: &mut Rng, max_chars: usize) -> String {
    const CHARS: [char; 10] = [
        'a',
        'z',
        ' ',
        '\u{7f}',
        '\u{e9}',
        '\u{7ff}',
        '\u{800}',
        '\u{20ac}',
        '\u{ffff}',
        '\u{1f600}',
    ];
    let n = rng.below(max_chars + 1);
    (0..n).map(|_| CHARS[rng.below(CHARS.len())]).collect()
}

/// A random ping or pong.
fn random_control(rng: &mut Rng, out: &mut Vec<u8>, events: &mut Vec<Ev>) {
    let len = rng.below(126);
    let payload = rng.bytes(len);
    let (op, event) = if rng.below(2) == 0 {
        (PING, Ev::Ping(payload.clone()))
    } else {
        (PONG, Ev::Pong(payload.clone()))
    };
    out.extend(encode_client_frame(true, 0, op, &payload, random_mask(rng)));
    events.push(event);
}

/// A random valid stream of frames and the events it must give.
fn random_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Ev>) {
    let mut out = Vec::new();
    let mut events = Vec::new();
    for _ in 0..1 + rng.below(5) {
        match rng.below(10) {
            0..=2 => {
                let s = random_text(rng, 40);
                out.extend(encode_client_frame(
                    true,
                    0,
                    TEXT,
                    s.as_bytes(),
                    random_mask(rng),
                ));
                events.push(t(&s));
            }
            3..=5 => {
                // Fragments cut at random bytes, chars included, with
                // control frames between them.
                let s = random_text(rng, 60);
                let bytes = s.as_bytes();
                let mut cuts: Vec<usize> = (0..rng.below(5))
                    .map(|_| rng.below(bytes.len() + 1))
                    .collect();
                cuts.sort_unstable();
                cuts.push(bytes.len());
                let mut start = 0;
                for (k, &cut) in cuts.iter().enumerate() {
                    let op = if k == 0 { TEXT } else { CONTINUATION };
                    let fin = k + 1 == cuts.len();
                    out.extend(encode_client_frame(
                        fin,
                        0,
                        op,
                        &bytes[start..cut],
                        random_mask(rng),
                    ));
                    start = cut;
                    if !fin && rng.below(3) == 0 {
                        random_control(rng, &mut out, &mut events);
                    }
                }
                events.push(t(&s));
            }
            6..=7 => random_control(rng, &mut out, &mut events),
            8 => {
                // Around the length-form boundaries.
                let len = [125, 126, 127, 65535, 65536][rng.below(5)];
                let s = "q".repeat(len);
                out.extend(encode_client_frame(
                    true,
                    0,
                    TEXT,
                    s.as_bytes(),
                    random_mask(rng),
                ));
                events.push(t(&s));
            }
            _ => {
                let code: u16 = [1000, 1001, 1011, 1012, 3000, 4000, 4999][rng.below(7)];
                let reason = random_text(rng, 20);
                let mut body = code.to_be_bytes().to_vec();
                body.extend_from_slice(reason.as_bytes());
                body.truncate(125);
                let reason = String::from_utf8_lossy(&body[2..]).into_owned();
                if reason.contains('\u{fffd}') {
                    continue; // cut inside a char: not a valid close
                }
                out.extend(encode_client_frame(true, 0, CLOSE, &body, random_mask(rng)));
                events.push(Ev::Close(Some(code), reason));
                break;
            }
        }
    }
    (out, events)
}

#[test]
fn fast_path_matches_slow_path_on_random_frames() {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let (mut clean, mut broken, mut texts) = (0, 0, 0);
    let mut codes = std::collections::BTreeSet::new();
    for case in 0..400 {
        let (mut input, events) = random_stream(&mut rng);
        // A third of the streams get one byte corrupted (some of them by
        // turning the first frame binary, which a random flip rarely
        // does), and a tenth are cut short: both paths must then agree
        // on whatever happens.
        let corrupt = rng.below(3) == 0;
        if corrupt && rng.below(5) == 0 {
            input[0] = (input[0] & 0xF0) | BINARY;
        } else if corrupt {
            let at = rng.below(input.len());
            input[at] ^= 1 + rng.below(255) as u8;
        }
        let truncate = rng.below(10) == 0;
        if truncate {
            input.truncate(rng.below(input.len() + 1));
        }
        let max = if rng.below(4) == 0 { 50 } else { BIG };
        let fast = whole(max, &input);
        // Fed in random chunks, and byte by byte (big frames excepted:
        // that is slow in debug builds and adds nothing).
        let mut chunks = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let (a, b) = rest.split_at((1 + rng.below(20)).min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        assert_eq!(
            feed(&mut Decoder::new(max), chunks),
            fast,
            "case {case}, random chunks"
        );
        if input.len() < 5000 || case % 10 == 0 {
            assert_eq!(bytewise(max, &input), fast, "case {case}, byte by byte");
        }
        if !corrupt && !truncate && max == BIG {
            assert_eq!(fast, (events, Ok(())), "case {case}, clean");
            clean += 1;
        }
        texts += fast.0.iter().filter(|e| matches!(e, Ev::Text(_))).count();
        if let Err(e) = fast.1 {
            broken += 1;
            codes.insert(e.code);
        }
    }
    // The table must exercise both outcomes and every kind of error.
    assert!(
        clean > 100 && broken > 50 && texts > 300,
        "{clean} {broken} {texts}"
    );
    assert_eq!(
        codes.into_iter().collect::<Vec<_>>(),
        [1002, 1003, 1007, 1009]
    );
}

// -----------------------------------------------------------------------
// Memory
// -----------------------------------------------------------------------

#[test]
fn idle_decoders_hold_no_big_buffer() {
    let mut dec = Decoder::new(BIG);
    assert_eq!(dec.allocated(), 0);
    let big = "b".repeat(100_000);
    assert_eq!(
        feed(&mut dec, [&text(big.as_bytes())[..]]),
        (vec![t(&big)], Ok(()))
    );
    assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
    // A small message's buffer is kept for the next one.
    assert_eq!(feed(&mut dec, [&text(b"hi")[..]]), (vec![t("hi")], Ok(())));
    assert_eq!(dec.buffered(), 0);
    assert!(dec.allocated() <= IDLE_CAPACITY);
}

#[test]
fn announced_sizes_are_not_reserved() {
    // A header announcing 1 MiB, then 10 bytes: only those are held.
    let input = text(&vec![b'x'; 1 << 20]);
    let mut dec = Decoder::new(2 << 20);
    assert_eq!(feed(&mut dec, [&input[..14 + 10]]), (vec![], Ok(())));
    assert_eq!(dec.buffered(), 10);
    assert!(dec.allocated() < 64, "{}", dec.allocated());
}

#[test]
fn a_trickling_message_never_allocates_past_the_limit() {
    let max = 3000;
    let input = cat(&[
        frame(false, TEXT, &[b'a'; 1000]),
        frame(true, CONTINUATION, &[b'b'; 2000]),
    ]);
    let mut dec = Decoder::new(max);
    let mut events = Vec::new();
    for byte in input.chunks(1) {
        assert_eq!(dec.decode(byte, |e| events.push(own(e))), Ok(()));
        assert!(dec.allocated() <= max, "{}", dec.allocated());
    }
    assert_eq!(
        events,
        [t(&format!("{}{}", "a".repeat(1000), "b".repeat(2000)))]
    );
}

#[test]
fn buffered_counts_unfinished_headers_and_control_payloads() {
    let ping = frame(true, PING, b"12345");
    let mut dec = Decoder::new(BIG);
    assert_eq!(feed(&mut dec, [&ping[..3]]), (vec![], Ok(())));
    assert_eq!(dec.buffered(), 3);
    assert_eq!(feed(&mut dec, [&ping[3..9]]), (vec![], Ok(())));
    assert_eq!(dec.buffered(), 3);
    assert_eq!(
        feed(&mut dec, [&ping[9..]]),
        (vec![Ev::Ping(b"12345".to_vec())], Ok(()))
    );
    assert_eq!(dec.buffered(), 0);
}

mod binary_tests {
    use super::*;
    use crate::proto::ws::frame::encode_client_frame;
    use crate::proto::ws::frame::opcode::{BINARY, CONTINUATION, PING};

    #[test]
    fn an_accepting_decoder_delivers_binary_fragments_whole_and_skips_utf8() {
        let mut d = Decoder::new(100).accepting_binary();
        let mut input = encode_client_frame(false, 0, BINARY, b"\xff\x00", [1, 2, 3, 4]);
        input.extend(encode_client_frame(true, 0, PING, b"p", [5, 6, 7, 8]));
        input.extend(encode_client_frame(
            true,
            0,
            CONTINUATION,
            b"\xfe",
            [9, 9, 9, 9],
        ));
        let mut got = Vec::new();
        d.decode(&input, |i| {
            got.push(match i {
                Incoming::Binary(b) => format!("binary {b:?}"),
                Incoming::Ping(p) => format!("ping {p:?}"),
                other => format!("{other:?}"),
            })
        })
        .unwrap();
        assert_eq!(got, ["ping [112]", "binary [255, 0, 254]"]);
        // The limit still holds for binary messages.
        let big = encode_client_frame(true, 0, BINARY, &[0; 101], [1, 1, 1, 1]);
        assert_eq!(d.decode(&big, |_| {}).map_err(|e| e.code), Err(1009));
        // The default decoder still refuses binary with 1003.
        let mut d = Decoder::new(100);
        let frame = encode_client_frame(true, 0, BINARY, b"x", [1, 1, 1, 1]);
        assert_eq!(d.decode(&frame, |_| {}).map_err(|e| e.code), Err(1003));
    }
}
