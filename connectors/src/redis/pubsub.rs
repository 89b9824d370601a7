//! Publish and subscribe: a dedicated connection per channel ([`Redis::subscribe`]), or one
//! connection carrying any number of channels, added and removed on the fly
//! ([`Redis::shared_subscription`]), for a process that follows many channels at once.

use super::connection::{Conn, cluster_builder};
use super::{Error, Redis};
use futures::{Stream, StreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Msg, ProtocolVersion, PushInfo, PushKind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// One message received on a subscribed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The channel it was published on.
    pub channel: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Message {
    fn from_msg(msg: &Msg) -> Self {
        Self {
            channel: msg.get_channel_name().to_owned(),
            payload: msg.get_payload_bytes().to_vec(),
        }
    }
}

/// A live subscription: a stream of [`Message`]s on a dedicated connection.
///
/// Dropping it closes the connection, which ends the subscription. The stream ends when the
/// connection is lost; subscribe again to resume (messages published meanwhile are gone:
/// pub/sub is fire-and-forget, which is why positions are also kept in GEO sets).
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Message> + Send>>,
    /// Keeps the cluster connection (and so the subscription) alive.
    _cluster: Option<ClusterConnection>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Redis {
    /// Publishes `payload` on `channel`; returns how many subscribers received it (on a
    /// cluster: subscribers of the shard owning the channel).
    pub async fn publish(&mut self, channel: &str, payload: &[u8]) -> Result<usize, Error> {
        let command = self.publish_name();
        redis::cmd(command)
            .arg(channel)
            .arg(payload)
            .query_async(self)
            .await
            .map_err(|source| Error::Command { command, source })
    }

    /// The publishing command: `PUBLISH` on a single node, `SPUBLISH` (sharded) on a cluster.
    pub fn publish_name(&self) -> &'static str {
        match self.conn {
            Conn::Single(_) => "PUBLISH",
            Conn::Cluster(_) => "SPUBLISH",
        }
    }

    /// Subscribes to `channel` on a new dedicated connection. When this returns, the
    /// subscription is confirmed by the server: anything published afterwards is delivered.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        let timeout = self.options.connect_timeout;
        let attempt = async {
            match (&self.conn, &self.client) {
                (Conn::Single(_), Some(client)) => self.subscribe_single(client, channel).await,
                _ => self.subscribe_cluster(channel).await,
            }
        };
        let subscription =
            tokio::time::timeout(timeout, attempt)
                .await
                .map_err(|_| Error::ConnectTimeout {
                    target: self.target.describe(),
                    timeout,
                })??;
        tracing::debug!(channel, "subscribed");
        Ok(subscription)
    }

    async fn subscribe_single(
        &self,
        client: &redis::Client,
        channel: &str,
    ) -> Result<Subscription, Error> {
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|source| Error::Connect {
                target: self.target.describe(),
                source,
            })?;
        pubsub
            .subscribe(channel)
            .await
            .map_err(|source| Error::Subscribe {
                channel: channel.to_owned(),
                source,
            })?;
        let stream = pubsub.into_on_message().map(|m| Message::from_msg(&m));
        Ok(Subscription {
            inner: Box::pin(stream),
            _cluster: None,
        })
    }

    /// Cluster pub/sub needs RESP3: messages arrive as push frames on a sender given to the
    /// client, so every subscription gets its own client and connection.
    async fn subscribe_cluster(&self, channel: &str) -> Result<Subscription, Error> {
        let urls = match &self.target {
            super::RedisTarget::Cluster(urls) => urls.clone(),
            super::RedisTarget::Single(url) => vec![url.clone()],
        };
        let (tx, rx) = futures::channel::mpsc::unbounded::<PushInfo>();
        let client = cluster_builder(&urls, &self.options)
            .use_protocol(ProtocolVersion::RESP3)
            .push_sender(tx)
            .build()
            .map_err(|source| Error::InvalidUrl {
                url: self.target.describe(),
                source,
            })?;
        let mut conn = client
            .get_async_connection()
            .await
            .map_err(|source| Error::Connect {
                target: self.target.describe(),
                source,
            })?;
        conn.ssubscribe(channel)
            .await
            .map_err(|source| Error::Subscribe {
                channel: channel.to_owned(),
                source,
            })?;
        // Confirmations, disconnection notices and other pushes are not messages: skip them.
        let stream = rx.filter_map(|push| async move {
            Msg::from_push_info(push).map(|m| Message::from_msg(&m))
        });
        Ok(Subscription {
            inner: Box::pin(stream),
            _cluster: Some(conn),
        })
    }
}

