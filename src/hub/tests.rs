//! Scenario tests of the hub: clients connect and act at fixed times, the
//! effects are committed and drained as the server does, every delivery is
//! rendered with `proto::line::render`, and each client's lines are compared
//! with the exact lines of PROTOCOL.md.
//!
//! Error lines are checked by code: `!!! CODE: ` plus a non-empty message
//! (the expected line is written `"!!! CODE: *"`); PROTOCOL.md fixes the code,
//! not the sentence.

use super::*;

use crate::proto::line::render;
use event::{AmendKind, Hit, Reaction, Reactor};
use port::{FindWhat, FIND_LATEST};

mod accounts;
mod amend;
mod churn;
mod shared;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// 2025-11-22 00:00:00 UTC, in seconds since the epoch.
const DAY: u64 = 20_414 * 86_400;

/// A fixed wall-clock time on [`DAY`], rendered `[HH:MM:SS]`.
fn at(h: u64, m: u64, s: u64) -> Now {
    Now {
        ms: (DAY + h * 3600 + m * 60 + s) * 1000 + 250,
    }
}

fn room(s: &str) -> RoomName {
    RoomName::parse(s).expect("a valid room name")
}

fn config(history: usize) -> HubConfig {
    HubConfig {
        default_room: room("lobby"),
        history,
        max_message: 4000,
        max_line: 4096,
        resume_grace_ms: 120_000,
        max_ws_message: 2 * 1024 * 1024,
        max_image: 1024 * 1024,
        history_per_turn: 1 << 20,
        edit_window_ms: 900_000,
        accounts: AccountsConfig::default(),
        // Generous: scenarios send many messages at one instant. Flood
        // control has its own scenario below with the default figures.
        rate: limits::RateLimit {
            rate: 1000,
            burst: 1000,
        },
    }
}

/// How the test store answers the hub's operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Answers {
    /// At once, as SQLite on the loop's thread does.
    #[default]
    AtOnce,
    /// At the next turn (the next `flush`), as a store across the network
    /// would: nothing the hub asks is answered in the turn it asks.
    NextTurn,
}

/// The store the hub's tests drive the way the shell drives a real one
/// (the hub cannot name `store`: dependencies point one way). Rooms and
/// images in memory; batches and reads can be made to fail.
#[derive(Default)]
struct TestStore {
    /// Each room's messages as they are now (amends applied).
    rooms: HashMap<RoomName, Vec<Rc<Message>>>,
    /// Each room's edits, deletes and reactions, in seq order.
    amends: HashMap<RoomName, Vec<Rc<Amend>>>,
    images: HashMap<String, (String, Vec<u8>)>,
    answers: Answers,
    /// Batches are refused, as on a full disk.
    refuse_batches: bool,
    /// Reads fail.
    refuse_reads: bool,
    /// Answers of this turn, held for the next one.
    later: Vec<StoreAnswer>,
    /// Answers of the last turn, given to the hub when this one ends.
    due: Vec<StoreAnswer>,
    /// Batches answered, and reads, for the tests to look at.
    batches: usize,
    reads: usize,
    /// Every change stored, in order.
    changes: Vec<Change>,
    /// Password jobs done.
    jobs: usize,
    /// Shared: each sender's cids, and what they published.
    cids: HashMap<(String, String), Rc<Message>>,
    /// Shared: published messages on their way back to the hub.
    arrivals: Vec<(Entry, Option<u64>)>,
    /// Shared: every read says the room's seq, as Redis's does.
    shared: bool,
    /// Shared: the next session claimed is this one (taken over from
    /// another process).
    claim_with: Option<sessions::SessionState>,
}

impl TestStore {
    /// A password job done with a fake hash: `fake:PASSWORD`.
    fn password_job(&mut self, job: PasswordJob) -> port::PasswordDone {
        self.jobs += 1;
        let matched = job
            .check
            .as_ref()
            .is_none_or(|(pw, phc)| *phc == format!("fake:{pw}"));
        port::PasswordDone {
            id: job.id,
            matched,
            phc: job
                .hash
                .filter(|_| matched)
                .map(|pw| Ok(format!("fake:{pw}"))),
            token: format!("token{}", job.id),
        }
    }

    fn execute(&mut self, op: StoreOp) -> StoreAnswer {
        match op {
            StoreOp::Append(batch) => {
                self.batches += 1;
                let result = if self.refuse_batches {
                    Err(StoreError("disk full".into()))
                } else {
                    for i in batch.images {
                        self.images.insert(i.id, (i.mime.to_string(), i.data));
                    }
                    self.changes.extend(batch.changes);
                    for m in batch.messages {
                        let stored = self.rooms.entry(m.room.clone()).or_default();
                        assert!(
                            stored.last().is_none_or(|last| last.seq < m.seq),
                            "seq {} of #{} stored after {:?}",
                            m.seq,
                            m.room,
                            stored.last().map(|l| l.seq)
                        );
                        stored.push(m);
                    }
                    for a in batch.amends {
                        self.apply(&a);
                        self.amends.entry(a.room.clone()).or_default().push(a);
                    }
                    Ok(())
                };
                StoreAnswer::Committed {
                    batch: batch.id,
                    result,
                }
            }
            StoreOp::Load(load) => {
                self.reads += 1;
                let result = if self.refuse_reads {
                    Err(StoreError("unreachable".into()))
                } else {
                    let all = self.rooms.get(&load.room).map_or(&[][..], |v| &v[..]);
                    let changes = self.amends.get(&load.room).map_or(&[][..], |v| &v[..]);
                    let last_seq = (load.last_seq || self.shared).then(|| {
                        let m = all.last().map_or(0, |m| m.seq);
                        m.max(changes.last().map_or(0, |a| a.seq))
                    });
                    // The store contract: changes after `since` to messages
                    // at or before it, but edits and reactions of a message
                    // deleted since.
                    let deleted = |t: u64| all.iter().any(|m| m.seq == t && m.deleted);
                    let amends = match load.since {
                        Some(since) => changes
                            .iter()
                            .filter(|a| a.seq > since && a.target <= since)
                            .filter(|a| {
                                matches!(a.kind, AmendKind::Delete { .. }) || !deleted(a.target)
                            })
                            .take(load.page.limit)
                            .cloned()
                            .collect(),
                        None => Vec::new(),
                    };
                    Ok(Loaded {
                        amends,
                        messages: page_of(all, load.page),
                        last_seq,
                    })
                };
                StoreAnswer::Loaded {
                    load: load.id,
                    result,
                }
            }
            StoreOp::Find(find) => {
                self.reads += 1;
                let all = self.rooms.get(&find.room).map_or(&[][..], |v| &v[..]);
                let newest = all.iter().rev().filter(|m| !m.deleted);
                let found: Vec<Rc<Message>> = match &find.what {
                    FindWhat::Seq(seq) => all.iter().filter(|m| m.seq == *seq).cloned().collect(),
                    FindWhat::LastBy(authors) => newest
                        .filter(|m| authors.contains(&m.author))
                        .take(FIND_LATEST)
                        .cloned()
                        .collect(),
                    FindWhat::LastOf(key) => newest
                        .filter(|m| m.from.to_ascii_lowercase() == *key)
                        .take(FIND_LATEST)
                        .cloned()
                        .collect(),
                };
                let result = if self.refuse_reads {
                    Err(StoreError("unreachable".into()))
                } else {
                    Ok(found)
                };
                StoreAnswer::Found {
                    find: find.id,
                    result,
                }
            }
            // Words as case-insensitive substrings: enough for the hub's
            // rules (the real matching is the store's, tested there).
            StoreOp::Search(op) => {
                let words: Vec<String> = op.query.words.iter().map(|w| w.to_lowercase()).collect();
                let mut hits: Vec<Hit> = op
                    .rooms
                    .iter()
                    .filter_map(|r| self.rooms.get(r))
                    .flatten()
                    .filter(|m| !m.deleted)
                    .filter(|m| {
                        let t = m.text.to_lowercase();
                        words.iter().all(|w| t.contains(w.as_str()))
                    })
                    .filter(|m| {
                        op.query
                            .from
                            .as_ref()
                            .is_none_or(|f| f.eq_ignore_ascii_case(&m.from))
                    })
                    .map(|m| Hit {
                        message: m.clone(),
                        snippet: m.text.clone(),
                        marks: Vec::new(),
                    })
                    .collect();
                hits.sort_by_key(|h| std::cmp::Reverse((h.message.ts, h.message.seq)));
                hits.truncate(op.limit);
                StoreAnswer::Searched {
                    search: op.id,
                    result: Ok(hits),
                    read_at: Vec::new(),
                }
            }
            // One process: every nick is this hub's to give.
            StoreOp::HoldNick(h) => StoreAnswer::Held {
                hold: h.id,
                ok: Ok(true),
            },
            // Changes on a shared server: see `tests/redis_chat.rs`.
            // As `amend.lua`: applied to the message as kept now (a
            // reaction toggled by who holds it there), numbered, handed back.
            StoreOp::PublishChange(c) => {
                let target = self
                    .rooms
                    .get(&c.room)
                    .and_then(|all| all.iter().find(|m| m.seq == c.target))
                    .cloned();
                let result = match target {
                    None => Err(StoreError("NOTFOUND".into())),
                    Some(m) if m.deleted => Err(StoreError("DELETED".into())),
                    Some(m) => {
                        let kind = match c.kind {
                            AmendKind::React { emoji, .. } => {
                                let on = !m.reactions.iter().any(|r| {
                                    r.emoji == emoji
                                        && r.by.iter().any(|p| c.authors.contains(&p.author))
                                });
                                AmendKind::React { emoji, on }
                            }
                            AmendKind::Delete { .. } => AmendKind::Delete { of: m.from.clone() },
                            k => k,
                        };
                        let seq = self.next_seq(&c.room);
                        let a = Rc::new(Amend {
                            room: c.room.clone(),
                            seq,
                            target: c.target,
                            ts: c.ts,
                            by: c.by,
                            author: c.author,
                            kind,
                        });
                        self.apply(&a);
                        self.amends.entry(c.room).or_default().push(a.clone());
                        self.arrivals.push((Entry::Amend(a), Some(c.id)));
                        Ok(port::Published::New(seq))
                    }
                };
                StoreAnswer::Published {
                    publish: c.id,
                    result,
                }
            }
            // No sessions are shared here (see `tests/redis_presence.rs`).
            StoreOp::Claim(c) => StoreAnswer::Claimed {
                claim: c.id,
                result: self.claim_with.take(),
            },
            // A shared store (Redis): numbers, keeps, and hands the message
            // back as every process gets it (`arrivals`).
            StoreOp::Publish(p) => {
                let result = if self.refuse_batches {
                    Err(StoreError("unreachable".into()))
                } else {
                    let key = p.cid.clone().map(|c| (p.message.author.clone(), c));
                    match key.as_ref().and_then(|k| self.cids.get(k)) {
                        Some(m) => Ok(port::Published::Repeat(m.seq, Some(m.clone()))),
                        None => {
                            let m = self.publish_as(&p.message, Some(p.id));
                            if let Some(k) = key {
                                self.cids.insert(k, m.clone());
                            }
                            Ok(port::Published::New(m.seq))
                        }
                    }
                };
                StoreAnswer::Published {
                    publish: p.id,
                    result,
                }
            }
        }
    }

    /// The room's next seq, counting messages and changes.
    fn next_seq(&self, room: &RoomName) -> u64 {
        let m = self
            .rooms
            .get(room)
            .and_then(|v| v.last())
            .map_or(0, |l| l.seq);
        let a = self
            .amends
            .get(room)
            .and_then(|v| v.last())
            .map_or(0, |l| l.seq);
        m.max(a) + 1
    }

    /// Numbers and keeps `m` as a shared store does, and queues its
    /// arrival (`origin`: the request of this hub's that sent it).
    fn publish_as(&mut self, m: &Message, origin: Option<u64>) -> Rc<Message> {
        let seq = self.next_seq(&m.room);
        let stored = self.rooms.entry(m.room.clone()).or_default();
        let m = Rc::new(Message { seq, ..m.clone() });
        stored.push(m.clone());
        self.arrivals.push((Entry::Message(m.clone()), origin));
        m
    }
}

