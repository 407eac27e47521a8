//! Random request sequences: whatever players do, the invariants hold and every match
//! that started finishes once deadlines fire.

use proptest::prelude::*;
use schemas::{
    Identity, MatchCreate, MatchJoin, MatchRequest, MatchRequestData, PlayerRef, ResponseSubmit,
    VoteSubmit,
};

use super::harness::{check_invariants, diligent_answer, RobotScript, World};
use crate::templates::TEMPLATES;
use crate::{MatchInput, MatchStateExt, RejectionCode};

#[derive(Debug, Clone)]
enum Op {
    Create {
        m: usize,
        template: usize,
        rounds: u32,
        humans: u32,
    },
    Join {
        m: usize,
        p: usize,
    },
    Respond {
        m: usize,
        p: usize,
        round_delta: i8,
        long: bool,
    },
    Vote {
        m: usize,
        p: usize,
        target: usize,
        round_delta: i8,
    },
    Robots {
        mode: u8,
    },
    Tick,
    Duplicate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..3usize, 0..TEMPLATES.len(), 0..5u32, 0..5u32).prop_map(|(m, template, rounds, humans)| Op::Create { m, template, rounds, humans }),
        2 => (0..3usize, 0..6usize).prop_map(|(m, p)| Op::Join { m, p }),
        4 => (0..3usize, 0..6usize, -1..2i8, proptest::bool::weighted(0.1)).prop_map(|(m, p, round_delta, long)| Op::Respond { m, p, round_delta, long }),
        4 => (0..3usize, 0..6usize, 0..9usize, -1..2i8).prop_map(|(m, p, target, round_delta)| Op::Vote { m, p, target, round_delta }),
        3 => (0..3u8).prop_map(|mode| Op::Robots { mode }),
        1 => Just(Op::Tick),
        1 => Just(Op::Duplicate),
    ]
}

fn round_of(w: &World, m: &str, delta: i8) -> u32 {
    let r = w.matches.get(m).map_or(1, |s| s.round) as i64 + i64::from(delta);
    r.max(0) as u32
}

fn robots(mode: u8) -> RobotScript {
    Box::new(move |c| match mode {
        0 => Some(diligent_answer(c)),
        1 => None,
        _ => {
            let (robot_id, identity, round, kind) = match &c.data {
                schemas::RobotCommandData::GenerateResponse(g) => (
                    g.robot_id.clone(),
                    g.identity,
                    g.round,
                    schemas::CommandKind::Response,
                ),
                schemas::RobotCommandData::GenerateVote(g) => (
                    g.robot_id.clone(),
                    g.identity,
                    g.round,
                    schemas::CommandKind::Vote,
                ),
            };
            Some(schemas::RobotResponseData::Failed(
                schemas::ResponseFailed {
                    command_id: c.event_id.clone(),
                    robot_id,
                    identity: identity.to_string(),
                    round,
                    kind,
                    reason: "x".into(),
                },
            ))
        }
    })
}

fn run(ops: Vec<Op>) {
    let mut w = World::new();
    let mut last: Option<MatchRequest> = None;
    for op in ops {
        let data: Option<(String, MatchRequestData)> = match op {
            Op::Create {
                m,
                template,
                rounds,
                humans,
            } => {
                let t = &TEMPLATES[template];
                let humans = (0..humans.min(t.humans))
                    .map(|p| PlayerRef {
                        player_id: format!("p{p}"),
                        name: format!("P{p}"),
                    })
                    .collect();
                Some((
                    format!("m{m}"),
                    MatchCreate {
                        template: t.name.into(),
                        total_rounds: rounds,
                        humans,
                        ..Default::default()
                    }
                    .into(),
                ))
            }
            Op::Join { m, p } => Some((
                format!("m{m}"),
                MatchJoin {
                    player_id: format!("p{p}"),
                    name: "J".into(),
                }
                .into(),
            )),
            Op::Respond {
                m,
                p,
                round_delta,
                long,
            } => {
                let m = format!("m{m}");
                let round = round_of(&w, &m, round_delta);
                let text = if long {
                    "x".repeat(2001)
                } else {
                    format!("answer {p}")
                };
                Some((
                    m,
                    ResponseSubmit {
                        player_id: format!("p{p}"),
                        round,
                        text,
                    }
                    .into(),
                ))
            }
            Op::Vote {
                m,
                p,
                target,
                round_delta,
            } => {
                let m = format!("m{m}");
                let round = round_of(&w, &m, round_delta);
                let voted_for =
                    Identity::from_index(target).map_or_else(|| "Z".to_owned(), |i| i.to_string());
                Some((
                    m,
                    VoteSubmit {
                        player_id: format!("p{p}"),
                        round,
                        voted_for,
                    }
                    .into(),
                ))
            }
            Op::Robots { mode } => {
                w.run_robots(&mut robots(mode));
                None
            }
            Op::Tick => {
                w.fire_next_deadline();
                None
            }
            Op::Duplicate => {
                if let Some(env) = last.clone() {
                    let before = w.matches.get(&env.match_id).cloned();
                    let out = w.send(MatchInput::Request(env.clone()));
                    // A duplicate never changes anything (unless the first was rejected).
                    if before.as_ref().is_some_and(|s| s.has_seen(&env.event_id)) {
                        assert_eq!(out, Ok(vec![]));
                    }
                }
                None
            }
        };
        if let Some((m, data)) = data {
            let env = w.request_envelope(&m, data);
            last = Some(env.clone());
            if let Err(r) = w.send(MatchInput::Request(env)) {
                assert_ne!(r.code, RejectionCode::InvalidAssignment);
            }
        }
    }
    // Finish: seat everyone, then only robots and deadlines act.
    let ids: Vec<String> = w.matches.keys().cloned().collect();
    for m in &ids {
        for p in 0..8 {
            let _ = w.request(
                m,
                MatchJoin {
                    player_id: format!("late{p}"),
                    name: "L".into(),
                },
            );
        }
    }
    let mut diligent = robots(0);
    for _ in 0..500 {
        w.run_robots(&mut diligent);
        if !w.fire_next_deadline() {
            break;
        }
    }
    for m in &ids {
        assert!(
            w.matches[m].is_completed(),
            "{m} did not complete: {:?}",
            w.matches[m].status
        );
        check_invariants(&w, m);
    }
    assert_eq!(w.pool.busy_count(), 0, "robots released after every match");
    assert!(w.pool.queue.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_request_sequences_keep_the_game_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
