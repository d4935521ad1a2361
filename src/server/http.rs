//! HTTP connections: requests parsed by `proto::http`, answered here.
//!
//! The routes of PROTOCOL.md "HTTP": the page, `/healthz`, `/metrics`, the
//! JSON API and the upgrade to WebSocket at `/ws`. Which path is which is
//! `proto::http::Route::parse`'s to say; this file matches on the
//! [`Route`] it gives and says what is answered there (the figures of
//! `/metrics` and `/api/stats` are rendered in `metrics`). Answers are
//! queued like any other output; a connection that must close (HTTP/1.0,
//! `Connection: close`, an error) closes once its answer is flushed.

use std::time::Instant;

use bytes::Bytes;
use log::{debug, error};

use super::conn::{ConnId, HttpState, Phase, WsState};
use super::deadlines::{http_step, HttpStep};
use super::timers::TimerKind;
use super::Server;
use crate::hub::accounts::Hello;
use crate::hub::command::{Command, Page, DEFAULT_SEARCH, MAX_SEARCH};
use crate::hub::event::{ClientKind, Event, Reply};
use crate::hub::names::RoomName;
use crate::hub::port::SearchOp;
use crate::hub::search::Query;
use crate::hub::MAX_HISTORY_PAGE;
use crate::proto::http::{Asset, Request, Response, Route, RouteError, Status};
use crate::proto::json;
use crate::proto::ws::handshake;
use crate::store::redis::ops::{HttpFound, HttpRead};

/// What a request leads to.
enum Answer {
    /// Send this; close afterwards if `close`.
    Respond(Response),
    /// Switch the connection to WebSocket.
    Upgrade(Upgrade),
    /// Redis was asked (`--redis`): the answer goes out when it replies.
    Wait,
}

struct Upgrade {
    accept: String,
    /// `/echo` (with `--ws-echo`): no chat, messages come back.
    echo: bool,
    nick: Option<String>,
    room: Option<RoomName>,
    since: Option<u64>,
    resume: Option<String>,
    /// `?token=`: a login token; the client connects logged in.
    token: Option<String>,
}

impl Server {
    /// Bytes for an HTTP connection: parse every complete request in the
    /// buffer and answer each in order (pipelining), keeping the rest.
    pub(super) fn on_http(&mut self, id: ConnId, data: &[u8]) {
        let now = self.now;
        let header = self.config.header_timeout();
        let redirect = self.plain_refused(id);
        let Some(http) = self.http_state(id) else {
            return;
        };
        let mut data = data;
        if http.discard > 0 {
            let skip = http.discard.min(data.len());
            http.discard -= skip;
            data = &data[skip..];
        }
        if data.is_empty() && (http.buf.is_empty() || http.waiting.is_some()) {
            return;
        }
        if data.is_empty() {
            // Requests that waited behind one answered from Redis.
        } else if http.buf.is_empty() && http.started.is_none() {
            // A new request begins: its head is due within --header-timeout.
            http.started = Some(now);
            http.buf.extend_from_slice(data);
            self.timers.arm(now + header, id, TimerKind::Http);
        } else {
            http.buf.extend_from_slice(data);
        }
        loop {
            let Some(http) = self.http_state(id) else {
                return;
            };
            if http.waiting.is_some() {
                return; // answered in order: after the one Redis has
            }
            let parsed = http.parser.parse(&http.buf);
            match parsed {
                Ok(Status::Partial) => return,
                Ok(Status::Complete { request, consumed }) => {
                    // The parser resets itself after a complete head.
                    http.buf.drain(..consumed);
                    // No route takes a body: skip it, from the buffer first.
                    let in_buf = request.body_len.min(http.buf.len());
                    http.buf.drain(..in_buf);
                    http.discard = request.body_len - in_buf;
                    http.started = (!http.buf.is_empty()).then_some(now);
                    http.idle_since = now;
                    if http.started.is_some() {
                        // A pipelined request has begun: its head is due too.
                        self.timers.arm(now + header, id, TimerKind::Http);
                    }
                    let keep_alive = request.keep_alive() && !redirect;
                    let answer = if redirect {
                        // --tls-only: every plain request goes to https://.
                        Answer::Respond(self.to_https(request.header("host"), &request.target))
                    } else {
                        self.route(id, &request)
                    };
                    match answer {
                        Answer::Respond(resp) => {
                            let close = !keep_alive;
                            self.respond(id, &resp, request.is_head(), close);
                            if close {
                                return;
                            }
                        }
                        Answer::Upgrade(up) => {
                            self.upgrade(id, up);
                            return;
                        }
                        Answer::Wait => {
                            if let Some(http) = self.http_state(id) {
                                http.waiting = Some((request.is_head(), !keep_alive));
                            }
                            return;
                        }
                    }
                }
                Err(e) => {
                    debug!("{id}: bad HTTP request: {e:?}");
                    self.respond(id, &e.response(), false, true);
                    return;
                }
            }
        }
    }

