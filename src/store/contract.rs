//! What every [`Store`] must do, as test functions any implementation's
//! tests call with a fresh store of its own: one set of expectations, not a
//! copy per store. (`MemStore` and `SqliteStore` run all of them; a store
//! added later runs them too.)

use std::rc::Rc;

use super::Store;
use crate::hub::command::Page;
use crate::hub::event::{Amend, AmendKind, Hit, ImageRef, Message, Reaction, Reactor, ReplyTo};
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, EntryKind, FindWhat, RoomEntry, RoomRecord, SearchOp, State,
    TokenRecord, FIND_LATEST,
};
use crate::hub::search::Query;

pub(crate) fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("a valid room name")
}

pub(crate) fn msg(room: &RoomName, seq: u64) -> Rc<Message> {
    Rc::new(Message {
        author: String::new(),
        reply_to: None,
        mentions: Vec::new(),
        edited_ts: None,
        deleted: false,
        reactions: Vec::new(),
        room: room.clone(),
        seq,
        ts: seq.wrapping_mul(1000) >> 1,
        from: "a".into(),
        text: format!("m{seq}"),
        action: false,
        image: None,
        account: None,
    })
}

pub(crate) fn seqs(v: Vec<Rc<Message>>) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

pub(crate) fn page(before: Option<u64>, after: Option<u64>, limit: usize) -> Page {
    Page {
        before,
        after,
        limit,
    }
}

/// Every message comes back exactly as stored, odd text included; an
/// empty batch changes nothing.
pub(crate) fn round_trip(s: &mut dyn Store) {
    let r = room("lobby");
    let batch = vec![
        Rc::new(Message {
            author: String::new(),
            reply_to: None,
            mentions: Vec::new(),
            edited_ts: None,
            deleted: false,
            reactions: Vec::new(),
            room: r.clone(),
            seq: 1,
            ts: 1_763_800_000_000,
            from: "alice".into(),
            text: "hi 'there'; DROP TABLE messages; -- \u{1f600} ünï".into(),
            action: false,
            image: None,
            account: None,
        }),
        Rc::new(Message {
            author: String::new(),
            reply_to: None,
            mentions: Vec::new(),
            edited_ts: None,
            deleted: false,
            reactions: Vec::new(),
            room: r.clone(),
            seq: 2,
            ts: 1_763_800_000_001,
            from: "bob".into(),
            text: String::new(),
            action: true,
            image: None,
            account: None,
        }),
    ];
    s.append(&batch).unwrap();
    assert_eq!(s.last_seq(&r).unwrap(), 2);
    assert_eq!(s.history(&r, page(None, None, 50)).unwrap(), batch);
    s.append(&[]).unwrap();
    assert_eq!(s.history(&r, page(None, None, 50)).unwrap(), batch);
}

/// `before` and `after` are exclusive; without `after` a page is the newest
/// `limit` below `before`, with it the oldest `limit` above `after`.
pub(crate) fn pages_with_exclusive_bounds(s: &mut dyn Store) {
    let r = room("lobby");
    let batch: Vec<_> = (1..=10).map(|i| msg(&r, i)).collect();
    s.append(&batch).unwrap();
    assert_eq!(s.last_seq(&r).unwrap(), 10);
    let at = |s: &mut dyn Store, p| seqs(s.history(&r, p).unwrap());
    assert_eq!(at(s, page(None, None, 3)), [8, 9, 10]);
    assert_eq!(at(s, page(Some(5), None, 3)), [2, 3, 4]);
    assert_eq!(at(s, page(None, Some(5), 3)), [6, 7, 8]);
    assert_eq!(at(s, page(Some(8), Some(5), 50)), [6, 7]);
    assert_eq!(at(s, page(Some(3), Some(5), 50)), Vec::<u64>::new());
    assert_eq!(at(s, page(None, Some(10), 50)), Vec::<u64>::new());
    let other = room("empty");
    assert!(s.history(&other, page(None, None, 50)).unwrap().is_empty());
    assert_eq!(s.last_seq(&other).unwrap(), 0);
}

/// Bounds at the ends of `u64` and `usize` neither overflow nor panic.
pub(crate) fn extreme_bounds_do_not_overflow(s: &mut dyn Store) {
    let r = room("lobby");
    s.append(&(1..=3).map(|i| msg(&r, i)).collect::<Vec<_>>())
        .unwrap();
    let at = |s: &mut dyn Store, p| seqs(s.history(&r, p).unwrap());
    assert_eq!(at(s, page(Some(u64::MAX), None, 50)), [1, 2, 3]);
    assert_eq!(at(s, page(None, Some(0), usize::MAX)), [1, 2, 3]);
    assert!(at(s, page(Some(0), None, 50)).is_empty());
    assert!(at(s, page(Some(1), None, 50)).is_empty());
    assert!(at(s, page(None, Some(u64::MAX), 50)).is_empty());
    assert!(at(s, page(None, None, 0)).is_empty());
}

