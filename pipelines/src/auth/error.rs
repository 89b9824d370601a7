//! Why a token is refused, and why a key cannot be made.

use super::Scope;
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
    /// Signed with a key id this process does not know (retired, or never issued).
    #[error("the bearer token's key is not known here (retired or never issued)")]
    UnknownKey,
    /// The token claims to stay valid longer than the longest lifetime accepted.
    #[error(
        "the bearer token lives too long: it expires in {expires_in_s} s, at most {max_ttl_s} s are accepted"
    )]
    TooLong {
        /// Seconds from now to its expiry.
        expires_in_s: i64,
        /// The longest lifetime accepted, seconds.
        max_ttl_s: i64,
    },
    /// A valid token whose scope does not cover this action (a read token acting).
    #[error("a token with scope `{found}` cannot do this (needs `{needed}`)")]
    WrongScope {
        /// The token's scope.
        found: Scope,
        /// The scope the action needs.
        needed: Scope,
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
            Self::Missing
                | Self::Malformed(_)
                | Self::BadSignature
                | Self::Expired { .. }
                | Self::UnknownKey
                | Self::TooLong { .. }
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
    /// A key id that is not 1 to 32 letters, digits, `_` or `-`.
    #[error("a key id must be 1 to 32 letters, digits, '_' or '-', got {0:?}")]
    BadKeyId(String),
    /// Two keys of a key set share an id.
    #[error("two token keys share the id {0:?}")]
    DuplicateKeyId(String),
    /// The claims could not be serialised (not expected with [`Claims`](super::Claims)).
    #[error("the claims cannot be serialised: {0}")]
    Claims(String),
}
