//! A bounded soak test: `make soak`.
//!
//!     cargo run --release --example soak -- --clients 400 --seconds 180
//!
//! It builds `target/release/natter` (or takes `--server PATH`), starts it on
//! `127.0.0.1:0` with a temporary database, and lets `--clients` clients
//! (half line, half WebSocket, all on loopback, one std thread each, a share
//! of them over TLS: below) loose on it for `--seconds`, in `--rooms` rooms
//! plus `lobby`. Each client does a random mix: chat at a modest rate (one
//! action every 0.8-3 s), `/me`, join and leave rooms, change nick, send DMs,
//! ask for history, `/who`, `/rooms` and typing; a few flood past `--rate`
//! (and must be told `rate_limited`), a few stall reading with a small
//! receive buffer while asking for history (some get dropped as slow
//! consumers: fine), some vanish abruptly (a reset through `SO_LINGER 0`, or
//! just a close) and come back (WebSocket clients resume their session and
//! retry their last `cid`), line clients drip lines in pieces (split
//! anywhere, even inside a UTF-8 character) or leave one half-sent, and some
//! send garbage (bad UTF-8, over-long lines, bad JSON, binary frames, junk
//! connections).
//!
//! TLS (`--tls-share`, 0.3 by default: that share of the line clients and of
//! the WebSocket clients, spread over every role; 0 runs the server without
//! TLS): the soak makes a CA and a certificate it signs for `localhost` and
//! 127.0.0.1 (rcgen, in a temporary directory) and starts the server with
//! `--tls-cert`/`--tls-key`. A TLS client begins every connection with a
//! rustls handshake (the `ring` provider, a `RootCertStore` holding only that
//! CA; every fourth TLS client offers TLS 1.2 only; WebSocket clients open
//! `wss://localhost` with ALPN `http/1.1`, line clients check the address
//! 127.0.0.1 and offer no ALPN), then does everything a plain client does
//! through the same code (`Stream`, plain or TLS; socket-level operations go
//! to the socket under the session): chat, bursts (written without blocking:
//! the session takes the plaintext, its records go out as the socket takes
//! them, and the client keeps reading), stalls with a small receive buffer,
//! vanishing (a reset through `SO_LINGER 0`, or a close, half of those after
//! a `close_notify`), resumes, garbage inside the session, slow-consumer
//! drops, edits, deletes, reactions and searches, under every check below. A
//! stream ends with or without the server's `close_notify` (the server takes
//! its clients' ends the same way; both are counted). Some junk connections
//! are TLS junk: a ClientHello cut short then the end of the stream, or then
//! silence (a stalled handshake, held by a thread of its own until the server
//! closes it), or a whole handshake and then a TLS record inside TLS.
//!
//! Messages that live and search (PROTOCOL-2 sections 3 and 4): most
//! clients (not the flooders) now and then (about one action in seven)
//! edit, delete, react or search instead. A WebSocket client edits, or
//! more rarely deletes, one of its recent messages acknowledged in this
//! session (by the seq of the ack; only while it has the nick the message
//! was sent under, so the change comes from the nick the message names),
//! toggles an emoji on a message it received live (or takes back one of
//! its own reactions), and `search`es for the word of a message it sent
//! (in that room, or now and then across its rooms). A line client
//! `/edit`s or `/delete`s its last message in a room (only while no
//! message of its connection can have been refused, so it knows which one
//! that is), `/react NICK EMOJI`s to a nick it heard there, and
//! `/search`es for the word of one of its messages. None of it while a
//! client floods or its burst is out (flood control answers at most one
//! refusal a second: a refused request could go unanswered).
//!
//! Every chat text is `soak ID.GEN #N @NICK KIND:DEST WORD FILLER`, where
//! WORD (`wIDxGENxNq`) is in no other text and the filler (accents, emoji,
//! quotes, tabs and control characters that the server must turn into
//! U+FFFD) is a pure function of `ID.GEN #N`: so a receiver knows exactly
//! what the sender sent, with no shared state. The text of the Eth edit of
//! `#N` is `soak ID.GEN #N=E @NICK KIND:DEST WORD' FILLER'`, with a word
//! (`wIDxGENxNeEq`) and filler of its own: a receiver knows which message
//! an edit stands for and that it is its Eth. Checks:
//!
//! - every line and frame the server sends parses as the protocol says;
//! - every chat message received (live, in a join's replay or a history
//!   page, as a search result, and in the store at the end) is exactly what
//!   its sender sent (or, but live, what it last edited it to, marked as
//!   edited: `edited_ts`, `(edited) `), from that sender's nick, in the
//!   room (or to the nick) it named; a live room message mentions its
//!   sender (its `@NICK`, connected: `mentions`);
//! - per sender connection and room, counters received only go up (no
//!   duplicate, no reordering), and so do the edits of a message seen live;
//!   a WebSocket client sees each room's `seq` go up by exactly one per
//!   entry: messages and edits, deletes and reactions alike (each is an
//!   entry of the room's history with its own seq). Every `joined`,
//!   catch-up and history page agrees with the stream it already has: seqs
//!   strictly ascending; no seq it knows as a change listed as a message,
//!   no message it knows left out (a deleted one is listed as deleted);
//!   the seqs a page skips (between its entries, and after its last up to
//!   where the stream is) are changes (and at the end the store holds no
//!   message at any of them); a catch-up's `edit`, `delete` and
//!   `react` entries are checked and applied like live ones. A history
//!   page or search result shows each message the client is sure of (seen
//!   live, in a join or a page since, with no resume between, or after a
//!   complete catch-up) exactly as the stream made it: deleted or not,
//!   which edit, and who reacted with the WebSocket clients' emoji;
//! - change events (live and in catch-ups): exactly the protocol's fields;
//!   the target a seq before it, never a change, never a message deleted
//!   before; an edit's text an edit of the very message its target is,
//!   from the nick that sent it; a delete by the message's own nick (there
//!   are no ops: never ` by` on a line); a reaction with an emoji someone
//!   used, turned on exactly when the reactor's nick was not on it yet (a
//!   message the client is sure of); every client told the same kind and
//!   target for a seq;
//! - every edit, delete and reaction is answered by its event with the
//!   request's `ref` (a line client by the room's line, or `*** reaction
//!   ... added|removed`), as asked: the text, the target, a reaction on
//!   exactly when the reactor's own was off. None is refused but a
//!   reaction on someone else's message, with `no_such_message` (its
//!   author deleted it meanwhile; then that delete must reach a client
//!   that stays in the room within 10 s, when it was sure the target was
//!   there). An answer lost with its connection leaves the change
//!   uncertain: the message is left alone from then on;
//! - searches are answered (the `q` and `room` asked): results in the room
//!   asked (or in the client's rooms), newest first, never a deleted
//!   message, each holding the word, its `marks` on it in the `snippet`.
//!   A search for the word of the searcher's own message, sent at least
//!   2 s before, finds exactly that message (at its latest edit) while the
//!   message says the word, and nothing once it is deleted or edited to
//!   say something else;
//! - every WebSocket `say`/`dm` is acknowledged with what was sent (on
//!   connections that neither flooded nor were dropped), a retried `cid`
//!   after a resume is not stored twice, and the store holds every
//!   acknowledged message under its seq;
//! - the store at the end (`check_store`, over HTTP): seqs ascending, each
//!   seq between messages a change some WebSocket client was told of (or
//!   within the changes nobody may have been told of: line clients' and
//!   those whose answer was lost), no seq of a change a message, every
//!   change's target a message before it; every text as sent or as its
//!   author last edited it (an edit only where its author's was answered
//!   or lost); every acknowledged message under its seq as acknowledged,
//!   as last edited, or `deleted:true` with nothing else (no text,
//!   reactions or `edited_ts`); as many line messages deleted as their
//!   authors deleted; no text stored twice; and on each message the
//!   WebSocket clients' emoji by exactly the nicks whose reactors were
//!   told they are on (the line clients' `/react` picks its target on the
//!   server: their emoji are told apart and only checked for shape);
//! - resumes keep the nick and rooms; floods get `rate_limited`; no other
//!   error code comes back unprovoked; the server closes nobody it should not;
//! - slow consumers: a client that stalls on purpose (`Slow`) may be dropped
//!   (`!!! slow_consumer: ...` at the start of a line, or close 1008). Each
//!   stall measures how long the client really did not read (its requests
//!   are written for about 1 s, longer on a loaded machine); if it read again
//!   within 1.5 s of its first unread request, which is within the server's
//!   2 s linger of any drop, the stream must hold whole lines or frames up to
//!   the goodbye. A longer stall may end cut off (counted, not a failure).
//!   After a stall the client sends nothing until every answer or the
//!   goodbye has come, so no late request can turn the server's close into a
//!   reset. Every client measures the pauses between its reads; a client
//!   dropped as a slow consumer that did not stall and did not pause reading
//!   for more than 1 s in the 10 s before the goodbye is a reader that kept
//!   reading: FAIL (`readers that kept reading were not dropped`);
//! - bursts: from the end of the warm-up, every `burst_every` (30 s in a 3
//!   minute run) one room (cycling through `lobby` and the `soak` rooms) gets
//!   a burst: a share of the `Plain` clients (about 30, half line, half
//!   WebSocket) join it 3 s before, send nothing else from then (so their
//!   flood-control bucket is full), and at the same instant each writes its
//!   whole flood-control burst (`--burst` 20 messages of about 3,900 bytes)
//!   in ONE write (non-blocking: they keep reading while the rest of it goes
//!   out). Every client in that room 3 s before the burst watches it: it
//!   stays in the room and does nothing special (no stall, vanish, flood or
//!   garbage) until it reports, 3 s after the burst settles (20 s after the
//!   burst in a 3-minute run); if it was not dropped by then, it must have
//!   received every message each sender got in (all 20, or exactly the
//!   acknowledged ones of a WebSocket sender), each sender's in order (the
//!   order check above). No burst may be refused: a sender told
//!   `rate_limited` fails unless its whole burst got through (flood control
//!   goes by when the server reads, so a burst that flow control held back
//!   and the sender's next message can be read in the same moment, and that
//!   next message is refused: counted, not a failure);
//! - TLS: the server closes every TLS junk connection (at once, or a
//!   stalled handshake within `--header-timeout` plus 5 s). At the end,
//!   `/metrics` (over plain HTTP) counts `natter_tls_handshakes_done_total`
//!   at least the TLS connections that heard from the server (it had
//!   finished their handshakes) and at most the handshakes the clients
//!   began, `natter_tls_handshake_failures_total` at least the stalled
//!   handshakes it closed, and `natter_tls_connections` is 0;
//! - the server keeps `Threads: 3` (the loop and the two slow-jobs helpers),
//!   answers `GET /healthz` at the end, and
//!   exits 0 on SIGTERM;
//! - release: once the clients have gone, every connection and room must be
//!   let go within 15 s. A WebSocket session that vanished is held by design
//!   for `--resume-grace` (its rooms stay), so the server runs with
//!   `--resume-grace 20`; a client whose resume failed retries it with the
//!   same token (a browser does too) rather than leave the session behind,
//!   and when a session may still be held (a client saw its connection end
//!   with no close frame, or gave up resuming), the wait is extended to the
//!   grace plus 5 s after the last such moment;
//! - memory: VmRSS is sampled every 2 s. The server remembers each
//!   session's `cid`s, with the message each produced, for 10 minutes
//!   (`hub::session::CID_TTL_MS`): RSS grows for the first 10 minutes of a
//!   long run and then levels off (13 to 46 MiB, then flat, in a 20-minute
//!   run). That is a plateau, not a leak, so two checks:
//!   * slope (judged in runs of 90 s or more): the RSS high-water mark may
//!     grow over the last third of the clients' run by at most twice what
//!     the `cid` logs may have gained then, plus 8 MiB. The soak logs every
//!     `cid` it sends and counts each as its text plus 400 bytes for the 10
//!     minutes the server keeps it. In a 3-minute run every `cid` is still
//!     held at the end, so the allowance follows the `cid` traffic of the
//!     last minute (3 MiB at 400 clients); past 10 minutes the logs stop
//!     growing and the allowance shrinks to the 8 MiB: the last third of a
//!     20-minute run must be flat. A leak of a hundred bytes per delivered message, or
//!     of 10 KiB per connection, shows in the last third of a 3-minute run
//!     (a million deliveries, a thousand connections); one per `cid` hides
//!     in the allowance of a short run: run past 15 minutes (`--seconds
//!     900`);
//!   * overall: after every client has left, end <= 2 * start + 20 MiB +
//!     2 * the most the `cid` logs held, where start is taken after the
//!     warm-up (every client connected and chatting) and end sits near the
//!     peak (malloc keeps freed memory): this catches one big jump (a spike
//!     that malloc keeps), which the slope does not.
//!
//! `--server-arg=ARG` passes more arguments to the server (say
//! `--server-arg=--max-outbound=268435456` to see the checks pass with no
//! slow-consumer drops at all).
//!
//! The last line is `soak: N passed, M failed` (N and M count checks); the
//! exit status is non-zero when anything failed. `tests/soak_smoke.rs`
//! includes this file as a module and calls [`run`] with 20 clients for 8 s
//! (one small burst; 6 of them over TLS: a flooder, a staller, a vandal,
//! two vanishers and a plain client, one line and one WebSocket client on
//! TLS 1.2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::{json, Value};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tungstenite::Message;

// ---------------------------------------------------------------------------
// Configuration and the command line
// ---------------------------------------------------------------------------

/// What one soak run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `natter` binary to start.
    pub server: PathBuf,
    pub clients: usize,
    pub seconds: u64,
    /// Rooms `soak0`.. besides `lobby`.
    pub rooms: usize,
    pub seed: u64,
    /// A progress line every 10 s.
    pub progress: bool,
    /// Rounds of `clients` for `seconds` against the same server: "end" is
    /// measured after each, so a leak shows as growth from wave to wave.
    pub waves: usize,
    /// More arguments for the server (after the soak's own).
    pub server_args: Vec<String>,
    /// The share of line and of WebSocket clients that connect over TLS
    /// (0: none, and the server runs without TLS).
    pub tls_share: f64,
    /// natter processes sharing one chat (more than 1 needs `--redis` in
    /// `server_args`): a client connects to one, and after each
    /// reconnect (a resume too) to the next.
    pub processes: usize,
}

impl Config {
    pub fn new(server: impl Into<PathBuf>, clients: usize, seconds: u64) -> Config {
        Config {
            server: server.into(),
            clients,
            seconds,
            rooms: 8,
            seed: 0,
            progress: false,
            waves: 1,
            server_args: Vec::new(),
            tls_share: DEFAULT_TLS_SHARE,
            processes: 1,
        }
    }
}

/// The outcome: checks passed and failed, and everything printed.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub text: String,
}

#[derive(Parser, Debug)]
#[command(
    about = "Bounded soak test of natter: many clients, checks, RSS; exits non-zero on failure"
)]
struct Args {
    /// Clients, split between line and WebSocket.
    #[arg(long, default_value_t = 400)]
    clients: usize,
    /// How long the clients run.
    #[arg(long, default_value_t = 180)]
    seconds: u64,
    /// Rooms besides lobby.
    #[arg(long, default_value_t = 8)]
    rooms: usize,
    /// Use this natter binary instead of building target/release/natter.
    #[arg(long)]
    server: Option<PathBuf>,
    /// Random seed (0: from the clock).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run the clients this many times against the same server, measuring
    /// RSS after each wave has left (growth from wave to wave is a leak).
    #[arg(long, default_value_t = 1)]
    waves: usize,
    /// One more argument for the server, e.g. `--server-arg=--max-outbound=4194304`
    /// (repeatable).
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The share (0 to 1) of line and of WebSocket clients that connect
    /// over TLS; 0 runs the server without TLS.
    #[arg(long, default_value_t = DEFAULT_TLS_SHARE)]
    tls_share: f64,
    /// natter processes sharing the chat through Redis (with
    /// `--server-arg=--redis=redis://...`); clients move between them on
    /// every reconnect.
    #[arg(long, default_value_t = 1)]
    processes: usize,
}

fn main() {
    let args = Args::parse();
    let server = match args.server {
        Some(p) => p,
        None => match build_release() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("soak: cannot build the server: {e}");
                println!("soak: 0 passed, 1 failed");
                std::process::exit(2);
            }
        },
    };
    let cfg = Config {
        server,
        clients: args.clients.max(2),
        seconds: args.seconds.max(3),
        rooms: args.rooms.max(1),
        seed: args.seed,
        progress: true,
        waves: args.waves.max(1),
        server_args: args.server_args,
        tls_share: if args.tls_share.is_finite() {
            args.tls_share.clamp(0.0, 1.0)
        } else {
            0.0
        },
        processes: args.processes.max(1),
    };
    let report = run(&cfg);
    std::process::exit(i32::from(report.failed > 0 || report.passed == 0));
}

/// `cargo build --release --bin natter`; the path of the binary.
fn build_release() -> io::Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "natter", "--manifest-path"])
        .arg(manifest.join("Cargo.toml"))
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("cargo build: {status}")));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    Ok(target.join("release").join("natter"))
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

const MIB: f64 = 1024.0 * 1024.0;
/// The RSS bound: end <= FACTOR * start + SLACK.
const RSS_FACTOR: u64 = 2;
const RSS_SLACK_KB: u64 = 20 * 1024;
const SAMPLE_EVERY: Duration = Duration::from_secs(2);
/// The overall bound also allows the largest `cid` allowance (see below).
/// Slope: the RSS high-water mark may grow over the last third of the run
/// by CID_FACTOR * (what the `cid` logs may add) + SLOPE_SLACK.
const SLOPE_SLACK_KB: u64 = 8 * 1024;
/// Shorter runs are all warm-up and first stalls: no slope is judged.
const SLOPE_MIN_SECONDS: u64 = 90;
const CID_FACTOR: u64 = 2;
/// A remembered `cid`, besides its message text: the map and queue entries,
/// two copies of the cid, the `Rc<Message>` with its room and nick.
const CID_OVERHEAD: u64 = 400;
/// `hub::session::CID_TTL_MS`.
const CID_TTL: Duration = Duration::from_secs(600);
/// The server's `--resume-grace` in the soak (the default is 120 s): held
/// sessions of clients that gave up on them are let go before the end.
const RESUME_GRACE: u64 = 20;
/// How long the server may take to let go of everything once the clients
/// (and any session they may have left held) are gone.
const RELEASE_WAIT: Duration = Duration::from_secs(15);
/// A client that paused reading longer than this "stopped reading" (a
/// dropped slow consumer is then excused for DROP_LOOKBACK).
const GAP_OK: Duration = Duration::from_secs(1);
const DROP_LOOKBACK: Duration = Duration::from_secs(10);
/// Pauses between reads longer than this are remembered (for reports).
const GAP_NOTE: Duration = Duration::from_millis(200);
/// A stall that read again within this of its first unread request (so
/// within the server's 2 s linger of any drop) must end in whole lines or
/// frames and the goodbye.
const STALL_STRICT: Duration = Duration::from_millis(1500);
/// Bursts: participants stop sending BURST_PREP before the burst (their
/// flood-control bucket, 20 tokens at 10 a second, is full again after 2 s)
/// and send nothing else for BURST_AFTER after it.
const BURST_PREP: Duration = Duration::from_secs(3);
const BURST_AFTER: Duration = Duration::from_millis(2500);
/// A reader reports a burst this long after it settled (at most the time
/// to settle), unless it was dropped meanwhile (a goodbye read late is
/// still a drop, not a loss).
const BURST_LATE: Duration = Duration::from_secs(3);
/// Messages per burst write: the server's default `--burst`.
const BURST_MSGS: u64 = 20;
/// Participants per burst, in line/WebSocket pairs, in turn.
const BURST_PAIRS: [usize; 3] = [10, 15, 20];
/// How many of a room's newest entries a search through Redis reads
/// (natter's `store::redis::ops::SEARCH_SCAN`).
const SEARCH_SCAN_REDIS: u64 = 5_000;
/// Linux `MSG_DONTWAIT`: a send that takes what the socket takes.
const MSG_DONTWAIT: i32 = 0x40;

/// Prints and keeps every line of the report.
struct Out {
    text: String,
}

impl Out {
    fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        println!("{s}");
        self.text.push_str(s);
        self.text.push('\n');
    }
}

struct Checks {
    list: Vec<(bool, String)>,
}

impl Checks {
    fn add(&mut self, ok: bool, what: impl Into<String>) {
        self.list.push((ok, what.into()));
    }
}

