//! The read API on the embedded broker: players' requests are validated and written to
//! `match-requests` (400 with a reason and nothing written for bad bodies, 503 when Kafka
//! is unreachable), reads come from the views and the workers' local stores, `/health`
//! follows the workers' lifecycle, and a key owned by another instance answers 421.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orchestra::api::{self, ApiState};
use orchestra::views::LatestView;
use processors::game::history::evolve_history;
use processors::streams::{game_topology, stores, topics, GameSettings};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use schemas::{HistoryStatus, MatchHistory, MatchRequest, MatchRequestData};
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use topology::{
    testing, EmbeddedBroker, KeyLocation, StreamWorker, StreamsConfig, WorkerHandle, WorkerState,
};

const WAIT: Duration = Duration::from_secs(60);
/// The token secret of the API under test.
const TEST_SECRET: &str = "api-test-secret";
const PARTITIONS: i32 = 2;

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

fn producer(bootstrap: &str, message_timeout_ms: u64) -> FutureProducer {
    api::request_producer(
        &client_config(bootstrap),
        Duration::from_millis(message_timeout_ms),
    )
    .expect("producer")
}

fn broker_with_topics() -> EmbeddedBroker {
    let broker = EmbeddedBroker::start().expect("embedded broker");
    orchestra::topics::create_embedded(&broker, PARTITIONS).expect("topics");
    broker
}

struct Api {
    rt: Runtime,
    base: String,
    http: reqwest::Client,
    state: Arc<ApiState>,
}

impl Api {
    /// Serves the API with views on `bootstrap` and a request producer to `produce_to`.
    fn start(
        bootstrap: &str,
        produce_to: &str,
        message_timeout_ms: u64,
        workers: Vec<Arc<WorkerHandle>>,
    ) -> Api {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let client = client_config(bootstrap);
        let state = Arc::new(ApiState {
            application_id: "api-test".into(),
            workers,
            topology: game_topology(&GameSettings::default()),
            requests: rt.block_on(async { producer(produce_to, message_timeout_ms) }),
            history: LatestView::start(&client, topics::MATCH_HISTORY).expect("history view"),
            pool: LatestView::start(&client, topics::ROBOT_POOL_STATE).expect("pool view"),
            metrics: None,
            tokens: api::PlayerTokens::new(TEST_SECRET),
            live: None,
            routing: None,
            latency: None,
        });
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (bound, _server) = rt.block_on(api::serve(addr, state.clone())).expect("serve");
        assert_ne!(bound.port(), 0);
        Api {
            rt,
            base: format!("http://{bound}"),
            http: reqwest::Client::new(),
            state,
        }
    }

