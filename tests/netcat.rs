//! The real netcat (netcat-openbsd) against the real binary: the client the
//! line protocol is made for. These tests fail, never skip, when `nc` is
//! missing: `make deps` installs it.

mod common;
use common::*;

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long netcat may take to show a line or to exit.
const LONG: Duration = Duration::from_secs(20);

/// Waits for `child` to exit; kills it and fails after `LONG`.
fn wait_exit(child: &mut Child, what: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return,
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not exit within {LONG:?}");
            }
        }
    }
}

/// An interactive `nc 127.0.0.1 PORT`, as a person at a terminal runs it.
struct Nc {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<String>,
}

impl Nc {
    fn start(nc: &Path, s: &Server) -> Nc {
        let mut child = Command::new(nc)
            .arg(s.addr.ip().to_string())
            .arg(s.addr.port().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", nc.display()));
        let stdin = child.stdin.take();
        let out = lines_of(child.stdout.take().expect("stdout"));
        Nc { child, stdin, out }
    }

    /// Types a line into netcat.
    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .expect("write to nc");
        stdin.flush().expect("flush nc stdin");
    }

    /// The next line netcat shows.
    fn line(&mut self) -> String {
        match self.out.recv_timeout(LONG) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => panic!("nc showed no line within {LONG:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("nc's output ended"),
        }
    }

    /// The next line, which must carry a clock; returns the rest.
    fn event(&mut self) -> String {
        let l = self.line();
        strip_clock(&l).unwrap_or_else(|| panic!("nc: no timestamp on {l:?}"))
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn netcat_chats_with_a_rust_client() {
    let nc = nc_path();
    let s = Server::start(&[]);
    let mut rust = s.line_client();
    let mut n = Nc::start(&nc, &s);

    // netcat waits for the server to speak first: the silence makes it a
    // line client, and it is greeted like any other.
    let welcome = n.line();
    let first = nick_in_welcome(&welcome);
    let joined = n.line();
    let here = joined
        .strip_prefix("*** you joined #lobby (2 here: ")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("nc: bad join line {joined:?}"));
    let mut names: Vec<&str> = here.split(", ").collect();
    names.sort_unstable();
    let mut want = vec![first.as_str(), rust.nick.as_str()];
    want.sort_unstable();
    assert_eq!(names, want, "{joined:?}");
    assert_eq!(rust.event(), format!("#lobby --> {first} joined"));

    n.send("/nick ncuser");
    assert_eq!(n.line(), "*** you are now known as ncuser");
    assert_eq!(
        rust.event(),
        format!("#lobby --- {first} is now known as ncuser")
    );

    n.send("hello from netcat");
    assert_eq!(rust.event(), "#lobby <ncuser> hello from netcat");

    rust.send("hello, netcat user");
    assert_eq!(
        n.event(),
        format!("#lobby <{}> hello, netcat user", rust.nick)
    );

    rust.send("/me waves");
    assert_eq!(n.event(), format!("#lobby * {} waves", rust.nick));

    n.send("/quit");
    assert_eq!(n.line(), "*** bye");
    assert_eq!(rust.event(), "#lobby <-- ncuser left (quit)");
    // netcat-openbsd keeps running while its stdin is open, even after the
    // server closed; end its input as a user would with Ctrl-D.
    drop(n.stdin.take());
    wait_exit(&mut n.child, "nc after /quit and the end of its input");
    assert!(
        n.out.recv_timeout(LONG).is_err(),
        "nc showed something after *** bye"
    );
}

/// Runs `printf SCRIPT | nc FLAGS 127.0.0.1 PORT` through the shell and
/// returns what netcat printed.
fn one_shot(nc: &Path, s: &Server, flags: &str, script: &str) -> Vec<String> {
    let cmd = format!(
        "printf '{script}' | {} {flags} {} {}",
        nc.display(),
        s.addr.ip(),
        s.addr.port()
    );
    let mut child = Command::new("sh")
        .args(["-c", &cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let out = lines_of(child.stdout.take().expect("stdout"));
    wait_exit(&mut child, &cmd);
    // The reader thread ends with the pipe; collect what it saw.
    let mut lines = Vec::new();
    while let Ok(l) = out.recv_timeout(LONG) {
        lines.push(l);
    }
    lines
}

/// A script piped into netcat: its lines arrive before the server spoke,
/// so the first line is sniffed as line protocol, greeted, then handled.
fn scripted(flags: &str) {
    let nc = nc_path();
    let s = Server::start(&[]);
    let mut watcher = s.line_client();
    let out = one_shot(&nc, &s, flags, "/nick bob\\nhello\\n/quit\\n");
    let script = format!("printf ... | nc {flags}");

    assert!(
        out.first()
            .is_some_and(|l| l.starts_with("*** welcome to natter, you are ")),
        "{script}: output {out:?}"
    );
    assert!(
        out.get(1)
            .is_some_and(|l| l.starts_with("*** you joined #lobby (2 here: ")),
        "{script}: output {out:?}"
    );
    assert!(
        out.iter().any(|l| l == "*** you are now known as bob"),
        "{script}: output {out:?}"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("*** bye"),
        "{script}: output {out:?}"
    );
    assert_eq!(out.len(), 4, "{script}: output {out:?}");

    let joined = watcher.event();
    let first = joined
        .strip_prefix("#lobby --> ")
        .and_then(|r| r.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("watcher: {joined:?}"));
    assert_eq!(
        watcher.event(),
        format!("#lobby --- {first} is now known as bob")
    );
    assert_eq!(watcher.event(), "#lobby <bob> hello");
    assert_eq!(watcher.event(), "#lobby <-- bob left (quit)");
}

#[test]
fn scripted_netcat_with_quit_delay() {
    scripted("-q 2");
}

#[test]
fn scripted_netcat_with_half_close() {
    // -N: shutdown(SHUT_WR) once stdin ends. The server must still answer
    // every line it received and say bye before closing.
    scripted("-N");
}
