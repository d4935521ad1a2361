//! Flood control: a token bucket per client, as pure arithmetic on the time
//! the shell passes in.
//!
//! Each client may send `rate` messages a second with bursts of `burst`;
//! beyond that its messages are dropped, with at most one `rate_limited`
//! error a second so that the refusals cannot become a flood of their own.

/// Milli-tokens: integer arithmetic, no drift.
const MILLI: u64 = 1000;

/// Flood control's settings, `--rate` and `--burst`: the same for every
/// client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub rate: u64,
    /// Most tokens held at once.
    pub burst: u64,
}

/// What the bucket says about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through: it took a token.
    Allow,
    /// Drop it and tell the client.
    DropAndWarn,
    /// Drop it silently: the client was told less than a second ago.
    Drop,
}

/// One client's bucket: it holds up to `burst` tokens, gains `rate` a
/// second, and each room message, action, image or direct message takes one.
#[derive(Clone, Debug)]
pub struct Bucket {
    milli_tokens: u64,
    last_ms: u64,
    /// When the client was last told it is rate limited.
    warned_ms: Option<u64>,
    /// Tokens beyond `burst`, for time the server did not read the client
    /// (flow control): its messages arrive bunched up through no fault of
    /// its own. Used once, at most a burst's worth.
    extra_milli: u64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn new(limit: RateLimit, now_ms: u64) -> Bucket {
        Bucket {
            milli_tokens: limit.burst * MILLI,
            last_ms: now_ms,
            warned_ms: None,
            extra_milli: 0,
        }
    }

    /// The server held this client's input for `held_ms`: what it sent in
    /// that time is not counted against it, up to half a burst (so a flood
    /// of two bursts is still refused in part however long it was held).
    pub fn credit(&mut self, limit: RateLimit, held_ms: u64) {
        self.extra_milli = self
            .extra_milli
            .saturating_add(held_ms.saturating_mul(limit.rate))
            .min(limit.burst * MILLI / 2);
    }

    /// Takes one token for a message sent at `now_ms`.
    pub fn take(&mut self, limit: RateLimit, now_ms: u64) -> Verdict {
        // The wall clock may step back: never refill on a negative interval.
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(limit.rate))
            .min(limit.burst * MILLI);
        if self.milli_tokens >= MILLI {
            self.milli_tokens -= MILLI;
            return Verdict::Allow;
        }
        if self.extra_milli >= MILLI {
            self.extra_milli -= MILLI;
            return Verdict::Allow;
        }
        match self.warned_ms {
            Some(t) if now_ms.saturating_sub(t) < 1000 => Verdict::Drop,
            _ => {
                self.warned_ms = Some(now_ms);
                Verdict::DropAndWarn
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        rate: 10,
        burst: 20,
    };

    #[test]
    fn time_held_by_the_server_is_credited_up_to_half_a_burst() {
        let mut b = Bucket::new(LIMIT, 0);
        for _ in 0..20 {
            assert_eq!(b.take(LIMIT, 0), Verdict::Allow);
        }
        assert_eq!(b.take(LIMIT, 0), Verdict::DropAndWarn);
        // Held for 0.8 s: 8 more, beyond the refill.
        b.credit(LIMIT, 800);
        for _ in 0..8 {
            assert_eq!(b.take(LIMIT, 0), Verdict::Allow);
        }
        assert_eq!(b.take(LIMIT, 0), Verdict::Drop);
        // Never more than half a burst of credit.
        b.credit(LIMIT, 60_000);
        for _ in 0..10 {
            assert_eq!(b.take(LIMIT, 0), Verdict::Allow);
        }
        assert_ne!(b.take(LIMIT, 0), Verdict::Allow);
    }

    #[test]
    fn a_burst_then_the_rate() {
        let mut b = Bucket::new(LIMIT, 0);
        for i in 0..20 {
            assert_eq!(b.take(LIMIT, 0), Verdict::Allow, "message {i}");
        }
        assert_eq!(b.take(LIMIT, 0), Verdict::DropAndWarn);
        assert_eq!(b.take(LIMIT, 10), Verdict::Drop, "one warning a second");
        // 100 ms later one token has come back.
        assert_eq!(b.take(LIMIT, 110), Verdict::Allow);
        assert_eq!(b.take(LIMIT, 110), Verdict::Drop);
        assert_eq!(
            b.take(LIMIT, 1001),
            Verdict::Allow,
            "900 ms refill 9 tokens"
        );
        // Spend the refill; the refusal that ends it, a second after the
        // first warning, warns again.
        let mut n = 0;
        while b.take(LIMIT, 1001) == Verdict::Allow {
            n += 1;
        }
        assert_eq!(n, 8);
        assert_eq!(b.take(LIMIT, 1002), Verdict::Drop);
        let mut b2 = b.clone();
        assert_eq!(b2.take(LIMIT, 1001), Verdict::Drop);
        assert_eq!(b.take(LIMIT, 1050), Verdict::Drop);
    }

    #[test]
    fn steady_rate_is_never_limited_and_idle_time_refills_only_to_burst() {
        let mut b = Bucket::new(LIMIT, 0);
        for i in 0..1000u64 {
            assert_eq!(b.take(LIMIT, i * 100), Verdict::Allow, "message {i}");
        }
        let mut b = Bucket::new(LIMIT, 0);
        let allowed = (0..100).filter(|_| b.take(LIMIT, 3_600_000) == Verdict::Allow);
        assert_eq!(allowed.count(), 20);
    }

    #[test]
    fn a_clock_step_backwards_does_not_refill() {
        let mut b = Bucket::new(LIMIT, 10_000);
        for _ in 0..20 {
            b.take(LIMIT, 10_000);
        }
        assert_ne!(b.take(LIMIT, 5_000), Verdict::Allow);
        assert_ne!(b.take(LIMIT, 10_050), Verdict::Allow);
        assert_eq!(b.take(LIMIT, 10_100), Verdict::Allow);
    }
}
