//! Latest-value views of compacted topics, and the analysts' commands built on them
//! (`orchestra tail`, `orchestra history`, `orchestra stats`).
//!
//! A [`LatestView`] is a background thread with its own consumer that **assigns** every
//! partition of one topic from the beginning (no consumer group, no offset commits, so
//! any number of views can read the same topic) and keeps the latest value per key in a
//! local sled database, a [`ViewStore`]; a tombstone (null value) deletes the key. It is
//! how the read API serves `match-history` and `robot-pool-state`: the compacted topic is
//! the table, the store a cache of it. The store keeps a newest-first index (so a page of
//! history is a short walk on disk, not a sort in RAM) and its read position, written
//! atomically with the data, so a restarted process resumes instead of re-reading the
//! topic. Memory is sled's page cache, capped by [`ViewConfig::cache_bytes`]
//! (`--view-cache-mb`), whatever the number of matches.
//!
//! ```no_run
//! use std::time::Duration;
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "127.0.0.1:9092");
//! let config = orchestra::views::ViewConfig::in_state_dir("state".as_ref(), "match-history", 64);
//! let view = orchestra::views::LatestView::open(&client, "match-history", &config).unwrap();
//! view.wait_caught_up(Duration::from_secs(30));
//! println!("{} finished matches, newest: {:?}", view.len(), view.page(0, 1).unwrap());
//!
//! // The analysts' commands write to any `impl Write`:
//! let all = orchestra::time_range::TimeRange::default();
//! orchestra::views::history(&client, 10, true, all, &mut std::io::stdout()).unwrap();
//! ```
//!
//! Output formats: JSON lines by default — for `tail` one object per record,
//! `{"key":..,"partition":..,"offset":..,"timestamp":..,"value":..}` (the value inline as
//! JSON when it is JSON, else as a string, `null` for a tombstone); for `history` and
//! `stats` the documents themselves. `table = true` prints an aligned text table instead.

mod analyst;
mod format;
mod latest;
mod reader;
mod store;
mod tail;

use std::time::Duration;

pub use analyst::{history, sorted_histories, stats};
pub use format::format_ts;
pub use latest::{
    is_compacted, read_latest, Entry, LatestView, ViewConfig, DEFAULT_VIEW_CACHE_BYTES,
};
pub use store::{Order, Record, ViewStore, ViewStoreError};
pub use tail::{follow, read_to_end, tail, Row};

/// How long the analysts' commands wait to read a compacted topic to its end.
pub const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(60);
