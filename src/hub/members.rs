//! A room's members: O(1) join, leave and lookup, and a list that every
//! delivery to the room shares instead of copying.
//!
//! The list sits behind an `Rc`. A message to the room takes a clone of the
//! `Rc` (no copy, no allocation, whatever the room's size) as its
//! recipients. A join or leave changes the list in place when no delivery
//! holds it, and copies it first when one does (`Rc::make_mut`), so an event
//! still goes to the members the room had when it happened. Deliveries are
//! handed to the shell at the end of each loop turn, so a room whose
//! members only talk copies nothing, and one that churns copies its list
//! at most once per event sent in between.

use std::collections::HashMap;
use std::rc::Rc;

use super::event::ClientId;

#[derive(Debug, Default)]
pub struct Members {
    list: Rc<Vec<ClientId>>,
    /// Each member's index in `list`.
    index: HashMap<ClientId, usize>,
}

impl Members {
    /// Adds `id`; false if it was a member already.
    pub fn insert(&mut self, id: ClientId) -> bool {
        if self.index.contains_key(&id) {
            return false;
        }
        let list = Rc::make_mut(&mut self.list);
        self.index.insert(id, list.len());
        list.push(id);
        true
    }

    /// Removes `id` (the last member takes its place); false if it was not
    /// a member.
    pub fn remove(&mut self, id: ClientId) -> bool {
        let Some(at) = self.index.remove(&id) else {
            return false;
        };
        let list = Rc::make_mut(&mut self.list);
        list.swap_remove(at);
        if let Some(&moved) = list.get(at) {
            self.index.insert(moved, at);
        }
        true
    }

    pub fn contains(&self, id: ClientId) -> bool {
        self.index.contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.list.iter().copied()
    }

    /// The members now, as a delivery's recipients (shared, not copied).
    pub fn snapshot(&self) -> Rc<Vec<ClientId>> {
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

    #[test]
    fn joins_and_leaves_keep_list_and_index_in_step() {
        let mut m = Members::default();
        for i in 0..10 {
            assert!(m.insert(ClientId(i)));
        }
        assert!(!m.insert(ClientId(3)), "a member joins once");
        for i in [0, 9, 4, 4, 42] {
            let was = m.contains(ClientId(i));
            assert_eq!(m.remove(ClientId(i)), was);
        }
        assert_eq!(
            set(m.iter()),
            set([1, 2, 3, 5, 6, 7, 8].map(ClientId).into_iter())
        );
        for (at, id) in m.list.iter().enumerate() {
            assert_eq!(m.index[id], at, "{id:?}'s index");
        }
        assert_eq!(m.len(), 7);
        for i in [1, 2, 3, 5, 6, 7, 8] {
            assert!(m.remove(ClientId(i)));
        }
        assert!(m.is_empty() && m.index.is_empty());
    }

    #[test]
    fn a_snapshot_is_shared_until_the_room_changes() {
        let mut m = Members::default();
        m.insert(ClientId(1));
        m.insert(ClientId(2));
        let a = m.snapshot();
        let b = m.snapshot();
        assert!(Rc::ptr_eq(&a, &b), "two messages share one list");
        m.insert(ClientId(3));
        m.remove(ClientId(1));
        assert_eq!(
            *a,
            vec![ClientId(1), ClientId(2)],
            "an event keeps its recipients"
        );
        assert_eq!(set(m.iter()), set([2, 3].map(ClientId).into_iter()));
        drop((a, b));
        let before = Rc::as_ptr(&m.list);
        m.insert(ClientId(4));
        assert_eq!(
            Rc::as_ptr(&m.list),
            before,
            "no delivery holds it: changed in place"
        );
    }
}
