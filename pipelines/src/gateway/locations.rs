//! `POST /v1/drivers/{driver_id}/location`: GPS ingest. A driver app sends one ping or a
//! batch `{pings: [...]}` (what it buffered while offline); each becomes a `LocationPing` on
//! `drivers.locations.v1` keyed by driver id. The gateway checks ranges and shape; staleness,
//! order, duplicates and impossible speeds are the location pipeline's filter's business.

use super::extract::{Caller, body_error, parse_json};
use super::{ApiError, GatewayState};
use crate::auth::Claims;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use doorstep_operators::order::validate_id;
use doorstep_schemas::events::LocationPing;
use doorstep_schemas::model::{ActorKind, DriverId, EventId, GeoPoint, Timestamp};
use serde::{Deserialize, Serialize};

/// Most pings in one request.
pub const MAX_PINGS: usize = 100;
/// How far in the future a ping's `recorded_at` may be (phone clock skew), in milliseconds.
pub const MAX_CLOCK_SKEW_MS: i64 = 60_000;
/// Largest `speed_mps` a phone may report (no car goes 200 m/s; more is a broken sensor).
pub const MAX_REPORTED_SPEED_MPS: f64 = 200.0;
/// Largest `accuracy_m` a phone may report (100 km: no use for tracking beyond).
pub const MAX_REPORTED_ACCURACY_M: f64 = 100_000.0;

/// One ping as a driver app sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PingBody {
    /// Latitude, degrees.
    lat: f64,
    /// Longitude, degrees.
    lng: f64,
    /// Horizontal accuracy, metres.
    #[serde(default)]
    accuracy_m: Option<f64>,
    /// Heading from north, degrees in 0..360.
    #[serde(default)]
    heading_deg: Option<f64>,
    /// Speed, m/s.
    #[serde(default)]
    speed_mps: Option<f64>,
    /// When the phone took the fix, ms since the epoch (default: when the gateway got it).
    #[serde(default)]
    recorded_at: Option<i64>,
    /// The app's id for the ping, so a resend is recognised (default: a UUIDv7).
    #[serde(default)]
    ping_id: Option<String>,
}

/// A request's pings as sent: one ping, or a batch `{pings: [...]}`. Read from the bytes in
/// one pass (a ping's fields or `pings`, never both).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PingsBody {
    /// A batch.
    #[serde(default)]
    pings: Option<Vec<PingBody>>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lng: Option<f64>,
    #[serde(default)]
    accuracy_m: Option<f64>,
    #[serde(default)]
    heading_deg: Option<f64>,
    #[serde(default)]
    speed_mps: Option<f64>,
    #[serde(default)]
    recorded_at: Option<i64>,
    #[serde(default)]
    ping_id: Option<String>,
}

impl PingsBody {
    /// The pings, or why the body is not one ping or one batch.
    fn into_pings(self) -> Result<Vec<PingBody>, ApiError> {
        let invalid = |what: &str| {
            ApiError::invalid_json(format!("the body is not the expected JSON: {what}"))
        };
        let single = self.lat.is_some()
            || self.lng.is_some()
            || self.accuracy_m.is_some()
            || self.heading_deg.is_some()
            || self.speed_mps.is_some()
            || self.recorded_at.is_some()
            || self.ping_id.is_some();
        match (self.pings, single) {
            (Some(_), true) => Err(invalid(
                "a body is one ping or a batch `{\"pings\": [...]}`, not both",
            )),
            (Some(pings), false) => Ok(pings),
            (None, _) => {
                let lat = self.lat.ok_or_else(|| invalid("missing field `lat`"))?;
                let lng = self.lng.ok_or_else(|| invalid("missing field `lng`"))?;
                Ok(vec![PingBody {
                    lat,
                    lng,
                    accuracy_m: self.accuracy_m,
                    heading_deg: self.heading_deg,
                    speed_mps: self.speed_mps,
                    recorded_at: self.recorded_at,
                    ping_id: self.ping_id,
                }])
            }
        }
    }
}

/// The answer to accepted pings: 202 with their ids, in the order sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingsAccepted {
    /// The driver.
    pub driver_id: String,
    /// How many pings were produced.
    pub accepted: usize,
    /// Their ids.
    pub ping_ids: Vec<String>,
}

/// `POST /v1/drivers/{driver_id}/location` (that driver's token).
pub(super) async fn post_location(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PingsAccepted>), ApiError> {
    let driver_id = driver_path(&claims, path)?;
    let body = body.map_err(body_error)?;
    let pings: PingsBody = parse_json(&headers, &body)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(accept(&s, driver_id, pings).await?),
    ))
}

/// The driver id of the path, when `claims` are that driver's.
pub(super) fn driver_path(
    claims: &Claims,
    path: Result<Path<String>, PathRejection>,
) -> Result<String, ApiError> {
    claims.require_kind(&[ActorKind::Driver])?;
    // Also for the stream's GET upgrade: every frame it carries acts.
    claims.require_scope(crate::auth::Scope::Act)?;
    let Path(driver_id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    validate_id("driver_id", &driver_id)?;
    if claims.sub != driver_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token is for driver {}, not {driver_id}", claims.sub),
        ));
    }
    Ok(driver_id)
}

