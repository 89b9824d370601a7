//! The `doorstep` command line: one module per subcommand.

mod check;
mod config_cmd;
mod gateway;
mod pipeline;
mod replay;
mod simulate;
mod tail;
mod token;
mod topics;

pub use token::parse_duration;

use crate::config::Config;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Doorstep: real-time order tracking for food delivery.
#[derive(Debug, Parser)]
#[command(name = "doorstep", version, about, long_about = None)]
pub struct Cli {
    /// TOML config file; `DOORSTEP_*` environment variables override it
    /// (see `doorstep config reference`).
    #[arg(long, short, global = true, env = "DOORSTEP_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe every external service and print one line each (exit 1 if any is down).
    Check,
    /// Manage Doorstep's Kafka topics.
    Topics {
        /// What to do with them.
        #[command(subcommand)]
        action: topics::TopicsAction,
    },
    /// Show the effective configuration or the reference of every setting.
    Config {
        /// What to show.
        #[command(subcommand)]
        action: config_cmd::ConfigAction,
    },
    /// Serve the HTTP producer API (orders, driver locations) with /metrics and /healthz.
    Gateway(gateway::GatewayArgs),
    /// Run a pipeline (status, notify, location, eta, or all) until SIGINT/SIGTERM.
    Pipeline(pipeline::PipelineArgs),
    /// Re-read order events between two times and rebuild order rows and timelines (live or
    /// fresh keyspace), without pushes or refunds.
    Replay(replay::ReplayArgs),
    /// Drive a simulated fleet (customers, restaurants, drivers, dispatch) through the gateway.
    Simulate(simulate::SimulateArgs),
    /// Watch accepted status changes and rejects live in the terminal.
    Tail(tail::TailArgs),
    /// Print a bearer token for an actor, signed with gateway.auth_secret.
    Token(token::TokenArgs),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        if let Command::Config { action } = &self.command {
            return config_cmd::run(action, self.config.as_deref());
        }
        let config = Config::load(self.config.as_deref())?;
        crate::telemetry::init(config.log_format, &config.log_filter);
        match self.command {
            Command::Check => check::run(&config).await,
            Command::Topics { action } => topics::run(&config, &action).await,
            Command::Gateway(args) => gateway::run(&config, &args).await,
            Command::Pipeline(args) => pipeline::run(&config, &args).await,
            Command::Replay(args) => replay::run(&config, &args).await,
            Command::Simulate(args) => simulate::run(&config, &args).await,
            Command::Tail(args) => tail::run(&config, &args).await,
            Command::Token(args) => token::run(&config, &args),
            Command::Config { .. } => Ok(()),
        }
    }
}
