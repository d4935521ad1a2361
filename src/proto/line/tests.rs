use super::*;

/// The origin image URLs are made absolute with.
const ORIGIN: &str = "http://127.0.0.1:7878";

use std::rc::Rc;

use crate::hub::event::{Entry, Limits};

// ---------------------------------------------------------------------------
// LineDecoder: framing
// ---------------------------------------------------------------------------

/// A [`Frame`] that outlives the decoder call, for comparing sequences.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    TooLong,
}

fn line(s: &[u8]) -> Owned {
    Owned::Line(s.to_vec())
}

/// Feeds `chunks` in order to `dec` and returns every frame it produced.
fn feed<'a>(dec: &mut LineDecoder, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Owned> {
    let mut out = Vec::new();
    for chunk in chunks {
        dec.decode(chunk, |f| {
            out.push(match f {
                Frame::Line(l) => Owned::Line(l.to_vec()),
                Frame::TooLong => Owned::TooLong,
            })
        });
    }
    out
}

/// Decodes `chunks` with a fresh decoder of limit `max`.
fn decode_chunks<'a>(
    max: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Owned>, usize) {
    let mut dec = LineDecoder::new(max);
    let frames = feed(&mut dec, chunks);
    (frames, dec.buffered())
}

/// Limit used by the framing table: small, so every split point is cheap.
const MAX: usize = 8;

/// Input covering every framing case, and the frames it must give with
/// `MAX`, plus the length of the unfinished tail.
fn framing_case() -> (Vec<u8>, Vec<Owned>, usize) {
    let rows: &[(&[u8], Option<Owned>)] = &[
        (b"hello\n", Some(line(b"hello"))),
        (b"crlf\r\n", Some(line(b"crlf"))),
        (b"\n", Some(line(b""))),
        (b"\r\n", Some(line(b""))),
        (b"\n", Some(line(b""))),
        // Exactly MAX bytes, with either line ending: the ending is not counted.
        (b"12345678\n", Some(line(b"12345678"))),
        (b"abcdefgh\r\n", Some(line(b"abcdefgh"))),
        // MAX + 1 bytes, with either line ending.
        (b"123456789\n", Some(Owned::TooLong)),
        // The line right after a too-long one is decoded normally.
        (b"after\n", Some(line(b"after"))),
        (b"abcdefghi\r\n", Some(Owned::TooLong)),
        (b"ok\r\n", Some(line(b"ok"))),
        // Far over the limit.
        (b"0123456789abcdefghijklmnop\n", Some(Owned::TooLong)),
        (b"0123456789abcdefghijklmnop\r\n", Some(Owned::TooLong)),
        // A bare `\r` inside a line is content; only one `\r` before `\n` goes.
        (b"a\rb\n", Some(line(b"a\rb"))),
        (b"x\r\r\n", Some(line(b"x\r"))),
        // MAX bytes whose last one is a `\r` of content, then `\r\n`.
        (b"1234567\r\r\n", Some(line(b"1234567\r"))),
        // MAX + 1 bytes of content ending in `\r`, then `\r\n`.
        (b"12345678\r\r\n", Some(Owned::TooLong)),
        (b"\xff\xfe\n", Some(line(b"\xff\xfe"))),
        (b"last\n", Some(line(b"last"))),
        // Unfinished: kept, not emitted.
        (b"tail", None),
    ];
    let mut input = Vec::new();
    let mut frames = Vec::new();
    for (bytes, frame) in rows {
        input.extend_from_slice(bytes);
        frames.extend(frame.clone());
    }
    (input, frames, 4)
}

#[test]
fn decoder_whole_input_gives_the_expected_frames() {
    let (input, expected, tail) = framing_case();
    let (frames, buffered) = decode_chunks(MAX, [input.as_slice()]);
    assert_eq!(frames, expected);
    assert_eq!(buffered, tail);
}

#[test]
fn decoder_every_single_split_point_gives_the_same_frames() {
    let (input, expected, tail) = framing_case();
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        let (frames, buffered) = decode_chunks(MAX, [a, b]);
        assert_eq!(frames, expected, "split at {i}");
        assert_eq!(buffered, tail, "split at {i}");
    }
}

#[test]
fn decoder_every_pair_of_split_points_gives_the_same_frames() {
    let (input, expected, tail) = framing_case();
    for i in 0..=input.len() {
        for j in i..=input.len() {
            let chunks = [&input[..i], &input[i..j], &input[j..]];
            let (frames, buffered) = decode_chunks(MAX, chunks);
            assert_eq!(frames, expected, "split at {i} and {j}");
            assert_eq!(buffered, tail, "split at {i} and {j}");
        }
    }
}

#[test]
fn decoder_one_byte_at_a_time_gives_the_same_frames() {
    let (input, expected, tail) = framing_case();
    let (frames, buffered) = decode_chunks(MAX, input.chunks(1));
    assert_eq!(frames, expected);
    assert_eq!(buffered, tail);
    // And the buffer never holds more than a line plus its `\r`.
    let mut dec = LineDecoder::new(MAX);
    for b in input.chunks(1) {
        feed(&mut dec, [b]);
        assert!(dec.buffered() <= MAX + 1, "{}", dec.buffered());
    }
}

