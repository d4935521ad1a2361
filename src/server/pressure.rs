//! Output pressure: when a reader is slow, and when the server as a whole
//! is producing more than its readers take.
//!
//! The rule (PROTOCOL.md "Slow consumers", docs/ARCHITECTURE.md):
//!
//! 1. Output is queued freely during a loop turn; at its end the server
//!    writes to every connection as much as its socket takes. Only then is
//!    anything decided: one turn may queue more than `--max-outbound` for a
//!    reader that keeps up, and the flush drains most of it.
//! 2. A connection with more than `--max-outbound` still unsent after that
//!    flush is *behind*. While any connection is behind, or all unsent
//!    output together passes half of `--max-outbound-total`, the server
//!    stops reading chat input (line and WebSocket clients; HTTP and
//!    handshakes go on). TCP then pushes back on the senders, the way
//!    RabbitMQ's flow control blocks publishers: the room slows down to
//!    what its readers take, and nobody is dropped for it.
//! 3. A behind connection whose socket takes nothing for [`STALL`] (it
//!    stopped reading), or that does not get back under half of
//!    `--max-outbound` within [`CATCH_UP`] (it reads far slower than the
//!    room talks while the others keep up), is a *slow consumer* and is
//!    dropped. This is Redis's "soft limit" (over the limit for a while),
//!    measured on what is still unsent after a write, not on what one turn
//!    queued.
//! 4. While the total is over half of `--max-outbound-total`, connections
//!    whose sockets have taken nothing for [`STALL`] are dropped, biggest
//!    backlog first, until it is back under half; if it ever passes the
//!    whole limit, the biggest backlogs are dropped at once until it is
//!    under (Redis 7's `maxmemory-clients`). The server's memory for
//!    output stays bounded whatever the clients do.
//! 5. A turn reads at most [`turn_budget`] bytes of chat input in all, so
//!    what one turn can queue is bounded too (a burst from many senders is
//!    spread over several turns, each flushed before the next is read).
//!
//! Everything here is pure: the shell keeps a [`Backlog`] per connection
//! and asks these functions, so the rule is unit-tested without sockets.

use std::time::{Duration, Instant};

/// A behind connection whose socket takes nothing for this long has
/// stopped reading.
pub const STALL: Duration = Duration::from_secs(2);
/// A behind connection must get back under half of `--max-outbound`
/// within this long.
pub const CATCH_UP: Duration = Duration::from_secs(5);
/// How often the shell reviews while input is paused (stalled connections
/// raise no events).
pub const REVIEW_EVERY: Duration = Duration::from_millis(250);
/// Chat input read per turn, at least (one long line) and at most.
pub const TURN_INPUT_MIN: usize = 4 * 1024;
pub const TURN_INPUT_MAX: usize = 256 * 1024;

/// The two limits, from `--max-outbound` and `--max-outbound-total`.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_outbound: usize,
    pub max_total: usize,
}

impl Limits {
    /// Input pauses while the total is over this.
    pub fn total_high(&self) -> usize {
        self.max_total / 2
    }
}

/// One connection's output, as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub struct Backlog {
    /// The last time its socket took bytes, or its queue became non-empty
    /// after being empty: "no progress since" is measured from here.
    pub progress_at: Instant,
    /// Over `--max-outbound` after a flush since then, and not yet back
    /// under half of it.
    pub behind_since: Option<Instant>,
}

impl Backlog {
    pub fn new(now: Instant) -> Backlog {
        Backlog {
            progress_at: now,
            behind_since: None,
        }
    }
}

/// What a flush changed about a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// It just fell behind: input must pause.
    FellBehind,
    /// It was behind and is back under half the limit.
    CaughtUp,
}

/// Called after each flush (or skipped flush) of a connection: `wrote`
/// bytes went out and `unsent` are left.
pub fn after_flush(
    b: &mut Backlog,
    wrote: usize,
    unsent: usize,
    now: Instant,
    limits: &Limits,
) -> Change {
    if wrote > 0 || unsent == 0 {
        b.progress_at = now;
    }
    match b.behind_since {
        None if unsent > limits.max_outbound => {
            b.behind_since = Some(now);
            Change::FellBehind
        }
        Some(_) if unsent <= limits.max_outbound / 2 => {
            b.behind_since = None;
            Change::CaughtUp
        }
        _ => Change::None,
    }
}

/// Why a connection is a slow consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slow {
    /// Behind, and its socket took nothing for `STALL`.
    Stalled,
    /// Behind for `CATCH_UP` without getting back under half the limit.
    NotCatchingUp,
}

/// The verdict on a behind connection, reviewed while input is paused.
pub fn verdict(b: &Backlog, now: Instant) -> Option<Slow> {
    let since = b.behind_since?;
    if now.saturating_duration_since(b.progress_at) >= STALL {
        Some(Slow::Stalled)
    } else if now.saturating_duration_since(since) >= CATCH_UP {
        Some(Slow::NotCatchingUp)
    } else {
        None
    }
}

/// Which connections to drop for the total: `conns` are `(id, unsent,
/// progress_at)`. Over the whole limit, the biggest go first until the
/// total is under it; then, while over half of it, the biggest of those
/// that took nothing for `STALL`. Returns the ids in the order to drop.
pub fn total_victims<T: Copy>(
    conns: &mut [(T, usize, Instant)],
    mut total: usize,
    now: Instant,
    limits: &Limits,
) -> Vec<T> {
    let mut out = Vec::new();
    if total <= limits.total_high() {
        return out;
    }
    conns.sort_by_key(|c| std::cmp::Reverse(c.1));
    let mut taken = vec![false; conns.len()];
    for (i, &(id, unsent, _)) in conns.iter().enumerate() {
        if total <= limits.max_total {
            break;
        }
        out.push(id);
        taken[i] = true;
        total = total.saturating_sub(unsent);
    }
    for (i, &(id, unsent, progress_at)) in conns.iter().enumerate() {
        if total <= limits.total_high() {
            break;
        }
        if !taken[i] && now.saturating_duration_since(progress_at) >= STALL {
            out.push(id);
            total = total.saturating_sub(unsent);
        }
    }
    out
}

