//! `natter accounts add|passwd|del|list`, run as the operator runs them: the
//! built binary, the password on standard input, the result read back from
//! the database through the store.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use natter::hub::port::{Change, State, TokenRecord};
use natter::password;
use natter::store::sqlite::SqliteStore;
use natter::store::Store;

/// A database file of this test's own, removed (with `-wal`, `-shm`) on drop.
struct Db(PathBuf);

impl Db {
    fn new(tag: &str) -> Db {
        let p = std::env::temp_dir().join(format!(
            "natter-accounts-cli-{}-{tag}.db",
            std::process::id()
        ));
        let db = Db(p);
        db.remove();
        db
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path()));
        }
    }

    fn state(&self) -> State {
        SqliteStore::open(self.path(), || panic!("the database exists"))
            .expect("open")
            .load_state()
            .expect("load_state")
    }

    fn commit(&self, changes: &[Change]) {
        SqliteStore::open(self.path(), || panic!("the database exists"))
            .expect("open")
            .commit(&[], &[], changes)
            .expect("commit");
    }

    fn phc(&self, name: &str) -> String {
        self.state()
            .accounts
            .into_iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no account {name}"))
            .phc
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.remove();
    }
}

/// What one run of the binary did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `natter ARGS...` with `stdin` as its standard input.
fn natter(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natter");
    let mut input = child.stdin.take().expect("stdin");
    // A command that fails early may not read it all: a broken pipe is fine.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let out = child.wait_with_output().expect("wait");
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !run.ok {
        assert_eq!(out.status.code(), Some(1), "stderr: {}", run.stderr);
    }
    run
}

/// `natter --db DB accounts ARGS...`.
fn accounts(db: &Db, args: &[&str], stdin: &str) -> Run {
    let mut all = vec!["--db", db.path(), "accounts"];
    all.extend_from_slice(args);
    natter(&all, stdin)
}