#[test]
fn decoder_empty_input_does_nothing() {
    let mut dec = LineDecoder::new(MAX);
    assert_eq!(feed(&mut dec, [&b""[..]]), vec![]);
    assert_eq!(dec.buffered(), 0);
    assert_eq!(
        feed(&mut dec, [&b"ab"[..], b"", b"c\n"]),
        vec![line(b"abc")]
    );
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn decoder_emits_a_frame_only_at_the_newline() {
    let mut dec = LineDecoder::new(MAX);
    assert_eq!(feed(&mut dec, [&b"hello"[..]]), vec![]);
    assert_eq!(dec.buffered(), 5);
    assert_eq!(feed(&mut dec, [&b"\r"[..]]), vec![]);
    assert_eq!(dec.buffered(), 6);
    assert_eq!(feed(&mut dec, [&b"\n"[..]]), vec![line(b"hello")]);
    assert_eq!(dec.buffered(), 0);
    // A too-long line is reported once, at its newline, not when it passes the limit.
    assert_eq!(feed(&mut dec, [&b"0123456789"[..]]), vec![]);
    assert_eq!(feed(&mut dec, [&b"0123456789"[..]]), vec![]);
    assert_eq!(feed(&mut dec, [&b"\n"[..]]), vec![Owned::TooLong]);
}

#[test]
fn decoder_recovers_after_too_long() {
    let mut dec = LineDecoder::new(MAX);
    assert_eq!(
        feed(&mut dec, [&b"123456789\nok\n"[..]]),
        vec![Owned::TooLong, line(b"ok")]
    );
    // Split inside the too-long line and right after its newline.
    assert_eq!(
        feed(&mut dec, [&b"12345"[..], b"6789012", b"34\n", b"next\r\n"]),
        vec![Owned::TooLong, line(b"next")]
    );
    // Two too-long lines in a row are two errors, then normal service.
    assert_eq!(
        feed(&mut dec, [&b"aaaaaaaaaaaa\nbbbbbbbbbbbbbb\r\nc\n"[..]]),
        vec![Owned::TooLong, Owned::TooLong, line(b"c")]
    );
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn decoder_discards_a_too_long_line_without_buffering_it() {
    let max = 4096;
    let mut dec = LineDecoder::new(max);
    let chunk = vec![b'a'; 1 << 20];
    for _ in 0..8 {
        assert_eq!(feed(&mut dec, [chunk.as_slice()]), vec![]);
        assert!(dec.buffered() <= max + 1, "buffered {}", dec.buffered());
    }
    // Byte by byte too: the buffer stays bounded.
    let mut dec2 = LineDecoder::new(max);
    for _ in 0..3 * max {
        assert_eq!(feed(&mut dec2, [&b"z"[..]]), vec![]);
        assert!(dec2.buffered() <= max + 1, "buffered {}", dec2.buffered());
    }
    // Eight megabytes of one line make exactly one error, then lines work.
    assert_eq!(
        feed(&mut dec, [&b"aaa\nhi\n"[..]]),
        vec![Owned::TooLong, line(b"hi")]
    );
    assert_eq!(dec.buffered(), 0);
    assert_eq!(
        feed(&mut dec2, [&b"\r\nthere\n"[..]]),
        vec![Owned::TooLong, line(b"there")]
    );
}

#[test]
fn decoder_limit_excludes_the_line_ending() {
    let max = 4096;
    let exact = vec![b'x'; max];
    let over = vec![b'x'; max + 1];
    for ending in [&b"\n"[..], b"\r\n"] {
        let input = [exact.as_slice(), ending].concat();
        let (frames, _) = decode_chunks(max, [input.as_slice()]);
        assert_eq!(frames, vec![Owned::Line(exact.clone())], "{ending:?}");
        let (frames, _) = decode_chunks(max, input.chunks(1));
        assert_eq!(frames, vec![Owned::Line(exact.clone())], "{ending:?}");

        let input = [over.as_slice(), ending].concat();
        let (frames, _) = decode_chunks(max, [input.as_slice()]);
        assert_eq!(frames, vec![Owned::TooLong], "{ending:?}");
        let (frames, _) = decode_chunks(max, input.chunks(1));
        assert_eq!(frames, vec![Owned::TooLong], "{ending:?}");
    }
    // The `\r` of a `\r\n` may arrive alone after a full-length line.
    let mut dec = LineDecoder::new(max);
    assert_eq!(feed(&mut dec, [exact.as_slice(), b"\r"]), vec![]);
    assert_eq!(dec.buffered(), max + 1);
    assert_eq!(feed(&mut dec, [&b"\n"[..]]), vec![Owned::Line(exact)]);
}

#[test]
fn decoder_lone_cr_is_an_empty_line() {
    let (frames, _) = decode_chunks(MAX, [&b"\r\n\r\n"[..]]);
    assert_eq!(frames, vec![line(b""), line(b"")]);
    // ... and parse ignores it.
    assert_eq!(parse(b""), Ok(Input::Nothing));
}

// ---------------------------------------------------------------------------
// parse
// ---------------------------------------------------------------------------

fn room(s: &str) -> RoomName {
    RoomName::parse(s).unwrap()
}

fn say(text: &str) -> Input {
    Input::Command(Command::Say {
        reply_to: None,
        room: None,
        text: text.to_string(),
        action: false,
        cid: None,
    })
}

fn me(text: &str) -> Input {
    Input::Command(Command::Say {
        reply_to: None,
        room: None,
        text: text.to_string(),
        action: true,
        cid: None,
    })
}

fn history(limit: usize) -> Input {
    Input::Command(Command::History {
        room: None,
        page: Page {
            before: None,
            after: None,
            limit,
        },
    })
}

fn cmd(c: Command) -> Input {
    Input::Command(c)
}

fn parse_str(s: &str) -> Result<Input, HubError> {
    parse(s.as_bytes())
}

fn code_of(line: &[u8]) -> ErrorCode {
    match parse(line) {
        Err(e) => {
            assert!(!e.message.is_empty(), "{line:?}: empty message");
            e.code
        }
        Ok(input) => panic!("{:?} parsed as {input:?}", String::from_utf8_lossy(line)),
    }
}

#[test]
fn parse_plain_text_and_escape() {
    let table: &[(&str, Input)] = &[
        ("hello", say("hello")),
        ("hello world", say("hello world")),
        ("tab\there", say("tab\there")),
        ("héllo ✓", say("héllo ✓")),
        ("not /a command", say("not /a command")),
        ("#lobby is nice", say("#lobby is nice")),
        ("//text", say("/text")),
        ("//nick alice", say("/nick alice")),
        ("//", say("/")),
        ("///x", say("//x")),
        ("// spaced", say("/ spaced")),
    ];
    for (line, want) in table {
        assert_eq!(parse_str(line).as_ref(), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_empty_and_blank_lines_are_nothing() {
    for line in ["", " ", "   ", "\t", " \t \t "] {
        assert_eq!(parse_str(line), Ok(Input::Nothing), "{line:?}");
    }
}

#[test]
fn parse_every_command_and_alias() {
    let table: &[(&str, Input)] = &[
        ("/nick alice", cmd(Command::Nick("alice".into()))),
        ("/nick   Alice_2  ", cmd(Command::Nick("Alice_2".into()))),
        ("/nick\tbob", cmd(Command::Nick("bob".into()))),
        (
            "/join dev",
            cmd(Command::Join {
                room: room("dev"),
                since: None,
            }),
        ),
        (
            "/join #dev",
            cmd(Command::Join {
                room: room("dev"),
                since: None,
            }),
        ),
        (
            "/join #Dev",
            cmd(Command::Join {
                room: room("dev"),
                since: None,
            }),
        ),
        (
            "/join  Lobby ",
            cmd(Command::Join {
                room: room("lobby"),
                since: None,
            }),
        ),
        ("/create", cmd(Command::Create)),
        ("/leave", cmd(Command::Leave(None))),
        ("/leave dev", cmd(Command::Leave(Some(room("dev"))))),
        ("/leave #Dev", cmd(Command::Leave(Some(room("dev"))))),
        ("/part", cmd(Command::Leave(None))),
        ("/part #dev", cmd(Command::Leave(Some(room("dev"))))),
        ("/rooms", cmd(Command::Rooms)),
        ("/list", cmd(Command::Rooms)),
        ("/who", cmd(Command::Who(None))),
        ("/who lobby", cmd(Command::Who(Some(room("lobby"))))),
        ("/who #LOBBY", cmd(Command::Who(Some(room("lobby"))))),
        ("/names", cmd(Command::Who(None))),
        ("/names #dev", cmd(Command::Who(Some(room("dev"))))),
        (
            "/msg bob hi there",
            cmd(Command::Dm {
                to: "bob".into(),
                text: "hi there".into(),
                cid: None,
            }),
        ),
        (
            "/msg bob    psst",
            cmd(Command::Dm {
                to: "bob".into(),
                text: "psst".into(),
                cid: None,
            }),
        ),
        (
            "/msg Bob\tx  y",
            cmd(Command::Dm {
                to: "Bob".into(),
                text: "x  y".into(),
                cid: None,
            }),
        ),
        ("/me waves", me("waves")),
        ("/me waves at bob", me("waves at bob")),
        ("/history", history(DEFAULT_HISTORY_PAGE)),
        ("/history", history(20)),
        ("/history 5", history(5)),
        ("/history 1", history(1)),
        ("/history 200", history(200)),
        ("/history 201", history(200)),
        ("/history 999", history(200)),
        ("/stats", Input::Stats),
        ("/help", cmd(Command::Help)),
        ("/quit", cmd(Command::Quit(None))),
        ("/quit   ", cmd(Command::Quit(None))),
        (
            "/quit gone fishing",
            cmd(Command::Quit(Some("gone fishing".into()))),
        ),
    ];
    for (line, want) in table {
        assert_eq!(parse_str(line).as_ref(), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_command_names_are_case_insensitive() {
    let table: &[(&str, Input)] = &[
        ("/NICK Alice", cmd(Command::Nick("Alice".into()))),
        (
            "/Join #Dev",
            cmd(Command::Join {
                room: room("dev"),
                since: None,
            }),
        ),
        ("/CREATE", cmd(Command::Create)),
        ("/Leave", cmd(Command::Leave(None))),
        ("/PART", cmd(Command::Leave(None))),
        ("/ROOMS", cmd(Command::Rooms)),
        ("/LiSt", cmd(Command::Rooms)),
        ("/WHO", cmd(Command::Who(None))),
        ("/Names", cmd(Command::Who(None))),
        (
            "/MSG bob hi",
            cmd(Command::Dm {
                to: "bob".into(),
                text: "hi".into(),
                cid: None,
            }),
        ),
        ("/ME waves", me("waves")),
        ("/HISTORY 3", history(3)),
        ("/Stats", Input::Stats),
        ("/HeLp", cmd(Command::Help)),
        ("/QUIT Bye", cmd(Command::Quit(Some("Bye".into())))),
    ];
    for (line, want) in table {
        assert_eq!(parse_str(line).as_ref(), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_leaves_nick_validation_to_the_hub() {
    // The hub answers nick_invalid; parse passes the name through as typed.
    assert_eq!(
        parse_str("/nick bad name"),
        Ok(cmd(Command::Nick("bad name".into())))
    );
    assert_eq!(
        parse_str("/nick 1abc"),
        Ok(cmd(Command::Nick("1abc".into())))
    );
    assert_eq!(
        parse_str("/nick abcdefghijklmnopqrstuvwxyz"),
        Ok(cmd(Command::Nick("abcdefghijklmnopqrstuvwxyz".into())))
    );
}

#[test]
fn parse_bad_utf8() {
    for line in [
        &b"\xff"[..],
        b"hi \xc3(",
        b"\xe2\x82",
        b"/nick \xff",
        b"/join d\xe9v",
        b"//\xc0\xaf",
    ] {
        assert_eq!(code_of(line), ErrorCode::BadUtf8, "{line:?}");
    }
}

#[test]
fn parse_unknown_command() {
    for line in [
        "/frobnicate",
        "/frobnicate with args",
        "/",
        "/ nick alice",
        "/nick2 alice",
        "/msgbob hi",
        "/joindev",
        "/quitnow",
        "/é",
    ] {
        assert_eq!(
            code_of(line.as_bytes()),
            ErrorCode::UnknownCommand,
            "{line:?}"
        );
    }
}

#[test]
fn parse_unknown_command_message_carries_no_control_characters() {
    let e = parse(b"/\x1b[31mred\x07").unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownCommand);
    assert!(
        !e.message.chars().any(|c| c.is_control()),
        "{:?}",
        e.message
    );
}

#[test]
fn parse_missing_or_bad_arguments_are_bad_request() {
    for line in [
        "/nick",
        "/nick   ",
        "/join",
        "/join \t ",
        "/msg",
        "/msg bob",
        "/msg bob   ",
        "/me",
        "/me   ",
        "/history x",
        "/history -1",
        "/history 1.5",
        "/history 5 6",
    ] {
        assert_eq!(code_of(line.as_bytes()), ErrorCode::BadRequest, "{line:?}");
    }
}

#[test]
fn parse_bad_room_names_are_room_invalid() {
    let too_long = format!("/join {}", "a".repeat(33));
    for line in [
        "/join bad room!",
        "/join bad!",
        "/join #",
        "/join ##dev",
        "/join dév",
        too_long.as_str(),
        "/leave bad!",
        "/part a.b",
        "/who a b",
        "/names x/y",
    ] {
        assert_eq!(code_of(line.as_bytes()), ErrorCode::RoomInvalid, "{line:?}");
    }
    // 32 characters is still fine.
    assert_eq!(
        parse_str(&format!("/join #{}", "A".repeat(32))),
        Ok(cmd(Command::Join {
            room: room(&"a".repeat(32)),
            since: None
        }))
    );
}

#[test]
fn parse_history_clamps_any_large_count() {
    // PROTOCOL: "the last N (default 20, at most 200)": a number too big for
    // the machine is still a whole number over 200.
    assert_eq!(
        parse_str("/history 99999999999999999999999999"),
        Ok(history(MAX_HISTORY_PAGE))
    );
}

// ---------------------------------------------------------------------------
// render
// ---------------------------------------------------------------------------

/// 2025-11-22 08:26:40 UTC.
const TS: u64 = 1_763_800_000_000;
/// 2025-11-22 00:00:00 UTC.
const DAY: u64 = 1_763_769_600_000;

/// Renders `event` and checks what every rendered output must satisfy.
fn rendered(event: &Event) -> String {
    let bytes = render(event, ORIGIN);
    let s = String::from_utf8(bytes.to_vec()).expect("render gives UTF-8");
    assert!(s.ends_with('\n'), "no final newline: {s:?}");
    assert!(
        !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control character in {s:?}"
    );
    for l in s.lines() {
        assert!(
            l.starts_with("*** ") || l.starts_with("!!! ") || l.starts_with('['),
            "line without a marker: {l:?} in {s:?}"
        );
    }
    s
}

fn msg(room_name: &str, ts: u64, from: &str, text: &str, action: bool) -> Rc<Message> {
    Rc::new(Message {
        author: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        edited_ts: None,
        deleted: false,
        reactions: Vec::new(),
        room: room(room_name),
        seq: 1,
        ts,
        from: from.into(),
        text: text.into(),
        action,
        image: None,
        account: None,
    })
}

fn presence_event(kind: PresenceKind, nick: &str) -> Event {
    Event::Presence(Rc::new(Presence {
        account: None,
        room: room("lobby"),
        kind,
        nick: nick.into(),
        ts: TS,
    }))
}

fn dm(from: &str, to: &str, text: &str) -> Rc<Dm> {
    Rc::new(Dm {
        account: None,
        from: from.into(),
        to: to.into(),
        ts: TS,
        text: text.into(),
    })
}

fn reply(r: Reply) -> Event {
    Event::Reply(r, None)
}

fn stamp(ts: u64) -> String {
    let s = rendered(&Event::Message(msg("r", ts, "a", "x", false)));
    s.strip_suffix(" #r <a> x\n").unwrap().to_string()
}

#[test]
fn render_timestamps_are_utc_clock_times() {
    assert_eq!(stamp(TS), "[08:26:40]");
    assert_eq!(
        stamp(TS + 999),
        "[08:26:40]",
        "milliseconds are cut, not rounded"
    );
    assert_eq!(stamp(TS + 1000), "[08:26:41]");
    assert_eq!(stamp(DAY + 43_201_000), "[12:00:01]");
    assert_eq!(stamp(DAY + 43_209_000), "[12:00:09]");
    assert_eq!(
        stamp(DAY + 3_600_000 * 13 + 60_000 * 5 + 7_000),
        "[13:05:07]"
    );
    // Midnight wraps.
    assert_eq!(stamp(0), "[00:00:00]");
    assert_eq!(stamp(86_399_999), "[23:59:59]");
    assert_eq!(stamp(86_400_000), "[00:00:00]");
    assert_eq!(stamp(DAY - 1), "[23:59:59]");
    assert_eq!(stamp(DAY), "[00:00:00]");
    assert_eq!(stamp(DAY + 1_000), "[00:00:01]");
    assert_eq!(stamp(DAY + 86_400_000 - 1_000), "[23:59:59]");
    assert_eq!(stamp(DAY + 86_400_000), "[00:00:00]");
}

#[test]
fn render_message_and_action() {
    assert_eq!(
        rendered(&Event::Message(msg("lobby", TS, "alice", "hi", false))),
        "[08:26:40] #lobby <alice> hi\n"
    );
    assert_eq!(
        rendered(&Event::Message(msg("lobby", TS, "bob", "waves", true))),
        "[08:26:40] #lobby * bob waves\n"
    );
    assert_eq!(
        rendered(&Event::Message(msg("dev", TS, "Alice", "a\tb ✓", false))),
        "[08:26:40] #dev <Alice> a\tb ✓\n"
    );
}

#[test]
fn render_join_and_nick_change() {
    assert_eq!(
        rendered(&presence_event(PresenceKind::Join, "bob")),
        "[08:26:40] #lobby --> bob joined\n"
    );
    assert_eq!(
        rendered(&presence_event(
            PresenceKind::Nick {
                old: "alice".into()
            },
            "alicia"
        )),
        "[08:26:40] #lobby --- alice is now known as alicia\n"
    );
}

#[test]
fn render_leave_with_every_reason() {
    let table = [
        (LeaveReason::Leave, "[08:26:40] #lobby <-- bob left\n"),
        (
            LeaveReason::Quit(None),
            "[08:26:40] #lobby <-- bob left (quit)\n",
        ),
        (
            LeaveReason::Quit(Some("gone fishing".into())),
            "[08:26:40] #lobby <-- bob left (quit: gone fishing)\n",
        ),
        (
            LeaveReason::Disconnect,
            "[08:26:40] #lobby <-- bob left (disconnected)\n",
        ),
        (
            LeaveReason::Timeout,
            "[08:26:40] #lobby <-- bob left (timeout)\n",
        ),
        (
            LeaveReason::SlowConsumer,
            "[08:26:40] #lobby <-- bob left (slow consumer)\n",
        ),
        (
            LeaveReason::Shutdown,
            "[08:26:40] #lobby <-- bob left (server shutting down)\n",
        ),
    ];
    for (reason, want) in table {
        assert_eq!(
            rendered(&presence_event(PresenceKind::Leave(reason.clone()), "bob")),
            want,
            "{reason:?}"
        );
    }
}

#[test]
fn render_direct_messages() {
    assert_eq!(
        rendered(&Event::Dm(dm("alice", "bob", "psst"))),
        "[08:26:40] (dm) <alice> psst\n"
    );
    assert_eq!(
        rendered(&reply(Reply::DmSent(dm("alice", "bob", "psst"), None))),
        "[08:26:40] (dm to bob) <alice> psst\n"
    );
}

#[test]
fn render_welcome_and_nick() {
    assert_eq!(
        rendered(&reply(Reply::Welcome {
            account: None,
            nick: "quiet-heron-42".into(),
            session: None,
            store_id: "s".into(),
            limits: Limits::default(),
        })),
        "*** welcome to natter, you are quiet-heron-42; /help lists commands\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Nick {
            nick: "Alicia".into()
        })),
        "*** you are now known as Alicia\n"
    );
}

#[test]
fn render_joined_without_history() {
    assert_eq!(
        rendered(&reply(Reply::Joined {
            info: Default::default(),
            role: crate::hub::event::Role::Member,
            room: room("lobby"),
            members: crate::hub::names::nick_list(&["alice", "bob", "quiet-heron-42"]),
            messages: vec![],
            created: false,
            last_seq: 0,
            gap: false,
            store_id: "s".into(),
        })),
        "*** you joined #lobby (3 here: alice, bob, quiet-heron-42)\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Joined {
            info: Default::default(),
            role: crate::hub::event::Role::Member,
            room: room("dev"),
            members: crate::hub::names::nick_list(&["alice"]),
            messages: vec![],
            created: false,
            last_seq: 0,
            gap: false,
            store_id: "s".into(),
        })),
        "*** you joined #dev (1 here: alice)\n"
    );
}

#[test]
fn render_joined_with_history_matches_the_protocol_example() {
    let messages = vec![
        msg("lobby", DAY + 43_201_000, "alice", "hi", false),
        msg("lobby", DAY + 43_209_000, "bob", "waves", true),
    ];
    assert_eq!(
        rendered(&reply(Reply::Joined {
            info: Default::default(),
            role: crate::hub::event::Role::Member,
            room: room("lobby"),
            members: crate::hub::names::nick_list(&["alice", "bob", "quiet-heron-42"]),
            messages: messages.into_iter().map(Entry::Message).collect(),
            created: false,
            last_seq: 0,
            gap: false,
            store_id: "s".into(),
        })),
        "*** you joined #lobby (3 here: alice, bob, quiet-heron-42)\n\
         *** history of #lobby (2 messages)\n\
         [12:00:01] #lobby <alice> hi\n\
         [12:00:09] #lobby * bob waves\n\
         *** end of history\n"
    );
}

#[test]
fn render_joined_with_one_message_says_message() {
    assert_eq!(
        rendered(&reply(Reply::Joined {
            info: Default::default(),
            role: crate::hub::event::Role::Member,
            room: room("lobby"),
            members: crate::hub::names::nick_list(&["alice"]),
            messages: vec![Entry::Message(msg("lobby", TS, "bob", "hi", false))],
            created: false,
            last_seq: 0,
            gap: false,
            store_id: "s".into(),
        })),
        "*** you joined #lobby (1 here: alice)\n\
         *** history of #lobby (1 message)\n\
         [08:26:40] #lobby <bob> hi\n\
         *** end of history\n"
    );
}

#[test]
fn render_created_room() {
    let out = rendered(&reply(Reply::Joined {
        info: Default::default(),
        role: crate::hub::event::Role::Member,
        room: room("k3j9x2"),
        members: crate::hub::names::nick_list(&["alice"]),
        messages: vec![],
        created: true,
        last_seq: 0,
        gap: false,
        store_id: "s".into(),
    }));
    assert_eq!(
        out,
        "*** created #k3j9x2, an unlisted room: others join with /join k3j9x2\n\
         *** you joined #k3j9x2 (1 here: alice)\n"
    );
}

#[test]
fn render_current_and_left() {
    assert_eq!(
        rendered(&reply(Reply::Current { room: room("dev") })),
        "*** #dev is your current room\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Left { room: room("dev") })),
        "*** you left #dev\n"
    );
}

#[test]
fn render_who() {
    assert_eq!(
        rendered(&reply(Reply::Who {
            room: room("lobby"),
            members: crate::hub::names::nick_list(&["alice", "bob", "c"]),
        })),
        "*** #lobby (3): alice, bob, c\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Who {
            room: room("lobby"),
            members: crate::hub::names::nick_list(&["alice"]),
        })),
        "*** #lobby (1): alice\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Who {
            room: room("empty"),
            members: Vec::new(),
        })),
        "*** #empty (0):\n"
    );
}

