//! Accounts (PROTOCOL-2 section 1, docs/PROTOCOL.md "Version 2") against
//! the real binary over real sockets: registering and logging in from line
//! clients, the real netcat and WebSocket clients, one account on several
//! connections, login tokens and their revocation, the failed-login
//! limits, passwords refused over plain TCP from another machine,
//! `--require-login`, `--registration closed` with `natter accounts add`
//! beside the running server, and accounts and tokens kept across
//! `kill -9`.
//!
//! Password hashing runs on the server's helper thread and takes a while,
//! so every test waits for each answer before it sends what depends on it.

mod common;
use common::*;

use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const PW: &str = "correct-horse-battery";

#[test]
fn line_clients_logged_in_to_one_account_share_its_nick() {
    let s = Server::start(&[]);
    let mut bob = quiet_line(&s);
    bob.send("/nick bob");
    assert_eq!(bob.line(), "*** you are now known as bob");
    bob.nick = "bob".into();
    bob.send("/join den");
    assert_eq!(bob.line(), "*** you joined #den (1 here: bob)");

    let mut a1 = quiet_line(&s);
    a1.nick_and_register("alice", PW);
    let mut a2 = quiet_line(&s);
    a2.login("alice", PW);

    a1.send("/join den");
    assert_eq!(a1.line(), "*** you joined #den (2 here: alice, bob)");
    assert_eq!(bob.event(), "#den --> alice joined");
    // The second connection joins under the same nick: the room already
    // has alice, so it sees nothing, and the list names alice once.
    a2.send("/join den");
    assert_eq!(a2.line(), "*** you joined #den (2 here: alice, bob)");
    bob.send("/who den");
    assert_eq!(bob.line(), "*** #den (2): alice, bob");

    // A message from one connection reaches the other one too.
    a2.send("from the second connection");
    assert_eq!(bob.event(), "#den <alice> from the second connection");
    assert_eq!(a1.event(), "#den <alice> from the second connection");

    // A DM to the nick reaches both connections.
    bob.send("/msg alice psst");
    assert_eq!(bob.event(), "(dm to alice) <bob> psst");
    assert_eq!(a1.event(), "(dm) <bob> psst");
    assert_eq!(a2.event(), "(dm) <bob> psst");
    // A DM from one of them: the other gets the sender's copy.
    a1.send("/msg bob hello back");
    assert_eq!(bob.event(), "(dm) <alice> hello back");
    assert_eq!(a1.event(), "(dm to bob) <alice> hello back");
    assert_eq!(a2.event(), "(dm to bob) <alice> hello back");

    // The room sees alice leave only when the last connection leaves.
    a1.send("/leave den");
    assert_eq!(a1.line(), "*** you left #den");
    bob.nothing_more();
    a2.send("/leave den");
    assert_eq!(a2.line(), "*** you left #den");
    assert_eq!(bob.event(), "#den <-- alice left");
    a1.nothing_more();
}

