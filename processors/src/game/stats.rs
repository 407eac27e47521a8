//! Stats: tumbling-window aggregates over finished matches.
//!
//! Input is a final [`MatchHistory`] (the history processor's output), which holds
//! everything a match contributes: seat kinds, robot voices per round, votes and round
//! durations. A match falls in the window of its `completedAt`; its rounds count in that
//! window too. Each window is one [`MatchStats`] document keyed by
//! `window-{windowMs}-{windowStart}`; a match folded twice counts once.
//!
//! ```
//! use processors::game::stats::{stat_key, window_start, StatsConfig};
//! let cfg = StatsConfig { window_ms: 60_000 };
//! assert_eq!(window_start(125_000, cfg.window_ms), 120_000);
//! assert_eq!(stat_key(&cfg, 125_000), "window-60000-120000");
//! ```

use schemas::{MatchHistory, MatchStats, SeatKind, SCHEMA_VERSION};

use super::ids::fingerprint;

/// Stats settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsConfig {
    /// Window length (default 5 minutes).
    pub window_ms: u64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig { window_ms: 300_000 }
    }
}

fn window_len(window_ms: u64) -> i64 {
    i64::try_from(window_ms.max(1)).unwrap_or(i64::MAX)
}

/// Start of the window containing `ts`.
pub fn window_start(ts: i64, window_ms: u64) -> i64 {
    let w = window_len(window_ms);
    ts - ts.rem_euclid(w)
}

/// The stat key of the window containing `ts`.
pub fn stat_key(cfg: &StatsConfig, ts: i64) -> String {
    format!(
        "window-{}-{}",
        cfg.window_ms,
        window_start(ts, cfg.window_ms)
    )
}

/// The stat key a final history contributes to (`None` while the match runs).
pub fn stat_key_for(cfg: &StatsConfig, h: &MatchHistory) -> Option<String> {
    h.completed_at.map(|t| stat_key(cfg, t))
}

fn empty_stats(cfg: &StatsConfig, ts: i64) -> MatchStats {
    let start = window_start(ts, cfg.window_ms);
    MatchStats {
        schema_version: SCHEMA_VERSION,
        stat_key: stat_key(cfg, ts),
        window_ms: cfg.window_ms,
        window_start: start,
        window_end: start.saturating_add(window_len(cfg.window_ms)),
        matches_completed: 0,
        rounds_completed: 0,
        total_round_duration_ms: 0,
        mean_round_duration_ms: 0.0,
        human_votes: 0,
        human_votes_correct: 0,
        human_detection_accuracy: 0.0,
        robot_votes: 0,
        robot_votes_correct: 0,
        personalities: Default::default(),
        updated_at: ts,
        counted_matches: Vec::new(),
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Folds a final history into its window's stats (`stats` = the current document for
/// [`stat_key_for`], or `None`). Histories that are not final leave `stats` unchanged.
pub fn apply_history(
    stats: Option<MatchStats>,
    h: &MatchHistory,
    cfg: &StatsConfig,
) -> Option<MatchStats> {
    let Some(completed_at) = h.completed_at else {
        return stats;
    };
    let mut s = stats.unwrap_or_else(|| empty_stats(cfg, completed_at));
    let fp = fingerprint(&h.match_id);
    let Err(pos) = s.counted_matches.binary_search(&fp) else {
        return Some(s);
    };
    s.counted_matches.insert(pos, fp);
    s.matches_completed += 1;
    s.updated_at = s.updated_at.max(completed_at);
    let kind = |id| h.seats.iter().find(|x| x.identity == id).map(|x| x.kind);
    for r in &h.rounds {
        if let Some(d) = r.duration_ms {
            s.rounds_completed += 1;
            s.total_round_duration_ms += d;
        }
        let human_votes = r
            .votes
            .iter()
            .filter(|v| kind(v.voter) == Some(SeatKind::Human))
            .count() as u64;
        for v in &r.votes {
            let correct = kind(v.voted_for) == Some(SeatKind::Human);
            match kind(v.voter) {
                Some(SeatKind::Human) => {
                    s.human_votes += 1;
                    s.human_votes_correct += u64::from(correct);
                }
                Some(SeatKind::Robot) => {
                    s.robot_votes += 1;
                    s.robot_votes_correct += u64::from(correct);
                }
                None => {}
            }
        }
        for a in &r.robots {
            let taken = r
                .votes
                .iter()
                .filter(|v| v.voted_for == a.identity && kind(v.voter) == Some(SeatKind::Human))
                .count() as u64;
            let p = s.personalities.entry(a.personality.clone()).or_default();
            p.rounds_voiced += 1;
            p.human_votes_seen += human_votes;
            p.taken_for_human += taken;
            p.taken_for_human_rate = ratio(p.taken_for_human, p.human_votes_seen);
        }
    }
    s.mean_round_duration_ms = ratio(s.total_round_duration_ms, s.rounds_completed);
    s.human_detection_accuracy = ratio(s.human_votes_correct, s.human_votes);
    Some(s)
}
