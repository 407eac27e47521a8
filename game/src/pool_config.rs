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
    /// Think time per personality, `(min, max)` milliseconds (issue 15 item 4): a robot's
    /// `generate.response` is issued that long after `round.started` (capped at half the
    /// response window) and carries the answers recorded by then. A personality not
    /// listed (the default: none) gets its command at round start, as before.
    pub think_time_ms: std::collections::BTreeMap<String, (i64, i64)>,
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
            think_time_ms: Default::default(),
        }
    }
}

impl PoolConfig {
    /// How long after round start the robot of `command_id` (of `personality`) answers:
    /// a deterministic point of its think-time range (0 when none is configured).
    pub fn think_delay_ms(&self, personality: &str, command_id: &str) -> i64 {
        match self.think_time_ms.get(personality) {
            Some(&(lo, hi)) if hi > lo && lo >= 0 => {
                let span = (hi - lo + 1) as u64;
                lo + (super::ids::fingerprint(command_id) % span) as i64
            }
            Some(&(lo, _)) => lo.max(0),
            None => 0,
        }
    }

    /// The default settings for `shard`.
    pub fn for_shard(shard: u32) -> Self {
        PoolConfig {
            shard,
            ..PoolConfig::default()
        }
    }
}