/// An image is kept once the append after it is; the same id again keeps
/// the first bytes; an unknown id is `None`.
pub(crate) fn images_are_stored_with_the_next_append(s: &mut dyn Store) {
    let r = room("lobby");
    let png = b"\x89PNG\r\n\x1a\n\0\0 pretend pixels".to_vec();
    s.put_image("abc123", "image/png", &png).unwrap();
    s.append(&[msg(&r, 1)]).unwrap();
    let want = Some(("image/png".to_owned(), png));
    assert_eq!(s.get_image("abc123").unwrap(), want);
    s.put_image("abc123", "image/gif", b"GIF89a").unwrap();
    s.append(&[msg(&r, 2)]).unwrap();
    assert_eq!(s.get_image("abc123").unwrap(), want);
    assert_eq!(s.get_image("nope").unwrap(), None);
    // Images alone (an empty batch) are committed too.
    s.put_image("solo", "image/gif", b"GIF89a").unwrap();
    s.append(&[]).unwrap();
    assert!(s.get_image("solo").unwrap().is_some());
    assert_eq!(s.last_seq(&r).unwrap(), 2);
}

pub(crate) fn account(name: &str, phc: &str, created: u64) -> AccountRecord {
    AccountRecord {
        name: name.into(),
        phc: phc.into(),
        created,
    }
}

pub(crate) fn token(hash: &str, account: &str, expires: u64) -> TokenRecord {
    TokenRecord {
        hash: hash.into(),
        account: account.into(),
        expires,
    }
}

pub(crate) fn entry(kind: EntryKind, subject: &str, until: Option<u64>) -> RoomEntry {
    RoomEntry {
        kind,
        subject: subject.into(),
        nick: subject.to_ascii_uppercase(),
        by: "Alice".into(),
        reason: (kind == EntryKind::Ban).then(|| "spam; 'quoted' \u{1f6ab}".into()),
        until,
        ts: 1_763_800_000_000,
    }
}

/// A message from `account`'s holder (or a guest for `None`).
pub(crate) fn msg_from(room: &RoomName, seq: u64, account: Option<&str>) -> Rc<Message> {
    let mut m = (*msg(room, seq)).clone();
    m.account = account.map(Into::into);
    Rc::new(m)
}

/// A message's account comes back with it; a guest's stays `None`.
pub(crate) fn messages_carry_their_account(s: &mut dyn Store) {
    let r = room("lobby");
    let batch = vec![
        msg_from(&r, 1, Some("Alice")),
        msg_from(&r, 2, None),
        msg_from(&r, 3, Some("bob")),
    ];
    s.commit(&batch, &[], &[Change::AccountPut(account("bob", "$p", 1))])
        .unwrap();
    let back = s.history(&r, page(None, None, 50)).unwrap();
    assert_eq!(back, batch);
    assert_eq!(back[0].account.as_deref(), Some("Alice"));
    assert_eq!(back[1].account, None);
}

