//! Tests of the SQLite store (the contract every store keeps is in
//! `store::contract`; these are what only SQLite does: files, crashes,
//! checkpoints, schema).

use super::*;
use crate::hub::port::{AccountRecord, EntryKind, RoomEntry, RoomRecord, TokenRecord};
use crate::store::contract::{account, entry, msg, msg_from, page, room, seqs, token};
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
fn keeps_the_store_contract() {
    crate::store::contract::run_all(|| Box::new(SqliteStore::open(MEMORY, || "t".into()).unwrap()));
}

#[test]
fn a_seq_sqlite_cannot_hold_is_an_error_and_nothing_is_stored() {
    let r = room("lobby");
    let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
    s.append(&(1..=3).map(|i| msg(&r, i)).collect::<Vec<_>>())
        .unwrap();
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
    // One message's commit: its row, and the search index's new segment
    // (the words and their 2-, 3- and 4-letter prefixes).
    assert!(s.wal_pages() < 20, "the WAL starts over: {}", s.wal_pages());
    std::mem::forget(s);
    let mut s = open(&db, "other");
    let all = s.history(&r, page(None, None, 500)).unwrap();
    // (Each commit also writes the search index's pages: a few hundred
    // messages are enough to pass 1500 pages.)
    assert_eq!(all.len() as u64, (seq + 1).min(500));
    assert_eq!(s.last_seq(&r).unwrap(), seq + 1);
    assert_eq!(
        SqliteStore::open(MEMORY, || "m".into())
            .unwrap()
            .wal_pages(),
        0
    );
}

