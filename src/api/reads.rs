//! The GET handlers: match history, match state (interactive queries), robot pool,
//! topology, metrics and health.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use processors::streams::stores;
use serde::Deserialize;
use serde_json::{json, Value};
use topology::{KeyLocation, WorkerState};

use super::routing::{was_forwarded, Forwarded};
use super::validation::valid_id;
use super::{ApiError, ApiState, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};
use crate::views::LatestView;

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

/// Query of `/matches/history`.
#[derive(Debug, Deserialize)]
pub(super) struct Page {
    limit: Option<usize>,
    offset: Option<usize>,
}

pub(super) async fn match_history(
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
    // A page is a short walk of the view's on-disk index: on the blocking pool.
    let view = st.clone();
    let read = tokio::task::spawn_blocking(move || {
        let total = view.history.indexed();
        view.history.page(offset, limit).map(|p| (total, p))
    })
    .await;
    let (total, docs) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the match-history view");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the match-history view could not be read",
            )
            .into_response();
        }
        Err(e) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the history read failed: {e}"),
            )
            .into_response()
        }
    };
    let body = raw_array(docs.iter().map(|(_, e)| e.value.as_slice()));
    let mut resp = raw_json(StatusCode::OK, body);
    resp.headers_mut()
        .insert("x-total-count", HeaderValue::from(total));
    resp
}

/// `GET /matches/history/{id}`: one finished match's `match-history` document, `404`
/// until the view has it.
pub(super) async fn history_record(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = valid_id("match id", &id) {
        return e.into_response();
    }
    match st.history.get(&id) {
        Some(e) if is_json(&e.value) => raw_json(StatusCode::OK, e.value),
        Some(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the stored history document is not valid JSON",
        )
        .with("matchId", id.as_str())
        .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "no finished match with this id in the match-history view",
        )
        .with("matchId", id.as_str())
        .into_response(),
    }
}

fn state_name(s: WorkerState) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

pub(super) async fn get_match(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    match match_state(&st, &id, &headers).await {
        Ok(v) => raw_json(StatusCode::OK, v),
        Err(r) => r,
    }
}

/// `GET /matches/{id}/view`: the player's view ([`super::auth`]).
pub(super) async fn player_view(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let raw = match match_state(&st, &id, &headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Ok(mut state) = serde_json::from_slice::<Value>(&raw) else {
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "invalid match state")
            .into_response();
    };
    let you = st
        .tokens
        .bearer(&headers)
        .ok()
        .filter(|(m, _)| *m == id)
        .and_then(|(_, p)| {
            state["seats"]
                .as_array()?
                .iter()
                .find(|s| s["playerId"] == p.as_str())
                .map(|s| s["identity"].clone())
        });
    if state["status"] != "completed" {
        super::auth::redact(&mut state);
    }
    if let (Some(you), Some(o)) = (you, state.as_object_mut()) {
        o.insert("you".into(), you);
    }
    (StatusCode::OK, Json(state)).into_response()
}

/// The raw match state from the owning task — local, or forwarded to the instance that
/// runs it ([`super::routing`]) unless `headers` say another instance forwarded this
/// request already — or the error answer.
async fn match_state(
    st: &ApiState,
    id: &str,
    headers: &axum::http::HeaderMap,
) -> Result<Vec<u8>, Response> {
    let id = id.to_string();
    if let Err(e) = valid_id("match id", &id) {
        return Err(e.into_response());
    }
    if st.workers.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this instance runs no stream worker, so it holds no match state",
        )
        .with("matchId", id.as_str())
        .into_response());
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
        // The query takes the lock the stream thread holds while it processes a batch:
        // it runs on the blocking pool, never on the async runtime's threads.
        let (worker, key) = (w.clone(), id.clone());
        let answer = tokio::task::spawn_blocking(move || worker.query(stores::MATCHES, &key))
            .await
            .unwrap_or_else(|e| {
                Err(topology::TopologyError::Config(format!(
                    "the query task failed: {e}"
                )))
            });
        match answer {
            Ok(KeyLocation::Local(Some(v))) if is_json(&v) => return Ok(v),
            Ok(KeyLocation::Local(Some(_))) => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the stored match state is not valid JSON",
                )
                .with("matchId", id.as_str())
                .into_response())
            }
            Ok(KeyLocation::Local(None)) => not_found = true,
            Ok(KeyLocation::Remote { task }) => remote = Some(task),
            Err(e) => not_ready.push(format!("worker {i}: {e}")),
        }
    }
    if not_found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no such match (the owning task has no state for it)",
        )
        .with("matchId", id.as_str())
        .into_response());
    }
    Err(match remote {
        Some(task) if not_ready.is_empty() => {
            let owner = st.routing.as_ref().and_then(|r| r.view.owner(task));
            let detail = match (&st.routing, &owner) {
                (Some(r), Some(owner)) if !was_forwarded(headers) => {
                    match r.forward(owner, &format!("/matches/{id}")).await {
                        Forwarded::Answer(StatusCode::OK, body) => return Ok(body),
                        Forwarded::Answer(status, body) => return Err(raw_json(status, body)),
                        Forwarded::Failed(why) => why,
                    }
                }
                (Some(_), Some(_)) => "owned by another worker instance; not forwarded again (this request was forwarded already)".to_string(),
                (Some(_), None) => "owned by another worker instance whose address is unknown (no instance advertising --application-server has claimed the task yet)".to_string(),
                (None, _) => "owned by another worker instance".to_string(),
            };
            (
                StatusCode::MISDIRECTED_REQUEST,
                Json(json!({
                    "matchId": id,
                    "task": task.to_string(),
                    "partition": task.partition,
                    "owner": owner,
                    "detail": detail,
                })),
            )
                .into_response()
        }
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "stream workers are not ready; retry shortly",
        )
        .with("matchId", id.as_str())
        .with("workers", not_ready)
        .into_response(),
    })
}