/// A fresh store has no state; every change comes back through
/// `load_state`, in the documented order.
pub(crate) fn changes_round_trip_through_load_state(s: &mut dyn Store) {
    assert_eq!(s.load_state().unwrap(), State::default());
    let (lobby, rust) = (room("lobby"), room("rust"));
    let settings = RoomRecord {
        owner: Some("Alice".into()),
        topic: "all about crabs \u{1f980}".into(),
        invite_only: true,
    };
    let changes = vec![
        Change::AccountPut(account("zed", "$z", 3)),
        Change::AccountPut(account("Alice", "$a1", 1)),
        Change::AccountPut(account("bob", "$b", 2)),
        Change::TokenPut(token("t2", "ALICE", 100)),
        Change::TokenPut(token("t1", "bob", 200)),
        Change::TokenPut(token("t3", "zed", u64::MAX >> 1)),
        Change::RoomPut {
            room: rust.clone(),
            settings: settings.clone(),
        },
        Change::EntryPut {
            room: rust.clone(),
            entry: entry(EntryKind::Op, "bob", None),
        },
        Change::EntryPut {
            room: rust.clone(),
            entry: entry(EntryKind::Mute, "ip:192.0.2.7", Some(1_763_800_300_000)),
        },
        Change::EntryPut {
            room: rust.clone(),
            entry: entry(EntryKind::Ban, "zed", None),
        },
        // A room without settings gets the defaults with its first entry.
        Change::EntryPut {
            room: lobby.clone(),
            entry: entry(EntryKind::Invite, "bob", None),
        },
    ];
    // Changes alone, with no message, are a batch too.
    s.commit(&[], &[], &changes).unwrap();
    let want = State {
        accounts: vec![
            account("Alice", "$a1", 1),
            account("bob", "$b", 2),
            account("zed", "$z", 3),
        ],
        tokens: vec![
            token("t1", "bob", 200),
            token("t2", "Alice", 100),
            token("t3", "zed", u64::MAX >> 1),
        ],
        rooms: vec![
            (
                lobby.clone(),
                RoomRecord::default(),
                vec![entry(EntryKind::Invite, "bob", None)],
            ),
            (
                rust.clone(),
                settings.clone(),
                vec![
                    entry(EntryKind::Ban, "zed", None),
                    entry(EntryKind::Mute, "ip:192.0.2.7", Some(1_763_800_300_000)),
                    entry(EntryKind::Op, "bob", None),
                ],
            ),
        ],
    };
    assert_eq!(s.load_state().unwrap(), want);
    // Reading changes nothing.
    assert_eq!(s.load_state().unwrap(), want);

    // A second batch, applied in order: later changes win.
    let mut unmuted = entry(EntryKind::Mute, "ip:192.0.2.7", None);
    unmuted.by = "bob".into();
    let changes = vec![
        // A new password: the name as registered and the time stay.
        Change::AccountPut(account("ALICE", "$a2", 99)),
        Change::TokenDel { hash: "t1".into() },
        Change::TokenDel {
            hash: "never".into(),
        },
        Change::TokensDel {
            account: "Zed".into(),
        },
        Change::RoomPut {
            room: rust.clone(),
            settings: RoomRecord {
                owner: Some("bob".into()),
                topic: "for a moment".into(),
                invite_only: false,
            },
        },
        Change::RoomPut {
            room: rust.clone(),
            settings: RoomRecord::default(),
        },
        Change::EntryPut {
            room: rust.clone(),
            entry: unmuted.clone(),
        },
        Change::EntryDel {
            room: rust.clone(),
            kind: EntryKind::Op,
            subject: "bob".into(),
        },
        // The same subject in another list stays.
        Change::EntryDel {
            room: rust.clone(),
            kind: EntryKind::Ban,
            subject: "bob".into(),
        },
        Change::EntryDel {
            room: room("nowhere"),
            kind: EntryKind::Ban,
            subject: "bob".into(),
        },
        Change::TokenPut(token("t4", "bob", 300)),
        Change::TokenPut(token("t4", "bob", 400)),
    ];
    s.commit(&[], &[], &changes).unwrap();
    let want = State {
        accounts: vec![
            account("Alice", "$a2", 1),
            account("bob", "$b", 2),
            account("zed", "$z", 3),
        ],
        tokens: vec![token("t2", "Alice", 100), token("t4", "bob", 400)],
        rooms: vec![
            (
                lobby.clone(),
                RoomRecord::default(),
                vec![entry(EntryKind::Invite, "bob", None)],
            ),
            (
                rust.clone(),
                RoomRecord::default(),
                vec![entry(EntryKind::Ban, "zed", None), unmuted],
            ),
        ],
    };
    assert_eq!(s.load_state().unwrap(), want);
}

/// `AccountDel` removes the account and every token of it, whatever the
/// case it is named in; room entries naming it stay; a token of an account
/// that does not exist is not listed.
pub(crate) fn account_del_removes_its_tokens(s: &mut dyn Store) {
    let r = room("lobby");
    s.commit(
        &[msg_from(&r, 1, Some("alice"))],
        &[],
        &[
            Change::AccountPut(account("alice", "$a", 1)),
            Change::AccountPut(account("bob", "$b", 2)),
            Change::TokenPut(token("ta1", "alice", 10)),
            Change::TokenPut(token("ta2", "Alice", 20)),
            Change::TokenPut(token("tb", "bob", 30)),
            Change::EntryPut {
                room: r.clone(),
                entry: entry(EntryKind::Op, "alice", None),
            },
        ],
    )
    .unwrap();
    assert_eq!(s.load_state().unwrap().tokens.len(), 3);
    s.commit(
        &[],
        &[],
        &[Change::AccountDel {
            name: "ALICE".into(),
        }],
    )
    .unwrap();
    let state = s.load_state().unwrap();
    assert_eq!(state.accounts, [account("bob", "$b", 2)]);
    assert_eq!(state.tokens, [token("tb", "bob", 30)]);
    assert_eq!(
        state.rooms,
        [(
            r.clone(),
            RoomRecord::default(),
            vec![entry(EntryKind::Op, "alice", None)]
        )]
    );
    // Registered again: none of the old tokens come back.
    s.commit(&[], &[], &[Change::AccountPut(account("Alice", "$new", 5))])
        .unwrap();
    let state = s.load_state().unwrap();
    assert_eq!(
        state.accounts,
        [account("Alice", "$new", 5), account("bob", "$b", 2)]
    );
    assert_eq!(state.tokens, [token("tb", "bob", 30)]);
    // A token for nobody is kept out of the state, and does not come to
    // life when the name is registered later (by someone else, maybe).
    s.commit(&[], &[], &[Change::TokenPut(token("tx", "ghost", 40))])
        .unwrap();
    assert_eq!(s.load_state().unwrap().tokens, [token("tb", "bob", 30)]);
    s.commit(
        &[],
        &[],
        &[
            Change::AccountPut(account("Ghost", "$g", 6)),
            Change::TokenPut(token("ty", "ghost", 50)),
        ],
    )
    .unwrap();
    assert_eq!(
        s.load_state().unwrap().tokens,
        [token("tb", "bob", 30), token("ty", "Ghost", 50)]
    );
    // History is untouched.
    assert_eq!(
        s.history(&r, page(None, None, 50)).unwrap()[0]
            .account
            .as_deref(),
        Some("alice")
    );
}

