//! The HTTP server of `/metrics` (Prometheus text format) and `/healthz` (JSON readiness).

use super::{CachedHealth, Health};
use crate::shutdown;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{Encoder, Registry, TextEncoder};
use std::net::SocketAddr;

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    health: CachedHealth,
}

/// The ops routes, served on the ops listener only (never on a public port): `/healthz`
/// answers from a [`CachedHealth`].
pub fn router(registry: Registry, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(OpsState {
            registry,
            health: CachedHealth::new(health),
        })
}

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown` changes.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    health: Health,
    mut shutdown: shutdown::Signal,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "ops server listening on /metrics and /healthz");
    axum::serve(listener, router(registry, health))
        .with_graceful_shutdown(async move {
            shutdown::stopped(&mut shutdown).await;
        })
        .await
}

async fn metrics(State(s): State<OpsState>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&s.registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn healthz(State(s): State<OpsState>) -> Response {
    let report = s.health.report().await;
    let code = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

/// Spawns [`serve`]; a failure (e.g. the port is taken) is logged as an error, not lost.
pub fn spawn(
    addr: SocketAddr,
    registry: Registry,
    health: Health,
    shutdown: shutdown::Signal,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = serve(addr, registry, health, shutdown).await {
            tracing::error!(%addr, error = %e, "the ops server (/metrics, /healthz) could not run");
        }
    })
}
