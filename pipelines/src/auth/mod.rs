//! Bearer tokens: HMAC-SHA256-signed claims, stateless to verify.
//!
//! A token is `base64url(json claims) "." base64url(hmac_sha256(secret, first part))`, both
//! parts unpadded. The claims say who the bearer is ([`Claims::sub_kind`] and
//! [`Claims::sub`]), optionally which single order the token is for ([`Claims::order_id`]),
//! and until when it is valid ([`Claims::exp`], Unix seconds).
//!
//! Verification ([`TokenKey::verify`]) checks, in this order: the shape (two canonical
//! base64url parts, bounded length), the signature in constant time, then the claims' JSON,
//! then the expiry against a clock reading the caller passes in (so tests and replays choose
//! the time). Every failure is an [`AuthError`]; what a route admits is checked after with
//! [`Claims::require_kind`] and [`Claims::require_order`].
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

pub use claims::Claims;
pub use error::{AuthError, KeyError};
pub use key::{MAX_TOKEN_LEN, MIN_SECRET_LEN, TokenKey, unix_now};

#[cfg(test)]
mod tests;
