//! The line protocol (PROTOCOL.md "One port", "Names", "Line protocol",
//! "Error codes", "Limits and fairness") against the real binary over TCP.
//!
//! Every test starts its own server. Most clients are made with [`named`]:
//! they send `/nick NAME` as their very first line, so the server sniffs them
//! as line clients at once (no 300 ms wait) and their nicks are known, which
//! keeps the expected lines exact. "Nothing else arrived" is checked with a
//! marker where possible: the sender says something afterwards and the
//! receiver's next line must be that marker, which is both exact and fast.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A line client whose first line, sent at once, is `/nick NICK`: it is
/// greeted without the sniff delay, then renamed. The greeting (welcome,
/// join, any history block) is kept without the nick confirmation.
fn named(s: &Server, nick: &str) -> LineClient {
    let mut c = LineClient::raw(s.addr);
    c.nick = nick.to_string();
    c.send(&format!("/nick {nick}"));
    let welcome = c.line();
    assert!(
        welcome.starts_with("*** welcome to natter, you are ")
            && welcome.ends_with("; /help lists commands"),
        "{welcome:?}"
    );
    c.greeting.push(welcome);
    let joined = c.line();
    assert!(joined.starts_with("*** you joined #"), "{joined:?}");
    c.greeting.push(joined);
    let confirm = format!("*** you are now known as {nick}");
    loop {
        let l = c.line();
        assert!(!l.starts_with("!!!"), "{nick}: {l:?}");
        if l == confirm {
            break;
        }
        c.greeting.push(l);
    }
    c
}

/// The generated nick a [`named`] client had before it renamed itself.
fn first_nick(c: &LineClient) -> String {
    nick_in_welcome(&c.greeting[0])
}

/// What a room mate sees when a [`named`] client arrives in `room`.
fn sees_arrival(c: &mut LineClient, room: &str, newcomer: &LineClient) {
    let gen = first_nick(newcomer);
    assert_eq!(c.event(), format!("#{room} --> {gen} joined"));
    assert_eq!(
        c.event(),
        format!("#{room} --- {gen} is now known as {}", newcomer.nick)
    );
}

/// Sends `text` and returns the next line.
fn ask(c: &mut LineClient, text: &str) -> String {
    c.send(text);
    c.line()
}

/// Sends `text` and returns the error line it must cause.
fn error_for(c: &mut LineClient, text: &str, code: &str) -> String {
    let l = ask(c, text);
    assert!(
        l.starts_with(&format!("!!! {code}: ")) && l.len() > code.len() + 6,
        "{}: sent {text:?}, wanted a {code} error, got {l:?}",
        c.nick
    );
    l
}

/// Proves that nothing is queued for `c` by asking `/who` and getting the
/// answer as the very next line.
fn nothing_pending(c: &mut LineClient) {
    let l = ask(c, "/who");
    assert!(
        l.starts_with("*** #") && l.contains("): ") || l.starts_with("!!! not_in_room: "),
        "{}: expected the /who answer next, got {l:?}",
        c.nick
    );
}

/// `from` says `text`; `to` must get exactly that as its next line.
fn marker(from: &mut LineClient, to: &mut LineClient, room: &str, text: &str) {
    from.send(text);
    assert_eq!(to.event(), format!("#{room} <{}> {text}", from.nick));
}

/// Lines until nothing arrives for `quiet`.
fn drain(c: &mut LineClient, quiet: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(l) = c.try_line(quiet) {
        out.push(l);
    }
    out
}

/// Reads lines until the server closes the connection; fails if it stays
/// open. Returns the lines that came before the close.
fn expect_closed(c: &mut LineClient) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(l) = c.try_line(WAIT) {
        lines.push(l);
    }
    // `try_line` also gives `None` on a timeout: check the socket itself.
    let mut s = c.stream();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{}: more bytes after the lines: {:?}", c.nick, &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{}: connection not closed ({e}); got {lines:?}", c.nick),
    }
    lines
}

