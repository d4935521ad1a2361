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
//! Read next: `schema.sql` and `schema-2.sql` beside this file for the
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

use super::{Store, StoreError};
use crate::hub::command::Page;
use crate::hub::event::{Amend, Hit, ImageRef, Message};
use crate::hub::image::known_mime;
use crate::hub::names::RoomName;
use crate::hub::port::{
    AccountRecord, Change, EntryKind, FindWhat, RoomEntry, RoomRecord, SearchOp, State, TokenRecord,
};

/// What `path` means an in-memory database that vanishes with the process.
pub const MEMORY: &str = ":memory:";

/// Schema migrations: entry `i` takes a database from `user_version` `i` to
/// `i + 1`, each in its own transaction. Released entries are never edited;
/// a change is a new entry.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql"), include_str!("schema-2.sql")];

/// The `user_version` this build writes and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// How long a statement waits for a lock held by another connection (say a
/// `sqlite3` shell reading the file) before failing. The whole server runs
/// on this thread, so a long wait would freeze every client; a short one
/// rides out a checkpoint or a brief reader.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (room, seq, ts, sender, text, action, image_id, image_mime, image_size, account) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// `OR IGNORE`: an id names one image for good (random or a content hash), so
/// a second put of the same id is the same bytes again, and must not fail
/// the whole batch of everyone else's messages.
const INSERT_IMAGE: &str = "INSERT OR IGNORE INTO images (id, mime, data) VALUES (?1, ?2, ?3)";

const LAST_SEQ: &str = "SELECT max(seq) FROM messages WHERE room = ?1";

/// Inclusive bounds `?2..=?3`, see [`inclusive_range`]. The earliest `?4`.
const PAGE_ASC: &str =
    "SELECT seq, ts, sender, text, action, image_id, image_mime, image_size, account \
     FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq ASC LIMIT ?4";

/// Same bounds, the latest `?4` (read backwards, reversed in Rust).
const PAGE_DESC: &str =
    "SELECT seq, ts, sender, text, action, image_id, image_mime, image_size, account \
     FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq DESC LIMIT ?4";

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
        Ok(SqliteStore {
            conn,
            id,
            wal_pages,
            pending: Vec::new(),
            data_version: None,
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
        _room: &RoomName,
        _since: u64,
        _limit: usize,
    ) -> Result<Vec<Rc<Amend>>, StoreError> {
        Ok(Vec::new()) // STUB: the store's part of issue 16
    }

    fn find(&mut self, room: &RoomName, what: &FindWhat) -> Result<Vec<Rc<Message>>, StoreError> {
        // STUB: the store's part of issue 16
        Ok(match what {
            FindWhat::Seq(seq) => self.history(
                room,
                Page {
                    after: Some(seq.saturating_sub(1)),
                    before: Some(seq.saturating_add(1)),
                    limit: 1,
                },
            )?,
            _ => Vec::new(),
        })
    }

    fn search(&mut self, _op: &SearchOp) -> Result<Vec<Hit>, StoreError> {
        Ok(Vec::new()) // STUB: the store's part of issue 16
    }

    fn commit(
        &mut self,
        batch: &[Rc<Message>],
        _amends: &[Rc<Amend>],
        changes: &[Change],
    ) -> Result<(), StoreError> {
        if batch.is_empty() && self.pending.is_empty() && changes.is_empty() {
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
        {
            let mut stmt = tx.prepare_cached(INSERT_MESSAGE).map_err(fail("append"))?;
            for m in batch {
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
                ])
                .map_err(fail("append"))?;
            }
        }
        for change in changes {
            apply(&tx, change)?;
        }
        // Any early return above drops `tx`, which rolls the whole batch back.
        tx.commit().map_err(fail("append commit"))?;
        self.pending.clear();
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
        let mut stmt = self.conn.prepare_cached(sql).map_err(fail("history"))?;
        let rows = stmt
            .query_map(params![room.as_str(), lo, hi, limit], |r| {
                let mut m = Message::new(
                    room.clone(),
                    get_u64(r, 0)?,
                    get_u64(r, 1)?,
                    r.get(2)?,
                    r.get(3)?,
                );
                m.account = r.get(8)?;
                m.action = r.get(4)?;
                m.image = image_ref(r)?;
                Ok(m)
            })
            .map_err(fail("history"))?;
        let mut out = rows
            .map(|m| m.map(Rc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail("history"))?;
        if page.after.is_none() {
            out.reverse();
        }
        Ok(out)
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
