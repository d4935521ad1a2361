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
use super::event::{Amend, Hit, Message};
use super::names::RoomName;
use super::search::Query;

// What a hub sharing its chat tells, and is told, about the other
// processes (announcements, everyone's state, sessions) is part of the
// port's vocabulary too: a shared store carries it.
pub use super::remote::{LocalState, Notice, RemoteState};
pub use super::sessions::SessionState;

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
    /// Find the message an edit, delete, reaction or reply is about.
    Find(Find),
    /// Search rooms' history (PROTOCOL-2 section 4).
    Search(SearchOp),
    /// A shared store (Redis) gives a message its room's next `seq`, keeps
    /// it and hands it to every process (see [`Publish`]).
    Publish(Publish),
    /// A shared store hands over a WebSocket session another process had
    /// (see `hub::sessions`).
    Claim(Claim),
    /// A shared store gives a nick to this process unless another holds it
    /// (a `/nick`, answered once the store has said).
    HoldNick(HoldNick),
    /// A shared store applies an edit, delete or reaction to the message as
    /// it keeps it, numbers the change and hands it to every process (see
    /// [`PublishChange`]); answered like a [`Publish`].
    PublishChange(PublishChange),
}

/// A nick to hold across processes.
#[derive(Debug)]
pub struct HoldNick {
    /// Matches the answer.
    pub id: u64,
    /// The nick.
    pub nick: super::names::Nick,
    /// The account holding it (its key), `None` for a guest.
    pub account: Option<String>,
}

/// An edit, delete or reaction for a shared store. The store applies it to
/// the message as it is now (two processes' reactions at once both count)
/// and says what it came to in the entry it publishes: for a reaction,
/// whether it is now on, and under which nick it was put.
#[derive(Debug)]
pub struct PublishChange {
    /// Matches the answer and the arrival, as a [`Publish`]'s id.
    pub id: u64,
    /// The room.
    pub room: RoomName,
    /// The message changed.
    pub target: u64,
    /// When, ms since the epoch.
    pub ts: u64,
    /// The nick of who changes it.
    pub by: String,
    /// Their identity (`Message::author`'s form).
    pub author: String,
    /// Every identity that counts as theirs (a reaction put under any of
    /// them is theirs to take off).
    pub authors: Vec<String>,
    /// What: an edit's text, a delete, a reaction's emoji (its `on` is the
    /// store's to say).
    pub kind: super::event::AmendKind,
}

/// A claim of a session by a connection that presented its token.
#[derive(Debug)]
pub struct Claim {
    /// The connection (a `ClientId`'s number): matches the answer.
    pub id: u64,
    /// The SHA-256 of the session's token, in hex.
    pub hash: String,
}

/// A message for a shared store to number, keep and hand to every process
/// sharing the chat, this one included (`Hub::arrive`); a `cid` it has
/// seen from the same sender is answered with the message it kept then.
/// Only a hub told it shares its chat (`Hub::share`) asks for this.
#[derive(Debug)]
pub struct Publish {
    /// Matches the answer, and the message's arrival, to the request.
    pub id: u64,
    /// The message, its `seq` 0: the store gives it one.
    pub message: Rc<Message>,
    /// The sender's `cid`, and whose it is (`Message::author`): one
    /// sender's cids are remembered apart from another's.
    pub cid: Option<String>,
    /// The image the message carries, stored with it.
    pub image: Option<NewImage>,
}

/// What a shared store did with a [`Publish`].
#[derive(Debug)]
pub enum Published {
    /// Numbered and kept: it arrives (`Hub::arrive`) with this `seq`.
    New(u64),
    /// The `cid` was seen: the message kept then (`None` if the store no
    /// longer keeps it), and nothing was done now.
    Repeat(u64, Option<Rc<Message>>),
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
    /// Edits, deletes and reactions accepted this turn, in `seq` order
    /// within each room (interleaved with `messages` by `seq`): each is
    /// stored as a history entry of its own and applied to its target (a
    /// delete also removes the target's text, image bytes, reactions,
    /// earlier edit entries and search index entry, and the quote of
    /// replies to it). Stored in the same transaction.
    pub amends: Vec<Rc<Amend>>,
    /// Accounts, login tokens and room settings changed this turn, in the
    /// order they happened; stored in the same transaction. The answers
    /// that confirm them wait for the batch like its messages do.
    pub changes: Vec<Change>,
}

