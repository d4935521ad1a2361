//! The connection timers' rules, each a function of plain values (instants,
//! durations and the state it looks at), so that each is tested in virtual
//! time: `t0 = Instant::now()` and offsets from it, never a sleep. The
//! shell reads the turn's `now`, asks one of these what is due, and does it:
//! arms the next timer, answers, closes.
//!
//! - `silence_step`: the `Sniff` timer of a connection that has said
//!   nothing decisive, and when its `FirstLine` timer is due;
//! - `http_step`: an HTTP connection's `Http` timer (`408`, keep-alive idle);
//! - `line_idle_step`: a line client's `LineIdle` timer;
//! - `linger_step` and `drop_step`: the `Linger` timer, of a connection
//!   lingering after its last byte and of a dropped slow consumer.
//!
//! The WebSocket ping rule is `ws::ping_step`, next to its shell. The
//! `--resume-grace` of a WebSocket client that vanished is the hub's
//! (wall-clock milliseconds, not `Instant`s): `Hub::expire` and
//! `Hub::next_deadline` are tested in `src/hub/tests.rs`.
//!
//! Every deadline here is due exactly at its instant, as `Timers::pop_due`
//! fires a timer exactly at its instant: a timer firing a tick early (armed
//! for something else) waits.

use std::time::{Duration, Instant};

use super::conn::Close;
use super::LINGER;
use crate::proto::sniff::{self, Sniff};

/// What the sniff timer does with a connection still sniffing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SilenceStep {
    /// Decided by its silence: it becomes this.
    Become(Sniff),
    /// A request line has begun: the `FirstLine` timer waits for the rest
    /// of it until then, and `sniff::on_first_line_timeout` decides.
    AwaitFirstLine(Instant),
}

/// The sniff rule: a connection that said nothing decisive for `--sniff-ms`
/// is what its bytes say on silence (`sniff::on_silence`: nothing at all is
/// a line client). A request line begun but unfinished waits for its
/// newline until `--header-timeout` after the accept, not after this timer,
/// as the head of any HTTP request would; then it is HTTP, and late
/// already: `408`. A deadline already past (a header timeout shorter than
/// the sniff wait, or a late turn) fires in the same turn.
pub(super) fn silence_step(buf: &[u8], accepted: Instant, header_timeout: Duration) -> SilenceStep {
    match sniff::on_silence(buf) {
        Sniff::NeedMore => SilenceStep::AwaitFirstLine(accepted + header_timeout),
        to => SilenceStep::Become(to),
    }
}

/// What an HTTP connection's timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HttpStep {
    /// A request head not complete `--header-timeout` after it began: `408`,
    /// and close.
    HeadLate,
    /// A keep-alive connection idle for `--http-idle-timeout` between
    /// requests: closed quietly.
    Idle,
    /// Nothing due yet: look again then.
    WaitUntil(Instant),
}

/// The HTTP rule: a request head under way (`started`: its first byte, or
/// the accept for the first request) is due `header` after it began;
/// between requests (`started` is `None`) the connection may stay idle
/// for `idle` after the last request (`idle_since`). One timer serves both:
/// armed when a head begins, re-armed by each firing for whichever
/// deadline applies then, so a head's timer that finds it answered becomes
/// the idle timer.
pub(super) fn http_step(
    started: Option<Instant>,
    idle_since: Instant,
    now: Instant,
    header: Duration,
    idle: Duration,
) -> HttpStep {
    match started {
        Some(started) if now >= started + header => HttpStep::HeadLate,
        Some(started) => HttpStep::WaitUntil(started + header),
        None if now >= idle_since + idle => HttpStep::Idle,
        None => HttpStep::WaitUntil(idle_since + idle),
    }
}

/// What a line client's idle timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LineIdleStep {
    /// Silent for `--line-idle-timeout`: it leaves with `timeout`.
    Silent,
    /// Heard from since: look again then.
    WaitUntil(Instant),
}

