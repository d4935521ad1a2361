//! The shell's half of `--redis` (PROTOCOL-2 section 6): two nonblocking
//! connections to Redis on the loop's own `Poll`, and the hub's store
//! operations carried out over them.
//!
//! - The command connection takes every command of a turn in one write
//!   (the turn's publishes, reads and pings: group commit, as SQLite's one
//!   transaction a turn). Replies come back in order; `link::Pipeline`
//!   matches each to its command, `store::redis::ops` reads it into an
//!   answer for the hub.
//! - The subscriber connection listens on `natter:feed`, where the publish
//!   script puts every entry of every room. `store::redis::feed` hands each
//!   room's entries to the hub in `seq` order, reading the stream for any
//!   it missed; when the subscriber connection comes back, every room held
//!   is read from the hub's last `seq` on.
//!
//! Either connection failing fails what it had out (the hub tells each
//! client `unavailable`), and is tried again with backoff (`link::Reconnect`).
//! A connection with a command out that hears nothing at all for `STALL`
//! (a Redis that stopped: SIGSTOP, a long fork) counts as a failure too;
//! one that is answered, however slowly (a busy Redis working through a
//! long queue), does not. Before judging, what the socket holds is read:
//! after a long turn of this loop's the answer may be there, not late. A PING each second measures the round
//! trip (`natter_redis_rtt_seconds`).
//!
//! Read next: `store::redis` (what is sent), `persist` (SQLite's driver).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::hub::port::{StoreAnswer, StoreError, StoreOp};
use crate::hub::{Hub, Now};
use crate::proto::resp::{encode_command, Decoder, Limits, Value};
use crate::store::redis::feed::{Action, Feed};
use crate::store::redis::link::{Pipeline, Reconnect, State, Step};
use crate::store::redis::ops::{
    self, Arrival, HttpFound, HttpRead, Outcome, Requests, Tag, CHANNEL,
};
use crate::store::redis::script;
use crate::store::redis::setup::{durability_warning, encode_durability_query};
use crate::store::redis::url::RedisUrl;
use crate::store::redis::{changes, presence};

/// Every Lua script natter runs, loaded on each (re)connect.
const SCRIPTS: [&str; 9] = [
    presence::NICK,
    script::PUBLISH,
    presence::REAP,
    presence::BEAT,
    changes::CHANGES,
    presence::CLAIM,
    presence::SESS,
    ops::READ,
    ops::AMEND,
];

/// A connection attempt (connect, log in, load the script) may take this long.
const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// A connection with a command out that hears nothing this long fails.
pub(super) const STALL: Duration = Duration::from_secs(3);
/// Commands out on the command connection past which new requests are
/// refused (`unavailable`): the queue, and this process's memory, stay
/// bounded when Redis cannot keep up.
const MAX_WAITING: usize = 100_000;
/// How often the command connection is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);

/// What a reply on either connection is for.
#[derive(Debug)]
enum Want {
    /// `AUTH`, `SELECT`: an error fails the connection.
    Login,
    /// `SCRIPT LOAD`: the SHA-1 natter computed for it.
    Script(&'static str),
    /// `CONFIG GET appendonly`, then `appendfsync`.
    Durability(u8),
    /// The last reply of the setup: the connection is ready.
    Ready,
    /// A `PING` sent then.
    Ping(Instant),
    /// A `PING` on the subscriber connection behind which reads' answers
    /// wait (see `Redis::fenced`).
    Barrier,
    /// A store operation's command.
    Op(Tag),
    /// The heartbeat's reply: the processes found dead.
    Beat,
    /// A nick claimed for a holder here (announced): 0 means another
    /// process holds it.
    Hold(String),
    /// Everyone's nicks (`HGETALL`), then everyone's members.
    StateNicks,
    StateMembers,
    StateUnlisted,
    /// Accounts, tokens, rooms and entries (`HGETALL` each, in order).
    Settings(u8),
}

/// One connection: its socket, what it has to write, what it waits for.
struct Link {
    name: &'static str,
    token: Token,
    stream: Option<TcpStream>,
    decoder: Decoder,
    out: Vec<u8>,
    waiting: Pipeline<(Want, Instant)>,
    /// When the last reply came: a Redis busy with a long queue still
    /// answers now and then; a stopped one says nothing at all.
    heard: Option<Instant>,
    reconnect: Reconnect,
}

impl Link {
    fn new(name: &'static str, token: Token, now_ms: u64, seed: u64) -> Link {
        Link {
            name,
            token,
            stream: None,
            decoder: Decoder::new(Limits::default()),
            out: Vec::new(),
            waiting: Pipeline::default(),
            heard: None,
            reconnect: Reconnect::new(now_ms, CONNECT_TIMEOUT_MS, seed),
        }
    }

