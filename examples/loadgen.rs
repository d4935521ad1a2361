//! A load generator for natter: N clients over the line protocol or
//! WebSocket+JSON (or both, `--proto mixed`), spread over R rooms; S of them
//! send M messages a second each. Every client parses everything it
//! receives, so the run ends with exact accounting: deliveries against the
//! expected count, exactly-once and in-order per sender, and the latency of
//! every delivery in a histogram.
//!
//! It is a client, built like the server: one thread, one `mio::Poll`, all
//! connections nonblocking; no thread per connection.
//!
//! `--tls --tls-ca CERT.pem` puts every client's bytes through a rustls
//! client session (natter's own `ring` provider) on the same socket, in
//! the same loop: records are read into the session as the socket has them
//! (`read_tls`, `process_new_packets`, then the plaintext from `reader`),
//! and what a client says goes into `writer` and out with `write_tls`
//! until the socket is full (then the client waits for a writable event,
//! as a plain one does). The server's certificate must chain to CERT.pem
//! and carry the name `--tls-name` (default `localhost`); a self-signed
//! certificate trusted as itself must not say it is a CA (webpki refuses
//! it as `CaUsedAsEndEntity`; rcgen's simple ones do not). Every
//! connection makes a full handshake: the clients keep no sessions to
//! resume. Line and WebSocket clients (ALPN `http/1.1`) both work over it:
//!
//! ```sh
//! target/release/natter --db :memory: --rate 1000000 --burst 1000000 \
//!     --tls-cert cert.pem --tls-key key.pem &
//! cargo run --release --example loadgen -- --tls --tls-ca cert.pem \
//!     --proto mixed --clients 1000 --rooms 100 --senders 1000
//! ```
//!
//! ```sh
//! cargo build --release
//! # Flood control allows 10 messages a second (bursts of 20) per connection:
//! # lift it, or the senders' messages beyond that are dropped.
//! target/release/natter --db :memory: --rate 1000000 --burst 1000000 &
//! cargo run --release --example loadgen -- --clients 1000 --rooms 1 \
//!     --senders 20 --rate 5 --seconds 10            # add --json for JSON
//! ```
//!
//! How a run goes:
//!
//! 1. Connect, at most `--connect-window` connections being set up at once
//!    (the server's listen backlog is 128). Client `g` (0-based) gets nick
//!    `lgG` and room `room{g % R}`. A line client sends `/nick lgG` and
//!    `/join roomK` at once, so the server does not wait for the 300 ms
//!    sniff; it is ready at `*** you joined #roomK`. (Every line client is
//!    also put in the server's default room, `#lobby`, on connect.) A
//!    WebSocket client asks for `GET /ws?nick=lgG&room=roomK` and is ready at
//!    its `joined`. Then the clients wait until the setup traffic (joins,
//!    presence) has died down.
//! 2. The senders are clients `0..S` (so each room gets its share). Sender
//!    `g` sends its k-th message at `(g / S + k) / M` seconds after the
//!    shared start; each text is `lg:RUN.PHASE:SENDER:COUNTER:SEND_NS:`
//!    padded with `x` to `--payload` bytes, where SEND_NS is the send time in
//!    monotonic nanoseconds since the shared start.
//! 3. Every receiver checks each message: this run, this phase, a sender of
//!    its room, the counter following the previous one from that sender.
//!    Latency is receive time minus SEND_NS, into a log-linear histogram
//!    (under 1% error).
//! 4. After the last send, the run waits for the expected deliveries (at
//!    most `--drain` seconds), then WebSocket clients say goodbye with a
//!    close frame and every socket is shut down.
//!
//! Expected deliveries: each message reaches every other member of its room
//! (a line client gets no echo of its own message). A WebSocket sender gets
//! its own message back as its acknowledgement: counted apart, as `echo`.
//! Deliveries/s counts both, over the time from the shared start to the
//! last delivery.
//!
//! Past the open-file limit (about 19,000 clients here), the clients are
//! split across child processes (`--procs K`, or automatically): the parent
//! runs itself with `--shard I/K`; each child connects the clients `g` with
//! `g % K == I` and says `ready` on stdout; the parent answers `go START` on
//! their stdin (START in nanoseconds since the Unix epoch, so every process
//! shares one timeline), and sums their `result` lines.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection};
use serde::{Deserialize, Serialize};

/// The WebSocket key every client sends (RFC 6455's example); the answer
/// is checked against `natter::proto::ws::accept_key`.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Wakes a child's loop when its parent writes a line.
const WAKER: Token = Token(usize::MAX);
/// The run waits this long without a byte arriving before it starts.
const QUIET: Duration = Duration::from_millis(300);
/// Longest wait for the setup traffic to die down.
const SETTLE_MAX: Duration = Duration::from_secs(60);
/// How long the goodbye may take.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// File descriptors kept free under the open-file limit per process.
const FD_SPARE: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// The netcat protocol.
    Line,
    /// WebSocket with JSON messages at /ws.
    Ws,
    /// Even clients line, odd clients WebSocket.
    Mixed,
}

/// The key exchange TLS clients offer first (and send their key share
/// for). rustls's `ring` provider lists P-384 first; browsers and OpenSSL
/// offer X25519 first, which is what the load generator does by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TlsKx {
    X25519,
    P256,
    P384,
}

impl TlsKx {
    fn group(self) -> rustls::NamedGroup {
        match self {
            TlsKx::X25519 => rustls::NamedGroup::X25519,
            TlsKx::P256 => rustls::NamedGroup::secp256r1,
            TlsKx::P384 => rustls::NamedGroup::secp384r1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TlsKx::X25519 => "x25519",
            TlsKx::P256 => "p256",
            TlsKx::P384 => "p384",
        }
    }
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Line => "line",
            Proto::Ws => "ws",
            Proto::Mixed => "mixed",
        }
    }
}

/// Load generator for natter: N clients in R rooms, S of them sending.
/// Start the server with `--rate 1000000 --burst 1000000`, or its flood
/// control (10 msg/s, bursts of 20 per connection) drops the excess.
#[derive(Parser, Debug, Clone)]
#[command(name = "loadgen")]
pub struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: SocketAddr,
    /// More servers of the same chat (natter processes sharing one Redis,
    /// `--redis`); repeatable. With K servers in all (`--addr` first),
    /// client g connects to server (g / ROOMS) % K, so every room's
    /// members are spread evenly over them, and latency is also reported
    /// apart for receivers on the sender's server and on another one.
    #[arg(long = "also-addr", value_name = "ADDR")]
    pub also_addr: Vec<SocketAddr>,
    /// Protocol of the clients (mixed: even clients line, odd WebSocket).
    #[arg(long, value_enum, default_value_t = Proto::Line)]
    pub proto: Proto,
    /// Clients.
    #[arg(long, default_value_t = 100)]
    pub clients: u32,
    /// Rooms; client g is in room g % ROOMS.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Senders: clients 0..SENDERS.
    #[arg(long, default_value_t = 10)]
    pub senders: u32,
    /// Messages a second per sender.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Bytes of message text (at least the ~40-byte header it carries).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Processes to split the clients across (0: as many as the open-file limit needs).
    #[arg(long, default_value_t = 0)]
    pub procs: u32,
    /// Seconds to wait for missing deliveries after the last send.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Seconds allowed for connecting every client.
    #[arg(long, default_value_t = 120.0)]
    pub connect_timeout: f64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 100)]
    pub connect_window: usize,
    /// Rooms are named PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "room")]
    pub room_prefix: String,
    /// Nicks are PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "lg")]
    pub nick_prefix: String,
    /// The server's PID: report its CPU time and RSS (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Speak TLS to the server (it needs --tls-cert/--tls-key or
    /// --tls-self-signed); needs --tls-ca.
    #[arg(long)]
    pub tls: bool,
    /// With --tls: a PEM file of the certificates to trust (the server's
    /// own, or the CA that signed it).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// With --tls: the name the server's certificate must carry.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
    /// With --tls: the key exchange offered first (the others follow in
    /// the provider's order).
    #[arg(long, value_enum, default_value_t = TlsKx::X25519)]
    pub tls_kx: TlsKx,
    /// Internal: this process is shard I of K, started by the parent.
    #[arg(long, hide = true)]
    pub shard: Option<String>,
    /// Internal: the parent's run id.
    #[arg(long, hide = true)]
    pub run_id: Option<u32>,
}

impl Args {
    /// Defaults, for programs that build a run in code.
    pub fn new(addr: SocketAddr, proto: Proto) -> Args {
        let mut a = Args::parse_from(["loadgen"]);
        a.addr = addr;
        a.proto = proto;
        a
    }

    /// Every server: `--addr`, then each `--also-addr`.
    pub fn servers(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(self.also_addr.iter().copied())
            .collect()
    }

    /// The arguments a child shard gets.
    fn child_argv(&self, shard: u32, shards: u32, run_id: u32) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut put = |k: &str, val: String| {
            v.push(k.to_string());
            v.push(val);
        };
        put("--addr", self.addr.to_string());
        for a in &self.also_addr {
            put("--also-addr", a.to_string());
        }
        put("--proto", self.proto.name().to_string());
        put("--clients", self.clients.to_string());
        put("--rooms", self.rooms.to_string());
        put("--senders", self.senders.to_string());
        put("--rate", self.rate.to_string());
        put("--seconds", self.seconds.to_string());
        put("--payload", self.payload.to_string());
        put("--drain", self.drain.to_string());
        put("--connect-timeout", self.connect_timeout.to_string());
        put("--connect-window", self.connect_window.to_string());
        put("--room-prefix", self.room_prefix.clone());
        put("--nick-prefix", self.nick_prefix.clone());
        if self.tls {
            v.push("--tls".to_string());
            if let Some(ca) = &self.tls_ca {
                v.push("--tls-ca".to_string());
                v.push(ca.display().to_string());
            }
            v.push("--tls-name".to_string());
            v.push(self.tls_name.clone());
            v.push("--tls-kx".to_string());
            v.push(self.tls_kx.name().to_string());
        }
        let mut put = |k: &str, val: String| {
            v.push(k.to_string());
            v.push(val);
        };
        put("--shard", format!("{shard}/{shards}"));
        put("--run-id", run_id.to_string());
        v
    }
}

/// What one phase of sending looks like.
#[derive(Clone, Debug)]
pub struct PhaseSpec {
    pub senders: u32,
    pub rate: f64,
    pub seconds: f64,
    pub payload: usize,
    pub drain: f64,
}

impl PhaseSpec {
    pub fn from_args(a: &Args) -> PhaseSpec {
        PhaseSpec {
            senders: a.senders.min(a.clients),
            rate: a.rate,
            seconds: a.seconds,
            payload: a.payload,
            drain: a.drain,
        }
    }
}

// ---------------------------------------------------------------------------
// Latency histogram
// ---------------------------------------------------------------------------

/// Sub-bucket bits: 2^(B-1) buckets per power of two, under 1% error.
const SUB_BITS: u32 = 7;
const HALF: usize = 1 << (SUB_BITS - 1);
const BUCKETS: usize = (64 - SUB_BITS as usize + 2) * HALF;

