//! A chat shared by several processes (PROTOCOL-2 section 6): rooms'
//! `seq`s are given by the shared store, not by this hub.
//!
//! A hub told it shares its chat ([`Hub::share`]) numbers no message
//! itself. A message a client sends goes out as a [`StoreOp::Publish`]
//! with `seq` 0, and nobody is sent anything yet. The store numbers it,
//! keeps it and hands it to every process; back here it comes in through
//! [`Hub::arrive`], like every other process's messages, in each room's
//! `seq` order: then the room's members get it, and its sender (whose
//! request the arrival names) its acknowledgement. So every process sends
//! every room's messages in one order, the store's, and only once the
//! store has kept them.
//!
//! The shell keeps the order: it hands over a room's messages one `seq`
//! after another, starting after [`Hub::room_seq`], and reads the store
//! for any it missed (see `store::redis::feed`).

use std::collections::HashMap;
use std::rc::Rc;

use log::warn;

use super::command::Page;
use super::error::{ErrorCode, HubError};
use super::event::{
    Amend, AmendKind, ClientId, ClientKind, Entry, Event, Hit, Message, Recipients, Reply,
};
use super::names::RoomName;
use super::port::{Loaded, NewImage, Publish, PublishChange, Published, StoreError, StoreOp};
use super::session::Sent;
use super::{Hub, Now};

/// A message sent to the store and not arrived yet.
pub(super) struct Draft {
    client: ClientId,
    cid: Option<String>,
    r#ref: Option<String>,
    room: RoomName,
    /// An edit, delete or reaction, not a message.
    change: bool,
    /// Its sender was told `unavailable` (kept in case it arrives).
    failed: bool,
}

/// The drafts of a shared hub.
#[derive(Default)]
pub(super) struct Drafts {
    out: HashMap<u64, Draft>,
    next: u64,
    /// Drafts whose sender was told `unavailable`, oldest first: Redis
    /// may still have run the publish (it stopped, then went on), and if
    /// the message arrives after all its sender gets its acknowledgement,
    /// not the room's copy. At most `FAILED_KEPT`.
    failed: std::collections::VecDeque<u64>,
    /// Searches whose rooms the store read past what has arrived here
    /// (see [`Hub::answer_waiting`]).
    pub(super) searches: Vec<WaitingSearch>,
    /// Clients whose request waits for their drafts' answers.
    holding: std::collections::HashSet<ClientId>,
    /// Each client's drafts not answered yet (failed ones not counted).
    pending: HashMap<ClientId, u32>,
}

impl Drafts {
    /// One draft of `client` is answered (or failed).
    fn settle(&mut self, client: ClientId) {
        if let Some(n) = self.pending.get_mut(&client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.pending.remove(&client);
            }
        }
    }
}

/// Failed drafts remembered in case they arrive after all.
const FAILED_KEPT: usize = 4096;

/// A search's answer waiting for its rooms' entries to arrive: the
/// search, its answer, where the store read each room, when it came (ms).
pub(super) type WaitingSearch = (
    super::amend::Searching,
    Result<Vec<Hit>, StoreError>,
    Vec<(RoomName, u64)>,
    u64,
);

/// How long a read's answer waits for the room's entries it saw to
/// arrive here before it is handed over as it is (ms).
const ANSWER_WAIT_MS: u64 = 2_000;

/// A history page the store read, as it is now here: `tail` (what
/// arrived here after the store read) applied to it, its new messages
/// added, within the page's bounds and limit.
pub(super) fn page_now(
    messages: Vec<Rc<Message>>,
    page: &Page,
    tail: Vec<Entry>,
) -> Vec<Rc<Message>> {
    if tail.is_empty() {
        return messages;
    }
    let mut tail = tail;
    tail.sort_by_key(Entry::seq);
    tail.dedup_by_key(|e| e.seq());
    let mut all = messages;
    for e in tail {
        match e {
            Entry::Message(m) => {
                let inside =
                    page.after.is_none_or(|a| m.seq > a) && page.before.is_none_or(|b| m.seq < b);
                if inside && all.last().is_none_or(|l| l.seq < m.seq) {
                    all.push(m);
                }
            }
            Entry::Amend(a) => {
                if let Ok(i) = all.binary_search_by_key(&a.target, |m| m.seq) {
                    Rc::make_mut(&mut all[i]).amend(&a);
                }
            }
        }
    }
    if page.after.is_none() {
        let extra = all.len().saturating_sub(page.limit);
        all.drain(..extra);
    } else {
        all.truncate(page.limit);
    }
    all
}

