//! The routing cache of the ETA pipeline's router (`connectors::routing::Router`) against the
//! real OSRM server: its key is (origin geohash, destination geohash, time-of-day bucket), an
//! entry is used for 5 minutes of the caller's clock, and failures are never cached.
//!
//! The caller's clock is the `now` each lookup passes: the tests hold it still and move it by
//! hand (a paused clock), so the 5-minute expiry is checked to the millisecond without waiting.
//! Whether an answer came from the cache is what the router reports: `Cached` with no HTTP
//! call, or `Routed` with at least one.

use anyhow::{Context, ensure};
use doorstep_connectors::config::Service;
use doorstep_connectors::routing::{
    FallbackReason, OsrmClient, OsrmConfig, RouteAnswer, RouteSource, Router, RouterConfig,
};
use doorstep_operators::eta::{geohash, time_bucket};
use doorstep_schemas::model::{GeoPoint, Timestamp};
use doorstep_tests::{ServiceDown, endpoints};
use std::time::Duration;

/// Rautatientori (railway square) and Kamppi: about 1 km by car.
const ORIGIN: (f64, f64) = (60.1699, 24.9384);
const DESTINATION: (f64, f64) = (60.1718, 24.9458);

fn point((lat, lng): (f64, f64)) -> anyhow::Result<GeoPoint> {
    Ok(GeoPoint::new(lat, lng)?)
}

/// A time at the very start of a 15-minute bucket (10:00 UTC on a fixed day), so that the
/// next 15 minutes share its bucket.
fn bucket_start() -> Timestamp {
    Timestamp::from_millis(1_767_261_600_000)
}

fn router(config: &RouterConfig) -> anyhow::Result<Router> {
    let client = OsrmClient::new(&OsrmConfig::new(&endpoints().osrm_url))?;
    Ok(Router::new(client, *config))
}

/// The first lookup of a key: must reach OSRM (a fallback means the server is not there).
async fn routed(
    router: &Router,
    from: GeoPoint,
    to: GeoPoint,
    now: Timestamp,
) -> anyhow::Result<RouteAnswer> {
    let answer = router.travel(from, to, now).await;
    if answer.source == RouteSource::Fallback(FallbackReason::Unavailable) {
        let e = endpoints();
        return Err(ServiceDown::new(Service::Osrm, &e, "no answer from OSRM").into());
    }
    ensure!(
        answer.source == RouteSource::Routed && answer.calls >= 1 && answer.duration_s > 0.0,
        "{answer:?}"
    );
    Ok(answer)
}

fn cached(answer: &RouteAnswer, first: &RouteAnswer) -> anyhow::Result<()> {
    ensure!(
        answer.source == RouteSource::Cached && answer.calls == 0,
        "expected a cache hit: {answer:?}"
    );
    ensure!(
        answer.duration_s == first.duration_s,
        "{answer:?} vs {first:?}"
    );
    Ok(())
}

/// A point inside the geohash cell of `p` (at `precision`), near the cell's opposite corner.
fn same_cell_elsewhere(p: GeoPoint, precision: usize) -> anyhow::Result<GeoPoint> {
    let cell = geohash::encode(p, precision);
    let (lat_lo, lat_hi, lng_lo, lng_hi) = geohash::bounds(&cell).context("bounds")?;
    let lat = if p.lat < (lat_lo + lat_hi) / 2.0 {
        lat_hi - (lat_hi - lat_lo) * 0.1
    } else {
        lat_lo + (lat_hi - lat_lo) * 0.1
    };
    let lng = if p.lng < (lng_lo + lng_hi) / 2.0 {
        lng_hi - (lng_hi - lng_lo) * 0.1
    } else {
        lng_lo + (lng_hi - lng_lo) * 0.1
    };
    Ok(GeoPoint::new(lat, lng)?)
}

/// A point just across the northern edge of the cell of `p`: metres away, another cell.
fn next_cell(p: GeoPoint, precision: usize) -> anyhow::Result<GeoPoint> {
    let (_, lat_hi, _, _) = geohash::bounds(&geohash::encode(p, precision)).context("bounds")?;
    Ok(GeoPoint::new(lat_hi + 1e-6, p.lng)?)
}