/// Runs the whole soak against `cfg.server`; prints as it goes.
pub fn run(cfg: &Config) -> Report {
    let mut out = Out {
        text: String::new(),
    };
    let mut checks = Checks { list: Vec::new() };
    let seed = if cfg.seed == 0 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    } else {
        cfg.seed
    };
    let db = std::env::temp_dir().join(format!(
        "natter-soak-{}-{:x}.db",
        std::process::id(),
        seed & 0xffff_ffff
    ));
    // TLS: a certificate made here for the server (`--tls-cert`,
    // `--tls-key`), trusted by the TLS clients through its CA.
    let tls_dir = std::env::temp_dir().join(format!(
        "natter-soak-{}-{:x}.tls",
        std::process::id(),
        seed & 0xffff_ffff
    ));
    let tls = if cfg.tls_share > 0.0 {
        match TlsSetup::make(&tls_dir) {
            Ok(t) => Some(t),
            Err(e) => {
                out.line(format!("soak: cannot make a TLS certificate: {e}"));
                let _ = std::fs::remove_dir_all(&tls_dir);
                return finish(
                    out,
                    Checks {
                        list: vec![(false, "a TLS certificate for the server".into())],
                    },
                );
            }
        }
    } else {
        None
    };
    let mut server_args = tls.as_ref().map(TlsSetup::server_args).unwrap_or_default();
    server_args.extend(cfg.server_args.iter().cloned());
    let mut server = match ServerProc::start(&cfg.server, &db, RESUME_GRACE, &server_args, 0) {
        Ok(s) => s,
        Err(e) => {
            out.line(format!("soak: cannot start {}: {e}", cfg.server.display()));
            remove_db(&db);
            if let Some(t) = &tls {
                let _ = std::fs::remove_dir_all(&t.dir);
            }
            return finish(
                out,
                Checks {
                    list: vec![(false, "the server starts".into())],
                },
            );
        }
    };
    // The other processes sharing the chat, each with its own file.
    let mut others = Vec::new();
    let mut other_dbs = Vec::new();
    for i in 1..cfg.processes.max(1) {
        let db = db.with_extension(format!("{i}.db"));
        match ServerProc::start(&cfg.server, &db, RESUME_GRACE, &server_args, i) {
            Ok(s) => others.push(s),
            Err(e) => out.line(format!("soak: cannot start process {}: {e}", i + 1)),
        }
        other_dbs.push(db);
    }
    let rooms: Vec<String> = std::iter::once("lobby".to_string())
        .chain((0..cfg.rooms).map(|i| format!("soak{i}")))
        .collect();
    let n_ws = cfg.clients / 2;
    let transports: Vec<Transport> = (0..cfg.clients)
        .map(|id| match tls {
            Some(_) => transport(id, cfg.tls_share),
            None => Transport::Plain,
        })
        .collect();
    let tls_ids: Vec<usize> = (0..cfg.clients)
        .filter(|&id| transports[id] != Transport::Plain)
        .collect();
    let tls_ws = tls_ids.iter().filter(|&&id| id % 2 == 1).count();
    let tls_line = tls_ids.len() - tls_ws;
    let tls12 = transports
        .iter()
        .filter(|&&t| t == Transport::Tls12)
        .count();
    out.line(format!(
        "soak: natter pid {} on {} (--resume-grace {RESUME_GRACE}{}), db {}, {} clients ({} line, {} ws; {}), {} rooms + lobby, {} s, seed {seed}",
        server.pid,
        server.addr,
        if tls.is_some() { ", TLS with a certificate made for this run" } else { "" },
        db.display(),
        cfg.clients,
        cfg.clients - n_ws,
        n_ws,
        if tls.is_some() {
            format!(
                "over TLS: {tls_line} line, {tls_ws} ws, {tls12} of them TLS 1.2 only"
            )
        } else {
            "no TLS".to_string()
        },
        cfg.rooms,
        cfg.seconds,
    ));
    if cfg.waves > 1 {
        out.line(format!("soak: {} waves of clients", cfg.waves));
    }
    if cfg.processes > 1 {
        out.line(format!(
            "soak: {} processes sharing the chat (also pids {}; rss is the first's, connections and metrics all of theirs), clients move to the next on every reconnect",
            cfg.processes,
            others.iter().map(|o| o.pid.to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    let addrs: Vec<SocketAddr> = std::iter::once(server.addr)
        .chain(others.iter().map(|o| o.addr))
        .collect();
    // With --redis a process answers `unavailable` until it has reached
    // Redis (/healthz 503): the clients start once every one is ready.
    let ready_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < ready_by
        && !addrs
            .iter()
            .all(|a| matches!(http_get(*a, "/healthz"), Ok((200, _))))
    {
        thread::sleep(Duration::from_millis(50));
    }

    let idle = proc_status(server.pid);
    let started = Instant::now();
    // Long enough for every behaviour, stalls and slow-consumer drops
    // included, to have happened a few times.
    let warmup = Duration::from_secs((cfg.seconds / 6).clamp(1, 30));
    let ramp = Duration::from_millis((cfg.seconds * 1000 / 10).min(3000));
    // Bursts: from the end of the warm-up, one every `burst_every`, each
    // settled (checked) `burst_settle` later, all within the run.
    let burst_every = Duration::from_secs((cfg.seconds / 6).clamp(4, 30));
    let burst_settle = Duration::from_secs((cfg.seconds / 4).clamp(2, 20));
    let plain_pairs = (0..cfg.clients / 2)
        .filter(|&p| role_of(p * 2) == Role::Plain)
        .count();
    let shared = Arc::new(Shared {
        addr: server.addr,
        addrs: addrs.clone(),
        tls: tls.as_ref().map(|t| t.clients.clone()),
        handshake_deadline: header_timeout(&cfg.server_args),
        shared: cfg.server_args.iter().any(|a| a.starts_with("--redis")),
        tls_stalls: Mutex::new(Vec::new()),
        rooms: rooms.clone(),
        nicks: Mutex::new(vec![String::new(); cfg.clients]),
        acks: Mutex::new(Vec::new()),
        fails: Mutex::new(BTreeMap::new()),
        stats: Stats::default(),
        burst_sends: Mutex::new(Vec::new()),
        burst_seen: Mutex::new(Vec::new()),
        cid_log: Mutex::new(Vec::new()),
        last_abandon: Mutex::new(None),
        drops: Mutex::new(Vec::new()),
        changes: Mutex::new(HashMap::new()),
        ws_fates: Mutex::new(HashMap::new()),
        line_fates: Mutex::new(HashMap::new()),
        reacts: Mutex::new(HashMap::new()),
        unseen_changes: Mutex::new(HashMap::new()),
        skipped: Mutex::new(HashMap::new()),
        started,
    });
    let mut plans: Vec<BurstPlan> = Vec::new();

    let mut samples: Vec<Sample> = Vec::new();
    let mut start_rss: Option<u64> = None;
    let mut wave_ends: Vec<Option<u64>> = Vec::new();
    let mut alive = true;
    let mut hung = 0;
    let mut released_all = true;
    let mut released_after = Vec::new();
    let mut release_notes: Vec<String> = Vec::new();
    let mut run_windows: Vec<(Instant, Instant)> = Vec::new();
    let mut last_metrics = BTreeMap::new();
    let mut next_progress = started + Duration::from_secs(10);
    for wave in 0..cfg.waves.max(1) {
        let wave_start = Instant::now();
        let deadline = wave_start + Duration::from_secs(cfg.seconds);
        let mut plan = Vec::new();
        let mut at = wave_start + warmup + BURST_PREP;
        let late = BURST_LATE.min(burst_settle);
        while at + burst_settle + late <= deadline {
            let k = plans.len() + plan.len();
            let target = BURST_PAIRS[k % BURST_PAIRS.len()];
            plan.push(BurstPlan {
                k,
                at,
                settle: at + burst_settle,
                report: at + burst_settle + late,
                room: rooms[k % rooms.len()].clone(),
                every: (plain_pairs / target).max(1),
            });
            at += burst_every;
        }
        plans.extend(plan.iter().cloned());
        let plan = Arc::new(plan);
        let mut handles = Vec::new();
        for (id, &tls) in transports.iter().enumerate() {
            let start_at = wave_start + ramp * id as u32 / cfg.clients as u32;
            let sh = shared.clone();
            let plan = plan.clone();
            let ws = id % 2 == 1;
            let rng = Rng::new(
                seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (wave as u64) << 56,
            );
            // Each wave's tags and nicks are its own: generations from 1000*wave.
            let gen_base = wave as u32 * 1000;
            let h = thread::Builder::new()
                .name(format!("soak-{id}"))
                .stack_size(512 * 1024)
                .spawn(move || {
                    Client::new(id, ws, tls, sh, rng, deadline, gen_base, plan).run(start_at)
                });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => shared.fail("connect", format!("cannot spawn client thread {id}: {e}")),
            }
        }

        // Sample while the clients run.
        let mut next_sample = Instant::now();
        let hang_limit = deadline + Duration::from_secs(40);
        while handles.iter().any(|h| !h.is_finished()) && Instant::now() < hang_limit {
            let now = Instant::now();
            if now >= next_sample {
                next_sample = now + SAMPLE_EVERY;
                match proc_status(server.pid) {
                    Some(s) => {
                        if start_rss.is_none() && now >= wave_start + warmup {
                            start_rss = Some(s.rss_kb);
                        }
                        samples.push(s);
                    }
                    None => alive = false,
                }
                if !server.is_alive() || others.iter_mut().any(|o| !o.is_alive()) {
                    alive = false;
                }
                if cfg.progress && now >= next_progress {
                    next_progress += Duration::from_secs(10);
                    let conns = metrics_all(&addrs).unwrap_or_default();
                    let st = &shared.stats;
                    out.line(format!(
                        "soak: t={:>4}s rss {:>6.1} MiB threads {} conns line {} ws {} | said {} recv {} acks {} | failures {}",
                        started.elapsed().as_secs(),
                        samples.last().map_or(0.0, |s| s.rss_kb as f64 / 1024.0),
                        samples.last().map_or(0, |s| s.threads),
                        conns.get("line").copied().unwrap_or(0),
                        conns.get("ws").copied().unwrap_or(0),
                        st.said.get(),
                        st.received.get(),
                        st.acks.get(),
                        shared.failure_count(),
                    ));
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        run_windows.push((wave_start, deadline));
        hung += handles.iter().filter(|h| !h.is_finished()).count();
        for h in handles {
            if h.is_finished() && h.join().is_err() {
                shared.fail("client", "a client thread panicked".to_string());
            }
        }
        let clients_done = Instant::now();

        // Everyone has gone: the server should let go of every connection,
        // and of every room once any session left held has expired.
        let mut released = None;
        let mut release_until = Instant::now() + RELEASE_WAIT;
        let last_abandon = shared.last_abandon.lock().ok().and_then(|a| *a);
        if let Some(at) = last_abandon {
            let grace_end = at + Duration::from_secs(RESUME_GRACE + 5);
            release_until = release_until.max(grace_end);
        }
        let mut conns_gone = None;
        loop {
            if let Some(m) = metrics_all(&addrs) {
                let open = ["line", "ws", "pending"]
                    .iter()
                    .map(|k| m.get(*k).copied().unwrap_or(0))
                    .sum::<u64>();
                let rooms = m.get("rooms").copied().unwrap_or(0);
                last_metrics = m;
                if open == 0 && conns_gone.is_none() {
                    conns_gone = Some(Instant::now() - clients_done);
                }
                if open == 0 && rooms == 0 {
                    released = Some(Instant::now() - clients_done);
                    break;
                }
            }
            // Connections have no excuse past RELEASE_WAIT.
            let conns_late = conns_gone.is_none() && clients_done.elapsed() >= RELEASE_WAIT;
            if Instant::now() >= release_until || conns_late {
                break;
            }
            thread::sleep(Duration::from_millis(250));
        }
        match released {
            Some(d) => released_after.push(d),
            None => released_all = false,
        }
        release_notes.push(match (conns_gone, last_abandon) {
            (Some(c), Some(at)) => format!(
                "connections after {:.1} s, rooms after {} (a session may have been left held {:.1} s before the clients finished)",
                c.as_secs_f64(),
                released.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
                clients_done.saturating_duration_since(at).as_secs_f64()
            ),
            (Some(c), None) => format!(
                "connections after {:.1} s, rooms after {}",
                c.as_secs_f64(),
                released.map_or("-".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
            ),
            (None, _) => "connections NOT released".to_string(),
        });
        // A moment for the allocator after the last connection went.
        thread::sleep(Duration::from_secs(1));
        let end = proc_status(server.pid);
        match &end {
            Some(s) => samples.push(s.clone()),
            None => alive = false,
        }
        wave_ends.push(end.map(|s| s.rss_kb));
    }
    let clients_done = started.elapsed();
    let end = wave_ends.last().copied().flatten();
    // Stalled TLS handshakes are closed by the server's deadline.
    let stalls = shared
        .tls_stalls
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default();
    for h in stalls {
        if h.join().is_err() {
            shared.fail("client", "a stalled-handshake thread panicked".to_string());
        }
    }
    let health = addrs
        .iter()
        .map(|a| http_get(*a, "/healthz"))
        .find(|h| !matches!(h, Ok((200, body)) if body.trim() == "ok"))
        .unwrap_or_else(|| http_get(server.addr, "/healthz"));
    let final_metrics = metrics_all(&addrs);
    let server_drops: Vec<String> = final_metrics
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, n)| Some(format!("{} {n}", k.strip_prefix("dropped ")?)))
        .collect();
    let store = check_store(&shared);
    let mut exit = server.stop();
    for o in others {
        let e = o.stop();
        if exit.as_ref().is_ok_and(|s| s.success()) {
            exit = e;
        }
    }
    remove_db(&db);
    for d in &other_dbs {
        remove_db(d);
    }
    if let Some(t) = &tls {
        let _ = std::fs::remove_dir_all(&t.dir);
    }

    // Figures.
    let st = &shared.stats;
    let rss = |kb: u64| kb as f64 / 1024.0;
    let peak = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let max_threads = samples.iter().map(|s| s.threads).max().unwrap_or(0);
    let min_threads = samples.iter().map(|s| s.threads).min().unwrap_or(0);
    let start_kb = start_rss.or(samples.first().map(|s| s.rss_kb)).unwrap_or(0);
    let end_kb = end.unwrap_or(u64::MAX);
    let mem = memory_figures(&samples, &shared, run_windows.last().copied(), started);
    let bound_kb = start_kb * RSS_FACTOR + RSS_SLACK_KB + CID_FACTOR * mem.cid_peak_kb;
    out.line(format!(
        "soak: rss idle {:.1} MiB, start {:.1} MiB (after {} s warm-up), peak {:.1} MiB, end {} MiB (all clients gone{}); bound end <= {}*start + {} MiB + {}*cid logs {:.1} MiB = {:.1} MiB",
        idle.as_ref().map_or(0.0, |s| rss(s.rss_kb)),
        rss(start_kb),
        warmup.as_secs(),
        rss(peak),
        wave_ends
            .iter()
            .map(|e| e.map_or("?".to_string(), |kb| format!("{:.1}", rss(kb))))
            .collect::<Vec<_>>()
            .join(" / "),
        if wave_ends.len() > 1 { ", after each wave" } else { "" },
        RSS_FACTOR,
        RSS_SLACK_KB / 1024,
        CID_FACTOR,
        rss(mem.cid_peak_kb),
        rss(bound_kb),
    ));
    out.line(format!(
        "soak: rss high-water by sixths of the run: {} MiB; last third t={}..{} s: grew {:.1} MiB, allowed {:.1} MiB ({}*cid logs grew {:.1} MiB + {} MiB)",
        mem.sixths
            .iter()
            .map(|kb| format!("{:.1}", rss(*kb)))
            .collect::<Vec<_>>()
            .join(" / "),
        mem.window.0,
        mem.window.1,
        rss(mem.growth_kb),
        rss(mem.allowed_kb),
        CID_FACTOR,
        rss(mem.cid_growth_kb),
        SLOPE_SLACK_KB / 1024,
    ));
    out.line(format!(
        "soak: threads min {min_threads} max {max_threads} over {} samples; clients ran {:.1} s; release: {}",
        samples.len(),
        clients_done.as_secs_f64(),
        if released_all {
            release_notes.join(" / ")
        } else {
            format!("{}; NOT within the wait: {last_metrics:?}", release_notes.join(" / "))
        }
    ));
    out.line(format!(
        "soak: traffic: said {} (line {}, ws {}), dms {}, received live {} + {} in joins/history, dms received {}, ws acks {}, client bytes in {:.1} MiB",
        st.said.get(),
        st.said_line.get(),
        st.said.get() - st.said_line.get(),
        st.dms.get(),
        st.received.get(),
        st.replayed.get(),
        st.dms_received.get(),
        st.acks.get(),
        st.bytes_in.get() as f64 / MIB,
    ));
    out.line(format!(
        "soak: events: joins {}, leaves {}, nicks {}, floods {} (rate_limited {}), vanishes {} (reset {}), ws resumes {} (retried after a failed handshake {}, sessions maybe left held {}), cid retries {} (original back {}), reconnects {}, stalls {} (read again within {} ms {}; slow-consumer goodbyes {}, cut off after a longer stall {}; history pages refused {}), handshakes written after the sniff time {}, catch-ups with a gap {}, drips {}, half-sent {}, garbage {} (+{} junk connections)",
        st.joins.get(),
        st.leaves.get(),
        st.nicks.get(),
        st.floods.get(),
        st.rate_limited.get(),
        st.vanishes.get(),
        st.resets.get(),
        st.resumes.get(),
        st.resume_retries.get(),
        st.abandoned.get(),
        st.retries.get(),
        st.retry_original.get(),
        st.reconnects.get(),
        st.stalls.get(),
        STALL_STRICT.as_millis(),
        st.stalls_strict.get(),
        st.slow_drops.get(),
        st.slow_aborts.get(),
        st.history_refused.get(),
        st.late_handshakes.get(),
        st.catch_up_gaps.get(),
        st.drips.get(),
        st.cuts.get(),
        st.garbage.get(),
        st.junk.get(),
    ));
    // TLS, as the clients saw it and as the server counts it.
    let server_tls = |k: &str| {
        final_metrics
            .as_ref()
            .and_then(|m| m.get(k).copied())
            .map_or("?".to_string(), |n| n.to_string())
    };
    if tls.is_some() {
        out.line(format!(
            "soak: tls: {} clients over TLS ({tls_line} line, {tls_ws} ws); handshakes {} of {} begun ({} TLS 1.2), {} connections heard from the server; streams the server ended: {} with close_notify, {} without; vanishes that sent close_notify {}; TLS junk: {} ClientHellos cut short, {} stalled handshakes ({} closed by the server, the slowest {:.1} s after connecting), {} TLS inside TLS; the server (/metrics): handshakes begun {}, done {}, failed {}, TLS connections open at the end {}",
            tls_ids.len(),
            st.tls_handshakes.get(),
            st.tls_attempts.get(),
            st.tls12_handshakes.get(),
            st.tls_heard.get(),
            st.tls_close_notify.get(),
            st.tls_bare_ends.get(),
            st.tls_polite_closes.get(),
            st.tls_junk_cut.get(),
            st.tls_junk_stalled.get(),
            st.tls_junk_stall_closed.get(),
            st.tls_junk_stall_ms.get() as f64 / 1000.0,
            st.tls_junk_inner.get(),
            server_tls("tls begun"),
            server_tls("tls done"),
            server_tls("tls failed"),
            server_tls("tls open"),
        ));
    }
    let drops = shared.drops.lock().map(|d| d.clone()).unwrap_or_default();
    let count = |k: DropKind| drops.iter().filter(|d| d.kind == k).count();
    out.line(format!(
        "soak: slow-consumer drops: {} ({} line, {} ws): {} after stalling on purpose, {} after pausing reading over {} ms, {} of readers that kept reading{}",
        drops.len(),
        drops.iter().filter(|d| !d.ws).count(),
        drops.iter().filter(|d| d.ws).count(),
        count(DropKind::Stalled),
        count(DropKind::Paused),
        GAP_OK.as_millis(),
        count(DropKind::Reading),
        match drops.iter().filter(|d| d.kind == DropKind::Reading && d.burst_room).count() {
            0 => String::new(),
            n => format!(" ({n} in a room with a burst going on)"),
        }
    ));
    out.line(format!(
        "soak: the server's drops by reason (/metrics): {}",
        if server_drops.is_empty() {
            "none".to_string()
        } else {
            server_drops.join(", ")
        }
    ));
    let bursts = judge_bursts(&shared, &plans);
    out.line(format!(
        "soak: bursts: {} planned ({} s apart, {} s to settle), {} writes of {} messages ({} line, {} ws; {} skipped: not connected or not in the room), {:.1} MiB written; {} reader reports checked {} deliveries, {} missing; {} senders rate-limited ({} within the burst)",
        plans.len(),
        burst_every.as_secs(),
        burst_settle.as_secs(),
        bursts.writes,
        BURST_MSGS,
        bursts.writes_line,
        bursts.writes - bursts.writes_line,
        st.burst_skipped.get(),
        st.burst_bytes.get() as f64 / MIB,
        bursts.reports,
        bursts.checked,
        bursts.missing,
        bursts.rate_limited,
        bursts.refused,
    ));
    for e in bursts.examples.iter().take(6) {
        out.line(format!("soak:   bursts: {e}"));
    }
    out.line(format!(
        "soak: messages that live: ws edits {}, deletes {}, reactions {}; line edits {}, deletes {}, reactions {}; answered {} (reactions on {}, off {}), refused as their target was deleted {} (ws {}, line {}), answers lost with their connection {}; changes received live: ws {}, line {}; change entries in joins and catch-ups {}",
        st.ws_edits.get(),
        st.ws_deletes.get(),
        st.ws_reacts.get(),
        st.line_edits.get(),
        st.line_deletes.get(),
        st.line_reacts.get(),
        st.amends_answered.get(),
        st.reacts_on.get(),
        st.reacts_off.get(),
        st.reacts_gone.get() + st.line_reacts_gone.get(),
        st.reacts_gone.get(),
        st.line_reacts_gone.get(),
        st.amends_lost.get(),
        st.amend_events_ws.get(),
        st.amend_events_line.get(),
        st.amend_entries.get(),
    ));
    out.line(format!(
        "soak: searches: ws {}, line {}; {} results; a word of the searcher's own message found {} times, rightly not found (deleted or edited away) {} times",
        st.ws_searches.get(),
        st.line_searches.get(),
        st.search_results.get(),
        st.search_found.get(),
        st.search_absent.get(),
    ));
    match &store {
        Ok(s) => out.line(format!(
            "soak: store: {} messages in {} rooms ({} edited, {} deleted, {} with reactions), seqs ascending, the {} between them changes ({} told to ws clients, {} within the changes none may have been told of; {} seqs that pages skipped checked against it); {} acknowledged messages found as acknowledged, edited or deleted",
            s.messages,
            s.rooms,
            s.edited,
            s.deleted,
            s.reacted,
            s.changes_seen + s.changes_unseen,
            s.changes_seen,
            s.changes_unseen,
            s.skipped,
            s.acks
        )),
        Err(e) => out.line(format!("soak: store: {e}")),
    }

    // Checks.
    let fails = shared.fails.lock().map(|f| f.clone()).unwrap_or_default();
    let cat = |names: &[&str]| -> (u64, Vec<String>) {
        let mut n = 0;
        let mut ex = Vec::new();
        for name in names {
            if let Some((k, e)) = fails.get(*name) {
                n += k;
                ex.extend(e.iter().cloned());
            }
        }
        (n, ex)
    };
    let check_cat = |checks: &mut Checks, out: &mut Out, what: &str, names: &[&str]| {
        let (n, ex) = cat(names);
        checks.add(n == 0, format!("{what}: {n} problems"));
        for e in ex.iter().take(6) {
            out.line(format!("soak:   {what}: {e}"));
        }
    };
    checks.add(alive, "the server stayed up");
    checks.add(
        min_threads == 3 && max_threads == 3,
        format!(
            "Threads: 3 in all {} samples (saw {min_threads}..{max_threads})",
            samples.len()
        ),
    );
    checks.add(
        start_rss.is_some() && end.is_some() && end_kb <= bound_kb,
        format!(
            "rss end {:.1} MiB <= {:.1} MiB",
            if end.is_some() { rss(end_kb) } else { f64::NAN },
            rss(bound_kb)
        ),
    );
    let judged = cfg.seconds >= SLOPE_MIN_SECONDS;
    checks.add(
        !judged || mem.growth_kb <= mem.allowed_kb,
        if judged {
            format!(
                "rss levels off: the last third grew {:.1} MiB <= {:.1} MiB",
                rss(mem.growth_kb),
                rss(mem.allowed_kb)
            )
        } else {
            format!(
                "rss levels off: not judged in a run under {SLOPE_MIN_SECONDS} s (the last third grew {:.1} MiB)",
                rss(mem.growth_kb)
            )
        },
    );
    checks.add(
        matches!(&health, Ok((200, body)) if body.trim() == "ok"),
        format!(
            "GET /healthz at the end: {}",
            match &health {
                Ok((code, body)) => format!("{code} {:?}", body.trim()),
                Err(e) => e.to_string(),
            }
        ),
    );
    checks.add(
        released_all,
        "the server released every connection and room after the clients left",
    );
    checks.add(
        exit.as_ref().is_ok_and(|s| s.success()),
        format!(
            "SIGTERM: clean exit ({})",
            match &exit {
                Ok(s) => s.to_string(),
                Err(e) => e.clone(),
            }
        ),
    );
    checks.add(
        hung == 0,
        format!("every client finished in time ({hung} hung)"),
    );
    check_cat(
        &mut checks,
        &mut out,
        "well-formed server output",
        &["malformed", "torn"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "messages exactly as sent",
        &["wrong"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "per-sender order, no duplicates",
        &["order"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "ws seq, joins, catch-up and history agree",
        &["ws_seq"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "ws acknowledgements and cid retries",
        &["ack"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "flood control answered rate_limited",
        &["flood"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "resume kept nick and rooms",
        &["resume"],
    );
    check_cat(&mut checks, &mut out, "no unprovoked errors", &["errors"]);
    check_cat(
        &mut checks,
        &mut out,
        "edits, deletes and reactions answered as asked, none refused unprovoked",
        &["amend"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "edit, delete and reaction events well-formed, each on a message of its room",
        &["amend_event"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "searches answered; a searcher's own word found exactly while its message says it",
        &["search"],
    );
    check_cat(
        &mut checks,
        &mut out,
        "readers that kept reading were not dropped",
        &["reader_dropped"],
    );
    checks.add(
        bursts.missing == 0
            && bursts.lost == 0
            && bursts.refused == 0
            && (plans.is_empty() || (bursts.writes > 0 && bursts.reports > 0)),
        format!(
            "bursts: every reader got every message, no burst refused ({} writes, {} reader reports, {} missing, {} lost, {} refused in part)",
            bursts.writes, bursts.reports, bursts.missing, bursts.lost, bursts.refused
        ),
    );
    check_cat(
        &mut checks,
        &mut out,
        "connections: connect, close, quit",
        &["connect", "closed", "quit", "client"],
    );
    if tls.is_some() {
        check_cat(
            &mut checks,
            &mut out,
            "TLS junk (ClientHellos cut short, stalled handshakes, TLS inside TLS) closed by the server",
            &["tls_junk"],
        );
        // The server's counts: every connection that heard from the server
        // had its handshake finished there; no more finished than the
        // clients began; every stalled handshake it closed at its deadline
        // a failure; and no TLS connection left once everyone has gone.
        let m = final_metrics.clone().unwrap_or_default();
        let get = |k: &str| m.get(k).copied();
        let (done, failed, open) = (get("tls done"), get("tls failed"), get("tls open"));
        let heard = st.tls_heard.get();
        let begun = st.tls_attempts.get();
        let stalled = st.tls_junk_stall_closed.get();
        checks.add(
            done.is_some_and(|d| d >= heard && d <= begun)
                && failed.is_some_and(|f| f >= stalled)
                && (tls_ids.is_empty() || heard > 0),
            format!(
                "TLS handshakes as the server counts them: done {} >= {heard} connections that heard from it, <= {begun} the clients began; failed {} >= {stalled} stalled handshakes it closed",
                done.map_or("?".to_string(), |n| n.to_string()),
                failed.map_or("?".to_string(), |n| n.to_string()),
            ),
        );
        checks.add(
            open == Some(0),
            format!(
                "natter_tls_connections back to 0 after the clients left (saw {})",
                open.map_or("?".to_string(), |n| n.to_string())
            ),
        );
    }
    let store_ok = store.is_ok();
    checks.add(
        store_ok,
        "the store holds every message once, as sent and acknowledged, as last edited or deleted, with the reactions left on",
    );
    checks.add(
        st.received.get() > 0 && st.said.get() > 0 && st.acks.get() > 0,
        "traffic flowed (messages said, received and acknowledged)",
    );
    // Judged where there is time for a few of each (200 clients for 20 s).
    let used = [
        st.ws_edits.get() + st.line_edits.get(),
        st.ws_deletes.get() + st.line_deletes.get(),
        st.ws_reacts.get() + st.line_reacts.get(),
        st.ws_searches.get() + st.line_searches.get(),
    ];
    let judged = cfg.clients as u64 * cfg.seconds >= 4000;
    checks.add(
        !judged || used.iter().all(|&n| n > 0),
        format!(
            "messages that live were used: edits {}, deletes {}, reactions {}, searches {}{}",
            used[0],
            used[1],
            used[2],
            used[3],
            if judged {
                ""
            } else {
                " (not judged in so short a run)"
            }
        ),
    );
    finish(out, checks)
}

fn finish(mut out: Out, checks: Checks) -> Report {
    let mut passed = 0;
    let mut failed = 0;
    for (ok, what) in &checks.list {
        if *ok {
            passed += 1;
        } else {
            failed += 1;
        }
        out.line(format!(
            "soak: {} {what}",
            if *ok { "ok  " } else { "FAIL" }
        ));
    }
    out.line(format!("soak: {passed} passed, {failed} failed"));
    Report {
        passed,
        failed,
        text: out.text,
    }
}

fn remove_db(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

// ---------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------

struct ServerProc {
    child: Child,
    pid: u32,
    addr: SocketAddr,
}

impl ServerProc {
    /// `n`: which process (its log, with `SOAK_SERVER_LOG`, is that path
    /// with `.N` added, but for the first).
    fn start(
        bin: &Path,
        db: &Path,
        resume_grace: u64,
        extra: &[String],
        n: usize,
    ) -> io::Result<ServerProc> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(["--resume-grace", &resume_grace.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("SOAK_SERVER_LOG") {
                // The server's log (with RUST_LOG, say natter=debug), to
                // follow one client the report names by its address.
                Some(path) if n == 0 => Stdio::from(std::fs::File::create(path)?),
                Some(path) => {
                    let mut path = path;
                    path.push(format!(".{n}"));
                    Stdio::from(std::fs::File::create(path)?)
                }
                None => Stdio::null(),
            })
            .spawn()?;
        let pid = child.id();
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        // The first line is `natter listening on 127.0.0.1:PORT`.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") {
            match stdout.read(&mut byte) {
                Ok(0) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::other(format!(
                        "exited before listening (said {:?})",
                        String::from_utf8_lossy(&line)
                    )));
                }
                Ok(_) => line.push(byte[0]),
            }
        }
        let text = String::from_utf8_lossy(&line).trim().to_string();
        let addr = text
            .strip_prefix("natter listening on ")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("unexpected first line {text:?}")));
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while matches!(stdout.read(&mut sink), Ok(n) if n > 0) {}
        });
        Ok(ServerProc { child, pid, addr })
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (graceful shutdown), at most 10 s, then SIGKILL.
    fn stop(mut self) -> Result<ExitStatus, String> {
        if !self.is_alive() {
            return match self.child.wait() {
                Ok(s) => Err(format!("had already exited: {s}")),
                Err(e) => Err(e.to_string()),
            };
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err("did not exit within 10 s of SIGTERM; killed".into())
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    rss_kb: u64,
    threads: u64,
}

/// VmRSS and Threads from `/proc/PID/status`.
fn proc_status(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some(Sample {
        at: Instant::now(),
        rss_kb: field("VmRSS:")?,
        threads: field("Threads:")?,
    })
}

/// One `GET` with `Connection: close`: the status and the body.
fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of head"))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
    Ok((code, body.to_string()))
}

/// `natter_connections{kind=...}`, `natter_rooms`, the drops by reason and
/// the TLS figures from `/metrics`.
/// The figures of [`metrics`], added up over every process.
fn metrics_all(addrs: &[SocketAddr]) -> Option<BTreeMap<String, u64>> {
    let mut all = BTreeMap::new();
    for a in addrs {
        for (k, n) in metrics(*a)? {
            *all.entry(k).or_insert(0) += n;
        }
    }
    Some(all)
}

fn metrics(addr: SocketAddr) -> Option<BTreeMap<String, u64>> {
    let (code, body) = http_get(addr, "/metrics").ok()?;
    if code != 200 {
        return None;
    }
    let mut m = BTreeMap::new();
    for l in body.lines() {
        if let Some(rest) = l.strip_prefix("natter_connections{kind=\"") {
            if let Some((kind, n)) = rest.split_once("\"} ") {
                m.insert(kind.to_string(), n.trim().parse().ok()?);
            }
        } else if let Some(n) = l.strip_prefix("natter_rooms ") {
            m.insert("rooms".to_string(), n.trim().parse().ok()?);
        } else if let Some(n) = l.strip_prefix("natter_tls_connections ") {
            m.insert("tls open".to_string(), n.trim().parse().ok()?);
        } else if let Some(n) = l.strip_prefix("natter_tls_handshakes_total ") {
            m.insert("tls begun".to_string(), n.trim().parse().ok()?);
        } else if let Some(n) = l.strip_prefix("natter_tls_handshakes_done_total ") {
            m.insert("tls done".to_string(), n.trim().parse().ok()?);
        } else if let Some(n) = l.strip_prefix("natter_tls_handshake_failures_total ") {
            m.insert("tls failed".to_string(), n.trim().parse().ok()?);
        } else if let Some(rest) = l.strip_prefix("natter_dropped_connections_total{reason=\"") {
            if let Some((why, n)) = rest.split_once("\"} ") {
                m.insert(format!("dropped {why}"), n.trim().parse().ok()?);
            }
        }
    }
    Some(m)
}

struct StoreSummary {
    messages: usize,
    rooms: usize,
    acks: usize,
    edited: usize,
    deleted: usize,
    reacted: usize,
    /// Seqs between messages that are changes: told to some WebSocket
    /// client, and the rest (within the changes nobody may have been told of).
    changes_seen: usize,
    changes_unseen: usize,
    /// Seqs pages skipped (changes the clients were not told of), checked.
    skipped: usize,
}

/// A message as the store has it.
struct Stored {
    from: String,
    /// None: deleted.
    text: Option<String>,
    /// Emoji -> nicks.
    reactions: BTreeMap<String, Vec<String>>,
}

/// Pages through every room's stored history over HTTP and checks it
/// against what the clients were told: seqs ascending, each seq between
/// messages a change (an edit, delete or reaction: one some WebSocket
/// client was told of, or else within the changes nobody may have been
/// told of), every change's seq no message and its target a message; every
/// text as its sender sent it or last edited it (an edit only where its
/// author's edit was answered, or lost with its connection); every message
/// a WebSocket sender had acknowledged under its seq, with its latest text
/// or `deleted:true` and nothing more once deleted; the line clients'
/// deletes exactly; no message stored twice; and the reactions with the
/// WebSocket clients' emoji exactly those their reactors were told are on.
fn check_store(sh: &Shared) -> Result<StoreSummary, String> {
    let mut stored: HashMap<(String, u64), Stored> = HashMap::new();
    let mut tags: HashMap<(String, u64), (String, u64)> = HashMap::new();
    let mut gaps: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut rooms = 0;
    let (mut edited, mut reacted) = (0, 0);
    for room in &sh.rooms {
        let mut after = 0u64;
        loop {
            let path = format!("/api/rooms/{room}/messages?after={after}&limit=200");
            let (code, body) = http_get(sh.addr, &path).map_err(|e| format!("GET {path}: {e}"))?;
            if code != 200 {
                return Err(format!("GET {path}: {code}"));
            }
            let v: Value =
                serde_json::from_str(&body).map_err(|e| format!("GET {path}: bad JSON: {e}"))?;
            let msgs = v["messages"]
                .as_array()
                .ok_or_else(|| format!("GET {path}: no messages array"))?;
            for m in msgs {
                let seq = m["seq"].as_u64().ok_or("a stored message without seq")?;
                if seq <= after {
                    return Err(format!("#{room}: stored seq {seq} follows {after}"));
                }
                gaps.extend((after + 1..seq).map(|s| (room.clone(), s)));
                after = seq;
                let from = m["from"].as_str().unwrap_or("").to_string();
                if m["deleted"] == json!(true) {
                    let extra = m.as_object().into_iter().flatten().find(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "type" | "room" | "seq" | "from" | "ts" | "deleted"
                        )
                    });
                    if let Some((k, _)) = extra {
                        return Err(format!("#{room} seq {seq}: deleted, yet with {k:?}: {m}"));
                    }
                    stored.insert(
                        (room.clone(), seq),
                        Stored {
                            from,
                            text: None,
                            reactions: BTreeMap::new(),
                        },
                    );
                    continue;
                }
                let text = m["text"].as_str().ok_or("a stored message without text")?;
                let action = m["action"].as_bool().unwrap_or(false);
                let tag = verify(text).map_err(|e| format!("#{room} seq {seq}: {e}: {text:?}"))?;
                let kind = if action { "me" } else { "in" };
                if tag.kind != kind || tag.dest != *room || tag.nick != from {
                    return Err(format!(
                        "#{room} seq {seq}: stored from {from} (action {action}) but says {text:?}"
                    ));
                }
                if (tag.edit > 0) != m["edited_ts"].is_u64() {
                    return Err(format!(
                        "#{room} seq {seq}: edit {}, edited_ts {}",
                        tag.edit, m["edited_ts"]
                    ));
                }
                if tag.edit > 0 {
                    edited += 1;
                }
                if let Some(other) = tags.insert((tag.key.clone(), tag.n), (room.clone(), seq)) {
                    return Err(format!(
                        "{}#{} stored twice: #{} seq {} and #{room} seq {seq}",
                        tag.key, tag.n, other.0, other.1
                    ));
                }
                let mut reactions = BTreeMap::new();
                if let Some(r) = m.get("reactions") {
                    let map = r
                        .as_object()
                        .filter(|o| !o.is_empty())
                        .ok_or_else(|| format!("#{room} seq {seq}: reactions {r}"))?;
                    for (emoji, nicks) in map {
                        let nicks: Vec<String> = nicks
                            .as_array()
                            .and_then(|a| {
                                a.iter().map(|n| n.as_str().map(str::to_string)).collect()
                            })
                            .filter(|n: &Vec<String>| !n.is_empty())
                            .ok_or_else(|| format!("#{room} seq {seq}: reactions {r}"))?;
                        if !WS_EMOJI.contains(&emoji.as_str())
                            && !LINE_EMOJI.contains(&emoji.as_str())
                        {
                            return Err(format!(
                                "#{room} seq {seq}: a reaction nobody put there: {r}"
                            ));
                        }
                        reactions.insert(emoji.clone(), nicks);
                    }
                    reacted += 1;
                }
                stored.insert(
                    (room.clone(), seq),
                    Stored {
                        from,
                        text: Some(text.to_string()),
                        reactions,
                    },
                );
            }
            if msgs.len() < 200 {
                break;
            }
        }
        if after > 0 {
            rooms += 1;
        }
    }

    // Changes: no seq of one is a message, every target is a message
    // before it; the seqs between messages nobody was told of are at most
    // the changes nobody may have been told of.
    let changes = sh.changes.lock().map(|c| c.clone()).unwrap_or_default();
    for ((room, seq), (kind, target)) in &changes {
        if stored.contains_key(&(room.clone(), *seq)) {
            return Err(format!(
                "#{room} seq {seq}: a change '{kind}' of {target} to clients, a message in the store"
            ));
        }
        if target >= seq || !stored.contains_key(&(room.clone(), *target)) {
            return Err(format!(
                "#{room} seq {seq}: a change '{kind}' of {target}, which is no stored message before it"
            ));
        }
    }
    let unseen = sh
        .unseen_changes
        .lock()
        .map(|u| u.clone())
        .unwrap_or_default();
    let mut changes_unseen = 0;
    for room in &sh.rooms {
        let n = gaps
            .iter()
            .filter(|(r, s)| r == room && !changes.contains_key(&(r.clone(), *s)))
            .count();
        let may = unseen.get(room).copied().unwrap_or(0) as usize;
        if n > may {
            return Err(format!(
                "#{room}: {n} seqs between stored messages that no client was told are changes, but at most {may} changes may have gone untold (line clients' and lost answers)"
            ));
        }
        changes_unseen += n;
    }
    let changes_seen = gaps.len() - changes_unseen;
    // Seqs a complete page skipped without the client being told what they
    // were: no message is stored there (a page that left one out).
    let skipped = sh.skipped.lock().map(|s| s.clone()).unwrap_or_default();
    let mut left_out: Vec<String> = skipped
        .iter()
        .filter(|(k, _)| stored.contains_key(*k))
        .map(|((room, seq), what)| {
            format!("a {what} of #{room} skipped seq {seq}, a message in the store")
        })
        .collect();
    left_out.sort();
    for e in left_out {
        sh.fail("ws_seq", e);
    }

    // Acknowledged WebSocket messages: as acknowledged, as last edited, or
    // deleted.
    let acks = sh.acks.lock().map(|a| a.clone()).unwrap_or_default();
    let ws_fates = sh.ws_fates.lock().map(|f| f.clone()).unwrap_or_default();
    let mut acked: HashSet<(String, u64)> = HashSet::new();
    for (room, seq, text) in &acks {
        acked.insert((room.clone(), *seq));
        let fates = ws_fates
            .get(&(room.clone(), *seq))
            .cloned()
            .unwrap_or_else(|| vec![Fate::Text(text.clone())]);
        let ok = match stored.get(&(room.clone(), *seq)) {
            Some(Stored { text: Some(t), .. }) => fates.contains(&Fate::Text(t.clone())),
            Some(Stored { text: None, .. }) => fates.contains(&Fate::Deleted),
            None => return Err(format!("#{room} seq {seq} acknowledged but not stored")),
        };
        if !ok {
            let s = &stored[&(room.clone(), *seq)];
            return Err(format!(
                "#{room} seq {seq} acknowledged as {text:?}, then {fates:?}; stored as {:?}",
                s.text
            ));
        }
    }

    // Line messages: as sent, or as their author last edited or deleted
    // them; edits only where their author's edit was answered or lost.
    let line_fates = sh.line_fates.lock().map(|f| f.clone()).unwrap_or_default();
    for ((room, seq), s) in &stored {
        let Some(text) = &s.text else {
            continue;
        };
        let tag = verify(text).map_err(|e| format!("#{room} seq {seq}: {e}"))?;
        let (id, _) = tag.id_gen();
        if id % 2 == 1 {
            // A WebSocket client's: an edit only of an acknowledged one.
            if tag.edit > 0 && !acked.contains(&(room.clone(), *seq)) {
                return Err(format!(
                    "#{room} seq {seq}: edited, but never acknowledged: {text:?}"
                ));
            }
            continue;
        }
        match line_fates.get(&(room.clone(), tag.key.clone(), tag.n)) {
            Some(f) if !f.contains(&Fate::Text(text.clone())) => {
                return Err(format!(
                    "#{room} seq {seq}: stored as {text:?}; its author made it {f:?}"
                ))
            }
            None if tag.edit > 0 => {
                return Err(format!(
                    "#{room} seq {seq}: edited, but its author edited nothing: {text:?}"
                ))
            }
            _ => {}
        }
    }
    let deleted = stored.values().filter(|s| s.text.is_none()).count();
    for room in &sh.rooms {
        // Deleted messages no WebSocket sender acknowledged: the line
        // clients' deletes, each answered or lost.
        let n = stored
            .iter()
            .filter(|((r, seq), s)| {
                r == room && s.text.is_none() && !acked.contains(&(r.clone(), *seq))
            })
            .count();
        let sure = line_fates
            .iter()
            .filter(|((r, _, _), f)| r == room && **f == [Fate::Deleted])
            .count();
        let maybe = line_fates
            .iter()
            .filter(|((r, _, _), f)| r == room && f.len() > 1 && f.contains(&Fate::Deleted))
            .count();
        if n < sure || n > sure + maybe {
            return Err(format!(
                "#{room}: {n} deleted messages of line clients in the store; their authors deleted {sure} (and {maybe} more may have been)"
            ));
        }
    }

    // Reactions of the WebSocket clients' emoji: exactly those on.
    let reacts = sh.reacts.lock().map(|r| r.clone()).unwrap_or_default();
    // (room, target, emoji) -> (the nicks surely on, those maybe on).
    type Want = HashMap<(String, u64, String), (Vec<String>, Vec<String>)>;
    let mut want: Want = HashMap::new();
    for ((room, seq, emoji, _), states) in &reacts {
        let e = want.entry((room.clone(), *seq, emoji.clone())).or_default();
        match states.as_slice() {
            [Some(nick)] => e.0.push(nick.clone()),
            [None] => {}
            _ => e.1.extend(states.iter().flatten().cloned()),
        }
    }
    for ((room, seq), s) in &stored {
        if s.text.is_none() {
            continue;
        }
        for emoji in WS_EMOJI {
            let key = (room.clone(), *seq, emoji.to_string());
            let mut have = s.reactions.get(*emoji).cloned().unwrap_or_default();
            let (sure, maybe) = want.remove(&key).unwrap_or_default();
            for nick in &sure {
                match have.iter().position(|n| n == nick) {
                    Some(i) => {
                        have.remove(i);
                    }
                    None => {
                        return Err(format!(
                        "#{room} seq {seq} (from {}): {nick} put {emoji} on it, the store has {:?}",
                        s.from,
                        s.reactions.get(*emoji)
                    ))
                    }
                }
            }
            for nick in &maybe {
                if let Some(i) = have.iter().position(|n| n == nick) {
                    have.remove(i);
                }
            }
            if !have.is_empty() {
                return Err(format!(
                    "#{room} seq {seq}: {emoji} by {have:?}, whose reactors did not leave it on (sure on: {sure:?}, maybe: {maybe:?})"
                ));
            }
        }
    }
    // What is left names messages deleted since (their reactions went
    // with them) or none at all.
    for ((room, seq, emoji), (sure, _)) in &want {
        if !sure.is_empty() && !stored.contains_key(&(room.clone(), *seq)) {
            return Err(format!(
                "#{room} seq {seq}: {sure:?} put {emoji} on it, and there is no such message"
            ));
        }
    }
    Ok(StoreSummary {
        messages: stored.len(),
        rooms,
        acks: acks.len(),
        edited,
        deleted,
        reacted,
        changes_seen,
        changes_unseen,
        skipped: skipped.len(),
    })
}

// ---------------------------------------------------------------------------
// Memory: a plateau or a leak
// ---------------------------------------------------------------------------

#[derive(Default)]
struct MemFigures {
    /// The most the `cid` logs may have held at a sample.
    cid_peak_kb: u64,
    /// The RSS high-water mark at the end of each sixth of the last run.
    sixths: Vec<u64>,
    /// The last third, in seconds since the start.
    window: (u64, u64),
    growth_kb: u64,
    cid_growth_kb: u64,
    allowed_kb: u64,
}

/// The growth of the RSS high-water mark over the last third of the clients'
/// run (`window`: the last wave), against what the `cid` logs may add then.
fn memory_figures(
    samples: &[Sample],
    sh: &Shared,
    window: Option<(Instant, Instant)>,
    started: Instant,
) -> MemFigures {
    let mut cids = sh.cid_log.lock().map(|c| c.clone()).unwrap_or_default();
    cids.sort_unstable_by_key(|c| c.0);
    // What the logs may hold at t: every cid sent in (t - CID_TTL, t].
    let cid_kb_at = |t: Instant| -> u64 {
        let lo = cids.partition_point(|c| c.0 + CID_TTL <= t);
        let hi = cids.partition_point(|c| c.0 <= t).max(lo);
        cids[lo..hi]
            .iter()
            .map(|c| u64::from(c.1) + CID_OVERHEAD)
            .sum::<u64>()
            / 1024
    };
    let cid_peak_kb = samples.iter().map(|s| cid_kb_at(s.at)).max().unwrap_or(0);
    let Some((from, to)) = window else {
        return MemFigures {
            cid_peak_kb,
            allowed_kb: SLOPE_SLACK_KB,
            ..MemFigures::default()
        };
    };
    let len = to.saturating_duration_since(from);
    let hw = |t: Instant| {
        samples
            .iter()
            .filter(|s| s.at <= t)
            .map(|s| s.rss_kb)
            .max()
            .unwrap_or(0)
    };
    let a = from + len * 2 / 3;
    let growth_kb = hw(to).saturating_sub(hw(a));
    let cid_max = |lo: Option<Instant>, hi: Instant| {
        samples
            .iter()
            .filter(|s| s.at <= hi && lo.is_none_or(|lo| s.at > lo))
            .map(|s| cid_kb_at(s.at))
            .chain(std::iter::once(cid_kb_at(hi)))
            .max()
            .unwrap_or(0)
    };
    let cid_growth_kb = cid_max(Some(a), to).saturating_sub(cid_max(None, a));
    MemFigures {
        cid_peak_kb,
        sixths: (1..=6u32).map(|i| hw(from + len * i / 6)).collect(),
        window: (
            a.saturating_duration_since(started).as_secs(),
            to.saturating_duration_since(started).as_secs(),
        ),
        growth_kb,
        cid_growth_kb,
        allowed_kb: CID_FACTOR * cid_growth_kb + SLOPE_SLACK_KB,
    }
}

// ---------------------------------------------------------------------------
// Bursts
// ---------------------------------------------------------------------------

/// One burst: at `at`, the participants write their bursts into `room`.
#[derive(Debug, Clone)]
struct BurstPlan {
    k: usize,
    at: Instant,
    /// Senders report then, readers (not dropped by then) at `report`.
    settle: Instant,
    report: Instant,
    room: String,
    /// Plain pairs with (pair + k) % every == 0 take part.
    every: usize,
}

impl BurstPlan {
    fn takes_part(&self, id: usize) -> bool {
        role_of(id) == Role::Plain && (id / 2 + self.k).is_multiple_of(self.every)
    }

    /// Participants go quiet (and join the room) from then.
    fn prep(&self) -> Instant {
        self.at - BURST_PREP
    }
}

/// A sender's burst, as it saw it.
#[derive(Debug, Clone)]
struct BurstSend {
    k: usize,
    /// `ID.GEN`, as in its texts.
    key: String,
    ws: bool,
    n0: u64,
    count: u64,
    /// The whole write went out.
    written: bool,
    /// The connection lasted until the burst settled.
    survived: bool,
    rate_limited: bool,
    /// WebSocket: the counters acknowledged.
    acked: BTreeSet<u64>,
}

/// What one reader (in the room from before the burst until it settled, on
/// one connection) got of a burst: sender key -> counters, in arrival order.
#[derive(Debug, Clone)]
struct BurstSeen {
    k: usize,
    id: usize,
    ws: bool,
    /// The reader's own `ID.GEN` (its own burst, if any, is not its to check).
    key: String,
    got: HashMap<String, Vec<u64>>,
}

#[derive(Default)]
struct BurstVerdict {
    writes: usize,
    writes_line: usize,
    reports: usize,
    checked: usize,
    missing: usize,
    lost: usize,
    rate_limited: usize,
    /// Rate-limited senders whose burst itself was refused in part.
    refused: usize,
    examples: Vec<String>,
}

/// Every reader must have every message each sender got in: all of a line
/// sender's burst (its whole write went out, no `rate_limited`), exactly the
/// acknowledged ones of a WebSocket sender, or else whatever any reader got.
fn judge_bursts(sh: &Shared, plans: &[BurstPlan]) -> BurstVerdict {
    let sends = sh.burst_sends.lock().map(|s| s.clone()).unwrap_or_default();
    let seen = sh.burst_seen.lock().map(|s| s.clone()).unwrap_or_default();
    let mut v = BurstVerdict::default();
    for plan in plans {
        let sends: Vec<&BurstSend> = sends.iter().filter(|s| s.k == plan.k).collect();
        let seen: Vec<&BurstSeen> = seen.iter().filter(|s| s.k == plan.k).collect();
        v.writes += sends.len();
        v.writes_line += sends.iter().filter(|s| !s.ws).count();
        v.reports += seen.len();
        for s in &sends {
            let readers: Vec<&&BurstSeen> = seen.iter().filter(|r| r.key != s.key).collect();
            let got_any: BTreeSet<u64> = readers
                .iter()
                .filter_map(|r| r.got.get(&s.key))
                .flatten()
                .copied()
                .collect();
            if s.rate_limited {
                // The refusal may be for the sender's next message, read in
                // the same moment as a burst the server read late (flood
                // control goes by when the server reads): only a burst that
                // was not taken whole fails.
                v.rate_limited += 1;
                let whole = if s.ws {
                    s.acked.len() as u64 == s.count
                } else {
                    readers.is_empty() || (s.n0..s.n0 + s.count).all(|n| got_any.contains(&n))
                };
                if s.written && s.survived && !whole {
                    v.refused += 1;
                    if v.examples.len() < 6 {
                        v.examples.push(format!(
                            "burst {} in #{}: sender {} ({}) was rate-limited within its burst",
                            plan.k,
                            plan.room,
                            s.key,
                            if s.ws { "ws" } else { "line" },
                        ));
                    }
                }
            }
            let expected: BTreeSet<u64> = if s.ws && s.survived {
                s.acked.clone()
            } else if !s.ws && s.written && s.survived && !s.rate_limited {
                (s.n0..s.n0 + s.count).collect()
            } else {
                got_any.clone()
            };
            if s.ws && s.survived && s.written && !s.rate_limited && s.acked.len() as u64 != s.count
            {
                v.lost += 1;
                if v.examples.len() < 6 {
                    v.examples.push(format!(
                        "burst {} in #{}: ws sender {} had {} of its {} messages acknowledged",
                        plan.k,
                        plan.room,
                        s.key,
                        s.acked.len(),
                        s.count
                    ));
                }
            }
            for r in readers {
                let got: BTreeSet<u64> = r
                    .got
                    .get(&s.key)
                    .map(|g| g.iter().copied().collect())
                    .unwrap_or_default();
                v.checked += expected.len();
                let miss: Vec<u64> = expected.difference(&got).copied().collect();
                if !miss.is_empty() {
                    v.missing += miss.len();
                    if v.examples.len() < 6 {
                        v.examples.push(format!(
                            "burst {} in #{}: reader {} ({}) missed {} of {} messages from {} ({}), e.g. #{}",
                            plan.k,
                            plan.room,
                            r.id,
                            if r.ws { "ws" } else { "line" },
                            miss.len(),
                            expected.len(),
                            s.key,
                            if s.ws { "ws" } else { "line" },
                            miss[0]
                        ));
                    }
                }
            }
        }
    }
    v
}

/// Why a client was dropped as a slow consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropKind {
    /// It stalled on purpose (`Role::Slow`).
    Stalled,
    /// It paused reading for over GAP_OK not long before.
    Paused,
    /// It kept reading: the server should not have dropped it.
    Reading,
}

#[derive(Debug, Clone)]
struct DropRecord {
    kind: DropKind,
    ws: bool,
    /// It was watching a burst then.
    burst_room: bool,
}

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn inc(&self) {
        self.add(1);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn max(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Stats {
    said: Counter,
    said_line: Counter,
    dms: Counter,
    received: Counter,
    replayed: Counter,
    dms_received: Counter,
    acks: Counter,
    bytes_in: Counter,
    joins: Counter,
    leaves: Counter,
    nicks: Counter,
    floods: Counter,
    rate_limited: Counter,
    vanishes: Counter,
    resets: Counter,
    resumes: Counter,
    retries: Counter,
    retry_original: Counter,
    reconnects: Counter,
    stalls: Counter,
    slow_drops: Counter,
    slow_aborts: Counter,
    stalls_strict: Counter,
    history_refused: Counter,
    late_handshakes: Counter,
    catch_up_gaps: Counter,
    resume_retries: Counter,
    abandoned: Counter,
    burst_skipped: Counter,
    burst_bytes: Counter,
    drips: Counter,
    cuts: Counter,
    garbage: Counter,
    junk: Counter,
    // Messages that live, and search.
    ws_edits: Counter,
    ws_deletes: Counter,
    ws_reacts: Counter,
    reacts_on: Counter,
    reacts_off: Counter,
    /// Reactions refused with `no_such_message`: the target was deleted.
    reacts_gone: Counter,
    line_edits: Counter,
    line_deletes: Counter,
    line_reacts: Counter,
    line_reacts_gone: Counter,
    /// Changes answered (the event with the request's ref, or the line).
    amends_answered: Counter,
    /// Changes whose answer was lost with the connection.
    amends_lost: Counter,
    /// Change events of others received live: WebSocket, line.
    amend_events_ws: Counter,
    amend_events_line: Counter,
    /// Change entries in joins and catch-ups.
    amend_entries: Counter,
    ws_searches: Counter,
    line_searches: Counter,
    search_results: Counter,
    /// Searches for a word of an own message: found, rightly not found.
    search_found: Counter,
    search_absent: Counter,
    // TLS.
    /// ClientHellos of whole handshakes begun (clients' and junk's).
    tls_attempts: Counter,
    /// Handshakes the client finished, and of them TLS 1.2.
    tls_handshakes: Counter,
    tls12_handshakes: Counter,
    /// TLS connections that got a decrypted byte from the server (so the
    /// server finished its handshake).
    tls_heard: Counter,
    /// Streams the server ended with `close_notify`, and with a bare TCP end.
    tls_close_notify: Counter,
    tls_bare_ends: Counter,
    /// Vanishes over TLS that sent `close_notify` first.
    tls_polite_closes: Counter,
    /// TLS junk: ClientHellos cut short (then EOF), stalled handshakes (and
    /// those the server closed, the longest it took), TLS inside TLS.
    tls_junk_cut: Counter,
    tls_junk_stalled: Counter,
    tls_junk_stall_closed: Counter,
    tls_junk_stall_ms: Counter,
    tls_junk_inner: Counter,
}

/// A WebSocket reaction: (room, target, emoji, reactor: "ID:SESSION").
type ReactKey = (String, u64, String, String);

/// What the store may show at the end for a message that was edited or
/// deleted (more than one possibility when the answer to a change was lost
/// with its connection).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Its text is this (as the server stores it).
    Text(String),
    Deleted,
}

/// `fates` of `key` now hold `next` (`sure`), or may (a lost answer):
/// `prior` is what it held before any change was recorded.
fn set_fate<K: std::hash::Hash + Eq>(
    fates: &Mutex<HashMap<K, Vec<Fate>>>,
    key: K,
    prior: Fate,
    next: Fate,
    sure: bool,
) {
    if let Ok(mut f) = fates.lock() {
        let e = f.entry(key).or_insert_with(|| vec![prior]);
        if sure {
            *e = vec![next];
        } else if !e.contains(&next) {
            e.push(next);
        }
    }
}

struct Shared {
    addr: SocketAddr,
    /// Every process's address (the first is `addr`).
    addrs: Vec<SocketAddr>,
    /// The TLS clients' configurations (None: no TLS in this run).
    tls: Option<Arc<TlsClients>>,
    /// The server's TLS handshake deadline (--header-timeout).
    handshake_deadline: Duration,
    /// Threads holding stalled TLS handshakes (TLS junk) until the server
    /// closes them.
    tls_stalls: Mutex<Vec<thread::JoinHandle<()>>>,
    rooms: Vec<String>,
    /// The server shares its chat through Redis (`--redis`).
    shared: bool,
    /// The confirmed nick of each client (empty while it has none).
    nicks: Mutex<Vec<String>>,
    /// (room, seq, text) of every acknowledged WebSocket message.
    acks: Mutex<Vec<(String, u64, String)>>,
    /// Category -> (count, first examples).
    fails: Mutex<BTreeMap<&'static str, (u64, Vec<String>)>>,
    stats: Stats,
    burst_sends: Mutex<Vec<BurstSend>>,
    burst_seen: Mutex<Vec<BurstSeen>>,
    /// (when, text bytes) of every `cid` sent (not retries): what the
    /// server's `cid` logs may hold.
    cid_log: Mutex<Vec<(Instant, u32)>>,
    /// The last time a client may have left a session held.
    last_abandon: Mutex<Option<Instant>>,
    drops: Mutex<Vec<DropRecord>>,
    /// (room, seq) -> (kind: 'e', 'd' or 'r', target) of every edit, delete
    /// and reaction a WebSocket client was told of (live, as the answer to
    /// its request, or in a join or catch-up): these seqs are no messages.
    changes: Mutex<HashMap<(String, u64), (char, u64)>>,
    /// Acknowledged WebSocket messages that were edited or deleted:
    /// (room, seq) -> what the store may show.
    ws_fates: Mutex<HashMap<(String, u64), Vec<Fate>>>,
    /// Line messages that were edited or deleted: (room, "ID.GEN", n) ->
    /// what the store may show.
    line_fates: Mutex<HashMap<(String, String, u64), Vec<Fate>>>,
    /// WebSocket reactions: (room, target, emoji, reactor) -> what the
    /// store may show: the nick that put it there, or None (off).
    reacts: Mutex<HashMap<ReactKey, Vec<Option<String>>>>,
    /// Room -> changes asked for whose seq no WebSocket client may have
    /// been told: line clients' (`/edit`, `/delete`, `/react`), and
    /// WebSocket ones whose answer was lost with the connection.
    unseen_changes: Mutex<HashMap<String, u64>>,
    /// (room, seq) -> which page: seqs a complete page (a `joined`, a
    /// catch-up, a history page) skipped, so changes, though the client
    /// was told nothing of them: the store must hold no message there.
    /// With it, for a `joined`: which block, where the hole lies, when
    /// (seconds into the run) and on which process.
    skipped: Mutex<HashMap<(String, u64), String>>,
    started: Instant,
}

impl Shared {
    fn fail(&self, category: &'static str, detail: String) {
        if std::env::var_os("SOAK_ALL").is_some() {
            // Every problem, not only the first few of each kind.
            eprintln!("soak: problem {category}: {detail}");
        }
        if let Ok(mut f) = self.fails.lock() {
            let e = f.entry(category).or_default();
            e.0 += 1;
            if e.1.len() < 6 {
                e.1.push(detail);
            }
        }
    }

    /// A client may have left its session held (for --resume-grace).
    fn abandoned(&self) {
        self.stats.abandoned.inc();
        if let Ok(mut a) = self.last_abandon.lock() {
            *a = Some(Instant::now());
        }
    }

    fn log_cid(&self, text_bytes: usize) {
        if let Ok(mut c) = self.cid_log.lock() {
            c.push((Instant::now(), text_bytes as u32));
        }
    }

    /// A change entry as a client was told of it; every client must be
    /// told the same of a seq.
    fn note_change(&self, room: &str, seq: u64, kind: char, target: u64) -> Result<(), String> {
        let Ok(mut c) = self.changes.lock() else {
            return Ok(());
        };
        match c.get(&(room.to_string(), seq)) {
            Some(&(k, t)) if (k, t) != (kind, target) => Err(format!(
                "#{room} seq {seq} is a change '{kind}' of {target} here, '{k}' of {t} to another client"
            )),
            Some(_) => Ok(()),
            None => {
                c.insert((room.to_string(), seq), (kind, target));
                Ok(())
            }
        }
    }

    /// A change in `room` whose seq may never be seen by anyone.
    fn unseen_change(&self, room: &str) {
        if let Ok(mut u) = self.unseen_changes.lock() {
            *u.entry(room.to_string()).or_default() += 1;
        }
    }

    /// `reactor`'s reaction `emoji` on `target` is now `next` (`sure`), or
    /// may be (a lost answer); it was `prior` before.
    fn set_react(&self, key: ReactKey, prior: Option<String>, next: Option<String>, sure: bool) {
        if let Ok(mut r) = self.reacts.lock() {
            let e = r.entry(key).or_insert_with(|| vec![prior]);
            if sure {
                *e = vec![next];
            } else if !e.contains(&next) {
                e.push(next);
            }
        }
    }

    fn failure_count(&self) -> u64 {
        self.fails
            .lock()
            .map(|f| f.values().map(|(n, _)| n).sum())
            .unwrap_or(0)
    }

    fn set_nick(&self, id: usize, nick: &str) {
        if let Ok(mut n) = self.nicks.lock() {
            n[id] = nick.to_string();
        }
    }

    /// Someone else's confirmed nick, if any.
    fn other_nick(&self, id: usize, rng: &mut Rng) -> Option<String> {
        let n = self.nicks.lock().ok()?;
        for _ in 0..8 {
            let i = rng.below(n.len());
            if i != id && !n[i].is_empty() {
                return Some(n[i].clone());
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------
// Texts: what a sender sends is a pure function of its tag
// ---------------------------------------------------------------------------

const PIECES: &[&str] = &[
    "ab",
    "xyz",
    " ",
    "é",
    "✓",
    "日本",
    "\"",
    "\\",
    "<b>",
    "&amp;",
    "\t",
    "\u{1}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "{}",
    "%s",
    "😀",
    "ß",
    "0",
    "[12:00:00]",
    "!!! ",
    "***",
];

/// `mark`: "" (a whole message), "~" (half-sent) or "+K" (burst K, with a
/// big filler).
fn header(id: usize, gen: u32, n: u64, mark: &str, nick: &str, kind: &str, dest: &str) -> String {
    format!("soak {id}.{gen} #{n}{mark} @{nick} {kind}:{dest} ")
}

/// A burst message's filler: the text comes to 3,850-3,940 bytes (under
/// --max-message 4000 and, as a line, --max-line 4096).
fn big_filler(id: usize, gen: u32, n: u64, head_len: usize) -> String {
    let mut r = Rng::new((id as u64) << 40 ^ u64::from(gen) << 32 ^ n ^ 0xB0B5_7000_0000_0000);
    let target = 3850 + r.below(90);
    let mut s = String::new();
    while head_len + s.len() < target - 8 {
        s.push_str(PIECES[r.below(PIECES.len())]);
    }
    s.push('.');
    s
}

/// A burst message: what to send.
fn compose_burst(id: usize, gen: u32, n: u64, k: usize, nick: &str, room: &str) -> String {
    let head = header(id, gen, n, &format!("+{k}"), nick, "in", room);
    let filler = big_filler(id, gen, n, head.len());
    head + &filler
}

/// The word only this text holds (`e`: the edit, 0 for the text as first
/// sent): a search for it finds exactly this message, or nothing once the
/// message is deleted or edited to say something else. Letters and digits
/// only (one token to the index), and no such word is the start of another
/// (the last word of a query is also a prefix).
fn word(id: usize, gen: u32, n: u64, e: u32) -> String {
    if e == 0 {
        format!("w{id}x{gen}x{n}q")
    } else {
        format!("w{id}x{gen}x{n}e{e}q")
    }
}

fn filler(id: usize, gen: u32, n: u64) -> String {
    let mut r = Rng::new((id as u64) << 40 ^ u64::from(gen) << 32 ^ n);
    let len = if r.below(25) == 0 {
        100 + r.below(250)
    } else {
        r.below(20)
    };
    let mut s = word(id, gen, n, 0);
    s.push(' ');
    for _ in 0..len {
        s.push_str(PIECES[r.below(PIECES.len())]);
    }
    s.push('.');
    s
}

/// Edit `e` (1, 2, ...) of message `#n`: a filler of its own, starting
/// with its own word.
fn edit_filler(id: usize, gen: u32, n: u64, e: u32) -> String {
    let mut r = Rng::new(
        (id as u64) << 40 ^ u64::from(gen) << 32 ^ n ^ u64::from(e) << 24 ^ 0xED17_0000_0000_0000,
    );
    let mut s = word(id, gen, n, e);
    s.push(' ');
    for _ in 0..r.below(12) {
        s.push_str(PIECES[r.below(PIECES.len())]);
    }
    s.push('.');
    s
}

/// The text of edit `e` of message `#n` (sent under `nick`, of `kind`, to
/// `dest`): its header marked `#N=E`, so a receiver knows which message it
/// now stands for and that it is the `e`th edit. What to send and what
/// receivers must see.
fn compose_edit(
    id: usize,
    gen: u32,
    n: u64,
    e: u32,
    nick: &str,
    kind: &str,
    dest: &str,
) -> (String, String) {
    let sent = header(id, gen, n, &format!("={e}"), nick, kind, dest) + &edit_filler(id, gen, n, e);
    let expected = sanitize(&sent);
    (sent, expected)
}

/// What the server makes of a text: control characters but tab become U+FFFD.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// The text to send and what receivers must see.
fn compose(id: usize, gen: u32, n: u64, nick: &str, kind: &str, dest: &str) -> (String, String) {
    let sent = header(id, gen, n, "", nick, kind, dest) + &filler(id, gen, n);
    let expected = sanitize(&sent);
    (sent, expected)
}

#[derive(Debug)]
struct Tag {
    key: String,
    n: u64,
    nick: String,
    kind: String,
    dest: String,
    /// A burst message: the burst.
    burst: Option<usize>,
    /// An edit's text (`#N=E`): E; 0 for a text as first sent.
    edit: u32,
    /// A half-sent line (`#N~`).
    cut: bool,
}

impl Tag {
    /// The sender's `ID` and `GEN`.
    fn id_gen(&self) -> (usize, u32) {
        self.key
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .unwrap_or((usize::MAX, 0))
    }
}

/// Checks that `text` is exactly what its sender sent (a prefix of it for a
/// half-sent line, marked `#N~`), and returns its tag.
fn verify(text: &str) -> Result<Tag, String> {
    let mut parts = text.splitn(6, ' ');
    let (Some("soak"), Some(key), Some(num), Some(nick), Some(kd)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("not a soak text".into());
    };
    let (id, gen) = key
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<u32>().ok()?)))
        .ok_or("bad sender tag")?;
    let num = num.strip_prefix('#').ok_or("bad counter")?;
    let (num, cut, burst, edit) = if let Some(n) = num.strip_suffix('~') {
        (n, true, None, 0)
    } else if let Some((n, k)) = num.split_once('+') {
        let k = k.parse::<usize>().map_err(|_| "bad burst")?;
        (n, false, Some(k), 0)
    } else if let Some((n, e)) = num.split_once('=') {
        let e = e.parse::<u32>().ok().filter(|&e| e > 0).ok_or("bad edit")?;
        (n, false, None, e)
    } else {
        (num, false, None, 0)
    };
    let n: u64 = num.parse().map_err(|_| "bad counter")?;
    let nick = nick.strip_prefix('@').ok_or("bad nick")?;
    let (kind, dest) = kd.split_once(':').ok_or("bad kind")?;
    let mark = match (cut, burst, edit) {
        (true, _, _) => "~".to_string(),
        (false, Some(k), _) => format!("+{k}"),
        (false, None, 0) => String::new(),
        (false, None, e) => format!("={e}"),
    };
    let head = header(id, gen, n, &mark, nick, kind, dest);
    let body = match (burst, edit) {
        (Some(_), _) => big_filler(id, gen, n, head.len()),
        (None, 0) => filler(id, gen, n),
        (None, e) => edit_filler(id, gen, n, e),
    };
    let full = sanitize(&(head.clone() + &body));
    if cut {
        if text.len() <= head.len() || !full.starts_with(text) {
            return Err("half-sent text is not a prefix of what was sent".into());
        }
    } else if text != full {
        return Err(format!("differs from what was sent ({full:?})"));
    }
    Ok(Tag {
        key: key.to_string(),
        n,
        nick: nick.to_string(),
        kind: kind.to_string(),
        dest: dest.to_string(),
        burst,
        edit,
        cut,
    })
}

/// `[HH:MM:SS] rest` -> `rest`.
fn strip_clock(l: &str) -> Option<&str> {
    let b = l.as_bytes();
    let ok = b.len() >= 11
        && b[0] == b'['
        && b[3] == b':'
        && b[6] == b':'
        && b[9] == b']'
        && b[10] == b' '
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit());
    ok.then(|| &l[11..])
}

const ERROR_CODES: &[&str] = &[
    "bad_request",
    "bad_json",
    "bad_utf8",
    "unknown_type",
    "unknown_command",
    "nick_invalid",
    "nick_taken",
    "room_invalid",
    "not_in_room",
    "no_such_user",
    "too_long",
    "too_large",
    "bad_image",
    "rate_limited",
    "server_full",
    "slow_consumer",
    "nick_registered",
    "login_failed",
    "login_required",
    "insecure",
    "not_permitted",
    "banned",
    "muted",
    "invite_only",
    "no_such_message",
    "edit_window",
    "unavailable",
];

/// The emoji WebSocket clients react with: each reactor knows whether its
/// reaction is on, so the store's `reactions` of these are checked exactly.
const WS_EMOJI: &[&str] = &["👍", "🎉", "👀", "✅", "👩‍💻", "❤️"];
/// The emoji line clients react with: `/react NICK EMOJI` names a nick,
/// and the server picks that nick's last message, so only their shape is
/// checked.
const LINE_EMOJI: &[&str] = &["🔥", "+1"];
/// A WebSocket client edits and deletes only messages acknowledged within
/// this (the server's `--edit-window` is 900 s).
const EDIT_RECENT: Duration = Duration::from_secs(600);
/// A search looks for a message sent at least this long before.
const SEARCH_AFTER: Duration = Duration::from_secs(2);
/// Own messages a client remembers for edits, deletes and searches.
const OWN_KEEP: usize = 40;
/// Entries of a room a WebSocket client remembers (seq -> message or change).
const VIEW_KEEP: usize = 3000;
/// Received messages a client remembers as targets of its reactions.
const RECENT_KEEP: usize = 30;
/// A reaction refused with `no_such_message` (its target was deleted):
/// the delete must reach a client that stays in the room within this.
const GONE_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Flooder,
    Slow,
    Vanisher,
    Vandal,
}

/// Roles by pairs of ids, so that each comes in both protocols.
fn role_of(id: usize) -> Role {
    match (id / 2) % 20 {
        1 | 11 => Role::Flooder,
        3 => Role::Slow,
        2 | 7 | 12 | 17 => Role::Vanisher,
        5 | 15 => Role::Vandal,
        _ => Role::Plain,
    }
}

type Ws = tungstenite::WebSocket<Stream>;

/// A burst this client reads: it was in the room on connection `gen` when
/// the participants went quiet.
struct Watch {
    k: usize,
    room: String,
    gen: u32,
    report: Instant,
    got: HashMap<String, Vec<u64>>,
}

/// This client's own burst.
struct OwnBurst {
    k: usize,
    gen: u32,
    settle: Instant,
    n0: u64,
    written: bool,
    rate_limited: bool,
    /// cid -> counter, and the counters acknowledged.
    cids: HashMap<String, u64>,
    acked: BTreeSet<u64>,
}

enum Conn {
    None,
    Line { stream: Stream, buf: Vec<u8> },
    Ws(Box<Ws>),
}

/// A message a WebSocket client sent with a `cid`.
struct Sent {
    room: String,
    expected: String,
}

/// A message this client sent (acknowledged, for a WebSocket client), as
/// it is now, for its edits, deletes and searches.
#[derive(Debug, Clone)]
struct Own {
    room: String,
    /// Its seq (WebSocket; a line client never learns it: 0).
    seq: u64,
    /// The `GEN` and `N` of its tag, and the nick it was sent under.
    gen: u32,
    n: u64,
    nick: String,
    action: bool,
    /// Its current text: edit `edit` (0: as sent).
    edit: u32,
    deleted: bool,
    /// WebSocket: the session that sent it (only it may edit or delete
    /// it); line: `line` and the connection's generation.
    session: String,
    at: Instant,
    /// An edit or delete of it is in flight.
    busy: bool,
    /// A change of it may or may not have happened (its answer was lost):
    /// left alone from then on.
    unsure: bool,
}

impl Own {
    fn kind(&self) -> &'static str {
        if self.action {
            "me"
        } else {
            "in"
        }
    }
}

/// A WebSocket request of the new kinds, in flight, by its ref.
#[derive(Debug, Clone)]
enum Asked {
    Edit {
        room: String,
        seq: u64,
        /// Its tag's counter, and what it said before.
        n: u64,
        prior: String,
        e: u32,
        /// The text the server must answer with.
        text: String,
    },
    Delete {
        room: String,
        seq: u64,
        n: u64,
        prior: String,
    },
    React {
        room: String,
        seq: u64,
        emoji: String,
        /// The nick it was asked under (the event's `from`), and the
        /// reactor (client and session).
        nick: String,
        who: String,
        /// Whether the reaction must come out on (None: not known).
        on: Option<bool>,
        /// The target is this client's own message (it cannot be deleted
        /// behind its back).
        mine: bool,
        /// The room's view epoch, if the client was sure then that the
        /// target was not deleted: a delete since must reach it.
        watch: Option<u64>,
    },
    Search(Looking),
}

/// A search: what was asked for and what must come back.
#[derive(Debug, Clone)]
struct Looking {
    /// None: every room the client is in.
    room: Option<String>,
    q: String,
    /// Some: the client's own message (tag key, n, edit) that must be the
    /// only result (`found`), or that must not be found.
    own: Option<(String, u64, u32)>,
    seq: u64,
    found: bool,
}

/// A line request of the new kinds, in flight; the server answers them in
/// order.
#[derive(Debug, Clone)]
enum LineAsked {
    Edit {
        room: String,
        /// The message's tag ("ID.GEN", N) and what it said before.
        key: String,
        n: u64,
        prior: String,
        e: u32,
        text: String,
    },
    Delete {
        room: String,
        key: String,
        n: u64,
        prior: String,
        nick: String,
    },
    React {
        room: String,
        emoji: String,
    },
    Search(Looking),
}

/// A line client reading the results of its `/search`.
struct SearchBlock {
    look: Looking,
    room: String,
    expect: usize,
    got: usize,
    /// The lines that held the own message looked for.
    hits: usize,
}

/// What a WebSocket client knows of one entry of a room's history.
#[derive(Debug, Clone)]
enum Known {
    Msg(MsgView),
    /// An edit, delete or reaction (told, or a seq a complete page
    /// skips: which block said so).
    Change(&'static str),
}

/// A message as this client knows it.
#[derive(Debug, Clone, Default)]
struct MsgView {
    /// Its tag's key and counter (unknown for a message only ever seen
    /// deleted).
    tag: Option<(String, u64)>,
    nick: String,
    edit: u32,
    deleted: bool,
    /// `edit`, `deleted` and `reactions` are what the message is now: set
    /// from a page or seen live, and every change since seen live (not so
    /// after a resume, whose replays may repeat what was seen).
    sure: bool,
    /// Emoji (of WS_EMOJI) -> the nicks that put it there.
    reactions: BTreeMap<String, Vec<String>>,
}

/// A WebSocket client's knowledge of one room: seq -> entry.
#[derive(Default)]
struct View {
    known: BTreeMap<u64, Known>,
    /// Made anew with each join (a refused reaction's delete is awaited
    /// only while the view lasts).
    epoch: u64,
}

/// A WebSocket client's own reaction (this session's) on (room, seq, emoji).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mine {
    /// On, put there under this nick.
    On(String),
    Off,
    /// Its answer was lost: left alone.
    Unsure,
}

/// After a resume: the rooms the client believes it is in, and the rooms
/// the server replayed.
struct ResumeCheck {
    expected: BTreeSet<String>,
    seen: BTreeSet<String>,
    uncertain: bool,
}

/// How a received chat message counts for ordering.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Live: must be newer than anything seen from its sender there.
    Live,
    /// A replay (join, history): may repeat what was seen.
    Replay,
    /// A search result: checked, not counted as received.
    Found,
}

struct Client {
    /// Where a seq a block left out was inferred (for reports).
    hole_origin: HashMap<(String, u64), String>,
    /// The block being read, for `hole_origin`.
    block_desc: String,
    id: usize,
    /// The process this connection went to.
    addr: SocketAddr,
    ws: bool,
    /// Plain, or TLS on every connection.
    tls: Transport,
    role: Role,
    sh: Arc<Shared>,
    rng: Rng,
    conn: Conn,
    scratch: Vec<u8>,
    /// Connection generation, 1 for the first.
    gen: u32,
    /// The first generation of this wave's client, minus one.
    gen_base: u32,
    /// When this client says goodbye.
    deadline: Instant,
    /// The client's message counter (over all its connections).
    n: u64,
    /// The nick confirmed by the stream so far.
    nick: String,
    /// The nick the server will use for what we send next.
    nick_out: String,
    /// Nick changes asked for and not yet confirmed, oldest first.
    nick_asked: VecDeque<String>,
    nick_k: u32,
    /// Rooms confirmed by the stream.
    rooms: BTreeSet<String>,
    /// Rooms with a join or leave in flight.
    busy: HashSet<String>,
    /// Rooms with a `leave` in flight: a `joined` for one of them (a
    /// resume's replay, the answer to a re-join sent before the leave)
    /// does not make it free to talk in, only the `left` does.
    leaving: HashSet<String>,
    /// Line: the room plain text goes to, when known.
    current: Option<String>,
    /// (sender tag, room or "dm") -> highest counter seen.
    last: HashMap<(String, String), u64>,
    /// WebSocket: room -> last seq seen.
    cursor: HashMap<String, u64>,
    /// What the resume's own `joined` said of each room, and when.
    resume_joined: HashMap<String, (u64, Instant)>,
    // Per connection.
    closed: bool,
    close_code: Option<u16>,
    write_failed: bool,
    slow_dropped: bool,
    /// This connection stalled for long (a reset or cut stream is fine).
    long_stall: bool,
    /// Until then, a drop must come with an intact goodbye.
    short_stall_until: Option<Instant>,
    end_reason: Option<String>,
    violated: bool,
    flooded: bool,
    garbage: bool,
    bye: bool,
    flood_check: Option<Instant>,
    session: Option<String>,
    sent: HashMap<String, Sent>,
    must_ack: HashSet<String>,
    retry: Option<(String, Value)>,
    retry_cids: HashSet<String>,
    history_block: Option<(String, usize, usize)>,
    resume_check: Option<ResumeCheck>,
    // Schedule.
    next_action: Instant,
    next_special: Instant,
    // Bursts.
    plan: Arc<Vec<BurstPlan>>,
    /// The next burst in `plan`, and whether its preparation is done.
    next_burst: usize,
    burst_prepped: bool,
    /// This client takes part in the next burst (it went quiet in time).
    burst_ready: bool,
    /// Nothing but reading until then (a burst's quiet time).
    quiet_until: Option<Instant>,
    watches: Vec<Watch>,
    own_burst: Option<OwnBurst>,
    /// Bytes written without blocking (a burst), from `outq_pos` on.
    outq: Vec<u8>,
    outq_pos: usize,
    // Reading, for telling a reader from a staller.
    /// When the last read call returned (or the connection began).
    read_idle_since: Instant,
    /// Recent pauses between reads over GAP_NOTE: (when it ended, length).
    gaps: VecDeque<(Instant, Duration)>,
    /// The last stall of this connection began then.
    stall_mark: Option<Instant>,
    /// How long that stall went without reading.
    stall_unread: Option<Duration>,
    /// Answers still due after a stall.
    stall_answers: usize,
    // Resuming.
    /// The last resume failed: the next connection tries it again.
    resume_again: bool,
    vanished_at: Option<Instant>,
    /// The last WebSocket requests and answers, in short: printed with an
    /// unprovoked error, so that a rare failure can be followed.
    trail: VecDeque<String>,
    // Messages that live, and search.
    /// This client uses them (most do; flooders do not).
    lives: bool,
    /// Own messages, oldest first.
    own: VecDeque<Own>,
    /// WebSocket: requests of the new kinds in flight, by ref.
    asked: HashMap<String, Asked>,
    asked_k: u64,
    /// WebSocket: this session's reactions.
    my_reacts: HashMap<(String, u64, String), Mine>,
    /// Messages received live lately: (room, seq (0 on a line), from,
    /// the room's view epoch then).
    recent: VecDeque<(String, u64, String, u64)>,
    /// WebSocket: each room's entries as this client knows them.
    views: HashMap<String, View>,
    view_epoch: u64,
    /// WebSocket: reactions refused as `no_such_message` whose target's
    /// delete has not come yet: (room, target, view epoch, until when).
    gone_checks: Vec<(String, u64, u64, Instant)>,
    /// Line: requests of the new kinds in flight, oldest first.
    line_asked: VecDeque<LineAsked>,
    /// Line: this connection may have had a message refused (a flood or a
    /// burst went out, or `rate_limited` came): which of its messages is
    /// "the last" is then not known, so no `/edit` or `/delete`.
    line_unsure: bool,
    search_block: Option<SearchBlock>,
    /// (tag key, n) -> the latest edit seen of that message.
    edits_seen: HashMap<(String, u64), u32>,
}

/// How many requests and answers a WebSocket client remembers.
const TRAIL: usize = 40;

impl Client {
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: usize,
        ws: bool,
        tls: Transport,
        sh: Arc<Shared>,
        mut rng: Rng,
        deadline: Instant,
        gen_base: u32,
        plan: Arc<Vec<BurstPlan>>,
    ) -> Client {
        let role = role_of(id);
        let now = Instant::now();
        let first_special = now + rng.ms(1000, 4000);
        let addr = sh.addrs[id % sh.addrs.len()];
        Client {
            id,
            ws,
            tls,
            role,
            sh,
            rng,
            conn: Conn::None,
            scratch: vec![0; 32 * 1024],
            gen: gen_base,
            gen_base,
            deadline,
            n: 0,
            addr,
            hole_origin: HashMap::new(),
            block_desc: String::new(),
            nick: String::new(),
            nick_out: String::new(),
            nick_asked: VecDeque::new(),
            nick_k: 0,
            rooms: BTreeSet::new(),
            busy: HashSet::new(),
            leaving: HashSet::new(),
            current: None,
            last: HashMap::new(),
            cursor: HashMap::new(),
            resume_joined: HashMap::new(),
            closed: false,
            close_code: None,
            write_failed: false,
            slow_dropped: false,
            long_stall: false,
            short_stall_until: None,
            end_reason: None,
            violated: false,
            flooded: false,
            garbage: false,
            bye: false,
            flood_check: None,
            session: None,
            sent: HashMap::new(),
            must_ack: HashSet::new(),
            retry: None,
            retry_cids: HashSet::new(),
            history_block: None,
            resume_check: None,
            next_action: now,
            next_special: first_special,
            plan,
            next_burst: 0,
            burst_prepped: false,
            burst_ready: false,
            quiet_until: None,
            watches: Vec::new(),
            own_burst: None,
            outq: Vec::new(),
            outq_pos: 0,
            read_idle_since: now,
            gaps: VecDeque::new(),
            stall_mark: None,
            stall_unread: None,
            stall_answers: 0,
            resume_again: false,
            trail: VecDeque::new(),
            vanished_at: None,
            lives: role != Role::Flooder && (id / 2) % 5 != 4,
            own: VecDeque::new(),
            asked: HashMap::new(),
            asked_k: 0,
            my_reacts: HashMap::new(),
            recent: VecDeque::new(),
            views: HashMap::new(),
            view_epoch: 0,
            gone_checks: Vec::new(),
            line_asked: VecDeque::new(),
            line_unsure: false,
            search_block: None,
            edits_seen: HashMap::new(),
        }
    }

    /// The client as a report names it, with its connection's local
    /// address: the server's debug log (`SOAK_SERVER_LOG`) names
    /// connections by their peer address, so a failure can be followed
    /// into it.
    fn who(&self) -> String {
        let local = self.socket().and_then(|s| s.local_addr().ok());
        format!(
            "client {} ({}{} {:?}, gen {}, nick {}, from {})",
            self.id,
            if self.ws { "ws" } else { "line" },
            match self.tls {
                Transport::Plain => "",
                Transport::Tls => " over TLS",
                Transport::Tls12 => " over TLS 1.2",
            },
            self.role,
            self.gen,
            self.nick,
            local.map_or_else(|| "?".to_string(), |a| a.to_string())
        )
    }

    fn fail(&self, category: &'static str, detail: String) {
        let who = self.who();
        self.sh.fail(category, format!("{who}: {detail}"));
    }

    fn run(mut self, start_at: Instant) {
        let now = Instant::now();
        if start_at > now {
            thread::sleep(start_at - now);
        }
        let deadline = self.deadline;
        while Instant::now() < deadline {
            if matches!(self.conn, Conn::None) || self.closed {
                if !matches!(self.conn, Conn::None) {
                    self.on_connection_ended();
                }
                let resume = self.resume_again;
                if resume {
                    self.sh.stats.resume_retries.inc();
                }
                if !self.connect(resume) {
                    self.pause(Duration::from_millis(500));
                }
                continue;
            }
            let now = Instant::now();
            self.check_flood(now);
            self.burst_tick(now);
            self.settle(now, false);
            let now = Instant::now();
            let quiet = self.quiet_until.filter(|&q| now < q);
            // A reader watching a burst keeps reading: no stall, vanish,
            // flood or garbage until it has reported.
            let watching = self.watches.iter().any(|w| w.gen == self.gen);
            if quiet.is_none() && !watching && now >= self.next_special {
                self.special();
                continue;
            }
            if quiet.is_none() && now >= self.next_action {
                self.action();
                self.next_action = Instant::now() + self.rng.ms(800, 3000);
                continue;
            }
            let mut wake = deadline.min(self.next_burst_event());
            if let Some(w) = self.watches.iter().map(|w| w.report).min() {
                wake = wake.min(w);
            }
            if let Some(o) = &self.own_burst {
                wake = wake.min(o.settle);
            }
            match quiet {
                Some(q) => wake = wake.min(q),
                None => wake = wake.min(self.next_action),
            }
            if quiet.is_none() && !watching {
                wake = wake.min(self.next_special);
            }
            self.pump(
                wake.saturating_duration_since(now)
                    .clamp(Duration::from_millis(1), Duration::from_millis(300)),
            );
        }
        self.finish();
    }

    /// Waits without a connection (nothing to read).
    fn pause(&mut self, d: Duration) {
        thread::sleep(d);
    }

    // -- bursts -----------------------------------------------------------

    fn next_burst_event(&self) -> Instant {
        match self.plan.get(self.next_burst) {
            Some(b) if self.burst_prepped => b.at,
            Some(b) => b.prep(),
            None => self.deadline,
        }
    }

    /// A burst's preparation (readers start watching, participants go quiet
    /// and join), then its moment (participants write).
    fn burst_tick(&mut self, now: Instant) {
        while let Some(b) = self.plan.get(self.next_burst).cloned() {
            if !self.burst_prepped {
                if now < b.prep() {
                    return;
                }
                self.burst_prepped = true;
                self.burst_prep(&b, now);
            }
            if now < b.at {
                return;
            }
            self.burst_prepped = false;
            self.next_burst += 1;
            if b.takes_part(self.id) {
                self.burst_write(&b);
            }
        }
    }

    fn connected(&self) -> bool {
        !matches!(self.conn, Conn::None) && !self.closed
    }

    fn burst_prep(&mut self, b: &BurstPlan, now: Instant) {
        let in_room = self.rooms.contains(&b.room) && !self.busy.contains(&b.room);
        // Only before the burst: later (after a long stall, say) some of it
        // may have been read already.
        if self.connected() && in_room && now < b.at {
            self.watches.push(Watch {
                k: b.k,
                room: b.room.clone(),
                gen: self.gen,
                report: b.report,
                got: HashMap::new(),
            });
        }
        if !b.takes_part(self.id) {
            return;
        }
        // Late (a long action or reconnect): the bucket may not be full.
        self.burst_ready = now <= b.prep() + Duration::from_millis(500);
        self.quiet_until = Some(b.at + BURST_AFTER);
        if self.connected() && !self.rooms.contains(&b.room) && !self.busy.contains(&b.room) {
            self.join(b.room.clone());
        }
    }

    /// The whole flood-control burst in one write, without blocking.
    fn burst_write(&mut self, b: &BurstPlan) {
        let room = b.room.clone();
        let ready = std::mem::take(&mut self.burst_ready);
        if !ready
            || !self.connected()
            || !self.rooms.contains(&room)
            || self.busy.contains(&room)
            || self.own_burst.is_some()
            || !self.outq.is_empty()
        {
            self.sh.stats.burst_skipped.inc();
            return;
        }
        let mut bytes: Vec<u8> = Vec::new();
        if !self.ws {
            bytes.extend_from_slice(self.line_to(&room).as_bytes());
        }
        let n0 = self.n + 1;
        let mut cids = HashMap::new();
        for _ in 0..BURST_MSGS {
            self.n += 1;
            let text = compose_burst(self.id, self.gen, self.n, b.k, &self.nick_out, &room);
            self.sh.stats.said.inc();
            if self.ws {
                let cid = format!("b{}-{}", self.id, self.n);
                let req = json!({"type":"say","room":room,"text":text,"cid":cid,"ref":cid});
                self.sh.log_cid(text.len());
                self.sent.insert(
                    cid.clone(),
                    Sent {
                        room: room.clone(),
                        expected: sanitize(&text),
                    },
                );
                self.must_ack.insert(cid.clone());
                cids.insert(cid, self.n);
                let mask = (self.rng.next() as u32).to_le_bytes();
                bytes.extend_from_slice(&natter::proto::ws::encode_client_frame(
                    true,
                    0,
                    0x1,
                    req.to_string().as_bytes(),
                    mask,
                ));
            } else {
                self.sh.stats.said_line.inc();
                bytes.extend_from_slice(text.as_bytes());
                bytes.push(b'\n');
            }
        }
        self.sh.stats.burst_bytes.add(bytes.len() as u64);
        // Part of a burst may be refused (judged with the readers'
        // reports): this connection's last message is not known for sure.
        self.line_unsure = true;
        self.own_burst = Some(OwnBurst {
            k: b.k,
            gen: self.gen,
            settle: b.settle,
            n0,
            written: false,
            rate_limited: false,
            cids,
            acked: BTreeSet::new(),
        });
        self.outq = bytes;
        self.outq_pos = 0;
        self.flush_out();
    }

    /// Writes what the socket takes of `outq` without blocking; true once
    /// it is all out.
    fn flush_out(&mut self) -> bool {
        while self.outq_pos < self.outq.len() {
            let res = match conn_stream(&mut self.conn) {
                Some(s) => s.send_now(&self.outq[self.outq_pos..]),
                None => return false,
            };
            match res {
                Ok(n) => self.outq_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.end_reason = Some(format!("write: {e}"));
                    self.write_failed = true;
                    self.closed = true;
                    return false;
                }
            }
        }
        if !self.outq.is_empty() {
            // TLS: the session's records of it must be out too.
            match conn_stream(&mut self.conn).map(Stream::flush_now) {
                Some(Ok(true)) => {}
                Some(Ok(false)) | None => return false,
                Some(Err(e)) => {
                    self.end_reason = Some(format!("write: {e}"));
                    self.write_failed = true;
                    self.closed = true;
                    return false;
                }
            }
            self.outq = Vec::new();
            self.outq_pos = 0;
            if let Some(o) = &mut self.own_burst {
                o.written = true;
            }
        }
        true
    }

    /// Before any other write: the rest of a burst goes out first (reading
    /// meanwhile).
    fn drain_out(&mut self) {
        let until = Instant::now() + Duration::from_secs(10);
        while !self.outq.is_empty() && !self.closed && Instant::now() < until {
            if self.flush_out() {
                break;
            }
            self.pump(Duration::from_millis(20));
        }
    }

    /// Reports watched bursts and its own that have settled (`all`: every
    /// one, the connection is over or the run is).
    fn settle(&mut self, now: Instant, all: bool) {
        let alive = self.connected() && !self.slow_dropped;
        let gen = self.gen;
        let mut i = 0;
        while i < self.watches.len() {
            if self.watches[i].report > now && !all {
                i += 1;
                continue;
            }
            let w = self.watches.remove(i);
            if alive && w.gen == gen && w.report <= now {
                let seen = BurstSeen {
                    k: w.k,
                    id: self.id,
                    ws: self.ws,
                    key: format!("{}.{}", self.id, w.gen),
                    got: w.got,
                };
                if let Ok(mut s) = self.sh.burst_seen.lock() {
                    s.push(seen);
                }
            }
        }
        if self
            .own_burst
            .as_ref()
            .is_some_and(|o| all || o.settle <= now)
        {
            if let Some(o) = self.own_burst.take() {
                let send = BurstSend {
                    k: o.k,
                    key: format!("{}.{}", self.id, o.gen),
                    ws: self.ws,
                    n0: o.n0,
                    count: BURST_MSGS,
                    written: o.written,
                    survived: alive && o.gen == gen && o.settle <= now,
                    rate_limited: o.rate_limited,
                    acked: o.acked,
                };
                if let Ok(mut s) = self.sh.burst_sends.lock() {
                    s.push(send);
                }
            }
        }
    }

    fn watching(&self, room: &str) -> bool {
        self.watches
            .iter()
            .any(|w| w.room == room && w.gen == self.gen)
    }

    // -- reading and pausing ------------------------------------------------

    /// The server dropped this client as a slow consumer (its goodbye came):
    /// fine after a stall or a pause, a failure for a reader that kept
    /// reading.
    fn on_slow_drop(&mut self) {
        if self.slow_dropped {
            return;
        }
        self.slow_dropped = true;
        self.sh.stats.slow_drops.inc();
        let now = Instant::now();
        let recent: Vec<&(Instant, Duration)> = self
            .gaps
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= DROP_LOOKBACK)
            .collect();
        let longest = recent.iter().map(|(_, d)| *d).max().unwrap_or_default();
        let stalled = self
            .stall_mark
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(30));
        let kind = if stalled {
            DropKind::Stalled
        } else if longest > GAP_OK {
            DropKind::Paused
        } else {
            DropKind::Reading
        };
        let burst_room = self.watches.iter().any(|w| w.gen == self.gen);
        if let Ok(mut d) = self.sh.drops.lock() {
            d.push(DropRecord {
                kind,
                ws: self.ws,
                burst_room,
            });
        }
        if kind == DropKind::Reading {
            let rooms: Vec<&String> = self.rooms.iter().collect();
            self.fail(
                "reader_dropped",
                format!(
                    "dropped as a slow consumer although it kept reading (longest pause between reads in the last {} s: {} ms; in {:?}{})",
                    DROP_LOOKBACK.as_secs(),
                    longest.as_millis(),
                    rooms,
                    if burst_room { ", watching a burst" } else { "" }
                ),
            );
        }
    }

    // -- connecting -------------------------------------------------------

    fn reset_connection_state(&mut self) {
        // Requests of the new kinds that had no answer: they may or may
        // not have been carried out.
        self.lose_asked();
        self.line_unsure = false;
        self.search_block = None;
        self.gone_checks.clear();
        self.recent.clear();
        self.closed = false;
        self.close_code = None;
        self.write_failed = false;
        self.slow_dropped = false;
        self.long_stall = false;
        self.short_stall_until = None;
        self.end_reason = None;
        self.violated = false;
        self.flooded = false;
        self.garbage = false;
        self.bye = false;
        self.flood_check = None;
        self.must_ack.clear();
        self.history_block = None;
        self.resume_check = None;
        self.outq = Vec::new();
        self.outq_pos = 0;
        self.read_idle_since = Instant::now();
        self.gaps.clear();
        self.stall_mark = None;
        self.stall_unread = None;
        self.stall_answers = 0;
        self.resume_joined.clear();
    }

    /// A fresh connection (`resume`: a WebSocket client takes its session back).
    fn connect(&mut self, resume: bool) -> bool {
        self.gen += 1;
        self.reset_connection_state();
        self.sh.set_nick(self.id, "");
        let small = self.role == Role::Slow;
        let mut connected = Instant::now();
        // With several processes, each connection goes to the next one.
        self.addr = self.sh.addrs[(self.id + self.gen as usize) % self.sh.addrs.len()];
        let tcp = match tcp_connect(self.addr, small) {
            Ok(s) => s,
            Err(e) => {
                self.fail("connect", format!("connect: {e}"));
                return false;
            }
        };
        if self.gen > self.gen_base + 1 {
            self.sh.stats.reconnects.inc();
        }
        let stream = match &self.sh.tls {
            Some(tls) if self.tls != Transport::Plain => {
                let (config, name) = tls.client(self.ws, self.tls == Transport::Tls12);
                match tls_handshake(tcp, config, name, &self.sh) {
                    Ok(s) => {
                        // The server sniffs from the end of its handshake.
                        connected = Instant::now();
                        s
                    }
                    Err(e) => {
                        self.fail("connect", format!("TLS handshake: {e}"));
                        return false;
                    }
                }
            }
            _ => Stream::Plain(tcp),
        };
        if self.ws {
            self.connect_ws(stream, resume, connected)
        } else {
            self.connect_line(stream)
        }
    }

    fn connect_line(&mut self, stream: Stream) -> bool {
        self.rooms.clear();
        self.busy.clear();
        self.leaving.clear();
        self.nick.clear();
        self.nick_k = 0;
        self.nick_out = format!("s{}g{}k0", self.id, self.gen);
        self.nick_asked = VecDeque::from([self.nick_out.clone()]);
        // The server joins a line client to lobby at once, current.
        self.current = Some("lobby".into());
        self.busy.insert("lobby".into());
        self.conn = Conn::Line {
            stream,
            buf: Vec::new(),
        };
        // Speaking first: the server decides at once that this is a line client.
        let nick = self.nick_out.clone();
        self.send_line(&format!("/nick {nick}"))
    }

    fn connect_ws(&mut self, stream: Stream, resume: bool, connected: Instant) -> bool {
        // Over TLS, by the name in the certificate the client checked.
        let base = if stream.is_tls() {
            format!("wss://localhost:{}", self.addr.port())
        } else {
            format!("ws://{}", self.addr)
        };
        let token = if resume { self.session.clone() } else { None };
        let first_room = self.pick_any_room();
        let url = match &token {
            Some(t) => format!("{base}/ws?resume={t}"),
            None => {
                self.nick_k = 0;
                self.nick_out = format!("s{}g{}k0", self.id, self.gen);
                format!("{base}/ws?nick={}&room={first_room}", self.nick_out)
            }
        };
        let _ = stream.tcp().set_read_timeout(Some(Duration::from_secs(10)));
        // A failed resume is tried again (with the same token) by the next
        // connection, as a browser would: the session is not left held.
        self.resume_again = token.is_some();
        // Silence means silence: a request written after --sniff-ms (300 ms)
        // of it is greeted as a line client (and refused once its request
        // line comes). On a loaded machine this thread may get that late.
        let late = connected.elapsed() >= Duration::from_millis(250);
        let mut ws = match tungstenite::client(url.as_str(), stream) {
            Ok((ws, _)) => ws,
            Err(_) if late => {
                self.sh.stats.late_handshakes.inc();
                return false;
            }
            Err(e) => {
                self.fail(
                    "connect",
                    format!(
                        "WebSocket handshake{}: {e}",
                        if token.is_some() { " (resume)" } else { "" }
                    ),
                );
                return false;
            }
        };
        // The welcome comes first.
        let welcome = loop {
            match ws.read() {
                Ok(Message::Text(t)) => match serde_json::from_str::<Value>(&t) {
                    Ok(v) if v["type"] == "welcome" => break v,
                    _ => {
                        self.fail("malformed", format!("first frame is not a welcome: {t:?}"));
                        return false;
                    }
                },
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(other) => {
                    self.fail(
                        "malformed",
                        format!("first frame is not a welcome: {other:?}"),
                    );
                    return false;
                }
                Err(e) => {
                    self.fail("connect", format!("no welcome: {e}"));
                    return false;
                }
            }
        };
        let (Some(nick), Some(session)) = (welcome["nick"].as_str(), welcome["session"].as_str())
        else {
            self.fail(
                "malformed",
                format!("welcome without nick or session: {welcome}"),
            );
            return false;
        };
        let (nick, session) = (nick.to_string(), session.to_string());
        self.conn = Conn::Ws(Box::new(ws));
        let resumed = token.as_deref() == Some(session.as_str());
        self.session = Some(session);
        self.resume_again = false;
        if resumed {
            self.sh.stats.resumes.inc();
            if nick != self.nick && !self.nick_asked.contains(&nick) {
                self.fail(
                    "resume",
                    format!(
                        "resumed as {nick}, not {} (or {:?})",
                        self.nick, self.nick_asked
                    ),
                );
            }
            self.nick_asked.clear();
            self.nick = nick.clone();
            self.nick_out = nick;
            self.sh.set_nick(self.id, &self.nick);
            // The server replays a `joined` for each room; catch up on
            // each from where this client was.
            self.resume_check = Some(ResumeCheck {
                expected: self.rooms.clone(),
                seen: BTreeSet::new(),
                uncertain: !self.busy.is_empty(),
            });
            self.busy.clear();
            self.leaving.clear();
            // What the client knows of its rooms' messages may be out of
            // date (it missed what happened while it was away) until each
            // room's catch-up has come.
            for v in self.views.values_mut() {
                for k in v.known.values_mut() {
                    if let Known::Msg(m) = k {
                        m.sure = false;
                    }
                }
            }
            let rooms: Vec<String> = self.rooms.iter().cloned().collect();
            for room in rooms {
                let since = self.cursor.get(&room).copied().unwrap_or(0);
                let req =
                    json!({"type":"join","room":room,"since":since,"ref":format!("rj:{since}")});
                if !self.send_json(req) {
                    return false;
                }
            }
            if let Some((cid, req)) = self.retry.take() {
                // The `say` went out after any nick change still in flight:
                // had the server taken it, it would have taken the nick
                // first. Resumed under another nick than the text names, it
                // never arrived, and a retry would be stored under the
                // wrong nick: forget it.
                let named = req["text"]
                    .as_str()
                    .and_then(|t| verify(t).ok())
                    .map(|t| t.nick);
                if named.as_deref() == Some(self.nick.as_str()) {
                    self.sh.stats.retries.inc();
                    self.retry_cids.insert(cid);
                    self.send_json(req);
                } else {
                    self.sent.remove(&cid);
                }
            }
            true
        } else {
            let grace_over = self.vanished_at.is_some_and(|t| {
                t.elapsed() + Duration::from_secs(2) >= Duration::from_secs(RESUME_GRACE)
            });
            if token.is_some() && !grace_over {
                self.fail(
                    "resume",
                    "a session held for its grace period was not resumed".to_string(),
                );
            }
            self.retry = None;
            self.nick_asked.clear();
            self.rooms.clear();
            self.busy.clear();
            self.leaving.clear();
            self.cursor.clear();
            // A new session: a new identity, with no reactions yet.
            self.views.clear();
            self.my_reacts.clear();
            self.nick = nick.clone();
            if token.is_some() {
                // Resumed nothing: start over.
                self.nick_k = 0;
                self.nick_out = nick;
                return self.join(first_room);
            }
            if nick != self.nick_out {
                self.fail(
                    "errors",
                    format!("asked for nick {} but got {nick}", self.nick_out),
                );
                self.nick_out = nick;
            } else {
                self.sh.set_nick(self.id, &nick);
            }
            self.busy.insert(first_room);
            true
        }
    }

    /// The connection is over (closed by the server, or given up).
    fn on_connection_ended(&mut self) {
        let why = self
            .end_reason
            .take()
            .unwrap_or_else(|| "end of stream".to_string());
        let local = self.socket().and_then(|s| s.local_addr().ok());
        let why = format!(
            "{why} (close frame {:?}, write failed {}, from {})",
            self.close_code,
            self.write_failed,
            local.map_or_else(|| "?".to_string(), |a| a.to_string())
        );
        let expected = self.slow_dropped
            || self.violated
            || matches!(self.close_code, Some(1008 | 1003 | 1002 | 1007 | 1009));
        if expected {
        } else if self.long_stall {
            // Dropped after not reading for long: the goodbye could not be
            // delivered before the server gave up on it.
            self.sh.stats.slow_aborts.inc();
        } else if self.short_stall_until.is_some_and(|t| Instant::now() < t) {
            self.fail(
                "torn",
                format!(
                    "dropped after a stall that read again {} ms after its first unread request; the stream ended with no intact goodbye: {why}",
                    self.stall_unread.unwrap_or_default().as_millis()
                ),
            );
        } else {
            self.fail("closed", format!("the server closed the connection: {why}"));
        }
        if self.ws && self.close_code.is_none() {
            // No close frame either way: the server may hold the session.
            self.sh.abandoned();
        }
        self.lose_asked();
        self.settle(Instant::now(), true);
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
    }

    /// Drops the connection without a goodbye: a reset or a plain close.
    fn vanish(&mut self) {
        // Only a session the server holds can be resumed: not one it has
        // closed itself (a close frame came: a slow-consumer drop, say).
        let held = self.ws && self.close_code.is_none() && !self.slow_dropped && !self.violated;
        self.sh.stats.vanishes.inc();
        self.note("--", &json!({"type": "vanish"}));
        let reset = self.rng.chance(0.5);
        if reset {
            self.sh.stats.resets.inc();
        }
        if reset {
            if let Some(s) = self.socket() {
                let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
        } else if let Some(s) = conn_stream(&mut self.conn).filter(|s| s.is_tls()) {
            // A TLS close: half of them say so (`close_notify`), the rest
            // just close the socket, as a plain one does.
            if self.rng.chance(0.5) {
                self.sh.stats.tls_polite_closes.inc();
                s.close_notify();
            }
        }
        self.settle(Instant::now(), true);
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
        self.vanished_at = Some(Instant::now());
        let d = self.rng.ms(100, 1500);
        self.pause(d);
        if held {
            // The session is held for --resume-grace: take it back (a
            // failed attempt is retried by the next connection).
            if !self.connect(true) {
                self.conn = Conn::None;
            }
        } else if !self.connect(false) {
            self.conn = Conn::None;
        }
    }

    /// The connection's socket, for socket-level operations (TLS or not).
    fn socket(&self) -> Option<&TcpStream> {
        match &self.conn {
            Conn::Line { stream, .. } => Some(stream.tcp()),
            Conn::Ws(ws) => Some(ws.get_ref().tcp()),
            Conn::None => None,
        }
    }

    // -- sending ----------------------------------------------------------

    fn send_raw(&mut self, bytes: &[u8]) -> bool {
        self.drain_out();
        let res = match &mut self.conn {
            Conn::Line { stream, .. } => stream.write_all(bytes),
            Conn::Ws(ws) => ws.get_mut().write_all(bytes),
            Conn::None => return false,
        };
        if res.is_err() {
            self.write_failed = true;
            self.closed = true;
        }
        res.is_ok()
    }

    fn send_line(&mut self, line: &str) -> bool {
        self.send_raw(format!("{line}\n").as_bytes())
    }

    /// Notes a request or an answer in the trail.
    fn note(&mut self, dir: &str, v: &Value) {
        let f = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| v[k].as_u64().map_or(String::new(), |x| x.to_string());
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 86_400_000);
        let entry = format!(
            "{:02}:{:02}:{:02}.{:03} {dir} {} {} {}{}{}{}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000,
            f("type"),
            f("room"),
            f("ref"),
            f("code"),
            n("since"),
            f("event"),
        );
        if self.trail.len() == TRAIL {
            self.trail.pop_front();
        }
        self.trail.push_back(entry);
    }

    fn send_json(&mut self, v: Value) -> bool {
        self.drain_out();
        if !matches!(v["type"].as_str(), Some("typing")) {
            self.note(">>", &v);
        }
        let Conn::Ws(ws) = &mut self.conn else {
            return false;
        };
        let res = ws.send(Message::Text(v.to_string()));
        if res.is_err() {
            self.write_failed = true;
            self.closed = true;
        }
        res.is_ok()
    }

    // -- reading ----------------------------------------------------------

    /// Reads and checks whatever arrives within `d`.
    fn pump(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.closed {
                return;
            }
            let mut left = left.max(Duration::from_millis(1));
            if !self.outq.is_empty() && !self.flush_out() {
                // Part of a burst still to write: come back to it soon.
                left = left.min(Duration::from_millis(10));
            }
            if self.ws {
                if !self.pump_ws_once(left) {
                    return;
                }
            } else if !self.pump_line_once(left) {
                return;
            }
        }
    }

    /// One read of a line connection; false on timeout or end.
    fn pump_line_once(&mut self, wait: Duration) -> bool {
        let Conn::Line { stream, buf } = &mut self.conn else {
            return false;
        };
        let _ = stream.tcp().set_read_timeout(Some(wait));
        note_gap(&mut self.gaps, self.read_idle_since);
        let res = stream.read(&mut self.scratch);
        self.read_idle_since = Instant::now();
        match res {
            Ok(0) => {
                if !buf.is_empty() && !self.long_stall {
                    let tail = String::from_utf8_lossy(buf);
                    let tail: String = tail
                        .chars()
                        .rev()
                        .take(120)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    let why = match self.stall_unread {
                        Some(d) => format!(
                            "after a stall that read again {} ms after its first unread request",
                            d.as_millis()
                        ),
                        None => "no stall".to_string(),
                    };
                    self.fail(
                        "torn",
                        format!("the stream ended inside a line ({why}): ...{tail:?}"),
                    );
                }
                self.closed = true;
                false
            }
            Ok(n) => {
                self.sh.stats.bytes_in.add(n as u64);
                buf.extend_from_slice(&self.scratch[..n]);
                let mut lines = Vec::new();
                let mut start = 0;
                while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
                    lines.push(buf[start..start + i].to_vec());
                    start += i + 1;
                }
                buf.drain(..start);
                for l in lines {
                    match String::from_utf8(l) {
                        Ok(l) => self.on_line(&l),
                        Err(e) => {
                            let l = String::from_utf8_lossy(e.as_bytes()).into_owned();
                            if l.contains("!!! slow_consumer:") {
                                // A line cut inside a character, then the goodbye.
                                self.on_line(&l);
                            } else {
                                self.fail("malformed", format!("a line that is not UTF-8: {l:?}"));
                            }
                        }
                    }
                }
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(e) => {
                self.end_reason = Some(format!("read: {e}"));
                self.closed = true;
                false
            }
        }
    }

    /// One message of a WebSocket connection; false on timeout or end.
    fn pump_ws_once(&mut self, wait: Duration) -> bool {
        let Conn::Ws(ws) = &mut self.conn else {
            return false;
        };
        let _ = ws.get_ref().tcp().set_read_timeout(Some(wait));
        note_gap(&mut self.gaps, self.read_idle_since);
        let res = ws.read();
        self.read_idle_since = Instant::now();
        match res {
            Ok(Message::Text(t)) => {
                self.sh.stats.bytes_in.add(t.len() as u64);
                self.on_ws_text(&t);
                true
            }
            Ok(Message::Close(frame)) => {
                self.close_code = Some(frame.map_or(1005, |f| u16::from(f.code)));
                if self.close_code == Some(1008) {
                    self.on_slow_drop();
                }
                true
            }
            Ok(Message::Binary(b)) => {
                self.fail("malformed", format!("a binary frame of {} bytes", b.len()));
                true
            }
            Ok(_) => true,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                false
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                self.closed = true;
                false
            }
            Err(tungstenite::Error::Io(e)) => {
                self.end_reason = Some(format!("read: {e}"));
                self.closed = true;
                false
            }
            Err(e) => {
                // Not a clean end: a frame cut short, or bytes that are no frame.
                if !self.long_stall {
                    self.fail(
                        "torn",
                        format!(
                            "the WebSocket stream broke: {e} (close frame seen: {:?}; {})",
                            self.close_code,
                            if self.short_stall_until.is_some() {
                                "after a 1 s stall"
                            } else {
                                "no stall"
                            }
                        ),
                    );
                    self.violated = true; // reported here, once
                }
                self.end_reason = Some(format!("WebSocket stream broke: {e}"));
                self.closed = true;
                false
            }
        }
    }

    // -- the line protocol ------------------------------------------------

    fn on_line(&mut self, l: &str) {
        if l.contains("!!! slow_consumer:") && !l.starts_with("!!! slow_consumer:") {
            self.fail(
                "torn",
                format!("the slow-consumer goodbye was glued to a torn line: {l:?}"),
            );
            self.on_slow_drop();
            return;
        }
        if let Some(mut block) = self.search_block.take() {
            if l == "*** end of search" {
                return self.search_done(block);
            }
            block.got += 1;
            match strip_clock(l) {
                Some(rest) if rest.starts_with(&format!("#{} ", block.room)) => {
                    self.line_found(&mut block, rest)
                }
                _ => self.fail(
                    "malformed",
                    format!("in the search results of #{}: {l:?}", block.room),
                ),
            }
            self.search_block = Some(block);
            return;
        }
        if let Some((room, expect, got)) = self.history_block.take() {
            if l == "*** end of history" {
                self.stall_answers = self.stall_answers.saturating_sub(1);
                if got != expect {
                    self.fail(
                        "malformed",
                        format!("history of #{room} announced {expect} messages, had {got}"),
                    );
                }
                return;
            }
            self.history_block = Some((room.clone(), expect, got + 1));
            match strip_clock(l) {
                Some(rest) if rest.starts_with(&format!("#{room} ")) => {
                    self.line_event(rest, Mode::Replay)
                }
                _ => self.fail("malformed", format!("in the history of #{room}: {l:?}")),
            }
            return;
        }
        if let Some(rest) = l.strip_prefix("*** ") {
            self.line_info(rest);
        } else if let Some(rest) = l.strip_prefix("!!! ") {
            match rest.split_once(": ") {
                Some((code, msg)) if ERROR_CODES.contains(&code) => {
                    let msg = msg.to_string();
                    self.on_error(code, &msg, None)
                }
                _ => self.fail("malformed", format!("error line {l:?}")),
            }
        } else if let Some(rest) = strip_clock(l) {
            self.line_event(rest, Mode::Live);
        } else {
            self.fail("malformed", format!("unmarked line {l:?}"));
        }
    }

    fn line_info(&mut self, rest: &str) {
        if let Some(r) = rest.strip_prefix("welcome to natter, you are ") {
            match r.split_once(';') {
                Some((nick, _)) => self.nick = nick.to_string(),
                None => self.fail("malformed", format!("welcome {rest:?}")),
            }
        } else if let Some(nick) = rest.strip_prefix("you are now known as ") {
            self.nick = nick.to_string();
            self.nick_confirmed(nick);
            self.sh.set_nick(self.id, nick);
        } else if let Some(r) = rest.strip_prefix("you joined #") {
            let room = r.split(' ').next().unwrap_or("").to_string();
            if !r.contains(" here: ") {
                self.fail("malformed", format!("join line {rest:?}"));
            }
            self.busy.remove(&room);
            self.rooms.insert(room);
            self.sh.stats.joins.inc();
        } else if let Some(r) = rest.strip_prefix("you left #") {
            self.busy.remove(r);
            self.rooms.remove(r);
        } else if let Some(r) = rest.strip_prefix("history of #") {
            let parsed = r.split_once(" (").and_then(|(room, n)| {
                let n = n
                    .strip_suffix(" messages)")
                    .or(n.strip_suffix(" message)"))?;
                Some((room.to_string(), n.parse::<usize>().ok()?))
            });
            match parsed {
                Some((room, n)) => self.history_block = Some((room, n, 0)),
                None => self.fail("malformed", format!("history head {rest:?}")),
            }
        } else if let Some(r) = rest.strip_prefix('#') {
            if let Some(room) = r.strip_suffix(" is your current room") {
                self.busy.remove(room);
            }
        } else if let Some(r) = rest.strip_prefix("reaction ") {
            self.line_reacted(r);
        } else if let Some(r) = rest.strip_prefix("search ") {
            self.line_search_head(r);
        } else if rest == "bye" {
            self.bye = true;
        }
    }

    fn line_event(&mut self, rest: &str, mode: Mode) {
        if let Some(r) = rest.strip_prefix('#') {
            let Some((room, ev)) = r.split_once(' ') else {
                return self.fail("malformed", format!("event {rest:?}"));
            };
            if let Some(x) = ev.strip_prefix('<').filter(|_| !ev.starts_with("<-- ")) {
                match x.split_once("> ") {
                    Some((from, text)) => self.line_chat(room, from, text, false, mode),
                    None => self.fail("malformed", format!("message {rest:?}")),
                }
            } else if let Some(x) = ev.strip_prefix("* ") {
                match x.split_once(' ') {
                    Some((from, text)) => self.line_chat(room, from, text, true, mode),
                    None => self.fail("malformed", format!("action {rest:?}")),
                }
            } else if let Some(x) = ev
                .strip_prefix("--- a message by ")
                .filter(|_| mode == Mode::Live)
            {
                self.line_deleted(room, x);
            } else if mode == Mode::Live
                && ((ev.starts_with("--> ") && ev.ends_with(" joined"))
                    || (ev.starts_with("<-- ") && ev.contains(" left"))
                    || (ev.starts_with("--- ") && ev.contains(" is now known as ")))
            {
            } else {
                self.fail("malformed", format!("event {rest:?}"));
            }
        } else if let Some(x) = rest.strip_prefix("(dm) <") {
            match x.split_once("> ") {
                Some((from, text)) => {
                    let me = self.nick.clone();
                    self.dm(from, &me, text, false)
                }
                None => self.fail("malformed", format!("dm {rest:?}")),
            }
        } else if let Some(x) = rest.strip_prefix("(dm to ") {
            let parsed = x
                .split_once(") <")
                .and_then(|(to, r)| Some((to, r.split_once("> ")?)));
            match parsed {
                Some((to, (from, text))) => self.dm(from, to, text, true),
                None => self.fail("malformed", format!("dm copy {rest:?}")),
            }
        } else {
            self.fail("malformed", format!("event {rest:?}"));
        }
    }

    // -- checks common to both protocols ----------------------------------

    /// A room message: exactly as sent (or, in a replay or a search
    /// result, as last edited), from the nick and to the room it names,
    /// newer than anything live from that sender there. Its tag, if it is
    /// what it should be.
    fn chat(
        &mut self,
        room: &str,
        from: &str,
        text: &str,
        action: bool,
        mode: Mode,
    ) -> Option<Tag> {
        match mode {
            Mode::Live => self.sh.stats.received.inc(),
            Mode::Replay => self.sh.stats.replayed.inc(),
            Mode::Found => {}
        }
        if mode == Mode::Live && !self.rooms.contains(room) {
            self.fail(
                "wrong",
                format!("a message in #{room}, a room it is not in: {text:?}"),
            );
        }
        let tag = match verify(text) {
            Ok(t) => t,
            Err(e) => {
                self.fail("wrong", format!("#{room} <{from}>: {e}: {text:?}"));
                return None;
            }
        };
        let kind = if action { "me" } else { "in" };
        if tag.kind != kind || tag.dest != room || tag.nick != from {
            self.fail(
                "wrong",
                format!("#{room} <{from}> (action {action}) carried {text:?}"),
            );
            return None;
        }
        if tag.edit > 0 && mode == Mode::Live {
            self.fail(
                "wrong",
                format!("#{room} <{from}>: an edit's text as a new message: {text:?}"),
            );
            return None;
        }
        if mode == Mode::Found {
            return Some(tag);
        }
        if let (Some(k), Mode::Live) = (tag.burst, mode) {
            let gen = self.gen;
            if let Some(w) = self
                .watches
                .iter_mut()
                .find(|w| w.k == k && w.room == room && w.gen == gen)
            {
                w.got.entry(tag.key.clone()).or_default().push(tag.n);
            }
        }
        self.order(tag.key.clone(), room.to_string(), tag.n, mode, text);
        Some(tag)
    }

    fn order(&mut self, key: String, dest: String, n: u64, mode: Mode, text: &str) {
        let prev = self.last.get(&(key.clone(), dest.clone())).copied();
        match (mode, prev) {
            (Mode::Live, Some(p)) if n <= p => {
                self.fail(
                    "order",
                    format!(
                        "from {key} in {dest}: #{n} after #{p} (duplicate or reordered): {text:?}"
                    ),
                );
            }
            (Mode::Replay | Mode::Found, Some(p)) if n <= p => {}
            _ => {
                self.last.insert((key, dest), n);
            }
        }
    }

    /// A direct message to `to` (`copy`: the sender's own copy).
    fn dm(&mut self, from: &str, to: &str, text: &str, copy: bool) {
        let tag = match verify(text) {
            Ok(t) => t,
            Err(e) => return self.fail("wrong", format!("dm <{from}> to {to}: {e}: {text:?}")),
        };
        if tag.kind != "dm" || tag.dest != to || tag.nick != from {
            return self.fail("wrong", format!("dm <{from}> to {to} carried {text:?}"));
        }
        if copy {
            return;
        }
        self.sh.stats.dms_received.inc();
        if to != self.nick {
            self.fail(
                "wrong",
                format!("a dm to {to} reached {}: {text:?}", self.nick),
            );
        }
        self.order(tag.key, "dm".into(), tag.n, Mode::Live, text);
    }

    /// The server says our nick changed: to the oldest one asked for.
    fn nick_confirmed(&mut self, nick: &str) {
        match self.nick_asked.pop_front() {
            Some(asked) if asked == nick => {}
            asked => self.fail("errors", format!("became {nick}, asked for {asked:?}")),
        }
    }

    fn on_error(&mut self, code: &str, message: &str, r#ref: Option<&str>) {
        if let Some(r) = r#ref {
            self.must_ack.remove(r);
        }
        if let Some(asked) = r#ref.and_then(|r| self.asked.remove(r)) {
            return self.asked_refused(asked, code, message);
        }
        if !self.ws {
            if self.line_refused(code, message) {
                return;
            }
            if code == "rate_limited" {
                // A message of this connection may have been refused:
                // which one is its last is not known any more.
                self.line_unsure = true;
            }
        }
        match code {
            "no_such_user" => {}
            "rate_limited" if self.flooded => {
                self.sh.stats.rate_limited.inc();
                self.flood_check = None;
            }
            // A stall asks for 200 history pages at once: past
            // --max-outbound of history in one turn the server refuses the
            // rest (PROTOCOL.md), and a refusal answers the request.
            "rate_limited"
                if self.stall_mark.is_some() && message.starts_with("too much history at once") =>
            {
                self.sh.stats.history_refused.inc();
                self.stall_answers = self.stall_answers.saturating_sub(1);
            }
            "slow_consumer" => self.on_slow_drop(),
            // Judged with the readers' reports: see judge_bursts.
            "rate_limited" if self.own_burst.is_some() => {
                if let Some(o) = &mut self.own_burst {
                    o.rate_limited = true;
                }
            }
            "bad_utf8" | "too_long" | "unknown_command" | "bad_json" | "unknown_type"
            | "bad_request" | "room_invalid"
                if self.garbage => {}
            _ => {
                let trail: Vec<&str> = self.trail.iter().map(String::as_str).collect();
                self.fail(
                    "errors",
                    format!(
                        "unprovoked error {code}: {message} (ref {:?}); last requests and answers:\n    {}",
                        r#ref,
                        trail.join("\n    ")
                    ),
                )
            }
        }
    }

    fn check_flood(&mut self, now: Instant) {
        if let Some(at) = self.flood_check {
            if now > at + Duration::from_secs(10) {
                self.flood_check = None;
                self.fail("flood", "a flood got no rate_limited within 10 s".into());
            }
        }
    }

    // -- the WebSocket protocol -------------------------------------------

    fn on_ws_text(&mut self, t: &str) {
        let v: Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return self.fail("malformed", format!("not JSON ({e}): {t:?}")),
        };
        let own = v["ref"].as_str().is_some() || v["type"] != "message";
        if own && v["type"] != "typing" && v["type"] != "presence" {
            self.note("<<", &v);
        }
        let s = |k: &str| v[k].as_str();
        let ok = match s("type").unwrap_or("") {
            "nick" => match s("nick") {
                Some(n) => {
                    self.nick_confirmed(n);
                    self.nick = n.to_string();
                    self.sh.set_nick(self.id, n);
                    true
                }
                None => false,
            },
            "joined" => return self.ws_joined(&v),
            "left" => match s("room") {
                Some(r) => {
                    self.rooms.remove(r);
                    self.busy.remove(r);
                    self.leaving.remove(r);
                    self.cursor.remove(r);
                    self.views.remove(r);
                    true
                }
                None => false,
            },
            "message" => return self.ws_message(&v),
            "edit" | "delete" | "react" => return self.ws_amend(&v),
            "search" => return self.ws_search_answer(&v),
            "presence" => {
                s("room").is_some()
                    && matches!(s("event"), Some("join" | "leave" | "nick"))
                    && s("nick").is_some()
                    && v["ts"].is_u64()
            }
            "typing" => s("room").is_some() && s("nick").is_some() && v["ts"].is_u64(),
            "dm" => match (s("from"), s("to"), s("text")) {
                (Some(from), Some(to), Some(text)) if v["ts"].is_u64() => {
                    let (from, to, text) = (from.to_string(), to.to_string(), text.to_string());
                    match s("cid") {
                        Some(cid) => {
                            let cid = cid.to_string();
                            self.ws_ack_dm(&cid, &to, &text);
                            self.dm(&from, &to, &text, true);
                        }
                        None => self.dm(&from, &to, &text, false),
                    }
                    true
                }
                _ => false,
            },
            "history" => return self.ws_history(&v),
            "rooms" => v["rooms"].is_array(),
            "who" => s("room").is_some() && v["members"].is_array(),
            "error" => match (s("code"), s("message")) {
                (Some(code), Some(msg)) if ERROR_CODES.contains(&code) => {
                    let (code, msg) = (code.to_string(), msg.to_string());
                    let r = s("ref").map(str::to_string);
                    self.on_error(&code, &msg, r.as_deref());
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if !ok {
            self.fail("malformed", format!("unexpected JSON {t}"));
        }
    }

    /// Checks a block of entries (a `joined`'s, a history page): shape,
    /// strictly ascending seqs, texts, and agreement with what the client
    /// knows of the room: no seq it knows as a change listed as a message,
    /// no message it knows left out (a deleted one is listed as deleted),
    /// and (a history page) each message it is sure of exactly as the
    /// stream made it. Seqs the block's range skips are changes. A
    /// `joined` may hold `edit`, `delete` and `react` entries, applied in
    /// turn. `sure`: the block shows the room as it is at this point of
    /// the stream (not a resume's replays, which may repeat what came
    /// live). Returns (first, last) seq.
    fn ws_block(
        &mut self,
        room: &str,
        msgs: &Value,
        what: &'static str,
        sure: bool,
    ) -> Option<Option<(u64, u64)>> {
        let Some(list) = msgs.as_array() else {
            self.fail("malformed", format!("{what} of #{room} without messages"));
            return None;
        };
        let mut range: Option<(u64, u64)> = None;
        let mut listed = Vec::new();
        let compare = what == "history";
        for m in list {
            let (Some(r), Some(seq)) = (m["room"].as_str(), m["seq"].as_u64()) else {
                self.fail("malformed", format!("{what} of #{room}: entry {m}"));
                return None;
            };
            if r != room {
                self.fail(
                    "ws_seq",
                    format!("{what} of #{room} holds an entry of #{r}"),
                );
            }
            if let Some((_, last)) = range {
                if seq <= last {
                    self.fail(
                        "ws_seq",
                        format!("{what} of #{room}: seq {seq} after {last}"),
                    );
                }
            }
            range = Some((range.map_or(seq, |r| r.0), seq));
            listed.push(seq);
            match m["type"].as_str() {
                Some("message") => {
                    let mv = self.block_message(room, m, what, Mode::Replay)?;
                    self.listed(room, seq, mv, what, compare, sure);
                }
                Some("edit" | "delete" | "react") if what == "joined" => match parse_amend(m) {
                    Ok(a) => {
                        self.sh.stats.amend_entries.inc();
                        self.check_amend(&a, false);
                    }
                    Err(e) => {
                        self.fail("malformed", format!("{what} of #{room}: {e}: {m}"));
                        return None;
                    }
                },
                _ => {
                    self.fail("malformed", format!("{what} of #{room}: entry {m}"));
                    return None;
                }
            }
        }
        if let Some((first, last)) = range {
            let within = match what {
                "joined" => "joined (between its entries)",
                "history" => "history (between its entries)",
                other => other,
            };
            let mut next = listed.iter().copied().peekable();
            let mut prev = first;
            for s in first..=last {
                if next.peek() == Some(&s) {
                    next.next();
                    prev = s;
                } else {
                    if what == "joined" {
                        let d = format!(
                            "{}; the hole lies between {prev} and {:?}",
                            self.block_desc,
                            next.peek()
                        );
                        if self.hole_origin.len() > 10_000 {
                            self.hole_origin.clear();
                        }
                        self.hole_origin.insert((room.to_string(), s), d);
                    }
                    self.skipped(room, s, within);
                }
            }
        }
        Some(range)
    }

    /// A MESSAGE of a block (`Mode::Replay`) or a search result
    /// (`Mode::Found`): its shape and text; what it says of the message.
    fn block_message(&mut self, room: &str, m: &Value, what: &str, mode: Mode) -> Option<MsgView> {
        let (Some(from), Some(_)) = (m["from"].as_str(), m["ts"].as_u64()) else {
            self.fail("malformed", format!("{what} of #{room}: message {m}"));
            return None;
        };
        let from = from.to_string();
        if m["deleted"] == json!(true) {
            // Only the fact that it was there (a search result would add
            // its empty snippet and marks).
            let extra = m.as_object().into_iter().flatten().find(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "type" | "room" | "seq" | "from" | "ts" | "deleted" | "snippet" | "marks"
                )
            });
            if let Some((k, _)) = extra {
                self.fail(
                    "malformed",
                    format!("{what} of #{room}: a deleted message with {k:?}: {m}"),
                );
            }
            return Some(MsgView {
                tag: None,
                nick: from,
                deleted: true,
                ..MsgView::default()
            });
        }
        let Some(text) = m["text"].as_str() else {
            self.fail("malformed", format!("{what} of #{room}: message {m}"));
            return None;
        };
        let text = text.to_string();
        let action = m["action"].as_bool().unwrap_or(false);
        let tag = self.chat(room, &from, &text, action, mode)?;
        if (tag.edit > 0) != m["edited_ts"].is_u64() {
            self.fail(
                "wrong",
                format!(
                    "{what} of #{room}: edit {} of a message, edited_ts {}",
                    tag.edit, m["edited_ts"]
                ),
            );
        }
        let mut reactions = BTreeMap::new();
        if let Some(r) = m.get("reactions") {
            match r.as_object() {
                Some(map) if !map.is_empty() => {
                    for (emoji, nicks) in map {
                        let nicks: Option<Vec<String>> = nicks.as_array().and_then(|a| {
                            a.iter().map(|n| n.as_str().map(str::to_string)).collect()
                        });
                        match nicks {
                            Some(mut n) if !n.is_empty() => {
                                if !WS_EMOJI.contains(&emoji.as_str())
                                    && !LINE_EMOJI.contains(&emoji.as_str())
                                {
                                    self.fail(
                                        "wrong",
                                        format!(
                                            "{what} of #{room}: a reaction nobody put there: {m}"
                                        ),
                                    );
                                }
                                if WS_EMOJI.contains(&emoji.as_str()) {
                                    n.sort();
                                    reactions.insert(emoji.clone(), n);
                                }
                            }
                            _ => {
                                self.fail("malformed", format!("{what} of #{room}: reactions {r}"))
                            }
                        }
                    }
                }
                _ => self.fail("malformed", format!("{what} of #{room}: reactions {r}")),
            }
        }
        Some(MsgView {
            tag: Some((tag.key.clone(), tag.n)),
            nick: from,
            edit: tag.edit,
            deleted: false,
            sure: false,
            reactions,
        })
    }

    /// A message listed in a block or found by a search, against what the
    /// client knows of that seq. `compare`: the block shows the message as
    /// it is now (a history page, a search), so one the client is sure of
    /// must be exactly as the stream made it. `sure`: from now on the
    /// client is sure of it.
    fn listed(
        &mut self,
        room: &str,
        seq: u64,
        mut mv: MsgView,
        what: &str,
        compare: bool,
        sure: bool,
    ) {
        let mut problem = None;
        {
            let Some(view) = self.views.get_mut(room) else {
                return;
            };
            match view.known.get_mut(&seq) {
                Some(Known::Change(by)) => {
                    problem = Some(format!(
                        "{what} of #{room} lists seq {seq} as a message; it is an edit, delete or reaction (said by: {by}; {:?})",
                        self.hole_origin.get(&(room.to_string(), seq))
                    ));
                }
                Some(Known::Msg(k)) => {
                    let other = k.nick != mv.nick
                        || matches!((&k.tag, &mv.tag), (Some(a), Some(b)) if a != b);
                    let differs = k.deleted != mv.deleted
                        || (!mv.deleted && k.edit != mv.edit)
                        || k.reactions != mv.reactions;
                    if other {
                        problem = Some(format!(
                            "{what} of #{room}: seq {seq} is {:?} from {}, the stream had {:?} from {}",
                            mv.tag, mv.nick, k.tag, k.nick
                        ));
                    } else if compare && k.sure && differs {
                        problem = Some(format!(
                            "{what} of #{room}: seq {seq} is (deleted {}, edit {}, reactions {:?}), the stream made it (deleted {}, edit {}, reactions {:?})",
                            mv.deleted, mv.edit, mv.reactions, k.deleted, k.edit, k.reactions
                        ));
                    }
                    if mv.tag.is_none() {
                        mv.tag = k.tag.take();
                    }
                    mv.sure = sure;
                    *k = mv;
                }
                None => {
                    mv.sure = sure;
                    view.known.insert(seq, Known::Msg(mv));
                    prune(view);
                }
            }
        }
        if let Some(p) = problem {
            self.fail("ws_seq", p);
        }
    }

    /// `seq` of `room` is no message (a complete page skips it): a change.
    /// One the client knew nothing of is checked against the store at the
    /// end.
    fn skipped(&mut self, room: &str, seq: u64, what: &'static str) {
        let Some(view) = self.views.get_mut(room) else {
            return;
        };
        match view.known.get(&seq) {
            Some(Known::Msg(m)) => {
                let m = format!("{:?} from {}", m.tag, m.nick);
                self.fail(
                    "ws_seq",
                    format!("{what} of #{room} leaves out message {seq} ({m})"),
                );
            }
            Some(Known::Change(_)) => {}
            None => {
                view.known.insert(seq, Known::Change(what));
                prune(view);
                let key = (room.to_string(), seq);
                let how = match self.hole_origin.get(&key) {
                    Some(d) => format!(
                        "{what} ({d}; {:.1} s in, on {})",
                        self.sh.started.elapsed().as_secs_f64(),
                        self.addr
                    ),
                    None => what.to_string(),
                };
                if let Ok(mut s) = self.sh.skipped.lock() {
                    s.entry(key).or_insert(how);
                }
            }
        }
    }

    /// Seqs after `from` up to `to` (where the stream is) that a complete
    /// block leaves out after its last entry: changes.
    fn skipped_after(&mut self, room: &str, from: u64, to: u64, what: &'static str) {
        // A room's view holds VIEW_KEEP entries: no more to look at.
        let from = from.max(to.saturating_sub(VIEW_KEEP as u64));
        for s in from + 1..=to {
            self.skipped(room, s, what);
        }
    }

    fn ws_joined(&mut self, v: &Value) {
        let (Some(room), Some(last_seq)) = (v["room"].as_str(), v["last_seq"].as_u64()) else {
            return self.fail("malformed", format!("joined {v}"));
        };
        let room = room.to_string();
        if !v["members"].is_array() || !v["store_id"].is_string() {
            self.fail("malformed", format!("joined {v}"));
        }
        let gap = v["gap"].as_bool().unwrap_or(false);
        let r = v["ref"].as_str().unwrap_or("").to_string();
        let catch_up = r.strip_prefix("rj:").and_then(|s| s.parse::<u64>().ok());
        // A join of a room it was not in: what the client knows of the
        // room starts here, and is all it is (a resume's replays and
        // catch-ups may repeat what came live).
        let fresh = catch_up.is_none() && self.resume_check.is_none();
        if fresh || !self.views.contains_key(&room) {
            self.view_epoch += 1;
            let view = View {
                known: BTreeMap::new(),
                epoch: self.view_epoch,
            };
            self.views.insert(room.clone(), view);
        }
        self.block_desc = format!(
            "joined ref {r:?} last_seq {last_seq} gap {gap} gen {} entries {}",
            self.gen,
            v["messages"].as_array().map_or(0, Vec::len)
        );
        let Some(range) = self.ws_block(&room, &v["messages"], "joined", fresh) else {
            return;
        };
        if !gap {
            match range {
                Some((_, last)) if last > last_seq => self.fail(
                    "ws_seq",
                    format!("joined #{room}: last entry {last} but last_seq {last_seq}"),
                ),
                // What follows the last message up to last_seq are changes.
                Some((_, last)) => self.skipped_after(
                    &room,
                    last,
                    last_seq,
                    "joined (after its last entry, up to its last_seq)",
                ),
                None => {}
            }
        }
        if let Some(since) = catch_up {
            // Catching up after a resume: since+1..=last_seq, and
            // last_seq is where the live stream is. The entries after
            // `since` that a catch-up leaves out are changes (to messages
            // it lists as they are now, or edits and reactions of a
            // message deleted since, whose delete it lists).
            if !gap {
                match range {
                    Some((first, _)) if first <= since => self.fail(
                        "ws_seq",
                        format!("catch-up of #{room} since {since} starts at {first}"),
                    ),
                    Some((first, _)) => {
                        for s in since + 1..first {
                            self.skipped(&room, s, "catch-up");
                        }
                    }
                    None if last_seq != since => self.fail(
                        "ws_seq",
                        format!(
                            "catch-up of #{room} since {since} is empty but last_seq is {last_seq}"
                        ),
                    ),
                    None => {}
                }
                // Applied, the catch-up leaves the client exactly up to
                // date: it is sure of every message it knows again.
                if let Some(view) = self.views.get_mut(&room) {
                    for k in view.known.values_mut() {
                        if let Known::Msg(m) = k {
                            m.sure = true;
                        }
                    }
                }
            }
            // With `gap` (more than a catch-up replays: over 500 messages,
            // or past the server's replay budget for one turn) the client
            // is to page on with `history`; this one does not, so there is
            // nothing more to compare.
            // A room the resume did not replay (a leave in flight when the
            // client vanished: the session had left it, the client did not
            // know) is joined afresh by this request: its catch-up stands
            // alone, checked above.
            let replayed = self.resume_joined.contains_key(&room);
            if let (Some(&c), false, true) = (self.cursor.get(&room), gap, replayed) {
                // Shared through Redis, what arrived while the catch-up was
                // read comes in it, not live before it: it may end past
                // the stream, never before it.
                if c != last_seq && !(self.sh.shared && c < last_seq) {
                    self.fail(
                        "ws_seq",
                        format!(
                            "catch-up of #{room} says last_seq {last_seq}, the stream is at {c} (since {since}; the resume's joined said {})",
                            match self.resume_joined.get(&room) {
                                Some((l, at)) => format!("{l}, {} ms before", at.elapsed().as_millis()),
                                None => "nothing".to_string(),
                            }
                        ),
                    );
                }
            }
            if gap {
                self.sh.stats.catch_up_gaps.inc();
            }
            self.finish_resume_check();
        } else if let Some(rc) = &mut self.resume_check {
            rc.seen.insert(room.clone());
            self.resume_joined
                .insert(room.clone(), (last_seq, Instant::now()));
            if let Some(&c) = self.cursor.get(&room) {
                if last_seq < c {
                    self.fail(
                        "ws_seq",
                        format!("resumed #{room} at last_seq {last_seq}, before the {c} seen"),
                    );
                }
            }
        } else if self.rooms.contains(&room) && !self.busy.contains(&room) {
            self.fail("ws_seq", format!("an unasked joined for #{room}"));
        }
        self.sh.stats.joins.inc();
        if !self.leaving.contains(&room) {
            self.busy.remove(&room);
        }
        self.rooms.insert(room.clone());
        self.cursor.insert(room, last_seq);
    }

    fn finish_resume_check(&mut self) {
        if let Some(rc) = self.resume_check.take() {
            if !rc.uncertain && rc.expected != rc.seen {
                self.fail(
                    "resume",
                    format!(
                        "was in {:?}, the resume replayed {:?}",
                        rc.expected, rc.seen
                    ),
                );
            }
        }
    }

    fn ws_message(&mut self, v: &Value) {
        let (Some(room), Some(seq), Some(from), Some(text)) = (
            v["room"].as_str(),
            v["seq"].as_u64(),
            v["from"].as_str(),
            v["text"].as_str(),
        ) else {
            return self.fail("malformed", format!("message {v}"));
        };
        if !v["ts"].is_u64() {
            self.fail("malformed", format!("message without ts {v}"));
        }
        let (room, from, text) = (room.to_string(), from.to_string(), text.to_string());
        let action = v["action"].as_bool().unwrap_or(false);
        let mut mode = Mode::Live;
        let mut own = false;
        if let Some(cid) = v["cid"].as_str() {
            let cid = cid.to_string();
            own = true;
            self.sh.stats.acks.inc();
            match self.sent.get(&cid) {
                Some(s) if s.room == room && s.expected == text => {}
                Some(s) => self.fail(
                    "ack",
                    format!(
                        "cid {cid} acknowledged as #{room} {text:?}, sent to #{} as {:?}",
                        s.room, s.expected
                    ),
                ),
                None => self.fail("ack", format!("an ack for unknown cid {cid}")),
            }
            self.must_ack.remove(&cid);
            if let Some(o) = &mut self.own_burst {
                if let Some(&n) = o.cids.get(&cid) {
                    o.acked.insert(n);
                }
            }
            if let Ok(mut a) = self.sh.acks.lock() {
                a.push((room.clone(), seq, text.clone()));
            }
            if self.retry_cids.remove(&cid) {
                let c = self.cursor.get(&room).copied().unwrap_or(0);
                if seq <= c {
                    // The original came back: stored once.
                    self.sh.stats.retry_original.inc();
                    mode = Mode::Replay;
                }
            }
        }
        if mode == Mode::Live {
            match self.cursor.get(&room).copied() {
                Some(c) if seq != c + 1 => {
                    self.fail(
                        "ws_seq",
                        format!(
                            "#{room}: seq {seq} after {c} ({})",
                            if seq > c {
                                "missed messages"
                            } else {
                                "repeated"
                            }
                        ),
                    );
                    self.cursor.insert(room.clone(), seq.max(c));
                }
                Some(_) => {
                    self.cursor.insert(room.clone(), seq);
                }
                None => {}
            }
        }
        let Some(tag) = self.chat(&room, &from, &text, action, mode) else {
            return;
        };
        // The sender's own `@NICK` names it, and it is connected: the
        // message mentions it (a line cut short by its sender's end may
        // have been stored once it was gone).
        let mentions = &v["mentions"];
        if mode == Mode::Live && *mentions != json!([from]) && !(tag.cut && mentions.is_null()) {
            self.fail(
                "wrong",
                format!("#{room} seq {seq} from {from} mentions {mentions}: {text:?}"),
            );
        }
        if own && tag.burst.is_none() && !tag.cut {
            self.remember_own(&room, seq, &tag);
        }
        if mode == Mode::Live {
            // Messages begin live with no reactions, and every change to
            // them comes after: the client is sure of them.
            let mv = MsgView {
                tag: Some((tag.key.clone(), tag.n)),
                nick: from.clone(),
                sure: true,
                ..MsgView::default()
            };
            let mut problem = None;
            if let Some(view) = self.views.get_mut(&room) {
                if let Some(k) = view.known.get(&seq) {
                    problem = Some(format!(
                        "#{room}: a live message at seq {seq}, known as {k:?}"
                    ));
                }
                view.known.insert(seq, Known::Msg(mv));
                prune(view);
                let epoch = view.epoch;
                self.recent
                    .push_back((room.clone(), seq, from.clone(), epoch));
                if self.recent.len() > RECENT_KEEP {
                    self.recent.pop_front();
                }
            }
            if let Some(p) = problem {
                self.fail("ws_seq", p);
            }
        }
    }

    fn ws_ack_dm(&mut self, cid: &str, to: &str, text: &str) {
        self.sh.stats.acks.inc();
        match self.sent.get(cid) {
            Some(s) if s.room == to && s.expected == text => {}
            Some(s) => self.fail(
                "ack",
                format!(
                    "dm cid {cid} acknowledged to {to} {text:?}, sent to {} as {:?}",
                    s.room, s.expected
                ),
            ),
            None => self.fail("ack", format!("a dm ack for unknown cid {cid}")),
        }
        self.must_ack.remove(cid);
        self.retry_cids.remove(cid);
    }

    fn ws_history(&mut self, v: &Value) {
        let Some(room) = v["room"].as_str() else {
            return self.fail("malformed", format!("history {v}"));
        };
        let room = room.to_string();
        self.stall_answers = self.stall_answers.saturating_sub(1);
        // A page shows the room as it is at this point of the stream.
        let Some(range) = self.ws_block(&room, &v["messages"], "history", true) else {
            return;
        };
        // A page of the latest messages ends where the stream is, but for
        // changes after its last message.
        if let (Some((_, last)), Some(&c)) = (range, self.cursor.get(&room)) {
            if !self.busy.contains(&room) {
                if last > c {
                    self.fail(
                        "ws_seq",
                        format!("history of #{room} ends at {last}, the stream is at {c}"),
                    );
                } else {
                    self.skipped_after(&room, last, c, "history");
                }
            }
        }
    }

    // -- what a client does -----------------------------------------------

    fn pick_any_room(&mut self) -> String {
        let i = self.rng.below(self.sh.rooms.len());
        self.sh.rooms[i].clone()
    }

    /// A room this client is in with nothing in flight, if any.
    fn pick_my_room(&mut self) -> Option<String> {
        let free: Vec<&String> = self
            .rooms
            .iter()
            .filter(|r| !self.busy.contains(*r))
            .collect();
        if free.is_empty() {
            return None;
        }
        let i = self.rng.below(free.len());
        Some(free[i].clone())
    }

    fn action(&mut self) {
        // A resume into no room: any replayed `joined` has come by now.
        if self
            .resume_check
            .as_ref()
            .is_some_and(|rc| rc.expected.is_empty())
        {
            self.finish_resume_check();
        }
        self.check_gone(Instant::now());
        // Now and then an edit, delete, reaction or search instead.
        if self.may_live() && self.rng.chance(0.14) {
            return self.live_action();
        }
        let w = self.rng.below(100);
        match w {
            0..=49 => self.say(false),
            50..=54 => self.say(true),
            55..=63 => self.join_or_leave(true),
            64..=68 => self.join_or_leave(false),
            69..=72 => self.change_nick(),
            73..=80 => self.send_dm(),
            81..=83 => self.ask_history(),
            84..=86 => self.ask_list(),
            87..=89 if self.ws => self.typing(),
            87..=92 if !self.ws => self.drip(),
            _ => self.say(false),
        }
    }

    /// Role-specific events, every few seconds.
    fn special(&mut self) {
        let (lo, hi) = match self.role {
            Role::Flooder => (8_000, 15_000),
            Role::Slow => (20_000, 40_000),
            Role::Vanisher => (6_000, 15_000),
            Role::Vandal => (4_000, 10_000),
            Role::Plain => (20_000, 60_000),
        };
        self.next_special = Instant::now() + self.rng.ms(lo, hi);
        match self.role {
            Role::Flooder => self.flood(),
            Role::Slow => self.stall(),
            Role::Vanisher => self.vanish_with_something_in_flight(),
            Role::Vandal => self.garbage(),
            Role::Plain => match self.rng.below(10) {
                0..=3 => self.vanish_with_something_in_flight(),
                4..=6 => self.garbage(),
                _ => self.drip(),
            },
        }
    }

    fn say(&mut self, action: bool) {
        let Some(room) = self.pick_my_room() else {
            return self.join_or_leave(true);
        };
        self.n += 1;
        let kind = if action { "me" } else { "in" };
        let (sent, expected) = compose(self.id, self.gen, self.n, &self.nick_out, kind, &room);
        self.sh.stats.said.inc();
        if self.ws {
            let cid = format!("c{}-{}", self.id, self.n);
            self.sh.log_cid(sent.len());
            let mut req = json!({"type":"say","room":room,"text":sent,"cid":cid,"ref":cid});
            if action {
                req["action"] = json!(true);
            }
            self.sent.insert(cid.clone(), Sent { room, expected });
            self.must_ack.insert(cid);
            self.send_json(req);
        } else {
            self.sh.stats.said_line.inc();
            let mut out = self.line_to(&room);
            if action {
                out.push_str("/me ");
            }
            out.push_str(&sent);
            out.push('\n');
            if self.send_raw(out.as_bytes()) {
                self.remember_line(&room, self.n, action);
            }
        }
    }

    /// Line: `/join ROOM\n` unless ROOM is surely current already.
    fn line_to(&mut self, room: &str) -> String {
        if self.current.as_deref() == Some(room) {
            String::new()
        } else {
            self.current = Some(room.to_string());
            self.busy.insert(room.to_string());
            format!("/join {room}\n")
        }
    }

    fn join(&mut self, room: String) -> bool {
        self.busy.insert(room.clone());
        if self.ws {
            self.send_json(json!({"type":"join","room":room,"ref":"j"}))
        } else {
            self.current = Some(room.clone());
            self.send_line(&format!("/join {room}"))
        }
    }

    fn join_or_leave(&mut self, join: bool) {
        let join = (join || self.rooms.len() <= 1) && self.rooms.len() < 4;
        if join {
            let room = self.pick_any_room();
            if self.rooms.contains(&room) || self.busy.contains(&room) {
                return;
            }
            self.join(room);
        } else if let Some(room) = self.pick_my_room() {
            if self.watching(&room) {
                return; // a burst is coming: stay to read it
            }
            self.sh.stats.leaves.inc();
            self.busy.insert(room.clone());
            if self.ws {
                self.leaving.insert(room.clone());
                self.send_json(json!({"type":"leave","room":room,"ref":"l"}));
            } else {
                self.current = None;
                self.send_line(&format!("/leave {room}"));
            }
        }
    }

    fn change_nick(&mut self) {
        self.nick_k += 1;
        self.nick_out = format!("s{}g{}k{}", self.id, self.gen, self.nick_k);
        self.sh.stats.nicks.inc();
        let nick = self.nick_out.clone();
        self.nick_asked.push_back(nick.clone());
        if self.ws {
            self.send_json(json!({"type":"nick","nick":nick}));
        } else {
            self.send_line(&format!("/nick {nick}"));
        }
    }

    fn send_dm(&mut self) {
        let Some(to) = self.sh.other_nick(self.id, &mut self.rng) else {
            return;
        };
        self.n += 1;
        let (sent, expected) = compose(self.id, self.gen, self.n, &self.nick_out, "dm", &to);
        self.sh.stats.dms.inc();
        if self.ws {
            let cid = format!("c{}-{}", self.id, self.n);
            self.sh.log_cid(sent.len());
            let req = json!({"type":"dm","to":to,"text":sent,"cid":cid,"ref":cid});
            self.sent.insert(cid.clone(), Sent { room: to, expected });
            self.must_ack.insert(cid);
            self.send_json(req);
        } else {
            self.send_line(&format!("/msg {to} {sent}"));
        }
    }

    fn ask_history(&mut self) {
        let Some(room) = self.pick_my_room() else {
            return;
        };
        if self.ws {
            self.send_json(json!({"type":"history","room":room,"limit":30,"ref":"h"}));
        } else {
            let mut out = self.line_to(&room);
            out.push_str("/history 20\n");
            self.send_raw(out.as_bytes());
        }
    }

    fn ask_list(&mut self) {
        let room = self.pick_my_room();
        match (self.ws, room) {
            (true, Some(room)) if self.rng.chance(0.5) => {
                self.send_json(json!({"type":"who","room":room}))
            }
            (true, _) => self.send_json(json!({"type":"rooms"})),
            (false, Some(room)) if self.rng.chance(0.5) => self.send_line(&format!("/who {room}")),
            (false, _) => self.send_line("/rooms"),
        };
    }

    fn typing(&mut self) {
        if let Some(room) = self.pick_my_room() {
            self.send_json(json!({"type":"typing","room":room}));
        }
    }

    /// Line: one message sent in 2-4 pieces, split anywhere (even inside a
    /// UTF-8 character), with pauses between.
    fn drip(&mut self) {
        if self.ws {
            return self.say(false);
        }
        let Some(room) = self.pick_my_room() else {
            return;
        };
        self.n += 1;
        let (sent, _) = compose(self.id, self.gen, self.n, &self.nick_out, "in", &room);
        self.sh.stats.said.inc();
        self.sh.stats.said_line.inc();
        self.sh.stats.drips.inc();
        let mut bytes = self.line_to(&room).into_bytes();
        bytes.extend_from_slice(sent.as_bytes());
        bytes.push(b'\n');
        let pieces = 2 + self.rng.below(3);
        let mut cuts: Vec<usize> = (1..pieces)
            .map(|_| 1 + self.rng.below(bytes.len() - 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut from = 0;
        let n = self.n;
        for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
            if !self.send_raw(&bytes[from..c]) {
                return;
            }
            from = c;
            if from < bytes.len() {
                // Reading meanwhile: a drip is no pause in reading.
                let d = self.rng.ms(20, 300);
                self.pump(d);
            }
        }
        if self.connected() {
            self.remember_line(&room, n, false);
        }
    }

    /// Flood past --rate: three bursts' worth (60 messages) at once;
    /// rate_limited must come back. (Two bursts' worth is not enough under
    /// flow control: a flood the server holds back and then reads over 2 s
    /// is within --rate by the time it is read, plus the credit for the hold.)
    fn flood(&mut self) {
        let Some(room) = self.pick_my_room() else {
            return self.join_or_leave(true);
        };
        self.sh.stats.floods.inc();
        self.flooded = true;
        self.line_unsure = true;
        if self.flood_check.is_none() {
            self.flood_check = Some(Instant::now());
        }
        let mut out = if self.ws {
            String::new()
        } else {
            self.line_to(&room)
        };
        for _ in 0..60 {
            self.n += 1;
            let (sent, expected) = compose(self.id, self.gen, self.n, &self.nick_out, "in", &room);
            self.sh.stats.said.inc();
            if self.ws {
                let cid = format!("c{}-{}", self.id, self.n);
                self.sh.log_cid(sent.len());
                self.sent.insert(
                    cid.clone(),
                    Sent {
                        room: room.clone(),
                        expected,
                    },
                );
                if !self
                    .send_json(json!({"type":"say","room":room,"text":sent,"cid":cid,"ref":cid}))
                {
                    return;
                }
            } else {
                self.sh.stats.said_line.inc();
                out.push_str(&sent);
                out.push('\n');
            }
        }
        if !self.ws {
            self.send_raw(out.as_bytes());
        }
    }

    /// Stop reading while asking for many big history pages (25 batches
    /// of 8, 40 ms apart): at 25-50 KiB a page that passes --max-outbound
    /// (1 MiB) plus the 4 MiB the kernel buffers on loopback, once the
    /// room has history, so the server drops us as a slow consumer. After a
    /// short stall (reading again within STALL_STRICT of the first request,
    /// measured: so within the server's 2 s linger of any drop) the stream
    /// must be intact up to a clean goodbye; after a longer one (a loaded
    /// machine, or 8-20 s more on purpose) the server may have given up on
    /// delivering anything.
    fn stall(&mut self) {
        let Some(room) = self.pick_my_room() else {
            return self.join_or_leave(true);
        };
        // A room that had a burst holds messages of 3,900 bytes: pages of
        // 200 would be 780 KB, and the server loads every page asked for in
        // one read before it finds the reader slow (25 MiB for the 8
        // requests of one batch, much more when it reads several at once).
        // Smaller pages overflow its outbound limit as surely.
        let now = Instant::now();
        let limit = if self.plan.iter().any(|b| b.room == room && b.at <= now) {
            20
        } else {
            200
        };
        self.sh.stats.stalls.inc();
        let long = self.rng.chance(0.4);
        let prefix = if self.ws {
            String::new()
        } else {
            self.line_to(&room)
        };
        if !prefix.is_empty() {
            self.send_raw(prefix.as_bytes());
        }
        let ws_req = json!({"type":"history","room":room,"limit":limit}).to_string();
        let line_batch = format!("/history {limit}\n").repeat(8);
        let started = Instant::now();
        self.stall_mark = Some(started);
        self.stall_answers = 0;
        for _ in 0..25 {
            let ok = if self.ws {
                (0..8).all(|_| self.send_json_text(&ws_req))
            } else {
                self.send_raw(line_batch.as_bytes())
            };
            if !ok {
                break;
            }
            self.stall_answers += 8;
            thread::sleep(Duration::from_millis(40));
        }
        if long {
            let until = (Instant::now() + self.rng.ms(8_000, 20_000)).min(self.deadline);
            let now = Instant::now();
            if until > now {
                thread::sleep(until - now);
            }
        }
        // Unread since the first request: on a loaded machine the writes
        // alone can take longer than the server's linger of a drop.
        let unread = started.elapsed();
        self.stall_unread = Some(unread);
        if !long && unread <= STALL_STRICT {
            self.sh.stats.stalls_strict.inc();
            self.short_stall_until = Some(Instant::now() + Duration::from_secs(30));
        } else {
            self.long_stall = true;
        }
        // Read every answer, or what came before the goodbye (if a write
        // failed, the server has dropped us: read what it sent before it
        // did), sending nothing meanwhile: a request written after the
        // server closed would be answered with a reset, which destroys what
        // it still had in flight.
        self.closed = false;
        let until = Instant::now() + Duration::from_secs(30);
        while !self.closed && self.stall_answers > 0 && Instant::now() < until {
            self.pump(Duration::from_millis(200));
        }
    }

    /// Vanish (reset or close), sometimes with a message in flight: a
    /// half-sent line, or a WebSocket `say` to retry after the resume.
    fn vanish_with_something_in_flight(&mut self) {
        if self.rng.chance(0.4) {
            if let Some(room) = self.pick_my_room() {
                self.n += 1;
                if self.ws {
                    let (sent, expected) =
                        compose(self.id, self.gen, self.n, &self.nick_out, "in", &room);
                    let cid = format!("c{}-{}", self.id, self.n);
                    self.sh.log_cid(sent.len());
                    let req = json!({"type":"say","room":room,"text":sent,"cid":cid,"ref":cid});
                    self.sent.insert(cid.clone(), Sent { room, expected });
                    self.send_json(req.clone());
                    self.retry = Some((cid, req));
                } else {
                    self.sh.stats.cuts.inc();
                    let text = header(self.id, self.gen, self.n, "~", &self.nick_out, "in", &room)
                        + &filler(self.id, self.gen, self.n);
                    let head =
                        header(self.id, self.gen, self.n, "~", &self.nick_out, "in", &room).len();
                    let mut cut = head + 1 + self.rng.below(text.len() - head);
                    while cut < text.len() && !text.is_char_boundary(cut) {
                        cut += 1;
                    }
                    let mut out = self.line_to(&room);
                    out.push_str(&text[..cut.min(text.len())]);
                    self.send_raw(out.as_bytes());
                }
            }
        }
        let wait = Duration::from_millis(self.rng.below(200) as u64);
        self.pump(wait);
        self.vanish();
    }

    /// Garbage the server must shrug off.
    fn garbage(&mut self) {
        self.sh.stats.garbage.inc();
        if self.rng.chance(0.25) {
            // With TLS on, some junk is TLS junk (a first byte 0x16).
            if let Some(tls) = self.sh.tls.clone().filter(|_| self.rng.chance(0.4)) {
                return tls_junk(&self.sh, &tls, &mut self.rng, self.deadline);
            }
            self.sh.stats.junk.inc();
            return junk_connection(self.sh.addr, &mut self.rng);
        }
        self.garbage = true;
        if self.ws {
            match self.rng.below(6) {
                0 => {
                    self.send_json_text("{\"type\":\"say\",\"room\":");
                }
                1 => {
                    self.send_json(json!({"type":"frobnicate"}));
                }
                2 => {
                    self.send_json(json!({"type":"say","room":5,"text":[]}));
                }
                3 => {
                    self.send_json(json!([1, 2, 3]));
                }
                4 => {
                    self.send_json(json!({"type":"join","room":"no spaces allowed!"}));
                }
                _ => {
                    // A binary frame: the server closes with 1003 and the
                    // rooms see us leave.
                    self.violated = true;
                    let frame = natter::proto::ws::encode_client_frame(
                        true,
                        0,
                        0x2,
                        b"\x00\x01junk",
                        [1, 2, 3, 4],
                    );
                    self.send_raw(&frame);
                    // The frame is read when the server reads this client
                    // again: flow control may hold a busy room's input for a
                    // few seconds (a stall is noticed in 2 s, a reader that
                    // does not catch up in 5 s).
                    self.pump(Duration::from_secs(8));
                    if !self.closed {
                        self.fail(
                            "closed",
                            "a binary frame did not close the connection".into(),
                        );
                    }
                    self.closed = true;
                }
            }
        } else {
            let mut bytes: Vec<u8> = match self.rng.below(4) {
                0 => b"soak \xff\xfe not utf-8 \xc0\xaf\n".to_vec(),
                1 => {
                    let mut v = vec![b'x'; 5000];
                    v.push(b'\n');
                    v
                }
                2 => b"/frobnicate now\n".to_vec(),
                _ => b"/join no spaces allowed!\n".to_vec(),
            };
            if self.rng.chance(0.3) {
                bytes.extend_from_slice(b"\xed\xa0\x80 surrogate\n");
            }
            self.send_raw(&bytes);
        }
    }

    fn send_json_text(&mut self, raw: &str) -> bool {
        self.drain_out();
        let Conn::Ws(ws) = &mut self.conn else {
            return false;
        };
        let ok = ws.send(Message::Text(raw.to_string())).is_ok();
        if !ok {
            self.write_failed = true;
            self.closed = true;
        }
        ok
    }

    /// The end of the run: wait for outstanding acks, then say goodbye.
    fn finish(&mut self) {
        self.settle(Instant::now(), false);
        if self.resume_again && matches!(self.conn, Conn::None) {
            // Its last resume failed and there is no time left to retry.
            self.sh.abandoned();
        }
        if matches!(self.conn, Conn::None) {
            return self.settle(Instant::now(), true);
        }
        if self.closed {
            return self.on_connection_ended();
        }
        self.drain_out();
        if self.ws {
            let until = Instant::now() + Duration::from_secs(10);
            while (!self.must_ack.is_empty() || !self.asked.is_empty())
                && !self.closed
                && Instant::now() < until
            {
                self.pump(Duration::from_millis(200));
            }
            if !self.asked.is_empty() && !self.flooded && !self.slow_dropped && !self.closed {
                let left: Vec<Asked> = self.asked.values().cloned().collect();
                for a in left.iter().take(3) {
                    let cat = if matches!(a, Asked::Search(_)) {
                        "search"
                    } else {
                        "amend"
                    };
                    self.fail(cat, format!("never answered: {a:?}"));
                }
            }
            if !self.must_ack.is_empty() && !self.flooded && !self.slow_dropped && !self.closed {
                let mut left: Vec<&String> = self.must_ack.iter().collect();
                left.sort();
                let trail: Vec<&str> = self.trail.iter().map(String::as_str).collect();
                self.fail(
                    "ack",
                    format!(
                        "{} messages never acknowledged: {:?}; last requests and answers:\n    {}",
                        left.len(),
                        &left[..left.len().min(5)],
                        trail.join("\n    ")
                    ),
                );
            }
            if let Conn::Ws(ws) = &mut self.conn {
                let _ = ws.close(None);
            }
        } else {
            self.send_line("/quit soak over");
        }
        let until = Instant::now() + Duration::from_secs(10);
        while !self.closed && Instant::now() < until {
            self.pump(Duration::from_millis(200));
        }
        let said_bye = if self.ws {
            self.close_code.is_some()
        } else {
            self.bye
        };
        if said_bye && !self.ws && !self.line_asked.is_empty() {
            let left: Vec<LineAsked> = self.line_asked.iter().cloned().collect();
            for a in left.iter().take(3) {
                let cat = if matches!(a, LineAsked::Search(_)) {
                    "search"
                } else {
                    "amend"
                };
                self.fail(cat, format!("never answered (before *** bye): {a:?}"));
            }
        }
        if !said_bye && !self.slow_dropped && !self.long_stall {
            self.fail(
                "quit",
                format!(
                    "no {} after saying goodbye (closed {})",
                    if self.ws { "close frame" } else { "*** bye" },
                    self.closed
                ),
            );
        }
        self.settle(Instant::now(), true);
        self.lose_asked();
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
    }
}

