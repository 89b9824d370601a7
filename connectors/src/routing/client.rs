//! The OSRM HTTP client.

use super::{Error, LngLat, OsrmCode, Route};
use serde::Deserialize;
use std::time::Duration;

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
    fn rejects_bad_config() {
        assert!(OsrmClient::new(&OsrmConfig::new("ftp://x")).is_err());
        assert!(OsrmClient::new(&OsrmConfig::new("nope")).is_err());
        assert!(
            OsrmClient::new(&OsrmConfig::new("http://h:1").with_max_snap_distance(-1.0)).is_err()
        );
        assert!(OsrmClient::new(&OsrmConfig::new("http://h:1/osrm")).is_ok());
    }
}
