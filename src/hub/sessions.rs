//! WebSocket sessions resumed on any process (PROTOCOL-2 section 6).
//!
//! A shared hub announces each session's state (`Notice::Session`: its
//! nick, rooms, guest identity and account, keyed by the token's SHA-256,
//! never the token) whenever it changes, and that the session is gone when
//! it ends; the shell keeps them in Redis. A connection that presents a
//! token this process does not know is not welcomed at once: the hub asks
//! the store to claim the session ([`StoreOp::Claim`]) and holds what the
//! connection sends meanwhile. If another process had it, this one takes
//! it over ([`Hub::claimed`]): the same nick, the same rooms (the rooms
//! see nothing), a `joined` for each. The process that had it is told
//! ([`Hub::taken`]) and lets go of it without a word to its rooms. An
//! unknown token connects as a new client, as on one process.

use std::collections::HashMap;

use super::accounts::{token_hash, Hello};
use super::command::Command;
use super::event::{ClientId, ClientKind, Reply};
use super::limits::Bucket;
use super::names::{Nick, RoomName};
use super::port::{Claim, StoreOp};
use super::remote::Notice;
use super::session::SentLog;
use super::{Client, Hub, Now};

/// A session as the processes share it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The nick it holds.
    pub nick: String,
    /// Its rooms, in the order joined.
    pub rooms: Vec<RoomName>,
    /// The guest identity its messages are stored with (`g:...`).
    pub guest: String,
    /// The account it is logged in as (its key), if any.
    pub account: Option<String>,
}

/// A connection waiting for a claim: how it introduced itself, and what it
/// sent meanwhile.
pub(super) struct Claiming {
    hello: Hello,
    token: String,
    queue: Vec<(Command, Option<String>)>,
}

/// Claims out, by connection.
#[derive(Default)]
pub(super) struct Claims {
    out: HashMap<ClientId, Claiming>,
    /// Sessions whose state changed since the notices were last taken:
    /// the connection, and its token's hash.
    pub(super) touched: HashMap<ClientId, String>,
}

impl Hub {
    /// A WebSocket connection presents `token`, unknown here (`resume`
    /// said no): a shared hub asks the store for the session and returns
    /// true (the connection is welcomed once the store answers); otherwise
    /// false, and the shell connects it as new with `hello`.
    pub fn claim_session(&mut self, id: ClientId, token: &str, hello: Hello) -> bool {
        if !self.shared {
            return false;
        }
        self.ops.push(StoreOp::Claim(Claim {
            id: id.0,
            hash: token_hash(token),
        }));
        self.claims.out.insert(
            id,
            Claiming {
                hello,
                token: token.to_string(),
                queue: Vec::new(),
            },
        );
        true
    }

