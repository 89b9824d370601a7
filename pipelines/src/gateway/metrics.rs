//! The gateway's metrics, `doorstep_gateway_*`, and the middleware that records them.

use super::error::ErrorCode;
use crate::ops::MetricSet;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Instant;

/// Request counts and durations by route, events produced by command, rejections by code,
/// waits for and replays of command outcomes.
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    /// `doorstep_gateway_http_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `doorstep_gateway_http_request_duration_seconds{route}`.
    pub duration: HistogramVec,
    /// `doorstep_gateway_events_produced_total{command}`.
    pub produced: IntCounterVec,
    /// `doorstep_gateway_rejected_requests_total{reason}` (the error code).
    pub rejected: IntCounterVec,
    /// `doorstep_gateway_connections`: open connections (WebSockets included).
    pub connections: IntGauge,
    /// `doorstep_gateway_connections_closed_total{reason}`: `closed`, `timeout` (header read
    /// or idle), `error`.
    pub connections_closed: IntCounterVec,
    /// `doorstep_gateway_command_waits_total{result}`: `Prefer: wait` requests by how the
    /// wait ended (`accepted`, `rejected`, `timed_out`, `unavailable`).
    pub command_waits: IntCounterVec,
    /// `doorstep_gateway_command_replays_total{outcome}`: re-sent commands (same
    /// idempotency key) answered with their first outcome (`accepted`, `rejected`).
    pub command_replays: IntCounterVec,
}

impl GatewayMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_http_requests_total",
                    "HTTP requests answered, by route template and status code",
                ),
                &["route", "status"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "doorstep_gateway_http_request_duration_seconds",
                    "Time to answer an HTTP request (including the broker's acknowledgement)",
                )
                .buckets(prometheus::exponential_buckets(0.0005, 2.0, 16)?),
                &["route"],
            )?,
            produced: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_events_produced_total",
                    "Order events acknowledged by the broker, by command",
                ),
                &["command"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_rejected_requests_total",
                    "Requests answered with an error, by error code",
                ),
                &["reason"],
            )?,
            connections: IntGauge::new(
                "doorstep_gateway_connections",
                "Connections open on the gateway port, WebSockets included",
            )?,
            connections_closed: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_connections_closed_total",
                    "Connections ended, by how: closed, timeout (header read or idle), error",
                ),
                &["reason"],
            )?,
            command_waits: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_command_waits_total",
                    "Requests that waited for a command's outcome (Prefer: wait), by how the wait ended",
                ),
                &["result"],
            )?,
            command_replays: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_command_replays_total",
                    "Re-sent commands (same Idempotency-Key) answered with their first outcome, by outcome",
                ),
                &["outcome"],
            )?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

/// Middleware: times the request and counts it by route template and status, and counts error
/// answers by their code.
pub(super) async fn track(State(m): State<GatewayMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    m.duration
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        m.rejected.with_label_values(&[*code]).inc();
    }
    response
}

impl MetricSet for GatewayMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.produced.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.connections.clone()),
            Box::new(self.connections_closed.clone()),
            Box::new(self.command_waits.clone()),
            Box::new(self.command_replays.clone()),
        ]
    }
}
