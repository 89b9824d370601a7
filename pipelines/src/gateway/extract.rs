//! Request parts the handlers need, with errors in the gateway's JSON shape: the bearer's
//! claims ([`Caller`]) and the JSON body ([`parse_json`]).

use super::{ApiError, GatewayState};
use crate::auth::{AuthError, Claims, Scope, unix_now};
use axum::extract::FromRequestParts;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// The verified claims of the request's bearer token. Missing, malformed, forged or expired
/// tokens are refused with 401 before the handler runs; a `read`-scoped token is refused with
/// 403 on any method but `GET` (every other method acts).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl FromRequestParts<GatewayState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &GatewayState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?;
        let claims = state.inner.key.verify(token, unix_now())?;
        if parts.method != axum::http::Method::GET {
            claims.require_scope(Scope::Act)?;
        }
        state.limits().check_request(&claims)?;
        Ok(Caller(claims))
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(super) fn bearer(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed("the Authorization header is not ASCII"))?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed(
        "expected `Authorization: Bearer <token>`",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "expected `Authorization: Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// Maps a failure to read the body: over the size limit is 413 `payload_too_large`, anything
/// else 400 `invalid_body`.
pub(super) fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than the gateway accepts",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "the request body could not be read: {}",
                rejection.body_text()
            ),
        )
    }
}

/// Parses a JSON body. A `Content-Type` other than JSON is 415 `unsupported_media_type` (none
/// at all is accepted, for hand-written requests); bytes that are not the expected JSON are
/// 400 `invalid_json` with serde's sentence (what is wrong, line and column).
pub(super) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        let json = essence.eq_ignore_ascii_case("application/json")
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected Content-Type: application/json, got {ct:?}"),
            ));
        }
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_json(format!("the body is not the expected JSON: {e}")))
}