// ---------------------------------------------------------------------------
// Messages that live (edit, delete, react) and search
// ---------------------------------------------------------------------------

/// An `edit`, `delete` or `react` event, as the protocol gives it.
#[derive(Debug, Clone)]
struct AmendEv {
    /// 'e', 'd' or 'r'.
    kind: char,
    room: String,
    seq: u64,
    target: u64,
    /// `from` (edit, react) or `by` (delete).
    who: String,
    text: Option<String>,
    emoji: Option<String>,
    on: Option<bool>,
}

/// Parses an `edit`, `delete` or `react` event: exactly the fields
/// PROTOCOL-2 section 3 gives it (and `ref` on the asker's copy).
fn parse_amend(v: &Value) -> Result<AmendEv, String> {
    let kind = match v["type"].as_str() {
        Some("edit") => 'e',
        Some("delete") => 'd',
        Some("react") => 'r',
        _ => return Err("not a change".into()),
    };
    let (Some(room), Some(seq), Some(target)) =
        (v["room"].as_str(), v["seq"].as_u64(), v["target"].as_u64())
    else {
        return Err("a change without room, seq or target".into());
    };
    if !v["ts"].is_u64() {
        return Err("a change without ts".into());
    }
    let who = v[if kind == 'd' { "by" } else { "from" }]
        .as_str()
        .ok_or("a change without from or by")?;
    let fields: &[&str] = match kind {
        'e' => &["type", "room", "seq", "target", "from", "text", "ts", "ref"],
        'd' => &["type", "room", "seq", "target", "by", "ts", "ref"],
        _ => &[
            "type", "room", "seq", "target", "from", "emoji", "on", "ts", "ref",
        ],
    };
    if let Some(k) = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| !fields.contains(&k.as_str()))
    {
        return Err(format!("a change with {k:?}"));
    }
    let text = v["text"].as_str().map(str::to_string);
    let emoji = v["emoji"].as_str().map(str::to_string);
    let on = v["on"].as_bool();
    match kind {
        'e' if text.is_none() => return Err("an edit without text".into()),
        'r' if emoji.is_none() || on.is_none() => {
            return Err("a reaction without emoji or on".into())
        }
        _ => {}
    }
    Ok(AmendEv {
        kind,
        room: room.to_string(),
        seq,
        target,
        who: who.to_string(),
        text,
        emoji,
        on,
    })
}

