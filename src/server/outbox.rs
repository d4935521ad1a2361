//! A connection's unsent output: shared `Bytes` chunks and their total.
//!
//! Chunks are refcounted slices, usually the same `Bytes` queued to every
//! recipient of an event, so queueing costs a refcount bump, not a copy.
//! A flush gathers the queued chunks into one vectored write (`writev`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes};

/// Most chunks handed to one `writev` call (Linux allows 1024).
const MAX_IOVECS: usize = 64;
/// Queue capacity (in chunks, 32 bytes each) kept after a flush: a
/// recipient that is sent several messages every turn reuses its queue
/// instead of growing it again (4 reallocations a turn at 10 messages).
const KEEP_CHUNKS: usize = 128;

#[derive(Default, Debug)]
pub(super) struct Outbox {
    chunks: VecDeque<Bytes>,
    /// Invariant: the sum of `chunks[i].len()`.
    len: usize,
    /// The front chunk was partly written: its rest must go out before
    /// anything else, or the peer sees a torn line or frame.
    front_started: bool,
}

/// How a flush ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    /// Everything queued was written.
    All,
    /// The socket's send buffer is full: wait for a writable event.
    WouldBlock,
    /// This flush wrote its budget; the rest goes in the next turn.
    Budget,
}

impl Outbox {
    pub(super) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes queued and not yet written.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops everything queued (the connection is going away now).
    pub(super) fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.len = 0;
        self.front_started = false;
    }

    /// Drops what is queued, except the unsent rest of a chunk already
    /// partly written, which the stream needs to stay well-formed; returns
    /// the bytes dropped.
    pub(super) fn discard_unstarted(&mut self) -> usize {
        let keep = if self.front_started {
            self.chunks.pop_front()
        } else {
            None
        };
        let dropped = self.len - keep.as_ref().map_or(0, |c| c.len());
        self.clear();
        if let Some(chunk) = keep {
            self.len = chunk.len();
            self.chunks.push_back(chunk);
            self.front_started = true;
        }
        dropped
    }

    /// Writes until the queue is empty, the writer would block, or `budget`
    /// bytes are written. Returns the outcome and the bytes written; a real
    /// error is returned as such.
    pub(super) fn flush(
        &mut self,
        w: &mut impl Write,
        budget: usize,
    ) -> io::Result<(Flushed, usize)> {
        let mut written = 0;
        while !self.chunks.is_empty() {
            if written >= budget {
                return Ok((Flushed::Budget, written));
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(&self.chunks) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            // One chunk goes by `send`, which on a socket skips the VFS
            // layer `writev` passes through (about 8% cheaper on loopback).
            let wrote = match count {
                1 => w.write(&slices[0]),
                _ => w.write_vectored(&slices[..count]),
            };
            match wrote {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok((Flushed::WouldBlock, written))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // A queue that grew past a busy loop turn's worth (a burst, a slow
        // reader catching up) is given back; a smaller one is kept, so a
        // busy recipient does not reallocate it on every turn.
        if self.chunks.capacity() > KEEP_CHUNKS {
            self.chunks = VecDeque::new();
        }
        Ok((Flushed::All, written))
    }

    /// Forgets the first `n` bytes: whole chunks popped, a partial one advanced.
    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
                self.front_started = false;
            } else {
                front.advance(n);
                self.front_started = true;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call, then blocks after
    /// `budget` bytes in total.
    struct Trickle {
        got: Vec<u8>,
        cap: usize,
        budget: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.cap - n).min(self.budget);
                self.got.extend_from_slice(&b[..take]);
                n += take;
                self.budget -= take;
                if n == self.cap || self.budget == 0 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Takes `ok` bytes, then fails as a reset peer does.
    struct Breaks {
        ok: usize,
    }

    impl Write for Breaks {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self.ok.min(buf.len()) {
                0 => Err(io::ErrorKind::ConnectionReset.into()),
                n => {
                    self.ok -= n;
                    Ok(n)
                }
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn what_went_out_before_an_error_has_left_the_queue() {
        // The shell keeps its queued-bytes total by the queue's length
        // before and after a flush, error or not.
        let mut ob = Outbox::default();
        ob.push(Bytes::from_static(b"first\n"));
        ob.push(Bytes::from_static(b"second\n"));
        assert!(ob.flush(&mut Breaks { ok: 8 }, usize::MAX).is_err());
        assert_eq!(ob.len(), 13 - 8);
    }

    #[test]
    fn a_busy_turn_keeps_its_queue_and_a_burst_gives_it_back() {
        let mut w = Trickle {
            got: Vec::new(),
            cap: usize::MAX,
            budget: usize::MAX,
        };
        let mut ob = Outbox::default();
        assert_eq!(ob.chunks.capacity(), 0, "a new connection holds no queue");
        for n in [20, 20, KEEP_CHUNKS + 1] {
            for i in 0..n {
                ob.push(Bytes::from(format!("m{i}\n")));
            }
            assert_eq!(ob.flush(&mut w, usize::MAX).unwrap().0, Flushed::All);
            assert!(ob.is_empty());
            if n <= KEEP_CHUNKS {
                assert!(ob.chunks.capacity() >= n, "kept for the next turn");
            } else {
                assert_eq!(ob.chunks.capacity(), 0, "a burst's queue is freed");
            }
        }
    }

    #[test]
    fn discarding_keeps_the_rest_of_a_started_chunk() {
        let mut ob = Outbox::default();
        for c in ["first line\n", "second\n", "third\n"] {
            ob.push(Bytes::from(c));
        }
        assert_eq!(ob.discard_unstarted(), 24, "nothing started: all dropped");
        assert!(ob.is_empty());
        for c in ["first line\n", "second\n", "third\n"] {
            ob.push(Bytes::from(c));
        }
        let mut w = Trickle {
            got: Vec::new(),
            cap: 100,
            budget: 4,
        };
        assert_eq!(ob.flush(&mut w, usize::MAX).unwrap().0, Flushed::WouldBlock);
        assert_eq!(ob.discard_unstarted(), 13);
        assert_eq!(ob.len(), 7);
        ob.push(Bytes::from("bye\n"));
        w.budget = usize::MAX;
        ob.flush(&mut w, usize::MAX).unwrap();
        assert_eq!(w.got, b"first line\nbye\n");
        // A chunk written whole leaves nothing started.
        ob.push(Bytes::from("x\n"));
        assert_eq!(ob.discard_unstarted(), 2);
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut expected = Vec::new();
        let mut ob = Outbox::default();
        for i in 0..200u32 {
            let chunk = format!("chunk {i};").into_bytes();
            expected.extend_from_slice(&chunk);
            ob.push(Bytes::from(chunk));
        }
        ob.push(Bytes::new());
        assert_eq!(ob.len(), expected.len());
        for cap in [1, 3, 7, 100, 10_000] {
            let mut ob2 = Outbox::default();
            ob2.push(Bytes::from(expected.clone()));
            let mut w = Trickle {
                got: Vec::new(),
                cap,
                budget: 50,
            };
            assert_eq!(
                ob2.flush(&mut w, usize::MAX).unwrap(),
                (Flushed::WouldBlock, 50)
            );
            assert_eq!(ob2.len(), expected.len() - 50);
            w.budget = usize::MAX;
            assert_eq!(ob2.flush(&mut w, usize::MAX).unwrap().0, Flushed::All);
            assert_eq!(w.got, expected);
            assert!(ob2.is_empty());
        }
        let mut w = Trickle {
            got: Vec::new(),
            cap: 5,
            budget: usize::MAX,
        };
        let (how, n) = ob.flush(&mut w, usize::MAX).unwrap();
        assert_eq!((how, n), (Flushed::All, expected.len()));
        assert_eq!(w.got, expected);
        assert_eq!(ob.len(), 0);
    }

    #[test]
    fn a_flush_stops_at_its_budget_and_goes_on_later() {
        let mut ob = Outbox::default();
        for i in 0..10u8 {
            ob.push(Bytes::from(vec![i; 100]));
        }
        let mut w = Trickle {
            got: Vec::new(),
            cap: 150,
            budget: usize::MAX,
        };
        // 150 + 150 = 300 >= 250: stops after the call that passes it.
        assert_eq!(ob.flush(&mut w, 250).unwrap(), (Flushed::Budget, 300));
        assert_eq!(ob.len(), 700);
        while ob.flush(&mut w, 250).unwrap().0 == Flushed::Budget {}
        assert!(ob.is_empty());
        let want: Vec<u8> = (0..10u8).flat_map(|i| vec![i; 100]).collect();
        assert_eq!(w.got, want);
    }
}