    fn ready(&self) -> bool {
        self.stream.is_some() && self.reconnect.is_ready()
    }

    fn send(&mut self, cmd: &[&[u8]], want: Want, now: Instant) {
        encode_command(&mut self.out, cmd);
        self.waiting.sent((want, now));
    }

    /// Writes what it can; `Err` fails the connection.
    fn flush(&mut self) -> io::Result<()> {
        let Some(s) = self.stream.as_mut() else {
            return Ok(());
        };
        let mut done = 0;
        while done < self.out.len() {
            match s.write(&self.out[done..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.drain(..done);
        Ok(())
    }

    /// Since when a command has waited with no reply at all (to it or to
    /// one before it), if one waits.
    fn oldest(&self) -> Option<Instant> {
        let (_, at) = self.waiting.front()?;
        Some(self.heard.map_or(*at, |h| h.max(*at)))
    }
}

/// Redis, as the loop sees it.
pub(super) struct Redis {
    url: RedisUrl,
    addr: Option<SocketAddr>,
    reqs: Requests,
    cmd: Link,
    sub: Link,
    feed: Feed<Arrival>,
    /// The durability check was logged (once per process).
    checked: bool,
    /// `CONFIG GET appendonly`'s reply, until `appendfsync`'s comes.
    appendonly: Option<Value>,
    /// Everyone's nicks and members, read, until the rest comes.
    state_nicks: Option<Value>,
    state_members: Option<Value>,
    /// A read of everyone's state is out: announcements wait for it.
    reading_state: bool,
    held_events: Vec<(String, presence::Event)>,
    last_beat: Option<Instant>,
    /// Announcements taken from the hub, reused between turns.
    notices: Vec<crate::hub::remote::Notice>,
    /// Reads' answers (joins, catch-ups, history, finds, searches) that
    /// came on the command connection and wait for a `PING` on the
    /// subscriber connection to come back: Redis pushes every entry
    /// published before it ran the read ahead of that `PONG`, so by then
    /// the hub has every entry the read saw, and what the client is sent
    /// agrees with what it is sent live. `unfenced`: no `PING` sent for
    /// them yet; `fenced`: one batch per `PING` out, oldest first.
    unfenced: Vec<StoreAnswer>,
    fenced: std::collections::VecDeque<Vec<StoreAnswer>>,
    /// `--resume-grace` in ms: how long a held session waits in Redis.
    grace_ms: u64,
    /// HTTP requests' reads answered, for the shell to respond with.
    pub(super) http_done: Vec<(u64, Result<HttpFound, StoreError>)>,
    /// A read of accounts and rooms' settings is out, and its replies so
    /// far; another is due after it.
    reading_settings: bool,
    settings_read: Vec<Value>,
    settings_again: bool,
    /// Every room held is to be read once the command connection is ready
    /// (the subscriber came back while it was not).
    resync_due: bool,
    last_ping: Option<Instant>,
    /// The latest round trip measured.
    pub(super) rtt: Option<Duration>,
    /// Times a connection failed.
    pub(super) failures: u64,
    /// Entries handed to the hub from pushes and reads.
    pub(super) arrived: u64,
}

/// The tokens of the two connections.
pub(super) struct Tokens {
    pub(super) cmd: Token,
    pub(super) sub: Token,
}

impl Redis {
    /// Redis at `url`, for process `proc_id`, each room's stream keeping
    /// about `keep` entries. Nothing is connected yet (`tick` does).
    pub(super) fn new(
        url: RedisUrl,
        proc_id: String,
        keep: usize,
        grace_ms: u64,
        tokens: Tokens,
        seed: u64,
    ) -> Redis {
        let now = crate::server::os::wall_clock().ms;
        Redis {
            url,
            addr: None,
            reqs: Requests::new(proc_id, keep),
            cmd: Link::new("command", tokens.cmd, now, seed),
            sub: Link::new("subscriber", tokens.sub, now, seed.rotate_left(17)),
            feed: Feed::default(),
            checked: false,
            appendonly: None,
            state_nicks: None,
            state_members: None,
            reading_state: false,
            held_events: Vec::new(),
            last_beat: None,
            notices: Vec::new(),
            unfenced: Vec::new(),
            fenced: std::collections::VecDeque::new(),
            http_done: Vec::new(),
            grace_ms,
            reading_settings: false,
            settings_read: Vec::new(),
            settings_again: false,
            resync_due: false,
            last_ping: None,
            rtt: None,
            failures: 0,
            arrived: 0,
        }
    }

    /// Whether both connections are ready (`natter_redis_up`, `/healthz`).
    pub(super) fn up(&self) -> bool {
        self.cmd.ready() && self.sub.ready()
    }

    /// Commands out on the command connection.
    pub(super) fn waiting(&self) -> usize {
        self.cmd.waiting.len()
    }

    /// The hub's operations: each encoded into the turn's write, or, while
    /// the command connection is not ready, failed at once. A batch
    /// (accounts, room settings) is given back for the local store.
    pub(super) fn submit(
        &mut self,
        op: StoreOp,
        now: Instant,
    ) -> Result<Option<StoreAnswer>, Box<StoreOp>> {
        if !self.cmd.ready() {
            if matches!(op, StoreOp::Append(_)) {
                return Err(Box::new(op));
            }
            return Ok(Some(failed(op, "Redis is not connected")));
        }
        if self.cmd.waiting.len() >= MAX_WAITING {
            // Redis is far behind: new requests are refused (unavailable)
            // rather than queued without end.
            return Ok(Some(failed(op, "Redis is behind")));
        }
        let mut tags = Vec::new();
        self.reqs.encode(op, &mut self.cmd.out, &mut tags)?;
        for t in tags {
            self.cmd.waiting.sent((Want::Op(t), now));
        }
        Ok(None)
    }

    /// Sends the read an HTTP request needs; `false` while the command
    /// connection is not ready.
    pub(super) fn http(&mut self, token: u64, read: HttpRead, now: Instant) -> bool {
        if !self.cmd.ready() {
            return false;
        }
        let mut tags = Vec::new();
        self.reqs
            .encode_http(token, read, &mut self.cmd.out, &mut tags);
        for t in tags {
            self.cmd.waiting.sent((Want::Op(t), now));
        }
        true
    }

    /// Reads what a connection that looks stalled has waiting: after a
    /// long turn its answer may be in the socket, not late.
    pub(super) fn read_before_judging(
        &mut self,
        registry: &Registry,
        hub: &mut Hub,
        scratch: &mut [u8],
        wall: Now,
        now: Instant,
    ) {
        for which in [Which::Cmd, Which::Sub] {
            let link = self.link(which);
            let late = link
                .oldest()
                .is_some_and(|at| now.duration_since(at) >= STALL);
            if link.ready() && late {
                let token = link.token;
                self.on_event(token, registry, hub, scratch, wall, now);
            }
        }
    }

    /// Connects, pings and gives up on stalled connections as due; the
    /// next time it needs to be called.
    pub(super) fn tick(
        &mut self,
        registry: &Registry,
        hub: &mut Hub,
        wall: Now,
        now: Instant,
    ) -> Option<Instant> {
        let stalled = |l: &Link| l.oldest().is_some_and(|at| now.duration_since(at) >= STALL);
        if self.cmd.ready() && stalled(&self.cmd) {
            warn!("Redis did not answer for {STALL:?}: reconnecting");
            self.fail(Which::Cmd, registry, hub, wall);
        }
        if self.sub.ready() && stalled(&self.sub) {
            self.fail(Which::Sub, registry, hub, wall);
        }
        let mut next = None;
        for which in [Which::Cmd, Which::Sub] {
            // An attempt that took too long: dropped, and tried again later.
            if let State::Connecting { since } = self.link(which).reconnect.state() {
                if wall.ms >= since + CONNECT_TIMEOUT_MS {
                    warn!(
                        "Redis at {}: no answer in {CONNECT_TIMEOUT_MS} ms",
                        self.url
                    );
                    self.fail(which, registry, hub, wall);
                }
            }
            let step = self.link(which).reconnect.step(wall.ms);
            match step {
                Step::Connect => self.connect(which, registry, wall, now),
                Step::WaitUntil(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(wall.ms));
                    next = Some(next.map_or(now + wait, |n: Instant| n.min(now + wait)));
                }
                Step::Idle => {}
            }
        }
        if self
            .last_ping
            .is_none_or(|p| now.duration_since(p) >= PING_EVERY)
        {
            self.last_ping = Some(now);
            for which in [Which::Cmd, Which::Sub] {
                if self.link(which).ready() {
                    self.link(which).send(&[b"PING"], Want::Ping(now), now);
                }
            }
        }
        let beat_every = Duration::from_millis(presence::BEAT_MS);
        if self.cmd.ready()
            && self
                .last_beat
                .is_none_or(|b| now.duration_since(b) >= beat_every)
        {
            self.last_beat = Some(now);
            presence::encode_beat(&mut self.cmd.out, self.reqs.proc_id());
            self.cmd.waiting.sent((Want::Beat, now));
        }
        let ping = self.last_ping.map_or(now + PING_EVERY, |p| p + PING_EVERY);
        let stall = [self.cmd.oldest(), self.sub.oldest()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at + STALL);
        [next, Some(ping), stall].into_iter().flatten().min()
    }

    fn link(&mut self, which: Which) -> &mut Link {
        match which {
            Which::Cmd => &mut self.cmd,
            Which::Sub => &mut self.sub,
        }
    }

    fn connect(&mut self, which: Which, registry: &Registry, wall: Now, now: Instant) {
        let addr = match self.addr {
            Some(a) => a,
            None => match (self.url.host.as_str(), self.url.port).to_socket_addrs() {
                Ok(mut it) => match it.next() {
                    Some(a) => {
                        self.addr = Some(a);
                        a
                    }
                    None => {
                        self.link(which).reconnect.failed(wall.ms);
                        return;
                    }
                },
                Err(e) => {
                    warn!("Redis at {}: {e}", self.url);
                    self.link(which).reconnect.failed(wall.ms);
                    return;
                }
            },
        };
        let url = self.url.clone();
        let checked = self.checked;
        let link = self.link(which);
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                debug!("Redis {} connection: {e}", link.name);
                link.reconnect.failed(wall.ms);
                return;
            }
        };
        if let Err(e) = registry.register(
            &mut stream,
            link.token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            error!("Redis {} connection: {e}", link.name);
            link.reconnect.failed(wall.ms);
            return;
        }
        let _ = stream.set_nodelay(true);
        link.stream = Some(stream);
        link.heard = None;
        link.decoder = Decoder::new(Limits::default());
        link.out.clear();
        // Everything the setup needs, pipelined: written once connected.
        if let Some(pw) = &url.password {
            match &url.user {
                Some(u) => link.send(&[b"AUTH", u.as_bytes(), pw.as_bytes()], Want::Login, now),
                None => link.send(&[b"AUTH", pw.as_bytes()], Want::Login, now),
            }
        }
        if url.db != 0 && which == Which::Cmd {
            link.send(
                &[b"SELECT", url.db.to_string().as_bytes()],
                Want::Login,
                now,
            );
        }
        match which {
            Which::Cmd => {
                for source in SCRIPTS {
                    script::encode_load_source(&mut link.out, source);
                    link.waiting.sent((Want::Script(source), now));
                }
                if !checked {
                    encode_durability_query(&mut link.out);
                    link.waiting.sent((Want::Durability(0), now));
                    link.waiting.sent((Want::Durability(1), now));
                }
                link.send(&[b"PING"], Want::Ready, now);
            }
            Which::Sub => {
                // Two confirmations: one per channel.
                let channels = [
                    &b"SUBSCRIBE"[..],
                    CHANNEL.as_bytes(),
                    presence::EVENTS.as_bytes(),
                ];
                link.send(&channels, Want::Login, now);
                link.waiting.sent((Want::Ready, now));
            }
        }
        debug!("Redis {} connection: connecting to {addr}", link.name);
    }