/// The members listed in `*** you joined #room (N here: a, b)`.
fn members_of_join(line: &str, room: &str) -> BTreeSet<String> {
    let rest = line
        .strip_prefix(&format!("*** you joined #{room} ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("bad join line {line:?}"));
    let (n, names) = rest.split_once(" here: ").expect("N here:");
    let set: BTreeSet<String> = names.split(", ").map(str::to_string).collect();
    assert_eq!(n.parse::<usize>().expect("count"), set.len(), "{line:?}");
    set
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A history block as `*** history ...`, the messages without their clock,
/// `*** end of history`.
fn read_history(c: &mut LineClient) -> Vec<String> {
    let head = c.line();
    assert!(head.starts_with("*** history of #"), "{head:?}");
    let mut out = vec![head];
    loop {
        let l = c.line();
        if l == "*** end of history" {
            out.push(l);
            return out;
        }
        out.push(strip_clock(&l).unwrap_or_else(|| panic!("no timestamp on {l:?}")));
    }
}

/// A greeting's history block, clocks removed.
fn greeting_history(c: &LineClient) -> Vec<String> {
    c.greeting[2..]
        .iter()
        .map(|l| {
            if l.starts_with("***") {
                l.clone()
            } else {
                strip_clock(l).unwrap_or_else(|| panic!("no timestamp on {l:?}"))
            }
        })
        .collect()
}

fn block(room: &str, messages: &[&str]) -> Vec<String> {
    let n = messages.len();
    let mut out = vec![format!(
        "*** history of #{room} ({n} message{})",
        if n == 1 { "" } else { "s" }
    )];
    out.extend(messages.iter().map(|m| m.to_string()));
    out.push("*** end of history".to_string());
    out
}

/// Seconds since midnight UTC.
fn utc_seconds_of_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        % 86_400
}

/// A raw TCP connection with a read timeout, for non-line clients.
fn raw_tcp(s: &Server) -> TcpStream {
    let t = TcpStream::connect(s.addr).expect("connect");
    t.set_read_timeout(Some(WAIT)).expect("timeout");
    t
}

// ---------------------------------------------------------------------------
// Chatting across rooms
// ---------------------------------------------------------------------------

#[test]
fn three_clients_chat_across_rooms() {
    let s = Server::start(&[]);
    let mut alice = named(&s, "alice");
    assert_eq!(
        alice.greeting[1],
        format!("*** you joined #lobby (1 here: {})", first_nick(&alice))
    );
    let mut bob = named(&s, "bob");
    sees_arrival(&mut alice, "lobby", &bob);
    let mut carol = named(&s, "carol");
    sees_arrival(&mut alice, "lobby", &carol);
    sees_arrival(&mut bob, "lobby", &carol);

    assert_eq!(
        ask(&mut alice, "/join dev"),
        "*** you joined #dev (1 here: alice)"
    );
    assert_eq!(
        ask(&mut bob, "/join #dev"),
        "*** you joined #dev (2 here: alice, bob)"
    );
    assert_eq!(alice.event(), "#dev --> bob joined");

    // A message in #dev reaches only #dev's members, and not its sender.
    alice.send("hello dev");
    assert_eq!(bob.event(), "#dev <alice> hello dev");
    assert_eq!(ask(&mut carol, "/who"), "*** #lobby (3): alice, bob, carol");
    assert_eq!(ask(&mut alice, "/who"), "*** #dev (2): alice, bob");

    // Back to #lobby: plain text now goes there.
    assert_eq!(
        ask(&mut alice, "/join lobby"),
        "*** #lobby is your current room"
    );
    alice.send("hello lobby");
    assert_eq!(bob.event(), "#lobby <alice> hello lobby");
    assert_eq!(carol.event(), "#lobby <alice> hello lobby");
    nothing_pending(&mut alice);

    // Bob's current room is still #dev (the last he joined).
    bob.send("from bob");
    assert_eq!(alice.event(), "#dev <bob> from bob");
    marker(&mut alice, &mut carol, "lobby", "carol only sees lobby");
    assert_eq!(bob.event(), "#lobby <alice> carol only sees lobby");

    // Carol joins #dev too; everybody hears her there.
    assert_eq!(
        ask(&mut carol, "/join DEV"),
        "*** you joined #dev (3 here: alice, bob, carol)"
    );
    assert_eq!(
        read_history(&mut carol),
        block("dev", &["#dev <alice> hello dev", "#dev <bob> from bob"])
    );
    assert_eq!(alice.event(), "#dev --> carol joined");
    assert_eq!(bob.event(), "#dev --> carol joined");
    carol.send("hi dev");
    assert_eq!(alice.event(), "#dev <carol> hi dev");
    assert_eq!(bob.event(), "#dev <carol> hi dev");

    // Actions, in alice's current room (#lobby).
    alice.send("/me waves");
    assert_eq!(bob.event(), "#lobby * alice waves");
    assert_eq!(carol.event(), "#lobby * alice waves");

    // Bob, in both rooms, gets both; nobody got an echo of their own lines.
    carol.send("/join lobby");
    assert_eq!(carol.line(), "*** #lobby is your current room");
    carol.send("lobby again");
    assert_eq!(alice.event(), "#lobby <carol> lobby again");
    assert_eq!(bob.event(), "#lobby <carol> lobby again");
    for c in [&mut alice, &mut bob, &mut carol] {
        nothing_pending(c);
    }
}

#[test]
fn two_clients_chat_without_echo() {
    let s = Server::start(&[]);
    let mut a = named(&s, "ann");
    let mut b = named(&s, "ben");
    sees_arrival(&mut a, "lobby", &b);
    a.send("hi ben");
    b.send("hi ann");
    assert_eq!(b.event(), "#lobby <ann> hi ben");
    assert_eq!(a.event(), "#lobby <ben> hi ann");
    a.send("héllo ✓ unicode");
    assert_eq!(b.event(), "#lobby <ann> héllo ✓ unicode");
    // Leading and inner spaces are part of the text.
    a.send("  spaced   out");
    assert_eq!(b.event(), "#lobby <ann>   spaced   out");

    // Times are UTC.
    let before = utc_seconds_of_day();
    a.send("what time is it");
    let l = b.line();
    let after = utc_seconds_of_day();
    assert_eq!(
        strip_clock(&l).as_deref(),
        Some("#lobby <ann> what time is it")
    );
    let (h, m, sec): (u64, u64, u64) = (
        l[1..3].parse().expect("HH"),
        l[4..6].parse().expect("MM"),
        l[7..9].parse().expect("SS"),
    );
    assert!(h < 24 && m < 60 && sec < 60, "{l:?}");
    let stamp = h * 3600 + m * 60 + sec;
    let near = |x: u64, y: u64| {
        let d = x.abs_diff(y);
        d.min(86_400 - d) <= 2
    };
    assert!(
        near(stamp, before) || near(stamp, after),
        "{l:?} is not UTC (now {before}..{after} s into the UTC day)"
    );
    assert_eq!(ask(&mut a, "/who"), "*** #lobby (2): ann, ben");
    assert_eq!(ask(&mut b, "/who"), "*** #lobby (2): ann, ben");
}

// ---------------------------------------------------------------------------
// Presence
// ---------------------------------------------------------------------------

#[test]
fn presence_join_leave_and_quit() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut w = named(&s, "watcher");

    // A silent (netcat-like) client with a generated nick.
    let mut x = s.line_client();
    assert_eq!(w.event(), format!("#lobby --> {} joined", x.nick));
    assert_eq!(
        members_of_join(&x.greeting[1], "lobby"),
        set(&["watcher", &x.nick])
    );
    // Own join not echoed as an event.
    nothing_pending(&mut x);

    assert_eq!(
        ask(&mut x, "/join dev"),
        format!("*** you joined #dev (1 here: {})", x.nick)
    );
    assert_eq!(ask(&mut x, "/leave lobby"), "*** you left #lobby");
    assert_eq!(w.event(), format!("#lobby <-- {} left", x.nick));
    assert_eq!(ask(&mut x, "/part"), "*** you left #dev");
    assert_eq!(
        ask(&mut x, "/join lobby"),
        format!("*** you joined #lobby (2 here: {})", {
            let mut v = [x.nick.clone(), "watcher".to_string()];
            v.sort_by_key(|n| n.to_lowercase());
            v.join(", ")
        })
    );
    assert_eq!(w.event(), format!("#lobby --> {} joined", x.nick));

    // /quit: bye, close, room mates see (quit).
    x.send("/quit");
    assert_eq!(expect_closed(&mut x), vec!["*** bye".to_string()]);
    assert_eq!(w.event(), format!("#lobby <-- {} left (quit)", x.nick));

    // /quit with a message.
    let mut y = named(&s, "yvonne");
    sees_arrival(&mut w, "lobby", &y);
    y.send("/quit see you later");
    assert_eq!(expect_closed(&mut y), vec!["*** bye".to_string()]);
    assert_eq!(w.event(), "#lobby <-- yvonne left (quit: see you later)");

    // Lines after /quit in the same write are not acted on.
    let mut z = named(&s, "zed");
    sees_arrival(&mut w, "lobby", &z);
    z.send_bytes(b"/quit\nshould not be said\n");
    assert_eq!(expect_closed(&mut z), vec!["*** bye".to_string()]);
    assert_eq!(w.event(), "#lobby <-- zed left (quit)");
    nothing_pending(&mut w);
}

#[test]
fn presence_disconnect_on_eof_and_reset() {
    let s = Server::start(&[]);
    let mut w = named(&s, "watcher");
    let mut e = named(&s, "eofer");
    sees_arrival(&mut w, "lobby", &e);
    let mut r = named(&s, "resetter");
    sees_arrival(&mut w, "lobby", &r);
    sees_arrival(&mut e, "lobby", &r);
    assert_eq!(
        ask(&mut r, "/join dev"),
        "*** you joined #dev (1 here: resetter)"
    );
    assert_eq!(
        ask(&mut w, "/join dev"),
        "*** you joined #dev (2 here: resetter, watcher)"
    );
    assert_eq!(r.event(), "#dev --> watcher joined");

    e.close();
    assert_eq!(w.event(), "#lobby <-- eofer left (disconnected)");

    r.reset();
    let mut got = vec![w.event(), w.event()];
    got.sort();
    assert_eq!(
        got,
        vec![
            "#dev <-- resetter left (disconnected)".to_string(),
            "#lobby <-- resetter left (disconnected)".to_string()
        ]
    );
    nothing_pending(&mut w);

    // Their nicks are free again.
    assert_eq!(ask(&mut w, "/nick eofer"), "*** you are now known as eofer");
    assert_eq!(
        ask(&mut w, "/nick RESETTER"),
        "*** you are now known as RESETTER"
    );
}

// ---------------------------------------------------------------------------
// Nicks
// ---------------------------------------------------------------------------

#[test]
fn nick_changes_and_collisions() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    assert_eq!(
        ask(&mut a, "/join dev"),
        "*** you joined #dev (1 here: alice)"
    );
    assert_eq!(
        ask(&mut b, "/join dev"),
        "*** you joined #dev (2 here: alice, bob)"
    );
    assert_eq!(a.event(), "#dev --> bob joined");

    assert_eq!(
        ask(&mut a, "/nick Alicia"),
        "*** you are now known as Alicia"
    );
    let mut seen = vec![b.event(), b.event()];
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "#dev --- alice is now known as Alicia".to_string(),
            "#lobby --- alice is now known as Alicia".to_string()
        ]
    );
    // No echo of one's own nick change.
    assert_eq!(ask(&mut a, "/who"), "*** #dev (2): Alicia, bob");

    // Collisions are case-insensitive.
    error_for(&mut b, "/nick ALICIA", "nick_taken");
    error_for(&mut b, "/nick alicia", "nick_taken");
    error_for(&mut b, "/nick Alicia", "nick_taken");
    // Invalid nicks.
    for bad in [
        "/nick 9lives",
        "/nick _under",
        "/nick -dash",
        "/nick a.b",
        "/nick héllo",
        "/nick a b",
        "/nick #chan",
        &format!("/nick {}", "n".repeat(25)),
    ] {
        error_for(&mut b, bad, "nick_invalid");
    }
    // The longest valid nick.
    let long = format!("b{}", "o".repeat(23));
    assert_eq!(
        ask(&mut b, &format!("/nick {long}")),
        format!("*** you are now known as {long}")
    );
    let mut seen = vec![a.event(), a.event()];
    seen.sort();
    assert_eq!(
        seen,
        vec![
            format!("#dev --- bob is now known as {long}"),
            format!("#lobby --- bob is now known as {long}")
        ]
    );
    assert_eq!(ask(&mut b, "/nick bob"), "*** you are now known as bob");
    a.event();
    a.event();

    // Changing only the case of one's own nick is allowed and announced.
    assert_eq!(
        ask(&mut a, "/nick alicia"),
        "*** you are now known as alicia"
    );
    let mut seen = vec![b.event(), b.event()];
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "#dev --- Alicia is now known as alicia".to_string(),
            "#lobby --- Alicia is now known as alicia".to_string()
        ]
    );

    // Old nicks are gone for DMs; new ones work.
    error_for(&mut b, "/msg alice hi", "no_such_user");
    b.send("/msg ALICIA hi again");
    assert_eq!(a.event(), "(dm) <bob> hi again");
    assert_eq!(b.event(), "(dm to alicia) <bob> hi again");

    // The errors left bob's connection usable and changed nothing.
    marker(&mut b, &mut a, "dev", "still bob");
    assert_eq!(ask(&mut a, "/who lobby"), "*** #lobby (2): alicia, bob");
}

