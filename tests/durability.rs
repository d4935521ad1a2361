//! PROTOCOL.md "Durability" against the real binary and a real SQLite file:
//! every message any client received survives `kill -9` (also in the middle
//! of a flood) with identical seq/ts/from/text, `seq` carries on without a gap
//! or a repeat, `store_id` tells a kept store from a fresh one, an emptied
//! room keeps its history, and a database natter cannot use is refused at
//! startup with a clear message.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// Room messages as fast as a test can send them.
const FAST: [&str; 4] = ["--rate", "1000000", "--burst", "1000000"];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `[HH:MM:SS]` (UTC) of a `ts` in milliseconds.
fn clock(ts: u64) -> String {
    let s = (ts / 1000) % 86_400;
    format!("[{:02}:{:02}:{:02}]", s / 3600, (s / 60) % 60, s % 60)
}

/// How a line client shows a stored text message or action.
fn render(m: &Value) -> String {
    let ts = m["ts"].as_u64().unwrap_or_else(|| panic!("no ts in {m}"));
    let room = m["room"].as_str().expect("room");
    let from = m["from"].as_str().expect("from");
    let text = m["text"].as_str().expect("text");
    if m["action"] == true {
        format!("{} #{room} * {from} {text}", clock(ts))
    } else {
        format!("{} #{room} <{from}> {text}", clock(ts))
    }
}

/// A received MESSAGE without what only its sender's copy carries.
fn stripped(v: &Value) -> Value {
    let mut v = v.clone();
    let obj = v.as_object_mut().expect("object");
    obj.remove("cid");
    obj.remove("ref");
    v
}

/// Every stored message of `room`, paged through `GET /api/rooms/ROOM/messages`.
fn stored(addr: SocketAddr, room: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let r = http(
            addr,
            "GET",
            &format!("/api/rooms/{room}/messages?after={after}&limit=200"),
        );
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        assert_eq!(body["room"], room);
        let page = body["messages"].as_array().expect("messages").clone();
        match page.last() {
            None => return out,
            Some(last) => after = last["seq"].as_u64().expect("seq"),
        }
        out.extend(page);
    }
}

/// Every stored message of `room`, paged through the WebSocket `history`.
fn ws_stored(c: &mut WsClient, room: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        c.send(json!({"type":"history","room":room,"after":after,"limit":200}));
        let h = c.recv_type("history");
        assert_eq!(h["room"], room, "{h}");
        let page = h["messages"].as_array().expect("messages").clone();
        match page.last() {
            None => return out,
            Some(last) => after = last["seq"].as_u64().expect("seq"),
        }
        out.extend(page);
    }
}

/// Asserts that the messages are seq 1, 2, ... N in order.
fn assert_contiguous(room: &str, msgs: &[Value]) {
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(
            m["seq"].as_u64(),
            Some(i as u64 + 1),
            "#{room}: message {i} has the wrong seq: {m}"
        );
        assert_eq!(m["room"], room, "{m}");
    }
}

/// Connects with `nick` and joins `room` at once; returns the client and its `joined`.
fn ws_in(addr: SocketAddr, nick: &str, room: &str) -> (WsClient, Value) {
    let mut c = WsClient::connect(addr, &format!("nick={nick}&room={room}"));
    assert_eq!(c.nick(), nick);
    let joined = c.recv_type("joined");
    assert_eq!(joined["room"], room, "{joined}");
    (c, joined)
}

/// The next room message a WebSocket client gets, skipping presence and typing.
fn next_message(c: &mut WsClient) -> Value {
    loop {
        let v = c.recv();
        match v["type"].as_str() {
            Some("message") => return v,
            Some("presence") | Some("typing") => continue,
            _ => panic!("{}: expected a message, got {v}", c.nick()),
        }
    }
}

/// Whether a line (clock included) is a room message or action, not presence.
fn is_message_line(l: &str) -> bool {
    let Some(rest) = strip_clock(l) else {
        return false;
    };
    let Some((room, body)) = rest.split_once(' ') else {
        return false;
    };
    room.starts_with('#')
        && ((body.starts_with('<') && !body.starts_with("<--")) || body.starts_with("* "))
}

/// The next room message line a line client gets, skipping presence.
fn next_message_line(c: &mut LineClient) -> String {
    c.line_where(is_message_line)
}

/// Sends `/history N` and returns the block's message lines (clocks kept),
/// after checking its head and end.
fn line_history(c: &mut LineClient, room: &str, n: usize) -> Vec<String> {
    c.send(&format!("/history {n}"));
    let head = c.line_where(|l| l.starts_with("*** history of #"));
    read_block(c, room, &head)
}

/// Reads a history block whose head was `head`, up to its end line.
fn read_block(c: &mut LineClient, room: &str, head: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let l = c.line();
        if l == "*** end of history" {
            break;
        }
        out.push(l);
    }
    assert_eq!(head, block_head(room, out.len()));
    out
}

