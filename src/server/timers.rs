//! Deadlines for the loop: the earliest one becomes `poll`'s timeout.
//!
//! A binary heap of `(when, what)`: a connection's timer names the
//! connection, a loop-wide one names only its kind. Timers are never cancelled: when
//! one fires, the loop checks whether it still applies (the connection may
//! be gone, or may have been active since). That keeps arming a timer O(log n)
//! and cancelling free, as in most event loops.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::conn::ConnId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    /// No bytes since accept: the client is a line client.
    Sniff,
    /// A first line started but never finished: stop waiting for it.
    FirstLine,
    /// Check whether a line client has been silent too long.
    LineIdle,
    /// A closing connection gets this long to send its last bytes.
    Linger,
    /// An HTTP request head due, or a keep-alive connection idle too long.
    Http,
    /// Ping a silent WebSocket client, or give up on one.
    WsPing,
    /// A TLS handshake not finished `--header-timeout` after the accept.
    Handshake,
}

/// Timers of the loop as a whole, not of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum LoopTimer {
    /// Held WebSocket sessions may be due to be given up.
    SessionExpiry,
    /// Accepting was paused for lack of file descriptors.
    Accept,
    /// Chat input is paused or readers are behind: review who is.
    Review,
}

/// What a due timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    Conn(ConnId, TimerKind),
    Loop(LoopTimer),
}

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Due)>>,
}

impl Timers {
    /// A connection's timer.
    pub(super) fn arm(&mut self, at: Instant, conn: ConnId, kind: TimerKind) {
        self.heap.push(Reverse((at, Due::Conn(conn, kind))));
    }

    /// A timer of the loop as a whole.
    pub(super) fn arm_loop(&mut self, at: Instant, timer: LoopTimer) {
        self.heap.push(Reverse((at, Due::Loop(timer))));
    }

    /// How long `poll` may sleep: until the earliest deadline.
    pub(super) fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns the earliest timer due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, due))| due),
            _ => None,
        }
    }

    /// Whether no timer is armed (for tests).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let a = ConnId::new(1, 1);
        let b = ConnId::new(2, 2);
        assert_eq!(t.timeout(t0), None);
        t.arm(t0 + Duration::from_millis(300), a, TimerKind::Sniff);
        t.arm(t0 + Duration::from_millis(100), b, TimerKind::Linger);
        assert_eq!(t.timeout(t0), Some(Duration::from_millis(100)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(
            t.pop_due(t0 + Duration::from_millis(150)),
            Some(Due::Conn(b, TimerKind::Linger))
        );
        assert_eq!(t.pop_due(t0 + Duration::from_millis(150)), None);
        assert_eq!(t.timeout(t0 + Duration::from_secs(1)), Some(Duration::ZERO));
        assert_eq!(
            t.pop_due(t0 + Duration::from_secs(1)),
            Some(Due::Conn(a, TimerKind::Sniff))
        );
        assert!(t.is_empty());
        // A loop-wide timer names no connection.
        t.arm_loop(t0, LoopTimer::Review);
        assert_eq!(t.pop_due(t0), Some(Due::Loop(LoopTimer::Review)));
    }
}
