//! A hub that shares its chat (PROTOCOL-2 section 6): the store numbers
//! the messages, and everyone, the sender's acknowledgement included, is
//! sent a message only when it arrives back from the store, in the order
//! the store gave.

use super::*;

/// A shared chat: a line client bob and a WebSocket client alice in #lobby.
fn shared() -> (Chat, ClientId, ClientId) {
    let mut t = Chat::new();
    t.hub.share();
    t.store.shared = true;
    let bob = t.line(at(9, 0, 0), "bob");
    let alice = t.ws(at(9, 0, 0), "alice");
    t.cmd(at(9, 0, 1), alice, join("lobby"));
    t.clear();
    (t, alice, bob)
}

fn say_cid(text: &str, cid: &str) -> Command {
    Command::Say {
        reply_to: None,
        room: Some(room("lobby")),
        text: text.into(),
        action: false,
        cid: Some(cid.into()),
    }
}

/// The `(seq, cid)` of every acknowledgement among `events`.
fn acks(events: &[Event]) -> Vec<(u64, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reply(Reply::Sent(m, cid), _) => Some((m.seq, cid.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn nothing_is_sent_before_the_store_hands_the_message_back() {
    let (mut t, alice, bob) = shared();
    // The store answers a turn late: the publish is out, nobody is sent
    // anything, and no seq is given by the hub.
    t.store.answers = Answers::NextTurn;
    let arrivals_held = std::mem::take(&mut t.store.arrivals);
    assert!(arrivals_held.is_empty());
    t.hub.handle(at(9, 1, 0), alice, say_cid("hi", "c1"), None);
    let mut ops = Vec::new();
    t.hub.take_store_ops(&mut ops);
    let [StoreOp::Publish(p)] = &ops[..] else {
        panic!("{ops:?}")
    };
    assert_eq!((p.message.seq, p.message.text.as_str()), (0, "hi"));
    assert_eq!(p.cid.as_deref(), Some("c1"));
    assert_eq!(t.hub.drafts_out(), 1);
    let mut out = Vec::new();
    t.hub.drain_effects(&mut out);
    assert!(out.is_empty(), "{out:?}");
    // The store numbers it and it comes back: bob gets the line, alice
    // her acknowledgement with her cid, and the room's seq moves on.
    let answer = t.store.execute(ops.pop().unwrap());
    t.hub.answer(at(9, 1, 0), answer);
    assert_eq!(t.hub.room_seq(&room("lobby")), Some(0), "not arrived yet");
    t.arrive();
    assert_eq!(t.hub.room_seq(&room("lobby")), Some(1));
    check(&t.take(bob), &["[09:01:00] #lobby <alice> hi"]);
    assert_eq!(acks(&t.events[&alice]), [(1, Some("c1".into()))]);
    assert_eq!(t.hub.drafts_out(), 0);
    assert_eq!(t.stored_seqs("lobby"), [1]);
}

#[test]
fn other_processes_messages_arrive_in_order_and_once() {
    let (mut t, alice, bob) = shared();
    // Another process's message: nobody here sent it, everyone here gets it.
    let other = Message::new(
        room("lobby"),
        0,
        at(9, 2, 0).ms,
        "carol".into(),
        "yo".into(),
    );
    t.store.publish_as(&other, None);
    t.arrive();
    // Then alice's, numbered after it.
    t.cmd(at(9, 2, 1), alice, say_cid("hey", "c2"));
    check(
        &t.take(bob),
        &[
            "[09:02:00] #lobby <carol> yo",
            "[09:02:01] #lobby <alice> hey",
        ],
    );
    let got = t.events.remove(&alice).unwrap_or_default();
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1], "alice gets carol's message, not her own copy");
    assert_eq!(acks(&got), [(2, Some("c2".into()))]);
    // An arrival at or before the room's seq (a push that came after the
    // store was read) is ignored.
    let again = t.store.rooms[&room("lobby")][0].clone();
    t.hub.arrive(at(9, 2, 2), again, None);
    check(&t.take(bob), &[]);
}

#[test]
fn a_store_that_cannot_be_reached_is_unavailable_and_nothing_is_sent() {
    let (mut t, alice, bob) = shared();
    t.store.refuse_batches = true;
    t.cmd(at(9, 3, 0), alice, say_cid("lost?", "c3"));
    t.cmd(at(9, 3, 0), bob, say("me too"));
    t.flush();
    assert_eq!(
        errors(&t.events.remove(&alice).unwrap_or_default()),
        [ErrorCode::Unavailable]
    );
    check(&t.take(bob), &["!!! unavailable: *"]);
    assert!(!t.store.rooms.contains_key(&room("lobby")));
    assert_eq!(t.hub.drafts_out(), 0);
    // Back: the same cid is sent, once.
    t.store.refuse_batches = false;
    t.cmd(at(9, 3, 5), alice, say_cid("lost?", "c3"));
    check(&t.take(bob), &["[09:03:05] #lobby <alice> lost?"]);
    assert_eq!(
        acks(&t.events.remove(&alice).unwrap_or_default()),
        [(1, Some("c3".into()))]
    );
}

#[test]
fn a_cid_the_store_has_seen_is_answered_with_the_first_message() {
    let (mut t, alice, bob) = shared();
    t.cmd(at(9, 4, 0), alice, say_cid("once", "c4"));
    t.clear();
    // Another process had it (this hub's own log does not): a resume
    // elsewhere, say. The store answers with the message it kept.
    let author = t.store.rooms[&room("lobby")][0].author.clone();
    t.store.cids.insert(
        (author, "c9".into()),
        t.store.rooms[&room("lobby")][0].clone(),
    );
    t.cmd(at(9, 4, 1), alice, say_cid("once more", "c9"));
    check(&t.take(bob), &[]);
    assert_eq!(
        acks(&t.events.remove(&alice).unwrap_or_default()),
        [(1, Some("c9".into()))]
    );
    assert_eq!(t.stored_seqs("lobby"), [1]);
}

#[test]
fn edits_deletes_and_reactions_are_numbered_by_the_store_and_arrive() {
    let (mut t, alice, bob) = shared();
    t.cmd(at(9, 5, 0), alice, say_cid("x", "c5"));
    t.clear();
    let edit = Command::Edit {
        room: Some(room("lobby")),
        target: command::Target::Seq(1),
        text: "y".into(),
    };
    t.cmd(at(9, 5, 1), alice, edit);
    check(&t.take(bob), &["[09:05:01] #lobby <alice> (edited) y"]);
    let got = t.events.remove(&alice).unwrap_or_default();
    assert!(
        got.iter()
            .any(|e| matches!(e, Event::Reply(Reply::Amended(a), _) if a.seq == 2)),
        "{got:?}"
    );
    assert_eq!(t.stored("lobby")[0].2, "y");
    // A reaction goes to WebSocket clients only; the store says it is on.
    let react = Command::React {
        room: Some(room("lobby")),
        target: command::Target::Seq(1),
        emoji: "👍".into(),
    };
    t.cmd(at(9, 5, 2), bob, react);
    check(&t.take(bob), &["*** reaction 👍 added in #lobby"]);
    let got = t.events.remove(&alice).unwrap_or_default();
    assert!(
        got.iter().any(|e| matches!(e, Event::Amend(a)
            if a.seq == 3 && a.kind == AmendKind::React { emoji: "👍".into(), on: true })),
        "{got:?}"
    );
    // A change the store refuses (the message is gone): no_such_message.
    t.cmd(
        at(9, 5, 3),
        alice,
        Command::Delete {
            room: Some(room("lobby")),
            target: command::Target::Seq(1),
        },
    );
    t.flush();
    let edit = Command::Edit {
        room: Some(room("lobby")),
        target: command::Target::Seq(1),
        text: "z".into(),
    };
    t.cmd(at(9, 5, 4), alice, edit);
    t.flush();
    let errs = errors(&t.events.remove(&alice).unwrap_or_default());
    assert_eq!(errs, [ErrorCode::NoSuchMessage], "{errs:?}");
    assert_eq!(t.hub.room_seq(&room("lobby")), Some(4));
}

// Who is where on other processes (`remote`).

fn presence(kind: PresenceKind, nick: &str) -> remote::Notice {
    remote::Notice::Presence(Rc::new(Presence {
        room: room("lobby"),
        kind,
        nick: nick.into(),
        ts: at(9, 6, 0).ms,
        account: None,
    }))
}

fn notices(t: &mut Chat) -> Vec<remote::Notice> {
    let mut out = Vec::new();
    t.hub.take_notices(&mut out);
    out
}

#[test]
fn members_elsewhere_are_seen_joining_listed_and_leaving() {
    let (mut t, _alice, bob) = shared();
    let now = at(9, 6, 0);
    t.hub.remote(
        now,
        "p2",
        remote::Notice::Holds(Nick::parse("Carol").unwrap()),
    );
    t.hub
        .remote(now, "p2", presence(PresenceKind::Join, "Carol"));
    // The same nick joining on a third process (an account's other
    // connection): the room saw it already.
    t.hub
        .remote(now, "p3", presence(PresenceKind::Join, "Carol"));
    t.cmd(now, bob, who(None));
    check(
        &t.take(bob),
        &[
            "[09:06:00] #lobby --> Carol joined",
            "*** #lobby (3): alice, bob, Carol",
        ],
    );
    // Held elsewhere: not free here.
    t.cmd(now, bob, nick("carol"));
    check(&t.take(bob), &["!!! nick_taken: *"]);
    // It leaves one process: still in the room.
    let leave = PresenceKind::Leave(LeaveReason::Leave);
    t.hub.remote(now, "p2", presence(leave.clone(), "Carol"));
    check(&t.take(bob), &[]);
    t.hub.remote(now, "p3", presence(leave, "Carol"));
    check(&t.take(bob), &["[09:06:00] #lobby <-- Carol left"]);
}

#[test]
fn a_process_that_died_takes_its_members_with_it() {
    let (mut t, _alice, bob) = shared();
    let now = at(9, 7, 0);
    t.hub.remote(
        now,
        "p2",
        remote::Notice::Holds(Nick::parse("dan").unwrap()),
    );
    t.hub.remote(now, "p2", presence(PresenceKind::Join, "dan"));
    t.clear();
    t.hub.gone(now, "p2");
    check(&t.take(bob), &["[09:07:00] #lobby <-- dan left (timeout)"]);
    // Its nick is free again.
    t.cmd(now, bob, nick("dan"));
    check(&t.take(bob), &["*** you are now known as dan"]);
}

#[test]
fn a_state_read_whole_tells_only_the_differences() {
    let (mut t, _alice, bob) = shared();
    let now = at(9, 8, 0);
    t.hub
        .remote(now, "p2", presence(PresenceKind::Join, "erin"));
    t.hub.remote(now, "p2", presence(PresenceKind::Join, "fay"));
    t.clear();
    // Read after a reconnect: fay stayed, erin went, gus came; bob's own
    // entry (this process, "me") is left out.
    let n = |s: &str| Nick::parse(s).unwrap();
    let state = remote::RemoteState {
        nicks: vec![("p2".into(), n("fay")), ("p2".into(), n("gus"))],
        members: vec![
            (room("lobby"), "p2".into(), n("fay"), None),
            (room("lobby"), "p2".into(), n("gus"), None),
            (room("lobby"), "me".into(), n("bob"), None),
        ],
        unlisted: Vec::new(),
    };
    t.hub.remote_state(now, "me", state);
    check(
        &t.take(bob),
        &[
            "[09:08:00] #lobby <-- erin left (timeout)",
            "[09:08:00] #lobby --> gus joined",
        ],
    );
}

#[test]
fn a_direct_message_for_a_nick_held_elsewhere_is_announced() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 9, 0);
    t.hub.remote(
        now,
        "p2",
        remote::Notice::Holds(Nick::parse("Hal").unwrap()),
    );
    notices(&mut t);
    t.cmd(now, bob, dm("hal", "psst"));
    check(&t.take(bob), &["[09:09:00] (dm to Hal) <bob> psst"]);
    let out = notices(&mut t);
    assert!(
        matches!(&out[..], [remote::Notice::Dm(d)] if d.to == "Hal" && d.text == "psst"),
        "{out:?}"
    );
    // And one from there reaches its recipient here.
    let from_there = Rc::new(Dm {
        from: "Hal".into(),
        to: "alice".into(),
        ts: now.ms,
        text: "hi".into(),
        account: None,
    });
    t.hub.remote(now, "p2", remote::Notice::Dm(from_there));
    t.flush();
    assert!(t.events[&alice]
        .iter()
        .any(|e| matches!(e, Event::Dm(d) if d.text == "hi")));
}

