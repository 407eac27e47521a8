//! Seat identities `A`–`H`.
//!
//! An [`Identity`] is the anonymous name of a seat in a match. It is `Copy`, orders
//! alphabetically and serializes as a one-letter JSON string (also as a map key).
//!
//! ```
//! use schemas::Identity;
//! let b: Identity = "B".parse().unwrap();
//! assert_eq!(b.index(), 1);
//! assert_eq!(serde_json::to_string(&b).unwrap(), "\"B\"");
//! assert!(Identity::parse("Z").is_none());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most seats a match can have (`A`–`H`).
pub const MAX_SEATS: usize = 8;

const LETTERS: [&str; MAX_SEATS] = ["A", "B", "C", "D", "E", "F", "G", "H"];

/// The identity of a seat: one letter `A`–`H`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity(u8);

/// A string that is not one of `A`–`H`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid identity `{0}`: expected one letter A-H")]
pub struct InvalidIdentity(pub String);

impl Identity {
    /// All identities in order `A`..=`H`.
    pub const ALL: [Identity; MAX_SEATS] = [
        Identity(0),
        Identity(1),
        Identity(2),
        Identity(3),
        Identity(4),
        Identity(5),
        Identity(6),
        Identity(7),
    ];

    /// The identity with the given zero-based index (`0` is `A`).
    pub fn from_index(index: usize) -> Option<Identity> {
        Identity::ALL.get(index).copied()
    }

    /// Zero-based index (`A` is `0`).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The letter as a static string.
    pub fn as_str(self) -> &'static str {
        LETTERS[self.index()]
    }

    /// Parses exactly one upper-case letter `A`–`H`.
    pub fn parse(s: &str) -> Option<Identity> {
        match s.as_bytes() {
            [b @ b'A'..=b'H'] => Some(Identity(b - b'A')),
            _ => None,
        }
    }
}

impl FromStr for Identity {
    type Err = InvalidIdentity;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse(s).ok_or_else(|| InvalidIdentity(s.to_owned()))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Identity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

struct IdentityVisitor;

impl Visitor<'_> for IdentityVisitor {
    type Value = Identity;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a seat identity: one letter A-H")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Identity, E> {
        Identity::parse(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Identity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(IdentityVisitor)
    }
}

impl JsonSchema for Identity {
    fn schema_name() -> Cow<'static, str> {
        "Identity".into()
    }
    fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Seat identity: one letter A-H.",
            "type": "string",
            "pattern": "^[A-H]$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_all_letters_and_rejects_others() {
        for (i, id) in Identity::ALL.iter().enumerate() {
            assert_eq!(id.index(), i);
            let json = serde_json::to_string(id).expect("serialize");
            let back: Identity = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, *id);
        }
        for bad in ["", "I", "a", "AB", "Z", " A"] {
            assert!(Identity::parse(bad).is_none(), "{bad}");
            assert!(serde_json::from_str::<Identity>(&format!("\"{bad}\"")).is_err());
        }
    }

    #[test]
    fn identity_works_as_json_map_key() {
        let mut m = std::collections::BTreeMap::new();
        m.insert(Identity::ALL[2], 3u32);
        m.insert(Identity::ALL[0], 1u32);
        let json = serde_json::to_string(&m).expect("serialize");
        assert_eq!(json, r#"{"A":1,"C":3}"#);
        let back: std::collections::BTreeMap<Identity, u32> =
            serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, m);
    }
}