    fn http_state(&mut self, id: ConnId) -> Option<&mut HttpState> {
        match self.conns.get_mut(id) {
            Some(super::conn::Conn {
                phase: Phase::Http(http),
                ..
            }) => Some(http),
            _ => None,
        }
    }

    /// Queues an answer; closes after it when asked to.
    pub(super) fn respond(&mut self, id: ConnId, resp: &Response, head_only: bool, close: bool) {
        self.counters.http_responses += 1;
        self.conns.queue(id, resp.encode(head_only, close));
        if close {
            self.close_after_flush(id);
        }
    }

    /// The answer to a request: [`Route::parse`] decides where it goes
    /// (or its 404, 405 or 400), this decides what is said there.
    fn route(&mut self, id: ConnId, req: &Request) -> Answer {
        let route = match Route::parse(&req.method, req.path()) {
            Ok(route) => route,
            Err(e) => return Answer::Respond(e.response()),
        };
        let figures = match &route {
            Route::Asset(asset) => asset.is_loop_page(),
            Route::Metrics | Route::Stats => true,
            _ => false,
        };
        if figures && !self.figures_allowed(id) {
            return Answer::Respond(crate::proto::http::error_response(
                403,
                "the server's figures are served only on loopback here (--private-stats)",
            ));
        }
        let resp = match route {
            Route::Asset(asset) => self.asset(asset, req),
            Route::Healthz if !self.redis_ok() => {
                Response::text(503, "unavailable: Redis cannot be reached")
            }
            Route::Healthz => Response::text(200, "ok"),
            Route::Metrics => Response {
                body: Bytes::from(self.metrics()),
                ..Response::new(200)
            }
            .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
            Route::Stats => Response::json(200, self.stats_json()),
            Route::Rooms => Response::json(200, json::render_rooms(&self.hub.listed_rooms())),
            Route::RoomMessages(room) => match self.messages(&room, req) {
                Read::Done(resp) => resp,
                Read::Ask(read) => return self.ask_redis(id, read),
            },
            Route::RoomSearch(room) => match self.search(&room, req) {
                Read::Done(resp) => resp,
                Read::Ask(read) => return self.ask_redis(id, read),
            },
            Route::Media(image) => match self.media(image) {
                Read::Done(resp) => resp,
                Read::Ask(read) => return self.ask_redis(id, read),
            },
            Route::WebSocket => return self.check_upgrade(req, false),
            Route::Echo if self.config.ws_echo => return self.check_upgrade(req, true),
            Route::Echo => RouteError::NotFound.response(),
        };
        Answer::Respond(resp)
    }

    /// Whether connection `id` may read the loop's figures: anyone, unless
    /// `--private-stats` keeps them for loopback.
    fn figures_allowed(&self, id: ConnId) -> bool {
        !self.config.private_stats
            || self
                .conns
                .get(id)
                .is_some_and(|c| super::per_ip::is_loopback(c.peer.ip()))
    }

