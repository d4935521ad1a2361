//! Output, once the hub has spoken: each event rendered once per wire
//! format and the same bytes queued to every recipient (fan-out), every
//! dirty connection flushed, and the output-pressure rule of `pressure`
//! applied to what the sockets did not take: slow consumers dropped, chat
//! input paused and resumed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use log::{debug, trace};

use super::conn::{Close, ConnId, Phase};
use super::deadlines::{drop_step, DropStep};
use super::outbox::Flushed;
use super::pressure::{self, Slow};
use super::timers::{LoopTimer, TimerKind};
use super::{Server, LINGER};
use crate::hub::error::ErrorCode;
use crate::hub::event::{Effect, Event, LeaveReason, Recipients};
use crate::hub::names::RoomName;
use crate::proto::json;
use crate::proto::line;
use crate::proto::ws::frame;

/// Bytes written to one connection per turn: a reader with a big backlog
/// (a burst, a history page) gets the rest in the next turns, so one turn's
/// flush pass, and everyone's latency, stays short.
const WRITE_BUDGET: usize = 128 * 1024;
/// A dropped slow consumer that keeps reading, slowly, gets this long at
/// most to receive the rest of a line or frame already begun and its
/// goodbye, so that it is not cut off inside a line.
const DROP_MAX: Duration = Duration::from_secs(30);
/// A recipient with this much output queued is behind: typing hints, which
/// are worthless late, are dropped for it rather than queued.
const BEHIND: usize = 64 * 1024;

