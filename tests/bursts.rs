//! Busy rooms: many senders bursting at the same moment must not cost any
//! reader that keeps reading its place; a reader that stops reading is still
//! dropped; `--max-outbound-total` drops the biggest backlog first. And the
//! sniff: a request that arrives while the loop is busy is still HTTP; an
//! HTTP request line is never said into a room.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Flood control's burst at the defaults: 20 messages.
const BURST: usize = 20;
/// Texts of 3,900 bytes (under the default 4,000 and the 4,096-byte line).
const TEXT: usize = 3900;
/// How long a reader waits for the next message before giving up.
const READ_WAIT: Duration = Duration::from_secs(30);

fn text(sender: usize, n: usize) -> String {
    let head = format!("s{sender:02} m{n:02} ");
    format!("{head}{}", "x".repeat(TEXT - head.len()))
}

/// Parses `s07 m13 xxx...` out of a message's text.
fn ids(text: &str) -> Option<(usize, usize)> {
    let mut it = text.split(' ');
    let s = it.next()?.strip_prefix('s')?.parse().ok()?;
    let m = it.next()?.strip_prefix('m')?.parse().ok()?;
    Some((s, m))
}

/// What one reader saw: every message (sender, n) in the order it came,
/// and whether it was told it is a slow consumer.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<(usize, usize)>,
    dropped: Option<String>,
    leaves: Vec<String>,
}

impl Seen {
    fn staller_left(&self) -> bool {
        self.leaves.iter().any(|l| l.contains("staller"))
    }

    /// Every sender's every message (but `own`'s: a line client is not
    /// echoed its own), once, in order per sender.
    fn check(&self, who: &str, senders: usize, own: Option<usize>) {
        self.check_n(who, senders, own, BURST);
    }

    fn check_n(&self, who: &str, senders: usize, own: Option<usize>, per: usize) {
        assert!(
            self.dropped.is_none(),
            "{who} was dropped: {:?}",
            self.dropped
        );
        let mut next: BTreeMap<usize, usize> = BTreeMap::new();
        for &(s, m) in &self.messages {
            assert_ne!(Some(s), own, "{who}: its own message echoed");
            let want = next.entry(s).or_default();
            assert_eq!(m, *want, "{who}: sender {s} out of order");
            *want += 1;
        }
        let heard = senders - usize::from(own.is_some());
        assert_eq!(next.len(), heard, "{who}: senders heard");
        assert!(next.values().all(|&n| n == per), "{who}: {next:?}");
    }
}

/// A line client in `room` that reads everything until it has `expect`
/// messages, is dropped, or the stream ends.
fn line_reader(
    addr: SocketAddr,
    nick: &str,
    room: &str,
    expect: usize,
) -> thread::JoinHandle<Seen> {
    let c = joined(addr, nick, room);
    let room = room.to_string();
    thread::spawn(move || read_lines(c, &room, expect))
}

/// A line client named `nick`, in `room` (its current room).
fn joined(addr: SocketAddr, nick: &str, room: &str) -> LineClient {
    let mut c = LineClient::connect(addr);
    c.send(&format!("/nick {nick}"));
    c.line_where(|l| l.contains("now known as"));
    c.nick = nick.to_string();
    c.send(&format!("/join {room}"));
    c.line_where(|l| l.starts_with(&format!("*** you joined #{room} (")));
    c
}

fn read_lines(c: LineClient, room: &str, expect: usize) -> Seen {
    read_lines_until(c, room, expect, false)
}

/// As `read_lines`; with `leave`, goes on after the messages until the
/// staller's leave from `room` has come too.
fn read_lines_until(mut c: LineClient, room: &str, expect: usize, leave: bool) -> Seen {
    let mut seen = Seen::default();
    let prefix = format!("#{room} <");
    while seen.messages.len() < expect || (leave && !seen.staller_left()) {
        let Some(line) = c.try_line(READ_WAIT) else {
            break;
        };
        let l = strip_clock(&line).unwrap_or(line);
        if l.starts_with("!!! slow_consumer") {
            seen.dropped = Some(l);
            break;
        }
        if l.starts_with(&format!("#{room} ")) && l.contains("left (") {
            seen.leaves.push(l.clone());
        }
        if let Some(rest) = l.strip_prefix(&prefix) {
            if let Some((_, text)) = rest.split_once("> ") {
                if let Some(id) = ids(text) {
                    seen.messages.push(id);
                }
            }
        }
    }
    seen
}

