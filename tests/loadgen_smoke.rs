//! The load generator's accounting, against the debug binary: 30 clients
//! in 3 rooms over each protocol (and both at once), 6 senders, flood
//! control lifted. Every message must reach every other member of its room
//! exactly once and in order per sender; WebSocket senders get each of
//! their own messages back once; the delivery ratio is exactly 1.

#[path = "../examples/loadgen.rs"]
#[allow(dead_code, unreachable_pub)]
mod loadgen;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use loadgen::{Args, Proto, Summary};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(extra: &[&str]) -> (Server, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start natter");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    lines.read_line(&mut line).expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("natter listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = lines.read_to_end(&mut sink);
    });
    (Server(child), addr)
}

fn run(proto: Proto, server_args: &[&str]) -> Summary {
    let (server, addr) = start(server_args);
    let mut a = Args::new(addr, proto);
    a.clients = 30;
    a.rooms = 3;
    a.senders = 6;
    a.rate = 5.0;
    a.seconds = 2.0;
    a.drain = 10.0;
    a.procs = 1;
    a.server_pid = Some(server.0.id());
    loadgen::run(&a, &loadgen::self_command, &mut |_| {}).expect("loadgen run")
}

/// 6 senders x 10 messages, each to the 9 other members of its room.
fn assert_exact(s: &Summary, ws_senders: u64) {
    let why = format!("{}\n{}", s.line(), s.details());
    assert_eq!((s.connected, s.failed), (30, 0), "{why}");
    assert_eq!((s.planned, s.sent), (60, 60), "{why}");
    assert_eq!(s.expected, 60 * 9, "{why}");
    assert_eq!(s.received, s.expected, "{why}");
    assert_eq!(s.delivery_ratio, 1.0, "{why}");
    assert_eq!(s.echo_expected, ws_senders * 10, "{why}");
    assert_eq!(s.echo_received, s.echo_expected, "{why}");
    assert_eq!(s.latency_ms.count, s.received, "{why}");
    assert_eq!(
        (
            s.duplicates,
            s.out_of_order,
            s.gaps,
            s.missing,
            s.extra,
            s.misrouted
        ),
        (0, 0, 0, 0, 0, 0),
        "{why}"
    );
    assert_eq!(s.disconnected, 0, "{why}");
    assert!(s.errors.is_empty(), "{why}");
    assert!(s.exactly_once_in_order, "{why}");
    assert!(s.deliveries_per_sec > 0.0, "{why}");
    assert!(s.latency_ms.p50 <= s.latency_ms.p99, "{why}");
    assert!(s.latency_ms.p99 <= s.latency_ms.max, "{why}");
}

const LIFTED: &[&str] = &["--rate", "1000000", "--burst", "1000000"];

#[test]
fn line_clients_get_every_message_once_in_order() {
    assert_exact(&run(Proto::Line, LIFTED), 0);
}

#[test]
fn websocket_clients_get_every_message_once_in_order_and_their_echo() {
    assert_exact(&run(Proto::Ws, LIFTED), 6);
}

#[test]
fn line_and_websocket_clients_share_rooms() {
    // Clients 0, 2, 4 send over the line protocol, 1, 3, 5 over WebSocket.
    assert_exact(&run(Proto::Mixed, LIFTED), 3);
}

#[test]
fn flood_control_shows_up_as_missing_messages() {
    // At the server's default flood control (10 a second, bursts of 20),
    // 40 messages a second from each sender cannot all get through.
    let (server, addr) = start(&[]);
    let mut a = Args::new(addr, Proto::Line);
    a.clients = 10;
    a.rooms = 1;
    a.senders = 1;
    a.rate = 40.0;
    a.seconds = 2.0;
    a.drain = 1.0;
    a.procs = 1;
    let s = loadgen::run(&a, &loadgen::self_command, &mut |_| {}).expect("loadgen run");
    drop(server);
    assert_eq!(s.sent, 80, "{}", s.line());
    assert!(s.delivery_ratio < 1.0, "{}", s.line());
    assert!(s.missing > 0, "{}", s.line());
    assert!(!s.exactly_once_in_order, "{}", s.line());
    assert!(s.errors.contains_key("rate_limited"), "{:?}", s.errors);
}

