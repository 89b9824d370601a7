//! The two request headers of the command routes: `Prefer: wait=N` (RFC 7240: wait up to N
//! seconds for the decision) and `Idempotency-Key` (a re-sent command is the same command).
//! Pure: parsed and checked here, unit-tested without a server.

use crate::gateway::ApiError;
use axum::http::{HeaderMap, StatusCode};
use doorstep_schemas::events::OrderCommand;
use doorstep_schemas::model::{Actor, EventId, OrderId};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The longest `Prefer: wait` honoured; a longer one waits this long.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// The longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// What a command request asks of the gateway beyond its body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandHeaders {
    /// How long to wait for the decision (`Prefer: wait=N`, at most [`MAX_WAIT`]); `None`
    /// without the preference or with `wait=0`.
    pub wait: Option<Duration>,
    /// The client's idempotency key.
    pub key: Option<String>,
}

impl CommandHeaders {
    /// Reads `Prefer` and `Idempotency-Key`: 400 `invalid_prefer` for a `wait` that is not a
    /// number of seconds, 400 `invalid_idempotency_key` for a key that is empty, longer than
    /// [`MAX_KEY_LEN`], not printable ASCII, or given twice. Other preferences are ignored,
    /// as RFC 7240 asks.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        Ok(Self {
            wait: wait(headers)?,
            key: key(headers)?,
        })
    }
}

fn invalid_prefer(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_prefer", message)
}

/// The first `wait` preference of the `Prefer` header fields (RFC 7240 §2: `token [= word]`
/// then `;` parameters, comma separated; a preference given twice counts once, the first).
pub(super) fn wait(headers: &HeaderMap) -> Result<Option<Duration>, ApiError> {
    for field in headers.get_all("prefer") {
        let text = field
            .to_str()
            .map_err(|_| invalid_prefer("the Prefer header is not ASCII"))?;
        for preference in text.split(',') {
            let head = preference.split(';').next().unwrap_or_default().trim();
            let (name, value) = match head.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (head, None),
            };
            if !name.eq_ignore_ascii_case("wait") {
                continue;
            }
            let value = value.map(|v| {
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
            });
            let seconds = match value {
                Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    // All digits: too many of them is simply a long wait.
                    v.parse::<u64>().unwrap_or(u64::MAX)
                }
                _ => {
                    return Err(invalid_prefer(format!(
                        "Prefer: {head:?}: wait takes a whole number of seconds, e.g. `Prefer: wait=5` (at most {} are waited)",
                        MAX_WAIT.as_secs()
                    )));
                }
            };
            return Ok((seconds > 0).then(|| Duration::from_secs(seconds).min(MAX_WAIT)));
        }
    }
    Ok(None)
}

fn invalid_key(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_idempotency_key", message)
}

/// The `Idempotency-Key` header: a token or a quoted string (the IETF draft's sf-string).
fn key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut fields = headers.get_all("idempotency-key").iter();
    let Some(field) = fields.next() else {
        return Ok(None);
    };
    if fields.next().is_some() {
        return Err(invalid_key("give one Idempotency-Key header, not several"));
    }
    let text = field
        .to_str()
        .map_err(|_| invalid_key("the Idempotency-Key header is not printable ASCII"))?
        .trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if text.is_empty() || text.len() > MAX_KEY_LEN {
        return Err(invalid_key(format!(
            "an Idempotency-Key has 1 to {MAX_KEY_LEN} characters, got {}",
            text.len()
        )));
    }
    if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid_key(
            "an Idempotency-Key is printable ASCII (a UUID, for instance)",
        ));
    }
    Ok(Some(text.to_owned()))
}