/// A WebSocket client (tungstenite) in `room` that reads like `line_reader`.
fn ws_reader(addr: SocketAddr, nick: &str, room: &str, expect: usize) -> thread::JoinHandle<Seen> {
    ws_reader_until(addr, nick, room, expect, false)
}

fn ws_reader_until(
    addr: SocketAddr,
    nick: &str,
    room: &str,
    expect: usize,
    leave: bool,
) -> thread::JoinHandle<Seen> {
    let mut c = WsClient::connect(addr, &format!("nick={nick}"));
    c.send(json!({"type":"join","room":room}));
    c.recv_type("joined");
    let room = room.to_string();
    thread::spawn(move || {
        let _ = c.ws.get_ref().set_read_timeout(Some(READ_WAIT));
        let mut seen = Seen::default();
        while seen.messages.len() < expect || (leave && !seen.staller_left()) {
            match c.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
                    if v["type"] == "message" {
                        if let Some(id) = v["text"].as_str().and_then(ids) {
                            seen.messages.push(id);
                        }
                    } else if v["event"] == "leave" && v["room"] == room {
                        seen.leaves.push(v.to_string());
                    }
                }
                Ok(tungstenite::Message::Close(f)) => {
                    seen.dropped = Some(format!("close {f:?}"));
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    seen.dropped = Some(format!("error {e}"));
                    break;
                }
            }
        }
        seen
    })
}

/// `senders` line clients join `room`, then all at once each writes its
/// whole burst in one `write`, and reads the room like everyone else.
fn burst(addr: SocketAddr, room: &str, senders: usize) -> Vec<thread::JoinHandle<Seen>> {
    burst_of(addr, room, senders, BURST)
}

fn burst_of(
    addr: SocketAddr,
    room: &str,
    senders: usize,
    per: usize,
) -> Vec<thread::JoinHandle<Seen>> {
    let expect = senders * per;
    let gate = Arc::new(Barrier::new(senders));
    let mut handles = Vec::new();
    for i in 0..senders {
        let c = joined(addr, &format!("sender{i:02}"), room);
        let mut all = String::new();
        for n in 0..per {
            all.push_str(&text(i, n));
            all.push('\n');
        }
        let gate = gate.clone();
        let room = room.to_string();
        let mut w = c.stream().try_clone().expect("clone");
        // Its reader runs from now on, like any member's; the write waits
        // for every sender to be ready, then goes in one `write`.
        let reader = thread::spawn(move || read_lines(c, &room, expect - per));
        handles.push(thread::spawn(move || {
            gate.wait();
            w.write_all(all.as_bytes()).expect("burst");
            reader.join().expect("sender's reader")
        }));
    }
    handles
}

fn readers_keep_up_through_a_burst(extra: &[&str]) {
    let mut args = vec!["--sniff-ms", "50"];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    let senders = 40;
    let expect = senders * BURST;
    let mut readers = Vec::new();
    for i in 0..4 {
        readers.push((
            format!("line{i}"),
            line_reader(s.addr, &format!("line{i}"), "busy", expect),
        ));
        readers.push((
            format!("ws{i}"),
            ws_reader(s.addr, &format!("ws{i}"), "busy", expect),
        ));
    }
    let started = Instant::now();
    let senders_seen = burst(s.addr, "busy", senders);
    for (who, h) in readers {
        let seen = h.join().expect("reader");
        seen.check(&who, senders, None);
        assert!(
            seen.leaves.is_empty(),
            "{who} saw leaves: {:?}",
            seen.leaves
        );
    }
    for (i, h) in senders_seen.into_iter().enumerate() {
        h.join()
            .expect("sender")
            .check(&format!("sender{i:02}"), senders, Some(i));
    }
    eprintln!(
        "burst of {expect} messages to 48 readers in {:?}",
        started.elapsed()
    );
    let stats = http(s.addr, "GET", "/api/stats").json();
    eprintln!("output: {}", stats["output"]);
    assert_eq!(stats["output"]["dropped"].get("slow_consumer"), None);
}

