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
    // The documents stream from the view's store (the report decodes the ones in range).
    let view = st.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        let mut failed = None;
        let values = view.history.iter().filter_map(|r| match r {
            Ok((_, e)) => Some(e.value),
            Err(e) => {
                failed.get_or_insert(e);
                None
            }
        });
        let docs = Documents::from_owned_values(values, range);
        match failed {
            Some(e) => Err(e),
            None => Ok(crate::report::render_html(&docs, &Default::default())),
        }
    })
    .await;
    let html = match rendered {
        Ok(Ok(html)) => html,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading the match-history view");
            return ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the match-history view could not be read",
            )
            .into_response();
        }
        Err(e) => {
            return ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering the report failed: {e}"),
            )
            .into_response()
        }
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
