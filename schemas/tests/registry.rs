//! The registry-backed codec against the real schema registry at
//! `DOORSTEP_SCHEMA_REGISTRY_URL` (default `http://127.0.0.1:18081`, started by
//! `scripts/services up`). A registry that is down fails these
//! tests with a message saying so; they never skip. Every test uses its own topic prefix, so
//! subjects never collide between tests or runs.

#[path = "codec/strategies.rs"]
#[allow(dead_code)]
mod strategies;

use apache_avro::Schema;
use apache_avro::types::Value;
use doorstep_schemas::avro::registry::{RegistryConfig, RegistryError};
use doorstep_schemas::avro::{Catalog, DecodeError, SCHEMA_FILES, TopicRecord, wire};
use doorstep_schemas::events::{
    EtaUpdate, LocationPing, Notification, OrderEvent, RejectedRecord, StatusChange, topics,
};
use doorstep_schemas::model::TrackingUpdate;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_subject, post_schema,
};
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use std::time::Duration;
use tokio::runtime::Runtime;

fn registry_url() -> String {
    std::env::var("DOORSTEP_SCHEMA_REGISTRY_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:18081".to_owned())
}

/// A topic prefix no other test or run uses.
fn unique_prefix() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn config(prefix: &str) -> RegistryConfig {
    RegistryConfig::new(registry_url())
        .with_topic_prefix(prefix)
        .with_timeout(Duration::from_secs(5))
}

/// Connects with `prefix`, or fails the test saying the registry is down.
async fn connect(prefix: &str) -> Catalog {
    match Catalog::connect(&config(prefix)).await {
        Ok(catalog) => catalog,
        Err(e @ RegistryError::Unreachable { .. }) => panic!(
            "the schema registry at {} is not reachable: start it with `scripts/services up` \
             or point DOORSTEP_SCHEMA_REGISTRY_URL at one ({e})",
            registry_url()
        ),
        Err(e) => panic!("registering the embedded schemas failed: {e}"),
    }
}

fn settings() -> SrSettings {
    SrSettings::new(registry_url())
}

fn file(id: u32) -> &'static str {
    SCHEMA_FILES.iter().find(|f| f.id == id).unwrap().text
}

/// Every record type round-trips through the registry codec, with the registry's ids.
#[test]
fn records_round_trip_with_registry_ids() {
    let rt = Runtime::new().unwrap();
    let catalog = rt.block_on(connect(&unique_prefix()));
    fn check<T: TopicRecord + PartialEq + std::fmt::Debug>(
        rt: &Runtime,
        catalog: &Catalog,
        strategy: impl Strategy<Value = T>,
    ) {
        let mut runner = TestRunner::new(ProptestConfig::with_cases(300));
        runner
            .run(&strategy, |record| {
                let bytes = catalog.encode(&record).unwrap();
                prop_assert_eq!(wire::schema_id(&bytes).ok(), catalog.schema_id::<T>());
                let back: T = rt.block_on(catalog.decode(&bytes)).unwrap();
                prop_assert_eq!(back, record);
                Ok(())
            })
            .unwrap();
    }
    check(&rt, &catalog, strategies::order_event());
    check(&rt, &catalog, strategies::status_change());
    check(&rt, &catalog, strategies::rejected_record());
    check(&rt, &catalog, strategies::location_ping());
    check(&rt, &catalog, strategies::tracking_update());
    check(&rt, &catalog, strategies::eta_update());
    check(&rt, &catalog, strategies::notification());
}

