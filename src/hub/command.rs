//! What a client asks of the hub, whatever wire it came over.

use super::names::RoomName;

/// Paging bounds for history; both exclusive, as PROTOCOL.md says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Only messages with a smaller `seq` (JSON `before`); without `after`,
    /// the page is the latest of them.
    pub before: Option<u64>,
    /// Only messages with a larger `seq` (JSON `after`); the page is then
    /// the earliest of them.
    pub after: Option<u64>,
    /// Most messages in the page: `/history N` (default 20) or JSON `limit`
    /// (default 50), at most 200 for a history request.
    pub limit: usize,
}

/// One request. `room: None` means the sender's current room (line clients).
/// `cid` is the client's id for an idempotent send (WebSocket clients).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Say something in a room: a plain line (`//text` says `/text`),
    /// `/me TEXT`, or JSON `say`. Counts against flood control.
    Say {
        /// The room; `None` for the current room.
        room: Option<RoomName>,
        /// The text as sent; the hub checks it against `--max-message`,
        /// refuses it empty and sanitizes it.
        text: String,
        /// An action (`/me`, `"action":true`) rather than a plain message.
        action: bool,
        /// JSON `cid`, 1-64 characters: a repeat within 10 minutes is
        /// answered with the original message instead of being sent again.
        cid: Option<String>,
        /// The message it answers: JSON `reply_to` (a seq), or `/reply
        /// NICK TEXT` (NICK's last message in the room).
        reply_to: Option<Target>,
    },
    /// Share an image (bytes already decoded) with an optional caption.
    /// `id` is made by the shell from the OS's randomness: it is the
    /// image's unguessable name in `/media/ID`.
    Image {
        /// The room to share it in.
        room: RoomName,
        /// The file's bytes, decoded from the base64 `data`; refused over
        /// `--max-image` (`too_large`) or if not PNG, JPEG, GIF or WebP by
        /// its magic bytes (`bad_image`).
        data: Vec<u8>,
        /// The caption (JSON `text`); may be absent or empty.
        text: Option<String>,
        /// As in `Say`.
        cid: Option<String>,
        /// 128 random bits in hex; empty when the shell had no randomness,
        /// and the image is then refused (`bad_image`).
        id: String,
        /// As in `Say`.
        reply_to: Option<Target>,
    },
    /// `/nick NAME` or JSON `nick`: the nick wanted, not yet validated
    /// (`nick_invalid`, `nick_taken`).
    Nick(String),
    /// Join a room; with `since`, catch up on the messages after that seq
    /// instead of the latest `--history`.
    Join {
        /// The room to join (made if absent) and make current.
        room: RoomName,
        /// JSON `since`: the last `seq` the client has of the room.
        since: Option<u64>,
    },
    /// `/create` or JSON `create`: make an unlisted room with a fresh
    /// random 6-character code and join it (answered with `joined`).
    Create,
    /// `/leave [ROOM]` (`/part`) or JSON `leave`: leave the room, or the
    /// current room for `None`.
    Leave(Option<RoomName>),
    /// `/rooms` (`/list`) or JSON `rooms`: the rooms anyone may find (with
    /// members, not made by `/create`) and their member counts.
    Rooms,
    /// `/who [ROOM]` (`/names`) or JSON `who`: list the members of the
    /// room, or of the current room for `None`.
    Who(Option<RoomName>),
    /// A direct message: `/msg NICK TEXT` or JSON `dm`. Never stored;
    /// counts against flood control.
    Dm {
        /// The recipient's nick, compared case-insensitively; nobody by
        /// that nick is `no_such_user`.
        to: String,
        /// The text as sent, checked and sanitized as in `Say`.
        text: String,
        /// As in `Say`.
        cid: Option<String>,
    },
    /// A page of a room's stored messages: `/history [N]` or JSON
    /// `history`.
    History {
        /// The room; `None` for the current room.
        room: Option<RoomName>,
        /// Which messages, and how many.
        page: Page,
    },
    /// "I am typing" in a room: relayed to its WebSocket members, never stored.
    Typing(RoomName),
    /// `/help`: the commands and the limits in force (line clients).
    Help,
    /// `/quit [REASON]`: answered `*** bye`, then the connection closes and
    /// its rooms see it leave (`quit`, with REASON if given; line clients).
    Quit(Option<String>),
    /// `/register PASSWORD` or JSON `register`: registers the current nick
    /// as an account and logs in (PROTOCOL-2 section 1).
    Register {
        /// 8 to 128 bytes.
        password: String,
    },
    /// `/login NICK PASSWORD` or JSON `login` with `nick` and `password`.
    Login {
        /// The account's name, compared case-insensitively.
        nick: String,
        /// Its password.
        password: String,
    },
    /// JSON `login` with `token`: a login token given out earlier.
    LoginToken(String),
    /// `/logout` or JSON `logout`: back to a fresh guest nick; this
    /// login's token is revoked.
    Logout,
    /// `/password OLD NEW` or JSON `password`: every token of the account
    /// is revoked, and this connection is given a new one.
    Password {
        /// The password now.
        old: String,
        /// The password wanted, 8 to 128 bytes.
        new: String,
    },
    /// Change a message's text: JSON `edit`, or `/edit TEXT` (your last
    /// message in the current room). The author only, within
    /// `--edit-window` (PROTOCOL-2 section 3).
    Edit {
        /// The room; `None` for the current room (line clients).
        room: Option<RoomName>,
        /// Which message.
        target: Target,
        /// The new text, checked like a message's.
        text: String,
    },
    /// Delete a message: JSON `delete`, `/delete` (your last message) or
    /// `/delete NICK` (NICK's last message; ops). The author, or an op.
    Delete {
        /// The room; `None` for the current room (line clients).
        room: Option<RoomName>,
        /// Which message.
        target: Target,
    },
    /// Toggle one's reaction: JSON `react`, or `/react NICK EMOJI`.
    React {
        /// The room; `None` for the current room (line clients).
        room: Option<RoomName>,
        /// Which message.
        target: Target,
        /// 1 to 32 bytes, no spaces or control characters.
        emoji: String,
    },
    /// Search a room's history (or every room one is in): JSON `search`,
    /// or `/search WORDS` in the current room (PROTOCOL-2 section 4).
    Search {
        /// The query as typed: words, an optional `"phrase"`, `from:nick`.
        /// Any string is a valid query.
        q: String,
        /// Where to search.
        scope: Scope,
        /// Most results (default 20, at most 100).
        limit: usize,
        /// Only older results: a `seq` when one room is searched, a `ts`
        /// (ms) across rooms.
        before: Option<u64>,
    },
    /// A moderation action (`/kick`, `/ban`, ..., or JSON `mod`).
    Mod {
        /// The room; `None` for the current room (line clients).
        room: Option<RoomName>,
        /// What to do.
        action: ModAction,
    },
}