#[test]
fn websocket_clients_logged_in_to_one_account_share_its_nick() {
    let s = Server::start(&[]);
    let mut bob = WsClient::connect(s.addr, "nick=bob");
    bob.join("den");

    let mut a1 = WsClient::connect(s.addr, "nick=alice");
    assert_eq!(a1.welcome["account"], Value::Null, "{}", a1.welcome);
    let t1 = a1.register(PW);
    assert!(t1.len() >= 32, "a token of at least 128 bits: {t1:?}");

    // A guest logs in: its nick changes (the v1 nick event), then the
    // account answer, both with the request's ref.
    let mut a2 = WsClient::connect(s.addr, "");
    a2.send(json!({"type": "login", "nick": "alice", "password": PW, "ref": "in"}));
    let nick = a2.recv();
    assert_eq!(nick, json!({"type": "nick", "nick": "alice", "ref": "in"}));
    let account = a2.recv();
    assert_eq!(account["type"], "account", "{account}");
    assert_eq!(account["account"], "alice", "{account}");
    assert_eq!(account["ref"], "in", "{account}");
    let t2 = account["token"].as_str().expect("token").to_string();
    assert_ne!(t1, t2, "each login has its own token");
    a2.welcome["nick"] = json!("alice");

    let j1 = a1.join("den");
    assert_eq!(j1["members"], json!(["alice", "bob"]), "{j1}");
    assert_eq!(j1["accounts"], json!(["alice"]), "{j1}");
    let join = bob.recv();
    assert_eq!(join["type"], "presence", "{join}");
    assert_eq!(join["event"], "join", "{join}");
    assert_eq!(join["nick"], "alice", "{join}");
    assert_eq!(join["account"], "alice", "{join}");

    let j2 = a2.join("den");
    assert_eq!(j2["members"], json!(["alice", "bob"]), "{j2}");
    bob.nothing_more();

    // A message from the second connection reaches the first, and the room.
    let echo = a2.ok(
        json!({"type": "say", "room": "den", "text": "from the phone"}),
        "message",
    );
    assert_eq!(echo["account"], "alice", "{echo}");
    for c in [&mut bob, &mut a1] {
        let m = c.recv();
        assert_eq!(m["type"], "message", "{m}");
        assert_eq!(m["from"], "alice", "{m}");
        assert_eq!(m["account"], "alice", "{m}");
        assert_eq!(m["text"], "from the phone", "{m}");
        assert_eq!(m["seq"], echo["seq"], "{m}");
    }

    // A DM to the nick reaches both connections.
    let sent = bob.ok(json!({"type": "dm", "to": "alice", "text": "psst"}), "dm");
    assert!(sent.get("account").is_none(), "bob is a guest: {sent}");
    for c in [&mut a1, &mut a2] {
        let d = c.recv();
        assert_eq!(d["type"], "dm", "{d}");
        assert_eq!((&d["from"], &d["to"]), (&json!("bob"), &json!("alice")));
        assert_eq!(d["text"], "psst", "{d}");
    }
    // A DM from one of them: the other connection gets the copy.
    a1.ok(json!({"type": "dm", "to": "bob", "text": "back"}), "dm");
    for c in [&mut bob, &mut a2] {
        let d = c.recv();
        assert_eq!(d["type"], "dm", "{d}");
        assert_eq!((&d["from"], &d["to"]), (&json!("alice"), &json!("bob")));
        assert_eq!(d["account"], "alice", "{d}");
        assert_eq!(d["text"], "back", "{d}");
    }

    // The room sees alice leave when the last connection leaves.
    a1.ok(json!({"type": "leave", "room": "den"}), "left");
    bob.nothing_more();
    a2.ok(json!({"type": "leave", "room": "den"}), "left");
    let leave = bob.recv();
    assert_eq!(leave["type"], "presence", "{leave}");
    assert_eq!(leave["event"], "leave", "{leave}");
    assert_eq!(leave["nick"], "alice", "{leave}");
    assert_eq!(leave["reason"], "leave", "{leave}");
}

/// The next message must be the presence `event` of `nick` in `#den`;
/// returns it.
fn presence(c: &mut WsClient, event: &str, nick: &str) -> Value {
    let p = c.recv();
    assert_eq!(p["type"], "presence", "{p}");
    assert_eq!(p["room"], "den", "{p}");
    assert_eq!(p["event"], event, "{p}");
    assert_eq!(p["nick"], nick, "{p}");
    p
}

