//! The robot pool: scale up to the max, FIFO queue, scale down after the idle period.

use std::collections::BTreeMap;

use processors::game::PoolConfig;
use processors::streams::{topics, GameSettings};
use schemas::{OrchestrationEventData, RobotPoolState, RobotStatus, SeatKind};

use crate::support::{assert_no_robot_in_two_seats, ids_on_partition, settings, Game};

/// Folds `robot-pool-state` of one shard into its live robots, calling `each` after
/// every record (retired robots are tombstoned or marked retired).
fn fold_pool(
    g: &Game,
    shard: u32,
    mut each: impl FnMut(&BTreeMap<String, RobotPoolState>),
) -> BTreeMap<String, RobotPoolState> {
    let prefix = format!("robot-s{shard}-");
    let mut live = BTreeMap::new();
    for r in g.driver.peek_output(topics::ROBOT_POOL_STATE) {
        let key = r.key_str();
        if !key.starts_with(&prefix) {
            continue;
        }
        let doc = r
            .value
            .map(|v| serde_json::from_slice::<RobotPoolState>(&v).expect("robot"));
        match doc.filter(|d| d.status != RobotStatus::Retired) {
            Some(d) => live.insert(key, d),
            None => live.remove(&key),
        };
        each(&live);
    }
    live
}

fn live_robots(g: &Game, shard: u32) -> BTreeMap<String, RobotPoolState> {
    fold_pool(g, shard, |_| {})
}

