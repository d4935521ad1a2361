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
    /// The room it was said in.
    pub room: RoomName,
    /// Its number in `room`, given by the hub when it accepts the message;
    /// never reused, even across restarts.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, set by the server.
    pub ts: u64,
    /// The sender's nick when it was sent.
    pub from: String,
    /// The text, control characters (but tab) replaced with U+FFFD; for an
    /// image, its caption, possibly empty.
    pub text: String,
    /// `/me` action rather than a plain message.
    pub action: bool,
    /// An image shared with this message (`text` is then its caption).
    pub image: Option<ImageRef>,
    /// The account the sender was logged in as (JSON `account`); `None`
    /// for a guest.
    pub account: Option<String>,
    /// Who may edit or delete it: `a:KEY` for an account (its lowercase
    /// name), `g:ID` for a guest's connection (an id the hub made for it,
    /// kept across a resume). Stored, never sent.
    pub author: String,
    /// The message it answers (JSON `reply_to`), as it was when answered.
    pub reply_to: Option<ReplyTo>,
    /// The nicks it names with `@nick` that were accounts or connected
    /// when it was sent, as they spell themselves (JSON `mentions`).
    pub mentions: Vec<String>,
    /// When it was last edited (JSON `edited_ts`), as history shows it now.
    pub edited_ts: Option<u64>,
    /// Deleted: `text` is empty and `image` gone; history shows only that
    /// it was there (JSON `deleted:true`).
    pub deleted: bool,
    /// Its reactions now, each emoji with who reacted, in the order the
    /// emoji were first used (JSON `reactions`). At most
    /// [`MAX_REACTIONS`] emoji.
    pub reactions: Vec<Reaction>,
}

/// Most different emoji one message carries (PROTOCOL-2 section 3).
pub const MAX_REACTIONS: usize = 20;
/// Longest emoji, in bytes.
pub const MAX_EMOJI: usize = 32;
/// Characters of the answered message a reply quotes (JSON).
pub const REPLY_QUOTE: usize = 100;

impl Message {
    /// The message with one change of it made (what the store keeps;
    /// a deleted message is left as it is).
    pub fn amend(&mut self, a: &Amend) {
        if self.deleted {
            return;
        }
        match &a.kind {
            AmendKind::Edit { text } => {
                self.text.clone_from(text);
                self.edited_ts = Some(a.ts);
            }
            AmendKind::React { emoji, on: true } => {
                let reactor = Reactor {
                    author: a.author.clone(),
                    nick: a.by.clone(),
                };
                match self.reactions.iter_mut().find(|r| r.emoji == *emoji) {
                    Some(r) if r.by.iter().any(|x| x.author == a.author) => {}
                    Some(r) => r.by.push(reactor),
                    None => self.reactions.push(Reaction {
                        emoji: emoji.clone(),
                        by: vec![reactor],
                    }),
                }
            }
            AmendKind::React { emoji, on: false } => {
                if let Some(r) = self.reactions.iter_mut().find(|r| r.emoji == *emoji) {
                    r.by.retain(|x| x.author != a.author);
                }
                self.reactions.retain(|r| !r.by.is_empty());
            }
            AmendKind::Delete { .. } => {
                self.image = None;
                self.deleted = true;
                self.text.clear();
                self.reactions.clear();
                self.reply_to = None;
                self.mentions.clear();
                self.edited_ts = None;
            }
        }
    }

    /// A plain message as sent: no reply, mentions, edits or reactions.
    /// The fields of v2 section 3 are set afterwards where needed.
    pub fn new(room: RoomName, seq: u64, ts: u64, from: String, text: String) -> Message {
        Message {
            room,
            seq,
            ts,
            author: String::new(),
            from,
            text,
            action: false,
            image: None,
            account: None,
            reply_to: None,
            mentions: Vec::new(),
            edited_ts: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }

    /// Whether `author` (an `a:`/`g:` identity) wrote it.
    pub fn by(&self, author: &str) -> bool {
        !self.author.is_empty() && self.author == author
    }
}

/// What a reply says about the message it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// The answered message's `seq` (same room).
    pub seq: u64,
    /// Its sender's nick.
    pub from: String,
    /// Its first [`REPLY_QUOTE`] characters; `None` once it is deleted.
    pub text: Option<String>,
}

