//! The read API (axum 0.8), served by `orchestra demo` and `orchestra run --http`.
//!
//! | route | answer |
//! |---|---|
//! | `GET /matches/history?limit=&offset=` | finished matches, newest first, from the `match-history` view (limit default 20, max 500; header `X-Total-Count`) |
//! | `GET /matches/{id}` | the match state from the local `matches` store of the owning task; `404` when the owner has no such match; `421 Misdirected Request` with `{"matchId","task","partition","detail"}` when another worker instance owns the key (`application.server` style); `503` while this instance's workers are not running |
//! | `GET /robots/pool` | the `robot-pool-state` view, a JSON array |
//! | `GET /topology` | the topology as Mermaid (`text/plain`; `?format=text` for the text form) |
//! | `GET /metrics` | Prometheus text (`503` when no recorder is installed) |
//! | `GET /health` | `200 {"status":"ready",..}` only when every worker is `running` and the views have read their topics to the end; otherwise `503` with the same detail |
//! | `POST /matches` | `match.create` — body `{template?, totalRounds?, humans?: [{playerId, name}]}` (an empty body without a content type means all defaults); answers a new match id (with an `Idempotency-Key`, the key is the match id) |
//! | `POST /matches/{id}/players` | `match.join` — `{playerId, name}` |
//! | `POST /matches/{id}/responses` | `response.submit` — `{playerId, round, text}` |
//! | `POST /matches/{id}/votes` | `vote.submit` — `{playerId, round, votedFor}` |
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

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use processors::game::templates::{template, TEMPLATES};
use processors::game::GameConfig;
use processors::streams::{stores, topics};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schemas::{
    Identity, MatchCreate, MatchJoin, MatchRequest, MatchRequestData, PlayerRef, ResponseSubmit,
    VoteSubmit, DEFAULT_TEMPLATE, DEFAULT_TOTAL_ROUNDS,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use topology::{KeyLocation, Topology, WorkerHandle, WorkerState};

use crate::views::{self, LatestView};

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
        .set("linger.ms", "0")
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
        .route("/matches", post(create_match))
        .route("/matches/history", get(match_history))
        .route("/matches/{id}", get(get_match))
        .route("/matches/{id}/players", post(join_match))
        .route("/matches/{id}/responses", post(submit_response))
        .route("/matches/{id}/votes", post(submit_vote))
        .route("/robots/pool", get(robot_pool))
        .route("/topology", get(describe_topology))
        .route("/metrics", get(prometheus_metrics))
        .route("/health", get(health))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state)
}

// ---------------------------------------------------------------------------------------
// Errors and bodies

/// An error answer: a status and `{"error": reason, ...}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": reason.into() }),
        }
    }

    fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Some(o) = self.body.as_object_mut() {
            o.insert(key.to_string(), value.into());
        }
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with `Content-Type: application/json`",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request(format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => {
                ApiError::bad_request(format!("invalid request body: {}", e.body_text()))
            }
            other => ApiError::new(other.status(), other.body_text()),
        }
    }
}

/// A JSON body whose rejections answer `{"error": reason}` (400 for malformed or
/// mistyped bodies, 415 without a JSON content type).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| ApiJson(v))
            .map_err(ApiError::from)
    }
}

/// Like [`ApiJson`], but an empty body without a content type is `T::default()`.
pub struct ApiJsonOrEmpty<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrEmpty<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_type {
            return ApiJson::<T>::from_request(req, state)
                .await
                .map(|ApiJson(v)| ApiJsonOrEmpty(v));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(ApiJsonOrEmpty(T::default()))
        } else {
            Err(
                JsonRejection::from(axum::extract::rejection::MissingJsonContentType::default())
                    .into(),
            )
        }
    }
}

fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `[v1,v2,...]` from values that are JSON already.
fn raw_array<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut body = vec![b'['];
    for (i, v) in values.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(v);
    }
    body.push(b']');
    body
}

fn is_json(v: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok()
}

// ---------------------------------------------------------------------------------------
// Reads