fn block_head(room: &str, n: usize) -> String {
    format!(
        "*** history of #{room} ({n} message{})",
        if n == 1 { "" } else { "s" }
    )
}

/// The history block of a line client's greeting: its message lines.
fn greeting_history(c: &LineClient, room: &str) -> Vec<String> {
    let g = &c.greeting;
    if g.len() == 2 {
        return Vec::new();
    }
    assert_eq!(g.last().map(String::as_str), Some("*** end of history"));
    let lines: Vec<String> = g[3..g.len() - 1].to_vec();
    assert_eq!(g[2], block_head(room, lines.len()));
    lines
}

/// Sends SIGTERM and waits for the server to exit on its own.
fn stop_gracefully(mut s: Server) {
    let ok = Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -TERM failed");
    let deadline = Instant::now() + Duration::from_secs(15);
    while s.is_alive() {
        assert!(
            Instant::now() < deadline,
            "the server did not exit after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn store_id(v: &Value) -> String {
    v["store_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no store_id in {v}"))
        .to_string()
}

// ---------------------------------------------------------------------------
// kill -9 keeps what anyone received
// ---------------------------------------------------------------------------

/// What clients saw, to be found again in the store.
#[derive(Default)]
struct Seen {
    /// Room messages WebSocket clients got (their own echoes included).
    ws: Vec<Value>,
    /// Room message lines line clients got, clocks included.
    lines: Vec<String>,
}

impl Seen {
    fn ws(&mut self, c: &mut WsClient) -> Value {
        let v = next_message(c);
        self.ws.push(v.clone());
        v
    }

    fn line(&mut self, c: &mut LineClient) -> String {
        let l = next_message_line(c);
        self.lines.push(l.clone());
        l
    }
}

#[test]
fn every_received_message_survives_kill_9_with_identical_fields() {
    let db = TempDb::new("kill9");
    let s = Server::start(&["--db", db.arg()]);
    let mut seen = Seen::default();

    // lobby: l1, l2, wa, wb; dev: l2, wb.
    let mut l1 = s.line_client();
    let (mut wa, _) = ws_in(s.addr, "wa", "lobby");
    let mut l2 = s.line_client();
    let (mut wb, _) = ws_in(s.addr, "wb", "lobby");
    wb.send(json!({"type":"join","room":"dev"}));
    wb.recv_type("joined");
    l2.send("/join dev");
    l2.line_where(|l| l.starts_with("*** you joined #dev"));
    l2.send("/join lobby");
    l2.line_where(|l| l == "*** #lobby is your current room");

    l1.send("hello from a line client");
    for c in [&mut wa, &mut wb] {
        let m = seen.ws(c);
        assert_eq!(m["seq"], 1, "{m}");
        assert_eq!(m["text"], "hello from a line client");
        assert_eq!(m["from"], l1.nick.as_str());
    }
    seen.line(&mut l2);

    wa.send(json!({"type":"say","room":"lobby","text":"hi from the web","cid":"a1","ref":"r1"}));
    let echo = seen.ws(&mut wa);
    assert_eq!(echo["cid"], "a1");
    assert_eq!(echo["seq"], 2);
    seen.ws(&mut wb);
    seen.line(&mut l1);
    seen.line(&mut l2);

    l1.send("/me waves at everyone");
    seen.ws(&mut wa);
    seen.ws(&mut wb);
    assert_eq!(
        strip_clock(&seen.line(&mut l2)).expect("clock"),
        format!("#lobby * {} waves at everyone", l1.nick)
    );

    l1.send("//not a command");
    seen.ws(&mut wa);
    let m = seen.ws(&mut wb);
    assert_eq!(m["text"], "/not a command");
    seen.line(&mut l2);

    l2.send("/join dev");
    l2.line_where(|l| l == "*** #dev is your current room");
    l2.send("in dev: ünïcødé ✓ \u{1F600}");
    let m = seen.ws(&mut wb);
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64()),
        (Some("dev"), Some(1))
    );

    wb.send(json!({"type":"say","room":"dev","text":"nods","action":true,"cid":"b1"}));
    let m = seen.ws(&mut wb);
    assert_eq!(
        (m["seq"].as_u64(), m["action"].as_bool()),
        (Some(2), Some(true))
    );
    seen.line(&mut l2);

    wb.send(json!({"type":"say","room":"lobby","text":"back in the lobby"}));
    let m = seen.ws(&mut wb);
    assert_eq!(m["seq"], 5);
    seen.ws(&mut wa);
    seen.line(&mut l1);
    seen.line(&mut l2);

    // A direct message is not stored.
    l1.send("/msg wa a secret, not for the history");
    assert_eq!(wa.recv_type("dm")["text"], "a secret, not for the history");

    kill9(s);

    let s = Server::start(&["--db", db.arg()]);
    let lobby = stored(s.addr, "lobby");
    let dev = stored(s.addr, "dev");
    assert_contiguous("lobby", &lobby);
    assert_contiguous("dev", &dev);
    assert_eq!((lobby.len(), dev.len()), (5, 2));
    assert!(
        lobby
            .iter()
            .chain(&dev)
            .all(|m| !m["text"].as_str().unwrap_or("").contains("secret")),
        "a direct message was stored"
    );
    let by_seq: BTreeMap<(String, u64), Value> = lobby
        .iter()
        .chain(&dev)
        .map(|m| {
            (
                (
                    m["room"].as_str().unwrap().to_string(),
                    m["seq"].as_u64().unwrap(),
                ),
                m.clone(),
            )
        })
        .collect();
    for got in &seen.ws {
        let key = (
            got["room"].as_str().unwrap().to_string(),
            got["seq"].as_u64().unwrap(),
        );
        let kept = by_seq
            .get(&key)
            .unwrap_or_else(|| panic!("received but not stored: {got}"));
        assert_eq!(kept, &stripped(got), "stored differs from received");
    }
    let rendered: HashSet<String> = lobby.iter().chain(&dev).map(render).collect();
    for l in &seen.lines {
        assert!(rendered.contains(l), "received {l:?}, not in the store");
    }

    // The same over the WebSocket: joined.messages and history.
    let (mut wc, joined) = ws_in(s.addr, "wc", "lobby");
    assert_eq!(joined["messages"], json!(lobby));
    assert_eq!(joined["last_seq"], 5);
    assert_eq!(ws_stored(&mut wc, "lobby"), lobby);
    wc.send(json!({"type":"history","room":"lobby","limit":200}));
    assert_eq!(wc.recv_type("history")["messages"], json!(lobby));
    wc.send(json!({"type":"join","room":"dev"}));
    let joined = wc.recv_type("joined");
    assert_eq!(joined["messages"], json!(dev));
    assert_eq!(joined["last_seq"], 2);
    assert_eq!(ws_stored(&mut wc, "dev"), dev);

    // And to a line client: the greeting, /join and /history 200.
    let mut l3 = s.line_client();
    let want_lobby: Vec<String> = lobby.iter().map(render).collect();
    let want_dev: Vec<String> = dev.iter().map(render).collect();
    assert_eq!(greeting_history(&l3, "lobby"), want_lobby);
    assert_eq!(line_history(&mut l3, "lobby", 200), want_lobby);
    l3.send("/join dev");
    let joined = l3.line_where(|l| l.starts_with("*** you joined #dev"));
    assert!(
        joined.starts_with("*** you joined #dev (2 here"),
        "{joined}"
    );
    let head = l3.line();
    assert_eq!(read_block(&mut l3, "dev", &head), want_dev);
    assert_eq!(line_history(&mut l3, "dev", 200), want_dev);

    // New messages carry on: no gap, no repeat.
    wc.send(json!({"type":"say","room":"lobby","text":"after the crash"}));
    assert_eq!(next_message(&mut wc)["seq"], 6);
    l3.send("dev after the crash");
    let m = next_message(&mut wc);
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64()),
        (Some("dev"), Some(3))
    );
    l3.send("/join lobby");
    l3.line_where(|l| l == "*** #lobby is your current room");
    l3.send("lobby after the crash");
    let m = next_message(&mut wc);
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64()),
        (Some("lobby"), Some(7))
    );
    let lobby = stored(s.addr, "lobby");
    assert_contiguous("lobby", &lobby);
    assert_eq!(lobby.len(), 7);
}