impl Server {
    /// Renders each event once per wire format and queues the same bytes
    /// to every recipient.
    pub(super) fn apply_effects(&mut self) {
        let mut effects = std::mem::take(&mut self.effects);
        self.hub.drain_effects(&mut effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Deliver { to, event } => self.deliver(&to, &event),
                Effect::Close(client) => {
                    let id = ConnId::from_client(client);
                    if let Some(conn) = self.conns.get_mut(id) {
                        conn.in_hub = false; // the hub has let it go already
                    }
                    self.close_after_flush(id);
                }
                Effect::Replaced(client) => {
                    let id = ConnId::from_client(client);
                    if let Some(conn) = self.conns.get_mut(id) {
                        conn.in_hub = false; // its session lives on elsewhere
                    }
                    debug!("{id}: session resumed by another connection");
                    self.close_ws(
                        id,
                        Some(frame::close::SESSION_REPLACED),
                        "session resumed elsewhere",
                    );
                }
            }
        }
        self.effects = effects;
    }

    fn deliver(&mut self, to: &Recipients, event: &Event) {
        let mut line_bytes: Option<Bytes> = None;
        // The JSON text framed once; `None` inside: not for WebSocket clients.
        let mut ws_bytes: Option<Option<Bytes>> = None;
        let droppable = matches!(event, Event::Typing(_));
        let public_url = self.public_url.clone();
        for client in to.iter() {
            let id = ConnId::from_client(client);
            let Some(conn) = self.conns.get_mut(id) else {
                continue;
            };
            if matches!(
                conn.close,
                Some(Close::Doomed | Close::Lingering | Close::Dropping)
            ) {
                continue;
            }
            if droppable && conn.outbox.len() > BEHIND {
                continue;
            }
            let bytes = match &conn.phase {
                Phase::Line { .. } => line_bytes
                    .get_or_insert_with(|| line::render(event, &public_url))
                    .clone(),
                Phase::Ws(ws) if !ws.close_sent => {
                    let framed = ws_bytes.get_or_insert_with(|| {
                        json::render(event).map(|text| frame::encode_text(&text))
                    });
                    match framed {
                        Some(b) => b.clone(),
                        None => continue,
                    }
                }
                Phase::Ws(_) | Phase::Sniffing { .. } | Phase::Http(_) => continue,
            };
            if bytes.is_empty() {
                continue; // nothing on this wire (a kick's leave on a line)
            }
            self.counters.deliveries += 1;
            self.conns.queue(id, bytes);
        }
    }

    /// Flushes every connection with queued output; a connection whose
    /// socket is full waits for its writable event.
    pub(super) fn flush_dirty(&mut self) {
        if !self.conns.has_dirty() {
            return;
        }
        let started = Instant::now();
        let now = self.now;
        let limits = self.limits;
        let flushes = self.counters.flushes;
        let mut largest = 0;
        for id in self.conns.take_dirty() {
            let Some(conn) = self.conns.flushing(id) else {
                continue;
            };
            if conn.close == Some(Close::Doomed) {
                continue;
            }
            self.turn_recipients += 1;
            if !conn.writable {
                // The socket is full: nothing goes out, but the backlog
                // still counts (a reader that stopped falls behind too).
                let unsent = conn.outbox.len();
                largest = largest.max(unsent);
                if pressure::after_flush(&mut conn.pressure, 0, unsent, now, &limits) {
                    self.watch.push(id);
                }
                continue;
            }
            let before = conn.outbox.len();
            self.counters.flushes += 1;
            let Some((conn, written)) = self.conns.write_out(id, WRITE_BUDGET) else {
                continue;
            };
            match written {
                Ok((how, n)) => {
                    self.counters.bytes_out += n as u64;
                    trace!("  {id}: wrote {n} of {before} bytes ({how:?})");
                    let unsent = conn.outbox.len();
                    largest = largest.max(unsent);
                    if pressure::after_flush(&mut conn.pressure, n, unsent, now, &limits) {
                        trace!("  {id}: {unsent} bytes unsent after a flush: high");
                        self.watch.push(id);
                    }
                    // Held for its own backlog, which is out now?
                    let unhold = conn.held && unsent <= limits.high();
                    if how == Flushed::WouldBlock {
                        conn.writable = false;
                    } else if how == Flushed::Budget {
                        self.more_output.push(id);
                    } else if matches!(conn.close, Some(Close::AfterFlush | Close::Dropping)) {
                        self.last_byte_out(id);
                    }
                    if unhold {
                        self.unhold(id);
                    }
                }
                Err(e) => {
                    debug!("write {id}: {e}");
                    self.counters.socket_error(&e);
                    self.doom(id, LeaveReason::Disconnect);
                }
            }
        }
        self.counters
            .backlog
            .record(now, self.conns.bytes_queued(), largest);
        if self.counters.flushes > flushes {
            let us = started.elapsed().as_micros() as u64;
            self.counters.flush_us_total += us;
            self.counters.flush_pass_us_max = self.counters.flush_pass_us_max.max(us);
        }
    }

    /// The turn's budget of chat input (see `pressure::turn_budget`).
    pub(super) fn turn_budget(&self) -> usize {
        pressure::turn_budget(&self.limits, self.counters.line + self.counters.ws)
    }

    /// After the turn's flush: who is a slow consumer, whether chat input
    /// pauses or resumes (see `pressure` for the rule).
    pub(super) fn review_pressure(&mut self, now: Instant) {
        let limits = self.limits;
        let mut slow = Vec::new();
        let mut behind = Vec::new();
        self.watch.retain(|&id| {
            let Some(conn) = self.conns.get(id) else {
                return false;
            };
            if conn.close.is_some() || !conn.pressure.high {
                return false;
            }
            if let Some(why) = pressure::verdict(&conn.pressure, now) {
                slow.push((id, why));
                return false;
            }
            if conn.pressure.draining(now) {
                behind.push(id);
            }
            true
        });
        let high = behind.len();
        for (id, why) in slow {
            if let Some(conn) = self.conns.get_mut(id) {
                if why == Slow::Stalled && !conn.pressure.poked {
                    // Try a write before believing it: the next flush says.
                    conn.pressure.poked = true;
                    conn.writable = true;
                    self.conns.mark_dirty(id);
                    self.watch.push(id);
                    continue;
                }
            }
            let unsent = self.conns.get(id).map_or(0, |c| c.outbox.len());
            let what = match why {
                Slow::Stalled => "stopped reading",
                Slow::NotCatchingUp => "did not catch up",
            };
            debug!("{id}: {unsent} bytes unsent, {what}; slow consumer");
            let goodbye = format!(
                "you fell more than {} bytes behind; disconnected",
                limits.max_outbound
            );
            self.drop_slow_consumer(id, &goodbye, "slow_consumer");
        }
        if self.conns.bytes_queued() > limits.total_high() {
            let mut conns: Vec<(ConnId, usize, Instant)> = self
                .conns
                .iter()
                .filter(|c| c.close.is_none() && !c.outbox.is_empty())
                .map(|c| (c.id, c.outbox.len(), c.pressure.progress_at))
                .collect();
            let victims =
                pressure::total_victims(&mut conns, self.conns.bytes_queued(), now, &limits);
            for id in victims {
                debug!("{id}: the biggest backlog over --max-outbound-total; slow consumer");
                self.drop_slow_consumer(
                    id,
                    "the server's output buffers are full and yours held the most; disconnected",
                    "outbound_total",
                );
            }
        }
        let total = self.conns.bytes_queued() > limits.total_high();
        let pause = match self.paused_since {
            None => total || pressure::readers_behind(high, self.turn_recipients),
            Some(_) => total || pressure::still_behind(high, self.pause_population),
        };
        if pause {
            // Whose input to hold: everyone when memory is the reason, else
            // the members of the rooms whose readers are behind (other
            // rooms go on). A change lets the held ones be looked at again.
            let scope = (!total).then(|| {
                behind
                    .iter()
                    .flat_map(|&id| self.hub.rooms_of(id.client()).iter().cloned())
                    .collect::<HashSet<RoomName>>()
            });
            if self.paused_since.is_some() && scope != self.pause_scope {
                self.release_held();
            }
            self.pause_scope = scope;
        }
        match (pause, self.paused_since) {
            (true, None) => {
                debug!(
                    "pausing chat input: {high} of {} recipients behind, {} bytes queued",
                    self.turn_recipients,
                    self.conns.bytes_queued()
                );
                self.paused_since = Some(now);
                self.pause_population = self.turn_recipients.max(high);
                self.counters.input_pauses += 1;
            }
            (false, Some(since)) => {
                let us = now.saturating_duration_since(since).as_micros() as u64;
                debug!("resuming chat input after {us} us");
                self.counters.input_paused_us += us;
                self.paused_since = None;
                self.pause_scope = None;
                self.release_held();
            }
            _ => {}
        }
        if (self.paused_since.is_some() || !self.watch.is_empty()) && !self.review_armed {
            // Stalled readers raise no events: look again soon.
            self.review_armed = true;
            self.timers
                .arm_loop(now + pressure::REVIEW_EVERY, LoopTimer::Review);
        }
    }

    /// Held connections are read again (the next turn looks at each).
    fn release_held(&mut self) {
        for id in std::mem::take(&mut self.held) {
            self.unhold(id);
        }
    }

    /// A held connection is read again; flood control is told how long its
    /// input waited.
    fn unhold(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        conn.held = false;
        if let Some(since) = conn.held_since.take() {
            let ms = self.now.saturating_duration_since(since).as_millis() as u64;
            if ms > 0 && conn.in_hub {
                debug!("{id}: input held {ms} ms; credited");
                self.hub.credit(id.client(), ms);
            }
        }
        self.backlog.push(id);
    }

    /// A client too far behind: its backlog is thrown away, its rooms see it
    /// leave (`slow consumer`), it is sent one goodbye in its protocol, and
    /// it is closed once that is out or after a deadline, whichever first.
    fn drop_slow_consumer(&mut self, id: ConnId, why: &str, metric: &'static str) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let goodbye = match &mut conn.phase {
            Phase::Ws(ws) if !ws.close_sent => {
                ws.close_sent = true;
                Some(frame::encode_close(
                    Some(frame::close::POLICY),
                    "slow consumer",
                ))
            }
            Phase::Line { .. } => Some(Bytes::from(format!(
                "!!! {}: {why}\n",
                ErrorCode::SlowConsumer
            ))),
            _ => None,
        };
        conn.close = Some(Close::Dropping);
        let now = self.now;
        conn.pressure.progress_at = now;
        conn.close_by = Some(now + DROP_MAX);
        let readable = conn.readable;
        // The unsent rest of a line or frame already begun must still go
        // out, or the goodbye would land in the middle of it.
        self.conns.discard_unstarted(id);
        if let Some(bytes) = goodbye {
            self.conns.queue(id, bytes);
        }
        self.conns.mark_dirty(id);
        if readable {
            // Its input is read and thrown away from now on (as when
            // lingering): closing with unread input would send a reset.
            self.backlog.push(id);
        }
        self.counters.drop_reason(metric);
        self.timers.arm(now + LINGER, id, TimerKind::Linger);
        self.end_client(id, LeaveReason::SlowConsumer);
    }

    /// A dropped slow consumer's deadline: write what its socket takes now
    /// (the kernel reports a full socket writable again only once a third
    /// of its buffer is free, which a slow reader may take seconds to
    /// make). It gets 2 s more while it keeps taking bytes, 30 s at most,
    /// so a reader that is slow but reading gets the rest of its last line
    /// and its goodbye whole; one that takes nothing is closed.
    pub(super) fn poke_dropping(&mut self, id: ConnId, now: Instant) {
        let Some((conn, written)) = self.conns.write_out(id, WRITE_BUDGET) else {
            return;
        };
        match written {
            Ok((how, n)) => {
                self.counters.bytes_out += n as u64;
                if n > 0 {
                    conn.pressure.progress_at = now;
                }
                let all_out = how == Flushed::All;
                match drop_step(all_out, conn.pressure.progress_at, conn.close_by, now) {
                    DropStep::AllOut => self.last_byte_out(id),
                    DropStep::WaitUntil(at) => {
                        conn.writable = how != Flushed::WouldBlock;
                        if how == Flushed::Budget {
                            self.more_output.push(id);
                        }
                        self.timers.arm(at, id, TimerKind::Linger);
                    }
                    DropStep::GiveUp => {
                        debug!("{id}: dropped slow consumer took nothing for {LINGER:?}; closing");
                        self.doom(id, LeaveReason::Disconnect);
                    }
                }
            }
            Err(e) => {
                debug!("write {id}: {e}");
                self.counters.socket_error(&e);
                self.doom(id, LeaveReason::Disconnect);
            }
        }
    }
}