/// A log-linear histogram of nanoseconds: fixed size, mergeable.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "HistWire", into = "HistWire")]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// A histogram as a shard sends it: only the buckets in use.
#[derive(Clone, Serialize, Deserialize)]
struct HistWire {
    buckets: Vec<(usize, u64)>,
    max: u64,
}

impl From<Hist> for HistWire {
    fn from(h: Hist) -> HistWire {
        let buckets = h
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (i, c))
            .collect();
        HistWire {
            buckets,
            max: h.max,
        }
    }
}

impl From<HistWire> for Hist {
    fn from(w: HistWire) -> Hist {
        let mut h = Hist {
            max: w.max,
            ..Hist::default()
        };
        for (i, c) in w.buckets {
            if let Some(slot) = h.counts.get_mut(i) {
                *slot += c;
                h.total += c;
            }
        }
        h
    }
}

impl Default for Hist {
    fn default() -> Hist {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < (1 << SUB_BITS) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let shift = e - SUB_BITS + 1;
        shift as usize * HALF + (v >> shift) as usize
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < (1 << SUB_BITS) {
            return i as u64;
        }
        let shift = i / HALF - 1;
        let m = (i - shift * HALF) as u64;
        (m << shift) + (1u64 << shift) / 2
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Hist::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0..=1), in nanoseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Hist::value(i).min(self.max);
            }
        }
        self.max
    }

    /// The distribution at `CDF_QUANTILES`: `[q, milliseconds]` pairs, the
    /// last (q = 1) the largest value recorded. Empty when nothing was.
    pub fn cdf_ms(&self) -> Vec<[f64; 2]> {
        if self.total == 0 {
            return Vec::new();
        }
        CDF_QUANTILES
            .iter()
            .map(|&q| {
                let ns = if q >= 1.0 { self.max } else { self.quantile(q) };
                [q, ns as f64 / 1e6]
            })
            .collect()
    }

    pub fn summary(&self) -> Latency {
        let ms = |ns: u64| ns as f64 / 1e6;
        Latency {
            count: self.total,
            p50: ms(self.quantile(0.50)),
            p90: ms(self.quantile(0.90)),
            p99: ms(self.quantile(0.99)),
            p999: ms(self.quantile(0.999)),
            max: ms(self.max),
        }
    }
}

/// Latency figures in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

// ---------------------------------------------------------------------------
// Counters of one phase (one process, or several merged)
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub clients: u64,
    pub connected: u64,
    pub failed: u64,
    pub connect_s: f64,
    pub planned: u64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub echo_expected: u64,
    pub echo_received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Counters skipped over (later ones arrived first, or never).
    pub gaps: u64,
    /// Expected deliveries that never came.
    pub missing: u64,
    /// Deliveries beyond the expected ones.
    pub extra: u64,
    /// Messages of another run or phase, or of an unknown sender.
    pub foreign: u64,
    /// Messages from a sender of another room.
    pub misrouted: u64,
    /// Clients closed during the phase.
    pub disconnected: u64,
    /// `!!! CODE` lines and `error` events, by code.
    pub errors: BTreeMap<String, u64>,
    /// WebSocket close codes the server sent, by code.
    pub closes: BTreeMap<String, u64>,
    pub bytes_in: u64,
    /// Nanoseconds from the shared start to the last delivery.
    pub last_recv_ns: u64,
    /// Most a send was late on its schedule.
    pub send_lag_max_ns: u64,
    /// CPU seconds of the load generator process(es).
    pub cpu_s: f64,
    pub latency: Hist,
    pub echo_latency: Hist,
    /// With several servers (`--also-addr`): the latency of deliveries to
    /// receivers on the sender's server, and on another server.
    #[serde(default)]
    pub latency_same: Hist,
    #[serde(default)]
    pub latency_other: Hist,
}

impl Stats {
    fn error(&mut self, code: &str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Stats) {
        self.clients += o.clients;
        self.connected += o.connected;
        self.failed += o.failed;
        self.connect_s = self.connect_s.max(o.connect_s);
        self.planned += o.planned;
        self.sent += o.sent;
        self.expected += o.expected;
        self.received += o.received;
        self.echo_expected += o.echo_expected;
        self.echo_received += o.echo_received;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.gaps += o.gaps;
        self.missing += o.missing;
        self.extra += o.extra;
        self.foreign += o.foreign;
        self.misrouted += o.misrouted;
        self.disconnected += o.disconnected;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.closes {
            *self.closes.entry(k.clone()).or_default() += v;
        }
        self.bytes_in += o.bytes_in;
        self.last_recv_ns = self.last_recv_ns.max(o.last_recv_ns);
        self.send_lag_max_ns = self.send_lag_max_ns.max(o.send_lag_max_ns);
        self.cpu_s += o.cpu_s;
        self.latency.merge(&o.latency);
        self.echo_latency.merge(&o.echo_latency);
        self.latency_same.merge(&o.latency_same);
        self.latency_other.merge(&o.latency_other);
    }
}

// ---------------------------------------------------------------------------
// The plan: who is where, who sends what when. Every process computes the
// same plan from the same arguments.
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Plan {
    clients: u32,
    rooms: u32,
    senders: u32,
    rate: f64,
    seconds: f64,
    payload: usize,
    /// Servers of the chat (`--addr` and each `--also-addr`).
    servers: u32,
    /// Clients that never got ready, in any process: they neither send nor
    /// count as receivers.
    failed: HashSet<u32>,
}

impl Plan {
    fn room_of(&self, gid: u32) -> u32 {
        gid % self.rooms
    }

    /// The server client `gid` connects to: its place among its room's
    /// members, modulo the servers (each room spread over all of them).
    fn server_of(&self, gid: u32) -> u32 {
        (gid / self.rooms) % self.servers.max(1)
    }

    /// A sender's index among the senders of its room.
    fn slot_of(&self, gid: u32) -> u32 {
        gid / self.rooms
    }

    fn senders_in_room(&self, room: u32) -> u32 {
        self.senders / self.rooms + u32::from(room < self.senders % self.rooms)
    }

    fn sender_at(&self, room: u32, slot: u32) -> u32 {
        room + slot * self.rooms
    }

    /// Messages sender `gid` sends in the phase.
    fn planned(&self, gid: u32) -> u32 {
        if gid >= self.senders || self.rate <= 0.0 || self.failed.contains(&gid) {
            return 0;
        }
        let left = self.seconds - self.offset(gid);
        if left <= 0.0 {
            0
        } else {
            (left * self.rate).ceil() as u32
        }
    }

    /// Seconds after the start of a sender's first message: the senders are
    /// spread evenly over one period.
    fn offset(&self, gid: u32) -> f64 {
        f64::from(gid) / f64::from(self.senders.max(1)) / self.rate
    }

    fn due_ns(&self, gid: u32, k: u32) -> i64 {
        ((self.offset(gid) + f64::from(k) / self.rate) * 1e9) as i64
    }
}

/// Wall-clock nanoseconds since the Unix epoch.
fn epoch_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// Monotonic nanoseconds since a start that every process shares: the
/// start is a wall-clock instant, read once against `Instant`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    anchor: Instant,
    offset_ns: i64,
}

impl Clock {
    fn starting_at(start_epoch_ns: i128) -> Clock {
        let anchor = Instant::now();
        Clock {
            anchor,
            offset_ns: (epoch_ns() - start_epoch_ns) as i64,
        }
    }

    fn now_ns(&self) -> i64 {
        self.offset_ns + self.anchor.elapsed().as_nanos() as i64
    }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not connected yet.
    Waiting,
    /// `connect` in progress.
    Connecting,
    /// WebSocket: the upgrade request is out.
    Handshake,
    /// Waiting for the join confirmation.
    Joining,
    Ready,
    /// Gone after it was ready.
    Closed,
    /// Never got ready.
    Failed,
}

struct Client {
    gid: u32,
    /// Line or Ws.
    proto: Proto,
    room: u32,
    /// The server it connects to (an index into `Args::servers`).
    server: u32,
    state: State,
    stream: Option<TcpStream>,
    /// With `--tls`: the session over `stream` (made when the connect
    /// finishes, dropped with the stream).
    tls: Option<Box<ClientConnection>>,
    /// When the connect began (for the time to the welcome).
    connect_at: Option<Instant>,
    /// Bytes of an unfinished line or frame.
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    writable: bool,
    /// Per sender slot of the room: the counter expected next.
    next: Vec<u32>,
    /// Per sender slot: deliveries received.
    got: Vec<u32>,
    echo_next: u32,
    echo_got: u32,
    /// Messages this client sent in the phase.
    sent: u32,
    /// Saw our own end of stream or the server's.
    eof: bool,
}

impl Client {
    fn nick(&self, args: &Args) -> String {
        format!("{}{}", args.nick_prefix, self.gid)
    }
}

/// What the loop needs while it parses what clients receive.
struct Ctx {
    run_id: u32,
    /// The phase being measured (`u32::MAX` outside one).
    phase: u32,
    plan: Plan,
    clock: Clock,
    stats: Stats,
    room_names: Vec<String>,
    rng: u64,
    /// Clients that got ready or failed since last asked.
    newly_ready: u32,
    newly_failed: u32,
    /// Last time anything but a WebSocket ping arrived (a server pings
    /// its idle WebSocket clients: that is not setup traffic).
    last_bytes: Instant,
    /// Scratch for message text.
    text: String,
    /// With `--tls`: the session configuration of line clients and of
    /// WebSocket clients (these offer ALPN `http/1.1`), and the name the
    /// certificate must carry.
    tls: Option<TlsClients>,
    /// From the start of each connect to its client's welcome (the join
    /// confirmation), nanoseconds.
    connect_latency: Hist,
}

/// What every TLS client of a session starts from.
struct TlsClients {
    line: Arc<ClientConfig>,
    ws: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClients {
    /// Trusts exactly the certificates in the PEM file `ca`; resumption is
    /// off, so every connection makes a full handshake; `kx` is offered
    /// first.
    fn new(ca: &std::path::Path, name: &str, kx: TlsKx) -> Result<TlsClients, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no certificate in it", ca.display()));
        }
        let mut provider = (*natter::tls::provider()).clone();
        provider.kx_groups.sort_by_key(|g| g.name() != kx.group());
        let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        let line = Arc::new(config.clone());
        config.alpn_protocols = vec![natter::tls::ALPN_HTTP11.to_vec()];
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| format!("--tls-name {name}: {e}"))?;
        Ok(TlsClients {
            line,
            ws: Arc::new(config),
            name,
        })
    }

    fn session(&self, proto: Proto) -> Result<Box<ClientConnection>, String> {
        let config = if proto == Proto::Ws {
            &self.ws
        } else {
            &self.line
        };
        ClientConnection::new(Arc::clone(config), self.name.clone())
            .map(Box::new)
            .map_err(|e| e.to_string())
    }
}

impl Ctx {
    fn mask(&mut self) -> [u8; 4] {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng as u32).to_le_bytes()
    }
}