/// Keeps a room's view to its latest VIEW_KEEP entries.
fn prune(view: &mut View) {
    while view.known.len() > VIEW_KEEP {
        view.known.pop_first();
    }
}

impl Client {
    /// What own message `o` says now, as the server stores it.
    fn own_text(&self, o: &Own) -> String {
        if o.edit == 0 {
            compose(self.id, o.gen, o.n, &o.nick, o.kind(), &o.room).1
        } else {
            compose_edit(self.id, o.gen, o.n, o.edit, &o.nick, o.kind(), &o.room).1
        }
    }

    fn own_key(&self, gen: u32) -> String {
        format!("{}.{gen}", self.id)
    }

    fn own_mut(&mut self, n: u64) -> Option<&mut Own> {
        self.own.iter_mut().find(|o| o.n == n)
    }

    fn push_own(&mut self, o: Own) {
        if self.own.iter().any(|x| x.n == o.n) {
            return;
        }
        self.own.push_back(o);
        while self.own.len() > OWN_KEEP {
            self.own.pop_front();
        }
    }

    /// An acknowledged WebSocket message of this client's.
    fn remember_own(&mut self, room: &str, seq: u64, tag: &Tag) {
        let (_, gen) = tag.id_gen();
        let o = Own {
            room: room.to_string(),
            seq,
            gen,
            n: tag.n,
            nick: tag.nick.clone(),
            action: tag.kind == "me",
            edit: 0,
            deleted: false,
            session: self.session.clone().unwrap_or_default(),
            at: Instant::now(),
            busy: false,
            unsure: false,
        };
        self.push_own(o);
    }

