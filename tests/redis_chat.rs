//! Several natter processes sharing their rooms' messages through one real
//! `redis-server` (`--redis`, PROTOCOL-2 section 6; issue 18): every test
//! starts its own Redis and two or three `natter` binaries, each with its
//! own SQLite file, and talks to them with real clients (netcat-like line
//! clients, `tungstenite` WebSockets) and `redis-cli`.
//!
//! Tested here: room messages (one `seq` order across processes, numbered
//! in Redis), `cid` repeats, history, search and join replays from the
//! Redis stream, edits, deletes and reactions, sessions resumed on another
//! process, the HTTP API and images, `natter accounts --redis`, and what
//! happens while Redis is gone (killed, its subscriber connection killed,
//! stopped with SIGSTOP) or one natter is. Nicks, presence, DMs, accounts
//! and moderation across processes are `tests/redis_presence.rs`'s.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::{line_error, RedisProc, Server, TempDb, WsClient};
use natter::hub::event::Message;
use natter::hub::names::RoomName;
use natter::store::redis::entry;
use natter::store::redis::ops::CHANNEL;
use natter::store::redis::script::{encode_load, encode_publish, publish_sha, Entry};
use serde_json::{json, Value};

/// A Redis and the natter processes sharing it. Dropping it stops them
/// (by PID: the children this test started).
struct Chat {
    natters: Vec<Server>,
    redis: RedisProc,
    _dbs: Vec<TempDb>,
}

impl Chat {
    /// Redis and `n` natter processes, each healthy (both its connections
    /// to Redis ready) before this returns.
    fn start(n: usize, args: &[&str]) -> Chat {
        let redis = RedisProc::start();
        let dbs: Vec<TempDb> = (0..n).map(|i| TempDb::new(&format!("rchat{i}"))).collect();
        let natters = dbs
            .iter()
            .map(|db| Server::start_redis(&redis, db, args))
            .collect();
        Chat {
            natters,
            redis,
            _dbs: dbs,
        }
    }

    /// The room's stream as `redis-cli XRANGE` shows it: each entry's seq
    /// (its id `SEQ-0`) and the entry (field `e`, JSON).
    fn log(&self, room: &str) -> Vec<(u64, Value)> {
        let out = self
            .redis
            .cli(&["XRANGE", &format!("natter:{{{room}}}:log"), "-", "+"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len() % 3, 0, "XRANGE said {out:?}");
        lines
            .chunks(3)
            .map(|c| {
                let seq = c[0]
                    .strip_suffix("-0")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("entry id {:?}", c[0]));
                assert_eq!(c[1], "e", "{out:?}");
                let e: Value = serde_json::from_str(c[2])
                    .unwrap_or_else(|e| panic!("entry {seq} is not JSON ({e}): {:?}", c[2]));
                (seq, e)
            })
            .collect()
    }

    fn xlen(&self, room: &str) -> u64 {
        let n = self.redis.cli(&["XLEN", &format!("natter:{{{room}}}:log")]);
        n.trim()
            .parse()
            .unwrap_or_else(|_| panic!("XLEN said {n:?}"))
    }
}

/// A WebSocket client on `s` that has joined `room`; and its `joined`.
fn ws_in(s: &Server, room: &str) -> (WsClient, Value) {
    let mut c = WsClient::connect(s.addr, "");
    let joined = c.join(room);
    assert_eq!(joined["room"], room, "{joined}");
    (c, joined)
}

/// `say` with a `cid`; the acknowledgement (the sender's own copy, with
/// the `cid` and the request's `ref`), checked.
fn say(c: &mut WsClient, room: &str, text: &str, cid: &str) -> Value {
    let ack = c.ok(
        json!({"type": "say", "room": room, "text": text, "cid": cid}),
        "message",
    );
    assert_eq!(ack["cid"], cid, "{ack}");
    assert_eq!(ack["room"], room, "{ack}");
    assert!(ack["seq"].as_u64().is_some_and(|s| s > 0), "{ack}");
    ack
}

/// The next `n` room messages of `room` the client is sent (others, such
/// as presence, skipped), within `within`; panics with what came.
fn messages(c: &mut WsClient, room: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "{} got {} of {n} messages of #{room} within {within:?}: seqs {:?}",
                c.nick(),
                got.len(),
                seqs(&got)
            );
        }
        if let Some(v) = c.try_recv(left) {
            if v["type"] == "message" && v["room"] == room {
                got.push(v);
            }
        }
    }
    got
}

/// Room messages of `room` that come within `wait` (nothing expected:
/// used to show that nothing more, such as a duplicate, arrives).
fn more_messages(c: &mut WsClient, room: &str, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return got;
        }
        if let Some(v) = c.try_recv(left) {
            if v["type"] == "message" && v["room"] == room {
                got.push(v);
            }
        }
    }
}

fn seqs(ms: &[Value]) -> Vec<u64> {
    ms.iter()
        .map(|m| m["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {m}")))
        .collect()
}

fn texts(ms: &[Value]) -> Vec<String> {
    ms.iter()
        .map(|m| {
            m["text"]
                .as_str()
                .unwrap_or_else(|| panic!("{m}"))
                .to_string()
        })
        .collect()
}

/// What a message says, without what differs between its copies: the
/// sender's `cid` and `ref`.
fn content(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("cid");
        o.remove("ref");
    }
    m
}

/// The next room message (or action) a line client is shown, clock
/// removed; presence lines (local joins and leaves) skipped.
fn line_said(l: &mut common::LineClient) -> String {
    let said = |e: &str| !e.contains(" --> ") && !e.contains(" <-- ");
    let l = l.line_where(|l| common::strip_clock(l).is_some_and(|e| said(&e)));
    common::strip_clock(&l).expect("a clock")
}

/// Sends `text` on a line client and waits for its `!!!` error.
fn line_unavailable(l: &mut common::LineClient, text: &str) {
    l.send(text);
    let e = l.line_where(|l| l.starts_with("!!! "));
    assert_eq!(line_error(&e).0, "unavailable", "{e}");
}

