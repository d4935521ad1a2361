//! Message history and image bytes in one SQLite file (`--db`).
//!
//! Job: implement [`Store`] so that a message is on disk before anyone is sent
//! it. PROTOCOL.md "Durability" promises that after a crash (even `kill -9`)
//! every message any client received is still in the history, `seq` carries on
//! without a gap, and an image's bytes are committed with its message. The hub
//! asks for one batch per loop iteration (`hub::port::StoreOp::Append`, carried
//! out by `store::execute` as [`Store::append`]) and releases the batch's
//! deliveries only once the answer says `Ok`; one batch is one transaction.
//!
//! Durability choice: WAL journal with `synchronous=NORMAL`. A commit then
//! ends with the transaction written into the `-wal` file by `write(2)`, with
//! no `fsync`: the bytes are in the operating system's hands, so a process
//! crash or `kill -9` cannot lose them, which is what PROTOCOL.md promises. A
//! power cut or kernel crash can lose the last few commits (never corrupt the
//! file); `synchronous=FULL` would survive that too at the price of an `fsync`
//! per commit, i.e. per loop iteration, which would cap the server at a few
//! hundred iterations a second on ordinary disks. Group commit keeps the
//! transaction count low either way.
//!
//! Checkpoints: SQLite would copy the WAL into the database file inside the
//! commit that takes the WAL past 1000 pages, with two `fsync`s (2.5-13 ms
//! here), while every recipient of that commit's messages waits. A WAL hook
//! replaces that automatic checkpoint and only counts the WAL's pages
//! ([`Store::wal_pages`]). The copying is done by a [`Checkpointer`], a
//! second connection that the server's helper thread drives
//! (`server::helper`), so the loop's connection goes on committing while
//! the files are synced; [`Store::checkpoint`] remains for the loop's rare
//! own checkpoint (`server::persist`). The guarantee does not move: a commit
//! is in the WAL file (written, not synced) when `append` returns, which
//! survives `kill -9`; who later copies the WAL into the database, and on
//! which thread, changes nothing about what a crash keeps.
//!
//! Must never: panic (every SQLite failure is a [`StoreError`]); touch a
//! database it does not understand (a newer schema, a file that is not SQLite,
//! or someone else's SQLite file are refused at open, unchanged); block the
//! loop for long (`busy_timeout` is small, see [`BUSY_TIMEOUT`]); scan a table
//! on the way (every history query walks the `(room, seq)` primary key, every
//! change its table's key or index, checked by a test; only `load_state`
//! reads whole tables, once at start and when `natter accounts` changed
//! something).
//!
//! Besides history it keeps accounts, login tokens (their hashes) and rooms'
//! settings and lists (schema version 2): [`Store::commit`] writes them in
//! the same transaction as the turn's messages, [`Store::load_state`] reads
//! them all, and [`Store::changed_elsewhere`] tells the server when another
//! connection (`natter accounts`, run while the server is up) committed.
//!
//! Read next: `schema.sql` to `schema-4.sql` beside this file for the
//! tables, `mod.rs` for the trait and the in-memory store this one must agree
//! with (a property test below checks that it does).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::text::{self, fit, has_word_char, head, unmark, ELLIPSIS};
use super::{Store, StoreError};
use crate::hub::command::Page;
use crate::hub::event::{Amend, AmendKind, Hit, ImageRef, Message, Reaction, Reactor, ReplyTo};
use crate::hub::image::known_mime;
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, EntryKind, FindWhat, RoomEntry, RoomRecord, SearchOp, State,
    TokenRecord, FIND_LATEST,
};
use crate::hub::search::Query;

/// What `path` means an in-memory database that vanishes with the process.
pub const MEMORY: &str = ":memory:";

/// Schema migrations: entry `i` takes a database from `user_version` `i` to
/// `i + 1`, each in its own transaction. Released entries are never edited;
/// a change is a new entry.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema-2.sql"),
    include_str!("schema-3.sql"),
    include_str!("schema-4.sql"),
];

/// The `user_version` this build writes and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// How long a statement waits for a lock held by another connection (say a
/// `sqlite3` shell reading the file) before failing. The whole server runs
/// on this thread, so a long wait would freeze every client; a short one
/// rides out a checkpoint or a brief reader.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// The columns a message is read with, in [`read_message`]'s order.
macro_rules! message_columns {
    () => {
        "seq, ts, sender, text, action, image_id, image_mime, image_size, account, \
         author, reply_seq, reply_from, reply_text, mentions, edited_ts, deleted"
    };
}

/// Its search index id is the largest so far plus one (the unique index's
/// last entry: no scan), so the index's rowid order is insertion order.
const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (room, seq, ts, sender, text, action, image_id, image_mime, image_size, account, \
      author, reply_seq, reply_from, reply_text, mentions, edited_ts, deleted, fts_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     (SELECT ifnull(max(fts_id), 0) + 1 FROM messages))";

/// `OR IGNORE`: an id names one image for good (random or a content hash), so
/// a second put of the same id is the same bytes again, and must not fail
/// the whole batch of everyone else's messages.
const INSERT_IMAGE: &str = "INSERT OR IGNORE INTO images (id, mime, data) VALUES (?1, ?2, ?3)";

/// Messages and change entries share a room's seqs: the highest of both.
const LAST_SEQ: &str = "SELECT max(\
     ifnull((SELECT max(seq) FROM messages WHERE room = ?1), 0), \
     ifnull((SELECT max(seq) FROM amends WHERE room = ?1), 0))";

/// Inclusive bounds `?2..=?3`, see [`inclusive_range`]. The earliest `?4`.
const PAGE_ASC: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq ASC LIMIT ?4"
);

/// Same bounds, the latest `?4` (read backwards, reversed in Rust).
const PAGE_DESC: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq DESC LIMIT ?4"
);

/// One message by its seq (`FindWhat::Seq`).
const ONE_MESSAGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE room = ?1 AND seq = ?2"
);

/// `FindWhat::LastBy`, one author at a time: walks `messages_by_author`
/// backwards. `INDEXED BY`: without statistics SQLite may prefer walking
/// the whole room along the primary key (it also gives seq order).
const LAST_BY: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages INDEXED BY messages_by_author \
     WHERE room = ?1 AND author = ?2 AND deleted = 0 \
     ORDER BY seq DESC LIMIT ?3"
);

/// `FindWhat::LastOf`: walks `messages_by_sender` backwards (`lower` as
/// in the index's expression).
const LAST_OF: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages INDEXED BY messages_by_sender \
     WHERE room = ?1 AND lower(sender) = ?2 AND deleted = 0 \
     ORDER BY seq DESC LIMIT ?3"
);

/// A `from:` search without words, in one room: the sender's messages
/// below seq `?3` and ts `?4`, newest first, along `messages_by_sender`.
const FROM_ONLY: &str = concat!(
    "SELECT ",
    message_columns!(),
    ", fts_id FROM messages INDEXED BY messages_by_sender \
     WHERE room = ?1 AND lower(sender) = ?2 AND deleted = 0 AND seq < ?3 AND ts < ?4 \
     ORDER BY seq DESC LIMIT ?5"
);

/// The index id of a room's first message at or after seq `?2`.
const FIRST_ID_FROM: &str =
    "SELECT fts_id FROM messages WHERE room = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1";

