//! `GET /v1/orders/{order_id}/track`: the customer's live view over a WebSocket.
//!
//! Who may follow an order: a customer token restricted to that order (`order_id` claim), a
//! customer token of the order's customer, or a system token; scope `read` is enough. The
//! token comes as `Authorization: Bearer` or, for browsers (which cannot set headers on a
//! WebSocket), in the subprotocol list: `Sec-WebSocket-Protocol: doorstep.v1, bearer.<token>`
//! (`new WebSocket(url, ["doorstep.v1", "bearer." + token])`); the server selects
//! `doorstep.v1` and never echoes the token. A token in the URL (`?access_token=`) is refused
//! with 400 `token_in_url`: URLs end up in proxy and access logs. Everything is checked before
//! the upgrade, so a refusal is a plain HTTP answer: 401 `unauthorized` (missing, forged,
//! expired token), 403 `forbidden` (another order, another customer, a driver or restaurant
//! token), 400 `websocket_required` (not an upgrade request), 503 `live_unavailable` (Redis
//! down).
//!
//! After the upgrade the socket gets a `snapshot` frame, then live `location`, `status` and
//! `eta` frames, and `rejected` when one of the customer's own commands is refused
//! ([`doorstep_schemas::live`]). A status change landing while the snapshot is read is shown
//! once: the snapshot reads the sequence number first, so its frame is never dropped, and a
//! status frame whose timeline entry the snapshot already shows is skipped.
//!
//! A reconnecting client resumes with `?since=SEQ` (the last `seq` it saw; a decimal number,
//! else 400 `invalid_since`): when the order's history reaches back to it
//! ([`doorstep_connectors::live_feed::LiveFeed::resume`]), the socket gets a `resumed` frame
//! (`recovered: true`), the status, ETA and rejected frames after `SEQ` as published, oldest
//! first, with the latest location (when newer) in its `seq` place, then the live frames;
//! otherwise a snapshot with `recovered: false`. The server pings every `heartbeat`; close
//! codes:
//!
//! | code | when |
//! |---|---|
//! | 1000 | the order is over (delivered or cancelled) and its last frames were sent |
//! | 1001 | the gateway is shutting down, or the client stopped answering pings |
//! | 1011 | the snapshot could not be read (retry) |
//! | 1012 | the live feed was interrupted (Redis connection lost): reconnect with `since` |
//! | 4401 | the token expired while connected |
//! | 4408 | the client could not keep up with status/ETA frames: reconnect with `since` |
//!
//! Per process there is one Redis subscription per followed order, shared by every socket
//! following it ([`hub`]); each socket has an outbox that conflates locations ([`outbox`]).

mod hub;
mod metrics;
mod outbox;
mod snapshot;
mod socket;

pub use hub::{Follower, Following, Heard, HubError, TrackingHub};
pub use metrics::TrackingMetrics;
pub use outbox::{Closing, Frame, Outbox, Pushed};
pub use snapshot::SnapshotFrame;

use super::extract::bearer;
use super::{ApiError, GatewayState, OrderReader};
use crate::auth::{Claims, unix_now};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use doorstep_connectors::command_outcomes::CommandOutcomes;
use doorstep_connectors::live_feed::{LiveFeed, Resume};
use doorstep_connectors::location_store::LocationStore;
use doorstep_connectors::redis::Redis;
use doorstep_operators::order::validate_id;
use doorstep_schemas::live::LiveDriver;
use doorstep_schemas::model::{ActorKind, DriverId, GeoPoint, OrderId};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// Initial read buffer of a WebSocket, bytes. It is allocated for the socket's whole life,
/// so it is sized for what a customer sends (pongs, a close); a larger message grows it while
/// it is assembled, up to [`MAX_CLIENT_MESSAGE`].
pub const SOCKET_READ_BUFFER: usize = 512;
/// Largest message (and frame) a customer's socket accepts, bytes; a larger one closes it.
pub const MAX_CLIENT_MESSAGE: usize = 4096;
/// The subprotocol a tracking client offers and the server selects.
pub const SUBPROTOCOL: &str = "doorstep.v1";
/// Prefix of the subprotocol entry carrying the bearer token (`bearer.<token>`).
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "bearer.";

/// Live-tracking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackingConfig {
    /// How often the server pings; a client silent for two intervals is closed.
    pub heartbeat: Duration,
    /// Status/ETA frames a client may have waiting before it is closed with 4408.
    pub outbox_capacity: usize,
    /// Longest a single frame write may take before the client is dropped.
    pub send_timeout: Duration,
    /// Longest the snapshot reads may take.
    pub snapshot_timeout: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(15),
            outbox_capacity: 64,
            send_timeout: Duration::from_secs(10),
            snapshot_timeout: Duration::from_secs(3),
        }
    }
}

impl TrackingConfig {
    /// The settings of `gateway.ws_*`.
    pub fn from_live(live: &crate::config::LiveConfig) -> Self {
        Self::default()
            .with_heartbeat(live.ws_heartbeat)
            .with_outbox_capacity(live.ws_outbox_capacity)
            .with_send_timeout(live.ws_send_timeout)
    }

