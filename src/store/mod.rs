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

pub mod redis;
pub mod sqlite;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::hub::command::Page;
use crate::hub::event::{Amend, AmendKind, Hit, Message};
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, FindWhat, Load, Loaded, RoomEntry, RoomRecord, SearchOp, State,
    StoreAnswer, StoreOp, TokenRecord, FIND_LATEST,
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
    /// prefix if it has two letters or more; every phrase; `from` by nick), ignoring case and accents,
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
    /// Messages stored and not yet in the search index (0 for a store
    /// that indexes as it stores).
    fn unindexed(&self) -> usize {
        0
    }
    /// Puts up to `max` of them in the search index, oldest first, and
    /// says how many. A store may index in batches, apart from the commits
    /// that store messages (`SqliteStore`: a search index segment per
    /// commit made every commit several times dearer); its `search` then
    /// indexes what is pending first, so no stored message is ever missed.
    /// The shell calls this at the end of a turn (`store_upkeep`).
    fn index_pending(&mut self, _max: usize) -> Result<usize, StoreError> {
        Ok(0)
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
            read_at: Vec::new(),
        },
        // Only a hub that shares its chat asks, and only of a shared store.
        StoreOp::Publish(p) => StoreAnswer::Published {
            publish: p.id,
            result: Err(StoreError("this store does not share a chat".into())),
        },
        StoreOp::Claim(c) => StoreAnswer::Claimed {
            claim: c.id,
            result: None,
        },
        StoreOp::HoldNick(h) => StoreAnswer::Held {
            hold: h.id,
            ok: Ok(true),
        },
        StoreOp::PublishChange(c) => StoreAnswer::Published {
            publish: c.id,
            result: Err(StoreError("this store does not share a chat".into())),
        },
    }
}