/// Reads WebSocket messages until the connection fails; counts room messages.
fn ws_drain(mut c: WsClient, count: Arc<AtomicUsize>) -> thread::JoinHandle<Vec<Value>> {
    thread::spawn(move || {
        c.ws.get_ref()
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut got = Vec::new();
        loop {
            match c.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sent bad JSON");
                    if v["type"] == "message" {
                        got.push(v);
                        count.fetch_add(1, Ordering::Relaxed);
                    } else {
                        assert!(
                            v["type"] == "presence" || v["type"] == "typing",
                            "unexpected {v}"
                        );
                    }
                }
                Ok(_) => {}
                Err(_) => return got,
            }
        }
    })
}

/// Reads complete lines until the connection ends; a partial last line,
/// cut by the kill, is not counted.
fn line_drain(c: LineClient, count: Arc<AtomicUsize>) -> thread::JoinHandle<Vec<String>> {
    let stream = c.stream().try_clone().expect("clone");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    thread::spawn(move || {
        let _keep = c;
        let mut r = BufReader::new(stream);
        let mut got = Vec::new();
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf) {
                Ok(_) if buf.ends_with(b"\n") => {
                    buf.pop();
                    let l = String::from_utf8(buf).expect("UTF-8");
                    if is_message_line(&l) {
                        got.push(l);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => return got,
            }
        }
    })
}

