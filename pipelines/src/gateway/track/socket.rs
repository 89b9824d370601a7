//! One customer socket: the snapshot (or, resuming, the missed frames), then the outbox's
//! frames in order, heartbeats, and the close codes of [`super`].

use super::hub::{Following, kind_label};
use super::outbox::{Closing, Outbox};
use super::{Sources, TrackingConfig, TrackingMetrics};
use crate::auth::unix_now;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use doorstep_connectors::live_feed::Resume;
use doorstep_schemas::live::{FrameHeader, FrameKind, LiveResumed};
use doorstep_schemas::model::{OrderId, OrderStatus};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest the close frame may take to write.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything a socket task needs, gathered before the upgrade.
pub(super) struct Session {
    pub(super) order: OrderId,
    /// The `seq` the client resumes after (`?since=`), if any.
    pub(super) since: Option<u64>,
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
                "the live feed was interrupted; reconnect (with since) to catch up",
            )),
            End::TokenExpired => Some((4401, "the token expired")),
            End::TooSlow => Some((
                4408,
                "the client did not keep up; reconnect (with since) to catch up",
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

/// Where a socket stands once its first frames are sent.
struct Start {
    /// The last sequence number they reflect: live frames at or below it are skipped.
    last_seq: u64,
    /// The highest timeline entry a snapshot showed: a live status frame of an entry at or
    /// below it (a change that landed while the snapshot was read) is skipped.
    last_entry: Option<u32>,
    /// Whether the order is over.
    over: bool,
}

/// Sends the first frames: the missed ones when the client can resume, a snapshot otherwise.
async fn start(ws: &mut WebSocket, s: &Session) -> Result<Start, End> {
    if let Some(since) = s.since {
        let resume =
            tokio::time::timeout(s.config.snapshot_timeout, s.sources.resume(&s.order, since))
                .await
                .map_err(|_| "no answer in time".to_owned())
                .and_then(|r| r);
        match resume {
            Ok(Resume::Replay {
                seq,
                frames,
                location,
            }) => {
                s.metrics.resumes.with_label_values(&["recovered"]).inc();
                return replay(ws, s, since, seq, frames, location).await;
            }
            Ok(Resume::Gone) => {
                s.metrics.resumes.with_label_values(&["snapshot"]).inc();
            }
            Err(e) => {
                tracing::warn!(order = %s.order, error = %e, "tracking resume failed");
                return Err(End::SnapshotFailed);
            }
        }
    }
    let snapshot = tokio::time::timeout(s.config.snapshot_timeout, s.sources.snapshot(&s.order))
        .await
        .map_err(|_| "no answer in time".to_owned())
        .and_then(|r| r);
    let mut snapshot = match snapshot {
        Ok(snap) => snap,
        Err(e) => {
            tracing::warn!(order = %s.order, error = %e, "tracking snapshot failed");
            return Err(End::SnapshotFailed);
        }
    };
    if s.since.is_some() {
        snapshot = snapshot.not_recovered();
    }
    let text = match serde_json::to_string(&snapshot) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(order = %s.order, error = %e, "cannot serialise a snapshot");
            return Err(End::SnapshotFailed);
        }
    };
    send(ws, s, Message::Text(text.into()), FrameKind::Snapshot).await?;
    Ok(Start {
        last_seq: snapshot.seq,
        last_entry: snapshot.last_entry(),
        over: is_over(snapshot.status),
    })
}

/// Sends the `resumed` frame, the missed history frames and the newer latest location.
async fn replay(
    ws: &mut WebSocket,
    s: &Session,
    since: u64,
    seq: u64,
    frames: Vec<String>,
    location: Option<String>,
) -> Result<Start, End> {
    let header = match serde_json::to_string(&LiveResumed::new(since)) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(order = %s.order, error = %e, "cannot serialise a resumed frame");
            return Err(End::SnapshotFailed);
        }
    };
    send(ws, s, Message::Text(header.into()), FrameKind::Resumed).await?;
    // In `seq` order: the latest location goes before the history frames numbered after it
    // (a client may ignore a frame numbered at or below one it has).
    let mut location = location.and_then(|text| {
        let header = serde_json::from_str::<FrameHeader>(&text).ok()?;
        Some((header.seq, text))
    });
    let mut over = false;
    for text in frames {
        let header = match serde_json::from_str::<FrameHeader>(&text) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(order = %s.order, error = %e, "a history frame is not the contract");
                continue;
            }
        };
        if let Some((_, loc)) = location.take_if(|(at, _)| *at < header.seq) {
            send(ws, s, Message::Text(loc.into()), FrameKind::Location).await?;
        }
        if header.kind == FrameKind::Status {
            over |= status_of(&text).is_some_and(|st| is_over(Some(st.status)));
        }
        send(ws, s, Message::Text(text.into()), header.kind).await?;
    }
    if let Some((_, loc)) = location {
        send(ws, s, Message::Text(loc.into()), FrameKind::Location).await?;
    }
    Ok(Start {
        last_seq: seq,
        last_entry: None,
        over,
    })
}

async fn serve(ws: &mut WebSocket, s: &Session) -> End {
    let Start {
        mut last_seq,
        last_entry,
        mut over,
    } = match start(ws, s).await {
        Ok(start) => start,
        Err(end) => return end,
    };
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
                        let status = status_of(&f.text);
                        over |= status.as_ref().is_some_and(|st| is_over(Some(st.status)));
                        let shown = status
                            .zip(last_entry)
                            .is_some_and(|(st, last)| st.entry.seq <= last);
                        if shown {
                            continue; // landed while the snapshot was read: it shows it
                        }
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

/// What the socket reads of a status frame: the status and the timeline entry's number.
#[derive(serde::Deserialize)]
struct StatusOnly {
    status: OrderStatus,
    entry: EntryOnly,
}

#[derive(serde::Deserialize)]
struct EntryOnly {
    seq: u32,
}

/// The status and entry number of a status frame (`None` when it is not one).
fn status_of(text: &str) -> Option<StatusOnly> {
    serde_json::from_str(text).ok()
}
