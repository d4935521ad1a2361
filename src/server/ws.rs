//! WebSocket connections: frames decoded by `proto::ws`, messages parsed by
//! `proto::json`, requests handed to the hub.
//!
//! Control frames are answered here: a ping with a pong (at most one per
//! read, for the latest ping), a close with the same code, a protocol
//! violation with the RFC's close code. A client silent for
//! `--ping-interval` is pinged; silent as long again, it has vanished.

use std::time::{Duration, Instant};

use log::debug;

use super::conn::{ConnId, Phase};
use super::os::random_hex;
use super::persist;
use super::timers::TimerKind;
use super::Server;
use crate::hub::command::Command;
use crate::hub::event::LeaveReason;
use crate::proto::json;
use crate::proto::ws::{frame, Incoming};

/// Pongs answered one for one within one read; beyond, only the latest.
const MAX_PONGS: usize = 32;

impl Server {
    /// Frames for a WebSocket connection.
    pub(super) fn on_ws(&mut self, id: ConnId, data: &[u8]) {
        let Server {
            conns,
            hub,
            store,
            store_ops,
            counters,
            redis,
            now: at,
            urandom,
            ..
        } = self;
        let at = *at;
        let Some(conn) = conns.get_mut(id) else {
            return;
        };
        let Phase::Ws(ws) = &mut conn.phase else {
            return;
        };
        if ws.close_sent {
            return; // after our close frame, nothing more is read (RFC 6455 §5.5.1)
        }
        ws.last_frame = at;
        ws.ping_sent = None;
        let client = id.client();
        let now = self.wall;
        let echo = ws.echo;
        let mut close: Option<(Option<u16>, bool)> = None;
        // Pongs (and echoes) in the order their frames came, so a pong for
        // a ping sent between two fragments precedes the message's answer.
        let mut out: Vec<bytes::Bytes> = Vec::new();
        let mut pongs = 0;
        let mut last_pong: Option<usize> = None;
        let result = ws.decoder.decode(data, |incoming| match incoming {
            Incoming::Text(text) if echo => out.push(frame::encode_text(text.as_bytes())),
            Incoming::Binary(data) if echo => out.push(frame::encode_binary(data)),
            Incoming::Text(text) => match json::parse(text) {
                Ok(mut req) => {
                    if let Command::Image { id, .. } = &mut req.command {
                        *id = random_hex(urandom, 16);
                    }
                    hub.handle(now, client, req.command, req.r#ref);
                    persist::run(
                        hub,
                        &mut **store,
                        redis.as_mut(),
                        store_ops,
                        counters,
                        now,
                        at,
                    );
                }
                Err(refusal) => {
                    debug!("{id}: {} in a WebSocket message", refusal.error.code);
                    hub.tell_error(client, refusal.error, refusal.r#ref);
                }
            },
            // Only an echo decoder delivers binary messages.
            Incoming::Binary(_) => {}
            // Every ping gets its pong, up to MAX_PONGS per read; past that
            // only the latest is answered, which §5.5.3 allows ("MAY elect
            // to send a Pong frame for only the most recently processed
            // Ping frame"), so a ping flood cannot grow our output faster
            // than the reads that carry it.
            Incoming::Ping(payload) => {
                let pong = frame::encode_pong(payload);
                match last_pong {
                    Some(i) if pongs >= MAX_PONGS => out[i] = pong,
                    _ => {
                        pongs += 1;
                        last_pong = Some(out.len());
                        out.push(pong);
                    }
                }
            }
            Incoming::Pong(_) => {}
            Incoming::Close { code, .. } => close = Some((code, true)),
        });
        for bytes in out {
            self.conns.queue(id, bytes);
        }
        if let Err(e) = result {
            debug!("{id}: WebSocket protocol error {}: {}", e.code, e.reason);
            self.counters.drop_reason("protocol_error");
            self.close_ws(id, Some(e.code), e.reason);
            self.end_client(id, LeaveReason::Disconnect);
            return;
        }
        if let Some((code, _)) = close {
            // The client said goodbye: answer with the same code. 1001
            // ("going away") is what a browser sends when its page is
            // reloaded or its tab closed: the session is held for
            // --resume-grace as if the connection had vanished, so a reload
            // is invisible to the room. Any other close leaves at once.
            self.close_ws(id, code, "");
            if code == Some(frame::close::GOING_AWAY) {
                self.hold_session(id);
            } else {
                self.end_client(id, LeaveReason::Quit(None));
            }
        }
    }

    /// Sends our close frame (once) and closes the TCP connection after it:
    /// the server closes first (RFC 6455 §7.1.1).
    pub(super) fn close_ws(&mut self, id: ConnId, code: Option<u16>, reason: &str) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let Phase::Ws(ws) = &mut conn.phase else {
            return;
        };
        if ws.close_sent || conn.close.is_some() {
            return;
        }
        ws.close_sent = true;
        self.conns.queue(id, frame::encode_close(code, reason));
        self.close_after_flush(id);
    }

    /// The ping timer: ping a silent client; drop one that stayed silent.
    pub(super) fn ws_timer(&mut self, id: ConnId, now: Instant) {
        let interval = self.config.ping_interval();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.close.is_some() {
            return;
        }
        let held = conn.held;
        let Phase::Ws(ws) = &mut conn.phase else {
            return;
        };
        if held {
            // Its input waits unread while chat input is paused: it is
            // alive, we are the ones not reading.
            ws.last_frame = now;
            ws.ping_sent = None;
        }
        match ping_step(ws.last_frame, ws.ping_sent, now, interval) {
            PingStep::Vanished => {
                debug!("{id}: no frame for {:?} after a ping; vanished", interval);
                self.counters.drop_reason("ping_timeout");
                self.doom(id, LeaveReason::Timeout);
            }
            PingStep::Ping { again_at } => {
                ws.ping_sent = Some(now);
                self.timers.arm(again_at, id, TimerKind::WsPing);
                self.conns.queue(id, frame::encode_ping(b"natter"));
            }
            PingStep::WaitUntil(at) => self.timers.arm(at, id, TimerKind::WsPing),
        }
    }
}

/// What the ping timer does for a WebSocket client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PingStep {
    /// Pinged, and no frame since for a whole interval: it is gone.
    Vanished,
    /// Silent for an interval: ping it, and look again at `again_at`.
    Ping { again_at: Instant },
    /// Nothing due yet: look again then.
    WaitUntil(Instant),
}

