//! Scale and robustness: many real sockets against the real binary.
//!
//! - 500 line clients in one room, one message fanned out to the other 499;
//! - several hundred clients come and go (quit, close, reset) and the server
//!   still runs on its two threads (the loop and the slow-jobs helper)
//!   and still answers;
//! - many clients reset mid-conversation: the rest see them leave;
//! - a client that sends garbage never stalls the others.
//!
//! Clients are plain blocking sockets driven from the test thread; reads
//! have generous deadlines and nothing asserts a timing.

mod common;
use common::testrng::Rng;
use common::*;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one expected line may take, even on a loaded 2-core machine.
const LONG: Duration = Duration::from_secs(30);

/// The next line within `LONG`; panics with the client's nick otherwise.
fn next(c: &mut LineClient) -> String {
    c.try_line(LONG)
        .unwrap_or_else(|| panic!("{}: no line within {LONG:?}", c.nick))
}

/// The next line, which must carry a `[HH:MM:SS] ` clock; returns the rest.
fn next_event(c: &mut LineClient) -> String {
    let l = next(c);
    strip_clock(&l).unwrap_or_else(|| panic!("{}: no timestamp on {l:?}", c.nick))
}

/// Reads the welcome and the join line of a client opened with
/// `LineClient::raw`, sets its nick and returns the member count the join
/// line reports.
fn greet(c: &mut LineClient) -> usize {
    let welcome = next(c);
    c.nick = nick_in_welcome(&welcome);
    let joined = next(c);
    let (n, names) = joined
        .strip_prefix("*** you joined #lobby (")
        .and_then(|r| r.strip_suffix(')'))
        .and_then(|r| r.split_once(" here: "))
        .unwrap_or_else(|| panic!("{}: bad join line {joined:?}", c.nick));
    let n: usize = n
        .parse()
        .unwrap_or_else(|_| panic!("bad count in {joined:?}"));
    let names: Vec<&str> = names.split(", ").collect();
    assert_eq!(names.len(), n, "{joined:?}");
    assert!(
        names.contains(&c.nick.as_str()),
        "{}: not in its own join line {joined:?}",
        c.nick
    );
    c.greeting = vec![welcome, joined];
    n
}

/// Parses `*** #lobby (N): a, b, c`.
fn parse_who(line: &str) -> Option<(usize, HashSet<String>)> {
    let rest = line.strip_prefix("*** #lobby (")?;
    let (n, names) = rest.split_once("):")?;
    let n = n.parse().ok()?;
    let names = names
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    Some((n, names))
}

/// Opens `n` line clients at once (so their sniff timers run concurrently),
/// then reads every greeting, then brings every client to a known point in
/// its stream: each sends `/who` and reads up to the answer. Everything in
/// between must be the history block (if the room has history) and one
/// `--> X joined` line for every member who joined after it.
///
/// Checks that the join counts are the distinct, consecutive values a single
/// serial hub produces and that every `/who` names the same full room.
fn crowd(addr: SocketAddr, n: usize) -> Vec<LineClient> {
    let mut clients: Vec<LineClient> = (0..n).map(|_| LineClient::raw(addr)).collect();
    let counts: Vec<usize> = clients.iter_mut().map(greet).collect();
    for c in clients.iter_mut() {
        c.send("/who");
    }
    let mut room: Option<(usize, HashSet<String>)> = None;
    for (c, &here) in clients.iter_mut().zip(&counts) {
        let mut joins = 0;
        let mut first = true;
        let who = loop {
            let l = next(c);
            if let Some(who) = parse_who(&l) {
                break who;
            }
            if first && l.starts_with("*** history of #lobby (") {
                while next(c) != "*** end of history" {}
                first = false;
                continue;
            }
            first = false;
            let ev = strip_clock(&l)
                .unwrap_or_else(|| panic!("{}: unexpected line {l:?} before /who", c.nick));
            assert!(
                ev.starts_with("#lobby --> ") && ev.ends_with(" joined"),
                "{}: unexpected line {l:?} before /who",
                c.nick
            );
            joins += 1;
        };
        assert_eq!(
            who.0,
            who.1.len(),
            "{}: /who count and names disagree",
            c.nick
        );
        assert_eq!(
            joins,
            who.0 - here,
            "{}: joined when {here} were here, room now {}, but saw {joins} joins",
            c.nick,
            who.0
        );
        match &room {
            None => room = Some(who),
            Some(r) => assert_eq!(r, &who, "{}: /who differs between members", c.nick),
        }
    }
    let (total, names) = room.expect("at least one client");
    for c in &clients {
        assert!(names.contains(&c.nick), "{} missing from /who", c.nick);
    }
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    let base = total - n;
    let want: Vec<usize> = (base + 1..=total).collect();
    assert_eq!(sorted, want, "join counts are not one per serial join");
    clients
}

