use schemas::{
    Envelope, Identity, MatchCreate, MatchJoin, MatchRequestData, MatchStatus, PlayerRef,
    ResponseSubmit, ResponseSubmitted, RobotResponse, RobotResponseData, RobotsAssigned, SeatKind,
    VoteSubmit,
};

use super::harness::{diligent_robots, first_other, World};
use crate::{decide, MatchInput, RejectionCode as Code};

fn started(template: &str, humans: u32) -> World {
    let mut w = World::new();
    let players = (0..humans)
        .map(|i| PlayerRef {
            player_id: format!("p{i}"),
            name: format!("P{i}"),
        })
        .collect();
    w.request(
        "m",
        MatchCreate {
            template: template.into(),
            total_rounds: 2,
            humans: players,
            ..Default::default()
        },
    )
    .expect("create");
    assert_eq!(w.matches["m"].status, MatchStatus::Responding);
    w
}

fn code_of(w: &mut World, data: impl Into<MatchRequestData>) -> Code {
    match w.request("m", data) {
        Err(r) => r.code,
        Ok(events) => panic!("expected a rejection, got {events:?}"),
    }
}

fn human_identity(w: &World, player: &str) -> Identity {
    w.matches["m"]
        .seats
        .iter()
        .find(|s| s.player_id.as_deref() == Some(player))
        .expect("seat")
        .identity
}

#[test]
fn requests_for_an_unknown_match_are_rejected() {
    let mut w = World::new();
    for data in [
        MatchRequestData::from(MatchJoin {
            player_id: "p".into(),
            name: "P".into(),
        }),
        ResponseSubmit {
            player_id: "p".into(),
            round: 1,
            text: "hi".into(),
        }
        .into(),
        VoteSubmit {
            player_id: "p".into(),
            round: 1,
            voted_for: "A".into(),
        }
        .into(),
    ] {
        assert_eq!(
            w.request("nope", data).map_err(|r| r.code),
            Err(Code::UnknownMatch)
        );
    }
}

#[test]
fn bad_creates_are_rejected() {
    let mut w = World::new();
    let create = |t: &str, rounds: u32, humans: u32| MatchCreate {
        template: t.into(),
        total_rounds: rounds,
        humans: (0..humans)
            .map(|i| PlayerRef {
                player_id: format!("p{i}"),
                name: "N".into(),
            })
            .collect(),
        ..Default::default()
    };
    assert_eq!(
        w.request("m", create("chess_1v1", 5, 0))
            .map_err(|r| r.code),
        Err(Code::UnknownTemplate)
    );
    assert_eq!(
        w.request("m", create("duo_2v2", 0, 0)).map_err(|r| r.code),
        Err(Code::TotalRoundsOutOfRange)
    );
    assert_eq!(
        w.request("m", create("duo_2v2", 21, 0)).map_err(|r| r.code),
        Err(Code::TotalRoundsOutOfRange)
    );
    assert_eq!(
        w.request("m", create("duo_2v2", 5, 3)).map_err(|r| r.code),
        Err(Code::TooManyHumans)
    );
    let blink = MatchCreate {
        voting_window_ms: Some(999),
        ..create("duo_2v2", 5, 0)
    };
    assert_eq!(
        w.request("m", blink).map_err(|r| r.code),
        Err(Code::WindowOutOfRange)
    );
    let forever = MatchCreate {
        response_window_ms: Some(600_001),
        ..create("duo_2v2", 5, 0)
    };
    assert_eq!(
        w.request("m", forever).map_err(|r| r.code),
        Err(Code::WindowOutOfRange)
    );
    assert_eq!(
        w.request("", create("duo_2v2", 5, 1)).map_err(|r| r.code),
        Err(Code::InvalidMatchId)
    );
    let twice = MatchCreate {
        humans: vec![
            PlayerRef {
                player_id: "x".into(),
                name: "X".into()
            };
            2
        ],
        ..create("duo_2v2", 5, 0)
    };
    assert_eq!(
        w.request("m", twice).map_err(|r| r.code),
        Err(Code::InvalidPlayer)
    );
    let blank = MatchCreate {
        humans: vec![PlayerRef {
            player_id: "x".into(),
            name: "  ".into(),
        }],
        ..create("duo_2v2", 5, 0)
    };
    assert_eq!(
        w.request("m", blank).map_err(|r| r.code),
        Err(Code::InvalidPlayer)
    );
    assert!(
        w.matches.is_empty(),
        "no rejected create leaves a match behind"
    );
    w.request("m", create("duo_2v2", 20, 1))
        .expect("20 rounds is fine");
    assert_eq!(
        w.request("m", create("duo_2v2", 5, 1)).map_err(|r| r.code),
        Err(Code::MatchAlreadyExists)
    );
}

