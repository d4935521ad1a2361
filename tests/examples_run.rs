//! The teaching examples build and run, at a small size. Cargo does not hand
//! example binaries to tests, so their sources are compiled in here as
//! modules: the thread-per-client server and the minimal loop are served
//! in-process on 127.0.0.1:0 (and stopped: a flag, then a connection to wake
//! the loop or the blocked `accept`), and the comparison driver runs a short
//! load against the threaded example and against the natter binary.

#[path = "../examples/compare_threads.rs"]
#[allow(dead_code, unreachable_pub)] // its main and option parsing are not used here
mod compare_threads;
#[path = "../examples/minimal_loop.rs"]
#[allow(dead_code, unreachable_pub)]
mod minimal_loop;
#[path = "../examples/threaded.rs"]
#[allow(dead_code, unreachable_pub)]
mod threaded;

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use compare_threads::{proc_stats, run_load, Load, Server};

const WAIT: Duration = Duration::from_secs(10);

/// An example server running on a thread of this test.
struct Running {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<io::Result<()>>,
}

type Serve = fn(TcpListener, Arc<AtomicBool>) -> io::Result<()>;

fn start(serve: Serve) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let (tx, done) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(serve(listener, flag));
    });
    Running { addr, stop, done }
}

impl Running {
    /// Stops the server and waits until its `serve` has returned.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes accept / poll
        match self.done.recv_timeout(WAIT) {
            Ok(result) => result.expect("serve returned an error"),
            Err(_) => panic!("the server did not stop within {WAIT:?}"),
        }
    }
}

/// A line client with a read timeout: a missing line fails the test.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let writer = stream.try_clone().expect("clone");
        Client {
            reader: BufReader::new(stream),
            writer,
        }
    }

    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("connection closed while waiting for a line"),
            Ok(_) => line.trim_end_matches('\n').to_string(),
            Err(e) => panic!("no line: {e}"),
        }
    }

    /// The next line, which must be a room event: `[HH:MM:SS] ` is checked
    /// and taken off.
    fn event(&mut self) -> String {
        let line = self.line();
        let b = line.as_bytes();
        let clock = b.len() > 11
            && b[0] == b'['
            && b[3] == b':'
            && b[6] == b':'
            && b[9] == b']'
            && b[10] == b' '
            && [1, 2, 4, 5, 7, 8].iter().all(|&i| b[i].is_ascii_digit());
        assert!(clock, "not an event line: {line:?}");
        line[11..].to_string()
    }

    fn expect_eof(&mut self) {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => {}
            Ok(_) => panic!("expected the connection to close, got {line:?}"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected the connection to close: {e}"),
        }
    }
}

