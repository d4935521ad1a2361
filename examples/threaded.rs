//! The classic thread-per-client chat server: the baseline a course starts
//! from, and what natter's single event loop is compared against
//! (docs/COMPARISON.md, `make compare-threads`).
//!
//!     cargo run --release --example threaded -- --listen 127.0.0.1:7879
//!
//! It speaks the basic commands of natter's line protocol: a welcome line
//! with a generated nick, the automatic join of `#lobby`
//! (`*** you joined #lobby (N here: ...)`), plain text said to the room as
//! `[HH:MM:SS] #lobby <nick> text` (not echoed to the sender), `/nick NAME`,
//! `/quit [REASON]` (`*** bye`), and the room's `-->`, `<--` and `---` lines.
//! No other rooms, no history, no flood control: a baseline, not a product.
//!
//! How it works, and it is all you need to know to write one:
//!
//! - `accept` in a loop; every connection gets its own thread, which blocks
//!   in `read` until its client says something;
//! - the room is a `Vec` of clients (nick and a clone of the socket for
//!   writing) behind one `Mutex`;
//! - to say something, a thread takes the lock and `write_all`s the line to
//!   every other member, one after the other, **while holding the lock**.
//!   Every write to any socket happens under that lock, which is also what
//!   keeps two threads from interleaving their bytes on one socket.
//!
//! The lesson is in that last point. `write_all` on a blocking socket
//! returns when the kernel has taken every byte. A client that stops reading
//! (a laptop lid closed, a phone in a tunnel, a bug) stops taking: its
//! receive window fills, then our send buffer, and the next `write_all` to
//! it blocks: for many minutes if the peer vanished (until TCP's
//! retransmissions give up), for ever if it is alive and just not reading
//! (it still acknowledges TCP's window probes). The thread that blocks
//! holds the lock, so every other thread that wants to say anything, or to
//! join, or to leave, waits for the lock: one client that stops reading
//! stalls the whole room (docs/COMPARISON.md: within 4 s, deliveries to
//! the 99 others drop to zero and stay there). Releasing the lock per write
//! would not save the sender's own thread, and copying the list out of the
//! lock first only moves the stall around; the fixes are the ones natter
//! makes: nonblocking sockets, an output queue per client with a bound, and
//! dropping the client that passes it (`--max-outbound`).
//!
//! The other costs show at scale, and `make compare-threads` measures them:
//! a thread per client (its stack, its kernel task, its buffered reader),
//! a context switch whenever a blocked thread wakes, contention on the one
//! lock, and a `write` system call per recipient per line.
//!
//! `serve` can be stopped (tests run it in-process): set the flag, then
//! connect once to wake the blocked `accept`. Stopping shuts every client
//! socket down so each thread's `read` returns, then joins them all; it too
//! takes the lock, so it too waits behind a client that stopped reading.

#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest input line in bytes, the line ending not counted (`--max-line`).
const MAX_LINE: usize = 4096;
/// Longest message text in bytes (`--max-message`).
const MAX_MESSAGE: usize = 4000;
const ROOM: &str = "lobby";

const ADJECTIVES: [&str; 16] = [
    "quiet", "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively",
    "merry", "nimble", "proud", "silly", "witty", "zesty",
];
const ANIMALS: [&str; 16] = [
    "heron", "otter", "badger", "falcon", "lynx", "panda", "koala", "walrus", "marten", "gecko",
    "bison", "crane", "dingo", "ferret", "gibbon", "hare",
];

/// A member of the room: what other threads need to write to it.
struct Client {
    id: u64,
    nick: String,
    /// A clone of the client's socket: its own thread reads the original.
    stream: TcpStream,
}

