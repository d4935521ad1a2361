//! Checking and reassembling a client's frames (RFC 6455 §5, §7.4, §8.1).
//!
//! [`Decoder::decode`] takes whatever bytes the socket gave and calls back
//! with each complete text message (fragments reassembled) and each control
//! frame, in order. Every RFC rule a client can break is one check in
//! `start_frame` (headers), `take_payload` and `finish_frame` (UTF-8) or
//! `parse_close`, quoting the rule; `Violation::error` is the one place that
//! gives each its close code. The first violation is final: the decoder
//! stays failed and repeats the error, so the shell sends one close frame.
//!
//! Memory: masked bytes are never buffered. A payload is unmasked straight
//! from the caller's input into the reassembly buffer (one copy, which
//! unmasking needs anyway), so a frame that arrives whole costs no more than
//! one that trickles in. What is kept between calls is an unfinished header
//! (at most 14 bytes), an unfinished control payload (at most 125) and the
//! message so far, which can never exceed `max_message`: a frame whose header
//! announces more is refused before any of its payload is taken. Between
//! messages at most [`IDLE_CAPACITY`] bytes stay allocated.
//!
//! Never here: writing, answering (the shell queues the pong for a
//! [`Incoming::Ping`] and echoes a [`Incoming::Close`]), timers, JSON.
//!
//! Read next: `frame.rs` (the layout), `server::ws` (who feeds this and
//! queues the answers).

use std::fmt;

use super::frame::{self, close, opcode, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER};
use super::utf8::Utf8Validator;

/// What a client sent, once it is complete and valid.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    /// One complete message (fragments reassembled), valid UTF-8.
    Text(&'a str),
    /// One complete binary message; only from a decoder made with
    /// [`Decoder::accepting_binary`] (the chat protocol is text only).
    Binary(&'a [u8]),
    /// A ping's application data (at most 125 bytes), to be answered by a
    /// pong carrying the same data (§5.5.2, §5.5.3).
    Ping(&'a [u8]),
    /// A pong's application data (§5.5.3): the answer to a ping, or an
    /// unsolicited heartbeat. It needs no answer.
    Pong(&'a [u8]),
    /// A valid close frame; after it the decoder accepts nothing more.
    Close {
        /// The status code (§7.4), already checked with
        /// [`is_valid_close_code`](super::frame::is_valid_close_code);
        /// `None` for a close frame without a body.
        code: Option<u16>,
        /// The reason after the code, valid UTF-8 (§5.5.1); empty when
        /// there is none.
        reason: &'a str,
    },
}

/// A client broke RFC 6455: close with `code` (1002, 1003, 1007 or 1009),
/// `reason` as the close reason (it always fits in a close frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    /// The close code to send (§7.4.1): 1002 for a framing rule broken,
    /// 1003 for a binary message, 1007 for text that is not UTF-8, 1009 for
    /// a message over `max_message`.
    pub code: u16,
    /// What the client did wrong, in a few words: the close frame's reason.
    pub reason: &'static str,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

impl std::error::Error for WsError {}

/// Every way a client can break the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Violation {
    Unmasked,
    ReservedBits,
    ReservedOpcode,
    LengthTopBit,
    ControlTooLong,
    FragmentedControl,
    StrayContinuation,
    InterleavedMessage,
    Binary,
    TooBig,
    BadUtf8,
    CloseBodyTooShort,
    BadCloseCode,
    BadCloseReason,
}

impl Violation {
    /// The one place a violation gets its close code (§7.4.1): 1002 for
    /// breaking the framing rules, 1003 for data natter does not take, 1007
    /// for text that is not UTF-8, 1009 for a message over the limit.
    const fn error(self) -> WsError {
        use Violation::*;
        let (code, reason) = match self {
            Unmasked => (close::PROTOCOL, "client frames must be masked"),
            ReservedBits => (close::PROTOCOL, "reserved bits set, no extension agreed"),
            ReservedOpcode => (close::PROTOCOL, "reserved opcode"),
            LengthTopBit => (close::PROTOCOL, "64-bit length with its top bit set"),
            ControlTooLong => (close::PROTOCOL, "control frame over 125 bytes"),
            FragmentedControl => (close::PROTOCOL, "fragmented control frame"),
            StrayContinuation => (close::PROTOCOL, "continuation frame outside a message"),
            InterleavedMessage => (close::PROTOCOL, "new message inside a fragmented one"),
            Binary => (close::UNSUPPORTED, "binary messages are not accepted"),
            TooBig => (close::TOO_BIG, "message too big"),
            BadUtf8 => (close::INVALID_DATA, "text message is not valid UTF-8"),
            CloseBodyTooShort => (close::PROTOCOL, "close frame with a 1-byte body"),
            BadCloseCode => (close::PROTOCOL, "invalid close code"),
            BadCloseReason => (close::INVALID_DATA, "close reason is not valid UTF-8"),
        };
        WsError { code, reason }
    }
}

/// Reassembly capacity kept between messages; a bigger buffer is freed once
/// its message is out, so idle connections hold no big buffers.
pub const IDLE_CAPACITY: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// A close frame was received: nothing more is read.
    Closed,
    /// A violation was found: every call repeats it.
    Failed(WsError),
}

/// Where the decoder is inside the frame stream.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Between frames: the first `len` bytes of a header that has not fully
    /// arrived (`len == 0` when none has started).
    Header { buf: [u8; MAX_HEADER], len: usize },
    /// Inside the payload of a frame that passed every header check.
    Payload(Payload),
}