#[test]
fn this_process_announces_its_nicks_and_members() {
    let (mut t, alice, bob) = shared();
    notices(&mut t);
    let now = at(9, 10, 0);
    t.cmd(now, bob, nick("robert"));
    t.cmd(now, alice, leave("lobby"));
    let out = notices(&mut t);
    let kinds: Vec<String> = out
        .iter()
        .map(|n| match n {
            remote::Notice::Holds(n) => format!("holds {n}"),
            remote::Notice::Releases(k) => format!("releases {k}"),
            remote::Notice::Presence(p) => format!("{:?} {}", p.kind, p.nick),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(kinds.contains(&"holds robert".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"releases bob".to_string()), "{kinds:?}");
    assert!(
        kinds.contains(&"Nick { old: \"bob\" } robert".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with("Leave") && k.ends_with("alice")),
        "{kinds:?}"
    );
    // The last member of a room leaving is announced too (nobody here to
    // tell, but the others must know).
    t.cmd(now, bob, leave("lobby"));
    let out = notices(&mut t);
    assert!(
        matches!(&out[..], [remote::Notice::Presence(p)] if p.nick == "robert"),
        "{out:?}"
    );
    let state = t.hub.local_state();
    assert_eq!(state.members.len(), 0);
    assert_eq!(state.nicks.len(), 2);
}

#[test]
fn a_message_told_unavailable_that_arrives_after_all_is_acknowledged_to_its_sender() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 11, 0);
    t.hub.handle(now, alice, say_cid("maybe", "m1"), None);
    let mut ops = Vec::new();
    t.hub.take_store_ops(&mut ops);
    let Some(StoreOp::Publish(p)) = ops.pop() else {
        panic!("no publish")
    };
    // Redis stopped: the connection was given up on, the sender told.
    t.hub.answer(
        now,
        StoreAnswer::Published {
            publish: p.id,
            result: Err(StoreError("no answer".into())),
        },
    );
    t.flush();
    assert_eq!(
        errors(&t.events.remove(&alice).unwrap_or_default()),
        [ErrorCode::Unavailable]
    );
    // Redis went on and ran it: it arrives.
    t.store.publish_as(&p.message, Some(p.id));
    t.arrive();
    check(&t.take(bob), &["[09:11:00] #lobby <alice> maybe"]);
    let got = t.events.remove(&alice).unwrap_or_default();
    assert_eq!(acks(&got), [(1, Some("m1".into()))], "{got:?}");
    assert!(
        !got.iter().any(|e| matches!(e, Event::Message(_))),
        "{got:?}"
    );
    assert_eq!(t.hub.drafts_out(), 0);
}

