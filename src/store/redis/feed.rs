//! Every room's entries in `seq` order, once each, whatever order and
//! however many times they come (PROTOCOL-2 section 6): the hub takes a
//! room's entries one `seq` after another (`Hub::arrive`), and this is
//! what makes the subscriber's pushes and the streams' reads into that.
//!
//! Entries come two ways. Pushes on the subscriber connection are in the
//! order Redis ran the publish script, but some may be missing: pushed
//! while the connection was down, or while the room was not in memory
//! here. Reads of a room's stream fill what is missing. So an entry past
//! the next one waits here, and the stream is read for those before it;
//! after the read, what the stream no longer keeps (trimmed by
//! `--redis-keep`) is skipped. When the subscriber connection comes back,
//! every room held is read from its last `seq` on (`resync`): what was
//! stored meanwhile reaches everyone who stayed.
//!
//! Pure: no socket, no clock. `known` is always the hub's `room_seq` at
//! the moment of the call (`None`: the room is not held, and none of its
//! entries is wanted: a join reads the store), and the caller hands the
//! `Arrive`s to the hub in the order given.

use std::collections::{BTreeMap, HashMap};

use crate::hub::names::RoomName;

/// What the caller does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<T> {
    /// Hand this entry to the hub: it is the room's next.
    Arrive(T),
    /// Read the room's stream after `after`, up to `before` (exclusive;
    /// `None`: to its end), and hand the entries to `fetched`.
    Fetch {
        /// The room.
        room: RoomName,
        /// The last `seq` the hub has.
        after: u64,
        /// The first `seq` already here.
        before: Option<u64>,
    },
}

#[derive(Debug)]
struct Room<T> {
    /// Entries past the next one, by `seq`.
    waiting: BTreeMap<u64, T>,
    /// A read of the stream is out.
    fetching: bool,
}

impl<T> Default for Room<T> {
    fn default() -> Self {
        Room {
            waiting: BTreeMap::new(),
            fetching: false,
        }
    }
}

/// Entries waiting for the ones before them, per room.
#[derive(Debug)]
pub struct Feed<T> {
    rooms: HashMap<RoomName, Room<T>>,
}

impl<T> Default for Feed<T> {
    fn default() -> Self {
        Feed {
            rooms: HashMap::new(),
        }
    }
}

impl<T> Feed<T> {
    /// Entries waiting in all rooms.
    pub fn waiting(&self) -> usize {
        self.rooms.values().map(|r| r.waiting.len()).sum()
    }

    /// An entry pushed by the subscriber connection.
    pub fn pushed(
        &mut self,
        known: Option<u64>,
        room: &RoomName,
        seq: u64,
        entry: T,
    ) -> Vec<Action<T>> {
        let Some(known) = known else {
            self.rooms.remove(room);
            return Vec::new();
        };
        if seq <= known {
            return Vec::new();
        }
        let r = self.rooms.entry(room.clone()).or_default();
        r.waiting.insert(seq, entry);
        self.drain(room, known)
    }

    /// The answer to a `Fetch`: the entries read, ascending (`Err`: the read
    /// failed; the next push or `resync` asks again). `full`: the read
    /// stopped at its count, and more may follow.
    pub fn fetched(
        &mut self,
        known: Option<u64>,
        room: &RoomName,
        entries: Result<Vec<(u64, T)>, ()>,
        full: bool,
    ) -> Vec<Action<T>> {
        let Some(known) = known else {
            self.rooms.remove(room);
            return Vec::new();
        };
        let r = self.rooms.entry(room.clone()).or_default();
        r.fetching = false;
        let Ok(entries) = entries else {
            return Vec::new();
        };
        for (seq, e) in entries {
            if seq > known {
                r.waiting.insert(seq, e);
            }
        }
        let mut out = Vec::new();
        let mut known = known;
        // What the read did not find before the first waiting entry, the
        // stream no longer has: skipped (unless the read stopped short).
        if !full {
            if let Some((&first, _)) = r.waiting.iter().next() {
                if first > known + 1 {
                    known = first - 1;
                }
            }
        }
        while let Some(e) = r.waiting.remove(&(known + 1)) {
            out.push(Action::Arrive(e));
            known += 1;
        }
        if full {
            r.fetching = true;
            out.push(Action::Fetch {
                room: room.clone(),
                after: known,
                before: r.waiting.keys().next().copied(),
            });
        } else if !r.waiting.is_empty() {
            out.extend(self.drain(room, known));
        } else {
            self.rooms.remove(room);
        }
        out
    }

