//! Where the simulated restaurants are and where customers live: central Helsinki, inside the
//! OpenStreetMap extract the routing graph (and the demo page's map) is built from
//! (about 24.935–24.953 E, 60.164–60.179 N).

use doorstep_schemas::model::GeoPoint;

/// Simulated restaurants: id and position (on or next to a street of the extract).
pub const RESTAURANTS: [(&str, GeoPoint); 6] = [
    (
        "r-kluuvi",
        GeoPoint {
            lat: 60.1712,
            lng: 24.9466,
        },
    ),
    (
        "r-esplanadi",
        GeoPoint {
            lat: 60.1676,
            lng: 24.9452,
        },
    ),
    (
        "r-kaartinkaupunki",
        GeoPoint {
            lat: 60.1656,
            lng: 24.9487,
        },
    ),
    (
        "r-rautatientori",
        GeoPoint {
            lat: 60.1702,
            lng: 24.9418,
        },
    ),
    (
        "r-kaisaniemi",
        GeoPoint {
            lat: 60.1748,
            lng: 24.9470,
        },
    ),
    (
        "r-kamppi",
        GeoPoint {
            lat: 60.1686,
            lng: 24.9385,
        },
    ),
];

/// South-west corner and size (degrees) of the area customers live in.
const AREA: (f64, f64, f64, f64) = (60.1650, 24.9370, 0.0125, 0.0150);

/// A delivery point inside the area, from a pair of numbers in `0..1`.
pub fn random_delivery_point(u: f64, v: f64) -> GeoPoint {
    let (lat, lng, dlat, dlng) = AREA;
    GeoPoint {
        lat: lat + dlat * u.clamp(0.0, 1.0),
        lng: lng + dlng * v.clamp(0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_place_is_inside_the_map_extract() {
        let inside =
            |p: GeoPoint| (60.164..60.179).contains(&p.lat) && (24.935..24.953).contains(&p.lng);
        assert!(RESTAURANTS.iter().all(|(_, p)| inside(*p)));
        assert!(inside(random_delivery_point(0.0, 0.0)));
        assert!(inside(random_delivery_point(1.0, 1.0)));
        assert!(inside(random_delivery_point(7.0, -3.0)));
    }
}