#[test]
fn a_kick_on_another_process_throws_out_the_member_here() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 12, 0);
    let kick = Rc::new(event::ModEvent {
        room: room("lobby"),
        by: "op-elsewhere".into(),
        action: event::ModKind::Kick {
            nick: "alice".into(),
            reason: Some("spam".into()),
        },
        ts: now.ms,
    });
    t.hub.remote(now, "p2", remote::Notice::Mod(kick));
    t.flush();
    let got = t.events.remove(&alice).unwrap_or_default();
    assert!(
        got.iter().any(
            |e| matches!(e, Event::Reply(Reply::Left { room: r }, _) if r.as_str() == "lobby")
        ),
        "{got:?}"
    );
    // bob is told (the mod line), and alice is no longer a member.
    let lines = t.take(bob);
    assert!(lines.iter().any(|l| l.contains("kicked")), "{lines:?}");
    t.cmd(now, bob, who(None));
    check(&t.take(bob), &["*** #lobby (1): bob"]);
    // The leave is announced, so the other processes drop alice too.
    let out = notices(&mut t);
    assert!(
        out.iter().any(|n| matches!(n, remote::Notice::Presence(p)
            if p.nick == "alice" && p.kind == PresenceKind::Leave(LeaveReason::Kicked))),
        "{out:?}"
    );
}

