//! Test clients and a handle on the real `natter` binary.
//!
//! Every integration test starts the built binary on `127.0.0.1:0` and reads
//! the port it printed; nothing uses a fixed port. Clients are plain blocking
//! `std::net::TcpStream`s with read timeouts, so a server that fails to
//! answer makes a test fail, not hang.

// Each test file uses a different part of this module; its `pub` is for
// those files (`mod common;` is private to each test crate).
#![allow(dead_code, unreachable_pub)]

#[path = "../../src/testrng.rs"]
pub mod testrng;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a client waits for a line it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// The running binary; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Every address it printed it listens on (`addr` first).
    pub listening: Vec<SocketAddr>,
}

impl Server {
    /// Starts `natter --listen 127.0.0.1:0 ARGS...` and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_listening(&["127.0.0.1:0"], args)
    }

    /// Starts the binary with the given `--listen` addresses.
    pub fn start_listening(listen: &[&str], args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
        for l in listen {
            cmd.args(["--listen", l]);
        }
        // A test keeps nothing unless it names its own database.
        if !args.contains(&"--db") {
            cmd.args(["--db", ":memory:"]);
        }
        cmd.args(args);
        Server::spawn(cmd, listen.len())
    }

    /// Runs `cmd` (the binary, with whatever arguments and environment)
    /// and waits for its `listeners` "natter listening on" lines.
    pub fn spawn(mut cmd: Command, listeners: usize) -> Server {
        if std::env::var_os("NATTER_TEST_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        Server::spawned(cmd, listeners)
    }

    /// `spawn`, with the server's log (stderr) written to `log`.
    pub fn spawn_logging(mut cmd: Command, listeners: usize, log: &std::path::Path) -> Server {
        cmd.stderr(std::fs::File::create(log).expect("create the log file"));
        Server::spawned(cmd, listeners)
    }

    /// `spawn`, but a server that exits before it listens (a taken port,
    /// a bad option) is an `Err` with its exit code and its stderr instead
    /// of a panic.
    pub fn try_spawn(mut cmd: Command, listeners: usize) -> Result<Server, StartError> {
        let log = temp_path("stderr");
        cmd.stderr(std::fs::File::create(&log).expect("create the log file"));
        let started = Server::try_spawned(cmd, listeners);
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        // The server keeps its open file; only the name goes.
        let _ = std::fs::remove_file(&log);
        started.map_err(|(code, line)| StartError { code, line, stderr })
    }

    fn spawned(cmd: Command, listeners: usize) -> Server {
        Server::try_spawned(cmd, listeners)
            .unwrap_or_else(|(code, line)| panic!("unexpected line {line:?} (exit code {code:?})"))
    }

    /// The server once it has printed its `listeners` lines; else it is
    /// stopped, and the exit code and the line it printed instead (empty
    /// when it closed stdout) are the `Err`.
    fn try_spawned(mut cmd: Command, listeners: usize) -> Result<Server, (Option<i32>, String)> {
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn natter");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout);
        let mut listening: Vec<SocketAddr> = Vec::new();
        for _ in 0..listeners.max(1) {
            let mut line = String::new();
            lines.read_line(&mut line).expect("read the listening line");
            match line.trim().strip_prefix("natter listening on ") {
                Some(addr) => listening.push(addr.parse().expect("address")),
                None => {
                    // Exited already (a zombie keeps its exit code), or
                    // said something else: stopped either way.
                    let _ = child.kill();
                    let code = child.wait().ok().and_then(|s| s.code());
                    return Err((code, line));
                }
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Ok(Server {
            child,
            addr: listening[0],
            listening,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The names of the server's threads, from `/proc/PID/task/*/comm`,
    /// sorted.
    pub fn thread_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .expect("read /proc task")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        names.sort();
        names
    }

    /// The nice value of the server's thread called `name`, from field 19
    /// of `/proc/PID/task/TID/stat`.
    pub fn thread_nice(&self, name: &str) -> Option<i64> {
        std::fs::read_dir(format!("/proc/{}/task", self.pid()))
            .ok()?
            .filter_map(|t| {
                let dir = t.ok()?.path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                (comm.trim() == name).then(|| std::fs::read_to_string(dir.join("stat")).ok())?
            })
            .find_map(|stat| {
                let after = stat.get(stat.rfind(')')? + 2..)?;
                after.split(' ').nth(16)?.parse().ok()
            })
    }

    /// Threads of the server process, from `/proc/PID/status`.
    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Threads: line")
    }

    /// The server is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A line client that has read its greeting (welcome, join, history).
    pub fn line_client(&self) -> LineClient {
        LineClient::connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that did not start (`Server::try_spawn`).
#[derive(Debug)]
pub struct StartError {
    /// Its exit code; `None` if it was stopped by a signal.
    pub code: Option<i32>,
    /// What it printed on stdout instead of `natter listening on ADDR`.
    pub line: String,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

/// The server's threads: the event loop, and the helper thread that runs
/// slow jobs (SQLite checkpoints) off it (docs/ARCHITECTURE.md, "Slow jobs
/// off the loop"). No thread per client, ever.
pub const THREADS: usize = 3;

/// A netcat-like client speaking the line protocol.
pub struct LineClient {
    reader: BufReader<TcpStream>,
    pub nick: String,
    /// Lines of the greeting: welcome, joined, history block.
    pub greeting: Vec<String>,
}

impl LineClient {
    /// Connects, stays silent so the server sniffs it as a line client, and
    /// reads the greeting up to the join line and any history block.
    pub fn connect(addr: SocketAddr) -> LineClient {
        LineClient::raw(addr).greeted()
    }

    /// Like `connect`, from the local address `from` (see `connect_from`).
    pub fn connect_from_ip(from: IpAddr, addr: SocketAddr) -> LineClient {
        LineClient::on(connect_from(from, addr)).greeted()
    }

    /// A client on `stream` that has read nothing yet.
    pub fn on(stream: TcpStream) -> LineClient {
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        LineClient {
            reader: BufReader::new(stream),
            nick: String::new(),
            greeting: Vec::new(),
        }
    }

    /// Reads the greeting: the welcome, the join line and any history block.
    fn greeted(mut self) -> LineClient {
        let c = &mut self;
        let welcome = c.line();
        let nick = nick_in_welcome(&welcome);
        c.nick = nick;
        c.greeting.push(welcome);
        let joined = c.line();
        assert!(joined.starts_with("*** you joined #"), "{joined:?}");
        c.greeting.push(joined);
        // The history block, if any, follows at once: read it if it is there.
        if let Some(first) = c.try_line(Duration::from_millis(200)) {
            assert!(first.starts_with("*** history of #"), "{first:?}");
            c.greeting.push(first);
            loop {
                let l = c.line();
                let end = l == "*** end of history";
                c.greeting.push(l);
                if end {
                    break;
                }
            }
        }
        self
    }

    /// Connects without reading anything.
    pub fn raw(addr: SocketAddr) -> LineClient {
        LineClient::on(TcpStream::connect(addr).expect("connect"))
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends `text` followed by `\n`.
    pub fn send(&mut self, text: &str) {
        self.send_bytes(format!("{text}\n").as_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// The next line, without its `\n`; panics after `WAIT`.
    pub fn line(&mut self) -> String {
        self.try_line(WAIT)
            .unwrap_or_else(|| panic!("{}: no line within {WAIT:?}", self.nick))
    }

    /// The next line within `wait`, or `None` on timeout or end of stream.
    pub fn try_line(&mut self, wait: Duration) -> Option<String> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("timeout");
        let mut buf = Vec::new();
        let got = self.reader.read_until(b'\n', &mut buf);
        self.reader
            .get_ref()
            .set_read_timeout(Some(WAIT))
            .expect("timeout");
        match got {
            Ok(0) => None,
            Ok(_) => {
                assert!(buf.ends_with(b"\n"), "partial line {buf:?}");
                buf.pop();
                Some(String::from_utf8(buf).expect("server sent invalid UTF-8"))
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(buf.is_empty(), "partial line {buf:?}");
                None
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads lines until one satisfies `pred`; returns it.
    pub fn line_where(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(l) = self.try_line(deadline - Instant::now()) {
                if pred(&l) {
                    return l;
                }
            }
        }
        panic!("{}: no matching line within {WAIT:?}", self.nick);
    }

    /// The next line, with its `[HH:MM:SS] ` timestamp checked and removed.
    pub fn event(&mut self) -> String {
        let l = self.line();
        strip_clock(&l).unwrap_or_else(|| panic!("no timestamp on {l:?}"))
    }

    /// Asserts that nothing arrives for `wait`.
    pub fn expect_silence(&mut self, wait: Duration) {
        if let Some(l) = self.try_line(wait) {
            panic!("{}: expected silence, got {l:?}", self.nick);
        }
    }

    /// Reads until the server closes the connection; returns what came.
    pub fn read_to_close(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.try_line(WAIT) {
            out.push(l);
        }
        out
    }

    /// Closes with a TCP reset instead of a FIN.
    pub fn reset(self) {
        let s = self.reader.into_inner();
        let sock = socket2::SockRef::from(&s);
        sock.set_linger(Some(Duration::ZERO)).expect("linger");
        drop(s);
    }

    pub fn close(self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }
}

/// The nick a welcome line announces; panics on any other line.
pub fn nick_in_welcome(line: &str) -> String {
    line.strip_prefix("*** welcome to natter, you are ")
        .and_then(|r| r.strip_suffix("; /help lists commands"))
        .unwrap_or_else(|| panic!("not a welcome line: {line:?}"))
        .to_string()
}

/// Removes a leading `[HH:MM:SS] ` after checking its shape.
pub fn strip_clock(line: &str) -> Option<String> {
    let b = line.as_bytes();
    let ok = b.len() > 11
        && b[0] == b'['
        && b[3] == b':'
        && b[6] == b':'
        && b[9] == b']'
        && b[10] == b' '
        && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit());
    ok.then(|| line[11..].to_string())
}

/// A WebSocket client made with `tungstenite`, a library natter did not
/// write, speaking the JSON protocol over a blocking socket.
pub struct WsClient {
    pub ws: tungstenite::WebSocket<TcpStream>,
    /// The `welcome` the server sent.
    pub welcome: serde_json::Value,
}

impl WsClient {
    /// Connects to `/ws?QUERY` (query without `?`; may be empty) and reads
    /// the welcome.
    pub fn connect(addr: SocketAddr, query: &str) -> WsClient {
        let mut c = WsClient::raw(addr, query);
        let welcome = c.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        c.welcome = welcome;
        c
    }

    /// Connects without reading anything.
    pub fn raw(addr: SocketAddr, query: &str) -> WsClient {
        WsClient::raw_on(TcpStream::connect(addr).expect("connect"), addr, query)
    }

    /// Like `connect`, from the local address `from` (see `connect_from`).
    pub fn connect_from_ip(from: IpAddr, addr: SocketAddr, query: &str) -> WsClient {
        let mut c = WsClient::raw_on(connect_from(from, addr), addr, query);
        let welcome = c.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        c.welcome = welcome;
        c
    }

    /// The handshake for `/ws?QUERY` on `stream`, connected to `addr`.
    fn raw_on(stream: TcpStream, addr: SocketAddr, query: &str) -> WsClient {
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let url = if query.is_empty() {
            format!("ws://{addr}/ws")
        } else {
            format!("ws://{addr}/ws?{query}")
        };
        let (ws, resp) = tungstenite::client(url.as_str(), stream).expect("WebSocket handshake");
        assert_eq!(resp.status(), 101);
        WsClient {
            ws,
            welcome: serde_json::Value::Null,
        }
    }

    pub fn nick(&self) -> String {
        self.welcome["nick"].as_str().expect("nick").to_string()
    }

    pub fn send(&mut self, v: serde_json::Value) {
        self.ws
            .send(tungstenite::Message::text(v.to_string()))
            .expect("send");
    }

    /// The next JSON message (pings are answered by tungstenite itself).
    pub fn recv(&mut self) -> serde_json::Value {
        self.try_recv(WAIT)
            .unwrap_or_else(|| panic!("no WebSocket message within {WAIT:?}"))
    }

    /// The next JSON message within `wait`, or `None` on timeout.
    pub fn try_recv(&mut self, wait: Duration) -> Option<serde_json::Value> {
        self.ws
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("timeout");
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(t)) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server sent bad JSON"))
                }
                Ok(tungstenite::Message::Close(frame)) => panic!("closed by the server: {frame:?}"),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return None
                }
                Err(e) => panic!("WebSocket read: {e}"),
            }
        }
    }

    /// Messages until one has `"type": kind`; returns it.
    pub fn recv_type(&mut self, kind: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(v) = self.try_recv(deadline - Instant::now()) {
                if v["type"] == kind {
                    return v;
                }
            }
        }
        panic!("no {kind:?} message within {WAIT:?}");
    }
}

// ---------------------------------------------------------------------------
// Shared by durability.rs and images.rs: database files, kill -9, plain HTTP.
// ---------------------------------------------------------------------------

/// A connection for a client that stops reading: its 4 KiB receive buffer
/// keeps the kernel's share of the backlog small, so the server's own
/// queue for it fills quickly.
pub fn stalling_socket(addr: SocketAddr) -> TcpStream {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("rcvbuf");
    sock.connect(&addr.into()).expect("connect");
    sock.into()
}

/// A fresh path under the temp directory, unique to this process and call.
pub fn temp_path(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("natter-test-{}-{n}-{tag}", std::process::id()))
}

/// A SQLite file for `--db`; the file and its `-wal`/`-shm` go when dropped.
pub struct TempDb {
    pub path: std::path::PathBuf,
}

impl TempDb {
    pub fn new(tag: &str) -> TempDb {
        TempDb {
            path: temp_path(&format!("{tag}.db")),
        }
    }

    /// The path as the `--db` argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// SIGKILLs the server with `kill -9` (no chance to flush or clean up) and
/// reaps it, so its database is free for the next start.
pub fn kill9(s: Server) {
    let status = Command::new("kill")
        .args(["-9", &s.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 failed");
    drop(s);
}

/// One HTTP answer read off a plain socket.
#[derive(Debug)]
pub struct HttpResp {
    pub status: u16,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `METHOD PATH` with `Connection: close` on a new socket; the whole answer
/// (the body checked against `Content-Length`; none for `HEAD`).
pub fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    assert!(
        !raw.is_empty(),
        "{method} {path}: the server closed the connection without an answer"
    );
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("header line");
            (n.to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let body = raw[end + 4..].to_vec();
    let resp = HttpResp {
        status,
        headers,
        body,
    };
    if method != "HEAD" {
        if let Some(len) = resp.header("content-length") {
            assert_eq!(len.parse::<usize>().ok(), Some(resp.body.len()), "{path}");
        }
    } else {
        assert!(resp.body.is_empty(), "HEAD {path} has a body");
    }
    resp
}

impl Server {
    /// The exit code if the server has exited (None while it runs).
    pub fn try_exit_code(&mut self) -> Option<i32> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.code().unwrap_or(-1)),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Shared by accounts.rs and moderation.rs: clients from a chosen address,
// the host's own address, requests answered by `ref`, netcat, and
// `natter accounts`.
// ---------------------------------------------------------------------------

/// A TCP connection to `addr` from the local address `from` (any port).
/// `127.0.0.2` is loopback too, but a different address to the server:
/// what a second machine would be to its per-address limits and bans.
pub fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let domain = socket2::Domain::for_address(addr);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
    sock.bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind to {from}: {e}"));
    sock.connect(&addr.into())
        .unwrap_or_else(|e| panic!("connect from {from} to {addr}: {e}"));
    sock.into()
}

/// `127.0.0.2`: another loopback address.
pub fn other_loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 2])
}

/// This host's own IPv4 address that is not loopback: the source address
/// the kernel would use towards a public address (a UDP `connect` sends
/// nothing), else the first of `hostname -I`. Fails, never skips, when
/// there is none.
pub fn host_ip() -> IpAddr {
    let usable = |ip: &IpAddr| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified();
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("8.8.8.8:53")?;
            s.local_addr()
        })
        .ok()
        .map(|a| a.ip())
        .filter(usable);
    if let Some(ip) = routed {
        return ip;
    }
    let listed = Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    listed
        .split_whitespace()
        .filter_map(|w| w.parse::<IpAddr>().ok())
        .find(usable)
        .unwrap_or_else(|| {
            panic!(
                "this host has no IPv4 address other than loopback (no route to a public \
                 address, and `hostname -I` says {listed:?}): the insecure-transport tests \
                 need one to connect from an address that is not loopback"
            )
        })
}