#[test]
fn render_rooms() {
    assert_eq!(
        rendered(&reply(Reply::Rooms {
            rooms: vec![(room("lobby"), 3), (room("dev"), 1)],
        })),
        "*** rooms: #lobby (3), #dev (1)\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Rooms {
            rooms: vec![(room("lobby"), 12)],
        })),
        "*** rooms: #lobby (12)\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Rooms { rooms: vec![] })),
        "*** rooms: none\n"
    );
}

#[test]
fn render_history_blocks() {
    assert_eq!(
        rendered(&reply(Reply::History {
            room: room("lobby"),
            messages: vec![],
        })),
        "*** history of #lobby (0 messages)\n*** end of history\n"
    );
    assert_eq!(
        rendered(&reply(Reply::History {
            room: room("lobby"),
            messages: vec![msg("lobby", TS, "alice", "hi", false)],
        })),
        "*** history of #lobby (1 message)\n\
         [08:26:40] #lobby <alice> hi\n\
         *** end of history\n"
    );
    assert_eq!(
        rendered(&reply(Reply::History {
            room: room("dev"),
            messages: vec![
                msg("dev", TS, "alice", "one", false),
                msg("dev", TS + 1_000, "bob", "two", true),
                msg("dev", TS + 2_000, "alice", "three", false),
            ],
        })),
        "*** history of #dev (3 messages)\n\
         [08:26:40] #dev <alice> one\n\
         [08:26:41] #dev * bob two\n\
         [08:26:42] #dev <alice> three\n\
         *** end of history\n"
    );
}

