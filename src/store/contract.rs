//! What every [`Store`] must do, as test functions any implementation's
//! tests call with a fresh store of its own: one set of expectations, not a
//! copy per store. (`MemStore` and `SqliteStore` run all of them; a store
//! added later runs them too.)

use std::rc::Rc;

use super::Store;
use crate::hub::command::Page;
use crate::hub::event::Message;
use crate::hub::names::RoomName;

pub(crate) fn room(name: &str) -> RoomName {
    RoomName::parse(name).expect("a valid room name")
}

pub(crate) fn msg(room: &RoomName, seq: u64) -> Rc<Message> {
    Rc::new(Message {
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

/// Every contract test, each on a fresh store from `fresh`.
pub(crate) fn run_all(mut fresh: impl FnMut() -> Box<dyn Store>) {
    round_trip(fresh().as_mut());
    pages_with_exclusive_bounds(fresh().as_mut());
    extreme_bounds_do_not_overflow(fresh().as_mut());
    images_are_stored_with_the_next_append(fresh().as_mut());
}
