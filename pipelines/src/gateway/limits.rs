//! The public edge's limits, applied after a token is verified: requests per token subject
//! (a GCRA rate limit with a burst), placements per customer per hour (a quota), open orders
//! per customer (counted in Redis, [`OpenOrdersCap`]), the restaurant registry, the service
//! area of orders and pings, and WebSockets per token subject. Every refusal is a JSON
//! `{error, message}`: 429 with `Retry-After` for the rate limits and caps, 422 for contents.
//!
//! | status | code | when |
//! |---|---|---|
//! | 429 | `rate_limited` | the token's subject sent more than `gateway.rate_limit_per_s` (burst `gateway.rate_limit_burst`) |
//! | 429 | `order_quota_exceeded` | the customer placed `gateway.orders_per_hour` orders in the last hour |
//! | 429 | `too_many_open_orders` | the customer has `gateway.max_open_orders` orders open |
//! | 429 | `too_many_sockets` | the subject has `gateway.max_sockets_per_subject` WebSockets open here |
//! | 422 | `unknown_restaurant`, `restaurant_location_mismatch` | not in `gateway.restaurants`, or more than 250 m from its registered place |
//! | 422 | `outside_service_area` | an order's or ping's location outside `gateway.service_area` |

use super::{ApiError, OrderReader};
use crate::auth::Claims;
use crate::config::{EdgeConfig, Restaurants};
use doorstep_connectors::open_orders::OpenOrders;
use doorstep_operators::order::OrderState;
use doorstep_schemas::model::{GeoPoint, OrderStatus};
use futures::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OnceCell;

/// How far an order's `restaurant_location` may be from the registered one, metres.
pub const MAX_RESTAURANT_OFFSET_M: f64 = 250.0;
/// Checks between two sweeps of idle subjects out of the rate limiters' tables.
const SWEEP_EVERY: u64 = 4096;

/// The limits of one gateway process. Cheap to share (`Arc`).
pub struct EdgeLimits {
    config: EdgeConfig,
    requests: DefaultKeyedRateLimiter<String>,
    placements: DefaultKeyedRateLimiter<String>,
    sockets: Mutex<HashMap<String, usize>>,
    checks: AtomicU64,
}

impl std::fmt::Debug for EdgeLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn too_many(code: &'static str, message: String, retry_after: Duration) -> ApiError {
    ApiError {
        retry_after: Some(retry_after),
        ..ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, code, message)
    }
}

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// The rate-limit key of a token's subject.
pub fn subject(claims: &Claims) -> String {
    format!("{}:{}", claims.sub_kind, claims.sub)
}

