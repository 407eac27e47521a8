//! The read API (axum 0.8), served by `orchestra demo` and `orchestra run --http`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | the web page: lobby, the match you play, history ([`web`]; also `/web/app.js`, `/web/style.css`, `/web/templates`) |
//! | `GET /matches/history/{id}` | one finished match's `match-history` document (`404` until the view has it) |
//! | `GET /matches/history?limit=&offset=` | finished matches, newest first, from the `match-history` view's on-disk index (limit default 20, max 500; header `X-Total-Count`) |
//! | `GET /matches/{id}` | the match state from the local `matches` store of the owning task; `404` when the owner has no such match. When another instance owns the key, the request is forwarded to the address it advertises (`--application-server`, found in the instances topic, see [`crate::instances`]) and its answer returned; `421 Misdirected Request` with `{"matchId","task","partition","owner","detail"}` when the owner is unknown or unreachable (`owner`: its address, if known); `503` while this instance's workers are not running |
//! | `GET /instances` | `{"applicationId","self","instances":[{instance, server, workerIds, active:[{subtopology,partition}], standby, assignedAt, ageMs, alive}]}`: which instance owns which tasks (`src/api/routing.rs`) |
//! | `GET /robots/pool` | the `robot-pool-state` view, a JSON array |
//! | `GET /topology` | the topology as Mermaid (`text/plain`; `?format=text` for the text form) |
//! | `GET /metrics` | Prometheus text (`503` when no recorder is installed) |
//! | `GET /report?since=&until=` | the HTML report of the finished matches in the `match-history` view ([`crate::report`]; `since`/`until` as in `orchestra report`, `400` when malformed) |
//! | `GET /health` | `200 {"status":"ready",..}` only when every worker is `running` and no view has failed (views serve while they catch up; per view `entries`, `caughtUp`, `behind` — records still to read — and `cacheBytes`); otherwise `503` with the same detail and `reasons` (why not: e.g. what a starting worker waits for, a failed worker's error). Per worker: `state`, `tasks` (`[{task, state, lag, lastCommitAgeMs}]`), counters, `waitingFor`, `failure` |
//! | `POST /matches` | `match.create` — body `{template?, totalRounds?, humans?: [{playerId, name}], responseWindowMs?, votingWindowMs?}` (windows in ms, 1 s..=10 min; absent: the worker's) (an empty body without a content type means all defaults); answers a new match id (with an `Idempotency-Key`, the key is the match id) |
//! | `GET /matches/{id}/view` | the player's view of the match state ([`auth`]): like `GET /matches/{id}` but without seat kinds, sources, robots or player ids until the match is completed; with `Authorization: Bearer <token>`, `"you"` is the token holder's seat |
//! | `GET /matches/{id}/live?after=<sequence>` | WebSocket: the match's events as players may see them, in order, resumable after the last `sequence` seen ([`live`]) |
//! | `POST /matches/{id}/players` | `match.join` — `{playerId, name}`; answers `playerToken` too |
//! | `POST /matches/{id}/responses` | `response.submit` — `{playerId, round, text}`; needs the player's token (`Authorization: Bearer <token>`) |
//! | `POST /matches/{id}/votes` | `vote.submit` — `{playerId, round, votedFor}`; needs the player's token |
//!
//! `POST /matches` with humans answers `playerTokens: {playerId: token}`. Without a valid
//! token answering and voting are `401`, with another player's or match's token `403`,
//! nothing written (see [`auth`]).
//!
//! Players' actions are validated here (malformed JSON, missing fields, wrong types,
//! unknown fields, unknown template, rounds out of range, text over 2000 characters,
//! `votedFor` not `A`–`H`: `400 {"error": reason}`, nothing written), wrapped in a
//! version-1 envelope (eventId = correlationId = causationId = the request id), and
//! written to `match-requests` keyed by match id. The answer waits for Kafka's
//! acknowledgement (at most [`DELIVERY_TIMEOUT`]): `202 {"requestId","matchId"}` once
//! written, `503 {"error", "requestId"}` when it was not — the client is told, nothing is
//! dropped silently. A client may send an `Idempotency-Key` header: it becomes the request
//! id, so a retry after a 503 cannot apply twice (the match processor applies each
//! request id at most once). Game rules (is it the voting phase? is this player seated?)
//! are the match processor's job; rejections there go to the DLQ with a reason.
//!
//! ```no_run
//! # async fn example(state: std::sync::Arc<orchestra::api::ApiState>) -> anyhow::Result<()> {
//! let (addr, server) = orchestra::api::serve("127.0.0.1:0".parse()?, state).await?;
//! println!("read API on http://{addr}");
//! server.await?;
//! # Ok(()) }
//! ```