    /// A message this line client wrote whole (the server takes a line
    /// connection's lines in order: a later `/edit` sees it).
    fn remember_line(&mut self, room: &str, n: u64, action: bool) {
        let o = Own {
            room: room.to_string(),
            seq: 0,
            gen: self.gen,
            n,
            nick: self.nick_out.clone(),
            action,
            edit: 0,
            deleted: false,
            session: format!("line{}", self.gen),
            at: Instant::now(),
            busy: false,
            unsure: false,
        };
        self.push_own(o);
    }

    fn next_ref(&mut self, kind: char) -> String {
        self.asked_k += 1;
        format!("{kind}{}-{}", self.gen, self.asked_k)
    }

    /// Whether this client may edit, delete, react and search now: not
    /// while it floods or its burst is out (such requests could be refused
    /// by flood control, which answers at most one refusal a second).
    fn may_live(&self) -> bool {
        self.lives
            && !self.flooded
            && self.own_burst.is_none()
            && self.connected()
            && (!self.ws || self.session.is_some())
    }

    fn live_action(&mut self) {
        let w = self.rng.below(100);
        if self.ws {
            match w {
                0..=34 => self.ws_edit(false),
                35..=69 => self.ws_react(),
                70..=77 => self.ws_edit(true),
                _ => self.ws_search(),
            }
        } else {
            match w {
                0..=19 => self.line_edit(false),
                20..=24 => self.line_edit(true),
                25..=54 => self.line_react(),
                _ => self.line_search(),
            }
        }
    }