impl EdgeLimits {
    /// Limits with `config`.
    pub fn new(config: EdgeConfig) -> Self {
        let per_s = Quota::per_second(nonzero(config.rate_per_s)).allow_burst(nonzero(
            config
                .rate_burst
                .max(config.rate_per_s.min(config.rate_burst)),
        ));
        let per_hour = Quota::per_hour(nonzero(config.orders_per_hour));
        Self {
            requests: RateLimiter::keyed(per_s),
            placements: RateLimiter::keyed(per_hour),
            sockets: Mutex::new(HashMap::new()),
            checks: AtomicU64::new(0),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    fn sweep(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.requests.retain_recent();
            self.placements.retain_recent();
            self.requests.shrink_to_fit();
            self.placements.shrink_to_fit();
        }
    }

    /// One request of `claims`' subject: 429 `rate_limited` above the rate.
    pub fn check_request(&self, claims: &Claims) -> Result<(), ApiError> {
        self.check_subject(subject(claims))
    }

    /// One frame of `driver_id`'s ping stream, counted like a request of that driver.
    pub fn check_request_of(&self, driver_id: &str) -> Result<(), ApiError> {
        self.check_subject(format!(
            "{}:{driver_id}",
            doorstep_schemas::model::ActorKind::Driver
        ))
    }

    fn check_subject(&self, key: String) -> Result<(), ApiError> {
        self.sweep();
        self.requests.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            too_many(
                "rate_limited",
                format!(
                    "more than {} requests per second (burst {}) for this token; slow down",
                    self.config.rate_per_s, self.config.rate_burst
                ),
                wait.max(Duration::from_secs(1)),
            )
        })
    }

    /// One placement of `customer`: 429 `order_quota_exceeded` above the hourly quota.
    pub fn check_placement_quota(&self, customer: &str) -> Result<(), ApiError> {
        let key = customer.to_owned();
        self.placements.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            too_many(
                "order_quota_exceeded",
                format!(
                    "a customer may place {} orders per hour",
                    self.config.orders_per_hour
                ),
                wait.max(Duration::from_secs(1)),
            )
        })
    }

    /// `what` at `p` must be inside the service area: 422 `outside_service_area`.
    pub fn check_area(&self, what: &str, p: GeoPoint) -> Result<(), ApiError> {
        match &self.config.service_area {
            Some(area) if !area.contains(p) => Err(unprocessable(
                "outside_service_area",
                format!(
                    "{what} ({}, {}) is outside the service area ({area})",
                    p.lat, p.lng
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The restaurant must be registered, and the order's `location` for it near its
    /// registered place: 422 `unknown_restaurant` / `restaurant_location_mismatch`.
    pub fn check_restaurant(
        &self,
        restaurant_id: &str,
        location: GeoPoint,
    ) -> Result<(), ApiError> {
        let Restaurants::Registry(known) = &self.config.restaurants else {
            return Ok(());
        };
        let Some(r) = known.iter().find(|r| r.restaurant_id == restaurant_id) else {
            return Err(unprocessable(
                "unknown_restaurant",
                format!("restaurant {restaurant_id} does not take orders here"),
            ));
        };
        let off = r.location.distance_m(&location);
        if off.is_nan() || off > MAX_RESTAURANT_OFFSET_M {
            return Err(unprocessable(
                "restaurant_location_mismatch",
                format!(
                    "restaurant_location is {off:.0} m from where restaurant {restaurant_id} is (at most {MAX_RESTAURANT_OFFSET_M} m)"
                ),
            ));
        }
        Ok(())
    }

    /// Takes a WebSocket place of `claims`' subject until the guard is dropped: 429
    /// `too_many_sockets` when the subject has all of them.
    pub fn open_socket(self: &Arc<Self>, claims: &Claims) -> Result<SocketGuard, ApiError> {
        let key = subject(claims);
        let mut sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let n = sockets.entry(key.clone()).or_insert(0);
        if *n >= self.config.max_sockets_per_subject {
            return Err(too_many(
                "too_many_sockets",
                format!(
                    "this token already has {} WebSockets open; close one first",
                    self.config.max_sockets_per_subject
                ),
                Duration::from_secs(5),
            ));
        }
        *n += 1;
        Ok(SocketGuard {
            limits: self.clone(),
            key,
        })
    }

    /// WebSockets `claims`' subject has open here.
    pub fn sockets_of(&self, claims: &Claims) -> usize {
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        sockets.get(&subject(claims)).copied().unwrap_or(0)
    }
}

/// A WebSocket's place in its subject's count; dropping it frees the place.
pub struct SocketGuard {
    limits: Arc<EdgeLimits>,
    key: String,
}

impl std::fmt::Debug for SocketGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketGuard")
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut sockets = self
            .limits
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = sockets.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sockets.remove(&self.key);
            }
        }
    }
}

/// Connects to Redis for the open-orders sets when first needed.
pub type OpenOrdersConnector =
    Arc<dyn Fn() -> BoxFuture<'static, Result<OpenOrders, String>> + Send + Sync>;