/// The line idle rule: a line client whose last input came `idle` ago is
/// dropped. Input held unread while chat input is paused is not silence:
/// the shell counts it as input at `now` before asking.
pub(super) fn line_idle_step(last_input: Instant, now: Instant, idle: Duration) -> LineIdleStep {
    let due = last_input + idle;
    if due <= now {
        LineIdleStep::Silent
    } else {
        LineIdleStep::WaitUntil(due)
    }
}

/// What a `Linger` timer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LingerStep {
    /// A dropped slow consumer: write what its socket takes, then `drop_step`.
    PokeDropping,
    /// Lingering for `LINGER`, and the peer's end of stream has not come:
    /// closed.
    Close,
    /// Doomed since (the timer has outlived what it was for): nothing to do.
    Stale,
}

/// The `Linger` rule, by how the connection is closing. It is armed for
/// `LINGER` when a connection starts lingering (`last_byte_out`, which
/// keeps the deadline in `Conn::close_by`) and when a slow consumer is
/// dropped (`drop_slow_consumer`, then `drop_step`). A timer armed while
/// the connection was still being dropped may fire after it started
/// lingering: it is stale, and the linger runs its full time.
pub(super) fn linger_step(
    close: Option<&Close>,
    close_by: Option<Instant>,
    now: Instant,
) -> LingerStep {
    match close {
        Some(Close::Dropping) => LingerStep::PokeDropping,
        Some(Close::Lingering) if close_by.is_none_or(|until| now >= until) => LingerStep::Close,
        _ => LingerStep::Stale,
    }
}

/// What a dropped slow consumer's `Linger` timer does once its socket has
/// taken what it would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DropStep {
    /// Its goodbye is out: it lingers like any closing connection.
    AllOut,
    /// Still taking bytes, and before its deadline: look again then.
    WaitUntil(Instant),
    /// It took nothing for `LINGER`, or its deadline has come: closed.
    GiveUp,
}

