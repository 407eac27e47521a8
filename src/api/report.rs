//! `GET /report?since=&until=`: the HTML report ([`crate::report`]) of the finished matches
//! in the `match-history` view, filtered by completion time like `orchestra report`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::export::Documents;
use crate::time_range::{now_ms, TimeRange};

/// Query of `/report`: `--since`/`--until` values.
#[derive(Debug, Deserialize)]
pub(super) struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
}

pub(super) async fn report(
    State(st): State<Arc<ApiState>>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => {
            return ApiError::bad_request(format!("invalid query: {}", e.body_text()))
                .into_response()
        }
    };
    let range = match TimeRange::parse(q.since.as_deref(), q.until.as_deref(), now_ms()) {
        Ok(r) => r,
        Err(e) => return ApiError::bad_request(e.to_string()).into_response(),
    };
    let snapshot = st.history.snapshot();
    let docs = Documents::from_values(
        snapshot.values().map(|e| e.value.as_slice()),
        std::iter::empty(),
        range,
    );
    let html = crate::report::render_html(&docs, &Default::default());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