    /// Writes what the turn gathered (one write per connection), the hub's
    /// announcements first.
    pub(super) fn flush(&mut self, registry: &Registry, hub: &mut Hub, wall: Now) {
        if !self.unfenced.is_empty() {
            if self.sub.ready() {
                let now = Instant::now();
                self.sub.send(&[b"PING"], Want::Barrier, now);
                self.fenced.push_back(std::mem::take(&mut self.unfenced));
            } else {
                self.release_fenced(hub, wall);
            }
        }
        hub.take_notices(&mut self.notices);
        if self.cmd.ready() {
            let now = Instant::now();
            for n in self.notices.drain(..) {
                if let crate::hub::remote::Notice::Owns(key, account) = &n {
                    let proc = self.reqs.proc_id();
                    presence::encode_nick(&mut self.cmd.out, "hold", key, proc, account.as_deref());
                    self.cmd.waiting.sent((Want::Hold(key.clone()), now));
                    continue;
                }
                let count = presence::encode_notice(
                    &mut self.cmd.out,
                    self.reqs.proc_id(),
                    &n,
                    self.grace_ms,
                );
                for _ in 0..count {
                    self.cmd.waiting.sent((Want::Op(Tag::Ignore), now));
                }
            }
        } else {
            // Written whole when the command connection is back.
            self.notices.clear();
        }
        for which in [Which::Cmd, Which::Sub] {
            if let Err(e) = self.link(which).flush() {
                debug!("Redis write: {e}");
                self.fail(which, registry, hub, wall);
            }
        }
    }

