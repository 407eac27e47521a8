//! Latest-value views of compacted topics, and the analysts' commands built on them
//! (`orchestra tail`, `orchestra history`, `orchestra stats`).
//!
//! A [`LatestView`] is a background thread with its own consumer that **assigns** every
//! partition of one topic from the beginning (no consumer group, no offset commits, so
//! any number of views can read the same topic) and keeps the latest value per key in
//! memory; a tombstone (null value) deletes the key. It is how the read API serves
//! `match-history` and `robot-pool-state` without a store of its own: the compacted topic
//! is the table.
//!
//! ```no_run
//! use std::time::Duration;
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "127.0.0.1:9092");
//! let view = orchestra::views::LatestView::start(&client, "match-history").unwrap();
//! view.wait_caught_up(Duration::from_secs(30));
//! println!("{} finished matches", view.len());
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
mod tail;

use std::time::Duration;

pub use analyst::{history, sorted_histories, stats};
pub use format::format_ts;
pub use latest::{is_compacted, read_latest, Entry, LatestView};
pub use tail::{follow, read_to_end, tail, Row};

/// How long the analysts' commands wait to read a compacted topic to its end.
pub const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(60);
