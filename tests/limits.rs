//! Connection caps: past `--max-connections` a line client is told
//! `server_full` and an HTTP client gets `503`, then both are closed; the
//! clients already in are untouched and a freed slot is usable again.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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
