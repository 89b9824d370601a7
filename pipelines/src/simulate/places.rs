//! Where the simulated restaurants are and where customers live: central Helsinki, inside the
//! OSRM extract the demo routes on.

use doorstep_schemas::model::GeoPoint;

/// Simulated restaurants: id and position.
pub const RESTAURANTS: [(&str, GeoPoint); 6] = [
    (
        "r-kamppi",
        GeoPoint {
            lat: 60.1690,
            lng: 24.9320,
        },
    ),
    (
        "r-kluuvi",
        GeoPoint {
            lat: 60.1712,
            lng: 24.9466,
        },
    ),
    (
        "r-punavuori",
        GeoPoint {
            lat: 60.1615,
            lng: 24.9395,
        },
    ),
    (
        "r-kruununhaka",
        GeoPoint {
            lat: 60.1735,
            lng: 24.9560,
        },
    ),
    (
        "r-toolo",
        GeoPoint {
            lat: 60.1760,
            lng: 24.9270,
        },
    ),
    (
        "r-katajanokka",
        GeoPoint {
            lat: 60.1670,
            lng: 24.9650,
        },
    ),
];

/// A delivery point within about 1.5 km of the centre, from a seed in 0..1 pairs.
pub fn random_delivery_point(u: f64, v: f64) -> GeoPoint {
    GeoPoint {
        lat: 60.1620 + 0.0150 * u.clamp(0.0, 1.0),
        lng: 24.9250 + 0.0420 * v.clamp(0.0, 1.0),
    }
}
