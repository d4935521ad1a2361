//! Messages that live and search (PROTOCOL-2 sections 3 and 4) against the
//! real binary over real sockets: edits, deletes, reactions, replies and
//! mentions in both protocols (tungstenite as the independent WebSocket
//! client), `/media` after a delete, a catch-up after a reconnect leaving a
//! client exactly up to date, everything kept across `kill -9`, and search
//! over WebSocket, line and HTTP.

mod common;
use common::*;

#[path = "../examples/react_bot.rs"]
#[allow(dead_code)]
mod react_bot;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// A WebSocket client called `nick` in `room`; the `joined` it got.
fn member(s: &Server, nick: &str, room: &str) -> (WsClient, Value) {
    let mut c = WsClient::connect(s.addr, &format!("nick={nick}"));
    let joined = c.ok(json!({"type":"join","room":room}), "joined");
    (c, joined)
}

/// `c` says `text` in `room`; the stored MESSAGE (its own copy).
fn say(c: &mut WsClient, room: &str, text: &str) -> Value {
    c.ok(json!({"type":"say","room":room,"text":text}), "message")
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {v}"))
}

/// The next message of type `kind` `c` receives (others skipped).
fn next(c: &mut WsClient, kind: &str) -> Value {
    c.recv_type(kind)
}

/// A history page over HTTP, as `(seq, message)`.
fn page(s: &Server, room: &str) -> Vec<Value> {
    let r = http(
        s.addr,
        "GET",
        &format!("/api/rooms/{room}/messages?limit=200"),
    );
    assert_eq!(r.status, 200);
    r.json()["messages"].as_array().expect("messages").to_vec()
}

/// The fields of `v` but `ref` and `cid`: what every member sees alike.
fn shared(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("ref");
        o.remove("cid");
    }
    v
}

#[test]
fn edits_deletes_reactions_and_replies_reach_everyone_exactly() {
    let s = Server::start(&["--db", TempDb::new("live-json").arg()]);
    let (mut alice, _) = member(&s, "alice", "dev");
    let (mut bob, _) = member(&s, "bob", "dev");
    let m = say(&mut alice, "dev", "helo @bob");
    assert_eq!(m["mentions"], json!(["bob"]), "{m}");
    let target = seq(&m);
    assert_eq!(next(&mut bob, "message")["mentions"], json!(["bob"]));

    // Edit: the sender's copy carries the ref; the room's is the same.
    let e = alice.ok(
        json!({"type":"edit","room":"dev","seq":target,"text":"hello @bob"}),
        "edit",
    );
    assert_eq!(
        shared(&e),
        json!({"type":"edit","room":"dev","seq":target + 1,"target":target,"from":"alice",
               "text":"hello @bob","ts":e["ts"]})
    );
    assert_eq!(next(&mut bob, "edit"), shared(&e));

    // React: toggled per person.
    let on = bob.ok(
        json!({"type":"react","room":"dev","seq":target,"emoji":"👍"}),
        "react",
    );
    assert_eq!(
        shared(&on),
        json!({"type":"react","room":"dev","seq":target + 2,"target":target,"from":"bob",
               "emoji":"👍","on":true,"ts":on["ts"]})
    );
    assert_eq!(next(&mut alice, "react"), shared(&on));
    alice.ok(
        json!({"type":"react","room":"dev","seq":target,"emoji":"👍"}),
        "react",
    );
    alice.ok(
        json!({"type":"react","room":"dev","seq":target,"emoji":"🎉"}),
        "react",
    );
    let off = bob.ok(
        json!({"type":"react","room":"dev","seq":target,"emoji":"👍"}),
        "react",
    );
    assert_eq!(off["on"], false);

    // Reply, quoting the start of what it answers.
    let r = bob.ok(
        json!({"type":"say","room":"dev","text":"same to you","reply_to":target}),
        "message",
    );
    assert_eq!(
        r["reply_to"],
        json!({"seq":target,"from":"alice","text":"hello @bob"})
    );
    assert_eq!(next(&mut alice, "message")["reply_to"], r["reply_to"]);

    // History shows the message as it is now.
    let now = page(&s, "dev");
    let first = &now[0];
    assert_eq!(first["text"], "hello @bob");
    assert_eq!(first["edited_ts"], e["ts"]);
    assert_eq!(first["reactions"], json!({"👍":["alice"],"🎉":["alice"]}));
    assert_eq!(
        now.iter().map(seq).collect::<Vec<_>>(),
        [target, seq(&r)],
        "change entries are not listed in pages"
    );

    // Refusals.
    bob.refused(
        json!({"type":"edit","room":"dev","seq":target,"text":"mine"}),
        "not_permitted",
    );
    bob.refused(
        json!({"type":"delete","room":"dev","seq":target}),
        "not_permitted",
    );
    bob.refused(
        json!({"type":"edit","room":"dev","seq":999,"text":"x"}),
        "no_such_message",
    );
    bob.refused(
        json!({"type":"react","room":"dev","seq":target,"emoji":"two words"}),
        "bad_request",
    );
    bob.refused(
        json!({"type":"edit","room":"dev","seq":"1","text":"x"}),
        "bad_request",
    );

    // Delete: the author's; everyone sees the entry; history the fact only.
    let d = alice.ok(json!({"type":"delete","room":"dev","seq":target}), "delete");
    assert_eq!(
        shared(&d),
        json!({"type":"delete","room":"dev","seq":d["seq"],"target":target,"by":"alice","ts":d["ts"]})
    );
    assert_eq!(next(&mut bob, "delete"), shared(&d));
    let now = page(&s, "dev");
    assert_eq!(
        now[0],
        json!({"type":"message","room":"dev","seq":target,"from":"alice","ts":m["ts"],"deleted":true})
    );
    assert_eq!(
        now[1]["reply_to"],
        json!({"seq":target,"from":"alice"}),
        "the quote went with it"
    );
    alice.refused(
        json!({"type":"edit","room":"dev","seq":target,"text":"back"}),
        "no_such_message",
    );
}

