//! Who is where, across natter processes sharing one real `redis-server`
//! (`--redis`, PROTOCOL-2 section 6; issue 18): presence (joins, leaves
//! with their reasons, nick changes), member lists (`joined`, `/who`,
//! `who`), `/rooms` counts, nick uniqueness, direct messages and typing
//! between clients on different processes; a natter `kill -9`'d (its users
//! leave everywhere within 15 s) and Redis `kill -9`'d and restarted
//! (presence rebuilt, only the differences delivered); accounts, login
//! tokens and rooms' settings and lists (topic, ops, invite-only, bans,
//! invites) stored in Redis and seen by every process.
//!
//! Every test starts its own Redis and two or three `natter` binaries,
//! each with its own SQLite file; all are stopped by PID when dropped.
//!
//! Not shared yet, so not tested here: a kick or ban on one process does
//! not eject the target's connections on another (only the stored list is
//! shared, so the target cannot join again); sessions resumed on another
//! process; edits, deletes and reactions; the HTTP history, search and
//! media API in Redis mode.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{line_error, strip_clock, LineClient, RedisProc, Server, TempDb, WsClient};
use serde_json::{json, Value};

const PW: &str = "presence-password";

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
    fn start(n: usize) -> Chat {
        let redis = RedisProc::start();
        let dbs: Vec<TempDb> = (0..n).map(|i| TempDb::new(&format!("rpres{i}"))).collect();
        let natters = dbs
            .iter()
            .map(|db| Server::start_redis(&redis, db, &[]))
            .collect();
        Chat {
            natters,
            redis,
            _dbs: dbs,
        }
    }

    /// The nicks Redis says `room` has (`natter:members`), sorted by key
    /// (a nick on two processes is listed twice).
    fn members_in_redis(&self, room: &str) -> Vec<String> {
        let out = self.redis.cli(&["HGETALL", "natter:members"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len() % 2, 0, "HGETALL said {out:?}");
        let mut nicks: Vec<String> = lines
            .chunks(2)
            .filter(|kv| kv[0].split(' ').next() == Some(room))
            .map(|kv| {
                let v: Value = serde_json::from_str(kv[1])
                    .unwrap_or_else(|e| panic!("member {:?} is not JSON ({e})", kv[1]));
                v["n"].as_str().expect("a nick").to_string()
            })
            .collect();
        nicks.sort_by_key(|n| n.to_ascii_lowercase());
        nicks
    }

    /// The nicks Redis says are held (`natter:nicks`), sorted by key.
    fn nicks_in_redis(&self) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .redis
            .cli(&["HVALS", "natter:nicks"])
            .lines()
            .map(str::to_string)
            .collect();
        nicks.sort_by_key(|n| n.to_ascii_lowercase());
        nicks
    }
}

/// Polls `f` every 100 ms until it gives something; panics with `what`
/// after `within`.
fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `names` sorted case-insensitively, as member lists are.
fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    v.sort_by_key(|n| n.to_ascii_lowercase());
    v
}

/// A WebSocket client connected with `?nick=NICK`, which it got.
fn ws_named(s: &Server, nick: &str) -> WsClient {
    let c = WsClient::connect(s.addr, &format!("nick={nick}"));
    assert_eq!(c.nick(), nick, "{}", c.welcome);
    c
}

/// A line client (in `#lobby`, as every line client starts) renamed to
/// `nick`.
fn line_named(s: &Server, nick: &str) -> LineClient {
    let mut c = s.line_client();
    c.send(&format!("/nick {nick}"));
    assert_eq!(c.line(), format!("*** you are now known as {nick}"));
    c.nick = nick.to_string();
    c
}

/// Like `line_named`, out of `#lobby` first (so that nobody there sees it).
fn quiet_named(s: &Server, nick: &str) -> LineClient {
    let mut c = common::quiet_line(s);
    c.send(&format!("/nick {nick}"));
    assert_eq!(c.line(), format!("*** you are now known as {nick}"));
    c.nick = nick.to_string();
    c
}

/// The members of `room` a WebSocket client is told by `who`.
fn ws_who(c: &mut WsClient, room: &str) -> Vec<String> {
    let v = c.ok(json!({"type": "who", "room": room}), "who");
    assert_eq!(v["room"], room, "{v}");
    v["members"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|n| n.as_str().expect("a nick").to_string())
        .collect()
}

/// The answer to `/who ROOM` on a line client (the room events that come
/// before it are skipped: read the ones that matter first).
fn line_who(c: &mut LineClient, room: &str) -> String {
    c.send(&format!("/who {room}"));
    let head = format!("*** #{room} (");
    c.line_where(|l| l.starts_with(&head))
}

/// `*** #room (N): a, b` for these members.
fn who_line(room: &str, members: &[String]) -> String {
    format!("*** #{room} ({}): {}", members.len(), members.join(", "))
}

/// The members in a `joined`.
fn members_of(joined: &Value) -> Vec<String> {
    joined["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members: {joined}"))
        .iter()
        .map(|n| n.as_str().expect("a nick").to_string())
        .collect()
}

/// The next message must be the presence `event` of `nick` in `room`
/// (with `reason` for a leave); returns it.
fn presence(c: &mut WsClient, room: &str, event: &str, nick: &str, reason: Option<&str>) -> Value {
    let p = c.recv();
    assert_eq!(p["type"], "presence", "{}: {p}", c.nick());
    assert_eq!(p["room"], room, "{p}");
    assert_eq!(p["event"], event, "{p}");
    assert_eq!(p["nick"], nick, "{p}");
    if let Some(r) = reason {
        assert_eq!(p["reason"], r, "{p}");
    }
    assert!(p["ts"].is_u64(), "{p}");
    p
}

/// What a WebSocket client is sent until `quiet` passes with nothing.
fn drain_ws(c: &mut WsClient, quiet: Duration) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(v) = c.try_recv(quiet) {
        got.push(v);
    }
    got
}

/// What a line client is sent until `quiet` passes with nothing.
fn drain_line(c: &mut LineClient, quiet: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(l) = c.try_line(quiet) {
        got.push(l);
    }
    got
}

/// The next `n` timestamped events a line client is shown, clocks
/// removed, sorted (for events whose order between rooms is not fixed).
fn line_events_sorted(c: &mut LineClient, n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|_| c.event()).collect();
    v.sort();
    v
}

const QUIET: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------

