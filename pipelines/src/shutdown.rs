//! Graceful shutdown: one watch channel flipped on SIGINT or SIGTERM; every task watches it,
//! drains, flushes and commits before it returns.

use tokio::sync::watch;

/// The sending side; dropping it also stops everyone.
pub type Trigger = watch::Sender<bool>;
/// What tasks hold to learn that they must stop.
pub type Signal = watch::Receiver<bool>;

/// A new shutdown channel.
pub fn channel() -> (Trigger, Signal) {
    watch::channel(false)
}

/// Flips `trigger` on the first SIGINT or SIGTERM.
pub fn on_signals(trigger: Trigger) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: draining, flushing sinks and committing offsets");
        let _ = trigger.send(true);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Waits until `signal` says stop (or its sender is gone).
pub async fn stopped(signal: &mut Signal) {
    let _ = signal.wait_for(|stop| *stop).await;
}
