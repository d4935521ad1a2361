//! `natter accounts add|passwd|del|list`: the operator manages accounts in
//! the `--db` file from the shell (PROTOCOL-2 section 1, `--registration
//! closed`).
//!
//! Each command opens the same SQLite file as the server, which may be
//! running meanwhile (WAL mode lets both in; this side waits up to
//! [`BUSY_WAIT`] for the server's commits), and writes through
//! [`SqliteStore`] with the same [`Change`]s the server commits. The server
//! notices the commit (`Store::changed_elsewhere`) and reads accounts and
//! tokens again, so a deleted account or a changed password logs its
//! connections out of future logins there too.
//!
//! Passwords are read from standard input (its first line), never from the
//! command line, where `ps` and the shell's history would show them.

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::AccountsCmd;
use crate::hub::names::Nick;
use crate::hub::port::{AccountRecord, Change, State};
use crate::password;
use crate::store::sqlite::{SqliteStore, MEMORY};
use crate::store::Store;

/// How long a command waits for the database when the server is writing.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Where a command reads and writes.
pub struct Io<'a> {
    /// Its first line is the password, when one is needed.
    pub input: &'a mut dyn BufRead,
    /// Gets the listing (standard output).
    pub out: &'a mut dyn Write,
    /// Gets prompts and confirmations (standard error).
    pub note: &'a mut dyn Write,
    /// `input` is a terminal: say what is wanted before reading it.
    pub prompt: bool,
}

/// Runs one `natter accounts` command on the database at `db`. `Err` holds
/// a message for the operator (the caller prints it and exits 1); nothing
/// was changed then.
pub fn run(db: &str, cmd: &AccountsCmd, io: &mut Io<'_>) -> Result<(), String> {
    run_at(&Place { db, redis: None }, cmd, io)
}

/// Where the accounts are: the `--db` file, or with `--redis` the Redis
/// the servers share (PROTOCOL-2 section 6).
pub struct Place<'a> {
    /// `--db`.
    pub db: &'a str,
    /// `--redis`, if given: the accounts are Redis's, not the file's.
    pub redis: Option<&'a str>,
}

/// Runs one `natter accounts` command on the accounts at `place`.
pub fn run_at(place: &Place<'_>, cmd: &AccountsCmd, io: &mut Io<'_>) -> Result<(), String> {
    if place.redis.is_none() && place.db == MEMORY {
        return Err(format!(
            "--db {MEMORY} keeps nothing: name the server's database file"
        ));
    }
    match cmd {
        AccountsCmd::Add { name } => add(place, name, io),
        AccountsCmd::Passwd { name } => passwd(place, name, io),
        AccountsCmd::Del { name } => del(place, name, io.note),
        AccountsCmd::List => list(place, io.out, io.note),
    }
}

fn add(db: &Place<'_>, name: &str, io: &mut Io<'_>) -> Result<(), String> {
    let nick = Nick::parse(name)
        .map_err(|e| format!("{name:?} is not a valid account name: {}", e.message))?;
    // All the input is checked before the file is made or touched.
    let pw = read_password(io, &format!("password for {nick}"))?;
    let mut store = open(db, true)?;
    if let Some(a) = find(&load(&mut store)?, &nick) {
        return Err(format!("account {} already exists", a.name));
    }
    let phc = hash(&pw)?;
    // Hashing takes a while; the server may have registered it meanwhile.
    if let Some(a) = find(&load(&mut store)?, &nick) {
        return Err(format!("account {} already exists", a.name));
    }
    let record = AccountRecord {
        name: nick.as_str().to_owned(),
        phc,
        created: now_ms(),
    };
    commit(&mut store, &[Change::AccountPut(record)])?;
    say(io.note, &format!("account {nick} added"))
}

fn passwd(db: &Place<'_>, name: &str, io: &mut Io<'_>) -> Result<(), String> {
    let nick = Nick::parse(name).map_err(|_| no_account(name))?;
    let mut store = open(db, false)?;
    if find(&load(&mut store)?, &nick).is_none() {
        return Err(no_account(name));
    }
    let pw = read_password(io, &format!("new password for {nick}"))?;
    let phc = hash(&pw)?;
    // Looked up again after hashing: deleted meanwhile, it stays deleted.
    let state = load(&mut store)?;
    let Some(old) = find(&state, &nick) else {
        return Err(no_account(name));
    };
    let logins = logins_of(&state, &old.name);
    let record = AccountRecord { phc, ..old.clone() };
    let account = record.name.clone();
    commit(
        &mut store,
        &[
            Change::AccountPut(record),
            Change::TokensDel {
                account: account.clone(),
            },
        ],
    )?;
    say(
        io.note,
        &format!("password of {account} changed; {}", logged_out(logins)),
    )
}

