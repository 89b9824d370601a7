use super::*;
use doorstep_schemas::model::DriverId;
use proptest::prelude::*;

const T0: i64 = 1_700_000_000_000;

fn ping(id: &str, lat: f64, lng: f64, at: i64) -> LocationPing {
    LocationPing {
        ping_id: EventId::new(id),
        driver_id: DriverId::new("d-1"),
        location: GeoPoint { lat, lng },
        accuracy_m: None,
        heading_deg: None,
        speed_mps: None,
        recorded_at: Timestamp::from_millis(at),
        received_at: Timestamp::from_millis(at + 200),
    }
}

fn code(r: Result<(), PingRejection>) -> &'static str {
    r.err().map_or("accepted", |e| e.code())
}

#[test]
fn first_ping_is_accepted_unless_stale_or_out_of_range() {
    let f = LocationFilter::default();
    let now = Timestamp::from_millis(T0 + 1_000);
    assert_eq!(
        code(f.decide(None, &ping("p1", 60.17, 24.94, T0), now)),
        "accepted"
    );
    assert_eq!(
        code(f.decide(None, &ping("p1", 60.17, 24.94, T0 - 121_000), now)),
        "stale"
    );
    assert_eq!(
        code(f.decide(None, &ping("p1", 91.0, 24.94, T0), now)),
        "out_of_range"
    );
    assert_eq!(
        code(f.decide(None, &ping("p1", f64::NAN, 24.94, T0), now)),
        "out_of_range"
    );
}

#[test]
fn each_reason_against_the_last_accepted() {
    let f = LocationFilter::default();
    let last = LastPing::of(&ping("p1", 60.17, 24.94, T0));
    let now = Timestamp::from_millis(T0 + 10_000);
    let d = |p: LocationPing| code(f.decide(Some(&last), &p, now));
    // 5 s later, ~55 m north: 11 m/s.
    assert_eq!(d(ping("p2", 60.1705, 24.94, T0 + 5_000)), "accepted");
    assert_eq!(d(ping("p1", 60.1705, 24.94, T0 + 5_000)), "duplicate");
    assert_eq!(d(ping("p9", 60.1705, 24.94, T0)), "duplicate");
    assert_eq!(d(ping("p0", 60.1705, 24.94, T0 - 1)), "out_of_order");
    // 5 s later, ~1.1 km away: 222 m/s.
    assert_eq!(d(ping("p3", 60.18, 24.94, T0 + 5_000)), "impossible_speed");
    // Exactly at the limit is believable.
    let slow = LocationFilter::new(LocationPolicy {
        max_speed_mps: 70.0,
        max_age_ms: 120_000,
    });
    let to = ping("p4", 60.17, 24.94, T0 + 10_000);
    let dist = last.location.distance_m(&to.location);
    assert!(dist < 1.0);
    assert!(slow.decide(Some(&last), &to, now).is_ok());
}

#[test]
fn stale_uses_the_given_now_not_the_wall_clock() {
    let f = LocationFilter::default();
    let p = ping("p1", 60.17, 24.94, T0);
    assert!(
        f.decide(None, &p, Timestamp::from_millis(T0 + 120_000))
            .is_ok()
    );
    assert_eq!(
        code(f.decide(None, &p, Timestamp::from_millis(T0 + 120_001))),
        "stale"
    );
}

#[test]
fn rejection_messages_name_the_numbers() {
    let r = PingRejection::ImpossibleSpeed {
        speed_mps: 222.04,
        distance_m: 1110.0,
    };
    assert_eq!(
        r.to_string(),
        "implied speed 222.0 m/s over 1110 m from the last accepted fix"
    );
}

#[test]
fn regions_are_grid_cells() {
    let hel = GeoPoint {
        lat: 60.1699,
        lng: 24.9384,
    };
    assert_eq!(region_of(hel, 0.5), "60.00:24.50");
    assert_eq!(region_of(hel, 0.1), "60.10:24.90");
    assert_eq!(
        region_of(
            GeoPoint {
                lat: -0.1,
                lng: -0.1
            },
            0.5
        ),
        "-0.50:-0.50"
    );
    assert_eq!(region_of(GeoPoint { lat: 0.0, lng: 0.0 }, 0.5), "0.00:0.00");
    assert_eq!(
        region_of(
            GeoPoint {
                lat: 90.0,
                lng: 180.0
            },
            0.5
        ),
        "89.50:179.50"
    );
    assert_eq!(region_of(hel, 0.0), "60.00:24.00");
    assert_eq!(region_of(hel, 0.001), "60.169:24.938");
    assert_eq!(
        region_of(
            GeoPoint {
                lat: -0.0,
                lng: 0.0
            },
            0.001
        ),
        "0.000:0.000"
    );
    assert_ne!(
        region_of(hel, 0.001),
        region_of(
            GeoPoint {
                lat: 60.1709,
                lng: 24.9384
            },
            0.001
        )
    );
}

proptest! {
    /// Plausible movement (≤ 30 m/s, fixes 1–30 s apart, fresh) is always accepted, and any
    /// ping older than the last accepted one is then refused.
    #[test]
    fn monotone_plausible_pings_are_accepted_and_older_ones_refused(
        steps in prop::collection::vec((1_000i64..30_000, -1.0f64..1.0, -1.0f64..1.0, 0.0f64..30.0), 1..40),
        back in 1i64..1_000_000,
    ) {
        let f = LocationFilter::default();
        let mut last: Option<LastPing> = None;
        let (mut lat, mut lng, mut at) = (60.17f64, 24.94f64, T0);
        for (i, (dt, dx, dy, speed)) in steps.iter().enumerate() {
            at += dt;
            // Move at most `speed` m/s in a direction, in degrees (1° lat ≈ 111 km).
            let norm = (dx * dx + dy * dy).sqrt().max(1e-9);
            let metres = speed * (*dt as f64 / 1000.0) * 0.99;
            lat += dy / norm * metres / 111_320.0;
            lng += dx / norm * metres / (111_320.0 * lat.to_radians().cos());
            let p = ping(&format!("p{i}"), lat, lng, at);
            let now = Timestamp::from_millis(at + 500);
            prop_assert_eq!(f.decide(last.as_ref(), &p, now), Ok(()));
            last = Some(LastPing::of(&p));
        }
        let old = ping("older", lat, lng, at - back);
        let r = f.decide(last.as_ref(), &old, Timestamp::from_millis(at + 500));
        prop_assert_eq!(r.err().map(|e| e.code()), Some("out_of_order"));
    }
}