// ---------------------------------------------------------------------------
// Direct messages
// ---------------------------------------------------------------------------

#[test]
fn direct_messages() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    let mut c = named(&s, "carol");
    sees_arrival(&mut a, "lobby", &c);
    sees_arrival(&mut b, "lobby", &c);
    // DMs do not need a shared room.
    assert_eq!(
        ask(&mut a, "/join dev"),
        "*** you joined #dev (1 here: alice)"
    );
    assert_eq!(ask(&mut a, "/leave lobby"), "*** you left #lobby");
    assert_eq!(b.event(), "#lobby <-- alice left");
    assert_eq!(c.event(), "#lobby <-- alice left");

    a.send("/msg bob psst, over here");
    assert_eq!(b.event(), "(dm) <alice> psst, over here");
    assert_eq!(a.event(), "(dm to bob) <alice> psst, over here");
    // The recipient is found case-insensitively and shown as it is spelled.
    a.send("/msg BOB again");
    assert_eq!(b.event(), "(dm) <alice> again");
    assert_eq!(a.event(), "(dm to bob) <alice> again");
    b.send("/msg alice   spaced  reply");
    assert_eq!(a.event(), "(dm) <bob> spaced  reply");
    assert_eq!(b.event(), "(dm to alice) <bob> spaced  reply");

    // Carol got none of it.
    marker(&mut b, &mut c, "lobby", "carol check");
    nothing_pending(&mut c);

    error_for(&mut a, "/msg nobody hello?", "no_such_user");
    nothing_pending(&mut a);
    nothing_pending(&mut b);
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

#[test]
fn history_on_join() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    // No history in a fresh room: the greeting is welcome and join only.
    assert_eq!(a.greeting.len(), 2, "{:?}", a.greeting);
    a.send("one");
    a.send("two");
    a.send("/me three");
    nothing_pending(&mut a);

    let mut b = named(&s, "bob");
    assert_eq!(
        greeting_history(&b),
        block(
            "lobby",
            &[
                "#lobby <alice> one",
                "#lobby <alice> two",
                "#lobby * alice three"
            ]
        )
    );
    sees_arrival(&mut a, "lobby", &b);

    // "(1 message)".
    assert_eq!(
        ask(&mut a, "/join solo"),
        "*** you joined #solo (1 here: alice)"
    );
    a.send("only one");
    nothing_pending(&mut a);
    assert_eq!(
        ask(&mut b, "/join solo"),
        "*** you joined #solo (2 here: alice, bob)"
    );
    assert_eq!(
        read_history(&mut b),
        block("solo", &["#solo <alice> only one"])
    );
    assert_eq!(a.event(), "#solo --> bob joined");

    // A room that emptied keeps its history.
    assert_eq!(
        ask(&mut a, "/join gone"),
        "*** you joined #gone (1 here: alice)"
    );
    a.send("before leaving");
    assert_eq!(ask(&mut a, "/leave"), "*** you left #gone");
    assert_eq!(ask(&mut a, "/rooms"), "*** rooms: #lobby (2), #solo (2)");
    assert_eq!(
        ask(&mut b, "/join gone"),
        "*** you joined #gone (1 here: bob)"
    );
    assert_eq!(
        read_history(&mut b),
        block("gone", &["#gone <alice> before leaving"])
    );

    // /history N in the current room.
    assert_eq!(
        ask(&mut b, "/join lobby"),
        "*** #lobby is your current room"
    );
    b.send("/history 2");
    assert_eq!(
        read_history(&mut b),
        block("lobby", &["#lobby <alice> two", "#lobby * alice three"])
    );
    b.send("/history 1");
    assert_eq!(
        read_history(&mut b),
        block("lobby", &["#lobby * alice three"])
    );
    error_for(&mut b, "/history lots", "bad_request");

    // /history in a room without messages.
    assert_eq!(
        ask(&mut b, "/join empty"),
        "*** you joined #empty (1 here: bob)"
    );
    b.send("/history");
    assert_eq!(read_history(&mut b), block("empty", &[]));
    assert_eq!(
        b.greeting.len(),
        2 + 5,
        "greeting with a history block: {:?}",
        b.greeting
    );
}

