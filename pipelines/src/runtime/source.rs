//! The source: reads the Kafka consumer on a thread of its own and feeds each lane's bounded
//! channel with the records of its partitions.
//!
//! The consumer's rebalance callback runs on the thread that reads it, and a revoke blocks
//! there until the batch in flight has committed or aborted (the rebalance fence). A thread
//! of its own keeps that wait off the threads the stage runs on, whatever the process's
//! tokio runtime.

use doorstep_connectors::kafka::{Consumer, Record};
use std::collections::{BTreeMap, VecDeque};
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
/// return). Errors from the consumer are logged and retried after a pause (the broker may be
/// restarting); they are never fatal.
///
/// Backpressure without starving the group: when a lane's queue is full, the record is held
/// here, the assigned partitions are paused, and the consumer is still read, so that its
/// heartbeats and rebalances are served (a consumer left unread while its lanes wait on a
/// sink would be dropped from the group and could never commit again). What arrives while
/// paused (records fetched before the pause, or of partitions assigned meanwhile) is held
/// behind, in order; the partitions are resumed once everything held is handed over. The
/// held records are bounded by what the consumer had fetched ahead.
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
    let mut held: VecDeque<SourceRecord> = VecDeque::new();
    let mut blocked_since: Option<std::time::Instant> = None;
    loop {
        // Hand over what is held, in order, as far as the lanes take it.
        while let Some(record) = held.pop_front() {
            let Some(tx) = txs.get(super::lane::lane_of(record.partition, txs.len())) else {
                return;
            };
            match tx.try_send(record) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(record)) => {
                    held.push_front(record);
                    break;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        // Held behind a full lane: stop fetching until everything held is handed over.
        if !held.is_empty() && blocked_since.is_none() {
            blocked_since = Some(std::time::Instant::now());
            pause(&consumer);
        }
        let queued: usize = txs.iter().map(|t| t.max_capacity() - t.capacity()).sum();
        metrics
            .queue_depth
            .set(i64::try_from(queued + held.len()).unwrap_or(i64::MAX));
        if held.is_empty()
            && let Some(since) = blocked_since.take()
        {
            if let Err(e) = consumer.resume_assigned() {
                tracing::warn!(error = %e, "resuming the source partitions failed; trying again");
                blocked_since = Some(since);
            } else {
                metrics
                    .source_blocked_seconds
                    .inc_by(since.elapsed().as_secs_f64());
            }
        }
        if open.as_ref().is_some_and(BTreeMap::is_empty) && held.is_empty() {
            return;
        }
        let next = tokio::select! {
            _ = cancelled.wait_for(|c| *c) => return,
            // While holding records, look again soon whether a lane has room.
            () = tokio::time::sleep(HANDOVER_POLL), if !held.is_empty() => continue,
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
                held.push_back(record);
                // A record arriving while paused was fetched before the pause, or belongs to
                // a partition assigned meanwhile: pause again, which covers the latter.
                if blocked_since.is_some() {
                    pause(&consumer);
                }
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

/// Pauses the consumer's assigned partitions; a failure is logged (the records keep coming,
/// and are held, until a later pause takes).
fn pause(consumer: &Consumer) {
    if let Err(e) = consumer.pause_assigned() {
        tracing::warn!(error = %e, "pausing the source partitions failed");
    }
}

/// How often held records are offered to their lanes again while the lanes are full.
const HANDOVER_POLL: std::time::Duration = std::time::Duration::from_millis(20);
