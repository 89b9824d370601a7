//! Bearer tokens: HMAC-SHA256-signed claims, stateless to verify.
//!
//! A token is `key_id "." base64url(json claims) "." base64url(hmac_sha256(secret, key_id "."
//! claims part))`, unpadded. The key id names the secret among the process's [`TokenKeys`]
//! (the current one and those kept during a rotation). The claims say who the bearer is
//! ([`Claims::sub_kind`] and [`Claims::sub`]), what the token may do ([`Claims::scope`]:
//! `read` or `act`), optionally which single order it is for ([`Claims::order_id`]), and until
//! when it is valid ([`Claims::exp`], Unix seconds).
//!
//! Verification ([`TokenKeys::verify`]) checks, in this order: the shape (three parts, bounded
//! length, a known key id), the signature in constant time, then the claims' JSON, then the
//! expiry and the longest lifetime accepted against a clock reading the caller passes in (so
//! tests and replays choose the time). Every failure is an [`AuthError`]; what a route admits
//! is checked after with [`Claims::require_kind`], [`Claims::require_scope`] and
//! [`Claims::require_order`].
//!
//! ```
//! use doorstep_pipelines::auth::{Claims, TokenKey};
//! use doorstep_schemas::model::ActorKind;
//!
//! let key = TokenKey::new(b"a secret of at least thirty-two bytes!")?;
//! let token = key.sign(&Claims::new(ActorKind::Customer, "c-1", 1_900_000_000))?;
//! let claims = key.verify(&token, 1_800_000_000)?;
//! assert_eq!(claims.sub, "c-1");
//! assert!(key.verify(&token, 1_900_000_000).is_err()); // expired
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Mint one from the command line with `doorstep token --kind customer --id c-1`.

mod claims;
mod error;
mod key;
mod keys;

pub use claims::{Claims, Scope};
pub use error::{AuthError, KeyError};
pub use key::{DEFAULT_KEY_ID, MAX_TOKEN_LEN, MIN_SECRET_LEN, TokenKey, unix_now, valid_key_id};
pub use keys::{DEFAULT_MAX_TTL_S, TokenKeys};

#[cfg(test)]
mod tests;
