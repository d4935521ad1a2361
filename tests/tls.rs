//! TLS on the same port as plain TCP (PROTOCOL-2.md section 5), with real
//! independent clients: `openssl s_client` as a line client beside the real
//! `nc`, `curl --cacert`, tungstenite over a rustls client, and raw sockets
//! for what no polite client sends (a stalled handshake, garbage after
//! `0x16`). Certificates are made with the `openssl` command, not with the
//! code under test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect_from, host_ip, temp_path, LineClient, Server, WAIT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};

/// A certificate and key made by `openssl req` in a fresh directory, for
/// `localhost` and 127.0.0.1, with the given serial number.
struct Cert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Cert {
    fn new(tag: &str, serial: u32) -> Cert {
        let dir = temp_path(&format!("tls-{tag}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let c = Cert {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        c.make(serial);
        c
    }

    /// (Re)writes the pair with a fresh key and `serial`.
    fn make(&self, serial: u32) {
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // A server's certificate, not a CA's (which webpki refuses).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-set_serial", &serial.to_string()])
            .arg("-keyout")
            .arg(&self.key)
            .arg("-out")
            .arg(&self.cert)
            .output()
            .expect("run openssl (package openssl; make deps installs it)");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }

    fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(&self.cert).expect("read cert.pem")
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One figure of `GET /metrics` (a name with its labels, as printed).
fn metric(server: &Server, name: &str) -> u64 {
    let metrics = common::http(server.addr, "GET", "/metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn start(args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

/// Starts natter with stderr (its log) in `log`.
fn start_logged(args: &[String], log: &Path) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
        .args(args);
    cmd.env("RUST_LOG", "natter=info");
    Server::spawn_logging(cmd, 1, log)
}

/// A rustls client configuration that trusts exactly `root`.
fn client_config(root: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).expect("add root");
    let config = rustls::ClientConfig::builder_with_provider(natter::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TLS connection to `addr` for `localhost`, the handshake done.
fn tls_connect(addr: SocketAddr, root: CertificateDer<'static>) -> Tls {
    tls_on(TcpStream::connect(addr).expect("connect"), root)
}

fn tls_on(tcp: TcpStream, root: CertificateDer<'static>) -> Tls {
    tcp.set_read_timeout(Some(WAIT)).expect("timeout");
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(client_config(root), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("TLS handshake with natter");
    }
    tls
}

/// A line client over TLS (rustls): greeting read, like `LineClient`.
struct TlsLine {
    r: BufReader<Tls>,
    nick: String,
}

impl TlsLine {
    fn connect(addr: SocketAddr, root: CertificateDer<'static>) -> TlsLine {
        TlsLine::greeted(tls_connect(addr, root))
    }

    fn greeted(tls: Tls) -> TlsLine {
        let mut c = TlsLine {
            r: BufReader::new(tls),
            nick: String::new(),
        };
        let welcome = c.line();
        assert!(welcome.starts_with("*** welcome to natter"), "{welcome}");
        c.nick = common::nick_in_welcome(&welcome);
        let joined = c.line();
        assert!(joined.starts_with("*** you joined #lobby"), "{joined}");
        c
    }

    fn send(&mut self, text: &str) {
        let s = self.r.get_mut();
        s.write_all(format!("{text}\n").as_bytes()).expect("send");
        s.flush().expect("flush");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(n) if n > 0 => l.trim_end_matches('\n').to_string(),
            other => panic!("no line over TLS: {other:?} (so far {l:?})"),
        }
    }

    /// Lines until one contains `needle`.
    fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            let l = self.line();
            if l.contains(needle) {
                return l;
            }
        }
        panic!("no line with {needle:?}");
    }

    fn peer_cert(&self) -> CertificateDer<'static> {
        self.r.get_ref().conn.peer_certificates().expect("certs")[0].clone()
    }
}

/// A child process whose stdout lines arrive on a channel (so that a test
/// can wait for one with a timeout); killed when dropped.
struct Piped {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Piped {
    fn spawn(mut cmd: Command) -> Piped {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Piped { child, lines }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .expect("write");
        stdin.flush().expect("flush");
    }

    fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT * 2;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; saw {seen:?}");
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s_client(addr: SocketAddr, cert: &Cert, extra: &[&str]) -> Command {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
    ])
    .args(["-verify_return_error", "-CAfile"])
    .arg(&cert.cert)
    .args(extra);
    cmd
}

#[test]
fn openssl_s_client_chats_with_netcat_in_one_room() {
    let cert = Cert::new("chat", 1);
    let server = start(&cert.args());
    let mut tls = Piped::spawn(s_client(server.addr, &cert, &["-quiet"]));
    tls.until("*** welcome to natter");
    tls.until("*** you joined #lobby");
    tls.send("/nick secure");
    tls.until("*** you are now known as secure");
    let mut nc = Piped::spawn({
        let mut c = Command::new("nc");
        c.args(["127.0.0.1", &server.addr.port().to_string()]);
        c
    });
    nc.until("*** welcome to natter");
    nc.send("/nick plain");
    nc.until("*** you are now known as plain");
    tls.until("is now known as plain");
    tls.send("hello from openssl");
    let got = nc.until("hello from openssl");
    assert!(got.ends_with("#lobby <secure> hello from openssl"), "{got}");
    nc.send("hello from netcat");
    let got = tls.until("hello from netcat");
    assert!(got.ends_with("#lobby <plain> hello from netcat"), "{got}");
}

#[test]
fn both_tls_versions_and_alpn_http11_are_offered() {
    let cert = Cert::new("versions", 2);
    let server = start(&cert.args());
    for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(server.addr, &cert, &[flag, "-alpn", "http/1.1"])
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("New, {name}, Cipher is")),
            "{flag}: {text}"
        );
        assert!(text.contains("ALPN protocol: http/1.1"), "{flag}: {text}");
        assert!(
            text.contains("Verify return code: 0 (ok)"),
            "{flag}: {text}"
        );
    }
    // A client that offers only another protocol is refused (ALPN is
    // checked, not ignored).
    let out = s_client(server.addr, &cert, &["-alpn", "h2"])
        .stdin(Stdio::null())
        .output()
        .expect("openssl s_client");
    assert!(!out.status.success(), "h2 only was accepted");
}

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .args(args)
        .output()
        .expect("run curl (package curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (body.to_string(), code.to_string())
}

#[test]
fn curl_reads_healthz_and_the_api_over_https_and_http_on_one_port() {
    let cert = Cert::new("curl", 3);
    let server = start(&cert.args());
    let port = server.addr.port();
    let ca = cert.cert.display().to_string();
    let https = format!("https://localhost:{port}");
    let (body, code) = curl(&["--cacert", &ca, &format!("{https}/healthz")]);
    assert_eq!((body.as_str(), code.as_str()), ("ok", "200 1.1"));
    let (body, code) = curl(&["--cacert", &ca, &format!("{https}/api/rooms")]);
    assert_eq!(code, "200 1.1");
    let rooms: Value = serde_json::from_str(&body).expect("JSON");
    assert!(rooms.is_array() || rooms.is_object(), "{rooms}");
    // The page, with its policy, over https too.
    let (body, code) = curl(&["--cacert", &ca, &format!("{https}/")]);
    assert_eq!(code, "200 1.1");
    assert!(body.contains("<html"), "{body}");
    // Keep-alive: two requests on one TLS connection.
    let (body, _) = curl(&[
        "--cacert",
        &ca,
        &format!("{https}/healthz"),
        &format!("{https}/healthz"),
    ]);
    assert!(body.starts_with("ok"), "{body}");
    // And plain HTTP on the same port.
    let (body, code) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert_eq!((body.as_str(), code.as_str()), ("ok", "200 1.1"));
    // The figures count the handshakes.
    let done = metric(&server, "natter_tls_handshakes_done_total");
    assert!(done >= 4, "{done}");
}

/// A WebSocket over rustls, with tungstenite (neither is natter's code).
fn wss(
    addr: SocketAddr,
    root: CertificateDer<'static>,
    query: &str,
) -> tungstenite::WebSocket<Tls> {
    let tls = tls_connect(addr, root);
    let url = format!("wss://localhost:{}/ws?{query}", addr.port());
    let (ws, resp) = tungstenite::client(url.as_str(), tls).expect("WebSocket over TLS");
    assert_eq!(resp.status(), 101);
    ws
}

fn recv(ws: &mut tungstenite::WebSocket<Tls>, kind: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match ws.read().expect("read") {
            tungstenite::Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                if v["type"] == kind {
                    return v;
                }
            }
            _ => continue,
        }
    }
    panic!("no {kind}");
}

