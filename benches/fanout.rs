//! Load benchmarks of the whole server: thousands of real clients on
//! loopback, driven by the load generator of `examples/loadgen.rs` (the same
//! code, included as a module), against the real binary.
//!
//! ```sh
//! cargo bench --bench fanout           # every scenario, about 3 minutes
//! cargo bench --bench fanout -- 2 4    # scenarios 2 and 4 only
//! cargo bench --bench fanout -- memory 1   # scenario 1, store :memory:
//! cargo bench --bench fanout -- 7      # logins beside the chat, ~95 s
//! cargo bench --bench fanout -- 9      # TLS against plain TCP, ~2.5 min
//! cargo bench --bench fanout -- 10     # through Redis: 1 and 2 processes
//! ```
//!
//! Cargo builds `target/release/natter` for the bench (it is the binary
//! `CARGO_BIN_EXE_natter` names), so nothing needs building first;
//! `NATTER_BIN=path` measures another build instead (a copy made before a
//! change, to compare before and after in one session). The server
//! runs pinned to core 0 (`taskset -c 0`) and this process, which drives
//! every client from one mio loop, to core 1. Every server is started with
//! `--rate 1000000 --burst 1000000` (its flood control would otherwise drop
//! a sender's messages beyond 10 a second) and a fresh SQLite file in the
//! temporary directory, so each iteration's messages are really committed
//! before they are sent, as in production.
//!
//! Scenarios, one line each:
//!
//! 1. 1000 clients in one room, 20 senders x 5 msg/s, 10 s (line, then
//!    WebSocket).
//! 2. 1000 line clients in one room at rising total rates: the highest
//!    deliveries/s whose p99 stays under 250 ms with every message
//!    delivered exactly once, in order.
//! 3. 5000 WebSocket clients in 500 rooms of 10, each sending 1 msg/s.
//! 4. 10,000 idle WebSocket clients (rooms of 10): server RSS per connection.
//! 5. As many connections as the server's open-file limit allows (its
//!    `--max-connections` default), split over two load generator processes;
//!    one sender per room of 10 at 1 msg/s.
//! 6. Bursts: 500 WebSocket clients in 50 rooms of 10, each sending 1 msg/s
//!    (the "others", measured), first alone, then while, every second, 40
//!    line clients in another room each write 20 messages of 3,900 bytes in
//!    one write (3.1 MB into the room at once) to 10 readers there that
//!    read as fast as they can. Reports the others' p99 with and without
//!    the bursts, and whether any burst reader was dropped.
//! 7. Logins beside the chat (accounts): 1000 WebSocket clients in 100
//!    rooms of 10, each sending 1 msg/s, 10 s, first alone, then while 50
//!    logins a second arrive: every 20 ms a new line connection sends
//!    `/login NAME PASSWORD` for one of 4 accounts registered before the
//!    run, reads the answer (logged in, `rate_limited`, or anything else,
//!    within 10 s) and closes. Each Argon2id check runs on the server's
//!    password thread (`natter-hasher`, the helper below). Reports the chatting p99 with and without the logins
//!    and their ratio, the logins per second that succeeded and were
//!    refused, a login's latency, the helper's figures from `/api/stats`,
//!    how long the loop thread (and the load generator) waited for a CPU
//!    (`schedstat`), and how busy each core was. Pinned, the pair runs in
//!    four placements: the helper thread on core 0 beside the loop (where
//!    `taskset -c 0` puts the whole server) at nice 19, where natter puts
//!    it; the same at nice 0, the loop's priority (`renice`, which needs
//!    root); only the helper moved to core 1 (the load generator's); the
//!    server free on both cores.
//! 8. Searches beside the chat (search): the same 1000 clients, alone and
//!    then while a side thread searches a room of a million messages
//!    (`#archive`, built once with natter's store and kept under target/)
//!    over HTTP 20 times a second, the queries in turn: a common word, a
//!    middling one, a rare one, two words, a prefix, a phrase, `from:` and
//!    a word that is not there. Reports the chatting p99 with and without,
//!    and each kind of search's round trip.
//! 9. TLS against plain TCP (about 2.5 minutes). The server is started with a
//!    certificate (rcgen, for `localhost`, written to the temporary
//!    directory: `--tls-cert`/`--tls-key`) and the load generator's clients
//!    speak TLS to it (rustls with natter's `ring` provider, trusting that
//!    certificate alone, in the same mio loop) or plain TCP, the server
//!    the same both times. Scenarios 1 (line, then WebSocket), 2 (the same
//!    ladder) and 3, each plain then TLS, with the ratios TLS/plain of
//!    p50, p99, server CPU per million deliveries and RSS; then a burst of
//!    2000 new WebSocket connections (at most 100 being set up at once),
//!    each welcomed (its `joined`) then closed, plain, then TLS with
//!    X25519 (what browsers offer first; the load generator's default),
//!    then TLS with P-384 (what a rustls client on the `ring` provider
//!    offers first), every TLS one a full handshake: connections a second
//!    and the server's CPU per connection; then the chat of scenarios 7
//!    and 8 (1000 WebSocket clients in rooms of 10, 1 msg/s each) over TLS
//!    (X25519) alone and while, every second, a thread of the bench under
//!    `SCHED_IDLE` opens 500 new TLS connections the same way: the chatting
//!    p99 with and without, and how long each loop waited for a CPU.
//! 10. Several processes through Redis (about 2-4 minutes; needs Debian's
//!     redis-server, and is not part of the smoke run). Scenarios 1
//!     (WebSocket), 2 (the ladder) and 3 on (a) one natter on its SQLite
//!     file, the baseline, (b) one natter with `--redis` (the Redis hop),
//!     (c) two natter processes on one Redis with the clients split evenly
//!     (client g on process (g / ROOMS) % 2, so every room and every sender
//!     set is split), each run on fresh processes and a fresh redis-server
//!     (a free loopback port, a temporary directory, `--appendonly yes
//!     --appendfsync always --save ''`). Nothing is pinned in any of the
//!     three: two natter processes, redis-server and the load generator
//!     share the two cores. Reports deliveries/s, p50/p99 (for (c) also
//!     apart for receivers on the sender's process and on the other), the
//!     CPU of every natter process and of redis-server per million
//!     deliveries, each one's share of a core, the cores' use (ours and the
//!     rest of the machine's) and Redis's time in the publish script, then
//!     the ratios against (a).
//!
//! The big scenarios use WebSocket clients because every line client is put
//! in the default room on connect: with thousands of line clients that room
//! alone costs a quadratic number of presence lines.
//!
//! `NATTER_BENCH_DATA=DIR` also writes what scenarios 1-3 measured (each
//! latency distribution at 104 quantiles, each step of scenario 2's
//! ladder) to `DIR/fanout.json`, for `examples/plots.rs`; the schema is
//! in `examples/loadgen.rs` (`bench_data_dir`). A run of none of them
//! writes nothing. Without the variable nothing is written.
//!
//! Every line reports the server's CPU seconds (utime + stime from
//! `/proc/PID/stat`) per million deliveries and its RSS. Without `--bench`
//! on the command line (`cargo test --all-targets`), every scenario runs at
//! a tiny size as an end-to-end smoke test that fails on any lost,
//! duplicated or reordered message.

#[path = "../examples/loadgen.rs"]
#[allow(dead_code, unreachable_pub)]
mod loadgen;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::{Args, GroupProbe, Hook, PhaseSpec, Proto, Session, Summary, TlsKx};

/// The p99 a rate must keep to count in scenario 2.
const P99_LIMIT_MS: f64 = 250.0;

/// `cargo bench --bench fanout -- memory`: the store is `:memory:`, not a
/// file (the issue asks for both; the file is the default).
fn in_memory() -> bool {
    std::env::args().any(|a| a == "memory")
}

/// The binary measured: `NATTER_BIN` if set, else the one Cargo built.
fn natter_bin() -> String {
    std::env::var("NATTER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_natter").into())
}

/// The server under test; killed and its database removed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    db: PathBuf,
}

impl Server {
    fn start(pinned: bool, tag: &str) -> Server {
        Server::start_on(pinned.then_some("0"), tag)
    }

    /// Started by `taskset -c CORES` if `cores` is given (else it inherits
    /// this process's cores).
    fn start_on(cores: Option<&str>, tag: &str) -> Server {
        Server::start_with(cores, tag, None)
    }

    /// Like `start_on`, on a copy of the database `from` (a file store
    /// even under `FANOUT_STORE=memory`).
    fn start_with(cores: Option<&str>, tag: &str, from: Option<&std::path::Path>) -> Server {
        Server::start_full(cores, tag, from, &[])
    }

    /// Like `start`, serving TLS too (the same port) with `files`.
    fn start_tls(pinned: bool, tag: &str, files: &TlsFiles) -> Server {
        Server::start_full(pinned.then_some("0"), tag, None, &files.server_args())
    }

    /// `start_with`, and `extra` options after the usual ones.
    fn start_full(
        cores: Option<&str>,
        tag: &str,
        from: Option<&std::path::Path>,
        extra: &[String],
    ) -> Server {
        let bin = natter_bin();
        let db = std::env::temp_dir().join(format!(
            "natter-fanout-{}-{tag}-{}.db",
            std::process::id(),
            loadgen::random_u32()
        ));
        if let Some(from) = from {
            std::fs::copy(from, &db).expect("copy the search database");
            // On disk before the server starts: otherwise its first
            // checkpoints' syncs write out the copy's hundreds of MiB.
            std::fs::File::open(&db)
                .and_then(|f| f.sync_all())
                .expect("sync the copy");
        }
        let mut cmd = if let Some(cores) = cores {
            let mut c = Command::new("taskset");
            c.args(["-c", cores, &bin]);
            c
        } else {
            Command::new(&bin)
        };
        cmd.args(["--listen", "127.0.0.1:0", "--rate", "1000000"])
            .args(["--burst", "1000000", "--db"]);
        if in_memory() && from.is_none() {
            cmd.arg(":memory:");
        } else {
            cmd.arg(&db);
        }
        cmd.args(extra);
        // FANOUT_SERVER_LOG=PATH keeps the server's log (with RUST_LOG).
        let log = std::env::var_os("FANOUT_SERVER_LOG").map_or_else(Stdio::null, |p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_or_else(|_| Stdio::null(), Stdio::from)
        });
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        let mut child = cmd.spawn().expect("start natter");
        let addr = loadgen::listening_addr(&mut child, "natter listening on ");
        Server { child, addr, db }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process to measure, for `rate_ladder`.
    fn procs(&self) -> Vec<(String, u32)> {
        vec![("natter".to_string(), self.pid())]
    }

    fn rss_kb(&self) -> u64 {
        loadgen::rss_kb(self.pid()).unwrap_or(0)
    }

    /// The connections its open-file limit allows: natter's
    /// `--max-connections` default (the limit less 128).
    fn max_connections(&self) -> u32 {
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", self.pid())).unwrap_or_default();
        let n: u32 = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1024);
        n.saturating_sub(128)
    }
}

/// `GET /api/stats`, parsed.
fn api_stats(addr: SocketAddr) -> Option<serde_json::Value> {
    let (_, body) = http_get(addr, "/api/stats")?;
    serde_json::from_str(&body).ok()
}

