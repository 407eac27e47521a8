use schemas::{
    CommandKind, MatchCreate, MatchEventData, PlayerRef, ResponseFailed, ResponseSource,
    RobotCommandData, RobotResponseData, SeatKind, VoteSource,
};

use super::harness::{
    check_invariants, diligent_answer, diligent_robots, first_other, RobotScript, World,
};
use crate::{due_timeouts, due_timeouts_with_grace, evolve, MatchStateExt};

fn one_human(w: &mut World, m: &str, template: &str, rounds: u32) {
    w.request(
        m,
        MatchCreate {
            template: template.into(),
            total_rounds: rounds,
            humans: vec![PlayerRef {
                player_id: "h".into(),
                name: "H".into(),
            }],
            ..Default::default()
        },
    )
    .expect("create");
}

fn count(w: &World, m: &str, ty: &str) -> usize {
    w.event_types(m).iter().filter(|t| **t == ty).count()
}

#[test]
fn a_human_who_never_answers_times_out_and_the_match_still_completes() {
    let mut w = World::new();
    one_human(&mut w, "m", "classic_1v3", 2);
    let mut robots = diligent_robots();
    for _ in 0..50 {
        if w.matches["m"].is_completed() {
            break;
        }
        w.run_robots(&mut robots);
        w.fire_next_deadline();
    }
    assert!(w.matches["m"].is_completed());
    assert_eq!(count(&w, "m", "response.timed_out"), 2);
    assert_eq!(count(&w, "m", "vote.timed_out"), 2);
    let human = w.matches["m"]
        .seats
        .iter()
        .find(|s| s.kind == SeatKind::Human)
        .expect("human")
        .identity;
    for ev in w.events_of("m") {
        if let MatchEventData::ResponseTimedOut(t) = &ev.data {
            assert_eq!(t.identity, human);
            // Timeout events carry the deadline as timestamp.
            assert_eq!(
                Some(ev.timestamp),
                w.histories["m"].rounds[t.round as usize - 1]
                    .started_at
                    .checked_add(60_000)
            );
        }
    }
    // Robots always name the first candidate; the human's response is missing, so they
    // never name a human and the human never votes: everyone scores 0.
    assert!(w.matches["m"].scores.values().all(|s| *s == 0));
    check_invariants(&w, "m");
}

#[test]
fn robots_that_never_answer_time_out_and_the_match_still_completes() {
    let mut w = World::new();
    one_human(&mut w, "m", "classic_1v3", 2);
    let mut silent: RobotScript = Box::new(|_| None);
    w.play("m", &mut silent, &first_other);
    assert!(w.matches["m"].is_completed());
    assert_eq!(count(&w, "m", "response.timed_out"), 3 * 2);
    assert_eq!(count(&w, "m", "vote.timed_out"), 3 * 2);
    // The human named a robot seat every round: robots get nothing for that (the human
    // named a robot: +1 to that robot), the human gets 0.
    let s = &w.matches["m"];
    let human = s
        .seats
        .iter()
        .find(|x| x.kind == SeatKind::Human)
        .expect("human")
        .identity;
    assert_eq!(s.scores[&human], 0);
    assert_eq!(s.scores.values().sum::<u32>(), 2);
    check_invariants(&w, "m");
}

#[test]
fn votes_that_never_come_time_out_with_correct_scores() {
    let mut w = World::new();
    one_human(&mut w, "m", "duel_2v1", 1);
    w.request(
        "m",
        schemas::MatchJoin {
            player_id: "h2".into(),
            name: "H2".into(),
        },
    )
    .expect("join");
    // Robots answer responses but never vote; humans respond, only one human votes.
    let mut no_votes: RobotScript = Box::new(|c| match c.data {
        RobotCommandData::GenerateResponse(_) => Some(diligent_answer(c)),
        RobotCommandData::GenerateVote(_) => None,
    });
    w.humans_act("m", &first_other);
    w.run_robots(&mut no_votes);
    let state = w.matches["m"].clone();
    assert_eq!(state.status, schemas::MatchStatus::Voting);
    let voter = state
        .seats
        .iter()
        .find(|s| s.player_id.as_deref() == Some("h"))
        .expect("h")
        .clone();
    let other_human = state
        .seats
        .iter()
        .find(|s| s.player_id.as_deref() == Some("h2"))
        .expect("h2")
        .identity;
    w.request(
        "m",
        schemas::VoteSubmit {
            player_id: "h".into(),
            round: 1,
            voted_for: other_human.to_string(),
        },
    )
    .expect("vote");
    w.run_robots(&mut no_votes);
    assert!(w.fire_next_deadline());
    let s = &w.matches["m"];
    assert!(s.is_completed());
    assert_eq!(count(&w, "m", "vote.timed_out"), 2);
    assert_eq!(s.scores[&voter.identity], 1);
    assert_eq!(s.scores.values().sum::<u32>(), 1);
    check_invariants(&w, "m");
}

