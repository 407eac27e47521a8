//! `orchestra replay`: rebuilds `match-state` and `match-history` from the canonical event
//! log `match-events` and compares them, key by key and byte for byte, with the live
//! compacted topics.
//!
//! **What is replayed.** The live match processor writes `match-state` as
//! `serde_json::to_vec(&state)` where `state` is the fold
//! [`processors::game::evolve`] of the match's events, and the history processor writes
//! `match-history` as `serde_json::to_vec(&history)` of the fold
//! [`processors::game::history::evolve_history`], once, when the history first becomes
//! final ([`processors::game::history::is_final`]). Replay runs *the same pure functions*
//! over every event of `match-events` from an empty state: every partition from the
//! beginning to its end, in offset order per partition (all events of a match share its
//! partition, so per-match order is the log order).
//!
//! **How, honestly.** The issue describes this as running the topology "under a fresh
//! application id". This module does not start a second application: it folds in
//! process, with the same functions the processors call, and keeps nothing on disk. That
//! checks the property DESIGN §5 promises — `match-state` is a pure, deterministic fold
//! of `match-events` — without creating changelog topics or consumer groups on the
//! cluster; it does not re-exercise the runtime's store/changelog path (the runtime's own
//! tests cover restore).
//!
//! Run it on a quiescent system (as `demo --replay-check` does, after the last match): on
//! a live one, events and snapshots read at slightly different moments can differ.
//!
//! ```no_run
//! let mut client = rdkafka::ClientConfig::new();
//! client.set("bootstrap.servers", "127.0.0.1:9092");
//! let report = orchestra::replay::replay(&client).unwrap();
//! println!("{report}");
//! std::process::exit(if report.is_clean() { 0 } else { 1 });
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::Result;
use processors::game::history::{evolve_history, is_final};
use processors::game::{evolve, position, Position};
use processors::streams::topics;
use rdkafka::ClientConfig;
use schemas::{MatchEvent, MatchEventData, MatchHistory, MatchState};

use crate::views;

/// How long replay waits to read each topic to its end.
pub const REPLAY_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// What kind of difference was found for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MismatchKind {
    /// The replay produced a value the live topic does not have.
    MissingLive,
    /// The live topic has a value the replay did not produce.
    MissingReplay,
    /// Both have a value and the bytes differ.
    BytesDiffer,
}

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MismatchKind::MissingLive => "missing in the live topic",
            MismatchKind::MissingReplay => "missing in the replay",
            MismatchKind::BytesDiffer => "bytes differ",
        })
    }
}

/// One key whose live and replayed values differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The key (match id).
    pub key: String,
    /// `match-state` or `match-history`.
    pub topic: &'static str,
    /// The kind of difference.
    pub kind: MismatchKind,
    /// A short hint: which fields differ, or where the bytes start to differ.
    pub detail: String,
}

/// An event of `match-events` that could not be decoded (and so was not folded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableEvent {
    pub partition: i32,
    pub offset: i64,
    pub reason: String,
}

/// Result of [`replay`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records read from `match-events`.
    pub events_read: u64,
    /// Distinct matches folded.
    pub matches_replayed: usize,
    /// Keys compared for `match-state` (union of live and replayed keys).
    pub compared_state: usize,
    /// Keys compared for `match-history` (union of live and replayed keys).
    pub compared_history: usize,
    /// Every difference, state first, then history, each sorted by key.
    pub mismatches: Vec<Mismatch>,
    /// Events that could not be decoded.
    pub undecodable_events: Vec<UndecodableEvent>,
    /// Redelivered events skipped (their match had folded them already).
    pub duplicates_skipped: u64,
    /// Events refused because events of their match before them are missing.
    pub sequence_gaps: Vec<String>,
}

