//! The live tracking page (demo only, off by default): `doorstep gateway --demo-page` serves
//! a map of the area drawn from OpenStreetMap street geometry (embedded, no external tiles),
//! the drivers of recent orders moving over the customer WebSocket
//! (`GET /v1/orders/{order_id}/track`), one chosen order's timeline, driver position and ETA
//! range, and an operations panel from the processes' `/metrics`.
//!
//! | method + path | what |
//! |---|---|
//! | `GET /demo` | the page (HTML, script and style in one document) |
//! | `GET /demo/streets.json` | the street geometry (see `scripts/lib/streets.py`) |
//! | `GET /demo/api/orders` | recent orders seen on `orders.status.v1` and the simulated restaurants |
//! | `POST /demo/api/orders/{order_id}/token` | a short-lived customer token for that order |
//! | `GET /demo/api/ops` | totals of selected metrics of this gateway and of `--demo-metrics` URLs |
//!
//! **Security:** the page hands anyone who can reach it a read token for any recent order (a
//! customer token restricted to that order, scope `read`, valid [`TOKEN_TTL_S`] seconds: it
//! can follow the order, not cancel it). It exists for local demos: it is off unless
//! `--demo-page` is given, and the gateway warns when it is enabled on a non-loopback address.
//!
//! Owns: the page's routes, the recent-orders view and the metrics summary.

mod assets;
mod ops;
mod orders;

pub use ops::{FAMILIES, OpsSummary, add_samples, summarize};
pub use orders::{RecentOrder, RecentOrders};

use crate::auth::{Claims, TokenKey, unix_now};
use crate::simulate::RESTAURANTS;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use doorstep_schemas::model::ActorKind;
use prometheus::Registry;
use std::sync::Arc;

/// How long a token minted for the page is valid, seconds.
pub const TOKEN_TTL_S: i64 = 600;

/// What the page's handlers share.
#[derive(Clone)]
pub struct DemoPage {
    key: TokenKey,
    orders: RecentOrders,
    registry: Registry,
    metrics_urls: Arc<Vec<String>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for DemoPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoPage")
            .field("metrics_urls", &self.metrics_urls)
            .finish_non_exhaustive()
    }
}

impl DemoPage {
    /// The page: tokens signed with `key`, orders from `orders`, metrics of `registry` (this
    /// process) and of `metrics_urls` (other processes' `/metrics`).
    pub fn new(
        key: TokenKey,
        orders: RecentOrders,
        registry: Registry,
        metrics_urls: Vec<String>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            key,
            orders,
            registry,
            metrics_urls: Arc::new(metrics_urls),
            http,
        }
    }

    /// The page's routes (no fallback, so it merges into the gateway's router).
    pub fn router(self) -> Router {
        Router::new()
            .route("/demo", get(assets::index))
            .route("/demo/", get(assets::index))
            .route("/demo/streets.json", get(assets::streets))
            .route("/demo/api/orders", get(list_orders))
            .route("/demo/api/orders/{order_id}/token", post(mint_token))
            .route("/demo/api/ops", get(ops_summary))
            .with_state(self)
    }
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn list_orders(State(p): State<DemoPage>) -> Response {
    let restaurants: Vec<_> = RESTAURANTS
        .iter()
        .map(|(id, at)| serde_json::json!({"restaurant_id": id, "location": at}))
        .collect();
    no_store(Json(serde_json::json!({
        "orders": p.orders.list(),
        "restaurants": restaurants,
    })))
}

async fn mint_token(State(p): State<DemoPage>, Path(order_id): Path<String>) -> Response {
    let Some(order) = p.orders.get(&order_id) else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "order_not_found", "message": "the page has not seen this order"})),
        )
            .into_response();
    };
    let exp = unix_now() + TOKEN_TTL_S;
    // Read only: the page follows the order, it never acts on it.
    let claims = Claims::new(ActorKind::Customer, order.customer_id.clone(), exp)
        .for_order(&order_id)
        .read_only();
    match p.key.sign(&claims) {
        Ok(token) => no_store(Json(serde_json::json!({
            "token": token, "order_id": order_id, "expires_at": exp,
        }))),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": "token", "message": e.to_string()})),
        )
            .into_response(),
    }
}

async fn ops_summary(State(p): State<DemoPage>) -> Response {
    let summary = summarize(&p.http, &p.registry, &p.metrics_urls).await;
    no_store(Json(summary))
}

#[cfg(test)]
mod tests;
