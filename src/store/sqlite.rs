//! Message history and image bytes in one SQLite file (`--db`).
//!
//! Job: implement [`Store`] so that a message is on disk before anyone is sent
//! it. PROTOCOL.md "Durability" promises that after a crash (even `kill -9`)
//! every message any client received is still in the history, `seq` carries on
//! without a gap, and an image's bytes are committed with its message. The hub
//! hands [`Store::append`] one batch per loop iteration and delivers the batch
//! only once `append` returns `Ok`; one batch is one transaction.
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
//! commit that takes the WAL past 1000 pages, with two `fsync`s (2.5-4 ms
//! here), while every recipient of that commit's messages waits. A WAL hook
//! replaces that automatic checkpoint and only counts the WAL's pages
//! ([`Store::wal_pages`]); the loop calls [`Store::checkpoint`] when it has
//! been idle for a moment, or after it has sent a turn's messages if the WAL
//! has passed 1000 pages all the same.
//!
//! Must never: panic (every SQLite failure is a [`StoreError`]); touch a
//! database it does not understand (a newer schema, a file that is not SQLite,
//! or someone else's SQLite file are refused at open, unchanged); block the
//! loop for long (`busy_timeout` is small, see [`BUSY_TIMEOUT`]); scan a table
//! (every query walks the `(room, seq)` primary key, checked by a test).
//!
//! Read next: `schema.sql` beside this file for the tables, `mod.rs` for the
//! trait and the in-memory store this one must agree with (a property test
//! below checks that it does).

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
use crate::hub::event::{ImageRef, Message};
use crate::hub::image::known_mime;
use crate::hub::names::RoomName;

/// What `path` means an in-memory database that vanishes with the process.
pub const MEMORY: &str = ":memory:";

/// Schema migrations: entry `i` takes a database from `user_version` `i` to
/// `i + 1`. Released entries are never edited; a change is a new entry.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

/// The `user_version` this build writes and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// How long a statement waits for a lock held by another connection (say a
/// `sqlite3` shell reading the file) before failing. The whole server runs
/// on this thread, so a long wait would freeze every client; a short one
/// rides out a checkpoint or a brief reader.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(100);

const INSERT_MESSAGE: &str =
    "INSERT INTO messages (room, seq, ts, sender, text, action, image_id, image_mime, image_size) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// `OR IGNORE`: an id names one image for good (random or a content hash), so
/// a second put of the same id is the same bytes again, and must not fail
/// the whole batch of everyone else's messages.
const INSERT_IMAGE: &str = "INSERT OR IGNORE INTO images (id, mime, data) VALUES (?1, ?2, ?3)";

const LAST_SEQ: &str = "SELECT max(seq) FROM messages WHERE room = ?1";

/// Inclusive bounds `?2..=?3`, see [`inclusive_range`]. The earliest `?4`.
const PAGE_ASC: &str = "SELECT seq, ts, sender, text, action, image_id, image_mime, image_size \
     FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq ASC LIMIT ?4";

/// Same bounds, the latest `?4` (read backwards, reversed in Rust).
const PAGE_DESC: &str = "SELECT seq, ts, sender, text, action, image_id, image_mime, image_size \
     FROM messages \
     WHERE room = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq DESC LIMIT ?4";

const GET_IMAGE: &str = "SELECT mime, data FROM images WHERE id = ?1";

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
        if path != MEMORY {
            check_writable(path)?;
        }
        // No SQLITE_OPEN_URI: `--db` is a file name, never a URI with options
        // such as `mode=ro` hidden in it.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
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

impl Store for SqliteStore {
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

    fn append(&mut self, batch: &[Rc<Message>]) -> Result<(), StoreError> {
        if batch.is_empty() && self.pending.is_empty() {
            // The hub calls this every loop iteration; an empty one costs nothing.
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
                ])
                .map_err(fail("append"))?;
            }
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
                Ok(Message {
                    room: room.clone(),
                    seq: get_u64(r, 0)?,
                    ts: get_u64(r, 1)?,
                    from: r.get(2)?,
                    text: r.get(3)?,
                    action: r.get(4)?,
                    image: image_ref(r)?,
                })
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

