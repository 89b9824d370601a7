//! The order routes of the producer API. Each one authenticates the bearer, checks what the
//! token may do, validates the request with the same pure checks the state machine uses
//! (`operators::order`), and hands the command to [`super::commands`], which produces one
//! `OrderEvent` to `orders.events.v1` and answers 202 once the broker acknowledged it (or,
//! when asked to wait, with the status pipeline's decision).

use super::commands::{self, CommandHeaders};
use super::extract::{Caller, body_error, parse_json};
use super::{ApiError, GatewayState};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use doorstep_operators::order::{transition_rule, validate_id, validate_place, validate_reason};
use doorstep_schemas::events::{OrderCommand, PlaceOrder};
use doorstep_schemas::model::{ActorKind, DriverId, GeoPoint, OrderItem, OrderStatus};
use serde::{Deserialize, Serialize};

/// A request body, or why it could not be read.
type RawBody = Result<Bytes, BytesRejection>;
/// The `{order_id}` path segment, or why it could not be decoded.
type OrderPath = Result<Path<String>, PathRejection>;
/// A handler's answer: 202 with an [`AcceptedBody`], or the decision ([`commands`]).
type Answer = Result<Response, ApiError>;

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
    let asked = CommandHeaders::from_headers(&headers)?;
    let body: PlaceBody = parse_json(&headers, &body.map_err(body_error)?)?;
    let order_id = match (body.order_id, &claims.order_id, &asked.key) {
        (Some(id), _, _) => {
            validate_id("order_id", &id)?;
            claims.require_order(&id)?;
            id
        }
        (None, Some(own), _) => own.clone(),
        (None, None, Some(key)) => commands::keyed_order_id(&claims.actor(), key),
        (None, None, None) => uuid::Uuid::now_v7().to_string(),
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
    let command = OrderCommand::Place(place);
    commands::submit(&s, claims.actor(), order_id, command, &asked).await
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
    let asked = CommandHeaders::from_headers(&headers)?;
    let body: AssignBody = parse_json(&headers, &body.map_err(body_error)?)?;
    validate_id("driver_id", &body.driver_id)?;
    let command = OrderCommand::AssignDriver {
        driver_id: DriverId::new(body.driver_id),
    };
    commands::submit(&s, claims.actor(), order_id, command, &asked).await
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
    let asked = CommandHeaders::from_headers(&headers)?;
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
    let command = OrderCommand::Transition { to };
    commands::submit(&s, claims.actor(), order_id, command, &asked).await
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
    let asked = CommandHeaders::from_headers(&headers)?;
    let body: CancelBody = parse_json(&headers, &body.map_err(body_error)?)?;
    let reason = validate_reason(&body.reason)?.to_owned();
    let command = OrderCommand::Cancel { reason };
    commands::submit(&s, claims.actor(), order_id, command, &asked).await
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