#[test]
fn render_bye() {
    assert_eq!(rendered(&reply(Reply::Bye)), "*** bye\n");
}

#[test]
fn render_errors_with_every_code() {
    let table = [
        (ErrorCode::BadRequest, "bad_request"),
        (ErrorCode::BadJson, "bad_json"),
        (ErrorCode::BadUtf8, "bad_utf8"),
        (ErrorCode::UnknownType, "unknown_type"),
        (ErrorCode::UnknownCommand, "unknown_command"),
        (ErrorCode::NickInvalid, "nick_invalid"),
        (ErrorCode::NickTaken, "nick_taken"),
        (ErrorCode::RoomInvalid, "room_invalid"),
        (ErrorCode::NotInRoom, "not_in_room"),
        (ErrorCode::NoSuchUser, "no_such_user"),
        (ErrorCode::TooLong, "too_long"),
        (ErrorCode::TooLarge, "too_large"),
        (ErrorCode::BadImage, "bad_image"),
        (ErrorCode::RateLimited, "rate_limited"),
        (ErrorCode::ServerFull, "server_full"),
        (ErrorCode::SlowConsumer, "slow_consumer"),
    ];
    for (code, spelled) in table {
        assert_eq!(
            rendered(&reply(Reply::Error {
                code,
                message: "some words".into(),
            })),
            format!("!!! {spelled}: some words\n")
        );
    }
    assert_eq!(
        rendered(&reply(Reply::Error {
            code: ErrorCode::NickTaken,
            message: "bob is taken".into(),
        })),
        "!!! nick_taken: bob is taken\n"
    );
}

#[test]
fn render_parse_errors_as_the_client_sees_them() {
    for (line, prefix) in [
        (&b"\xff"[..], "!!! bad_utf8: "),
        (b"/frob", "!!! unknown_command: "),
        (b"/nick", "!!! bad_request: "),
        (b"/join bad room!", "!!! room_invalid: "),
    ] {
        let e = parse(line).unwrap_err();
        let out = rendered(&reply(Reply::Error {
            code: e.code,
            message: e.message,
        }));
        assert!(out.starts_with(prefix), "{out:?}");
        assert_eq!(out.matches('\n').count(), 1, "{out:?}");
    }
}

#[test]
fn render_help_lists_every_command_and_ends_with_limits() {
    let out = rendered(&reply(Reply::Help(Limits {
        max_line: 4096,
        max_message: 4000,
        history: 50,
        rate: 10,
        burst: 20,
        ..Limits::default()
    })));
    for name in [
        "/nick", "/join", "/create", "/leave", "/part", "/rooms", "/list", "/who", "/names",
        "/msg", "/me", "/history", "/stats", "/help", "/quit", "//",
    ] {
        assert!(out.contains(name), "help lacks {name}: {out}");
    }
    let last = out.lines().last().unwrap();
    assert_eq!(
        last,
        "*** limits: lines up to 4096 bytes, messages up to 4000 bytes; 10 messages a second (bursts of 20); 50 messages of history on join"
    );
    // The figures come from the limits, not from constants.
    let out = rendered(&reply(Reply::Help(Limits {
        max_line: 100,
        max_message: 90,
        history: 7,
        rate: 3,
        burst: 5,
        ..Limits::default()
    })));
    assert_eq!(
        out.lines().last().unwrap(),
        "*** limits: lines up to 100 bytes, messages up to 90 bytes; 3 messages a second (bursts of 5); 7 messages of history on join"
    );
    assert!(out.lines().count() > 10);
}

#[test]
fn render_stats_line() {
    let stats = Stats {
        line: 2,
        http: 1,
        ws: 3,
        pending: 1,
        loop_iterations: 4,
        poll_events: 10,
        bytes_queued: 123,
        messages: 5,
        deliveries: 9,
    };
    assert_eq!(
        render_stats(&stats),
        "*** stats: 7 connections (line 2, http 1, ws 3, undecided 1), 4 loop iterations, \
         2.50 events per wake-up, 123 bytes queued, 5 messages, 9 deliveries\n"
    );
    assert_eq!(
        render_stats(&Stats::default()),
        "*** stats: 0 connections (line 0, http 0, ws 0, undecided 0), 0 loop iterations, \
         0.00 events per wake-up, 0 bytes queued, 0 messages, 0 deliveries\n"
    );
}

#[test]
fn render_ignores_the_request_ref() {
    let r = Reply::Left { room: room("dev") };
    assert_eq!(
        render(&Event::Reply(r.clone(), Some("abc".into())), ORIGIN),
        render(&Event::Reply(r, None), ORIGIN)
    );
}

#[test]
fn finish_emits_an_unterminated_last_line_once() {
    let mut dec = LineDecoder::new(8);
    let mut got = feed(&mut dec, [&b"one\ntwo\r"[..]]);
    dec.finish(|f| {
        got.push(match f {
            Frame::Line(l) => Owned::Line(l.to_vec()),
            Frame::TooLong => Owned::TooLong,
        })
    });
    assert_eq!(got, vec![line(b"one"), line(b"two")]);
    assert_eq!(dec.buffered(), 0);
    dec.finish(|_| panic!("nothing is left to emit"));

    let mut dec = LineDecoder::new(4);
    let mut got = feed(&mut dec, [&b"far too long"[..]]);
    dec.finish(|f| {
        got.push(if f == Frame::TooLong {
            Owned::TooLong
        } else {
            line(b"?")
        })
    });
    assert_eq!(got, vec![Owned::TooLong]);
    dec.finish(|_| panic!("the too-long line was reported already"));
}

