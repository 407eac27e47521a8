//! The match processor: decide → events (or a rejection to the DLQ), evolve → state.
//!
//! Emits every event to `match-events` and the new snapshot to `match-state`. Deadlines
//! are kept in an index store (`{deadline}|{matchId}`) that a wall-clock punctuator
//! scans: only due matches are loaded.
//!
//! The decoded states of the task's recent matches are kept in memory. Events are
//! forwarded as they happen; the state of a changed match is encoded, written to the
//! `matches` store and forwarded to `match-state` once per commit, in [`Processor::flush`]
//! (as Kafka Streams' record cache does for tables): `match-state` is compacted, so only
//! the latest value per key matters, and a match that changes 20 times between commits
//! costs one encode. Dirty states are never evicted from the cache before their flush. A
//! new processor (task assignment, restore) starts with an empty cache and reads the store.
//!
//! `orchestra_active_matches` is derived from the task's state: the matches not completed
//! in the `matches` store are counted at the task's first flush (after restore and
//! recovery), and the count follows every state change from then on (a match becoming or
//! ceasing to be active), so a rebalance or reprocessing cannot skew it. The runtime sums
//! it over the process's running tasks.
//!
//! The same scan repairs the deadline index: it must hold exactly each active match's next
//! deadline. The two stores have changelogs of their own, and a crash during a commit can
//! land one's records without the other's; a match whose deadline the index lacks would
//! never time out.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use schemas::{MatchEvent, MatchState, MatchStatus};
use topology::{Context, ProcessError, Processor, Punctuation, PunctuationType};

use super::stores::{DEADLINES, MATCHES};
use crate::game::{
    due_timeouts_with_grace, evolve, handle_in_place, position, GameConfig, MatchInput,
    MatchStateExt, Position,
};
use crate::metrics as m;

/// Most match states kept decoded per task (the cache is emptied when full).
const CACHE_CAP: usize = 10_000;

/// See the module docs.
pub struct MatchProcessor {
    cfg: GameConfig,
    check_every: Duration,
    /// Recent matches of this task (newer than the store for those in `dirty`).
    cache: HashMap<String, MatchState>,
    /// Matches changed since the last flush.
    dirty: HashSet<String>,
    /// Matches of this task not completed (stored or dirty); `None` until counted in the
    /// store at the first flush.
    active: Option<u64>,
}

/// What [`MatchProcessor::changed`] needs to know of a match before a change.
#[derive(Debug, Clone, Copy)]
struct Before {
    /// Its entry in the deadline index.
    deadline: Option<i64>,
    /// Whether it existed and was not completed.
    active: bool,
}

impl Before {
    fn of(state: Option<&MatchState>) -> Self {
        let active = state.filter(|s| !s.is_completed());
        Self {
            deadline: active.and_then(|s| s.next_deadline()),
            active: active.is_some(),
        }
    }
}

/// The one field of a stored match state the active count needs (decoding the rest of a
/// state would be wasted).
#[derive(serde::Deserialize, serde::Serialize)]
struct StoredStatus {
    status: MatchStatus,
}

fn deadline_key(deadline: i64, match_id: &str) -> String {
    format!("{:020}|{match_id}", deadline.max(0))
}

impl MatchProcessor {
    /// A processor with game rules `cfg`, checking deadlines every `check_every`.
    pub fn new(cfg: GameConfig, check_every: Duration) -> Self {
        Self {
            cfg,
            check_every,
            cache: HashMap::new(),
            dirty: HashSet::new(),
            active: None,
        }
    }

    /// The state of `match_id`: from the cache (taken out of it) or the store.
    fn load(
        &mut self,
        ctx: &mut Context<'_>,
        match_id: &str,
    ) -> Result<Option<MatchState>, ProcessError> {
        if let Some(state) = self.cache.remove(match_id) {
            return Ok(Some(state));
        }
        Ok(ctx.store::<MatchState>(MATCHES)?.get(match_id)?)
    }

    /// Puts a state back in the cache (dirty ones are flushed at commit). Completed matches stay
    /// too: the pool's `robot.released` events for them arrive right after the end.
    fn keep(&mut self, state: Option<MatchState>) {
        let Some(state) = state else {
            return;
        };
        if self.cache.len() >= CACHE_CAP {
            let dirty = &self.dirty;
            self.cache.retain(|id, _| dirty.contains(id));
        }
        self.cache.insert(state.match_id.clone(), state);
    }

    fn save(
        &mut self,
        ctx: &mut Context<'_>,
        before: Before,
        state: &MatchState,
        events: &[MatchEvent],
    ) -> Result<(), ProcessError> {
        for ev in events {
            record_metrics(ev);
            let bytes = ev
                .to_json_vec()
                .map_err(|e| ProcessError::Failed(format!("encoding event: {e}")))?;
            ctx.forward_raw("events", &ev.match_id, Some(bytes))?;
        }
        self.changed(ctx, before, state)
    }