#[test]
fn pool_scales_up_to_max_queues_fifo_and_scales_down_after_idle() {
    const SHARD: i32 = 2;
    let pool = PoolConfig {
        min_idle_per_type: 1,
        max_total: 9,
        idle_period_ms: 60_000,
        ..PoolConfig::default()
    };
    let mut g = Game::new(GameSettings {
        pool: pool.clone(),
        ..settings()
    });
    let ids = ids_on_partition("pool", SHARD, 6);
    for id in &ids {
        g.create_seated(id, "classic_1v3", 2);
    }
    // Three 3-robot matches fill the pool to its max; the other three wait in order.
    let assigned = |g: &Game| -> Vec<(String, u32)> {
        g.orchestration_events()
            .into_iter()
            .filter_map(|e| match e.data {
                OrchestrationEventData::RobotsAssigned(a) => Some((e.match_id, a.round)),
                _ => None,
            })
            .collect()
    };
    let first: Vec<String> = assigned(&g).into_iter().map(|(m, _)| m).collect();
    assert_eq!(first, ids[..3].to_vec());
    assert_eq!(
        live_robots(&g, SHARD as u32).len(),
        pool.max_total as usize,
        "scaled up to the max"
    );
    assert!(live_robots(&g, SHARD as u32)
        .values()
        .all(|r| r.status == RobotStatus::Busy));
    for id in &ids[3..] {
        assert_eq!(
            g.state(id).expect("queued").status,
            schemas::MatchStatus::WaitingForRobots
        );
    }
    g.play(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    for id in &ids {
        g.assert_completed(id);
    }
    assert_no_robot_in_two_seats(&g.events());
    // Round 1 was served in request order (FIFO), queued matches included.
    let round1: Vec<String> = assigned(&g)
        .into_iter()
        .filter(|(_, r)| *r == 1)
        .map(|(m, _)| m)
        .collect();
    assert_eq!(round1, ids);
    // Never above the max, at any point of the log.
    fold_pool(&g, SHARD as u32, |live| {
        assert!(live.len() <= pool.max_total as usize)
    });
    let released = g
        .orchestration_events()
        .iter()
        .filter(|e| matches!(e.data, OrchestrationEventData::RobotReleased(_)))
        .count();
    assert_eq!(
        released,
        ids.len() * 2 * 3,
        "every robot is released after every round"
    );
    assert!(live_robots(&g, SHARD as u32)
        .values()
        .all(|r| r.status == RobotStatus::Idle));

    // After the idle period the pool scales back down to the idle minimum.
    let tombstones_before = g
        .driver
        .peek_output(topics::ROBOT_POOL_STATE)
        .iter()
        .filter(|r| r.value.is_none())
        .count();
    g.advance(pool.idle_period_ms + 2 * g.settings.pool_tick.as_millis() as i64);
    let live = live_robots(&g, SHARD as u32);
    assert_eq!(
        live.len(),
        pool.min_idle_per_type as usize * pool.personalities.len(),
        "{live:?}"
    );
    let scaled_down: Vec<_> = g
        .orchestration_events()
        .into_iter()
        .filter_map(|e| match e.data {
            OrchestrationEventData::PoolScaled(s)
                if s.reason == "idle_timeout" && s.shard == SHARD as u32 =>
            {
                Some(s)
            }
            _ => None,
        })
        .collect();
    assert_eq!(scaled_down.len(), pool.max_total as usize - live.len());
    assert!(scaled_down.iter().all(|s| s.to + 1 == s.from));
    let tombstones = g
        .driver
        .peek_output(topics::ROBOT_POOL_STATE)
        .iter()
        .filter(|r| r.value.is_none())
        .count();
    assert!(
        tombstones >= tombstones_before + scaled_down.len(),
        "retired robots are tombstoned"
    );
    assert!(g.dlq().is_empty());
}

/// `robot-pool-state` is a table: between two commits only each changed robot's latest
/// state is forwarded. Playing the same matches with commits after every record and with
/// commits only when the clock moves gives the same final table (robot, status, last
/// match, assignments; timestamps follow the clock, which the two runs move differently)
/// from fewer records.
#[test]
fn robot_pool_state_forwards_the_latest_state_per_robot_once_per_commit() {
    type Row = Option<(RobotStatus, Option<String>, u64)>;
    let table = |g: &Game| -> (usize, BTreeMap<String, Row>) {
        let records = g.driver.peek_output(topics::ROBOT_POOL_STATE);
        let mut latest = BTreeMap::new();
        for r in &records {
            let row = r.value.as_deref().map(|v| {
                let d: RobotPoolState = serde_json::from_slice(v).expect("robot");
                (d.status, d.match_id, d.assignments_total)
            });
            latest.insert(r.key_str(), row);
        }
        (records.len(), latest)
    };
    let ids = ids_on_partition("cache", 1, 3);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut every = Game::new(settings());
    let mut cached = Game::committing_every(settings(), 1_000_000);
    for g in [&mut every, &mut cached] {
        for id in &ids {
            g.create_seated(id, "classic_1v3", 3);
        }
        g.play(&ids);
        g.driver.commit().expect("commit");
    }
    let (n_every, table_every) = table(&every);
    let (n_cached, table_cached) = table(&cached);
    assert!(!table_every.is_empty());
    assert_eq!(table_cached, table_every, "same latest state per robot");
    assert!(
        n_cached < n_every,
        "intermediate states collapse: {n_cached} records vs {n_every}"
    );
}

#[test]
fn a_round_the_pool_cannot_voice_starts_without_robots_at_its_robots_deadline() {
    const SHARD: i32 = 1;
    // Three robots in all: the first match takes every one of them.
    let pool = PoolConfig {
        min_idle_per_type: 1,
        max_total: 3,
        ..PoolConfig::default()
    };
    let mut g = Game::new(GameSettings { pool, ..settings() });
    let window = g.settings.game.robots_window_ms.expect("a robots window") as i64
        + g.settings.game.deadline_grace_ms as i64;
    let ids = ids_on_partition("starved", SHARD, 2);
    let (busy, starved) = (ids[0].as_str(), ids[1].as_str());
    g.create_seated(busy, "classic_1v3", 1);
    g.create_seated(starved, "classic_1v3", 2);
    assert_eq!(
        g.state(starved).expect("state").status,
        schemas::MatchStatus::WaitingForRobots,
        "queued behind the first match"
    );
    // Only the starved match's humans act: the first match holds its robots until its
    // own deadlines pass, long after the starved match stopped waiting.
    g.play(&[starved]);
    let h = g.assert_completed(starved);
    let events = g.events_of(starved);
    let at = |ty: &str, round: u32| {
        events
            .iter()
            .filter(|e| e.event_type() == ty)
            .nth(round as usize - 1)
            .map(|e| e.timestamp)
            .expect("event")
    };
    assert_eq!(
        at("round.started", 1),
        at("round.robots_needed", 1) + window
    );
    assert!(h.rounds[0].robots.is_empty(), "round 1 had no robots");
    let robots: Vec<_> = h
        .seats
        .iter()
        .filter(|s| s.kind == SeatKind::Robot)
        .map(|s| s.identity)
        .collect();
    assert_eq!(robots.len(), 3);
    for seat in &robots {
        assert!(h.rounds[0].timed_out_responses.contains(seat), "{seat:?}");
        assert!(h.rounds[0].timed_out_votes.contains(seat), "{seat:?}");
    }
    // The request left the queue when the round started: no robots were assigned to it
    // later, and the next round got robots as usual.
    let assigned: Vec<u32> = g
        .orchestration_events()
        .into_iter()
        .filter(|e| e.match_id == starved)
        .filter_map(|e| match e.data {
            OrchestrationEventData::RobotsAssigned(a) => Some(a.round),
            _ => None,
        })
        .collect();
    assert_eq!(assigned, vec![2]);
    assert_eq!(h.rounds[1].robots.len(), 3);
    assert!(g.dlq().is_empty(), "{:?}", g.dlq());
    assert_no_robot_in_two_seats(&g.events());
}