/// Subjects follow TopicNameStrategy; the ids are the registry's latest for each subject;
/// connecting again registers nothing new and gets the same ids.
#[tokio::test]
async fn subjects_and_ids_come_from_the_registry() {
    let prefix = unique_prefix();
    let catalog = connect(&prefix).await;
    let again = connect(&prefix).await;
    for topic in topics::ALL {
        let subject = catalog.subject(topic).unwrap();
        assert_eq!(subject, format!("{prefix}{topic}-value"));
        let latest = get_schema_by_subject(
            &settings(),
            &SubjectNameStrategy::TopicNameStrategy(format!("{prefix}{topic}"), false),
        )
        .await
        .unwrap();
        assert_eq!(latest.version, Some(1), "{subject}");
        let id = match topic {
            topics::ORDER_EVENTS => catalog.schema_id::<OrderEvent>(),
            topics::ORDER_STATUS => catalog.schema_id::<StatusChange>(),
            topics::ORDER_REJECTED => catalog.schema_id::<RejectedRecord>(),
            topics::DRIVER_LOCATIONS => catalog.schema_id::<LocationPing>(),
            topics::ORDER_TRACKING => catalog.schema_id::<TrackingUpdate>(),
            topics::ORDER_ETA => catalog.schema_id::<EtaUpdate>(),
            _ => catalog.schema_id::<Notification>(),
        };
        assert_eq!(id, Some(latest.id), "{subject}");
    }
    assert_eq!(
        again.schema_id::<OrderEvent>(),
        catalog.schema_id::<OrderEvent>()
    );
    assert_eq!(
        again.schema_id::<LocationPing>(),
        catalog.schema_id::<LocationPing>()
    );
}

/// A subject that already holds v1 of the location ping accepts v2 (optional field with a
/// default) as version 2; records written with v1's registry id are fetched by id and read
/// into the current type.
#[tokio::test]
async fn older_writer_schemas_are_fetched_by_id_and_resolved() {
    let prefix = unique_prefix();
    let subject = format!("{prefix}{}-value", topics::DRIVER_LOCATIONS);
    let v1 = SuppliedSchema::new(None, SchemaType::Avro, file(401).to_owned());
    let v1_id = match post_schema(&settings(), subject.clone(), v1).await {
        Ok(registered) => registered.id,
        Err(e) => panic!(
            "the schema registry at {} is not usable ({e}); `scripts/services up` starts it",
            registry_url()
        ),
    };
    let catalog = connect(&prefix).await;
    let v2_id = catalog.schema_id::<LocationPing>().unwrap();
    assert_ne!(v1_id, v2_id);
    let latest = get_schema_by_subject(
        &settings(),
        &SubjectNameStrategy::TopicNameStrategy(
            format!("{prefix}{}", topics::DRIVER_LOCATIONS),
            false,
        ),
    )
    .await
    .unwrap();
    assert_eq!((latest.id, latest.version), (v2_id, Some(2)));

    let embedded = Catalog::embedded().unwrap();
    let mut runner = TestRunner::new(ProptestConfig::with_cases(200));
    let pings: Vec<LocationPing> = (0..200)
        .map(|_| {
            strategies::location_ping()
                .new_tree(&mut runner)
                .unwrap()
                .current()
        })
        .collect();
    for ping in pings {
        // A v1 producer's record: the v1 body behind the registry's v1 id.
        let v1_body = embedded.encode_version(1, &ping).unwrap();
        let mut bytes = vec![0];
        bytes.extend_from_slice(&v1_id.to_be_bytes());
        bytes.extend_from_slice(&v1_body[5..]);
        let back: LocationPing = catalog.decode(&bytes).await.unwrap();
        assert_eq!(
            back,
            LocationPing {
                speed_mps: None,
                ..ping.clone()
            }
        );
        // And a current record still reads the same.
        let current: LocationPing = catalog
            .decode(&catalog.encode(&ping).unwrap())
            .await
            .unwrap();
        assert_eq!(current, ping);
    }
}