/// A change to what the store keeps besides history: accounts, login
/// tokens, and each room's settings and moderation lists (PROTOCOL-2
/// sections 1 and 2). Names are stored as spelled; the store keys them
/// lowercase (`Nick::key`), as the hub compares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add an account, or set its password hash.
    AccountPut(AccountRecord),
    /// Remove an account and its login tokens (`natter accounts del`).
    /// Room entries naming it stay until an op removes them.
    AccountDel {
        /// The account's name.
        name: String,
    },
    /// Remember a login token (its hash only).
    TokenPut(TokenRecord),
    /// Forget one login token (logout).
    TokenDel {
        /// The token's hash.
        hash: String,
    },
    /// Forget every login token of an account (password change).
    TokensDel {
        /// The account's name.
        account: String,
    },
    /// Set a room's owner, topic and invite-only flag (the row is made if
    /// absent).
    RoomPut {
        /// The room.
        room: RoomName,
        /// Its settings.
        settings: RoomRecord,
    },
    /// Add or replace one entry of a room's lists.
    EntryPut {
        /// The room.
        room: RoomName,
        /// The entry.
        entry: RoomEntry,
    },
    /// Remove one entry of a room's lists.
    EntryDel {
        /// The room.
        room: RoomName,
        /// Which list.
        kind: EntryKind,
        /// Whom it names, as in [`RoomEntry::subject`].
        subject: String,
    },
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// The name (a valid nick), as registered.
    pub name: String,
    /// The password's Argon2id hash, a PHC string.
    pub phc: String,
    /// When it was registered, ms since the epoch.
    pub created: u64,
}

/// A login token as stored: never the token, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token, in hex.
    pub hash: String,
    /// The account it logs in.
    pub account: String,
    /// When it stops working, ms since the epoch.
    pub expires: u64,
}

/// A room's settings as stored (rooms that never had any have no row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomRecord {
    /// The owning account.
    pub owner: Option<String>,
    /// The topic (empty: none).
    pub topic: String,
    /// Only ops and invitees may join.
    pub invite_only: bool,
}

/// Which list of a room an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An op (`subject`: an account name).
    Op,
    /// A ban (`subject`: an account name, or `ip:ADDR` for a guest).
    Ban,
    /// A mute (`subject` as for a ban; `until` when timed).
    Mute,
    /// An account's invite (guests' invites are not stored).
    Invite,
}

impl EntryKind {
    /// The stored spelling: `op`, `ban`, `mute`, `invite`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Op => "op",
            EntryKind::Ban => "ban",
            EntryKind::Mute => "mute",
            EntryKind::Invite => "invite",
        }
    }

    /// The kind a stored spelling names.
    pub fn parse(s: &str) -> Option<EntryKind> {
        match s {
            "op" => Some(EntryKind::Op),
            "ban" => Some(EntryKind::Ban),
            "mute" => Some(EntryKind::Mute),
            "invite" => Some(EntryKind::Invite),
            _ => None,
        }
    }
}

/// One entry of a room's op, ban, mute or invite list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEntry {
    /// Which list.
    pub kind: EntryKind,
    /// Whom it names: an account's name (lowercase key), or `ip:ADDR` for a
    /// guest's ban or mute.
    pub subject: String,
    /// The nick as it was spelled when the entry was made (shown in lists).
    pub nick: String,
    /// Who made it.
    pub by: String,
    /// The reason given (bans), if any.
    pub reason: Option<String>,
    /// When it ends (timed mutes), ms since the epoch.
    pub until: Option<u64>,
    /// When it was made, ms since the epoch.
    pub ts: u64,
}

/// Everything besides history that the store keeps, read once at start
/// (and accounts and tokens again when another process, `natter
/// accounts`, changed them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Every account.
    pub accounts: Vec<AccountRecord>,
    /// Every login token not yet expired.
    pub tokens: Vec<TokenRecord>,
    /// Every room with settings, with its entries.
    pub rooms: Vec<(RoomName, RoomRecord, Vec<RoomEntry>)>,
}

/// Password work for the helper thread: Argon2id takes tens of
/// milliseconds on purpose, far too long for the loop. The shell runs it
/// off the loop and hands back a [`PasswordDone`] with the same `id`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordJob {
    /// Matches the answer to the job.
    pub id: u64,
    /// Check this password against this PHC string.
    pub check: Option<(String, String)>,
    /// Hash this password (done only if `check`, when given, passed).
    pub hash: Option<String>,
}

