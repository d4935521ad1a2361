//! What a client asks of the hub, whatever wire it came over.

use super::names::RoomName;

/// Paging bounds for history; both exclusive, as PROTOCOL.md says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub limit: usize,
}

/// One request. `room: None` means the sender's current room (line clients).
/// `cid` is the client's id for an idempotent send (WebSocket clients).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Say {
        room: Option<RoomName>,
        text: String,
        action: bool,
        cid: Option<String>,
    },
    /// Share an image (bytes already decoded) with an optional caption.
    /// `id` is made by the shell from the OS's randomness: it is the
    /// image's unguessable name in `/media/ID`.
    Image {
        room: RoomName,
        data: Vec<u8>,
        text: Option<String>,
        cid: Option<String>,
        id: String,
    },
    Nick(String),
    /// Join a room; with `since`, catch up on the messages after that seq
    /// instead of the latest `--history`.
    Join {
        room: RoomName,
        since: Option<u64>,
    },
    Create,
    Leave(Option<RoomName>),
    Rooms,
    Who(Option<RoomName>),
    Dm {
        to: String,
        text: String,
        cid: Option<String>,
    },
    History {
        room: Option<RoomName>,
        page: Page,
    },
    /// "I am typing" in a room: relayed to its WebSocket members, never stored.
    Typing(RoomName),
    Help,
    Quit(Option<String>),
}
