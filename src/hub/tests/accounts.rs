//! Accounts and moderation (PROTOCOL-2 sections 1 and 2), at fixed times,
//! checked on the events the hub makes (the line forms are the codec's
//! tests).

use super::*;
use crate::hub::command::ModAction;
use crate::hub::event::{AccountChange, ModKind, Role};
use crate::hub::port::EntryKind;
use std::net::IpAddr;

fn ip(last: u8) -> Peer {
    Peer {
        ip: IpAddr::from([10, 0, 0, last]),
        secure: false,
    }
}

impl Chat {
    /// What `id` was sent since the last call.
    fn events(&mut self, id: ClientId) -> Vec<Event> {
        self.flush();
        self.lines.remove(&id);
        self.events.remove(&id).unwrap_or_default()
    }

    /// A WebSocket client from `peer`.
    fn ws_from(&mut self, now: Now, nick: &str, peer: Peer) -> ClientId {
        let session = Some(format!("token-{}", self.next_id));
        self.connect_with(
            now,
            Hello {
                kind: ClientKind::Ws,
                peer,
                nick: Some(nick.to_string()),
                session,
                token: None,
            },
        )
    }

    /// `id` registers its nick with `pw`; returns the login token.
    fn register(&mut self, now: Now, id: ClientId, pw: &str) -> String {
        let cmd = Command::Register {
            password: pw.into(),
        };
        self.cmd(now, id, cmd);
        token_of(&self.events(id))
    }

    /// `id` logs in; returns the login token.
    fn login(&mut self, now: Now, id: ClientId, nick: &str, pw: &str) -> String {
        let cmd = Command::Login {
            nick: nick.into(),
            password: pw.into(),
        };
        self.cmd(now, id, cmd);
        token_of(&self.events(id))
    }

    fn act(&mut self, now: Now, id: ClientId, r: &str, action: ModAction) {
        let cmd = Command::Mod {
            room: Some(room(r)),
            action,
        };
        self.cmd(now, id, cmd);
    }
}

