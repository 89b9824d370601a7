//! Routing: travel time and distance from an OSRM server (`/route/v1`).
//!
//! The client speaks OSRM's HTTP API (Mapbox Directions has the same shape). OSRM answers
//! every request with a `code`; anything but `Ok` becomes a typed [`Error`], so the ETA
//! pipeline can tell "no road between these points" (use a fallback estimate) from "the
//! routing engine is down" (retry, then fall back). Caching and circuit breaking wrap this
//! client; they are not part of it.

use serde::Deserialize;
use std::time::Duration;

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

    fn is_valid(self) -> bool {
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

/// OSRM's answer `code`, as documented for the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OsrmCode {
    /// `Ok`: the request succeeded.
    Ok,
    /// `InvalidUrl`
    InvalidUrl,
    /// `InvalidService`
    InvalidService,
    /// `InvalidVersion`
    InvalidVersion,
    /// `InvalidOptions`
    InvalidOptions,
    /// `InvalidQuery`
    InvalidQuery,
    /// `InvalidValue`
    InvalidValue,
    /// `NoSegment`: a coordinate could not be snapped to the road network.
    NoSegment,
    /// `TooBig`
    TooBig,
    /// `NoRoute`: no route between the points.
    NoRoute,
    /// `NotImplemented`
    NotImplemented,
    /// Any other code.
    Other(String),
}

impl OsrmCode {
    fn parse(code: &str) -> Self {
        match code {
            "Ok" => Self::Ok,
            "InvalidUrl" => Self::InvalidUrl,
            "InvalidService" => Self::InvalidService,
            "InvalidVersion" => Self::InvalidVersion,
            "InvalidOptions" => Self::InvalidOptions,
            "InvalidQuery" => Self::InvalidQuery,
            "InvalidValue" => Self::InvalidValue,
            "NoSegment" => Self::NoSegment,
            "TooBig" => Self::TooBig,
            "NoRoute" => Self::NoRoute,
            "NotImplemented" => Self::NotImplemented,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// What went wrong asking for a route.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be built (bad base URL, TLS setup).
    #[error("invalid routing client configuration for {url:?}: {reason}")]
    Config {
        /// The base URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A coordinate outside -180..=180 / -90..=90 (or NaN).
    #[error("invalid coordinate: longitude {lng}, latitude {lat}")]
    InvalidCoordinate {
        /// Longitude.
        lng: f64,
        /// Latitude.
        lat: f64,
    },
    /// The server could not be reached (refused, DNS, reset).
    #[error("routing engine at {url} is unreachable: {source}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the request timeout.
    #[error("routing request to {url} timed out after {timeout:?}")]
    Timeout {
        /// The base URL.
        url: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// OSRM found no route between the points.
    #[error("no route: {message}")]
    NoRoute {
        /// OSRM's message.
        message: String,
    },
    /// A point is too far from any road OSRM knows.
    #[error("point not on the road network: {message}")]
    NoSegment {
        /// OSRM's message.
        message: String,
    },
    /// OSRM refused the request with another code (a bug on our side, or an old server).
    #[error("routing request refused ({code:?}): {message}")]
    Refused {
        /// OSRM's code.
        code: OsrmCode,
        /// OSRM's message.
        message: String,
    },
    /// An answer that is not OSRM's JSON (a proxy error page, a 5xx).
    #[error("unexpected routing response (HTTP {status}): {detail}")]
    BadResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
}

impl Error {
    /// Whether retrying later can succeed (server down, slow, or answering garbage), as
    /// opposed to an answer about the points themselves.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } => true,
            Error::BadResponse { status, .. } => *status >= 500 || *status == 429,
            Error::Config { .. }
            | Error::InvalidCoordinate { .. }
            | Error::NoRoute { .. }
            | Error::NoSegment { .. }
            | Error::Refused { .. } => false,
        }
    }
}

/// Client settings.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OsrmConfig {
    /// Base URL, e.g. `http://127.0.0.1:15000` (a path prefix is kept).
    pub base_url: String,
    /// Profile segment of the URL (`driving`; `osrm-routed` serves the profile it was built
    /// with whatever this says).
    pub profile: String,
    /// Bound on opening a connection.
    pub connect_timeout: Duration,
    /// Bound on the whole request.
    pub request_timeout: Duration,
    /// How far (metres) a point may be from the road network and still be snapped to it
    /// (OSRM's `radiuses`); farther points fail with [`Error::NoSegment`]. `None` snaps any
    /// point to the nearest road however far, which on a small extract routes points from
    /// another continent.
    pub max_snap_distance_m: Option<f64>,
}

impl OsrmConfig {
    /// Settings for `base_url`: profile `driving`, 1 s connect and 3 s request timeouts.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            profile: "driving".to_owned(),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
            max_snap_distance_m: None,
        }
    }

    /// Sets the largest distance between a point and the road network that still routes.
    pub fn with_max_snap_distance(mut self, metres: f64) -> Self {
        self.max_snap_distance_m = Some(metres);
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// An OSRM HTTP client. Cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct OsrmClient {
    http: reqwest::Client,
    base: reqwest::Url,
    profile: String,
    request_timeout: Duration,
    /// The `radiuses` query parameter for two points, if configured.
    radiuses: Option<String>,
}