#[test]
fn a_kill_9_in_the_middle_of_a_flood_loses_nothing_anyone_received() {
    let db = TempDb::new("flood");
    let mut args = vec!["--db", db.arg(), "--max-outbound", "268435456"];
    args.extend_from_slice(&FAST);
    let s = Server::start(&args);

    // Receivers: a WebSocket client in both rooms, a line client in lobby.
    let (mut rx, _) = ws_in(s.addr, "rx", "lobby");
    rx.send(json!({"type":"join","room":"dev"}));
    rx.recv_type("joined");
    let lrx = s.line_client();
    // Flooders: a line client in lobby, a WebSocket client in dev.
    let mut lf = s.line_client();
    let lf_nick = lf.nick.clone();
    let (wf, _) = ws_in(s.addr, "wf", "dev");
    // Everyone is in: the presence events are out of the way.
    lf.send("/who");
    lf.line_where(|l| l.starts_with("*** #lobby (3)"));

    let rx_count = Arc::new(AtomicUsize::new(0));
    let lrx_count = Arc::new(AtomicUsize::new(0));
    let echo_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rx_thread = ws_drain(rx, rx_count.clone());
    let lrx_thread = line_drain(lrx, lrx_count.clone());

    let line_flood = {
        let mut out = lf.stream().try_clone().expect("clone");
        let stop = stop.clone();
        thread::spawn(move || {
            let _keep = lf;
            let mut sent = 0usize;
            let deadline = Instant::now() + Duration::from_secs(25);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let mut chunk = String::new();
                for i in sent + 1..=sent + 20 {
                    chunk.push_str(&format!("lf-{i}\n"));
                }
                if out.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                sent += 20;
            }
            sent
        })
    };
    let ws_flood = {
        let stream = wf.ws.get_ref().try_clone().expect("clone");
        let stop = stop.clone();
        thread::spawn(move || {
            let mut w = tungstenite::WebSocket::from_raw_socket(
                stream,
                tungstenite::protocol::Role::Client,
                None,
            );
            let mut sent = 0usize;
            let deadline = Instant::now() + Duration::from_secs(25);
            'flood: while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for _ in 0..20 {
                    sent += 1;
                    let say = json!({"type":"say","room":"dev","text":format!("wf-{sent}"),"cid":format!("c{sent}")});
                    if w.write(tungstenite::Message::text(say.to_string()))
                        .is_err()
                    {
                        sent -= 1;
                        break 'flood;
                    }
                }
                if w.flush().is_err() {
                    break;
                }
            }
            sent
        })
    };
    let echo_thread = ws_drain(wf, echo_count.clone());

    // Kill once both rooms are flowing to every receiver.
    let deadline = Instant::now() + Duration::from_secs(20);
    // And once the helper thread has checkpointed: the kill may then come
    // in the middle of one, and the file must still hold everything.
    while rx_count.load(Ordering::Relaxed) < 600
        || lrx_count.load(Ordering::Relaxed) < 200
        || echo_count.load(Ordering::Relaxed) < 200
        || count(&store_stats(&s), "checkpoints") == 0
    {
        assert!(
            Instant::now() < deadline,
            "the flood did not reach the receivers: ws {}, line {}, echoes {}",
            rx_count.load(Ordering::Relaxed),
            lrx_count.load(Ordering::Relaxed),
            echo_count.load(Ordering::Relaxed)
        );
        thread::sleep(Duration::from_millis(5));
    }
    kill9(s);
    stop.store(true, Ordering::Relaxed);
    let lf_sent = line_flood.join().expect("line flooder");
    let wf_sent = ws_flood.join().expect("ws flooder");
    let rx_got = rx_thread.join().expect("ws receiver");
    let lrx_got = lrx_thread.join().expect("line receiver");
    let echoes = echo_thread.join().expect("echo reader");

    let s = Server::start(&["--db", db.arg()]);
    let lobby = stored(s.addr, "lobby");
    let dev = stored(s.addr, "dev");
    eprintln!(
        "flood: line sent {lf_sent}, stored {}; ws sent {wf_sent}, stored {}; \
         received: ws {}, line {}, echoes {}",
        lobby.len(),
        dev.len(),
        rx_got.len(),
        lrx_got.len(),
        echoes.len()
    );
    assert_contiguous("lobby", &lobby);
    assert_contiguous("dev", &dev);
    // Each flooder's messages are stored in the order sent, none lost in
    // between and none twice: a prefix of what it sent.
    for (i, m) in lobby.iter().enumerate() {
        assert_eq!(m["text"], format!("lf-{}", i + 1), "{m}");
        assert_eq!(m["from"], lf_nick.as_str());
    }
    for (i, m) in dev.iter().enumerate() {
        assert_eq!(m["text"], format!("wf-{}", i + 1), "{m}");
        assert_eq!(m["from"], "wf");
    }
    assert!(lobby.len() <= lf_sent && dev.len() <= wf_sent);

    // Stored ⊇ received, field for field.
    let find = |m: &Value| -> &Value {
        let seq = m["seq"].as_u64().expect("seq") as usize;
        let room = if m["room"] == "lobby" { &lobby } else { &dev };
        room.get(seq - 1)
            .unwrap_or_else(|| panic!("received but not stored: {m}"))
    };
    for m in rx_got.iter().chain(&echoes) {
        assert_eq!(find(m), &stripped(m), "stored differs from received");
    }
    for (i, e) in echoes.iter().enumerate() {
        assert_eq!(e["cid"], format!("c{}", i + 1), "echoes out of order");
    }
    let rendered: HashSet<String> = lobby.iter().map(render).collect();
    for l in &lrx_got {
        assert!(rendered.contains(l), "received {l:?}, not in the store");
    }

    // The WebSocket history and the line client's /history say the same.
    let (mut wc, joined) = ws_in(s.addr, "wc", "lobby");
    let n = lobby.len();
    assert_eq!(joined["last_seq"], n as u64);
    assert_eq!(joined["messages"], json!(lobby[n.saturating_sub(50)..]));
    assert_eq!(ws_stored(&mut wc, "lobby"), lobby);
    wc.send(json!({"type":"join","room":"dev"}));
    assert_eq!(wc.recv_type("joined")["last_seq"], dev.len() as u64);
    assert_eq!(ws_stored(&mut wc, "dev"), dev);
    let mut lc = s.line_client();
    let want: Vec<String> = lobby[n.saturating_sub(200)..].iter().map(render).collect();
    assert_eq!(line_history(&mut lc, "lobby", 200), want);
    assert_eq!(
        greeting_history(&lc, "lobby"),
        want[want.len().saturating_sub(50)..]
    );

    // seq carries on in both rooms.
    wc.send(json!({"type":"say","room":"lobby","text":"after"}));
    assert_eq!(next_message(&mut wc)["seq"], n as u64 + 1);
    wc.send(json!({"type":"say","room":"dev","text":"after"}));
    assert_eq!(next_message(&mut wc)["seq"], dev.len() as u64 + 1);
    lc.send("line after");
    let m = next_message(&mut wc);
    assert_eq!(
        (m["room"].as_str(), m["seq"].as_u64()),
        (Some("lobby"), Some(n as u64 + 2))
    );
}

