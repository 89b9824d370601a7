//! The HTTP gateway: the producer API apps and dispatch call, in front of
//! `orders.events.v1` (order requests) and `drivers.locations.v1` (GPS pings).
//!
//! | method + path | bearer | body | answer |
//! |---|---|---|---|
//! | `POST /v1/orders` | customer | `{restaurant_id, items:[{item_id,name,quantity,unit_price_cents}], total_cents, restaurant_location:{lat,lng}, delivery_location:{lat,lng}, order_id?}` | 202 `{order_id, event_id}` |
//! | `POST /v1/orders/{order_id}/driver` | system | `{driver_id}` | 202 |
//! | `POST /v1/orders/{order_id}/status` | restaurant, driver, system | `{status}` | 202 |
//! | `POST /v1/orders/{order_id}/cancel` | customer, restaurant, driver | `{reason}` | 202 |
//! | `GET /v1/orders/{order_id}/commands/{event_id}` | the command's sender, system | | 200: the outcome; 202 while undecided ([`commands`]) |
//! | `GET /v1/orders/{order_id}` | the order's customer or restaurant, system | | 200: the order row (status, parties, items, ETA, cancellation) + `timeline` |
//! | `POST /v1/drivers/{driver_id}/location` | that driver | one ping `{lat, lng, accuracy_m?, heading_deg?, speed_mps?, recorded_at?, ping_id?}` or `{pings: [...]}` (≤ 100) | 202 `{driver_id, accepted, ping_ids}` |
//! | `GET /v1/orders/{order_id}/track` (WebSocket) | a customer token for that order (scope `read` is enough), the order's customer, system (header or the `bearer.<token>` subprotocol) | | a `snapshot` frame (with `?since=SEQ`: a `resumed` frame and the frames missed after `SEQ`, or a snapshot with `recovered: false`), then live `location` / `status` / `eta` / `rejected` frames ([`track`]) |
//! | `GET /v1/drivers/{driver_id}/stream` (WebSocket) | that driver | text frames, each one ping or `{pings: [...]}` | one JSON answer per frame: the 202 body or the error body ([`driver_stream`]) |
//!
//! `/metrics` and `/healthz` are not on this port: they are on the ops listener
//! (`ops.listen`), like every process's.
//!
//! A 202 means the event is on the broker (acknowledged, `acks=all`); the status pipeline
//! decides whether it changes the order and records a rejection otherwise. Every command's
//! decision can be read back by its sender, waited for (`Prefer: wait=N`: 200 with the
//! outcome, 409 with the rejection's reason, or 202 when N runs out), and a command re-sent
//! with the same `Idempotency-Key` is the same command ([`commands`]). Everything that
//! can be decided without the order's state is decided here, before producing, with the same
//! pure checks the state machine runs (`operators::order::validate_*`, `transition_rule`).
//!
//! Errors are `{"error": "<code>", "message": "<sentence>"}`:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_json` | the body is not the expected JSON (serde's message: unknown or missing field, wrong type, syntax) |
//! | 400 | `invalid_path`, `invalid_body` | undecodable path segment, unreadable body |
//! | 400 | `invalid_since`, `invalid_query`, `token_in_url` | tracking: a `since` that is not a decimal number, an unreadable query string, a token in the URL |
//! | 400 | `invalid_prefer`, `invalid_idempotency_key` | a `Prefer: wait` that is not a number of seconds; an `Idempotency-Key` that is empty, over 255 characters, not printable ASCII or repeated |
//! | 401 | `unauthorized` | no, malformed, forged or expired bearer token, an unknown key id, or one living longer than `gateway.token_max_ttl_s` (`WWW-Authenticate: Bearer`) |
//! | 403 | `forbidden` | the token's kind may not use the route, the token is for another order, or its scope is `read` and the route acts |
//! | 408 | `request_timeout` | the request (body included) took longer than `gateway.request_timeout_ms` |
//! | 403 | `actor_not_allowed` | no rule lets this kind of actor ask for that status |
//! | 404, 405 | `not_found`, `method_not_allowed` | no such route or method |
//! | 404 | `order_not_found` | `GET` of an order that does not exist or that the bearer is not a party to |
//! | 409 | the rejection's code (`cancellation_refused`, `invalid_transition`, ...) | a command the state machine refused, when the caller waited for it or re-sent it |
//! | 413 | `payload_too_large` | body over the limit (64 KiB by default) |
//! | 415 | `unsupported_media_type` | a `Content-Type` other than JSON |
//! | 422 | `unknown_status` | a status string that is not an order status |
//! | 422 | `not_a_transition` | a status no status request leads to (`PLACED`, `CANCELLED`) |
//! | 422 | `no_pings`, `too_many_pings`, `invalid_accuracy`, `invalid_heading`, `invalid_speed`, `invalid_timestamp`, `stale_ping` | GPS pings out of range (`invalid_location` too) |
//! | 422, 429 | see [`limits`] | outside the service area or the restaurant registry; rate limits, quotas and caps |
//! | 422 | `invalid_id`, `no_items`, `too_many_items`, `invalid_quantity`, `negative_price`, `invalid_item_name`, `total_mismatch`, `total_overflow`, `invalid_location`, `missing_reason`, `reason_too_long`, `unprintable_reason` | the checks of `operators::order::InvalidInput` |
//! | 503 | `broker_unavailable` | no broker acknowledgement within the produce timeout (`Retry-After`) |
//! | 503 | `store_unavailable` | the order store did not answer a `GET` in time (`Retry-After`) |
//! | 503 | `outcomes_unavailable` | Redis did not answer a command outcome's `GET` in time (`Retry-After`) |
//!
//! `GET /v1/orders/{order_id}` is mounted when the state has an [`OrderReader`]
//! ([`GatewayState::with_orders`]).
//!
//! Tokens come from [`crate::auth`]; `doorstep token --kind customer --id c-1` mints one. A
//! token with an `order_id` claim acts on that order only; a customer's token for an order
//! also places it when the body has no `order_id`.
//!
//! ```text
//! export DOORSTEP_AUTH_SECRET="$(openssl rand -hex 32)"
//! doorstep topics ensure && doorstep gateway &        # 127.0.0.1:8080 (gateway.listen)
//! C=$(doorstep token --kind customer --id c-1 --ttl 1h)
//! curl -sS localhost:8080/v1/orders -H "authorization: Bearer $C" \
//!   -H 'content-type: application/json' -d '{"restaurant_id": "r-1",
//!   "items": [{"item_id": "pizza", "name": "Pizza", "quantity": 1, "unit_price_cents": 1400}],
//!   "total_cents": 1400, "restaurant_location": {"lat": 60.1699, "lng": 24.9384},
//!   "delivery_location": {"lat": 60.1718, "lng": 24.9458}}'
//! # → 202 {"order_id":"0190…","event_id":"0190…"}
//! R=$(doorstep token --kind restaurant --id r-1)
//! curl -sS localhost:8080/v1/orders/$ORDER/status -H "authorization: Bearer $R" \
//!   -H 'content-type: application/json' -d '{"status": "CONFIRMED"}'
//! curl -sS localhost:8080/v1/orders/$ORDER -H "authorization: Bearer $C"
//! ```
//!
//! `curl -d` alone sends `application/x-www-form-urlencoded`, which is refused with 415: pass
//! the JSON content type (or use `curl --json`).
//!
//! Connections are served by [`server`] (header-read and idle timeouts, a connection cap).
//!
//! Metrics: `doorstep_gateway_connections`, `doorstep_gateway_connections_closed_total{reason}`,
//! `doorstep_gateway_http_requests_total{route,status}`,
//! `doorstep_gateway_http_request_duration_seconds{route}`,
//! `doorstep_gateway_events_produced_total{command}`,
//! `doorstep_gateway_rejected_requests_total{reason}`,
//! `doorstep_gateway_command_waits_total{result}`,
//! `doorstep_gateway_command_replays_total{outcome}`.