/// One emoji on a message, and who put it there, first first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// 1 to [`MAX_EMOJI`] bytes, no spaces or control characters.
    pub emoji: String,
    /// Who reacted: each one's identity (as [`Message::author`]) and nick
    /// when reacting. Never empty.
    pub by: Vec<Reactor>,
}

/// One person's reaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reactor {
    /// `a:KEY` or `g:ID`, as [`Message::author`]: a toggle finds its own
    /// reaction by this, whatever the nick is now.
    pub author: String,
    /// The nick when reacting (what the wire shows).
    pub nick: String,
}

/// A change to a stored message (PROTOCOL-2 section 3): an entry of the
/// room's history with its own `seq`, as every member of the room is told
/// it. JSON `edit`, `delete` or `react` events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amend {
    /// The room.
    pub room: RoomName,
    /// Its own number in the room's history.
    pub seq: u64,
    /// The message changed (`target`).
    pub target: u64,
    /// Milliseconds since the epoch.
    pub ts: u64,
    /// The nick of who made the change: JSON `from` (edit, react) or `by`
    /// (delete).
    pub by: String,
    /// Their identity, as [`Message::author`]. Stored, never sent.
    pub author: String,
    /// What changed.
    pub kind: AmendKind,
}

/// The three changes of an [`Amend`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AmendKind {
    /// The text (or an image's caption) is now `text`:
    /// `[HH:MM:SS] #room <alice> (edited) new text`.
    Edit {
        /// The new text, checked and sanitized like a message's.
        text: String,
    },
    /// The message is gone: `[HH:MM:SS] #room --- a message by alice was
    /// deleted` (` by bob` added when someone else deleted it).
    Delete {
        /// The deleted message's sender (for the line, not in JSON).
        of: String,
    },
    /// A reaction toggled: JSON `react` with `on`; not sent to line
    /// clients (like typing).
    React {
        /// The emoji.
        emoji: String,
        /// Whether the reaction is now there.
        on: bool,
    },
}

impl AmendKind {
    /// The JSON `type`: `edit`, `delete`, `react`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AmendKind::Edit { .. } => "edit",
            AmendKind::Delete { .. } => "delete",
            AmendKind::React { .. } => "react",
        }
    }
}

/// One entry of a room's history as a catch-up returns it: a message as
/// it is now, or a change to one sent before the client's `since`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A message (its latest text, deleted, its reactions).
    Message(Rc<Message>),
    /// An edit, delete or reaction.
    Amend(Rc<Amend>),
}

impl Entry {
    /// Its `seq` in the room.
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Message(m) => m.seq,
            Entry::Amend(a) => a.seq,
        }
    }

    /// Its room.
    pub fn room(&self) -> &RoomName {
        match self {
            Entry::Message(m) => &m.room,
            Entry::Amend(a) => &a.room,
        }
    }

    /// The message, if it is one.
    pub fn message(&self) -> Option<&Rc<Message>> {
        match self {
            Entry::Message(m) => Some(m),
            Entry::Amend(_) => None,
        }
    }
}

/// One search result (PROTOCOL-2 section 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The message as it is now.
    pub message: Rc<Message>,
    /// Plain text around the first hits, at most about 200 characters.
    pub snippet: String,
    /// `[from, to)` code-point offsets into `snippet`, one per hit.
    pub marks: Vec<(usize, usize)>,
}

/// An image's identity and kind; its bytes live in the store, served at
/// `/media/ID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Unguessable: 128 random bits in hex, made by the shell.
    pub id: String,
    /// Told from the file's magic bytes, never from the client.
    pub mime: &'static str,
    /// The file's length in bytes, at most `--max-image`; line clients see
    /// it as `512 B`, `34 KiB`, `1.5 MiB`.
    pub size: usize,
}