#[test]
fn presence_crosses_processes_joins_nicks_leaves_and_quits() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);

    // A line client on B, alone in #lobby.
    let mut lena = b.line_client();
    assert_eq!(
        lena.greeting[1],
        format!("*** you joined #lobby (1 here: {})", lena.nick)
    );
    lena.send("/nick lena");
    assert_eq!(lena.line(), "*** you are now known as lena");
    lena.nick = "lena".into();
    // Probes in no room, one on each process, for waiting until a change
    // on one process has reached the other (announcements take a moment).
    let mut pa = WsClient::connect(a.addr, "");
    let mut pb = WsClient::connect(b.addr, "");
    eventually(Duration::from_secs(5), "A lists lena", || {
        (ws_who(&mut pa, "lobby") == ["lena"]).then_some(())
    });

    // A WebSocket client on A joins #lobby: its `joined` lists lena (on
    // B), and lena sees it join.
    let mut wanda = ws_named(a, "wanda");
    let j = wanda.join("lobby");
    assert_eq!(members_of(&j), ["lena", "wanda"], "{j}");
    assert_eq!(lena.event(), "#lobby --> wanda joined");

    // The other way: wanda is in #dev first, lena joins it on B; lena's
    // join line lists wanda, wanda sees lena join.
    let j = wanda.join("dev");
    assert_eq!(members_of(&j), ["wanda"], "{j}");
    eventually(Duration::from_secs(5), "B lists wanda in #dev", || {
        (ws_who(&mut pb, "dev") == ["wanda"]).then_some(())
    });
    lena.send("/join dev");
    assert_eq!(lena.line(), "*** you joined #dev (2 here: lena, wanda)");
    presence(&mut wanda, "dev", "join", "lena", None);

    // who, on either process, lists both.
    let both = sorted(&["lena", "wanda"]);
    assert_eq!(line_who(&mut lena, "lobby"), who_line("lobby", &both));
    assert_eq!(line_who(&mut lena, "dev"), who_line("dev", &both));
    assert_eq!(ws_who(&mut wanda, "lobby"), both);
    assert_eq!(ws_who(&mut wanda, "dev"), both);
    lena.send("/rooms");
    assert_eq!(lena.line(), "*** rooms: #dev (2), #lobby (2)");
    let r = wanda.ok(json!({"type": "rooms"}), "rooms");
    assert_eq!(
        r["rooms"],
        json!([{"name": "dev", "members": 2}, {"name": "lobby", "members": 2}]),
        "{r}"
    );
    assert_eq!(chat.members_in_redis("lobby"), both);
    assert_eq!(chat.members_in_redis("dev"), both);

    // A nick change on B: A's client sees it once for each room they share.
    lena.send("/nick Lenora");
    assert_eq!(lena.line(), "*** you are now known as Lenora");
    lena.nick = "Lenora".into();
    let mut rooms = BTreeSet::new();
    for _ in 0..2 {
        let p = wanda.recv();
        assert_eq!(
            (&p["type"], &p["event"], &p["nick"], &p["old"]),
            (
                &json!("presence"),
                &json!("nick"),
                &json!("Lenora"),
                &json!("lena")
            ),
            "{p}"
        );
        rooms.insert(p["room"].as_str().expect("room").to_string());
    }
    assert_eq!(rooms, BTreeSet::from(["dev".into(), "lobby".into()]));
    assert_eq!(ws_who(&mut wanda, "lobby"), sorted(&["Lenora", "wanda"]));

    // A nick change on A: B's line client sees "is now known as".
    let v = wanda.ok(json!({"type": "nick", "nick": "wendy"}), "nick");
    assert_eq!(v["nick"], "wendy", "{v}");
    assert_eq!(
        line_events_sorted(&mut lena, 2),
        [
            "#dev --- wanda is now known as wendy",
            "#lobby --- wanda is now known as wendy"
        ]
    );
    assert_eq!(
        line_who(&mut lena, "lobby"),
        who_line("lobby", &sorted(&["Lenora", "wendy"]))
    );

    // Leaving on B: A sees the leave, reason `leave`.
    lena.send("/leave dev");
    assert_eq!(lena.line(), "*** you left #dev");
    presence(&mut wanda, "dev", "leave", "Lenora", Some("leave"));
    assert_eq!(ws_who(&mut wanda, "dev"), ["wendy"]);
    // Leaving on A: B sees it as the line client's "left".
    wanda.ok(json!({"type": "leave", "room": "lobby"}), "left");
    assert_eq!(lena.event(), "#lobby <-- wendy left");
    assert_eq!(
        line_who(&mut lena, "lobby"),
        who_line("lobby", &["Lenora".to_string()])
    );
    let j = wanda.join("lobby");
    assert_eq!(members_of(&j), sorted(&["Lenora", "wendy"]), "{j}");
    assert_eq!(lena.event(), "#lobby --> wendy joined");

    // A line client on B that just disconnects: `disconnect`.
    let lx = b.line_client();
    let lxn = lx.nick.clone();
    presence(&mut wanda, "lobby", "join", &lxn, None);
    lx.close();
    presence(&mut wanda, "lobby", "leave", &lxn, Some("disconnect"));
    assert_eq!(lena.event(), format!("#lobby --> {lxn} joined"));
    assert_eq!(
        lena.event(),
        format!("#lobby <-- {lxn} left (disconnected)")
    );

    // A WebSocket client on A that closes: `quit`, seen on B.
    let mut wes = ws_named(a, "wes");
    wes.join("lobby");
    assert_eq!(lena.event(), "#lobby --> wes joined");
    presence(&mut wanda, "lobby", "join", "wes", None);
    wes.close();
    assert_eq!(lena.event(), "#lobby <-- wes left (quit)");
    presence(&mut wanda, "lobby", "leave", "wes", Some("quit"));

    // /quit with a message on B: A sees `quit` with the message.
    lena.send("/quit bye now");
    assert_eq!(lena.line(), "*** bye");
    let p = presence(&mut wanda, "lobby", "leave", "Lenora", Some("quit"));
    assert_eq!(p["message"], "bye now", "{p}");
    assert_eq!(ws_who(&mut wanda, "lobby"), ["wendy"]);
    let r = wanda.ok(json!({"type": "rooms"}), "rooms");
    assert_eq!(
        r["rooms"],
        json!([{"name": "dev", "members": 1}, {"name": "lobby", "members": 1}]),
        "{r}"
    );
    // And a line client on A sees B's quit message in its own words.
    let mut lars = a.line_client();
    presence(&mut wanda, "lobby", "join", lars.nick.as_str(), None);
    let mut q = b.line_client();
    let qn = q.nick.clone();
    assert_eq!(lars.event(), format!("#lobby --> {qn} joined"));
    presence(&mut wanda, "lobby", "join", &qn, None);
    q.send("/quit see you");
    assert_eq!(q.line(), "*** bye");
    assert_eq!(
        lars.event(),
        format!("#lobby <-- {qn} left (quit: see you)")
    );
    let p = presence(&mut wanda, "lobby", "leave", &qn, Some("quit"));
    assert_eq!(p["message"], "see you", "{p}");
    wanda.nothing_more();
    lars.nothing_more();
    eventually(Duration::from_secs(5), "Redis forgets Lenora", || {
        (chat.members_in_redis("lobby") == sorted(&[lars.nick.as_str(), "wendy"])).then_some(())
    });
}