    /// The page and its assets, with a policy that runs no inline script.
    fn asset(&self, asset: &'static Asset, req: &Request) -> Response {
        // `connect-src 'self'` covers ws: on the same host in current
        // browsers; the explicit ws:// and wss:// sources cover the rest.
        let host = safe_host(req.header("host")).unwrap_or("");
        let connect = if host.is_empty() {
            "'self'".to_string()
        } else {
            format!("'self' ws://{host} wss://{host}")
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
             connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Response::new(200)
            .with_body(Bytes::from_static(asset.body))
            .with_header("Content-Type", asset.content_type)
            .with_header("Content-Security-Policy", csp)
            .with_header("X-Content-Type-Options", "nosniff")
            .with_header("Referrer-Policy", "no-referrer")
            .with_header("Cache-Control", "no-cache")
    }

    /// `GET /media/ID`: an image's bytes with the type told at upload. The
    /// id is random and the bytes never change, so caches may keep them.
    fn media(&mut self, id: &str) -> Read {
        let well_formed =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if well_formed && self.redis.is_some() {
            return Read::Ask(HttpRead::Media(id.to_string()));
        }
        let found = if well_formed {
            // The turn's messages (and their images) are stored first.
            self.commit();
            self.store.get_image(id).unwrap_or_else(|e| {
                error!("image {id}: {e}");
                None
            })
        } else {
            None
        };
        Read::Done(media_response(found))
    }

    /// `GET /api/rooms/ROOM/messages?limit=N&before=SEQ` (or `after=SEQ`).
    /// An invite-only room's history is for its members, and HTTP has no
    /// identity: `403`.
    fn messages(&mut self, room: &RoomName, req: &Request) -> Read {
        if self.hub.invite_only(room) {
            return Read::Done(crate::proto::http::error_response(
                403,
                &format!("#{room} is invite-only: its history is for its members"),
            ));
        }
        let number = |name: &str| -> Result<Option<u64>, Response> {
            match req.query_param(name) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                    crate::proto::http::error_response(
                        400,
                        &format!("{name} must be a whole number"),
                    )
                }),
            }
        };
        let page = match (number("limit"), number("before"), number("after")) {
            (Ok(limit), Ok(before), Ok(after)) => Page {
                before,
                after,
                limit: limit.map_or(json::DEFAULT_PAGE, |n| {
                    usize::try_from(n).map_or(MAX_HISTORY_PAGE, |n| n.min(MAX_HISTORY_PAGE))
                }),
            },
            (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return Read::Done(r),
        };
        if self.redis.is_some() {
            return Read::Ask(HttpRead::Page(room.clone(), page));
        }
        self.commit();
        let messages = self.store.history(room, page).unwrap_or_else(|e| {
            error!("history of #{room} unavailable: {e}");
            Vec::new()
        });
        Read::Done(Response::json(200, json::render_page(room, &messages)))
    }

    /// `GET /api/rooms/ROOM/search?q=WORDS&limit=N&before=SEQ`
    /// (PROTOCOL-2 section 4): the `search` answer a WebSocket client gets,
    /// newest first. Invite-only rooms: `403`, as for their history.
    fn search(&mut self, room: &RoomName, req: &Request) -> Read {
        let bad = |m: &str| Read::Done(crate::proto::http::error_response(400, m));
        if self.hub.invite_only(room) {
            return Read::Done(crate::proto::http::error_response(
                403,
                &format!("#{room} is invite-only: its history is for its members"),
            ));
        }
        let Some(q) = req.query_param("q") else {
            return bad("q, the words to look for (UTF-8), is required");
        };
        let number = |name: &str| -> Result<Option<u64>, Response> {
            match req.query_param(name) {
                None => Ok(None),
                Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                    crate::proto::http::error_response(
                        400,
                        &format!("{name} must be a whole number"),
                    )
                }),
            }
        };
        let (limit, before) = match (number("limit"), number("before")) {
            (Ok(limit), Ok(before)) => (limit, before),
            (Err(r), _) | (_, Err(r)) => return Read::Done(r),
        };
        let limit = match limit {
            None => DEFAULT_SEARCH,
            Some(0) => return bad(&format!("limit is 1 to {MAX_SEARCH}")),
            Some(n) => usize::try_from(n).map_or(MAX_SEARCH, |n| n.min(MAX_SEARCH)),
        };
        let query = Query::parse(&q);
        if self.redis.is_some() && !query.is_empty() {
            let op = SearchOp {
                id: 0,
                rooms: vec![room.clone()],
                query,
                limit,
                before,
            };
            return Read::Ask(HttpRead::Search(q, Box::new(op)));
        }
        let results = if query.is_empty() {
            Vec::new()
        } else {
            // The turn's messages are stored first, so they can be found.
            self.commit();
            let op = SearchOp {
                id: 0,
                rooms: vec![room.clone()],
                query,
                limit,
                before,
            };
            self.store.search(&op).unwrap_or_else(|e| {
                error!("search of #{room} failed: {e}");
                Vec::new()
            })
        };
        Read::Done(search_response(q, room.clone(), results))
    }

    /// Asks Redis what request `id` needs; it is answered when Redis
    /// replies (`http_answers`), or at once with 503 while Redis is down.
    fn ask_redis(&mut self, id: ConnId, read: HttpRead) -> Answer {
        let now = self.now;
        let asked = self
            .redis
            .as_mut()
            .is_some_and(|r| r.http(id.client().0, read, now));
        if asked {
            return Answer::Wait;
        }
        Answer::Respond(crate::proto::http::error_response(
            503,
            "unavailable: Redis cannot be reached",
        ))
    }

    /// Responds to the requests whose reads Redis answered, then goes on
    /// with requests that waited behind them.
    pub(super) fn http_answers(&mut self) {
        let Some(r) = &mut self.redis else {
            return;
        };
        for (token, found) in std::mem::take(&mut r.http_done) {
            let id = ConnId::from_client(crate::hub::event::ClientId(token));
            let Some((head, close)) = self.http_state(id).and_then(|h| h.waiting.take()) else {
                continue; // gone meanwhile
            };
            let resp = match found {
                Ok(HttpFound::Media(found)) => media_response(found),
                Ok(HttpFound::Page(room, messages)) => {
                    Response::json(200, json::render_page(&room, &messages))
                }
                Ok(HttpFound::Search(q, room, hits)) => search_response(q, room, hits),
                Err(e) => {
                    error!("an HTTP read from Redis failed: {e}");
                    crate::proto::http::error_response(503, "unavailable: Redis cannot be reached")
                }
            };
            self.respond(id, &resp, head, close);
            if !close {
                self.on_http(id, &[]);
            }
        }
    }

    fn check_upgrade(&self, req: &Request, echo: bool) -> Answer {
        let refuse = |status, detail: &str| {
            Answer::Respond(crate::proto::http::error_response(status, detail))
        };
        if !req.header_has_token("upgrade", "websocket")
            || !req.header_has_token("connection", "upgrade")
        {
            return refuse(400, "this is the WebSocket endpoint: send an upgrade");
        }
        if req.method != "GET" {
            return refuse(400, "a WebSocket upgrade is a GET");
        }
        if req.header("sec-websocket-version") != Some(handshake::VERSION) {
            let detail = format!("only WebSocket version {} is spoken", handshake::VERSION);
            return Answer::Respond(
                crate::proto::http::error_response(426, &detail)
                    .with_header("Sec-WebSocket-Version", handshake::VERSION),
            );
        }
        let Some(key) = req
            .header("sec-websocket-key")
            .filter(|k| handshake::valid_client_key(k))
        else {
            return refuse(400, "Sec-WebSocket-Key must be 16 bytes in base64");
        };
        if let Some(origin) = req.header("origin") {
            if !self.origin_allowed(origin, req.header("host")) {
                debug!("refusing WebSocket from origin {origin:?}");
                return refuse(403, "WebSockets from this origin are not allowed");
            }
        }
        let since = match req.query_param("since").map(|s| s.parse::<u64>()) {
            None => None,
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => return refuse(400, "since must be a whole number"),
        };
        let room = match req.query_param("room").map(|r| RoomName::parse(&r)) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(_)) => return refuse(400, "invalid room name"),
        };
        Answer::Upgrade(Upgrade {
            accept: handshake::accept_key(key),
            echo,
            nick: req.query_param("nick"),
            room,
            since,
            resume: req.query_param("resume"),
            token: req.query_param("token"),
        })
    }

    /// An `Origin` is allowed when its host:port is the request's `Host`,
    /// or when it is listed with `--allow-origin`.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/');
        if self
            .config
            .allow_origin
            .iter()
            .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        let Some(host) = host else {
            return false;
        };
        let (scheme, authority) = match origin.split_once("://") {
            Some(parts) => parts,
            None => return false,
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => "80",
            "https" => "443",
            _ => return false,
        };
        host_port(authority, default_port) == host_port(host, "80")
            || host_port(authority, default_port) == host_port(host, default_port)
    }

    /// Switches to WebSocket: the 101 goes out first, then the hub welcomes
    /// the client (or takes it back, with `resume`).
    fn upgrade(&mut self, id: ConnId, up: Upgrade) {
        let now = self.now;
        let max = self.config.max_ws_message;
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let state = if up.echo {
            WsState::echo(max, now)
        } else {
            WsState::new(max, now)
        };
        let Phase::Http(http) = std::mem::replace(&mut conn.phase, Phase::Ws(state)) else {
            return;
        };
        let HttpState { buf: leftover, .. } = http;
        conn.in_hub = !up.echo;
        let peer = super::peer_of(conn.peer, conn.stream.is_tls());
        self.move_kind(super::conn::Kind::Http, super::conn::Kind::Ws);
        self.conns
            .queue(id, handshake::switching_protocols(&up.accept));
        debug!("{id}: WebSocket{}", if up.echo { " (echo)" } else { "" });
        self.timers
            .arm(now + self.config.ping_interval(), id, TimerKind::WsPing);
        if !up.echo {
            let client = id.client();
            let wall = self.wall;
            let resumed = up
                .resume
                .as_deref()
                .is_some_and(|token| self.hub.resume(wall, client, peer, token));
            if !resumed {
                let session = self.session_token();
                let hello = Hello {
                    kind: ClientKind::Ws,
                    peer,
                    nick: up.nick,
                    session,
                    token: up.token,
                };
                // With --redis, another process may have the session.
                let claimed = match up.resume.as_deref() {
                    Some(token) => self.hub.claim_session(client, token, hello.clone()),
                    None => false,
                };
                if !claimed {
                    self.hub.connect(wall, client, hello);
                }
            }
            if let Some(room) = up.room {
                let since = up.since;
                self.hub
                    .handle(wall, client, Command::Join { room, since }, None);
            }
            self.persist(); // the reads these need, before its first frames
        }
        if !leftover.is_empty() {
            self.on_ws(id, &leftover);
        }
    }

    /// Checks an HTTP connection's deadlines: 408 for a request head that
    /// takes too long, a quiet close for an idle keep-alive connection.
    pub(super) fn http_timer(&mut self, id: ConnId, now: Instant) {
        let header = self.config.header_timeout();
        let idle = self.config.http_idle();
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        if conn.close.is_some() {
            return;
        }
        let Phase::Http(http) = &conn.phase else {
            return;
        };
        match http_step(http.started, http.idle_since, now, header, idle) {
            HttpStep::WaitUntil(due) => self.timers.arm(due, id, TimerKind::Http),
            HttpStep::HeadLate => {
                debug!("{id}: request head not complete within {header:?}");
                self.counters.drop_reason("header_timeout");
                let resp = crate::proto::http::error_response(
                    408,
                    "the request head did not arrive in time",
                );
                self.respond(id, &resp, false, true);
            }
            HttpStep::Idle => {
                debug!("{id}: idle keep-alive connection closed");
                self.close_after_flush(id);
            }
        }
    }
}

