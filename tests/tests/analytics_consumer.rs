//! A consumer nobody here wrote reads what the pipelines wrote: after a simulated run (two
//! orders through their whole life, a driver's pings, one record with a schema id the
//! registry does not know), `tests/analytics/consume.py` — Confluent's Python client with its
//! `SchemaRegistryClient` and `AvroDeserializer`, `isolation.level=read_committed` — reads
//! `orders.status.v1` and `orders.tracking.v1`, and its records must be the ones the pipeline
//! wrote, field for field. Along the way: the pipelines registered the schemas of a scope
//! whose subjects did not exist, every record on every topic carries the registry's id for
//! its subject, and the unknown id went to the reject topic with the reason.
//!
//! Needs the services and Python 3; `scripts/analytics-python` installs confluent-kafka from
//! PyPI when missing. Any of these missing fails the test.

use anyhow::{Context, bail, ensure};
use doorstep_connectors::driver_state::DriverState;
use doorstep_connectors::kafka::Producer;
use doorstep_pipelines::assemble::{self, LocationOptions};
use doorstep_pipelines::runtime::RuntimeConfig;
use doorstep_pipelines::shutdown;
use doorstep_schemas::avro::{TopicRecord, wire};
use doorstep_schemas::events::{Notification, RejectedRecord, StatusChange, topics};
use doorstep_schemas::model::{DriverId, OrderId, Timestamp, TrackingUpdate};
use doorstep_tests::location_pings::ping;
use doorstep_tests::order_events::OrderScript;
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::{Read, read_topic};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The latest schema id of `subject`, or `None` when the registry has no such subject.
async fn latest_id(registry: &str, subject: &str) -> anyhow::Result<Option<u32>> {
    let url = format!("{registry}/subjects/{subject}/versions/latest");
    let answer = reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: Value = answer.error_for_status()?.json().await?;
    let id = body["id"].as_u64().context("no id in the answer")?;
    Ok(Some(u32::try_from(id)?))
}

