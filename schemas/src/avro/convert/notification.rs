//! `Notification` ↔ `notification.avsc`.

use super::common::{enum_value, read_enum};
use super::value::{Fields, record, string, timestamp};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{Notification, topics};
use crate::model::OrderId;
use apache_avro::types::Value;

impl TopicRecord for Notification {
    const TOPIC: &'static str = topics::NOTIFICATIONS;
    const RECORD: &'static str = "io.doorstep.v1.Notification";
    const NOUN: &'static str = "a notification";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.recipient_id)
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.notification_id)
    }
}

impl AvroRecord for Notification {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("notification_id", string(&self.notification_id)),
            ("recipient_kind", enum_value(self.recipient_kind)),
            ("recipient_id", string(&self.recipient_id)),
            ("order_id", string(self.order_id.as_str())),
            ("status", enum_value(self.status)),
            ("message", string(&self.message)),
            ("created_at", timestamp(self.created_at)),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("Notification", value)?;
        Ok(Self {
            notification_id: f.string("notification_id")?,
            recipient_kind: f.with("recipient_kind", read_enum)?,
            recipient_id: f.string("recipient_id")?,
            order_id: OrderId(f.string("order_id")?),
            status: f.with("status", read_enum)?,
            message: f.string("message")?,
            created_at: f.timestamp("created_at")?,
        })
    }
}