/// A message by `from` (author `a:FROM`) saying `text`, ts `seq * 1000`.
pub(crate) fn said(room: &RoomName, seq: u64, from: &str, text: &str) -> Rc<Message> {
    let mut m = Message::new(room.clone(), seq, seq * 1000, from.into(), text.into());
    m.author = format!("a:{}", from.to_ascii_lowercase());
    Rc::new(m)
}

/// A change entry by `by` (author `a:BY`).
pub(crate) fn amend(
    room: &RoomName,
    seq: u64,
    target: u64,
    by: &str,
    kind: AmendKind,
) -> Rc<Amend> {
    Rc::new(Amend {
        room: room.clone(),
        seq,
        target,
        ts: seq * 1000,
        by: by.into(),
        author: format!("a:{}", by.to_ascii_lowercase()),
        kind,
    })
}

pub(crate) fn edit(text: &str) -> AmendKind {
    AmendKind::Edit { text: text.into() }
}

pub(crate) fn react(emoji: &str, on: bool) -> AmendKind {
    AmendKind::React {
        emoji: emoji.into(),
        on,
    }
}

pub(crate) fn delete(of: &str) -> AmendKind {
    AmendKind::Delete { of: of.into() }
}

fn one(s: &mut dyn Store, r: &RoomName, seq: u64) -> Rc<Message> {
    let found = s.find(r, &FindWhat::Seq(seq)).unwrap();
    assert_eq!(found.len(), 1, "message {seq}");
    found[0].clone()
}

/// Reactions as (emoji, [nick]) for comparing.
fn reactions(m: &Message) -> Vec<(String, Vec<String>)> {
    m.reactions
        .iter()
        .map(|r| {
            (
                r.emoji.clone(),
                r.by.iter().map(|x| x.nick.clone()).collect(),
            )
        })
        .collect()
}

/// The v2 section 3 fields of a message come back as stored: author,
/// reply, mentions.
pub(crate) fn new_fields_round_trip(s: &mut dyn Store) {
    let r = room("lobby");
    let mut m = (*said(&r, 2, "bob", "@alice @Carol yes")).clone();
    m.reply_to = Some(ReplyTo {
        seq: 1,
        from: "alice".into(),
        text: Some("question?".into()),
    });
    m.mentions = vec!["alice".into(), "Carol".into()];
    let batch = vec![said(&r, 1, "alice", "question?"), Rc::new(m)];
    s.append(&batch).unwrap();
    assert_eq!(s.history(&r, page(None, None, 50)).unwrap(), batch);
    assert_eq!(s.find(&r, &FindWhat::Seq(2)).unwrap(), batch[1..]);
}

