//! Bad and hostile input: each bad record gets a DLQ record with a reason; duplicates
//! are no-ops; the other matches on the partition carry on.

use processors::streams::topics;
use schemas::{Identity, ResponseSource, ResponseSubmitted, RobotCommandData, RobotResponseData};

use crate::robot_seats;
use crate::support::{ids_on_partition, player, seat_of, settings, Game, T0};

fn request_json(
    match_id: &str,
    event_type: &str,
    version: u32,
    data: serde_json::Value,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "eventId": format!("raw-{event_type}-{version}"),
        "eventType": event_type,
        "schemaVersion": version,
        "matchId": match_id,
        "timestamp": T0,
        "correlationId": "raw",
        "causationId": "raw",
        "data": data,
    }))
    .expect("json")
}

/// The DLQ records a test expects, in the order the bad input is sent:
/// `(what, source topic, error kind, reason code)`.
#[derive(Default)]
struct Expected(Vec<(&'static str, &'static str, &'static str, &'static str)>);

impl Expected {
    /// A record the decoder refuses.
    fn undecodable(&mut self, what: &'static str, topic: &'static str, reason: &'static str) {
        self.0.push((what, topic, "deserialization", reason));
    }

    /// A request the match refuses.
    fn request(&mut self, what: &'static str, reason: &'static str) {
        self.0
            .push((what, topics::MATCH_REQUESTS, "rejected", reason));
    }

    /// A robot answer the match refuses.
    fn robot(&mut self, what: &'static str, reason: &'static str) {
        self.0
            .push((what, topics::ROBOT_RESPONSES, "rejected", reason));
    }
}

