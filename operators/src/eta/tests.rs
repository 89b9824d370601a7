use super::*;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

fn p(lat: f64, lng: f64) -> GeoPoint {
    GeoPoint { lat, lng }
}

#[test]
fn clock_keys() {
    assert_eq!(hour_of_day(Timestamp::from_millis(T0)), 22);
    assert_eq!(hour_of_day(Timestamp::from_millis(-1)), 23);
    assert_eq!(time_bucket(Timestamp::from_millis(T0), 15), 22 * 4);
    assert_eq!(time_bucket(Timestamp::from_millis(T0), 0), 22 * 60 + 13);
}

#[test]
fn plans_follow_the_status() {
    let (r, c, d) = (p(60.169, 24.932), p(60.1718, 24.9458), p(60.16, 24.94));
    let before = plan(OrderStatus::Preparing, Some(d), r, c).expect("active");
    assert_eq!(before.pickup, PickupLeg::Route { from: d, to: r });
    assert_eq!(before.delivery, (r, c));
    assert_eq!(
        plan(OrderStatus::Placed, None, r, c).map(|p| p.pickup),
        Some(PickupLeg::Assumed)
    );
    let after = plan(OrderStatus::EnRoute, Some(d), r, c).expect("active");
    assert_eq!(after.pickup, PickupLeg::Done);
    assert_eq!(after.delivery, (d, c));
    assert_eq!(
        plan(OrderStatus::PickedUp, None, r, c).map(|p| p.delivery),
        Some((r, c))
    );
    assert!(plan(OrderStatus::Delivered, Some(d), r, c).is_none());
    assert!(plan(OrderStatus::Cancelled, None, r, c).is_none());
}

#[test]
fn prep_stage_follows_the_status() {
    let now = Timestamp::from_millis(T0);
    assert_eq!(
        prep_stage(OrderStatus::Confirmed, None, now),
        PrepStage::NotStarted
    );
    assert_eq!(
        prep_stage(
            OrderStatus::Preparing,
            Some(Timestamp::from_millis(T0 - 90_000)),
            now
        ),
        PrepStage::Preparing { elapsed_s: 90.0 }
    );
    assert_eq!(
        prep_stage(OrderStatus::EnRoute, None, now),
        PrepStage::Ready
    );
}

#[test]
fn an_estimate_sums_its_components_and_flags_fallbacks() {
    let m = TravelModel::default();
    let c = Components {
        prep_s: (300.0, 60.0),
        pickup: m.routed(240.0),
        delivery: m.fallback(420.0),
    };
    let now = Timestamp::from_millis(T0);
    let e = estimate(OrderId::new("o-1"), now, &c, &RangePolicy::default());
    assert_eq!(e.estimated_delivery_at, now.plus_millis(960_000));
    assert!(e.fallback);
    assert!(e.range_low_min <= 16 && e.range_high_min >= 16);
    let routed = Components {
        delivery: m.routed(420.0),
        ..c
    };
    let r = estimate(OrderId::new("o-1"), now, &routed, &RangePolicy::default());
    assert!(!r.fallback);
    // A fallback leg is less certain: the range is at least as wide.
    assert!(e.range_high_min - e.range_low_min >= r.range_high_min - r.range_low_min);
}

fn travel() -> impl Strategy<Value = Travel> {
    (0.0f64..5_000.0, prop::bool::ANY).prop_map(|(s, routed)| {
        let m = TravelModel::default();
        if routed { m.routed(s) } else { m.fallback(s) }
    })
}

proptest! {
    #[test]
    fn the_point_estimate_lies_in_the_range_and_is_the_sum(
        prep in 0.0f64..3_600.0,
        prep_sigma in 0.0f64..900.0,
        pickup in travel(),
        delivery in travel(),
        now in 0i64..4_000_000_000_000,
    ) {
        let c = Components { prep_s: (prep, prep_sigma), pickup, delivery };
        let now = Timestamp::from_millis(now);
        let e = estimate(OrderId::new("o"), now, &c, &RangePolicy::default());
        let total = e.prep_remaining_s + e.pickup_travel_s + e.delivery_travel_s;
        let remaining = e.estimated_delivery_at.millis_since(now) as f64 / 1_000.0;
        prop_assert!((remaining - total).abs() <= 0.001);
        prop_assert!(f64::from(e.range_low_min) * 60.0 <= total + 1e-6);
        prop_assert!(f64::from(e.range_high_min) * 60.0 >= total - 1e-6);
        prop_assert_eq!(
            e.fallback,
            pickup.source == TravelSource::Fallback || delivery.source == TravelSource::Fallback
        );
    }

    #[test]
    fn less_time_left_never_gives_a_later_estimate(
        prep in 0.0f64..3_600.0,
        d1 in 0.0f64..5_000.0,
        d2 in 0.0f64..5_000.0,
    ) {
        // Same moment, same prep, a shorter remaining drive → an earlier or equal ETA.
        let m = TravelModel::default();
        let now = Timestamp::from_millis(T0);
        let at = |d: f64| {
            let c = Components { prep_s: (prep, 60.0), pickup: Travel::NONE, delivery: m.routed(d) };
            estimate(OrderId::new("o"), now, &c, &RangePolicy::default())
        };
        let (near, far) = (at(d1.min(d2)), at(d1.max(d2)));
        prop_assert!(near.estimated_delivery_at <= far.estimated_delivery_at);
        prop_assert!(near.range_high_min <= far.range_high_min);
    }
}