    fn get(&self, path: &str) -> (StatusCode, String) {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("GET");
            (r.status(), r.text().await.expect("body"))
        })
    }

    fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.post_raw_as(path, body, None)
    }

    fn post_as(&self, path: &str, body: Value, token: &str) -> (StatusCode, Value) {
        self.post_raw_as(path, &body.to_string(), Some(token))
    }

    fn post_raw_as(&self, path: &str, body: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.rt.block_on(async {
            let mut req = self.http.post(format!("{}{path}", self.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("POST");
            let status = r.status();
            let text = r.text().await.expect("body");
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_raw(path, &body.to_string())
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn requests_written(bootstrap: &str) -> i64 {
    testing::end_offsets(bootstrap, topics::MATCH_REQUESTS)
        .expect("end offsets")
        .values()
        .sum()
}

/// The first `n` records of `match-requests` as `(key, value)`, read with `orchestra tail`
/// (JSON lines, values inline).
fn read_requests(bootstrap: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    orchestra::views::tail(
        &client_config(bootstrap),
        topics::MATCH_REQUESTS,
        true,
        false,
        Some(n),
        &mut out,
    )
    .expect("tail");
    String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|line| {
            let v = json_of(line);
            assert!(
                v["partition"].is_i64() && v["offset"].is_i64() && v["timestamp"].is_i64(),
                "{line}"
            );
            let key = v["key"].as_str().expect("key").to_string();
            (key, serde_json::to_vec(&v["value"]).expect("value"))
        })
        .collect()
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error reason in {v}"))
}

#[test]
fn players_requests_are_validated_and_written_to_match_requests() {
    let broker = broker_with_topics();
    let bootstrap = broker.bootstrap_servers();
    let api = Api::start(&bootstrap, &bootstrap, 5000, Vec::new());

    // A valid create: 202 with ids, and the envelope is on match-requests under the match id.
    let (status, body) = api.post(
        "/matches",
        json!({"template": "duel_2v1", "totalRounds": 2, "humans": [{"playerId": "p1", "name": "Ann"}]}),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let match_id = body["matchId"].as_str().expect("matchId").to_string();
    let request_id = body["requestId"].as_str().expect("requestId").to_string();
    let token = body["playerTokens"]["p1"]
        .as_str()
        .expect("a token for the human p1")
        .to_string();
    let recs = read_requests(&bootstrap, 1);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].0, match_id);
    let req: MatchRequest = schemas::decode(&recs[0].1).expect("decodes");
    assert_eq!(req.event_id, request_id);
    assert_eq!(req.correlation_id, request_id);
    assert_eq!(req.causation_id, request_id);
    assert_eq!(req.match_id, match_id);
    match &req.data {
        MatchRequestData::Create(c) => {
            assert_eq!(
                (c.template.as_str(), c.total_rounds, c.humans.len()),
                ("duel_2v1", 2, 1)
            );
        }
        other => panic!("expected match.create, got {other:?}"),
    }
    assert_eq!(requests_written(&bootstrap), 1);

    // Invalid bodies: 400 with a reason, nothing written.
    let bad: Vec<(&str, String, &str)> = vec![
        ("/matches", r#"{"template": "#.into(), "malformed JSON"),
        ("/matches", r#"{"totalRounds": "five"}"#.into(), "invalid request body"),
        ("/matches", r#"{"template": "chess"}"#.into(), "unknown template"),
        ("/matches", r#"{"totalRounds": 0}"#.into(), "totalRounds"),
        ("/matches", r#"{"tempalte": "duel_2v1"}"#.into(), "unknown field"),
        (
            "/matches",
            r#"{"template": "classic_1v3", "humans": [{"playerId": "a", "name": "A"}, {"playerId": "b", "name": "B"}]}"#.into(),
            "human seat",
        ),
        ("/matches/m1/responses", r#"{"playerId": "p1"}"#.into(), "missing field"),
        ("/matches/m1/responses", json!({"playerId": "p1", "round": 1, "text": "x".repeat(2001)}).to_string(), "2001"),
        ("/matches/m1/responses", r#"{"playerId": "p1", "round": 1, "text": "   "}"#.into(), "empty"),
        ("/matches/m1/votes", r#"{"playerId": "p1", "round": 1, "votedFor": "Z"}"#.into(), "votedFor"),
        ("/matches/m1/votes", r#"{"playerId": "p1", "round": -1, "votedFor": "A"}"#.into(), "invalid request body"),
        ("/matches/m1/votes", r#"[1, 2]"#.into(), "invalid request body"),
        ("/matches/m1/players", r#"{"playerId": "", "name": "Bo"}"#.into(), "playerId"),
    ];
    for (path, body, reason) in &bad {
        let (status, answer) = api.post_raw(path, body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(
            error_of(&answer).contains(reason),
            "{path} {body}: expected `{reason}` in {answer}"
        );
    }
    // Without a JSON content type: 415 with a reason.
    let (status, text) = api.rt.block_on(async {
        let r = api
            .http
            .post(format!("{}/matches/m1/votes", api.base))
            .header("content-type", "text/plain")
            .body("A")
            .send()
            .await
            .expect("POST");
        (r.status(), r.text().await.expect("body"))
    });
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(&json_of(&text)).contains("Content-Type"));
    assert_eq!(
        requests_written(&bootstrap),
        1,
        "rejected requests must not be written"
    );

    // Valid response, vote and join; an empty create means defaults; an idempotency key
    // becomes the request id (and, for a create, the match id).
    // Answering and voting need the player's token (issue 15): 401 without one or with
    // an unknown one, 403 with another player's or match's; nothing written.
    let respond = json!({"playerId": "p1", "round": 1, "text": "Pancakes."});
    let path = format!("/matches/{match_id}/responses");
    let vote_path = format!("/matches/{match_id}/votes");
    let (s, body) = api.post(&path, respond.clone());
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, body) = api.post_as(&path, respond.clone(), "v1.6d31.7031.00");
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let forged = api::PlayerTokens::new("another-secret").token(&match_id, "p1");
    let (s, body) = api.post_as(
        &vote_path,
        json!({"playerId": "p1", "round": 1, "votedFor": "B"}),
        &forged,
    );
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, body) = api.post_as(
        &path,
        json!({"playerId": "p2", "round": 1, "text": "x"}),
        &token,
    );
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let other_match = api::PlayerTokens::new(TEST_SECRET).token("another-match", "p1");
    let (s, body) = api.post_as(
        &vote_path,
        json!({"playerId": "p1", "round": 1, "votedFor": "B"}),
        &other_match,
    );
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        requests_written(&bootstrap),
        1,
        "unauthorized requests must not be written"
    );
    let (s, _) = api.post_as(&path, respond, &token);
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _) = api.post_as(
        &vote_path,
        json!({"playerId": "p1", "round": 1, "votedFor": "B"}),
        &token,
    );
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, body) = api.post(
        &format!("/matches/{match_id}/players"),
        json!({"playerId": "p2", "name": "Bo"}),
    );
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        body["playerToken"].as_str(),
        Some(
            api::PlayerTokens::new(TEST_SECRET)
                .token(&match_id, "p2")
                .as_str()
        ),
        "joining answers the player's token: {body}"
    );
    let (s, body) = api.rt.block_on(async {
        let r = api
            .http
            .post(format!("{}/matches", api.base))
            .send()
            .await
            .expect("POST");
        (r.status(), r.json::<Value>().await.expect("json"))
    });
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let (s, body) = api.rt.block_on(async {
        let r = api
            .http
            .post(format!("{}/matches", api.base))
            .header("idempotency-key", "create-42")
            .json(&json!({"template": "mega_4v4"}))
            .send()
            .await
            .expect("POST");
        (r.status(), r.json::<Value>().await.expect("json"))
    });
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        (body["requestId"].as_str(), body["matchId"].as_str()),
        (Some("create-42"), Some("create-42"))
    );
    assert_eq!(requests_written(&bootstrap), 6);
    let recs = read_requests(&bootstrap, 6);
    assert_eq!(recs.len(), 6);
    let types: Vec<&'static str> = recs
        .iter()
        .map(|(_, v)| {
            schemas::decode::<MatchRequestData>(v)
                .expect("decodes")
                .event_type()
        })
        .collect();
    for t in [
        "match.create",
        "response.submit",
        "vote.submit",
        "match.join",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }

    // Reads that need no worker.
    let (s, mermaid) = api.get("/topology");
    assert_eq!(s, StatusCode::OK);
    assert!(mermaid.contains("flowchart"), "{mermaid}");
    let (s, text) = api.get("/topology?format=text");
    assert_eq!(s, StatusCode::OK);
    assert!(text.contains("Processor: match"), "{text}");
    let (s, _) = api.get("/metrics");
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "no recorder installed");
    let (s, body) = api.get(&format!("/matches/{match_id}"));
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "no worker holds state here: {body}"
    );
    let (s, _) = api.get("/nowhere");
    assert_eq!(s, StatusCode::NOT_FOUND);
    // No workers: ready while the views read (they serve as they catch up; `caughtUp`
    // and `behind` say how far they are).
    assert!(testing::wait_until(WAIT, || {
        let (s, body) = api.get("/health");
        s == StatusCode::OK && json_of(&body)["views"]["match-history"]["caughtUp"] == true
    }));
    let health = json_of(&api.get("/health").1);
    assert_eq!(health["views"]["match-history"]["behind"], 0);
    assert_eq!(health["status"], "ready");
    assert_eq!(health["views"]["match-history"]["caughtUp"], true);
}

fn finished_history(match_id: &str, created_at: i64, completed_at: i64) -> MatchHistory {
    let created = support::duel_created(match_id, created_at);
    let mut h = evolve_history(None, &created);
    h.status = HistoryStatus::Completed;
    h.completed_at = Some(completed_at);
    h.duration_ms = Some((completed_at - created_at) as u64);
    h
}

#[test]
fn history_and_pool_come_from_the_compacted_topics() {
    let broker = broker_with_topics();
    let bootstrap = broker.bootstrap_servers();
    let api = Api::start(&bootstrap, &bootstrap, 5000, Vec::new());

    let docs = [
        finished_history("m-old", 1_000, 5_000),
        finished_history("m-new", 2_000, 9_000),
        finished_history("m-mid", 3_000, 7_000),
    ];
    let records: Vec<(String, Vec<u8>)> = docs
        .iter()
        .map(|h| (h.match_id.clone(), serde_json::to_vec(h).expect("encode")))
        .collect();
    testing::produce(&bootstrap, topics::MATCH_HISTORY, &records, 0).expect("produce history");
    let robot = json!({"schemaVersion": 1, "robotId": "robot-s0-poet-1", "shard": 0, "personality": "poet",
        "status": "idle", "createdAt": 1, "updatedAt": 1, "assignmentsTotal": 0});
    testing::produce(
        &bootstrap,
        topics::ROBOT_POOL_STATE,
        &[("robot-s0-poet-1".into(), robot.to_string().into_bytes())],
        0,
    )
    .expect("produce pool");
    assert!(
        api.state.history.wait_for(3, WAIT),
        "history view saw {} docs",
        api.state.history.len()
    );
    assert!(api.state.pool.wait_for(1, WAIT));

    let (s, body) = api.get("/matches/history");
    assert_eq!(s, StatusCode::OK);
    let list: Vec<MatchHistory> =
        serde_json::from_str(&body).expect("a JSON array of MatchHistory");
    let ids: Vec<&str> = list.iter().map(|h| h.match_id.as_str()).collect();
    assert_eq!(
        ids,
        ["m-new", "m-mid", "m-old"],
        "newest first by completion time"
    );
    assert_eq!(list[0], docs[1], "the documents as written");

    let (s, body) = api.get("/matches/history?limit=1&offset=1");
    assert_eq!(s, StatusCode::OK);
    let page: Vec<MatchHistory> = serde_json::from_str(&body).expect("array");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].match_id, "m-mid");
    let (s, body) = api.get("/matches/history?limit=abc");
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&json_of(&body)).contains("invalid query"));

    // A tombstone removes a match from the view.
    testing::produce_raw(
        &bootstrap,
        topics::MATCH_HISTORY,
        &[(Some(b"m-old".to_vec()), None)],
    )
    .expect("tombstone");
    assert!(api
        .state
        .history
        .wait_until(WAIT, |v| v.get("m-old").is_none()));
    let list: Vec<MatchHistory> =
        serde_json::from_str(&api.get("/matches/history").1).expect("array");
    assert_eq!(list.len(), 2);

    let (s, body) = api.get("/robots/pool");
    assert_eq!(s, StatusCode::OK);
    let pool = json_of(&body);
    assert_eq!(pool.as_array().map(Vec::len), Some(1));
    assert_eq!(pool[0]["robotId"], "robot-s0-poet-1");
}

#[test]
fn unreachable_kafka_answers_503_and_tells_the_client() {
    let broker = broker_with_topics();
    let bootstrap = broker.bootstrap_servers();
    let api = Api::start(&bootstrap, "127.0.0.1:1", 1000, Vec::new());
    let (status, body) = api.post("/matches", json!({"template": "duel_2v1"}));
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(error_of(&body).contains("not"), "{body}");
    assert!(
        body["requestId"].is_string(),
        "the client learns which request was not accepted: {body}"
    );
    let (status, body) = api.post_as(
        "/matches/m1/votes",
        json!({"playerId": "p1", "round": 1, "votedFor": "A"}),
        &api::PlayerTokens::new(TEST_SECRET).token("m1", "p1"),
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Validation still answers 400 first.
    let (status, _) = api.post(
        "/matches/m1/votes",
        json!({"playerId": "p1", "round": 1, "votedFor": "Z"}),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

fn start_worker(
    topology: &topology::Topology,
    app: &str,
    bootstrap: &str,
    dir: &std::path::Path,
    id: &str,
) -> Arc<WorkerHandle> {
    let config = StreamsConfig::new(app, bootstrap)
        .state_dir(dir)
        .worker_id(id)
        .commit_interval(Duration::from_millis(100));
    Arc::new(StreamWorker::start(topology.clone(), config).expect("worker"))
}

#[test]
fn match_state_is_read_from_the_workers_store_and_health_follows_the_worker() {
    let app = "api-test-one";
    let broker = broker_with_topics();
    let bootstrap = broker.bootstrap_servers();
    let topology = game_topology(&GameSettings::default());
    broker
        .create_internal_topics(&topology, app, PARTITIONS)
        .expect("internal topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let worker = start_worker(&topology, app, &bootstrap, dir.path(), "w1");
    let api = Api::start(&bootstrap, &bootstrap, 5000, vec![worker.clone()]);

    assert!(
        testing::wait_until(WAIT, || api.get("/health").0 == StatusCode::OK),
        "health: {}",
        api.get("/health").1
    );
    let health = json_of(&api.get("/health").1);
    assert_eq!(health["workers"][0]["state"], "running");
    assert_eq!(worker.stats().state(), WorkerState::Running);

    let (s, body) = api.post(
        "/matches",
        json!({"template": "classic_1v3", "humans": [{"playerId": "p1", "name": "Ann"}]}),
    );
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let match_id = body["matchId"].as_str().expect("matchId").to_string();
    assert!(
        testing::wait_until(WAIT, || api.get(&format!("/matches/{match_id}")).0
            == StatusCode::OK),
        "match state never appeared: {:?}; health {}; requests {:?}; dlq {:?}",
        api.get(&format!("/matches/{match_id}")),
        api.get("/health").1,
        testing::read_topic(
            &bootstrap,
            topics::MATCH_REQUESTS,
            0,
            Duration::from_secs(5)
        )
        .map(|r| r.len()),
        testing::read_topic(&bootstrap, &format!("{app}-dlq"), 0, Duration::from_secs(5)).map(
            |r| r
                .iter()
                .map(|r| r.headers.get("error").cloned())
                .collect::<Vec<_>>()
        ),
    );
    let state = json_of(&api.get(&format!("/matches/{match_id}")).1);
    assert_eq!(state["matchId"], match_id.as_str());
    assert_eq!(state["template"], "classic_1v3");

    let (s, body) = api.get("/matches/no-such-match");
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert!(error_of(&json_of(&body)).contains("no such match"));

    worker.shutdown().expect("shutdown");
    let (s, body) = api.get("/health");
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(json_of(&body)["status"], "not_ready");
}

#[test]
fn a_key_owned_by_another_instance_answers_421_with_its_task() {
    let app = "api-test-two";
    let broker = broker_with_topics();
    let bootstrap = broker.bootstrap_servers();
    let topology = game_topology(&GameSettings::default());
    broker
        .create_internal_topics(&topology, app, PARTITIONS)
        .expect("internal topics");
    let (d1, d2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let w1 = start_worker(&topology, app, &bootstrap, d1.path(), "w1");
    let w2 = start_worker(&topology, app, &bootstrap, d2.path(), "w2");
    // Both running, and the match sub-topology's partitions split between them.
    let split = |k: &str| -> Option<(bool, bool)> {
        let a = w1.query(stores::MATCHES, k).ok()?;
        let b = w2.query(stores::MATCHES, k).ok()?;
        Some((
            matches!(a, KeyLocation::Local(_)),
            matches!(b, KeyLocation::Local(_)),
        ))
    };
    let keys: Vec<String> = (0..32).map(|i| format!("match-{i}")).collect();
    assert!(
        testing::wait_until(WAIT, || {
            w1.stats().state() == WorkerState::Running
                && w2.stats().state() == WorkerState::Running
                && keys
                    .iter()
                    .all(|k| matches!(split(k), Some((a, b)) if a != b))
                && keys.iter().any(|k| split(k) == Some((true, false)))
                && keys.iter().any(|k| split(k) == Some((false, true)))
        }),
        "the two workers never split the partitions: {:?} / {:?}",
        w1.stats().tasks(),
        w2.stats().tasks()
    );
    // This instance runs only w1.
    let api = Api::start(&bootstrap, &bootstrap, 5000, vec![w1.clone()]);
    let remote = keys
        .iter()
        .find(|k| split(k) == Some((false, true)))
        .expect("a remote key");
    let local = keys
        .iter()
        .find(|k| split(k) == Some((true, false)))
        .expect("a local key");

    let (s, body) = api.get(&format!("/matches/{remote}"));
    assert_eq!(s, StatusCode::MISDIRECTED_REQUEST, "{body}");
    let v = json_of(&body);
    let KeyLocation::Remote { task } = w1.query(stores::MATCHES, remote).expect("query") else {
        panic!("expected remote")
    };
    assert_eq!(v["matchId"], remote.as_str());
    assert_eq!(v["task"], task.to_string());
    assert_eq!(v["partition"], task.partition);
    assert_eq!(v["detail"], "owned by another worker instance");
    assert_eq!(
        task.partition,
        topology::partition_for(remote.as_bytes(), PARTITIONS)
    );

    let (s, body) = api.get(&format!("/matches/{local}"));
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    w2.shutdown().expect("shutdown w2");
    w1.shutdown().expect("shutdown w1");
}
