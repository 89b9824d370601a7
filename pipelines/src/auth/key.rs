//! Signing and verifying tokens with one HMAC-SHA256 secret and its key id.

use super::{AuthError, Claims, KeyError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret accepted, in bytes (HMAC-SHA256's output size).
pub const MIN_SECRET_LEN: usize = 32;
/// The longest token accepted, in bytes: anything longer is malformed without further work.
pub const MAX_TOKEN_LEN: usize = 4096;
/// The key id of a key made without one ([`TokenKey::new`]), and `gateway.auth_key_id`'s
/// default.
pub const DEFAULT_KEY_ID: &str = "k1";

type HmacSha256 = Hmac<Sha256>;

/// A secret with its key id, ready to sign and verify tokens. Cheap to clone; its `Debug`
/// hides the secret.
#[derive(Clone)]
pub struct TokenKey {
    id: String,
    mac: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKey({}, ********)", self.id)
    }
}

/// The three parts of a token, split but not yet checked.
pub(super) struct Parts<'a> {
    pub(super) key_id: &'a str,
    /// `key_id "." payload`: what the signature covers.
    pub(super) signed: &'a str,
    pub(super) payload: &'a str,
    pub(super) signature: &'a str,
}

/// Splits `token` into key id, payload and signature (shape only).
pub(super) fn split(token: &str) -> Result<Parts<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed("longer than 4096 bytes"));
    }
    let shape = AuthError::Malformed("expected three parts: key id, claims, signature");
    let (signed, signature) = token.rsplit_once('.').ok_or(shape.clone())?;
    let (key_id, payload) = signed.split_once('.').ok_or(shape.clone())?;
    if payload.contains('.') || !valid_key_id(key_id) {
        return Err(shape);
    }
    Ok(Parts {
        key_id,
        signed,
        payload,
        signature,
    })
}

/// Whether `id` is 1 to 32 letters, digits, `_` or `-`.
pub fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl TokenKey {
    /// A key from `secret` (at least [`MIN_SECRET_LEN`] bytes) with id [`DEFAULT_KEY_ID`].
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        Self::with_id(DEFAULT_KEY_ID, secret)
    }

    /// A key from `secret` (at least [`MIN_SECRET_LEN`] bytes) with id `id` (1 to 32 letters,
    /// digits, `_`, `-`): tokens it signs name it, so that a key set can hold several.
    pub fn with_id(id: &str, secret: &[u8]) -> Result<Self, KeyError> {
        if !valid_key_id(id) {
            return Err(KeyError::BadKeyId(id.to_owned()));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort {
                len: secret.len(),
                min: MIN_SECRET_LEN,
            });
        }
        // HMAC takes keys of any length, so this cannot fail; map it anyway.
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort {
            len: secret.len(),
            min: MIN_SECRET_LEN,
        })?;
        Ok(Self {
            id: id.to_owned(),
            mac,
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token for `claims`: `key id "." base64url(claims) "." base64url(signature)`.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let json = serde_json::to_vec(claims).map_err(|e| KeyError::Claims(e.to_string()))?;
        let signed = format!("{}.{}", self.id, URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{signed}.{signature}"))
    }

    /// The claims of `token` if this key signed it and it has not expired at `now` (Unix
    /// seconds). The signature is compared in constant time, and checked before the claims
    /// are parsed. Lifetime limits are the key set's ([`super::TokenKeys::verify`]).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let parts = split(token)?;
        if parts.key_id != self.id {
            return Err(AuthError::UnknownKey);
        }
        self.verify_parts(&parts, now)
    }

    pub(super) fn verify_parts(&self, parts: &Parts<'_>, now: i64) -> Result<Claims, AuthError> {
        let signature = URL_SAFE_NO_PAD
            .decode(parts.signature)
            .map_err(|_| AuthError::Malformed("the signature is not unpadded base64url"))?;
        let mut mac = self.mac.clone();
        mac.update(parts.signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(parts.payload)
            .map_err(|_| AuthError::Malformed("the claims are not unpadded base64url"))?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|_| AuthError::Malformed("the claims are not the expected JSON"))?;
        if claims.sub.is_empty() {
            return Err(AuthError::Malformed("the subject is empty"));
        }
        if now >= claims.exp {
            return Err(AuthError::Expired {
                exp: claims.exp,
                now,
            });
        }
        Ok(claims)
    }
}

/// The wall clock in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