/// Reads until the server closes the connection; panics if it does not.
/// Returns the lines that came before the close.
fn expect_close(mut c: LineClient) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(l) = c.try_line(LONG) {
        lines.push(l);
    }
    // `None` means end of stream or a timeout: tell them apart.
    let mut byte = [0u8; 1];
    match c.stream().read(&mut byte) {
        Ok(0) => lines,
        Ok(_) => panic!("{}: data after the last line", c.nick),
        Err(e) => panic!("{}: the server did not close the connection ({e})", c.nick),
    }
}

/// Reads `c`'s events until every line of `want` has come (in any order);
/// any other line fails the test.
fn expect_events(c: &mut LineClient, mut want: HashSet<String>) {
    while !want.is_empty() {
        let Some(l) = c.try_line(LONG) else {
            let mut left: Vec<_> = want.into_iter().collect();
            left.sort();
            panic!(
                "{}: {} lines never came within {LONG:?}: {:?}",
                c.nick,
                left.len(),
                &left[..left.len().min(10)]
            );
        };
        let ev = strip_clock(&l).unwrap_or_else(|| panic!("{}: no timestamp on {l:?}", c.nick));
        assert!(
            want.remove(&ev),
            "{}: unexpected {ev:?}; still waiting for {} lines, e.g. {:?}",
            c.nick,
            want.len(),
            want.iter().next()
        );
    }
}

#[test]
fn five_hundred_clients_in_one_room() {
    const N: usize = 500;
    // The default 300 ms sniff: all 500 timers run at once.
    let mut s = Server::start(&[]);
    let mut clients = crowd(s.addr, N);
    assert_eq!(
        s.threads(),
        THREADS,
        "the loop and the two helpers, nothing per client"
    );
    assert_eq!(
        s.thread_names(),
        ["natter", "natter-hasher", "natter-helper"]
    );
    let ours = std::fs::read_to_string("/proc/self/stat").expect("own stat");
    let ours: Option<i64> = ours
        .get(ours.rfind(')').expect("name") + 2..)
        .and_then(|a| a.split(' ').nth(16)?.parse().ok());
    assert_eq!(s.thread_nice("natter"), ours, "the loop keeps its priority");
    assert_eq!(
        s.thread_nice("natter-helper"),
        ours,
        "and so do checkpoints"
    );
    assert_eq!(
        s.thread_nice("natter-hasher"),
        Some(19),
        "the hasher runs at the lowest priority"
    );

    let sender = 123;
    let text = format!("hello to all {} of you", N - 1);
    clients[sender].send(&text);
    let want = format!("#lobby <{}> {text}", clients[sender].nick);
    for (i, c) in clients.iter_mut().enumerate() {
        if i != sender {
            assert_eq!(next_event(c), want, "{} (client {i})", c.nick);
        }
    }
    // No echo of its own message to a line client; the room is quiet again.
    clients[sender].expect_silence(Duration::from_millis(300));
    clients[0].expect_silence(Duration::from_millis(100));
    assert!(s.is_alive());
    assert_eq!(s.threads(), THREADS);
}

