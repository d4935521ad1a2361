//! Message history behind a small trait, so the hub never speaks SQL.
//!
//! The hub hands the store a batch of messages once per loop iteration
//! (group commit) and reads history through it. [`MemStore`] keeps history in
//! memory for the life of the process; the SQLite store implements the same
//! trait. The store never sees a socket.

pub mod sqlite;

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::hub::command::Page;
use crate::hub::event::Message;
use crate::hub::names::RoomName;

/// A failure of the storage layer: the server's fault, never the client's.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

pub trait Store {
    /// Random, made once with the store: a client that sees it change knows
    /// its `seq` positions mean nothing any more.
    fn store_id(&self) -> &str;
    /// The highest `seq` ever stored for `room` (0 for a room without messages).
    fn last_seq(&mut self, room: &RoomName) -> Result<u64, StoreError>;
    /// Stores a batch atomically: all of it or none of it.
    fn append(&mut self, batch: &[Rc<Message>]) -> Result<(), StoreError>;
    /// Messages of `room` within the page's exclusive bounds, ascending `seq`.
    /// With `after` the earliest `limit` are returned, otherwise the latest.
    fn history(&mut self, room: &RoomName, page: Page) -> Result<Vec<Rc<Message>>, StoreError>;
    /// Hands over an image's bytes, to be committed by the next `append`
    /// together with the message that carries the image.
    fn put_image(&mut self, id: &str, mime: &str, data: &[u8]) -> Result<(), StoreError>;
    /// A committed image's type and bytes, or `None` for an unknown id.
    fn get_image(&mut self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Pages committed to a write-ahead log and not yet copied into the
    /// database by a checkpoint (0 for a store without one).
    fn wal_pages(&self) -> u32 {
        0
    }
    /// Copies the write-ahead log into the database. Commits never do this
    /// themselves: a checkpoint costs two `fsync`s, and the shell runs it
    /// when the loop is idle rather than inside a commit everyone waits for.
    fn checkpoint(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// History kept in memory, per room, for as long as the process lives.
#[derive(Default)]
pub struct MemStore {
    id: String,
    rooms: HashMap<RoomName, Vec<Rc<Message>>>,
    images: HashMap<String, (String, Vec<u8>)>,
    /// Images put since the last append.
    pending_images: Vec<(String, String, Vec<u8>)>,
}

impl MemStore {
    /// An empty store; `id` should be random (a fresh one every start).
    pub fn new(id: String) -> MemStore {
        MemStore {
            id,
            rooms: HashMap::new(),
            images: HashMap::new(),
            pending_images: Vec::new(),
        }
    }
}

impl Store for MemStore {
    fn store_id(&self) -> &str {
        &self.id
    }

    fn last_seq(&mut self, room: &RoomName) -> Result<u64, StoreError> {
        Ok(self
            .rooms
            .get(room)
            .and_then(|m| m.last())
            .map_or(0, |m| m.seq))
    }

    fn put_image(&mut self, id: &str, mime: &str, data: &[u8]) -> Result<(), StoreError> {
        self.pending_images
            .push((id.to_string(), mime.to_string(), data.to_vec()));
        Ok(())
    }

    fn get_image(&mut self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(self.images.get(id).cloned())
    }

    fn append(&mut self, batch: &[Rc<Message>]) -> Result<(), StoreError> {
        for (id, mime, data) in self.pending_images.drain(..) {
            self.images.entry(id).or_insert((mime, data));
        }
        for m in batch {
            self.rooms
                .entry(m.room.clone())
                .or_default()
                .push(m.clone());
        }
        Ok(())
    }

    fn history(&mut self, room: &RoomName, page: Page) -> Result<Vec<Rc<Message>>, StoreError> {
        let Some(all) = self.rooms.get(room) else {
            return Ok(Vec::new());
        };
        // Messages are appended in seq order, so bounds are binary searches.
        let lo = page
            .after
            .map_or(0, |a| all.partition_point(|m| m.seq <= a));
        let hi = page
            .before
            .map_or(all.len(), |b| all.partition_point(|m| m.seq < b));
        if lo >= hi {
            return Ok(Vec::new());
        }
        let window = &all[lo..hi];
        let picked = if page.after.is_some() {
            &window[..window.len().min(page.limit)]
        } else {
            &window[window.len().saturating_sub(page.limit)..]
        };
        Ok(picked.to_vec())
    }
}

#[cfg(test)]
pub(crate) mod contract;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memstore_keeps_the_store_contract() {
        contract::run_all(|| Box::new(MemStore::new("test".into())));
    }
}