/// The server's own figures (`GET /api/stats`), as one line: its loop
/// iterations and events per wake-up, and the SQLite commits, which run in
/// the loop before anything is sent.
fn loop_stats(addr: SocketAddr) -> String {
    let Some(v) = api_stats(addr) else {
        return "  server loop: /api/stats unavailable".to_string();
    };
    let n = |p: &str| {
        v.pointer(p)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let commits = n("/store/commits");
    let flushes = n("/flushes/count");
    let mean = |total: &str, count: f64| if count > 0.0 { n(total) / count } else { 0.0 };
    format!(
        "  server loop: {} iterations, {:.1} events per wake-up, {} messages, {} deliveries \
         (presence included), {:.1} MB out; {} commits, {:.0} us mean, {:.1} ms max; \
         {} checkpoints, {:.1} ms max (on the loop: {}, {:.1} ms max); \
         WAL restarts {} (on the loop, {:.1} ms max); WAL {} pages; \
         {} flushes, {:.2} us each, longest pass {:.1} ms; \
         input paused {} times, {:.0} ms in all; dropped {}",
        n("/loop_iterations"),
        n("/events_per_wakeup"),
        n("/messages"),
        n("/deliveries"),
        n("/bytes_out") / 1e6,
        commits,
        mean("/store/commit_us_total", commits),
        n("/store/commit_us_max") / 1000.0,
        n("/store/checkpoints"),
        n("/store/checkpoint_us_max") / 1000.0,
        n("/store/loop_checkpoints"),
        n("/store/loop_checkpoint_us_max") / 1000.0,
        n("/store/wal_restarts"),
        n("/store/wal_restart_us_max") / 1000.0,
        n("/store/wal_pages"),
        flushes,
        mean("/flushes/us_total", flushes),
        n("/flushes/pass_us_max") / 1000.0,
        n("/output/input_pauses"),
        n("/output/input_paused_us_total") / 1000.0,
        v.pointer("/output/dropped")
            .map_or("{}".to_string(), |d| d.to_string())
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for ext in ["", "-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(ext);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// How big this run is.
struct Sizes {
    full: bool,
    s1_clients: u32,
    s1_senders: u32,
    s1_seconds: f64,
    s2_clients: u32,
    s2_senders: u32,
    s2_rates: Vec<f64>,
    s2_seconds: f64,
    s3_clients: u32,
    s3_rooms: u32,
    s3_seconds: f64,
    s4_clients: u32,
    s4_seconds: f64,
    s5_clients: Option<u32>,
    s5_seconds: f64,
    s6_clients: u32,
    s6_seconds: f64,
    s6_senders: usize,
    s7_clients: u32,
    s7_seconds: f64,
    s7_logins_per_s: f64,
    s8_messages: usize,
    s8_searches_per_s: f64,
    s9_rates: Vec<f64>,
    s9_handshakes: u32,
    s9_burst: u32,
    s9_burst_every: f64,
}

impl Sizes {
    fn full() -> Sizes {
        Sizes {
            full: true,
            s1_clients: 1000,
            s1_senders: 20,
            s1_seconds: 10.0,
            s2_clients: 1000,
            s2_senders: 50,
            s2_rates: vec![250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0],
            s2_seconds: 2.0,
            s3_clients: 5000,
            s3_rooms: 500,
            s3_seconds: 10.0,
            s4_clients: 10_000,
            s4_seconds: 5.0,
            s5_clients: None,
            s5_seconds: 10.0,
            s6_clients: 500,
            s6_seconds: 10.0,
            s6_senders: 40,
            s7_clients: 1000,
            s7_seconds: 10.0,
            s7_logins_per_s: 50.0,
            s8_messages: 1_000_000,
            s8_searches_per_s: 20.0,
            s9_rates: vec![250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0],
            s9_handshakes: 2000,
            s9_burst: 500,
            s9_burst_every: 1.0,
        }
    }

    fn smoke() -> Sizes {
        Sizes {
            full: false,
            s1_clients: 20,
            s1_senders: 4,
            s1_seconds: 2.0,
            s2_clients: 20,
            s2_senders: 4,
            s2_rates: vec![20.0, 40.0],
            s2_seconds: 1.0,
            s3_clients: 20,
            s3_rooms: 2,
            s3_seconds: 2.0,
            s4_clients: 20,
            s4_seconds: 1.0,
            s5_clients: Some(40),
            s5_seconds: 2.0,
            s6_clients: 20,
            s6_seconds: 2.0,
            s6_senders: 4,
            s7_clients: 20,
            s7_seconds: 2.0,
            // Few enough that the helper keeps up even in a debug build on
            // a busy machine: the smoke run wants every login to succeed.
            s7_logins_per_s: 10.0,
            s8_messages: 3_000,
            s8_searches_per_s: 10.0,
            s9_rates: vec![20.0, 40.0],
            s9_handshakes: 20,
            s9_burst: 10,
            s9_burst_every: 0.5,
        }
    }
}

fn args(addr: SocketAddr, proto: Proto, clients: u32, rooms: u32) -> Args {
    let mut a = Args::new(addr, proto);
    a.clients = clients;
    a.rooms = rooms;
    a.drain = 10.0;
    a
}

/// One load generator run with the server measured from `Go` to `Done`.
fn measure(server: &Server, a: &mut Args) -> Summary {
    loadgen::run_measured(a, server.pid())
}

fn check(sizes: &Sizes, what: &str, s: &Summary) {
    if !sizes.full {
        assert!(s.passed(), "{what}: {}\n{}", s.line(), s.details());
    }
}

/// (1) One big room, a modest rate.
fn scenario_1(sizes: &Sizes, pinned: bool, proto: Proto) -> Summary {
    let server = Server::start(pinned, "s1");
    let mut a = args(server.addr, proto, sizes.s1_clients, 1);
    a.senders = sizes.s1_senders;
    a.rate = 5.0;
    a.seconds = sizes.s1_seconds;
    let s = measure(&server, &mut a);
    println!(
        "fanout 1 ({}): {} {} clients in 1 room, {} senders x 5 msg/s, {} s, connected in {:.1} s: {}",
        proto_name(proto),
        s.connected,
        proto_name(proto),
        a.senders,
        a.seconds,
        s.connect_s,
        s.describe()
    );
    println!("{}", loop_stats(server.addr));
    check(sizes, "scenario 1", &s);
    s
}

/// What a rate ladder came to: every step in order (the in-between step
/// too), the highest rate that held, the first that did not, and the
/// ladder's own rates tried (without the in-between one).
struct Ladder {
    steps: Vec<(f64, Summary)>,
    best: Option<(f64, Summary)>,
    first_fail: Option<(f64, Summary)>,
    tried: Vec<f64>,
}

/// Scenario 2's ladder with the clients of `a`, measuring the processes
/// `procs` (the server; several natter processes and their redis-server in
/// scenario 10): the rates in turn on the same connections until one
/// fails (p99 over `P99_LIMIT_MS` or anything lost), then one step between
/// the last that held and the first that did not. Each step is printed
/// after `label`.
fn rate_ladder(
    sizes: &Sizes,
    procs: &[(String, u32)],
    a: &Args,
    rates: &[f64],
    label: &str,
) -> Ladder {
    let mut session =
        Session::connect(a, 0, 1, loadgen::random_u32()).unwrap_or_else(|e| panic!("{e}"));
    let mut ladder = Ladder {
        steps: Vec::new(),
        best: None,
        first_fail: None,
        tried: Vec::new(),
    };
    let run_step = |session: &mut Session, total: f64| -> (Summary, String) {
        let spec = PhaseSpec {
            senders: sizes.s2_senders,
            rate: total / f64::from(sizes.s2_senders),
            seconds: sizes.s2_seconds,
            payload: a.payload,
            drain: 5.0,
        };
        let mut probe = GroupProbe::new(procs);
        let mut cores = core_jiffies();
        let (mut busy, mut machine) = (String::new(), 0.0);
        let st = session.phase(&spec, &mut |h: Hook| {
            probe.hook(h);
            match h {
                Hook::Go => cores = core_jiffies(),
                Hook::Done => {
                    let now = core_jiffies();
                    busy = cores_busy(&cores, &now);
                    machine = cores_worth(&cores, &now);
                }
            }
        });
        let mut s = Summary::new(a.proto, 1, 1, &spec, &st);
        s.tls = a.tls;
        probe.finish(&mut s);
        let wall = probe.wall_s().max(1e-9);
        let ours =
            (s.processes.iter().map(|p| p.usage.cpu_s).sum::<f64>() + s.loadgen_cpu_s) / wall;
        let bound = s10_bound(&s, wall, &busy, machine, ours, (0, 0));
        (s, bound)
    };
    let step = |session: &mut Session, total: f64, ladder: &mut Ladder| -> bool {
        let (s, bound) = run_step(session, total);
        let ok = s.passed() && s.latency_ms.p99 < P99_LIMIT_MS;
        println!(
            "  {label} step: {total} msg/s total ({} senders): {}\n    bound: {bound}",
            sizes.s2_senders,
            s.describe()
        );
        ladder.steps.push((total, s.clone()));
        if ok {
            ladder.best = Some((total, s));
        } else if ladder.first_fail.is_none() {
            ladder.first_fail = Some((total, s));
        }
        ok
    };
    for &total in rates {
        ladder.tried.push(total);
        if !step(&mut session, total, &mut ladder) {
            break;
        }
    }
    // One step between the last rate that held and the first that did not.
    let between = match (&ladder.best, &ladder.first_fail) {
        (Some((lo, _)), Some((hi, _))) => Some((*lo, *hi)),
        _ => None,
    };
    if let Some((lo, hi)) = between {
        let mid = ((lo * hi).sqrt() / 10.0).round() * 10.0;
        let intact = session.connected() == u64::from(a.clients);
        if sizes.full && intact && mid > lo && mid < hi {
            step(&mut session, mid, &mut ladder);
        }
    }
    session.close();
    ladder
}

/// (2) One big room at rising total rates, on the same connections.
fn scenario_2(sizes: &Sizes, pinned: bool) -> Ladder {
    let server = Server::start(pinned, "s2");
    let a = args(server.addr, Proto::Line, sizes.s2_clients, 1);
    let ladder = rate_ladder(sizes, &server.procs(), &a, &sizes.s2_rates, "fanout 2");
    match &ladder.best {
        Some((total, s)) => println!(
            "fanout 2: {} line clients in 1 room, rising rates {:?} msg/s: highest that held \
             (p99 < {P99_LIMIT_MS} ms, all delivered once in order): {total} msg/s = {}",
            sizes.s2_clients,
            ladder.tried,
            s.describe()
        ),
        None => println!(
            "fanout 2: {} line clients in 1 room: no rate held (first step: {})",
            sizes.s2_clients,
            ladder
                .first_fail
                .as_ref()
                .map(|(_, s)| s.describe())
                .unwrap_or_default()
        ),
    }
    println!("{}", loop_stats(server.addr));
    if !sizes.full {
        assert!(
            ladder.best.is_some() && ladder.first_fail.is_none(),
            "scenario 2 lost messages"
        );
    }
    ladder
}

/// (3) Many small rooms, everyone talking.
fn scenario_3(sizes: &Sizes, pinned: bool) -> Summary {
    let server = Server::start(pinned, "s3");
    let mut a = args(server.addr, Proto::Ws, sizes.s3_clients, sizes.s3_rooms);
    a.senders = sizes.s3_clients;
    a.rate = 1.0;
    a.seconds = sizes.s3_seconds;
    let s = measure(&server, &mut a);
    println!(
        "fanout 3: {} ws clients in {} rooms of {}, each sending 1 msg/s, {} s, connected in {:.1} s: \
         {} echoes; {}",
        s.connected,
        a.rooms,
        a.clients / a.rooms,
        a.seconds,
        s.connect_s,
        s.echo_received,
        s.describe()
    );
    println!("{}", loop_stats(server.addr));
    check(sizes, "scenario 3", &s);
    s
}

/// (4) Idle connections: what each one costs the server.
fn scenario_4(sizes: &Sizes, pinned: bool) {
    let server = Server::start(pinned, "s4");
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss_kb();
    let mut a = args(
        server.addr,
        Proto::Ws,
        sizes.s4_clients,
        sizes.s4_clients / 10,
    );
    a.senders = 0;
    a.seconds = sizes.s4_seconds;
    let s = measure(&server, &mut a);
    let srv = s.server.clone().unwrap_or_default();
    let per_conn = (srv.rss_kb_at_go.saturating_sub(before)) as f64 * 1024.0 / s.connected as f64;
    println!(
        "fanout 4: {} idle ws clients (rooms of 10), connected in {:.1} s: server RSS {:.1} MiB \
         before, {:.1} MiB with them = {:.0} bytes per connection; {:.2} CPU s while idle for {} s",
        s.connected,
        s.connect_s,
        before as f64 / 1024.0,
        srv.rss_kb_at_go as f64 / 1024.0,
        per_conn,
        srv.cpu_s,
        a.seconds
    );
    println!("{}", loop_stats(server.addr));
    check(sizes, "scenario 4", &s);
}

/// (5) As many connections as the open-file limit allows.
fn scenario_5(sizes: &Sizes, pinned: bool) {
    let server = Server::start(pinned, "s5");
    let cap = server.max_connections();
    let n = sizes.s5_clients.unwrap_or(cap);
    let mut a = args(server.addr, Proto::Ws, n, n.div_ceil(10));
    a.procs = 2;
    a.senders = a.rooms;
    a.rate = 1.0;
    a.seconds = sizes.s5_seconds;
    a.connect_timeout = 300.0;
    let before = server.rss_kb();
    let s = measure(&server, &mut a);
    let rss = s.server.as_ref().map_or(0, |u| u.rss_kb_at_done);
    println!(
        "fanout 5: {}/{} ws clients (server cap {cap}, the open-file limit less 128) from {} \
         processes, connected in {:.1} s, {} rooms with 1 sender at 1 msg/s, {} s: RSS {:.1} MiB \
         ({:.0} bytes per connection); {}",
        s.connected,
        n,
        s.procs,
        s.connect_s,
        a.rooms,
        a.seconds,
        rss as f64 / 1024.0,
        rss.saturating_sub(before) as f64 * 1024.0 / s.connected.max(1) as f64,
        s.describe()
    );
    println!("{}", loop_stats(server.addr));
    check(sizes, "scenario 5", &s);
}

/// Bursting line clients for scenario 6: `senders` clients in room
/// `burst` each write 20 messages of 3,900 bytes in one write, all at once,
/// every second until `stop`; `readers` more read the room as fast as they
/// can. Every client reads everything (threads that discard it); returns
/// the bursts sent and how many burst clients were told `slow_consumer`.
struct Bursts {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
    rounds: std::thread::JoinHandle<u32>,
}

impl Bursts {
    fn start(addr: SocketAddr, senders: usize, readers: usize) -> Bursts {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        let mut writers = Vec::new();
        for i in 0..senders + readers {
            let mut c = TcpStream::connect(addr).expect("burst client");
            // A first line at once: no wait for the sniff.
            c.write_all(format!("/nick burst{i}\n/join burst\n").as_bytes())
                .expect("join");
            if i < senders {
                writers.push(c.try_clone().expect("clone"));
            }
            let (stop, dropped) = (stop.clone(), dropped.clone());
            threads.push(std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = vec![0u8; 64 * 1024];
                let mut tail = Vec::new();
                loop {
                    match c.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            tail.extend_from_slice(&buf[..n]);
                            if tail.windows(18).any(|w| w == b"!!! slow_consumer:") {
                                dropped.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            let keep = tail.len().saturating_sub(17);
                            tail.drain(..keep);
                        }
                        Err(_) if stop.load(Ordering::Relaxed) => return,
                        Err(_) => {}
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(300));
        let filler = "x".repeat(3890);
        let stop2 = stop.clone();
        let rounds = std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop2.load(Ordering::Relaxed) {
                let gate = Arc::new(std::sync::Barrier::new(writers.len()));
                let handles: Vec<_> = writers
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let mut w = w.try_clone().expect("clone");
                        let burst: String =
                            (0..20).map(|n| format!("b{i} {n} {filler}\n")).collect();
                        let gate = gate.clone();
                        std::thread::spawn(move || {
                            gate.wait();
                            let _ = w.write_all(burst.as_bytes());
                        })
                    })
                    .collect();
                for h in handles {
                    let _ = h.join();
                }
                rounds += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            rounds
        });
        Bursts {
            stop,
            dropped,
            threads,
            rounds,
        }
    }

    fn stop(self) -> (u32, usize) {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Relaxed);
        let rounds = self.rounds.join().unwrap_or(0);
        for t in self.threads {
            let _ = t.join();
        }
        (rounds, self.dropped.load(Ordering::Relaxed))
    }
}

/// (6) The others' latency while a room takes bursts.
fn scenario_6(sizes: &Sizes, pinned: bool) {
    let mut p99 = Vec::new();
    for with_bursts in [false, true] {
        let server = Server::start(pinned, "s6");
        let bursts = with_bursts.then(|| Bursts::start(server.addr, sizes.s6_senders, 10));
        let mut a = args(
            server.addr,
            Proto::Ws,
            sizes.s6_clients,
            sizes.s6_clients / 10,
        );
        a.senders = sizes.s6_clients;
        a.rate = 1.0;
        a.seconds = sizes.s6_seconds;
        let s = measure(&server, &mut a);
        let burst_note = match bursts.map(Bursts::stop) {
            Some((rounds, dropped)) => format!(
                "with {rounds} bursts of {} x 20 x 3,900 B into a room of {} readers \
                 ({dropped} burst clients dropped as slow consumers)",
                sizes.s6_senders,
                sizes.s6_senders + 10
            ),
            None => "alone".to_string(),
        };
        println!(
            "fanout 6: {} ws clients in {} rooms of 10, each 1 msg/s, {} s, {burst_note}: {}",
            s.connected,
            a.rooms,
            a.seconds,
            s.describe()
        );
        println!("{}", loop_stats(server.addr));
        check(sizes, "scenario 6", &s);
        p99.push(s.latency_ms.p99);
    }
    if let [alone, busy] = p99[..] {
        println!(
            "fanout 6: the others' p99 {busy:.2} ms with bursts vs {alone:.2} ms alone = {:.2}x",
            busy / alone.max(1e-9)
        );
    }
}

/// The password of the accounts scenario 7 logs in to (spaces are allowed:
/// the password is the rest of the line).
const S7_PASSWORD: &str = "bench password 7";
/// Accounts scenario 7 registers, then logs in to in turn.
const S7_ACCOUNTS: usize = 4;
/// Longest a registration or a login may take before it counts as failed.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a registration or a login ended.
#[derive(Debug)]
enum Outcome {
    /// The confirmation line came.
    Done,
    /// `!!! rate_limited`: the helper had `MAX_JOBS_OUT` password jobs out.
    RateLimited,
    /// Another error code, a timeout, a closed connection.
    Other(String),
}

/// Opens a line connection, writes `lines` at once (no wait for the
/// protocol sniff), and reads until a line that starts with `want`, an
/// error line, or `LOGIN_TIMEOUT`; then closes. Returns the outcome and the
/// time from the write to the answer.
fn line_request(addr: SocketAddr, lines: &str, want: &str) -> (Outcome, Duration) {
    use std::io::{BufRead, BufReader, ErrorKind};
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    let mut c = match TcpStream::connect_timeout(&addr, LOGIN_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return (Outcome::Other(format!("connect: {e}")), Duration::ZERO),
    };
    let sent = Instant::now();
    if let Err(e) = c.write_all(lines.as_bytes()) {
        return (Outcome::Other(format!("write: {e}")), sent.elapsed());
    }
    let mut r = BufReader::new(c);
    let mut line = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || r.get_ref().set_read_timeout(Some(left)).is_err() {
            return (Outcome::Other("timeout".into()), sent.elapsed());
        }
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => return (Outcome::Other("closed".into()), sent.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (Outcome::Other("timeout".into()), sent.elapsed())
            }
            Err(e) => return (Outcome::Other(format!("read: {e}")), sent.elapsed()),
        }
        if line.starts_with(want) {
            return (Outcome::Done, sent.elapsed());
        }
        if let Some(rest) = line.strip_prefix("!!! ") {
            let code = rest.split(':').next().unwrap_or_default().trim();
            let outcome = if code == "rate_limited" {
                Outcome::RateLimited
            } else {
                Outcome::Other(code.to_string())
            };
            return (outcome, sent.elapsed());
        }
    }
}

