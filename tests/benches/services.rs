//! Benchmark (not a test): the raw limits of the services on this machine, with the clients
//! and settings the pipelines use, so that every pipeline figure has its ceiling beside it.
//!
//! In a fresh [`Scope`] (topics and keyspace of its own):
//!
//! 1. **Kafka produce.** `RECORDS` GPS pings (real Avro records of `drivers.locations.v1`,
//!    keyed by driver) produced by the project's `Producer` (`assemble::kafka_config`:
//!    idempotent, `acks=all`, the configured linger) with `PRODUCE_CONCURRENCY` sends in
//!    flight, once per compression codec (`none`, `lz4`, `zstd`; each to its own topic).
//! 2. **Kafka bare consume.** A plain consumer (`ConsumerBuilder`, its own group, assigned
//!    every partition from offset 0) reads the zstd topic back: no decoding, no processing.
//! 3. **Cassandra prepared inserts.** `INSERTS` single-row inserts of a timeline-shaped row
//!    (text partition key, int clustering key, a few short columns), `CONCURRENCY` in flight.
//!
//! Beside each rate: the CPU the server spent per record (user + system time of the broker's
//! or Cassandra's JVM, found by its listening port in `/proc`, over the measured interval)
//! and, for produce, of this process (the client). Rates are wall-clock over the measured
//! interval, after a warm-up record that waits for metadata and connections.
//!
//! Settings (environment): `DOORSTEP_BENCH_SERVICES_RECORDS` [200000],
//! `DOORSTEP_BENCH_SERVICES_INSERTS` [100000], `DOORSTEP_BENCH_SERVICES_CONCURRENCY` [256],
//! plus the `DOORSTEP_*` service addresses (`eval "$(scripts/services env)"`).

use anyhow::Context;
use doorstep_connectors::kafka::{Admin, Compression, ConsumerBuilder, Producer};
use doorstep_pipelines::assemble;
use doorstep_schemas::events::LocationPing;
use doorstep_schemas::model::{DriverId, EventId, GeoPoint, Timestamp};
use doorstep_tests::bench_kit::{RawInserts, bench_line, cpu, init_bench_tracing, setting};
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use futures::{StreamExt, TryStreamExt};
use std::time::{Duration, Instant};

/// Produce requests in flight.
const PRODUCE_CONCURRENCY: usize = 1024;
/// Drivers the pings are spread over (keys).
const DRIVERS: usize = 20_000;

/// CPU seconds of process `pid` so far (user + system), if it can be read.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let ticks = cpu::process_ticks(pid?)?;
    Some(ticks.total as f64 / cpu::ticks_per_second())
}

/// CPU µs per record of `pid` between two readings.
fn per_record(before: Option<f64>, after: Option<f64>, records: usize) -> Option<f64> {
    Some((after? - before?) * 1e6 / records as f64)
}

/// The port of a `host:port` address.
fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit(':').next()?.parse().ok()
}

async fn pings(n: usize) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let catalog = doorstep_tests::catalog().await?;
    let now = Timestamp::now().as_millis();
    (0..n)
        .map(|i| {
            let driver = format!("bench-d{:05}", i % DRIVERS);
            let ping = LocationPing {
                ping_id: EventId::new(format!("bench-p{i}")),
                driver_id: DriverId::new(driver.clone()),
                location: GeoPoint {
                    lat: 60.10 + (i % 100) as f64 * 0.0015,
                    lng: 24.80 + (i / 100 % 100) as f64 * 0.003,
                },
                accuracy_m: Some(5.0),
                heading_deg: Some(90.0),
                speed_mps: Some(9.5),
                recorded_at: Timestamp::from_millis(now),
                received_at: Timestamp::from_millis(now + 40),
            };
            Ok((driver, catalog.encode(&ping)?))
        })
        .collect()
}

