//! Errors of the routing client.

use crate::retry::{RetryClass, Retryable};
use std::time::Duration;

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
    pub(crate) fn parse(code: &str) -> Self {
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

impl Retryable for Error {
    fn retry_class(&self) -> RetryClass {
        RetryClass::of(self.is_retriable(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse() {
        assert_eq!(OsrmCode::parse("Ok"), OsrmCode::Ok);
        assert_eq!(OsrmCode::parse("NoRoute"), OsrmCode::NoRoute);
        assert_eq!(OsrmCode::parse("Weird"), OsrmCode::Other("Weird".into()));
    }
}
