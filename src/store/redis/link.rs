//! One Redis connection's bookkeeping, without the socket: which command a
//! reply answers, and when to connect again.
//!
//! Redis answers the commands of a connection in the order they were sent,
//! one reply each, so matching is a queue: every command sent pushes its
//! tag, every reply pops the oldest. When the connection drops, every
//! command still waiting fails: Redis may or may not have run it, and the
//! caller decides (a message's `cid` makes a retry safe).
//!
//! Reconnecting: after a failure the link waits, doubling the wait from
//! 100 ms up to 5 s, with a random part so that several natter processes
//! do not come back in step; a connection that got as far as ready resets
//! the wait. Time is passed in (milliseconds), so the rules are tested in
//! virtual time.

use std::collections::VecDeque;

use crate::proto::resp::Value;

/// The first wait after a failure.
pub const BACKOFF_MIN_MS: u64 = 100;
/// The longest wait between attempts.
pub const BACKOFF_MAX_MS: u64 = 5_000;

/// Commands sent and not yet answered, oldest first.
#[derive(Debug)]
pub struct Pipeline<T> {
    waiting: VecDeque<T>,
}

impl<T> Default for Pipeline<T> {
    fn default() -> Self {
        Pipeline {
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Pipeline<T> {
    /// A command went out (its bytes are in the connection's write buffer).
    pub fn sent(&mut self, tag: T) {
        self.waiting.push_back(tag);
    }

    /// A reply came: the oldest command's. `None` when nothing was waiting:
    /// Redis said something nobody asked (the connection is then suspect).
    pub fn reply(&mut self, value: Value) -> Option<(T, Value)> {
        self.waiting.pop_front().map(|tag| (tag, value))
    }

    /// The connection dropped: every command still waiting, oldest first.
    pub fn fail_all(&mut self) -> Vec<T> {
        self.waiting.drain(..).collect()
    }

    /// The oldest command waiting.
    pub fn front(&self) -> Option<&T> {
        self.waiting.front()
    }

    /// Commands waiting for their reply.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// No command is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No connection; the next attempt is due then.
    Down {
        /// When the next attempt is due.
        retry_at: u64,
    },
    /// Connecting, or logging in and loading the script, since then.
    Connecting {
        /// When the attempt began.
        since: u64,
    },
    /// Taking commands.
    Ready,
}

/// What the shell should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing until then (or until an event).
    WaitUntil(u64),
    /// Open a connection now.
    Connect,
    /// Nothing to do.
    Idle,
}

/// The reconnect rule.
#[derive(Debug)]
pub struct Reconnect {
    state: State,
    /// Failures since the last time the link was ready.
    failures: u32,
    /// How long a connection may take to become ready.
    connect_timeout_ms: u64,
    rng: u64,
}

impl Reconnect {
    /// Down, due at once. `seed` makes the jitter differ between processes.
    pub fn new(now: u64, connect_timeout_ms: u64, seed: u64) -> Reconnect {
        Reconnect {
            state: State::Down { retry_at: now },
            failures: 0,
            connect_timeout_ms,
            rng: seed | 1,
        }
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether commands may be sent.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// What to do at `now`: connect when due; give up on a connection
    /// attempt that took too long (it counts as a failure: close it).
    pub fn step(&mut self, now: u64) -> Step {
        match self.state {
            State::Down { retry_at } if now >= retry_at => {
                self.state = State::Connecting { since: now };
                Step::Connect
            }
            State::Down { retry_at } => Step::WaitUntil(retry_at),
            State::Connecting { since } if now >= since + self.connect_timeout_ms => {
                self.failed(now);
                self.step(now)
            }
            State::Connecting { since } => Step::WaitUntil(since + self.connect_timeout_ms),
            State::Ready => Step::Idle,
        }
    }

    /// The connection is logged in and ready for commands.
    pub fn ready(&mut self) {
        self.state = State::Ready;
        self.failures = 0;
    }

    /// The connection (or the attempt) failed at `now`: wait, then again.
    pub fn failed(&mut self, now: u64) {
        self.failures = self.failures.saturating_add(1);
        let wait = self.backoff();
        self.state = State::Down {
            retry_at: now + wait,
        };
    }

    /// The wait after `failures` failures: doubling from the minimum up to
    /// the maximum, then a random 50-100% of it.
    fn backoff(&mut self) -> u64 {
        let shift = self.failures.saturating_sub(1).min(16);
        let full = (BACKOFF_MIN_MS << shift).min(BACKOFF_MAX_MS);
        // xorshift64: enough for jitter.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        full / 2 + self.rng % (full / 2 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ok() -> Value {
        Value::Simple(Bytes::from_static(b"OK"))
    }

    #[test]
    fn replies_answer_commands_in_the_order_they_were_sent() {
        let mut p = Pipeline::default();
        p.sent("a");
        p.sent("b");
        assert_eq!(p.reply(ok()), Some(("a", ok())));
        p.sent("c");
        assert_eq!(p.reply(Value::Int(2)), Some(("b", Value::Int(2))));
        assert_eq!(p.len(), 1);
        assert_eq!(p.fail_all(), vec!["c"]);
        assert!(p.is_empty());
        assert_eq!(p.reply(ok()), None, "a reply nobody asked for");
    }

    #[test]
    fn it_connects_at_once_then_backs_off_doubling_with_jitter() {
        let mut r = Reconnect::new(1_000, 2_000, 42);
        assert_eq!(r.step(1_000), Step::Connect);
        assert_eq!(r.state(), State::Connecting { since: 1_000 });
        // Each failure waits longer, up to the maximum, never less than half.
        let mut now = 1_000;
        let mut waits = Vec::new();
        for _ in 0..10 {
            r.failed(now);
            let State::Down { retry_at } = r.state() else {
                panic!("not down")
            };
            waits.push(retry_at - now);
            assert_eq!(r.step(retry_at - 1), Step::WaitUntil(retry_at));
            assert_eq!(r.step(retry_at), Step::Connect);
            now = retry_at;
        }
        for (i, w) in waits.iter().enumerate() {
            let full = (BACKOFF_MIN_MS << i).min(BACKOFF_MAX_MS);
            assert!(*w >= full / 2 && *w <= full, "wait {i}: {w} of {full}");
        }
        assert!(waits[9] >= BACKOFF_MAX_MS / 2);
        // Ready resets the backoff.
        r.ready();
        assert!(r.is_ready());
        assert_eq!(r.step(now + 60_000), Step::Idle);
        r.failed(now);
        let State::Down { retry_at } = r.state() else {
            panic!("not down")
        };
        assert!(retry_at - now <= BACKOFF_MIN_MS);
    }

    #[test]
    fn an_attempt_that_takes_too_long_is_a_failure() {
        let mut r = Reconnect::new(0, 2_000, 7);
        assert_eq!(r.step(0), Step::Connect);
        assert_eq!(r.step(1_999), Step::WaitUntil(2_000));
        // At the timeout: failed, and a new attempt is due later.
        match r.step(2_000) {
            Step::WaitUntil(at) => assert!((2_050..=2_100).contains(&at), "{at}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_processes_do_not_retry_in_step() {
        let mut a = Reconnect::new(0, 1_000, 1);
        let mut b = Reconnect::new(0, 1_000, 2);
        let mut same = 0;
        for i in 0..20 {
            a.failed(i * 10_000);
            b.failed(i * 10_000);
            if a.state() == b.state() {
                same += 1;
            }
        }
        assert!(same < 5, "{same} of 20 retries at the same moment");
    }
}
