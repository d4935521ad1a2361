//! The WebSocket JSON protocol against the real binary, with `tungstenite`
//! (a client library natter did not write) and raw frames for the rules.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use natter::proto::ws::encode_client_frame;
use serde_json::{json, Value};

use common::*;

/// Room messages, actions and DMs as fast as a test can send them.
const FAST: [&str; 4] = ["--rate", "100000", "--burst", "100000"];

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Asserts that `v` has exactly the fields `expected` (any order).
fn assert_keys(v: &Value, expected: &[&str]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(keys(v), want, "fields of {v}");
}

/// The fields of `joined`: version 1's, the room settings version 2 added
/// (always present), and `extra`.
fn joined_keys<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut keys = vec![
        "type",
        "room",
        "members",
        "messages",
        "last_seq",
        "store_id",
        "topic",
        "owner",
        "ops",
        "invite_only",
        "role",
        "accounts",
    ];
    keys.extend_from_slice(extra);
    keys
}

/// Asserts that `v["ts"]` is milliseconds since the epoch, close to now.
fn assert_ts(v: &Value) {
    let ts = v["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric ts in {v}"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(
        ts + 600_000 > now && ts < now + 600_000,
        "ts {ts} is not near now ({now}) in {v}"
    );
}

/// Asserts that nothing arrives for `wait`.
fn assert_silent(c: &mut WsClient, wait: Duration) {
    if let Some(v) = c.try_recv(wait) {
        panic!("{}: expected silence, got {v}", c.welcome["nick"]);
    }
}

/// The `seq`s of a list of MESSAGE objects.
fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {messages}"))
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

/// Connects with `nick` and joins `room` at once (reads the `joined`).
fn ws_in(addr: SocketAddr, nick: &str, room: &str) -> WsClient {
    let mut c = WsClient::connect(addr, &format!("nick={nick}&room={room}"));
    assert_eq!(c.nick(), nick);
    let joined = c.recv();
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["room"], room);
    c
}

/// Sends `n` messages `PREFIX1`..`PREFIXn` to `room` and reads their echoes.
fn fill(c: &mut WsClient, room: &str, prefix: &str, n: usize) {
    for i in 1..=n {
        c.send(json!({"type":"say","room":room,"text":format!("{prefix}{i}")}));
    }
    let mut got = 0;
    while got < n {
        let v = c.recv();
        if v["type"] == "message" && v["from"] == c.nick().as_str() {
            got += 1;
        }
    }
}

/// Closes the TCP connection without a close frame: the client vanished.
fn vanish(c: WsClient) {
    let _ = c.ws.get_ref().shutdown(Shutdown::Both);
}

fn session(c: &WsClient) -> String {
    c.welcome["session"]
        .as_str()
        .expect("session token")
        .to_string()
}

#[test]
fn a_line_client_and_a_websocket_client_talk_in_one_room() {
    let s = Server::start(&[]);
    let mut line = s.line_client();
    let mut ws = WsClient::connect(s.addr, "nick=webby&room=lobby");
    assert_eq!(ws.nick(), "webby");
    let joined = ws.recv();
    assert_eq!(joined["type"], "joined");
    assert_eq!(joined["room"], "lobby");
    assert_eq!(line.event(), "#lobby --> webby joined");
    ws.send(json!({"type":"say","room":"lobby","text":"hello nc","cid":"c1","ref":"r1"}));
    let echo = ws.recv();
    assert_eq!(echo["type"], "message");
    assert_eq!(echo["seq"], 1);
    assert_eq!(echo["cid"], "c1");
    assert_eq!(echo["ref"], "r1");
    assert_eq!(line.event(), "#lobby <webby> hello nc");
    line.send("hello ws");
    let m = ws.recv();
    assert_eq!(m["type"], "message");
    assert_eq!(m["from"], line.nick.as_str());
    assert_eq!(m["text"], "hello ws");
    assert_eq!(m["seq"], 2);
}

// ---------------------------------------------------------------------------
// Connecting: welcome, ?nick=, ?room=
// ---------------------------------------------------------------------------

#[test]
fn welcome_carries_nick_server_session_store_id_and_limits() {
    let s = Server::start(&[]);
    let a = WsClient::connect(s.addr, "");
    let w = &a.welcome;
    assert_keys(
        w,
        &[
            "type", "nick", "server", "session", "store_id", "limits", "account",
        ],
    );
    // A guest: the account is there, and null.
    assert_eq!(w["account"], Value::Null);
    let nick = w["nick"].as_str().expect("nick");
    assert!(
        !nick.is_empty() && nick.len() <= 24 && nick.as_bytes()[0].is_ascii_alphabetic(),
        "generated nick {nick:?}"
    );
    let server = w["server"].as_str().expect("server");
    assert!(server.starts_with("natter/"), "{server}");
    assert!(server.len() > "natter/".len(), "{server}");
    let token = w["session"].as_str().expect("session");
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "session token {token:?} is not >= 128 bits of hex"
    );
    let store_id = w["store_id"].as_str().expect("store_id");
    assert!(!store_id.is_empty());
    assert_eq!(
        w["limits"],
        json!({"max_message":4000,"max_ws_message":2097152,"max_image":1048576,
               "rate":10,"burst":20,"history":50})
    );
    // Another client gets another session and the same store.
    let b = WsClient::connect(s.addr, "");
    assert_ne!(b.welcome["session"], w["session"]);
    assert_ne!(b.nick(), a.nick());
    assert_eq!(b.welcome["store_id"], w["store_id"]);
}

#[test]
fn welcome_limits_follow_the_command_line() {
    let s = Server::start(&[
        "--max-message",
        "100",
        "--max-ws-message",
        "5000",
        "--rate",
        "3",
        "--burst",
        "7",
        "--history",
        "9",
    ]);
    let a = WsClient::connect(s.addr, "");
    assert_eq!(
        a.welcome["limits"],
        json!({"max_message":100,"max_ws_message":5000,"max_image":1048576,
               "rate":3,"burst":7,"history":9})
    );
}

#[test]
fn nick_in_the_query_valid_invalid_and_taken() {
    let s = Server::start(&[]);
    let mut alice = WsClient::connect(s.addr, "nick=Alice");
    assert_eq!(alice.nick(), "Alice");
    assert_silent(&mut alice, Duration::from_millis(300));

    // Invalid: a generated nick, then an error event.
    let mut bad = WsClient::connect(s.addr, "nick=9lives");
    assert_ne!(bad.nick(), "9lives");
    let e = bad.recv();
    assert_keys(&e, &["type", "code", "message"]);
    assert_eq!(e["code"], "nick_invalid");
    assert!(e["message"].is_string());

    // Taken, compared case-insensitively.
    let mut dup = WsClient::connect(s.addr, "nick=ALICE");
    assert_ne!(dup.nick().to_lowercase(), "alice");
    let e = dup.recv();
    assert_keys(&e, &["type", "code", "message"]);
    assert_eq!(e["code"], "nick_taken");
    // The generated nick really is its nick.
    dup.send(json!({"type":"join","room":"lobby"}));
    let j = dup.recv();
    assert_eq!(j["members"], json!([dup.nick()]));
}

#[test]
fn room_in_the_query_joins_at_once_and_without_it_no_room_is_joined() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();

    // No room asked for: no joined, the lobby sees nothing.
    let mut loner = WsClient::connect(s.addr, "nick=loner");
    assert_silent(&mut loner, Duration::from_millis(300));
    line.expect_silence(Duration::from_millis(200));
    loner.send(json!({"type":"who","room":"lobby","ref":"w"}));
    assert_eq!(
        loner.recv(),
        json!({"type":"who","room":"lobby","members":[line.nick],"ref":"w"})
    );

    // ?room= (with a leading # and capitals) joins at once.
    let mut a = WsClient::connect(s.addr, "nick=amy&room=%23Lobby");
    let j = a.recv();
    assert_keys(&j, &joined_keys(&[]));
    assert_eq!(j["room"], "lobby");
    let mut members = vec!["amy".to_string(), line.nick.clone()];
    members.sort_by_key(|n| n.to_lowercase());
    assert_eq!(j["members"], json!(members));
    assert_eq!(j["messages"], json!([]));
    assert_eq!(j["last_seq"], 0);
    assert_eq!(j["store_id"], a.welcome["store_id"]);
    assert_eq!(line.event(), "#lobby --> amy joined");
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

