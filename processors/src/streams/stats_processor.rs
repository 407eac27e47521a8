//! Stats: windowed aggregates of finished matches, one document per window on
//! `match-stats` (input re-keyed by window, so one task owns each window).

use schemas::{MatchHistory, MatchStats};
use topology::{Context, ProcessError, Processor};

use super::stores::STATS;
use crate::game::stats::{apply_history, StatsConfig};

/// See the module docs.
pub struct StatsProcessor {
    cfg: StatsConfig,
}

impl StatsProcessor {
    /// Stats over windows of `cfg`.
    pub fn new(cfg: StatsConfig) -> Self {
        Self { cfg }
    }
}

impl Processor for StatsProcessor {
    type Input = MatchHistory;

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        h: MatchHistory,
    ) -> Result<(), ProcessError> {
        let mut store = ctx.store::<MatchStats>(STATS)?;
        let before = store.get(key)?;
        if let Some(after) = apply_history(before.clone(), &h, &self.cfg) {
            if before.as_ref() != Some(&after) {
                store.put(key, &after)?;
                ctx.forward("stats", key, &after)?;
            }
        }
        Ok(())
    }
}
