//! Passwords and login tokens (PROTOCOL-2 section 1): Argon2id hashes in
//! PHC string format, SHA-256 of tokens, and randomness from the OS.
//!
//! Hashing takes tens of milliseconds on purpose (far more in a debug
//! build): the server calls [`hash`] and [`verify`] on its helper thread,
//! never on the loop. `natter accounts` calls them directly.
//!
//! Passwords are never logged, and nothing here puts one in an error.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use sha2::{Digest, Sha256};

/// Shortest password accepted, in bytes.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted, in bytes.
pub const MAX_PASSWORD: usize = 128;

/// Argon2id memory cost in KiB (19 MiB, OWASP's minimum for Argon2id).
pub const M_COST: u32 = 19_456;
/// Argon2id passes over the memory.
pub const T_COST: u32 = 2;
/// Argon2id lanes.
pub const P_COST: u32 = 1;

/// Bytes of a salt.
pub const SALT_LEN: usize = 16;
/// Random bytes in a login token (128 bits).
pub const TOKEN_BYTES: usize = 16;

/// Checks a password's length: [`MIN_PASSWORD`] to [`MAX_PASSWORD`] bytes.
pub fn check_length(password: &str) -> Result<(), String> {
    let n = password.len();
    if n < MIN_PASSWORD {
        Err(format!(
            "a password is at least {MIN_PASSWORD} bytes (this one has {n})"
        ))
    } else if n > MAX_PASSWORD {
        Err(format!(
            "a password is at most {MAX_PASSWORD} bytes (this one has {n})"
        ))
    } else {
        Ok(())
    }
}

/// The Argon2id instance with natter's parameters.
fn argon2() -> Result<Argon2<'static>, String> {
    let params = Params::new(M_COST, T_COST, P_COST, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with Argon2id (m = 19456 KiB, t = 2, p = 1) and the
/// given salt (16 random bytes: see [`salt`]), as a PHC string
/// `$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`. Slow on purpose.
pub fn hash(password: &str, salt16: [u8; SALT_LEN]) -> Result<String, String> {
    let h = argon2()?
        .hash_password_with_salt(password.as_bytes(), &salt16)
        .map_err(|e| format!("hashing the password: {e}"))?;
    Ok(h.to_string())
}

/// Whether `password` matches the PHC string `phc` (made by [`hash`]; the
/// parameters are read from the string). False for a malformed string
/// too. Slow on purpose, like [`hash`].
pub fn verify(password: &str, phc: &str) -> bool {
    match argon2() {
        Ok(a) => a.verify_password(password.as_bytes(), phc).is_ok(),
        Err(_) => false,
    }
}

/// SHA-256 of a login token, in lowercase hex: what the store keeps
/// instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Bytes in lowercase hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `n` random bytes from the operating system (`/dev/urandom`).
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b)
}

/// `n` random bytes from the operating system, in hex (`2 * n` digits).
pub fn random_hex(n: usize) -> io::Result<String> {
    random_bytes(n).map(|b| hex(&b))
}

/// A fresh salt for [`hash`].
pub fn salt() -> io::Result<[u8; SALT_LEN]> {
    let mut s = [0u8; SALT_LEN];
    File::open("/dev/urandom")?.read_exact(&mut s)?;
    Ok(s)
}

/// A fresh login token: [`TOKEN_BYTES`] random bytes in hex. Give it to
/// the client; store only its [`token_hash`].
pub fn new_token() -> io::Result<String> {
    random_hex(TOKEN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One hash for all the checks: each costs a noticeable time in a
    /// debug build.
    #[test]
    fn hash_then_verify() {
        let salt = salt().unwrap();
        let phc = hash("correct horse", salt).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse", &phc));
        assert!(!verify("correct horsf", &phc));
        assert!(!verify("", &phc));
        // The same salt gives the same hash; another salt another.
        assert_ne!(hash("correct horse", [7; 16]).unwrap(), phc);
    }

    #[test]
    fn malformed_phc_strings_never_verify() {
        for bad in [
            "",
            "hunter22",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            "$md5$whatever",
        ] {
            assert!(!verify("hunter22", bad), "{bad:?}");
        }
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn lengths_are_checked_in_bytes() {
        assert!(check_length("1234567").is_err());
        assert!(check_length("12345678").is_ok());
        assert!(check_length(&"x".repeat(128)).is_ok());
        assert!(check_length(&"x".repeat(129)).is_err());
        // Four two-byte characters are eight bytes.
        assert!(check_length("éééé").is_ok());
    }

    #[test]
    fn randomness_is_hex_of_the_asked_length() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 32);
        assert!(t.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(t, new_token().unwrap());
        assert_eq!(random_hex(3).unwrap().len(), 6);
    }
}
