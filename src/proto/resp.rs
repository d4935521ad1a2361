//! RESP2, the Redis protocol, sans-I/O: commands encoded into a buffer,
//! replies decoded from the bytes a socket gave, however they were split.
//!
//! Commands go out as arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`),
//! the only form Redis needs; several are written one after the other into
//! one buffer and sent with one write (pipelining). Replies come back in the
//! order of the commands, one [`Value`] each; a subscriber connection also
//! receives pushes (`message`, `subscribe`) as arrays.
//!
//! The decoder keeps the bytes of an unfinished reply and parses again when
//! more arrive; once it knows how long a reply must be (a bulk string's
//! header says), it waits for that many bytes before looking again, so a
//! large reply read in many pieces is parsed about once, not once a piece
//! (the strings of a reply are copied out of the buffer when it is whole).
//! Every length is bounded ([`Limits`]): Redis is trusted, but a reply
//! that is wrong must give an error, never an allocation the size of a
//! lie. An error is sticky: the connection is to be closed and opened
//! again.

use bytes::{Buf, Bytes, BytesMut};

/// One RESP2 reply (or a part of one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `+OK`: a short status.
    Simple(Bytes),
    /// `-ERR ...`: the command failed (the connection is fine).
    Error(Bytes),
    /// `:42`.
    Int(i64),
    /// `$3\r\nabc`: binary-safe; `None` is the null bulk string (`$-1`).
    Bulk(Option<Bytes>),
    /// `*2\r\n...`; `None` is the null array (`*-1`).
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The value as RESP2 bytes (for tests, fuzzing and fakes: natter
    /// itself only sends commands, see [`encode_command`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Simple(s) => line(out, b'+', s),
            Value::Error(s) => line(out, b'-', s),
            Value::Int(n) => line(out, b':', n.to_string().as_bytes()),
            Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Value::Bulk(Some(b)) => {
                line(out, b'$', b.len().to_string().as_bytes());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Value::Array(Some(items)) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for v in items {
                    v.encode(out);
                }
            }
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) | Value::Simple(b) => Some(b),
            _ => None,
        }
    }
}

fn line(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// Appends one command (`args[0]` the command's name) to `out`, as Redis
/// reads it: an array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    line(out, b'*', args.len().to_string().as_bytes());
    for a in args {
        let a = a.as_ref();
        line(out, b'$', a.len().to_string().as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How large a reply may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, in bytes (Redis's own `proto-max-bulk-len` is
    /// 512 MB; natter stores nothing near that).
    pub max_bulk: usize,
    /// Most elements of one array.
    pub max_array: usize,
    /// Deepest nesting of arrays.
    pub max_depth: usize,
    /// Longest line (a simple string, an error, a header).
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bulk: 64 * 1024 * 1024,
            max_array: 1024 * 1024,
            max_depth: 8,
            max_line: 64 * 1024,
        }
    }
}

/// Why the decoder stopped: the bytes are not RESP2 it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespError {
    /// A reply began with a byte that is no RESP2 type.
    BadType(u8),
    /// A length or an integer that is not a decimal number of its range.
    BadNumber,
    /// A line not ended by `\r\n`, or a bulk string not followed by it.
    BadTerminator,
    /// Past one of the [`Limits`].
    TooLarge(&'static str),
}

/// Parses replies out of the bytes it is given, in order.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    limits: Limits,
    /// The buffer must hold at least this much before parsing is worth
    /// trying again (0: try).
    need: usize,
    failed: Option<RespError>,
}

/// How far a parse of the buffer got.
enum Step {
    /// A whole value, and where it ends.
    Done(Value, usize),
    /// Not all there: at least this many bytes in all are needed.
    More(usize),
}

impl Decoder {
    /// A decoder that holds replies to `limits`.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            ..Decoder::default()
        }
    }

    /// Bytes received and not yet part of a whole reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes `input` and hands every reply it completes to `on_value`, in
    /// order. After an error nothing more is decoded (the same error is
    /// returned again).
    pub fn decode(
        &mut self,
        input: &[u8],
        mut on_value: impl FnMut(Value),
    ) -> Result<(), RespError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(input);
        while !self.buf.is_empty() && self.buf.len() >= self.need {
            match parse(&self.buf, 0, 0, &self.limits) {
                Ok(Step::Done(value, end)) => {
                    self.buf.advance(end);
                    self.need = 0;
                    on_value(value);
                }
                Ok(Step::More(need)) => {
                    self.need = need;
                    break;
                }
                Err(e) => {
                    self.failed = Some(e.clone());
                    self.buf = BytesMut::new();
                    return Err(e);
                }
            }
        }
        if self.buf.is_empty() {
            self.need = 0;
        }
        Ok(())
    }
}