#[test]
fn line_clients_edit_delete_reply_and_react_by_name() {
    let s = Server::start(&[]);
    let mut lina = quiet_line(&s);
    lina.send("/nick lina");
    assert_eq!(lina.answer(), "*** you are now known as lina");
    lina.send("/join dev");
    lina.line_where(|l| l.starts_with("*** you joined #dev"));
    let (mut bob, _) = member(&s, "bob", "dev");
    lina.line_where(|l| l.contains("bob joined"));

    lina.send("helo");
    let m = next(&mut bob, "message");
    lina.send("/edit hello");
    let e = next(&mut bob, "edit");
    assert_eq!(
        (e["target"].as_u64(), e["text"].as_str()),
        (Some(seq(&m)), Some("hello"))
    );
    assert_eq!(
        strip_clock(&lina.line()).as_deref(),
        Some("#dev <lina> (edited) hello")
    );

    // bob's reaction is not sent to the line client; its own is confirmed.
    let b = say(
        &mut bob,
        "dev",
        "from bob, who writes at some length about it",
    );
    assert_eq!(
        strip_clock(&lina.line()).as_deref(),
        Some("#dev <bob> from bob, who writes at some length about it")
    );
    bob.ok(
        json!({"type":"react","room":"dev","seq":seq(&m),"emoji":"👀"}),
        "react",
    );
    lina.send("/react BOB 👍");
    assert_eq!(lina.answer(), "*** reaction 👍 added in #dev");
    let r = next(&mut bob, "react");
    assert_eq!(
        (r["target"].as_u64(), r["on"].as_bool()),
        (Some(seq(&b)), Some(true))
    );

    lina.send("/reply bob agreed");
    let reply = next(&mut bob, "message");
    assert_eq!(
        reply["reply_to"],
        json!({"seq":seq(&b),"from":"bob","text":"from bob, who writes at some length about it"})
    );
    say(&mut bob, "dev", "see above");
    lina.line_where(|l| l.ends_with("see above"));

    // bob replies to lina: lina sees the quote, cut at 40 characters.
    bob.ok(
        json!({"type":"say","room":"dev","text":"yes","reply_to":seq(&reply)}),
        "message",
    );
    assert_eq!(
        strip_clock(&lina.line()).as_deref(),
        Some("#dev <bob> (re lina: agreed) yes")
    );

    lina.send("/delete");
    let d = next(&mut bob, "delete");
    assert_eq!(d["target"].as_u64(), Some(seq(&reply)));
    assert_eq!(
        strip_clock(&lina.line()).as_deref(),
        Some("#dev --- a message by lina was deleted")
    );
    lina.send("/delete bob");
    assert!(lina.answer().starts_with("!!! not_permitted: "));
    lina.send("/react nobody 👍");
    assert!(lina.answer().starts_with("!!! no_such_message: "));
    lina.send("/edit");
    assert!(lina.answer().starts_with("!!! bad_request: "));

    lina.send("/history");
    let block: Vec<String> = (0..7).map(|_| lina.line()).collect();
    let shown: Vec<String> = block
        .iter()
        .map(|l| strip_clock(l).unwrap_or_else(|| l.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            "*** history of #dev (5 messages)",
            "#dev <lina> (edited) hello",
            "#dev <bob> from bob, who writes at some length about it",
            "#dev <lina> [deleted]",
            "#dev <bob> see above",
            "#dev <bob> (re lina) yes",
            "*** end of history",
        ]
    );
}

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