#[test]
fn hostile_input_is_dead_lettered_with_a_reason_and_the_partition_carries_on() {
    let mut g = Game::new(settings());
    let ids = ids_on_partition("hostile", 1, 3);
    let (v, b, unknown) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    g.create_and_join(v, "classic_1v3", 2);
    g.create_and_join(b, "classic_1v3", 2);
    g.answer_robots();
    let p = player(v, 0);
    let state = g.state(v).expect("victim");
    let me = seat_of(&state, &p);
    let robots = robot_seats(&state);
    let other = robots[0].to_string();
    let mut ex = Expected::default();

    g.pipe_raw(
        topics::MATCH_REQUESTS,
        v,
        br#"{"eventId":"x","eventType":"match.create","#,
    );
    ex.undecodable("malformed JSON", topics::MATCH_REQUESTS, "malformed_json");
    g.pipe_raw(topics::ROBOT_RESPONSES, v, b"\xff\xfe not json at all");
    ex.undecodable(
        "malformed robot answer",
        topics::ROBOT_RESPONSES,
        "malformed_json",
    );
    g.pipe_raw(
        topics::MATCH_REQUESTS,
        v,
        &request_json(v, "match.explode", 1, serde_json::json!({})),
    );
    ex.undecodable(
        "unknown event type",
        topics::MATCH_REQUESTS,
        "unknown_event_type",
    );
    let v2 = request_json(
        v,
        "response.submit",
        2,
        serde_json::json!({"playerId": p, "round": 1, "text": "hi"}),
    );
    g.pipe_raw(topics::MATCH_REQUESTS, v, &v2);
    ex.undecodable(
        "wrong schema version",
        topics::MATCH_REQUESTS,
        "unsupported_schema_version",
    );
    g.pipe_raw(
        topics::MATCH_REQUESTS,
        v,
        &request_json(v, "vote.submit", 1, serde_json::json!({"round": "one"})),
    );
    ex.undecodable("invalid data", topics::MATCH_REQUESTS, "invalid_data");
    let now = g.now();
    g.driver
        .pipe_record(topics::MATCH_REQUESTS, Some(v.as_bytes()), None, now)
        .expect("tombstone");
    ex.undecodable("tombstone", topics::MATCH_REQUESTS, "record has no value");

    g.vote(v, &p, 1, &other);
    ex.request("vote before voting", "voting_not_open");
    g.respond(v, "intruder", 1, "let me in");
    ex.request("player not in the match", "not_a_participant");
    let cmd = g
        .commands
        .iter()
        .find(|c| c.match_id == v && matches!(c.data, RobotCommandData::GenerateResponse(_)))
        .cloned()
        .expect("a command");
    let robot_id = match &cmd.data {
        RobotCommandData::GenerateResponse(r) => r.robot_id.clone(),
        RobotCommandData::GenerateVote(_) => unreachable!(),
    };
    let answer = |robot_id: &str, identity: &str| {
        RobotResponseData::ResponseSubmitted(ResponseSubmitted {
            command_id: cmd.event_id.clone(),
            robot_id: robot_id.into(),
            identity: identity.into(),
            round: 1,
            text: "beep".into(),
            model: "offline".into(),
            latency_ms: 0,
            tokens: 0,
        })
    };
    g.robot_answer(v, &cmd.event_id, answer(&robot_id, "H"));
    ex.robot("robot seat not in the match", "not_a_participant");
    g.robot_answer(v, &cmd.event_id, answer(&robot_id, me.as_str()));
    ex.robot("robot answering for a human seat", "not_a_participant");
    g.robot_answer(
        v,
        &cmd.event_id,
        answer("robot-s1-impostor-1", robots[1].as_str()),
    );
    ex.robot("robot not assigned", "robot_not_assigned");
    g.respond(v, &p, 1, &"x".repeat(1 << 20));
    ex.request("1 MB response", "text_too_long");
    g.respond(v, &p, 1, "   ");
    ex.request("blank response", "empty_text");
    g.respond(unknown, &p, 1, "hello?");
    ex.request("unknown match", "unknown_match");
    g.robot_answer(unknown, &cmd.event_id, answer(&robot_id, "A"));
    ex.robot("robot answer for an unknown match", "unknown_match");
    let env = g.request_envelope(
        v,
        schemas::MatchJoin {
            player_id: "p9".into(),
            name: "Nine".into(),
        },
    );
    g.pipe_envelope(topics::MATCH_REQUESTS, b, &env);
    ex.request("key is not the matchId", "key_mismatch");
    g.request(
        v,
        schemas::MatchJoin {
            player_id: "late-joiner".into(),
            name: "Late".into(),
        },
    );
    ex.request("join a full match", "match_full");

    // The victim's human answers: voting opens; robots vote.
    g.respond(v, &p, 1, "a real answer");
    g.answer_robots();
    g.vote(v, &p, 1, me.as_str());
    ex.request("vote for oneself", "self_vote");
    g.vote(v, &p, 1, "H");
    ex.request("vote for a seat not in the match", "invalid_identity");
    g.vote(v, &p, 2, &other);
    ex.request("vote for a future round", "voting_not_open");
    g.vote(v, &p, 1, &other);
    g.answer_robots();
    assert_eq!(g.state(v).expect("victim").round, 2, "round 1 is over");
    g.respond(v, &p, 1, "too late");
    ex.request("response for a round that is over", "round_over");
    g.vote(v, &p, 1, &other);
    ex.request("vote for a round that is over", "round_over");

    // Both matches on the partition carry on to the end.
    g.play(&[v, b]);
    g.assert_completed(v);
    g.assert_completed(b);
    g.respond(v, &p, 2, "after the end");
    ex.request("response after the match", "match_over");
    g.create(v, "classic_1v3", 2);
    ex.request("create an existing match", "match_already_exists");
    g.create("bad-template", "chess_1v1", 2);
    ex.request("unknown template", "unknown_template");

    let dlq = g.dlq();
    let got: Vec<(&str, &str, &str)> = dlq
        .iter()
        .map(|r| {
            (
                r.header("source.topic").unwrap_or(""),
                r.header("error.kind").unwrap_or(""),
                r.header("error").unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        dlq.len(),
        ex.0.len(),
        "one DLQ record per bad input: {got:#?}"
    );
    for ((what, topic, kind, reason), rec) in ex.0.iter().zip(&dlq) {
        assert_eq!(rec.header("source.topic"), Some(*topic), "{what}");
        assert_eq!(rec.header("error.kind"), Some(*kind), "{what}");
        let error = rec.header("error").unwrap_or("");
        assert!(
            error.contains(reason),
            "{what}: error `{error}` should name `{reason}`"
        );
        let processor = if *what == "tombstone" { "" } else { "match" };
        assert_eq!(rec.header("processor"), Some(processor), "{what}");
    }
    // DLQ records keep the original key and value (the 1 MB one included).
    let big = dlq
        .iter()
        .find(|r| {
            r.header("error")
                .is_some_and(|e| e.starts_with("text_too_long"))
        })
        .expect("1 MB");
    assert!(big.value.as_ref().is_some_and(|v| v.len() > 1 << 20));
    assert_eq!(big.key_str(), v);
    // The victim's log holds exactly one human response per round.
    let h = g.history(v).expect("history");
    assert_eq!(
        h.rounds[0]
            .responses
            .iter()
            .filter(|r| r.source == ResponseSource::Human)
            .count(),
        1
    );
    assert!(
        g.state(unknown).is_none(),
        "rejected input creates no match"
    );
}

/// The values a run wrote to the topics a duplicate could disturb.
struct Written {
    events: Vec<Vec<u8>>,
    states: Vec<Vec<u8>>,
    histories: Vec<Vec<u8>>,
    dead_letters: usize,
}

#[test]
fn duplicate_request_ids_are_idempotent_no_ops() {
    fn run(echo: bool) -> Written {
        let mut g = Game::new(settings());
        g.echo = echo;
        g.create_and_join("dup-a", "duo_2v2", 2);
        g.create_seated("dup-b", "classic_1v3", 2);
        g.play(&["dup-a", "dup-b"]);
        g.assert_completed("dup-a");
        g.assert_completed("dup-b");
        let values = |topic: &str| {
            g.driver
                .peek_output(topic)
                .into_iter()
                .filter_map(|r| r.value)
                .collect()
        };
        Written {
            events: values(topics::MATCH_EVENTS),
            states: values(topics::MATCH_STATE),
            histories: values(topics::MATCH_HISTORY),
            dead_letters: g.dlq().len(),
        }
    }
    let once = run(false);
    let twice = run(true);
    assert_eq!(twice.dead_letters, 0, "duplicates are not dead-lettered");
    assert_eq!(once.dead_letters, 0);
    assert_eq!(twice.events.len(), once.events.len(), "no second effect");
    assert!(
        twice.events == once.events,
        "match-events are byte-identical with and without duplicates"
    );
    assert!(
        twice.states == once.states,
        "match-state snapshots are byte-identical"
    );
    assert!(
        twice.histories == once.histories,
        "match-history documents are byte-identical"
    );
}

#[test]
fn the_same_response_under_a_new_request_id_is_a_no_op_but_a_different_one_is_rejected() {
    let mut g = Game::new(settings());
    let m = "content-dup";
    g.create_seated(m, "duel_2v1", 1);
    g.answer_robots();
    let p0 = player(m, 0);
    g.respond(m, &p0, 1, "same words");
    let after_first = g.events().len();
    g.respond(m, &p0, 1, "same words");
    assert_eq!(
        g.events().len(),
        after_first,
        "same content, new id: no effect"
    );
    assert!(g.dlq().is_empty());
    g.respond(m, &p0, 1, "other words");
    let dlq = g.dlq();
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0]
        .header("error")
        .unwrap()
        .starts_with("already_responded"));
    g.play(&[m]);
    let h = g.assert_completed(m);
    let me = seat_of(&g.state(m).expect("state"), &p0);
    let mine = h.rounds[0]
        .responses
        .iter()
        .find(|r| r.identity == me)
        .expect("response");
    assert_eq!(mine.text, "same words");
}

#[test]
fn an_oversized_robot_answer_is_truncated_not_rejected() {
    let mut g = Game::new(settings());
    let m = "long-robot";
    g.create_seated(m, "classic_1v3", 1);
    let cmds = g.drop_pending_commands();
    let mut big_seat = None;
    for (i, cmd) in cmds.iter().enumerate() {
        let mut data = g.offline_answer(cmd);
        if i == 0 {
            if let RobotResponseData::ResponseSubmitted(r) = &mut data {
                r.text = "é".repeat(1 << 20);
                big_seat = Identity::parse(&r.identity);
            }
        }
        g.robot_answer(m, &cmd.event_id, data);
    }
    g.play(&[m]);
    let h = g.assert_completed(m);
    let resp = h.rounds[0]
        .responses
        .iter()
        .find(|r| Some(r.identity) == big_seat)
        .expect("recorded");
    assert_eq!(resp.text.chars().count(), g.settings.game.max_text_chars);
    assert!(g.dlq().is_empty());
}
