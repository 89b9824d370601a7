//! Signing and verifying tokens with one HMAC-SHA256 secret.

use super::{AuthError, Claims, KeyError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest secret accepted, in bytes (HMAC-SHA256's output size).
pub const MIN_SECRET_LEN: usize = 32;
/// The longest token accepted, in bytes: anything longer is malformed without further work.
pub const MAX_TOKEN_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// A secret ready to sign and verify tokens. Cheap to clone; its `Debug` hides the secret.
#[derive(Clone)]
pub struct TokenKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(********)")
    }
}

impl TokenKey {
    /// A key from `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
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
        Ok(Self { mac })
    }

    /// The token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let json = serde_json::to_vec(claims).map_err(|e| KeyError::Claims(e.to_string()))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        Ok(format!("{payload}.{signature}"))
    }

    /// The claims of `token` if it was signed with this key and has not expired at `now`
    /// (Unix seconds). The signature is compared in constant time, and checked before the
    /// claims are parsed.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("longer than 4096 bytes"));
        }
        let Some((payload, signature)) = token.split_once('.') else {
            return Err(AuthError::Malformed("expected two parts separated by '.'"));
        };
        if signature.contains('.') {
            return Err(AuthError::Malformed("expected two parts separated by '.'"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::Malformed("the signature is not unpadded base64url"))?;
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
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