fn del(db: &Place<'_>, name: &str, note: &mut dyn Write) -> Result<(), String> {
    let nick = Nick::parse(name).map_err(|_| no_account(name))?;
    let mut store = open(db, false)?;
    let state = load(&mut store)?;
    let Some(old) = find(&state, &nick) else {
        return Err(no_account(name));
    };
    let logins = logins_of(&state, &old.name);
    let account = old.name.clone();
    commit(
        &mut store,
        &[Change::AccountDel {
            name: account.clone(),
        }],
    )?;
    say(
        note,
        &format!("account {account} deleted; {}", logged_out(logins)),
    )
}

fn list(db: &Place<'_>, out: &mut dyn Write, note: &mut dyn Write) -> Result<(), String> {
    let mut store = open(db, false)?;
    let state = load(&mut store)?;
    if state.accounts.is_empty() {
        return say(note, "no accounts");
    }
    let width = state
        .accounts
        .iter()
        .map(|a| a.name.len())
        .max()
        .unwrap_or(0);
    for a in &state.accounts {
        writeln!(out, "{:<width$}  registered {}", a.name, date(a.created))
            .map_err(|e| format!("writing the list: {e}"))?;
    }
    out.flush().map_err(|e| format!("writing the list: {e}"))
}

/// Where accounts are read and written.
enum Accounts {
    File(SqliteStore),
    Redis(RedisAccounts),
}

/// Opens the store; `create` lets `add` make the file (an operator may add
/// accounts before the server ever ran), the others want it to exist.
fn open(place: &Place<'_>, create: bool) -> Result<Accounts, String> {
    if let Some(url) = place.redis {
        return RedisAccounts::connect(url).map(Accounts::Redis);
    }
    open_file(place.db, create).map(Accounts::File)
}

fn open_file(db: &str, create: bool) -> Result<SqliteStore, String> {
    if !create && !Path::new(db).exists() {
        return Err(format!(
            "{db} does not exist (give the server's database with --db)"
        ));
    }
    SqliteStore::open_with_timeout(
        db,
        || password::random_hex(8).unwrap_or_default(),
        BUSY_WAIT,
    )
    .map_err(|e| e.0)
}

fn load(store: &mut Accounts) -> Result<State, String> {
    match store {
        Accounts::File(s) => s.load_state().map_err(|e| e.to_string()),
        Accounts::Redis(r) => r.load(),
    }
}

fn commit(store: &mut Accounts, changes: &[Change]) -> Result<(), String> {
    match store {
        Accounts::File(s) => s.commit(&[], &[], changes).map_err(|e| e.to_string()),
        Accounts::Redis(r) => r.commit(changes),
    }
}

/// Accounts in the Redis several servers share: the same script the
/// servers run (`changes.lua`, which tells them to read accounts again),
/// over one plain blocking connection (this is a command, not the loop).
struct RedisAccounts {
    stream: std::net::TcpStream,
    decoder: crate::proto::resp::Decoder,
}

impl RedisAccounts {
    fn connect(url: &str) -> Result<RedisAccounts, String> {
        use crate::store::redis::url::RedisUrl;
        let u = RedisUrl::parse(url).map_err(|e| format!("--redis: {e}"))?;
        let stream = std::net::TcpStream::connect((u.host.as_str(), u.port))
            .map_err(|e| format!("Redis at {u}: {e}"))?;
        let _ = stream.set_read_timeout(Some(BUSY_WAIT));
        let _ = stream.set_write_timeout(Some(BUSY_WAIT));
        let mut r = RedisAccounts {
            stream,
            decoder: crate::proto::resp::Decoder::new(Default::default()),
        };
        if let Some(pw) = &u.password {
            match &u.user {
                Some(user) => r.call(&[b"AUTH", user.as_bytes(), pw.as_bytes()])?,
                None => r.call(&[b"AUTH", pw.as_bytes()])?,
            };
        }
        if u.db != 0 {
            r.call(&[b"SELECT", u.db.to_string().as_bytes()])?;
        }
        let script = crate::store::redis::changes::CHANGES;
        r.call(&[b"SCRIPT", b"LOAD", script.as_bytes()])?;
        Ok(r)
    }

    /// Sends one command, reads its reply; a Redis error is an `Err`.
    fn call(&mut self, args: &[&[u8]]) -> Result<crate::proto::resp::Value, String> {
        let mut out = Vec::new();
        crate::proto::resp::encode_command(&mut out, args);
        self.send(&out)
    }

    fn send(&mut self, out: &[u8]) -> Result<crate::proto::resp::Value, String> {
        use crate::proto::resp::Value;
        match self.exchange(out, 1)?.pop() {
            Some(Value::Error(e)) => Err(format!("Redis: {}", String::from_utf8_lossy(&e))),
            Some(v) => Ok(v),
            None => Err("Redis said nothing".into()),
        }
    }

    /// Writes `out`, then reads until `n` replies have come.
    fn exchange(&mut self, out: &[u8], n: usize) -> Result<Vec<crate::proto::resp::Value>, String> {
        self.stream
            .write_all(out)
            .map_err(|e| format!("Redis: {e}"))?;
        let mut replies = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        // The decoder keeps only an unfinished reply between reads.
        while replies.len() < n {
            let got = self
                .stream
                .read(&mut buf)
                .map_err(|e| format!("Redis: {e}"))?;
            if got == 0 {
                return Err("Redis closed the connection".into());
            }
            self.decoder
                .decode(&buf[..got], |v| replies.push(v))
                .map_err(|e| format!("Redis: {e:?}"))?;
        }
        Ok(replies)
    }

