//! The router the ETA pipeline asks for travel times: the OSRM client behind a cache, retries
//! and a circuit breaker, with a straight-line fallback, so an answer always comes back.
//!
//! - **Cache** (`moka`): keyed by (origin geohash, destination geohash, time-of-day bucket);
//!   an entry is fresh for `cache_ttl` of the caller's clock (the time passed in), and
//!   evicted by moka after `cache_ttl` of real time or when `cache_capacity` is reached.
//!   Concurrent lookups of one key wait for a single call (`and_compute_with`).
//! - **Retries**: the shared [`RetryPolicy`] over [`Error::is_retriable`] errors.
//! - **Circuit breaker** ([`CircuitBreaker`]): consecutive failures open it; calls then fail
//!   fast until a probe succeeds.
//! - **Fallback**: when routing fails (engine down, breaker open, or no route between the
//!   points), the straight-line distance × road factor ÷ average speed of the
//!   [`TravelModel`], flagged in the answer.

use super::{BreakerConfig, CircuitBreaker, Error, LngLat, OsrmClient};
use crate::retry::{RetryClass, RetryPolicy, retry_with};
use doorstep_operators::eta::{TravelModel, geohash, time_bucket};
use doorstep_schemas::model::{GeoPoint, Timestamp};
use moka::ops::compute::{CompResult, Op};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Router settings.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Geohash characters of the cache key's cells (1..=12; 7 ≈ 150 m).
    pub geohash_precision: usize,
    /// Minutes per time-of-day bucket of the cache key.
    pub time_bucket_min: u32,
    /// How long a cached route is used.
    pub cache_ttl: Duration,
    /// Most routes kept.
    pub cache_capacity: u64,
    /// Retries of one lookup.
    pub retry: RetryPolicy,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// The fallback's road factor and speed.
    pub fallback: TravelModel,
}

impl Default for RouterConfig {
    /// Precision 7, 15-minute buckets, 5-minute TTL, 100,000 routes, 2 attempts 50 ms apart,
    /// the default breaker and fallback.
    fn default() -> Self {
        Self {
            geohash_precision: 7,
            time_bucket_min: 15,
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 100_000,
            retry: RetryPolicy::default()
                .with_max_attempts(2)
                .with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
            breaker: BreakerConfig::default(),
            fallback: TravelModel::default(),
        }
    }
}

/// Why an answer is a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// The breaker is open: no call was made.
    CircuitOpen,
    /// The routing engine failed (down, timing out, answering garbage).
    Unavailable,
    /// The engine answered that these points cannot be routed (off the road network).
    NoRoute,
}

impl FallbackReason {
    /// A metric label.
    pub fn code(self) -> &'static str {
        match self {
            Self::CircuitOpen => "circuit_open",
            Self::Unavailable => "unavailable",
            Self::NoRoute => "no_route",
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteSource {
    /// The routing engine, called for this lookup.
    Routed,
    /// The cache.
    Cached,
    /// The straight-line fallback.
    Fallback(FallbackReason),
}

/// A travel time.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RouteAnswer {
    /// Seconds.
    pub duration_s: f64,
    /// Where it came from.
    pub source: RouteSource,
    /// HTTP requests made for it (retries included; 0 from the cache or an open breaker).
    pub calls: u32,
    /// Time spent in those requests.
    pub latency: Option<Duration>,
}

impl RouteAnswer {
    /// Whether it is a straight-line fallback.
    pub fn is_fallback(&self) -> bool {
        matches!(self.source, RouteSource::Fallback(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteKey {
    origin: String,
    destination: String,
    bucket: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    duration_s: f64,
    fetched_at: Timestamp,
}

/// What one call (with its retries) produced, for the caller.
#[derive(Default)]
struct CallLog {
    calls: AtomicU32,
    latency: Mutex<Option<Duration>>,
    failure: Mutex<Option<FallbackReason>>,
}

/// Cached, retried, circuit-broken routing with a fallback. Cheap to share (`Arc`).
pub struct Router {
    client: OsrmClient,
    config: RouterConfig,
    cache: moka::future::Cache<RouteKey, Cached>,
    breaker: CircuitBreaker,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.config)
            .field("cached_routes", &self.cache.entry_count())
            .field("breaker", &self.breaker.state())
            .finish()
    }
}

impl Router {
    /// A router over `client`.
    pub fn new(client: OsrmClient, config: RouterConfig) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(config.cache_capacity)
            .time_to_live(config.cache_ttl.max(Duration::from_millis(1)))
            .build();
        Self {
            client,
            breaker: CircuitBreaker::new(config.breaker),
            config,
            cache,
        }
    }

    /// The breaker (for its state in metrics and tests).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Routes held in the cache (approximate: moka applies writes lazily).
    pub fn cached_routes(&self) -> u64 {
        self.cache.entry_count()
    }

    fn key(&self, from: GeoPoint, to: GeoPoint, now: Timestamp) -> RouteKey {
        RouteKey {
            origin: geohash::encode(from, self.config.geohash_precision),
            destination: geohash::encode(to, self.config.geohash_precision),
            bucket: time_bucket(now, self.config.time_bucket_min),
        }
    }

    /// The travel time from `from` to `to` at `now` (the caller's clock): from the cache if
    /// a fresh entry exists, else from the routing engine, else the straight-line fallback.
    /// Never fails.
    pub async fn travel(&self, from: GeoPoint, to: GeoPoint, now: Timestamp) -> RouteAnswer {
        let ttl_ms = i64::try_from(self.config.cache_ttl.as_millis()).unwrap_or(i64::MAX);
        let fresh = |c: &Cached| now.millis_since(c.fetched_at) < ttl_ms;
        let log = CallLog::default();
        let result = self
            .cache
            .entry(self.key(from, to, now))
            .and_compute_with(|entry| async {
                if let Some(e) = entry
                    && fresh(e.value())
                {
                    return Op::Nop;
                }
                match self.call(from, to, now, &log).await {
                    Some(duration_s) => Op::Put(Cached {
                        duration_s,
                        fetched_at: now,
                    }),
                    None => Op::Nop,
                }
            })
            .await;
        let calls = log.calls.load(Ordering::Relaxed);
        let latency = *log
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failure = *log
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let routed = match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => {
                Some((e.into_value().duration_s, RouteSource::Routed))
            }
            CompResult::Unchanged(e) if failure.is_none() && fresh(e.value()) => {
                Some((e.into_value().duration_s, RouteSource::Cached))
            }
            CompResult::Unchanged(_) | CompResult::StillNone(_) | CompResult::Removed(_) => None,
        };
        match routed {
            Some((duration_s, source)) => RouteAnswer {
                duration_s,
                source,
                calls,
                latency,
            },
            None => RouteAnswer {
                duration_s: self.config.fallback.straight_line_s(from, to),
                source: RouteSource::Fallback(failure.unwrap_or(FallbackReason::Unavailable)),
                calls,
                latency,
            },
        }
    }