#[test]
fn failed_robots_get_fallback_responses_and_votes() {
    let mut w = World::new();
    one_human(&mut w, "m", "classic_1v3", 1);
    let mut failing: RobotScript = Box::new(|c| {
        let (robot_id, identity, round, kind, command_id) = match &c.data {
            RobotCommandData::GenerateResponse(g) => (
                &g.robot_id,
                g.identity,
                g.round,
                CommandKind::Response,
                &g.command_id,
            ),
            RobotCommandData::GenerateVote(g) => (
                &g.robot_id,
                g.identity,
                g.round,
                CommandKind::Vote,
                &g.command_id,
            ),
        };
        Some(RobotResponseData::Failed(ResponseFailed {
            command_id: command_id.clone(),
            robot_id: robot_id.clone(),
            identity: identity.to_string(),
            round,
            kind,
            reason: "llm timeout".into(),
        }))
    });
    w.play("m", &mut failing, &first_other);
    assert!(w.matches["m"].is_completed());
    let round = &w.histories["m"].rounds[0];
    assert_eq!(
        round
            .responses
            .iter()
            .filter(|r| r.source == ResponseSource::Fallback)
            .count(),
        3
    );
    assert_eq!(
        round
            .votes
            .iter()
            .filter(|v| v.source == VoteSource::Fallback)
            .count(),
        3
    );
    assert!(round.timed_out_responses.is_empty() && round.timed_out_votes.is_empty());
    check_invariants(&w, "m");
}

#[test]
fn due_timeouts_fire_only_at_the_deadline_and_are_deterministic() {
    let mut w = World::new();
    one_human(&mut w, "m", "classic_1v3", 1);
    let state = w.matches["m"].clone();
    let deadline = state.next_deadline().expect("responding");
    assert!(due_timeouts(&state, deadline - 1).is_empty());
    let a = due_timeouts(&state, deadline);
    let b = due_timeouts(&state, deadline + 5_000);
    assert_eq!(a, b, "same events whenever the punctuator fires");
    assert_eq!(
        a.iter()
            .filter(|e| e.event_type() == "response.timed_out")
            .count(),
        4
    );
    assert_eq!(
        a.last().map(|e| e.event_type()),
        Some("round.voting_started")
    );
    assert!(a.iter().all(|e| e.timestamp == deadline));
    let Some(MatchEventData::VotingStarted(v)) = a.last().map(|e| &e.data) else {
        panic!()
    };
    assert_eq!(v.voting_deadline, deadline + 30_000);
    assert!(v.responses.is_empty());
    // Completed matches and waiting phases have no deadline.
    let mut robots = diligent_robots();
    w.run_robots(&mut robots);
    w.humans_act("m", &first_other);
    w.run_robots(&mut robots);
    w.humans_act("m", &first_other);
    assert!(w.matches["m"].is_completed());
    assert_eq!(w.matches["m"].next_deadline(), None);
    assert!(due_timeouts(&w.matches["m"], i64::MAX).is_empty());
}

#[test]
fn the_phase_a_timeout_opens_gets_its_whole_window_after_the_grace() {
    let mut w = World::new();
    one_human(&mut w, "m", "classic_1v3", 1);
    let state = w.matches["m"].clone();
    let deadline = state.next_deadline().expect("responding");
    let grace = 2_000;
    assert!(due_timeouts_with_grace(&state, deadline + grace - 1, 2_000).is_empty());
    let a = due_timeouts_with_grace(&state, deadline + grace, 2_000);
    let b = due_timeouts_with_grace(&state, deadline + grace + 9_000, 2_000);
    assert_eq!(a, b, "same events whenever the punctuator fires");
    assert!(a.iter().all(|e| e.timestamp == deadline + grace));
    let Some(MatchEventData::VotingStarted(v)) = a.last().map(|e| &e.data) else {
        panic!("the timeouts open voting: {a:?}")
    };
    // Voting opens when the grace ends and lasts its whole window from then; the request
    // deadline it replaces is not moved (answers stamped after it stay late).
    assert_eq!(v.voting_deadline, deadline + grace + 30_000);
    let mut s = state;
    for e in &a {
        s = evolve(Some(s), e);
    }
    assert_eq!(
        s.current.as_ref().map(|c| c.response_deadline),
        Some(deadline)
    );
}