#[test]
fn a_nick_held_on_one_process_is_taken_on_the_others() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut alice = ws_named(a, "alice");
    let zed = ws_named(a, "zed");
    let mut g = common::quiet_line(b);
    assert!(
        chat.nicks_in_redis().contains(&"alice".to_string()),
        "{:?}",
        chat.nicks_in_redis()
    );

    // A line client on B: nick_taken, in any case.
    for nick in ["alice", "ALICE", "Zed"] {
        g.send(&format!("/nick {nick}"));
        let (code, message) = line_error(&g.line());
        assert_eq!(code, "nick_taken", "/nick {nick}: {message}");
    }
    // A WebSocket client on B asking for it at connect: a generated nick,
    // then the error.
    let mut w = WsClient::connect(b.addr, "nick=Alice");
    let got = w.nick();
    assert_ne!(got.to_ascii_lowercase(), "alice", "{}", w.welcome);
    assert_ne!(got, alice.nick());
    let e = w.recv();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "nick_taken", "{e}");
    // ... or by request.
    w.refused(json!({"type": "nick", "nick": "alice"}), "nick_taken");
    // The generated nicks of B's clients may not be taken on A either,
    // once A has heard of them (a DM from A reaches them).
    for n in [got.as_str(), g.nick.as_str()] {
        reachable(&mut alice, n);
        alice.refused(json!({"type": "nick", "nick": n}), "nick_taken");
    }

    // alice renames on A: the nick is free on B (once B has heard).
    alice.ok(json!({"type": "nick", "nick": "alicia"}), "nick");
    eventually(Duration::from_secs(5), "B lets g take alice", || {
        g.send("/nick alice");
        let l = g.answer();
        if l == "*** you are now known as alice" {
            return Some(());
        }
        assert_eq!(line_error(&l).0, "nick_taken", "{l}");
        None
    });
    g.nick = "alice".into();
    // Now B holds it: A refuses it, once A has heard.
    reachable(&mut alice, "alice");
    alice.refused(json!({"type": "nick", "nick": "Alice"}), "nick_taken");
    let mut x = WsClient::connect(a.addr, "nick=alice");
    assert_ne!(x.nick().to_ascii_lowercase(), "alice", "{}", x.welcome);
    assert_eq!(x.recv()["code"], "nick_taken");

    // g quits on B: A may take it again.
    g.send("/quit");
    assert_eq!(g.answer(), "*** bye");
    eventually(
        Duration::from_secs(5),
        "A lets alicia be alice again",
        || {
            let v = ask_nick(&mut alice, "alice");
            (v["type"] == "nick").then_some(())
        },
    );

    // zed closes on A: B may take it.
    zed.close();
    eventually(Duration::from_secs(5), "B lets w take zed", || {
        let v = ask_nick(&mut w, "zed");
        (v["type"] == "nick").then_some(())
    });
    assert_eq!(
        chat.nicks_in_redis(),
        sorted(&["alice", "zed", x.nick().as_str()]),
        "Redis: every nick held, once"
    );
}

/// Waits until a DM from `c` to `nick` is sent (its process knows who
/// holds `nick`), so that what follows does not race the announcement.
fn reachable(c: &mut WsClient, nick: &str) {
    eventually(
        Duration::from_secs(5),
        &format!("{nick} reachable from {}", c.nick()),
        || {
            let v = c.ask(json!({"type": "dm", "to": nick, "text": "probe"}), "dm");
            if v["type"] == "dm" {
                return Some(());
            }
            assert_eq!(v["code"], "no_such_user", "{v}");
            None
        },
    );
}

/// Asks for `nick` by request; the answer (`nick`, or `nick_taken`).
fn ask_nick(c: &mut WsClient, nick: &str) -> Value {
    let v = c.ask(json!({"type": "nick", "nick": nick}), "nick");
    if v["type"] == "error" {
        assert_eq!(v["code"], "nick_taken", "{v}");
    }
    v
}

#[test]
fn direct_messages_cross_processes_both_ways() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut wanda = ws_named(a, "wanda");
    let mut lars = quiet_named(a, "lars");
    let mut lena = quiet_named(b, "lena");
    let mut walt = ws_named(b, "walt");
    // Each process has heard of the other's nicks: a probe's DM reaches
    // each (and is read off its recipient).
    let mut pa = WsClient::connect(a.addr, "");
    let mut pb = WsClient::connect(b.addr, "");
    for n in ["lena", "walt"] {
        reachable(&mut pa, n);
    }
    for n in ["wanda", "lars"] {
        reachable(&mut pb, n);
    }
    let probe = |from: &WsClient| format!("(dm) <{}> probe", from.nick());
    assert_eq!(lena.event(), probe(&pa));
    assert_eq!(lars.event(), probe(&pb));
    for (c, from) in [(&mut walt, &pa), (&mut wanda, &pb)] {
        let d = c.recv();
        assert_eq!(
            (&d["from"], &d["text"]),
            (&json!(from.nick()), &json!("probe"))
        );
    }

    // WebSocket on A to line on B.
    let sent = wanda.ok(json!({"type": "dm", "to": "lena", "text": "psst"}), "dm");
    assert_eq!(
        (&sent["from"], &sent["to"], &sent["text"]),
        (&json!("wanda"), &json!("lena"), &json!("psst")),
        "{sent}"
    );
    assert!(sent["ts"].is_u64(), "{sent}");
    assert_eq!(lena.event(), "(dm) <wanda> psst");

    // Line on B to WebSocket on A.
    lena.send("/msg wanda hi there");
    assert_eq!(lena.event(), "(dm to wanda) <lena> hi there");
    let d = wanda.recv();
    assert_eq!(d["type"], "dm", "{d}");
    assert_eq!(
        (&d["from"], &d["to"], &d["text"]),
        (&json!("lena"), &json!("wanda"), &json!("hi there")),
        "{d}"
    );
    assert!(d.get("ref").is_none(), "{d}");

    // Line on A to line on B, the nick in another case: shown as spelled.
    lars.send("/msg LENA case");
    assert_eq!(lars.event(), "(dm to lena) <lars> case");
    assert_eq!(lena.event(), "(dm) <lars> case");
    lena.send("/msg Lars back");
    assert_eq!(lena.event(), "(dm to lars) <lena> back");
    assert_eq!(lars.event(), "(dm) <lena> back");

    // WebSocket on B to WebSocket on A and back: both ends, one ts.
    let sent = walt.ok(
        json!({"type": "dm", "to": "wanda", "text": "ws to ws"}),
        "dm",
    );
    let got = wanda.recv();
    assert_eq!(got["type"], "dm", "{got}");
    assert_eq!(
        (&got["from"], &got["to"], &got["text"], &got["ts"]),
        (
            &json!("walt"),
            &json!("wanda"),
            &json!("ws to ws"),
            &sent["ts"]
        ),
        "{got} vs {sent}"
    );
    let sent = wanda.ok(
        json!({"type": "dm", "to": "Walt", "text": "and back"}),
        "dm",
    );
    assert_eq!(sent["to"], "walt", "{sent}");
    let got = walt.recv();
    assert_eq!(
        (&got["type"], &got["from"], &got["text"], &got["ts"]),
        (
            &json!("dm"),
            &json!("wanda"),
            &json!("and back"),
            &sent["ts"]
        ),
        "{got}"
    );

    // Nobody holds the nick anywhere: no_such_user, on either process.
    lena.send("/msg nobody hello");
    assert_eq!(line_error(&lena.line()).0, "no_such_user");
    wanda.refused(
        json!({"type": "dm", "to": "nobody", "text": "hello"}),
        "no_such_user",
    );
    // A nick released on B: no longer reachable from A.
    lena.send("/quit");
    assert_eq!(lena.line(), "*** bye");
    eventually(Duration::from_secs(5), "lena unknown on A", || {
        let v = wanda.ask(json!({"type": "dm", "to": "lena", "text": "still?"}), "dm");
        if v["type"] == "dm" {
            return None;
        }
        assert_eq!(v["code"], "no_such_user", "{v}");
        Some(())
    });
    lars.send("/msg lena gone?");
    assert_eq!(line_error(&lars.line()).0, "no_such_user");
    for c in [&mut wanda, &mut walt] {
        c.nothing_more();
    }
    lars.nothing_more();
}

