//! The documents an export flattens: finished matches from `match-history` and windows
//! from `match-stats`, decoded, filtered by time, bad values skipped and counted.
//!
//! ```
//! use orchestra::export::Documents;
//! use orchestra::time_range::TimeRange;
//! let docs = Documents::from_values(
//!     [b"{not json".as_slice()],
//!     std::iter::empty::<&[u8]>(),
//!     TimeRange::default(),
//! );
//! assert_eq!((docs.histories.len(), docs.skipped), (0, 1));
//! ```

use processors::streams::topics;
use rdkafka::ClientConfig;
use schemas::{HistoryStatus, MatchHistory, MatchStats};

use super::ExportError;
use crate::time_range::TimeRange;
use crate::views::{read_latest, READ_TO_END_TIMEOUT};

/// Decoded documents, oldest match first.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    /// Finished matches completed in the range, by completion time then match id.
    pub histories: Vec<MatchHistory>,
    /// `match-stats` windows overlapping the range, by window start then key.
    pub stats: Vec<MatchStats>,
    /// Values that could not be decoded (malformed JSON, wrong shape or version).
    pub skipped: usize,
    /// Matches left out: unfinished, or completed outside the range.
    pub filtered_out: usize,
}

impl Documents {
    /// Decodes raw `match-history` and `match-stats` values (tombstones already removed).
    pub fn from_values<'a>(
        histories: impl IntoIterator<Item = &'a [u8]>,
        stats: impl IntoIterator<Item = &'a [u8]>,
        range: TimeRange,
    ) -> Self {
        let mut docs = Documents::default();
        for bytes in histories {
            docs.add_history(bytes, range);
        }
        for bytes in stats {
            match schemas::decode_document::<MatchStats>(bytes) {
                Ok(s) if range.overlaps(s.window_start, s.window_end) => docs.stats.push(s),
                Ok(_) => {}
                Err(e) => {
                    docs.skipped += 1;
                    tracing::warn!(error = %e, "export: skipping an undecodable match-stats value");
                }
            }
        }
        docs.sorted()
    }

    /// Decodes owned `match-history` values as they come (e.g. streamed from a view's
    /// store), without holding the raw values.
    pub fn from_owned_values(
        histories: impl IntoIterator<Item = Vec<u8>>,
        range: TimeRange,
    ) -> Self {
        let mut docs = Documents::default();
        for bytes in histories {
            docs.add_history(&bytes, range);
        }
        docs.sorted()
    }

    fn add_history(&mut self, bytes: &[u8], range: TimeRange) {
        match schemas::decode_document::<MatchHistory>(bytes) {
            Ok(h) => {
                let done = h.status == HistoryStatus::Completed;
                if done && h.completed_at.is_some_and(|t| range.contains(t)) {
                    self.histories.push(h);
                } else {
                    self.filtered_out += 1;
                }
            }
            Err(e) => {
                self.skipped += 1;
                tracing::warn!(error = %e, "export: skipping an undecodable match-history value");
            }
        }
    }

    fn sorted(mut self) -> Self {
        self.histories
            .sort_by(|a, b| (a.completed_at, &a.match_id).cmp(&(b.completed_at, &b.match_id)));
        self.stats
            .sort_by(|a, b| (a.window_start, &a.stat_key).cmp(&(b.window_start, &b.stat_key)));
        self
    }

    /// Decodes `match-history` documents from JSON lines (`demo --history-out`, `orchestra
    /// history` output); blank lines are ignored.
    pub fn from_json_lines(text: &str, range: TimeRange) -> Self {
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::as_bytes);
        Self::from_values(lines, std::iter::empty(), range)
    }
}

/// Reads both compacted topics to their end through `client` and decodes them.
pub fn read_documents(
    client: &ClientConfig,
    range: TimeRange,
    progress: bool,
) -> Result<Documents, ExportError> {
    let mut raw = Vec::new();
    for topic in [topics::MATCH_HISTORY, topics::MATCH_STATS] {
        if progress {
            eprintln!("export: reading {topic}");
        }
        let latest =
            read_latest(client, topic, READ_TO_END_TIMEOUT).map_err(|e| ExportError::Read {
                topic,
                source: e.into(),
            })?;
        if progress {
            eprintln!("export: {topic}: {} documents", latest.len());
        }
        raw.push(latest);
    }
    let history = raw[0].values().map(|e| e.value.as_slice());
    let stats = raw[1].values().map(|e| e.value.as_slice());
    let docs = Documents::from_values(history, stats, range);
    if progress && docs.skipped > 0 {
        eprintln!("export: skipped {} undecodable documents", docs.skipped);
    }
    Ok(docs)
}