/// The ping rule as a function of time alone (so it is tested in virtual
/// time): a client silent for `interval` is pinged; one that then stays
/// silent for another `interval` has vanished. Any frame clears the ping.
fn ping_step(
    last_frame: Instant,
    ping_sent: Option<Instant>,
    now: Instant,
    interval: Duration,
) -> PingStep {
    match ping_sent {
        Some(sent) if now >= sent + interval => PingStep::Vanished,
        Some(sent) => PingStep::WaitUntil(sent + interval),
        None if now >= last_frame + interval => PingStep::Ping {
            again_at: now + interval,
        },
        None => PingStep::WaitUntil(last_frame + interval),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_is_pinged_then_gone_a_frame_clears_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let iv = s(30);
        // A frame at t0: nothing due until t0 + 30 s.
        assert_eq!(
            ping_step(t0, None, t0 + s(10), iv),
            PingStep::WaitUntil(t0 + s(30))
        );
        // Silent for 30 s: pinged, looked at again 30 s later.
        assert_eq!(
            ping_step(t0, None, t0 + s(30), iv),
            PingStep::Ping {
                again_at: t0 + s(60)
            }
        );
        // A timer firing early (another one armed before) waits for the ping's.
        assert_eq!(
            ping_step(t0, Some(t0 + s(30)), t0 + s(45), iv),
            PingStep::WaitUntil(t0 + s(60))
        );
        // No frame for an interval after the ping: vanished.
        assert_eq!(
            ping_step(t0, Some(t0 + s(30)), t0 + s(60), iv),
            PingStep::Vanished
        );
        // A frame after the ping (the decoder clears ping_sent): counted
        // from that frame again.
        assert_eq!(
            ping_step(t0 + s(50), None, t0 + s(60), iv),
            PingStep::WaitUntil(t0 + s(80))
        );
    }
}
