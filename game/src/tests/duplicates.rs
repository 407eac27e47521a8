use schemas::{Envelope, MatchCreate, MatchJoin, PlayerRef, ResponseSubmit, RobotResponse};

use super::harness::{check_invariants, diligent_answer, diligent_robots, first_other, World};
use crate::{decide, handle, MatchInput, MatchStateExt, RECENT_INPUTS_CAP};

#[test]
fn the_same_request_twice_has_one_effect() {
    let mut w = World::new();
    let create = w.request_envelope(
        "m",
        MatchCreate {
            template: "duo_2v2".into(),
            total_rounds: 1,
            humans: vec![],
            ..Default::default()
        },
    );
    assert_eq!(w.send(create.clone().into()).expect("create").len(), 1);
    assert_eq!(w.send(create.into()).expect("duplicate create"), vec![]);
    let join = w.request_envelope(
        "m",
        MatchJoin {
            player_id: "a".into(),
            name: "A".into(),
        },
    );
    assert_eq!(w.send(join.clone().into()).expect("join").len(), 1);
    assert_eq!(w.send(join.into()).expect("duplicate join"), vec![]);
    // A join with a new request id by a seated player is a no-op too.
    assert_eq!(
        w.request(
            "m",
            MatchJoin {
                player_id: "a".into(),
                name: "A".into()
            }
        )
        .expect("rejoin"),
        vec![]
    );
    w.request(
        "m",
        MatchJoin {
            player_id: "b".into(),
            name: "B".into(),
        },
    )
    .expect("join b");
    let respond = w.request_envelope(
        "m",
        ResponseSubmit {
            player_id: "a".into(),
            round: 1,
            text: "same".into(),
        },
    );
    let first = w.send(respond.clone().into()).expect("respond");
    assert_eq!(first.len(), 1);
    let before = serde_json::to_vec(&w.matches["m"]).expect("json");
    assert_eq!(w.send(respond.into()).expect("dup"), vec![]);
    // Same content under a new id (client retry with a fresh id): still one effect.
    assert_eq!(
        w.request(
            "m",
            ResponseSubmit {
                player_id: "a".into(),
                round: 1,
                text: "same".into()
            }
        )
        .expect("retry"),
        vec![]
    );
    assert_eq!(serde_json::to_vec(&w.matches["m"]).expect("json"), before);
    w.play("m", &mut diligent_robots(), &first_other);
    check_invariants(&w, "m");
}

#[test]
fn duplicate_robot_answers_and_assignments_are_no_ops() {
    let mut w = World::new();
    w.request(
        "m",
        MatchCreate {
            template: "classic_1v3".into(),
            total_rounds: 1,
            humans: vec![PlayerRef {
                player_id: "h".into(),
                name: "H".into(),
            }],
            ..Default::default()
        },
    )
    .expect("create");
    let cmd = w.commands.front().cloned().expect("a command");
    let answer = diligent_answer(&cmd);
    let a: RobotResponse = Envelope::new(
        "rr-1",
        "m",
        w.now,
        "c",
        cmd.event_id.clone(),
        answer.clone(),
    );
    let b: RobotResponse = Envelope::new("rr-2", "m", w.now, "c", cmd.event_id.clone(), answer);
    assert_eq!(w.send(a.clone().into()).expect("answer").len(), 1);
    assert_eq!(w.send(a.into()).expect("same id"), vec![]);
    assert_eq!(w.send(b.into()).expect("worker retry, new id"), vec![]);
    // Re-delivering the round's assignment does nothing.
    let assigned = w
        .pool_outputs
        .iter()
        .find_map(|o| match o {
            crate::PoolOutput::Event(e) if e.event_type() == "round.robots_assigned" => {
                Some(e.clone())
            }
            _ => None,
        })
        .expect("assignment");
    assert_eq!(
        w.send(MatchInput::Orchestration(assigned))
            .expect("dup assignment"),
        vec![]
    );
}

#[test]
fn seen_ids_stay_bounded() {
    let mut w = World::new();
    w.request(
        "m",
        MatchCreate {
            template: "mega_4v4".into(),
            total_rounds: 20,
            humans: vec![],
            ..Default::default()
        },
    )
    .expect("create");
    for i in 0..4 {
        w.request(
            "m",
            MatchJoin {
                player_id: format!("p{i}"),
                name: "x".into(),
            },
        )
        .expect("join");
    }
    w.play("m", &mut diligent_robots(), &first_other);
    let s = w.matches["m"].clone();
    let s = &s;
    assert!(s.is_completed());
    assert_eq!(s.recent_inputs.len(), RECENT_INPUTS_CAP);
    // The fold of the published log is the state the processor left, bounded ids
    // included (the world's state is `handle_in_place`'s, not a fold).
    let replayed = w.replay("m").expect("replay");
    assert_eq!(&replayed, s);
    let late = w.request_envelope(
        "m",
        ResponseSubmit {
            player_id: "p0".into(),
            round: 20,
            text: "x".into(),
        },
    );
    assert!(decide(Some(s), &late.clone().into(), &w.cfg).is_err());
    assert!(handle(Some(s.clone()), &late.into(), &w.cfg).is_err());
}
