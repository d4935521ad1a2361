//! Out of file descriptors: `accept` fails with EMFILE. The loop must back
//! off instead of spinning on the listener, and recover once descriptors
//! free up: the connections that waited in the kernel's backlog are served.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// CPU time (user + system) of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

#[test]
fn emfile_backs_off_and_recovers() {
    // 40 descriptors: the server's own few, then room for about 30 clients.
    let mut child = Command::new("prlimit")
        .args(["--nofile=40:40", "--", env!("CARGO_BIN_EXE_natter")])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--max-connections",
            "1000",
        ])
        .args(["--sniff-ms", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("prlimit (util-linux) runs natter");
    let pid = child.id();
    // Killed however the test ends, a failed assertion included.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let _guard = KillOnDrop(child);
    let mut out = BufReader::new(stdout);
    let mut first = String::new();
    out.read_line(&mut first).expect("listening line");
    let addr: std::net::SocketAddr = first
        .trim()
        .strip_prefix("natter listening on ")
        .expect("address")
        .parse()
        .expect("address");

    // Far more clients than descriptors: the rest wait in the backlog.
    let mut clients: Vec<LineClient> = (0..60).map(|_| LineClient::raw(addr)).collect();
    let mut served = 0;
    for c in clients.iter_mut().take(20) {
        if c.try_line(Duration::from_secs(3)).is_some() {
            served += 1;
        }
    }
    assert_eq!(served, 20, "the first clients are served");

    // While stuck at the limit the loop must not spin.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(1500));
    let spent = cpu_ticks(pid) - before;
    assert!(
        spent < 75,
        "{spent} ticks of CPU in 1.5 s while out of descriptors"
    );

    // Free descriptors: the waiting clients get their welcome.
    let mut waiting = clients.split_off(30);
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut greeted = 0;
    for c in waiting.iter_mut().take(20) {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        if let Some(l) = c.try_line(wait) {
            assert!(l.starts_with("*** welcome to natter"), "{l}");
            greeted += 1;
        }
    }
    assert_eq!(
        greeted, 20,
        "clients from the backlog are served once descriptors free up"
    );
}
