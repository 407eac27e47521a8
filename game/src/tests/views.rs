use schemas::{HistoryStatus, MatchCreate, PlayerRef, SeatKind};

use super::harness::{diligent_robots, World};
use crate::history::{evolve_history, is_final};
use crate::stats::{
    apply_history, apply_outcome, stat_key, stat_key_for, MatchOutcome, StatsConfig,
};

fn duel(m: &str, w: &mut World, pick_robot: bool) {
    let humans = (0..2)
        .map(|i| PlayerRef {
            player_id: format!("{m}-p{i}"),
            name: "N".into(),
        })
        .collect();
    w.request(
        m,
        MatchCreate {
            template: "duel_2v1".into(),
            total_rounds: 2,
            humans,
            ..Default::default()
        },
    )
    .expect("create");
    let pick = move |s: &schemas::MatchState, me| {
        let want = if pick_robot {
            SeatKind::Robot
        } else {
            SeatKind::Human
        };
        s.seats
            .iter()
            .find(|x| x.kind == want && x.identity != me)
            .map(|x| x.identity)
            .expect("target")
    };
    w.play(m, &mut diligent_robots(), &pick);
}

#[test]
fn history_is_final_only_at_match_completion_and_agrees_with_the_match_processor() {
    let mut w = World::new();
    duel("h", &mut w, false);
    let events = w.events_of("h");
    let mut h = None;
    for (i, e) in events.iter().enumerate() {
        let next = evolve_history(h, e);
        assert_eq!(is_final(&next), i + 1 == events.len());
        h = Some(next);
    }
    let h = h.expect("history");
    assert_eq!(h.status, HistoryStatus::Completed);
    // The history is a second fold of the published log: what it says about the match is
    // what the match processor published in its state (`handle_in_place`, not a fold).
    // (That the history processor publishes this fold is checked on its output, in
    // processors/tests/game_driver/replay.rs.)
    let state = &w.matches["h"];
    assert_eq!(h.seats, state.seats, "seats, kinds and robot voices");
    assert_eq!(h.final_scores, state.scores);
    assert_eq!(h.rounds.last().map(|r| &r.scores), Some(&state.scores));
    assert_eq!(
        (h.template.as_str(), h.total_rounds, h.created_at),
        (
            state.template.as_str(),
            state.total_rounds,
            state.created_at
        )
    );
    assert_eq!(h.completed_at, state.completed_at);
    assert_eq!(h.events_applied, state.events_applied);
    assert_eq!(h.rounds.iter().map(|r| r.round).collect::<Vec<_>>(), [1, 2]);
    assert!(h
        .rounds
        .iter()
        .all(|r| r.duration_ms.is_some() && r.voting_started_at.is_some()));
    assert_eq!(
        h.seats
            .iter()
            .filter(|s| s.kind == SeatKind::Robot)
            .map(|s| s.voices.len())
            .sum::<usize>(),
        2
    );
}

#[test]
fn stats_aggregate_per_window_and_count_each_match_once() {
    let cfg = StatsConfig {
        window_ms: 3_600_000,
    };
    let mut w = World::new();
    duel("s1", &mut w, false); // humans name each other: always right
    duel("s2", &mut w, true); // humans name the robot: always fooled
    let h1 = w.histories["s1"].clone();
    let h2 = w.histories["s2"].clone();
    let key = stat_key_for(&cfg, &h1).expect("final");
    assert_eq!(Some(key.clone()), stat_key_for(&cfg, &h2), "same hour");
    let s = apply_history(None, &h1, &cfg);
    let s = apply_history(s, &h2, &cfg);
    let s = apply_history(s, &h1, &cfg).expect("stats"); // duplicate delivery
    assert_eq!(s.stat_key, key);
    assert_eq!(s.matches_completed, 2);
    assert_eq!(s.rounds_completed, 4);
    assert_eq!(s.human_votes, 8);
    assert_eq!(s.human_votes_correct, 4);
    assert!((s.human_detection_accuracy - 0.5).abs() < 1e-9);
    assert_eq!(s.robot_votes, 4);
    assert!(s.mean_round_duration_ms > 0.0);
    let voiced: u64 = s.personalities.values().map(|p| p.rounds_voiced).sum();
    assert_eq!(voiced, 4);
    let taken: u64 = s.personalities.values().map(|p| p.taken_for_human).sum();
    assert_eq!(taken, 4, "both humans named the robot in both rounds of s2");
    let seen: u64 = s.personalities.values().map(|p| p.human_votes_seen).sum();
    assert_eq!(seen, 8);
    assert!(
        s.window_start <= h1.completed_at.expect("done")
            && h1.completed_at.expect("done") < s.window_end
    );
    // An unfinished history changes nothing.
    let mut running = h1.clone();
    running.completed_at = None;
    assert_eq!(apply_history(None, &running, &cfg), None);
    assert_eq!(stat_key(&cfg, -1), "window-3600000--3600000");
}

