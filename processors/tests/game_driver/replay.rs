//! Replay and restart: the recorded log folds to byte-identical documents, and a
//! restarted driver finishes the matches in flight from its stores.

use std::collections::BTreeMap;

use processors::game::history::evolve_history;
use processors::game::templates::TEMPLATES;
use processors::game::{evolve, MatchStateExt};
use processors::streams::{stores, topics};
use schemas::{HistoryStatus, MatchEvent, MatchHistory, MatchState};

use crate::support::{
    assert_no_robot_in_two_seats, ids_on_partition, player, settings, Game, Phase,
};

#[test]
fn replaying_match_events_rebuilds_byte_identical_state_and_history() {
    let mut g = Game::sled(settings());
    let mut ids = Vec::new();
    for t in TEMPLATES.iter() {
        let id = format!("replay-{}", t.name);
        g.create_and_join(&id, t.name, 3);
        ids.push(id);
    }
    // Two more on one partition, with timeouts in the mix.
    for (i, id) in ids_on_partition("replay-timeouts", 0, 2)
        .into_iter()
        .enumerate()
    {
        g.create_seated(&id, "duo_2v2", 2);
        g.humans.silence(&player(&id, i as u32), 1, Phase::Respond);
        g.humans.silence(&player(&id, 1), 2, Phase::Vote);
        ids.push(id);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    g.play(&refs);
    for id in &ids {
        g.assert_completed(id);
    }

    // A fresh, driver-free fold of the recorded log.
    let mut states: BTreeMap<String, MatchState> = BTreeMap::new();
    let mut histories: BTreeMap<String, MatchHistory> = BTreeMap::new();
    for rec in g.driver.peek_output(topics::MATCH_EVENTS) {
        let ev: MatchEvent = schemas::decode(rec.value.as_deref().expect("event")).expect("event");
        let s = states.remove(&ev.match_id);
        states.insert(ev.match_id.clone(), evolve(s, &ev));
        let h = histories.remove(&ev.match_id);
        histories.insert(ev.match_id.clone(), evolve_history(h, &ev));
    }
    assert_eq!(states.len(), ids.len());
    for id in &ids {
        let folded_state = serde_json::to_vec(&states[id]).expect("encode");
        let published_state = g
            .last_value(topics::MATCH_STATE, id)
            .flatten()
            .expect("match-state");
        assert!(
            folded_state == published_state,
            "{id}: match-state differs from the fold"
        );
        let stored = g
            .driver
            .store_get(stores::MATCHES, id)
            .expect("store")
            .expect("stored");
        assert!(
            folded_state == stored,
            "{id}: the matches store differs from the fold"
        );
        let folded_history = serde_json::to_vec(&histories[id]).expect("encode");
        let published_history = g
            .last_value(topics::MATCH_HISTORY, id)
            .flatten()
            .expect("match-history");
        assert!(
            folded_history == published_history,
            "{id}: match-history differs from the fold"
        );
        assert_eq!(histories[id].status, HistoryStatus::Completed);
    }
    // Replaying twice gives the same bytes again (evolve reads nothing but the event).
    let again: MatchState = g
        .events_of(&ids[0])
        .iter()
        .fold(None, |s, e| Some(evolve(s, e)))
        .expect("state");
    assert!(
        serde_json::to_vec(&again).expect("encode")
            == serde_json::to_vec(&states[&ids[0]]).expect("encode")
    );
}

#[test]
fn matches_in_flight_finish_after_a_restart_on_the_same_sled_state() {
    let mut g = Game::sled(settings());
    let ids: Vec<String> = ["classic_1v3", "duo_2v2", "mega_4v4"]
        .iter()
        .map(|t| {
            let id = format!("restart-{t}");
            g.create_seated(&id, t, 3);
            id
        })
        .collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Play round 1 and the robots' half of round 2, then restart mid-round.
    for m in &refs {
        for i in 0..4 {
            g.humans.silence(&player(m, i), 2, Phase::Respond);
        }
    }
    loop {
        let mut moved = g.answer_robots();
        for m in &refs {
            moved += g.humans_act(m);
        }
        if moved == 0 {
            break;
        }
        g.advance(250);
    }
    let before: Vec<MatchState> = refs.iter().map(|m| g.state(m).expect("state")).collect();
    assert!(
        before.iter().all(|s| s.round == 2 && !s.is_completed()),
        "{:?}",
        before
            .iter()
            .map(|s| (s.round, s.status))
            .collect::<Vec<_>>()
    );
    let events_before = g.events();
    let mut g = g.restart();
    g.humans = Default::default();
    for (m, s) in refs.iter().zip(&before) {
        assert!(
            g.state(m).as_ref() == Some(s),
            "{m}: the store holds the state"
        );
    }
    g.play(&refs);
    // The histories built across the restart equal the fold of the whole log.
    let mut all = events_before;
    all.extend(g.events());
    for m in &refs {
        let h = g.assert_completed_with(m, &all);
        let folded = all
            .iter()
            .filter(|e| e.match_id == *m)
            .fold(None, |h, e| Some(evolve_history(h, e)))
            .expect("history");
        assert!(
            serde_json::to_vec(&folded).expect("encode") == serde_json::to_vec(&h).expect("encode"),
            "{m}"
        );
    }
    assert_no_robot_in_two_seats(&all);
    assert!(g.dlq().is_empty(), "{:?}", g.dlq());
}
