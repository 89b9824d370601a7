//! Each way of failing has its typed error, with a useful message.

use super::catalog;
use crate::DecodeNow;
use apache_avro::Schema;
use apache_avro::types::Value;
use doorstep_schemas::avro::{DecodeError, DomainError, EncodeError, SCHEMA_FILES};
use doorstep_schemas::events::{
    EtaUpdate, LocationPing, Notification, OrderCommand, OrderEvent, PlaceOrder, RecipientKind,
};
use doorstep_schemas::model::{
    Actor, GeoError, GeoPoint, OrderStatus, Timestamp, TrackingEventType, TrackingUpdate,
};

/// Frames `value`, encoded with the schema of embedded id `id`, as a record with that id.
fn framed(id: u32, value: Value) -> Vec<u8> {
    let file = SCHEMA_FILES.iter().find(|f| f.id == id).unwrap();
    let schema = Schema::parse_str(file.text).unwrap();
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    #[allow(deprecated)]
    bytes.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
    bytes
}

fn fields(pairs: Vec<(&str, Value)>) -> Value {
    Value::Record(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn ping_value(lat: f64, lng: f64) -> Value {
    let null = || Value::Union(0, Box::new(Value::Null));
    fields(vec![
        ("ping_id", Value::String("p".into())),
        ("driver_id", Value::String("d".into())),
        (
            "location",
            fields(vec![
                ("lat", Value::Double(lat)),
                ("lng", Value::Double(lng)),
            ]),
        ),
        ("accuracy_m", null()),
        ("heading_deg", null()),
        ("speed_mps", null()),
        ("recorded_at", Value::TimestampMillis(0)),
        ("received_at", Value::TimestampMillis(0)),
    ])
}

fn ping(lat: f64, lng: f64) -> LocationPing {
    LocationPing {
        ping_id: "p".into(),
        driver_id: "d".into(),
        location: GeoPoint { lat, lng },
        accuracy_m: None,
        heading_deg: None,
        speed_mps: None,
        recorded_at: Timestamp::from_millis(0),
        received_at: Timestamp::from_millis(0),
    }
}

fn notification() -> Notification {
    Notification {
        notification_id: String::new(),
        recipient_kind: RecipientKind::Customer,
        recipient_id: "c".into(),
        order_id: "o".into(),
        status: OrderStatus::Confirmed,
        message: "Your order was confirmed".into(),
        created_at: Timestamp::from_millis(0),
    }
}

#[test]
fn headers_that_are_short_or_foreign_are_refused() {
    let c = catalog();
    let err = c.decode_now::<OrderEvent>(&[]).unwrap_err();
    assert!(
        matches!(err, DecodeError::TruncatedHeader { len: 0 }),
        "{err}"
    );
    assert!(matches!(
        c.decode_now::<OrderEvent>(&[0, 0, 0]),
        Err(DecodeError::TruncatedHeader { len: 3 })
    ));
    // A JSON body, as a producer without the Avro serializer would send.
    let err = c
        .decode_now::<OrderEvent>(br#"{"event_id":"e"}"#)
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownMagicByte { found: b'{' }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unknown magic byte 0x7b; expected 0x00 (Confluent wire format)"
    );
    assert_eq!(err.code(), "unknown_magic_byte");
    assert!(!err.is_retriable());
}

#[test]
fn unknown_ids_and_other_topics_records_are_refused() {
    let c = catalog();
    let err = c
        .decode_now::<Notification>(&[0, 0, 0, 3, 231, 0])
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownSchemaId { id: 999 }),
        "{err}"
    );
    let bytes = c.encode(&notification()).unwrap();
    let err = c.decode_now::<OrderEvent>(&bytes).unwrap_err();
    assert!(
        matches!(&err, DecodeError::WrongRecord { id: 701, expected: "io.doorstep.v1.OrderEvent", found } if found == "io.doorstep.v1.Notification"),
        "{err}"
    );
}

