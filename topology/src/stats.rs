//! A worker's statistics and lifecycle state, shared between its stream thread (which
//! updates them) and its handle, `/health` and metrics (which read them while it runs).

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};

use crate::lifecycle::TaskState;
use crate::task_id::TaskId;
use crate::TopologyError;

/// Worker lifecycle, as shown by `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Starting,
    Restoring,
    Running,
    Stopped,
    Failed,
}

/// Counters and state of a worker, readable while it runs.
#[derive(Debug)]
pub struct WorkerStats {
    pub processed: AtomicU64,
    pub restored: AtomicU64,
    pub commits: AtomicU64,
    pub rebuilt_stores: AtomicU64,
    /// Assignments the group took away without a revocation (see
    /// [`crate::TopologyError::AssignmentLost`]); each dropped its uncommitted work.
    pub assignments_lost: AtomicU64,
    /// Suspended tasks given back after another worker had written their partitions:
    /// reopened from their changelogs instead of resumed (see `resume.rs`).
    pub reopened_tasks: AtomicU64,
    /// Wall time spent restoring, in microseconds.
    pub restore_micros: AtomicU64,
    state: Mutex<WorkerState>,
    tasks: Mutex<Vec<TaskId>>,
    health: Mutex<WorkerHealth>,
}

/// The health details of [`WorkerStats`] (see `health.rs`).
#[derive(Debug, Default)]
struct WorkerHealth {
    tasks: Vec<TaskHealth>,
    waiting_for: Option<String>,
    failure: Option<String>,
}

impl WorkerStats {
    pub(crate) fn new() -> Self {
        Self {
            processed: AtomicU64::new(0),
            restored: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rebuilt_stores: AtomicU64::new(0),
            assignments_lost: AtomicU64::new(0),
            reopened_tasks: AtomicU64::new(0),
            restore_micros: AtomicU64::new(0),
            state: Mutex::new(WorkerState::Starting),
            tasks: Mutex::new(Vec::new()),
            health: Mutex::new(WorkerHealth::default()),
        }
    }

    fn health(&self) -> MutexGuard<'_, WorkerHealth> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_task_health(&self, tasks: Vec<TaskHealth>) {
        self.health().tasks = tasks;
    }

    pub(crate) fn set_waiting_for(&self, why: Option<String>) {
        self.health().waiting_for = why;
    }

    pub(crate) fn set_failure(&self, e: &TopologyError) {
        self.health().failure = Some(e.to_string());
    }

    /// Each task's state, lag and last commit age, as of the last snapshot (twice a
    /// second while the loop runs).
    pub fn task_health(&self) -> Vec<TaskHealth> {
        self.health().tasks.clone()
    }

    /// While the worker waits for its first assignment for longer than a few session
    /// timeouts: what it waits for.
    pub fn waiting_for(&self) -> Option<String> {
        self.health().waiting_for.clone()
    }

    /// The error the worker stopped with, once it has.
    pub fn failure(&self) -> Option<String> {
        self.health().failure.clone()
    }

    pub(crate) fn set_state(&self, s: WorkerState) {
        if let Ok(mut g) = self.state.lock() {
            if *g != s {
                tracing::info!(from = ?*g, to = ?s, "worker state");
                *g = s;
                if s != WorkerState::Starting {
                    // No longer waiting for an assignment (see `health.rs`).
                    self.health().waiting_for = None;
                }
            }
        }
    }

    pub(crate) fn set_tasks(&self, t: Vec<TaskId>) {
        if let Ok(mut g) = self.tasks.lock() {
            *g = t;
        }
    }

    /// Current lifecycle state.
    pub fn state(&self) -> WorkerState {
        self.state.lock().map(|g| *g).unwrap_or(WorkerState::Failed)
    }

    /// Tasks owned after the last assignment.
    pub fn tasks(&self) -> Vec<TaskId> {
        self.tasks.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

/// One task as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskHealth {
    /// The task id (`0_3`: sub-topology 0, partition 3).
    pub task: String,
    pub state: TaskState,
    /// Records between the task's position and the end of its input partitions (as of
    /// the last fetch); `None` until the worker knows both.
    pub lag: Option<i64>,
    /// Milliseconds since the last commit that covered this task (`None`: none yet).
    pub last_commit_age_ms: Option<u64>,
}
