//! HTTP/1.1 against the real binary: with the real `curl` (a client natter
//! did not write) for the routes, and with raw sockets for the framing rules
//! that no well-behaved client would break.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::*;

/// A parsed answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    /// Names lowercased, in order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    fn content_length(&self) -> usize {
        self.header("content-length")
            .unwrap_or_else(|| panic!("no Content-Length in {:?}", self.headers))
            .parse()
            .expect("Content-Length")
    }
}

/// Splits a status line and header lines (CRLF-separated, no blank line).
fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {l:?}"));
            (n.to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    (status, headers)
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

static CURL: Once = Once::new();

/// Runs `curl -sS --max-time 10 ARGS`; stdout and stderr.
fn curl(args: &[&str]) -> (Vec<u8>, String) {
    CURL.call_once(|| {
        let ok = Command::new("curl")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "these tests need the curl binary on PATH (Debian: apt-get install curl)"
        );
    });
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?} failed: {stderr}");
    (out.stdout, stderr)
}

/// `curl -i` of `path` with extra arguments: the parsed answer.
fn curl_i(addr: SocketAddr, path: &str, extra: &[&str]) -> Resp {
    let url = format!("http://{addr}{path}");
    let mut args = vec!["-i"];
    args.extend_from_slice(extra);
    args.push(&url);
    let (out, _) = curl(&args);
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&out)));
    let (status, headers) = parse_head(std::str::from_utf8(&out[..end]).expect("ASCII head"));
    Resp {
        status,
        headers,
        body: out[end + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    curl_i(addr, path, &[])
}

// ---------------------------------------------------------------------------
// Raw connections
// ---------------------------------------------------------------------------

/// An HTTP connection over a plain socket.
struct Http {
    reader: BufReader<TcpStream>,
}

impl Http {
    fn open(addr: SocketAddr) -> Http {
        Http::on(TcpStream::connect(addr).expect("connect"))
    }

    /// An HTTP connection over `stream`, already connected.
    fn on(stream: TcpStream) -> Http {
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        Http {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// Reads one answer; its body by `Content-Length`, none for `HEAD`.
    fn response(&mut self, head_only: bool) -> Resp {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read head");
            assert!(
                n > 0,
                "connection closed before a complete answer: {head:?}"
            );
            if line == "\r\n" {
                break;
            }
            assert!(line.ends_with("\r\n"), "header line without CRLF: {line:?}");
            head.push_str(&line);
        }
        let (status, headers) = parse_head(head.trim_end_matches("\r\n"));
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if !head_only && status != 101 {
            let mut body = vec![0; resp.content_length()];
            self.reader.read_exact(&mut body).expect("read body");
            resp.body = body;
        }
        resp
    }

    /// The server closes the connection with nothing more to say.
    fn expect_eof(&mut self, what: &str) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "{what}: bytes after the answer: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{what}: the connection stayed open ({e})"),
        }
    }

    /// Nothing arrives for `wait` and the connection stays open.
    fn expect_open(&mut self, wait: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("timeout");
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected an open, quiet connection: {other:?}"),
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(WAIT))
            .expect("timeout");
    }
}

/// Sends `raw` on a new connection and reads one answer.
fn exchange(addr: SocketAddr, raw: &[u8]) -> (Resp, Http) {
    let mut c = Http::open(addr);
    c.send(raw);
    let head_only = raw.starts_with(b"HEAD ");
    let r = c.response(head_only);
    (r, c)
}

/// `GET PATH` with `Connection: close`; the answer, after checking the close.
fn raw_get(addr: SocketAddr, method: &str, path: &str) -> Resp {
    let (r, mut c) = exchange(
        addr,
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    c.expect_eof(&format!("{method} {path}"));
    r
}

/// A WebSocket upgrade request with the given extra header lines.
fn upgrade(addr: SocketAddr, version: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\
         {extra}\r\n"
    )
}

/// The sorted keys of a JSON object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

/// Prometheus samples: `name{labels}` -> value.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {l:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (name.to_string(), value)
        })
        .collect()
}

