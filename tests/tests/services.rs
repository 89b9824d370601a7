//! Smoke tests against the real services (`scripts/services up`).
//!
//! One test binary for every service test. Each test uses its own topics, keys, channels,
//! subjects and keyspace (random suffix), so they run in parallel and never see each other's
//! data. A test whose service is not running fails with a message naming the service, the
//! environment variable and `scripts/services up`; none of them skips.

use anyhow::{Context, Result, anyhow, ensure};
use doorstep_connectors::config::{Service, ServiceEndpoints};
use doorstep_connectors::kafka::{Admin, ConsumerBuilder, KafkaConfig, Producer, Record};
use doorstep_connectors::redis::driver as redis;
use doorstep_connectors::redis::{Redis, RedisOptions, RedisTarget};
use doorstep_connectors::routing::{self, LngLat, OsrmClient, OsrmConfig};
use doorstep_connectors::scylla::driver::value::CqlTimestamp;
use doorstep_connectors::scylla::{self, Replication, ScyllaConfig};
use doorstep_tests::{OrServiceDown, ServiceDown, endpoints, unique, unique_ident};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::timeout;

/// Short connect timeouts: a service that is down must fail the test in seconds.
const CONNECT: Duration = Duration::from_secs(3);
/// Generous bound for things that are slow on a busy 2-core machine (group joins).
const SLOW: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- Kafka

fn kafka_config(e: &ServiceEndpoints) -> KafkaConfig {
    KafkaConfig::new(&e.kafka_brokers, "doorstep-tests")
        .with_connect_timeout(CONNECT)
        .with_request_timeout(Duration::from_secs(5))
        .with_delivery_timeout(Duration::from_secs(15))
        .with_session_timeout(Duration::from_secs(10))
}

async fn recv(consumer: &doorstep_connectors::kafka::Consumer) -> Result<Record> {
    timeout(SLOW, consumer.recv())
        .await
        .with_context(|| format!("no record within {SLOW:?}"))?
        .context("consume failed")
}

#[tokio::test]
async fn kafka_round_trip_with_commit_and_resume() -> Result<()> {
    let e = endpoints();
    let cfg = kafka_config(&e);
    let producer = Producer::new(&cfg)?;
    producer.ping().await.or_service_down(Service::Kafka, &e)?;

    let topic = unique("test-orders");
    let group = unique("test-group");
    let admin = Admin::new(&cfg)?;
    admin.ensure_topics(&[(&topic, 3)]).await?;
    admin
        .ensure_topics(&[(&topic, 3)])
        .await
        .context("ensure_topics must be idempotent")?;

    // Same key, so same partition, in order.
    let key = b"order-1";
    let mut deliveries = Vec::new();
    for i in 0..3 {
        let payload = format!("event-{i}");
        let d = producer
            .send(
                &topic,
                key,
                payload.as_bytes(),
                &[("event-id", format!("e{i}").as_bytes()), ("schema", b"v1")],
            )
            .await?;
        deliveries.push(d);
    }
    let partition = deliveries[0].partition;
    ensure!(
        deliveries.iter().all(|d| d.partition == partition),
        "one key must map to one partition: {deliveries:?}"
    );
    ensure!(
        deliveries
            .windows(2)
            .all(|w| w[1].offset == w[0].offset + 1),
        "offsets must be consecutive: {deliveries:?}"
    );

    // First member reads two records and commits the second.
    let first = ConsumerBuilder::new(&cfg, &group).subscribe(&[&topic])?;
    let r0 = recv(&first).await?;
    let r1 = recv(&first).await?;
    ensure!(r0.payload.as_deref() == Some(&b"event-0"[..]), "{r0:?}");
    ensure!(r0.key.as_deref() == Some(&key[..]), "{r0:?}");
    ensure!(r0.header("event-id") == Some(&b"e0"[..]), "{r0:?}");
    ensure!(r0.header("schema") == Some(&b"v1"[..]), "{r0:?}");
    ensure!(r1.offset == deliveries[1].offset, "{r1:?}");
    first.commit(&r1.topic, r1.partition, r1.offset).await?;
    let committed = first
        .committed(&topic, partition, Duration::from_secs(5))
        .await?;
    ensure!(
        committed == Some(r1.offset + 1),
        "committed offset is the next one to read: {committed:?}"
    );
    drop(first);

    // A new member of the same group resumes right after the commit.
    let second = ConsumerBuilder::new(&cfg, &group).subscribe(&[&topic])?;
    let r2 = recv(&second).await?;
    ensure!(
        r2.offset == deliveries[2].offset && r2.payload.as_deref() == Some(&b"event-2"[..]),
        "second member must resume after the committed offset, got {r2:?}"
    );
    second.commit(&r2.topic, r2.partition, r2.offset).await?;
    Ok(())
}