impl TestStore {
    /// Applies a stored change to its target, as a store does.
    fn apply(&mut self, a: &Amend) {
        let Some(m) = self
            .rooms
            .get_mut(&a.room)
            .and_then(|all| all.iter_mut().find(|m| m.seq == a.target))
        else {
            return;
        };
        let mut next = (**m).clone();
        match &a.kind {
            AmendKind::Edit { text } => {
                next.text.clone_from(text);
                next.edited_ts = Some(a.ts);
            }
            AmendKind::Delete { .. } => {
                next.deleted = true;
                next.text.clear();
                next.image = None;
                next.reactions.clear();
                next.edited_ts = None;
            }
            AmendKind::React { emoji, on } => {
                let i = next.reactions.iter().position(|r| r.emoji == *emoji);
                match (i, on) {
                    (Some(i), false) => {
                        next.reactions[i].by.retain(|p| p.author != a.author);
                        if next.reactions[i].by.is_empty() {
                            next.reactions.remove(i);
                        }
                    }
                    (Some(i), true) => next.reactions[i].by.push(Reactor {
                        author: a.author.clone(),
                        nick: a.by.clone(),
                    }),
                    (None, true) => next.reactions.push(Reaction {
                        emoji: emoji.clone(),
                        by: vec![Reactor {
                            author: a.author.clone(),
                            nick: a.by.clone(),
                        }],
                    }),
                    (None, false) => {}
                }
            }
        }
        *m = Rc::new(next);
    }
}

/// `page` of `all` (ascending `seq`), as the store contract says.
fn page_of(all: &[Rc<Message>], page: Page) -> Vec<Rc<Message>> {
    let inside: Vec<Rc<Message>> = all
        .iter()
        .filter(|m| page.after.is_none_or(|a| m.seq > a) && page.before.is_none_or(|b| m.seq < b))
        .cloned()
        .collect();
    if page.after.is_some() {
        inside.into_iter().take(page.limit).collect()
    } else {
        let skip = inside.len().saturating_sub(page.limit);
        inside.into_iter().skip(skip).collect()
    }
}

/// A hub, its store, and what each client has been sent so far.
struct Chat {
    hub: Hub,
    store: TestStore,
    /// The time of the latest request, for the store's answers.
    now: Now,
    next_id: u64,
    lines: HashMap<ClientId, Vec<String>>,
    /// Every event each client was sent, as the hub made it.
    events: HashMap<ClientId, Vec<Event>>,
    closed: Vec<ClientId>,
}

impl Chat {
    fn new() -> Chat {
        Chat::with_history(50)
    }

    fn with_history(history: usize) -> Chat {
        Chat::with_config(config(history))
    }

    fn with_config(config: HubConfig) -> Chat {
        Chat {
            hub: Hub::new(config, "test-store".into(), 0x5eed),
            store: TestStore::default(),
            now: at(0, 0, 0),
            next_id: 1,
            lines: HashMap::new(),
            events: HashMap::new(),
            closed: Vec::new(),
        }
    }

    /// A chat whose store answers a turn late.
    fn late() -> Chat {
        let mut t = Chat::new();
        t.store.answers = Answers::NextTurn;
        t
    }

    /// Carries out what the hub asked of the store: answered at once, or
    /// kept for the next turn. Password jobs are done at once too, with a
    /// fake hash (`fake:PASSWORD`) instead of Argon2id.
    fn persist(&mut self) {
        let mut ops = Vec::new();
        while self.hub.has_store_ops() || self.hub.has_password_jobs() {
            let mut jobs = Vec::new();
            self.hub.take_password_jobs(&mut jobs);
            for job in jobs {
                let done = self.store.password_job(job);
                self.hub.password_done(self.now, done);
            }
            self.hub.take_store_ops(&mut ops);
            for op in ops.drain(..) {
                let answer = self.store.execute(op);
                match self.store.answers {
                    Answers::AtOnce => self.hub.answer(self.now, answer),
                    Answers::NextTurn => self.store.later.push(answer),
                }
            }
            self.arrive();
        }
    }

    /// Hands the shared store's published messages to the hub, in order.
    fn arrive(&mut self) {
        for (e, origin) in std::mem::take(&mut self.store.arrivals) {
            self.hub.arrive_entry(self.now, e, origin);
        }
    }

    fn connect(&mut self, now: Now, kind: ClientKind, wanted: Option<&str>) -> ClientId {
        // WebSocket clients get a session token, as the shell gives them.
        let session = (kind == ClientKind::Ws).then(|| format!("token-{}", self.next_id));
        self.connect_with(
            now,
            Hello {
                kind,
                peer: Peer::loopback(),
                nick: wanted.map(str::to_string),
                session,
                token: None,
            },
        )
    }

    /// A client introduced as `hello` says (its id is the next one).
    fn connect_with(&mut self, now: Now, hello: Hello) -> ClientId {
        let id = ClientId(self.next_id);
        self.next_id += 1;
        self.now = now;
        self.hub.connect(now, id, hello);
        self.persist();
        id
    }

    /// A line client that asked for `nick` (and is expected to get it).
    fn line(&mut self, now: Now, nick: &str) -> ClientId {
        let id = self.connect(now, ClientKind::Line, Some(nick));
        assert_eq!(self.hub.nick_of(id), Some(nick));
        id
    }

    /// A WebSocket client that asked for `nick` (and is expected to get it).
    fn ws(&mut self, now: Now, nick: &str) -> ClientId {
        let id = self.connect(now, ClientKind::Ws, Some(nick));
        assert_eq!(self.hub.nick_of(id), Some(nick));
        id
    }

    fn cmd(&mut self, now: Now, id: ClientId, cmd: Command) {
        self.now = now;
        self.hub.handle(now, id, cmd, None);
        self.persist();
    }

    fn resume(&mut self, now: Now, id: ClientId, token: &str) -> bool {
        self.now = now;
        let resumed = self.hub.resume(now, id, Peer::loopback(), token);
        self.persist();
        resumed
    }

    fn nick_of(&self, id: ClientId) -> String {
        self.hub.nick_of(id).expect("connected").to_string()
    }

    /// What the server does before it sleeps: the turn's batch to the
    /// store (and a late store's answers from the last turn to the hub),
    /// then drain and send. Every delivery is rendered once and appended
    /// to each recipient's lines; the raw effects are returned.
    fn flush(&mut self) -> Vec<Effect> {
        for answer in std::mem::take(&mut self.store.due) {
            self.hub.answer(self.now, answer);
        }
        self.hub.close_batch();
        self.persist();
        self.store.due = std::mem::take(&mut self.store.later);
        let mut effects = Vec::new();
        self.hub.drain_effects(&mut effects);
        for effect in &effects {
            match effect {
                Effect::Deliver { to, event } => {
                    let unique: HashSet<ClientId> = to.iter().collect();
                    assert_eq!(unique.len(), to.len(), "a recipient twice: {effect:?}");
                    assert!(!to.is_empty(), "a delivery to nobody: {effect:?}");
                    if let Event::Message(m) | Event::Reply(Reply::Sent(m, _), _) = event {
                        assert!(
                            self.store
                                .rooms
                                .get(&m.room)
                                // (An edit or a reaction replaces the
                                // stored copy: then its seq is there.)
                                .is_some_and(|s| s
                                    .iter()
                                    .any(|s| Rc::ptr_eq(s, m) || s.seq == m.seq)),
                            "delivered before it was stored: {m:?}"
                        );
                    }
                    for id in to.iter() {
                        self.events.entry(id).or_default().push(event.clone());
                    }
                    let bytes = render(event, "http://127.0.0.1:7878");
                    if bytes.is_empty() {
                        // Typing, reactions, and a kick's or ban's leave
                        // (the `mod` line said it): not line-protocol
                        // events.
                        let silent = match event {
                            Event::Typing(_) => true,
                            Event::Amend(a) => matches!(a.kind, AmendKind::React { .. }),
                            Event::Presence(p) => matches!(
                                p.kind,
                                PresenceKind::Leave(LeaveReason::Kicked | LeaveReason::Banned)
                            ),
                            _ => false,
                        };
                        assert!(silent, "{event:?}");
                        continue;
                    }
                    let text = std::str::from_utf8(&bytes).expect("rendered UTF-8");
                    assert!(text.ends_with('\n'), "unterminated: {text:?}");
                    let rendered: Vec<String> =
                        text.split_terminator('\n').map(str::to_string).collect();
                    for id in to.iter() {
                        self.lines
                            .entry(id)
                            .or_default()
                            .extend(rendered.iter().cloned());
                    }
                }
                Effect::Close(id) | Effect::Replaced(id) => self.closed.push(*id),
            }
        }
        effects
    }

    /// Everything `id` was sent since the last `take` of it.
    fn take(&mut self, id: ClientId) -> Vec<String> {
        self.flush();
        self.lines.remove(&id).unwrap_or_default()
    }

    /// What `id` was sent by the turns so far, without ending another.
    fn sent(&mut self, id: ClientId) -> Vec<String> {
        self.lines.remove(&id).unwrap_or_default()
    }

    /// Forgets what everyone was sent so far.
    fn clear(&mut self) {
        self.flush();
        self.lines.clear();
        self.events.clear();
        self.closed.clear();
    }

    /// Drops the pending effects without rendering them (for big scenarios).
    fn discard(&mut self) {
        for answer in std::mem::take(&mut self.store.due) {
            self.hub.answer(self.now, answer);
        }
        self.hub.close_batch();
        self.persist();
        self.store.due = std::mem::take(&mut self.store.later);
        let mut effects = Vec::new();
        self.hub.drain_effects(&mut effects);
    }

    /// `(seq, from, text)` of every message stored for `r`.
    fn stored(&self, r: &str) -> Vec<(u64, String, String)> {
        self.store
            .rooms
            .get(&room(r))
            .map_or(&[][..], |v| &v[..])
            .iter()
            .map(|m| (m.seq, m.from.clone(), m.text.clone()))
            .collect()
    }

    fn stored_seqs(&self, r: &str) -> Vec<u64> {
        self.stored(r).into_iter().map(|(seq, _, _)| seq).collect()
    }
}

/// The error codes among `events`.
fn errors(events: &[Event]) -> Vec<ErrorCode> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Reply(Reply::Error { code, .. }, _) => Some(*code),
            _ => None,
        })
        .collect()
}

/// Compares lines exactly; an expected line ending in `*` matches any line
/// that starts with the rest and goes on (used for error messages).
#[track_caller]
fn check(actual: &[String], expected: &[&str]) {
    let ok = actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| match e.strip_suffix('*') {
                Some(prefix) => a.starts_with(prefix) && a.len() > prefix.len(),
                None => a == e,
            });
    assert!(
        ok,
        "lines differ\n  actual:   {actual:#?}\n  expected: {expected:#?}"
    );
}

/// `adjective-animal-NN`, as PROTOCOL.md's `quiet-heron-42`.
fn is_generated(nick: &str) -> bool {
    let parts: Vec<&str> = nick.split('-').collect();
    parts.len() == 3
        && parts[..2]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[2].len() == 2
        && parts[2].bytes().all(|b| b.is_ascii_digit())
        && !parts[2].starts_with('0')
}

fn welcome(nick: &str) -> String {
    format!("*** welcome to natter, you are {nick}; /help lists commands")
}

fn say(text: &str) -> Command {
    Command::Say {
        reply_to: None,
        room: None,
        text: text.to_string(),
        action: false,
        cid: None,
    }
}

fn say_in(r: &str, text: &str) -> Command {
    Command::Say {
        reply_to: None,
        room: Some(room(r)),
        text: text.to_string(),
        action: false,
        cid: None,
    }
}

fn me(text: &str) -> Command {
    Command::Say {
        reply_to: None,
        room: None,
        text: text.to_string(),
        action: true,
        cid: None,
    }
}

fn join(r: &str) -> Command {
    Command::Join {
        room: room(r),
        since: None,
    }
}

fn leave(r: &str) -> Command {
    Command::Leave(Some(room(r)))
}

fn leave_current() -> Command {
    Command::Leave(None)
}

fn who(r: Option<&str>) -> Command {
    Command::Who(r.map(room))
}

fn dm(to: &str, text: &str) -> Command {
    Command::Dm {
        to: to.to_string(),
        text: text.to_string(),
        cid: None,
    }
}

fn nick(n: &str) -> Command {
    Command::Nick(n.to_string())
}

fn history(before: Option<u64>, after: Option<u64>, limit: usize) -> Command {
    Command::History {
        room: None,
        page: Page {
            before,
            after,
            limit,
        },
    }
}

fn quit(reason: Option<&str>) -> Command {
    Command::Quit(reason.map(str::to_string))
}