// ---------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------

/// `/api/stats`' store figures.
fn store_stats(s: &Server) -> Value {
    http(s.addr, "GET", "/api/stats").json()["store"].clone()
}

fn count(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

/// SQLite's WAL is copied into the database by the helper thread while
/// messages flow, never by the loop: a client doing round trips of ~3 KB
/// messages (a page or more each) keeps getting every one, in order, while
/// the helper checkpoints again and again; the loop ran none itself, so no
/// delivery waited for one. A `kill -9` afterwards loses nothing. The
/// round-trip and checkpoint times are printed, not asserted.
#[test]
fn the_helper_thread_checkpoints_while_messages_flow_and_nothing_is_lost() {
    let db = TempDb::new("checkpoint");
    let s = Server::start(&["--db", db.arg(), FAST[0], FAST[1], FAST[2], FAST[3]]);
    let mut alice = s.line_client();
    let mut bob = s.line_client();
    assert_eq!(count(&store_stats(&s), "checkpoints"), 0);
    let pad = "x".repeat(3000);
    let mut sent = 0;
    let mut slowest = Duration::ZERO;
    while count(&store_stats(&s), "checkpoints") < 3 {
        assert!(sent < 6000, "fewer than 3 checkpoints after {sent} commits");
        for _ in 0..100 {
            sent += 1;
            let started = Instant::now();
            alice.send(&format!("note {sent} {pad}"));
            let got = next_message_line(&mut bob);
            slowest = slowest.max(started.elapsed());
            assert!(got.ends_with(&format!("note {sent} {pad}")), "{got}");
        }
    }
    let stats = store_stats(&s);
    eprintln!(
        "{sent} round trips, slowest {slowest:?}; helper checkpoints {}, longest {} us; \
         loop checkpoints {}; WAL {} pages",
        count(&stats, "checkpoints"),
        count(&stats, "checkpoint_us_max"),
        count(&stats, "loop_checkpoints"),
        count(&stats, "wal_pages"),
    );
    assert_eq!(count(&stats, "loop_checkpoints"), 0, "{stats}");
    assert!(
        count(&stats, "wal_pages") < 10_000,
        "the WAL is kept short: {stats}"
    );
    kill9(s);
    let s = Server::start(&["--db", db.arg()]);
    let texts: Vec<String> = stored(s.addr, "lobby")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_string())
        .collect();
    let expected: Vec<String> = (1..=sent).map(|i| format!("note {i} {pad}")).collect();
    assert_eq!(texts, expected);
}

// ---------------------------------------------------------------------------
// store_id
// ---------------------------------------------------------------------------