/// The dropping rule: a dropped slow consumer gets `LINGER` more each time
/// its socket is found to have taken bytes within the last `LINGER`
/// (`progress_at`: the last time it did, `now` if this poke wrote some),
/// never past `close_by` (`DROP_MAX` after the drop; without one it is
/// closed at once); once everything is out it lingers. So a reader that is
/// slow but reading gets the rest of its last line and its goodbye whole.
pub(super) fn drop_step(
    all_out: bool,
    progress_at: Instant,
    close_by: Option<Instant>,
    now: Instant,
) -> DropStep {
    if all_out {
        return DropStep::AllOut;
    }
    let by = close_by.unwrap_or(now);
    if progress_at + LINGER > now && by > now {
        DropStep::WaitUntil((now + LINGER).min(by))
    } else {
        DropStep::GiveUp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conn::ConnId;
    use crate::server::timers::{Due, TimerKind, Timers};

    const TICK: Duration = Duration::from_nanos(1);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn silence_is_a_line_client_and_a_started_request_line_waits_for_the_header_timeout() {
        let t0 = Instant::now(); // the accept
        let header = s(10);
        assert_eq!(
            silence_step(b"", t0, header),
            SilenceStep::Become(Sniff::Line)
        );
        // What on_silence decides otherwise is taken as it is.
        assert_eq!(
            silence_step(b"hi", t0, header),
            SilenceStep::Become(Sniff::Line)
        );
        // Any prefix of a request line waits, until 10 s after the accept.
        for started in [&b"G"[..], b"GET / HT", b"GET / HTTP/1.1\r"] {
            assert_eq!(
                silence_step(started, t0, header),
                SilenceStep::AwaitFirstLine(t0 + s(10)),
                "{started:?}"
            );
        }
    }

    #[test]
    fn the_first_line_timer_fires_at_the_header_timeout_after_the_accept() {
        let t0 = Instant::now(); // the accept
        let id = ConnId::new(1, 1);
        let first_line = Some(Due::Conn(id, TimerKind::FirstLine));
        let mut timers = Timers::default();
        // The sniff timer, 300 ms after the accept: due 10 s after the
        // accept, not after the sniff timer.
        let step = silence_step(b"GET / HT", t0, s(10));
        assert_eq!(step, SilenceStep::AwaitFirstLine(t0 + s(10)));
        timers.arm(t0 + s(10), id, TimerKind::FirstLine);
        assert_eq!(timers.pop_due(t0 + s(10) - TICK), None);
        assert_eq!(timers.pop_due(t0 + s(10)), first_line);
        // Then it is HTTP, whose head began at the accept: 408 at once.
        assert_eq!(sniff::on_first_line_timeout(b"GET / HT"), Sniff::Http);
        assert_eq!(
            http_step(Some(t0), t0, t0 + s(10), s(10), s(30)),
            HttpStep::HeadLate
        );
        // A header timeout shorter than the sniff wait: due already when
        // the sniff timer fires, so it fires in the same turn.
        let step = silence_step(b"GET / HT", t0, ms(100));
        assert_eq!(step, SilenceStep::AwaitFirstLine(t0 + ms(100)));
        timers.arm(t0 + ms(100), id, TimerKind::FirstLine);
        assert_eq!(timers.pop_due(t0 + ms(300)), first_line);
    }

    #[test]
    fn a_request_head_is_due_at_the_header_timeout() {
        let t0 = Instant::now();
        let (header, idle) = (s(10), s(30));
        assert_eq!(
            http_step(Some(t0), t0, t0 + s(10) - TICK, header, idle),
            HttpStep::WaitUntil(t0 + s(10))
        );
        assert_eq!(
            http_step(Some(t0), t0, t0 + s(10), header, idle),
            HttpStep::HeadLate
        );
        assert_eq!(
            http_step(Some(t0), t0, t0 + s(10) + TICK, header, idle),
            HttpStep::HeadLate
        );
        // A head under way is never idle, even past the idle timeout.
        assert_eq!(
            http_step(Some(t0 + s(31)), t0, t0 + s(35), header, idle),
            HttpStep::WaitUntil(t0 + s(41))
        );
        assert_eq!(
            http_step(Some(t0), t0, t0 + s(6), header, s(5)),
            HttpStep::WaitUntil(t0 + s(10))
        );
    }

    #[test]
    fn a_keep_alive_connection_is_idle_at_the_idle_timeout_after_its_last_request() {
        let t0 = Instant::now();
        let (header, idle) = (s(10), s(30));
        // Answered at t0 + 2 s: the timer armed for that head finds it
        // answered and waits for the idle timeout from the answer.
        let answered = t0 + s(2);
        assert_eq!(
            http_step(None, answered, t0 + s(10), header, idle),
            HttpStep::WaitUntil(t0 + s(32))
        );
        assert_eq!(
            http_step(None, answered, t0 + s(32) - TICK, header, idle),
            HttpStep::WaitUntil(t0 + s(32))
        );
        assert_eq!(
            http_step(None, answered, t0 + s(32), header, idle),
            HttpStep::Idle
        );
        assert_eq!(
            http_step(None, answered, t0 + s(32) + TICK, header, idle),
            HttpStep::Idle
        );
    }

    #[test]
    fn a_line_client_is_silent_at_the_idle_timeout_after_its_last_input() {
        let t0 = Instant::now();
        let idle = s(60);
        assert_eq!(
            line_idle_step(t0, t0 + s(60) - TICK, idle),
            LineIdleStep::WaitUntil(t0 + s(60))
        );
        assert_eq!(line_idle_step(t0, t0 + s(60), idle), LineIdleStep::Silent);
        assert_eq!(
            line_idle_step(t0, t0 + s(60) + TICK, idle),
            LineIdleStep::Silent
        );
        // Input at t0 + 50 s: the timer armed for t0 + 60 s looks again at
        // t0 + 110 s.
        assert_eq!(
            line_idle_step(t0 + s(50), t0 + s(60), idle),
            LineIdleStep::WaitUntil(t0 + s(110))
        );
        // Held input counts as input now (the shell sets last_input = now).
        assert_eq!(
            line_idle_step(t0 + s(60), t0 + s(60), idle),
            LineIdleStep::WaitUntil(t0 + s(120))
        );
    }

    #[test]
    fn a_linger_timer_acts_on_how_the_connection_is_closing() {
        let t0 = Instant::now();
        let tick = Duration::from_nanos(1);
        assert_eq!(
            linger_step(Some(&Close::Dropping), None, t0),
            LingerStep::PokeDropping
        );
        let until = Some(t0 + LINGER);
        let lingering = Some(&Close::Lingering);
        assert_eq!(
            linger_step(lingering, until, t0 + LINGER),
            LingerStep::Close
        );
        assert_eq!(
            linger_step(lingering, until, t0 + LINGER + tick),
            LingerStep::Close
        );
        // A timer armed while it was being dropped, firing a tick after it
        // started to linger: the linger runs its full time.
        assert_eq!(linger_step(lingering, until, t0 + tick), LingerStep::Stale);
        assert_eq!(
            linger_step(lingering, until, t0 + LINGER - tick),
            LingerStep::Stale
        );
        assert_eq!(linger_step(lingering, None, t0), LingerStep::Close);
        assert_eq!(
            linger_step(Some(&Close::Doomed), None, t0),
            LingerStep::Stale
        );
        assert_eq!(
            linger_step(Some(&Close::AfterFlush), None, t0),
            LingerStep::Stale
        );
        assert_eq!(linger_step(None, None, t0), LingerStep::Stale);
    }

    #[test]
    fn a_dropped_slow_consumer_that_takes_nothing_is_closed_after_linger() {
        let t0 = Instant::now(); // the drop: progress_at = t0
        let by = Some(t0 + s(30));
        assert_eq!(drop_step(false, t0, by, t0 + LINGER), DropStep::GiveUp);
        assert_eq!(
            drop_step(false, t0, by, t0 + LINGER + TICK),
            DropStep::GiveUp
        );
        // A tick before, it still counts as taking bytes: LINGER from now.
        assert_eq!(
            drop_step(false, t0, by, t0 + LINGER - TICK),
            DropStep::WaitUntil(t0 + LINGER - TICK + LINGER)
        );
        // Without a deadline it is closed at once.
        assert_eq!(
            drop_step(false, t0 + LINGER, None, t0 + LINGER),
            DropStep::GiveUp
        );
    }

    #[test]
    fn a_dropped_slow_consumer_that_keeps_reading_gets_linger_more_until_its_deadline() {
        let t0 = Instant::now(); // the drop
        let by = Some(t0 + s(30));
        // Took bytes in this poke (the shell sets progress_at = now).
        assert_eq!(
            drop_step(false, t0 + LINGER, by, t0 + LINGER),
            DropStep::WaitUntil(t0 + LINGER + LINGER)
        );
        // Took bytes a tick after the drop (a flush): LINGER from now.
        assert_eq!(
            drop_step(false, t0 + TICK, by, t0 + LINGER),
            DropStep::WaitUntil(t0 + LINGER + LINGER)
        );
        // Near the deadline the next look is at the deadline, not past it.
        assert_eq!(
            drop_step(false, t0 + s(29), by, t0 + s(29)),
            DropStep::WaitUntil(t0 + s(30))
        );
        assert_eq!(
            drop_step(false, t0 + s(30) - TICK, by, t0 + s(30) - TICK),
            DropStep::WaitUntil(t0 + s(30))
        );
        // At the deadline it is closed, reading or not.
        assert_eq!(
            drop_step(false, t0 + s(30), by, t0 + s(30)),
            DropStep::GiveUp
        );
        assert_eq!(
            drop_step(false, t0 + s(30), by, t0 + s(30) + TICK),
            DropStep::GiveUp
        );
        // Everything out: it lingers, whatever the time.
        assert_eq!(drop_step(true, t0, by, t0 + s(31)), DropStep::AllOut);
        assert_eq!(drop_step(true, t0, by, t0 + s(1)), DropStep::AllOut);
    }
}
