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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Say {
        room: Option<RoomName>,
        text: String,
        action: bool,
    },
    Nick(String),
    Join(RoomName),
    Create,
    Leave(Option<RoomName>),
    Rooms,
    Who(Option<RoomName>),
    Dm {
        to: String,
        text: String,
    },
    History {
        room: Option<RoomName>,
        page: Page,
    },
    Help,
    Quit(Option<String>),
}
