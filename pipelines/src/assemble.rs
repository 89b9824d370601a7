//! Building a pipeline from the configuration: connections, stores, clients, the consumer
//! and the stage. Shared by `doorstep pipeline`, `doorstep demo` and the tests, so all three
//! run exactly the same thing. Also what each process needs configured before it connects to
//! anything ([`Process`], [`preflight`]), which `doorstep config check` and the compose test
//! use.

use crate::config::Config;
use crate::notify::{NotifyMetrics, NotifyStage};
use crate::runtime::{Lane, Runtime, RuntimeConfig, RuntimeMetrics, Stage};
use crate::status::{StatusMetrics, StatusSinks, StatusStage, StatusTopics};
use doorstep_connectors::command_outcomes::CommandOutcomes;
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::{ConsumerBuilder, KafkaConfig, Producer};
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_connectors::order_store::OrderStore;
use doorstep_connectors::payments::{PaymentsClient, PaymentsConfig};
use doorstep_connectors::push::{PushClient, PushConfig, SentLedger};
use doorstep_connectors::redis::{Redis, RedisOptions, RedisTarget};
use doorstep_connectors::scylla::{self as cql, Replication, ScyllaConfig};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::avro::registry::{RegistryConfig, RegistryError};
use doorstep_schemas::events::topics;
use prometheus::Registry;
use std::sync::Arc;

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// A setting the process needs is missing.
    #[error("the {pipeline} needs {setting}: {why}")]
    Missing {
        /// Which pipeline.
        pipeline: &'static str,
        /// Which setting (file key and variable).
        setting: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A setting the process needs has a value it cannot use.
    #[error("{process} cannot start: {message}")]
    Invalid {
        /// Which process.
        process: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Kafka client creation failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] doorstep_connectors::kafka::Error),
    /// CQL connection or keyspace failed.
    #[error("CQL: {0}")]
    Cql(#[from] doorstep_connectors::scylla::Error),
    /// Order store preparation failed.
    #[error("order store: {0}")]
    Store(#[from] doorstep_connectors::order_store::Error),
    /// Redis connection failed.
    #[error("Redis: {0}")]
    Redis(#[from] doorstep_connectors::redis::Error),
    /// Payment client creation failed.
    #[error("payments: {0}")]
    Payments(#[from] doorstep_connectors::payments::Error),
    /// Push client creation failed.
    #[error("push: {0}")]
    Push(#[from] doorstep_connectors::push::Error),
    /// The schemas could not be registered with, or looked up in, the schema registry.
    #[error("schemas: {0}")]
    Schemas(#[from] doorstep_schemas::avro::registry::RegistryError),
    /// The routing client could not be built.
    #[error("routing: {0}")]
    Routing(#[from] doorstep_connectors::routing::Error),
    /// Metric registration failed (a name registered twice).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A Doorstep process as a deployment runs it (`doorstep gateway`, `doorstep pipeline NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// `doorstep gateway`.
    Gateway,
    /// `doorstep pipeline status` (with side effects).
    Status,
    /// `doorstep pipeline location`.
    Location,
    /// `doorstep pipeline eta`.
    Eta,
    /// `doorstep pipeline notify`.
    Notify,
    /// `doorstep topics ensure` (creates topics, registers schemas).
    TopicsEnsure,
}

impl Process {
    /// The process a `doorstep` command line runs (`["pipeline", "status"]`), if any.
    pub fn from_command(words: &[&str]) -> Option<Self> {
        Some(match words {
            ["gateway", ..] => Self::Gateway,
            ["pipeline", "status", ..] => Self::Status,
            ["pipeline", "location", ..] => Self::Location,
            ["pipeline", "eta", ..] => Self::Eta,
            ["pipeline", "notify", ..] => Self::Notify,
            ["topics", "ensure", ..] => Self::TopicsEnsure,
            _ => return None,
        })
    }

    /// The `services.*` endpoints (setting keys) its builders here connect to: none of these
    /// may be left to a loopback default in a container.
    pub fn endpoints(self) -> &'static [&'static str] {
        const KAFKA: &str = "services.kafka_brokers";
        const REGISTRY: &str = "services.schema_registry_url";
        const REDIS: &str = "services.redis_url";
        const CQL: &str = "services.cql_nodes";
        const OSRM: &str = "services.osrm_url";
        match self {
            Self::Gateway | Self::Status | Self::Location => &[KAFKA, REGISTRY, REDIS, CQL],
            Self::Eta => &[KAFKA, REGISTRY, REDIS, CQL, OSRM],
            Self::Notify => &[KAFKA, REGISTRY, REDIS],
            Self::TopicsEnsure => &[KAFKA, REGISTRY],
        }
    }

    /// Its name in errors.
    const fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Status => "status",
            Self::Location => "location",
            Self::Eta => "eta",
            Self::Notify => "notify",
            Self::TopicsEnsure => "topics ensure",
        }
    }
}

/// The payment provider the status pipeline refunds through: required with side effects.
fn require_payments(config: &Config) -> Result<&crate::config::PaymentsSettings, AssembleError> {
    config.payments.as_ref().ok_or(AssembleError::Missing {
        pipeline: "status pipeline",
        setting: "payments.url (DOORSTEP_PAYMENTS_URL)",
        why: "refunds cannot be skipped silently; set it, or run with side effects off",
    })
}

/// The push provider the notify pipeline sends through.
fn require_push(config: &Config) -> Result<&crate::config::PushSettings, AssembleError> {
    config.push.as_ref().ok_or(AssembleError::Missing {
        pipeline: "notify pipeline",
        setting: "push.url (DOORSTEP_PUSH_URL)",
        why: "there is nowhere to send pushes",
    })
}

/// Checks, without connecting to anything, that `config` has what `process` cannot start
/// without: the settings the builders of this module (and the gateway) refuse to run without.
/// Settings with defaults and the services' reachability are not checked here.
pub fn preflight(config: &Config, process: Process) -> Result<(), AssembleError> {
    match process {
        Process::Status => require_payments(config).map(drop),
        Process::Notify => require_push(config).map(drop),
        Process::Gateway => match crate::auth::TokenKeys::from_config(config) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(AssembleError::Missing {
                pipeline: process.name(),
                setting: "gateway.auth_secret (DOORSTEP_AUTH_SECRET)",
                why: "bearer tokens cannot be verified without it",
            }),
            Err(e) => Err(AssembleError::Invalid {
                process: process.name(),
                message: e.to_string(),
            }),
        },
        Process::Location | Process::Eta | Process::TopicsEnsure => Ok(()),
    }
}

/// Options of the status pipeline.
#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    /// Refunds and notifications are carried out (off for replays).
    pub side_effects: bool,
    /// Runtime tuning.
    pub runtime: RuntimeConfig,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            side_effects: true,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// The Kafka client settings of a process.
pub fn kafka_config(config: &Config, client_id: &str) -> KafkaConfig {
    KafkaConfig::new(&config.endpoints.kafka_brokers, client_id)
        .with_fetch_wait(config.kafka_fetch_wait)
        .with_transaction_timeout(config.kafka_transaction_timeout)
}

/// The producer every output of one lane of `pipeline` goes through (its stage, its poison
/// rejects, and the lane's transactions with the consumed offsets): transactional with id
/// `<group>.<instance>.<lane>` (`instance` is `kafka.instance_id`, or one random per start,
/// shared by the lanes), unless `kafka.exactly_once` is off.
async fn output_producer(
    config: &Config,
    kafka: &KafkaConfig,
    pipeline: &str,
    instance: &str,
    lane: usize,
) -> Result<Producer, AssembleError> {
    if !config.exactly_once {
        return Ok(Producer::new(kafka)?);
    }
    let id = format!("{}.{instance}.{lane}", config.group_id(pipeline));
    Ok(Producer::transactional(kafka, &id).await?)
}

/// The `lanes` lanes of `pipeline`: each with its own output producer ([`output_producer`]),
/// the stage `build` makes around that producer, and poison rejects written through it.
async fn lanes<S: Stage>(
    config: &Config,
    kafka: &KafkaConfig,
    catalog: &'static Catalog,
    pipeline: &str,
    lanes: usize,
    mut build: impl FnMut(Producer) -> S,
) -> Result<Vec<Lane<S>>, AssembleError> {
    let instance = config
        .instance_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let mut built = Vec::with_capacity(lanes.max(1));
    for lane in 0..lanes.max(1) {
        let producer = output_producer(config, kafka, pipeline, &instance, lane).await?;
        let poison = poison_rejects(config, &producer, catalog, pipeline);
        built.push(
            Lane::new(build(producer.clone()))
                .with_poison_rejects(poison)
                .with_outputs(producer),
        );
    }
    Ok(built)
}

/// The schema registry settings of a process: `services.schema_registry_url`, subjects named
/// after the prefixed topics, registering as `schemas.auto_register` says.
pub fn registry_config(config: &Config) -> RegistryConfig {
    RegistryConfig::new(&config.endpoints.schema_registry_url)
        .with_topic_prefix(&config.topic_prefix)
        .with_register(config.schema_auto_register)
}

/// The codec of a process: this build's schemas registered with (or looked up in) the
/// configured registry, records written with the registry's ids. Built once per pipeline or
/// server and kept for the life of the process.
pub async fn catalog(config: &Config) -> Result<&'static Catalog, RegistryError> {
    let registry = registry_config(config);
    let catalog = Catalog::connect(&registry).await?;
    tracing::info!(
        url = %registry.url,
        registered = registry.register,
        "schemas resolved with the schema registry"
    );
    Ok(Box::leak(Box::new(catalog)))
}

/// Where a pipeline's runtime writes records its stage fails on for good: the reject topic.
fn poison_rejects(
    config: &Config,
    producer: &Producer,
    catalog: &'static Catalog,
    pipeline: &str,
) -> crate::runtime::PoisonRejects {
    crate::runtime::PoisonRejects::new(
        crate::runtime::Emitter::new(producer.clone(), catalog),
        config.topic(topics::ORDER_REJECTED),
        pipeline,
    )
}

/// Connects to Redis as configured (single node or cluster).
pub async fn redis(config: &Config) -> Result<Redis, AssembleError> {
    let target = if config.redis_cluster {
        RedisTarget::Cluster(config.endpoints.redis_cluster_urls.clone())
    } else {
        RedisTarget::Single(config.endpoints.redis_url.clone())
    };
    Ok(Redis::connect(target, RedisOptions::default()).await?)
}

/// Connects to CQL, creates the keyspace and tables if missing, prepares the order store.
pub async fn order_store(config: &Config) -> Result<OrderStore, AssembleError> {
    let session = cql::connect(
        &ScyllaConfig::new(config.endpoints.cql_nodes.clone()).with_keyspace(&config.cql_keyspace),
    )
    .await?;
    cql::create_keyspace(
        &session,
        &config.cql_keyspace,
        &Replication::Simple(config.cql_replication_factor),
    )
    .await?;
    OrderStore::ensure_schema(&session, &config.cql_keyspace).await?;
    Ok(OrderStore::new(Arc::new(session), &config.cql_keyspace).await?)
}

/// Builds the status pipeline: consumer of `orders.events.v1` in group `<prefix>.status`.
pub async fn status_pipeline(
    config: &Config,
    options: StatusOptions,
    registry: &Registry,
) -> Result<(Runtime, Vec<Lane<StatusStage>>), AssembleError> {
    let payments = if options.side_effects {
        let p = require_payments(config)?;
        Some(PaymentsClient::new(&PaymentsConfig::new(
            &p.url,
            p.secret_key.expose(),
        ))?)
    } else {
        None
    };
    let catalog = catalog(config).await?;
    let kafka = kafka_config(config, "doorstep-status");
    let events = config.topic(topics::ORDER_EVENTS);
    let consumer =
        ConsumerBuilder::new(&kafka, config.group_id("status")).subscribe(&[events.as_str()])?;
    let redis = redis(config).await?;
    let live = options
        .side_effects
        .then(|| LiveFeed::new(redis.clone(), config.redis_key_prefix.clone()));
    let topics = StatusTopics {
        events: events.clone(),
        status: config.topic(topics::ORDER_STATUS),
        tracking: config.topic(topics::ORDER_TRACKING),
        notifications: config.topic(topics::NOTIFICATIONS),
        rejected: config.topic(topics::ORDER_REJECTED),
    };
    let store = order_store(config).await?;
    let drivers = DriverState::new(redis.clone(), config.redis_key_prefix.clone());
    let metrics = StatusMetrics::register(registry)?;
    let lanes = lanes(
        config,
        &kafka,
        catalog,
        "status",
        options.runtime.lanes,
        |producer| {
            let sinks = StatusSinks {
                emitter: crate::runtime::Emitter::new(producer, catalog),
                topics: topics.clone(),
                store: store.clone(),
                drivers: drivers.clone(),
                payments: payments.clone(),
                notify: options.side_effects,
                live: live.clone(),
                outcomes: live.clone().map(CommandOutcomes::new),
            };
            StatusStage::new(sinks, catalog, config.policy, metrics.clone())
        },
    )
    .await?;
    let runtime = Runtime::new(
        consumer,
        events,
        options.runtime,
        RuntimeMetrics::register(registry, "status")?,
    );
    Ok((runtime, lanes))
}

/// Builds the notify pipeline: consumer of `notifications.v1` in group `<prefix>.notify`.
pub async fn notify_pipeline(
    config: &Config,
    runtime: RuntimeConfig,
    registry: &Registry,
) -> Result<(Runtime, Vec<Lane<NotifyStage>>), AssembleError> {
    let push = require_push(config)?;
    let catalog = catalog(config).await?;
    let kafka = kafka_config(config, "doorstep-notify");
    let topic = config.topic(topics::NOTIFICATIONS);
    let consumer =
        ConsumerBuilder::new(&kafka, config.group_id("notify")).subscribe(&[topic.as_str()])?;
    let push = PushClient::new(&PushConfig::new(
        &push.url,
        &push.project_id,
        push.access_token.expose(),
    ))?;
    let ledger = SentLedger::new(redis(config).await?, config.redis_key_prefix.clone());
    let rejected = config.topic(topics::ORDER_REJECTED);
    let metrics = NotifyMetrics::register(registry)?;
    let lanes = lanes(
        config,
        &kafka,
        catalog,
        "notify",
        runtime.lanes,
        |producer| {
            NotifyStage::new(
                push.clone(),
                ledger.clone(),
                crate::runtime::Emitter::new(producer, catalog),
                rejected.clone(),
                metrics.clone(),
            )
        },
    )
    .await?;
    let runtime = Runtime::new(
        consumer,
        topic,
        runtime,
        RuntimeMetrics::register(registry, "notify")?,
    );
    Ok((runtime, lanes))
}

/// Options of the location pipeline.
#[derive(Debug, Clone, Copy)]
pub struct LocationOptions {
    /// The ping filter's thresholds.
    pub policy: doorstep_operators::location::LocationPolicy,
    /// Region grid cell of the active-drivers GEO sets, degrees.
    pub cell_deg: f64,
    /// Publish only the latest live frame of each order in a batch.
    pub conflate_frames: bool,
    /// Runtime tuning.
    pub runtime: RuntimeConfig,
}

impl Default for LocationOptions {
    fn default() -> Self {
        Self {
            policy: doorstep_operators::location::LocationPolicy::default(),
            cell_deg: crate::location::DEFAULT_CELL_DEG,
            conflate_frames: true,
            runtime: RuntimeConfig::default(),
        }
    }
}

/// Builds the location pipeline: consumer of `drivers.locations.v1` in group
/// `<prefix>.location`.
pub async fn location_pipeline(
    config: &Config,
    options: LocationOptions,
    registry: &Registry,
) -> Result<(Runtime, Vec<Lane<crate::location::LocationStage>>), AssembleError> {
    use crate::location::{LocationMetrics, LocationSinks, LocationStage, LocationTopics};
    let catalog = catalog(config).await?;
    let kafka = kafka_config(config, "doorstep-location");
    let source = config.topic(topics::DRIVER_LOCATIONS);
    let consumer =
        ConsumerBuilder::new(&kafka, config.group_id("location")).subscribe(&[source.as_str()])?;
    let redis = redis(config).await?;
    let orders = doorstep_connectors::driver_orders::DriverOrders::new(
        crate::location::DRIVER_ORDERS_CAPACITY,
        crate::location::DRIVER_ORDERS_TTL,
    );
    orders.follow(&redis, &config.redis_key_prefix).await?;
    let topics = LocationTopics {
        tracking: config.topic(topics::ORDER_TRACKING),
        rejected: config.topic(topics::ORDER_REJECTED),
    };
    let store = doorstep_connectors::location_store::LocationStore::new(
        redis.clone(),
        config.redis_key_prefix.clone(),
    );
    let live =
        doorstep_connectors::live_feed::LiveFeed::new(redis, config.redis_key_prefix.clone());
    let trips = order_store(config).await?;
    let metrics = LocationMetrics::register(registry)?;
    let lanes = lanes(
        config,
        &kafka,
        catalog,
        "location",
        options.runtime.lanes,
        |producer| {
            let sinks = LocationSinks {
                emitter: crate::runtime::Emitter::new(producer, catalog),
                topics: topics.clone(),
                store: store.clone(),
                live: live.clone(),
                trips: trips.clone(),
                orders: orders.clone(),
            };
            LocationStage::new(
                sinks,
                doorstep_operators::location::LocationFilter::new(options.policy),
                options.cell_deg,
                options.conflate_frames,
                metrics.clone(),
            )
        },
    )
    .await?;
    let runtime = Runtime::new(
        consumer,
        source,
        options.runtime,
        RuntimeMetrics::register(registry, "location")?,
    );
    Ok((runtime, lanes))
}
/// Options of the ETA pipeline.
#[derive(Debug, Clone)]
pub struct EtaOptions {
    /// The clock ETAs and timers are measured against (tests inject a manual one).
    pub clock: Arc<dyn crate::eta::Clock>,
    /// Runtime tuning.
    pub runtime: RuntimeConfig,
}

impl Default for EtaOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(crate::eta::SystemClock),
            runtime: RuntimeConfig::default(),
        }
    }
}

