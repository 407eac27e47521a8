//! Deterministic randomness: a SHA-256 seed over labelled parts feeding a SplitMix64
//! generator. Used for offline answers, votes, think times and retry jitter, so the
//! same command always behaves the same (replays are reproducible).
//!
//! ```
//! use processors::robots::SeededRng;
//!
//! let mut a = SeededRng::from_parts(&["robot-1", "match-9", "3"]);
//! let mut b = SeededRng::from_parts(&["robot-1", "match-9", "3"]);
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!(a.below(10) < 10);
//! ```

use sha2::{Digest, Sha256};

/// Small deterministic PRNG (SplitMix64) seeded through SHA-256.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// Seeds from the SHA-256 of the parts (length-prefixed, so `["ab","c"] != ["a","bc"]`).
    pub fn from_parts(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        let mut state = 0u64;
        for chunk in digest.chunks(8) {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            state ^= u64::from_le_bytes(bytes);
        }
        SeededRng { state }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `min..=max` (returns `min` when `max <= min`).
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        if max <= min {
            return min;
        }
        let span = max - min;
        if span == u64::MAX {
            return self.next_u64();
        }
        min + self.next_u64() % (span + 1)
    }

    /// A random element of a slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}