    /// A room this client is in with nothing in flight.
    fn room_free(&self, room: &str) -> bool {
        self.rooms.contains(room) && !self.busy.contains(room) && !self.leaving.contains(room)
    }

    fn known_deleted(&self, room: &str, seq: u64) -> bool {
        self.views
            .get(room)
            .and_then(|v| v.known.get(&seq))
            .is_some_and(|k| matches!(k, Known::Msg(m) if m.deleted))
    }

    // -- WebSocket requests -------------------------------------------------

    /// Edit (or delete) one of this session's recent messages, in a room
    /// it is in, sent under the nick it has now (so the change comes from
    /// the nick the message names, and a delete needs no ` by`).
    fn ws_edit(&mut self, delete: bool) {
        let session = self.session.clone().unwrap_or_default();
        let ok: Vec<usize> = (0..self.own.len())
            .filter(|&i| {
                let o = &self.own[i];
                o.seq > 0
                    && o.session == session
                    && !o.deleted
                    && !o.busy
                    && !o.unsure
                    && o.at.elapsed() < EDIT_RECENT
                    && o.nick == self.nick_out
                    && self.room_free(&o.room)
            })
            .collect();
        if ok.is_empty() {
            return self.ws_search();
        }
        let i = ok[self.rng.below(ok.len())];
        let prior = self.own_text(&self.own[i]);
        let o = self.own[i].clone();
        self.own[i].busy = true;
        if delete {
            self.sh.stats.ws_deletes.inc();
            let r = self.next_ref('d');
            self.asked.insert(
                r.clone(),
                Asked::Delete {
                    room: o.room.clone(),
                    seq: o.seq,
                    n: o.n,
                    prior,
                },
            );
            self.send_json(json!({"type":"delete","room":o.room,"seq":o.seq,"ref":r}));
        } else {
            self.sh.stats.ws_edits.inc();
            let e = o.edit + 1;
            let (sent, expected) = compose_edit(self.id, o.gen, o.n, e, &o.nick, o.kind(), &o.room);
            let r = self.next_ref('e');
            self.asked.insert(
                r.clone(),
                Asked::Edit {
                    room: o.room.clone(),
                    seq: o.seq,
                    n: o.n,
                    prior,
                    e,
                    text: expected,
                },
            );
            self.send_json(json!({"type":"edit","room":o.room,"seq":o.seq,"text":sent,"ref":r}));
        }
    }

