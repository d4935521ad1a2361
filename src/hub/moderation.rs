//! Room owners and moderation (PROTOCOL-2 section 2): who may do what in a
//! room, and the actions themselves.
//!
//! A room made by a logged-in user is owned by that account; the owner
//! names ops; owners, ops and `--admin` accounts moderate. Ranks decide who
//! may act on whom: an admin outranks an owner, who outranks an op, who
//! outranks everyone else, and nobody acts on someone of their own rank or
//! above (an op cannot kick another op; the owner can). A room's settings
//! and lists live in memory for every room that has any, and each change
//! goes to the store in the turn's batch, so what an op did survives a
//! restart. Guests are banned and muted by their address (a guest has no
//! name of its own to hold on to); accounts by name.
//!
//! Read next: `accounts`.

use std::collections::HashMap;
use std::rc::Rc;

use super::command::ModAction;
use super::error::{ErrorCode, HubError};
use super::event::{
    BanInfo, ClientId, Event, LeaveReason, ModEvent, ModKind, Reply, Role, RoomInfo,
};
use super::names::{sanitize, Nick, RoomName};
use super::port::{Change, EntryKind, RoomEntry, RoomRecord};
use super::{Hub, Now};

/// The longest mute, in seconds (a year): longer is "until unmuted".
pub const MAX_MUTE_SECS: u64 = 365 * 24 * 3600;

/// A room's settings and lists.
#[derive(Default)]
pub(super) struct Settings {
    /// The owning account's key.
    pub(super) owner: Option<String>,
    pub(super) topic: String,
    pub(super) invite_only: bool,
    /// Ops, bans, mutes and account invites, by kind and subject.
    pub(super) entries: HashMap<(EntryKind, String), RoomEntry>,
}

impl Settings {
    fn record(&self) -> RoomRecord {
        RoomRecord {
            owner: self.owner.clone(),
            topic: self.topic.clone(),
            invite_only: self.invite_only,
        }
    }
}

/// Ranks, lowest first.
const MEMBER: u8 = 0;
const OP: u8 = 1;
const OWNER: u8 = 2;
const ADMIN: u8 = 3;

fn denied(what: &str) -> HubError {
    HubError::new(ErrorCode::NotPermitted, what.to_string())
}

impl Hub {
    /// The rooms' settings the store holds, at start.
    pub fn set_rooms(&mut self, rooms: Vec<(RoomName, RoomRecord, Vec<RoomEntry>)>) {
        self.settings = rooms
            .into_iter()
            .map(|(room, record, entries)| {
                let settings = Settings {
                    owner: record.owner.map(|o| o.to_ascii_lowercase()),
                    topic: record.topic,
                    invite_only: record.invite_only,
                    entries: entries
                        .into_iter()
                        .map(|e| ((e.kind, e.subject.clone()), e))
                        .collect(),
                };
                (room, settings)
            })
            .collect();
    }

    /// Whether `room` is invite-only (its history is then not served
    /// over HTTP).
    pub fn invite_only(&self, room: &RoomName) -> bool {
        self.settings.get(room).is_some_and(|s| s.invite_only)
    }

    /// The rank of account `key` (or a guest, `None`) in `room`.
    fn rank_of(&self, key: Option<&str>, room: &RoomName) -> u8 {
        let Some(key) = key else {
            return MEMBER;
        };
        if self.config.accounts.admins.iter().any(|a| a == key) {
            return ADMIN;
        }
        let Some(s) = self.settings.get(room) else {
            return MEMBER;
        };
        if s.entries.contains_key(&(EntryKind::Ban, key.to_string())) {
            // Banned: no owner's or op's powers in the room either.
            return MEMBER;
        }
        if s.owner.as_deref() == Some(key) {
            OWNER
        } else if s.entries.contains_key(&(EntryKind::Op, key.to_string())) {
            OP
        } else {
            MEMBER
        }
    }

    fn rank(&self, id: ClientId, room: &RoomName) -> u8 {
        let key = self.clients.get(&id).and_then(|c| c.account.as_deref());
        self.rank_of(key, room)
    }

    /// `id`'s role in `room`, as `joined` tells it.
    pub(super) fn role(&self, id: ClientId, room: &RoomName) -> Role {
        let key = self.clients.get(&id).and_then(|c| c.account.as_deref());
        let owner = self.settings.get(room).and_then(|s| s.owner.as_deref());
        match self.rank_of(key, room) {
            _ if key.is_some() && key == owner => Role::Owner,
            MEMBER => Role::Member,
            _ => Role::Op,
        }
    }

