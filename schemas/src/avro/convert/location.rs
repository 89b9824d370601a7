//! `LocationPing` ↔ `location_ping.avsc` (version 2; version 1 lacks `speed_mps`).

use super::common::{geo_point, read_direct_geo_point, read_geo_point, write_geo_point};
use super::value::{Fields, optional, record, string, timestamp, to_double};
use crate::avro::direct::{self, Direct, Reader};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{LocationPing, topics};
use crate::model::{DriverId, EventId, Timestamp};
use apache_avro::types::Value;

impl TopicRecord for LocationPing {
    const TOPIC: &'static str = topics::DRIVER_LOCATIONS;
    const RECORD: &'static str = "io.doorstep.v1.LocationPing";
    const NOUN: &'static str = "a location ping";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.driver_id.as_str())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.ping_id.as_str())
    }
}

impl AvroRecord for LocationPing {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("ping_id", string(self.ping_id.as_str())),
            ("driver_id", string(self.driver_id.as_str())),
            ("location", geo_point("location", &self.location)?),
            ("accuracy_m", optional(self.accuracy_m.map(Value::Double))),
            ("heading_deg", optional(self.heading_deg.map(Value::Double))),
            ("speed_mps", optional(self.speed_mps.map(Value::Double))),
            ("recorded_at", timestamp(self.recorded_at)),
            ("received_at", timestamp(self.received_at)),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("LocationPing", value)?;
        Ok(Self {
            ping_id: EventId(f.string("ping_id")?),
            driver_id: DriverId(f.string("driver_id")?),
            location: f.with("location", read_geo_point)?,
            accuracy_m: f.optional("accuracy_m", to_double)?,
            heading_deg: f.optional("heading_deg", to_double)?,
            speed_mps: f.optional("speed_mps", to_double)?,
            recorded_at: f.timestamp("recorded_at")?,
            received_at: f.timestamp("received_at")?,
        })
    }

    fn write_direct(&self, version: u32, out: &mut Vec<u8>) -> Option<Result<(), DomainError>> {
        self.write_version(version, out)
    }

    fn read_direct(version: u32, body: &[u8]) -> Option<Self> {
        Self::read_version(version, body)
    }
}

impl Direct for LocationPing {
    const VERSION: u32 = 2;

    fn write(&self, out: &mut Vec<u8>) -> Result<(), DomainError> {
        direct::string(out, self.ping_id.as_str());
        direct::string(out, self.driver_id.as_str());
        write_geo_point(out, "location", &self.location)?;
        for x in [self.accuracy_m, self.heading_deg, self.speed_mps] {
            direct::optional(out, x, |out, x| {
                direct::double(out, x);
                Ok(())
            })?;
        }
        direct::long(out, self.recorded_at.as_millis());
        direct::long(out, self.received_at.as_millis());
        Ok(())
    }

    fn read(body: &[u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let ping = Self {
            ping_id: EventId(r.string()?),
            driver_id: DriverId(r.string()?),
            location: read_direct_geo_point(&mut r)?,
            accuracy_m: r.optional(Reader::double)?,
            heading_deg: r.optional(Reader::double)?,
            speed_mps: r.optional(Reader::double)?,
            recorded_at: Timestamp::from_millis(r.long()?),
            received_at: Timestamp::from_millis(r.long()?),
        };
        r.done().then_some(ping)
    }
}