/// A history block of `#lobby` messages `m{seq}` by alice at 12:00:00.
fn lobby_block(head: &str, seqs: impl IntoIterator<Item = u64>) -> Vec<String> {
    let mut out = vec![format!("*** history of #lobby {head}")];
    out.extend(
        seqs.into_iter()
            .map(|i| format!("[12:00:00] #lobby <alice> m{i}")),
    );
    out.push("*** end of history".to_string());
    out
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------
// Connect
// ---------------------------------------------------------------------------

#[test]
fn connect_welcomes_with_a_generated_nick_and_joins_the_lobby() {
    let mut t = Chat::new();
    let a = t.connect(at(12, 0, 0), ClientKind::Line, None);
    let na = t.nick_of(a);
    assert!(is_generated(&na), "{na}");
    check(
        &t.take(a),
        &[
            &welcome(&na),
            &format!("*** you joined #lobby (1 here: {na})"),
        ],
    );

    let b = t.connect(at(12, 0, 1), ClientKind::Line, None);
    let nb = t.nick_of(b);
    assert!(is_generated(&nb), "{nb}");
    assert_ne!(na.to_ascii_lowercase(), nb.to_ascii_lowercase());
    let mut both = [na.clone(), nb.clone()];
    both.sort_by_key(|n| n.to_ascii_lowercase());
    check(
        &t.take(b),
        &[
            &welcome(&nb),
            &format!("*** you joined #lobby (2 here: {})", both.join(", ")),
        ],
    );
    check(&t.take(a), &[&format!("[12:00:01] #lobby --> {nb} joined")]);
    assert_eq!(t.hub.clients(), 2);
    assert_eq!(t.hub.rooms(), 1);
}

#[test]
fn members_are_listed_case_insensitively_and_others_see_the_join() {
    let mut t = Chat::new();
    let bob = t.line(at(12, 0, 1), "bob");
    let alice = t.line(at(12, 0, 2), "Alice");
    let carol = t.line(at(12, 0, 3), "carol");
    let dave = t.line(at(12, 0, 4), "DAVE");
    check(
        &t.take(bob),
        &[
            &welcome("bob"),
            "*** you joined #lobby (1 here: bob)",
            "[12:00:02] #lobby --> Alice joined",
            "[12:00:03] #lobby --> carol joined",
            "[12:00:04] #lobby --> DAVE joined",
        ],
    );
    check(
        &t.take(alice),
        &[
            &welcome("Alice"),
            "*** you joined #lobby (2 here: Alice, bob)",
            "[12:00:03] #lobby --> carol joined",
            "[12:00:04] #lobby --> DAVE joined",
        ],
    );
    check(
        &t.take(carol),
        &[
            &welcome("carol"),
            "*** you joined #lobby (3 here: Alice, bob, carol)",
            "[12:00:04] #lobby --> DAVE joined",
        ],
    );
    check(
        &t.take(dave),
        &[
            &welcome("DAVE"),
            "*** you joined #lobby (4 here: Alice, bob, carol, DAVE)",
        ],
    );
}

#[test]
fn a_websocket_client_joins_no_room() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    t.clear();
    let w = t.connect(at(12, 0, 5), ClientKind::Ws, None);
    let nw = t.nick_of(w);
    assert!(is_generated(&nw), "{nw}");
    check(&t.take(w), &[&welcome(&nw)]);
    check(&t.take(alice), &[]);
    t.cmd(at(12, 0, 5), alice, who(None));
    check(&t.take(alice), &["*** #lobby (1): alice"]);

    // In no room, a say without a room and a /who without one have no target.
    t.cmd(at(12, 0, 6), w, say("hello?"));
    t.cmd(at(12, 0, 6), w, who(None));
    check(&t.take(w), &["!!! not_in_room: *", "!!! not_in_room: *"]);

    // Once it joins, it gets its own messages back (its acknowledgement).
    t.cmd(at(12, 0, 7), w, join("lobby"));
    let mut both = ["alice".to_string(), nw.clone()];
    both.sort_by_key(|n| n.to_ascii_lowercase());
    check(
        &t.take(w),
        &[&format!(
            "*** you joined #lobby (2 here: {})",
            both.join(", ")
        )],
    );
    check(
        &t.take(alice),
        &[&format!("[12:00:07] #lobby --> {nw} joined")],
    );
    t.cmd(at(12, 0, 8), w, say_in("lobby", "hi"));
    let line = format!("[12:00:08] #lobby <{nw}> hi");
    check(&t.take(w), &[&line]);
    check(&t.take(alice), &[&line]);
}

#[test]
fn connect_with_a_wanted_nick() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    check(
        &t.take(alice),
        &[&welcome("alice"), "*** you joined #lobby (1 here: alice)"],
    );

    // Invalid: a generated nick, then the error, then the usual join.
    let x = t.connect(at(12, 0, 1), ClientKind::Line, Some("9lives"));
    let nx = t.nick_of(x);
    assert!(is_generated(&nx), "{nx}");
    let mut members = ["alice".to_string(), nx.clone()];
    members.sort_by_key(|n| n.to_ascii_lowercase());
    check(
        &t.take(x),
        &[
            &welcome(&nx),
            "!!! nick_invalid: *",
            &format!("*** you joined #lobby (2 here: {})", members.join(", ")),
        ],
    );

    // Taken, compared case-insensitively.
    let y = t.connect(at(12, 0, 2), ClientKind::Line, Some("ALICE"));
    let ny = t.nick_of(y);
    assert!(is_generated(&ny), "{ny}");
    check(&t.take(y)[..2], &[&welcome(&ny), "!!! nick_taken: *"]);
    check(
        &t.take(alice),
        &[
            &format!("[12:00:01] #lobby --> {nx} joined"),
            &format!("[12:00:02] #lobby --> {ny} joined"),
        ],
    );

    // The same for WebSocket clients, which join nothing.
    let w1 = t.ws(at(12, 0, 3), "Wes");
    check(&t.take(w1), &[&welcome("Wes")]);
    let w2 = t.connect(at(12, 0, 4), ClientKind::Ws, Some("wES"));
    let n2 = t.nick_of(w2);
    assert!(is_generated(&n2), "{n2}");
    check(&t.take(w2), &[&welcome(&n2), "!!! nick_taken: *"]);
    let w3 = t.connect(at(12, 0, 5), ClientKind::Ws, Some("a b"));
    let n3 = t.nick_of(w3);
    assert!(is_generated(&n3), "{n3}");
    check(&t.take(w3), &[&welcome(&n3), "!!! nick_invalid: *"]);
    check(&t.take(alice), &[]);
}

// ---------------------------------------------------------------------------
// History on join
// ---------------------------------------------------------------------------

#[test]
fn join_replays_the_latest_history() {
    let mut t = Chat::with_history(3);
    let alice = t.line(at(12, 0, 0), "alice");
    t.cmd(at(12, 0, 1), alice, say("first"));
    let bob = t.line(at(12, 0, 2), "bob");
    check(
        &t.take(bob),
        &[
            &welcome("bob"),
            "*** you joined #lobby (2 here: alice, bob)",
            "*** history of #lobby (1 message)",
            "[12:00:01] #lobby <alice> first",
            "*** end of history",
        ],
    );

    t.cmd(at(12, 0, 3), alice, say("second"));
    t.cmd(at(12, 0, 4), alice, me("waves"));
    t.cmd(at(12, 0, 5), bob, say("fourth"));
    t.cmd(at(12, 0, 6), alice, say("fifth"));
    let carol = t.line(at(12, 1, 0), "carol");
    check(
        &t.take(carol),
        &[
            &welcome("carol"),
            "*** you joined #lobby (3 here: alice, bob, carol)",
            "*** history of #lobby (3 messages)",
            "[12:00:04] #lobby * alice waves",
            "[12:00:05] #lobby <bob> fourth",
            "[12:00:06] #lobby <alice> fifth",
            "*** end of history",
        ],
    );

    // A room without messages: no block at all.
    t.cmd(at(12, 1, 1), carol, join("dev"));
    check(&t.take(carol), &["*** you joined #dev (1 here: carol)"]);
}

#[test]
fn a_room_that_emptied_keeps_its_history_and_seq() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    t.cmd(at(12, 0, 1), alice, join("dev"));
    t.cmd(at(12, 0, 2), alice, say("one"));
    t.flush();
    t.cmd(at(12, 0, 3), alice, me("hums"));
    t.flush();
    assert_eq!(t.hub.rooms(), 2);
    t.cmd(at(12, 0, 4), alice, leave("dev"));
    assert_eq!(t.hub.rooms(), 1, "an empty room leaves memory");
    t.clear();

    let bob = t.line(at(12, 0, 5), "bob");
    t.cmd(at(12, 0, 6), bob, join("dev"));
    check(
        &t.take(bob),
        &[
            &welcome("bob"),
            "*** you joined #lobby (2 here: alice, bob)",
            "*** you joined #dev (1 here: bob)",
            "*** history of #dev (2 messages)",
            "[12:00:02] #dev <alice> one",
            "[12:00:03] #dev * alice hums",
            "*** end of history",
        ],
    );
    t.cmd(at(12, 0, 7), bob, say("three"));
    t.flush();
    assert_eq!(t.stored_seqs("dev"), [1, 2, 3]);
    t.cmd(at(12, 0, 8), bob, history(None, None, 20));
    check(
        &t.take(bob),
        &[
            "*** history of #dev (3 messages)",
            "[12:00:02] #dev <alice> one",
            "[12:00:03] #dev * alice hums",
            "[12:00:07] #dev <bob> three",
            "*** end of history",
        ],
    );
}

/// One read of `hi\n/leave\n/join lobby\nho\n` from a netcat user alone in
/// the lobby is handled in one loop iteration, before the commit.
#[test]
fn seq_carries_on_when_a_room_empties_and_refills_before_the_commit() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    t.clear();
    t.cmd(at(12, 0, 1), alice, say("hi"));
    t.cmd(at(12, 0, 1), alice, leave_current());
    t.cmd(at(12, 0, 1), alice, join("lobby"));
    t.cmd(at(12, 0, 1), alice, say("ho"));
    check(
        &t.take(alice),
        &[
            "*** you left #lobby",
            "*** you joined #lobby (1 here: alice)",
            "*** history of #lobby (1 message)",
            "[12:00:01] #lobby <alice> hi",
            "*** end of history",
        ],
    );
    assert_eq!(
        t.stored_seqs("lobby"),
        [1, 2],
        "seq must not repeat (PROTOCOL.md: no gaps and no repeats)"
    );
}

// ---------------------------------------------------------------------------
// Say
// ---------------------------------------------------------------------------

#[test]
fn say_goes_to_the_others_without_echo_to_a_line_sender() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    let w = t.ws(at(12, 0, 0), "webby");
    t.cmd(at(12, 0, 0), w, join("lobby"));
    t.clear();

    t.cmd(at(12, 34, 56), alice, say("hello"));
    check(&t.take(alice), &[]);
    check(&t.take(bob), &["[12:34:56] #lobby <alice> hello"]);
    check(&t.take(w), &["[12:34:56] #lobby <alice> hello"]);

    t.cmd(at(12, 34, 57), alice, me("waves"));
    check(&t.take(alice), &[]);
    check(&t.take(bob), &["[12:34:57] #lobby * alice waves"]);
    check(&t.take(w), &["[12:34:57] #lobby * alice waves"]);

    // Empty or blank text says nothing.
    t.cmd(at(12, 34, 58), alice, say("  "));
    check(&t.take(alice), &["!!! bad_request: *"]);
    check(&t.take(bob), &[]);
    assert_eq!(t.hub.messages_total(), 2);
}

#[test]
fn say_in_no_room_is_not_in_room() {
    let mut t = Chat::new();
    let alice = t.line(at(13, 0, 0), "alice");
    let bob = t.line(at(13, 0, 0), "bob");
    t.clear();
    t.cmd(at(13, 0, 1), alice, leave_current());
    check(&t.take(alice), &["*** you left #lobby"]);
    check(&t.take(bob), &["[13:00:01] #lobby <-- alice left"]);

    t.cmd(at(13, 0, 2), alice, say("anyone?"));
    t.cmd(at(13, 0, 2), alice, me("looks around"));
    t.cmd(at(13, 0, 2), alice, say_in("lobby", "let me in"));
    check(
        &t.take(alice),
        &[
            "!!! not_in_room: *",
            "!!! not_in_room: *",
            "!!! not_in_room: *",
        ],
    );
    check(&t.take(bob), &[]);
    assert!(t.stored("lobby").is_empty());
}