impl ReplayReport {
    /// No mismatch, no undecodable event and no gap.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
            && self.undecodable_events.is_empty()
            && self.sequence_gaps.is_empty()
    }

    /// Mismatches of one topic.
    pub fn mismatches_of<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a Mismatch> + 'a {
        self.mismatches.iter().filter(move |m| m.topic == topic)
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "replay: {} events of {} matches read from {}",
            self.events_read,
            self.matches_replayed,
            topics::MATCH_EVENTS
        )?;
        writeln!(
            f,
            "{}: {} keys compared, {} mismatches",
            topics::MATCH_STATE,
            self.compared_state,
            self.mismatches_of(topics::MATCH_STATE).count()
        )?;
        writeln!(
            f,
            "{}: {} keys compared, {} mismatches",
            topics::MATCH_HISTORY,
            self.compared_history,
            self.mismatches_of(topics::MATCH_HISTORY).count()
        )?;
        writeln!(
            f,
            "{}: {} duplicates skipped, {} sequence gaps",
            topics::MATCH_EVENTS,
            self.duplicates_skipped,
            self.sequence_gaps.len()
        )?;
        for g in &self.sequence_gaps {
            writeln!(f, "GAP {}: {g}", topics::MATCH_EVENTS)?;
        }
        for u in &self.undecodable_events {
            writeln!(
                f,
                "UNDECODABLE {}/{}@{}: {}",
                topics::MATCH_EVENTS,
                u.partition,
                u.offset,
                u.reason
            )?;
        }
        for m in &self.mismatches {
            writeln!(
                f,
                "MISMATCH {} {}: {} ({})",
                m.topic, m.key, m.kind, m.detail
            )?;
        }
        write!(
            f,
            "{}",
            if self.is_clean() {
                "replay: clean"
            } else {
                "replay: MISMATCHES FOUND"
            }
        )
    }
}

/// The replayed values: `match-state` and `match-history` bytes per match id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// Latest state per match, encoded as the match processor encodes it.
    pub states: BTreeMap<String, Vec<u8>>,
    /// The history per match as published when it first became final.
    pub histories: BTreeMap<String, Vec<u8>>,
}

/// The replay fold, fed one event at a time (in log order); see the module docs.
#[derive(Debug, Default)]
pub struct Folder {
    states: BTreeMap<String, MatchState>,
    histories: BTreeMap<String, MatchHistory>,
    published: BTreeMap<String, Vec<u8>>,
    duplicates: u64,
    gaps: Vec<String>,
}

impl Folder {
    /// Folds one event into its match's state and history, as the match processor and
    /// the history processor do.
    /// An event that is not the next one of its match is not folded: a duplicate is
    /// counted, a gap is recorded (see [`Folder::duplicates`], [`Folder::gaps`]).
    pub fn apply(&mut self, ev: &MatchEvent) -> Result<()> {
        let applied = self
            .states
            .get(&ev.match_id)
            .map_or(0, |s| s.events_applied);
        match position(applied, ev.sequence) {
            Position::Next => {}
            Position::Duplicate => {
                self.duplicates += 1;
                return Ok(());
            }
            gap @ Position::Gap { .. } => {
                self.gaps
                    .push(gap.gap_reason(&ev.match_id).unwrap_or_default());
                return Ok(());
            }
        }
        let state = evolve(self.states.remove(&ev.match_id), ev);
        self.states.insert(ev.match_id.clone(), state);
        let before = self.histories.remove(&ev.match_id);
        let was_final = before.as_ref().is_some_and(is_final);
        let after = evolve_history(before, ev);
        if is_final(&after) && !was_final {
            self.published
                .insert(ev.match_id.clone(), serde_json::to_vec(&after)?);
        }
        self.histories.insert(ev.match_id.clone(), after);
        Ok(())
    }

    /// Redelivered events skipped so far (already folded for their match).
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Events refused so far because events before them were missing, with the reason.
    pub fn gaps(&self) -> &[String] {
        &self.gaps
    }

    /// The values the live topics should hold.
    pub fn finish(self) -> Result<Folded> {
        let mut out = Folded {
            histories: self.published,
            ..Folded::default()
        };
        for (k, s) in self.states {
            out.states.insert(k, serde_json::to_vec(&s)?);
        }
        Ok(out)
    }
}

