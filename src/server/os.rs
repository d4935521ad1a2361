//! What the shell asks of the operating system besides sockets and
//! `poll`: socket options, the open-file limit, the wall clock and
//! randomness.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::error;
use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use crate::hub::Now;

/// TCP keepalive and user timeout: a dead peer is noticed in about 90 s.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;
const USER_TIMEOUT: Duration = Duration::from_secs(90);

/// Keepalive and a user timeout, so a peer whose network died is noticed;
/// no Nagle delay, since the loop already batches writes per iteration.
pub(super) fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let sock = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    sock.set_tcp_keepalive(&keepalive)?;
    sock.set_tcp_user_timeout(Some(USER_TIMEOUT))?;
    Ok(())
}

/// The backlog `listen` gets: what `std` and mio's `TcpListener::bind`
/// pass on Linux, so `--reuse-port` changes nothing else about a listener.
const LISTEN_BACKLOG: i32 = 128;

/// A listener on `addr` that other processes may listen on too
/// (`--reuse-port`): `SO_REUSEPORT`, so that every socket of the same user
/// that sets it may bind the same address, and the kernel spreads new
/// connections across them by a hash of each connection's addresses and
/// ports. Otherwise what `mio::net::TcpListener::bind` (like `std`'s)
/// makes: `SO_REUSEADDR`, the same backlog, close-on-exec (socket2 sets it),
/// non-blocking, and `IPV6_V6ONLY` left at the kernel's default, since
/// neither sets it (with Linux's `bindv6only = 0`, `[::]` takes IPv4 too).
pub(super) fn reuse_port_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(sock.into()))
}

/// Wall-clock time for timestamps; the loop's deadlines use `Instant`.
pub(super) fn wall_clock() -> Now {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Now { ms }
}

/// A seed for nick and room-code generation, from the OS when it can.
pub(super) fn seed() -> u64 {
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    wall_clock().ms ^ u64::from(std::process::id()) << 32
}

/// The soft open-file limit of this process, from `/proc/self/limits`.
pub(super) fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `n` random bytes from the OS; `None` if there is no randomness.
pub(super) fn random_bytes(urandom: &mut Option<File>, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; n];
    match urandom.as_mut().map(|f| f.read_exact(&mut b)) {
        Some(Ok(())) => Some(b),
        _ => {
            error!("no randomness from /dev/urandom");
            None
        }
    }
}

/// `n` random bytes from the OS in hex; empty if there is no randomness.
pub(super) fn random_hex(urandom: &mut Option<File>, n: usize) -> String {
    let mut b = vec![0u8; n];
    match urandom.as_mut().map(|f| f.read_exact(&mut b)) {
        Some(Ok(())) => b.iter().fold(String::with_capacity(2 * n), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        }),
        _ => {
            error!("no randomness from /dev/urandom");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `tune` sets is what the kernel reports back on a real socket:
    /// the integration tests can see keepalive with `ss`, not the user timeout.
    #[test]
    fn accepted_sockets_get_nodelay_keepalive_and_a_user_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        let stream = TcpStream::from_std(accepted);
        tune(&stream).expect("tune");
        assert!(stream.nodelay().expect("nodelay"));
        let sock = socket2::SockRef::from(&stream);
        assert!(sock.keepalive().expect("keepalive"));
        assert_eq!(sock.keepalive_time().expect("idle"), KEEPALIVE_IDLE);
        assert_eq!(
            sock.keepalive_interval().expect("interval"),
            KEEPALIVE_INTERVAL
        );
        assert_eq!(sock.keepalive_retries().expect("probes"), KEEPALIVE_PROBES);
        assert_eq!(
            sock.tcp_user_timeout().expect("user timeout"),
            Some(USER_TIMEOUT)
        );
    }
}

/// The niceness the helper thread runs at: the lowest priority, so a
/// storm of password hashes takes only CPU the loop leaves over.
pub(super) const HELPER_NICE: u32 = 19;

