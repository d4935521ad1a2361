//! natter against a plain broadcast server on Node's `ws` package
//! (`bench/ws-server.js`), the same scenarios, the same load generator
//! (`examples/loadgen.rs`, included as a module), in one session; one line
//! per scenario per server, then natter/ws ratios.
//!
//! ```sh
//! make bench-compare        # npm ci in bench/, then this in release
//! cargo run --release --example bench_compare -- 1 sat   # only some scenarios
//! ```
//!
//! `NATTER_BENCH_DATA=DIR` also writes every run's latency distribution
//! and each step of both ladders to `DIR/compare-ws.json`, for
//! `examples/plots.rs` (the schema: `bench_data_dir` in
//! `examples/loadgen.rs`). Without it nothing is written.
//!
//! Both servers run pinned to core 0 (`taskset -c 0`), this process (which
//! drives every client from one mio loop) to core 1. natter is
//! `target/release/natter` (`--natter PATH` to change) with
//! `--rate 1000000 --burst 1000000` and a fresh SQLite file: it commits
//! every message before sending it. The ws server stores nothing.
//!
//! Scenarios (all WebSocket clients, since the ws server speaks no line
//! protocol):
//!
//! - 1: 1000 clients in one room, 20 senders x 5 msg/s, 10 s.
//! - 3: 5000 clients in 500 rooms of 10, each sending 1 msg/s, 10 s.
//! - 4: 10,000 idle clients (rooms of 10): server RSS per connection.
//! - sat: 1000 clients in one room, 50 senders, rising total rates (50 to
//!   8000 msg/s, then one step between the last that held and the first that
//!   did not) on the
//!   same connections: the highest whose p99 stays under 250 ms with every
//!   message delivered exactly once, in order.

#[path = "loadgen.rs"]
#[allow(dead_code, unreachable_pub)]
mod loadgen;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::{Args, Hook, PhaseSpec, Proto, ServerProbe, Session, Summary};

const P99_LIMIT_MS: f64 = 250.0;
const SAT_SENDERS: u32 = 50;
const SAT_RATES: [f64; 8] = [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0];
const SAT_SECONDS: f64 = 2.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Natter,
    Ws,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Natter => "natter",
            Kind::Ws => "ws",
        }
    }
}

struct Server {
    child: Child,
    addr: SocketAddr,
    db: Option<PathBuf>,
}