#[test]
fn logging_in_and_out_inside_a_room() {
    let s = Server::start(&[]);
    let mut a1 = WsClient::connect(s.addr, "nick=alice");
    a1.register(PW);
    let mut bob = WsClient::connect(s.addr, "nick=bob");
    bob.join("den");
    let mut carl = quiet_line(&s);
    carl.send("/nick carl");
    assert_eq!(carl.line(), "*** you are now known as carl");
    carl.send("/join den");
    assert_eq!(carl.line(), "*** you joined #den (2 here: bob, carl)");
    let p = presence(&mut bob, "join", "carl");
    assert!(p.get("account").is_none(), "a guest: {p}");

    // A guest in the room logs in: a nick change that names the account.
    let mut g = WsClient::connect(s.addr, "nick=gil");
    g.join("den");
    presence(&mut bob, "join", "gil");
    assert_eq!(carl.event(), "#den --> gil joined");
    g.login("alice", PW);
    let p = presence(&mut bob, "nick", "alice");
    assert_eq!(p["old"], "gil", "{p}");
    assert_eq!(p["account"], "alice", "{p}");
    assert_eq!(carl.event(), "#den --- gil is now known as alice");

    // Another guest in the room logs in to the same account (the name in
    // any case): alice is there already, so the room sees the guest go.
    let mut h = quiet_line(&s);
    h.send("/nick hal");
    assert_eq!(h.line(), "*** you are now known as hal");
    h.send("/join den");
    assert_eq!(
        h.line(),
        "*** you joined #den (4 here: alice, bob, carl, hal)"
    );
    presence(&mut bob, "join", "hal");
    assert_eq!(carl.event(), "#den --> hal joined");
    h.send(&format!("/login ALICE {PW}"));
    assert_eq!(h.line(), "*** you are logged in as alice");
    let p = presence(&mut bob, "leave", "hal");
    assert_eq!(p["reason"], "leave", "{p}");
    assert_eq!(carl.event(), "#den <-- hal left");

    // One of them logs out: a new guest in the room, alice stays.
    g.send(json!({"type": "logout", "ref": "out"}));
    // (g saw hal come and go first.)
    presence(&mut g, "join", "hal");
    presence(&mut g, "leave", "hal");
    let n = g.recv();
    assert_eq!(n["type"], "nick", "{n}");
    let fresh = n["nick"].as_str().expect("nick").to_string();
    assert_eq!(
        g.recv(),
        json!({"type": "account", "account": null, "ref": "out"})
    );
    let p = presence(&mut bob, "join", &fresh);
    assert!(p.get("account").is_none(), "{p}");
    assert_eq!(carl.event(), format!("#den --> {fresh} joined"));
    assert_eq!(h.event(), format!("#den --> {fresh} joined"));
    bob.nothing_more();

    // The last one quits: now alice leaves.
    h.send("/quit");
    assert_eq!(h.line(), "*** bye");
    let p = presence(&mut bob, "leave", "alice");
    assert_eq!(p["reason"], "quit", "{p}");
    assert_eq!(carl.event(), "#den <-- alice left (quit)");
    let who = bob.ok(json!({"type": "who", "room": "den"}), "who");
    let mut members: Vec<String> = who["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m.as_str().expect("nick").to_string())
        .collect();
    members.sort();
    let mut want = vec!["bob".to_string(), "carl".to_string(), fresh];
    want.sort();
    assert_eq!(members, want);

    // Only a1 holds alice now (out of every room): a DM reaches it.
    bob.ok(json!({"type": "dm", "to": "alice", "text": "a1?"}), "dm");
    assert_eq!(a1.recv_type("dm")["text"], "a1?");
    // Once a1 logs out too, nobody holds alice: a DM finds nobody, a
    // login finds the name free.
    a1.ok(json!({"type": "logout"}), "account");
    bob.refused(
        json!({"type": "dm", "to": "alice", "text": "anyone?"}),
        "no_such_user",
    );
    let mut again = quiet_line(&s);
    again.login("alice", PW);
}

#[test]
fn what_comes_after_a_login_waits_for_the_password_check() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    a.register(PW);
    let mut bob = quiet_line(&s);
    bob.send("/join den");
    assert!(bob.line().starts_with("*** you joined #den (1 here: "));
    let mut g = quiet_line(&s);
    g.send("/nick gil");
    assert_eq!(g.line(), "*** you are now known as gil");
    g.send("/join den");
    assert!(g.line().starts_with("*** you joined #den (2 here: "));
    assert_eq!(bob.event(), "#den --> gil joined");

    // Both lines in one write: the text is said once the login is done,
    // so it is alice's.
    g.send_bytes(format!("/login alice {PW}\nsaid after the login\n").as_bytes());
    assert_eq!(g.line(), "*** you are logged in as alice");
    assert_eq!(bob.event(), "#den --- gil is now known as alice");
    assert_eq!(bob.event(), "#den <alice> said after the login");

    // The same over JSON, without waiting for the answer.
    let mut w = WsClient::connect(s.addr, "nick=wes");
    w.join("den");
    assert_eq!(bob.event(), "#den --> wes joined");
    w.send(json!({"type": "login", "nick": "alice", "password": PW}));
    w.send(json!({"type": "say", "room": "den", "text": "me too", "ref": "s"}));
    let m = w.recv_type("message");
    assert_eq!(m["account"], "alice", "{m}");
    assert_eq!(m["from"], "alice", "{m}");
    assert_eq!(bob.event(), "#den <-- wes left");
    assert_eq!(bob.event(), "#den <alice> me too");
}

