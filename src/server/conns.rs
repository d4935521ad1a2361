//! The open connections: a `Slab` of [`Conn`]s, and the two things kept
//! about all of them together.
//!
//! - Lookups check the generation: a [`ConnId`] names one connection, and
//!   a timer, an effect or a list entry for a connection that has gone
//!   finds nothing, even when a new connection took its slot.
//! - Output goes through here: [`Conns::queue`] pushes bytes onto an
//!   outbox and marks the connection *dirty* (on the list the loop flushes
//!   before it sleeps), [`Conns::write_out`] writes, and
//!   [`Conns::remove`] drops what was never sent. That keeps the total of
//!   every outbox's length, which `pressure` weighs against
//!   `--max-outbound-total`, in one place: nothing else pushes onto or
//!   drains an outbox.

use std::io;

use bytes::Bytes;
use slab::Slab;

use super::conn::{Conn, ConnId};
use super::outbox::Flushed;

pub(super) struct Conns {
    slab: Slab<Conn>,
    /// The generation the next connection gets.
    next_gen: u32,
    /// Connections with output queued since their last flush.
    dirty: Vec<ConnId>,
    /// Sum of every outbox's length.
    bytes_queued: usize,
}

impl Conns {
    pub(super) fn new() -> Conns {
        Conns {
            slab: Slab::new(),
            next_gen: 1,
            dirty: Vec::new(),
            bytes_queued: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Conn> {
        self.slab.iter().map(|(_, c)| c)
    }

    /// The connection `id`, if it is still open.
    pub(super) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab.get(id.key()).filter(|c| c.id == id)
    }

    /// The connection `id`, if it is still open.
    pub(super) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        find(&mut self.slab, id)
    }

    /// The connection in slot `key`, whatever its generation: readiness
    /// events carry slab keys (`Token(key)`), and an event for a slot
    /// reaped and reused since is a spurious one for its new connection,
    /// which every handler tolerates.
    pub(super) fn at_token(&mut self, key: usize) -> Option<&mut Conn> {
        self.slab.get_mut(key)
    }

    /// Adds a connection: `make` is given its id (a free slot and a fresh
    /// generation) and builds it, or fails and nothing is added.
    pub(super) fn insert(
        &mut self,
        make: impl FnOnce(ConnId) -> io::Result<Conn>,
    ) -> io::Result<ConnId> {
        let entry = self.slab.vacant_entry();
        let id = ConnId::new(entry.key(), self.next_gen);
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = make(id)?;
        debug_assert!(conn.id == id && conn.outbox.is_empty());
        entry.insert(conn);
        Ok(id)
    }