#[test]
fn forty_senders_bursting_at_once_drop_no_reader_at_the_defaults() {
    readers_keep_up_through_a_burst(&[]);
}

#[test]
fn forty_senders_bursting_at_once_drop_no_reader_with_a_small_max_outbound() {
    readers_keep_up_through_a_burst(&["--max-outbound", "65536"]);
}

/// Bursts with one member that never reads: it alone is dropped (its room
/// sees it leave), and everyone else still gets everything. The bursts
/// are bigger (flood control lifted: 20 senders x 100 messages, 7.8 MB)
/// than what the kernel buffers for the staller (about 4 MB on loopback).
#[test]
fn a_reader_that_stops_is_still_dropped_during_a_burst() {
    let s = Server::start(&[
        "--sniff-ms",
        "50",
        "--max-outbound",
        "65536",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let senders = 20;
    let per = 100;
    let expect = senders * per;
    let mut watcher = joined(s.addr, "watcher", "busy");
    let staller = stalling_socket(s.addr);
    let mut w = staller.try_clone().expect("clone");
    w.write_all(b"/nick staller\n/join busy\n").expect("join");
    watcher.line_where(|l| l.ends_with("#busy --> staller joined"));
    let line = {
        let c = joined(s.addr, "reader", "busy");
        thread::spawn(move || read_lines_until(c, "busy", expect, true))
    };
    let ws = ws_reader_until(s.addr, "wsreader", "busy", expect, true);
    let senders_seen = burst_of(s.addr, "busy", senders, per);
    // The watcher reads everything too; and each of them, the staller's
    // leave: it alone is dropped, without holding the room back.
    let watched = thread::spawn(move || read_lines_until(watcher, "busy", expect, true));
    for (who, h) in [("reader", line), ("wsreader", ws), ("watcher", watched)] {
        let seen = h.join().expect("reader");
        seen.check_n(who, senders, None, per);
        // Senders that finished reading may have gone; nobody else left.
        for leave in &seen.leaves {
            assert!(
                leave.ends_with("#busy <-- staller left (slow consumer)")
                    || (leave.contains(r#""nick":"staller""#)
                        && leave.contains(r#""reason":"slow_consumer""#))
                    || (leave.contains("sender") && leave.contains("disconnect")),
                "{who}: {leave}"
            );
        }
    }
    for (i, h) in senders_seen.into_iter().enumerate() {
        h.join()
            .expect("sender")
            .check_n(&format!("sender{i:02}"), senders, Some(i), per);
    }
    let stats = http(s.addr, "GET", "/api/stats").json();
    assert_eq!(
        stats["output"]["dropped"]["slow_consumer"], 1,
        "{}",
        stats["output"]
    );
    drop(staller);
}

/// With a per-connection limit too high to matter, the total decides: the
/// reader that stalled first holds the most and is dropped; one that
/// stopped reading later, with less, is kept and catches up; a reader that
/// reads gets everything. 2,500 messages of 3.9 KB (9.75 MB): more than the
/// kernel buffers for a stalled reader (about 4 MB on loopback) plus half
/// of --max-outbound-total (4 MiB).
#[test]
fn max_outbound_total_drops_the_biggest_backlog_first() {
    let s = Server::start(&[
        "--sniff-ms",
        "50",
        "--max-outbound",
        "268435456",
        "--max-outbound-total",
        "4194304",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let total = 2500;
    let mut reader = s.line_client();
    let big = stalling_socket(s.addr);
    let mut w = big.try_clone().expect("clone");
    w.write_all(b"/nick big\n").expect("nick");
    reader.line_where(|l| l.contains("now known as big"));
    // `late` reads the first half, then stops until the end.
    let late = stalling_socket(s.addr);
    let mut lw = late.try_clone().expect("clone");
    lw.write_all(b"/nick late\n").expect("nick");
    reader.line_where(|l| l.contains("now known as late"));
    let mut late_r = BufReader::new(late);
    late_r
        .get_mut()
        .set_read_timeout(Some(READ_WAIT))
        .expect("timeout");

    let mut sender = s.line_client();
    reader.line_where(|l| l.contains("joined"));
    let mut got = 0;
    let mut order = Vec::new();
    let mut late_got = 0;
    let mut l = String::new();
    for n in 0..total {
        sender.send(&text(0, n % 100));
        if n < total * 3 / 5 {
            // `late` keeps up with the first half.
            while late_got <= n {
                l.clear();
                late_r.read_line(&mut l).expect("late reads");
                if l.contains(&format!("<{}> s00", sender.nick)) {
                    late_got += 1;
                }
            }
        }
        // The reader keeps up all along.
        while got <= n {
            let e = reader.event();
            if e.contains(" left (") {
                order.push(e);
                continue;
            }
            assert!(e.contains(&format!("<{}> s00", sender.nick)), "{e:.60}");
            got += 1;
        }
    }
    // `big` goes: it has held the most since the start.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !order.iter().any(|e| e.contains("big left")) {
        assert!(Instant::now() < deadline, "big was not dropped: {order:?}");
        if let Some(e) = reader.try_line(Duration::from_millis(500)) {
            order.push(strip_clock(&e).unwrap_or(e));
        }
    }
    assert_eq!(order[0], "#lobby <-- big left (slow consumer)", "{order:?}");
    assert!(!order.iter().any(|e| e.contains("late left")), "{order:?}");
    // `late` reads again and gets the rest, including big's leave.
    while late_got < total {
        l.clear();
        late_r.read_line(&mut l).expect("late catches up");
        assert!(!l.contains("slow_consumer"), "{l}");
        if l.contains(&format!("<{}> s00", sender.nick)) {
            late_got += 1;
        }
    }
    let stats = http(s.addr, "GET", "/api/stats").json();
    assert_eq!(
        stats["output"]["dropped"]["outbound_total"], 1,
        "{}",
        stats["output"]
    );
    assert_eq!(stats["output"]["dropped"].get("slow_consumer"), None);
    drop(big);
}

/// A WebSocket request that arrives while the loop is busy, just before its
/// sniff deadline, is still served as HTTP: the sniff timer reads what is
/// waiting before it decides. The loop is held with SIGSTOP while 1,100
/// other requests and then the upgrade arrive, so when it runs again the
/// upgrade's readiness is not in the first batch of events (1,024) but its
/// sniff deadline has passed.
#[test]
fn a_request_waiting_when_the_sniff_timer_fires_is_http() {
    let s = Server::start(&["--sniff-ms", "300"]);
    let mut others: Vec<TcpStream> = (0..1100)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).expect("connect");
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .expect("first request");
            c
        })
        .collect();
    for c in &mut others {
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).expect("first answer");
        assert!(buf[..n].starts_with(b"HTTP/1.1 "), "{:?}", &buf[..n]);
    }
    let mut ws = TcpStream::connect(s.addr).expect("connect");
    thread::sleep(Duration::from_millis(50)); // accepted, sniffing
    let pid = s.pid().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    };
    signal("-STOP");
    for c in &mut others {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("second request");
    }
    thread::sleep(Duration::from_millis(20));
    ws.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("upgrade");
    thread::sleep(Duration::from_millis(400)); // past the sniff deadline
    signal("-CONT");
    ws.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 4096];
    let n = ws.read(&mut buf).expect("answer");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 101 "),
        "a line greeting instead of 101: {answer:?}"
    );
    for c in &mut others {
        let n = c.read(&mut buf).expect("second answer");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            &buf[..n.min(40)]
        );
    }
}