    /// Toggle an emoji on a message received live in a room it has been in
    /// since. It knows whether its own reaction is on (this session put it
    /// there), so the answer must say exactly that. One put there under
    /// an older nick is left alone: the `react` event names the nick of
    /// the one who toggles, and the room (which lists the nick that put it
    /// there) could not tell whose reaction went.
    fn ws_react(&mut self) {
        // A third of the time, take back one of its own reactions.
        let on: Vec<(String, u64, String)> = self
            .my_reacts
            .iter()
            .filter(|((room, seq, _), m)| {
                **m == Mine::On(self.nick_out.clone())
                    && self.room_free(room)
                    && !self.known_deleted(room, *seq)
            })
            .map(|(k, _)| k.clone())
            .collect();
        if !on.is_empty() && self.rng.chance(0.33) {
            let (room, seq, emoji) = on[self.rng.below(on.len())].clone();
            return self.ws_react_on(room, seq, emoji);
        }
        let cands: Vec<(String, u64)> = self
            .recent
            .iter()
            .filter(|(room, seq, _, epoch)| {
                *seq > 0
                    && self.room_free(room)
                    && self.views.get(room).is_some_and(|v| v.epoch == *epoch)
                    && !self.known_deleted(room, *seq)
            })
            .map(|(room, seq, _, _)| (room.clone(), *seq))
            .collect();
        if cands.is_empty() {
            return self.ws_search();
        }
        let (room, seq) = cands[self.rng.below(cands.len())].clone();
        let emoji = WS_EMOJI[self.rng.below(WS_EMOJI.len())].to_string();
        self.ws_react_on(room, seq, emoji);
    }

    fn ws_react_on(&mut self, room: String, seq: u64, emoji: String) {
        let on = match self.my_reacts.get(&(room.clone(), seq, emoji.clone())) {
            Some(Mine::Unsure) => return,
            Some(Mine::On(nick)) if *nick != self.nick_out => return,
            Some(Mine::On(_)) => false,
            Some(Mine::Off) | None => true,
        };
        let mine = match self.own.iter().find(|o| o.room == room && o.seq == seq) {
            Some(o) if o.deleted || o.busy || o.unsure => return,
            Some(_) => true,
            None => false,
        };
        let watch = self.views.get(&room).and_then(|v| match v.known.get(&seq) {
            Some(Known::Msg(m)) if m.sure && !m.deleted => Some(v.epoch),
            _ => None,
        });
        self.sh.stats.ws_reacts.inc();
        let r = self.next_ref('r');
        let req = json!({"type":"react","room":room,"seq":seq,"emoji":emoji,"ref":r});
        self.asked.insert(
            r,
            Asked::React {
                room,
                seq,
                emoji,
                nick: self.nick_out.clone(),
                who: format!("{}:{}", self.id, self.session.clone().unwrap_or_default()),
                on: Some(on),
                mine,
                watch,
            },
        );
        self.send_json(req);
    }

    /// Search for the word of one of its own messages: it must be the one
    /// result while the message says it, and must not be found once the
    /// message is deleted or edited to say something else. Now and then
    /// across every room it is in (no `room`). With no message of its own
    /// to look for, a common word in any room (checked result by result).
    fn ws_search(&mut self) {
        let cands: Vec<usize> = (0..self.own.len())
            .filter(|&i| {
                let o = &self.own[i];
                o.seq > 0 && !o.busy && !o.unsure && o.at.elapsed() >= SEARCH_AFTER
            })
            .collect();
        let look = if cands.is_empty() {
            Looking {
                room: Some(self.pick_any_room()),
                q: "soak".into(),
                own: None,
                seq: 0,
                found: false,
            }
        } else {
            let o = self.own[cands[self.rng.below(cands.len())]].clone();
            let (e, found) = if o.deleted {
                (o.edit, false)
            } else if o.edit > 0 && self.rng.chance(0.4) {
                (self.rng.below(o.edit as usize) as u32, false)
            } else {
                (o.edit, true)
            };
            // Across its rooms only where the message's room surely is one.
            let every = self.rng.chance(0.15) && (!found || self.room_free(&o.room));
            Looking {
                room: (!every).then(|| o.room.clone()),
                q: word(self.id, o.gen, o.n, e),
                own: Some((self.own_key(o.gen), o.n, e)),
                seq: o.seq,
                found,
            }
        };
        self.sh.stats.ws_searches.inc();
        let r = self.next_ref('s');
        let mut req = json!({"type":"search","q":look.q,"limit":20,"ref":r});
        if let Some(room) = &look.room {
            req["room"] = json!(room);
        }
        self.asked.insert(r, Asked::Search(look));
        self.send_json(req);
    }

    // -- WebSocket answers and events ---------------------------------------

    /// An `edit`, `delete` or `react` event: the next entry of its room's
    /// stream (the room's, or the answer to this client's own request).
    fn ws_amend(&mut self, v: &Value) {
        let a = match parse_amend(v) {
            Ok(a) => a,
            Err(e) => return self.fail("malformed", format!("{e}: {v}")),
        };
        if !self.rooms.contains(&a.room) {
            self.fail(
                "amend_event",
                format!("a change in #{}, a room it is not in: {v}", a.room),
            );
        }
        match self.cursor.get(&a.room).copied() {
            Some(c) if a.seq != c + 1 => {
                self.fail(
                    "ws_seq",
                    format!(
                        "#{}: seq {} ({}) after {c} ({})",
                        a.room,
                        a.seq,
                        v["type"],
                        if a.seq > c {
                            "missed entries"
                        } else {
                            "repeated"
                        }
                    ),
                );
                self.cursor.insert(a.room.clone(), a.seq.max(c));
            }
            Some(_) => {
                self.cursor.insert(a.room.clone(), a.seq);
            }
            None => {}
        }
        let asked = v["ref"].as_str().and_then(|r| self.asked.remove(r));
        if asked.is_none() {
            self.sh.stats.amend_events_ws.inc();
        }
        self.check_amend(&a, true);
        if let Some(asked) = asked {
            self.answered(asked, &a);
        }
    }

    /// An edit, delete or reaction, against what the client knows of its
    /// room, then applied. `live`: the next entry of the stream (else one
    /// of a join's or catch-up's, which may repeat what came live).
    fn check_amend(&mut self, a: &AmendEv, live: bool) {
        let what = if live { "live" } else { "in a catch-up" };
        let name = match a.kind {
            'e' => "edit",
            'd' => "delete",
            _ => "reaction",
        };
        if a.target == 0 || a.target >= a.seq {
            self.fail(
                "amend_event",
                format!(
                    "#{} seq {} ({what}): {name} of seq {}",
                    a.room, a.seq, a.target
                ),
            );
        }
        if let Err(e) = self.sh.note_change(&a.room, a.seq, a.kind, a.target) {
            self.fail("amend_event", e);
        }
        let mut edit = None;
        if let Some(text) = &a.text {
            match verify(text) {
                Ok(t) if t.edit > 0 && t.dest == a.room && t.nick == a.who && t.burst.is_none() => {
                    edit = Some(t)
                }
                Ok(_) => self.fail(
                    "amend_event",
                    format!(
                        "#{} seq {} ({what}): an edit by {} says {text:?}",
                        a.room, a.seq, a.who
                    ),
                ),
                Err(e) => self.fail(
                    "amend_event",
                    format!("#{} seq {} ({what}): an edit: {e}: {text:?}", a.room, a.seq),
                ),
            }
        }
        if let Some(t) = &edit {
            let k = (t.key.clone(), t.n);
            let before = self.edits_seen.get(&k).copied().unwrap_or(0);
            if live && t.edit <= before {
                self.fail(
                    "order",
                    format!(
                        "#{}: edit {} of {}#{} after edit {before}",
                        a.room, t.edit, t.key, t.n
                    ),
                );
            }
            self.edits_seen.insert(k, t.edit.max(before));
        }
        if let Some(emoji) = &a.emoji {
            if !WS_EMOJI.contains(&emoji.as_str()) && !LINE_EMOJI.contains(&emoji.as_str()) {
                self.fail(
                    "amend_event",
                    format!(
                        "#{} seq {}: a reaction {emoji:?} nobody put there",
                        a.room, a.seq
                    ),
                );
            }
        }
        if a.kind == 'd' {
            self.gone_checks
                .retain(|g| !(g.0 == a.room && g.1 == a.target));
        }
        let mut problems = Vec::new();
        if let Some(view) = self.views.get_mut(&a.room) {
            if let Some(Known::Msg(m)) = view.known.get(&a.seq) {
                problems.push(format!(
                    "#{} seq {} ({what}) is a {name}; it was a message ({:?} from {})",
                    a.room, a.seq, m.tag, m.nick
                ));
            }
            view.known.insert(a.seq, Known::Change("a change event"));
            match view.known.get_mut(&a.target) {
                Some(Known::Change(by)) => problems.push(format!(
                    "#{} seq {} ({what}): a {name} of seq {}, which is no message (said by: {by}; {:?})",
                    a.room,
                    a.seq,
                    a.target,
                    self.hole_origin.get(&(a.room.clone(), a.target))
                )),
                Some(Known::Msg(m)) => {
                    if live && m.deleted {
                        problems.push(format!(
                            "#{} seq {}: a {name} of message {}, deleted before",
                            a.room, a.seq, a.target
                        ));
                    }
                    match a.kind {
                        'e' => {
                            if let Some(t) = &edit {
                                let tag = (t.key.clone(), t.n);
                                if m.tag.as_ref().is_some_and(|x| *x != tag) {
                                    problems.push(format!(
                                        "#{} seq {} ({what}): an edit of {} says it is {}#{}; that is {:?}",
                                        a.room, a.seq, a.target, t.key, t.n, m.tag
                                    ));
                                }
                                m.tag = Some(tag);
                                m.edit = m.edit.max(t.edit);
                            }
                        }
                        'd' => {
                            if !m.nick.is_empty() && m.nick != a.who {
                                problems.push(format!(
                                    "#{} seq {} ({what}): message {} of {} deleted by {}",
                                    a.room, a.seq, a.target, m.nick, a.who
                                ));
                            }
                            m.deleted = true;
                            m.reactions.clear();
                        }
                        _ => {
                            let emoji = a.emoji.clone().unwrap_or_default();
                            if WS_EMOJI.contains(&emoji.as_str()) && !m.deleted {
                                let on = a.on == Some(true);
                                let list = m.reactions.entry(emoji.clone()).or_default();
                                let had = list.contains(&a.who);
                                if live && m.sure && on == had {
                                    problems.push(format!(
                                        "#{} seq {}: reaction {emoji} by {} on {} turned {}, but it was {} already ({list:?})",
                                        a.room, a.seq, a.who, a.target,
                                        if on { "on" } else { "off" },
                                        if had { "on" } else { "off" },
                                    ));
                                }
                                // Applied so that a repeat changes nothing.
                                if on && !had {
                                    list.push(a.who.clone());
                                    list.sort();
                                } else if !on {
                                    if let Some(i) = list.iter().position(|n| *n == a.who) {
                                        list.remove(i);
                                    }
                                }
                                if list.is_empty() {
                                    m.reactions.remove(&emoji);
                                }
                            }
                        }
                    }
                }
                None => {}
            }
            prune(view);
        }
        for p in problems {
            self.fail("amend_event", p);
        }
    }

    /// The answer to this client's own edit, delete or reaction.
    fn answered(&mut self, asked: Asked, a: &AmendEv) {
        self.sh.stats.amends_answered.inc();
        let bad = |what: String| format!("{what}, answered with {a:?}");
        match asked {
            Asked::Edit {
                room,
                seq,
                n,
                prior,
                e,
                text,
            } => {
                // The text names the nick it was sent under: the edit comes
                // from that nick (see ws_edit).
                let nick = verify(&text).map(|t| t.nick).unwrap_or_default();
                if a.kind != 'e'
                    || a.room != room
                    || a.target != seq
                    || a.text.as_deref() != Some(text.as_str())
                    || a.who != nick
                {
                    self.fail("amend", bad(format!("edit {e} of #{room} {seq} as {nick}")));
                    return;
                }
                set_fate(
                    &self.sh.ws_fates,
                    (room.clone(), seq),
                    Fate::Text(prior),
                    Fate::Text(text),
                    true,
                );
                if let Some(o) = self.own_mut(n) {
                    o.busy = false;
                    o.edit = e;
                }
            }
            Asked::Delete {
                room,
                seq,
                n,
                prior,
            } => {
                let nick = verify(&prior).map(|t| t.nick).unwrap_or_default();
                if a.kind != 'd' || a.room != room || a.target != seq || a.who != nick {
                    self.fail("amend", bad(format!("delete of #{room} {seq} as {nick}")));
                    return;
                }
                set_fate(
                    &self.sh.ws_fates,
                    (room.clone(), seq),
                    Fate::Text(prior),
                    Fate::Deleted,
                    true,
                );
                if let Some(o) = self.own_mut(n) {
                    o.busy = false;
                    o.deleted = true;
                }
            }
            Asked::React {
                room,
                seq,
                emoji,
                nick,
                who,
                on,
                ..
            } => {
                if a.kind != 'r'
                    || a.room != room
                    || a.target != seq
                    || a.emoji.as_deref() != Some(emoji.as_str())
                    || a.who != nick
                    || (on.is_some() && a.on != on)
                {
                    self.fail(
                        "amend",
                        bad(format!(
                            "reaction {emoji} on #{room} {seq} as {nick}, to come out {on:?}"
                        )),
                    );
                }
                let now_on = a.on == Some(true);
                if now_on {
                    self.sh.stats.reacts_on.inc();
                } else {
                    self.sh.stats.reacts_off.inc();
                }
                self.sh.set_react(
                    (room.clone(), seq, emoji.clone(), who),
                    None,
                    now_on.then(|| a.who.clone()),
                    true,
                );
                let mine = if now_on {
                    Mine::On(a.who.clone())
                } else {
                    Mine::Off
                };
                self.my_reacts.insert((room, seq, emoji), mine);
            }
            Asked::Search(look) => {
                self.fail("search", bad(format!("search {look:?}")));
            }
        }
    }

    /// An error answering one of this client's edits, deletes, reactions
    /// or searches. Only a reaction on someone else's message may be
    /// refused (`no_such_message`: its author deleted it meanwhile); then
    /// the delete reaches this client too.
    fn asked_refused(&mut self, asked: Asked, code: &str, message: &str) {
        match asked {
            Asked::React {
                room,
                seq,
                mine: false,
                watch,
                ..
            } if code == "no_such_message" => {
                self.sh.stats.reacts_gone.inc();
                let epoch = self.views.get(&room).map(|v| v.epoch);
                if watch.is_some() && watch == epoch && !self.known_deleted(&room, seq) {
                    let until = Instant::now() + GONE_WAIT;
                    self.gone_checks
                        .push((room, seq, epoch.unwrap_or(0), until));
                }
            }
            other => {
                let n = match &other {
                    Asked::Edit { n, .. } | Asked::Delete { n, .. } => Some(*n),
                    _ => None,
                };
                if let Some(o) = n.and_then(|n| self.own_mut(n)) {
                    o.busy = false;
                }
                let trail: Vec<&str> = self.trail.iter().map(String::as_str).collect();
                let cat = if matches!(other, Asked::Search(_)) {
                    "search"
                } else {
                    "amend"
                };
                self.fail(
                    cat,
                    format!(
                        "{other:?} refused unprovoked: {code}: {message}; last requests and answers:\n    {}",
                        trail.join("\n    ")
                    ),
                );
            }
        }
    }

    /// A reaction refused as `no_such_message` whose target's delete never
    /// came, although the client stayed in the room: FAIL.
    fn check_gone(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.gone_checks.len() {
            if self.gone_checks[i].3 > now {
                i += 1;
                continue;
            }
            let (room, seq, epoch, _) = self.gone_checks.remove(i);
            let stayed =
                self.connected() && self.views.get(&room).is_some_and(|v| v.epoch == epoch);
            if stayed {
                self.fail(
                    "amend",
                    format!(
                        "a reaction on #{room} {seq} was refused with no_such_message, and no delete of {seq} came within {} s",
                        GONE_WAIT.as_secs()
                    ),
                );
            }
        }
    }

    /// The answer to a search.
    fn ws_search_answer(&mut self, v: &Value) {
        let look = match v["ref"].as_str().and_then(|r| self.asked.remove(r)) {
            Some(Asked::Search(look)) => look,
            Some(other) => {
                return self.fail("search", format!("{other:?} answered with a search: {v}"))
            }
            None => return self.fail("search", format!("an unasked search answer: {v}")),
        };
        if v["q"].as_str() != Some(look.q.as_str())
            || v.get("room").and_then(Value::as_str) != look.room.as_deref()
        {
            self.fail(
                "search",
                format!(
                    "a search for {:?} in {:?} answered as {v}",
                    look.q, look.room
                ),
            );
        }
        let Some(results) = v["results"].as_array() else {
            return self.fail("malformed", format!("search without results: {v}"));
        };
        self.sh.stats.search_results.add(results.len() as u64);
        let mut hits = 0;
        let mut last_seq: Option<u64> = None;
        for m in results {
            let (Some(room), Some(seq)) = (m["room"].as_str(), m["seq"].as_u64()) else {
                self.fail("malformed", format!("search result {m}"));
                continue;
            };
            let room = room.to_string();
            if m["type"] != "message" || m["deleted"] == json!(true) {
                self.fail("search", format!("a search for {:?} found {m}", look.q));
                continue;
            }
            match &look.room {
                Some(r) if *r != room => self.fail(
                    "search",
                    format!("a search of #{r} found a message of #{room}"),
                ),
                Some(_) => {
                    if last_seq.is_some_and(|l| seq >= l) {
                        self.fail(
                            "search",
                            format!("search results of #{room} not newest first: {seq} after {last_seq:?}"),
                        );
                    }
                    last_seq = Some(seq);
                }
                None if !self.rooms.contains(&room)
                    && !self.busy.contains(&room)
                    && !self.leaving.contains(&room) =>
                {
                    self.fail(
                        "search",
                        format!(
                            "a search of its rooms {:?} found a message of #{room}",
                            self.rooms
                        ),
                    )
                }
                None => {}
            }
            let Some(mv) = self.block_message(&room, m, "search", Mode::Found) else {
                continue;
            };
            let text = m["text"].as_str().unwrap_or("");
            if !text.to_lowercase().contains(&look.q) {
                self.fail(
                    "search",
                    format!("a search for {:?} found {text:?}", look.q),
                );
            }
            self.check_marks(m, &look.q);
            if let (Some((key, n, e)), Some((k, kn))) = (&look.own, &mv.tag) {
                if k == key && kn == n {
                    hits += 1;
                    if !look.found || seq != look.seq || mv.edit != *e {
                        self.fail(
                            "search",
                            format!(
                                "a search for {:?} (its message #{room} {}, found: {}) found seq {seq} at edit {}",
                                look.q, look.seq, look.found, mv.edit
                            ),
                        );
                    }
                }
            }
            // The result is the message as it is now: as the stream made it.
            self.listed(&room, seq, mv, "search", true, true);
        }
        let room_of = look.room.clone().unwrap_or_default();
        let beyond = self.sh.shared && self.max_acked(&room_of) >= look.seq + SEARCH_SCAN_REDIS;
        if let Some((_, n, e)) = &look.own {
            if look.found {
                self.sh.stats.search_found.inc();
                // Through Redis a search reads the room's newest
                // SEARCH_SCAN entries (PROTOCOL.md): a miss in a room that
                // has had more is not judged.
                if (hits != 1 || results.len() != 1) && !(beyond && hits == 0) {
                    self.fail(
                        "search",
                        format!(
                            "a search for {:?}, the word of its message #{:?} {} (#{n}, edit {e}, acknowledged over {} s before), found {} results, {hits} of them it",
                            look.q, look.room, look.seq, SEARCH_AFTER.as_secs(), results.len()
                        ),
                    );
                }
            } else {
                self.sh.stats.search_absent.inc();
                if !results.is_empty() {
                    self.fail(
                        "search",
                        format!(
                            "a search for {:?}, a word its message {} (#{n}) no longer says (deleted or edited), found {} results",
                            look.q, look.seq, results.len()
                        ),
                    );
                }
            }
        }
    }

    /// A search result's `snippet` and `marks`: each mark a range of code
    /// points in the snippet, on a word that starts with the query's word.
    fn check_marks(&mut self, m: &Value, q: &str) {
        let (Some(snippet), Some(marks)) = (m["snippet"].as_str(), m["marks"].as_array()) else {
            return self.fail(
                "malformed",
                format!("search result without snippet or marks: {m}"),
            );
        };
        let chars: Vec<char> = snippet.chars().collect();
        if marks.is_empty() {
            self.fail(
                "search",
                format!("a search for {q:?}: a result with no marks: {m}"),
            );
        }
        for mark in marks {
            let ok = match (
                mark[0].as_u64(),
                mark[1].as_u64(),
                mark.as_array().map(Vec::len),
            ) {
                (Some(a), Some(b), Some(2)) if a < b && b as usize <= chars.len() => {
                    let marked: String = chars[a as usize..b as usize].iter().collect();
                    marked.to_lowercase().starts_with(q)
                }
                _ => false,
            };
            if !ok {
                self.fail(
                    "search",
                    format!("a search for {q:?}: mark {mark} in snippet {snippet:?}"),
                );
            }
        }
    }

    /// The connection is gone (or the run is over) with requests of the
    /// new kinds unanswered: each change may or may not have happened. The
    /// message is left alone from then on, and the store may show either.
    fn lose_asked(&mut self) {
        let asked: Vec<Asked> = self.asked.drain().map(|(_, a)| a).collect();
        for a in asked {
            let next = match &a {
                Asked::Edit { text, .. } => Fate::Text(text.clone()),
                _ => Fate::Deleted,
            };
            match a {
                Asked::Edit {
                    room,
                    seq,
                    n,
                    prior,
                    ..
                }
                | Asked::Delete {
                    room,
                    seq,
                    n,
                    prior,
                } => {
                    self.sh.stats.amends_lost.inc();
                    self.sh.unseen_change(&room);
                    set_fate(
                        &self.sh.ws_fates,
                        (room, seq),
                        Fate::Text(prior),
                        next,
                        false,
                    );
                    if let Some(o) = self.own_mut(n) {
                        o.busy = false;
                        o.unsure = true;
                    }
                }
                Asked::React {
                    room,
                    seq,
                    emoji,
                    nick,
                    who,
                    on,
                    ..
                } => {
                    self.sh.stats.amends_lost.inc();
                    self.sh.unseen_change(&room);
                    let key = (room, seq, emoji);
                    let prior = match self.my_reacts.get(&key) {
                        Some(Mine::On(nick)) => Some(nick.clone()),
                        _ => None,
                    };
                    let next = (on == Some(true)).then_some(nick);
                    self.sh.set_react(
                        (key.0.clone(), key.1, key.2.clone(), who),
                        prior,
                        next,
                        false,
                    );
                    self.my_reacts.insert(key, Mine::Unsure);
                }
                Asked::Search(_) => {}
            }
        }
        let line: Vec<LineAsked> = self.line_asked.drain(..).collect();
        for a in line {
            let (room, key, n, prior, next) = match a {
                LineAsked::Edit {
                    room,
                    key,
                    n,
                    prior,
                    text,
                    ..
                } => (room, key, n, prior, Fate::Text(text)),
                LineAsked::Delete {
                    room,
                    key,
                    n,
                    prior,
                    ..
                } => (room, key, n, prior, Fate::Deleted),
                LineAsked::React { .. } => {
                    self.sh.stats.amends_lost.inc();
                    continue;
                }
                LineAsked::Search(_) => continue,
            };
            self.sh.stats.amends_lost.inc();
            set_fate(
                &self.sh.line_fates,
                (room, key, n),
                Fate::Text(prior),
                next,
                false,
            );
            if let Some(o) = self.own_mut(n) {
                o.busy = false;
                o.unsure = true;
            }
        }
    }

    // -- line requests ------------------------------------------------------

    /// The index in `own` of this line connection's newest message in
    /// `room` that is not deleted (what `/edit` and `/delete` take), when
    /// known: every newer one there known deleted, nothing in flight.
    fn line_target(&self, room: &str) -> Option<usize> {
        let session = format!("line{}", self.gen);
        for (i, o) in self.own.iter().enumerate().rev() {
            if o.room != room || o.session != session {
                continue;
            }
            if o.busy || o.unsure {
                return None;
            }
            if !o.deleted {
                return Some(i);
            }
        }
        None
    }

    /// `/edit TEXT` (or `/delete`): the connection's last message in a
    /// room, known to be the last the server took (no message of this
    /// connection can have been refused), sent under the nick it has now.
    fn line_edit(&mut self, delete: bool) {
        if self.line_unsure {
            return self.line_search();
        }
        let rooms: Vec<String> = self
            .rooms
            .iter()
            .filter(|r| !self.busy.contains(*r))
            .cloned()
            .collect();
        let cands: Vec<usize> = rooms
            .iter()
            .filter_map(|r| self.line_target(r))
            .filter(|&i| self.own[i].nick == self.nick_out)
            .collect();
        if cands.is_empty() {
            return self.line_search();
        }
        let i = cands[self.rng.below(cands.len())];
        self.own[i].busy = true;
        let o = self.own[i].clone();
        let prior = self.own_text(&o);
        let key = self.own_key(o.gen);
        let mut out = self.line_to(&o.room);
        if delete {
            self.sh.stats.line_deletes.inc();
            out.push_str("/delete\n");
            self.line_asked.push_back(LineAsked::Delete {
                room: o.room.clone(),
                key,
                n: o.n,
                prior,
                nick: o.nick.clone(),
            });
        } else {
            self.sh.stats.line_edits.inc();
            let e = o.edit + 1;
            let (sent, expected) = compose_edit(self.id, o.gen, o.n, e, &o.nick, o.kind(), &o.room);
            out.push_str("/edit ");
            out.push_str(&sent);
            out.push('\n');
            self.line_asked.push_back(LineAsked::Edit {
                room: o.room.clone(),
                key,
                n: o.n,
                prior,
                e,
                text: expected,
            });
        }
        self.sh.unseen_change(&o.room);
        self.send_raw(out.as_bytes());
    }

