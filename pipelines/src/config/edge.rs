//! The public edge's settings (`gateway.*` limits): server timeouts and the connection cap,
//! per-subject rate limits and quotas, the open-order cap, the restaurant registry, the
//! service area, and the WebSocket limits. Every one has a safe default.

use super::{ConfigError, Source, invalid, parse, required};
use doorstep_schemas::model::GeoPoint;
use std::time::Duration;

/// Where orders and pings may be: a latitude/longitude box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceArea {
    /// Southern edge, degrees.
    pub min_lat: f64,
    /// Western edge, degrees.
    pub min_lng: f64,
    /// Northern edge, degrees.
    pub max_lat: f64,
    /// Eastern edge, degrees.
    pub max_lng: f64,
}

impl ServiceArea {
    /// Whether `p` is inside (edges included).
    pub fn contains(&self, p: GeoPoint) -> bool {
        (self.min_lat..=self.max_lat).contains(&p.lat)
            && (self.min_lng..=self.max_lng).contains(&p.lng)
    }
}

impl std::fmt::Display for ServiceArea {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lat {}..{}, lng {}..{}",
            self.min_lat, self.max_lat, self.min_lng, self.max_lng
        )
    }
}

/// One registered restaurant.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredRestaurant {
    /// Its id.
    pub restaurant_id: String,
    /// Where it is.
    pub location: GeoPoint,
}

/// Which restaurants may receive orders (`gateway.restaurants`).
#[derive(Debug, Clone, PartialEq)]
pub enum Restaurants {
    /// Any restaurant id at any location (inside the service area): `*`.
    Any,
    /// Only these, each at its registered location.
    Registry(Vec<RegisteredRestaurant>),
}

/// The restaurants of `gateway.restaurants = "demo"`: the simulator's six in central Helsinki.
pub fn demo_restaurants() -> Vec<RegisteredRestaurant> {
    crate::simulate::RESTAURANTS
        .iter()
        .map(|(id, at)| RegisteredRestaurant {
            restaurant_id: (*id).to_owned(),
            location: *at,
        })
        .collect()
}

/// The edge's limits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EdgeConfig {
    /// Longest a client may take to send a request's headers (and, between requests, to
    /// start the next one).
    pub header_read_timeout: Duration,
    /// Longest a connection may stay without a byte read or written.
    pub idle_timeout: Duration,
    /// Longest one HTTP request may take, body included (408 after).
    pub request_timeout: Duration,
    /// Most connections open at once (WebSockets included); more wait to be accepted.
    pub max_connections: usize,
    /// Requests per second per token subject (sustained).
    pub rate_per_s: u32,
    /// Requests a token subject may send at once above the sustained rate.
    pub rate_burst: u32,
    /// Orders a customer may place per hour.
    pub orders_per_hour: u32,
    /// Orders a customer may have open at once (0: no cap).
    pub max_open_orders: usize,
    /// Restaurants that may receive orders.
    pub restaurants: Restaurants,
    /// Where orders and pings may be (`None`: anywhere).
    pub service_area: Option<ServiceArea>,
    /// WebSockets one token subject may have open on a gateway process.
    pub max_sockets_per_subject: usize,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(15),
            max_connections: 10_000,
            rate_per_s: 20,
            rate_burst: 40,
            orders_per_hour: 30,
            max_open_orders: 5,
            restaurants: Restaurants::Registry(demo_restaurants()),
            service_area: Some(DEFAULT_SERVICE_AREA),
            max_sockets_per_subject: 8,
        }
    }
}

/// Helsinki and its surroundings: where the shipped routing graph is.
pub const DEFAULT_SERVICE_AREA: ServiceArea = ServiceArea {
    min_lat: 59.9,
    min_lng: 24.5,
    max_lat: 60.5,
    max_lng: 25.5,
};

impl EdgeConfig {
    /// No rate limits, quotas, caps, registry or service area: what a test that is not about
    /// the edge wants (timeouts stay).
    pub fn unlimited() -> Self {
        Self {
            max_connections: 100_000,
            rate_per_s: 1_000_000,
            rate_burst: 1_000_000,
            orders_per_hour: 1_000_000,
            max_open_orders: 0,
            restaurants: Restaurants::Any,
            service_area: None,
            max_sockets_per_subject: 100_000,
            ..Self::default()
        }
    }

