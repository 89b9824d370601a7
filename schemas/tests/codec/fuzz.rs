//! Bad bytes never panic: arbitrary bytes, arbitrary bodies behind a valid header, and
//! corrupted, cut or extended valid records all come back as values or typed errors.

use super::catalog;
use super::strategies::*;
use crate::DecodeNow;
use doorstep_schemas::avro::{DecodeError, SCHEMA_FILES};
use doorstep_schemas::events::{
    EtaUpdate, LocationPing, Notification, OrderEvent, RejectedRecord, StatusChange,
};
use doorstep_schemas::model::TrackingUpdate;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const CASES: u32 = 5_000;

/// Decodes `bytes` as every topic record; none may panic.
fn decode_as_everything(bytes: &[u8]) {
    let c = catalog();
    let _ = c.decode_now::<OrderEvent>(bytes);
    let _ = c.decode_now::<StatusChange>(bytes);
    let _ = c.decode_now::<RejectedRecord>(bytes);
    let _ = c.decode_now::<LocationPing>(bytes);
    let _ = c.decode_now::<TrackingUpdate>(bytes);
    let _ = c.decode_now::<EtaUpdate>(bytes);
    let _ = c.decode_now::<Notification>(bytes);
}

/// Any valid encoding of some topic record.
fn valid_record() -> impl Strategy<Value = Vec<u8>> {
    let c = catalog();
    // Boxed: seven record strategies inline overflow a debug-build test thread's stack.
    prop_oneof![
        order_event()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        status_change()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        rejected_record()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        location_ping()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        tracking_update()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        eta_update()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
        notification()
            .prop_map(move |r| c.encode(&r).unwrap())
            .boxed(),
    ]
}

/// Decodes `bytes` as the record type its header names, if any.
fn decode_as_its_type(bytes: &[u8]) -> Option<Result<(), DecodeError>> {
    let c = catalog();
    let id = doorstep_schemas::avro::wire::schema_id(bytes).ok()?;
    let file = SCHEMA_FILES.iter().find(|f| f.id == id)?;
    use doorstep_schemas::events::topics::*;
    Some(match file.topic {
        ORDER_EVENTS => c.decode_now::<OrderEvent>(bytes).map(drop),
        ORDER_STATUS => c.decode_now::<StatusChange>(bytes).map(drop),
        ORDER_REJECTED => c.decode_now::<RejectedRecord>(bytes).map(drop),
        DRIVER_LOCATIONS => c.decode_now::<LocationPing>(bytes).map(drop),
        ORDER_TRACKING => c.decode_now::<TrackingUpdate>(bytes).map(drop),
        ORDER_ETA => c.decode_now::<EtaUpdate>(bytes).map(drop),
        NOTIFICATIONS => c.decode_now::<Notification>(bytes).map(drop),
        _ => return None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_as_everything(&bytes);
    }

    #[test]
    fn arbitrary_bodies_behind_a_known_header_never_panic(
        id in select(SCHEMA_FILES.iter().map(|f| f.id).collect::<Vec<_>>()),
        body in vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&body);
        decode_as_everything(&bytes);
    }

    #[test]
    fn corrupted_records_never_panic(
        bytes in valid_record(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = bytes;
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        decode_as_everything(&bytes);
    }

    #[test]
    fn every_cut_of_a_record_is_an_error(bytes in valid_record(), at in any::<prop::sample::Index>()) {
        let cut = at.index(bytes.len());
        let result = decode_as_its_type(&bytes[..cut]);
        match result {
            // Too short for a header: no type to decode as, check it directly.
            None => {
                let r = catalog().decode_now::<OrderEvent>(&bytes[..cut]);
                let short = matches!(r, Err(DecodeError::TruncatedHeader { .. }));
                prop_assert!(short, "cut at {}: {:?}", cut, r);
            }
            Some(r) => {
                let truncated = matches!(r, Err(DecodeError::Truncated { .. }));
                prop_assert!(truncated, "cut at {} of {}: {:?}", cut, bytes.len(), r);
            }
        }
    }

    #[test]
    fn bytes_after_a_record_are_an_error(bytes in valid_record(), extra in vec(any::<u8>(), 1..16)) {
        let mut bytes = bytes;
        bytes.extend_from_slice(&extra);
        let result = decode_as_its_type(&bytes).unwrap();
        let trailing = matches!(result, Err(DecodeError::TrailingBytes { extra: n, .. }) if n == extra.len());
        prop_assert!(trailing, "{:?}", result);
    }

    #[test]
    fn valid_records_decode_as_their_own_type(bytes in valid_record()) {
        let result = decode_as_its_type(&bytes).unwrap();
        prop_assert!(result.is_ok(), "{:?}", result);
    }
}