/// The helper thread's connection: it copies the WAL while the writer
/// goes on committing on another thread, the writer's next commit after a
/// complete copy starts the WAL over, and nothing is lost.
#[test]
fn a_checkpointer_on_another_thread_copies_the_wal_beside_the_writer() {
    let db = TempDb::new("checkpointer");
    let r = room("lobby");
    let mut s = open(&db, "id");
    assert!(Checkpointer::open(MEMORY).unwrap().is_none());
    let mut cp = Checkpointer::open(db.path()).unwrap().expect("a file");
    let mut seq = 0;
    while s.wal_pages() <= 1200 {
        seq += 1;
        s.append(&[msg(&r, seq)]).unwrap();
    }
    let copying = std::thread::spawn(move || {
        let mut done = None;
        while done.is_none() {
            done = cp.checkpoint().unwrap(); // None: busy this instant
        }
        (cp, done)
    });
    // The writer is not held up meanwhile: it commits on.
    for _ in 0..200 {
        seq += 1;
        s.append(&[msg(&r, seq)]).unwrap();
    }
    let (mut cp, done) = copying.join().unwrap();
    let done = done.expect("checkpointed");
    assert!(done.log > 1200 && done.copied > 1000, "{done:?}");
    // Copy the rest with the writer quiet: its next commit starts over.
    let rest = cp.checkpoint().unwrap().expect("not busy");
    assert_eq!(rest.copied, rest.log);
    seq += 1;
    s.append(&[msg(&r, seq)]).unwrap();
    // (One message's commit: its row and the search index's new segment.)
    assert!(s.wal_pages() < 20, "the WAL starts over: {}", s.wal_pages());
    std::mem::forget(s); // no close, no checkpoint on close: as kill -9
    let mut s = open(&db, "other");
    assert_eq!(s.last_seq(&r).unwrap(), seq);
    let all = s.history(&r, page(None, None, 200)).unwrap();
    assert_eq!(all.last().map(|m| m.seq), Some(seq));
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
        c.execute_batch(&format!(
            "CREATE TABLE messages (x); PRAGMA user_version = {};",
            SCHEMA_VERSION + 1
        ))
        .unwrap();
    }
    assert_eq!(
        open_err(db.path()),
        format!(
            "{} has schema version {}, newer than this natter understands ({SCHEMA_VERSION}); \
             upgrade natter",
            db.path(),
            SCHEMA_VERSION + 1
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
        (INSERT_MESSAGE, 17),
        (GET_IMAGE, 1),
        (DEL_STRAY_TOKENS, 1),
        (DEL_ACCOUNT, 1),
        (DEL_TOKEN, 1),
        (DEL_TOKENS_OF, 1),
        (DEL_ENTRY, 3),
        (ONE_MESSAGE, 2),
        (LAST_BY, 3),
        (LAST_OF, 3),
        (FROM_ONLY, 5),
        (FIRST_ID_FROM, 2),
        (AMENDS_SINCE, 3),
        (INSERT_AMEND, 11),
        (EDIT_TARGET, 4),
        (REACT_ON, 6),
        (REACT_OFF, 4),
        (IMAGE_OF, 2),
        (DELETE_TARGET, 2),
        (DELETE_IMAGE, 1),
        (DELETE_REACTIONS, 2),
        (FORGET_EDITS, 2),
        (FORGET_QUOTES, 2),
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
        // (`max(a, b)` of two subqueries reads one constant row.)
        let plan = plan.replace("SCAN CONSTANT ROW", "constant row");
        assert!(!plan.contains("SCAN"), "{sql}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
        if sql != INSERT_MESSAGE && sql != INSERT_AMEND {
            assert!(
                plan.contains("USING PRIMARY KEY")
                    || plan.contains("USING INDEX")
                    || plan.contains("USING COVERING INDEX"),
                "{sql}: {plan}"
            );
        }
        if sql == DEL_TOKENS_OF || sql == DEL_STRAY_TOKENS {
            assert!(plan.contains("tokens_by_account"), "{sql}: {plan}");
        }
        if sql == LAST_BY {
            assert!(plan.contains("messages_by_author"), "{sql}: {plan}");
        }
        if sql == LAST_OF || sql == FROM_ONLY {
            assert!(plan.contains("messages_by_sender"), "{sql}: {plan}");
        }
        if sql == FORGET_QUOTES {
            assert!(plan.contains("messages_by_reply"), "{sql}: {plan}");
        }
        if sql == DELETE_IMAGE {
            assert!(plan.contains("messages_by_image"), "{sql}: {plan}");
        }
        if sql == FORGET_EDITS {
            assert!(plan.contains("amends_by_target"), "{sql}: {plan}");
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

/// A batch that fails (here on a repeated seq, or on a change SQLite
/// cannot hold) stores none of its changes, none of its messages and none
/// of its images; the store is usable after.
#[test]
fn a_failed_batch_stores_none_of_its_changes() {
    let r = room("lobby");
    let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
    s.append(&[msg(&r, 1)]).unwrap();
    let changes = vec![
        Change::AccountPut(account("alice", "$a", 1)),
        Change::TokenPut(token("t1", "alice", 10)),
        Change::RoomPut {
            room: r.clone(),
            settings: RoomRecord {
                owner: Some("alice".into()),
                topic: "t".into(),
                invite_only: true,
            },
        },
        Change::EntryPut {
            room: r.clone(),
            entry: entry(EntryKind::Ban, "bob", None),
        },
    ];
    s.put_image("img", "image/png", b"png").unwrap();
    let e = s
        .commit(&[msg_from(&r, 2, Some("alice")), msg(&r, 1)], &[], &changes)
        .unwrap_err();
    assert!(e.0.contains("UNIQUE"), "{e}");
    assert_eq!(s.load_state().unwrap(), State::default());
    assert_eq!(s.last_seq(&r).unwrap(), 1);
    assert_eq!(s.get_image("img").unwrap(), None);

    // A change that fails sinks the messages before it too.
    let mut bad = changes.clone();
    bad.push(Change::TokenPut(token("t2", "alice", u64::MAX)));
    let e = s.commit(&[msg(&r, 2)], &[], &bad).unwrap_err();
    assert!(e.0.contains("too large"), "{e}");
    assert_eq!(s.load_state().unwrap(), State::default());
    assert_eq!(s.last_seq(&r).unwrap(), 1);

    s.commit(&[msg(&r, 2)], &[], &changes).unwrap();
    let state = s.load_state().unwrap();
    assert_eq!(state.accounts, [account("alice", "$a", 1)]);
    assert_eq!(state.tokens, [token("t1", "alice", 10)]);
    assert_eq!(state.rooms.len(), 1);
    assert_eq!(s.get_image("img").unwrap().unwrap().1, b"png");
}

/// The exact v1 schema, as a natter before accounts made it.
const SCHEMA_1: &str = include_str!("../schema.sql");

/// A database as natter 0.1 (schema version 1) left it: two rooms'
/// messages, one with an image, and the image's bytes.
fn make_v1(db: &TempDb) {
    let c = Connection::open(db.path()).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.execute_batch(&format!(
        "BEGIN; {SCHEMA_1} PRAGMA user_version = 1; COMMIT;"
    ))
    .unwrap();
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', 'old-id')",
        [],
    )
    .unwrap();
    c.execute_batch(
        "INSERT INTO messages VALUES ('lobby', 1, 1000, 'alice', 'hello', 0, NULL, NULL, NULL);
         INSERT INTO messages VALUES ('lobby', 2, 2000, 'bob', 'waves', 1, NULL, NULL, NULL);
         INSERT INTO messages VALUES ('lobby', 3, 3000, 'alice', 'cat', 0, 'img1', 'image/png', 3);
         INSERT INTO messages VALUES ('rust', 1, 4000, 'carol', 'crab', 0, NULL, NULL, NULL);
         INSERT INTO images VALUES ('img1', 'image/png', x'010203');",
    )
    .unwrap();
}

/// The schema's text, table by table, and the version.
fn schema_of(path: &str) -> (Vec<String>, i64) {
    let c = Connection::open(path).unwrap();
    let mut stmt = c
        .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
        .unwrap();
    let sql = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    (sql, user_version(&c).unwrap())
}

#[test]
fn a_version_1_database_is_migrated_on_open() {
    let db = TempDb::new("v1");
    make_v1(&db);
    let (lobby, rust) = (room("lobby"), room("rust"));
    {
        let mut s = SqliteStore::open(db.path(), || panic!("the id is kept")).unwrap();
        assert_eq!(s.store_id(), "old-id");
        let got = s.history(&lobby, page(None, None, 50)).unwrap();
        assert_eq!(seqs(got.clone()), [1, 2, 3]);
        assert!(got.iter().all(|m| m.account.is_none()));
        assert_eq!(
            (got[0].from.as_str(), got[0].text.as_str()),
            ("alice", "hello")
        );
        assert!(got[1].action);
        let img = got[2].image.as_ref().expect("the image message");
        assert_eq!(
            (img.id.as_str(), img.mime, img.size),
            ("img1", "image/png", 3)
        );
        assert_eq!(
            s.get_image("img1").unwrap(),
            Some(("image/png".into(), vec![1, 2, 3]))
        );
        assert_eq!(s.last_seq(&rust).unwrap(), 1);
        assert_eq!(s.load_state().unwrap(), State::default());
        // The new tables and column work.
        s.commit(
            &[msg_from(&lobby, 4, Some("alice"))],
            &[],
            &[
                Change::AccountPut(account("alice", "$a", 5)),
                Change::TokenPut(token("t", "alice", 6)),
                Change::EntryPut {
                    room: rust.clone(),
                    entry: entry(EntryKind::Op, "alice", None),
                },
            ],
        )
        .unwrap();
    }
    let migrated = schema_of(db.path());
    assert_eq!(migrated.1, SCHEMA_VERSION as i64);
    // The same schema as a database made new, which goes through version 1,
    // 2 and 3 too.
    let fresh = TempDb::new("v1-fresh");
    drop(open(&fresh, "id"));
    assert_eq!(schema_of(fresh.path()), migrated);

    // Opening again changes nothing.
    let mut s = SqliteStore::open(db.path(), || panic!("the id is kept")).unwrap();
    assert_eq!(schema_of(db.path()), migrated);
    let c = Connection::open(db.path()).unwrap();
    let schema_cookie: i64 = c
        .pragma_query_value(None, "schema_version", |r| r.get(0))
        .unwrap();
    drop(s);
    s = SqliteStore::open(db.path(), || panic!("the id is kept")).unwrap();
    let again: i64 = c
        .pragma_query_value(None, "schema_version", |r| r.get(0))
        .unwrap();
    assert_eq!(again, schema_cookie);
    assert_eq!(
        seqs(s.history(&lobby, page(None, None, 50)).unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(
        s.history(&lobby, page(None, Some(3), 50)).unwrap()[0]
            .account
            .as_deref(),
        Some("alice")
    );
    let state = s.load_state().unwrap();
    assert_eq!(state.accounts, [account("alice", "$a", 5)]);
    assert_eq!(state.tokens, [token("t", "alice", 6)]);
    assert_eq!(state.rooms[0].2, [entry(EntryKind::Op, "alice", None)]);
}

/// Each version is its own transaction: a version 2 that cannot be applied
/// leaves the file wholly at version 1, its history intact.
#[test]
fn a_failed_migration_leaves_the_previous_version() {
    let db = TempDb::new("v1-stuck");
    make_v1(&db);
    {
        // Something in the way of version 2 (a hand-made table).
        let c = Connection::open(db.path()).unwrap();
        c.execute_batch("CREATE TABLE rooms (x)").unwrap();
    }
    let e = open_err(db.path());
    assert!(
        e.contains("migrating to schema version 2") && e.contains("rooms"),
        "{e}"
    );
    let c = Connection::open(db.path()).unwrap();
    assert_eq!(user_version(&c).unwrap(), 1);
    let n: i64 = c
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
    // The column added first was rolled back with the rest.
    assert!(c.prepare("SELECT account FROM messages").is_err());
}

/// `changed_elsewhere` reports commits of other connections (`natter
/// accounts`), never the store's own, each once.
#[test]
fn changed_elsewhere_sees_other_connections_only() {
    let db = TempDb::new("elsewhere");
    let r = room("lobby");
    let mut s = open(&db, "id");
    assert!(!s.changed_elsewhere().unwrap(), "the first look");
    s.commit(
        &[msg(&r, 1)],
        &[],
        &[Change::AccountPut(account("a", "$a", 1))],
    )
    .unwrap();
    assert!(!s.changed_elsewhere().unwrap(), "its own commit");

    let mut other = open(&db, "unused");
    other
        .commit(&[], &[], &[Change::AccountPut(account("b", "$b", 2))])
        .unwrap();
    assert!(s.changed_elsewhere().unwrap());
    assert!(!s.changed_elsewhere().unwrap(), "told once");
    // A read of the state counts as a look.
    other
        .commit(&[], &[], &[Change::AccountDel { name: "a".into() }])
        .unwrap();
    assert_eq!(s.load_state().unwrap().accounts, [account("b", "$b", 2)]);
    assert!(!s.changed_elsewhere().unwrap(), "load_state saw it");

    // Checkpoints on the helper's connection change no data.
    for seq in 2..=20 {
        s.append(&[msg(&r, seq)]).unwrap();
    }
    let mut cp = Checkpointer::open(db.path()).unwrap().expect("a file");
    cp.checkpoint().unwrap();
    s.append(&[msg(&r, 21)]).unwrap();
    assert!(!s.changed_elsewhere().unwrap(), "a checkpoint");

    let mut mem = SqliteStore::open(MEMORY, || "m".into()).unwrap();
    mem.append(&[msg(&r, 1)]).unwrap();
    assert!(!mem.changed_elsewhere().unwrap());
    assert!(!mem.changed_elsewhere().unwrap());
}

/// Changes that are stored may only be what natter writes: a stored
/// entry of an unknown kind is an error, not a panic or a silent skip.
#[test]
fn a_state_natter_did_not_write_is_an_error() {
    let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
    s.conn
        .execute_batch(
            "INSERT INTO rooms VALUES ('lobby', NULL, '', 0);
             INSERT INTO room_entries VALUES ('lobby', 'jester', 'bob', 'bob', 'a', NULL, NULL, 1);",
        )
        .unwrap();
    let e = s.load_state().unwrap_err();
    assert!(e.0.contains("jester"), "{e}");
    s.conn.execute_batch("DELETE FROM room_entries").unwrap();
    s.conn
        .execute_batch("INSERT INTO rooms VALUES ('Not A Room', NULL, '', 0)")
        .unwrap();
    let e = s.load_state().unwrap_err();
    assert!(e.0.contains("Not A Room"), "{e}");
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
            match rng.below(12) {
                10 => {
                    let changes: Vec<Change> = (0..rng.below(5))
                        .map(|_| random_change(&mut rng, &rooms))
                        .collect();
                    mem.commit(&[], &[], &changes).unwrap();
                    sql.commit(&[], &[], &changes).unwrap();
                }
                11 => assert_eq!(
                    mem.load_state().unwrap(),
                    sql.load_state().unwrap(),
                    "seed {seed} step {step}"
                ),
                0..=3 => {
                    // A batch across rooms, each room's seqs consecutive.
                    let mut batch = Vec::new();
                    for _ in 0..rng.below(6) {
                        let r = &rooms[rng.below(rooms.len())];
                        let seq = mem.last_seq(r).unwrap()
                            + batch.iter().filter(|m: &&Rc<Message>| m.room == *r).count() as u64
                            + 1;
                        batch.push(Rc::new(Message {
                            author: String::new(),
                            reply_to: None,
                            mentions: Vec::new(),
                            edited_ts: None,
                            deleted: false,
                            reactions: Vec::new(),
                            room: r.clone(),
                            seq,
                            ts: rng.next_u64() >> 1,
                            from: format!("u{}", rng.below(5)),
                            text: texts[rng.below(texts.len())].into(),
                            action: rng.below(4) == 0,
                            image: None,
                            account: (rng.below(2) == 0).then(|| format!("U{}", rng.below(3))),
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

/// A change among few names, spelled in varying case, so that they meet.
fn random_change(rng: &mut Rng, rooms: &[RoomName]) -> Change {
    let names = ["ann", "Ann", "ANN", "bo", "Bo", "cy"];
    let name = names[rng.below(names.len())].to_string();
    let room = rooms[rng.below(rooms.len())].clone();
    let kinds = [
        EntryKind::Op,
        EntryKind::Ban,
        EntryKind::Mute,
        EntryKind::Invite,
    ];
    let kind = kinds[rng.below(kinds.len())];
    let subject = ["ann", "bo", "ip:192.0.2.1"][rng.below(3)].to_string();
    let n = rng.next_u64() >> 20;
    match rng.below(9) {
        0 | 1 => Change::AccountPut(AccountRecord {
            name,
            phc: format!("$phc{n}"),
            created: n,
        }),
        2 => Change::AccountDel { name },
        3 | 4 => Change::TokenPut(TokenRecord {
            hash: format!("h{}", rng.below(6)),
            account: name,
            expires: n,
        }),
        5 => {
            if rng.below(2) == 0 {
                Change::TokenDel {
                    hash: format!("h{}", rng.below(6)),
                }
            } else {
                Change::TokensDel { account: name }
            }
        }
        6 => Change::RoomPut {
            room,
            settings: RoomRecord {
                owner: (rng.below(2) == 0).then_some(name),
                topic: format!("topic {n}"),
                invite_only: rng.below(2) == 0,
            },
        },
        7 => Change::EntryPut {
            room,
            entry: RoomEntry {
                kind,
                subject,
                nick: name,
                by: "Ann".into(),
                reason: (rng.below(2) == 0).then(|| format!("r{n}")),
                until: (rng.below(2) == 0).then_some(n),
                ts: n,
            },
        },
        _ => Change::EntryDel {
            room,
            kind,
            subject,
        },
    }
}

mod search {
    //! What only the SQLite store does about search: FTS5, its index kept
    //! in step, queries that can never be syntax, and migrations.

    use super::*;
    use crate::store::contract::{amend, delete, edit, found_in, said, search_op};

    #[test]
    fn fts5_is_compiled_in() {
        let s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        let on: bool = s
            .conn
            .query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(on);
        let tokenizer: String = s
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'messages_fts'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(tokenizer.contains("remove_diacritics 2"), "{tokenizer}");
    }

    /// FTS5's own check, against the content it indexes; and the words
    /// prefix searches spell out are exactly the index's words.
    fn integrity(s: &SqliteStore) {
        s.conn
            .execute(
                "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
                [],
            )
            .unwrap();
        let list = |sql: &str| -> Vec<String> {
            let mut st = s.conn.prepare(sql).unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let index = list("SELECT term FROM messages_vocab ORDER BY term");
        let words = list("SELECT word FROM search_words ORDER BY word");
        assert_eq!(words, index, "search_words against the index's own words");
        assert!(list("SELECT term FROM words_scratch_vocab").is_empty());
    }

    /// A random mix of messages, edits, deletes and reactions: the index
    /// stays exactly the live messages' text, a word only in deleted or
    /// replaced text is never found, and MemStore agrees on every search.
    #[test]
    fn the_index_stays_in_step_through_edits_and_deletes() {
        let words = ["alpha", "beta", "gamma", "délta", "Epsilon", "zeta"];
        let r = room("lobby");
        for seed in 1..=3u64 {
            let mut rng = Rng::new(seed);
            let mut sql = SqliteStore::open(MEMORY, || "t".into()).unwrap();
            let mut mem = MemStore::new("m".into());
            let mut seq = 0;
            let mut live: Vec<u64> = Vec::new();
            for step in 0..300 {
                let text = |rng: &mut Rng| {
                    (0..1 + rng.below(4))
                        .map(|_| words[rng.below(words.len())])
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                seq += 1;
                let (msgs, amends) = match rng.below(6) {
                    0..=2 => {
                        live.push(seq);
                        (vec![said(&r, seq, "ann", &text(&mut rng))], vec![])
                    }
                    3 if !live.is_empty() => {
                        let t = live[rng.below(live.len())];
                        (
                            vec![],
                            vec![amend(&r, seq, t, "ann", edit(&text(&mut rng)))],
                        )
                    }
                    4 if !live.is_empty() => {
                        let t = live.remove(rng.below(live.len()));
                        (vec![], vec![amend(&r, seq, t, "ann", delete("ann"))])
                    }
                    _ => {
                        let t = seq.saturating_sub(1 + rng.below(5) as u64).max(1);
                        let kind = crate::store::contract::react("👍", rng.below(2) == 0);
                        (vec![], vec![amend(&r, seq, t, "bo", kind)])
                    }
                };
                sql.commit(&msgs, &amends, &[]).unwrap();
                mem.commit(&msgs, &amends, &[]).unwrap();
                // Indexing in batches of any size, between changes to
                // messages indexed and not yet indexed.
                if rng.below(7) == 0 {
                    sql.index_pending(1 + rng.below(5)).unwrap();
                }
                if step % 25 == 0 {
                    integrity(&sql);
                    for w in words.iter().chain(&["del", "EPS", "\"alpha beta\""]) {
                        let op = search_op(&[&r], w, 100, None);
                        let (a, b) = (sql.search(&op).unwrap(), mem.search(&op).unwrap());
                        assert_eq!(
                            a.iter().map(|h| &h.message).collect::<Vec<_>>(),
                            b.iter().map(|h| &h.message).collect::<Vec<_>>(),
                            "seed {seed} step {step} {w}"
                        );
                        for h in &a {
                            assert!(live.contains(&h.message.seq));
                            assert!(!h.marks.is_empty(), "{h:?}");
                        }
                    }
                }
            }
            integrity(&sql);
            assert_eq!(
                sql.history(&r, page(None, None, 1000)).unwrap(),
                mem.history(&r, page(None, None, 1000)).unwrap()
            );
        }
    }

    /// Messages are indexed in batches, not by their commit; a search
    /// indexes what waits first, so it never misses one; changes to a
    /// message not indexed yet need nothing; a crash leaves the rest for
    /// the next start.
    #[test]
    fn messages_are_indexed_in_batches_and_never_missed() {
        let db = TempDb::new("index-batches");
        let r = room("lobby");
        let mut s = open(&db, "id");
        let texts = [
            "one apple",
            "two pears",
            "three plums",
            "four figs",
            "five limes",
        ];
        let msgs: Vec<_> = (1..=5)
            .map(|i| said(&r, i, "ann", texts[i as usize - 1]))
            .collect();
        s.append(&msgs).unwrap();
        assert_eq!(s.unindexed(), 5);
        assert_eq!(s.index_pending(2).unwrap(), 2);
        assert_eq!(s.unindexed(), 3);
        // An edit of an indexed message and of one not indexed, a delete of
        // each, then what is left indexed by a search.
        s.commit(
            &[],
            &[
                amend(&r, 6, 1, "ann", edit("one banana")),
                amend(&r, 7, 4, "ann", edit("four datelines")),
                amend(&r, 8, 2, "ann", delete("ann")),
                amend(&r, 9, 5, "ann", delete("ann")),
            ],
            &[],
        )
        .unwrap();
        integrity(&s);
        // The words prefix searches spell out follow the edit and delete
        // of indexed messages at once, the others when they are indexed.
        let has = |s: &SqliteStore, w: &str| -> bool {
            s.conn
                .query_row(
                    "SELECT count(*) FROM search_words WHERE word = ?1",
                    [w],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
                == 1
        };
        assert!(has(&s, "banana") && has(&s, "one"));
        assert!(!has(&s, "apple") && !has(&s, "pears"));
        assert!(!has(&s, "datelines") && !has(&s, "figs"), "not indexed yet");
        assert_eq!(found_in(&mut s, &r, "banana"), [1]);
        assert_eq!(s.unindexed(), 0, "the search indexed what waited");
        integrity(&s);
        assert_eq!(found_in(&mut s, &r, "datelines"), [4]);
        assert!(has(&s, "datelines") && !has(&s, "figs") && !has(&s, "limes"));
        assert_eq!(found_in(&mut s, &r, "datel"), [4], "a prefix spelled out");
        for gone in ["apple", "pears", "figs", "limes"] {
            assert_eq!(found_in(&mut s, &r, gone), Vec::<u64>::new(), "{gone}");
        }
        // A batch of deleted messages puts nothing in and still moves on:
        // a search after it finds what follows.
        let many: Vec<_> = (11..=20).map(|i| said(&r, i, "ann", "gone soon")).collect();
        s.append(&many).unwrap();
        let dels: Vec<_> = (11..=20)
            .map(|t| amend(&r, t + 10, t, "ann", delete("ann")))
            .collect();
        s.commit(&[said(&r, 31, "ann", "after them")], &dels, &[])
            .unwrap();
        assert_eq!(s.index_pending(3).unwrap(), 0, "three deleted ones");
        assert_eq!(found_in(&mut s, &r, "after"), [31]);
        assert_eq!(s.unindexed(), 0);
        integrity(&s);
        // Stored, not indexed, then a crash: the next start finds them.
        s.append(&[said(&r, 32, "ann", "six kiwis")]).unwrap();
        std::mem::forget(s);
        let mut s = open(&db, "other");
        assert_eq!(s.unindexed(), 1);
        assert_eq!(found_in(&mut s, &r, "kiwis"), [32]);
        integrity(&s);
    }

    #[test]
    fn case_and_accents_are_ignored() {
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        s.append(&[
            said(&r, 1, "a", "un café crème"),
            said(&r, 2, "a", "CAFE SOCIETY"),
            said(&r, 3, "a", "Ångström über naïve"),
        ])
        .unwrap();
        for q in ["cafe", "CAFÉ", "Café", "cafÉ"] {
            assert_eq!(found_in(&mut s, &r, q), [2, 1], "{q}");
        }
        assert_eq!(found_in(&mut s, &r, "angstrom UBER naive"), [3]);
        assert_eq!(found_in(&mut s, &r, "creme"), [1]);
        let hit = &s.search(&search_op(&[&r], "cafe", 5, None)).unwrap()[1];
        assert_eq!(
            (hit.snippet.as_str(), hit.marks.as_slice()),
            ("un café crème", &[(3, 7)][..])
        );
    }

    /// The MATCH expression quotes every term; terms without a letter or
    /// digit go; the last word is a prefix, from two letters on.
    #[test]
    fn the_match_expression_is_quoted_text() {
        let e = |q: &str| fts_expression(&Query::parse(q), None);
        assert_eq!(e("deploy fri").as_deref(), Some("\"deploy\" AND \"fri\" *"));
        assert_eq!(e("deploy f").as_deref(), Some("\"deploy\" AND \"f\""));
        assert_eq!(e("é!").as_deref(), Some("\"é!\""));
        assert_eq!(
            e("NEAR(a b) \"x \" OR").as_deref(),
            Some("\"NEAR(a\" AND \"b)\" AND \"OR\" * AND \"x\"")
        );
        assert_eq!(e("- : 🎉 \"\" *"), None);
        assert_eq!(e("from:bob"), None);
        let q = Query {
            words: vec!["a\"b".into(), "c\u{0}d".into()],
            phrases: vec![],
            from: None,
        };
        assert_eq!(
            fts_expression(&q, None).as_deref(),
            Some("\"a\"\"b\" AND \"c d\" *")
        );
        // A last word spelled out into the index's words, or into none.
        let two = ["deploy".to_string(), "deployed".to_string()];
        assert_eq!(
            fts_expression(&Query::parse("on deploy"), Some(&two)).as_deref(),
            Some("\"on\" AND (\"deploy\" OR \"deployed\")")
        );
        assert_eq!(
            fts_expression(&Query::parse("on deploy"), Some(&[])).as_deref(),
            Some("\"on\" AND \"deploy\"")
        );
    }

    /// No query is an error: FTS5 syntax, SQL quoting, odd characters and
    /// sizes all go through the real search as text.
    #[test]
    fn no_query_is_a_syntax_error() {
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        s.append(&[
            said(&r, 1, "alice", "a b NEAR(a b) AND OR NOT text with x and y"),
            said(&r, 2, "bob", "it's a \"quoted\" back\\slash 🎉 party"),
        ])
        .unwrap();
        let long = "x".repeat(10_000);
        let many = "a ".repeat(5_000);
        let hostile = [
            "\"",
            "\"\"",
            "*",
            "NEAR(",
            "NEAR(a b)",
            "NEAR(a b, 2)",
            "-",
            ":",
            "a:b",
            "text:a",
            "AND",
            "OR NOT",
            "a OR",
            "NOT a",
            "^x",
            "(",
            ")",
            "()",
            "{a}",
            "{text}: a",
            "a*",
            "*a",
            "a +",
            "+",
            "'",
            "''",
            "';DROP TABLE messages;--",
            "\\",
            "\\\"",
            "🎉",
            "🎉 party",
            "\u{1}\u{2}\u{7f}",
            "a\u{0}b",
            "\u{0}",
            "from:",
            "from:\"",
            "from:a'b",
            "\"unclosed",
            "a \"b c",
            "\"a\" \"b\"",
            "a\"b\"c",
            "éèà",
            "\u{301}",
            "a\u{301}",
            "\u{e000}",
            "NEAR/2",
            "a - b",
            "col:",
            "\t\n",
            "   ",
            "%",
            "_",
            "?1",
            "$x",
            "@a",
            "#",
            "[a]",
            "a;b",
            "x\u{fffd}y",
        ];
        for q in hostile
            .iter()
            .copied()
            .chain([long.as_str(), many.as_str()])
        {
            for rooms in [vec![&r], vec![&r, &r]] {
                for before in [None, Some(2)] {
                    let op = search_op(&rooms, q, 20, before);
                    if let Err(e) = s.search(&op) {
                        panic!("{q:?}: {e}");
                    }
                }
            }
        }
        // They are text: each finds what its words say.
        assert_eq!(found_in(&mut s, &r, "NEAR(a b)"), [1]);
        assert_eq!(found_in(&mut s, &r, "OR NOT"), [1]);
        assert_eq!(found_in(&mut s, &r, "it's"), [2]);
        assert_eq!(found_in(&mut s, &r, "back\\slash"), [2]);
        assert_eq!(found_in(&mut s, &r, "\"quoted\" 🎉"), [2]);
        // The store is unharmed.
        integrity(&s);
        assert_eq!(s.last_seq(&r).unwrap(), 2);
    }

    #[test]
    fn a_deleted_image_is_gone_from_the_file() {
        let db = TempDb::new("image-delete");
        let r = room("lobby");
        let mut s = open(&db, "id");
        let mut pic = (*said(&r, 1, "alice", "cat")).clone();
        pic.image = Some(crate::hub::event::ImageRef {
            id: "img1".into(),
            mime: "image/png",
            size: 3,
        });
        s.put_image("img1", "image/png", b"png").unwrap();
        s.append(&[Rc::new(pic)]).unwrap();
        s.commit(&[], &[amend(&r, 2, 1, "alice", delete("alice"))], &[])
            .unwrap();
        drop(s);
        let c = Connection::open(db.path()).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM images", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let (text, id): (String, Option<String>) = c
            .query_row("SELECT text, image_id FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((text.as_str(), id), ("", None));
    }

    /// The exact v2 schema, as a natter with accounts made it.
    const SCHEMA_2: &str = include_str!("../schema-2.sql");

    /// A version 2 database: v1's messages (see `make_v1`) and one with an
    /// account.
    fn make_v2(db: &TempDb) {
        make_v1(db);
        let c = Connection::open(db.path()).unwrap();
        c.execute_batch(&format!(
            "BEGIN; {SCHEMA_2} PRAGMA user_version = 2; COMMIT;"
        ))
        .unwrap();
        c.execute_batch(
            "INSERT INTO messages VALUES ('lobby', 4, 3500, 'Dave', 'café talk', 0, NULL, NULL, NULL, 'dave');",
        )
        .unwrap();
    }

    fn migrated_and_searchable(db: &TempDb, with_v2: bool) {
        let (lobby, rust) = (room("lobby"), room("rust"));
        let mut s = SqliteStore::open(db.path(), || panic!("the id is kept")).unwrap();
        let c = Connection::open(db.path()).unwrap();
        assert_eq!(user_version(&c).unwrap(), SCHEMA_VERSION as i64);
        integrity(&s);
        assert_eq!(found_in(&mut s, &lobby, "hello"), [1]);
        assert_eq!(found_in(&mut s, &lobby, "wav"), [2]);
        assert_eq!(found_in(&mut s, &rust, "crab"), [1]);
        assert_eq!(found_in(&mut s, &lobby, "from:ALICE"), [3, 1]);
        if with_v2 {
            assert_eq!(found_in(&mut s, &lobby, "cafe"), [4]);
        }
        // Old messages have no author, are not deleted, and read as before.
        let m = s.history(&lobby, page(None, None, 1)).unwrap();
        assert!(m[0].author.is_empty() && !m[0].deleted && m[0].reactions.is_empty());
        // Ids were given in time order: newest first across rooms.
        let both = s
            .search(&search_op(&[&lobby, &rust], "from:alice", 10, None))
            .unwrap();
        assert_eq!(crate::store::contract::hits_seqs(&both), [3, 1]);
        // New messages go after them, and changes work on old ones.
        let last = s.last_seq(&lobby).unwrap();
        s.commit(
            &[said(&lobby, last + 1, "eve", "hello again")],
            &[amend(&lobby, last + 2, 1, "alice", edit("goodbye"))],
            &[],
        )
        .unwrap();
        assert_eq!(found_in(&mut s, &lobby, "hello"), [last + 1]);
        assert_eq!(found_in(&mut s, &lobby, "goodbye"), [1]);
        assert_eq!(s.last_seq(&lobby).unwrap(), last + 2);
        integrity(&s);
    }

    #[test]
    fn a_version_1_database_is_indexed_on_migration() {
        let db = TempDb::new("v1-search");
        make_v1(&db);
        migrated_and_searchable(&db, false);
    }

    #[test]
    fn a_version_2_database_is_indexed_on_migration() {
        let db = TempDb::new("v2-search");
        make_v2(&db);
        migrated_and_searchable(&db, true);
        // The same schema as a fresh database's.
        let fresh = TempDb::new("v2-fresh");
        drop(open(&fresh, "id"));
        assert_eq!(schema_of(fresh.path()), schema_of(db.path()));
    }

    /// A database at version 3 (made by a build before `search_words`,
    /// with messages indexed and some waiting to be): the words of what is
    /// indexed are filled in, the rest follow with their batch, and the
    /// schema is a fresh database's.
    #[test]
    fn a_version_3_database_gets_its_search_words() {
        const SCHEMA_3: &str = include_str!("../schema-3.sql");
        let db = TempDb::new("v3-words");
        make_v2(&db);
        let c = Connection::open(db.path()).unwrap();
        c.execute_batch(&format!(
            "BEGIN; {SCHEMA_3} PRAGMA user_version = 3; COMMIT;"
        ))
        .unwrap();
        // Stored by the version-3 build after the migration, not indexed.
        c.execute_batch(
            "INSERT INTO messages (room, seq, ts, sender, text, action, author, fts_id) \
             VALUES ('ops', 1, 5000, 'eve', 'deployment tomorrow', 0, 'g:1', \
                     (SELECT max(fts_id) + 1 FROM messages));",
        )
        .unwrap();
        drop(c);
        let mut s = SqliteStore::open(db.path(), || panic!("the id is kept")).unwrap();
        let ops = room("ops");
        let words = |s: &SqliteStore| -> Vec<String> {
            let mut st = s
                .conn
                .prepare("SELECT word FROM search_words ORDER BY word")
                .unwrap();
            let rows = st.query_map([], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert!(words(&s).contains(&"waves".to_string()));
        assert!(
            !words(&s).contains(&"deployment".to_string()),
            "not indexed yet"
        );
        assert_eq!(found_in(&mut s, &ops, "deplo"), [1], "a prefix spelled out");
        assert!(words(&s).contains(&"deployment".to_string()));
        integrity(&s);
        migrated_and_searchable(&db, true);
        let fresh = TempDb::new("v3-fresh");
        drop(open(&fresh, "id"));
        assert_eq!(schema_of(fresh.path()), schema_of(db.path()));
    }

    /// A search walks the index newest first and joins each hit by its
    /// id: no scan of `messages`, no sort.
    #[test]
    fn a_search_walks_the_index_backwards() {
        let r = room("lobby");
        let mut s = SqliteStore::open(MEMORY, || "t".into()).unwrap();
        s.append(&[said(&r, 1, "a", "x")]).unwrap();
        s.search(&search_op(&[&r], "x", 5, None)).unwrap();
        // The statement as search_index builds it for one room.
        let q = "EXPLAIN QUERY PLAN SELECT m.seq FROM messages_fts CROSS JOIN messages m \
             ON m.fts_id = messages_fts.rowid WHERE messages_fts MATCH 'x' AND m.seq < 9 \
             AND m.ts < 9 AND (NULL IS NULL OR lower(m.sender) = NULL) AND m.room IN ('lobby') \
             ORDER BY messages_fts.rowid DESC LIMIT 5";
        let mut stmt = s.conn.prepare(q).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("VIRTUAL TABLE INDEX"), "{plan}");
        assert!(plan.contains("messages_by_fts_id"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }
}