    /// A readiness event on one of the connections.
    pub(super) fn on_event(
        &mut self,
        token: Token,
        registry: &Registry,
        hub: &mut Hub,
        scratch: &mut [u8],
        wall: Now,
        now: Instant,
    ) {
        let which = if token == self.cmd.token {
            Which::Cmd
        } else {
            Which::Sub
        };
        if let Err(e) = self.link(which).flush() {
            debug!("Redis write: {e}");
            self.fail(which, registry, hub, wall);
            return;
        }
        loop {
            let link = self.link(which);
            let Some(s) = link.stream.as_mut() else {
                return;
            };
            let n = match s.read(scratch) {
                Ok(0) => {
                    info!("Redis closed the {} connection", link.name);
                    self.fail(which, registry, hub, wall);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if link.reconnect.is_ready() {
                        warn!("Redis {} connection: {e}", link.name);
                    } else {
                        debug!("Redis {} connection: {e}", link.name);
                    }
                    self.fail(which, registry, hub, wall);
                    return;
                }
            };
            let mut values = Vec::new();
            let decoded = link.decoder.decode(&scratch[..n], |v| values.push(v));
            for v in values {
                if !self.on_value(which, v, hub, wall, now) {
                    self.fail(which, registry, hub, wall);
                    return;
                }
            }
            if let Err(e) = decoded {
                error!("Redis sent what natter cannot read: {e:?}");
                self.fail(which, registry, hub, wall);
                return;
            }
        }
    }

