use thiserror::Error;

/// Errors raised by state stores.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The backend failed (I/O, sled internal error).
    #[error("store `{store}`: backend error: {source}")]
    Backend {
        store: String,
        #[source]
        source: sled::Error,
    },
    /// The on-disk store could not be opened or read and is considered corrupt.
    #[error("store at {path}: corrupt or unreadable: {reason}")]
    Corrupt { path: String, reason: String },
    /// A value could not be encoded or decoded.
    #[error("store `{store}`: value for key `{key}` is not valid: {source}")]
    Codec {
        store: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// Another handle (this process's previous one, not yet fully closed, or another
    /// process) still holds the store's lock. The store is never wiped for this.
    #[error("store at {path} is locked by another handle (waited {waited_ms} ms): {reason}")]
    Locked {
        path: String,
        waited_ms: u64,
        reason: String,
    },
    /// An operation the store's phase does not allow (a write between prepare and commit,
    /// a commit of writes that were never prepared): a runtime bug, never a data error.
    #[error("store `{store}`: {reason}")]
    Phase { store: String, reason: String },
    /// A committed batch could not be applied in the background (see `write_behind`): the
    /// local store stops there; the changelog still holds the batch, so a restore rebuilds
    /// it.
    #[error("store `{store}`: applying a committed batch failed: {reason}")]
    ApplyFailed { store: String, reason: String },
    /// Filesystem error outside sled (creating or wiping directories).
    #[error("state directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