fn ws_frame(ctx: &mut Ctx, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = ctx.mask();
    natter::proto::ws::encode_client_frame(true, 0, opcode, payload, mask)
}

/// One server frame: (opcode, payload range, whole frame length).
fn parse_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    if masked {
        at += 4; // servers never mask; tolerated anyway
    }
    let end = at + len as usize;
    if buf.len() < end {
        return None;
    }
    Some((opcode, at..end, end))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Parses `RUNHEX.PHASE:SENDER:COUNTER:SEND_NS:` (what follows `lg:`).
fn parse_marker(b: &[u8]) -> Option<(u32, u32, u32, u32, i64)> {
    let mut i = 0;
    let mut num = |radix: u64, stop: u8| -> Option<u64> {
        let start = i;
        let mut v: u64 = 0;
        while i < b.len() && b[i] != stop {
            let d = (b[i] as char).to_digit(radix as u32)?;
            v = v.checked_mul(radix)?.checked_add(u64::from(d))?;
            i += 1;
        }
        if i == start || i >= b.len() {
            return None;
        }
        i += 1;
        Some(v)
    };
    let run = num(16, b'.')? as u32;
    let phase = num(10, b':')? as u32;
    let sender = num(10, b':')? as u32;
    let counter = num(10, b':')? as u32;
    let ts = num(10, b':')? as i64;
    Some((run, phase, sender, counter, ts))
}

/// One message received by client `c` (`m` follows `lg:`).
fn on_message(c: &mut Client, m: &[u8], ctx: &mut Ctx, now: i64) {
    let Some((run, phase, sender, counter, ts)) = parse_marker(m) else {
        ctx.stats.foreign += 1;
        return;
    };
    if run != ctx.run_id || phase != ctx.phase || sender >= ctx.plan.clients {
        ctx.stats.foreign += 1;
        return;
    }
    if ctx.plan.room_of(sender) != c.room {
        ctx.stats.misrouted += 1;
        return;
    }
    let latency = (now - ts).max(0) as u64;
    ctx.stats.last_recv_ns = ctx.stats.last_recv_ns.max(now.max(0) as u64);
    let (next, got) = if sender == c.gid {
        ctx.stats.echo_received += 1;
        ctx.stats.echo_latency.record(latency);
        (&mut c.echo_next, &mut c.echo_got)
    } else {
        let slot = ctx.plan.slot_of(sender) as usize;
        if slot >= c.next.len() {
            ctx.stats.foreign += 1;
            return;
        }
        ctx.stats.received += 1;
        ctx.stats.latency.record(latency);
        if ctx.plan.servers > 1 {
            if ctx.plan.server_of(sender) == c.server {
                ctx.stats.latency_same.record(latency);
            } else {
                ctx.stats.latency_other.record(latency);
            }
        }
        (&mut c.next[slot], &mut c.got[slot])
    };
    *got += 1;
    if counter == *next {
        *next += 1;
    } else if counter > *next {
        ctx.stats.gaps += u64::from(counter - *next);
        *next = counter + 1;
    } else if counter + 1 == *next {
        ctx.stats.duplicates += 1;
    } else {
        ctx.stats.out_of_order += 1;
    }
}

fn set_ready(c: &mut Client, ctx: &mut Ctx) {
    if matches!(c.state, State::Joining | State::Handshake) {
        c.state = State::Ready;
        ctx.newly_ready += 1;
        if let Some(at) = c.connect_at.take() {
            ctx.connect_latency.record(at.elapsed().as_nanos() as u64);
        }
    }
}

/// A line client's line (without its `\n`).
fn on_line(c: &mut Client, line: &[u8], ctx: &mut Ctx, now: i64) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.first() {
        Some(b'[') => {
            // `[HH:MM:SS] #room <nick> text`: nicks and rooms hold no '>'.
            if let Some(p) = line.iter().position(|&b| b == b'>') {
                if let Some(m) = line[p + 1..].strip_prefix(b" lg:") {
                    on_message(c, m, ctx, now);
                }
            }
        }
        Some(b'!') => {
            let rest = line.strip_prefix(b"!!! ").unwrap_or(line);
            let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
            let code = String::from_utf8_lossy(&rest[..end]).into_owned();
            ctx.stats.error(&code);
            if code == "server_full" && c.state != State::Ready {
                fail(c, ctx);
            }
        }
        Some(b'*') if c.state == State::Joining => {
            let room = &ctx.room_names[c.room as usize];
            let joined = line
                .strip_prefix(b"*** you joined #")
                .and_then(|r| r.strip_prefix(room.as_bytes()))
                .is_some_and(|r| r.starts_with(b" ("));
            let current = line
                .strip_prefix(b"*** #")
                .and_then(|r| r.strip_prefix(room.as_bytes()))
                .is_some_and(|r| r == b" is your current room");
            if joined || current {
                set_ready(c, ctx);
            }
        }
        _ => {}
    }
}

/// A WebSocket text message.
fn on_text(c: &mut Client, t: &[u8], ctx: &mut Ctx, now: i64) {
    if t.starts_with(b"{\"type\":\"message\"") {
        if let Some(p) = find(&t[17..], b"\"text\":\"lg:") {
            on_message(c, &t[17 + p + 11..], ctx, now);
        }
    } else if t.starts_with(b"{\"type\":\"joined\"") {
        set_ready(c, ctx);
    } else if t.starts_with(b"{\"type\":\"error\"") {
        let code = find(t, b"\"code\":\"")
            .map(|p| &t[p + 8..])
            .and_then(|r| r.iter().position(|&b| b == b'"').map(|e| &r[..e]))
            .unwrap_or(b"?");
        ctx.stats.error(&String::from_utf8_lossy(code));
    }
}

/// Parses what `c` received; returns the bytes used (the rest is an
/// unfinished line or frame).
fn parse_input(c: &mut Client, buf: &[u8], ctx: &mut Ctx, now: i64) -> usize {
    // Anything but pings is traffic that keeps `settle` waiting.
    let pings_only =
        c.proto == Proto::Ws && c.state != State::Handshake && c.inbuf.is_empty() && all_pings(buf);
    if !pings_only {
        ctx.last_bytes = Instant::now();
    }
    let mut used = 0;
    if c.state == State::Handshake {
        let Some(end) = find(buf, b"\r\n\r\n") else {
            return 0;
        };
        let head = String::from_utf8_lossy(&buf[..end]);
        let accept = natter::proto::ws::accept_key(WS_KEY);
        let ok = head.starts_with("HTTP/1.1 101")
            && head.lines().any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("sec-websocket-accept") && v.trim() == accept
                })
            });
        if !ok {
            let status = head.lines().next().unwrap_or("").to_string();
            ctx.stats.error(&format!("http: {status}"));
            fail(c, ctx);
            return buf.len();
        }
        c.state = State::Joining;
        used = end + 4;
    }
    if c.proto == Proto::Line {
        while let Some(nl) = buf[used..].iter().position(|&b| b == b'\n') {
            on_line(c, &buf[used..used + nl], ctx, now);
            used += nl + 1;
            if c.stream.is_none() {
                return buf.len();
            }
        }
        return used;
    }
    while let Some((opcode, payload, len)) = parse_frame(&buf[used..]) {
        let p = &buf[used + payload.start..used + payload.end];
        match opcode {
            1 => on_text(c, p, ctx, now),
            8 => {
                let code = if p.len() >= 2 {
                    u16::from_be_bytes([p[0], p[1]]).to_string()
                } else {
                    "none".to_string()
                };
                *ctx.stats.closes.entry(code).or_default() += 1;
                c.eof = true;
            }
            9 => {
                let pong = ws_frame(ctx, 10, p);
                c.out.extend_from_slice(&pong);
            }
            _ => {}
        }
        used += len;
    }
    used
}

/// Whether `buf` is nothing but whole WebSocket pings.
fn all_pings(buf: &[u8]) -> bool {
    let mut at = 0;
    while at < buf.len() {
        match parse_frame(&buf[at..]) {
            Some((9, _, len)) => at += len,
            _ => return false,
        }
    }
    at > 0
}

/// A client that never got ready.
fn fail(c: &mut Client, ctx: &mut Ctx) {
    if matches!(
        c.state,
        State::Waiting | State::Connecting | State::Handshake | State::Joining
    ) {
        c.state = State::Failed;
        ctx.newly_failed += 1;
    }
    c.stream = None;
    c.tls = None;
}

/// The connection ended.
fn gone(c: &mut Client, ctx: &mut Ctx) {
    if c.state == State::Ready {
        c.state = State::Closed;
        if ctx.phase != u32::MAX {
            ctx.stats.disconnected += 1;
        }
        c.stream = None;
        c.tls = None;
    } else {
        fail(c, ctx);
    }
}

/// Writes what is queued until done or the socket is full.
fn flush(c: &mut Client, ctx: &mut Ctx) {
    let records = c.tls.as_ref().is_some_and(|t| t.wants_write());
    if !c.writable || (c.out_pos >= c.out.len() && !records) {
        return;
    }
    let Some(stream) = c.stream.as_mut() else {
        c.out.clear();
        c.out_pos = 0;
        return;
    };
    if let Some(tls) = c.tls.as_mut() {
        match flush_tls(tls, stream, &c.out, &mut c.out_pos) {
            Ok(true) => {}
            Ok(false) => {
                c.writable = false;
                return;
            }
            Err(_) => {
                gone(c, ctx);
                return;
            }
        }
        if c.out_pos >= c.out.len() {
            c.out.clear();
            c.out_pos = 0;
        }
        return;
    }
    while c.out_pos < c.out.len() {
        match stream.write(&c.out[c.out_pos..]) {
            Ok(0) => {
                gone(c, ctx);
                return;
            }
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                c.writable = false;
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                gone(c, ctx);
                return;
            }
        }
    }
    c.out.clear();
    c.out_pos = 0;
}

