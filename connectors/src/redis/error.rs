//! Errors of the Redis connector.

use redis::RedisError;
use std::time::Duration;

/// What went wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection URL could not be parsed.
    #[error("invalid Redis URL {url:?}: {source}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// The parser's error.
        #[source]
        source: RedisError,
    },
    /// No connection could be established.
    #[error("cannot connect to Redis at {target}: {source}")]
    Connect {
        /// The node or cluster seed list.
        target: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to Redis at {target} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The node or cluster seed list.
        target: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// A command failed (server error, dropped connection, response timeout).
    #[error("Redis {command} failed: {source}")]
    Command {
        /// The command name.
        command: &'static str,
        /// The client's error.
        #[source]
        source: RedisError,
    },
    /// A coordinate outside what Redis GEO accepts
    /// (longitude -180..=180, latitude -85.05112878..=85.05112878).
    #[error("invalid coordinate for {member:?}: longitude {lng}, latitude {lat}")]
    InvalidCoordinate {
        /// The member the coordinate was for.
        member: String,
        /// Longitude.
        lng: f64,
        /// Latitude.
        lat: f64,
    },
    /// Subscribing to a channel failed.
    #[error("subscribing to Redis channel {channel:?} failed: {source}")]
    Subscribe {
        /// The channel.
        channel: String,
        /// The client's error.
        #[source]
        source: RedisError,
    },
}

impl Error {
    /// Whether retrying later can succeed (connection refused, dropped or timed out), as
    /// opposed to a wrong request.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::ConnectTimeout { .. } | Error::Connect { .. } => true,
            Error::InvalidUrl { .. } | Error::InvalidCoordinate { .. } => false,
            Error::Command { source, .. } | Error::Subscribe { source, .. } => {
                source.is_io_error()
                    || source.is_timeout()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_cluster_error()
            }
        }
    }
}
