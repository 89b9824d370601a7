//! `doorstep topics ensure`: create every topic Doorstep uses (idempotent).

use crate::config::Config;
use clap::Subcommand;
use doorstep_connectors::kafka::{Admin, KafkaConfig};
use doorstep_schemas::events::topics;

/// What `doorstep topics` does.
#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the topics that do not exist yet.
    Ensure,
    /// Print the topic names (with the configured prefix).
    List,
}

/// Runs `doorstep topics`.
pub async fn run(config: &Config, action: &TopicsAction) -> anyhow::Result<()> {
    let names: Vec<String> = topics::ALL.iter().map(|t| config.topic(t)).collect();
    match action {
        TopicsAction::List => {
            for n in &names {
                println!("{n}");
            }
        }
        TopicsAction::Ensure => {
            let admin = Admin::new(&KafkaConfig::new(
                &config.endpoints.kafka_brokers,
                "doorstep-admin",
            ))?;
            let wanted: Vec<(&str, i32)> = names
                .iter()
                .map(|n| (n.as_str(), config.partitions))
                .collect();
            admin.ensure_topics(&wanted).await?;
            for n in &names {
                println!(
                    "topic {n} ready ({} partitions requested)",
                    config.partitions
                );
            }
        }
    }
    Ok(())
}
