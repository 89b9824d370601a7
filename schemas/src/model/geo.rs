//! Geographic points (WGS 84) with range validation and great-circle distance.

use serde::{Deserialize, Serialize};

/// A WGS 84 position. Construct through [`GeoPoint::new`] to get range checks.
///
/// As JSON it is exactly `{"lat": .., "lng": ..}`: an array (which serde's derive would read
/// positionally) or an unknown field is refused, so `[1, 2]` is not taken for a position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GeoPoint {
    /// Latitude in degrees, −90..=90.
    pub lat: f64,
    /// Longitude in degrees, −180..=180.
    pub lng: f64,
}

/// Why a pair of numbers is not a position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// Latitude outside −90..=90 or not finite.
    #[error("latitude {0} is outside -90..=90")]
    LatitudeOutOfRange(f64),
    /// Longitude outside −180..=180 or not finite.
    #[error("longitude {0} is outside -180..=180")]
    LongitudeOutOfRange(f64),
}

impl<'de> Deserialize<'de> for GeoPoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = GeoPoint;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object {\"lat\": number, \"lng\": number}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<GeoPoint, A::Error> {
                use serde::de::Error;
                let (mut lat, mut lng) = (None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "lat" => &mut lat,
                        "lng" => &mut lng,
                        other => return Err(A::Error::unknown_field(other, &["lat", "lng"])),
                    };
                    if slot.is_some() {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                    *slot = Some(map.next_value::<f64>()?);
                }
                Ok(GeoPoint {
                    lat: lat.ok_or_else(|| A::Error::missing_field("lat"))?,
                    lng: lng.ok_or_else(|| A::Error::missing_field("lng"))?,
                })
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Mean Earth radius in metres (IUGG).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

impl GeoPoint {
    /// A checked position.
    pub fn new(lat: f64, lng: f64) -> Result<Self, GeoError> {
        let p = Self { lat, lng };
        p.validate()?;
        Ok(p)
    }

    /// Checks the ranges (useful after deserialising untrusted input).
    pub fn validate(&self) -> Result<(), GeoError> {
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Err(GeoError::LatitudeOutOfRange(self.lat));
        }
        if !self.lng.is_finite() || !(-180.0..=180.0).contains(&self.lng) {
            return Err(GeoError::LongitudeOutOfRange(self.lng));
        }
        Ok(())
    }

    /// Great-circle (haversine) distance in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlng = (other.lng - self.lng).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().atan2((1.0 - a).sqrt())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_exactly_an_object_of_lat_and_lng() {
        let p: GeoPoint = serde_json::from_str(r#"{"lng": 24.9, "lat": 60.1}"#).unwrap();
        assert_eq!(
            p,
            GeoPoint {
                lat: 60.1,
                lng: 24.9
            }
        );
        for bad in [
            "[60.1, 24.9]",
            r#"{"lat": 1, "lng": 2, "alt": 3}"#,
            r#"{"lat": 1}"#,
            r#"{"lat": 1, "lat": 2, "lng": 3}"#,
            "null",
        ] {
            assert!(serde_json::from_str::<GeoPoint>(bad).is_err(), "{bad}");
        }
    }

    use super::*;

    #[test]
    fn rejects_out_of_range() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -180.5).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(60.17, 24.94).is_ok());
    }

    #[test]
    fn helsinki_distance_is_plausible() {
        // Helsinki central station to Kamppi: about 530 m.
        let a = GeoPoint::new(60.1719, 24.9414).unwrap();
        let b = GeoPoint::new(60.1692, 24.9334).unwrap();
        let d = a.distance_m(&b);
        assert!((480.0..600.0).contains(&d), "{d}");
    }
}
