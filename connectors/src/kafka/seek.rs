//! Finding where a point in time falls in a topic, for replays: the broker's
//! offsets-for-times (ListOffsets by timestamp), with a scan of the records as a fallback for
//! brokers that lack it.

use super::{Error, KafkaConfig, TracingContext};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How an offset for a time was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// The broker's time index (ListOffsets with a timestamp).
    Broker,
    /// Reading the partition's records until the first one at or after the time.
    Scan,
}

/// A partition's bounds for a time range: read from `start` (inclusive) to `end`
/// (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// Partition.
    pub partition: i32,
    /// First offset to read.
    pub start: i64,
    /// First offset not to read.
    pub end: i64,
}

impl PartitionRange {
    /// Records in the range.
    pub fn len(&self) -> i64 {
        (self.end - self.start).max(0)
    }

    /// Whether the range holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Looks up offsets by time in one topic. Blocking librdkafka calls run on tokio's blocking
/// pool.
#[derive(Clone)]
pub struct TopicSeeker {
    consumer: Arc<BaseConsumer<TracingContext>>,
    config: KafkaConfig,
    topic: String,
    timeout: Duration,
}

impl std::fmt::Debug for TopicSeeker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicSeeker")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl TopicSeeker {
    /// A seeker for `topic`; does not contact the broker yet.
    pub fn new(config: &KafkaConfig, topic: impl Into<String>) -> Result<Self, Error> {
        let consumer = Self::base_consumer(config)?;
        Ok(Self {
            consumer: Arc::new(consumer),
            config: config.clone(),
            topic: topic.into(),
            timeout: Duration::from_secs(10),
        })
    }

    fn base_consumer(config: &KafkaConfig) -> Result<BaseConsumer<TracingContext>, Error> {
        // A group id is required by librdkafka for some requests; this one never joins.
        config
            .consumer(
                &format!("{}.seek", config.client_id),
                super::OffsetReset::Earliest,
            )
            .create_with_context(TracingContext::new(&config.client_id))
            .map_err(Error::Config)
    }