#[test]
fn one_thread_after_hundreds_came_and_went() {
    const WAVES: usize = 6;
    const PER_WAVE: usize = 64;
    let mut s = Server::start(&["--sniff-ms", "50"]);
    let mut watcher = s.line_client();
    assert_eq!(s.threads(), THREADS);

    for wave in 0..WAVES {
        let mut clients = crowd(s.addr, PER_WAVE);
        assert_eq!(s.threads(), THREADS, "wave {wave}: more than one thread");
        // Everyone talks; the watcher hears it all before anyone goes, since
        // a TCP reset may legitimately discard what the server has not read.
        let mut want = HashSet::new();
        for (i, c) in clients.iter_mut().enumerate() {
            let text = format!("wave {wave} client {i} says hi");
            c.send(&text);
            want.insert(format!("#lobby --> {} joined", c.nick));
            want.insert(format!("#lobby <{}> {text}", c.nick));
        }
        expect_events(&mut watcher, want);
        // Then they go, four ways.
        let mut want = HashSet::new();
        for (i, c) in clients.into_iter().enumerate() {
            let nick = c.nick.clone();
            let reason = match i % 4 {
                0 | 1 => {
                    let (cmd, reason) = if i % 4 == 0 {
                        ("/quit", "(quit)")
                    } else {
                        ("/quit see you later", "(quit: see you later)")
                    };
                    let mut c = c;
                    c.send(cmd);
                    // The server says goodbye last, then closes.
                    let lines = expect_close(c);
                    assert_eq!(
                        lines.last().map(String::as_str),
                        Some("*** bye"),
                        "{nick}: last lines {:?}",
                        &lines[lines.len().saturating_sub(3)..]
                    );
                    reason
                }
                2 => {
                    c.close();
                    "(disconnected)"
                }
                _ => {
                    c.reset();
                    "(disconnected)"
                }
            };
            want.insert(format!("#lobby <-- {nick} left {reason}"));
        }
        expect_events(&mut watcher, want);
        assert!(s.is_alive(), "wave {wave}: the server died");
    }

    assert_eq!(s.threads(), THREADS, "Threads: after the churn");
    watcher.send("/who");
    assert_eq!(
        next(&mut watcher),
        format!("*** #lobby (1): {}", watcher.nick)
    );

    // A newcomer is served as usual: greeting, history, chat.
    let mut late = s.line_client();
    assert!(
        late.greeting
            .iter()
            .any(|l| l.starts_with("*** history of #lobby (50 messages)")),
        "{:?}",
        late.greeting
    );
    assert_eq!(
        next_event(&mut watcher),
        format!("#lobby --> {} joined", late.nick)
    );
    late.send("anyone still here?");
    assert_eq!(
        next_event(&mut watcher),
        format!("#lobby <{}> anyone still here?", late.nick)
    );
    watcher.send("yes");
    assert_eq!(
        next_event(&mut late),
        format!("#lobby <{}> yes", watcher.nick)
    );
    assert_eq!(s.threads(), THREADS);
}