/// Folds events (in log order) exactly as the live processors do; see the module docs.
pub fn fold_events<'a>(events: impl IntoIterator<Item = &'a MatchEvent>) -> Result<Folded> {
    let mut folder = Folder::default();
    for ev in events {
        folder.apply(ev)?;
    }
    folder.finish()
}

/// Compares `replayed` with `live` for `topic`; returns the number of keys compared and
/// appends every mismatch.
pub fn compare(
    topic: &'static str,
    replayed: &BTreeMap<String, Vec<u8>>,
    live: &BTreeMap<String, Vec<u8>>,
    mismatches: &mut Vec<Mismatch>,
) -> usize {
    let mut keys: Vec<&String> = replayed.keys().chain(live.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        let (kind, detail) = match (replayed.get(*key), live.get(*key)) {
            (Some(r), Some(l)) if r == l => continue,
            (Some(r), Some(l)) => (MismatchKind::BytesDiffer, diff_hint(l, r)),
            (Some(_), None) => (
                MismatchKind::MissingLive,
                "the events give a value the live topic does not have".into(),
            ),
            (None, Some(_)) => (
                MismatchKind::MissingReplay,
                "no events in match-events produce this value".into(),
            ),
            (None, None) => continue,
        };
        mismatches.push(Mismatch {
            key: (*key).clone(),
            topic,
            kind,
            detail,
        });
    }
    keys.len()
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let mut t: String = s.chars().take(59).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// A short description of how `live` and `replayed` differ.
fn diff_hint(live: &[u8], replayed: &[u8]) -> String {
    let parsed = (
        serde_json::from_slice::<serde_json::Value>(live),
        serde_json::from_slice::<serde_json::Value>(replayed),
    );
    if let (Ok(l), Ok(r)) = parsed {
        if l == r {
            return "same JSON, different encoding (field order or whitespace)".into();
        }
        if let (Some(lo), Some(ro)) = (l.as_object(), r.as_object()) {
            let mut fields: Vec<&String> = lo.keys().chain(ro.keys()).collect();
            fields.sort();
            fields.dedup();
            let differing: Vec<String> = fields
                .into_iter()
                .filter(|f| lo.get(*f) != ro.get(*f))
                .map(|f| {
                    let show = |v: Option<&serde_json::Value>| {
                        v.map(short).unwrap_or_else(|| "(absent)".into())
                    };
                    format!(
                        "{f}: live {} vs replay {}",
                        show(lo.get(f)),
                        show(ro.get(f))
                    )
                })
                .collect();
            let n = differing.len();
            let mut hint = differing.into_iter().take(4).collect::<Vec<_>>().join("; ");
            if n > 4 {
                hint.push_str(&format!("; and {} more fields", n - 4));
            }
            return hint;
        }
    }
    let at = live
        .iter()
        .zip(replayed)
        .position(|(a, b)| a != b)
        .unwrap_or(live.len().min(replayed.len()));
    let ctx = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.min(b.len())..(at + 40).min(b.len())]).into_owned()
    };
    format!(
        "first difference at byte {at}: live {:?} vs replay {:?} (lengths {} and {})",
        ctx(live),
        ctx(replayed),
        live.len(),
        replayed.len()
    )
}