#[test]
fn a_member_catching_up_while_messages_arrive_gets_each_once() {
    let (mut t, alice, _bob) = shared();
    t.store.answers = Answers::NextTurn;
    let now = at(9, 13, 0);
    // alice (in #lobby) asks for a catch-up; the store answers a turn late,
    // and two messages of another process arrive meanwhile.
    t.hub.handle(
        now,
        alice,
        Command::Join {
            room: room("lobby"),
            since: Some(0),
        },
        None,
    );
    t.persist();
    for text in ["one", "two"] {
        let m = Message::new(room("lobby"), 0, now.ms, "carol".into(), text.into());
        t.store.publish_as(&m, None);
    }
    t.arrive();
    for _ in 0..3 {
        t.flush();
    }
    let got = t.events.remove(&alice).unwrap_or_default();
    let mut seqs: Vec<u64> = Vec::new();
    for e in &got {
        match e {
            Event::Message(m) => seqs.push(m.seq),
            Event::Reply(Reply::Joined { messages, .. }, _) => {
                seqs.extend(messages.iter().map(Entry::seq))
            }
            _ => {}
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2], "each once: {got:?}");
}

/// What `id` was sent of `room`'s entries, in order: `L` and a seq for a
/// live message, `J` and the seqs of a `joined`, `H` and those of a
/// history page.
fn stream(events: &[Event]) -> Vec<(char, Vec<u64>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(('L', vec![m.seq])),
            Event::Amend(a) => Some(('L', vec![a.seq])),
            Event::Reply(Reply::Joined { messages, .. }, _) => {
                Some(('J', messages.iter().map(Entry::seq).collect()))
            }
            Event::Reply(Reply::History { messages, .. }, _) => {
                Some(('H', messages.iter().map(|m| m.seq).collect()))
            }
            _ => None,
        })
        .collect()
}