/// Why someone left a room; PROTOCOL.md spells each one on both wires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    /// `/leave`: the plain `left` line.
    Leave,
    /// `/quit [MESSAGE]` or a WebSocket close frame: `(quit)` or
    /// `(quit: MESSAGE)`; JSON `quit`, with `message`. The message is
    /// sanitized and cut to `--max-message` bytes.
    Quit(Option<String>),
    /// The connection ended without a goodbye (end of stream, a reset, a
    /// WebSocket protocol violation): `(disconnected)`; JSON `disconnect`.
    Disconnect,
    /// The client vanished and did not come back: a WebSocket session not
    /// resumed within `--resume-grace`, or a line client silent for
    /// `--line-idle-timeout`: `(timeout)`; JSON `timeout`.
    Timeout,
    /// Dropped as a slow consumer: too much of its output stayed unsent
    /// (`--max-outbound`, `--max-outbound-total`): `(slow consumer)`; JSON
    /// `slow_consumer`.
    SlowConsumer,
    /// The server is shutting down: `(server shutting down)`; JSON
    /// `shutdown`.
    Shutdown,
    /// Kicked by an op (PROTOCOL-2 section 2): JSON `kicked`. Line clients
    /// see no presence line for it: the `mod` event's line said it.
    Kicked,
    /// Banned by an op: JSON `banned`; no presence line for line clients.
    Banned,
}

/// Something that happened in a room, seen by its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresenceKind {
    /// `nick` entered the room: `--> nick joined`; JSON `"event":"join"`.
    Join,
    /// `nick` left the room, for this reason: `<-- nick left (REASON)`;
    /// JSON `"event":"leave"` with `reason`.
    Leave(LeaveReason),
    /// A member now known as `nick`: `--- old is now known as nick`; JSON
    /// `"event":"nick"` with `old`.
    Nick {
        /// The nick it had before.
        old: String,
    },
}

/// A join, leave or nick change, told to the room's other members: the
/// `-->`, `<--` and `---` lines, JSON `{"type":"presence"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presence {
    /// The room it happened in.
    pub room: RoomName,
    /// What happened.
    pub kind: PresenceKind,
    /// The nick concerned (the new one for a nick change).
    pub nick: String,
    /// Milliseconds since the Unix epoch, set by the server.
    pub ts: u64,
    /// For a join or a nick change: the account the nick is logged in as
    /// (JSON `account`, left out for a guest), so a page can mark it.
    pub account: Option<String>,
}

/// Someone typing in a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Typing {
    /// The room typed in.
    pub room: RoomName,
    /// Who is typing.
    pub nick: String,
    /// Milliseconds since the Unix epoch, set by the server.
    pub ts: u64,
}

/// A direct message. Not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dm {
    /// The sender's nick.
    pub from: String,
    /// The recipient's nick, as its holder spells it.
    pub to: String,
    /// Milliseconds since the Unix epoch, set by the server.
    pub ts: u64,
    /// The text, control characters (but tab) replaced with U+FFFD.
    pub text: String,
    /// The account the sender was logged in as; `None` for a guest.
    pub account: Option<String>,
}

/// The limits a client is told about (`/help`, `welcome`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `--max-line`: longest line a line client may send, in bytes (line
    /// ending not counted). Shown by `/help` only.
    pub max_line: usize,
    /// `--max-message`: longest message text, in bytes, as sent.
    pub max_message: usize,
    /// `--history`: messages replayed on join.
    pub history: usize,
    /// `--rate`: messages a second.
    pub rate: u64,
    /// `--burst`: the burst allowed before `rate` applies.
    pub burst: u64,
    /// `--max-ws-message`: largest WebSocket message, in bytes.
    pub max_ws_message: usize,
    /// `--max-image`: largest image, in bytes.
    pub max_image: usize,
}

