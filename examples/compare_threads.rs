//! natter against the thread-per-client server of examples/threaded.rs, under
//! the same load: `make compare-threads`, or
//!
//!     cargo build --release --bin natter --example threaded --example compare_threads
//!     target/release/examples/compare_threads [--sizes 100,1000,5000] [--secs 10]
//!
//! For each size N, each server is started on 127.0.0.1:0 (natter with
//! `--db :memory: --rate 1000000 --burst 1000000`), N line clients join
//! `#lobby`, and once every join has been seen everywhere the load runs for
//! `--secs`: messages go out at a steady rate from the clients in turn, each
//! carrying its sequence number and its send time, sized so that every N
//! makes the same number of deliveries a second (`--deliveries`, default
//! 100000). Every client reads everything. Then the stall scenario
//! (`--stall-clients`, default 100): the same, except that one client stops
//! reading when the load starts, and messages are padded (`--stall-pad`) so
//! that its buffers fill within seconds.
//!
//! From the server's /proc/PID: VmRSS and Threads at the end of the load;
//! voluntary and nonvoluntary context switches, summed over every thread in
//! /proc/PID/task/*/status (the process's own status line counts only its
//! main thread), and utime+stime from /proc/PID/stat, as deltas over the
//! load and its drain. From the clients: deliveries (each checked: never the
//! sender's own, never twice), latency from the embedded send time to the
//! moment the driver read the line, and deliveries per second.
//!
//! The driver is one mio loop on one thread, whatever N is: it costs the
//! same for both servers, and leaves the other core to the server.
//!
//! `NATTER_BENCH_DATA=DIR` also writes the figures to
//! `DIR/compare-threads.json` (replacing it), for `examples/plots.rs`:
//!
//! ```text
//! {
//!   "schema": "natter-bench-data/1", "program": "compare_threads",
//!   "command": "argv joined by spaces", "commit": "abc1234" (+ "-dirty"),
//!   "date": "2026-11-22T10:00:00Z" (UTC, at the start), "cpus": 2, "kernel": "uname -r",
//!   "loadavg_start": "/proc/loadavg", "loadavg_end": "/proc/loadavg",
//!   "secs": 10.0, "deliveries_per_sec": 100000.0 (offered, every size),
//!   "sizes": [ one per client count and server:
//!     { "clients": 1000, "server": "natter" | "threaded", "rate": 100.1 (msg/s),
//!       "setup_s": 0.3, "threads": 1, "rss_kib": 14700, "ctxt_switches": 1875,
//!       "cpu_s": 5.85, "expected": 999999, "delivered": 999999,
//!       "cpu_us_per_delivery": 5.85, "p50_ms": 2.98, "p99_ms": 7.09,
//!       "max_ms": 11.18, "echoes": 0, "duplicates": 0 } ],
//!   "stall": null, or { "clients": 100, "rate": 1000.0, "pad": 1000,
//!     "servers": [ { "server": "natter", "expected": 980000, "delivered": 980000,
//!       "p99_ms": 1.49, "max_ms": 8.74,
//!       "dropped_after_s": 4.7 (null: the stalled reader stayed connected),
//!       "per_second": [97954, ...] (the others' deliveries in each second
//!         of the load, then of the drain) } ] }
//! }
//! ```
//!
//! A size or server that failed is left out. Without the variable nothing
//! is written.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Clients connected but not yet welcomed, at most.
const CONNECTING: usize = 128;
/// Kernel clock ticks per second in /proc/PID/stat (USER_HZ, fixed by the ABI).
const TICKS_PER_SEC: u64 = 100;
/// The pause between reads while clients join.
const SETUP_NAP: Duration = Duration::from_millis(5);
/// How long after the last send the driver waits for deliveries.
const DRAIN: Duration = Duration::from_secs(3);

/// One scenario's load.
#[derive(Clone, Debug)]
pub struct Load {
    pub clients: usize,
    pub secs: f64,
    /// Messages a second, from all clients together.
    pub rate: f64,
    /// Bytes of padding in each message.
    pub pad: usize,
    /// Client 0 stops reading when the load starts.
    pub stall: bool,
}

