use schemas::{
    Envelope, Identity, MatchCompleted, MatchEvent, MatchEventData, OrchestrationEventData,
    PresentedResponse, RobotCommandData, RobotStatus, RobotsNeeded, RoundCompleted, RoundStarted,
    VotingStarted,
};

use crate::orchestration::{Pool, PoolConfig, PoolOutput};

fn ev(id: &str, match_id: &str, ts: i64, data: impl Into<MatchEventData>) -> MatchEvent {
    Envelope::new(id, match_id, ts, format!("corr-{match_id}"), "cause", data)
}

fn needed(match_id: &str, round: u32, seats: usize, exclude: Vec<String>, ts: i64) -> MatchEvent {
    ev(
        &format!("need-{match_id}-{round}"),
        match_id,
        ts,
        RobotsNeeded {
            round,
            count: seats as u32,
            exclude_robots: exclude,
            identities: Identity::ALL[..seats].to_vec(),
            deadline: None,
        },
    )
}

fn completed(match_id: &str, round: u32, ts: i64) -> MatchEvent {
    ev(
        &format!("done-{match_id}-{round}"),
        match_id,
        ts,
        RoundCompleted {
            round,
            points: Default::default(),
            scores: Default::default(),
            duration_ms: 1,
        },
    )
}

/// `(match, round, robot ids)` of every assignment in `out`.
fn assignments(out: &[PoolOutput]) -> Vec<(String, u32, Vec<String>)> {
    out.iter()
        .filter_map(|o| match o {
            PoolOutput::Event(e) => match &e.data {
                OrchestrationEventData::RobotsAssigned(a) => Some((
                    e.match_id.clone(),
                    a.round,
                    a.robots.iter().map(|r| r.robot_id.clone()).collect(),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn check_pool(pool: &Pool, cfg: &PoolConfig) {
    assert!(
        pool.robots.len() as u32 <= cfg.max_total,
        "pool above max: {}",
        pool.robots.len()
    );
    let mut seats = std::collections::BTreeSet::new();
    for r in pool.robots.values() {
        assert!(r.robot_id.starts_with(&format!("robot-s{}-", cfg.shard)));
        if r.status == RobotStatus::Busy {
            let key = (r.match_id.clone(), r.round, r.identity);
            assert!(seats.insert(key), "two robots on one seat");
        }
    }
}

#[test]
fn pool_scales_up_to_max_and_queues_requests_fifo() {
    let cfg = PoolConfig::default();
    let mut pool = Pool::new();
    let mut order = Vec::new();
    let mut reasons = std::collections::BTreeSet::new();
    for i in 0..8 {
        let out = pool.on_match_event(&cfg, &needed(&format!("m{i}"), 1, 3, vec![], 1_000 + i));
        for o in &out {
            if let PoolOutput::Event(e) = o {
                if let OrchestrationEventData::PoolScaled(s) = &e.data {
                    reasons.insert(s.reason.clone());
                }
            }
        }
        order.extend(assignments(&out));
        check_pool(&pool, &cfg);
    }
    assert_eq!(pool.robots.len(), 20, "scaled up to max");
    assert_eq!(
        order.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2", "m3", "m4", "m5"]
    );
    assert_eq!(
        pool.queue
            .iter()
            .map(|q| q.match_id.as_str())
            .collect::<Vec<_>>(),
        ["m6", "m7"]
    );
    assert!(reasons.contains("min_idle"), "{reasons:?}");
    // m0 finishes its round: m6 (head of the queue) gets robots, m7 still waits.
    let out = pool.on_match_event(&cfg, &completed("m0", 1, 2_000));
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, PoolOutput::Event(e) if e.event_type() == "robot.released"))
            .count(),
        3
    );
    let served = assignments(&out);
    assert_eq!(
        served.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["m6"]
    );
    // m0 asks for round 2: it queues behind m7 (no overtaking).
    let out = pool.on_match_event(&cfg, &needed("m0", 2, 3, served[0].2.clone(), 2_001));
    assert!(assignments(&out).is_empty());
    assert_eq!(
        pool.queue
            .iter()
            .map(|q| (q.match_id.as_str(), q.round))
            .collect::<Vec<_>>(),
        [("m7", 1), ("m0", 2)]
    );
    let out = pool.on_match_event(&cfg, &completed("m1", 1, 3_000));
    let served: Vec<_> = assignments(&out).into_iter().map(|a| a.0).collect();
    assert_eq!(served.first().map(String::as_str), Some("m7"));
    check_pool(&pool, &cfg);
    // Everything finishes: the queue drains in order and nothing stays busy.
    for i in 0..8 {
        let m = format!("m{i}");
        pool.on_match_event(
            &cfg,
            &ev(
                &format!("end-{m}"),
                &m,
                4_000,
                MatchCompleted {
                    reveal: vec![],
                    final_scores: Default::default(),
                    rounds_played: 1,
                    duration_ms: 1,
                },
            ),
        );
        check_pool(&pool, &cfg);
    }
    assert!(pool.queue.is_empty());
    assert_eq!(pool.busy_count(), 0);
}

#[test]
fn idle_robots_are_retired_after_the_idle_period_down_to_the_minimum() {
    let cfg = PoolConfig {
        idle_period_ms: 60_000,
        ..PoolConfig::default()
    };
    let mut pool = Pool::new();
    for i in 0..5 {
        pool.on_match_event(&cfg, &needed(&format!("m{i}"), 1, 3, vec![], 1_000));
    }
    for i in 0..5 {
        pool.on_match_event(&cfg, &completed(&format!("m{i}"), 1, 10_000));
    }
    let total = pool.robots.len();
    assert!(total > 6, "pool grew: {total}");
    assert!(pool.take_dirty());
    assert!(
        pool.on_tick(&cfg, 1_000 + 59_999).is_empty(),
        "nothing retires before the idle period"
    );
    assert!(!pool.take_dirty());
    let out = pool.on_tick(&cfg, 10_000 + 60_000);
    let retired = out
        .iter()
        .filter(|o| matches!(o, PoolOutput::Robot(r) if r.status == RobotStatus::Retired))
        .count();
    assert_eq!(retired, total - 6);
    assert!(out.iter().any(|o| matches!(o, PoolOutput::Event(e) if matches!(&e.data, OrchestrationEventData::PoolScaled(s) if s.reason == "idle_timeout") && e.match_id.is_empty())));
    for p in &cfg.personalities {
        assert_eq!(pool.idle_count(p), 2);
    }
    assert!(pool.take_dirty());
    // Ids are never reused after retirement.
    let before: Vec<String> = pool.next_index.values().map(|n| n.to_string()).collect();
    pool.on_match_event(&cfg, &needed("fresh", 1, 5, vec![], 200_000));
    let after: Vec<String> = pool.next_index.values().map(|n| n.to_string()).collect();
    assert_ne!(before, after);
}

#[test]
fn assignments_honour_exclusions_and_never_share_a_robot() {
    let cfg = PoolConfig::for_shard(7);
    let mut pool = Pool::new();
    let out = pool.on_match_event(&cfg, &needed("m", 1, 4, vec![], 1));
    let first = assignments(&out).remove(0).2;
    assert!(first.iter().all(|id| id.starts_with("robot-s7-")));
    pool.on_match_event(&cfg, &completed("m", 1, 2));
    let out = pool.on_match_event(&cfg, &needed("m", 2, 4, first.clone(), 3));
    let second = assignments(&out).remove(0).2;
    assert!(
        second.iter().all(|id| !first.contains(id)),
        "{first:?} vs {second:?}"
    );
    let personalities: std::collections::BTreeSet<_> = pool
        .robots
        .values()
        .filter(|r| r.status == RobotStatus::Busy)
        .map(|r| r.personality.clone())
        .collect();
    assert!(
        personalities.len() >= 2,
        "personalities rotate across seats"
    );
    // Duplicate request: nothing new.
    assert!(pool
        .on_match_event(&cfg, &needed("m", 2, 4, first, 3))
        .is_empty());
    check_pool(&pool, &cfg);
}

#[test]
fn exclusions_are_relaxed_only_when_nothing_could_free_up() {
    let cfg = PoolConfig {
        personalities: vec!["solo".into()],
        min_idle_per_type: 1,
        max_total: 3,
        ..PoolConfig::default()
    };
    let mut pool = Pool::new();
    let first = assignments(&pool.on_match_event(&cfg, &needed("m", 1, 3, vec![], 1)))
        .remove(0)
        .2;
    pool.on_match_event(&cfg, &completed("m", 1, 2));
    let out = pool.on_match_event(&cfg, &needed("m", 2, 3, first.clone(), 3));
    let mut second = assignments(&out).remove(0).2;
    let mut first_sorted = first;
    first_sorted.sort();
    second.sort();
    assert_eq!(
        first_sorted, second,
        "all robots excluded, none busy: reuse rather than starve"
    );
}

#[test]
fn commands_are_built_from_round_events() {
    let cfg = PoolConfig::default();
    let mut pool = Pool::new();
    let out = pool.on_match_event(&cfg, &needed("m", 1, 2, vec![], 1));
    let (_, _, robots) = assignments(&out).remove(0);
    let assigned: Vec<schemas::RobotAssignment> = pool
        .robots
        .values()
        .filter(|r| robots.contains(&r.robot_id))
        .map(|r| schemas::RobotAssignment {
            robot_id: r.robot_id.clone(),
            identity: r.identity.expect("seat"),
            personality: r.personality.clone(),
        })
        .collect();
    let started = ev(
        "start",
        "m",
        5,
        RoundStarted {
            round: 1,
            total_rounds: 4,
            prompt: "Why?".into(),
            prompt_id: "p01".into(),
            participants: Identity::ALL[..3].to_vec(),
            robots: assigned,
            response_deadline: 65,
        },
    );
    pool.take_dirty();
    let out = pool.on_match_event(&cfg, &started);
    assert!(!pool.take_dirty(), "commands do not change the pool");
    let cmds: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            PoolOutput::Command(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(cmds.len(), 2);
    for c in &cmds {
        let RobotCommandData::GenerateResponse(g) = &c.data else {
            panic!("response command")
        };
        assert_eq!(g.command_id, c.event_id);
        assert_eq!(
            (g.prompt.as_str(), g.deadline, g.context.total_rounds),
            ("Why?", 65, 4)
        );
        assert_eq!(c.causation_id, "start");
    }
    let responses: Vec<PresentedResponse> = Identity::ALL[..3]
        .iter()
        .map(|i| PresentedResponse {
            identity: *i,
            text: format!("from {i}"),
        })
        .collect();
    let voting = ev(
        "vote",
        "m",
        70,
        VotingStarted {
            round: 1,
            prompt: "Why?".into(),
            responses,
            voting_deadline: 100,
        },
    );
    let out = pool.on_match_event(&cfg, &voting);
    let votes: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            PoolOutput::Command(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(votes.len(), 2);
    for c in votes {
        let RobotCommandData::GenerateVote(g) = &c.data else {
            panic!("vote command")
        };
        assert_eq!(g.candidates.len(), 2);
        assert!(
            g.candidates.iter().all(|x| x.identity != g.identity),
            "own seat excluded"
        );
    }
    // Replaying the same event yields the same commands (deterministic ids).
    assert_eq!(pool.on_match_event(&cfg, &voting), out);
}

/// Issue 15 item 4: with think times, a robot's answer command is issued after its think
/// time and carries the answers recorded by then; replay yields identical commands.
#[test]
fn held_answer_commands_carry_the_answers_recorded_before_them() {
    let mut cfg = PoolConfig::default();
    for p in &cfg.personalities.clone() {
        cfg.think_time_ms.insert(p.clone(), (1_000, 1_000));
    }
    let human = |id: &str, ts: i64, who: Identity, text: &str| {
        ev(
            id,
            "m",
            ts,
            schemas::ResponseRecorded {
                round: 1,
                identity: who,
                text: text.into(),
                source: schemas::ResponseSource::Human,
                robot_id: None,
                model: None,
                latency_ms: None,
                tokens: None,
            },
        )
    };
    let run = |restore_midway: bool| {
        let mut pool = Pool::new();
        let out = pool.on_match_event(&cfg, &needed("m", 1, 2, vec![], 1));
        let (_, _, robots) = assignments(&out).remove(0);
        let assigned: Vec<schemas::RobotAssignment> = pool
            .robots
            .values()
            .filter(|r| robots.contains(&r.robot_id))
            .map(|r| schemas::RobotAssignment {
                robot_id: r.robot_id.clone(),
                identity: r.identity.expect("seat"),
                personality: r.personality.clone(),
            })
            .collect();
        let started = ev(
            "start",
            "m",
            5,
            RoundStarted {
                round: 1,
                total_rounds: 4,
                prompt: "Why?".into(),
                prompt_id: "p01".into(),
                participants: Identity::ALL[..4].to_vec(),
                robots: assigned,
                response_deadline: 60_005,
            },
        );
        let mut commands = Vec::new();
        let mut take = |out: Vec<PoolOutput>| {
            for o in out {
                if let PoolOutput::Command(c) = o {
                    commands.push(c);
                }
            }
        };
        take(pool.on_match_event(&cfg, &started));
        assert!(pool.take_dirty(), "held commands are pool state");
        assert_eq!(pool.pending_answers.len(), 2);
        take(pool.on_match_event(&cfg, &human("h1", 300, Identity::ALL[2], "idk lol")));
        if restore_midway {
            let json = serde_json::to_string(&pool).expect("pool json");
            pool = serde_json::from_str(&json).expect("pool back");
        }
        // The next event past the due time (1_005) issues them before it is applied.
        take(pool.on_match_event(&cfg, &human("h2", 2_000, Identity::ALL[3], "nope")));
        assert!(pool.pending_answers.is_empty());
        commands
    };
    let commands = run(false);
    assert_eq!(commands.len(), 2);
    for c in &commands {
        let RobotCommandData::GenerateResponse(g) = &c.data else {
            panic!("response command")
        };
        assert_eq!(g.command_id, c.event_id);
        assert_eq!((c.timestamp, c.causation_id.as_str()), (1_005, "start"));
        assert_eq!(
            g.context.other_responses_so_far,
            Some(vec![PresentedResponse {
                identity: Identity::ALL[2],
                text: "idk lol".into(),
            }])
        );
        // Wire name of seed 003.
        let json = c.to_json_vec().expect("json");
        let text = String::from_utf8(json).expect("utf8");
        assert!(text.contains("\"otherResponses\":[{"), "{text}");
    }
    assert_eq!(
        run(true),
        commands,
        "replay (and restore) yields the same commands"
    );
    assert_eq!(run(false), commands);
}

#[test]
fn held_answer_commands_fire_on_the_tick_and_are_dropped_when_too_late() {
    let mut cfg = PoolConfig::default();
    for p in &cfg.personalities.clone() {
        cfg.think_time_ms.insert(p.clone(), (500, 4_000));
    }
    let start = |pool: &mut Pool, m: &str| {
        let out = pool.on_match_event(&cfg, &needed(m, 1, 1, vec![], 1));
        let (_, _, robots) = assignments(&out).remove(0);
        let r = &pool.robots[&robots[0]];
        let a = schemas::RobotAssignment {
            robot_id: r.robot_id.clone(),
            identity: r.identity.expect("seat"),
            personality: r.personality.clone(),
        };
        pool.on_match_event(
            &cfg,
            &ev(
                &format!("start-{m}"),
                m,
                10,
                RoundStarted {
                    round: 1,
                    total_rounds: 1,
                    prompt: "Why?".into(),
                    prompt_id: "p01".into(),
                    participants: Identity::ALL[..2].to_vec(),
                    robots: vec![a],
                    response_deadline: 1_010,
                },
            ),
        )
    };
    let mut pool = Pool::new();
    let out = start(&mut pool, "m");
    assert!(!out.iter().any(|o| matches!(o, PoolOutput::Command(_))));
    let due = pool.pending_answers[0].due;
    // Capped at half the 1 s response window.
    assert!((510..=510).contains(&due), "{due}");
    assert!(pool
        .on_tick(&cfg, due - 1)
        .iter()
        .all(|o| !matches!(o, PoolOutput::Command(_))));
    let fired: Vec<_> = pool
        .on_tick(&cfg, due)
        .into_iter()
        .filter(|o| matches!(o, PoolOutput::Command(_)))
        .collect();
    assert_eq!(fired.len(), 1);
    let PoolOutput::Command(c) = &fired[0] else {
        unreachable!()
    };
    let RobotCommandData::GenerateResponse(g) = &c.data else {
        panic!("response command")
    };
    assert_eq!(g.context.other_responses_so_far, Some(vec![]));

    let mut pool = Pool::new();
    start(&mut pool, "m2");
    assert_eq!(pool.pending_answers.len(), 1);
    pool.on_match_event(&cfg, &completed("m2", 1, 20));
    assert!(
        pool.pending_answers.is_empty(),
        "a completed round drops it"
    );
}
