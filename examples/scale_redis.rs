//! How many idle WebSocket clients this machine holds across several natter
//! processes sharing one chat through one Redis (`--redis`, PROTOCOL-2
//! section 6), and whether one broadcast still reaches every one of them.
//!
//! ```sh
//! cargo build --release --bin natter --example scale_redis
//! target/release/examples/scale_redis                    # 100,000 clients
//! target/release/examples/scale_redis --clients 20000    # smaller
//! ```
//!
//! One command, bounded in time (`--deadline`, 15 minutes by default: past
//! it everything is killed and it exits with 3), stopping everything it
//! started (by process id) and removing its temporary directory. Not part
//! of `make test`.
//!
//! What it does:
//!
//! 1. Starts a redis-server of its own on a free loopback port, in a
//!    temporary directory, with natter's durability settings (`--appendonly
//!    yes --appendfsync always`, no snapshots), and `--natters` natter
//!    processes on it (`--listen 127.0.0.1:0 --redis URL`, each its own
//!    SQLite file, flood control lifted), each waited for until its
//!    `/healthz` answers 200. Every process has the open-file limit (20,000
//!    here), so each holds at most 19,872 connections (natter's default
//!    `--max-connections`, the limit less 128): 100,000 clients need at
//!    least six; the default is one per 17,000 clients.
//! 2. Connects `--clients` WebSocket clients in rooms of `--room-size`
//!    from `--loadgens` load-generator processes (this program run again as
//!    shards, as `cargo bench --bench fanout -- 5` does; each under 19,000
//!    file descriptors). Client g is in room g % ROOMS and connects to
//!    natter (g / ROOMS) % NATTERS, so every room has members on every
//!    process; each shard sets up `--connect-window` (50) connections at
//!    once, to the processes in turn, so that no listen backlog (128)
//!    overflows (the kernel's counters of dropped handshakes are printed).
//!    Each shard waits until its clients' join traffic (presence) has been
//!    quiet for 300 ms.
//! 3. Reads every process's RSS and the clients it holds (`/api/stats`),
//!    Redis's `used_memory`, and the CPU the connects cost; then leaves the
//!    clients idle for `--idle` seconds and reads the CPU that took.
//! 4. The broadcast: one message into every room, all sent within the same
//!    millisecond (by the room's first member, so every sender is on the
//!    first natter process); every other member must receive it once. It
//!    counts the receipts and the time from the first send to the last
//!    receipt.
//! 5. Stops the clients, the natter processes and redis-server.
//!
//! Everything is measured, nothing asserted: the exit status is 0 when
//! every client connected and every receipt came, 1 otherwise.

#[path = "loadgen.rs"]
#[allow(dead_code, unreachable_pub)]
mod loadgen;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use loadgen::{Args as LoadArgs, Hook, Proto, RedisServer};

/// Idle WebSocket clients across several natter processes on one Redis,
/// then one broadcast to all of them.
#[derive(Parser, Debug)]
#[command(name = "scale_redis")]
struct Args {
    /// WebSocket clients in all.
    #[arg(long, default_value_t = 100_000)]
    clients: u32,
    /// Members of each room (the last room may have fewer).
    #[arg(long, default_value_t = 100)]
    room_size: u32,
    /// natter processes (0: one per 17,000 clients).
    #[arg(long, default_value_t = 0)]
    natters: u32,
    /// Load-generator processes (0: as many as the open-file limit needs).
    #[arg(long, default_value_t = 0)]
    loadgens: u32,
    /// Connections each load generator sets up at once (spread over the
    /// natter processes in turn). Every natter listens with a backlog of
    /// 128: past it the kernel drops handshakes, and a client whose
    /// handshake it gave up on waits for minutes (ListenOverflows below).
    #[arg(long, default_value_t = 50)]
    connect_window: usize,
    /// Seconds allowed for connecting every client.
    #[arg(long, default_value_t = 180.0)]
    connect_timeout: f64,
    /// Seconds to wait for the broadcast's receipts.
    #[arg(long, default_value_t = 60.0)]
    drain: f64,
    /// Seconds the clients stay idle, every one connected, before the
    /// broadcast: the CPU holding them costs (pings, Redis heartbeats).
    #[arg(long, default_value_t = 10.0)]
    idle: f64,
    /// Seconds the whole run may take; past it everything is killed.
    #[arg(long, default_value_t = 900.0)]
    deadline: f64,
    /// The natter binary (default: target/release/natter, beside this
    /// example's directory).
    #[arg(long)]
    natter: Option<PathBuf>,
}

