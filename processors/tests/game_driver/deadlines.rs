//! Deadlines: silent humans, silent robots, missing votes, failing robots.

use std::collections::BTreeSet;

use processors::game::MatchStateExt;
use processors::streams::{stores, topics};
use schemas::{
    CommandKind, Identity, MatchEvent, ResponseFailed, ResponseSource, RobotCommandData,
    RobotResponseData, VoteSource,
};

use crate::support::{player, seat_of, settings, Game, Phase};
use crate::{count, robot_seats};

#[test]
fn a_human_who_never_answers_times_out_and_the_match_still_completes() {
    let mut g = Game::new(settings());
    g.create_seated("silent-human", "classic_1v3", 2);
    let p = player("silent-human", 0);
    g.humans.silence(&p, 1, Phase::Respond);
    g.play(&["silent-human"]);
    let h = g.assert_completed("silent-human");
    let me = h
        .seats
        .iter()
        .find(|s| s.player_id.as_deref() == Some(p.as_str()))
        .expect("seat")
        .identity;
    assert_eq!(h.rounds[0].timed_out_responses, vec![me]);
    assert_eq!(h.rounds[0].responses.len(), 3);
    assert!(h.rounds[0].responses.iter().all(|r| r.identity != me));
    assert!(h.rounds[1].timed_out_responses.is_empty());
    // The human still voted after timing out on the response.
    assert!(h.rounds[0]
        .votes
        .iter()
        .any(|v| v.voter == me && v.source == VoteSource::Human));
    let types = g.event_types("silent-human");
    assert_eq!(count(&types, "response.timed_out"), 1);
    assert_eq!(count(&types, "vote.timed_out"), 0);
    // The timeout carries the end of the phase: round start + response window + grace.
    let window = (g.settings.game.response_window_ms + g.settings.game.deadline_grace_ms) as i64;
    let timed_out: Vec<MatchEvent> = g
        .events_of("silent-human")
        .into_iter()
        .filter(|e| e.event_type() == "response.timed_out")
        .collect();
    assert_eq!(timed_out[0].timestamp, h.rounds[0].started_at + window);
    assert!(g.dlq().is_empty());
}

#[test]
fn a_robot_that_never_answers_times_out_and_its_late_answer_is_dead_lettered() {
    let mut g = Game::new(settings());
    g.create_seated("silent-robot", "classic_1v3", 2);
    let state = g.state("silent-robot").expect("state");
    let silent = robot_seats(&state)[1];
    g.robots = Box::new(
        move |cmd| !matches!(&cmd.data, RobotCommandData::GenerateResponse(r) if r.round == 1 && r.identity == silent),
    );
    g.play(&["silent-robot"]);
    let h = g.assert_completed("silent-robot");
    assert_eq!(h.rounds[0].timed_out_responses, vec![silent]);
    assert!(h.rounds[0].responses.iter().all(|r| r.identity != silent));
    assert!(h.rounds[1].timed_out_responses.is_empty());
    // The silent robot still voted (its vote command was answered).
    assert!(h.rounds[0]
        .votes
        .iter()
        .any(|v| v.voter == silent && v.source == VoteSource::Robot));
    assert!(g.dlq().is_empty());
    // Its answer arrives after the match is over: a DLQ record with the reason.
    let late = g
        .commands
        .iter()
        .find(|c| matches!(&c.data, RobotCommandData::GenerateResponse(r) if r.round == 1 && r.identity == silent))
        .cloned()
        .expect("the dropped command");
    let data = g.offline_answer(&late);
    g.robot_answer("silent-robot", &late.event_id, data);
    let dlq = g.dlq();
    assert_eq!(dlq.len(), 1);
    assert!(
        dlq[0].header("error").unwrap().starts_with("match_over"),
        "{:?}",
        dlq[0].headers
    );
    assert_eq!(dlq[0].header("source.topic"), Some(topics::ROBOT_RESPONSES));
}

#[test]
fn a_vote_that_never_comes_times_out_and_scores_count_only_recorded_votes() {
    let mut g = Game::new(settings());
    g.create_seated("silent-vote", "duo_2v2", 2);
    let state = g.state("silent-vote").expect("state");
    let silent_robot = robot_seats(&state)[0];
    let p0 = player("silent-vote", 0);
    let human = seat_of(&state, &p0);
    g.humans.silence(&p0, 1, Phase::Vote);
    g.robots = Box::new(
        move |cmd| !matches!(&cmd.data, RobotCommandData::GenerateVote(v) if v.round == 1 && v.identity == silent_robot),
    );
    g.play(&["silent-vote"]);
    let h = g.assert_completed("silent-vote");
    let r1 = &h.rounds[0];
    let timed_out: BTreeSet<Identity> = r1.timed_out_votes.iter().copied().collect();
    assert_eq!(timed_out, BTreeSet::from([human, silent_robot]));
    assert_eq!(r1.votes.len(), 2);
    assert!(r1
        .votes
        .iter()
        .all(|v| v.voter != human && v.voter != silent_robot));
    // Scores: the rule applied to the two recorded votes only (checked in assert_completed),
    // and a timed-out voter earns nothing for voting.
    assert_eq!(
        r1.points[&human], 0,
        "the silent human earned no points: {:?}",
        r1.points
    );
    let types = g.event_types("silent-vote");
    assert_eq!(count(&types, "vote.timed_out"), 2);
    assert_eq!(count(&types, "response.timed_out"), 0);
    assert!(g.dlq().is_empty());
}