    /// The subscriber connection is back: every room held is read from the
    /// `seq` the hub has on. `held`: each room the hub holds, with its seq.
    pub fn resync(&mut self, held: impl IntoIterator<Item = (RoomName, u64)>) -> Vec<Action<T>> {
        let mut out = Vec::new();
        for (room, known) in held {
            let r = self.rooms.entry(room.clone()).or_default();
            r.fetching = true;
            r.waiting.retain(|s, _| *s > known);
            out.push(Action::Fetch {
                room,
                after: known,
                before: None,
            });
        }
        out
    }

    /// Hands out the room's next entries, and asks for the stream between
    /// `known` and the first that waits, if one does and no read is out.
    fn drain(&mut self, room: &RoomName, mut known: u64) -> Vec<Action<T>> {
        let mut out = Vec::new();
        let Some(r) = self.rooms.get_mut(room) else {
            return out;
        };
        r.waiting.retain(|s, _| *s > known);
        while let Some(e) = r.waiting.remove(&(known + 1)) {
            out.push(Action::Arrive(e));
            known += 1;
        }
        match r.waiting.keys().next().copied() {
            Some(first) if !r.fetching => {
                r.fetching = true;
                out.push(Action::Fetch {
                    room: room.clone(),
                    after: known,
                    before: Some(first),
                });
            }
            Some(_) => {}
            None if !r.fetching => {
                self.rooms.remove(room);
            }
            None => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lobby() -> RoomName {
        RoomName::parse("lobby").unwrap()
    }

    /// A hub's side: the seq it has, moved on by each arrival, which must
    /// be the next one.
    struct Hub {
        seq: Option<u64>,
        got: Vec<u64>,
    }

    impl Hub {
        fn take(&mut self, actions: Vec<Action<u64>>) -> Vec<(u64, Option<u64>)> {
            let mut fetches = Vec::new();
            for a in actions {
                match a {
                    Action::Arrive(s) => {
                        let known = self.seq.unwrap();
                        assert!(s > known, "{s} arrived after {known}");
                        self.seq = Some(s);
                        self.got.push(s);
                    }
                    Action::Fetch { after, before, .. } => fetches.push((after, before)),
                }
            }
            fetches
        }
    }

    #[test]
    fn pushes_in_order_arrive_at_once() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(4),
            got: vec![],
        };
        for s in 5..=7 {
            assert!(h.take(f.pushed(h.seq, &lobby(), s, s)).is_empty());
        }
        // Old and repeated ones are dropped.
        assert!(h.take(f.pushed(h.seq, &lobby(), 6, 6)).is_empty());
        assert_eq!(h.got, [5, 6, 7]);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn a_gap_is_read_from_the_stream_and_filled_in_order() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(1),
            got: vec![],
        };
        // 2 and 3 were missed: 4 waits, the stream is read between.
        assert_eq!(h.take(f.pushed(h.seq, &lobby(), 4, 4)), [(1, Some(4))]);
        // Meanwhile 5 comes: it waits too, no second read.
        assert!(h.take(f.pushed(h.seq, &lobby(), 5, 5)).is_empty());
        assert!(h.got.is_empty());
        assert_eq!(f.waiting(), 2);
        assert!(h
            .take(f.fetched(h.seq, &lobby(), Ok(vec![(2, 2), (3, 3)]), false))
            .is_empty());
        assert_eq!(h.got, [2, 3, 4, 5]);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn what_the_stream_no_longer_keeps_is_skipped() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(1),
            got: vec![],
        };
        assert_eq!(h.take(f.pushed(h.seq, &lobby(), 10, 10)), [(1, Some(10))]);
        // Trimmed: the stream keeps 8 and 9 of those between.
        h.take(f.fetched(h.seq, &lobby(), Ok(vec![(8, 8), (9, 9)]), false));
        assert_eq!(h.got, [8, 9, 10]);
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn a_full_read_asks_for_more_before_skipping() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(0),
            got: vec![],
        };
        h.take(f.pushed(h.seq, &lobby(), 6, 6));
        let more = h.take(f.fetched(h.seq, &lobby(), Ok(vec![(1, 1), (2, 2)]), true));
        assert_eq!(more, [(2, Some(6))]);
        h.take(f.fetched(h.seq, &lobby(), Ok(vec![(3, 3), (4, 4), (5, 5)]), false));
        assert_eq!(h.got, [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn a_failed_read_is_asked_again_by_the_next_push() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(0),
            got: vec![],
        };
        assert_eq!(h.take(f.pushed(h.seq, &lobby(), 2, 2)), [(0, Some(2))]);
        assert!(h
            .take(f.fetched(h.seq, &lobby(), Err(()), false))
            .is_empty());
        assert_eq!(h.take(f.pushed(h.seq, &lobby(), 3, 3)), [(0, Some(2))]);
        h.take(f.fetched(h.seq, &lobby(), Ok(vec![(1, 1)]), false));
        assert_eq!(h.got, [1, 2, 3]);
    }

    #[test]
    fn a_room_not_held_wants_nothing() {
        let mut f = Feed::default();
        assert!(f.pushed(None, &lobby(), 9, 9u64).is_empty());
        assert_eq!(f.waiting(), 0);
    }

    #[test]
    fn a_resync_reads_every_room_from_its_seq_and_nothing_comes_twice() {
        let mut f = Feed::default();
        let mut h = Hub {
            seq: Some(3),
            got: vec![],
        };
        let dev = RoomName::parse("dev").unwrap();
        let fetches = f.resync([(lobby(), 3), (dev.clone(), 0)]);
        assert_eq!(fetches.len(), 2);
        assert!(fetches.contains(&Action::Fetch {
            room: dev,
            after: 0,
            before: None
        }));
        // A push comes before the read's answer: it waits for it.
        assert!(h.take(f.pushed(h.seq, &lobby(), 6, 6)).is_empty());
        h.take(f.fetched(h.seq, &lobby(), Ok(vec![(4, 4), (5, 5), (6, 6)]), false));
        assert_eq!(h.got, [4, 5, 6]);
        assert!(h.take(f.pushed(h.seq, &lobby(), 6, 6)).is_empty());
        assert_eq!(h.got, [4, 5, 6]);
    }

    #[test]
    fn random_orders_and_repeats_arrive_exactly_once_in_order() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for _ in 0..200 {
            let mut f = Feed::default();
            let mut h = Hub {
                seq: Some(0),
                got: vec![],
            };
            let total = 1 + next(40);
            let mut pending_fetch: Option<(u64, Option<u64>)> = None;
            // Pushes of 1..=total, some lost, some repeated, in order.
            for s in 1..=total {
                if next(3) == 0 {
                    continue; // lost
                }
                for _ in 0..=next(2) {
                    for fe in h.take(f.pushed(h.seq, &lobby(), s, s)) {
                        assert!(pending_fetch.is_none(), "two reads out");
                        pending_fetch = Some(fe);
                    }
                }
                // Sometimes the read is answered now, from the stream
                // (which has everything up to `s`).
                if next(2) == 0 {
                    if let Some((after, before)) = pending_fetch.take() {
                        let end = before.unwrap_or(s + 1).min(s + 1);
                        let got: Vec<(u64, u64)> = (after + 1..end).map(|x| (x, x)).collect();
                        for fe in h.take(f.fetched(h.seq, &lobby(), Ok(got), false)) {
                            pending_fetch = Some(fe);
                        }
                    }
                }
            }
            // The end: a resync reads what is left.
            for a in f.resync([(lobby(), h.seq.unwrap())]) {
                let Action::Fetch { after, .. } = a else {
                    panic!()
                };
                let got: Vec<(u64, u64)> = (after + 1..=total).map(|x| (x, x)).collect();
                h.take(f.fetched(h.seq, &lobby(), Ok(got), false));
            }
            assert_eq!(h.got, (1..=total).collect::<Vec<_>>());
        }
    }
}
