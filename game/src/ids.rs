//! Deterministic ids and hashes.
//!
//! Derived event ids are a hash of the match, the cause's id and the event's position in
//! the cause's output, so a replay or a retried transaction produces the same ids.
//! [`fingerprint`] is the 64-bit FNV-1a hash the match state keeps of recent input ids.
//!
//! ```
//! use game::ids::{derive_event_id, fingerprint};
//! let a = derive_event_id("m1", "req-1", 0);
//! assert_eq!(a, derive_event_id("m1", "req-1", 0));
//! assert_ne!(a, derive_event_id("m1", "req-1", 1));
//! assert_eq!(a.len(), 32);
//! assert_eq!(fingerprint("x"), fingerprint("x"));
//! ```

use sha2::{Digest, Sha256};

/// SHA-256 of the parts, each prefixed with its length (so `("ab","c")` and `("a","bc")`
/// differ).
pub fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// The id of the `index`-th event derived from the input `cause_id` in match `match_id`:
/// 32 lower-case hex characters (128 bits of SHA-256).
pub fn derive_event_id(match_id: &str, cause_id: &str, index: usize) -> String {
    let d = digest(&[
        match_id.as_bytes(),
        cause_id.as_bytes(),
        &(index as u64).to_le_bytes(),
    ]);
    hex(&d[..16])
}

/// 64-bit FNV-1a hash of an id.
pub fn fingerprint(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A `u64` from the first 8 bytes of [`digest`].
pub fn hash_u64(parts: &[&[u8]]) -> u64 {
    let d = digest(parts);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_depend_on_match_cause_and_index() {
        let base = derive_event_id("m", "c", 0);
        assert_ne!(base, derive_event_id("m2", "c", 0));
        assert_ne!(base, derive_event_id("m", "c2", 0));
        assert!(base.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
