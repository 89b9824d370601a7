//! The gateway's error answer: an HTTP status, a stable code and a sentence, as
//! `{"error": "<code>", "message": "<sentence>"}`.

use crate::auth::AuthError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use doorstep_operators::order::InvalidInput;
use serde::Serialize;
use std::time::Duration;

/// An error answer. Built by the handlers and extractors; turned into a JSON response whose
/// extensions carry the [`ErrorCode`] (the metrics middleware counts rejections by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human sentence.
    pub message: String,
    /// `Retry-After` seconds, for 503.
    pub retry_after: Option<Duration>,
}

/// The code of an error response, left in the response's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_json`: the body is not the expected JSON (serde's message).
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 422 with the validation's own code.
    pub fn invalid(e: &InvalidInput) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
    }

    /// 400 `websocket_required`: a WebSocket route got a request that is not an upgrade.
    pub fn websocket_required(e: &axum::extract::ws::rejection::WebSocketUpgradeRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            format!("this route is a WebSocket: {}", e.body_text()),
        )
    }

    /// 503 `broker_unavailable` with `Retry-After`.
    pub fn broker_unavailable(message: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "broker_unavailable",
                message,
            )
        }
    }
}

impl From<AuthError> for ApiError {
    /// 401 `unauthorized` when the bearer is not authenticated, 403 `forbidden` when it is but
    /// may not do this.
    fn from(e: AuthError) -> Self {
        if e.is_unauthenticated() {
            Self::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
        } else {
            Self::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
        }
    }
}

impl From<InvalidInput> for ApiError {
    /// 422 with the validation's code.
    fn from(e: InvalidInput) -> Self {
        Self::invalid(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(Body {
            error: self.code,
            message: &self.message,
        });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.message.contains("required") {
                r#"Bearer realm="doorstep""#
            } else {
                r#"Bearer realm="doorstep", error="invalid_token""#
            };
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if let Some(after) = self.retry_after {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(after.as_secs().max(1)),
            );
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}
