//! Messages that live and search (PROTOCOL-2 sections 3 and 4), at fixed
//! times, checked on the events the hub makes (the wire forms are the
//! codecs' tests). Every scenario runs with a store that answers at once
//! and with one that answers a turn late.

use super::*;
use crate::hub::command::{ModAction, Scope, Target};
use crate::hub::event::ReplyTo;

impl Chat {
    /// Everything `id` was sent since the last call, as the hub made it.
    fn got(&mut self, id: ClientId) -> Vec<Event> {
        // A late store answers a turn later, and a client with several
        // changes queued waits for one find per change.
        for _ in 0..12 {
            self.flush();
        }
        self.lines.remove(&id);
        self.events.remove(&id).unwrap_or_default()
    }

    /// A WebSocket client called `nick` in #lobby.
    fn member(&mut self, now: Now, nick: &str) -> ClientId {
        let id = self.ws(now, nick);
        self.cmd(now, id, join("lobby"));
        self.got(id);
        id
    }

    /// `id` says `text` in #lobby; returns the stored message's seq.
    fn said(&mut self, now: Now, id: ClientId, text: &str) -> u64 {
        self.cmd(now, id, say_in("lobby", text));
        let seq = self
            .got(id)
            .iter()
            .find_map(|e| match e {
                Event::Reply(Reply::Sent(m, _), _) => Some(m.seq),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{text:?} was not sent"));
        seq
    }

    fn stored_message(&self, r: &str, seq: u64) -> Rc<Message> {
        self.store.rooms[&room(r)]
            .iter()
            .find(|m| m.seq == seq)
            .cloned()
            .unwrap_or_else(|| panic!("no message {seq} stored in #{r}"))
    }
}

fn edit(seq: u64, text: &str) -> Command {
    Command::Edit {
        room: Some(room("lobby")),
        target: Target::Seq(seq),
        text: text.into(),
    }
}

fn delete(seq: u64) -> Command {
    Command::Delete {
        room: Some(room("lobby")),
        target: Target::Seq(seq),
    }
}

fn react(seq: u64, emoji: &str) -> Command {
    Command::React {
        room: Some(room("lobby")),
        target: Target::Seq(seq),
        emoji: emoji.into(),
    }
}

fn reply(seq: u64, text: &str) -> Command {
    Command::Say {
        room: Some(room("lobby")),
        text: text.into(),
        action: false,
        cid: None,
        reply_to: Some(Target::Seq(seq)),
    }
}

fn search(q: &str, scope: Scope, limit: usize) -> Command {
    Command::Search {
        q: q.into(),
        scope,
        limit,
        before: None,
    }
}

/// The amends among `events` (the room's and one's own copies).
fn amends(events: &[Event]) -> Vec<Rc<Amend>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Amend(a) | Event::Reply(Reply::Amended(a), _) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

fn messages(events: &[Event]) -> Vec<Rc<Message>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) | Event::Reply(Reply::Sent(m, _), _) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Runs `scenario` against a store that answers at once, then a late one.
fn both(scenario: impl Fn(&mut Chat)) {
    scenario(&mut Chat::new());
    scenario(&mut Chat::late());
}

#[test]
fn the_author_edits_within_the_window_and_everyone_sees_the_entry() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        let bob = t.member(at(9, 0, 0), "bob");
        let seq = t.said(at(9, 0, 1), alice, "helo");
        t.got(bob);
        t.cmd(at(9, 14, 0), alice, edit(seq, "hello"));
        let mine = amends(&t.got(alice));
        let theirs = amends(&t.got(bob));
        assert_eq!(mine.len(), 1);
        assert_eq!(mine, theirs, "one event, the same for all");
        let a = &mine[0];
        assert_eq!((a.seq, a.target, a.by.as_str()), (seq + 1, seq, "alice"));
        assert_eq!(
            a.kind,
            AmendKind::Edit {
                text: "hello".into()
            }
        );
        let m = t.stored_message("lobby", seq);
        assert_eq!(
            (m.text.as_str(), m.edited_ts),
            ("hello", Some(at(9, 14, 0).ms))
        );
        // The next message takes the seq after the edit: no gap, no repeat.
        assert_eq!(t.said(at(9, 14, 1), bob, "nice"), seq + 2);
    });
}