/// The store id a WebSocket client is told in `welcome` and in `joined`
/// (checked equal); and that `joined`.
fn ids(s: &Server) -> (String, Value) {
    let mut c = WsClient::connect(s.addr, "room=lobby");
    let id = store_id(&c.welcome);
    let joined = c.recv_type("joined");
    assert_eq!(store_id(&joined), id, "welcome and joined disagree");
    assert!(!id.is_empty());
    (id, joined)
}

#[test]
fn store_id_is_kept_with_the_file_and_new_for_a_fresh_or_memory_store() {
    let db = TempDb::new("storeid");
    let s = Server::start(&["--db", db.arg()]);
    let (a, _) = ids(&s);
    let (again, _) = ids(&s);
    assert_eq!(a, again);
    let (mut w, _) = ws_in(s.addr, "keeper", "lobby");
    w.send(json!({"type":"say","room":"lobby","text":"kept"}));
    next_message(&mut w);
    kill9(s);

    let s = Server::start(&["--db", db.arg()]);
    let (after_kill, joined) = ids(&s);
    assert_eq!(after_kill, a, "store_id changed after kill -9");
    assert_eq!(joined["last_seq"], 1);
    stop_gracefully(s);
    let s = Server::start(&["--db", db.arg()]);
    assert_eq!(ids(&s).0, a, "store_id changed after a clean restart");
    drop(s);

    let fresh = TempDb::new("storeid-fresh");
    let s = Server::start(&["--db", fresh.arg()]);
    let b = ids(&s).0;
    assert_ne!(b, a, "a fresh file got the old file's store_id");
    drop(s);

    // :memory: keeps nothing: a new id and an empty history every start.
    let s = Server::start(&["--db", ":memory:"]);
    let (m1, _) = ids(&s);
    let (mut w, _) = ws_in(s.addr, "ephemeral", "lobby");
    w.send(json!({"type":"say","room":"lobby","text":"gone soon"}));
    assert_eq!(next_message(&mut w)["seq"], 1);
    drop(w);
    stop_gracefully(s);
    let s = Server::start(&["--db", ":memory:"]);
    let (m2, joined) = ids(&s);
    assert_ne!(m1, m2, ":memory: kept its store_id across starts");
    for other in [&a, &b] {
        assert_ne!(&m1, other);
        assert_ne!(&m2, other);
    }
    assert_eq!(joined["messages"], json!([]));
    assert_eq!(joined["last_seq"], 0);
    assert!(stored(s.addr, "lobby").is_empty());
    let l = s.line_client();
    assert_eq!(greeting_history(&l, "lobby"), Vec::<String>::new());
    let (mut w, _) = ws_in(s.addr, "ephemeral", "lobby");
    w.send(json!({"type":"say","room":"lobby","text":"first again"}));
    assert_eq!(next_message(&mut w)["seq"], 1);
}

// ---------------------------------------------------------------------------
// An emptied room keeps its history
// ---------------------------------------------------------------------------

#[test]
fn an_emptied_room_shows_its_history_to_a_newcomer_also_after_a_restart() {
    let db = TempDb::new("emptied");
    let s = Server::start(&["--db", db.arg()]);
    let mut l1 = s.line_client();
    assert_eq!(greeting_history(&l1, "lobby"), Vec::<String>::new());
    let (mut w1, _) = ws_in(s.addr, "w1", "lobby");
    l1.send("first words");
    next_message(&mut w1);
    w1.send(json!({"type":"say","room":"lobby","text":"second words"}));
    next_message(&mut w1);
    w1.send(json!({"type":"say","room":"lobby","text":"shrugs","action":true}));
    next_message(&mut w1);
    l1.send("/join quiet");
    l1.line_where(|l| l.starts_with("*** you joined #quiet"));
    w1.send(json!({"type":"join","room":"quiet"}));
    w1.recv_type("joined");
    l1.send("in a quiet room");
    next_message(&mut w1);
    // Everyone leaves: the line client quits, the WebSocket client leaves
    // both rooms and closes properly.
    l1.send("/quit");
    l1.line_where(|l| l == "*** bye");
    for room in ["lobby", "quiet"] {
        w1.send(json!({"type":"leave","room":room}));
        assert_eq!(w1.recv_type("left")["room"], room);
    }
    w1.ws.close(None).expect("close");
    let rooms = http(s.addr, "GET", "/api/rooms").json();
    assert!(
        rooms["rooms"]
            .as_array()
            .expect("rooms")
            .iter()
            .all(|r| r["members"].as_u64() == Some(0)
                || (r["name"] != "lobby" && r["name"] != "quiet")),
        "the rooms did not empty: {rooms}"
    );

    let lobby = stored(s.addr, "lobby");
    let quiet = stored(s.addr, "quiet");
    assert_eq!((lobby.len(), quiet.len()), (3, 1));
    let want_lobby: Vec<String> = lobby.iter().map(render).collect();
    let want_quiet: Vec<String> = quiet.iter().map(render).collect();

    let check = |s: &Server, when: &str| {
        let mut l = s.line_client();
        assert_eq!(
            greeting_history(&l, "lobby"),
            want_lobby,
            "{when}: greeting"
        );
        l.send("/join quiet");
        let joined = l.line_where(|x| x.starts_with("*** you joined #quiet"));
        assert_eq!(
            joined,
            format!("*** you joined #quiet (1 here: {})", l.nick),
            "{when}"
        );
        let head = l.line();
        assert_eq!(
            read_block(&mut l, "quiet", &head),
            want_quiet,
            "{when}: /join"
        );
        let mut w = WsClient::connect(s.addr, "");
        for (room, want) in [("lobby", &lobby), ("quiet", &quiet)] {
            w.send(json!({"type":"join","room":room}));
            let j = w.recv_type("joined");
            assert_eq!(j["room"], room);
            assert_eq!(&j["messages"], &json!(want), "{when}: joined.messages");
            assert_eq!(j["last_seq"], want.len() as u64, "{when}");
        }
        l.send("/quit");
        l.line_where(|x| x == "*** bye");
        for room in ["lobby", "quiet"] {
            w.send(json!({"type":"leave","room":room}));
            w.recv_type("left");
        }
        w.ws.close(None).expect("close");
    };
    check(&s, "before the restart");
    kill9(s);
    let s = Server::start(&["--db", db.arg()]);
    check(&s, "after kill -9");
    stop_gracefully(s);
    let s = Server::start(&["--db", db.arg()]);
    check(&s, "after a clean restart");

    // And seq carries on in the emptied room.
    let (mut w, _) = ws_in(s.addr, "w2", "quiet");
    w.send(json!({"type":"say","room":"quiet","text":"anyone?"}));
    assert_eq!(next_message(&mut w)["seq"], 2);
}