#[test]
fn a_line_password_is_the_rest_of_the_line_as_typed() {
    let s = Server::start(&[]);
    let mut a = quiet_line(&s);
    a.nick_and_register("alice", " spaced out pass ");
    let mut l = quiet_line(&s);
    for wrong in ["spaced out pass", " spaced out pass", "spaced out pass "] {
        l.send(&format!("/login alice {wrong}"));
        assert_eq!(line_error(&l.line()).0, "login_failed", "{wrong:?}");
    }
    l.login("alice", " spaced out pass ");
    let mut w = WsClient::connect(s.addr, "");
    w.login("alice", " spaced out pass ");
}

#[test]
fn refusals_of_malformed_account_requests() {
    let s = Server::start(&[]);
    let mut l = quiet_line(&s);
    for input in [
        "/register short",
        "/register",
        "/login alice",
        "/password one",
    ] {
        l.send(input);
        assert_eq!(line_error(&l.line()).0, "bad_request", "{input}");
    }
    l.send("/logout");
    assert_eq!(line_error(&l.line()).0, "not_permitted");
    let mut w = WsClient::connect(s.addr, "nick=alice");
    w.refused(
        json!({"type": "register", "password": "x".repeat(129)}),
        "bad_request",
    );
    let token = w.register(&"x".repeat(128));
    w.refused(json!({"type": "register", "password": PW}), "not_permitted");
    w.refused(
        json!({"type": "login", "nick": "alice", "token": token, "password": PW}),
        "bad_request",
    );
    w.refused(json!({"type": "login", "nick": "alice"}), "bad_request");
}

#[test]
fn a_resumed_session_is_still_logged_in() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    a.register(PW);
    a.join("den");
    let session = a.welcome["session"].as_str().expect("session").to_string();
    let mut bob = WsClient::connect(s.addr, "nick=bob");
    bob.join("den");
    // Gone without a close frame: held for --resume-grace.
    drop(a);
    let mut b = WsClient::connect(s.addr, &format!("resume={session}"));
    assert_eq!(b.welcome["nick"], "alice", "{}", b.welcome);
    assert_eq!(b.welcome["account"], "alice", "{}", b.welcome);
    let j = b.recv_type("joined");
    assert_eq!(j["room"], "den", "{j}");
    let m = b.ok(
        json!({"type": "say", "room": "den", "text": "back"}),
        "message",
    );
    assert_eq!(m["account"], "alice", "{m}");
    let m = bob.recv();
    assert_eq!(
        (&m["text"], &m["account"]),
        (&json!("back"), &json!("alice"))
    );
}

#[test]
fn netcat_registers_and_shares_the_account_with_another_connection() {
    let s = Server::start(&[]);
    let mut nc = Nc::start(s.addr);
    let welcome = nc.line();
    nick_in_welcome(&welcome);
    assert!(nc.line().starts_with("*** you joined #lobby ("));
    nc.send("/leave lobby");
    assert_eq!(nc.line(), "*** you left #lobby");
    nc.send("/nick alice");
    assert_eq!(nc.line(), "*** you are now known as alice");
    // The password is the rest of the line, spaces and all.
    nc.send("/register correct horse battery staple");
    assert_eq!(
        nc.line(),
        "*** account alice registered; you are logged in as alice"
    );

    let mut other = quiet_line(&s);
    other.login("alice", "correct horse battery staple");

    let mut bob = WsClient::connect(s.addr, "nick=bob");
    bob.ok(
        json!({"type": "dm", "to": "alice", "text": "to both"}),
        "dm",
    );
    assert_eq!(nc.event(), "(dm) <bob> to both");
    assert_eq!(other.event(), "(dm) <bob> to both");

    nc.send("/msg bob from netcat");
    assert_eq!(nc.event(), "(dm to bob) <alice> from netcat");
    assert_eq!(other.event(), "(dm to bob) <alice> from netcat");
    let d = bob.recv();
    assert_eq!(d["from"], "alice", "{d}");
    assert_eq!(d["account"], "alice", "{d}");
    assert_eq!(d["text"], "from netcat", "{d}");

    // A password with its spaces cut is another password.
    let mut guest = quiet_line(&s);
    guest.send("/login alice correct horse battery");
    assert_eq!(line_error(&guest.line()).0, "login_failed");
}

