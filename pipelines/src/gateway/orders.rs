//! The order routes of the producer API. Each one authenticates the bearer, checks what the
//! token may do, validates the request with the same pure checks the state machine uses
//! (`operators::order`), and produces one `OrderEvent` to `orders.events.v1`, answering 202
//! once the broker acknowledged it. Whether the change is accepted is decided later by the
//! status pipeline.

use super::extract::{Caller, body_error, parse_json};
use super::{ApiError, GatewayState};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use doorstep_operators::order::{transition_rule, validate_id, validate_place, validate_reason};
use doorstep_schemas::events::{OrderCommand, OrderEvent, PlaceOrder};
use doorstep_schemas::model::{
    Actor, ActorKind, DriverId, EventId, GeoPoint, OrderId, OrderItem, OrderStatus, Timestamp,
};
use serde::{Deserialize, Serialize};

/// A request body, or why it could not be read.
type RawBody = Result<Bytes, BytesRejection>;
/// The `{order_id}` path segment, or why it could not be decoded.
type OrderPath = Result<Path<String>, PathRejection>;
/// A handler's answer.
type Answer = Result<(StatusCode, Json<AcceptedBody>), ApiError>;

/// The answer to an accepted request: 202 with the order and the event produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedBody {
    /// The order (minted by the gateway when the request had none).
    pub order_id: String,
    /// The event produced to `orders.events.v1`.
    pub event_id: String,
}

/// `POST /v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    /// Chosen by the app (for idempotent retries), else minted as a UUIDv7.
    #[serde(default)]
    order_id: Option<String>,
    restaurant_id: String,
    items: Vec<ItemBody>,
    total_cents: i64,
    restaurant_location: GeoPoint,
    delivery_location: GeoPoint,
}

/// One order line as sent: the quantity is signed so that a negative one is a 422, not a
/// JSON type error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    item_id: String,
    name: String,
    quantity: i64,
    unit_price_cents: i64,
}

/// `POST /v1/orders/{order_id}/driver`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    driver_id: String,
}

/// `POST /v1/orders/{order_id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

/// `POST /v1/orders/{order_id}/cancel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    reason: String,
}

/// `POST /v1/orders` (customer): place an order.
pub(super) async fn place(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    headers: HeaderMap,
    body: RawBody,
) -> Answer {
    claims.require_kind(&[ActorKind::Customer])?;
    let body: PlaceBody = parse_json(&headers, &body.map_err(body_error)?)?;
    let order_id = match (body.order_id, &claims.order_id) {
        (Some(id), _) => {
            validate_id("order_id", &id)?;
            claims.require_order(&id)?;
            id
        }
        (None, Some(own)) => own.clone(),
        (None, None) => uuid::Uuid::now_v7().to_string(),
    };
    let items = body
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let quantity = u32::try_from(item.quantity).map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_quantity",
                    format!(
                        "item {index} ({}) has quantity {}; it must be 1 to {}",
                        item.item_id,
                        item.quantity,
                        u32::MAX
                    ),
                )
            })?;
            Ok(OrderItem {
                item_id: item.item_id,
                name: item.name,
                quantity,
                unit_price_cents: item.unit_price_cents,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let place = PlaceOrder {
        customer_id: claims.sub.clone().into(),
        restaurant_id: body.restaurant_id.into(),
        items,
        total_cents: body.total_cents,
        restaurant_location: body.restaurant_location,
        delivery_location: body.delivery_location,
    };
    validate_place(&order_id, &place)?;
    super::limits::check_place(&s, &claims, &order_id, &place).await?;
    produce(&s, order_id, claims.actor(), OrderCommand::Place(place)).await
}

/// `POST /v1/orders/{order_id}/driver` (system): assign a driver.
pub(super) async fn assign_driver(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: OrderPath,
    headers: HeaderMap,
    body: RawBody,
) -> Answer {
    claims.require_kind(&[ActorKind::System])?;
    let order_id = order_id(path, &claims)?;
    let body: AssignBody = parse_json(&headers, &body.map_err(body_error)?)?;
    validate_id("driver_id", &body.driver_id)?;
    let command = OrderCommand::AssignDriver {
        driver_id: DriverId::new(body.driver_id),
    };
    produce(&s, order_id, claims.actor(), command).await
}

/// `POST /v1/orders/{order_id}/status` (restaurant, driver, system): ask for a status.
pub(super) async fn status(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: OrderPath,
    headers: HeaderMap,
    body: RawBody,
) -> Answer {
    claims.require_kind(&[ActorKind::Restaurant, ActorKind::Driver, ActorKind::System])?;
    let order_id = order_id(path, &claims)?;
    let body: StatusBody = parse_json(&headers, &body.map_err(body_error)?)?;
    let to: OrderStatus =
        body.status
            .parse()
            .map_err(|e: doorstep_schemas::model::ParseStatusError| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_status",
                    e.to_string(),
                )
            })?;
    check_transition(claims.sub_kind, to)?;
    produce(
        &s,
        order_id,
        claims.actor(),
        OrderCommand::Transition { to },
    )
    .await
}