// ---------------------------------------------------------------------------
// Startup errors
// ---------------------------------------------------------------------------

/// Runs natter with `args`, expecting it to refuse to start: a non-zero exit,
/// no listening line, no panic, a message on stderr. Returns that stderr.
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natter");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("natter {args:?} kept running instead of refusing to start");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(!status.success(), "natter {args:?} exited 0; stderr: {err}");
    assert!(!out.contains("listening"), "natter {args:?} started: {out}");
    assert!(!err.contains("panicked"), "natter {args:?} panicked: {err}");
    assert!(
        !err.trim().is_empty(),
        "natter {args:?}: no message on stderr"
    );
    err
}

#[test]
fn a_db_path_in_a_missing_directory_is_refused() {
    let dir = temp_path("no-such-dir");
    let path = dir.join("natter.db");
    let path = path.to_str().expect("UTF-8");
    let err = refused(&["--db", path]);
    assert!(
        err.contains(path),
        "the message does not name {path}: {err}"
    );
    assert!(
        err.contains("No such file or directory"),
        "the message does not say why: {err}"
    );
    assert!(!dir.exists(), "natter created {}", dir.display());
}

#[test]
fn a_db_that_is_a_directory_is_refused() {
    let dir = temp_path("a-directory.db");
    std::fs::create_dir(&dir).expect("mkdir");
    let path = dir.to_str().expect("UTF-8").to_string();
    let err = refused(&["--db", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        err.contains(&path),
        "the message does not name {path}: {err}"
    );
}

#[test]
fn a_db_file_that_is_not_sqlite_is_refused_and_left_unchanged() {
    for (tag, content) in [
        (
            "text",
            "these are my notes, not a database\n"
                .repeat(100)
                .into_bytes(),
        ),
        ("short", b"hello\n".to_vec()),
        (
            "binary",
            (0..=255u8).cycle().take(8192).collect::<Vec<u8>>(),
        ),
    ] {
        let db = TempDb::new(&format!("notsqlite-{tag}"));
        std::fs::write(&db.path, &content).expect("write");
        let err = refused(&["--db", db.arg()]);
        assert!(
            err.contains(db.arg()),
            "{tag}: the message does not name the file: {err}"
        );
        assert!(
            err.to_lowercase().contains("not a sqlite database")
                || err.to_lowercase().contains("not a database"),
            "{tag}: the message does not say what is wrong: {err}"
        );
        assert_eq!(
            std::fs::read(&db.path).expect("read"),
            content,
            "{tag}: natter changed a file it refused"
        );
    }
}

#[test]
fn a_sqlite_file_of_another_program_is_refused_and_left_unchanged() {
    let db = TempDb::new("foreign");
    {
        let c = rusqlite::Connection::open(&db.path).expect("open");
        c.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');")
            .expect("create");
    }
    let before = std::fs::read(&db.path).expect("read");
    let err = refused(&["--db", db.arg()]);
    assert!(err.contains(db.arg()), "{err}");
    assert_eq!(std::fs::read(&db.path).expect("read"), before);
    let c = rusqlite::Connection::open(&db.path).expect("open");
    let tables: i64 = c
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("count");
    assert_eq!(tables, 1, "natter added tables to someone else's database");
}

#[test]
fn a_db_with_a_newer_schema_is_refused_and_left_unchanged() {
    let db = TempDb::new("newer");
    let s = Server::start(&["--db", db.arg()]);
    let (mut w, _) = ws_in(s.addr, "old", "lobby");
    w.send(json!({"type":"say","room":"lobby","text":"from the past"}));
    next_message(&mut w);
    kill9(s);
    let current: i64;
    {
        let c = rusqlite::Connection::open(&db.path).expect("open");
        current = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        assert!(current >= 1, "natter left user_version at {current}");
        c.pragma_update(None, "user_version", current + 1)
            .expect("bump user_version");
    }
    let before = std::fs::read(&db.path).expect("read");
    let err = refused(&["--db", db.arg()]);
    assert!(
        err.contains(db.arg()),
        "the message does not name the file: {err}"
    );
    assert!(
        err.contains("newer") && err.contains(&(current + 1).to_string()),
        "the message does not say the schema is newer: {err}"
    );
    assert_eq!(
        std::fs::read(&db.path).expect("read"),
        before,
        "natter changed a database it refused"
    );
    let c = rusqlite::Connection::open(&db.path).expect("open");
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(v, current + 1);
    let n: i64 = c
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 1);
}