/// The helper's figures from `/api/stats`: (queued, password_jobs,
/// password_us_total, password_us_max).
fn helper_stats(addr: SocketAddr) -> (u64, u64, u64, u64) {
    let v = api_stats(addr).unwrap_or_default();
    let n = |p: &str| {
        v.pointer(&format!("/helper/{p}"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    (
        n("queued"),
        n("password_jobs"),
        n("password_us_total"),
        n("password_us_max"),
    )
}

/// What the logins of scenario 7 came to.
#[derive(Default)]
struct LoginTally {
    /// From the first attempt to the stop.
    seconds: f64,
    attempted: u64,
    logged_in: u64,
    rate_limited: u64,
    other: std::collections::BTreeMap<String, u64>,
    /// Of the logins that succeeded, from `/login` written to the answer.
    latency: loadgen::Hist,
    /// Password jobs out on the helper, the most seen (`/api/stats` every
    /// 250 ms).
    queued_max: u64,
}

/// Logins for scenario 7: every `1/per_s` seconds a new line connection
/// logs in to one of the accounts (in turn), waits for the answer and
/// closes; each attempt is a thread of its own, so a slow one does not
/// hold up the next.
struct Logins {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    driver: std::thread::JoinHandle<LoginTally>,
    sampler: std::thread::JoinHandle<u64>,
}

impl Logins {
    /// Registers the accounts, one after the other, each answer awaited.
    fn register(addr: SocketAddr) {
        for i in 0..S7_ACCOUNTS {
            let name = format!("acct{i}");
            let (outcome, _) = line_request(
                addr,
                &format!("/nick {name}\n/register {S7_PASSWORD}\n"),
                &format!("*** account {name} registered"),
            );
            assert!(
                matches!(outcome, Outcome::Done),
                "registering {name}: {outcome:?}"
            );
        }
    }

    fn start(addr: SocketAddr, per_s: f64) -> Logins {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{mpsc, Arc};
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut most = 0;
            while !stop2.load(Ordering::Relaxed) {
                most = most.max(helper_stats(addr).0);
                std::thread::sleep(Duration::from_millis(250));
            }
            most
        });
        let stop2 = stop.clone();
        let driver = std::thread::spawn(move || {
            let interval = Duration::from_secs_f64(1.0 / per_s);
            let (tx, rx) = mpsc::channel::<(Outcome, Duration)>();
            let mut workers: Vec<std::thread::JoinHandle<()>> = Vec::new();
            let started = Instant::now();
            let mut k: u32 = 0;
            while !stop2.load(Ordering::Relaxed) {
                let due = started + interval * k;
                let now = Instant::now();
                if now < due {
                    std::thread::sleep((due - now).min(Duration::from_millis(5)));
                    continue;
                }
                let name = format!("acct{}", k as usize % S7_ACCOUNTS);
                let tx = tx.clone();
                workers.push(std::thread::spawn(move || {
                    let _ = tx.send(line_request(
                        addr,
                        &format!("/login {name} {S7_PASSWORD}\n"),
                        &format!("*** you are logged in as {name}"),
                    ));
                }));
                workers.retain(|w| !w.is_finished());
                k += 1;
            }
            let mut t = LoginTally {
                seconds: started.elapsed().as_secs_f64(),
                attempted: u64::from(k),
                ..LoginTally::default()
            };
            drop(tx);
            for w in workers {
                let _ = w.join();
            }
            for (outcome, took) in rx {
                match outcome {
                    Outcome::Done => {
                        t.logged_in += 1;
                        t.latency.record(took.as_nanos() as u64);
                    }
                    Outcome::RateLimited => t.rate_limited += 1,
                    Outcome::Other(why) => *t.other.entry(why).or_default() += 1,
                }
            }
            t
        });
        Logins {
            stop,
            driver,
            sampler,
        }
    }

    /// Stops the attempts and waits for the answers of those under way.
    fn stop(self) -> LoginTally {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut t = self.driver.join().unwrap_or_default();
        t.queued_max = self.sampler.join().unwrap_or(0);
        t
    }
}

/// Nanoseconds thread `tid` of process `pid` has spent runnable but
/// waiting for a CPU (the second field of its `schedstat`).
fn run_delay_ns(pid: u32, tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Per core, from `/proc/stat`: (busy, all) jiffies, busy being every
/// process's time and the kernel's (all but idle and iowait).
fn core_jiffies() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
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

/// How busy each core was between two `core_jiffies` readings, in percent.
fn cores_busy(before: &[(u64, u64)], after: &[(u64, u64)]) -> String {
    let per: Vec<String> = before
        .iter()
        .zip(after)
        .enumerate()
        .map(|(i, (b, a))| {
            let all = (a.1 - b.1).max(1) as f64;
            format!("core {i} {:.0}%", (a.0 - b.0) as f64 / all * 100.0)
        })
        .collect();
    per.join(", ")
}

/// Where scenario 7 puts the server's helper thread.
#[derive(Clone, Copy, PartialEq, Eq)]
enum HelperPlace {
    /// Where the server is: with the loop.
    AsStarted,
    /// Moved to core 1, the load generator's; the loop stays on core 0.
    Core1,
    /// Left with the loop, raised to nice 0, the loop's own priority
    /// (natter starts it at 19).
    Nice0,
}

/// The thread id of the server's password thread (`natter-hasher`).
fn helper_tid(pid: u32) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() == "natter-hasher" {
                return Some(task.file_name().to_string_lossy().into_owned());
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves the server's helper thread as `place` says (`taskset -p` or
/// `renice` on its thread id alone) and describes where the threads are
/// (read back from `/proc`).
fn place_helper(pid: u32, place: HelperPlace) -> String {
    let Some(tid) = helper_tid(pid) else {
        panic!("scenario 7: no natter-hasher thread in /proc/{pid}/task");
    };
    let run = |cmd: &str, args: &[&str]| {
        let ok = Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "scenario 7: {cmd} {args:?} failed");
    };
    let nice = |t: &str| {
        let stat =
            std::fs::read_to_string(format!("/proc/{pid}/task/{t}/stat")).unwrap_or_default();
        // Field 19 (nice) is the 17th after the command name.
        stat.rfind(')')
            .and_then(|i| stat[i + 2..].split_whitespace().nth(16))
            .unwrap_or("?")
            .to_string()
    };
    // The helper lowers itself to nice 19 as it starts (a `renice` it
    // runs): wait for that, or a placement made first would be undone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while nice(&tid) != "19" {
        assert!(
            Instant::now() < deadline,
            "scenario 7: the helper thread never went to nice 19"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    match place {
        HelperPlace::AsStarted => {}
        HelperPlace::Core1 => run("taskset", &["-c", "-p", "1", &tid]),
        HelperPlace::Nice0 => run("renice", &["-n", "0", "-p", &tid]),
    }
    let cores = |t: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/task/{t}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let me = pid.to_string();
    format!(
        "loop on core(s) {} at nice {}, helper thread {tid} on core(s) {} at nice {}",
        cores(&me),
        nice(&me),
        cores(&tid),
        nice(&tid)
    )
}

/// Scenarios 7 and 8's chat: every client in a room of 10, each sending
/// 1 msg/s, run in this process on this thread (its CPU wait is measured).
fn chat_args(server: &Server, sizes: &Sizes) -> Args {
    let clients = sizes.s7_clients;
    let mut a = args(server.addr, Proto::Ws, clients, clients / 10);
    a.senders = clients;
    a.rate = 1.0;
    a.seconds = sizes.s7_seconds;
    a.server_pid = Some(server.pid());
    a.procs = 1;
    a
}

/// (7) The chatting clients' latency while logins arrive.
fn scenario_7(sizes: &Sizes, pinned: bool) {
    // Pinned, four placements: the helper beside the loop on core 0 (where
    // `taskset -c 0` puts every thread of the server) at nice 19, as natter
    // starts it; the same raised to the loop's nice 0; moved to core 1;
    // and the server free to run on every core (the scheduler places both
    // threads; the load generator stays on core 1: started from this
    // process, pinned to core 1, the server would inherit that, so it is
    // started with every online core).
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_or_else(|_| "0-1".to_string(), |s| s.trim().to_string());
    let placements: &[(&str, bool, HelperPlace)] = if pinned {
        &[
            (
                "helper on core 0 with the loop, nice 19",
                true,
                HelperPlace::AsStarted,
            ),
            ("helper on core 0 at nice 0", true, HelperPlace::Nice0),
            ("helper on core 1", true, HelperPlace::Core1),
            ("server on every core", false, HelperPlace::AsStarted),
        ]
    } else {
        &[("not pinned", false, HelperPlace::AsStarted)]
    };
    let per_s = sizes.s7_logins_per_s;
    for &(label, pin_server, helper) in placements {
        let mut p99 = Vec::new();
        for with_logins in [false, true] {
            let server = if pin_server {
                Server::start(true, "s7")
            } else if pinned {
                Server::start_on(Some(&online), "s7")
            } else {
                Server::start(false, "s7")
            };
            let place = if pinned {
                let p = place_helper(server.pid(), helper);
                if pin_server {
                    p
                } else {
                    format!("{p}; load generator on core 1")
                }
            } else {
                "not pinned".to_string()
            };
            // The accounts exist in both runs; only the second logs in.
            Logins::register(server.addr);
            let (_, jobs_before, us_before, _) = helper_stats(server.addr);
            let a = chat_args(&server, sizes);
            let mut logins = None;
            let mut tally = None;
            let mut go = Instant::now();
            let mut run_s = 0.0;
            // The loop is the server's main thread: its id is the pid.
            let pid = server.pid();
            let mut waited = run_delay_ns(pid, pid);
            // The load generator's loop is this process's main thread.
            let me = std::process::id();
            let mut lg_waited = run_delay_ns(me, me);
            let mut cores = core_jiffies();
            let mut busy = String::new();
            let mut hook = |h: Hook| match h {
                Hook::Go => {
                    go = Instant::now();
                    waited = run_delay_ns(pid, pid);
                    lg_waited = run_delay_ns(me, me);
                    cores = core_jiffies();
                    if with_logins {
                        logins = Some(Logins::start(server.addr, per_s));
                    }
                }
                Hook::Done => {
                    run_s = go.elapsed().as_secs_f64();
                    waited = run_delay_ns(pid, pid) - waited;
                    lg_waited = run_delay_ns(me, me) - lg_waited;
                    busy = cores_busy(&cores, &core_jiffies());
                    tally = logins.take().map(Logins::stop);
                }
            };
            let s = loadgen::run(&a, &loadgen::embedded_shard_command, &mut hook)
                .unwrap_or_else(|e| panic!("loadgen: {e}"));
            let (queued, jobs, us_total, us_max) = helper_stats(server.addr);
            let what = if with_logins {
                format!("with {per_s} logins/s")
            } else {
                "alone".to_string()
            };
            println!(
                "fanout 7 ({place}): {} ws clients in {} rooms of 10, each 1 msg/s, {} s, {what}: {}",
                s.connected,
                a.rooms,
                a.seconds,
                s.describe()
            );
            if let Some(t) = &tally {
                let l = t.latency.summary();
                let rate = |n: u64| n as f64 / t.seconds.max(1e-9);
                let other: u64 = t.other.values().sum();
                println!(
                    "  logins: {} attempted in {:.1} s ({:.1}/s): {} logged in ({:.1}/s), {} refused \
                     rate_limited ({:.1}/s), {other} other {:?}; a successful login took ms p50 \
                     {:.1} p90 {:.1} p99 {:.1} max {:.1}; helper queue at most {} (sampled every 250 ms)",
                    t.attempted,
                    t.seconds,
                    rate(t.attempted),
                    t.logged_in,
                    rate(t.logged_in),
                    t.rate_limited,
                    rate(t.rate_limited),
                    t.other,
                    l.p50,
                    l.p90,
                    l.p99,
                    l.max,
                    t.queued_max
                );
                if !sizes.full {
                    assert!(
                        t.attempted > 0 && t.logged_in == t.attempted,
                        "scenario 7: not every login succeeded: {} of {}, {} rate_limited, {:?}",
                        t.logged_in,
                        t.attempted,
                        t.rate_limited,
                        t.other
                    );
                }
            }
            let run_jobs = jobs - jobs_before;
            let run_us = us_total - us_before;
            println!(
                "  helper: {run_jobs} password jobs from the start of the run until the last \
                 login was answered ({:.1} ms each on average, {:.1} s of hashing in all; the \
                 run lasted {run_s:.1} s); {jobs} in all with the {S7_ACCOUNTS} registrations, \
                 longest {:.1} ms; {queued} queued at the end; the loop thread waited {:.0} ms in \
                 all for a CPU during the run (runnable, not running: its schedstat), the load \
                 generator's {:.0} ms; cores busy during the run, every process on the machine \
                 counted: {busy}",
                run_us as f64 / 1000.0 / run_jobs.max(1) as f64,
                run_us as f64 / 1e6,
                us_max as f64 / 1000.0,
                waited as f64 / 1e6,
                lg_waited as f64 / 1e6
            );
            println!("{}", loop_stats(server.addr));
            check(sizes, "scenario 7", &s);
            p99.push(s.latency_ms.p99);
        }
        if let [alone, busy] = p99[..] {
            println!(
                "fanout 7 ({label}): chatting p99 {busy:.2} ms with {per_s} logins/s vs \
                 {alone:.2} ms alone = {:.2}x",
                busy / alone.max(1e-9)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Scenario 8: searches beside the chat
// ---------------------------------------------------------------------------

/// Syllables of the made-up vocabulary of scenario 8's archive.
const SYLLABLES: [&str; 12] = [
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "gu", "zo",
];
/// Words in the archive's vocabulary.
const S8_WORDS: usize = 5_000;
/// In one message of every 100,000 (and in the first): the rare word.
const S8_RARE: &str = "quokkazest";

/// Word `i` of the vocabulary: its base-12 digits as syllables, at least
/// three, so every word is distinct.
fn s8_word(i: usize) -> String {
    let mut n = i + 12 * 12; // three syllables at least
    let mut w = String::new();
    while n > 0 {
        w.push_str(SYLLABLES[n % 12]);
        n /= 12;
    }
    w
}

/// The archive scenario 8 searches: `n` messages in `#archive` from 50
/// senders, 8 to 15 words each, the words Zipf-like (word 0 in most
/// messages, word 4,999 in few), the rare word in one of every 100,000.
/// Built once with natter's own store (so the search index is natter's)
/// and kept under target/ for the next run.
fn s8_archive(n: usize) -> PathBuf {
    use natter::hub::event::Message;
    use natter::hub::names::RoomName;
    use natter::store::sqlite::SqliteStore;
    use natter::store::Store;
    use std::rc::Rc;
    let dir = PathBuf::from(
        std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").to_string()),
    );
    let path = dir.join(format!("bench-search-{n}.db"));
    if path.exists() {
        return path;
    }
    let started = Instant::now();
    let building = dir.join(format!("bench-search-{n}.db.building"));
    let _ = std::fs::remove_file(&building);
    let building_s = building.to_str().expect("UTF-8 path").to_string();
    let mut store = SqliteStore::open(&building_s, || "bench-search".into()).expect("open");
    let room = RoomName::parse("archive").expect("room");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        // xorshift64*: enough for made-up text.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let t0 = 1_700_000_000_000_u64;
    let mut batch = Vec::with_capacity(10_000);
    for seq in 1..=n as u64 {
        let words = 8 + (next() % 8) as usize;
        let mut text = Vec::with_capacity(words + 1);
        for _ in 0..words {
            let u = (next() % 1_000_000) as f64 / 1_000_000.0;
            text.push(s8_word((S8_WORDS as f64 * u.powi(4)) as usize));
        }
        if seq % 100_000 == 1 {
            text.push(S8_RARE.to_string());
        }
        let from = format!("user{}", next() % 50);
        let mut m = Message::new(room.clone(), seq, t0 + seq * 1000, from, text.join(" "));
        m.author = format!("g:{:016x}", seq % 50);
        batch.push(Rc::new(m));
        if batch.len() == 10_000 {
            store.append(&batch).expect("append");
            batch.clear();
        }
    }
    store.append(&batch).expect("append");
    // Messages are indexed in batches after their commit: index them all
    // now, as a server that had them all along would have.
    while store.unindexed() > 0 {
        store.index_pending(100_000).expect("index");
    }
    drop(store); // the last connection's close folds the WAL in
    std::fs::rename(&building, &path).expect("rename the archive");
    println!(
        "fanout 8: built {} ({n} messages) in {:.0} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    path
}

/// The queries scenario 8 sends in turn, with a name for each.
fn s8_queries() -> Vec<(&'static str, String)> {
    let w = |i| s8_word(i);
    vec![
        ("common word", w(0)),
        ("middling word", w(40)),
        ("rare word", S8_RARE.to_string()),
        ("two words", format!("{} {}", w(1), w(2))),
        ("prefix", w(7)[..4].to_string()),
        ("phrase", format!("\"{} {}\"", w(0), w(1))),
        ("from:", format!("from:user7 {}", w(3))),
        ("absent word", "notawordatall".to_string()),
    ]
}

/// One `GET` over a fresh connection: the status and the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.get(9..12)?.parse().ok()?;
    Some((status, resp.split_once("\r\n\r\n")?.1.to_string()))
}

fn percent_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the searching thread saw.
#[derive(Default)]
struct SearchTally {
    /// Per query kind: its latencies (ns) and the results of its last answer.
    kinds: Vec<(&'static str, loadgen::Hist, usize)>,
    failed: u64,
    sent: u64,
    seconds: f64,
}

/// Searches `#archive` over HTTP at `per_s` a second, the queries in turn,
/// until told to stop.
struct Searches {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<SearchTally>,
}

impl Searches {
    fn start(addr: SocketAddr, per_s: f64) -> Searches {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let queries = s8_queries();
            let mut t = SearchTally {
                kinds: queries
                    .iter()
                    .map(|(k, _)| (*k, loadgen::Hist::default(), 0))
                    .collect(),
                ..SearchTally::default()
            };
            let every = Duration::from_secs_f64(1.0 / per_s);
            let started = Instant::now();
            let mut due = started;
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now < due {
                    std::thread::sleep(due - now);
                    continue;
                }
                due += every;
                let (_, q) = &queries[i % queries.len()];
                let path = format!("/api/rooms/archive/search?q={}&limit=20", percent_encode(q));
                let sent = Instant::now();
                let answer = http_get(addr, &path);
                let took = sent.elapsed().as_nanos() as u64;
                t.sent += 1;
                let results = answer
                    .filter(|(status, _)| *status == 200)
                    .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                    .and_then(|v| v["results"].as_array().map(Vec::len));
                match results {
                    Some(n) => {
                        let k = &mut t.kinds[i % queries.len()];
                        k.1.record(took);
                        k.2 = n;
                    }
                    None => t.failed += 1,
                }
                i += 1;
            }
            t.seconds = started.elapsed().as_secs_f64();
            t
        });
        Searches { stop, thread }
    }

    fn stop(self) -> SearchTally {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("the search thread")
    }
}

/// (8) The chatting clients' latency while the archive is searched:
/// 1000 WebSocket clients in 100 rooms of 10, 1 msg/s each, alone and then
/// while a side thread searches a room of a million messages over HTTP 20
/// times a second (each search runs on the loop, like every request).
fn scenario_8(sizes: &Sizes, pinned: bool) {
    let archive = s8_archive(sizes.s8_messages);
    let per_s = sizes.s8_searches_per_s;
    let mut p99 = Vec::new();
    for with_searches in [false, true] {
        let server = Server::start_with(pinned.then_some("0"), "s8", Some(&archive));
        let a = chat_args(&server, sizes);
        let mut searches = None;
        let mut tally = None;
        let mut hook = |h: Hook| match h {
            Hook::Go => {
                if with_searches {
                    searches = Some(Searches::start(server.addr, per_s));
                }
            }
            Hook::Done => tally = searches.take().map(Searches::stop),
        };
        let s = loadgen::run(&a, &loadgen::embedded_shard_command, &mut hook)
            .unwrap_or_else(|e| panic!("loadgen: {e}"));
        let what = if with_searches {
            format!("with {per_s} searches/s of {} messages", sizes.s8_messages)
        } else {
            "alone".to_string()
        };
        println!(
            "fanout 8: {} ws clients in {} rooms of 10, each 1 msg/s, {} s, {what}: {}",
            s.connected,
            a.rooms,
            a.seconds,
            s.describe()
        );
        if let Some(t) = &tally {
            println!(
                "  searches: {} sent in {:.1} s ({:.1}/s), {} failed",
                t.sent,
                t.seconds,
                t.sent as f64 / t.seconds.max(1e-9),
                t.failed
            );
            for (kind, hist, results) in &t.kinds {
                let l = hist.summary();
                println!(
                    "  search {kind:>13}: {} answered, {results} results; ms p50 {:.2} p90 {:.2} \
                     p99 {:.2} max {:.2} (the HTTP round trip)",
                    l.count, l.p50, l.p90, l.p99, l.max
                );
            }
            if !sizes.full {
                assert_eq!(t.failed, 0, "scenario 8: searches failed");
                let common = &t.kinds[0];
                assert!(common.2 > 0, "scenario 8: the common word was not found");
                let absent = &t.kinds[t.kinds.len() - 1];
                assert_eq!(absent.2, 0, "scenario 8: an absent word was found");
            }
        }
        println!("{}", loop_stats(server.addr));
        check(sizes, "scenario 8", &s);
        p99.push(s.latency_ms.p99);
    }
    if let [alone, busy] = p99[..] {
        println!(
            "fanout 8: chatting p99 {busy:.2} ms with {per_s} searches/s vs {alone:.2} ms alone = \
             {:.2}x",
            busy / alone.max(1e-9)
        );
    }
}

// ---------------------------------------------------------------------------
// Scenario 9: TLS against plain TCP
// ---------------------------------------------------------------------------

/// Scenario 9's certificate: a self-signed one for `localhost` made with
/// rcgen (an ECDSA P-256 key, rcgen's default) and written into a
/// directory of its own under the temporary directory. The server serves
/// it (`--tls-cert`/`--tls-key`); the load generator trusts it and nothing
/// else (`--tls-ca`) and checks the name `localhost`. Removed when dropped.
struct TlsFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    fn make() -> TlsFiles {
        let dir = std::env::temp_dir().join(format!(
            "natter-fanout-{}-tls-{}",
            std::process::id(),
            loadgen::random_u32()
        ));
        std::fs::create_dir_all(&dir).expect("the certificate's directory");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("a self-signed certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, made.cert.pem()).expect("write cert.pem");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key.pem");
        TlsFiles { dir, cert, key }
    }

    fn server_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".to_string(),
            self.cert.display().to_string(),
            "--tls-key".to_string(),
            self.key.display().to_string(),
        ]
    }

    /// Makes the clients of `a` speak TLS, trusting this certificate.
    fn client(&self, a: &mut Args) {
        trust(a, &self.cert);
    }
}

/// Makes the clients of `a` speak TLS, trusting the certificate in the PEM
/// file `cert` alone, for the name `localhost`.
fn trust(a: &mut Args, cert: &std::path::Path) {
    a.tls = true;
    a.tls_ca = Some(cert.to_path_buf());
    a.tls_name = "localhost".to_string();
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn plain_or_tls(tls: bool) -> &'static str {
    if tls {
        "TLS"
    } else {
        "plain"
    }
}

/// `tls / plain`, as `1.23x` (`-` when the baseline is 0).
fn ratio(tls: f64, plain: f64) -> String {
    if plain > 0.0 {
        format!("{:.2}x", tls / plain)
    } else {
        "-".to_string()
    }
}

/// The ratios of a TLS run to its plain twin: latency, server CPU per
/// million deliveries, the server's RSS.
fn tls_ratios(plain: &Summary, tls: &Summary) -> String {
    let cpu = |s: &Summary| {
        s.server
            .as_ref()
            .map_or(0.0, |u| u.cpu_s_per_million_deliveries)
    };
    let rss = |s: &Summary| s.server.as_ref().map_or(0, |u| u.rss_kb_at_done) as f64;
    format!(
        "p50 {:.2} vs {:.2} ms = {}, p99 {:.2} vs {:.2} ms = {}, server CPU per M deliveries \
         {:.3} vs {:.3} s = {}, server RSS {:.1} vs {:.1} MiB = {}; load generator CPU {:.2} vs \
         {:.2} s = {}",
        tls.latency_ms.p50,
        plain.latency_ms.p50,
        ratio(tls.latency_ms.p50, plain.latency_ms.p50),
        tls.latency_ms.p99,
        plain.latency_ms.p99,
        ratio(tls.latency_ms.p99, plain.latency_ms.p99),
        cpu(tls),
        cpu(plain),
        ratio(cpu(tls), cpu(plain)),
        rss(tls) / 1024.0,
        rss(plain) / 1024.0,
        ratio(rss(tls), rss(plain)),
        tls.loadgen_cpu_s,
        plain.loadgen_cpu_s,
        ratio(tls.loadgen_cpu_s, plain.loadgen_cpu_s)
    )
}

/// The server's TLS counters from `/api/stats`: (handshakes begun, done,
/// failed).
fn tls_counters(addr: SocketAddr) -> (u64, u64, u64) {
    let v = api_stats(addr).unwrap_or_default();
    let n = |p: &str| {
        v.pointer(&format!("/tls/{p}"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    (n("handshakes"), n("done"), n("failures"))
}

/// What a burst of new connections came to.
#[derive(Default)]
struct BurstTally {
    rounds: u32,
    welcomed: u64,
    failed: u64,
    /// The bursts' own time: from each one's first connect to its last
    /// welcome, summed.
    seconds: f64,
    /// From a connect to its welcome.
    latency: loadgen::Hist,
    errors: std::collections::BTreeMap<String, u64>,
    /// The server's CPU over the connects (not the closes).
    server_cpu_s: f64,
    /// This process's CPU over the connects (the client half of each
    /// handshake).
    loadgen_cpu_s: f64,
    /// What the TLS clients negotiated: version, cipher suite, key exchange.
    suite: Option<String>,
}

impl BurstTally {
    fn per_s(&self) -> f64 {
        self.welcomed as f64 / self.seconds.max(1e-9)
    }

    fn describe(&self) -> String {
        let l = self.latency.summary();
        format!(
            "{} welcomed, {} failed, in {:.2} s = {:.0}/s; connect to welcome ms p50 {:.1} p90 \
             {:.1} p99 {:.1} max {:.1}; server {:.3} CPU s = {:.0} us per connection; load \
             generator {:.3} CPU s = {:.0} us per connection{}{}",
            self.welcomed,
            self.failed,
            self.seconds,
            self.per_s(),
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.server_cpu_s,
            self.server_cpu_s * 1e6 / self.welcomed.max(1) as f64,
            self.loadgen_cpu_s,
            self.loadgen_cpu_s * 1e6 / self.welcomed.max(1) as f64,
            self.suite
                .as_ref()
                .map_or(String::new(), |s| format!("; negotiated {s}")),
            if self.errors.is_empty() {
                String::new()
            } else {
                format!("; errors {:?}", self.errors)
            }
        )
    }
}

/// One burst: `n` new WebSocket connections to `addr` (over TLS, trusting
/// the certificate `cert` and offering key exchange `kx` first, if
/// given), at most 100 being set up at once, each in a room of 10 of its own
/// (`hs` rooms, no chatter's), until every one is welcomed (its `joined`)
/// or failed; then they say goodbye and close. `round` keeps the nicks
/// apart from those of other bursts. Added to `tally`, with the server's
/// CPU (process `pid`) over the connects.
fn burst(
    addr: SocketAddr,
    pid: u32,
    tls: Option<(&std::path::Path, TlsKx)>,
    n: u32,
    round: u32,
    t: &mut BurstTally,
) {
    let mut a = args(addr, Proto::Ws, n, n.div_ceil(10));
    a.room_prefix = "hs".to_string();
    a.nick_prefix = format!("hs{round}n");
    a.connect_window = 100;
    if let Some((cert, kx)) = tls {
        trust(&mut a, cert);
        a.tls_kx = kx;
    }
    let me = std::process::id();
    let (server_before, me_before) = (loadgen::cpu_s(pid), loadgen::cpu_s(me));
    let session =
        Session::connect(&a, 0, 1, loadgen::random_u32()).unwrap_or_else(|e| panic!("{e}"));
    let (server_after, me_after) = (loadgen::cpu_s(pid), loadgen::cpu_s(me));
    t.rounds += 1;
    t.welcomed += session.connected();
    t.failed += session.failed();
    t.seconds += session.connect_s();
    t.latency.merge(session.connect_latency());
    for (k, v) in session.errors() {
        *t.errors.entry(k.clone()).or_default() += v;
    }
    t.server_cpu_s += server_after.unwrap_or(0.0) - server_before.unwrap_or(0.0);
    t.loadgen_cpu_s += me_after.unwrap_or(0.0) - me_before.unwrap_or(0.0);
    if t.suite.is_none() {
        t.suite = session.tls_description();
    }
    session.close();
}

/// Bursts of new TLS connections beside the chat: every `every` seconds,
/// `n` at once (`burst`), from a thread of this process under
/// `SCHED_IDLE` (`chrt --idle`): the chatting clients' loop, on the same
/// core, runs first whenever it wants to (a lower nice would do nothing
/// when the whole bench runs at nice 19); the bursts take what it leaves.
struct HandshakeBursts {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<BurstTally>,
    /// How the thread was lowered (`SCHED_IDLE`, or why not).
    policy: std::sync::mpsc::Receiver<String>,
}

impl HandshakeBursts {
    fn start(addr: SocketAddr, pid: u32, cert: PathBuf, n: u32, every: f64) -> HandshakeBursts {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (tell, policy) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            // This thread's id, from /proc/thread-self -> PID/task/TID.
            let tid = std::fs::read_link("/proc/thread-self")
                .ok()
                .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()));
            let lowered = tid.as_deref().is_some_and(|tid| {
                Command::new("chrt")
                    .args(["--idle", "-p", "0", tid])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            });
            let _ = tell.send(if lowered {
                "the burst thread under SCHED_IDLE".to_string()
            } else {
                "the burst thread NOT lowered (chrt --idle failed)".to_string()
            });
            let mut t = BurstTally::default();
            let every = Duration::from_secs_f64(every);
            let started = Instant::now();
            let mut round = 0;
            while !flag.load(Ordering::Relaxed) {
                let due = started + every * round;
                let now = Instant::now();
                if now < due {
                    std::thread::sleep((due - now).min(Duration::from_millis(20)));
                    continue;
                }
                burst(addr, pid, Some((&cert, TlsKx::X25519)), n, round, &mut t);
                round += 1;
            }
            t
        });
        HandshakeBursts {
            stop,
            thread,
            policy,
        }
    }

    /// Stops the bursts after the one under way; the tally, and how the
    /// thread ran.
    fn stop(self) -> (BurstTally, String) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let t = self.thread.join().expect("the burst thread");
        (t, self.policy.recv().unwrap_or_default())
    }
}