fn sample(text: &str, name: &str) -> f64 {
    samples(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
        .1
}

// ---------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------

#[test]
fn healthz_answers_ok() {
    let s = Server::start(&[]);
    let r = get(s.addr, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    assert_eq!(r.content_length(), 2);
    let r = raw_get(s.addr, "GET", "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
}

#[test]
fn the_page_is_html() {
    let s = Server::start(&[]);
    let r = get(s.addr, "/");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().to_lowercase().contains("<html"), "{}", r.text());
}

/// The page is ES modules (`web/*.js`, `app.js` the entry): each one is
/// served as JavaScript (a module script with another type is refused by
/// the browser), byte for byte, under the same Content-Security-Policy as
/// the page, and every module another one imports is served.
#[test]
fn every_page_module_is_served_as_javascript() {
    let s = Server::start(&[]);
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let mut modules: Vec<String> = std::fs::read_dir(&web)
        .expect("web/")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .filter(|name| name.ends_with(".js"))
        .collect();
    modules.sort();
    assert!(modules.contains(&"app.js".to_string()), "{modules:?}");
    let page = get(s.addr, "/");
    let csp = page
        .header("content-security-policy")
        .expect("CSP")
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        page.text()
            .contains(r#"<script type="module" src="/app.js"></script>"#),
        "index.html loads /app.js as a module"
    );
    for preload in page
        .text()
        .split(r#"<link rel="modulepreload" href="/"#)
        .skip(1)
    {
        let target = &preload[..preload.find('"').expect("a quoted href")];
        assert!(
            modules.iter().any(|m| m == target),
            "index.html preloads /{target}, which web/ does not have"
        );
    }
    for name in &modules {
        let path = format!("/{name}");
        assert!(
            name == "app.js"
                || page
                    .text()
                    .contains(&format!(r#"<link rel="modulepreload" href="{path}">"#)),
            "index.html preloads {path}"
        );
        let r = get(s.addr, &path);
        assert_eq!(r.status, 200, "GET {path}: is web/{name} in ASSETS?");
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            r.header("content-security-policy"),
            Some(&csp[..]),
            "{path}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            r.body,
            std::fs::read(web.join(name)).expect("read"),
            "{path} is web/{name}"
        );
        for import in r.text().split(" from './").skip(1) {
            let target = &import[..import.find('\'').expect("a quoted specifier")];
            assert!(
                modules.iter().any(|m| m == target),
                "{path} imports ./{target}, which web/ does not have"
            );
        }
    }
}

#[test]
fn head_works_wherever_get_does() {
    let s = Server::start(&[]);
    let stable = [
        "/",
        "/healthz",
        "/api/rooms",
        "/api/rooms/lobby/messages",
        "/nope",
        "/api/rooms/bad!room/messages",
    ];
    for path in stable {
        let g = raw_get(s.addr, "GET", path);
        let h = raw_get(s.addr, "HEAD", path);
        assert_eq!(h.status, g.status, "HEAD {path}");
        assert_eq!(
            h.content_length(),
            g.body.len(),
            "HEAD {path}: Content-Length of the GET body"
        );
        assert_eq!(h.header("content-type"), g.header("content-type"), "{path}");
    }
    // Figures that move between requests: a length, no body.
    for path in ["/metrics", "/api/stats"] {
        let h = raw_get(s.addr, "HEAD", path);
        assert_eq!(h.status, 200, "HEAD {path}");
        assert!(h.content_length() > 0, "HEAD {path}");
    }
    // curl -I.
    let (out, _) = curl(&["-I", &format!("http://{}/healthz", s.addr)]);
    let out = String::from_utf8(out).expect("UTF-8");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("\r\ncontent-length: 2\r\n"),
        "{out}"
    );
    assert!(out.ends_with("\r\n\r\n"), "a body after HEAD: {out:?}");
    // On a keep-alive connection, the next answer follows the HEAD's head
    // at once: no body was sent.
    let mut c = Http::open(s.addr);
    c.send(
        format!(
            "HEAD /healthz HTTP/1.1\r\nHost: {0}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {0}\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    );
    let h = c.response(true);
    assert_eq!((h.status, h.content_length()), (200, 2));
    let g = c.response(false);
    assert_eq!((g.status, &g.body[..]), (200, &b"ok"[..]));
}

#[test]
fn metrics_has_every_family_and_the_values_move() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut line = s.line_client();
    let mut ws = WsClient::connect(s.addr, "nick=webby&room=lobby");
    assert_eq!(ws.recv()["type"], "joined");
    let _ = line.line();

    let r = get(s.addr, "/metrics");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").expect("content-type");
    assert!(ct.starts_with("text/plain"), "{ct}");
    let m1 = r.text();
    for family in [
        "natter_connections",
        "natter_rooms",
        "natter_messages_total",
        "natter_deliveries_total",
        "natter_bytes_out_total",
        "natter_dropped_connections_total",
        "natter_loop_iterations_total",
        "natter_poll_events_total",
        "natter_store_commits_total",
        "natter_store_checkpoints_total",
    ] {
        assert!(
            m1.lines()
                .any(|l| l.starts_with(&format!("# TYPE {family} "))),
            "no # TYPE line for {family} in\n{m1}"
        );
    }
    assert_eq!(sample(&m1, "natter_connections{kind=\"line\"}"), 1.0);
    assert_eq!(sample(&m1, "natter_connections{kind=\"ws\"}"), 1.0);
    assert!(sample(&m1, "natter_connections{kind=\"http\"}") >= 1.0);
    assert_eq!(sample(&m1, "natter_rooms"), 1.0);
    assert_eq!(sample(&m1, "natter_messages_total"), 0.0);

    ws.send(json!({"type":"say","room":"lobby","text":"counted"}));
    assert_eq!(ws.recv()["type"], "message");
    assert_eq!(line.event(), "#lobby <webby> counted");

    let m2 = get(s.addr, "/metrics").text();
    assert_eq!(sample(&m2, "natter_messages_total"), 1.0);
    assert_eq!(
        sample(&m2, "natter_store_commits_total") - sample(&m1, "natter_store_commits_total"),
        1.0
    );
    for counter in [
        "natter_deliveries_total",
        "natter_bytes_out_total",
        "natter_loop_iterations_total",
        "natter_poll_events_total",
    ] {
        assert!(
            sample(&m2, counter) > sample(&m1, counter),
            "{counter} did not move: {} then {}",
            sample(&m1, counter),
            sample(&m2, counter)
        );
    }

    // A connection the server drops shows up with its reason.
    let mut c = Http::open(s.addr);
    c.send(upgrade(s.addr, "13", "").as_bytes());
    assert_eq!(c.response(true).status, 101);
    c.send(b"\x81\x02{}"); // unmasked: dropped with 1002
    let mut sink = Vec::new();
    let _ = c.reader.read_to_end(&mut sink);
    let m3 = get(s.addr, "/metrics").text();
    let dropped: f64 = samples(&m3)
        .iter()
        .filter(|(n, _)| n.starts_with("natter_dropped_connections_total{reason=\""))
        .map(|(_, v)| v)
        .sum();
    assert!(dropped >= 1.0, "no dropped connection counted in\n{m3}");
}

#[test]
fn api_rooms_lists_listed_rooms_with_members() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let r = get(s.addr, "/api/rooms");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"rooms":[]}));

    let _line = s.line_client();
    let mut a = WsClient::connect(s.addr, "nick=alice&room=lobby");
    assert_eq!(a.recv()["type"], "joined");
    a.send(json!({"type":"join","room":"Dev"}));
    assert_eq!(a.recv()["type"], "joined");
    a.send(json!({"type":"create"}));
    let code = a.recv()["room"].as_str().expect("code").to_string();
    let r = get(s.addr, "/api/rooms");
    assert_eq!(
        r.json(),
        json!({"rooms":[{"name":"lobby","members":2},{"name":"dev","members":1}]})
    );
    assert!(
        !r.text().contains(&code),
        "unlisted room listed: {}",
        r.text()
    );
}