    /// Marks a state changed (written and forwarded at the next flush), moves its entry
    /// in the deadline index from `before` to its next deadline, and counts it in or out
    /// of the active matches.
    fn changed(
        &mut self,
        ctx: &mut Context<'_>,
        before: Before,
        state: &MatchState,
    ) -> Result<(), ProcessError> {
        self.dirty.insert(state.match_id.clone());
        let now = Before::of(Some(state));
        if let Some(n) = self.active.as_mut() {
            match (before.active, now.active) {
                (false, true) => *n += 1,
                (true, false) => *n = n.saturating_sub(1),
                _ => {}
            }
        }
        let (before, after) = (before.deadline, now.deadline);
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

/// Event metrics: round duration.
fn record_metrics(ev: &MatchEvent) {
    if let schemas::MatchEventData::RoundCompleted(r) = &ev.data {
        metrics::histogram!(m::ROUND_DURATION).record(r.duration_ms as f64 / 1000.0);
    }
}

/// The task's one scan of the `matches` store (see the module docs): returns the number of
/// matches not completed, and puts in the deadline index each one's next deadline that it
/// lacks and deletes every entry that is not one.
fn scan_matches(ctx: &mut Context<'_>) -> Result<u64, ProcessError> {
    let active: Vec<String> = ctx
        .store::<StoredStatus>(MATCHES)?
        .range("", None)?
        .into_iter()
        .filter(|(_, s)| s.status != MatchStatus::Completed)
        .map(|(id, _)| id)
        .collect();
    let mut expected = HashMap::new();
    let states = ctx.store::<MatchState>(MATCHES)?;
    for id in &active {
        if let Some(d) = states.get(id)?.and_then(|s| s.next_deadline()) {
            expected.insert(deadline_key(d, id), id.clone());
        }
    }
    let mut index = ctx.store::<String>(DEADLINES)?;
    let present = index.range("", None)?;
    let mut stale = 0;
    for (key, _) in &present {
        if expected.remove(key).is_none() {
            index.delete(key)?;
            stale += 1;
        }
    }
    let missing = expected.len();
    for (key, id) in expected {
        index.put(&key, &id)?;
    }
    if stale + missing > 0 {
        tracing::warn!(
            missing,
            stale,
            "deadline index repaired: it disagreed with the matches' states"
        );
    }
    Ok(active.len() as u64)
}

impl Processor for MatchProcessor {
    /// `None`: an input that cannot concern a match (an orchestration event other than
    /// `round.robots_assigned`), skipped undecoded.
    type Input = Option<MatchInput>;

    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        ctx.schedule("deadlines", self.check_every, PunctuationType::WallClock);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        key: &str,
        input: Option<MatchInput>,
    ) -> Result<(), ProcessError> {
        let Some(input) = input else {
            return Ok(());
        };
        if key != input.match_id() && !input.match_id().is_empty() {
            return Err(ProcessError::rejected(format!(
                "key_mismatch: record key `{key}` is not the event's matchId `{}`",
                input.match_id()
            )));
        }
        let mut state = self.load(ctx, input.match_id())?;
        let before = Before::of(state.as_ref());
        // decide → events, each evolved into the state (in place).
        let events = match handle_in_place(&mut state, &input, &self.cfg) {
            Ok(events) => events,
            Err(r) => {
                self.keep(state);
                return Err(ProcessError::rejected(format!(
                    "{}: {}",
                    r.code.as_str(),
                    r.message
                )));
            }
        };
        if let (Some(s), false) = (&state, events.is_empty()) {
            self.save(ctx, before, s, &events)?;
        }
        self.keep(state);
        Ok(())
    }

    /// Folds an event this processor published before a crash that its restored state
    /// lacks (see `ProcessorDef::recover_from`): only the next event of its match is
    /// applied; events the state covers are skipped, and so are unnumbered ones (written
    /// before numbering: a restored state already covers them).
    fn recover(
        &mut self,
        ctx: &mut Context<'_>,
        _key: &str,
        value: &[u8],
    ) -> Result<(), ProcessError> {
        let ev: MatchEvent = match schemas::decode(value) {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "skipping an undecodable record of match-events in recovery");
                return Ok(());
            }
        };
        if ev.sequence.is_none() {
            return Ok(());
        }
        let state = self.load(ctx, &ev.match_id)?;
        let at = position(state.as_ref().map_or(0, |s| s.events_applied), ev.sequence);
        if at != Position::Next {
            if let Some(reason) = at.gap_reason(&ev.match_id) {
                metrics::counter!(m::SEQUENCE_GAPS, "fold" => "match-recovery").increment(1);
                tracing::error!(%reason, "recovery found a gap in match-events");
            }
            self.keep(state);
            return Ok(());
        }
        let before = Before::of(state.as_ref());
        let s = evolve(state, &ev);
        self.changed(ctx, before, &s)?;
        self.keep(Some(s));
        Ok(())
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        let mut dirty: Vec<String> = self.dirty.drain().collect();
        dirty.sort();
        for id in dirty {
            let Some(state) = self.cache.get(&id) else {
                return Err(ProcessError::Failed(format!(
                    "changed match `{id}` left the cache before its flush"
                )));
            };
            ctx.put_and_forward(MATCHES, "state", &id, state)?;
        }
        // Scanned after the dirty states are written, so the store holds every match.
        let active = match self.active {
            Some(n) => n,
            None => *self.active.insert(scan_matches(ctx)?),
        };
        ctx.set_gauge(m::ACTIVE_MATCHES, active as f64);
        Ok(())
    }

    fn punctuate(
        &mut self,
        ctx: &mut Context<'_>,
        p: &Punctuation<'_>,
    ) -> Result<(), ProcessError> {
        // Timeouts fire a grace period after their deadline, so a request stamped in time
        // but still in flight at the deadline is applied (decide judges lateness by the
        // request's own timestamp).
        let grace = self.cfg.deadline_grace_ms;
        let passed = p.timestamp.saturating_sub(grace as i64);
        let due = ctx
            .store::<String>(DEADLINES)?
            .range("", Some(&deadline_key(passed + 1, "")))?;
        for (_, match_id) in due {
            let Some(state) = self.load(ctx, &match_id)? else {
                continue;
            };
            let before = Before::of(Some(&state));
            let events = due_timeouts_with_grace(&state, p.timestamp, grace);
            let mut s = state;
            for e in &events {
                s = evolve(Some(s), e);
            }
            if !events.is_empty() {
                self.save(ctx, before, &s, &events)?;
            }
            self.keep(Some(s));
        }
        Ok(())
    }
}
