//! Incremental UTF-8 validation, for text messages that arrive in pieces.
//!
//! RFC 6455 §5.6: "a particular text frame might include a partial UTF-8
//! sequence; however, the whole message MUST contain valid UTF-8", and §8.1
//! wants the connection failed as soon as the stream is known to be bad.
//! [`Utf8Validator`] is fed the bytes as they are unmasked, keeps the state of
//! a sequence cut by a chunk boundary, and fails on the first byte that can
//! never become valid, however the input is split. It never copies or keeps
//! input, and it never accepts what `std::str::from_utf8` would reject.
//!
//! Read next: `decoder.rs` (who feeds it).

/// The input can never become valid UTF-8, whatever follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadUtf8;

/// Validates a byte stream fed in chunks. After an error the state is
/// meaningless until [`Utf8Validator::reset`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Continuation bytes still owed by the sequence in progress (0 to 3).
    need: u8,
    /// The range the next continuation byte must fall in. Only the second
    /// byte of a sequence is ever narrower than `80..=BF` (RFC 3629 §4).
    lo: u8,
    hi: u8,
}

impl Utf8Validator {
    /// A validator at the start of a stream: no sequence in progress.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), BadUtf8> {
        // Finish a sequence left open by the previous chunk, byte by byte.
        while self.need > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            self.step(b)?;
            bytes = rest;
        }
        // The bulk goes through std's validator, much faster on ASCII. Past
        // the point it stops at, either a sequence is cut short by the end of
        // the chunk (at most 3 bytes, kept as state) or a byte is wrong, and
        // `step` refuses it within 4 bytes.
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) => bytes[e.valid_up_to()..]
                .iter()
                .try_for_each(|&b| self.step(b)),
        }
    }

    /// No sequence is in progress: the stream so far is valid UTF-8 as it
    /// stands, not just a valid prefix.
    pub fn is_complete(&self) -> bool {
        self.need == 0
    }

    /// Back to the start of a stream: for the next message, or after an
    /// error.
    pub fn reset(&mut self) {
        *self = Utf8Validator::default();
    }

    /// One byte, following the well-formed byte sequences of RFC 3629 §4.
    fn step(&mut self, b: u8) -> Result<(), BadUtf8> {
        if self.need > 0 {
            if !(self.lo..=self.hi).contains(&b) {
                return Err(BadUtf8);
            }
            self.need -= 1;
            self.lo = 0x80;
            self.hi = 0xBF;
            return Ok(());
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => return Ok(()),
            0xC2..=0xDF => (1, 0x80, 0xBF),
            // E0 80..9F would be an overlong 3-byte form.
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            // ED A0..BF would encode a UTF-16 surrogate (U+D800..U+DFFF).
            0xED => (2, 0x80, 0x9F),
            // F0 80..8F would be an overlong 4-byte form.
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            // F4 90.. would be past U+10FFFF.
            0xF4 => (3, 0x80, 0x8F),
            // A continuation byte with nothing to continue, C0/C1 (overlong
            // 2-byte forms) and F5..FF (past U+10FFFF) never start a char.
            _ => return Err(BadUtf8),
        };
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the validator must say about a prefix: it can still become valid
    /// UTF-8 exactly when std finds no error, or only one cut short by the end.
    fn can_become_valid(prefix: &[u8]) -> bool {
        match std::str::from_utf8(prefix) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
    }

    /// Feeds `input` one byte at a time and checks every prefix against std.
    fn check_bytewise(input: &[u8]) {
        let mut v = Utf8Validator::new();
        for i in 0..input.len() {
            let ok = v.feed(&input[i..=i]).is_ok();
            assert_eq!(
                ok,
                can_become_valid(&input[..=i]),
                "prefix {:02x?}",
                &input[..=i]
            );
            if !ok {
                return;
            }
        }
        assert_eq!(
            v.is_complete(),
            std::str::from_utf8(input).is_ok(),
            "{input:02x?}"
        );
    }

    /// Bytes at every boundary of RFC 3629's table.
    const EDGES: &[u8] = &[
        0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
        0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
    ];

    #[test]
    fn every_two_byte_input_agrees_with_std() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                check_bytewise(&[a, b]);
            }
        }
    }

    #[test]
    fn every_four_byte_edge_combination_agrees_with_std() {
        for &a in EDGES {
            for &b in EDGES {
                for &c in EDGES {
                    for &d in EDGES {
                        check_bytewise(&[a, b, c, d]);
                    }
                }
            }
        }
    }

    #[test]
    fn bulk_feeds_agree_with_bytewise_at_every_split() {
        let cases: &[&[u8]] = &[
            "plain ascii".as_bytes(),
            "h\u{e9}llo \u{20ac} \u{1f600} \u{10ffff}".as_bytes(),
            b"abc\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"ok\xf4\x90\x80\x80",
            b"ok\xe2\x82",
            b"\xf0\x9f\x98",
            b"\xc0\xaf",
        ];
        for &input in cases {
            let whole_ok = std::str::from_utf8(input).is_ok();
            for cut in 0..=input.len() {
                let mut v = Utf8Validator::new();
                let ok = v.feed(&input[..cut]).is_ok() && v.feed(&input[cut..]).is_ok();
                assert_eq!(ok && v.is_complete(), whole_ok, "{input:02x?} cut {cut}");
                // Rejection happens at the first bad byte: whether the first
                // part alone is refused is std's verdict on that prefix.
                let mut first = Utf8Validator::new();
                assert_eq!(
                    first.feed(&input[..cut]).is_ok(),
                    can_become_valid(&input[..cut])
                );
            }
        }
    }

    #[test]
    fn reset_forgets_an_open_sequence() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xe2\x82"), Ok(()));
        assert!(!v.is_complete());
        v.reset();
        assert!(v.is_complete());
        assert_eq!(v.feed(b"\xac"), Err(BadUtf8));
    }
}