#[test]
fn text_over_max_message_is_too_long() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.clear();

    let just = "x".repeat(4000);
    t.cmd(at(12, 0, 1), alice, say(&just));
    check(
        &t.take(bob),
        &[&format!("[12:00:01] #lobby <alice> {just}")],
    );
    let wide = "é".repeat(2000); // 4000 bytes
    t.cmd(at(12, 0, 2), alice, say(&wide));
    check(
        &t.take(bob),
        &[&format!("[12:00:02] #lobby <alice> {wide}")],
    );

    t.cmd(at(12, 0, 3), alice, say(&"x".repeat(4001)));
    t.cmd(at(12, 0, 3), alice, say(&format!("{wide}x")));
    t.cmd(at(12, 0, 3), alice, me(&"x".repeat(4001)));
    t.cmd(at(12, 0, 3), alice, dm("bob", &"x".repeat(4001)));
    check(
        &t.take(alice),
        &[
            "!!! too_long: *",
            "!!! too_long: *",
            "!!! too_long: *",
            "!!! too_long: *",
        ],
    );
    check(&t.take(bob), &[]);
    assert_eq!(t.stored_seqs("lobby"), [1, 2]);
}

#[test]
fn control_characters_become_replacement_characters() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.clear();

    t.cmd(
        at(12, 0, 1),
        alice,
        say("a\x1b[31mb\tc\u{7f}d\u{85}e\u{9f}f\u{a0}g\u{0}h\rline\nbreak"),
    );
    let clean =
        "a\u{FFFD}[31mb\tc\u{FFFD}d\u{FFFD}e\u{FFFD}f\u{a0}g\u{FFFD}h\u{FFFD}line\u{FFFD}break";
    check(
        &t.take(bob),
        &[&format!("[12:00:01] #lobby <alice> {clean}")],
    );
    assert_eq!(
        t.stored("lobby"),
        [(1, "alice".to_string(), clean.to_string())]
    );

    t.cmd(at(12, 0, 2), alice, me("\x07beeps"));
    check(&t.take(bob), &["[12:00:02] #lobby * alice \u{FFFD}beeps"]);
    t.cmd(at(12, 0, 3), alice, dm("bob", "\x1b]0;owned\x07"));
    check(
        &t.take(bob),
        &["[12:00:03] (dm) <alice> \u{FFFD}]0;owned\u{FFFD}"],
    );
}

#[test]
fn seq_counts_per_room() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.cmd(at(12, 0, 0), alice, join("dev"));
    t.cmd(at(12, 0, 0), bob, join("dev"));
    t.clear();

    t.cmd(at(12, 0, 1), alice, say_in("lobby", "l1"));
    t.cmd(at(12, 0, 2), bob, say_in("dev", "d1"));
    t.cmd(at(12, 0, 3), alice, say("d2")); // alice's current room is #dev
    let first = t.flush();
    t.cmd(at(12, 0, 4), bob, say_in("lobby", "l2"));
    t.cmd(at(12, 0, 5), alice, say_in("lobby", "l3"));
    let second = t.flush();

    let seqs: Vec<(String, u64)> = first
        .iter()
        .chain(&second)
        .filter_map(|e| match e {
            Effect::Deliver {
                event: Event::Message(m),
                ..
            } => Some((m.room.to_string(), m.seq)),
            _ => None,
        })
        .collect();
    let expected = [
        ("lobby", 1),
        ("dev", 1),
        ("dev", 2),
        ("lobby", 2),
        ("lobby", 3),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|&(r, s)| (r.to_string(), s)).collect();
    assert_eq!(seqs, expected);
    assert_eq!(t.stored_seqs("lobby"), [1, 2, 3]);
    assert_eq!(t.stored_seqs("dev"), [1, 2]);
    check(
        &t.take(bob),
        &[
            "[12:00:01] #lobby <alice> l1",
            "[12:00:03] #dev <alice> d2",
            "[12:00:05] #lobby <alice> l3",
        ],
    );
}

// ---------------------------------------------------------------------------
// Nick
// ---------------------------------------------------------------------------

#[test]
fn nick_change_is_confirmed_and_shown_once_per_shared_room() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    let carol = t.line(at(12, 0, 0), "carol");
    t.cmd(at(12, 0, 0), alice, join("dev"));
    t.cmd(at(12, 0, 0), bob, join("dev"));
    t.cmd(at(12, 0, 0), alice, join("ops"));
    t.clear();

    t.cmd(at(12, 5, 0), alice, nick("alicia"));
    check(&t.take(alice), &["*** you are now known as alicia"]);
    check(
        &t.take(bob),
        &[
            "[12:05:00] #lobby --- alice is now known as alicia",
            "[12:05:00] #dev --- alice is now known as alicia",
        ],
    );
    check(
        &t.take(carol),
        &["[12:05:00] #lobby --- alice is now known as alicia"],
    );
    assert_eq!(t.nick_of(alice), "alicia");
    t.cmd(at(12, 5, 1), carol, who(None));
    check(&t.take(carol), &["*** #lobby (3): alicia, bob, carol"]);
    t.cmd(at(12, 5, 2), alice, say("hi"));
    check(&t.take(bob), &[]); // #ops is alice's current room; bob is not in it
    t.cmd(at(12, 5, 3), alice, say_in("lobby", "hi"));
    check(&t.take(carol), &["[12:05:03] #lobby <alicia> hi"]);
}

#[test]
fn nick_taken_or_invalid_changes_nothing() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.clear();

    for taken in ["alice", "ALICE", "aLiCe"] {
        t.cmd(at(12, 0, 1), bob, nick(taken));
        check(&t.take(bob), &["!!! nick_taken: *"]);
    }
    let too_long = "a".repeat(25);
    for bad in [
        "",
        "1bob",
        "_bob",
        "-bob",
        "b b",
        "bob!",
        "bøb",
        too_long.as_str(),
    ] {
        t.cmd(at(12, 0, 2), bob, nick(bad));
        check(&t.take(bob), &["!!! nick_invalid: *"]);
    }
    assert_eq!(t.nick_of(bob), "bob");
    check(&t.take(alice), &[]);

    // 24 characters is fine.
    let longest = format!("b{}", "0".repeat(23));
    t.cmd(at(12, 0, 3), bob, nick(&longest));
    check(
        &t.take(bob),
        &[&format!("*** you are now known as {longest}")],
    );
}

#[test]
fn changing_only_the_case_of_your_own_nick_is_allowed() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.clear();

    t.cmd(at(12, 1, 0), alice, nick("ALICE"));
    check(&t.take(alice), &["*** you are now known as ALICE"]);
    check(
        &t.take(bob),
        &["[12:01:00] #lobby --- alice is now known as ALICE"],
    );
    assert_eq!(t.nick_of(alice), "ALICE");

    // The very same nick: confirmed, nobody told.
    t.cmd(at(12, 1, 1), alice, nick("ALICE"));
    check(&t.take(alice), &["*** you are now known as ALICE"]);
    check(&t.take(bob), &[]);

    // Still held, whatever the case.
    t.cmd(at(12, 1, 2), bob, nick("alice"));
    check(&t.take(bob), &["!!! nick_taken: *"]);
}

#[test]
fn the_old_nick_becomes_free() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    let carol = t.line(at(12, 0, 0), "carol");
    t.clear();

    t.cmd(at(12, 1, 0), alice, nick("alicia"));
    t.cmd(at(12, 1, 1), bob, nick("Alice"));
    check(
        &t.take(bob),
        &[
            "[12:01:00] #lobby --- alice is now known as alicia",
            "*** you are now known as Alice",
        ],
    );
    check(
        &t.take(alice),
        &[
            "*** you are now known as alicia",
            "[12:01:01] #lobby --- bob is now known as Alice",
        ],
    );

    t.cmd(at(12, 1, 2), carol, dm("alice", "which one?"));
    t.cmd(at(12, 1, 2), carol, dm("bob", "still there?"));
    check(&t.take(bob), &["[12:01:02] (dm) <carol> which one?"]);
    check(&t.take(alice), &[]);
    check(
        &t.take(carol),
        &[
            "[12:01:00] #lobby --- alice is now known as alicia",
            "[12:01:01] #lobby --- bob is now known as Alice",
            "[12:01:02] (dm to Alice) <carol> which one?",
            "!!! no_such_user: *",
        ],
    );

    let d = t.connect(at(12, 2, 0), ClientKind::Ws, Some("bob"));
    check(&t.take(d), &[&welcome("bob")]);
    let e = t.connect(at(12, 2, 0), ClientKind::Ws, Some("ALICIA"));
    check(&t.take(e)[1..], &["!!! nick_taken: *"]);
}

// ---------------------------------------------------------------------------
// Join, leave, the current room
// ---------------------------------------------------------------------------

#[test]
fn rooms_are_case_insensitive_and_the_hash_is_ignored() {
    assert_eq!(room("#DeV").as_str(), "dev");
    assert_eq!(room("Dev_9-x").as_str(), "dev_9-x");
    for bad in ["", "#", "##dev", "de v", "dév", "r".repeat(33).as_str()] {
        assert_eq!(
            RoomName::parse(bad).map_err(|e| e.code),
            Err(ErrorCode::RoomInvalid),
            "{bad:?}"
        );
    }

    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.clear();
    t.cmd(at(12, 0, 1), alice, join("#DeV"));
    t.cmd(at(12, 0, 2), bob, join("DEV"));
    check(
        &t.take(alice),
        &[
            "*** you joined #dev (1 here: alice)",
            "[12:00:02] #dev --> bob joined",
        ],
    );
    check(&t.take(bob), &["*** you joined #dev (2 here: alice, bob)"]);
    assert_eq!(t.hub.rooms(), 2);
    t.cmd(at(12, 0, 3), bob, say_in("#Dev", "same room"));
    check(&t.take(alice), &["[12:00:03] #dev <bob> same room"]);
}

#[test]
fn join_of_a_room_you_are_in_makes_it_current() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.cmd(at(12, 0, 0), bob, join("dev"));
    t.clear();

    t.cmd(at(12, 0, 1), alice, join("#Lobby"));
    check(&t.take(alice), &["*** #lobby is your current room"]);
    t.cmd(at(12, 0, 2), alice, join("dev"));
    t.cmd(at(12, 0, 3), alice, say("in dev"));
    t.cmd(at(12, 0, 4), alice, join("LOBBY"));
    t.cmd(at(12, 0, 5), alice, say("in lobby"));
    t.cmd(at(12, 0, 6), alice, join("dev"));
    check(
        &t.take(alice),
        &[
            "*** you joined #dev (2 here: alice, bob)",
            "*** #lobby is your current room",
            "*** #dev is your current room",
        ],
    );
    check(
        &t.take(bob),
        &[
            "[12:00:02] #dev --> alice joined",
            "[12:00:03] #dev <alice> in dev",
            "[12:00:05] #lobby <alice> in lobby",
        ],
    );
}

#[test]
fn leaving_the_current_room_makes_the_latest_joined_remaining_room_current() {
    let mut t = Chat::new();
    let alice = t.line(at(13, 0, 0), "alice");
    let bob = t.line(at(13, 0, 0), "bob");
    for r in ["a", "b", "c"] {
        t.cmd(at(13, 0, 0), alice, join(r));
        t.cmd(at(13, 0, 0), bob, join(r));
    }
    t.clear();

    // #a becomes current again by /join; leaving it falls back to #c, the
    // most recently joined, not to whatever was current before.
    t.cmd(at(13, 0, 1), alice, join("a"));
    t.cmd(at(13, 0, 2), alice, say("x"));
    t.cmd(at(13, 0, 3), alice, leave_current());
    t.cmd(at(13, 0, 4), alice, say("y"));
    // Leaving a room that is not current keeps the current one.
    t.cmd(at(13, 0, 5), alice, leave("lobby"));
    t.cmd(at(13, 0, 6), alice, say("z"));
    t.cmd(at(13, 0, 7), alice, leave_current());
    t.cmd(at(13, 0, 8), alice, say("w"));
    t.cmd(at(13, 0, 9), alice, leave_current());
    t.cmd(at(13, 0, 10), alice, say("v"));
    check(
        &t.take(alice),
        &[
            "*** #a is your current room",
            "*** you left #a",
            "*** you left #lobby",
            "*** you left #c",
            "*** you left #b",
            "!!! not_in_room: *",
        ],
    );
    check(
        &t.take(bob),
        &[
            "[13:00:02] #a <alice> x",
            "[13:00:03] #a <-- alice left",
            "[13:00:04] #c <alice> y",
            "[13:00:05] #lobby <-- alice left",
            "[13:00:06] #c <alice> z",
            "[13:00:07] #c <-- alice left",
            "[13:00:08] #b <alice> w",
            "[13:00:09] #b <-- alice left",
        ],
    );
}