/// Hands `out[*pos..]` to the TLS session and writes its records to the
/// socket. `Ok(false)`: the socket is full (wait for a writable event).
/// `Ok(true)`: every record is out; the plaintext is too, unless the
/// session holds it back because its buffer is full while the handshake is
/// still under way (it goes when the handshake's last message is read).
fn flush_tls(
    tls: &mut ClientConnection,
    tcp: &mut TcpStream,
    out: &[u8],
    pos: &mut usize,
) -> io::Result<bool> {
    loop {
        let taken = if *pos < out.len() {
            tls.writer().write(&out[*pos..])?
        } else {
            0
        };
        *pos += taken;
        while tls.wants_write() {
            match tls.write_tls(tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if *pos >= out.len() || taken == 0 {
            return Ok(true);
        }
    }
}

/// The next plaintext from the connection: `Ok(0)` at its end,
/// `WouldBlock` when the socket (and, over TLS, the session) has nothing
/// more. Over TLS, a record the session rejects is `InvalidData` (its
/// alert goes out first, best effort).
fn recv(c: &mut Client, buf: &mut [u8]) -> io::Result<usize> {
    let Some(stream) = c.stream.as_mut() else {
        return Ok(0);
    };
    let Some(tls) = c.tls.as_mut() else {
        return stream.read(buf);
    };
    loop {
        match tls.reader().read(buf) {
            // 0: the server's close_notify.
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            // The TCP stream ended without a close_notify.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
            Err(e) => return Err(e),
        }
        if tls.read_tls(stream)? == 0 {
            return Ok(0);
        }
        if let Err(e) = tls.process_new_packets() {
            let _ = tls.write_tls(stream);
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
    }
}

/// Reads until the socket is drained.
fn read_all(c: &mut Client, scratch: &mut [u8], ctx: &mut Ctx) {
    loop {
        if c.stream.is_none() {
            return;
        }
        match recv(c, scratch) {
            Ok(0) => {
                gone(c, ctx);
                return;
            }
            Ok(n) => {
                let now = ctx.clock.now_ns();
                ctx.stats.bytes_in += n as u64;
                if c.inbuf.is_empty() {
                    let used = parse_input(c, &scratch[..n], ctx, now);
                    if c.stream.is_some() {
                        c.inbuf.extend_from_slice(&scratch[used..n]);
                    }
                } else {
                    let mut buf = std::mem::take(&mut c.inbuf);
                    buf.extend_from_slice(&scratch[..n]);
                    let used = parse_input(c, &buf, ctx, now);
                    buf.drain(..used.min(buf.len()));
                    c.inbuf = buf;
                }
                if c.eof {
                    gone(c, ctx);
                    return;
                }
                if c.stream.is_none() {
                    return;
                }
                flush(c, ctx);
                // A short read drained a plain socket: edge-triggered
                // readiness comes again with the next byte (or the end of
                // stream). A TLS session hands out one record's plaintext
                // at a time: read on until the socket would block.
                if n < scratch.len() && c.tls.is_none() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The handshake's answers (and anything the session held
                // back until it was over) go out now.
                if c.tls.is_some() {
                    flush(c, ctx);
                }
                return;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                if e.kind() == ErrorKind::InvalidData && c.tls.is_some() {
                    ctx.stats.error(&format!("tls: {e}"));
                }
                gone(c, ctx);
                return;
            }
        }
    }
}

/// The connect finished (or failed): send the greeting.
fn on_connected(c: &mut Client, args: &Args, ctx: &mut Ctx) {
    let Some(stream) = c.stream.as_ref() else {
        return;
    };
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => {
            ctx.stats.error("connect");
            fail(c, ctx);
            return;
        }
    }
    match stream.peer_addr() {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotConnected => return, // not yet
        Err(_) => {
            ctx.stats.error("connect");
            fail(c, ctx);
            return;
        }
    }
    if let Some(tls) = &ctx.tls {
        match tls.session(c.proto) {
            Ok(session) => c.tls = Some(session),
            Err(e) => {
                ctx.stats.error(&format!("tls: {e}"));
                fail(c, ctx);
                return;
            }
        }
    }
    let room = &ctx.room_names[c.room as usize];
    let nick = c.nick(args);
    if c.proto == Proto::Line {
        c.out
            .extend_from_slice(format!("/nick {nick}\n/join {room}\n").as_bytes());
        c.state = State::Joining;
    } else {
        c.out.extend_from_slice(
            format!(
                "GET /ws?nick={nick}&room={room} HTTP/1.1\r\nHost: {}\r\n\
                 Upgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
                args.servers()[c.server as usize]
            )
            .as_bytes(),
        );
        c.state = State::Handshake;
    }
    flush(c, ctx);
}

/// Queues sender `c`'s message number `counter`.
fn queue_message(c: &mut Client, counter: u32, ctx: &mut Ctx) {
    let now = ctx.clock.now_ns().max(0);
    let mut text = std::mem::take(&mut ctx.text);
    text.clear();
    let _ = write!(
        text,
        "lg:{:08x}.{}:{}:{}:{}:",
        ctx.run_id, ctx.phase, c.gid, counter, now
    );
    while text.len() < ctx.plan.payload {
        text.push('x');
    }
    if c.proto == Proto::Line {
        c.out.extend_from_slice(text.as_bytes());
        c.out.push(b'\n');
    } else {
        let json = format!(
            "{{\"type\":\"say\",\"room\":\"{}\",\"text\":\"{}\"}}",
            ctx.room_names[c.room as usize], text
        );
        let frame = ws_frame(ctx, 1, json.as_bytes());
        c.out.extend_from_slice(&frame);
    }
    ctx.text = text;
    c.sent += 1;
    ctx.stats.sent += 1;
}

/// Moments of a phase that a caller may want to measure between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Every client is connected and the setup traffic is over; sending
    /// starts now.
    Go,
    /// Every expected delivery arrived (or the drain time ran out).
    Done,
}

/// The clients of one process and their loop.
pub struct Session {
    args: Args,
    /// `args.servers()`.
    servers: Vec<SocketAddr>,
    shard: u32,
    shards: u32,
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    scratch: Vec<u8>,
    ctx: Ctx,
    /// A child shard: lines from the parent, and the waker they come with.
    from_parent: Option<mpsc::Receiver<String>>,
    _waker: Option<Arc<Waker>>,
    phases: u32,
    connected: u64,
    failed: u64,
    connect_s: f64,
}

/// 32 random bits (a run id).
pub fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u32::from_le_bytes(b);
    }
    (epoch_ns() as u32) ^ std::process::id().rotate_left(16)
}

