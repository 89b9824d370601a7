//! Graceful shutdown: a future that completes on SIGINT or SIGTERM.

use tokio::signal::unix::{self, SignalKind};

/// Completes when the process receives SIGINT (Ctrl-C) or SIGTERM.
///
/// If a signal handler cannot be installed (which only happens when the runtime has no
/// signal driver), the error is logged and only the other signal is waited for.
pub async fn signal() {
    let terminate = async {
        match unix::signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot install SIGTERM handler");
                std::future::pending::<()>().await;
            }
        }
    };
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot install SIGINT handler");
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
        () = interrupt => tracing::info!("received SIGINT, shutting down"),
    }
}