/// The router the ETA pipeline uses, from the `eta.*` settings and `services.osrm_url`.
pub fn eta_router(config: &Config) -> Result<doorstep_connectors::routing::Router, AssembleError> {
    use doorstep_connectors::routing::{
        BreakerConfig, OsrmClient, OsrmConfig, Router, RouterConfig,
    };
    use std::time::Duration;
    let eta = &config.eta;
    let timeout = Duration::from_millis(eta.routing_timeout_ms);
    let client = OsrmClient::new(
        &OsrmConfig::new(&config.endpoints.osrm_url)
            .with_request_timeout(timeout)
            .with_connect_timeout(timeout / 4)
            // A point more than 1 km off any road is not a delivery address: fall back.
            .with_max_snap_distance(1_000.0),
    )?;
    let mut router = RouterConfig::default();
    router.geohash_precision = eta.geohash_precision;
    router.time_bucket_min = eta.time_bucket_min;
    router.cache_ttl = Duration::from_secs(eta.cache_ttl_s);
    router.breaker = BreakerConfig::new(
        eta.breaker_failures,
        Duration::from_secs(eta.breaker_open_s),
    );
    router.fallback =
        doorstep_operators::eta::TravelModel::new(eta.road_factor, eta.fallback_speed_kmh);
    Ok(Router::new(client, router))
}