    /// Whether `id` waits for a claim: its requests are queued.
    pub(super) fn queue_if_claiming(
        &mut self,
        id: ClientId,
        cmd: Command,
        r#ref: Option<String>,
    ) -> Option<(Command, Option<String>)> {
        match self.claims.out.get_mut(&id) {
            Some(c) => {
                c.queue.push((cmd, r#ref));
                None
            }
            None => Some((cmd, r#ref)),
        }
    }

    /// The connection went away while its claim was out.
    pub(super) fn forget_claim(&mut self, id: ClientId) -> bool {
        self.claims.out.remove(&id).is_some()
    }

    /// The store's answer to a claim: the session, taken over from another
    /// process, or `None` (unknown, or the store unreachable): a new client.
    pub(super) fn claimed(&mut self, now: Now, id: u64, state: Option<SessionState>) {
        let id = ClientId(id);
        let Some(c) = self.claims.out.remove(&id) else {
            return; // gone meanwhile
        };
        match state {
            Some(s) => self.adopt(now, id, c.token, c.hello, s),
            None => {
                // Unknown: a new session, under a new token.
                self.connect(now, id, c.hello);
            }
        }
        for (cmd, r#ref) in c.queue {
            self.handle(now, id, cmd, r#ref);
        }
    }

    /// Takes over session `s` (token `token`) for connection `id`.
    fn adopt(&mut self, now: Now, id: ClientId, token: String, hello: Hello, s: SessionState) {
        let nick = match Nick::parse(&s.nick) {
            Ok(n) if self.nicks.get(&n.key()).is_none_or(|&c| c == id) => n,
            _ => self.fresh_nick(),
        };
        let account = s
            .account
            .filter(|k| self.accounts.exists(k) && *k == nick.key());
        self.nicks.insert(nick.key(), id);
        self.touch_nick(nick.key());
        self.sessions.insert(token.clone(), id);
        if let Some(k) = &account {
            self.accounts.online.entry(k.clone()).or_default().push(id);
        }
        let welcome = Reply::Welcome {
            nick: nick.to_string(),
            session: Some(token.clone()),
            store_id: self.store_id.clone(),
            limits: self.limits(),
            account: account.as_ref().map(|_| nick.to_string()),
        };
        self.clients.insert(
            id,
            Box::new(Client {
                nick,
                kind: ClientKind::Ws,
                rooms: Vec::new(),
                current: None,
                bucket: Bucket::new(self.config.rate, now.ms),
                session: Some(token),
                sent: SentLog::default(),
                held_until: None,
                last_typing_ms: None,
                account,
                token_hash: None,
                peer: hello.peer,
                invited: Vec::new(),
                guest: if s.guest.starts_with("g:") {
                    s.guest
                } else {
                    format!("g:{:016x}", self.rng.next_u64())
                },
            }),
        );
        self.touch_session(id);
        self.reply(id, welcome, None);
        // Its rooms again, each with a `joined`; the rooms see nothing (the
        // nick is in them, on the process that had it).
        // One at a time: each waits for its read, the next behind it.
        for room in s.rooms {
            self.handle(now, id, Command::Join { room, since: None }, None);
        }
    }

    /// Another process took over the session whose token hashes to `hash`
    /// (nick `nick`, in `rooms`): its rooms already count it there. If this
    /// process had it, it lets go of it without a word to the rooms.
    pub fn taken(&mut self, now: Now, to: &str, hash: &str, nick: &str, rooms: &[RoomName]) {
        let Ok(n) = Nick::parse(nick) else {
            return;
        };
        for room in rooms {
            self.remote.join_quietly(to, room, n.clone());
        }
        let holder = self
            .sessions
            .iter()
            .find(|(t, _)| token_hash(t) == hash)
            .map(|(_, &c)| c);
        let Some(id) = holder else {
            return;
        };
        // Its connection, if still open, is told it was replaced.
        let held = self
            .clients
            .get(&id)
            .is_some_and(|c| c.held_until.is_some());
        if !held {
            self.push(super::event::Effect::Replaced(id));
        }
        self.disconnect(now, id, super::event::LeaveReason::Timeout);
        // The session lives on elsewhere: not announced as gone.
        self.claims.touched.remove(&id);
    }

    /// The session of `id`, if it has one, changed: announced with the
    /// turn's notices.
    pub(super) fn touch_session(&mut self, id: ClientId) {
        if !self.shared {
            return;
        }
        if let Some(token) = self.clients.get(&id).and_then(|c| c.session.as_ref()) {
            self.claims.touched.insert(id, token_hash(token));
        }
    }

    /// The notices for the sessions touched.
    /// A session's rooms as Redis keeps them: those it is in, then those
    /// it is joining (a join waiting for its read, or queued behind one: a
    /// session just taken over rejoins its rooms so), so a resume on yet
    /// another process meanwhile does not lose them.
    fn session_rooms(&self, id: ClientId, rooms: &[RoomName]) -> Vec<RoomName> {
        let mut all = rooms.to_vec();
        let loading = self.loads.values().filter_map(|w| {
            (w.client == id && matches!(w.then, super::Then::Join { .. })).then_some(&w.room)
        });
        let queued = self.parked.get(&id).into_iter().flat_map(|p| {
            p.queue.iter().filter_map(|d| match d {
                super::Deferred::Command(Command::Join { room, .. }, _) => Some(room),
                _ => None,
            })
        });
        for room in loading.chain(queued) {
            if !all.contains(room) {
                all.push(room.clone());
            }
        }
        all
    }

    pub(super) fn session_notices(&mut self) {
        for (id, hash) in std::mem::take(&mut self.claims.touched) {
            let n = match self.clients.get(&id) {
                Some(c) => Notice::Session {
                    hash,
                    state: Some(SessionState {
                        nick: c.nick.to_string(),
                        rooms: self.session_rooms(id, &c.rooms),
                        guest: c.guest.clone(),
                        account: c.account.clone(),
                    }),
                    held: c.held_until.is_some(),
                },
                None => Notice::Session {
                    hash,
                    state: None,
                    held: false,
                },
            };
            self.remote.push_notice(n);
        }
    }
}