fn carol(t: &mut Chat, now: Now, text: &str) {
    let m = Message::new(room("lobby"), 0, now.ms, "carol".into(), text.into());
    t.store.publish_as(&m, None);
}

#[test]
fn a_resumed_member_gets_what_arrives_during_its_replay_in_the_replay() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 14, 0);
    carol(&mut t, now, "one");
    t.arrive();
    t.hub.detach(now, alice, LeaveReason::Disconnect);
    t.clear();
    t.store.answers = Answers::NextTurn;
    let token = format!("token-{}", alice.0);
    let back = ClientId(900);
    assert!(t.resume(at(9, 14, 5), back, &token));
    // The replay's read is out; two messages arrive meanwhile: bob gets
    // them live, the resumed alice in her joined, not before it.
    carol(&mut t, now, "two");
    carol(&mut t, now, "three");
    t.arrive();
    check(
        &t.take(bob),
        &[
            "[09:14:00] #lobby <carol> two",
            "[09:14:00] #lobby <carol> three",
        ],
    );
    for _ in 0..3 {
        t.flush();
    }
    let got = t.events.remove(&back).unwrap_or_default();
    assert_eq!(stream(&got), [('J', vec![1, 2, 3])], "{got:?}");
    // From then on she gets the room live.
    carol(&mut t, now, "four");
    t.arrive();
    t.flush();
    let got = t.events.remove(&back).unwrap_or_default();
    assert_eq!(stream(&got), [('L', vec![4])]);
}

#[test]
fn a_read_that_saw_entries_not_arrived_here_waits_for_them() {
    let (mut t, alice, _bob) = shared();
    let now = at(9, 15, 0);
    carol(&mut t, now, "one");
    t.arrive();
    t.clear();
    t.store.answers = Answers::NextTurn;
    // Message 2 is in the store, on its way here.
    carol(&mut t, now, "two");
    let on_the_way = std::mem::take(&mut t.store.arrivals);
    t.cmd(
        now,
        alice,
        Command::History {
            room: Some(room("lobby")),
            page: Page {
                limit: 10,
                ..Page::default()
            },
        },
    );
    for _ in 0..3 {
        t.flush();
    }
    // The store read up to 2, alice's stream is at 1: the page waits.
    let got = t.events.remove(&alice).unwrap_or_default();
    assert_eq!(stream(&got), [], "{got:?}");
    // 2 arrives (alice gets it live), then the page, up to 2.
    t.store.arrivals = on_the_way;
    t.arrive();
    t.flush();
    let got = t.events.remove(&alice).unwrap_or_default();
    assert_eq!(stream(&got), [('L', vec![2]), ('H', vec![1, 2])], "{got:?}");
}

