//! Local HTTP stand-ins for third-party APIs that cannot run here, speaking the providers'
//! documented request and response shapes, error codes included:
//!
//! - [`fcm`]: Firebase Cloud Messaging HTTP v1 (`POST /v1/projects/{p}/messages:send`).
//! - [`stripe`]: Stripe's Refunds API (`POST /v1/refunds`) with its idempotency-key
//!   semantics.
//!
//! Each fake records every request (inspectable through a Rust API, and as JSON under
//! `/__fake/…` for the binaries), validates the request's shape and answers malformed ones
//! with the provider's own error body, and supports fault injection (the next N requests fail
//! with 429/5xx, a token is unregistered, …).
//!
//! In tests, start one with `FakeFcm::start()` / `FakeStripe::start()`: it binds
//! `127.0.0.1:0`, serves on a background task until dropped, and exposes its
//! [`url`](fcm::FakeFcm::url). The binaries `doorstep-fake-fcm` and `doorstep-fake-payments`
//! serve the same routers on a fixed address for the demo.

pub mod fcm;
pub mod stripe;

use axum::Router;
use std::io;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A router served on a background task; stops when dropped.
#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Binds `addr` (port 0 for any free port) and serves `router` until dropped.
    async fn serve(router: Router, addr: SocketAddr) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(%err, "fake server stopped with an error");
            }
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Connections kept alive by clients would hold a graceful shutdown open; the fake
        // has nothing to flush, so stop it outright.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A fresh pseudo-random id of `len` ASCII letters and digits (Stripe-style suffixes).
fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
