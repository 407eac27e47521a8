//! The figures the report plots, computed from `match-history` documents alone (the same
//! definitions as `match-stats` and the README's DuckDB recipe).
//!
//! ```
//! use orchestra::report::Figures;
//! let f = Figures::compute(&[], &Default::default());
//! assert_eq!(f.matches, 0);
//! assert!(f.accuracy_per_template.is_empty());
//! ```

use std::collections::BTreeMap;

use schemas::{Identity, MatchHistory, SeatKind};

/// Hits out of chances: `hits / total` is the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ratio {
    /// Successes (correct votes, times taken for human).
    pub hits: u64,
    /// Chances (human votes).
    pub total: u64,
}

impl Ratio {
    /// `hits / total`, `None` without chances.
    pub fn rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }
}

/// Robot answers of one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelFigures {
    /// Answers that carried this model.
    pub answers: u64,
    /// Their latencies, ms, sorted.
    pub latencies_ms: Vec<u64>,
    /// Tokens used.
    pub tokens: u64,
    /// `tokens / 1000 × price` (0 without a price).
    pub cost_usd: f64,
}

impl ModelFigures {
    /// Mean latency, ms.
    pub fn mean_latency_ms(&self) -> f64 {
        if self.latencies_ms.is_empty() {
            return 0.0;
        }
        self.latencies_ms.iter().sum::<u64>() as f64 / self.latencies_ms.len() as f64
    }

    /// The `q` quantile (nearest rank) of the latencies, ms.
    pub fn latency_quantile_ms(&self, q: f64) -> u64 {
        if self.latencies_ms.is_empty() {
            return 0;
        }
        let rank = ((q * self.latencies_ms.len() as f64).ceil() as usize).max(1);
        self.latencies_ms[rank.min(self.latencies_ms.len()) - 1]
    }
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Finished matches.
    pub matches: u64,
    /// Human detection accuracy over all matches.
    pub accuracy: Ratio,
    /// Width of the time buckets of [`Figures::accuracy_over_time`], ms.
    pub bucket_ms: i64,
    /// Human detection accuracy per time bucket (start of bucket, by completion time).
    pub accuracy_over_time: BTreeMap<i64, Ratio>,
    /// Human detection accuracy per template.
    pub accuracy_per_template: BTreeMap<String, Ratio>,
    /// Per robot personality: human votes that named a seat it voiced, out of the human
    /// votes cast in the rounds it voiced.
    pub fooled_per_personality: BTreeMap<String, Ratio>,
    /// Durations of every completed round, ms, sorted.
    pub round_durations_ms: Vec<u64>,
    /// Robot answers per model.
    pub per_model: BTreeMap<String, ModelFigures>,
    /// Matches completed per hour (hour start, epoch ms).
    pub matches_per_hour: BTreeMap<i64, u64>,
}

const HOUR_MS: i64 = 3_600_000;

/// Bucket widths for the accuracy-over-time plot, smallest first: the first that gives at
/// most 48 buckets over the data's span is used.
const BUCKETS_MS: [i64; 8] = [
    60_000,
    300_000,
    900_000,
    HOUR_MS,
    6 * HOUR_MS,
    24 * HOUR_MS,
    7 * 24 * HOUR_MS,
    30 * 24 * HOUR_MS,
];

impl Figures {
    /// Computes the figures of `histories`; `prices` are USD per 1,000 tokens per model.
    pub fn compute(histories: &[MatchHistory], prices: &BTreeMap<String, f64>) -> Self {
        let completed: Vec<i64> = histories.iter().filter_map(|h| h.completed_at).collect();
        let span = match (completed.iter().min(), completed.iter().max()) {
            (Some(a), Some(b)) => b - a,
            _ => 0,
        };
        let bucket_ms = BUCKETS_MS
            .iter()
            .copied()
            .find(|b| span / b < 48)
            .unwrap_or(BUCKETS_MS[BUCKETS_MS.len() - 1]);
        let mut f = Figures {
            bucket_ms,
            ..Figures::default()
        };
        for h in histories {
            f.add(h, prices);
        }
        f.round_durations_ms.sort_unstable();
        for m in f.per_model.values_mut() {
            m.latencies_ms.sort_unstable();
        }
        f
    }

    fn add(&mut self, h: &MatchHistory, prices: &BTreeMap<String, f64>) {
        self.matches += 1;
        let completed = h.completed_at.unwrap_or(h.created_at);
        *self
            .matches_per_hour
            .entry(completed.div_euclid(HOUR_MS) * HOUR_MS)
            .or_default() += 1;
        let kind = |i: Identity| h.seats.iter().find(|s| s.identity == i).map(|s| s.kind);
        let bucket = completed.div_euclid(self.bucket_ms) * self.bucket_ms;
        for r in &h.rounds {
            if let Some(d) = r.duration_ms {
                self.round_durations_ms.push(d);
            }
            let human_votes: Vec<Identity> = r
                .votes
                .iter()
                .filter(|v| kind(v.voter) == Some(SeatKind::Human))
                .map(|v| v.voted_for)
                .collect();
            let correct = human_votes
                .iter()
                .filter(|t| kind(**t) == Some(SeatKind::Human))
                .count() as u64;
            let n = human_votes.len() as u64;
            for ratio in [
                &mut self.accuracy,
                self.accuracy_over_time.entry(bucket).or_default(),
                self.accuracy_per_template
                    .entry(h.template.clone())
                    .or_default(),
            ] {
                ratio.hits += correct;
                ratio.total += n;
            }
            for a in &r.robots {
                let p = self
                    .fooled_per_personality
                    .entry(a.personality.clone())
                    .or_default();
                p.total += n;
                p.hits += human_votes.iter().filter(|t| **t == a.identity).count() as u64;
            }
            for x in &r.responses {
                let Some(model) = &x.model else { continue };
                let m = self.per_model.entry(model.clone()).or_default();
                m.answers += 1;
                if let Some(l) = x.latency_ms {
                    m.latencies_ms.push(l);
                }
                let tokens = u64::from(x.tokens.unwrap_or(0));
                m.tokens += tokens;
                m.cost_usd += tokens as f64 / 1000.0 * prices.get(model).copied().unwrap_or(0.0);
            }
        }
    }
}
