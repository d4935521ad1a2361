//! The hub's persistence port: what the hub asks of a store, and the
//! answers it takes back.
//!
//! The hub never calls a store. It queues [`StoreOp`]s, which the shell
//! takes with [`Hub::take_store_ops`](super::Hub::take_store_ops) and
//! carries out, and the shell hands each result back as a [`StoreAnswer`]
//! with [`Hub::answer`](super::Hub::answer). A store may answer at once, in
//! the same turn (SQLite, on the loop's thread), or one or more turns later
//! (a store across the network); the hub works the same either way:
//!
//! - A batch of messages ([`StoreOp::Append`]) is sent to nobody until its
//!   [`StoreAnswer::Committed`] says it is stored: everything the hub
//!   produced from the first message of the batch on waits behind it, so
//!   every client still sees events in the order they happened. A batch
//!   the store refuses is taken back: its messages reach no one and each
//!   sender is told.
//! - A read ([`StoreOp::Load`]: a room's latest `seq` and a page of its
//!   history) parks the client that needs it: its later requests wait, in
//!   order, until the answer comes, so `/join x` followed by a message to
//!   `#x` means what it says however late the store answers.
//!
//! Rules for a store: carry out operations in the order they were taken
//! (a read sees every batch taken before it) and answer in that order.
//!
//! Read next: `store` (the implementations), `server::persist` (the
//! driver that runs them on the loop).

use std::fmt;
use std::rc::Rc;

use super::command::Page;
use super::event::Message;
use super::names::RoomName;

/// A failure of the storage layer: the server's fault, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// One thing the hub needs from the store.
#[derive(Debug)]
pub enum StoreOp {
    /// Store these messages and images, all or nothing.
    Append(Batch),
    /// Read a room's latest `seq` and a page of its history.
    Load(Load),
}

/// Messages accepted together (one loop turn: group commit), with the
/// images they carry.
#[derive(Debug)]
pub struct Batch {
    /// Numbers batches in the order they are taken, from 1.
    pub id: u64,
    /// In `seq` order within each room.
    pub messages: Vec<Rc<Message>>,
    /// The images these messages carry, to be stored in the same
    /// transaction.
    pub images: Vec<NewImage>,
}

/// An image's bytes, stored with the message that carries it.
#[derive(Debug)]
pub struct NewImage {
    /// Random hex, made by the shell; the image's address is `/media/ID`.
    pub id: String,
    /// The type told from the bytes (`image/png`, ...).
    pub mime: &'static str,
    /// The bytes as uploaded.
    pub data: Vec<u8>,
}

/// A read of one room.
#[derive(Debug)]
pub struct Load {
    /// Matches the answer to the request.
    pub id: u64,
    /// The room to read.
    pub room: RoomName,
    /// The history wanted; a `limit` of 0 reads none.
    pub page: Page,
    /// Whether the room's latest stored `seq` is wanted too (a room the
    /// hub does not hold in memory).
    pub last_seq: bool,
}

/// What a store did with one [`StoreOp`].
#[derive(Debug)]
pub enum StoreAnswer {
    /// The batch with this id is stored, or was refused.
    Committed {
        /// The batch's id.
        batch: u64,
        /// `Err`: nothing of it was stored.
        result: Result<(), StoreError>,
    },
    /// The read with this id.
    Loaded {
        /// The read's id.
        load: u64,
        /// What the store has of the room.
        result: Result<Loaded, StoreError>,
    },
}

/// A room as the store has it.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The page asked for, ascending `seq`.
    pub messages: Vec<Rc<Message>>,
    /// The highest `seq` stored for the room (0 for none), if asked for.
    pub last_seq: Option<u64>,
}