/// A server process's figures at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub rss_kb: u64,
    pub threads: u64,
    /// Summed over every thread.
    pub ctxt_switches: u64,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
}

/// What one scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub clients: usize,
    pub setup: Duration,
    pub sent: u64,
    /// Deliveries expected: every message to every reading client but its sender.
    pub expected: u64,
    pub delivered: u64,
    /// A client got its own message, or a message twice: both are bugs.
    pub echoes: u64,
    pub duplicates: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// Deliveries by the second of the load they were read in.
    pub per_second: Vec<u64>,
    /// When the others were told the stalled reader left (natter's slow consumer).
    pub stalled_dropped_after: Option<Duration>,
    pub before: ProcStats,
    pub after: ProcStats,
}

impl Outcome {
    pub fn cpu_secs(&self) -> f64 {
        self.after.cpu_ticks.saturating_sub(self.before.cpu_ticks) as f64 / TICKS_PER_SEC as f64
    }

    pub fn ctxt_switches(&self) -> u64 {
        self.after
            .ctxt_switches
            .saturating_sub(self.before.ctxt_switches)
    }

    pub fn cpu_us_per_delivery(&self) -> f64 {
        self.cpu_secs() * 1e6 / self.delivered.max(1) as f64
    }
}

/// Reads VmRSS, Threads, the context switches of every thread and the CPU
/// time of the process `pid`.
pub fn proc_stats(pid: u32) -> io::Result<ProcStats> {
    let mut s = ProcStats::default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        let value = value.parse().unwrap_or(0);
        match key {
            "VmRSS:" => s.rss_kb = value,
            "Threads:" => s.threads = value,
            _ => {}
        }
    }
    // Threads come and go while we read: a vanished one is skipped.
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                s.ctxt_switches += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`, which may hold spaces: state is field 3,
    // utime and stime are fields 14 and 15.
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    s.cpu_ticks = field(14).unwrap_or(0) + field(15).unwrap_or(0);
    Ok(s)
}

/// One simulated client.
struct Client {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    welcomed: bool,
    /// Stopped reading: its bytes pile up in the server.
    stalled: bool,
    /// One bit per message of the load: got it already.
    seen: Vec<u64>,
    closed: bool,
}

impl Client {
    /// Writes what the socket takes; the rest waits for a writable event.
    fn flush(&mut self) {
        while !self.output.is_empty() && !self.closed {
            match self.stream.write(&self.output) {
                Ok(0) => self.closed = true,
                Ok(n) => drop(self.output.drain(..n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::NotConnected => return, // connecting
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }
}

/// What the lines read so far add up to.
#[derive(Default)]
struct Tally {
    welcomed: usize,
    joins: u64,
    closed: usize,
    /// Per message of the load: its sender.
    senders: Vec<usize>,
    delivered: u64,
    echoes: u64,
    duplicates: u64,
    latencies_us: Vec<u32>,
    per_second: Vec<u64>,
    stalled_dropped: Option<Instant>,
}

/// Runs one scenario against the server listening on `addr` (process `pid`).
pub fn run_load(addr: SocketAddr, pid: u32, load: &Load) -> io::Result<Outcome> {
    let n = load.clients;
    if n < 2 + usize::from(load.stall) {
        return Err(io::Error::other("too few clients"));
    }
    let epoch = Instant::now();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(4096);
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let mut tally = Tally::default();
    let mut buf = vec![0u8; 256 * 1024];
    let mut measuring: Option<Instant> = None;

    // Connect everyone, and wait until every join has been seen everywhere.
    let all_joins = (n * (n - 1) / 2) as u64;
    let setup_deadline = epoch + Duration::from_secs(60) + Duration::from_millis(60 * n as u64);
    while tally.welcomed < n || tally.joins < all_joins {
        while clients.len() < n && clients.len() - tally.welcomed < CONNECTING {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            let token = Token(clients.len());
            poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            // Speaking first makes natter decide at once that this is a line
            // client; an empty line is ignored by both servers.
            clients.push(Client {
                stream,
                input: Vec::new(),
                output: b"\n".to_vec(),
                welcomed: false,
                stalled: false,
                seen: Vec::new(),
                closed: false,
            });
        }
        if tally.closed > 0 {
            return Err(io::Error::other("a client was disconnected during setup"));
        }
        if Instant::now() > setup_deadline {
            return Err(io::Error::other(format!(
                "setup timed out: {} of {n} welcomed, {} of {all_joins} joins seen",
                tally.welcomed, tally.joins
            )));
        }
        poll_once(
            &mut poll,
            &mut events,
            &mut clients,
            &mut tally,
            &mut buf,
            Some(Duration::from_millis(100)),
            (epoch, measuring),
        )?;
        // Setup is N joins told to up to N clients each: let the lines pile
        // up a little so that one read takes many (the load phase does not
        // wait: there every line is read as soon as it is readable).
        std::thread::sleep(SETUP_NAP);
    }
    let setup = epoch.elapsed();

    // The load: message k leaves at t0 + k / rate, from the clients in turn.
    let before = proc_stats(pid)?;
    let stalled = usize::from(load.stall);
    if load.stall {
        clients[0].stalled = true;
    }
    let total = (load.rate * load.secs).round().max(1.0) as usize;
    for c in &mut clients {
        c.seen = vec![0; total.div_ceil(64)];
    }
    let t0 = Instant::now();
    measuring = Some(t0);
    let receivers = (n - 1 - stalled) as u64;
    let end = t0 + Duration::from_secs_f64(load.secs);
    tally.per_second = vec![0; load.secs.ceil() as usize + DRAIN.as_secs() as usize + 1];
    let pad = if load.pad > 0 {
        format!(" {}", "x".repeat(load.pad))
    } else {
        String::new()
    };
    loop {
        let now = Instant::now();
        while tally.senders.len() < total {
            let k = tally.senders.len();
            let due = t0 + Duration::from_secs_f64(k as f64 / load.rate);
            if due > now {
                break;
            }
            let sender = stalled + k % (n - stalled);
            let sent_ns = now.duration_since(epoch).as_nanos();
            tally.senders.push(sender);
            let c = &mut clients[sender];
            let _ = writeln!(c.output, "m {k} {sent_ns}{pad}");
            c.flush();
        }
        let all_in = tally.senders.len() == total && tally.delivered >= total as u64 * receivers;
        if all_in || now >= end + DRAIN {
            break;
        }
        let next = if tally.senders.len() < total {
            t0 + Duration::from_secs_f64(tally.senders.len() as f64 / load.rate)
        } else {
            end + DRAIN
        };
        let timeout = next
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        poll_once(
            &mut poll,
            &mut events,
            &mut clients,
            &mut tally,
            &mut buf,
            Some(timeout),
            (epoch, measuring),
        )?;
    }
    let after = proc_stats(pid)?;

    let mut lat = std::mem::take(&mut tally.latencies_us);
    lat.sort_unstable();
    let pct = |p: usize| {
        lat.get((lat.len() * p / 100).min(lat.len().saturating_sub(1)))
            .map_or(0, |&v| u64::from(v))
    };
    Ok(Outcome {
        clients: n,
        setup,
        sent: total as u64,
        expected: total as u64 * receivers,
        delivered: tally.delivered,
        echoes: tally.echoes,
        duplicates: tally.duplicates,
        p50_us: pct(50),
        p99_us: pct(99),
        max_us: lat.last().map_or(0, |&v| u64::from(v)),
        per_second: tally.per_second,
        stalled_dropped_after: tally.stalled_dropped.map(|at| at.duration_since(t0)),
        before,
        after,
    })
}

/// One `poll` and everything its events make readable or writable.
fn poll_once(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    tally: &mut Tally,
    buf: &mut [u8],
    timeout: Option<Duration>,
    clock: (Instant, Option<Instant>),
) -> io::Result<()> {
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
        other => other?,
    }
    for event in events.iter() {
        let who = event.token().0;
        let c = &mut clients[who];
        if event.is_writable() {
            c.flush();
        }
        if c.stalled || c.closed {
            continue;
        }
        loop {
            match c.stream.read(buf) {
                Ok(0) => {
                    c.closed = true;
                    tally.closed += 1;
                    break;
                }
                Ok(n) => c.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    c.closed = true;
                    tally.closed += 1;
                    break;
                }
            }
        }
        let now = Instant::now();
        let mut input = std::mem::take(&mut c.input);
        let mut start = 0;
        while let Some(len) = input[start..].iter().position(|&b| b == b'\n') {
            on_line(&input[start..start + len], who, c, tally, now, clock);
            start += len + 1;
        }
        input.drain(..start);
        c.input = input;
    }
    Ok(())
}

/// Tallies one line read by client `who`.
fn on_line(
    line: &[u8],
    who: usize,
    c: &mut Client,
    tally: &mut Tally,
    now: Instant,
    (epoch, t0): (Instant, Option<Instant>),
) {
    if line.starts_with(b"*** welcome") && !c.welcomed {
        c.welcomed = true;
        tally.welcomed += 1;
        return;
    }
    // `[HH:MM:SS] #lobby ` then `<nick> text`, `--> nick joined`, `<-- nick left (..)`.
    let Some(rest) = line
        .strip_prefix(b"[")
        .and_then(|l| l.get(10..))
        .and_then(|l| l.strip_prefix(b"#lobby "))
    else {
        return;
    };
    if rest.starts_with(b"--> ") {
        tally.joins += 1;
    } else if rest.starts_with(b"<-- ") && rest.ends_with(b"(slow consumer)") {
        tally.stalled_dropped.get_or_insert(now);
    } else if let Some(text) = rest
        .strip_prefix(b"<")
        .and_then(|r| r.iter().position(|&b| b == b'>').map(|i| &r[i + 1..]))
        .and_then(|r| r.strip_prefix(b" m "))
    {
        let mut words = text.split(|&b| b == b' ');
        let mut num = || {
            std::str::from_utf8(words.next().unwrap_or_default())
                .ok()
                .and_then(|w| w.parse::<u128>().ok())
        };
        let (Some(k), Some(sent_ns)) = (num(), num()) else {
            return;
        };
        let k = k as usize;
        let (Some(&sender), Some(t0)) = (tally.senders.get(k), t0) else {
            return;
        };
        if sender == who {
            tally.echoes += 1;
            return;
        }
        let (word, bit) = (k / 64, 1u64 << (k % 64));
        if c.seen[word] & bit != 0 {
            tally.duplicates += 1;
            return;
        }
        c.seen[word] |= bit;
        tally.delivered += 1;
        let recv_ns = now.duration_since(epoch).as_nanos();
        let us = recv_ns.saturating_sub(sent_ns) / 1000;
        tally.latencies_us.push(us.min(u32::MAX as u128) as u32);
        let second = now.saturating_duration_since(t0).as_secs() as usize;
        if let Some(slot) = tally.per_second.get_mut(second) {
            *slot += 1;
        }
    }
}

