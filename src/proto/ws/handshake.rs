//! The server's half of the RFC 6455 opening handshake (§4.2).
//!
//! Checks a client's `Sec-WebSocket-Key`, derives `Sec-WebSocket-Accept`
//! from it and renders the `101 Switching Protocols` answer. Deciding that a
//! request is an upgrade at all (method, path, `Upgrade`, `Connection`,
//! `Sec-WebSocket-Version`, `Origin`) belongs to the HTTP layer; this module
//! never parses a request, never negotiates an extension or a subprotocol,
//! and never writes.
//!
//! Read next: `decoder.rs` (what the client sends once switched).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use sha1::{Digest, Sha1};

/// RFC 6455 §1.3: the GUID appended to the client's key before hashing.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only `Sec-WebSocket-Version` RFC 6455 defines (§4.1); anything else
/// earns a `426` with this value in the answer (§4.4).
pub const VERSION: &str = "13";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. RFC 6455
/// §4.2.2: "concatenate this with the Globally Unique Identifier ... A SHA-1
/// hash (160 bits), base64-encoded ..., of this concatenation is then
/// returned in the server's handshake." `client_key` is the header value with
/// surrounding whitespace already removed.
pub fn accept_key(client_key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// RFC 6455 §4.2.1: the key is "a base64-encoded ... value that, when
/// decoded, is 16 bytes in length". Canonical padded base64 only (24
/// characters ending in `==`); no surrounding whitespace.
pub fn valid_client_key(key: &str) -> bool {
    // The length test first, so a huge header is never decoded.
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|raw| raw.len() == 16)
}

/// The whole `101` answer, ending with the blank line. No extension and no
/// subprotocol is offered, so a client that asked for one will see none
/// agreed (PROTOCOL.md "WebSocket rules").
pub fn switching_protocols(accept: &str) -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\
         \r\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_vector() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn accept_key_depends_on_the_whole_key() {
        assert_ne!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            accept_key("dGhlIHNhbXBsZSBub25jZA==")
        );
    }

    #[test]
    fn client_keys() {
        let table: &[(&str, bool)] = &[
            ("dGhlIHNhbXBsZSBub25jZQ==", true),
            ("AAAAAAAAAAAAAAAAAAAAAA==", true),
            ("/////////////////////w==", true),
            // 15 and 17 bytes.
            ("AAAAAAAAAAAAAAAAAAAA", false),
            ("AAAAAAAAAAAAAAAAAAAAAAA=", false),
            ("AAAAAAAAAAAAAAAAAAAAAAAA", false),
            // 16 bytes but unpadded, or padded wrongly.
            ("dGhlIHNhbXBsZSBub25jZQ", false),
            ("dGhlIHNhbXBsZSBub25jZQ=", false),
            ("dGhlIHNhbXBsZSBub25jZQ===", false),
            // Non-zero bits past the 16th byte: not canonical base64.
            ("dGhlIHNhbXBsZSBub25jZR==", false),
            // Characters outside the alphabet, URL-safe alphabet, whitespace.
            ("dGhlIHNhbXBsZSBub25jZ!==", false),
            ("_____________________w==", false),
            (" dGhlIHNhbXBsZSBub25jZQ==", false),
            ("dGhlIHNhbXBsZSBub25jZQ== ", false),
            ("", false),
        ];
        for &(key, want) in table {
            assert_eq!(valid_client_key(key), want, "{key:?}");
        }
    }

    #[test]
    fn switching_protocols_is_exact() {
        assert_eq!(
            &switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")[..],
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }
}