/// Scenario 9's chat: the clients of scenarios 7 and 8 (1000 in rooms of
/// 10, each sending 1 msg/s, 10 s), over TLS.
fn s9_chat_args(server: &Server, sizes: &Sizes, files: &TlsFiles) -> Args {
    let mut a = chat_args(server, sizes);
    files.client(&mut a);
    a
}

/// (9) TLS against plain TCP, in one session: scenarios 1 (line, then
/// WebSocket), 2 and 3 each plain then over TLS, the server the same
/// (started with the certificate both times: only the clients differ);
/// new connections a second, plain and TLS; and the chat of scenario 3
/// over TLS alone and during bursts of new TLS connections.
fn scenario_9(sizes: &Sizes, pinned: bool) {
    let files = TlsFiles::make();
    let tls_of = |a: &mut Args, tls: bool| {
        if tls {
            files.client(a);
        }
    };
    // Scenario 1, line then WebSocket.
    for proto in [Proto::Line, Proto::Ws] {
        let mut runs = Vec::new();
        for tls in [false, true] {
            let server = Server::start_tls(pinned, "s9-1", &files);
            let mut a = args(server.addr, proto, sizes.s1_clients, 1);
            a.senders = sizes.s1_senders;
            a.rate = 5.0;
            a.seconds = sizes.s1_seconds;
            tls_of(&mut a, tls);
            let s = measure(&server, &mut a);
            println!(
                "fanout 9 (1, {}, {}): {} {} clients in 1 room, {} senders x 5 msg/s, {} s, \
                 connected in {:.1} s: {}",
                proto_name(proto),
                plain_or_tls(tls),
                s.connected,
                proto_name(proto),
                a.senders,
                a.seconds,
                s.connect_s,
                s.describe()
            );
            println!("{}", loop_stats(server.addr));
            check(sizes, "scenario 9 (1)", &s);
            runs.push(s);
        }
        println!(
            "fanout 9 (1, {}): TLS/plain {}",
            proto_name(proto),
            tls_ratios(&runs[0], &runs[1])
        );
    }
    // Scenario 2: the ladder, plain then TLS.
    let mut ladders = Vec::new();
    for tls in [false, true] {
        let server = Server::start_tls(pinned, "s9-2", &files);
        let mut a = args(server.addr, Proto::Line, sizes.s2_clients, 1);
        tls_of(&mut a, tls);
        let label = format!("fanout 9 (2, {})", plain_or_tls(tls));
        let ladder = rate_ladder(sizes, &server.procs(), &a, &sizes.s9_rates, &label);
        match &ladder.best {
            Some((total, s)) => println!(
                "{label}: {} line clients in 1 room, rising rates {:?} msg/s: highest that held \
                 (p99 < {P99_LIMIT_MS} ms, all delivered once in order): {total} msg/s = {}",
                sizes.s2_clients,
                ladder.tried,
                s.describe()
            ),
            None => println!("{label}: no rate held"),
        }
        println!("{}", loop_stats(server.addr));
        if !sizes.full {
            assert!(
                ladder.best.is_some() && ladder.first_fail.is_none(),
                "{label}: messages lost"
            );
        }
        ladders.push(ladder);
    }
    let (plain, tls) = (&ladders[0], &ladders[1]);
    let best = |l: &Ladder| l.best.as_ref().map_or(0.0, |(r, _)| *r);
    let best_dps = |l: &Ladder| l.best.as_ref().map_or(0.0, |(_, s)| s.deliveries_per_sec);
    println!(
        "fanout 9 (2): highest rate that held: TLS {} msg/s ({} deliveries/s) vs plain {} msg/s \
         ({} deliveries/s) = {}",
        best(tls),
        loadgen::si(best_dps(tls)),
        best(plain),
        loadgen::si(best_dps(plain)),
        ratio(best_dps(tls), best_dps(plain))
    );
    // The highest of the ladder's rates that both held: the same load.
    let held = |l: &Ladder, r: f64| {
        l.steps
            .iter()
            .find(|(rate, s)| *rate == r && s.passed() && s.latency_ms.p99 < P99_LIMIT_MS)
            .map(|(_, s)| s.clone())
    };
    let common = sizes
        .s9_rates
        .iter()
        .rev()
        .find_map(|&r| Some((r, held(plain, r)?, held(tls, r)?)));
    if let Some((r, p, t)) = common {
        println!(
            "fanout 9 (2): at {r} msg/s, the highest rate both held: TLS/plain {}",
            tls_ratios(&p, &t)
        );
    }
    // Scenario 3.
    let mut runs = Vec::new();
    for tls in [false, true] {
        let server = Server::start_tls(pinned, "s9-3", &files);
        let mut a = args(server.addr, Proto::Ws, sizes.s3_clients, sizes.s3_rooms);
        a.senders = sizes.s3_clients;
        a.rate = 1.0;
        a.seconds = sizes.s3_seconds;
        tls_of(&mut a, tls);
        let s = measure(&server, &mut a);
        println!(
            "fanout 9 (3, {}): {} ws clients in {} rooms of {}, each sending 1 msg/s, {} s, \
             connected in {:.1} s: {}",
            plain_or_tls(tls),
            s.connected,
            a.rooms,
            a.clients / a.rooms,
            a.seconds,
            s.connect_s,
            s.describe()
        );
        println!("{}", loop_stats(server.addr));
        check(sizes, "scenario 9 (3)", &s);
        runs.push(s);
    }
    println!("fanout 9 (3): TLS/plain {}", tls_ratios(&runs[0], &runs[1]));
    // New connections a second on the one thread: plain; TLS with X25519
    // (what browsers and OpenSSL offer first, and the load generator's
    // default); TLS with P-384 (what a client on rustls's ring provider
    // offers first).
    let n = sizes.s9_handshakes;
    let mut tallies: Vec<(&str, BurstTally)> = Vec::new();
    for (label, kx) in [
        ("plain", None),
        ("TLS, X25519", Some(TlsKx::X25519)),
        ("TLS, P-384", Some(TlsKx::P384)),
    ] {
        let server = Server::start_tls(pinned, "s9-hs", &files);
        let mut t = BurstTally::default();
        let tls = kx.map(|kx| (files.cert.as_path(), kx));
        burst(server.addr, server.pid(), tls, n, 0, &mut t);
        let (begun, done, failures) = tls_counters(server.addr);
        println!(
            "fanout 9 (new connections, {label}): {n} ws connections, at most 100 being set up \
             at once, each welcomed (its joined) then closed: {}; server TLS counters: {begun} \
             handshakes begun, {done} done, {failures} failed",
            t.describe()
        );
        if !sizes.full {
            assert_eq!(
                (t.welcomed, t.failed),
                (u64::from(n), 0),
                "scenario 9: new connections failed: {}",
                t.describe()
            );
            let want = if kx.is_some() { u64::from(n) } else { 0 };
            assert_eq!(done, want, "handshakes done");
        }
        tallies.push((label, t));
    }
    let per_conn = |t: &BurstTally| t.server_cpu_s * 1e6 / t.welcomed.max(1) as f64;
    let lg_per_conn = |t: &BurstTally| t.loadgen_cpu_s * 1e6 / t.welcomed.max(1) as f64;
    let p = &tallies[0].1;
    for (label, t) in &tallies[1..] {
        println!(
            "fanout 9 (new connections, {label}): {:.0}/s vs plain {:.0}/s = {}; server CPU per \
             connection {:.0} vs {:.0} us = {} (TLS adds {:.0} us; at {:.0} us a connection the \
             server's one thread could set up at most {:.0} a second, were it doing nothing \
             else); load generator CPU per connection {:.0} vs {:.0} us",
            t.per_s(),
            p.per_s(),
            ratio(t.per_s(), p.per_s()),
            per_conn(t),
            per_conn(p),
            ratio(per_conn(t), per_conn(p)),
            per_conn(t) - per_conn(p),
            per_conn(t),
            1e6 / per_conn(t).max(1e-9),
            lg_per_conn(t),
            lg_per_conn(p)
        );
    }
    // The chat of scenario 3 over TLS, alone and during bursts.
    let mut p99 = Vec::new();
    for with_bursts in [false, true] {
        let server = Server::start_tls(pinned, "s9-chat", &files);
        let a = s9_chat_args(&server, sizes, &files);
        let mut bursts = None;
        let mut tally = None;
        let me = std::process::id();
        let pid = server.pid();
        // Runnable but waiting for a CPU (schedstat): the load generator's
        // loop (this process's main thread) and the server's (its pid);
        // how busy each core was.
        let (mut lg_waited, mut srv_waited) = (0, 0);
        let mut cores = core_jiffies();
        let mut busy = String::new();
        let mut hook = |h: Hook| match h {
            Hook::Go => {
                lg_waited = run_delay_ns(me, me);
                srv_waited = run_delay_ns(pid, pid);
                cores = core_jiffies();
                if with_bursts {
                    bursts = Some(HandshakeBursts::start(
                        server.addr,
                        pid,
                        files.cert.clone(),
                        sizes.s9_burst,
                        sizes.s9_burst_every,
                    ));
                }
            }
            Hook::Done => {
                lg_waited = run_delay_ns(me, me) - lg_waited;
                srv_waited = run_delay_ns(pid, pid) - srv_waited;
                busy = cores_busy(&cores, &core_jiffies());
                tally = bursts.take().map(HandshakeBursts::stop);
            }
        };
        let s = loadgen::run(&a, &loadgen::embedded_shard_command, &mut hook)
            .unwrap_or_else(|e| panic!("loadgen: {e}"));
        let what = if with_bursts {
            format!(
                "with a burst of {} new TLS ws connections every {} s",
                sizes.s9_burst, sizes.s9_burst_every
            )
        } else {
            "alone".to_string()
        };
        println!(
            "fanout 9 (chat, TLS): {} ws clients in {} rooms of 10, each 1 msg/s, {} s, {what}: \
             {}; waited for a CPU: the server's loop {:.0} ms, the load generator's {:.0} ms; \
             cores busy (every process on the machine counted): {busy}",
            s.connected,
            a.rooms,
            a.seconds,
            s.describe(),
            srv_waited as f64 / 1e6,
            lg_waited as f64 / 1e6
        );
        if let Some((t, policy)) = &tally {
            println!(
                "  bursts ({policy}): {} rounds: {} (the server's CPU here is its whole CPU while \
                 a burst connected, the chat's share included)",
                t.rounds,
                t.describe()
            );
            if !sizes.full {
                assert!(
                    t.rounds > 0
                        && t.failed == 0
                        && t.welcomed == u64::from(t.rounds * sizes.s9_burst),
                    "scenario 9: burst connections failed: {}",
                    t.describe()
                );
            }
        }
        println!("{}", loop_stats(server.addr));
        check(sizes, "scenario 9 (chat)", &s);
        p99.push(s.latency_ms.p99);
    }
    if let [alone, busy] = p99[..] {
        println!(
            "fanout 9 (chat, TLS): chatting p99 {busy:.2} ms during bursts of {} new TLS \
             connections vs {alone:.2} ms alone = {:.2}x",
            sizes.s9_burst,
            busy / alone.max(1e-9)
        );
    }
}