#[test]
fn nick_request_is_confirmed_and_shown_to_room_mates() {
    let s = Server::start(&[]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "bob", "lobby");
    let _ = a.recv_type("presence");
    a.send(json!({"type":"nick","nick":"alicia","ref":"n1"}));
    assert_eq!(a.recv(), json!({"type":"nick","nick":"alicia","ref":"n1"}));
    let p = b.recv();
    assert_keys(&p, &["type", "room", "event", "nick", "old", "ts"]);
    assert_eq!(p["room"], "lobby");
    assert_eq!(p["event"], "nick");
    assert_eq!(p["nick"], "alicia");
    assert_eq!(p["old"], "alice");
    assert_ts(&p);
    // The old nick is free again, the new one is taken.
    b.send(json!({"type":"nick","nick":"Alice"}));
    assert_eq!(b.recv(), json!({"type":"nick","nick":"Alice"}));
    b.send(json!({"type":"nick","nick":"ALICIA","ref":"n2"}));
    let e = b.recv();
    assert_eq!(e["code"], "nick_taken");
    assert_eq!(e["ref"], "n2");
}

#[test]
fn join_answers_members_messages_last_seq_and_store_id() {
    let s = Server::start(&[]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    a.send(json!({"type":"say","room":"lobby","text":"one"}));
    let m1 = a.recv();
    a.send(json!({"type":"say","room":"lobby","text":"two","action":true}));
    let m2 = a.recv();

    let mut b = WsClient::connect(s.addr, "nick=Bob");
    b.send(json!({"type":"join","room":"LOBBY","ref":"j1"}));
    let j = b.recv();
    assert_keys(&j, &joined_keys(&["ref"]));
    assert_eq!(j["room"], "lobby");
    assert_eq!(j["members"], json!(["alice", "Bob"]));
    assert_eq!(j["last_seq"], 2);
    assert_eq!(j["store_id"], b.welcome["store_id"]);
    assert_eq!(j["ref"], "j1");
    let msgs = j["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 2);
    assert_keys(&msgs[0], &["type", "room", "seq", "ts", "from", "text"]);
    assert_eq!(msgs[0]["seq"], 1);
    assert_eq!(msgs[0]["text"], "one");
    assert_eq!(msgs[0]["ts"], m1["ts"]);
    assert_keys(
        &msgs[1],
        &["type", "room", "seq", "ts", "from", "text", "action"],
    );
    assert_eq!(msgs[1]["action"], true);
    assert_eq!(msgs[1]["ts"], m2["ts"]);

    let p = a.recv();
    assert_keys(&p, &["type", "room", "event", "nick", "ts"]);
    assert_eq!(p["event"], "join");
    assert_eq!(p["nick"], "Bob");
    assert_eq!(p["room"], "lobby");
    assert_ts(&p);
}

#[test]
fn join_replays_the_latest_history_messages() {
    let s = Server::start(&["--history", "5", "--rate", "1000", "--burst", "1000"]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    fill(&mut a, "lobby", "m", 12);
    let mut b = WsClient::connect(s.addr, "nick=bob");
    b.send(json!({"type":"join","room":"lobby"}));
    let j = b.recv();
    assert_eq!(seqs(&j["messages"]), vec![8, 9, 10, 11, 12]);
    assert_eq!(j["messages"][4]["text"], "m12");
    assert_eq!(j["last_seq"], 12);
}

#[test]
fn join_with_since_catches_up_exactly_and_says_gap_past_500() {
    let s = Server::start(&FAST);
    let mut a = ws_in(s.addr, "alice", "big");
    fill(&mut a, "big", "m", 520);

    let mut b = WsClient::connect(s.addr, "nick=bob");
    // A few missed: exactly those, no gap field.
    b.send(json!({"type":"join","room":"big","since":517,"ref":"s1"}));
    let j = b.recv();
    assert_keys(&j, &joined_keys(&["ref"]));
    assert_eq!(seqs(&j["messages"]), vec![518, 519, 520]);
    assert_eq!(j["messages"][0]["text"], "m518");
    assert_eq!(j["last_seq"], 520);
    b.send(json!({"type":"leave","room":"big"}));
    assert_eq!(b.recv()["type"], "left");

    // Nothing missed.
    b.send(json!({"type":"join","room":"big","since":520}));
    let j = b.recv();
    assert_eq!(j["messages"], json!([]));
    assert!(j.get("gap").is_none(), "{j}");
    b.send(json!({"type":"leave","room":"big"}));
    assert_eq!(b.recv()["type"], "left");

    // Exactly 500 missed: all of them, no gap.
    b.send(json!({"type":"join","room":"big","since":20}));
    let j = b.recv();
    assert_eq!(seqs(&j["messages"]), (21..=520).collect::<Vec<_>>());
    assert!(j.get("gap").is_none(), "{}", j["gap"]);
    b.send(json!({"type":"leave","room":"big"}));
    assert_eq!(b.recv()["type"], "left");

    // More than 500 missed: the first 500 after since, and gap.
    let mut c = WsClient::connect(s.addr, "nick=carol&room=big&since=3");
    let j = c.recv();
    assert_eq!(j["type"], "joined");
    assert_eq!(j["gap"], true);
    assert_eq!(seqs(&j["messages"]), (4..=503).collect::<Vec<_>>());
    assert_eq!(j["last_seq"], 520);
    // ... and the client pages on with history after.
    c.send(json!({"type":"history","room":"big","after":503,"ref":"h"}));
    let h = c.recv();
    assert_eq!(h["ref"], "h");
    assert_eq!(seqs(&h["messages"]), (504..=520).collect::<Vec<_>>());

    // limit is at most 200.
    c.send(json!({"type":"history","room":"big","limit":1000}));
    let h = c.recv();
    assert_eq!(seqs(&h["messages"]), (321..=520).collect::<Vec<_>>());
    c.send(json!({"type":"history","room":"big","after":0,"limit":201}));
    let h = c.recv();
    assert_eq!(seqs(&h["messages"]), (1..=200).collect::<Vec<_>>());
}

#[test]
fn create_answers_joined_with_an_unlisted_room() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice&room=lobby");
    let _ = a.recv();
    a.send(json!({"type":"create","ref":"c1"}));
    let j = a.recv();
    assert_keys(&j, &joined_keys(&["ref"]));
    assert_eq!(j["type"], "joined");
    assert_eq!(j["ref"], "c1");
    let code = j["room"].as_str().expect("room").to_string();
    assert!(
        code.len() == 6
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "room code {code:?}"
    );
    assert_eq!(j["members"], json!(["alice"]));
    assert_eq!(j["messages"], json!([]));
    assert_eq!(j["last_seq"], 0);

    // Unlisted: rooms shows the lobby only.
    a.send(json!({"type":"rooms","ref":"r"}));
    assert_eq!(
        a.recv(),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":1}],"ref":"r"})
    );
    // The code lets anyone in.
    let mut b = WsClient::connect(s.addr, &format!("nick=bob&room={code}"));
    let jb = b.recv();
    assert_eq!(jb["room"], code.as_str());
    assert_eq!(jb["members"], json!(["alice", "bob"]));
    let p = a.recv();
    assert_eq!(p["event"], "join");
    assert_eq!(p["room"], code.as_str());
    b.send(json!({"type":"rooms"}));
    assert_eq!(
        b.recv(),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":1}]})
    );
}

#[test]
fn leave_answers_left_and_the_room_sees_it() {
    let s = Server::start(&[]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "bob", "lobby");
    let _ = a.recv_type("presence");
    a.send(json!({"type":"leave","room":"#Lobby","ref":"l1"}));
    assert_eq!(a.recv(), json!({"type":"left","room":"lobby","ref":"l1"}));
    let p = b.recv();
    assert_keys(&p, &["type", "room", "event", "nick", "ts", "reason"]);
    assert_eq!(p["event"], "leave");
    assert_eq!(p["nick"], "alice");
    assert_eq!(p["reason"], "leave");
    assert_ts(&p);
    // Gone: saying there is not_in_room, and the room's members say so.
    a.send(json!({"type":"say","room":"lobby","text":"hi","ref":"x"}));
    let e = a.recv();
    assert_eq!(e["code"], "not_in_room");
    assert_eq!(e["ref"], "x");
    b.send(json!({"type":"who","room":"lobby"}));
    assert_eq!(
        b.recv(),
        json!({"type":"who","room":"lobby","members":["bob"]})
    );
    assert_silent(&mut b, Duration::from_millis(200));
}

#[test]
fn say_echoes_with_cid_and_ref_to_the_sender_only() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "bob", "lobby");
    let _ = a.recv_type("presence");
    let mut line = s.line_client();
    let _ = a.recv_type("presence");
    let _ = b.recv_type("presence");

    a.send(json!({"type":"say","room":"lobby","text":"hi all","cid":"k3j9","ref":"r1"}));
    let echo = a.recv();
    assert_keys(
        &echo,
        &["type", "room", "seq", "ts", "from", "text", "cid", "ref"],
    );
    assert_eq!(echo["type"], "message");
    assert_eq!(echo["room"], "lobby");
    assert_eq!(echo["seq"], 1);
    assert_eq!(echo["from"], "alice");
    assert_eq!(echo["text"], "hi all");
    assert_eq!(echo["cid"], "k3j9");
    assert_eq!(echo["ref"], "r1");
    assert_ts(&echo);
    let m = b.recv();
    assert_keys(&m, &["type", "room", "seq", "ts", "from", "text"]);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["ts"], echo["ts"]);
    assert_eq!(m["text"], "hi all");
    assert_eq!(line.event(), "#lobby <alice> hi all");

    // An action; no cid, no ref.
    a.send(json!({"type":"say","room":"lobby","text":"waves","action":true}));
    let echo = a.recv();
    assert_keys(
        &echo,
        &["type", "room", "seq", "ts", "from", "text", "action"],
    );
    assert_eq!(echo["action"], true);
    assert_eq!(echo["seq"], 2);
    let m = b.recv();
    assert_keys(&m, &["type", "room", "seq", "ts", "from", "text", "action"]);
    assert_eq!(m["action"], true);
    assert_eq!(line.event(), "#lobby * alice waves");

    // "action": false is a plain message; the field is left out.
    a.send(json!({"type":"say","room":"lobby","text":"plain","action":false}));
    assert!(a.recv().get("action").is_none());
    assert!(b.recv().get("action").is_none());
    assert_eq!(line.event(), "#lobby <alice> plain");

    // Control characters become U+FFFD; unknown fields are ignored.
    a.send(json!({"type":"say","room":"lobby","text":"a\u{1b}[31mb\tc","color":"red"}));
    assert_eq!(a.recv()["text"], "a\u{fffd}[31mb\tc");
    assert_eq!(b.recv()["text"], "a\u{fffd}[31mb\tc");
    assert_eq!(line.event(), "#lobby <alice> a\u{fffd}[31mb\tc");

    // A line client's message reaches both WebSocket clients, with no echo
    // back to the line client.
    line.send("from nc");
    for c in [&mut a, &mut b] {
        let m = c.recv();
        assert_keys(&m, &["type", "room", "seq", "ts", "from", "text"]);
        assert_eq!(m["from"], line.nick.as_str());
        assert_eq!(m["seq"], 5);
    }
    line.expect_silence(Duration::from_millis(200));
    assert_silent(&mut a, Duration::from_millis(100));
}