    /// Sets the heartbeat interval.
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Sets the outbox capacity.
    pub fn with_outbox_capacity(mut self, capacity: usize) -> Self {
        self.outbox_capacity = capacity;
        self
    }

    /// Sets the send timeout.
    pub fn with_send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }
}

/// Connects to Redis when the first socket needs it (and again after a failure).
pub type RedisConnector = Arc<dyn Fn() -> BoxFuture<'static, Result<Redis, String>> + Send + Sync>;

/// What live tracking reads and follows, connected on first use: the gateway takes orders
/// while Redis is down, and tracking answers 503 `live_unavailable` until Redis answers.
pub struct LiveTracking {
    connect: RedisConnector,
    key_prefix: String,
    connected: OnceCell<Connected>,
    config: TrackingConfig,
    metrics: TrackingMetrics,
    stop: CancellationToken,
}

impl std::fmt::Debug for LiveTracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTracking")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The connected parts.
#[derive(Debug, Clone)]
struct Connected {
    hub: TrackingHub,
    live: LiveFeed,
    locations: LocationStore,
    outcomes: CommandOutcomes,
}

impl LiveTracking {
    /// Tracking over the Redis `connect` returns, keys under `key_prefix`.
    pub fn new(
        connect: RedisConnector,
        key_prefix: impl Into<String>,
        config: TrackingConfig,
        metrics: TrackingMetrics,
    ) -> Self {
        Self {
            connect,
            key_prefix: key_prefix.into(),
            connected: OnceCell::new(),
            config,
            metrics,
            stop: CancellationToken::new(),
        }
    }

    /// Closes every socket with 1001 (the gateway is shutting down).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// The metrics.
    pub fn metrics(&self) -> &TrackingMetrics {
        &self.metrics
    }

    /// The settings.
    pub fn config(&self) -> &TrackingConfig {
        &self.config
    }

    async fn connected(&self) -> Result<&Connected, String> {
        self.connected
            .get_or_try_init(|| async {
                let redis = (self.connect)().await?;
                let (subscription, events) = redis
                    .shared_subscription()
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!("live tracking connected to Redis");
                let live = LiveFeed::new(redis.clone(), self.key_prefix.clone());
                Ok(Connected {
                    hub: TrackingHub::start(subscription, events, self.metrics.clone()),
                    live: live.clone(),
                    locations: LocationStore::new(redis, self.key_prefix.clone()),
                    outcomes: CommandOutcomes::new(live),
                })
            })
            .await
    }

    /// What the command routes need of the live feed, connected on first use like the rest:
    /// the hub (to wait for an outcome on its order's command channel) and the outcome store.
    pub(in crate::gateway) async fn commands(
        &self,
    ) -> Result<(TrackingHub, CommandOutcomes), String> {
        let connected = self.connected().await?;
        Ok((connected.hub.clone(), connected.outcomes.clone()))
    }
}

/// The query parameters: `since` (resume after that sequence number) and `access_token`
/// (refused: tokens do not belong in URLs).
#[derive(Debug, Deserialize)]
pub(super) struct TokenQuery {
    access_token: Option<String>,
    since: Option<String>,
}

/// The `since` of the query: `None` when absent, 400 `invalid_since` when not a number.
fn since(query: &Result<Query<TokenQuery>, QueryRejection>) -> Result<Option<u64>, ApiError> {
    let raw = match query {
        Ok(Query(q)) => q.since.as_deref(),
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                e.body_text(),
            ));
        }
    };
    raw.map(|s| {
        s.parse::<u64>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_since",
                "`since` is the last `seq` the client saw: a decimal number from 0",
            )
        })
    })
    .transpose()
}

/// `GET /v1/orders/{order_id}/track` (WebSocket).
pub(super) async fn track(
    State(s): State<GatewayState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<TokenQuery>, QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let since = since(&query);
    let claims = caller(&s, &headers, query)?;
    let since = since?;
    claims.require_kind(&[ActorKind::Customer, ActorKind::System])?;
    let Path(order_id) =
        path.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text()))?;
    validate_id("order_id", &order_id)?;
    claims.require_order(&order_id)?;
    let upgrade = upgrade.map_err(|e| ApiError::websocket_required(&e))?;
    let socket_place = s.limits().open_socket(&claims)?;
    let (Some(tracking), Some(orders)) = (s.inner.tracking.clone(), s.inner.orders.clone()) else {
        return Err(live_unavailable(&s, "live tracking is not configured"));
    };
    let connected = tracking
        .connected()
        .await
        .map_err(|e| live_unavailable(&s, &e))?
        .clone();
    entitled(&s, &claims, &order_id, orders.as_ref()).await?;
    let outbox = Outbox::new(tracking.config.outbox_capacity);
    let order = OrderId::new(order_id);
    let following = connected
        .hub
        .follow(
            &connected.live.channel(&order),
            Follower::Socket(outbox.clone()),
        )
        .await
        .map_err(|e| live_unavailable(&s, &e.to_string()))?;
    let session = socket::Session {
        order,
        since,
        exp: claims.exp,
        outbox,
        following,
        sources: Sources {
            orders,
            live: connected.live,
            locations: connected.locations,
        },
        config: tracking.config,
        metrics: tracking.metrics.clone(),
        stop: tracking.stop.clone(),
        _socket_place: socket_place,
    };
    // A customer sends nothing but pongs and a close: a small read buffer (tungstenite
    // allocates 128 KiB per socket by default) and a small message limit.
    Ok(upgrade
        .protocols([SUBPROTOCOL])
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |ws| socket::run(ws, session)))
}

