//! A bounded soak test: `make soak`.
//!
//!     cargo run --release --example soak -- --clients 400 --seconds 180
//!
//! It builds `target/release/natter` (or takes `--server PATH`), starts it
//! on `127.0.0.1:0` with a temporary database, and lets `--clients` clients
//! (half line, half WebSocket, all on loopback, one std thread each) loose on
//! it for `--seconds`, in `--rooms` rooms plus `lobby`. Each client does a
//! random mix: chat at a modest rate (one action every 0.8-3 s), `/me`,
//! join and leave rooms, change nick, send DMs, ask for history, `/who`,
//! `/rooms` and typing; a few flood past `--rate` (and must be told
//! `rate_limited`), a few stall reading with a small receive buffer while
//! asking for history (some get dropped as slow consumers: fine), some
//! vanish abruptly (a reset through `SO_LINGER 0`, or just a close) and come
//! back (WebSocket clients resume their session and retry their last `cid`),
//! line clients drip lines in pieces (split anywhere, even inside a UTF-8
//! character) or leave one half-sent, and some send garbage (bad UTF-8,
//! over-long lines, bad JSON, binary frames, junk connections).
//!
//! Every chat text is `soak ID.GEN #N @NICK KIND:DEST FILLER`, where the
//! filler (accents, emoji, quotes, tabs and control characters that the
//! server must turn into U+FFFD) is a pure function of `ID.GEN #N`: so a
//! receiver knows exactly what the sender sent, with no shared state. Checks:
//!
//! - every line and frame the server sends parses as the protocol says;
//! - every chat message received (live, in a join's replay or a history
//!   page, and in the store at the end) is exactly what its sender sent,
//!   from that sender's nick, in the room (or to the nick) it named;
//! - per sender connection and room, counters received only go up (no
//!   duplicate, no reordering); a WebSocket client sees each room's `seq`
//!   go up by exactly one, and every `joined`, catch-up and history page
//!   agrees with the stream it already has;
//! - every WebSocket `say`/`dm` is acknowledged with what was sent (on
//!   connections that neither flooded nor were dropped), a retried `cid`
//!   after a resume is not stored twice, and the store holds every
//!   acknowledged message under its seq;
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
//! (one small burst).

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
    let mut server = match ServerProc::start(&cfg.server, &db, RESUME_GRACE, &cfg.server_args) {
        Ok(s) => s,
        Err(e) => {
            out.line(format!("soak: cannot start {}: {e}", cfg.server.display()));
            remove_db(&db);
            return finish(
                out,
                Checks {
                    list: vec![(false, "the server starts".into())],
                },
            );
        }
    };
    let rooms: Vec<String> = std::iter::once("lobby".to_string())
        .chain((0..cfg.rooms).map(|i| format!("soak{i}")))
        .collect();
    let n_ws = cfg.clients / 2;
    out.line(format!(
        "soak: natter pid {} on {} (--resume-grace {RESUME_GRACE}), db {}, {} clients ({} line, {} ws), {} rooms + lobby, {} s, seed {seed}",
        server.pid,
        server.addr,
        db.display(),
        cfg.clients,
        cfg.clients - n_ws,
        n_ws,
        cfg.rooms,
        cfg.seconds,
    ));
    if cfg.waves > 1 {
        out.line(format!("soak: {} waves of clients", cfg.waves));
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
        for id in 0..cfg.clients {
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
                    Client::new(id, ws, sh, rng, deadline, gen_base, plan).run(start_at)
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
                if !server.is_alive() {
                    alive = false;
                }
                if cfg.progress && now >= next_progress {
                    next_progress += Duration::from_secs(10);
                    let conns = metrics(server.addr).unwrap_or_default();
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
            if let Some(m) = metrics(server.addr) {
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
    let health = http_get(server.addr, "/healthz");
    let server_drops: Vec<String> = metrics(server.addr)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, n)| Some(format!("{} {n}", k.strip_prefix("dropped ")?)))
        .collect();
    let store = check_store(&shared);
    let exit = server.stop();
    remove_db(&db);

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
    match &store {
        Ok(s) => out.line(format!(
            "soak: store: {} messages in {} rooms, seqs contiguous; {} acknowledged messages found as acknowledged",
            s.messages, s.rooms, s.acks
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
    let store_ok = store.is_ok();
    checks.add(
        store_ok,
        "the store holds every message once, as sent and acknowledged",
    );
    checks.add(
        st.received.get() > 0 && st.said.get() > 0 && st.acks.get() > 0,
        "traffic flowed (messages said, received and acknowledged)",
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
    fn start(bin: &Path, db: &Path, resume_grace: u64, extra: &[String]) -> io::Result<ServerProc> {
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
                Some(path) => Stdio::from(std::fs::File::create(path)?),
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

/// `natter_connections{kind=...}` and `natter_rooms` from `/metrics`.
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
}

/// Pages through every room's stored history over HTTP: seqs 1, 2, 3...
/// with no gap, every text as its sender sent it, and every message a
/// WebSocket sender had acknowledged stored under its seq.
fn check_store(sh: &Shared) -> Result<StoreSummary, String> {
    let mut stored: HashMap<(String, u64), String> = HashMap::new();
    let mut rooms = 0;
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
                if seq != after + 1 {
                    return Err(format!("#{room}: stored seq {seq} follows {after}"));
                }
                after = seq;
                let text = m["text"].as_str().ok_or("a stored message without text")?;
                let from = m["from"].as_str().unwrap_or("");
                let action = m["action"].as_bool().unwrap_or(false);
                let tag = verify(text).map_err(|e| format!("#{room} seq {seq}: {e}: {text:?}"))?;
                let kind = if action { "me" } else { "in" };
                if tag.kind != kind || tag.dest != *room || tag.nick != from {
                    return Err(format!(
                        "#{room} seq {seq}: stored from {from} (action {action}) but says {text:?}"
                    ));
                }
                stored.insert((room.clone(), seq), text.to_string());
            }
            if msgs.len() < 200 {
                break;
            }
        }
        if after > 0 {
            rooms += 1;
        }
    }
    let acks = sh.acks.lock().map(|a| a.clone()).unwrap_or_default();
    for (room, seq, text) in &acks {
        match stored.get(&(room.clone(), *seq)) {
            Some(t) if t == text => {}
            Some(t) => {
                return Err(format!(
                    "#{room} seq {seq} acknowledged as {text:?} but stored as {t:?}"
                ))
            }
            None => return Err(format!("#{room} seq {seq} acknowledged but not stored")),
        }
    }
    Ok(StoreSummary {
        messages: stored.len(),
        rooms,
        acks: acks.len(),
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
}

struct Shared {
    addr: SocketAddr,
    rooms: Vec<String>,
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
}

impl Shared {
    fn fail(&self, category: &'static str, detail: String) {
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

fn filler(id: usize, gen: u32, n: u64) -> String {
    let mut r = Rng::new((id as u64) << 40 ^ u64::from(gen) << 32 ^ n);
    let len = if r.below(25) == 0 {
        100 + r.below(250)
    } else {
        r.below(20)
    };
    let mut s = String::new();
    for _ in 0..len {
        s.push_str(PIECES[r.below(PIECES.len())]);
    }
    s.push('.');
    s
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
    let (num, cut, burst) = match (num.strip_suffix('~'), num.split_once('+')) {
        (Some(n), _) => (n, true, None),
        (None, Some((n, k))) => (n, false, Some(k.parse::<usize>().map_err(|_| "bad burst")?)),
        (None, None) => (num, false, None),
    };
    let n: u64 = num.parse().map_err(|_| "bad counter")?;
    let nick = nick.strip_prefix('@').ok_or("bad nick")?;
    let (kind, dest) = kd.split_once(':').ok_or("bad kind")?;
    let mark = match (cut, burst) {
        (true, _) => "~".to_string(),
        (false, Some(k)) => format!("+{k}"),
        (false, None) => String::new(),
    };
    let head = header(id, gen, n, &mark, nick, kind, dest);
    let body = match burst {
        Some(_) => big_filler(id, gen, n, head.len()),
        None => filler(id, gen, n),
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
];

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

type Ws = tungstenite::WebSocket<TcpStream>;

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
    Line { stream: TcpStream, buf: Vec<u8> },
    Ws(Box<Ws>),
}

/// A message a WebSocket client sent with a `cid`.
struct Sent {
    room: String,
    expected: String,
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
}

struct Client {
    id: usize,
    ws: bool,
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
}

/// How many requests and answers a WebSocket client remembers.
const TRAIL: usize = 40;

impl Client {
    fn new(
        id: usize,
        ws: bool,
        sh: Arc<Shared>,
        mut rng: Rng,
        deadline: Instant,
        gen_base: u32,
        plan: Arc<Vec<BurstPlan>>,
    ) -> Client {
        let role = role_of(id);
        let now = Instant::now();
        let first_special = now + rng.ms(1000, 4000);
        Client {
            id,
            ws,
            role,
            sh,
            rng,
            conn: Conn::None,
            scratch: vec![0; 32 * 1024],
            gen: gen_base,
            gen_base,
            deadline,
            n: 0,
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
        }
    }

    /// The client as a report names it, with its connection's local
    /// address: the server's debug log (`SOAK_SERVER_LOG`) names
    /// connections by their peer address, so a failure can be followed
    /// into it.
    fn who(&self) -> String {
        let local = self.stream().and_then(|s| s.local_addr().ok());
        format!(
            "client {} ({} {:?}, gen {}, nick {}, from {})",
            self.id,
            if self.ws { "ws" } else { "line" },
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
            let res = match self.stream() {
                Some(s) => {
                    SockRef::from(s).send_with_flags(&self.outq[self.outq_pos..], MSG_DONTWAIT)
                }
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
        let connected = Instant::now();
        let stream = match tcp_connect(self.sh.addr, small) {
            Ok(s) => s,
            Err(e) => {
                self.fail("connect", format!("connect: {e}"));
                return false;
            }
        };
        if self.gen > self.gen_base + 1 {
            self.sh.stats.reconnects.inc();
        }
        if self.ws {
            self.connect_ws(stream, resume, connected)
        } else {
            self.connect_line(stream)
        }
    }

    fn connect_line(&mut self, stream: TcpStream) -> bool {
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

    fn connect_ws(&mut self, stream: TcpStream, resume: bool, connected: Instant) -> bool {
        let addr = self.sh.addr;
        let token = if resume { self.session.clone() } else { None };
        let first_room = self.pick_any_room();
        let url = match &token {
            Some(t) => format!("ws://{addr}/ws?resume={t}"),
            None => {
                self.nick_k = 0;
                self.nick_out = format!("s{}g{}k0", self.id, self.gen);
                format!("ws://{addr}/ws?nick={}&room={first_room}", self.nick_out)
            }
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
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
        let local = self.stream().and_then(|s| s.local_addr().ok());
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
        if let Some(s) = self.stream() {
            if reset {
                let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
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

    fn stream(&self) -> Option<&TcpStream> {
        match &self.conn {
            Conn::Line { stream, .. } => Some(stream),
            Conn::Ws(ws) => Some(ws.get_ref()),
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
        let _ = stream.set_read_timeout(Some(wait));
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
        let _ = ws.get_ref().set_read_timeout(Some(wait));
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
                    Some((from, text)) => self.chat(room, from, text, false, mode),
                    None => self.fail("malformed", format!("message {rest:?}")),
                }
            } else if let Some(x) = ev.strip_prefix("* ") {
                match x.split_once(' ') {
                    Some((from, text)) => self.chat(room, from, text, true, mode),
                    None => self.fail("malformed", format!("action {rest:?}")),
                }
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

    /// A room message: exactly as sent, from the nick and to the room it
    /// names, newer than anything live from that sender there.
    fn chat(&mut self, room: &str, from: &str, text: &str, action: bool, mode: Mode) {
        match mode {
            Mode::Live => self.sh.stats.received.inc(),
            Mode::Replay => self.sh.stats.replayed.inc(),
        }
        if mode == Mode::Live && !self.rooms.contains(room) {
            self.fail(
                "wrong",
                format!("a message in #{room}, a room it is not in: {text:?}"),
            );
        }
        let tag = match verify(text) {
            Ok(t) => t,
            Err(e) => return self.fail("wrong", format!("#{room} <{from}>: {e}: {text:?}")),
        };
        let kind = if action { "me" } else { "in" };
        if tag.kind != kind || tag.dest != room || tag.nick != from {
            return self.fail(
                "wrong",
                format!("#{room} <{from}> (action {action}) carried {text:?}"),
            );
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
        self.order(tag.key, room.to_string(), tag.n, mode, text);
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
            (Mode::Replay, Some(p)) if n <= p => {}
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
                    true
                }
                None => false,
            },
            "message" => return self.ws_message(&v),
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

    /// Checks a block of replayed messages: shape, ascending contiguous
    /// seqs, texts. Returns (first, last) seq.
    fn ws_block(&mut self, room: &str, msgs: &Value, what: &str) -> Option<Option<(u64, u64)>> {
        let Some(list) = msgs.as_array() else {
            self.fail("malformed", format!("{what} of #{room} without messages"));
            return None;
        };
        let mut range: Option<(u64, u64)> = None;
        for m in list {
            let (Some(r), Some(seq), Some(from), Some(text)) = (
                m["room"].as_str(),
                m["seq"].as_u64(),
                m["from"].as_str(),
                m["text"].as_str(),
            ) else {
                self.fail("malformed", format!("{what} of #{room}: message {m}"));
                return None;
            };
            if r != room {
                self.fail(
                    "ws_seq",
                    format!("{what} of #{room} holds a message of #{r}"),
                );
            }
            if let Some((_, last)) = range {
                if seq != last + 1 {
                    self.fail(
                        "ws_seq",
                        format!("{what} of #{room}: seq {seq} after {last}"),
                    );
                }
            }
            range = Some((range.map_or(seq, |r| r.0), seq));
            let action = m["action"].as_bool().unwrap_or(false);
            let (from, text) = (from.to_string(), text.to_string());
            self.chat(room, &from, &text, action, Mode::Replay);
        }
        Some(range)
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
        let Some(range) = self.ws_block(&room, &v["messages"], "joined") else {
            return;
        };
        if let (Some((_, last)), false) = (range, gap) {
            if last != last_seq {
                self.fail(
                    "ws_seq",
                    format!("joined #{room}: last message {last} but last_seq {last_seq}"),
                );
            }
        }
        let r = v["ref"].as_str().unwrap_or("");
        if let Some(since) = r.strip_prefix("rj:").and_then(|s| s.parse::<u64>().ok()) {
            // Catching up after a resume: exactly since+1..=last_seq, and
            // last_seq is where the live stream is.
            if !gap {
                match range {
                    Some((first, _)) if first != since + 1 => self.fail(
                        "ws_seq",
                        format!("catch-up of #{room} since {since} starts at {first}"),
                    ),
                    None if last_seq != since => self.fail(
                        "ws_seq",
                        format!(
                            "catch-up of #{room} since {since} is empty but last_seq is {last_seq}"
                        ),
                    ),
                    _ => {}
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
                if c != last_seq {
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
        if let Some(cid) = v["cid"].as_str() {
            let cid = cid.to_string();
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
        self.chat(&room, &from, &text, action, mode);
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
        let Some(range) = self.ws_block(&room, &v["messages"], "history") else {
            return;
        };
        // A page of the latest messages ends where the stream is.
        if let (Some((_, last)), Some(&c)) = (range, self.cursor.get(&room)) {
            if !self.busy.contains(&room) && last != c {
                self.fail(
                    "ws_seq",
                    format!("history of #{room} ends at {last}, the stream is at {c}"),
                );
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
            self.send_raw(out.as_bytes());
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
            while !self.must_ack.is_empty() && !self.closed && Instant::now() < until {
                self.pump(Duration::from_millis(200));
            }
            if !self.must_ack.is_empty() && !self.flooded && !self.slow_dropped && !self.closed {
                let mut left: Vec<&String> = self.must_ack.iter().collect();
                left.sort();
                self.fail(
                    "ack",
                    format!(
                        "{} messages never acknowledged: {:?}",
                        left.len(),
                        &left[..left.len().min(5)]
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
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
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
