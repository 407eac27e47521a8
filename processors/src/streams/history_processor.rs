//! The history view: folds `match-events` into one document per match and publishes it
//! to `match-history` when the match is final; final histories are also re-keyed by
//! stats window for the stats processor.

use schemas::{MatchEvent, MatchHistory};
use topology::{Context, ProcessError, Processor};

use super::stores::HISTORY;
use crate::game::history::{evolve_history, is_final};
use crate::game::stats::{stat_key_for, StatsConfig};

/// See the module docs.
pub struct HistoryProcessor {
    stats: StatsConfig,
}

impl HistoryProcessor {
    /// A history view feeding stats windows of `stats`.
    pub fn new(stats: StatsConfig) -> Self {
        Self { stats }
    }
}

impl Processor for HistoryProcessor {
    type Input = MatchEvent;

    fn process(&mut self, ctx: &mut Context<'_>, _key: &str, ev: MatchEvent) -> Result<(), ProcessError> {
        let mut store = ctx.store::<MatchHistory>(HISTORY)?;
        let before = store.get(&ev.match_id)?;
        let was_final = before.as_ref().is_some_and(is_final);
        let after = evolve_history(before, &ev);
        store.put(&ev.match_id, &after)?;
        if is_final(&after) && !was_final {
            ctx.forward("history", &after.match_id, &after)?;
            if let Some(window) = stat_key_for(&self.stats, &after) {
                ctx.forward("by-window", &window, &after)?;
            }
        }
        Ok(())
    }
}
