//! One accepted connection: its socket, its phase, its readiness, its output.
//!
//! A connection has exactly one [`Phase`]. It starts `Sniffing`, becomes a
//! line client or an HTTP connection once its first bytes (or its silence)
//! decide, and all such transitions happen in `Server::become_`. Closing is
//! a mark ([`Close`]) that the loop acts on before it sleeps.

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use super::outbox::Outbox;
use super::pressure::Backlog;
use super::stream::Stream;
use crate::hub::event::{ClientId, LeaveReason};
use crate::proto::http::RequestParser;
use crate::proto::line::LineDecoder;
use crate::proto::ws::Decoder;

/// A slab key plus a generation: slab keys are reused, ids are not, so a
/// timer or an event addressed to a connection that has gone never reaches
/// the next one in the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct ConnId {
    gen: u32,
    key: u32,
}

impl ConnId {
    pub(super) fn new(key: usize, gen: u32) -> ConnId {
        ConnId {
            gen,
            key: key as u32,
        }
    }

    pub(super) fn key(self) -> usize {
        self.key as usize
    }

    /// The hub's name for this connection's client.
    pub(super) fn client(self) -> ClientId {
        ClientId((u64::from(self.gen) << 32) | u64::from(self.key))
    }

    pub(super) fn from_client(id: ClientId) -> ConnId {
        ConnId {
            gen: (id.0 >> 32) as u32,
            key: id.0 as u32,
        }
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.key, self.gen)
    }
}

/// What the connection speaks. Exactly one at a time.
pub(super) enum Phase {
    /// Just accepted: the first bytes, or 300 ms of silence, decide.
    Sniffing { buf: Vec<u8> },
    /// A netcat-style client, framed by lines. `started`: a first line has
    /// come (a first line that is an HTTP request line is not chat).
    Line { decoder: LineDecoder, started: bool },
    /// An HTTP/1.1 client: requests in, responses out, maybe an upgrade.
    Http(HttpState),
    /// A WebSocket client speaking the JSON protocol.
    Ws(WsState),
}

pub(super) struct HttpState {
    /// Bytes of the request being received (and any pipelined after it).
    pub buf: Vec<u8>,
    pub parser: RequestParser,
    /// Body bytes still to skip: no route takes a body.
    pub discard: usize,
    /// When the request now in `buf` began to arrive (for 408).
    pub started: Option<Instant>,
    /// When the last answer went out (for the keep-alive idle timeout).
    pub idle_since: Instant,
    /// A request waits for Redis (`--redis`): whether it was a HEAD and
    /// whether to close after its answer. Later requests wait behind it.
    pub waiting: Option<(bool, bool)>,
}

impl HttpState {
    pub(super) fn new(now: Instant) -> HttpState {
        HttpState {
            buf: Vec::new(),
            parser: RequestParser::new(),
            discard: 0,
            started: Some(now),
            idle_since: now,
            waiting: None,
        }
    }
}

pub(super) struct WsState {
    pub decoder: Decoder,
    /// Last frame of any kind from the client (liveness).
    pub last_frame: Instant,
    /// When we pinged a silent client, if it has not answered since.
    pub ping_sent: Option<Instant>,
    /// We sent our close frame: send nothing more.
    pub close_sent: bool,
    /// The `--ws-echo` endpoint: messages are echoed, not chat.
    pub echo: bool,
}

impl WsState {
    pub(super) fn new(max_message: usize, now: Instant) -> WsState {
        WsState {
            decoder: Decoder::new(max_message),
            last_frame: now,
            ping_sent: None,
            close_sent: false,
            echo: false,
        }
    }

    /// For `/echo`: text and binary messages come back as they came.
    pub(super) fn echo(max_message: usize, now: Instant) -> WsState {
        WsState {
            decoder: Decoder::new(max_message).accepting_binary(),
            echo: true,
            ..WsState::new(max_message, now)
        }
    }
}

/// Kinds counted for `/stats` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Pending,
    Line,
    Http,
    Ws,
}