#[test]
fn dm_goes_to_both_ends() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    let mut b = WsClient::connect(s.addr, "nick=bob");
    let mut line = s.line_client();

    a.send(json!({"type":"dm","to":"BOB","text":"psst","cid":"d1","ref":"m1"}));
    let mine = a.recv();
    assert_eq!(mine["type"], "dm");
    assert_eq!(mine["from"], "alice");
    assert_eq!(mine["to"], "bob");
    assert_eq!(mine["text"], "psst");
    assert_eq!(mine["ref"], "m1");
    assert_ts(&mine);
    for k in keys(&mine) {
        assert!(
            ["type", "from", "to", "ts", "text", "cid", "ref"].contains(&k.as_str()),
            "unexpected field {k} in {mine}"
        );
    }
    let theirs = b.recv();
    assert_keys(&theirs, &["type", "from", "to", "ts", "text"]);
    assert_eq!(theirs["from"], "alice");
    assert_eq!(theirs["to"], "bob");
    assert_eq!(theirs["text"], "psst");
    assert_eq!(theirs["ts"], mine["ts"]);
    line.expect_silence(Duration::from_millis(200));

    // To and from a line client.
    a.send(json!({"type":"dm","to":line.nick,"text":"hello nc"}));
    let mine = a.recv();
    assert_eq!(mine["to"], line.nick.as_str());
    assert_eq!(line.event(), "(dm) <alice> hello nc");
    line.send("/msg alice hello ws");
    let got = a.recv();
    assert_keys(&got, &["type", "from", "to", "ts", "text"]);
    assert_eq!(got["from"], line.nick.as_str());
    assert_eq!(got["to"], "alice");
    assert_eq!(got["text"], "hello ws");

    // DMs are not stored: no room history anywhere, nothing for bob.
    assert_silent(&mut b, Duration::from_millis(200));
}

#[test]
fn history_pages_with_exclusive_bounds_and_ascending_seq() {
    let s = Server::start(&FAST);
    let mut a = ws_in(s.addr, "alice", "hist");
    // Some with a cid: the stored history never carries one.
    for i in 1..=60 {
        a.send(json!({"type":"say","room":"hist","text":format!("m{i}"),"cid":format!("c{i}")}));
    }
    for _ in 0..60 {
        assert_eq!(a.recv()["type"], "message");
    }

    let mut ask = |req: Value| -> Value {
        a.send(req);
        let h = a.recv();
        assert_eq!(h["type"], "history", "{h}");
        h
    };
    let h = ask(json!({"type":"history","room":"hist","ref":"h0"}));
    assert_keys(&h, &["type", "room", "messages", "ref"]);
    assert_eq!(h["room"], "hist");
    assert_eq!(h["ref"], "h0");
    assert_eq!(seqs(&h["messages"]), (11..=60).collect::<Vec<_>>());
    for m in h["messages"].as_array().expect("messages") {
        assert_keys(m, &["type", "room", "seq", "ts", "from", "text"]);
        assert_eq!(m["text"], format!("m{}", m["seq"]));
        assert_eq!(m["from"], "alice");
    }
    let h = ask(json!({"type":"history","room":"hist","before":20,"limit":5}));
    assert_eq!(seqs(&h["messages"]), vec![15, 16, 17, 18, 19]);
    let h = ask(json!({"type":"history","room":"hist","before":3}));
    assert_eq!(seqs(&h["messages"]), vec![1, 2]);
    let h = ask(json!({"type":"history","room":"hist","before":1}));
    assert_eq!(h["messages"], json!([]));
    let h = ask(json!({"type":"history","room":"hist","after":55}));
    assert_eq!(seqs(&h["messages"]), vec![56, 57, 58, 59, 60]);
    let h = ask(json!({"type":"history","room":"hist","after":10,"limit":3}));
    assert_eq!(seqs(&h["messages"]), vec![11, 12, 13]);
    let h = ask(json!({"type":"history","room":"hist","after":60}));
    assert_eq!(h["messages"], json!([]));
    let h = ask(json!({"type":"history","room":"hist","limit":2}));
    assert_eq!(seqs(&h["messages"]), vec![59, 60]);
    // The room is optional: the current room.
    let h = ask(json!({"type":"history","limit":1}));
    assert_eq!(h["room"], "hist");
    assert_eq!(seqs(&h["messages"]), vec![60]);
    // A room that never had messages: empty, not an error.
    let h = ask(json!({"type":"history","room":"Quiet"}));
    assert_eq!(h["room"], "quiet");
    assert_eq!(h["messages"], json!([]));
}