const NO_HEADER: Stage = Stage::Header {
    buf: [0; MAX_HEADER],
    len: 0,
};

/// An accepted frame whose payload is being taken.
#[derive(Clone, Copy, Debug)]
struct Payload {
    /// The frame's own opcode: `CONTINUATION` for a continuation.
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes taken so far: the key's phase for the next byte and,
    /// for a control frame, how much of `Decoder::control` is filled.
    done: usize,
    /// Payload bytes still to come. Never more than the limits checked in
    /// `start_frame`, so it fits a `usize` and the buffers.
    remaining: usize,
}

/// An RFC 6455 frame decoder for the server side of one connection.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    state: State,
    stage: Stage,
    /// The unmasked payload so far of the text message being received.
    /// Invariant: `len() <= max_message` and `capacity() <= max_message`
    /// (or `<= IDLE_CAPACITY` between messages).
    message: Vec<u8>,
    /// A text frame without FIN has started a message that continuation
    /// frames must finish.
    in_message: bool,
    /// The UTF-8 state of `message`'s bytes fed so far, to fail before the
    /// message ends.
    utf8: Utf8Validator,
    /// Binary messages are delivered rather than refused with 1003.
    accept_binary: bool,
    /// The message being received is binary (no UTF-8 to check).
    binary: bool,
    /// The unmasked payload of the control frame being received. Separate
    /// from `message` because control frames may come between fragments.
    control: [u8; MAX_CONTROL_PAYLOAD],
}