#[test]
fn history_defaults_and_caps() {
    let s = Server::start(&[]);
    // 54 messages from three senders, each well within the flood burst of 20.
    let mut lines = Vec::new();
    let mut senders = Vec::new();
    for (k, nick) in ["alice", "carol", "dave"].into_iter().enumerate() {
        let mut c = named(&s, nick);
        for i in 18 * k + 1..=18 * k + 18 {
            c.send(&format!("m{i}"));
            lines.push(format!("#lobby <{nick}> m{i}"));
        }
        nothing_pending(&mut c);
        senders.push(c);
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();

    // Join replays the latest --history messages, 50 by default.
    let mut b = named(&s, "bob");
    assert_eq!(greeting_history(&b), block("lobby", &refs[4..]));
    // /history without N: the last 20.
    b.send("/history");
    assert_eq!(read_history(&mut b), block("lobby", &refs[34..]));
    // /history N above 200 is capped, here at the 54 there are.
    b.send("/history 1000");
    assert_eq!(read_history(&mut b), block("lobby", &refs));
    b.send("/history 0");
    assert_eq!(read_history(&mut b), block("lobby", &[]));
}

#[test]
fn history_option_limits_replay() {
    let s = Server::start(&["--history", "3"]);
    let mut a = named(&s, "alice");
    for i in 1..=5 {
        a.send(&format!("msg {i}"));
    }
    nothing_pending(&mut a);
    let mut b = named(&s, "bob");
    assert_eq!(
        greeting_history(&b),
        block(
            "lobby",
            &[
                "#lobby <alice> msg 3",
                "#lobby <alice> msg 4",
                "#lobby <alice> msg 5"
            ]
        )
    );
    assert_eq!(
        ask(&mut b, "/join other"),
        "*** you joined #other (1 here: bob)"
    );
    assert_eq!(
        ask(&mut b, "/join lobby"),
        "*** #lobby is your current room"
    );
    // /history is not bound by --history.
    b.send("/history 4");
    assert_eq!(
        read_history(&mut b),
        block(
            "lobby",
            &[
                "#lobby <alice> msg 2",
                "#lobby <alice> msg 3",
                "#lobby <alice> msg 4",
                "#lobby <alice> msg 5"
            ]
        )
    );
}

// ---------------------------------------------------------------------------
// Rooms: /who, /names, /rooms, /list, /create, /join, /leave
// ---------------------------------------------------------------------------

#[test]
fn who_names_rooms_and_list() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    let mut c = named(&s, "carol");
    sees_arrival(&mut a, "lobby", &c);
    sees_arrival(&mut b, "lobby", &c);
    assert_eq!(
        ask(&mut b, "/join dev"),
        "*** you joined #dev (1 here: bob)"
    );
    assert_eq!(
        ask(&mut c, "/join dev"),
        "*** you joined #dev (2 here: bob, carol)"
    );
    assert_eq!(b.event(), "#dev --> carol joined");
    assert_eq!(
        ask(&mut c, "/join QA"),
        "*** you joined #qa (1 here: carol)"
    );

    let rooms = "*** rooms: #lobby (3), #dev (2), #qa (1)";
    assert_eq!(ask(&mut a, "/rooms"), rooms);
    assert_eq!(ask(&mut a, "/list"), rooms);
    assert_eq!(ask(&mut a, "/who"), "*** #lobby (3): alice, bob, carol");
    assert_eq!(ask(&mut a, "/names"), "*** #lobby (3): alice, bob, carol");
    assert_eq!(ask(&mut a, "/who dev"), "*** #dev (2): bob, carol");
    assert_eq!(ask(&mut a, "/names #DEV"), "*** #dev (2): bob, carol");
    assert_eq!(ask(&mut a, "/who #qa"), "*** #qa (1): carol");
    assert_eq!(ask(&mut c, "/who"), "*** #qa (1): carol");
    error_for(&mut a, "/who bad.room", "room_invalid");
    error_for(&mut a, &format!("/join {}", "r".repeat(33)), "room_invalid");
    error_for(&mut a, "/join", "bad_request");

    // Leaving changes the counts; an emptied room is not listed.
    assert_eq!(ask(&mut c, "/leave qa"), "*** you left #qa");
    assert_eq!(ask(&mut a, "/list"), "*** rooms: #lobby (3), #dev (2)");
}

#[test]
fn rooms_none_and_no_current_room() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    assert_eq!(ask(&mut a, "/leave"), "*** you left #lobby");
    assert_eq!(ask(&mut a, "/rooms"), "*** rooms: none");
    error_for(&mut a, "anyone?", "not_in_room");
    error_for(&mut a, "/leave", "not_in_room");
    error_for(&mut a, "/leave lobby", "not_in_room");
    error_for(&mut a, "/me waves", "not_in_room");
    assert_eq!(
        ask(&mut a, "/join lobby"),
        "*** you joined #lobby (1 here: alice)"
    );
    assert_eq!(ask(&mut a, "/rooms"), "*** rooms: #lobby (1)");
}

#[test]
fn create_makes_unlisted_rooms_joinable_by_code() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    a.send("/create");
    let joined = a.line_where(|l| l.starts_with("*** you joined #"));
    let code = joined
        .strip_prefix("*** you joined #")
        .and_then(|r| r.strip_suffix(" (1 here: alice)"))
        .unwrap_or_else(|| panic!("{joined:?}"))
        .to_string();
    assert_eq!(code.len(), 6, "{code:?}");
    assert!(
        code.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-'),
        "{code:?}"
    );
    nothing_pending(&mut a);

    // Unlisted, for its members too.
    assert_eq!(ask(&mut b, "/rooms"), "*** rooms: #lobby (2)");
    assert_eq!(ask(&mut a, "/rooms"), "*** rooms: #lobby (2)");

    // Joinable by its code; plain text goes there.
    assert_eq!(
        ask(&mut b, &format!("/join {}", code.to_uppercase())),
        format!("*** you joined #{code} (2 here: alice, bob)")
    );
    assert_eq!(a.event(), format!("#{code} --> bob joined"));
    assert_eq!(ask(&mut b, "/rooms"), "*** rooms: #lobby (2)");
    b.send("secret hello");
    assert_eq!(a.event(), format!("#{code} <bob> secret hello"));
    assert_eq!(ask(&mut a, "/who"), format!("*** #{code} (2): alice, bob"));

    // Another /create makes another room.
    b.send("/create");
    let joined = b.line_where(|l| l.starts_with("*** you joined #"));
    assert!(joined.ends_with(" (1 here: bob)"), "{joined:?}");
    assert!(!joined.contains(&code), "{joined:?}");
    assert_eq!(ask(&mut a, "/list"), "*** rooms: #lobby (2)");
}