/// Scenario 10's configurations, measured one after the other with the
/// same clients and the same pinning (none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sharing {
    /// One natter process on its SQLite file: the baseline.
    Sqlite,
    /// One natter process with `--redis`: the cost of the Redis hop.
    OneOnRedis,
    /// Two natter processes on one Redis, the clients split evenly between
    /// them, senders on both.
    TwoOnRedis,
}

impl Sharing {
    const ALL: [Sharing; 3] = [Sharing::Sqlite, Sharing::OneOnRedis, Sharing::TwoOnRedis];

    fn name(self) -> &'static str {
        match self {
            Sharing::Sqlite => "(a) 1 natter, SQLite",
            Sharing::OneOnRedis => "(b) 1 natter, Redis",
            Sharing::TwoOnRedis => "(c) 2 natter, 1 Redis",
        }
    }
}

/// The processes of one configuration: its natter processes (stopped
/// first) and its redis-server, if any, each started fresh for one run.
struct Chat {
    servers: Vec<Server>,
    redis: Option<loadgen::RedisServer>,
}

impl Chat {
    fn start(how: Sharing, tag: &str) -> Chat {
        let redis = (how != Sharing::Sqlite).then(|| {
            loadgen::RedisServer::start(&std::env::temp_dir(), &[])
                .unwrap_or_else(|e| panic!("scenario 10: {e}"))
        });
        let n = if how == Sharing::TwoOnRedis { 2 } else { 1 };
        let extra: Vec<String> = redis
            .as_ref()
            .map(|r| vec!["--redis".to_string(), r.url()])
            .unwrap_or_default();
        let servers = (0..n)
            .map(|i| {
                let s = Server::start_full(None, &format!("{tag}-{i}"), None, &extra);
                if redis.is_some() {
                    assert!(
                        loadgen::wait_healthy(s.addr, Duration::from_secs(15)),
                        "scenario 10: natter --redis at {} never answered /healthz 200",
                        s.addr
                    );
                }
                s
            })
            .collect();
        Chat { servers, redis }
    }