    /// One value from a connection; `false` fails the connection.
    fn on_value(&mut self, which: Which, v: Value, hub: &mut Hub, wall: Now, now: Instant) -> bool {
        self.link(which).heard = Some(now);
        if which == Which::Sub {
            if let Some((channel, body)) = message_of(&v) {
                if channel == presence::EVENTS.as_bytes() {
                    let body = body.to_vec();
                    self.on_event_push(&body, hub, wall, now);
                } else {
                    self.on_push(v, hub, wall);
                }
                return true;
            }
        }
        let link = self.link(which);
        let Some(((want, _), v)) = link.waiting.reply(v) else {
            error!(
                "Redis said something nobody asked on the {} connection",
                link.name
            );
            return false;
        };
        match want {
            Want::Login | Want::Script(_) => {
                if let Value::Error(e) = &v {
                    error!(
                        "Redis refused natter's setup: {}",
                        String::from_utf8_lossy(e)
                    );
                    return false;
                }
                if let Want::Script(source) = want {
                    if v.as_bytes().map(|b| b.to_vec()) != Some(script::sha(source).into_bytes()) {
                        error!("Redis gave a script another SHA-1: {v:?}");
                        return false;
                    }
                }
            }
            Want::Beat => {
                if let Some((redis_now, dead)) = presence::parse_beat(&v) {
                    let limit = redis_now.saturating_sub(presence::DEAD_MS);
                    for p in dead.iter().filter(|p| **p != self.reqs.proc_id()) {
                        info!(
                            "process {p} has not beaten for {} ms: dropping its users",
                            presence::DEAD_MS
                        );
                        presence::encode_reap(&mut self.cmd.out, p, Some(limit), self.grace_ms);
                        self.cmd.waiting.sent((Want::Op(Tag::Ignore), now));
                    }
                }
            }
            Want::Settings(i) => {
                self.settings_read.push(v);
                if i == 3 {
                    let state = changes::parse_state(&std::mem::take(&mut self.settings_read));
                    debug!(
                        "read {} accounts and {} rooms' settings from Redis",
                        state.accounts.len(),
                        state.rooms.len()
                    );
                    hub.set_accounts(wall, state.accounts, state.tokens);
                    hub.set_rooms(state.rooms);
                    self.reading_settings = false;
                    if std::mem::take(&mut self.settings_again) {
                        self.read_settings(now);
                    }
                }
            }
            Want::Hold(key) => {
                if matches!(v, Value::Int(0)) {
                    hub.nick_lost(wall, &key);
                }
            }
            Want::StateNicks => self.state_nicks = Some(v),
            Want::StateMembers => self.state_members = Some(v),
            Want::StateUnlisted => {
                let nicks = self.state_nicks.take().unwrap_or(Value::Array(None));
                let members = self.state_members.take().unwrap_or(Value::Array(None));
                let state = presence::parse_state(&nicks, &members, &v);
                let own = self.reqs.proc_id().to_string();
                hub.remote_state(wall, &own, state);
                self.reading_state = false;
                // What came on the channel while the read was out, again
                // on top (each change says where a member is now).
                for (proc, e) in std::mem::take(&mut self.held_events) {
                    self.on_announcement(proc, e, hub, wall, now);
                }
            }
            Want::Durability(0) => self.appendonly = Some(v),
            Want::Durability(_) => {
                self.checked = true;
                let only = self.appendonly.take().unwrap_or(Value::Bulk(None));
                match durability_warning(&only, &v) {
                    Some(w) => warn!("{w}"),
                    None => info!("Redis keeps every write before it answers (appendfsync always)"),
                }
            }
            Want::Ready => {
                if let Value::Error(e) = &v {
                    error!("Redis: {}", String::from_utf8_lossy(e));
                    return false;
                }
                self.link(which).reconnect.ready();
                let name = self.link(which).name;
                info!("Redis {name} connection ready ({})", self.url);
                match which {
                    Which::Sub => self.resync_due = true,
                    Which::Cmd => {
                        self.write_own_state(hub, now);
                        self.read_settings(now);
                        // Beat at once: others must not take this process
                        // for dead while it was away.
                        self.last_beat = None;
                    }
                }
                if self.resync_due && self.cmd.ready() {
                    self.resync(hub, now);
                }
            }
            Want::Barrier => {
                if matches!(v, Value::Error(_)) {
                    return false;
                }
                for a in self.fenced.pop_front().unwrap_or_default() {
                    hub.answer(wall, a);
                }
            }
            Want::Ping(at) => {
                if matches!(v, Value::Error(_)) {
                    return false;
                }
                if which == Which::Cmd {
                    self.rtt = Some(now.duration_since(at));
                }
            }
            Want::Op(tag) => {
                if script::is_noscript(&v)
                    && !matches!(tag, Tag::Publish { .. } | Tag::PublishChange { .. })
                {
                    // Redis forgot its scripts: this read fails, later ones work.
                    self.load_scripts(now);
                }
                self.on_outcome(self.reqs.reply(tag, v), hub, wall, now)
            }
        }
        true
    }

