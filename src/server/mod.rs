//! The imperative shell: the only code that touches sockets.
//!
//! One thread, one `mio::Poll`, a `Slab` of connections (`Conns`). Each
//! iteration:
//!
//! 1. `poll` sleeps until a socket is ready or the earliest timer is due;
//! 2. each event updates the connection's remembered readiness, and a
//!    readable connection is read until `WouldBlock` (edge-triggered: no new
//!    event comes for data we leave unread), within a per-wake-up budget;
//! 3. the bytes go through the connection's codec into the hub, which answers
//!    with effects, and asks the store for what it needs (`persist` carries
//!    that out and hands the answers back);
//! 4. `before_sleep`: expired timers, then the hub's batch of the turn's
//!    messages is stored, then the effects are rendered once per wire
//!    format and queued, then every connection with output is flushed with
//!    one vectored write, then closed connections are reaped.
//!
//! Nothing is written to a socket before the commit: persist, then send
//! (the hub releases no effect before the store reports its batch stored).
//!
//! This file is the loop itself: `run`, reading (`on_readable`), phase
//! changes (`become_`), the end of a turn (`before_sleep`), timers, and
//! closing (`reap`). The rest of the shell:
//!
//! - `accept`: accepting, `--max-per-ip`, the connection cap;
//! - `conns`: the open connections, their output and the queued total;
//! - `line`, `http`, `ws`: the shell halves of the three protocols;
//! - `fanout`: effects rendered and queued, flushes, and the output
//!   pressure rule (`pressure`, pure) applied;
//! - `deadlines`: the connection timers' rules, pure, tested in virtual time;
//! - `persist`: the hub's store requests carried out, answers handed back;
//! - `stream`, `tls`: TLS on the same port (a first byte `0x16` starts a
//!   session; `stream` is every connection's `Read`/`Write`, plain or TLS);
//! - `shutdown`: SIGINT and SIGTERM (SIGHUP reloads the certificate);
//! - `metrics`: the loop's counters, `/metrics` and `/api/stats`;
//! - `os`: socket options, `/proc`, the wall clock, randomness.
//!
//! Read next: `conn` (a connection's phases), `outbox`, `timers`.

mod accept;
mod conn;
mod conns;
mod deadlines;
mod fanout;
mod helper;
mod http;
mod line;
mod metrics;
mod os;
mod outbox;
mod per_ip;
mod persist;
mod pressure;
mod redis;
mod shutdown;
mod stream;
mod timers;
mod tls;
mod ws;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use log::{debug, info, trace};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook_mio::v1_0::Signals;

use crate::config::Config;
use crate::config::Registration;
use crate::hub::accounts::{AccountsConfig, Hello, Peer};
use crate::hub::error::ErrorCode;
use crate::hub::event::{ClientKind, Effect, LeaveReason};
use crate::hub::limits::RateLimit;
use crate::hub::names::RoomName;
use crate::hub::port::StoreOp;
use crate::hub::{Hub, HubConfig};
use crate::proto::line::LineDecoder;
use crate::proto::sniff::{self, Sniff};
use crate::store::sqlite::{Checkpointer, SqliteStore};
use crate::store::Store;
use conn::{describe, Close, ConnId, HttpState, Kind, Phase};
use conns::Conns;
use helper::Helper;
use metrics::Counters;
use os::{random_hex, reuse_port_listener, seed, wall_clock};
use per_ip::PerIp;
use pressure::Limits;
use timers::{Due, LoopTimer, TimerKind, Timers};

/// Listener tokens sit at the top of the token space; slab keys never get there.
const LISTENER_BASE: usize = usize::MAX - 1024;
/// SIGINT and SIGTERM arrive as readiness on this token.
const SIGNALS: usize = usize::MAX;
/// The helper thread's finished jobs arrive as readiness on this token
/// (its `mio::Waker`), just below the listeners'.
const HELPER: usize = LISTENER_BASE - 1;
/// The two Redis connections (`--redis`), below the helper's.
const REDIS_CMD: usize = LISTENER_BASE - 2;
const REDIS_SUB: usize = LISTENER_BASE - 3;
/// Bytes read from one connection per wake-up before others get their turn.
const READ_BUDGET: usize = 256 * 1024;
/// The shared read buffer: every read lands here first.
const SCRATCH: usize = 64 * 1024;
/// How long a closing connection waits for the peer's EOF, and a dropped
/// slow consumer for its socket to take more of its goodbye.
const LINGER: Duration = Duration::from_secs(2);