#[test]
fn join_current_room_and_leave_to_previous() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    assert_eq!(
        ask(&mut a, "/join dev"),
        "*** you joined #dev (1 here: alice)"
    );
    assert_eq!(ask(&mut a, "/join dev"), "*** #dev is your current room");
    assert_eq!(ask(&mut a, "/join #Dev"), "*** #dev is your current room");
    // Leaving the current room: plain text goes to the previous one.
    assert_eq!(ask(&mut a, "/leave"), "*** you left #dev");
    marker(&mut a, &mut b, "lobby", "back in lobby");

    // "the most recently joined remaining room becomes current".
    assert_eq!(
        ask(&mut b, "/join dev"),
        "*** you joined #dev (1 here: bob)"
    );
    assert_eq!(
        ask(&mut a, "/join dev"),
        "*** you joined #dev (2 here: alice, bob)"
    );
    assert_eq!(b.event(), "#dev --> alice joined");
    assert_eq!(
        ask(&mut a, "/join lobby"),
        "*** #lobby is your current room"
    );
    assert_eq!(
        ask(&mut a, "/join qa"),
        "*** you joined #qa (1 here: alice)"
    );
    assert_eq!(ask(&mut a, "/part"), "*** you left #qa");
    marker(&mut a, &mut b, "dev", "now in dev");

    // Leaving another room keeps the current one.
    assert_eq!(ask(&mut a, "/leave lobby"), "*** you left #lobby");
    assert_eq!(b.event(), "#lobby <-- alice left");
    marker(&mut a, &mut b, "dev", "still dev");
    error_for(&mut a, "/leave qa", "not_in_room");
}

#[test]
fn help_lists_commands_and_limits() {
    let s = Server::start(&[
        "--max-line",
        "300",
        "--max-message",
        "200",
        "--history",
        "7",
    ]);
    let mut a = named(&s, "alice");
    a.send("/help");
    let help = drain(&mut a, Duration::from_millis(500));
    assert!(!help.is_empty());
    for l in &help {
        assert!(l.starts_with("*** "), "{l:?}");
    }
    let text = help.join("\n");
    for cmd in [
        "/nick", "/join", "/create", "/leave", "/part", "/rooms", "/list", "/who", "/names",
        "/msg", "/me", "/history", "/stats", "/help", "/quit", "//",
    ] {
        assert!(text.contains(cmd), "/help does not mention {cmd}:\n{text}");
    }
    for limit in ["300", "200"] {
        assert!(
            text.contains(limit),
            "/help does not give the limit {limit}:\n{text}"
        );
    }
    nothing_pending(&mut a);
}

#[test]
fn stats_line() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let _b = named(&s, "bob");
    a.event();
    a.event();
    let stats = ask(&mut a, "/stats");
    assert!(stats.starts_with("*** stats: "), "{stats:?}");
    for word in ["connection", "loop", "wake", "queued"] {
        assert!(stats.contains(word), "/stats lacks {word:?}: {stats:?}");
    }
    nothing_pending(&mut a);
}

/// A netcat user whose first bytes are several lines (`printf ... | nc`):
/// they are handled in order, each as if alone, so `/stats` at the end
/// counts the messages before it and the message after `/join` goes to
/// the room joined.
#[test]
fn lines_sent_with_the_first_bytes_are_handled_in_order() {
    let s = Server::start(&[]);
    let mut c = LineClient::raw(s.addr);
    c.send_bytes(b"/nick early\nhello lobby\n/join dev\nhello dev\n/who\n/stats\n");
    let lines: Vec<String> = (0..6).map(|_| c.line()).collect();
    assert!(lines[0].starts_with("*** welcome to natter"), "{lines:?}");
    assert!(lines[1].starts_with("*** you joined #lobby"), "{lines:?}");
    assert_eq!(lines[2], "*** you are now known as early");
    assert_eq!(lines[3], "*** you joined #dev (1 here: early)");
    assert_eq!(lines[4], "*** #dev (1): early");
    assert!(lines[5].contains(", 2 messages,"), "{lines:?}");
    let mut b = named(&s, "bob");
    b.send("/join dev");
    let got: Vec<String> = (0..4).map(|_| b.line()).collect();
    assert!(
        got.iter().any(|l| l.ends_with("#dev <early> hello dev")),
        "{got:?}"
    );
}

// ---------------------------------------------------------------------------
// Input forms
// ---------------------------------------------------------------------------

#[test]
fn slash_escape_and_unknown_commands() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    a.send("//shrug with a slash");
    assert_eq!(b.event(), "#lobby <alice> /shrug with a slash");
    a.send("///double");
    assert_eq!(b.event(), "#lobby <alice> //double");
    a.send("//");
    assert_eq!(b.event(), "#lobby <alice> /");

    error_for(&mut a, "/frobnicate now", "unknown_command");
    error_for(&mut a, "/", "unknown_command");
    error_for(&mut a, "/\x1b[2J", "unknown_command");
    // Still usable, and nothing reached bob.
    marker(&mut a, &mut b, "lobby", "after the errors");
    nothing_pending(&mut a);
}

#[test]
fn crlf_and_empty_lines() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    a.send_bytes(b"over crlf\r\n");
    assert_eq!(b.event(), "#lobby <alice> over crlf");
    a.send_bytes(b"/who\r\n");
    assert_eq!(a.line(), "*** #lobby (2): alice, bob");
    a.send_bytes(b"/join dev\r\n");
    assert_eq!(a.line(), "*** you joined #dev (1 here: alice)");
    a.send_bytes(b"/join lobby\r\n");
    assert_eq!(a.line(), "*** #lobby is your current room");

    // Empty lines, with either ending, are ignored: no error, no message.
    a.send_bytes(b"\n\r\n\n\r\n");
    nothing_pending(&mut a);
    marker(&mut a, &mut b, "lobby", "after the empty lines");
    // Several lines in one write, mixed endings.
    a.send_bytes(b"first\r\n\nsecond\n\r\nthird\r\n");
    assert_eq!(b.event(), "#lobby <alice> first");
    assert_eq!(b.event(), "#lobby <alice> second");
    assert_eq!(b.event(), "#lobby <alice> third");
    nothing_pending(&mut a);
    nothing_pending(&mut b);
}

// ---------------------------------------------------------------------------
// Limits: --max-line, --max-message
// ---------------------------------------------------------------------------

