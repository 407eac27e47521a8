//! The analysts' commands over compacted topics: `orchestra history` (finished matches,
//! newest first) and `orchestra stats` (the `match-stats` windows).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use processors::streams::topics;
use rdkafka::ClientConfig;
use schemas::{MatchHistory, MatchStats, SeatKind};

use super::format::{format_ts, inline_json, write_table};
use super::latest::{read_latest, Entry};
use super::READ_TO_END_TIMEOUT;
use crate::time_range::TimeRange;

/// Decoded `match-history` documents, newest first (by completion time, then creation
/// time, then match id). Undecodable values are skipped with a warning.
pub fn sorted_histories(entries: &BTreeMap<String, Entry>) -> Vec<(MatchHistory, &Entry)> {
    let mut docs: Vec<(MatchHistory, &Entry)> = entries
        .iter()
        .filter_map(|(k, e)| match schemas::decode_document::<MatchHistory>(&e.value) {
            Ok(h) => Some((h, e)),
            Err(err) => {
                tracing::warn!(key = %k, error = %err, "skipping an undecodable match-history value");
                None
            }
        })
        .collect();
    docs.sort_by(|(a, _), (b, _)| {
        let ka = (a.completed_at.unwrap_or(a.created_at), a.created_at);
        let kb = (b.completed_at.unwrap_or(b.created_at), b.created_at);
        kb.cmp(&ka).then_with(|| a.match_id.cmp(&b.match_id))
    });
    docs
}

/// `orchestra history`: the `limit` most recently finished matches from `match-history`,
/// newest first. JSON lines (the documents as stored) or, with `table`, one row per match.
/// Only matches completed in `range` (`--since`/`--until`) are listed.
pub fn history(
    client: &ClientConfig,
    limit: usize,
    table: bool,
    range: TimeRange,
    out: &mut impl Write,
) -> Result<()> {
    let latest = read_latest(client, topics::MATCH_HISTORY, READ_TO_END_TIMEOUT)?;
    let mut docs = sorted_histories(&latest);
    if !range.is_unbounded() {
        docs.retain(|(h, _)| h.completed_at.is_some_and(|t| range.contains(t)));
    }
    let docs = &docs[..docs.len().min(limit)];
    if table {
        let rows: Vec<Vec<String>> = docs
            .iter()
            .map(|(h, _)| {
                let humans: Vec<String> = h
                    .seats
                    .iter()
                    .filter(|s| s.kind == SeatKind::Human)
                    .map(|s| match &s.name {
                        Some(n) => format!("{}={n}", s.identity),
                        None => s.identity.to_string(),
                    })
                    .collect();
                let scores: Vec<String> = h
                    .final_scores
                    .iter()
                    .map(|(id, p)| format!("{id}:{p}"))
                    .collect();
                vec![
                    h.match_id.clone(),
                    h.template.clone(),
                    format!("{}/{}", h.rounds.len(), h.total_rounds),
                    format_ts(h.completed_at.unwrap_or(-1)),
                    h.duration_ms
                        .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into()),
                    humans.join(" "),
                    scores.join(" "),
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "MATCH",
                "TEMPLATE",
                "ROUNDS",
                "COMPLETED",
                "DURATION",
                "HUMANS",
                "SCORES",
            ],
            &rows,
        )?;
    } else {
        for (_, e) in docs {
            writeln!(out, "{}", inline_json(&e.value))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `orchestra stats`: the `match-stats` windows, oldest first. JSON lines (the documents
/// as stored) or, with `table`, one row per window.
pub fn stats(client: &ClientConfig, table: bool, out: &mut impl Write) -> Result<()> {
    let latest = read_latest(client, topics::MATCH_STATS, READ_TO_END_TIMEOUT)?;
    let mut docs: Vec<(MatchStats, Entry)> = latest
        .into_iter()
        .filter_map(|(k, e)| match serde_json::from_slice::<MatchStats>(&e.value) {
            Ok(s) => Some((s, e)),
            Err(err) => {
                tracing::warn!(key = %k, error = %err, "skipping an undecodable match-stats value");
                None
            }
        })
        .collect();
    docs.sort_by(|(a, _), (b, _)| {
        (a.window_start, &a.stat_key).cmp(&(b.window_start, &b.stat_key))
    });
    if table {
        let rows: Vec<Vec<String>> = docs
            .iter()
            .map(|(s, _)| {
                let most_human = s
                    .personalities
                    .iter()
                    .filter(|(_, p)| p.human_votes_seen > 0)
                    .max_by(|a, b| {
                        a.1.taken_for_human_rate
                            .total_cmp(&b.1.taken_for_human_rate)
                    })
                    .map(|(name, p)| format!("{name} ({:.0}%)", p.taken_for_human_rate * 100.0))
                    .unwrap_or_else(|| "-".into());
                vec![
                    format_ts(s.window_start),
                    format_ts(s.window_end),
                    s.matches_completed.to_string(),
                    s.rounds_completed.to_string(),
                    format!("{:.1}s", s.mean_round_duration_ms / 1000.0),
                    format!("{:.0}%", s.human_detection_accuracy * 100.0),
                    most_human,
                ]
            })
            .collect();
        write_table(
            out,
            &[
                "WINDOW START",
                "WINDOW END",
                "MATCHES",
                "ROUNDS",
                "MEAN ROUND",
                "HUMAN DETECTION",
                "MOST TAKEN FOR HUMAN",
            ],
            &rows,
        )?;
    } else {
        for (_, e) in &docs {
            writeln!(out, "{}", inline_json(&e.value))?;
        }
    }
    out.flush()?;
    Ok(())
}
