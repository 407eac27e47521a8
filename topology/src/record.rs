//! Records flowing into and out of tasks.

/// A record read from a source topic (borrowed from the consumer's buffer).
#[derive(Debug, Clone, Copy)]
pub struct InRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// A record a task wants written: to a sink, a changelog or the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    /// Shared with every record of the same sink (no copy per output).
    pub topic: std::sync::Arc<str>,
    /// Explicit partition (changelogs); `None` partitions by key (murmur2, like Java clients).
    pub partition: Option<i32>,
    pub key: Vec<u8>,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
    pub timestamp: i64,
    pub headers: Vec<(String, String)>,
}

impl OutRecord {
    /// The value as UTF-8 text (lossy), for tests and tools.
    pub fn value_str(&self) -> Option<String> {
        self.value
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The key as UTF-8 text (lossy).
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }

    /// A header value by name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Kafka's default partitioner (murmur2 of the key bytes, as the Java client and
/// librdkafka's `murmur2_random` compute it), so co-partitioned topics written by any
/// client agree on where a key lives. Callers use [`partition_for`].
pub(crate) fn murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// The partition of `key` among `partitions` (Kafka's `toPositive(murmur2) % n`), as the
/// Java client and librdkafka's `murmur2_random` place keyed records.
///
/// ```
/// assert_eq!(topology::partition_for(b"21", 1), 0);
/// assert!((0..12).contains(&topology::partition_for(b"match-1", 12)));
/// ```
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::{murmur2, partition_for};

    #[test]
    fn murmur2_matches_the_java_clients_test_vectors() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn partition_for_is_the_positive_hash_modulo_the_count() {
        let h = murmur2(b"21");
        assert_eq!(partition_for(b"21", 7), (h & 0x7fff_ffff) % 7);
        assert_eq!(partition_for(b"21", 0), 0, "no partitions: partition 0");
    }
}