impl Session {
    /// Connects this process's clients (all of them, or shard `shard` of
    /// `shards`) and waits until every one is ready or failed.
    pub fn connect(args: &Args, shard: u32, shards: u32, run_id: u32) -> Result<Session, String> {
        let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
        let (from_parent, waker) = if args.shard.is_some() {
            let waker = Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?;
            let (tx, rx) = mpsc::channel();
            let waker = Arc::new(waker);
            let w = Arc::clone(&waker);
            std::thread::spawn(move || {
                for line in io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                    let _ = w.wake();
                }
                let _ = tx.send("eof".to_string());
                let _ = w.wake();
            });
            (Some(rx), Some(waker))
        } else {
            (None, None)
        };
        let rooms = args.rooms.max(1);
        let servers = args.servers();
        let clients: Vec<Client> = (0..args.clients)
            .filter(|g| g % shards == shard)
            .map(|gid| Client {
                gid,
                proto: match args.proto {
                    Proto::Mixed if gid % 2 == 0 => Proto::Line,
                    Proto::Mixed => Proto::Ws,
                    p => p,
                },
                room: gid % rooms,
                server: (gid / rooms) % servers.len() as u32,
                state: State::Waiting,
                stream: None,
                tls: None,
                connect_at: None,
                inbuf: Vec::new(),
                out: Vec::new(),
                out_pos: 0,
                writable: false,
                next: Vec::new(),
                got: Vec::new(),
                echo_next: 0,
                echo_got: 0,
                sent: 0,
                eof: false,
            })
            .collect();
        let plan = Plan {
            clients: args.clients,
            rooms,
            senders: 0,
            rate: 0.0,
            seconds: 0.0,
            payload: args.payload,
            servers: servers.len() as u32,
            failed: HashSet::new(),
        };
        let room_names = (0..rooms)
            .map(|r| format!("{}{r}", args.room_prefix).to_ascii_lowercase())
            .collect();
        let tls = if args.tls {
            let ca = args.tls_ca.as_deref().ok_or("--tls needs --tls-ca")?;
            Some(TlsClients::new(ca, &args.tls_name, args.tls_kx)?)
        } else {
            None
        };
        let ctx = Ctx {
            run_id,
            phase: u32::MAX,
            plan,
            clock: Clock::starting_at(epoch_ns()),
            stats: Stats::default(),
            room_names,
            rng: u64::from(random_u32()) << 1 | 1,
            newly_ready: 0,
            newly_failed: 0,
            last_bytes: Instant::now(),
            text: String::new(),
            tls,
            connect_latency: Hist::default(),
        };
        let mut s = Session {
            args: args.clone(),
            servers,
            shard,
            shards,
            poll,
            events: Events::with_capacity(1024),
            clients,
            scratch: vec![0; 64 * 1024],
            ctx,
            from_parent,
            _waker: waker,
            phases: 0,
            connected: 0,
            failed: 0,
            connect_s: 0.0,
        };
        s.connect_all();
        Ok(s)
    }

    fn connect_all(&mut self) {
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(self.args.connect_timeout);
        let window = self.args.connect_window.max(1);
        let mut next = 0;
        let mut in_flight = 0usize;
        let mut done = 0usize;
        let total = self.clients.len();
        let order = self.connect_order();
        while done < total && Instant::now() < deadline {
            while in_flight < window && next < total {
                let i = order[next];
                let c = &mut self.clients[i];
                match TcpStream::connect(self.servers[c.server as usize]) {
                    Ok(mut stream) => {
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if self
                            .poll
                            .registry()
                            .register(&mut stream, Token(i), interest)
                            .is_ok()
                        {
                            let _ = stream.set_nodelay(true);
                            c.stream = Some(stream);
                            c.state = State::Connecting;
                            c.connect_at = Some(Instant::now());
                            // On loopback the connect is often done
                            // already: the greeting (or the ClientHello)
                            // goes at once. The server takes a client
                            // silent for 300 ms after its accept for a
                            // line client and greets it in plain text,
                            // which a TLS client cannot read.
                            c.writable = true;
                            on_connected(c, &self.args, &mut self.ctx);
                        } else {
                            self.ctx.stats.error("register");
                            fail(c, &mut self.ctx);
                        }
                    }
                    Err(e) => {
                        self.ctx.stats.error(&format!("connect: {e}"));
                        fail(c, &mut self.ctx);
                    }
                }
                // A client that failed at once is counted done below too.
                in_flight += 1;
                next += 1;
            }
            self.pump(Some(Duration::from_millis(50)));
            let (r, f) = (self.ctx.newly_ready, self.ctx.newly_failed);
            self.ctx.newly_ready = 0;
            self.ctx.newly_failed = 0;
            done += (r + f) as usize;
            in_flight = in_flight.saturating_sub((r + f) as usize);
            self.connected += u64::from(r);
            self.failed += u64::from(f);
        }
        for c in &mut self.clients {
            if c.state != State::Ready && c.state != State::Failed {
                // Where the connect timeout found it: connecting (no
                // SYN-ACK), the upgrade unanswered, or the join.
                let at = match c.state {
                    State::Waiting => "never started",
                    State::Connecting => "TCP connect",
                    State::Handshake => "WebSocket upgrade",
                    _ => "join",
                };
                self.ctx
                    .stats
                    .error(&format!("connect timeout: still in the {at}"));
                fail(c, &mut self.ctx);
            }
        }
        self.failed += u64::from(std::mem::take(&mut self.ctx.newly_failed));
        self.connect_s = started.elapsed().as_secs_f64();
        // Errors seen while connecting are reported with the first phase.
    }

    /// The order clients connect in: as they come, or, with several
    /// servers, one for each server in turn. Clients are spread over the
    /// servers in blocks of `--rooms` (client g on (g / ROOMS) % K), so in
    /// their own order every shard would set up its whole window of
    /// connections to one server at a time, past its listen backlog (128):
    /// the kernel drops the handshakes that overflow it, and a client
    /// whose handshake the server gave up on waits for minutes.
    fn connect_order(&self) -> Vec<usize> {
        let k = self.servers.len();
        if k <= 1 {
            return (0..self.clients.len()).collect();
        }
        let mut by_server: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); k];
        for (i, c) in self.clients.iter().enumerate() {
            by_server[c.server as usize].push_back(i);
        }
        let mut order = Vec::with_capacity(self.clients.len());
        while order.len() < self.clients.len() {
            for q in &mut by_server {
                if let Some(i) = q.pop_front() {
                    order.push(i);
                }
            }
        }
        order
    }

    /// Seconds the connects took (from the first to the last client ready
    /// or failed).
    pub fn connect_s(&self) -> f64 {
        self.connect_s
    }

    /// Clients that never got ready.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// From each connect's start to its client's welcome (the join
    /// confirmation): every client that got ready.
    pub fn connect_latency(&self) -> &Hist {
        &self.ctx.connect_latency
    }

    /// Errors seen so far (while connecting, until the first phase).
    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.ctx.stats.errors
    }

    /// The TLS version, cipher suite and key exchange the first ready
    /// client negotiated (`None` without TLS).
    pub fn tls_description(&self) -> Option<String> {
        let tls = self
            .clients
            .iter()
            .filter(|c| c.state == State::Ready)
            .find_map(|c| c.tls.as_ref())?;
        let version = tls.protocol_version().map(|v| format!("{v:?}"));
        let suite = tls
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()));
        let group = tls
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name()));
        Some(format!(
            "{} {} {}",
            version.unwrap_or_default(),
            suite.unwrap_or_default(),
            group.unwrap_or_default()
        ))
    }

    /// Clients ready now.
    pub fn connected(&self) -> u64 {
        self.clients
            .iter()
            .filter(|c| c.state == State::Ready)
            .count() as u64
    }

    /// One `poll` and everything it reports. Returns whether the parent
    /// woke us.
    fn pump(&mut self, timeout: Option<Duration>) -> bool {
        let Session {
            poll,
            events,
            clients,
            scratch,
            ctx,
            args,
            ..
        } = self;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                eprintln!("loadgen: poll: {e}");
            }
            return false;
        }
        let mut woke = false;
        for ev in events.iter() {
            if ev.token() == WAKER {
                woke = true;
                continue;
            }
            let Some(c) = clients.get_mut(ev.token().0) else {
                continue;
            };
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                c.writable = true;
                if c.state == State::Connecting {
                    on_connected(c, args, ctx);
                } else {
                    flush(c, ctx);
                }
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                if c.state == State::Connecting {
                    on_connected(c, args, ctx);
                }
                read_all(c, scratch, ctx);
            }
        }
        woke
    }

    /// Waits until nothing but pings arrived for `QUIET` (the joins'
    /// presence traffic is over), at most `SETTLE_MAX`.
    fn settle(&mut self) {
        let until = Instant::now() + SETTLE_MAX;
        loop {
            let now = Instant::now();
            let quiet_at = self.ctx.last_bytes + QUIET;
            if now >= quiet_at || now >= until {
                return;
            }
            self.pump(Some(quiet_at - now));
        }
    }

    /// A child shard: tell the parent we are ready, wait for its `go`.
    /// Returns the start (ns since the epoch) and the clients that failed
    /// in every shard.
    fn barrier(&mut self) -> Result<(i128, HashSet<u32>), String> {
        let failed: Vec<String> = self
            .clients
            .iter()
            .filter(|c| c.state != State::Ready)
            .map(|c| c.gid.to_string())
            .collect();
        let list = if failed.is_empty() {
            "-".to_string()
        } else {
            failed.join(",")
        };
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "ready {} {list}", self.connected());
        let _ = out.flush();
        drop(out);
        let limit = Instant::now() + Duration::from_secs(600);
        loop {
            if Instant::now() > limit {
                return Err("no go from the parent".into());
            }
            let line = self.from_parent.as_ref().and_then(|rx| rx.try_recv().ok());
            if let Some(line) = line {
                let mut parts = line.split_whitespace();
                match parts.next() {
                    Some("go") => {
                        let start: i128 = parts
                            .next()
                            .and_then(|s| s.parse().ok())
                            .ok_or("bad go line")?;
                        let failed = parts
                            .next()
                            .filter(|s| *s != "-")
                            .map(|s| s.split(',').filter_map(|g| g.parse().ok()).collect())
                            .unwrap_or_default();
                        return Ok((start, failed));
                    }
                    Some("eof") => return Err("the parent went away".into()),
                    _ => continue,
                }
            }
            self.pump(Some(Duration::from_millis(100)));
        }
    }

    /// One phase of sending: every sender sends its schedule, every client
    /// checks what it receives. `hook` is called at `Go` and `Done` (in a
    /// child shard the parent calls its own).
    pub fn phase(&mut self, spec: &PhaseSpec, hook: &mut dyn FnMut(Hook)) -> Stats {
        self.settle();
        let (start, failed) = if self.from_parent.is_some() {
            match self.barrier() {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("loadgen shard {}/{}: {e}", self.shard, self.shards);
                    std::process::exit(2);
                }
            }
        } else {
            hook(Hook::Go);
            let failed = self
                .clients
                .iter()
                .filter(|c| c.state != State::Ready)
                .map(|c| c.gid)
                .collect();
            (epoch_ns() + 2_000_000, failed)
        };
        let cpu_before = self_cpu_s();
        let phase = self.phases;
        self.phases += 1;
        let plan = Plan {
            clients: self.args.clients,
            rooms: self.args.rooms.max(1),
            senders: spec.senders.min(self.args.clients),
            rate: spec.rate,
            seconds: spec.seconds,
            payload: spec.payload,
            servers: self.servers.len() as u32,
            failed,
        };
        let mut stats = std::mem::take(&mut self.ctx.stats);
        if phase > 0 {
            // Setup errors are reported with the first phase only.
            stats = Stats::default();
        }
        stats.clients = self.clients.len() as u64;
        stats.connected = self.connected();
        stats.failed = stats.clients - stats.connected;
        stats.connect_s = self.connect_s;
        // What each ready client expects, and the schedule of the senders.
        let mut heap = BinaryHeap::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            let n = plan.senders_in_room(c.room) as usize;
            c.next = vec![0; n];
            c.got = vec![0; n];
            c.echo_next = 0;
            c.echo_got = 0;
            c.sent = 0;
            if c.state != State::Ready {
                continue;
            }
            for slot in 0..n as u32 {
                let s = plan.sender_at(c.room, slot);
                if s != c.gid {
                    stats.expected += u64::from(plan.planned(s));
                }
            }
            let mine = plan.planned(c.gid);
            stats.planned += u64::from(mine);
            if c.proto == Proto::Ws {
                stats.echo_expected += u64::from(mine);
            }
            if mine > 0 {
                heap.push(Reverse((plan.due_ns(c.gid, 0), i)));
            }
        }
        self.ctx.plan = plan;
        self.ctx.phase = phase;
        self.ctx.stats = stats;
        self.ctx.clock = Clock::starting_at(start);
        let end_ns = (spec.seconds * 1e9) as i64;
        let drain_ns = (spec.drain * 1e9) as i64;
        let mut dirty: Vec<usize> = Vec::new();
        loop {
            let now = self.ctx.clock.now_ns();
            while let Some(&Reverse((due, i))) = heap.peek() {
                if due > now {
                    break;
                }
                heap.pop();
                let c = &mut self.clients[i];
                if c.stream.is_none() {
                    continue;
                }
                let lag = (now - due).max(0) as u64;
                self.ctx.stats.send_lag_max_ns = self.ctx.stats.send_lag_max_ns.max(lag);
                let k = c.sent;
                queue_message(c, k, &mut self.ctx);
                if c.sent < self.ctx.plan.planned(c.gid) {
                    heap.push(Reverse((self.ctx.plan.due_ns(c.gid, c.sent), i)));
                }
                dirty.push(i);
            }
            for i in dirty.drain(..) {
                flush(&mut self.clients[i], &mut self.ctx);
            }
            let st = &self.ctx.stats;
            let all_in = st.received + st.echo_received >= st.expected + st.echo_expected;
            if heap.is_empty() && (all_in || now > end_ns + drain_ns) {
                break;
            }
            let wait = match heap.peek() {
                Some(&Reverse((due, _))) => (due - now).clamp(0, 50_000_000),
                None => 50_000_000,
            };
            self.pump(Some(Duration::from_nanos(wait as u64)));
        }
        if self.from_parent.is_none() {
            hook(Hook::Done);
        }
        let mut stats = std::mem::take(&mut self.ctx.stats);
        self.ctx.phase = u32::MAX;
        for c in &self.clients {
            if !matches!(c.state, State::Ready | State::Closed) {
                continue;
            }
            for (slot, &got) in c.got.iter().enumerate() {
                let s = self.ctx.plan.sender_at(c.room, slot as u32);
                if s == c.gid {
                    continue;
                }
                let want = self.ctx.plan.planned(s);
                stats.missing += u64::from(want.saturating_sub(got));
                stats.extra += u64::from(got.saturating_sub(want));
            }
            if c.proto == Proto::Ws {
                let want = self.ctx.plan.planned(c.gid);
                stats.missing += u64::from(want.saturating_sub(c.echo_got));
                stats.extra += u64::from(c.echo_got.saturating_sub(want));
            }
        }
        stats.cpu_s = self_cpu_s() - cpu_before;
        stats
    }

    /// Says goodbye: a close frame from each WebSocket client, then every
    /// socket is shut down for writing and read until the server closes it
    /// (at most `CLOSE_WAIT`).
    pub fn close(mut self) {
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            if c.stream.is_none() {
                continue;
            }
            if c.proto == Proto::Ws && c.state == State::Ready {
                let frame = ws_frame(&mut self.ctx, 8, &1000u16.to_be_bytes());
                c.out.extend_from_slice(&frame);
            }
            c.writable = true;
            flush(c, &mut self.ctx);
            if let Some(tls) = c.tls.as_mut() {
                tls.send_close_notify();
                flush(c, &mut self.ctx);
            }
            if let Some(s) = c.stream.as_ref() {
                let _ = s.shutdown(Shutdown::Write);
            }
        }
        let until = Instant::now() + CLOSE_WAIT;
        while Instant::now() < until && self.clients.iter().any(|c| c.stream.is_some()) {
            self.pump(Some(Duration::from_millis(50)));
        }
    }
}

// ---------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------

fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in seconds.
pub fn cpu_s(pid: u32) -> Option<f64> {
    cpu_split(&format!("/proc/{pid}/stat")).map(|(u, s)| u + s)
}

fn self_cpu_s() -> f64 {
    cpu_split("/proc/self/stat").map_or(0.0, |(u, s)| u + s)
}

/// (utime, stime) in seconds, from a `/proc/PID/stat` file.
pub fn cpu_split(path: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime / clock_ticks(), stime / clock_ticks()))
}

