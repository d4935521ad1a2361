//! RFC 6455 §5.2 frame layout: header parsing, masking, encoding, close codes.
//!
//! Pure layout. [`FrameHeader::parse`] reads a header without judging it
//! (the rules live in `decoder.rs`, each at its check); the `encode_*`
//! functions build the server's frames, which are never masked (§5.1), so one
//! encoded frame can be queued to every WebSocket client as clones of the same
//! `Bytes`. Nothing here keeps state or does I/O.
//!
//! Read next: `decoder.rs` (the client's frames, checked and reassembled).

use bytes::{BufMut, Bytes, BytesMut};

/// Opcodes (§5.2, "Opcode: 4 bits"). The others are reserved.
pub mod opcode {
    /// The next fragment of a message begun by a text or binary frame
    /// without FIN (§5.4).
    pub const CONTINUATION: u8 = 0x0;
    /// A text message (or its first fragment); the whole message must be
    /// UTF-8 (§5.6).
    pub const TEXT: u8 = 0x1;
    /// A binary message (or its first fragment), for the application to
    /// interpret (§5.6).
    pub const BINARY: u8 = 0x2;
    /// A close frame, optionally with a status code and a reason (§5.5.1).
    pub const CLOSE: u8 = 0x8;
    /// A ping, to be answered with a pong (§5.5.2).
    pub const PING: u8 = 0x9;
    /// A pong: the answer to a ping, or an unsolicited heartbeat (§5.5.3).
    pub const PONG: u8 = 0xA;

    /// §5.5: "Control frames are identified by opcodes where the most
    /// significant bit of the opcode is 1."
    pub const fn is_control(op: u8) -> bool {
        op & 0x8 != 0
    }
}

/// Close codes the server sends (§7.4.1, plus natter's own from the
/// private-use range 4000-4999).
pub mod close {
    /// Normal closure: the purpose of the connection is fulfilled.
    pub const NORMAL: u16 = 1000;
    /// Going away, such as a server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error: the peer broke RFC 6455's framing rules.
    pub const PROTOCOL: u16 = 1002;
    /// A type of data the endpoint cannot accept: for natter's text-only
    /// chat, a binary message.
    pub const UNSUPPORTED: u16 = 1003;
    /// Data inconsistent with its message type: text (or a close reason)
    /// that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// Policy violation: the generic code when no more specific one fits.
    pub const POLICY: u16 = 1008;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// The server met an unexpected condition that kept it from fulfilling
    /// the request.
    pub const INTERNAL: u16 = 1011;
    /// The same session was resumed on another connection.
    pub const SESSION_REPLACED: u16 = 4000;
}

/// Most payload a control frame may carry. §5.5: "All control frames MUST
/// have a payload length of 125 bytes or less".
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest header: 2 bytes, a 64-bit length, a masking key.
pub const MAX_HEADER: usize = 14;

/// A frame header as sent, not yet judged: reserved bits, reserved opcodes,
/// a missing mask and an oversized length all parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this frame is the last fragment of its message (§5.2).
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits.
    pub rsv: u8,
    /// The 4-bit opcode as sent, reserved values included (see [`opcode`]).
    pub opcode: u8,
    /// The masking key, if the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length as sent, possibly with its top bit set.
    pub len: u64,
}

impl FrameHeader {
    /// The header's size in bytes, known once its second byte is: 2, plus 2
    /// or 8 for an extended length, plus 4 for a masking key.
    pub fn size(second_byte: u8) -> usize {
        let extended = match second_byte & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if second_byte & 0x80 != 0 { 4 } else { 0 };
        2 + extended + mask
    }

    /// Parses the header at the start of `buf`: the header and its size, or
    /// `None` while `buf` holds less than a whole header.
    pub fn parse(buf: &[u8]) -> Option<(FrameHeader, usize)> {
        let (&b0, &b1) = (buf.first()?, buf.get(1)?);
        let size = FrameHeader::size(b1);
        let head = buf.get(..size)?;
        let (len, rest) = match b1 & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes([head[2], head[3]])),
                &head[4..],
            ),
            127 => {
                let mut n = [0; 8];
                n.copy_from_slice(&head[2..10]);
                (u64::from_be_bytes(n), &head[10..])
            }
            n => (u64::from(n), &head[2..]),
        };
        let mask = (b1 & 0x80 != 0).then(|| [rest[0], rest[1], rest[2], rest[3]]);
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0xF,
            mask,
            len,
        };
        Some((header, size))
    }
}