fn join(ws: &mut tungstenite::WebSocket<Tls>, room: &str) {
    ws.send(tungstenite::Message::text(
        json!({"type": "join", "room": room}).to_string(),
    ))
    .expect("send");
    let joined = recv(ws, "joined");
    assert_eq!(joined["room"], room);
}

#[test]
fn a_websocket_over_tls_chats_with_a_plain_line_client() {
    let cert = Cert::new("wss", 4);
    let server = start(&cert.args());
    let mut ws = wss(server.addr, cert.der(), "nick=bot");
    let welcome = recv(&mut ws, "welcome");
    assert_eq!(welcome["nick"], "bot");
    join(&mut ws, "lobby");
    let mut plain = server.line_client();
    plain.send("/nick human");
    ws.send(tungstenite::Message::text(
        json!({"type": "say", "room": "lobby", "text": "beep over wss"}).to_string(),
    ))
    .expect("send");
    let got = plain.line_where(|l| l.contains("beep over wss"));
    assert!(got.ends_with("#lobby <bot> beep over wss"), "{got}");
    plain.send("boop over tcp");
    loop {
        let m = recv(&mut ws, "message");
        if m["text"] == "boop over tcp" {
            assert_eq!(m["from"], "human");
            break;
        }
    }
}

#[test]
fn passwords_are_accepted_over_tls_from_any_address_and_refused_in_clear_text() {
    let cert = Cert::new("passwords", 5);
    let server = start(&cert.args());
    // The host's own address is not loopback: a password in clear text
    // from it is refused...
    let mut plain = LineClient::on(connect_from(host_ip(), server.addr));
    plain.send("/register hunter2-hunter2");
    let refusal = plain.line_where(|l| l.starts_with("!!!"));
    assert!(refusal.starts_with("!!! insecure"), "{refusal}");
    // ...and over TLS from the same address it is taken.
    let mut tls = TlsLine::greeted(tls_on(connect_from(host_ip(), server.addr), cert.der()));
    tls.send("/nick keeper");
    tls.until("you are now known as keeper");
    tls.send("/register hunter2-hunter2");
    let ok = tls.until("registered");
    assert_eq!(
        ok,
        "*** account keeper registered; you are logged in as keeper"
    );
}