/// An answer to one client about its own request or state.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The first thing a new or resumed client gets: `*** welcome to
    /// natter, you are NICK; /help lists commands`; JSON `welcome`.
    Welcome {
        /// The client's nick: the one it asked for if valid and free, a
        /// generated one otherwise, or its session's on a resume.
        nick: String,
        /// The session token a WebSocket client may resume with.
        session: Option<String>,
        /// The store's random id: a client that sees it change knows its
        /// `seq` positions mean nothing any more.
        store_id: String,
        /// The limits in force (JSON `limits`).
        limits: Limits,
        /// The account the client is logged in as (JSON `account`, null
        /// for a guest): after `/ws?token=`, or on a resume.
        account: Option<String>,
    },
    /// Your nick is now this.
    Nick {
        /// The new nick, as the client spelled it: `*** you are now known
        /// as NICK`; JSON `nick`.
        nick: String,
    },
    /// The client is in `room` (it joined, made it with `/create`, or
    /// resumed its session): `*** you joined #room (N here: a, b)` and the
    /// history block; JSON `joined`. A WebSocket client's `join` of a room
    /// it is already in gets it again, with nothing told to the room.
    Joined {
        /// The room joined.
        room: RoomName,
        /// The room's nicks, the client's own included, sorted
        /// case-insensitively.
        members: Vec<Nick>,
        /// The replay, ascending `seq`: the latest `--history` messages, or
        /// with `since` the entries after it (at most 500): messages as they
        /// are now, and changes to messages at or before `since`.
        messages: Vec<Entry>,
        /// Set when the room was just made by `/create`.
        created: bool,
        /// The room's latest seq, whatever `messages` holds.
        last_seq: u64,
        /// A catch-up (`since`) found more missed messages than it carries.
        gap: bool,
        /// The store's id, as in `Welcome`.
        store_id: String,
        /// The room's owner, ops, topic and invite-only flag (boxed: most
        /// rooms have none of them, and every event is as big as its
        /// largest kind).
        info: Box<RoomInfo>,
        /// The joiner's own role in the room.
        role: Role,
    },
    /// `/join` of a room you are already in: it is now current.
    Current {
        /// The room now current: `*** #room is your current room` (line
        /// clients only).
        room: RoomName,
    },
    /// The client left a room (`/leave`, `leave`): `*** you left #room`;
    /// JSON `left`.
    Left {
        /// The room left.
        room: RoomName,
    },
    /// The answer to `/who` or `who`: `*** #room (N): a, b`; JSON `who`.
    Who {
        /// The room asked about.
        room: RoomName,
        /// Its members' nicks, sorted case-insensitively; empty for a room
        /// nobody is in.
        members: Vec<Nick>,
    },
    /// The answer to `/rooms` or `rooms`: `*** rooms: #lobby (3), #dev (1)`
    /// (`*** rooms: none`); JSON `rooms`.
    Rooms {
        /// The listed rooms (with members, not made by `/create`) and their
        /// member counts, busiest first, then by name.
        rooms: Vec<(RoomName, usize)>,
    },
    /// The answer to `/history` or `history`: a history block (`*** history
    /// of #room (N messages)` ... `*** end of history`); JSON `history`.
    History {
        /// The room the page is from.
        room: RoomName,
        /// The page, ascending `seq`; empty when there are none.
        messages: Vec<Rc<Message>>,
    },
    /// The copy of a direct message its sender gets, with the sender's `cid`.
    DmSent(Rc<Dm>, Option<String>),
    /// The copy of its own room message a WebSocket sender gets once it is
    /// stored: its acknowledgement, with its `cid`.
    Sent(Rc<Message>, Option<String>),
    /// The answer to `/help`: the commands, and a `*** limits:` line with
    /// these limits. Line clients only.
    Help(Limits),
    /// A report the shell wrote for a line client (the answer to `/stats`),
    /// passed through the hub only so that it comes in order with the
    /// client's other replies: its lines as they are sent. Line clients
    /// only.
    Report(String),
    /// The answer to `/quit`: `*** bye`, then the connection closes. Line
    /// clients only.
    Bye,
    /// An account change of this connection (PROTOCOL-2 section 1): JSON
    /// `{"type":"account","account":...,"token":...}`; the line client's
    /// confirmation depends on `what`.
    Account {
        /// What happened.
        what: AccountChange,
        /// The account now logged in, `None` after a logout.
        account: Option<String>,
        /// The connection's nick after the change (the fresh guest nick
        /// after a logout).
        nick: String,
        /// A login token for the page (register, login, password change).
        token: Option<String>,
    },
    /// The sender's own copy of the edit, delete or reaction it made: the
    /// room's event, with the request's `ref`.
    Amended(Rc<Amend>),
    /// The answer to a search: JSON `{"type":"search","q":...,"room":...,
    /// "results":[...]}`; line `*** search #room "WORDS" (N results)`, the
    /// results as history lines, `*** end of search`.
    Search {
        /// The query as the client sent it.
        q: String,
        /// The room searched; `None` for every room the client is in.
        room: Option<RoomName>,
        /// Newest first.
        results: Vec<Hit>,
    },
    /// The op's own copy of the moderation event it caused: the same
    /// JSON `mod` event as the room's, with the request's `ref`.
    Mod(Rc<ModEvent>),
    /// The bans of a room, for its ops (`{"type":"mod","action":"bans"}`):
    /// JSON `{"type":"bans","room":...,"bans":[...]}`; line `*** bans of
    /// #room: ...`.
    Bans {
        /// The room.
        room: RoomName,
        /// Its bans, oldest first.
        bans: Vec<BanInfo>,
    },
    /// A refused request, or a fault to report: `!!! CODE: message`; JSON
    /// `error`.
    Error {
        /// Which error, from PROTOCOL.md's list.
        code: ErrorCode,
        /// What was wrong, for a person to read; it may quote the client's
        /// input.
        message: String,
    },
}

