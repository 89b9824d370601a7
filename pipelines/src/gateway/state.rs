//! What every handler shares: the token key, the event sink, the codec, the settings, the
//! metrics.

use super::track::LiveTracking;
use super::{EventSink, GatewayMetrics, OrderReader};
use crate::auth::TokenKey;
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
        }
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
    pub(super) key: TokenKey,
    pub(super) sink: Arc<dyn EventSink>,
    pub(super) orders: Option<Arc<dyn OrderReader>>,
    pub(super) tracking: Option<Arc<LiveTracking>>,
    pub(super) catalog: &'static Catalog,
    pub(super) config: GatewayConfig,
    pub(super) metrics: GatewayMetrics,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl GatewayState {
    /// State verifying tokens with `key` and producing through `sink`, Avro-encoded with
    /// `catalog`.
    pub fn new(
        key: TokenKey,
        sink: Arc<dyn EventSink>,
        catalog: &'static Catalog,
        config: GatewayConfig,
        metrics: GatewayMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                key,
                sink,
                orders: None,
                tracking: None,
                catalog,
                config,
                metrics,
            }),
        }
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