/// A WebSocket client connected with `/ws?token=TOKEN`.
fn with_token(addr: SocketAddr, token: &str) -> WsClient {
    WsClient::connect(addr, &format!("token={token}"))
}

/// Connecting with a token that no longer works: a guest, then
/// `login_failed`.
fn token_refused(addr: SocketAddr, token: &str) {
    let mut c = with_token(addr, token);
    assert_eq!(c.welcome["account"], Value::Null, "{}", c.welcome);
    assert_ne!(c.welcome["nick"], "alice", "{}", c.welcome);
    let e = c.recv();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "login_failed", "{e}");
    c.refused(json!({"type": "login", "token": token}), "login_failed");
}

#[test]
fn a_login_token_logs_in_at_connect_and_by_request() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    let token = a.register(PW);

    let b = with_token(s.addr, &token);
    assert_eq!(b.welcome["nick"], "alice", "{}", b.welcome);
    assert_eq!(b.welcome["account"], "alice", "{}", b.welcome);

    let mut c = WsClient::connect(s.addr, "");
    assert_eq!(c.welcome["account"], Value::Null, "{}", c.welcome);
    let v = c.ok(json!({"type": "login", "token": token}), "account");
    assert_eq!(v["account"], "alice", "{v}");
    c.welcome["nick"] = json!("alice");
    // Logged in: what it says carries the account.
    let m = c.ok(json!({"type": "join", "room": "den"}), "joined");
    assert_eq!(m["accounts"], json!(["alice"]), "{m}");

    token_refused(s.addr, "0123456789abcdef0123456789abcdef");
}

#[test]
fn logout_revokes_the_token_of_that_login() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    let gone = a.register(PW);
    let mut b = WsClient::connect(s.addr, "");
    let kept = b.login("alice", PW);

    a.send(json!({"type": "logout", "ref": "out"}));
    let nick = a.recv();
    assert_eq!(nick["type"], "nick", "{nick}");
    let fresh = nick["nick"].as_str().expect("nick").to_string();
    assert_ne!(fresh, "alice");
    let v = a.recv();
    assert_eq!(v, json!({"type": "account", "account": null, "ref": "out"}));
    // A guest again: logging out twice is refused.
    a.refused(json!({"type": "logout"}), "not_permitted");

    token_refused(s.addr, &gone);
    let mut c = with_token(s.addr, &kept);
    assert_eq!(c.welcome["account"], "alice", "{}", c.welcome);
    // A login made with a token revokes that token when it logs out.
    c.ok(json!({"type": "logout"}), "account");
    token_refused(s.addr, &kept);

    // The line client's confirmation names its fresh nick.
    let mut l = quiet_line(&s);
    l.login("alice", PW);
    l.send("/logout");
    let out = l.line();
    let guest = out
        .strip_prefix("*** you are logged out; you are now ")
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_ne!(guest, "alice");
    l.send("/nick alice");
    assert_eq!(line_error(&l.line()).0, "nick_registered");
}

#[test]
fn a_password_change_revokes_every_token_but_the_new_one() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    let t1 = a.register("first-password");
    let mut b = WsClient::connect(s.addr, "");
    let t2 = b.login("alice", "first-password");

    a.refused(
        json!({"type": "password", "old": "not-the-password", "new": "second-password"}),
        "login_failed",
    );
    let v = a.ok(
        json!({"type": "password", "old": "first-password", "new": "second-password"}),
        "account",
    );
    assert_eq!(v["account"], "alice", "{v}");
    let t3 = v["token"].as_str().expect("a new token").to_string();
    assert!(t3 != t1 && t3 != t2);

    token_refused(s.addr, &t1);
    token_refused(s.addr, &t2);
    let c = with_token(s.addr, &t3);
    assert_eq!(c.welcome["account"], "alice", "{}", c.welcome);

    let mut g = WsClient::connect(s.addr, "");
    g.refused(
        json!({"type": "login", "nick": "alice", "password": "first-password"}),
        "login_failed",
    );
    g.login("alice", "second-password");

    // The line form: two words, no spaces in either.
    let mut l = quiet_line(&s);
    l.login("alice", "second-password");
    l.send("/password second-password third-password");
    assert_eq!(l.line(), "*** password changed");
    l.send("/password third-password has spaces");
    assert_eq!(line_error(&l.line()).0, "bad_request");
    token_refused(s.addr, &t3);
    let mut m = quiet_line(&s);
    m.login("alice", "third-password");
}

