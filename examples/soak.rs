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
//!   a reader dropped as a slow consumer that reads again at once (within
//!   the server's 2 s linger) finds whole lines or frames, then the goodbye
//!   (`!!! slow_consumer: ...` at the start of a line, or close 1008);
//! - the server keeps `Threads: 1`, answers `GET /healthz` at the end,
//!   releases every connection once the clients have gone, and exits 0 on
//!   SIGTERM;
//! - memory: VmRSS is sampled every 2 s. "start" is taken after the
//!   warm-up (every client connected and chatting), "end" after every client
//!   has left. FAIL if end > 2 * start + 20 MiB. Start already holds what
//!   steady state needs (buffers of hundreds of connections, SQLite's page
//!   cache); what may legitimately grow after it is bounded and unrelated to
//!   leaks: the per-session `cid` log of the last 10 minutes (a few MiB at
//!   ~100 messages a second), the database's page cache as the file grows
//!   (about 2 MiB), and malloc keeping the freed memory of that peak (so
//!   "end" sits near "peak", not near "start"). 400 clients for 180 s send
//!   about 50,000 messages and open about 2,000 connections: a leak of half
//!   a kilobyte per message, or ten per connection, passes the bound; the
//!   doubling keeps a small `start` from making the bound needlessly tight.
//!   Smaller leaks need a longer run (`--seconds`).
//!
//! The last line is `soak: N passed, M failed` (N and M count checks); the
//! exit status is non-zero when anything failed. `tests/soak_smoke.rs`
//! includes this file as a module and calls [`run`] with 20 clients for 5 s.

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
    let mut server = match ServerProc::start(&cfg.server, &db) {
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
        "soak: natter pid {} on {}, db {}, {} clients ({} line, {} ws), {} rooms + lobby, {} s, seed {seed}",
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
    let shared = Arc::new(Shared {
        addr: server.addr,
        rooms,
        nicks: Mutex::new(vec![String::new(); cfg.clients]),
        acks: Mutex::new(Vec::new()),
        fails: Mutex::new(BTreeMap::new()),
        stats: Stats::default(),
    });

    let mut samples: Vec<Sample> = Vec::new();
    let mut start_rss: Option<u64> = None;
    let mut wave_ends: Vec<Option<u64>> = Vec::new();
    let mut alive = true;
    let mut hung = 0;
    let mut released_all = true;
    let mut released_after = Vec::new();
    let mut last_metrics = BTreeMap::new();
    let mut next_progress = started + Duration::from_secs(10);
    for wave in 0..cfg.waves.max(1) {
        let wave_start = Instant::now();
        let deadline = wave_start + Duration::from_secs(cfg.seconds);
        let mut handles = Vec::new();
        for id in 0..cfg.clients {
            let start_at = wave_start + ramp * id as u32 / cfg.clients as u32;
            let sh = shared.clone();
            let ws = id % 2 == 1;
            let rng = Rng::new(
                seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (wave as u64) << 56,
            );
            // Each wave's tags and nicks are its own: generations from 1000*wave.
            let gen_base = wave as u32 * 1000;
            let h = thread::Builder::new()
                .name(format!("soak-{id}"))
                .stack_size(512 * 1024)
                .spawn(move || Client::new(id, ws, sh, rng, deadline, gen_base).run(start_at));
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
        hung += handles.iter().filter(|h| !h.is_finished()).count();
        for h in handles {
            if h.is_finished() && h.join().is_err() {
                shared.fail("client", "a client thread panicked".to_string());
            }
        }
        let clients_done = Instant::now();

        // Everyone has gone: the server should let go of every connection.
        let mut released = None;
        let settle_until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < settle_until {
            if let Some(m) = metrics(server.addr) {
                let open = ["line", "ws", "pending"]
                    .iter()
                    .map(|k| m.get(*k).copied().unwrap_or(0))
                    .sum::<u64>();
                let rooms = m.get("rooms").copied().unwrap_or(0);
                last_metrics = m;
                if open == 0 && rooms == 0 {
                    released = Some(Instant::now() - clients_done);
                    break;
                }
            }
            thread::sleep(Duration::from_millis(250));
        }
        match released {
            Some(d) => released_after.push(d),
            None => released_all = false,
        }
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
    let bound_kb = start_kb * RSS_FACTOR + RSS_SLACK_KB;
    out.line(format!(
        "soak: rss idle {:.1} MiB, start {:.1} MiB (after {} s warm-up), peak {:.1} MiB, end {} MiB (all clients gone{}); bound end <= {}*start + {} MiB = {:.1} MiB",
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
        rss(bound_kb),
    ));
    out.line(format!(
        "soak: threads min {min_threads} max {max_threads} over {} samples; clients ran {:.1} s; connections released {}",
        samples.len(),
        clients_done.as_secs_f64(),
        if released_all {
            format!(
                "{} s after the last client left",
                released_after
                    .iter()
                    .map(|d| format!("{:.1}", d.as_secs_f64()))
                    .collect::<Vec<_>>()
                    .join(" / ")
            )
        } else {
            format!("NOT within 15 s: {last_metrics:?}")
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
        "soak: events: joins {}, leaves {}, nicks {}, floods {} (rate_limited {}), vanishes {} (reset {}), ws resumes {}, cid retries {} (original back {}), reconnects {}, stalls {} (slow-consumer goodbyes {}, cut off while stalled {}), drips {}, half-sent {}, garbage {} (+{} junk connections)",
        st.joins.get(),
        st.leaves.get(),
        st.nicks.get(),
        st.floods.get(),
        st.rate_limited.get(),
        st.vanishes.get(),
        st.resets.get(),
        st.resumes.get(),
        st.retries.get(),
        st.retry_original.get(),
        st.reconnects.get(),
        st.stalls.get(),
        st.slow_drops.get(),
        st.slow_aborts.get(),
        st.drips.get(),
        st.cuts.get(),
        st.garbage.get(),
        st.junk.get(),
    ));
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
        min_threads == 1 && max_threads == 1,
        format!(
            "Threads: 1 in all {} samples (saw {min_threads}..{max_threads})",
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
    fn start(bin: &Path, db: &Path) -> io::Result<ServerProc> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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

fn header(id: usize, gen: u32, n: u64, cut: bool, nick: &str, kind: &str, dest: &str) -> String {
    let cut = if cut { "~" } else { "" };
    format!("soak {id}.{gen} #{n}{cut} @{nick} {kind}:{dest} ")
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
    let sent = header(id, gen, n, false, nick, kind, dest) + &filler(id, gen, n);
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
    let (num, cut) = match num.strip_suffix('~') {
        Some(n) => (n, true),
        None => (num, false),
    };
    let n: u64 = num.parse().map_err(|_| "bad counter")?;
    let nick = nick.strip_prefix('@').ok_or("bad nick")?;
    let (kind, dest) = kd.split_once(':').ok_or("bad kind")?;
    let head = header(id, gen, n, cut, nick, kind, dest);
    let full = sanitize(&(head.clone() + &filler(id, gen, n)));
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

type Ws = tungstenite::WebSocket<TcpStream>;

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
    /// Line: the room plain text goes to, when known.
    current: Option<String>,
    /// (sender tag, room or "dm") -> highest counter seen.
    last: HashMap<(String, String), u64>,
    /// WebSocket: room -> last seq seen.
    cursor: HashMap<String, u64>,
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
}

impl Client {
    fn new(
        id: usize,
        ws: bool,
        sh: Arc<Shared>,
        mut rng: Rng,
        deadline: Instant,
        gen_base: u32,
    ) -> Client {
        // Roles by pairs of ids, so that each comes in both protocols.
        let role = match (id / 2) % 20 {
            1 | 11 => Role::Flooder,
            3 => Role::Slow,
            2 | 7 | 12 | 17 => Role::Vanisher,
            5 | 15 => Role::Vandal,
            _ => Role::Plain,
        };
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
            current: None,
            last: HashMap::new(),
            cursor: HashMap::new(),
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
        }
    }

    fn who(&self) -> String {
        format!(
            "client {} ({} {:?}, gen {}, nick {})",
            self.id,
            if self.ws { "ws" } else { "line" },
            self.role,
            self.gen,
            self.nick
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
                if !self.connect(false) {
                    thread::sleep(Duration::from_millis(500));
                }
                continue;
            }
            let now = Instant::now();
            self.check_flood(now);
            if now >= self.next_special {
                self.special();
                continue;
            }
            if now >= self.next_action {
                self.action();
                self.next_action = Instant::now() + self.rng.ms(800, 3000);
                continue;
            }
            let wake = self.next_action.min(self.next_special).min(deadline);
            self.pump(
                wake.saturating_duration_since(now)
                    .min(Duration::from_millis(300)),
            );
        }
        self.finish();
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
    }

    /// A fresh connection (`resume`: a WebSocket client takes its session back).
    fn connect(&mut self, resume: bool) -> bool {
        self.gen += 1;
        self.reset_connection_state();
        self.sh.set_nick(self.id, "");
        let small = self.role == Role::Slow;
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
            self.connect_ws(stream, resume)
        } else {
            self.connect_line(stream)
        }
    }

    fn connect_line(&mut self, stream: TcpStream) -> bool {
        self.rooms.clear();
        self.busy.clear();
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

    fn connect_ws(&mut self, stream: TcpStream, resume: bool) -> bool {
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
        let mut ws = match tungstenite::client(url.as_str(), stream) {
            Ok((ws, _)) => ws,
            Err(e) => {
                self.fail("connect", format!("WebSocket handshake: {e}"));
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
                self.sh.stats.retries.inc();
                self.retry_cids.insert(cid);
                self.send_json(req);
            }
            true
        } else {
            if token.is_some() {
                self.fail(
                    "resume",
                    "a session held for its grace period was not resumed".to_string(),
                );
            }
            self.retry = None;
            self.nick_asked.clear();
            self.rooms.clear();
            self.busy.clear();
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
        let why = format!(
            "{why} (close frame {:?}, write failed {})",
            self.close_code, self.write_failed
        );
        let expected = self.slow_dropped
            || self.violated
            || matches!(self.close_code, Some(1008 | 1003 | 1002 | 1007 | 1009));
        if expected {
        } else if self.long_stall {
            // Dropped while not reading for many seconds: the goodbye could
            // not be delivered before the server gave up on it.
            self.sh.stats.slow_aborts.inc();
        } else if self.short_stall_until.is_some_and(|t| Instant::now() < t) {
            self.fail(
                "torn",
                format!(
                    "dropped during a 1 s stall, the stream ended with no intact goodbye: {why}"
                ),
            );
        } else {
            self.fail("closed", format!("the server closed the connection: {why}"));
        }
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
    }

    /// Drops the connection without a goodbye: a reset or a plain close.
    fn vanish(&mut self) {
        self.sh.stats.vanishes.inc();
        let reset = self.rng.chance(0.5);
        if reset {
            self.sh.stats.resets.inc();
        }
        if let Some(s) = self.stream() {
            if reset {
                let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
            }
        }
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
        thread::sleep(self.rng.ms(100, 1500));
        if self.ws {
            // The session is held for --resume-grace: take it back.
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

    fn send_json(&mut self, v: Value) -> bool {
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
            let left = left.max(Duration::from_millis(1));
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
        match stream.read(&mut self.scratch) {
            Ok(0) => {
                if !buf.is_empty() && !self.long_stall {
                    let tail = String::from_utf8_lossy(buf).into_owned();
                    self.fail("torn", format!("the stream ended inside a line: {tail:?}"));
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
        match ws.read() {
            Ok(Message::Text(t)) => {
                self.sh.stats.bytes_in.add(t.len() as u64);
                self.on_ws_text(&t);
                true
            }
            Ok(Message::Close(frame)) => {
                self.close_code = Some(frame.map_or(1005, |f| u16::from(f.code)));
                if self.close_code == Some(1008) {
                    self.slow_dropped = true;
                    self.sh.stats.slow_drops.inc();
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
            self.slow_dropped = true;
            self.sh.stats.slow_drops.inc();
            return;
        }
        if let Some((room, expect, got)) = self.history_block.take() {
            if l == "*** end of history" {
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
            "slow_consumer" => {
                self.slow_dropped = true;
                self.sh.stats.slow_drops.inc();
            }
            "bad_utf8" | "too_long" | "unknown_command" | "bad_json" | "unknown_type"
            | "bad_request" | "room_invalid"
                if self.garbage => {}
            _ => self.fail(
                "errors",
                format!("unprovoked error {code}: {message} (ref {:?})", r#ref),
            ),
        }
    }

    fn check_flood(&mut self, now: Instant) {
        if let Some(at) = self.flood_check {
            if now > at + Duration::from_secs(5) {
                self.flood_check = None;
                self.fail("flood", "a flood got no rate_limited within 5 s".into());
            }
        }
    }

    // -- the WebSocket protocol -------------------------------------------

    fn on_ws_text(&mut self, t: &str) {
        let v: Value = match serde_json::from_str(t) {
            Ok(v) => v,
            Err(e) => return self.fail("malformed", format!("not JSON ({e}): {t:?}")),
        };
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
            if let Some(&c) = self.cursor.get(&room) {
                if c != last_seq {
                    self.fail(
                        "ws_seq",
                        format!(
                            "catch-up of #{room} says last_seq {last_seq}, the stream is at {c}"
                        ),
                    );
                }
            }
            self.finish_resume_check();
        } else if let Some(rc) = &mut self.resume_check {
            rc.seen.insert(room.clone());
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
        self.busy.remove(&room);
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
            self.sh.stats.leaves.inc();
            self.busy.insert(room.clone());
            if self.ws {
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
                thread::sleep(self.rng.ms(20, 300));
            }
        }
    }

    /// Flood past --rate: 40 messages at once; rate_limited must come back.
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
        for _ in 0..40 {
            self.n += 1;
            let (sent, expected) = compose(self.id, self.gen, self.n, &self.nick_out, "in", &room);
            self.sh.stats.said.inc();
            if self.ws {
                let cid = format!("c{}-{}", self.id, self.n);
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
    /// (1 MiB) plus the 2-3 MiB the kernel buffers on loopback, once the
    /// room has history, so the server drops us as a slow consumer. After a
    /// short stall (reading again at once, within the server's 2 s linger)
    /// the stream must be intact up to a clean goodbye; after a long one
    /// (8-20 s more) the server may have given up on delivering anything.
    fn stall(&mut self) {
        let Some(room) = self.pick_my_room() else {
            return self.join_or_leave(true);
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
        let ws_req = json!({"type":"history","room":room,"limit":200}).to_string();
        let line_batch = "/history 200\n".repeat(8);
        for _ in 0..25 {
            let ok = if self.ws {
                (0..8).all(|_| self.send_json_text(&ws_req))
            } else {
                self.send_raw(line_batch.as_bytes())
            };
            if !ok {
                break;
            }
            thread::sleep(Duration::from_millis(40));
        }
        if long {
            self.long_stall = true;
            let until = (Instant::now() + self.rng.ms(8_000, 20_000)).min(self.deadline);
            let now = Instant::now();
            if until > now {
                thread::sleep(until - now);
            }
        } else {
            self.short_stall_until = Some(Instant::now() + Duration::from_secs(8));
        }
        // Read what came; if a write failed, the server has dropped us:
        // read what it sent before it did.
        self.closed = false;
        self.pump(Duration::from_secs(3));
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
                    let req = json!({"type":"say","room":room,"text":sent,"cid":cid,"ref":cid});
                    self.sent.insert(cid.clone(), Sent { room, expected });
                    self.send_json(req.clone());
                    self.retry = Some((cid, req));
                } else {
                    self.sh.stats.cuts.inc();
                    let text = header(self.id, self.gen, self.n, true, &self.nick_out, "in", &room)
                        + &filler(self.id, self.gen, self.n);
                    let head =
                        header(self.id, self.gen, self.n, true, &self.nick_out, "in", &room).len();
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
                    self.pump(Duration::from_secs(2));
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
        if matches!(self.conn, Conn::None) {
            return;
        }
        if self.closed {
            return self.on_connection_ended();
        }
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
        self.conn = Conn::None;
        self.sh.set_nick(self.id, "");
    }
}

/// A connection (`small`: with a 16 KiB receive buffer, set before connect).
fn tcp_connect(addr: SocketAddr, small: bool) -> io::Result<TcpStream> {
    let stream = if small {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_recv_buffer_size(16 * 1024)?;
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
