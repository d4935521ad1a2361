//! A room's members: O(1) join, leave and lookup, a list that every
//! delivery to the room shares instead of copying, and their nicks kept in
//! order (O(log n) a change) for the listings a join answers with.
//!
//! The list sits behind an `Rc`. A message to the room takes a clone of the
//! `Rc` (no copy, no allocation, whatever the room's size) as its
//! recipients. A join or leave changes the list in place when no delivery
//! holds it, and copies it first when one does (`Rc::make_mut`), so an event
//! still goes to the members the room had when it happened. Deliveries are
//! handed to the shell at the end of each loop turn, so a room whose
//! members only talk copies nothing, and one that churns copies its list
//! at most once per event sent in between.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::event::ClientId;
use super::names::Nick;

#[derive(Debug, Default)]
pub(crate) struct Members {
    list: Rc<Vec<ClientId>>,
    /// Each member's index in `list`, and its nick's key.
    index: HashMap<ClientId, (usize, String)>,
    /// The members' nicks by their case-insensitive key, kept in order so
    /// that listing them (`/who`, a join's reply) is a walk, not a sort;
    /// with how many member connections hold each (an account logged in
    /// on several connections holds one nick on all of them).
    nicks: BTreeMap<String, (Nick, usize)>,
}

impl Members {
    /// Adds `id`, known as `nick`; false if it was a member already.
    pub(crate) fn insert(&mut self, id: ClientId, nick: &Nick) -> bool {
        if self.index.contains_key(&id) {
            return false;
        }
        let list = Rc::make_mut(&mut self.list);
        let key = nick.key();
        self.nicks
            .entry(key.clone())
            .or_insert_with(|| (nick.clone(), 0))
            .1 += 1;
        self.index.insert(id, (list.len(), key));
        list.push(id);
        true
    }

    pub(crate) fn remove(&mut self, id: ClientId) -> bool {
        let Some((at, key)) = self.index.remove(&id) else {
            return false;
        };
        self.forget_nick(&key);
        let list = Rc::make_mut(&mut self.list);
        list.swap_remove(at);
        if let Some(moved) = list.get(at) {
            if let Some(entry) = self.index.get_mut(moved) {
                entry.0 = at;
            }
        }
        true
    }

    pub(crate) fn rename(&mut self, id: ClientId, nick: &Nick) {
        let Some((_, key)) = self.index.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(key, nick.key());
        let entry = self
            .nicks
            .entry(nick.key())
            .or_insert_with(|| (nick.clone(), 0));
        entry.0 = nick.clone(); // the new spelling, "carol" -> "CAROL"
        entry.1 += 1;
        self.forget_nick(&old);
    }

    /// One connection fewer holds the nick `key`.
    fn forget_nick(&mut self, key: &str) {
        if let Some(entry) = self.nicks.get_mut(key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                self.nicks.remove(key);
            }
        }
    }

    /// Whether a member holds the nick with this (lowercase) key: several
    /// connections of one account share one nick, listed once.
    pub(crate) fn holds(&self, key: &str) -> bool {
        self.nicks.contains_key(key)
    }

    pub(crate) fn nicks(&self) -> impl Iterator<Item = &Nick> + '_ {
        self.nicks.values().map(|(n, _)| n)
    }

    pub(crate) fn contains(&self, id: ClientId) -> bool {
        self.index.contains_key(&id)
    }

    /// How many nicks: an account on several connections counts once.
    pub(crate) fn nick_count(&self) -> usize {
        self.nicks.len()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.list.iter().copied()
    }

    /// The members now, as a delivery's recipients (shared, not copied).
    pub(crate) fn snapshot(&self) -> Rc<Vec<ClientId>> {
        Rc::clone(&self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn set(it: impl Iterator<Item = ClientId>) -> HashSet<u64> {
        it.map(|c| c.0).collect()
    }

    fn nick(s: &str) -> Nick {
        Nick::parse(s).expect("nick")
    }

    fn add(m: &mut Members, i: u64) -> bool {
        m.insert(ClientId(i), &nick(&format!("n{i}")))
    }

    #[test]
    fn joins_and_leaves_keep_list_and_index_in_step() {
        let mut m = Members::default();
        for i in 0..10 {
            assert!(add(&mut m, i));
        }
        assert!(!add(&mut m, 3), "a member joins once");
        for i in [0, 9, 4, 4, 42] {
            let was = m.contains(ClientId(i));
            assert_eq!(m.remove(ClientId(i)), was);
        }
        assert_eq!(
            set(m.iter()),
            set([1, 2, 3, 5, 6, 7, 8].map(ClientId).into_iter())
        );
        for (at, id) in m.list.iter().enumerate() {
            assert_eq!(m.index[id].0, at, "{id:?}'s index");
        }
        assert_eq!(m.len(), 7);
        assert_eq!(m.nicks().count(), 7);
        for i in [1, 2, 3, 5, 6, 7, 8] {
            assert!(m.remove(ClientId(i)));
        }
        assert!(m.is_empty() && m.index.is_empty() && m.nicks.is_empty());
    }

    #[test]
    fn nicks_are_listed_case_insensitively_through_renames() {
        let mut m = Members::default();
        for (i, n) in ["bob", "Alice", "carol", "Dave"].iter().enumerate() {
            m.insert(ClientId(i as u64), &nick(n));
        }
        let names = |m: &Members| m.nicks().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&m), ["Alice", "bob", "carol", "Dave"]);
        m.rename(ClientId(0), &nick("Zed"));
        m.rename(ClientId(2), &nick("CAROL"));
        m.rename(ClientId(42), &nick("nobody"));
        assert_eq!(names(&m), ["Alice", "CAROL", "Dave", "Zed"]);
        m.remove(ClientId(3));
        assert_eq!(names(&m), ["Alice", "CAROL", "Zed"]);
    }

    #[test]
    fn connections_sharing_a_nick_list_it_once_until_the_last_leaves() {
        let mut m = Members::default();
        m.insert(ClientId(1), &nick("alice"));
        m.insert(ClientId(2), &nick("Alice"));
        m.insert(ClientId(3), &nick("bob"));
        assert_eq!(m.nicks().count(), 2);
        assert!(m.holds("alice"));
        m.remove(ClientId(1));
        assert!(m.holds("alice"), "the other connection still holds it");
        m.rename(ClientId(3), &nick("alice"));
        assert!(!m.holds("bob"));
        m.remove(ClientId(2));
        assert!(m.holds("alice"));
        m.remove(ClientId(3));
        assert!(!m.holds("alice") && m.nicks.is_empty());
    }

    #[test]
    fn a_snapshot_is_shared_until_the_room_changes() {
        let mut m = Members::default();
        add(&mut m, 1);
        add(&mut m, 2);
        let a = m.snapshot();
        let b = m.snapshot();
        assert!(Rc::ptr_eq(&a, &b), "two messages share one list");
        add(&mut m, 3);
        m.remove(ClientId(1));
        assert_eq!(
            *a,
            vec![ClientId(1), ClientId(2)],
            "an event keeps its recipients"
        );
        assert_eq!(set(m.iter()), set([2, 3].map(ClientId).into_iter()));
        drop((a, b));
        let before = Rc::as_ptr(&m.list);
        add(&mut m, 4);
        assert_eq!(
            Rc::as_ptr(&m.list),
            before,
            "no delivery holds it: changed in place"
        );
    }
}
