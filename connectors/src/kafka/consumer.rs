//! Consumer-group member with explicit, manual commits.

use super::context::describe;
use super::fence::{Epoch, RebalanceFence, TopicPartition};
use super::{Error, KafkaConfig, OffsetReset, TracingContext};
use rdkafka::consumer::{CommitMode, Consumer as _, ConsumerGroupMetadata, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

/// One consumed record, owned (detached from librdkafka's buffers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// Topic it was read from.
    pub topic: String,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset; pass it to [`Consumer::commit`] once processed.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Vec<u8>>,
    /// Its value, if any (`None` is a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Its headers in order; a header with no value has an empty value here.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Create or log-append time, milliseconds since the Unix epoch, when the broker set one.
    pub timestamp_ms: Option<i64>,
    /// The assignment of its partition it was read under (see [`RebalanceFence`]): once the
    /// partition is revoked, or revoked and assigned again, the record is stale and its
    /// partition is read again from the committed offset.
    pub epoch: Epoch,
}

impl Record {
    /// A record built in memory rather than read from a broker (tests and tools): no
    /// headers, no timestamp, epoch 0.
    pub fn new(
        topic: impl Into<String>,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
    ) -> Self {
        Self {
            topic: topic.into(),
            partition,
            offset,
            key,
            payload,
            headers: Vec::new(),
            timestamp_ms: None,
            epoch: 0,
        }
    }

    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    fn from_message(m: &BorrowedMessage<'_>, epoch: Epoch) -> Self {
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: m.timestamp().to_millis(),
            epoch,
        }
    }
}

/// Builds a [`Consumer`]: group, start position, topics.
#[derive(Debug, Clone)]
pub struct ConsumerBuilder {
    config: KafkaConfig,
    group_id: String,
    reset: OffsetReset,
}

impl ConsumerBuilder {
    /// A member of consumer group `group_id`.
    pub fn new(config: &KafkaConfig, group_id: impl Into<String>) -> Self {
        Self {
            config: config.clone(),
            group_id: group_id.into(),
            reset: OffsetReset::default(),
        }
    }

    /// Where to start when the group has no committed offset (default: earliest).
    pub fn offset_reset(mut self, reset: OffsetReset) -> Self {
        self.reset = reset;
        self
    }

    /// Creates the consumer and subscribes it to `topics`. Partitions are assigned once the
    /// group has rebalanced, on the first [`Consumer::recv`]. On a rebalance, partitions
    /// leave only when the consumer's [`fence`](Consumer::fence) has no batch of theirs in
    /// flight.
    pub fn subscribe(self, topics: &[&str]) -> Result<Consumer, Error> {
        let fence = RebalanceFence::new();
        let context = TracingContext::new(&self.config.client_id)
            .with_fence(fence.clone(), self.config.handover_bound);
        let inner: StreamConsumer<TracingContext> = self
            .config
            .consumer(&self.group_id, self.reset)
            .create_with_context(context)
            .map_err(Error::Config)?;
        inner.subscribe(topics).map_err(|source| Error::Subscribe {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            source,
        })?;
        tracing::info!(group = %self.group_id, ?topics, brokers = %self.config.brokers, "Kafka consumer subscribed");
        Ok(Consumer {
            inner: Arc::new(inner),
            paused: Mutex::default(),
            group_id: self.group_id,
            fence,
        })
    }
}

impl ConsumerBuilder {
    /// Creates the consumer and assigns it the `(topic, partition, first offset)` positions
    /// directly: no group membership or rebalance (replays read fixed ranges); commits still
    /// go to the builder's group id.
    pub fn assign(self, positions: &[(&str, i32, i64)]) -> Result<Consumer, Error> {
        let inner: StreamConsumer<TracingContext> = self
            .config
            .consumer(&self.group_id, self.reset)
            .create_with_context(TracingContext::new(&self.config.client_id))
            .map_err(Error::Config)?;
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for (topic, partition, offset) in positions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|source| Error::Subscribe {
                    topics: vec![(*topic).to_owned()],
                    source,
                })?;
        }
        inner.assign(&tpl).map_err(|source| Error::Subscribe {
            topics: positions.iter().map(|(t, ..)| (*t).to_owned()).collect(),
            source,
        })?;
        tracing::info!(group = %self.group_id, positions = %describe(&tpl), "Kafka consumer assigned");
        let fence = RebalanceFence::new();
        fence.assign(
            &positions
                .iter()
                .map(|(topic, partition, _)| TopicPartition::new(*topic, *partition))
                .collect::<Vec<_>>(),
        );
        Ok(Consumer {
            inner: Arc::new(inner),
            paused: Mutex::default(),
            group_id: self.group_id,
            fence,
        })
    }
}

/// A consumer-group member that never commits on its own.
///
/// Read with [`recv`](Self::recv); after a record's effects are durable, commit it with
/// [`commit`](Self::commit). A restarted member of the same group resumes right after the last
/// committed offset of each partition.
pub struct Consumer {
    inner: Arc<StreamConsumer<TracingContext>>,
    group_id: String,
    fence: RebalanceFence,
    /// Partitions paused by [`pause_assigned`](Consumer::pause_assigned) and not resumed
    /// yet: librdkafka keeps a partition's pause across a revoke and a new assignment, so
    /// resuming only what is assigned at that moment could leave one paused for good.
    paused: Mutex<BTreeSet<(String, i32)>>,
}

/// The consumer group's identity and generation as of one moment, for committing offsets
/// inside a producer transaction ([`Producer::commit`](super::Producer::commit)): the group
/// coordinator refuses them once the group has moved to a newer generation, which fences a
/// member that lost its partitions.
#[derive(Clone)]
pub struct GroupMetadata(Arc<ConsumerGroupMetadata>);

