//! The loop's own figures: [`Counters`], kept as the loop runs, and the
//! two ways they are read over HTTP, `GET /metrics` (Prometheus text) and
//! `GET /api/stats` (JSON); `/stats` on a line connection shows
//! [`Counters::snapshot`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use super::conn::Kind;
use super::Server;
use crate::proto::line::Stats;

/// The loop's own figures; `/stats` and metrics read them. (The bytes
/// queued are not here: `Conns` keeps that total.)
#[derive(Default, Debug)]
pub(super) struct Counters {
    pub(super) loop_iterations: u64,
    pub(super) poll_events: u64,
    pub(super) deliveries: u64,
    pub(super) bytes_in: u64,
    pub(super) bytes_out: u64,
    pub(super) pending: usize,
    pub(super) line: usize,
    pub(super) http: usize,
    pub(super) ws: usize,
    pub(super) accepted: u64,
    pub(super) http_responses: u64,
    /// Store commits that wrote something, and their time in microseconds.
    pub(super) commits: u64,
    pub(super) commit_us_total: u64,
    pub(super) commit_us_max: u64,
    /// WAL checkpoints on the helper thread and their time in microseconds.
    pub(super) checkpoints: u64,
    pub(super) checkpoint_us_total: u64,
    pub(super) checkpoint_us_max: u64,
    /// Checkpoints the loop ran itself because the WAL fell far behind
    /// (see `WAL_FAR`), and their time in microseconds.
    pub(super) loop_checkpoints: u64,
    pub(super) loop_checkpoint_us_total: u64,
    pub(super) loop_checkpoint_us_max: u64,
    /// WAL restarts: the last few pages of a long WAL copied on the loop
    /// (see `--wal-restart-pages`), and their time in microseconds.
    pub(super) wal_restarts: u64,
    pub(super) wal_restart_us_total: u64,
    pub(super) wal_restart_us_max: u64,
    /// Batches of messages put in the search index (see `index_pending`),
    /// the messages, and their time in microseconds.
    pub(super) index_batches: u64,
    pub(super) indexed: u64,
    pub(super) index_us_total: u64,
    pub(super) index_us_max: u64,
    /// Password jobs (Argon2id hashes and checks) done, and their time on
    /// the helper thread in microseconds.
    pub(super) password_jobs: u64,
    pub(super) password_us_total: u64,
    pub(super) password_us_max: u64,
    /// Per-connection flushes (one `send` or `writev` each, unless a queue
    /// is longer than one call takes), the time they took in microseconds,
    /// and the longest pass over the dirty connections.
    pub(super) flushes: u64,
    pub(super) flush_us_total: u64,
    pub(super) flush_pass_us_max: u64,
    /// What the sockets left unsent after the flush passes of the last
    /// second or two (`/loop` charts it).
    pub(super) backlog: Backlog,
    /// Connections the server dropped, by reason (for metrics).
    pub(super) dropped: BTreeMap<&'static str, u64>,
    /// Times chat input was paused because readers fell behind, and for
    /// how long in all (microseconds).
    pub(super) input_pauses: u64,
    pub(super) input_paused_us: u64,
    /// TLS handshakes begun (a first byte 0x16 on a TLS port), finished,
    /// and failed (refused by rustls at once, or closed before finishing:
    /// an error, the deadline, the client gone), so that begun = done +
    /// failed + under way; and TLS connections open now.
    pub(super) tls_handshakes: u64,
    pub(super) tls_done: u64,
    pub(super) tls_failures: u64,
    /// ClientHellos that waited for a later turn (`HANDSHAKE_BUDGET`).
    pub(super) tls_deferred: u64,
    pub(super) tls_open: usize,
}

impl Counters {
    pub(super) fn kind_mut(&mut self, kind: Kind) -> &mut usize {
        match kind {
            Kind::Pending => &mut self.pending,
            Kind::Line => &mut self.line,
            Kind::Http => &mut self.http,
            Kind::Ws => &mut self.ws,
        }
    }

    pub(super) fn drop_reason(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// A socket the kernel gave up on: `TCP_USER_TIMEOUT` or keepalive
    /// ran out (the peer's network died, or its receive window stayed shut;
    /// see docs/LIFECYCLE.md). Resets and the like are the peer's doing.
    pub(super) fn socket_error(&mut self, e: &io::Error) {
        if e.kind() == ErrorKind::TimedOut {
            self.drop_reason("tcp_timeout");
        }
    }

    pub(super) fn snapshot(&self, messages: u64, bytes_queued: usize) -> Stats {
        Stats {
            line: self.line,
            http: self.http,
            ws: self.ws,
            pending: self.pending,
            loop_iterations: self.loop_iterations,
            poll_events: self.poll_events,
            bytes_queued,
            messages,
            deliveries: self.deliveries,
        }
    }
}

impl Server {
    /// A connection changed protocol: it is counted under its new kind.
    pub(super) fn move_kind(&mut self, from: Kind, to: Kind) {
        *self.counters.kind_mut(from) -= 1;
        *self.counters.kind_mut(to) += 1;
    }

