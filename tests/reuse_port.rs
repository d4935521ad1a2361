//! `--reuse-port` (PROTOCOL-2 section 6): several natter processes listen
//! on one port, and the kernel spreads new connections across them; without
//! it, a taken port is still a clear startup error.
//!
//! These tests need a fixed port, unlike the rest: a free one is found by
//! binding port 0 and letting it go, and another is tried if something
//! takes it meanwhile.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use common::*;

/// Line clients opened on the shared port per round.
const CLIENTS: usize = 40;

/// Rounds of `CLIENTS` before concluding that one process got none.
const ROUNDS: usize = 5;

/// A port nothing listens on just now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("addr").port()
}

/// `natter` on 127.0.0.1:PORT and, after it, a port of its own (port 0),
/// so that each process can be asked for its figures by itself.
fn natter(port: u16, db: &TempDb, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--listen", "127.0.0.1:0", "--db", db.arg()])
        .args(args);
    cmd
}

/// The first process on a free port: the port and the server. Retries
/// with another port when something took the one found.
fn first_on_a_free_port(db: &TempDb, args: &[&str]) -> (u16, Server) {
    let mut last = None;
    for _ in 0..10 {
        let port = free_port();
        match Server::try_spawn(natter(port, db, args), 2) {
            Ok(s) => return (port, s),
            Err(e) => last = Some(e),
        }
    }
    panic!("no free port in 10 tries; the last failure: {last:?}");
}

/// The line clients this process holds, from `/api/stats` on its own port.
fn line_clients(s: &Server) -> u64 {
    let stats = http(s.listening[1], "GET", "/api/stats").json();
    stats["connections"]["line"]
        .as_u64()
        .unwrap_or_else(|| panic!("no connections.line in {stats}"))
}

/// Two processes with `--reuse-port` start on the same port and both serve
/// it: each is told apart by its default room, and between them they get
/// every connection, each some (the kernel picks a listener by a hash of
/// the connection's addresses and ports, so 40 connections all landing on
/// one of two is a chance of 2^-39; up to 5 rounds are tried anyway). Each
/// process's own count of line clients agrees with what the clients saw.
#[test]
fn two_processes_with_reuse_port_share_the_port_and_its_connections() {
    let (db_a, db_b) = (TempDb::new("reuse-a"), TempDb::new("reuse-b"));
    let (port, a) = first_on_a_free_port(&db_a, &["--reuse-port", "--default-room", "a"]);
    let b = Server::try_spawn(
        natter(port, &db_b, &["--reuse-port", "--default-room", "b"]),
        2,
    )
    .unwrap_or_else(|e| panic!("a second --reuse-port process on port {port}: {e:?}"));
    let shared: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    assert_eq!((a.addr, b.addr), (shared, shared));
    assert_ne!(a.listening[1], b.listening[1], "their own ports");

    // Every client is kept open, so each process's count only grows.
    let mut clients = Vec::new();
    let (mut on_a, mut on_b) = (0u64, 0u64);
    for round in 1..=ROUNDS {
        // All connect first, so the sniffing delays run side by side.
        let batch: Vec<LineClient> = (0..CLIENTS).map(|_| LineClient::raw(shared)).collect();
        for mut c in batch {
            nick_in_welcome(&c.line());
            match c.line() {
                j if j.starts_with("*** you joined #a ") => on_a += 1,
                j if j.starts_with("*** you joined #b ") => on_b += 1,
                j => panic!("neither process's room: {j:?}"),
            }
            clients.push(c);
        }
        assert_eq!(
            (line_clients(&a), line_clients(&b)),
            (on_a, on_b),
            "round {round}: the processes' own counts"
        );
        if on_a > 0 && on_b > 0 {
            return;
        }
    }
    panic!(
        "{} connections on port {port}: {on_a} to one process, {on_b} to the other",
        clients.len()
    );
}

/// Without `--reuse-port` a second process on a taken port does not
/// start: exit code 1 and "cannot listen on ADDR". `--reuse-port` does not
/// get a process in beside one without it, nor one without it beside a
/// `--reuse-port` group (the kernel wants it on every socket).
#[test]
fn without_reuse_port_on_both_a_second_process_cannot_start() {
    let (db_a, db_b) = (TempDb::new("plain-a"), TempDb::new("plain-b"));
    let (plain_port, _plain) = first_on_a_free_port(&db_a, &[]);
    let (shared_port, _shared) = first_on_a_free_port(&db_b, &["--reuse-port"]);
    let db = TempDb::new("second");
    for (port, args) in [
        (plain_port, &[][..]),
        (plain_port, &["--reuse-port"]),
        (shared_port, &[]),
    ] {
        let Err(e) = Server::try_spawn(natter(port, &db, args), 2) else {
            panic!("a second process on port {port} with {args:?} started");
        };
        assert_eq!(e.code, Some(1), "{args:?}: {e:?}");
        assert!(e.line.is_empty(), "{args:?}: {e:?}");
        let said = format!("cannot listen on 127.0.0.1:{port}: ");
        assert!(e.stderr.contains(&said), "{args:?}: {e:?}");
    }
}