#[test]
fn edits_are_the_authors_within_the_window_and_of_live_messages() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        let bob = t.member(at(9, 0, 0), "bob");
        let seq = t.said(at(9, 0, 0), alice, "mine");
        t.cmd(at(9, 0, 5), bob, edit(seq, "yours now"));
        assert_eq!(errors(&t.got(bob)), [ErrorCode::NotPermitted]);
        // 900 s after sending is the last moment.
        t.cmd(at(9, 15, 0), alice, edit(seq, "still"));
        assert_eq!(amends(&t.got(alice)).len(), 1);
        t.cmd(at(9, 15, 1), alice, edit(seq, "too late"));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::EditWindow]);
        // No such message: past the room's last seq (no read needed), or
        // an amend's seq, or deleted.
        let reads = t.store.reads;
        t.cmd(at(9, 15, 2), alice, edit(999, "x"));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::NoSuchMessage]);
        assert_eq!(t.store.reads, reads, "answered without the store");
        t.cmd(at(9, 15, 3), alice, edit(seq + 1, "x"));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::NoSuchMessage]);
        let fresh = t.said(at(9, 16, 0), alice, "gone soon");
        t.cmd(at(9, 16, 1), alice, delete(fresh));
        t.got(alice);
        t.cmd(at(9, 16, 2), alice, edit(fresh, "back?"));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::NoSuchMessage]);
        // An empty text is refused, a too long one too.
        let m = t.said(at(9, 17, 0), alice, "text");
        t.cmd(at(9, 17, 1), alice, edit(m, "   "));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::BadRequest]);
        t.cmd(at(9, 17, 1), alice, edit(m, &"x".repeat(4001)));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::TooLong]);
    });
}

#[test]
fn a_delete_is_the_authors_or_an_ops_and_empties_the_message() {
    both(|t| {
        let admin = t.member(at(9, 0, 0), "alice");
        let bob = t.member(at(9, 0, 0), "bob");
        let carol = t.member(at(9, 0, 0), "carol");
        // bob is made an op by... nobody owns #lobby: use a fresh room
        // owned by no one, and check op rights with a moderated room below.
        let b1 = t.said(at(9, 0, 1), bob, "one");
        let b2 = t.said(at(9, 0, 2), bob, "two");
        t.cmd(at(9, 1, 0), carol, delete(b1));
        assert_eq!(errors(&t.got(carol)), [ErrorCode::NotPermitted]);
        t.cmd(at(9, 1, 1), bob, delete(b1));
        let a = amends(&t.got(bob));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, AmendKind::Delete { of: "bob".into() });
        assert_eq!(amends(&t.got(admin)), a);
        let m = t.stored_message("lobby", b1);
        assert!(m.deleted && m.text.is_empty() && m.image.is_none());
        // Deleting it again: there is nothing left to delete.
        t.cmd(at(9, 1, 2), bob, delete(b1));
        assert_eq!(errors(&t.got(bob)), [ErrorCode::NoSuchMessage]);
        assert!(!t.stored_message("lobby", b2).deleted);
    });
}

#[test]
fn an_op_deletes_anyones_message_in_the_room_it_moderates() {
    both(|t| {
        let mut cfg = config(50);
        cfg.accounts.admins = vec!["root".into()];
        let mut c = Chat::with_config(cfg);
        c.store.answers = t.store.answers;
        let root = c.member(at(9, 0, 0), "root");
        c.cmd(
            at(9, 0, 0),
            root,
            Command::Register {
                password: "password1".into(),
            },
        );
        c.got(root);
        let guest = c.member(at(9, 0, 0), "guest");
        let g = c.said(at(9, 0, 1), guest, "spam");
        c.cmd(at(9, 0, 2), root, delete(g));
        let a = amends(&c.got(root));
        assert_eq!(a.len(), 1, "an admin is an op everywhere");
        assert_eq!(a[0].by, "root");
        assert!(c.stored_message("lobby", g).deleted);
        // An op may delete but not edit someone else's message.
        let g2 = c.said(at(9, 0, 3), guest, "more");
        c.cmd(at(9, 0, 4), root, edit(g2, "nicer"));
        assert_eq!(errors(&c.got(root)), [ErrorCode::NotPermitted]);
        let _ = ModAction::Bans; // (moderation's own tests cover op lists)
    });
}