/// Query of `/matches/history`.
#[derive(Debug, Deserialize)]
struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn match_history(
    State(st): State<Arc<ApiState>>,
    q: Result<Query<Page>, QueryRejection>,
) -> Response {
    let Query(page) = match q {
        Ok(q) => q,
        Err(e) => {
            return ApiError::bad_request(format!("invalid query: {}", e.body_text()))
                .into_response()
        }
    };
    let limit = page
        .limit
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .min(MAX_HISTORY_LIMIT);
    let offset = page.offset.unwrap_or(0);
    let snapshot = st.history.snapshot();
    let docs = views::sorted_histories(&snapshot);
    let total = docs.len();
    let body = raw_array(
        docs.iter()
            .skip(offset)
            .take(limit)
            .map(|(_, e)| e.value.as_slice()),
    );
    let mut resp = raw_json(StatusCode::OK, body);
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    resp
}

fn valid_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request(format!("{what} must not be empty")));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::bad_request(format!(
            "{what} is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ApiError::bad_request(format!(
            "{what} must not contain whitespace or control characters"
        )));
    }
    Ok(())
}

fn state_name(s: WorkerState) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

async fn get_match(State(st): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    if let Err(e) = valid_id("match id", &id) {
        return e.into_response();
    }
    if st.workers.is_empty() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this instance runs no stream worker, so it holds no match state",
        )
        .with("matchId", id.as_str())
        .into_response();
    }
    let mut not_found = false;
    let mut remote = None;
    let mut not_ready: Vec<String> = Vec::new();
    for (i, w) in st.workers.iter().enumerate() {
        let state = w.stats().state();
        if state != WorkerState::Running {
            not_ready.push(format!(
                "worker {i} is {}",
                state_name(state).as_str().unwrap_or("unknown")
            ));
            continue;
        }
        match w.query(stores::MATCHES, &id) {
            Ok(KeyLocation::Local(Some(v))) if is_json(&v) => return raw_json(StatusCode::OK, v),
            Ok(KeyLocation::Local(Some(_))) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the stored match state is not valid JSON",
                )
                .with("matchId", id.as_str())
                .into_response()
            }
            Ok(KeyLocation::Local(None)) => not_found = true,
            Ok(KeyLocation::Remote { task }) => remote = Some(task),
            Err(e) => not_ready.push(format!("worker {i}: {e}")),
        }
    }
    if not_found {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "no such match (the owning task has no state for it)",
        )
        .with("matchId", id.as_str())
        .into_response();
    }
    match remote {
        Some(task) if not_ready.is_empty() => (
            StatusCode::MISDIRECTED_REQUEST,
            Json(json!({
                "matchId": id,
                "task": task.to_string(),
                "partition": task.partition,
                "detail": "owned by another worker instance",
            })),
        )
            .into_response(),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stream workers are not ready; retry shortly",
        )
        .with("matchId", id.as_str())
        .with("workers", not_ready)
        .into_response(),
    }
}

async fn robot_pool(State(st): State<Arc<ApiState>>) -> Response {
    let snapshot = st.pool.snapshot();
    raw_json(
        StatusCode::OK,
        raw_array(
            snapshot
                .values()
                .map(|e| e.value.as_slice())
                .filter(|v| is_json(v)),
        ),
    )
}

#[derive(Debug, Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