#[test]
fn typing_reaches_other_websocket_members_only_and_is_not_stored() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "bob", "lobby");
    let _ = a.recv_type("presence");
    let mut line = s.line_client();
    let _ = a.recv_type("presence");
    let _ = b.recv_type("presence");

    a.send(json!({"type":"typing","room":"lobby","ref":"t1"}));
    let t = b.recv();
    assert_keys(&t, &["type", "room", "nick", "ts"]);
    assert_eq!(t["type"], "typing");
    assert_eq!(t["room"], "lobby");
    assert_eq!(t["nick"], "alice");
    assert_ts(&t);
    assert_silent(&mut a, Duration::from_millis(200));
    line.expect_silence(Duration::from_millis(200));

    // Not stored: no history, no seq used.
    a.send(json!({"type":"history","room":"lobby"}));
    assert_eq!(a.recv()["messages"], json!([]));
    a.send(json!({"type":"say","room":"lobby","text":"first"}));
    assert_eq!(a.recv()["seq"], 1);
    assert_eq!(b.recv()["seq"], 1);

    // Typing in a room one is not in.
    a.send(json!({"type":"typing","room":"elsewhere","ref":"t2"}));
    let e = a.recv();
    assert_eq!(e["code"], "not_in_room");
    assert_eq!(e["ref"], "t2");
}

#[test]
fn rooms_and_who_list_members() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    line.send("/nick zed");
    let _ = line.line();
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "Bob", "lobby");
    b.send(json!({"type":"join","room":"dev"}));
    assert_eq!(b.recv()["type"], "joined");

    a.send(json!({"type":"rooms","ref":"r1"}));
    assert_eq!(
        a.recv_type("rooms"),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":3},{"name":"dev","members":1}],
               "ref":"r1"})
    );
    a.send(json!({"type":"who","room":"lobby","ref":"w1"}));
    assert_eq!(
        a.recv_type("who"),
        json!({"type":"who","room":"lobby","members":["alice","Bob","zed"],"ref":"w1"})
    );
    a.send(json!({"type":"who","room":"#DEV"}));
    assert_eq!(
        a.recv_type("who"),
        json!({"type":"who","room":"dev","members":["Bob"]})
    );
    a.send(json!({"type":"who","room":"nobody-here"}));
    assert_eq!(
        a.recv_type("who"),
        json!({"type":"who","room":"nobody-here","members":[]})
    );
}