/// A `Host` header fit to be written back into a header (the page's
/// policy, `--tls-only`'s redirect): a name or address and a port, nothing
/// else.
pub(super) fn safe_host(host: Option<&str>) -> Option<&str> {
    host.filter(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    })
}

/// `host[:port]` with the port made explicit, lowercased.
fn host_port(authority: &str, default_port: &str) -> String {
    let a = authority.to_ascii_lowercase();
    let has_port = match a.rfind(':') {
        Some(i) => !a[i..].contains(']'),
        None => false,
    };
    if has_port {
        a
    } else {
        format!("{a}:{default_port}")
    }
}

/// What an HTTP read comes to: answered here, or asked of Redis.
enum Read {
    Done(Response),
    Ask(HttpRead),
}

/// A search's answer: the `search` reply a WebSocket client gets.
fn search_response(q: String, room: RoomName, results: Vec<crate::hub::event::Hit>) -> Response {
    let reply = Reply::Search {
        q,
        room: Some(room),
        results,
    };
    let body = json::render(&Event::Reply(reply, None)).unwrap_or_default();
    Response::json(200, body)
}

/// An image's answer: its bytes with the type told at upload, or 404.
fn media_response(found: Option<(String, Vec<u8>)>) -> Response {
    let Some((mime, data)) = found else {
        return crate::proto::http::error_response(404, "no such image");
    };
    Response::new(200)
        .with_body(data)
        .with_header("Content-Type", mime)
        .with_header("X-Content-Type-Options", "nosniff")
        // Not `immutable` for a year: a deleted message takes its image
        // with it (PROTOCOL-2 section 3), so browsers keep a copy for a
        // few minutes at most and shared caches none.
        .with_header("Cache-Control", "private, max-age=300")
        .with_header("Content-Security-Policy", "default-src 'none'; sandbox")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ports() {
        assert_eq!(host_port("Example.com", "80"), "example.com:80");
        assert_eq!(host_port("example.com:8080", "80"), "example.com:8080");
        assert_eq!(host_port("[::1]", "443"), "[::1]:443");
        assert_eq!(host_port("[::1]:7878", "80"), "[::1]:7878");
    }
}