#[test]
fn mass_reset_mid_conversation() {
    const N: usize = 200;
    const DOOMED: usize = 150;
    const SPEAKERS: usize = 20;
    let mut s = Server::start(&["--sniff-ms", "50"]);
    let mut doomed = crowd(s.addr, N);
    let mut survivors = doomed.split_off(DOOMED);
    let doomed_nicks: Vec<String> = doomed.iter().map(|c| c.nick.clone()).collect();

    let survivor_nicks: Vec<String> = survivors.iter().map(|c| c.nick.clone()).collect();
    // Per survivor: every line it must see from here on, in any order.
    let mut want: Vec<HashSet<String>> = vec![HashSet::new(); survivors.len()];
    let mut expect_all = |from: &str, line: String| {
        for (w, nick) in want.iter_mut().zip(&survivor_nicks) {
            if nick != from {
                w.insert(line.clone());
            }
        }
    };

    // A conversation: doomed speakers and a few survivors talk.
    for (i, c) in doomed.iter_mut().take(SPEAKERS).enumerate() {
        let text = format!("doomed {i} talking");
        c.send(&text);
        expect_all(&c.nick, format!("#lobby <{}> {text}", c.nick));
    }
    for (i, c) in survivors.iter_mut().take(5).enumerate() {
        let text = format!("survivor {i} talking");
        c.send(&text);
        expect_all(&c.nick, format!("#lobby <{}> {text}", c.nick));
    }
    for nick in &doomed_nicks {
        expect_all("", format!("#lobby <-- {nick} left (disconnected)"));
    }
    // Wait until the doomed speakers' lines are in (one survivor saw them),
    // so that no reset races with them.
    let mut seen = 0;
    while seen < SPEAKERS {
        let ev = next_event(&mut survivors[0]);
        assert!(
            want[0].remove(&ev),
            "{}: unexpected {ev:?}",
            survivors[0].nick
        );
        if ev.contains("> doomed ") {
            seen += 1;
        }
    }

    // Mid-conversation: half a line sent, unread lines queued, then RST.
    for c in doomed.iter_mut() {
        c.send_bytes(b"unfinished business, never to be fini");
    }
    let mut doomed = doomed.into_iter();
    for c in doomed.by_ref().take(DOOMED / 2) {
        c.reset();
    }
    let text = "talking through the resets";
    survivors[1].send(text);
    let line = format!("#lobby <{}> {text}", survivors[1].nick);
    for (i, w) in want.iter_mut().enumerate() {
        if i != 1 {
            w.insert(line.clone());
        }
    }
    for c in doomed {
        c.reset();
    }

    for (c, w) in survivors.iter_mut().zip(want) {
        expect_events(c, w);
    }
    assert!(s.is_alive(), "the server died");
    assert_eq!(s.threads(), THREADS);

    // Nothing else was pending: the next line every survivor sees is this.
    survivors[7].send("/who");
    let (n, names) = parse_who(&next(&mut survivors[7])).expect("who answer");
    assert_eq!(n, N - DOOMED);
    assert_eq!(names, survivor_nicks.iter().cloned().collect());
    survivors[7].send("still chatting");
    let want = format!("#lobby <{}> still chatting", survivors[7].nick);
    for (i, c) in survivors.iter_mut().enumerate() {
        if i != 7 {
            assert_eq!(next_event(c), want, "{}", c.nick);
        }
    }
    // The half lines of the reset clients were never said.
    let mut fresh = s.line_client();
    fresh.send("/history 200");
    loop {
        let l = next(&mut fresh);
        assert!(!l.contains("unfinished"), "a half line was said: {l:?}");
        if l == "*** end of history" {
            break;
        }
    }
}

/// A control character other than tab: nothing of the kind may reach a
/// netcat user's terminal.
fn has_control(l: &str) -> bool {
    l.chars().any(|c| c.is_control() && c != '\t')
}

/// Reads `c` until `want` (after the clock) arrives, skipping other lines;
/// every line read must be free of control characters.
fn await_event(c: &mut LineClient, want: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = c
            .try_line(left)
            .unwrap_or_else(|| panic!("{}: {want:?} did not come within {LONG:?}", c.nick));
        assert!(!has_control(&l), "{}: control character in {l:?}", c.nick);
        if strip_clock(&l).as_deref() == Some(want) {
            return;
        }
    }
}

/// One round trip between two well-behaved clients.
fn ping_pong(a: &mut LineClient, b: &mut LineClient, round: usize) {
    let ping = format!("ping {round}");
    a.send(&ping);
    await_event(b, &format!("#lobby <{}> {ping}", a.nick));
    let pong = format!("pong {round}");
    b.send(&pong);
    await_event(a, &format!("#lobby <{}> {pong}", b.nick));
}

/// Writes `data` in 256 KiB pieces with a round of chat between two
/// well-behaved clients after each: the server always has garbage in
/// flight while they talk.
fn chat_while_writing(
    mut stream: &TcpStream,
    data: &[u8],
    a: &mut LineClient,
    b: &mut LineClient,
    round: &mut usize,
) {
    for piece in data.chunks(256 * 1024) {
        stream.write_all(piece).expect("garbage write");
        ping_pong(a, b, *round);
        *round += 1;
    }
}