#[test]
fn histogram_quantiles_are_within_one_percent() {
    let mut h = loadgen::Hist::default();
    for v in 1..=100_000u64 {
        h.record(v * 1000);
    }
    for (q, want) in [
        (0.5, 50_000_000.0),
        (0.9, 90_000_000.0),
        (0.99, 99_000_000.0),
    ] {
        let got = h.quantile(q) as f64;
        assert!((got - want).abs() / want < 0.01, "q{q}: {got} vs {want}");
    }
    assert_eq!(h.quantile(1.0), 100_000_000);
    assert_eq!(h.count(), 100_000);
}

/// Overload is not slowness: 300 WebSocket clients in one room, every one
/// sending, 9,000 messages a second in all (2.7 M deliveries a second, far
/// more than this debug server and the load generator's readers can carry)
/// with a small `--max-outbound`. The server slows the senders (it stops
/// reading their input while readers are behind, and TCP pushes back), and
/// drops nobody: every message still reaches every member, in order.
#[test]
fn senders_that_outpace_every_reader_are_slowed_not_the_readers_dropped() {
    let (server, addr) = start(&[
        "--rate",
        "1000000",
        "--burst",
        "1000000",
        "--max-outbound",
        "65536",
    ]);
    let mut a = Args::new(addr, Proto::Ws);
    a.clients = 300;
    a.rooms = 1;
    a.senders = 300;
    a.rate = 30.0;
    a.seconds = 2.0;
    a.drain = 120.0;
    a.procs = 1;
    a.server_pid = Some(server.0.id());
    let s = loadgen::run(&a, &loadgen::self_command, &mut |_| {}).expect("loadgen run");
    let why = format!("{}\n{}", s.line(), s.details());
    assert_eq!((s.connected, s.failed), (300, 0), "{why}");
    assert_eq!(s.disconnected, 0, "{why}");
    assert!(s.closes.is_empty(), "{why}");
    assert_eq!(s.sent, s.planned, "{why}");
    assert_eq!(s.received, s.expected, "{why}");
    assert!(s.exactly_once_in_order, "{why}");
    let stats = stats(addr);
    assert!(
        stats["output"]["dropped"]
            .as_object()
            .is_some_and(|d| d.is_empty()),
        "{stats}"
    );
    eprintln!("overload: {}\noutput: {}", s.line(), stats["output"]);
}

/// `GET /api/stats`, by hand (this file has no HTTP client).
fn stats(addr: SocketAddr) -> serde_json::Value {
    use std::io::Write;
    let mut c = std::net::TcpStream::connect(addr).expect("connect");
    c.write_all(b"GET /api/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut body = String::new();
    c.read_to_string(&mut body).expect("response");
    let json = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Two natter processes sharing one Redis (`--redis`), the clients split
/// between them (`--also-addr`): every message still reaches every other
/// member of its room once, in order, and the latency is counted apart
/// for receivers on the sender's process and on the other one. Client g is
/// in room g % 3 on process (g / 3) % 2, so each room of 10 has 5 members
/// on each; senders 0-2 are on the first process, 3-5 on the second, and
/// each message reaches 4 members on its sender's process and 5 on the
/// other.
#[test]
fn two_processes_on_one_redis_split_the_clients_and_the_latency() {
    let redis =
        loadgen::RedisServer::start(&std::env::temp_dir(), &[]).expect("redis-server running");
    let url = redis.url();
    let extra = [&["--redis", url.as_str()], LIFTED].concat();
    let (first, addr_a) = start(&extra);
    let (second, addr_b) = start(&extra);
    for addr in [addr_a, addr_b] {
        assert!(
            loadgen::wait_healthy(addr, std::time::Duration::from_secs(10)),
            "natter --redis at {addr} never became healthy"
        );
    }
    let mut a = Args::new(addr_a, Proto::Ws);
    a.also_addr = vec![addr_b];
    a.clients = 30;
    a.rooms = 3;
    a.senders = 6;
    a.rate = 5.0;
    a.seconds = 2.0;
    a.drain = 10.0;
    a.procs = 1;
    let s = loadgen::run(&a, &loadgen::self_command, &mut |_| {}).expect("loadgen run");
    drop((first, second));
    assert_exact(&s, 6);
    let why = format!("{}\n{}", s.line(), s.details());
    let same = s
        .latency_same_ms
        .clone()
        .expect("latency on the sender's process");
    let other = s
        .latency_other_ms
        .clone()
        .expect("latency on the other process");
    assert_eq!((same.count, other.count), (60 * 4, 60 * 5), "{why}");
}
