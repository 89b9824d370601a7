//! A gateway started in-process as `doorstep gateway` builds it, with the edge settings a test
//! asks for, its own topics (one partition each, so watermarks count records) and its ops
//! listener: for the tests of the public edge (`tests/tests/edge.rs`) and of hostile input
//! (`tests/tests/hostile_input.rs`).

use crate::{OrServiceDown, endpoints, unique};
use anyhow::Context;
use doorstep_connectors::config::Service;
use doorstep_connectors::kafka::rdkafka::producer::Producer as _;
use doorstep_connectors::kafka::{Admin, KafkaConfig, Producer};
use doorstep_pipelines::auth::{Claims, TokenKey, unix_now};
use doorstep_pipelines::config::{Config, Source};
use doorstep_pipelines::gateway::Gateway;
use doorstep_pipelines::gateway::track::TrackingConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::topics;
use doorstep_schemas::model::ActorKind;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The token secret of edge tests.
pub const SECRET: &str = "edge-test secret: 9f2c4e6a8b0d1f3e5a7c9b";

/// A running gateway.
pub struct EdgeGateway {
    /// `http://host:port` of the public port.
    pub base: String,
    /// `ws://host:port` of the public port.
    pub ws_base: String,
    /// `http://host:port` of the ops listener.
    pub ops: String,
    /// The configuration it runs with.
    pub config: Config,
    /// A client without a pool limit.
    pub http: reqwest::Client,
    topics: [String; 2],
    stop: shutdown::Trigger,
    task: JoinHandle<Result<(), doorstep_pipelines::gateway::GatewayError>>,
    ops_task: JoinHandle<()>,
}

impl EdgeGateway {
    /// Starts a gateway with `extra` settings (`DOORSTEP_*`); with `store`, also the order
    /// store, live tracking and the open-orders cap (keyspace and Redis prefix of its own).
    pub async fn start(extra: &[(&str, &str)], store: bool) -> anyhow::Result<Self> {
        let id = crate::unique_ident("edge");
        let mut env = crate::service_env();
        env.insert(
            "DOORSTEP_TOPIC_PREFIX".into(),
            format!("{}.", unique("edge")),
        );
        env.insert("DOORSTEP_AUTH_SECRET".into(), SECRET.into());
        env.insert("DOORSTEP_CQL_KEYSPACE".into(), id.clone());
        env.insert("DOORSTEP_REDIS_KEY_PREFIX".into(), format!("{id}:"));
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let config = Config::from_source(&Source::from_parts(None, env)?)?;
        let e = endpoints();
        let kafka = KafkaConfig::new(&config.endpoints.kafka_brokers, "doorstep-tests")
            .with_connect_timeout(Duration::from_secs(3));
        Producer::new(&kafka)?
            .ping()
            .await
            .or_service_down(Service::Kafka, &e)?;
        let names = [
            config.topic(topics::ORDER_EVENTS),
            config.topic(topics::DRIVER_LOCATIONS),
        ];
        Admin::new(&kafka)?
            .ensure_topics(&[(&names[0], 1), (&names[1], 1)])
            .await?;
        let mut gateway = Gateway::from_config(&config, Duration::from_secs(5)).await?;
        if store {
            doorstep_pipelines::assemble::order_store(&config).await?;
            gateway = gateway
                .with_order_store(&config)
                .with_open_orders_cap(&config)
                .with_live_tracking(&config, TrackingConfig::default())?;
        }
        let ops_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ops = format!("http://{}", ops_listener.local_addr()?);
        let ops_router = gateway.ops_router();
        let ops_task = tokio::spawn(async move {
            let _ = axum_serve(ops_listener, ops_router).await;
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, signal) = shutdown::channel();
        let task = tokio::spawn(gateway.serve(listener, signal));
        Ok(Self {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            ops,
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()?,
            topics: names,
            stop,
            task,
            ops_task,
        })
    }

    /// The address of the public port (`host:port`).
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// A token of this gateway's key, valid 10 minutes, scope `act`.
    pub fn token(&self, kind: ActorKind, id: &str, order: Option<&str>) -> String {
        let mut claims = Claims::new(kind, id, unix_now() + 600);
        if let Some(o) = order {
            claims = claims.for_order(o);
        }
        self.sign(&claims)
    }

    /// `claims` signed with this gateway's key.
    pub fn sign(&self, claims: &Claims) -> String {
        TokenKey::with_id(&self.config.auth_key_id, SECRET.as_bytes())
            .and_then(|k| k.sign(claims))
            .unwrap_or_default()
    }

    /// Records on its order-events and locations topics so far.
    pub async fn produced(&self) -> anyhow::Result<i64> {
        let producer = Producer::new(&KafkaConfig::new(
            &self.config.endpoints.kafka_brokers,
            "doorstep-tests",
        ))?;
        let topics = self.topics.clone();
        tokio::task::spawn_blocking(move || {
            let mut total = 0;
            for t in &topics {
                let (_, high) =
                    producer
                        .inner()
                        .client()
                        .fetch_watermarks(t, 0, Duration::from_secs(5))?;
                total += high;
            }
            anyhow::Ok(total)
        })
        .await?
    }

    /// The ops listener's `/metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.ops))
            .send()
            .await?
            .text()
            .await?)
    }

    /// Stops it and waits (bounded).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .context("the gateway did not stop within 15 s")???;
        self.ops_task.abort();
        Ok(())
    }
}

/// Serves an axum router (the ops routes) on `listener`.
async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
