//! The seven analyst tables, flattened from `match-history` and `match-stats` documents.
//!
//! Keys (unique per row) and joins: every per-match table has `match_id`; `rounds` adds
//! `round`; `responses` and `robot_voices` add `identity` (the seat), `votes` adds `voter`;
//! `seats` is `(match_id, identity)`; `stats` is `(stat_key, personality)`. Join a vote's
//! `voted_for` to `seats.identity` (same `match_id`) for the named seat.
//!
//! ```
//! use orchestra::export::Tables;
//! let tables = Tables::build(&[], &[]);
//! let names: Vec<&str> = tables.all().iter().map(|t| t.name).collect();
//! assert_eq!(names, ["matches", "seats", "rounds", "responses", "votes", "robot_voices", "stats"]);
//! ```

use std::collections::BTreeMap;

use schemas::{
    HistoryStatus, Identity, MatchHistory, MatchStats, ResponseSource, SeatKind, VoteSource,
};

use super::table::{ColumnType as T, Table, Value};

/// Table name and its key columns, in the order the tables are written.
pub const KEYS: [(&str, &[&str]); 7] = [
    ("matches", &["match_id"]),
    ("seats", &["match_id", "identity"]),
    ("rounds", &["match_id", "round"]),
    ("responses", &["match_id", "round", "identity"]),
    ("votes", &["match_id", "round", "voter"]),
    ("robot_voices", &["match_id", "round", "identity"]),
    ("stats", &["stat_key", "personality"]),
];

/// The seven tables of one export.
#[derive(Debug, Clone)]
pub struct Tables {
    /// One row per finished match.
    pub matches: Table,
    /// One row per seat of a match.
    pub seats: Table,
    /// One row per round.
    pub rounds: Table,
    /// One row per recorded answer (timed-out seats have none).
    pub responses: Table,
    /// One row per recorded vote.
    pub votes: Table,
    /// One row per robot voicing a seat in a round.
    pub robot_voices: Table,
    /// One row per `match-stats` window (personality NULL) and per window and personality.
    pub stats: Table,
}

impl Tables {
    /// Flattens the documents (every one given; filter before).
    pub fn build(histories: &[MatchHistory], stats: &[MatchStats]) -> Self {
        let mut t = Self::empty();
        for h in histories {
            t.add_match(h);
        }
        for s in stats {
            t.add_stats(s);
        }
        t
    }

    /// The tables in the order they are written.
    pub fn all(&self) -> [&Table; 7] {
        [
            &self.matches,
            &self.seats,
            &self.rounds,
            &self.responses,
            &self.votes,
            &self.robot_voices,
            &self.stats,
        ]
    }

