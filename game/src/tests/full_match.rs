use schemas::{
    MatchCreate, MatchEventData, MatchJoin, MatchStatus, PlayerRef, ResponseSource, SeatKind,
    VoteSource,
};

use super::harness::{check_invariants, diligent_robots, first_other, World};
use crate::history::is_final;
use crate::stats::{apply_history, StatsConfig};
use crate::templates::TEMPLATES;
use crate::MatchStateExt;

fn players(n: u32) -> Vec<PlayerRef> {
    (0..n)
        .map(|i| PlayerRef {
            player_id: format!("p{i}"),
            name: format!("Player {i}"),
        })
        .collect()
}

#[test]
fn every_template_plays_from_creation_to_reveal_with_scripted_robots() {
    for t in &TEMPLATES {
        let mut w = World::new();
        let m = format!("match-{}", t.name);
        w.request(
            &m,
            MatchCreate {
                template: t.name.into(),
                total_rounds: 3,
                humans: players(t.humans),
                ..Default::default()
            },
        )
        .expect("create");
        w.play(&m, &mut diligent_robots(), &first_other);
        let state = &w.matches[&m];
        assert_eq!(state.status, MatchStatus::Completed, "{}", t.name);
        assert_eq!(state.seats.len(), t.seats());
        let types = w.event_types(&m);
        assert_eq!(
            &types[..2],
            &["match.created", "round.robots_needed"],
            "{}",
            t.name
        );
        assert_eq!(types.iter().filter(|t| **t == "round.started").count(), 3);
        assert_eq!(types.iter().filter(|t| **t == "round.completed").count(), 3);
        assert_eq!(types.last(), Some(&"match.completed"));
        assert!(!types.contains(&"response.timed_out") && !types.contains(&"vote.timed_out"));
        // The reveal: humans with their players, robots with one voice per round.
        let Some(MatchEventData::MatchCompleted(done)) =
            w.events_of(&m).last().map(|e| e.data.clone())
        else {
            panic!("no match.completed");
        };
        assert_eq!(done.rounds_played, 3);
        for seat in &done.reveal {
            match seat.kind {
                SeatKind::Human => assert!(seat.player_id.is_some() && seat.voices.is_empty()),
                SeatKind::Robot => {
                    assert_eq!(
                        seat.voices.iter().map(|v| v.round).collect::<Vec<_>>(),
                        vec![1, 2, 3]
                    );
                }
            }
        }
        assert_eq!(
            done.reveal
                .iter()
                .filter(|s| s.kind == SeatKind::Human)
                .count() as u32,
            t.humans
        );
        // History is final and consistent with the log.
        let h = &w.histories[&m];
        assert!(is_final(h));
        assert_eq!(h.rounds.len(), 3);
        assert_eq!(h.final_scores, done.final_scores);
        for r in &h.rounds {
            assert_eq!(r.responses.len(), t.seats());
            assert_eq!(r.votes.len(), t.seats());
            assert!(r
                .responses
                .iter()
                .all(|x| x.source != ResponseSource::Fallback));
        }
        let stats = apply_history(None, h, &StatsConfig::default()).expect("stats");
        assert_eq!(stats.matches_completed, 1);
        assert_eq!(stats.rounds_completed, 3);
        check_invariants(&w, &m);
    }
}

#[test]
fn human_seats_wait_for_joins_before_round_one() {
    let mut w = World::new();
    let created = w
        .request(
            "m",
            MatchCreate {
                template: "duo_2v2".into(),
                total_rounds: 1,
                humans: vec![],
                ..Default::default()
            },
        )
        .expect("create");
    assert_eq!(created.len(), 1);
    assert_eq!(w.matches["m"].status, MatchStatus::WaitingForPlayers);
    let joined = w
        .request(
            "m",
            MatchJoin {
                player_id: "a".into(),
                name: "Ann".into(),
            },
        )
        .expect("join");
    assert_eq!(
        joined.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["player.joined"]
    );
    let joined = w
        .request(
            "m",
            MatchJoin {
                player_id: "b".into(),
                name: "Ben".into(),
            },
        )
        .expect("join");
    assert_eq!(
        joined.iter().map(|e| e.event_type()).collect::<Vec<_>>(),
        ["player.joined", "round.robots_needed"]
    );
    // The pool answered and the round started with the assigned robots.
    assert_eq!(w.matches["m"].status, MatchStatus::Responding);
    let cur = w.matches["m"].current.clone().expect("round");
    assert_eq!(cur.robots.len(), 2);
    assert!(cur.response_deadline > w.now);
    w.play("m", &mut diligent_robots(), &first_other);
    check_invariants(&w, "m");
}

