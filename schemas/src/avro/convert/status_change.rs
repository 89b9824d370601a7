//! `StatusChange` ↔ `status_change.avsc`.

use super::common::{actor, enum_value, read_actor, read_enum};
use super::value::{Fields, long_u32, optional, record, string, timestamp, to_long, to_string};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{StatusChange, topics};
use crate::model::{CustomerId, DriverId, EventId, OrderId, RestaurantId};
use apache_avro::types::Value;

impl TopicRecord for StatusChange {
    const TOPIC: &'static str = topics::ORDER_STATUS;
    const RECORD: &'static str = "io.doorstep.v1.StatusChange";
    const NOUN: &'static str = "a status change";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.order_id.as_str())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.event_id.as_str())
    }
}

impl AvroRecord for StatusChange {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("event_id", string(self.event_id.as_str())),
            ("order_id", string(self.order_id.as_str())),
            ("seq", long_u32(self.seq)),
            ("kind", enum_value(self.kind)),
            ("from", optional(self.from.map(enum_value))),
            ("to", enum_value(self.to)),
            ("actor", actor(&self.actor)),
            ("reason", optional(self.reason.as_deref().map(string))),
            ("customer_id", string(self.customer_id.as_str())),
            ("restaurant_id", string(self.restaurant_id.as_str())),
            (
                "driver_id",
                optional(self.driver_id.as_ref().map(|id| string(id.as_str()))),
            ),
            ("refund_cents", optional(self.refund_cents.map(Value::Long))),
            ("at", timestamp(self.at)),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("StatusChange", value)?;
        Ok(Self {
            event_id: EventId(f.string("event_id")?),
            order_id: OrderId(f.string("order_id")?),
            seq: f.long_u32("seq")?,
            kind: f.with("kind", read_enum)?,
            from: f.optional("from", read_enum)?,
            to: f.with("to", read_enum)?,
            actor: f.with("actor", read_actor)?,
            reason: f.optional("reason", to_string)?,
            customer_id: CustomerId(f.string("customer_id")?),
            restaurant_id: RestaurantId(f.string("restaurant_id")?),
            driver_id: f.optional("driver_id", to_string)?.map(DriverId),
            refund_cents: f.optional("refund_cents", to_long)?,
            at: f.timestamp("at")?,
        })
    }
}