#[track_caller]
fn token_of(events: &[Event]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            Event::Reply(Reply::Account { token, .. }, _) => token.clone(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no account answer with a token in {events:?}"))
}

/// The presence events among `events`, as `(kind, nick)`.
fn presences(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Presence(p) => Some((
                match &p.kind {
                    PresenceKind::Join => "join".to_string(),
                    PresenceKind::Leave(r) => format!("leave {r:?}"),
                    PresenceKind::Nick { old } => format!("nick from {old}"),
                },
                p.nick.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn joined_of(events: &[Event]) -> Option<(RoomInfo, Role, Vec<String>)> {
    events.iter().find_map(|e| match e {
        Event::Reply(
            Reply::Joined {
                info,
                role,
                members,
                ..
            },
            _,
        ) => Some((
            (**info).clone(),
            *role,
            members.iter().map(|m| m.to_string()).collect(),
        )),
        _ => None,
    })
}

fn mods(events: &[Event]) -> Vec<ModKind> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Mod(m) | Event::Reply(Reply::Mod(m), _) => Some(m.action.clone()),
            _ => None,
        })
        .collect()
}

use crate::hub::event::RoomInfo;

#[test]
fn register_logs_in_reserves_the_nick_and_stores_only_hashes() {
    let mut t = Chat::new();
    let a = t.ws(at(9, 0, 0), "alice");
    t.events(a);
    t.cmd(
        at(9, 0, 1),
        a,
        Command::Register {
            password: "short".into(),
        },
    );
    assert_eq!(errors(&t.events(a)), [ErrorCode::BadRequest]);
    assert_eq!(t.store.jobs, 0, "a short password costs no hashing");
    t.cmd(
        at(9, 0, 2),
        a,
        Command::Register {
            password: "correct horse".into(),
        },
    );
    let ev = t.events(a);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Reply(Reply::Account { what: AccountChange::Registered, account: Some(n), token: Some(_), .. }, _) if n == "alice"
        )),
        "{ev:?}"
    );
    let token = token_of(&ev);
    assert_eq!(t.hub.account_of(a), Some("alice"));
    // Stored: the account with its hash, and the token's hash only.
    let put = t.store.changes.iter().find_map(|c| match c {
        Change::AccountPut(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(
        put.map(|r| (r.name, r.phc)),
        Some(("alice".into(), "fake:correct horse".into()))
    );
    let tok = t.store.changes.iter().find_map(|c| match c {
        Change::TokenPut(r) => Some(r.clone()),
        _ => None,
    });
    let tok = tok.expect("a token stored");
    assert_eq!(tok.hash, crate::hub::accounts::token_hash(&token));
    assert_ne!(tok.hash, token);
    // The nick is reserved, for /nick and for a wanted nick at connect.
    let b = t.ws(at(9, 1, 0), "bob");
    t.events(b);
    t.cmd(at(9, 1, 1), b, nick("ALICE"));
    assert_eq!(errors(&t.events(b)), [ErrorCode::NickRegistered]);
    let c = t.connect(at(9, 1, 2), ClientKind::Ws, Some("alice"));
    assert_eq!(errors(&t.events(c)), [ErrorCode::NickRegistered]);
    assert!(is_generated(&t.nick_of(c)));
    // A logged-in connection keeps its account's nick.
    t.cmd(at(9, 1, 3), a, nick("alicia"));
    assert_eq!(errors(&t.events(a)), [ErrorCode::NotPermitted]);
}

#[test]
fn one_account_on_two_connections_is_one_nick_in_the_room() {
    let mut t = Chat::new();
    let a1 = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 1), a1, "password1");
    let bob = t.ws(at(9, 0, 2), "bob");
    t.cmd(at(9, 0, 3), bob, join("x"));
    t.cmd(at(9, 0, 4), a1, join("x"));
    assert_eq!(presences(&t.events(bob)), [("join".into(), "alice".into())]);
    // A second connection logs in as alice: a guest nick first, then alice.
    let a2 = t.connect(at(9, 1, 0), ClientKind::Ws, None);
    t.login(at(9, 1, 1), a2, "Alice", "password1");
    assert_eq!(t.nick_of(a2), "alice");
    t.cmd(at(9, 1, 2), a2, join("x"));
    let (_, _, members) = joined_of(&t.events(a2)).expect("joined");
    assert_eq!(members, ["alice", "bob"], "listed once");
    assert!(
        presences(&t.events(bob)).is_empty(),
        "the room sees no second join"
    );
    // A message from one connection reaches the other.
    t.cmd(at(9, 1, 3), a1, say_in("x", "hi from the phone"));
    assert!(t.events(a2).iter().any(|e| matches!(e, Event::Message(m) if m.text == "hi from the phone" && m.account.as_deref() == Some("alice"))));
    // A DM to alice reaches both; bob's DM to alice, and alice's DM from a1:
    // a2 gets the sender's copy.
    t.events(a1);
    t.cmd(at(9, 2, 0), bob, dm("alice", "psst"));
    for a in [a1, a2] {
        assert!(t
            .events(a)
            .iter()
            .any(|e| matches!(e, Event::Dm(d) if d.text == "psst")));
    }
    t.cmd(at(9, 2, 1), a1, dm("bob", "hello bob"));
    assert!(t
        .events(bob)
        .iter()
        .any(|e| matches!(e, Event::Dm(d) if d.account.as_deref() == Some("alice"))));
    assert!(t
        .events(a2)
        .iter()
        .any(|e| matches!(e, Event::Reply(Reply::DmSent(d, _), _) if d.text == "hello bob")));
    // The room sees alice leave only when the last connection leaves.
    t.cmd(at(9, 3, 0), a1, leave("x"));
    assert!(presences(&t.events(bob)).is_empty());
    t.hub.disconnect(at(9, 3, 1), a2, LeaveReason::Quit(None));
    assert_eq!(
        presences(&t.events(bob)),
        [("leave Quit(None)".into(), "alice".into())]
    );
    // And the nick still belongs to a1.
    assert_eq!(t.nick_of(a1), "alice");
    t.cmd(at(9, 3, 2), bob, dm("alice", "still there?"));
    assert!(t.events(a1).iter().any(|e| matches!(e, Event::Dm(_))));
}