    /// Takes the connection out; what its outbox still held is no longer
    /// queued.
    pub(super) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        self.get(id)?;
        let conn = self.slab.remove(id.key());
        self.bytes_queued -= conn.outbox.len();
        Some(conn)
    }

    /// Queues bytes for a connection and schedules its flush. Nothing is
    /// decided here: whether a connection is behind is judged after the
    /// flush, on what its socket did not take (see `pressure`).
    pub(super) fn queue(&mut self, id: ConnId, bytes: Bytes) {
        let Some(conn) = find(&mut self.slab, id) else {
            return;
        };
        self.bytes_queued += bytes.len();
        conn.outbox.push(bytes);
        mark(conn, &mut self.dirty);
    }

    /// Puts the connection on the list to flush before the loop sleeps,
    /// once.
    pub(super) fn mark_dirty(&mut self, id: ConnId) {
        if let Some(conn) = find(&mut self.slab, id) {
            mark(conn, &mut self.dirty);
        }
    }

    /// Some connection has output waiting for its flush.
    pub(super) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The connections marked since the last call, in the order they were
    /// marked. Each stays marked until [`Conns::flushing`] takes it.
    pub(super) fn take_dirty(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.dirty)
    }

    /// A connection from [`Conns::take_dirty`] about to be flushed: it is
    /// no longer marked, so output queued from now on marks it again.
    pub(super) fn flushing(&mut self, id: ConnId) -> Option<&mut Conn> {
        let conn = self.get_mut(id)?;
        conn.dirty = false;
        Some(conn)
    }

    /// Drops what is queued for the connection except the unsent rest of
    /// a chunk already partly written (see `Outbox::discard_unstarted`).
    pub(super) fn discard_unstarted(&mut self, id: ConnId) {
        if let Some(conn) = find(&mut self.slab, id) {
            self.bytes_queued -= conn.outbox.discard_unstarted();
        }
    }

    /// Writes what the connection's socket takes of its queue, at most
    /// `budget` bytes. Gives back the connection with the outcome and the
    /// bytes written.
    pub(super) fn write_out(
        &mut self,
        id: ConnId,
        budget: usize,
    ) -> Option<(&mut Conn, io::Result<(Flushed, usize)>)> {
        let conn = find(&mut self.slab, id)?;
        let before = conn.outbox.len();
        let mut res = conn.outbox.flush(&mut conn.stream, budget);
        if let Ok((Flushed::All, n)) = res {
            // TLS: the last records may still wait for the socket (or the
            // handshake's, with nothing queued): the flush is over only
            // once they are out.
            res = match conn.stream.push_records() {
                Ok(()) => Ok((Flushed::All, n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((Flushed::WouldBlock, n)),
                Err(e) => Err(e),
            };
        }
        // What left the outbox, whatever the result: a write that fails
        // after others went out has still sent those.
        self.bytes_queued -= before - conn.outbox.len();
        Some((conn, res))
    }

    /// Bytes queued in every outbox together.
    pub(super) fn bytes_queued(&self) -> usize {
        self.bytes_queued
    }
}

/// The generation check: a slot holds the connection `id` only if the
/// generations match. (A free function, so that callers can still use
/// the other fields of `Conns` while they hold the connection.)
fn find(slab: &mut Slab<Conn>, id: ConnId) -> Option<&mut Conn> {
    slab.get_mut(id.key()).filter(|c| c.id == id)
}

/// Puts the connection on the dirty list unless it is on it already.
fn mark(conn: &mut Conn, dirty: &mut Vec<ConnId>) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(conn.id);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Instant;

    use mio::net::TcpStream;

    use crate::server::stream::Stream;

    use super::*;

    /// A connected pair: the server's side as a `Conn`'s stream, and the
    /// peer's.
    fn pair() -> (TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let peer =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (ours, _) = listener.accept().expect("accept");
        ours.set_nonblocking(true).expect("nonblocking");
        (TcpStream::from_std(ours), peer)
    }

    fn add(conns: &mut Conns) -> (ConnId, std::net::TcpStream) {
        let (stream, peer) = pair();
        let addr = peer.local_addr().expect("addr");
        let id = conns
            .insert(|id| Ok(Conn::new(id, Stream::new(stream), addr, Instant::now())))
            .expect("insert");
        (id, peer)
    }

    #[test]
    fn the_total_follows_queue_write_discard_and_remove() {
        let mut conns = Conns::new();
        let (a, mut peer_a) = add(&mut conns);
        let (b, _peer_b) = add(&mut conns);
        conns.queue(a, Bytes::from_static(b"hello\n"));
        conns.queue(a, Bytes::from_static(b"again\n"));
        conns.queue(b, Bytes::from_static(b"0123456789"));
        assert_eq!(conns.bytes_queued(), 22);
        assert_eq!(conns.take_dirty(), [a, b], "each marked once, in order");
        assert!(!conns.has_dirty());

        let (_, res) = conns.write_out(a, 1024).expect("open");
        assert_eq!(res.expect("write"), (Flushed::All, 12));
        assert_eq!(conns.bytes_queued(), 10);
        let mut got = [0u8; 12];
        peer_a.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hello\nagain\n");

        conns.discard_unstarted(b);
        assert_eq!(conns.bytes_queued(), 0);
        conns.queue(b, Bytes::from_static(b"bye\n"));
        let gone = conns.remove(b).expect("open");
        assert_eq!(gone.outbox.len(), 4);
        assert_eq!(conns.bytes_queued(), 0, "a removed outbox is not queued");
        assert_eq!(conns.len(), 1);
    }

    #[test]
    fn an_id_from_a_reused_slot_finds_nothing() {
        let mut conns = Conns::new();
        let (old, _peer) = add(&mut conns);
        assert!(conns.remove(old).is_some());
        let (new, _peer2) = add(&mut conns);
        assert_eq!(old.key(), new.key(), "the slot is reused");
        assert_ne!(old, new);
        assert!(conns.get(old).is_none());
        assert!(conns.remove(old).is_none());
        conns.queue(old, Bytes::from_static(b"stale\n"));
        conns.mark_dirty(old);
        assert_eq!(conns.bytes_queued(), 0);
        assert!(!conns.has_dirty());
        assert!(conns.get(new).is_some());
        assert_eq!(conns.at_token(old.key()).map(|c| c.id), Some(new));
    }

    #[test]
    fn flushing_unmarks_so_new_output_marks_again() {
        let mut conns = Conns::new();
        let (a, _peer) = add(&mut conns);
        conns.queue(a, Bytes::from_static(b"x"));
        conns.mark_dirty(a);
        assert_eq!(conns.take_dirty(), [a]);
        conns.queue(a, Bytes::from_static(b"y"));
        assert!(!conns.has_dirty(), "still marked until it is flushed");
        assert!(conns.flushing(a).is_some_and(|c| !c.dirty));
        conns.queue(a, Bytes::from_static(b"z"));
        assert_eq!(conns.take_dirty(), [a]);
    }
}