#[test]
fn an_enum_index_outside_the_symbols_is_malformed() {
    let c = catalog();
    let mut bytes = c.encode(&notification()).unwrap();
    // Body: notification_id "" (0x00), then recipient_kind's index as a zigzag varint.
    assert_eq!(bytes[5..7], [0, 0]);
    bytes[6] = 2 * 7;
    let err = c.decode_now::<Notification>(&bytes).unwrap_err();
    assert!(
        matches!(err, DecodeError::Malformed { id: 701, .. }),
        "{err}"
    );
    bytes[6] = 1; // zigzag -1
    assert!(matches!(
        c.decode_now::<Notification>(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn invalid_utf8_is_malformed() {
    let c = catalog();
    let mut n = notification();
    n.notification_id = "ab".into();
    let mut bytes = c.encode(&n).unwrap();
    assert_eq!(bytes[5..8], [4, b'a', b'b']);
    bytes[6] = 0xff;
    assert!(matches!(
        c.decode_now::<Notification>(&bytes),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn cut_and_padded_bodies_are_refused() {
    let c = catalog();
    let bytes = c.encode(&ping(1.0, 2.0)).unwrap();
    let err = c
        .decode_now::<LocationPing>(&bytes[..bytes.len() - 1])
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { id: 402 }), "{err}");
    // Cut right before the last optional field: apache-avro alone would read null there.
    let t = TrackingUpdate {
        update_id: "u".into(),
        order_id: "o".into(),
        driver_id: None,
        driver_location: None,
        timestamp: Timestamp::from_millis(0),
        event_type: TrackingEventType::StatusChange,
        status: None,
        status_seq: None,
    };
    let bytes = c.encode(&t).unwrap();
    assert_eq!(bytes.last(), Some(&0));
    let err = c
        .decode_now::<TrackingUpdate>(&bytes[..bytes.len() - 1])
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
    let mut padded = c.encode(&ping(1.0, 2.0)).unwrap();
    padded.extend_from_slice(&[0, 0]);
    let err = c.decode_now::<LocationPing>(&padded).unwrap_err();
    assert!(
        matches!(err, DecodeError::TrailingBytes { id: 402, extra: 2 }),
        "{err}"
    );
}

#[test]
fn positions_out_of_range_are_domain_errors_both_ways() {
    let c = catalog();
    for (lat, lng) in [
        (91.0, 0.0),
        (-90.5, 0.0),
        (0.0, 180.5),
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
    ] {
        let err = c
            .decode_now::<LocationPing>(&framed(402, ping_value(lat, lng)))
            .unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Domain {
                    record: "io.doorstep.v1.LocationPing",
                    source: DomainError::Geo {
                        field: "location",
                        ..
                    }
                }
            ),
            "{err}"
        );
        assert_eq!(err.code(), "out_of_domain");
        let err = c.encode(&ping(lat, lng)).unwrap_err();
        assert!(
            matches!(
                err,
                EncodeError::Domain {
                    source: DomainError::Geo {
                        field: "location",
                        ..
                    },
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = c
        .decode_now::<LocationPing>(&framed(402, ping_value(91.0, 0.0)))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "io.doorstep.v1.LocationPing out of domain: location: latitude 91 is outside -90..=90"
    );
    let nested = OrderEvent {
        event_id: "e".into(),
        order_id: "o".into(),
        occurred_at: Timestamp::from_millis(0),
        actor: Actor::customer("c"),
        command: OrderCommand::Place(PlaceOrder {
            customer_id: "c".into(),
            restaurant_id: "r".into(),
            items: vec![],
            total_cents: 0,
            restaurant_location: GeoPoint { lat: 0.0, lng: 0.0 },
            delivery_location: GeoPoint {
                lat: 0.0,
                lng: -181.0,
            },
        }),
    };
    let err = c.encode(&nested).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::Domain {
                source: DomainError::Geo {
                    field: "delivery_location",
                    source: GeoError::LongitudeOutOfRange(_)
                },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn longs_outside_u32_are_domain_errors() {
    let c = catalog();
    let eta = |low: i64| {
        fields(vec![
            ("order_id", Value::String("o".into())),
            ("computed_at", Value::TimestampMillis(0)),
            ("prep_remaining_s", Value::Double(0.0)),
            ("pickup_travel_s", Value::Double(0.0)),
            ("delivery_travel_s", Value::Double(0.0)),
            ("estimated_delivery_at", Value::TimestampMillis(0)),
            ("range_low_min", Value::Long(low)),
            ("range_high_min", Value::Long(20)),
            ("fallback", Value::Boolean(false)),
        ])
    };
    assert!(
        c.decode_now::<EtaUpdate>(&framed(601, eta(i64::from(u32::MAX))))
            .is_ok()
    );
    for low in [-1, i64::from(u32::MAX) + 1, i64::MIN, i64::MAX] {
        let err = c
            .decode_now::<EtaUpdate>(&framed(601, eta(low)))
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::Domain { source: DomainError::OutOfRange { field: "range_low_min", value, .. }, .. } if value == low),
            "{err}"
        );
    }
}

#[test]
fn unknown_versions_are_refused() {
    let c = catalog();
    let err = c.encode_version(3, &ping(0.0, 0.0)).unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::UnknownVersion {
                topic: "drivers.locations.v1",
                version: 3
            }
        ),
        "{err}"
    );
    assert!(matches!(
        c.encode_version(0, &notification()),
        Err(EncodeError::UnknownVersion { .. })
    ));
    // The current version is accepted explicitly too.
    assert_eq!(
        c.encode_version(1, &notification()).unwrap(),
        c.encode(&notification()).unwrap()
    );
}