#[test]
fn a_guest_that_logs_in_is_renamed_in_its_rooms() {
    let mut t = Chat::new();
    let a = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 1), a, "password1");
    t.hub.disconnect(at(9, 0, 2), a, LeaveReason::Quit(None));
    let bob = t.ws(at(9, 0, 3), "bob");
    t.cmd(at(9, 0, 4), bob, join("x"));
    let g = t.ws(at(9, 0, 5), "guesty");
    t.cmd(at(9, 0, 6), g, join("x"));
    t.events(bob);
    t.login(at(9, 1, 0), g, "alice", "password1");
    assert_eq!(
        presences(&t.events(bob)),
        [("nick from guesty".into(), "alice".into())]
    );
    // Logging out: a fresh guest nick, seen as a nick change.
    t.cmd(at(9, 1, 1), g, Command::Logout);
    let ev = t.events(g);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Reply(
            Reply::Account {
                what: AccountChange::LoggedOut,
                account: None,
                ..
            },
            _
        )
    )));
    let guest = t.nick_of(g);
    assert!(is_generated(&guest), "{guest}");
    assert_eq!(
        presences(&t.events(bob)),
        [("nick from alice".into(), guest)]
    );
    assert_eq!(t.hub.account_of(g), None);
}

#[test]
fn tokens_log_in_until_logout_or_a_password_change() {
    let mut t = Chat::new();
    let a = t.ws(at(9, 0, 0), "alice");
    let t1 = t.register(at(9, 0, 1), a, "password1");
    // Token at connect (/ws?token=): welcomed as alice.
    let hello = |token: &str| Hello {
        kind: ClientKind::Ws,
        peer: Peer::loopback(),
        nick: None,
        session: None,
        token: Some(token.to_string()),
    };
    let b = t.connect_with(at(9, 0, 2), hello(&t1));
    let ev = t.events(b);
    assert!(ev.iter().any(|e| matches!(e, Event::Reply(Reply::Welcome { account: Some(n), nick, .. }, _) if n == "alice" && nick == "alice")), "{ev:?}");
    // Another login gets its own token; logout of `a` revokes t1 only.
    let c = t.connect(at(9, 0, 3), ClientKind::Ws, None);
    let t2 = t.login(at(9, 0, 4), c, "alice", "password1");
    assert_ne!(t1, t2);
    t.cmd(at(9, 0, 5), a, Command::Logout);
    t.events(a);
    let d = t.connect_with(at(9, 0, 6), hello(&t1));
    assert_eq!(errors(&t.events(d)), [ErrorCode::LoginFailed]);
    assert_eq!(t.hub.account_of(d), None);
    t.cmd(at(9, 0, 7), d, Command::LoginToken(t2.clone()));
    assert_eq!(t.hub.account_of(d), Some("alice"));
    // A password change revokes every token and gives this connection a new one.
    t.cmd(
        at(9, 1, 0),
        c,
        Command::Password {
            old: "wrong one".into(),
            new: "password2".into(),
        },
    );
    assert_eq!(errors(&t.events(c)), [ErrorCode::LoginFailed]);
    t.cmd(
        at(9, 1, 1),
        c,
        Command::Password {
            old: "password1".into(),
            new: "password2".into(),
        },
    );
    let t3 = token_of(&t.events(c));
    let e = t.connect(at(9, 1, 2), ClientKind::Ws, None);
    t.events(e);
    t.cmd(at(9, 1, 3), e, Command::LoginToken(t2));
    assert_eq!(errors(&t.events(e)), [ErrorCode::LoginFailed]);
    t.cmd(at(9, 1, 4), e, Command::LoginToken(t3));
    assert_eq!(t.hub.account_of(e), Some("alice"));
    t.login(at(9, 1, 5), d, "alice", "password2");
    // Tokens expire after --login-days.
    let later = Now {
        ms: at(9, 1, 6).ms + AccountsConfig::default().token_ms + 1,
    };
    let f = t.connect(later, ClientKind::Ws, None);
    t.events(f);
    let t4 = token_of(&{
        t.cmd(
            later,
            f,
            Command::Login {
                nick: "alice".into(),
                password: "password2".into(),
            },
        );
        t.events(f)
    });
    let much_later = Now {
        ms: later.ms + AccountsConfig::default().token_ms,
    };
    let g = t.connect(much_later, ClientKind::Ws, None);
    t.events(g);
    t.cmd(much_later, g, Command::LoginToken(t4));
    assert_eq!(errors(&t.events(g)), [ErrorCode::LoginFailed]);
}

