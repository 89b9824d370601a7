//! `RejectedRecord` ↔ `rejected_record.avsc`. Raw key and value travel as Avro `bytes`.

use super::value::{Fields, optional, record, string, timestamp, to_bytes, to_string};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{RejectedRecord, topics};
use crate::model::{EventId, OrderId};
use apache_avro::types::Value;

impl TopicRecord for RejectedRecord {
    const TOPIC: &'static str = topics::ORDER_REJECTED;
    const RECORD: &'static str = "io.doorstep.v1.RejectedRecord";
    const NOUN: &'static str = "a reject record";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(self.topic_key())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.event_id_header())
    }
}

impl AvroRecord for RejectedRecord {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("source_topic", string(&self.source_topic)),
            ("source_partition", Value::Int(self.source_partition)),
            ("source_offset", Value::Long(self.source_offset)),
            (
                "original_key",
                optional(self.original_key.clone().map(Value::Bytes)),
            ),
            ("original_value", Value::Bytes(self.original_value.clone())),
            (
                "event_id",
                optional(self.event_id.as_ref().map(|id| string(id.as_str()))),
            ),
            (
                "order_id",
                optional(self.order_id.as_ref().map(|id| string(id.as_str()))),
            ),
            ("rejected_by", string(&self.rejected_by)),
            ("reason_code", string(&self.reason_code)),
            ("message", string(&self.message)),
            ("rejected_at", timestamp(self.rejected_at)),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("RejectedRecord", value)?;
        Ok(Self {
            source_topic: f.string("source_topic")?,
            source_partition: f.int("source_partition")?,
            source_offset: f.long("source_offset")?,
            original_key: f.optional("original_key", to_bytes)?,
            original_value: f.bytes("original_value")?,
            event_id: f.optional("event_id", to_string)?.map(EventId),
            order_id: f.optional("order_id", to_string)?.map(OrderId),
            rejected_by: f.string("rejected_by")?,
            reason_code: f.string("reason_code")?,
            message: f.string("message")?,
            rejected_at: f.timestamp("rejected_at")?,
        })
    }
}
