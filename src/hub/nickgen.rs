//! Generated nicks (`quiet-heron-42`) and room codes, from a seeded PRNG.
//!
//! The hub stays deterministic: the shell seeds it once from the OS, tests
//! seed it with a constant. SplitMix64 is plenty for names; it is not used
//! for anything secret.

const ADJECTIVES: [&str; 32] = [
    "quiet", "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "kind", "lively",
    "merry", "nimble", "proud", "silly", "witty", "zesty", "bold", "bright", "clever", "cosy",
    "daring", "fuzzy", "grumpy", "humble", "keen", "lucky", "mellow", "noble", "plucky", "rapid",
    "shy", "sunny",
];

const ANIMALS: [&str; 32] = [
    "heron", "otter", "badger", "falcon", "lynx", "panda", "koala", "walrus", "marten", "gecko",
    "bison", "crane", "dingo", "ferret", "gibbon", "hare", "ibis", "jackal", "kiwi", "lemur",
    "moose", "newt", "ocelot", "puffin", "quokka", "raven", "seal", "tapir", "urchin", "vole",
    "wombat", "yak",
];

const CODE_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// SplitMix64.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for names (n is small).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub(crate) fn nick(&mut self) -> String {
        let a = ADJECTIVES[self.below(ADJECTIVES.len() as u64) as usize];
        let b = ANIMALS[self.below(ANIMALS.len() as u64) as usize];
        format!("{a}-{b}-{}", 10 + self.below(90))
    }

    /// A room code: lowercase letters and digits, without look-alikes.
    pub(crate) fn code(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| CODE_ALPHABET[self.below(CODE_ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::names::Nick;

    #[test]
    fn every_generated_nick_is_valid() {
        let mut rng = Rng::new(7);
        for _ in 0..10_000 {
            let n = rng.nick();
            assert!(Nick::parse(&n).is_ok(), "{n}");
        }
        let longest = ADJECTIVES.iter().map(|a| a.len()).max().unwrap_or(0)
            + ANIMALS.iter().map(|a| a.len()).max().unwrap_or(0)
            + 4;
        assert!(longest <= crate::hub::names::MAX_NICK);
    }

    #[test]
    fn codes_are_six_lowercase_alphanumerics() {
        let mut rng = Rng::new(1);
        let c = rng.code(6);
        assert_eq!(c.len(), 6);
        assert!(c
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(rng.code(6), c);
    }
}
