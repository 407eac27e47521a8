//! `orchestra_active_matches` is derived from the stores: after every step — matches
//! created, played with every request delivered twice, a restart from the stores — the
//! sum of the tasks' values equals the matches not completed in the `matches` store.

use processors::game::MatchStateExt;
use processors::metrics::ACTIVE_MATCHES;
use processors::streams::stores;
use schemas::MatchState;

use crate::support::{settings, Game};

/// Matches not completed in the `matches` store, across tasks.
fn active_in_store(g: &Game) -> f64 {
    g.driver
        .store_entries(stores::MATCHES)
        .expect("store")
        .iter()
        .map(|(_, raw)| serde_json::from_slice::<MatchState>(raw).expect("state"))
        .filter(|s| !s.is_completed())
        .count() as f64
}

fn assert_gauge_matches_store(g: &mut Game, when: &str) {
    g.driver.commit().expect("commit");
    assert_eq!(
        g.driver.gauge(ACTIVE_MATCHES).unwrap_or(0.0),
        active_in_store(g),
        "{when}"
    );
}

#[test]
fn active_matches_follow_the_stores_through_redelivery_and_a_restart() {
    let mut g = Game::sled(settings());
    let ids = ["active-a", "active-b", "active-c", "active-d"];
    for (id, template) in ids
        .iter()
        .zip(["classic_1v3", "duo_2v2", "mega_4v4", "duo_2v2"])
    {
        g.create_seated(id, template, 1);
    }
    assert_gauge_matches_store(&mut g, "after creation");
    assert_eq!(g.driver.gauge(ACTIVE_MATCHES), Some(4.0));

    // Every request delivered twice (a producer retry): nothing is counted twice.
    g.echo = true;
    g.play(&ids[..2]);
    g.echo = false;
    assert_gauge_matches_store(&mut g, "after two matches were played with redelivery");
    assert!(g.driver.gauge(ACTIVE_MATCHES) < Some(4.0));

    // Fresh processors count what the stores hold.
    let mut g = g.restart();
    assert_gauge_matches_store(&mut g, "after a restart");

    g.play(&ids);
    assert_gauge_matches_store(&mut g, "after every match completed");
    assert_eq!(g.driver.gauge(ACTIVE_MATCHES), Some(0.0));
}
