//! Named task lifecycle states with checked transitions, logged on every change.

use crate::task_id::TaskId;

/// A task's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Stores opened, not yet restored.
    Created,
    /// Replaying the changelog into the stores.
    Restoring,
    /// Processing input.
    Running,
    /// Committed during a rebalance; kept open in case the partition comes back.
    Suspended,
    /// Stores closed.
    Closed,
}

impl TaskState {
    /// Whether `self -> to` is a legal transition.
    pub fn can_become(self, to: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, to),
            (Created, Restoring)
                | (Created, Closed)
                | (Restoring, Running)
                | (Restoring, Closed)
                | (Running, Suspended)
                | (Running, Closed)
                | (Suspended, Running)
                | (Suspended, Closed)
        )
    }
}

/// Moves `state` to `to`, logging the transition; illegal moves are a bug and are
/// reported as an error string.
pub(crate) fn transition(task: TaskId, state: &mut TaskState, to: TaskState) -> Result<(), String> {
    if !state.can_become(to) {
        return Err(format!(
            "task {task}: illegal state transition {state:?} -> {to:?}"
        ));
    }
    tracing::debug!(task = %task, from = ?*state, to = ?to, "task state");
    *state = to;
    Ok(())
}
