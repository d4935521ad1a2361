//! Who is where on the other processes sharing the chat (PROTOCOL-2
//! section 6): their nicks and their rooms' members, kept from what they
//! announce, so member lists, `/who`, `/rooms`, nick uniqueness and direct
//! messages reach across processes.
//!
//! A shared hub announces ([`Notice`]) what the other processes must know:
//! a nick it holds or no longer holds, a member entering or leaving one of
//! its rooms (the same [`Presence`] its own members are sent), typing, a
//! direct message for a nick held elsewhere. The shell publishes them and
//! hands the others' to [`Hub::remote`]. After a reconnect the shell reads
//! everyone's state whole ([`Hub::remote_state`]); the differences reach
//! the members here as joins and leaves. A process that died is dropped
//! whole ([`Hub::gone`]): its members leave their rooms (`timeout`).
//!
//! Several connections of one account may be on several processes: a room
//! is told a nick joined when it was nowhere in the room before, and that
//! it left when it is nowhere in it any more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;

use super::event::{
    ClientKind, Dm, Event, LeaveReason, ModEvent, ModKind, Presence, PresenceKind, Recipients,
    Typing,
};
use super::names::{Nick, RoomName};
use super::{Hub, Now};

/// What a shared hub tells the other processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// This process holds `nick` now.
    Holds(Nick),
    /// This process no longer holds the nick with this key.
    Releases(String),
    /// A room made by `/create`: never listed, on any process.
    Unlisted(RoomName),
    /// This process holds the nick with this key, for this account (`None`:
    /// a guest): the store checks no other process does (`Holds` says who
    /// it is; this is the claim).
    Owns(String, Option<String>),
    /// A member entered or left a room, or changed nick in it.
    Presence(Rc<Presence>),
    /// Someone is typing in a room.
    Typing(Rc<Typing>),
    /// A direct message for the holder of the nick `to` (its key).
    Dm(Rc<Dm>),
    /// A session's state changed (`None`: it ended); `held`: its
    /// connection vanished and it waits for a resume. Keyed by the SHA-256
    /// of its token.
    Session {
        /// The token's hash.
        hash: String,
        /// What it holds.
        state: Option<super::sessions::SessionState>,
        /// Held for a resume.
        held: bool,
    },
    /// An op acted in a room: its members here are told, and a kicked or
    /// banned nick's connections here leave it; an invited guest here may
    /// join.
    Mod(Rc<ModEvent>),
}

/// One nick in one room, as the other processes hold it. Kept small: a
/// process keeps one for every member of every other process, so with
/// many processes these are most of its memory.
#[derive(Clone, Debug, Default)]
struct Member {
    nick: Option<Nick>,
    account: Option<String>,
    /// The processes it is in the room on (almost always one).
    procs: Vec<Proc>,
}

/// A process, by its number in [`Procs`].
type Proc = u32;

/// The other processes' ids, each given a small number once: the tables
/// below name a process by it, not by a copy of its id.
#[derive(Default)]
struct Procs {
    ids: HashMap<String, Proc>,
}

impl Procs {
    /// `proc`'s number, given now if it has none.
    fn of(&mut self, proc: &str) -> Proc {
        if let Some(&n) = self.ids.get(proc) {
            return n;
        }
        let n = Proc::try_from(self.ids.len()).unwrap_or(Proc::MAX);
        self.ids.insert(proc.to_string(), n);
        n
    }
}

/// The other processes' nicks and members.
#[derive(Default)]
pub(super) struct Remote {
    /// Nick key -> the nick as spelled, by process (almost always one).
    nicks: HashMap<String, Vec<(Proc, Nick)>>,
    procs: Procs,
    /// Room -> nick key -> the member.
    rooms: HashMap<RoomName, BTreeMap<String, Member>>,
    /// Nick keys whose holding changed here since the last `take_notices`.
    touched: HashSet<String>,
    /// Announcements waiting for the shell.
    notices: Vec<Notice>,
    /// `/nick` claims out: the client, the nick, the request's ref.
    holds: HashMap<u64, (super::ClientId, Nick, Option<String>)>,
    next_hold: u64,
}

impl Remote {
    /// Whether another process holds the nick `key`.
    pub(super) fn holds_nick(&self, key: &str) -> bool {
        self.nicks.contains_key(key)
    }

    /// The nick `key` as another process has it in `room`.
    pub(super) fn member(&self, room: &RoomName, key: &str) -> Option<&Nick> {
        self.rooms.get(room)?.get(key)?.nick.as_ref()
    }

