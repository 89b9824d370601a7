//! The one way a stage writes records to Kafka: all of a batch's records concurrently, each
//! with its event id header, returning once the broker acknowledged every one.

use super::StageError;
use doorstep_connectors::kafka::Producer;
use futures::future::try_join_all;

/// Produces `(topic, key, event id, value)` records and waits for every acknowledgement; a
/// failure is a retriable [`StageError`] (the runtime offers the batch again), except a record
/// refused for its size, which no retry can deliver: that is fatal for the batch, so the
/// runtime isolates the record that causes it.
pub async fn produce_all<'a, I>(producer: &Producer, records: I) -> Result<(), StageError>
where
    I: IntoIterator<Item = (&'a str, &'a str, &'a str, &'a [u8])>,
{
    try_join_all(
        records
            .into_iter()
            .map(|(topic, key, id, bytes)| async move {
                producer
                    .send(topic, key.as_bytes(), bytes, &[("event_id", id.as_bytes())])
                    .await
                    .map_err(StageError::from)
            }),
    )
    .await?;
    Ok(())
}
