//! Routes for the simulated drivers: the street path from the routing engine (OSRM's
//! `/route/v1` with the full `polyline6` geometry, a transient failure retried like a driver
//! app would), or a straight line when it cannot answer.

use super::path::{Path, decode_polyline};
use doorstep_connectors::retry::{RetryClass, RetryPolicy, retry_with};
use doorstep_connectors::routing::{LngLat, OsrmClient};
use doorstep_schemas::model::GeoPoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Speed of the straight-line fallback, m/s (city driving).
pub const FALLBACK_SPEED_MPS: f64 = 8.0;

/// Where the simulated drivers' paths come from.
#[derive(Debug)]
pub struct Routes {
    osrm: Option<OsrmClient>,
    /// Routes that came from the routing engine.
    pub routed: AtomicU64,
    /// Straight lines used because the engine failed (or none is configured).
    pub fallbacks: AtomicU64,
}

impl Routes {
    /// Routes from `osrm`, or straight lines only when `None`.
    pub fn new(osrm: Option<OsrmClient>) -> Self {
        Self {
            osrm,
            routed: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
        }
    }

    /// The path a driver takes from `from` to `to`.
    pub async fn path(&self, from: GeoPoint, to: GeoPoint) -> Path {
        if let Some(osrm) = &self.osrm {
            // A dropped keep-alive connection or a busy engine: try again a moment later.
            let retry = RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(100), Duration::from_millis(500));
            let (a, b) = (LngLat::new(from.lng, from.lat), LngLat::new(to.lng, to.lat));
            let routed = retry_with(
                &retry,
                |e: &doorstep_connectors::routing::Error| RetryClass::of(e.is_retriable(), None),
                |_| osrm.route_with_geometry(a, b),
            )
            .await;
            match routed {
                Ok(route) => {
                    let points = route
                        .geometry
                        .as_deref()
                        .map(|g| decode_polyline(g, 6))
                        .transpose();
                    match points {
                        Ok(Some(points)) => {
                            if let Some(path) = Path::new(points, route.duration_s) {
                                self.routed.fetch_add(1, Ordering::Relaxed);
                                return path;
                            }
                        }
                        Ok(None) => tracing::warn!("route without geometry; driving straight"),
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable route geometry; driving straight")
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "no route; driving straight"),
            }
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        Path::straight(from, to, FALLBACK_SPEED_MPS)
    }
}