    /// The load generator's arguments: its clients spread over every
    /// natter process (each room's members evenly, `--also-addr`).
    fn args(&self, proto: Proto, clients: u32, rooms: u32) -> Args {
        let mut a = args(self.servers[0].addr, proto, clients, rooms);
        a.also_addr = self.servers[1..].iter().map(|s| s.addr).collect();
        a
    }

    /// Every process measured: the natter processes, then redis-server.
    fn procs(&self) -> Vec<(String, u32)> {
        let many = self.servers.len() > 1;
        let mut v: Vec<(String, u32)> = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = if many {
                    format!("natter {}", char::from(b'A' + i as u8))
                } else {
                    "natter".to_string()
                };
                (name, s.pid())
            })
            .collect();
        if let Some(r) = &self.redis {
            v.push(("redis-server".to_string(), r.pid()));
        }
        v
    }

    /// `EVALSHA` (the publish script) calls and microseconds in Redis.
    fn evalsha(&self) -> (u64, u64) {
        self.redis
            .as_ref()
            .map_or((0, 0), |r| r.command_stats("evalsha"))
    }

    /// Each process's own figures (`/api/stats`), and Redis's memory.
    fn stats(&self) -> String {
        let mut out = Vec::new();
        for (i, s) in self.servers.iter().enumerate() {
            let mut line = loop_stats(s.addr);
            if let Some(r) = api_stats(s.addr).and_then(|v| v.get("redis").cloned()) {
                if !r.is_null() {
                    line.push_str(&format!("; redis {r}"));
                }
            }
            if self.servers.len() > 1 {
                line = line.replacen(
                    "  server loop:",
                    &format!("  natter {} loop:", char::from(b'A' + i as u8)),
                    1,
                );
            }
            out.push(line);
        }
        if let Some(r) = &self.redis {
            out.push(format!(
                "  redis-server: used_memory {:.1} MiB",
                r.used_memory() as f64 / 1048576.0
            ));
        }
        out.join("\n")
    }
}

