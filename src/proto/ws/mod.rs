//! RFC 6455 WebSocket, sans I/O: the upgrade answer, frame layout, and a
//! decoder that checks and reassembles what a client sends.
//!
//! - [`handshake`]: `Sec-WebSocket-Key` check, `Sec-WebSocket-Accept`, the
//!   `101` answer. The HTTP layer decides that a request is an upgrade.
//! - [`frame`]: header layout, masking, close codes, and the encoders for
//!   the server's frames (never masked, so one encoding serves every client).
//! - [`decoder`]: client frames in, [`Incoming`] events out; every rule a
//!   client can break is one check there, with its close code in one place.
//! - [`utf8`]: UTF-8 validation that keeps its state across fragments.
//!
//! Nothing here reads a socket, a clock or the hub: bytes in, events and
//! bytes out. The shell answers every ping with a pong (up to 32 per read, then the
//! newest replaces the last), echoes a
//! close code, and sends the close frame a [`WsError`] names.
//!
//! Read next: `decoder.rs`, then `server::ws` (who drives it).

pub mod decoder;
pub mod frame;
pub mod handshake;
pub mod utf8;

pub use decoder::{Decoder, Incoming, WsError};
pub use frame::{
    close, encode_binary, encode_client_frame, encode_close, encode_ping, encode_pong, encode_text,
    is_valid_close_code,
};
pub use handshake::{accept_key, switching_protocols, valid_client_key, GUID};