#[test]
fn a_guest_cannot_take_a_registered_nick() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    a.register(PW);

    let mut g = quiet_line(&s);
    for nick in ["alice", "ALICE"] {
        g.send(&format!("/nick {nick}"));
        let (code, message) = line_error(&g.line());
        assert_eq!(code, "nick_registered", "{message}");
    }

    let mut w = WsClient::connect(s.addr, "");
    w.refused(json!({"type": "nick", "nick": "Alice"}), "nick_registered");

    let mut x = WsClient::connect(s.addr, "nick=alice");
    assert_ne!(
        x.welcome["nick"].as_str().map(str::to_ascii_lowercase),
        Some("alice".to_string()),
        "{}",
        x.welcome
    );
    assert_eq!(x.welcome["account"], Value::Null, "{}", x.welcome);
    let e = x.recv();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "nick_registered", "{e}");
}

#[test]
fn login_failed_does_not_say_which_part_was_wrong() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    a.register(PW);

    let mut l = quiet_line(&s);
    l.send("/login nobody some-password");
    let unknown = line_error(&l.line());
    l.send("/login alice wrong-password");
    let wrong = line_error(&l.line());
    assert_eq!(unknown.0, "login_failed");
    assert_eq!(unknown, wrong);

    let mut w = WsClient::connect(s.addr, "");
    let unknown_ws = w.refused(
        json!({"type": "login", "nick": "nobody", "password": "some-password"}),
        "login_failed",
    );
    let wrong_ws = w.refused(
        json!({"type": "login", "nick": "alice", "password": "wrong-password"}),
        "login_failed",
    );
    assert_eq!(unknown_ws["message"], wrong_ws["message"]);
    assert_eq!(unknown_ws["message"], unknown.1.as_str());
}

#[test]
fn five_failed_logins_a_minute_lock_the_account_from_any_address() {
    let s = Server::start(&[]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    a.register(PW);
    let mut b = WsClient::connect(s.addr, "nick=bob");
    b.register(PW);

    let mut l = quiet_line(&s);
    for i in 0..5 {
        l.send(&format!("/login alice wrong-password-{i}"));
        assert_eq!(line_error(&l.line()).0, "login_failed", "failure {i}");
    }
    // The sixth is refused before the password is looked at: even the
    // right one.
    l.send(&format!("/login alice {PW}"));
    assert_eq!(line_error(&l.line()).0, "rate_limited");
    let mut far = WsClient::connect_from_ip(other_loopback(), s.addr, "");
    far.refused(
        json!({"type": "login", "nick": "alice", "password": PW}),
        "rate_limited",
    );
    // Another account, from the same address, is not locked.
    l.login("bob", PW);
}

#[test]
fn twenty_failed_logins_a_minute_lock_the_address() {
    let s = Server::start(&[]);
    let mut b = WsClient::connect(s.addr, "nick=bob");
    b.register(PW);

    // Twenty failures from 127.0.0.1, four for each of five names (under
    // the limit of five per account).
    let mut l = quiet_line(&s);
    for name in ["ghost1", "ghost2", "ghost3", "ghost4", "ghost5"] {
        for i in 0..4 {
            l.send(&format!("/login {name} wrong-password-{i}"));
            assert_eq!(line_error(&l.line()).0, "login_failed", "{name} {i}");
        }
    }
    l.send(&format!("/login bob {PW}"));
    assert_eq!(line_error(&l.line()).0, "rate_limited");
    let mut w = WsClient::connect(s.addr, "");
    w.refused(
        json!({"type": "login", "nick": "bob", "password": PW}),
        "rate_limited",
    );
    // Another address may still log in to the same account.
    let mut far = LineClient::connect_from_ip(other_loopback(), s.addr);
    far.login("bob", PW);
}

#[test]
fn passwords_over_plain_tcp_from_another_address_are_insecure() {
    let ip = host_ip();
    let s = Server::start_listening(&["0.0.0.0:0"], &[]);
    let local = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), s.addr.port());
    let remote = SocketAddr::new(ip, s.addr.port());

    // Over loopback, passwords are fine.
    let mut a = WsClient::connect(local, "nick=alice");
    let token = a.register(PW);

    let mut l = LineClient::connect(remote);
    for cmd in [
        format!("/register {PW}"),
        format!("/login alice {PW}"),
        format!("/password {PW} another-password"),
    ] {
        l.send(&cmd);
        let (code, message) = line_error(&l.answer());
        assert_eq!(code, "insecure", "{cmd}: {message}");
    }

    let mut w = WsClient::connect(remote, "nick=zed");
    w.refused(json!({"type": "register", "password": PW}), "insecure");
    w.refused(
        json!({"type": "login", "nick": "alice", "password": PW}),
        "insecure",
    );
    // A token is no password: it logs in from there, but the password
    // cannot be changed from there.
    let mut t = WsClient::connect(remote, &format!("token={token}"));
    assert_eq!(t.welcome["account"], "alice", "{}", t.welcome);
    t.refused(
        json!({"type": "password", "old": PW, "new": "another-password"}),
        "insecure",
    );
    w.ok(json!({"type": "login", "token": token}), "account");

    // The operator may allow them.
    let s = Server::start_listening(&["0.0.0.0:0"], &["--allow-plaintext-passwords"]);
    let remote = SocketAddr::new(ip, s.addr.port());
    let mut l = LineClient::connect(remote);
    l.send("/leave lobby");
    assert_eq!(l.line(), "*** you left #lobby");
    l.nick_and_register("zed", PW);
    let mut w = WsClient::connect(remote, "");
    w.login("zed", PW);
    let v = w.ok(
        json!({"type": "password", "old": PW, "new": "another-password"}),
        "account",
    );
    assert_eq!(v["account"], "zed", "{v}");
}