/// An entry for `room` published straight into Redis with natter's own
/// script and entry format, as another process would (from nick `from`,
/// origin `ext:N`), on `c`'s pipeline: the caller sends the bytes.
fn external_publish(out: &mut Vec<u8>, room: &str, from: &str, text: &str, n: usize) {
    let room_name = RoomName::parse(room).expect("room");
    let mut m = Message::new(room_name, 0, now_ms(), from.into(), text.into());
    m.author = "g:00000000000000ee".into();
    let payload = entry::encode(&m, &format!("ext:{n}"));
    encode_publish(
        out,
        &publish_sha(),
        &Entry {
            room,
            payload: &payload,
            cid_key: None,
            keep: 100_000,
            channel: CHANNEL,
            cid_ttl: 600,
        },
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

// ---------------------------------------------------------------------------

#[test]
fn a_line_client_and_a_websocket_client_on_two_processes_chat() {
    let chat = Chat::start(2, &[]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut line = a.line_client();
    assert_eq!(
        line.greeting.len(),
        2,
        "no history yet: {:?}",
        line.greeting
    );
    let (mut ws, joined) = ws_in(b, "lobby");
    assert_eq!(joined["last_seq"], 0, "{joined}");
    assert_eq!(joined["messages"], json!([]), "{joined}");
    // Presence crosses processes: A's line client sees B's client join, and
    // B's `joined` lists A's line client.
    assert_eq!(line.event(), format!("#lobby --> {} joined", ws.nick()));
    let members: Vec<&str> = joined["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    assert!(members.contains(&line.nick.as_str()), "{joined}");

    // A's line client to B's WebSocket client.
    line.send("hello from A");
    let m = messages(&mut ws, "lobby", 1, common::WAIT).remove(0);
    assert_eq!(m["seq"], 1, "{m}");
    assert_eq!(m["from"], line.nick.as_str(), "{m}");
    assert_eq!(m["text"], "hello from A", "{m}");
    assert!(
        m.get("cid").is_none(),
        "someone else's message has no cid: {m}"
    );

    // B's WebSocket client to A's line client: acknowledged with its cid
    // and seq once it came back from Redis.
    let ack = say(&mut ws, "lobby", "hello from B", "c-1");
    assert_eq!(ack["seq"], 2, "{ack}");
    assert_eq!(ack["from"], ws.nick().as_str(), "{ack}");
    assert_eq!(ack["text"], "hello from B", "{ack}");
    let ev = line.event();
    assert_eq!(ev, format!("#lobby <{}> hello from B", ws.nick()));

    line.send("and back again");
    let m = messages(&mut ws, "lobby", 1, common::WAIT).remove(0);
    assert_eq!(
        (m["seq"].as_u64(), m["text"].as_str()),
        (Some(3), Some("and back again"))
    );
    let ack = say(&mut ws, "lobby", "last", "c-2");
    assert_eq!(ack["seq"], 4, "{ack}");
    assert_eq!(line.event(), format!("#lobby <{}> last", ws.nick()));

    // Nothing twice: the sender got its acknowledgement and no room copy,
    // the line client nothing of its own.
    assert_eq!(
        more_messages(&mut ws, "lobby", Duration::from_millis(300)),
        Vec::<Value>::new()
    );
    ws.nothing_more();
    line.nothing_more();

    let log = chat.log("lobby");
    assert_eq!(
        log.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        log.iter()
            .map(|(_, e)| e["text"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["hello from A", "hello from B", "and back again", "last"]
    );
    assert_eq!(chat.redis.cli(&["GET", "natter:{lobby}:seq"]).trim(), "4");
    for s in &chat.natters {
        let st = s.stats();
        assert_eq!(st["redis"]["up"], true, "{st}");
        assert_eq!(s.metric("natter_redis_up"), Some(1.0));
    }
}

#[test]
fn concurrent_senders_on_three_processes_share_one_gap_free_order() {
    const SENDERS: usize = 3; // per process
    const EACH: usize = 25;
    const TOTAL: usize = 3 * SENDERS * EACH;
    let chat = Chat::start(3, &["--rate", "1000", "--burst", "1000"]);
    let mut receivers: Vec<WsClient> = chat.natters.iter().map(|s| ws_in(s, "busy").0).collect();

    let go = std::sync::Arc::new(std::sync::Barrier::new(3 * SENDERS));
    let workers: Vec<_> = (0..3 * SENDERS)
        .map(|w| {
            let addr = chat.natters[w % 3].addr;
            let go = go.clone();
            std::thread::spawn(move || {
                let mut c = WsClient::connect(addr, "");
                c.join("busy");
                go.wait();
                for i in 0..EACH {
                    c.send(
                        json!({"type": "say", "room": "busy", "text": format!("w{w} m{i}"),
                                  "cid": format!("w{w}-{i}"), "ref": format!("w{w}-{i}")}),
                    );
                }
                // Its acknowledgements, in the order it sent (one room, one
                // connection: its own messages keep their order).
                let mut acks = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                while acks.len() < EACH {
                    let left = deadline.saturating_duration_since(Instant::now());
                    assert!(!left.is_zero(), "sender {w}: {} acks of {EACH}", acks.len());
                    if let Some(v) = c.try_recv(left) {
                        assert_ne!(v["type"], "error", "sender {w}: {v}");
                        if v["type"] == "message" && v.get("cid").is_some() {
                            acks.push(v);
                        }
                    }
                }
                acks
            })
        })
        .collect();
    let mut acked: HashMap<u64, Value> = HashMap::new();
    for (w, h) in workers.into_iter().enumerate() {
        let acks = h.join().expect("a sender panicked");
        assert_eq!(
            texts(&acks),
            (0..EACH).map(|i| format!("w{w} m{i}")).collect::<Vec<_>>(),
            "sender {w}'s acknowledgements, in the order it sent"
        );
        let s = seqs(&acks);
        assert!(s.windows(2).all(|p| p[0] < p[1]), "sender {w}: {s:?}");
        for a in acks {
            let seq = a["seq"].as_u64().expect("seq");
            assert_eq!(a["cid"], a["ref"], "{a}");
            if let Some(other) = acked.insert(seq, a.clone()) {
                panic!("seq {seq} acknowledged twice: {other} and {a}");
            }
        }
    }
    assert_eq!(
        acked.keys().copied().collect::<BTreeSet<u64>>(),
        (1..=TOTAL as u64).collect::<BTreeSet<u64>>(),
        "every seq from 1 to {TOTAL} acknowledged once"
    );

    // Every process's receiver: the same messages, in seq order, once each.
    let mut seen: Vec<Vec<Value>> = Vec::new();
    for (p, r) in receivers.iter_mut().enumerate() {
        let got = messages(r, "busy", TOTAL, Duration::from_secs(20));
        assert_eq!(
            seqs(&got),
            (1..=TOTAL as u64).collect::<Vec<_>>(),
            "process {p}'s receiver: seqs 1..{TOTAL}, in order"
        );
        for m in &got {
            let seq = m["seq"].as_u64().expect("seq");
            assert_eq!(content(m), content(&acked[&seq]), "process {p}, seq {seq}");
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "processes 0 and 1 saw one order");
    assert_eq!(seen[0], seen[2], "processes 0 and 2 saw one order");
    for (p, r) in receivers.iter_mut().enumerate() {
        let extra = more_messages(r, "busy", Duration::from_millis(300));
        assert!(
            extra.is_empty(),
            "process {p}: more than sent: {:?}",
            seqs(&extra)
        );
    }
    assert_eq!(chat.xlen("busy"), TOTAL as u64);
    assert_eq!(
        chat.redis.cli(&["GET", "natter:{busy}:seq"]).trim(),
        TOTAL.to_string()
    );
}

#[test]
fn a_repeated_cid_is_answered_with_the_original_and_stored_once() {
    let chat = Chat::start(2, &[]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut watcher, _) = ws_in(b, "lobby");
    let (mut w, _) = ws_in(a, "lobby");

    // The same connection, after its first send came back: the original.
    let first = say(&mut w, "lobby", "first", "x1");
    assert_eq!(first["seq"], 1);
    let again = say(&mut w, "lobby", "first, again", "x1");
    assert_eq!(content(&again), content(&first), "{again}");
    // Redis keeps the cid under the sender's identity: one key, seq 1.
    let keys = chat.redis.cli(&["KEYS", "natter:cid:*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("natter:cid:{g:") && keys[0].ends_with("}:x1"),
        "{keys:?}"
    );
    assert_eq!(chat.redis.cli(&["GET", keys[0]]).trim(), "1");
    let ttl: i64 = chat
        .redis
        .cli(&["TTL", keys[0]])
        .trim()
        .parse()
        .expect("TTL");
    assert!(
        (590..=600).contains(&ttl),
        "a cid is kept 10 minutes: {ttl}"
    );

    // Twice at once, before the first came back: the second reaches the
    // publish script while Redis already has the first, and gets it.
    w.send(json!({"type": "say", "room": "lobby", "text": "twin", "cid": "x2", "ref": "t1"}));
    w.send(
        json!({"type": "say", "room": "lobby", "text": "twin, again", "cid": "x2", "ref": "t2"}),
    );
    let mut answers: HashMap<String, Value> = HashMap::new();
    let deadline = Instant::now() + common::WAIT;
    while answers.len() < 2 && Instant::now() < deadline {
        if let Some(v) = w.try_recv(deadline - Instant::now()) {
            if let Some(r) = v["ref"].as_str() {
                answers.insert(r.to_string(), v);
            }
        }
    }
    assert_eq!(answers.len(), 2, "answers to both: {answers:?}");
    let (t1, t2) = (&answers["t1"], &answers["t2"]);
    assert_eq!(t1["type"], "message", "{t1}");
    assert_eq!(t1["seq"], 2, "{t1}");
    assert_eq!(t1["text"], "twin", "{t1}");
    assert_eq!(
        content(t2),
        content(t1),
        "the second is answered with the first"
    );

    // Others saw each once.
    let got = messages(&mut watcher, "lobby", 2, common::WAIT);
    assert_eq!(seqs(&got), [1, 2]);
    assert_eq!(texts(&got), ["first", "twin"]);
    assert!(more_messages(&mut watcher, "lobby", Duration::from_millis(300)).is_empty());
    assert_eq!(chat.xlen("lobby"), 2);

    // The same author on another process: the account alice, registered
    // on A, logged in on B (accounts are shared through Redis; B reads them
    // again when A's registration is stored, so it may take a moment).
    let mut alice_a = WsClient::connect(a.addr, "nick=alice");
    alice_a.register("correct-horse-battery");
    alice_a.join("lobby");
    let mut alice_b = WsClient::connect(b.addr, "");
    let deadline = Instant::now() + common::WAIT;
    loop {
        let v = alice_b.ask(
            json!({"type": "login", "nick": "alice", "password": "correct-horse-battery"}),
            "account",
        );
        if v["type"] == "account" {
            break;
        }
        assert_eq!(v["code"], "login_failed", "{v}");
        assert!(Instant::now() < deadline, "B never learnt of alice: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    alice_b.join("lobby");
    let orig = say(&mut alice_a, "lobby", "from A", "k1");
    assert_eq!(orig["seq"], 3, "{orig}");
    assert_eq!(
        chat.redis.cli(&["GET", "natter:cid:{a:alice}:k1"]).trim(),
        "3"
    );
    let repeat = say(&mut alice_b, "lobby", "from B", "k1");
    assert_eq!(
        content(&repeat),
        content(&orig),
        "a cid repeated on another process by the same author gets the original"
    );
    assert_eq!(chat.xlen("lobby"), 3, "nothing new stored");
    let got = messages(&mut watcher, "lobby", 1, common::WAIT);
    assert_eq!(seqs(&got), [3]);
    assert!(
        more_messages(&mut watcher, "lobby", Duration::from_millis(300)).is_empty(),
        "the repeat sent nothing to the room"
    );
    // The seq goes on from there.
    assert_eq!(say(&mut alice_b, "lobby", "new", "k2")["seq"], 4);
}

#[test]
fn history_and_join_replays_are_the_same_on_every_process() {
    let chat = Chat::start(2, &["--history", "10"]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut w, _) = ws_in(a, "lobby");
    let sent: Vec<Value> = (1..=14)
        .map(|i| say(&mut w, "lobby", &format!("message {i}"), &format!("h{i}")))
        .collect();
    assert_eq!(seqs(&sent), (1..=14).collect::<Vec<_>>());

    let joined: Vec<Value> = [b, a, b]
        .iter()
        .map(|s| {
            let (c, j) = ws_in(s, "lobby");
            c.close();
            j
        })
        .collect();
    for j in &joined {
        assert_eq!(j["last_seq"], 14, "{j}");
        let ms = j["messages"].as_array().expect("messages");
        assert_eq!(
            seqs(ms),
            (5..=14).collect::<Vec<_>>(),
            "the latest --history"
        );
        for m in ms {
            let seq = m["seq"].as_u64().unwrap();
            assert_eq!(content(m), content(&sent[seq as usize - 1]));
        }
    }
    assert_eq!(joined[0]["messages"], joined[1]["messages"]);

    // Catch-up from a seq, on B.
    let mut c = WsClient::connect(b.addr, "");
    let j = c.ok(
        json!({"type": "join", "room": "lobby", "since": 3}),
        "joined",
    );
    assert_eq!(
        seqs(j["messages"].as_array().unwrap()),
        (4..=14).collect::<Vec<_>>()
    );
    assert!(j.get("gap").is_none() || j["gap"] == false, "{j}");

    // A line client on B: the history block, from Redis.
    let line = b.line_client();
    assert_eq!(line.greeting[2], "*** history of #lobby (10 messages)");
    assert!(
        line.greeting[3].ends_with(&format!("#lobby <{}> message 5", w.nick())),
        "{:?}",
        line.greeting
    );
    assert_eq!(
        line.greeting.last().map(String::as_str),
        Some("*** end of history")
    );

    // Pages, asked of A and of B.
    let mut on = [ws_in(a, "lobby").0, ws_in(b, "lobby").0];
    for (page, want) in [
        (json!({}), (1..=14).collect::<Vec<u64>>()),
        (json!({"limit": 3}), vec![12, 13, 14]),
        (json!({"before": 10, "limit": 3}), vec![7, 8, 9]),
        (json!({"after": 2, "limit": 4}), vec![3, 4, 5, 6]),
        (json!({"after": 12}), vec![13, 14]),
        (json!({"before": 1}), vec![]),
        (json!({"after": 14}), vec![]),
    ] {
        let mut pages = Vec::new();
        for c in on.iter_mut() {
            let mut req = json!({"type": "history", "room": "lobby"});
            for (k, v) in page.as_object().unwrap() {
                req[k] = v.clone();
            }
            let h = c.ok(req, "history");
            let ms = h["messages"].as_array().expect("messages").clone();
            assert_eq!(seqs(&ms), want, "history {page} on {}", c.nick());
            pages.push(ms);
        }
        assert_eq!(pages[0], pages[1], "history {page}: A and B agree");
    }
}

#[test]
fn redis_killed_and_restarted_loses_nothing_acknowledged() {
    let mut chat = Chat::start(2, &[]);
    let (mut w, _) = ws_in(&chat.natters[0], "lobby");
    let (mut r, _) = ws_in(&chat.natters[1], "lobby");
    let mut line = chat.natters[1].line_client();
    for i in 1..=5 {
        assert_eq!(
            say(&mut w, "lobby", &format!("before {i}"), &format!("b{i}"))["seq"],
            i
        );
    }
    assert_eq!(
        seqs(&messages(&mut r, "lobby", 5, common::WAIT)),
        [1, 2, 3, 4, 5]
    );
    for _ in 0..5 {
        line.event();
    }
    let failures_before = chat.natters[0]
        .metric("natter_redis_failures_total")
        .expect("metric");

    chat.redis.kill9();
    for s in &chat.natters {
        assert!(
            s.wait_health(503, Duration::from_secs(5)),
            "/healthz 503 with Redis gone"
        );
        assert_eq!(s.metric("natter_redis_up"), Some(0.0));
        assert_eq!(s.stats()["redis"]["up"], false);
    }
    let e = w.refused(
        json!({"type": "say", "room": "lobby", "text": "while down", "cid": "d1"}),
        "unavailable",
    );
    assert!(e["ref"].is_string(), "{e}");
    line_unavailable(&mut line, "typed while Redis is down");
    assert!(
        chat.natters[0]
            .metric("natter_redis_failures_total")
            .expect("metric")
            > failures_before
    );

    chat.redis.restart();
    for s in &chat.natters {
        assert!(
            s.wait_health(200, Duration::from_secs(15)),
            "/healthz 200 within 15 s of Redis's restart"
        );
        assert_eq!(s.metric("natter_redis_up"), Some(1.0));
    }
    // The refused send, retried with its cid: stored now, as seq 6 (the
    // counter survived: no seq is given twice).
    let retry = say(&mut w, "lobby", "while down", "d1");
    assert_eq!(retry["seq"], 6, "{retry}");
    let mut got = messages(&mut r, "lobby", 1, common::WAIT);
    line.send("from the line client, after");
    got.extend(messages(&mut r, "lobby", 1, common::WAIT));
    assert_eq!(say(&mut w, "lobby", "after", "a1")["seq"], 8);
    got.extend(messages(&mut r, "lobby", 1, common::WAIT));
    assert_eq!(seqs(&got), [6, 7, 8]);
    assert_eq!(
        texts(&got),
        ["while down", "from the line client, after", "after"]
    );
    assert!(more_messages(&mut r, "lobby", Duration::from_millis(300)).is_empty());

    let log = chat.log("lobby");
    assert_eq!(
        log.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    let stored: Vec<&str> = log
        .iter()
        .map(|(_, e)| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        stored,
        [
            "before 1",
            "before 2",
            "before 3",
            "before 4",
            "before 5",
            "while down",
            "from the line client, after",
            "after"
        ]
    );
}

#[test]
fn a_killed_subscriber_catches_up_from_the_stream_once_each() {
    let chat = Chat::start(2, &["--rate", "1000", "--burst", "1000"]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut ra, _) = ws_in(a, "lobby");
    let (mut rb, _) = ws_in(b, "lobby");
    let (mut w, _) = ws_in(a, "lobby");
    say(&mut w, "lobby", "one", "c1");
    say(&mut w, "lobby", "two", "c2");
    let mut want: Vec<String> = vec!["one".into(), "two".into()];
    for r in [&mut ra, &mut rb] {
        assert_eq!(texts(&messages(r, "lobby", 2, common::WAIT)), want);
    }
    let mut redis = chat.redis.client();
    let mut load = Vec::new();
    encode_load(&mut load);
    redis.send(&load);
    redis.next();
    let failures_b = b.metric("natter_redis_failures_total").expect("metric");

    let mut n = 0;
    for round in 0..3 {
        // Round 0 kills every subscriber (A's and B's); the others only
        // B's. In the same write, entries are published: Redis runs the
        // kill and then them before it reads anything else, so the killed
        // subscribers miss them and must read them from the stream.
        let kill = if round == 0 {
            vec!["CLIENT", "KILL", "TYPE", "pubsub"]
                .into_iter()
                .map(String::from)
                .collect()
        } else {
            let addr = chat
                .redis
                .subscriber_of(b.pid())
                .unwrap_or_else(|| panic!("B's subscriber connection, round {round}"));
            vec!["CLIENT".to_string(), "KILL".into(), "ADDR".into(), addr]
        };
        let mut out = Vec::new();
        natter::proto::resp::encode_command(&mut out, &kill);
        for _ in 0..5 {
            n += 1;
            let text = format!("missed {n}");
            external_publish(&mut out, "lobby", "outsider", &text, n);
            want.push(text);
        }
        redis.send(&out);
        let killed = redis.next();
        assert!(
            matches!(killed, natter::proto::resp::Value::Int(k) if k >= 1),
            "round {round}: CLIENT KILL answered {killed:?}"
        );
        for _ in 0..5 {
            let v = redis.next();
            assert!(!matches!(v, natter::proto::resp::Value::Error(_)), "{v:?}");
        }
        // And from natter A, while B comes back (its sender's copies need
        // A's subscriber, which in round 0 comes back too).
        for i in 0..3 {
            let text = format!("round {round} from A {i}");
            w.send(json!({"type": "say", "room": "lobby", "text": text,
                          "cid": format!("r{round}-{i}")}));
            want.push(text);
        }
        // Every receiver: exactly what was stored since, in order.
        let k = 5 + 3;
        for (name, r) in [("A", &mut ra), ("B", &mut rb)] {
            let got = messages(r, "lobby", k, Duration::from_secs(10));
            assert_eq!(
                texts(&got),
                want[want.len() - k..],
                "round {round}: process {name}'s receiver"
            );
        }
    }
    let total = want.len() as u64;
    for (name, r) in [("A", &mut ra), ("B", &mut rb)] {
        let extra = more_messages(r, "lobby", Duration::from_millis(500));
        assert!(extra.is_empty(), "{name}: duplicates {:?}", seqs(&extra));
        r.nothing_more();
    }
    let acks = messages(&mut w, "lobby", 9 + 15, Duration::from_secs(5));
    let mine: Vec<u64> = acks
        .iter()
        .filter(|m| m.get("cid").is_some())
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(mine.len(), 9, "the sender's 9 acknowledgements: {acks:?}");
    assert_eq!(chat.xlen("lobby"), total);
    assert!(
        b.metric("natter_redis_failures_total").expect("metric") >= failures_b + 3.0,
        "B's subscriber connection was dropped three times"
    );
    assert_eq!(b.stats()["redis"]["up"], true);
}

#[test]
fn a_stopped_redis_fails_the_send_in_flight_and_recovers() {
    let chat = Chat::start(2, &[]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut w, _) = ws_in(a, "lobby");
    let (mut r, _) = ws_in(b, "lobby");
    say(&mut w, "lobby", "one", "s1");
    say(&mut w, "lobby", "two", "s2");
    assert_eq!(seqs(&messages(&mut r, "lobby", 2, common::WAIT)), [1, 2]);

    chat.redis.stop();
    let stopped = Instant::now();
    w.send(json!({"type": "say", "room": "lobby", "text": "in flight", "cid": "s3", "ref": "f"}));
    let mut answer = None;
    while answer.is_none() && stopped.elapsed() < Duration::from_secs(8) {
        if let Some(v) = w.try_recv(Duration::from_millis(200)) {
            if v["ref"] == "f" {
                answer = Some((v, stopped.elapsed()));
            }
        }
    }
    let (answer, after) = answer.expect("an answer to the send in flight within 8 s");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "unavailable", "{answer}");
    assert!(
        (Duration::from_millis(2_500)..Duration::from_secs(6)).contains(&after),
        "answered after {after:?}; a command unanswered for 3 s fails"
    );
    assert_eq!(a.health(), 503, "/healthz while Redis is stopped");
    assert_eq!(a.metric("natter_redis_up"), Some(0.0));
    let rest = Duration::from_secs(4).saturating_sub(stopped.elapsed());
    std::thread::sleep(rest);
    chat.redis.cont();

    for s in [a, b] {
        assert!(
            s.wait_health(200, Duration::from_secs(15)),
            "/healthz 200 within 15 s of SIGCONT"
        );
    }
    // The send in flight may have been run by Redis after SIGCONT (it was
    // in its socket): then everyone, its sender too (whose request had
    // failed), gets it once as a room message, seq 3; and the retry with
    // its cid is answered with it. Stored once either way.
    let early = more_messages(&mut w, "lobby", Duration::from_millis(500));
    match early.as_slice() {
        [] => eprintln!("the send in flight was not run by Redis"),
        [m] => {
            assert_eq!(
                (m["seq"].as_u64(), m["text"].as_str()),
                (Some(3), Some("in flight"))
            );
            eprintln!("the send in flight was run by Redis after SIGCONT: {m}");
        }
        more => panic!("the sender got {more:?}"),
    }
    let retry = say(&mut w, "lobby", "in flight", "s3");
    assert_eq!(retry["seq"], 3, "{retry}");
    assert_eq!(say(&mut w, "lobby", "after", "s4")["seq"], 4);
    let got = messages(&mut r, "lobby", 2, Duration::from_secs(10));
    assert_eq!(seqs(&got), [3, 4]);
    assert_eq!(texts(&got), ["in flight", "after"]);
    assert!(more_messages(&mut r, "lobby", Duration::from_millis(300)).is_empty());
    let log = chat.log("lobby");
    assert_eq!(
        log.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(
        log.iter().filter(|(_, e)| e["text"] == "in flight").count(),
        1,
        "{log:?}"
    );
}

#[test]
fn a_natter_killed_leaves_the_others_chatting() {
    let mut chat = Chat::start(3, &[]);
    let mut la = chat.natters[0].line_client();
    let (mut wa, _) = ws_in(&chat.natters[0], "lobby");
    let (mut wb, _) = ws_in(&chat.natters[1], "lobby");
    let (mut wc, _) = ws_in(&chat.natters[2], "lobby");
    assert_eq!(say(&mut wb, "lobby", "from B", "b1")["seq"], 1);
    assert_eq!(line_said(&mut la), format!("#lobby <{}> from B", wb.nick()));
    assert_eq!(
        texts(&messages(&mut wa, "lobby", 1, common::WAIT)),
        ["from B"]
    );
    assert_eq!(
        texts(&messages(&mut wc, "lobby", 1, common::WAIT)),
        ["from B"]
    );

    let b = chat.natters.remove(1);
    common::kill9(b);
    let a = &chat.natters[0];
    assert_eq!(a.health(), 200);
    la.send("after B died");
    let got = messages(&mut wa, "lobby", 1, common::WAIT);
    assert_eq!(
        (seqs(&got), texts(&got)),
        (vec![2], vec!["after B died".to_string()])
    );
    assert_eq!(say(&mut wa, "lobby", "still here", "a1")["seq"], 3);
    assert_eq!(
        line_said(&mut la),
        format!("#lobby <{}> still here", wa.nick())
    );
    let got = messages(&mut wc, "lobby", 2, common::WAIT);
    assert_eq!(seqs(&got), [2, 3], "C, another process, too");
    for i in 0..5 {
        say(&mut wa, "lobby", &format!("more {i}"), &format!("m{i}"));
    }
    assert_eq!(
        seqs(&messages(&mut wc, "lobby", 5, common::WAIT)),
        [4, 5, 6, 7, 8]
    );
    for i in 0..5 {
        assert_eq!(
            line_said(&mut la),
            format!("#lobby <{}> more {i}", wa.nick())
        );
    }
    la.nothing_more();
    assert_eq!(chat.xlen("lobby"), 8);
    assert_eq!(a.metric("natter_redis_up"), Some(1.0));
}

/// The HTTP API reads Redis too (history pages, search, images), from any
/// process, answered in order behind one another on a keep-alive
/// connection, and `503` while Redis is down.
#[test]
fn the_http_api_and_images_are_the_same_on_every_process() {
    use base64::Engine as _;
    let mut chat = Chat::start(2, &[]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut w, _) = ws_in(a, "lobby");
    for (i, text) in ["apples and pears", "only pears", "apples again"]
        .iter()
        .enumerate()
    {
        say(&mut w, "lobby", text, &format!("h{i}"));
    }
    // An image sent through A.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.resize(3000, 7);
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    let echo = w.ok(
        json!({"type": "image", "room": "lobby", "data": data, "cid": "img"}),
        "message",
    );
    let url = echo["image"]["url"]
        .as_str()
        .expect("an image url")
        .to_string();
    for s in [a, b] {
        let page = common::http(s.addr, "GET", "/api/rooms/lobby/messages?limit=2");
        assert_eq!(page.status, 200);
        let page = page.json();
        let got: Vec<u64> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["seq"].as_u64())
            .collect();
        assert_eq!(got, [3, 4], "{page}");
        let after = common::http(s.addr, "GET", "/api/rooms/lobby/messages?after=1&limit=1").json();
        assert_eq!(after["messages"][0]["text"], "only pears", "{after}");
        let found = common::http(s.addr, "GET", "/api/rooms/lobby/search?q=apples").json();
        let seqs: Vec<u64> = found["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|r| r["seq"].as_u64().or_else(|| r["message"]["seq"].as_u64()))
            .collect();
        assert_eq!(seqs, [3, 1], "newest first: {found}");
        let img = common::http(s.addr, "GET", &url);
        assert_eq!(img.status, 200, "{url} on {}", s.addr);
        assert_eq!(img.header("content-type"), Some("image/png"));
        assert_eq!(img.body, png);
        assert_eq!(common::http(s.addr, "GET", "/media/00ff").status, 404);
    }
    // Pipelined on one connection: answered in the order asked.
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(b.addr).expect("connect");
        s.set_read_timeout(Some(common::WAIT)).expect("timeout");
        let reqs = format!(
            "GET {url} HTTP/1.1\r\nHost: x\r\n\r\n\
             GET /api/rooms/lobby/messages?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n\
             GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        s.write_all(reqs.as_bytes()).expect("write");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let text = String::from_utf8_lossy(&all);
        let image_at = text.find("image/png").expect("the image first");
        let page_at = text.find("\"messages\"").expect("then the page");
        let ok_at = text.rfind("\r\n\r\nok").expect("then healthz");
        assert!(image_at < page_at && page_at < ok_at, "{text}");
    }
    // Redis down: the API says so.
    chat.redis.kill9();
    let deadline = Instant::now() + common::WAIT;
    while common::http(a.addr, "GET", "/healthz").status != 503 {
        assert!(Instant::now() < deadline, "healthz never 503");
        std::thread::sleep(Duration::from_millis(50));
    }
    let page = common::http(a.addr, "GET", "/api/rooms/lobby/messages");
    assert_eq!(page.status, 503);
    chat.redis.restart();
}

/// A WebSocket session resumes on another process: after its connection
/// vanished (held on the first process), and after the first process was
/// killed. The same nick and rooms, a `joined` for each, and the rooms see
/// nothing of the move.
#[test]
fn a_session_resumes_on_another_process() {
    let mut chat = Chat::start(3, &[]);
    let mut line = chat.natters[2].line_client(); // in #lobby, on C: watches
    let a_addr = chat.natters[0].addr;
    let b = chat.natters[1].addr;
    // Vanished: held on A, resumed on B.
    let mut zed = WsClient::connect(a_addr, "nick=zed");
    zed.join("lobby");
    zed.join("dev");
    assert_eq!(line.event(), "#lobby --> zed joined");
    let token = zed.welcome["session"]
        .as_str()
        .expect("a session")
        .to_string();
    let _ = zed.ws.get_ref().shutdown(std::net::Shutdown::Both);
    std::thread::sleep(Duration::from_millis(200));
    let mut zed2 = WsClient::connect(b, &format!("resume={token}"));
    assert_eq!(zed2.nick(), "zed", "{}", zed2.welcome);
    assert_eq!(zed2.welcome["session"], token.as_str());
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let j = zed2.recv_type("joined");
        rooms.push(j["room"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(rooms, ["lobby", "dev"]);
    let ack = say(&mut zed2, "lobby", "moved", "z1");
    assert_eq!(ack["from"], "zed");
    assert_eq!(line_said(&mut line), "#lobby <zed> moved");
    // Nobody left or joined meanwhile, and zed is listed once.
    line.send("/who");
    let who = line.line_where(|l| l.starts_with("*** #lobby"));
    assert_eq!(who.matches("zed").count(), 1, "{who}");
    line.expect_silence(Duration::from_millis(300));

    // Killed: yan's process dies; yan resumes on B before the others drop
    // A's users, and the room sees nothing.
    let mut yan = WsClient::connect(a_addr, "nick=yan&room=lobby");
    let _ = yan.recv_type("joined");
    assert_eq!(line.event(), "#lobby --> yan joined");
    let token = yan.welcome["session"]
        .as_str()
        .expect("a session")
        .to_string();
    common::kill9(chat.natters.remove(0));
    let mut yan2 = WsClient::connect(b, &format!("resume={token}"));
    assert_eq!(yan2.nick(), "yan", "{}", yan2.welcome);
    assert_eq!(yan2.recv_type("joined")["room"], "lobby");
    say(&mut yan2, "lobby", "still here", "y1");
    assert_eq!(line_said(&mut line), "#lobby <yan> still here");
    // A is dropped by the survivors (within 15 s): yan stays.
    let deadline = Instant::now() + Duration::from_secs(16);
    while Instant::now() < deadline {
        if let Some(l) = line.try_line(Duration::from_millis(500)) {
            assert!(!l.contains("yan"), "the room saw yan move: {l}");
        }
    }
    line.send("/who");
    let who = line.line_where(|l| l.starts_with("*** #lobby"));
    assert!(who.contains("yan") && who.contains("zed"), "{who}");
    // An unknown token: a new client, as on one process.
    let fresh = WsClient::connect(b, "resume=00112233445566778899aabbccddeeff&nick=newbie");
    assert_eq!(fresh.nick(), "newbie");
    assert_ne!(fresh.welcome["session"], "00112233445566778899aabbccddeeff");
}

/// Edits, deletes and reactions across processes: numbered in the room's
/// one order, applied to the message as Redis keeps it (reactions made at
/// once on two processes both count), and history, catch-ups and search
/// show each message as it is now, from any process.
#[test]
fn edits_deletes_and_reactions_cross_processes() {
    let chat = Chat::start(2, &[]);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let (mut wa, _) = ws_in(a, "lobby");
    let (mut wb, _) = ws_in(b, "lobby");
    let first = say(&mut wa, "lobby", "teh first", "e1");
    let second = say(&mut wa, "lobby", "second, to go", "e2");
    let third = say(&mut wb, "lobby", "third", "e3");
    assert_eq!(
        seqs(&[first.clone(), second.clone(), third.clone()]),
        [1, 2, 3]
    );

    // An edit on A reaches B, numbered after the messages.
    let edited = wa.ok(
        json!({"type": "edit", "room": "lobby", "seq": 1, "text": "the first"}),
        "edit",
    );
    assert_eq!(
        (edited["seq"].as_u64(), edited["target"].as_u64()),
        (Some(4), Some(1)),
        "{edited}"
    );
    let seen = wb.recv_type("edit");
    assert_eq!(
        (seen["seq"].as_u64(), seen["text"].as_str()),
        (Some(4), Some("the first"))
    );

    // The same reaction from both processes at once: both count.
    wa.send(json!({"type": "react", "room": "lobby", "seq": 3, "emoji": "👍", "ref": "ra"}));
    wb.send(json!({"type": "react", "room": "lobby", "seq": 3, "emoji": "👍", "ref": "rb"}));
    let mut ons = Vec::new();
    for w in [&mut wa, &mut wb] {
        for _ in 0..2 {
            let r = w.recv_type("react");
            ons.push((r["seq"].as_u64().unwrap_or(0), r["on"].as_bool()));
        }
    }
    ons.sort();
    ons.dedup();
    assert_eq!(
        ons,
        [(5, Some(true)), (6, Some(true))],
        "both reactions are on"
    );

    // A delete on B of its own message; then an edit of it is refused.
    let deleted = wb.ok(
        json!({"type": "delete", "room": "lobby", "seq": 3}),
        "delete",
    );
    assert_eq!(deleted["seq"], 7, "{deleted}");
    assert_eq!(wa.recv_type("delete")["target"], 3);
    let refused = wb.ask(
        json!({"type": "edit", "room": "lobby", "seq": 3, "text": "back"}),
        "edit",
    );
    assert_eq!(refused["code"], "no_such_message", "{refused}");

    // History from either process: as it is now, changes not listed.
    for s in [a, b] {
        let mut w = WsClient::connect(s.addr, "");
        let j = w.join("lobby");
        let ms = j["messages"].as_array().expect("messages").clone();
        let shown: Vec<(u64, String, bool)> = ms
            .iter()
            .filter(|m| m["type"] == "message" || m.get("text").is_some())
            .filter(|m| m["target"].is_null())
            .map(|m| {
                (
                    m["seq"].as_u64().unwrap_or(0),
                    m["text"].as_str().unwrap_or("").to_string(),
                    m["deleted"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                (1, "the first".to_string(), false),
                (2, "second, to go".to_string(), false),
                (3, String::new(), true)
            ],
            "{j}"
        );
        let first = &ms[0];
        assert!(first["edited_ts"].as_u64().is_some(), "{first}");
        assert_eq!(j["last_seq"], 7);
        // A catch-up from seq 2 carries the changes to what it had.
        let mut w2 = WsClient::connect(s.addr, "");
        let c = w2.ok(
            json!({"type": "join", "room": "lobby", "since": 2}),
            "joined",
        );
        let kinds: Vec<(String, u64)> = c["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or("").to_string(),
                    m["seq"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        // The edit of 1 (at or before 2) comes as a change; 3 comes as it
        // is now (deleted), its reactions and delete folded into it.
        assert_eq!(
            kinds,
            [("message".to_string(), 3), ("edit".to_string(), 4)],
            "{c}"
        );
        // Search: the edited text is found, the deleted one is not.
        let found = w.ok(
            json!({"type": "search", "room": "lobby", "q": "first"}),
            "search",
        );
        assert_eq!(
            found["results"].as_array().map(Vec::len),
            Some(1),
            "{found}"
        );
        let gone = w.ok(
            json!({"type": "search", "room": "lobby", "q": "third"}),
            "search",
        );
        assert_eq!(gone["results"].as_array().map(Vec::len), Some(0), "{gone}");
    }
}

/// `natter accounts --redis URL ...` manages the accounts the servers share:
/// a running server sees an account added, a password changed (logins
/// logged out) and an account deleted, without a restart.
#[test]
fn natter_accounts_reaches_the_accounts_in_redis() {
    use std::io::Write as _;
    let chat = Chat::start(1, &[]);
    let s = &chat.natters[0];
    let url = chat.redis.url();
    let accounts = |args: &[&str], stdin: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.args(["--redis", &url, "accounts"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("natter accounts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("password");
        let out = child.wait_with_output().expect("natter accounts ran");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = accounts(&["add", "Olga"], "first-password-1\n");
    assert!(ok, "{err}");
    assert!(err.contains("account Olga added"), "{err}");
    let (ok, _, err) = accounts(&["add", "olga"], "another-password\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    // The server reads it (told by the script): Olga logs in.
    let mut w = WsClient::connect(s.addr, "");
    let deadline = Instant::now() + common::WAIT;
    let token = loop {
        let v = w.ask(
            json!({"type": "login", "nick": "olga", "password": "first-password-1"}),
            "account",
        );
        if v["type"] == "account" {
            break v["token"].as_str().expect("a token").to_string();
        }
        assert!(Instant::now() < deadline, "the server never saw Olga: {v}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (ok, list, err) = accounts(&["list"], "");
    assert!(ok, "{err}");
    assert!(list.starts_with("Olga  registered "), "{list}");
    // A new password: the login token no longer works, the new password does.
    let (ok, _, err) = accounts(&["passwd", "olga"], "second-password-2\n");
    assert!(
        ok && err.contains("1 remembered login is logged out"),
        "{err}"
    );
    let deadline = Instant::now() + common::WAIT;
    loop {
        let mut w2 = WsClient::connect(s.addr, "");
        let v = w2.ask(
            json!({"type": "login", "nick": "olga", "token": token}),
            "account",
        );
        if v["type"] == "error" {
            assert_eq!(v["code"], "login_failed", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "the old token still works: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, _, err) = accounts(&["del", "OLGA"], "");
    assert!(ok && err.contains("account Olga deleted"), "{err}");
    let (ok, _, err) = accounts(&["list"], "");
    assert!(ok && err.contains("no accounts"), "{err}");
    // A Redis that is not there: a clear error, exit 1.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_natter"));
    let out = cmd
        .args(["--redis", "redis://127.0.0.1:1", "accounts", "list"])
        .output()
        .expect("natter accounts");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Redis at redis://127.0.0.1:1"), "{err}");
}

/// Search through Redis (a sieve in `read.lua`, then natter's own match)
/// finds what one process alone (SQLite's full-text index) finds: the
/// same messages, sent from two processes, asked the same questions
/// (case, accents, phrases, a prefix, another script, `from:`, an edit, a
/// delete).
#[test]
fn search_through_redis_finds_what_sqlite_finds() {
    let chat = Chat::start(2, &[]);
    let alone = Server::start(&["--db", TempDb::new("rsearch-alone").arg()]);
    let texts = [
        ("ana", "Un Café noir, s'il vous plaît"),
        ("bo", "CAFE au lait"),
        ("ana", "plain tea, no coffee"),
        ("bo", "a naïve question about cafés"),
        ("ana", "日本 の お茶"),
        ("bo", "the quick brown fox"),
        ("ana", "quickly, the brown dog"),
        ("bo", "brown quick fox, not a phrase"),
        ("ana", "to be edited: cafe"),
        ("bo", "to be deleted: cafe"),
    ];
    // Each server's clients, by nick: on Redis ana on one process and bo
    // on the other.
    let mut shared = vec![
        WsClient::connect(chat.natters[0].addr, "nick=ana&room=lobby"),
        WsClient::connect(chat.natters[1].addr, "nick=bo&room=lobby"),
    ];
    let mut single = vec![
        WsClient::connect(alone.addr, "nick=ana&room=lobby"),
        WsClient::connect(alone.addr, "nick=bo&room=lobby"),
    ];
    for clients in [&mut shared, &mut single] {
        for c in clients.iter_mut() {
            c.recv_type("joined");
        }
        for (i, (nick, text)) in texts.iter().enumerate() {
            let who = usize::from(*nick == "bo");
            say(&mut clients[who], "lobby", text, &format!("s{i}"));
        }
        clients[0].ok(
            json!({"type": "edit", "room": "lobby", "seq": 9, "text": "edited away"}),
            "edit",
        );
        clients[1].ok(
            json!({"type": "delete", "room": "lobby", "seq": 10}),
            "delete",
        );
    }
    let found = |c: &mut WsClient, q: &str| -> Vec<u64> {
        let v = c.ok(json!({"type": "search", "room": "lobby", "q": q}), "search");
        v["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|r| r["seq"].as_u64().unwrap_or(0))
            .collect()
    };
    let queries = [
        // The last word also as a prefix: "cafés" too.
        ("cafe", vec![4, 2, 1]),
        ("CAFÉ", vec![4, 2, 1]),
        ("cafés", vec![4]),
        ("naive", vec![4]),
        ("\"brown fox\"", vec![6]),
        ("quick brown", vec![8, 6]),
        ("qui", vec![8, 7, 6]),
        ("日本", vec![5]),
        ("from:bo cafe", vec![4, 2]),
        ("from:ana", vec![9, 7, 5, 3, 1]),
        ("edited", vec![9]),
        ("deleted", vec![]),
        ("coffee tea", vec![3]),
        ("nothing", vec![]),
    ];
    for (q, want) in queries {
        let alone_found = found(&mut single[1], q);
        assert_eq!(alone_found, want, "one process, {q:?}");
        for (i, c) in shared.iter_mut().enumerate() {
            assert_eq!(found(c, q), want, "process {i} through Redis, {q:?}");
        }
    }
}
