//! The history view: folds `match-events` into one document per match and publishes it
//! to `match-history` when the match is final; what a final match contributes to stats
//! ([`MatchOutcome`]) is re-keyed by stats window for the stats processor.
//!
//! Store layout (`match-history-view`): while a match runs, its events are kept as a
//! newline-delimited JSON log, one chunk per round under
//! `log/{len(matchId):04}/{matchId}/{chunk:04}` (chunk `n` starts at the `n`-th
//! `round.started`), and the document being built is kept in memory only. Appending an
//! event to its round's chunk costs a small copy (rewriting the growing document on every
//! event made the view quadratic in JSON work); the chunk is written once per commit, in
//! [`Processor::flush`] (and when the next chunk starts or the memory is emptied); lines
//! are the input bytes when they are one line (no re-encode). A new processor (task
//! assignment, restore) rebuilds a running match's document from its log on the match's
//! next event.
//!
//! When a match is final its log is deleted and only a marker `final/{matchId}` (value:
//! its `completedAt`) stays: the document lives on the compacted `match-history` topic, a
//! finished match's history never changes, and events that arrive for it later are
//! ignored. (Keeping the whole final document in the store would make it most of the bytes
//! the view writes to sled and to its changelog, for no reader.)

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use schemas::{MatchEvent, MatchEventData, MatchHistory};
use topology::{Context, ProcessError, Processor};

use super::sequence;
use super::stores::HISTORY;
use crate::game::history::{evolve_history, history_position, is_final};
use crate::game::Position;

/// This fold's name in the duplicate and gap metrics.
const FOLD: &str = "history";
use crate::game::stats::{stat_key_for, MatchOutcome, StatsConfig};

/// Most running matches whose document is kept in memory per task (emptied when full,
/// after writing their logs; documents are then rebuilt from their logs).
const OPEN_CAP: usize = 10_000;

/// A `match-events` record: the decoded event (shared with the pool, which reads the same
/// records) and the bytes it was decoded from (appended to the log as is, saving a
/// re-encode).
pub struct HistoryInput {
    pub event: Arc<MatchEvent>,
    pub raw: Vec<u8>,
}

/// A running match: its document and the current chunk of its log.
struct Open {
    doc: MatchHistory,
    chunk: u32,
    log: Vec<u8>,
}

/// See the module docs.
pub struct HistoryProcessor {
    stats: StatsConfig,
    open: HashMap<String, Open>,
    /// Open matches whose current chunk changed since it was last written.
    dirty: HashSet<String>,
}

fn log_prefix(match_id: &str) -> String {
    format!("log/{:04}/{match_id}/", match_id.len())
}

fn log_key(match_id: &str, chunk: u32) -> String {
    format!("log/{:04}/{match_id}/{chunk:04}", match_id.len())
}

fn final_key(match_id: &str) -> String {
    format!("final/{match_id}")
}

fn failed(e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Failed(format!("history log: {e}"))
}

/// Appends the event as one line of the log: its input bytes when they are one line,
/// else its encoding.
fn append_line(log: &mut Vec<u8>, input: &HistoryInput) -> Result<(), ProcessError> {
    if input.raw.is_empty() || input.raw.contains(&b'\n') {
        log.extend_from_slice(&input.event.to_json_vec().map_err(failed)?);
    } else {
        log.extend_from_slice(&input.raw);
    }
    log.push(b'\n');
    Ok(())
}

impl HistoryProcessor {
    /// A history view feeding stats windows of `stats`.
    pub fn new(stats: StatsConfig) -> Self {
        Self {
            stats,
            open: HashMap::new(),
            dirty: HashSet::new(),
        }
    }

