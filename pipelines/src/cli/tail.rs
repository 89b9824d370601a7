//! `doorstep tail`: a live terminal view of accepted changes and rejects, as they happen.

use crate::assemble;
use crate::config::Config;
use crate::shutdown;
use clap::Args;
use doorstep_connectors::kafka::{ConsumerBuilder, OffsetReset};
use doorstep_schemas::events::{RejectedRecord, StatusChange, topics};
use doorstep_schemas::model::HistoryEntryKind;

/// `doorstep tail` arguments.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Start from the oldest record instead of only new ones.
    #[arg(long)]
    pub from_beginning: bool,
}

/// Prints one line per status change and reject until Ctrl-C.
pub async fn run(config: &Config, args: &TailArgs) -> anyhow::Result<()> {
    let catalog = assemble::catalog(config).await?;
    let status = config.topic(topics::ORDER_STATUS);
    let rejected = config.topic(topics::ORDER_REJECTED);
    let group = format!(
        "{}.tail.{}",
        config.group_prefix,
        uuid::Uuid::now_v7().simple()
    );
    let reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    let consumer = ConsumerBuilder::new(&assemble::kafka_config(config, "doorstep-tail"), group)
        .offset_reset(reset)
        .subscribe(&[status.as_str(), rejected.as_str()])?;
    let (trigger, mut signal) = shutdown::channel();
    shutdown::on_signals(trigger);
    println!("watching {status} and {rejected} (Ctrl-C to stop)");
    loop {
        let record = tokio::select! {
            _ = shutdown::stopped(&mut signal) => return Ok(()),
            r = consumer.recv() => r?,
        };
        let payload = record.payload.unwrap_or_default();
        if record.topic == status {
            match catalog.decode::<StatusChange>(&payload).await {
                Ok(c) => println!("{}", describe_change(&c)),
                Err(e) => println!(
                    "!! undecodable status record at offset {}: {e}",
                    record.offset
                ),
            }
        } else {
            match catalog.decode::<RejectedRecord>(&payload).await {
                Ok(r) => println!(
                    "✗ {:<22} rejected {:<24} {}",
                    r.order_id.map(|o| o.to_string()).unwrap_or_default(),
                    r.reason_code,
                    r.message
                ),
                Err(e) => println!("!! undecodable reject at offset {}: {e}", record.offset),
            }
        }
    }
}

/// One line for a status change.
pub fn describe_change(c: &StatusChange) -> String {
    let what = match c.kind {
        HistoryEntryKind::Placed => "placed".to_owned(),
        HistoryEntryKind::DriverAssigned => {
            format!(
                "driver {} assigned",
                c.driver_id.as_ref().map(|d| d.as_str()).unwrap_or("?")
            )
        }
        HistoryEntryKind::DriverUnassigned => "driver handed the order back".to_owned(),
        HistoryEntryKind::Cancelled => format!(
            "CANCELLED ({}){}",
            c.reason.as_deref().unwrap_or(""),
            c.refund_cents
                .map(|r| format!(", refund {:.2}", r as f64 / 100.0))
                .unwrap_or_default()
        ),
        HistoryEntryKind::Transition => {
            format!("{} → {}", c.from.map(|s| s.as_str()).unwrap_or("-"), c.to)
        }
    };
    format!(
        "● {:<22} #{:<2} {:<44} by {}",
        c.order_id, c.seq, what, c.actor
    )
}