/// Connects to the threaded example and reads the greeting: the nick and the
/// members the join line lists.
fn join_threaded(addr: SocketAddr) -> (Client, String, String) {
    let mut c = Client::connect(addr);
    let welcome = c.line();
    let nick = welcome
        .strip_prefix("*** welcome to threaded, you are ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("unexpected welcome {welcome:?}"))
        .to_string();
    let joined = c.line();
    let members = joined
        .strip_prefix("*** you joined #lobby (")
        .unwrap_or_else(|| panic!("unexpected join line {joined:?}"))
        .to_string();
    (c, nick, members)
}

#[test]
fn threaded_example_speaks_the_basic_line_protocol() {
    let server = start(threaded::serve);
    let (mut a, na, members) = join_threaded(server.addr);
    assert_eq!(members, format!("1 here: {na})"));
    let (mut b, nb, members) = join_threaded(server.addr);
    let mut two = [na.clone(), nb.clone()];
    two.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(members, format!("2 here: {})", two.join(", ")));
    assert_eq!(a.event(), format!("#lobby --> {nb} joined"));
    let (mut c, nc, members) = join_threaded(server.addr);
    assert!(members.starts_with("3 here: "), "{members}");
    assert_eq!(a.event(), format!("#lobby --> {nc} joined"));
    assert_eq!(b.event(), format!("#lobby --> {nc} joined"));
    assert_ne!(na, nb);

    // Each says something in turn; the others get exactly that, the sender
    // nothing (its next line is someone else's).
    a.send("hello from a");
    assert_eq!(b.event(), format!("#lobby <{na}> hello from a"));
    assert_eq!(c.event(), format!("#lobby <{na}> hello from a"));
    b.send("hi, b here");
    assert_eq!(a.event(), format!("#lobby <{nb}> hi, b here"));
    assert_eq!(c.event(), format!("#lobby <{nb}> hi, b here"));
    c.send("//slash and \u{1b}[31mescape");
    let said = format!("#lobby <{nc}> /slash and \u{fffd}[31mescape");
    assert_eq!(a.event(), said);
    assert_eq!(b.event(), said);

    // Blank lines are ignored; unknown commands and bad nicks are errors.
    a.send("");
    a.send("/frobnicate");
    assert!(a.line().starts_with("!!! unknown_command: "));
    a.send("/nick 9lives");
    assert!(a.line().starts_with("!!! nick_invalid: "));
    a.send(&format!("/nick {}", nb.to_uppercase()));
    assert!(a.line().starts_with("!!! nick_taken: "));

    b.send("/nick bobby");
    assert_eq!(b.line(), "*** you are now known as bobby");
    assert_eq!(a.event(), format!("#lobby --- {nb} is now known as bobby"));
    assert_eq!(c.event(), format!("#lobby --- {nb} is now known as bobby"));
    b.send("bobby now");
    assert_eq!(a.event(), "#lobby <bobby> bobby now");
    assert_eq!(c.event(), "#lobby <bobby> bobby now");

    c.send("/quit gotta go");
    assert_eq!(c.line(), "*** bye");
    c.expect_eof();
    assert_eq!(a.event(), format!("#lobby <-- {nc} left (quit: gotta go)"));
    assert_eq!(b.event(), format!("#lobby <-- {nc} left (quit: gotta go)"));
    drop(a);
    assert_eq!(b.event(), format!("#lobby <-- {na} left (disconnected)"));
    b.send("/QUIT");
    assert_eq!(b.line(), "*** bye");
    b.expect_eof();
    server.stop();
}

#[test]
fn threaded_example_stops_with_clients_connected() {
    let server = start(threaded::serve);
    let (mut a, _, _) = join_threaded(server.addr);
    let (_b, nb, _) = join_threaded(server.addr);
    assert_eq!(a.event(), format!("#lobby --> {nb} joined"));
    server.stop();
    // Stopping shut every socket down: the clients see the end.
    a.expect_eof();
}

#[test]
fn minimal_loop_broadcasts_every_line_to_everyone_else() {
    let server = start(minimal_loop::serve);
    // Client k's first line reaching everyone before it shows that the loop
    // has accepted k (its bytes were read; the accept queue is first come,
    // first served), so nothing said later can miss k. Client 0 says nothing:
    // client 1 may be accepted before the loop reads anything of 0's.
    let mut clients = vec![Client::connect(server.addr)];
    for k in 1..5 {
        let mut c = Client::connect(server.addr);
        c.send(&format!("hello from {k}"));
        for earlier in &mut clients {
            assert_eq!(earlier.line(), format!("hello from {k}"));
        }
        clients.push(c);
    }
    for k in 0..clients.len() {
        clients[k].send(&format!("line from {k}"));
        for (j, other) in clients.iter_mut().enumerate() {
            if j != k {
                assert_eq!(other.line(), format!("line from {k}"));
            }
        }
    }

    // A burst far larger than the kernel's socket buffers, sent while nobody
    // reads: the loop must queue it, write it in pieces as each reader
    // drains, and lose or reorder nothing. A line split across two writes
    // by the sender arrives whole.
    let lines = 30_000;
    let mut burst = Vec::new();
    for i in 0..lines {
        writeln!(burst, "burst {i:06} {}", "x".repeat(290)).expect("format");
    }
    let (first, second) = burst.split_at(burst.len() / 2 + 7);
    clients[0].writer.write_all(first).expect("send");
    clients[0].writer.flush().expect("flush");
    thread::sleep(Duration::from_millis(50));
    clients[0].writer.write_all(second).expect("send");
    for other in &mut clients[1..] {
        for i in 0..lines {
            let line = other.line();
            assert_eq!(line, format!("burst {i:06} {}", "x".repeat(290)));
        }
    }

    // A client that goes away is removed; the rest carry on.
    drop(clients.remove(4));
    clients[1].send("after the departure");
    for (j, other) in clients.iter_mut().enumerate() {
        if j != 1 {
            assert_eq!(other.line(), "after the departure");
        }
    }
    server.stop();
}

#[test]
fn compare_driver_runs_against_the_threaded_example() {
    let server = start(threaded::serve);
    let load = Load {
        clients: 6,
        secs: 1.0,
        rate: 100.0,
        pad: 10,
        stall: false,
    };
    // The server runs in this process, so /proc/self is its /proc/PID.
    let out = run_load(server.addr, std::process::id(), &load).expect("load");
    assert_eq!(out.sent, 100);
    assert_eq!(out.expected, 500);
    assert_eq!(out.delivered, 500);
    assert_eq!((out.echoes, out.duplicates), (0, 0));
    assert!(out.after.threads >= 7, "{:?}", out.after);
    assert!(out.p50_us <= out.p99_us && out.p99_us <= out.max_us);
    assert_eq!(out.per_second.iter().sum::<u64>(), 500);
    server.stop();
}

#[test]
fn compare_driver_runs_against_natter() {
    let natter = Path::new(env!("CARGO_BIN_EXE_natter"));
    let server = Server::start(natter, &compare_threads::NATTER_ARGS).expect("start natter");
    let load = Load {
        clients: 5,
        secs: 1.0,
        rate: 200.0,
        pad: 0,
        stall: false,
    };
    let out = run_load(server.addr, server.pid(), &load).expect("load");
    assert_eq!(out.delivered, 200 * 4);
    assert_eq!(out.expected, out.delivered);
    assert_eq!((out.echoes, out.duplicates), (0, 0));
    // The loop and the two slow-jobs helpers, however many clients.
    assert_eq!(out.after.threads, 3);
    assert!(out.after.rss_kb > 0 && out.after.cpu_ticks >= out.before.cpu_ticks);
    let now = proc_stats(server.pid()).expect("proc");
    assert!(now.ctxt_switches >= out.before.ctxt_switches);
}
