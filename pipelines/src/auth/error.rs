//! Why a token is refused, and why a key cannot be made.

use doorstep_schemas::model::ActorKind;

/// Why a bearer token does not authorise a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("a bearer token is required")]
    Missing,
    /// Not two base64url parts, too long, or claims that are not the expected JSON.
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match the claims (forged, tampered, or another secret).
    #[error("the bearer token's signature is not valid")]
    BadSignature,
    /// The token's `exp` is not after the current time.
    #[error("the bearer token expired at {exp} (now {now})")]
    Expired {
        /// The token's expiry, Unix seconds.
        exp: i64,
        /// The clock reading it was checked against.
        now: i64,
    },
    /// A valid token, but for a kind of actor this action does not admit.
    #[error("a {found} token cannot do this (allowed: {})", kinds(allowed))]
    WrongKind {
        /// The token's kind.
        found: ActorKind,
        /// The kinds the action admits.
        allowed: Vec<ActorKind>,
    },
    /// A valid token restricted to another order.
    #[error("this token is for order {token_order}, not {requested}")]
    WrongOrder {
        /// The order the token is restricted to.
        token_order: String,
        /// The order of the request.
        requested: String,
    },
}

impl AuthError {
    /// Whether the failure means "who are you?" (HTTP 401) rather than "you may not" (403).
    pub const fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            Self::Missing | Self::Malformed(_) | Self::BadSignature | Self::Expired { .. }
        )
    }
}

fn kinds(allowed: &[ActorKind]) -> String {
    allowed
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a signing key cannot be made from a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Shorter than [`MIN_SECRET_LEN`](super::MIN_SECRET_LEN) bytes.
    #[error("the token secret must be at least {min} bytes, got {len}")]
    TooShort {
        /// The secret's length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The claims could not be serialised (not expected with [`Claims`](super::Claims)).
    #[error("the claims cannot be serialised: {0}")]
    Claims(String),
}
