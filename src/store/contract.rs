//! What every [`Store`] must do, as test functions any implementation's
//! tests call with a fresh store of its own: one set of expectations, not a
//! copy per store. (`MemStore` and `SqliteStore` run all of them; a store
//! added later runs them too.)

use std::rc::Rc;

use super::Store;
use crate::hub::command::Page;
use crate::hub::event::Message;
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, EntryKind, RoomEntry, RoomRecord, State, TokenRecord,
};

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

/// Every contract test, each on a fresh store from `fresh`.
pub(crate) fn run_all(mut fresh: impl FnMut() -> Box<dyn Store>) {
    round_trip(fresh().as_mut());
    pages_with_exclusive_bounds(fresh().as_mut());
    extreme_bounds_do_not_overflow(fresh().as_mut());
    images_are_stored_with_the_next_append(fresh().as_mut());
    messages_carry_their_account(fresh().as_mut());
    changes_round_trip_through_load_state(fresh().as_mut());
    account_del_removes_its_tokens(fresh().as_mut());
}