async fn describe_topology(
    State(st): State<Arc<ApiState>>,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Response {
    let format = q.ok().and_then(|Query(f)| f.format);
    let d = st.topology.describe(Some(&st.application_id));
    let text = match format.as_deref() {
        None | Some("mermaid") => d.to_mermaid(),
        Some("text") => d.to_text(),
        Some(other) => {
            return ApiError::bad_request(format!("unknown format `{other}` (mermaid or text)"))
                .into_response()
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn prometheus_metrics(State(st): State<Arc<ApiState>>) -> Response {
    match &st.metrics {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed",
        )
        .into_response(),
    }
}

fn view_health(v: &LatestView) -> (bool, Value) {
    let caught_up = v.caught_up();
    let failure = v.failure();
    (
        caught_up && failure.is_none(),
        json!({ "entries": v.len(), "caughtUp": caught_up, "failure": failure }),
    )
}

async fn health(State(st): State<Arc<ApiState>>) -> Response {
    let mut ready = true;
    let workers: Vec<Value> = st
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let s = w.stats();
            let state = s.state();
            ready &= state == WorkerState::Running;
            json!({
                "worker": i,
                "state": state_name(state),
                "tasks": s.tasks().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "processed": s.processed.load(Ordering::Relaxed),
                "restored": s.restored.load(Ordering::Relaxed),
            })
        })
        .collect();
    let (h_ok, h) = view_health(&st.history);
    let (p_ok, p) = view_health(&st.pool);
    ready &= h_ok && p_ok;
    let mut views = serde_json::Map::new();
    views.insert(st.history.topic().to_string(), h);
    views.insert(st.pool.topic().to_string(), p);
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "applicationId": st.application_id,
        "workers": workers,
        "views": views,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

// ---------------------------------------------------------------------------------------
// Players' actions

/// Body of `POST /matches`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    template: Option<String>,
    total_rounds: Option<u32>,
    humans: Option<Vec<PlayerBody>>,
}

/// A human: body of `POST /matches/{id}/players` and an element of `humans`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PlayerBody {
    player_id: String,
    name: String,
}

/// Body of `POST /matches/{id}/responses`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResponseBody {
    player_id: String,
    round: u32,
    text: String,
}

/// Body of `POST /matches/{id}/votes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VoteBody {
    player_id: String,
    round: u32,
    voted_for: String,
}

fn valid_player(p: &PlayerBody, cfg: &GameConfig) -> Result<PlayerRef, ApiError> {
    valid_player_id(&p.player_id, cfg)?;
    let name = p.name.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    if name.chars().count() > cfg.max_name_chars {
        return Err(ApiError::bad_request(format!(
            "name is longer than {} characters",
            cfg.max_name_chars
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must not contain control characters",
        ));
    }
    Ok(PlayerRef {
        player_id: p.player_id.clone(),
        name: name.to_string(),
    })
}

fn valid_player_id(id: &str, cfg: &GameConfig) -> Result<(), ApiError> {
    valid_id("playerId", id)?;
    if id.chars().count() > cfg.max_player_id_chars {
        return Err(ApiError::bad_request(format!(
            "playerId is longer than {} characters",
            cfg.max_player_id_chars
        )));
    }
    Ok(())
}

fn valid_round(round: u32, cfg: &GameConfig) -> Result<(), ApiError> {
    if round == 0 || round > cfg.max_rounds {
        return Err(ApiError::bad_request(format!(
            "round must be between 1 and {}",
            cfg.max_rounds
        )));
    }
    Ok(())
}

fn validate_create(body: CreateBody, cfg: &GameConfig) -> Result<MatchCreate, ApiError> {
    let name = body
        .template
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    let Some(t) = template(&name) else {
        let known: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        return Err(ApiError::bad_request(format!(
            "unknown template `{name}` (known: {})",
            known.join(", ")
        )));
    };
    let total_rounds = body.total_rounds.unwrap_or(DEFAULT_TOTAL_ROUNDS);
    if total_rounds < cfg.min_rounds || total_rounds > cfg.max_rounds {
        return Err(ApiError::bad_request(format!(
            "totalRounds must be between {} and {}",
            cfg.min_rounds, cfg.max_rounds
        )));
    }
    let humans = body.humans.unwrap_or_default();
    if humans.len() > t.humans as usize {
        return Err(ApiError::bad_request(format!(
            "template `{}` has {} human seat(s); {} humans given",
            t.name,
            t.humans,
            humans.len()
        )));
    }
    let mut players = Vec::with_capacity(humans.len());
    for h in &humans {
        let p = valid_player(h, cfg)?;
        if players
            .iter()
            .any(|q: &PlayerRef| q.player_id == p.player_id)
        {
            return Err(ApiError::bad_request(format!(
                "playerId `{}` is given twice",
                p.player_id
            )));
        }
        players.push(p);
    }
    Ok(MatchCreate {
        template: t.name.to_string(),
        total_rounds,
        humans: players,
    })
}

fn validate_response(body: ResponseBody, cfg: &GameConfig) -> Result<ResponseSubmit, ApiError> {
    valid_player_id(&body.player_id, cfg)?;
    valid_round(body.round, cfg)?;
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    let chars = body.text.chars().count();
    if chars > cfg.max_text_chars {
        return Err(ApiError::bad_request(format!(
            "text is {chars} characters long; at most {} are allowed",
            cfg.max_text_chars
        )));
    }
    Ok(ResponseSubmit {
        player_id: body.player_id,
        round: body.round,
        text: body.text,
    })
}

fn validate_vote(body: VoteBody, cfg: &GameConfig) -> Result<VoteSubmit, ApiError> {
    valid_player_id(&body.player_id, cfg)?;
    valid_round(body.round, cfg)?;
    if Identity::parse(&body.voted_for).is_none() {
        return Err(ApiError::bad_request(format!(
            "votedFor must be one identity letter A–H, got {:?}",
            body.voted_for
        )));
    }
    Ok(VoteSubmit {
        player_id: body.player_id,
        round: body.round,
        voted_for: body.voted_for,
    })
}

/// A fresh uuid-shaped id (random per process via std's randomly keyed hasher, plus time
/// and a counter; no extra dependencies).
pub fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let hash = |salt: u64| RandomState::new().hash_one((t, n, std::process::id(), salt));
    let (a, b) = (hash(1), hash(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The request id: the `Idempotency-Key` header when given (validated), else a new id.
fn request_id(headers: &HeaderMap) -> Result<String, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(new_id()),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
            valid_id("Idempotency-Key", v)?;
            Ok(v.to_string())
        }
    }
}