#[test]
fn require_login_keeps_guests_out_until_they_log_in() {
    let s = Server::start(&["--require-login"]);
    let mut watcher = WsClient::connect(s.addr, "nick=watcher");
    watcher.register(PW);
    let j = watcher.join("lobby");
    assert_eq!(j["members"], json!(["watcher"]), "{j}");

    // A line client is greeted, but not joined to #lobby.
    let mut g = LineClient::raw(s.addr);
    g.nick = nick_in_welcome(&g.line());
    for input in ["hello", "/join den", "/msg watcher hi", "/me waves"] {
        g.send(input);
        let (code, message) = line_error(&g.line());
        assert_eq!(code, "login_required", "{input}: {message}");
    }
    let who = watcher.ok(json!({"type": "who", "room": "lobby"}), "who");
    assert_eq!(who["members"], json!(["watcher"]), "{who}");

    // Once logged in (here: registered), it is joined to #lobby.
    g.send("/nick alice");
    assert_eq!(g.line(), "*** you are now known as alice");
    g.send(&format!("/register {PW}"));
    assert_eq!(
        g.line(),
        "*** account alice registered; you are logged in as alice"
    );
    assert_eq!(g.line(), "*** you joined #lobby (2 here: alice, watcher)");
    let join = watcher.recv();
    assert_eq!(join["event"], "join", "{join}");
    assert_eq!(join["nick"], "alice", "{join}");
    g.send("now I may talk");
    let m = watcher.recv();
    assert_eq!(m["text"], "now I may talk", "{m}");

    // Logging in to an existing account does the same.
    let mut h = LineClient::raw(s.addr);
    h.nick = nick_in_welcome(&h.line());
    h.send(&format!("/login alice {PW}"));
    assert_eq!(h.line(), "*** you are logged in as alice");
    assert_eq!(h.line(), "*** you joined #lobby (2 here: alice, watcher)");

    // A token logs in at connect: no guest, so it may join.
    let token = WsClient::connect(s.addr, "").login("alice", PW);
    let mut t = WsClient::connect(s.addr, &format!("token={token}"));
    t.join("den");

    // A WebSocket guest: join, say, dm and image need an account.
    let mut w = WsClient::connect(s.addr, "");
    // A 1x1 PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    for req in [
        json!({"type": "join", "room": "lobby"}),
        json!({"type": "say", "room": "lobby", "text": "hi"}),
        json!({"type": "dm", "to": "watcher", "text": "hi"}),
        json!({"type": "image", "room": "lobby", "data": png}),
    ] {
        w.refused(req, "login_required");
    }
    watcher.nothing_more();
}

