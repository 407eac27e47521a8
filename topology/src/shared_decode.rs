//! Decoding a source record once for every processor that reads it.
//!
//! Two processors that read the same topic each decode its records with their own decoder,
//! unless both name one [`SharedDecoder`]: then a task decodes each record once, the first
//! time a processor asks for it, and hands every processor the same `Arc` of the value (or
//! the same error). As in Kafka Streams, where a source node deserializes a record once
//! for all its children.
//!
//! ```
//! use std::sync::Arc;
//! use topology::{Context, DecodeError, ProcessError, Processor, ProcessorDef, SharedDecoder, TopologyBuilder};
//!
//! struct Echo;
//! impl Processor for Echo {
//!     type Input = Arc<serde_json::Value>;
//!     fn process(&mut self, ctx: &mut Context<'_>, key: &str, v: Self::Input) -> Result<(), ProcessError> {
//!         ctx.forward("out", key, &*v)
//!     }
//! }
//!
//! let json = SharedDecoder::new(|b: &[u8]| {
//!     serde_json::from_slice::<serde_json::Value>(b).map_err(|e| DecodeError::new(e.to_string()))
//! });
//! let mut b = TopologyBuilder::new();
//! for name in ["a", "b"] {
//!     b.add_processor(
//!         ProcessorDef::new(name, |_| Echo)
//!             .input_shared("events", &json, |v, _bytes| Ok(v))
//!             .sink("out", &format!("{name}-out")),
//!     );
//! }
//! assert_eq!(b.build().unwrap().subtopologies().len(), 1);
//! ```

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::DecodeError;

type Decode<T> = Arc<dyn Fn(&[u8]) -> Result<T, DecodeError> + Send + Sync>;
type Shared = Arc<dyn Any + Send + Sync>;

/// Identities of shared decoders (an entry of the per-record cache names its decoder).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A decoder that the processors naming it share: each record is decoded once per task.
/// Clones are the same decoder.
pub struct SharedDecoder<T> {
    id: usize,
    decode: Decode<T>,
}

impl<T> Clone for SharedDecoder<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            decode: self.decode.clone(),
        }
    }
}

impl<T: Send + Sync + 'static> SharedDecoder<T> {
    /// A shared decoder from a decode function.
    pub fn new(decode: impl Fn(&[u8]) -> Result<T, DecodeError> + Send + Sync + 'static) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            decode: Arc::new(decode),
        }
    }

    /// The value of `bytes`, decoded now or taken from `cache` if a processor before this
    /// one decoded the same record with this decoder.
    pub(crate) fn get(&self, cache: &mut DecodeCache, bytes: &[u8]) -> Result<Arc<T>, DecodeError> {
        let entry = match cache.entries.iter().position(|(id, _)| *id == self.id) {
            Some(i) => cache.entries[i].1.clone(),
            None => {
                let decoded = (self.decode)(bytes).map(|v| Arc::new(v) as Shared);
                cache.entries.push((self.id, decoded.clone()));
                decoded
            }
        };
        entry?.downcast::<T>().map_err(|_| {
            DecodeError::new(format!(
                "shared decoder {} cached a value that is not a {}",
                self.id,
                std::any::type_name::<T>()
            ))
        })
    }
}

/// The decoded values of the record a task is processing, one per shared decoder used.
#[derive(Default)]
pub(crate) struct DecodeCache {
    entries: Vec<(usize, Result<Shared, DecodeError>)>,
}

impl DecodeCache {
    /// Forgets the previous record's values.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn a_record_is_decoded_once_per_cache_and_again_after_clear() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let d = SharedDecoder::new(move |b: &[u8]| {
            counted.fetch_add(1, Ordering::Relaxed);
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| DecodeError::new(e.to_string()))
        });
        let mut cache = DecodeCache::default();
        let first = d.get(&mut cache, b"one").unwrap();
        let second = d.clone().get(&mut cache, b"one").unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        cache.clear();
        assert_eq!(*d.get(&mut cache, b"two").unwrap(), "two");
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn an_error_is_shared_too_and_decoders_do_not_mix() {
        let strict = SharedDecoder::new(|b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|e| DecodeError::new(format!("not utf-8: {e}")))
        });
        let len = SharedDecoder::new(|b: &[u8]| Ok(b.len()));
        let mut cache = DecodeCache::default();
        let bad = [0xff, 0xfe];
        let e1 = strict.get(&mut cache, &bad).unwrap_err();
        let e2 = strict.get(&mut cache, &bad).unwrap_err();
        assert_eq!(e1, e2);
        assert!(e1.0.starts_with("not utf-8"));
        assert_eq!(*len.get(&mut cache, &bad).unwrap(), 2);
    }
}