/// Anything delivered to a client.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A room message, action or image, to the room's members but its
    /// sender: `[HH:MM:SS] #room <nick> text` (or `* nick`, `[image]`);
    /// JSON `message`.
    Message(Rc<Message>),
    /// A join, leave or nick change, to the room's other members.
    Presence(Rc<Presence>),
    /// A direct message, to its recipient.
    Dm(Rc<Dm>),
    /// Someone is typing; never stored, dropped for a recipient that is behind.
    Typing(Rc<Typing>),
    /// A moderation action in a room, to its members but the op who
    /// asked (who gets [`Reply::Mod`], with the request's `ref`).
    Mod(Rc<ModEvent>),
    /// An edit, delete or reaction, to the room's members but the one who
    /// made it (who gets [`Reply::Amended`]). Line clients get no reactions.
    Amend(Rc<Amend>),
    /// An answer for one client, with the `ref` of the request it answers.
    Reply(Reply, Option<String>),
}

/// Who gets one event.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipients {
    /// One client: a reply, or a direct message's recipient.
    One(ClientId),
    /// The clients listed (a typing hint's WebSocket recipients, say).
    List(Vec<ClientId>),
    /// A room's members when the event happened (the room's own list,
    /// shared), less `except` (the sender, say).
    Room {
        /// The room's member list as it was then, shared, not copied.
        members: Rc<Vec<ClientId>>,
        /// A member left out.
        except: Option<ClientId>,
    },
}

impl Recipients {
    /// Every recipient, `except` left out.
    pub fn iter(&self) -> impl Iterator<Item = ClientId> + '_ {
        let (all, except) = match self {
            Recipients::One(id) => (std::slice::from_ref(id), None),
            Recipients::List(list) => (list.as_slice(), None),
            Recipients::Room { members, except } => (members.as_slice(), *except),
        };
        all.iter().copied().filter(move |&c| Some(c) != except)
    }

    /// Whether nobody gets the event.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// How many clients get the event (counted: linear in the room's size).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether `id` gets the event.
    pub fn contains(&self, id: ClientId) -> bool {
        self.iter().any(|c| c == id)
    }
}

/// What the shell must do once the iteration's messages are committed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send `event` to every client in `to`, encoded once per wire format.
    Deliver {
        /// Who gets it.
        to: Recipients,
        /// What they get.
        event: Event,
    },
    /// Close the client's connection once its queued output is flushed.
    Close(ClientId),
    /// The client's session was resumed by another connection: close this
    /// one (WebSocket code 4000). The client lives on under the new id.
    Replaced(ClientId),
}

/// What changed in an [`Reply::Account`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// `*** account alice registered; you are logged in as alice`.
    Registered,
    /// `*** you are logged in as alice`.
    LoggedIn,
    /// `*** you are logged out; you are now quiet-heron-42`.
    LoggedOut,
    /// `*** password changed`.
    PasswordChanged,
}