// ---------------------------------------------------------------- Redis

fn redis_options() -> RedisOptions {
    RedisOptions::default()
        .with_connect_timeout(CONNECT)
        .with_retries(1)
}

/// GEO and pub/sub on keys and a channel that share `tag`'s hash slot.
async fn exercise_redis(mut redis: Redis, tag: &str) -> Result<()> {
    let key = format!("{tag}:drivers:geo");
    let centre = (24.9384, 60.1699);
    let added = redis
        .geo_add(
            &key,
            &[
                (24.9384, 60.1699, "d1"),
                (24.9458, 60.1718, "d2"),
                (24.9600, 60.1800, "d3"),
            ],
        )
        .await?;
    ensure!(added == 3, "three new members, got {added}");

    // Moving a member adds nothing and updates its position.
    let added = redis.geo_add(&key, &[(24.9390, 60.1701, "d1")]).await?;
    ensure!(added == 0, "moving d1 adds no member, got {added}");
    let (lng, lat) = redis
        .geo_pos(&key, "d1")
        .await?
        .ok_or_else(|| anyhow!("d1 has no position"))?;
    ensure!(
        (lng - 24.9390).abs() < 1e-5 && (lat - 60.1701).abs() < 1e-5,
        "d1 read back at {lng},{lat}"
    );
    ensure!(redis.geo_pos(&key, "nobody").await?.is_none());

    let hits = redis.geo_search(&key, centre, 1_000.0, 10).await?;
    let members: Vec<&str> = hits.iter().map(|h| h.member.as_str()).collect();
    ensure!(
        members == ["d1", "d2"],
        "nearest first within 1 km: {hits:?}"
    );
    ensure!(hits[0].distance_m < hits[1].distance_m);

    // A batch larger than one GEOADD: several commands, one pipeline.
    let batch: Vec<(f64, f64, String)> = (0..1_200)
        .map(|i| (24.90 + f64::from(i) * 1e-4, 60.16, format!("bulk-{i}")))
        .collect();
    ensure!(redis.geo_add(&key, &batch).await? == 1_200);
    ensure!(redis.geo_remove(&key, "bulk-0").await?);

    // Pub/sub: subscribed before publishing, so the message must arrive.
    let channel = format!("{tag}:order:events");
    let mut subscription = redis.subscribe(&channel).await?;
    let receivers = redis.publish(&channel, b"\x00location\xff").await?;
    ensure!(receivers == 1, "one subscriber, got {receivers}");
    let message = timeout(Duration::from_secs(5), subscription.next())
        .await
        .context("no pub/sub message within 5 s")?
        .ok_or_else(|| anyhow!("subscription ended"))?;
    ensure!(message.channel == channel, "{message:?}");
    ensure!(message.payload == b"\x00location\xff", "{message:?}");

    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .context("cleanup")?;
    Ok(())
}

#[tokio::test]
async fn redis_single_node_geo_and_pubsub() -> Result<()> {
    let e = endpoints();
    let redis = Redis::connect(RedisTarget::Single(e.redis_url.clone()), redis_options())
        .await
        .or_service_down(Service::Redis, &e)?;
    ensure!(!redis.is_cluster());
    exercise_redis(redis, &format!("test:{}", unique("r"))).await
}

#[tokio::test]
async fn redis_cluster_geo_and_pubsub_on_hash_tags() -> Result<()> {
    let e = endpoints();
    let target = RedisTarget::Cluster(e.redis_cluster_urls.clone());
    let mut redis = Redis::connect(target, redis_options())
        .await
        .or_service_down(Service::RedisCluster, &e)?;
    ensure!(redis.is_cluster());

    // Several tags, so the keys spread over the cluster's nodes.
    for _ in 0..3 {
        exercise_redis(redis.clone(), &format!("{{{}}}", unique("t"))).await?;
    }
    // Keys with different tags in one pipeline are refused (cross-slot), as documented.
    let mut pipe = redis::pipe();
    pipe.cmd("GEOADD")
        .arg("{a}:geo")
        .arg(24.9)
        .arg(60.1)
        .arg("x")
        .cmd("GEOADD")
        .arg("{b}:geo")
        .arg(24.9)
        .arg(60.1)
        .arg("x");
    let cross: redis::RedisResult<()> = pipe.query_async(&mut redis).await;
    ensure!(cross.is_err(), "a cross-slot pipeline must fail");
    Ok(())
}

