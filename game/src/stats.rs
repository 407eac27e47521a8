//! Stats: tumbling-window aggregates over finished matches.
//!
//! Input is a final [`MatchHistory`] (the history processor's output), which holds
//! everything a match contributes: seat kinds, robot voices per round, votes and round
//! durations. A match falls in the window of its `completedAt`; its rounds count in that
//! window too. Each window is one [`MatchStats`] document keyed by
//! `window-{windowMs}-{windowStart}`; a match folded twice counts once.
//!
//! ```
//! use game::stats::{stat_key, window_start, StatsConfig};
//! let cfg = StatsConfig { window_ms: 60_000 };
//! assert_eq!(window_start(125_000, cfg.window_ms), 120_000);
//! assert_eq!(stat_key(&cfg, 125_000), "window-60000-120000");
//! ```

use serde::{Deserialize, Serialize};

use schemas::{Identity, MatchHistory, MatchStats, SeatKind, SCHEMA_VERSION};

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

/// What a final match contributes to its window: the part of a [`MatchHistory`] the
/// aggregates read. The history view sends it, re-keyed by window, to the stats processor
/// (a whole history is about 7.4 KB of JSON, its outcome about 1.7 KB). Its JSON is a subset of
/// the history document's, so a whole `match-history` document decodes as one too (the
/// texts, prompts and scores are skipped without being allocated).
///
/// ```
/// use game::stats::MatchOutcome;
/// let doc = br#"{"matchId":"m1","status":"completed","completedAt":5,"prompt":"skipped",
///   "seats":[{"identity":"A","kind":"human","name":"Ann"}],"rounds":[]}"#;
/// let o: MatchOutcome = serde_json::from_slice(doc).unwrap();
/// assert_eq!((o.match_id.as_str(), o.completed_at, o.seats.len()), ("m1", Some(5), 1));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchOutcome {
    /// Match id (a match counts once per window).
    pub match_id: String,
    /// `None` while the match runs: such a history counts nowhere.
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// Who was human.
    pub seats: Vec<OutcomeSeat>,
    /// Durations, votes and robot voices per round.
    pub rounds: Vec<OutcomeRound>,
}

/// A seat of a [`MatchOutcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeSeat {
    /// Seat.
    pub identity: Identity,
    /// Human or robot (revealed).
    pub kind: SeatKind,
}

/// A round of a [`MatchOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeRound {
    /// Round duration (`None`: the round never completed).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Votes cast.
    pub votes: Vec<OutcomeVote>,
    /// Robots voicing the robot seats.
    pub robots: Vec<OutcomeRobot>,
}

/// A vote of an [`OutcomeRound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeVote {
    /// Voter seat.
    pub voter: Identity,
    /// Seat named as human.
    pub voted_for: Identity,
}

/// A robot voice of an [`OutcomeRound`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRobot {
    /// Seat voiced.
    pub identity: Identity,
    /// Personality of the robot.
    pub personality: String,
}

impl From<&MatchHistory> for MatchOutcome {
    fn from(h: &MatchHistory) -> Self {
        MatchOutcome {
            match_id: h.match_id.clone(),
            completed_at: h.completed_at,
            seats: h
                .seats
                .iter()
                .map(|s| OutcomeSeat {
                    identity: s.identity,
                    kind: s.kind,
                })
                .collect(),
            rounds: h
                .rounds
                .iter()
                .map(|r| OutcomeRound {
                    duration_ms: r.duration_ms,
                    votes: r
                        .votes
                        .iter()
                        .map(|v| OutcomeVote {
                            voter: v.voter,
                            voted_for: v.voted_for,
                        })
                        .collect(),
                    robots: r
                        .robots
                        .iter()
                        .map(|a| OutcomeRobot {
                            identity: a.identity,
                            personality: a.personality.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
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
    apply_outcome(stats, &MatchOutcome::from(h), cfg)
}

/// [`apply_history`] over the part of the history that stats read.
pub fn apply_outcome(
    stats: Option<MatchStats>,
    h: &MatchOutcome,
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
