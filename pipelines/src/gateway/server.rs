//! The gateway's accept loop: hyper with a timer (so the header-read timeout applies), an idle
//! timeout on every connection, a cap on open connections, and a graceful stop.
//!
//! - **Header read** (`gateway.header_read_timeout_ms`): a client that has not sent a whole
//!   request head this long after connecting (or after its previous answer, on a kept-alive
//!   connection) is disconnected: half-sent requests cannot hold file descriptors.
//! - **Idle** (`gateway.idle_timeout_ms`): a connection with no byte read or written this long
//!   is closed, upgraded WebSockets included (their heartbeats keep live ones busy).
//! - **Request** (`gateway.request_timeout_ms`): a request not answered in time gets 408
//!   `request_timeout` (the middleware in [`super::api_router`]); a slow body counts.
//! - **Connections** (`gateway.max_connections`): at the cap the loop stops accepting until one
//!   closes (the kernel's backlog holds the rest); a WebSocket holds its place until it closes.

use super::GatewayMetrics;
use crate::config::EdgeConfig;
use crate::shutdown;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest wait for a request head.
    pub header_read_timeout: Duration,
    /// Longest a connection may stay without traffic.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Each connection's kernel send buffer (`SO_SNDBUF`), when set.
    pub send_buffer: Option<usize>,
}

impl ServerLimits {
    /// The limits of `edge`, with the OS's send buffer.
    pub fn from_edge(edge: &EdgeConfig) -> Self {
        Self {
            header_read_timeout: edge.header_read_timeout,
            idle_timeout: edge.idle_timeout,
            max_connections: edge.max_connections,
            send_buffer: None,
        }
    }
}

/// How long shutdown waits for connections to finish their requests.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` says stop, then lets the requests in flight
/// finish (at most 10 s) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    mut shutdown: shutdown::Signal,
    limits: ServerLimits,
    metrics: GatewayMetrics,
) -> io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = limits.max_connections, "gateway listening");
    }
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    loop {
        let place = tokio::select! {
            biased;
            _ = shutdown::stopped(&mut shutdown) => break,
            p = places.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, _peer) = tokio::select! {
            biased;
            _ = shutdown::stopped(&mut shutdown) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Some(bytes) = limits.send_buffer
            && let Err(e) = socket2::SockRef::from(&tcp).set_send_buffer_size(bytes)
        {
            tracing::warn!(error = %e, bytes, "cannot set a connection's send buffer");
        }
        let _ = tcp.set_nodelay(true);
        metrics.connections.inc();
        let io = TokioIo::new(GuardedIo::new(tcp, limits.idle_timeout, place, &metrics));
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        let closed = metrics.connections_closed.clone();
        tokio::spawn(async move {
            let reason = match conn.await {
                Ok(()) => "closed",
                Err(e) => {
                    let timed_out = e
                        .downcast_ref::<hyper::Error>()
                        .is_some_and(|h| h.is_timeout())
                        || e.downcast_ref::<io::Error>()
                            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
                        || e.to_string().contains("timed out");
                    if timed_out { "timeout" } else { "error" }
                }
            };
            closed.with_label_values(&[reason]).inc();
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open {DRAIN:?} after shutdown; closing them");
    }
    Ok(())
}

/// A connection's socket with its idle timer and its place among the open connections (held
/// for as long as the socket lives, through a WebSocket upgrade).
struct GuardedIo {
    inner: TcpStream,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    _place: OwnedSemaphorePermit,
    open: prometheus::IntGauge,
}

impl GuardedIo {
    fn new(
        inner: TcpStream,
        idle_timeout: Duration,
        place: OwnedSemaphorePermit,
        metrics: &GatewayMetrics,
    ) -> Self {
        Self {
            inner,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            _place: place,
            open: metrics.connections.clone(),
        }
    }

    fn busy(&mut self) {
        let deadline = Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(deadline);
    }

    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for GuardedIo {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.busy();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check_idle(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.busy();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.check_idle(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    this.busy();
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
