//! Accepting connections: every listener is drained until `WouldBlock`
//! (one edge may stand for many clients), within the limits on what is
//! accepted: `--max-per-ip`, `--max-connections` (by default what the
//! open-file limit allows), and a pause when the process is out of file
//! descriptors.

use std::io::{self, ErrorKind, Write};
use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, error, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::conn::Conn;
use super::os::{open_file_limit, tune};
use super::stream::Stream;
use super::timers::{LoopTimer, TimerKind};
use super::Server;
use crate::config::Config;
use crate::hub::error::ErrorCode;

/// How long to wait before accepting again when the process is out of file
/// descriptors (EMFILE): the pending connections stay in the kernel's
/// backlog meanwhile, and the loop does not spin on them.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Connections beyond `--max-connections` kept just long enough to be told
/// `server_full` (or `503`).
const REFUSING: usize = 64;
/// File descriptors kept free under the open-file limit for listeners,
/// the store, logs and the refusals above.
const FD_RESERVE: usize = 128;

impl Server {
    /// Listener `i` is readable: accepts until `WouldBlock`, unless
    /// accepting is paused.
    pub(super) fn accept(&mut self, i: usize) {
        if self.accept_paused.is_some() {
            return; // the backoff timer will come back for the backlog
        }
        loop {
            let Some(listener) = self.listeners.get(i) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => self.on_accept(stream, peer),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_fd_exhaustion(&e) => {
                    // Out of descriptors: the connection stays in the
                    // kernel's backlog. Retrying at once would spin at 100%
                    // CPU (and edge-triggered, no new event may come), so
                    // pause and retry from a timer.
                    warn!("accept: {e}; pausing accepts for {ACCEPT_BACKOFF:?}");
                    self.counters.drop_reason("accept_emfile");
                    let at = self.now + ACCEPT_BACKOFF;
                    self.accept_paused = Some(at);
                    self.timers.arm_loop(at, LoopTimer::Accept);
                    return;
                }
                Err(e) => {
                    error!("accept on listener {i}: {e}");
                    return;
                }
            }
        }
    }

    /// The accept backoff is over: drain every listener's backlog again.
    pub(super) fn resume_accepting(&mut self) {
        self.accept_paused = None;
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    /// A new connection: refused at once over `--max-per-ip`; over
    /// `--max-connections`, kept only to be told so once sniffed (or
    /// closed at once past `REFUSING` of those); else registered and
    /// given its sniff timer.
    fn on_accept(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if !self.per_ip.admit(peer.ip()) {
            debug!("refusing {peer}: over --max-per-ip");
            let msg = format!(
                "!!! {}: too many connections from your address\n",
                ErrorCode::ServerFull
            );
            let _ = stream.write(msg.as_bytes());
            return;
        }
        // At the cap, a few connections more are accepted only to be told so
        // in their own protocol once sniffed; past those, closed at once.
        let refused = self.conns.len() - self.refusing >= self.max_connections;
        if refused {
            if self.refusing >= REFUSING {
                debug!("refusing {peer}: full");
                self.per_ip.release(peer.ip());
                return;
            }
            self.refusing += 1;
            self.counters.drop_reason("server_full");
        }
        if let Err(e) = tune(&stream) {
            warn!("socket options for {peer}: {e}");
        }
        let now = self.now;
        let registry = self.poll.registry();
        let added = self.conns.insert(|id| {
            registry.register(
                &mut stream,
                Token(id.key()),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let mut conn = Conn::new(id, Stream::new(stream), peer, now);
            conn.refused = refused;
            Ok(conn)
        });
        let id = match added {
            Ok(id) => id,
            Err(e) => {
                error!("register {peer}: {e}");
                self.per_ip.release(peer.ip());
                return;
            }
        };
        self.counters.pending += 1;
        self.counters.accepted += 1;
        self.timers
            .arm(now + self.config.sniff_timeout(), id, TimerKind::Sniff);
        debug!("accept {id} from {peer}");
    }
}

/// `--max-connections`, or what the open-file limit allows: the limit less
/// `FD_RESERVE`, at least 16 (1024 when the limit cannot be read).
pub(super) fn connection_cap(config: &Config) -> usize {
    config
        .max_connections
        .unwrap_or_else(|| open_file_limit().map_or(1024, |n| n.saturating_sub(FD_RESERVE).max(16)))
}

/// The process or the system is out of file descriptors.
fn is_fd_exhaustion(e: &io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux; ENOBUFS/ENOMEM also mean "not
    // now" for accept.
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}