impl Decoder {
    /// A decoder that refuses (1009) any message whose total payload,
    /// across its fragments, would exceed `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            state: State::Open,
            stage: NO_HEADER,
            message: Vec::new(),
            in_message: false,
            utf8: Utf8Validator::new(),
            accept_binary: false,
            binary: false,
            control: [0; MAX_CONTROL_PAYLOAD],
        }
    }

    /// The same decoder, delivering binary messages as [`Incoming::Binary`]
    /// instead of failing with 1003: for the echo endpoint that the
    /// Autobahn TestSuite checks the codec through.
    pub fn accepting_binary(mut self) -> Decoder {
        self.accept_binary = true;
        self
    }

    /// Feeds bytes; calls `on` for every complete message or control frame,
    /// in order; keeps only an unfinished frame/message between calls. On a
    /// violation returns `Err(WsError)` and stays failed (every later call
    /// returns the same error without calling `on`). After
    /// [`Incoming::Close`] the rest of the input, and all later input, is
    /// ignored.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut on: impl FnMut(Incoming<'_>),
    ) -> Result<(), WsError> {
        match self.state {
            State::Failed(error) => return Err(error),
            // §1.4: "after receiving a control frame indicating the
            // connection should be closed, a peer discards any further data
            // received."
            State::Closed => return Ok(()),
            State::Open => {}
        }
        self.run(input, &mut on).map_err(|violation| {
            let error = violation.error();
            self.state = State::Failed(error);
            self.release();
            error
        })
    }

    /// Bytes held for unfinished frames and the unfinished message (the
    /// same measure as `LineDecoder::buffered`).
    pub fn buffered(&self) -> usize {
        let frame = match self.stage {
            Stage::Header { len, .. } => len,
            Stage::Payload(p) if opcode::is_control(p.opcode) => p.done,
            Stage::Payload(_) => 0,
        };
        self.message.len() + frame
    }

    /// Heap bytes allocated, for memory accounting: at most `max_message`
    /// inside a message, at most [`IDLE_CAPACITY`] between messages, none
    /// after a close or an error.
    pub fn allocated(&self) -> usize {
        self.message.capacity()
    }

    /// A close frame has been received.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn run(
        &mut self,
        mut input: &[u8],
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), Violation> {
        loop {
            let mut frame = match self.stage {
                Stage::Payload(frame) => frame,
                Stage::Header { mut buf, mut len } => {
                    match take_header(&mut buf, &mut len, &mut input) {
                        Some(header) => self.start_frame(header)?,
                        None => {
                            self.stage = Stage::Header { buf, len };
                            return Ok(());
                        }
                    }
                }
            };
            let (chunk, rest) = input.split_at(frame.remaining.min(input.len()));
            input = rest;
            self.take_payload(&mut frame, chunk)?;
            if frame.remaining > 0 {
                // `input` is used up: wait for the rest of the payload.
                self.stage = Stage::Payload(frame);
                return Ok(());
            }
            self.stage = NO_HEADER;
            self.finish_frame(&frame, on)?;
            if self.state == State::Closed {
                return Ok(());
            }
        }
    }

    /// Every check a header must pass, before any of its payload is taken.
    fn start_frame(&mut self, h: FrameHeader) -> Result<Payload, Violation> {
        // §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
        // defines meanings for non-zero values. If a nonzero value is
        // received and none of the negotiated extensions defines the meaning
        // of such a nonzero value, the receiving endpoint MUST _Fail the
        // WebSocket Connection_." natter negotiates no extension.
        if h.rsv != 0 {
            return Err(Violation::ReservedBits);
        }
        // §5.2: "If an unknown opcode is received, the receiving endpoint
        // MUST _Fail the WebSocket Connection_." (%x3-7 and %xB-F are
        // reserved.)
        if !matches!(
            h.opcode,
            opcode::CONTINUATION
                | opcode::TEXT
                | opcode::BINARY
                | opcode::CLOSE
                | opcode::PING
                | opcode::PONG
        ) {
            return Err(Violation::ReservedOpcode);
        }
        // §5.1: "The server MUST close the connection upon receiving a frame
        // that is not masked. In this case, a server MAY send a Close frame
        // with a status code of 1002 (protocol error)".
        let Some(mask) = h.mask else {
            return Err(Violation::Unmasked);
        };
        // §5.2: "If 127, the following 8 bytes interpreted as a 64-bit
        // unsigned integer (the most significant bit MUST be 0) are the
        // payload length." (Non-minimal length forms are accepted: "the
        // minimal number of bytes MUST be used" binds the sender, and
        // refusing them protects nothing.)
        if h.len >> 63 != 0 {
            return Err(Violation::LengthTopBit);
        }
        // A length past `usize::MAX` is over every limit below anyway.
        let len = usize::try_from(h.len).unwrap_or(usize::MAX);
        if opcode::is_control(h.opcode) {
            // §5.5: "All control frames MUST have a payload length of 125
            // bytes or less and MUST NOT be fragmented."
            if len > MAX_CONTROL_PAYLOAD {
                return Err(Violation::ControlTooLong);
            }
            if !h.fin {
                return Err(Violation::FragmentedControl);
            }
        } else {
            // §5.4: "A fragmented message consists of a single frame with
            // the FIN bit clear and an opcode other than 0, followed by zero
            // or more frames with the FIN bit clear and the opcode set to 0,
            // and terminated by a single frame with the FIN bit set and an
            // opcode of 0." So a continuation needs a message to continue...
            if h.opcode == opcode::CONTINUATION && !self.in_message {
                return Err(Violation::StrayContinuation);
            }
            // ... and §5.4: "The fragments of one message MUST NOT be
            // interleaved between the fragments of another message unless an
            // extension has been negotiated that can interpret the
            // interleaving."
            if h.opcode != opcode::CONTINUATION && self.in_message {
                return Err(Violation::InterleavedMessage);
            }
            // §7.4.1: "1003 indicates that an endpoint is terminating the
            // connection because it has received a type of data it cannot
            // accept (e.g., an endpoint that understands only text data MAY
            // send this if it receives a binary message)." natter is text only.
            if h.opcode == opcode::BINARY && !self.accept_binary {
                return Err(Violation::Binary);
            }
            if h.opcode != opcode::CONTINUATION {
                self.binary = h.opcode == opcode::BINARY;
            }
            // §10.4: "Implementations that have implementation- and/or
            // platform-specific limitations regarding the frame size or total
            // message size after reassembly from multiple frames MUST protect
            // themselves against exceeding those limits." Judged on the
            // header, so no payload of a too-big message is ever held.
            if len > self.max_message.saturating_sub(self.message.len()) {
                return Err(Violation::TooBig);
            }
        }
        Ok(Payload {
            opcode: h.opcode,
            fin: h.fin,
            mask,
            done: 0,
            remaining: len,
        })
    }

    /// Unmasks the next `chunk` of `frame`'s payload into its buffer.
    fn take_payload(&mut self, frame: &mut Payload, chunk: &[u8]) -> Result<(), Violation> {
        if opcode::is_control(frame.opcode) {
            // `done + remaining <= 125` was checked in `start_frame`.
            let dst = &mut self.control[frame.done..frame.done + chunk.len()];
            dst.copy_from_slice(chunk);
            frame::apply_mask(dst, frame.mask, frame.done);
        } else {
            let start = self.message.len();
            self.reserve(chunk.len());
            self.message.extend_from_slice(chunk);
            frame::apply_mask(&mut self.message[start..], frame.mask, frame.done);
            // §8.1: "When an endpoint is to interpret a byte stream as UTF-8
            // but finds that the byte stream is not, in fact, a valid UTF-8
            // stream, that endpoint MUST _Fail the WebSocket Connection_."
            // Checked as the bytes arrive, across frames, so a bad byte is
            // refused before the message (or even its frame) ends. When this
            // chunk ends the message, `finish_frame` checks the whole message
            // in the one pass that also makes its `&str`, so a message that
            // arrives whole is validated once.
            let ends_message = frame.fin && chunk.len() == frame.remaining;
            if !self.binary && !ends_message && self.utf8.feed(&self.message[start..]).is_err() {
                return Err(Violation::BadUtf8);
            }
        }
        frame.done += chunk.len();
        frame.remaining -= chunk.len();
        Ok(())
    }

    /// Acts on a frame whose payload is all in.
    fn finish_frame(
        &mut self,
        frame: &Payload,
        on: &mut impl FnMut(Incoming<'_>),
    ) -> Result<(), Violation> {
        // For a control frame, `done <= 125` (checked in `start_frame`).
        match frame.opcode {
            opcode::PING => on(Incoming::Ping(&self.control[..frame.done])),
            opcode::PONG => on(Incoming::Pong(&self.control[..frame.done])),
            opcode::CLOSE => {
                let (code, reason) = parse_close(&self.control[..frame.done])?;
                on(Incoming::Close { code, reason });
                self.state = State::Closed;
                self.release();
            }
            _ if !frame.fin => self.in_message = true,
            _ if self.binary => {
                on(Incoming::Binary(&self.message));
                self.end_message();
            }
            _ => {
                // §5.6: "a particular text frame might include a partial
                // UTF-8 sequence; however, the whole message MUST contain
                // valid UTF-8." This also catches a sequence cut off by the
                // end of the message, which the incremental check could not.
                let text = std::str::from_utf8(&self.message).map_err(|_| Violation::BadUtf8)?;
                on(Incoming::Text(text));
                self.end_message();
            }
        }
        Ok(())
    }

    /// Makes room for `more` bytes of message. Grows geometrically, as `Vec`
    /// does, so a message trickling in costs amortized O(1) per byte, but
    /// never past `max_message`: `start_frame` has checked that the message
    /// fits, and the announced size is not reserved up front, so a client
    /// cannot make the server allocate for bytes it never sends.
    fn reserve(&mut self, more: usize) {
        let needed = self.message.len() + more;
        if needed > self.message.capacity() {
            let target = (self.message.capacity() * 2)
                .max(needed)
                .min(self.max_message.max(needed));
            self.message.reserve_exact(target - self.message.len());
        }
    }

    fn end_message(&mut self) {
        self.in_message = false;
        self.utf8.reset();
        if self.message.capacity() > IDLE_CAPACITY {
            self.message = Vec::new();
        } else {
            self.message.clear();
        }
    }

    /// Nothing more will be read: free everything.
    fn release(&mut self) {
        self.end_message();
        self.message = Vec::new();
        self.stage = NO_HEADER;
    }
}