    fn on_outcome(&mut self, outcome: Outcome, hub: &mut Hub, wall: Now, now: Instant) {
        match outcome {
            Outcome::None => {}
            Outcome::Answer(
                a @ (StoreAnswer::Loaded { .. }
                | StoreAnswer::Found { .. }
                | StoreAnswer::Searched { .. }),
            ) if self.sub.ready() => self.unfenced.push(a),
            Outcome::Answer(a) => hub.answer(wall, a),
            Outcome::Failed(e) => warn!("Redis: {e}"),
            Outcome::Reload(tag) => {
                // Redis forgot its scripts (SCRIPT FLUSH): load them, resend.
                self.load_scripts(now);
                if let Tag::Publish { command, .. } | Tag::PublishChange { command, .. } = &tag {
                    self.cmd.out.extend_from_slice(command);
                }
                self.cmd.waiting.sent((Want::Op(tag), now));
            }
            Outcome::Http { token, found } => self.http_done.push((token, found)),
            Outcome::Fetched {
                room,
                entries,
                full,
            } => {
                let entries = entries
                    .map(|v| v.into_iter().map(|(m, o)| (m.seq(), (m, o))).collect())
                    .map_err(|e| warn!("#{room}: a read of the stream failed: {e}"));
                let actions = self.feed.fetched(hub.room_seq(&room), &room, entries, full);
                self.act(actions, hub, wall, now);
            }
        }
    }

    fn on_push(&mut self, v: Value, hub: &mut Hub, wall: Now) {
        let Some(p) = script::parse_push(&v) else {
            return; // a confirmation
        };
        let room = std::str::from_utf8(&p.room)
            .ok()
            .and_then(|r| crate::hub::names::RoomName::parse(r).ok());
        let Some(room) = room else {
            warn!("a push for a room natter cannot name: {:?}", p.room);
            return;
        };
        let known = hub.room_seq(&room);
        if known.is_none() {
            return;
        }
        let decoded = match crate::store::redis::entry::decode_entry(&room, p.seq, &p.payload) {
            Ok(d) => d,
            Err(e) => {
                warn!("#{room} entry {} skipped: {e}", p.seq);
                return;
            }
        };
        let origin = self.reqs.own(&decoded.origin);
        let actions = self
            .feed
            .pushed(known, &room, p.seq, (decoded.entry, origin));
        self.act(actions, hub, wall, Instant::now());
    }

    fn act(&mut self, actions: Vec<Action<Arrival>>, hub: &mut Hub, wall: Now, now: Instant) {
        for a in actions {
            match a {
                Action::Arrive((m, origin)) => {
                    self.arrived += 1;
                    hub.arrive_entry(wall, m, origin);
                }
                Action::Fetch {
                    room,
                    after,
                    before,
                } => {
                    if self.cmd.ready() {
                        let mut tags = Vec::new();
                        self.reqs
                            .encode_fetch(&room, after, before, &mut self.cmd.out, &mut tags);
                        for t in tags {
                            self.cmd.waiting.sent((Want::Op(t), now));
                        }
                    } else {
                        // Read when the command connection is back.
                        self.resync_due = true;
                        let again = self
                            .feed
                            .fetched(hub.room_seq(&room), &room, Err(()), false);
                        debug_assert!(again.is_empty());
                    }
                }
            }
        }
    }

