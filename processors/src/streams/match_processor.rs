//! The match processor: decide → events (or a rejection to the DLQ), evolve → state.
//!
//! Emits every event to `match-events` and the new snapshot to `match-state`. Deadlines
//! are kept in an index store (`{deadline}|{matchId}`) that a wall-clock punctuator
//! scans: only due matches are loaded.

use std::time::Duration;

use schemas::{MatchEvent, MatchState};
use topology::{Context, ProcessError, Processor, Punctuation, PunctuationType};

use super::stores::{DEADLINES, MATCHES};
use crate::game::{due_timeouts, evolve, handle, GameConfig, MatchInput, MatchStateExt};

/// See the module docs.
pub struct MatchProcessor {
    cfg: GameConfig,
    check_every: Duration,
}

fn deadline_key(deadline: i64, match_id: &str) -> String {
    format!("{:020}|{match_id}", deadline.max(0))
}

impl MatchProcessor {
    /// A processor with game rules `cfg`, checking deadlines every `check_every`.
    pub fn new(cfg: GameConfig, check_every: Duration) -> Self {
        Self { cfg, check_every }
    }

    fn save(ctx: &mut Context<'_>, before: Option<i64>, state: &MatchState, events: &[MatchEvent]) -> Result<(), ProcessError> {
        for ev in events {
            let bytes = ev.to_json_vec().map_err(|e| ProcessError::Failed(format!("encoding event: {e}")))?;
            ctx.forward_raw("events", &ev.match_id, Some(bytes))?;
        }
        let raw = serde_json::to_vec(state).map_err(|e| ProcessError::Failed(format!("encoding state: {e}")))?;
        ctx.store::<MatchState>(MATCHES)?.put_raw(&state.match_id, raw.clone())?;
        ctx.forward_raw("state", &state.match_id, Some(raw))?;
        let after = if state.is_completed() { None } else { state.next_deadline() };
        if before != after {
            let mut idx = ctx.store::<String>(DEADLINES)?;
            if let Some(d) = before {
                idx.delete(&deadline_key(d, &state.match_id))?;
            }
            if let Some(d) = after {
                idx.put(&deadline_key(d, &state.match_id), &state.match_id)?;
            }
        }
        Ok(())
    }
}

impl Processor for MatchProcessor {
    type Input = MatchInput;

    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        ctx.schedule("deadlines", self.check_every, PunctuationType::WallClock);
        Ok(())
    }

    fn process(&mut self, ctx: &mut Context<'_>, key: &str, input: MatchInput) -> Result<(), ProcessError> {
        if key != input.match_id() && !input.match_id().is_empty() {
            return Err(ProcessError::rejected(format!(
                "key_mismatch: record key `{key}` is not the event's matchId `{}`",
                input.match_id()
            )));
        }
        let state = ctx.store::<MatchState>(MATCHES)?.get(input.match_id())?;
        let before = state.as_ref().filter(|s| !s.is_completed()).and_then(|s| s.next_deadline());
        let (state, events) = handle(state, &input, &self.cfg).map_err(|r| ProcessError::rejected(format!("{}: {}", r.code.as_str(), r.message)))?;
        match state {
            Some(state) if !events.is_empty() => Self::save(ctx, before, &state, &events),
            _ => Ok(()),
        }
    }

    fn punctuate(&mut self, ctx: &mut Context<'_>, p: &Punctuation<'_>) -> Result<(), ProcessError> {
        let now = p.timestamp;
        let due = ctx.store::<String>(DEADLINES)?.range("", Some(&deadline_key(now + 1, "")))?;
        for (_, match_id) in due {
            let Some(state) = ctx.store::<MatchState>(MATCHES)?.get(&match_id)? else { continue };
            let before = state.next_deadline();
            let events = due_timeouts(&state, now);
            if events.is_empty() {
                continue;
            }
            let mut s = Some(state);
            for e in &events {
                s = Some(evolve(s, e));
            }
            if let Some(s) = s {
                Self::save(ctx, before, &s, &events)?;
            }
        }
        Ok(())
    }
}
