//! Unit and property tests of token signing and verification.

use super::*;
use doorstep_schemas::model::ActorKind;
use proptest::prelude::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_800_000_000;

fn key() -> TokenKey {
    TokenKey::new(SECRET).unwrap()
}

fn customer() -> Claims {
    Claims::new(ActorKind::Customer, "c-1", NOW + 3600)
}

#[test]
fn round_trip() {
    let claims = customer().for_order("o-1");
    let token = key().sign(&claims).unwrap();
    assert_eq!(key().verify(&token, NOW), Ok(claims));
    assert!(!token.contains('='), "unpadded: {token}");
}

#[test]
fn short_secrets_are_refused() {
    assert_eq!(
        TokenKey::new(b"short").unwrap_err(),
        KeyError::TooShort { len: 5, min: 32 }
    );
    assert!(!format!("{:?}", key()).contains("0123"));
}

#[test]
fn expiry_is_checked_against_the_given_clock() {
    let token = key().sign(&customer()).unwrap();
    assert!(key().verify(&token, NOW + 3599).is_ok());
    assert_eq!(
        key().verify(&token, NOW + 3600),
        Err(AuthError::Expired {
            exp: NOW + 3600,
            now: NOW + 3600
        })
    );
}

#[test]
fn another_secret_is_a_bad_signature() {
    let token = key().sign(&customer()).unwrap();
    let other = TokenKey::new(b"another secret, also 32 bytes long").unwrap();
    assert_eq!(other.verify(&token, NOW), Err(AuthError::BadSignature));
}

#[test]
fn a_forged_payload_is_a_bad_signature() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = key().sign(&customer()).unwrap();
    let (_, sig) = token.split_once('.').unwrap();
    let forged =
        URL_SAFE_NO_PAD.encode(br#"{"sub_kind":"SYSTEM","sub":"dispatch","exp":9999999999}"#);
    assert_eq!(
        key().verify(&format!("{forged}.{sig}"), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn malformed_tokens() {
    for t in ["", "abc", "a.b.c", "..", "!!!.???", &"a".repeat(5000)] {
        let e = key().verify(t, NOW).unwrap_err();
        assert!(
            matches!(e, AuthError::Malformed(_) | AuthError::BadSignature),
            "{t:?}: {e:?}"
        );
        assert!(e.is_unauthenticated());
    }
    // Signed but not claims: malformed, found only after the signature matched.
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#);
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(payload.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert!(matches!(
        key().verify(&format!("{payload}.{sig}"), NOW),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn kind_and_order_restrictions() {
    let c = customer();
    assert!(c.require_kind(&[ActorKind::Customer]).is_ok());
    let e = c
        .require_kind(&[ActorKind::Restaurant, ActorKind::System])
        .unwrap_err();
    assert!(!e.is_unauthenticated());
    assert_eq!(
        e.to_string(),
        "a CUSTOMER token cannot do this (allowed: RESTAURANT, SYSTEM)"
    );
    assert!(c.require_order("anything").is_ok(), "unrestricted");
    let scoped = c.for_order("o-1");
    assert!(scoped.require_order("o-1").is_ok());
    assert!(matches!(
        scoped.require_order("o-2"),
        Err(AuthError::WrongOrder { .. })
    ));
}

fn any_claims() -> impl Strategy<Value = Claims> {
    (
        prop::sample::select(ActorKind::ALL.to_vec()),
        "[A-Za-z0-9._:-]{1,40}",
        prop::option::of("[a-z0-9-]{1,40}"),
        (NOW + 1)..i64::MAX,
    )
        .prop_map(|(kind, sub, order, exp)| Claims {
            sub_kind: kind,
            sub,
            order_id: order,
            exp,
        })
}

proptest! {
    #[test]
    fn signed_claims_round_trip(claims in any_claims()) {
        let token = key().sign(&claims).unwrap();
        prop_assert_eq!(key().verify(&token, NOW), Ok(claims));
    }

    /// Changing any single byte of a token (to any other ASCII byte) makes it fail.
    #[test]
    fn any_tampered_byte_fails(claims in any_claims(), pos in any::<prop::sample::Index>(), byte in 0u8..128) {
        let token = key().sign(&claims).unwrap();
        let mut bytes = token.into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8(bytes).unwrap();
        let e = key().verify(&tampered, NOW).unwrap_err();
        prop_assert!(e.is_unauthenticated(), "{:?}", e);
    }

    /// Truncating or extending a token makes it fail.
    #[test]
    fn truncated_or_extended_fails(claims in any_claims(), cut in 1usize..20, extra in "[A-Za-z0-9_-]{1,4}") {
        let token = key().sign(&claims).unwrap();
        let short = &token[..token.len().saturating_sub(cut)];
        prop_assert!(key().verify(short, NOW).is_err());
        let longer = format!("{token}{extra}");
        prop_assert!(key().verify(&longer, NOW).is_err());
    }
}