impl Server {
    fn start(kind: Kind, cfg: &Config) -> Server {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]);
        let mut db = None;
        let prefix = match kind {
            Kind::Natter => {
                let p = std::env::temp_dir().join(format!(
                    "natter-compare-{}-{}.db",
                    std::process::id(),
                    loadgen::random_u32()
                ));
                cmd.arg(&cfg.natter)
                    .args(["--listen", "127.0.0.1:0", "--rate", "1000000"])
                    .args(["--burst", "1000000", "--db"])
                    .arg(&p);
                db = Some(p);
                "natter listening on "
            }
            Kind::Ws => {
                cmd.arg(&cfg.node)
                    .arg(&cfg.ws_server)
                    .args(["--host", "127.0.0.1", "--port", "0"]);
                "ws listening on "
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
        let addr = loadgen::listening_addr(&mut child, prefix);
        Server { child, addr, db }
    }

    /// The server's own PID: taskset execs it, so the child's.
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_kb(&self) -> u64 {
        loadgen::rss_kb(self.pid()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = &self.db {
            for ext in ["", "-wal", "-shm"] {
                let mut p = db.clone().into_os_string();
                p.push(ext);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

struct Config {
    natter: PathBuf,
    node: String,
    ws_server: PathBuf,
}

/// What one scenario measured on one server.
#[derive(Default, Clone)]
struct Figures {
    deliveries_per_sec: f64,
    p99_ms: f64,
    cpu_per_m: f64,
    rss_per_conn: f64,
    /// Clients connected (scenario 5).
    connected: f64,
    ok: bool,
    /// The run itself (scenarios 1, 3, 5), for `NATTER_BENCH_DATA`.
    summary: Option<Summary>,
    /// The ladder's steps in the order run: offered msg/s, the step, held.
    steps: Vec<(f64, Summary, bool)>,
}

impl Figures {
    fn of(s: &Summary) -> Figures {
        Figures {
            deliveries_per_sec: s.deliveries_per_sec,
            p99_ms: s.latency_ms.p99,
            cpu_per_m: s
                .server
                .as_ref()
                .map_or(0.0, |u| u.cpu_s_per_million_deliveries),
            rss_per_conn: 0.0,
            connected: s.connected as f64,
            ok: s.passed(),
            summary: Some(s.clone()),
            steps: Vec::new(),
        }
    }
}

fn args(addr: SocketAddr, clients: u32, rooms: u32) -> Args {
    let mut a = Args::new(addr, Proto::Ws);
    a.clients = clients;
    a.rooms = rooms;
    a.drain = 10.0;
    a
}

fn measure(server: &Server, a: &mut Args) -> Summary {
    loadgen::run_measured(a, server.pid())
}

fn scenario_1(kind: Kind, cfg: &Config) -> Figures {
    let server = Server::start(kind, cfg);
    let mut a = args(server.addr, 1000, 1);
    a.senders = 20;
    a.rate = 5.0;
    a.seconds = 10.0;
    let s = measure(&server, &mut a);
    println!(
        "compare 1 [{}]: {} ws clients in 1 room, 20 senders x 5 msg/s, 10 s, connected in {:.1} s: {}",
        kind.name(),
        s.connected,
        s.connect_s,
        s.describe()
    );
    Figures::of(&s)
}

fn scenario_3(kind: Kind, cfg: &Config) -> Figures {
    let server = Server::start(kind, cfg);
    let mut a = args(server.addr, 5000, 500);
    a.senders = 5000;
    a.rate = 1.0;
    a.seconds = 10.0;
    let s = measure(&server, &mut a);
    println!(
        "compare 3 [{}]: {} ws clients in 500 rooms of 10, each sending 1 msg/s, 10 s, \
         connected in {:.1} s, {} echoes: {}",
        kind.name(),
        s.connected,
        s.connect_s,
        s.echo_received,
        s.describe()
    );
    Figures::of(&s)
}

fn scenario_4(kind: Kind, cfg: &Config) -> Figures {
    let server = Server::start(kind, cfg);
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss_kb();
    let mut a = args(server.addr, 10_000, 1000);
    a.senders = 0;
    a.seconds = 3.0;
    let s = measure(&server, &mut a);
    let srv = s.server.clone().unwrap_or_default();
    let per_conn =
        srv.rss_kb_at_go.saturating_sub(before) as f64 * 1024.0 / s.connected.max(1) as f64;
    println!(
        "compare 4 [{}]: {} idle ws clients (rooms of 10), connected in {:.1} s: server RSS \
         {:.1} MiB before, {:.1} MiB with them = {:.0} bytes per connection; {:.2} CPU s idle for {} s{}",
        kind.name(),
        s.connected,
        s.connect_s,
        before as f64 / 1024.0,
        srv.rss_kb_at_go as f64 / 1024.0,
        per_conn,
        srv.cpu_s,
        a.seconds,
        if s.failed > 0 {
            format!("; {} FAILED to connect", s.failed)
        } else {
            String::new()
        }
    );
    Figures {
        rss_per_conn: per_conn,
        ok: s.failed == 0,
        ..Figures::default()
    }
}

/// As many connections as the open-file limit allows (less 128 for the
/// server's own files, natter's default cap), from two load generator
/// processes; one sender per room of 10 at 1 msg/s.
fn scenario_5(kind: Kind, cfg: &Config) -> Figures {
    let server = Server::start(kind, cfg);
    std::thread::sleep(Duration::from_millis(300));
    let before = server.rss_kb();
    let n = u32::try_from(loadgen::open_file_limit().saturating_sub(128)).unwrap_or(u32::MAX);
    let mut a = args(server.addr, n, n.div_ceil(10));
    a.procs = 2;
    a.senders = a.rooms;
    a.rate = 1.0;
    a.seconds = 10.0;
    a.connect_timeout = 300.0;
    let s = measure(&server, &mut a);
    let rss = s.server.as_ref().map_or(0, |u| u.rss_kb_at_done);
    let per_conn = rss.saturating_sub(before) as f64 * 1024.0 / s.connected.max(1) as f64;
    println!(
        "compare 5 [{}]: {}/{n} ws clients from {} processes, connected in {:.1} s, {} rooms with \
         1 sender at 1 msg/s, 10 s: RSS {:.1} MiB ({per_conn:.0} bytes per connection); {}",
        kind.name(),
        s.connected,
        s.procs,
        s.connect_s,
        a.rooms,
        rss as f64 / 1024.0,
        s.describe()
    );
    Figures {
        rss_per_conn: per_conn,
        ..Figures::of(&s)
    }
}

fn saturation(kind: Kind, cfg: &Config) -> Figures {
    let server = Server::start(kind, cfg);
    let a = args(server.addr, 1000, 1);
    let mut session =
        Session::connect(&a, 0, 1, loadgen::random_u32()).unwrap_or_else(|e| panic!("{e}"));
    let run_step = |session: &mut Session, total: f64| -> Summary {
        let spec = PhaseSpec {
            senders: SAT_SENDERS,
            rate: total / f64::from(SAT_SENDERS),
            seconds: SAT_SECONDS,
            payload: a.payload,
            drain: 5.0,
        };
        let mut probe = ServerProbe::new(server.pid());
        let st = session.phase(&spec, &mut |h: Hook| probe.hook(h));
        let mut s = Summary::new(Proto::Ws, 1, 1, &spec, &st);
        s.server = Some(probe.finish(&st));
        s
    };
    let held = |s: &Summary| s.passed() && s.latency_ms.p99 < P99_LIMIT_MS;
    let mut best: Option<(f64, Summary)> = None;
    let mut first_fail: Option<(f64, Summary)> = None;
    let mut steps = Vec::new();
    for total in SAT_RATES {
        let s = run_step(&mut session, total);
        println!(
            "  sat step [{}]: {total} msg/s total ({SAT_SENDERS} senders): {}",
            kind.name(),
            s.describe()
        );
        steps.push((total, s.clone(), held(&s)));
        if held(&s) {
            best = Some((total, s));
        } else {
            first_fail = Some((total, s));
            break;
        }
    }
    if let (Some((lo, _)), Some((hi, _))) = (&best, &first_fail) {
        let mid = ((lo * hi).sqrt() / 10.0).round() * 10.0;
        if session.connected() == 1000 && mid > *lo && mid < *hi {
            let s = run_step(&mut session, mid);
            println!(
                "  sat step [{}]: {mid} msg/s total ({SAT_SENDERS} senders): {}",
                kind.name(),
                s.describe()
            );
            steps.push((mid, s.clone(), held(&s)));
            if held(&s) {
                best = Some((mid, s));
            }
        }
    }
    session.close();
    match best {
        Some((total, s)) => {
            println!(
                "compare sat [{}]: 1000 ws clients in 1 room, highest rate that held (p99 < \
                 {P99_LIMIT_MS} ms, all delivered once in order){}: {total} msg/s = {}",
                kind.name(),
                if first_fail.is_none() {
                    " (the top step: the limit lies higher)"
                } else {
                    ""
                },
                s.describe()
            );
            Figures {
                summary: None,
                steps,
                ..Figures::of(&s)
            }
        }
        None => {
            println!(
                "compare sat [{}]: 1000 ws clients in 1 room: no rate held",
                kind.name()
            );
            Figures {
                steps,
                ..Figures::default()
            }
        }
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "n/a".to_string()
    }
}

fn main() {
    loadgen::run_if_embedded_shard();
    let argv: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut cfg = Config {
        natter: root.join("target/release/natter"),
        node: "node".to_string(),
        ws_server: root.join("bench/ws-server.js"),
    };
    let mut only: Vec<String> = Vec::new();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--natter" => cfg.natter = it.next().expect("--natter PATH").into(),
            "--node" => cfg.node = it.next().expect("--node PATH").clone(),
            "--bench" => {}
            other => only.push(other.to_string()),
        }
    }
    let want = |n: &str| only.is_empty() || only.iter().any(|o| o == n);
    let pinned = loadgen::pin_to_core_1();
    let node_version = Command::new(&cfg.node)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let ws_version = std::fs::read_to_string(root.join("bench/node_modules/ws/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string))
        .unwrap_or_else(|| "? (run npm ci in bench/)".into());
    println!(
        "bench-compare: natter {} vs Node {node_version} ws {ws_version} ({}), each on core 0, \
         load generator on core 1 ({}); open-file limit {}",
        cfg.natter.display(),
        cfg.ws_server.display(),
        if pinned {
            "pinned"
        } else {
            "NOT pinned: no taskset"
        },
        loadgen::open_file_limit()
    );
    println!(
        "bench-compare: natter commits every message to SQLite before sending it; the ws \
         server stores nothing (no history, no presence, no flood control)"
    );
    let started = Instant::now();
    // NATTER_BENCH_DATA=DIR: every run's latency and the ladders' steps in
    // DIR/compare-ws.json (the schema: `loadgen::bench_data_dir`).
    let data = loadgen::bench_data_dir().map(|dir| (dir, loadgen::bench_meta("bench_compare")));
    let kinds = [Kind::Natter, Kind::Ws];
    let mut rows: Vec<(&str, &str, [Figures; 2])> = Vec::new();
    type Scenario = fn(Kind, &Config) -> Figures;
    let scenarios: [(&str, &str, Scenario); 5] = [
        ("1", "1 (1000 in 1 room, 100 msg/s)", scenario_1),
        ("3", "3 (5000 in 500 rooms, 5000 msg/s)", scenario_3),
        ("4", "4 (10,000 idle)", scenario_4),
        ("5", "5 (the open-file limit's worth)", scenario_5),
        ("sat", "sat (1000 in 1 room, highest rate)", saturation),
    ];
    for (key, label, f) in scenarios {
        if !want(key) {
            continue;
        }
        let figs = kinds.map(|k| f(k, &cfg));
        rows.push((key, label, figs));
    }
    println!("bench-compare: natter/ws ratios (deliveries/s: higher is better for natter; p99, CPU, RSS: lower is)");
    for (_, label, [n, w]) in &rows {
        let flag = if n.ok && w.ok {
            ""
        } else {
            " [a run FAILED: see above]"
        };
        if label.starts_with('5') {
            println!(
                "  ratio {label}: connected {:.0} / {:.0} = {}; RSS per connection {:.0} / {:.0} B \
                 = {}; p99 {:.2} / {:.2} ms = {}; CPU s per M deliveries {:.2} / {:.2} = {}{flag}",
                n.connected,
                w.connected,
                ratio(n.connected, w.connected),
                n.rss_per_conn,
                w.rss_per_conn,
                ratio(n.rss_per_conn, w.rss_per_conn),
                n.p99_ms,
                w.p99_ms,
                ratio(n.p99_ms, w.p99_ms),
                n.cpu_per_m,
                w.cpu_per_m,
                ratio(n.cpu_per_m, w.cpu_per_m)
            );
        } else if label.starts_with('4') {
            println!(
                "  ratio {label}: RSS per connection {:.0} / {:.0} B = {}{flag}",
                n.rss_per_conn,
                w.rss_per_conn,
                ratio(n.rss_per_conn, w.rss_per_conn)
            );
        } else {
            println!(
                "  ratio {label}: deliveries/s {} / {} = {}; p99 {:.2} / {:.2} ms = {}; \
                 CPU s per M deliveries {:.2} / {:.2} = {}{flag}",
                loadgen::si(n.deliveries_per_sec),
                loadgen::si(w.deliveries_per_sec),
                ratio(n.deliveries_per_sec, w.deliveries_per_sec),
                n.p99_ms,
                w.p99_ms,
                ratio(n.p99_ms, w.p99_ms),
                n.cpu_per_m,
                w.cpu_per_m,
                ratio(n.cpu_per_m, w.cpu_per_m)
            );
        }
    }
    if let Some((dir, mut doc)) = data {
        let (mut runs, mut steps) = (Vec::new(), Vec::new());
        for (key, _, figs) in &rows {
            for (kind, f) in kinds.iter().zip(figs) {
                if let Some(s) = &f.summary {
                    runs.push(loadgen::run_json(key, kind.name(), s));
                }
                for (rate, s, held) in &f.steps {
                    steps.push(loadgen::step_json(key, kind.name(), *rate, s, *held));
                }
            }
        }
        doc.insert("natter_bin".into(), cfg.natter.display().to_string().into());
        doc.insert("node".into(), node_version.into());
        doc.insert("ws".into(), ws_version.into());
        doc.insert("pinned".into(), pinned.into());
        doc.insert("p99_limit_ms".into(), P99_LIMIT_MS.into());
        doc.insert("runs".into(), runs.into());
        doc.insert("steps".into(), steps.into());
        loadgen::write_bench_data(&dir, "compare-ws.json", doc);
    }
    println!(
        "bench-compare: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}