#[test]
fn a_deleted_image_is_gone_from_media_and_its_caption_can_be_edited_first() {
    use base64::Engine as _;
    let db = TempDb::new("live-image");
    let s = Server::start(&["--db", db.arg()]);
    let (mut alice, _) = member(&s, "alice", "pics");
    let data = base64::engine::general_purpose::STANDARD.encode(PNG);
    let m = alice.ok(
        json!({"type":"image","room":"pics","data":data,"text":"our cat"}),
        "message",
    );
    let url = m["image"]["url"].as_str().expect("url").to_string();
    let path = url.trim_start_matches(|c| c != '/').to_string();
    let path = path
        .split_once("/media/")
        .map(|(_, id)| format!("/media/{id}"))
        .expect("a /media URL");
    assert_eq!(http(s.addr, "GET", &path).status, 200);
    let e = alice.ok(
        json!({"type":"edit","room":"pics","seq":seq(&m),"text":""}),
        "edit",
    );
    assert_eq!(e["text"], "", "a caption may be emptied");
    alice.ok(
        json!({"type":"delete","room":"pics","seq":seq(&m)}),
        "delete",
    );
    assert_eq!(http(s.addr, "GET", &path).status, 404);
    kill9(s);
    let s = Server::start(&["--db", db.arg()]);
    assert_eq!(http(s.addr, "GET", &path).status, 404, "gone for good");
    let p = page(&s, "pics");
    assert_eq!(p[0]["deleted"], true);
    assert!(
        p[0].get("image").is_none() && p[0].get("text").is_none(),
        "{}",
        p[0]
    );
}

/// What a client knows of a room: its messages by seq, as it applies
/// MESSAGEs and `edit`, `delete` and `react` events.
#[derive(Default, Debug, PartialEq)]
struct Model(BTreeMap<u64, Value>);