/// Everything the threads share.
struct Room {
    /// The lock every write happens under.
    clients: Mutex<Vec<Client>>,
    /// Generated nicks are numbered from here.
    next_nick: Mutex<u64>,
    stop: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked while holding the lock left the list usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Accepts until `stop` is set (and a connection wakes `accept`), one
/// thread per client; then closes every client and waits for the threads.
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    let room = Arc::new(Room {
        clients: Mutex::new(Vec::new()),
        next_nick: Mutex::new(10),
        stop: Arc::clone(&stop),
    });
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break; // this was the wake-up connection
        }
        let stream = match conn {
            Ok(stream) => stream,
            Err(e) => {
                // EMFILE and friends: the connection waits in the backlog;
                // do not spin on it.
                eprintln!("threaded: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let room = Arc::clone(&room);
        let spawned = thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || client(&room, id, stream));
        match spawned {
            Ok(handle) => threads.push(handle),
            // Out of threads or memory: the stream was dropped, so closed.
            Err(e) => eprintln!("threaded: cannot start a thread: {e}"),
        }
        threads.retain(|t| !t.is_finished());
    }
    for c in lock(&room.clients).iter() {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// One client's thread, from welcome to goodbye.
fn client(room: &Room, id: u64, stream: TcpStream) {
    // Lines are small and each should leave at once, as natter's do: no
    // Nagle delay waiting to coalesce them.
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    {
        let mut clients = lock(&room.clients);
        // Checked under the lock that `serve` takes to shut everyone down:
        // either it sees this client in the list, or this client sees the flag.
        if room.stop.load(Ordering::SeqCst) {
            return;
        }
        let nick = generated_nick(room, &clients);
        clients.push(Client {
            id,
            nick: nick.clone(),
            stream: writer,
        });
        let mut names: Vec<&str> = clients.iter().map(|c| c.nick.as_str()).collect();
        names.sort_by_cached_key(|n| (n.to_ascii_lowercase(), n.to_string()));
        let hello = format!(
            "*** welcome to threaded, you are {nick}; /nick NAME and /quit work here\n\
             *** you joined #{ROOM} ({} here: {})\n",
            names.len(),
            names.join(", ")
        );
        send_to(&mut clients, id, &hello);
        let joined = format!("{} #{ROOM} --> {nick} joined\n", clock());
        broadcast(&mut clients, id, &joined);
    }
    let reason = session(room, id, stream);
    let mut clients = lock(&room.clients);
    if let Some(i) = clients.iter().position(|c| c.id == id) {
        let gone = clients.remove(i);
        let _ = gone.stream.shutdown(Shutdown::Both);
        let left = format!("{} #{ROOM} <-- {} left ({reason})\n", clock(), gone.nick);
        broadcast(&mut clients, id, &left);
    }
}

/// Reads and handles lines until the client quits or goes; returns the
/// reason the room is told.
fn session(room: &Room, id: u64, stream: TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        // At most one line, and at most MAX_LINE bytes plus `\r\n` of it.
        let limit = MAX_LINE as u64 + 2;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return "disconnected".into(),
            Ok(n) if !line.ends_with(b"\n") => {
                if (n as u64) < limit {
                    return "disconnected".into(); // EOF in the middle of a line
                }
                if !skip_line(&mut reader) {
                    return "disconnected".into();
                }
                let error = format!("!!! too_long: lines are at most {MAX_LINE} bytes\n");
                send_to(&mut lock(&room.clients), id, &error);
                continue;
            }
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n').trim_end_matches('\r');
        let text: String = text
            .chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    '\u{FFFD}'
                } else {
                    c
                }
            })
            .collect();
        if let Some(reason) = handle(room, id, &text) {
            return reason;
        }
    }
}

/// Discards the rest of an over-long line; false at EOF or on an error.
fn skip_line(reader: &mut BufReader<TcpStream>) -> bool {
    loop {
        let (found, used) = match reader.fill_buf() {
            Ok([]) | Err(_) => return false,
            Ok(buf) => match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            },
        };
        reader.consume(used);
        if found {
            return true;
        }
    }
}