impl Hub {
    /// From now on this hub shares its chat with other processes through
    /// the store: see the module's docs.
    pub fn share(&mut self) {
        self.shared = true;
    }

    /// Whether this hub shares its chat.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The `seq` of the last message of `room` this hub has handed out,
    /// `None` if it does not hold the room (then it needs none of its
    /// messages: a join reads the store).
    pub fn room_seq(&self, room: &RoomName) -> Option<u64> {
        self.rooms.get(room).map(|r| r.last_seq)
    }

    /// Every room held, with its `seq` (what a resync reads from).
    pub fn held_rooms(&self) -> Vec<(RoomName, u64)> {
        self.rooms
            .iter()
            .map(|(n, r)| (n.clone(), r.last_seq))
            .collect()
    }

    /// Messages sent to the store and not arrived.
    pub fn drafts_out(&self) -> usize {
        self.drafts.out.len() - self.drafts.failed.len()
    }

    /// A checked message of `id` goes to the store (see `say`).
    pub(super) fn publish(
        &mut self,
        id: ClientId,
        msg: Message,
        image: Option<NewImage>,
        cid: Option<String>,
        r#ref: Option<String>,
    ) {
        let n = self.drafts.next;
        self.drafts.next += 1;
        let room = msg.room.clone();
        self.ops.push(StoreOp::Publish(Publish {
            id: n,
            message: Rc::new(msg),
            cid: cid.clone(),
            image,
        }));
        self.add_draft(
            n,
            Draft {
                client: id,
                cid,
                r#ref,
                room,
                change: false,
                failed: false,
            },
        );
    }

    /// A checked edit, delete or reaction of `id` goes to the store (see
    /// `amend::apply`).
    pub(super) fn publish_change(
        &mut self,
        id: ClientId,
        mut change: PublishChange,
        r#ref: Option<String>,
    ) {
        let n = self.drafts.next;
        self.drafts.next += 1;
        change.id = n;
        let room = change.room.clone();
        self.ops.push(StoreOp::PublishChange(change));
        self.add_draft(
            n,
            Draft {
                client: id,
                cid: None,
                r#ref,
                room,
                change: true,
                failed: false,
            },
        );
    }

    /// Whether `id` has messages or changes out that the store has not
    /// answered.
    pub(super) fn drafts_pending(&self, id: ClientId) -> bool {
        self.drafts.pending.contains_key(&id)
    }

    fn add_draft(&mut self, n: u64, d: Draft) {
        *self.drafts.pending.entry(d.client).or_default() += 1;
        self.drafts.out.insert(n, d);
    }

    /// Draft `n`, answered: out of the books.
    fn take_draft(&mut self, n: u64) -> Option<Draft> {
        let d = self.drafts.out.remove(&n)?;
        if !d.failed {
            self.drafts.settle(d.client);
        }
        Some(d)
    }

    /// A request of `id` (a leave, a quit, a search...), which has drafts
    /// out, waits for their answers, and what it asks meanwhile waits
    /// behind it: its acknowledgements come before the request's answer
    /// (its `left`, its `bye`), as on one process.
    pub(super) fn hold_for_drafts(&mut self, id: ClientId, deferred: super::Deferred) {
        let p = self.parked.entry(id).or_default();
        p.busy = true;
        p.queue.push_front(deferred);
        self.drafts.holding.insert(id);
    }

    /// A draft of `id` was answered: if a request waited for the last of
    /// them, it goes on.
    fn drafts_settled(&mut self, now: Now, id: ClientId) {
        if !self.drafts.holding.contains(&id) || self.drafts_pending(id) {
            return;
        }
        self.drafts.holding.remove(&id);
        if self.unpark_client(id) {
            self.run_deferred_for(now, id);
        }
    }

    /// `old` resumed as `new`: its drafts' answers go to `new`.
    pub(super) fn renumber_drafts(&mut self, old: ClientId, new: ClientId) {
        for d in self.drafts.out.values_mut() {
            if d.client == old {
                d.client = new;
            }
        }
        if let Some(n) = self.drafts.pending.remove(&old) {
            self.drafts.pending.insert(new, n);
        }
        if self.drafts.holding.remove(&old) {
            self.drafts.holding.insert(new);
        }
    }

    /// `id` is gone.
    pub(super) fn forget_holding(&mut self, id: ClientId) {
        self.drafts.holding.remove(&id);
    }

    /// An entry of a room, numbered by the store: a message or a change
    /// (see [`Hub::arrive`]).
    pub fn arrive_entry(&mut self, now: Now, entry: Entry, origin: Option<u64>) {
        match entry {
            Entry::Message(m) => self.arrive(now, m, origin),
            Entry::Amend(a) => self.arrive_change(now, a, origin),
        }
    }