/// A create's windows are frozen into the match (the config's when absent).
#[test]
fn windows_of_the_create_are_frozen_into_the_match() {
    let mut w = World::new();
    let create = |t: &str| MatchCreate {
        template: t.into(),
        ..Default::default()
    };
    let paced = MatchCreate {
        response_window_ms: Some(30_000),
        voting_window_ms: Some(20_000),
        ..create("duo_2v2")
    };
    w.request("paced", paced).expect("create with windows");
    assert_eq!(
        (
            w.matches["paced"].response_window_ms,
            w.matches["paced"].voting_window_ms
        ),
        (30_000, 20_000)
    );
    w.request("plain", create("duo_2v2")).expect("create");
    let cfg = crate::GameConfig::default();
    assert_eq!(
        (
            w.matches["plain"].response_window_ms,
            w.matches["plain"].voting_window_ms
        ),
        (cfg.response_window_ms, cfg.voting_window_ms)
    );
}

#[test]
fn joining_a_full_match_is_rejected() {
    let mut w = started("duel_2v1", 2);
    assert_eq!(
        code_of(
            &mut w,
            MatchJoin {
                player_id: "late".into(),
                name: "Late".into()
            }
        ),
        Code::MatchFull
    );
}

#[test]
fn a_vote_for_oneself_is_rejected() {
    let mut w = started("duel_2v1", 2);
    w.humans_act("m", &first_other);
    w.run_robots(&mut diligent_robots());
    assert_eq!(w.matches["m"].status, MatchStatus::Voting);
    let me = human_identity(&w, "p0");
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 1,
                voted_for: me.to_string()
            }
        ),
        Code::SelfVote
    );
}

#[test]
fn a_vote_before_voting_opened_is_rejected() {
    let mut w = started("duel_2v1", 2);
    let other = human_identity(&w, "p1");
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 1,
                voted_for: other.to_string()
            }
        ),
        Code::VotingNotOpen
    );
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 2,
                voted_for: other.to_string()
            }
        ),
        Code::VotingNotOpen
    );
}

#[test]
fn invalid_vote_identities_are_rejected() {
    let mut w = started("duel_2v1", 2);
    w.humans_act("m", &first_other);
    w.run_robots(&mut diligent_robots());
    for bad in ["Z", "a", "AB", "", "H"] {
        // "H" is a letter, but not a seat of a 3-seat match.
        assert_eq!(
            code_of(
                &mut w,
                VoteSubmit {
                    player_id: "p0".into(),
                    round: 1,
                    voted_for: bad.into()
                }
            ),
            Code::InvalidIdentity,
            "{bad}"
        );
    }
}

#[test]
fn a_response_for_a_round_that_is_over_is_rejected() {
    let mut w = started("duel_2v1", 2);
    w.humans_act("m", &first_other);
    w.run_robots(&mut diligent_robots());
    // Voting is open: responses for round 1 are closed.
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: "late".into()
            }
        ),
        Code::RoundOver
    );
    w.humans_act("m", &first_other);
    w.run_robots(&mut diligent_robots());
    assert_eq!(w.matches["m"].round, 2);
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: "late".into()
            }
        ),
        Code::RoundOver
    );
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 1,
                voted_for: "A".into()
            }
        ),
        Code::RoundOver
    );
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 3,
                text: "early".into()
            }
        ),
        Code::RoundNotStarted
    );
}

#[test]
fn lateness_is_judged_by_the_request_timestamp_not_by_when_the_timeouts_ran() {
    let mut w = started("duel_2v1", 2);
    let deadline = w.matches["m"]
        .current
        .as_ref()
        .expect("round")
        .response_deadline;
    // The deadline has passed but its timeouts have not run (a worker catching up):
    // an answer stamped at the deadline is in time, one stamped a millisecond later is
    // not, and the phase is still open for the first.
    w.now = deadline - 10; // request_envelope stamps now + 10
    let on_time = w.request(
        "m",
        ResponseSubmit {
            player_id: "p0".into(),
            round: 1,
            text: "just in time".into(),
        },
    );
    assert!(
        on_time.is_ok_and(|e| !e.is_empty()),
        "stamped at the deadline"
    );
    w.now = deadline - 9;
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p1".into(),
                round: 1,
                text: "one millisecond late".into()
            }
        ),
        Code::RoundOver
    );
    assert_eq!(w.matches["m"].status, MatchStatus::Responding);
    // Votes likewise, against the voting deadline.
    assert!(w.fire_next_deadline());
    w.run_robots(&mut diligent_robots());
    let voting = w.matches["m"]
        .current
        .as_ref()
        .expect("round")
        .voting_deadline;
    let voting = voting.expect("voting is open");
    assert_eq!(w.matches["m"].status, MatchStatus::Voting);
    w.now = voting - 9;
    let target = first_other(&w.matches["m"], human_identity(&w, "p0"));
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 1,
                voted_for: target.as_str().into()
            }
        ),
        Code::RoundOver
    );
}

