//! Shutting down on SIGINT or SIGTERM. The signals arrive as readiness on
//! the loop's own `Poll` (signal-hook-mio's self-pipe: the handler only
//! writes a byte), so no thread is needed and no server code runs inside a
//! signal handler.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use log::info;
use mio::{Interest, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::conn::{ConnId, Phase};
use super::{Server, SIGNALS};
use crate::hub::event::LeaveReason;
use crate::proto::ws::frame;

/// How long a shutdown may spend flushing goodbyes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// SIGINT, SIGTERM and SIGHUP, as readiness on `poll` with the token
/// `SIGNALS`.
pub(super) fn listen_for_signals(poll: &Poll) -> io::Result<Signals> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    poll.registry()
        .register(&mut signals, Token(SIGNALS), Interest::READABLE)?;
    Ok(signals)
}

impl Server {
    /// SIGINT or SIGTERM: stop accepting, say goodbye in every protocol,
    /// flush for at most 5 s, then `run` returns (exit 0). A second signal
    /// ends the wait.
    pub(super) fn on_signal(&mut self) {
        let mut got: Vec<i32> = self.signals.pending().collect();
        if got.contains(&SIGHUP) {
            // Not a shutdown: the certificate is read again (see `tls`).
            got.retain(|&s| s != SIGHUP);
            self.on_hangup();
        }
        if got.is_empty() {
            return;
        }
        if self.shutdown_by.is_some() {
            info!("second signal: exiting now");
            self.shutdown_by = Some(self.now);
            return;
        }
        info!("signal {got:?}: shutting down");
        self.shutdown_by = Some(self.now + SHUTDOWN_GRACE);
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        let ids: Vec<ConnId> = self.conns.iter().map(|c| c.id).collect();
        for id in ids {
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            // Everyone goes at once: no leave lines for rooms that are
            // emptying anyway, just the goodbye.
            conn.in_hub = false;
            if conn.close.is_some() {
                continue;
            }
            match conn.phase {
                Phase::Line { .. } => {
                    self.conns
                        .queue(id, Bytes::from_static(b"*** server shutting down\n"));
                    self.close_after_flush(id);
                }
                Phase::Ws(_) => {
                    self.close_ws(id, Some(frame::close::GOING_AWAY), "server shutting down")
                }
                Phase::Http(_) => self.close_after_flush(id),
                Phase::Sniffing { .. } => self.doom(id, LeaveReason::Shutdown),
            }
        }
    }

    /// Whether a shutdown is over: every connection is gone, or the grace
    /// (or a second signal) ran out. The last messages are committed then,
    /// and `run` returns.
    pub(super) fn shutdown_over(&mut self, now: Instant) -> bool {
        let Some(by) = self.shutdown_by else {
            return false;
        };
        if !self.conns.is_empty() && now < by {
            return false;
        }
        info!(
            "shut down ({} connections left unflushed)",
            self.conns.len()
        );
        self.commit();
        true
    }
}
