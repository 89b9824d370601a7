//! Every topic record survives encode → decode unchanged, for arbitrary values.

use super::catalog;
use super::strategies::*;
use crate::DecodeNow;
use doorstep_schemas::avro::{TopicRecord, wire};
use doorstep_schemas::events::EtaUpdate;
use doorstep_schemas::model::{OrderId, Timestamp};
use proptest::prelude::*;

const CASES: u32 = 2_000;

fn round_trip<T: TopicRecord + PartialEq + std::fmt::Debug>(
    record: &T,
) -> Result<(), TestCaseError> {
    let bytes = catalog()
        .encode(record)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(wire::schema_id(&bytes).ok(), catalog().schema_id::<T>());
    let back: T = catalog()
        .decode_now(&bytes)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, record);
    Ok(())
}

macro_rules! round_trips {
    ($($name:ident: $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]
            $(
                #[test]
                fn $name(record in $strategy) {
                    round_trip(&record)?;
                }
            )*
        }
    };
}

round_trips! {
    order_event_round_trips: order_event();
    status_change_round_trips: status_change();
    rejected_record_round_trips: rejected_record();
    location_ping_round_trips: location_ping();
    tracking_update_round_trips: tracking_update();
    eta_update_round_trips: eta_update();
    notification_round_trips: notification();
}

#[test]
fn nan_and_infinities_survive_bit_for_bit() {
    let eta = EtaUpdate {
        order_id: OrderId::new("o"),
        computed_at: Timestamp::from_millis(0),
        prep_remaining_s: f64::NAN,
        pickup_travel_s: f64::INFINITY,
        delivery_travel_s: -0.0,
        estimated_delivery_at: Timestamp::from_millis(i64::MIN),
        range_low_min: u32::MAX,
        range_high_min: 0,
        fallback: true,
    };
    let back: EtaUpdate = catalog()
        .decode_now(&catalog().encode(&eta).unwrap())
        .unwrap();
    assert_eq!(back.prep_remaining_s.to_bits(), f64::NAN.to_bits());
    assert_eq!(back.pickup_travel_s, f64::INFINITY);
    assert!(back.delivery_travel_s.is_sign_negative());
    assert_eq!(back.estimated_delivery_at, eta.estimated_delivery_at);
}

/// `encode` (a direct codec where the record has one) and `encode_version` of the current
/// version (always through an apache-avro value) write the same bytes.
fn same_bytes_both_ways<T: TopicRecord>(record: &T) -> Result<(), TestCaseError> {
    let current = catalog()
        .current(T::TOPIC)
        .map(|f| f.version)
        .ok_or_else(|| TestCaseError::fail("no current schema"))?;
    let direct = catalog()
        .encode(record)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let general = catalog()
        .encode_version(current, record)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(direct, general);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]
    #[test]
    fn location_pings_encode_the_same_directly(record in location_ping()) {
        same_bytes_both_ways(&record)?;
    }

    #[test]
    fn tracking_updates_encode_the_same_directly(record in tracking_update()) {
        same_bytes_both_ways(&record)?;
    }
}