/// A server process started for one scenario; killed (its own PID) on drop.
pub struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `program ARGS... --listen 127.0.0.1:0` and reads the address
    /// from its first line, `NAME listening on ADDR`.
    pub fn start(program: &Path, args: &[&str]) -> io::Result<Server> {
        let mut child = Command::new(program)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let addr = line
            .trim()
            .split_once(" listening on ")
            .and_then(|(_, a)| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{}: unexpected first line {line:?}",
                program.display()
            )));
        };
        Ok(Server {
            child,
            _stdout: stdout,
            addr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Options {
    natter: PathBuf,
    threaded: PathBuf,
    sizes: Vec<usize>,
    secs: f64,
    deliveries: f64,
    stall_clients: usize,
    stall_rate: f64,
    stall_pad: usize,
    out: Option<PathBuf>,
    servers: Vec<String>,
}

fn options() -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let mut o = Options {
        natter: dir.join("../natter"),
        threaded: dir.join("threaded"),
        sizes: vec![100, 1000, 5000],
        secs: 10.0,
        deliveries: 100_000.0,
        stall_clients: 100,
        stall_rate: 1000.0,
        stall_pad: 1000,
        out: None,
        servers: vec!["natter".into(), "threaded".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--natter" => o.natter = value.into(),
            "--threaded" => o.threaded = value.into(),
            "--sizes" => {
                o.sizes = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().map_err(|_| format!("bad size {s}")))
                    .collect::<Result<_, _>>()?
            }
            "--secs" => o.secs = value.parse().map_err(|_| bad())?,
            "--deliveries" => o.deliveries = value.parse().map_err(|_| bad())?,
            "--stall-clients" => o.stall_clients = value.parse().map_err(|_| bad())?,
            "--stall-rate" => o.stall_rate = value.parse().map_err(|_| bad())?,
            "--stall-pad" => o.stall_pad = value.parse().map_err(|_| bad())?,
            "--out" => o.out = Some(value.into()),
            "--servers" => o.servers = value.split(',').map(String::from).collect(),
            _ => {
                return Err(format!(
                    "unknown option {flag}\nusage: compare_threads [--natter PATH] \
                     [--threaded PATH] [--sizes 100,1000,5000] [--secs 10] \
                     [--deliveries 100000] [--stall-clients 100] [--stall-rate 1000] \
                     [--stall-pad 1000] [--servers natter,threaded] [--out FILE]"
                ))
            }
        }
    }
    Ok(o)
}