impl LineClient {
    /// The next line that is not a timestamped room or DM event: a `***`
    /// confirmation or a `!!!` error.
    pub fn answer(&mut self) -> String {
        self.line_where(|l| strip_clock(l).is_none())
    }

    /// `/register PASSWORD` for the nick it holds; checks the confirmation.
    pub fn register(&mut self, password: &str) {
        self.send(&format!("/register {password}"));
        let nick = self.nick.clone();
        assert_eq!(
            self.answer(),
            format!("*** account {nick} registered; you are logged in as {nick}")
        );
    }

    /// `/nick NICK`, then `/register PASSWORD`.
    pub fn nick_and_register(&mut self, nick: &str, password: &str) {
        self.send(&format!("/nick {nick}"));
        assert_eq!(self.answer(), format!("*** you are now known as {nick}"));
        self.nick = nick.to_string();
        self.register(password);
    }

    /// `/login NICK PASSWORD`; checks the confirmation.
    pub fn login(&mut self, nick: &str, password: &str) {
        self.send(&format!("/login {nick} {password}"));
        assert_eq!(self.answer(), format!("*** you are logged in as {nick}"));
        self.nick = nick.to_string();
    }
}

impl WsClient {
    /// Sends `req` with a fresh `ref`; returns the first message carrying
    /// that ref whose type is `kind` or `error` (others are skipped).
    pub fn ask(&mut self, req: serde_json::Value, kind: &str) -> serde_json::Value {
        self.answer_where(req, |v| v["type"] == kind || v["type"] == "error")
    }