#[test]
fn errors_carry_their_code_and_the_ref() {
    let s = Server::start(&[]);
    let _alice = WsClient::connect(s.addr, "nick=alice");
    let mut c = ws_in(s.addr, "carl", "lobby");

    let mut expect_error = |raw: String, code: &str, r#ref: Option<&str>| {
        c.ws.send(tungstenite::Message::text(raw.clone()))
            .expect("send");
        let e = c.recv();
        assert_eq!(e["type"], "error", "{raw} -> {e}");
        assert_eq!(e["code"], code, "{raw} -> {e}");
        assert!(e["message"].is_string(), "{e}");
        match r#ref {
            Some(r) => {
                assert_keys(&e, &["type", "code", "message", "ref"]);
                assert_eq!(e["ref"], r, "{raw} -> {e}");
            }
            None => assert_keys(&e, &["type", "code", "message"]),
        }
    };
    expect_error("{not json".into(), "bad_json", None);
    expect_error("".into(), "bad_json", None);
    expect_error(
        r#"{"type":"frobnicate","ref":"u1"}"#.into(),
        "unknown_type",
        Some("u1"),
    );
    expect_error(r#"{"ref":"t0"}"#.into(), "bad_request", Some("t0"));
    expect_error(r#"{"type":7,"ref":"t1"}"#.into(), "bad_request", Some("t1"));
    expect_error(r#"["type","say"]"#.into(), "bad_request", None);
    let bad_requests = [
        r#"{"type":"say","room":"lobby","ref":"b1"}"#,
        r#"{"type":"say","room":"lobby","text":5,"ref":"b1"}"#,
        r#"{"type":"say","room":"lobby","text":"x","action":"yes","ref":"b1"}"#,
        r#"{"type":"say","room":"lobby","text":"x","cid":5,"ref":"b1"}"#,
        r#"{"type":"join","ref":"b1"}"#,
        r#"{"type":"join","room":7,"ref":"b1"}"#,
        r#"{"type":"join","room":"lobby","since":"x","ref":"b1"}"#,
        r#"{"type":"join","room":"lobby","since":-1,"ref":"b1"}"#,
        r#"{"type":"leave","ref":"b1"}"#,
        r#"{"type":"nick","ref":"b1"}"#,
        r#"{"type":"nick","nick":["x"],"ref":"b1"}"#,
        r#"{"type":"dm","to":"alice","ref":"b1"}"#,
        r#"{"type":"dm","text":"hi","ref":"b1"}"#,
        r#"{"type":"history","room":"lobby","limit":"ten","ref":"b1"}"#,
        r#"{"type":"history","room":"lobby","before":1.5,"ref":"b1"}"#,
        r#"{"type":"typing","ref":"b1"}"#,
        r#"{"type":"who","room":5,"ref":"b1"}"#,
    ];
    for raw in bad_requests {
        expect_error(raw.into(), "bad_request", Some("b1"));
    }
    expect_error(
        r#"{"type":"say","room":"elsewhere","text":"x","ref":"e1"}"#.into(),
        "not_in_room",
        Some("e1"),
    );
    expect_error(
        r#"{"type":"leave","room":"elsewhere","ref":"e2"}"#.into(),
        "not_in_room",
        Some("e2"),
    );
    expect_error(
        r#"{"type":"join","room":"no spaces","ref":"e3"}"#.into(),
        "room_invalid",
        Some("e3"),
    );
    expect_error(
        format!(
            r#"{{"type":"join","room":"{}","ref":"e4"}}"#,
            "r".repeat(33)
        ),
        "room_invalid",
        Some("e4"),
    );
    expect_error(
        r#"{"type":"say","room":"bad!","text":"x","ref":"e5"}"#.into(),
        "room_invalid",
        Some("e5"),
    );
    expect_error(
        r#"{"type":"nick","nick":"ALICE","ref":"e6"}"#.into(),
        "nick_taken",
        Some("e6"),
    );
    expect_error(
        r#"{"type":"nick","nick":"1abc","ref":"e7"}"#.into(),
        "nick_invalid",
        Some("e7"),
    );
    expect_error(
        r#"{"type":"dm","to":"nobody","text":"x","ref":"e8"}"#.into(),
        "no_such_user",
        Some("e8"),
    );
    let long = "é".repeat(2000) + "x"; // 4001 bytes
    expect_error(
        json!({"type":"say","room":"lobby","text":long,"ref":"e9"}).to_string(),
        "too_long",
        Some("e9"),
    );
    expect_error(
        json!({"type":"dm","to":"alice","text":long,"ref":"e10"}).to_string(),
        "too_long",
        Some("e10"),
    );
    // 4000 bytes is fine.
    let max = "é".repeat(2000);
    c.send(json!({"type":"say","room":"lobby","text":max,"ref":"ok"}));
    let echo = c.recv();
    assert_eq!(echo["type"], "message");
    assert_eq!(echo["ref"], "ok");
    assert_eq!(echo["text"], max.as_str());
    // The connection is still fine after all of it.
    c.send(json!({"type":"rooms","extra":{"ignored":true},"ref":"last"}));
    assert_eq!(
        c.recv(),
        json!({"type":"rooms","rooms":[{"name":"lobby","members":1}],"ref":"last"})
    );
}

#[test]
fn line_and_websocket_clients_see_each_others_presence() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let old_line_nick = line.nick.clone();
    let mut ws = WsClient::connect(s.addr, "nick=webby");
    ws.send(json!({"type":"join","room":"lobby"}));
    let j = ws.recv();
    let mut members = vec!["webby".to_string(), old_line_nick.clone()];
    members.sort_by_key(|n| n.to_lowercase());
    assert_eq!(j["members"], json!(members));
    assert_eq!(line.event(), "#lobby --> webby joined");

    // Messages and actions both ways.
    line.send("hi from nc");
    let m = ws.recv();
    assert_eq!(m["from"], old_line_nick.as_str());
    assert_eq!(m["text"], "hi from nc");
    line.send("/me waves");
    let m = ws.recv();
    assert_eq!(m["text"], "waves");
    assert_eq!(m["action"], true);
    ws.send(json!({"type":"say","room":"lobby","text":"waves back","action":true}));
    let _ = ws.recv();
    assert_eq!(line.event(), "#lobby * webby waves back");

    // Nick changes both ways.
    line.send("/nick lino");
    assert_eq!(line.line(), "*** you are now known as lino");
    let p = ws.recv();
    assert_eq!(p["event"], "nick");
    assert_eq!(p["nick"], "lino");
    assert_eq!(p["old"], old_line_nick.as_str());
    assert_eq!(p["room"], "lobby");
    ws.send(json!({"type":"nick","nick":"webster"}));
    assert_eq!(ws.recv(), json!({"type":"nick","nick":"webster"}));
    assert_eq!(line.event(), "#lobby --- webby is now known as webster");

    // Joins and leaves both ways.
    line.send("/join dev");
    assert_eq!(line.line(), "*** you joined #dev (1 here: lino)");
    ws.send(json!({"type":"join","room":"dev"}));
    let j = ws.recv();
    assert_eq!(j["members"], json!(["lino", "webster"]));
    assert_eq!(line.event(), "#dev --> webster joined");
    ws.send(json!({"type":"leave","room":"dev"}));
    assert_eq!(ws.recv(), json!({"type":"left","room":"dev"}));
    assert_eq!(line.event(), "#dev <-- webster left");
    line.send("/leave lobby");
    assert_eq!(line.line(), "*** you left #lobby");
    let p = ws.recv();
    assert_eq!(p["event"], "leave");
    assert_eq!(p["nick"], "lino");
    assert_eq!(p["reason"], "leave");
    line.send("/join lobby");
    let _ = line.line_where(|l| l.starts_with("*** you joined #lobby"));
    let p = ws.recv();
    assert_eq!(p["event"], "join");
    assert_eq!(p["nick"], "lino");

    // A /quit with a message.
    line.send("/quit bye all");
    let p = ws.recv();
    assert_keys(
        &p,
        &["type", "room", "event", "nick", "ts", "reason", "message"],
    );
    assert_eq!(p["reason"], "quit");
    assert_eq!(p["message"], "bye all");

    // A line client whose connection ends: disconnect.
    let line2 = s.line_client();
    let nick2 = line2.nick.clone();
    let p = ws.recv();
    assert_eq!(p["event"], "join");
    line2.close();
    let p = ws.recv();
    assert_eq!(p["event"], "leave");
    assert_eq!(p["nick"], nick2.as_str());
    assert_eq!(p["reason"], "disconnect");
}

// ---------------------------------------------------------------------------
// Idempotent sends, sessions, resume
// ---------------------------------------------------------------------------

#[test]
fn a_repeated_cid_is_stored_once_and_answered_with_the_original() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let mut b = ws_in(s.addr, "bob", "lobby");
    let _ = a.recv_type("presence");
    let mut line = s.line_client();
    let _ = a.recv_type("presence");
    let _ = b.recv_type("presence");

    a.send(json!({"type":"say","room":"lobby","text":"once","cid":"k1","ref":"r1"}));
    let original = a.recv();
    assert_eq!(original["seq"], 1);
    assert_eq!(b.recv()["seq"], 1);
    assert_eq!(line.event(), "#lobby <alice> once");

    // The same cid again, even with other text: the original comes back.
    a.send(json!({"type":"say","room":"lobby","text":"twice?","cid":"k1","ref":"r2"}));
    let again = a.recv();
    assert_eq!(again["type"], "message");
    assert_eq!(again["seq"], 1);
    assert_eq!(again["text"], "once");
    assert_eq!(again["ts"], original["ts"]);
    assert_eq!(again["cid"], "k1");
    assert_eq!(again["ref"], "r2");
    assert_silent(&mut b, Duration::from_millis(300));
    line.expect_silence(Duration::from_millis(100));

    // After an abrupt drop and a resume, still the original.
    let token = session(&a);
    vanish(a);
    let mut a2 = WsClient::connect(s.addr, &format!("resume={token}"));
    assert_eq!(a2.nick(), "alice");
    let j = a2.recv();
    assert_eq!(j["type"], "joined");
    assert_eq!(seqs(&j["messages"]), vec![1]);
    a2.send(json!({"type":"say","room":"lobby","text":"thrice?","cid":"k1","ref":"r3"}));
    let again = a2.recv();
    assert_eq!(again["seq"], 1);
    assert_eq!(again["text"], "once");
    assert_eq!(again["ref"], "r3");
    assert_eq!(again["cid"], "k1");
    assert_silent(&mut b, Duration::from_millis(300));
    line.expect_silence(Duration::from_millis(100));

    // A new cid is a new message; history holds each once.
    a2.send(json!({"type":"say","room":"lobby","text":"next","cid":"k2"}));
    assert_eq!(a2.recv()["seq"], 2);
    assert_eq!(b.recv()["seq"], 2);
    a2.send(json!({"type":"history","room":"lobby"}));
    let h = a2.recv();
    assert_eq!(seqs(&h["messages"]), vec![1, 2]);

    // DMs too.
    a2.send(json!({"type":"dm","to":"bob","text":"psst","cid":"d1","ref":"m1"}));
    let dm = a2.recv();
    assert_eq!(dm["type"], "dm");
    assert_eq!(b.recv()["text"], "psst");
    a2.send(json!({"type":"dm","to":"bob","text":"psst!!","cid":"d1","ref":"m2"}));
    let again = a2.recv();
    assert_eq!(again["type"], "dm");
    assert_eq!(again["text"], "psst");
    assert_eq!(again["ts"], dm["ts"]);
    assert_eq!(again["ref"], "m2");
    assert_silent(&mut b, Duration::from_millis(300));
}

#[test]
fn resume_after_an_abrupt_drop_keeps_nick_and_rooms_silently() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut b = ws_in(s.addr, "bob", "lobby");
    let mut a = ws_in(s.addr, "alice", "lobby");
    a.send(json!({"type":"join","room":"dev"}));
    assert_eq!(a.recv()["room"], "dev");
    assert_eq!(line.event(), "#lobby --> bob joined");
    assert_eq!(line.event(), "#lobby --> alice joined");
    assert_eq!(b.recv()["event"], "join");

    let token = session(&a);
    vanish(a);
    std::thread::sleep(Duration::from_millis(300));
    line.expect_silence(Duration::from_millis(300));
    assert_silent(&mut b, Duration::from_millis(100));

    // While held, the nick stays taken.
    let mut other = WsClient::connect(s.addr, "nick=alice");
    assert_ne!(other.nick(), "alice");
    assert_eq!(other.recv()["code"], "nick_taken");

    let mut a2 = WsClient::connect(s.addr, &format!("resume={token}"));
    assert_eq!(a2.nick(), "alice");
    let t2 = a2.welcome["session"].as_str().expect("session");
    assert!(t2.len() >= 32, "{t2}");
    let j1 = a2.recv();
    let j2 = a2.recv();
    assert_eq!(j1["type"], "joined");
    assert_eq!(j2["type"], "joined");
    let mut rooms = vec![j1["room"].clone(), j2["room"].clone()];
    rooms.sort_by_key(|r| r.to_string());
    assert_eq!(rooms, vec![json!("dev"), json!("lobby")]);
    let lobby = if j1["room"] == "lobby" { &j1 } else { &j2 };
    let mut members = vec!["alice".to_string(), "bob".to_string(), line.nick.clone()];
    members.sort_by_key(|n| n.to_lowercase());
    assert_eq!(lobby["members"], json!(members));

    // Room mates saw no leave and no join.
    line.expect_silence(Duration::from_millis(500));
    assert_silent(&mut b, Duration::from_millis(100));

    a2.send(json!({"type":"say","room":"lobby","text":"back"}));
    assert_eq!(a2.recv()["seq"], 1);
    let m = b.recv();
    assert_eq!(m["from"], "alice");
    assert_eq!(m["text"], "back");
    assert_eq!(line.event(), "#lobby <alice> back");
    b.send(json!({"type":"who","room":"lobby"}));
    assert_eq!(b.recv()["members"], json!(members));
}