fn count(action: &'static str, outcome: &'static str) {
    metrics::counter!("orchestra_api_player_requests_total", "action" => action, "outcome" => outcome).increment(1);
}

/// Wraps `data` in an envelope, writes it to `match-requests` keyed by `match_id`, and
/// answers 202 once Kafka acknowledged it, 503 when it did not.
async fn submit(
    st: &ApiState,
    action: &'static str,
    match_id: String,
    request_id: String,
    data: MatchRequestData,
) -> Response {
    let envelope: MatchRequest = MatchRequest::new(
        &request_id,
        &match_id,
        now_ms(),
        &request_id,
        &request_id,
        data,
    );
    let bytes = match envelope.to_json_vec() {
        Ok(b) => b,
        Err(e) => {
            count(action, "error");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding the request: {e}"),
            )
            .into_response();
        }
    };
    let record = FutureRecord::to(topics::MATCH_REQUESTS)
        .key(match_id.as_str())
        .payload(bytes.as_slice());
    let delivery =
        tokio::time::timeout(DELIVERY_TIMEOUT, st.requests.send(record, DELIVERY_TIMEOUT)).await;
    match delivery {
        Ok(Ok(d)) => {
            count(action, "accepted");
            tracing::debug!(%match_id, %request_id, partition = d.partition, offset = d.offset, "request written");
            (
                StatusCode::ACCEPTED,
                Json(json!({ "requestId": request_id, "matchId": match_id })),
            )
                .into_response()
        }
        Ok(Err((e, _))) => {
            count(action, "unavailable");
            tracing::warn!(%match_id, %request_id, error = %e, "request not written");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "request not accepted: writing it to {} failed: {e}",
                    topics::MATCH_REQUESTS
                ),
            )
            .with("requestId", request_id)
            .with("matchId", match_id)
            .into_response()
        }
        Err(_) => {
            count(action, "unavailable");
            tracing::warn!(%match_id, %request_id, "request not acknowledged in time");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "request not acknowledged by Kafka within {} s; it may still be written — retry with header `Idempotency-Key: {request_id}` so it applies at most once",
                    DELIVERY_TIMEOUT.as_secs()
                ),
            )
            .with("requestId", request_id)
            .with("matchId", match_id)
            .into_response()
        }
    }
}

fn invalid(action: &'static str, e: ApiError) -> Response {
    count(action, "invalid");
    e.into_response()
}