/// Reads `match-events` to its end, folds it, reads the latest values of `match-state`
/// and `match-history`, and compares them; see the module docs.
pub fn replay(client: &ClientConfig) -> Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut folder = Folder::default();
    let mut fold_error: Option<anyhow::Error> = None;
    views::read_to_end(client, topics::MATCH_EVENTS, REPLAY_READ_TIMEOUT, |row| {
        report.events_read += 1;
        let Some(value) = row.value else {
            report.undecodable_events.push(UndecodableEvent {
                partition: row.partition,
                offset: row.offset,
                reason: "null value (tombstone) in the event log".into(),
            });
            return;
        };
        match schemas::decode::<MatchEventData>(&value) {
            Ok(ev) => {
                if let Err(e) = folder.apply(&ev) {
                    fold_error.get_or_insert(e);
                }
            }
            Err(e) => report.undecodable_events.push(UndecodableEvent {
                partition: row.partition,
                offset: row.offset,
                reason: format!("{}: {e}", e.code()),
            }),
        }
    })?;
    if let Some(e) = fold_error {
        return Err(e.context("folding match-events"));
    }
    report.duplicates_skipped = folder.duplicates();
    report.sequence_gaps = folder.gaps().to_vec();
    let folded = folder.finish()?;
    report.matches_replayed = folded.states.len();

    let live_state: BTreeMap<String, Vec<u8>> =
        views::read_latest(client, topics::MATCH_STATE, REPLAY_READ_TIMEOUT)?
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect();
    let live_history: BTreeMap<String, Vec<u8>> =
        views::read_latest(client, topics::MATCH_HISTORY, REPLAY_READ_TIMEOUT)?
            .into_iter()
            .map(|(k, e)| (k, e.value))
            .collect();
    report.compared_state = compare(
        topics::MATCH_STATE,
        &folded.states,
        &live_state,
        &mut report.mismatches,
    );
    report.compared_history = compare(
        topics::MATCH_HISTORY,
        &folded.histories,
        &live_history,
        &mut report.mismatches,
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(id: &str, seq: u64, data: impl Into<MatchEventData>) -> MatchEvent {
        schemas::Envelope::new(id, "m1", 1_000 + seq as i64, "c", id, data).with_sequence(seq)
    }

    fn created() -> schemas::MatchCreated {
        schemas::MatchCreated {
            template: "duel_2v1".into(),
            total_rounds: 1,
            seats: vec![],
            response_window_ms: 1,
            voting_window_ms: 1,
            robots_window_ms: None,
        }
    }

    fn joined() -> schemas::PlayerJoined {
        schemas::PlayerJoined {
            identity: schemas::Identity::ALL[0],
            player_id: "p1".into(),
            name: "Ann".into(),
        }
    }

    #[test]
    fn replay_skips_redelivered_events_and_reports_gaps() {
        let log = [numbered("e1", 1, created()), numbered("e2", 2, joined())];
        let clean = fold_events(&log).unwrap();

        let mut folder = Folder::default();
        for ev in [&log[0], &log[0], &log[1], &log[0], &log[1]] {
            folder.apply(ev).unwrap();
        }
        assert_eq!(folder.duplicates(), 3);
        assert!(folder.gaps().is_empty());
        assert_eq!(folder.finish().unwrap(), clean);

        let mut folder = Folder::default();
        folder.apply(&log[0]).unwrap();
        folder.apply(&numbered("e4", 4, joined())).unwrap();
        assert_eq!(folder.gaps().len(), 1);
        assert!(
            folder.gaps()[0].contains("expected event 2, got 4"),
            "{:?}",
            folder.gaps()
        );
    }

    #[test]
    fn diff_hints_name_fields_or_bytes() {
        let h = diff_hint(br#"{"a":1,"b":2}"#, br#"{"a":1,"b":3}"#);
        assert_eq!(h, "b: live 2 vs replay 3");
        let h = diff_hint(br#"{"a":1,"b":2}"#, br#"{"b":2,"a":1}"#);
        assert!(h.contains("same JSON"), "{h}");
        let h = diff_hint(b"abcdef", b"abcxef");
        assert!(h.contains("byte 3"), "{h}");
    }

    #[test]
    fn compare_reports_every_kind() {
        let r: BTreeMap<String, Vec<u8>> = [("a", "1"), ("b", "2"), ("c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let l: BTreeMap<String, Vec<u8>> = [("a", "1"), ("b", "9"), ("d", "4")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect();
        let mut m = Vec::new();
        assert_eq!(compare("match-state", &r, &l, &mut m), 4);
        let kinds: Vec<(&str, MismatchKind)> = m.iter().map(|m| (m.key.as_str(), m.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                ("b", MismatchKind::BytesDiffer),
                ("c", MismatchKind::MissingLive),
                ("d", MismatchKind::MissingReplay)
            ]
        );
    }
}