/// The server: its listeners, its connections, the hub, the store and the
/// loop that drives them. `bind`, then `run`.
pub struct Server {
    poll: Poll,
    listeners: Vec<TcpListener>,
    conns: Conns,
    hub: Hub,
    /// Where history lives; the hub asks through its port (see `persist`).
    store: Box<dyn Store>,
    /// Store operations taken from the hub, reused between turns.
    store_ops: Vec<StoreOp>,
    timers: Timers,
    config: Config,
    scratch: Vec<u8>,
    /// Effects taken from the hub, reused between iterations.
    effects: Vec<Effect>,
    /// Connections that stopped within their read budget, still readable.
    backlog: Vec<ConnId>,
    /// Chat connections that got nothing of a turn's input budget: they are
    /// read first next turn, so one heavy sender cannot starve the others.
    starved: Vec<ConnId>,
    /// Connections to remove before sleeping, and why.
    doomed: Vec<(ConnId, LeaveReason)>,
    /// Chat connections with input waiting while input is paused.
    held: Vec<ConnId>,
    /// Connections over half of `--max-outbound` after a flush (see
    /// `pressure`): watched until they are back under it.
    watch: Vec<ConnId>,
    /// Connections written to (or due to be) in this turn's flushes.
    turn_recipients: usize,
    /// Chat input is paused since then: readers are behind.
    paused_since: Option<Instant>,
    /// Whose input the pause holds: the senders into the rooms whose
    /// readers are behind, or everyone (the total is over its mark).
    pause_scope: Option<HashSet<RoomName>>,
    /// Connections whose flush stopped at `WRITE_BUDGET`: flushed again
    /// next turn.
    more_output: Vec<ConnId>,
    /// How many recipients the turn that started the pause wrote to.
    pause_population: usize,
    /// A review of the pause is due on the timer heap.
    review_armed: bool,
    /// Chat input read in this turn, against `pressure::turn_budget`.
    turn_input: usize,
    /// Time spent starting TLS sessions in this turn, against
    /// `tls::HANDSHAKE_BUDGET`.
    turn_handshakes: Duration,
    /// Connections whose ClientHello waits for the next turn's handshake
    /// budget (its bytes stay in their sniff buffer).
    tls_deferred: Vec<ConnId>,
    limits: Limits,
    per_ip: PerIp,
    counters: Counters,
    /// The OS's randomness, for session tokens.
    urandom: Option<File>,
    /// `--max-connections`, or what the open-file limit allows.
    max_connections: usize,
    /// Connections accepted over the cap, waiting to be told so.
    refusing: usize,
    /// The origin of image URLs in the line protocol.
    public_url: std::rc::Rc<str>,
    /// The certificate new TLS sessions get, if the port speaks TLS.
    tls: Option<tls::TlsState>,
    /// The shared store, with `--redis` (see `redis`).
    redis: Option<redis::Redis>,
    /// When `redis` wants its `tick` next.
    redis_due: Option<Instant>,
    signals: Signals,
    /// Set by SIGINT/SIGTERM: the time by which the loop exits regardless.
    shutdown_by: Option<Instant>,
    /// Accepting is paused until then (out of file descriptors).
    accept_paused: Option<Instant>,
    /// The slow-jobs thread (SQLite checkpoints), see `helper`.
    helper: Helper,
    /// WAL pages the latest checkpoint copied into the database: the next
    /// one is due when the WAL has grown well past them (see `persist`).
    wal_copied: u32,
    /// When the store was last asked whether `natter accounts` changed it.
    accounts_checked: Option<Instant>,
    /// When messages were last put in the search index (see `persist`).
    indexed_at: Instant,
    /// This turn's time, read once when `poll` returns (see `run`).
    now: Instant,
    /// The same moment on the wall clock, for the hub (message times,
    /// session deadlines).
    wall: crate::hub::Now,
}

