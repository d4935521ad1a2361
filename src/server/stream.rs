//! A connection's one way in and out: its TCP socket, and once a first
//! byte `0x16` has started TLS, the rustls session over it.
//!
//! `Stream` is `Read` and `Write` like the socket it wraps, so the read
//! path (`Server::on_readable`), the flush (`Outbox::flush`) and every
//! protocol above them are the same for plain and TLS connections:
//!
//! - reading takes the session's decrypted bytes first; when there are
//!   none, it reads TLS records from the socket (`read_tls`), decrypts
//!   them (`process_new_packets`) and tries again; `WouldBlock` means
//!   both are empty, as for a plain socket (edge-triggered readiness stays
//!   correct: nothing is left unread that no new event would announce);
//! - writing hands plaintext to the session, which encrypts it, then
//!   writes the records to the socket (`write_tls`) until it would block.
//!   The session buffers at most `tls::BUFFER_LIMIT` bytes of records; when
//!   that is full and the socket takes nothing, the write is `WouldBlock`;
//! - `pending` says records are still waiting for the socket after the
//!   outbox is empty (the handshake's, or the last of a flush): the
//!   connection then waits for a writable event like any full socket.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::server::ServerConnection;
use rustls::ServerConfig;

pub(super) struct Stream {
    tcp: TcpStream,
    tls: Option<Tls>,
}

struct Tls {
    conn: Box<ServerConnection>,
    /// The handshake has finished and nobody has asked yet
    /// (`take_handshake_done`).
    done_unseen: bool,
}

/// What starting TLS on a connection came to.
pub(super) enum Started {
    /// The session is under way (the ClientHello may still be incomplete).
    Ok,
    /// The first bytes are not TLS rustls accepts; its alert, if any, was
    /// sent. Close the connection.
    Refused(String),
}

impl Stream {
    pub(super) fn new(tcp: TcpStream) -> Stream {
        Stream { tcp, tls: None }
    }

    pub(super) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// TLS and the handshake not yet finished.
    pub(super) fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.conn.is_handshaking())
    }

    /// Whether the handshake finished since the last call.
    pub(super) fn take_handshake_done(&mut self) -> bool {
        self.tls
            .as_mut()
            .is_some_and(|t| std::mem::take(&mut t.done_unseen))
    }

    /// The TLS version and cipher suite, for the log.
    pub(super) fn describe_tls(&self) -> String {
        match &self.tls {
            Some(t) => format!(
                "{:?} {:?}",
                t.conn.protocol_version(),
                t.conn.negotiated_cipher_suite().map(|s| s.suite())
            ),
            None => "plain".to_string(),
        }
    }

    /// Starts TLS with the bytes the sniffer read (the ClientHello, or its
    /// start). Its answer, if it has one yet, waits in the session:
    /// `pending` is then true.
    pub(super) fn start_tls(&mut self, config: &Arc<ServerConfig>, first: &[u8]) -> Started {
        match crate::tls::start(config, first) {
            Ok(conn) => {
                let done = !conn.is_handshaking();
                self.tls = Some(Tls {
                    conn,
                    done_unseen: done,
                });
                Started::Ok
            }
            Err(crate::tls::Refused { conn, why }) => {
                if let Some(mut conn) = conn {
                    // The alert, best effort: the connection closes anyway.
                    let _ = conn.write_tls(&mut self.tcp);
                }
                Started::Refused(why)
            }
        }
    }

    /// Records the session has made that the socket has not taken yet.
    pub(super) fn pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.conn.wants_write())
    }

    /// Writes the session's records to the socket until there are none
    /// or it would block (`Err(WouldBlock)`).
    pub(super) fn push_records(&mut self) -> io::Result<()> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        while tls.conn.wants_write() {
            match tls.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Our side is done: TLS says so with `close_notify` (best effort:
    /// everything else was flushed before), then TCP's write side shuts.
    pub(super) fn shutdown_write(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.conn.send_close_notify();
            let _ = self.push_records();
        }
        let _ = self.tcp.shutdown(Shutdown::Write);
    }

    /// Reads the raw socket, bypassing TLS: for draining a connection that
    /// is being closed.
    pub(super) fn drain_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }

    /// One `read_tls` and `process_new_packets`: `Ok(false)` at the end of
    /// the TCP stream. A TLS error is `InvalidData` (the alert it makes
    /// goes out first, best effort).
    fn read_records(tls: &mut Tls, tcp: &mut TcpStream) -> io::Result<bool> {
        match tls.conn.read_tls(tcp) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        let was_handshaking = tls.conn.is_handshaking();
        if let Err(e) = tls.conn.process_new_packets() {
            let _ = tls.conn.write_tls(tcp);
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
        if was_handshaking && !tls.conn.is_handshaking() {
            tls.done_unseen = true;
        }
        Ok(true)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return self.tcp.read(buf);
        };
        loop {
            match tls.conn.reader().read(buf) {
                // 0 after the peer's close_notify: the end of the stream.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The TCP stream ended without a close_notify: for a chat
                // client as good as an end (no length is at stake).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if !Stream::read_records(tls, &mut self.tcp)? {
                // End of TCP: what the session still holds was read above.
                return Ok(0);
            }
            // The handshake's answer goes out now: the peer waits for it.
            if tls.conn.wants_write() {
                match tls.conn.write_tls(&mut self.tcp) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return match bufs {
                [one] => self.tcp.write(one),
                _ => self.tcp.write_vectored(bufs),
            };
        }
        loop {
            let Some(tls) = self.tls.as_mut() else {
                return Ok(0);
            };
            let taken = tls.conn.writer().write_vectored(bufs)?;
            if taken == 0 && bufs.iter().all(|b| b.is_empty()) {
                return Ok(0);
            }
            // Nothing taken and no records to make room with: the session
            // holds plaintext until its handshake is over (output is only
            // queued after it, so this does not happen; if it did, the
            // connection would wait rather than spin).
            let stuck = taken == 0 && !tls.conn.wants_write();
            let pushed = self.push_records();
            if taken > 0 {
                // The plaintext is the session's now; records the socket
                // did not take wait for the next flush (`pending`).
                return match pushed {
                    Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
                    _ => Ok(taken),
                };
            }
            if stuck {
                return Err(ErrorKind::WouldBlock.into());
            }
            // The session's buffer was full: the socket took some of it
            // (loop, and the session takes more) or nothing (`WouldBlock`).
            pushed?;
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.push_records()
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}
