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
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    /// A valid close frame; after it the decoder accepts nothing more.
    Close {
        code: Option<u16>,
        reason: &'a str,
    },
}

/// A client broke RFC 6455: close with `code` (1002, 1003, 1007 or 1009),
/// `reason` as the close reason (it always fits in a close frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    pub code: u16,
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
mod tests {
    use super::*;
    use crate::proto::ws::frame::encode_client_frame;
    use crate::proto::ws::frame::opcode::{BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT};
    use crate::testrng::Rng;

    const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
    const BIG: usize = 1 << 20;

    /// An [`Incoming`] that outlives the decoder call, for comparing runs.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Text(String),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String),
    }

    fn own(event: Incoming<'_>) -> Ev {
        match event {
            Incoming::Text(t) => Ev::Text(t.to_string()),
            Incoming::Ping(p) => Ev::Ping(p.to_vec()),
            Incoming::Pong(p) => Ev::Pong(p.to_vec()),
            Incoming::Close { code, reason } => Ev::Close(code, reason.to_string()),
            Incoming::Binary(b) => panic!("binary {b:?} from a text-only decoder"),
        }
    }

    type Run = (Vec<Ev>, Result<(), WsError>);

    /// Feeds `chunks` in order; the events of all calls and the last result.
    fn feed<'a>(dec: &mut Decoder, chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
        let mut events = Vec::new();
        let mut result = Ok(());
        for chunk in chunks {
            result = dec.decode(chunk, |e| events.push(own(e)));
        }
        (events, result)
    }

    fn whole(max: usize, input: &[u8]) -> Run {
        feed(&mut Decoder::new(max), [input])
    }

    fn bytewise(max: usize, input: &[u8]) -> Run {
        feed(&mut Decoder::new(max), input.chunks(1))
    }

    fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        encode_client_frame(fin, 0, op, payload, MASK)
    }

    fn text(payload: &[u8]) -> Vec<u8> {
        frame(true, TEXT, payload)
    }

    fn close_body(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(reason);
        frame(true, CLOSE, &body)
    }

    /// A masked frame with a length field written by hand (`len7` and its
    /// extension), for forms `encode_client_frame` never writes.
    fn with_length(first: u8, len7: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first, 0x80 | len7];
        out.extend_from_slice(ext);
        out.extend_from_slice(&MASK);
        let start = out.len();
        out.extend_from_slice(payload);
        frame::apply_mask(&mut out[start..], MASK, 0);
        out
    }

    fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
        frames.concat()
    }

    fn t(s: &str) -> Ev {
        Ev::Text(s.to_string())
    }

    // -----------------------------------------------------------------------
    // Round trips and length forms
    // -----------------------------------------------------------------------

    #[test]
    fn every_length_form_round_trips() {
        // Each length with the header size its shortest form takes.
        let forms = [
            (0, 6),
            (1, 6),
            (125, 6),
            (126, 8),
            (127, 8),
            (65535, 8),
            (65536, 14),
            (70000, 14),
        ];
        for (len, header) in forms {
            let payload: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let input = text(payload.as_bytes());
            assert_eq!(input.len(), header + len);
            assert_eq!(whole(BIG, &input), (vec![t(&payload)], Ok(())), "len {len}");
            // Split right after the header and in the middle of the payload.
            let mut dec = Decoder::new(BIG);
            let (a, b) = input.split_at(header + len / 2);
            assert_eq!(
                feed(&mut dec, [&input[..header], &a[header..], b]),
                (vec![t(&payload)], Ok(()))
            );
        }
        for len in [0, 1, 125] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            assert_eq!(
                whole(16, &frame(true, PING, &payload)),
                (vec![Ev::Ping(payload.clone())], Ok(()))
            );
            assert_eq!(
                whole(16, &frame(true, PONG, &payload)),
                (vec![Ev::Pong(payload)], Ok(()))
            );
        }
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        let forms: [Vec<u8>; 3] = [
            with_length(0x81, 126, &[0, 5], b"hello"),
            with_length(0x81, 127, &[0, 0, 0, 0, 0, 0, 0, 5], b"hello"),
            with_length(0x81, 127, &[0, 0, 0, 0, 0, 0, 1, 0], &[b'x'; 256]),
        ];
        assert_eq!(whole(BIG, &forms[0]), (vec![t("hello")], Ok(())));
        assert_eq!(whole(BIG, &forms[1]), (vec![t("hello")], Ok(())));
        assert_eq!(whole(BIG, &forms[2]), (vec![t(&"x".repeat(256))], Ok(())));
        // Control frames too: the length is what counts, not its form.
        let ping = with_length(0x89, 126, &[0, 2], b"hi");
        assert_eq!(whole(BIG, &ping), (vec![Ev::Ping(b"hi".to_vec())], Ok(())));
    }

    #[test]
    fn zero_length_messages_are_valid() {
        assert_eq!(whole(BIG, &text(b"")), (vec![t("")], Ok(())));
        let fragmented = cat(&[
            frame(false, TEXT, b""),
            frame(false, CONTINUATION, b""),
            frame(true, CONTINUATION, b""),
        ]);
        assert_eq!(whole(BIG, &fragmented), (vec![t("")], Ok(())));
        // Even with a limit of zero.
        assert_eq!(whole(0, &text(b"")), (vec![t("")], Ok(())));
    }

    #[test]
    fn the_limit_is_inclusive() {
        assert_eq!(
            whole(16, &text(&[b'a'; 16])),
            (vec![t(&"a".repeat(16))], Ok(()))
        );
        let two = cat(&[
            frame(false, TEXT, &[b'a'; 8]),
            frame(true, CONTINUATION, &[b'b'; 8]),
        ]);
        assert_eq!(whole(16, &two), (vec![t("aaaaaaaabbbbbbbb")], Ok(())));
        // Control frames do not count towards the message.
        let with_ping = cat(&[
            frame(false, TEXT, &[b'a'; 8]),
            frame(true, PING, &[0; 100]),
            frame(true, CONTINUATION, &[b'b'; 8]),
        ]);
        assert_eq!(whole(16, &with_ping).1, Ok(()));
    }

    // -----------------------------------------------------------------------
    // Violations, each with its close code
    // -----------------------------------------------------------------------

    #[test]
    fn each_violation_gets_its_close_code() {
        use Violation::*;
        let top_bit = [0x80, 0, 0, 0, 0, 0, 0, 5];
        let huge = [0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let bad_reason = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80";
        let rows: Vec<(Violation, u16, &str, Vec<u8>)> = vec![
            (Unmasked, 1002, "unmasked", vec![0x81, 0x02, b'h', b'i']),
            (Unmasked, 1002, "unmasked ping", vec![0x89, 0x00]),
            (
                ReservedBits,
                1002,
                "rsv1",
                encode_client_frame(true, 4, TEXT, b"hi", MASK),
            ),
            (
                ReservedBits,
                1002,
                "rsv2",
                encode_client_frame(true, 2, TEXT, b"hi", MASK),
            ),
            (
                ReservedBits,
                1002,
                "rsv3",
                encode_client_frame(true, 1, TEXT, b"hi", MASK),
            ),
            (
                ReservedBits,
                1002,
                "rsv ping",
                encode_client_frame(true, 4, PING, b"", MASK),
            ),
            (
                LengthTopBit,
                1002,
                "64-bit top bit",
                with_length(0x81, 127, &top_bit, b"hello"),
            ),
            (
                LengthTopBit,
                1002,
                "64-bit all ones",
                with_length(0x81, 127, &[0xFF; 8], b""),
            ),
            (
                ControlTooLong,
                1002,
                "ping of 126",
                frame(true, PING, &[0; 126]),
            ),
            (
                ControlTooLong,
                1002,
                "pong of 126",
                frame(true, PONG, &[0; 126]),
            ),
            (
                ControlTooLong,
                1002,
                "close of 126",
                close_body(1000, &[b'a'; 124]),
            ),
            (
                FragmentedControl,
                1002,
                "ping without fin",
                frame(false, PING, b""),
            ),
            (
                FragmentedControl,
                1002,
                "close without fin",
                frame(false, CLOSE, b""),
            ),
            (
                StrayContinuation,
                1002,
                "continuation",
                frame(true, CONTINUATION, b"x"),
            ),
            (
                StrayContinuation,
                1002,
                "continuation, no fin",
                frame(false, CONTINUATION, b""),
            ),
            (
                InterleavedMessage,
                1002,
                "text inside a fragmented text",
                cat(&[frame(false, TEXT, b"a"), text(b"b")]),
            ),
            (
                InterleavedMessage,
                1002,
                "binary inside a fragmented text",
                cat(&[frame(false, TEXT, b"a"), frame(true, BINARY, b"b")]),
            ),
            (Binary, 1003, "binary", frame(true, BINARY, b"\x00\x01")),
            (Binary, 1003, "empty binary", frame(true, BINARY, b"")),
            (
                Binary,
                1003,
                "fragmented binary",
                frame(false, BINARY, b"ab"),
            ),
            (TooBig, 1009, "text over the limit", text(&[b'a'; 17])),
            (
                TooBig,
                1009,
                "fragments over the limit",
                cat(&[
                    frame(false, TEXT, &[b'a'; 10]),
                    frame(true, CONTINUATION, &[b'a'; 7]),
                ]),
            ),
            (
                TooBig,
                1009,
                "huge 64-bit length",
                with_length(0x81, 127, &huge, b""),
            ),
            (BadUtf8, 1007, "invalid byte", text(b"ab\xffcd")),
            (BadUtf8, 1007, "overlong", text(b"\xc0\xaf")),
            (BadUtf8, 1007, "surrogate", text(b"\xed\xa0\x80")),
            (BadUtf8, 1007, "past U+10FFFF", text(b"\xf4\x90\x80\x80")),
            (
                BadUtf8,
                1007,
                "cut at the end of a fin frame",
                text(b"ok\xe2\x82"),
            ),
            (
                BadUtf8,
                1007,
                "cut at the end of a fragmented message",
                cat(&[
                    frame(false, TEXT, b"ok"),
                    frame(true, CONTINUATION, b"\xf0\x9f\x98"),
                ]),
            ),
            (
                BadUtf8,
                1007,
                "bad across fragments",
                cat(&[
                    frame(false, TEXT, b"\xe2"),
                    frame(true, CONTINUATION, b"\x28"),
                ]),
            ),
            (
                CloseBodyTooShort,
                1002,
                "close of 1 byte",
                frame(true, CLOSE, b"\x03"),
            ),
            (
                BadCloseReason,
                1007,
                "close reason not UTF-8",
                close_body(1000, bad_reason),
            ),
        ];
        let mut cases: Vec<(Violation, u16, String, Vec<u8>)> = rows
            .into_iter()
            .map(|(v, code, name, input)| (v, code, name.to_string(), input))
            .collect();
        for op in (3..=7).chain(0xB..=0xF) {
            let input = frame(true, op, b"");
            cases.push((ReservedOpcode, 1002, format!("opcode {op:#x}"), input));
        }
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let input = close_body(code, b"");
            cases.push((BadCloseCode, 1002, format!("close code {code}"), input));
        }
        for (violation, code, name, input) in cases {
            let want = (vec![], Err(violation.error()));
            assert_eq!(violation.error().code, code, "{name}");
            assert_eq!(whole(16, &input), want, "{name}");
            assert_eq!(bytewise(16, &input), want, "{name}, byte by byte");
        }
    }

    #[test]
    fn events_before_a_violation_are_delivered() {
        let input = cat(&[
            frame(true, PING, b"a"),
            text(b"ok"),
            frame(true, BINARY, b""),
        ]);
        let want = (
            vec![Ev::Ping(b"a".to_vec()), t("ok")],
            Err(Violation::Binary.error()),
        );
        assert_eq!(whole(16, &input), want);
        assert_eq!(bytewise(16, &input), want);
        let input = cat(&[text(b"a"), frame(true, CONTINUATION, b"b")]);
        let want = (vec![t("a")], Err(Violation::StrayContinuation.error()));
        assert_eq!(whole(16, &input), want);
    }

    #[test]
    fn valid_close_frames() {
        let table: &[(Vec<u8>, Ev)] = &[
            (frame(true, CLOSE, b""), Ev::Close(None, String::new())),
            (close_body(1000, b""), Ev::Close(Some(1000), String::new())),
            (
                close_body(1001, b"bye"),
                Ev::Close(Some(1001), "bye".into()),
            ),
            (close_body(1012, b""), Ev::Close(Some(1012), String::new())),
            (
                close_body(3000, "\u{e9}t\u{e9}".as_bytes()),
                Ev::Close(Some(3000), "\u{e9}t\u{e9}".into()),
            ),
            (
                close_body(4999, &[b'r'; 123]),
                Ev::Close(Some(4999), "r".repeat(123)),
            ),
        ];
        for (input, event) in table {
            let mut dec = Decoder::new(16);
            assert_eq!(feed(&mut dec, [&input[..]]), (vec![event.clone()], Ok(())));
            assert!(dec.is_closed());
        }
    }

    #[test]
    fn too_big_is_judged_on_the_header_alone() {
        // Only the header of a huge frame: refused before any payload.
        let header = &with_length(0x81, 127, &[0, 0, 1, 0, 0, 0, 0, 0], b"")[..14];
        let mut dec = Decoder::new(1024);
        assert_eq!(
            feed(&mut dec, [header]),
            (vec![], Err(Violation::TooBig.error()))
        );
        assert_eq!(dec.allocated(), 0);
        // The 16-bit form, header only.
        let header = &with_length(0x81, 126, &[0x04, 0x01], b"")[..8];
        assert_eq!(
            whole(1024, header),
            (vec![], Err(Violation::TooBig.error()))
        );
        // A continuation's header tips the message over: its payload never comes.
        let first = frame(false, TEXT, &[b'a'; 1000]);
        let next = &frame(true, CONTINUATION, &[b'b'; 25])[..6];
        let mut dec = Decoder::new(1024);
        assert_eq!(feed(&mut dec, [&first[..]]), (vec![], Ok(())));
        assert_eq!(dec.buffered(), 1000);
        assert_eq!(
            feed(&mut dec, [next]),
            (vec![], Err(Violation::TooBig.error()))
        );
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = Decoder::new(BIG);
        let want = Err(Violation::InterleavedMessage.error());
        assert_eq!(
            feed(
                &mut dec,
                [&frame(false, TEXT, b"part")[..], &frame(true, BINARY, b"")]
            ),
            (vec![], want)
        );
        assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
        // Perfectly good frames afterwards change nothing and produce nothing.
        for input in [
            text(b"hello"),
            frame(true, CONTINUATION, b"rest"),
            frame(true, PING, b""),
            close_body(1000, b""),
        ] {
            assert_eq!(feed(&mut dec, [&input[..]]), (vec![], want));
        }
        assert_eq!(feed(&mut dec, [&b""[..]]), (vec![], want));
        assert!(!dec.is_closed());
    }

    #[test]
    fn nothing_is_accepted_after_close() {
        let mut dec = Decoder::new(BIG);
        let input = cat(&[
            frame(false, TEXT, b"unfinished"),
            close_body(1000, b"bye"),
            text(b"after"),
            vec![0xFF; 3],
        ]);
        assert_eq!(
            feed(&mut dec, [&input[..]]),
            (vec![Ev::Close(Some(1000), "bye".into())], Ok(()))
        );
        assert!(dec.is_closed());
        assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
        // Neither valid nor invalid input produces anything now.
        for input in [
            text(b"more"),
            frame(true, PING, b""),
            frame(true, BINARY, b""),
            vec![0x81, 0x00],
        ] {
            assert_eq!(feed(&mut dec, [&input[..]]), (vec![], Ok(())));
        }
        // The same, byte by byte.
        assert_eq!(
            bytewise(BIG, &input),
            (vec![Ev::Close(Some(1000), "bye".into())], Ok(()))
        );
    }

    // -----------------------------------------------------------------------
    // Fragmentation and every split point
    // -----------------------------------------------------------------------

    /// A fragmented message with control frames between its fragments and a
    /// char (é) cut by a fragment boundary, then more messages.
    fn conversation() -> (Vec<u8>, Vec<Ev>) {
        let input = cat(&[
            frame(false, TEXT, b"h\xc3"),
            frame(true, PING, b"p1"),
            frame(false, CONTINUATION, b"\xa9l"),
            frame(true, PONG, b""),
            frame(false, CONTINUATION, b""),
            frame(true, PING, &[0xFF; 7]),
            frame(true, CONTINUATION, "lo w\u{f6}rld".as_bytes()),
            text(b""),
            text("\u{1f600}".as_bytes()),
            close_body(1000, b"bye"),
        ]);
        let events = vec![
            Ev::Ping(b"p1".to_vec()),
            Ev::Pong(vec![]),
            Ev::Ping(vec![0xFF; 7]),
            t("h\u{e9}llo w\u{f6}rld"),
            t(""),
            t("\u{1f600}"),
            Ev::Close(Some(1000), "bye".into()),
        ];
        (input, events)
    }

    #[test]
    fn fragments_with_controls_between_give_the_same_events_at_every_split() {
        let (input, events) = conversation();
        let want = (events, Ok(()));
        assert_eq!(whole(BIG, &input), want);
        assert_eq!(bytewise(BIG, &input), want);
        let n = input.len();
        for i in 0..=n {
            assert_eq!(
                feed(&mut Decoder::new(BIG), [&input[..i], &input[i..]]),
                want,
                "split {i}"
            );
            for j in i..=n {
                let chunks = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(feed(&mut Decoder::new(BIG), chunks), want, "split {i} {j}");
            }
        }
    }

    #[test]
    fn growing_prefixes_hold_what_is_unfinished() {
        // After each prefix the decoder has produced exactly the events whose
        // frames are complete, and holds no more than the unfinished part.
        let (input, _) = conversation();
        let (all, _) = whole(BIG, &input);
        for i in 0..=input.len() {
            let mut dec = Decoder::new(BIG);
            let (events, result) = feed(&mut dec, [&input[..i]]);
            assert_eq!(result, Ok(()));
            assert_eq!(events[..], all[..events.len()], "prefix {i}");
            assert!(dec.buffered() <= i, "prefix {i}");
            // And the rest, in one more call, finishes the job.
            let (rest, _) = feed(&mut dec, [&input[i..]]);
            assert_eq!([events, rest].concat(), all, "prefix {i}");
        }
    }

    // -----------------------------------------------------------------------
    // UTF-8 across fragments, failing fast
    // -----------------------------------------------------------------------

    #[test]
    fn an_invalid_byte_is_reported_before_the_message_ends() {
        let bad = Err(Violation::BadUtf8.error());
        // Inside a fragment whose frame has only partly arrived: the header
        // announces 10 bytes, 3 have come, the third can never be valid.
        let mut dec = Decoder::new(BIG);
        assert_eq!(
            feed(&mut dec, [&frame(false, TEXT, b"ok")[..]]),
            (vec![], Ok(()))
        );
        let next = frame(false, CONTINUATION, b"ab\xffdefghi");
        assert_eq!(feed(&mut dec, [&next[..6 + 2]]), (vec![], Ok(())));
        assert_eq!(feed(&mut dec, [&next[8..9]]), (vec![], bad));
        // Inside a single FIN frame, fed partway.
        let one = text(b"abc\xc0 and much more text");
        assert_eq!(
            feed(&mut Decoder::new(BIG), [&one[..6 + 3]]),
            (vec![], Ok(()))
        );
        assert_eq!(feed(&mut Decoder::new(BIG), [&one[..6 + 4]]), (vec![], bad));
        // A sequence cut by a fragment boundary and broken in the next one,
        // whose frame is not even FIN.
        let mut dec = Decoder::new(BIG);
        let input = cat(&[
            frame(false, TEXT, b"\xe2\x82"),
            frame(false, CONTINUATION, b"("),
        ]);
        assert_eq!(feed(&mut dec, [&input[..]]), (vec![], bad));
        // E0 may still become valid; E0 80 never can (overlong).
        let mut dec = Decoder::new(BIG);
        let input = text(b"\xe0\x80\x80");
        assert_eq!(feed(&mut dec, [&input[..7]]), (vec![], Ok(())));
        assert_eq!(feed(&mut dec, [&input[7..8]]), (vec![], bad));
    }

    #[test]
    fn a_char_split_across_fragments_is_accepted() {
        let euro = "\u{20ac}".as_bytes();
        let smile = "\u{1f600}".as_bytes();
        let input = cat(&[
            frame(false, TEXT, &euro[..1]),
            frame(false, CONTINUATION, &euro[1..2]),
            frame(true, PING, b""),
            frame(false, CONTINUATION, &[&euro[2..], &smile[..1]].concat()),
            frame(false, CONTINUATION, &smile[1..2]),
            frame(false, CONTINUATION, &smile[2..3]),
            frame(true, CONTINUATION, &smile[3..]),
        ]);
        let want = (vec![Ev::Ping(vec![]), t("\u{20ac}\u{1f600}")], Ok(()));
        assert_eq!(whole(BIG, &input), want);
        assert_eq!(bytewise(BIG, &input), want);
    }

    // -----------------------------------------------------------------------
    // Fast path against slow path, random frames
    // -----------------------------------------------------------------------

    /// A WebSocket client's masking key.
    fn random_mask(rng: &mut Rng) -> [u8; 4] {
        (rng.next_u64() as u32).to_le_bytes()
    }

    /// Up to `max_chars` chars, of 1 to 4 bytes in UTF-8, edges included.
    fn random_text(rng: &mut Rng, max_chars: usize) -> String {
        const CHARS: [char; 10] = [
            'a',
            'z',
            ' ',
            '\u{7f}',
            '\u{e9}',
            '\u{7ff}',
            '\u{800}',
            '\u{20ac}',
            '\u{ffff}',
            '\u{1f600}',
        ];
        let n = rng.below(max_chars + 1);
        (0..n).map(|_| CHARS[rng.below(CHARS.len())]).collect()
    }

    /// A random ping or pong.
    fn random_control(rng: &mut Rng, out: &mut Vec<u8>, events: &mut Vec<Ev>) {
        let len = rng.below(126);
        let payload = rng.bytes(len);
        let (op, event) = if rng.below(2) == 0 {
            (PING, Ev::Ping(payload.clone()))
        } else {
            (PONG, Ev::Pong(payload.clone()))
        };
        out.extend(encode_client_frame(true, 0, op, &payload, random_mask(rng)));
        events.push(event);
    }

    /// A random valid stream of frames and the events it must give.
    fn random_stream(rng: &mut Rng) -> (Vec<u8>, Vec<Ev>) {
        let mut out = Vec::new();
        let mut events = Vec::new();
        for _ in 0..1 + rng.below(5) {
            match rng.below(10) {
                0..=2 => {
                    let s = random_text(rng, 40);
                    out.extend(encode_client_frame(
                        true,
                        0,
                        TEXT,
                        s.as_bytes(),
                        random_mask(rng),
                    ));
                    events.push(t(&s));
                }
                3..=5 => {
                    // Fragments cut at random bytes, chars included, with
                    // control frames between them.
                    let s = random_text(rng, 60);
                    let bytes = s.as_bytes();
                    let mut cuts: Vec<usize> = (0..rng.below(5))
                        .map(|_| rng.below(bytes.len() + 1))
                        .collect();
                    cuts.sort_unstable();
                    cuts.push(bytes.len());
                    let mut start = 0;
                    for (k, &cut) in cuts.iter().enumerate() {
                        let op = if k == 0 { TEXT } else { CONTINUATION };
                        let fin = k + 1 == cuts.len();
                        out.extend(encode_client_frame(
                            fin,
                            0,
                            op,
                            &bytes[start..cut],
                            random_mask(rng),
                        ));
                        start = cut;
                        if !fin && rng.below(3) == 0 {
                            random_control(rng, &mut out, &mut events);
                        }
                    }
                    events.push(t(&s));
                }
                6..=7 => random_control(rng, &mut out, &mut events),
                8 => {
                    // Around the length-form boundaries.
                    let len = [125, 126, 127, 65535, 65536][rng.below(5)];
                    let s = "q".repeat(len);
                    out.extend(encode_client_frame(
                        true,
                        0,
                        TEXT,
                        s.as_bytes(),
                        random_mask(rng),
                    ));
                    events.push(t(&s));
                }
                _ => {
                    let code: u16 = [1000, 1001, 1011, 1012, 3000, 4000, 4999][rng.below(7)];
                    let reason = random_text(rng, 20);
                    let mut body = code.to_be_bytes().to_vec();
                    body.extend_from_slice(reason.as_bytes());
                    body.truncate(125);
                    let reason = String::from_utf8_lossy(&body[2..]).into_owned();
                    if reason.contains('\u{fffd}') {
                        continue; // cut inside a char: not a valid close
                    }
                    out.extend(encode_client_frame(true, 0, CLOSE, &body, random_mask(rng)));
                    events.push(Ev::Close(Some(code), reason));
                    break;
                }
            }
        }
        (out, events)
    }

    #[test]
    fn fast_path_matches_slow_path_on_random_frames() {
        let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
        let (mut clean, mut broken, mut texts) = (0, 0, 0);
        let mut codes = std::collections::BTreeSet::new();
        for case in 0..400 {
            let (mut input, events) = random_stream(&mut rng);
            // A third of the streams get one byte corrupted (some of them by
            // turning the first frame binary, which a random flip rarely
            // does), and a tenth are cut short: both paths must then agree
            // on whatever happens.
            let corrupt = rng.below(3) == 0;
            if corrupt && rng.below(5) == 0 {
                input[0] = (input[0] & 0xF0) | BINARY;
            } else if corrupt {
                let at = rng.below(input.len());
                input[at] ^= 1 + rng.below(255) as u8;
            }
            let truncate = rng.below(10) == 0;
            if truncate {
                input.truncate(rng.below(input.len() + 1));
            }
            let max = if rng.below(4) == 0 { 50 } else { BIG };
            let fast = whole(max, &input);
            // Fed in random chunks, and byte by byte (big frames excepted:
            // that is slow in debug builds and adds nothing).
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at((1 + rng.below(20)).min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            assert_eq!(
                feed(&mut Decoder::new(max), chunks),
                fast,
                "case {case}, random chunks"
            );
            if input.len() < 5000 || case % 10 == 0 {
                assert_eq!(bytewise(max, &input), fast, "case {case}, byte by byte");
            }
            if !corrupt && !truncate && max == BIG {
                assert_eq!(fast, (events, Ok(())), "case {case}, clean");
                clean += 1;
            }
            texts += fast.0.iter().filter(|e| matches!(e, Ev::Text(_))).count();
            if let Err(e) = fast.1 {
                broken += 1;
                codes.insert(e.code);
            }
        }
        // The table must exercise both outcomes and every kind of error.
        assert!(
            clean > 100 && broken > 50 && texts > 300,
            "{clean} {broken} {texts}"
        );
        assert_eq!(
            codes.into_iter().collect::<Vec<_>>(),
            [1002, 1003, 1007, 1009]
        );
    }

    // -----------------------------------------------------------------------
    // Memory
    // -----------------------------------------------------------------------

    #[test]
    fn idle_decoders_hold_no_big_buffer() {
        let mut dec = Decoder::new(BIG);
        assert_eq!(dec.allocated(), 0);
        let big = "b".repeat(100_000);
        assert_eq!(
            feed(&mut dec, [&text(big.as_bytes())[..]]),
            (vec![t(&big)], Ok(()))
        );
        assert_eq!((dec.buffered(), dec.allocated()), (0, 0));
        // A small message's buffer is kept for the next one.
        assert_eq!(feed(&mut dec, [&text(b"hi")[..]]), (vec![t("hi")], Ok(())));
        assert_eq!(dec.buffered(), 0);
        assert!(dec.allocated() <= IDLE_CAPACITY);
    }

    #[test]
    fn announced_sizes_are_not_reserved() {
        // A header announcing 1 MiB, then 10 bytes: only those are held.
        let input = text(&vec![b'x'; 1 << 20]);
        let mut dec = Decoder::new(2 << 20);
        assert_eq!(feed(&mut dec, [&input[..14 + 10]]), (vec![], Ok(())));
        assert_eq!(dec.buffered(), 10);
        assert!(dec.allocated() < 64, "{}", dec.allocated());
    }

    #[test]
    fn a_trickling_message_never_allocates_past_the_limit() {
        let max = 3000;
        let input = cat(&[
            frame(false, TEXT, &[b'a'; 1000]),
            frame(true, CONTINUATION, &[b'b'; 2000]),
        ]);
        let mut dec = Decoder::new(max);
        let mut events = Vec::new();
        for byte in input.chunks(1) {
            assert_eq!(dec.decode(byte, |e| events.push(own(e))), Ok(()));
            assert!(dec.allocated() <= max, "{}", dec.allocated());
        }
        assert_eq!(
            events,
            [t(&format!("{}{}", "a".repeat(1000), "b".repeat(2000)))]
        );
    }

    #[test]
    fn buffered_counts_unfinished_headers_and_control_payloads() {
        let ping = frame(true, PING, b"12345");
        let mut dec = Decoder::new(BIG);
        assert_eq!(feed(&mut dec, [&ping[..3]]), (vec![], Ok(())));
        assert_eq!(dec.buffered(), 3);
        assert_eq!(feed(&mut dec, [&ping[3..9]]), (vec![], Ok(())));
        assert_eq!(dec.buffered(), 3);
        assert_eq!(
            feed(&mut dec, [&ping[9..]]),
            (vec![Ev::Ping(b"12345".to_vec())], Ok(()))
        );
        assert_eq!(dec.buffered(), 0);
    }
}

