//! natter: a chat server on one thread, one `mio::Poll` loop, one port.
//!
//! Module map, in reading order:
//!
//! - [`config`]: every option, named after its `--flag`.
//! - [`accounts_cli`]: `natter accounts ...`, the operator's commands on
//!   the database's accounts; [`password`]: Argon2id hashes and login
//!   tokens' hashes.
//! - [`server`]: the imperative shell. The only code that touches sockets:
//!   the poll loop, accepting, reading until `WouldBlock`, outboxes, timers,
//!   closing. It moves bytes between sockets and the pure parts below.
//! - [`proto`]: sans-I/O codecs. `sniff` decides what a connection speaks
//!   from its first bytes; `line` frames, parses and renders the netcat
//!   protocol. Bytes in, events out; no mio, no clock.
//! - [`hub`]: the deterministic chat core. Rooms, nicks, presence, direct
//!   messages, history rules. Commands in, effects out, time passed in;
//!   what it needs stored or read goes out as requests through its
//!   persistence port (`hub::port`) and the answers come back in.
//! - [`store`]: message history behind a trait that answers the hub's
//!   requests, so the hub never sees SQL.
//!
//! Dependencies point one way: `server` -> `proto`, `hub`, `store`;
//! `proto` uses `hub`'s vocabulary types; `store` implements `hub`'s port;
//! `hub` and `proto` never import mio, SQL, `store` or `server`
//! (`tests/architecture.rs`).
//!
//! One loop iteration: poll -> for each ready socket, read until
//! `WouldBlock` -> decode -> `Hub::handle` -> before sleeping: timers,
//! commit the iteration's messages, render each event once per wire format,
//! queue the same `Bytes` to every recipient, flush each outbox with one
//! vectored write, reap closed connections.

#![forbid(unsafe_code)]
// Every public item says what it is (CI denies warnings).
#![warn(missing_docs)]
// Nothing a client sends may panic the server; tests may unwrap freely.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod accounts_cli;
pub mod config;
pub mod hub;
pub mod password;
pub mod proto;
pub mod server;
pub mod store;
pub mod tls;

#[cfg(test)]
pub(crate) mod testrng;