#[derive(Deserialize)]
struct RouteResponse {
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    routes: Vec<RouteJson>,
}

#[derive(Deserialize)]
struct RouteJson {
    duration: f64,
    distance: f64,
    #[serde(default)]
    geometry: Option<String>,
}

impl OsrmClient {
    /// Builds a client; does not contact the server.
    pub fn new(config: &OsrmConfig) -> Result<Self, Error> {
        let config_error = |reason: String| Error::Config {
            url: config.base_url.clone(),
            reason,
        };
        let mut base = reqwest::Url::parse(&config.base_url)
            .map_err(|e| config_error(format!("not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error("must be http:// or https://".to_owned()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.profile.is_empty()
            || !config
                .profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(config_error(format!(
                "invalid profile {:?}",
                config.profile
            )));
        }
        let radiuses = match config.max_snap_distance_m {
            None => None,
            Some(r) if r.is_finite() && r > 0.0 => Some(format!("&radiuses={r:.0};{r:.0}")),
            Some(r) => return Err(config_error(format!("invalid snap distance {r}"))),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| config_error(e.to_string()))?;
        Ok(Self {
            http,
            base,
            profile: config.profile.clone(),
            request_timeout: config.request_timeout,
            radiuses,
        })
    }

    /// Travel time and distance of the fastest route from `from` to `to`.
    pub async fn route(&self, from: LngLat, to: LngLat) -> Result<Route, Error> {
        self.request(from, to, false).await
    }

    /// Like [`route`](Self::route), with the path's geometry (polyline, 6 digits).
    pub async fn route_with_geometry(&self, from: LngLat, to: LngLat) -> Result<Route, Error> {
        self.request(from, to, true).await
    }

    async fn request(&self, from: LngLat, to: LngLat, geometry: bool) -> Result<Route, Error> {
        for p in [from, to] {
            if !p.is_valid() {
                return Err(Error::InvalidCoordinate {
                    lng: p.lng,
                    lat: p.lat,
                });
            }
        }
        let overview = if geometry {
            "overview=full&geometries=polyline6"
        } else {
            "overview=false"
        };
        let path = format!(
            "route/v1/{}/{:.6},{:.6};{:.6},{:.6}?alternatives=false&steps=false&{overview}{}",
            self.profile,
            from.lng,
            from.lat,
            to.lng,
            to.lat,
            self.radiuses.as_deref().unwrap_or("")
        );
        let url = self.base.join(&path).map_err(|e| Error::Config {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;

        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        let parsed: RouteResponse =
            serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
                status,
                detail: format!("not OSRM JSON: {e}"),
            })?;
        let message = parsed.message.unwrap_or_default();
        match OsrmCode::parse(&parsed.code) {
            OsrmCode::Ok => {
                let first = parsed
                    .routes
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::BadResponse {
                        status,
                        detail: "code Ok but no route".to_owned(),
                    })?;
                tracing::trace!(
                    duration_s = first.duration,
                    distance_m = first.distance,
                    "route"
                );
                Ok(Route {
                    duration_s: first.duration,
                    distance_m: first.distance,
                    geometry: first.geometry.filter(|_| geometry),
                })
            }
            OsrmCode::NoRoute => Err(Error::NoRoute { message }),
            OsrmCode::NoSegment => Err(Error::NoSegment { message }),
            code => {
                tracing::warn!(?code, %message, "routing request refused");
                Err(Error::Refused { code, message })
            }
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::Timeout {
                url: self.base.to_string(),
                timeout: self.request_timeout,
            }
        } else {
            Error::Unreachable {
                url: self.base.to_string(),
                source: e,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config_and_coordinates() {
        assert!(OsrmClient::new(&OsrmConfig::new("ftp://x")).is_err());
        assert!(OsrmClient::new(&OsrmConfig::new("nope")).is_err());
        assert!(!LngLat::new(200.0, 0.0).is_valid());
        assert!(!LngLat::new(0.0, f64::NAN).is_valid());
        assert!(LngLat::new(24.9384, 60.1699).is_valid());
    }

    #[test]
    fn codes_parse() {
        assert_eq!(OsrmCode::parse("NoRoute"), OsrmCode::NoRoute);
        assert_eq!(OsrmCode::parse("Weird"), OsrmCode::Other("Weird".into()));
    }
}
