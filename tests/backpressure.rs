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

/// A reader that keeps reading, but far slower than its room talks, is
/// dropped as a slow consumer (it does not catch up while the others do);
/// and since it is still reading, it gets the rest of the line it was in
/// and its goodbye whole, however long the kernel takes to hand it what
/// was already in flight: never a line cut off in the middle.
#[test]
fn a_slow_reader_that_is_dropped_gets_whole_lines_and_its_goodbye() {
    use std::io::{BufRead, BufReader};
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
    let slow = {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.set_recv_buffer_size(16 * 1024).expect("rcvbuf");
        sock.connect(&s.addr.into()).expect("connect");
        std::net::TcpStream::from(sock)
    };
    let mut w = slow.try_clone().expect("clone");
    w.write_all(b"/nick slow\n").expect("nick");
    // Two readers that keep up, so the slow one is a minority: nobody
    // waits for it.
    let fast: Vec<_> = (0..2)
        .map(|_| {
            let mut c = s.line_client();
            std::thread::spawn(move || {
                let mut n = 0;
                while let Some(l) = c.try_line(Duration::from_secs(10)) {
                    if l.contains("slow left") {
                        return (n, true);
                    }
                    n += 1;
                }
                (n, false)
            })
        })
        .collect();
    let mut flooder = s.line_client();
    let text = "y".repeat(3000);
    let flood = std::thread::spawn(move || {
        let mut all = String::new();
        for i in 0..4000 {
            all.push_str(&format!("{i} {text}\n"));
        }
        flooder.send_bytes(all.as_bytes());
        flooder
    });
    // The slow reader: about 400 KB/s.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut r = BufReader::with_capacity(4096, slow);
    let mut last = String::new();
    let mut lines = 0;
    let started = Instant::now();
    loop {
        let mut buf = Vec::new();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("after {lines} lines: {e}"),
        }
        assert!(
            buf.ends_with(b"\n"),
            "a line cut off after {lines} lines: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(80)])
        );
        lines += 1;
        last = String::from_utf8(buf).expect("UTF-8");
        if lines % 4 == 0 {
            std::thread::sleep(Duration::from_millis(30));
        }
        assert!(started.elapsed() < Duration::from_secs(60), "still reading");
    }
    assert!(
        last.starts_with("!!! slow_consumer: "),
        "the last of {lines} lines: {last:.80}"
    );
    for f in fast {
        let (n, saw_leave) = f.join().expect("fast reader");
        assert!(
            saw_leave,
            "a fast reader did not see slow leave ({n} lines)"
        );
    }
    drop(flood.join());
}