    /// The room's settings, as `joined` tells them.
    pub(super) fn room_info(&self, room: &RoomName) -> RoomInfo {
        // Members here and on other processes sharing the chat.
        let accounts = self
            .member_nicks(room)
            .iter()
            .filter(|n| self.accounts.exists(&n.key()))
            .map(|n| n.to_string())
            .collect();
        let Some(s) = self.settings.get(room) else {
            return RoomInfo {
                accounts,
                ..RoomInfo::default()
            };
        };
        let name = |key: &str| {
            self.accounts
                .by_key
                .get(key)
                .map_or(key.to_string(), |a| a.name.to_string())
        };
        let mut ops: Vec<String> = s
            .entries
            .values()
            .filter(|e| e.kind == EntryKind::Op)
            .map(|e| name(&e.subject))
            .collect();
        ops.sort_by_key(|n| n.to_ascii_lowercase());
        RoomInfo {
            topic: (!s.topic.is_empty()).then(|| s.topic.clone()),
            owner: s.owner.as_deref().map(name),
            ops,
            invite_only: s.invite_only,
            accounts,
        }
    }

    /// The subject a ban or mute of `id` names: its account, or its address.
    fn subject_of(&self, id: ClientId) -> Option<String> {
        let c = self.clients.get(&id)?;
        Some(match &c.account {
            Some(key) => key.clone(),
            None => format!("ip:{}", c.peer.ip),
        })
    }

    /// Whether `id` may join `room`: not banned, and invited if the room
    /// is invite-only.
    pub(super) fn may_join(&self, id: ClientId, room: &RoomName) -> Result<(), HubError> {
        let Some(s) = self.settings.get(room) else {
            return Ok(());
        };
        let Some(subject) = self.subject_of(id) else {
            return Ok(());
        };
        if s.entries.contains_key(&(EntryKind::Ban, subject.clone())) {
            return Err(HubError::new(
                ErrorCode::Banned,
                format!("you are banned from #{room}"),
            ));
        }
        if self.rank(id, room) > MEMBER {
            return Ok(());
        }
        if s.invite_only {
            let invited = s.entries.contains_key(&(EntryKind::Invite, subject))
                || self
                    .clients
                    .get(&id)
                    .is_some_and(|c| c.invited.contains(room));
            if !invited {
                return Err(HubError::new(
                    ErrorCode::InviteOnly,
                    format!("#{room} is invite-only; ask one of its ops for an invite"),
                ));
            }
        }
        Ok(())
    }

    /// `muted` if `id` may not say anything in `room` now. A mute that
    /// ran out is forgotten here.
    pub(super) fn check_muted(
        &mut self,
        now: Now,
        id: ClientId,
        room: &RoomName,
    ) -> Result<(), HubError> {
        let Some(subject) = self.subject_of(id) else {
            return Ok(());
        };
        let Some(s) = self.settings.get_mut(room) else {
            return Ok(());
        };
        let key = (EntryKind::Mute, subject);
        let Some(until) = s.entries.get(&key).map(|e| e.until) else {
            return Ok(());
        };
        match until {
            Some(t) if t <= now.ms => {
                s.entries.remove(&key);
                self.pending_changes.push(Change::EntryDel {
                    room: room.clone(),
                    kind: EntryKind::Mute,
                    subject: key.1,
                });
                Ok(())
            }
            Some(t) => Err(HubError::new(
                ErrorCode::Muted,
                format!(
                    "you are muted in #{room} until {} UTC",
                    super::clock_time(t)
                ),
            )),
            None => Err(HubError::new(
                ErrorCode::Muted,
                format!("you are muted in #{room} until an op unmutes you"),
            )),
        }
    }

    /// A room made by a logged-in client is owned by its account.
    /// The default room is nobody's: everyone is put there.
    pub(super) fn claim(&mut self, id: ClientId, room: &RoomName) {
        if *room == self.config.default_room {
            return;
        }
        let Some(key) = self.clients.get(&id).and_then(|c| c.account.clone()) else {
            return;
        };
        if self.settings.contains_key(room) {
            return;
        }
        let s = Settings {
            owner: Some(key),
            ..Settings::default()
        };
        self.pending_changes.push(Change::RoomPut {
            room: room.clone(),
            settings: s.record(),
        });
        self.settings.insert(room.clone(), s);
    }