    /// Reads and validates the edge settings.
    pub(super) fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let ms = |key: &'static str, min: u64| -> Result<Duration, ConfigError> {
            let v: u64 = parse(src, key)?;
            if v < min {
                return Err(invalid(key, &v.to_string(), &format!("must be ≥ {min}")));
            }
            Ok(Duration::from_millis(v))
        };
        let at_least = |key: &'static str, min: u64| -> Result<u64, ConfigError> {
            let v: u64 = parse(src, key)?;
            if v < min {
                return Err(invalid(key, &v.to_string(), &format!("must be ≥ {min}")));
            }
            Ok(v)
        };
        let small = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Self {
            header_read_timeout: ms("gateway.header_read_timeout_ms", 100)?,
            idle_timeout: ms("gateway.idle_timeout_ms", 1_000)?,
            request_timeout: ms("gateway.request_timeout_ms", 100)?,
            max_connections: size(at_least("gateway.max_connections", 1)?),
            rate_per_s: small(at_least("gateway.rate_limit_per_s", 1)?),
            rate_burst: small(at_least("gateway.rate_limit_burst", 1)?),
            orders_per_hour: small(at_least("gateway.orders_per_hour", 1)?),
            max_open_orders: size(at_least("gateway.max_open_orders", 0)?),
            restaurants: restaurants(&required(src, "gateway.restaurants")?)?,
            service_area: service_area(&required(src, "gateway.service_area")?)?,
            max_sockets_per_subject: size(at_least("gateway.max_sockets_per_subject", 1)?),
        })
    }
}

fn restaurants(raw: &str) -> Result<Restaurants, ConfigError> {
    let key = "gateway.restaurants";
    match raw.trim() {
        "*" => return Ok(Restaurants::Any),
        "demo" => return Ok(Restaurants::Registry(demo_restaurants())),
        _ => {}
    }
    let mut out = Vec::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || {
            invalid(
                key,
                entry,
                "expected `*`, `demo`, or `id@lat,lng` entries separated by `;`",
            )
        };
        let (id, at) = entry.split_once('@').ok_or_else(bad)?;
        let (lat, lng) = at.split_once(',').ok_or_else(bad)?;
        let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
        let lng: f64 = lng.trim().parse().map_err(|_| bad())?;
        let location = GeoPoint::new(lat, lng).map_err(|e| invalid(key, entry, &e.to_string()))?;
        doorstep_operators::order::validate_id("restaurant_id", id.trim())
            .map_err(|e| invalid(key, entry, &e.to_string()))?;
        out.push(RegisteredRestaurant {
            restaurant_id: id.trim().to_owned(),
            location,
        });
    }
    if out.is_empty() {
        return Err(invalid(key, raw, "lists no restaurant"));
    }
    Ok(Restaurants::Registry(out))
}

fn service_area(raw: &str) -> Result<Option<ServiceArea>, ConfigError> {
    let key = "gateway.service_area";
    if raw.trim() == "*" {
        return Ok(None);
    }
    let parts: Vec<f64> = raw
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            invalid(
                key,
                raw,
                "expected `*` or `min_lat,min_lng,max_lat,max_lng`",
            )
        })?;
    let [min_lat, min_lng, max_lat, max_lng] = parts[..] else {
        return Err(invalid(
            key,
            raw,
            "expected `*` or `min_lat,min_lng,max_lat,max_lng`",
        ));
    };
    let ok = GeoPoint::new(min_lat, min_lng).is_ok()
        && GeoPoint::new(max_lat, max_lng).is_ok()
        && min_lat < max_lat
        && min_lng < max_lng;
    if !ok {
        return Err(invalid(
            key,
            raw,
            "corners must be valid coordinates with min < max",
        ));
    }
    Ok(Some(ServiceArea {
        min_lat,
        min_lng,
        max_lat,
        max_lng,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_and_areas_parse() {
        assert_eq!(restaurants("*").unwrap(), Restaurants::Any);
        assert_eq!(
            restaurants("demo").unwrap(),
            Restaurants::Registry(demo_restaurants())
        );
        let Restaurants::Registry(r) = restaurants("r-1@60.1,24.9; r-2@60.2,25.0").unwrap() else {
            panic!("a registry")
        };
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].restaurant_id, "r-2");
        assert!(restaurants("r-1@95,0").is_err());
        assert!(restaurants("r 1@60,24").is_err());
        assert!(restaurants("r-1").is_err());
        assert_eq!(service_area("*").unwrap(), None);
        let a = service_area("59.9,24.5,60.5,25.5").unwrap().unwrap();
        assert!(a.contains(GeoPoint {
            lat: 60.17,
            lng: 24.94
        }));
        assert!(!a.contains(GeoPoint { lat: 0.0, lng: 0.0 }));
        assert!(service_area("60.5,24.5,59.9,25.5").is_err());
        assert!(service_area("1,2,3").is_err());
    }
}