/// The registry refuses a change its compatibility rule forbids (a new field without a
/// default), so an incompatible schema cannot reach the topic.
#[tokio::test]
async fn the_registry_refuses_an_incompatible_version() {
    let prefix = unique_prefix();
    let catalog = connect(&prefix).await;
    let subject = catalog.subject(topics::ORDER_ETA).unwrap().to_owned();
    let mut eta: serde_json::Value = serde_json::from_str(file(601)).unwrap();
    eta["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "name": "confidence", "type": "double", "doc": "A new required field."
        }));
    let supplied = SuppliedSchema::new(None, SchemaType::Avro, eta.to_string());
    let err = post_schema(&settings(), subject, supplied)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("409"), "{err}");
}

/// Ids the registry does not have, and records of another topic, are typed errors.
#[tokio::test]
async fn unknown_ids_and_wrong_records_are_refused() {
    let catalog = connect(&unique_prefix()).await;
    let err = catalog
        .decode::<OrderEvent>(&[0, 0x7f, 0xff, 0xff, 0xf0, 0])
        .await
        .unwrap_err();
    assert!(
        matches!(err, DecodeError::UnknownSchemaId { id: 0x7fff_fff0 }),
        "{err}"
    );
    assert!(!err.is_retriable());
    let notification = Notification {
        notification_id: "n".into(),
        recipient_kind: doorstep_schemas::events::RecipientKind::Customer,
        recipient_id: "c".into(),
        order_id: "o".into(),
        status: doorstep_schemas::model::OrderStatus::Delivered,
        message: "Delivered".into(),
        created_at: doorstep_schemas::model::Timestamp::from_millis(0),
    };
    let bytes = catalog.encode(&notification).unwrap();
    let err = catalog.decode::<OrderEvent>(&bytes).await.unwrap_err();
    assert!(matches!(err, DecodeError::WrongRecord { .. }), "{err}");
    let err = catalog
        .decode::<Notification>(&bytes[..bytes.len() - 1])
        .await
        .unwrap_err();
    assert!(matches!(err, DecodeError::Truncated { .. }), "{err}");
}

/// Bytes from schema_registry_converter's own encoder decode here, and ours decode there:
/// the two agree on the wire format.
#[tokio::test]
async fn interoperates_with_schema_registry_converter() {
    let prefix = unique_prefix();
    let catalog = connect(&prefix).await;
    let ping = LocationPing {
        ping_id: "p-1".into(),
        driver_id: "d-1".into(),
        location: doorstep_schemas::model::GeoPoint::new(60.17, 24.94).unwrap(),
        accuracy_m: Some(3.0),
        heading_deg: Some(90.0),
        speed_mps: None,
        recorded_at: doorstep_schemas::model::Timestamp::from_millis(1_700_000_000_000),
        received_at: doorstep_schemas::model::Timestamp::from_millis(1_700_000_000_100),
    };
    let ours = catalog.encode(&ping).unwrap();
    let decoded = EasyAvroDecoder::new(settings())
        .decode(Some(&ours))
        .await
        .unwrap();
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)).as_deref(),
        Some(LocationPing::RECORD)
    );
    let Value::Record(fields) = &decoded.value else {
        panic!("{:?}", decoded.value)
    };
    assert_eq!(
        fields[1],
        ("driver_id".to_owned(), Value::String("d-1".into()))
    );

    let topic = format!("{prefix}{}", topics::DRIVER_LOCATIONS);
    let theirs = EasyAvroEncoder::new(settings())
        .encode_value(
            decoded.value,
            &SubjectNameStrategy::TopicNameStrategy(topic, false),
        )
        .await
        .unwrap();
    assert_eq!(theirs, ours);
    assert_eq!(catalog.decode::<LocationPing>(&theirs).await.unwrap(), ping);
    let _ = Schema::parse_str(file(402)).unwrap();
}

/// A registry that is not there is a retriable error naming it, not a hang or a panic.
#[tokio::test]
async fn an_unreachable_registry_is_a_retriable_error() {
    let config = RegistryConfig::new("http://127.0.0.1:1").with_timeout(Duration::from_secs(2));
    let err = Catalog::connect(&config).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.is_retriable());
    assert!(err.to_string().contains("http://127.0.0.1:1"), "{err}");
}