#[test]
fn failed_logins_do_not_say_which_part_was_wrong_and_are_limited() {
    let mut t = Chat::new();
    let a = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 1), a, "password1");
    let m = t.connect(at(9, 0, 2), ClientKind::Ws, None);
    t.events(m);
    let login = |nick: &str, pw: &str| Command::Login {
        nick: nick.into(),
        password: pw.into(),
    };
    let message = |ev: &[Event]| {
        ev.iter()
            .find_map(|e| match e {
                Event::Reply(Reply::Error { message, .. }, _) => Some(message.clone()),
                _ => None,
            })
            .expect("an error")
    };
    t.cmd(at(9, 0, 3), m, login("nobody", "password1"));
    let no_account = t.events(m);
    t.cmd(at(9, 0, 4), m, login("alice", "password9"));
    let wrong_password = t.events(m);
    assert_eq!(errors(&no_account), [ErrorCode::LoginFailed]);
    assert_eq!(errors(&wrong_password), [ErrorCode::LoginFailed]);
    assert_eq!(message(&no_account), message(&wrong_password));
    // Five failures a minute per account: the sixth is not even checked.
    for s in 5..9 {
        t.cmd(at(9, 0, s), m, login("alice", "password9"));
    }
    assert_eq!(errors(&t.events(m)).len(), 4);
    let jobs = t.store.jobs;
    t.cmd(at(9, 0, 9), m, login("alice", "password1"));
    assert_eq!(errors(&t.events(m)), [ErrorCode::RateLimited]);
    assert_eq!(t.store.jobs, jobs, "no hashing past the limit");
    // A minute later it works again.
    t.cmd(at(9, 1, 10), m, login("alice", "password1"));
    assert_eq!(t.hub.account_of(m), Some("alice"));
    // Twenty a minute per address, over any names.
    let x = t.ws_from(
        at(10, 0, 0),
        "xavier",
        Peer {
            secure: true,
            ..ip(7)
        },
    );
    for i in 0..20 {
        t.cmd(at(10, 0, 1), x, login(&format!("name{i}"), "password1"));
    }
    assert_eq!(errors(&t.events(x)).len(), 20);
    t.cmd(at(10, 0, 2), x, login("alice", "password1"));
    assert_eq!(errors(&t.events(x)), [ErrorCode::RateLimited]);
    // Another address is not limited by it.
    let y = t.ws_from(
        at(10, 0, 3),
        "yvonne",
        Peer {
            secure: true,
            ..ip(8)
        },
    );
    t.login(at(10, 0, 4), y, "alice", "password1");
}

#[test]
fn passwords_over_plain_tcp_from_elsewhere_are_refused_unless_allowed() {
    let mut t = Chat::new();
    let far = t.ws_from(at(9, 0, 0), "remote", ip(9));
    t.events(far);
    t.cmd(
        at(9, 0, 1),
        far,
        Command::Register {
            password: "password1".into(),
        },
    );
    t.cmd(
        at(9, 0, 2),
        far,
        Command::Login {
            nick: "x".into(),
            password: "password1".into(),
        },
    );
    assert_eq!(
        errors(&t.events(far)),
        [ErrorCode::Insecure, ErrorCode::Insecure]
    );
    assert_eq!(t.store.jobs, 0);
    let mut config = config(50);
    config.accounts.allow_plaintext = true;
    let mut t = Chat::with_config(config);
    let far = t.ws_from(at(9, 0, 0), "remote", ip(9));
    t.register(at(9, 0, 1), far, "password1");
    assert_eq!(t.hub.account_of(far), Some("remote"));
}

#[test]
fn require_login_lets_guests_only_log_in_and_closed_registration_refuses() {
    let mut config = config(50);
    config.accounts.require_login = true;
    config.accounts.registration_open = false;
    let mut t = Chat::with_config(config);
    t.hub.set_accounts(
        at(8, 0, 0),
        vec![port::AccountRecord {
            name: "Alice".into(),
            phc: "fake:password1".into(),
            created: 1,
        }],
        vec![],
    );
    let l = t.connect(at(9, 0, 0), ClientKind::Line, None);
    let ev = t.events(l);
    assert!(joined_of(&ev).is_none(), "no default room before login");
    t.cmd(at(9, 0, 1), l, join("x"));
    t.cmd(at(9, 0, 2), l, say("hello"));
    t.cmd(at(9, 0, 3), l, dm("alice", "hi"));
    t.cmd(
        at(9, 0, 4),
        l,
        Command::Register {
            password: "password1".into(),
        },
    );
    assert_eq!(
        errors(&t.events(l)),
        [
            ErrorCode::LoginRequired,
            ErrorCode::LoginRequired,
            ErrorCode::LoginRequired,
            ErrorCode::NotPermitted
        ]
    );
    t.login(at(9, 1, 0), l, "alice", "password1");
    assert_eq!(t.nick_of(l), "Alice");
    assert_eq!(t.hub.rooms_of(l), [room("lobby")], "joined once logged in");
}