pub(super) async fn robot_pool(State(st): State<Arc<ApiState>>) -> Response {
    // The pool is bounded by its scaling rules (max total robots), not by history.
    let mut values = Vec::new();
    for item in st.pool.iter() {
        match item {
            Ok((_, e)) if is_json(&e.value) => values.push(e.value),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading the robot-pool-state view");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the robot-pool-state view could not be read",
                )
                .into_response();
            }
        }
    }
    raw_json(StatusCode::OK, raw_array(values.iter().map(Vec::as_slice)))
}

#[derive(Debug, Deserialize)]
pub(super) struct FormatQuery {
    format: Option<String>,
}

pub(super) async fn describe_topology(
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

pub(super) async fn prometheus_metrics(State(st): State<Arc<ApiState>>) -> Response {
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

/// A view's health: it serves while it catches up, so only a failed view is not ready;
/// `behind` says how many records it has still to read.
fn view_health(v: &LatestView) -> (bool, Value) {
    let caught_up = v.caught_up();
    let failure = v.failure();
    (
        failure.is_none(),
        json!({
            "entries": v.len(),
            "caughtUp": caught_up,
            "behind": v.behind(),
            "cacheBytes": v.store().cache_bytes(),
            "failure": failure,
        }),
    )
}

/// Why worker `i` is not ready (`None` when it is running).
fn worker_not_ready(i: usize, s: &topology::WorkerStats) -> Option<String> {
    match s.state() {
        WorkerState::Running => None,
        WorkerState::Starting => Some(match s.waiting_for() {
            Some(why) => format!("worker {i} is starting: {why}"),
            None => format!("worker {i} is starting: joining its consumer group"),
        }),
        WorkerState::Restoring => Some(format!(
            "worker {i} is restoring its stores from the changelogs"
        )),
        WorkerState::Stopped => Some(format!("worker {i} has stopped")),
        WorkerState::Failed => Some(format!(
            "worker {i} failed: {}",
            s.failure().unwrap_or_else(|| "see the log".into())
        )),
    }
}

/// `GET /health`: `200` when every worker runs and no view has failed (a view serves
/// while it catches up: `caughtUp` and `behind` say how far it is), `503` otherwise;
/// `reasons` says why not. Per worker: its state, each task's state, lag (records behind
/// the end of its input partitions) and the age of its last commit.
pub(super) async fn health(State(st): State<Arc<ApiState>>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    let workers: Vec<Value> = st
        .workers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let s = w.stats();
            let state = s.state();
            reasons.extend(worker_not_ready(i, s));
            json!({
                "worker": i,
                "state": state_name(state),
                "tasks": s.task_health(),
                "processed": s.processed.load(Ordering::Relaxed),
                "restored": s.restored.load(Ordering::Relaxed),
                "commits": s.commits.load(Ordering::Relaxed),
                "waitingFor": s.waiting_for(),
                "failure": s.failure(),
            })
        })
        .collect();
    let mut views = serde_json::Map::new();
    for v in [&st.history, &st.pool] {
        let (ok, detail) = view_health(v);
        if !ok {
            let f = v.failure().unwrap_or_default();
            reasons.push(format!("view of {} failed: {f}", v.topic()));
        }
        views.insert(v.topic().to_string(), detail);
    }
    let ready = reasons.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "applicationId": st.application_id,
        "reasons": reasons,
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
