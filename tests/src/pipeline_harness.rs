//! Running Doorstep's pipelines in a test: an isolated scope (topic prefix, consumer groups,
//! keyspace, Redis key prefix) on the real services, local stand-ins for the push and
//! payment providers, and helpers to feed events and stop or restart the pipelines.

use doorstep_connectors::kafka::{Admin, Producer};
use doorstep_connectors::order_store::OrderStore;
use doorstep_devservices::fakes::fcm::FakeFcm;
use doorstep_devservices::fakes::stripe::FakeStripe;
use doorstep_pipelines::assemble::{self, StatusOptions};
use doorstep_pipelines::config::{Config, Source};
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::{OrderEvent, topics};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinSet;

/// Partitions of every topic in a test scope.
pub const TEST_PARTITIONS: i32 = 3;

/// One test's private slice of the services.
pub struct Scope {
    /// The configuration every process of this test uses.
    pub config: Config,
    /// The environment that produces `config` (for child processes).
    pub env: BTreeMap<String, String>,
    /// The push provider stand-in.
    pub fcm: FakeFcm,
    /// The payment provider stand-in.
    pub stripe: FakeStripe,
    producer: Producer,
}

/// Pipelines running in this process.
pub struct Running {
    trigger: shutdown::Trigger,
    tasks: JoinSet<Result<(), String>>,
}

impl Running {
    /// Asks the pipelines to stop (drain, commit) and waits for them.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.trigger.send(true);
        while let Some(r) = self.tasks.join_next().await {
            r?.map_err(|e| anyhow::anyhow!(e))?;
        }
        Ok(())
    }
}

impl Scope {
    /// A new scope named after the test, with `extra` settings (`DOORSTEP_*` variables).
    pub async fn new(test: &str, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        crate::init_tracing();
        let id = crate::unique_ident(test);
        let fcm = FakeFcm::start().await?;
        let stripe = FakeStripe::start().await?;
        let mut env: BTreeMap<String, String> = crate::service_env();
        let endpoints = crate::endpoints();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("DOORSTEP_TOPIC_PREFIX", format!("{id}."));
        set("DOORSTEP_GROUP_PREFIX", id.clone());
        set("DOORSTEP_CQL_KEYSPACE", id.clone());
        set("DOORSTEP_REDIS_KEY_PREFIX", format!("{id}:"));
        set("DOORSTEP_TOPIC_PARTITIONS", TEST_PARTITIONS.to_string());
        set("DOORSTEP_PAYMENTS_URL", stripe.url());
        set("DOORSTEP_PAYMENTS_SECRET_KEY", "sk_test_doorstep".into());
        set("DOORSTEP_PUSH_URL", fcm.url());
        set("DOORSTEP_PUSH_ACCESS_TOKEN", "test-access-token".into());
        set(
            "DOORSTEP_AUTH_SECRET",
            "test-secret-test-secret-test-secret-0001".into(),
        );
        for (k, v) in extra {
            set(k, (*v).to_owned());
        }
        let config = Config::from_source(&Source::from_parts(None, env.clone())?)?;
        let kafka = assemble::kafka_config(&config, "doorstep-tests");
        let admin = Admin::new(&kafka)?;
        let names: Vec<String> = topics::ALL.iter().map(|t| config.topic(t)).collect();
        let wanted: Vec<(&str, i32)> = names
            .iter()
            .map(|n| (n.as_str(), TEST_PARTITIONS))
            .collect();
        admin.ensure_topics(&wanted).await.map_err(|e| {
            crate::ServiceDown::new(doorstep_connectors::config::Service::Kafka, &endpoints, e)
        })?;
        let producer = Producer::new(&kafka)?;
        Ok(Self {
            config,
            env,
            fcm,
            stripe,
            producer,
        })
    }

    /// The full name of a topic in this scope.
    pub fn topic(&self, name: &str) -> String {
        self.config.topic(name)
    }

    /// Starts the status and notify pipelines in this process.
    pub async fn start(&self) -> anyhow::Result<Running> {
        let registry = prometheus::Registry::new();
        let (trigger, signal) = shutdown::channel();
        let runtime = RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        };
        let options = StatusOptions {
            side_effects: true,
            runtime,
        };
        let (status_rt, status) =
            assemble::status_pipeline(&self.config, options, &registry).await?;
        let (notify_rt, notify) =
            assemble::notify_pipeline(&self.config, runtime, &registry).await?;
        let mut tasks = JoinSet::new();
        let s = signal.clone();
        tasks.spawn(async move { status_rt.run(status, s).await.map_err(|e| e.to_string()) });
        tasks.spawn(async move {
            notify_rt
                .run(notify, signal)
                .await
                .map_err(|e| e.to_string())
        });
        Ok(Running { trigger, tasks })
    }

    /// Produces order events to this scope's `orders.events.v1`, keyed by order id.
    pub async fn produce(&self, events: &[OrderEvent]) -> anyhow::Result<()> {
        let catalog = crate::catalog().await?;
        let topic = self.topic(topics::ORDER_EVENTS);
        for e in events {
            let bytes = catalog.encode(e)?;
            self.producer
                .send(&topic, e.order_id.as_str().as_bytes(), &bytes, &[])
                .await?;
        }
        Ok(())
    }

    /// Produces raw bytes (for undecodable-input tests).
    pub async fn produce_raw(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.producer
            .send(
                &self.topic(topics::ORDER_EVENTS),
                key.as_bytes(),
                bytes,
                &[],
            )
            .await?;
        Ok(())
    }

    /// The order store of this scope's keyspace.
    pub async fn store(&self) -> anyhow::Result<OrderStore> {
        Ok(assemble::order_store(&self.config).await?)
    }

    /// Polls `probe` every 100 ms until it returns `Some` or `timeout` passes.
    pub async fn eventually<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = probe().await {
                return Some(v);
            }
            if tokio::time::Instant::now() >= end {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
