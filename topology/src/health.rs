//! What an operator sees of a running worker: each task's state, lag and the age of its
//! last commit, why the worker is not ready yet, and why it stopped.
//!
//! The worker loop calls [`HealthTracker::observe`] after each step; it notes commits as
//! they end (cheap: one comparison) and refreshes the snapshot in [`WorkerStats`] twice a
//! second from data the consumer already has (no network round trip). A worker that has
//! no assignment after [`WAIT_SESSIONS`] session timeouts logs a WARN naming what it
//! waits for (group, topics, bootstrap, what the group coordinator says) and `/health`
//! shows the same sentence.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::stats::{TaskHealth, WorkerState, WorkerStats};
use crate::task_id::TaskId;
use crate::task_manager::TaskManager;

/// How many session timeouts a worker waits for its first assignment before it warns.
pub const WAIT_SESSIONS: u32 = 3;
/// How often the task snapshot is refreshed.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(500);

/// What the worker loop keeps to fill [`WorkerStats`]' health fields.
pub(crate) struct HealthTracker {
    started: Instant,
    /// `Deadlines::next_commit` as last seen: it moves when a commit ends.
    seen_next_commit: Option<Instant>,
    committed_at: HashMap<TaskId, Instant>,
    next_snapshot: Instant,
    next_wait_warning: Instant,
    wait_after: Duration,
    /// The worker has had an assignment: no more waiting checks.
    assigned: bool,
    group: String,
    bootstrap: String,
    topics: Vec<String>,
}

impl HealthTracker {
    pub fn new(group: &str, bootstrap: &str, topics: Vec<String>, session: Duration) -> Self {
        let now = Instant::now();
        let wait_after = session * WAIT_SESSIONS;
        Self {
            started: now,
            seen_next_commit: None,
            committed_at: HashMap::new(),
            next_snapshot: now,
            next_wait_warning: now + wait_after,
            wait_after,
            assigned: false,
            group: group.to_string(),
            bootstrap: bootstrap.to_string(),
            topics,
        }
    }

    /// Called by the worker loop after each step, with the task manager locked.
    pub fn observe<C: ConsumerContext>(
        &mut self,
        tm: &TaskManager,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) {
        if self.seen_next_commit != Some(tm.deadlines().next_commit()) {
            if self.seen_next_commit.is_some() {
                for id in tm.tasks().keys() {
                    self.committed_at.insert(*id, now);
                }
            }
            self.seen_next_commit = Some(tm.deadlines().next_commit());
        }
        if now < self.next_snapshot {
            return;
        }
        self.next_snapshot = now + SNAPSHOT_INTERVAL;
        self.committed_at
            .retain(|id, _| tm.tasks().contains_key(id));
        let positions = consumer.position().ok();
        let tasks = tm
            .tasks()
            .iter()
            .map(|(id, task)| {
                let mut lag: Option<i64> = None;
                for (topic, sub) in tm.topic_sub() {
                    if *sub != id.subtopology {
                        continue;
                    }
                    let next = task.next_offsets.get(topic).copied().or_else(|| {
                        positions
                            .as_ref()
                            .and_then(|p| crate::watermarks::offset_in(p, topic, id.partition))
                    });
                    if let (Some(next), Some(high)) = (
                        next,
                        crate::watermarks::cached_high(consumer, topic, id.partition),
                    ) {
                        *lag.get_or_insert(0) += (high - next).max(0);
                    }
                }
                TaskHealth {
                    task: id.to_string(),
                    state: task.state,
                    lag,
                    last_commit_age_ms: self
                        .committed_at
                        .get(id)
                        .map(|t| now.saturating_duration_since(*t).as_millis() as u64),
                }
            })
            .collect();
        tm.stats().set_task_health(tasks);
    }

    /// Called by the worker loop without the task manager locked: warns (and tells
    /// `/health`) while the worker still waits for its first assignment. Costs one
    /// comparison per call otherwise (the worker's state clears the sentence when the
    /// assignment arrives).
    pub fn check_waiting<C: ConsumerContext>(
        &mut self,
        stats: &WorkerStats,
        consumer: &BaseConsumer<C>,
        now: Instant,
    ) {
        if self.assigned || now < self.next_wait_warning {
            return;
        }
        self.next_wait_warning = now + self.wait_after;
        if stats.state() != WorkerState::Starting {
            self.assigned = true;
            return;
        }
        let coordinator = match consumer.fetch_group_list(Some(&self.group), Duration::from_secs(2))
        {
            Ok(list) => match list.groups().iter().find(|g| g.name() == self.group) {
                Some(g) => format!(
                    "the coordinator reports the group in state `{}` with {} member(s)",
                    g.state(),
                    g.members().len()
                ),
                None => "the coordinator does not list the group".to_string(),
            },
            Err(e) => format!("the group could not be described: {e}"),
        };
        let msg = format!(
            "no partitions assigned after {} s: waiting for consumer group `{}` on {} to assign partitions of {}; {coordinator}. Check that the broker is reachable and the topics exist; a departed member can hold the group until its session times out",
            now.saturating_duration_since(self.started).as_secs(),
            self.group,
            self.bootstrap,
            self.topics.join(", "),
        );
        tracing::warn!("{msg}");
        stats.set_waiting_for(Some(msg));
    }
}
