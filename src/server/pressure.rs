//! Output pressure: when one reader is slow, and when the readers of a
//! busy room as a whole cannot take what its senders produce.
//!
//! The rule (PROTOCOL.md "Slow consumers", docs/ARCHITECTURE.md):
//!
//! 1. Output is queued freely during a loop turn; at its end the server
//!    writes to every connection as much as its socket takes. Only then is
//!    anything decided: one turn may queue more than `--max-outbound` for a
//!    reader that keeps up, and the flush drains most of it. A turn reads at
//!    most [`turn_budget`] bytes of chat input in all, so what one turn can
//!    queue is bounded (a burst from many senders is spread over several
//!    turns, each flushed before the next is read).
//! 2. A connection with more than half of `--max-outbound` unsent after a
//!    flush is *high*. When at least half of the connections the turn wrote
//!    to are high and still draining (their sockets took bytes within
//!    [`STALL`]), the readers as a whole cannot keep up: the server stops
//!    reading the chat input (line and WebSocket) of the members of the
//!    rooms those readers are in (other rooms, HTTP and handshakes go on),
//!    and TCP pushes back on the senders, the way RabbitMQ's flow control
//!    blocks publishers. It reads again once fewer than half of those
//!    readers are still high. While all unsent output together is over
//!    half of `--max-outbound-total`, everyone's chat input pauses. One slow
//!    reader is never enough to pause anyone: the room is not held back by
//!    it.
//! 3. A connection with more than `--max-outbound` unsent after a flush is
//!    *over*. An over connection whose socket takes nothing for [`STALL`]
//!    (it stopped reading), or that does not get back under half the limit
//!    within [`CATCH_UP`] (it reads slower than its room talks while the
//!    others keep up), is a *slow consumer* and is dropped. This is Redis's
//!    soft output-buffer limit (over the limit for a while), measured on
//!    what is still unsent after a write, not on what one turn queued; a
//!    reader whose socket takes everything is never over.
//! 4. While the total is over half of `--max-outbound-total`, connections
//!    whose sockets have taken nothing for [`STALL`] are dropped, biggest
//!    backlog first, until it is back under half; if it ever passes the
//!    whole limit, the biggest backlogs are dropped at once until it is
//!    under (Redis 7's `maxmemory-clients`). The server's memory for output
//!    stays bounded whatever the clients do.
//!
//! Everything here is pure: the shell keeps a [`Backlog`] per connection
//! and asks these functions, so the rule is unit-tested without sockets.

use std::time::{Duration, Instant};

/// A connection whose socket takes nothing for this long has stopped
/// reading.
pub(super) const STALL: Duration = Duration::from_secs(2);
/// An over connection must get back under half of `--max-outbound` within
/// this long.
pub(super) const CATCH_UP: Duration = Duration::from_secs(5);
/// How often the shell reviews while input is paused or a connection is
/// over (stalled connections raise no events).
pub(super) const REVIEW_EVERY: Duration = Duration::from_millis(250);
/// Chat input read per turn, at least (one long line) and at most.
pub(super) const TURN_INPUT_MIN: usize = 4 * 1024;
pub(super) const TURN_INPUT_MAX: usize = 256 * 1024;

/// The two limits, from `--max-outbound` and `--max-outbound-total`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub max_outbound: usize,
    pub max_total: usize,
}

impl Limits {
    /// Input pauses while the total is over this.
    pub(super) fn total_high(&self) -> usize {
        self.max_total / 2
    }

    /// A connection with more than this unsent is high.
    pub(super) fn high(&self) -> usize {
        self.max_outbound / 2
    }
}

/// One connection's output, as the policy sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Backlog {
    /// The last time its socket took bytes or a flush found its queue
    /// empty: "no progress since" is measured from here.
    pub progress_at: Instant,
    /// Over half of `--max-outbound` after a flush, and not yet back under.
    pub high: bool,
    /// Over `--max-outbound` after a flush since then, and not yet back
    /// under half of it.
    pub over_since: Option<Instant>,
    /// Found stalled, and a write was tried before believing it (a full
    /// socket is reported writable again only once a third of its buffer
    /// is free, which a slow reader may take seconds to make).
    pub poked: bool,
}

impl Backlog {
    pub(super) fn new(now: Instant) -> Backlog {
        Backlog {
            progress_at: now,
            high: false,
            over_since: None,
            poked: false,
        }
    }

    /// Its socket took bytes within `STALL`.
    pub(super) fn draining(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.progress_at) < STALL
    }
}

