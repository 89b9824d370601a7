//! The rebalance fence, against the real broker: a process that loses partitions while a
//! batch of theirs is in flight (and more of their records are queued) hands them over only
//! after that batch's transaction committed, and never processes the queued ones; the new
//! owner starts after it, from the committed offsets. Every record is processed exactly once
//! over the two processes.
//!
//! The second test is the control: the same scenario with the fence's bound at zero (a
//! revoke that does not wait) makes the new owner process records the old one still has in
//! flight — the overlap the fence exists to prevent, so the first test can fail.

use anyhow::{Context, ensure};
use doorstep_connectors::kafka::{ConsumerBuilder, Epoch, KafkaConfig, Producer, TopicPartition};
use doorstep_pipelines::runtime::{
    Lane, Runtime, RuntimeConfig, RuntimeMetrics, SourceRecord, Stage, StageError,
};
use doorstep_pipelines::shutdown;
use doorstep_schemas::events::topics;
use doorstep_tests::pipeline_harness::{Scope, TEST_PARTITIONS};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One record as a process saw it.
#[derive(Debug, Clone)]
struct Seen {
    process: &'static str,
    partition: i32,
    offset: i64,
    /// When the batch holding it started.
    started: Instant,
    /// When that batch's stage call returned.
    finished: Instant,
}

/// Remembers every record; the first batch of `hold` is held until `release` is notified.
struct Recording {
    process: &'static str,
    log: Arc<Mutex<Vec<Seen>>>,
    hold: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl Stage for Recording {
    async fn process_batch(&mut self, batch: &[SourceRecord]) -> Result<(), StageError> {
        let started = Instant::now();
        if let Some((in_flight, release)) = self.hold.take() {
            in_flight.notify_one();
            release.notified().await;
        }
        let finished = Instant::now();
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.extend(batch.iter().map(|r| Seen {
            process: self.process,
            partition: r.partition,
            offset: r.offset,
            started,
            finished,
        }));
        Ok(())
    }
}

/// A runtime over the scope's events topic in group `group`, and the transactional producer
/// its lane commits in.
async fn runtime(
    scope: &Scope,
    kafka: &KafkaConfig,
    group: &str,
    name: &'static str,
) -> anyhow::Result<(Runtime, Producer)> {
    let topic = scope.topic(topics::ORDER_EVENTS);
    let consumer = ConsumerBuilder::new(kafka, group).subscribe(&[topic.as_str()])?;
    let producer = Producer::transactional(
        kafka,
        &format!("{group}.{name}.{}", doorstep_tests::unique("t")),
    )
    .await?;
    let config = RuntimeConfig {
        tick: Duration::from_millis(100),
        ..RuntimeConfig::default()
    };
    let metrics = RuntimeMetrics::register(&prometheus::Registry::new(), name)?;
    Ok((Runtime::new(consumer, topic, config, metrics), producer))
}

async fn produce(producer: &Producer, topic: &str, from: usize, n: usize) -> anyhow::Result<()> {
    for i in from..from + n {
        let key = format!("k{i}");
        producer
            .send(topic, key.as_bytes(), format!("v{i}").as_bytes(), &[])
            .await?;
    }
    Ok(())
}

/// The scenario: A takes a first batch and holds it; more records are queued; B joins; A
/// keeps holding for `hold`, then releases. Returns what each process saw.
async fn handover(name: &str, handover_bound: Duration) -> anyhow::Result<Vec<Seen>> {
    let scope = Scope::new(name, &[]).await?;
    let mut kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, name);
    kafka.handover_bound = handover_bound;
    let group = scope.config.group_id("fence");
    let topic = scope.topic(topics::ORDER_EVENTS);
    let plain = Producer::new(&doorstep_pipelines::assemble::kafka_config(
        &scope.config,
        "feed",
    ))?;
    produce(&plain, &topic, 0, 60).await?;