/// What the push stream of a [`SharedSubscription`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedEvent {
    /// A message on one of the subscribed channels.
    Message(Message),
    /// A connection was lost. The client reconnects and subscribes to every channel again by
    /// itself, but whatever was published meanwhile is gone: followers should resynchronise.
    Disconnected,
}

#[derive(Clone)]
enum SharedConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// One connection subscribed to any number of channels (sharded channels on a cluster: one
/// connection per shard, managed by the cluster client). Subscribe and unsubscribe through
/// it; messages come out of the stream [`Redis::shared_subscription`] returned with it. It
/// reconnects and resubscribes by itself; the stream says [`SharedEvent::Disconnected`] when
/// that happened. Cheap to clone.
#[derive(Clone)]
pub struct SharedSubscription {
    conn: SharedConn,
}

impl std::fmt::Debug for SharedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSubscription").finish_non_exhaustive()
    }
}

impl SharedSubscription {
    /// Subscribes to `channel`; when this returns, the server has confirmed it.
    pub async fn subscribe(&self, channel: &str) -> Result<(), Error> {
        let result = match self.conn.clone() {
            SharedConn::Single(mut c) => c.subscribe(channel).await,
            SharedConn::Cluster(mut c) => c.ssubscribe(channel).await,
        };
        result.map_err(|source| Error::Subscribe {
            channel: channel.to_owned(),
            source,
        })
    }

    /// Unsubscribes from `channel`.
    pub async fn unsubscribe(&self, channel: &str) -> Result<(), Error> {
        let result = match self.conn.clone() {
            SharedConn::Single(mut c) => c.unsubscribe(channel).await,
            SharedConn::Cluster(mut c) => c.sunsubscribe(channel).await,
        };
        result.map_err(|source| Error::Subscribe {
            channel: channel.to_owned(),
            source,
        })
    }
}

/// The push frames of a shared subscription as [`SharedEvent`]s.
pub type SharedEvents = Pin<Box<dyn Stream<Item = SharedEvent> + Send>>;

impl Redis {
    /// Opens a [`SharedSubscription`] (RESP3, its own connection) and the stream of what it
    /// receives. The stream ends when the subscription and all its clones are dropped.
    pub async fn shared_subscription(&self) -> Result<(SharedSubscription, SharedEvents), Error> {
        let (tx, rx) = futures::channel::mpsc::unbounded::<PushInfo>();
        let connect_error = |source| Error::Connect {
            target: self.target.describe(),
            source,
        };
        let attempt = async {
            match (&self.conn, &self.client) {
                (Conn::Single(_), Some(client)) => {
                    let info = client.get_connection_info().clone();
                    let settings = info
                        .redis_settings()
                        .clone()
                        .set_protocol(ProtocolVersion::RESP3);
                    let client = redis::Client::open(info.set_redis_settings(settings)).map_err(
                        |source| Error::InvalidUrl {
                            url: self.target.describe(),
                            source,
                        },
                    )?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.options.connect_timeout))
                        .set_response_timeout(Some(self.options.response_timeout))
                        .set_push_sender(tx)
                        .set_automatic_resubscription();
                    let manager = ConnectionManager::new_with_config(client, config)
                        .await
                        .map_err(connect_error)?;
                    Ok(SharedConn::Single(manager))
                }
                _ => {
                    let urls = match &self.target {
                        super::RedisTarget::Cluster(urls) => urls.clone(),
                        super::RedisTarget::Single(url) => vec![url.clone()],
                    };
                    let client = cluster_builder(&urls, &self.options)
                        .use_protocol(ProtocolVersion::RESP3)
                        .push_sender(tx)
                        .build()
                        .map_err(|source| Error::InvalidUrl {
                            url: self.target.describe(),
                            source,
                        })?;
                    let conn = client.get_async_connection().await.map_err(connect_error)?;
                    Ok(SharedConn::Cluster(conn))
                }
            }
        };
        let timeout = self.options.connect_timeout;
        let conn =
            tokio::time::timeout(timeout, attempt)
                .await
                .map_err(|_| Error::ConnectTimeout {
                    target: self.target.describe(),
                    timeout,
                })??;
        let events = rx.filter_map(|push| async move {
            if push.kind == PushKind::Disconnection {
                return Some(SharedEvent::Disconnected);
            }
            Msg::from_push_info(push).map(|m| SharedEvent::Message(Message::from_msg(&m)))
        });
        Ok((SharedSubscription { conn }, Box::pin(events)))
    }
}