#[test]
fn image_sizes_are_told_for_people() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(1023), "1023 B");
    assert_eq!(human_size(1024), "1 KiB");
    assert_eq!(human_size(34_123), "33 KiB");
    assert_eq!(human_size(1024 * 1024), "1.0 MiB");
    assert_eq!(human_size(1_572_864), "1.5 MiB");
}

// ---------------------------------------------------------------------------
// Version 2: accounts and moderation (PROTOCOL-2 sections 1 and 2)
// ---------------------------------------------------------------------------

use crate::hub::command::ModAction;
use crate::hub::event::{AccountChange, BanInfo, ModEvent, ModKind, Role, RoomInfo};

fn moderate(action: ModAction) -> Input {
    cmd(Command::Mod { room: None, action })
}

fn kick(nick: &str, reason: Option<&str>) -> Input {
    moderate(ModAction::Kick {
        nick: nick.into(),
        reason: reason.map(Into::into),
    })
}

fn ban(nick: &str, reason: Option<&str>) -> Input {
    moderate(ModAction::Ban {
        nick: nick.into(),
        reason: reason.map(Into::into),
    })
}

fn mute(nick: &str, secs: Option<u64>) -> Input {
    moderate(ModAction::Mute {
        nick: nick.into(),
        secs,
    })
}

fn topic(text: &str) -> Input {
    moderate(ModAction::Topic { text: text.into() })
}

