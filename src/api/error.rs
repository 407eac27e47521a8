//! Error answers (`{"error": reason, ...}`) and the JSON body extractors whose rejections
//! answer that way.

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// An error answer: a status and `{"error": reason, ...}`.
#[derive(Debug)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) body: Value,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": reason.into() }),
        }
    }

    pub(super) fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    pub(super) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
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
