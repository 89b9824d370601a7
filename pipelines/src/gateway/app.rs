//! [`Gateway`]: the whole process as `doorstep gateway` runs it, built from the
//! configuration, so that the command and the integration tests wire it the same way.

use super::limits::{OpenOrdersCap, OpenOrdersConnector};
use super::server::ServerLimits;
use super::track::{LiveTracking, RedisConnector, TrackingConfig, TrackingMetrics};
use super::{GatewayConfig, GatewayMetrics, GatewayState, KafkaSink, LazyOrderStore, OrderReader};
use crate::auth::{KeyError, TokenKeys};
use crate::config::Config;
use crate::shutdown;
use axum::Router;
use doorstep_connectors::open_orders::OpenOrders;
use doorstep_connectors::scylla::ScyllaConfig;
use doorstep_schemas::avro::registry::RegistryError;
use doorstep_schemas::events::topics;
use prometheus::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why the gateway cannot start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// `gateway.auth_secret` is not set.
    #[error("the gateway needs gateway.auth_secret (DOORSTEP_AUTH_SECRET) to verify bearer tokens")]
    NoSecret,
    /// The secret cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The producer cannot be created.
    #[error(transparent)]
    Kafka(#[from] doorstep_connectors::kafka::Error),
    /// The schemas cannot be registered with, or looked up in, the schema registry.
    #[error(transparent)]
    Schemas(#[from] RegistryError),
    /// The metrics cannot be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Serving failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// The gateway process: its state, its public router (the API), its ops router (`/metrics`,
/// `/healthz`, for the ops listener) and its producer.
#[derive(Debug)]
pub struct Gateway {
    state: GatewayState,
    registry: Registry,
    sink: KafkaSink,
    /// Extra routes merged into the router (the demo page, when enabled).
    extra: Option<Router>,
}

impl Gateway {
    /// A gateway producing to `config`'s brokers and (prefixed) `orders.events.v1` and
    /// `drivers.locations.v1`, verifying
    /// tokens with `config.auth_secret`, waiting at most `produce_timeout` for each ack.
    pub async fn from_config(
        config: &Config,
        produce_timeout: Duration,
    ) -> Result<Self, GatewayError> {
        let key = TokenKeys::from_config(config)?.ok_or(GatewayError::NoSecret)?;
        let sink = KafkaSink::new(&config.endpoints.kafka_brokers, produce_timeout)?;
        let registry = crate::ops::process_registry()?;
        let metrics = GatewayMetrics::register(&registry)?;
        let settings = GatewayConfig::new(
            config.topic(topics::ORDER_EVENTS),
            config.topic(topics::DRIVER_LOCATIONS),
        )
        .with_produce_timeout(produce_timeout)
        .with_socket_send_buffer(config.live.socket_send_buffer)
        .with_max_ping_age_ms(config.live.filter.max_age_ms);
        let state = GatewayState::new(
            key,
            Arc::new(sink.clone()),
            crate::assemble::catalog(config).await?,
            settings,
            metrics,
        )
        .with_limits(config.edge.clone());
        Ok(Self {
            state,
            registry,
            sink,
            extra: None,
        })
    }

    /// Serves `GET /v1/orders/{order_id}` from `config`'s order store (CQL nodes and
    /// keyspace), connected on first use so that a store outage never stops order intake.
    pub fn with_order_store(self, config: &Config) -> Self {
        let cql = ScyllaConfig::new(config.endpoints.cql_nodes.clone())
            .with_keyspace(&config.cql_keyspace)
            .with_connect_timeout(Duration::from_secs(2))
            .with_request_timeout(Duration::from_secs(2));
        self.with_order_reader(Arc::new(LazyOrderStore::new(cql, &config.cql_keyspace)))
    }

    /// Serves `GET /v1/orders/{order_id}` and the tracking snapshots from `reader`
    /// ([`Self::with_order_store`] passes the CQL store).
    pub fn with_order_reader(mut self, reader: Arc<dyn OrderReader>) -> Self {
        self.state = self.state.with_orders(reader);
        self
    }

    /// Also serves `routes` (e.g. [`super::page::DemoPage::router`]); they must not define a
    /// fallback.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra = Some(match self.extra.take() {
            Some(r) => r.merge(routes),
            None => routes,
        });
        self
    }

    /// Serves the customer WebSocket `GET /v1/orders/{order_id}/track` from `config`'s Redis
    /// (connected on first use) and keys. Needs [`Self::with_order_store`] for snapshots.
    pub fn with_live_tracking(
        mut self,
        config: &Config,
        settings: TrackingConfig,
    ) -> Result<Self, GatewayError> {
        let metrics = TrackingMetrics::register(&self.registry)?;
        let for_connect = config.clone();
        let connect: RedisConnector = Arc::new(move || {
            let config = for_connect.clone();
            Box::pin(async move {
                crate::assemble::redis(&config)
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        let tracking =
            LiveTracking::new(connect, config.redis_key_prefix.clone(), settings, metrics);
        self.state = self.state.with_tracking(Arc::new(tracking));
        Ok(self)
    }

    /// Caps the open orders per customer (`gateway.max_open_orders`, 0: no cap) with sets in
    /// `config`'s Redis (connected on first use). Needs [`Self::with_order_store`] (to prune
    /// orders that are over); without it nothing is capped.
    pub fn with_open_orders_cap(mut self, config: &Config) -> Self {
        let max = config.edge.max_open_orders;
        let Some(orders) = self.state.inner.orders.clone() else {
            tracing::warn!("no order store: open orders per customer are not capped");
            return self;
        };
        if max == 0 {
            return self;
        }
        let for_connect = config.clone();
        let connect: OpenOrdersConnector = Arc::new(move || {
            let config = for_connect.clone();
            Box::pin(async move {
                let redis = crate::assemble::redis(&config)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(OpenOrders::new(redis, config.redis_key_prefix.clone()))
            })
        });
        let cap = OpenOrdersCap::new(connect, orders, max);
        self.state = self.state.with_open_orders_cap(Arc::new(cap));
        self
    }

    /// The shared state.
    pub fn state(&self) -> &GatewayState {
        &self.state
    }

    /// The codec the gateway writes records with (ids from the schema registry).
    pub fn catalog(&self) -> &'static doorstep_schemas::avro::Catalog {
        self.state.inner.catalog
    }

    /// The metrics registry (`/metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The public router: API routes (and the extra routes). No ops routes: see
    /// [`Self::ops_router`].
    pub fn router(&self) -> Router {
        let router = super::router(self.state.clone());
        match &self.extra {
            Some(extra) => router.merge(extra.clone()),
            None => router,
        }
    }

    /// `/metrics` and `/healthz` (broker reachability, cached), for the ops listener.
    pub fn ops_router(&self) -> Router {
        crate::ops::router(self.registry.clone(), super::health(&self.state))
    }

    /// Serves on `listener` until `shutdown` says stop, finishes the requests in flight, then
    /// flushes the producer (bounded) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: shutdown::Signal,
    ) -> Result<(), GatewayError> {
        if let Some(tracking) = self.state.tracking().cloned() {
            let mut signal = shutdown.clone();
            tokio::spawn(async move {
                shutdown::stopped(&mut signal).await;
                tracking.stop();
            });
        }
        let limits = ServerLimits {
            send_buffer: self.state.config().socket_send_buffer,
            ..ServerLimits::from_edge(self.state.limits().config())
        };
        let metrics = self.state.metrics().clone();
        super::server::serve(listener, self.router(), shutdown, limits, metrics).await?;
        if let Err(e) = self.sink.producer().flush(Duration::from_secs(5)).await {
            tracing::warn!(error = %e, "producer not flushed at shutdown");
        }
        tracing::info!("gateway stopped");
        Ok(())
    }

    /// Whether the broker answers now (logged at start; `/healthz` asks again each time).
    pub async fn ping_broker(&self) -> Result<(), String> {
        self.sink.producer().ping().await.map_err(|e| e.to_string())
    }
}
