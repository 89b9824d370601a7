//! Geohash (base32, Gustavo Niemeyer's encoding): the cell a point falls in, as the cache key
//! of a routing lookup. Two points with the same geohash of precision `p` are within one cell
//! (precision 6 ≈ 1.2 km × 0.6 km, 7 ≈ 153 m × 153 m, 8 ≈ 38 m × 19 m).

use doorstep_schemas::model::GeoPoint;

/// The longest geohash produced (12 characters ≈ 3.7 cm × 1.9 cm).
pub const MAX_PRECISION: usize = 12;

const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The geohash of `point` with `precision` characters (clamped to 1..=[`MAX_PRECISION`]).
/// Out-of-range or non-finite coordinates are clamped to the valid range first, so the
/// function is total.
pub fn encode(point: GeoPoint, precision: usize) -> String {
    let precision = precision.clamp(1, MAX_PRECISION);
    let clamp = |v: f64, limit: f64| {
        if v.is_finite() {
            v.clamp(-limit, limit)
        } else {
            0.0
        }
    };
    let (lat, lng) = (clamp(point.lat, 90.0), clamp(point.lng, 180.0));
    let (mut lat_lo, mut lat_hi) = (-90.0_f64, 90.0_f64);
    let (mut lng_lo, mut lng_hi) = (-180.0_f64, 180.0_f64);
    let mut out = String::with_capacity(precision);
    let mut even = true;
    let mut bits = 0u8;
    let mut value = 0usize;
    while out.len() < precision {
        let (v, lo, hi) = if even {
            (lng, &mut lng_lo, &mut lng_hi)
        } else {
            (lat, &mut lat_lo, &mut lat_hi)
        };
        let mid = (*lo + *hi) / 2.0;
        value <<= 1;
        if v >= mid {
            value |= 1;
            *lo = mid;
        } else {
            *hi = mid;
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            out.push(char::from(BASE32[value]));
            bits = 0;
            value = 0;
        }
    }
    out
}

/// The cell of a geohash as `(lat_min, lat_max, lng_min, lng_max)`, or `None` for a string
/// with a character outside the alphabet.
pub fn bounds(hash: &str) -> Option<(f64, f64, f64, f64)> {
    let (mut lat_lo, mut lat_hi) = (-90.0_f64, 90.0_f64);
    let (mut lng_lo, mut lng_hi) = (-180.0_f64, 180.0_f64);
    let mut even = true;
    for c in hash.bytes() {
        let value = BASE32.iter().position(|b| *b == c)?;
        for shift in (0..5).rev() {
            let bit = (value >> shift) & 1 == 1;
            let (lo, hi) = if even {
                (&mut lng_lo, &mut lng_hi)
            } else {
                (&mut lat_lo, &mut lat_hi)
            };
            let mid = (*lo + *hi) / 2.0;
            if bit {
                *lo = mid;
            } else {
                *hi = mid;
            }
            even = !even;
        }
    }
    Some((lat_lo, lat_hi, lng_lo, lng_hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // The classic example point (57.64911, 10.40744) is "u4pruydqqvj".
        let p = GeoPoint {
            lat: 57.64911,
            lng: 10.40744,
        };
        assert_eq!(encode(p, 11), "u4pruydqqvj");
        // Helsinki central station.
        let hki = GeoPoint {
            lat: 60.1719,
            lng: 24.9414,
        };
        assert_eq!(encode(hki, 5), "ud9wr");
        assert_eq!(encode(hki, 0).len(), 1);
        assert_eq!(encode(hki, 99).len(), MAX_PRECISION);
        assert_eq!(bounds("a"), None);
    }

    proptest! {
        #[test]
        fn the_point_is_inside_its_cell_and_longer_hashes_refine(
            lat in -90.0f64..=90.0,
            lng in -180.0f64..=180.0,
            precision in 1usize..=MAX_PRECISION,
        ) {
            let p = GeoPoint { lat, lng };
            let h = encode(p, precision);
            prop_assert_eq!(h.len(), precision);
            let (a, b, c, d) = bounds(&h).expect("own alphabet");
            prop_assert!(a <= lat && lat <= b && c <= lng && lng <= d, "{h} {a} {b} {c} {d}");
            if precision < MAX_PRECISION {
                prop_assert!(encode(p, precision + 1).starts_with(&h));
            }
        }
    }
}