/// The WAL starts over while messages keep coming. SQLite starts it over
/// only after a checkpoint that copied all of it before the next commit
/// began, and three clients sending as fast as they can leave the loop no
/// pause for that; so past `--wal-restart-pages` (4,000 here, 40,000 by
/// default) the loop copies the last few pages itself once the helper has
/// copied the rest. Checked: some 80 MiB go through the WAL, which is
/// started over and never grows far past 4,000 pages (past twice
/// that the loop would copy all of it itself, `loop_checkpoints`); every
/// message reaches its room, in order, and is stored.
#[test]
fn the_wal_starts_over_while_messages_keep_coming() {
    const CLIENTS: usize = 3;
    const EACH: usize = 8_000;
    let db = TempDb::new("wal-restart");
    let s = Server::start(&[
        "--db",
        db.arg(),
        "--wal-restart-pages",
        "4000",
        FAST[0],
        FAST[1],
        FAST[2],
        FAST[3],
    ]);
    let pad = "y".repeat(3400);
    let mut readers = Vec::new();
    // A sender and a reader per room (a line client is not sent its own
    // messages), all in their rooms before anyone sends.
    let pairs: Vec<[LineClient; 2]> = (0..CLIENTS)
        .map(|k| {
            let [mut w, mut c] = [s.line_client(), s.line_client()];
            for who in [&mut w, &mut c] {
                who.send(&format!("/join wal{k}"));
                who.line_where(|l| l.starts_with(&format!("*** you joined #wal{k}")));
            }
            [w, c]
        })
        .collect();
    for (k, [mut writer, mut c]) in pairs.into_iter().enumerate() {
        let pad = pad.clone();
        let sending = thread::spawn(move || {
            for i in 1..=EACH {
                writer.send(&format!("m{i} {pad}"));
            }
            // Kept open until its room has everything: closed with unread
            // presence lines, its socket would reset, and the server would
            // lose what it had not read yet.
            writer
        });
        readers.push(thread::spawn(move || {
            for i in 1..=EACH {
                let got = next_message_line(&mut c);
                assert!(got.contains(&format!("> m{i} y")), "wal{k}: {i}: {got:.60}");
            }
            sending.join().expect("sender");
        }));
    }
    let mut most = 0;
    while readers.iter().any(|r| !r.is_finished()) {
        let stats = store_stats(&s);
        most = most.max(count(&stats, "wal_pages"));
        assert_eq!(count(&stats, "loop_checkpoints"), 0, "{stats}");
        thread::sleep(Duration::from_millis(100));
    }
    for r in readers {
        r.join().expect("reader");
    }
    let stats = store_stats(&s);
    eprintln!(
        "WAL at most {most} pages; {} restarts, {} us at most on the loop; \
         {} helper checkpoints",
        count(&stats, "wal_restarts"),
        count(&stats, "wal_restart_us_max"),
        count(&stats, "checkpoints"),
    );
    // Started over by the loop once past 4,000 pages (or by the helper
    // alone in a pause: without the restart this test's WAL reached some
    // 18,000 pages at times, in which no pause came).
    assert!(
        count(&stats, "wal_restarts") > 0 || most < 4_000,
        "the WAL grew to {most} pages and was never started over: {stats}"
    );
    assert!(most < 10_000, "the WAL grew to {most} pages: {stats}");
    assert_eq!(count(&stats, "loop_checkpoints"), 0, "{stats}");
    for k in 0..CLIENTS {
        assert_eq!(stored(s.addr, &format!("wal{k}")).len(), EACH);
    }
}