/// One's standing in a room (`joined`'s `role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The account that made the room: `owner`.
    Owner,
    /// Named an op by the owner, or an `--admin`: `op`.
    Op,
    /// Anyone else: `member`.
    Member,
}

impl Role {
    /// The wire string: `owner`, `op`, `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Op => "op",
            Role::Member => "member",
        }
    }

    /// Owners and ops moderate.
    pub fn moderates(self) -> bool {
        self != Role::Member
    }
}

/// A room's settings as `joined` tells them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomInfo {
    /// The topic; `None` when none is set.
    pub topic: Option<String>,
    /// The owning account; `None` for a room made by a guest.
    pub owner: Option<String>,
    /// The accounts the owner made ops, sorted.
    pub ops: Vec<String>,
    /// Only ops and invited nicks may join.
    pub invite_only: bool,
    /// The members who are logged in (their nicks are their accounts),
    /// sorted: a page marks them.
    pub accounts: Vec<String>,
}

/// One ban, as an op sees it in the ban list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanInfo {
    /// The nick banned, as it was spelled.
    pub nick: String,
    /// Whether it is an account's ban (by name) rather than a guest's (by
    /// address; the address is never shown).
    pub account: bool,
    /// Who banned.
    pub by: String,
    /// The reason given, if any.
    pub reason: Option<String>,
    /// When, in milliseconds since the epoch.
    pub ts: u64,
}

/// A moderation action (PROTOCOL-2 section 2), as every member of the room
/// is told it: `{"type":"mod","room":"r","action":"kick","nick":"bob",
/// "by":"alice","reason":"...","ts":...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModEvent {
    /// The room.
    pub room: RoomName,
    /// The op (or owner, or admin) who acted.
    pub by: String,
    /// What was done.
    pub action: ModKind,
    /// Milliseconds since the epoch.
    pub ts: u64,
}

/// The actions of a [`ModEvent`], with what each carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModKind {
    /// `<-- bob was kicked by alice (REASON)`.
    Kick {
        /// Who was kicked.
        nick: String,
        /// Why, if said.
        reason: Option<String>,
    },
    /// `<-- bob was banned by alice (REASON)`.
    Ban {
        /// Who was banned.
        nick: String,
        /// Why, if said.
        reason: Option<String>,
    },
    /// `--- alice unbanned bob`.
    Unban {
        /// Who may come back.
        nick: String,
    },
    /// `--- alice muted bob for 300 s` (or `--- alice muted bob`).
    Mute {
        /// Who was muted.
        nick: String,
        /// For how long, in seconds; `None` until unmuted.
        secs: Option<u64>,
        /// When it ends (ms since the epoch); JSON `until`.
        until: Option<u64>,
    },
    /// `--- alice unmuted bob`.
    Unmute {
        /// Who may speak again.
        nick: String,
    },
    /// `--- alice made bob an op`.
    Op {
        /// The new op (an account).
        nick: String,
    },
    /// `--- alice removed bob as op`.
    Deop {
        /// The former op.
        nick: String,
    },
    /// `--- alice set the topic: TEXT` (`--- alice cleared the topic`).
    Topic {
        /// The new topic; empty clears it.
        text: String,
    },
    /// `--- alice made the room invite-only` (or `open to all`).
    InviteOnly {
        /// Whether it is now invite-only.
        on: bool,
    },
    /// `--- alice invited bob`.
    Invite {
        /// Who may now join.
        nick: String,
    },
}

impl ModKind {
    /// The JSON `action`.
    pub fn action(&self) -> &'static str {
        match self {
            ModKind::Kick { .. } => "kick",
            ModKind::Ban { .. } => "ban",
            ModKind::Unban { .. } => "unban",
            ModKind::Mute { .. } => "mute",
            ModKind::Unmute { .. } => "unmute",
            ModKind::Op { .. } => "op",
            ModKind::Deop { .. } => "deop",
            ModKind::Topic { .. } => "topic",
            ModKind::InviteOnly { .. } => "invite_only",
            ModKind::Invite { .. } => "invite",
        }
    }
}
