//! Sans-I/O codecs: bytes in, events out. No mio, no clock, no SQL here.
//!
//! `sniff` decides what a connection speaks, `line` is the netcat protocol.

pub mod line;
pub mod sniff;