/// Checks one ping or a batch (`body`) of `driver_id` and produces them: the answer of the
/// POST route and of each frame of the driver stream.
pub(super) async fn accept(
    s: &GatewayState,
    driver_id: String,
    body: PingsBody,
) -> Result<PingsAccepted, ApiError> {
    let pings = body.into_pings()?;
    if pings.is_empty() {
        return Err(unprocessable(
            "no_pings",
            "a batch needs at least one ping".into(),
        ));
    }
    if pings.len() > MAX_PINGS {
        return Err(unprocessable(
            "too_many_pings",
            format!("a batch has at most {MAX_PINGS} pings, got {}", pings.len()),
        ));
    }
    let received_at = Timestamp::now();
    let max_age_ms = s.config().max_ping_age_ms;
    let pings = pings
        .into_iter()
        .enumerate()
        .map(|(i, p)| to_ping(i, p, &driver_id, received_at, max_age_ms))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in pings.iter().enumerate() {
        s.limits().check_area(&format!("ping {i}"), p.location)?;
    }
    produce(s, &driver_id, &pings).await?;
    Ok(PingsAccepted {
        driver_id,
        accepted: pings.len(),
        ping_ids: pings.into_iter().map(|p| p.ping_id.0).collect(),
    })
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// Checks one ping's ranges and makes the record.
fn to_ping(
    i: usize,
    p: PingBody,
    driver_id: &str,
    received_at: Timestamp,
    max_age_ms: i64,
) -> Result<LocationPing, ApiError> {
    let location = GeoPoint::new(p.lat, p.lng)
        .map_err(|e| unprocessable("invalid_location", format!("ping {i}: {e}")))?;
    let check = |v: Option<f64>, ok: fn(f64) -> bool, code: &'static str, what: &str| match v {
        Some(x) if !(x.is_finite() && ok(x)) => {
            Err(unprocessable(code, format!("ping {i}: {what}, got {x}")))
        }
        _ => Ok(v),
    };
    let accuracy_m = check(
        p.accuracy_m,
        |x| (0.0..=MAX_REPORTED_ACCURACY_M).contains(&x),
        "invalid_accuracy",
        "accuracy_m must be in 0..=100000",
    )?;
    let heading_deg = check(
        p.heading_deg,
        |x| (0.0..360.0).contains(&x),
        "invalid_heading",
        "heading_deg must be in 0..360",
    )?;
    let speed_mps = check(
        p.speed_mps,
        |x| (0.0..=MAX_REPORTED_SPEED_MPS).contains(&x),
        "invalid_speed",
        "speed_mps must be in 0..=200",
    )?;
    let recorded_at = match p.recorded_at {
        None => received_at,
        Some(ms) if ms <= 0 || ms > received_at.as_millis().saturating_add(MAX_CLOCK_SKEW_MS) => {
            return Err(unprocessable(
                "invalid_timestamp",
                format!(
                    "ping {i}: recorded_at {ms} is not a time in milliseconds since the epoch up to a minute ahead of now"
                ),
            ));
        }
        // The location filter would refuse it as `stale` anyway: refuse it here, before it
        // costs a record (a fix from 1970 is a broken clock, not a late ping).
        Some(ms) if ms < received_at.as_millis().saturating_sub(max_age_ms) => {
            return Err(unprocessable(
                "stale_ping",
                format!(
                    "ping {i}: recorded_at {ms} is more than {max_age_ms} ms before now; such a fix is no longer useful"
                ),
            ));
        }
        Some(ms) => Timestamp::from_millis(ms),
    };
    let ping_id = match p.ping_id {
        Some(id) => {
            validate_id("ping_id", &id)?;
            EventId::new(id)
        }
        None => EventId::new(uuid::Uuid::now_v7().to_string()),
    };
    Ok(LocationPing {
        ping_id,
        driver_id: DriverId::new(driver_id),
        location,
        accuracy_m,
        heading_deg,
        speed_mps,
        recorded_at,
        received_at,
    })
}

/// Produces every ping: all are handed to the producer before any acknowledgement is
/// awaited, then the acknowledgements are awaited together (in one produce timeout); 503 if
/// any is missing: nothing is answered 202 unless the broker has it. A partly produced batch is safe to resend with the same ping ids: the
/// location filter drops duplicates.
async fn produce(
    s: &GatewayState,
    driver_id: &str,
    pings: &[LocationPing],
) -> Result<(), ApiError> {
    let inner = &s.inner;
    let mut payloads = Vec::with_capacity(pings.len());
    for p in pings {
        payloads.push(inner.catalog.encode(p).map_err(|e| {
            tracing::error!(error = %e, ping_id = %p.ping_id, "cannot encode a location ping");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding_failed",
                "a ping could not be encoded",
            )
        })?);
    }
    let topic = &inner.config.locations_topic;
    let sends = pings.iter().zip(&payloads).map(|(p, payload)| async move {
        let headers = [("ping_id", p.ping_id.as_str().as_bytes())];
        inner
            .sink
            .send(topic, driver_id.as_bytes(), payload, &headers)
            .await
    });
    let timeout = inner.config.produce_timeout;
    let failure = match tokio::time::timeout(timeout, futures::future::join_all(sends)).await {
        Ok(results) => results.into_iter().find_map(Result::err),
        Err(_) => Some(format!("no acknowledgement within {timeout:?}")),
    };
    if let Some(why) = failure {
        tracing::warn!(driver_id, pings = pings.len(), error = %why, "location pings not produced");
        return Err(ApiError::broker_unavailable(
            "the event broker did not acknowledge the pings in time; resend them later",
            inner.config.retry_after,
        ));
    }
    inner
        .metrics
        .produced
        .with_label_values(&["location_ping"])
        .inc_by(u64::try_from(pings.len()).unwrap_or(u64::MAX));
    Ok(())
}