    /// `/kick`, `/ban`, ... and JSON `mod`.
    pub(super) fn moderate(
        &mut self,
        now: Now,
        id: ClientId,
        room: Option<RoomName>,
        action: ModAction,
        r#ref: Option<String>,
    ) -> Result<(), HubError> {
        let room = self.target_room(id, room)?;
        let by = self.client(id)?.nick.to_string();
        let rank = self.rank(id, &room);
        let needed = match action {
            ModAction::Op { .. } | ModAction::Deop { .. } => OWNER,
            _ => OP,
        };
        if rank < needed {
            let who = if needed == OWNER {
                "the room's owner"
            } else {
                "ops"
            };
            return Err(denied(&format!("only {who} may do that in #{room}")));
        }
        let kind = match action {
            ModAction::Kick { nick, reason } => {
                let (nick, conns) = self.present(&room, &nick)?;
                self.outranks(rank, &nick, &room)?;
                let reason = self.reason(reason);
                let kind = ModKind::Kick {
                    nick: nick.to_string(),
                    reason,
                };
                self.announce(now, id, &room, by, kind, r#ref);
                self.throw_out(now, &room, &nick, conns, LeaveReason::Kicked);
                return Ok(());
            }
            ModAction::Ban { nick, reason } => {
                let (nick, subject) = self.subject_for(&nick)?;
                self.outranks(rank, &nick, &room)?;
                let reason = self.reason(reason);
                self.put_entry(
                    now,
                    &room,
                    EntryKind::Ban,
                    subject,
                    &nick,
                    &by,
                    reason.clone(),
                    None,
                );
                let conns = self.conns_in(&room, &nick.key());
                let kind = ModKind::Ban {
                    nick: nick.to_string(),
                    reason,
                };
                self.announce(now, id, &room, by, kind, r#ref);
                self.throw_out(now, &room, &nick, conns, LeaveReason::Banned);
                return Ok(());
            }
            ModAction::Unban { nick } => {
                let nick = self.drop_entry(&room, EntryKind::Ban, &nick)?;
                ModKind::Unban { nick }
            }
            ModAction::Mute { nick, secs } => {
                let (nick, subject) = self.subject_for(&nick)?;
                self.outranks(rank, &nick, &room)?;
                let secs = secs.filter(|&s| s > 0 && s <= MAX_MUTE_SECS);
                let until = secs.map(|s| now.ms + s * 1000);
                self.put_entry(
                    now,
                    &room,
                    EntryKind::Mute,
                    subject,
                    &nick,
                    &by,
                    None,
                    until,
                );
                ModKind::Mute {
                    nick: nick.to_string(),
                    secs,
                    until,
                }
            }
            ModAction::Unmute { nick } => {
                let nick = self.drop_entry(&room, EntryKind::Mute, &nick)?;
                ModKind::Unmute { nick }
            }
            ModAction::Op { nick } => {
                let nick = self.account_named(&nick)?;
                self.put_entry(
                    now,
                    &room,
                    EntryKind::Op,
                    nick.key(),
                    &nick,
                    &by,
                    None,
                    None,
                );
                ModKind::Op {
                    nick: nick.to_string(),
                }
            }
            ModAction::Deop { nick } => {
                let nick = self.drop_entry(&room, EntryKind::Op, &nick)?;
                ModKind::Deop { nick }
            }
            ModAction::Topic { text } => {
                let text = sanitize(text.trim());
                if text.len() > self.config.max_message {
                    return Err(HubError::new(
                        ErrorCode::TooLong,
                        format!("a topic is at most {} bytes", self.config.max_message),
                    ));
                }
                self.change_room(&room, |s| s.topic = text.clone());
                ModKind::Topic { text }
            }
            ModAction::InviteOnly { on } => {
                self.change_room(&room, |s| s.invite_only = on);
                ModKind::InviteOnly { on }
            }
            ModAction::Invite { nick } => {
                let parsed = Nick::parse(&nick)?;
                let key = parsed.key();
                if self.accounts.exists(&key) {
                    let name = self.accounts.by_key[&key].name.clone();
                    self.put_entry(now, &room, EntryKind::Invite, key, &name, &by, None, None);
                    ModKind::Invite {
                        nick: name.to_string(),
                    }
                } else {
                    let conns = self.holders(&key);
                    if conns.is_empty() && !self.remote.holds_nick(&key) {
                        return Err(no_such(&parsed));
                    }
                    for c in conns {
                        if let Some(client) = self.clients.get_mut(&c) {
                            if !client.invited.contains(&room) {
                                client.invited.push(room.clone());
                            }
                        }
                    }
                    ModKind::Invite {
                        nick: self.nick_spelling(&key).unwrap_or(parsed.to_string()),
                    }
                }
            }
            ModAction::Bans => {
                let mut bans: Vec<BanInfo> = self
                    .settings
                    .get(&room)
                    .map(|s| {
                        s.entries
                            .values()
                            .filter(|e| e.kind == EntryKind::Ban)
                            .map(|e| BanInfo {
                                nick: e.nick.clone(),
                                account: !e.subject.starts_with("ip:"),
                                by: e.by.clone(),
                                reason: e.reason.clone(),
                                ts: e.ts,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                bans.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.nick.cmp(&b.nick)));
                self.reply(id, Reply::Bans { room, bans }, r#ref);
                return Ok(());
            }
        };
        self.announce(now, id, &room, by, kind, r#ref);
        Ok(())
    }

    /// A kick's or ban's reason, cleaned and cut to `--max-message` bytes.
    fn reason(&self, reason: Option<String>) -> Option<String> {
        reason
            .map(|r| super::clip(&sanitize(r.trim()), self.config.max_message))
            .filter(|r| !r.is_empty())
    }

    /// The event to the room's members, and the op's own copy with `ref`.
    fn announce(
        &mut self,
        now: Now,
        id: ClientId,
        room: &RoomName,
        by: String,
        action: ModKind,
        r#ref: Option<String>,
    ) {
        let event = Rc::new(ModEvent {
            room: room.clone(),
            by,
            action,
            ts: now.ms,
        });
        let to = self.others(room, id);
        self.notify(super::remote::Notice::Mod(event.clone()));
        self.deliver(to, Event::Mod(event.clone()));
        self.reply(id, Reply::Mod(event), r#ref);
    }

    /// The connections holding `nick` that are in `room`, or `no_such_user`.
    fn present(&self, room: &RoomName, nick: &str) -> Result<(Nick, Vec<ClientId>), HubError> {
        let parsed = Nick::parse(nick)?;
        let conns = self.conns_in(room, &parsed.key());
        if conns.is_empty() {
            // In the room on another process: that process throws it out.
            if let Some(n) = self.remote.member(room, &parsed.key()) {
                return Ok((n.clone(), conns));
            }
        }
        let Some(&first) = conns.first() else {
            return Err(HubError::new(
                ErrorCode::NoSuchUser,
                format!("nobody called {parsed} is in #{room}"),
            ));
        };
        let nick = self.clients.get(&first).map_or(parsed, |c| c.nick.clone());
        Ok((nick, conns))
    }

    fn conns_in(&self, room: &RoomName, key: &str) -> Vec<ClientId> {
        let Some(r) = self.rooms.get(room) else {
            return Vec::new();
        };
        self.holders(key)
            .into_iter()
            .filter(|&c| r.members.contains(c))
            .collect()
    }

    fn nick_spelling(&self, key: &str) -> Option<String> {
        let id = self.nicks.get(key)?;
        Some(self.clients.get(id)?.nick.to_string())
    }

    /// Whom a ban or mute of `nick` names: an account by its key (whether
    /// or not it is connected), a connected guest by its address.
    fn subject_for(&self, nick: &str) -> Result<(Nick, String), HubError> {
        let parsed = Nick::parse(nick)?;
        let key = parsed.key();
        if let Some(a) = self.accounts.by_key.get(&key) {
            return Ok((a.name.clone(), key));
        }
        let Some(&id) = self.nicks.get(&key) else {
            return Err(no_such(&parsed));
        };
        let c = self.clients.get(&id).ok_or_else(|| no_such(&parsed))?;
        Ok((c.nick.clone(), format!("ip:{}", c.peer.ip)))
    }

    /// An account's name, or `not_permitted` for a guest (ops are accounts).
    fn account_named(&self, nick: &str) -> Result<Nick, HubError> {
        let parsed = Nick::parse(nick)?;
        match self.accounts.by_key.get(&parsed.key()) {
            Some(a) => Ok(a.name.clone()),
            None => Err(denied(&format!(
                "only accounts can be ops, and {parsed} is not one"
            ))),
        }
    }

    /// `not_permitted` unless `rank` is above `nick`'s in `room`.
    fn outranks(&self, rank: u8, nick: &Nick, room: &RoomName) -> Result<(), HubError> {
        let key = nick.key();
        let theirs = if self.accounts.exists(&key) {
            self.rank_of(Some(&key), room)
        } else {
            MEMBER
        };
        if theirs >= rank {
            return Err(denied(&format!(
                "{nick} is {} of #{room}; you cannot do that to them",
                match theirs {
                    ADMIN => "an admin",
                    OWNER => "the owner",
                    OP => "an op",
                    _ => "a member",
                }
            )));
        }
        Ok(())
    }

    // The parts of an entry, as each action has them.
    #[allow(clippy::too_many_arguments)]
    fn put_entry(
        &mut self,
        now: Now,
        room: &RoomName,
        kind: EntryKind,
        subject: String,
        nick: &Nick,
        by: &str,
        reason: Option<String>,
        until: Option<u64>,
    ) {
        let entry = RoomEntry {
            kind,
            subject: subject.clone(),
            nick: nick.to_string(),
            by: by.to_string(),
            reason,
            until,
            ts: now.ms,
        };
        self.settings_mut(room)
            .entries
            .insert((kind, subject), entry.clone());
        self.pending_changes.push(Change::EntryPut {
            room: room.clone(),
            entry,
        });
    }

    /// Removes the entry of `kind` naming `nick` (an account's name, or the
    /// nick a guest's entry was made under); returns the nick as spelled.
    fn drop_entry(
        &mut self,
        room: &RoomName,
        kind: EntryKind,
        nick: &str,
    ) -> Result<String, HubError> {
        let parsed = Nick::parse(nick)?;
        let key = parsed.key();
        let found = self.settings.get(room).and_then(|s| {
            s.entries
                .values()
                .filter(|e| e.kind == kind)
                .find(|e| e.subject == key || e.nick.eq_ignore_ascii_case(&key))
                .map(|e| (e.subject.clone(), e.nick.clone()))
        });
        let Some((subject, spelled)) = found else {
            let what = match kind {
                EntryKind::Ban => "banned",
                EntryKind::Mute => "muted",
                EntryKind::Op => "an op",
                EntryKind::Invite => "invited",
            };
            return Err(HubError::new(
                ErrorCode::NoSuchUser,
                format!("{parsed} is not {what} in #{room}"),
            ));
        };
        if let Some(s) = self.settings.get_mut(room) {
            s.entries.remove(&(kind, subject.clone()));
        }
        self.pending_changes.push(Change::EntryDel {
            room: room.clone(),
            kind,
            subject,
        });
        Ok(spelled)
    }

    pub(super) fn settings_mut(&mut self, room: &RoomName) -> &mut Settings {
        if !self.settings.contains_key(room) {
            self.pending_changes.push(Change::RoomPut {
                room: room.clone(),
                settings: RoomRecord::default(),
            });
        }
        self.settings.entry(room.clone()).or_default()
    }

    fn change_room(&mut self, room: &RoomName, change: impl FnOnce(&mut Settings)) {
        let s = self.settings_mut(room);
        change(s);
        let record = s.record();
        self.pending_changes.push(Change::RoomPut {
            room: room.clone(),
            settings: record,
        });
    }

    /// `conns` (all holding `nick`) leave `room`: each is told `left`; the
    /// others see `nick` leave with `reason`.
    pub(super) fn throw_out(
        &mut self,
        now: Now,
        room: &RoomName,
        nick: &Nick,
        conns: Vec<ClientId>,
        reason: LeaveReason,
    ) {
        if conns.is_empty() {
            return;
        }
        for &c in &conns {
            if let Some(client) = self.clients.get_mut(&c) {
                client.rooms.retain(|r| r != room);
                if client.current.as_ref() == Some(room) {
                    client.current = client.rooms.last().cloned();
                }
            }
            self.touch_session(c);
            self.reply(c, Reply::Left { room: room.clone() }, None);
        }
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        for &c in &conns {
            r.members.remove(c);
        }
        self.member_left(now, room, nick, reason);
    }
}

fn no_such(nick: &Nick) -> HubError {
    HubError::new(ErrorCode::NoSuchUser, format!("nobody is called {nick}"))
}