/// The reactions of a page's messages (`target` in `?2..=?3`), by
/// message, then emoji in the order they appeared, then reactor.
const PAGE_REACTIONS: &str = "SELECT target, emoji, author, nick FROM reactions \
     WHERE room = ?1 AND target >= ?2 AND target <= ?3 \
     ORDER BY target, emoji_seq, seq";

/// A catch-up's change entries: after `?2`, about a message at or before
/// it, the edits and reactions of a message deleted since left out.
const AMENDS_SINCE: &str = "SELECT a.seq, a.target, a.ts, a.\"by\", a.author, a.kind, \
     a.text, a.of_sender, a.emoji, a.react_on \
     FROM amends a LEFT JOIN messages m ON m.room = a.room AND m.seq = a.target \
     WHERE a.room = ?1 AND a.seq > ?2 AND a.target <= ?2 \
     AND (a.kind = 'delete' OR ifnull(m.deleted, 0) = 0) \
     ORDER BY a.seq LIMIT ?3";

const INSERT_AMEND: &str = "INSERT INTO amends \
     (room, seq, target, ts, \"by\", author, kind, text, of_sender, emoji, react_on) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
/// The index follows by trigger (`messages_fts_update`).
const EDIT_TARGET: &str =
    "UPDATE messages SET text = ?3, edited_ts = ?4 WHERE room = ?1 AND seq = ?2 AND deleted = 0";
/// A reaction on a message that is there and not deleted. The emoji keeps
/// its place if someone already has it, else it goes last (`emoji_seq`).
/// `OR IGNORE`: the same person's same emoji twice is one reaction.
const REACT_ON: &str = "INSERT OR IGNORE INTO reactions \
     (room, target, emoji, author, nick, seq, emoji_seq) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ifnull(\
       (SELECT emoji_seq FROM reactions WHERE room = ?1 AND target = ?2 AND emoji = ?3 LIMIT 1), ?6) \
     WHERE EXISTS (SELECT 1 FROM messages WHERE room = ?1 AND seq = ?2 AND deleted = 0)";
const REACT_OFF: &str =
    "DELETE FROM reactions WHERE room = ?1 AND target = ?2 AND emoji = ?3 AND author = ?4";
const IMAGE_OF: &str = "SELECT image_id FROM messages WHERE room = ?1 AND seq = ?2";
/// What a delete leaves of a message: that it was there, when, by whom.
/// The index drops it by trigger.
const DELETE_TARGET: &str = "UPDATE messages SET deleted = 1, text = '', \
     image_id = NULL, image_mime = NULL, image_size = NULL, \
     reply_seq = NULL, reply_from = NULL, reply_text = NULL, mentions = NULL, edited_ts = NULL \
     WHERE room = ?1 AND seq = ?2 AND deleted = 0";
/// The bytes go unless another message still shows the same image.
const DELETE_IMAGE: &str = "DELETE FROM images WHERE id = ?1 \
     AND NOT EXISTS (SELECT 1 FROM messages WHERE image_id = ?1)";
const DELETE_REACTIONS: &str = "DELETE FROM reactions WHERE room = ?1 AND target = ?2";
/// The entries stay (their seqs are history) without the deleted words.
/// (`INDEXED BY`: as in [`LAST_BY`].)
const FORGET_EDITS: &str =
    "UPDATE amends INDEXED BY amends_by_target SET text = NULL WHERE room = ?1 AND target = ?2 AND kind = 'edit'";
/// (`INDEXED BY`: as in [`LAST_BY`].)
const FORGET_QUOTES: &str = "UPDATE messages INDEXED BY messages_by_reply \
     SET reply_text = NULL WHERE room = ?1 AND reply_seq = ?2 AND reply_seq IS NOT NULL";

const GET_IMAGE: &str = "SELECT mime, data FROM images WHERE id = ?1";

/// A new account, or a new password hash for an existing one: the name as
/// first registered and the registration time stay.
const PUT_ACCOUNT: &str = "INSERT INTO accounts (key, name, phc, created) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (key) DO UPDATE SET phc = excluded.phc";
/// Before [`PUT_ACCOUNT`]: a new account starts with no tokens, even if a
/// token was stored for its name while there was no such account.
const DEL_STRAY_TOKENS: &str = "DELETE FROM tokens WHERE account_key = ?1 \
     AND NOT EXISTS (SELECT 1 FROM accounts WHERE key = ?1)";
const DEL_ACCOUNT: &str = "DELETE FROM accounts WHERE key = ?1";
const PUT_TOKEN: &str =
    "INSERT OR REPLACE INTO tokens (hash, account_key, expires) VALUES (?1, ?2, ?3)";
const DEL_TOKEN: &str = "DELETE FROM tokens WHERE hash = ?1";
/// Walks the `tokens_by_account` index.
const DEL_TOKENS_OF: &str = "DELETE FROM tokens WHERE account_key = ?1";
const PUT_ROOM: &str =
    "INSERT INTO rooms (room, owner, topic, invite_only) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (room) DO UPDATE SET \
     owner = excluded.owner, topic = excluded.topic, invite_only = excluded.invite_only";
/// A room's row with no settings, for an entry of a room that had none.
const ENSURE_ROOM: &str =
    "INSERT OR IGNORE INTO rooms (room, owner, topic, invite_only) VALUES (?1, NULL, '', 0)";
const PUT_ENTRY: &str = "INSERT OR REPLACE INTO room_entries \
     (room, kind, subject, nick, \"by\", reason, until, ts) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const DEL_ENTRY: &str = "DELETE FROM room_entries WHERE room = ?1 AND kind = ?2 AND subject = ?3";

/// Every account, by key. (`load_state` reads whole tables: these scan.)
const ALL_ACCOUNTS: &str = "SELECT name, phc, created FROM accounts ORDER BY key";
/// Every token of an account that exists, by hash, naming the account as
/// registered.
const ALL_TOKENS: &str = "SELECT t.hash, a.name, t.expires \
     FROM tokens t JOIN accounts a ON a.key = t.account_key ORDER BY t.hash";
const ALL_ROOMS: &str = "SELECT room, owner, topic, invite_only FROM rooms ORDER BY room";
const ALL_ENTRIES: &str = "SELECT room, kind, subject, nick, \"by\", reason, until, ts \
     FROM room_entries ORDER BY room, kind, subject";

/// An image waiting for the next [`Store::append`] to commit it.
struct PendingImage {
    id: String,
    mime: String,
    data: Vec<u8>,
}