#[test]
fn rooms_get_owners_who_make_ops_and_admins_moderate_everywhere() {
    let mut config = config(50);
    config.accounts.admins = vec!["root".into()];
    let mut t = Chat::with_config(config);
    let mk = |t: &mut Chat, n: &str, s: u64| {
        let id = t.ws(at(9, 0, s), n);
        t.register(at(9, 0, s), id, "password1");
        id
    };
    let alice = mk(&mut t, "alice", 1);
    let bob = mk(&mut t, "bob", 2);
    let root = mk(&mut t, "root", 3);
    let guest = t.ws(at(9, 0, 4), "guest");
    t.cmd(at(9, 1, 0), alice, join("mine"));
    let (info, role, _) = joined_of(&t.events(alice)).expect("joined");
    assert_eq!((info.owner.as_deref(), role), (Some("alice"), Role::Owner));
    t.cmd(at(9, 1, 1), guest, join("guestroom"));
    let (info, role, _) = joined_of(&t.events(guest)).expect("joined");
    assert_eq!((info.owner, role), (None, Role::Member));
    // Only the owner makes ops; ops are accounts.
    t.cmd(at(9, 1, 2), bob, join("mine"));
    let (_, role, _) = joined_of(&t.events(bob)).expect("joined");
    assert_eq!(role, Role::Member);
    t.act(
        at(9, 1, 3),
        bob,
        "mine",
        ModAction::Op { nick: "bob".into() },
    );
    assert_eq!(errors(&t.events(bob)), [ErrorCode::NotPermitted]);
    t.act(
        at(9, 1, 4),
        alice,
        "mine",
        ModAction::Op {
            nick: "guest".into(),
        },
    );
    assert_eq!(errors(&t.events(alice)), [ErrorCode::NotPermitted]);
    t.act(
        at(9, 1, 5),
        alice,
        "mine",
        ModAction::Op { nick: "BOB".into() },
    );
    assert_eq!(mods(&t.events(bob)), [ModKind::Op { nick: "bob".into() }]);
    t.cmd(at(9, 1, 6), bob, join("mine"));
    let (info, role, _) = joined_of(&t.events(bob)).expect("joined");
    assert_eq!((info.ops, role), (vec!["bob".to_string()], Role::Op));
    // An op cannot act on the owner; the admin can act in a guest's room.
    t.act(
        at(9, 1, 7),
        bob,
        "mine",
        ModAction::Kick {
            nick: "alice".into(),
            reason: None,
        },
    );
    assert_eq!(errors(&t.events(bob)), [ErrorCode::NotPermitted]);
    t.cmd(at(9, 1, 8), root, join("guestroom"));
    let (_, role, _) = joined_of(&t.events(root)).expect("joined");
    assert_eq!(role, Role::Op);
    t.act(
        at(9, 1, 9),
        root,
        "guestroom",
        ModAction::Topic {
            text: "be nice".into(),
        },
    );
    assert_eq!(
        mods(&t.events(guest)),
        [ModKind::Topic {
            text: "be nice".into()
        }]
    );
    t.act(
        at(9, 1, 10),
        guest,
        "guestroom",
        ModAction::Topic {
            text: "mine now".into(),
        },
    );
    assert_eq!(errors(&t.events(guest)), [ErrorCode::NotPermitted]);
    // Settings are stored.
    assert!(t.store.changes.iter().any(|c| matches!(c, Change::RoomPut { room: r, settings } if r.as_str() == "mine" && settings.owner.as_deref() == Some("alice"))));
    assert!(t.store.changes.iter().any(|c| matches!(c, Change::EntryPut { entry, .. } if entry.kind == EntryKind::Op && entry.subject == "bob")));
}

