//! Sans-I/O codecs: bytes in, events out. No mio, no clock, no SQL here.
//!
//! `sniff` decides what a connection speaks, `line` is the netcat protocol,
//! `http` parses requests and renders responses, `ws` is RFC 6455 framing
//! and the upgrade handshake, `json` the WebSocket chat protocol, `resp`
//! the Redis protocol (RESP2) that `--redis` speaks.

pub mod http;
pub mod json;
pub mod line;
pub mod resp;
pub mod sniff;
pub mod ws;