    /// Whether another process has the nick `key` in `room`.
    pub(super) fn in_room(&self, room: &RoomName, key: &str) -> bool {
        self.rooms.get(room).is_some_and(|m| m.contains_key(key))
    }

    /// The other processes' members of `room`.
    pub(super) fn members(&self, room: &RoomName) -> impl Iterator<Item = &Nick> {
        self.rooms
            .get(room)
            .into_iter()
            .flat_map(|m| m.values().filter_map(|m| m.nick.as_ref()))
    }

    /// Rooms with members elsewhere, with their counts.
    pub(super) fn room_counts(&self) -> impl Iterator<Item = (&RoomName, usize)> {
        self.rooms.iter().map(|(r, m)| (r, m.len()))
    }

    /// `nick` is in `room` on `proc` (a session taken over there).
    pub(super) fn join_quietly(&mut self, proc: &str, room: &RoomName, nick: Nick) {
        let account = self
            .rooms
            .get(room)
            .and_then(|m| m.get(&nick.key()))
            .and_then(|m| m.account.clone());
        self.join(proc, room, nick, account);
    }

    /// Queues an announcement.
    pub(super) fn push_notice(&mut self, n: Notice) {
        self.notices.push(n);
    }

    /// `proc` holds the nick `nick` (as spelled).
    fn hold(&mut self, proc: &str, nick: Nick) {
        let p = self.procs.of(proc);
        let by = self.nicks.entry(nick.key()).or_default();
        match by.iter_mut().find(|(q, _)| *q == p) {
            Some(held) => held.1 = nick,
            None => by.push((p, nick)),
        }
    }

    /// `proc` no longer holds the nick `key`.
    fn release(&mut self, proc: &str, key: &str) {
        let p = self.procs.of(proc);
        if let Some(by) = self.nicks.get_mut(key) {
            by.retain(|(q, _)| *q != p);
            if by.is_empty() {
                self.nicks.remove(key);
            }
        }
    }

    fn join(&mut self, proc: &str, room: &RoomName, nick: Nick, account: Option<String>) {
        let p = self.procs.of(proc);
        let m = self
            .rooms
            .entry(room.clone())
            .or_default()
            .entry(nick.key())
            .or_default();
        m.nick = Some(nick);
        m.account = account;
        if !m.procs.contains(&p) {
            m.procs.push(p);
        }
    }

    fn leave(&mut self, proc: &str, room: &RoomName, key: &str) {
        let p = self.procs.of(proc);
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(m) = members.get_mut(key) {
            m.procs.retain(|q| *q != p);
            if m.procs.is_empty() {
                members.remove(key);
            }
        }
        if members.is_empty() {
            self.rooms.remove(room);
        }
    }
}

/// What this process holds: its nicks, and its rooms' members with their
/// accounts.
#[derive(Debug, Default)]
pub struct LocalState {
    /// Nicks held here.
    pub nicks: Vec<Nick>,
    /// `(room, nick, account)`.
    pub members: Vec<(RoomName, Nick, Option<String>)>,
}

/// Everyone's state as read whole: each process's nicks, and each room's
/// members with their process and account.
#[derive(Debug, Default)]
pub struct RemoteState {
    /// `(process, nick)`.
    pub nicks: Vec<(String, Nick)>,
    /// `(room, process, nick, account)`.
    pub members: Vec<(RoomName, String, Nick, Option<String>)>,
    /// Rooms made by `/create` on any process.
    pub unlisted: Vec<RoomName>,
}

impl Hub {
    /// Takes the announcements made since the last call (a shared hub's).
    pub fn take_notices(&mut self, out: &mut Vec<Notice>) {
        self.session_notices();
        for key in std::mem::take(&mut self.remote.touched) {
            match self.nicks.get(&key).and_then(|c| self.clients.get(c)) {
                Some(c) => {
                    self.remote
                        .notices
                        .push(Notice::Owns(key, c.account.clone()));
                    self.remote.notices.push(Notice::Holds(c.nick.clone()));
                }
                None => self.remote.notices.push(Notice::Releases(key)),
            }
        }
        out.append(&mut self.remote.notices);
    }