    /// Sends `req` with a fresh `ref`; returns the first message carrying
    /// that ref for which `pred` holds (others are skipped).
    fn answer_where(
        &mut self,
        mut req: serde_json::Value,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let r = format!("r{}", NEXT.fetch_add(1, Ordering::Relaxed));
        req["ref"] = serde_json::Value::from(r.as_str());
        self.send(req.clone());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(v) = self.try_recv(deadline - Instant::now()) {
                if v["ref"] == r.as_str() && pred(&v) {
                    return v;
                }
            }
        }
        panic!("no answer to {req} within {WAIT:?}");
    }

    /// `ask`, which must not be answered with an error.
    pub fn ok(&mut self, req: serde_json::Value, kind: &str) -> serde_json::Value {
        let v = self.ask(req.clone(), kind);
        assert_eq!(v["type"], kind, "{req} was answered {v}");
        v
    }

    /// `ask`, which must be answered with the error `code`; returns it.
    pub fn refused(&mut self, req: serde_json::Value, code: &str) -> serde_json::Value {
        // The first answer of any type: a request that succeeds fails here
        // at once, with what it was answered.
        let v = self.answer_where(req.clone(), |_| true);
        assert_eq!(v["type"], "error", "{req} was answered {v}");
        assert_eq!(v["code"], code, "{req} was answered {v}");
        v
    }

    /// Registers the nick it holds; returns the login token.
    pub fn register(&mut self, password: &str) -> String {
        let v = self.ok(
            serde_json::json!({"type": "register", "password": password}),
            "account",
        );
        assert_eq!(v["account"].as_str(), Some(self.nick().as_str()), "{v}");
        v["token"].as_str().expect("a token").to_string()
    }

    /// Logs in with a password; returns the login token.
    pub fn login(&mut self, nick: &str, password: &str) -> String {
        let v = self.ok(
            serde_json::json!({"type": "login", "nick": nick, "password": password}),
            "account",
        );
        assert_eq!(v["account"], nick, "{v}");
        self.welcome["nick"] = serde_json::Value::from(nick);
        v["token"].as_str().expect("a token").to_string()
    }

    /// Joins `room`; returns the `joined`.
    pub fn join(&mut self, room: &str) -> serde_json::Value {
        self.ok(serde_json::json!({"type": "join", "room": room}), "joined")
    }

    /// A close handshake, so the server lets the session go at once (a
    /// vanished WebSocket client is held for `--resume-grace`).
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(_) => continue,
                Err(_) => return,
            }
        }
        panic!("the server did not complete the close handshake");
    }
}