    /// The running match's document, from memory or rebuilt from its log.
    fn open(
        &mut self,
        ctx: &mut Context<'_>,
        match_id: &str,
    ) -> Result<Option<Open>, ProcessError> {
        if let Some(open) = self.open.remove(match_id) {
            return Ok(Some(open));
        }
        let chunks = ctx.raw_store(HISTORY)?.prefix(&log_prefix(match_id))?;
        let Some(last) = chunks.len().checked_sub(1) else {
            return Ok(None);
        };
        let mut doc = None;
        for (_, log) in &chunks {
            for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let ev: MatchEvent = schemas::decode(line).map_err(failed)?;
                doc = Some(evolve_history(doc, &ev));
            }
        }
        let log = chunks
            .into_iter()
            .nth(last)
            .map(|(_, log)| log)
            .unwrap_or_default();
        Ok(doc.map(|doc| Open {
            doc,
            chunk: last as u32,
            log,
        }))
    }

    /// Writes the current chunk of every changed open match to the store.
    fn write_dirty(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let mut dirty: Vec<String> = self.dirty.drain().collect();
        dirty.sort();
        let store = ctx.raw_store(HISTORY)?;
        for id in dirty {
            if let Some(open) = self.open.get(&id) {
                store.put(&log_key(&id, open.chunk), open.log.clone())?;
            }
        }
        Ok(())
    }
}

impl Processor for HistoryProcessor {
    type Input = HistoryInput;

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        _key: &str,
        input: HistoryInput,
    ) -> Result<(), ProcessError> {
        let ev = &input.event;
        let match_id = ev.match_id.as_str();
        let open = self.open(ctx, match_id)?;
        if open.is_none() && ctx.raw_store(HISTORY)?.get(&final_key(match_id))?.is_some() {
            // Published already: the history of a finished match is final, and every
            // event of it that comes now is a redelivered one.
            sequence::duplicate(FOLD);
            return Ok(());
        }
        let at = history_position(open.as_ref().map(|o| &o.doc), ev);
        if at != Position::Next {
            if let Some(o) = open {
                self.open.insert(match_id.to_owned(), o);
            }
            return sequence::skip(FOLD, match_id, at);
        }
        let (before, chunk, log) = match open {
            Some(o) => (Some(o.doc), Some(o.chunk), o.log),
            None => (None, None, Vec::new()),
        };
        let after = evolve_history(before, ev);
        if !is_final(&after) {
            let (chunk, mut log) = match (chunk, &ev.data) {
                (Some(c), MatchEventData::RoundStarted(_)) => {
                    // The finished chunk is written now; the new one at the next flush.
                    if self.dirty.contains(match_id) {
                        ctx.raw_store(HISTORY)?.put(&log_key(match_id, c), log)?;
                    }
                    (c + 1, Vec::new())
                }
                (Some(c), _) => (c, log),
                (None, _) => (0, Vec::new()),
            };
            append_line(&mut log, &input)?;
            if self.open.len() >= OPEN_CAP {
                self.write_dirty(ctx)?;
                self.open.clear();
            }
            if !self.dirty.contains(match_id) {
                self.dirty.insert(match_id.to_owned());
            }
            self.open.insert(
                match_id.to_owned(),
                Open {
                    doc: after,
                    chunk,
                    log,
                },
            );
            return Ok(());
        }
        self.dirty.remove(match_id);
        let store = ctx.raw_store(HISTORY)?;
        let completed_at = after.completed_at.unwrap_or(ev.timestamp);
        store.put(&final_key(match_id), completed_at.to_string().into_bytes())?;
        if let Some(last) = chunk {
            for c in 0..=last {
                store.delete(&log_key(match_id, c))?;
            }
        }
        if let Some(window) = stat_key_for(&self.stats, &after) {
            // Only what the stats read is re-keyed (about a quarter of the document).
            ctx.forward("by-window", &window, &MatchOutcome::from(&after))?;
        }
        let raw = serde_json::to_vec(&after).map_err(failed)?;
        ctx.forward_raw("history", &after.match_id, Some(raw))?;
        Ok(())
    }

    /// Writes the logs changed since the last commit.
    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        self.write_dirty(ctx)
    }
}
