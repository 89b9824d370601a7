//! The ETA pipeline seen from outside during a crash run ([`crate::crash_kit::CrashRun`]):
//! its consumer group on `orders.status.v1`, its `orders.eta.v1` records, and the end-state
//! check after kills.
//!
//! ETAs depend on the clock and on routing, so a faulted run cannot be compared with the
//! fault-free one value by value. What must hold instead is what the kills could break: every
//! order still active at the end has its durable timer, an ETA on its row and a current ETA
//! computed *after the last restart* (its timer moved to the new process and fires), and
//! every finished order has neither a timer nor a current ETA (no order recomputed forever).

use crate::crash_kit::{Expected, GroupProbe, Identity, TopicLog, follow};
use crate::pipeline_harness::{Scope, TEST_PARTITIONS};
use anyhow::ensure;
use doorstep_connectors::live_feed::LiveFeed;
use doorstep_pipelines::eta::TIMER_KIND;
use doorstep_schemas::events::{EtaUpdate, topics};
use doorstep_schemas::model::{OrderId, Timestamp};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

impl Identity for EtaUpdate {
    fn identity(&self) -> (String, u32) {
        (
            format!("{}@{}", self.order_id, self.computed_at.as_millis()),
            0,
        )
    }
}

/// What the run observes of the ETA pipeline.
pub struct EtaWatch {
    /// The ETA pipeline's consumer group on `orders.status.v1`.
    pub group: GroupProbe,
    /// Every record of `orders.eta.v1`.
    pub log: TopicLog<EtaUpdate>,
    /// When the ETA process was last started (milliseconds).
    pub started_ms: i64,
    /// The recomputation period the processes run with.
    pub interval: Duration,
}

/// What the end-state check found.
#[derive(Debug, Default)]
pub struct EtaReport {
    /// Orders active at the end.
    pub active: usize,
    /// Orders finished (delivered or cancelled).
    pub finished: usize,
    /// Records on `orders.eta.v1`.
    pub records: usize,
}

impl EtaWatch {
    /// Observes the ETA pipeline of `scope`, recomputing every `interval`.
    ///
    /// # Errors
    /// When an observer cannot be started.
    pub async fn new(scope: &Scope, interval: Duration) -> anyhow::Result<Self> {
        let brokers = &scope.config.endpoints.kafka_brokers;
        Ok(Self {
            group: GroupProbe::new(
                brokers,
                &scope.config.group_id("eta"),
                &scope.topic(topics::ORDER_STATUS),
            )?,
            log: follow(brokers, &scope.topic(topics::ORDER_ETA)).await?,
            started_ms: Timestamp::now().as_millis(),
            interval,
        })
    }

    /// Checks the end state against `expected` (see the module docs); waits up to three
    /// periods plus 30 s for the last restarted process to recompute every active order.
    ///
    /// # Errors
    /// When a timer, a current ETA or a row's ETA is missing or left over.
    pub async fn check(&self, scope: &Scope, expected: &Expected) -> anyhow::Result<EtaReport> {
        let redis = doorstep_pipelines::assemble::redis(&scope.config).await?;
        let live = LiveFeed::new(redis, scope.config.redis_key_prefix.clone());
        let store = scope.store().await?;
        let ids = |finished: bool| -> Vec<&OrderId> {
            expected
                .states
                .iter()
                .filter(|(_, s)| s.order.status.is_final() == finished)
                .map(|(id, _)| id)
                .collect()
        };
        let (finished, active) = (ids(true), ids(false));

        let end = Instant::now() + self.interval * 3 + Duration::from_secs(30);
        let mut stale: Vec<String>;
        loop {
            stale = Vec::new();
            for id in &active {
                match live.eta(id).await? {
                    Some(e) if e.computed_at.as_millis() >= self.started_ms => {}
                    Some(e) => stale.push(format!("{id} (last computed {})", e.computed_at)),
                    None => stale.push(format!("{id} (no current ETA)")),
                }
            }
            if stale.is_empty() || Instant::now() >= end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        ensure!(
            stale.is_empty(),
            "{} of {} active orders not recomputed since the last restart of the ETA pipeline (their timers were lost?), e.g. {:?}",
            stale.len(),
            active.len(),
            &stale[..stale.len().min(5)]
        );

        ensure!(
            self.log.duplicates() == 0,
            "{} duplicate records on orders.eta.v1 (exactly-once broken)",
            self.log.duplicates()
        );
        let mut left = Vec::new();
        for id in &finished {
            if let Some(e) = live.eta(id).await? {
                left.push(format!("{id} (computed {})", e.computed_at));
            }
        }
        ensure!(
            left.is_empty(),
            "{} finished orders still have a current ETA, e.g. {:?}",
            left.len(),
            &left[..left.len().min(5)]
        );

        let mut timers = BTreeSet::new();
        for p in 0..TEST_PARTITIONS {
            for t in store.timers(p).await? {
                if t.kind == TIMER_KIND {
                    timers.insert(t.order_id);
                }
            }
        }
        let want: BTreeSet<OrderId> = active.iter().map(|id| (*id).clone()).collect();
        ensure!(
            timers == want,
            "ETA timers differ from the active orders: missing {:?}, left over {:?}",
            want.difference(&timers).take(5).collect::<Vec<_>>(),
            timers.difference(&want).take(5).collect::<Vec<_>>()
        );

        let mut unset = Vec::new();
        for id in &active {
            let row = store.load(id).await?;
            if row.is_none_or(|s| s.order.estimated_delivery_at.is_none()) {
                unset.push((*id).clone());
            }
        }
        ensure!(
            unset.is_empty(),
            "active orders without an ETA on their row: {unset:?}"
        );

        Ok(EtaReport {
            active: active.len(),
            finished: finished.len(),
            records: crate::crash_kit::lock(&self.log.records).len(),
        })
    }
}