#[test]
fn api_messages_pages_the_store() {
    let s = Server::start(&["--rate", "100000", "--burst", "100000"]);
    let mut a = WsClient::connect(s.addr, "nick=alice&room=lobby");
    assert_eq!(a.recv()["type"], "joined");
    for i in 1..=210 {
        a.send(
            json!({"type":"say","room":"lobby","text":format!("m{i}"),"cid":format!("c{i}"),
                      "action": i == 7}),
        );
    }
    for _ in 0..210 {
        assert_eq!(a.recv()["type"], "message");
    }
    let page = |q: &str| -> Value {
        let r = get(s.addr, &format!("/api/rooms/lobby/messages{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = r.json();
        assert_eq!(keys(&v), vec!["messages", "room"], "{q}");
        assert_eq!(v["room"], "lobby");
        v
    };
    let v = page("");
    assert_eq!(seqs(&v["messages"]), (161..=210).collect::<Vec<_>>());
    let m = &v["messages"][0];
    assert_eq!(
        keys(m),
        vec!["from", "room", "seq", "text", "ts", "type"],
        "{m}"
    );
    assert_eq!(m["type"], "message");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["text"], "m161");
    assert!(m["ts"].as_u64().is_some());
    assert_eq!(
        seqs(&page("?limit=5")["messages"]),
        vec![206, 207, 208, 209, 210]
    );
    assert_eq!(seqs(&page("?before=10&limit=3")["messages"]), vec![7, 8, 9]);
    let v = page("?before=8&limit=1");
    assert_eq!(v["messages"][0]["action"], true);
    assert_eq!(v["messages"][0]["text"], "m7");
    assert_eq!(
        seqs(&page("?after=205")["messages"]),
        vec![206, 207, 208, 209, 210]
    );
    assert_eq!(seqs(&page("?after=10&limit=2")["messages"]), vec![11, 12]);
    assert_eq!(
        seqs(&page("?limit=1000")["messages"]),
        (11..=210).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&page("?after=0&limit=200")["messages"]),
        (1..=200).collect::<Vec<_>>()
    );
    assert_eq!(page("?before=1")["messages"], json!([]));
    assert_eq!(page("?after=210")["messages"], json!([]));

    // Room names as elsewhere: case-insensitive, a leading # ignored.
    for room in ["LOBBY", "%23lobby"] {
        let r = get(s.addr, &format!("/api/rooms/{room}/messages?limit=1"));
        assert_eq!(r.status, 200, "{room}");
        assert_eq!(r.json()["room"], "lobby");
        assert_eq!(seqs(&r.json()["messages"]), vec![210]);
    }
    // A room that never had messages: empty, not an error.
    let r = get(s.addr, "/api/rooms/quiet/messages");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"room":"quiet","messages":[]}));
    // Invalid room names: 400.
    let long = "r".repeat(33);
    for room in ["bad!room", "%20", long.as_str(), "caf%C3%A9"] {
        let r = get(s.addr, &format!("/api/rooms/{room}/messages"));
        assert_eq!(r.status, 400, "{room}: {}", r.text());
    }
}

