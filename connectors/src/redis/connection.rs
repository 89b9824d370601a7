//! The connection: single node or cluster, behind one type.

use super::Error;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::time::Duration;

/// Which Redis deployment to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisTarget {
    /// One node, e.g. `redis://127.0.0.1:6379`.
    Single(String),
    /// A Redis Cluster, given by one or more seed node URLs; the rest are discovered.
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// The URL or comma-joined seed list, for messages.
    pub fn describe(&self) -> String {
        match self {
            RedisTarget::Single(url) => url.clone(),
            RedisTarget::Cluster(urls) => urls.join(","),
        }
    }
}

/// Timeouts and retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Bound on establishing a connection (each attempt, and the whole initial connect).
    pub connect_timeout: Duration,
    /// Bound on one command's reply.
    pub response_timeout: Duration,
    /// How often a dropped connection is retried before a command fails.
    pub retries: u32,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(2),
            retries: 3,
        }
    }
}

impl RedisOptions {
    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the response timeout.
    pub fn with_response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets the number of reconnection retries.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A connection to a single Redis node or a Redis Cluster. Cheap to clone; clones share the
/// underlying multiplexed connections.
#[derive(Clone)]
pub struct Redis {
    pub(super) conn: Conn,
    pub(super) target: RedisTarget,
    pub(super) options: RedisOptions,
    /// Kept for opening dedicated pub/sub connections (single node).
    pub(super) client: Option<redis::Client>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects, failing within `options.connect_timeout` when nothing answers.
    pub async fn connect(target: RedisTarget, options: RedisOptions) -> Result<Self, Error> {
        let described = target.describe();
        let attempt = async {
            match &target {
                RedisTarget::Single(url) => {
                    let client =
                        redis::Client::open(url.as_str()).map_err(|source| Error::InvalidUrl {
                            url: url.clone(),
                            source,
                        })?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(options.connect_timeout))
                        .set_response_timeout(Some(options.response_timeout))
                        .set_number_of_retries(options.retries as usize)
                        .set_max_delay(Duration::from_secs(2));
                    let manager = ConnectionManager::new_with_config(client.clone(), config)
                        .await
                        .map_err(|source| Error::Connect {
                            target: described.clone(),
                            source,
                        })?;
                    Ok((Conn::Single(manager), Some(client)))
                }
                RedisTarget::Cluster(urls) => {
                    let client = cluster_builder(urls, &options).build().map_err(|source| {
                        Error::InvalidUrl {
                            url: described.clone(),
                            source,
                        }
                    })?;
                    let conn =
                        client
                            .get_async_connection()
                            .await
                            .map_err(|source| Error::Connect {
                                target: described.clone(),
                                source,
                            })?;
                    Ok((Conn::Cluster(conn), None))
                }
            }
        };
        let (conn, client) = tokio::time::timeout(options.connect_timeout, attempt)
            .await
            .map_err(|_| Error::ConnectTimeout {
                target: described.clone(),
                timeout: options.connect_timeout,
            })??;
        tracing::info!(redis = %described, cluster = matches!(conn, Conn::Cluster(_)), "connected to Redis");
        Ok(Self {
            conn,
            target,
            options,
            client,
        })
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// What this connects to.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// Sends `PING` (to one node, on a cluster): a cheap readiness check.
    pub async fn ping(&mut self) -> Result<(), Error> {
        redis::cmd("PING")
            .query_async::<()>(self)
            .await
            .map_err(|source| Error::Command {
                command: "PING",
                source,
            })
    }

    /// The server's version, `Redis <redis_version>` from `INFO server`.
    pub async fn server_version(&mut self) -> Result<String, Error> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(self)
            .await
            .map_err(|source| Error::Command {
                command: "INFO",
                source,
            })?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("unknown version")
            .trim();
        Ok(format!("Redis {version}"))
    }
}

/// A cluster client builder with `options` applied.
pub(super) fn cluster_builder(urls: &[String], options: &RedisOptions) -> ClusterClientBuilder {
    ClusterClientBuilder::new(urls.iter().map(String::as_str))
        .connection_timeout(options.connect_timeout)
        .response_timeout(options.response_timeout)
        .retries(options.retries)
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.conn {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.conn {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.conn {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