fn failed(run: &Run, says: &str) {
    assert!(!run.ok, "succeeded; stderr: {}", run.stderr);
    assert!(
        run.stderr.contains(says),
        "stderr lacks {says:?}: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
}

fn names(state: &State) -> Vec<&str> {
    state.accounts.iter().map(|a| a.name.as_str()).collect()
}

/// Today's date, UTC, as the list shows registrations.
fn today() -> String {
    let out = Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .expect("date(1)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn add_list_passwd_and_del() {
    let db = Db::new("flow");
    let add = accounts(&db, &["add", "Alice"], "correct horse battery\n");
    assert!(add.ok, "stderr: {}", add.stderr);
    assert!(add.stderr.contains("account Alice added"), "{}", add.stderr);
    let state = db.state();
    assert_eq!(names(&state), ["Alice"]);
    let phc = db.phc("Alice");
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    // The line ending is not part of the password.
    assert!(password::verify("correct horse battery", &phc));
    assert!(!password::verify("correct horse battery\n", &phc));

    // --db after the subcommand works too; \r\n is a line ending as well.
    let add = natter(
        &["accounts", "add", "bob", "--db", db.path()],
        "hunter2hunter2\r\nignored second line\n",
    );
    assert!(add.ok, "stderr: {}", add.stderr);
    assert!(password::verify("hunter2hunter2", &db.phc("bob")));

    // Taken whatever the case; nothing changes.
    failed(
        &accounts(&db, &["add", "ALICE"], "another password\n"),
        "account Alice already exists",
    );
    assert_eq!(db.phc("Alice"), phc);
    // Not a nick.
    failed(
        &accounts(&db, &["add", "9lives"], "long enough\n"),
        "not a valid account name",
    );
    failed(
        &accounts(&db, &["add", "has space"], "long enough\n"),
        "not a valid account name",
    );
    // Passwords of 8 to 128 bytes.
    failed(&accounts(&db, &["add", "carol"], "short\n"), "at least 8");
    failed(
        &accounts(&db, &["add", "carol"], &format!("{}\n", "x".repeat(129))),
        "at most 128",
    );
    failed(&accounts(&db, &["add", "carol"], ""), "no password");
    assert_eq!(names(&db.state()), ["Alice", "bob"]);

    // Listed by name, whatever the case, with the day registered.
    let add = accounts(&db, &["add", "Carol"], "12345678\n");
    assert!(add.ok, "stderr: {}", add.stderr);
    let list = accounts(&db, &["list"], "");
    assert!(list.ok, "stderr: {}", list.stderr);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", list.stdout);
    for (line, name) in lines.iter().zip(["Alice", "bob  ", "Carol"]) {
        assert_eq!(*line, format!("{name}  registered {}", today()));
    }

    // Logins the server remembered, for Alice and bob.
    let far = u64::MAX >> 2;
    db.commit(&[
        Change::TokenPut(TokenRecord {
            hash: password::token_hash("a1"),
            account: "alice".into(),
            expires: far,
        }),
        Change::TokenPut(TokenRecord {
            hash: password::token_hash("a2"),
            account: "Alice".into(),
            expires: far,
        }),
        Change::TokenPut(TokenRecord {
            hash: password::token_hash("b1"),
            account: "bob".into(),
            expires: far,
        }),
    ]);
    assert_eq!(db.state().tokens.len(), 3);

    // A new password logs every login of the account out, and only those.
    let created = db.state().accounts[0].created;
    let pw = accounts(&db, &["passwd", "alice"], "a new password\n");
    assert!(pw.ok, "stderr: {}", pw.stderr);
    assert!(
        pw.stderr.contains("its 2 remembered logins are logged out"),
        "{}",
        pw.stderr
    );
    let state = db.state();
    let alice = &state.accounts[0];
    assert_eq!((alice.name.as_str(), alice.created), ("Alice", created));
    assert!(password::verify("a new password", &alice.phc));
    assert!(!password::verify("correct horse battery", &alice.phc));
    assert_eq!(state.tokens.len(), 1);
    assert_eq!(state.tokens[0].account, "bob");
    failed(
        &accounts(&db, &["passwd", "dave"], "whatever123\n"),
        "no account dave",
    );
    failed(&accounts(&db, &["passwd", "bob"], "short\n"), "at least 8");
    assert!(password::verify("hunter2hunter2", &db.phc("bob")));

    // Deleting takes the account's logins with it.
    let del = accounts(&db, &["del", "BOB"], "");
    assert!(del.ok, "stderr: {}", del.stderr);
    assert!(del.stderr.contains("account bob deleted"), "{}", del.stderr);
    let state = db.state();
    assert_eq!(names(&state), ["Alice", "Carol"]);
    assert!(state.tokens.is_empty());
    failed(&accounts(&db, &["del", "bob"], ""), "no account bob");
    // And the name is free again.
    let add = accounts(&db, &["add", "bob"], "fresh start\n");
    assert!(add.ok, "stderr: {}", add.stderr);
}

#[test]
fn a_missing_database_is_an_error_except_for_add() {
    let db = Db::new("missing");
    for args in [&["list"][..], &["del", "alice"], &["passwd", "alice"]] {
        failed(&accounts(&db, args, "long enough\n"), "does not exist");
    }
    assert!(!db.0.exists(), "a failed command made the file");
    // Bad input to add makes no file either.
    failed(&accounts(&db, &["add", "alice"], "short\n"), "at least 8");
    assert!(!db.0.exists());
    let add = accounts(&db, &["add", "alice"], "long enough\n");
    assert!(add.ok, "stderr: {}", add.stderr);
    let list = accounts(&db, &["list"], "");
    assert!(
        list.stdout.starts_with("alice  registered "),
        "{}",
        list.stdout
    );
    failed(
        &natter(&["--db", ":memory:", "accounts", "list"], ""),
        "keeps nothing",
    );
    let empty = Db::new("empty");
    drop(SqliteStore::open(empty.path(), || "id".into()).expect("open"));
    let list = accounts(&empty, &["list"], "");
    assert!(list.ok && list.stdout.is_empty(), "{}", list.stdout);
    assert!(list.stderr.contains("no accounts"), "{}", list.stderr);
}

/// The server holds the file open (WAL mode) and commits meanwhile; the
/// command still gets in.
#[test]
fn works_beside_a_running_server() {
    let db = Db::new("running");
    let server = common::Server::start(&["--db", db.path()]);
    let mut c = server.line_client();
    c.send("hello while accounts are made");
    let add = accounts(&db, &["add", "erin"], "long enough\n");
    assert!(add.ok, "stderr: {}", add.stderr);
    c.send("and after");
    let list = accounts(&db, &["list"], "");
    assert!(
        list.stdout.starts_with("erin  registered "),
        "{}",
        list.stdout
    );
    drop(server);
    assert_eq!(names(&db.state()), ["erin"]);
}
