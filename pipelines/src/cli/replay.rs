//! `doorstep replay`: re-read `orders.events.v1` between two times through the state machine
//! and rewrite the derived state (order rows, timelines, optionally prep times) into the live
//! keyspace or a fresh one. Never sends pushes or refunds, never writes the output topics or
//! Redis (see `replay` in the library docs and docs/operations.md).

use crate::config::Config;
use crate::replay::{self, ReplayOptions, parse_time};
use crate::shutdown;
use clap::Args;
use doorstep_connectors::kafka::Lookup;
use doorstep_schemas::model::Timestamp;
use prometheus::Registry;

/// `doorstep replay` arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Start: RFC 3339 UTC (`2026-11-25T08:00:00Z`), epoch milliseconds, or an age (`24h`).
    /// Default: the beginning of the topic.
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive), same forms. Default: the end of the topic when the replay starts.
    #[arg(long)]
    pub until: Option<String>,
    /// Rebuild into this keyspace (created with its tables if missing) instead of the live
    /// one. Use a new name to rebuild from scratch; start at the beginning (no --from) so
    /// every order's first event is included.
    #[arg(long, value_name = "KEYSPACE")]
    pub into: Option<String>,
    /// Also rebuild the prep-time history (PREPARING → READY_FOR_PICKUP durations).
    #[arg(long)]
    pub prep_times: bool,
    /// Find the start and end offsets by scanning the records, not the broker's time index.
    #[arg(long)]
    pub scan: bool,
    /// Consumer group for the replay's commits (default `<group_prefix>.replay`).
    #[arg(long)]
    pub group: Option<String>,
    /// Show what would be read and stop.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the replay and prints its plan and summary.
pub async fn run(config: &Config, args: &ReplayArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let time = |s: &Option<String>, what: &str| -> anyhow::Result<Option<Timestamp>> {
        s.as_deref()
            .map(|s| parse_time(s, now).map_err(|e| anyhow::anyhow!("--{what}: {e}")))
            .transpose()
    };
    let options = ReplayOptions {
        from: time(&args.from, "from")?,
        until: time(&args.until, "until")?,
        keyspace: args.into.clone(),
        prep_times: args.prep_times,
        force_scan: args.scan,
        group: args.group.clone(),
        progress: true,
        runtime: None,
    };
    if let (Some(f), Some(u)) = (options.from, options.until) {
        anyhow::ensure!(f < u, "--from must be before --until");
    }
    let plan = replay::plan(config, &options).await?;
    let how = match plan.lookup {
        Some(Lookup::Broker) => "the broker's time index",
        Some(Lookup::Scan) => "a scan of the records",
        _ => "the topic's bounds",
    };
    println!(
        "replaying {} records of {} into keyspace {} (offsets from {how}; no pushes, refunds, topic records or Redis writes)",
        plan.total(),
        plan.topic,
        options.keyspace.as_deref().unwrap_or(&config.cql_keyspace),
    );
    for r in &plan.ranges {
        println!(
            "  partition {:>3}: offsets {}..{} ({} records)",
            r.partition,
            r.start,
            r.end,
            r.len()
        );
    }
    if args.dry_run {
        return Ok(());
    }
    let (trigger, signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    let summary = replay::replay(config, &plan, &options, &Registry::new(), signal).await?;
    println!("{summary}");
    Ok(())
}