pub const NATTER_ARGS: [&str; 6] = [
    "--db", ":memory:", "--rate", "1000000", "--burst", "1000000",
];

/// Starts the server, runs the load, stops the server.
fn scenario(name: &str, program: &Path, load: &Load) -> io::Result<Outcome> {
    let args: &[&str] = if name == "natter" { &NATTER_ARGS } else { &[] };
    let server = Server::start(program, args)?;
    eprintln!(
        "{name}: {} clients{}, {:.1} messages/s for {} s ...",
        load.clients,
        if load.stall { ", one stalled" } else { "" },
        load.rate,
        load.secs
    );
    let outcome = run_load(server.addr, server.pid(), load);
    drop(server);
    // Let the kernel finish with the closed sockets before the next run.
    std::thread::sleep(Duration::from_secs(1));
    let o = outcome?;
    eprintln!(
        "{name}: setup {:.1} s, {} of {} delivered, p99 {:.2} ms",
        o.setup.as_secs_f64(),
        o.delivered,
        o.expected,
        o.p99_us as f64 / 1000.0
    );
    Ok(o)
}

/// The machine's CPUs (not `available_parallelism`, which counts the ones
/// this process is pinned to).
fn online_cpus() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

/// What a command prints, trimmed; empty if it could not run.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The opening fields of `compare-threads.json` (see the crate docs).
fn bench_meta(o: &Options) -> serde_json::Map<String, serde_json::Value> {
    let mut commit = command_output("git", &["rev-parse", "--short", "HEAD"]);
    if !command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        commit.push_str("-dirty");
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let json = serde_json::json!({
        "schema": "natter-bench-data/1",
        "program": "compare_threads",
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "commit": commit,
        "date": command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "cpus": online_cpus(),
        "kernel": read("/proc/sys/kernel/osrelease"),
        "loadavg_start": read("/proc/loadavg"),
        "secs": o.secs,
        "deliveries_per_sec": o.deliveries,
    });
    match json {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// One entry of `sizes`.
fn size_json(server: &str, load: &Load, out: &Outcome) -> serde_json::Value {
    let ms = |us: u64| us as f64 / 1000.0;
    serde_json::json!({
        "clients": out.clients,
        "server": server,
        "rate": load.rate,
        "setup_s": out.setup.as_secs_f64(),
        "threads": out.after.threads,
        "rss_kib": out.after.rss_kb,
        "ctxt_switches": out.ctxt_switches(),
        "cpu_s": out.cpu_secs(),
        "expected": out.expected,
        "delivered": out.delivered,
        "cpu_us_per_delivery": out.cpu_us_per_delivery(),
        "p50_ms": ms(out.p50_us),
        "p99_ms": ms(out.p99_us),
        "max_ms": ms(out.max_us),
        "echoes": out.echoes,
        "duplicates": out.duplicates,
    })
}

/// One entry of `stall.servers`.
fn stall_json(server: &str, out: &Outcome) -> serde_json::Value {
    serde_json::json!({
        "server": server,
        "expected": out.expected,
        "delivered": out.delivered,
        "p99_ms": out.p99_us as f64 / 1000.0,
        "max_ms": out.max_us as f64 / 1000.0,
        "dropped_after_s": out.stalled_dropped_after.map(|d| d.as_secs_f64()),
        "per_second": out.per_second,
    })
}

/// `v` pretty-printed, except that a list of numbers stays on one line
/// (a CDF point `[0.99, 5.6]`, a row of per-second counts).
fn pretty_json(v: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find(']').unwrap_or(after.len());
        let inner = &after[..close];
        let numbers = inner.chars().all(|c| {
            c.is_ascii_digit()
                || c.is_whitespace()
                || matches!(c, ',' | '.' | '-' | '+' | 'e' | 'E')
        });
        // A string holds no raw newline: only the printer's lists do.
        if numbers && inner.contains('\n') && close < after.len() {
            let items: Vec<&str> = inner.split(',').map(str::trim).collect();
            out.push('[');
            out.push_str(&items.join(", "));
            out.push(']');
            rest = &after[close + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".into()
    } else {
        format!("{:.3}", a / b)
    }
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("compare_threads: {e}");
            std::process::exit(2);
        }
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let data_dir = std::env::var_os("NATTER_BENCH_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let mut data = data_dir.as_ref().map(|_| bench_meta(&o));
    let (mut sizes_json, mut stall_servers) = (Vec::new(), Vec::new());
    let mut md = String::new();
    let _ = writeln!(
        md,
        "machine: {cpus} CPUs, Linux {}; commit {commit}; {} s per scenario, \
         {} deliveries/s offered\n",
        kernel.trim(),
        o.secs,
        o.deliveries
    );
    md.push_str(
        "| clients | server | setup s | threads | VmRSS MiB | ctx switches | CPU s | \
         deliveries | CPU µs/delivery | p50 ms | p99 ms | max ms |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut failed = false;
    for &n in &o.sizes {
        let load = Load {
            clients: n,
            secs: o.secs,
            rate: o.deliveries / (n.max(2) - 1) as f64,
            pad: 0,
            stall: false,
        };
        let mut row = Vec::new();
        for (name, program) in [("natter", &o.natter), ("threaded", &o.threaded)] {
            if !o.servers.iter().any(|s| s == name) {
                continue;
            }
            match scenario(name, program, &load) {
                Ok(out) => {
                    if out.echoes + out.duplicates > 0 || out.delivered < out.expected {
                        eprintln!(
                            "{name}: {} echoes, {} duplicates, {} missing",
                            out.echoes,
                            out.duplicates,
                            out.expected.saturating_sub(out.delivered)
                        );
                    }
                    let _ = writeln!(
                        md,
                        "| {n} | {name} | {:.1} | {} | {:.1} | {} | {:.2} | {} | {:.2} | {} | {} | {} |",
                        out.setup.as_secs_f64(),
                        out.after.threads,
                        out.after.rss_kb as f64 / 1024.0,
                        out.ctxt_switches(),
                        out.cpu_secs(),
                        out.delivered,
                        out.cpu_us_per_delivery(),
                        ms(out.p50_us),
                        ms(out.p99_us),
                        ms(out.max_us)
                    );
                    sizes_json.push(size_json(name, &load, &out));
                    row.push(out);
                }
                Err(e) => {
                    eprintln!("{name} with {n} clients failed: {e}");
                    let _ = writeln!(md, "| {n} | {name} | failed: {e} |");
                    failed = true;
                }
            }
        }
        if let [a, b] = &row[..] {
            let _ = writeln!(
                md,
                "| {n} | natter/threaded | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                ratio(a.setup.as_secs_f64(), b.setup.as_secs_f64()),
                ratio(a.after.threads as f64, b.after.threads as f64),
                ratio(a.after.rss_kb as f64, b.after.rss_kb as f64),
                ratio(a.ctxt_switches() as f64, b.ctxt_switches() as f64),
                ratio(a.cpu_secs(), b.cpu_secs()),
                ratio(a.delivered as f64, b.delivered as f64),
                ratio(a.cpu_us_per_delivery(), b.cpu_us_per_delivery()),
                ratio(a.p50_us as f64, b.p50_us as f64),
                ratio(a.p99_us as f64, b.p99_us as f64),
                ratio(a.max_us as f64, b.max_us as f64)
            );
        }
    }
    if o.stall_clients >= 3 {
        let load = Load {
            clients: o.stall_clients,
            secs: o.secs,
            rate: o.stall_rate,
            pad: o.stall_pad,
            stall: true,
        };
        let _ = writeln!(
            md,
            "\nOne reader stalled: {} clients, {} messages/s of {} bytes of padding; \
             the other {} clients' deliveries:\n\n\
             | server | delivered | of expected | p99 ms | max ms | stalled reader | \
             deliveries in each second of the load |\n|---|---:|---:|---:|---:|---|---|",
            load.clients,
            load.rate,
            load.pad,
            load.clients - 1
        );
        for (name, program) in [("natter", &o.natter), ("threaded", &o.threaded)] {
            if !o.servers.iter().any(|s| s == name) {
                continue;
            }
            match scenario(name, program, &load) {
                Ok(out) => {
                    let dropped = out.stalled_dropped_after.map_or_else(
                        || "still connected".to_string(),
                        |d| format!("dropped after {:.1} s", d.as_secs_f64()),
                    );
                    let seconds: Vec<String> =
                        out.per_second.iter().map(|n| n.to_string()).collect();
                    stall_servers.push(stall_json(name, &out));
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {:.1}% | {} | {} | {dropped} | {} |",
                        out.delivered,
                        100.0 * out.delivered as f64 / out.expected.max(1) as f64,
                        ms(out.p99_us),
                        ms(out.max_us),
                        seconds.join(" ")
                    );
                }
                Err(e) => {
                    eprintln!("{name} with a stalled reader failed: {e}");
                    let _ = writeln!(md, "| {name} | failed: {e} |");
                    failed = true;
                }
            }
        }
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if let (Some(dir), Some(doc)) = (&data_dir, data.as_mut()) {
        doc.insert("loadavg_end".into(), load_after.trim().into());
        doc.insert("sizes".into(), sizes_json.into());
        let stall = (o.stall_clients >= 3).then(|| {
            serde_json::json!({
                "clients": o.stall_clients,
                "rate": o.stall_rate,
                "pad": o.stall_pad,
                "servers": stall_servers,
            })
        });
        doc.insert("stall".into(), stall.into());
        let path = dir.join("compare-threads.json");
        let text = pretty_json(&serde_json::Value::Object(doc.clone()));
        match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text + "\n")) {
            Ok(()) => eprintln!("bench data: wrote {}", path.display()),
            Err(e) => {
                eprintln!("compare_threads: {}: {e}", path.display());
                failed = true;
            }
        }
    }
    let _ = writeln!(
        md,
        "\n/proc/loadavg before: {}; after: {}",
        load_before.trim(),
        load_after.trim()
    );
    println!("{md}");
    if let Some(path) = &o.out {
        if let Err(e) = std::fs::write(path, &md) {
            eprintln!("compare_threads: {}: {e}", path.display());
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