#[test]
fn parse_account_commands() {
    let register = |p: &str| cmd(Command::Register { password: p.into() });
    let login = |n: &str, p: &str| {
        cmd(Command::Login {
            nick: n.into(),
            password: p.into(),
        })
    };
    let password = |o: &str, n: &str| {
        cmd(Command::Password {
            old: o.into(),
            new: n.into(),
        })
    };
    let table: &[(&str, Input)] = &[
        ("/register hunter22", register("hunter22")),
        // The password is the rest of the line after one space: spaces
        // inside, before and after it are its own.
        (
            "/register correct horse battery",
            register("correct horse battery"),
        ),
        ("/register  two leading", register(" two leading")),
        ("/register trailing  ", register("trailing  ")),
        ("/register\ttabbed", register("tabbed")),
        ("/REGISTER Secret99", register("Secret99")),
        ("/login alice hunter22", login("alice", "hunter22")),
        (
            "/login alice correct horse battery",
            login("alice", "correct horse battery"),
        ),
        ("/login alice  spaced ", login("alice", " spaced ")),
        ("/login   alice pw", login("alice", "pw")),
        ("/Login Alice pw", login("Alice", "pw")),
        ("/logout", cmd(Command::Logout)),
        ("/LOGOUT", cmd(Command::Logout)),
        ("/password old1 new2", password("old1", "new2")),
        ("/password   old1\tnew2  ", password("old1", "new2")),
        ("/PassWord a b", password("a", "b")),
    ];
    for (line, want) in table {
        assert_eq!(parse_str(line).as_ref(), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_account_commands_without_their_arguments_are_bad_request() {
    for line in [
        "/register",
        "/register ",
        "/login",
        "/login ",
        "/login alice",
        "/login alice ",
        "/login   alice",
        "/password",
        "/password old",
        "/password old ",
    ] {
        assert_eq!(code_of(line.as_bytes()), ErrorCode::BadRequest, "{line:?}");
    }
}

#[test]
fn parse_password_with_spaces_points_to_the_page() {
    for line in ["/password old new extra", "/password my old one new"] {
        let e = parse_str(line).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest, "{line:?}");
        assert!(e.message.contains("page"), "{}", e.message);
        assert!(e.message.contains("JSON"), "{}", e.message);
    }
}

#[test]
fn parse_moderation_commands() {
    let table: &[(&str, Input)] = &[
        ("/kick bob", kick("bob", None)),
        ("/kick bob   ", kick("bob", None)),
        (
            "/kick bob spamming links",
            kick("bob", Some("spamming links")),
        ),
        ("/kick  bob \t rude  ", kick("bob", Some("rude"))),
        ("/KICK Bob x", kick("Bob", Some("x"))),
        ("/ban bob", ban("bob", None)),
        ("/ban bob spam, again", ban("bob", Some("spam, again"))),
        ("/Ban bob  ", ban("bob", None)),
        (
            "/unban bob",
            moderate(ModAction::Unban { nick: "bob".into() }),
        ),
        ("/mute bob", mute("bob", None)),
        ("/mute bob 300", mute("bob", Some(300))),
        ("/mute  bob\t1 ", mute("bob", Some(1))),
        (
            "/mute bob 18446744073709551615",
            mute("bob", Some(u64::MAX)),
        ),
        (
            "/unmute bob",
            moderate(ModAction::Unmute { nick: "bob".into() }),
        ),
        ("/op bob", moderate(ModAction::Op { nick: "bob".into() })),
        ("/OP bob", moderate(ModAction::Op { nick: "bob".into() })),
        (
            "/deop bob",
            moderate(ModAction::Deop { nick: "bob".into() }),
        ),
        ("/topic", topic("")),
        ("/topic   ", topic("")),
        ("/topic Rust and chat", topic("Rust and chat")),
        ("/topic  spaced out  ", topic("spaced out")),
        (
            "/invite-only on",
            moderate(ModAction::InviteOnly { on: true }),
        ),
        (
            "/invite-only OFF",
            moderate(ModAction::InviteOnly { on: false }),
        ),
        (
            "/Invite-Only On ",
            moderate(ModAction::InviteOnly { on: true }),
        ),
        (
            "/invite bob",
            moderate(ModAction::Invite { nick: "bob".into() }),
        ),
        ("/bans", moderate(ModAction::Bans)),
        ("/BANS", moderate(ModAction::Bans)),
    ];
    for (line, want) in table {
        assert_eq!(parse_str(line).as_ref(), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_moderation_leaves_nick_validation_to_the_hub() {
    assert_eq!(parse_str("/kick 1bad!"), Ok(kick("1bad!", None)));
    assert_eq!(
        parse_str("/invite x.y"),
        Ok(moderate(ModAction::Invite { nick: "x.y".into() }))
    );
}

#[test]
fn parse_moderation_without_or_with_bad_arguments_is_bad_request() {
    for line in [
        "/kick",
        "/kick   ",
        "/ban",
        "/unban",
        "/unban bob extra",
        "/mute",
        "/mute bob x",
        "/mute bob 0",
        "/mute bob -5",
        "/mute bob +5",
        "/mute bob 1.5",
        "/mute bob 5 more",
        "/mute bob 99999999999999999999999",
        "/unmute",
        "/unmute bob now",
        "/op",
        "/op bob please",
        "/deop",
        "/invite-only",
        "/invite-only yes",
        "/invite-only on off",
        "/invite",
        "/invite bob and carol",
    ] {
        assert_eq!(code_of(line.as_bytes()), ErrorCode::BadRequest, "{line:?}");
    }
    let e = parse_str("/mute bob soon").unwrap_err();
    assert!(e.message.starts_with("usage: /mute NICK [SECS]"), "{e:?}");
    let e = parse_str("/kick").unwrap_err();
    assert_eq!(e.message, "usage: /kick NICK [REASON]");
}

#[test]
fn parse_moderation_lookalikes_are_unknown_commands() {
    for line in ["/inviteonly on", "/invite_only on", "/kickban bob", "/ops"] {
        assert_eq!(
            code_of(line.as_bytes()),
            ErrorCode::UnknownCommand,
            "{line:?}"
        );
    }
}

fn mod_event(action: ModKind) -> Rc<ModEvent> {
    Rc::new(ModEvent {
        room: room("dev"),
        by: "alice".into(),
        action,
        ts: TS,
    })
}

fn nick_kind(f: fn(String) -> ModKind) -> ModKind {
    f("bob".into())
}

#[test]
fn render_every_moderation_line() {
    let table = [
        (
            ModKind::Kick {
                nick: "bob".into(),
                reason: Some("spamming links".into()),
            },
            "[08:26:40] #dev <-- bob was kicked by alice (spamming links)\n",
        ),
        (
            ModKind::Kick {
                nick: "bob".into(),
                reason: None,
            },
            "[08:26:40] #dev <-- bob was kicked by alice\n",
        ),
        (
            ModKind::Kick {
                nick: "bob".into(),
                reason: Some(String::new()),
            },
            "[08:26:40] #dev <-- bob was kicked by alice\n",
        ),
        (
            ModKind::Ban {
                nick: "bob".into(),
                reason: Some("spam".into()),
            },
            "[08:26:40] #dev <-- bob was banned by alice (spam)\n",
        ),
        (
            ModKind::Ban {
                nick: "bob".into(),
                reason: None,
            },
            "[08:26:40] #dev <-- bob was banned by alice\n",
        ),
        (
            nick_kind(|nick| ModKind::Unban { nick }),
            "[08:26:40] #dev --- alice unbanned bob\n",
        ),
        (
            ModKind::Mute {
                nick: "bob".into(),
                secs: Some(300),
                until: Some(TS + 300_000),
            },
            "[08:26:40] #dev --- alice muted bob for 300 s\n",
        ),
        (
            ModKind::Mute {
                nick: "bob".into(),
                secs: None,
                until: None,
            },
            "[08:26:40] #dev --- alice muted bob\n",
        ),
        (
            nick_kind(|nick| ModKind::Unmute { nick }),
            "[08:26:40] #dev --- alice unmuted bob\n",
        ),
        (
            nick_kind(|nick| ModKind::Op { nick }),
            "[08:26:40] #dev --- alice made bob an op\n",
        ),
        (
            nick_kind(|nick| ModKind::Deop { nick }),
            "[08:26:40] #dev --- alice removed bob as op\n",
        ),
        (
            ModKind::Topic {
                text: "Rust and chat".into(),
            },
            "[08:26:40] #dev --- alice set the topic: Rust and chat\n",
        ),
        (
            ModKind::Topic {
                text: String::new(),
            },
            "[08:26:40] #dev --- alice cleared the topic\n",
        ),
        (
            ModKind::InviteOnly { on: true },
            "[08:26:40] #dev --- alice made the room invite-only\n",
        ),
        (
            ModKind::InviteOnly { on: false },
            "[08:26:40] #dev --- alice made the room open to all\n",
        ),
        (
            nick_kind(|nick| ModKind::Invite { nick }),
            "[08:26:40] #dev --- alice invited bob\n",
        ),
    ];
    for (kind, want) in table {
        let m = mod_event(kind);
        assert_eq!(rendered(&Event::Mod(m.clone())), want, "{m:?}");
        // The op's own copy is the same line; its ref is not shown.
        assert_eq!(
            rendered(&Event::Reply(Reply::Mod(m.clone()), Some("r".into()))),
            want,
            "{m:?}"
        );
    }
}

#[test]
fn render_moderation_texts_are_sanitized() {
    let kick = mod_event(ModKind::Kick {
        nick: "bob".into(),
        reason: Some("bad\n!!! fake: line\x1b[31m".into()),
    });
    assert_eq!(
        rendered(&Event::Mod(kick)),
        "[08:26:40] #dev <-- bob was kicked by alice (bad\u{FFFD}!!! fake: line\u{FFFD}[31m)\n"
    );
    let topic = mod_event(ModKind::Topic {
        text: "a\tb\rc\u{85}".into(),
    });
    assert_eq!(
        rendered(&Event::Mod(topic)),
        "[08:26:40] #dev --- alice set the topic: a\tb\u{FFFD}c\u{FFFD}\n"
    );
}

#[test]
fn render_kicked_and_banned_leaves_are_nothing_for_line_clients() {
    for reason in [LeaveReason::Kicked, LeaveReason::Banned] {
        let out = render(&presence_event(PresenceKind::Leave(reason), "bob"), ORIGIN);
        assert!(out.is_empty(), "{out:?}");
    }
}

fn joined_with(info: RoomInfo, messages: Vec<Rc<Message>>) -> Event {
    reply(Reply::Joined {
        info: Box::new(info),
        role: Role::Op,
        room: room("dev"),
        members: crate::hub::names::nick_list(&["alice", "bob"]),
        messages: messages.into_iter().map(Entry::Message).collect(),
        created: false,
        last_seq: 1,
        gap: false,
        store_id: "s".into(),
    })
}

#[test]
fn render_joined_shows_the_topic_before_the_history() {
    let info = RoomInfo {
        topic: Some("Rust and chat".into()),
        owner: Some("alice".into()),
        ops: vec!["bob".into()],
        invite_only: true,
        accounts: vec!["alice".into()],
    };
    assert_eq!(
        rendered(&joined_with(info.clone(), vec![])),
        "*** you joined #dev (2 here: alice, bob)\n\
         *** topic of #dev: Rust and chat\n"
    );
    assert_eq!(
        rendered(&joined_with(
            info,
            vec![msg("dev", TS, "alice", "hi", false)]
        )),
        "*** you joined #dev (2 here: alice, bob)\n\
         *** topic of #dev: Rust and chat\n\
         *** history of #dev (1 message)\n\
         [08:26:40] #dev <alice> hi\n\
         *** end of history\n"
    );
    let control = RoomInfo {
        topic: Some("x\x1b]0;owned\x07".into()),
        ..RoomInfo::default()
    };
    assert_eq!(
        rendered(&joined_with(control, vec![])),
        "*** you joined #dev (2 here: alice, bob)\n\
         *** topic of #dev: x\u{FFFD}]0;owned\u{FFFD}\n"
    );
}

#[test]
fn render_joined_without_a_topic_is_as_in_version_1() {
    let v1 = "*** you joined #dev (2 here: alice, bob)\n";
    for topic in [None, Some(String::new())] {
        // Owner, ops, invite-only, role and accounts are not shown.
        let info = RoomInfo {
            topic,
            owner: Some("alice".into()),
            ops: vec!["bob".into()],
            invite_only: true,
            accounts: vec!["alice".into(), "bob".into()],
        };
        assert_eq!(rendered(&joined_with(info, vec![])), v1);
    }
}

fn account(what: AccountChange, account: Option<&str>, nick: &str) -> Event {
    Event::Reply(
        Reply::Account {
            what,
            account: account.map(Into::into),
            nick: nick.into(),
            token: Some("tok".into()),
        },
        Some("r".into()),
    )
}

#[test]
fn render_account_confirmations() {
    let table = [
        (
            account(AccountChange::Registered, Some("alice"), "alice"),
            "*** account alice registered; you are logged in as alice\n",
        ),
        (
            account(AccountChange::LoggedIn, Some("Alice"), "Alice"),
            "*** you are logged in as Alice\n",
        ),
        (
            account(AccountChange::LoggedOut, None, "quiet-heron-42"),
            "*** you are logged out; you are now quiet-heron-42\n",
        ),
        (
            account(AccountChange::PasswordChanged, Some("alice"), "alice"),
            "*** password changed\n",
        ),
    ];
    for (event, want) in table {
        assert_eq!(rendered(&event), want, "{event:?}");
    }
}

fn ban_info(nick: &str, account: bool, reason: Option<&str>) -> BanInfo {
    BanInfo {
        nick: nick.into(),
        account,
        by: "alice".into(),
        reason: reason.map(Into::into),
        ts: TS,
    }
}

#[test]
fn render_ban_lists() {
    assert_eq!(
        rendered(&reply(Reply::Bans {
            room: room("dev"),
            bans: vec![],
        })),
        "*** bans of #dev: none\n"
    );
    assert_eq!(
        rendered(&reply(Reply::Bans {
            room: room("dev"),
            bans: vec![
                ban_info("bob", true, Some("spam")),
                ban_info("carol", true, None),
                ban_info("quiet-heron-42", false, Some("flooding")),
                ban_info("brave-otter-7", false, None),
                ban_info("dave", true, Some("a\nb")),
            ],
        })),
        "*** bans of #dev:\n\
         ***   bob (by alice: spam)\n\
         ***   carol (by alice)\n\
         ***   quiet-heron-42 (guest) (by alice: flooding)\n\
         ***   brave-otter-7 (guest) (by alice)\n\
         ***   dave (by alice: a\u{FFFD}b)\n"
    );
}

#[test]
fn render_help_lists_the_version_2_commands() {
    let out = rendered(&reply(Reply::Help(Limits::default())));
    for name in [
        "/register PASSWORD",
        "/login NICK PASSWORD",
        "/logout",
        "/password OLD NEW",
        "/kick NICK [REASON]",
        "/ban NICK [REASON]",
        "/unban NICK",
        "/mute NICK [SECS]",
        "/unmute NICK",
        "/op NICK",
        "/deop NICK",
        "/topic [TEXT]",
        "/invite-only on|off",
        "/invite NICK",
        "/bans",
    ] {
        assert!(
            out.contains(&format!("***   {name} ")),
            "help lacks {name}: {out}"
        );
    }
    // Version 1's list comes first, unchanged, and the limits stay last.
    assert!(out.starts_with(
        "*** commands:\n***   TEXT              say TEXT in your current room (//TEXT says /TEXT)\n"
    ));
    assert!(out.contains("***   /quit [REASON]    say goodbye and close\n*** accounts:\n"));
    assert!(out.lines().last().unwrap().starts_with("*** limits: "));
}

// ---------------------------------------------------------------------------
// Version 2: messages that live, and search (PROTOCOL-2 sections 3 and 4)
// ---------------------------------------------------------------------------

use crate::hub::command::{Scope, Target, DEFAULT_SEARCH};
use crate::hub::event::{Amend, AmendKind, Hit, ImageRef, Reaction, Reactor, ReplyTo};

fn edit_cmd(text: &str) -> Input {
    cmd(Command::Edit {
        room: None,
        target: Target::Mine,
        text: text.into(),
    })
}

fn delete_cmd(target: Target) -> Input {
    cmd(Command::Delete { room: None, target })
}

fn reply_cmd(nick: &str, text: &str) -> Input {
    cmd(Command::Say {
        room: None,
        text: text.into(),
        action: false,
        cid: None,
        reply_to: Some(Target::LastOf(nick.into())),
    })
}

fn react_cmd(nick: &str, emoji: &str) -> Input {
    cmd(Command::React {
        room: None,
        target: Target::LastOf(nick.into()),
        emoji: emoji.into(),
    })
}

fn search_cmd(q: &str) -> Input {
    cmd(Command::Search {
        q: q.into(),
        scope: Scope::Current,
        limit: DEFAULT_SEARCH,
        before: None,
    })
}

#[test]
fn parse_live_message_and_search_commands() {
    let cases: Vec<(&str, Input)> = vec![
        ("/edit new text", edit_cmd("new text")),
        ("/edit   spaced  out  ", edit_cmd("spaced  out")),
        ("/EDIT Shouting", edit_cmd("Shouting")),
        ("/edit /not a command", edit_cmd("/not a command")),
        ("/delete", delete_cmd(Target::Mine)),
        ("/delete   ", delete_cmd(Target::Mine)),
        ("/delete bob", delete_cmd(Target::LastOf("bob".into()))),
        ("/Delete  Bob ", delete_cmd(Target::LastOf("Bob".into()))),
        ("/reply bob me too", reply_cmd("bob", "me too")),
        (
            "/reply bob\t  two  spaces ",
            reply_cmd("bob", "two  spaces"),
        ),
        ("/reply bob /me is text", reply_cmd("bob", "/me is text")),
        ("/react bob 👍", react_cmd("bob", "👍")),
        ("/react  bob   🎉 ", react_cmd("bob", "🎉")),
        ("/react bob +1", react_cmd("bob", "+1")),
        // A family emoji is one word however many code points it has.
        (
            "/react bob 👨\u{200d}👩\u{200d}👧",
            react_cmd("bob", "👨\u{200d}👩\u{200d}👧"),
        ),
        ("/search rust", search_cmd("rust")),
        (
            "/search  from:bob \"exact phrase\" crème ",
            search_cmd("from:bob \"exact phrase\" crème"),
        ),
        ("/SEARCH a", search_cmd("a")),
    ];
    for (line, want) in cases {
        assert_eq!(parse_str(line), Ok(want), "{line:?}");
    }
}

#[test]
fn parse_live_message_commands_leave_checks_to_the_hub() {
    // Nicks and emoji are the hub's to judge (no_such_message, bad_request);
    // the parser only splits the line.
    assert_eq!(
        parse_str("/react no!such\u{1b}nick x"),
        Ok(react_cmd("no!such\u{1b}nick", "x"))
    );
    assert_eq!(
        parse_str("/react bob this-is-far-longer-than-thirty-two-bytes-of-emoji"),
        Ok(react_cmd(
            "bob",
            "this-is-far-longer-than-thirty-two-bytes-of-emoji"
        ))
    );
    assert_eq!(
        parse_str("/delete 123"),
        Ok(delete_cmd(Target::LastOf("123".into())))
    );
    assert_eq!(
        parse_str("/edit a\u{7}bell"),
        Ok(edit_cmd("a\u{7}bell")),
        "sanitized by the hub, as any text"
    );
}

#[test]
fn parse_live_message_commands_without_their_arguments_are_bad_request() {
    for (line, usage) in [
        ("/edit", "usage: /edit TEXT"),
        ("/edit  \t ", "usage: /edit TEXT"),
        ("/delete bob carol", "usage: /delete [NICK]"),
        ("/reply", "usage: /reply NICK TEXT"),
        ("/reply bob", "usage: /reply NICK TEXT"),
        ("/reply bob   ", "usage: /reply NICK TEXT"),
        ("/react", "usage: /react NICK EMOJI"),
        ("/react bob", "usage: /react NICK EMOJI"),
        ("/react bob 👍 👎", "usage: /react NICK EMOJI"),
        ("/search", "usage: /search WORDS"),
        ("/search   ", "usage: /search WORDS"),
    ] {
        match parse_str(line) {
            Err(e) => {
                assert_eq!(e.code, ErrorCode::BadRequest, "{line:?}");
                assert_eq!(e.message, usage, "{line:?}");
            }
            Ok(got) => panic!("{line:?} parsed as {got:?}"),
        }
    }
    // Look-alikes are no commands.
    for line in [
        "/edits x",
        "/deletes",
        "/replyall bob x",
        "/reacts bob x",
        "/find x",
    ] {
        assert_eq!(
            code_of(line.as_bytes()),
            ErrorCode::UnknownCommand,
            "{line}"
        );
    }
}

fn live(from: &str, text: &str) -> Message {
    (*msg("lobby", TS, from, text, false)).clone()
}

fn replying(mut m: Message, to: &str, quote: Option<&str>) -> Message {
    m.reply_to = Some(ReplyTo {
        seq: 1,
        from: to.into(),
        text: quote.map(str::to_string),
    });
    m
}

fn line_of(m: Message) -> String {
    rendered(&Event::Message(Rc::new(m)))
}

#[test]
fn render_a_reply_quotes_forty_characters() {
    assert_eq!(
        line_of(replying(live("alice", "me too"), "bob", Some("lunch?"))),
        "[08:26:40] #lobby <alice> (re bob: lunch?) me too\n"
    );
    // Exactly 40 characters: whole, no ellipsis.
    let forty = "a".repeat(40);
    assert_eq!(
        line_of(replying(live("alice", "yes"), "bob", Some(&forty))),
        format!("[08:26:40] #lobby <alice> (re bob: {forty}) yes\n")
    );
    // 41: cut to 40, with an ellipsis.
    assert_eq!(
        line_of(replying(
            live("alice", "yes"),
            "bob",
            Some(&format!("{forty}b"))
        )),
        format!("[08:26:40] #lobby <alice> (re bob: {forty}…) yes\n")
    );
    // Cut by characters, never inside one: 39 ASCII then multi-byte ones.
    let quote = format!("{}é😀ü", "x".repeat(39));
    assert_eq!(
        line_of(replying(live("alice", "yes"), "bob", Some(&quote))),
        format!(
            "[08:26:40] #lobby <alice> (re bob: {}é…) yes\n",
            "x".repeat(39)
        )
    );
    let emoji = "😀".repeat(100);
    assert_eq!(
        line_of(replying(live("alice", "ha"), "bob", Some(&emoji))),
        format!(
            "[08:26:40] #lobby <alice> (re bob: {}…) ha\n",
            "😀".repeat(40)
        )
    );
    // The answered message was deleted (no text), or had none.
    assert_eq!(
        line_of(replying(live("alice", "what was it?"), "bob", None)),
        "[08:26:40] #lobby <alice> (re bob) what was it?\n"
    );
    assert_eq!(
        line_of(replying(live("alice", "nice picture"), "bob", Some(""))),
        "[08:26:40] #lobby <alice> (re bob) nice picture\n"
    );
}

#[test]
fn render_a_reply_quote_never_carries_terminal_escapes() {
    let out = line_of(replying(
        live("alice", "ok"),
        "b\u{1b}ob",
        Some("\u{1b}[2J\r\nfake line\u{9b}31m\ttab"),
    ));
    assert_eq!(
        out,
        "[08:26:40] #lobby <alice> (re b\u{FFFD}ob: \u{FFFD}[2J\u{FFFD}\u{FFFD}fake line\u{FFFD}31m\ttab) ok\n"
    );
}

#[test]
fn render_replies_that_are_actions_or_images() {
    let mut m = replying(live("alice", "waves back"), "bob", Some("hi all"));
    m.action = true;
    assert_eq!(
        line_of(m),
        "[08:26:40] #lobby * alice (re bob: hi all) waves back\n"
    );
    let mut m = replying(live("alice", "look"), "bob", Some("pics?"));
    m.image = Some(ImageRef {
        id: "ab12".into(),
        mime: "image/png",
        size: 2048,
    });
    assert_eq!(
        line_of(m),
        "[08:26:40] #lobby <alice> (re bob: pics?) [image] http://127.0.0.1:7878/media/ab12 (image/png, 2 KiB) look\n"
    );
}

#[test]
fn render_messages_as_they_are_now() {
    // Edited: (edited) right before the latest text.
    let mut m = live("alice", "new text");
    m.edited_ts = Some(TS + 5_000);
    assert_eq!(
        line_of(m.clone()),
        "[08:26:40] #lobby <alice> (edited) new text\n"
    );
    let mut r = replying(m.clone(), "bob", Some("q"));
    r.action = true;
    assert_eq!(
        line_of(r),
        "[08:26:40] #lobby * alice (re bob: q) (edited) new text\n"
    );
    // An image whose caption was edited, or emptied.
    m.image = Some(ImageRef {
        id: "ab12".into(),
        mime: "image/gif",
        size: 10,
    });
    assert_eq!(
        line_of(m.clone()),
        "[08:26:40] #lobby <alice> [image] http://127.0.0.1:7878/media/ab12 (image/gif, 10 B) (edited) new text\n"
    );
    m.text.clear();
    assert_eq!(
        line_of(m),
        "[08:26:40] #lobby <alice> [image] http://127.0.0.1:7878/media/ab12 (image/gif, 10 B) (edited)\n"
    );
    // Deleted: nothing of it but that it was there, whatever it was.
    let mut d = replying(live("alice", "gone"), "bob", Some("q"));
    d.deleted = true;
    d.action = true;
    d.edited_ts = Some(1);
    d.image = Some(ImageRef {
        id: "ab12".into(),
        mime: "image/png",
        size: 1,
    });
    assert_eq!(line_of(d), "[08:26:40] #lobby <alice> [deleted]\n");
    // Mentions and reactions show nothing on a line.
    let mut m = live("alice", "hi @bob");
    m.mentions = vec!["bob".into()];
    m.reactions = vec![Reaction {
        emoji: "👍".into(),
        by: vec![Reactor {
            author: "a:bob".into(),
            nick: "bob".into(),
        }],
    }];
    assert_eq!(line_of(m), "[08:26:40] #lobby <alice> hi @bob\n");
}

#[test]
fn render_history_shows_edits_and_deletions() {
    let mut edited = live("alice", "fixed");
    edited.edited_ts = Some(TS);
    let mut deleted = live("bob", "oops");
    deleted.deleted = true;
    assert_eq!(
        rendered(&reply(Reply::History {
            room: room("lobby"),
            messages: vec![
                Rc::new(edited),
                Rc::new(deleted),
                msg("lobby", TS, "carol", "plain", false)
            ],
        })),
        "*** history of #lobby (3 messages)\n\
         [08:26:40] #lobby <alice> (edited) fixed\n\
         [08:26:40] #lobby <bob> [deleted]\n\
         [08:26:40] #lobby <carol> plain\n\
         *** end of history\n"
    );
}

fn amend(by: &str, kind: AmendKind) -> Rc<Amend> {
    Rc::new(Amend {
        room: room("lobby"),
        seq: 42,
        target: 17,
        ts: TS + 60_000,
        by: by.into(),
        author: "a:secret".into(),
        kind,
    })
}

fn edit_of(text: &str) -> Rc<Amend> {
    amend("alice", AmendKind::Edit { text: text.into() })
}

fn delete_of(by: &str, of: &str) -> Rc<Amend> {
    amend(by, AmendKind::Delete { of: of.into() })
}

fn react_of(emoji: &str, on: bool) -> Rc<Amend> {
    amend(
        "alice",
        AmendKind::React {
            emoji: emoji.into(),
            on,
        },
    )
}

#[test]
fn render_amend_events() {
    assert_eq!(
        rendered(&Event::Amend(edit_of("new text"))),
        "[08:27:40] #lobby <alice> (edited) new text\n"
    );
    assert_eq!(
        rendered(&Event::Amend(delete_of("alice", "alice"))),
        "[08:27:40] #lobby --- a message by alice was deleted\n"
    );
    assert_eq!(
        rendered(&Event::Amend(delete_of("bob", "alice"))),
        "[08:27:40] #lobby --- a message by alice was deleted by bob\n"
    );
    // The same nick in another case is the same person.
    assert_eq!(
        rendered(&Event::Amend(delete_of("Alice", "alice"))),
        "[08:27:40] #lobby --- a message by alice was deleted\n"
    );
    // Reactions are not for line clients.
    assert_eq!(render(&Event::Amend(react_of("👍", true)), ORIGIN), "");
    assert_eq!(render(&Event::Amend(react_of("👍", false)), ORIGIN), "");
    // Texts and names are cleaned.
    assert_eq!(
        rendered(&Event::Amend(edit_of("two\nlines \u{1b}[31mred"))),
        "[08:27:40] #lobby <alice> (edited) two\u{FFFD}lines \u{FFFD}[31mred\n"
    );
    assert_eq!(
        rendered(&Event::Amend(delete_of("b\u{7}ob", "al\u{85}ice"))),
        "[08:27:40] #lobby --- a message by al\u{FFFD}ice was deleted by b\u{FFFD}ob\n"
    );
}

#[test]
fn render_ones_own_amends() {
    let own = |a| rendered(&Event::Reply(Reply::Amended(a), Some("ignored".into())));
    assert_eq!(
        own(edit_of("new text")),
        "[08:27:40] #lobby <alice> (edited) new text\n"
    );
    assert_eq!(
        own(delete_of("bob", "alice")),
        "[08:27:40] #lobby --- a message by alice was deleted by bob\n"
    );
    assert_eq!(
        own(react_of("👍", true)),
        "*** reaction 👍 added in #lobby\n"
    );
    assert_eq!(
        own(react_of("🎉", false)),
        "*** reaction 🎉 removed in #lobby\n"
    );
    assert_eq!(
        own(react_of("x\u{1b}y", true)),
        "*** reaction x\u{FFFD}y added in #lobby\n"
    );
}

#[test]
fn render_joined_skips_the_changes_of_a_catch_up() {
    let mut edited = live("alice", "fixed");
    edited.room = room("dev");
    edited.edited_ts = Some(TS);
    let event = reply(Reply::Joined {
        info: Box::default(),
        role: Role::Member,
        room: room("dev"),
        members: crate::hub::names::nick_list(&["alice", "bob"]),
        messages: vec![
            Entry::Amend(edit_of("fixed")),
            Entry::Message(Rc::new(edited)),
            Entry::Amend(delete_of("bob", "carol")),
            Entry::Amend(react_of("👍", true)),
        ],
        created: false,
        last_seq: 44,
        gap: false,
        store_id: "s".into(),
    });
    assert_eq!(
        rendered(&event),
        "*** you joined #dev (2 here: alice, bob)\n\
         *** history of #dev (1 message)\n\
         [08:26:40] #dev <alice> (edited) fixed\n\
         *** end of history\n"
    );
    // Only changes: no history block at all.
    let event = reply(Reply::Joined {
        info: Box::default(),
        role: Role::Member,
        room: room("dev"),
        members: crate::hub::names::nick_list(&["alice"]),
        messages: vec![Entry::Amend(react_of("👍", true))],
        created: false,
        last_seq: 44,
        gap: false,
        store_id: "s".into(),
    });
    assert_eq!(rendered(&event), "*** you joined #dev (1 here: alice)\n");
}

fn hit(m: Message) -> Hit {
    Hit {
        snippet: m.text.clone(),
        marks: vec![(0, 1)],
        message: Rc::new(m),
    }
}

#[test]
fn render_search_answers() {
    let search = |q: &str, room: Option<RoomName>, results| {
        rendered(&reply(Reply::Search {
            q: q.into(),
            room,
            results,
        }))
    };
    assert_eq!(
        search("rust", Some(room("lobby")), vec![]),
        "*** search #lobby \"rust\" (0 results)\n*** end of search\n"
    );
    assert_eq!(
        search(
            "rust",
            Some(room("lobby")),
            vec![hit(live("alice", "rust!"))]
        ),
        "*** search #lobby \"rust\" (1 result)\n\
         [08:26:40] #lobby <alice> rust!\n\
         *** end of search\n"
    );
    let mut edited = live("bob", "Rust, edited");
    edited.edited_ts = Some(TS);
    let mut other = live("carol", "rusty");
    other.room = room("dev");
    assert_eq!(
        search("from:bob \"a b\"", None, vec![hit(edited), hit(other)]),
        "*** search \"from:bob \"a b\"\" (2 results)\n\
         [08:26:40] #lobby <bob> (edited) Rust, edited\n\
         [08:26:40] #dev <carol> rusty\n\
         *** end of search\n"
    );
    // The query is the client's: cleaned.
    assert_eq!(
        search("\u{1b}]0;pwned\u{7}\nx", Some(room("lobby")), vec![]),
        "*** search #lobby \"\u{FFFD}]0;pwned\u{FFFD}\u{FFFD}x\" (0 results)\n*** end of search\n"
    );
}

#[test]
fn render_help_lists_the_message_commands() {
    let out = rendered(&reply(Reply::Help(Limits::default())));
    for name in [
        "/reply NICK TEXT",
        "/edit TEXT",
        "/delete [NICK]",
        "/react NICK EMOJI",
        "/search WORDS",
    ] {
        assert!(
            out.contains(&format!("***   {name} ")),
            "help lacks {name}: {out}"
        );
    }
    // Aligned with the sections before.
    assert!(
        out.contains("\n***   /reply NICK TEXT       answer"),
        "{out}"
    );
    assert!(out.lines().last().unwrap().starts_with("*** limits: "));
}