pub mod auth;
mod error;
mod latency;
pub mod live;
mod reads;
mod report;
mod requests;
mod routing;
mod validation;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;
use topology::{Topology, WorkerHandle};

use crate::kafka_config::Tuning;
use crate::views::LatestView;

pub use auth::PlayerTokens;
pub use error::{ApiError, ApiJson, ApiJsonOrEmpty};
pub use latency::{RequestLatency, PENDING_FOR};
pub use requests::new_id;
pub use routing::{Routing, FORWARDED_HEADER, FORWARD_TIMEOUT};

use reads::{
    describe_topology, get_match, health, history_record, match_history, player_view,
    prometheus_metrics, robot_pool,
};
use requests::{create_match, join_match, submit_response, submit_vote};

/// How long a player's request waits for Kafka's acknowledgement before `503`.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default page size of `/matches/history`.
pub const DEFAULT_HISTORY_LIMIT: usize = 20;
/// Largest page size of `/matches/history`.
pub const MAX_HISTORY_LIMIT: usize = 500;
/// Longest match id, player id or idempotency key accepted.
pub const MAX_ID_CHARS: usize = 128;

/// Everything the handlers read.
pub struct ApiState {
    /// The application id (shown by `/health` and `/topology`).
    pub application_id: String,
    /// Stream workers of this process (interactive queries, `/health`). May be empty.
    pub workers: Vec<Arc<WorkerHandle>>,
    /// The topology (for `/topology`).
    pub topology: Topology,
    /// Producer of players' requests to `match-requests` (see [`request_producer`]). It
    /// must partition like the runtime (`partitioner=murmur2_random`, librdkafka's default
    /// hashes differently) so a request reaches the task that owns its match; set
    /// `message.timeout.ms` so an unreachable cluster fails deliveries rather than queueing
    /// them for minutes.
    pub requests: FutureProducer,
    /// View of `match-history`.
    pub history: LatestView,
    /// View of `robot-pool-state`.
    pub pool: LatestView,
    /// Prometheus recorder handle for `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Signs and checks player tokens (every instance of a deployment shares the secret;
    /// see [`PlayerTokens::from_env`]).
    pub tokens: PlayerTokens,
    /// The shared tail of `match-events` for `/matches/{id}/live` (`None`: `503`).
    pub live: Option<Arc<live::LiveEvents>>,
    /// Where the other instances are, to forward queries for keys they own and list them
    /// at `/instances` (`None`: answer `421` and `503`).
    pub routing: Option<Routing>,
    /// Measures request → `match-events` and request → `robot-commands` latency of the
    /// requests this instance takes ([`RequestLatency`]; `None`: not measured).
    pub latency: Option<Arc<RequestLatency>>,
}

/// A producer for [`ApiState::requests`]: `client`'s settings plus the runtime's
/// partitioner (`murmur2_random`), `acks=all`, and `message.timeout.ms` =
/// `message_timeout` (how long librdkafka keeps trying before a delivery fails).
pub fn request_producer(
    client: &ClientConfig,
    message_timeout: Duration,
) -> Result<FutureProducer> {
    let mut cfg = client.clone();
    cfg.set("partitioner", "murmur2_random")
        .set("acks", "all")
        .tune("linger.ms", "0")
        .set(
            "message.timeout.ms",
            message_timeout.as_millis().max(1).to_string(),
        );
    cfg.create().context("creating the request producer")
}

/// Binds `addr` (port 0 picks a free port) and serves the API on a tokio task. Returns
/// the bound address and the server task.
pub async fn serve(
    addr: SocketAddr,
    state: Arc<ApiState>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the read API to {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let app = router(state);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "read API server stopped");
        }
    });
    tracing::info!(addr = %bound, "read API listening");
    Ok((bound, handle))
}

/// The routes, for embedding in another server or testing without a socket.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/web/app.js", get(web::app_js))
        .route("/web/style.css", get(web::style_css))
        .route("/web/templates", get(web::list_templates))
        .route("/matches", post(create_match))
        .route("/matches/history", get(match_history))
        .route("/matches/history/{id}", get(history_record))
        .route("/matches/{id}", get(get_match))
        .route("/matches/{id}/view", get(player_view))
        .route("/matches/{id}/live", get(live::live))
        .route("/matches/{id}/players", post(join_match))
        .route("/matches/{id}/responses", post(submit_response))
        .route("/matches/{id}/votes", post(submit_vote))
        .route("/robots/pool", get(robot_pool))
        .route("/topology", get(describe_topology))
        .route("/metrics", get(prometheus_metrics))
        .route("/health", get(health))
        .route("/instances", get(routing::instances))
        .route("/report", get(report::report))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}
