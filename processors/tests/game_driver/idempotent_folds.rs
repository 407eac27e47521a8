//! Every fold of `match-events` applies an event only when it is the next one of its
//! match: redelivered events (what at-least-once sends again after a crash) change no
//! output, and an event that comes after a gap is dead-lettered with its reason.

use processors::streams::topics;
use schemas::MatchEvent;
use topology::OutRecord;

use crate::support::{settings, Game};

const MATCH: &str = "folds-1";

/// A topic's records as (key, value).
type Records = Vec<(String, Option<Vec<u8>>)>;

fn values(records: &[OutRecord]) -> Records {
    records
        .iter()
        .map(|r| (r.key_str().to_owned(), r.value.clone()))
        .collect()
}

/// Every output topic of the game topology, as (key, value) lists.
fn outputs(g: &Game) -> Vec<(&'static str, Records)> {
    [
        topics::MATCH_EVENTS,
        topics::MATCH_STATE,
        topics::ROBOT_COMMANDS,
        topics::ROBOT_ORCHESTRATION_EVENTS,
        topics::ROBOT_POOL_STATE,
        topics::MATCH_HISTORY,
        topics::MATCH_STATS,
    ]
    .into_iter()
    .map(|t| (t, values(&g.driver.peek_output(t))))
    .collect()
}

fn redeliver(g: &mut Game, events: &[MatchEvent]) {
    for ev in events {
        let bytes = ev.to_json_vec().expect("encode");
        g.pipe_raw(topics::MATCH_EVENTS, &ev.match_id, &bytes);
    }
}

/// Plays one classic match; `redeliver_at_start` sends every event written before the
/// first round's robots arrive a second time, as a restarted worker would.
fn play(redeliver_at_start: bool) -> Game {
    let mut g = Game::new(settings());
    g.create_and_join(MATCH, "classic_1v3", 3);
    if redeliver_at_start {
        let so_far = g.events_of(MATCH);
        assert!(so_far.len() >= 3, "created, joined, robots needed");
        redeliver(&mut g, &so_far);
    }
    g.play(&[MATCH]);
    g.assert_completed(MATCH);
    g
}

#[test]
fn events_carry_their_position_in_their_match() {
    let g = play(false);
    let sequences: Vec<Option<u64>> = g.events_of(MATCH).iter().map(|e| e.sequence).collect();
    let expected: Vec<Option<u64>> = (1..=sequences.len() as u64).map(Some).collect();
    assert_eq!(sequences, expected);
    let state = g.state(MATCH).expect("state");
    assert_eq!(state.events_applied, sequences.len() as u64);
    let history = g.history(MATCH).expect("history");
    assert_eq!(history.events_applied, sequences.len() as u64);
}

#[test]
fn redelivered_events_change_no_output_of_any_fold() {
    let clean = play(false);
    let mut redelivered = play(true);
    // Every output of every processor is what the clean run wrote, record for record:
    // the pool assigned robots once, commands went out once, the history is the same.
    assert_eq!(outputs(&redelivered), outputs(&clean));
    assert!(redelivered.dlq().is_empty(), "duplicates are not errors");

    // The whole log once more, after the end: nothing at all happens.
    let before = outputs(&redelivered);
    let log = redelivered.events_of(MATCH);
    redeliver(&mut redelivered, &log);
    redelivered.driver.commit().expect("commit");
    assert_eq!(outputs(&redelivered), before);
    assert!(redelivered.dlq().is_empty());
}

#[test]
fn an_old_event_changes_nothing_and_an_event_after_a_gap_is_dead_lettered() {
    let log = play(false).events_of(MATCH);
    let expected = play(false).history(MATCH).expect("history");
    // A fresh topology fed only `match-events`: the history view and the pool fold them
    // (the match processor, which never saw the match, rejects the pool's answers).
    let mut g = Game::new(settings());
    let gaps = |g: &Game| -> Vec<OutRecord> {
        g.dlq()
            .into_iter()
            .filter(|r| r.header("source.topic") == Some(topics::MATCH_EVENTS))
            .collect()
    };
    let (head, tail) = log.split_at(8);
    redeliver(&mut g, head);
    // An event from the past (reordered behind newer ones): no effect, no error.
    redeliver(&mut g, &head[3..4]);
    assert!(gaps(&g).is_empty());
    // The next event is missing: the one after it is refused by both folds.
    redeliver(&mut g, &tail[1..2]);
    let dlq = gaps(&g);
    let mut processors: Vec<&str> = dlq
        .iter()
        .map(|r| r.header("processor").expect("processor header"))
        .collect();
    processors.sort();
    assert_eq!(processors, ["history", "robot-orchestration"]);
    for r in &dlq {
        let error = r.header("error").expect("error header");
        assert!(
            error.starts_with("sequence_gap:") && error.contains("expected event 9, got 10"),
            "{error}"
        );
    }
    // The missing event arrives, then the rest: the history is the clean run's.
    redeliver(&mut g, tail);
    g.driver.commit().expect("commit");
    assert_eq!(g.history(MATCH), Some(expected));
    assert_eq!(gaps(&g).len(), 2);
}