#[test]
fn leave_of_a_room_you_are_not_in_is_not_in_room() {
    let mut t = Chat::new();
    let alice = t.line(at(13, 0, 0), "alice");
    let bob = t.line(at(13, 0, 0), "bob");
    t.cmd(at(13, 0, 0), bob, join("dev"));
    t.clear();

    t.cmd(at(13, 0, 1), alice, leave("dev"));
    t.cmd(at(13, 0, 1), alice, leave("nowhere"));
    check(
        &t.take(alice),
        &["!!! not_in_room: *", "!!! not_in_room: *"],
    );
    check(&t.take(bob), &[]);

    t.cmd(at(13, 0, 2), alice, leave("#LOBBY"));
    t.cmd(at(13, 0, 3), alice, leave_current());
    check(
        &t.take(alice),
        &["*** you left #lobby", "!!! not_in_room: *"],
    );
    // The plain `left`: no reason in parentheses after a /leave.
    check(&t.take(bob), &["[13:00:02] #lobby <-- alice left"]);
}

// ---------------------------------------------------------------------------
// Create and /rooms
// ---------------------------------------------------------------------------

#[test]
fn create_makes_an_unlisted_room_joinable_by_its_code() {
    let mut t = Chat::new();
    let alice = t.line(at(14, 0, 0), "alice");
    let bob = t.line(at(14, 0, 0), "bob");
    t.clear();

    t.cmd(at(14, 0, 1), alice, Command::Create);
    let lines = t.take(alice);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let code = lines[0]
        .strip_prefix("*** created #")
        .and_then(|rest| rest.split(',').next())
        .expect("a created line")
        .to_string();
    assert_eq!(code.len(), 6, "{code}");
    assert!(
        code.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{code}"
    );
    check(
        &lines,
        &[
            &format!("*** created #{code}, an unlisted room: others join with /join {code}"),
            &format!("*** you joined #{code} (1 here: alice)"),
        ],
    );
    check(&t.take(bob), &[]);

    t.cmd(at(14, 0, 2), bob, Command::Rooms);
    check(&t.take(bob), &["*** rooms: #lobby (2)"]);

    t.cmd(
        at(14, 0, 3),
        bob,
        join(&format!("#{}", code.to_uppercase())),
    );
    check(
        &t.take(bob),
        &[&format!("*** you joined #{code} (2 here: alice, bob)")],
    );
    check(
        &t.take(alice),
        &[&format!("[14:00:03] #{code} --> bob joined")],
    );
    t.cmd(at(14, 0, 4), bob, Command::Rooms);
    check(&t.take(bob), &["*** rooms: #lobby (2)"]);
    t.cmd(at(14, 0, 5), bob, who(Some(&code)));
    check(&t.take(bob), &[&format!("*** #{code} (2): alice, bob")]);

    // Emptied and joined again by code: still unlisted.
    t.cmd(at(14, 0, 6), alice, leave(&code));
    t.cmd(at(14, 0, 6), bob, leave(&code));
    t.cmd(at(14, 0, 7), bob, join(&code));
    t.cmd(at(14, 0, 8), bob, Command::Rooms);
    check(
        &t.take(bob),
        &[
            &format!("[14:00:06] #{code} <-- alice left"),
            &format!("*** you left #{code}"),
            &format!("*** you joined #{code} (1 here: bob)"),
            "*** rooms: #lobby (2)",
        ],
    );

    check(&t.take(alice), &[&format!("*** you left #{code}")]);

    // Another /create makes another code.
    t.cmd(at(14, 0, 9), alice, Command::Create);
    let again = t.take(alice);
    assert_eq!(again.len(), 2, "{again:#?}");
    assert!(again[1].starts_with("*** you joined #"), "{again:#?}");
    assert!(!again[1].contains(&code), "{again:#?}");
}

#[test]
fn rooms_lists_the_busiest_first() {
    let mut t = Chat::new();
    let w = t.ws(at(14, 0, 0), "watcher");
    t.cmd(at(14, 0, 0), w, Command::Rooms);
    check(&t.take(w), &[&welcome("watcher"), "*** rooms: none"]);

    let alice = t.line(at(14, 0, 1), "alice");
    let bob = t.line(at(14, 0, 1), "bob");
    let carol = t.line(at(14, 0, 1), "carol");
    t.cmd(at(14, 0, 2), alice, join("dev"));
    t.cmd(at(14, 0, 2), bob, join("dev"));
    t.cmd(at(14, 0, 2), carol, join("zed"));
    t.cmd(at(14, 0, 2), carol, join("abc"));
    t.cmd(at(14, 0, 2), carol, Command::Create);
    t.cmd(at(14, 0, 3), w, Command::Rooms);
    check(
        &t.take(w),
        &["*** rooms: #lobby (3), #dev (2), #abc (1), #zed (1)"],
    );

    for c in [alice, bob, carol] {
        t.cmd(at(14, 0, 4), c, quit(None));
    }
    t.cmd(at(14, 0, 5), w, Command::Create);
    t.cmd(at(14, 0, 5), w, Command::Rooms);
    let lines = t.take(w);
    check(&lines[2..], &["*** rooms: none"]);
    assert_eq!(t.hub.rooms(), 1);
}

// ---------------------------------------------------------------------------
// Who, DMs
// ---------------------------------------------------------------------------

#[test]
fn who_lists_a_room_or_the_current_one() {
    let mut t = Chat::new();
    let alice = t.line(at(15, 0, 0), "alice");
    let _bob = t.line(at(15, 0, 0), "Bob");
    let carol = t.line(at(15, 0, 0), "carol");
    t.cmd(at(15, 0, 0), carol, join("dev"));
    t.clear();

    t.cmd(at(15, 0, 1), alice, who(None));
    t.cmd(at(15, 0, 1), alice, who(Some("#DEV")));
    check(
        &t.take(alice),
        &["*** #lobby (3): alice, Bob, carol", "*** #dev (1): carol"],
    );
    t.cmd(at(15, 0, 2), carol, who(None));
    check(&t.take(carol), &["*** #dev (1): carol"]);

    t.cmd(at(15, 0, 3), alice, leave_current());
    t.cmd(at(15, 0, 3), alice, who(None));
    check(
        &t.take(alice),
        &["*** you left #lobby", "!!! not_in_room: *"],
    );
}

#[test]
fn direct_messages_and_their_copies() {
    let mut t = Chat::new();
    let alice = t.line(at(15, 0, 0), "alice");
    let bob = t.line(at(15, 0, 0), "bob");
    let carol = t.line(at(15, 0, 0), "carol");
    let w = t.ws(at(15, 0, 0), "Wes");
    t.clear();

    t.cmd(at(15, 0, 1), alice, dm("BOB", "psst"));
    check(&t.take(bob), &["[15:00:01] (dm) <alice> psst"]);
    check(&t.take(alice), &["[15:00:01] (dm to bob) <alice> psst"]);
    check(&t.take(carol), &[]);

    t.cmd(at(15, 0, 2), alice, dm("wes", "hi"));
    check(&t.take(w), &["[15:00:02] (dm) <alice> hi"]);
    check(&t.take(alice), &["[15:00:02] (dm to Wes) <alice> hi"]);
    t.cmd(at(15, 0, 3), w, dm("alice", "hello"));
    check(&t.take(alice), &["[15:00:03] (dm) <Wes> hello"]);
    check(&t.take(w), &["[15:00:03] (dm to alice) <Wes> hello"]);

    t.cmd(at(15, 0, 4), alice, dm("nobody", "hello?"));
    t.cmd(at(15, 0, 4), alice, dm("#lobby", "hello?"));
    check(
        &t.take(alice),
        &["!!! no_such_user: *", "!!! no_such_user: *"],
    );

    // To yourself: it arrives, and you get the copy too.
    t.cmd(at(15, 0, 5), alice, dm("alice", "note to self"));
    check(
        &t.take(alice),
        &[
            "[15:00:05] (dm) <alice> note to self",
            "[15:00:05] (dm to alice) <alice> note to self",
        ],
    );

    // Gone users are no one; DMs are not stored.
    t.cmd(at(15, 0, 6), bob, quit(None));
    t.cmd(at(15, 0, 7), alice, dm("bob", "still there?"));
    check(
        &t.take(alice),
        &[
            "[15:00:06] #lobby <-- bob left (quit)",
            "!!! no_such_user: *",
        ],
    );
    assert!(t.stored("lobby").is_empty());
    assert_eq!(t.hub.messages_total(), 0);
}

// ---------------------------------------------------------------------------
// /history
// ---------------------------------------------------------------------------

#[test]
fn history_pages_with_exclusive_bounds_and_clamps_at_200() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.cmd(at(12, 0, 0), bob, history(None, None, DEFAULT_HISTORY_PAGE));
    check(
        &t.take(bob)[2..],
        &["*** history of #lobby (0 messages)", "*** end of history"],
    );
    for i in 1..=250 {
        t.cmd(at(12, 0, 0), alice, say(&format!("m{i}")));
        if i % 50 == 0 {
            t.flush();
        }
    }
    t.clear();

    t.cmd(at(12, 1, 0), bob, history(None, None, DEFAULT_HISTORY_PAGE));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(20 messages)", 231..=250)),
    );
    t.cmd(at(12, 1, 0), bob, history(None, None, 1000));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(200 messages)", 51..=250)),
    );
    t.cmd(at(12, 1, 0), bob, history(None, Some(0), 201));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(200 messages)", 1..=200)),
    );
    t.cmd(at(12, 1, 0), bob, history(Some(100), None, 3));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(3 messages)", 97..=99)),
    );
    t.cmd(at(12, 1, 0), bob, history(None, Some(10), 5));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(5 messages)", 11..=15)),
    );
    t.cmd(at(12, 1, 0), bob, history(None, Some(245), 50));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(5 messages)", 246..=250)),
    );
    t.cmd(at(12, 1, 0), bob, history(None, Some(249), 50));
    check(&t.take(bob), &as_strs(&lobby_block("(1 message)", [250])));
    t.cmd(at(12, 1, 0), bob, history(Some(100), Some(95), 50));
    check(
        &t.take(bob),
        &as_strs(&lobby_block("(4 messages)", 96..=99)),
    );
    t.cmd(at(12, 1, 0), bob, history(Some(1), None, 50));
    check(&t.take(bob), &as_strs(&lobby_block("(0 messages)", [])));
    t.cmd(at(12, 1, 0), bob, history(None, Some(250), 50));
    check(&t.take(bob), &as_strs(&lobby_block("(0 messages)", [])));

    // Joining replays the latest --history (50) messages.
    let carol = t.line(at(12, 2, 0), "carol");
    let lines = t.take(carol);
    check(
        &lines[2..],
        &as_strs(&lobby_block("(50 messages)", 201..=250)),
    );

    // In no room, /history has nothing to show.
    t.cmd(at(12, 2, 1), carol, leave_current());
    t.cmd(at(12, 2, 1), carol, history(None, None, 20));
    check(
        &t.take(carol),
        &["*** you left #lobby", "!!! not_in_room: *"],
    );
}

// ---------------------------------------------------------------------------
// Quit and disconnect
// ---------------------------------------------------------------------------