/// Parses one value at `at`; `depth` arrays deep.
fn parse(buf: &[u8], at: usize, depth: usize, limits: &Limits) -> Result<Step, RespError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(Step::More(at + 1));
    };
    let Some((body, after)) = find_line(buf, at + 1, limits)? else {
        return Ok(Step::More(buf.len() + 1));
    };
    match kind {
        b'+' => Ok(Step::Done(
            Value::Simple(Bytes::copy_from_slice(body)),
            after,
        )),
        b'-' => Ok(Step::Done(
            Value::Error(Bytes::copy_from_slice(body)),
            after,
        )),
        b':' => Ok(Step::Done(Value::Int(number(body)?), after)),
        b'$' => {
            let len = number(body)?;
            if len == -1 {
                return Ok(Step::Done(Value::Bulk(None), after));
            }
            let len = length(len, limits.max_bulk, "bulk string")?;
            let end = after + len;
            if buf.len() < end + 2 {
                return Ok(Step::More(end + 2));
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(RespError::BadTerminator);
            }
            let data = Bytes::copy_from_slice(&buf[after..end]);
            Ok(Step::Done(Value::Bulk(Some(data)), end + 2))
        }
        b'*' => {
            let n = number(body)?;
            if n == -1 {
                return Ok(Step::Done(Value::Array(None), after));
            }
            let n = length(n, limits.max_array, "array")?;
            if depth + 1 > limits.max_depth {
                return Err(RespError::TooLarge("nesting"));
            }
            // Never trust `n` for an allocation: grow as elements come.
            let mut items = Vec::with_capacity(n.min(64));
            let mut pos = after;
            for _ in 0..n {
                match parse(buf, pos, depth + 1, limits)? {
                    Step::Done(v, end) => {
                        items.push(v);
                        pos = end;
                    }
                    Step::More(need) => return Ok(Step::More(need)),
                }
            }
            Ok(Step::Done(Value::Array(Some(items)), pos))
        }
        other => Err(RespError::BadType(other)),
    }
}

/// The line that starts at `from`: its body and where the next begins;
/// `None` if its `\r\n` has not arrived.
fn find_line<'a>(
    buf: &'a [u8],
    from: usize,
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, RespError> {
    let rest = &buf[from.min(buf.len())..];
    match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            if nl == 0 || rest[nl - 1] != b'\r' {
                return Err(RespError::BadTerminator);
            }
            if nl - 1 > limits.max_line {
                return Err(RespError::TooLarge("line"));
            }
            Ok(Some((&rest[..nl - 1], from + nl + 1)))
        }
        None if rest.len() > limits.max_line + 1 => Err(RespError::TooLarge("line")),
        None => Ok(None),
    }
}

/// A decimal `i64`: an optional `-` and digits, nothing else.
fn number(body: &[u8]) -> Result<i64, RespError> {
    let (neg, digits) = match body.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, body),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    // Accumulated with the sign, so that i64::MIN parses too.
    let mut n: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if neg {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(RespError::BadNumber)?;
    }
    Ok(n)
}

