//! `TrackingUpdate` ↔ `tracking_update.avsc` (version 2; version 1 lacks `status_seq`).

use super::common::{
    enum_index, enum_value, geo_point, read_direct_enum, read_direct_geo_point, read_enum,
    read_geo_point, write_geo_point,
};
use super::value::{Fields, long_u32, optional, record, string, timestamp, to_string, to_u32};
use crate::avro::direct::{self, Direct, Reader};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::topics;
use crate::model::{DriverId, EventId, OrderId, Timestamp, TrackingUpdate};
use apache_avro::types::Value;

impl TopicRecord for TrackingUpdate {
    const TOPIC: &'static str = topics::ORDER_TRACKING;
    const RECORD: &'static str = "io.doorstep.v1.TrackingUpdate";
    const NOUN: &'static str = "a tracking update";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.order_id.as_str())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.update_id.as_str())
    }
}

impl AvroRecord for TrackingUpdate {
    fn to_avro(&self) -> Result<Value, DomainError> {
        let location = match &self.driver_location {
            Some(p) => Some(geo_point("driver_location", p)?),
            None => None,
        };
        Ok(record([
            ("update_id", string(self.update_id.as_str())),
            ("order_id", string(self.order_id.as_str())),
            (
                "driver_id",
                optional(self.driver_id.as_ref().map(|id| string(id.as_str()))),
            ),
            ("driver_location", optional(location)),
            ("timestamp", timestamp(self.timestamp)),
            ("event_type", enum_value(self.event_type)),
            ("status", optional(self.status.map(enum_value))),
            ("status_seq", optional(self.status_seq.map(long_u32))),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("TrackingUpdate", value)?;
        Ok(Self {
            update_id: EventId(f.string("update_id")?),
            order_id: OrderId(f.string("order_id")?),
            driver_id: f.optional("driver_id", to_string)?.map(DriverId),
            driver_location: f.optional("driver_location", read_geo_point)?,
            timestamp: f.timestamp("timestamp")?,
            event_type: f.with("event_type", read_enum)?,
            status: f.optional("status", read_enum)?,
            status_seq: f.optional("status_seq", to_u32)?,
        })
    }

    fn write_direct(&self, version: u32, out: &mut Vec<u8>) -> Option<Result<(), DomainError>> {
        self.write_version(version, out)
    }

    fn read_direct(version: u32, body: &[u8]) -> Option<Self> {
        Self::read_version(version, body)
    }
}

impl Direct for TrackingUpdate {
    const VERSION: u32 = 2;

    fn write(&self, out: &mut Vec<u8>) -> Result<(), DomainError> {
        direct::string(out, self.update_id.as_str());
        direct::string(out, self.order_id.as_str());
        direct::optional(out, self.driver_id.as_ref(), |out, id| {
            direct::string(out, id.as_str());
            Ok(())
        })?;
        direct::optional(out, self.driver_location.as_ref(), |out, p| {
            write_geo_point(out, "driver_location", p)
        })?;
        direct::long(out, self.timestamp.as_millis());
        direct::long(out, enum_index(self.event_type));
        direct::optional(out, self.status, |out, s| {
            direct::long(out, enum_index(s));
            Ok(())
        })?;
        direct::optional(out, self.status_seq, |out, n| {
            direct::long(out, i64::from(n));
            Ok(())
        })?;
        Ok(())
    }

    fn read(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let update = Self {
            update_id: EventId(r.string()?),
            order_id: OrderId(r.string()?),
            driver_id: r.optional(Reader::string)?.map(DriverId),
            driver_location: r.optional(read_direct_geo_point)?,
            timestamp: Timestamp::from_millis(r.long()?),
            event_type: read_direct_enum(&mut r)?,
            status: r.optional(read_direct_enum)?,
            status_seq: r.optional(|r| u32::try_from(r.long()?).ok())?,
        };
        r.done().then_some(update)
    }
}