#[test]
fn a_guest_edits_only_its_own_session_and_keeps_it_after_logging_in() {
    both(|t| {
        let first = t.member(at(9, 0, 0), "sam");
        let seq = t.said(at(9, 0, 1), first, "as a guest");
        t.cmd(at(9, 0, 2), first, Command::Quit(None));
        t.got(first);
        // Someone else takes the free nick: not the same author.
        let second = t.member(at(9, 0, 3), "sam");
        t.cmd(at(9, 0, 4), second, edit(seq, "mine now?"));
        assert_eq!(errors(&t.got(second)), [ErrorCode::NotPermitted]);
        // A guest who registers keeps the messages it sent as a guest.
        let own = t.said(at(9, 0, 5), second, "before registering");
        t.cmd(
            at(9, 0, 6),
            second,
            Command::Register {
                password: "password1".into(),
            },
        );
        t.got(second);
        t.cmd(at(9, 0, 7), second, edit(own, "after registering"));
        assert_eq!(amends(&t.got(second)).len(), 1);
        let after = t.said(at(9, 0, 8), second, "as an account");
        assert_eq!(t.stored_message("lobby", after).author, "a:sam");
        assert!(t.stored_message("lobby", own).author.starts_with("g:"));
    });
}

#[test]
fn reactions_toggle_per_person_are_capped_and_skip_line_clients() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        let bob = t.member(at(9, 0, 0), "bob");
        let line = t.line(at(9, 0, 0), "lina");
        t.got(line);
        let seq = t.said(at(9, 0, 1), alice, "react to me");
        t.got(bob);
        t.got(line);
        let mut got = Vec::new();
        for (who, s) in [(bob, 2), (alice, 2), (bob, 3)] {
            t.cmd(at(9, 0, s), who, react(seq, "👍"));
            got.extend(t.got(alice));
        }
        let seen: Vec<(String, bool)> = amends(&got)
            .iter()
            .map(|a| match &a.kind {
                AmendKind::React { emoji, on } => (format!("{} {emoji}", a.by), *on),
                k => panic!("{k:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("bob 👍".to_string(), true),
                ("alice 👍".to_string(), true),
                ("bob 👍".to_string(), false)
            ]
        );
        assert!(
            amends(&t.got(line)).is_empty(),
            "no reactions for line clients"
        );
        let m = t.stored_message("lobby", seq);
        assert_eq!(m.reactions.len(), 1);
        assert_eq!(m.reactions[0].by.len(), 1);
        assert_eq!(m.reactions[0].by[0].nick, "alice");
        // A reaction taken back after a nick change names the nick it was
        // put on under, which is the one every client lists.
        t.cmd(at(9, 0, 4), alice, crate::hub::tests::nick("alicia"));
        t.got(alice);
        t.got(bob);
        t.cmd(at(9, 0, 5), alice, react(seq, "👍"));
        match &amends(&t.got(bob))[..] {
            [a] => {
                assert_eq!(a.by, "alice");
                assert!(matches!(&a.kind, AmendKind::React { on: false, .. }));
            }
            other => panic!("{other:?}"),
        }
        assert!(t.stored_message("lobby", seq).reactions.is_empty());
        t.cmd(at(9, 0, 6), alice, react(seq, "👍"));
        assert_eq!(amends(&t.got(bob))[0].by, "alicia", "put on again: now");
        // Twenty different emoji at most.
        for i in 0..19 {
            t.cmd(at(9, 1, 0), bob, react(seq, &format!("e{i}")));
        }
        t.got(bob);
        assert_eq!(t.stored_message("lobby", seq).reactions.len(), 20);
        t.cmd(at(9, 1, 1), bob, react(seq, "one-too-many"));
        assert_eq!(errors(&t.got(bob)), [ErrorCode::BadRequest]);
        // An existing one may still be added to.
        t.cmd(at(9, 1, 2), bob, react(seq, "👍"));
        assert_eq!(amends(&t.got(bob)).len(), 1);
        // Emoji rules: 1-32 bytes, no spaces or control characters.
        for bad in ["", "a b", "x\u{1}", &"e".repeat(33)] {
            t.cmd(at(9, 1, 3), bob, react(seq, bad));
            assert_eq!(errors(&t.got(bob)), [ErrorCode::BadRequest], "{bad:?}");
        }
    });
}

