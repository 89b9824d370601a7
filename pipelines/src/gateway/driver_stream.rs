//! `GET /v1/drivers/{driver_id}/stream`: a driver app's WebSocket for streaming GPS pings
//! (every 5 s) instead of one POST each.
//!
//! Same token and checks as `POST /v1/drivers/{driver_id}/location`, before the upgrade (401,
//! 403, 400 `websocket_required`). Each text frame is one ping or `{pings: [...]}`; each gets
//! one text frame back, in order: the POST's 202 body (`{driver_id, accepted, ping_ids}`) or
//! its error body (`{error, message}`, plus `status`, the HTTP status the POST would have
//! answered). A binary frame is answered `invalid_frame`. The server pings every heartbeat;
//! it closes with 4401 when the token expires and 1001 when the client stops answering or
//! the gateway shuts down.

use super::extract::Caller;
use super::locations::{PingsBody, accept, driver_path};
use super::{ApiError, GatewayState};
use crate::auth::unix_now;
use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use std::time::{Duration, Instant};

/// How often the server pings a driver stream.
pub const DRIVER_HEARTBEAT: Duration = Duration::from_secs(15);

/// `GET /v1/drivers/{driver_id}/stream` (WebSocket).
pub(super) async fn stream(
    State(s): State<GatewayState>,
    Caller(claims): Caller,
    path: Result<Path<String>, PathRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let driver_id = driver_path(&claims, path)?;
    let upgrade = upgrade.map_err(|e| ApiError::websocket_required(&e))?;
    let place = s.limits().open_socket(&claims)?;
    let exp = claims.exp;
    // A frame carries what a POST body may: the same limit for a frame and a message.
    let limit = s.config().max_body_bytes;
    Ok(upgrade
        .read_buffer_size(super::track::SOCKET_READ_BUFFER)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |ws| run(ws, s, driver_id, exp, place)))
}

async fn run(
    mut ws: WebSocket,
    s: GatewayState,
    driver_id: String,
    exp: i64,
    _place: super::limits::SocketGuard,
) {
    let gauge = s
        .tracking()
        .map(|t| t.metrics().connections.with_label_values(&["driver"]));
    if let Some(g) = &gauge {
        g.inc();
    }
    let (code, reason) = serve(&mut ws, &s, &driver_id, exp).await;
    if let Some(code) = code {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.send(Message::Close(Some(frame))))
            .await;
    }
    if let Some(g) = &gauge {
        g.dec();
    }
    tracing::debug!(%driver_id, reason, "driver stream closed");
}

async fn serve(
    ws: &mut WebSocket,
    s: &GatewayState,
    driver_id: &str,
    exp: i64,
) -> (Option<u16>, &'static str) {
    let mut heartbeat = tokio::time::interval(DRIVER_HEARTBEAT);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    loop {
        tokio::select! {
            incoming = ws.recv() => {
                let answer = match incoming {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return (None, "client gone"),
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        // Frames count against the subject's rate like POSTs do.
                        match s.limits().check_request_of(driver_id) {
                            Ok(()) => answer(s, driver_id, &text).await,
                            Err(e) => error_body(&e),
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        last_heard = Instant::now();
                        error_body(&ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_frame",
                            "send pings as JSON text frames",
                        ))
                    }
                    Some(Ok(_)) => {
                        last_heard = Instant::now();
                        continue;
                    }
                };
                let sent = ws.send(Message::Text(answer.to_string().into()));
                match tokio::time::timeout(Duration::from_secs(10), sent).await {
                    Ok(Ok(())) => {}
                    _ => return (None, "send failed"),
                }
            }
            _ = heartbeat.tick() => {
                if unix_now() >= exp {
                    return (Some(4401), "the token expired");
                }
                if last_heard.elapsed() > 2 * DRIVER_HEARTBEAT {
                    return (Some(1001), "no answer to heartbeats");
                }
                let ping = Message::Ping(bytes::Bytes::from_static(b"hb"));
                if ws.send(ping).await.is_err() {
                    return (None, "client gone");
                }
            }
        }
    }
}

/// The answer to one text frame.
async fn answer(s: &GatewayState, driver_id: &str, text: &str) -> serde_json::Value {
    let pings = match serde_json::from_str::<PingsBody>(text) {
        Ok(p) => p,
        Err(e) => {
            return error_body(&ApiError::invalid_json(format!(
                "the frame is not the expected JSON: {e}"
            )));
        }
    };
    let result = accept(s, driver_id.to_owned(), pings).await;
    s.metrics()
        .requests
        .with_label_values(&[
            "/v1/drivers/{driver_id}/stream",
            match &result {
                Ok(_) => "202",
                Err(e) => e.status.as_str(),
            },
        ])
        .inc();
    match result {
        Ok(accepted) => json!(accepted),
        Err(e) => {
            s.metrics().rejected.with_label_values(&[e.code]).inc();
            error_body(&e)
        }
    }
}

fn error_body(e: &ApiError) -> serde_json::Value {
    json!({"error": e.code, "message": e.message, "status": e.status.as_u16()})
}
