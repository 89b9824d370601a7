//! The source: reads the Kafka consumer on a thread of its own and feeds each lane's bounded
//! channel with the records of its partitions.
//!
//! The consumer's rebalance callback runs on the thread that reads it, and a revoke blocks
//! there until the batch in flight has committed or aborted (the rebalance fence). A thread
//! of its own keeps that wait off the threads the stage runs on, whatever the process's
//! tokio runtime.

use doorstep_connectors::kafka::{Consumer, Record};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};

/// One record as read from the source topic.
pub type SourceRecord = Record;

/// Where a bounded source stops: per partition, the first offset not to read. A partition
/// absent from the map is not read at all.
pub type StopOffsets = BTreeMap<i32, i64>;

/// The running source; dropping it stops the thread at its next record or wait.
#[derive(Debug)]
pub struct SourceThread {
    cancel: watch::Sender<bool>,
}

impl Drop for SourceThread {
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
    }
}

/// Starts reading `consumer` into the lanes' channels `txs` on a thread of its own (see
/// [`pump`]).
///
/// # Errors
/// When the thread or its single-threaded tokio runtime cannot be created.
pub fn spawn(
    consumer: Arc<Consumer>,
    txs: Vec<mpsc::Sender<SourceRecord>>,
    metrics: super::RuntimeMetrics,
    stop: Option<StopOffsets>,
) -> std::io::Result<SourceThread> {
    let (cancel, cancelled) = watch::channel(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("doorstep-source".into())
        .spawn(move || runtime.block_on(pump(consumer, txs, metrics, stop, cancelled)))?;
    Ok(SourceThread { cancel })
}

/// Reads `consumer` into `txs` (record of partition `p` into `txs[p mod txs.len()]`, its
/// lane) until a receiver is gone or `cancelled` turns true, or, when `stop` is given, until
/// every partition reached its stop offset (then the channels close and the lanes drain and
/// return). A lane whose queue is full holds the others back: the consumer is shared. Errors from the consumer are logged and retried
/// after a pause (the broker may be restarting); they are never fatal.
async fn pump(
    consumer: Arc<Consumer>,
    txs: Vec<mpsc::Sender<SourceRecord>>,
    metrics: super::RuntimeMetrics,
    stop: Option<StopOffsets>,
    mut cancelled: watch::Receiver<bool>,
) {
    let mut open: Option<StopOffsets> =
        stop.map(|s| s.into_iter().filter(|(_, end)| *end > 0).collect());
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if open.as_ref().is_some_and(BTreeMap::is_empty) {
            return;
        }
        let next = tokio::select! {
            _ = cancelled.wait_for(|c| *c) => return,
            next = consumer.recv() => next,
        };
        match next {
            Ok(record) => {
                if let Some(since) = failing_since.take() {
                    metrics.source_unavailable.set(0);
                    tracing::info!(after = ?since.elapsed(), "Kafka broker reachable again");
                }
                if let Some(open) = open.as_mut() {
                    let Some(end) = open.get(&record.partition).copied() else {
                        continue;
                    };
                    if record.offset >= end {
                        open.remove(&record.partition);
                        continue;
                    }
                    if record.offset + 1 >= end {
                        open.remove(&record.partition);
                    }
                }
                let Some(tx) = txs.get(super::lane::lane_of(record.partition, txs.len())) else {
                    return;
                };
                let wait = std::time::Instant::now();
                let queued: usize = txs.iter().map(|t| t.max_capacity() - t.capacity()).sum();
                metrics
                    .queue_depth
                    .set(i64::try_from(queued).unwrap_or(i64::MAX));
                let sent = tokio::select! {
                    _ = cancelled.wait_for(|c| *c) => return,
                    sent = tx.send(record) => sent,
                };
                if sent.is_err() {
                    return;
                }
                metrics
                    .source_blocked_seconds
                    .inc_by(wait.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics.source_errors.inc();
                metrics.source_unavailable.set(1);
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                tracing::warn!(error = %e, waiting = ?since.elapsed(), "waiting for the Kafka broker");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}
