//! SIGTERM and SIGINT: line clients are told, WebSockets closed with 1001,
//! the history committed, and the process exits 0 within the 5 s bound.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn signal(s: &Server, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &s.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits for the server to exit; its status code.
fn wait_exit(s: &mut Server, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(code) = s.try_exit_code() {
            return Some(code);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_says_goodbye_in_every_protocol_and_exits_zero() {
    let db = TempDb::new("shutdown");
    let mut s = Server::start(&["--db", db.arg()]);
    let mut line = s.line_client();
    let mut ws = WsClient::connect(s.addr, "nick=webby&room=lobby");
    ws.recv_type("joined");
    line.line(); // webby joined
    ws.send(serde_json::json!({"type":"say","room":"lobby","text":"last words"}));
    ws.recv_type("message");
    assert_eq!(line.event(), "#lobby <webby> last words");
    // A silent connection still being sniffed, and an idle HTTP keep-alive one.
    let mut silent = TcpStream::connect(s.addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");

    signal(&s, "-TERM");
    assert_eq!(line.line(), "*** server shutting down");
    assert_eq!(line.try_line(Duration::from_secs(6)), None, "closed after");
    ws.ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    let close = loop {
        match ws.ws.read() {
            Ok(tungstenite::Message::Close(frame)) => break frame,
            Ok(_) => continue,
            Err(e) => panic!("no close frame: {e}"),
        }
    };
    let close = close.expect("a close code");
    assert_eq!(u16::from(close.code), 1001);
    let mut buf = [0u8; 64];
    assert!(matches!(silent.read(&mut buf), Ok(0) | Err(_)));
    assert_eq!(wait_exit(&mut s, Duration::from_secs(6)), Some(0));

    // The history was committed: a restart on the same file has it.
    let s2 = Server::start(&["--db", db.arg()]);
    let c = s2.line_client();
    assert!(
        c.greeting
            .iter()
            .any(|l| l.ends_with("#lobby <webby> last words")),
        "{:?}",
        c.greeting
    );
}

#[test]
fn sigint_with_a_reader_that_never_reads_still_exits_within_the_bound() {
    let mut s = Server::start(&["--sniff-ms", "50"]);
    // A client that never reads and has a full socket: its goodbye can
    // never be flushed, and the server must not wait for it forever.
    let stuck = LineClient::raw(s.addr);
    let mut talker = s.line_client();
    for i in 0..2000 {
        talker.send_bytes(format!("/who {i}\n").as_bytes());
    }
    let started = Instant::now();
    signal(&s, "-INT");
    let code = wait_exit(&mut s, Duration::from_secs(10));
    assert_eq!(code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "took {:?}",
        started.elapsed()
    );
    drop(stuck);
}
