//! Issue 15 item 4: with think times, the orchestration issues a robot's answer command
//! after its think time, carrying the answers recorded by then; replay gives the same
//! commands.

use processors::robots::Personalities;
use schemas::{RobotCommand, RobotCommandData};

use crate::support::{player, settings, Game};

fn thinking_settings() -> processors::streams::GameSettings {
    let mut think = Personalities::builtin().think_times_ms(1.0, 2_000);
    for range in think.values_mut() {
        *range = (2_000, 2_000);
    }
    let s = settings().with_think_times(think);
    assert_eq!(s.pool_tick, std::time::Duration::from_millis(250));
    s
}

fn run() -> (Vec<RobotCommand>, Game) {
    let mut g = Game::new(thinking_settings());
    g.create_and_join("room", "classic_1v3", 1);
    assert!(
        g.drop_pending_commands().is_empty(),
        "answer commands wait for the think time"
    );
    g.respond("room", &player("room", 0), 1, "idk, pizza lol");
    g.advance(3_000);
    let commands = g.drop_pending_commands();
    (commands, g)
}

#[test]
fn answer_commands_carry_the_human_answer_and_replay_identically() {
    let (commands, g) = run();
    assert_eq!(commands.len(), 3, "one per robot seat");
    for c in &commands {
        let RobotCommandData::GenerateResponse(r) = &c.data else {
            panic!("answer command")
        };
        let others = r.context.other_responses_so_far.as_ref().expect("held");
        assert_eq!(others.len(), 1, "{others:?}");
        assert_eq!(others[0].text, "idk, pizza lol");
        assert_ne!(others[0].identity, r.identity);
    }
    drop(g);
    let (again, _) = run();
    assert_eq!(again, commands);
}

#[test]
fn a_match_with_think_times_plays_to_the_end() {
    let mut g = Game::new(thinking_settings());
    g.create_and_join("think", "classic_1v3", 2);
    g.play(&["think"]);
    g.assert_completed("think");
}

#[test]
fn answer_commands_carry_the_earlier_rounds_as_voters_saw_them() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<RobotCommand>>> = Arc::default();
    let mut g = Game::new(settings());
    let log = seen.clone();
    g.robots = Box::new(move |cmd| {
        log.lock().unwrap().push(cmd.clone());
        true
    });
    g.create_and_join("past", "classic_1v3", 5);
    g.play(&["past"]);
    g.assert_completed("past");
    let voting: std::collections::BTreeMap<u32, schemas::VotingStarted> = g
        .events_of("past")
        .into_iter()
        .filter_map(|e| match e.data {
            schemas::MatchEventData::VotingStarted(v) => Some((v.round, v)),
            _ => None,
        })
        .collect();
    assert_eq!(voting.len(), 5);
    let seen = seen.lock().unwrap();
    for cmd in seen.iter() {
        let RobotCommandData::GenerateResponse(r) = &cmd.data else {
            continue;
        };
        // The latest three rounds before this one, oldest first, each with its prompt
        // and its answers in the order voters saw them.
        let first = r.round.saturating_sub(3).max(1);
        let rounds: Vec<u32> = r.context.earlier_rounds.iter().map(|e| e.round).collect();
        assert_eq!(
            rounds,
            (first..r.round).collect::<Vec<_>>(),
            "round {}",
            r.round
        );
        for e in &r.context.earlier_rounds {
            let shown = voting.get(&e.round).expect("the round's voting started");
            assert_eq!(e.prompt, shown.prompt, "round {}", e.round);
            assert_eq!(
                e.responses, shown.responses,
                "round {} as voters saw it",
                e.round
            );
        }
    }
    assert!(
        seen.iter().any(|c| matches!(&c.data,
            RobotCommandData::GenerateResponse(r) if r.round == 5)),
        "the last round's commands were seen"
    );
}
