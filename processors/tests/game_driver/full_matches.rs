//! Full matches for every template, from creation to reveal, with robots answering.

use std::collections::BTreeMap;

use processors::game::orchestration::DEFAULT_PERSONALITIES;
use processors::game::templates::{template as template_of, TEMPLATES};
use processors::streams::topics;
use schemas::{MatchCreate, MatchStats, PlayerRef, ResponseSource, SeatKind};

use crate::count;
use crate::support::{assert_no_robot_in_two_seats, settings, Game};

fn full_match(template: &str, sled: bool) {
    let mut g = if sled {
        Game::sled(settings())
    } else {
        Game::new(settings())
    };
    let m = format!("full-{template}");
    g.create_and_join(&m, template, 3);
    g.play(&[&m]);
    let h = g.assert_completed(&m);
    assert_eq!(h.template, template);
    let t = template_of(template).expect("template");
    let types = g.event_types(&m);
    assert_eq!(count(&types, "player.joined"), t.humans as usize);
    assert_eq!(count(&types, "round.robots_needed"), 3);
    assert_eq!(count(&types, "round.started"), 3);
    assert_eq!(count(&types, "round.completed"), 3);
    assert_eq!(
        count(&types, "response.timed_out") + count(&types, "vote.timed_out"),
        0
    );
    for r in &h.rounds {
        assert_eq!(r.robots.len(), t.robots as usize);
        assert_eq!(r.responses.len(), t.seats());
        assert_eq!(r.votes.len(), t.seats());
        let robot_texts = r
            .responses
            .iter()
            .filter(|x| x.source == ResponseSource::Robot)
            .count();
        assert_eq!(
            robot_texts, t.robots as usize,
            "robots answered with the offline engine"
        );
        for a in &r.robots {
            assert!(
                DEFAULT_PERSONALITIES.contains(&a.personality.as_str()),
                "{}",
                a.personality
            );
        }
    }
    let humans: Vec<_> = h
        .seats
        .iter()
        .filter(|s| s.kind == SeatKind::Human)
        .collect();
    assert_eq!(humans.len(), t.humans as usize);
    for (i, s) in humans.iter().enumerate() {
        assert!(
            s.player_id.as_deref().is_some_and(|p| p.starts_with(&m)),
            "{i}: {s:?}"
        );
    }
    assert!(g.dlq().is_empty(), "no DLQ records: {:?}", g.dlq());
    assert_no_robot_in_two_seats(&g.events());
}

#[test]
fn classic_1v3_plays_from_creation_to_reveal_with_robots_answering() {
    full_match("classic_1v3", false);
}

#[test]
fn duel_2v1_plays_from_creation_to_reveal_with_robots_answering() {
    full_match("duel_2v1", false);
}

#[test]
fn duo_2v2_plays_from_creation_to_reveal_with_robots_answering() {
    full_match("duo_2v2", false);
}

#[test]
fn trio_3v3_plays_from_creation_to_reveal_on_the_sled_store() {
    full_match("trio_3v3", true);
}

#[test]
fn solo_1v5_plays_from_creation_to_reveal_with_robots_answering() {
    full_match("solo_1v5", false);
}

#[test]
fn mega_4v4_plays_from_creation_to_reveal_on_the_sled_store() {
    full_match("mega_4v4", true);
}

#[test]
fn every_template_at_once_completes_and_feeds_the_stats_windows() {
    let mut g = Game::new(settings());
    let ids: Vec<String> = TEMPLATES
        .iter()
        .map(|t| format!("all-{}", t.name))
        .collect();
    for (id, t) in ids.iter().zip(TEMPLATES.iter()) {
        g.create_seated(id, t.name, 2);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    g.play(&refs);
    for id in &ids {
        g.assert_completed(id);
    }
    assert_no_robot_in_two_seats(&g.events());
    // The stats view counts every completed match once (latest document per window).
    let mut latest: BTreeMap<String, MatchStats> = BTreeMap::new();
    for r in g.driver.peek_output(topics::MATCH_STATS) {
        let doc: MatchStats =
            serde_json::from_slice(r.value.as_deref().expect("stats")).expect("stats");
        latest.insert(r.key_str(), doc);
    }
    assert_eq!(
        latest.values().map(|s| s.matches_completed).sum::<u64>(),
        ids.len() as u64
    );
    assert_eq!(
        latest.values().map(|s| s.rounds_completed).sum::<u64>(),
        2 * ids.len() as u64
    );
    assert!(g.dlq().is_empty());
}

#[test]
fn unseated_matches_wait_for_players_and_ask_for_no_robots() {
    let mut g = Game::new(settings());
    g.create("waiting", "trio_3v3", 1);
    g.request(
        "waiting",
        schemas::MatchJoin {
            player_id: "p1".into(),
            name: "One".into(),
        },
    );
    assert_eq!(g.event_types("waiting"), ["match.created", "player.joined"]);
    assert!(g.drop_pending_commands().is_empty());
    let created = MatchCreate {
        template: "trio_3v3".into(),
        total_rounds: 1,
        humans: vec![PlayerRef {
            player_id: "a".into(),
            name: "A".into(),
        }],
        ..Default::default()
    };
    g.request("seated-one", created);
    assert_eq!(
        g.state("seated-one").expect("state").status,
        schemas::MatchStatus::WaitingForPlayers
    );
    for i in 2..=3 {
        g.request(
            "waiting",
            schemas::MatchJoin {
                player_id: format!("p{i}"),
                name: format!("P{i}"),
            },
        );
    }
    assert!(g.event_types("waiting").contains(&"round.robots_needed"));
    g.play(&["waiting"]);
    g.assert_completed("waiting");
    assert!(g.dlq().is_empty());
}

#[test]
fn a_finished_match_keeps_only_a_marker_in_the_history_store_and_later_events_change_nothing() {
    let mut g = Game::sled(settings());
    let m = "finished-once";
    g.create_and_join(m, "duel_2v1", 2);
    g.play(&[m]);
    let h = g.assert_completed(m);
    let published = |g: &Game| {
        g.driver
            .peek_output(topics::MATCH_HISTORY)
            .iter()
            .filter(|r| r.key_str() == m)
            .count()
    };
    assert_eq!(published(&g), 1);
    // No log chunks and no copy of the document: the marker holds the completion time.
    let entries = g
        .driver
        .store_entries(processors::streams::stores::HISTORY)
        .expect("history store");
    let completed_at = h.completed_at.expect("final").to_string().into_bytes();
    assert_eq!(entries, vec![(format!("final/{m}"), completed_at)]);
    // The match's events delivered again (a replayed partition): nothing is re-published
    // and no window counts the match twice.
    let stats_before = g.driver.peek_output(topics::MATCH_STATS).len();
    let again: Vec<Vec<u8>> = g
        .driver
        .peek_output(topics::MATCH_EVENTS)
        .into_iter()
        .filter(|r| r.key_str() == m)
        .filter_map(|r| r.value)
        .collect();
    assert!(again.len() > 10);
    for value in &again {
        g.pipe_raw(topics::MATCH_EVENTS, m, value);
    }
    g.driver.commit().expect("commit");
    assert_eq!(
        published(&g),
        1,
        "the finished history is not published again"
    );
    assert_eq!(
        g.driver.peek_output(topics::MATCH_STATS).len(),
        stats_before
    );
    assert!(g.dlq().is_empty(), "{:?}", g.dlq());
}