async fn create_match(
    State(st): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<ApiJsonOrEmpty<CreateBody>, ApiError>,
) -> Response {
    const ACTION: &str = "create";
    let cfg = GameConfig::default();
    let create = match body.and_then(|ApiJsonOrEmpty(b)| validate_create(b, &cfg)) {
        Ok(c) => c,
        Err(e) => return invalid(ACTION, e),
    };
    let rid = match request_id(&headers) {
        Ok(r) => r,
        Err(e) => return invalid(ACTION, e),
    };
    // With an idempotency key the key is also the match id, so a retried create names
    // the same match (and is applied at most once).
    let match_id = if headers.contains_key("idempotency-key") {
        rid.clone()
    } else {
        new_id()
    };
    submit(&st, ACTION, match_id, rid, MatchRequestData::Create(create)).await
}

async fn join_match(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson<PlayerBody>, ApiError>,
) -> Response {
    const ACTION: &str = "join";
    let cfg = GameConfig::default();
    let checked = valid_id("match id", &id)
        .and(body)
        .and_then(|ApiJson(b)| valid_player(&b, &cfg))
        .and_then(|p| Ok((p, request_id(&headers)?)));
    match checked {
        Ok((p, rid)) => {
            let join = MatchJoin {
                player_id: p.player_id,
                name: p.name,
            };
            submit(&st, ACTION, id, rid, MatchRequestData::Join(join)).await
        }
        Err(e) => invalid(ACTION, e),
    }
}

async fn submit_response(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson<ResponseBody>, ApiError>,
) -> Response {
    const ACTION: &str = "respond";
    let cfg = GameConfig::default();
    let checked = valid_id("match id", &id)
        .and(body)
        .and_then(|ApiJson(b)| validate_response(b, &cfg))
        .and_then(|r| Ok((r, request_id(&headers)?)));
    match checked {
        Ok((r, rid)) => submit(&st, ACTION, id, rid, MatchRequestData::Respond(r)).await,
        Err(e) => invalid(ACTION, e),
    }
}

async fn submit_vote(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<ApiJson<VoteBody>, ApiError>,
) -> Response {
    const ACTION: &str = "vote";
    let cfg = GameConfig::default();
    let checked = valid_id("match id", &id)
        .and(body)
        .and_then(|ApiJson(b)| validate_vote(b, &cfg))
        .and_then(|v| Ok((v, request_id(&headers)?)));
    match checked {
        Ok((v, rid)) => submit(&st, ACTION, id, rid, MatchRequestData::Vote(v)).await,
        Err(e) => invalid(ACTION, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn validation_gives_reasons() {
        let cfg = GameConfig::default();
        let e = validate_create(
            CreateBody {
                template: Some("chess".into()),
                ..Default::default()
            },
            &cfg,
        )
        .unwrap_err();
        assert!(e.body["error"]
            .as_str()
            .unwrap()
            .contains("unknown template"));
        let c = validate_create(CreateBody::default(), &cfg).unwrap();
        assert_eq!((c.template.as_str(), c.total_rounds), ("classic_1v3", 5));
        let e = validate_create(
            CreateBody {
                total_rounds: Some(0),
                ..Default::default()
            },
            &cfg,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let long = ResponseBody {
            player_id: "p1".into(),
            round: 1,
            text: "x".repeat(2001),
        };
        assert!(validate_response(long, &cfg).is_err());
        let ok = ResponseBody {
            player_id: "p1".into(),
            round: 1,
            text: "é".repeat(2000),
        };
        assert!(validate_response(ok, &cfg).is_ok());
        let vote = VoteBody {
            player_id: "p1".into(),
            round: 1,
            voted_for: "Z".into(),
        };
        assert!(validate_vote(vote, &cfg).is_err());
        let two = CreateBody {
            template: Some("classic_1v3".into()),
            humans: Some(vec![
                PlayerBody {
                    player_id: "a".into(),
                    name: "A".into(),
                },
                PlayerBody {
                    player_id: "b".into(),
                    name: "B".into(),
                },
            ]),
            ..Default::default()
        };
        assert!(validate_create(two, &cfg).is_err());
    }
}