#[test]
fn a_killed_natter_s_members_leave_everywhere_within_15_s() {
    let mut chat = Chat::start(3);
    let (a, b, c) = (&chat.natters[0], &chat.natters[1], &chat.natters[2]);
    let mut la = line_named(a, "lara");
    let mut wa = ws_named(a, "wanda");
    wa.join("lobby");
    wa.join("dev");
    let mut wc = ws_named(c, "wilma");
    wc.join("lobby");
    let mut lb = line_named(b, "lbert");
    lb.send("/join dev");
    assert!(lb.answer().starts_with("*** you joined #dev ("));
    let mut wb = ws_named(b, "wbert");
    wb.join("lobby");

    let lobby = sorted(&["lara", "wanda", "wilma", "lbert", "wbert"]);
    eventually(Duration::from_secs(5), "every process lists all 5", || {
        (ws_who(&mut wa, "lobby") == lobby
            && ws_who(&mut wc, "lobby") == lobby
            && ws_who(&mut wb, "lobby") == lobby)
            .then_some(())
    });
    assert_eq!(chat.members_in_redis("lobby"), lobby);
    la.send("/rooms");
    assert_eq!(la.answer(), "*** rooms: #lobby (5), #dev (2)");
    drain_ws(&mut wa, QUIET);
    drain_ws(&mut wc, QUIET);
    drain_line(&mut la, QUIET);

    let b = chat.natters.remove(1);
    let killed = Instant::now();
    common::kill9(b);
    let (a, c) = (&chat.natters[0], &chat.natters[1]);

    // A's WebSocket client: lbert leaves #lobby and #dev, wbert #lobby,
    // each `timeout`, within 15 s.
    let mut want: BTreeSet<(String, String)> =
        [("lobby", "lbert"), ("dev", "lbert"), ("lobby", "wbert")]
            .iter()
            .map(|(r, n)| (r.to_string(), n.to_string()))
            .collect();
    let mut last = Duration::ZERO;
    while !want.is_empty() {
        let left = Duration::from_secs(20).saturating_sub(killed.elapsed());
        assert!(
            !left.is_zero(),
            "20 s after kill -9 of B, A still has not shown {want:?} leave"
        );
        if let Some(p) = wa.try_recv(left) {
            assert_eq!(p["type"], "presence", "{p}");
            assert_eq!(p["event"], "leave", "{p}");
            assert_eq!(p["reason"], "timeout", "{p}");
            let key = (
                p["room"].as_str().unwrap_or("").to_string(),
                p["nick"].as_str().unwrap_or("").to_string(),
            );
            assert!(want.remove(&key), "an unexpected or repeated leave: {p}");
            last = killed.elapsed();
        }
    }
    eprintln!("B's members left on A {last:?} after its kill -9");
    assert!(
        last <= Duration::from_secs(15),
        "B's members left {last:?} after its kill -9 (at most 15 s)"
    );
    // A's line client and C's client too.
    assert_eq!(
        line_events_sorted(&mut la, 2),
        [
            "#lobby <-- lbert left (timeout)",
            "#lobby <-- wbert left (timeout)"
        ]
    );
    let mut on_c: Vec<String> = (0..2)
        .map(|_| {
            let p = wc.recv();
            assert_eq!(
                (&p["type"], &p["event"], &p["room"], &p["reason"]),
                (
                    &json!("presence"),
                    &json!("leave"),
                    &json!("lobby"),
                    &json!("timeout")
                ),
                "{p}"
            );
            p["nick"].as_str().unwrap_or("").to_string()
        })
        .collect();
    on_c.sort();
    assert_eq!(on_c, ["lbert", "wbert"]);

    // Member lists, /rooms and Redis forget B.
    let left = sorted(&["lara", "wanda", "wilma"]);
    assert_eq!(ws_who(&mut wa, "lobby"), left);
    assert_eq!(ws_who(&mut wc, "lobby"), left);
    assert_eq!(ws_who(&mut wa, "dev"), ["wanda"]);
    la.send("/rooms");
    assert_eq!(la.answer(), "*** rooms: #lobby (3), #dev (1)");
    let r = wc.ok(json!({"type": "rooms"}), "rooms");
    assert_eq!(
        r["rooms"],
        json!([{"name": "lobby", "members": 3}, {"name": "dev", "members": 1}]),
        "{r}"
    );
    assert_eq!(chat.members_in_redis("lobby"), left);
    assert_eq!(chat.members_in_redis("dev"), ["wanda"]);
    assert_eq!(chat.nicks_in_redis(), left);
    assert_eq!(
        chat.redis.cli(&["ZCARD", "natter:procs"]).trim(),
        "2",
        "B's heartbeat is gone"
    );

    // B's nicks are free: on A and on C.
    wa.ok(json!({"type": "nick", "nick": "lbert"}), "nick");
    ws_named(c, "wbert");
    assert_eq!(a.health(), 200);
    assert_eq!(c.health(), 200);
}

