//! Errors of the CQL connector.

use scylla::errors::{ExecutionError, NewSessionError};
use std::time::Duration;

/// What went wrong talking to a CQL server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No session could be opened with any contact point.
    #[error("cannot connect to CQL nodes {nodes}: {source}")]
    Connect {
        /// The contact points.
        nodes: String,
        /// The driver's error.
        #[source]
        source: Box<NewSessionError>,
    },
    /// Opening the session took longer than the connect timeout.
    #[error("connecting to CQL nodes {nodes} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The contact points.
        nodes: String,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// A keyspace or table name that cannot be used as an unquoted CQL identifier.
    #[error("invalid CQL identifier {name:?}: {reason}")]
    InvalidIdentifier {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A statement failed.
    #[error("CQL statement failed ({statement}): {source}")]
    Execute {
        /// The statement, shortened.
        statement: String,
        /// The driver's error.
        #[source]
        source: Box<ExecutionError>,
    },
    /// `system.local` did not answer one `release_version` row.
    #[error("cannot read release_version from system.local: {source}")]
    Version {
        /// Why the answer could not be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