#[test]
fn max_line_option() {
    let s = Server::start(&["--max-line", "100"]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    a.stream().set_nodelay(true).expect("nodelay");

    // Exactly 100 bytes: fine, with either line ending.
    let hundred = "a".repeat(100);
    a.send(&hundred);
    assert_eq!(b.event(), format!("#lobby <alice> {hundred}"));
    a.send_bytes(format!("{hundred}\r\n").as_bytes());
    assert_eq!(b.event(), format!("#lobby <alice> {hundred}"));

    // 101 bytes: too_long, nothing delivered, the connection still works.
    error_for(&mut a, &"b".repeat(101), "too_long");
    marker(&mut a, &mut b, "lobby", "still here");
    error_for(&mut a, &format!("/who {}", "x".repeat(96)), "too_long");
    nothing_pending(&mut a);

    // A long line arriving in several writes: one error, then business as usual.
    for _ in 0..4 {
        a.send_bytes("c".repeat(60).as_bytes());
        sleep(Duration::from_millis(30));
    }
    a.send_bytes(b"\n");
    assert!(a.line().starts_with("!!! too_long: "));
    nothing_pending(&mut a);
    marker(&mut a, &mut b, "lobby", "after the split line");

    // The over-long tail and a good line in the same write.
    a.send_bytes("d".repeat(80).as_bytes());
    sleep(Duration::from_millis(30));
    a.send_bytes(format!("{}\ngood line\n", "d".repeat(70)).as_bytes());
    assert!(a.line().starts_with("!!! too_long: "));
    assert_eq!(b.event(), "#lobby <alice> good line");
    nothing_pending(&mut a);

    // 101 bytes split across writes, then its newline alone.
    a.send_bytes("e".repeat(101).as_bytes());
    sleep(Duration::from_millis(30));
    a.send_bytes(b"\n");
    assert!(a.line().starts_with("!!! too_long: "));
    marker(&mut a, &mut b, "lobby", "after 101 split");

    // 100 bytes and a `\r\n` split between the `\r` and the `\n`: accepted.
    a.send_bytes(format!("{hundred}\r").as_bytes());
    sleep(Duration::from_millis(30));
    a.send_bytes(b"\n");
    assert_eq!(b.event(), format!("#lobby <alice> {hundred}"));
    nothing_pending(&mut a);
    nothing_pending(&mut b);
}

#[test]
fn default_max_line_is_4096() {
    // --max-message raised so that only the line limit applies.
    let s = Server::start(&["--max-message", "8000"]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    let max = "x".repeat(4096);
    a.send(&max);
    assert_eq!(b.event(), format!("#lobby <alice> {max}"));
    error_for(&mut a, &"y".repeat(4097), "too_long");
    marker(&mut a, &mut b, "lobby", "still fine");
    // A much longer line, well past any buffer.
    error_for(&mut a, &"z".repeat(100_000), "too_long");
    marker(&mut a, &mut b, "lobby", "still fine after 100 kB");
}

#[test]
fn default_max_message_is_4000() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    let max = "x".repeat(4000);
    a.send(&max);
    assert_eq!(b.event(), format!("#lobby <alice> {max}"));
    error_for(&mut a, &"y".repeat(4001), "too_long");
    marker(&mut a, &mut b, "lobby", "ok");
}

#[test]
fn max_message_option() {
    let s = Server::start(&["--max-message", "50"]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    let fifty = "m".repeat(50);
    a.send(&fifty);
    assert_eq!(b.event(), format!("#lobby <alice> {fifty}"));
    error_for(&mut a, &"n".repeat(51), "too_long");
    // Bytes, not characters: 25 two-byte characters fit, 26 do not.
    a.send(&"é".repeat(25));
    assert_eq!(b.event(), format!("#lobby <alice> {}", "é".repeat(25)));
    error_for(&mut a, &"é".repeat(26), "too_long");
    // The limit is on the text, for actions and DMs too.
    error_for(&mut a, &format!("/me {}", "w".repeat(51)), "too_long");
    error_for(&mut a, &format!("/msg bob {}", "d".repeat(51)), "too_long");
    a.send(&format!("/me {}", "w".repeat(50)));
    assert_eq!(b.event(), format!("#lobby * alice {}", "w".repeat(50)));
    marker(&mut a, &mut b, "lobby", "nothing else got through");
    nothing_pending(&mut a);
}

// ---------------------------------------------------------------------------
// Bad bytes: invalid UTF-8, control characters
// ---------------------------------------------------------------------------

#[test]
fn invalid_utf8_is_refused() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    for bad in [
        &b"caf\xe9\n"[..],
        b"\xff\xfe\n",
        b"half \xc3\n",
        b"\x80 lone continuation\n",
        b"overlong \xc0\xaf\n",
        b"surrogate \xed\xa0\x80\n",
        b"/nick \xff\n",
        b"/msg bob \xe2\x82\n",
    ] {
        a.send_bytes(bad);
        let l = a.line();
        assert!(l.starts_with("!!! bad_utf8: "), "{bad:?} -> {l:?}");
    }
    marker(&mut a, &mut b, "lobby", "café is fine");
    nothing_pending(&mut a);
    nothing_pending(&mut b);
}

#[test]
fn control_characters_become_replacement_characters() {
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);
    const R: char = '\u{FFFD}';

    a.send_bytes(b"\x1b[31mred\x1b[0m plain\n");
    assert_eq!(b.event(), format!("#lobby <alice> {R}[31mred{R}[0m plain"));

    // Every C0 control but tab and newline, DEL, and the C1 controls.
    let mut line = String::from("x");
    let mut want = String::from("x");
    for c in (0u32..0x20).chain([0x7f]).chain(0x80..0xa0) {
        let c = char::from_u32(c).expect("char");
        if c == '\n' {
            continue;
        }
        line.push(c);
        want.push(if c == '\t' { '\t' } else { R });
    }
    // Neighbours that are not controls stay.
    line.push_str("\u{a0}~é y");
    want.push_str("\u{a0}~é y");
    a.send(&line);
    assert_eq!(b.event(), format!("#lobby <alice> {want}"));

    // A `\r` inside a line is a control character; one before `\n` is not.
    a.send_bytes(b"carriage\rreturn\r\n");
    assert_eq!(b.event(), format!("#lobby <alice> carriage{R}return"));

    // Actions, DMs and quit messages are cleaned the same way.
    a.send_bytes(b"/me \x1b]0;title\x07 acts\n");
    assert_eq!(b.event(), format!("#lobby * alice {R}]0;title{R} acts"));
    a.send_bytes(b"/msg bob \x1b[2Jclear\tscreen\n");
    assert_eq!(b.event(), format!("(dm) <alice> {R}[2Jclear\tscreen"));
    assert_eq!(
        a.event(),
        format!("(dm to bob) <alice> {R}[2Jclear\tscreen")
    );

    // History replays the cleaned text.
    b.send("/history 1");
    assert_eq!(
        read_history(&mut b),
        block("lobby", &[&format!("#lobby * alice {R}]0;title{R} acts")])
    );

    a.send_bytes(b"/quit bye\x1b[5m now\n");
    assert_eq!(expect_closed(&mut a), vec!["*** bye".to_string()]);
    assert_eq!(
        b.event(),
        format!("#lobby <-- alice left (quit: bye{R}[5m now)")
    );
}

// ---------------------------------------------------------------------------
// Sniffing: one port
// ---------------------------------------------------------------------------