/// The verified claims of the bearer header or the `bearer.<token>` subprotocol; a token in
/// the query string is refused (400 `token_in_url`).
fn caller(
    s: &GatewayState,
    headers: &HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Claims, ApiError> {
    if query.is_ok_and(|Query(q)| q.access_token.is_some()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "token_in_url",
            "a token in the URL ends up in logs: send it as `Authorization: Bearer` or as the \
             subprotocol `bearer.<token>` beside `doorstep.v1` (Sec-WebSocket-Protocol)",
        ));
    }
    let token = match (bearer(headers), subprotocol_token(headers)) {
        (Ok(header), _) => header,
        (Err(_), Some(token)) => token,
        (Err(e), None) => return Err(e.into()),
    };
    let claims = s.inner.key.verify(token, unix_now())?;
    s.limits().check_request(&claims)?;
    Ok(claims)
}

/// The token of a `bearer.<token>` entry of `Sec-WebSocket-Protocol`, if any.
pub(super) fn subprotocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
}

/// Whether `claims` may follow `order_id`: a token for that very order or a system token
/// may; a customer token without an order claim only for the customer's own order.
async fn entitled(
    s: &GatewayState,
    claims: &Claims,
    order_id: &str,
    orders: &dyn OrderReader,
) -> Result<(), ApiError> {
    if claims.sub_kind == ActorKind::System || claims.order_id.as_deref() == Some(order_id) {
        return Ok(());
    }
    let timeout = s.inner.config.read_timeout;
    let state = match tokio::time::timeout(timeout, orders.load(order_id)).await {
        Ok(Ok(state)) => state,
        Ok(Err(e)) => return Err(live_unavailable(s, &e)),
        Err(_) => return Err(live_unavailable(s, "the order store did not answer")),
    };
    match state {
        Some(st) if st.order.customer_id.as_str() == claims.sub => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token may not follow order {order_id}"),
        )),
    }
}

fn live_unavailable(s: &GatewayState, why: &str) -> ApiError {
    tracing::warn!(error = %why, "live tracking unavailable");
    ApiError {
        retry_after: Some(s.inner.config.retry_after),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "live_unavailable",
            "live tracking is unavailable right now; retry later",
        )
    }
}

/// Where a snapshot is read from.
pub(super) struct Sources {
    orders: Arc<dyn OrderReader>,
    live: LiveFeed,
    locations: LocationStore,
}

impl Sources {
    /// Reads the snapshot of `order` (sequence number first).
    async fn snapshot(&self, order: &OrderId) -> Result<SnapshotFrame, String> {
        let seq = self
            .live
            .current_seq(order)
            .await
            .map_err(|e| e.to_string())?;
        let state = self.orders.load(order.as_str()).await?;
        let driver = match state.as_ref().and_then(|s| s.order.driver_id.clone()) {
            Some(d) if !d.as_str().is_empty() => Some(self.driver(d).await?),
            _ => None,
        };
        let eta = self.live.eta(order).await.map_err(|e| e.to_string())?;
        Ok(SnapshotFrame::new(seq, order.as_str(), state, driver, eta))
    }

    /// What a client at `since` missed, or `Gone` when it needs a snapshot.
    async fn resume(&self, order: &OrderId, since: u64) -> Result<Resume, String> {
        self.live
            .resume(order, since)
            .await
            .map_err(|e| e.to_string())
    }

    /// The driver's last position: `GEOPOS` in the region set the driver hash names.
    async fn driver(&self, driver: DriverId) -> Result<LiveDriver, String> {
        let snapshots = self
            .locations
            .snapshots(std::slice::from_ref(&driver))
            .await
            .map_err(|e| e.to_string())?;
        let last = snapshots.get(&driver).and_then(|s| s.last.clone());
        let mut location = None;
        if let Some(region) = last.as_ref().and_then(|l| l.region.as_deref()) {
            location = self
                .locations
                .position(region, &driver)
                .await
                .map_err(|e| e.to_string())?
                .map(|(lng, lat)| GeoPoint { lat, lng });
        }
        Ok(LiveDriver {
            driver_id: driver,
            location,
            at: last.filter(|_| location.is_some()).map(|l| l.at),
        })
    }
}