    /// One lookup with retries, through the breaker; `None` (with the reason in `log`) when
    /// it failed.
    async fn call(
        &self,
        from: GeoPoint,
        to: GeoPoint,
        now: Timestamp,
        log: &CallLog,
    ) -> Option<f64> {
        let set_failure = |r: FallbackReason| {
            *log.failure
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
        };
        if !self.breaker.allow(now) {
            set_failure(FallbackReason::CircuitOpen);
            return None;
        }
        let started = Instant::now();
        let result = retry_with(
            &self.config.retry,
            |e: &Error| RetryClass::of(e.is_retriable(), None),
            |_| {
                log.calls.fetch_add(1, Ordering::Relaxed);
                self.client
                    .route(LngLat::new(from.lng, from.lat), LngLat::new(to.lng, to.lat))
            },
        )
        .await;
        *log.latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(started.elapsed());
        match result {
            Ok(route) => {
                self.breaker.on_success();
                Some(route.duration_s)
            }
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "routing failed; straight-line fallback");
                self.breaker.on_failure(now);
                set_failure(FallbackReason::Unavailable);
                None
            }
            Err(e) => {
                // An answer about the points: the engine works.
                tracing::debug!(error = %e, "no route; straight-line fallback");
                self.breaker.on_success();
                set_failure(FallbackReason::NoRoute);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::OsrmConfig;

    fn hki(lat: f64, lng: f64) -> GeoPoint {
        GeoPoint { lat, lng }
    }

    #[test]
    fn the_cache_key_is_both_cells_and_the_time_of_day_bucket() {
        let client = OsrmClient::new(&OsrmConfig::new("http://127.0.0.1:9")).expect("client");
        let router = Router::new(client, RouterConfig::default());
        let (a, b) = (hki(60.1699, 24.9384), hki(60.1718, 24.9458));
        // 10:07 UTC: the 15-minute bucket 40 of the day.
        let now = Timestamp::from_millis(1_767_261_600_000 + 7 * 60_000);
        // The cells as computed independently (standard geohash, 7 characters ≈ 150 m).
        assert_eq!(
            router.key(a, b, now),
            RouteKey {
                origin: "ud9wr3x".into(),
                destination: "ud9wr9u".into(),
                bucket: 40,
            }
        );
        assert_ne!(router.key(a, b, now), router.key(b, a, now), "directed");
    }

    #[tokio::test]
    async fn an_unreachable_engine_gives_flagged_fallbacks_and_opens_the_breaker() {
        // Port 9 (discard) on loopback: connection refused at once.
        let client = OsrmClient::new(&OsrmConfig::new("http://127.0.0.1:9")).expect("client");
        let config = RouterConfig {
            breaker: BreakerConfig::new(2, Duration::from_secs(30)),
            retry: RetryPolicy::no_retry(),
            ..RouterConfig::default()
        };
        let router = Router::new(client, config);
        let (a, b) = (hki(60.1699, 24.9384), hki(60.1718, 24.9458));
        let now = Timestamp::from_millis(1_700_000_000_000);
        let first = router.travel(a, b, now).await;
        assert_eq!(
            first.source,
            RouteSource::Fallback(FallbackReason::Unavailable)
        );
        assert_eq!(first.calls, 1);
        let expected = TravelModel::default().straight_line_s(a, b);
        assert!((first.duration_s - expected).abs() < 1e-9);
        router.travel(b, a, now).await;
        let third = router.travel(a, b, now).await;
        assert_eq!(
            third.source,
            RouteSource::Fallback(FallbackReason::CircuitOpen)
        );
        assert_eq!(third.calls, 0);
    }
}
