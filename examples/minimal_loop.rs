//! The smallest mio broadcast loop that is still correct: every line a
//! client sends goes to every other client. One thread, no locks.
//!
//!     cargo run --example minimal_loop -- --listen 127.0.0.1:7880
//!
//! The stepping stone from examples/threaded.rs to src/server/mod.rs. Break
//! any of these rules and the loop works in a demo and hangs in production:
//!
//! - register each socket once, READABLE | WRITABLE: mio is edge-triggered,
//!   an event says "this changed", not "this is so";
//! - so accept until `WouldBlock`, read until `WouldBlock`: what is left is
//!   never announced again;
//! - never block in `write`: queue output per connection, write what the
//!   kernel takes, keep the rest for the next writable event;
//! - remove a connection on EOF or error, and never touch its key again.
//!
//! natter adds a bound on each queue (here a client that stops reading
//! grows its queue forever; natter drops it past `--max-outbound`), a bound
//! on lines, a read budget per wake-up, timers, `writev`, and protocols.

#![forbid(unsafe_code)]

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const LISTENER: Token = Token(usize::MAX);

struct Client {
    stream: TcpStream,
    input: Vec<u8>,  // bytes read, up to an unfinished line
    output: Vec<u8>, // bytes the kernel has not taken yet
}

/// Runs until `stop` is set and any event wakes the loop (a connection will do).
pub fn serve(listener: std::net::TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut clients: Slab<Client> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::SeqCst) {
        match poll.poll(&mut events, None) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other?,
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(&listener, &poll, &mut clients)?;
                continue;
            }
            let key = event.token().0;
            let Some(client) = clients.get_mut(key) else {
                continue; // an event for a client removed earlier in this batch
            };
            let mut closed = false;
            if event.is_writable() {
                closed |= flush(client).is_err();
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                closed |= read_all(client, &mut buf);
            }
            // The complete lines, as one block, go into every other queue.
            let mut dead = if closed { vec![key] } else { Vec::new() };
            if let Some(end) = clients[key].input.iter().rposition(|&b| b == b'\n') {
                let lines: Vec<u8> = clients[key].input.drain(..=end).collect();
                for (other, c) in clients.iter_mut().filter(|(k, _)| *k != key) {
                    c.output.extend_from_slice(&lines);
                    if flush(c).is_err() {
                        dead.push(other);
                    }
                }
            }
            // A freed key is reused by the next accept: a stale event for it
            // only gets `WouldBlock` (natter adds a generation to each key).
            for k in dead {
                if clients.contains(k) {
                    let mut gone = clients.remove(k);
                    let _ = poll.registry().deregister(&mut gone.stream);
                }
            }
        }
    }
    Ok(())
}

/// Accepts until `WouldBlock`: one event may stand for many connections.
fn accept_all(listener: &TcpListener, poll: &Poll, clients: &mut Slab<Client>) -> io::Result<()> {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                eprintln!("minimal_loop: accept: {e}"); // EMFILE: natter pauses on a timer
                return Ok(());
            }
        };
        let slot = clients.vacant_entry();
        let both = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, Token(slot.key()), both)?;
        slot.insert(Client {
            stream,
            input: Vec::new(),
            output: Vec::new(),
        });
    }
}

/// Reads until `WouldBlock`; true when the client is gone (EOF or error).
fn read_all(client: &mut Client, buf: &mut [u8]) -> bool {
    loop {
        match client.stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => client.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true, // EINTR cannot happen on a nonblocking socket
        }
    }
}

/// Writes what the kernel takes; a short write keeps the rest queued, and a
/// writable event brings us back for it.
fn flush(client: &mut Client) -> io::Result<()> {
    while !client.output.is_empty() {
        match client.stream.write(&client.output) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => drop(client.output.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip_while(|a| a != "--listen").skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7880".into());
    let listener = std::net::TcpListener::bind(addr)?;
    println!("minimal_loop listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    serve(listener, Arc::new(AtomicBool::new(false)))
}
