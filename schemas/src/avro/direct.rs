//! Direct Avro bodies of the records on the hot paths (a GPS ping, a tracking update): written
//! and read field by field for one exact schema version, without building an apache-avro
//! [`Value`](apache_avro::types::Value) tree (a heap allocation per field and field name, a
//! schema walk to validate it, another to encode it).
//!
//! A record type declares the schema version its direct codec is written for
//! ([`Direct::VERSION`]); the [`Catalog`](super::Catalog) uses it only when that version is the
//! one it writes with, or the one the bytes were written with and read as. The bytes are
//! exactly apache-avro's (the tests compare both on every kind of record), and reading is
//! strict in the same way: [`Direct::read`] answers `None` for anything but a well-formed body
//! of a record in domain, and the catalog then reads the body the general way, which says
//! what is wrong with it. So both ways give the same record or the same error.

use super::error::DomainError;

/// A record with a direct codec for one version of its topic's schema.
pub(crate) trait Direct: Sized {
    /// The schema version (`.avsc` file) [`write`](Direct::write) and [`read`](Direct::read)
    /// follow.
    const VERSION: u32;
    /// Appends the Avro body of `self` to `out`; the same domain checks as the general way.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), DomainError>;
    /// The record of a body of exactly this version, or `None` when the body is not one
    /// (malformed, truncated, bytes left over, out of domain).
    fn read(body: &[u8]) -> Option<Self>;

    /// [`write`](Direct::write) when `version` is [`VERSION`](Direct::VERSION): what a
    /// record's `AvroRecord::write_direct` answers.
    fn write_version(&self, version: u32, out: &mut Vec<u8>) -> Option<Result<(), DomainError>> {
        (version == Self::VERSION).then(|| self.write(out))
    }

    /// [`read`](Direct::read) when `version` is [`VERSION`](Direct::VERSION): what a
    /// record's `AvroRecord::read_direct` answers.
    fn read_version(version: u32, body: &[u8]) -> Option<Self> {
        (version == Self::VERSION)
            .then(|| Self::read(body))
            .flatten()
    }
}