/// What a moderator asks (PROTOCOL-2 section 2). Nicks are as typed, not
/// yet validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModAction {
    /// `/kick NICK [REASON]`: NICK's connections leave the room.
    Kick {
        /// Who.
        nick: String,
        /// Why (the rest of the line).
        reason: Option<String>,
    },
    /// `/ban NICK [REASON]`: kick, and no coming back (an account by its
    /// name, a guest by its address).
    Ban {
        /// Who.
        nick: String,
        /// Why.
        reason: Option<String>,
    },
    /// `/unban NICK`.
    Unban {
        /// Who, as the ban list spells it.
        nick: String,
    },
    /// `/mute NICK [SECS]`: no saying in the room, for SECS seconds or
    /// until unmuted.
    Mute {
        /// Who.
        nick: String,
        /// For how long; `None` until `/unmute`.
        secs: Option<u64>,
    },
    /// `/unmute NICK`.
    Unmute {
        /// Who.
        nick: String,
    },
    /// `/op NICK` (owner only; NICK must be an account).
    Op {
        /// Who.
        nick: String,
    },
    /// `/deop NICK` (owner only).
    Deop {
        /// Who.
        nick: String,
    },
    /// `/topic TEXT`: empty clears it.
    Topic {
        /// The topic.
        text: String,
    },
    /// `/invite-only on|off`.
    InviteOnly {
        /// On or off.
        on: bool,
    },
    /// `/invite NICK`.
    Invite {
        /// Who.
        nick: String,
    },
    /// `/bans` or JSON `"action":"bans"`: the room's ban list, for ops (a
    /// natter addition: the page's settings panel lists bans to lift).
    Bans,
}

/// Which message an edit, delete, reaction or reply is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// By its `seq` in the room (JSON clients).
    Seq(u64),
    /// The sender's own last message in the room (`/edit`, `/delete`).
    Mine,
    /// The last message in the room from this nick, as typed (`/delete
    /// NICK`, `/reply NICK`, `/react NICK`).
    LastOf(String),
}

/// Where a search looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The sender's current room (`/search`).
    Current,
    /// One room (JSON `room`).
    Room(RoomName),
    /// Every room the sender is in (JSON without `room`).
    Joined,
}

/// Results a search returns without a `limit`.
pub const DEFAULT_SEARCH: usize = 20;
/// Most results one search returns.
pub const MAX_SEARCH: usize = 100;
