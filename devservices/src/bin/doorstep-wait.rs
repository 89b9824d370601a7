//! `doorstep-wait`: wait until a service answers its own protocol (used by
//! `scripts/services`).

use std::time::Duration;

use clap::{Parser, Subcommand};
use doorstep_devservices::{probe, telemetry};

/// Wait until a service is ready, probing it with its own protocol.
///
/// Exits 0 and prints one line once the service answers; exits 1 with the last error
/// when the timeout passes first.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30.0, global = true)]
    timeout: f64,

    /// Pause between attempts, in milliseconds.
    #[arg(long, default_value_t = 100, global = true)]
    interval_ms: u64,

    #[command(subcommand)]
    service: Service,
}

#[derive(Subcommand, Debug)]
enum Service {
    /// A Kafka-protocol broker: ApiVersions, then Metadata.
    Kafka {
        /// Broker address, `host:port`.
        addr: String,
    },
    /// A CQL v4 server: OPTIONS, then STARTUP.
    Cql {
        /// Server address, `host:port`.
        addr: String,
    },
    /// An HTTP endpoint answering 200.
    Http {
        /// `http://host:port/path` URL.
        url: String,
        /// Also require this string in the response.
        #[arg(long)]
        contains: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    telemetry::init("warn");
    let timeout = Duration::from_secs_f64(args.timeout.max(0.0));
    let interval = Duration::from_millis(args.interval_ms);
    let outcome = match &args.service {
        Service::Kafka { addr } => {
            probe::until_ready(timeout, interval, || probe::kafka::probe(addr))
                .await
                .map(|ready| {
                    let brokers: Vec<String> = ready
                        .brokers
                        .iter()
                        .map(|b| format!("{}@{}:{}", b.node_id, b.host, b.port))
                        .collect();
                    format!(
                        "kafka {addr} ready ({} APIs; brokers advertised: [{}])",
                        ready.api_count,
                        brokers.join(", ")
                    )
                })
        }
        Service::Cql { addr } => probe::until_ready(timeout, interval, || probe::cql::probe(addr))
            .await
            .map(|version| format!("cql {addr} ready (release {version})")),
        Service::Http { url, contains } => probe::until_ready(timeout, interval, || {
            probe::http::probe(url, contains.as_deref())
        })
        .await
        .map(|()| format!("http {url} ready")),
    };
    match outcome {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("doorstep-wait: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