#[test]
fn quit_says_bye_closes_and_frees_the_nick() {
    let mut t = Chat::new();
    let alice = t.line(at(16, 0, 0), "alice");
    let bob = t.line(at(16, 0, 0), "bob");
    let carol = t.line(at(16, 0, 0), "carol");
    t.cmd(at(16, 0, 0), alice, join("dev"));
    t.cmd(at(16, 0, 0), bob, join("dev"));
    t.cmd(at(16, 0, 0), alice, join("solo"));
    t.clear();
    assert_eq!(t.hub.rooms(), 3);

    t.cmd(at(16, 0, 1), alice, quit(None));
    let effects = t.flush();
    let bye = effects
        .iter()
        .position(|e| {
            matches!(e, Effect::Deliver { to, event: Event::Reply(Reply::Bye, _) } if to.iter().eq([alice]))
        })
        .expect("a bye");
    let close = effects
        .iter()
        .position(|e| e == &Effect::Close(alice))
        .expect("a close");
    assert!(bye < close, "{effects:#?}");
    assert_eq!(t.closed, [alice]);
    check(&t.take(alice), &["*** bye"]);
    check(
        &t.take(bob),
        &[
            "[16:00:01] #lobby <-- alice left (quit)",
            "[16:00:01] #dev <-- alice left (quit)",
        ],
    );
    check(&t.take(carol), &["[16:00:01] #lobby <-- alice left (quit)"]);
    assert_eq!(t.hub.clients(), 2);
    assert_eq!(t.hub.rooms(), 2, "#solo emptied and left memory");

    // Whatever the closing connection still sends is ignored.
    t.cmd(at(16, 0, 2), alice, say("one more thing"));
    t.cmd(at(16, 0, 2), alice, nick("zed"));
    assert!(t.flush().is_empty());

    // The nick is free again.
    let again = t.line(at(16, 0, 3), "Alice");
    check(
        &t.take(again),
        &[
            &welcome("Alice"),
            "*** you joined #lobby (3 here: Alice, bob, carol)",
        ],
    );
}

#[test]
fn quit_with_a_reason_shows_it_sanitized() {
    let mut t = Chat::new();
    let alice = t.line(at(16, 0, 0), "alice");
    let bob = t.line(at(16, 0, 0), "bob");
    t.clear();
    t.cmd(at(16, 30, 0), alice, quit(Some("see you \x1b[2J")));
    check(&t.take(alice), &["*** bye"]);
    check(
        &t.take(bob),
        &["[16:30:00] #lobby <-- alice left (quit: see you \u{FFFD}[2J)"],
    );
    assert_eq!(t.closed, [alice]);
}

#[test]
fn each_leave_reason_renders_its_suffix() {
    let cases = [
        (LeaveReason::Leave, ""),
        (LeaveReason::Quit(None), " (quit)"),
        (LeaveReason::Quit(Some("brb".to_string())), " (quit: brb)"),
        (LeaveReason::Disconnect, " (disconnected)"),
        (LeaveReason::Timeout, " (timeout)"),
        (LeaveReason::SlowConsumer, " (slow consumer)"),
        (LeaveReason::Shutdown, " (server shutting down)"),
    ];
    let mut t = Chat::new();
    let bob = t.line(at(17, 0, 0), "bob");
    for (reason, suffix) in cases {
        let x = t.line(at(17, 0, 0), "x");
        t.clear();
        t.hub.disconnect(at(17, 0, 1), x, reason);
        check(
            &t.take(bob),
            &[&format!("[17:00:01] #lobby <-- x left{suffix}")],
        );
        check(&t.take(x), &[]);
        assert!(t.closed.is_empty(), "the shell closes it, not the hub");
        assert_eq!(t.hub.nick_of(x), None);
    }
    assert_eq!(t.hub.clients(), 1);
}

#[test]
fn disconnect_twice_is_harmless_and_later_commands_are_ignored() {
    let mut t = Chat::new();
    let alice = t.line(at(17, 0, 0), "alice");
    let bob = t.line(at(17, 0, 0), "bob");
    t.clear();

    t.hub
        .disconnect(at(17, 0, 1), alice, LeaveReason::Disconnect);
    check(
        &t.take(bob),
        &["[17:00:01] #lobby <-- alice left (disconnected)"],
    );
    t.hub.disconnect(at(17, 0, 2), alice, LeaveReason::Timeout);
    t.hub
        .disconnect(at(17, 0, 2), ClientId(999), LeaveReason::Timeout);
    assert!(t.flush().is_empty());

    for cmd in [
        say("ghost"),
        me("haunts"),
        nick("ghost"),
        join("dev"),
        Command::Create,
        leave_current(),
        Command::Rooms,
        who(None),
        dm("bob", "boo"),
        history(None, None, 20),
        Command::Help,
        quit(None),
    ] {
        t.cmd(at(17, 0, 3), alice, cmd);
    }
    assert!(t.flush().is_empty());
    assert_eq!(t.hub.clients(), 1);
    assert_eq!(t.hub.rooms(), 1);
    assert!(t.stored("lobby").is_empty());
}

#[test]
fn help_lists_commands_and_limits() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    t.clear();
    t.cmd(at(12, 0, 1), alice, Command::Help);
    let lines = t.take(alice);
    assert!(lines.iter().all(|l| l.starts_with("*** ")), "{lines:#?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("*** limits: lines up to 4096 bytes, messages up to 4000 bytes; 1000 messages a second (bursts of 1000); 50 messages of history on join")
    );
}

/// PROTOCOL.md: a request's `ref` is "copied into the reply or error that
/// answers it", and "`create` is answered with `joined`".
#[test]
fn replies_carry_the_ref_of_the_request() {
    let mut t = Chat::new();
    let w = t.ws(at(12, 0, 0), "webby");
    t.clear();
    let refs = |t: &mut Chat| -> Vec<Option<String>> {
        t.flush()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Deliver {
                    event: Event::Reply(_, r),
                    ..
                } => Some(r),
                _ => None,
            })
            .collect()
    };
    let r = |s: &str| Some(s.to_string());

    t.hub.handle(at(12, 0, 1), w, who(None), r("e1"));
    t.hub.handle(at(12, 0, 1), w, Command::Rooms, r("r1"));
    assert_eq!(refs(&mut t), [r("e1"), r("r1")]);

    t.hub.handle(at(12, 0, 2), w, join("lobby"), r("j1"));
    t.hub.handle(at(12, 0, 2), w, join("lobby"), r("j2"));
    t.hub.handle(at(12, 0, 2), w, Command::Create, r("c1"));
    assert_eq!(refs(&mut t), [r("j1"), r("j2"), r("c1")]);
}

// ---------------------------------------------------------------------------
// Many clients
// ---------------------------------------------------------------------------

#[test]
fn one_say_to_a_thousand_is_one_delivery() {
    let mut t = Chat::new();
    let ids: Vec<ClientId> = (0..1000)
        .map(|_| {
            let id = t.connect(at(18, 0, 0), ClientKind::Line, None);
            t.discard();
            id
        })
        .collect();
    let nicks: HashSet<String> = ids
        .iter()
        .map(|&id| t.nick_of(id).to_ascii_lowercase())
        .collect();
    assert_eq!(nicks.len(), 1000, "generated nicks are unique");
    assert_eq!(t.hub.rooms(), 1);

    let sender = ids[0];
    t.cmd(at(18, 0, 1), sender, say("hello, everyone"));
    let effects = t.flush();
    assert_eq!(effects.len(), 1, "one event, rendered once");
    let Effect::Deliver { to, event } = &effects[0] else {
        panic!("{:?}", effects[0]);
    };
    assert_eq!(to.len(), 999);
    assert!(!to.contains(sender));
    let expected: HashSet<ClientId> = ids[1..].iter().copied().collect();
    assert_eq!(to.iter().collect::<HashSet<_>>(), expected);
    let line = format!(
        "[18:00:01] #lobby <{}> hello, everyone\n",
        t.nick_of(sender)
    );
    assert_eq!(render(event, "http://127.0.0.1:7878"), line.as_bytes());
    assert_eq!(t.stored_seqs("lobby"), [1]);
}

#[test]
fn flood_control_drops_past_the_burst_and_warns_once_a_second() {
    let mut t = Chat::with_config(HubConfig {
        rate: limits::RateLimit {
            rate: 10,
            burst: 20,
        },
        ..config(50)
    });
    let a = t.line(at(9, 0, 0), "alice");
    let b = t.line(at(9, 0, 0), "bob");
    t.clear();
    let t0 = at(9, 0, 1);
    for i in 0..25 {
        t.cmd(t0, a, say(&format!("m{i}")));
    }
    // DMs count against the same bucket.
    t.cmd(t0, a, dm("bob", "psst"));
    let to_bob = t.take(b);
    assert_eq!(to_bob.len(), 20, "{to_bob:?}");
    assert_eq!(to_bob[19], "[09:00:01] #lobby <alice> m19");
    check(&t.take(a), &["!!! rate_limited: *"]);
    // 200 ms later two tokens are back; the refusal after them is silent,
    // since alice was told less than a second ago.
    let t1 = Now { ms: t0.ms + 200 };
    for i in 0..3 {
        t.cmd(t1, a, say(&format!("later{i}")));
    }
    check(
        &t.take(b),
        &[
            "[09:00:01] #lobby <alice> later0",
            "[09:00:01] #lobby <alice> later1",
        ],
    );
    check(&t.take(a), &[]);
    assert_eq!(
        t.stored_seqs("lobby").len(),
        22,
        "dropped messages are not stored"
    );
    // Other clients have their own bucket.
    t.cmd(t1, b, say("unaffected"));
    check(&t.take(a), &["[09:00:01] #lobby <bob> unaffected"]);
    // Commands other than messages are never limited.
    t.cmd(t1, a, Command::Rooms);
    check(&t.take(a), &["*** rooms: #lobby (2)"]);
}

// ---------------------------------------------------------------------------
// WebSocket sessions: echo, cid, resume, hold, typing, catch-up
// ---------------------------------------------------------------------------

/// The events each effect sends to `id`, in order.
fn events_for(effects: &[Effect], id: ClientId) -> Vec<Event> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Deliver { to, event } if to.contains(id) => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn say_cid(r: &str, text: &str, cid: &str) -> Command {
    Command::Say {
        reply_to: None,
        room: Some(room(r)),
        text: text.to_string(),
        action: false,
        cid: Some(cid.to_string()),
    }
}

fn join_since(r: &str, since: Option<u64>) -> Command {
    Command::Join {
        room: room(r),
        since,
    }
}

#[test]
fn a_websocket_sender_gets_its_stored_message_back_with_cid_and_ref() {
    let mut t = Chat::new();
    let w = t.ws(at(10, 0, 0), "webby");
    let l = t.line(at(10, 0, 0), "liner");
    t.cmd(at(10, 0, 1), w, join_since("lobby", None));
    t.clear();
    t.hub.handle(
        at(10, 0, 2),
        w,
        say_cid("lobby", "hi", "c1"),
        Some("r1".into()),
    );
    let effects = t.flush();
    let to_w = events_for(&effects, w);
    assert_eq!(to_w.len(), 1, "{to_w:?}");
    let Event::Reply(Reply::Sent(m, cid), r) = &to_w[0] else {
        panic!("{to_w:?}");
    };
    assert_eq!((m.seq, m.text.as_str()), (1, "hi"));
    assert_eq!((cid.as_deref(), r.as_deref()), (Some("c1"), Some("r1")));
    // The room's copy carries neither.
    let to_l = events_for(&effects, l);
    assert!(
        matches!(&to_l[..], [Event::Message(m)] if m.seq == 1),
        "{to_l:?}"
    );
}