/// Produces `records` to `topic` with `compression`; returns (records/s, client CPU µs per
/// record, broker CPU µs per record).
async fn produce(
    scope: &Scope,
    topic: &str,
    compression: Compression,
    records: &[(String, Vec<u8>)],
    broker: Option<u32>,
) -> anyhow::Result<(f64, Option<f64>, Option<f64>)> {
    let kafka =
        assemble::kafka_config(&scope.config, "doorstep-bench").with_compression(compression);
    let producer = Producer::new(&kafka)?;
    let Some(((key, bytes), rest)) = records.split_first() else {
        anyhow::bail!("nothing to produce");
    };
    producer.send(topic, key.as_bytes(), bytes, &[]).await?;
    let me = Some(std::process::id());
    let (client0, broker0) = (cpu_seconds(me), cpu_seconds(broker));
    let started = Instant::now();
    let producer = &producer;
    futures::stream::iter(rest)
        .map(|(key, bytes)| async move {
            producer
                .send(topic, key.as_bytes(), bytes, &[])
                .await
                .map(|_| ())
        })
        .buffer_unordered(PRODUCE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let elapsed = started.elapsed();
    let (client1, broker1) = (cpu_seconds(me), cpu_seconds(broker));
    Ok((
        rest.len() as f64 / elapsed.as_secs_f64(),
        per_record(client0, client1, rest.len()),
        per_record(broker0, broker1, rest.len()),
    ))
}

/// Reads `records` back from offset 0 of every partition; returns (records/s, broker CPU µs
/// per record).
async fn consume(
    scope: &Scope,
    topic: &str,
    records: usize,
    broker: Option<u32>,
) -> anyhow::Result<(f64, Option<f64>)> {
    let kafka = assemble::kafka_config(&scope.config, "doorstep-bench");
    let positions: Vec<(&str, i32, i64)> = (0..TEST_PARTITIONS).map(|p| (topic, p, 0)).collect();
    let consumer =
        ConsumerBuilder::new(&kafka, scope.config.group_id("bench-bare")).assign(&positions)?;
    let first = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
        .await
        .context("no first record within 60 s")??;
    drop(first);
    let broker0 = cpu_seconds(broker);
    let started = Instant::now();
    for n in 1..records {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("no record within 60 s after {n}"))??;
    }
    let elapsed = started.elapsed();
    Ok((
        (records - 1) as f64 / elapsed.as_secs_f64(),
        per_record(broker0, cpu_seconds(broker), records - 1),
    ))
}

/// Prepared single-row inserts; returns (inserts/s, Cassandra CPU µs per insert).
async fn inserts(
    scope: &Scope,
    n: usize,
    concurrency: usize,
    server: Option<u32>,
) -> anyhow::Result<(f64, Option<f64>)> {
    let raw = RawInserts::prepare(&scope.config).await?;
    raw.run(0..n / 10, concurrency)
        .await
        .context("warm-up inserts")?;
    let before = cpu_seconds(server);
    let elapsed = raw.run(n / 10..n / 10 + n, concurrency).await?;
    Ok((
        n as f64 / elapsed.as_secs_f64(),
        per_record(before, cpu_seconds(server), n),
    ))
}

fn print_cpu(what: &str, v: Option<f64>) {
    match v {
        Some(us) => println!("    {what}: {us:.1} µs CPU per record"),
        None => println!("    {what}: CPU not readable from /proc"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_bench_tracing();
    let records: usize = setting("DOORSTEP_BENCH_SERVICES_RECORDS", "200000")?;
    let n_inserts: usize = setting("DOORSTEP_BENCH_SERVICES_INSERTS", "100000")?;
    let concurrency: usize = setting("DOORSTEP_BENCH_SERVICES_CONCURRENCY", "256")?;
    println!("\n## services: raw Kafka and Cassandra rates with the pipelines' client settings");
    let scope = Scope::new("bench_services", &[]).await?;
    let broker = port_of(&scope.config.endpoints.kafka_brokers).and_then(cpu::listener);
    let cassandra = scope
        .config
        .endpoints
        .cql_nodes
        .first()
        .and_then(|n| port_of(n))
        .and_then(cpu::listener);
    let payloads = pings(records).await?;
    let bytes: usize = payloads.iter().map(|(_, v)| v.len()).sum();
    println!(
        "  {records} GPS pings, {:.0} bytes of Avro each on average, {DRIVERS} driver keys, {} partitions",
        bytes as f64 / records as f64,
        TEST_PARTITIONS
    );
    let admin = Admin::new(&assemble::kafka_config(&scope.config, "doorstep-bench"))?;
    let mut zstd_topic = String::new();
    for (name, codec) in [
        ("none", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let topic = scope.topic(&format!("bench.produce.{name}"));
        admin
            .ensure_topics(&[(topic.as_str(), TEST_PARTITIONS)])
            .await?;
        let (rate, client, server) = produce(&scope, &topic, codec, &payloads, broker).await?;
        println!("  produce, compression {name}: {rate:.0} records/s");
        print_cpu("client (this process)", client);
        print_cpu("broker JVM", server);
        bench_line(&format!("kafka_produce_{name}/s"), rate, "records/s", None);
        if let Some(us) = server {
            bench_line(
                &format!("kafka_produce_{name}_broker_cpu"),
                us,
                "µs/record",
                None,
            );
        }
        if codec == Compression::Zstd {
            zstd_topic = topic;
        }
    }
    let (rate, server) = consume(&scope, &zstd_topic, records, broker).await?;
    println!("  bare consume (zstd topic): {rate:.0} records/s");
    print_cpu("broker JVM", server);
    bench_line("kafka_bare_consume/s", rate, "records/s", None);
    let (rate, server) = inserts(&scope, n_inserts, concurrency, cassandra).await?;
    println!("  Cassandra prepared inserts ({concurrency} in flight): {rate:.0} inserts/s");
    print_cpu("Cassandra JVM", server);
    bench_line("cql_prepared_insert/s", rate, "inserts/s", None);
    if let Some(us) = server {
        bench_line("cql_prepared_insert_server_cpu", us, "µs/insert", None);
    }
    Ok(())
}