#[test]
fn quick_toggles_see_the_changes_still_on_their_way_to_the_store() {
    // One turn: on, off, on again, and an edit then a reaction, all before
    // the store has answered the first.
    let mut t = Chat::late();
    let alice = t.member(at(9, 0, 0), "alice");
    let seq = t.said(at(9, 0, 1), alice, "fast");
    for _ in 0..3 {
        t.hub.handle(at(9, 0, 2), alice, react(seq, "🎉"), None);
        t.hub.close_batch();
        t.persist();
    }
    t.hub.handle(at(9, 0, 2), alice, edit(seq, "faster"), None);
    t.persist();
    let ons: Vec<bool> = amends(&t.got(alice))
        .iter()
        .filter_map(|a| match a.kind {
            AmendKind::React { on, .. } => Some(on),
            _ => None,
        })
        .collect();
    assert_eq!(ons, [true, false, true]);
    let m = t.stored_message("lobby", seq);
    assert_eq!(m.text, "faster");
    assert_eq!(m.reactions.len(), 1);
}

#[test]
fn a_reply_quotes_the_start_of_its_message_and_mentions_are_resolved() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        let bob = t.member(at(9, 0, 0), "Bob");
        let long = "é".repeat(150);
        let seq = t.said(at(9, 0, 1), alice, &long);
        t.got(bob);
        t.cmd(
            at(9, 0, 2),
            bob,
            reply(seq, "@alice yes, and @nobody mail@alice.org @BOB"),
        );
        let got = messages(&t.got(alice));
        assert_eq!(got.len(), 1);
        let m = &got[0];
        assert_eq!(
            m.reply_to,
            Some(ReplyTo {
                seq,
                from: "alice".into(),
                text: Some("é".repeat(100)),
            })
        );
        assert_eq!(m.mentions, ["alice", "Bob"]);
        assert_eq!(t.stored_message("lobby", m.seq).reply_to, m.reply_to);
        assert_eq!(messages(&t.got(bob)), got, "the sender's copy is the same");
        // A reply to a deleted message quotes nothing; to none, is refused.
        t.cmd(at(9, 0, 3), alice, delete(seq));
        let ev = t.got(alice);
        assert_eq!(amends(&ev).len(), 1, "{ev:?}");
        t.cmd(at(9, 0, 4), bob, reply(seq, "too late"));
        let got = messages(&t.got(bob));
        assert_eq!(got[0].reply_to.as_ref().map(|r| r.text.clone()), Some(None));
        t.cmd(at(9, 0, 5), bob, reply(500, "to nothing"));
        assert_eq!(errors(&t.got(bob)), [ErrorCode::NoSuchMessage]);
    });
}