#[test]
fn silent_client_is_greeted_after_the_sniff_delay() {
    let s = Server::start(&[]);
    let t0 = Instant::now();
    let mut c = LineClient::raw(s.addr);
    // Nothing before the 300 ms of silence are up.
    assert_eq!(c.try_line(Duration::from_millis(150)), None);
    let welcome = c.line();
    let elapsed = t0.elapsed();
    assert!(
        welcome.starts_with("*** welcome to natter, you are "),
        "{welcome:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "greeted after {elapsed:?}, before the 300 ms sniff delay"
    );
    let nick = nick_in_welcome(&welcome);
    assert_eq!(c.line(), format!("*** you joined #lobby (1 here: {nick})"));
    // A fresh room: no history block.
    c.nick = nick;
    nothing_pending(&mut c);
}

#[test]
fn sniff_ms_option_is_honoured() {
    // Shorter: some greeting within 250 ms (300 ms is the default).
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut c = LineClient::raw(s.addr);
        let welcome = c.line();
        best = best.min(t0.elapsed());
        assert!(
            welcome.starts_with("*** welcome to natter, you are "),
            "{welcome:?}"
        );
        if best < Duration::from_millis(250) {
            break;
        }
    }
    assert!(
        best < Duration::from_millis(250),
        "best greeting after {best:?}"
    );

    // Longer: silence for 1 s, then the greeting.
    let s = Server::start(&["--sniff-ms", "1500"]);
    let t0 = Instant::now();
    let mut c = LineClient::raw(s.addr);
    assert_eq!(c.try_line(Duration::from_millis(1000)), None);
    let welcome = c.line();
    assert!(
        welcome.starts_with("*** welcome to natter, you are "),
        "{welcome:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn first_line_is_greeted_then_handled() {
    // A long sniff delay shows the greeting does not wait for it.
    let s = Server::start(&["--sniff-ms", "4000"]);
    let t0 = Instant::now();
    let mut bob = LineClient::raw(s.addr);
    bob.send("/nick bob");
    let welcome = bob.line();
    assert!(
        t0.elapsed() < Duration::from_millis(3000),
        "a client that spoke first waited {:?}",
        t0.elapsed()
    );
    let gen = nick_in_welcome(&welcome);
    assert_eq!(bob.line(), format!("*** you joined #lobby (1 here: {gen})"));
    assert_eq!(bob.line(), "*** you are now known as bob");
    bob.nick = "bob".into();

    // A first line of plain text is said in the default room.
    let mut c = LineClient::raw(s.addr);
    c.send("hello from the first line");
    let welcome = c.line();
    let gen = nick_in_welcome(&welcome);
    c.nick = gen.clone();
    assert_eq!(members_of_join(&c.line(), "lobby"), set(&["bob", &gen]));
    assert_eq!(bob.event(), format!("#lobby --> {gen} joined"));
    assert_eq!(
        bob.event(),
        format!("#lobby <{gen}> hello from the first line")
    );
    nothing_pending(&mut c);

    // The first line split across writes, with a CRLF.
    let mut d = LineClient::raw(s.addr);
    d.stream().set_nodelay(true).expect("nodelay");
    d.send_bytes(b"/ni");
    sleep(Duration::from_millis(50));
    d.send_bytes(b"ck dora\r\n");
    assert!(d.line().starts_with("*** welcome to natter, you are "));
    assert!(d.line().starts_with("*** you joined #lobby (3 here: "));
    assert_eq!(
        read_history(&mut d),
        block(
            "lobby",
            &[&format!("#lobby <{gen}> hello from the first line")]
        )
    );
    assert_eq!(d.line(), "*** you are now known as dora");
    bob.event();
    assert_eq!(
        bob.event().split_once(" is now known as ").map(|x| x.1),
        Some("dora")
    );

    // A first line over --max-line, or not UTF-8, is refused after the greeting.
    for (first, code) in [
        (format!("{}\n", "q".repeat(5000)).into_bytes(), "too_long"),
        (b"\xff\xfe oops\n".to_vec(), "bad_utf8"),
    ] {
        let mut x = LineClient::raw(s.addr);
        x.send_bytes(&first);
        assert!(x.line().starts_with("*** welcome to natter, you are "));
        assert!(x.line().starts_with("*** you joined #lobby ("));
        assert_eq!(read_history(&mut x).len(), 3);
        let l = x.line();
        assert!(l.starts_with(&format!("!!! {code}: ")), "{l:?}");
        x.nick = code.to_string();
        nothing_pending(&mut x);
        // Its room mates saw it arrive, and nothing else.
        bob.event();
        x.close();
        let left = bob.event();
        assert!(left.ends_with(" left (disconnected)"), "{left:?}");
    }

    // Several lines in the first write are all handled, in order.
    let mut m = LineClient::raw(s.addr);
    m.send_bytes(b"/nick multi\n/join dev\nhi dev\n");
    assert!(m.line().starts_with("*** welcome to natter, you are "));
    assert!(m.line().starts_with("*** you joined #lobby ("));
    assert_eq!(read_history(&mut m).len(), 3);
    assert_eq!(m.line(), "*** you are now known as multi");
    assert_eq!(m.line(), "*** you joined #dev (1 here: multi)");
    m.nick = "multi".into();
    nothing_pending(&mut m);
    bob.event();
    assert!(bob.event().ends_with(" is now known as multi"));
    m.close();
    assert_eq!(bob.event(), "#lobby <-- multi left (disconnected)");

    // A first line that is only an error is still answered after the greeting.
    let mut e = LineClient::raw(s.addr);
    e.send("/bogus");
    assert!(e.line().starts_with("*** welcome to natter, you are "));
    assert!(e.line().starts_with("*** you joined #lobby (4 here: "));
    assert_eq!(read_history(&mut e).len(), 3);
    assert!(e.line().starts_with("!!! unknown_command: "));
}

#[test]
fn first_line_typed_slowly_is_still_a_line_client() {
    // A user whose client sends keystrokes as typed (telnet in character
    // mode): bytes arrive within the sniff window, the first line is not an
    // HTTP request line, so this is a line client (PROTOCOL.md "One port").
    let s = Server::start(&[]);
    let mut w = named(&s, "watcher");
    let mut c = LineClient::raw(s.addr);
    c.stream().set_nodelay(true).expect("nodelay");
    c.send_bytes(b"H");
    sleep(Duration::from_millis(600));
    c.send_bytes(b"ELLO everyone\n");
    let welcome = c.line();
    assert!(
        welcome.starts_with("*** welcome to natter, you are "),
        "sent \"H\", 600 ms later \"ELLO everyone\\n\": got {welcome:?}"
    );
    let joined = c.line();
    assert!(
        joined.starts_with("*** you joined #lobby (2 here: "),
        "{joined:?}"
    );
    let arrived = w.event();
    let gen = arrived
        .strip_prefix("#lobby --> ")
        .and_then(|r| r.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("{arrived:?}"));
    assert_eq!(w.event(), format!("#lobby <{gen}> HELLO everyone"));
}

