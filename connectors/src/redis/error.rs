//! Errors of the Redis connector.

use crate::retry::{RetryClass, Retryable};
use redis::{ErrorKind, RedisError, RetryMethod};
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
    /// Whether retrying later can succeed, as opposed to a wrong request: a refused, dropped
    /// or timed-out connection, and the server's own "wait and retry" answers (see
    /// [`transient`]).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::ConnectTimeout { .. } | Error::Connect { .. } => true,
            Error::InvalidUrl { .. } | Error::InvalidCoordinate { .. } => false,
            Error::Command { source, .. } | Error::Subscribe { source, .. } => transient(source),
        }
    }
}

impl Retryable for Error {
    fn retry_class(&self) -> RetryClass {
        RetryClass::of(self.is_retriable(), None)
    }
}

/// Whether the server may answer `e`'s request differently later.
///
/// Besides connection trouble this covers the replies a healthy server gives while it cannot
/// serve yet: `LOADING` (it is reading its data back after a restart; a pipeline that took
/// this for a wrong request sent an event to the reject topic as poison), `TRYAGAIN`,
/// `MASTERDOWN`, `CLUSTERDOWN`, `READONLY` after a failover, and cluster redirects. A refused
/// authentication, a missing permission, a wrong command or a wrong type is not transient.
fn transient(e: &RedisError) -> bool {
    if e.kind() == ErrorKind::AuthenticationFailed {
        return false;
    }
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
        || !matches!(e.retry_method(), RetryMethod::NoRetry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ServerErrorKind;

    fn command(source: RedisError) -> Error {
        Error::Command {
            command: "HSET",
            source,
        }
    }

    #[test]
    fn a_server_that_cannot_serve_yet_is_waited_for() {
        for kind in [
            ServerErrorKind::BusyLoading,
            ServerErrorKind::TryAgain,
            ServerErrorKind::MasterDown,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::ReadOnly,
            ServerErrorKind::Moved,
        ] {
            assert!(
                command(RedisError::from((ErrorKind::Server(kind), "reply"))).is_retriable(),
                "{kind:?}"
            );
        }
        let dropped = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(command(RedisError::from(dropped)).is_retriable());
    }

    #[test]
    fn a_wrong_request_is_not_retried() {
        for kind in [
            ServerErrorKind::ResponseError,
            ServerErrorKind::NoScript,
            ServerErrorKind::CrossSlot,
            ServerErrorKind::NoPerm,
        ] {
            assert!(
                !command(RedisError::from((ErrorKind::Server(kind), "reply"))).is_retriable(),
                "{kind:?}"
            );
        }
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert!(!command(auth).is_retriable());
        let wrong_type = RedisError::from((ErrorKind::UnexpectedReturnType, "not a hash"));
        assert!(!command(wrong_type).is_retriable());
    }
}