/// `POST /v1/orders/{order_id}/cancel` (customer, restaurant, driver): cancel, with a reason.
pub(super) async fn cancel(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: OrderPath,
    headers: HeaderMap,
    body: RawBody,
) -> Answer {
    claims.require_kind(&[
        ActorKind::Customer,
        ActorKind::Restaurant,
        ActorKind::Driver,
    ])?;
    let order_id = order_id(path, &claims)?;
    let body: CancelBody = parse_json(&headers, &body.map_err(body_error)?)?;
    let reason = validate_reason(&body.reason)?.to_owned();
    produce(
        &s,
        order_id,
        claims.actor(),
        OrderCommand::Cancel { reason },
    )
    .await
}

/// The path's order id: decodable, a valid id, and one the token may act on.
fn order_id(path: OrderPath, claims: &crate::auth::Claims) -> Result<String, ApiError> {
    let Path(id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    validate_id("order_id", &id)?;
    claims.require_order(&id)?;
    Ok(id)
}

/// The state-independent part of the transition rules (`operators::order::transition_rule`):
/// `to` must be reachable by a status request at all (422 `not_a_transition`), and by this
/// kind of actor from some status (403 `actor_not_allowed`). Whether it is allowed from the
/// order's current status is the status pipeline's decision.
fn check_transition(kind: ActorKind, to: OrderStatus) -> Result<(), ApiError> {
    let rules: Vec<_> = OrderStatus::ALL
        .iter()
        .filter_map(|from| transition_rule(*from, to))
        .collect();
    if rules.is_empty() {
        let hint = match to {
            OrderStatus::Cancelled => "; cancel with POST /v1/orders/{order_id}/cancel",
            OrderStatus::Placed => "; an order is placed with POST /v1/orders",
            _ => "",
        };
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_transition",
            format!("no status request leads to {to}{hint}"),
        ));
    }
    if !rules.iter().any(|r| r.admits(kind)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "actor_not_allowed",
            format!("a {kind} may not move an order to {to}"),
        ));
    }
    Ok(())
}

/// Stamps and produces the event, keyed by order id with an `event_id` header, and waits for
/// the broker's acknowledgement at most the produce timeout: 202 on success, 503
/// `broker_unavailable` on a timeout or a broker error.
async fn produce(
    s: &GatewayState,
    order_id: String,
    actor: Actor,
    command: OrderCommand,
) -> Answer {
    let inner = &s.inner;
    let event = OrderEvent {
        event_id: EventId::new(uuid::Uuid::now_v7().to_string()),
        order_id: OrderId::new(order_id),
        occurred_at: Timestamp::now(),
        actor,
        command,
    };
    let name = event.command.name();
    let payload = inner.catalog.encode(&event).map_err(|e| {
        tracing::error!(error = %e, event_id = %event.event_id, "cannot encode an order event");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding_failed",
            "the event could not be encoded",
        )
    })?;
    let key = event.order_id.as_str().as_bytes();
    let headers = [("event_id", event.event_id.as_str().as_bytes())];
    let timeout = inner.config.produce_timeout;
    let send = inner
        .sink
        .send(&inner.config.events_topic, key, &payload, &headers);
    let failure = match tokio::time::timeout(timeout, send).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no acknowledgement within {timeout:?}")),
    };
    if let Some(why) = failure {
        tracing::warn!(event_id = %event.event_id, order_id = %event.order_id, command = name, error = %why, "order event not produced");
        return Err(ApiError::broker_unavailable(
            "the event broker did not acknowledge the request in time; retry later",
            inner.config.retry_after,
        ));
    }
    inner.metrics.produced.with_label_values(&[name]).inc();
    tracing::debug!(event_id = %event.event_id, order_id = %event.order_id, command = name, "order event produced");
    Ok((
        StatusCode::ACCEPTED,
        Json(AcceptedBody {
            order_id: event.order_id.0,
            event_id: event.event_id.0,
        }),
    ))
}
