//! The command line and the sockets the server sets up: listeners, options,
//! startup errors, and the TCP options every accepted socket gets.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// The binary, keeping no history (no `natter.db` left in the checkout).
fn natter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["--db", ":memory:"]);
    cmd
}

#[test]
fn help_lists_every_option() {
    let out = natter().arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--default-room",
        "--history",
        "--max-line",
        "--max-message",
        "--sniff-ms",
        "--line-idle-timeout",
        "--max-per-ip",
        "--max-outbound",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn listens_on_every_listen_address() {
    let s = Server::start_listening(&["127.0.0.1:0", "[::1]:0"], &[]);
    // The harness read the first address; find the second from the server's
    // own sockets.
    let mut a = s.line_client();
    let ss = Command::new("ss")
        .args(["-Htlnp"])
        .output()
        .expect("ss (iproute2) is needed; `make test` installs it");
    let listing = String::from_utf8_lossy(&ss.stdout);
    let pid = format!("pid={},", s.pid());
    let v6 = listing
        .lines()
        .filter(|l| l.contains(&pid))
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("[::1]:")))
        .unwrap_or_else(|| panic!("no [::1] listener for {pid} in\n{listing}"))
        .to_string();
    let mut b = LineClient::connect(v6.parse().expect("v6 address"));
    assert_eq!(a.event(), format!("#lobby --> {} joined", b.nick));
    b.send("over ipv6");
    assert_eq!(a.event(), format!("#lobby <{}> over ipv6", b.nick));
}

#[test]
fn a_taken_port_is_a_clear_startup_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = holder.local_addr().expect("addr").to_string();
    let out = natter()
        .args(["--listen", &addr])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}")),
        "stderr: {err}"
    );
}

#[test]
fn bad_options_are_refused_before_serving() {
    for args in [
        &["--default-room", "no spaces"][..],
        &["--listen", "not-an-address"],
        &["--history", "-1"],
    ] {
        let out = natter()
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            !String::from_utf8_lossy(&out.stderr).trim().is_empty(),
            "{args:?}: no message"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("listening"),
            "{args:?}: it started serving"
        );
    }
}

/// Every accepted socket has TCP keepalive (60 s idle) so that a netcat user
/// whose network died is noticed; `ss` shows the kernel's keepalive timer.
#[test]
fn accepted_sockets_have_keepalive() {
    let s = Server::start(&[]);
    let c = s.line_client();
    let local = c.stream().local_addr().expect("addr");
    let filter = format!(
        "( sport = :{} and dport = :{} )",
        s.addr.port(),
        local.port()
    );
    let out = Command::new("ss")
        .args(["-Htno", "state", "established", &filter])
        .output()
        .expect("ss (iproute2) is needed; `make test` installs it");
    let text = String::from_utf8_lossy(&out.stdout);
    let secs: u64 = text
        .split("timer:(keepalive,")
        .nth(1)
        .and_then(|rest| rest.split("sec").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no keepalive timer on the server's socket:\n{text}"));
    assert!((1..=60).contains(&secs), "keepalive idle {secs}s");
}

#[test]
fn default_room_option() {
    let s = Server::start(&["--default-room", "#Dev"]);
    let c = s.line_client();
    assert!(
        c.greeting[1].starts_with("*** you joined #dev (1 here: "),
        "{:?}",
        c.greeting
    );
    let mut c = c;
    c.expect_silence(Duration::from_millis(100));
}
