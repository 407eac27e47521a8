//! Joining the scoped threads the runtime fans work out to (restore, task opening).

use std::thread::ScopedJoinHandle;

use crate::TopologyError;

/// Joins every handle, in order; a thread that panicked is an error naming its `what`
/// (`"restore"` → "restore thread panicked").
pub(crate) fn join_all<T>(
    handles: Vec<ScopedJoinHandle<'_, Result<T, TopologyError>>>,
    what: &str,
) -> Vec<Result<T, TopologyError>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(TopologyError::Config(format!("{what} thread panicked"))))
        })
        .collect()
}
