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
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a client waits for a line it expects.
pub const WAIT: Duration = Duration::from_secs(5);

/// The running binary; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
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
        cmd.args(args).stdout(Stdio::piped()).stdin(Stdio::null());
        if std::env::var_os("NATTER_TEST_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        let mut child = cmd.spawn().expect("spawn natter");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("natter listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server { child, addr }
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

/// The server's threads: the event loop, and the helper thread that runs
/// slow jobs (SQLite checkpoints) off it (docs/ARCHITECTURE.md, "Slow jobs
/// off the loop"). No thread per client, ever.
pub const THREADS: usize = 2;

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
        let mut c = LineClient::raw(addr);
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
        c
    }

    /// Connects without reading anything.
    pub fn raw(addr: SocketAddr) -> LineClient {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        LineClient {
            reader: BufReader::new(stream),
            nick: String::new(),
            greeting: Vec::new(),
        }
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
        let stream = TcpStream::connect(addr).expect("connect");
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