/// The ETA computation policy from the `eta.*` settings.
pub fn eta_policy(config: &Config) -> crate::eta::EtaPolicy {
    let eta = &config.eta;
    crate::eta::EtaPolicy::new(
        i64::from(eta.recompute_interval_s) * 1_000,
        doorstep_operators::eta::PrepModel::new(
            f64::from(eta.default_prep_s),
            usize::try_from(eta.prep_min_observations).unwrap_or(usize::MAX),
        ),
        doorstep_operators::eta::TravelModel::new(eta.road_factor, eta.fallback_speed_kmh),
    )
}

/// Builds the ETA pipeline: consumer of `orders.status.v1` in group `<prefix>.eta`.
pub async fn eta_pipeline(
    config: &Config,
    options: EtaOptions,
    registry: &Registry,
) -> Result<(Runtime, Vec<Lane<crate::eta::EtaStage>>), AssembleError> {
    use crate::eta::{EtaMetrics, EtaSinks, EtaStage, EtaTopics};
    let catalog = catalog(config).await?;
    let kafka = kafka_config(config, "doorstep-eta");
    let source = config.topic(topics::ORDER_STATUS);
    let consumer =
        ConsumerBuilder::new(&kafka, config.group_id("eta")).subscribe(&[source.as_str()])?;
    let redis = redis(config).await?;
    let topics = EtaTopics {
        eta: config.topic(topics::ORDER_ETA),
        rejected: config.topic(topics::ORDER_REJECTED),
    };
    let store = order_store(config).await?;
    let locations = doorstep_connectors::location_store::LocationStore::new(
        redis.clone(),
        config.redis_key_prefix.clone(),
    );
    let live =
        doorstep_connectors::live_feed::LiveFeed::new(redis, config.redis_key_prefix.clone());
    let router = Arc::new(eta_router(config)?);
    let policy = eta_policy(config);
    let metrics = EtaMetrics::register(registry)?;
    let lanes = lanes(
        config,
        &kafka,
        catalog,
        "eta",
        options.runtime.lanes,
        |producer| {
            let sinks = EtaSinks {
                emitter: crate::runtime::Emitter::new(producer, catalog),
                topics: topics.clone(),
                store: store.clone(),
                locations: locations.clone(),
                live: live.clone(),
                router: router.clone(),
            };
            EtaStage::new(sinks, policy, options.clock.clone(), metrics.clone())
        },
    )
    .await?;
    let runtime = Runtime::new(
        consumer,
        source,
        options.runtime,
        RuntimeMetrics::register(registry, "eta")?,
    );
    Ok((runtime, lanes))
}
