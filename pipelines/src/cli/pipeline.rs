//! `doorstep pipeline <name>`: run one pipeline (or all of them) until SIGINT/SIGTERM, with
//! `/metrics` and `/healthz` on `ops.listen`.

use crate::assemble::{self, StatusOptions};
use crate::config::Config;
use crate::ops::{self, Health};
use crate::runtime::RuntimeConfig;
use crate::shutdown;
use clap::{Args, ValueEnum};
use doorstep_connectors::kafka::Producer;

/// Which pipeline to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PipelineName {
    /// Order events → state machine → ScyllaDB, status/notification/reject topics, refunds.
    Status,
    /// Notifications outbox → push provider.
    Notify,
    /// GPS pings → filter → Redis GEO sets, tracking channel and topic.
    Location,
    /// Status changes and 30 s timers → routed ETA ranges on the live channel, Redis,
    /// `orders.eta.v1` and the order row.
    Eta,
    /// Every pipeline in this process.
    All,
}

/// `doorstep pipeline` arguments.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline.
    pub name: PipelineName,
    /// Do not carry out external side effects (refunds, notifications), e.g. for a backfill.
    #[arg(long)]
    pub no_side_effects: bool,
}

/// Runs the pipeline(s) until shutdown.
pub async fn run(config: &Config, args: &PipelineArgs) -> anyhow::Result<()> {
    let registry = ops::process_registry()?;
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    let runtime = RuntimeConfig {
        lanes: config.lanes,
        ..RuntimeConfig::default()
    };
    let kafka = Producer::new(&assemble::kafka_config(config, "doorstep-health"))?;
    let health = Health::new().with("kafka", move || {
        let p = kafka.clone();
        async move { p.ping().await.map_err(|e| e.to_string()) }
    });
    let ops = ops::spawn(config.ops_listen, registry.clone(), health, signal.clone());

    let status = matches!(args.name, PipelineName::Status | PipelineName::All);
    let notify =
        matches!(args.name, PipelineName::Notify | PipelineName::All) && !args.no_side_effects;
    let location = matches!(args.name, PipelineName::Location | PipelineName::All);
    let eta = matches!(args.name, PipelineName::Eta | PipelineName::All);
    let mut tasks = tokio::task::JoinSet::new();
    if status {
        let options = StatusOptions {
            side_effects: !args.no_side_effects,
            runtime,
        };
        let (rt, stage) = assemble::status_pipeline(config, options, &registry).await?;
        let signal = signal.clone();
        tasks.spawn(async move {
            rt.run(stage, signal)
                .await
                .map_err(|e| anyhow::anyhow!("status pipeline: {e}"))
        });
        tracing::info!("status pipeline running");
    }
    if notify {
        let (rt, stage) = assemble::notify_pipeline(config, runtime, &registry).await?;
        let signal = signal.clone();
        tasks.spawn(async move {
            rt.run(stage, signal)
                .await
                .map_err(|e| anyhow::anyhow!("notify pipeline: {e}"))
        });
        tracing::info!("notify pipeline running");
    }
    if location {
        let options = assemble::LocationOptions {
            runtime,
            policy: config.live.filter,
            cell_deg: config.live.region_cell_deg,
            ..assemble::LocationOptions::default()
        };
        let (rt, stage) = assemble::location_pipeline(config, options, &registry).await?;
        let signal = signal.clone();
        tasks.spawn(async move {
            rt.run(stage, signal)
                .await
                .map_err(|e| anyhow::anyhow!("location pipeline: {e}"))
        });
        tracing::info!("location pipeline running");
    }
    if eta {
        let options = assemble::EtaOptions {
            runtime,
            ..assemble::EtaOptions::default()
        };
        let (rt, stage) = assemble::eta_pipeline(config, options, &registry).await?;
        let signal = signal.clone();
        tasks.spawn(async move {
            rt.run(stage, signal)
                .await
                .map_err(|e| anyhow::anyhow!("eta pipeline: {e}"))
        });
        tracing::info!("eta pipeline running");
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(anyhow::anyhow!("pipeline task failed: {e}")),
        }
    }
    ops.abort();
    result
}
