//! Answering for keys another instance owns: `GET /matches/{id}` (and `/view`) for a match
//! whose task runs elsewhere is forwarded to the owner's `--application-server` address
//! (found in the [`InstancesView`]), once — the forwarded request carries
//! [`FORWARDED_HEADER`], and an instance never forwards such a request again — and within
//! [`FORWARD_TIMEOUT`]. `GET /instances` lists which instance owns which tasks.
//!
//! ```no_run
//! # fn example(client: &rdkafka::ClientConfig) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! let view = orchestra::instances::InstancesView::start(client, "robotorchestra-instances")?;
//! let routing = orchestra::api::Routing::new(Arc::new(view), Some("10.0.0.7:8080".into()))?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{ApiError, ApiState};
use crate::instances::InstancesView;

/// Marks a request one instance forwarded to another; it is never forwarded again.
pub const FORWARDED_HEADER: &str = "x-orchestra-forwarded-by";
/// How long a forwarded request may take.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

/// What an instance needs to find and ask the owner of a key.
pub struct Routing {
    /// Who runs which tasks.
    pub view: Arc<InstancesView>,
    server: std::sync::OnceLock<String>,
    http: reqwest::Client,
}

/// The owner's answer to a forwarded request.
pub(super) enum Forwarded {
    /// Its status and body (JSON).
    Answer(StatusCode, Vec<u8>),
    /// No owner known, or it did not answer: why.
    Failed(String),
}

impl Routing {
    /// See the module docs.
    pub fn new(view: Arc<InstancesView>, server: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .build()
            .context("creating the forwarding HTTP client")?;
        let this = Self {
            view,
            server: std::sync::OnceLock::new(),
            http,
        };
        if let Some(s) = server {
            this.advertise(s);
        }
        Ok(this)
    }

    /// Sets the address this instance advertises, once (later calls are ignored): for an
    /// address known only after the API bound its port.
    pub fn advertise(&self, server: String) {
        let _ = self.server.set(server);
    }

    /// The address this instance advertises (`--application-server`), if any.
    pub fn server(&self) -> Option<&str> {
        self.server.get().map(String::as_str)
    }

    /// Asks `owner` for `path` (e.g. `/matches/m1`), marked as forwarded.
    pub(super) async fn forward(&self, owner: &str, path: &str) -> Forwarded {
        if self.server() == Some(owner) {
            return Forwarded::Failed(
                "the instances topic names this instance as the owner, but its workers do not run the task (a rebalance is moving it)".into(),
            );
        }
        let url = format!("http://{owner}{path}");
        let sent = self
            .http
            .get(&url)
            .header(FORWARDED_HEADER, self.server().unwrap_or("unknown"))
            .send()
            .await;
        match sent {
            Ok(r) => {
                let status = r.status();
                match r.bytes().await {
                    Ok(b) => Forwarded::Answer(
                        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
                        b.to_vec(),
                    ),
                    Err(e) => Forwarded::Failed(format!("reading the owner's answer: {e}")),
                }
            }
            Err(e) => Forwarded::Failed(format!("the owner at {owner} did not answer: {e}")),
        }
    }
}

/// Whether `headers` mark a request another instance forwarded.
pub(super) fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

/// `GET /instances`: every instance of the application with the tasks it owns, its
/// standby replicas and its address; `503` without an instances view.
pub(super) async fn instances(State(st): State<Arc<ApiState>>) -> Response {
    let Some(r) = &st.routing else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this instance keeps no view of the instances topic",
        )
        .into_response();
    };
    (
        StatusCode::OK,
        Json(json!({
            "applicationId": st.application_id,
            "self": r.server(),
            "instances": r.view.list(),
        })),
    )
        .into_response()
}