/// Appends a zigzag varint `long` (or `int`, enum index, union branch, length).
pub(crate) fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7f {
        out.push((z & 0x7f) as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends a `string`.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a `double`.
pub(crate) fn double(out: &mut Vec<u8>, x: f64) {
    out.extend_from_slice(&x.to_le_bytes());
}

/// Appends a union branch index.
pub(crate) fn branch(out: &mut Vec<u8>, index: i64) {
    long(out, index);
}

/// Appends a `["null", T]`: branch 0, or branch 1 and `value` written by `write`.
pub(crate) fn optional<T>(
    out: &mut Vec<u8>,
    value: Option<T>,
    write: impl FnOnce(&mut Vec<u8>, T) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    match value {
        None => {
            branch(out, 0);
            Ok(())
        }
        Some(v) => {
            branch(out, 1);
            write(out, v)
        }
    }
}

/// Reads a body front to back.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader of `body`.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    /// Whether every byte was read.
    pub(crate) fn done(&self) -> bool {
        self.rest.is_empty()
    }

    /// A zigzag varint, as apache-avro reads one (at most 10 bytes).
    pub(crate) fn long(&mut self) -> Option<i64> {
        let mut z = 0u64;
        for j in 0..10 {
            let (&b, rest) = self.rest.split_first()?;
            self.rest = rest;
            z |= u64::from(b & 0x7f) << (j * 7);
            if b & 0x80 == 0 {
                return Some(if z & 1 == 0 {
                    (z >> 1) as i64
                } else {
                    !(z >> 1) as i64
                });
            }
        }
        None
    }

    /// A `string`.
    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.long()?).ok()?;
        if len > self.rest.len() || len > super::MAX_DECODE_ALLOCATION_BYTES {
            return None;
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        std::str::from_utf8(bytes).ok().map(str::to_owned)
    }

    /// A `double`.
    pub(crate) fn double(&mut self) -> Option<f64> {
        let (bytes, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(f64::from_le_bytes(*bytes))
    }

    /// A `["null", T]` union, `T` read by `read`: `Some(None)` for null, `None` for a
    /// malformed body (a branch other than 0 or 1, or a `T` `read` refuses).
    pub(crate) fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.long()? {
            0 => Some(None),
            1 => read(self).map(Some),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec;
    use super::super::record::TopicRecord;
    use super::super::record::sealed::AvroRecord;
    use super::super::wire;
    use super::*;
    use crate::avro::Catalog;
    use crate::events::LocationPing;
    use crate::model::{
        DriverId, EventId, GeoPoint, OrderId, OrderStatus, Timestamp, TrackingEventType,
        TrackingUpdate,
    };

    /// The general way's body of `record` (an apache-avro value, validated and encoded).
    fn general_body<T: TopicRecord>(record: &T) -> Vec<u8> {
        let catalog = Catalog::embedded().expect("catalog");
        let entry = catalog.current_entry(T::TOPIC).expect("current schema");
        let value = codec::to_value(record).expect("value");
        let framed = codec::frame::<T>(0, &entry.parsed, value).expect("encodes");
        framed[wire::HEADER_LEN..].to_vec()
    }

    /// The general way's reading of `body` as the current schema.
    fn general_read<T: TopicRecord>(body: &[u8]) -> Option<T> {
        let catalog = Catalog::embedded().expect("catalog");
        let entry = catalog.current_entry(T::TOPIC).expect("current schema");
        codec::unframe::<T>(0, &entry.parsed, &entry.parsed, true, body).ok()
    }

    fn version<T: TopicRecord>() -> u32 {
        let catalog = Catalog::embedded().expect("catalog");
        catalog.current(T::TOPIC).expect("current schema").version
    }

    /// Same bytes both ways; reading them back both ways gives the record; and every
    /// truncation and single-byte change of the body is read the same way by both (the
    /// direct way may only decline, never disagree).
    fn agree<T: TopicRecord + std::fmt::Debug>(record: &T) {
        let v = version::<T>();
        let mut direct = Vec::new();
        record
            .write_direct(v, &mut direct)
            .expect("the current version has a direct codec")
            .expect("in domain");
        let general = general_body(record);
        assert_eq!(direct, general, "{record:?}");
        let back = T::read_direct(v, &direct).expect("reads its own body");
        assert_eq!(general_body(&back), general);
        let mut bodies: Vec<Vec<u8>> = (0..general.len()).map(|n| general[..n].to_vec()).collect();
        for i in 0..general.len() {
            for b in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, general[i] ^ 0x01] {
                let mut m = general.clone();
                m[i] = b;
                bodies.push(m);
            }
        }
        let mut longer = general.clone();
        longer.push(0);
        bodies.push(longer);
        for body in bodies {
            if let Some(direct) = T::read_direct(v, &body) {
                let general = general_read::<T>(&body)
                    .unwrap_or_else(|| panic!("read directly, refused generally: {body:?}"));
                assert_eq!(general_body(&direct), general_body(&general), "{body:?}");
            }
        }
    }

    fn ping(accuracy: Option<f64>, heading: Option<f64>, speed: Option<f64>) -> LocationPing {
        LocationPing {
            ping_id: EventId::new("0190f3a2-ping-ü"),
            driver_id: DriverId::new("d-000042"),
            location: GeoPoint {
                lat: 60.1699,
                lng: -24.9384,
            },
            accuracy_m: accuracy,
            heading_deg: heading,
            speed_mps: speed,
            recorded_at: Timestamp::from_millis(1_700_000_000_000),
            received_at: Timestamp::from_millis(-1),
        }
    }

    #[test]
    fn location_pings_are_written_and_read_as_apache_avro_does() {
        agree(&ping(None, None, None));
        agree(&ping(Some(4.5), None, Some(f64::NAN)));
        agree(&ping(Some(-0.0), Some(359.9), Some(f64::INFINITY)));
        let mut long_ids = ping(Some(1.0), Some(2.0), Some(3.0));
        long_ids.ping_id = EventId::new("p".repeat(300));
        long_ids.recorded_at = Timestamp::from_millis(i64::MIN);
        long_ids.received_at = Timestamp::from_millis(i64::MAX);
        agree(&long_ids);
    }

    #[test]
    fn tracking_updates_are_written_and_read_as_apache_avro_does() {
        let location = TrackingUpdate {
            update_id: EventId::new("p-1"),
            order_id: OrderId::new("o-1"),
            driver_id: Some(DriverId::new("d-1")),
            driver_location: Some(GeoPoint {
                lat: -33.9,
                lng: 151.2,
            }),
            timestamp: Timestamp::from_millis(1_700_000_000_000),
            event_type: TrackingEventType::LocationUpdate,
            status: None,
            status_seq: None,
        };
        agree(&location);
        for (i, status) in OrderStatus::ALL.into_iter().enumerate() {
            agree(&TrackingUpdate {
                update_id: EventId::new(format!("e-{i}.{i}")),
                driver_id: None,
                driver_location: None,
                event_type: TrackingEventType::StatusChange,
                status: Some(status),
                status_seq: Some(if i == 0 { u32::MAX } else { i as u32 }),
                ..location.clone()
            });
        }
    }

    #[test]
    fn out_of_domain_positions_are_refused_as_the_general_way_refuses_them() {
        let mut bad = ping(None, None, None);
        bad.location.lat = 91.0;
        let mut out = Vec::new();
        let direct = bad.write_direct(version::<LocationPing>(), &mut out);
        let general = codec::to_value(&bad);
        assert!(matches!(direct, Some(Err(DomainError::Geo { .. }))));
        assert!(general.is_err());
    }

    #[test]
    fn other_versions_have_no_direct_codec() {
        let mut out = Vec::new();
        assert!(ping(None, None, None).write_direct(1, &mut out).is_none());
        assert!(out.is_empty());
        assert!(LocationPing::read_direct(1, &[]).is_none());
    }
}
