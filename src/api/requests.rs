//! The POST handlers: players' requests, validated, wrapped in an envelope and written to
//! `match-requests`, answered once Kafka acknowledged them.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use processors::game::GameConfig;
use processors::streams::topics;
use rdkafka::producer::FutureRecord;
use schemas::{MatchJoin, MatchRequest, MatchRequestData};
use serde_json::json;

use super::validation::{
    valid_id, valid_player, validate_create, validate_response, validate_vote, CreateBody,
    PlayerBody, ResponseBody, VoteBody,
};
use super::{ApiError, ApiJson, ApiJsonOrEmpty, ApiState, DELIVERY_TIMEOUT};

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
    metrics::counter!(crate::metrics::API_PLAYER_REQUESTS, "action" => action, "outcome" => outcome)
        .increment(1);
}

/// Wraps `data` in an envelope, writes it to `match-requests` keyed by `match_id`, and
/// answers 202 once Kafka acknowledged it, 503 when it did not.
async fn submit(
    st: &ApiState,
    action: &'static str,
    match_id: String,
    request_id: String,
    data: MatchRequestData,
    extra: Option<(&'static str, serde_json::Value)>,
) -> Response {
    let taken = std::time::Instant::now();
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
    if let Some(l) = &st.latency {
        // Before the write: the event may be read before the acknowledgement arrives.
        l.taken(&request_id, action, taken);
    }
    let record = FutureRecord::to(topics::MATCH_REQUESTS)
        .key(match_id.as_str())
        .payload(bytes.as_slice());
    let delivery =
        tokio::time::timeout(DELIVERY_TIMEOUT, st.requests.send(record, DELIVERY_TIMEOUT)).await;
    match delivery {
        Ok(Ok(d)) => {
            count(action, "accepted");
            tracing::debug!(%match_id, %request_id, partition = d.partition, offset = d.offset, "request written");
            let mut body = json!({ "requestId": request_id, "matchId": match_id });
            if let (Some((k, v)), Some(o)) = (extra, body.as_object_mut()) {
                o.insert(k.to_string(), v);
            }
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Ok(Err((e, _))) => {
            count(action, "unavailable");
            if let Some(l) = &st.latency {
                l.dropped(&request_id);
            }
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

pub(super) async fn create_match(
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
    // Each human listed gets its player token (issue 15: fair play).
    let tokens: serde_json::Map<String, serde_json::Value> = create
        .humans
        .iter()
        .map(|h| {
            (
                h.player_id.clone(),
                st.tokens.token(&match_id, &h.player_id).into(),
            )
        })
        .collect();
    let extra = Some(("playerTokens", serde_json::Value::Object(tokens)));
    submit(
        &st,
        ACTION,
        match_id,
        rid,
        MatchRequestData::Create(create),
        extra,
    )
    .await
}

pub(super) async fn join_match(
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
            let token = st.tokens.token(&id, &p.player_id);
            let join = MatchJoin {
                player_id: p.player_id,
                name: p.name,
            };
            let extra = Some(("playerToken", token.into()));
            submit(&st, ACTION, id, rid, MatchRequestData::Join(join), extra).await
        }
        Err(e) => invalid(ACTION, e),
    }
}

pub(super) async fn submit_response(
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
        .and_then(|r| Ok((r, request_id(&headers)?)))
        .and_then(|(r, rid)| {
            st.tokens.authorize(&headers, &id, &r.player_id)?;
            Ok((r, rid))
        });
    match checked {
        Ok((r, rid)) => submit(&st, ACTION, id, rid, MatchRequestData::Respond(r), None).await,
        Err(e) => invalid(ACTION, e),
    }
}

pub(super) async fn submit_vote(
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
        .and_then(|v| Ok((v, request_id(&headers)?)))
        .and_then(|(v, rid)| {
            st.tokens.authorize(&headers, &id, &v.player_id)?;
            Ok((v, rid))
        });
    match checked {
        Ok((v, rid)) => submit(&st, ACTION, id, rid, MatchRequestData::Vote(v), None).await,
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
}
