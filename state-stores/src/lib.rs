//! State stores for RobotOrchestra Streams.
//!
//! A store is a sorted key-value map of UTF-8 keys to byte values. Stores come in
//! layers, the way Kafka Streams composes them:
//!
//! * [`KeyValueStore`] — the trait every backend implements ([`SledStore`], [`MemoryStore`]).
//! * [`ChangeLoggingStore`] — wraps any backend with a write buffer. Writes are held in
//!   memory until the runtime commits; the runtime takes the buffered changes as changelog
//!   records, produces them, and then applies them to the backend in **one batch together
//!   with the changelog checkpoint** they reach. Dropping the buffer (an aborted
//!   transaction) leaves no trace in the backend.
//! * [`TypedStore`] — a serde (JSON) view over the bytes for processors.
//!
//! ```
//! use state_stores::{ChangeLoggingStore, MemoryStore, KeyValueStore};
//!
//! let mut store = ChangeLoggingStore::new("counts", Box::new(MemoryStore::new()));
//! store.put("k1", b"1".to_vec());
//! assert_eq!(store.get("k1").unwrap().as_deref(), Some(&b"1"[..]));
//! // the backend only sees the write after commit
//! let changes = store.pending_changes();
//! assert_eq!(changes.len(), 1);
//! store.commit(Some(42)).unwrap();
//! assert_eq!(store.checkpoint().unwrap(), Some(42));
//! ```

mod error;
mod logging;
mod memory;
mod sled_store;
mod store;
mod typed;
mod write_buffer;

pub use error::StoreError;
pub use logging::{Change, ChangeLoggingStore};
pub use memory::MemoryStore;
pub use sled_store::{OpenOutcome, SledStore, SledStoreConfig};
pub use store::{Batch, KeyValueStore};
pub use typed::TypedStore;
pub use write_buffer::WriteBuffer;

/// The sled database type a task keeps open for its stores.
pub type SledDb = sled::Db;
