//! Test support: an OpenAI-compatible stub server on loopback (axum) with scripted
//! behaviour, and a tiny `metrics` recorder.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
/// What the stub does for one request.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// 200 with this assistant content and `usage.total_tokens`.
    Reply(String, u32),
    /// Error status with a `Retry-After` header (seconds) and an error message.
    Status(u16, Option<u64>, String),
    /// Never answers.
    Hang,
    /// Answers after a delay (simulated work, to observe concurrency).
    Slow(Duration, String),
}

#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) body: Value,
    pub(crate) authorization: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Stub {
    script: Mutex<VecDeque<Step>>,
    fallback: Step,
    pub(crate) requests: Mutex<Vec<Recorded>>,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    pub(crate) max_in_flight: AtomicUsize,
}

impl Stub {
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .map(|r| r.iter().map(|r| r.body.clone()).collect())
            .unwrap_or_default()
    }
}

fn completion(content: &str, tokens: u32) -> Value {
    json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": tokens / 2, "completion_tokens": tokens - tokens / 2, "total_tokens": tokens }
    })
}

async fn chat_completions(
    State(stub): State<Arc<Stub>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    stub.hits.fetch_add(1, Ordering::SeqCst);
    if let Ok(mut requests) = stub.requests.lock() {
        requests.push(Recorded {
            body,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        });
    }
    let step = stub
        .script
        .lock()
        .ok()
        .and_then(|mut s| s.pop_front())
        .unwrap_or_else(|| stub.fallback.clone());
    match step {
        Step::Reply(content, tokens) => Json(completion(&content, tokens)).into_response(),
        Step::Status(code, retry_after, message) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({ "error": { "message": message, "type": "stub_error", "param": null, "code": null } });
            let mut response = (status, Json(body)).into_response();
            if let Some(secs) = retry_after {
                if let Ok(value) = secs.to_string().parse() {
                    response.headers_mut().insert("retry-after", value);
                }
            }
            response
        }
        Step::Hang => {
            std::future::pending::<()>().await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Step::Slow(delay, content) => {
            let now = stub.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            stub.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            stub.in_flight.fetch_sub(1, Ordering::SeqCst);
            Json(completion(&content, 10)).into_response()
        }
    }
}

/// Starts a stub; returns it and its base URL (`http://127.0.0.1:PORT/v1`).
pub(crate) async fn start_stub(script: Vec<Step>, fallback: Step) -> (Arc<Stub>, String) {
    let stub = Arc::new(Stub {
        script: Mutex::new(script.into()),
        fallback,
        requests: Mutex::new(Vec::new()),
        hits: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (stub, format!("http://{addr}/v1"))
}

/// A tiny `metrics` recorder: counters/gauges hold values, histograms count samples.
#[derive(Default, Clone)]
pub(crate) struct TestRecorder {
    values: Arc<Mutex<HashMap<String, f64>>>,
}

struct Cell {
    key: String,
    values: Arc<Mutex<HashMap<String, f64>>>,
}

impl Cell {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        if let Ok(mut values) = self.values.lock() {
            let v = values.entry(self.key.clone()).or_insert(0.0);
            *v = f(*v);
        }
    }
}

impl metrics::CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.update(|v| v + value as f64);
    }
    fn absolute(&self, value: u64) {
        self.update(|_| value as f64);
    }
}

impl metrics::GaugeFn for Cell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

impl metrics::HistogramFn for Cell {
    fn record(&self, _value: f64) {
        self.update(|v| v + 1.0);
    }
}

impl TestRecorder {
    fn cell(&self, key: &metrics::Key) -> Arc<Cell> {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        Arc::new(Cell {
            key: format!("{}{{{}}}", key.name(), labels.join(",")),
            values: self.values.clone(),
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.values.lock().ok().and_then(|v| v.get(key).copied())
    }
}

impl metrics::Recorder for TestRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::from_arc(self.cell(key))
    }
}