#[test]
fn closed_registration_with_natter_accounts_add_beside_the_running_server() {
    let db = TempDb::new("closed-registration");
    let s = Server::start(&["--registration", "closed", "--db", db.arg()]);
    let mut l = quiet_line(&s);
    l.send(&format!("/register {PW}"));
    assert_eq!(line_error(&l.line()).0, "not_permitted");
    let mut w = WsClient::connect(s.addr, "nick=wanda");
    w.refused(json!({"type": "register", "password": PW}), "not_permitted");

    let said = natter_accounts(&db, &["add", "carol"], "carol's password\n");
    assert!(said.contains("carol"), "{said}");

    // The server reads the accounts again within about a second. Ask
    // without a failed login (which would count against the limits):
    // until it knows carol, a guest may take the nick.
    let guest = l.nick.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        l.send("/nick carol");
        let got = l.line();
        if got.starts_with("!!! nick_registered: ") {
            break;
        }
        assert_eq!(got, "*** you are now known as carol");
        l.send(&format!("/nick {guest}"));
        assert_eq!(l.line(), format!("*** you are now known as {guest}"));
        assert!(
            Instant::now() < deadline,
            "the server did not notice the account natter accounts added"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let token = w.login("carol", "carol's password");
    l.login("carol", "carol's password");

    // `natter accounts passwd` logs out every remembered login: once the
    // server has read it, the token no longer works (a refused token
    // counts against no limit, so it may be tried until then).
    natter_accounts(&db, &["passwd", "carol"], "carol's new password\n");
    let mut t = WsClient::connect(s.addr, "");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = t.ask(json!({"type": "login", "token": token}), "account");
        if v["type"] == "error" {
            assert_eq!(v["code"], "login_failed", "{v}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not notice the password natter accounts set"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    t.refused(
        json!({"type": "login", "nick": "carol", "password": "carol's password"}),
        "login_failed",
    );
    t.login("carol", "carol's new password");
}

#[test]
fn accounts_and_tokens_survive_kill_9() {
    let db = TempDb::new("accounts-kill9");
    let s = Server::start(&["--db", db.arg()]);
    let mut a = WsClient::connect(s.addr, "nick=alice");
    let kept = a.register(PW);
    let mut b = WsClient::connect(s.addr, "");
    b.login("alice", PW);
    let mut c = WsClient::connect(s.addr, "");
    let revoked = c.login("alice", PW);
    c.ok(json!({"type": "logout"}), "account");
    let mut d = WsClient::connect(s.addr, "");
    let by_login = d.login("alice", PW);
    let mut l = quiet_line(&s);
    l.nick_and_register("bob", "bobs-password");
    let mut m = WsClient::connect(s.addr, "nick=carol");
    let carols_old = m.register("carols-first");
    m.ok(
        json!({"type": "password", "old": "carols-first", "new": "carols-second"}),
        "account",
    );
    kill9(s);

    let s = Server::start(&["--db", db.arg()]);
    let t = with_token(s.addr, &kept);
    assert_eq!(t.welcome["account"], "alice", "{}", t.welcome);
    let t = with_token(s.addr, &by_login);
    assert_eq!(t.welcome["account"], "alice", "{}", t.welcome);
    token_refused(s.addr, &revoked);
    let mut c = WsClient::connect(s.addr, "");
    c.refused(
        json!({"type": "login", "token": carols_old}),
        "login_failed",
    );
    c.refused(
        json!({"type": "login", "nick": "carol", "password": "carols-first"}),
        "login_failed",
    );
    c.login("carol", "carols-second");
    let mut l = quiet_line(&s);
    l.login("bob", "bobs-password");
    let mut g = quiet_line(&s);
    g.send("/nick alice");
    assert_eq!(line_error(&g.line()).0, "nick_registered");
    let mut w = WsClient::connect(s.addr, "");
    w.login("alice", PW);
}
