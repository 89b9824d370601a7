//! [`TopicRecord`]: what the codec can encode and decode. It is implemented for the seven topic
//! records (in `convert/`) and sealed: the conversions to Avro values are this crate's business.

use super::error::DomainError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The private half of [`TopicRecord`]: conversions to and from apache-avro values.
pub(crate) mod sealed {
    use super::DomainError;
    use apache_avro::types::Value;

    /// Conversions between a record and its Avro value (current schema).
    pub trait AvroRecord: Sized {
        /// The Avro value, for the current schema. Fails on values out of domain.
        fn to_avro(&self) -> Result<Value, DomainError>;
        /// The record from a value of the current schema. Fails on values out of domain.
        fn from_avro(value: Value) -> Result<Self, DomainError>;
        /// Appends the body for schema `version` without an Avro value, when the record has
        /// a direct codec for that version (`super::super::direct`); `None` otherwise.
        fn write_direct(
            &self,
            _version: u32,
            _out: &mut Vec<u8>,
        ) -> Option<Result<(), DomainError>> {
            None
        }
        /// Reads a body of schema `version` without an Avro value, when the record has a
        /// direct codec for that version and the body is a well-formed one in domain; `None`
        /// otherwise (the general way then reads it, or says why it cannot).
        fn read_direct(_version: u32, _body: &[u8]) -> Option<Self> {
            None
        }
    }
}

/// A record carried on a Doorstep topic, with its Avro contract.
pub trait TopicRecord:
    sealed::AvroRecord + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The topic it is carried on (see [`crate::events::topics`]).
    const TOPIC: &'static str;
    /// The full name of its Avro record (`io.doorstep.v1.OrderEvent`).
    const RECORD: &'static str;
    /// What one record is, for messages (`an order event`).
    const NOUN: &'static str;

    /// The Kafka key it is produced with (the order id for an order's records, the driver id
    /// for a ping, the recipient for a notification): a consumer refuses a record whose key
    /// is another, since the key chose its partition and so its ordering.
    fn key(&self) -> std::borrow::Cow<'_, str>;

    /// Its id, carried in the `event_id` header of the Kafka record so that consumers can
    /// drop a record they already have (empty when it has none, e.g. the reject of a record
    /// that did not decode).
    fn id(&self) -> std::borrow::Cow<'_, str>;
}