/// Whether a message matches a search, with its snippet if so: `from`
/// (lowercase) names its sender; without terms (`from:` alone) every
/// message of the sender matches. `MemStore`'s rule, and Redis's.
pub(crate) fn search_hit(
    q: &crate::hub::search::Query,
    has_terms: bool,
    from: Option<&str>,
    m: &Rc<Message>,
) -> Option<Hit> {
    if from.is_some_and(|f| m.from.to_ascii_lowercase() != f) {
        return None;
    }
    let (snippet, marks) = if has_terms {
        let spans = text::mem_match(q, &m.text)?;
        text::fit(m.text.chars().collect(), spans)
    } else {
        (text::head(&m.text), Vec::new())
    };
    Some(Hit {
        message: m.clone(),
        snippet,
        marks,
    })
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
    rooms: HashMap<RoomName, MemHistory>,
    /// The next message's insertion number (`MemHistory::order`).
    next_order: u64,
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

/// A room's history in a [`MemStore`].
#[derive(Default)]
struct MemHistory {
    /// Ascending `seq`, each as it is now (changed in place by amends).
    messages: Vec<Rc<Message>>,
    /// Each message's insertion number, as `messages`: newest first across
    /// rooms means the highest first (as `SqliteStore`'s index ids).
    order: Vec<u64>,
    /// The change entries, ascending `seq`.
    amends: Vec<Rc<Amend>>,
}

impl MemHistory {
    fn position(&self, seq: u64) -> Option<usize> {
        self.messages.binary_search_by_key(&seq, |m| m.seq).ok()
    }
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
            next_order: 0,
            images: HashMap::new(),
            pending_images: Vec::new(),
            accounts: BTreeMap::new(),
            tokens: BTreeMap::new(),
            room_settings: BTreeMap::new(),
        }
    }

    /// Stores one change entry and applies it to its target, as
    /// `SqliteStore` does: a missing or deleted target is left alone.
    fn apply_amend(&mut self, a: &Rc<Amend>) {
        let h = self.rooms.entry(a.room.clone()).or_default();
        h.amends.push(a.clone());
        let Some(i) = h.position(a.target) else {
            return;
        };
        if h.messages[i].deleted {
            return;
        }
        let m = Rc::make_mut(&mut h.messages[i]);
        let image = m.image.clone();
        m.amend(a);
        {
            if let AmendKind::Delete { .. } = &a.kind {
                for e in h.amends.iter_mut().filter(|e| e.target == a.target) {
                    if let AmendKind::Edit { .. } = e.kind {
                        Rc::make_mut(e).kind = AmendKind::Edit {
                            text: String::new(),
                        };
                    }
                }
                for r in h.messages.iter_mut() {
                    if r.reply_to.as_ref().is_some_and(|q| q.seq == a.target) {
                        if let Some(q) = Rc::make_mut(r).reply_to.as_mut() {
                            q.text = None;
                        }
                    }
                }
                if let Some(image) = image {
                    let shown = self.rooms.values().any(|h| {
                        h.messages
                            .iter()
                            .any(|m| m.image.as_ref().is_some_and(|i| i.id == image.id))
                    });
                    if !shown {
                        self.images.remove(&image.id);
                    }
                }
            }
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
        Ok(self.rooms.get(room).map_or(0, |h| {
            let m = h.messages.last().map_or(0, |m| m.seq);
            let a = h.amends.last().map_or(0, |a| a.seq);
            m.max(a)
        }))
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
        amends: &[Rc<Amend>],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        for (id, mime, data) in self.pending_images.drain(..) {
            self.images.entry(id).or_insert((mime, data));
        }
        // In seq order within each room, as `SqliteStore` applies them.
        let mut applied = vec![false; amends.len()];
        for m in batch {
            for (a, done) in amends.iter().zip(applied.iter_mut()) {
                if !*done && a.room == m.room && a.seq < m.seq {
                    self.apply_amend(a);
                    *done = true;
                }
            }
            let order = self.next_order;
            self.next_order += 1;
            let h = self.rooms.entry(m.room.clone()).or_default();
            h.messages.push(m.clone());
            h.order.push(order);
        }
        for (a, done) in amends.iter().zip(&applied) {
            if !done {
                self.apply_amend(a);
            }
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
        room: &RoomName,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Rc<Amend>>, StoreError> {
        let Some(h) = self.rooms.get(room) else {
            return Ok(Vec::new());
        };
        let after = h.amends.partition_point(|a| a.seq <= since);
        Ok(h.amends[after..]
            .iter()
            .filter(|a| a.target <= since)
            .filter(|a| {
                matches!(a.kind, AmendKind::Delete { .. })
                    || !h.position(a.target).is_some_and(|i| h.messages[i].deleted)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    fn find(&mut self, room: &RoomName, what: &FindWhat) -> Result<Vec<Rc<Message>>, StoreError> {
        let Some(h) = self.rooms.get(room) else {
            return Ok(Vec::new());
        };
        let latest = |keep: &dyn Fn(&Message) -> bool| {
            h.messages
                .iter()
                .rev()
                .filter(|m| !m.deleted && keep(m))
                .take(FIND_LATEST)
                .cloned()
                .collect()
        };
        Ok(match what {
            FindWhat::Seq(seq) => h
                .position(*seq)
                .map(|i| h.messages[i].clone())
                .into_iter()
                .collect(),
            FindWhat::LastBy(authors) => latest(&|m| authors.iter().any(|a| m.by(a))),
            FindWhat::LastOf(nick) => {
                let key = nick.to_ascii_lowercase();
                latest(&|m| m.from.to_ascii_lowercase() == key)
            }
        })
    }

    fn search(&mut self, op: &SearchOp) -> Result<Vec<Hit>, StoreError> {
        let q = &op.query;
        let has_terms = q
            .words
            .iter()
            .chain(&q.phrases)
            .any(|t| text::has_word_char(t));
        if !has_terms && q.from.is_none() {
            return Ok(Vec::new());
        }
        let from = q.from.as_deref().map(str::to_ascii_lowercase);
        let one_room = op.rooms.len() == 1;
        let mut found: Vec<(u64, Hit)> = Vec::new();
        for room in &op.rooms {
            let Some(h) = self.rooms.get(room) else {
                continue;
            };
            for (m, &order) in h.messages.iter().zip(&h.order) {
                let older = match op.before {
                    None => true,
                    Some(b) if one_room => m.seq < b,
                    Some(b) => m.ts < b,
                };
                if m.deleted || !older {
                    continue;
                }
                if let Some(hit) = search_hit(q, has_terms, from.as_deref(), m) {
                    found.push((order, hit));
                }
            }
        }
        found.sort_by_key(|x| std::cmp::Reverse(x.0));
        Ok(found.into_iter().take(op.limit).map(|(_, h)| h).collect())
    }

    fn history(&mut self, room: &RoomName, page: Page) -> Result<Vec<Rc<Message>>, StoreError> {
        let Some(all) = self.rooms.get(room).map(|h| &h.messages) else {
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
