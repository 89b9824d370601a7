//! `doorstep topics ensure`: create every topic Doorstep uses and register this build's
//! schemas under their subjects (`<topic>-value`) with the schema registry (idempotent). A
//! schema the registry refuses (incompatible with the subject's latest version under its
//! compatibility rule) fails the command, naming the subject and the registry's reason.

use crate::assemble;
use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;
use doorstep_connectors::kafka::{Admin, KafkaConfig};
use doorstep_schemas::avro::Catalog;
use doorstep_schemas::events::topics;

/// What `doorstep topics` does.
#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the topics that do not exist yet and register the schemas of their values.
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
            let registry = assemble::registry_config(config).with_register(true);
            let catalog = &Catalog::connect(&registry).await.with_context(|| {
                format!(
                    "registering the schemas with the schema registry at {}",
                    registry.url
                )
            })?;
            for topic in topics::ALL {
                let subject = catalog.subject(topic).unwrap_or_default();
                let id = catalog.topic_schema_id(topic).unwrap_or_default();
                println!("schema {subject} registered (id {id})");
            }
        }
    }
    Ok(())
}