#[test]
fn a_match_where_nobody_acts_completes_on_deadlines_alone() {
    let mut g = Game::new(settings());
    g.create_seated("ghost-town", "classic_1v3", 2);
    let p = player("ghost-town", 0);
    for round in 1..=2 {
        g.humans.silence(&p, round, Phase::Respond);
        g.humans.silence(&p, round, Phase::Vote);
    }
    g.robots = Box::new(|_| false);
    g.play(&["ghost-town"]);
    let h = g.assert_completed("ghost-town");
    for r in &h.rounds {
        assert_eq!(r.timed_out_responses.len(), 4);
        assert_eq!(r.timed_out_votes.len(), 4);
    }
    assert!(h.final_scores.values().all(|s| *s == 0));
    // Two phases per round, each ended by its deadline and the grace after it.
    let rounds = &h.rounds;
    let game = &g.settings.game;
    let window =
        (game.response_window_ms + game.voting_window_ms + 2 * game.deadline_grace_ms) as i64;
    assert!(
        rounds.iter().all(|r| r.duration_ms == Some(window as u64)),
        "{rounds:?}"
    );
}

#[test]
fn a_failed_robot_gets_a_fallback_answer_and_vote() {
    let mut g = Game::new(settings());
    let m = "fallback";
    g.create_seated(m, "classic_1v3", 1);
    let failing = robot_seats(&g.state(m).expect("state"))[2];
    for phase in [CommandKind::Response, CommandKind::Vote] {
        for cmd in g.drop_pending_commands() {
            let (robot_id, identity, round) = match &cmd.data {
                RobotCommandData::GenerateResponse(r) => (r.robot_id.clone(), r.identity, r.round),
                RobotCommandData::GenerateVote(v) => (v.robot_id.clone(), v.identity, v.round),
            };
            let data = if identity == failing {
                RobotResponseData::Failed(ResponseFailed {
                    command_id: cmd.event_id.clone(),
                    robot_id,
                    identity: identity.to_string(),
                    round,
                    kind: phase,
                    reason: "llm timeout".into(),
                })
            } else {
                g.offline_answer(&cmd)
            };
            g.robot_answer(m, &cmd.event_id, data);
        }
        assert_eq!(g.humans_act(m), 1);
    }
    let h = g.assert_completed(m);
    let r = &h.rounds[0];
    let resp = r
        .responses
        .iter()
        .find(|x| x.identity == failing)
        .expect("fallback response");
    assert_eq!(resp.source, ResponseSource::Fallback);
    assert!(!resp.text.is_empty());
    let vote = r
        .votes
        .iter()
        .find(|v| v.voter == failing)
        .expect("fallback vote");
    assert_eq!(vote.source, VoteSource::Fallback);
    assert_ne!(vote.voted_for, failing);
    assert!(g.dlq().is_empty());
}

/// A crash can land a commit's `matches` changelog records without those of the deadline
/// index (each store has a changelog of its own). The restarted task rebuilds the index
/// from the states it restored: the silent human still times out and the match completes.
#[test]
fn a_deadline_the_index_lost_in_a_crash_still_fires_after_a_restart() {
    let mut g = Game::sled(settings());
    g.create_seated("lost-deadline", "classic_1v3", 1);
    let p = player("lost-deadline", 0);
    g.humans.silence(&p, 1, Phase::Respond);
    let before = g.state("lost-deadline").expect("state");
    assert!(before.next_deadline().is_some(), "{before:?}");
    let index = g.driver.store_entries(stores::DEADLINES).expect("index");
    assert!(!index.is_empty());
    for (key, _) in index {
        assert!(g
            .driver
            .store_delete(stores::DEADLINES, &key)
            .expect("delete"));
    }
    g.driver.commit().expect("commit");
    assert!(g
        .driver
        .store_entries(stores::DEADLINES)
        .expect("index")
        .is_empty());

    let mut log = g.events();
    let mut g = g.restart();
    g.driver.commit().expect("commit");
    let index = g.driver.store_entries(stores::DEADLINES).expect("index");
    assert_eq!(index.len(), 1, "one entry: the match's next deadline");
    assert_eq!(index[0].1, br#""lost-deadline""#.to_vec());

    g.play(&["lost-deadline"]);
    log.extend(g.events());
    let h = g.assert_completed_with("lost-deadline", &log);
    assert_eq!(h.rounds[0].timed_out_responses.len(), 1);
    assert!(
        g.driver
            .store_entries(stores::DEADLINES)
            .expect("index")
            .is_empty(),
        "a completed match has no deadline"
    );
}
