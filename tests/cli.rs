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
        "--reuse-port",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

/// Every option can come from the environment as `NATTER_` and its name
/// (`--max-per-ip`: `NATTER_MAX_PER_IP`), and `--help` says so for each:
/// the names a deployment (docs/DEPLOY.md) writes are checked here.
#[test]
fn every_option_has_an_environment_variable_named_after_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--help")
        .env_clear()
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    // Each option's block runs from its `--flag` line to the next one.
    let mut options = 0;
    for block in help.split("\n      --").skip(1) {
        let flag = block.split([' ', '\n']).next().unwrap_or_default();
        if flag == "help" || flag == "version" {
            continue;
        }
        options += 1;
        let env = format!("[env: NATTER_{}=]", flag.to_uppercase().replace('-', "_"));
        assert!(block.contains(&env), "--{flag} lacks {env}:\n{block}");
    }
    assert!(options >= 30, "{options} options found in\n{help}");
    for named in ["NATTER_DB=", "NATTER_LISTEN=", "NATTER_WAL_RESTART_PAGES="] {
        assert!(help.contains(named), "{named}");
    }
}

/// The environment sets what the command line does not; the command line
/// wins where both do; a list takes commas; a bad value is refused as a
/// bad flag is.
#[test]
fn options_come_from_the_environment() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.env("NATTER_LISTEN", "127.0.0.1:0,127.0.0.1:0")
        .env("NATTER_DB", ":memory:")
        .env("NATTER_DEFAULT_ROOM", "fromenv");
    let s = Server::spawn(cmd, 2);
    let c = s.line_client();
    assert!(
        c.greeting
            .iter()
            .any(|l| l.starts_with("*** you joined #fromenv")),
        "{:?}",
        c.greeting
    );
    assert_eq!(s.listening.len(), 2, "{:?}", s.listening);
    drop(s);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natter"));
    cmd.args(["--listen", "127.0.0.1:0", "--default-room", "fromflag"])
        .env("NATTER_DB", ":memory:")
        .env("NATTER_DEFAULT_ROOM", "fromenv");
    let s = Server::spawn(cmd, 1);
    let c = s.line_client();
    assert!(
        c.greeting
            .iter()
            .any(|l| l.starts_with("*** you joined #fromflag")),
        "{:?}",
        c.greeting
    );
    let out = natter()
        .env("NATTER_RATE", "many")
        .output()
        .expect("run natter");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'many' for '--rate <N>'"),
        "{err}"
    );
}

/// `deploy/natter.service` passes `systemd-analyze verify` without a
/// warning (its `ExecStart` pointed at the built binary, which the check
/// wants to exist), and every `NATTER_` variable it and docs/DEPLOY.md
/// name is an option's.
#[test]
fn the_systemd_unit_verifies_and_names_real_options() {
    let root = env!("CARGO_MANIFEST_DIR");
    let unit = std::fs::read_to_string(format!("{root}/deploy/natter.service")).expect("unit");
    let deploy = std::fs::read_to_string(format!("{root}/docs/DEPLOY.md")).expect("DEPLOY.md");
    assert!(unit.contains("ExecStart=/usr/local/bin/natter\n"), "{unit}");
    let dir = std::env::temp_dir().join(format!("natter-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("natter.service");
    let here = unit.replace(
        "ExecStart=/usr/local/bin/natter\n",
        &format!("ExecStart={}\n", env!("CARGO_BIN_EXE_natter")),
    );
    // The unit alone, then with the TLS drop-in (a second [Service]
    // section in one file is merged as a drop-in would be).
    let dropin =
        std::fs::read_to_string(format!("{root}/deploy/natter-tls.conf")).expect("drop-in");
    for text in [here.clone(), format!("{here}\n{dropin}")] {
        std::fs::write(&path, text).expect("write the unit");
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .expect("systemd-analyze (package systemd) is needed; `make test` installs it");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let help = natter().arg("--help").env_clear().output().expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    let mut named = 0;
    for text in [&unit, &deploy, &dropin] {
        for (i, _) in text.match_indices("NATTER_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            let hook = ["NATTER_TLS_DIR", "NATTER_TLS_GROUP", "NATTER_RELOAD"];
            if name == "NATTER_" || hook.contains(&name.as_str()) {
                // The prefix itself, as prose names it; and the deploy
                // hook's own variables (not options).
                continue;
            }
            named += 1;
            assert!(
                help.contains(&format!("[env: {name}=")),
                "{name} is no option's variable"
            );
        }
    }
    assert!(named >= 10, "{named}");
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
