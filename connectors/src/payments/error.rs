//! Errors of the payments client.

use crate::retry::{RetryClass, Retryable, retriable_http_status};
use std::time::Duration;

/// Stripe's error `type`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StripeErrorType {
    /// `api_error`: a problem on Stripe's side.
    ApiError,
    /// `card_error`: the payment method cannot be used.
    CardError,
    /// `idempotency_error`: the idempotency key was used with other parameters.
    IdempotencyError,
    /// `invalid_request_error`: the request is wrong (missing parameter, unknown object,
    /// already refunded, rate limited).
    InvalidRequestError,
    /// A type this client does not know.
    Other(String),
}

impl StripeErrorType {
    /// Parses Stripe's spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "api_error" => Self::ApiError,
            "card_error" => Self::CardError,
            "idempotency_error" => Self::IdempotencyError,
            "invalid_request_error" => Self::InvalidRequestError,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Stripe's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ApiError => "api_error",
            Self::CardError => "card_error",
            Self::IdempotencyError => "idempotency_error",
            Self::InvalidRequestError => "invalid_request_error",
            Self::Other(s) => s,
        }
    }
}

/// What went wrong requesting a refund.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be built (bad base URL, empty key).
    #[error("invalid payments client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The amount is not a positive number of cents; nothing was sent.
    #[error("invalid refund amount {amount_cents} (must be > 0 cents)")]
    InvalidAmount {
        /// The amount asked for.
        amount_cents: i64,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("payment provider at {url} is unreachable: {source}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the request timeout.
    #[error("refund request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Stripe answered with an error.
    #[error("refund refused (HTTP {http_status}, {}{}): {message}", error_type.as_str(), code.as_ref().map(|c| format!(", {c}")).unwrap_or_default())]
    Api {
        /// HTTP status.
        http_status: u16,
        /// Stripe's error type.
        error_type: StripeErrorType,
        /// Stripe's error code (`charge_already_refunded`, `rate_limit`, ...), when given.
        code: Option<String>,
        /// Stripe's message.
        message: String,
        /// The `Stripe-Should-Retry` header, when present: Stripe's own verdict on whether
        /// the same request can succeed (it overrides the status-based rule).
        should_retry: Option<bool>,
        /// The `Retry-After` of the answer, if any.
        retry_after: Option<Duration>,
    },
    /// Stripe created the refund but it failed or was canceled.
    #[error("refund {refund_id} ended {status}{}", failure_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    RefundFailed {
        /// Stripe's refund id.
        refund_id: String,
        /// `failed` or `canceled`.
        status: String,
        /// Stripe's `failure_reason`, when given.
        failure_reason: Option<String>,
    },
    /// An answer that is neither a refund object nor Stripe's error JSON.
    #[error("unexpected payment provider response (HTTP {http_status}): {detail}")]
    BadResponse {
        /// HTTP status.
        http_status: u16,
        /// What was wrong with it.
        detail: String,
    },
}

impl Error {
    /// Whether retrying the same request (same idempotency key) later can succeed.
    ///
    /// `Stripe-Should-Retry` decides when present. Otherwise 409 (a concurrent request with
    /// the same key), 429 and 5xx are retriable, other 4xx are not. Note that Stripe replays
    /// the saved answer of a key once the endpoint started executing — a 500 included — and
    /// says so with `Stripe-Should-Retry: false`; such a refund needs reconciliation by a
    /// person, not a retry.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } => true,
            Error::Api {
                http_status,
                should_retry,
                ..
            } => should_retry.unwrap_or(*http_status == 409 || retriable_http_status(*http_status)),
            Error::BadResponse { http_status, .. } => retriable_http_status(*http_status),
            Error::Config { .. } | Error::InvalidAmount { .. } | Error::RefundFailed { .. } => {
                false
            }
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl Retryable for Error {
    fn retry_class(&self) -> RetryClass {
        RetryClass::of(self.is_retriable(), self.retry_after())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(http_status: u16, should_retry: Option<bool>) -> Error {
        Error::Api {
            http_status,
            error_type: StripeErrorType::ApiError,
            code: None,
            message: "m".into(),
            should_retry,
            retry_after: None,
        }
    }

    #[test]
    fn classification() {
        for s in [409, 429, 500, 502, 503] {
            assert!(api(s, None).is_retriable(), "{s}");
        }
        for s in [400, 401, 402, 403, 404] {
            assert!(!api(s, None).is_retriable(), "{s}");
        }
        assert!(!api(500, Some(false)).is_retriable());
        assert!(api(400, Some(true)).is_retriable());
        assert!(
            !Error::RefundFailed {
                refund_id: "re_1".into(),
                status: "failed".into(),
                failure_reason: None
            }
            .is_retriable()
        );
    }

    #[test]
    fn types_parse_both_ways() {
        for t in [
            "api_error",
            "card_error",
            "idempotency_error",
            "invalid_request_error",
            "other",
        ] {
            assert_eq!(StripeErrorType::parse(t).as_str(), t);
        }
    }
}