#[test]
fn responses_from_outsiders_are_rejected() {
    let mut w = started("duel_2v1", 2);
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "stranger".into(),
                round: 1,
                text: "hi".into()
            }
        ),
        Code::NotAParticipant
    );
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "stranger".into(),
                round: 1,
                voted_for: "A".into()
            }
        ),
        Code::NotAParticipant
    );
    // A robot answering for a human seat, or for a seat it does not voice.
    let state = w.matches["m"].clone();
    let human = state
        .seats
        .iter()
        .find(|s| s.kind == SeatKind::Human)
        .expect("human")
        .identity;
    let robot_seat = state
        .seats
        .iter()
        .find(|s| s.kind == SeatKind::Robot)
        .expect("robot")
        .identity;
    let answer = |identity: Identity, robot_id: &str| -> MatchInput {
        let env: RobotResponse = Envelope::new(
            format!("rr-{identity}-{robot_id}"),
            "m",
            1,
            "c",
            "cmd",
            RobotResponseData::ResponseSubmitted(ResponseSubmitted {
                command_id: "cmd".into(),
                robot_id: robot_id.into(),
                identity: identity.to_string(),
                round: 1,
                text: "beep".into(),
                model: "x".into(),
                latency_ms: 1,
                tokens: 1,
            }),
        );
        env.into()
    };
    let err = decide(Some(&state), &answer(human, "robot-x"), &w.cfg).expect_err("human seat");
    assert_eq!(err.code, Code::NotAParticipant);
    let err =
        decide(Some(&state), &answer(robot_seat, "robot-impostor"), &w.cfg).expect_err("impostor");
    assert_eq!(err.code, Code::RobotNotAssigned);
}

#[test]
fn over_long_and_empty_responses_are_rejected() {
    let mut w = started("duel_2v1", 2);
    let long = "é".repeat(2001);
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: long
            }
        ),
        Code::TextTooLong
    );
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: " \n".into()
            }
        ),
        Code::EmptyText
    );
    // Exactly at the cap (in characters, not bytes) is fine.
    w.request(
        "m",
        ResponseSubmit {
            player_id: "p0".into(),
            round: 1,
            text: "é".repeat(2000),
        },
    )
    .expect("2000 chars");
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: "changed my mind".into()
            }
        ),
        Code::AlreadyResponded
    );
}

#[test]
fn a_second_different_vote_is_rejected() {
    let mut w = started("duo_2v2", 2);
    w.humans_act("m", &first_other);
    w.run_robots(&mut diligent_robots());
    let seats: Vec<Identity> = w.matches["m"].seats.iter().map(|s| s.identity).collect();
    let me = human_identity(&w, "p0");
    let others: Vec<Identity> = seats.into_iter().filter(|i| *i != me).collect();
    w.request(
        "m",
        VoteSubmit {
            player_id: "p0".into(),
            round: 1,
            voted_for: others[0].to_string(),
        },
    )
    .expect("vote");
    assert_eq!(
        code_of(
            &mut w,
            VoteSubmit {
                player_id: "p0".into(),
                round: 1,
                voted_for: others[1].to_string()
            }
        ),
        Code::AlreadyVoted
    );
}

#[test]
fn invalid_assignments_and_completed_matches_are_rejected() {
    let mut w = World::new();
    w.request(
        "m",
        MatchCreate {
            template: "duel_2v1".into(),
            total_rounds: 1,
            humans: vec![],
            ..Default::default()
        },
    )
    .expect("create");
    let state = w.matches["m"].clone();
    let robot_seat = state
        .seats
        .iter()
        .find(|s| s.kind == SeatKind::Robot)
        .expect("robot")
        .identity;
    let assigned = |round: u32, robots: Vec<schemas::RobotAssignment>| -> MatchInput {
        let env: schemas::OrchestrationEvent = Envelope::new(
            format!("oe-{round}-{}", robots.len()),
            "m",
            5,
            "c",
            "x",
            RobotsAssigned { round, robots },
        );
        env.into()
    };
    // Not waiting for robots yet (players missing): an assignment is stale → no-op.
    assert_eq!(
        decide(Some(&state), &assigned(0, vec![]), &w.cfg),
        Ok(vec![])
    );
    assert_eq!(
        decide(Some(&state), &assigned(1, vec![]), &w.cfg).map_err(|r| r.code),
        Err(Code::InvalidAssignment)
    );
    for p in ["p0", "p1"] {
        w.request(
            "m",
            MatchJoin {
                player_id: p.into(),
                name: p.into(),
            },
        )
        .expect("join");
    }
    w.play("m", &mut diligent_robots(), &first_other);
    assert_eq!(w.matches["m"].status, MatchStatus::Completed);
    assert_eq!(
        code_of(
            &mut w,
            ResponseSubmit {
                player_id: "p0".into(),
                round: 1,
                text: "x".into()
            }
        ),
        Code::MatchOver
    );
    assert_eq!(
        code_of(
            &mut w,
            MatchJoin {
                player_id: "p9".into(),
                name: "x".into()
            }
        ),
        Code::MatchOver
    );
    let wrong = vec![schemas::RobotAssignment {
        robot_id: "r".into(),
        identity: robot_seat,
        personality: "p".into(),
    }];
    assert_eq!(
        decide(Some(&w.matches["m"]), &assigned(1, wrong), &w.cfg),
        Ok(vec![])
    );
}