#[test]
fn an_unknown_resume_token_gets_a_fresh_session() {
    let s = Server::start(&[]);
    let c = WsClient::connect(
        s.addr,
        "resume=0123456789abcdef0123456789abcdef&nick=newbie",
    );
    let token = session(&c);
    assert_ne!(token, "0123456789abcdef0123456789abcdef");
    assert_eq!(c.nick(), "newbie");
}

#[test]
fn resuming_while_the_old_connection_is_open_closes_it_with_4000() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut b = ws_in(s.addr, "bob", "lobby");
    let mut a = ws_in(s.addr, "alice", "lobby");
    assert_eq!(b.recv()["event"], "join");
    let _ = line.line_where(|l| l.ends_with("alice joined"));

    let mut a2 = WsClient::connect(s.addr, &format!("resume={}", session(&a)));
    assert_eq!(a2.nick(), "alice");
    assert_eq!(a2.recv()["room"], "lobby");

    // The old connection gets close code 4000, then the TCP close.
    let deadline = Instant::now() + WAIT;
    let code = loop {
        assert!(
            Instant::now() < deadline,
            "no close frame for the old connection"
        );
        match a.ws.read() {
            Ok(tungstenite::Message::Close(Some(frame))) => break u16::from(frame.code),
            Ok(tungstenite::Message::Close(None)) => panic!("close frame without a code"),
            Ok(_) => continue,
            Err(e) => panic!("old connection: {e} before a close frame"),
        }
    };
    assert_eq!(code, 4000);
    let mut sink = [0u8; 64];
    let stream = a.ws.get_mut();
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    match stream.read(&mut sink) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("old connection not closed: {other:?}"),
    }

    line.expect_silence(Duration::from_millis(400));
    assert_silent(&mut b, Duration::from_millis(100));
    a2.send(json!({"type":"say","room":"lobby","text":"moved"}));
    assert_eq!(a2.recv()["text"], "moved");
    assert_eq!(b.recv()["from"], "alice");
    assert_eq!(line.event(), "#lobby <alice> moved");
}

#[test]
fn a_vanished_client_leaves_with_timeout_after_the_grace() {
    let s = Server::start(&["--resume-grace", "1", "--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut b = ws_in(s.addr, "bob", "lobby");
    let a = ws_in(s.addr, "alice", "lobby");
    assert_eq!(b.recv()["event"], "join");
    let _ = line.line_where(|l| l.ends_with("alice joined"));

    let token = session(&a);
    let gone = Instant::now();
    vanish(a);
    // Held at first...
    line.expect_silence(Duration::from_millis(400));
    // ... then the room sees it leave.
    let p = b.recv();
    assert_keys(&p, &["type", "room", "event", "nick", "ts", "reason"]);
    assert_eq!(p["event"], "leave");
    assert_eq!(p["nick"], "alice");
    assert_eq!(p["reason"], "timeout");
    assert_eq!(line.event(), "#lobby <-- alice left (timeout)");
    assert!(
        gone.elapsed() >= Duration::from_millis(800),
        "left after {:?}, before the 1 s grace",
        gone.elapsed()
    );
    // The session is gone: its token starts afresh, and the nick is free.
    let c = WsClient::connect(s.addr, &format!("resume={token}&nick=alice"));
    assert_ne!(session(&c), token);
    assert_eq!(c.nick(), "alice");
}

/// A browser closes its WebSockets with 1001 ("going away") when the page is
/// reloaded or its tab closed: the session is held as if it had vanished, so
/// the room sees nothing, and the reloaded page resumes it.
#[test]
fn a_going_away_close_is_held_for_resume_and_invisible() {
    use tungstenite::protocol::frame::coding::CloseCode;
    use tungstenite::protocol::CloseFrame;
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut b = ws_in(s.addr, "bob", "lobby");
    let mut a = ws_in(s.addr, "alice", "lobby");
    assert_eq!(b.recv()["event"], "join");
    let _ = line.line_where(|l| l.ends_with("alice joined"));
    let token = session(&a);

    a.ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    }))
    .expect("close");
    // The server completes the close handshake with the same code.
    loop {
        match a.ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(f.code, CloseCode::Away);
            }
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("after close: {e}"),
        }
    }
    line.expect_silence(Duration::from_millis(500));
    assert_silent(&mut b, Duration::from_millis(100));

    let a2 = WsClient::connect(s.addr, &format!("resume={token}"));
    assert_eq!(a2.nick(), "alice");
    line.expect_silence(Duration::from_millis(300));
    assert_silent(&mut b, Duration::from_millis(100));
}

#[test]
fn a_close_frame_makes_the_room_see_the_leave_at_once() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut b = ws_in(s.addr, "bob", "lobby");
    let mut a = ws_in(s.addr, "alice", "lobby");
    assert_eq!(b.recv()["event"], "join");
    let _ = line.line_where(|l| l.ends_with("alice joined"));

    a.ws.close(None).expect("close");
    // The default grace is 120 s: the leave within WAIT proves "at once".
    let p = b.recv();
    assert_keys(&p, &["type", "room", "event", "nick", "ts", "reason"]);
    assert_eq!(p["event"], "leave");
    assert_eq!(p["nick"], "alice");
    assert_eq!(p["reason"], "quit");
    assert_eq!(line.event(), "#lobby <-- alice left (quit)");
    // The server completed the close handshake.
    loop {
        match a.ws.read() {
            Ok(tungstenite::Message::Close(_)) | Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("after close: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

#[test]
fn flooding_gets_rate_limited() {
    let s = Server::start(&[]);
    let mut a = ws_in(s.addr, "alice", "lobby");
    let started = Instant::now();
    let refs: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
    for r in &refs {
        a.send(json!({"type":"say","room":"lobby","text":"spam","ref":r}));
    }
    let sending = started.elapsed();
    let mut echoes = 0;
    let mut limited = Vec::new();
    while let Some(v) = a.try_recv(Duration::from_millis(700)) {
        match v["type"].as_str() {
            Some("message") => echoes += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited", "{v}");
                assert!(refs.contains(&v["ref"].as_str().unwrap_or("").to_string()));
                limited.push(v);
            }
            _ => panic!("unexpected {v}"),
        }
    }
    // Burst 20, then 10/s: the sends took a moment at most.
    let allowed = 20 + (sending.as_secs_f64() * 10.0).ceil() as usize + 1;
    assert!(
        (20..=allowed).contains(&echoes),
        "{echoes} of 40 went through"
    );
    assert!(!limited.is_empty(), "no rate_limited error");
    assert!(
        limited.len() <= 1 + sending.as_secs() as usize,
        "{} rate_limited errors within {sending:?}",
        limited.len()
    );
}

#[test]
fn a_websocket_client_that_stops_reading_is_dropped_as_a_slow_consumer() {
    let s = Server::start(&[
        "--max-outbound",
        "65536",
        "--sniff-ms",
        "50",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    // The staller never reads after the handshake (until it is dropped).
    let staller = stalling_socket(s.addr);
    staller.set_read_timeout(Some(WAIT)).expect("timeout");
    let url = format!("ws://{}/ws?nick=staller&room=lobby", s.addr);
    let (staller_ws, resp) =
        tungstenite::client(url.as_str(), staller.try_clone().expect("clone")).expect("handshake");
    assert_eq!(resp.status(), 101);

    let mut watcher = ws_in(s.addr, "watcher", "lobby");
    let mut flooder = s.line_client();
    assert_eq!(watcher.recv()["event"], "join");

    let text = "x".repeat(900);
    let mut sent = 0;
    let mut got = 0;
    let mut dropped = false;
    let started = Instant::now();
    while sent < 4000 && !(dropped && got == sent && sent >= 200) {
        for _ in 0..50 {
            flooder.send(&format!("{sent} {text}"));
            sent += 1;
        }
        // The watcher keeps up and sees every message, in order.
        while got < sent {
            let v = watcher.recv();
            if v["type"] == "presence" {
                assert_eq!(v["event"], "leave", "{v}");
                assert_eq!(v["nick"], "staller");
                assert_eq!(v["reason"], "slow_consumer");
                dropped = true;
                continue;
            }
            assert_eq!(v["type"], "message");
            assert_eq!(v["from"], flooder.nick.as_str());
            let t = v["text"].as_str().expect("text");
            assert!(t.starts_with(&format!("{got} ")), "{:.40}", t);
            got += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the room stalled"
        );
    }
    if !dropped {
        let v = watcher.recv();
        assert_eq!(v["event"], "leave", "{v}");
        assert_eq!(v["nick"], "staller");
        assert_eq!(v["reason"], "slow_consumer");
    }
    let l = flooder.line_where(|l| l.contains("staller left"));
    assert_eq!(
        strip_clock(&l).as_deref(),
        Some("#lobby <-- staller left (slow consumer)")
    );
    // The staller reads again at once (within the 2 s the server lingers):
    // behind the messages the kernel still held, the goodbye is a close
    // frame with 1008 (policy violation), then the connection ends.
    let mut staller_ws = staller_ws;
    let mut messages = 0;
    loop {
        match staller_ws.read() {
            Ok(tungstenite::Message::Text(_)) => messages += 1,
            Ok(tungstenite::Message::Close(Some(close))) => {
                assert_eq!(u16::from(close.code), 1008, "{close:?}");
                assert_eq!(&*close.reason, "slow consumer");
                break;
            }
            Ok(other) => panic!("unexpected {other:?} after {messages} messages"),
            Err(e) => panic!("no close frame after {messages} messages: {e}"),
        }
    }
    let mut buf = vec![0u8; 1 << 16];
    match (&staller).read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{n} bytes after the close frame"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the slow consumer's connection was not closed")
        }
        Err(_) => {} // a reset
    }
    watcher.send(json!({"type":"who","room":"lobby"}));
    let who = watcher.recv_type("who");
    assert!(!who["members"]
        .as_array()
        .expect("members")
        .contains(&json!("staller")));
}

// ---------------------------------------------------------------------------
// WebSocket rules, with raw frames over a hand-made handshake
// ---------------------------------------------------------------------------

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONT: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// One server frame: FIN, opcode, payload.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A WebSocket client written by hand: the RFC 6455 example key, frames
/// from `natter::proto::ws::encode_client_frame` or raw bytes.
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    welcome: Value,
}