/// Change entries take seqs: `last_seq` counts them; history shows the
/// messages as they are now and skips the entries.
pub(crate) fn history_shows_messages_as_they_are_now(s: &mut dyn Store) {
    let r = room("lobby");
    s.append(&[said(&r, 1, "alice", "helo"), said(&r, 2, "bob", "hi")])
        .unwrap();
    s.commit(
        &[said(&r, 5, "bob", "after")],
        &[
            amend(&r, 3, 1, "alice", edit("hello")),
            amend(&r, 4, 2, "alice", react("👍", true)),
            amend(&r, 6, 2, "carol", react("👍", true)),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.last_seq(&r).unwrap(), 6);
    let got = s.history(&r, page(None, None, 50)).unwrap();
    assert_eq!(seqs(got.clone()), [1, 2, 5]);
    assert_eq!(got[0].text, "hello");
    assert_eq!(got[0].edited_ts, Some(3000));
    assert_eq!(
        got[1].reactions,
        [Reaction {
            emoji: "👍".into(),
            by: vec![
                Reactor {
                    author: "a:alice".into(),
                    nick: "alice".into()
                },
                Reactor {
                    author: "a:carol".into(),
                    nick: "carol".into()
                },
            ],
        }]
    );
    assert!(got[2].reactions.is_empty() && got[2].edited_ts.is_none());
    // An entry alone (no message) is a batch too, and counts.
    s.commit(&[], &[amend(&r, 7, 5, "bob", edit("later"))], &[])
        .unwrap();
    assert_eq!(s.last_seq(&r).unwrap(), 7);
    assert_eq!(one(s, &r, 5).text, "later");
    // Pages count messages, not entries.
    assert_eq!(seqs(s.history(&r, page(None, Some(1), 1)).unwrap()), [2]);
    assert_eq!(seqs(s.history(&r, page(Some(7), None, 2)).unwrap()), [2, 5]);
}

/// Toggles: on adds (once), off removes; emoji in the order they first
/// appeared (and keep their place while anyone has them), reactors first
/// first; a message's reactions go with its last reactor.
pub(crate) fn reactions_toggle_in_order(s: &mut dyn Store) {
    let r = room("lobby");
    s.append(&[said(&r, 1, "alice", "react to me")]).unwrap();
    let steps = [
        ("alice", "👍", true),
        ("bob", "🎉", true),
        ("bob", "👍", true),
        ("alice", "👍", true), // twice on is once
        ("alice", "👍", false),
        ("carol", "❤", true),
        ("carol", "🎉", true),
        ("bob", "🎉", false),
        ("dave", "👍", false), // off for someone who never reacted
    ];
    let amends: Vec<_> = steps
        .iter()
        .enumerate()
        .map(|(i, (by, e, on))| amend(&r, i as u64 + 2, 1, by, react(e, *on)))
        .collect();
    // Half in one batch, half in another.
    s.commit(&[], &amends[..4], &[]).unwrap();
    s.commit(&[], &amends[4..], &[]).unwrap();
    let m = one(s, &r, 1);
    let want = |v: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        v.iter()
            .map(|(e, by)| (e.to_string(), by.iter().map(|b| b.to_string()).collect()))
            .collect()
    };
    assert_eq!(
        reactions(&m),
        want(&[("👍", &["bob"]), ("🎉", &["carol"]), ("❤", &["carol"])])
    );
    // The last one gone, an emoji comes back at the end.
    s.commit(
        &[],
        &[
            amend(&r, 11, 1, "bob", react("👍", false)),
            amend(&r, 12, 1, "bob", react("👍", true)),
        ],
        &[],
    )
    .unwrap();
    let m = one(s, &r, 1);
    assert_eq!(
        reactions(&m),
        want(&[("🎉", &["carol"]), ("❤", &["carol"]), ("👍", &["bob"])])
    );
    assert_eq!(s.history(&r, page(None, None, 5)).unwrap(), [m]);
    assert_eq!(s.last_seq(&r).unwrap(), 12);
}

