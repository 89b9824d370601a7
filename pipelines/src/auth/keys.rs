//! The key set a process verifies tokens with: the current key (which signs) and the
//! previous ones still accepted during a rotation, each named by its key id, plus the
//! longest token lifetime accepted.
//!
//! Rotation: give the new secret a new id (`gateway.auth_key_id`, `gateway.auth_secret`) and
//! move the old one to `gateway.auth_previous_keys` (`id=secret`); tokens of both verify.
//! Once every token signed with the old key has expired (at most `gateway.token_max_ttl_s`),
//! drop it: its tokens are then refused as `UnknownKey`.

use super::key::split;
use super::{AuthError, Claims, KeyError, TokenKey};
use crate::config::Config;

/// Default longest lifetime of a token, seconds (one day).
pub const DEFAULT_MAX_TTL_S: i64 = 86_400;

/// The keys tokens are verified with. Cheap to clone; its `Debug` shows only key ids.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    current: TokenKey,
    previous: Vec<TokenKey>,
    max_ttl_s: i64,
}

impl From<TokenKey> for TokenKeys {
    /// One key, the default maximum lifetime.
    fn from(key: TokenKey) -> Self {
        Self {
            current: key,
            previous: Vec::new(),
            max_ttl_s: DEFAULT_MAX_TTL_S,
        }
    }
}

impl TokenKeys {
    /// `current` signs and verifies; `previous` only verify. Key ids must differ.
    pub fn new(current: TokenKey, previous: Vec<TokenKey>) -> Result<Self, KeyError> {
        let mut ids = vec![current.id()];
        for k in &previous {
            if ids.contains(&k.id()) {
                return Err(KeyError::DuplicateKeyId(k.id().to_owned()));
            }
            ids.push(k.id());
        }
        Ok(Self {
            current,
            previous,
            max_ttl_s: DEFAULT_MAX_TTL_S,
        })
    }

    /// The key set of `config` (`gateway.auth_secret` with `gateway.auth_key_id`,
    /// `gateway.auth_previous_keys`, `gateway.token_max_ttl_s`); `None` without a secret.
    pub fn from_config(config: &Config) -> Result<Option<Self>, KeyError> {
        let Some(secret) = &config.auth_secret else {
            return Ok(None);
        };
        let current = TokenKey::with_id(&config.auth_key_id, secret.expose().as_bytes())?;
        let previous = config
            .auth_previous_keys
            .iter()
            .map(|k| TokenKey::with_id(&k.key_id, k.secret.expose().as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(
            Self::new(current, previous)?.with_max_ttl_s(config.token_max_ttl_s),
        ))
    }

    /// Sets the longest lifetime accepted: a token expiring later than `max_ttl_s` after the
    /// verification time is refused.
    pub fn with_max_ttl_s(mut self, max_ttl_s: i64) -> Self {
        self.max_ttl_s = max_ttl_s.max(1);
        self
    }

    /// The key that signs.
    pub fn current(&self) -> &TokenKey {
        &self.current
    }

    /// The longest lifetime accepted, seconds.
    pub fn max_ttl_s(&self) -> i64 {
        self.max_ttl_s
    }

    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        self.current.sign(claims)
    }

    /// The claims of `token` if a key of the set signed it, it has not expired at `now` and
    /// it does not live longer than the maximum lifetime.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let parts = split(token)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == parts.key_id)
            .ok_or(AuthError::UnknownKey)?;
        let claims = key.verify_parts(&parts, now)?;
        let expires_in_s = claims.exp.saturating_sub(now);
        if expires_in_s > self.max_ttl_s {
            return Err(AuthError::TooLong {
                expires_in_s,
                max_ttl_s: self.max_ttl_s,
            });
        }
        Ok(claims)
    }
}