/// The cap on open orders per customer (`gateway.max_open_orders`): a customer's set in Redis
/// ([`OpenOrders`]), pruned against the order store before counting. When Redis or the order
/// store cannot answer, the placement is let through (order intake never stops for them) and
/// a warning is logged.
///
/// Known slack: the place is reserved before the event is produced, so a placement the broker
/// then refuses (503) holds its place until the grace period ends; and two placements of one
/// customer checked at the same instant can both pass (the cap can be exceeded by the number
/// of concurrent requests, which the rate limit bounds).
pub struct OpenOrdersCap {
    connect: OpenOrdersConnector,
    sets: OnceCell<OpenOrders>,
    orders: Arc<dyn OrderReader>,
    max: usize,
    /// A member the order store does not know yet is still counted this long (the status
    /// pipeline has not saved it yet); after, it was a refused placement.
    grace: Duration,
    /// No order is counted longer than this.
    max_age: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for OpenOrdersCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOrdersCap")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl OpenOrdersCap {
    /// At most `max` open orders per customer, read through `connect` and `orders`.
    pub fn new(connect: OpenOrdersConnector, orders: Arc<dyn OrderReader>, max: usize) -> Self {
        Self {
            connect,
            sets: OnceCell::new(),
            orders,
            max,
            grace: Duration::from_secs(600),
            max_age: Duration::from_secs(12 * 3600),
            timeout: Duration::from_secs(2),
        }
    }

    /// Counts `customer`'s open orders other than `order_id` and, below the cap, adds
    /// `order_id`: 429 `too_many_open_orders` at the cap.
    pub async fn reserve(&self, customer: &str, order_id: &str) -> Result<(), ApiError> {
        match tokio::time::timeout(self.timeout * 3, self.try_reserve(customer, order_id)).await {
            Ok(Ok(Some(open))) => Err(too_many(
                "too_many_open_orders",
                format!(
                    "this customer has {open} orders open (at most {}); wait until one is delivered or cancelled",
                    self.max
                ),
                Duration::from_secs(60),
            )),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "open orders not counted; placement let through");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("open orders not counted in time; placement let through");
                Ok(())
            }
        }
    }

    /// `Some(open)` at the cap, `None` when reserved.
    async fn try_reserve(&self, customer: &str, order_id: &str) -> Result<Option<usize>, String> {
        let sets = self.sets.get_or_try_init(|| (self.connect)()).await?;
        let now = doorstep_schemas::model::Timestamp::now().as_millis();
        let members = sets.list(customer).await.map_err(|e| e.to_string())?;
        let mut stale = Vec::new();
        let mut open = 0usize;
        for m in members.iter().filter(|m| m.order_id != order_id) {
            let age = Duration::from_millis(
                u64::try_from(now.saturating_sub(m.placed_at_ms)).unwrap_or(0),
            );
            if age > self.max_age {
                stale.push(m.order_id.clone());
                continue;
            }
            let state = tokio::time::timeout(self.timeout, self.orders.load(&m.order_id))
                .await
                .map_err(|_| "the order store did not answer".to_owned())??;
            if is_open(state.as_ref(), age, self.grace) {
                open += 1;
            } else {
                stale.push(m.order_id.clone());
            }
        }
        sets.remove(customer, &stale)
            .await
            .map_err(|e| e.to_string())?;
        if open >= self.max {
            return Ok(Some(open));
        }
        sets.add(customer, order_id, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(None)
    }
}

/// Whether a counted order is still open: saved and not final, or not saved yet within the
/// grace period.
fn is_open(state: Option<&OrderState>, age: Duration, grace: Duration) -> bool {
    match state {
        Some(s) => !matches!(
            s.order.status,
            OrderStatus::Delivered | OrderStatus::Cancelled
        ),
        None => age <= grace,
    }
}

/// The edge checks of a placement that passed validation: both locations in the service area,
/// the restaurant registered (and where it is registered), the customer's hourly quota, and
/// the cap on open orders (which reserves the order's place).
pub(super) async fn check_place(
    s: &super::GatewayState,
    claims: &Claims,
    order_id: &str,
    place: &doorstep_schemas::events::PlaceOrder,
) -> Result<(), ApiError> {
    let limits = s.limits();
    limits.check_area("restaurant_location", place.restaurant_location)?;
    limits.check_area("delivery_location", place.delivery_location)?;
    limits.check_restaurant(place.restaurant_id.as_str(), place.restaurant_location)?;
    limits.check_placement_quota(&claims.sub)?;
    if let Some(cap) = &s.inner.open_orders {
        cap.reserve(&claims.sub, order_id).await?;
    }
    Ok(())
}