// ---------------------------------------------------------------- CQL

#[tokio::test]
async fn cql_keyspace_table_prepared_insert_and_partition_read() -> Result<()> {
    let e = endpoints();
    let cfg = ScyllaConfig::new(e.cql_nodes.clone()).with_connect_timeout(CONNECT);
    let session = scylla::connect(&cfg)
        .await
        .or_service_down(Service::Cql, &e)?;

    let ks = unique_ident("t");
    scylla::create_keyspace(&session, &ks, &Replication::Simple(1)).await?;
    scylla::create_keyspace(&session, &ks, &Replication::Simple(1))
        .await
        .context("create_keyspace must be idempotent")?;
    session
        .query_unpaged(
            format!(
                "CREATE TABLE IF NOT EXISTS {ks}.status_history (\
                 order_id uuid, seq bigint, status text, at timestamp, \
                 PRIMARY KEY (order_id, seq))"
            ),
            &[],
        )
        .await
        .context("create table")?;

    let insert = session
        .prepare(format!(
            "INSERT INTO {ks}.status_history (order_id, seq, status, at) VALUES (?, ?, ?, ?)"
        ))
        .await
        .context("prepare insert")?;
    let select = session
        .prepare(format!(
            "SELECT seq, status, at FROM {ks}.status_history WHERE order_id = ?"
        ))
        .await
        .context("prepare select")?;

    let order_a = uuid::Uuid::new_v4();
    let order_b = uuid::Uuid::new_v4();
    let at = CqlTimestamp(1_750_000_000_000);
    for (order, seq, status) in [
        (order_a, 1_i64, "PLACED"),
        (order_a, 2, "CONFIRMED"),
        (order_a, 3, "PREPARING"),
        (order_b, 1, "PLACED"),
        // Upsert keyed by (order, seq): a replayed event overwrites, never duplicates.
        (order_a, 2, "CONFIRMED"),
    ] {
        session
            .execute_unpaged(&insert, (order, seq, status, at))
            .await
            .with_context(|| format!("insert {order} {seq}"))?;
    }

    let read = |order: uuid::Uuid| {
        let session = &session;
        let select = &select;
        async move {
            let rows = session
                .execute_unpaged(select, (order,))
                .await?
                .into_rows_result()?;
            let mut rows = rows
                .rows::<(i64, String, CqlTimestamp)>()?
                .collect::<Result<Vec<_>, _>>()?;
            // Order clustering rows client-side (see SERVICES.md: ORDER BY is not served).
            rows.sort_by_key(|r| r.0);
            anyhow::Ok(rows)
        }
    };
    let a = read(order_a).await.context("read partition a")?;
    let statuses: Vec<(i64, &str)> = a.iter().map(|(s, st, _)| (*s, st.as_str())).collect();
    ensure!(
        statuses == [(1, "PLACED"), (2, "CONFIRMED"), (3, "PREPARING")],
        "partition a: {a:?}"
    );
    ensure!(a.iter().all(|r| r.2 == at), "timestamps round-trip: {a:?}");
    let b = read(order_b).await.context("read partition b")?;
    ensure!(b.len() == 1 && b[0].1 == "PLACED", "partition b: {b:?}");
    Ok(())
}

// ---------------------------------------------------------------- Schema registry

const PING_V1: &str = r#"{"type":"record","name":"Ping","namespace":"doorstep.test",
  "fields":[{"name":"id","type":"string"}]}"#;
const PING_V2_COMPATIBLE: &str = r#"{"type":"record","name":"Ping","namespace":"doorstep.test",
  "fields":[{"name":"id","type":"string"},{"name":"note","type":"string","default":""}]}"#;
const PING_V2_INCOMPATIBLE: &str = r#"{"type":"record","name":"Ping","namespace":"doorstep.test",
  "fields":[{"name":"id","type":"string"},{"name":"count","type":"long"}]}"#;