/// Chat input one turn may read, in all: what `clients` recipients can be
/// sent of it stays within an eighth of the total limit and half of one
/// connection's limit, between one long line and the per-connection read
/// budget.
pub fn turn_budget(limits: &Limits, clients: usize) -> usize {
    let by_total = limits.max_total / 8 / clients.max(1);
    by_total
        .min(limits.max_outbound / 2)
        .clamp(TURN_INPUT_MIN, TURN_INPUT_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_outbound: 1000,
        max_total: 10_000,
    };

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    #[test]
    fn a_big_turn_drained_by_the_flush_is_not_behind() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        // 5000 queued in one turn, the socket took 4500: 500 left.
        assert_eq!(after_flush(&mut b, 4500, 500, t0, &LIMITS), Change::None);
        assert_eq!(b.behind_since, None);
        assert_eq!(
            verdict(&b, ms(t0, 60_000)),
            None,
            "never behind, never slow"
        );
    }

    #[test]
    fn behind_then_caught_up_only_under_half() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        assert_eq!(
            after_flush(&mut b, 100, 1001, t0, &LIMITS),
            Change::FellBehind
        );
        // Back under the limit but not under half: still behind.
        assert_eq!(
            after_flush(&mut b, 400, 600, ms(t0, 10), &LIMITS),
            Change::None
        );
        assert!(b.behind_since.is_some());
        assert_eq!(
            after_flush(&mut b, 100, 500, ms(t0, 20), &LIMITS),
            Change::CaughtUp
        );
        assert_eq!(b.behind_since, None);
    }

    #[test]
    fn a_reader_that_drains_is_not_slow_until_catch_up_runs_out() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        after_flush(&mut b, 10, 5000, t0, &LIMITS);
        // It keeps taking a little every second.
        for s in 1..5 {
            let now = ms(t0, s * 1000);
            after_flush(&mut b, 10, 5000 - 10 * s as usize, now, &LIMITS);
            assert_eq!(verdict(&b, now), None, "draining at {s} s");
        }
        assert_eq!(verdict(&b, ms(t0, 5000)), Some(Slow::NotCatchingUp));
    }

    #[test]
    fn a_reader_that_stops_is_stalled_after_stall() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        after_flush(&mut b, 0, 2000, t0, &LIMITS);
        // Skipped flushes (socket full): nothing written.
        after_flush(&mut b, 0, 3000, ms(t0, 1000), &LIMITS);
        assert_eq!(verdict(&b, ms(t0, 1999)), None);
        assert_eq!(verdict(&b, ms(t0, 2000)), Some(Slow::Stalled));
    }

    #[test]
    fn an_empty_queue_is_progress() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        after_flush(&mut b, 0, 0, ms(t0, 3000), &LIMITS);
        assert_eq!(b.progress_at, ms(t0, 3000));
    }

    #[test]
    fn the_total_drops_stalled_biggest_first_down_to_half() {
        let t0 = Instant::now();
        let now = ms(t0, 10_000);
        let fresh = ms(t0, 9_900);
        // 2000 + 1500 + 1000 + 900 + 700 = 6100 > 5000 (half).
        let mut conns = vec![
            ('a', 1000, t0),
            ('b', 2000, t0),
            ('c', 1500, fresh), // draining: kept
            ('d', 900, t0),
            ('e', 700, t0),
        ];
        let v = total_victims(&mut conns, 6100, now, &LIMITS);
        // b (2000) takes it to 4100 <= 5000.
        assert_eq!(v, vec!['b']);
        let mut conns = vec![('a', 1000, t0), ('c', 4500, fresh), ('d', 900, t0)];
        let v = total_victims(&mut conns, 6400, now, &LIMITS);
        assert_eq!(v, vec!['a', 'd'], "the draining one stays");
        let mut conns = vec![('a', 1000, t0)];
        assert!(total_victims(&mut conns, 5000, now, &LIMITS).is_empty());
    }

    #[test]
    fn over_the_whole_total_the_biggest_go_even_if_draining() {
        let t0 = Instant::now();
        let now = ms(t0, 100);
        let mut conns = vec![('a', 3000, now), ('b', 6000, now), ('c', 2500, now)];
        let v = total_victims(&mut conns, 11_500, now, &LIMITS);
        // b takes 11500 to 5500 <= 10000; none stalled after that.
        assert_eq!(v, vec!['b']);
    }

    #[test]
    fn the_turn_budget_shrinks_with_the_audience() {
        let l = Limits {
            max_outbound: 1 << 20,
            max_total: 256 << 20,
        };
        assert_eq!(turn_budget(&l, 1), TURN_INPUT_MAX);
        assert_eq!(turn_budget(&l, 1000), (256 << 20) / 8 / 1000);
        assert_eq!(turn_budget(&l, 20_000), TURN_INPUT_MIN);
        let small = Limits {
            max_outbound: 64 * 1024,
            max_total: 256 << 20,
        };
        assert_eq!(turn_budget(&small, 10), 32 * 1024);
    }
}