#[test]
fn derived_events_take_the_cause_timestamp_and_ids() {
    let mut w = World::new();
    let env = w.request_envelope(
        "m",
        MatchCreate {
            template: "duel_2v1".into(),
            total_rounds: 1,
            humans: players(2),
            ..Default::default()
        },
    );
    let events = w.send(env.clone().into()).expect("create");
    assert_eq!(events.len(), 2);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.timestamp, env.timestamp);
        assert_eq!(e.causation_id, env.event_id);
        assert_eq!(e.correlation_id, env.correlation_id);
        assert_eq!(
            e.event_id,
            crate::ids::derive_event_id("m", &env.event_id, i)
        );
    }
    // Same input on the same (empty) state: same events, byte for byte.
    let again = crate::decide(None, &env.into(), &w.cfg).expect("create");
    assert_eq!(again, events);
}

#[test]
fn scores_follow_the_rule_in_a_scripted_duel() {
    // duel_2v1: two humans, one robot. Humans name each other (both +1); the robot names
    // a human (+1). Over 2 rounds: humans 2 each, robot 2.
    let mut w = World::new();
    w.request(
        "d",
        MatchCreate {
            template: "duel_2v1".into(),
            total_rounds: 2,
            humans: players(2),
            ..Default::default()
        },
    )
    .expect("create");
    let human_pick = |s: &schemas::MatchState, me| {
        s.seats
            .iter()
            .find(|x| x.kind == SeatKind::Human && x.identity != me)
            .map(|x| x.identity)
            .expect("other human")
    };
    w.play("d", &mut diligent_robots(), &human_pick);
    let s = &w.matches["d"];
    for seat in &s.seats {
        let expected = match seat.kind {
            SeatKind::Human => 2,
            // The robot votes for the first candidate, which is always a human here.
            SeatKind::Robot => 2,
        };
        assert_eq!(s.scores[&seat.identity], expected, "{seat:?}");
    }
    // Now a robot fooling both humans: each human names the robot.
    let mut w = World::new();
    w.request(
        "d2",
        MatchCreate {
            template: "duel_2v1".into(),
            total_rounds: 1,
            humans: players(2),
            ..Default::default()
        },
    )
    .expect("create");
    let robot_pick = |s: &schemas::MatchState, _me| {
        s.seats
            .iter()
            .find(|x| x.kind == SeatKind::Robot)
            .map(|x| x.identity)
            .expect("robot")
    };
    w.play("d2", &mut diligent_robots(), &robot_pick);
    let s = &w.matches["d2"];
    let robot = s
        .seats
        .iter()
        .find(|x| x.kind == SeatKind::Robot)
        .expect("robot")
        .identity;
    assert_eq!(
        s.scores[&robot], 3,
        "2 fooled humans + 1 for naming a human"
    );
    for seat in s.seats.iter().filter(|x| x.kind == SeatKind::Human) {
        assert_eq!(s.scores[&seat.identity], 0);
    }
    let votes = &w.histories["d2"].rounds[0].votes;
    assert!(votes.iter().any(|v| v.source == VoteSource::Robot));
    check_invariants(&w, "d2");
}

#[test]
fn voting_shows_responses_in_a_deterministic_shuffled_order() {
    let mut orders = std::collections::BTreeSet::new();
    for i in 0..8 {
        let mut w = World::new();
        let m = format!("order-{i}");
        w.request(
            &m,
            MatchCreate {
                template: "mega_4v4".into(),
                total_rounds: 1,
                humans: players(4),
                ..Default::default()
            },
        )
        .expect("create");
        w.play(&m, &mut diligent_robots(), &first_other);
        let h = &w.histories[&m];
        let shown: Vec<_> = h.rounds[0].responses.iter().map(|r| r.identity).collect();
        let Some(MatchEventData::VotingStarted(v)) = w
            .events_of(&m)
            .iter()
            .map(|e| &e.data)
            .find(|d| matches!(d, MatchEventData::VotingStarted(_)))
            .cloned()
        else {
            panic!("no voting");
        };
        assert_eq!(
            shown,
            v.responses.iter().map(|r| r.identity).collect::<Vec<_>>()
        );
        orders.insert(format!("{shown:?}"));
        assert!(w.matches[&m].is_completed());
    }
    assert!(
        orders.len() > 1,
        "presentation order should vary between matches"
    );
}