/// Lines the garbage client receives, read on a thread so that its output
/// never backs up; each is checked for control characters there.
fn drain_to_channel(stream: TcpStream) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = std::io::BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match std::io::BufRead::read_until(&mut r, b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let l = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Waits on `rx` for a line starting with `prefix`; every line must be
/// valid UTF-8 without control characters.
fn await_on(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("garbage client: no {prefix:?} line ({e})"));
        let l = l
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("garbage client: unterminated {l:?}"));
        assert!(
            !has_control(l),
            "garbage client: control character in {l:?}"
        );
        if l.starts_with(prefix) {
            return l.to_string();
        }
    }
}

#[test]
fn garbage_never_stalls_the_others() {
    // Flood control is not under test: the two chatting clients exchange
    // about a hundred lines in a few seconds, past the default burst.
    let mut s = Server::start(&["--sniff-ms", "50", "--rate", "1000", "--burst", "1000"]);
    let mut a = s.line_client();
    let mut b = s.line_client();
    await_event(&mut a, &format!("#lobby --> {} joined", b.nick));
    let mut round = 0;
    ping_pong(&mut a, &mut b, round);
    round += 1;

    // The garbage client: greeted normally, then it misbehaves.
    let g = s.line_client();
    let g_nick = g.nick.clone();
    await_event(&mut a, &format!("#lobby --> {g_nick} joined"));
    await_event(&mut b, &format!("#lobby --> {g_nick} joined"));
    let g_out = drain_to_channel(g.stream().try_clone().expect("clone"));
    let g_in = g.stream().try_clone().expect("clone");
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);

    // A second one that sends binary before the server ever spoke and
    // never reads: sniffed as a line client, it must not hurt anyone.
    let mut rude = TcpStream::connect(s.addr).expect("connect");
    let mut noise = rng.bytes(64 * 1024);
    noise[0] = 0; // not 0x16, which would be a TLS hello
    rude.write_all(&noise).expect("write noise");

    // 1. A 5 MB line without a newline: dropped, `too_long` at its end.
    let huge = vec![b'x'; 5 * 1024 * 1024];
    chat_while_writing(&g_in, &huge, &mut a, &mut b, &mut round);
    ping_pong(&mut a, &mut b, round); // the line is still open here
    round += 1;
    (&g_in).write_all(b"\n").expect("write");
    await_on(&g_out, "!!! too_long: ");

    // 2. Random bytes, NULs and all, then a newline.
    let mut bytes = rng.bytes(256 * 1024);
    bytes.push(b'\n');
    chat_while_writing(&g_in, &bytes, &mut a, &mut b, &mut round);

    // 3. A 5 MB random blob.
    let blob = rng.bytes(5 * 1024 * 1024);
    chat_while_writing(&g_in, &blob, &mut a, &mut b, &mut round);

    // The garbage client's connection still works: end its last line, rename.
    (&g_in).write_all(b"\n/nick garbageman\n").expect("write");
    await_on(&g_out, "*** you are now known as garbageman");
    await_event(
        &mut a,
        &format!("#lobby --- {g_nick} is now known as garbageman"),
    );

    // NULs and escapes from anyone reach others as U+FFFD, tab kept.
    let mut c = s.line_client();
    c.send_bytes(b"\x00nul \x1b[31mred\x7f \xc2\x85c1\tand a tab\n");
    await_event(
        &mut a,
        &format!(
            "#lobby <{}> \u{FFFD}nul \u{FFFD}[31mred\u{FFFD} \u{FFFD}c1\tand a tab",
            c.nick
        ),
    );

    // And after it all, chat goes on as before.
    for _ in 0..3 {
        ping_pong(&mut a, &mut b, round);
        round += 1;
    }
    drop(rude);
    assert!(s.is_alive(), "the server died");
    assert_eq!(s.threads(), THREADS);
    drop(g);
}