    /// What this process holds now, to announce whole after a reconnect.
    pub fn local_state(&self) -> LocalState {
        let nicks = self
            .nicks
            .values()
            .filter_map(|c| self.clients.get(c))
            .map(|c| c.nick.clone())
            .collect();
        let mut members = Vec::new();
        for (name, r) in &self.rooms {
            for nick in r.members.nicks() {
                let account = self
                    .accounts
                    .online
                    .contains_key(&nick.key())
                    .then(|| nick.to_string());
                members.push((name.clone(), nick.clone(), account));
            }
        }
        LocalState { nicks, members }
    }

    /// The nick `key` changed hands here (a shared hub announces it).
    pub(super) fn touch_nick(&mut self, key: String) {
        if self.shared {
            self.remote.touched.insert(key);
        }
    }

    /// Sends `presence` to `to` and, in a shared hub, announces it.
    pub(super) fn presence(&mut self, to: Recipients, presence: Presence) {
        let p = Rc::new(presence);
        if self.shared {
            self.remote.notices.push(Notice::Presence(p.clone()));
        }
        self.deliver(to, Event::Presence(p));
    }

    /// Announces `n` (a shared hub).
    pub(super) fn notify(&mut self, n: Notice) {
        if self.shared {
            self.remote.notices.push(n);
        }
    }