/// A client that said nothing for --sniff-ms is greeted as a line client;
/// if its first line is then an HTTP request line, it was an HTTP client:
/// nothing of it is said into a room or stored, and it is told so and closed.
#[test]
fn an_http_request_line_after_the_greeting_is_never_chat() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut watcher = s.line_client();
    let mut late = LineClient::connect(s.addr);
    let nick = late.nick.clone();
    watcher.line_where(|l| l.contains(&format!("{nick} joined")));
    late.send_bytes(
        b"GET /ws?resume=0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: x\r\n\
          Upgrade: websocket\r\n\r\n",
    );
    let rest = late.read_to_close();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("!!! bad_request: that was an HTTP request")),
        "{rest:?}"
    );
    // The room saw the leave, and no line of the request.
    let l = watcher.event();
    assert_eq!(l, format!("#lobby <-- {nick} left (disconnected)"));
    watcher.expect_silence(Duration::from_millis(300));
    let history = http(s.addr, "GET", "/api/rooms/lobby/messages").json();
    assert_eq!(history["messages"], json!([]), "{history}");
}

/// When every reader of a room is slower than its sender (each reads
/// 16 KB, then sleeps 5 ms, through a 4 KiB receive buffer; the sender writes
/// 7.8 MB as fast as it can, more than the kernel buffers for each reader,
/// about 4 MB on loopback), the readers as a whole are behind: the server pauses
/// reading the sender (TCP pushes back on it), the readers catch up, and
/// nobody is dropped; every message arrives, in order.
#[test]
fn a_room_whose_readers_all_lag_pauses_its_sender_and_drops_nobody() {
    let s = Server::start(&[
        "--sniff-ms",
        "50",
        "--max-outbound",
        "65536",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    let total = 2000;
    let mut readers = Vec::new();
    for i in 0..4 {
        let sock = stalling_socket(s.addr);
        let mut w = sock.try_clone().expect("clone");
        w.write_all(format!("/nick slow{i}\n/join lag\n").as_bytes())
            .expect("join");
        readers.push(thread::spawn(move || {
            sock.set_read_timeout(Some(READ_WAIT)).expect("timeout");
            let mut r = BufReader::with_capacity(16 * 1024, sock);
            let mut got = 0;
            let mut line = String::new();
            while got < total {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return Err(format!("slow{i}: ended after {got}")),
                    Ok(_) => {}
                }
                if line.contains("slow_consumer") {
                    return Err(format!("slow{i}: dropped after {got}: {line}"));
                }
                if let Some((_, text)) = line.split_once("> ") {
                    if let Some((0, n)) = ids(text.trim_end()) {
                        if n != got % 100 {
                            return Err(format!("slow{i}: m{n} after {got}"));
                        }
                        got += 1;
                    }
                }
                if got % 4 == 0 {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(got)
        }));
    }
    let mut sender = joined(s.addr, "fast", "lag");
    thread::sleep(Duration::from_millis(200));
    let mut all = String::new();
    for n in 0..total {
        all.push_str(&text(0, n % 100));
        all.push('\n');
    }
    sender.send_bytes(all.as_bytes());
    for r in readers {
        let got = r.join().expect("reader");
        assert_eq!(got, Ok(total));
    }
    let stats = http(s.addr, "GET", "/api/stats").json();
    let out = &stats["output"];
    assert!(out["input_pauses"].as_u64() > Some(0), "{out}");
    assert_eq!(out["dropped"], json!({}), "{out}");
}

/// 2,000 `/history 200` requests in one write (26 KB) in a room of 3.9 KB
/// messages would be 1.5 GB of pages. The server sends at most about
/// `--max-outbound` of history per turn and reads no more of the client's
/// requests while its own output is backed up: the excess is refused with
/// `rate_limited`, the client that reads gets everything it was given, and
/// the server's queues stay small.
#[test]
fn a_history_flood_is_refused_not_queued() {
    let s = Server::start(&["--sniff-ms", "50", "--rate", "100000", "--burst", "100000"]);
    let mut alice = s.line_client();
    for n in 0..200 {
        alice.send(&text(0, n % 100));
    }
    alice.send("/who");
    alice.line_where(|l| l.starts_with("*** #lobby ("));
    let mut bob = s.line_client();
    let asks = "/history 200\n".repeat(2000);
    bob.send_bytes(asks.as_bytes());
    let (mut pages, mut refused) = (0, 0);
    let mut peak = 0u64;
    while pages + refused < 2000 {
        let l = bob
            .try_line(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("after {pages} pages and {refused} refusals: silence"));
        if l.starts_with("*** history of #lobby (200 messages)") {
            pages += 1;
            let out = http(s.addr, "GET", "/api/stats").json();
            peak = peak.max(out["bytes_queued"].as_u64().unwrap_or(0));
        } else if l.starts_with("!!! rate_limited: too much history at once") {
            refused += 1;
        }
    }
    assert!(
        pages >= 1 && refused >= 1,
        "{pages} pages, {refused} refused"
    );
    // What was queued at a time stayed near --max-outbound (1 MiB) plus a
    // page and what was being read, not a share of 1.5 GB.
    assert!(peak < 16 << 20, "{peak} bytes queued at once");
    eprintln!("history flood: {pages} pages, {refused} refused, peak queue {peak} bytes");
}