#[test]
fn a_page_gets_what_arrived_after_the_store_read_it() {
    let (mut t, alice, _bob) = shared();
    let now = at(9, 16, 0);
    for text in ["one", "two", "three"] {
        carol(&mut t, now, text);
    }
    t.arrive();
    t.clear();
    t.store.answers = Answers::NextTurn;
    t.cmd(
        now,
        alice,
        Command::History {
            room: Some(room("lobby")),
            page: Page {
                limit: 3,
                ..Page::default()
            },
        },
    );
    t.flush(); // the read is done: 1, 2, 3
               // Then 4 arrives, and an edit of 3: the page is as alice's stream
               // has it when it is sent, the latest 3.
    carol(&mut t, now, "four");
    let edit = Rc::new(Amend {
        room: room("lobby"),
        seq: 5,
        target: 3,
        ts: now.ms,
        by: "carol".into(),
        author: "carol".into(),
        kind: AmendKind::Edit {
            text: "THREE".into(),
        },
    });
    t.store.arrivals.push((Entry::Amend(edit), None));
    t.arrive();
    t.flush();
    let got = t.events.remove(&alice).unwrap_or_default();
    assert_eq!(
        stream(&got),
        [('L', vec![4]), ('L', vec![5]), ('H', vec![2, 3, 4])],
        "{got:?}"
    );
    let page = got.iter().find_map(|e| match e {
        Event::Reply(Reply::History { messages, .. }, _) => Some(messages.clone()),
        _ => None,
    });
    let texts: Vec<String> = page
        .unwrap_or_default()
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(texts, ["two", "THREE", "four"]);
}

#[test]
fn an_answer_whose_entries_never_arrive_is_handed_over_in_time() {
    let (mut t, alice, _bob) = shared();
    let now = at(9, 17, 0);
    t.store.answers = Answers::NextTurn;
    carol(&mut t, now, "trimmed away");
    t.store.arrivals.clear(); // never comes
    t.cmd(
        now,
        alice,
        Command::History {
            room: Some(room("lobby")),
            page: Page::default(),
        },
    );
    for _ in 0..3 {
        t.flush();
    }
    t.hub.answers_overdue(at(9, 17, 1));
    t.flush();
    assert!(stream(&t.events.remove(&alice).unwrap_or_default()).is_empty());
    t.hub.answers_overdue(at(9, 17, 3));
    t.flush();
    let got = t.events.remove(&alice).unwrap_or_default();
    assert_eq!(stream(&got).len(), 1, "{got:?}");
}

#[test]
fn a_leave_or_quit_waits_for_the_answers_to_what_was_sent_before_it() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 18, 0);
    t.now = now;
    let carol = t.ws(now, "carol");
    t.cmd(now, carol, join("lobby"));
    t.clear();
    t.store.answers = Answers::NextTurn;
    // alice says something and leaves in the same read: her
    // acknowledgement comes before her `left`.
    t.hub.handle(now, alice, say_cid("bye all", "c9"), None);
    t.hub
        .handle(now, alice, Command::Leave(Some(room("lobby"))), None);
    t.persist();
    for _ in 0..3 {
        t.flush();
        t.arrive();
    }
    let got = t.events.remove(&alice).unwrap_or_default();
    let order: Vec<&str> = got
        .iter()
        .filter_map(|e| match e {
            Event::Reply(Reply::Sent(..), _) => Some("ack"),
            Event::Reply(Reply::Left { .. }, _) => Some("left"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["ack", "left"], "{got:?}");
    check(
        &t.take(bob),
        &[
            "[09:18:00] #lobby <alice> bye all",
            "[09:18:00] #lobby <-- alice left",
        ],
    );
    // bob (a line client) says something and quits: the room gets his
    // message, then his leaving.
    t.events.remove(&carol);
    t.hub.handle(now, bob, say("later"), None);
    t.hub.handle(now, bob, Command::Quit(None), None);
    t.persist();
    for _ in 0..3 {
        t.flush();
        t.arrive();
    }
    let got = t.events.remove(&carol).unwrap_or_default();
    let seen: Vec<String> = got
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(format!("message {}", m.text)),
            Event::Presence(p) => Some(format!("{:?}", p.kind)),
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 2, "{got:?}");
    assert_eq!(seen[0], "message later", "{seen:?}");
    assert!(seen[1].starts_with("Leave"), "{seen:?}");
}