    /// `/react NICK EMOJI` for a nick heard in a room lately.
    fn line_react(&mut self) {
        let cands: Vec<(String, String)> = self
            .recent
            .iter()
            .filter(|(room, _, from, _)| {
                self.rooms.contains(room) && !self.busy.contains(room) && *from != self.nick
            })
            .map(|(room, _, from, _)| (room.clone(), from.clone()))
            .collect();
        if cands.is_empty() {
            return self.line_search();
        }
        let (room, nick) = cands[self.rng.below(cands.len())].clone();
        let emoji = LINE_EMOJI[self.rng.below(LINE_EMOJI.len())].to_string();
        self.sh.stats.line_reacts.inc();
        let mut out = self.line_to(&room);
        out.push_str(&format!("/react {nick} {emoji}\n"));
        self.line_asked.push_back(LineAsked::React {
            room: room.to_string(),
            emoji,
        });
        self.sh.unseen_change(&room);
        self.send_raw(out.as_bytes());
    }

    /// `/search WORD` for the word of one of this connection's messages,
    /// or (none to look for) a common word in the current room.
    fn line_search(&mut self) {
        let session = format!("line{}", self.gen);
        let cands: Vec<usize> = if self.line_unsure {
            Vec::new()
        } else {
            (0..self.own.len())
                .filter(|&i| {
                    let o = &self.own[i];
                    o.session == session
                        && !o.busy
                        && !o.unsure
                        && o.at.elapsed() >= SEARCH_AFTER
                        && self.rooms.contains(&o.room)
                        && !self.busy.contains(&o.room)
                })
                .collect()
        };
        let look = if cands.is_empty() {
            let Some(room) = self
                .current
                .clone()
                .filter(|r| self.rooms.contains(r) && !self.busy.contains(r))
            else {
                return;
            };
            Looking {
                room: Some(room),
                q: "soak".into(),
                own: None,
                seq: 0,
                found: false,
            }
        } else {
            let o = self.own[cands[self.rng.below(cands.len())]].clone();
            let (e, found) = if o.deleted {
                (o.edit, false)
            } else if o.edit > 0 && self.rng.chance(0.4) {
                (self.rng.below(o.edit as usize) as u32, false)
            } else {
                (o.edit, true)
            };
            Looking {
                room: Some(o.room.clone()),
                q: word(self.id, o.gen, o.n, e),
                own: Some((self.own_key(o.gen), o.n, e)),
                seq: 0,
                found,
            }
        };
        self.sh.stats.line_searches.inc();
        let room = look.room.clone().unwrap_or_default();
        let mut out = self.line_to(&room);
        out.push_str(&format!("/search {}\n", look.q));
        self.line_asked.push_back(LineAsked::Search(look));
        self.send_raw(out.as_bytes());
    }

    // -- line answers and events --------------------------------------------

    /// `<from> text` or `* from text` on a line: a message, a message as
    /// last edited (`(edited) `, in a history block), a deleted one
    /// (`[deleted]`), or live, someone's edit.
    fn line_chat(&mut self, room: &str, from: &str, text: &str, action: bool, mode: Mode) {
        if mode == Mode::Replay && !action && text == "[deleted]" {
            return;
        }
        if let Some(t) = text.strip_prefix("(edited) ") {
            if mode == Mode::Live {
                if action {
                    return self.fail(
                        "malformed",
                        format!("an edit as an action: #{room} * {from} {text:?}"),
                    );
                }
                return self.line_edited(room, from, t);
            }
            if let Some(tag) = self.chat(room, from, t, action, mode) {
                if tag.edit == 0 {
                    self.fail(
                        "wrong",
                        format!("#{room} <{from}> (edited) but as sent: {t:?}"),
                    );
                }
            }
            return;
        }
        if mode == Mode::Live {
            self.recent
                .push_back((room.to_string(), 0, from.to_string(), 0));
            if self.recent.len() > RECENT_KEEP {
                self.recent.pop_front();
            }
        }
        if let Some(tag) = self.chat(room, from, text, action, mode) {
            if tag.edit > 0 {
                self.fail(
                    "wrong",
                    format!("#{room} <{from}>: an edit's text without (edited): {text:?}"),
                );
            }
        }
    }

    /// `[HH:MM:SS] #room <by> (edited) TEXT`: someone's edit (or this
    /// client's, as its answer).
    fn line_edited(&mut self, room: &str, by: &str, text: &str) {
        if !self.rooms.contains(room) {
            self.fail(
                "amend_event",
                format!("an edit in #{room}, a room it is not in: {text:?}"),
            );
        }
        let tag = match verify(text) {
            Ok(t) if t.edit > 0 && t.dest == room && t.nick == by && t.burst.is_none() => t,
            Ok(_) => return self.fail("amend_event", format!("#{room} <{by}> (edited) {text:?}")),
            Err(e) => {
                return self.fail(
                    "amend_event",
                    format!("#{room} <{by}> (edited): {e}: {text:?}"),
                )
            }
        };
        let k = (tag.key.clone(), tag.n);
        let before = self.edits_seen.get(&k).copied().unwrap_or(0);
        if tag.edit <= before {
            self.fail(
                "order",
                format!(
                    "#{room}: edit {} of {}#{} after edit {before}",
                    tag.edit, tag.key, tag.n
                ),
            );
        }
        self.edits_seen.insert(k, tag.edit.max(before));
        if tag.key != self.own_key(self.gen) {
            self.sh.stats.amend_events_line.inc();
            return;
        }
        match self.line_asked.pop_front() {
            Some(LineAsked::Edit {
                room: r,
                key,
                n,
                prior,
                e,
                text: t,
            }) if r == room && key == tag.key && n == tag.n && e == tag.edit && t == text => {
                self.sh.stats.amends_answered.inc();
                set_fate(
                    &self.sh.line_fates,
                    (r, key, n),
                    Fate::Text(prior),
                    Fate::Text(t),
                    true,
                );
                if let Some(o) = self.own_mut(n) {
                    o.busy = false;
                    o.edit = e;
                }
            }
            other => self.fail(
                "amend",
                format!("its edit #{room} <{by}> (edited) {text:?} came, {other:?} was due"),
            ),
        }
    }

    /// `[HH:MM:SS] #room --- a message by NICK was deleted`: someone's
    /// delete (or this client's, as its answer). Nobody deletes another's
    /// message in the soak (there are no ops): no ` by`.
    fn line_deleted(&mut self, room: &str, rest: &str) {
        let Some(of) = rest
            .strip_suffix(" was deleted")
            .filter(|n| !n.is_empty() && !n.contains(' '))
        else {
            return self.fail("amend_event", format!("#{room} --- a message by {rest}"));
        };
        if !self.rooms.contains(room) {
            self.fail(
                "amend_event",
                format!("a delete in #{room}, a room it is not in"),
            );
        }
        let own = matches!(self.line_asked.front(), Some(LineAsked::Delete { room: r, nick, .. }) if r == room && nick == of);
        if !own {
            self.sh.stats.amend_events_line.inc();
            return;
        }
        if let Some(LineAsked::Delete {
            room: r,
            key,
            n,
            prior,
            ..
        }) = self.line_asked.pop_front()
        {
            self.sh.stats.amends_answered.inc();
            set_fate(
                &self.sh.line_fates,
                (r, key, n),
                Fate::Text(prior),
                Fate::Deleted,
                true,
            );
            if let Some(o) = self.own_mut(n) {
                o.busy = false;
                o.deleted = true;
            }
        }
    }

    /// `*** reaction EMOJI added in #room` (or `removed`): the answer to
    /// this client's `/react`.
    fn line_reacted(&mut self, r: &str) {
        let parsed = r.split_once(' ').and_then(|(emoji, rest)| {
            let (on, room) = match rest.split_once(" in #")? {
                ("added", room) => (true, room),
                ("removed", room) => (false, room),
                _ => return None,
            };
            Some((emoji.to_string(), on, room.to_string()))
        });
        let Some((emoji, on, room)) = parsed else {
            return self.fail("malformed", format!("*** reaction {r}"));
        };
        match self.line_asked.pop_front() {
            Some(LineAsked::React { room: rr, emoji: e }) if rr == room && e == emoji => {
                self.sh.stats.amends_answered.inc();
                if on {
                    self.sh.stats.reacts_on.inc();
                } else {
                    self.sh.stats.reacts_off.inc();
                }
            }
            other => self.fail("amend", format!("*** reaction {r} came, {other:?} was due")),
        }
    }

    /// `*** search #room "WORDS" (N results)`: the head of the answer to
    /// this client's `/search`.
    fn line_search_head(&mut self, r: &str) {
        let parsed = r.strip_prefix('#').and_then(|r| {
            let (room, rest) = r.split_once(" \"")?;
            let (q, n) = rest.rsplit_once("\" (")?;
            let n = n
                .strip_suffix(" results)")
                .or(n.strip_suffix(" result)"))?
                .parse::<usize>()
                .ok()?;
            Some((room.to_string(), q.to_string(), n))
        });
        let Some((room, q, n)) = parsed else {
            return self.fail("malformed", format!("*** search {r}"));
        };
        match self.line_asked.pop_front() {
            Some(LineAsked::Search(look))
                if look.q == q && look.room.as_deref() == Some(room.as_str()) =>
            {
                self.sh.stats.search_results.add(n as u64);
                self.search_block = Some(SearchBlock {
                    look,
                    room,
                    expect: n,
                    got: 0,
                    hits: 0,
                });
            }
            other => self.fail("search", format!("*** search {r} came, {other:?} was due")),
        }
    }

    /// One result of a line search: a message as it is now, never a
    /// deleted one, holding the word.
    fn line_found(&mut self, block: &mut SearchBlock, rest: &str) {
        let ev = rest.split_once(' ').map_or("", |x| x.1);
        let parsed = if let Some(x) = ev.strip_prefix('<') {
            x.split_once("> ").map(|(f, t)| (f, t, false))
        } else if let Some(x) = ev.strip_prefix("* ") {
            x.split_once(' ').map(|(f, t)| (f, t, true))
        } else {
            None
        };
        let Some((from, text, action)) = parsed else {
            return self.fail("malformed", format!("search result {rest:?}"));
        };
        let (from, text) = (from.to_string(), text.to_string());
        if text == "[deleted]" {
            return self.fail(
                "search",
                format!(
                    "a search for {:?} found a deleted message: {rest:?}",
                    block.look.q
                ),
            );
        }
        let (edited, t) = match text.strip_prefix("(edited) ") {
            Some(t) => (true, t.to_string()),
            None => (false, text.clone()),
        };
        let room = block.room.clone();
        let Some(tag) = self.chat(&room, &from, &t, action, Mode::Found) else {
            return;
        };
        if edited != (tag.edit > 0) {
            self.fail(
                "wrong",
                format!(
                    "search result {rest:?}: (edited) {edited}, edit {}",
                    tag.edit
                ),
            );
        }
        if !t.to_lowercase().contains(&block.look.q) {
            self.fail(
                "search",
                format!("a search for {:?} found {rest:?}", block.look.q),
            );
        }
        if let Some((key, n, e)) = &block.look.own {
            if tag.key == *key && tag.n == *n {
                block.hits += 1;
                if !block.look.found || tag.edit != *e {
                    self.fail(
                        "search",
                        format!(
                            "a search for {:?} (found: {}) found {rest:?}",
                            block.look.q, block.look.found
                        ),
                    );
                }
            }
        }
    }

    /// `*** end of search`.
    /// Shared through Redis, whether `room` has had more entries than a
    /// search reads (natter's `SEARCH_SCAN`, 5,000): for a line client's
    /// search, whose message's seq it does not know.
    fn beyond_scan(&self, room: &str) -> bool {
        self.sh.shared && self.max_acked(room) > SEARCH_SCAN_REDIS
    }

    /// The highest `seq` of `room` any WebSocket client was acknowledged.
    fn max_acked(&self, room: &str) -> u64 {
        self.sh.acks.lock().map_or(0, |a| {
            a.iter()
                .filter(|(r, _, _)| r == room)
                .map(|(_, seq, _)| *seq)
                .max()
                .unwrap_or(0)
        })
    }

    fn search_done(&mut self, block: SearchBlock) {
        if block.got != block.expect {
            self.fail(
                "malformed",
                format!(
                    "search of #{} announced {} results, had {}",
                    block.room, block.expect, block.got
                ),
            );
        }
        let beyond = self.beyond_scan(&block.room);
        if let Some((_, n, e)) = &block.look.own {
            if block.look.found {
                self.sh.stats.search_found.inc();
                if (block.hits != 1 || block.got != 1) && !(beyond && block.hits == 0) {
                    self.fail(
                        "search",
                        format!(
                            "/search {} in #{}, the word of its message #{n} (edit {e}), had {} results, {} of them it",
                            block.look.q, block.room, block.got, block.hits
                        ),
                    );
                }
            } else {
                self.sh.stats.search_absent.inc();
                if block.got != 0 {
                    self.fail(
                        "search",
                        format!(
                            "/search {} in #{}, a word its message #{n} no longer says, had {} results",
                            block.look.q, block.room, block.got
                        ),
                    );
                }
            }
        }
    }

    /// An error line while line requests of the new kinds are in flight:
    /// the oldest is refused. Only a `/react` may be (`no_such_message`:
    /// the nick's messages there were all deleted). True if it was one.
    fn line_refused(&mut self, code: &str, message: &str) -> bool {
        if !matches!(
            code,
            "no_such_message"
                | "not_permitted"
                | "edit_window"
                | "muted"
                | "bad_request"
                | "not_in_room"
        ) {
            return false;
        }
        let Some(front) = self.line_asked.pop_front() else {
            return false;
        };
        match front {
            LineAsked::React { .. } if code == "no_such_message" => {
                self.sh.stats.line_reacts_gone.inc();
            }
            other => {
                if let LineAsked::Edit { n, .. } | LineAsked::Delete { n, .. } = &other {
                    let n = *n;
                    if let Some(o) = self.own_mut(n) {
                        o.busy = false;
                    }
                }
                let cat = if matches!(other, LineAsked::Search(_)) {
                    "search"
                } else {
                    "amend"
                };
                self.fail(
                    cat,
                    format!("{other:?} refused unprovoked: {code}: {message}"),
                );
            }
        }
        true
    }
}

/// A read call begins: remembers the pause since the last one ended.
fn note_gap(gaps: &mut VecDeque<(Instant, Duration)>, idle_since: Instant) {
    let now = Instant::now();
    let gap = now.saturating_duration_since(idle_since);
    if gap > GAP_NOTE {
        gaps.push_back((now, gap));
    }
    while gaps
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) > DROP_LOOKBACK * 3)
    {
        gaps.pop_front();
    }
}

/// A connection (`small`: with a 128 KiB receive buffer, set before connect,
/// so it does not grow). Not smaller: a receive window under one loopback
/// segment (64 KiB) makes Linux time `TCP_USER_TIMEOUT` for zero-window
/// probes from an earlier stall, and the server's kernel aborts a client
/// that reads (ETIMEDOUT, `tcp_timeout` in `/metrics`; docs/LIFECYCLE.md).
fn tcp_connect(addr: SocketAddr, small: bool) -> io::Result<TcpStream> {
    let stream = if small {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_recv_buffer_size(128 * 1024)?;
        s.connect_timeout(&addr.into(), Duration::from_secs(10))?;
        TcpStream::from(s)
    } else {
        TcpStream::connect_timeout(&addr, Duration::from_secs(10))?
    };
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    Ok(stream)
}

/// A throwaway connection that sends junk: bytes that are never valid
/// UTF-8 (so nothing becomes a chat message), a broken HTTP request, a
/// truncated request head, or a TLS-looking first byte.
fn junk_connection(addr: SocketAddr, rng: &mut Rng) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
    let bytes: Vec<u8> = match rng.below(4) {
        0 => {
            let mut v = Vec::new();
            for _ in 0..(1 + rng.below(20)) {
                v.push(0xc0);
                for _ in 0..rng.below(60) {
                    let b = (rng.next() & 0xff) as u8;
                    v.push(if b == b'\n' { 0xc1 } else { b });
                }
                v.push(b'\n');
            }
            v
        }
        // Every line holds a byte that is never UTF-8: if this is taken
        // for a line client, nothing of it can become a chat message.
        1 => b"GET /\xff\x01 HTTP/1.1\r\nHost: \xff\r\nContent-Length: \xff-1\r\n\r\n".to_vec(),
        2 => {
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nSec-WebSocket-".to_vec()
        }
        _ => vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
    };
    let _ = s.write_all(&bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        match s.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

// ---------------------------------------------------------------------------
// TLS: the certificate, the clients' configurations, the stream, TLS junk
// ---------------------------------------------------------------------------

/// `--tls-share`'s default.
const DEFAULT_TLS_SHARE: f64 = 0.3;
/// The server's default `--header-timeout`: a TLS handshake not done by
/// then is closed.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A stalled handshake must be closed within --header-timeout and this.
const HANDSHAKE_SLACK: Duration = Duration::from_secs(5);
/// TLS junk that the server must close at once must be closed within this.
const TLS_JUNK_WAIT: Duration = Duration::from_secs(5);

/// How a client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    /// TLS 1.3 (or 1.2, offered too).
    Tls,
    /// TLS offering 1.2 only.
    Tls12,
}

/// Whether client `id` connects over TLS: a share of the ids, spread by the
/// golden ratio, so that line and WebSocket clients of every role get
/// their part (the offset gives the 20 clients of the smoke test a TLS
/// flooder, staller, vandal and two vanishers).
fn tls_client(id: usize, share: f64) -> bool {
    const PHI: f64 = 0.618_033_988_749_895;
    ((id + 8) as f64 * PHI).fract() < share
}

/// Client `id`'s transport: every fourth TLS client (in the order of ids,
/// so no role or protocol is left out) offers TLS 1.2 only.
fn transport(id: usize, share: f64) -> Transport {
    if !tls_client(id, share) {
        return Transport::Plain;
    }
    let rank = (0..id).filter(|&j| tls_client(j, share)).count();
    if rank % 4 == 1 {
        Transport::Tls12
    } else {
        Transport::Tls
    }
}

/// The soak's TLS: the server's certificate and key files, and the
/// clients' configurations.
struct TlsSetup {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    clients: Arc<TlsClients>,
}

impl TlsSetup {
    /// A CA and a certificate it signed for `localhost` and 127.0.0.1 (the
    /// chain: the leaf, then the CA), made in `dir`; the clients trust the
    /// CA alone (a `RootCertStore` with it): a real trust path.
    fn make(dir: &Path) -> Result<TlsSetup, String> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let e = |e: rcgen::Error| e.to_string();
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ca_key = KeyPair::generate().map_err(e)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "natter soak CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().map_err(e)?;
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .map_err(e)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(e)?;

        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let write = |path: &Path, text: String| {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&cert, leaf_cert.pem() + &ca_cert.pem())?;
        write(&key, leaf_key.serialize_pem())?;

        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca_cert.der().clone())
            .map_err(|e| format!("the CA: {e}"))?;
        let config = |alpn: bool, tls12: bool| -> Result<Arc<rustls::ClientConfig>, String> {
            let builder = rustls::ClientConfig::builder_with_provider(natter::tls::provider());
            let builder = if tls12 {
                builder.with_protocol_versions(&[&rustls::version::TLS12])
            } else {
                builder.with_safe_default_protocol_versions()
            }
            .map_err(|e| e.to_string())?;
            let mut c = builder
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            if alpn {
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
            }
            Ok(Arc::new(c))
        };
        let clients = TlsClients {
            configs: [
                config(false, false)?,
                config(false, true)?,
                config(true, false)?,
                config(true, true)?,
            ],
        };
        Ok(TlsSetup {
            dir: dir.to_path_buf(),
            cert,
            key,
            clients: Arc::new(clients),
        })
    }

    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

/// Client configurations that trust the soak's CA alone: WebSocket clients
/// offer ALPN `http/1.1` (as browsers do) and check the name `localhost`;
/// line clients offer no ALPN and check the address, 127.0.0.1 (as
/// `openssl s_client -connect` does). Each with TLS 1.3 and 1.2, or 1.2 only.
struct TlsClients {
    /// By `2 * ws + tls12`.
    configs: [Arc<rustls::ClientConfig>; 4],
}

impl TlsClients {
    fn client(
        &self,
        ws: bool,
        tls12: bool,
    ) -> (
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ) {
        let config = self.configs[2 * usize::from(ws) + usize::from(tls12)].clone();
        let name = if ws { "localhost" } else { "127.0.0.1" };
        let name = rustls::pki_types::ServerName::try_from(name)
            .map(|n| n.to_owned())
            .expect("a valid name");
        (config, name)
    }
}

/// A TLS client connection: rustls's blocking `StreamOwned` (a
/// `ClientConnection` and its socket), read and written by `Stream`.
struct Tls {
    s: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    sh: Arc<Shared>,
    /// No decrypted byte has come yet.
    unheard: bool,
    /// The end of the stream was counted (or is not: junk's).
    ended: bool,
}

impl Tls {
    /// Writes the session's records to the socket, blocking (within the
    /// socket's write timeout), as a plain write would.
    fn push_records(&mut self) -> io::Result<()> {
        while self.s.conn.wants_write() {
            match self.s.conn.write_tls(&mut self.s.sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes the session's records that the socket takes now
    /// (`Err(WouldBlock)` when it takes no more).
    fn push_records_now(&mut self) -> io::Result<()> {
        while self.s.conn.wants_write() {
            match self.s.conn.write_tls(&mut NoWait(&self.s.sock)) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The server ended the stream, with `close_notify` or without.
    fn end(&mut self, notified: bool) {
        if !std::mem::replace(&mut self.ended, true) {
            let st = &self.sh.stats;
            if notified {
                st.tls_close_notify.inc();
            } else {
                st.tls_bare_ends.inc();
            }
        }
    }
}

/// The socket as a writer that never blocks (`MSG_DONTWAIT`).
struct NoWait<'a>(&'a TcpStream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(self.0).send_with_flags(buf, MSG_DONTWAIT)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A client's connection: plain TCP, or TLS over it. The line and
/// WebSocket code reads and writes it alike (`Read`, `Write`; tungstenite
/// runs over it); socket-level operations (read timeouts, `SO_LINGER` 0,
/// addresses) go to `tcp()`, the socket under either.
///
/// TLS reads and writes are done here rather than by `StreamOwned`'s own
/// `Read` and `Write`: its read first completes any pending write,
/// blocking, so a client whose burst is still going out (records the
/// socket did not take yet) would stop reading until the server read
/// them, which is what the non-blocking burst write avoids; and its write
/// may wait for a read. Here a read only reads, a write only writes.
enum Stream {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

/// The stream of a connection, if it has one.
fn conn_stream(conn: &mut Conn) -> Option<&mut Stream> {
    match conn {
        Conn::Line { stream, .. } => Some(stream),
        Conn::Ws(ws) => Some(ws.get_mut()),
        Conn::None => None,
    }
}

/// A TLS handshake on `tcp` (within its read timeout, set here to 10 s),
/// done when this returns: the client's `Finished` is written.
fn tls_handshake(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
    sh: &Arc<Shared>,
) -> io::Result<Stream> {
    sh.stats.tls_attempts.inc();
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    sh.stats.tls_handshakes.inc();
    if s.conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_2) {
        sh.stats.tls12_handshakes.inc();
    }
    Ok(Stream::Tls(Box::new(Tls {
        s,
        sh: sh.clone(),
        unheard: true,
        ended: false,
    })))
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.s.sock,
        }
    }

    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Writes what the socket takes now, without blocking (a burst):
    /// plain, a send with `MSG_DONTWAIT`; TLS, the plaintext the session
    /// takes (its buffer holds 64 KiB of records), its records pushed out
    /// as far as the socket takes them. `Err(WouldBlock)`: nothing taken.
    fn send_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return SockRef::from(&*s).send_with_flags(buf, MSG_DONTWAIT),
            Stream::Tls(t) => t,
        };
        let pushed = |r: io::Result<()>| match r {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(()),
        };
        pushed(t.push_records_now())?;
        let n = t.s.conn.writer().write(buf)?;
        pushed(t.push_records_now())?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// TLS records still waiting for the socket, pushed without blocking:
    /// whether none are left (always, plain).
    fn flush_now(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(true),
            Stream::Tls(t) => match t.push_records_now() {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    /// A polite TLS end before a close: `close_notify`, best effort,
    /// without blocking.
    fn close_notify(&mut self) {
        if let Stream::Tls(t) = self {
            t.s.conn.send_close_notify();
            let _ = t.push_records_now();
        }
    }
}

impl Read for Stream {
    /// TLS: decrypted bytes first; else one `read_tls` (within the
    /// socket's read timeout: `WouldBlock` or `TimedOut` as plain) and
    /// `process_new_packets`, and again. The end of the stream is `Ok(0)`
    /// with or without the server's `close_notify`, as the server takes
    /// its clients' (both are counted); bytes cut off in a record the TCP
    /// stream ended inside are lost as they would be in a cut plain stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = match self {
            Stream::Plain(s) => return s.read(buf),
            Stream::Tls(t) => t,
        };
        loop {
            match t.s.conn.reader().read(buf) {
                Ok(n) => {
                    if n > 0 && std::mem::take(&mut t.unheard) {
                        t.sh.stats.tls_heard.inc();
                    }
                    if n == 0 && !buf.is_empty() {
                        t.end(true);
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    t.end(false);
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            // 0: the end of TCP, which the reader tells above.
            t.s.conn.read_tls(&mut t.s.sock)?;
            if let Err(e) = t.s.conn.process_new_packets() {
                // Its alert, best effort.
                let _ = t.push_records_now();
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }
}

impl Write for Stream {
    /// TLS: what an earlier write left first, then the plaintext, its
    /// records written before this returns (blocking, as a plain write).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => {
                t.push_records()?;
                let n = t.s.conn.writer().write(buf)?;
                t.push_records()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.push_records(),
        }
    }
}

/// A ClientHello as rustls writes it first (to cut short).
fn client_hello(tls: &TlsClients, rng: &mut Rng) -> Vec<u8> {
    let (config, name) = tls.client(rng.chance(0.5), rng.chance(0.3));
    let mut hello = Vec::new();
    if let Ok(mut conn) = rustls::ClientConnection::new(config, name) {
        while conn.wants_write() {
            match conn.write_tls(&mut hello) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }
    hello
}

/// TLS junk: a ClientHello cut short, then the end of the stream (the
/// server must close at once); a ClientHello cut short and then silence
/// (a stalled handshake, held by a thread of its own until the server
/// closes it at its handshake deadline, --header-timeout); or a whole
/// handshake, then a TLS record inside TLS (the server closes at once).
/// The first byte is always 0x16. A connection the server does not close
/// in time is a failure (`tls_junk`). No handshake stalls past `deadline`
/// (the clients' end): the server lets go of every connection soon after.
fn tls_junk(sh: &Arc<Shared>, tls: &Arc<TlsClients>, rng: &mut Rng, deadline: Instant) {
    let addr = sh.addr;
    let mut kind = rng.below(3);
    if kind == 1 && Instant::now() + sh.handshake_deadline + HANDSHAKE_SLACK > deadline {
        kind = 0;
    }
    let mut hello = client_hello(tls, rng);
    if hello.len() < 8 {
        sh.fail(
            "tls_junk",
            format!("no ClientHello to cut short ({hello:?})"),
        );
        return;
    }
    hello.truncate(1 + rng.below(hello.len() - 1));
    match kind {
        0 => {
            sh.stats.tls_junk_cut.inc();
            let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
                return;
            };
            let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(&hello);
            let _ = s.shutdown(Shutdown::Write);
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            if let Err(e) = await_close(&mut s, TLS_JUNK_WAIT) {
                sh.fail(
                    "tls_junk",
                    format!("a ClientHello cut at {} bytes, then EOF: {e}", hello.len()),
                );
            }
        }
        1 => {
            sh.stats.tls_junk_stalled.inc();
            let sh2 = sh.clone();
            let h = thread::Builder::new()
                .name("soak-stalled-handshake".into())
                .stack_size(128 * 1024)
                .spawn(move || {
                    let started = Instant::now();
                    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    else {
                        return;
                    };
                    let _ = s.set_write_timeout(Some(Duration::from_secs(3)));
                    let _ = s.write_all(&hello);
                    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                    match await_close(&mut s, sh2.handshake_deadline + HANDSHAKE_SLACK) {
                        Ok(()) => {
                            let st = &sh2.stats;
                            st.tls_junk_stall_closed.inc();
                            st.tls_junk_stall_ms
                                .max(started.elapsed().as_millis() as u64);
                        }
                        Err(e) => sh2.fail(
                            "tls_junk",
                            format!(
                                "a handshake stalled after {} bytes of ClientHello: {e}",
                                hello.len()
                            ),
                        ),
                    }
                });
            match h {
                Ok(h) => {
                    if let Ok(mut v) = sh.tls_stalls.lock() {
                        v.push(h);
                    }
                }
                Err(e) => sh.fail("tls_junk", format!("cannot spawn a thread: {e}")),
            }
        }
        _ => {
            sh.stats.tls_junk_inner.inc();
            let Ok(tcp) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
                return;
            };
            let _ = tcp.set_write_timeout(Some(Duration::from_secs(3)));
            let (config, name) = tls.client(rng.chance(0.5), rng.chance(0.3));
            let mut s = match tls_handshake(tcp, config, name, sh) {
                Ok(mut s) => {
                    // Its end is not a client's.
                    if let Stream::Tls(t) = &mut s {
                        t.ended = true;
                    }
                    s
                }
                Err(e) => {
                    sh.fail("tls_junk", format!("TLS handshake: {e}"));
                    return;
                }
            };
            // The start of a ClientHello, as the first plaintext: TLS
            // inside TLS.
            hello.truncate(hello.len().min(64));
            let _ = s.write_all(&hello);
            let _ = s.tcp().set_read_timeout(Some(Duration::from_millis(500)));
            if let Err(e) = await_close(&mut s, TLS_JUNK_WAIT) {
                sh.fail("tls_junk", format!("a TLS record inside TLS: {e}"));
            }
        }
    }
}

/// `--header-timeout` as the soak passes it to the server (`--server-arg`),
/// or the server's default.
fn header_timeout(args: &[String]) -> Duration {
    let mut secs = None;
    for (i, a) in args.iter().enumerate() {
        if let Some(v) = a.strip_prefix("--header-timeout=") {
            secs = v.parse().ok();
        } else if a == "--header-timeout" {
            secs = args.get(i + 1).and_then(|v| v.parse().ok());
        }
    }
    secs.map_or(DEFAULT_HEADER_TIMEOUT, Duration::from_secs)
}

/// Reads until the server closes the connection (the end of the stream or
/// a reset), within `wait`; whatever it says first is ignored.
fn await_close(s: &mut impl Read, wait: Duration) -> Result<(), String> {
    let until = Instant::now() + wait;
    let mut sink = [0u8; 4096];
    let mut said = 0;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "not closed by the server within {} s ({said} bytes from it)",
                wait.as_secs()
            ));
        }
        match s.read(&mut sink) {
            Ok(0) => return Ok(()),
            Ok(n) => said += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A reset, or a TLS alert: closed.
            Err(_) => return Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// A small random generator (splitmix64)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo).max(1))
    }
}