/// One input line; `Some(reason)` when the client is leaving.
fn handle(room: &Room, id: u64, text: &str) -> Option<String> {
    let mut clients = lock(&room.clients);
    let said = match text.strip_prefix('/') {
        _ if text.is_empty() => return None,
        None => text,
        Some(rest) if rest.starts_with('/') => rest, // `//text` says `/text`
        Some(rest) => {
            let (command, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            let arg = arg.trim();
            match command.to_ascii_lowercase().as_str() {
                "nick" => rename(&mut clients, id, arg),
                "quit" => {
                    send_to(&mut clients, id, "*** bye\n");
                    return Some(if arg.is_empty() {
                        "quit".into()
                    } else {
                        format!("quit: {arg}")
                    });
                }
                _ => {
                    let error = format!(
                        "!!! unknown_command: /{command} (this server knows /nick and /quit)\n"
                    );
                    send_to(&mut clients, id, &error);
                }
            }
            return None;
        }
    };
    if said.len() > MAX_MESSAGE {
        let error = format!("!!! too_long: messages are at most {MAX_MESSAGE} bytes\n");
        send_to(&mut clients, id, &error);
        return None;
    }
    let nick = nick_of(&clients, id);
    let line = format!("{} #{ROOM} <{nick}> {said}\n", clock());
    broadcast(&mut clients, id, &line);
    None
}

/// `/nick NAME`: 1-24 of `A-Z a-z 0-9 _ -`, a letter first, unique
/// case-insensitively.
fn rename(clients: &mut [Client], id: u64, new: &str) {
    let valid = (1..=24).contains(&new.len())
        && new.starts_with(|c: char| c.is_ascii_alphabetic())
        && new
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        let error = "!!! nick_invalid: a nick is 1-24 letters, digits, _ or -, \
                     starting with a letter\n";
        send_to(clients, id, error);
        return;
    }
    if clients
        .iter()
        .any(|c| c.id != id && c.nick.eq_ignore_ascii_case(new))
    {
        send_to(clients, id, &format!("!!! nick_taken: {new} is taken\n"));
        return;
    }
    let old = nick_of(clients, id);
    if let Some(me) = clients.iter_mut().find(|c| c.id == id) {
        me.nick = new.to_string();
    }
    send_to(clients, id, &format!("*** you are now known as {new}\n"));
    let changed = format!("{} #{ROOM} --- {old} is now known as {new}\n", clock());
    broadcast(clients, id, &changed);
}

fn nick_of(clients: &[Client], id: u64) -> String {
    clients
        .iter()
        .find(|c| c.id == id)
        .map_or_else(String::new, |c| c.nick.clone())
}

/// `quiet-heron-42`, numbered so that it is free.
fn generated_nick(room: &Room, clients: &[Client]) -> String {
    let mut next = lock(&room.next_nick);
    loop {
        let n = *next;
        *next += 1;
        let nick = format!(
            "{}-{}-{n}",
            ADJECTIVES[(n % 16) as usize],
            ANIMALS[(n / 16 % 16) as usize]
        );
        if !clients.iter().any(|c| c.nick.eq_ignore_ascii_case(&nick)) {
            return nick;
        }
    }
}

/// Writes `text` to one client. A write error means the client is going;
/// its own thread notices when its `read` fails, and cleans up.
fn send_to(clients: &mut [Client], id: u64, text: &str) {
    if let Some(c) = clients.iter_mut().find(|c| c.id == id) {
        let _ = c.stream.write_all(text.as_bytes());
    }
}

/// Writes `text` to every member but `except`, one blocking `write_all` after
/// the other, with the lock held: THE line that a stalled reader stalls.
fn broadcast(clients: &mut [Client], except: u64, text: &str) {
    for c in clients.iter_mut().filter(|c| c.id != except) {
        let _ = c.stream.write_all(text.as_bytes());
    }
}

/// `[HH:MM:SS]`, UTC.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("[{:02}:{:02}:{:02}]", day / 3600, day % 3600 / 60, day % 60)
}

fn main() {
    let mut addr = "127.0.0.1:7879".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(a)) => addr = a,
            _ => {
                eprintln!("usage: threaded [--listen ADDR]");
                std::process::exit(2);
            }
        }
    }
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("threaded: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("threaded listening on {a}"),
        Err(e) => {
            eprintln!("threaded: {e}");
            std::process::exit(1);
        }
    }
    let _ = io::stdout().flush();
    if let Err(e) = serve(listener, Arc::new(AtomicBool::new(false))) {
        eprintln!("threaded: {e}");
        std::process::exit(1);
    }
}
