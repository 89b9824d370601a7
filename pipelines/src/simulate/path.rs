//! A route as a driver drives it: the polyline OSRM returned, with the distance travelled at
//! every vertex, so the position after `t` seconds of driving is one interpolation.

use doorstep_schemas::model::GeoPoint;

/// A drivable path: vertices, cumulative distance and total travel time.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    points: Vec<GeoPoint>,
    /// Distance from the start to each vertex, metres.
    cumulative_m: Vec<f64>,
    duration_s: f64,
}

/// Why a polyline cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolylineError {
    /// The string ends in the middle of a number.
    #[error("polyline truncated")]
    Truncated,
    /// A character outside the polyline alphabet.
    #[error("invalid polyline character {0:?}")]
    InvalidChar(char),
}

/// Decodes an encoded polyline (Google's algorithm) with `precision` decimal digits
/// (OSRM's `polyline6`: 6).
pub fn decode_polyline(encoded: &str, precision: u32) -> Result<Vec<GeoPoint>, PolylineError> {
    let factor = 10f64.powi(precision as i32);
    let mut chars = encoded.chars();
    let (mut lat, mut lng) = (0i64, 0i64);
    let mut out = Vec::new();
    let next = |chars: &mut std::str::Chars<'_>| -> Result<Option<i64>, PolylineError> {
        let (mut result, mut shift) = (0i64, 0u32);
        let mut first = true;
        loop {
            let Some(c) = chars.next() else {
                return if first {
                    Ok(None)
                } else {
                    Err(PolylineError::Truncated)
                };
            };
            first = false;
            let b = (c as i64) - 63;
            if !(0..64).contains(&b) || shift > 60 {
                return Err(PolylineError::InvalidChar(c));
            }
            result |= (b & 0x1f) << shift;
            shift += 5;
            if b < 0x20 {
                break;
            }
        }
        Ok(Some(if result & 1 == 1 {
            !(result >> 1)
        } else {
            result >> 1
        }))
    };
    while let Some(dlat) = next(&mut chars)? {
        let dlng = next(&mut chars)?.ok_or(PolylineError::Truncated)?;
        lat += dlat;
        lng += dlng;
        out.push(GeoPoint {
            lat: lat as f64 / factor,
            lng: lng as f64 / factor,
        });
    }
    Ok(out)
}

impl Path {
    /// A path through `points` (at least one) driven in `duration_s` seconds.
    pub fn new(points: Vec<GeoPoint>, duration_s: f64) -> Option<Self> {
        let first = *points.first()?;
        let mut cumulative_m = Vec::with_capacity(points.len());
        let mut total = 0.0;
        let mut prev = first;
        for p in &points {
            total += prev.distance_m(p);
            cumulative_m.push(total);
            prev = *p;
        }
        Some(Self {
            points,
            cumulative_m,
            duration_s: duration_s.max(0.0),
        })
    }

    /// A straight line at `speed_mps` (the fallback when routing fails).
    pub fn straight(from: GeoPoint, to: GeoPoint, speed_mps: f64) -> Self {
        let duration_s = from.distance_m(&to) / speed_mps.max(0.1);
        Self {
            points: vec![from, to],
            cumulative_m: vec![0.0, from.distance_m(&to)],
            duration_s,
        }
    }

    /// Travel time, seconds.
    pub fn duration_s(&self) -> f64 {
        self.duration_s
    }

    /// Length, metres.
    pub fn length_m(&self) -> f64 {
        self.cumulative_m.last().copied().unwrap_or(0.0)
    }

    /// The end of the path.
    pub fn end(&self) -> GeoPoint {
        self.points[self.points.len() - 1]
    }

    /// Where the driver is after `t` seconds (at constant speed along the path; the start
    /// before 0, the end after the duration).
    pub fn position_at(&self, t: f64) -> GeoPoint {
        let total = self.length_m();
        if total <= 0.0 || self.duration_s <= 0.0 {
            return self.end();
        }
        let along = (t / self.duration_s).clamp(0.0, 1.0) * total;
        let i = self.cumulative_m.partition_point(|d| *d < along);
        if i == 0 {
            return self.points[0];
        }
        if i >= self.points.len() {
            return self.end();
        }
        let (a, b) = (self.points[i - 1], self.points[i]);
        let (da, db) = (self.cumulative_m[i - 1], self.cumulative_m[i]);
        let f = if db > da {
            (along - da) / (db - da)
        } else {
            1.0
        };
        GeoPoint {
            lat: a.lat + (b.lat - a.lat) * f,
            lng: a.lng + (b.lng - a.lng) * f,
        }
    }

    /// Average speed, m/s.
    pub fn speed_mps(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.length_m() / self.duration_s
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_reference_polyline() {
        // Google's documented example, precision 5.
        let pts = decode_polyline("_p~iF~ps|U_ulLnnqC_mqNvxq`@", 5).unwrap();
        assert_eq!(pts.len(), 3);
        assert!((pts[0].lat - 38.5).abs() < 1e-9 && (pts[0].lng + 120.2).abs() < 1e-9);
        assert!((pts[2].lat - 43.252).abs() < 1e-9 && (pts[2].lng + 126.453).abs() < 1e-9);
        assert_eq!(decode_polyline("_p~iF", 5), Err(PolylineError::Truncated));
        assert!(decode_polyline("_p~iF~ps|U ", 5).is_err());
        assert_eq!(decode_polyline("", 6), Ok(vec![]));
    }

    #[test]
    fn positions_interpolate_along_the_path() {
        let a = GeoPoint {
            lat: 60.17,
            lng: 24.94,
        };
        let b = GeoPoint {
            lat: 60.171,
            lng: 24.94,
        };
        let c = GeoPoint {
            lat: 60.171,
            lng: 24.942,
        };
        let p = Path::new(vec![a, b, c], 100.0).unwrap();
        assert_eq!(p.position_at(-5.0), a);
        assert_eq!(p.position_at(1e9), c);
        let ab = a.distance_m(&b);
        let t_at_b = 100.0 * ab / p.length_m();
        let at_b = p.position_at(t_at_b);
        assert!(at_b.distance_m(&b) < 0.01, "{at_b:?}");
        let mid = p.position_at(t_at_b / 2.0);
        assert!((mid.distance_m(&a) - ab / 2.0).abs() < 0.5);
        let s = Path::straight(a, c, 10.0);
        assert!((s.duration_s() - a.distance_m(&c) / 10.0).abs() < 1e-9);
        assert!(Path::new(vec![], 1.0).is_none());
    }
}
