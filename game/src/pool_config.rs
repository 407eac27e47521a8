//! The robot pool's settings: personalities, idle minimum, maximum size, scaling rules
//! (seed 002).
//!
//! ```
//! use game::PoolConfig;
//! let cfg = PoolConfig::for_shard(3);
//! assert_eq!((cfg.shard, cfg.max_total, cfg.min_idle_per_type), (3, 20, 2));
//! ```

/// The personalities every pool has unless configured otherwise.
pub const DEFAULT_PERSONALITIES: [&str; 3] =
    ["curious-student", "skeptical-scientist", "creative-artist"];

/// Pool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// The shard (partition of `match-events`) this pool serves.
    pub shard: u32,
    /// Robot personalities.
    pub personalities: Vec<String>,
    /// Idle robots kept per personality (default 2).
    pub min_idle_per_type: u32,
    /// Most robots in the pool (default 20; must be ≥ the largest robot count of a
    /// template, 5).
    pub max_total: u32,
    /// Grow when at least this share of robots is busy (default 80).
    pub scale_up_busy_percent: u32,
    /// Retire robots idle for this long (default 5 minutes).
    pub idle_period_ms: i64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            shard: 0,
            personalities: DEFAULT_PERSONALITIES
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            min_idle_per_type: 2,
            max_total: 20,
            scale_up_busy_percent: 80,
            idle_period_ms: 300_000,
        }
    }
}

impl PoolConfig {
    /// The default settings for `shard`.
    pub fn for_shard(shard: u32) -> Self {
        PoolConfig {
            shard,
            ..PoolConfig::default()
        }
    }
}