/// Called after each flush (or skipped flush) of a connection: `wrote`
/// bytes went out and `unsent` are left. Returns true when it just became
/// high (the shell starts watching it).
pub(super) fn after_flush(
    b: &mut Backlog,
    wrote: usize,
    unsent: usize,
    now: Instant,
    limits: &Limits,
) -> bool {
    if wrote > 0 || unsent == 0 {
        b.progress_at = now;
        b.poked = false;
    }
    if unsent > limits.max_outbound && b.over_since.is_none() {
        b.over_since = Some(now);
    }
    if unsent <= limits.high() {
        b.high = false;
        b.over_since = None;
        return false;
    }
    !std::mem::replace(&mut b.high, true)
}

/// Why a connection is a slow consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slow {
    /// Over, and its socket took nothing for `STALL`.
    Stalled,
    /// Over for `CATCH_UP` without getting back under half the limit.
    NotCatchingUp,
}

/// The verdict on an over connection.
pub(super) fn verdict(b: &Backlog, now: Instant) -> Option<Slow> {
    let since = b.over_since?;
    if !b.draining(now) {
        Some(Slow::Stalled)
    } else if now.saturating_duration_since(since) >= CATCH_UP {
        Some(Slow::NotCatchingUp)
    } else {
        None
    }
}

/// Do the readers as a whole fall behind? `high` of the `recipients` the
/// turn wrote to are high and draining.
pub(super) fn readers_behind(high: usize, recipients: usize) -> bool {
    high > 0 && recipients > 0 && high * 2 >= recipients
}

/// A pause that began with `population` recipients goes on while at least
/// half of them are still high and draining.
pub(super) fn still_behind(high: usize, population: usize) -> bool {
    high > 0 && high * 2 >= population
}

/// Which connections to drop for the total: `conns` are `(id, unsent,
/// progress_at)`. Over the whole limit, the biggest go first until the
/// total is under it; then, while over half of it, the biggest of those
/// that took nothing for `STALL`. Returns the ids in the order to drop.
pub(super) fn total_victims<T: Copy>(
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
/// sent of it stays within an eighth of the total limit, and within a
/// quarter of one connection's limit (so a reader under half of it that
/// takes nothing in one flush is still under the limit after the next
/// turn), between one long line and the per-connection read budget.
pub(super) fn turn_budget(limits: &Limits, clients: usize) -> usize {
    let by_total = limits.max_total / 8 / clients.max(1);
    by_total
        .min(limits.max_outbound / 4)
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
    fn a_big_turn_drained_by_the_flush_is_nothing() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        // 5000 queued in one turn, the socket took 4600: 400 left.
        assert!(!after_flush(&mut b, 4600, 400, t0, &LIMITS));
        assert!(!b.high);
        assert_eq!(b.over_since, None);
        assert_eq!(verdict(&b, ms(t0, 60_000)), None, "never over, never slow");
    }

    #[test]
    fn high_over_and_back_under_half() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        assert!(after_flush(&mut b, 100, 600, t0, &LIMITS), "became high");
        assert_eq!(b.over_since, None);
        assert!(
            !after_flush(&mut b, 100, 1001, ms(t0, 5), &LIMITS),
            "already high"
        );
        assert_eq!(b.over_since, Some(ms(t0, 5)));
        // Back under the limit but not under half: still over.
        after_flush(&mut b, 400, 600, ms(t0, 10), &LIMITS);
        assert!(b.high && b.over_since.is_some());
        after_flush(&mut b, 100, 500, ms(t0, 20), &LIMITS);
        assert!(!b.high);
        assert_eq!(b.over_since, None);
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
        assert!(!b.draining(ms(t0, 2000)));
    }

    #[test]
    fn an_empty_queue_is_progress() {
        let t0 = Instant::now();
        let mut b = Backlog::new(t0);
        after_flush(&mut b, 0, 0, ms(t0, 3000), &LIMITS);
        assert_eq!(b.progress_at, ms(t0, 3000));
    }

    #[test]
    fn one_slow_reader_never_pauses_the_room_half_of_them_do() {
        assert!(!readers_behind(1, 45), "one of 45: the room goes on");
        assert!(!readers_behind(22, 45));
        assert!(readers_behind(23, 45));
        assert!(
            readers_behind(1, 1),
            "a room of one reader: it is the whole"
        );
        assert!(!readers_behind(0, 10));
        assert!(
            !readers_behind(3, 0),
            "a turn that wrote nothing starts nothing"
        );
        // A pause of 45 ends once fewer than half of them are high.
        assert!(still_behind(23, 45));
        assert!(!still_behind(22, 45), "the slow minority does not hold it");
        assert!(!still_behind(0, 1));
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
        assert_eq!(turn_budget(&small, 10), 16 * 1024);
    }
}