impl Server {
    /// Binds every `--listen` address (shared with other processes under
    /// `--reuse-port`); fails before anything is served.
    pub fn bind(config: Config) -> io::Result<Server> {
        let default_room = RoomName::parse(&config.default_room).map_err(|e| {
            io::Error::new(
                ErrorKind::InvalidInput,
                format!("--default-room: {}", e.message),
            )
        })?;
        let max_per_ip = config.max_per_ip;
        let limits = Limits {
            max_outbound: config.max_outbound,
            max_total: config.max_outbound_total,
        };
        let max_connections = accept::connection_cap(&config);
        info!("at most {max_connections} connections");
        let mut urandom = File::open("/dev/urandom").ok();
        let store = SqliteStore::open(&config.db, || random_hex(&mut urandom, 8))
            .map_err(|e| io::Error::other(format!("--db {}: {}", config.db, e.0)))?;
        info!("history in {} (store {})", config.db, store.store_id());
        let checkpointer = Checkpointer::open(&config.db)
            .map_err(|e| io::Error::other(format!("--db {}: {}", config.db, e.0)))?;
        let tls = tls::TlsState::from_config(&config)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("TLS: {e}")))?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), Token(HELPER))?;
        let helper = Helper::start(checkpointer, waker)?;
        let signals = shutdown::listen_for_signals(&poll)?;
        let mut listeners = Vec::new();
        for (i, addr) in config.listen.iter().enumerate() {
            let listener = if config.reuse_port {
                reuse_port_listener(*addr)
            } else {
                TcpListener::bind(*addr)
            };
            let mut listener = listener
                .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
            poll.registry().register(
                &mut listener,
                Token(LISTENER_BASE + i),
                Interest::READABLE,
            )?;
            listeners.push(listener);
        }
        let public_url: std::rc::Rc<str> = match (&config.public_url, listeners.first()) {
            (Some(url), _) => url.trim_end_matches('/').into(),
            (None, Some(l)) if tls.is_some() => format!("https://{}", l.local_addr()?).into(),
            (None, Some(l)) => format!("http://{}", l.local_addr()?).into(),
            (None, None) => "http://localhost".into(),
        };
        let mut store = store;
        let state = store
            .load_state()
            .map_err(|e| io::Error::other(format!("--db {}: {}", config.db, e.0)))?;
        info!(
            "{} accounts, {} rooms with settings",
            state.accounts.len(),
            state.rooms.len()
        );
        let mut hub = Hub::new(
            HubConfig {
                default_room,
                history: config.history,
                max_message: config.max_message,
                max_line: config.max_line,
                rate: RateLimit {
                    rate: config.rate,
                    burst: config.burst,
                },
                resume_grace_ms: config.resume_grace * 1000,
                max_ws_message: config.max_ws_message,
                max_image: config.max_image,
                history_per_turn: config.max_outbound,
                edit_window_ms: config.edit_window.saturating_mul(1000),
                accounts: AccountsConfig {
                    require_login: config.require_login,
                    registration_open: config.registration == Registration::Open,
                    admins: config
                        .admin
                        .iter()
                        .map(|a| a.to_ascii_lowercase())
                        .collect(),
                    token_ms: config.login_days.saturating_mul(24 * 3600 * 1000),
                    allow_plaintext: config.allow_plaintext_passwords,
                },
            },
            store.store_id().to_string(),
            seed(),
        );
        if config.redis.is_none() {
            // With --redis they are Redis's, read once connected.
            hub.set_accounts(wall_clock(), state.accounts, state.tokens);
            hub.set_rooms(state.rooms);
        }
        let redis = match &config.redis {
            Some(url) => {
                let url = crate::store::redis::url::RedisUrl::parse(url).map_err(|e| {
                    io::Error::new(ErrorKind::InvalidInput, format!("--redis: {e}"))
                })?;
                let proc_id = random_hex(&mut urandom, 8);
                if proc_id.is_empty() {
                    return Err(io::Error::other(
                        "--redis: no randomness to name this process",
                    ));
                }
                info!("sharing the chat through Redis at {url} as process {proc_id}");
                hub.share();
                let tokens = redis::Tokens {
                    cmd: Token(REDIS_CMD),
                    sub: Token(REDIS_SUB),
                };
                let keep = usize::try_from(config.redis_keep).unwrap_or(usize::MAX);
                let grace_ms = config.resume_grace.saturating_mul(1000);
                Some(redis::Redis::new(
                    url,
                    proc_id,
                    keep,
                    grace_ms,
                    tokens,
                    seed(),
                ))
            }
            None => None,
        };
        Ok(Server {
            poll,
            listeners,
            conns: Conns::new(),
            hub,
            store: Box::new(store),
            store_ops: Vec::new(),
            timers: Timers::default(),
            config,
            scratch: vec![0; SCRATCH],
            effects: Vec::new(),
            backlog: Vec::new(),
            starved: Vec::new(),
            doomed: Vec::new(),
            held: Vec::new(),
            watch: Vec::new(),
            turn_recipients: 0,
            paused_since: None,
            pause_scope: None,
            more_output: Vec::new(),
            pause_population: 0,
            review_armed: false,
            turn_input: 0,
            turn_handshakes: Duration::ZERO,
            tls_deferred: Vec::new(),
            limits,
            per_ip: PerIp::new(max_per_ip),
            counters: Counters::default(),
            urandom,
            max_connections,
            refusing: 0,
            public_url,
            tls,
            redis,
            redis_due: Some(Instant::now()),
            signals,
            shutdown_by: None,
            accept_paused: None,
            helper,
            wal_copied: 0,
            accounts_checked: None,
            indexed_at: Instant::now(),
            now: Instant::now(),
            wall: wall_clock(),
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.listeners.iter().map(|l| l.local_addr()).collect()
    }

    /// Runs the loop until a shutdown is over (`Ok`) or `poll` fails.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if self.shutdown_over(now) {
                return Ok(());
            }
            let timeout = if self.backlog.is_empty()
                && self.tls_deferred.is_empty()
                && self.starved.is_empty()
                && self.more_output.is_empty()
            {
                let mut t = self.timers.timeout(now);
                if let Some(due) = self.redis_due {
                    let d = due.saturating_duration_since(now);
                    t = Some(t.map_or(d, |t| t.min(d)));
                }
                if let Some(by) = self.shutdown_by {
                    t = Some(t.map_or(by - now, |t| t.min(by - now)));
                }
                t
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            // The turn's time, read once: everything this turn decides or
            // stamps (timers, deadlines, the hub's clock) uses it.
            self.now = Instant::now();
            self.wall = wall_clock();
            let n_events = events.iter().count();
            self.counters.loop_iterations += 1;
            self.counters.poll_events += n_events as u64;
            trace!(
                "wake-up {}: {n_events} events (timeout {timeout:?})",
                self.counters.loop_iterations
            );
            self.turn_input = 0;
            self.turn_handshakes = Duration::ZERO;
            self.turn_recipients = 0;
            self.accounts_upkeep();
            self.redis_tick();
            for id in std::mem::take(&mut self.more_output) {
                self.conns.mark_dirty(id);
            }
            // Connections left readable last turn go first (those that got
            // nothing of the turn's input budget before those that did),
            // so a busy sender cannot keep the others waiting turn after turn.
            let mut again = std::mem::take(&mut self.starved);
            again.append(&mut self.backlog);
            for id in again {
                self.on_readable(id);
                self.persist();
            }
            self.resume_deferred_tls();
            for event in events.iter() {
                let token = event.token().0;
                if token == SIGNALS {
                    self.on_signal();
                    continue;
                }
                if token == HELPER {
                    self.on_helper();
                    continue;
                }
                if token == REDIS_CMD || token == REDIS_SUB {
                    self.on_redis(Token(token));
                    self.persist();
                    continue;
                }
                if token >= LISTENER_BASE {
                    self.accept(token - LISTENER_BASE);
                    continue;
                }
                let Some(conn) = self.conns.at_token(token) else {
                    continue; // a spurious event for a slot already reaped
                };
                trace!(
                    "  {} {}: readable={} writable={} read_closed={} error={}",
                    conn.id,
                    conn.peer,
                    event.is_readable(),
                    event.is_writable(),
                    event.is_read_closed(),
                    event.is_error()
                );
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.readable = true;
                }
                let mut flush = false;
                if event.is_writable() || event.is_write_closed() {
                    conn.writable = true;
                    flush = !conn.outbox.is_empty() || conn.stream.pending();
                }
                let (id, readable) = (conn.id, conn.readable);
                if flush {
                    self.conns.mark_dirty(id);
                }
                if readable {
                    self.on_readable(id);
                    self.persist();
                }
            }
            self.before_sleep();
        }
    }

    /// Reads until `WouldBlock`, the read budget, or the end of the stream.
    /// Chat input (a line or WebSocket client's) is read only while input
    /// is not paused and within the turn's budget (see `pressure`); a
    /// connection left with input waiting is read on a later turn.
    fn on_readable(&mut self, id: ConnId) {
        let mut budget = READ_BUDGET;
        let mut got_some = false;
        loop {
            let turn_budget = self.turn_budget();
            let paused = self.paused_since.is_some();
            let high = self.limits.high();
            let now = self.now;
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            if matches!(conn.close, Some(Close::AfterFlush | Close::Doomed)) {
                return; // ignore input until our reply is out
            }
            // Input of a connection on its way out is read and thrown away.
            let lingering = matches!(conn.close, Some(Close::Lingering | Close::Dropping));
            let chat = !lingering && matches!(conn.phase, Phase::Line { .. } | Phase::Ws(_));
            let mut want = self.scratch.len();
            if chat {
                // Its own output is backed up: its requests wait until the
                // socket has taken that (a few bytes of `/history` must not
                // queue pages without end); or its room's readers are.
                let held = conn.outbox.len() > high
                    || paused
                        && match &self.pause_scope {
                            None => true,
                            Some(rooms) => self
                                .hub
                                .rooms_of(id.client())
                                .iter()
                                .any(|r| rooms.contains(r)),
                        };
                if held {
                    if !conn.held {
                        conn.held = true;
                        conn.held_since.get_or_insert(now);
                        self.held.push(id);
                    }
                    return;
                }
                want = want.min(turn_budget.saturating_sub(self.turn_input));
                if want == 0 {
                    if got_some {
                        self.backlog.push(id);
                    } else {
                        self.starved.push(id);
                    }
                    return;
                }
            }
            let res = conn.stream.read(&mut self.scratch[..want]);
            if conn.stream.is_tls() {
                // The handshake may have moved on, or finished.
                self.after_tls_read(id);
            }
            let Some(conn) = self.conns.get_mut(id) else {
                return;
            };
            match res {
                Ok(0) => {
                    trace!("  {id}: end of stream");
                    self.on_eof(id);
                    return;
                }
                Ok(n) => {
                    trace!("  {id}: read {n} bytes");
                    if chat {
                        self.turn_input += n;
                        got_some = true;
                    }
                    if !lingering {
                        conn.last_input = now;
                        self.on_bytes(id, n);
                    }
                    self.counters.bytes_in += n as u64;
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        self.backlog.push(id);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    trace!("  {id}: read would block");
                    conn.readable = false;
                    return;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("read {id}: {e}");
                    self.counters.socket_error(&e);
                    self.doom(id, LeaveReason::Disconnect);
                    return;
                }
            }
        }
    }

    /// `n` fresh bytes sit in `scratch`: hand them to the connection's phase.
    fn on_bytes(&mut self, id: ConnId, n: usize) {
        let scratch = std::mem::take(&mut self.scratch);
        let data = &scratch[..n];
        let verdict = match self.conns.get_mut(id).map(|c| &mut c.phase) {
            Some(Phase::Sniffing { buf }) => {
                buf.extend_from_slice(data);
                Some(sniff::sniff(buf))
            }
            Some(Phase::Line { .. }) => {
                self.feed_line(id, Some(data));
                None
            }
            Some(Phase::Http(_)) => {
                self.on_http(id, data);
                None
            }
            Some(Phase::Ws(_)) => {
                self.on_ws(id, data);
                None
            }
            None => None,
        };
        self.scratch = scratch;
        match verdict {
            Some(Sniff::NeedMore) | None => {}
            Some(to) => self.become_(id, to),
        }
    }

    /// Every phase transition happens here: the old phase is moved out, the
    /// new one built, and bytes already read are passed on.
    fn become_(&mut self, id: ConnId, to: Sniff) {
        let max_line = self.config.max_line;
        let refuse_plain = to == Sniff::Line && self.plain_refused(id);
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut conn.phase, Phase::Sniffing { buf: Vec::new() });
        let from = old.kind();
        let Phase::Sniffing { buf } = old else {
            conn.phase = old;
            return;
        };
        if conn.refused && matches!(to, Sniff::Line | Sniff::Http) {
            // Over --max-connections: answer in the client's protocol, close.
            let answer = if to == Sniff::Http {
                crate::proto::http::error_response(503, "the server is full; try again later")
                    .encode(false, true)
            } else {
                Bytes::from(format!(
                    "!!! {}: the server is full; try again later\n",
                    ErrorCode::ServerFull
                ))
            };
            self.conns.queue(id, answer);
            self.close_after_flush(id);
            return;
        }
        if refuse_plain {
            // --tls-only: told in its own protocol, closed.
            self.refuse_plain_line(id);
            return;
        }
        match to {
            Sniff::NeedMore => conn.phase = Phase::Sniffing { buf },
            Sniff::Tls => {
                conn.phase = Phase::Sniffing { buf: Vec::new() };
                self.start_tls(id, &buf);
            }
            Sniff::Http => {
                debug!("{id}: HTTP");
                // The first head is due --header-timeout after the accept.
                let accepted = conn.accepted;
                conn.phase = Phase::Http(HttpState::new(accepted));
                self.move_kind(from, Kind::Http);
                self.timers
                    .arm(accepted + self.config.header_timeout(), id, TimerKind::Http);
                self.on_http(id, &buf);
                // Decided by the first-line timeout: the head is late already.
                self.http_timer(id, self.now);
            }
            Sniff::Line => {
                debug!("{id}: line client");
                conn.phase = Phase::Line {
                    decoder: LineDecoder::new(max_line),
                    started: false,
                };
                conn.in_hub = true;
                let peer = peer_of(conn.peer, conn.stream.is_tls());
                let now = self.now;
                self.move_kind(from, Kind::Line);
                let hello = Hello {
                    peer,
                    ..Hello::new(ClientKind::Line, None, None)
                };
                self.hub.connect(self.wall, id.client(), hello);
                self.persist(); // the join of the default room, before its lines
                if let Some(idle) = self.config.line_idle() {
                    self.timers.arm(now + idle, id, TimerKind::LineIdle);
                }
                if !buf.is_empty() {
                    self.feed_line(id, Some(&buf));
                }
            }
        }
    }

    /// The peer will send nothing more (it may still read: `nc -N` waits for
    /// our answers). Its last line is handled, it leaves its rooms now, and
    /// the connection closes once what is queued for it is sent.
    fn on_eof(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        match (&conn.phase, &conn.close) {
            (Phase::Line { .. }, None) => {}
            // An unfinished sniff, HTTP (pipelined answers are out or moot),
            // a WebSocket that vanished without a close frame, or a
            // connection already closing: nothing more to say.
            _ => {
                self.doom(id, LeaveReason::Disconnect);
                return;
            }
        }
        self.feed_line(id, None);
        self.end_client(id, LeaveReason::Disconnect);
        self.close_after_flush(id);
    }

    /// The end of a turn: due timers, then, until nothing more happens,
    /// reap, commit, fan out, flush and review the output pressure (a
    /// dropped slow consumer is queued a goodbye and leaves its rooms);
    /// then the store's upkeep (a checkpoint handed to the helper thread
    /// if the WAL has grown).
    fn before_sleep(&mut self) {
        self.fire_timers(self.now);
        loop {
            self.reap();
            self.commit();
            // With --redis, the turn's commands go out before the clients'
            // output: Redis works on them while the loop writes.
            self.redis_flush();
            self.apply_effects();
            self.flush_dirty();
            // After the flush: slow consumers, and whether input pauses.
            // A drop queues a goodbye and tells the hub: go round again.
            self.review_pressure(self.now);
            if self.doomed.is_empty() && !self.hub.has_effects() && !self.conns.has_dirty() {
                break;
            }
        }
        self.store_upkeep();
        // What the rest of the turn asked (a dropped client's leave, say).
        self.redis_flush();
    }

    /// Fires every timer due at `now`. Timers are never cancelled: each
    /// checks whether it still applies.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(due) = self.timers.pop_due(now) {
            let (id, kind) = match due {
                Due::Conn(id, kind) => (id, kind),
                Due::Loop(LoopTimer::SessionExpiry) => {
                    self.expire_sessions(now);
                    continue;
                }
                Due::Loop(LoopTimer::Accept) => {
                    self.resume_accepting();
                    continue;
                }
                Due::Loop(LoopTimer::Review) => {
                    self.review_armed = false; // review_pressure runs after the timers
                    continue;
                }
            };
            if matches!(kind, TimerKind::Sniff | TimerKind::FirstLine)
                && matches!(
                    self.conns.get(id).map(|c| &c.phase),
                    Some(Phase::Sniffing { .. })
                )
            {
                // Silence means silence: first read what is already waiting
                // in the socket (a busy loop may not have seen its event
                // yet), and decide on that.
                self.on_readable(id);
            }
            let Some(conn) = self.conns.get_mut(id) else {
                continue; // the connection is gone: the timer no longer applies
            };
            match kind {
                TimerKind::Sniff => {
                    // Not while TLS is still shaking hands, nor before the
                    // silence counted from its end (then a later timer is due).
                    let silent_since = conn.accepted + self.config.sniff_timeout();
                    if conn.stream.handshaking() || now < silent_since {
                        continue;
                    }
                    if let Phase::Sniffing { buf } = &conn.phase {
                        let header = self.config.header_timeout();
                        let step = deadlines::silence_step(buf, conn.accepted, header);
                        trace!("  {id}: sniff timer, {step:?}");
                        match step {
                            // A started request line: HTTP's header timeout
                            // bounds the wait for the rest of it.
                            deadlines::SilenceStep::AwaitFirstLine(at) => {
                                self.timers.arm(at, id, TimerKind::FirstLine)
                            }
                            deadlines::SilenceStep::Become(to) => self.become_(id, to),
                        }
                    }
                }
                TimerKind::FirstLine => {
                    if let Phase::Sniffing { buf } = &conn.phase {
                        let to = sniff::on_first_line_timeout(buf);
                        debug!("{id}: first line unfinished at the header timeout, {to:?}");
                        self.become_(id, to);
                    }
                }
                TimerKind::LineIdle => self.line_timer(id, now),
                TimerKind::Http => self.http_timer(id, now),
                TimerKind::WsPing => self.ws_timer(id, now),
                TimerKind::Handshake => self.handshake_timer(id),
                TimerKind::Linger => {
                    match deadlines::linger_step(conn.close.as_ref(), conn.close_by, now) {
                        deadlines::LingerStep::PokeDropping => self.poke_dropping(id, now),
                        deadlines::LingerStep::Close => self.doom(id, LeaveReason::Disconnect),
                        deadlines::LingerStep::Stale => {}
                    }
                }
            }
        }
    }

    /// Removes doomed connections; the hub tells their rooms.
    fn reap(&mut self) {
        for (id, reason) in std::mem::take(&mut self.doomed) {
            let Some(mut conn) = self.conns.remove(id) else {
                continue;
            };
            debug!("close {id} {} ({})", conn.peer, describe(&reason));
            let _ = self.poll.registry().deregister(&mut conn.stream);
            // Input left unread (held, or come since the last read) would
            // make the close a reset, and the kernel would throw away what
            // it has not yet sent: the end of our last reply, a goodbye.
            let mut drained = 0;
            while drained < READ_BUDGET {
                match conn.stream.drain_raw(&mut self.scratch) {
                    Ok(n) if n > 0 => drained += n,
                    _ => break,
                }
            }
            *self.counters.kind_mut(conn.phase.kind()) -= 1;
            if conn.stream.is_tls() {
                self.counters.tls_open -= 1;
                if conn.stream.handshaking() {
                    // Refused, cut off, timed out or abandoned: every
                    // handshake begun ends done or failed.
                    self.counters.tls_failures += 1;
                }
            }
            self.per_ip.release(conn.peer.ip());
            if conn.refused {
                self.refusing -= 1;
            }
            if reason == LeaveReason::Timeout {
                self.counters.drop_reason("timeout");
            }
            if !conn.in_hub {
                continue;
            }
            let vanished = matches!(reason, LeaveReason::Disconnect | LeaveReason::Timeout);
            if matches!(conn.phase, Phase::Ws(_)) && vanished {
                // No close frame: hold its nick and rooms for a resume.
                self.detach_client(id);
            } else {
                self.hub.disconnect(self.wall, id.client(), reason);
            }
        }
    }

    /// Reads nothing more; closes once the queued output is out.
    fn close_after_flush(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.close.is_none() {
            conn.close = Some(Close::AfterFlush);
        }
        self.conns.mark_dirty(id);
    }

    /// Our last reply is out: half-close, then linger for the peer's EOF.
    fn last_byte_out(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.stream.shutdown_write();
        let until = self.now + LINGER;
        conn.close = Some(Close::Lingering);
        conn.close_by = Some(until);
        if conn.readable {
            // Bytes may already wait, with no new edge to come.
            self.backlog.push(id);
        }
        self.timers.arm(until, id, TimerKind::Linger);
    }

    /// Marks a connection for removal before the loop sleeps.
    fn doom(&mut self, id: ConnId, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(id) {
            if conn.close != Some(Close::Doomed) {
                conn.close = Some(Close::Doomed);
                self.doomed.push((id, reason));
            }
        }
    }

    /// Takes the connection's client out of the hub; its rooms see it leave.
    fn end_client(&mut self, id: ConnId, reason: LeaveReason) {
        if let Some(conn) = self.conns.get_mut(id) {
            if std::mem::take(&mut conn.in_hub) {
                self.hub.disconnect(self.wall, id.client(), reason);
            }
        }
    }

    /// A WebSocket client that went away without leaving (it vanished, or
    /// its page was closed or reloaded): its nick and rooms are held for
    /// `--resume-grace`, then its rooms see it leave (`timeout`).
    fn detach_client(&mut self, id: ConnId) {
        self.hub
            .detach(self.wall, id.client(), LeaveReason::Timeout);
        self.timers.arm_loop(
            self.now + self.config.resume_grace(),
            LoopTimer::SessionExpiry,
        );
    }

    /// As `detach_client`, for a connection still open (its close frame is
    /// on its way): the hub lets go of the connection, not of the session.
    fn hold_session(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.get_mut(id) {
            if std::mem::take(&mut conn.in_hub) {
                self.detach_client(id);
            }
        }
    }

    /// Gives up held WebSocket sessions whose grace ran out, and sets a
    /// timer for the next one (the hub keeps wall-clock deadlines).
    fn expire_sessions(&mut self, now: Instant) {
        let wall = self.wall;
        self.hub.expire(wall);
        if let Some(next) = self.hub.next_deadline() {
            let wait = Duration::from_millis(next.saturating_sub(wall.ms));
            self.timers.arm_loop(now + wait, LoopTimer::SessionExpiry);
        }
    }

    /// A fresh session token: 128 bits from the OS, in hex. `None` if the
    /// OS has no randomness to give (then the client cannot resume).
    fn session_token(&mut self) -> Option<String> {
        let token = random_hex(&mut self.urandom, 16);
        (!token.is_empty()).then_some(token)
    }
}

/// Logs where the server listens; printed on stdout so scripts can read it.
pub fn announce(addrs: &[SocketAddr]) {
    for a in addrs {
        info!("listening on {a}");
        println!("natter listening on {a}");
    }
    let _ = io::stdout().flush();
}

/// What the hub needs to know of a connection's address: passwords may
/// travel only over TLS, or in clear text over loopback.
fn peer_of(addr: SocketAddr, tls: bool) -> Peer {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    Peer {
        ip,
        secure: tls || ip.is_loopback(),
    }
}