    /// Prometheus text format: the loop counts these itself.
    pub(super) fn metrics(&self) -> String {
        let c = &self.counters;
        let mut m = String::with_capacity(2048);
        family(
            &mut m,
            "natter_connections",
            "gauge",
            "Open connections by protocol.",
        );
        for (kind, n) in [
            ("line", c.line),
            ("http", c.http),
            ("ws", c.ws),
            ("pending", c.pending),
        ] {
            let _ = writeln!(m, "natter_connections{{kind=\"{kind}\"}} {n}");
        }
        if let Some(r) = &self.redis {
            family(
                &mut m,
                "natter_redis_up",
                "gauge",
                "1 while both connections to Redis (--redis) are ready.",
            );
            let _ = writeln!(m, "natter_redis_up {}", u8::from(r.up()));
            family(
                &mut m,
                "natter_redis_rtt_seconds",
                "gauge",
                "The latest round trip of a PING to Redis (sent each second).",
            );
            let rtt = r.rtt.map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(m, "natter_redis_rtt_seconds {rtt:.6}");
            family(
                &mut m,
                "natter_redis_waiting",
                "gauge",
                "Commands sent to Redis and not answered yet.",
            );
            let _ = writeln!(m, "natter_redis_waiting {}", r.waiting());
            family(
                &mut m,
                "natter_redis_failures_total",
                "counter",
                "Connections to Redis that failed or were dropped.",
            );
            let _ = writeln!(m, "natter_redis_failures_total {}", r.failures);
        }
        let gauges: [(&str, &str, u64); 7] = [
            (
                "natter_tls_connections",
                "Open connections over TLS (any protocol inside, handshakes under way too).",
                c.tls_open as u64,
            ),
            (
                "natter_store_wal_pages",
                "Pages in SQLite's write-ahead log after the latest commit.",
                u64::from(self.store.wal_pages()),
            ),
            (
                "natter_rooms",
                "Rooms with members.",
                self.hub.rooms() as u64,
            ),
            (
                "natter_bytes_queued",
                "Bytes waiting in output queues.",
                self.conns.bytes_queued() as u64,
            ),
            (
                "natter_bytes_queued_limit",
                "--max-outbound-total: past half of it chat input pauses.",
                self.limits.max_total as u64,
            ),
            (
                "natter_input_paused",
                "1 while chat input is paused because readers are behind.",
                u64::from(self.paused_since.is_some()),
            ),
            (
                "natter_connections_behind",
                "Connections with over half of --max-outbound unsent after a flush.",
                self.watch.len() as u64,
            ),
        ];
        for (name, help, v) in gauges {
            family(&mut m, name, "gauge", help);
            let _ = writeln!(m, "{name} {v}");
        }
        let paused_us = c.input_paused_us
            + self.paused_since.map_or(0, |t| {
                self.now.saturating_duration_since(t).as_micros() as u64
            });
        let counters: [(&str, &str, u64); 24] = [
            (
                "natter_messages_total",
                "Room messages accepted.",
                self.hub.messages_total(),
            ),
            (
                "natter_deliveries_total",
                "Events queued to a recipient.",
                c.deliveries,
            ),
            (
                "natter_bytes_out_total",
                "Bytes written to sockets.",
                c.bytes_out,
            ),
            (
                "natter_bytes_in_total",
                "Bytes read from sockets.",
                c.bytes_in,
            ),
            (
                "natter_loop_iterations_total",
                "Wake-ups of the event loop.",
                c.loop_iterations,
            ),
            (
                "natter_poll_events_total",
                "Readiness events returned by poll.",
                c.poll_events,
            ),
            ("natter_accepted_total", "Connections accepted.", c.accepted),
            (
                "natter_http_responses_total",
                "HTTP responses sent.",
                c.http_responses,
            ),
            (
                "natter_store_commits_total",
                "SQLite transactions that stored messages.",
                c.commits,
            ),
            (
                "natter_store_checkpoints_total",
                "SQLite WAL checkpoints, run on the helper thread.",
                c.checkpoints,
            ),
            (
                "natter_store_checkpoint_microseconds_total",
                "Time the helper thread spent in checkpoints, in microseconds.",
                c.checkpoint_us_total,
            ),
            (
                "natter_store_loop_checkpoints_total",
                "SQLite WAL checkpoints the loop ran itself: the WAL had fallen far behind.",
                c.loop_checkpoints,
            ),
            (
                "natter_store_wal_restarts_total",
                "Times the loop copied the last few pages of a long WAL itself, so that it starts over.",
                c.wal_restarts,
            ),
            (
                "natter_store_wal_restart_microseconds_total",
                "Time the loop spent on WAL restarts, in microseconds.",
                c.wal_restart_us_total,
            ),
            (
                "natter_store_indexed_total",
                "Messages put in the search index, in batches at the end of a turn.",
                c.indexed,
            ),
            (
                "natter_store_index_microseconds_total",
                "Time the loop spent putting messages in the search index, in microseconds.",
                c.index_us_total,
            ),
            (
                "natter_password_jobs_total",
                "Passwords hashed or checked (Argon2id) on the helper thread.",
                c.password_jobs,
            ),
            (
                "natter_password_microseconds_total",
                "Time the helper thread spent on passwords, in microseconds.",
                c.password_us_total,
            ),
            (
                "natter_input_pauses_total",
                "Times chat input paused because readers fell behind.",
                c.input_pauses,
            ),
            (
                "natter_input_paused_microseconds_total",
                "Time chat input was paused, in microseconds.",
                paused_us,
            ),
            (
                "natter_tls_handshakes_total",
                "TLS handshakes begun (a first byte 0x16 on a TLS port): done + failed + those under way.",
                c.tls_handshakes,
            ),
            (
                "natter_tls_handshakes_done_total",
                "TLS handshakes finished.",
                c.tls_done,
            ),
            (
                "natter_tls_handshake_failures_total",
                "TLS handshakes that failed: refused by rustls, or closed before finishing (an error, --header-timeout, the client gone).",
                c.tls_failures,
            ),
            (
                "natter_tls_handshakes_deferred_total",
                "ClientHellos left for a later turn: a turn spends at most 2 ms starting TLS sessions.",
                c.tls_deferred,
            ),
        ];
        for (name, help, v) in counters {
            family(&mut m, name, "counter", help);
            let _ = writeln!(m, "{name} {v}");
        }
        family(
            &mut m,
            "natter_dropped_connections_total",
            "counter",
            "Connections the server dropped, by reason.",
        );
        for (reason, n) in c.dropped.iter() {
            let _ = writeln!(
                m,
                "natter_dropped_connections_total{{reason=\"{reason}\"}} {n}"
            );
        }
        m
    }