/// XORs `buf` with the masking key (§5.3), `buf` being the part of a payload
/// that starts `offset` bytes in. Masking and unmasking are the same.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut key = mask;
    key.rotate_left(offset % 4);
    // Four bytes at a time: the compiler turns this into word (or vector)
    // XORs, where a `cycle()` over the key stays byte by byte.
    let mut words = buf.chunks_exact_mut(4);
    for word in &mut words {
        for (b, k) in word.iter_mut().zip(key) {
            *b ^= k;
        }
    }
    for (b, k) in words.into_remainder().iter_mut().zip(key) {
        *b ^= k;
    }
}

/// Writes a first byte and the shortest length form for `len` (§5.2: "the
/// minimal number of bytes MUST be used to encode the length").
fn put_header(out: &mut BytesMut, first: u8, mask_bit: u8, len: usize) {
    out.put_u8(first);
    if len < 126 {
        // `len < 126` fits in the 7 bits.
        out.put_u8(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.put_u8(mask_bit | 126);
        out.put_u16(len);
    } else {
        out.put_u8(mask_bit | 127);
        out.put_u64(len as u64);
    }
}

/// A whole unmasked server frame with FIN set.
fn encode(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(10 + payload.len());
    put_header(&mut out, 0x80 | opcode, 0, payload.len());
    out.put_slice(payload);
    out.freeze()
}

/// One text message in one frame. `payload` must be UTF-8 (the caller
/// renders it from a `str`); it is not checked again here.
pub fn encode_text(payload: &[u8]) -> Bytes {
    encode(opcode::TEXT, payload)
}

/// A binary message in one frame (only the echo endpoint sends these).
pub fn encode_binary(payload: &[u8]) -> Bytes {
    encode(opcode::BINARY, payload)
}

/// A ping. A payload over 125 bytes is cut to 125 so the frame stays legal.
pub fn encode_ping(payload: &[u8]) -> Bytes {
    encode(
        opcode::PING,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    )
}

/// A pong; §5.5.3: "A Pong frame sent in response to a Ping frame must have
/// identical 'Application data' as found in the message body of the Ping
/// frame being replied to." Cut to 125 bytes like [`encode_ping`].
pub fn encode_pong(payload: &[u8]) -> Bytes {
    encode(
        opcode::PONG,
        &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)],
    )
}

