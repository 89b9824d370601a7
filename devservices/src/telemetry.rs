//! Logging set-up shared by the binaries: `tracing` to stderr, filtered by `RUST_LOG`, with
//! colours only when stderr is a terminal (log files stay plain text).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs a stderr `tracing` subscriber; `RUST_LOG` overrides the `default_filter`.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // A second initialisation (e.g. in tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
