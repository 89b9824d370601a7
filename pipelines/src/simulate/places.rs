//! Where the simulated restaurants are and where customers live: central Helsinki, inside the
//! OpenStreetMap extract the routing graph (and the demo page's map) is built from
//! (about 24.935–24.953 E, 60.164–60.179 N). Every place is a point on a named street of the
//! extract's main road network, checked to route to and from the others by car (the extract
//! also has disconnected pieces — pedestrian zones, courtyards — where OSRM finds no route).

use doorstep_schemas::model::GeoPoint;

const fn at(lat: f64, lng: f64) -> GeoPoint {
    GeoPoint { lat, lng }
}

/// Simulated restaurants: id and position.
pub const RESTAURANTS: [(&str, GeoPoint); 6] = [
    ("r-kluuvi", at(60.17167, 24.94506)),          // Mikonkatu
    ("r-esplanadi", at(60.16766, 24.94297)),       // Pohjoisesplanadi
    ("r-kaartinkaupunki", at(60.16583, 24.94589)), // Korkeavuorenkatu
    ("r-rautatientori", at(60.17083, 24.94273)),   // Rautatientori
    ("r-kaisaniemi", at(60.17174, 24.94765)),      // Kaisaniemenkatu
    ("r-kamppi", at(60.16737, 24.93817)),          // Kalevankatu
];

/// Customers' addresses (lat, lng).
const ADDRESSES: [(f64, f64); 48] = [
    (60.16501, 24.93899), // Bulevardi
    (60.16493, 24.94210), // Uudenmaankatu
    (60.16500, 24.94598), // Korkeavuorenkatu
    (60.16499, 24.94860), // Kasarmitori
    (60.16481, 24.95102), // Eteläinen Makasiinikatu
    (60.16592, 24.93824), // Annankatu
    (60.16580, 24.94188), // Yrjönkatu
    (60.16578, 24.94500), // Ludviginkatu
    (60.16583, 24.94779), // Kasarmikatu
    (60.16582, 24.94967), // Fabianinkatu
    (60.16571, 24.95201), // Pohjoinen Makasiinikatu
    (60.16673, 24.93818), // Lönnrotin puistikko
    (60.16659, 24.94077), // Yrjönkatu
    (60.16671, 24.94393), // Eteläesplanadi
    (60.16666, 24.94769), // Kasarmikatu
    (60.16737, 24.93817), // Kalevankatu
    (60.16754, 24.94197), // Pohjoisesplanadi
    (60.16769, 24.94398), // Pohjoisesplanadi
    (60.16750, 24.95110), // Unioninkatu
    (60.16835, 24.93705), // Yrjönkatu
    (60.16834, 24.94937), // Fabianinkatu
    (60.16925, 24.93923), // Mannerheimintie
    (60.16896, 24.94802), // Aleksanterinkatu
    (60.16900, 24.95002), // Aleksanterinkatu
    (60.17001, 24.93802), // Mannerheimintie
    (60.17001, 24.94537), // Mikonkatu
    (60.16982, 24.94702), // Yliopistonkatu
    (60.17001, 24.94923), // Fabianinkatu
    (60.17000, 24.95087), // Unioninkatu
    (60.17081, 24.93700), // Postikatu
    (60.17083, 24.94273), // Rautatientori
    (60.17088, 24.94594), // Kaisaniemenkatu
    (60.17074, 24.95001), // Kirkkokatu
    (60.17166, 24.94264), // Rautatientori
    (60.17174, 24.94765), // Kaisaniemenkatu
    (60.17166, 24.95069), // Unioninkatu
    (60.17251, 24.94427), // Itäinen Teatterikuja
    (60.17245, 24.94817), // Kaisaniemenkatu
    (60.17332, 24.94904), // Kaisaniemenkatu
    (60.17416, 24.94296), // Kaisaniemen puistokuja
    (60.17404, 24.95101), // Liisankatu
    (60.17502, 24.94238), // Kaisaniemen puistokuja
    (60.17585, 24.94209), // Kaisaniemen puistokuja
    (60.17590, 24.94802), // Kaisaniemenranta
    (60.17580, 24.95000), // Kaisaniemenranta
    (60.17672, 24.94168), // Kaisaniemen puistokuja
    (60.17685, 24.94899), // Pitkänsillanranta
    (60.17762, 24.94609), // Pitkänsillanranta
];

/// A customer's address, from a number in `0..1`.
pub fn random_delivery_point(u: f64) -> GeoPoint {
    let i = ((u.clamp(0.0, 1.0) * ADDRESSES.len() as f64) as usize).min(ADDRESSES.len() - 1);
    let (lat, lng) = ADDRESSES[i];
    at(lat, lng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_place_is_inside_the_map_extract() {
        let inside =
            |p: GeoPoint| (60.164..60.179).contains(&p.lat) && (24.935..24.953).contains(&p.lng);
        assert!(RESTAURANTS.iter().all(|(_, p)| inside(*p)));
        assert!(ADDRESSES.iter().all(|(lat, lng)| inside(at(*lat, *lng))));
        assert_eq!(
            random_delivery_point(0.0),
            at(ADDRESSES[0].0, ADDRESSES[0].1)
        );
        assert_eq!(
            random_delivery_point(1.0),
            at(ADDRESSES[47].0, ADDRESSES[47].1)
        );
        assert_eq!(random_delivery_point(-3.0), random_delivery_point(0.0));
    }
}
