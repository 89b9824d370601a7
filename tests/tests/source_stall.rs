//! The source while its lane waits on a sink, against the real broker: the lane's queue is
//! full and stays full, yet the consumer keeps serving its group, so a member that joins gets
//! its share of the partitions within seconds, not after the group's rebalance timeout
//! (`max.poll.interval.ms`, 300 s). A source that stopped reading the consumer whenever a
//! queue was full held every rebalance back that long, and after a broker restart that
//! dropped its member it could never commit again.
//!
//! Then the sink comes back: the paused partitions resume and every record is processed, each
//! partition's records first seen in offset order (what the source held while paused goes
//! first).

use anyhow::{Context, ensure};
use doorstep_connectors::kafka::{ConsumerBuilder, Producer};
use doorstep_connectors::retry::RetryPolicy;
use doorstep_pipelines::runtime::{
    Batcher, Lane, Runtime, RuntimeConfig, RuntimeMetrics, SourceRecord, Stage, StageError,
};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::topics;
use doorstep_tests::pipeline_harness::Scope;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records produced: far more than the queue and a batch hold.
const RECORDS: usize = 300;

/// A stage whose sink is down until `up` turns true.
struct WaitingOnSink {
    up: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(i32, i64)>>>,
}

impl Stage for WaitingOnSink {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(StageError::unavailable(
                "redis",
                std::io::Error::other("the sink is down"),
            ));
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(batch.iter().map(|r| (r.partition, r.offset)));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_lane_waits_on_a_sink_still_lets_its_group_rebalance() -> anyhow::Result<()>
{
    let scope = Scope::new("source_stall", &[]).await?;
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "source-stall");
    let topic = scope.topic(topics::ORDER_EVENTS);
    let group = scope.config.group_id("stall");
    let plain = Producer::new(&kafka)?;
    for i in 0..RECORDS {
        plain
            .send(&topic, format!("k{i}").as_bytes(), b"v", &[])
            .await?;
    }

    let up = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config = RuntimeConfig {
        batch: Batcher {
            max: 5,
            linger: Duration::from_millis(5),
        },
        queue_capacity: 10,
        tick: Duration::from_millis(100),
        retry: RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(500)),
        ..RuntimeConfig::default()
    };
    let registry = prometheus::Registry::new();
    let metrics = RuntimeMetrics::register(&registry, "stall")?;
    let consumer = ConsumerBuilder::new(&kafka, &group).subscribe(&[topic.as_str()])?;
    let runtime = Runtime::new(consumer, topic.clone(), config, metrics.clone());
    let stage = WaitingOnSink {
        up: up.clone(),
        seen: seen.clone(),
    };
    let (stop, signal) = shutdown::channel();
    let task = tokio::spawn(runtime.run([Lane::new(stage)], signal));

    // The sink is down: the lane retries its first batch, its queue fills, and after a
    // second the source pauses.
    Scope::eventually(Duration::from_secs(60), || async {
        (metrics.source_paused.get() == 1).then_some(())
    })
    .await
    .context("the source never paused its partitions while its lane's queue stayed full")?;

    // A second member joins: the group must rebalance now, which needs the first member's
    // consumer to be read.
    let joined = Instant::now();
    let other = ConsumerBuilder::new(&kafka, &group).subscribe(&[topic.as_str()])?;
    let first = tokio::time::timeout(Duration::from_secs(45), other.recv())
        .await
        .context("the joining member got no partition within 45 s: the group could not rebalance while the first member's queue was full")??;
    let took = joined.elapsed();
    ensure!(
        first.topic == topic,
        "the joining member read {}",
        first.topic
    );
    // It leaves again, and the sink comes back: the first member takes every partition back
    // and processes every record, in each partition's order.
    drop(other);
    up.store(true, Ordering::SeqCst);
    let all = Scope::eventually(Duration::from_secs(90), || async {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let distinct: BTreeSet<(i32, i64)> = s.iter().copied().collect();
        (distinct.len() >= RECORDS).then_some(s)
    })
    .await
    .with_context(|| {
        let s = seen.lock().unwrap_or_else(|e| e.into_inner());
        let distinct: BTreeSet<(i32, i64)> = s.iter().copied().collect();
        format!(
            "not every record was processed once the sink came back: {} of {RECORDS}",
            distinct.len()
        )
    })?;
    let distinct: BTreeSet<(i32, i64)> = all.iter().copied().collect();
    ensure!(
        distinct.len() == RECORDS,
        "{} distinct records processed, {RECORDS} produced",
        distinct.len()
    );
    let mut first_seen = BTreeSet::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for &(partition, offset) in &all {
        if first_seen.insert((partition, offset))
            && let Some(previous) = last.insert(partition, offset)
        {
            ensure!(
                offset > previous,
                "partition {partition}: offset {offset} first seen after {previous}"
            );
        }
    }
    ensure!(
        metrics.source_paused.get() == 0,
        "the source is still paused after its queue took records again"
    );
    let _ = stop.send(true);
    task.await??;
    eprintln!("the joining member got its first record {took:?} after joining");
    Ok(())
}