    /// Whether the nick `key` is in `room` here or elsewhere.
    fn anywhere_in(&self, room: &RoomName, key: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.members.holds(key)) || self.remote.in_room(room, key)
    }

    /// Sends `p` to this process's members of its room, if any.
    fn tell_room(&mut self, p: Presence) {
        if let Some(r) = self.rooms.get(&p.room) {
            let to = Recipients::Room {
                members: r.members.snapshot(),
                except: None,
            };
            self.deliver(to, Event::Presence(Rc::new(p)));
        }
    }

    /// Another process's announcement.
    pub fn remote(&mut self, now: Now, proc: &str, notice: Notice) {
        match notice {
            Notice::Holds(nick) => self.remote.hold(proc, nick),
            Notice::Releases(key) => self.remote.release(proc, &key),
            Notice::Presence(p) => self.remote_presence(now, proc, &p),
            Notice::Typing(t) => {
                let to: Vec<_> = self.rooms.get(&t.room).map_or_else(Vec::new, |r| {
                    r.members
                        .snapshot()
                        .iter()
                        .copied()
                        .filter(|c| {
                            self.clients
                                .get(c)
                                .is_some_and(|c| c.kind == ClientKind::Ws)
                        })
                        .collect()
                });
                self.deliver(Recipients::List(to), Event::Typing(t));
            }
            Notice::Dm(dm) => {
                let to = self.holders(&dm.to.to_ascii_lowercase());
                self.deliver(Recipients::List(to), Event::Dm(dm.clone()));
                // The sender's connections here get the sender's copy.
                if let Some(from) = dm.account.as_ref().map(|a| a.to_ascii_lowercase()) {
                    if from != dm.to.to_ascii_lowercase() {
                        let copies = self.holders(&from);
                        let copy = Event::Reply(super::Reply::DmSent(dm, None), None);
                        self.deliver(Recipients::List(copies), copy);
                    }
                }
            }
            Notice::Mod(m) => self.remote_mod(now, m),
            Notice::Unlisted(room) => {
                self.unlisted.insert(room);
            }
            Notice::Session { .. } | Notice::Owns(..) => {} // the store's
        }
    }

    /// An op's action on another process, carried out here.
    fn remote_mod(&mut self, now: Now, m: Rc<ModEvent>) {
        let room = m.room.clone();
        if let Some(r) = self.rooms.get(&room) {
            let to = Recipients::Room {
                members: r.members.snapshot(),
                except: None,
            };
            self.deliver(to, Event::Mod(m.clone()));
        }
        let (nick, reason) = match &m.action {
            ModKind::Kick { nick, .. } => (nick, LeaveReason::Kicked),
            ModKind::Ban { nick, reason } => {
                // An account's ban holds here at once (the stored list is
                // read again a moment later): no rejoin in between.
                let key = nick.to_ascii_lowercase();
                if self.accounts.exists(&key) {
                    let entry = super::port::RoomEntry {
                        kind: super::port::EntryKind::Ban,
                        subject: key.clone(),
                        nick: nick.clone(),
                        by: m.by.clone(),
                        reason: reason.clone(),
                        until: None,
                        ts: m.ts,
                    };
                    self.settings_mut(&room)
                        .entries
                        .insert((super::port::EntryKind::Ban, key), entry);
                }
                (nick, LeaveReason::Banned)
            }
            ModKind::Invite { nick } => {
                for c in self.holders(&nick.to_ascii_lowercase()) {
                    if let Some(client) = self.clients.get_mut(&c) {
                        if client.account.is_none() && !client.invited.contains(&room) {
                            client.invited.push(room.clone());
                        }
                    }
                }
                return;
            }
            _ => return,
        };
        let Ok(nick) = Nick::parse(nick) else {
            return;
        };
        let conns: Vec<_> = self.rooms.get(&room).map_or_else(Vec::new, |r| {
            self.holders(&nick.key())
                .into_iter()
                .filter(|&c| r.members.contains(c))
                .collect()
        });
        self.throw_out(now, &room, &nick, conns, reason);
    }

    fn remote_presence(&mut self, _now: Now, proc: &str, p: &Presence) {
        let Ok(nick) = Nick::parse(&p.nick) else {
            return;
        };
        let key = nick.key();
        match &p.kind {
            PresenceKind::Join => {
                let before = self.anywhere_in(&p.room, &key);
                self.remote.join(proc, &p.room, nick, p.account.clone());
                if !before {
                    self.tell_room(p.clone());
                }
            }
            PresenceKind::Leave(_) => {
                self.remote.leave(proc, &p.room, &key);
                if !self.anywhere_in(&p.room, &key) {
                    self.tell_room(p.clone());
                }
            }
            PresenceKind::Nick { old } => {
                let Ok(old) = Nick::parse(old) else {
                    return;
                };
                let had_new = old.key() != key && self.anywhere_in(&p.room, &key);
                self.remote.leave(proc, &p.room, &old.key());
                self.remote.join(proc, &p.room, nick, p.account.clone());
                if !had_new && !self.anywhere_in(&p.room, &old.key()) {
                    self.tell_room(p.clone());
                }
            }
        }
    }

    /// Everyone's state, read whole (after a reconnect): it replaces what
    /// was known of the others (this process's own entries, `own`, are left
    /// out), and this process's members are told who joined or left.
    pub fn remote_state(&mut self, now: Now, own: &str, state: RemoteState) {
        self.remote.nicks.clear();
        for (proc, nick) in state.nicks {
            if proc != own {
                self.remote.hold(&proc, nick);
            }
        }
        self.unlisted.extend(state.unlisted);
        let old = std::mem::take(&mut self.remote.rooms);
        for (room, proc, nick, account) in state.members {
            if proc != own {
                self.remote.join(&proc, &room, nick, account);
            }
        }
        // Joins and leaves, for rooms with members here.
        let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
        for room in rooms {
            let before: BTreeMap<String, Nick> = old
                .get(&room)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, m)| m.nick.clone().map(|n| (k.clone(), n)))
                        .collect()
                })
                .unwrap_or_default();
            let local =
                |hub: &Hub, key: &str| hub.rooms.get(&room).is_some_and(|r| r.members.holds(key));
            let mut events = Vec::new();
            for (key, nick) in &before {
                if !self.remote.in_room(&room, key) && !local(self, key) {
                    events.push((
                        PresenceKind::Leave(LeaveReason::Timeout),
                        nick.clone(),
                        None,
                    ));
                }
            }
            for (key, nick) in self
                .remote
                .members(&room)
                .map(|n| (n.key(), n.clone()))
                .collect::<Vec<_>>()
            {
                if !before.contains_key(&key) && !local(self, &key) {
                    let account = self
                        .remote
                        .rooms
                        .get(&room)
                        .and_then(|m| m.get(&key))
                        .and_then(|m| m.account.clone());
                    events.push((PresenceKind::Join, nick, account));
                }
            }
            for (kind, nick, account) in events {
                self.tell_room(Presence {
                    room: room.clone(),
                    kind,
                    nick: nick.to_string(),
                    ts: now.ms,
                    account,
                });
            }
        }
    }

    /// A direct message for a nick another process holds: announced (that
    /// process delivers it), and the sender told it was sent.
    pub(super) fn remote_dm(
        &mut self,
        now: Now,
        id: super::ClientId,
        to: &str,
        text: String,
        cid: Option<String>,
        r#ref: Option<String>,
    ) -> Result<(), super::HubError> {
        let key = to.to_ascii_lowercase();
        let to = self
            .remote
            .nicks
            .get(&key)
            .and_then(|by| by.first().map(|(_, n)| n))
            .map_or_else(|| to.to_string(), Nick::to_string);
        let sender = self.client(id)?;
        let from = sender.nick.to_string();
        let account = sender.account.as_ref().map(|_| from.clone());
        let dm = Rc::new(Dm {
            account,
            from,
            to,
            ts: now.ms,
            text,
        });
        self.notify(Notice::Dm(dm.clone()));
        self.reply(id, super::Reply::DmSent(dm.clone(), cid.clone()), r#ref);
        // The sender's other connections here get the sender's copy.
        if let Some(key) = self.clients.get(&id).and_then(|c| c.account.clone()) {
            let copies: Vec<_> = self
                .holders(&key)
                .into_iter()
                .filter(|&c| c != id)
                .collect();
            let copy = Event::Reply(super::Reply::DmSent(dm.clone(), None), None);
            self.deliver(Recipients::List(copies), copy);
        }
        if let (Some(cid), Some(c)) = (cid, self.clients.get_mut(&id)) {
            c.sent.insert(now.ms, cid, super::session::Sent::Dm(dm));
        }
        Ok(())
    }

    /// A `/nick` on a shared server: the store is asked first, and the
    /// client waits for its answer.
    pub(super) fn hold_nick(&mut self, id: super::ClientId, nick: Nick, r#ref: Option<String>) {
        let n = self.remote.next_hold;
        self.remote.next_hold += 1;
        let account = self.clients.get(&id).and_then(|c| c.account.clone());
        self.ops
            .push(super::port::StoreOp::HoldNick(super::port::HoldNick {
                id: n,
                nick: nick.clone(),
                account,
            }));
        self.park_for_store(id);
        self.remote.holds.insert(n, (id, nick, r#ref));
    }

    /// The store's answer to a `/nick`.
    pub(super) fn held(&mut self, now: Now, n: u64, ok: Result<bool, super::StoreError>) {
        let Some((id, nick, r#ref)) = self.remote.holds.remove(&n) else {
            return;
        };
        if !self.unpark_client(id) {
            return;
        }
        let taken_here = self.nicks.get(&nick.key()).is_some_and(|&c| c != id);
        let Ok(ok) = ok else {
            self.error(id, super::shared::unavailable(), r#ref);
            self.run_deferred_for(now, id);
            return;
        };
        if ok && !taken_here {
            self.reply(
                id,
                super::Reply::Nick {
                    nick: nick.to_string(),
                },
                r#ref,
            );
            self.rename(now, id, nick, None);
        } else {
            let e = super::HubError::new(super::ErrorCode::NickTaken, format!("{nick} is taken"));
            self.error(id, e, r#ref);
        }
        self.run_deferred_for(now, id);
    }

    /// Another process holds the nick `key` after all (asked at the same
    /// moment, or an account took its name): a guest holding it here is
    /// given a fresh nick, and told.
    pub fn nick_lost(&mut self, now: Now, key: &str) {
        let Some(&id) = self.nicks.get(key) else {
            return;
        };
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        if c.account.is_some() {
            return;
        }
        let old = c.nick.to_string();
        let fresh = self.fresh_nick();
        let e = super::HubError::new(
            super::ErrorCode::NickTaken,
            format!("{old} was taken on another server at the same moment; you are now {fresh}"),
        );
        self.error(id, e, None);
        self.reply(
            id,
            super::Reply::Nick {
                nick: fresh.to_string(),
            },
            None,
        );
        self.rename(now, id, fresh, None);
    }

    /// Process `proc` died: its nicks are free, and its members leave their
    /// rooms (`timeout`).
    pub fn gone(&mut self, now: Now, proc: &str) {
        let p = self.remote.procs.of(proc);
        self.remote.nicks.retain(|_, by| {
            by.retain(|(q, _)| *q != p);
            !by.is_empty()
        });
        let mut left = Vec::new();
        for (room, members) in &self.remote.rooms {
            for (key, m) in members {
                if m.procs.contains(&p) {
                    left.push((room.clone(), key.clone(), m.nick.clone()));
                }
            }
        }
        for (room, key, nick) in left {
            self.remote.leave(proc, &room, &key);
            if let Some(nick) = nick.filter(|_| !self.anywhere_in(&room, &key)) {
                self.tell_room(Presence {
                    room,
                    kind: PresenceKind::Leave(LeaveReason::Timeout),
                    nick: nick.to_string(),
                    ts: now.ms,
                    account: None,
                });
            }
        }
    }
}