#[cfg(test)]
mod binary_tests {
    use super::*;
    use crate::proto::ws::frame::encode_client_frame;
    use crate::proto::ws::frame::opcode::{BINARY, CONTINUATION, PING};

    #[test]
    fn an_accepting_decoder_delivers_binary_fragments_whole_and_skips_utf8() {
        let mut d = Decoder::new(100).accepting_binary();
        let mut input = encode_client_frame(false, 0, BINARY, b"\xff\x00", [1, 2, 3, 4]);
        input.extend(encode_client_frame(true, 0, PING, b"p", [5, 6, 7, 8]));
        input.extend(encode_client_frame(
            true,
            0,
            CONTINUATION,
            b"\xfe",
            [9, 9, 9, 9],
        ));
        let mut got = Vec::new();
        d.decode(&input, |i| {
            got.push(match i {
                Incoming::Binary(b) => format!("binary {b:?}"),
                Incoming::Ping(p) => format!("ping {p:?}"),
                other => format!("{other:?}"),
            })
        })
        .unwrap();
        assert_eq!(got, ["ping [112]", "binary [255, 0, 254]"]);
        // The limit still holds for binary messages.
        let big = encode_client_frame(true, 0, BINARY, &[0; 101], [1, 1, 1, 1]);
        assert_eq!(d.decode(&big, |_| {}).map_err(|e| e.code), Err(1009));
        // The default decoder still refuses binary with 1003.
        let mut d = Decoder::new(100);
        let frame = encode_client_frame(true, 0, BINARY, b"x", [1, 1, 1, 1]);
        assert_eq!(d.decode(&frame, |_| {}).map_err(|e| e.code), Err(1003));
    }
}
