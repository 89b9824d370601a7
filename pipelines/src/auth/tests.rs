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
    let (_, sig) = token.rsplit_once('.').unwrap();
    let forged = URL_SAFE_NO_PAD
        .encode(br#"{"sub_kind":"SYSTEM","sub":"dispatch","scope":"act","exp":9999999999}"#);
    assert_eq!(
        key().verify(&format!("k1.{forged}.{sig}"), NOW),
        Err(AuthError::BadSignature)
    );
}

#[test]
fn malformed_tokens() {
    for t in [
        "",
        "abc",
        "a.b.c",
        "..",
        "!!!.???",
        "k1.a.b.c",
        "k1..",
        &"a".repeat(5000),
    ] {
        let e = key().verify(t, NOW).unwrap_err();
        assert!(
            matches!(
                e,
                AuthError::Malformed(_) | AuthError::BadSignature | AuthError::UnknownKey
            ),
            "{t:?}: {e:?}"
        );
        assert!(e.is_unauthenticated());
    }
    // Signed but not claims: malformed, found only after the signature matched.
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    let payload = format!("k1.{}", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
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
        prop::sample::select(vec![Scope::Read, Scope::Act]),
        (NOW + 1)..i64::MAX,
    )
        .prop_map(|(kind, sub, order, scope, exp)| Claims {
            sub_kind: kind,
            sub,
            order_id: order,
            scope,
            exp,
        })
}

#[test]
fn a_key_set_verifies_the_current_and_previous_keys_and_nothing_else() {
    let old = TokenKey::with_id("2025-a", SECRET).unwrap();
    let new = TokenKey::with_id("2026-b", b"the new secret, also 32+ bytes long").unwrap();
    let keys = TokenKeys::new(new.clone(), vec![old.clone()]).unwrap();
    let claims = customer();
    // Both keys' tokens verify during the rotation; new tokens are signed with the new key.
    assert_eq!(
        keys.verify(&old.sign(&claims).unwrap(), NOW),
        Ok(claims.clone())
    );
    let signed = keys.sign(&claims).unwrap();
    assert!(signed.starts_with("2026-b."), "{signed}");
    assert_eq!(keys.verify(&signed, NOW), Ok(claims.clone()));
    // Once the old key is dropped its tokens are unknown.
    let after = TokenKeys::new(new.clone(), vec![]).unwrap();
    assert_eq!(
        after.verify(&old.sign(&claims).unwrap(), NOW),
        Err(AuthError::UnknownKey)
    );
    // A token naming the new key but signed with the old secret is forged.
    let (_, rest) = old
        .sign(&claims)
        .unwrap()
        .split_once('.')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    assert_eq!(
        keys.verify(&format!("2026-b.{rest}"), NOW),
        Err(AuthError::BadSignature)
    );
    assert!(matches!(
        TokenKeys::new(
            new.clone(),
            vec![TokenKey::with_id("2026-b", SECRET).unwrap()]
        ),
        Err(KeyError::DuplicateKeyId(_))
    ));
    assert!(TokenKey::with_id("bad id", SECRET).is_err());
    assert!(!format!("{keys:?}").contains("0123"));
}

#[test]
fn a_token_living_longer_than_the_maximum_is_refused() {
    let keys = TokenKeys::from(key()).with_max_ttl_s(3600);
    let ok = key()
        .sign(&Claims::new(ActorKind::Customer, "c-1", NOW + 3600))
        .unwrap();
    assert!(keys.verify(&ok, NOW).is_ok());
    let long = key()
        .sign(&Claims::new(ActorKind::Customer, "c-1", NOW + 3601))
        .unwrap();
    let e = keys.verify(&long, NOW).unwrap_err();
    assert_eq!(
        e,
        AuthError::TooLong {
            expires_in_s: 3601,
            max_ttl_s: 3600
        }
    );
    assert!(e.is_unauthenticated());
    // Forever tokens are refused by default (one day).
    let forever = key()
        .sign(&Claims::new(ActorKind::System, "x", i64::MAX))
        .unwrap();
    assert!(TokenKeys::from(key()).verify(&forever, NOW).is_err());
}

#[test]
fn a_read_token_cannot_act() {
    let read = customer().read_only();
    assert!(read.require_scope(Scope::Read).is_ok());
    let e = read.require_scope(Scope::Act).unwrap_err();
    assert!(!e.is_unauthenticated(), "403, not 401");
    assert!(customer().require_scope(Scope::Act).is_ok());
    // The scope is signed: it cannot be raised.
    let token = key().sign(&read).unwrap();
    assert_eq!(key().verify(&token, NOW).unwrap().scope, Scope::Read);
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
