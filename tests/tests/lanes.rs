//! The runtime's lanes, against the real broker: with two lanes, each with its own
//! transactional producer, a batch held in flight in one lane does not hold the other back —
//! the other lane processes and commits its partitions meanwhile — and every record is
//! processed once, in its partition's order, by the lane its partition belongs to.

use anyhow::{Context, ensure};
use doorstep_connectors::kafka::{ConsumerBuilder, Producer};
use doorstep_pipelines::runtime::{
    Lane, Runtime, RuntimeConfig, RuntimeMetrics, SourceRecord, Stage, StageError,
};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::topics;
use doorstep_tests::bench_kit::GroupProgress;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Records to produce.
const RECORDS: usize = 90;
/// Lanes of the runtime under test.
const LANES: usize = 2;

/// One record as a lane saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    lane: usize,
    partition: i32,
    offset: i64,
}

/// Remembers every record; with `hold`, its first batch waits for `release`.
struct Recording {
    lane: usize,
    log: Arc<Mutex<Vec<Seen>>>,
    hold: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl Stage for Recording {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        if let Some((in_flight, release)) = self.hold.take() {
            in_flight.notify_one();
            release.notified().await;
        }
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.extend(batch.iter().map(|r| Seen {
            lane: self.lane,
            partition: r.partition,
            offset: r.offset,
        }));
        Ok(())
    }
}

fn seen(log: &Mutex<Vec<Seen>>) -> Vec<Seen> {
    log.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_holding_a_batch_does_not_hold_back_the_other_lanes() -> anyhow::Result<()> {
    let scope = Scope::new("lanes", &[]).await?;
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "lanes");
    let topic = scope.topic(topics::ORDER_EVENTS);
    let group = scope.config.group_id("lanes");

    // Records spread over the partitions; how many each partition got.
    let plain = Producer::new(&kafka)?;
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for i in 0..RECORDS {
        let d = plain
            .send(&topic, format!("k{i}").as_bytes(), b"v", &[])
            .await?;
        *per_partition.entry(d.partition).or_default() += 1;
    }
    // Lane 1 gets the odd partitions of the TEST_PARTITIONS (3): partition 1.
    let of_lane_1: usize = per_partition
        .iter()
        .filter(|(p, _)| *p % 2 == 1)
        .map(|(_, n)| n)
        .sum();
    ensure!(
        of_lane_1 > 0 && of_lane_1 < RECORDS,
        "the keys must reach both lanes' partitions: {per_partition:?}"
    );

    let consumer = ConsumerBuilder::new(&kafka, &group).subscribe(&[topic.as_str()])?;
    let config = RuntimeConfig {
        tick: Duration::from_millis(100),
        ..RuntimeConfig::default()
    };
    let metrics = RuntimeMetrics::register(&prometheus::Registry::new(), "lanes")?;
    let runtime = Runtime::new(consumer, topic.clone(), config, metrics);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (in_flight, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let mut lanes = Vec::new();
    for lane in 0..LANES {
        let producer = Producer::transactional(
            &kafka,
            &format!("{group}.{lane}.{}", doorstep_tests::unique("t")),
        )
        .await?;
        let stage = Recording {
            lane,
            log: log.clone(),
            hold: (lane == 0).then(|| (in_flight.clone(), release.clone())),
        };
        lanes.push(Lane::new(stage).with_transactions(producer));
    }
    let (stop, signal) = shutdown::channel();
    let task = tokio::spawn(runtime.run(lanes, signal));

    tokio::time::timeout(Duration::from_secs(60), in_flight.notified())
        .await
        .context("lane 0 never started a batch")?;
    // Lane 0 holds its first batch; lane 1 must get through all of its records meanwhile,
    // and commit them.
    let progress = GroupProgress::new(
        &scope.config.endpoints.kafka_brokers,
        &group,
        &topic,
        TEST_PARTITIONS,
    )?;
    let done_meanwhile = Scope::eventually(Duration::from_secs(60), || async {
        let of_1 = seen(&log).iter().filter(|s| s.lane == 1).count();
        let committed = progress.committed().await.ok()?;
        (of_1 == of_lane_1 && committed >= i64::try_from(of_lane_1).ok()?).then_some(committed)
    })
    .await
    .context("lane 1 did not process and commit its records while lane 0 held a batch")?;
    ensure!(
        seen(&log).iter().all(|s| s.lane == 1),
        "lane 0 finished a batch while it was held"
    );
    ensure!(
        done_meanwhile < i64::try_from(RECORDS)?,
        "lane 0's held records were committed before it finished them ({done_meanwhile})"
    );

    release.notify_one();
    let all = Scope::eventually(Duration::from_secs(60), || async {
        let s = seen(&log);
        (s.len() >= RECORDS).then_some(s)
    })
    .await
    .context("not every record was processed")?;
    let _ = stop.send(true);
    task.await??;

    ensure!(
        all.len() == RECORDS,
        "{} records seen, {RECORDS} sent",
        all.len()
    );
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for s in &all {
        ensure!(
            usize::try_from(s.partition)? % LANES == s.lane,
            "partition {} went to lane {}",
            s.partition,
            s.lane
        );
        if let Some(before) = last.insert(s.partition, s.offset) {
            ensure!(
                s.offset > before,
                "partition {} out of order: {before} then {}",
                s.partition,
                s.offset
            );
        }
    }
    let committed = progress.committed().await?;
    ensure!(
        committed == i64::try_from(RECORDS)?,
        "{committed} offsets committed after shutdown, {RECORDS} records"
    );
    Ok(())
}