/// A natter process of ours, killed when dropped.
struct Natter {
    child: Child,
    addr: SocketAddr,
}

impl Natter {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Natter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process this run started, for the watchdog.
type Pids = Arc<Mutex<Vec<u32>>>;

fn natter_bin(args: &Args) -> PathBuf {
    if let Some(p) = &args.natter {
        return p.clone();
    }
    // target/release/examples/scale_redis -> target/release/natter
    std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("natter")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release/natter"))
}

fn start_natter(bin: &Path, dir: &Path, i: u32, redis: &RedisServer) -> Result<Natter, String> {
    let mut child = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--rate", "1000000"])
        .args(["--burst", "1000000", "--redis", &redis.url(), "--db"])
        .arg(dir.join(format!("natter-{i}.db")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let addr = loadgen::listening_addr(&mut child, "natter listening on ");
    let n = Natter { child, addr };
    if !loadgen::wait_healthy(addr, Duration::from_secs(15)) {
        return Err(format!("natter {i} at {addr}: /healthz never answered 200"));
    }
    Ok(n)
}

/// `GET /api/stats` of a natter process, parsed.
fn api_stats(addr: SocketAddr) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(b"GET /api/stats HTTP/1.1\r\nHost: scale\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    serde_json::from_str(resp.split_once("\r\n\r\n")?.1).ok()
}

/// A process's CPU seconds (utime + stime).
fn cpu(pid: u32) -> f64 {
    loadgen::cpu_s(pid).unwrap_or(0.0)
}

/// `MemAvailable` from `/proc/meminfo`, in KiB.
fn mem_available_kb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The `TCP:` line of `/proc/net/sockstat` (sockets in use, their memory
/// in pages).
fn tcp_sockstat() -> String {
    std::fs::read_to_string("/proc/net/sockstat")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .unwrap_or("")
        .to_string()
}

/// The kernel's TCP counters that say connects were dropped or retried
/// (`/proc/net/netstat`, `TcpExt:`; the whole machine's, since boot).
const TCP_COUNTERS: [&str; 6] = [
    "ListenOverflows",
    "ListenDrops",
    "TCPSynRetrans",
    "TCPTimeouts",
    "TCPAbortOnTimeout",
    "SyncookiesSent",
];

fn tcp_counters() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return vec![0; TCP_COUNTERS.len()];
    };
    let pairs: Vec<(&str, u64)> = names
        .split_whitespace()
        .zip(values.split_whitespace())
        .map(|(n, v)| (n, v.parse().unwrap_or(0)))
        .collect();
    TCP_COUNTERS
        .iter()
        .map(|want| pairs.iter().find(|(n, _)| n == want).map_or(0, |(_, v)| *v))
        .collect()
}

/// What the processes looked like at one moment.
#[derive(Default, Clone)]
struct Snapshot {
    at: Option<Instant>,
    /// Per natter process: RSS (KiB), CPU s, WebSocket clients held.
    natters: Vec<(u64, f64, u64)>,
    redis_rss_kb: u64,
    redis_cpu: f64,
    redis_used: u64,
    mem_available_kb: u64,
    sockstat: String,
    /// Per core, busy and all jiffies (`/proc/stat`).
    cores: Vec<(u64, u64)>,
    /// `TCP_COUNTERS`.
    tcp: Vec<u64>,
    /// Per natter process: connections not yet a chat client (being
    /// sniffed or upgraded) and HTTP ones (`/api/stats`).
    pending: Vec<(u64, u64)>,
}

impl Snapshot {
    fn take(natters: &[Natter], redis: &RedisServer, with_stats: bool) -> Snapshot {
        Snapshot {
            at: Some(Instant::now()),
            natters: natters
                .iter()
                .map(|n| {
                    let ws = if with_stats {
                        api_stats(n.addr)
                            .and_then(|v| v.pointer("/connections/ws")?.as_u64())
                            .unwrap_or(0)
                    } else {
                        0
                    };
                    (loadgen::rss_kb(n.pid()).unwrap_or(0), cpu(n.pid()), ws)
                })
                .collect(),
            redis_rss_kb: loadgen::rss_kb(redis.pid()).unwrap_or(0),
            redis_cpu: cpu(redis.pid()),
            redis_used: redis.used_memory(),
            mem_available_kb: mem_available_kb(),
            sockstat: tcp_sockstat(),
            cores: core_jiffies(),
            tcp: tcp_counters(),
            pending: if with_stats {
                natters
                    .iter()
                    .map(|n| {
                        let v = api_stats(n.addr).unwrap_or_default();
                        let get = |p: &str| v.pointer(p).and_then(|x| x.as_u64()).unwrap_or(0);
                        (get("/connections/pending"), get("/connections/http"))
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The kernel's TCP counters since `earlier`, those that moved.
    fn tcp_since(&self, earlier: &Snapshot) -> String {
        let moved: Vec<String> = TCP_COUNTERS
            .iter()
            .zip(self.tcp.iter().zip(&earlier.tcp))
            .filter(|(_, (a, b))| a > b)
            .map(|(n, (a, b))| format!("{n} +{}", a - b))
            .collect();
        if moved.is_empty() {
            "none moved".to_string()
        } else {
            moved.join(", ")
        }
    }

    /// Cores' worth of CPU the whole machine used since `earlier`.
    fn machine_since(&self, earlier: &Snapshot) -> f64 {
        earlier
            .cores
            .iter()
            .zip(&self.cores)
            .map(|(b, a)| (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64)
            .sum()
    }

    fn natter_rss_kb(&self) -> u64 {
        self.natters.iter().map(|n| n.0).sum()
    }

    fn natter_cpu(&self) -> f64 {
        self.natters.iter().map(|n| n.1).sum()
    }
}

/// Per core, from `/proc/stat`: (busy, all) jiffies, busy being all but
/// idle and iowait.
fn core_jiffies() -> Vec<(u64, u64)> {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .map(|l| {
            let f: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            let all: u64 = f.iter().take(8).sum();
            let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
            (all - idle, all)
        })
        .collect()
}

/// Kills every process in `pids` (ours) and the load generator's shards,
/// then exits: the run took longer than `--deadline`.
fn watchdog(deadline: Duration, pids: Pids, dir: PathBuf) {
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!("scale_redis: past the deadline ({deadline:?}): stopping everything");
        let mut all = loadgen::shard_pids();
        all.extend(pids.lock().map(|v| v.clone()).unwrap_or_default());
        for pid in all {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(3);
    });
}

fn main() {
    loadgen::run_if_embedded_shard();
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("scale_redis: {e}");
            std::process::exit(2);
        }
    }
}

fn run(args: &Args) -> Result<bool, String> {
    let started = Instant::now();
    let clients = args.clients.max(1);
    let room_size = args.room_size.max(1);
    let rooms = clients.div_ceil(room_size);
    let n_natters = if args.natters == 0 {
        clients.div_ceil(17_000)
    } else {
        args.natters
    };
    let loadgens = if args.loadgens == 0 {
        loadgen::procs_needed(clients)
    } else {
        args.loadgens
    };
    let bin = natter_bin(args);
    let dir = std::env::temp_dir().join(format!(
        "natter-scale-{}-{}",
        std::process::id(),
        loadgen::random_u32()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pids: Pids = Arc::new(Mutex::new(Vec::new()));
    watchdog(
        Duration::from_secs_f64(args.deadline),
        Arc::clone(&pids),
        dir.clone(),
    );
    let result = run_in(args, &bin, &dir, &pids, clients, rooms, n_natters, loadgens);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "scale_redis: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    result
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    args: &Args,
    bin: &Path,
    dir: &Path,
    pids: &Pids,
    clients: u32,
    rooms: u32,
    n_natters: u32,
    loadgens: u32,
) -> Result<bool, String> {
    let fds = loadgen::open_file_limit();
    println!(
        "scale_redis: {clients} WebSocket clients in {rooms} rooms of {}, on {n_natters} natter \
         processes ({}) sharing one redis-server, driven by {loadgens} load-generator processes; \
         open-file limit {fds} per process; {} cores, {:.1} GiB available",
        args.room_size,
        bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_available_kb() as f64 / 1048576.0
    );
    let redis = RedisServer::start(dir, &[])?;
    if let Ok(mut v) = pids.lock() {
        v.push(redis.pid());
    }
    // Dropped before `redis` (declared after it): natter processes first.
    let mut natters: Vec<Natter> = Vec::new();
    for i in 0..n_natters {
        let n = start_natter(bin, dir, i, &redis)?;
        if let Ok(mut v) = pids.lock() {
            v.push(n.pid());
        }
        natters.push(n);
    }
    std::thread::sleep(Duration::from_millis(500));
    let before = Snapshot::take(&natters, &redis, false);
    println!(
        "  started: redis-server pid {} (used_memory {:.1} MiB), natter pids {:?}; natter RSS \
         {:.1} MiB in all before any client",
        redis.pid(),
        before.redis_used as f64 / 1048576.0,
        natters.iter().map(Natter::pid).collect::<Vec<_>>(),
        before.natter_rss_kb() as f64 / 1024.0
    );

    let mut a = LoadArgs::new(natters[0].addr, Proto::Ws);
    a.also_addr = natters[1..].iter().map(|n| n.addr).collect();
    a.clients = clients;
    a.rooms = rooms;
    a.procs = loadgens;
    a.connect_window = args.connect_window;
    a.connect_timeout = args.connect_timeout;
    a.drain = args.drain;
    a.nick_prefix = "sc".to_string();
    a.room_prefix = "scale".to_string();
    // One message from the first member of every room, all within the
    // first millisecond: sender g (g < ROOMS) sends at g / ROOMS ms.
    a.senders = rooms;
    a.rate = 1000.0;
    a.seconds = 0.001;

    let connect_start = Instant::now();
    let mut at_go = Snapshot::default();
    let mut after_idle = Snapshot::default();
    let mut at_done = Snapshot::default();
    let idle = Duration::from_secs_f64(args.idle);
    let mut hook = |h: Hook| match h {
        Hook::Go => {
            at_go = Snapshot::take(&natters, &redis, true);
            // The shards wait for the word to send meanwhile, answering
            // pings: every client is connected and idle.
            std::thread::sleep(idle);
            after_idle = Snapshot::take(&natters, &redis, false);
        }
        Hook::Done => at_done = Snapshot::take(&natters, &redis, false),
    };
    let s = loadgen::run(&a, &loadgen::embedded_shard_command, &mut hook);
    let s = match s {
        Ok(s) => s,
        Err(e) => {
            let now = Snapshot::take(&natters, &redis, true);
            println!(
                "  the load generator gave up: {e}; natter processes hold {:?} WebSocket \
                 clients, RSS {:.1} MiB in all; Redis used_memory {:.1} MiB; {}",
                now.natters.iter().map(|n| n.2).collect::<Vec<_>>(),
                now.natter_rss_kb() as f64 / 1024.0,
                now.redis_used as f64 / 1048576.0,
                now.sockstat
            );
            return Ok(false);
        }
    };
    let connect_wall = at_go
        .at
        .map_or(0.0, |g| g.duration_since(connect_start).as_secs_f64());
    let busy_connecting = at_go.machine_since(&before);

    // Memory with every client connected and idle.
    let held: u64 = at_go.natters.iter().map(|n| n.2).sum();
    let rss = at_go.natter_rss_kb();
    let per_conn = |kb: u64| kb as f64 * 1024.0 / s.connected.max(1) as f64;
    println!(
        "  connected: {}/{} clients ({} failed) in {:.1} s of connecting ({:.0} a second), \
         {:.1} s until every shard was quiet; natter processes hold {held} WebSocket clients: {:?}",
        s.connected,
        clients,
        s.failed,
        s.connect_s,
        s.connected as f64 / s.connect_s.max(1e-9),
        connect_wall,
        at_go.natters.iter().map(|n| n.2).collect::<Vec<_>>()
    );
    if !s.errors.is_empty() {
        println!("  errors while connecting or after: {:?}", s.errors);
    }
    println!(
        "  while connecting, the kernel's TCP counters (the whole machine's): {}; connections \
         not yet chat clients on each natter process (pending, HTTP): {:?}",
        at_go.tcp_since(&before),
        at_go.pending
    );
    println!(
        "  natter RSS: {:.1} MiB in all = {:.0} bytes per connection ({:.0} bytes over the \
         processes' {:.1} MiB before any client); per process MiB: {:?}",
        rss as f64 / 1024.0,
        per_conn(rss),
        per_conn(rss.saturating_sub(before.natter_rss_kb())),
        before.natter_rss_kb() as f64 / 1024.0,
        at_go
            .natters
            .iter()
            .map(|n| (n.0 as f64 / 1024.0 * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    println!(
        "  Redis: used_memory {:.1} MiB ({:.1} MiB before) = {:.0} bytes per client; \
         redis-server RSS {:.1} MiB",
        at_go.redis_used as f64 / 1048576.0,
        before.redis_used as f64 / 1048576.0,
        at_go.redis_used.saturating_sub(before.redis_used) as f64 / s.connected.max(1) as f64,
        at_go.redis_rss_kb as f64 / 1024.0
    );
    let natter_cpu = at_go.natter_cpu() - before.natter_cpu();
    let redis_cpu = at_go.redis_cpu - before.redis_cpu;
    println!(
        "  connecting cost: natter {:.1} CPU s in all ({:.0} us per client), redis-server {:.1} \
         CPU s ({:.0} us per client); the whole machine {:.2} cores' worth busy meanwhile (load \
         generators and anything else included); {:.1} GiB available (was {:.1}); kernel {}",
        natter_cpu,
        natter_cpu * 1e6 / s.connected.max(1) as f64,
        redis_cpu,
        redis_cpu * 1e6 / s.connected.max(1) as f64,
        busy_connecting,
        at_go.mem_available_kb as f64 / 1048576.0,
        before.mem_available_kb as f64 / 1048576.0,
        at_go.sockstat
    );
    let idle_s = args.idle.max(1e-9);
    println!(
        "  idle for {:.0} s, every client connected: natter {:.1}% of a core in all, \
         redis-server {:.1}%, the whole machine {:.2} cores' worth",
        args.idle,
        (after_idle.natter_cpu() - at_go.natter_cpu()) / idle_s * 100.0,
        (after_idle.redis_cpu - at_go.redis_cpu) / idle_s * 100.0,
        after_idle.machine_since(&at_go)
    );

    // The broadcast.
    let l = &s.latency_ms;
    let echo = &s.echo_latency_ms;
    let last_ms = if l.count > 0 {
        l.max.max(echo.max)
    } else {
        0.0
    };
    let bc_natter = at_done.natter_cpu() - after_idle.natter_cpu();
    let bc_redis = at_done.redis_cpu - after_idle.redis_cpu;
    println!(
        "  broadcast: {} messages (one per room, sent within 1 ms): {}/{} receipts ({} missing, \
         {} duplicates), {}/{} senders' own copies; receipt latency ms p50 {:.1} p90 {:.1} p99 \
         {:.1} max {:.1}; the last receipt {:.1} ms after the first send; natter {:.2} CPU s, \
         redis-server {:.2} CPU s for it",
        s.sent,
        s.received,
        s.expected,
        s.missing,
        s.duplicates,
        s.echo_received,
        s.echo_expected,
        l.p50,
        l.p90,
        l.p99,
        l.max,
        last_ms,
        bc_natter,
        bc_redis
    );
    if let (Some(same), Some(other)) = (&s.latency_same_ms, &s.latency_other_ms) {
        println!(
            "  broadcast, by where the receiver is: on the senders' process {} receipts, p99 \
             {:.1} max {:.1} ms; on the other processes {} receipts, p99 {:.1} max {:.1} ms",
            same.count, same.p99, same.max, other.count, other.p99, other.max
        );
    }
    println!(
        "  | clients connected | natter processes | load generators | connect s | natter RSS \
         MiB | bytes/conn (RSS / clients) | Redis used_memory MiB | bytes/client in Redis | \
         broadcast receipts | last receipt ms |"
    );
    println!(
        "  | {}/{} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {}/{} | {:.1} |",
        s.connected,
        clients,
        n_natters,
        loadgens,
        s.connect_s,
        rss as f64 / 1024.0,
        per_conn(rss),
        at_go.redis_used as f64 / 1048576.0,
        at_go.redis_used.saturating_sub(before.redis_used) as f64 / s.connected.max(1) as f64,
        s.received + s.echo_received,
        s.expected + s.echo_expected,
        last_ms
    );
    let ok = s.failed == 0 && s.connected == u64::from(clients) && s.passed();
    drop(natters);
    drop(redis);
    Ok(ok)
}
