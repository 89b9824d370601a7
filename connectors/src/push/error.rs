//! Errors of the push client and its ledger.

use crate::retry::{RetryClass, Retryable, retriable_http_status};
use std::time::Duration;

/// FCM's own error code, from the `google.firebase.fcm.v1.FcmError` entry of an error's
/// `details` (the FCM HTTP v1 `ErrorCode` enum).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FcmErrorCode {
    /// `UNSPECIFIED_ERROR`: no more information.
    UnspecifiedError,
    /// `INVALID_ARGUMENT` (400): a request parameter was invalid (token format, payload).
    InvalidArgument,
    /// `UNREGISTERED` (404): the token is no longer valid; stop sending to it.
    Unregistered,
    /// `SENDER_ID_MISMATCH` (403): the token belongs to another sender.
    SenderIdMismatch,
    /// `QUOTA_EXCEEDED` (429): a sending limit was hit; retry after the `Retry-After`.
    QuotaExceeded,
    /// `UNAVAILABLE` (503): FCM is overloaded; retry with backoff.
    Unavailable,
    /// `INTERNAL` (500): FCM failed; retry with backoff.
    Internal,
    /// `THIRD_PARTY_AUTH_ERROR` (401): the APNs certificate or web push key was refused.
    ThirdPartyAuthError,
    /// A code this client does not know.
    Other(String),
}

impl FcmErrorCode {
    /// Parses FCM's spelling (`UNREGISTERED`, ...).
    pub fn parse(code: &str) -> Self {
        match code {
            "UNSPECIFIED_ERROR" => Self::UnspecifiedError,
            "INVALID_ARGUMENT" => Self::InvalidArgument,
            "UNREGISTERED" => Self::Unregistered,
            "SENDER_ID_MISMATCH" => Self::SenderIdMismatch,
            "QUOTA_EXCEEDED" => Self::QuotaExceeded,
            "UNAVAILABLE" => Self::Unavailable,
            "INTERNAL" => Self::Internal,
            "THIRD_PARTY_AUTH_ERROR" => Self::ThirdPartyAuthError,
            other => Self::Other(other.to_owned()),
        }
    }

    /// FCM's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::UnspecifiedError => "UNSPECIFIED_ERROR",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::Unregistered => "UNREGISTERED",
            Self::SenderIdMismatch => "SENDER_ID_MISMATCH",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
            Self::ThirdPartyAuthError => "THIRD_PARTY_AUTH_ERROR",
            Self::Other(s) => s,
        }
    }
}

/// What went wrong sending a push.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be built (bad base URL, project id).
    #[error("invalid push client configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The message cannot be sent as it is (empty token or notification id); nothing was sent.
    #[error("invalid push message: {reason}")]
    InvalidMessage {
        /// What is wrong.
        reason: String,
    },
    /// The provider could not be reached, or the connection broke.
    #[error("push provider at {url} is unreachable: {source}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the request timeout.
    #[error("push request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// FCM answered with an error.
    #[error("push refused (HTTP {http_status} {status}{}): {message}", code.as_ref().map(|c| format!(", {}", c.as_str())).unwrap_or_default())]
    Rejected {
        /// HTTP status.
        http_status: u16,
        /// The canonical status (`INVALID_ARGUMENT`, `NOT_FOUND`, `UNAVAILABLE`, ...).
        status: String,
        /// FCM's error code from the details, when present.
        code: Option<FcmErrorCode>,
        /// FCM's message.
        message: String,
        /// The `Retry-After` of the answer, if any.
        retry_after: Option<Duration>,
    },
    /// An answer that is neither FCM's success nor its error JSON (a proxy's HTML page).
    #[error("unexpected push provider response (HTTP {http_status}): {detail}")]
    BadResponse {
        /// HTTP status.
        http_status: u16,
        /// What was wrong with it.
        detail: String,
        /// The `Retry-After` of the answer, if any.
        retry_after: Option<Duration>,
    },
    /// Another worker holds the claim on this notification (it is sending it now, or it
    /// crashed and the claim has not expired yet). Retry later.
    #[error("notification {notification_id} is being sent by another worker")]
    ClaimHeld {
        /// The notification.
        notification_id: String,
        /// When the claim expires, if known.
        retry_after: Option<Duration>,
    },
    /// The sent-ledger in Redis failed.
    #[error("push ledger: {0}")]
    Ledger(#[from] crate::redis::Error),
}

impl Error {
    /// Whether retrying later can succeed: network trouble, timeouts, 429 and 5xx answers,
    /// a claim held elsewhere, Redis trouble. Other 4xx answers are permanent.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } | Error::ClaimHeld { .. } => true,
            Error::Rejected { http_status, .. } | Error::BadResponse { http_status, .. } => {
                retriable_http_status(*http_status)
            }
            Error::Ledger(e) => e.is_retriable(),
            Error::Config { .. } | Error::InvalidMessage { .. } => false,
        }
    }

    /// Whether FCM says the token is gone (`UNREGISTERED`): the app was uninstalled or the
    /// token rotated. Never retried.
    pub fn is_unregistered(&self) -> bool {
        matches!(
            self,
            Error::Rejected {
                code: Some(FcmErrorCode::Unregistered),
                ..
            }
        )
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Rejected { retry_after, .. }
            | Error::BadResponse { retry_after, .. }
            | Error::ClaimHeld { retry_after, .. } => *retry_after,
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

    fn rejected(http_status: u16, code: Option<FcmErrorCode>) -> Error {
        Error::Rejected {
            http_status,
            status: "X".into(),
            code,
            message: "m".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn classification_follows_the_fcm_docs() {
        assert!(rejected(429, Some(FcmErrorCode::QuotaExceeded)).is_retriable());
        assert!(rejected(503, Some(FcmErrorCode::Unavailable)).is_retriable());
        assert!(rejected(500, Some(FcmErrorCode::Internal)).is_retriable());
        for (s, c) in [
            (400, FcmErrorCode::InvalidArgument),
            (404, FcmErrorCode::Unregistered),
            (403, FcmErrorCode::SenderIdMismatch),
            (401, FcmErrorCode::ThirdPartyAuthError),
        ] {
            assert!(!rejected(s, Some(c)).is_retriable(), "{s}");
        }
        assert!(rejected(404, Some(FcmErrorCode::Unregistered)).is_unregistered());
        assert_eq!(
            rejected(429, None).retry_class(),
            RetryClass::retriable_after(Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn codes_parse_both_ways() {
        for c in [
            "UNSPECIFIED_ERROR",
            "INVALID_ARGUMENT",
            "UNREGISTERED",
            "SENDER_ID_MISMATCH",
            "QUOTA_EXCEEDED",
            "UNAVAILABLE",
            "INTERNAL",
            "THIRD_PARTY_AUTH_ERROR",
            "NEW_THING",
        ] {
            assert_eq!(FcmErrorCode::parse(c).as_str(), c);
        }
        assert_eq!(
            FcmErrorCode::parse("NEW_THING"),
            FcmErrorCode::Other("NEW_THING".into())
        );
    }
}