#[test]
fn tls_only_tells_plain_clients_and_redirects_plain_http() {
    let cert = Cert::new("only", 6);
    let mut args = cert.args();
    args.push("--tls-only".into());
    let server = start(&args);
    let port = server.addr.port();
    // A plain line client: told, then closed.
    let mut plain = LineClient::raw(server.addr);
    let lines = plain.read_to_close();
    assert_eq!(
        lines,
        vec!["!!! insecure: this server speaks TLS only".to_string()]
    );
    // Plain HTTP: a 308 to the same place over https.
    let resp = common::http(server.addr, "GET", "/api/rooms?x=1");
    assert_eq!(resp.status, 308);
    assert_eq!(
        resp.header("location"),
        Some(format!("https://127.0.0.1:{port}/api/rooms?x=1").as_str())
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("http://localhost:{port}/"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("308 https://localhost:{port}/")
    );
    // Following it with the CA works.
    let (body, code) = curl(&[
        "-L",
        "--cacert",
        &cert.cert.display().to_string(),
        &format!("http://localhost:{port}/healthz"),
    ]);
    assert_eq!((body.as_str(), code.as_str()), ("ok", "200 1.1"));
    // TLS line clients are served.
    let mut tls = TlsLine::connect(server.addr, cert.der());
    tls.send("/nick only");
    tls.until("you are now known as only");
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones() {
    let cert = Cert::new("reload", 100);
    let log = temp_path("tls-reload-log");
    let server = start_logged(&cert.args(), &log);
    let first = cert.der();
    let mut old = TlsLine::connect(server.addr, first.clone());
    assert_eq!(old.peer_cert(), first);
    old.send("/nick old");
    old.until("you are now known as old");

    cert.make(200);
    let second = cert.der();
    assert_ne!(first, second);
    hup(&server);
    let mut new = wait_for_cert(server.addr, &second);
    new.send("/nick new");
    new.until("you are now known as new");
    // The connection opened before the reload still works both ways.
    old.send("still here");
    new.until("<old> still here");
    new.send("welcome back");
    old.until("<new> welcome back");

    // A corrupt file: logged, and the pair in use stays.
    std::fs::write(
        &cert.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    )
    .expect("write");
    hup(&server);
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("TLS certificate not reloaded, the old one stays") {
            assert!(text.contains("cert.pem"), "the log names the file: {text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log line about the bad file: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = TlsLine::connect(server.addr, second.clone());
    assert_eq!(again.peer_cert(), second);
    // A key that does not match the certificate is refused the same way.
    cert.make(300);
    std::fs::write(&cert.key, key_of_another_cert()).expect("write key");
    hup(&server);
    std::thread::sleep(Duration::from_millis(300));
    let still = TlsLine::connect(server.addr, second.clone());
    assert_eq!(still.peer_cert(), second);
    old.send("after all that");
    new.until("<old> after all that");
    let _ = std::fs::remove_file(&log);
}

fn key_of_another_cert() -> Vec<u8> {
    let other = Cert::new("other-key", 9);
    std::fs::read(&other.key).expect("key")
}

fn hup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(ok.success());
}

/// Connects until the server presents `want` (the reload is asynchronous
/// to us: the signal arrives on the loop's next turn).
fn wait_for_cert(addr: SocketAddr, want: &CertificateDer<'static>) -> TlsLine {
    let deadline = Instant::now() + WAIT;
    loop {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let conn =
            rustls::ClientConnection::new(client_config(want.clone()), name).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut ok = true;
        while tls.conn.is_handshaking() {
            if tls.conn.complete_io(&mut tls.sock).is_err() {
                ok = false; // still the old certificate: not trusted here
                break;
            }
        }
        if ok {
            return TlsLine::greeted(tls);
        }
        assert!(Instant::now() < deadline, "the new certificate never came");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_without_tls_is_logged_not_fatal() {
    let mut server = Server::start(&[]);
    hup(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_alive(), "SIGHUP stopped the server");
    let mut c = server.line_client();
    c.send("/nick alive");
    assert_eq!(c.answer(), "*** you are now known as alive");
}

#[test]
fn a_stalled_handshake_is_closed_after_the_header_timeout_and_slows_nobody() {
    let cert = Cert::new("stall", 7);
    let mut args = cert.args();
    args.extend(["--header-timeout".to_string(), "1".to_string()]);
    let server = start(&args);
    // The first bytes of a ClientHello, then nothing.
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01")
        .expect("write");
    let opened = Instant::now();
    // Meanwhile others are served at once, over TLS and in clear.
    let mut a = TlsLine::connect(server.addr, cert.der());
    let mut b = server.line_client();
    a.send("/nick a");
    a.until("you are now known as a");
    b.send("during the stall");
    let got = a.until("during the stall");
    assert!(got.ends_with("> during the stall"), "{got}");
    // The stalled one is closed once the timeout is past, not before.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = stalled.read(&mut buf);
    let waited = opened.elapsed();
    assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "not closed: {waited:?}");
    assert_eq!(metric(&server, "natter_tls_handshake_failures_total"), 1);
    // A TLS client that connects and says nothing at all is a line client
    // (silence means netcat), not a stalled handshake.
}

#[test]
fn garbage_after_a_handshake_byte_is_closed_cleanly() {
    let cert = Cert::new("garbage", 8);
    let server = start(&cert.args());
    for junk in [
        &b"\x16 this is not TLS at all\r\n\r\n"[..],
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
        b"\x16\x03\x03\xff\xff",
        b"\x16\x16\x16\x16\x16\x16\x16\x16\x16\x16\x16\x16",
    ] {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).expect("timeout");
        s.write_all(junk).expect("write");
        let mut got = Vec::new();
        let res = s.read_to_end(&mut got);
        // Closed: at most an alert record (type 21) before the end.
        assert!(res.is_ok() || got.is_empty(), "{junk:?}: {res:?}");
        assert!(
            got.is_empty() || got[0] == 0x15,
            "{junk:?}: answered {got:?}"
        );
    }
    // Nothing else suffered.
    let mut c = TlsLine::connect(server.addr, cert.der());
    c.send("/nick fine");
    c.until("you are now known as fine");
    let failures = metric(&server, "natter_tls_handshake_failures_total");
    assert!(failures >= 3, "{failures}");
    // Every handshake begun is done or failed (none is under way now).
    let begun = metric(&server, "natter_tls_handshakes_total");
    let done = metric(&server, "natter_tls_handshakes_done_total");
    assert_eq!(
        begun,
        done + failures,
        "begun {begun}, done {done}, failed {failures}"
    );
}

#[test]
fn output_larger_than_the_session_buffer_arrives_whole_and_in_order() {
    let cert = Cert::new("bulk", 10);
    let mut args = cert.args();
    args.extend(["--rate", "1000000", "--burst", "1000000"].map(String::from));
    let server = start(&args);
    let mut reader = TlsLine::connect(server.addr, cert.der());
    reader.send("/nick reader");
    reader.until("you are now known as reader");
    // 24,000 lines of about 300 bytes: 7 MB, more than the server's
    // socket buffer and the session's 64 KiB together, written while the
    // reader reads nothing (its sender's input pauses meanwhile).
    const N: usize = 24_000;
    let mut sender = server.line_client();
    let pad = "x".repeat(280);
    let mut batch = String::new();
    for i in 0..N {
        batch.push_str(&format!("m{i:05} {pad}\n"));
    }
    sender.send_bytes(batch.as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..N {
        // (Not just "> m": the sender's join, "--> mellow-panda-73
        // joined", has that too.)
        let l = reader.until(&format!(" {pad}"));
        assert!(l.ends_with(&format!("> m{i:05} {pad}")), "{i}: {l}");
    }
}

#[test]
fn self_signed_names_localhost_and_the_log_gives_its_fingerprint() {
    let log = temp_path("tls-self-log");
    let server = start_logged(&["--tls-self-signed".to_string()], &log);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName -fingerprint -sha256",
            server.addr
        ))
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    let fingerprint = text
        .lines()
        .find_map(|l| {
            l.split_once("Fingerprint=")
                .map(|(_, f)| f.trim().to_string())
        })
        .expect("fingerprint");
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(
        logged.contains(&format!("SHA-256 {fingerprint}")),
        "{fingerprint} not in the log: {logged}"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn image_urls_for_line_clients_are_https_when_tls_is_on() {
    let cert = Cert::new("images", 11);
    let server = start(&cert.args());
    let mut line = server.line_client();
    let mut ws = wss(server.addr, cert.der(), "nick=snap");
    recv(&mut ws, "welcome");
    join(&mut ws, "lobby");
    // A 1x1 PNG's signature and header are all the server checks.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(64, 0);
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(&png);
    ws.send(tungstenite::Message::text(
        json!({"type": "image", "room": "lobby", "data": data}).to_string(),
    ))
    .expect("send");
    let got = line.line_where(|l| l.contains("[image]"));
    let want = format!("[image] https://{}/media/", server.addr);
    assert!(got.contains(&want), "{got}");
}

#[test]
fn tls_options_that_cannot_work_stop_the_start_with_a_reason() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_natter"))
            .args(["--listen", "127.0.0.1:0", "--db", ":memory:"])
            .args(args)
            .output()
            .expect("run natter");
        assert!(!out.status.success(), "{args:?} started");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--tls-only"]);
    assert!(e.contains("--tls-only needs"), "{e}");
    let e = run(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert!(e.contains("/nonexistent/cert.pem"), "{e}");
    let e = run(&["--tls-cert", "/nonexistent/cert.pem"]);
    assert!(e.contains("--tls-key"), "{e}");
}

/// docs/DEPLOY.md's Let's Encrypt path without certbot: the deploy hook
/// is run as certbot runs it (`RENEWED_LINEAGE` pointing at the renewed
/// pair) and hands the new certificate to a running server.
#[test]
fn the_certbot_deploy_hook_hands_a_renewed_certificate_to_a_running_server() {
    let served = Cert::new("hook-served", 400);
    // Where natter reads its pair, under the names the hook writes.
    let dir = served.dir.join("natter-tls");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (cert, key) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    std::fs::copy(&served.cert, &cert).expect("copy");
    std::fs::copy(&served.key, &key).expect("copy");
    let args = vec![
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    let server = start(&args);
    let old = TlsLine::connect(server.addr, served.der());
    // certbot's renewed lineage.
    let renewed = Cert::new("hook-renewed", 500);
    let live = renewed.dir.join("live");
    std::fs::create_dir_all(&live).expect("mkdir");
    std::fs::copy(&renewed.cert, live.join("fullchain.pem")).expect("copy");
    std::fs::copy(&renewed.key, live.join("privkey.pem")).expect("copy");
    let group = Command::new("id").arg("-gn").output().expect("id -gn");
    let group = String::from_utf8_lossy(&group.stdout).trim().to_string();
    let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/certbot-deploy-hook.sh");
    let out = Command::new("sh")
        .arg(hook)
        .env("RENEWED_LINEAGE", &live)
        .env("NATTER_TLS_DIR", &dir)
        .env("NATTER_TLS_GROUP", &group)
        .env("NATTER_RELOAD", format!("kill -HUP {}", server.pid()))
        .output()
        .expect("run the hook");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the key is readable by the group only");
    let new = wait_for_cert(server.addr, &renewed.der());
    assert_eq!(new.peer_cert(), renewed.der());
    // The connection opened before the renewal is still served.
    let mut old = old;
    old.send("/nick before-renewal");
    old.until("you are now known as before-renewal");
    // Without RENEWED_LINEAGE the hook refuses to do anything.
    let out = Command::new("sh")
        .arg(hook)
        .env_remove("RENEWED_LINEAGE")
        .env("NATTER_TLS_DIR", &dir)
        .output()
        .expect("run the hook");
    assert!(!out.status.success());
}

/// A storm of ClientHellos in one wake-up (the server stopped while 64
/// clients connect and send theirs, then continued): a turn spends at most
/// 2 ms starting sessions (a few at 0.2-1 ms each), the rest wait for the
/// next turns, and every handshake completes.
#[test]
fn a_storm_of_client_hellos_is_taken_a_few_per_turn_and_all_complete() {
    const N: usize = 64;
    let cert = Cert::new("storm", 12);
    let server = start(&cert.args());
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &server.pid().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    };
    signal("-STOP");
    let mut clients = Vec::new();
    for _ in 0..N {
        let tcp = TcpStream::connect(server.addr).expect("connect (the kernel queues it)");
        tcp.set_read_timeout(Some(WAIT * 2)).expect("timeout");
        let name = ServerName::try_from("localhost").expect("name");
        let mut conn =
            rustls::ClientConnection::new(client_config(cert.der()), name).expect("client");
        let mut tcp_w = &tcp;
        while conn.wants_write() {
            conn.write_tls(&mut tcp_w).expect("send the ClientHello");
        }
        clients.push(rustls::StreamOwned::new(conn, tcp));
    }
    signal("-CONT");
    for (i, tls) in clients.iter_mut().enumerate() {
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .unwrap_or_else(|e| panic!("handshake {i}: {e}"));
        }
    }
    assert_eq!(
        metric(&server, "natter_tls_handshakes_done_total"),
        N as u64
    );
    let deferred = metric(&server, "natter_tls_handshakes_deferred_total");
    assert!(deferred >= (N / 2) as u64, "{deferred}");
    // And they are served: each becomes a line client.
    let mut first = TlsLine::greeted(clients.pop().expect("a client"));
    first.send("/nick stormy");
    first.until("you are now known as stormy");
}

/// A TLS client that sends its ClientHello only after the sniff time: it
/// was greeted as a line client in clear text, which its TLS cannot read.
/// Its ClientHello is not chat (nothing reaches the room but its join and
/// leave); it is closed, and counted.
#[test]
fn a_client_hello_after_the_line_greeting_closes_the_connection_and_says_nothing() {
    let cert = Cert::new("late", 13);
    let server = start(&cert.args());
    let mut watcher = server.line_client();
    let late = LineClient::connect(server.addr); // greeted: silent for 300 ms
    let name = ServerName::try_from("localhost").expect("name");
    let mut conn = rustls::ClientConnection::new(client_config(cert.der()), name).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("ClientHello");
    }
    assert!(
        hello.contains(&b'\n') || hello.len() > 100,
        "a real ClientHello"
    );
    let mut raw = late.stream().try_clone().expect("clone");
    raw.write_all(&hello).expect("send the late ClientHello");
    let mut rest = Vec::new();
    raw.set_read_timeout(Some(WAIT)).expect("timeout");
    let _ = raw.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "answered {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(watcher.event(), format!("#lobby --> {} joined", late.nick));
    assert_eq!(
        watcher.event(),
        format!("#lobby <-- {} left (disconnected)", late.nick)
    );
    let late = metric(
        &server,
        "natter_dropped_connections_total{reason=\"late_tls\"}",
    );
    assert_eq!(late, 1);
}