#[test]
fn stats_read_from_the_history_document_equal_stats_of_the_whole_history() {
    let cfg = StatsConfig::default();
    let mut w = World::new();
    duel("o1", &mut w, false);
    duel("o2", &mut w, true);
    let (h1, h2) = (&w.histories["o1"], &w.histories["o2"]);
    // The stats processor decodes only what stats read from the published JSON.
    let outcome = |h: &schemas::MatchHistory| -> MatchOutcome {
        serde_json::from_slice(&serde_json::to_vec(h).expect("encode")).expect("outcome")
    };
    assert_eq!(outcome(h1), MatchOutcome::from(h1));
    let whole = apply_history(apply_history(None, h1, &cfg), h2, &cfg).expect("stats");
    let read =
        apply_outcome(apply_outcome(None, &outcome(h1), &cfg), &outcome(h2), &cfg).expect("stats");
    assert_eq!(read, whole);
    assert_eq!(read.matches_completed, 2);
}

/// Issue 16 item 4: the model behind each robot answer (event data from
/// `response.submitted`) is in `response.recorded`, on the robot's voice of the round in
/// the state and the reveal, and in the history; a fold of the log gives the same state.
#[test]
fn the_model_behind_each_robot_answer_reaches_the_reveal_and_the_history() {
    use schemas::{MatchEventData, ResponseSource};
    let mut w = World::new();
    duel("m", &mut w, true);
    let h = &w.histories["m"];
    let robot_seats: Vec<_> = h
        .seats
        .iter()
        .filter(|s| s.kind == SeatKind::Robot)
        .collect();
    assert!(!robot_seats.is_empty());
    for s in &robot_seats {
        assert_eq!(s.voices.len(), 2, "{s:?}");
        for v in &s.voices {
            assert_eq!(v.model.as_deref(), Some("scripted"), "{v:?}");
        }
    }
    let mut robot_answers = 0;
    for r in &h.rounds {
        for x in &r.responses {
            if x.source == ResponseSource::Robot {
                robot_answers += 1;
                assert_eq!(
                    (x.model.as_deref(), x.latency_ms, x.tokens),
                    (Some("scripted"), Some(5), Some(12))
                );
                assert!(x.robot_id.is_some());
            } else {
                assert_eq!(
                    (x.model.as_ref(), x.latency_ms, x.tokens),
                    (None, None, None)
                );
            }
        }
    }
    assert_eq!(robot_answers, 2 * robot_seats.len());
    let events = w.events_of("m");
    let Some(MatchEventData::MatchCompleted(done)) = events.last().map(|e| &e.data) else {
        panic!("the last event is match.completed");
    };
    assert_eq!(done.reveal, h.seats, "the reveal names the models");
    let replayed = w.replay("m").expect("events");
    assert_eq!(
        serde_json::to_vec(&replayed).expect("json"),
        serde_json::to_vec(&w.matches["m"]).expect("json")
    );
}
