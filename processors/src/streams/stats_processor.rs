//! Stats: windowed aggregates of finished matches, one document per window on
//! `match-stats` (input re-keyed by window, so one task owns each window).
//!
//! The task's recent windows are kept decoded in memory; a window that changed is written
//! to its store and forwarded once per commit, in [`Processor::flush`] (a window document
//! grows with the matches it counts, so decoding and re-encoding it for every match would
//! make a busy window quadratic).

use std::collections::{BTreeSet, HashMap};

use schemas::MatchStats;
use topology::{Context, ProcessError, Processor};

use super::sequence;
use super::stores::STATS;
use crate::game::stats::{apply_outcome, MatchOutcome, StatsConfig};

/// Most windows kept decoded per task (clean ones are dropped when full).
const CACHE_CAP: usize = 64;

/// See the module docs.
pub struct StatsProcessor {
    cfg: StatsConfig,
    /// Recent windows (`None`: known to have no document yet).
    cache: HashMap<String, Option<MatchStats>>,
    /// Windows changed since the last flush.
    dirty: BTreeSet<String>,
}

impl StatsProcessor {
    /// Stats over windows of `cfg`.
    pub fn new(cfg: StatsConfig) -> Self {
        Self {
            cfg,
            cache: HashMap::new(),
            dirty: BTreeSet::new(),
        }
    }
}

impl Processor for StatsProcessor {
    /// What a final match contributes (the history view's `by-window` output).
    type Input = MatchOutcome;

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        h: MatchOutcome,
    ) -> Result<(), ProcessError> {
        if !self.cache.contains_key(key) {
            if self.cache.len() >= CACHE_CAP {
                let dirty = &self.dirty;
                self.cache.retain(|k, _| dirty.contains(k));
            }
            let stored = ctx.store::<MatchStats>(STATS)?.get(key)?;
            self.cache.insert(key.to_owned(), stored);
        }
        let Some(slot) = self.cache.get_mut(key) else {
            return Err(ProcessError::Failed(format!("window `{key}` not loaded")));
        };
        // A history changes its window only by being counted (final and new to it).
        let counted_before = slot.as_ref().map(|s| s.matches_completed);
        *slot = apply_outcome(slot.take(), &h, &self.cfg);
        if slot.as_ref().map(|s| s.matches_completed) != counted_before {
            self.dirty.insert(key.to_owned());
        } else if h.completed_at.is_some() {
            // The window counted this match already: a redelivered outcome.
            sequence::duplicate("stats");
        }
        Ok(())
    }

    /// Writes and forwards every window that changed since the last commit.
    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        for key in std::mem::take(&mut self.dirty) {
            let Some(Some(stats)) = self.cache.get(&key) else {
                return Err(ProcessError::Failed(format!(
                    "changed window `{key}` left the cache before its flush"
                )));
            };
            ctx.put_and_forward(STATS, "stats", &key, stats)?;
        }
        Ok(())
    }
}