/// A close frame. `None` sends no body (and no reason: §5.5.1 allows a reason
/// only after a code). The reason is cut on a char boundary so the payload
/// fits the 125-byte control frame limit.
pub fn encode_close(code: Option<u16>, reason: &str) -> Bytes {
    let Some(code) = code else {
        return encode(opcode::CLOSE, &[]);
    };
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut payload = [0; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    encode(opcode::CLOSE, &payload[..2 + cut])
}

/// Whether a close frame may carry `code` (§7.4). 1000-1003 and 1007-1011
/// are RFC 6455's; 1012-1014 were registered with IANA since; 3000-4999 are
/// for libraries and applications. 1004 is reserved, and 1005, 1006 and 1015
/// "MUST NOT be set as a status code in a Close control frame by an
/// endpoint"; "Status codes in the range 0-999 are not used"; 1016-2999
/// await definition and 5000 and up are not defined at all.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// For tests and the test client: a MASKED client frame with explicit
/// fin/rsv/opcode/payload, the shortest length form, and whatever the
/// arguments say even where RFC 6455 forbids it (`rsv` and `opcode` are
/// masked to their 3 and 4 bits).
pub fn encode_client_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    payload: &[u8],
    mask: [u8; 4],
) -> Vec<u8> {
    let first = (u8::from(fin) << 7) | ((rsv & 0x7) << 4) | (opcode & 0xF);
    let mut out = BytesMut::with_capacity(MAX_HEADER + payload.len());
    put_header(&mut out, first, 0x80, payload.len());
    out.put_slice(&mask);
    let start = out.len();
    out.put_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
    out.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_headers_are_exact_for_every_length_form() {
        let table: &[(usize, &[u8])] = &[
            (0, &[0x81, 0]),
            (1, &[0x81, 1]),
            (125, &[0x81, 125]),
            (126, &[0x81, 126, 0x00, 0x7E]),
            (65535, &[0x81, 126, 0xFF, 0xFF]),
            (65536, &[0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]),
        ];
        for &(len, header) in table {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let frame = encode_text(&payload);
            assert_eq!(&frame[..header.len()], header, "len {len}");
            assert_eq!(&frame[header.len()..], &payload[..], "len {len}");
            let (parsed, size) = FrameHeader::parse(&frame).unwrap();
            assert_eq!(size, header.len());
            assert_eq!(
                parsed,
                FrameHeader {
                    fin: true,
                    rsv: 0,
                    opcode: opcode::TEXT,
                    mask: None,
                    len: len as u64
                }
            );
        }
    }

    #[test]
    fn control_frames() {
        assert_eq!(&encode_ping(b"hi")[..], b"\x89\x02hi");
        assert_eq!(&encode_pong(b"")[..], b"\x8a\x00");
        // Over-long control payloads are cut to the legal 125.
        let long = [b'x'; 200];
        let ping = encode_ping(&long);
        assert_eq!(&ping[..2], &[0x89, 125]);
        assert_eq!(ping.len(), 127);
        assert_eq!(encode_pong(&long).len(), 127);
    }

    #[test]
    fn close_frames() {
        assert_eq!(&encode_close(None, "ignored")[..], b"\x88\x00");
        assert_eq!(&encode_close(Some(1000), "")[..], b"\x88\x02\x03\xe8");
        assert_eq!(
            &encode_close(Some(close::SESSION_REPLACED), "bye")[..],
            b"\x88\x05\x0f\xa0bye"
        );
        // 123 bytes of reason fit exactly; one more is cut.
        let fits = "r".repeat(123);
        assert_eq!(encode_close(Some(1000), &fits).len(), 2 + 125);
        let over = "r".repeat(124);
        assert_eq!(&encode_close(Some(1000), &over)[4..], fits.as_bytes());
        // A two-byte char straddling the limit is dropped whole.
        let wide = "\u{e9}".repeat(100);
        let frame = encode_close(Some(1001), &wide);
        assert_eq!(frame[1], 2 + 122);
        assert_eq!(
            std::str::from_utf8(&frame[4..]).unwrap(),
            "\u{e9}".repeat(61)
        );
    }

    #[test]
    fn close_codes() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for code in valid {
            assert!(is_valid_close_code(code), "{code}");
        }
        for code in invalid {
            assert!(!is_valid_close_code(code), "{code}");
        }
        for code in [
            close::NORMAL,
            close::GOING_AWAY,
            close::PROTOCOL,
            close::UNSUPPORTED,
            close::INVALID_DATA,
            close::POLICY,
            close::TOO_BIG,
            close::INTERNAL,
            close::SESSION_REPLACED,
        ] {
            assert!(is_valid_close_code(code), "{code}");
        }
    }

    #[test]
    fn client_frames_are_masked_with_explicit_bits() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        // RFC 6455 §5.7: "A single-frame masked text message".
        assert_eq!(
            encode_client_frame(true, 0, opcode::TEXT, b"Hello", mask),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let frame = encode_client_frame(false, 0b101, 0xB, b"", mask);
        let (h, size) = FrameHeader::parse(&frame).unwrap();
        assert_eq!(size, 6);
        assert_eq!(
            h,
            FrameHeader {
                fin: false,
                rsv: 0b101,
                opcode: 0xB,
                mask: Some(mask),
                len: 0
            }
        );
        for len in [126, 65535, 65536] {
            let frame = encode_client_frame(true, 0, opcode::TEXT, &vec![7; len], mask);
            let (h, size) = FrameHeader::parse(&frame).unwrap();
            assert_eq!((h.len, frame.len() - size), (len as u64, len));
        }
    }

    #[test]
    fn parse_waits_for_the_whole_header() {
        let frame = encode_client_frame(true, 0, opcode::TEXT, &[0; 300], [1, 2, 3, 4]);
        assert_eq!(FrameHeader::size(frame[1]), 8);
        for cut in 0..8 {
            assert_eq!(FrameHeader::parse(&frame[..cut]), None, "cut {cut}");
        }
        assert_eq!(FrameHeader::parse(&frame[..8]).map(|(_, n)| n), Some(8));
        // An unmasked 64-bit form: 10 bytes, the length read as sent.
        let raw = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        let (h, size) = FrameHeader::parse(&raw).unwrap();
        assert_eq!((h.len, h.mask, size), (0x8000_0000_0000_0001, None, 10));
    }

    #[test]
    fn word_masking_matches_bytewise_masking() {
        let mask = [0xde, 0xad, 0xbe, 0xef];
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for offset in 0..8 {
            for len in 0..data.len() {
                let mut fast = data[..len].to_vec();
                apply_mask(&mut fast, mask, offset);
                let slow: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ mask[(offset + i) % 4])
                    .collect();
                assert_eq!(fast, slow, "offset {offset} len {len}");
            }
        }
    }
}