    /// Empty tables with their columns.
    pub fn empty() -> Self {
        Self {
            matches: Table::new(
                "matches",
                &[
                    ("match_id", T::Text, "match id (key)"),
                    ("template", T::Text, "template, e.g. `classic_1v3`"),
                    (
                        "status",
                        T::Text,
                        "`completed` (only finished matches are exported)",
                    ),
                    ("total_rounds", T::Int, "rounds planned"),
                    ("rounds_played", T::Int, "rounds in the history"),
                    ("humans", T::Int, "human seats"),
                    ("robots", T::Int, "robot seats"),
                    ("created_at", T::Timestamp, "`match.created`"),
                    (
                        "completed_at",
                        T::Timestamp,
                        "`match.completed` (what `--since`/`--until` filter on)",
                    ),
                    ("duration_ms", T::Int, "from creation to completion"),
                    (
                        "events_applied",
                        T::Int,
                        "match events folded into the history",
                    ),
                ],
            ),
            seats: Table::new(
                "seats",
                &[
                    ("match_id", T::Text, "match (key)"),
                    ("identity", T::Text, "seat `A`–`H` (key)"),
                    ("kind", T::Text, "`human` or `robot`"),
                    ("player_id", T::Text, "human seats: the player"),
                    ("name", T::Text, "human seats: display name"),
                    ("final_score", T::Int, "points at the end"),
                ],
            ),
            rounds: Table::new(
                "rounds",
                &[
                    ("match_id", T::Text, "match (key)"),
                    ("round", T::Int, "round number, from 1 (key)"),
                    ("prompt_id", T::Text, "prompt in the prompt bank"),
                    ("prompt", T::Text, "prompt text"),
                    ("started_at", T::Timestamp, "`round.started`"),
                    ("voting_started_at", T::Timestamp, "`round.voting_started`"),
                    ("completed_at", T::Timestamp, "`round.completed`"),
                    (
                        "duration_ms",
                        T::Int,
                        "from `round.started` to `round.completed`",
                    ),
                    ("responses", T::Int, "answers recorded"),
                    (
                        "timed_out_responses",
                        T::Int,
                        "seats that did not answer in time",
                    ),
                    ("votes", T::Int, "votes recorded"),
                    ("timed_out_votes", T::Int, "seats that did not vote in time"),
                ],
            ),
            responses: Table::new(
                "responses",
                &[
                    ("match_id", T::Text, "match (key)"),
                    ("round", T::Int, "round (key)"),
                    ("identity", T::Text, "answering seat (key)"),
                    (
                        "position",
                        T::Int,
                        "place in the order shown to voters, from 0",
                    ),
                    ("seat_kind", T::Text, "`human` or `robot`"),
                    (
                        "source",
                        T::Text,
                        "`human`, `robot` or `fallback` (robot failed)",
                    ),
                    ("robot_id", T::Text, "robot seats: the robot instance"),
                    ("personality", T::Text, "robot seats: its personality"),
                    (
                        "model",
                        T::Text,
                        "robot answers: the model, `offline` for the offline engine",
                    ),
                    (
                        "latency_ms",
                        T::Int,
                        "robot answers: time the robot worker spent",
                    ),
                    ("tokens", T::Int, "robot answers: tokens used"),
                    ("text", T::Text, "the answer"),
                ],
            ),
            votes: Table::new(
                "votes",
                &[
                    ("match_id", T::Text, "match (key)"),
                    ("round", T::Int, "round (key)"),
                    ("voter", T::Text, "voting seat (key)"),
                    ("voter_kind", T::Text, "`human` or `robot`"),
                    ("voted_for", T::Text, "seat named as human"),
                    (
                        "voted_for_kind",
                        T::Text,
                        "`human` or `robot`: the truth about that seat",
                    ),
                    ("correct", T::Bool, "the seat named is human"),
                    ("source", T::Text, "`human`, `robot` or `fallback`"),
                ],
            ),
            robot_voices: Table::new(
                "robot_voices",
                &[
                    ("match_id", T::Text, "match (key)"),
                    ("round", T::Int, "round (key)"),
                    ("identity", T::Text, "robot seat voiced (key)"),
                    ("robot_id", T::Text, "robot instance"),
                    ("personality", T::Text, "its personality"),
                    (
                        "model",
                        T::Text,
                        "model behind its answer (NULL: no answer recorded)",
                    ),
                    ("human_votes", T::Int, "votes cast by humans in the round"),
                    (
                        "taken_for_human",
                        T::Int,
                        "human votes that named this seat (it fooled them)",
                    ),
                ],
            ),
            stats: Table::new(
                "stats",
                &[
                    ("stat_key", T::Text, "`match-stats` key (key)"),
                    (
                        "personality",
                        T::Text,
                        "NULL: the window's totals; else one personality's row (key)",
                    ),
                    ("window_start", T::Timestamp, "inclusive"),
                    ("window_end", T::Timestamp, "exclusive"),
                    ("window_ms", T::Int, "window length"),
                    (
                        "matches_completed",
                        T::Int,
                        "totals row: matches completed in the window",
                    ),
                    ("rounds_completed", T::Int, "totals row: their rounds"),
                    ("mean_round_duration_ms", T::Float, "totals row"),
                    ("human_votes", T::Int, "totals row: votes cast by humans"),
                    (
                        "human_votes_correct",
                        T::Int,
                        "totals row: of those, naming a human",
                    ),
                    (
                        "human_detection_accuracy",
                        T::Float,
                        "totals row: correct / human votes",
                    ),
                    ("robot_votes", T::Int, "totals row"),
                    ("robot_votes_correct", T::Int, "totals row"),
                    (
                        "rounds_voiced",
                        T::Int,
                        "personality row: seat-rounds voiced",
                    ),
                    (
                        "human_votes_seen",
                        T::Int,
                        "personality row: human votes in those rounds",
                    ),
                    (
                        "taken_for_human",
                        T::Int,
                        "personality row: human votes naming its seats",
                    ),
                    (
                        "taken_for_human_rate",
                        T::Float,
                        "personality row: taken / seen",
                    ),
                    ("updated_at", T::Timestamp, "last match folded in"),
                ],
            ),
        }
    }

