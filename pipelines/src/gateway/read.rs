//! `GET /v1/orders/{order_id}`: the order's current status, contents and timeline, read from
//! the order store (the status pipeline's ScyllaDB rows) through an [`OrderReader`].

use super::extract::Caller;
use super::{ApiError, GatewayState};
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use doorstep_operators::order::{OrderState, validate_id};
use doorstep_schemas::model::{ActorKind, Order, StatusHistoryEntry};
use futures::future::BoxFuture;
use serde::Serialize;

/// Reads an order's state (row and history). Implemented over the order store; tests use an
/// in-memory one.
pub trait OrderReader: Send + Sync + 'static {
    /// The order's state, `None` if it was never placed; `Err` carries a sentence.
    fn load<'a>(&'a self, order_id: &'a str) -> BoxFuture<'a, Result<Option<OrderState>, String>>;
}

/// What `GET /v1/orders/{order_id}` answers: the order row (status, parties, items, totals,
/// locations, ETA, cancellation) and its timeline, oldest first.
#[derive(Debug, Serialize)]
pub struct OrderView<'a> {
    /// The order as the status pipeline last saved it.
    #[serde(flatten)]
    pub order: &'a Order,
    /// Every accepted change, oldest first.
    pub timeline: &'a [StatusHistoryEntry],
}

/// `GET /v1/orders/{order_id}` (the order's customer or restaurant, or the system). An order
/// that does not exist and one the bearer is not a party to are both 404 `order_not_found`,
/// so the route does not tell which order ids exist.
pub(super) async fn get_order(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    claims.require_kind(&[
        ActorKind::Customer,
        ActorKind::Restaurant,
        ActorKind::System,
    ])?;
    let Path(order_id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    validate_id("order_id", &order_id)?;
    claims.require_order(&order_id)?;
    let Some(reader) = s.inner.orders.as_ref() else {
        return Err(store_unavailable(&s, "no order store is configured"));
    };
    let timeout = s.inner.config.read_timeout;
    let state = match tokio::time::timeout(timeout, reader.load(&order_id)).await {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => return Err(store_unavailable(&s, &e)),
        Err(_) => {
            return Err(store_unavailable(
                &s,
                &format!("no answer within {timeout:?}"),
            ));
        }
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "order_not_found",
            format!("there is no order {order_id} for this token"),
        )
    };
    let state = state.ok_or_else(not_found)?;
    let party = match claims.sub_kind {
        ActorKind::Customer => state.order.customer_id.as_str() == claims.sub,
        ActorKind::Restaurant => state.order.restaurant_id.as_str() == claims.sub,
        ActorKind::System => true,
        ActorKind::Driver => false,
    };
    if !party {
        return Err(not_found());
    }
    let view = OrderView {
        order: &state.order,
        timeline: &state.history,
    };
    serde_json::to_value(&view).map(Json).map_err(|e| {
        tracing::error!(error = %e, "cannot serialise an order");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the order could not be serialised",
        )
    })
}

fn store_unavailable(s: &GatewayState, why: &str) -> ApiError {
    tracing::warn!(error = %why, "order store read failed");
    ApiError {
        retry_after: Some(s.inner.config.retry_after),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the order store did not answer; retry later",
        )
    }
}
