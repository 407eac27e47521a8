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

#[cfg(test)]
mod tests {
    use super::*;
    use TaskState::*;

    const ALL: [TaskState; 5] = [Created, Restoring, Running, Suspended, Closed];

    #[test]
    fn a_task_follows_created_restoring_running_and_may_be_suspended_or_closed() {
        let id = TaskId {
            subtopology: 0,
            partition: 1,
        };
        let mut s = Created;
        for to in [Restoring, Running, Suspended, Running, Closed] {
            transition(id, &mut s, to).unwrap();
            assert_eq!(s, to);
        }
    }

    #[test]
    fn illegal_moves_are_refused_and_leave_the_state_alone() {
        let allowed = [
            (Created, Restoring),
            (Created, Closed),
            (Restoring, Running),
            (Restoring, Closed),
            (Running, Suspended),
            (Running, Closed),
            (Suspended, Running),
            (Suspended, Closed),
        ];
        let id = TaskId {
            subtopology: 0,
            partition: 0,
        };
        for from in ALL {
            for to in ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
                if !allowed.contains(&(from, to)) {
                    let mut s = from;
                    let e = transition(id, &mut s, to).unwrap_err();
                    assert!(e.contains("illegal state transition"), "{e}");
                    assert_eq!(s, from);
                }
            }
        }
        // Notably: a closed task never runs again, and no task runs unrestored.
        assert!(!Closed.can_become(Running));
        assert!(!Created.can_become(Running));
    }
}