    /// Reads every room the hub holds from its last `seq` on.
    fn resync(&mut self, hub: &mut Hub, now: Instant) {
        self.resync_due = false;
        self.read_state(now);
        let held = hub.held_rooms();
        debug!("Redis: reading {} rooms from their last seq", held.len());
        let actions = self.feed.resync(held);
        let wall = crate::server::os::wall_clock();
        self.act(actions, hub, wall, now);
    }

    /// Reads accounts and rooms' settings whole (again after a change
    /// elsewhere; a change during the read reads again after it).
    fn read_settings(&mut self, now: Instant) {
        if self.reading_settings {
            self.settings_again = true;
            return;
        }
        if !self.cmd.ready() {
            return;
        }
        self.reading_settings = true;
        changes::encode_read(&mut self.cmd.out);
        for i in 0..4 {
            self.cmd.waiting.sent((Want::Settings(i), now));
        }
    }

    /// Loads every script again (Redis forgot them: `SCRIPT FLUSH`).
    fn load_scripts(&mut self, now: Instant) {
        for source in SCRIPTS {
            script::encode_load_source(&mut self.cmd.out, source);
            self.cmd.waiting.sent((Want::Script(source), now));
        }
    }

    /// Reads everyone's nicks and members; announcements wait meanwhile.
    fn read_state(&mut self, now: Instant) {
        if self.reading_state || !self.cmd.ready() {
            return;
        }
        self.reading_state = true;
        presence::encode_read_state(&mut self.cmd.out);
        self.cmd.waiting.sent((Want::StateNicks, now));
        self.cmd.waiting.sent((Want::StateMembers, now));
        self.cmd.waiting.sent((Want::StateUnlisted, now));
    }

    /// Writes this process's state whole: its old entries (from before a
    /// reconnect, or dropped by others while it was silent) go first.
    fn write_own_state(&mut self, hub: &mut Hub, now: Instant) {
        let proc = self.reqs.proc_id().to_string();
        presence::encode_reap(&mut self.cmd.out, &proc, None, self.grace_ms);
        self.cmd.waiting.sent((Want::Op(Tag::Ignore), now));
        let state = hub.local_state();
        let n = presence::encode_state(&mut self.cmd.out, &proc, &state);
        for _ in 0..n {
            self.cmd.waiting.sent((Want::Op(Tag::Ignore), now));
        }
        // Its nicks are claimed again: one taken meanwhile by another
        // process is lost here (its holder gets a fresh one).
        for nick in &state.nicks {
            let key = nick.key();
            presence::encode_nick(&mut self.cmd.out, "hold", &key, &proc, None);
            self.cmd.waiting.sent((Want::Hold(key), now));
        }
        // What the hub announced before this is in the state written.
        hub.take_notices(&mut self.notices);
        self.notices.clear();
    }

    /// A message on `natter:events`.
    fn on_event_push(&mut self, body: &[u8], hub: &mut Hub, wall: Now, now: Instant) {
        let Some((proc, e)) = presence::parse_event(body) else {
            warn!(
                "an announcement natter cannot read: {:?}",
                String::from_utf8_lossy(body)
            );
            return;
        };
        if self.reading_state {
            self.held_events.push((proc, e));
            return;
        }
        self.on_announcement(proc, e, hub, wall, now);
    }

    fn on_announcement(
        &mut self,
        proc: String,
        e: presence::Event,
        hub: &mut Hub,
        wall: Now,
        now: Instant,
    ) {
        let own = proc == self.reqs.proc_id();
        match e {
            presence::Event::Gone(p) if p == self.reqs.proc_id() => {
                // Others took this process for dead (it was silent): its
                // state is written again.
                warn!("other processes dropped this one's users: announcing them again");
                if self.cmd.ready() {
                    self.write_own_state(hub, now);
                }
            }
            presence::Event::Gone(p) => hub.gone(wall, &p),
            presence::Event::Sync if !own => self.read_state(now),
            presence::Event::Sync => {}
            presence::Event::State if !own => self.read_settings(now),
            presence::Event::State => {}
            presence::Event::Taken { hash, nick, rooms } if !own => {
                hub.taken(wall, &proc, &hash, &nick, &rooms)
            }
            presence::Event::Taken { .. } => {}
            presence::Event::Lost(key) if proc == self.reqs.proc_id() => hub.nick_lost(wall, &key),
            presence::Event::Lost(_) => {}
            presence::Event::Notice(n) if !own => hub.remote(wall, &proc, n),
            presence::Event::Notice(_) => {}
        }
    }

    /// A connection failed: everything it had out fails, and it is tried
    /// again after a wait.
    /// Hands the hub every read's answer waiting for a barrier.
    fn release_fenced(&mut self, hub: &mut Hub, wall: Now) {
        let waiting: Vec<StoreAnswer> = self
            .fenced
            .drain(..)
            .flatten()
            .chain(self.unfenced.drain(..))
            .collect();
        for a in waiting {
            hub.answer(wall, a);
        }
    }