#[test]
fn a_kick_takes_every_connection_of_the_nick_out_and_the_room_sees_one_leave() {
    let mut t = Chat::new();
    let alice = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 0), alice, "password1");
    t.cmd(at(9, 0, 1), alice, join("x"));
    let b1 = t.ws(at(9, 0, 2), "bob");
    t.register(at(9, 0, 2), b1, "password2");
    let b2 = t.connect(at(9, 0, 3), ClientKind::Ws, None);
    t.login(at(9, 0, 3), b2, "bob", "password2");
    let carol = t.line(at(9, 0, 4), "carol");
    for id in [b1, b2, carol] {
        t.cmd(at(9, 0, 5), id, join("x"));
    }
    t.clear();
    t.act(
        at(9, 1, 0),
        alice,
        "x",
        ModAction::Kick {
            nick: "bob".into(),
            reason: Some("spam".into()),
        },
    );
    let kick = ModKind::Kick {
        nick: "bob".into(),
        reason: Some("spam".into()),
    };
    for b in [b1, b2] {
        let ev = t.events(b);
        assert_eq!(mods(&ev), std::slice::from_ref(&kick));
        assert!(
            matches!(ev.last(), Some(Event::Reply(Reply::Left { .. }, _))),
            "{ev:?}"
        );
        assert!(t.hub.rooms_of(b).is_empty());
    }
    let ev = t.events(carol);
    assert_eq!(mods(&ev), std::slice::from_ref(&kick));
    assert_eq!(presences(&ev), [("leave Kicked".into(), "bob".into())]);
    // The op's own copy is the answer.
    assert!(t
        .events(alice)
        .iter()
        .any(|e| matches!(e, Event::Reply(Reply::Mod(m), _) if m.action == kick)));
    // A kicked nick may come back.
    t.cmd(at(9, 1, 1), b1, join("x"));
    assert!(joined_of(&t.events(b1)).is_some());
}

#[test]
fn bans_keep_accounts_out_by_name_and_guests_by_address() {
    let mut t = Chat::new();
    let alice = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 0), alice, "password1");
    t.cmd(at(9, 0, 1), alice, join("x"));
    let troll = t.ws_from(at(9, 0, 2), "troll", ip(66));
    let friend = t.ws_from(at(9, 0, 3), "friend", ip(67));
    let bob = t.ws(at(9, 0, 4), "bob");
    t.register(at(9, 0, 4), bob, "password2");
    for id in [troll, friend, bob] {
        t.cmd(at(9, 0, 5), id, join("x"));
    }
    t.clear();
    t.act(
        at(9, 1, 0),
        alice,
        "x",
        ModAction::Ban {
            nick: "troll".into(),
            reason: None,
        },
    );
    let ev = t.events(friend);
    assert_eq!(
        mods(&ev),
        [ModKind::Ban {
            nick: "troll".into(),
            reason: None
        }]
    );
    assert_eq!(presences(&ev), [("leave Banned".into(), "troll".into())]);
    t.cmd(at(9, 1, 1), troll, join("x"));
    assert_eq!(errors(&t.events(troll)), [ErrorCode::Banned]);
    // The same address under another nick is still banned; another is not.
    t.cmd(at(9, 1, 2), troll, nick("innocent"));
    t.cmd(at(9, 1, 3), troll, join("x"));
    assert_eq!(errors(&t.events(troll)), [ErrorCode::Banned]);
    let again = t.ws_from(at(9, 1, 4), "newcomer", ip(66));
    t.cmd(at(9, 1, 5), again, join("x"));
    assert_eq!(errors(&t.events(again)), [ErrorCode::Banned]);
    // An account is banned by name, even when offline, and from any address.
    t.hub.disconnect(at(9, 2, 0), bob, LeaveReason::Quit(None));
    t.act(
        at(9, 2, 1),
        alice,
        "x",
        ModAction::Ban {
            nick: "bob".into(),
            reason: Some("rude".into()),
        },
    );
    t.events(alice);
    let bob2 = t.ws_from(
        at(9, 2, 2),
        "bobby",
        Peer {
            secure: true,
            ..ip(5)
        },
    );
    t.login(at(9, 2, 3), bob2, "bob", "password2");
    t.cmd(at(9, 2, 4), bob2, join("x"));
    assert_eq!(errors(&t.events(bob2)), [ErrorCode::Banned]);
    // The ban list, for ops; unban lets them back.
    t.act(at(9, 3, 0), alice, "x", ModAction::Bans);
    let bans = t.events(alice).into_iter().find_map(|e| match e {
        Event::Reply(Reply::Bans { bans, .. }, _) => Some(bans),
        _ => None,
    });
    let bans: Vec<(String, bool)> = bans
        .expect("bans")
        .into_iter()
        .map(|b| (b.nick, b.account))
        .collect();
    assert_eq!(
        bans,
        [("troll".to_string(), false), ("bob".to_string(), true)]
    );
    t.act(at(9, 3, 1), friend, "x", ModAction::Bans);
    assert_eq!(errors(&t.events(friend)), [ErrorCode::NotPermitted]);
    t.act(
        at(9, 3, 2),
        alice,
        "x",
        ModAction::Unban { nick: "BOB".into() },
    );
    t.act(
        at(9, 3, 3),
        alice,
        "x",
        ModAction::Unban {
            nick: "troll".into(),
        },
    );
    t.events(alice);
    t.cmd(at(9, 3, 4), bob2, join("x"));
    t.cmd(at(9, 3, 5), again, join("x"));
    assert!(joined_of(&t.events(bob2)).is_some());
    assert!(joined_of(&t.events(again)).is_some());
}