/// Reads a server child's first stdout line, `PREFIX ADDR`, and returns the
/// address; the rest of its stdout is drained on a thread so the child never
/// blocks on a full pipe.
pub fn listening_addr(child: &mut std::process::Child, prefix: &str) -> SocketAddr {
    use std::io::{BufRead, Read};
    let out = child.stdout.take().expect("server stdout is piped");
    let mut lines = std::io::BufReader::new(out);
    let mut line = String::new();
    lines
        .read_line(&mut line)
        .expect("the server's listening line");
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address");
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = lines.read_to_end(&mut sink);
    });
    addr
}

/// VmRSS of a process, in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The soft open-file limit of this process.
pub fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1024)
}

// ---------------------------------------------------------------------------
// A redis-server of our own, for natter processes sharing one chat
// ---------------------------------------------------------------------------

/// A `redis-server` started on a free loopback port, in a directory of its
/// own under `parent`, with natter's durability settings (`--appendonly
/// yes --appendfsync always`, no RDB snapshots). Killed (by its pid) and
/// its directory removed when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl RedisServer {
    /// Starts one; `extra` settings go after natter's.
    pub fn start(parent: &std::path::Path, extra: &[&str]) -> Result<RedisServer, String> {
        for attempt in 0..20 {
            // A port the kernel just gave out and took back: free unless
            // someone takes it in between (then try again).
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("a free port: {e}"))?
                .port();
            let dir = parent.join(format!("redis-{port}-{attempt}-{}", random_u32()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                ])
                .args(extra)
                .arg("--dir")
                .arg(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("redis-server (Debian's redis-server package): {e}"))?;
            let mut r = RedisServer { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if r.command(&["PING"]).is_some_and(|v| v == "PONG") {
                    return Ok(r);
                }
                if let Ok(Some(_)) = r.child.try_wait() {
                    break; // the port was taken: another one
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err("redis-server did not start".into())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `redis://127.0.0.1:PORT`, for natter's `--redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command on a new connection; its reply as text (a status, a
    /// bulk string, an integer; `None` for an error or anything else).
    pub fn command(&self, args: &[&str]) -> Option<String> {
        use std::net::TcpStream as Blocking;
        let mut c = Blocking::connect(("127.0.0.1", self.port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            let _ = write!(req, "${}\r\n{a}\r\n", a.len());
        }
        c.write_all(req.as_bytes()).ok()?;
        let mut r = BufReader::new(c);
        let mut head = String::new();
        r.read_line(&mut head).ok()?;
        let head = head.trim_end();
        match head.as_bytes().first()? {
            b'+' | b':' => Some(head[1..].to_string()),
            b'$' => {
                let n: usize = head[1..].parse().ok()?;
                let mut body = vec![0u8; n + 2];
                r.read_exact(&mut body).ok()?;
                body.truncate(n);
                String::from_utf8(body).ok()
            }
            _ => None,
        }
    }

    /// `INFO SECTION`'s fields, `name:value` a line.
    pub fn info(&self, section: &str) -> BTreeMap<String, String> {
        self.command(&["INFO", section])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub fn used_memory(&self) -> u64 {
        self.info("memory")
            .get("used_memory")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Calls of `cmd` and the microseconds Redis spent in them, from
    /// `INFO commandstats` (`cmdstat_evalsha:calls=N,usec=U,...`).
    pub fn command_stats(&self, cmd: &str) -> (u64, u64) {
        let all = self.info("commandstats");
        let Some(v) = all.get(&format!("cmdstat_{cmd}")) else {
            return (0, 0);
        };
        let field = |k: &str| {
            v.split(',')
                .find_map(|f| f.strip_prefix(k)?.strip_prefix('='))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (field("calls"), field("usec"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `GET PATH` on `addr`: the status, or `None` if there was no answer.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    use std::net::TcpStream as Blocking;
    let mut s = Blocking::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `GET /healthz` on `addr` answers 200 (a natter process with
/// `--redis` does once both its connections to Redis are ready), at most
/// `wait`.
pub fn wait_healthy(addr: SocketAddr, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if http_status(addr, "/healthz") == Some(200) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

/// The server's use of CPU and memory over a phase (from /proc).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerUsage {
    pub pid: u32,
    /// CPU seconds (utime + stime) from `Go` to `Done`.
    pub cpu_s: f64,
    /// The same, in user space and in the kernel.
    pub user_s: f64,
    pub sys_s: f64,
    pub cpu_s_per_million_deliveries: f64,
    pub rss_kb_at_go: u64,
    pub rss_kb_at_done: u64,
}

/// Measures a server between `Go` and `Done`.
pub struct ServerProbe {
    pid: u32,
    cpu_at_go: (f64, f64),
    pub usage: ServerUsage,
}

impl ServerProbe {
    pub fn new(pid: u32) -> ServerProbe {
        ServerProbe {
            pid,
            cpu_at_go: (0.0, 0.0),
            usage: ServerUsage {
                pid,
                ..ServerUsage::default()
            },
        }
    }

    pub fn hook(&mut self, h: Hook) {
        match h {
            Hook::Go => {
                self.cpu_at_go = self.cpu();
                self.usage.rss_kb_at_go = rss_kb(self.pid).unwrap_or(0);
            }
            Hook::Done => {
                let (u, s) = self.cpu();
                self.usage.user_s = u - self.cpu_at_go.0;
                self.usage.sys_s = s - self.cpu_at_go.1;
                self.usage.cpu_s = self.usage.user_s + self.usage.sys_s;
                self.usage.rss_kb_at_done = rss_kb(self.pid).unwrap_or(0);
            }
        }
    }

    fn cpu(&self) -> (f64, f64) {
        cpu_split(&format!("/proc/{}/stat", self.pid)).unwrap_or((0.0, 0.0))
    }

    /// The usage, with CPU per million deliveries of `stats`.
    pub fn finish(&self, stats: &Stats) -> ServerUsage {
        let mut u = self.usage.clone();
        let deliveries = (stats.received + stats.echo_received) as f64;
        u.cpu_s_per_million_deliveries = if deliveries > 0.0 {
            u.cpu_s / (deliveries / 1e6)
        } else {
            0.0
        };
        u
    }
}

/// One process of a `GroupProbe`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProcessUsage {
    /// What it is (`natter A`, `redis-server`).
    pub name: String,
    pub usage: ServerUsage,
    /// Its CPU time over the wall-clock time from `Go` to `Done`: 1.0 is
    /// one core busy all the time (more for a process with busy threads).
    pub busy: f64,
}

/// Measures several processes between `Go` and `Done` (natter processes
/// sharing one Redis, and the redis-server): each one's CPU and RSS, and
/// their sum.
pub struct GroupProbe {
    probes: Vec<(String, ServerProbe)>,
    go: Option<Instant>,
    wall_s: f64,
}

impl GroupProbe {
    pub fn new(procs: &[(String, u32)]) -> GroupProbe {
        GroupProbe {
            probes: procs
                .iter()
                .map(|(n, pid)| (n.clone(), ServerProbe::new(*pid)))
                .collect(),
            go: None,
            wall_s: 0.0,
        }
    }

    pub fn hook(&mut self, h: Hook) {
        match h {
            Hook::Go => self.go = Some(Instant::now()),
            Hook::Done => self.wall_s = self.go.map_or(0.0, |g| g.elapsed().as_secs_f64()),
        }
        for (_, p) in &mut self.probes {
            p.hook(h);
        }
    }

    /// Seconds from `Go` to `Done`.
    pub fn wall_s(&self) -> f64 {
        self.wall_s
    }

    /// Puts the sum (as `server`, its pid the first process's) and each
    /// process (as `processes`) into `s`, per million of its deliveries.
    pub fn finish(&self, s: &mut Summary) {
        let deliveries = (s.received + s.echo_received) as f64;
        let per_m = |cpu: f64| {
            if deliveries > 0.0 {
                cpu / (deliveries / 1e6)
            } else {
                0.0
            }
        };
        let mut total = ServerUsage::default();
        s.processes.clear();
        for (name, p) in &self.probes {
            let mut u = p.usage.clone();
            u.cpu_s_per_million_deliveries = per_m(u.cpu_s);
            if total.pid == 0 {
                total.pid = u.pid;
            }
            total.cpu_s += u.cpu_s;
            total.user_s += u.user_s;
            total.sys_s += u.sys_s;
            total.rss_kb_at_go += u.rss_kb_at_go;
            total.rss_kb_at_done += u.rss_kb_at_done;
            s.processes.push(ProcessUsage {
                name: name.clone(),
                busy: if self.wall_s > 0.0 {
                    u.cpu_s / self.wall_s
                } else {
                    0.0
                },
                usage: u,
            });
        }
        total.cpu_s_per_million_deliveries = per_m(total.cpu_s);
        s.server = Some(total);
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub proto: Proto,
    /// The clients spoke TLS (`--tls`).
    pub tls: bool,
    pub procs: u32,
    pub clients: u64,
    pub connected: u64,
    pub failed: u64,
    pub connect_s: f64,
    pub rooms: u32,
    pub senders: u32,
    pub rate: f64,
    pub seconds: f64,
    pub payload: usize,
    pub planned: u64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub delivery_ratio: f64,
    pub echo_expected: u64,
    pub echo_received: u64,
    /// Deliveries (to others and echoes) per second, from the start to the
    /// last delivery.
    pub deliveries_per_sec: f64,
    pub latency_ms: Latency,
    pub echo_latency_ms: Latency,
    /// With several servers: receivers on the sender's server, and on
    /// another one.
    pub latency_same_ms: Option<Latency>,
    pub latency_other_ms: Option<Latency>,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub gaps: u64,
    pub missing: u64,
    pub extra: u64,
    pub foreign: u64,
    pub misrouted: u64,
    pub disconnected: u64,
    /// Every message delivered exactly once, in order per sender, to every
    /// member it should reach.
    pub exactly_once_in_order: bool,
    pub errors: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub send_lag_max_ms: f64,
    pub loadgen_cpu_s: f64,
    /// The server's usage; with a `GroupProbe`, the sum over its processes.
    pub server: Option<ServerUsage>,
    /// With a `GroupProbe`: each process's usage.
    pub processes: Vec<ProcessUsage>,
    /// The latency histogram itself, for `NATTER_BENCH_DATA` (not in
    /// `--json`: that prints the figures above).
    #[serde(skip)]
    pub latency_hist: Hist,
}

impl Summary {
    pub fn new(proto: Proto, procs: u32, rooms: u32, spec: &PhaseSpec, st: &Stats) -> Summary {
        let deliveries = st.received + st.echo_received;
        let secs = st.last_recv_ns as f64 / 1e9;
        let ratio = if st.expected == 0 {
            1.0
        } else {
            st.received as f64 / st.expected as f64
        };
        let clean = st.duplicates == 0
            && st.out_of_order == 0
            && st.gaps == 0
            && st.missing == 0
            && st.extra == 0
            && st.misrouted == 0
            && st.received == st.expected
            && st.echo_received == st.echo_expected
            && st.sent == st.planned;
        Summary {
            proto,
            tls: false,
            procs,
            clients: st.clients,
            connected: st.connected,
            failed: st.failed,
            connect_s: st.connect_s,
            rooms,
            senders: spec.senders,
            rate: spec.rate,
            seconds: spec.seconds,
            payload: spec.payload,
            planned: st.planned,
            sent: st.sent,
            expected: st.expected,
            received: st.received,
            delivery_ratio: ratio,
            echo_expected: st.echo_expected,
            echo_received: st.echo_received,
            deliveries_per_sec: if secs > 0.0 {
                deliveries as f64 / secs
            } else {
                0.0
            },
            latency_ms: st.latency.summary(),
            echo_latency_ms: st.echo_latency.summary(),
            latency_same_ms: (st.latency_same.count() + st.latency_other.count() > 0)
                .then(|| st.latency_same.summary()),
            latency_other_ms: (st.latency_same.count() + st.latency_other.count() > 0)
                .then(|| st.latency_other.summary()),
            duplicates: st.duplicates,
            out_of_order: st.out_of_order,
            gaps: st.gaps,
            missing: st.missing,
            extra: st.extra,
            foreign: st.foreign,
            misrouted: st.misrouted,
            disconnected: st.disconnected,
            exactly_once_in_order: clean,
            errors: st.errors.clone(),
            closes: st.closes.clone(),
            send_lag_max_ms: st.send_lag_max_ns as f64 / 1e6,
            loadgen_cpu_s: st.cpu_s,
            server: None,
            processes: Vec::new(),
            latency_hist: st.latency.clone(),
        }
    }

    /// The one-line summary.
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        let mut s = format!(
            "{}{}: {}/{} clients, {} rooms, {} senders x {}/s for {}s: sent {}/{}, \
             delivered {}/{} (ratio {:.6}), {} deliveries/s, \
             latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}, {}",
            self.proto.name(),
            if self.tls { " over TLS" } else { "" },
            self.connected,
            self.clients,
            self.rooms,
            self.senders,
            self.rate,
            self.seconds,
            self.sent,
            self.planned,
            self.received,
            self.expected,
            self.delivery_ratio,
            si(self.deliveries_per_sec),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            if self.exactly_once_in_order {
                "exactly-once in order"
            } else {
                "VIOLATIONS"
            }
        );
        if let Some(srv) = &self.server {
            let _ = write!(
                s,
                ", server {:.2} CPU s ({:.2} per M deliveries), RSS {} MiB",
                srv.cpu_s,
                srv.cpu_s_per_million_deliveries,
                srv.rss_kb_at_done / 1024
            );
        }
        s
    }

    /// Everything else, one fact a line.
    pub fn details(&self) -> String {
        let mut s = String::new();
        let e = &self.echo_latency_ms;
        let _ = writeln!(
            s,
            "  connect: {} ready, {} failed, in {:.2} s ({} process{})",
            self.connected,
            self.failed,
            self.connect_s,
            self.procs,
            if self.procs == 1 { "" } else { "es" }
        );
        let _ = writeln!(
            s,
            "  echo (WebSocket senders' own messages): {}/{}, latency ms p50 {:.2} p99 {:.2} max {:.2}",
            self.echo_received, self.echo_expected, e.p50, e.p99, e.max
        );
        let _ = writeln!(
            s,
            "  order: {} duplicates, {} out of order, {} skipped, {} missing, {} extra, \
             {} misrouted, {} foreign",
            self.duplicates,
            self.out_of_order,
            self.gaps,
            self.missing,
            self.extra,
            self.misrouted,
            self.foreign
        );
        let _ = writeln!(
            s,
            "  {} disconnected during the run; errors {:?}; close codes {:?}",
            self.disconnected, self.errors, self.closes
        );
        let _ = writeln!(
            s,
            "  senders at most {:.2} ms behind schedule; load generator {:.2} CPU s",
            self.send_lag_max_ms, self.loadgen_cpu_s
        );
        if let Some(srv) = &self.server {
            let _ = writeln!(
                s,
                "  server pid {}: {:.3} CPU s over the run ({:.3} user, {:.3} kernel), \
                 {:.3} per million deliveries, RSS {} KiB at start, {} KiB at end",
                srv.pid,
                srv.cpu_s,
                srv.user_s,
                srv.sys_s,
                srv.cpu_s_per_million_deliveries,
                srv.rss_kb_at_go,
                srv.rss_kb_at_done
            );
        }
        s
    }
}

/// 1234567 -> "1.23M".
pub fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

// ---------------------------------------------------------------------------
// Running: in this process, or split across children
// ---------------------------------------------------------------------------

/// Processes needed for `clients` connections under the open-file limit.
pub fn procs_needed(clients: u32) -> u32 {
    let usable = open_file_limit().saturating_sub(FD_SPARE).max(100);
    (clients as usize).div_ceil(usable).max(1) as u32
}

/// One run as the arguments say. `child` makes the command that runs this
/// program again as a shard (the caller adds the arguments). `hook` is
/// called at `Go` and `Done`.
pub fn run(
    args: &Args,
    child: &dyn Fn() -> Command,
    hook: &mut dyn FnMut(Hook),
) -> Result<Summary, String> {
    let procs = if args.procs == 0 {
        procs_needed(args.clients)
    } else {
        args.procs
    };
    let spec = PhaseSpec::from_args(args);
    let mut probe = args.server_pid.map(ServerProbe::new);
    let mut hooks = |h: Hook| {
        if let Some(p) = probe.as_mut() {
            p.hook(h);
        }
        hook(h);
    };
    let stats = if procs <= 1 {
        let mut s = Session::connect(args, 0, 1, random_u32())?;
        let stats = s.phase(&spec, &mut hooks);
        s.close();
        stats
    } else {
        run_children(args, procs, child, &mut hooks)?
    };
    let mut sum = Summary::new(args.proto, procs, args.rooms.max(1), &spec, &stats);
    sum.tls = args.tls;
    sum.server = probe.map(|p| p.finish(&stats));
    Ok(sum)
}

/// Kills the children we started if the run ends early.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
            shards_running(c.id(), false);
        }
    }
}

/// The process ids of the shards running now (for a watchdog that must
/// stop everything a run started).
static SHARDS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn shards_running(pid: u32, running: bool) {
    if let Ok(mut v) = SHARDS.lock() {
        v.retain(|p| *p != pid);
        if running {
            v.push(pid);
        }
    }
}

/// The shards this process has running now.
pub fn shard_pids() -> Vec<u32> {
    SHARDS.lock().map(|v| v.clone()).unwrap_or_default()
}

fn run_children(
    args: &Args,
    procs: u32,
    child: &dyn Fn() -> Command,
    hook: &mut dyn FnMut(Hook),
) -> Result<Stats, String> {
    let run_id = random_u32();
    let (tx, rx) = mpsc::channel::<(u32, String)>();
    let mut children = Children(Vec::new());
    let mut stdins: Vec<ChildStdin> = Vec::new();
    for i in 0..procs {
        let mut cmd = child();
        cmd.args(args.child_argv(i, procs, run_id))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut ch = cmd.spawn().map_err(|e| format!("spawn shard {i}: {e}"))?;
        shards_running(ch.id(), true);
        stdins.push(ch.stdin.take().ok_or("no stdin")?);
        let out = ch.stdout.take().ok_or("no stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send((i, line)).is_err() {
                    break;
                }
            }
            let _ = tx.send((i, "exit".to_string()));
        });
        children.0.push(ch);
    }
    drop(tx);
    // Every shard connected: collect who failed, then start them together.
    let mut failed: Vec<String> = Vec::new();
    let mut ready = 0;
    let wait = Duration::from_secs_f64(args.connect_timeout) + SETTLE_MAX + CLOSE_WAIT;
    while ready < procs {
        let (i, line) = rx
            .recv_timeout(wait)
            .map_err(|_| "a shard never got ready".to_string())?;
        let mut parts = line.split_whitespace();
        match parts.next() {
            Some("ready") => {
                ready += 1;
                if let Some(list) = parts.nth(1).filter(|l| *l != "-") {
                    failed.push(list.to_string());
                }
            }
            Some("exit") => return Err(format!("shard {i} exited before it was ready")),
            _ => eprintln!("shard {i}: {line}"),
        }
    }
    hook(Hook::Go);
    let start = epoch_ns() + 20_000_000;
    let list = if failed.is_empty() {
        "-".to_string()
    } else {
        failed.join(",")
    };
    for s in &mut stdins {
        writeln!(s, "go {start} {list}").map_err(|e| format!("go: {e}"))?;
        s.flush().map_err(|e| format!("go: {e}"))?;
    }
    let mut total = Stats::default();
    let mut results = 0;
    let mut reported = vec![false; procs as usize];
    let wait = Duration::from_secs_f64(args.seconds + args.drain) + Duration::from_secs(60);
    while results < procs {
        let (i, line) = rx
            .recv_timeout(wait)
            .map_err(|_| "a shard never reported".to_string())?;
        if let Some(json) = line.strip_prefix("result ") {
            let st: Stats =
                serde_json::from_str(json).map_err(|e| format!("shard {i} result: {e}"))?;
            total.merge(&st);
            results += 1;
            reported[i as usize] = true;
        } else if line == "exit" {
            if !reported[i as usize] {
                return Err(format!("shard {i} exited without a result"));
            }
        } else {
            eprintln!("shard {i}: {line}");
        }
    }
    hook(Hook::Done);
    drop(stdins);
    for c in &mut children.0 {
        let _ = c.wait();
    }
    Ok(total)
}

/// A child shard: connect, wait for `go`, run, print `result JSON`, close.
pub fn shard_main(args: &Args) -> i32 {
    let Some((i, k)) = args
        .shard
        .as_deref()
        .and_then(|s| s.split_once('/'))
        .and_then(|(i, k)| Some((i.parse::<u32>().ok()?, k.parse::<u32>().ok()?)))
    else {
        eprintln!("loadgen: --shard wants I/K");
        return 2;
    };
    let run_id = args.run_id.unwrap_or_else(random_u32);
    let mut s = match Session::connect(args, i, k, run_id) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadgen shard {i}/{k}: {e}");
            return 2;
        }
    };
    let stats = s.phase(&PhaseSpec::from_args(args), &mut |_| {});
    match serde_json::to_string(&stats) {
        Ok(json) => {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "result {json}");
            let _ = out.flush();
        }
        Err(e) => eprintln!("loadgen shard {i}/{k}: {e}"),
    }
    s.close();
    0
}

/// Runs this very program again (for shards).
pub fn self_command() -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "loadgen".into());
    Command::new(exe)
}