    fn load(&mut self) -> Result<State, String> {
        let mut out = Vec::new();
        crate::store::redis::changes::encode_read(&mut out);
        let replies = self.exchange(&out, 4)?;
        if let Some(crate::proto::resp::Value::Error(e)) = replies
            .iter()
            .find(|v| matches!(v, crate::proto::resp::Value::Error(_)))
        {
            return Err(format!("Redis: {}", String::from_utf8_lossy(e)));
        }
        Ok(crate::store::redis::changes::parse_state(&replies))
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), String> {
        let mut out = Vec::new();
        crate::store::redis::changes::encode_changes(&mut out, "natter-accounts", changes);
        self.send(&out).map(|_| ())
    }
}

/// The account `nick` names, whatever its case.
fn find<'a>(state: &'a State, nick: &Nick) -> Option<&'a AccountRecord> {
    let key = nick.key();
    state
        .accounts
        .iter()
        .find(|a| a.name.to_ascii_lowercase() == key)
}

/// Unexpired login tokens of the account.
fn logins_of(state: &State, account: &str) -> usize {
    let now = now_ms();
    state
        .tokens
        .iter()
        .filter(|t| t.account == account && t.expires > now)
        .count()
}

fn logged_out(n: usize) -> String {
    match n {
        0 => "it had no remembered logins".into(),
        1 => "its 1 remembered login is logged out".into(),
        n => format!("its {n} remembered logins are logged out"),
    }
}

fn no_account(name: &str) -> String {
    format!("no account {name}")
}

fn hash(pw: &str) -> Result<String, String> {
    let salt = password::salt().map_err(|e| format!("reading /dev/urandom: {e}"))?;
    password::hash(pw, salt)
}

/// The first line of `input`, without its `\n` or `\r\n`, checked for
/// length. Reads no more than a password's worth, whatever comes.
fn read_password(io: &mut Io<'_>, prompt: &str) -> Result<String, String> {
    if io.prompt {
        // Typed at a terminal it shows as it is typed; say so rather than
        // pretend otherwise.
        let _ = write!(io.note, "{prompt} (shown as you type it): ");
        let _ = io.note.flush();
    }
    let mut line = Vec::new();
    // The longest password, a "\r\n", and one more byte to tell "too long".
    let cap = password::MAX_PASSWORD as u64 + 3;
    (&mut *io.input)
        .take(cap)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading the password from standard input: {e}"))?;
    if line.is_empty() {
        return Err("no password on standard input (give it as the first line)".into());
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    let pw = String::from_utf8(line).map_err(|_| "the password is not valid UTF-8".to_string())?;
    password::check_length(&pw)?;
    Ok(pw)
}

fn say(note: &mut dyn Write, what: &str) -> Result<(), String> {
    // A confirmation that cannot be shown changes nothing that was done.
    let _ = writeln!(note, "natter: {what}");
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
fn date(ms: u64) -> String {
    let days = i64::try_from(ms / 86_400_000).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Year, month and day of a day number since 1970-01-01, proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are in range by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Result<String, String> {
        let mut io = Io {
            input: &mut &input[..],
            out: &mut Vec::new(),
            note: &mut Vec::new(),
            prompt: false,
        };
        read_password(&mut io, "password")
    }

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        assert_eq!(read(b"hunter2hunter2\n").unwrap(), "hunter2hunter2");
        assert_eq!(read(b"hunter2hunter2\r\nmore\n").unwrap(), "hunter2hunter2");
        assert_eq!(read(b"no newline at all").unwrap(), "no newline at all");
        assert_eq!(read(b"  spaces kept  \n").unwrap(), "  spaces kept  ");
        assert!(read(b"").unwrap_err().contains("no password"));
        assert!(read(b"short\n").unwrap_err().contains("at least 8"));
        assert!(read(b"\n").unwrap_err().contains("at least 8"));
        let long = "x".repeat(128);
        assert_eq!(read(format!("{long}\r\n").as_bytes()).unwrap(), long);
        let e = read("y".repeat(100_000).as_bytes()).unwrap_err();
        assert!(e.contains("at most 128"), "{e}");
        assert!(read(b"\xff\xfe12345678\n").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(86_399_999), "1970-01-01");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(1_763_800_000_000), "2025-11-22");
        assert_eq!(date(4_102_444_800_000), "2100-01-01");
    }

    #[test]
    fn memory_is_refused() {
        let mut io = Io {
            input: &mut &b""[..],
            out: &mut Vec::new(),
            note: &mut Vec::new(),
            prompt: false,
        };
        let e = run(MEMORY, &AccountsCmd::List, &mut io).unwrap_err();
        assert!(e.contains("keeps nothing"), "{e}");
    }
}
