//! Images: what a shared file is, told from its magic bytes only.
//!
//! A client's claim about a file's type is never trusted: PNG, JPEG, GIF
//! and WebP are recognised by their first bytes, and everything else (SVG,
//! which can carry script, included) is refused.

/// The types natter serves, by their magic numbers.
pub fn detect(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// The `'static` spelling of a type read back from the store.
pub fn known_mime(mime: &str) -> Option<&'static str> {
    ["image/png", "image/jpeg", "image/gif", "image/webp"]
        .into_iter()
        .find(|m| *m == mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(detect(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some("image/jpeg"));
        assert_eq!(detect(b"GIF89a\x01\0"), Some("image/gif"));
        assert_eq!(detect(b"GIF87a"), Some("image/gif"));
        assert_eq!(detect(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        for bad in [
            &b""[..],
            b"\x89PNG",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
            b"<?xml version=\"1.0\"?><svg/>",
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"GIF88a",
            b"%PDF-1.7",
            b"\xff\xd8",
        ] {
            assert_eq!(detect(bad), None, "{bad:?}");
        }
        assert_eq!(known_mime("image/gif"), Some("image/gif"));
        assert_eq!(known_mime("image/svg+xml"), None);
    }
}