/// What one run of scenario 10 came to, beyond the load generator's
/// summary: how busy each core was, and Redis's time in the publish script.
struct S10Run {
    s: Summary,
    cores: String,
    /// Cores' worth of CPU the whole machine used from `Go` to `Done`
    /// (`/proc/stat`: every process, ours or not, and the kernel's).
    machine: f64,
    /// Seconds from `Go` to `Done`.
    wall_s: f64,
    evalsha: (u64, u64),
}

impl S10Run {
    /// Cores' worth of CPU our processes used: every process measured and
    /// the load generator (all its shards).
    fn ours(&self) -> f64 {
        let procs: f64 = self.s.processes.iter().map(|p| p.usage.cpu_s).sum();
        (procs + self.s.loadgen_cpu_s) / self.wall_s.max(1e-9)
    }

    /// The figures that say what bounds the run.
    fn bound(&self) -> String {
        s10_bound(
            &self.s,
            self.wall_s,
            &self.cores,
            self.machine,
            self.ours(),
            self.evalsha,
        )
    }
}

/// What bounds a run: the busiest process, each core, the load generator,
/// what the rest of the machine used meanwhile (another user's work shows
/// here), and Redis's time in the publish script.
fn s10_bound(
    s: &Summary,
    wall_s: f64,
    cores: &str,
    machine: f64,
    ours: f64,
    evalsha: (u64, u64),
) -> String {
    let busiest = s
        .processes
        .iter()
        .max_by(|a, b| a.busy.total_cmp(&b.busy))
        .map_or(String::new(), |p| {
            format!("busiest: {} at {:.0}% of a core; ", p.name, p.busy * 100.0)
        });
    let (calls, usec) = evalsha;
    let script = if calls > 0 {
        format!(
            "; Redis ran the publish script {calls} times, {:.1} us each (its own clock)",
            usec as f64 / calls as f64
        )
    } else {
        String::new()
    };
    format!(
        "{busiest}load generator {:.0}% of a core; cores busy: {cores} = {:.2} cores' worth, of \
         which ours {:.2}, the rest of the machine {:.2}{script}",
        s.loadgen_cpu_s / wall_s.max(1e-9) * 100.0,
        machine,
        ours,
        (machine - ours).max(0.0)
    )
}