#[tokio::test]
async fn a_nearby_origin_in_the_same_cell_hits_and_the_next_cell_misses() -> anyhow::Result<()> {
    let config = RouterConfig::default();
    let precision = config.geohash_precision;
    let router = router(&config)?;
    let (from, to) = (point(ORIGIN)?, point(DESTINATION)?);
    let now = bucket_start();
    let first = routed(&router, from, to, now).await?;

    // Another origin in the same cell (tens of metres away): the same key.
    let nearby = same_cell_elsewhere(from, precision)?;
    ensure!(geohash::encode(nearby, precision) == geohash::encode(from, precision));
    ensure!(nearby != from);
    cached(&router.travel(nearby, to, now).await, &first)?;
    // The same for the destination's cell.
    let near_dest = same_cell_elsewhere(to, precision)?;
    cached(&router.travel(from, near_dest, now).await, &first)?;

    // An origin just across the cell's edge (closer to `from` than `nearby` may be): a miss.
    let across = next_cell(from, precision)?;
    ensure!(geohash::encode(across, precision) != geohash::encode(from, precision));
    routed(&router, across, to, now).await?;
    // Likewise the destination, and the reverse direction (origin and destination swapped).
    routed(&router, from, next_cell(to, precision)?, now).await?;
    routed(&router, to, from, now).await?;
    // Each of those is now cached under its own key.
    ensure!(router.travel(across, to, now).await.source == RouteSource::Cached);
    Ok(())
}

#[tokio::test]
async fn another_time_of_day_bucket_misses() -> anyhow::Result<()> {
    let config = RouterConfig::default();
    let router = router(&config)?;
    let (from, to) = (point(ORIGIN)?, point(DESTINATION)?);
    let bucket_ms = i64::from(config.time_bucket_min) * 60_000;
    // A minute before the end of a bucket, then a second into the next one: well within the
    // 5-minute TTL, but another key.
    let late = bucket_start().plus_millis(bucket_ms - 60_000);
    let next = bucket_start().plus_millis(bucket_ms + 1_000);
    ensure!(
        time_bucket(late, config.time_bucket_min) + 1 == time_bucket(next, config.time_bucket_min)
    );
    let first = routed(&router, from, to, late).await?;
    cached(
        &router.travel(from, to, late.plus_millis(30_000)).await,
        &first,
    )?;
    routed(&router, from, to, next).await?;
    cached(
        &router.travel(from, to, next.plus_millis(1_000)).await,
        &first,
    )?;
    Ok(())
}

#[tokio::test]
async fn an_entry_expires_after_five_minutes_of_the_callers_clock() -> anyhow::Result<()> {
    let config = RouterConfig::default();
    ensure!(config.cache_ttl == Duration::from_secs(300), "{config:?}");
    let router = router(&config)?;
    let (from, to) = (point(ORIGIN)?, point(DESTINATION)?);
    let t0 = bucket_start();
    let first = routed(&router, from, to, t0).await?;
    // The clock stands still: hits.
    cached(&router.travel(from, to, t0).await, &first)?;
    // One millisecond short of 5 minutes: still fresh.
    cached(
        &router.travel(from, to, t0.plus_millis(299_999)).await,
        &first,
    )?;
    // 5 minutes on (same bucket): expired, routed again, and fresh from then on.
    let t5 = t0.plus_millis(300_000);
    ensure!(time_bucket(t0, config.time_bucket_min) == time_bucket(t5, config.time_bucket_min));
    let again = routed(&router, from, to, t5).await?;
    cached(
        &router.travel(from, to, t5.plus_millis(299_999)).await,
        &again,
    )?;
    routed(&router, from, to, t5.plus_millis(300_000)).await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_route_is_not_cached() -> anyhow::Result<()> {
    let now = bucket_start();
    let to = point(DESTINATION)?;

    // No route between the points (OSRM's NoSegment: far from every road once snapping is
    // bounded): every lookup asks OSRM again.
    let client =
        OsrmClient::new(&OsrmConfig::new(&endpoints().osrm_url).with_max_snap_distance(1_000.0))?;
    let router = Router::new(client, RouterConfig::default());
    let nowhere = GeoPoint::new(0.0, 0.0)?;
    for _ in 0..3 {
        let answer = router.travel(nowhere, to, now).await;
        ensure!(
            answer.source == RouteSource::Fallback(FallbackReason::NoRoute) && answer.calls >= 1,
            "{answer:?}"
        );
    }
    // The same router still routes and caches what can be routed.
    let first = routed(&router, point(ORIGIN)?, to, now).await?;
    cached(&router.travel(point(ORIGIN)?, to, now).await, &first)?;

    // The engine unreachable (nothing listens on the discard port): each lookup calls again
    // until the breaker opens; none is answered from the cache.
    let down = OsrmClient::new(&OsrmConfig::new("http://127.0.0.1:9"))?;
    let mut config = RouterConfig::default();
    config.retry = config.retry.with_max_attempts(1);
    let router = Router::new(down, config);
    let threshold = config.breaker.failure_threshold;
    for i in 0..threshold {
        let answer = router.travel(point(ORIGIN)?, to, now).await;
        ensure!(
            answer.source == RouteSource::Fallback(FallbackReason::Unavailable)
                && answer.calls == 1,
            "lookup {i}: {answer:?}"
        );
    }
    let answer = router.travel(point(ORIGIN)?, to, now).await;
    ensure!(
        answer.source == RouteSource::Fallback(FallbackReason::CircuitOpen) && answer.calls == 0,
        "{answer:?}"
    );
    Ok(())
}