/// History in a SQLite database; see the module docs for what it promises.
pub struct SqliteStore {
    conn: Connection,
    id: String,
    /// The WAL's page count after the latest commit, written by the WAL
    /// hook. (An `Arc` and an atomic only because rusqlite requires a hook
    /// to be `Send`; everything runs on the loop's thread.)
    wal_pages: Arc<AtomicU32>,
    /// Images from [`SqliteStore::put_image`], written by the next `append`.
    pending: Vec<PendingImage>,
    /// `PRAGMA data_version` when last looked at (by `load_state` or
    /// `changed_elsewhere`): it changes when another connection commits.
    data_version: Option<i64>,
    /// Messages stored and not yet in the search index (about: deleted ones
    /// count too): see `index_pending`.
    unindexed: usize,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`; [`MEMORY`] (`":memory:"`)
    /// is a fresh in-memory one. `new_id` makes the store id, and is called
    /// only when the database has none yet, i.e. when it is new.
    ///
    /// Migrates an older schema in one transaction. Refuses, with a message
    /// meant for the operator: a path that cannot be opened for writing (with
    /// the OS's reason), a file that is not SQLite, a SQLite file of some
    /// other program, and a schema newer than [`SCHEMA_VERSION`].
    pub fn open(path: &str, new_id: impl FnOnce() -> String) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_timeout(path, new_id, BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with another busy timeout than
    /// [`BUSY_TIMEOUT`]: for a process that may wait for the server's
    /// connection (`natter accounts`), where the loop must not.
    pub fn open_with_timeout(
        path: &str,
        new_id: impl FnOnce() -> String,
        busy_timeout: Duration,
    ) -> Result<SqliteStore, StoreError> {
        if path != MEMORY {
            check_writable(path)?;
        }
        // No SQLITE_OPEN_URI: `--db` is a file name, never a URI with options
        // such as `mode=ro` hidden in it.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        conn.busy_timeout(busy_timeout)
            .map_err(|e| open_error(path, e))?;

        // Look before changing anything: the first read is also where SQLite
        // notices that the file is not a database at all.
        let version = user_version(&conn).map_err(|e| open_error(path, e))?;
        check_version(path, version)?;
        if version == 0 {
            let objects: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(|e| open_error(path, e))?;
            if objects > 0 {
                return Err(StoreError(format!(
                    "{path} is a SQLite database of some other program \
                     (it has tables but no natter schema version); refusing to change it"
                )));
            }
        }

        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        if path != MEMORY && !mode.eq_ignore_ascii_case("wal") {
            // Still durable against a process crash (a rollback journal commits
            // before returning too), only slower and blocking readers; worth a
            // word, not worth refusing to start.
            log::warn!("{path}: SQLite refused WAL mode, using journal_mode={mode}");
        }
        // Per connection, not stored in the file: set on every open. See the
        // module docs for why NORMAL and not FULL.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_error(path, e))?;

        // Registering a WAL hook turns SQLite's automatic checkpoint off
        // (it is itself a WAL hook); this one only counts.
        let wal_pages = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&wal_pages);
        conn.wal_hook(Some(move |_: &mut Wal, pages: std::ffi::c_int| {
            counter.store(u32::try_from(pages).unwrap_or(0), Ordering::Relaxed);
            Ok(())
        }))
        .map_err(|e| open_error(path, e))?;

        let id = migrate(&mut conn, path, new_id)?;
        // Messages a crash left unindexed are indexed by the first upkeep
        // or search.
        let unindexed: i64 = conn
            .query_row(UNINDEXED, [], |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        Ok(SqliteStore {
            conn,
            id,
            wal_pages,
            pending: Vec::new(),
            data_version: None,
            unindexed: usize::try_from(unindexed).unwrap_or(0),
        })
    }

    /// Hands over an image to be committed by the next [`Store::append`], in
    /// the same transaction as the batch (which should hold the message that
    /// carries it): the bytes are on disk exactly when the message is.
    ///
    /// Until then the image is not stored at all: [`SqliteStore::get_image`]
    /// does not see it, and a crash forgets it (no client can know its URL,
    /// since its message was not sent either). An `append` that fails keeps
    /// it pending for the next one, so a retried batch still finds its image.
    /// The first bytes committed under an id stay; a later put of the same id
    /// is ignored.
    pub fn put_image(&mut self, id: &str, mime: &str, data: &[u8]) -> Result<(), StoreError> {
        // Nothing can fail yet; the Result leaves room for checks (a size cap,
        // spilling to disk) without changing the callers.
        self.pending.push(PendingImage {
            id: id.to_owned(),
            mime: mime.to_owned(),
            data: data.to_vec(),
        });
        Ok(())
    }

    /// A committed image's type and bytes, or `None` for an unknown id.
    pub fn get_image(&mut self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(GET_IMAGE)
            .map_err(fail("get_image"))?;
        stmt.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(fail("get_image"))
    }

    /// Images handed to `put_image` and not yet committed.
    pub fn pending_images(&self) -> usize {
        self.pending.len()
    }
}

/// A second connection to the same database, for checkpoints only, so
/// they can run on another thread than the writer's: WAL mode lets a
/// checkpoint copy the log into the database file while the writer goes on
/// appending to the log. It never writes a row.
pub struct Checkpointer {
    conn: Connection,
}

/// What one checkpoint did, in WAL frames (pages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpointed {
    /// Frames in the WAL when it started.
    pub log: u32,
    /// Frames copied into the database so far (all of `log`, unless a
    /// reader held some back).
    pub copied: u32,
}

impl Checkpointer {
    /// Opens the database at `path` (already opened, and so migrated, by
    /// [`SqliteStore::open`]). `None` for [`MEMORY`]: an in-memory
    /// database has no WAL file to copy, and no second connection can see it.
    pub fn open(path: &str) -> Result<Option<Checkpointer>, StoreError> {
        if path == MEMORY {
            return Ok(None);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        // The checkpoint syncs the WAL, then the database file: NORMAL is
        // what makes it sync at all (per connection, like the writer's).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_error(path, e))?;
        // It may wait for a lock here without holding anybody up.
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| open_error(path, e))?;
        Ok(Some(Checkpointer { conn }))
    }

    /// Copies what it can of the WAL into the database file and syncs it
    /// (PASSIVE: it never waits for the writer or a reader, and never
    /// blocks them). Slow: two `fsync`s and more the bigger the WAL.
    /// `Ok(None)`: it could not start just now (SQLite said busy: the
    /// writer was starting the WAL over, say); try again a moment later.
    pub fn checkpoint(&mut self) -> Result<Option<Checkpointed>, StoreError> {
        let (log, copied) = match self
            .conn
            .wal_checkpoint_v2(Some("main"), CheckpointMode::PASSIVE)
        {
            Ok(done) => done,
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy => {
                return Ok(None)
            }
            Err(e) => return Err(fail("checkpoint")(e)),
        };
        let frames = |n: std::ffi::c_int| u32::try_from(n).unwrap_or(0);
        Ok(Some(Checkpointed {
            log: frames(log),
            copied: frames(copied),
        }))
    }
}

impl Store for SqliteStore {
    fn load_state(&mut self) -> Result<State, StoreError> {
        // Before reading: a commit elsewhere after this look is reported by
        // the next `changed_elsewhere`, even if this read already saw it.
        self.data_version = Some(data_version(&self.conn)?);
        // One read transaction: a consistent snapshot of all four tables.
        let tx = self.conn.transaction().map_err(fail("load_state"))?;
        let state = read_state(&tx).map_err(fail("load_state"))?;
        tx.finish().map_err(fail("load_state"))?;
        state
    }

    fn changed_elsewhere(&mut self) -> Result<bool, StoreError> {
        let now = data_version(&self.conn)?;
        let changed = self.data_version.is_some_and(|seen| seen != now);
        self.data_version = Some(now);
        Ok(changed)
    }

    fn store_id(&self) -> &str {
        &self.id
    }

    fn put_image(&mut self, id: &str, mime: &str, data: &[u8]) -> Result<(), StoreError> {
        SqliteStore::put_image(self, id, mime, data)
    }

    fn get_image(&mut self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        SqliteStore::get_image(self, id)
    }

    fn last_seq(&mut self, room: &RoomName) -> Result<u64, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(LAST_SEQ)
            .map_err(fail("last_seq"))?;
        let max: Option<i64> = stmt
            .query_row([room.as_str()], |r| r.get(0))
            .map_err(fail("last_seq"))?;
        max.map_or(Ok(0), |v| from_sql_int("last_seq", v))
    }

    fn wal_pages(&self) -> u32 {
        self.wal_pages.load(Ordering::Relaxed)
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        // PASSIVE: copies what it can without waiting for a reader (say a
        // `sqlite3` shell); whatever it could not copy waits for the next.
        let (log, done) = self
            .conn
            .wal_checkpoint_v2(Some("main"), CheckpointMode::PASSIVE)
            .map_err(fail("checkpoint"))?;
        if done >= log {
            self.wal_pages.store(0, Ordering::Relaxed);
        }
        Ok(())
    }

    fn amends_since(
        &mut self,
        room: &RoomName,
        since: u64,
        limit: usize,
    ) -> Result<Vec<Rc<Amend>>, StoreError> {
        let Ok(since) = i64::try_from(since) else {
            return Ok(Vec::new()); // nothing is stored past i64::MAX
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare_cached(AMENDS_SINCE)
            .map_err(fail("amends_since"))?;
        let mut rows = stmt
            .query(params![room.as_str(), since, limit])
            .map_err(fail("amends_since"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(fail("amends_since"))? {
            out.push(Rc::new(read_amend(room, r)?));
        }
        Ok(out)
    }

    fn find(&mut self, room: &RoomName, what: &FindWhat) -> Result<Vec<Rc<Message>>, StoreError> {
        let latest = i64::try_from(FIND_LATEST).unwrap_or(i64::MAX);
        let mut found = match what {
            FindWhat::Seq(seq) => match i64::try_from(*seq) {
                Ok(seq) => self.messages(ONE_MESSAGE, room, params![room.as_str(), seq])?,
                Err(_) => Vec::new(),
            },
            FindWhat::LastBy(authors) => {
                // One walk of `messages_by_author` per author (one or two:
                // an account, or a guest's session), merged here: an IN
                // list would make SQLite sort every message of them all.
                let mut all = Vec::new();
                for author in authors.iter().filter(|a| !a.is_empty()) {
                    all.extend(self.messages(
                        LAST_BY,
                        room,
                        params![room.as_str(), author, latest],
                    )?);
                }
                all.sort_by_key(|m| std::cmp::Reverse(m.seq));
                all.dedup_by_key(|m| m.seq);
                all.truncate(FIND_LATEST);
                all
            }
            FindWhat::LastOf(nick) => {
                self.messages(LAST_OF, room, params![room.as_str(), key(nick), latest])?
            }
        };
        self.gather_reactions(room, &mut found)?;
        Ok(found.into_iter().map(Rc::new).collect())
    }

    fn unindexed(&self) -> usize {
        self.unindexed
    }

    /// Indexes up to `max` of the messages stored since the last time, in
    /// one transaction (FTS5 writes one new segment for all of them, where a
    /// message per commit cost a segment each).
    fn index_pending(&mut self, max: usize) -> Result<usize, StoreError> {
        if self.unindexed == 0 || max == 0 {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail("index"))?;
        let upto: i64 = tx
            .query_row("SELECT upto FROM search_progress", [], |r| r.get(0))
            .map_err(fail("index"))?;
        let offset = i64::try_from(max - 1).unwrap_or(i64::MAX);
        // The batch ends at the max-th message after `upto`, or at the last.
        let end: Option<i64> = tx
            .query_row(INDEX_BATCH_END, params![upto, offset], |r| r.get(0))
            .optional()
            .map_err(fail("index"))?;
        let end = match end {
            Some(end) => end,
            None => tx
                .query_row("SELECT ifnull(max(fts_id), 0) FROM messages", [], |r| {
                    r.get(0)
                })
                .map_err(fail("index"))?,
        };
        let done = tx
            .execute(INDEX_BATCH, params![upto, end])
            .map_err(fail("index"))?;
        // The batch's words, as FTS5 spells them, for prefix searches.
        for (sql, bounds) in [
            (WORDS_BATCH, true),
            (WORDS_ADD, false),
            (WORDS_CLEAR, false),
        ] {
            let mut st = tx.prepare_cached(sql).map_err(fail("index"))?;
            if bounds {
                st.execute(params![upto, end])
            } else {
                st.execute([])
            }
            .map_err(fail("index"))?;
        }
        tx.execute("UPDATE search_progress SET upto = ?1", [end])
            .map_err(fail("index"))?;
        let left: i64 = tx
            .query_row(UNINDEXED, [], |r| r.get(0))
            .map_err(fail("index"))?;
        tx.commit().map_err(fail("index"))?;
        self.unindexed = usize::try_from(left).unwrap_or(0);
        Ok(done)
    }

    fn search(&mut self, op: &SearchOp) -> Result<Vec<Hit>, StoreError> {
        // A search never misses a stored message: what waits to be indexed
        // is indexed first.
        // (By what waits, not by what a batch put in: a batch of deleted
        // messages puts in nothing and still moves on.)
        while self.unindexed > 0 {
            self.index_pending(INDEX_BEFORE_SEARCH)?;
        }
        if op.rooms.is_empty() || op.limit == 0 {
            return Ok(Vec::new());
        }
        // `before` is a seq in one room, a ts across rooms.
        let bound = |b: Option<u64>| b.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let (seq_below, ts_below) = if op.rooms.len() == 1 {
            (bound(op.before), i64::MAX)
        } else {
            (i64::MAX, bound(op.before))
        };
        let limit = i64::try_from(op.limit).unwrap_or(i64::MAX);
        let from = op.query.from.as_deref().map(key);
        let spelled = self.prefix_terms(&op.query)?;
        let mut hits = match fts_expression(&op.query, spelled.as_deref()) {
            Some(expr) => {
                self.search_index(op, &expr, from.as_deref(), seq_below, ts_below, limit)?
            }
            None => match from {
                Some(from) => self.search_from(op, &from, seq_below, ts_below, limit)?,
                // Every term was dropped (`-`, an emoji): nothing can match.
                None => return Ok(Vec::new()),
            },
        };
        let mut out = Vec::with_capacity(hits.len());
        for (mut m, snippet, marks) in hits.drain(..) {
            let room = m.room.clone();
            self.gather_reactions(&room, std::slice::from_mut(&mut m))?;
            out.push(Hit {
                message: Rc::new(m),
                snippet,
                marks,
            });
        }
        Ok(out)
    }

    fn commit(
        &mut self,
        batch: &[Rc<Message>],
        amends: &[Rc<Amend>],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        if batch.is_empty() && amends.is_empty() && self.pending.is_empty() && changes.is_empty() {
            // An empty batch costs nothing.
            return Ok(());
        }
        // IMMEDIATE takes the write lock up front, so a busy database fails
        // here, before any work, rather than at the first insert.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail("append"))?;
        if !self.pending.is_empty() {
            let mut stmt = tx.prepare_cached(INSERT_IMAGE).map_err(fail("append"))?;
            for img in &self.pending {
                stmt.execute(params![img.id, img.mime, img.data])
                    .map_err(fail("append image"))?;
            }
        }
        // In seq order within each room: a change entry applies before the
        // messages after it (a reply stored after a delete keeps no quote
        // of it, one stored before loses it). Rooms are independent.
        let mut applied = vec![false; amends.len()];
        for m in batch {
            for (a, done) in amends.iter().zip(applied.iter_mut()) {
                if !*done && a.room == m.room && a.seq < m.seq {
                    apply_amend(&tx, a)?;
                    *done = true;
                }
            }
            insert_message(&tx, m)?;
        }
        for (a, done) in amends.iter().zip(&applied) {
            if !done {
                apply_amend(&tx, a)?;
            }
        }
        for change in changes {
            apply(&tx, change)?;
        }
        // Any early return above drops `tx`, which rolls the whole batch back.
        tx.commit().map_err(fail("append commit"))?;
        self.pending.clear();
        self.unindexed += batch.len();
        Ok(())
    }

    fn history(&mut self, room: &RoomName, page: Page) -> Result<Vec<Rc<Message>>, StoreError> {
        let Some((lo, hi)) = inclusive_range(&page) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let sql = if page.after.is_some() {
            PAGE_ASC
        } else {
            PAGE_DESC
        };
        let mut out = self.messages(sql, room, params![room.as_str(), lo, hi, limit])?;
        if page.after.is_none() {
            out.reverse();
        }
        self.gather_reactions(room, &mut out)?;
        Ok(out.into_iter().map(Rc::new).collect())
    }
}

impl SqliteStore {
    /// The messages a query of [`message_columns`] returns, in its order,
    /// without their reactions (see [`SqliteStore::gather_reactions`]).
    fn messages(
        &self,
        sql: &str,
        room: &RoomName,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Message>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(fail("read"))?;
        let rows = stmt
            .query_map(args, |r| read_message(room, r))
            .map_err(fail("read"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(fail("read"))
    }

    /// Fills in the reactions of `messages` (one room's, ascending or
    /// descending `seq`) with one read of their seq range.
    fn gather_reactions(
        &self,
        room: &RoomName,
        messages: &mut [Message],
    ) -> Result<(), StoreError> {
        let (Some(lo), Some(hi)) = (
            messages.iter().map(|m| m.seq).min(),
            messages.iter().map(|m| m.seq).max(),
        ) else {
            return Ok(());
        };
        let mut stmt = self
            .conn
            .prepare_cached(PAGE_REACTIONS)
            .map_err(fail("reactions"))?;
        let mut rows = stmt
            .query(params![
                room.as_str(),
                to_sql_int("seq", lo)?,
                to_sql_int("seq", hi)?
            ])
            .map_err(fail("reactions"))?;
        let mut by_seq: BTreeMap<u64, Vec<Reaction>> = BTreeMap::new();
        while let Some(r) = rows.next().map_err(fail("reactions"))? {
            let target = get_u64(r, 0).map_err(fail("reactions"))?;
            let emoji: String = r.get(1).map_err(fail("reactions"))?;
            let reactor = Reactor {
                author: r.get(2).map_err(fail("reactions"))?,
                nick: r.get(3).map_err(fail("reactions"))?,
            };
            let list = by_seq.entry(target).or_default();
            match list.last_mut() {
                // Rows come emoji by emoji, so a new emoji starts a new entry.
                Some(last) if last.emoji == emoji => last.by.push(reactor),
                _ => list.push(Reaction {
                    emoji,
                    by: vec![reactor],
                }),
            }
        }
        for m in messages {
            if let Some(reactions) = by_seq.remove(&m.seq) {
                m.reactions = reactions;
            }
        }
        Ok(())
    }

    /// The index's words that a query's last word, as a prefix, stands
    /// for, when that word is longer than the prefix indexes and natter
    /// can spell it as the index does (`text::index_term`); `None` leaves
    /// the prefix to FTS5 (short words have a prefix index; other scripts,
    /// and words with more than [`PREFIX_TERMS`] continuations).
    ///
    /// FTS5 answers `"deploy" *` by merging the postings of every word that
    /// starts with `deploy` before the first hit comes out: for a word in
    /// most messages, tens of milliseconds of the loop. `("deploy" OR
    /// "deployed" OR ...)` is walked newest first and stopped at `limit`,
    /// like one word (docs/BENCHMARKS.md, "Search").
    fn prefix_terms(&self, q: &Query) -> Result<Option<Vec<String>>, StoreError> {
        let Some(last) = q.words.iter().rev().find(|w| has_word_char(w)) else {
            return Ok(None);
        };
        let Some(term) = text::index_term(last).filter(|t| t.len() > PREFIX_INDEXED) else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(PREFIX_WORDS)
            .map_err(fail("search"))?;
        let upper = format!("{term}\u{10FFFF}");
        let limit = i64::try_from(PREFIX_TERMS + 1).unwrap_or(i64::MAX);
        let terms = stmt
            .query_map(params![term, upper, limit], |r| r.get::<_, String>(0))
            .map_err(fail("search"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail("search"))?;
        Ok((terms.len() <= PREFIX_TERMS).then_some(terms))
    }

    /// A search with words: the index walked newest first (its rowid
    /// descending, which FTS5 can do without sorting), each hit joined to
    /// its message and filtered; SQLite stops at `limit` hits. The index is
    /// the outer loop (`CROSS JOIN`), whatever the planner would guess.
    fn search_index(
        &self,
        op: &SearchOp,
        expr: &str,
        from: Option<&str>,
        seq_below: i64,
        ts_below: i64,
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        // The statement differs only by the number of rooms (one, or the
        // rooms a client is in), so a few are prepared and cached.
        let rooms: Vec<String> = (0..op.rooms.len()).map(|i| format!("?{}", i + 9)).collect();
        // A later page of one room starts the index walk below the first
        // message at or after `before` (ids grow with seq within a room);
        // filtering by seq alone would walk past every newer hit first.
        let id_below: i64 = match (op.rooms.as_slice(), seq_below) {
            ([room], seq) if seq < i64::MAX => self
                .conn
                .prepare_cached(FIRST_ID_FROM)
                .and_then(|mut st| {
                    st.query_row(params![room.as_str(), seq], |r| r.get::<_, Option<i64>>(0))
                        .optional()
                })
                .map_err(fail("search"))?
                .flatten()
                .unwrap_or(i64::MAX),
            _ => i64::MAX,
        };
        let sql = format!(
            "SELECT {}, m.room, snippet(messages_fts, 0, ?5, ?6, '{ELLIPSIS}', {SNIPPET_TOKENS}) \
             FROM messages_fts CROSS JOIN messages m ON m.fts_id = messages_fts.rowid \
             WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?8 \
             AND m.seq < ?2 AND m.ts < ?3 \
             AND (?4 IS NULL OR lower(m.sender) = ?4) AND m.room IN ({}) \
             ORDER BY messages_fts.rowid DESC LIMIT ?7",
            message_columns!()
                .split(", ")
                .map(|c| format!("m.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", "),
            rooms.join(", ")
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(fail("search"))?;
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![
            Box::new(expr.to_owned()),
            Box::new(seq_below),
            Box::new(ts_below),
            Box::new(from.map(str::to_owned)),
            Box::new(MARK_OPEN.to_string()),
            Box::new(MARK_CLOSE.to_string()),
            Box::new(limit),
            Box::new(id_below),
        ];
        args.extend(
            op.rooms
                .iter()
                .map(|r| Box::new(r.as_str().to_owned()) as Box<dyn rusqlite::ToSql>),
        );
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(fail("search"))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(fail("search"))? {
            let name: String = r.get(16).map_err(fail("search"))?;
            // Only the rooms asked for pass the filter.
            let Some(room) = op.rooms.iter().find(|x| x.as_str() == name) else {
                continue;
            };
            let m = read_message(room, r).map_err(fail("search"))?;
            let raw: String = r.get(17).map_err(fail("search"))?;
            let (chars, marks) = unmark(&raw, MARK_OPEN, MARK_CLOSE);
            let (snippet, marks) = fit(chars, marks);
            out.push((m, snippet, marks));
        }
        Ok(out)
    }

    /// A `from:` search without words: each room's messages by that sender
    /// along `messages_by_sender`, merged newest first (by index id, as a
    /// search with words orders them).
    fn search_from(
        &self,
        op: &SearchOp,
        from: &str,
        seq_below: i64,
        ts_below: i64,
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        let mut all: Vec<(i64, Message)> = Vec::new();
        let mut stmt = self
            .conn
            .prepare_cached(FROM_ONLY)
            .map_err(fail("search"))?;
        for room in &op.rooms {
            let rows = stmt
                .query_map(
                    params![room.as_str(), from, seq_below, ts_below, limit],
                    |r| {
                        Ok((
                            r.get::<_, Option<i64>>(16)?.unwrap_or(0),
                            read_message(room, r)?,
                        ))
                    },
                )
                .map_err(fail("search"))?;
            for row in rows {
                all.push(row.map_err(fail("search"))?);
            }
        }
        all.sort_by_key(|x| std::cmp::Reverse(x.0));
        all.truncate(op.limit);
        Ok(all
            .into_iter()
            .map(|(_, m)| {
                let snippet = head(&m.text);
                (m, snippet, Vec::new())
            })
            .collect())
    }
}

/// A message a search found, with its snippet and the hits marked in it.
type Found = (Message, String, Vec<(usize, usize)>);

/// Marks a hit's start and end in FTS5's snippets: control characters,
/// which stored text never holds (`hub::names::sanitize` replaces them),
/// so a marker in a snippet is always one of ours.
const MARK_OPEN: char = '\u{1}';
const MARK_CLOSE: char = '\u{2}';

/// Tokens in an FTS5 snippet: about [`super::text::SNIPPET_CHARS`] of ordinary words
/// (FTS5 allows at most 64); [`fit`] cuts one of long words down.
const SNIPPET_TOKENS: usize = 32;

/// The one place where user text meets FTS5's query syntax. Every term
/// becomes a double-quoted string (a `"` inside doubled), in which FTS5
/// reads no operator, column filter or `NEAR`, only text to tokenize; the
/// last word is also a prefix (`"word" *`); a phrase is one quoted string;
/// terms are joined by spaces (all must match). Control characters
/// (NUL among them, which would end the string early for FTS5's parser)
/// become spaces, as the tokenizer would treat them anyway. A term with no
/// letter or digit is dropped (it would be an empty phrase). `None`: no
/// text condition is left.
fn fts_expression(q: &Query, last_terms: Option<&[String]>) -> Option<String> {
    let quote = |t: &str| {
        let mut out = String::with_capacity(t.len() + 2);
        out.push('"');
        for c in t.chars() {
            match c {
                '"' => out.push_str("\"\""),
                c if c.is_control() => out.push(' '),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    };
    let words: Vec<&String> = q.words.iter().filter(|w| has_word_char(w)).collect();
    let mut terms: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut t = quote(w);
            if i + 1 < words.len() {
                return t;
            }
            // The last word is also a prefix, from two letters on: `t*`
            // would be every word starting with t, a list as long as the
            // index (the schema's prefix indexes start at two).
            match last_terms {
                // Spelled out (`prefix_terms`): any of the index's words
                // that start with it, or none at all.
                Some([]) => {}
                Some(terms) => {
                    let any: Vec<String> = terms.iter().map(|t| quote(t)).collect();
                    t = format!("({})", any.join(" OR "));
                }
                None => {
                    let letters = w.chars().filter(|c| c.is_alphanumeric()).count();
                    if letters >= 2 {
                        t.push_str(" *");
                    }
                }
            }
            t
        })
        .collect();
    terms.extend(
        q.phrases
            .iter()
            .filter(|p| has_word_char(p))
            .map(|p| quote(p)),
    );
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

/// Messages stored after the search index's end (`search_progress`).
const UNINDEXED: &str = "SELECT count(*) FROM messages \
                         WHERE fts_id > (SELECT upto FROM search_progress)";

/// The `fts_id` that ends a batch of `?2 + 1` messages after `?1`.
const INDEX_BATCH_END: &str =
    "SELECT fts_id FROM messages WHERE fts_id > ?1 ORDER BY fts_id LIMIT 1 OFFSET ?2";

/// Indexes the messages after `?1` up to `?2` that are not deleted.
const INDEX_BATCH: &str = "INSERT INTO messages_fts (rowid, text) \
                           SELECT fts_id, text FROM messages \
                           WHERE fts_id > ?1 AND fts_id <= ?2 AND deleted = 0 ORDER BY fts_id";

/// The same messages' text tokenized by `words_scratch`, whose words
/// `WORDS_ADD` adds to `search_words`; `WORDS_CLEAR` empties it again.
const WORDS_BATCH: &str = "INSERT INTO words_scratch (rowid, text) \
                           SELECT fts_id, text FROM messages \
                           WHERE fts_id > ?1 AND fts_id <= ?2 AND deleted = 0";
const WORDS_ADD: &str =
    "INSERT OR IGNORE INTO search_words (word) SELECT term FROM words_scratch_vocab";
const WORDS_CLEAR: &str = "INSERT INTO words_scratch (words_scratch) VALUES ('delete-all')";

/// Messages indexed per transaction when a search finds some pending.
const INDEX_BEFORE_SEARCH: usize = 4096;

/// The index's words from `?1` up to `?2` (a range: all that start with
/// `?1`), at most `?3`.
const PREFIX_WORDS: &str = "SELECT word FROM search_words WHERE word >= ?1 AND word < ?2 \
                            ORDER BY word LIMIT ?3";

/// Longest prefix the schema has a prefix index for (`prefix = '2 3 4'`).
const PREFIX_INDEXED: usize = 4;
/// Most words a longer last word is spelled out into; past that the
/// prefix is left to FTS5.
const PREFIX_TERMS: usize = 64;

/// A message from a row of [`message_columns`] (the first 16 columns).
fn read_message(room: &RoomName, r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    let mut m = Message::new(
        room.clone(),
        get_u64(r, 0)?,
        get_u64(r, 1)?,
        r.get(2)?,
        r.get(3)?,
    );
    m.action = r.get(4)?;
    m.image = image_ref(r)?;
    m.account = r.get(8)?;
    m.author = r.get(9)?;
    m.reply_to = match r.get::<_, Option<i64>>(10)? {
        Some(_) => Some(ReplyTo {
            seq: get_u64(r, 10)?,
            from: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
            text: r.get(12)?,
        }),
        None => None,
    };
    m.mentions = r
        .get::<_, Option<String>>(13)?
        .map(|s| {
            s.split(' ')
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    m.edited_ts = match r.get::<_, Option<i64>>(14)? {
        Some(_) => Some(get_u64(r, 14)?),
        None => None,
    };
    m.deleted = r.get(15)?;
    Ok(m)
}

/// A change entry from a row of [`AMENDS_SINCE`]. A kind natter does not
/// write is an error, not a guess.
fn read_amend(room: &RoomName, r: &rusqlite::Row<'_>) -> Result<Amend, StoreError> {
    let f = fail("amends_since");
    let kind: String = r.get(5).map_err(&f)?;
    let kind = match kind.as_str() {
        // A deleted message's edit entries have no text left; they are not
        // read (a catch-up leaves them out), but '' is what they say.
        "edit" => AmendKind::Edit {
            text: r
                .get::<_, Option<String>>(6)
                .map_err(&f)?
                .unwrap_or_default(),
        },
        "delete" => AmendKind::Delete {
            of: r
                .get::<_, Option<String>>(7)
                .map_err(&f)?
                .unwrap_or_default(),
        },
        "react" => AmendKind::React {
            emoji: r
                .get::<_, Option<String>>(8)
                .map_err(&f)?
                .unwrap_or_default(),
            on: r.get::<_, Option<bool>>(9).map_err(&f)?.unwrap_or(false),
        },
        other => {
            return Err(StoreError(format!(
                "amends_since: a change entry of unknown kind {other:?}"
            )))
        }
    };
    Ok(Amend {
        room: room.clone(),
        seq: get_u64(r, 0).map_err(&f)?,
        target: get_u64(r, 1).map_err(&f)?,
        ts: get_u64(r, 2).map_err(&f)?,
        by: r.get(3).map_err(&f)?,
        author: r.get(4).map_err(&f)?,
        kind,
    })
}

/// Stores one message inside the commit's transaction (the index follows
/// by trigger). Its reactions are not stored: a new message has none.
fn insert_message(tx: &rusqlite::Transaction<'_>, m: &Message) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(INSERT_MESSAGE).map_err(fail("append"))?;
    let mentions = (!m.mentions.is_empty()).then(|| m.mentions.join(" "));
    stmt.execute(params![
        m.room.as_str(),
        to_sql_int("seq", m.seq)?,
        to_sql_int("ts", m.ts)?,
        m.from,
        m.text,
        m.action,
        m.image.as_ref().map(|i| i.id.as_str()),
        m.image.as_ref().map(|i| i.mime),
        m.image
            .as_ref()
            .map(|i| i64::try_from(i.size).unwrap_or(i64::MAX)),
        m.account,
        m.author,
        m.reply_to
            .as_ref()
            .map(|r| to_sql_int("reply_to", r.seq))
            .transpose()?,
        m.reply_to.as_ref().map(|r| r.from.as_str()),
        m.reply_to.as_ref().and_then(|r| r.text.as_deref()),
        mentions,
        m.edited_ts
            .map(|t| to_sql_int("edited_ts", t))
            .transpose()?,
        m.deleted,
    ])
    .map(drop)
    .map_err(fail("append"))
}

/// Stores one change entry and applies it to its target (as
/// `port::Batch::amends` says) inside the commit's transaction. A target
/// that is not there, or already deleted, is left alone: the entry is
/// stored all the same (its seq was given out).
fn apply_amend(tx: &rusqlite::Transaction<'_>, a: &Amend) -> Result<(), StoreError> {
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(sql).map_err(fail("commit change"))?;
        stmt.execute(p).map(drop).map_err(fail("commit change"))
    };
    let room = a.room.as_str();
    let seq = to_sql_int("seq", a.seq)?;
    let target = to_sql_int("target", a.target)?;
    let ts = to_sql_int("ts", a.ts)?;
    let (text, of, emoji, on) = match &a.kind {
        AmendKind::Edit { text } => (Some(text.as_str()), None, None, None),
        AmendKind::Delete { of } => (None, Some(of.as_str()), None, None),
        AmendKind::React { emoji, on } => (None, None, Some(emoji.as_str()), Some(*on)),
    };
    run(
        INSERT_AMEND,
        params![
            room,
            seq,
            target,
            ts,
            a.by,
            a.author,
            a.kind.as_str(),
            text,
            of,
            emoji,
            on
        ],
    )?;
    match &a.kind {
        AmendKind::Edit { text } => run(EDIT_TARGET, params![room, target, text, ts]),
        AmendKind::React { emoji, on: true } => {
            run(REACT_ON, params![room, target, emoji, a.author, a.by, seq])
        }
        AmendKind::React { emoji, on: false } => {
            run(REACT_OFF, params![room, target, emoji, a.author])
        }
        AmendKind::Delete { .. } => {
            let image: Option<String> = tx
                .prepare_cached(IMAGE_OF)
                .and_then(|mut s| s.query_row(params![room, target], |r| r.get(0)).optional())
                .map_err(fail("commit change"))?
                .flatten();
            run(DELETE_TARGET, params![room, target])?;
            if let Some(image) = image {
                run(DELETE_IMAGE, params![image])?;
            }
            run(DELETE_REACTIONS, params![room, target])?;
            run(FORGET_EDITS, params![room, target])?;
            run(FORGET_QUOTES, params![room, target])
        }
    }
}

/// The image columns of a page row, if the message has an image of a type
/// this natter serves.
fn image_ref(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ImageRef>> {
    let id: Option<String> = r.get(5)?;
    let mime: Option<String> = r.get(6)?;
    let size: Option<i64> = r.get(7)?;
    Ok(match (id, mime.as_deref().and_then(known_mime), size) {
        (Some(id), Some(mime), Some(size)) => Some(ImageRef {
            id,
            mime,
            size: usize::try_from(size).unwrap_or(0),
        }),
        _ => None,
    })
}

/// Writes one change inside the commit's transaction.
fn apply(tx: &rusqlite::Transaction<'_>, change: &Change) -> Result<(), StoreError> {
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(sql).map_err(fail("commit change"))?;
        stmt.execute(p).map(drop).map_err(fail("commit change"))
    };
    match change {
        Change::AccountPut(a) => {
            run(DEL_STRAY_TOKENS, params![key(&a.name)])?;
            run(
                PUT_ACCOUNT,
                params![
                    key(&a.name),
                    a.name,
                    a.phc,
                    to_sql_int("created", a.created)?
                ],
            )
        }
        Change::AccountDel { name } => {
            run(DEL_ACCOUNT, params![key(name)])?;
            run(DEL_TOKENS_OF, params![key(name)])
        }
        Change::TokenPut(t) => run(
            PUT_TOKEN,
            params![t.hash, key(&t.account), to_sql_int("expires", t.expires)?],
        ),
        Change::TokenDel { hash } => run(DEL_TOKEN, params![hash]),
        Change::TokensDel { account } => run(DEL_TOKENS_OF, params![key(account)]),
        Change::RoomPut { room, settings } => run(
            PUT_ROOM,
            params![
                room.as_str(),
                settings.owner,
                settings.topic,
                settings.invite_only
            ],
        ),
        Change::EntryPut { room, entry } => {
            run(ENSURE_ROOM, params![room.as_str()])?;
            run(
                PUT_ENTRY,
                params![
                    room.as_str(),
                    entry.kind.as_str(),
                    entry.subject,
                    entry.nick,
                    entry.by,
                    entry.reason,
                    entry.until.map(|u| to_sql_int("until", u)).transpose()?,
                    to_sql_int("ts", entry.ts)?
                ],
            )
        }
        Change::EntryDel {
            room,
            kind,
            subject,
        } => run(DEL_ENTRY, params![room.as_str(), kind.as_str(), subject]),
    }
}

/// An account's key: its name in ASCII lowercase, as `Nick::key`.
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.pragma_query_value(None, "data_version", |r| r.get(0))
        .map_err(fail("data_version"))
}

/// Reads accounts, tokens and rooms with their entries (see the queries
/// for the order). The outer `Result` is SQLite's, the inner one a row
/// natter could not have written.
fn read_state(conn: &Connection) -> rusqlite::Result<Result<State, StoreError>> {
    let mut state = State::default();
    let mut stmt = conn.prepare_cached(ALL_ACCOUNTS)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        state.accounts.push(AccountRecord {
            name: r.get(0)?,
            phc: r.get(1)?,
            created: get_u64(r, 2)?,
        });
    }
    let mut stmt = conn.prepare_cached(ALL_TOKENS)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        state.tokens.push(TokenRecord {
            hash: r.get(0)?,
            account: r.get(1)?,
            expires: get_u64(r, 2)?,
        });
    }
    let mut rooms: BTreeMap<String, (RoomRecord, Vec<RoomEntry>)> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(ALL_ROOMS)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let settings = RoomRecord {
            owner: r.get(1)?,
            topic: r.get(2)?,
            invite_only: r.get(3)?,
        };
        rooms.insert(r.get(0)?, (settings, Vec::new()));
    }
    let mut stmt = conn.prepare_cached(ALL_ENTRIES)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let Some(kind) = EntryKind::parse(&kind) else {
            return Ok(Err(StoreError(format!(
                "load_state: a room entry of unknown kind {kind:?}"
            ))));
        };
        let entry = RoomEntry {
            kind,
            subject: r.get(2)?,
            nick: r.get(3)?,
            by: r.get(4)?,
            reason: r.get(5)?,
            until: r
                .get::<_, Option<i64>>(6)?
                .map(|_| get_u64(r, 6))
                .transpose()?,
            ts: get_u64(r, 7)?,
        };
        // Every entry's room has a row (ENSURE_ROOM); one made by hand
        // without gets the default settings.
        rooms.entry(r.get(0)?).or_default().1.push(entry);
    }
    for (name, (settings, entries)) in rooms {
        match RoomName::parse(&name) {
            Ok(room) if room.as_str() == name => state.rooms.push((room, settings, entries)),
            _ => {
                return Ok(Err(StoreError(format!(
                    "load_state: stored room name {name:?} is not a valid room name"
                ))))
            }
        }
    }
    Ok(Ok(state))
}

/// Opens the file the way SQLite will, first, because SQLite's own report of
/// a missing or unwritable directory is only "unable to open database file",
/// and it silently opens a read-only file read-only (failing later, at the
/// first message). The OS error names the real reason.
fn check_writable(path: &str) -> Result<(), StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| StoreError(format!("cannot open {path}: {e}")))
}

