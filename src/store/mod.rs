//! Message history behind a small trait, so the hub never speaks SQL.
//!
//! The hub asks for what it needs through its persistence port
//! (`hub::port`): batches to store (one per loop turn: group commit) and
//! rooms to read. [`execute`] carries out one such request on a [`Store`]
//! that answers at once: [`MemStore`] keeps history in memory for the life
//! of the process, `sqlite::SqliteStore` in a file. The shell also reads
//! pages and images directly for the HTTP API, and runs the store's
//! upkeep (checkpoints). The store never sees a socket, and never the hub's
//! machinery: only its vocabulary.
//!
//! Besides history a store keeps accounts, login tokens and rooms' settings
//! and lists, changed by the [`Change`]s committed with a batch and read back
//! whole by [`Store::load_state`]. Both stores agree on what a change does:
//!
//! - Accounts and tokens name accounts case-insensitively (the name in
//!   ASCII lowercase, as `Nick::key`). `AccountPut` of an existing account
//!   sets its password hash only: the name as first spelled and the
//!   registration time stay; a new account starts without tokens (any
//!   stored for its name while it did not exist are dropped). `AccountDel` and `TokensDel` remove every token
//!   of the account; `AccountDel` leaves room entries naming it.
//! - `TokenPut` of a known hash replaces it. `RoomPut` sets all of a room's
//!   settings. `EntryPut` replaces the entry with the same room, kind and
//!   subject, and gives a room without settings a row with the defaults
//!   (no owner, no topic, open), so its entries are read back with it.
//!   Deleting what is not there is no error.
//! - `load_state` lists accounts by lowercase name, tokens by hash (only
//!   those of accounts that exist, naming the account as registered;
//!   expired ones too: the hub drops them), rooms by name, each room's
//!   entries by kind (`ban`, `invite`, `mute`, `op`) then subject.

pub mod sqlite;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::hub::command::Page;
use crate::hub::event::{Amend, Hit, Message};
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, FindWhat, Load, Loaded, RoomEntry, RoomRecord, SearchOp, State,
    StoreAnswer, StoreOp, TokenRecord,
};

pub use crate::hub::port::StoreError;