impl Phase {
    pub(super) fn kind(&self) -> Kind {
        match self {
            Phase::Sniffing { .. } => Kind::Pending,
            Phase::Line { .. } => Kind::Line,
            Phase::Http(_) => Kind::Http,
            Phase::Ws(_) => Kind::Ws,
        }
    }
}

/// How a connection is going away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Close {
    /// Read nothing more; send what is queued, then shut down our side.
    AfterFlush,
    /// A slow consumer: its backlog was thrown away and one goodbye queued
    /// (`!!! slow_consumer` or close 1008); nothing else is queued for it,
    /// and it gets a deadline, since it may never read again: 2 s after its
    /// socket last took bytes, 30 s at most.
    Dropping,
    /// To be removed before the loop sleeps; nothing more is read or sent.
    Doomed,
    /// Our side is shut down; wait briefly for the peer's EOF so that the
    /// kernel does not answer its late bytes with a reset that could destroy
    /// our last reply in flight. Until `close_by` (`LINGER` after the last
    /// byte went out).
    Lingering,
}

pub(super) struct Conn {
    pub id: ConnId,
    /// The one way bytes go in and out: `on_readable` reads it (and `reap`
    /// drains it), `Outbox::flush` writes it, `last_byte_out` shuts its
    /// write side. Plain TCP, or TLS over it once a first byte `0x16` has
    /// started a session (`stream`): the same `Read`/`Write` either way,
    /// so no protocol code knows which.
    pub stream: Stream,
    pub peer: SocketAddr,
    pub phase: Phase,
    /// Last known readiness; cleared only when an operation says `WouldBlock`
    /// (edge-triggered: no new event comes until then).
    pub readable: bool,
    pub writable: bool,
    pub outbox: Outbox,
    /// How its output drains, for the slow-consumer rule (`pressure`).
    pub pressure: Backlog,
    /// Chat input is paused and this connection has input waiting: it is
    /// on the server's `held` list and is read when the pause ends.
    pub held: bool,
    /// Since when (for flood control, which does not count that time).
    pub held_since: Option<Instant>,
    /// A closing connection's deadline: a slow consumer being dropped is
    /// given until then at most to take its goodbye (as long as its socket
    /// keeps taking bytes); a lingering one waits until then for the
    /// peer's end of stream.
    pub close_by: Option<Instant>,
    /// Already on the list of connections to flush (kept by `Conns`).
    pub dirty: bool,
    pub close: Option<Close>,
    /// The hub knows this connection as a client.
    pub in_hub: bool,
    /// Accepted over `--max-connections`: it is told so once sniffed.
    pub refused: bool,
    pub last_input: Instant,
    /// When its sniffing began: the accept, or for TLS the end of the
    /// handshake (the sniff and header timeouts count from it).
    pub accepted: Instant,
}

impl Conn {
    pub(super) fn new(id: ConnId, stream: Stream, peer: SocketAddr, now: Instant) -> Conn {
        Conn {
            id,
            stream,
            peer,
            phase: Phase::Sniffing { buf: Vec::new() },
            readable: false,
            // Optimistic: a fresh socket has an empty send buffer.
            writable: true,
            outbox: Outbox::default(),
            pressure: Backlog::new(now),
            held: false,
            held_since: None,
            close_by: None,
            dirty: false,
            close: None,
            in_hub: false,
            refused: false,
            last_input: now,
            accepted: now,
        }
    }
}

/// Why the server removes a connection, for the log and the hub.
pub(super) fn describe(reason: &LeaveReason) -> &'static str {
    match reason {
        LeaveReason::Leave => "left",
        LeaveReason::Quit(_) => "quit",
        LeaveReason::Disconnect => "disconnected",
        LeaveReason::Timeout => "timeout",
        LeaveReason::SlowConsumer => "slow consumer",
        LeaveReason::Shutdown => "shutdown",
        LeaveReason::Kicked => "kicked",
        LeaveReason::Banned => "banned",
    }
}
