//! The chat hub: rooms, nicks, presence, direct messages and history rules.
//!
//! Deterministic core of natter: requests come in through [`Hub::connect`],
//! [`Hub::handle`] and [`Hub::disconnect`], each with the time as an
//! argument; what must happen comes out as [`Effect`]s, drained by the shell
//! with [`Hub::drain_effects`]. The hub never reads a clock, a socket or a
//! file, and it never calls a store: what it needs stored or read goes out
//! as [`port::StoreOp`]s and the results come back in through
//! [`Hub::answer`] (see [`port`]). Messages accepted during one loop turn
//! gather in one batch until the shell ends the turn with
//! [`Hub::close_batch`]; nothing produced after the batch's first message
//! is released by `drain_effects` before the store reports the batch
//! stored: persist, then send.
//!
//! Read next: `proto::line` (how events become netcat lines), then
//! `server` (who calls this).

pub mod accounts;
pub mod amend;
pub mod command;
pub mod error;
pub mod event;
pub mod image;
pub mod limits;
mod members;
pub mod moderation;
pub mod names;
mod nickgen;
pub mod port;
pub mod remote;
pub mod search;
pub mod session;
pub mod sessions;
mod shared;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use log::{debug, error, warn};

use accounts::{AccountsConfig, Hello, Peer, Pending};

use command::{Command, Page};
use error::{ErrorCode, HubError};
use event::{
    Amend, ClientId, ClientKind, Dm, Effect, Entry, Event, LeaveReason, Limits, Message, Presence,
    PresenceKind, Recipients, Reply, ReplyTo, Typing,
};
use limits::{Bucket, RateLimit, Verdict};
use members::Members;
use names::{message_text, sanitize, Nick, RoomName};
use port::{Batch, Change, Load, Loaded, NewImage, PasswordJob, StoreAnswer, StoreError, StoreOp};
use session::{check_cid, Sent, SentLog};

/// Most messages one `/history` or `history` request returns.
pub const MAX_HISTORY_PAGE: usize = 200;
/// Messages a `/history` without a count returns.
pub const DEFAULT_HISTORY_PAGE: usize = 20;
/// Most messages a catch-up (`join` with `since`) replays; past it, `gap`.
pub const MAX_CATCH_UP: usize = 500;
/// Shared: how many times a read is made again when entries arrived
/// while it was out did not all reach it (see `shared::tail_hole`).
const MAX_REREADS: u8 = 3;
/// Join replays may use this many times `history_per_turn` in one turn.
pub const REPLAY_TURNS: usize = 8;
/// A client's typing events are relayed at most this often.
pub const TYPING_EVERY_MS: u64 = 1000;

/// The time of a request, as the shell read it: milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since 1970-01-01 UTC.
    pub ms: u64,
}

/// The settings the hub needs, taken from the command line by the shell.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// The room line clients are put in when they connect (`--default-room`).
    pub default_room: RoomName,
    /// Messages replayed on join.
    pub history: usize,
    /// Longest message text in bytes (`--max-message`).
    pub max_message: usize,
    /// Only reported to clients (`/help`); the line framer enforces it.
    pub max_line: usize,
    /// Flood control for room messages, actions and direct messages.
    pub rate: RateLimit,
    /// How long a vanished WebSocket client's nick and rooms are held.
    pub resume_grace_ms: u64,
    /// Told to WebSocket clients in `welcome`; enforced by the shell.
    pub max_ws_message: usize,
    /// Largest image in bytes (`--max-image`).
    pub max_image: usize,
    /// Bytes of history (join replays and history pages) one client is
    /// sent in one turn (between two `drain_effects`): a client asking for
    /// more in the same turn is refused (`rate_limited`), or its join
    /// replays nothing and says `gap`. A few bytes of requests must not
    /// make the server load and queue unbounded pages (`--max-outbound`).
    pub history_per_turn: usize,
    /// How long after sending a message its author may edit it
    /// (`--edit-window`, in ms).
    pub edit_window_ms: u64,
    /// Accounts: registration, admins, tokens, plain-text passwords.
    pub accounts: AccountsConfig,
}

