//! Robot orchestration: one pool shard per task (the shard is the task's partition of
//! `match-events`, so the pool scales with partitions and the shard is in each robot id).
//!
//! Pool events and robot commands are forwarded as they happen. `robot-pool-state` is a
//! table (compacted, latest value per robot), so robot states are forwarded once per
//! commit, in [`Processor::flush`], with the latest state of each robot that changed (a
//! robot assigned and released between two commits costs one record, not two), as Kafka
//! Streams' record cache does for tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use schemas::{MatchEvent, RobotStatus};
use topology::{Context, ProcessError, Processor, Punctuation, PunctuationType};

use super::sequence;
use super::stores::ROBOT_POOL;
use crate::game::{Pool, PoolConfig, PoolOutput, Position};
use crate::metrics as m;

const POOL_KEY: &str = "pool";

/// This fold's name in the duplicate and gap metrics.
const FOLD: &str = "robot-orchestration";

/// See the module docs.
pub struct OrchestrationProcessor {
    cfg: PoolConfig,
    tick: Duration,
    pool: Option<Pool>,
    /// Robots changed since the last flush: their latest state (`None`: retired).
    changed: BTreeMap<String, Option<schemas::RobotPoolState>>,
}

impl OrchestrationProcessor {
    /// The processor of shard `shard`.
    pub fn new(mut cfg: PoolConfig, shard: u32, tick: Duration) -> Self {
        cfg.shard = shard;
        Self {
            cfg,
            tick,
            pool: None,
            changed: BTreeMap::new(),
        }
    }

    fn pool(&mut self, ctx: &mut Context<'_>) -> Result<&mut Pool, ProcessError> {
        if self.pool.is_none() {
            self.pool = Some(
                ctx.store::<Pool>(ROBOT_POOL)?
                    .get(POOL_KEY)?
                    .unwrap_or_default(),
            );
        }
        self.pool
            .as_mut()
            .ok_or_else(|| ProcessError::Failed("pool not loaded".into()))
    }

    fn emit(
        &mut self,
        ctx: &mut Context<'_>,
        outputs: Vec<PoolOutput>,
    ) -> Result<(), ProcessError> {
        for out in outputs {
            match out {
                PoolOutput::Event(ev) => {
                    let bytes = ev
                        .to_json_vec()
                        .map_err(|e| ProcessError::Failed(e.to_string()))?;
                    if ev.match_id.is_empty() {
                        let shard_key = format!("pool-s{}", self.cfg.shard);
                        ctx.forward_raw("events", &shard_key, Some(bytes))?;
                    } else {
                        ctx.forward_raw("events", &ev.match_id, Some(bytes))?;
                    }
                }
                PoolOutput::Command(c) => {
                    let bytes = c
                        .to_json_vec()
                        .map_err(|e| ProcessError::Failed(e.to_string()))?;
                    ctx.forward_raw("commands", &c.match_id, Some(bytes))?;
                }
                PoolOutput::Robot(r) if r.status == RobotStatus::Retired => {
                    self.changed.insert(r.robot_id.clone(), None);
                }
                PoolOutput::Robot(r) => {
                    self.changed.insert(r.robot_id.clone(), Some(r));
                }
            }
        }
        // The pool and the changed robots' states are written once per commit, in `flush`
        // (the pool's dirty flag stays set until then).
        Ok(())
    }
}

impl Processor for OrchestrationProcessor {
    /// Every event of every match: the pool tracks each match's position in its log.
    type Input = Arc<MatchEvent>;

    fn init(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        ctx.schedule("pool-scaling", self.tick, PunctuationType::WallClock);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        _key: &str,
        ev: Arc<MatchEvent>,
    ) -> Result<(), ProcessError> {
        self.pool(ctx)?;
        let Some(pool) = self.pool.as_mut() else {
            return Err(ProcessError::Failed("pool not loaded".into()));
        };
        let at = pool.position_of(&ev);
        if at != Position::Next {
            return sequence::skip(FOLD, &ev.match_id, at);
        }
        let outputs = pool.on_match_event(&self.cfg, &ev);
        if outputs.iter().any(|o| matches!(o, PoolOutput::Event(e) if matches!(e.data, schemas::OrchestrationEventData::RobotsAssigned(_)))) {
            // Wall-clock time from the match asking for robots to their assignment.
            let latency = (ctx.wall_clock_ms() - ev.timestamp).max(0) as f64 / 1000.0;
            metrics::histogram!(m::ASSIGNMENT_LATENCY).record(latency);
        }
        self.emit(ctx, outputs)
    }

    fn punctuate(
        &mut self,
        ctx: &mut Context<'_>,
        p: &Punctuation<'_>,
    ) -> Result<(), ProcessError> {
        self.pool(ctx)?;
        let outputs = match self.pool.as_mut() {
            Some(pool) => pool.on_tick(&self.cfg, p.timestamp),
            None => return Err(ProcessError::Failed("pool not loaded".into())),
        };
        self.emit(ctx, outputs)
    }

    /// Forwards the latest state of each robot that changed (a tombstone for a retired
    /// one) and writes the pool to the store if it changed since the last commit.
    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), ProcessError> {
        for (robot_id, state) in std::mem::take(&mut self.changed) {
            match state {
                Some(r) => ctx.forward("pool", &robot_id, &r)?,
                None => ctx.forward_raw("pool", &robot_id, None)?,
            }
        }
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        // This task's part of the process's pool gauges, read from the pool itself.
        ctx.set_gauge(m::POOL_ROBOTS, pool.robots.len() as f64);
        ctx.set_gauge(m::POOL_BUSY_ROBOTS, pool.busy_count() as f64);
        if pool.take_dirty() {
            ctx.store::<Pool>(ROBOT_POOL)?.put(POOL_KEY, pool)?;
        }
        Ok(())
    }
}
