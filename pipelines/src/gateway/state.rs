//! What every handler shares: the token key, the event sink, the codec, the settings, the
//! metrics.

use super::limits::{EdgeLimits, OpenOrdersCap};
use super::track::LiveTracking;
use super::{EventSink, GatewayMetrics, OrderReader};
use crate::auth::TokenKeys;
use crate::config::EdgeConfig;
use doorstep_schemas::avro::Catalog;
use std::sync::Arc;
use std::time::Duration;

/// The gateway's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The full name of the order events topic (with the deployment's prefix).
    pub events_topic: String,
    /// The full name of the driver locations topic (with the deployment's prefix).
    pub locations_topic: String,
    /// How long a request waits for the broker's acknowledgement before answering 503.
    pub produce_timeout: Duration,
    /// Largest request body accepted, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// The `Retry-After` of a 503.
    pub retry_after: Duration,
    /// How long `GET /v1/orders/{order_id}` waits for the order store.
    pub read_timeout: Duration,
    /// Each connection's kernel send buffer (`SO_SNDBUF`), bytes; `None` leaves the OS's
    /// (auto-tuned, up to megabytes per connection).
    pub socket_send_buffer: Option<usize>,
    /// Oldest ping accepted, relative to when the gateway got it (`location.max_age_ms`, the
    /// location filter's own limit: older would only be refused downstream as `stale`).
    pub max_ping_age_ms: i64,
}

impl GatewayConfig {
    /// Default produce timeout.
    pub const DEFAULT_PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default body limit: 64 KiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

    /// Settings producing order events to `events_topic` and GPS pings to
    /// `locations_topic`, with a 5 s produce timeout, a 64 KiB body limit and
    /// `Retry-After: 2`.
    pub fn new(events_topic: impl Into<String>, locations_topic: impl Into<String>) -> Self {
        Self {
            events_topic: events_topic.into(),
            locations_topic: locations_topic.into(),
            produce_timeout: Self::DEFAULT_PRODUCE_TIMEOUT,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            retry_after: Duration::from_secs(2),
            read_timeout: Duration::from_secs(2),
            socket_send_buffer: None,
            max_ping_age_ms: 120_000,
        }
    }

    /// Sets the oldest ping accepted.
    pub fn with_max_ping_age_ms(mut self, ms: i64) -> Self {
        self.max_ping_age_ms = ms;
        self
    }

    /// Sets the produce timeout.
    pub fn with_produce_timeout(mut self, timeout: Duration) -> Self {
        self.produce_timeout = timeout;
        self
    }

    /// Sets every connection's kernel send buffer.
    pub fn with_socket_send_buffer(mut self, bytes: Option<usize>) -> Self {
        self.socket_send_buffer = bytes;
        self
    }

    /// Sets the body limit.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

/// The handlers' shared state. Cheap to clone.
#[derive(Clone)]
pub struct GatewayState {
    pub(super) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(super) struct Inner {
    pub(super) key: TokenKeys,
    pub(super) sink: Arc<dyn EventSink>,
    pub(super) orders: Option<Arc<dyn OrderReader>>,
    pub(super) tracking: Option<Arc<LiveTracking>>,
    pub(super) catalog: &'static Catalog,
    pub(super) config: GatewayConfig,
    pub(super) metrics: GatewayMetrics,
    pub(super) limits: Arc<EdgeLimits>,
    pub(super) open_orders: Option<Arc<OpenOrdersCap>>,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GatewayState {
    /// State verifying tokens with `key` (a [`crate::auth::TokenKey`] or a key set) and
    /// producing through `sink`, Avro-encoded with `catalog`, without edge limits
    /// ([`EdgeConfig::unlimited`]; [`Self::with_limits`] sets them).
    pub fn new(
        key: impl Into<TokenKeys>,
        sink: Arc<dyn EventSink>,
        catalog: &'static Catalog,
        config: GatewayConfig,
        metrics: GatewayMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: key.into(),
                sink,
                orders: None,
                tracking: None,
                catalog,
                config,
                metrics,
                limits: Arc::new(EdgeLimits::new(EdgeConfig::unlimited())),
                open_orders: None,
            }),
        }
    }

    /// Applies the edge limits of `edge` (rate limits, quotas, registry, service area,
    /// sockets per subject, request timeout).
    pub fn with_limits(mut self, edge: EdgeConfig) -> Self {
        Arc::make_mut(&mut self.inner).limits = Arc::new(EdgeLimits::new(edge));
        self
    }

    /// Caps the open orders per customer with `cap`.
    pub fn with_open_orders_cap(mut self, cap: Arc<OpenOrdersCap>) -> Self {
        Arc::make_mut(&mut self.inner).open_orders = Some(cap);
        self
    }

    /// The edge limits.
    pub fn limits(&self) -> &Arc<EdgeLimits> {
        &self.inner.limits
    }

    /// Serves `GET /v1/orders/{order_id}` from `orders` (without a reader the route is not
    /// mounted).
    pub fn with_orders(mut self, orders: Arc<dyn OrderReader>) -> Self {
        Arc::make_mut(&mut self.inner).orders = Some(orders);
        self
    }

    /// Serves `GET /v1/orders/{order_id}/track` with `tracking` (it also needs an order
    /// reader, [`Self::with_orders`]; without either the route answers 503).
    pub fn with_tracking(mut self, tracking: Arc<LiveTracking>) -> Self {
        Arc::make_mut(&mut self.inner).tracking = Some(tracking);
        self
    }

    /// The live tracking, when configured.
    pub fn tracking(&self) -> Option<&Arc<LiveTracking>> {
        self.inner.tracking.as_ref()
    }

    /// The settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The metrics.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }
}