/// Lowers the calling thread's priority to nice [`HELPER_NICE`]. On Linux
/// the nice value belongs to a thread, not the process, and
/// `setpriority(PRIO_PROCESS, tid)` (what `renice -p TID` calls) changes
/// only that thread. The standard library has no call for it and natter
/// has no `unsafe`, so the thread asks util-linux's `renice` (Debian's
/// essential `bsdutils`), once, at its start. Lowering one's own priority
/// needs no privilege. Returns the thread id on success; if `renice` is
/// missing or refuses, the thread just keeps the loop's priority (logged).
pub(super) fn lower_priority() -> Option<u32> {
    let tid: Option<u32> = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok());
    let Some(tid) = tid else {
        log::warn!("helper thread: no /proc/thread-self; it keeps the loop's priority");
        return None;
    };
    let ran = std::process::Command::new("renice")
        .args(["-n", &HELPER_NICE.to_string(), "-p", &tid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match ran {
        Ok(s) if s.success() => Some(tid),
        Ok(s) => {
            log::warn!("helper thread: renice {s}; it keeps the loop's priority");
            None
        }
        Err(e) => {
            log::warn!("helper thread: renice: {e}; it keeps the loop's priority");
            None
        }
    }
}

#[cfg(test)]
mod listener_tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The `flags:` of `fd` in `/proc/self/fdinfo`, in octal there.
    fn fd_flags(fd: &impl AsRawFd) -> u32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
            .expect("fdinfo");
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .expect("flags line");
        u32::from_str_radix(flags.trim(), 8).expect("octal flags")
    }

    /// The backlog of the listener on `addr`: `ss` shows it as the Send-Q
    /// of a listening socket.
    fn backlog(addr: SocketAddr) -> String {
        let out = std::process::Command::new("ss")
            .args(["-Hltn", &format!("src = {addr}")])
            .output()
            .expect("ss (iproute2) is needed; `make test` installs it");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .next()
            .unwrap_or_else(|| panic!("{addr}: {text}"));
        line.split_whitespace().nth(2).expect("Send-Q").to_string()
    }

    /// A `--reuse-port` listener is the one `--listen` makes without it
    /// (address reuse, backlog, non-blocking, close-on-exec, IPv6-only or
    /// not), and `SO_REUSEPORT` besides.
    #[test]
    fn a_reuse_port_listener_differs_only_by_so_reuseport() {
        for any in ["127.0.0.1:0", "[::1]:0", "[::]:0"] {
            let any: SocketAddr = any.parse().expect("address");
            let plain = TcpListener::bind(any).expect("mio bind");
            let shared = reuse_port_listener(any).expect("reuse-port bind");
            let (p, s) = (
                socket2::SockRef::from(&plain),
                socket2::SockRef::from(&shared),
            );
            assert!(!p.reuse_port().expect("reuse_port"), "{any}");
            assert!(s.reuse_port().expect("reuse_port"), "{any}");
            assert_eq!(p.reuse_address().ok(), s.reuse_address().ok(), "{any}");
            assert_eq!(p.nonblocking().ok(), s.nonblocking().ok(), "{any}");
            assert_eq!(p.is_listener().ok(), s.is_listener().ok(), "{any}");
            assert_eq!(p.r#type().ok(), s.r#type().ok(), "{any}");
            assert_eq!(p.protocol().ok(), s.protocol().ok(), "{any}");
            assert_eq!(fd_flags(&plain), fd_flags(&shared), "{any}");
            if any.is_ipv6() {
                assert_eq!(p.only_v6().ok(), s.only_v6().ok(), "{any}");
            }
            let (pa, sa) = (
                plain.local_addr().expect("addr"),
                shared.local_addr().expect("addr"),
            );
            assert_eq!(backlog(pa), backlog(sa), "{any}");
        }
    }

    /// Two `--reuse-port` listeners share an address; a listener without
    /// it cannot join them, nor can one with it join a plain listener.
    #[test]
    fn only_reuse_port_listeners_share_an_address() {
        let first = reuse_port_listener("127.0.0.1:0".parse().expect("address")).expect("bind");
        let addr = first.local_addr().expect("addr");
        let second = reuse_port_listener(addr).expect("a second reuse-port listener");
        assert_eq!(second.local_addr().expect("addr"), addr);
        let err = TcpListener::bind(addr).expect_err("a plain listener joined");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let plain = TcpListener::bind("127.0.0.1:0".parse().expect("address")).expect("bind");
        let err = reuse_port_listener(plain.local_addr().expect("addr"))
            .expect_err("joined a plain listener");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}

#[cfg(test)]
mod priority_tests {
    use super::*;

    /// The nice value of thread `tid` of this process: field 19 of its
    /// `stat` (after the parenthesised name, which may hold spaces).
    fn nice_of(tid: u32) -> i64 {
        let stat =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("thread stat");
        let after = &stat[stat.rfind(')').expect("name") + 2..];
        after
            .split(' ')
            .nth(16)
            .expect("nice field")
            .parse()
            .expect("number")
    }

    #[test]
    fn the_calling_thread_alone_goes_to_nice_19() {
        let me: u32 = std::fs::read_link("/proc/thread-self")
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let before = nice_of(me);
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let tid = lower_priority();
            tx.send(tid).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap().expect("renice works here");
        assert_eq!(nice_of(tid), i64::from(HELPER_NICE));
        assert_eq!(nice_of(me), before, "only the helper is lowered");
        done_tx.send(()).unwrap();
        t.join().unwrap();
    }
}