/// The time of day of `ms` (since the epoch), `HH:MM:SS` UTC.
pub(crate) fn clock_time(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

struct Client {
    nick: Nick,
    kind: ClientKind,
    /// Rooms in the order they were joined; the last one becomes current
    /// when the current room is left.
    rooms: Vec<RoomName>,
    current: Option<RoomName>,
    bucket: Bucket,
    /// The session token (WebSocket clients), for resuming.
    session: Option<String>,
    /// The `cid`s this session used lately.
    sent: SentLog,
    /// Set while the connection is gone and the session waits to be
    /// resumed: the time (ms) it is given up.
    held_until: Option<u64>,
    last_typing_ms: Option<u64>,
    /// The account logged in on this connection (lowercase key).
    account: Option<String>,
    /// The hash of the login token this connection logged in with or was
    /// given: `/logout` revokes it.
    token_hash: Option<String>,
    /// Where the connection comes from.
    peer: Peer,
    /// Invite-only rooms a guest was invited to (while it is connected).
    invited: Vec<RoomName>,
    /// `g:` and 16 random hex digits: the identity this connection's
    /// messages are stored with while it is a guest (`Message::author`);
    /// kept across a resume.
    guest: String,
}

/// A client that waits for a read from the store (`busy`), and what it
/// asked meanwhile, carried out in order once the answer is in. Kept apart
/// from `Client`: almost no client ever waits, and an idle client costs
/// no more for it.
#[derive(Default)]
struct Parked {
    busy: bool,
    queue: VecDeque<Deferred>,
}

/// What a client asked, or what happened to it, while it waited for the
/// store; carried out in order once the answer is in.
enum Deferred {
    Command(Command, Option<String>),
    Reply(Reply, Option<String>),
    Detach(LeaveReason),
    Disconnect(LeaveReason),
    /// A resume's replays, which wait for a read the session had out.
    Replay(Vec<RoomName>),
}

/// A read the hub waits for, and what to do with the answer.
struct Waiting {
    client: ClientId,
    room: RoomName,
    then: Then,
    /// For a replay: the client's `since`, and whether it may be sent
    /// history this turn (if not: nothing, and `gap`).
    since: Option<u64>,
    replay: bool,
    /// The room's `seq` when the read was asked for (0 if not in memory).
    known_seq: u64,
    /// Messages and changes of `room` accepted after the read was asked
    /// for: the store's answer cannot have them, the client must.
    tail: Vec<Entry>,
    /// Shared: the store's answer, kept until the room's entries up to
    /// the `seq` the store read at have arrived here (see `shared`), with
    /// when it came (ms).
    answer: Option<(Loaded, u64)>,
    /// What was asked of the store (page, latest `seq` too, since), to ask
    /// again: shared, a read whose entries since did not all reach its
    /// tail is read once more (see `shared::tail_hole`).
    asked: Option<(Page, bool, Option<u64>)>,
    /// How many times it was read again.
    rereads: u8,
}

impl Waiting {
    /// A read that replays nothing (`/create`'s check, a history page).
    fn read(client: ClientId, room: RoomName, then: Then) -> Waiting {
        Waiting {
            client,
            room,
            then,
            since: None,
            replay: false,
            known_seq: 0,
            tail: Vec::new(),
            answer: None,
            asked: None,
            rereads: 0,
        }
    }
}

/// What a read is for.
enum Then {
    /// A join (or a WebSocket client's join of a room it is in) replays it.
    Join {
        created: bool,
        r#ref: Option<String>,
    },
    /// A resumed session's rooms are replayed one at a time: `rest` next.
    Resume { rest: Vec<RoomName> },
    /// `/create` tries a code: a code with stored messages is taken.
    Create { r#ref: Option<String> },
    /// A history page, and the page asked for.
    History { r#ref: Option<String>, page: Page },
}

/// A batch the shell took and the store has not answered yet.
struct Inflight {
    id: u64,
    messages: Vec<Rc<Message>>,
    /// Who sent each message, with its cid (same order).
    from: Vec<(ClientId, Option<String>)>,
    /// Its edits, deletes and reactions, and who made each (same order).
    amends: Vec<Rc<Amend>>,
    amends_from: Vec<ClientId>,
    /// How many account and room changes it carries.
    changes: usize,
}

struct Room {
    members: Members,
    last_seq: u64,
}

/// The chat's state: clients, nicks, rooms, held sessions, and what waits
/// for the store. One per server, owned by the loop's thread.
pub struct Hub {
    config: HubConfig,
    /// Told to clients (`welcome`, `joined`): see `store::Store::store_id`.
    store_id: String,
    /// Boxed: a `Client` is about 350 bytes, and a map holds its values
    /// in slots of which up to half stand empty (at 10,000 clients, 16,384
    /// slots): inline that cost about 590 bytes a client, boxed about 420.
    clients: HashMap<ClientId, Box<Client>>,
    /// Lowercase nick -> its holder.
    nicks: HashMap<String, ClientId>,
    /// Rooms with at least one member; an empty room leaves memory.
    rooms: HashMap<RoomName, Room>,
    /// Codes of rooms made by `/create`: never listed, kept for good.
    unlisted: HashSet<RoomName>,
    /// Session token -> its client.
    sessions: HashMap<String, ClientId>,
    /// Held sessions by deadline.
    held: BTreeSet<(u64, ClientId)>,
    /// Accepted this turn: the batch being gathered, numbered `next_batch`.
    pending: Vec<Rc<Message>>,
    /// Who sent each pending message, with its cid (same order as `pending`).
    pending_from: Vec<(ClientId, Option<String>)>,
    /// The images the pending messages carry.
    pending_images: Vec<NewImage>,
    next_batch: u64,
    /// Batches handed to the store and not answered yet, oldest first.
    inflight: VecDeque<Inflight>,
    /// Every batch up to this one is answered.
    settled: u64,
    /// For the shell to carry out (see `port`).
    ops: Vec<StoreOp>,
    /// Reads asked for and not answered yet, by id.
    loads: HashMap<u64, Waiting>,
    /// Clients waiting for a read, or whose queue is being worked off.
    parked: HashMap<ClientId, Parked>,
    next_load: u64,
    /// Effects in the order they happened, each with the batch it waits
    /// for: released once every batch up to that one is answered.
    effects: VecDeque<(u64, Effect)>,
    /// History bytes sent to each client this turn (see `history_per_turn`):
    /// pages, and join or resume replays, counted apart.
    history_sent: HashMap<ClientId, (usize, usize)>,
    rng: nickgen::Rng,
    messages_total: u64,
    /// Accounts, tokens, logins.
    accounts: accounts::Accounts,
    /// Rooms' owners, topics, ops, bans, mutes and invites.
    settings: HashMap<RoomName, moderation::Settings>,
    /// Changes gathered for the turn's batch.
    pending_changes: Vec<Change>,
    /// Password jobs for the shell to take.
    jobs: Vec<PasswordJob>,
    /// Password jobs out, by id.
    auth: HashMap<u64, Pending>,
    next_job: u64,
    /// Edits, deletes and reactions accepted this turn, and who made each.
    pending_amends: Vec<Rc<Amend>>,
    pending_amends_from: Vec<ClientId>,
    /// Finds asked for and not answered yet, by id (`amend`).
    finds: HashMap<u64, amend::Finding>,
    /// Searches asked for and not answered yet, by id.
    searches: HashMap<u64, amend::Searching>,
    /// Messages changed by a batch the store has not answered yet, as the
    /// hub made them, with that batch's id (see `amend`).
    live: HashMap<(RoomName, u64), (u64, Rc<Message>)>,
    /// The chat is shared with other processes: the store numbers
    /// messages (see `shared`).
    shared: bool,
    /// Messages sent to the shared store and not arrived yet.
    drafts: shared::Drafts,
    /// Members of a room waiting for its replay (a resume, or a join of a
    /// room they are in), shared only: its entries reach them in their
    /// `joined`, not live before it (see `shared`).
    replaying: HashMap<RoomName, Vec<ClientId>>,
    /// The other processes' nicks and members (see `remote`).
    remote: remote::Remote,
    /// Sessions claimed from the store, and sessions changed (`sessions`).
    claims: sessions::Claims,
}

impl Hub {
    /// A hub with no clients. `store_id` is the store's (see
    /// [`StoreOp`]); `seed` feeds the nick and room-code generator.
    pub fn new(config: HubConfig, store_id: String, seed: u64) -> Hub {
        Hub {
            config,
            store_id,
            clients: HashMap::new(),
            nicks: HashMap::new(),
            rooms: HashMap::new(),
            unlisted: HashSet::new(),
            sessions: HashMap::new(),
            held: BTreeSet::new(),
            pending: Vec::new(),
            pending_from: Vec::new(),
            pending_images: Vec::new(),
            next_batch: 1,
            inflight: VecDeque::new(),
            settled: 0,
            ops: Vec::new(),
            loads: HashMap::new(),
            parked: HashMap::new(),
            next_load: 1,
            effects: VecDeque::new(),
            history_sent: HashMap::new(),
            rng: nickgen::Rng::new(seed),
            accounts: accounts::Accounts::default(),
            settings: HashMap::new(),
            pending_changes: Vec::new(),
            jobs: Vec::new(),
            auth: HashMap::new(),
            next_job: 0,
            messages_total: 0,
            pending_amends: Vec::new(),
            pending_amends_from: Vec::new(),
            finds: HashMap::new(),
            searches: HashMap::new(),
            live: HashMap::new(),
            shared: false,
            drafts: shared::Drafts::default(),
            replaying: HashMap::new(),
            remote: remote::Remote::default(),
            claims: sessions::Claims::default(),
        }
    }

    /// Clients the hub knows, held sessions included.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Rooms with members.
    pub fn rooms(&self) -> usize {
        self.rooms.len()
    }

    /// Room messages accepted since the start.
    pub fn messages_total(&self) -> u64 {
        self.messages_total
    }

    /// The nick `id` holds, if it is a client.
    pub fn nick_of(&self, id: ClientId) -> Option<&str> {
        self.clients.get(&id).map(|c| c.nick.as_str())
    }

    /// The shell held this client's input for `held_ms` (flow control):
    /// flood control does not count that time against it.
    pub fn credit(&mut self, id: ClientId, held_ms: u64) {
        let rate = self.config.rate;
        if let Some(c) = self.clients.get_mut(&id) {
            c.bucket.credit(rate, held_ms);
        }
    }

    /// The rooms a client is in (none for an unknown client).
    pub fn rooms_of(&self, id: ClientId) -> &[RoomName] {
        self.clients.get(&id).map_or(&[], |c| &c.rooms)
    }

    /// Moves every effect that may go now into `out` (which should be
    /// empty): all of them, in order, up to the first that waits for a
    /// batch the store has not reported stored.
    pub fn drain_effects(&mut self, out: &mut Vec<Effect>) {
        while let Some((gate, _)) = self.effects.front() {
            if *gate > self.settled {
                break;
            }
            if let Some((_, e)) = self.effects.pop_front() {
                out.push(e);
            }
        }
        if !self.history_sent.is_empty() {
            self.history_sent.clear(); // a new turn
        }
    }

    /// Queues an effect behind the batch being gathered, if it has
    /// messages, or else behind the last batch taken.
    fn push(&mut self, e: Effect) {
        let gate = if self.pending.is_empty()
            && self.pending_changes.is_empty()
            && self.pending_amends.is_empty()
        {
            self.next_batch - 1
        } else {
            self.next_batch
        };
        self.effects.push_back((gate, e));
    }

    /// Whether `id` may be sent another history page this turn.
    fn history_allowed(&self, id: ClientId) -> bool {
        self.history_sent.get(&id).map_or(0, |s| s.0) < self.config.history_per_turn
    }

    /// Whether a join or a resume of `id` may replay history this turn: a
    /// client coming back to many busy rooms is sent their replays (up to
    /// `REPLAY_TURNS` times the page budget), while `/join`-`/leave` in a
    /// loop still cannot queue without end.
    fn replay_allowed(&self, id: ClientId) -> bool {
        self.history_sent.get(&id).map_or(0, |s| s.1)
            < self.config.history_per_turn.saturating_mul(REPLAY_TURNS)
    }

    /// Counts history sent to `id` this turn (a page, or a replay): its
    /// texts and some framing.
    fn charge_history(&mut self, id: ClientId, messages: &[Rc<Message>], replay: bool) {
        let bytes: usize = messages.iter().map(|m| m.text.len() + 128).sum();
        let sent = self.history_sent.entry(id).or_default();
        if replay {
            sent.1 += bytes;
        } else {
            sent.0 += bytes;
        }
    }

    /// Whether effects may be drained now.
    pub fn has_effects(&self) -> bool {
        self.effects
            .front()
            .is_some_and(|(gate, _)| *gate <= self.settled)
    }

    /// Ends the turn's batch: the messages accepted since the last one go
    /// to the store as one [`StoreOp::Append`] (group commit). The shell
    /// calls this once a turn, before it takes the store operations.
    pub fn close_batch(&mut self) {
        if self.pending.is_empty()
            && self.pending_changes.is_empty()
            && self.pending_amends.is_empty()
        {
            return;
        }
        let id = self.next_batch;
        self.next_batch += 1;
        let messages = std::mem::take(&mut self.pending);
        self.inflight.push_back(Inflight {
            id,
            messages: messages.clone(),
            from: std::mem::take(&mut self.pending_from),
            amends: self.pending_amends.clone(),
            amends_from: std::mem::take(&mut self.pending_amends_from),
            changes: self.pending_changes.len(),
        });
        let images = std::mem::take(&mut self.pending_images);
        self.ops.push(StoreOp::Append(Batch {
            id,
            messages,
            images,
            amends: std::mem::take(&mut self.pending_amends),
            changes: std::mem::take(&mut self.pending_changes),
        }));
    }

    /// Moves the store operations asked for so far into `out`, oldest
    /// first; the store must carry them out in that order.
    pub fn take_store_ops(&mut self, out: &mut Vec<StoreOp>) {
        out.append(&mut self.ops);
    }

    /// Whether store operations wait to be taken.
    pub fn has_store_ops(&self) -> bool {
        !self.ops.is_empty()
    }

    /// The store's answer to one operation (in any turn after it was
    /// taken). A stored batch releases what waited for it; a read lets
    /// the client that waited for it go on.
    pub fn answer(&mut self, now: Now, answer: StoreAnswer) {
        match answer {
            StoreAnswer::Found { find, result } => {
                let Some(f) = self.take_finding(find) else {
                    return;
                };
                let id = f.client();
                if self.unpark(id) {
                    self.found(now, f, result);
                    self.run_deferred(now, id);
                }
            }
            StoreAnswer::Published { publish, result } => self.published(now, publish, result),
            StoreAnswer::Claimed { claim, result } => self.claimed(now, claim, result),
            StoreAnswer::Held { hold, ok } => self.held(now, hold, ok),
            StoreAnswer::Searched {
                search,
                result,
                read_at,
            } => {
                let Some(s) = self.take_searching(search) else {
                    return;
                };
                if self.read_ahead(&read_at) {
                    self.drafts.searches.push((s, result, read_at, now.ms));
                    return;
                }
                let id = s.client();
                if self.unpark(id) {
                    self.searched(s, result);
                    self.run_deferred(now, id);
                }
            }
            StoreAnswer::Committed { batch, result } => {
                let Some(pos) = self.inflight.iter().position(|b| b.id == batch) else {
                    return;
                };
                let Some(done) = self.inflight.remove(pos) else {
                    return;
                };
                self.settled = self
                    .inflight
                    .front()
                    .map_or(self.next_batch - 1, |b| b.id - 1);
                self.settle_live(batch);
                if let Err(e) = result {
                    error!(
                        "batch {batch} of {} messages not stored: {e}",
                        done.messages.len()
                    );
                    self.abort(done);
                }
            }
            StoreAnswer::Loaded { load, result } => {
                let Some(mut w) = self.loads.remove(&load) else {
                    return;
                };
                let result = match result {
                    Ok(l) if self.arrived_before(&w.room, &l) => {
                        w.answer = Some((l, now.ms));
                        self.loads.insert(load, w);
                        return;
                    }
                    r => r,
                };
                let id = w.client;
                if self.unpark(id) {
                    self.loaded(now, w, result);
                    self.run_deferred(now, id);
                }
            }
        }
    }

    /// The wait of `id` is over: whether it is still connected (if not,
    /// the answer is dropped).
    fn unpark(&mut self, id: ClientId) -> bool {
        if let Some(p) = self.parked.get_mut(&id) {
            p.busy = false;
        }
        if !self.clients.contains_key(&id) {
            self.parked.remove(&id);
            return false; // gone meanwhile
        }
        true
    }

    /// The store refused a batch: nothing of it may reach anyone. Its
    /// deliveries are taken back (from replays and pages still waiting too),
    /// each sender is told (and may retry with the same cid), and the seqs
    /// are skipped, never reused.
    fn abort(&mut self, batch: Inflight) {
        let Inflight {
            messages: failed,
            from,
            amends,
            amends_from,
            changes,
            ..
        } = batch;
        if changes > 0 {
            // Accounts and room settings changed in memory stay changed
            // until a restart; whoever was told keeps what it was told.
            error!("{changes} account or room changes of the batch were not stored");
        }
        let is_failed = |m: &Rc<Message>| failed.iter().any(|f| Rc::ptr_eq(f, m));
        let amend_failed = |a: &Rc<Amend>| amends.iter().any(|f| Rc::ptr_eq(f, a));
        let entry_failed = |e: &Entry| match e {
            Entry::Message(m) => is_failed(m),
            Entry::Amend(a) => amend_failed(a),
        };
        self.effects.retain_mut(|(_, e)| match e {
            Effect::Deliver {
                event: Event::Message(m) | Event::Reply(Reply::Sent(m, _), _),
                ..
            } => !is_failed(m),
            Effect::Deliver {
                event: Event::Amend(a) | Event::Reply(Reply::Amended(a), _),
                ..
            } => !amend_failed(a),
            Effect::Deliver {
                event: Event::Reply(Reply::History { messages, .. }, _),
                ..
            } => {
                messages.retain(|m| !is_failed(m));
                true
            }
            Effect::Deliver {
                event: Event::Reply(Reply::Joined { messages, .. }, _),
                ..
            } => {
                messages.retain(|e| !entry_failed(e));
                true
            }
            _ => true,
        });
        for w in self.loads.values_mut() {
            w.tail.retain(|e| !entry_failed(e));
        }
        self.messages_total -= failed.len() as u64;
        for (sender, cid) in from {
            if let (Some(cid), Some(c)) = (&cid, self.clients.get_mut(&sender)) {
                c.sent.forget(cid);
            }
            let e = HubError::new(
                ErrorCode::BadRequest,
                "the server could not store your message, so it was not sent; try again",
            );
            self.error(sender, e, None);
        }
        for sender in amends_from {
            let e = HubError::new(
                ErrorCode::BadRequest,
                "the server could not store your change, so nothing changed; try again",
            );
            self.error(sender, e, None);
        }
    }

    /// The limits clients are told about.
    pub fn limits(&self) -> Limits {
        Limits {
            max_line: self.config.max_line,
            max_message: self.config.max_message,
            history: self.config.history,
            rate: self.config.rate.rate,
            burst: self.config.rate.burst,
            max_ws_message: self.config.max_ws_message,
            max_image: self.config.max_image,
        }
    }

    /// A new client: gives it a nick (the one it asked for if valid,
    /// free and not an account's; its account's with a valid login token),
    /// welcomes it, and joins a line client to the default room (under
    /// `--require-login` only once it has logged in).
    pub fn connect(&mut self, now: Now, id: ClientId, hello: Hello) {
        let Hello {
            kind,
            peer,
            nick: wanted,
            session,
            token,
        } = hello;
        let mut refusal = None;
        let login = token.as_deref().and_then(|t| {
            let hash = accounts::token_hash(t);
            let key = self
                .accounts
                .tokens
                .get(&hash)
                .filter(|tk| tk.expires > now.ms && self.accounts.exists(&tk.account))
                .map(|tk| tk.account.clone());
            if key.is_none() {
                refusal = Some(HubError::new(
                    ErrorCode::LoginFailed,
                    "that login token is unknown or expired; log in again",
                ));
            }
            key.map(|k| (k, hash))
        });
        let nick = match (&login, wanted.as_deref().map(Nick::parse)) {
            (Some((key, _)), _) => {
                let name = self.accounts.by_key[key].name.clone();
                self.displace_guest(now, id, &name);
                name
            }
            (None, Some(Ok(n))) if self.accounts.exists(&n.key()) => {
                refusal = Some(accounts::registered(&n));
                self.fresh_nick()
            }
            (None, Some(Ok(n)))
                if !self.nicks.contains_key(&n.key()) && !self.remote.holds_nick(&n.key()) =>
            {
                n
            }
            (None, Some(Ok(n))) => {
                refusal = Some(taken(&n));
                self.fresh_nick()
            }
            (None, Some(Err(e))) => {
                refusal = Some(e);
                self.fresh_nick()
            }
            (None, None) => self.fresh_nick(),
        };
        self.nicks.entry(nick.key()).or_insert(id);
        self.touch_nick(nick.key());
        if let Some(token) = &session {
            self.sessions.insert(token.clone(), id);
        }
        let account = login.as_ref().map(|_| nick.to_string());
        if let Some((key, _)) = &login {
            self.accounts
                .online
                .entry(key.clone())
                .or_default()
                .push(id);
        }
        let welcome = Reply::Welcome {
            nick: nick.to_string(),
            session: session.clone(),
            store_id: self.store_id.clone(),
            limits: self.limits(),
            account,
        };
        self.clients.insert(
            id,
            Box::new(Client {
                nick,
                kind,
                rooms: Vec::new(),
                current: None,
                bucket: Bucket::new(self.config.rate, now.ms),
                session,
                sent: SentLog::default(),
                held_until: None,
                last_typing_ms: None,
                account: login.as_ref().map(|(k, _)| k.clone()),
                token_hash: login.map(|(_, h)| h),
                peer,
                invited: Vec::new(),
                guest: format!("g:{:016x}", self.rng.next_u64()),
            }),
        );
        self.touch_session(id);
        self.reply(id, welcome, None);
        if let Some(e) = refusal {
            self.error(id, e, None);
        }
        if kind == ClientKind::Line && self.logged_in_or_free(id) {
            let room = self.config.default_room.clone();
            if let Err(e) = self.join(now, id, room, None, false, None) {
                self.error(id, e, None);
            }
        }
    }

    /// Whether `id` may do more than log in: logged in, or no
    /// `--require-login`.
    fn logged_in_or_free(&self, id: ClientId) -> bool {
        !self.config.accounts.require_login
            || self.clients.get(&id).is_some_and(|c| c.account.is_some())
    }

    /// A new connection `id` presents a session token: if the session is
    /// known, the connection takes over its nick and rooms (the room sees
    /// nothing), an older connection still open is replaced, and the client
    /// is welcomed back with a `joined` for each of its rooms. Returns false
    /// for an unknown token; the shell then connects it as a new client.
    pub fn resume(&mut self, now: Now, id: ClientId, peer: Peer, token: &str) -> bool {
        let Some(old) = self.sessions.get(token).copied() else {
            return false;
        };
        let Some(mut client) = self.clients.remove(&old) else {
            self.sessions.remove(token);
            return false;
        };
        if let Some(until) = client.held_until.take() {
            self.held.remove(&(until, old));
        } else {
            self.push(Effect::Replaced(old));
        }
        // What the old connection asked and the store still holds up goes
        // on under the new one; its going away does not.
        let mut parked = self.parked.remove(&old);
        if let Some(p) = &mut parked {
            p.queue
                .retain(|d| !matches!(d, Deferred::Detach(_) | Deferred::Disconnect(_)));
        }
        self.renumber(old, id);
        if self.nicks.get(&client.nick.key()) == Some(&old) {
            self.nicks.insert(client.nick.key(), id);
        }
        if let Some(conns) = client
            .account
            .as_ref()
            .and_then(|k| self.accounts.online.get_mut(k))
        {
            for c in conns.iter_mut().filter(|c| **c == old) {
                *c = id;
            }
        }
        self.sessions.insert(token.to_string(), id);
        self.claims.touched.remove(&old);
        client.peer = peer;
        for room in &client.rooms {
            if let Some(r) = self.rooms.get_mut(room) {
                r.members.remove(old);
                r.members.insert(id, &client.nick);
            }
        }
        client.bucket = Bucket::new(self.config.rate, now.ms);
        let rooms = client.rooms.clone();
        for room in &rooms {
            self.hold_live(id, room);
        }
        let welcome = Reply::Welcome {
            nick: client.nick.to_string(),
            session: client.session.clone(),
            store_id: self.store_id.clone(),
            limits: self.limits(),
            account: client.account.as_ref().map(|_| client.nick.to_string()),
        };
        self.clients.insert(id, client);
        self.touch_session(id);
        self.reply(id, welcome, None);
        match parked {
            // The old connection's read is still out: the replays follow
            // its answer, before anything else the session asked.
            Some(mut p) if p.busy => {
                p.queue.push_front(Deferred::Replay(rooms));
                self.parked.insert(id, p);
            }
            _ => self.resume_rooms(now, id, rooms),
        }
        true
    }

    /// A resumed client's rooms, replayed one at a time in order.
    fn resume_rooms(&mut self, now: Now, id: ClientId, mut rooms: Vec<RoomName>) {
        if rooms.is_empty() {
            return;
        }
        let room = rooms.remove(0);
        self.catch_up(now, id, room, None, Then::Resume { rest: rooms });
    }

    /// Points what waits for the store on behalf of `old` at `new` (a
    /// resumed session).
    fn renumber(&mut self, old: ClientId, new: ClientId) {
        self.release_all_live(old);
        self.renumber_drafts(old, new);
        for w in self.loads.values_mut() {
            if w.client == old {
                w.client = new;
            }
        }
        let froms = self.inflight.iter_mut().flat_map(|b| b.from.iter_mut());
        for (sender, _) in froms.chain(self.pending_from.iter_mut()) {
            if *sender == old {
                *sender = new;
            }
        }
        for p in self.auth.values_mut() {
            if p.client == old {
                p.client = new;
            }
        }
    }

    /// The client's connection vanished without saying goodbye. A client
    /// with a session is held for `--resume-grace` (its rooms see nothing
    /// yet); any other leaves now with `reason`.
    pub fn detach(&mut self, now: Now, id: ClientId, reason: LeaveReason) {
        if self.forget_claim(id) {
            return;
        }
        let Some(reason) = self.park(id, reason, Deferred::Detach) else {
            return;
        };
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        if client.session.is_none() || client.held_until.is_some() {
            self.disconnect(now, id, reason);
            return;
        }
        let until = now.ms + self.config.resume_grace_ms;
        client.held_until = Some(until);
        self.held.insert((until, id));
        self.touch_session(id);
    }

    /// When the earliest held session is given up (ms since the epoch).
    pub fn next_deadline(&self) -> Option<u64> {
        self.held.first().map(|(at, _)| *at)
    }

    /// Gives up held sessions whose grace has run out: their rooms see them
    /// leave with `timeout`.
    pub fn expire(&mut self, now: Now) {
        while let Some(&(at, id)) = self.held.first() {
            if at > now.ms {
                break;
            }
            self.held.remove(&(at, id));
            self.disconnect(now, id, LeaveReason::Timeout);
        }
    }

    /// The client is gone (EOF, reset, timeout, ...): its rooms see it leave.
    /// Unknown ids are ignored, so calling this twice is harmless.
    /// A client waiting for the store leaves once what it asked before is
    /// done.
    pub fn disconnect(&mut self, now: Now, id: ClientId, reason: LeaveReason) {
        if self.forget_claim(id) {
            return;
        }
        let Some(reason) = self.park(id, reason, Deferred::Disconnect) else {
            return;
        };
        self.parked.remove(&id);
        self.touch_session(id);
        self.release_all_live(id);
        self.forget_holding(id);
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        if let Some(until) = client.held_until {
            self.held.remove(&(until, id));
        }
        if let Some(token) = &client.session {
            self.sessions.remove(token);
        }
        if let Some(key) = &client.account {
            self.forget_login(id, key);
        }
        self.release_nick(id, &client.nick);
        for room in &client.rooms {
            self.remove_member(now, id, &client.nick, room, reason.clone());
        }
    }

    /// A reply from the shell (`/stats`, a refused frame or line): in
    /// order with the answers to the client's requests, so after those of
    /// requests still waiting for the store.
    pub fn tell(&mut self, id: ClientId, reply: Reply, r#ref: Option<String>) {
        if let Some((reply, r#ref)) = self.park(id, (reply, r#ref), |(r, f)| Deferred::Reply(r, f))
        {
            self.reply(id, reply, r#ref);
        }
    }

    /// An error from the shell, as [`Hub::tell`].
    pub fn tell_error(&mut self, id: ClientId, e: HubError, r#ref: Option<String>) {
        let reply = Reply::Error {
            code: e.code,
            message: e.message,
        };
        self.tell(id, reply, r#ref);
    }

    /// `park_on_work`, for the other modules.
    pub(super) fn park_for_store(&mut self, id: ClientId) {
        self.park_on_work(id);
    }

    /// `unpark`, for the other modules: whether the client is still there.
    pub(super) fn unpark_client(&mut self, id: ClientId) -> bool {
        self.unpark(id)
    }

    /// `run_deferred`, for the other modules.
    pub(super) fn run_deferred_for(&mut self, now: Now, id: ClientId) {
        self.run_deferred(now, id);
    }

    /// `id` waits for an answer (a read, or a password job): what it asks
    /// meanwhile is queued.
    fn park_on_work(&mut self, id: ClientId) {
        if self.clients.contains_key(&id) {
            let p = self.parked.entry(id).or_default();
            debug_assert!(!p.busy, "one wait at a time per client");
            p.busy = true;
        }
    }

    /// Queues `what` (made into a [`Deferred`] by `later`) if `id` waits
    /// for the store; otherwise hands it back, to be done now.
    fn park<T>(&mut self, id: ClientId, what: T, later: impl FnOnce(T) -> Deferred) -> Option<T> {
        match self.parked.get_mut(&id) {
            Some(p) if p.busy => {
                p.queue.push_back(later(what));
                None
            }
            _ => Some(what),
        }
    }

    /// Carries out what `id` asked while it waited for the store, until it
    /// waits again or nothing is left.
    fn run_deferred(&mut self, now: Now, id: ClientId) {
        loop {
            let Some(p) = self.parked.get_mut(&id) else {
                return;
            };
            if p.busy {
                return;
            }
            let Some(next) = p.queue.pop_front() else {
                self.parked.remove(&id);
                return;
            };
            match next {
                Deferred::Command(cmd, r#ref) => self.handle(now, id, cmd, r#ref),
                Deferred::Reply(reply, r#ref) => self.reply(id, reply, r#ref),
                Deferred::Detach(reason) => self.detach(now, id, reason),
                Deferred::Disconnect(reason) => self.disconnect(now, id, reason),
                Deferred::Replay(rooms) => self.resume_rooms(now, id, rooms),
            }
        }
    }

    /// Queues a reply for one client; nothing for a client that has gone
    /// (after `/quit`, later lines of the same read earn no answers).
    fn reply(&mut self, id: ClientId, reply: Reply, r#ref: Option<String>) {
        if !self.clients.contains_key(&id) {
            return;
        }
        self.push(Effect::Deliver {
            to: Recipients::One(id),
            event: Event::Reply(reply, r#ref),
        });
    }

    /// Queues an error for one client, in order with everything else it gets.
    fn error(&mut self, id: ClientId, e: HubError, r#ref: Option<String>) {
        self.reply(
            id,
            Reply::Error {
                code: e.code,
                message: e.message,
            },
            r#ref,
        );
    }

    /// One request from a connected client. A client waiting for the
    /// store has it carried out once the answer is in.
    pub fn handle(&mut self, now: Now, id: ClientId, cmd: Command, r#ref: Option<String>) {
        let Some((cmd, r#ref)) = self.queue_if_claiming(id, cmd, r#ref) else {
            return; // carried out once its session is claimed
        };
        if !self.clients.contains_key(&id) {
            return;
        }
        let Some((cmd, r#ref)) = self.park(id, (cmd, r#ref), |(c, r)| Deferred::Command(c, r))
        else {
            return;
        };
        // Shared: what a client asks after sending is answered after what
        // it sent is (its acknowledgement, or the error), as on one process:
        // messages and typing go on (their order is the store's), anything
        // else waits for the store's answers.
        if !matches!(
            cmd,
            Command::Say { .. } | Command::Image { .. } | Command::Typing(_)
        ) && self.drafts_pending(id)
        {
            self.hold_for_drafts(id, Deferred::Command(cmd, r#ref));
            return;
        }
        let free = matches!(
            cmd,
            Command::Register { .. }
                | Command::Login { .. }
                | Command::LoginToken(_)
                | Command::Logout
                | Command::Password { .. }
                | Command::Nick(_)
                | Command::Rooms
                | Command::Help
                | Command::Quit(_)
        );
        if !free && !self.logged_in_or_free(id) {
            if !matches!(cmd, Command::Typing(_)) {
                let e = HubError::new(
                    ErrorCode::LoginRequired,
                    "this server needs an account: /register PASSWORD, or /login NICK PASSWORD",
                );
                self.error(id, e, r#ref);
            }
            return;
        }
        let counted = matches!(
            cmd,
            Command::Say { .. }
                | Command::Dm { .. }
                | Command::Image { .. }
                | Command::Edit { .. }
                | Command::Delete { .. }
                | Command::React { .. }
                | Command::Search { .. }
        );
        if counted && !self.admit(now, id, &r#ref) {
            return;
        }
        let result = match cmd {
            Command::Say {
                room,
                text,
                action,
                cid,
                reply_to: None,
            } => self.say(now, id, room, &text, action, None, cid, None, r#ref.clone()),
            Command::Say {
                room,
                text,
                action,
                cid,
                reply_to: Some(target),
            } => {
                let said = amend::Said {
                    text,
                    action,
                    image: None,
                    cid,
                };
                let want = amend::Want::Reply(Box::new(said));
                self.amend_request(now, id, room, target, want, r#ref.clone())
            }
            Command::Image {
                room,
                data,
                text,
                cid,
                id: image_id,
                reply_to,
            } => {
                let text = text.unwrap_or_default();
                let image = Some((image_id, data));
                match reply_to {
                    None => self.say(
                        now,
                        id,
                        Some(room),
                        &text,
                        false,
                        image,
                        cid,
                        None,
                        r#ref.clone(),
                    ),
                    Some(target) => {
                        let said = amend::Said {
                            text,
                            action: false,
                            image,
                            cid,
                        };
                        let want = amend::Want::Reply(Box::new(said));
                        self.amend_request(now, id, Some(room), target, want, r#ref.clone())
                    }
                }
            }
            Command::Edit { room, target, text } => {
                let want = amend::Want::Edit(text);
                self.amend_request(now, id, room, target, want, r#ref.clone())
            }
            Command::Delete { room, target } => {
                self.amend_request(now, id, room, target, amend::Want::Delete, r#ref.clone())
            }
            Command::React {
                room,
                target,
                emoji,
            } => {
                let want = amend::Want::React(emoji);
                self.amend_request(now, id, room, target, want, r#ref.clone())
            }
            Command::Search {
                q,
                scope,
                limit,
                before,
            } => self.search(id, q, scope, limit, before, r#ref.clone()),
            Command::Nick(nick) => self.nick(now, id, &nick, r#ref.clone()),
            Command::Join { room, since } => self.join(now, id, room, since, false, r#ref.clone()),
            Command::Create => self.create(now, id, r#ref.clone()),
            Command::Leave(room) => self.leave(now, id, room, r#ref.clone()),
            Command::Rooms => {
                let rooms = self.listed_rooms();
                self.reply(id, Reply::Rooms { rooms }, r#ref.clone());
                Ok(())
            }
            Command::Who(room) => self.who(id, room, r#ref.clone()),
            Command::Dm { to, text, cid } => self.dm(now, id, &to, &text, cid, r#ref.clone()),
            Command::Typing(room) => self.typing(now, id, room),
            Command::History { room, page } => self.history(id, room, page, r#ref.clone()),
            Command::Help => {
                self.reply(id, Reply::Help(self.limits()), r#ref.clone());
                Ok(())
            }
            Command::Register { password } => self.register(id, password, r#ref.clone()),
            Command::Login { nick, password } => {
                self.login(now, id, &nick, password, r#ref.clone())
            }
            Command::LoginToken(token) => self.login_token(now, id, &token, r#ref.clone()),
            Command::Logout => self.logout(now, id, r#ref.clone()),
            Command::Password { old, new } => self.password(now, id, old, new, r#ref.clone()),
            Command::Mod { room, action } => self.moderate(now, id, room, action, r#ref.clone()),
            Command::Quit(reason) => {
                let reason = reason.map(|r| clip(&sanitize(&r), self.config.max_message));
                self.reply(id, Reply::Bye, r#ref.clone());
                self.push(Effect::Close(id));
                self.disconnect(now, id, LeaveReason::Quit(reason));
                Ok(())
            }
        };
        if let Err(e) = result {
            self.error(id, e, r#ref);
        }
    }

    /// Flood control: whether this message may go; a dropped one earns at
    /// most one `rate_limited` error a second.
    fn admit(&mut self, now: Now, id: ClientId, r#ref: &Option<String>) -> bool {
        let limit = self.config.rate;
        let Some(client) = self.clients.get_mut(&id) else {
            return false;
        };
        match client.bucket.take(limit, now.ms) {
            Verdict::Allow => true,
            Verdict::Drop => false,
            Verdict::DropAndWarn => {
                debug!("{id:?} rate limited at {} ms: {:?}", now.ms, client.bucket);
                let e = HubError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "at most {} messages a second (bursts of {}); messages over that are dropped",
                        limit.rate, limit.burst
                    ),
                );
                self.error(id, e, r#ref.clone());
                false
            }
        }
    }

    fn client(&self, id: ClientId) -> Result<&Client, HubError> {
        self.clients
            .get(&id)
            .map(|c| &**c)
            .ok_or_else(|| HubError::new(ErrorCode::BadRequest, "not connected"))
    }

    /// The room a request names, or the sender's current one.
    fn target_room(&self, id: ClientId, room: Option<RoomName>) -> Result<RoomName, HubError> {
        match room {
            Some(r) => Ok(r),
            None => self.client(id)?.current.clone().ok_or_else(|| {
                HubError::new(ErrorCode::NotInRoom, "you are in no room; /join one first")
            }),
        }
    }

    // One request's fields, passed as they came; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn say(
        &mut self,
        now: Now,
        id: ClientId,
        room: Option<RoomName>,
        text: &str,
        action: bool,
        image: Option<(String, Vec<u8>)>,
        cid: Option<String>,
        reply_to: Option<ReplyTo>,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        if self.repeated(now, id, cid.as_deref(), &r#ref)? {
            return Ok(());
        }
        let room = self.target_room(id, room)?;
        self.check_muted(now, id, &room)?;
        let text = match image {
            // A caption may be empty; it is still checked and cleaned.
            Some(_) if text.is_empty() => String::new(),
            _ => message_text(text, self.config.max_message)?,
        };
        let image = match image {
            Some((image_id, data)) => Some(self.check_image(&room, id, image_id, data)?),
            None => None,
        };
        let client = self.client(id)?;
        let (from, kind) = (client.nick.to_string(), client.kind);
        let account = client.account.as_ref().map(|_| from.clone());
        let author = self.author_of(id);
        let mentions = self.mentions(&text);
        let r = self
            .rooms
            .get_mut(&room)
            .filter(|r| r.members.contains(id))
            .ok_or_else(|| not_in(&room))?;
        let seq = if self.shared { 0 } else { r.last_seq + 1 };
        let mut msg = Message::new(room, seq, now.ms, from, text);
        msg.action = action;
        msg.image = image;
        msg.account = account;
        msg.author = author;
        msg.mentions = mentions;
        msg.reply_to = reply_to;
        if self.shared {
            // Numbered, kept and handed back by the store (`shared`).
            let image = msg.image.as_ref().and_then(|_| self.pending_images.pop());
            self.publish(id, msg, image, cid, r#ref);
            return Ok(());
        }
        r.last_seq = seq;
        let msg = Rc::new(msg);
        // The sender never gets the room's copy: a line client's terminal
        // already shows what it typed, and a WebSocket client gets its own
        // copy below, with its `cid` and `ref`, as the acknowledgement.
        let to = Recipients::Room {
            members: r.members.snapshot(),
            except: Some(id),
        };
        if !self.loads.is_empty() {
            for w in self.loads.values_mut() {
                if w.room == msg.room && !matches!(w.then, Then::History { .. }) {
                    w.tail.push(Entry::Message(msg.clone()));
                }
            }
        }
        self.pending.push(msg.clone());
        self.pending_from.push((id, cid.clone()));
        self.messages_total += 1;
        self.deliver(to, Event::Message(msg.clone()));
        if kind == ClientKind::Ws {
            self.reply(id, Reply::Sent(msg.clone(), cid.clone()), r#ref);
        }
        if let (Some(cid), Some(c)) = (cid, self.clients.get_mut(&id)) {
            c.sent.insert(now.ms, cid, Sent::Message(msg));
        }
        Ok(())
    }

    /// Validates an image and keeps its bytes to be stored with the
    /// message's batch; returns what the message carries.
    fn check_image(
        &mut self,
        room: &RoomName,
        sender: ClientId,
        image_id: String,
        data: Vec<u8>,
    ) -> Result<event::ImageRef, HubError> {
        if !self
            .rooms
            .get(room)
            .is_some_and(|r| r.members.contains(sender))
        {
            return Err(not_in(room));
        }
        if image_id.is_empty() {
            // The shell had no randomness to name it with.
            return Err(HubError::new(
                ErrorCode::BadImage,
                "images cannot be stored now",
            ));
        }
        let max = self.config.max_image;
        if data.len() > max {
            return Err(HubError::new(
                ErrorCode::TooLarge,
                format!(
                    "an image is at most {max} bytes; this one is {}",
                    data.len()
                ),
            ));
        }
        let mime = image::detect(&data).ok_or_else(|| {
            HubError::new(
                ErrorCode::BadImage,
                "only PNG, JPEG, GIF and WebP images are accepted (told from the file's bytes)",
            )
        })?;
        let size = data.len();
        self.pending_images.push(NewImage {
            id: image_id.clone(),
            mime,
            data,
        });
        Ok(event::ImageRef {
            id: image_id,
            mime,
            size,
        })
    }

    /// An idempotent send: a `cid` this session used in the last 10 minutes
    /// is answered with what it produced then, and nothing happens again.
    fn repeated(
        &mut self,
        now: Now,
        id: ClientId,
        cid: Option<&str>,
        r#ref: &Option<String>,
    ) -> Result<bool, HubError> {
        let Some(cid) = cid else {
            return Ok(false);
        };
        check_cid(cid)?;
        let Some(sent) = self
            .clients
            .get_mut(&id)
            .and_then(|c| c.sent.get(now.ms, cid))
        else {
            return Ok(false);
        };
        let cid = Some(cid.to_string());
        let reply = match sent {
            Sent::Message(m) => Reply::Sent(m, cid),
            Sent::Dm(d) => Reply::DmSent(d, cid),
        };
        self.reply(id, reply, r#ref.clone());
        Ok(true)
    }

    fn typing(&mut self, now: Now, id: ClientId, room: RoomName) -> Result<(), HubError> {
        let client = self.clients.get_mut(&id).ok_or_else(|| not_in(&room))?;
        if !client.rooms.contains(&room) {
            return Err(not_in(&room));
        }
        // Typing is a hint, not a message: at most one a second is relayed.
        if client
            .last_typing_ms
            .is_some_and(|t| now.ms.saturating_sub(t) < TYPING_EVERY_MS)
        {
            return Ok(());
        }
        client.last_typing_ms = Some(now.ms);
        let nick = client.nick.to_string();
        let to: Vec<ClientId> = self
            .others(&room, id)
            .iter()
            .filter(|m| {
                self.clients
                    .get(m)
                    .is_some_and(|c| c.kind == ClientKind::Ws)
            })
            .collect();
        let typing = Rc::new(Typing {
            room,
            nick,
            ts: now.ms,
        });
        self.notify(remote::Notice::Typing(typing.clone()));
        self.deliver(Recipients::List(to), Event::Typing(typing));
        Ok(())
    }

    fn nick(
        &mut self,
        now: Now,
        id: ClientId,
        wanted: &str,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let nick = Nick::parse(wanted)?;
        let key = nick.key();
        let client = self.client(id)?;
        if client.account.is_some() {
            return Err(HubError::new(
                ErrorCode::NotPermitted,
                format!(
                    "you are logged in as {}: your nick is your account's; /logout first",
                    client.nick
                ),
            ));
        }
        if self.accounts.exists(&key) {
            return Err(accounts::registered(&nick));
        }
        if self.nicks.get(&key).is_some_and(|&holder| holder != id)
            || (self.remote.holds_nick(&key) && !self.nicks.contains_key(&key))
        {
            return Err(taken(&nick));
        }
        if self.shared && !self.nicks.contains_key(&key) {
            // Another process may be giving it away this very moment: the
            // store decides (`remote::held`).
            self.hold_nick(id, nick, r#ref);
            return Ok(());
        }
        self.reply(
            id,
            Reply::Nick {
                nick: nick.to_string(),
            },
            r#ref,
        );
        self.rename(now, id, nick, None);
        Ok(())
    }

    fn join(
        &mut self,
        now: Now,
        id: ClientId,
        room: RoomName,
        since: Option<u64>,
        created: bool,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let client = self.client(id)?;
        if client.rooms.contains(&room) {
            let kind = client.kind;
            if let Some(c) = self.clients.get_mut(&id) {
                c.current = Some(room.clone());
            }
            // A line user is told; a WebSocket client (after a resume, say)
            // gets the room's state again, caught up from `since`.
            if kind == ClientKind::Line {
                self.reply(id, Reply::Current { room }, r#ref);
                return Ok(());
            }
        } else {
            self.may_join(id, &room)?;
        }
        self.catch_up(now, id, room, since, Then::Join { created, r#ref });
        Ok(())
    }

    /// Replays `room` to `id` for a join or a resume: the latest
    /// `--history` messages, or with `since` those after it (at most 500,
    /// and `gap` if more were missed), read from the store; then `then`.
    /// Nothing (and `gap`) once the client has had its replays for this
    /// turn. A room not in memory is read for its latest `seq` too.
    fn catch_up(&mut self, now: Now, id: ClientId, room: RoomName, since: Option<u64>, then: Then) {
        let replay = self.replay_allowed(id);
        let known_seq = self.rooms.get(&room).map(|r| r.last_seq);
        if self
            .clients
            .get(&id)
            .is_some_and(|c| c.rooms.contains(&room))
        {
            self.hold_live(id, &room);
        }
        let w = Waiting {
            client: id,
            room,
            then,
            since,
            replay,
            known_seq: known_seq.unwrap_or(0),
            tail: Vec::new(),
            answer: None,
            asked: None,
            rereads: 0,
        };
        if !replay && known_seq.is_some() {
            self.caught_up(now, w, Loaded::default());
            return;
        }
        let page = match (replay, since) {
            (false, _) => Page {
                limit: 0,
                ..Page::default()
            },
            (true, None) => Page {
                limit: self.config.history,
                ..Page::default()
            },
            (true, Some(since)) => Page {
                after: Some(since),
                limit: MAX_CATCH_UP + 1,
                ..Page::default()
            },
        };
        let since = since.filter(|_| replay);
        self.load(w, page, known_seq.is_none(), since);
    }

    /// Asks the store for a room's history (and its latest `seq`); the
    /// client waits for the answer. The batch being gathered goes first,
    /// so the read sees it: a room that empties and refills within one
    /// turn carries on its `seq`.
    fn load(&mut self, mut w: Waiting, page: Page, last_seq: bool, since: Option<u64>) {
        w.asked = Some((page, last_seq, since));
        self.close_batch();
        let id = self.next_load;
        self.next_load += 1;
        self.park_on_work(w.client);
        self.ops.push(StoreOp::Load(Load {
            id,
            room: w.room.clone(),
            page,
            last_seq,
            since,
        }));
        self.loads.insert(id, w);
    }

    /// The store's answer to a read `w` waited for.
    fn loaded(&mut self, now: Now, mut w: Waiting, result: Result<Loaded, StoreError>) {
        let id = w.client;
        if let (
            true,
            Ok(Loaded {
                last_seq: Some(read_at),
                ..
            }),
        ) = (self.shared, &result)
        {
            // The store's answer has what it held up to `read_at`.
            w.tail.retain(|e| e.seq() > *read_at);
            let hole = match w.then {
                Then::Create { .. } => None,
                _ => self.tail_hole(&w, *read_at),
            };
            if let Some(hole) = hole {
                if w.rereads < MAX_REREADS {
                    if let Some((page, last_seq, since)) = w.asked {
                        debug!(
                            "#{}: read at {read_at}, {hole} arrived here meanwhile was not \
                             kept for it: read again",
                            w.room
                        );
                        w.rereads += 1;
                        self.load(w, page, last_seq, since);
                        return;
                    }
                }
                warn!(
                    "#{}: read at {read_at} {} times, and {hole} is still missing",
                    w.room,
                    w.rereads + 1
                );
            }
        }
        match (&w.then, result) {
            (Then::History { .. }, result) => {
                let messages = result.map_or_else(
                    |e| {
                        error!("history of #{} unavailable: {e}", w.room);
                        Vec::new()
                    },
                    |l| l.messages,
                );
                let Then::History { r#ref, page } = w.then else {
                    return;
                };
                let messages = if self.shared {
                    shared::page_now(messages, &page, w.tail)
                } else {
                    messages
                };
                self.charge_history(id, &messages, false);
                let reply = Reply::History {
                    room: w.room,
                    messages,
                };
                self.reply(id, reply, r#ref);
            }
            (Then::Create { .. }, result) => {
                let Then::Create { r#ref } = w.then else {
                    return;
                };
                let result = match result {
                    Ok(l) => {
                        let used = l.last_seq.unwrap_or(0) > 0
                            || !w.tail.is_empty()
                            || self.rooms.contains_key(&w.room)
                            || self.unlisted.contains(&w.room);
                        if used {
                            self.create(now, id, r#ref.clone())
                        } else {
                            self.unlisted.insert(w.room.clone());
                            self.notify(remote::Notice::Unlisted(w.room.clone()));
                            self.join(now, id, w.room, None, true, r#ref.clone())
                        }
                    }
                    Err(e) => Err(self.store_failed(e)),
                };
                if let Err(e) = result {
                    self.error(id, e, r#ref);
                }
            }
            (_, Ok(l)) => self.caught_up(now, w, l),
            (_, Err(e)) if self.rooms.contains_key(&w.room) => {
                // The room is known: the join goes on without a replay.
                error!("history of #{} unavailable: {e}", w.room);
                self.caught_up(now, w, Loaded::default());
            }
            (_, Err(e)) => {
                let e = self.store_failed(e);
                match w.then {
                    Then::Join { r#ref, .. } => self.error(id, e, r#ref),
                    Then::Resume { rest } => {
                        self.release_live(id, &w.room);
                        self.error(id, e, None);
                        self.resume_rooms(now, id, rest);
                    }
                    _ => {}
                }
            }
        }
    }

    /// A join or a resume has what the store had of the room: the client is
    /// sent `joined` (and, if it was not in the room, enters it).
    fn caught_up(&mut self, now: Now, w: Waiting, loaded: Loaded) {
        let Waiting {
            client: id,
            room,
            then,
            since,
            replay,
            known_seq,
            tail,
            ..
        } = w;
        if !self.rooms.contains_key(&room) {
            // Read for its latest seq, or emptied while the read was out.
            let last_seq = [loaded.last_seq.unwrap_or(0), known_seq]
                .into_iter()
                .chain(tail.last().map(Entry::seq))
                .max()
                .unwrap_or(0);
            // A room never used before is its maker's, if logged in.
            if last_seq == 0 && matches!(then, Then::Join { .. }) {
                self.claim(id, &room);
            }
            let r = Room {
                members: Members::default(),
                last_seq,
            };
            self.rooms.insert(room.clone(), r);
        }
        let (messages, gap) = if replay {
            // The store's messages and changes in seq order, then what was
            // accepted since the read was asked for.
            let mut messages: Vec<Entry> = loaded
                .messages
                .into_iter()
                .map(Entry::Message)
                .chain(loaded.amends.into_iter().map(Entry::Amend))
                .collect();
            messages.sort_by_key(Entry::seq);
            messages.extend(tail);
            if self.shared {
                // The store was read while the room's entries went on
                // arriving (into the tail; a member waiting for this
                // replay was not sent them live). The client is replayed
                // up to the room's seq here: what the store has past it
                // arrives, and reaches the client live, later. What came
                // both ways, once.
                let frontier = self.rooms.get(&room).map_or(0, |r| r.last_seq);
                messages.retain(|e| e.seq() <= frontier);
                messages.sort_by_key(Entry::seq);
                messages.dedup_by_key(|e| e.seq());
            }
            if since.is_some() {
                // Each list the store cut is complete up to its last seq,
                // so the first MAX_CATCH_UP entries of both are too.
                let gap = messages.len() > MAX_CATCH_UP;
                messages.truncate(MAX_CATCH_UP);
                (messages, gap)
            } else {
                // A plain join replays the latest messages; a change to one
                // of them made meanwhile is in the tail, and kept.
                let count = messages.iter().filter(|e| e.message().is_some()).count();
                let mut extra = count.saturating_sub(self.config.history);
                messages.retain(|e| match e {
                    Entry::Message(_) if extra > 0 => {
                        extra -= 1;
                        false
                    }
                    _ => true,
                });
                // A change older than the first message replayed is to a
                // message not replayed: the replay starts at that message.
                let first = messages.iter().find_map(Entry::message).map(|m| m.seq);
                messages.retain(|e| first.is_some_and(|f| e.seq() > f) || e.message().is_some());
                (messages, false)
            }
        } else {
            (Vec::new(), true)
        };
        let replayed: Vec<Rc<Message>> = messages
            .iter()
            .filter_map(|e| e.message().cloned())
            .collect();
        self.charge_history(id, &replayed, true);
        self.release_live(id, &room);
        match then {
            Then::Join { created, r#ref } => {
                self.enter(now, id, room, messages, gap, created, r#ref)
            }
            Then::Resume { rest } => {
                let joined = self.joined_reply(id, &room, messages, false, gap);
                self.reply(id, joined, None);
                self.resume_rooms(now, id, rest);
            }
            Then::Create { .. } | Then::History { .. } => {}
        }
    }

    /// `id` is sent `joined`; if it was not in `room`, it enters and the
    /// others are told.
    // The parts of a `joined`, as `caught_up` has them.
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        now: Now,
        id: ClientId,
        room: RoomName,
        messages: Vec<Entry>,
        gap: bool,
        created: bool,
        r#ref: Option<String>,
    ) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if client.rooms.contains(&room) {
            let joined = self.joined_reply(id, &room, messages, created, gap);
            self.reply(id, joined, r#ref);
            return;
        }
        let nick = client.nick.clone();
        let account = client.account.as_ref().map(|_| nick.to_string());
        let others = self.others(&room, id);
        let mut first = true;
        let elsewhere = self.remote.in_room(&room, &nick.key());
        if let Some(r) = self.rooms.get_mut(&room) {
            // Another connection of the account is in already: the room
            // sees nothing.
            first = !r.members.holds(&nick.key());
            r.members.insert(id, &nick);
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.rooms.push(room.clone());
            c.current = Some(room.clone());
        }
        self.touch_session(id);
        let joined = self.joined_reply(id, &room, messages, created, gap);
        self.reply(id, joined, r#ref);
        if !first {
            return;
        }
        let presence = Presence {
            account,
            room,
            kind: PresenceKind::Join,
            nick: nick.to_string(),
            ts: now.ms,
        };
        // Held on another process already (an account's other connection):
        // announced, but the room saw it there.
        let others = if elsewhere {
            Recipients::List(Vec::new())
        } else {
            others
        };
        self.presence(others, presence);
    }

    fn joined_reply(
        &self,
        id: ClientId,
        room: &RoomName,
        messages: Vec<Entry>,
        created: bool,
        gap: bool,
    ) -> Reply {
        Reply::Joined {
            room: room.clone(),
            members: self.member_nicks(room),
            messages,
            created,
            last_seq: self.rooms.get(room).map_or(0, |r| r.last_seq),
            gap,
            store_id: self.store_id.clone(),
            info: Box::new(self.room_info(room)),
            role: self.role(id, room),
        }
    }

    /// `/create`: a fresh code nobody has used (no members, not made by
    /// `/create` before, no stored messages: the store is asked), joined.
    fn create(&mut self, _now: Now, id: ClientId, r#ref: Option<String>) -> Result<(), HubError> {
        let room = loop {
            let code = self.rng.code(6);
            let Ok(room) = RoomName::parse(&code) else {
                continue;
            };
            if !self.rooms.contains_key(&room) && !self.unlisted.contains(&room) {
                break room;
            }
        };
        let w = Waiting::read(id, room, Then::Create { r#ref });
        let page = Page {
            limit: 0,
            ..Page::default()
        };
        self.load(w, page, true, None);
        Ok(())
    }

    fn leave(
        &mut self,
        now: Now,
        id: ClientId,
        room: Option<RoomName>,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let room = self.target_room(id, room)?;
        let Some(client) = self.clients.get_mut(&id) else {
            return Ok(());
        };
        let Some(pos) = client.rooms.iter().position(|r| *r == room) else {
            return Err(not_in(&room));
        };
        client.rooms.remove(pos);
        if client.current.as_ref() == Some(&room) {
            client.current = client.rooms.last().cloned();
        }
        let nick = client.nick.clone();
        self.reply(id, Reply::Left { room: room.clone() }, r#ref);
        self.remove_member(now, id, &nick, &room, LeaveReason::Leave);
        Ok(())
    }

    fn who(
        &mut self,
        id: ClientId,
        room: Option<RoomName>,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let room = self.target_room(id, room)?;
        let members = self.member_nicks(&room);
        self.reply(id, Reply::Who { room, members }, r#ref);
        Ok(())
    }

    fn dm(
        &mut self,
        now: Now,
        id: ClientId,
        to: &str,
        text: &str,
        cid: Option<String>,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        if self.repeated(now, id, cid.as_deref(), &r#ref)? {
            return Ok(());
        }
        let text = message_text(text, self.config.max_message)?;
        let no_such = || {
            HubError::new(
                ErrorCode::NoSuchUser,
                format!("nobody is called {}", sanitize(to)),
            )
        };
        let targets = self.holders(&to.to_ascii_lowercase());
        if targets.is_empty() && self.remote.holds_nick(&to.to_ascii_lowercase()) {
            return self.remote_dm(now, id, to, text, cid, r#ref);
        }
        let &target = targets.first().ok_or_else(no_such)?;
        let sender = self.client(id)?;
        let from = sender.nick.to_string();
        let account = sender.account.as_ref().map(|_| from.clone());
        let own = sender.account.clone();
        let to = self.client(target)?.nick.to_string();
        let dm = Rc::new(Dm {
            account,
            from,
            to,
            ts: now.ms,
            text,
        });
        // Every connection of the recipient's account gets it; the
        // sender's other connections get the sender's copy.
        let to_self = own.as_deref() == Some(dm.to.to_ascii_lowercase().as_str());
        self.deliver(Recipients::List(targets), Event::Dm(dm.clone()));
        let key = dm.to.to_ascii_lowercase();
        let own_account = own.as_deref() == Some(key.as_str());
        if self.remote.holds_nick(&key) || (own.is_some() && self.shared && !own_account) {
            // The recipient's (or the sender's) other connections may be
            // on other processes: they deliver it there.
            self.notify(remote::Notice::Dm(dm.clone()));
        }
        self.reply(id, Reply::DmSent(dm.clone(), cid.clone()), r#ref);
        if let Some(key) = own.filter(|_| !to_self) {
            let copies: Vec<ClientId> = self
                .holders(&key)
                .into_iter()
                .filter(|&c| c != id)
                .collect();
            self.deliver(
                Recipients::List(copies),
                Event::Reply(Reply::DmSent(dm.clone(), None), None),
            );
        }
        if let (Some(cid), Some(c)) = (cid, self.clients.get_mut(&id)) {
            c.sent.insert(now.ms, cid, Sent::Dm(dm));
        }
        Ok(())
    }

    fn history(
        &mut self,
        id: ClientId,
        room: Option<RoomName>,
        mut page: Page,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let room = self.target_room(id, room)?;
        if !self.history_allowed(id) {
            return Err(HubError::new(
                ErrorCode::RateLimited,
                "too much history at once: read what you were sent, then ask again",
            ));
        }
        page.limit = page.limit.min(MAX_HISTORY_PAGE);
        let w = Waiting::read(id, room, Then::History { r#ref, page });
        self.load(w, page, false, None);
        Ok(())
    }

    /// Takes `id` out of `room`, tells the others why, forgets an empty room.
    fn remove_member(
        &mut self,
        now: Now,
        id: ClientId,
        nick: &Nick,
        room: &RoomName,
        reason: LeaveReason,
    ) {
        self.touch_session(id);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        r.members.remove(id);
        self.member_left(now, room, nick, reason);
    }

    /// `nick`'s connections here have been taken out of `room`: unless one
    /// of its account's stays, the room's members here are told it left
    /// (not if it stays in the room on another process), the other
    /// processes are told by the announcement, and an empty room goes.
    pub(super) fn member_left(
        &mut self,
        now: Now,
        room: &RoomName,
        nick: &Nick,
        reason: LeaveReason,
    ) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.members.holds(&nick.key()) {
            return; // another connection of the account stays
        }
        let to = if r.members.is_empty() || self.remote.in_room(room, &nick.key()) {
            Recipients::List(Vec::new())
        } else {
            Recipients::Room {
                members: r.members.snapshot(),
                except: None,
            }
        };
        if r.members.is_empty() {
            self.rooms.remove(room);
        }
        let presence = Presence {
            account: None,
            room: room.clone(),
            kind: PresenceKind::Leave(reason),
            nick: nick.to_string(),
            ts: now.ms,
        };
        self.presence(to, presence);
    }

    fn deliver(&mut self, to: Recipients, event: Event) {
        if !to.is_empty() {
            self.push(Effect::Deliver { to, event });
        }
    }

    /// Members of `room` other than `id`.
    fn others(&self, room: &RoomName, id: ClientId) -> Recipients {
        match self.rooms.get(room) {
            Some(r) => Recipients::Room {
                members: r.members.snapshot(),
                except: Some(id),
            },
            None => Recipients::List(Vec::new()),
        }
    }

    /// The nicks in `room`, sorted case-insensitively.
    fn member_nicks(&self, room: &RoomName) -> Vec<Nick> {
        let mut nicks: Vec<Nick> = self
            .rooms
            .get(room)
            .map_or_else(Vec::new, |r| r.members.nicks().cloned().collect());
        let here = nicks.len();
        for n in self.remote.members(room) {
            if !nicks[..here].iter().any(|h| h.key() == n.key()) {
                nicks.push(n.clone());
            }
        }
        if nicks.len() > here {
            nicks.sort_by_key(|n| n.key());
        }
        nicks
    }

    /// Rooms anyone may find: not made by `/create`, with members; the
    /// busiest first.
    pub fn listed_rooms(&self) -> Vec<(RoomName, usize)> {
        let mut rooms: Vec<(RoomName, usize)> = self
            .rooms
            .iter()
            .filter(|(name, _)| !self.unlisted.contains(*name))
            .map(|(name, r)| (name.clone(), r.members.nick_count()))
            .collect();
        // Members on other processes (rooms made by `/create` anywhere are
        // announced, and never listed).
        for (name, _) in self.remote.room_counts() {
            match rooms.iter_mut().find(|(n, _)| n == name) {
                Some(r) => r.1 = self.member_nicks(name).len(),
                None if !self.unlisted.contains(name) => {
                    rooms.push((name.clone(), self.member_nicks(name).len()))
                }
                None => {}
            }
        }
        rooms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rooms
    }

    /// A generated nick nobody holds, such as `quiet-heron-42`.
    fn fresh_nick(&mut self) -> Nick {
        for _ in 0..64 {
            let candidate = self.rng.nick();
            if let Ok(n) = Nick::parse(&candidate) {
                if !self.nicks.contains_key(&n.key())
                    && !self.remote.holds_nick(&n.key())
                    && !self.accounts.exists(&n.key())
                {
                    return n;
                }
            }
        }
        // Thousands of clients hold generated nicks: widen the number.
        loop {
            let candidate = format!("user-{}", self.rng.below(1_000_000_000));
            if let Ok(n) = Nick::parse(&candidate) {
                if !self.nicks.contains_key(&n.key())
                    && !self.remote.holds_nick(&n.key())
                    && !self.accounts.exists(&n.key())
                {
                    return n;
                }
            }
        }
    }
}

fn taken(nick: &Nick) -> HubError {
    HubError::new(ErrorCode::NickTaken, format!("{nick} is taken"))
}

fn not_in(room: &RoomName) -> HubError {
    HubError::new(ErrorCode::NotInRoom, format!("you are not in #{room}"))
}

impl Hub {
    /// The error for a read the store failed: `unavailable` on a shared
    /// server (Redis cannot be reached), else the server's own fault.
    fn store_failed(&self, e: StoreError) -> HubError {
        error!("{e}");
        if self.shared {
            return shared::unavailable();
        }
        HubError::new(
            ErrorCode::BadRequest,
            "the message store is unavailable; try again",
        )
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