/// A delete wipes the text, the image and its bytes, the reactions, the
/// quote in replies, and the text of earlier edits; the message stays as
/// deleted; later edits or reactions of it change nothing.
pub(crate) fn delete_wipes_everything(s: &mut dyn Store) {
    let r = room("lobby");
    let mut pic = (*said(&r, 1, "alice", "secret caption")).clone();
    pic.image = Some(ImageRef {
        id: "img1".into(),
        mime: "image/png",
        size: 3,
    });
    let mut reply = (*said(&r, 2, "bob", "nice")).clone();
    reply.reply_to = Some(ReplyTo {
        seq: 1,
        from: "alice".into(),
        text: Some("secret caption".into()),
    });
    s.put_image("img1", "image/png", b"png").unwrap();
    s.commit(
        &[Rc::new(pic), Rc::new(reply)],
        &[
            amend(&r, 3, 1, "alice", edit("secret words")),
            amend(&r, 4, 1, "bob", react("👍", true)),
        ],
        &[],
    )
    .unwrap();
    assert!(s.get_image("img1").unwrap().is_some());
    s.commit(&[], &[amend(&r, 5, 1, "mod", delete("alice"))], &[])
        .unwrap();
    let m = one(s, &r, 1);
    assert!(m.deleted);
    assert_eq!((m.text.as_str(), m.image.as_ref()), ("", None));
    assert!(m.reactions.is_empty() && m.edited_ts.is_none());
    assert_eq!((m.from.as_str(), m.ts, m.seq), ("alice", 1000, 1));
    assert_eq!(s.get_image("img1").unwrap(), None);
    let reply = one(s, &r, 2);
    assert_eq!(
        reply.reply_to,
        Some(ReplyTo {
            seq: 1,
            from: "alice".into(),
            text: None
        })
    );
    // Its edit entries keep their seq, not its words.
    for a in s.amends_since(&r, 0, 50).unwrap() {
        if let AmendKind::Edit { text } = &a.kind {
            assert!(text.is_empty(), "{a:?}");
        }
    }
    // Nothing more happens to it.
    s.commit(
        &[],
        &[
            amend(&r, 6, 1, "alice", edit("back?")),
            amend(&r, 7, 1, "bob", react("🎉", true)),
            amend(&r, 8, 1, "mod", delete("alice")),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(one(s, &r, 1), m);
    assert_eq!(s.last_seq(&r).unwrap(), 8);
    assert_eq!(s.history(&r, page(None, None, 50)).unwrap()[0], m);
    // Entries for a message that is not there are stored, and do nothing.
    s.commit(&[], &[amend(&r, 9, 99, "x", edit("ghost"))], &[])
        .unwrap();
    assert_eq!(s.last_seq(&r).unwrap(), 9);
    assert!(s.find(&r, &FindWhat::Seq(99)).unwrap().is_empty());
}

/// A catch-up's entries: after `since`, about messages at or before it,
/// ascending, at most `limit`; edits and reactions of a message deleted
/// since are left out (its delete says it).
pub(crate) fn amends_since_is_what_a_catch_up_needs(s: &mut dyn Store) {
    let r = room("lobby");
    s.append(
        &(1..=4)
            .map(|i| said(&r, i, "alice", "x"))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let entries = vec![
        amend(&r, 5, 1, "alice", edit("one")),     // before since
        amend(&r, 6, 2, "bob", react("👍", true)), // after since, target 2
        amend(&r, 7, 3, "alice", edit("three")),   // target later deleted
        amend(&r, 8, 4, "bob", react("👍", true)),
    ];
    s.commit(&[said(&r, 9, "bob", "new")], &entries, &[])
        .unwrap();
    s.commit(
        &[],
        &[
            amend(&r, 10, 9, "bob", edit("newer")), // target after since
            amend(&r, 11, 3, "alice", delete("alice")),
            amend(&r, 12, 1, "alice", edit("uno")),
        ],
        &[],
    )
    .unwrap();
    let since = |s: &mut dyn Store, since, limit| -> Vec<u64> {
        s.amends_since(&r, since, limit)
            .unwrap()
            .iter()
            .map(|a| a.seq)
            .collect()
    };
    assert_eq!(since(s, 5, 50), [6, 8, 11, 12]);
    assert_eq!(since(s, 5, 2), [6, 8]);
    assert_eq!(since(s, 3, 50), [5, 6, 11, 12]);
    assert_eq!(since(s, 0, 50), Vec::<u64>::new());
    assert_eq!(since(s, 12, 50), Vec::<u64>::new());
    assert_eq!(since(s, u64::MAX, 50), Vec::<u64>::new());
    assert!(s.amends_since(&room("other"), 3, 50).unwrap().is_empty());
    // They come back as they were committed.
    let got = s.amends_since(&r, 5, 50).unwrap();
    assert_eq!(got[0], entries[1]);
    assert_eq!(got[2], amend(&r, 11, 3, "alice", delete("alice")));
    assert_eq!(got[3], amend(&r, 12, 1, "alice", edit("uno")));
    // And the messages after since come as they are now.
    let after = s.history(&r, page(None, Some(5), 50)).unwrap();
    assert_eq!(seqs(after.clone()), [9]);
    assert_eq!(after[0].text, "newer");
}

/// `Seq` finds a message deleted or not (not an entry); `LastBy` and
/// `LastOf` the newest not deleted, newest first, at most `FIND_LATEST`.
pub(crate) fn find_variants(s: &mut dyn Store) {
    let r = room("lobby");
    let mut batch: Vec<Rc<Message>> = (1..=20)
        .map(|i| said(&r, i, if i % 2 == 1 { "Alice" } else { "bob" }, "m"))
        .collect();
    let mut guest = (*said(&r, 21, "alice", "as a guest")).clone();
    guest.author = "g:17".into();
    batch.push(Rc::new(guest));
    s.commit(&batch, &[amend(&r, 22, 11, "Alice", delete("Alice"))], &[])
        .unwrap();
    s.append(&[said(&room("other"), 1, "alice", "elsewhere")])
        .unwrap();
    let find = |s: &mut dyn Store, w: FindWhat| seqs(s.find(&r, &w).unwrap());
    assert_eq!(find(s, FindWhat::Seq(11)), [11]);
    assert!(one(s, &r, 11).deleted);
    assert_eq!(find(s, FindWhat::Seq(22)), Vec::<u64>::new());
    assert_eq!(find(s, FindWhat::Seq(0)), Vec::<u64>::new());
    assert_eq!(find(s, FindWhat::Seq(u64::MAX)), Vec::<u64>::new());
    assert_eq!(FIND_LATEST, 8);
    assert_eq!(
        find(s, FindWhat::LastBy(vec!["a:alice".into()])),
        [19, 17, 15, 13, 9, 7, 5, 3]
    );
    assert_eq!(
        find(s, FindWhat::LastBy(vec!["g:17".into(), "a:alice".into()])),
        [21, 19, 17, 15, 13, 9, 7, 5]
    );
    assert_eq!(
        find(s, FindWhat::LastBy(vec!["a:bob".into()])),
        [20, 18, 16, 14, 12, 10, 8, 6]
    );
    assert_eq!(find(s, FindWhat::LastBy(vec![])), Vec::<u64>::new());
    assert_eq!(
        find(s, FindWhat::LastBy(vec!["a:zed".into()])),
        Vec::<u64>::new()
    );
    assert_eq!(
        find(s, FindWhat::LastOf("alice".into())),
        [21, 19, 17, 15, 13, 9, 7, 5]
    );
    assert_eq!(find(s, FindWhat::LastOf("BOB".into()))[0], 20);
    assert!(s
        .find(&room("nowhere"), &FindWhat::LastOf("alice".into()))
        .unwrap()
        .is_empty());
}

pub(crate) fn search_op(
    rooms: &[&RoomName],
    q: &str,
    limit: usize,
    before: Option<u64>,
) -> SearchOp {
    SearchOp {
        id: 1,
        rooms: rooms.iter().map(|r| (*r).clone()).collect(),
        query: Query::parse(q),
        limit,
        before,
    }
}

/// The seqs a search of one room finds.
pub(crate) fn found_in(s: &mut dyn Store, r: &RoomName, q: &str) -> Vec<u64> {
    found(s, &[r], q)
}

/// The seqs a search finds.
fn found(s: &mut dyn Store, rooms: &[&RoomName], q: &str) -> Vec<u64> {
    hits_seqs(&s.search(&search_op(rooms, q, 50, None)).unwrap())
}

pub(crate) fn hits_seqs(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.message.seq).collect()
}

/// The marked parts of a hit's snippet.
pub(crate) fn marked(h: &Hit) -> Vec<String> {
    let chars: Vec<char> = h.snippet.chars().collect();
    h.marks
        .iter()
        .map(|&(from, to)| chars[from..to].iter().collect())
        .collect()
}

/// PROTOCOL-2 section 4: every word (the last also as a prefix), phrases,
/// `from:`, case and accents ignored, newest first, `limit` and `before`,
/// rooms, deleted never found, edited by the latest text only, snippets
/// with marks on the hits.
pub(crate) fn search_basics(s: &mut dyn Store) {
    let (r, o) = (room("lobby"), room("other"));
    s.append(&[
        said(&r, 1, "alice", "deploy on friday"),
        said(&r, 2, "bob", "no deploy on Friday please"),
        said(&r, 3, "Alice", "the friday deployment went fine"),
        said(&r, 4, "carol", "Café au lait, naïve question"),
        said(&r, 5, "bob", "typo wrod here"),
        said(&r, 6, "bob", "secret plans"),
        said(&o, 1, "dave", "friday deploy in other room"),
    ])
    .unwrap();
    s.commit(
        &[],
        &[
            amend(&r, 7, 5, "bob", edit("typo fixed here")),
            amend(&r, 8, 6, "bob", delete("bob")),
        ],
        &[],
    )
    .unwrap();
    // Every word, any order; the last also as a prefix.
    assert_eq!(found(s, &[&r], "friday deploy"), [3, 2, 1]);
    assert_eq!(found(s, &[&r], "deploy friday"), [2, 1]);
    assert_eq!(found(s, &[&r], "FRIDAY dep"), [3, 2, 1]);
    assert_eq!(found(s, &[&r], "dep friday"), Vec::<u64>::new());
    // A last word of one letter is a word, not a prefix.
    assert_eq!(found(s, &[&r], "friday d"), Vec::<u64>::new());
    assert_eq!(found(s, &[&r], "friday de"), [3, 2, 1]);
    // Phrases match as they are.
    assert_eq!(found(s, &[&r], "\"deploy on friday\""), [2, 1]);
    assert_eq!(found(s, &[&r], "\"on deploy\""), Vec::<u64>::new());
    // Case and accents.
    assert_eq!(found(s, &[&r], "cafe naive"), [4]);
    assert_eq!(found(s, &[&r], "CAFÉ"), [4]);
    // from: by nick, any case, alone or with words.
    assert_eq!(found(s, &[&r], "from:ALICE"), [3, 1]);
    assert_eq!(found(s, &[&r], "friday from:alice"), [3, 1]);
    assert_eq!(found(s, &[&r], "from:nobody friday"), Vec::<u64>::new());
    // Edited: by the new text only. Deleted: never.
    assert_eq!(found(s, &[&r], "wrod"), Vec::<u64>::new());
    assert_eq!(found(s, &[&r], "fixed"), [5]);
    assert_eq!(found(s, &[&r], "secret"), Vec::<u64>::new());
    assert_eq!(found(s, &[&r], "from:bob"), [5, 2]);
    // Only the rooms asked for; across rooms newest first.
    assert_eq!(found(s, &[&o], "friday"), [1]);
    let both = s.search(&search_op(&[&r, &o], "deploy", 50, None)).unwrap();
    assert_eq!(
        both.iter()
            .map(|h| (h.message.room.as_str(), h.message.seq))
            .collect::<Vec<_>>(),
        [("other", 1), ("lobby", 3), ("lobby", 2), ("lobby", 1)]
    );
    assert_eq!(found(s, &[], "deploy"), Vec::<u64>::new());
    // limit and before: a seq in one room, a ts across rooms.
    let page1 = s.search(&search_op(&[&r], "friday", 2, None)).unwrap();
    assert_eq!(hits_seqs(&page1), [3, 2]);
    let page2 = s.search(&search_op(&[&r], "friday", 2, Some(2))).unwrap();
    assert_eq!(hits_seqs(&page2), [1]);
    let across = s
        .search(&search_op(&[&r, &o], "friday", 50, Some(2500)))
        .unwrap();
    assert_eq!(
        across
            .iter()
            .map(|h| (h.message.room.as_str(), h.message.ts))
            .collect::<Vec<_>>(),
        [("other", 1000), ("lobby", 2000), ("lobby", 1000)]
    );
    let from_page = s
        .search(&search_op(&[&r], "from:alice", 1, Some(3)))
        .unwrap();
    assert_eq!(hits_seqs(&from_page), [1]);
    // Nothing left to look for finds nothing.
    assert_eq!(found(s, &[&r], "- : 🎉"), Vec::<u64>::new());
    // The hit as it is now, with the snippet marking the hits.
    let hit = &s.search(&search_op(&[&r], "fix", 5, None)).unwrap()[0];
    assert_eq!(hit.message.edited_ts, Some(7000));
    assert_eq!(hit.snippet, "typo fixed here");
    assert_eq!(marked(hit), ["fixed"]);
    let hit = &s.search(&search_op(&[&r], "cafe", 5, None)).unwrap()[0];
    assert_eq!(hit.snippet, "Café au lait, naïve question");
    assert_eq!(hit.marks, [(0, 4)]);
    let hit = &s.search(&search_op(&[&r], "from:carol", 5, None)).unwrap()[0];
    assert_eq!(hit.snippet, "Café au lait, naïve question");
    assert!(hit.marks.is_empty());
    let hit = &s
        .search(&search_op(&[&r], "deploy friday", 5, None))
        .unwrap()[0];
    assert_eq!(hit.snippet, "no deploy on Friday please");
    assert_eq!(marked(hit), ["deploy", "Friday"]);
}

/// A long text's snippet is about 200 characters around the first hit,
/// and its marks still point at the hit.
pub(crate) fn long_texts_get_short_snippets(s: &mut dyn Store) {
    let r = room("lobby");
    let text = format!(
        "{} needle {}",
        "lorem ipsum dolor ".repeat(30),
        "sit amet ".repeat(40)
    );
    s.append(&[said(&r, 1, "alice", &text)]).unwrap();
    let hit = &s.search(&search_op(&[&r], "needle", 5, None)).unwrap()[0];
    let n = hit.snippet.chars().count();
    assert!((100..=230).contains(&n), "{n}: {}", hit.snippet);
    assert_eq!(marked(hit), ["needle"]);
    let hit = &s.search(&search_op(&[&r], "from:alice", 5, None)).unwrap()[0];
    assert!(
        hit.snippet.chars().count() <= 201 && text.starts_with(hit.snippet.trim_end_matches('…'))
    );
}

/// Every contract test, each on a fresh store from `fresh`./// Every contract test, each on a fresh store from `fresh`.
pub(crate) fn run_all(mut fresh: impl FnMut() -> Box<dyn Store>) {
    round_trip(fresh().as_mut());
    pages_with_exclusive_bounds(fresh().as_mut());
    extreme_bounds_do_not_overflow(fresh().as_mut());
    images_are_stored_with_the_next_append(fresh().as_mut());
    messages_carry_their_account(fresh().as_mut());
    changes_round_trip_through_load_state(fresh().as_mut());
    account_del_removes_its_tokens(fresh().as_mut());
    new_fields_round_trip(fresh().as_mut());
    history_shows_messages_as_they_are_now(fresh().as_mut());
    reactions_toggle_in_order(fresh().as_mut());
    delete_wipes_everything(fresh().as_mut());
    amends_since_is_what_a_catch_up_needs(fresh().as_mut());
    find_variants(fresh().as_mut());
    search_basics(fresh().as_mut());
    long_texts_get_short_snippets(fresh().as_mut());
}