/// Brings the schema up to [`SCHEMA_VERSION`] and reads (or makes) the store
/// id, all in one transaction: a crash half-way leaves the file as it was.
fn migrate(
    conn: &mut Connection,
    path: &str,
    new_id: impl FnOnce() -> String,
) -> Result<String, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| open_error(path, e))?;
    // Read again under the write lock: another process may have migrated the
    // file since the first look.
    let from = check_version(path, user_version(&tx).map_err(|e| open_error(path, e))?)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql).map_err(|e| {
            StoreError(format!(
                "{path}: migrating to schema version {}: {e}",
                i + 1
            ))
        })?;
    }
    if from < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION as i64)
            .map_err(|e| open_error(path, e))?;
    }
    let existing: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| open_error(path, e))?
        .flatten();
    let id = match existing {
        Some(id) => id,
        None => {
            // Only a new database lacks one (or one whose id was deleted by
            // hand: a fresh id then rightly tells clients their seqs are void).
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
mod tests {
    use super::*;
    use crate::store::MemStore;
    use crate::testrng::Rng;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A database path under the temp dir, unique per test and process; its
    /// files (with `-wal` and `-shm`) are removed when it is dropped.
    struct TempDb {
        path: PathBuf,
    }

    impl TempDb {
        fn new(tag: &str) -> TempDb {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let name = format!("natter-sqlite-{}-{tag}-{n}.db", std::process::id());
            let t = TempDb {
                path: std::env::temp_dir().join(name),
            };
            t.remove();
            t
        }

        fn path(&self) -> &str {
            self.path.to_str().unwrap()
        }

        fn remove(&self) {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.path()));
            }
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            self.remove();
        }
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn msg(room: &RoomName, seq: u64) -> Rc<Message> {
        Rc::new(Message {
            room: room.clone(),
            seq,
            ts: seq.wrapping_mul(1000) >> 1,
            from: "a".into(),
            text: format!("m{seq}"),
            action: false,
            image: None,
        })
    }

    fn seqs(v: Vec<Rc<Message>>) -> Vec<u64> {
        v.iter().map(|m| m.seq).collect()
    }

    fn page(before: Option<u64>, after: Option<u64>, limit: usize) -> Page {
        Page {
            before,
            after,
            limit,
        }
    }

    fn open(db: &TempDb, id: &str) -> SqliteStore {
        let id = id.to_owned();
        SqliteStore::open(db.path(), move || id).unwrap()
    }

    fn open_err(path: &str) -> String {
        match SqliteStore::open(path, || "x".into()) {
            Ok(_) => panic!("{path} opened"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn round_trip() {
        let db = TempDb::new("round");
        let mut s = open(&db, "id1");
        let r = room("lobby");
        let batch = vec![
            Rc::new(Message {
                room: r.clone(),
                seq: 1,
                ts: 1_763_800_000_000,
                from: "alice".into(),
                text: "hi 'there'; DROP TABLE messages; -- \u{1f600} ünï".into(),
                action: false,
                image: None,
            }),
            Rc::new(Message {
                room: r.clone(),
                seq: 2,
                ts: 1_763_800_000_001,
                from: "bob".into(),
                text: String::new(),
                action: true,
                image: None,
            }),
        ];
        s.append(&batch).unwrap();
        assert_eq!(s.last_seq(&r).unwrap(), 2);
        assert_eq!(s.history(&r, page(None, None, 50)).unwrap(), batch);
        // An empty batch is fine and changes nothing.
        s.append(&[]).unwrap();
        assert_eq!(s.history(&r, page(None, None, 50)).unwrap(), batch);
    }

    #[test]
    fn pages_with_exclusive_bounds() {
        // The expectations of MemStore's test of the same name, verbatim.
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "test".into()).unwrap();
        let batch: Vec<_> = (1..=10).map(|i| msg(&r, i)).collect();
        s.append(&batch).unwrap();
        assert_eq!(s.last_seq(&r).unwrap(), 10);
        assert_eq!(
            seqs(s.history(&r, page(None, None, 3)).unwrap()),
            [8, 9, 10]
        );
        assert_eq!(
            seqs(s.history(&r, page(Some(5), None, 3)).unwrap()),
            [2, 3, 4]
        );
        assert_eq!(
            seqs(s.history(&r, page(None, Some(5), 3)).unwrap()),
            [6, 7, 8]
        );
        assert_eq!(
            seqs(s.history(&r, page(Some(8), Some(5), 50)).unwrap()),
            [6, 7]
        );
        assert_eq!(
            seqs(s.history(&r, page(Some(3), Some(5), 50)).unwrap()),
            Vec::<u64>::new()
        );
        assert_eq!(
            seqs(s.history(&r, page(None, Some(10), 50)).unwrap()),
            Vec::<u64>::new()
        );
        let other = room("empty");
        assert!(s.history(&other, page(None, None, 50)).unwrap().is_empty());
        assert_eq!(s.last_seq(&other).unwrap(), 0);
    }

    #[test]
    fn extreme_bounds_do_not_overflow() {
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        s.append(&(1..=3).map(|i| msg(&r, i)).collect::<Vec<_>>())
            .unwrap();
        let all = [1, 2, 3];
        assert_eq!(
            seqs(s.history(&r, page(Some(u64::MAX), None, 50)).unwrap()),
            all
        );
        assert_eq!(
            seqs(s.history(&r, page(None, Some(0), usize::MAX)).unwrap()),
            all
        );
        assert!(s.history(&r, page(Some(0), None, 50)).unwrap().is_empty());
        assert!(s.history(&r, page(Some(1), None, 50)).unwrap().is_empty());
        assert!(s
            .history(&r, page(None, Some(u64::MAX), 50))
            .unwrap()
            .is_empty());
        assert!(s.history(&r, page(None, None, 0)).unwrap().is_empty());
        // A seq SQLite cannot hold is an error, and the batch is not half-stored.
        let err = s.append(&[msg(&r, 4), msg(&r, u64::MAX)]).unwrap_err();
        assert!(err.0.contains("too large"), "{err}");
        assert_eq!(s.last_seq(&r).unwrap(), 3);
    }

    #[test]
    fn seq_and_store_id_survive_reopen() {
        let db = TempDb::new("reopen");
        let (a, b) = (room("a"), room("b"));
        {
            let mut s = open(&db, "first");
            assert_eq!(s.store_id(), "first");
            s.append(&[msg(&a, 1), msg(&a, 2), msg(&b, 1)]).unwrap();
        }
        let mut s = SqliteStore::open(db.path(), || panic!("id made twice")).unwrap();
        assert_eq!(s.store_id(), "first");
        assert_eq!(s.last_seq(&a).unwrap(), 2);
        assert_eq!(s.last_seq(&b).unwrap(), 1);
        s.append(&[msg(&a, 3)]).unwrap();
        assert_eq!(
            seqs(s.history(&a, page(None, None, 50)).unwrap()),
            [1, 2, 3]
        );
    }

    #[test]
    fn committed_batch_survives_a_crash() {
        // `forget` skips the close (and its checkpoint), as `kill -9` would:
        // what a reopen sees was committed to the WAL, not tidied up at exit.
        let db = TempDb::new("crash");
        let r = room("lobby");
        let mut s = open(&db, "id");
        s.append(&[msg(&r, 1), msg(&r, 2)]).unwrap();
        std::mem::forget(s);
        let mut s = open(&db, "other");
        assert_eq!(s.store_id(), "id");
        assert_eq!(seqs(s.history(&r, page(None, None, 50)).unwrap()), [1, 2]);
    }

    #[test]
    fn commits_leave_checkpoints_to_the_caller() {
        let db = TempDb::new("checkpoint");
        let r = room("lobby");
        let mut s = open(&db, "id");
        let mut seq = 0;
        // One message per commit, as at chat rates: past SQLite's own
        // 1000-page threshold, and no commit has checkpointed.
        let mut last = 0;
        while s.wal_pages() <= 1500 {
            seq += 1;
            s.append(&[msg(&r, seq)]).unwrap();
            assert!(s.wal_pages() > last, "the WAL grows with every commit");
            last = s.wal_pages();
        }
        s.checkpoint().unwrap();
        assert_eq!(s.wal_pages(), 0);
        s.append(&[msg(&r, seq + 1)]).unwrap();
        assert!(s.wal_pages() < 10, "the WAL starts over: {}", s.wal_pages());
        std::mem::forget(s);
        let mut s = open(&db, "other");
        let all = s.history(&r, page(None, None, 500)).unwrap();
        assert_eq!(all.len(), 500);
        assert_eq!(s.last_seq(&r).unwrap(), seq + 1);
        assert_eq!(
            SqliteStore::open(MEMORY, || "m".into())
                .unwrap()
                .wal_pages(),
            0
        );
    }

    #[test]
    fn a_reader_holding_a_snapshot_leaves_the_rest_of_the_wal_for_later() {
        let db = TempDb::new("checkpoint-reader");
        let r = room("lobby");
        let mut s = open(&db, "id");
        s.append(&[msg(&r, 1)]).unwrap();
        // A `sqlite3` shell in the middle of a read: its snapshot pins the
        // WAL frames written after it began.
        let reader = Connection::open(db.path()).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let n: i64 = reader
            .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
            .unwrap();
        assert_eq!(n, 1);
        for seq in 2..=50 {
            s.append(&[msg(&r, seq)]).unwrap();
        }
        let before = s.wal_pages();
        s.checkpoint().unwrap();
        assert!(s.wal_pages() > 0, "a checkpoint past the reader's snapshot");
        assert_eq!(
            s.wal_pages(),
            before,
            "the count stays until the WAL starts over"
        );
        reader.execute_batch("COMMIT").unwrap();
        s.checkpoint().unwrap();
        assert_eq!(s.wal_pages(), 0, "once the reader is done, all of it");
        assert_eq!(s.last_seq(&r).unwrap(), 50);
    }

    #[test]
    fn memory_starts_empty_with_a_fresh_id() {
        let r = room("lobby");
        let mut one = SqliteStore::open(MEMORY, || "one".into()).unwrap();
        one.append(&[msg(&r, 1)]).unwrap();
        let mut two = SqliteStore::open(MEMORY, || "two".into()).unwrap();
        assert_eq!(two.store_id(), "two");
        assert_eq!(two.last_seq(&r).unwrap(), 0);
        assert!(two.history(&r, page(None, None, 50)).unwrap().is_empty());
        assert_eq!(one.last_seq(&r).unwrap(), 1);
    }

    #[test]
    fn refuses_a_file_that_is_not_sqlite() {
        let db = TempDb::new("notdb");
        std::fs::write(&db.path, "natter log\n".repeat(200)).unwrap();
        assert_eq!(
            open_err(db.path()),
            format!("{} is not a SQLite database", db.path())
        );
        // And leaves it alone.
        assert_eq!(
            std::fs::read_to_string(&db.path).unwrap(),
            "natter log\n".repeat(200)
        );
        // Shorter than a SQLite header, too.
        std::fs::write(&db.path, "hello").unwrap();
        assert_eq!(
            open_err(db.path()),
            format!("{} is not a SQLite database", db.path())
        );
    }

    #[test]
    fn refuses_a_newer_schema_untouched() {
        let db = TempDb::new("newer");
        {
            let c = Connection::open(db.path()).unwrap();
            c.execute_batch("CREATE TABLE messages (x); PRAGMA user_version = 2;")
                .unwrap();
        }
        assert_eq!(
            open_err(db.path()),
            format!(
                "{} has schema version 2, newer than this natter understands (1); upgrade natter",
                db.path()
            )
        );
        let c = Connection::open(db.path()).unwrap();
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "journal mode changed on a refused file");
    }

    #[test]
    fn refuses_another_programs_database() {
        let db = TempDb::new("foreign");
        {
            let c = Connection::open(db.path()).unwrap();
            c.execute_batch("CREATE TABLE recipes (name TEXT);")
                .unwrap();
        }
        let e = open_err(db.path());
        assert!(e.contains("some other program"), "{e}");
    }

    #[test]
    fn unopenable_paths_name_the_path_and_the_reason() {
        let dir = std::env::temp_dir().join(format!("natter-no-such-dir-{}", std::process::id()));
        let missing = format!("{}/natter.db", dir.to_str().unwrap());
        let e = open_err(&missing);
        assert!(e.contains(&missing), "{e}");
        assert!(e.contains("No such file or directory"), "{e}");

        // A directory that cannot hold files: here one that is a plain file
        // (a permission test would pass as root, which CI may be).
        let file = TempDb::new("notadir");
        std::fs::write(&file.path, b"").unwrap();
        let under = format!("{}/natter.db", file.path());
        let e = open_err(&under);
        assert!(e.contains(&under), "{e}");
        assert!(e.contains("Not a directory"), "{e}");

        // A read-only directory, where permissions apply (not as root).
        use std::os::unix::fs::PermissionsExt;
        let ro = std::env::temp_dir().join(format!("natter-ro-dir-{}", std::process::id()));
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = ro.join("probe");
        let root = std::fs::write(&probe, b"").is_ok();
        let inside = format!("{}/natter.db", ro.to_str().unwrap());
        let result = SqliteStore::open(&inside, || "x".into());
        let _ = std::fs::remove_file(&probe);
        let _ = std::fs::remove_file(&inside);
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_dir_all(&ro);
        if !root {
            let e = result.err().unwrap().0;
            assert!(e.contains(&inside), "{e}");
            assert!(e.contains("Permission denied"), "{e}");
        }
    }

    #[test]
    fn failed_append_leaves_nothing() {
        let db = TempDb::new("atomic");
        let r = room("lobby");
        let mut s = open(&db, "id");
        s.append(&[msg(&r, 1), msg(&r, 2)]).unwrap();
        // 3 and 4 would be fine on their own; the repeated 2 sinks them all.
        let e = s.append(&[msg(&r, 3), msg(&r, 4), msg(&r, 2)]).unwrap_err();
        assert!(e.0.contains("UNIQUE"), "{e}");
        assert_eq!(s.last_seq(&r).unwrap(), 2);
        assert_eq!(seqs(s.history(&r, page(None, None, 50)).unwrap()), [1, 2]);
        // The store is still usable, and the good messages can be retried.
        s.append(&[msg(&r, 3), msg(&r, 4)]).unwrap();
        drop(s);
        let mut s = open(&db, "id");
        assert_eq!(
            seqs(s.history(&r, page(None, None, 50)).unwrap()),
            [1, 2, 3, 4]
        );
    }

    #[test]
    fn image_commits_with_its_append() {
        let db = TempDb::new("image");
        let r = room("lobby");
        let png = b"\x89PNG\r\n\x1a\n\0\0 pretend pixels".to_vec();
        let mut s = open(&db, "id");
        s.put_image("abc123", "image/png", &png).unwrap();
        assert_eq!(s.pending_images(), 1);
        // Not stored until its message is.
        assert_eq!(s.get_image("abc123").unwrap(), None);
        s.append(&[msg(&r, 1)]).unwrap();
        assert_eq!(s.pending_images(), 0);
        assert_eq!(
            s.get_image("abc123").unwrap(),
            Some(("image/png".to_owned(), png.clone()))
        );
        // The same id again keeps the first bytes and fails nobody's batch.
        s.put_image("abc123", "image/gif", b"GIF89a").unwrap();
        s.append(&[msg(&r, 2)]).unwrap();
        std::mem::forget(s);
        let mut s = open(&db, "id");
        assert_eq!(
            s.get_image("abc123").unwrap(),
            Some(("image/png".to_owned(), png))
        );
        assert_eq!(s.get_image("nope").unwrap(), None);
        assert_eq!(s.last_seq(&r).unwrap(), 2);
    }

    #[test]
    fn image_without_append_is_lost_in_a_crash() {
        let db = TempDb::new("lostimg");
        let mut s = open(&db, "id");
        s.put_image("img1", "image/png", b"bytes").unwrap();
        std::mem::forget(s);
        let mut s = open(&db, "id");
        assert_eq!(s.get_image("img1").unwrap(), None);
    }

    #[test]
    fn image_of_a_failed_append_waits_for_the_next() {
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        s.append(&[msg(&r, 1)]).unwrap();
        s.put_image("img", "image/webp", b"RIFF....WEBP").unwrap();
        s.append(&[msg(&r, 1)]).unwrap_err();
        assert_eq!(s.get_image("img").unwrap(), None);
        assert_eq!(s.pending_images(), 1);
        s.append(&[msg(&r, 2)]).unwrap();
        assert!(s.get_image("img").unwrap().is_some());
        // Images alone (an empty batch) are committed too.
        s.put_image("solo", "image/gif", b"GIF89a").unwrap();
        s.append(&[]).unwrap();
        assert!(s.get_image("solo").unwrap().is_some());
    }

    #[test]
    fn queries_walk_the_primary_key() {
        let s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        for (sql, params) in [
            (LAST_SEQ, 1),
            (PAGE_ASC, 4),
            (PAGE_DESC, 4),
            (INSERT_MESSAGE, 9),
            (GET_IMAGE, 1),
        ] {
            let args: Vec<String> = (1..=params).map(|i| format!("?{i}")).collect();
            let mut stmt = s
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args.iter().map(|_| 1)), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            let plan = plan.join(" | ");
            println!("{sql}\n  -> {plan}");
            assert!(!plan.contains("SCAN"), "{sql}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            if sql != INSERT_MESSAGE {
                assert!(
                    plan.contains("USING PRIMARY KEY") || plan.contains("USING INDEX"),
                    "{sql}: {plan}"
                );
            }
            if sql == PAGE_ASC || sql == PAGE_DESC {
                assert!(
                    plan.contains("(room=? AND seq>? AND seq<?)"),
                    "{sql}: {plan}"
                );
            }
        }
    }

    #[test]
    fn schema_version_is_set() {
        let db = TempDb::new("version");
        drop(open(&db, "id"));
        let c = Connection::open(db.path()).unwrap();
        assert_eq!(user_version(&c).unwrap(), SCHEMA_VERSION as i64);
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// A bound in `0..n` two times out of three, else none.
    fn maybe(rng: &mut Rng, n: u64) -> Option<u64> {
        (rng.below(3) > 0).then(|| rng.next_u64() % n)
    }

    #[test]
    fn agrees_with_memstore() {
        let db = TempDb::new("prop");
        let rooms: Vec<RoomName> = ["lobby", "rust", "quiet"].iter().map(|n| room(n)).collect();
        let texts = [
            "hi",
            "",
            "naïve café",
            "\u{1f980} crab",
            "it's \"quoted\"",
            "a\tb",
        ];
        for seed in 1..=4u64 {
            db.remove();
            let mut rng = Rng::new(seed);
            let mut mem = MemStore::new("mem".into());
            let mut sql = open(&db, "sql");
            for step in 0..400 {
                let r = &rooms[rng.below(rooms.len())];
                match rng.below(10) {
                    0..=3 => {
                        // A batch across rooms, each room's seqs consecutive.
                        let mut batch = Vec::new();
                        for _ in 0..rng.below(6) {
                            let r = &rooms[rng.below(rooms.len())];
                            let seq = mem.last_seq(r).unwrap()
                                + batch.iter().filter(|m: &&Rc<Message>| m.room == *r).count()
                                    as u64
                                + 1;
                            batch.push(Rc::new(Message {
                                room: r.clone(),
                                seq,
                                ts: rng.next_u64() >> 1,
                                from: format!("u{}", rng.below(5)),
                                text: texts[rng.below(texts.len())].into(),
                                action: rng.below(4) == 0,
                                image: None,
                            }));
                        }
                        mem.append(&batch).unwrap();
                        sql.append(&batch).unwrap();
                    }
                    4 => assert_eq!(
                        mem.last_seq(r).unwrap(),
                        sql.last_seq(r).unwrap(),
                        "seed {seed} step {step}"
                    ),
                    5 => {
                        // Reopen: everything must come back from the file.
                        drop(sql);
                        sql = open(&db, "unused");
                        assert_eq!(sql.store_id(), "sql");
                    }
                    _ => {
                        let top = mem.last_seq(r).unwrap() + 3;
                        let p = page(maybe(&mut rng, top), maybe(&mut rng, top), rng.below(12));
                        assert_eq!(
                            mem.history(r, p).unwrap(),
                            sql.history(r, p).unwrap(),
                            "seed {seed} step {step} {p:?}"
                        );
                    }
                }
            }
        }
    }
}