    fn add_match(&mut self, h: &MatchHistory) {
        let id = h.match_id.as_str();
        let kinds: BTreeMap<Identity, SeatKind> =
            h.seats.iter().map(|s| (s.identity, s.kind)).collect();
        let kind_of = |i: Identity| kinds.get(&i).map(|k| kind_name(*k));
        let humans = h.seats.iter().filter(|s| s.kind == SeatKind::Human).count() as u64;
        self.matches.push(vec![
            id.into(),
            h.template.as_str().into(),
            match h.status {
                HistoryStatus::Completed => "completed",
                HistoryStatus::InProgress => "in_progress",
            }
            .into(),
            h.total_rounds.into(),
            (h.rounds.len() as u64).into(),
            humans.into(),
            (h.seats.len() as u64 - humans).into(),
            Value::Int(Some(h.created_at)),
            Value::Int(h.completed_at),
            h.duration_ms.into(),
            h.events_applied.into(),
        ]);
        for s in &h.seats {
            self.seats.push(vec![
                id.into(),
                s.identity.to_string().into(),
                kind_name(s.kind).into(),
                s.player_id.clone().into(),
                s.name.clone().into(),
                h.final_scores.get(&s.identity).copied().into(),
            ]);
        }
        for r in &h.rounds {
            self.rounds.push(vec![
                id.into(),
                r.round.into(),
                r.prompt_id.as_str().into(),
                r.prompt.as_str().into(),
                Value::Int(Some(r.started_at)),
                Value::Int(r.voting_started_at),
                Value::Int(r.completed_at),
                r.duration_ms.into(),
                (r.responses.len() as u64).into(),
                (r.timed_out_responses.len() as u64).into(),
                (r.votes.len() as u64).into(),
                (r.timed_out_votes.len() as u64).into(),
            ]);
            for (pos, x) in r.responses.iter().enumerate() {
                let robot = r.robots.iter().find(|a| a.identity == x.identity);
                self.responses.push(vec![
                    id.into(),
                    r.round.into(),
                    x.identity.to_string().into(),
                    (pos as u64).into(),
                    kind_of(x.identity).into(),
                    match x.source {
                        ResponseSource::Human => "human",
                        ResponseSource::Robot => "robot",
                        ResponseSource::Fallback => "fallback",
                    }
                    .into(),
                    x.robot_id
                        .clone()
                        .or_else(|| robot.map(|a| a.robot_id.clone()))
                        .into(),
                    robot.map(|a| a.personality.clone()).into(),
                    x.model.clone().into(),
                    x.latency_ms.into(),
                    x.tokens.into(),
                    x.text.as_str().into(),
                ]);
            }
            let human_votes: Vec<Identity> = r
                .votes
                .iter()
                .filter(|v| kinds.get(&v.voter) == Some(&SeatKind::Human))
                .map(|v| v.voted_for)
                .collect();
            for v in &r.votes {
                let target = kind_of(v.voted_for);
                self.votes.push(vec![
                    id.into(),
                    r.round.into(),
                    v.voter.to_string().into(),
                    kind_of(v.voter).into(),
                    v.voted_for.to_string().into(),
                    target.into(),
                    target.map(|k| k == "human").into(),
                    match v.source {
                        VoteSource::Human => "human",
                        VoteSource::Robot => "robot",
                        VoteSource::Fallback => "fallback",
                    }
                    .into(),
                ]);
            }
            for a in &r.robots {
                let model = h
                    .seats
                    .iter()
                    .find(|s| s.identity == a.identity)
                    .and_then(|s| s.voices.iter().find(|v| v.round == r.round))
                    .and_then(|v| v.model.clone())
                    .or_else(|| {
                        r.responses
                            .iter()
                            .find(|x| x.identity == a.identity)
                            .and_then(|x| x.model.clone())
                    });
                let fooled = human_votes.iter().filter(|t| **t == a.identity).count() as u64;
                self.robot_voices.push(vec![
                    id.into(),
                    r.round.into(),
                    a.identity.to_string().into(),
                    a.robot_id.as_str().into(),
                    a.personality.as_str().into(),
                    model.into(),
                    (human_votes.len() as u64).into(),
                    fooled.into(),
                ]);
            }
        }
    }

    fn add_stats(&mut self, s: &MatchStats) {
        let none_i = || Value::Int(None);
        let none_f = || Value::Float(None);
        self.stats.push(vec![
            s.stat_key.as_str().into(),
            Value::Text(None),
            Value::Int(Some(s.window_start)),
            Value::Int(Some(s.window_end)),
            s.window_ms.into(),
            s.matches_completed.into(),
            s.rounds_completed.into(),
            s.mean_round_duration_ms.into(),
            s.human_votes.into(),
            s.human_votes_correct.into(),
            s.human_detection_accuracy.into(),
            s.robot_votes.into(),
            s.robot_votes_correct.into(),
            none_i(),
            none_i(),
            none_i(),
            none_f(),
            Value::Int(Some(s.updated_at)),
        ]);
        for (name, p) in &s.personalities {
            self.stats.push(vec![
                s.stat_key.as_str().into(),
                name.as_str().into(),
                Value::Int(Some(s.window_start)),
                Value::Int(Some(s.window_end)),
                s.window_ms.into(),
                none_i(),
                none_i(),
                none_f(),
                none_i(),
                none_i(),
                none_f(),
                none_i(),
                none_i(),
                p.rounds_voiced.into(),
                p.human_votes_seen.into(),
                p.taken_for_human.into(),
                p.taken_for_human_rate.into(),
                Value::Int(Some(s.updated_at)),
            ]);
        }
    }
}

fn kind_name(k: SeatKind) -> &'static str {
    match k {
        SeatKind::Human => "human",
        SeatKind::Robot => "robot",
    }
}

/// The README's column table (Markdown), generated from the table definitions so the two
/// cannot drift apart (a test compares them).
pub fn columns_markdown() -> String {
    let t = Tables::empty();
    let mut out =
        String::from("| table | key | column | type | meaning |\n|---|---|---|---|---|\n");
    for (table, (name, keys)) in t.all().iter().zip(KEYS) {
        debug_assert_eq!(table.name, name);
        for c in &table.columns {
            let key = if keys.contains(&c.name) { "✓" } else { "" };
            out.push_str(&format!(
                "| `{name}` | {key} | `{}` | {} | {} |\n",
                c.name,
                c.kind.name(),
                c.doc
            ));
        }
    }
    out
}