    /// The topic's partitions, sorted.
    pub async fn partitions(&self) -> Result<Vec<i32>, Error> {
        let (consumer, topic, timeout) = (self.consumer.clone(), self.topic.clone(), self.timeout);
        let brokers = self.config.brokers.clone();
        blocking(move || {
            let md = consumer
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|source| Error::Unreachable {
                    brokers,
                    timeout,
                    source,
                })?;
            let mut ps: Vec<i32> = md
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            ps.sort_unstable();
            Ok(ps)
        })
        .await
    }

    /// Low and high watermark (first offset, next offset to be written) of `partition`.
    pub async fn watermarks(&self, partition: i32) -> Result<(i64, i64), Error> {
        let (consumer, topic, timeout) = (self.consumer.clone(), self.topic.clone(), self.timeout);
        blocking(move || {
            consumer
                .fetch_watermarks(&topic, partition, timeout)
                .map_err(Error::Consume)
        })
        .await
    }

    /// For every partition, the first offset whose record timestamp is at or after `at_ms`
    /// (the high watermark when there is none), asking the broker's time index. `Err` when the
    /// broker cannot answer by time (use [`scan_for_time`](Self::scan_for_time)).
    pub async fn offsets_for_time(&self, at_ms: i64) -> Result<Vec<(i32, i64)>, Error> {
        let partitions = self.partitions().await?;
        let (consumer, topic, timeout) = (self.consumer.clone(), self.topic.clone(), self.timeout);
        let answer = blocking(move || {
            let mut tpl = TopicPartitionList::new();
            for p in &partitions {
                tpl.add_partition_offset(&topic, *p, Offset::Offset(at_ms))
                    .map_err(Error::Consume)?;
            }
            let found = consumer
                .offsets_for_times(tpl, timeout)
                .map_err(Error::Consume)?;
            let mut out = Vec::with_capacity(partitions.len());
            for e in found.elements() {
                e.error().map_err(Error::Consume)?;
                let offset = match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    // No record at or after the time.
                    Offset::End | Offset::Invalid => None,
                    Offset::Offset(_) => None,
                    other => {
                        return Err(Error::Task(format!(
                            "unexpected offset {other:?} for {topic}[{}]",
                            e.partition()
                        )));
                    }
                };
                let (_, high) = consumer
                    .fetch_watermarks(&topic, e.partition(), timeout)
                    .map_err(Error::Consume)?;
                out.push((e.partition(), offset.unwrap_or(high).min(high)));
            }
            out.sort_unstable();
            Ok(out)
        })
        .await?;
        Ok(answer)
    }

    /// [`offsets_for_time`](Self::offsets_for_time) found by reading each partition from its
    /// low watermark until the first record at or after `at_ms`. Exact even when timestamps
    /// are not monotonic (it returns the first such record), but reads up to the whole topic.
    pub async fn scan_for_time(&self, at_ms: i64) -> Result<Vec<(i32, i64)>, Error> {
        let mut out = Vec::new();
        for p in self.partitions().await? {
            let (low, high) = self.watermarks(p).await?;
            let (config, topic, timeout) = (self.config.clone(), self.topic.clone(), self.timeout);
            let offset =
                blocking(move || scan_partition(&config, &topic, p, low, high, at_ms, timeout))
                    .await?;
            out.push((p, offset));
        }
        Ok(out)
    }

    /// The offsets for `at_ms`, from the broker when it can, otherwise by scanning; says
    /// which. `force_scan` skips the broker.
    pub async fn locate(
        &self,
        at_ms: i64,
        force_scan: bool,
    ) -> Result<(Vec<(i32, i64)>, Lookup), Error> {
        if !force_scan {
            match self.offsets_for_time(at_ms).await {
                Ok(found) => return Ok((found, Lookup::Broker)),
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "the broker cannot look offsets up by time; scanning the records instead");
                }
            }
        }
        Ok((self.scan_for_time(at_ms).await?, Lookup::Scan))
    }

    /// The range of every partition between `from_ms` (inclusive; `None` = the beginning)
    /// and `until_ms` (exclusive; `None` = the end as of now).
    pub async fn ranges(
        &self,
        from_ms: Option<i64>,
        until_ms: Option<i64>,
        force_scan: bool,
    ) -> Result<(Vec<PartitionRange>, Option<Lookup>), Error> {
        let mut lookup = None;
        let starts = match from_ms {
            Some(t) => {
                let (found, how) = self.locate(t, force_scan).await?;
                lookup = Some(how);
                found
            }
            None => {
                let mut v = Vec::new();
                for p in self.partitions().await? {
                    v.push((p, self.watermarks(p).await?.0));
                }
                v
            }
        };
        let ends = match until_ms {
            Some(t) => {
                let (found, how) = self.locate(t, force_scan).await?;
                lookup = Some(how);
                found
            }
            None => {
                let mut v = Vec::new();
                for p in self.partitions().await? {
                    v.push((p, self.watermarks(p).await?.1));
                }
                v
            }
        };
        let ranges = starts
            .iter()
            .map(|(p, start)| {
                let end = ends
                    .iter()
                    .find(|(q, _)| q == p)
                    .map_or(*start, |(_, e)| *e);
                PartitionRange {
                    partition: *p,
                    start: *start,
                    end: end.max(*start),
                }
            })
            .collect();
        Ok((ranges, lookup))
    }
}

/// Reads `topic[partition]` from `low` until a record at or after `at_ms`; `high` when none.
fn scan_partition(
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
    low: i64,
    high: i64,
    at_ms: i64,
    timeout: Duration,
) -> Result<i64, Error> {
    if low >= high {
        return Ok(high);
    }
    let consumer = TopicSeeker::base_consumer(config)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(low))
        .map_err(Error::Consume)?;
    consumer.assign(&tpl).map_err(Error::Consume)?;
    let mut last_progress = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let ts = m.timestamp().to_millis().unwrap_or(i64::MIN);
                if ts >= at_ms {
                    return Ok(m.offset());
                }
                if m.offset() + 1 >= high {
                    return Ok(high);
                }
            }
            Some(Err(e)) => return Err(Error::Consume(e)),
            None if last_progress.elapsed() > timeout => {
                return Err(Error::Task(format!(
                    "scanning {topic}[{partition}] for time {at_ms}: no record within {timeout:?}"
                )));
            }
            None => {}
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_never_go_backwards() {
        let r = PartitionRange {
            partition: 0,
            start: 5,
            end: 3,
        };
        assert_eq!(r.len(), 0);
        assert!(r.is_empty());
        let r = PartitionRange {
            partition: 0,
            start: 5,
            end: 9,
        };
        assert_eq!(r.len(), 4);
    }
}
