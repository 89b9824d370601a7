//! One customer socket: the snapshot, then the outbox's frames in order, heartbeats, and the
//! close codes of [`super`].

use super::hub::{Following, kind_label};
use super::outbox::{Closing, Outbox};
use super::{Sources, TrackingConfig, TrackingMetrics};
use crate::auth::unix_now;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use doorstep_schemas::live::FrameKind;
use doorstep_schemas::model::{OrderId, OrderStatus};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest the close frame may take to write.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything a socket task needs, gathered before the upgrade.
pub(super) struct Session {
    pub(super) order: OrderId,
    /// The token's expiry, Unix seconds.
    pub(super) exp: i64,
    pub(super) outbox: Outbox,
    /// Kept for the life of the socket: dropping it leaves the feed.
    pub(super) following: Following,
    pub(super) sources: Sources,
    pub(super) config: TrackingConfig,
    pub(super) metrics: TrackingMetrics,
    pub(super) stop: CancellationToken,
    /// The socket's place among its subject's (`gateway.max_sockets_per_subject`).
    pub(super) _socket_place: crate::gateway::limits::SocketGuard,
}

/// How a socket ended, for the close frame and the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    OrderOver,
    ClientGone,
    ShuttingDown,
    Silent,
    SnapshotFailed,
    FeedInterrupted,
    TokenExpired,
    TooSlow,
    SendTimeout,
}

impl End {
    fn label(self) -> &'static str {
        match self {
            End::OrderOver => "order_over",
            End::ClientGone => "client_gone",
            End::ShuttingDown => "shutting_down",
            End::Silent => "no_heartbeat",
            End::SnapshotFailed => "snapshot_failed",
            End::FeedInterrupted => "feed_interrupted",
            End::TokenExpired => "token_expired",
            End::TooSlow => "too_slow",
            End::SendTimeout => "send_timeout",
        }
    }

    /// The close frame to send, `None` when the socket cannot take one.
    fn close_frame(self) -> Option<(u16, &'static str)> {
        match self {
            End::OrderOver => Some((1000, "the order is over")),
            End::ShuttingDown => Some((1001, "the gateway is shutting down")),
            End::Silent => Some((1001, "no answer to heartbeats")),
            End::SnapshotFailed => Some((1011, "the snapshot could not be read; retry")),
            End::FeedInterrupted => Some((
                1012,
                "the live feed was interrupted; reconnect for a fresh snapshot",
            )),
            End::TokenExpired => Some((4401, "the token expired")),
            End::TooSlow => Some((
                4408,
                "the client did not keep up; reconnect for a fresh snapshot",
            )),
            End::ClientGone | End::SendTimeout => None,
        }
    }
}

/// Runs the socket until it ends; closes it with the code of [`super`].
pub(super) async fn run(mut ws: WebSocket, session: Session) {
    let m = session.metrics.clone();
    let gauge = m.connections.with_label_values(&["track"]);
    gauge.inc();
    let end = serve(&mut ws, &session).await;
    m.closed.with_label_values(&["track", end.label()]).inc();
    if let Some((code, reason)) = end.close_frame() {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        // Bounded tighter than a frame: a client that stopped reading will not take it.
        let _ = tokio::time::timeout(
            session.config.send_timeout.min(CLOSE_TIMEOUT),
            ws.send(Message::Close(Some(frame))),
        )
        .await;
    }
    gauge.dec();
    tracing::debug!(order = %session.order, end = end.label(), "tracking socket closed");
    drop(session.following);
}

async fn serve(ws: &mut WebSocket, s: &Session) -> End {
    let snapshot = tokio::time::timeout(s.config.snapshot_timeout, s.sources.snapshot(&s.order))
        .await
        .map_err(|_| "no answer in time".to_owned())
        .and_then(|r| r);
    let snapshot = match snapshot {
        Ok(snap) => snap,
        Err(e) => {
            tracing::warn!(order = %s.order, error = %e, "tracking snapshot failed");
            return End::SnapshotFailed;
        }
    };
    let mut last_seq = snapshot.seq;
    let mut over = is_over(snapshot.status);
    let text = match serde_json::to_string(&snapshot) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(order = %s.order, error = %e, "cannot serialise a snapshot");
            return End::SnapshotFailed;
        }
    };
    if let Err(end) = send(ws, s, Message::Text(text.into()), FrameKind::Snapshot).await {
        return end;
    }
    if over {
        return End::OrderOver;
    }
    let mut heartbeat = tokio::time::interval(s.config.heartbeat);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            biased;
            _ = s.stop.cancelled() => return End::ShuttingDown,
            _ = s.outbox.changed() => {
                let frames = match s.outbox.take() {
                    Ok(frames) => frames,
                    Err(Closing::Overflowed) => return End::TooSlow,
                    Err(Closing::FeedInterrupted) => return End::FeedInterrupted,
                };
                for f in frames {
                    if f.seq <= last_seq {
                        continue; // already in the snapshot
                    }
                    last_seq = f.seq;
                    if f.kind == FrameKind::Status {
                        over |= frame_ends_order(&f.text);
                    }
                    if let Err(end) = send(ws, s, Message::Text(f.text), f.kind).await {
                        return end;
                    }
                }
                if over {
                    return End::OrderOver;
                }
            }
            incoming = ws.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return End::ClientGone,
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = heartbeat.tick() => {
                if unix_now() >= s.exp {
                    return End::TokenExpired;
                }
                if last_heard.elapsed() > 2 * s.config.heartbeat {
                    return End::Silent;
                }
                let ping = Message::Ping(bytes::Bytes::from_static(b"hb"));
                match tokio::time::timeout(s.config.send_timeout, ws.send(ping)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::ClientGone,
                    Err(_) => return End::SendTimeout,
                }
            }
        }
    }
}

/// Writes one frame, bounded by the send timeout, and given up as soon as the outbox closes
/// (a write blocked on a client that stopped reading must not keep the socket open).
async fn send(ws: &mut WebSocket, s: &Session, msg: Message, kind: FrameKind) -> Result<(), End> {
    let write = tokio::time::timeout(s.config.send_timeout, ws.send(msg));
    tokio::select! {
        written = write => match written {
            Ok(Ok(())) => {
                s.metrics
                    .sent
                    .with_label_values(&["track", kind_label(kind)])
                    .inc();
                Ok(())
            }
            Ok(Err(_)) => Err(End::ClientGone),
            Err(_) => Err(End::SendTimeout),
        },
        why = s.outbox.closed() => Err(match why {
            Closing::Overflowed => End::TooSlow,
            Closing::FeedInterrupted => End::FeedInterrupted,
        }),
    }
}

fn is_over(status: Option<OrderStatus>) -> bool {
    matches!(
        status,
        Some(OrderStatus::Delivered | OrderStatus::Cancelled)
    )
}

/// Whether a status frame moves the order to a final status.
fn frame_ends_order(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct StatusOnly {
        status: OrderStatus,
    }
    serde_json::from_str::<StatusOnly>(text).is_ok_and(|s| is_over(Some(s.status)))
}