/// Takes the next frame header off `input`: read in place when it is all
/// there, else collected in `buf` (`len` bytes so far) across calls.
fn take_header(
    buf: &mut [u8; MAX_HEADER],
    len: &mut usize,
    input: &mut &[u8],
) -> Option<FrameHeader> {
    if *len == 0 {
        if let Some((header, size)) = FrameHeader::parse(input) {
            *input = &input[size..];
            return Some(header);
        }
    }
    loop {
        let need = if *len < 2 {
            2
        } else {
            FrameHeader::size(buf[1])
        };
        if *len == need {
            *len = 0;
            return FrameHeader::parse(&buf[..need]).map(|(header, _)| header);
        }
        let (&b, rest) = input.split_first()?;
        buf[*len] = b;
        *len += 1;
        *input = rest;
    }
}

/// The code and reason of a close frame's body.
fn parse_close(body: &[u8]) -> Result<(Option<u16>, &str), Violation> {
    match body {
        [] => Ok((None, "")),
        // §5.5.1: "If there is a body, the first two bytes of the body MUST
        // be a 2-byte unsigned integer (in network byte order) representing
        // a status code with value /code/ defined in Section 7.4."
        [_] => Err(Violation::CloseBodyTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            // §7.4: only the codes defined there, registered with IANA, or
            // in the 3000-4999 ranges may be sent (see
            // `frame::is_valid_close_code` for which and why).
            if !frame::is_valid_close_code(code) {
                return Err(Violation::BadCloseCode);
            }
            // §5.5.1: "Following the 2-byte integer, the body MAY contain
            // UTF-8-encoded data with value /reason/", and §8.1 fails the
            // connection on anything that is not UTF-8.
            let reason = std::str::from_utf8(reason).map_err(|_| Violation::BadCloseReason)?;
            Ok((Some(code), reason))
        }
    }
}

#[cfg(test)]
mod tests;
