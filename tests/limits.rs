//! Connection caps: past `--max-connections` a line client is told
//! `server_full` and an HTTP client gets `503`, then both are closed; the
//! clients already in are untouched and a freed slot is usable again.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::testrng::Rng;
use common::*;

#[test]
fn past_max_connections_line_gets_server_full_and_http_gets_503() {
    let s = Server::start(&["--max-connections", "2", "--sniff-ms", "50"]);
    let mut a = s.line_client();
    let b = s.line_client();
    a.line(); // b joined

    let mut third = LineClient::raw(s.addr);
    let got = third.read_to_close();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("!!! server_full: "), "{got:?}");

    let mut http = TcpStream::connect(s.addr).expect("connect");
    http.set_read_timeout(Some(WAIT)).expect("timeout");
    http.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut resp = Vec::new();
    http.read_to_end(&mut resp).expect("read to close");
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 503 "), "{resp}");

    // Those inside are unaffected.
    a.send("/who");
    let who = a.line();
    assert!(who.starts_with("*** #lobby (2): "), "{who}");

    // A slot freed by a leaving client is usable again.
    b.close();
    assert!(a.line().ends_with("left (disconnected)"));
    std::thread::sleep(Duration::from_millis(100));
    let c = s.line_client();
    assert!(c.greeting[1].starts_with("*** you joined #lobby (2 here: "));
}

/// Random bytes, truncated WebSocket frames and resets on fresh connections
/// leave the server answering `/healthz`, and a chat going on meanwhile.
#[test]
fn garbage_truncated_frames_and_resets_leave_the_server_healthy() {
    use std::io::Write as _;
    let s = Server::start(&["--sniff-ms", "50"]);
    let mut a = s.line_client();
    let mut b = s.line_client();
    a.line(); // b joined
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    for round in 0..30 {
        let mut t = TcpStream::connect(s.addr).expect("connect");
        match round % 3 {
            0 => {
                let junk = rng.bytes(4096);
                let _ = t.write_all(&junk);
            }
            1 => {
                let _ = t.write_all(
                    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                );
                let frame = natter::proto::ws::encode_client_frame(
                    true,
                    0,
                    1,
                    b"{\"type\":\"rooms\"}",
                    [1, 2, 3, 4],
                );
                let cut = rng.below(frame.len());
                let _ = t.write_all(&frame[..cut]);
            }
            _ => {
                let _ = t.write_all(b"/nick half");
                let sock = socket2::SockRef::from(&t);
                let _ = sock.set_linger(Some(Duration::ZERO));
            }
        }
        drop(t);
        if round % 10 == 9 {
            a.send(&format!("still here {round}"));
            // Junk that is not HTTP makes line clients that join and leave
            // the lobby: skip their presence lines.
            let want = format!("#lobby <{}> still here {round}", a.nick);
            let got = b.line_where(|l| l.contains("still here"));
            assert_eq!(strip_clock(&got).as_deref(), Some(want.as_str()));
        }
    }
    let mut h = TcpStream::connect(s.addr).expect("connect");
    h.set_read_timeout(Some(WAIT)).expect("timeout");
    h.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    h.read_to_string(&mut resp).expect("read");
    assert!(
        resp.starts_with("HTTP/1.1 200 OK") && resp.ends_with("ok"),
        "{resp}"
    );
}