#[test]
fn mutes_end_on_time_or_by_unmute() {
    let mut t = Chat::new();
    let alice = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 0), alice, "password1");
    t.cmd(at(9, 0, 1), alice, join("x"));
    let g = t.ws_from(at(9, 0, 2), "chatty", ip(3));
    t.cmd(at(9, 0, 3), g, join("x"));
    t.clear();
    t.act(
        at(9, 1, 0),
        alice,
        "x",
        ModAction::Mute {
            nick: "chatty".into(),
            secs: Some(300),
        },
    );
    let until = at(9, 6, 0).ms;
    assert_eq!(
        mods(&t.events(g)),
        [ModKind::Mute {
            nick: "chatty".into(),
            secs: Some(300),
            until: Some(until)
        }]
    );
    t.cmd(at(9, 5, 59), g, say_in("x", "let me speak"));
    let ev = t.events(g);
    assert_eq!(errors(&ev), [ErrorCode::Muted]);
    assert!(
        format!("{ev:?}").contains("09:06:00"),
        "says until when: {ev:?}"
    );
    t.cmd(at(9, 6, 0), g, say_in("x", "thank you"));
    assert!(errors(&t.events(g)).is_empty());
    // Until unmuted.
    t.act(
        at(9, 7, 0),
        alice,
        "x",
        ModAction::Mute {
            nick: "chatty".into(),
            secs: None,
        },
    );
    t.cmd(at(23, 0, 0), g, say_in("x", "still?"));
    assert_eq!(errors(&t.events(g)), [ErrorCode::Muted]);
    t.act(
        at(23, 0, 1),
        alice,
        "x",
        ModAction::Unmute {
            nick: "chatty".into(),
        },
    );
    t.cmd(at(23, 0, 2), g, say_in("x", "free"));
    assert!(errors(&t.events(g)).is_empty());
    t.act(
        at(23, 0, 3),
        alice,
        "x",
        ModAction::Unmute {
            nick: "chatty".into(),
        },
    );
    assert_eq!(errors(&t.events(alice)), [ErrorCode::NoSuchUser]);
}

#[test]
fn invite_only_rooms_admit_ops_and_invitees() {
    let mut t = Chat::new();
    let alice = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 0), alice, "password1");
    t.cmd(at(9, 0, 1), alice, join("club"));
    t.act(
        at(9, 0, 2),
        alice,
        "club",
        ModAction::InviteOnly { on: true },
    );
    let bob = t.ws(at(9, 0, 3), "bob");
    t.register(at(9, 0, 3), bob, "password2");
    let g = t.ws(at(9, 0, 4), "guest");
    t.clear();
    for id in [bob, g] {
        t.cmd(at(9, 0, 5), id, join("club"));
        assert_eq!(errors(&t.events(id)), [ErrorCode::InviteOnly]);
    }
    t.act(
        at(9, 1, 0),
        alice,
        "club",
        ModAction::Invite { nick: "bob".into() },
    );
    t.act(
        at(9, 1, 1),
        alice,
        "club",
        ModAction::Invite {
            nick: "guest".into(),
        },
    );
    for id in [bob, g] {
        t.cmd(at(9, 1, 2), id, join("club"));
        assert!(joined_of(&t.events(id)).is_some());
    }
    // An account's invite lasts; a guest's ends with its connection.
    t.hub.disconnect(at(9, 2, 0), bob, LeaveReason::Quit(None));
    t.hub.disconnect(at(9, 2, 0), g, LeaveReason::Quit(None));
    let bob2 = t.connect(at(9, 2, 1), ClientKind::Ws, None);
    t.login(at(9, 2, 1), bob2, "bob", "password2");
    t.cmd(at(9, 2, 2), bob2, join("club"));
    assert!(joined_of(&t.events(bob2)).is_some());
    let g2 = t.ws(at(9, 2, 3), "guest");
    t.cmd(at(9, 2, 4), g2, join("club"));
    assert_eq!(errors(&t.events(g2)), [ErrorCode::InviteOnly]);
    let (info, _, _) = joined_of(&{
        t.cmd(at(9, 2, 5), alice, join("club"));
        t.events(alice)
    })
    .expect("joined");
    assert!(info.invite_only);
}