impl Model {
    fn apply(&mut self, v: &Value) {
        let target = || v["target"].as_u64().expect("target");
        match v["type"].as_str() {
            Some("message") => {
                self.0.insert(seq(v), shared(v));
            }
            Some("edit") => {
                let m = self.0.get_mut(&target()).expect("edit of a known message");
                m["text"] = v["text"].clone();
                m["edited_ts"] = v["ts"].clone();
            }
            Some("delete") => {
                let m = self
                    .0
                    .get_mut(&target())
                    .expect("delete of a known message");
                *m = json!({"type":"message","room":m["room"],"seq":m["seq"],"from":m["from"],
                            "ts":m["ts"],"deleted":true});
            }
            Some("react") => {
                let m = self.0.get_mut(&target()).expect("react to a known message");
                let emoji = v["emoji"].as_str().expect("emoji");
                let who = v["from"].clone();
                let mut r = m
                    .get("reactions")
                    .cloned()
                    .unwrap_or_else(|| json!({}))
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let list = r.entry(emoji).or_insert_with(|| json!([]));
                let arr = list.as_array_mut().expect("list");
                if v["on"] == true {
                    arr.push(who);
                } else {
                    arr.retain(|n| *n != who);
                }
                if arr.is_empty() {
                    r.remove(emoji);
                }
                if r.is_empty() {
                    m.as_object_mut().expect("object").remove("reactions");
                } else {
                    m["reactions"] = Value::Object(r);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_catch_up_after_a_reconnect_leaves_the_client_exactly_up_to_date() {
    let s = Server::start(&["--db", TempDb::new("live-catch-up").arg()]);
    let (mut alice, _) = member(&s, "alice", "team");
    let seqs: Vec<u64> = (0..6)
        .map(|i| seq(&say(&mut alice, "team", &format!("message {i}"))))
        .collect();
    alice.ok(
        json!({"type":"react","room":"team","seq":seqs[0],"emoji":"🙂"}),
        "react",
    );
    // bob knows the room up to here, then goes away.
    let (mut bob, joined) = member(&s, "bob", "team");
    let mut model = Model::default();
    for m in joined["messages"].as_array().expect("messages") {
        model.apply(m);
    }
    let since = joined["last_seq"].as_u64().expect("last_seq");
    bob.ws.close(None).ok();
    drop(bob);
    // Meanwhile: edits, deletes and reactions of older messages, new ones,
    // and changes to those.
    alice.ok(
        json!({"type":"edit","room":"team","seq":seqs[1],"text":"message 1, fixed"}),
        "edit",
    );
    alice.ok(
        json!({"type":"delete","room":"team","seq":seqs[2]}),
        "delete",
    );
    alice.ok(
        json!({"type":"react","room":"team","seq":seqs[3],"emoji":"👍"}),
        "react",
    );
    alice.ok(
        json!({"type":"react","room":"team","seq":seqs[0],"emoji":"🙂"}),
        "react",
    );
    alice.ok(
        json!({"type":"edit","room":"team","seq":seqs[4],"text":"edited, then deleted"}),
        "edit",
    );
    alice.ok(
        json!({"type":"delete","room":"team","seq":seqs[4]}),
        "delete",
    );
    let late = seq(&say(&mut alice, "team", "new while you were away"));
    alice.ok(
        json!({"type":"edit","room":"team","seq":late,"text":"new, and edited"}),
        "edit",
    );
    alice.ok(
        json!({"type":"react","room":"team","seq":late,"emoji":"🎉"}),
        "react",
    );

    let mut back = WsClient::connect(s.addr, "nick=bob");
    let joined = back.ok(json!({"type":"join","room":"team","since":since}), "joined");
    assert_ne!(joined["gap"], true, "{joined}");
    let entries = joined["messages"].as_array().expect("messages");
    let seqs_seen: Vec<u64> = entries.iter().map(seq).collect();
    let mut sorted = seqs_seen.clone();
    sorted.sort_unstable();
    assert_eq!(seqs_seen, sorted, "in seq order");
    assert!(seqs_seen.iter().all(|&q| q > since));
    for e in entries {
        model.apply(e);
    }
    let fresh: BTreeMap<u64, Value> = page(&s, "team")
        .iter()
        .map(|m| (seq(m), m.clone()))
        .collect();
    assert_eq!(model.0, fresh, "the client is exactly up to date");
}

#[test]
fn changes_survive_kill_9_and_the_edit_window_is_an_option() {
    let db = TempDb::new("live-restart");
    let s = Server::start(&["--db", db.arg(), "--edit-window", "1"]);
    let (mut alice, _) = member(&s, "alice", "log");
    let a = seq(&say(&mut alice, "log", "first"));
    let b = seq(&say(&mut alice, "log", "second"));
    alice.ok(
        json!({"type":"edit","room":"log","seq":a,"text":"first!"}),
        "edit",
    );
    alice.ok(
        json!({"type":"react","room":"log","seq":a,"emoji":"✅"}),
        "react",
    );
    alice.ok(json!({"type":"delete","room":"log","seq":b}), "delete");
    std::thread::sleep(Duration::from_millis(1200));
    alice.refused(
        json!({"type":"edit","room":"log","seq":a,"text":"too late"}),
        "edit_window",
    );
    let before = page(&s, "log");
    kill9(s);
    let s = Server::start(&["--db", db.arg()]);
    assert_eq!(page(&s, "log"), before);
    // The seq goes on after the changes: no repeat.
    let (mut again, _) = member(&s, "alice", "log");
    assert_eq!(seq(&say(&mut again, "log", "third")), b + 4);
}

#[test]
fn search_pages_filters_and_answers_over_websocket_line_and_http() {
    // Searches count against flood control; this test sends many.
    let s = Server::start(&["--rate", "1000", "--burst", "1000"]);
    let (mut alice, _) = member(&s, "alice", "notes");
    let (mut bob, _) = member(&s, "bob", "notes");
    say(&mut alice, "notes", "the Café opens at nine");
    say(&mut bob, "notes", "cafe latte please");
    let gone = seq(&say(&mut bob, "notes", "secret cafe plans"));
    bob.ok(json!({"type":"delete","room":"notes","seq":gone}), "delete");
    let edited = seq(&say(&mut alice, "notes", "meet at the bar"));
    alice.ok(
        json!({"type":"edit","room":"notes","seq":edited,"text":"meet at the café instead"}),
        "edit",
    );
    for i in 0..5 {
        say(&mut alice, "notes", &format!("deploy number {i}"));
    }

    // Accents and case ignored; newest first; the deleted one never; the
    // edited one by its new text.
    let r = alice.ok(json!({"type":"search","q":"CAFE","room":"notes"}), "search");
    let texts: Vec<&str> = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "meet at the café instead",
            "cafe latte please",
            "the Café opens at nine"
        ]
    );
    let hit = &r["results"][0];
    let snippet: Vec<char> = hit["snippet"].as_str().expect("snippet").chars().collect();
    let marks = hit["marks"].as_array().expect("marks");
    assert!(!marks.is_empty(), "{hit}");
    for m in marks {
        let (from, to) = (
            m[0].as_u64().unwrap() as usize,
            m[1].as_u64().unwrap() as usize,
        );
        let marked: String = snippet[from..to].iter().collect();
        assert_eq!(marked.to_lowercase(), "café", "{hit}");
    }
    assert_eq!(
        alice.ok(
            json!({"type":"search","q":"meet bar","room":"notes"}),
            "search"
        )["results"],
        json!([]),
        "found by the latest text only"
    );

    // Paging with before; prefix; from:; phrase.
    let p1 = alice.ok(
        json!({"type":"search","q":"deploy","room":"notes","limit":2}),
        "search",
    );
    let p1: Vec<u64> = p1["results"].as_array().unwrap().iter().map(seq).collect();
    assert_eq!(p1.len(), 2);
    let p2 = alice.ok(
        json!({"type":"search","q":"deploy","room":"notes","limit":10,"before":p1[1]}),
        "search",
    );
    let p2: Vec<u64> = p2["results"].as_array().unwrap().iter().map(seq).collect();
    assert_eq!(p2.len(), 3);
    assert!(p2.iter().all(|&q| q < p1[1]));
    let count = |c: &mut WsClient, q: &str| {
        c.ok(
            json!({"type":"search","q":q,"room":"notes","limit":100}),
            "search",
        )["results"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert_eq!(count(&mut alice, "depl"), 5, "the last word as a prefix");
    assert_eq!(count(&mut alice, "cafe from:BOB"), 1);
    assert_eq!(count(&mut alice, "\"opens at nine\""), 1);
    assert_eq!(count(&mut alice, "\"nine at opens\""), 0);
    for hostile in [
        "\"",
        "NEAR(",
        "*",
        "-",
        ":",
        "AND OR NOT",
        "🎉",
        "a\"b",
        "(x",
        "'",
    ] {
        let v = alice.ask(
            json!({"type":"search","q":hostile,"room":"notes"}),
            "search",
        );
        assert_eq!(v["type"], "search", "{hostile:?}: {v}");
    }
    alice.refused(json!({"type":"search","q":"x","limit":0}), "bad_request");

    // Across the rooms one is in: no room field.
    let all = alice.ok(json!({"type":"search","q":"deploy"}), "search");
    assert!(all.get("room").is_none(), "{all}");
    assert_eq!(all["results"].as_array().unwrap().len(), 5);

    // Line.
    let mut lina = quiet_line(&s);
    lina.send("/join notes");
    lina.line_where(|l| l.starts_with("*** you joined #notes"));
    lina.send("/search café");
    lina.line_where(|l| l == "*** search #notes \"café\" (3 results)");
    let lines: Vec<String> = (0..4).map(|_| lina.line()).collect();
    assert_eq!(
        strip_clock(&lines[0]).as_deref(),
        Some("#notes <alice> (edited) meet at the café instead")
    );
    assert_eq!(lines[3], "*** end of search");

    // HTTP: the same answer.
    let h = http(s.addr, "GET", "/api/rooms/notes/search?q=caf%C3%A9&limit=2");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["type"], "search");
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    assert_eq!(http(s.addr, "GET", "/api/rooms/notes/search").status, 400);
    assert_eq!(
        http(s.addr, "GET", "/api/rooms/notes/search?q=x&limit=0").status,
        400
    );
}

#[test]
fn an_invite_only_room_is_searched_only_by_its_members() {
    let s = Server::start(&[]);
    let mut owner = WsClient::connect(s.addr, "nick=owner");
    owner.register("owner-password");
    owner.ok(json!({"type":"join","room":"vault"}), "joined");
    owner.ok(
        json!({"type":"mod","room":"vault","action":"invite_only","on":true}),
        "mod",
    );
    say(&mut owner, "vault", "the combination is 1234");
    let found = owner.ok(
        json!({"type":"search","q":"combination","room":"vault"}),
        "search",
    );
    assert_eq!(found["results"].as_array().unwrap().len(), 1);
    let mut guest = WsClient::connect(s.addr, "nick=guest");
    guest.refused(
        json!({"type":"search","q":"combination","room":"vault"}),
        "invite_only",
    );
    assert_eq!(
        http(s.addr, "GET", "/api/rooms/vault/search?q=combination").status,
        403
    );
}

#[test]
fn the_example_bot_reacts_to_thanks_and_mentions_and_finds_by_search() {
    let s = Server::start(&[]);
    let addr = s.addr.to_string();
    std::thread::spawn(move || react_bot::run(&addr, "lobby"));
    let (mut alice, _) = member(&s, "alice", "lobby");
    // Wait until the bot is in (it may join before or after alice).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let who = alice.ok(json!({"type":"who","room":"lobby"}), "who");
        if who["members"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("reactbot")))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bot never joined: {who}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cafe = say(&mut alice, "lobby", "the café opens at nine");
    let thanks = say(&mut alice, "lobby", "thanks @reactbot");
    let mut emoji = Vec::new();
    for _ in 0..2 {
        let r = next(&mut alice, "react");
        assert_eq!(
            (r["target"].as_u64(), &r["from"]),
            (Some(seq(&thanks)), &json!("reactbot"))
        );
        emoji.push(r["emoji"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(emoji, ["👍", "👀"]);
    let ask = say(&mut alice, "lobby", "!find cafe");
    let reply = next(&mut alice, "message");
    assert_eq!(reply["from"], "reactbot");
    assert_eq!(reply["reply_to"]["seq"].as_u64(), Some(seq(&ask)));
    assert_eq!(
        reply["text"], "alice said it: \"the café opens at nine\"",
        "{reply}"
    );
    let _ = cafe;
}
