//! What the hub says: events for rooms, replies for one client, and the
//! effects that carry them to recipients.
//!
//! An [`Event`] is wire-neutral. The shell renders it once per wire format
//! (`proto::line` now, JSON later) and hands the same bytes to every
//! recipient of one [`Effect::Deliver`].

use std::rc::Rc;

use super::error::ErrorCode;
use super::names::{Nick, RoomName};

/// Opaque id of a connected client. The shell packs its slab key and a
/// generation into it, so a reused slab slot never receives a stale event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub u64);

/// Which wire format a client speaks: decides what the hub sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// netcat and friends: no echo of its own room events, no typing.
    Line,
    /// A WebSocket client: gets its own messages back as acknowledgement.
    Ws,
}

/// A stored room message. `seq` numbers one room's messages 1, 2, 3, ...
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub room: RoomName,
    pub seq: u64,
    /// Milliseconds since the Unix epoch, set by the server.
    pub ts: u64,
    pub from: String,
    pub text: String,
    /// `/me` action rather than a plain message.
    pub action: bool,
    /// An image shared with this message (`text` is then its caption).
    pub image: Option<ImageRef>,
}

/// An image's identity and kind; its bytes live in the store, served at
/// `/media/ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Unguessable: 128 random bits in hex, made by the shell.
    pub id: String,
    /// Told from the file's magic bytes, never from the client.
    pub mime: &'static str,
    pub size: usize,
}

/// Why someone left a room; PROTOCOL.md spells each one on both wires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// `/leave`: the plain `left` line.
    Leave,
    Quit(Option<String>),
    Disconnect,
    Timeout,
    SlowConsumer,
    Shutdown,
}

/// Something that happened in a room, seen by its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceKind {
    Join,
    Leave(LeaveReason),
    Nick { old: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    pub room: RoomName,
    pub kind: PresenceKind,
    /// The nick concerned (the new one for a nick change).
    pub nick: String,
    pub ts: u64,
}

/// Someone typing in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typing {
    pub room: RoomName,
    pub nick: String,
    pub ts: u64,
}

/// A direct message. Not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dm {
    pub from: String,
    pub to: String,
    pub ts: u64,
    pub text: String,
}

/// The loop's own figures, filled in by the shell for `/stats`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub line: usize,
    pub http: usize,
    pub ws: usize,
    /// Connections still being sniffed (no protocol chosen yet).
    pub pending: usize,
    pub loop_iterations: u64,
    pub poll_events: u64,
    pub bytes_queued: usize,
    pub messages: u64,
    pub deliveries: u64,
}

impl Stats {
    pub fn connections(&self) -> usize {
        self.line + self.http + self.ws + self.pending
    }

    /// Mean readiness events per `poll` wake-up.
    pub fn events_per_wakeup(&self) -> f64 {
        if self.loop_iterations == 0 {
            0.0
        } else {
            self.poll_events as f64 / self.loop_iterations as f64
        }
    }
}

/// The limits a client is told about (`/help`, `welcome`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_line: usize,
    pub max_message: usize,
    pub history: usize,
    /// Messages a second, and the burst allowed before that applies.
    pub rate: u64,
    pub burst: u64,
    /// Largest WebSocket message, and largest image, in bytes.
    pub max_ws_message: usize,
    pub max_image: usize,
}

/// An answer to one client about its own request or state.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Welcome {
        nick: String,
        /// The session token a WebSocket client may resume with.
        session: Option<String>,
        store_id: String,
        limits: Limits,
    },
    /// Your nick is now this.
    Nick {
        nick: String,
    },
    Joined {
        room: RoomName,
        members: Vec<Nick>,
        messages: Vec<Rc<Message>>,
        /// Set when the room was just made by `/create`.
        created: bool,
        /// The room's latest seq, whatever `messages` holds.
        last_seq: u64,
        /// A catch-up (`since`) found more missed messages than it carries.
        gap: bool,
        store_id: String,
    },
    /// `/join` of a room you are already in: it is now current.
    Current {
        room: RoomName,
    },
    Left {
        room: RoomName,
    },
    Who {
        room: RoomName,
        members: Vec<Nick>,
    },
    Rooms {
        rooms: Vec<(RoomName, usize)>,
    },
    History {
        room: RoomName,
        messages: Vec<Rc<Message>>,
    },
    /// The copy of a direct message its sender gets, with the sender's `cid`.
    DmSent(Rc<Dm>, Option<String>),
    /// The copy of its own room message a WebSocket sender gets once it is
    /// stored: its acknowledgement, with its `cid`.
    Sent(Rc<Message>, Option<String>),
    Help(Limits),
    Stats(Stats),
    Bye,
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Anything delivered to a client.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Message(Rc<Message>),
    Presence(Rc<Presence>),
    /// A direct message, to its recipient.
    Dm(Rc<Dm>),
    /// Someone is typing; never stored, dropped for a recipient that is behind.
    Typing(Rc<Typing>),
    /// An answer for one client, with the `ref` of the request it answers.
    Reply(Reply, Option<String>),
}

/// Who gets one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipients {
    One(ClientId),
    List(Vec<ClientId>),
    /// A room's members when the event happened (the room's own list,
    /// shared), less `except` (the sender, say).
    Room {
        members: Rc<Vec<ClientId>>,
        except: Option<ClientId>,
    },
}

impl Recipients {
    pub fn iter(&self) -> impl Iterator<Item = ClientId> + '_ {
        let (all, except) = match self {
            Recipients::One(id) => (std::slice::from_ref(id), None),
            Recipients::List(list) => (list.as_slice(), None),
            Recipients::Room { members, except } => (members.as_slice(), *except),
        };
        all.iter().copied().filter(move |&c| Some(c) != except)
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn contains(&self, id: ClientId) -> bool {
        self.iter().any(|c| c == id)
    }
}

/// What the shell must do once the iteration's messages are committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send `event` to every client in `to`, encoded once per wire format.
    Deliver { to: Recipients, event: Event },
    /// Close the client's connection once its queued output is flushed.
    Close(ClientId),
    /// The client's session was resumed by another connection: close this
    /// one (WebSocket code 4000). The client lives on under the new id.
    Replaced(ClientId),
}
