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

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Largest Argon2 memory cost (KiB) a stored PHC string may ask for
/// before [`verify`] refuses it: four times natter's own, so a hash made
/// with stronger parameters elsewhere still verifies, and a corrupt row
/// cannot make the helper allocate gigabytes.
pub const MAX_M_COST: u32 = 4 * M_COST;

/// Argon2's working memory, kept between hashes.
///
/// Each hash needs [`M_COST`] KiB. Allocated afresh per hash, glibc's
/// allocator keeps freed blocks that big in the thread's arena (its mmap
/// threshold rises after the first free), and a few dozen logins left the
/// server holding about 100 MiB. The helper thread keeps one `Memory`
/// instead: 19 MiB, allocated once, whatever the number of logins.
pub struct Memory(Vec<Block>);

impl Memory {
    /// No memory yet: the first hash allocates it.
    pub const fn new() -> Memory {
        Memory(Vec::new())
    }

    /// The first `blocks` blocks, growing to that many if needed.
    fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::new());
        }
        &mut self.0[..blocks]
    }
}

impl Default for Memory {
    fn default() -> Memory {
        Memory::new()
    }
}

/// natter's Argon2id parameters.
fn params() -> Result<Params, String> {
    Params::new(M_COST, T_COST, P_COST, None).map_err(|e| e.to_string())
}

/// Hashes `password` with Argon2id (m = 19456 KiB, t = 2, p = 1) and the
/// given salt (16 random bytes: see [`salt`]), as a PHC string
/// `$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`. Slow on purpose.
pub fn hash(password: &str, salt16: [u8; SALT_LEN]) -> Result<String, String> {
    hash_in(&mut Memory::new(), password, salt16)
}

/// [`hash`], working in `memory`.
pub fn hash_in(
    memory: &mut Memory,
    password: &str,
    salt16: [u8; SALT_LEN],
) -> Result<String, String> {
    let params = params()?;
    let blocks = params.block_count();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt16,
            &mut out,
            memory.blocks(blocks),
        )
        .map_err(|e| format!("hashing the password: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(&salt16).map_err(|e| e.to_string())?),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (made by [`hash`]; the
/// parameters are read from the string). False for a malformed string,
/// for another algorithm than Argon2, and for a memory cost over
/// [`MAX_M_COST`]. Slow on purpose, like [`hash`].
pub fn verify(password: &str, phc: &str) -> bool {
    verify_in(&mut Memory::new(), password, phc)
}

/// [`verify`], working in `memory`.
pub fn verify_in(memory: &mut Memory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        return false;
    }
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory.blocks(blocks))
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
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

    /// natter's own PHC strings and the argon2 crate's agree both ways,
    /// one `Memory` serves hash after hash with the same results, and
    /// stronger parameters made elsewhere still verify.
    #[test]
    fn reused_memory_agrees_with_the_argon2_crate() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let mut mem = Memory::new();
        let a = hash_in(&mut mem, "correct horse", [1; 16]).unwrap();
        let b = hash_in(&mut mem, "correct horse", [1; 16]).unwrap();
        assert_eq!(a, b, "memory left from one hash does not change the next");
        assert_eq!(a, hash("correct horse", [1; 16]).unwrap());
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        assert_eq!(
            theirs
                .hash_password_with_salt(b"correct horse", &[1; 16])
                .unwrap()
                .to_string(),
            a
        );
        assert!(theirs.verify_password(b"correct horse", a.as_str()).is_ok());
        assert!(verify_in(&mut mem, "correct horse", &a));
        assert!(!verify_in(&mut mem, "correct horsE", &a));
        // Argon2i with 32 MiB and a 16-byte output, made by the crate.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(32_768, 1, 2, Some(16)).unwrap(),
        )
        .hash_password_with_salt(b"correct horse", b"saltsaltsalt")
        .unwrap()
        .to_string();
        assert!(verify_in(&mut mem, "correct horse", &other), "{other}");
        assert!(!verify_in(&mut mem, "correct horse!", &other));
        assert!(verify_in(&mut mem, "correct horse", &a), "after growing");
        // A memory cost past the cap is refused without hashing.
        let huge = a.replace("m=19456", &format!("m={}", MAX_M_COST + 1));
        assert!(!verify_in(&mut mem, "correct horse", &huge));
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