#[test]
fn an_http_request_line_makes_an_http_connection() {
    let s = Server::start(&[]);
    let mut w = named(&s, "watcher");

    // `Connection: close` makes the server close after its answer.
    let mut t = raw_tcp(&s);
    t.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    t.read_to_end(&mut got).expect("read to the close");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.ends_with("\r\n\r\nok"), "{text:?}");

    // A request line arriving in pieces is still HTTP (1.0: closed after).
    let mut t = raw_tcp(&s);
    t.set_nodelay(true).expect("nodelay");
    t.write_all(b"GET /heal").expect("write");
    sleep(Duration::from_millis(400));
    t.write_all(b"thz HTTP/1.0\r\n\r\n").expect("write");
    let mut got = Vec::new();
    t.read_to_end(&mut got).expect("read to the close");
    assert!(
        got.starts_with(b"HTTP/1.1 200 OK"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );

    // Neither joined the chat.
    assert_eq!(ask(&mut w, "/who"), "*** #lobby (1): watcher");
}

#[test]
fn tls_client_hello_is_closed_without_a_byte() {
    let s = Server::start(&[]);
    let mut w = named(&s, "watcher");
    let mut t = raw_tcp(&s);
    // The start of a TLS 1.2 ClientHello record.
    t.write_all(&[
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03,
    ])
    .expect("write");
    let mut buf = [0u8; 256];
    match t.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server answered a ClientHello with {:?}", &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection stayed open: {e}"),
    }
    assert_eq!(ask(&mut w, "/who"), "*** #lobby (1): watcher");
    nothing_pending(&mut w);
}

// ---------------------------------------------------------------------------
// Options: --default-room, --line-idle-timeout
// ---------------------------------------------------------------------------

#[test]
fn default_room_option() {
    let s = Server::start(&["--default-room", "dev", "--sniff-ms", "50"]);
    let mut a = s.line_client();
    assert_eq!(
        a.greeting[1],
        format!("*** you joined #dev (1 here: {})", a.nick)
    );
    let mut b = s.line_client();
    assert_eq!(
        members_of_join(&b.greeting[1], "dev"),
        set(&[&a.nick, &b.nick])
    );
    assert_eq!(a.event(), format!("#dev --> {} joined", b.nick));
    marker(&mut a, &mut b, "dev", "hello dev");
    assert_eq!(ask(&mut a, "/rooms"), "*** rooms: #dev (2)");
    // The room named with a leading `#` and in capitals means the same room.
    let s2 = Server::start(&["--default-room", "#QA"]);
    let q = named(&s2, "quinn");
    assert_eq!(
        q.greeting[1],
        format!("*** you joined #qa (1 here: {})", first_nick(&q))
    );

    // History is replayed from the default room too.
    let c = named(&s, "carol");
    assert_eq!(
        greeting_history(&c),
        block("dev", &[&format!("#dev <{}> hello dev", a.nick)])
    );
}

#[test]
fn line_idle_timeout_drops_silent_clients_only() {
    let s = Server::start(&["--line-idle-timeout", "1"]);
    let mut talker = named(&s, "talker");
    let mut silent = named(&s, "silent");
    let t0 = Instant::now();
    sees_arrival(&mut talker, "lobby", &silent);

    // The talker keeps talking; it must see the silent one time out.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw = None;
    let mut i = 0;
    while saw.is_none() && Instant::now() < deadline {
        i += 1;
        talker.send(&format!("tick {i}"));
        while let Some(l) = talker.try_line(Duration::from_millis(200)) {
            let ev = strip_clock(&l).unwrap_or_else(|| panic!("talker got {l:?}"));
            assert_eq!(ev, "#lobby <-- silent left (timeout)");
            saw = Some(t0.elapsed());
        }
    }
    let after = saw.expect("the silent client was not dropped within 10 s");
    assert!(
        after >= Duration::from_millis(800),
        "dropped after only {after:?}"
    );

    // The silent one was closed; all it got was the talker's lines.
    for l in expect_closed(&mut silent) {
        let ev = strip_clock(&l).unwrap_or_else(|| panic!("silent got {l:?}"));
        assert!(ev.starts_with("#lobby <talker> tick "), "{ev:?}");
    }

    // The talker, active all along for longer than the timeout, stays.
    assert!(t0.elapsed() > Duration::from_secs(1));
    assert_eq!(ask(&mut talker, "/who"), "*** #lobby (1): talker");
}

#[test]
fn flood_control_drops_beyond_the_burst() {
    // Defaults: 10 messages a second, bursts of 20.
    let s = Server::start(&[]);
    let mut a = named(&s, "alice");
    let mut b = named(&s, "bob");
    sees_arrival(&mut a, "lobby", &b);

    let burst: String = (1..=30).map(|i| format!("flood {i}\n")).collect();
    a.send_bytes(burst.as_bytes());
    // Exactly one rate_limited error for the whole burst.
    let l = a.try_line(Duration::from_secs(2));
    assert!(
        l.as_deref()
            .is_some_and(|l| l.starts_with("!!! rate_limited: ")),
        "30 messages in one write: expected a rate_limited error, got {l:?}"
    );
    // Bob gets the start of the burst: 20 (a token or two may have refilled).
    let mut got = Vec::new();
    while let Some(l) = b.try_line(Duration::from_millis(500)) {
        got.push(strip_clock(&l).unwrap_or_else(|| panic!("{l:?}")));
    }
    assert!(
        (20..=22).contains(&got.len()),
        "{} of 30 delivered: {got:?}",
        got.len()
    );
    for (i, l) in got.iter().enumerate() {
        assert_eq!(l, &format!("#lobby <alice> flood {}", i + 1));
    }
    // After a pause the sender may talk again.
    sleep(Duration::from_millis(1200));
    nothing_pending(&mut a);
    marker(&mut a, &mut b, "lobby", "calm again");
}

/// `printf '/nick eve\nno newline at the end' | nc -N`: the client half-closes
/// right after its input. Every line, the unterminated last one included, is
/// handled; the answers still reach it; then the server closes.
#[test]
fn half_close_after_input_gets_every_answer_and_the_last_line_counts() {
    let s = Server::start(&[]);
    let mut watcher = named(&s, "watcher");
    let mut eve = LineClient::raw(s.addr);
    eve.send_bytes(b"/nick eve\n/who\nno newline at the end");
    eve.stream()
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let got = eve.read_to_close();
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(got[0].starts_with("*** welcome to natter, you are "));
    assert!(got[1].starts_with("*** you joined #lobby (2 here: "));
    assert_eq!(got[2], "*** you are now known as eve");
    assert_eq!(got[3], "*** #lobby (2): eve, watcher");
    let gen = nick_in_welcome(&got[0]);
    assert_eq!(watcher.event(), format!("#lobby --> {gen} joined"));
    assert_eq!(
        watcher.event(),
        format!("#lobby --- {gen} is now known as eve")
    );
    assert_eq!(watcher.event(), "#lobby <eve> no newline at the end");
    assert_eq!(watcher.event(), "#lobby <-- eve left (disconnected)");
}