#[test]
fn api_stats_reports_the_loop() {
    let s = Server::start(&["--sniff-ms", "50"]);
    let _line = s.line_client();
    let r = get(s.addr, "/api/stats");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["connections"]["line"], 1, "{v}");
    assert_eq!(v["connections"]["ws"], 0, "{v}");
    assert!(v["connections"]["http"].as_u64().expect("http") >= 1, "{v}");
    assert!(v["loop_iterations"].as_u64().expect("loop_iterations") > 0);
    assert!(v["events_per_wakeup"].is_number(), "{v}");
    assert!(v["bytes_queued"].is_u64(), "{v}");
    assert!(
        v.to_string().contains("commit"),
        "no store commit time in {v}"
    );
}

#[test]
fn the_loop_page_is_served_with_its_files_under_the_page_policy() {
    let s = Server::start(&[]);
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/loop");
    let page = get(s.addr, "/loop");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.body,
        std::fs::read(web.join("index.html")).expect("read")
    );
    let csp = page
        .header("content-security-policy")
        .expect("a policy")
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        page.text()
            .contains(r#"<script type="module" src="/loop/loop.js"></script>"#)
            && page.text().contains(r#"href="/loop/loop.css""#),
        "{}",
        page.text()
    );
    for (path, file, kind) in [
        ("/loop/loop.js", "loop.js", "text/javascript; charset=utf-8"),
        ("/loop/loop.css", "loop.css", "text/css; charset=utf-8"),
    ] {
        let r = get(s.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(kind), "{path}");
        assert_eq!(r.header("content-security-policy"), Some(&csp[..]));
        assert_eq!(r.body, std::fs::read(web.join(file)).expect("read"));
    }
    // What the page reads: the figures it charts are in /api/stats.
    let js = get(s.addr, "/loop/loop.js").text();
    assert!(
        js.contains("fetch('/api/stats'"),
        "the page polls /api/stats"
    );
    let v = get(s.addr, "/api/stats").json();
    for key in ["total", "largest"] {
        assert!(v["output"]["unsent_recent"][key].is_u64(), "{key}: {v}");
    }
}