/// Runs the Python consumer on `topics` until it printed `expect` records.
fn python_consumer(scope: &Scope, topics: &[String], expect: usize) -> anyhow::Result<Vec<Value>> {
    let root = repo_root();
    let setup = std::process::Command::new(root.join("scripts/analytics-python"))
        .output()
        .context("running scripts/analytics-python")?;
    ensure!(
        setup.status.success(),
        "scripts/analytics-python failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8(setup.stdout)?.trim().to_owned();
    let mut cmd = std::process::Command::new(&python);
    cmd.arg(root.join("tests/analytics/consume.py"))
        .args(["--brokers", &scope.config.endpoints.kafka_brokers])
        .args(["--registry", &scope.config.endpoints.schema_registry_url])
        .args(["--expect", &expect.to_string()])
        .args(["--timeout", "60"]);
    for t in topics {
        cmd.args(["--topic", t]);
    }
    let out = cmd.output().context("running consume.py")?;
    ensure!(
        out.status.success(),
        "consume.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("consume.py printed {l:?}")))
        .collect()
}

/// The Python consumer's record at `(topic, partition, offset)`.
fn by_position(records: &[Value]) -> BTreeMap<(String, i64, i64), &Value> {
    records
        .iter()
        .map(|r| {
            let topic = r["topic"].as_str().unwrap_or_default().to_owned();
            let partition = r["partition"].as_i64().unwrap_or(-1);
            let offset = r["offset"].as_i64().unwrap_or(-1);
            ((topic, partition, offset), r)
        })
        .collect()
}

/// Checks the Python side's record of `read` (same key, schema id `id`, fields `expected`).
fn same(
    theirs: &BTreeMap<(String, i64, i64), &Value>,
    topic: &str,
    read: &Read<impl std::fmt::Debug>,
    id: u32,
    expected: &[(&str, Value)],
) -> anyhow::Result<()> {
    let record = theirs
        .get(&(topic.to_owned(), i64::from(read.partition), read.offset))
        .with_context(|| format!("the Python consumer did not read {topic} {read:?}"))?;
    ensure!(
        record["key"] == read.key,
        "{topic}: key {record} vs {read:?}"
    );
    ensure!(
        record["schema_id"] == id,
        "{topic}: schema id {} vs the registry's {id}",
        record["schema_id"]
    );
    for (field, want) in expected {
        ensure!(
            &record["value"][field] == want,
            "{topic} {field}: Python read {}, the pipeline wrote {want} ({read:?})",
            record["value"][field]
        );
    }
    Ok(())
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// The registry id of `T`'s subject in this scope; every record of `reads` must carry it.
async fn carry_registry_ids<T: TopicRecord>(
    scope: &Scope,
    reads: &[Read<T>],
    raw: &[Vec<u8>],
) -> anyhow::Result<u32> {
    let registry = &scope.config.endpoints.schema_registry_url;
    let subject = format!("{}-value", scope.topic(T::TOPIC));
    let id = latest_id(registry, &subject)
        .await?
        .with_context(|| format!("the pipelines did not register {subject}"))?;
    ensure!(
        !reads.is_empty() || raw.is_empty(),
        "{subject}: nothing read"
    );
    for bytes in raw {
        ensure!(
            wire::schema_id(bytes).ok() == Some(id),
            "{subject}: a record carries id {:?}, the registry says {id}",
            wire::schema_id(bytes).ok()
        );
    }
    Ok(id)
}

/// Every value of `topic` as raw bytes (read_committed), `n` of them.
async fn raw_values(scope: &Scope, topic: &str, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    use doorstep_connectors::kafka::{ConsumerBuilder, OffsetReset};
    let kafka = assemble::kafka_config(&scope.config, "doorstep-tests-raw");
    let consumer = ConsumerBuilder::new(&kafka, doorstep_tests::unique("raw"))
        .offset_reset(OffsetReset::Earliest)
        .subscribe(&[topic])?;
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + WAIT;
    while out.len() < n {
        let Ok(next) = tokio::time::timeout_at(end, consumer.recv()).await else {
            bail!("{topic}: only {} of {n} records", out.len());
        };
        out.push(next?.payload.unwrap_or_default());
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_confluent_python_consumer_reads_what_the_pipelines_wrote() -> anyhow::Result<()> {
    let scope = Scope::new("analytics", &[("DOORSTEP_KAFKA_EXACTLY_ONCE", "true")]).await?;
    let registry = scope.config.endpoints.schema_registry_url.clone();
    let status_subject = format!("{}-value", scope.topic(topics::ORDER_STATUS));
    ensure!(
        latest_id(&registry, &status_subject).await?.is_none(),
        "{status_subject} exists before the pipelines start"
    );

    // The simulated run: status + notify + location pipelines, two orders, a driver's pings.
    let running = scope.start().await?;
    let options = LocationOptions {
        cell_deg: 0.001,
        runtime: RuntimeConfig {
            tick: Duration::from_millis(200),
            ..RuntimeConfig::default()
        },
        ..LocationOptions::default()
    };
    let metrics = prometheus::Registry::new();
    let (location_rt, location) =
        assemble::location_pipeline(&scope.config, options, &metrics).await?;
    let (trigger, signal) = shutdown::channel();
    let location_task = tokio::spawn(async move { location_rt.run(location, signal).await });
    ensure!(
        latest_id(&registry, &status_subject).await?.is_some(),
        "starting the pipelines registered {status_subject}"
    );

    let now = Timestamp::now().as_millis();
    let mut events = Vec::new();
    for order in ["an-1", "an-2"] {
        events.extend(OrderScript::new(order, now).full_life());
    }
    scope.produce(&events).await?;
    // A record whose schema id the registry has never given out.
    let unknown_id = 0x7fff_0001u32;
    let mut bogus = vec![0];
    bogus.extend_from_slice(&unknown_id.to_be_bytes());
    bogus.extend_from_slice(&[2, b'x']);
    scope.produce_raw("an-3", &bogus).await?;

    let drivers = DriverState::new(
        assemble::redis(&scope.config).await?,
        scope.config.redis_key_prefix.clone(),
    );
    let (driver, order) = (DriverId::new("drv-an"), OrderId::new("an-9"));
    drivers.occupy(&driver, &order).await?;
    let catalog = doorstep_tests::catalog().await?;
    let producer = Producer::new(&assemble::kafka_config(&scope.config, "doorstep-tests"))?;
    let pings = [
        ping("pa1", "drv-an", 60.1699, 24.9384, now, now + 50),
        ping(
            "pa2",
            "drv-an",
            60.1709,
            24.9384,
            now + 5_000,
            now + 5_000 + 50,
        ),
        ping(
            "pa3",
            "drv-an",
            60.1719,
            24.9384,
            now + 10_000,
            now + 10_000 + 50,
        ),
    ];
    for p in &pings {
        producer
            .send(
                &scope.topic(topics::DRIVER_LOCATIONS),
                p.driver_id.as_str().as_bytes(),
                &catalog.encode(p)?,
                &[],
            )
            .await?;
    }

    // What the pipelines wrote, read by Doorstep's own codec.
    let brokers = scope.config.endpoints.kafka_brokers.clone();
    let status_topic = scope.topic(topics::ORDER_STATUS);
    let tracking_topic = scope.topic(topics::ORDER_TRACKING);
    let status = read_topic::<StatusChange>(&brokers, &status_topic, 16, WAIT).await?;
    // The three location updates, and a STATUS_CHANGE update per status change.
    let tracking = read_topic::<TrackingUpdate>(&brokers, &tracking_topic, 16 + 3, WAIT).await?;
    ensure!(status.len() == 16, "{} status changes", status.len());
    ensure!(
        tracking.len() == 16 + 3,
        "{} tracking updates",
        tracking.len()
    );
    let rejects =
        read_topic::<RejectedRecord>(&brokers, &scope.topic(topics::ORDER_REJECTED), 1, WAIT)
            .await?;
    let notifications =
        read_topic::<Notification>(&brokers, &scope.topic(topics::NOTIFICATIONS), 1, WAIT).await?;

    // The unknown id: rejected, with the reason.
    let reject = &rejects
        .first()
        .context("no reject for the unknown schema id")?
        .value;
    ensure!(
        reject.reason_code == "undecodable"
            && reject
                .message
                .contains(&format!("unknown schema id {unknown_id}")),
        "reject: {reject:?}"
    );

    // Every topic carries the registry's ids.
    let status_id = carry_registry_ids(
        &scope,
        &status,
        &raw_values(&scope, &status_topic, status.len()).await?,
    )
    .await?;
    let tracking_id = carry_registry_ids(
        &scope,
        &tracking,
        &raw_values(&scope, &tracking_topic, tracking.len()).await?,
    )
    .await?;
    let events_topic = scope.topic(topics::ORDER_EVENTS);
    // The order events and the record with the unknown id.
    let raw_events = raw_values(&scope, &events_topic, events.len() + 1).await?;
    let event_id = latest_id(&registry, &format!("{events_topic}-value"))
        .await?
        .context("orders.events subject")?;
    ensure!(
        raw_events
            .iter()
            .filter(|b| wire::schema_id(b).ok() == Some(event_id))
            .count()
            == events.len(),
        "order events carry the registry id {event_id}"
    );
    ensure!(
        raw_events
            .iter()
            .any(|b| wire::schema_id(b).ok() == Some(unknown_id))
    );
    carry_registry_ids(
        &scope,
        &rejects,
        &raw_values(&scope, &scope.topic(topics::ORDER_REJECTED), rejects.len()).await?,
    )
    .await?;
    carry_registry_ids(
        &scope,
        &notifications,
        &raw_values(
            &scope,
            &scope.topic(topics::NOTIFICATIONS),
            notifications.len(),
        )
        .await?,
    )
    .await?;
    let locations_topic = scope.topic(topics::DRIVER_LOCATIONS);
    let raw_pings = raw_values(&scope, &locations_topic, pings.len()).await?;
    let ping_id = latest_id(&registry, &format!("{locations_topic}-value"))
        .await?
        .context("drivers.locations subject")?;
    ensure!(
        raw_pings
            .iter()
            .all(|b| wire::schema_id(b).ok() == Some(ping_id))
    );

    // The analytics job: Confluent's deserializer, schemas from the registry by id.
    let theirs = python_consumer(
        &scope,
        &[status_topic.clone(), tracking_topic.clone()],
        status.len() + tracking.len(),
    )?;
    ensure!(
        theirs.len() == status.len() + tracking.len(),
        "Python read {} records, the pipelines wrote {}",
        theirs.len(),
        status.len() + tracking.len()
    );
    let theirs = by_position(&theirs);
    for read in &status {
        let c = &read.value;
        let to = serde_json::to_value(c.to)?;
        same(
            &theirs,
            &status_topic,
            read,
            status_id,
            &[
                ("event_id", text(c.event_id.as_str())),
                ("order_id", text(c.order_id.as_str())),
                ("seq", Value::from(c.seq)),
                ("to", to),
                ("customer_id", text(c.customer_id.as_str())),
            ],
        )?;
    }
    for read in &tracking {
        let t = &read.value;
        let location = t
            .driver_location
            .map(|g| serde_json::json!({"lat": g.lat, "lng": g.lng}))
            .unwrap_or(Value::Null);
        same(
            &theirs,
            &tracking_topic,
            read,
            tracking_id,
            &[
                ("update_id", text(t.update_id.as_str())),
                ("order_id", text(t.order_id.as_str())),
                (
                    "driver_id",
                    t.driver_id
                        .as_ref()
                        .map_or(Value::Null, |d| text(d.as_str())),
                ),
                ("driver_location", location),
                ("timestamp", Value::from(t.timestamp.as_millis())),
            ],
        )?;
    }

    let _ = trigger.send(true);
    location_task.await??;
    running.stop().await?;
    Ok(())
}
