//! Schema evolution. `drivers.locations.v1`: version 2 added the optional `speed_mps`
//! (default null). `orders.tracking.v1`: version 2 added the optional `status_seq` when the
//! status pipeline began writing `STATUS_CHANGE` updates beside the location pipeline's
//! `LOCATION_UPDATE` ones. Old records are read by new code (backward), new records by old
//! code (forward: a consumer still on version 1 reads the topic), and every historical version
//! stays readable by the current one.

use super::catalog;
use super::strategies::{location_ping, tracking_update};
use crate::DecodeNow;
use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::types::Value;
use doorstep_schemas::avro::{SCHEMA_FILES, wire};
use doorstep_schemas::events::{LocationPing, topics};
use doorstep_schemas::model::{
    GeoPoint, OrderStatus, Timestamp, TrackingEventType, TrackingUpdate,
};
use proptest::prelude::*;

fn schema(id: u32) -> Schema {
    Schema::parse_str(SCHEMA_FILES.iter().find(|f| f.id == id).unwrap().text).unwrap()
}

const V1: u32 = 401;
const V2: u32 = 402;
const TRACKING_V1: u32 = 501;
const TRACKING_V2: u32 = 502;

/// Reads an Avro body written with `writer` as `reader` would.
fn read_as(writer: &Schema, reader: &Schema, body: &[u8]) -> Value {
    GenericDatumReader::builder(writer)
        .reader_schema(reader)
        .build()
        .unwrap()
        .read_value(&mut &body[..])
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Backward: a v1 producer's record is read by the current (v2) reader; the new field
    /// takes its default.
    #[test]
    fn v1_records_are_read_by_the_v2_reader(ping in location_ping()) {
        let c = catalog();
        let bytes = c.encode_version(1, &ping).unwrap();
        prop_assert_eq!(wire::schema_id(&bytes).unwrap(), V1);
        let back: LocationPing = c.decode_now(&bytes).unwrap();
        prop_assert_eq!(back, LocationPing { speed_mps: None, ..ping });
    }

    /// Forward: a v2 record is read by a v1 consumer (still deployed during a rollout); the
    /// field it does not know is skipped and everything else is intact.
    #[test]
    fn v2_records_are_read_by_a_v1_reader(ping in location_ping()) {
        let c = catalog();
        let v2_bytes = c.encode(&ping).unwrap();
        prop_assert_eq!(wire::schema_id(&v2_bytes).unwrap(), V2);
        let as_v1 = read_as(&schema(V2), &schema(V1), &v2_bytes[5..]);
        let v1_bytes = c.encode_version(1, &ping).unwrap();
        let written_as_v1 = read_as(&schema(V1), &schema(V1), &v1_bytes[5..]);
        prop_assert_eq!(as_v1, written_as_v1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    /// Backward: a tracking update written by a version-1 producer is read by the current
    /// reader, without a `status_seq`.
    #[test]
    fn v1_tracking_updates_are_read_by_the_v2_reader(update in tracking_update()) {
        let c = catalog();
        let bytes = c.encode_version(1, &update).unwrap();
        prop_assert_eq!(wire::schema_id(&bytes).unwrap(), TRACKING_V1);
        let back: TrackingUpdate = c.decode_now(&bytes).unwrap();
        prop_assert_eq!(back, TrackingUpdate { status_seq: None, ..update });
    }

    /// Forward: every update the current producers write (status changes with their
    /// `status_seq` among them) is read by a version-1 consumer as the same record minus the
    /// field it does not know.
    #[test]
    fn v2_tracking_updates_are_read_by_a_v1_reader(update in tracking_update()) {
        let c = catalog();
        let v2_bytes = c.encode(&update).unwrap();
        prop_assert_eq!(wire::schema_id(&v2_bytes).unwrap(), TRACKING_V2);
        let as_v1 = read_as(&schema(TRACKING_V2), &schema(TRACKING_V1), &v2_bytes[5..]);
        let v1_bytes = c.encode_version(1, &update).unwrap();
        let written_as_v1 = read_as(&schema(TRACKING_V1), &schema(TRACKING_V1), &v1_bytes[5..]);
        prop_assert_eq!(as_v1, written_as_v1);
    }
}

/// A status change as the status pipeline writes it, read by a consumer that only has the
/// version-1 schema: the event type, the status and the rest are there.
#[test]
fn a_status_change_update_reads_as_version_1() {
    let update = TrackingUpdate {
        update_id: "e-9.3".into(),
        order_id: "o-1".into(),
        driver_id: Some("d-7".into()),
        driver_location: None,
        timestamp: Timestamp::from_millis(1_700_000_000_000),
        event_type: TrackingEventType::StatusChange,
        status: Some(OrderStatus::PickedUp),
        status_seq: Some(3),
    };
    let bytes = catalog().encode(&update).unwrap();
    let Value::Record(fields) = read_as(&schema(TRACKING_V2), &schema(TRACKING_V1), &bytes[5..])
    else {
        panic!("not a record");
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        field("event_type"),
        Some(Value::Enum(1, "STATUS_CHANGE".into()))
    );
    assert_eq!(
        field("status"),
        Some(Value::Union(
            1,
            Box::new(Value::Enum(4, "PICKED_UP".into()))
        ))
    );
    assert_eq!(field("update_id"), Some(Value::String("e-9.3".into())));
    assert_eq!(field("status_seq"), None, "version 1 has no status_seq");
}

/// A v1 record built by hand, with no knowledge of v2 (as an old producer would).
#[test]
fn a_hand_built_v1_record_is_read_by_the_current_reader() {
    let record = Value::Record(vec![
        ("ping_id".into(), Value::String("p-1".into())),
        ("driver_id".into(), Value::String("d-7".into())),
        (
            "location".into(),
            Value::Record(vec![
                ("lat".into(), Value::Double(60.17)),
                ("lng".into(), Value::Double(24.94)),
            ]),
        ),
        (
            "accuracy_m".into(),
            Value::Union(1, Box::new(Value::Double(4.5))),
        ),
        ("heading_deg".into(), Value::Union(0, Box::new(Value::Null))),
        (
            "recorded_at".into(),
            Value::TimestampMillis(1_700_000_000_000),
        ),
        (
            "received_at".into(),
            Value::TimestampMillis(1_700_000_000_250),
        ),
    ]);
    let mut bytes = vec![0, 0, 0, 1, 145]; // id 401
    #[allow(deprecated)]
    bytes.extend(apache_avro::to_avro_datum(&schema(V1), record).unwrap());
    let ping: LocationPing = catalog().decode_now(&bytes).unwrap();
    assert_eq!(
        ping,
        LocationPing {
            ping_id: "p-1".into(),
            driver_id: "d-7".into(),
            location: GeoPoint::new(60.17, 24.94).unwrap(),
            accuracy_m: Some(4.5),
            heading_deg: None,
            speed_mps: None,
            recorded_at: Timestamp::from_millis(1_700_000_000_000),
            received_at: Timestamp::from_millis(1_700_000_000_250),
        }
    );
}

/// Every historical version of every topic can be read by its current schema, and v1/v2 of
/// the location ping are fully compatible both ways.
#[test]
fn every_version_is_readable_by_the_current_schema() {
    let c = catalog();
    for topic in topics::ALL {
        let current = c.current(topic).unwrap();
        let reader = schema(current.id);
        for file in SCHEMA_FILES.iter().filter(|f| f.topic == topic) {
            let compat = SchemaCompatibility::can_read(&schema(file.id), &reader);
            assert_eq!(
                compat.ok(),
                Some(Compatibility::Full),
                "{} cannot be read as {}",
                file.path,
                current.path
            );
        }
    }
    assert_eq!(
        SchemaCompatibility::mutual_read(&schema(V1), &schema(V2)).ok(),
        Some(Compatibility::Full)
    );
    assert_eq!(
        SchemaCompatibility::mutual_read(&schema(TRACKING_V1), &schema(TRACKING_V2)).ok(),
        Some(Compatibility::Full)
    );
}
