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

use super::error::{ErrorCode, HubError};
use super::event::{
    Amend, AmendKind, ClientId, ClientKind, Entry, Event, Message, Recipients, Reply,
};
use super::names::RoomName;
use super::port::{NewImage, Publish, PublishChange, Published, StoreError, StoreOp};
use super::session::Sent;
use super::{Hub, Now, Then};

/// A message sent to the store and not arrived yet.
pub(super) struct Draft {
    client: ClientId,
    cid: Option<String>,
    r#ref: Option<String>,
    room: RoomName,
    /// An edit, delete or reaction, not a message.
    change: bool,
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
}

/// Failed drafts remembered in case they arrive after all.
const FAILED_KEPT: usize = 4096;

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
        self.drafts.out.insert(
            n,
            Draft {
                client: id,
                cid,
                r#ref,
                room,
                change: false,
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
        self.drafts.out.insert(
            n,
            Draft {
                client: id,
                cid: None,
                r#ref,
                room,
                change: true,
            },
        );
    }

    /// An entry of a room, numbered by the store: a message or a change
    /// (see [`Hub::arrive`]).
    pub fn arrive_entry(&mut self, now: Now, entry: Entry, origin: Option<u64>) {
        match entry {
            Entry::Message(m) => self.arrive(now, m, origin),
            Entry::Amend(a) => self.arrive_change(a, origin),
        }
    }

    /// An edit, delete or reaction, numbered by the store: the room's
    /// members are sent it (a reaction only to WebSocket clients), its
    /// maker here its acknowledgement.
    fn arrive_change(&mut self, a: Rc<Amend>, origin: Option<u64>) {
        let Some(r) = self.rooms.get_mut(&a.room) else {
            return;
        };
        if a.seq <= r.last_seq {
            return;
        }
        r.last_seq = a.seq;
        let members = r.members.snapshot();
        let draft = origin.and_then(|n| self.drafts.out.remove(&n));
        if let (Some(n), Some(_)) = (origin, &draft) {
            if let Some(i) = self.drafts.failed.iter().position(|f| *f == n) {
                self.drafts.failed.remove(i);
            }
        }
        let sender = draft.as_ref().map(|d| d.client);
        for w in self.loads.values_mut() {
            if w.room == a.room && !matches!(w.then, Then::History { .. }) {
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
            Recipients::Room {
                members,
                except: sender,
            }
        };
        self.deliver(to, Event::Amend(a.clone()));
        if let Some(d) = draft {
            if self.clients.contains_key(&d.client) {
                self.reply(d.client, Reply::Amended(a), d.r#ref);
            }
        }
    }

    /// A message of a room, numbered by the store: the next one after
    /// [`Hub::room_seq`] (an older one is ignored). `origin` names the
    /// request of this hub's that sent it, if one did.
    pub fn arrive(&mut self, now: Now, msg: Rc<Message>, origin: Option<u64>) {
        let Some(r) = self.rooms.get_mut(&msg.room) else {
            return;
        };
        if msg.seq <= r.last_seq {
            return;
        }
        if msg.seq != r.last_seq + 1 {
            warn!(
                "#{}: {} arrived after {}, those between are gone",
                msg.room, msg.seq, r.last_seq
            );
        }
        r.last_seq = msg.seq;
        let draft = origin.and_then(|n| self.drafts.out.remove(&n));
        if let (Some(n), Some(_)) = (origin, &draft) {
            // Told `unavailable`, and stored all the same.
            if let Some(i) = self.drafts.failed.iter().position(|f| *f == n) {
                self.drafts.failed.remove(i);
            }
        }
        let sender = draft.as_ref().map(|d| d.client);
        // The sender never gets the room's copy (see `say`).
        let to = Recipients::Room {
            members: r.members.snapshot(),
            except: sender,
        };
        for w in self.loads.values_mut() {
            if w.room == msg.room && !matches!(w.then, Then::History { .. }) {
                w.tail.push(Entry::Message(msg.clone()));
            }
        }
        self.deliver(to, Event::Message(msg.clone()));
        let Some(d) = draft else {
            return;
        };
        self.messages_total += 1;
        let Some(c) = self.clients.get_mut(&d.client) else {
            return;
        };
        if let Some(cid) = &d.cid {
            c.sent
                .insert(now.ms, cid.clone(), Sent::Message(msg.clone()));
        }
        if c.kind == ClientKind::Ws {
            self.reply(d.client, Reply::Sent(msg, d.cid), d.r#ref);
        }
    }

    /// The store's answer to a [`Publish`].
    pub(super) fn published(&mut self, n: u64, result: Result<Published, StoreError>) {
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
                    self.drafts.out.remove(&n);
                }
            }
            Ok(Published::Repeat(seq, kept)) => {
                let Some(d) = self.drafts.out.remove(&n) else {
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
                let Some(d) = self.drafts.out.remove(&n) else {
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