#[test]
fn line_commands_name_your_last_message_or_a_nicks() {
    both(|t| {
        let lina = t.line(at(9, 0, 0), "lina");
        let bob = t.member(at(9, 0, 0), "bob");
        t.got(lina);
        t.cmd(at(9, 0, 1), lina, say("first"));
        t.cmd(at(9, 0, 2), lina, say("secnod"));
        // The same turn as the message it edits.
        t.cmd(
            at(9, 0, 2),
            lina,
            Command::Edit {
                room: None,
                target: Target::Mine,
                text: "second".into(),
            },
        );
        t.got(lina);
        let seqs = t.stored_seqs("lobby");
        let edited = t.stored_message("lobby", seqs[1]);
        assert_eq!(edited.text, "second");
        t.got(lina);
        // /delete takes your last message that is not deleted.
        let mine = Command::Delete {
            room: None,
            target: Target::Mine,
        };
        t.cmd(at(9, 0, 3), lina, mine.clone());
        t.cmd(at(9, 0, 4), lina, mine.clone());
        t.got(lina);
        assert!(t.stored_message("lobby", seqs[0]).deleted);
        assert!(t.stored_message("lobby", seqs[1]).deleted);
        t.cmd(at(9, 0, 5), lina, mine);
        assert_eq!(errors(&t.got(lina)), [ErrorCode::NoSuchMessage]);
        // /reply and /react name a nick's last message.
        let b = t.said(at(9, 0, 6), bob, "from bob");
        t.cmd(
            at(9, 0, 7),
            lina,
            Command::React {
                room: None,
                target: Target::LastOf("BOB".into()),
                emoji: "👀".into(),
            },
        );
        t.got(lina);
        assert_eq!(t.stored_message("lobby", b).reactions.len(), 1);
        t.cmd(
            at(9, 0, 8),
            lina,
            Command::React {
                room: None,
                target: Target::LastOf("nobody".into()),
                emoji: "👀".into(),
            },
        );
        assert_eq!(errors(&t.got(lina)), [ErrorCode::NoSuchMessage]);
    });
}

#[test]
fn a_catch_up_brings_the_messages_as_they_are_and_the_changes_to_older_ones() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        let s1 = t.said(at(9, 0, 1), alice, "one");
        let s2 = t.said(at(9, 0, 2), alice, "two");
        let s3 = t.said(at(9, 0, 3), alice, "three");
        let since = s3;
        // After `since`: an edit of s1, a reaction to s2, a new message s7,
        // its edit, and a delete of s3 after an edit of it.
        t.cmd(at(9, 1, 0), alice, edit(s1, "one!"));
        t.cmd(at(9, 1, 1), alice, react(s2, "👍"));
        t.cmd(at(9, 1, 2), alice, edit(s3, "three!"));
        t.cmd(at(9, 1, 3), alice, delete(s3));
        let s8 = t.said(at(9, 1, 4), alice, "eight");
        t.cmd(at(9, 1, 5), alice, edit(s8, "eight!"));
        t.got(alice);
        let back = t.member(at(9, 2, 0), "back");
        t.cmd(at(9, 2, 1), back, leave("lobby"));
        t.got(back);
        t.cmd(
            at(9, 2, 2),
            back,
            Command::Join {
                room: room("lobby"),
                since: Some(since),
            },
        );
        let entries = t
            .got(back)
            .into_iter()
            .find_map(|e| match e {
                Event::Reply(Reply::Joined { messages, .. }, _) => Some(messages),
                _ => None,
            })
            .expect("joined");
        let described: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Entry::Message(m) => format!("{} message {}", m.seq, m.text),
                Entry::Amend(a) => format!("{} {} of {}", a.seq, a.kind.as_str(), a.target),
            })
            .collect();
        assert_eq!(
            described,
            [
                format!("{} edit of {s1}", s3 + 1),
                format!("{} react of {s2}", s3 + 2),
                // The edit of s3 is left out: its delete says it all.
                format!("{} delete of {s3}", s3 + 4),
                format!("{s8} message eight!"),
            ]
        );
    });
}