/// Turns an error met while opening into a message for the operator.
fn open_error(path: &str, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError(format!("{path} is not a SQLite database")),
        // WAL mode creates two files beside the database: a writable file in
        // a read-only directory gets this far and fails here.
        Some(ErrorCode::CannotOpen) => StoreError(format!(
            "{path}: {e} (SQLite needs to create {path}-wal and {path}-shm \
             beside it: is the directory writable?)"
        )),
        _ => StoreError(format!("{path}: {e}")),
    }
}

/// Maps a runtime SQLite error to a [`StoreError`] naming the operation.
fn fail(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError(format!("{what}: {e}"))
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Refuses a schema this build does not know, before anything is changed.
fn check_version(path: &str, version: i64) -> Result<usize, StoreError> {
    match usize::try_from(version) {
        Ok(v) if v <= SCHEMA_VERSION => Ok(v),
        _ => Err(StoreError(format!(
            "{path} has schema version {version}, newer than this natter \
             understands ({SCHEMA_VERSION}); upgrade natter"
        ))),
    }
}

/// Brings the schema up to [`SCHEMA_VERSION`], one version per transaction
/// (each sets its `user_version`: a crash half-way leaves the file wholly at
/// some version), then reads (or makes) the store id.
fn migrate(
    conn: &mut Connection,
    path: &str,
    new_id: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    let from = check_version(path, user_version(conn).map_err(|e| open_error(path, e))?)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        let to = i + 1;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| open_error(path, e))?;
        // Read again under the write lock: another process may have migrated
        // the file since the first look.
        let at = check_version(path, user_version(&tx).map_err(|e| open_error(path, e))?)?;
        if at >= to {
            continue; // dropping `tx` rolls back: nothing was written
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError(format!("{path}: migrating to schema version {to}: {e}")))?;
        tx.pragma_update(None, "user_version", to as i64)
            .map_err(|e| open_error(path, e))?;
        tx.commit().map_err(|e| open_error(path, e))?;
    }
    if let Some(id) = store_id(conn).map_err(|e| open_error(path, e))? {
        return Ok(id);
    }
    // Only a new database lacks one (or one whose id was deleted by hand: a
    // fresh id then rightly tells clients their seqs are void). Looked at
    // again under the write lock, so two processes opening a new file agree.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| open_error(path, e))?;
    let id = match store_id(&tx).map_err(|e| open_error(path, e))? {
        Some(id) => id,
        None => {
            let id = new_id();
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('store_id', ?1)",
                [&id],
            )
            .map_err(|e| open_error(path, e))?;
            id
        }
    };
    tx.commit().map_err(|e| open_error(path, e))?;
    Ok(id)
}