    /// An edit, delete or reaction, numbered by the store: the room's
    /// members are sent it (a reaction only to WebSocket clients), its
    /// maker here its acknowledgement.
    fn arrive_change(&mut self, now: Now, a: Rc<Amend>, origin: Option<u64>) {
        let Some(r) = self.rooms.get_mut(&a.room) else {
            self.push_to_tails(Entry::Amend(a));
            return;
        };
        if a.seq <= r.last_seq {
            // Older than the room here (a read set the room's seq past
            // what had arrived): not sent again, but a read still waiting
            // may lack it.
            self.push_to_tails(Entry::Amend(a));
            return;
        }
        r.last_seq = a.seq;
        let members = r.members.snapshot();
        let draft = origin.and_then(|n| self.take_draft(n));
        if let (Some(n), Some(_)) = (origin, &draft) {
            if let Some(i) = self.drafts.failed.iter().position(|f| *f == n) {
                self.drafts.failed.remove(i);
            }
        }
        let sender = draft.as_ref().map(|d| d.client);
        for w in self.loads.values_mut() {
            if w.room == a.room {
                w.tail.push(Entry::Amend(a.clone()));
            }
        }
        let to = if matches!(a.kind, AmendKind::React { .. }) {
            let ws: Vec<ClientId> = members
                .iter()
                .copied()
                .filter(|&c| {
                    Some(c) != sender
                        && self
                            .clients
                            .get(&c)
                            .is_some_and(|c| c.kind == ClientKind::Ws)
                })
                .collect();
            Recipients::List(ws)
        } else {
            self.live_to(&a.room, members, sender)
        };
        let to = match (to, self.replaying.get(&a.room)) {
            (Recipients::List(ws), Some(held)) => {
                Recipients::List(ws.into_iter().filter(|c| !held.contains(c)).collect())
            }
            (to, _) => to,
        };
        self.deliver(to, Event::Amend(a.clone()));
        let room = a.room.clone();
        if let Some(d) = draft {
            if self.clients.contains_key(&d.client) {
                self.reply(d.client, Reply::Amended(a), d.r#ref);
            }
            self.drafts_settled(now, d.client);
        }
        self.answer_waiting(now, Some(&room));
    }

    /// A message of a room, numbered by the store: the next one after
    /// [`Hub::room_seq`] (an older one is ignored). `origin` names the
    /// request of this hub's that sent it, if one did.
    pub fn arrive(&mut self, now: Now, msg: Rc<Message>, origin: Option<u64>) {
        let Some(r) = self.rooms.get_mut(&msg.room) else {
            // Nobody here is in the room; a join may be reading it.
            self.push_to_tails(Entry::Message(msg));
            return;
        };
        if msg.seq <= r.last_seq {
            // As for a change (see `arrive_change`).
            self.push_to_tails(Entry::Message(msg));
            return;
        }
        if msg.seq != r.last_seq + 1 {
            warn!(
                "#{}: {} arrived after {}, those between are gone",
                msg.room, msg.seq, r.last_seq
            );
        }
        r.last_seq = msg.seq;
        let members = r.members.snapshot();
        let draft = origin.and_then(|n| self.take_draft(n));
        if let (Some(n), Some(_)) = (origin, &draft) {
            // Told `unavailable`, and stored all the same.
            if let Some(i) = self.drafts.failed.iter().position(|f| *f == n) {
                self.drafts.failed.remove(i);
            }
        }
        let sender = draft.as_ref().map(|d| d.client);
        // The sender never gets the room's copy (see `say`).
        let to = self.live_to(&msg.room, members, sender);
        for w in self.loads.values_mut() {
            if w.room == msg.room {
                w.tail.push(Entry::Message(msg.clone()));
            }
        }
        self.deliver(to, Event::Message(msg.clone()));
        if let Some(d) = draft {
            self.messages_total += 1;
            if let Some(c) = self.clients.get_mut(&d.client) {
                if let Some(cid) = &d.cid {
                    c.sent
                        .insert(now.ms, cid.clone(), Sent::Message(msg.clone()));
                }
                if c.kind == ClientKind::Ws {
                    self.reply(d.client, Reply::Sent(msg.clone(), d.cid), d.r#ref);
                }
            }
            self.drafts_settled(now, d.client);
        }
        self.answer_waiting(now, Some(&msg.room));
    }

    /// An entry of a room held by nobody here, for the reads of it that
    /// wait (a join's): their answer may be older.
    fn push_to_tails(&mut self, entry: Entry) {
        for w in self.loads.values_mut() {
            if w.room == *entry.room() {
                w.tail.push(entry.clone());
            }
        }
    }

    /// `id`, in `room`, waits for the room's replay (a resume, or a join of
    /// a room it is in): the room's entries that arrive meanwhile reach it
    /// in its `joined`, not live before it, so it sees them in `seq`
    /// order as one process alone would send them.
    pub(super) fn hold_live(&mut self, id: ClientId, room: &RoomName) {
        if !self.shared {
            return;
        }
        let held = self.replaying.entry(room.clone()).or_default();
        if !held.contains(&id) {
            held.push(id);
        }
    }

    /// `id` has its `joined` of `room`: the room's entries reach it live.
    pub(super) fn release_live(&mut self, id: ClientId, room: &RoomName) {
        if let Some(held) = self.replaying.get_mut(room) {
            held.retain(|c| *c != id);
            if held.is_empty() {
                self.replaying.remove(room);
            }
        }
    }

    /// `id` is gone (or resumed under another id).
    pub(super) fn release_all_live(&mut self, id: ClientId) {
        if self.replaying.is_empty() {
            return;
        }
        self.replaying.retain(|_, held| {
            held.retain(|c| *c != id);
            !held.is_empty()
        });
    }

    /// A room's entry goes live to its members less `except` and those
    /// waiting for the room's replay.
    fn live_to(
        &self,
        room: &RoomName,
        members: Rc<Vec<ClientId>>,
        except: Option<ClientId>,
    ) -> Recipients {
        match self.replaying.get(room) {
            None => Recipients::Room { members, except },
            Some(held) => Recipients::List(
                members
                    .iter()
                    .copied()
                    .filter(|c| Some(*c) != except && !held.contains(c))
                    .collect(),
            ),
        }
    }

    /// Shared: the first `seq` after `read_at` (where the store read `w`'s
    /// room) that the room holds here, or that a later entry of the
    /// tail shows exists, and that is not in the tail. Every entry that
    /// arrives while a read waits goes to its tail; but one that came
    /// while nobody here held the room (the shell drops those: the room
    /// is read when joined) did not. Then the answer would leave out
    /// what the room has sent live since: the read is made again.
    pub(super) fn tail_hole(&self, w: &super::Waiting, read_at: u64) -> Option<u64> {
        if !self.shared {
            return None;
        }
        let mut seqs: Vec<u64> = w.tail.iter().map(Entry::seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let here = self.rooms.get(&w.room).map_or(0, |r| r.last_seq);
        let upto = here.max(seqs.last().copied().unwrap_or(0));
        let mut next = read_at + 1;
        for s in seqs {
            if s > next {
                return Some(next);
            }
            next = s + 1;
        }
        (next <= upto).then_some(next)
    }

    /// Whether the store's answer `l` to a read of `room` saw entries that
    /// have not arrived here yet: it waits for them (see
    /// [`Hub::answer_waiting`]), so that what the client is sent agrees
    /// with what it is sent live.
    pub(super) fn arrived_before(&self, room: &RoomName, l: &Loaded) -> bool {
        l.last_seq
            .is_some_and(|s| self.read_ahead(&[(room.clone(), s)]))
    }

    /// Whether the store read one of these rooms held here past the seq
    /// that has arrived here.
    pub(super) fn read_ahead(&self, read_at: &[(RoomName, u64)]) -> bool {
        self.shared
            && read_at
                .iter()
                .any(|(room, s)| self.rooms.get(room).is_some_and(|r| r.last_seq < *s))
    }

    /// Hands over the store's answers that wait for `room`'s entries
    /// (`None`: every room's), each once the room has arrived up to
    /// where the store read it, or once the room has gone from memory, or
    /// when it has waited `ANSWER_WAIT_MS` (the entries between were
    /// trimmed, say).
    pub(super) fn answer_waiting(&mut self, now: Now, room: Option<&RoomName>) {
        let ready: Vec<u64> = self
            .loads
            .iter()
            .filter(|(_, w)| room.is_none_or(|r| w.room == *r))
            .filter_map(|(&n, w)| {
                let (l, at) = w.answer.as_ref()?;
                let here = self.rooms.get(&w.room).map(|r| r.last_seq);
                let arrived = match (here, l.last_seq) {
                    (Some(h), Some(s)) => h >= s,
                    _ => true,
                };
                (arrived || now.ms >= at + ANSWER_WAIT_MS).then_some(n)
            })
            .collect();
        if !self.drafts.searches.is_empty() {
            let (done, waiting): (Vec<WaitingSearch>, Vec<WaitingSearch>) =
                std::mem::take(&mut self.drafts.searches)
                    .into_iter()
                    .partition(|(_, _, read_at, at)| {
                        !self.read_ahead(read_at) || now.ms >= at + ANSWER_WAIT_MS
                    });
            self.drafts.searches = waiting;
            for (s, result, _, _) in done {
                let id = s.client();
                if self.unpark_client(id) {
                    self.searched(s, result);
                    self.run_deferred_for(now, id);
                }
            }
        }
        for n in ready {
            let Some(mut w) = self.loads.remove(&n) else {
                continue;
            };
            let Some((l, _)) = w.answer.take() else {
                continue;
            };
            let id = w.client;
            if self.unpark_client(id) {
                self.loaded(now, w, Ok(l));
                self.run_deferred_for(now, id);
            }
        }
    }

    /// Hands over the store's answers that have waited too long for their
    /// rooms' entries (the shell calls this every second or so).
    pub fn answers_overdue(&mut self, now: Now) {
        self.answer_waiting(now, None);
    }

    /// The store's answer to a [`Publish`].
    pub(super) fn published(&mut self, now: Now, n: u64, result: Result<Published, StoreError>) {
        let client = self.drafts.out.get(&n).map(|d| d.client);
        self.answer_published(n, result);
        if let Some(id) = client {
            self.drafts_settled(now, id);
        }
    }

    fn answer_published(&mut self, n: u64, result: Result<Published, StoreError>) {
        match result {
            Ok(Published::New(seq)) => {
                // It arrives in the room's order; unless the room has left
                // memory meanwhile (nobody here is in it any more).
                let gone = self
                    .drafts
                    .out
                    .get(&n)
                    .is_some_and(|d| self.rooms.get(&d.room).is_none_or(|r| r.last_seq >= seq));
                if gone {
                    self.take_draft(n);
                }
            }
            Ok(Published::Repeat(seq, kept)) => {
                let Some(d) = self.take_draft(n) else {
                    return;
                };
                match kept {
                    Some(m) => {
                        if self
                            .clients
                            .get(&d.client)
                            .is_some_and(|c| c.kind == ClientKind::Ws)
                        {
                            self.reply(d.client, Reply::Sent(m, d.cid), d.r#ref);
                        }
                    }
                    None => {
                        let e = HubError::new(
                            ErrorCode::BadRequest,
                            format!(
                                "that cid was sent before, as #{} {seq}, and is no longer kept",
                                d.room
                            ),
                        );
                        self.error(d.client, e, d.r#ref);
                    }
                }
            }
            Err(e) if self.drafts.out.get(&n).is_some_and(|d| d.change) => {
                let Some(d) = self.take_draft(n) else {
                    return;
                };
                // The script's own refusals, from the message as Redis
                // keeps it now.
                let err = if e.0.starts_with("NOTFOUND") || e.0.starts_with("DELETED") {
                    HubError::new(
                        ErrorCode::NoSuchMessage,
                        format!("that message of #{} is not there (deleted?)", d.room),
                    )
                } else if e.0.starts_with("FULL") {
                    HubError::new(
                        ErrorCode::BadRequest,
                        format!(
                            "a message holds at most {} different reactions",
                            super::event::MAX_REACTIONS
                        ),
                    )
                } else {
                    warn!("a change in #{} not published: {e}", d.room);
                    unavailable()
                };
                self.error(d.client, err, d.r#ref);
            }
            Err(e) => {
                let Some(d) = self.drafts.out.get(&n) else {
                    return;
                };
                warn!("a message to #{} not published: {e}", d.room);
                let (client, r#ref) = (d.client, d.r#ref.clone());
                // Kept (without its ref: the error answered that) in case
                // Redis ran it after all.
                if let Some(d) = self.drafts.out.get_mut(&n) {
                    d.r#ref = None;
                    d.failed = true;
                    let c = d.client;
                    self.drafts.settle(c);
                }
                self.drafts.failed.push_back(n);
                if self.drafts.failed.len() > FAILED_KEPT {
                    if let Some(old) = self.drafts.failed.pop_front() {
                        self.drafts.out.remove(&old);
                    }
                }
                self.error(client, unavailable(), r#ref);
            }
        }
    }
}

/// The error a request gets when the shared store cannot be reached.
pub(super) fn unavailable() -> HubError {
    HubError::new(
        ErrorCode::Unavailable,
        "the server cannot reach its shared store (Redis) just now; try again (a message \
         sent again with the same cid is never sent twice, even if the first arrives late)",
    )
}
