//! Running a replay: plan the offsets, assign a consumer in the replay group, run the
//! replay stage on a bounded runtime until the end of the plan, summarise.

use super::{ReplayPlan, ReplayStage, Summary, progress};
use crate::assemble::{self, AssembleError};
use crate::config::Config;
use crate::runtime::{Lane, Runtime, RuntimeConfig, RuntimeError, RuntimeMetrics};
use crate::shutdown::Signal;
use doorstep_connectors::kafka::ConsumerBuilder;
use doorstep_schemas::events::topics;
use doorstep_schemas::model::Timestamp;
use prometheus::Registry;
use std::time::Instant;

/// What to replay and where to write it.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Start (inclusive); `None` = the beginning of the topic.
    pub from: Option<Timestamp>,
    /// End (exclusive); `None` = the end of the topic when the replay starts.
    pub until: Option<Timestamp>,
    /// Keyspace to write (created with its tables when missing); `None` = the live one.
    pub keyspace: Option<String>,
    /// Also rebuild prep-time observations.
    pub prep_times: bool,
    /// Find the offsets by scanning even if the broker has a time index.
    pub force_scan: bool,
    /// Consumer group (commits); `None` = `<group_prefix>.replay`.
    pub group: Option<String>,
    /// Show progress on stderr.
    pub progress: bool,
    /// Runtime tuning (`None` = defaults).
    pub runtime: Option<RuntimeConfig>,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Planning or reading the topic failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] doorstep_connectors::kafka::Error),
    /// Connecting to the target keyspace failed.
    #[error("{0}")]
    Assemble(#[from] AssembleError),
    /// The runtime stopped on a fatal error.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// The schemas could not be resolved with the schema registry.
    #[error("schemas: {0}")]
    Schemas(#[from] doorstep_schemas::avro::registry::RegistryError),
    /// Metric registration failed.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Plans the replay of `orders.events.v1` as `options` say.
pub async fn plan(config: &Config, options: &ReplayOptions) -> Result<ReplayPlan, ReplayError> {
    let kafka = assemble::kafka_config(config, "doorstep-replay");
    let topic = config.topic(topics::ORDER_EVENTS);
    Ok(ReplayPlan::new(
        &kafka,
        &topic,
        options.from,
        options.until,
        options.force_scan,
    )
    .await?)
}

/// Runs `plan` to its end (or until `shutdown`): returns the summary.
pub async fn replay(
    config: &Config,
    plan: &ReplayPlan,
    options: &ReplayOptions,
    registry: &Registry,
    shutdown: Signal,
) -> Result<Summary, ReplayError> {
    let started = Instant::now();
    let mut target = config.clone();
    if let Some(ks) = &options.keyspace {
        target.cql_keyspace.clone_from(ks);
    }
    let store = assemble::order_store(&target).await?;
    let stage = ReplayStage::new(
        store,
        assemble::catalog(config).await?,
        config.policy,
        options.prep_times,
    );
    let counts = stage.counts();
    if plan.total() == 0 {
        return Ok(Summary::of(&counts, started.elapsed()));
    }
    let kafka = assemble::kafka_config(config, "doorstep-replay");
    let group = options
        .group
        .clone()
        .unwrap_or_else(|| config.group_id("replay"));
    let consumer = ConsumerBuilder::new(&kafka, group).assign(&plan.starts())?;
    let runtime = Runtime::new(
        consumer,
        plan.topic.clone(),
        options.runtime.unwrap_or_default(),
        RuntimeMetrics::register(registry, "replay")?,
    )
    .bounded(plan.stop_offsets());
    let display = options
        .progress
        .then(|| progress::spawn_display(counts.clone(), u64::try_from(plan.total()).unwrap_or(0)));
    // One lane: a replay writes no topic, and its progress counts are one stage's.
    let result = runtime.run([Lane::new(stage)], shutdown).await;
    if let Some(d) = display {
        d.abort();
        eprintln!();
    }
    result?;
    Ok(Summary::of(&counts, started.elapsed()))
}