impl fmt::Debug for PasswordJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Passwords are never logged.
        write!(f, "PasswordJob {{ id: {}, .. }}", self.id)
    }
}

/// The helper's answer to a [`PasswordJob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordDone {
    /// The job's id.
    pub id: u64,
    /// Whether the check passed (true when there was none).
    pub matched: bool,
    /// The new hash, when one was asked for and the check passed; `Err`
    /// if hashing failed.
    pub phc: Option<Result<String, String>>,
    /// A fresh login token, 128 random bits from the OS in hex, for the
    /// hub to give out if the job succeeds.
    pub token: String,
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
    /// A catch-up from this `seq`: the page's messages (`after` it) come
    /// as they are now, and the edits, deletes and reactions after it whose
    /// target is at or before it come too (`Loaded::amends`), at most
    /// `page.limit` entries in all.
    pub since: Option<u64>,
}

/// A read of the message a change or a reply is about.
#[derive(Debug)]
pub struct Find {
    /// Matches the answer to the request.
    pub id: u64,
    /// The room it is in.
    pub room: RoomName,
    /// Which.
    pub what: FindWhat,
}

/// What a [`Find`] looks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindWhat {
    /// The message with this `seq` (deleted or not; none if the seq is a
    /// change entry or unused).
    Seq(u64),
    /// The latest messages not deleted by any of these authors
    /// (`Message::author`), newest first, at most [`FIND_LATEST`].
    LastBy(Vec<String>),
    /// The latest messages not deleted sent under this nick (compared
    /// case-insensitively, `Nick::key`), newest first, at most
    /// [`FIND_LATEST`].
    LastOf(String),
}

/// Most messages a `LastBy` or `LastOf` read returns: the hub takes the
/// newest one not deleted meanwhile.
pub const FIND_LATEST: usize = 8;

/// A search of rooms' history.
#[derive(Debug)]
pub struct SearchOp {
    /// Matches the answer to the request.
    pub id: u64,
    /// The rooms to search (one, or every room the client is in).
    pub rooms: Vec<RoomName>,
    /// What to look for; never empty (the hub answers an empty query
    /// itself).
    pub query: Query,
    /// Most results.
    pub limit: usize,
    /// Only messages older than this: with one room a `seq`, across rooms
    /// a `ts`.
    pub before: Option<u64>,
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
    /// The [`Find`] with this id: the messages found, as they are now.
    Found {
        /// The find's id.
        find: u64,
        /// Empty when there is no such message.
        result: Result<Vec<Rc<Message>>, StoreError>,
    },
    /// The [`Publish`] with this id. `Err`: nothing was kept or sent
    /// (if the store may have kept it, it arrives all the same, and a
    /// repeat of its `cid` finds it).
    Published {
        /// The publish's id.
        publish: u64,
        /// What the store did.
        result: Result<Published, StoreError>,
    },
    /// The [`Claim`] of this connection: the session, now this
    /// process's, or `None` (unknown, or the store unreachable).
    Claimed {
        /// The claim's id.
        claim: u64,
        /// The session.
        result: Option<super::sessions::SessionState>,
    },
    /// The [`HoldNick`] with this id: whether this process has the nick
    /// (false: another holds it); `Err`: the store is unreachable.
    Held {
        /// The hold's id.
        hold: u64,
        /// Held.
        ok: Result<bool, StoreError>,
    },
    /// The [`SearchOp`] with this id.
    Searched {
        /// The search's id.
        search: u64,
        /// The results, newest first.
        result: Result<Vec<Hit>, StoreError>,
        /// A shared store's: the `seq` each room was read at (empty for
        /// a store of this process's own).
        read_at: Vec<(RoomName, u64)>,
    },
}

/// A room as the store has it.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The page asked for, ascending `seq`, each message as it is now.
    pub messages: Vec<Rc<Message>>,
    /// For a catch-up (`Load::since`), the edits, deletes and reactions
    /// after `since` whose target is at or before it, ascending `seq`.
    pub amends: Vec<Rc<Amend>>,
    /// The highest `seq` stored for the room (0 for none), if asked for.
    pub last_seq: Option<u64>,
}