    fn fail(&mut self, which: Which, registry: &Registry, hub: &mut Hub, wall: Now) {
        self.failures += 1;
        let link = self.link(which);
        if let Some(mut s) = link.stream.take() {
            let _ = registry.deregister(&mut s);
        }
        link.out.clear();
        link.reconnect.failed(wall.ms);
        let failed = link.waiting.fail_all();
        if which == Which::Sub {
            // No barrier to wait behind: the hub's own wait (the room's
            // entries arriving, at most 2 s) is all there is.
            self.release_fenced(hub, wall);
        }
        if which == Which::Cmd {
            self.reading_settings = false;
            self.settings_read.clear();
            self.reading_state = false;
            self.state_nicks = None;
            self.state_members = None;
            // Read again once back (the subscriber's resync, or this).
            self.resync_due = true;
        }
        for (want, _) in failed {
            if let Want::Op(tag) = want {
                let outcome = self.reqs.fail(tag, "the connection to Redis was lost");
                self.on_outcome(outcome, hub, wall, Instant::now());
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Cmd,
    Sub,
}

/// An operation failed before it was sent.
fn failed(op: StoreOp, why: &str) -> StoreAnswer {
    let e = StoreError(why.to_string());
    match op {
        StoreOp::Publish(p) => StoreAnswer::Published {
            publish: p.id,
            result: Err(e),
        },
        StoreOp::Load(l) => StoreAnswer::Loaded {
            load: l.id,
            result: Err(e),
        },
        StoreOp::Find(f) => StoreAnswer::Found {
            find: f.id,
            result: Err(e),
        },
        StoreOp::Search(s) => StoreAnswer::Searched {
            search: s.id,
            result: Err(e),
            read_at: Vec::new(),
        },
        StoreOp::Append(b) => StoreAnswer::Committed {
            batch: b.id,
            result: Err(e),
        },
        StoreOp::Claim(c) => StoreAnswer::Claimed {
            claim: c.id,
            result: None,
        },
        StoreOp::PublishChange(c) => StoreAnswer::Published {
            publish: c.id,
            result: Err(e),
        },
        StoreOp::HoldNick(h) => StoreAnswer::Held {
            hold: h.id,
            ok: Err(e),
        },
    }
}

impl super::Server {
    /// Connects, pings, gives up on a stalled Redis, as due.
    pub(super) fn redis_tick(&mut self) {
        let super::Server {
            redis,
            poll,
            hub,
            wall,
            now,
            redis_due,
            scratch,
            ..
        } = self;
        let Some(r) = redis else {
            *redis_due = None;
            return;
        };
        if redis_due.is_some_and(|d| *now < d) {
            self.http_answers();
            return;
        }
        r.read_before_judging(poll.registry(), hub, scratch, *wall, *now);
        *redis_due = r.tick(poll.registry(), hub, *wall, *now);
        hub.answers_overdue(*wall);
        self.persist();
        self.http_answers();
    }

    /// Readiness on one of the Redis connections.
    pub(super) fn on_redis(&mut self, token: Token) {
        let super::Server {
            redis,
            poll,
            hub,
            wall,
            now,
            scratch,
            ..
        } = self;
        let redis_due = &mut self.redis_due;
        if let Some(r) = redis {
            r.on_event(token, poll.registry(), hub, scratch, *wall, *now);
            // A connection may have failed: its retry is planned next turn.
            *redis_due = Some(*now);
        }
        self.http_answers();
    }

    /// The turn's commands go out, one write per connection.
    pub(super) fn redis_flush(&mut self) {
        let super::Server {
            redis,
            poll,
            hub,
            wall,
            now,
            redis_due,
            ..
        } = self;
        if let Some(r) = redis {
            r.flush(poll.registry(), hub, *wall);
            // A command just sent is due an answer within `STALL`; HTTP
            // requests failed by a failed write are answered at once.
            let due = if r.http_done.is_empty() {
                *now + STALL
            } else {
                *now
            };
            *redis_due = Some(redis_due.map_or(due, |d| d.min(due)));
        }
    }

    /// Whether requests that need Redis can be carried out (`/healthz`).
    pub(super) fn redis_ok(&self) -> bool {
        self.redis.as_ref().is_none_or(Redis::up)
    }
}

/// `["message", CHANNEL, BODY]`: the channel and the body of a push.
fn message_of(v: &Value) -> Option<(&[u8], &[u8])> {
    let Value::Array(Some(items)) = v else {
        return None;
    };
    let [kind, channel, body] = items.as_slice() else {
        return None;
    };
    if kind.as_bytes()? != b"message" {
        return None;
    }
    Some((channel.as_bytes()?, body.as_bytes()?))
}