mod app;
pub mod commands;
mod driver_stream;
mod error;
mod extract;
pub mod limits;
mod locations;
mod metrics;
mod orders;
pub mod page;
mod read;
pub mod server;
mod sink;
mod state;
mod store;
pub mod track;

pub use app::{Gateway, GatewayError};
pub use error::{ApiError, ErrorCode};
pub use extract::Caller;
pub use limits::{EdgeLimits, OpenOrdersCap};
pub use locations::{MAX_CLOCK_SKEW_MS, MAX_PINGS, PingsAccepted};
pub use metrics::GatewayMetrics;
pub use orders::AcceptedBody;
pub use read::{OrderReader, OrderView};
pub use server::ServerLimits;
pub use sink::{EventSink, KafkaSink};
pub use state::{GatewayConfig, GatewayState};
pub use store::LazyOrderStore;

use crate::ops::Health;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

/// The API routes with their metrics, body limit and request timeout (no ops routes).
pub fn api_router(state: GatewayState) -> Router {
    let limit = state.config().max_body_bytes;
    let metrics = state.metrics().clone();
    let request_timeout = state.limits().config().request_timeout;
    let mut router = Router::new();
    if state.inner.orders.is_some() {
        router = router.route("/v1/orders/{order_id}", get(read::get_order));
    }
    router
        .route("/v1/orders", post(orders::place))
        .route("/v1/orders/{order_id}/driver", post(orders::assign_driver))
        .route("/v1/orders/{order_id}/status", post(orders::status))
        .route("/v1/orders/{order_id}/cancel", post(orders::cancel))
        .route(
            "/v1/orders/{order_id}/commands/{event_id}",
            get(commands::get_outcome),
        )
        .route("/v1/orders/{order_id}/track", get(track::track))
        .route(
            "/v1/drivers/{driver_id}/location",
            post(locations::post_location),
        )
        .route("/v1/drivers/{driver_id}/stream", get(driver_stream::stream))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout_request,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

/// Middleware: a request not answered within `gateway.request_timeout_ms` (a slow body
/// included) is answered 408 `request_timeout`.
async fn timeout_request(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request was not complete within {limit:?}"),
        )
        .into_response(),
    }
}

/// The public router: the API only. `/metrics` and `/healthz` are served on the ops listener
/// ([`ops::router`] with [`health`]), never here.
pub fn router(state: GatewayState) -> Router {
    api_router(state)
}

/// The gateway's readiness probes: the event sink (the broker) must answer.
pub fn health(state: &GatewayState) -> Health {
    let sink = state.inner.sink.clone();
    Health::new().with("kafka", move || {
        let sink = sink.clone();
        async move { sink.ping().await }
    })
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

#[cfg(test)]
mod tests;