#[test]
fn private_stats_keeps_the_figures_for_loopback() {
    let figures = [
        "/loop",
        "/loop/loop.js",
        "/loop/loop.css",
        "/api/stats",
        "/metrics",
    ];
    let ask = |addr: SocketAddr, from: Option<std::net::IpAddr>, path: &str| -> Resp {
        let stream = match from {
            Some(ip) => connect_from(ip, addr),
            None => TcpStream::connect(addr).expect("connect"),
        };
        let mut c = Http::on(stream);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        c.response(false)
    };
    let open = Server::start(&[]);
    let private = Server::start(&["--private-stats"]);
    let other = host_ip();
    for path in figures {
        // Open by default, from any address.
        assert_eq!(ask(open.addr, Some(other), path).status, 200, "{path}");
        // With --private-stats: loopback only.
        assert_eq!(ask(private.addr, None, path).status, 200, "{path}");
        let r = ask(private.addr, Some(other), path);
        assert_eq!(r.status, 403, "{path} from {other}");
        assert!(r.text().contains("--private-stats"), "{}", r.text());
    }
    // The chat page and the chat are not figures.
    assert_eq!(ask(private.addr, Some(other), "/").status, 200);
    assert_eq!(ask(private.addr, Some(other), "/healthz").status, 200);
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let s = Server::start(&[]);
    let r = get(s.addr, "/nope");
    assert_eq!(r.status, 404);
    let r = get(s.addr, "/api/rooms/lobby/other");
    assert_eq!(r.status, 404);
    for (method, path) in [
        ("POST", "/healthz"),
        ("POST", "/api/rooms"),
        ("DELETE", "/api/rooms/lobby/messages"),
        ("PUT", "/metrics"),
        ("POST", "/"),
        ("OPTIONS", "/api/stats"),
    ] {
        let r = curl_i(s.addr, path, &["-X", method]);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
    }
    // A POST with a body, by curl.
    let r = curl_i(s.addr, "/healthz", &["--data", "x=1"]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let s = Server::start(&[]);
    let mut c = Http::open(s.addr);
    let req = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    c.send(req("/healthz").as_bytes());
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(r.header("connection"), None);
    c.expect_open(Duration::from_millis(200));
    c.send(req("/api/rooms").as_bytes());
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"rooms":[]}));

    // Pipelined: three in one write, answered in order (a 404 does not close).
    let all = req("/healthz") + &req("/nope") + &req("/api/rooms");
    c.send(all.as_bytes());
    assert_eq!(c.response(false).text(), "ok");
    assert_eq!(c.response(false).status, 404);
    assert_eq!(c.response(false).json(), json!({"rooms":[]}));
    // Many pipelined in one write.
    let many: String = (0..100).map(|_| req("/healthz")).collect();
    c.send(many.as_bytes());
    for i in 0..100 {
        assert_eq!(c.response(false).body, b"ok", "answer {i}");
    }
    // Pipelined in pieces that split a request head.
    let all = req("/healthz") + &req("/api/rooms");
    let (x, y) = all.as_bytes().split_at(30);
    c.send(x);
    std::thread::sleep(Duration::from_millis(50));
    c.send(y);
    assert_eq!(c.response(false).text(), "ok");
    assert_eq!(c.response(false).status, 200);
    c.expect_open(Duration::from_millis(100));

    // curl reuses the connection for two URLs.
    let (out, err) = curl(&[
        "-v",
        &format!("http://{}/healthz", s.addr),
        &format!("http://{}/healthz", s.addr),
    ]);
    assert_eq!(out, b"okok");
    assert!(
        err.contains("Re-using existing connection"),
        "curl did not reuse the connection:\n{err}"
    );
}

