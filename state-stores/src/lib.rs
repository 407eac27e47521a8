//! State stores for RobotOrchestra Streams.
//!
//! A store is a sorted key-value map of UTF-8 keys to byte values. Stores come in
//! layers, the way Kafka Streams composes them:
//!
//! * [`KeyValueStore`] — what a processor may do with a store: get, put, delete, range,
//!   prefix. [`Storage`] — what only the runtime does with the storage underneath
//!   (apply a batch with its checkpoint, sync, clear); [`SledStore`] and [`MemoryStore`]
//!   implement both.
//! * [`ChangeLoggingStore`] — wraps any backend with a write buffer, in explicit phases:
//!   writes are held in memory while the task processes; at a commit the runtime
//!   [`prepare`](ChangeLoggingStore::prepare)s the store (the buffered changes become the
//!   changelog records, and no further write is taken), produces them, and
//!   [`commit`](ChangeLoggingStore::commit)s exactly those changes to the backend in **one
//!   batch together with the changelog checkpoint** they reach.
//!   [`abort`](ChangeLoggingStore::abort) drops them (an aborted transaction leaves no
//!   trace in the backend).
//! * [`TypedStore`] — a serde (JSON) view over the bytes for processors.
//!
//! ```
//! use state_stores::{ChangeLoggingStore, MemoryStore, KeyValueStore};
//!
//! let mut store = ChangeLoggingStore::new("counts", Box::new(MemoryStore::new()));
//! store.put("k1", b"1".to_vec()).unwrap();
//! assert_eq!(store.get("k1").unwrap().as_deref(), Some(&b"1"[..]));
//! // the changelog records are what `prepare` returns; the backend sees them at `commit`
//! assert_eq!(store.prepare().unwrap().len(), 1);
//! store.commit(Some(42)).unwrap();
//! assert_eq!(store.checkpoint().unwrap(), Some(42));
//! ```

mod error;
mod logging;
mod memory;
mod sled_store;
mod store;
mod typed;
mod write_behind;
mod write_buffer;

pub use error::StoreError;
pub use logging::{Change, ChangeLoggingStore};
pub use memory::MemoryStore;
pub use sled_store::{OpenOutcome, SledStore, SledStoreConfig};
pub use store::{Batch, KeyValueStore, Storage, StoreReader};
pub use typed::TypedStore;
pub use write_buffer::WriteBuffer;

/// The sled database type a task keeps open for its stores.
pub type SledDb = sled::Db;