/// A length from a header: 0 or more (-1 is handled before), at most `max`.
fn length(n: i64, max: usize, what: &'static str) -> Result<usize, RespError> {
    let n = usize::try_from(n).map_err(|_| RespError::BadNumber)?;
    if n > max {
        return Err(RespError::TooLarge(what));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testrng::Rng;

    fn bulk(s: &[u8]) -> Value {
        Value::Bulk(Some(Bytes::copy_from_slice(s)))
    }

    fn decode_all(input: &[u8]) -> (Vec<Value>, Result<(), RespError>) {
        let mut d = Decoder::new(Limits::default());
        let mut out = Vec::new();
        let r = d.decode(input, |v| out.push(v));
        (out, r)
    }

    /// Replies of every kind, nested and binary.
    fn sample() -> Vec<Value> {
        vec![
            Value::Simple(Bytes::from_static(b"OK")),
            Value::Error(Bytes::from_static(b"NOSCRIPT No matching script")),
            Value::Int(0),
            Value::Int(-42),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            Value::Bulk(None),
            bulk(b""),
            bulk(b"with \r\n inside\r\n and \0 bytes \xff"),
            Value::Array(None),
            Value::Array(Some(vec![])),
            Value::Array(Some(vec![
                bulk(b"message"),
                bulk(b"natter:room:lobby"),
                bulk(&[0u8; 300]),
            ])),
            Value::Array(Some(vec![
                Value::Int(7),
                Value::Array(Some(vec![
                    bulk(b"1-0"),
                    Value::Array(Some(vec![bulk(b"f"), bulk(b"v")])),
                ])),
                Value::Bulk(None),
            ])),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let values = sample();
        let mut wire = Vec::new();
        for v in &values {
            v.encode(&mut wire);
        }
        let (got, r) = decode_all(&wire);
        assert_eq!(r, Ok(()));
        assert_eq!(got, values);
    }

    #[test]
    fn split_at_every_byte_gives_the_same_replies() {
        let values = sample();
        let mut wire = Vec::new();
        for v in &values {
            v.encode(&mut wire);
        }
        for cut in 0..=wire.len() {
            let mut d = Decoder::new(Limits::default());
            let mut got = Vec::new();
            d.decode(&wire[..cut], |v| got.push(v)).unwrap();
            d.decode(&wire[cut..], |v| got.push(v)).unwrap();
            assert_eq!(got, values, "cut at {cut}");
            assert_eq!(d.buffered(), 0);
        }
        // And one byte at a time.
        let mut d = Decoder::new(Limits::default());
        let mut got = Vec::new();
        for b in &wire {
            d.decode(std::slice::from_ref(b), |v| got.push(v)).unwrap();
        }
        assert_eq!(got, values);
    }

    #[test]
    fn random_chunks_of_random_replies() {
        let mut rng = Rng::new(17);
        for _ in 0..200 {
            let mut values = Vec::new();
            for _ in 0..rng.below(8) + 1 {
                values.push(random_value(&mut rng, 0));
            }
            let mut wire = Vec::new();
            for v in &values {
                v.encode(&mut wire);
            }
            let mut d = Decoder::new(Limits::default());
            let mut got = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = (rng.below(40) + 1).min(rest.len());
                d.decode(&rest[..n], |v| got.push(v)).unwrap();
                rest = &rest[n..];
            }
            assert_eq!(got, values);
        }
    }

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth < 3 { 7 } else { 5 }) {
            0 => Value::Simple(Bytes::from(format!("S{}", rng.below(1000)))),
            1 => Value::Error(Bytes::from(format!("ERR e{}", rng.below(1000)))),
            2 => Value::Int(rng.next_u64() as i64 / 2),
            3 => Value::Bulk(None),
            4 => {
                let n = rng.below(100);
                Value::Bulk(Some(Bytes::from(rng.bytes(n))))
            }
            5 => Value::Array(None),
            _ => {
                let n = rng.below(5);
                Value::Array(Some((0..n).map(|_| random_value(rng, depth + 1)).collect()))
            }
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SET", "k", "a b"]);
        encode_command(&mut out, &[&b"EVALSHA"[..], b"\r\n"]);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n*2\r\n$7\r\nEVALSHA\r\n$2\r\n\r\n\r\n"
        );
        // What Redis would read is what the decoder reads.
        let (got, _) = decode_all(&out);
        assert_eq!(
            got[0],
            Value::Array(Some(vec![bulk(b"SET"), bulk(b"k"), bulk(b"a b")]))
        );
        assert_eq!(
            got[1].clone(),
            Value::Array(Some(vec![bulk(b"EVALSHA"), bulk(b"\r\n")]))
        );
    }

    #[test]
    fn bad_replies_are_errors_and_the_error_sticks() {
        for (input, want) in [
            (&b"?what\r\n"[..], RespError::BadType(b'?')),
            (b":12a\r\n", RespError::BadNumber),
            (b":\r\n", RespError::BadNumber),
            (b":99999999999999999999\r\n", RespError::BadNumber),
            (b"$-2\r\n", RespError::BadNumber),
            (b"*-5\r\n", RespError::BadNumber),
            (b"$3\r\nabcXY", RespError::BadTerminator),
            (b"+OK\n", RespError::BadTerminator),
            (b"$999999999999\r\n", RespError::TooLarge("bulk string")),
            (b"*99999999999\r\n", RespError::TooLarge("array")),
        ] {
            let mut d = Decoder::new(Limits::default());
            let mut got = Vec::new();
            assert_eq!(
                d.decode(input, |v| got.push(v)),
                Err(want.clone()),
                "{input:?}"
            );
            assert!(got.is_empty());
            assert_eq!(d.decode(b"+OK\r\n", |v| got.push(v)), Err(want), "sticky");
            assert!(got.is_empty());
        }
        // Too deep, and too long a line, even before its end arrives.
        let limits = Limits {
            max_depth: 2,
            max_line: 16,
            ..Limits::default()
        };
        let mut d = Decoder::new(limits);
        assert_eq!(
            d.decode(b"*1\r\n*1\r\n*1\r\n:1\r\n", |_| {}),
            Err(RespError::TooLarge("nesting"))
        );
        let mut d = Decoder::new(limits);
        assert_eq!(
            d.decode(&[b'+'; 40], |_| {}),
            Err(RespError::TooLarge("line"))
        );
    }

    #[test]
    fn a_large_bulk_in_many_pieces_is_not_parsed_once_a_piece() {
        let big = vec![b'x'; 1 << 20];
        let mut wire = Vec::new();
        Value::Bulk(Some(Bytes::from(big.clone()))).encode(&mut wire);
        let mut d = Decoder::new(Limits::default());
        let mut got = Vec::new();
        d.decode(&wire[..100], |v| got.push(v)).unwrap();
        // The header is known: the decoder waits for the whole string.
        assert_eq!(d.need, wire.len());
        for piece in wire[100..].chunks(1000) {
            d.decode(piece, |v| got.push(v)).unwrap();
        }
        assert_eq!(got, vec![Value::Bulk(Some(Bytes::from(big)))]);
    }
}
