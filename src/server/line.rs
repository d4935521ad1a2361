//! Line clients (netcat): the shell half of the line protocol, as
//! `http.rs` and `ws.rs` are of theirs. Bytes are framed into lines and
//! parsed by `proto::line`, and the commands handed to the hub; a client
//! silent for `--line-idle-timeout` is dropped.

use std::time::Instant;

use bytes::Bytes;
use log::debug;

use super::conn::{Conn, ConnId, Phase};
use super::deadlines::{line_idle_step, LineIdleStep};
use super::persist;
use super::timers::TimerKind;
use super::Server;
use crate::hub::error::{ErrorCode, HubError};
use crate::hub::event::{LeaveReason, Reply};
use crate::proto::line::{self, Frame, Input};
use crate::proto::sniff;

impl Server {
    /// Frames, parses and dispatches a line client's bytes; with `data`
    /// `None` the stream has ended and an unfinished last line counts too.
    pub(super) fn feed_line(&mut self, id: ConnId, data: Option<&[u8]>) {
        let Server {
            conns,
            hub,
            store,
            store_ops,
            counters,
            redis,
            now: at,
            config,
            wall,
            ..
        } = self;
        let at = *at;
        // For `/stats`. Handling lines queues nothing: the hub's answers
        // are queued before the loop sleeps.
        let bytes_queued = conns.bytes_queued();
        let Some(Conn {
            phase: Phase::Line { decoder, started },
            ..
        }) = conns.get_mut(id)
        else {
            return;
        };
        let client = id.client();
        let now = *wall;
        // A TLS ClientHello that came after --sniff-ms (a client too slow
        // to send it, or one that waited for the server to speak): the
        // greeting went out in clear text, which its TLS cannot read, and its
        // bytes are not chat. It is closed, saying nothing more.
        if !*started && decoder.buffered() == 0 && data.and_then(|d| d.first()) == Some(&0x16) {
            *started = true;
            debug!("{id}: a TLS ClientHello after the line greeting; closing");
            counters.drop_reason("late_tls");
            self.end_client(id, LeaveReason::Disconnect);
            self.close_after_flush(id);
            return;
        }
        // An HTTP client the sniff took for a line client (it said nothing
        // for --sniff-ms): its request line and headers are never chat.
        let mut http = false;
        let on_frame = |frame: Frame<'_>| match frame {
            _ if http => {}
            Frame::Line(bytes) if !std::mem::replace(started, true) && looks_like_http(bytes) => {
                http = true;
            }
            Frame::TooLong => hub.tell_error(
                client,
                HubError::new(
                    ErrorCode::TooLong,
                    format!(
                        "a line is at most {} bytes; that one was dropped",
                        config.max_line
                    ),
                ),
                None,
            ),
            Frame::Line(bytes) => match line::parse(bytes) {
                Ok(Input::Command(cmd)) => {
                    hub.handle(now, client, cmd, None);
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
                Ok(Input::Stats) => {
                    let stats = counters.snapshot(hub.messages_total(), bytes_queued);
                    hub.tell(client, Reply::Report(line::render_stats(&stats)), None);
                }
                Ok(Input::Nothing) => {}
                Err(e) => {
                    debug!("{id}: {} on line {:?}", e.code, sample(bytes));
                    hub.tell_error(client, e, None);
                }
            },
        };
        match data {
            Some(data) => decoder.decode(data, on_frame),
            None => decoder.finish(on_frame),
        }
        if http {
            debug!("{id}: an HTTP request line after the line greeting; closing");
            self.counters.drop_reason("late_http");
            let msg = format!(
                "!!! {}: that was an HTTP request, sent after this server had taken the connection \
                 for a line client; connect again and send it at once\n",
                ErrorCode::BadRequest
            );
            self.end_client(id, LeaveReason::Disconnect);
            self.conns.queue(id, Bytes::from(msg));
            self.close_after_flush(id);
        }
    }

    /// The idle timer: drop a line client silent for `--line-idle-timeout` (one
    /// whose input is held unread is not silent).
    pub(super) fn line_timer(&mut self, id: ConnId, now: Instant) {
        let idle = self.config.line_idle();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let (Some(idle), None) = (idle, &conn.close) else {
            return;
        };
        if conn.held {
            conn.last_input = now; // its input waits unread: not idle
        }
        match line_idle_step(conn.last_input, now, idle) {
            LineIdleStep::Silent => {
                debug!("{id}: silent for {idle:?}; dropping");
                self.doom(id, LeaveReason::Timeout);
            }
            LineIdleStep::WaitUntil(due) => self.timers.arm(due, id, TimerKind::LineIdle),
        }
    }
}

/// A line client's first line that is an HTTP request line (`GET / HTTP/1.1`).
fn looks_like_http(line: &[u8]) -> bool {
    sniff::is_request_line(line.strip_suffix(b"\r").unwrap_or(line))
}

/// A short printable sample of a client's bad input, for debug logs.
fn sample(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(40)];
    String::from_utf8_lossy(cut).escape_debug().to_string()
}