    /// `GET /api/stats`: the loop's own figures.
    pub(super) fn stats_json(&self) -> Vec<u8> {
        let c = &self.counters;
        let stats = c.snapshot(self.hub.messages_total(), self.conns.bytes_queued());
        let paused_us = c.input_paused_us
            + self.paused_since.map_or(0, |t| {
                self.now.saturating_duration_since(t).as_micros() as u64
            });
        let backlog = c.backlog.recent(self.now);
        let value = serde_json::json!({
            "connections": {"line": c.line, "http": c.http, "ws": c.ws, "pending": c.pending},
            "loop_iterations": c.loop_iterations,
            "poll_events": c.poll_events,
            "events_per_wakeup": stats.events_per_wakeup(),
            "bytes_queued": self.conns.bytes_queued(),
            "bytes_in": c.bytes_in,
            "bytes_out": c.bytes_out,
            "messages": self.hub.messages_total(),
            "deliveries": c.deliveries,
            "rooms": self.hub.rooms(),
            "redis": self.redis.as_ref().map(|r| serde_json::json!({
                "up": r.up(),
                "rtt_us": r.rtt.map(|d| d.as_micros() as u64),
                "waiting": r.waiting(),
                "failures": r.failures,
                "arrived": r.arrived,
            })),
            "tls": {"enabled": self.tls.is_some(), "open": c.tls_open,
                    "handshakes": c.tls_handshakes, "done": c.tls_done,
                    "failures": c.tls_failures, "deferred": c.tls_deferred},
            "store": {"commits": c.commits, "commit_us_total": c.commit_us_total,
                      "commit_us_max": c.commit_us_max, "checkpoints": c.checkpoints,
                      "checkpoint_us_total": c.checkpoint_us_total,
                      "checkpoint_us_max": c.checkpoint_us_max,
                      "loop_checkpoints": c.loop_checkpoints,
                      "loop_checkpoint_us_total": c.loop_checkpoint_us_total,
                      "loop_checkpoint_us_max": c.loop_checkpoint_us_max,
                      "wal_restarts": c.wal_restarts,
                      "wal_restart_us_total": c.wal_restart_us_total,
                      "wal_restart_us_max": c.wal_restart_us_max,
                      "index_batches": c.index_batches, "indexed": c.indexed,
                      "index_us_total": c.index_us_total, "index_us_max": c.index_us_max,
                      "unindexed": self.store.unindexed(),
                      "wal_pages": self.store.wal_pages()},
            "helper": {"queued": self.helper.queued(), "password_jobs": c.password_jobs,
                       "password_us_total": c.password_us_total,
                       "password_us_max": c.password_us_max},
            "flushes": {"count": c.flushes, "us_total": c.flush_us_total,
                        "pass_us_max": c.flush_pass_us_max},
            "output": {"bytes_queued": self.conns.bytes_queued(),
                       "max_outbound": self.limits.max_outbound,
                       "max_outbound_total": self.limits.max_total,
                       "behind": self.watch.len(),
                       "input_paused": self.paused_since.is_some(),
                       "input_pauses": c.input_pauses,
                       "input_paused_us_total": paused_us,
                       "held": self.held.len(),
                       "unsent_recent": {"total": backlog.0, "largest": backlog.1},
                       "dropped": &c.dropped},
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// The most output left unsent after a flush pass (the sockets' buffers
/// full, `WouldBlock`), in all and on one connection, over a window of one
/// to two seconds. Rolled over when a pass records, never by a timer: an
/// idle loop does not wake for it.
#[derive(Default, Debug)]
pub(super) struct Backlog {
    /// (total, largest) in the window running since `end - 1 s`.
    cur: (usize, usize),
    /// The same for the second before it.
    prev: (usize, usize),
    end: Option<Instant>,
}

const WINDOW: Duration = Duration::from_secs(1);

impl Backlog {
    /// A flush pass at `now` left `total` bytes unsent, `largest` of them
    /// on one connection.
    pub(super) fn record(&mut self, now: Instant, total: usize, largest: usize) {
        match self.end {
            Some(end) if now < end => {}
            Some(end) if now < end + WINDOW => {
                self.prev = self.cur;
                self.cur = (0, 0);
                self.end = Some(end + WINDOW);
            }
            _ => {
                self.prev = (0, 0);
                self.cur = (0, 0);
                self.end = Some(now + WINDOW);
            }
        }
        self.cur = (self.cur.0.max(total), self.cur.1.max(largest));
    }

    /// (total, largest): the most left unsent in the last one to two
    /// seconds before `now`.
    pub(super) fn recent(&self, now: Instant) -> (usize, usize) {
        match self.end {
            Some(end) if now < end => (self.cur.0.max(self.prev.0), self.cur.1.max(self.prev.1)),
            Some(end) if now < end + WINDOW => self.cur,
            _ => (0, 0),
        }
    }
}

/// The `# HELP` and `# TYPE` lines of one metric family.
fn family(m: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_is_the_most_of_the_last_second_or_two() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut b = Backlog::default();
        assert_eq!(b.recent(t0), (0, 0));
        b.record(ms(0), 500, 300);
        b.record(ms(400), 200, 200);
        assert_eq!(b.recent(ms(900)), (500, 300), "the most, not the last");
        // The next second: the first still counts, beside the new.
        b.record(ms(1_100), 100, 50);
        assert_eq!(b.recent(ms(1_500)), (500, 300));
        // Two seconds on, only the second window's.
        assert_eq!(b.recent(ms(2_100)), (100, 50));
        // Long idle: nothing, and a new pass starts afresh.
        assert_eq!(b.recent(ms(9_000)), (0, 0));
        b.record(ms(9_000), 7, 7);
        assert_eq!(b.recent(ms(9_500)), (7, 7));
    }

    #[test]
    fn only_a_kernel_timeout_counts_as_tcp_timeout() {
        let mut c = Counters::default();
        c.socket_error(&io::Error::from(ErrorKind::ConnectionReset));
        c.socket_error(&io::Error::from(ErrorKind::BrokenPipe));
        assert!(c.dropped.is_empty(), "{:?}", c.dropped);
        c.socket_error(&io::Error::from(ErrorKind::TimedOut));
        assert_eq!(c.dropped.get("tcp_timeout"), Some(&1));
    }
}