#[test]
fn a_repeated_cid_is_answered_with_the_original_and_stored_once() {
    let mut t = Chat::new();
    let w = t.ws(at(10, 0, 0), "webby");
    let l = t.line(at(10, 0, 0), "liner");
    t.cmd(at(10, 0, 1), w, join_since("lobby", None));
    t.clear();
    t.cmd(at(10, 0, 2), w, say_cid("lobby", "once", "k"));
    t.cmd(at(10, 0, 3), w, say_cid("lobby", "once", "k"));
    let effects = t.flush();
    let seqs: Vec<u64> = events_for(&effects, w)
        .iter()
        .filter_map(|e| match e {
            Event::Reply(Reply::Sent(m, _), _) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [1, 1], "both answers are the original");
    assert_eq!(events_for(&effects, l).len(), 1, "the room saw it once");
    assert_eq!(t.stored_seqs("lobby"), [1]);
    // After ten minutes the cid is forgotten: a new message.
    t.cmd(
        Now {
            ms: at(10, 0, 2).ms + 600_000,
        },
        w,
        say_cid("lobby", "again", "k"),
    );
    t.flush();
    assert_eq!(t.stored_seqs("lobby"), [1, 2]);
    // A bad cid is a bad request.
    t.cmd(at(10, 20, 0), w, say_cid("lobby", "x", ""));
    let effects = t.flush();
    assert!(matches!(
        &events_for(&effects, w)[..],
        [Event::Reply(
            Reply::Error {
                code: ErrorCode::BadRequest,
                ..
            },
            _
        )]
    ));
}

#[test]
fn resume_moves_nick_and_rooms_to_the_new_connection_without_presence() {
    let mut t = Chat::new();
    let w = t.ws(at(10, 0, 0), "webby");
    let l = t.line(at(10, 0, 0), "liner");
    t.cmd(at(10, 0, 1), w, join_since("lobby", None));
    t.cmd(at(10, 0, 1), w, join_since("dev", None));
    t.clear();
    // The connection vanishes: held, nobody sees anything.
    t.hub.detach(at(10, 1, 0), w, LeaveReason::Disconnect);
    assert_eq!(t.hub.next_deadline(), Some(at(10, 1, 0).ms + 120_000));
    t.hub.expire(at(10, 2, 0));
    check(&t.take(l), &[]);
    // A new connection resumes with the token.
    let w2 = ClientId(500);
    assert!(t.resume(at(10, 2, 30), w2, &format!("token-{}", w.0)));
    let effects = t.flush();
    let to_w2 = events_for(&effects, w2);
    assert!(
        matches!(&to_w2[0], Event::Reply(Reply::Welcome { nick, .. }, _) if nick == "webby"),
        "{to_w2:?}"
    );
    let rooms: Vec<String> = to_w2[1..]
        .iter()
        .map(|e| match e {
            Event::Reply(Reply::Joined { room, .. }, _) => room.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(rooms, ["lobby", "dev"]);
    check(&t.take(l), &[]);
    assert_eq!(t.hub.next_deadline(), None, "no longer held");
    // The resumed client talks as itself; the old id is nobody.
    t.cmd(at(10, 3, 0), w2, say_in("lobby", "back"));
    t.cmd(at(10, 3, 0), w, say_in("lobby", "ghost"));
    check(&t.take(l), &["[10:03:00] #lobby <webby> back"]);
    // An unknown token resumes nothing.
    assert!(!t.resume(at(10, 3, 1), ClientId(501), "nope"));
}

#[test]
fn resume_while_the_old_connection_is_open_replaces_it() {
    let mut t = Chat::new();
    let w = t.ws(at(10, 0, 0), "webby");
    t.clear();
    assert!(t.hub.resume(
        at(10, 0, 5),
        ClientId(77),
        Peer::loopback(),
        &format!("token-{}", w.0)
    ));
    let effects = t.flush();
    assert!(effects.contains(&Effect::Replaced(w)), "{effects:?}");
    assert_eq!(t.hub.nick_of(ClientId(77)), Some("webby"));
    assert_eq!(t.hub.nick_of(w), None);
}

#[test]
fn a_held_session_that_is_not_resumed_leaves_with_timeout() {
    let mut t = Chat::new();
    let w = t.ws(at(10, 0, 0), "webby");
    let l = t.line(at(10, 0, 0), "liner");
    t.cmd(at(10, 0, 1), w, join_since("lobby", None));
    t.clear();
    t.hub.detach(at(10, 1, 0), w, LeaveReason::Disconnect);
    t.hub.expire(at(10, 2, 59));
    check(&t.take(l), &[]);
    t.hub.expire(at(10, 3, 0));
    check(&t.take(l), &["[10:03:00] #lobby <-- webby left (timeout)"]);
    assert!(!t.hub.resume(
        at(10, 3, 1),
        ClientId(9),
        Peer::loopback(),
        &format!("token-{}", w.0)
    ));
    // The nick is free again.
    let again = t.ws(at(10, 3, 2), "webby");
    assert_eq!(t.hub.nick_of(again), Some("webby"));
    // A line client has no session: detach means leave now.
    t.hub.detach(at(10, 4, 0), l, LeaveReason::Disconnect);
    assert_eq!(t.hub.nick_of(l), None);
}

#[test]
fn typing_goes_to_other_websocket_members_only_and_at_most_once_a_second() {
    let mut t = Chat::new();
    let a = t.ws(at(10, 0, 0), "alice");
    let b = t.ws(at(10, 0, 0), "bob");
    let l = t.line(at(10, 0, 0), "liner");
    for c in [a, b] {
        t.cmd(at(10, 0, 0), c, join_since("lobby", None));
    }
    t.clear();
    t.cmd(at(10, 0, 1), a, Command::Typing(room("lobby")));
    t.cmd(
        Now {
            ms: at(10, 0, 1).ms + 500,
        },
        a,
        Command::Typing(room("lobby")),
    );
    let effects = t.flush();
    let to_b = events_for(&effects, b);
    assert!(
        matches!(&to_b[..], [Event::Typing(ty)] if ty.nick == "alice"),
        "{to_b:?}"
    );
    assert!(events_for(&effects, a).is_empty());
    assert!(events_for(&effects, l).is_empty());
    assert!(t.stored_seqs("lobby").is_empty(), "typing is never stored");
    t.cmd(at(10, 0, 3), a, Command::Typing(room("dev")));
    let effects = t.flush();
    assert!(matches!(
        &events_for(&effects, a)[..],
        [Event::Reply(
            Reply::Error {
                code: ErrorCode::NotInRoom,
                ..
            },
            _
        )]
    ));
}

#[test]
fn join_since_replays_exactly_what_was_missed_and_flags_a_gap() {
    let mut t = Chat::with_config(HubConfig {
        history: 5,
        ..config(5)
    });
    let l = t.line(at(10, 0, 0), "liner");
    for i in 0..600 {
        t.cmd(at(10, 0, 1), l, say(&format!("m{}", i + 1)));
    }
    t.clear();
    let w = t.ws(at(10, 1, 0), "webby");
    let joined = |effects: &[Effect]| {
        events_for(effects, w)
            .into_iter()
            .find_map(|e| match e {
                Event::Reply(
                    Reply::Joined {
                        messages,
                        last_seq,
                        gap,
                        ..
                    },
                    _,
                ) => Some((
                    messages.iter().map(|m| m.seq()).collect::<Vec<_>>(),
                    last_seq,
                    gap,
                )),
                _ => None,
            })
            .expect("joined")
    };
    t.cmd(at(10, 1, 1), w, join_since("lobby", Some(590)));
    let (seqs, last, gap) = joined(&t.flush());
    assert_eq!(seqs, (591..=600).collect::<Vec<_>>());
    assert_eq!((last, gap), (600, false));
    // Already a member: joined again, caught up, no presence for anyone.
    t.cmd(at(10, 1, 2), w, join_since("lobby", Some(10)));
    let effects = t.flush();
    let (seqs, last, gap) = joined(&effects);
    assert_eq!(seqs.len(), 500);
    assert_eq!((seqs[0], seqs[499], last, gap), (11, 510, 600, true));
    assert!(events_for(&effects, l).is_empty());
    // Without since: the latest --history.
    let w2 = t.ws(at(10, 1, 3), "other");
    t.cmd(at(10, 1, 3), w2, join_since("lobby", None));
    let effects = t.flush();
    let seqs: Vec<u64> = events_for(&effects, w2)
        .into_iter()
        .find_map(|e| match e {
            Event::Reply(Reply::Joined { messages, .. }, _) => {
                Some(messages.iter().map(|m| m.seq()).collect())
            }
            _ => None,
        })
        .expect("joined");
    assert_eq!(seqs, [596, 597, 598, 599, 600]);
}

// ---------------------------------------------------------------------------
// Images and store failures
// ---------------------------------------------------------------------------

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

fn image(r: &str, data: &[u8], text: Option<&str>, id: &str) -> Command {
    Command::Image {
        reply_to: None,
        room: room(r),
        data: data.to_vec(),
        text: text.map(str::to_string),
        cid: None,
        id: id.to_string(),
    }
}

#[test]
fn an_image_is_stored_with_its_message_and_shown_to_line_clients() {
    let mut t = Chat::new();
    let w = t.ws(at(11, 0, 0), "webby");
    let l = t.line(at(11, 0, 0), "liner");
    t.cmd(at(11, 0, 1), w, join_since("lobby", None));
    t.clear();
    t.cmd(at(11, 0, 2), w, image("lobby", PNG, Some("look"), "ab01"));
    check(
        &t.take(l),
        &["[11:00:02] #lobby <webby> [image] http://127.0.0.1:7878/media/ab01 (image/png, 16 B) look"],
    );
    let stored = t.store.images.get("ab01").cloned();
    assert_eq!(stored, Some(("image/png".to_string(), PNG.to_vec())));
    let history = &t.store.rooms[&room("lobby")];
    let img = history[0].image.as_ref().expect("image");
    assert_eq!(
        (img.id.as_str(), img.mime, img.size),
        ("ab01", "image/png", 16)
    );
    // Without a caption the line ends at the size.
    t.cmd(at(11, 0, 3), w, image("lobby", b"GIF89a", None, "ab02"));
    check(
        &t.take(l),
        &["[11:00:03] #lobby <webby> [image] http://127.0.0.1:7878/media/ab02 (image/gif, 6 B)"],
    );
}

#[test]
fn bad_images_are_refused_and_nothing_is_stored() {
    let mut t = Chat::with_config(HubConfig {
        max_image: 32,
        ..config(50)
    });
    let w = t.ws(at(11, 0, 0), "webby");
    t.cmd(at(11, 0, 1), w, join_since("lobby", None));
    t.clear();
    let codes = |t: &mut Chat| -> Vec<ErrorCode> {
        events_for(&t.flush(), w)
            .into_iter()
            .filter_map(|e| match e {
                Event::Reply(Reply::Error { code, .. }, _) => Some(code),
                _ => None,
            })
            .collect()
    };
    t.cmd(
        at(11, 0, 2),
        w,
        image("lobby", b"<svg onload=alert(1)/>", None, "b1"),
    );
    t.cmd(at(11, 0, 2), w, image("lobby", &[0x89; 40], None, "b2"));
    t.cmd(at(11, 0, 2), w, image("dev", PNG, None, "b3"));
    t.cmd(at(11, 0, 2), w, image("lobby", PNG, None, ""));
    assert_eq!(
        codes(&mut t),
        [
            ErrorCode::BadImage,
            ErrorCode::TooLarge,
            ErrorCode::NotInRoom,
            ErrorCode::BadImage
        ]
    );
    assert!(t.stored_seqs("lobby").is_empty());
    for id in ["b1", "b2", "b3"] {
        assert_eq!(t.store.images.get(id), None);
    }
}

#[test]
fn a_failed_commit_sends_nothing_of_the_batch_and_tells_the_senders() {
    let mut t = Chat::new();
    let w = t.ws(at(12, 0, 0), "webby");
    let l = t.line(at(12, 0, 0), "liner");
    t.cmd(at(12, 0, 1), w, join_since("lobby", None));
    t.cmd(at(12, 0, 2), l, say("before"));
    t.clear();
    t.store.refuse_batches = true;
    t.cmd(at(12, 0, 3), w, say_cid("lobby", "lost", "c9"));
    t.cmd(at(12, 0, 3), l, say("lost too"));
    let effects = t.flush();
    for e in &effects {
        if let Effect::Deliver { event, .. } = e {
            assert!(
                !matches!(event, Event::Message(_) | Event::Reply(Reply::Sent(..), _)),
                "{event:?}"
            );
        }
    }
    let errors = |id| {
        events_for(&effects, id)
            .into_iter()
            .filter(|e| matches!(e, Event::Reply(Reply::Error { .. }, _)))
            .count()
    };
    assert_eq!((errors(w), errors(l)), (1, 1));
    t.lines.clear();
    // The store recovers; the same cid is not a repeat: it goes through.
    t.store.refuse_batches = false;
    t.cmd(at(12, 0, 4), w, say_cid("lobby", "retry", "c9"));
    check(&t.take(l), &["[12:00:04] #lobby <webby> retry"]);
    // Seqs are never reused: the failed ones are skipped.
    assert_eq!(t.stored_seqs("lobby"), [1, 4]);
    assert_eq!(t.hub.messages_total(), 2);
}

/// A few bytes of requests must not make the hub load and queue unbounded
/// history: past `history_per_turn` bytes in one turn, more history pages
/// are refused (`rate_limited`) and a join replays nothing (with `gap`),
/// until the next turn.
#[test]
fn history_is_bounded_per_client_per_turn() {
    let mut t = Chat::with_config(HubConfig {
        history_per_turn: 100_000,
        edit_window_ms: 900_000,
        ..config(50)
    });
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    let text = "z".repeat(1000);
    for _ in 0..60 {
        t.cmd(at(12, 0, 0), alice, say(&text));
    }
    t.clear();
    // 60 x (1000 + 128) bytes a page: the first two pages fit, a third does not.
    for _ in 0..3 {
        t.cmd(at(12, 1, 0), bob, history(None, None, 200));
    }
    let got = t.take(bob);
    let blocks = got
        .iter()
        .filter(|l| l.starts_with("*** history of #lobby (60 messages)"));
    assert_eq!(blocks.count(), 2, "{:?}", &got[got.len() - 1..]);
    assert!(
        got.last()
            .is_some_and(|l| l.starts_with("!!! rate_limited: too much history at once")),
        "{:?}",
        got.last()
    );
    // The next turn all is well again.
    t.cmd(at(12, 1, 1), bob, history(None, None, 200));
    assert!(t
        .take(bob)
        .iter()
        .any(|l| l.starts_with("*** history of #lobby (60 messages)")));
    // Pages and replays are counted apart: with the pages refused, a join
    // still replays; 8 budgets of replays, and a join replays nothing.
    t.cmd(at(12, 2, 0), alice, join("side"));
    t.cmd(at(12, 2, 0), alice, say("in side"));
    t.clear();
    t.cmd(at(12, 2, 1), bob, history(None, None, 200));
    t.cmd(at(12, 2, 1), bob, history(None, None, 200));
    t.cmd(at(12, 2, 1), bob, history(None, None, 200));
    t.cmd(at(12, 2, 1), bob, join("side"));
    let got = t.take(bob);
    assert!(
        got.iter()
            .any(|l| l.starts_with("!!! rate_limited: too much history")),
        "the third page is refused"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("*** history of #side (1 message)")),
        "a replay has more room than a page"
    );
    t.cmd(at(12, 2, 1), bob, leave("side"));
    // 16 joins of a 56 KB replay pass 8 x 100 KB.
    for _ in 0..16 {
        t.cmd(at(12, 2, 1), bob, leave("lobby"));
        t.cmd(at(12, 2, 1), bob, join("lobby"));
    }
    t.cmd(at(12, 2, 1), bob, join("side"));
    let got = t.take(bob);
    let tail: Vec<&String> = got.iter().rev().take(3).collect();
    assert!(
        got.iter().any(|l| l.starts_with("*** you joined #side")),
        "{tail:?}"
    );
    assert!(
        !got.iter().any(|l| l.starts_with("*** history of #side")),
        "{tail:?}"
    );
    t.cmd(at(12, 2, 2), bob, leave("side"));
    t.cmd(at(12, 2, 2), bob, join("side"));
    let got = t.take(bob);
    assert!(
        got.iter()
            .any(|l| l.starts_with("*** history of #side (1 message)")),
        "the next turn replays again"
    );
}

// ---------------------------------------------------------------------------
// The persistence port: a store that answers late, or fails
// ---------------------------------------------------------------------------

/// Two line users in the lobby, with a store that answers a turn late:
/// each join waits one turn for its read.
fn late_lobby() -> (Chat, ClientId, ClientId) {
    let mut t = Chat::late();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.flush(); // the reads go out
    t.clear(); // their answers come in: both are in the lobby
    assert_eq!(t.hub.rooms(), 1);
    (t, alice, bob)
}

#[test]
fn a_late_store_holds_every_delivery_until_its_batch_is_reported_stored() {
    let (mut t, alice, bob) = late_lobby();
    t.cmd(at(12, 0, 1), alice, say("hi"));
    t.cmd(at(12, 0, 1), bob, nick("robert"));
    // The turn ends: the batch goes to the store, which answers next turn.
    // Nothing after the message may overtake it, not even bob's rename.
    t.flush();
    assert_eq!(t.sent(bob), Vec::<String>::new());
    assert_eq!(t.sent(alice), Vec::<String>::new());
    assert_eq!(t.stored_seqs("lobby"), [1], "the store has it, unanswered");
    t.flush();
    check(
        &t.sent(bob),
        &[
            "[12:00:01] #lobby <alice> hi",
            "*** you are now known as robert",
        ],
    );
    check(
        &t.sent(alice),
        &["[12:00:01] #lobby --- bob is now known as robert"],
    );
}

#[test]
fn a_client_waiting_for_a_read_has_its_next_requests_carried_out_in_order() {
    let (mut t, alice, bob) = late_lobby();
    t.cmd(at(12, 0, 1), bob, join("dev"));
    t.clear();
    t.clear();
    // One read of "/join dev\nin dev\n/who\n": the message and /who must
    // wait for the join, which waits for the store.
    t.cmd(at(12, 0, 2), alice, join("dev"));
    t.cmd(at(12, 0, 2), alice, say("in dev"));
    t.cmd(at(12, 0, 2), alice, who(None));
    t.flush();
    assert_eq!(t.sent(alice), Vec::<String>::new(), "nothing answered yet");
    t.flush();
    check(
        &t.sent(alice),
        &["*** you joined #dev (2 here: alice, bob)"],
    );
    check(&t.sent(bob), &["[12:00:02] #dev --> alice joined"]);
    // The message was said when the answer came, and is sent when its own
    // batch is reported stored, one turn later; the answer to /who, asked
    // after it, comes after it.
    t.flush();
    check(&t.sent(bob), &["[12:00:02] #dev <alice> in dev"]);
    check(&t.sent(alice), &["*** #dev (2): alice, bob"]);
    assert_eq!(t.stored_seqs("dev"), [1]);
}

#[test]
fn messages_said_while_a_join_waits_for_its_read_are_in_its_replay() {
    let (mut t, alice, bob) = late_lobby();
    t.cmd(at(12, 0, 1), bob, join("dev"));
    t.cmd(at(12, 0, 1), bob, say("before"));
    t.clear();
    t.clear();
    // alice's read goes out first; bob's message is stored after it, so
    // the store's answer cannot have it: the hub adds it.
    t.cmd(at(12, 0, 2), alice, join("dev"));
    t.cmd(at(12, 0, 3), bob, say("while you waited"));
    t.flush();
    let lines = t.take(alice);
    check(
        &lines,
        &[
            "*** you joined #dev (2 here: alice, bob)",
            "*** history of #dev (2 messages)",
            "[12:00:01] #dev <bob> before",
            "[12:00:03] #dev <bob> while you waited",
            "*** end of history",
        ],
    );
    t.cmd(at(12, 0, 4), bob, say("after"));
    t.flush();
    check(&t.take(alice), &["[12:00:04] #dev <bob> after"]);
    assert_eq!(t.stored_seqs("dev"), [1, 2, 3]);
}

#[test]
fn a_batch_a_late_store_refuses_reaches_no_one_and_its_senders_are_told() {
    let (mut t, alice, bob) = late_lobby();
    t.store.refuse_batches = true;
    t.cmd(at(12, 0, 1), alice, say("lost"));
    t.flush();
    t.store.refuse_batches = false;
    t.cmd(at(12, 0, 2), alice, say("kept"));
    t.flush();
    t.flush();
    check(&t.take(bob), &["[12:00:02] #lobby <alice> kept"]);
    check(&t.take(alice), &["!!! bad_request: *"]);
    // Seqs are skipped, never reused.
    assert_eq!(t.stored_seqs("lobby"), [2]);
    assert_eq!(t.hub.messages_total(), 1);
}

#[test]
fn a_refused_message_is_taken_out_of_a_replay_still_waiting_for_its_batch() {
    let (mut t, alice, bob) = late_lobby();
    t.cmd(at(12, 0, 1), bob, join("dev"));
    t.clear();
    t.clear();
    t.cmd(at(12, 0, 2), alice, join("dev"));
    t.store.refuse_batches = true;
    t.cmd(at(12, 0, 3), bob, say("never stored"));
    t.flush();
    t.store.refuse_batches = false;
    let lines = t.take(alice);
    assert!(
        lines.iter().any(|l| l.starts_with("*** you joined #dev")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("never stored")),
        "{lines:?}"
    );
    // alice's join took effect when its read was answered (12:00:03),
    // before the refusal of the batch stored after that read.
    check(
        &t.take(bob),
        &["[12:00:03] #dev --> alice joined", "!!! bad_request: *"],
    );
}

#[test]
fn a_client_that_leaves_while_waiting_is_gone_after_its_requests() {
    let (mut t, alice, bob) = late_lobby();
    t.cmd(at(12, 0, 1), alice, join("dev"));
    t.cmd(at(12, 0, 1), alice, say("hello dev"));
    t.cmd(at(12, 0, 1), bob, join("dev"));
    // The connection closes in the same turn (EOF after the lines).
    t.hub
        .disconnect(at(12, 0, 1), alice, LeaveReason::Disconnect);
    assert_eq!(t.hub.clients(), 2, "alice still waits for the store");
    for _ in 0..3 {
        t.flush();
    }
    let lines = t.take(bob);
    assert!(
        lines.iter().any(|l| l.ends_with("#dev <alice> hello dev")),
        "{lines:?}"
    );
    assert_eq!(t.hub.clients(), 1);
    assert_eq!(t.hub.nick_of(alice), None);
    assert_eq!(t.stored_seqs("dev"), [1]);
}

#[test]
fn a_resumed_session_is_replayed_room_by_room_from_a_late_store() {
    let mut t = Chat::late();
    let w = t.ws(at(10, 0, 0), "webby");
    let l = t.line(at(10, 0, 0), "liner");
    t.cmd(at(10, 0, 1), w, join("lobby"));
    t.clear();
    t.clear();
    t.cmd(at(10, 0, 2), w, join("dev"));
    t.clear();
    t.clear();
    t.cmd(at(10, 0, 3), l, say("while away"));
    t.hub.detach(at(10, 0, 3), w, LeaveReason::Disconnect);
    t.clear();
    t.clear();
    let w2 = ClientId(900);
    assert!(t.resume(at(10, 0, 4), w2, &format!("token-{}", w.0)));
    let mut joined = Vec::new();
    for _ in 0..4 {
        for e in events_for(&t.flush(), w2) {
            if let Event::Reply(Reply::Joined { room, messages, .. }, _) = e {
                joined.push((room.to_string(), messages.len()));
            }
        }
    }
    assert_eq!(
        joined,
        [("lobby".to_string(), 1), ("dev".to_string(), 0)],
        "in the order joined, with what was said while away"
    );
}

#[test]
fn a_read_that_fails_refuses_a_join_of_a_room_not_in_memory_only() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let bob = t.line(at(12, 0, 0), "bob");
    t.cmd(at(12, 0, 1), bob, join("dev"));
    t.clear();
    t.store.refuse_reads = true;
    // #dev is in memory: joined, without a replay.
    t.cmd(at(12, 0, 2), alice, join("dev"));
    // #ops is not: its latest seq is unknown, so no join.
    t.cmd(at(12, 0, 3), alice, join("ops"));
    check(
        &t.take(alice),
        &[
            "*** you joined #dev (2 here: alice, bob)",
            "!!! bad_request: *",
        ],
    );
    assert_eq!(t.hub.rooms_of(alice), [room("lobby"), room("dev")]);
}

#[test]
fn a_store_that_answers_at_once_is_asked_once_a_turn_for_messages() {
    let mut t = Chat::new();
    let alice = t.line(at(12, 0, 0), "alice");
    let _bob = t.line(at(12, 0, 0), "bob");
    t.clear();
    let before = t.store.batches;
    for i in 0..10 {
        t.cmd(at(12, 0, 1), alice, say(&format!("m{i}")));
    }
    t.clear();
    assert_eq!(t.store.batches - before, 1, "one batch: group commit");
    assert_eq!(t.stored_seqs("lobby").len(), 10);
}

#[test]
fn a_session_resumed_while_its_read_is_out_gets_the_answer_then_its_replays() {
    let mut t = Chat::late();
    let w = t.ws(at(10, 0, 0), "webby");
    t.cmd(at(10, 0, 1), w, join("lobby"));
    t.clear();
    t.clear();
    // The join's read goes out, the connection drops, a new one resumes,
    // all before the store answers.
    t.cmd(at(10, 0, 2), w, join("dev"));
    t.hub.detach(at(10, 0, 2), w, LeaveReason::Disconnect);
    let w2 = ClientId(900);
    assert!(t.resume(at(10, 0, 2), w2, &format!("token-{}", w.0)));
    let mut joined = Vec::new();
    for _ in 0..4 {
        for e in events_for(&t.flush(), w2) {
            if let Event::Reply(Reply::Joined { room, .. }, _) = e {
                joined.push(room.to_string());
            }
        }
    }
    assert_eq!(joined, ["dev", "lobby"]);
    assert_eq!(t.hub.rooms_of(w2), [room("lobby"), room("dev")]);
    assert_eq!(
        t.hub.next_deadline(),
        None,
        "not held: the drop was superseded"
    );
}