#[test]
fn a_session_taken_over_keeps_its_rooms_while_it_rejoins_them() {
    let (mut t, _alice, _bob) = shared();
    t.store.answers = Answers::NextTurn;
    t.store.claim_with = Some(sessions::SessionState {
        nick: "dora".into(),
        rooms: vec![room("lobby"), room("dev")],
        guest: "g:00000000000000d0".into(),
        account: None,
    });
    let now = at(9, 19, 0);
    t.now = now;
    let dora = ClientId(500);
    let hello = Hello {
        kind: ClientKind::Ws,
        peer: Peer::loopback(),
        nick: None,
        session: Some("token-dora".into()),
        token: None,
    };
    assert!(t.hub.claim_session(dora, "token-dora", hello));
    t.persist();
    notices(&mut t);
    // The claim is answered: dora rejoins her rooms, one read at a time.
    // While the reads are out, the session Redis keeps still names both
    // rooms (a resume elsewhere meanwhile must not lose them).
    t.flush();
    t.flush();
    let rooms: Vec<Vec<RoomName>> = notices(&mut t)
        .into_iter()
        .filter_map(|n| match n {
            remote::Notice::Session { state: Some(s), .. } => Some(s.rooms),
            _ => None,
        })
        .collect();
    assert_eq!(
        rooms.last(),
        Some(&vec![room("lobby"), room("dev")]),
        "{rooms:?}"
    );
    assert_eq!(t.hub.nick_of(dora), Some("dora"));
}

#[test]
fn a_join_whose_read_missed_what_came_while_nobody_here_held_the_room_reads_again() {
    let (mut t, alice, bob) = shared();
    let now = at(9, 18, 0);
    t.cmd(now, bob, leave("lobby"));
    let erin = t.ws(now, "erin");
    carol(&mut t, now, "one");
    t.arrive();
    t.clear();
    t.store.answers = Answers::NextTurn;
    // 2 is in the store, on its way here; erin's join reads up to it and
    // waits for it to arrive.
    carol(&mut t, now, "two");
    let _on_the_way = std::mem::take(&mut t.store.arrivals);
    t.cmd(now, erin, join("lobby"));
    for _ in 0..3 {
        t.flush();
    }
    let early = t.events.remove(&erin).unwrap_or_default();
    assert_eq!(stream(&early), [], "erin's join waits: {early:?}");
    // alice leaves: nobody here holds the room, and what arrives for it
    // the shell drops (2 to 5).
    t.cmd(now, alice, leave("lobby"));
    for text in ["three", "four", "five"] {
        carol(&mut t, now, text);
    }
    t.store.arrivals.clear();
    // dave joins: his read, at 5, makes the room held here again, and 6
    // and 7 arrive.
    let dave = t.ws(now, "dave");
    t.cmd(now, dave, join("lobby"));
    for _ in 0..3 {
        t.flush();
    }
    for text in ["six", "seven"] {
        carol(&mut t, now, text);
    }
    t.arrive();
    // erin's answer, read at 2, cannot be made whole from what arrived (3
    // to 5 never did): it is read again, and her joined has every seq.
    for _ in 0..3 {
        t.flush();
    }
    let got = t.events.remove(&erin).unwrap_or_default();
    assert_eq!(stream(&got), [('J', (1..=7).collect())], "{got:?}");
    let got = t.events.remove(&dave).unwrap_or_default();
    assert_eq!(
        stream(&got),
        [('J', (1..=5).collect()), ('L', vec![6]), ('L', vec![7])],
        "{got:?}"
    );
}

#[test]
fn a_join_replays_no_change_older_than_the_messages_it_replays() {
    let mut t = Chat::with_history(3);
    t.hub.share();
    t.store.shared = true;
    let now = at(9, 19, 0);
    let alice = t.ws(now, "alice");
    t.cmd(now, alice, join("lobby"));
    carol(&mut t, now, "one");
    carol(&mut t, now, "two");
    t.arrive();
    t.clear();
    // dave's join reads 1 and 2; while it is out, 3, an edit of 1 (4),
    // then 5 to 7 arrive. He is replayed the latest three messages, and
    // not the edit of a message he is not sent.
    t.store.answers = Answers::NextTurn;
    let dave = t.ws(now, "dave");
    t.cmd(now, dave, join("lobby"));
    t.flush();
    carol(&mut t, now, "three");
    let edit = Rc::new(Amend {
        room: room("lobby"),
        seq: 4,
        target: 1,
        ts: now.ms,
        by: "carol".into(),
        author: "carol".into(),
        kind: AmendKind::Edit { text: "ONE".into() },
    });
    t.store.apply(&edit);
    t.store
        .amends
        .entry(room("lobby"))
        .or_default()
        .push(edit.clone());
    t.store.arrivals.push((Entry::Amend(edit), None));
    for text in ["five", "six", "seven"] {
        carol(&mut t, now, text);
    }
    t.arrive();
    for _ in 0..3 {
        t.flush();
    }
    let got = t.events.remove(&dave).unwrap_or_default();
    assert_eq!(stream(&got), [('J', vec![5, 6, 7])], "{got:?}");
}