/// Cores' worth busy between two `core_jiffies` readings.
fn cores_worth(before: &[(u64, u64)], after: &[(u64, u64)]) -> f64 {
    before
        .iter()
        .zip(after)
        .map(|(b, a)| (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64)
        .sum()
}

/// One run of scenario 10: the clients of `a` against `chat`, every process
/// of it measured from `Go` to `Done`.
fn s10_run(chat: &Chat, a: &Args) -> S10Run {
    let mut probe = GroupProbe::new(&chat.procs());
    let mut cores = core_jiffies();
    let (mut busy, mut machine) = (String::new(), 0.0);
    let (mut ev0, mut ev1) = ((0, 0), (0, 0));
    let mut hook = |h: Hook| {
        probe.hook(h);
        match h {
            Hook::Go => {
                cores = core_jiffies();
                ev0 = chat.evalsha();
            }
            Hook::Done => {
                let now = core_jiffies();
                busy = cores_busy(&cores, &now);
                machine = cores_worth(&cores, &now);
                ev1 = chat.evalsha();
            }
        }
    };
    let mut s = loadgen::run(a, &loadgen::embedded_shard_command, &mut hook)
        .unwrap_or_else(|e| panic!("loadgen: {e}"));
    probe.finish(&mut s);
    S10Run {
        s,
        cores: busy,
        machine,
        wall_s: probe.wall_s(),
        evalsha: (ev1.0 - ev0.0, ev1.1 - ev0.1),
    }
}

/// CPU seconds per million deliveries, every process measured.
fn cpu_per_m(s: &Summary) -> f64 {
    s.server
        .as_ref()
        .map_or(0.0, |u| u.cpu_s_per_million_deliveries)
}

/// `x` against the baseline's, as `1.23x`.
fn vs(x: f64, base: f64) -> String {
    ratio(x, base)
}

/// (10) Several processes through Redis: scenarios 1 (WebSocket), 2 and 3
/// on (a) one natter on SQLite, (b) one natter with `--redis`, (c) two
/// natter processes on one Redis with the clients split between them;
/// nothing pinned (see `main`). Not in the smoke run: it needs
/// redis-server and takes about 4 minutes.
fn scenario_10(sizes: &Sizes) {
    // Scenario 1's shape, WebSocket (its own echo shows the sender's side).
    let mut s1: Vec<(Sharing, S10Run)> = Vec::new();
    for how in Sharing::ALL {
        let chat = Chat::start(how, "s10-1");
        let mut a = chat.args(Proto::Ws, sizes.s1_clients, 1);
        a.senders = sizes.s1_senders;
        a.rate = 5.0;
        a.seconds = sizes.s1_seconds;
        let r = s10_run(&chat, &a);
        println!(
            "fanout 10 (1, {}): {} ws clients in 1 room, {} senders x 5 msg/s, {} s, connected \
             in {:.1} s: {}",
            how.name(),
            r.s.connected,
            a.senders,
            a.seconds,
            r.s.connect_s,
            r.s.describe()
        );
        println!("  bound: {}", r.bound());
        println!("{}", chat.stats());
        s1.push((how, r));
    }
    // Scenario 2's ladder.
    let mut s2: Vec<(Sharing, Ladder)> = Vec::new();
    for how in Sharing::ALL {
        let chat = Chat::start(how, "s10-2");
        let a = chat.args(Proto::Line, sizes.s2_clients, 1);
        let label = format!("fanout 10 (2, {})", how.name());
        let ladder = rate_ladder(sizes, &chat.procs(), &a, &sizes.s2_rates, &label);
        match &ladder.best {
            Some((total, s)) => println!(
                "{label}: {} line clients in 1 room, rising rates {:?} msg/s: highest that held \
                 (p99 < {P99_LIMIT_MS} ms, all delivered once in order): {total} msg/s = {}",
                sizes.s2_clients,
                ladder.tried,
                s.describe()
            ),
            None => println!("{label}: no rate held"),
        }
        println!("{}", chat.stats());
        s2.push((how, ladder));
    }
    // Scenario 3's shape.
    let mut s3: Vec<(Sharing, S10Run)> = Vec::new();
    for how in Sharing::ALL {
        let chat = Chat::start(how, "s10-3");
        let mut a = chat.args(Proto::Ws, sizes.s3_clients, sizes.s3_rooms);
        a.senders = sizes.s3_clients;
        a.rate = 1.0;
        a.seconds = sizes.s3_seconds;
        let r = s10_run(&chat, &a);
        println!(
            "fanout 10 (3, {}): {} ws clients in {} rooms of {}, each sending 1 msg/s, {} s, \
             connected in {:.1} s: {}",
            how.name(),
            r.s.connected,
            a.rooms,
            a.clients / a.rooms,
            a.seconds,
            r.s.connect_s,
            r.s.describe()
        );
        println!("  bound: {}", r.bound());
        println!("{}", chat.stats());
        s3.push((how, r));
    }
    // The ratios against (a), in one table.
    println!("fanout 10: against (a), same run");
    println!(
        "| shape | configuration | deliveries/s | p50 ms | p99 ms | p99 same / other process \
         ms | CPU s per M deliveries (all natter + redis) | busiest process |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (shape, runs) in [("1 (ws)", &s1), ("3", &s3)] {
        let base = &runs[0].1.s;
        for (how, r) in runs.iter() {
            let s = &r.s;
            let split = match (&s.latency_same_ms, &s.latency_other_ms) {
                (Some(a), Some(b)) => format!("{:.2} / {:.2}", a.p99, b.p99),
                _ => "-".to_string(),
            };
            let busiest = s
                .processes
                .iter()
                .max_by(|a, b| a.busy.total_cmp(&b.busy))
                .map_or(String::new(), |p| {
                    format!("{} {:.0}%", p.name, p.busy * 100.0)
                });
            println!(
                "| {shape} | {} | {} ({}) | {:.2} ({}) | {:.2} ({}) | {split} | {:.2} ({}) | \
                 {busiest} |{}",
                how.name(),
                loadgen::si(s.deliveries_per_sec),
                vs(s.deliveries_per_sec, base.deliveries_per_sec),
                s.latency_ms.p50,
                vs(s.latency_ms.p50, base.latency_ms.p50),
                s.latency_ms.p99,
                vs(s.latency_ms.p99, base.latency_ms.p99),
                cpu_per_m(s),
                vs(cpu_per_m(s), cpu_per_m(base)),
                if s.passed() { "" } else { " FAILED" }
            );
        }
    }
    let best = |l: &Ladder| l.best.as_ref().map(|(r, s)| (*r, s.clone()));
    let base = best(&s2[0].1);
    let base_dps = base.as_ref().map_or(0.0, |(_, s)| s.deliveries_per_sec);
    for (how, l) in &s2 {
        match best(l) {
            Some((rate, s)) => println!(
                "| 2 (highest rate held) | {} | {rate} msg/s = {} ({}) | {:.2} | {:.2} | {} | {:.2} \
                 | {} |",
                how.name(),
                loadgen::si(s.deliveries_per_sec),
                vs(s.deliveries_per_sec, base_dps),
                s.latency_ms.p50,
                s.latency_ms.p99,
                match (&s.latency_same_ms, &s.latency_other_ms) {
                    (Some(a), Some(b)) => format!("{:.2} / {:.2}", a.p99, b.p99),
                    _ => "-".to_string(),
                },
                cpu_per_m(&s),
                s.processes
                    .iter()
                    .max_by(|a, b| a.busy.total_cmp(&b.busy))
                    .map_or(String::new(), |p| format!("{} {:.0}%", p.name, p.busy * 100.0)),
            ),
            None => println!("| 2 | {} | no rate held | | | | | |", how.name()),
        }
    }
    // The same load on all three: the highest ladder rate every one held.
    let held = |l: &Ladder, r: f64| {
        l.steps
            .iter()
            .find(|(rate, s)| *rate == r && s.passed() && s.latency_ms.p99 < P99_LIMIT_MS)
            .map(|(_, s)| s.clone())
    };
    let common = sizes.s2_rates.iter().rev().find_map(|&r| {
        let all: Option<Vec<Summary>> = s2.iter().map(|(_, l)| held(l, r)).collect();
        Some((r, all?))
    });
    if let Some((r, all)) = common {
        for ((how, _), s) in s2.iter().zip(&all) {
            println!(
                "| 2 at {r} msg/s (all held it) | {} | {} | {:.2} ({}) | {:.2} ({}) | | {:.2} ({}) \
                 | |",
                how.name(),
                loadgen::si(s.deliveries_per_sec),
                s.latency_ms.p50,
                vs(s.latency_ms.p50, all[0].latency_ms.p50),
                s.latency_ms.p99,
                vs(s.latency_ms.p99, all[0].latency_ms.p99),
                cpu_per_m(s),
                vs(cpu_per_m(s), cpu_per_m(&all[0]))
            );
        }
    }
}

/// Lets this process (every thread, and the shards it starts later) run on
/// every core again; whether `taskset` could.
fn unpin_self() -> bool {
    // Every core online (not `available_parallelism`, which says how many
    // this process may use now).
    let all = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_or_else(|_| "0-1".to_string(), |s| s.trim().to_string());
    Command::new("taskset")
        .args(["-a", "-c", "-p", &all, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Line => "line",
        Proto::Ws => "ws",
        Proto::Mixed => "mixed",
    }
}

fn main() {
    loadgen::run_if_embedded_shard();
    let argv: Vec<String> = std::env::args().collect();
    let full = argv.iter().any(|a| a == "--bench");
    let sizes = if full { Sizes::full() } else { Sizes::smoke() };
    let pinned = full && loadgen::pin_to_core_1();
    if full {
        println!(
            "fanout: natter {} (store {}) on core 0, load generator on core 1 ({}); \
             open-file limit {}",
            natter_bin(),
            if in_memory() { ":memory:" } else { "a file" },
            if pinned {
                "pinned"
            } else {
                "NOT pinned: no taskset"
            },
            loadgen::open_file_limit()
        );
    }
    // `cargo bench --bench fanout -- 1 3` runs scenarios 1 and 3 only.
    let only: Vec<u32> = argv[1..].iter().filter_map(|a| a.parse().ok()).collect();
    let want = |n: u32| only.is_empty() || only.contains(&n);
    let started = Instant::now();
    // NATTER_BENCH_DATA=DIR: scenarios 1-3's latencies and ladder in
    // DIR/fanout.json (the schema: `loadgen::bench_data_dir`).
    let data = loadgen::bench_data_dir().map(|dir| (dir, loadgen::bench_meta("fanout")));
    let (mut runs, mut steps) = (Vec::new(), Vec::new());
    if want(1) {
        for proto in [Proto::Line, Proto::Ws] {
            let s = scenario_1(&sizes, pinned, proto);
            runs.push(loadgen::run_json("1", "natter", &s));
        }
    }
    if want(2) {
        let ladder = scenario_2(&sizes, pinned);
        for (rate, s) in &ladder.steps {
            let held = s.passed() && s.latency_ms.p99 < P99_LIMIT_MS;
            steps.push(loadgen::step_json("2", "natter", *rate, s, held));
        }
    }
    if want(3) {
        let s = scenario_3(&sizes, pinned);
        runs.push(loadgen::run_json("3", "natter", &s));
    }
    // A run of none of them (`-- 9`) leaves an earlier file alone.
    let measured = !runs.is_empty() || !steps.is_empty();
    if let Some((dir, mut doc)) = data.filter(|_| measured) {
        doc.insert("full".into(), full.into());
        doc.insert("natter_bin".into(), natter_bin().into());
        doc.insert(
            "store".into(),
            if in_memory() { ":memory:" } else { "file" }.into(),
        );
        doc.insert("pinned".into(), pinned.into());
        doc.insert("p99_limit_ms".into(), P99_LIMIT_MS.into());
        doc.insert("runs".into(), runs.into());
        doc.insert("steps".into(), steps.into());
        loadgen::write_bench_data(&dir, "fanout.json", doc);
    }
    if want(4) {
        scenario_4(&sizes, pinned);
    }
    if want(5) {
        scenario_5(&sizes, pinned);
    }
    if want(6) {
        scenario_6(&sizes, pinned);
    }
    if want(7) {
        scenario_7(&sizes, pinned);
    }
    if want(8) {
        scenario_8(&sizes, pinned);
    }
    if want(9) {
        scenario_9(&sizes, pinned);
    }
    // Scenario 10 is not part of the smoke run (`cargo test`): it needs
    // redis-server and minutes.
    if want(10) && full {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            println!("fanout 10: skipped: no redis-server on PATH (Debian's redis-server)");
        } else {
            // Two natter processes, their redis-server and the load
            // generator on two cores: nothing is pinned, in all three
            // configurations alike.
            let free = unpin_self();
            println!(
                "fanout 10: nothing pinned (natter processes, redis-server and the load \
                 generator all free on every core{})",
                if free {
                    ""
                } else {
                    "; taskset failed: the load generator is still pinned"
                }
            );
            scenario_10(&sizes);
            if pinned {
                loadgen::pin_to_core_1();
            }
        }
    }
    println!(
        "fanout: {} in {:.0} s",
        if full { "done" } else { "smoke run passed" },
        started.elapsed().as_secs_f64()
    );
}
