//! Routing: travel time and distance from an OSRM server (`/route/v1`).
//!
//! The client speaks OSRM's HTTP API (Mapbox Directions has the same shape). OSRM answers
//! every request with a `code`; anything but `Ok` becomes a typed [`Error`], so the ETA
//! pipeline can tell "no road between these points" (use a fallback estimate) from "the
//! routing engine is down" (retry, then fall back). Caching and circuit breaking wrap this
//! client in [`Router`] ([`router`]), which always answers: routed, cached, or a flagged
//! straight-line fallback.

mod breaker;
mod client;
mod error;
pub mod router;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use client::{OsrmClient, OsrmConfig};
pub use error::{Error, OsrmCode};
pub use router::{FallbackReason, RouteAnswer, RouteSource, Router, RouterConfig};

/// A WGS84 position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LngLat {
    /// Longitude, degrees, -180..=180.
    pub lng: f64,
    /// Latitude, degrees, -90..=90.
    pub lat: f64,
}

impl LngLat {
    /// A position; not validated until used in a request.
    pub const fn new(lng: f64, lat: f64) -> Self {
        Self { lng, lat }
    }

    pub(crate) fn is_valid(self) -> bool {
        (-180.0..=180.0).contains(&self.lng) && (-90.0..=90.0).contains(&self.lat)
    }
}

/// The fastest route OSRM found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Route {
    /// Travel time, seconds (free-flow, from the profile's speeds).
    pub duration_s: f64,
    /// Distance, metres.
    pub distance_m: f64,
    /// The path as a polyline with 6-digit precision, when requested.
    pub geometry: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_validated() {
        assert!(!LngLat::new(200.0, 0.0).is_valid());
        assert!(!LngLat::new(0.0, f64::NAN).is_valid());
        assert!(LngLat::new(24.9384, 60.1699).is_valid());
    }
}