#[test]
fn connection_close_and_http_1_0_close_after_the_answer() {
    let s = Server::start(&[]);
    let (r, mut c) = exchange(
        s.addr,
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    c.expect_eof("Connection: close");

    let (r, mut c) = exchange(s.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"ok");
    c.expect_eof("HTTP/1.0");

    let (r, mut c) = exchange(
        s.addr,
        format!("GET /api/rooms HTTP/1.0\r\nHost: {}\r\n\r\n", s.addr).as_bytes(),
    );
    assert_eq!(r.status, 200);
    c.expect_eof("HTTP/1.0 with Host");

    // A later request in the same write as a Connection: close one is not
    // answered.
    let two = format!(
        "GET /healthz HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n\
         GET /api/rooms HTTP/1.1\r\nHost: {0}\r\n\r\n",
        s.addr
    );
    let (r, mut c) = exchange(s.addr, two.as_bytes());
    assert_eq!(r.body, b"ok");
    c.expect_eof("pipelined after Connection: close");
}

#[test]
fn malformed_requests_get_400_and_a_close() {
    let s = Server::start(&[]);
    let a = s.addr;
    let cases = [
        ("target not a path", "GET healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
        ("unknown HTTP version", "GET / HTTP/1.2\r\nHost: x\r\n\r\n".into()),
        (
            "conflicting Content-Length",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                .into(),
        ),
        (
            "Content-Length not a number",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: five\r\n\r\n".into(),
        ),
        (
            "Transfer-Encoding",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".into(),
        ),
        (
            "Transfer-Encoding and Content-Length",
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .into(),
        ),
        ("HTTP/1.1 without Host", "GET /healthz HTTP/1.1\r\n\r\n".into()),
        (
            "two Host headers",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n".into(),
        ),
        (
            "header line without a colon",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n".into(),
        ),
        (
            "space before the colon",
            "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n".into(),
        ),
        (
            "obsolete line folding",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n  c\r\n\r\n".into(),
        ),
    ];
    for (what, raw) in cases {
        let (r, mut c) = exchange(a, raw.as_bytes());
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        c.expect_eof(what);
    }
    // A bad request line after a good request on a keep-alive connection.
    let mut c = Http::open(a);
    c.send(format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\nHELLO THERE\r\n\r\n").as_bytes());
    assert_eq!(c.response(false).body, b"ok");
    let r = c.response(false);
    assert_eq!(r.status, 400, "{}", r.text());
    c.expect_eof("bad second request line");
}

#[test]
fn a_slow_request_head_gets_408() {
    let s = Server::start(&["--header-timeout", "1"]);
    let stream = TcpStream::connect(s.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut w = stream.try_clone().expect("clone");
    let started = Instant::now();
    w.write_all(b"GET /healthz HTTP/1.1\r\n").expect("write");
    // Slowloris: a header line now and then, never the end of the head.
    let trickle = std::thread::spawn(move || {
        for i in 0..40 {
            std::thread::sleep(Duration::from_millis(200));
            if w.write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .is_err()
            {
                break;
            }
        }
    });
    let mut c = Http {
        reader: BufReader::new(stream),
    };
    let r = c.response(false);
    let took = started.elapsed();
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "408 after {took:?} with --header-timeout 1"
    );
    c.expect_eof("after 408");
    trickle.join().expect("trickle");
}

/// Reads an answer that must come within `within`; a clear failure if not.
fn answer_within(c: &mut Http, within: Duration, what: &str) -> (Resp, Duration) {
    let started = Instant::now();
    c.reader
        .get_ref()
        .set_read_timeout(Some(within))
        .expect("timeout");
    match c.reader.fill_buf() {
        Ok(b) if !b.is_empty() => {}
        Ok(_) => panic!("{what}: closed without an answer"),
        Err(e) => panic!(
            "{what}: no answer within {within:?} ({e}); with --header-timeout 1 a 408 was due"
        ),
    }
    c.reader
        .get_ref()
        .set_read_timeout(Some(WAIT))
        .expect("timeout");
    (c.response(false), started.elapsed())
}

#[test]
fn an_unfinished_request_line_gets_408_after_the_header_timeout() {
    // A head is the request line and the headers: one that stops inside
    // its request line is not complete either.
    let s = Server::start(&["--header-timeout", "1"]);
    let mut c = Http::open(s.addr);
    c.send(b"GET /heal");
    let (r, took) = answer_within(&mut c, Duration::from_secs(6), "request line unfinished");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(took >= Duration::from_millis(900), "408 after {took:?}");
    c.expect_eof("after 408");
}

#[test]
fn a_slow_second_request_on_a_keep_alive_connection_gets_408() {
    // The header timeout counts from the first byte of each request.
    let s = Server::start(&["--header-timeout", "1"]);
    let mut c = Http::open(s.addr);
    c.send(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes());
    assert_eq!(c.response(false).body, b"ok");
    // Idle past the header timeout first (an idle keep-alive connection is
    // not late: no request has started), then a head that never ends.
    std::thread::sleep(Duration::from_millis(1500));
    c.send(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n", s.addr).as_bytes());
    let (r, took) = answer_within(&mut c, Duration::from_secs(6), "second head unfinished");
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(took >= Duration::from_millis(900), "408 after {took:?}");
    c.expect_eof("after 408");
}

#[test]
fn an_idle_keep_alive_connection_is_not_a_408() {
    // The header timeout counts from the first byte of a request, not from
    // the end of the previous answer.
    let s = Server::start(&["--header-timeout", "1"]);
    let mut c = Http::open(s.addr);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr);
    c.send(req.as_bytes());
    assert_eq!(c.response(false).body, b"ok");
    c.expect_open(Duration::from_millis(1500));
    c.send(req.as_bytes());
    assert_eq!(c.response(false).body, b"ok");
}

#[test]
fn long_request_lines_get_414_and_big_headers_431() {
    let s = Server::start(&[]);
    let a = s.addr;
    // Well under 8 KiB: served.
    let ok = format!(
        "GET /healthz?p={} HTTP/1.1\r\nHost: {a}\r\n\r\n",
        "a".repeat(8000)
    );
    let (r, _) = exchange(a, ok.as_bytes());
    assert_eq!(r.status, 200);
    // Over 8 KiB: 414, sent whole or in pieces.
    let long = format!(
        "GET /healthz?p={} HTTP/1.1\r\nHost: {a}\r\n\r\n",
        "a".repeat(8300)
    );
    let (r, mut c) = exchange(a, long.as_bytes());
    assert_eq!(r.status, 414, "{}", r.text());
    c.expect_eof("414");
    let mut c = Http::open(a);
    c.send(&long.as_bytes()[..4000]);
    std::thread::sleep(Duration::from_millis(50));
    c.send(&long.as_bytes()[4000..8250]); // no line feed yet
    let r = c.response(false);
    assert_eq!(r.status, 414, "{}", r.text());
    c.expect_eof("414 in pieces");

    // A header section under 8 KiB: served; over: 431.
    let headers = |n: usize| -> String {
        (0..n)
            .map(|i| format!("X-Pad-{i:03}: {}\r\n", "v".repeat(90)))
            .collect()
    };
    let ok = format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n{}\r\n", headers(70));
    let (r, _) = exchange(a, ok.as_bytes());
    assert_eq!(r.status, 200);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n{}\r\n", headers(90));
    assert!(big.len() > 9000);
    let (r, mut c) = exchange(a, big.as_bytes());
    assert_eq!(r.status, 431, "{}", r.text());
    c.expect_eof("431");
    // One huge header line.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: {a}\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    let (r, mut c) = exchange(a, huge.as_bytes());
    assert_eq!(r.status, 431, "{}", r.text());
    c.expect_eof("431 one line");
}

#[test]
fn websocket_version_other_than_13_gets_426() {
    let s = Server::start(&[]);
    let (r, _) = exchange(s.addr, upgrade(s.addr, "8", "").as_bytes());
    assert_eq!(r.status, 426, "{}", r.text());
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let (r, _) = exchange(s.addr, upgrade(s.addr, "13", "").as_bytes());
    assert_eq!(r.status, 101);
    assert_eq!(
        r.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(r.header("sec-websocket-extensions"), None);
    assert_eq!(r.header("sec-websocket-protocol"), None);
}

#[test]
fn websocket_origins_are_checked() {
    let s = Server::start(&["--allow-origin", "http://chat.example.com"]);
    let a = s.addr;
    let cases = [
        ("no Origin", String::new(), 101),
        (
            "Origin matching Host",
            format!("Origin: http://{a}\r\n"),
            101,
        ),
        (
            "allowed Origin",
            "Origin: http://chat.example.com\r\n".to_string(),
            101,
        ),
        (
            "foreign Origin",
            "Origin: http://evil.example.com\r\n".to_string(),
            403,
        ),
        (
            "allowed host on another port",
            "Origin: http://chat.example.com:8080\r\n".to_string(),
            403,
        ),
        (
            "same host, other port",
            format!("Origin: http://127.0.0.1:{}\r\n", a.port().wrapping_add(1)),
            403,
        ),
        (
            "another name for the host",
            format!("Origin: http://localhost:{}\r\n", a.port()),
            403,
        ),
    ];
    for (what, origin, status) in cases {
        let (r, _) = exchange(a, upgrade(a, "13", &origin).as_bytes());
        assert_eq!(r.status, status, "{what}: {}", r.text());
    }
    // Without --allow-origin, chat.example.com is foreign too.
    let s = Server::start(&[]);
    let (r, _) = exchange(
        s.addr,
        upgrade(s.addr, "13", "Origin: http://chat.example.com\r\n").as_bytes(),
    );
    assert_eq!(r.status, 403);
}

#[test]
fn a_get_with_a_body_does_not_desync_the_next_request() {
    let s = Server::start(&[]);
    let a = s.addr;
    // The body looks like a request; it must be skipped, not answered.
    let mut c = Http::open(a);
    let body = "GET /nope HTTP/1.1\r\n";
    c.send(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: {a}\r\nContent-Length: {}\r\n\r\n{body}\
             GET /api/rooms HTTP/1.1\r\nHost: {a}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.response(false).body, b"ok");
    let r = c.response(false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"rooms":[]}));

    // The body arriving later, in pieces.
    c.send(format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\nContent-Length: 28\r\n\r\n").as_bytes());
    assert_eq!(c.response(false).body, b"ok");
    c.send(b"GET /nope HTTP/1.1\r\n"); // 20 of the 28 body bytes
    std::thread::sleep(Duration::from_millis(50));
    c.send(format!("X: y\r\n\r\nGET /api/rooms HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes());
    let r = c.response(false);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"rooms":[]}));
    c.expect_open(Duration::from_millis(200));
}