#[test]
fn search_looks_where_the_client_may_and_only_asks_the_store_for_real_queries() {
    both(|t| {
        let alice = t.member(at(9, 0, 0), "alice");
        t.said(at(9, 0, 1), alice, "deploy on friday");
        let gone = t.said(at(9, 0, 2), alice, "deploy secrets");
        t.cmd(at(9, 0, 3), alice, delete(gone));
        t.got(alice);
        t.cmd(
            at(9, 0, 4),
            alice,
            search("DEPLOY", Scope::Room(room("lobby")), 20),
        );
        let results: Vec<String> = t
            .got(alice)
            .iter()
            .find_map(|e| match e {
                Event::Reply(Reply::Search { results, room, .. }, _) => {
                    assert_eq!(room.as_ref().map(RoomName::as_str), Some("lobby"));
                    Some(results.iter().map(|h| h.message.text.clone()).collect())
                }
                _ => None,
            })
            .expect("an answer");
        assert_eq!(results, ["deploy on friday"]);
        // Nothing to look for: answered at once, empty, without the store.
        let reads = t.store.reads;
        for q in ["", "   ", "\"\""] {
            t.cmd(at(9, 0, 5), alice, search(q, Scope::Joined, 20));
            let ev = t.got(alice);
            assert!(
                matches!(&ev[..], [Event::Reply(Reply::Search { results, room: None, .. }, _)] if results.is_empty()),
                "{ev:?}"
            );
        }
        assert_eq!(t.store.reads, reads);
        t.cmd(at(9, 0, 6), alice, search("x", Scope::Joined, 0));
        assert_eq!(errors(&t.got(alice)), [ErrorCode::BadRequest]);
        // A line client searches its current room.
        let lina = t.line(at(9, 0, 7), "lina");
        t.got(lina);
        t.cmd(at(9, 0, 8), lina, search("friday", Scope::Current, 20));
        let ev = t.got(lina);
        assert!(
            ev.iter().any(|e| matches!(e, Event::Reply(Reply::Search { results, .. }, _) if results.len() == 1)),
            "{ev:?}"
        );
    });
}

#[test]
fn an_invite_only_room_is_searched_only_by_its_members() {
    let mut t = Chat::new();
    let owner = t.ws(at(9, 0, 0), "owner");
    t.cmd(
        at(9, 0, 0),
        owner,
        Command::Register {
            password: "password1".into(),
        },
    );
    t.cmd(at(9, 0, 1), owner, join("secret"));
    t.cmd(
        at(9, 0, 2),
        owner,
        Command::Mod {
            room: Some(room("secret")),
            action: ModAction::InviteOnly { on: true },
        },
    );
    t.cmd(at(9, 0, 3), owner, say_in("secret", "plans"));
    t.got(owner);
    let guest = t.ws(at(9, 0, 4), "guest");
    t.cmd(
        at(9, 0, 5),
        guest,
        search("plans", Scope::Room(room("secret")), 20),
    );
    assert_eq!(errors(&t.got(guest)), [ErrorCode::InviteOnly]);
    t.cmd(
        at(9, 0, 6),
        owner,
        search("plans", Scope::Room(room("secret")), 20),
    );
    let ev = t.got(owner);
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::Reply(Reply::Search { results, .. }, _) if results.len() == 1)
        ),
        "{ev:?}"
    );
}

#[test]
fn a_refused_batch_takes_its_changes_back_and_tells_who_made_them() {
    let mut t = Chat::new();
    let alice = t.member(at(9, 0, 0), "alice");
    let bob = t.member(at(9, 0, 0), "bob");
    let seq = t.said(at(9, 0, 1), alice, "keep me");
    t.got(bob);
    t.store.refuse_batches = true;
    t.cmd(at(9, 0, 2), alice, edit(seq, "changed"));
    let mine = t.got(alice);
    assert!(amends(&mine).is_empty(), "{mine:?}");
    assert_eq!(errors(&mine), [ErrorCode::BadRequest]);
    assert!(amends(&t.got(bob)).is_empty());
    t.store.refuse_batches = false;
    // The hub forgot the change it made: the next edit starts from the
    // stored text, and takes a fresh seq.
    t.cmd(at(9, 0, 3), alice, edit(seq, "changed again"));
    let a = amends(&t.got(alice));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].seq, seq + 2, "the refused seq is skipped, not reused");
    assert_eq!(t.stored_message("lobby", seq).text, "changed again");
}

#[test]
fn leaving_while_the_store_looks_refuses_the_change() {
    let mut t = Chat::late();
    let alice = t.member(at(9, 0, 0), "alice");
    let seq = t.said(at(9, 0, 1), alice, "hmm");
    // The find goes out; the leave waits behind it (the client is parked),
    // so the edit is done first, in order.
    t.hub.handle(at(9, 0, 2), alice, edit(seq, "hm"), None);
    t.hub.handle(at(9, 0, 2), alice, leave("lobby"), None);
    t.persist();
    let ev = t.got(alice);
    assert_eq!(amends(&ev).len(), 1, "{ev:?}");
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Reply(Reply::Left { .. }, _))));
}