/// The registry the services run (`scripts/services up`), through
/// `schema_registry_converter` — the library Doorstep's codec makes its registry calls with:
/// register, same schema same id, fetch by id, BACKWARD compatibility (a field added with a
/// default passes, one without is refused with 409).
#[tokio::test]
async fn registry_register_fetch_and_compatibility() -> Result<()> {
    use schema_registry_converter::async_impl::schema_registry::{
        SrSettings, get_schema_by_id, is_compatible_schema, post_schema,
    };
    use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};
    let e = endpoints();
    let settings = SrSettings::new_builder(e.schema_registry_url.clone())
        .set_timeout(CONNECT)
        .build()?;
    let avro = |text: &str| SuppliedSchema::new(None, SchemaType::Avro, text.to_owned());
    let subject = format!("{}-value", unique("test-ping"));

    let id = match post_schema(&settings, subject.clone(), avro(PING_V1)).await {
        Err(err) if err.retriable || err.to_string().contains("error sending request") => {
            return Err(ServiceDown::new(Service::SchemaRegistry, &e, err).into());
        }
        other => other.context("register v1")?.id,
    };
    ensure!(
        post_schema(&settings, subject.clone(), avro(PING_V1))
            .await?
            .id
            == id,
        "registering the same schema again returns the same id"
    );

    let fetched = get_schema_by_id(id, &settings)
        .await
        .context("fetch by id")?;
    ensure!(fetched.id == id);
    let json: serde_json::Value = serde_json::from_str(&fetched.schema)?;
    ensure!(
        json["name"] == "Ping" && json["fields"][0]["name"] == "id",
        "fetched schema: {}",
        fetched.schema
    );

    ensure!(
        is_compatible_schema(&settings, subject.clone(), avro(PING_V2_COMPATIBLE)).await?,
        "adding a field with a default is backward compatible"
    );
    let id2 = post_schema(&settings, subject.clone(), avro(PING_V2_COMPATIBLE))
        .await?
        .id;
    ensure!(id2 != id, "a new version gets a new id");

    ensure!(
        !is_compatible_schema(&settings, subject.clone(), avro(PING_V2_INCOMPATIBLE)).await?,
        "adding a field without a default is not backward compatible"
    );
    match post_schema(&settings, subject.clone(), avro(PING_V2_INCOMPATIBLE)).await {
        Err(err) => ensure!(
            err.to_string().contains("409"),
            "incompatible schema: {err}"
        ),
        Ok(r) => {
            return Err(anyhow!(
                "incompatible schema must be rejected, got id {}",
                r.id
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- OSRM

#[tokio::test]
async fn osrm_route_in_central_helsinki() -> Result<()> {
    let e = endpoints();
    let client = OsrmClient::new(&OsrmConfig::new(&e.osrm_url))?;
    // Rautatientori (railway square) to Kamppi, about 1 km by car.
    let from = LngLat::new(24.9384, 60.1699);
    let to = LngLat::new(24.9458, 60.1718);

    let route = match client.route(from, to).await {
        Err(err @ (routing::Error::Unreachable { .. } | routing::Error::Timeout { .. })) => {
            return Err(ServiceDown::new(Service::Osrm, &e, err).into());
        }
        other => other.context("route")?,
    };
    ensure!(route.duration_s > 0.0, "{route:?}");
    ensure!(
        route.distance_m > 100.0 && route.distance_m < 10_000.0,
        "{route:?}"
    );
    ensure!(route.geometry.is_none());

    let with_path = client.route_with_geometry(from, to).await?;
    ensure!(
        with_path.geometry.as_deref().is_some_and(|g| !g.is_empty()),
        "{with_path:?}"
    );
    ensure!((with_path.duration_s - route.duration_s).abs() < 1e-6);

    let bad = client.route(LngLat::new(24.9, 95.0), to).await;
    ensure!(
        matches!(bad, Err(routing::Error::InvalidCoordinate { .. })),
        "{bad:?}"
    );

    // A point far from every road: OSRM's NoSegment once snapping is bounded.
    let bounded = OsrmClient::new(&OsrmConfig::new(&e.osrm_url).with_max_snap_distance(1_000.0))?;
    ensure!(bounded.route(from, to).await?.duration_s > 0.0);
    let far = bounded.route(LngLat::new(0.0, 0.0), to).await;
    ensure!(
        matches!(far, Err(routing::Error::NoSegment { .. })),
        "{far:?}"
    );
    Ok(())
}