impl std::fmt::Debug for GroupMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupMetadata")
    }
}

impl GroupMetadata {
    pub(crate) fn raw(&self) -> &ConsumerGroupMetadata {
        &self.0
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

impl Consumer {
    /// The consumer group this member belongs to.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The fence that holds this consumer's partitions back on a rebalance while a batch of
    /// theirs is in flight.
    pub fn fence(&self) -> &RebalanceFence {
        &self.fence
    }

    /// The group's current identity and generation; `None` for a consumer that was assigned
    /// partitions without joining a group.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        self.inner
            .group_metadata()
            .map(|m| GroupMetadata(Arc::new(m)))
    }

    /// The partitions of `topic` assigned to this consumer now, each with the epoch of its
    /// assignment (a record of an earlier epoch is stale).
    pub fn assigned(&self, topic: &str) -> BTreeMap<i32, Epoch> {
        self.fence.assigned(topic)
    }

    /// Records not yet read over this consumer's partitions (high watermark minus position),
    /// asking the brokers for the watermarks; `None` when the position cannot be read.
    /// Blocking: call it from a blocking thread.
    pub fn lag_blocking(&self, timeout: std::time::Duration) -> Option<i64> {
        let positions = self.inner.position().ok()?;
        let mut lag = 0i64;
        for e in positions.elements() {
            let Offset::Offset(pos) = e.offset() else {
                continue;
            };
            if let Ok((_, high)) = self
                .inner
                .fetch_watermarks(e.topic(), e.partition(), timeout)
            {
                lag += (high - pos).max(0);
            }
        }
        Some(lag)
    }

    /// Waits for the next record, stamped with the epoch of its partition's assignment.
    /// Cancel-safe: dropping the future loses no record.
    ///
    /// The stamp is exact when one thread reads the consumer: rebalance callbacks run inside
    /// `recv` on the reading thread, so a record returned after a callback was fetched under
    /// the assignment that callback made.
    pub async fn recv(&self) -> Result<Record, Error> {
        let message = self.inner.recv().await.map_err(Error::Consume)?;
        let epoch = self
            .fence
            .epoch(&TopicPartition::new(message.topic(), message.partition()))
            .unwrap_or_default();
        Ok(Record::from_message(&message, epoch))
    }

    /// Stops fetching the partitions assigned now, so that a reader whose downstream is full
    /// can go on calling [`recv`](Self::recv) — which serves the group's heartbeats and
    /// rebalances — without taking more than the records already fetched. Partitions assigned
    /// later are not paused (pause again to cover them).
    pub fn pause_assigned(&self) -> Result<(), Error> {
        let assigned = self.inner.assignment().map_err(Error::Consume)?;
        self.inner.pause(&assigned).map_err(Error::Consume)?;
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        for e in assigned.elements() {
            paused.insert((e.topic().to_owned(), e.partition()));
        }
        Ok(())
    }

    /// Fetches again every partition [`pause_assigned`](Self::pause_assigned) paused, whether
    /// it is still assigned, was revoked, or was revoked and assigned again meanwhile.
    pub fn resume_paused(&self) -> Result<(), Error> {
        let mut paused = self.paused.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tpl = TopicPartitionList::with_capacity(paused.len());
        for (topic, partition) in paused.iter() {
            tpl.add_partition(topic, *partition);
        }
        self.inner.resume(&tpl).map_err(Error::Consume)?;
        paused.clear();
        Ok(())
    }

    /// Commits `offset` as processed for `topic[partition]`, synchronously with the group
    /// coordinator: `offset` is the offset of the last record processed, so the group resumes
    /// at `offset + 1`.
    pub async fn commit(&self, topic: &str, partition: i32, offset: i64) -> Result<(), Error> {
        self.commit_all(&[(topic, partition, offset)]).await
    }

    /// Commits several `(topic, partition, last processed offset)` positions in one request.
    pub async fn commit_all(&self, positions: &[(&str, i32, i64)]) -> Result<(), Error> {
        let mut tpl = TopicPartitionList::with_capacity(positions.len());
        for (topic, partition, offset) in positions {
            let next = offset.saturating_add(1);
            tpl.add_partition_offset(topic, *partition, Offset::Offset(next))
                .map_err(|source| Error::Commit {
                    offsets: format!("{topic}[{partition}]@{next}"),
                    source,
                })?;
        }
        let offsets = describe(&tpl);
        let consumer = Arc::clone(&self.inner);
        // A synchronous commit blocks until the coordinator answers: keep it off the runtime.
        let result = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        match result {
            Ok(()) => {
                tracing::debug!(group = %self.group_id, %offsets, "offsets committed");
                Ok(())
            }
            Err(source) => Err(Error::Commit { offsets, source }),
        }
    }

    /// The committed offset (next record to read) of `topic[partition]` for this group, or
    /// `None` when the group has not committed there yet.
    pub async fn committed(
        &self,
        topic: &str,
        partition: i32,
        timeout: std::time::Duration,
    ) -> Result<Option<i64>, Error> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let consumer = Arc::clone(&self.inner);
        let result = tokio::task::spawn_blocking(move || consumer.committed_offsets(tpl, timeout))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        let tpl = result.map_err(Error::Consume)?;
        Ok(tpl
            .find_partition(topic, partition)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0))
    }

    /// The underlying rdkafka consumer, for what this wrapper does not cover.
    pub fn inner(&self) -> &StreamConsumer<TracingContext> {
        &self.inner
    }
}