fn store_id(conn: &Connection) -> rusqlite::Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
            r.get(0)
        })
        .optional()?
        .flatten())
}

/// SQLite integers are signed 64-bit; a larger value is refused, not wrapped.
fn to_sql_int(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError(format!("append: {what} {v} is too large to store")))
}

/// The reverse of [`to_sql_int`]: a negative value was never written by
/// natter, so it is reported rather than wrapped.
fn from_sql_int(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError(format!("{what}: stored value {v} is negative")))
}

/// Reads an unsigned column (rusqlite reads only signed 64-bit integers).
fn get_u64(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = r.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

/// The page's exclusive bounds as the inclusive range `lo..=hi` of stored
/// seqs, in SQLite's integer type; `None` when no stored seq can be inside.
/// Inclusive bounds make "no bound" (0 and `i64::MAX`) exact, with no special
/// case for a seq at either end.
fn inclusive_range(page: &Page) -> Option<(i64, i64)> {
    let lo = match page.after {
        None => 0,
        // Past i64::MAX there is nothing stored above.
        Some(a) => i64::try_from(a.checked_add(1)?).ok()?,
    };
    let hi = match page.before {
        None => i64::MAX,
        Some(b) => i64::try_from(b.checked_sub(1)?).unwrap_or(i64::MAX),
    };
    (lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests;
