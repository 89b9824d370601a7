//! What the fuzz targets check, as plain functions: the targets (`fuzz_targets/`) feed them
//! libFuzzer's inputs, and the tests below feed them a few seeds on a stable toolchain, so
//! the checks themselves are built and run without `cargo fuzz`.
//!
//! - [`avro_decoders`]: every topic record's decoder takes any bytes (raw, and behind a valid
//!   Confluent header of each embedded schema id) without panicking; what decodes re-encodes
//!   and decodes to the same record.
//! - [`gateway_json`]: the gateway's JSON routes (place order, pings, cancel, status) take any
//!   body without panicking and answer 202 or a 4xx `{error, message}`, never a 5xx.
//! - [`token_verify`]: the token verifier takes any string without panicking, and a token it
//!   accepts verifies again after re-signing its claims.

use doorstep_pipelines::auth::{Claims, TokenKey, TokenKeys};
use doorstep_pipelines::config::EdgeConfig;
use doorstep_pipelines::gateway::{
    EventSink, GatewayConfig, GatewayMetrics, GatewayState, api_router,
};
use doorstep_schemas::avro::{Catalog, SCHEMA_FILES, TopicRecord};
use doorstep_schemas::events::{
    EtaUpdate, LocationPing, Notification, OrderEvent, RejectedRecord, StatusChange,
};
use doorstep_schemas::model::TrackingUpdate;
use futures::future::BoxFuture;
use std::sync::OnceLock;

const SECRET: &[u8] = b"fuzz secret: 3c5e7a9b1d2f4a6c8e0b";
const NOW: i64 = 1_800_000_000;

fn round_trip<T: TopicRecord + PartialEq + std::fmt::Debug>(catalog: &Catalog, bytes: &[u8]) {
    // The embedded catalog never waits (no registry to ask): block_on returns at once.
    if let Ok(record) = futures::executor::block_on(catalog.decode::<T>(bytes))
        && let Ok(again) = catalog.encode(&record)
    {
        let back = futures::executor::block_on(catalog.decode::<T>(&again));
        assert!(
            matches!(&back, Ok(b) if *b == record || format!("{b:?}") == format!("{record:?}")),
            "{record:?} re-encoded decodes to {back:?}"
        );
    }
}

fn decode_all(catalog: &Catalog, bytes: &[u8]) {
    round_trip::<OrderEvent>(catalog, bytes);
    round_trip::<StatusChange>(catalog, bytes);
    round_trip::<RejectedRecord>(catalog, bytes);
    round_trip::<LocationPing>(catalog, bytes);
    round_trip::<TrackingUpdate>(catalog, bytes);
    round_trip::<EtaUpdate>(catalog, bytes);
    round_trip::<Notification>(catalog, bytes);
}

/// The Avro decoders on `data`, raw and behind the header of the schema id `data[0]` picks.
pub fn avro_decoders(data: &[u8]) {
    let Ok(catalog) = Catalog::embedded() else {
        return;
    };
    decode_all(catalog, data);
    if let Some((first, body)) = data.split_first() {
        let file = &SCHEMA_FILES[usize::from(*first) % SCHEMA_FILES.len()];
        let mut framed = vec![0u8];
        framed.extend_from_slice(&file.id.to_be_bytes());
        framed.extend_from_slice(body);
        decode_all(catalog, &framed);
    }
}

struct Acks;

impl EventSink for Acks {
    fn send<'a>(
        &'a self,
        _topic: &'a str,
        _key: &'a [u8],
        _payload: &'a [u8],
        _headers: &'a [(&'a str, &'a [u8])],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    app: axum::Router,
    tokens: [String; 3],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let key = TokenKey::new(SECRET).expect("a key");
        let mut edge = EdgeConfig::default();
        edge.rate_per_s = u32::MAX;
        edge.rate_burst = u32::MAX;
        edge.orders_per_hour = u32::MAX;
        let state = GatewayState::new(
            key.clone(),
            std::sync::Arc::new(Acks),
            Catalog::embedded().expect("the catalog"),
            GatewayConfig::new("fuzz.orders.events.v1", "fuzz.drivers.locations.v1"),
            GatewayMetrics::register(&prometheus::Registry::new()).expect("metrics"),
        )
        .with_limits(edge);
        let exp = doorstep_pipelines::auth::unix_now() + 86_000;
        let sign = |kind, id: &str| {
            key.sign(&Claims::new(kind, id, exp))
                .expect("a token")
        };
        use doorstep_schemas::model::ActorKind;
        Fixture {
            app: runtime.block_on(async { api_router(state) }),
            tokens: [
                sign(ActorKind::Customer, "c-fuzz"),
                sign(ActorKind::Driver, "d-fuzz"),
                sign(ActorKind::Restaurant, "r-kluuvi"),
                ],
            runtime,
        }
    })
}

/// One request to the gateway's JSON routes: `data[0]` picks the route, the rest is the body.
pub fn gateway_json(data: &[u8]) {
    use tower::ServiceExt;
    let Some((route, body)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (path, token) = match route % 4 {
        0 => ("/v1/orders", &f.tokens[0]),
        1 => ("/v1/drivers/d-fuzz/location", &f.tokens[1]),
        2 => ("/v1/orders/o-fuzz/cancel", &f.tokens[0]),
        _ => ("/v1/orders/o-fuzz/status", &f.tokens[2]),
    };
    let request = axum::http::Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a request");
    let (status, bytes) = f.runtime.block_on(async {
        let response = f.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, bytes)
    });
    assert!(
        status.as_u16() == 202 || status.is_client_error(),
        "{path}: {status} for {:?}",
        String::from_utf8_lossy(body)
    );
    if status.is_client_error() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON error body");
        assert!(v["error"].is_string() && v["message"].is_string(), "{v}");
    }
}

/// The token verifier on `data` (as text).
pub fn token_verify(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(key) = TokenKey::new(SECRET) else {
        return;
    };
    let keys = TokenKeys::from(key.clone());
    if let Ok(claims) = keys.verify(token, NOW) {
        let again = key.sign(&claims).expect("re-sign");
        assert_eq!(keys.verify(&again, NOW), Ok(claims));
    }
    let _ = key.verify(token, NOW);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_run_through_every_check() {
        let place = br#"{"restaurant_id":"r-kluuvi","items":[{"item_id":"s","name":"S","quantity":1,"unit_price_cents":1}],"total_cents":1,"restaurant_location":{"lat":60.17167,"lng":24.94506},"delivery_location":{"lat":60.17,"lng":24.94}}"#;
        for seed in [&b""[..], b"\x00", b"\x00\x00\x00\x00\x65garbage", b"\x07\x02abc", &[0xff; 64]] {
            avro_decoders(seed);
            token_verify(seed);
            gateway_json(seed);
        }
        let mut ok = vec![0u8];
        ok.extend_from_slice(place);
        gateway_json(&ok);
        let token = TokenKey::new(SECRET)
            .unwrap()
            .sign(&Claims::new(doorstep_schemas::model::ActorKind::Customer, "c", NOW + 60))
            .unwrap();
        token_verify(token.as_bytes());
    }
}