/// The OpenBSD netcat on `PATH`; fails with instructions when it is
/// missing (`make deps` installs it).
pub fn nc_path() -> std::path::PathBuf {
    let path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([
            std::path::PathBuf::from("/usr/bin"),
            std::path::PathBuf::from("/bin"),
        ])
        .map(|dir| dir.join("nc"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "netcat is not installed: these tests drive the real `nc` \
                 (netcat-openbsd). Install it with `make deps` or \
                 `apt-get install netcat-openbsd`."
            )
        });
    let help = Command::new(&path).arg("-h").output().expect("run nc -h");
    let text =
        String::from_utf8_lossy(&help.stderr).into_owned() + &String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("OpenBSD netcat"),
        "{} is not netcat-openbsd; install netcat-openbsd",
        path.display()
    );
    path
}

/// Lines from a child's stdout (netcat's), read on a thread so that reads
/// can time out.
pub fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        loop {
            let mut buf = Vec::new();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let l = String::from_utf8(buf).expect("netcat showed invalid UTF-8");
                    let l = l.strip_suffix('\n').expect("unterminated last line");
                    if tx.send(l.to_string()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// An interactive `nc HOST PORT`, as a person at a terminal runs it.
pub struct Nc {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::mpsc::Receiver<String>,
}

impl Nc {
    pub fn start(addr: SocketAddr) -> Nc {
        let mut child = Command::new(nc_path())
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nc");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let out = lines_of(stdout);
        Nc { child, stdin, out }
    }

    /// Types a line into netcat.
    pub fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .expect("write to nc");
        stdin.flush().expect("flush nc stdin");
    }

    /// The next line netcat shows.
    pub fn line(&mut self) -> String {
        self.out
            .recv_timeout(WAIT * 2)
            .unwrap_or_else(|e| panic!("nc showed no line: {e}"))
    }

    /// The next line, which must carry a clock; returns the rest.
    pub fn event(&mut self) -> String {
        let l = self.line();
        strip_clock(&l).unwrap_or_else(|| panic!("nc: no timestamp on {l:?}"))
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `natter accounts ARGS... --db DB` with `stdin` as its standard input,
/// as an operator runs it from a shell; panics unless it succeeds.
pub fn natter_accounts(db: &TempDb, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("accounts")
        .args(args)
        .args(["--db", db.arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natter accounts");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("write the password");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "natter accounts {args:?} failed: {stderr}"
    );
    stderr
}

impl LineClient {
    /// Asserts that nothing is queued for this client: it asks `/rooms`,
    /// and the answer must be the next line. Whatever the server sent
    /// before it handled the request would come first, so this needs no
    /// waiting.
    pub fn nothing_more(&mut self) {
        self.send("/rooms");
        let l = self.line();
        assert!(l.starts_with("*** rooms: "), "{}: got {l:?}", self.nick);
    }
}

impl WsClient {
    /// Asserts that nothing is queued for this client (as
    /// `LineClient::nothing_more`, with `rooms`).
    pub fn nothing_more(&mut self) {
        self.send(serde_json::json!({"type": "rooms", "ref": "nothing-more"}));
        let v = self.recv();
        assert!(
            v["type"] == "rooms" && v["ref"] == "nothing-more",
            "{}: got {v}",
            self.nick()
        );
    }
}

/// `HH:MM:SS` (UTC) of a time in milliseconds since the epoch.
pub fn clock(ms: u64) -> String {
    let secs = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A line client that has left `#lobby`, so that others coming and going
/// there do not show up in what it reads.
pub fn quiet_line(s: &Server) -> LineClient {
    let mut c = s.line_client();
    c.send("/leave lobby");
    assert_eq!(c.line(), "*** you left #lobby");
    c
}

/// The error a line client was sent, as `(code, message)`.
pub fn line_error(line: &str) -> (String, String) {
    let rest = line
        .strip_prefix("!!! ")
        .unwrap_or_else(|| panic!("not an error line: {line:?}"));
    let (code, message) = rest.split_once(": ").expect("CODE: message");
    (code.to_string(), message.to_string())
}

// ---------------------------------------------------------------------------
// Redis (issue 18): a redis-server of the test's own, and a client.
// ---------------------------------------------------------------------------

/// A `redis-server` started for one test on a free loopback port, in a
/// temporary directory, with the durability natter asks for
/// (`--appendonly yes --appendfsync always`); stopped by its PID (and its
/// directory removed) when dropped.
pub struct RedisProc {
    child: Child,
    pub port: u16,
    pub dir: std::path::PathBuf,
    /// The settings it was started with (for `restart`).
    settings: Vec<String>,
}

impl RedisProc {
    pub fn start() -> RedisProc {
        RedisProc::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
    }

    /// With these settings instead of natter's durability ones.
    pub fn start_with(settings: &[&str]) -> RedisProc {
        for attempt in 0..20 {
            // A port the kernel just gave out and took back: free unless
            // someone takes it in between (then try again).
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let dir = temp_path(&format!("redis-{port}-{attempt}"));
            std::fs::create_dir_all(&dir).expect("redis dir");
            let settings: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
            let child = RedisProc::spawn(port, &dir, &settings);
            let mut r = RedisProc {
                child,
                port,
                dir,
                settings,
            };
            if r.answers() {
                return r;
            }
            drop(r);
        }
        panic!("redis-server did not start");
    }

    fn spawn(port: u16, dir: &std::path::Path, settings: &[String]) -> Child {
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(settings)
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server; `make test` installs it)")
    }

    /// Waits (at most `WAIT`) until it answers `PING`; `false` if it
    /// exited first (its port was taken) or never answered.
    fn answers(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(mut c) = RespClient::try_connect(self.port) {
                if c.cmd(&["PING"]).as_bytes() == Some(b"PONG") {
                    return true;
                }
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` (no chance to write anything more) and reaps it; its
    /// directory, with its append-only files, stays for `restart`.
    pub fn kill9(&mut self) {
        signal(self.pid(), "-KILL");
        let _ = self.child.wait();
    }

    /// Starts it again on the same port, in the same directory, with the
    /// same settings (so what it appended survives); waits until it
    /// answers. Panics if the port was taken meanwhile.
    pub fn restart(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            panic!("restart: redis-server {} still runs", self.pid());
        }
        self.child = RedisProc::spawn(self.port, &self.dir, &self.settings);
        assert!(
            self.answers(),
            "redis-server did not start again on port {}",
            self.port
        );
    }

    /// `kill -STOP`: it stops answering, its sockets stay open.
    pub fn stop(&self) {
        signal(self.pid(), "-STOP");
    }

    /// `kill -CONT`.
    pub fn cont(&self) {
        signal(self.pid(), "-CONT");
    }

    /// The local ports of `pid`'s TCP connections to this Redis, from
    /// `/proc/PID/fd` and `/proc/net/tcp` (natter connects over IPv4).
    pub fn ports_of(&self, pid: u32) -> Vec<u16> {
        let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("read /proc/PID/fd")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let port_of = |a: &str| u16::from_str_radix(a.rsplit(':').next()?, 16).ok();
        table
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?);
                (port_of(remote)? == self.port && inodes.iter().any(|i| i == inode))
                    .then(|| port_of(local))
                    .flatten()
            })
            .collect()
    }

    /// The address (`127.0.0.1:PORT`) of `pid`'s subscriber connection, as
    /// `CLIENT LIST TYPE pubsub` names it.
    pub fn subscriber_of(&self, pid: u32) -> Option<String> {
        let ports = self.ports_of(pid);
        let list = self.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        list.lines().find_map(|l| {
            let addr = l.split(' ').find_map(|f| f.strip_prefix("addr="))?;
            let port: u16 = addr.rsplit(':').next()?.parse().ok()?;
            ports.contains(&port).then(|| addr.to_string())
        })
    }

    pub fn client(&self) -> RespClient {
        RespClient::try_connect(self.port).expect("connect to redis")
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli` (an independent client) with these arguments; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `kill SIG PID` (`-KILL`, `-STOP`, `-CONT`); panics unless it worked.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Server {
    /// `natter --listen 127.0.0.1:0 --db DB --redis URL ARGS...`, once its
    /// `/healthz` says both its connections to Redis are ready (at most
    /// 10 s). Its log goes to stderr with `NATTER_TEST_LOG` set (and
    /// `RUST_LOG=natter=debug` for everything).
    pub fn start_redis(redis: &RedisProc, db: &TempDb, args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
        cmd.args(["--listen", "127.0.0.1:0", "--db", db.arg()])
            .args(["--redis", &redis.url()])
            .args(args);
        let s = Server::spawn(cmd, 1);
        assert!(
            s.wait_health(200, Duration::from_secs(10)),
            "natter --redis {} did not become healthy",
            redis.url()
        );
        s
    }

    /// `GET /healthz`'s status.
    pub fn health(&self) -> u16 {
        http(self.addr, "GET", "/healthz").status
    }

    /// Polls `/healthz` until it answers `status`; `false` after `within`.
    pub fn wait_health(&self, status: u16, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.health() == status {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A sample without labels from `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = http(self.addr, "GET", "/metrics").body;
        String::from_utf8_lossy(&body).lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// `GET /api/stats`.
    pub fn stats(&self) -> serde_json::Value {
        http(self.addr, "GET", "/api/stats").json()
    }
}

/// A blocking RESP client over natter's own codec (`proto::resp`); tests
/// that need an independent one use `redis-cli` beside it.
pub struct RespClient {
    pub stream: TcpStream,
    decoder: natter::proto::resp::Decoder,
    ready: std::collections::VecDeque<natter::proto::resp::Value>,
}

impl RespClient {
    pub fn try_connect(port: u16) -> std::io::Result<RespClient> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(WAIT))?;
        Ok(RespClient {
            stream,
            decoder: natter::proto::resp::Decoder::new(Default::default()),
            ready: Default::default(),
        })
    }

    /// Sends raw command bytes (one or several commands).
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to redis");
    }

    /// The next reply or push.
    pub fn next(&mut self) -> natter::proto::resp::Value {
        let mut buf = [0u8; 16 * 1024];
        while self.ready.is_empty() {
            let n = self.stream.read(&mut buf).expect("read from redis");
            assert!(n > 0, "redis closed the connection");
            let ready = &mut self.ready;
            self.decoder
                .decode(&buf[..n], |v| ready.push_back(v))
                .expect("valid RESP from redis");
        }
        self.ready.pop_front().expect("a value")
    }

    /// One command, its reply.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> natter::proto::resp::Value {
        let mut out = Vec::new();
        natter::proto::resp::encode_command(&mut out, args);
        self.send(&out);
        self.next()
    }
}