    let log = Arc::new(Mutex::new(Vec::new()));
    let (in_flight, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (stop_a, signal_a) = shutdown::channel();
    let (a, producer_a) = runtime(&scope, &kafka, &group, "a").await?;
    let stage_a = Recording {
        process: "A",
        log: log.clone(),
        hold: Some((in_flight.clone(), release.clone())),
    };
    let task_a = tokio::spawn(a.run([Lane::new(stage_a).with_transactions(producer_a)], signal_a));
    tokio::time::timeout(Duration::from_secs(60), in_flight.notified())
        .await
        .context("A never started a batch")?;
    // Queued behind the batch in flight.
    produce(&plain, &topic, 60, 60).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (stop_b, signal_b) = shutdown::channel();
    let (b, producer_b) = runtime(&scope, &kafka, &group, "b").await?;
    let stage_b = Recording {
        process: "B",
        log: log.clone(),
        hold: None,
    };
    let task_b = tokio::spawn(b.run([Lane::new(stage_b).with_transactions(producer_b)], signal_b));
    // B has joined and the group is rebalancing while A holds its batch.
    tokio::time::sleep(Duration::from_secs(6)).await;
    release.notify_one();

    let done = Scope::eventually(Duration::from_secs(90), || async {
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        let distinct: std::collections::BTreeSet<(i32, i64)> =
            log.iter().map(|s| (s.partition, s.offset)).collect();
        (distinct.len() >= 120).then_some(())
    })
    .await;
    let _ = stop_b.send(true);
    let _ = stop_a.send(true);
    task_b.await??;
    task_a.await??;
    done.context("not every record was processed")?;
    let seen = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(seen)
}

/// Records processed by both processes, as `partition@offset`. (One process may process a
/// record twice: an attempt whose transaction failed to commit is redone, and its effects
/// outside Kafka are idempotent; two processes working on one partition is what the fence
/// rules out.)
fn overlaps(seen: &[Seen]) -> Vec<String> {
    let mut by: BTreeMap<(i32, i64), std::collections::BTreeSet<&'static str>> = BTreeMap::new();
    for s in seen {
        by.entry((s.partition, s.offset))
            .or_default()
            .insert(s.process);
    }
    by.into_iter()
        .filter(|(_, who)| who.len() > 1)
        .map(|((p, o), who)| format!("{p}@{o} by {who:?}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_only_after_the_batch_in_flight_committed() -> anyhow::Result<()> {
    let seen = handover("fence_on", Duration::from_secs(60)).await?;
    let twice = overlaps(&seen);
    ensure!(
        twice.is_empty(),
        "processed twice: {:?}",
        &twice[..twice.len().min(10)]
    );
    let first = seen
        .iter()
        .find(|s| s.process == "A")
        .context("A processed nothing")?;
    let held_until = first.finished;
    // The records A had in flight: nobody else may start a batch of their partitions before
    // A's batch ended.
    let held: std::collections::BTreeSet<i32> = seen
        .iter()
        .filter(|s| s.process == "A" && s.started == first.started)
        .map(|s| s.partition)
        .collect();
    for s in seen.iter().filter(|s| s.process == "B") {
        ensure!(
            !(held.contains(&s.partition) && s.started < held_until),
            "B started partition {} at {:?} before A's batch of it ended",
            s.partition,
            held_until.saturating_duration_since(s.started)
        );
    }
    ensure!(
        seen.iter().any(|s| s.process == "B"),
        "B never got a partition (of {TEST_PARTITIONS})"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fence_the_new_owner_overlaps_the_batch_in_flight() -> anyhow::Result<()> {
    let seen = handover("fence_off", Duration::ZERO).await?;
    ensure!(
        !overlaps(&seen).is_empty(),
        "no overlap without the fence: the scenario no longer exercises the hand-over"
    );
    Ok(())
}

/// Reads `consumer` until `done` holds for what it read (or `within` passes): the rebalance
/// callbacks run inside these reads.
async fn read_until(
    consumer: &doorstep_connectors::kafka::Consumer,
    got: &mut Vec<SourceRecord>,
    within: Duration,
    done: impl Fn(&[SourceRecord]) -> bool,
) -> bool {
    let deadline = Instant::now() + within;
    while !done(got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        if let Ok(Ok(r)) =
            tokio::time::timeout(left.min(Duration::from_millis(200)), consumer.recv()).await
        {
            got.push(r);
        }
    }
    true
}

/// A consumer that reads ahead of its processing (the runtime's queue) and is then revoked
/// and assigned the same partitions again must not process what it read before: the group
/// re-reads those partitions from the committed offset, so the queued records would jump
/// ahead of records not processed yet, which a keyed stage then takes for duplicates. The
/// fence refuses records of an ended assignment by their epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_read_before_a_partition_came_back_are_refused() -> anyhow::Result<()> {
    let scope = Scope::new("fence_epoch", &[]).await?;
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "fence_epoch");
    let group = scope.config.group_id("epoch");
    let topic = scope.topic(topics::ORDER_EVENTS);
    let plain = Producer::new(&kafka)?;
    produce(&plain, &topic, 0, 300).await?;

    let a = ConsumerBuilder::new(&kafka, &group).subscribe(&[topic.as_str()])?;
    let mut before = Vec::new();
    // Records of every partition, so that whichever A gets back, it read some of it before.
    let every = |got: &[SourceRecord]| {
        got.iter()
            .map(|r| r.partition)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == TEST_PARTITIONS as usize
    };
    let read = read_until(&a, &mut before, Duration::from_secs(60), every).await;
    ensure!(
        read,
        "A read {} records, not of every partition",
        before.len()
    );
    let first = a.assigned(&topic);
    ensure!(first.len() == TEST_PARTITIONS as usize, "A owns {first:?}");

    // B joins; the group rebalances eagerly: A's partitions are all revoked, then shared.
    let b = Arc::new(ConsumerBuilder::new(&kafka, &group).subscribe(&[topic.as_str()])?);
    let b_reads = {
        let b = b.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            read_until(&b, &mut got, Duration::from_secs(60), |got| got.len() >= 30).await;
            got
        })
    };
    let mut after = Vec::new();
    let moved = read_until(&a, &mut after, Duration::from_secs(60), |_| {
        let now = a.assigned(&topic);
        !now.is_empty() && now.len() < first.len()
    })
    .await;
    ensure!(
        moved,
        "the group never rebalanced: A owns {:?}",
        a.assigned(&topic)
    );
    let now = a.assigned(&topic);
    for (p, e) in &now {
        ensure!(
            first.get(p) != Some(e),
            "partition {p} kept epoch {e} through the rebalance"
        );
    }

    // What A read before the rebalance, in partitions it owns again, is refused by the fence.
    let stale: BTreeMap<TopicPartition, Epoch> = before
        .iter()
        .filter(|r| now.contains_key(&r.partition))
        .map(|r| (TopicPartition::new(topic.as_str(), r.partition), r.epoch))
        .collect();
    ensure!(
        !stale.is_empty(),
        "A read nothing before in the partitions it owns now"
    );
    let refused = a.fence().enter(stale.clone()).err().unwrap_or_default();
    ensure!(
        refused == stale.keys().cloned().collect(),
        "the fence let records of an ended assignment in: refused {refused:?} of {stale:?}"
    );
    // Those partitions are read again from the committed offset (nothing was committed: the
    // start), behind the records A read before: processing those would have skipped these.
    let resumed = read_until(&a, &mut after, Duration::from_secs(60), |got| {
        now.keys()
            .all(|p| got.iter().any(|r| r.partition == *p && r.epoch == now[p]))
    })
    .await;
    ensure!(resumed, "A read nothing of its new assignment");
    for p in now.keys() {
        let again = after
            .iter()
            .find(|r| r.partition == *p && r.epoch == now[p])
            .context("read again")?;
        ensure!(
            again.offset == 0,
            "partition {p} resumed at {} instead of 0",
            again.offset
        );
        let current = BTreeMap::from([(TopicPartition::new(topic.as_str(), *p), again.epoch)]);
        ensure!(
            a.fence().enter(current).is_ok(),
            "a record of the new assignment was refused"
        );
    }
    drop(a);
    b_reads.abort();
    Ok(())
}