/// A store that answers at once: what [`execute`] needs to carry out the
/// hub's requests, and what the shell reads or runs itself.
pub trait Store {
    /// Random, made once with the store: a client that sees it change knows
    /// its `seq` positions mean nothing any more.
    fn store_id(&self) -> &str;
    /// The highest `seq` ever stored for `room` (0 for a room without messages).
    fn last_seq(&mut self, room: &RoomName) -> Result<u64, StoreError>;
    /// Stores a batch atomically: all of it or none of it, the messages,
    /// the edits, deletes and reactions (each an entry with its own `seq`,
    /// applied to its target as `port::Batch::amends` says) and the
    /// changes (accounts, tokens, room settings) together.
    fn commit(
        &mut self,
        batch: &[Rc<Message>],
        amends: &[Rc<Amend>],
        changes: &[Change],
    ) -> Result<(), StoreError>;
    /// Stores messages alone, atomically.
    fn append(&mut self, batch: &[Rc<Message>]) -> Result<(), StoreError> {
        self.commit(batch, &[], &[])
    }
    /// The edits, deletes and reactions of `room` after `since` whose
    /// target is at or before `since`, ascending `seq`, at most `limit`
    /// (a catch-up's changes; `port::Load::since`). Edits and reactions of
    /// a message deleted since are left out: its delete says it all.
    fn amends_since(
        &mut self,
        room: &RoomName,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Rc<Amend>>, StoreError>;
    /// The messages a `port::Find` asks for, as they are now.
    fn find(&mut self, room: &RoomName, what: &FindWhat) -> Result<Vec<Rc<Message>>, StoreError>;
    /// A search (PROTOCOL-2 section 4): messages not deleted in
    /// `op.rooms` matching `op.query` (every word, the last also as a
    /// prefix; every phrase; `from` by nick), ignoring case and accents,
    /// newest first, at most `op.limit`, older than `op.before`, each with
    /// a snippet and the hits marked in it. No query is a syntax error.
    fn search(&mut self, op: &SearchOp) -> Result<Vec<Hit>, StoreError>;
    /// Everything besides history: accounts, unexpired login tokens, and
    /// rooms' settings and lists (read once at start).
    fn load_state(&mut self) -> Result<State, StoreError>;
    /// Whether another process (`natter accounts`) changed the store since
    /// the last call; the shell then reads accounts and tokens again.
    fn changed_elsewhere(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Messages of `room` within the page's exclusive bounds, ascending
    /// `seq`, each as it is now (its latest text and `edited_ts`, deleted
    /// ones without text or image, reactions gathered; change entries are
    /// not listed). With `after` the earliest `limit` are returned,
    /// otherwise the latest.
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

/// Carries out one request of the hub's persistence port on a store that
/// answers at once, and gives the answer for `Hub::answer`. A batch's
/// images are handed over first and committed with its messages; a read
/// with a zero `limit` reads no history.
pub fn execute(store: &mut dyn Store, op: StoreOp) -> StoreAnswer {
    match op {
        StoreOp::Append(batch) => {
            let result = batch
                .images
                .iter()
                .try_for_each(|i| store.put_image(&i.id, i.mime, &i.data))
                .and_then(|()| store.commit(&batch.messages, &batch.amends, &batch.changes));
            StoreAnswer::Committed {
                batch: batch.id,
                result,
            }
        }
        StoreOp::Load(load) => StoreAnswer::Loaded {
            load: load.id,
            result: read(store, &load),
        },
        StoreOp::Find(find) => StoreAnswer::Found {
            find: find.id,
            result: store.find(&find.room, &find.what),
        },
        StoreOp::Search(op) => StoreAnswer::Searched {
            search: op.id,
            result: store.search(&op),
        },
    }
}

fn read(store: &mut dyn Store, load: &Load) -> Result<Loaded, StoreError> {
    let last_seq = if load.last_seq {
        Some(store.last_seq(&load.room)?)
    } else {
        None
    };
    let messages = if load.page.limit == 0 {
        Vec::new()
    } else {
        store.history(&load.room, load.page)?
    };
    let amends = match load.since {
        Some(since) if load.page.limit > 0 => {
            store.amends_since(&load.room, since, load.page.limit)?
        }
        _ => Vec::new(),
    };
    Ok(Loaded {
        messages,
        amends,
        last_seq,
    })
}

/// History kept in memory, per room, for as long as the process lives.
#[derive(Default)]
pub struct MemStore {
    id: String,
    rooms: HashMap<RoomName, Vec<Rc<Message>>>,
    images: HashMap<String, (String, Vec<u8>)>,
    /// Images put since the last append.
    pending_images: Vec<(String, String, Vec<u8>)>,
    /// By lowercase name.
    accounts: BTreeMap<String, AccountRecord>,
    /// By hash; `account` as given, matched by its lowercase form.
    tokens: BTreeMap<String, TokenRecord>,
    /// Each room's settings and its entries by (kind, subject).
    room_settings: BTreeMap<RoomName, MemRoom>,
}

/// A room's settings and lists in a [`MemStore`].
#[derive(Default)]
struct MemRoom {
    settings: RoomRecord,
    /// By kind's stored spelling, then subject: `load_state`'s order.
    entries: BTreeMap<(&'static str, String), RoomEntry>,
}

impl MemStore {
    /// An empty store; `id` should be random (a fresh one every start).
    pub fn new(id: String) -> MemStore {
        MemStore {
            id,
            rooms: HashMap::new(),
            images: HashMap::new(),
            pending_images: Vec::new(),
            accounts: BTreeMap::new(),
            tokens: BTreeMap::new(),
            room_settings: BTreeMap::new(),
        }
    }

    /// Applies one change, as `SqliteStore` does (see the module docs).
    fn apply(&mut self, change: &Change) {
        match change {
            Change::AccountPut(a) => {
                let key = a.name.to_ascii_lowercase();
                if !self.accounts.contains_key(&key) {
                    self.tokens
                        .retain(|_, t| t.account.to_ascii_lowercase() != key);
                }
                self.accounts
                    .entry(key)
                    .and_modify(|old| old.phc.clone_from(&a.phc))
                    .or_insert_with(|| a.clone());
            }
            Change::AccountDel { name } => {
                let key = name.to_ascii_lowercase();
                self.accounts.remove(&key);
                self.tokens
                    .retain(|_, t| t.account.to_ascii_lowercase() != key);
            }
            Change::TokenPut(t) => {
                self.tokens.insert(t.hash.clone(), t.clone());
            }
            Change::TokenDel { hash } => {
                self.tokens.remove(hash);
            }
            Change::TokensDel { account } => {
                let key = account.to_ascii_lowercase();
                self.tokens
                    .retain(|_, t| t.account.to_ascii_lowercase() != key);
            }
            Change::RoomPut { room, settings } => {
                self.room_settings.entry(room.clone()).or_default().settings = settings.clone();
            }
            Change::EntryPut { room, entry } => {
                self.room_settings
                    .entry(room.clone())
                    .or_default()
                    .entries
                    .insert((entry.kind.as_str(), entry.subject.clone()), entry.clone());
            }
            Change::EntryDel {
                room,
                kind,
                subject,
            } => {
                if let Some(r) = self.room_settings.get_mut(room) {
                    r.entries.remove(&(kind.as_str(), subject.clone()));
                }
            }
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

    fn commit(
        &mut self,
        batch: &[Rc<Message>],
        _amends: &[Rc<Amend>],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        for (id, mime, data) in self.pending_images.drain(..) {
            self.images.entry(id).or_insert((mime, data));
        }
        for m in batch {
            self.rooms
                .entry(m.room.clone())
                .or_default()
                .push(m.clone());
        }
        for change in changes {
            self.apply(change);
        }
        Ok(())
    }

    fn load_state(&mut self) -> Result<State, StoreError> {
        let tokens = self
            .tokens
            .values()
            .filter_map(|t| {
                let account = self.accounts.get(&t.account.to_ascii_lowercase())?;
                Some(TokenRecord {
                    account: account.name.clone(),
                    ..t.clone()
                })
            })
            .collect();
        Ok(State {
            accounts: self.accounts.values().cloned().collect(),
            tokens,
            rooms: self
                .room_settings
                .iter()
                .map(|(name, r)| {
                    (
                        name.clone(),
                        r.settings.clone(),
                        r.entries.values().cloned().collect(),
                    )
                })
                .collect(),
        })
    }

    fn amends_since(
        &mut self,
        _room: &RoomName,
        _since: u64,
        _limit: usize,
    ) -> Result<Vec<Rc<Amend>>, StoreError> {
        Ok(Vec::new()) // STUB: the store's part of issue 16
    }

    fn find(&mut self, room: &RoomName, what: &FindWhat) -> Result<Vec<Rc<Message>>, StoreError> {
        // STUB: the store's part of issue 16
        let all = self.rooms.get(room).map_or(&[][..], |v| v.as_slice());
        Ok(match what {
            FindWhat::Seq(seq) => all.iter().filter(|m| m.seq == *seq).cloned().collect(),
            _ => Vec::new(),
        })
    }

    fn search(&mut self, _op: &SearchOp) -> Result<Vec<Hit>, StoreError> {
        Ok(Vec::new()) // STUB: the store's part of issue 16
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
