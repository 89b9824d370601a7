//! Opening sessions and creating keyspaces.

use super::Error;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use std::time::Duration;

/// How to reach the CQL cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScyllaConfig {
    /// `host:port` contact points.
    pub nodes: Vec<String>,
    /// Bound on opening the session (each connection, and the whole build).
    pub connect_timeout: Duration,
    /// Bound on one request, retries included.
    pub request_timeout: Duration,
    /// The keyspaces whose metadata (replication, for token-aware routing) the driver reads
    /// on connect and keeps current; empty: every keyspace of the cluster. A process that
    /// uses one keyspace names it, so a cluster holding many others does not slow its connect.
    pub keyspaces: Vec<String>,
}

impl ScyllaConfig {
    /// Settings for `nodes` with 5 s connect and 10 s request timeouts.
    pub fn new(nodes: Vec<String>) -> Self {
        Self {
            nodes,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            keyspaces: Vec::new(),
        }
    }

    /// Reads the metadata of `keyspace` only (see [`keyspaces`](Self::keyspaces)).
    pub fn with_keyspace(mut self, keyspace: impl Into<String>) -> Self {
        self.keyspaces = vec![keyspace.into()];
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the request timeout.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// Opens a session, failing within `config.connect_timeout` when no node answers.
pub async fn connect(config: &ScyllaConfig) -> Result<Session, Error> {
    let nodes = config.nodes.join(",");
    let profile = ExecutionProfile::builder()
        .request_timeout(Some(config.request_timeout))
        .build()
        .into_handle();
    let mut builder = SessionBuilder::new()
        .known_nodes(&config.nodes)
        .connection_timeout(config.connect_timeout)
        .default_execution_profile_handle(profile);
    if !config.keyspaces.is_empty() {
        builder = builder.keyspaces_to_fetch(config.keyspaces.iter().cloned());
    }
    let session = tokio::time::timeout(config.connect_timeout, builder.build())
        .await
        .map_err(|_| Error::ConnectTimeout {
            nodes: nodes.clone(),
            timeout: config.connect_timeout,
        })?
        .map_err(|source| Error::Connect {
            nodes: nodes.clone(),
            source: Box::new(source),
        })?;
    tracing::info!(%nodes, "CQL session open");
    Ok(session)
}

/// The server's `release_version` (`system.local`): the Cassandra release, or the Cassandra
/// version a ScyllaDB node is compatible with.
pub async fn release_version(session: &Session) -> Result<String, Error> {
    const STATEMENT: &str = "SELECT release_version FROM system.local";
    let execute = |source| Error::Execute {
        statement: STATEMENT.to_owned(),
        source: Box::new(source),
    };
    let result = session
        .query_unpaged(STATEMENT, &[])
        .await
        .map_err(execute)?;
    let rows = result.into_rows_result().map_err(|e| Error::Version {
        source: Box::new(e),
    })?;
    let (version,) = rows.single_row::<(String,)>().map_err(|e| Error::Version {
        source: Box::new(e),
    })?;
    Ok(version)
}

/// Keyspace replication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replication {
    /// `SimpleStrategy` with this replication factor (single data centre, tests).
    Simple(u8),
    /// `NetworkTopologyStrategy` with a replication factor per data centre.
    NetworkTopology(Vec<(String, u8)>),
}

impl Replication {
    fn to_cql(&self) -> Result<String, Error> {
        match self {
            Replication::Simple(rf) => Ok(format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}"
            )),
            Replication::NetworkTopology(dcs) => {
                let mut parts = vec!["'class': 'NetworkTopologyStrategy'".to_owned()];
                for (dc, rf) in dcs {
                    // Data-centre names are string literals here (they may contain '-').
                    if dc.is_empty()
                        || !dc
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    {
                        return Err(Error::InvalidIdentifier {
                            name: dc.clone(),
                            reason: "data-centre names may use ASCII letters, digits, _ - .",
                        });
                    }
                    parts.push(format!("'{dc}': {rf}"));
                }
                Ok(format!("{{{}}}", parts.join(", ")))
            }
        }
    }
}

/// Creates keyspace `name` if it does not exist (an existing one is left unchanged).
///
/// Identifiers cannot be bound with `?`, so `name` is validated by [`validate_identifier`]
/// instead of being quoted.
pub async fn create_keyspace(
    session: &Session,
    name: &str,
    replication: &Replication,
) -> Result<(), Error> {
    validate_identifier(name)?;
    let statement = format!(
        "CREATE KEYSPACE IF NOT EXISTS {name} WITH replication = {} AND durable_writes = true",
        replication.to_cql()?
    );
    session
        .query_unpaged(statement.as_str(), &[])
        .await
        .map_err(|source| Error::Execute {
            statement: shorten(&statement),
            source: Box::new(source),
        })?;
    tracing::info!(keyspace = name, "keyspace ensured");
    Ok(())
}

/// Accepts names usable unquoted as a keyspace or table name: ASCII letters,
/// digits and `_`, starting with a letter, at most 48 characters (the CQL keyspace limit).
pub fn validate_identifier(name: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidIdentifier {
        name: name.to_owned(),
        reason,
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(invalid("empty")),
        Some(c) if !c.is_ascii_alphabetic() => return Err(invalid("must start with a letter")),
        Some(_) => {}
    }
    if name.len() > 48 {
        return Err(invalid("longer than 48 characters"));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("only ASCII letters, digits and _ are allowed"));
    }
    Ok(())
}

fn shorten(statement: &str) -> String {
    const MAX: usize = 120;
    match statement.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &statement[..i]),
        None => statement.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(validate_identifier("doorstep").is_ok());
        assert!(validate_identifier("t_0a1b").is_ok());
        for bad in ["", "1abc", "a-b", "a b", "x;DROP", &"a".repeat(49)] {
            assert!(validate_identifier(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replication_cql() {
        assert_eq!(
            Replication::Simple(1).to_cql().unwrap(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
        assert_eq!(
            Replication::NetworkTopology(vec![("dc1".into(), 3)])
                .to_cql()
                .unwrap(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
        );
        assert!(
            Replication::NetworkTopology(vec![("dc'1".into(), 3)])
                .to_cql()
                .is_err()
        );
    }
}
