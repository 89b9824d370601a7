//! `EtaUpdate` ↔ `eta_update.avsc`.

use super::value::{Fields, long_u32, record, string, timestamp};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{EtaUpdate, topics};
use crate::model::OrderId;
use apache_avro::types::Value;

impl TopicRecord for EtaUpdate {
    const TOPIC: &'static str = topics::ORDER_ETA;
    const RECORD: &'static str = "io.doorstep.v1.EtaUpdate";
    const NOUN: &'static str = "an ETA update";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.order_id.as_str())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(format!(
            "eta:{}:{}",
            self.order_id,
            self.computed_at.as_millis()
        ))
    }
}

impl AvroRecord for EtaUpdate {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("order_id", string(self.order_id.as_str())),
            ("computed_at", timestamp(self.computed_at)),
            ("prep_remaining_s", Value::Double(self.prep_remaining_s)),
            ("pickup_travel_s", Value::Double(self.pickup_travel_s)),
            ("delivery_travel_s", Value::Double(self.delivery_travel_s)),
            (
                "estimated_delivery_at",
                timestamp(self.estimated_delivery_at),
            ),
            ("range_low_min", long_u32(self.range_low_min)),
            ("range_high_min", long_u32(self.range_high_min)),
            ("fallback", Value::Boolean(self.fallback)),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("EtaUpdate", value)?;
        Ok(Self {
            order_id: OrderId(f.string("order_id")?),
            computed_at: f.timestamp("computed_at")?,
            prep_remaining_s: f.double("prep_remaining_s")?,
            pickup_travel_s: f.double("pickup_travel_s")?,
            delivery_travel_s: f.double("delivery_travel_s")?,
            estimated_delivery_at: f.timestamp("estimated_delivery_at")?,
            range_low_min: f.long_u32("range_low_min")?,
            range_high_min: f.long_u32("range_high_min")?,
            fallback: f.boolean("fallback")?,
        })
    }
}