/// The first argument with which a program that embeds this load generator
/// as a module (the fanout bench, bench-compare) is run again as a shard.
const EMBEDDED_SHARD: &str = "loadgen-shard";

/// For a program that embeds this load generator: itself again, as a shard.
pub fn embedded_shard_command() -> Command {
    let mut c = self_command();
    c.arg(EMBEDDED_SHARD);
    c
}

/// For a program that embeds this load generator, first thing in `main`:
/// when it was started as a shard, runs the shard and exits.
pub fn run_if_embedded_shard() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(EMBEDDED_SHARD) {
        let a = Args::parse_from(std::iter::once("loadgen".to_string()).chain(argv[2..].to_vec()));
        std::process::exit(shard_main(&a));
    }
}

/// Pins this process (and the shards it starts later) to core 1, the server
/// under test going on core 0. Returns whether `taskset` could.
pub fn pin_to_core_1() -> bool {
    Command::new("taskset")
        .args(["-a", "-c", "-p", "1", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A benchmark driver's run: shards are the driver itself, the server with
/// process id `server_pid` is measured from `Go` to `Done`, and a load
/// generator error ends the benchmark.
pub fn run_measured(a: &mut Args, server_pid: u32) -> Summary {
    a.server_pid = Some(server_pid);
    run(a, &embedded_shard_command, &mut |_| {}).unwrap_or_else(|e| panic!("loadgen: {e}"))
}

// ---------------------------------------------------------------------------
// Machine-readable results (`NATTER_BENCH_DATA=DIR`), for the pictures
// ---------------------------------------------------------------------------

/// The quantiles a latency distribution is written at: 0.001, every
/// hundredth from 0.01 to 0.99, then 0.995, 0.999, 0.9999 and 1 (the
/// largest value recorded): 104 points, enough for a CDF on a log axis.
pub const CDF_QUANTILES: [f64; 104] = {
    let mut q = [0.0; 104];
    q[0] = 0.001;
    let mut i = 1;
    while i < 100 {
        q[i] = i as f64 / 100.0;
        i += 1;
    }
    q[100] = 0.995;
    q[101] = 0.999;
    q[102] = 0.9999;
    q[103] = 1.0;
    q
};

/// The version written in every data file's `schema` field.
pub const BENCH_DATA_SCHEMA: &str = "natter-bench-data/1";

/// The directory `NATTER_BENCH_DATA` names, if it is set and not empty.
/// Without it a benchmark writes nothing and prints what it always did.
///
/// With it, `benches/fanout.rs` writes `DIR/fanout.json` and
/// `examples/bench_compare.rs` writes `DIR/compare-ws.json` at the end of
/// the run (replacing a file of the same name), in this schema:
///
/// ```text
/// {
///   "schema": "natter-bench-data/1",
///   "program": "fanout" | "bench_compare",
///   "command": "the program's argv, joined by spaces",
///   "commit": "git rev-parse --short HEAD" (+ "-dirty" with changes),
///   "date": "2026-11-22T10:00:00Z" (UTC, when the run started),
///   "cpus": 2, "kernel": "uname -r",
///   "loadavg_start": "/proc/loadavg at the start", "loadavg_end": "... at the end",
///   "p99_limit_ms": 250,                         the ladders' p99 limit
///   fanout only: "full": true (false: the smoke sizes of `cargo test`),
///     "natter_bin": "path", "store": "file" | ":memory:", "pinned": true,
///   bench_compare only: "natter_bin", "node": "v22.x", "ws": "8.23.0", "pinned",
///   "runs": [ one per scenario run that measured latency:
///     { "scenario": "1" | "3" | "5",  "server": "natter" | "ws",
///       "proto": "line" | "ws",  "clients": 1000, "connected": 1000,
///       "rooms": 1, "senders": 20, "rate": 5.0 (msg/s per sender),
///       "seconds": 10.0, "deliveries_per_sec": 99900.0,
///       "complete": true (every message exactly once, in order; nobody dropped),
///       "server_cpu_s_per_m": 5.3 (server CPU s per million deliveries),
///       "server_rss_kib": 16200,
///       "latency_ms": { "count": 1998000, "p50": 2.4, "p90": 3.9,
///                       "p99": 5.6, "p999": 8.1, "max": 12.3,
///                       "cdf": [[0.001, 0.31], [0.01, 0.52], ..., [1.0, 12.3]] } } ],
///   "steps": [ one per step of a rate ladder, in the order run:
///     { "scenario": "2" (fanout) | "sat" (bench_compare), "server", "proto",
///       "clients": 1000, "senders": 50, "rate": 4000.0 (offered msg/s, all senders),
///       "seconds": 2.0, "deliveries_per_sec": 3990000.0,
///       "p50_ms": 3.1, "p99_ms": 25.0, "max_ms": 40.2,
///       "complete": true, "held": true (complete and p99 under the limit),
///       "server_cpu_s_per_m": 0.18 } ]
/// }
/// ```
///
/// `cdf` is `[q, latency in ms]` at each of `CDF_QUANTILES`, read from the
/// load generator's histogram (`Hist::cdf_ms`); the last point is the max.
pub fn bench_data_dir() -> Option<PathBuf> {
    std::env::var_os("NATTER_BENCH_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
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
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// A data file's opening fields: the run's command, commit, date, machine
/// and load average. Call it when the run starts.
pub fn bench_meta(program: &str) -> serde_json::Map<String, serde_json::Value> {
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
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_string(), v);
    };
    put("schema", BENCH_DATA_SCHEMA.into());
    put("program", program.into());
    put(
        "command",
        std::env::args().collect::<Vec<_>>().join(" ").into(),
    );
    put("commit", commit.into());
    put(
        "date",
        command_output("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).into(),
    );
    put("cpus", online_cpus().into());
    put("kernel", read("/proc/sys/kernel/osrelease").into());
    put("loadavg_start", read("/proc/loadavg").into());
    m
}

/// A latency histogram as a data file holds it, in milliseconds.
pub fn latency_json(h: &Hist) -> serde_json::Value {
    let l = h.summary();
    serde_json::json!({
        "count": l.count,
        "p50": l.p50,
        "p90": l.p90,
        "p99": l.p99,
        "p999": l.p999,
        "max": l.max,
        "cdf": h.cdf_ms(),
    })
}

/// One entry of `runs`: scenario `scenario` on server `server`.
pub fn run_json(scenario: &str, server: &str, s: &Summary) -> serde_json::Value {
    let usage = s.server.clone().unwrap_or_default();
    serde_json::json!({
        "scenario": scenario,
        "server": server,
        "proto": s.proto.name(),
        "clients": s.clients,
        "connected": s.connected,
        "rooms": s.rooms,
        "senders": s.senders,
        "rate": s.rate,
        "seconds": s.seconds,
        "deliveries_per_sec": s.deliveries_per_sec,
        "complete": s.passed(),
        "server_cpu_s_per_m": usage.cpu_s_per_million_deliveries,
        "server_rss_kib": usage.rss_kb_at_done,
        "latency_ms": latency_json(&s.latency_hist),
    })
}

/// One entry of `steps`: a ladder's step at `rate` msg/s offered in all;
/// `held` says whether it counted (complete, p99 under the limit).
pub fn step_json(
    scenario: &str,
    server: &str,
    rate: f64,
    s: &Summary,
    held: bool,
) -> serde_json::Value {
    let l = &s.latency_ms;
    serde_json::json!({
        "scenario": scenario,
        "server": server,
        "proto": s.proto.name(),
        "clients": s.clients,
        "senders": s.senders,
        "rate": rate,
        "seconds": s.seconds,
        "deliveries_per_sec": s.deliveries_per_sec,
        "p50_ms": l.p50,
        "p99_ms": l.p99,
        "max_ms": l.max,
        "complete": s.passed(),
        "held": held,
        "server_cpu_s_per_m": s.server.as_ref().map_or(0.0, |u| u.cpu_s_per_million_deliveries),
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

/// Writes `doc` (with `loadavg_end` added) as `dir/file`, pretty-printed;
/// says where on stderr. An error is printed, not fatal: the run's figures
/// are on stdout anyway.
pub fn write_bench_data(
    dir: &std::path::Path,
    file: &str,
    mut doc: serde_json::Map<String, serde_json::Value>,
) {
    let end = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    doc.insert("loadavg_end".into(), end.trim().into());
    let path = dir.join(file);
    let text = pretty_json(&serde_json::Value::Object(doc));
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text + "\n")) {
        Ok(()) => eprintln!("bench data: wrote {}", path.display()),
        Err(e) => eprintln!("bench data: {}: {e}", path.display()),
    }
}

fn main() {
    let args = Args::parse();
    if args.shard.is_some() {
        std::process::exit(shard_main(&args));
    }
    if args.clients == 0 || args.payload > 4000 {
        eprintln!("loadgen: want at least one client and --payload of at most 4000");
        std::process::exit(2);
    }
    match run(&args, &self_command, &mut |_| {}) {
        Ok(sum) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&sum).unwrap_or_default());
            } else {
                println!("{}", sum.line());
                print!("{}", sum.details());
            }
            let ok = sum.exactly_once_in_order && sum.failed == 0;
            std::process::exit(if ok { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    }
}

impl Summary {
    /// Every message delivered once, in order, and every client stayed.
    pub fn passed(&self) -> bool {
        self.exactly_once_in_order && self.failed == 0 && self.disconnected == 0
    }

    /// The figures every scenario line ends with.
    pub fn describe(&self) -> String {
        let s = self;
        let l = &s.latency_ms;
        let mut t = format!(
        "{} deliveries/s, ratio {:.6}, latency ms p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}, {}",
        si(s.deliveries_per_sec),
        s.delivery_ratio,
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        if s.passed() {
            "exactly-once in order".to_string()
        } else {
            format!(
                "FAILED ({} failed to connect, {} disconnected, {} missing, {} duplicates, \
                 {} out of order, {} skipped, errors {:?})",
                s.failed,
                s.disconnected,
                s.missing,
                s.duplicates,
                s.out_of_order,
                s.gaps,
                s.errors
            )
        }
    );
        if let Some(srv) = &s.server {
            t.push_str(&format!(
            "; server {:.2} CPU s ({:.2} user + {:.2} kernel) = {:.2} s per M deliveries, RSS {:.1} MiB",
            srv.cpu_s,
            srv.user_s,
            srv.sys_s,
            srv.cpu_s_per_million_deliveries,
            srv.rss_kb_at_done as f64 / 1024.0
        ));
        }
        if let (Some(a), Some(b)) = (&s.latency_same_ms, &s.latency_other_ms) {
            t.push_str(&format!(
                "; receivers on the sender's server: {} deliveries, p50 {:.2} p99 {:.2} max {:.2} \
                 ms; on another server: {} deliveries, p50 {:.2} p99 {:.2} max {:.2} ms",
                a.count, a.p50, a.p99, a.max, b.count, b.p50, b.p99, b.max
            ));
        }
        if s.processes.len() > 1 {
            let each: Vec<String> = s
                .processes
                .iter()
                .map(|p| {
                    format!(
                        "{} {:.2} CPU s ({:.2} user + {:.2} kernel, {:.0}% of a core) = {:.2} s \
                         per M, RSS {:.1} MiB",
                        p.name,
                        p.usage.cpu_s,
                        p.usage.user_s,
                        p.usage.sys_s,
                        p.busy * 100.0,
                        p.usage.cpu_s_per_million_deliveries,
                        p.usage.rss_kb_at_done as f64 / 1024.0
                    )
                })
                .collect();
            t.push_str(&format!(" [{}]", each.join("; ")));
        }
        t.push_str(&format!("; load generator {:.2} CPU s", s.loadgen_cpu_s));
        t
    }
}
