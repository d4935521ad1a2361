//! A client that stops reading must not hold anyone back: its output queue
//! grows to `--max-outbound`, then it is dropped as a slow consumer and its
//! rooms see it leave, while readers that keep up get every message.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn a_reader_that_stalls_is_dropped_and_the_room_keeps_going() {
    let s = Server::start(&[
        "--max-outbound",
        "65536",
        "--sniff-ms",
        "50",
        "--rate",
        "100000",
        "--burst",
        "100000",
    ]);
    // The staller never reads.
    let staller = stalling_socket(s.addr);
    let mut watcher = s.line_client();
    let mut flooder = s.line_client();
    watcher.line_where(|l| l.ends_with("joined"));
    let mut staller_w = staller.try_clone().expect("clone");
    staller_w.write_all(b"/nick staller\n").expect("nick");
    watcher.line_where(|l| l.contains("is now known as staller"));

    // 4 MB of chat: far more than 64 KiB plus every kernel buffer on the way.
    let text = "x".repeat(900);
    let mut sent = 0;
    let started = Instant::now();
    let mut dropped = false;
    let mut got = 0;
    while sent < 4000 {
        for _ in 0..50 {
            flooder.send(&format!("{sent} {text}"));
            sent += 1;
        }
        // The watcher keeps up and must see every message, in order.
        while got < sent {
            let l = watcher.event();
            if l == "#lobby <-- staller left (slow consumer)" {
                dropped = true;
                continue;
            }
            assert!(
                l.starts_with(&format!("#lobby <{}> {got} ", flooder.nick)),
                "{l:.60}"
            );
            got += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the room stalled"
        );
    }
    if !dropped {
        let l = watcher.event();
        assert_eq!(l, "#lobby <-- staller left (slow consumer)");
    }
    // The staller's connection is closed by the server: reading what the
    // kernel still holds ends at EOF (or a reset), never hangs.
    staller
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match std::io::Read::read(&mut &staller, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    flooder.send("/who");
    let who = flooder.line_where(|l| l.starts_with("*** #lobby ("));
    assert!(!who.contains("staller"), "{who}");
}