impl RawWs {
    fn connect(addr: SocketAddr, query: &str) -> RawWs {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let target = if query.is_empty() {
            "/ws".to_string()
        } else {
            format!("/ws?{query}")
        };
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("handshake");
        let mut c = RawWs {
            stream,
            buf: Vec::new(),
            welcome: Value::Null,
        };
        let head = loop {
            if let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(c.buf[..end].to_vec()).expect("ASCII head");
                c.buf.drain(..end + 4);
                break head;
            }
            assert!(c.more(), "closed during the handshake");
        };
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "handshake answered {head:?}"
        );
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        assert!(!lower.contains("sec-websocket-extensions"), "{head}");
        let w = c.frame().expect("welcome frame");
        assert_eq!((w.fin, w.opcode), (true, TEXT));
        c.welcome = serde_json::from_slice(&w.payload).expect("welcome JSON");
        assert_eq!(c.welcome["type"], "welcome");
        c
    }

    /// Reads more bytes into `buf`; false at the end of the stream.
    fn more(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read: {e}"),
        }
    }

    fn fill(&mut self, n: usize) -> bool {
        while self.buf.len() < n {
            if !self.more() {
                return false;
            }
        }
        true
    }

    /// The next frame; `None` at the end of the stream.
    fn frame(&mut self) -> Option<Frame> {
        if !self.fill(2) {
            assert!(self.buf.is_empty(), "stream ended inside a frame header");
            return None;
        }
        let (b0, b1) = (self.buf[0], self.buf[1]);
        assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
        assert_eq!(b0 & 0x70, 0, "server frame with RSV bits");
        let (len, header) = match b1 & 0x7f {
            126 => {
                assert!(self.fill(4));
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                assert!(self.fill(10));
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        assert!(self.fill(header + len), "stream ended inside a frame");
        let payload = self.buf[header..header + len].to_vec();
        self.buf.drain(..header + len);
        Some(Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            payload,
        })
    }

    /// The next text frame's JSON, skipping control frames.
    fn json(&mut self) -> Value {
        loop {
            let f = self
                .frame()
                .expect("a text frame, not the end of the stream");
            match f.opcode {
                TEXT => return serde_json::from_slice(&f.payload).expect("JSON"),
                PING | PONG => continue,
                other => panic!("unexpected frame opcode {other}: {f:?}"),
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send(&encode_client_frame(fin, 0, opcode, payload, MASK));
    }

    /// Reads up to the server's close frame (skipping text frames), asserts
    /// its code (`None`: an empty close body), then the TCP close.
    fn expect_close(&mut self, code: Option<u16>, what: &str) {
        loop {
            let f = self
                .frame()
                .unwrap_or_else(|| panic!("{what}: stream ended without a close frame"));
            match f.opcode {
                TEXT | PING | PONG => continue,
                CLOSE => {
                    assert!(f.fin, "{what}: fragmented close frame");
                    match code {
                        None => assert!(f.payload.is_empty(), "{what}: {:?}", f.payload),
                        Some(code) => {
                            assert!(f.payload.len() >= 2, "{what}: close body {:?}", f.payload);
                            let got = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                            assert_eq!(got, code, "{what}: close code");
                            assert!(std::str::from_utf8(&f.payload[2..]).is_ok());
                        }
                    }
                    break;
                }
                other => panic!("{what}: unexpected opcode {other}"),
            }
        }
        self.expect_eof(what);
    }

    /// The server closes the TCP connection (within `WAIT`).
    fn expect_eof(&mut self, what: &str) {
        assert!(self.buf.is_empty(), "{what}: bytes after the close frame");
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Ok(n) => panic!("{what}: {n} more bytes after the close frame"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{what}: the server did not close the connection: {e}"),
        }
    }
}

/// A close frame body: code and reason.
fn close_body(code: u16, reason: &str) -> Vec<u8> {
    let mut b = code.to_be_bytes().to_vec();
    b.extend_from_slice(reason.as_bytes());
    b
}

#[test]
fn handshake_by_hand_and_a_masked_text_frame_work() {
    let s = Server::start(&[]);
    let mut c = RawWs::connect(s.addr, "nick=raw&room=lobby");
    assert_eq!(c.welcome["nick"], "raw");
    assert_eq!(c.json()["type"], "joined");
    c.send_frame(true, TEXT, br#"{"type":"who","room":"lobby","ref":"w"}"#);
    assert_eq!(
        c.json(),
        json!({"type":"who","room":"lobby","members":["raw"],"ref":"w"})
    );
}

#[test]
fn protocol_violations_close_with_the_rfc_code() {
    let s = Server::start(&[]);
    let mut top_bit = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 2];
    top_bit.extend_from_slice(&MASK);
    top_bit.extend_from_slice(b"{}");
    let cases: Vec<(&str, Vec<Vec<u8>>, u16)> = vec![
        ("unmasked text frame", vec![b"\x81\x02{}".to_vec()], 1002),
        (
            "RSV1 set",
            vec![encode_client_frame(true, 0b100, TEXT, b"{}", MASK)],
            1002,
        ),
        (
            "RSV3 set",
            vec![encode_client_frame(true, 0b001, TEXT, b"{}", MASK)],
            1002,
        ),
        (
            "reserved data opcode 3",
            vec![encode_client_frame(true, 0, 0x3, b"{}", MASK)],
            1002,
        ),
        (
            "reserved control opcode 0xB",
            vec![encode_client_frame(true, 0, 0xB, b"", MASK)],
            1002,
        ),
        (
            "binary frame",
            vec![encode_client_frame(true, 0, BINARY, b"{}", MASK)],
            1003,
        ),
        (
            "invalid UTF-8",
            vec![encode_client_frame(
                true,
                0,
                TEXT,
                b"{\"a\":\"\xff\xfe\"}",
                MASK,
            )],
            1007,
        ),
        (
            "invalid UTF-8 across fragments",
            vec![
                encode_client_frame(false, 0, TEXT, b"{\"a\":\"\xc3", MASK),
                encode_client_frame(true, 0, CONT, b"(\"}", MASK),
            ],
            1007,
        ),
        (
            "invalid UTF-8 in an unfinished message",
            vec![encode_client_frame(false, 0, TEXT, b"\xed\xa0\x80", MASK)],
            1007,
        ),
        (
            "message ending inside a UTF-8 sequence",
            vec![
                encode_client_frame(false, 0, TEXT, b"\"caf", MASK),
                encode_client_frame(true, 0, CONT, b"\xc3", MASK),
            ],
            1007,
        ),
        (
            "ping over 125 bytes",
            vec![encode_client_frame(true, 0, PING, &[b'p'; 126], MASK)],
            1002,
        ),
        (
            "close over 125 bytes",
            vec![encode_client_frame(
                true,
                0,
                CLOSE,
                &close_body(1000, &"r".repeat(124)),
                MASK,
            )],
            1002,
        ),
        (
            "fragmented ping",
            vec![encode_client_frame(false, 0, PING, b"abc", MASK)],
            1002,
        ),
        (
            "continuation without a start",
            vec![encode_client_frame(true, 0, CONT, b"{}", MASK)],
            1002,
        ),
        (
            "new text message inside a fragmented one",
            vec![
                encode_client_frame(false, 0, TEXT, b"{\"type\":", MASK),
                encode_client_frame(true, 0, TEXT, b"{}", MASK),
            ],
            1002,
        ),
        ("64-bit length with the top bit set", vec![top_bit], 1002),
        (
            "close with a 1-byte body",
            vec![encode_client_frame(true, 0, CLOSE, &[0x03], MASK)],
            1002,
        ),
    ];
    for (what, frames, code) in cases {
        let mut c = RawWs::connect(s.addr, "");
        for f in &frames {
            c.send(f);
        }
        c.expect_close(Some(code), what);
    }
    // The server is still serving.
    let mut c = RawWs::connect(s.addr, "");
    c.send_frame(true, TEXT, br#"{"type":"rooms"}"#);
    assert_eq!(c.json()["type"], "rooms");
}

#[test]
fn fragments_are_reassembled_around_a_ping() {
    let s = Server::start(&[]);
    let mut c = RawWs::connect(s.addr, "nick=frag&room=lobby");
    assert_eq!(c.json()["type"], "joined");
    c.send_frame(false, TEXT, br#"{"type":"say","room":"lobby","#);
    c.send_frame(true, PING, b"are you there?");
    c.send_frame(false, CONT, b"\"text\":\"caf\xc3");
    c.send_frame(false, CONT, b"");
    c.send_frame(true, CONT, b"\xa9\",\"ref\":\"frag\"}");
    let mut pong = None;
    let mut echo = None;
    while pong.is_none() || echo.is_none() {
        let f = c.frame().expect("frame");
        match f.opcode {
            PONG => {
                assert!(f.fin);
                pong = Some(f.payload);
            }
            TEXT => echo = Some(serde_json::from_slice::<Value>(&f.payload).expect("JSON")),
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert_eq!(pong.as_deref(), Some(&b"are you there?"[..]));
    let echo = echo.expect("echo");
    assert_eq!(echo["type"], "message");
    assert_eq!(echo["text"], "café");
    assert_eq!(echo["ref"], "frag");
    // An empty ping gets an empty pong; a pong from us needs no answer.
    c.send_frame(true, PONG, b"unsolicited");
    c.send_frame(true, PING, b"");
    let f = c.frame().expect("pong");
    assert_eq!((f.opcode, f.payload.len()), (PONG, 0));
}

#[test]
fn messages_over_max_ws_message_close_with_1009() {
    let s = Server::start(&["--max-ws-message", "1000"]);
    // Exactly the limit is fine.
    let mut c = RawWs::connect(s.addr, "");
    assert_eq!(c.welcome["limits"]["max_ws_message"], 1000);
    let head = r#"{"type":"rooms","ref":"x","pad":""#;
    let pad = "p".repeat(1000 - head.len() - 2);
    let msg = format!("{head}{pad}\"}}");
    assert_eq!(msg.len(), 1000);
    c.send_frame(true, TEXT, msg.as_bytes());
    assert_eq!(c.json()["ref"], "x");
    // One byte more, in one frame.
    let msg = format!("{head}{pad}p\"}}");
    c.send_frame(true, TEXT, msg.as_bytes());
    c.expect_close(Some(1009), "1001 bytes in one frame");
    // One byte more, across fragments.
    let mut c = RawWs::connect(s.addr, "");
    c.send_frame(false, TEXT, &msg.as_bytes()[..600]);
    c.send_frame(true, CONT, &msg.as_bytes()[600..]);
    c.expect_close(Some(1009), "1001 bytes in two fragments");
    // A header announcing far more is refused at once, before any payload.
    let mut c = RawWs::connect(s.addr, "");
    let mut huge = vec![0x81, 0xFF];
    huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
    huge.extend_from_slice(&MASK);
    c.send(&huge);
    c.expect_close(Some(1009), "a 1 TiB frame header");
}

#[test]
fn a_close_frame_is_answered_with_its_code() {
    let s = Server::start(&[]);
    for code in [1000, 1001, 1011, 3000, 4000, 4999] {
        let mut c = RawWs::connect(s.addr, "");
        c.send_frame(true, CLOSE, &close_body(code, "bye"));
        c.expect_close(Some(code), &format!("close {code}"));
    }
    // No body: answered without one (RFC 6455 §5.5.1).
    let mut c = RawWs::connect(s.addr, "");
    c.send_frame(true, CLOSE, b"");
    c.expect_close(None, "empty close");
    // Invalid codes are a protocol error.
    for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000] {
        let mut c = RawWs::connect(s.addr, "");
        c.send_frame(true, CLOSE, &close_body(code, ""));
        c.expect_close(Some(1002), &format!("close {code}"));
    }
    // A close between the fragments of a message is answered too.
    let mut c = RawWs::connect(s.addr, "");
    c.send_frame(false, TEXT, br#"{"type":"#);
    c.send_frame(true, CLOSE, &close_body(1000, "mid-message"));
    c.expect_close(Some(1000), "close between fragments");
    // A reason that is not UTF-8: 1007.
    let mut c = RawWs::connect(s.addr, "");
    let mut body = close_body(1000, "");
    body.extend_from_slice(b"\xff");
    c.send_frame(true, CLOSE, &body);
    c.expect_close(Some(1007), "close reason not UTF-8");
}

#[test]
fn a_silent_client_is_pinged_and_dropped_when_it_never_answers() {
    let s = Server::start(&["--ping-interval", "1"]);
    let started = Instant::now();
    let mut silent = RawWs::connect(s.addr, "");
    // One that answers pings (tungstenite does, while it reads) stays.
    let addr = s.addr;
    let lively = std::thread::spawn(move || {
        let mut lively = WsClient::connect(addr, "");
        // Short reads: each ping that arrives restarts a read's timeout.
        let until = Instant::now() + Duration::from_millis(3500);
        while Instant::now() < until {
            assert!(lively.try_recv(Duration::from_millis(300)).is_none());
        }
        lively.send(json!({"type":"rooms","ref":"alive"}));
        assert_eq!(lively.recv()["ref"], "alive");
    });

    let f = silent.frame().expect("a ping");
    assert_eq!(f.opcode, PING, "{f:?}");
    assert!(f.payload.len() <= 125);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "pinged after {:?}",
        started.elapsed()
    );
    // Never answered: dropped about a second later.
    silent
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    loop {
        match silent.frame() {
            None => break,
            Some(f) if f.opcode == PING || f.opcode == CLOSE => continue,
            Some(f) => panic!("unexpected frame {f:?}"),
        }
    }
    let gone = started.elapsed();
    assert!(
        gone >= Duration::from_millis(1500) && gone < Duration::from_secs(10),
        "dropped after {gone:?}"
    );
    lively
        .join()
        .expect("a client that answers pings stays connected");
}
