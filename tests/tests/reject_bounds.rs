//! A poison record near the broker's `message.max.bytes` (about 1 MB) no longer stalls its
//! partition: its reject record keeps the first 64 KiB of the value, with the full length and
//! SHA-256 in the message, so it fits on `orders.rejected.v1`; the records after it are
//! processed. Before, the reject (the whole value plus its metadata) was too large to produce,
//! the size error was taken for an outage, and the batch was retried forever.

use doorstep_pipelines::runtime::{Emitter, Output};
use doorstep_schemas::events::{RejectedRecord, topics};
use doorstep_tests::pipeline_harness::Scope;
use doorstep_tests::topic_reader::read_topic;
use sha2::{Digest, Sha256};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_poison_record_near_the_size_limit_is_rejected_bounded_and_the_partition_moves_on()
-> anyhow::Result<()> {
    let scope = Scope::new("reject_bounds", &[]).await?;
    let running = scope.start().await?;
    // Not Avro (no magic byte), just under the producer's 1,000,000-byte limit with its key.
    let big: Vec<u8> = (0..999_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    scope.produce_raw("o-big", &big).await?;
    scope.produce_raw("o-small", b"not avro either").await?;
    let rejects = read_topic::<RejectedRecord>(
        &scope.config.endpoints.kafka_brokers,
        &scope.topic(topics::ORDER_REJECTED),
        2,
        WAIT,
    )
    .await?;
    let big_reject = rejects
        .iter()
        .find(|r| r.value.original_key.as_deref() == Some(&b"o-big"[..]))
        .map(|r| &r.value)
        .ok_or_else(|| anyhow::anyhow!("no reject for the big record: {rejects:?}"))?;
    assert_eq!(big_reject.reason_code, "undecodable");
    assert_eq!(big_reject.original_value.len(), 64 * 1024);
    assert_eq!(&big_reject.original_value[..], &big[..64 * 1024]);
    let hash: String = Sha256::digest(&big)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(
        big_reject.message.ends_with(&format!(
            "[original value truncated to 65536 of 999000 bytes; sha256 {hash}]"
        )),
        "{}",
        big_reject.message
    );
    let small = rejects
        .iter()
        .find(|r| r.value.original_key.as_deref() == Some(&b"o-small"[..]))
        .ok_or_else(|| anyhow::anyhow!("the record after the big one was not processed"))?;
    assert_eq!(small.value.original_value, b"not avro either".to_vec());
    running.stop().await?;
    Ok(())
}

/// A record larger than `message.max.bytes` is a fatal error for its batch (the runtime then
/// isolates the record), not an outage to wait out: before, every produce failure was
/// retriable and such a batch was retried forever.
#[tokio::test]
async fn a_record_too_large_to_produce_is_not_retriable() -> anyhow::Result<()> {
    let scope = Scope::new("too_large", &[]).await?;
    let kafka = doorstep_pipelines::assemble::kafka_config(&scope.config, "doorstep-tests");
    let producer = doorstep_connectors::kafka::Producer::new(&kafka)?;
    let topic = scope.topic(topics::ORDER_REJECTED);
    let big = vec![0u8; 1_100_000];
    let emitter = Emitter::new(producer, doorstep_tests::catalog().await?);
    let output = |id: &str, value: Vec<u8>| Output {
        topic: topic.clone(),
        key: "k".to_owned(),
        id: id.to_owned(),
        value,
    };
    let e = emitter
        .send_all(&[output("e-1", big)])
        .await
        .expect_err("a 1.1 MB record cannot be produced");
    assert!(!e.is_retriable(), "{e}");
    // A record of an ordinary size still goes through.
    emitter.send_all(&[output("e-2", b"ok".to_vec())]).await?;
    Ok(())
}