/// A UUIDv8 from the SHA-256 of `domain` and the length-prefixed `parts`.
fn derived(domain: &str, parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    hash.update(domain.as_bytes());
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The event id of a command sent with idempotency key `key`: the same for the same actor,
/// order, command and key, so a re-sent command is recognised as the first one; different
/// for anything else (another actor's key never collides with this one's).
pub fn keyed_event_id(
    actor: &Actor,
    order: &OrderId,
    command: &OrderCommand,
    key: &str,
) -> EventId {
    // The command as JSON: every field of it, so another request under the same key is
    // another command (never a silently dropped one).
    let body = serde_json::to_vec(command).unwrap_or_default();
    EventId::new(derived(
        "doorstep.event.v1",
        &[
            actor.kind.as_str().as_bytes(),
            actor.id.as_bytes(),
            order.as_str().as_bytes(),
            &body,
            key.as_bytes(),
        ],
    ))
}

/// The order id of an order placed with idempotency key `key` and no `order_id` of its own:
/// the same for the same customer and key, so a re-sent placement places the same order.
pub fn keyed_order_id(customer: &Actor, key: &str) -> String {
    derived(
        "doorstep.order.v1",
        &[
            customer.kind.as_str().as_bytes(),
            customer.id.as_bytes(),
            key.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use doorstep_schemas::model::OrderStatus;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn parsed(pairs: &[(&'static str, &str)]) -> Result<CommandHeaders, &'static str> {
        CommandHeaders::from_headers(&headers(pairs)).map_err(|e| e.code)
    }

    #[test]
    fn wait_is_read_from_any_prefer_field_clamped_and_checked() {
        let secs = |pairs: &[(&'static str, &str)]| parsed(pairs).map(|h| h.wait);
        assert_eq!(secs(&[]), Ok(None));
        assert_eq!(
            secs(&[("prefer", "wait=5")]),
            Ok(Some(Duration::from_secs(5)))
        );
        assert_eq!(
            secs(&[("prefer", "respond-async, WAIT = 3 ; foo=bar")]),
            Ok(Some(Duration::from_secs(3)))
        );
        assert_eq!(
            secs(&[("prefer", "return=minimal"), ("prefer", "wait=\"2\"")]),
            Ok(Some(Duration::from_secs(2)))
        );
        // The first one counts.
        assert_eq!(
            secs(&[("prefer", "wait=1, wait=9")]),
            Ok(Some(Duration::from_secs(1)))
        );
        assert_eq!(secs(&[("prefer", "wait=60")]), Ok(Some(MAX_WAIT)));
        assert_eq!(
            secs(&[("prefer", "wait=99999999999999999999999")]),
            Ok(Some(MAX_WAIT))
        );
        assert_eq!(secs(&[("prefer", "wait=0")]), Ok(None));
        assert_eq!(secs(&[("prefer", "handling=lenient")]), Ok(None));
        for bad in ["wait", "wait=", "wait=-1", "wait=1.5", "wait=soon"] {
            assert_eq!(secs(&[("prefer", bad)]), Err("invalid_prefer"), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_are_one_printable_token() {
        let key = |pairs: &[(&'static str, &str)]| parsed(pairs).map(|h| h.key);
        assert_eq!(key(&[]), Ok(None));
        assert_eq!(
            key(&[("idempotency-key", "8e03978e-40d5-43e8-bc93-6894a57f9324")]),
            Ok(Some("8e03978e-40d5-43e8-bc93-6894a57f9324".into()))
        );
        assert_eq!(
            key(&[("idempotency-key", "\"retry me\"")]),
            Ok(Some("retry me".into()))
        );
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "\"\"", long.as_str()] {
            assert_eq!(
                key(&[("idempotency-key", bad)]),
                Err("invalid_idempotency_key"),
                "{bad:?}"
            );
        }
        assert_eq!(
            key(&[("idempotency-key", "a"), ("idempotency-key", "b")]),
            Err("invalid_idempotency_key")
        );
        let mut h = HeaderMap::new();
        h.insert(
            "idempotency-key",
            HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        );
        assert_eq!(
            CommandHeaders::from_headers(&h).map_err(|e| e.code),
            Err("invalid_idempotency_key")
        );
    }

    #[test]
    fn keyed_ids_are_stable_and_differ_by_actor_order_command_and_key() {
        let driver = Actor::driver("d-1");
        let order = OrderId::new("o-1");
        let pickup = OrderCommand::Transition {
            to: OrderStatus::PickedUp,
        };
        let id = keyed_event_id(&driver, &order, &pickup, "k1");
        assert_eq!(id, keyed_event_id(&driver, &order, &pickup, "k1"));
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 8);
        let others = [
            keyed_event_id(&Actor::driver("d-2"), &order, &pickup, "k1"),
            keyed_event_id(&Actor::customer("d-1"), &order, &pickup, "k1"),
            keyed_event_id(&driver, &OrderId::new("o-2"), &pickup, "k1"),
            keyed_event_id(
                &driver,
                &order,
                &OrderCommand::Transition {
                    to: OrderStatus::EnRoute,
                },
                "k1",
            ),
            keyed_event_id(&driver, &order, &pickup, "k2"),
        ];
        for other in &others {
            assert_ne!(&id, other);
        }
        let customer = Actor::customer("c-1");
        assert_eq!(
            keyed_order_id(&customer, "k1"),
            keyed_order_id(&customer, "k1")
        );
        assert_ne!(
            keyed_order_id(&customer, "k1"),
            keyed_order_id(&Actor::customer("c-2"), "k1")
        );
        assert_ne!(
            keyed_order_id(&customer, "k1"),
            keyed_order_id(&customer, "k2")
        );
    }
}