#[test]
fn an_account_made_elsewhere_takes_its_name_from_a_guest_holding_it() {
    let mut t = Chat::new();
    let guest = t.ws(at(9, 0, 0), "carol");
    t.cmd(at(9, 0, 1), guest, join("x"));
    let other = t.ws(at(9, 0, 2), "dave");
    t.cmd(at(9, 0, 3), other, join("x"));
    t.clear();
    // `natter accounts add carol` while the guest carol is connected.
    t.hub.set_accounts(
        at(9, 1, 0),
        vec![port::AccountRecord {
            name: "carol".into(),
            phc: "fake:password1".into(),
            created: 1,
        }],
        vec![],
    );
    let c = t.connect(at(9, 1, 1), ClientKind::Ws, None);
    t.login(at(9, 1, 2), c, "carol", "password1");
    assert_eq!(t.nick_of(c), "carol");
    let moved = t.nick_of(guest);
    assert!(is_generated(&moved), "{moved}");
    assert_eq!(errors(&t.events(guest)), [ErrorCode::NickRegistered]);
    assert_eq!(
        presences(&t.events(other)),
        [("nick from carol".into(), moved)],
        "the room sees the guest renamed"
    );
}

#[test]
fn a_ban_keeps_out_an_op_or_an_owner_too_and_takes_their_powers() {
    let mut config = config(50);
    config.accounts.admins = vec!["root".into()];
    let mut t = Chat::with_config(config);
    let mk = |t: &mut Chat, n: &str| {
        let id = t.ws(at(9, 0, 0), n);
        t.register(at(9, 0, 0), id, "password1");
        id
    };
    let (alice, bob, root) = (mk(&mut t, "alice"), mk(&mut t, "bob"), mk(&mut t, "root"));
    t.cmd(at(9, 0, 1), alice, join("den"));
    t.cmd(at(9, 0, 2), bob, join("den"));
    t.act(
        at(9, 0, 3),
        alice,
        "den",
        ModAction::Op { nick: "bob".into() },
    );
    t.act(
        at(9, 0, 4),
        alice,
        "den",
        ModAction::Ban {
            nick: "bob".into(),
            reason: None,
        },
    );
    t.clear();
    t.cmd(at(9, 0, 5), bob, join("den"));
    assert_eq!(errors(&t.events(bob)), [ErrorCode::Banned]);
    t.act(
        at(9, 0, 6),
        bob,
        "den",
        ModAction::Unban { nick: "bob".into() },
    );
    assert_eq!(
        errors(&t.events(bob)),
        [ErrorCode::NotPermitted],
        "no unbanning oneself"
    );
    // An admin bans the owner: out, and no owner's powers meanwhile.
    t.act(
        at(9, 1, 0),
        root,
        "den",
        ModAction::Ban {
            nick: "alice".into(),
            reason: None,
        },
    );
    t.cmd(at(9, 1, 1), alice, join("den"));
    t.act(
        at(9, 1, 2),
        alice,
        "den",
        ModAction::Unban { nick: "bob".into() },
    );
    assert_eq!(
        errors(&t.events(alice)),
        [ErrorCode::Banned, ErrorCode::NotPermitted]
    );
}

#[test]
fn the_default_room_has_no_owner() {
    let mut t = Chat::new();
    let a = t.ws(at(9, 0, 0), "alice");
    t.register(at(9, 0, 1), a, "password1");
    t.cmd(at(9, 0, 2), a, join("lobby"));
    let (info, role, _) = joined_of(&t.events(a)).expect("joined");
    assert_eq!((info.owner, role), (None, Role::Member));
}