#[test]
fn presence_is_rebuilt_after_redis_restarts() {
    let mut chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut la = line_named(a, "lara");
    let mut ln = line_named(a, "lena");
    let mut wa = ws_named(a, "wanda");
    wa.join("lobby");
    let mut lb = line_named(b, "lbert");
    let mut wb = ws_named(b, "wbert");
    wb.join("lobby");
    let mut lx = line_named(b, "lex");
    // Probes that ask `who` (in no room: their answers skip nothing).
    let mut pa = WsClient::connect(a.addr, "");
    let mut pb = WsClient::connect(b.addr, "");
    let before = sorted(&["lara", "lena", "wanda", "lbert", "wbert", "lex"]);
    eventually(Duration::from_secs(5), "both processes list all 6", || {
        (ws_who(&mut pa, "lobby") == before && ws_who(&mut pb, "lobby") == before).then_some(())
    });
    for c in [&mut wa, &mut wb] {
        drain_ws(c, QUIET);
    }
    for c in [&mut la, &mut ln, &mut lb, &mut lx] {
        drain_line(c, QUIET);
    }

    chat.redis.kill9();
    for s in &chat.natters {
        assert!(
            s.wait_health(503, Duration::from_secs(5)),
            "/healthz 503 with Redis gone"
        );
    }
    // While Redis is down: lex quits on B, lena quits on A. Neither can be
    // announced now. A nick change needs Redis (it must be unique across
    // processes): unavailable.
    lx.send("/quit");
    assert_eq!(lx.line(), "*** bye");
    assert_eq!(lb.event(), "#lobby <-- lex left (quit)");
    ln.send("/quit");
    assert_eq!(ln.line(), "*** bye");
    let v = wa.ask(json!({"type": "nick", "nick": "wilma"}), "nick");
    assert_eq!(v["code"], "unavailable", "{v}");
    // Each process's own clients see their own process's change at once.
    let p = wb.recv();
    assert_eq!(
        (&p["event"], &p["nick"]),
        (&json!("leave"), &json!("lex")),
        "{p}"
    );
    assert_eq!(la.event(), "#lobby <-- lena left (quit)");
    let down = Instant::now();

    chat.redis.restart();
    for s in &chat.natters {
        assert!(
            s.wait_health(200, Duration::from_secs(15)),
            "/healthz 200 within 15 s of Redis's restart"
        );
    }
    eprintln!("Redis was down {:?}", down.elapsed());
    let after = sorted(&["lara", "wanda", "lbert", "wbert"]);
    eventually(
        Duration::from_secs(10),
        "both processes list exactly lara, wanda, lbert, wbert",
        || (ws_who(&mut pa, "lobby") == after && ws_who(&mut pb, "lobby") == after).then_some(()),
    );
    assert_eq!(chat.members_in_redis("lobby"), after, "natter:members");
    let mut held: Vec<&str> = after.iter().map(String::as_str).collect();
    let (na, nb) = (pa.nick(), pb.nick());
    held.extend([na.as_str(), nb.as_str()]);
    assert_eq!(chat.nicks_in_redis(), sorted(&held), "natter:nicks");
    eventually(Duration::from_secs(5), "both processes beat again", || {
        (chat.redis.cli(&["ZCARD", "natter:procs"]).trim() == "2").then_some(())
    });

    // Only the differences were delivered: on A, lex left; on B, lena
    // left.
    std::thread::sleep(Duration::from_millis(500));
    let on_a: Vec<(String, String)> = drain_ws(&mut wa, QUIET)
        .into_iter()
        .filter(|v| v["ref"].is_null())
        .map(|v| {
            assert_eq!(v["type"], "presence", "{v}");
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["nick"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    // (lena's leave came before the nick request's answer, which skipped
    // it.)
    assert_eq!(
        on_a,
        [("leave".to_string(), "lex".to_string())],
        "A's client was told: {on_a:?}"
    );
    let on_b: Vec<(String, String)> = drain_ws(&mut wb, QUIET)
        .into_iter()
        .filter(|v| v["ref"].is_null())
        .map(|v| {
            assert_eq!(v["type"], "presence", "{v}");
            (
                v["event"].as_str().unwrap_or("").to_string(),
                v["nick"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        on_b,
        [("leave".to_string(), "lena".to_string())],
        "B's client was told: {on_b:?}"
    );
    let on_lb = drain_line(&mut lb, QUIET);
    let on_lb: Vec<String> = on_lb.iter().filter_map(|l| strip_clock(l)).collect();
    assert_eq!(
        on_lb,
        ["#lobby <-- lena left (timeout)"],
        "B's line client was told: {on_lb:?}"
    );
    let on_la: Vec<String> = drain_line(&mut la, QUIET)
        .iter()
        .filter_map(|l| strip_clock(l))
        .collect();
    assert_eq!(on_la.len(), 1, "A's line client was told: {on_la:?}");
    assert!(on_la[0].starts_with("#lobby <-- lex left"), "{on_la:?}");
    assert_eq!(
        ws_who(&mut wa, "lobby"),
        after,
        "A's WebSocket client in the room"
    );
    assert_eq!(
        ws_who(&mut wb, "lobby"),
        after,
        "B's WebSocket client in the room"
    );
    assert_eq!(
        line_who(&mut lb, "lobby"),
        who_line("lobby", &after),
        "B's line client"
    );
    assert_eq!(
        line_who(&mut la, "lobby"),
        who_line("lobby", &after),
        "A's line client"
    );

    // Presence flows again both ways.
    let mut lc = b.line_client();
    presence(&mut wa, "lobby", "join", &lc.nick.clone(), None);
    lc.send("/nick lucy");
    assert_eq!(lc.line(), "*** you are now known as lucy");
    let p = wa.recv();
    assert_eq!(
        (&p["event"], &p["nick"]),
        (&json!("nick"), &json!("lucy")),
        "{p}"
    );
    lc.send("/quit");
    assert_eq!(lc.line(), "*** bye");
    presence(&mut wa, "lobby", "leave", "lucy", Some("quit"));
}

/// The process holding `nick`, from `natter:nicks` (fields `KEY PROC`).
fn proc_holding(chat: &Chat, nick: &str) -> String {
    let out = chat.redis.cli(&["HKEYS", "natter:nicks"]);
    out.lines()
        .find_map(|f| f.strip_prefix(&format!("{nick} ")))
        .unwrap_or_else(|| panic!("nobody holds {nick}: {out:?}"))
        .to_string()
}

/// `natter:procs`'s score (last heartbeat) for `proc`, if it has one.
fn beat_of(chat: &Chat, proc: &str) -> Option<u64> {
    chat.redis
        .cli(&["ZSCORE", "natter:procs", proc])
        .trim()
        .parse()
        .ok()
}

/// A process that comes back to Redis reaps its own old entries first
/// (`reap.lua` also takes it out of `natter:procs`) and beats again only
/// when its 3 s come round: if it dies before that beat, no heartbeat of
/// it is left for a survivor to find stale, and its users must still be
/// dropped within 15 s.
#[test]
fn a_natter_killed_just_after_redis_came_back_still_leaves() {
    let mut chat = Chat::start(2);
    let mut wa = ws_named(&chat.natters[0], "wanda");
    wa.join("lobby");
    let mut wb = ws_named(&chat.natters[1], "wbert");
    wb.join("lobby");
    let _lb = line_named(&chat.natters[1], "lbert");
    let mut pa = WsClient::connect(chat.natters[0].addr, "");
    let all = sorted(&["wanda", "wbert", "lbert"]);
    eventually(Duration::from_secs(5), "A lists all 3", || {
        (ws_who(&mut pa, "lobby") == all).then_some(())
    });
    let b_proc = proc_holding(&chat, "wbert");
    // Redis is killed just after B's heartbeat, and comes back at once.
    let first = beat_of(&chat, &b_proc).expect("B beats");
    eventually(Duration::from_secs(5), "B beats again", || {
        (beat_of(&chat, &b_proc) > Some(first)).then_some(())
    });
    chat.redis.kill9();
    for s in &chat.natters {
        assert!(s.wait_health(503, Duration::from_secs(5)));
    }
    chat.redis.restart();
    for s in &chat.natters {
        assert!(
            s.wait_health(200, Duration::from_secs(15)),
            "/healthz 200 after Redis's restart"
        );
    }
    drain_ws(&mut wa, QUIET);
    eprintln!(
        "B's heartbeat in natter:procs when it is killed: {:?}",
        beat_of(&chat, &b_proc)
    );
    // B dies now: A's client must see B's members leave within 15 s.
    let b = chat.natters.remove(1);
    let killed = Instant::now();
    common::kill9(b);
    let mut want: BTreeSet<String> = ["wbert".to_string(), "lbert".to_string()].into();
    while !want.is_empty() {
        let left = Duration::from_secs(17).saturating_sub(killed.elapsed());
        assert!(
            !left.is_zero(),
            "17 s after B's kill -9, A still lists {want:?} (who: {:?}; natter:procs {:?})",
            ws_who(&mut pa, "lobby"),
            chat.redis
                .cli(&["ZRANGE", "natter:procs", "0", "-1", "WITHSCORES"])
        );
        if let Some(p) = wa.try_recv(left) {
            assert_eq!(
                (&p["type"], &p["event"], &p["reason"]),
                (&json!("presence"), &json!("leave"), &json!("timeout")),
                "{p}"
            );
            assert!(want.remove(p["nick"].as_str().unwrap_or("")), "{p}");
        }
    }
    let after = killed.elapsed();
    assert!(after <= Duration::from_secs(15), "left {after:?} after");
    assert_eq!(ws_who(&mut pa, "lobby"), ["wanda"]);
}

/// Nicks are unique across all processes (PROTOCOL-2 section 6), also when
/// two clients on two processes ask for one at the same moment.
#[test]
fn one_nick_claimed_on_two_processes_at_once_goes_to_one() {
    let chat = Chat::start(2);
    let mut ca = WsClient::connect(chat.natters[0].addr, "");
    let mut cb = WsClient::connect(chat.natters[1].addr, "");
    let mut both = Vec::new();
    for i in 0..10 {
        let nick = format!("race{i}");
        // Both requests go out before either answer is read.
        let req = json!({"type": "nick", "nick": nick, "ref": format!("n{i}")});
        ca.send(req.clone());
        cb.send(req);
        let won: Vec<bool> = [&mut ca, &mut cb]
            .into_iter()
            .map(|c| {
                let v = c.recv();
                assert_eq!(v["ref"], format!("n{i}"), "{v}");
                if v["type"] == "error" {
                    assert_eq!(v["code"], "nick_taken", "{v}");
                    false
                } else {
                    assert_eq!((&v["type"], &v["nick"]), (&json!("nick"), &json!(nick)));
                    true
                }
            })
            .collect();
        if won == [true, true] {
            both.push(nick);
        }
    }
    assert!(
        both.is_empty(),
        "granted on both processes at once: {both:?} (natter:nicks: {:?})",
        chat.nicks_in_redis()
    );
}

#[test]
fn accounts_and_login_tokens_are_shared() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut a1 = ws_named(a, "alice");
    let t1 = a1.register(PW);

    // A's token on B: once B has read the account (a failed token login
    // counts against no limit).
    let b1 = eventually(Duration::from_secs(5), "B knows alice's token", || {
        let c = WsClient::connect(b.addr, &format!("token={t1}"));
        (c.welcome["account"] == "alice").then_some(c)
    });
    assert_eq!(b1.nick(), "alice", "{}", b1.welcome);

    // The password on B, from a line client and a WebSocket client.
    let mut lb = common::quiet_line(b);
    lb.login("alice", PW);
    let mut b2 = WsClient::connect(b.addr, "");
    let t2 = b2.login("alice", PW);
    // A token login by request on B.
    let mut b3 = WsClient::connect(b.addr, "");
    let v = b3.ok(json!({"type": "login", "token": t1}), "account");
    assert_eq!(v["account"], "alice", "{v}");
    // B's token on A.
    let a2 = eventually(Duration::from_secs(5), "A knows B's token", || {
        let c = WsClient::connect(a.addr, &format!("token={t2}"));
        (c.welcome["account"] == "alice").then_some(c)
    });
    assert_eq!(a2.nick(), "alice");

    // A guest on B cannot take the registered nick.
    let mut g = common::quiet_line(b);
    for nick in ["alice", "Alice"] {
        g.send(&format!("/nick {nick}"));
        let (code, message) = line_error(&g.line());
        assert_eq!(code, "nick_registered", "{message}");
    }
    let mut w = WsClient::connect(b.addr, "nick=alice");
    assert_ne!(w.nick(), "alice", "{}", w.welcome);
    assert_eq!(w.welcome["account"], Value::Null, "{}", w.welcome);
    let e = w.recv();
    assert_eq!(
        (&e["type"], &e["code"]),
        (&json!("error"), &json!("nick_registered")),
        "{e}"
    );

    // A password change on A revokes every token, B's too, on B.
    let v = a1.ok(
        json!({"type": "password", "old": PW, "new": "second-password"}),
        "account",
    );
    let t3 = v["token"].as_str().expect("a new token").to_string();
    for (name, t) in [("A's", &t1), ("B's", &t2)] {
        eventually(
            Duration::from_secs(5),
            &format!("B refuses {name} old token"),
            || {
                let mut c = WsClient::connect(b.addr, &format!("token={t}"));
                if c.welcome["account"] == "alice" {
                    c.close();
                    return None;
                }
                let e = c.recv();
                assert_eq!(e["code"], "login_failed", "{e}");
                Some(())
            },
        );
    }
    let mut c = WsClient::connect(a.addr, &format!("token={t2}"));
    assert_eq!(c.welcome["account"], Value::Null, "{}", c.welcome);
    assert_eq!(c.recv()["code"], "login_failed");
    let c = WsClient::connect(b.addr, &format!("token={t3}"));
    assert_eq!(c.welcome["account"], "alice", "the new token works on B");
    // The new password on B; the old one no more.
    let mut g2 = WsClient::connect(b.addr, "");
    g2.refused(
        json!({"type": "login", "nick": "alice", "password": PW}),
        "login_failed",
    );
    g2.login("alice", "second-password");
    // Still: a guest on B cannot be alice, now that every connection of
    // the account is closed.
    for conn in [a1, b1, b2, b3, a2, c, g2] {
        conn.close();
    }
    lb.send("/quit");
    assert_eq!(lb.line(), "*** bye");
    eventually(Duration::from_secs(5), "alice held nowhere", || {
        (!chat.nicks_in_redis().iter().any(|n| n == "alice")).then_some(())
    });
    g.send("/nick alice");
    assert_eq!(line_error(&g.line()).0, "nick_registered");
}

/// Joins `room` over and over (leaving again after a success) until it is
/// refused with `code` (a setting stored elsewhere reaches this process a
/// moment later).
fn until_refused(c: &mut WsClient, room: &str, code: &str) {
    eventually(Duration::from_secs(5), &format!("{room}: {code}"), || {
        let v = c.ask(json!({"type": "join", "room": room}), "joined");
        if v["type"] == "joined" {
            c.ok(json!({"type": "leave", "room": room}), "left");
            return None;
        }
        assert_eq!(v["code"], code, "{v}");
        Some(())
    });
}

#[test]
fn room_settings_and_lists_set_on_one_process_hold_on_the_others() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    // alice, an account on A, makes #den: its owner.
    let mut alice = quiet_named(a, "alice");
    alice.register(PW);
    alice.send("/join den");
    assert_eq!(alice.answer(), "*** you joined #den (1 here: alice)");
    // bob and carl: accounts registered on B.
    let mut bob = ws_named(b, "bob");
    bob.register(PW);
    let mut carl = ws_named(b, "carl");
    carl.register(PW);

    // alice makes carl (an account A learns from Redis) an op.
    eventually(Duration::from_secs(5), "A knows carl's account", || {
        alice.send("/op carl");
        let l = alice.line();
        if strip_clock(&l).as_deref() == Some("#den --- alice made carl an op") {
            return Some(());
        }
        assert_eq!(line_error(&l).0, "not_permitted", "{l}");
        None
    });
    alice.send("/topic Rust and tea");
    assert_eq!(alice.event(), "#den --- alice set the topic: Rust and tea");

    // On B: the topic, the owner and the ops in joined; the topic line.
    let mut gus = quiet_named(b, "gus");
    gus.send("/join den");
    assert_eq!(gus.answer(), "*** you joined #den (2 here: alice, gus)");
    assert_eq!(gus.answer(), "*** topic of #den: Rust and tea");
    assert_eq!(alice.event(), "#den --> gus joined");
    let j = bob.join("den");
    assert_eq!(j["topic"], "Rust and tea", "{j}");
    assert_eq!(j["owner"], "alice", "{j}");
    assert_eq!(j["ops"], json!(["carl"]), "{j}");
    assert_eq!(j["invite_only"], false, "{j}");
    assert_eq!(j["role"], "member", "{j}");
    assert_eq!(members_of(&j), ["alice", "bob", "gus"], "{j}");
    assert_eq!(alice.event(), "#den --> bob joined");

    // alice bans the account bob on A. (Ejecting bob's connection on B is
    // not shared yet: not asserted. bob leaves by himself.)
    alice.send("/ban bob no tea for you");
    assert_eq!(
        alice.event(),
        "#den <-- bob was banned by alice (no tea for you)"
    );
    let v = bob.ask(json!({"type": "leave", "room": "den"}), "left");
    if v["type"] == "error" {
        assert_eq!(v["code"], "not_in_room", "{v}");
    } else {
        assert_eq!(alice.event(), "#den <-- bob left");
    }
    until_refused(&mut bob, "den", "banned");
    // On bob's other connection, a line client on B, too.
    let mut bob_line = common::quiet_line(b);
    bob_line.login("bob", PW);
    bob_line.send("/join den");
    assert_eq!(line_error(&bob_line.answer()).0, "banned");

    // alice makes #den invite-only on A and invites the account dora.
    let mut dora = ws_named(b, "dora");
    dora.register(PW);
    alice.send("/invite-only on");
    assert_eq!(alice.event(), "#den --- alice made the room invite-only");
    eventually(Duration::from_secs(5), "A knows dora's account", || {
        alice.send("/invite dora");
        let l = text_of(alice.line());
        if l == "#den --- alice invited dora" {
            return Some(());
        }
        assert!(l.starts_with("!!! "), "{l}");
        None
    });
    // A guest on B who was in (and left) and a new one: invite_only.
    gus.send("/leave den");
    assert_eq!(gus.answer(), "*** you left #den");
    assert_eq!(alice.event(), "#den <-- gus left");
    let mut gw = WsClient::connect(b.addr, "nick=gwen");
    until_refused(&mut gw, "den", "invite_only");
    gus.send("/join den");
    assert_eq!(line_error(&gus.answer()).0, "invite_only");
    // The op carl and the invited dora may join on B.
    let j = carl.join("den");
    assert_eq!(j["invite_only"], true, "{j}");
    assert_eq!(j["role"], "op", "{j}");
    let j = dora.join("den");
    assert_eq!(j["role"], "member", "{j}");
    assert!(members_of(&j).contains(&"alice".to_string()), "{j}");

    // The op on B sets the topic; alice's new connection on A sees it.
    carl.ok(
        json!({"type": "mod", "room": "den", "action": "topic", "text": "set on B"}),
        "mod",
    );
    let mut a2 = WsClient::connect(a.addr, "");
    a2.login("alice", PW);
    eventually(Duration::from_secs(5), "A shows B's topic", || {
        let j = a2.join("den");
        assert_eq!(j["role"], "owner", "{j}");
        (j["topic"] == "set on B").then_some(())
    });
    // And alice lifts the ban on A: bob may join on B.
    alice.send("/unban bob");
    let l = alice.line_where(|l| strip_clock(l).is_some_and(|e| e.contains("unbanned")));
    assert_eq!(
        strip_clock(&l).as_deref(),
        Some("#den --- alice unbanned bob")
    );
    alice.send("/invite bob");
    eventually(Duration::from_secs(5), "bob may join on B", || {
        let v = bob.ask(json!({"type": "join", "room": "den"}), "joined");
        if v["type"] == "joined" {
            return Some(());
        }
        // The unban or the invite may come first.
        assert!(v["code"] == "banned" || v["code"] == "invite_only", "{v}");
        None
    });
}

/// A line, its clock removed if it has one.
fn text_of(l: String) -> String {
    strip_clock(&l).unwrap_or(l)
}

#[test]
fn typing_reaches_websocket_clients_on_other_processes() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut wa = ws_named(a, "wanda");
    wa.join("lobby");
    let mut wb = ws_named(b, "wbert");
    wb.join("lobby");
    let mut lb = line_named(b, "lbert");
    let mut out = ws_named(b, "otto");
    out.join("dev");
    eventually(Duration::from_secs(5), "A lists wbert and lbert", || {
        (ws_who(&mut wa, "lobby") == sorted(&["lbert", "wanda", "wbert"])).then_some(())
    });
    drain_ws(&mut wa, QUIET);
    drain_ws(&mut wb, QUIET);
    drain_line(&mut lb, QUIET);

    // A to B.
    wa.send(json!({"type": "typing", "room": "lobby"}));
    let t = wb.recv();
    assert_eq!(
        (&t["type"], &t["room"], &t["nick"]),
        (&json!("typing"), &json!("lobby"), &json!("wanda")),
        "{t}"
    );
    assert!(t["ts"].is_u64(), "{t}");
    // B to A.
    wb.send(json!({"type": "typing", "room": "lobby"}));
    let t = wa.recv();
    assert_eq!(
        (&t["type"], &t["room"], &t["nick"]),
        (&json!("typing"), &json!("lobby"), &json!("wbert")),
        "{t}"
    );
    // Not to line clients, not to the typist, not to other rooms.
    lb.nothing_more();
    out.nothing_more();
    wa.nothing_more();
    wb.nothing_more();
}

/// `joined`'s `accounts` lists the room's logged-in members
/// (docs/PROTOCOL.md), those on other processes too.
#[test]
fn joined_marks_logged_in_members_on_other_processes() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut alice = ws_named(a, "alice");
    alice.register(PW);
    alice.join("den");
    let mut bob = ws_named(b, "bob");
    bob.register(PW);
    let mut gus = ws_named(b, "gus");
    gus.join("den");
    let p = presence(&mut alice, "den", "join", "gus", None);
    assert!(p.get("account").is_none(), "{p}");
    // bob joins on B: alice's join is on A, an account: joined's
    // `accounts` lists the logged-in members (docs/PROTOCOL.md).
    let j = bob.join("den");
    assert_eq!(members_of(&j), ["alice", "bob", "gus"], "{j}");
    let p = presence(&mut alice, "den", "join", "bob", None);
    assert_eq!(p["account"], "bob", "A is told bob's account: {p}");
    assert_eq!(
        j["accounts"],
        json!(["alice", "bob"]),
        "B's joined names alice (logged in, on A) among the accounts: {j}"
    );
}

/// Rooms made by `/create` are unlisted: only their code lets anyone in,
/// so no process may show the code in `rooms`, `/rooms` or `/api/rooms`.
#[test]
fn a_created_room_stays_unlisted_on_other_processes() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut w = ws_named(a, "wanda");
    let j = w.ok(json!({"type": "create"}), "joined");
    let code = j["room"].as_str().expect("a code").to_string();
    w.join("open");
    let mut pb = WsClient::connect(b.addr, "");
    eventually(Duration::from_secs(5), "B lists wanda in #open", || {
        (ws_who(&mut pb, "open") == ["wanda"]).then_some(())
    });
    // Unlisted on A, and on B too: only its code lets anyone in.
    for (name, s) in [("A", a), ("B", b)] {
        let mut c = WsClient::connect(s.addr, "");
        let r = c.ok(json!({"type": "rooms"}), "rooms");
        assert_eq!(
            r["rooms"],
            json!([{"name": "open", "members": 1}]),
            "{name} lists #{code}: {r}"
        );
        let api = common::http(s.addr, "GET", "/api/rooms").json();
        assert_eq!(api["rooms"], r["rooms"], "GET /api/rooms on {name}");
    }
    let mut l = common::quiet_line(b);
    l.send("/rooms");
    assert_eq!(l.line(), "*** rooms: #open (1)");
}

/// One account on connections to two processes: a DM to the nick reaches
/// all of them, and the sender's other connections get the copy
/// (PROTOCOL-2 section 1), wherever each one is.
#[test]
fn a_dm_reaches_every_connection_of_an_account_on_every_process() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut alice_a = ws_named(a, "alice");
    let token = alice_a.register(PW);
    let mut alice_b = eventually(Duration::from_secs(5), "B knows alice", || {
        let c = WsClient::connect(b.addr, &format!("token={token}"));
        (c.welcome["account"] == "alice").then_some(c)
    });
    let mut bob = ws_named(a, "bob");
    let mut carl = ws_named(b, "carl");
    let mut pa = WsClient::connect(a.addr, "");
    reachable(&mut pa, "carl");
    carl.recv();

    // From B (where alice is too) and from A (likewise): both of alice's
    // connections get it, whichever process the sender is on. (Every
    // miss is gathered, then reported together.)
    let mut missed = Vec::new();
    for (from, name) in [(&mut carl, "carl"), (&mut bob, "bob")] {
        let text = format!("from {name}");
        from.ok(json!({"type": "dm", "to": "alice", "text": text}), "dm");
        for (end, c) in [("A", &mut alice_a), ("B", &mut alice_b)] {
            let d = c.try_recv(Duration::from_secs(2));
            if !d
                .as_ref()
                .is_some_and(|d| d["type"] == "dm" && d["from"] == name && d["text"] == text)
            {
                missed.push(format!(
                    "alice's connection on {end} got {d:?} for a DM from {name}"
                ));
            }
        }
    }
    // A DM from alice on A: her connection on B gets the sender's copy.
    alice_a.ok(json!({"type": "dm", "to": "carl", "text": "mine"}), "dm");
    let d = carl.recv();
    assert_eq!((&d["from"], &d["text"]), (&json!("alice"), &json!("mine")));
    let copy = alice_b.try_recv(Duration::from_secs(2));
    if !copy
        .as_ref()
        .is_some_and(|d| d["type"] == "dm" && d["to"] == "carl" && d["text"] == "mine")
    {
        missed.push(format!(
            "alice's connection on B got {copy:?} as the copy of her DM sent on A"
        ));
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

/// "Each action is a room event to every member" (PROTOCOL-2 section 2):
/// members of the room on other processes too.
#[test]
fn moderation_events_reach_members_on_other_processes() {
    let chat = Chat::start(2);
    let (a, b) = (&chat.natters[0], &chat.natters[1]);
    let mut alice = quiet_named(a, "alice");
    alice.register(PW);
    alice.send("/join den");
    assert_eq!(alice.answer(), "*** you joined #den (1 here: alice)");
    let mut gus = quiet_named(b, "gus");
    gus.send("/join den");
    assert_eq!(gus.answer(), "*** you joined #den (2 here: alice, gus)");
    let mut wes = ws_named(b, "wes");
    wes.join("den");
    assert_eq!(alice.event(), "#den --> gus joined");
    assert_eq!(alice.event(), "#den --> wes joined");
    assert_eq!(gus.event(), "#den --> wes joined");

    // Every member sees a moderation action (PROTOCOL-2 section 2), on
    // whichever process.
    alice.send("/topic set on A");
    assert_eq!(alice.event(), "#den --- alice set the topic: set on A");
    let l = gus.try_line(Duration::from_secs(2));
    let m = wes.try_recv(Duration::from_secs(2));
    let line_ok = l.as_deref().and_then(strip_clock).as_deref()
        == Some("#den --- alice set the topic: set on A");
    let ws_ok = m.as_ref().is_some_and(|m| {
        m["type"] == "mod"
            && m["action"] == "topic"
            && m["by"] == "alice"
            && m["text"] == "set on A"
    });
    assert!(
        line_ok && ws_ok,
        "members of #den on B were told: gus (line) {l:?}, wes (WebSocket) {m:?}"
    );
}
