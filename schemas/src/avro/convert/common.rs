//! Conversions of the model types shared by several records: positions, actors, order items
//! and the enums. Positions are range-checked both ways.

use super::value::{Fields, Read, record, string, to_symbol};
use crate::avro::direct::{self, Reader};
use crate::avro::error::DomainError;
use crate::events::RecipientKind;
use crate::model::{
    Actor, ActorKind, GeoPoint, HistoryEntryKind, OrderItem, OrderStatus, TrackingEventType,
};
use apache_avro::types::Value;

/// A Rust enum carried as an Avro enum. `ALL` is in the `.avsc` symbol order.
pub(crate) trait AvroEnum: Copy + PartialEq + 'static {
    /// Every variant, in schema symbol order.
    const ALL: &'static [Self];
    /// The Avro symbol.
    fn symbol(self) -> &'static str;
}

/// The Avro value of an enum.
pub(crate) fn enum_value<E: AvroEnum>(e: E) -> Value {
    let index = E::ALL.iter().position(|x| *x == e).unwrap_or_default();
    Value::Enum(
        u32::try_from(index).unwrap_or_default(),
        e.symbol().to_owned(),
    )
}

/// Reads an enum by symbol.
pub(crate) fn read_enum<E: AvroEnum>(field: &'static str, value: Value) -> Read<E> {
    let symbol = to_symbol(field, value)?;
    E::ALL
        .iter()
        .copied()
        .find(|e| e.symbol() == symbol)
        .ok_or(DomainError::UnknownSymbol { field, symbol })
}

impl AvroEnum for OrderStatus {
    const ALL: &'static [Self] = &OrderStatus::ALL;
    fn symbol(self) -> &'static str {
        self.as_str()
    }
}

impl AvroEnum for ActorKind {
    const ALL: &'static [Self] = &ActorKind::ALL;
    fn symbol(self) -> &'static str {
        self.as_str()
    }
}

impl AvroEnum for HistoryEntryKind {
    const ALL: &'static [Self] = &[
        Self::Placed,
        Self::Transition,
        Self::Cancelled,
        Self::DriverAssigned,
        Self::DriverUnassigned,
    ];
    fn symbol(self) -> &'static str {
        match self {
            Self::Placed => "PLACED",
            Self::Transition => "TRANSITION",
            Self::Cancelled => "CANCELLED",
            Self::DriverAssigned => "DRIVER_ASSIGNED",
            Self::DriverUnassigned => "DRIVER_UNASSIGNED",
        }
    }
}

impl AvroEnum for TrackingEventType {
    const ALL: &'static [Self] = &[Self::LocationUpdate, Self::StatusChange];
    fn symbol(self) -> &'static str {
        match self {
            Self::LocationUpdate => "LOCATION_UPDATE",
            Self::StatusChange => "STATUS_CHANGE",
        }
    }
}

impl AvroEnum for RecipientKind {
    const ALL: &'static [Self] = &[Self::Customer, Self::Restaurant, Self::Driver];
    fn symbol(self) -> &'static str {
        match self {
            Self::Customer => "CUSTOMER",
            Self::Restaurant => "RESTAURANT",
            Self::Driver => "DRIVER",
        }
    }
}

/// A `GeoPoint` record; refuses positions outside WGS 84 ranges.
pub(crate) fn geo_point(field: &'static str, p: &GeoPoint) -> Result<Value, DomainError> {
    p.validate()
        .map_err(|source| DomainError::Geo { field, source })?;
    Ok(record([
        ("lat", Value::Double(p.lat)),
        ("lng", Value::Double(p.lng)),
    ]))
}

/// Reads a `GeoPoint` record; refuses positions outside WGS 84 ranges.
pub(crate) fn read_geo_point(field: &'static str, value: Value) -> Read<GeoPoint> {
    let mut f = Fields::of(field, value)?;
    let p = GeoPoint {
        lat: f.double("lat")?,
        lng: f.double("lng")?,
    };
    p.validate()
        .map_err(|source| DomainError::Geo { field, source })?;
    Ok(p)
}

/// Appends a `GeoPoint` body; refuses positions outside WGS 84 ranges, like [`geo_point`].
pub(crate) fn write_geo_point(
    out: &mut Vec<u8>,
    field: &'static str,
    p: &GeoPoint,
) -> Result<(), DomainError> {
    p.validate()
        .map_err(|source| DomainError::Geo { field, source })?;
    direct::double(out, p.lat);
    direct::double(out, p.lng);
    Ok(())
}

/// Reads a `GeoPoint` body; `None` for a position outside WGS 84 ranges.
pub(crate) fn read_direct_geo_point(r: &mut Reader<'_>) -> Option<GeoPoint> {
    let p = GeoPoint {
        lat: r.double()?,
        lng: r.double()?,
    };
    p.validate().is_ok().then_some(p)
}

/// The Avro index of an enum symbol (its position in the schema's symbols).
pub(crate) fn enum_index<E: AvroEnum>(e: E) -> i64 {
    let index = E::ALL.iter().position(|x| *x == e).unwrap_or_default();
    i64::try_from(index).unwrap_or_default()
}

/// Reads an enum index; `None` when no symbol has it.
pub(crate) fn read_direct_enum<E: AvroEnum>(r: &mut Reader<'_>) -> Option<E> {
    let index = usize::try_from(r.long()?).ok()?;
    E::ALL.get(index).copied()
}

/// An `Actor` record.
pub(crate) fn actor(a: &Actor) -> Value {
    record([("kind", enum_value(a.kind)), ("id", string(&a.id))])
}

/// Reads an `Actor` record.
pub(crate) fn read_actor(field: &'static str, value: Value) -> Read<Actor> {
    let mut f = Fields::of(field, value)?;
    Ok(Actor {
        kind: f.with("kind", read_enum)?,
        id: f.string("id")?,
    })
}

/// An `OrderItem` record.
pub(crate) fn order_item(item: &OrderItem) -> Value {
    record([
        ("item_id", string(&item.item_id)),
        ("name", string(&item.name)),
        ("quantity", super::value::long_u32(item.quantity)),
        ("unit_price_cents", Value::Long(item.unit_price_cents)),
    ])
}

/// Reads an `OrderItem` record.
pub(crate) fn read_order_item(field: &'static str, value: Value) -> Read<OrderItem> {
    let mut f = Fields::of(field, value)?;
    Ok(OrderItem {
        item_id: f.string("item_id")?,
        name: f.string("name")?,
        quantity: f.long_u32("quantity")?,
        unit_price_cents: f.long("unit_price_cents")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::table::SCHEMA_FILES;

    /// The symbols of the enum named `name` in any embedded schema file (they must agree).
    fn symbols_in_files(name: &str) -> Vec<Vec<String>> {
        let mut found = Vec::new();
        for file in SCHEMA_FILES {
            let json: serde_json::Value = serde_json::from_str(file.text).unwrap();
            collect_enum(&json, name, &mut found);
        }
        assert!(!found.is_empty(), "enum {name} is in no schema file");
        found
    }

    fn collect_enum(json: &serde_json::Value, name: &str, out: &mut Vec<Vec<String>>) {
        match json {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("enum")
                    && map.get("name").and_then(|n| n.as_str()) == Some(name)
                {
                    let symbols = map["symbols"].as_array().unwrap();
                    out.push(
                        symbols
                            .iter()
                            .map(|s| s.as_str().unwrap().to_owned())
                            .collect(),
                    );
                }
                map.values().for_each(|v| collect_enum(v, name, out));
            }
            serde_json::Value::Array(items) => {
                items.iter().for_each(|v| collect_enum(v, name, out))
            }
            _ => {}
        }
    }

    fn check<E: AvroEnum + serde::Serialize>(name: &str) {
        let rust: Vec<String> = E::ALL.iter().map(|e| e.symbol().to_owned()).collect();
        for symbols in symbols_in_files(name) {
            assert_eq!(
                symbols, rust,
                "{name}: .avsc symbols differ from the Rust order"
            );
        }
        for e in E::ALL {
            // The JSON (serde) name and the Avro symbol are the same word.
            assert_eq!(serde_json::to_value(e).unwrap(), e.symbol(), "{name}");
            assert!(matches!(enum_value(*e), Value::Enum(_, ref s) if s == e.symbol()));
        }
    }

    #[test]
    fn enum_symbols_match_the_schema_files_and_serde() {
        check::<OrderStatus>("OrderStatus");
        check::<ActorKind>("ActorKind");
        check::<HistoryEntryKind>("HistoryEntryKind");
        check::<TrackingEventType>("TrackingEventType");
        check::<RecipientKind>("RecipientKind");
    }

    #[test]
    fn unknown_symbols_and_bad_positions_are_domain_errors() {
        let err = read_enum::<OrderStatus>("to", Value::Enum(0, "SHIPPED".into())).unwrap_err();
        assert!(matches!(
            err,
            DomainError::UnknownSymbol { field: "to", .. }
        ));
        let bad = record([("lat", Value::Double(91.0)), ("lng", Value::Double(0.0))]);
        assert!(matches!(
            read_geo_point("location", bad),
            Err(DomainError::Geo {
                field: "location",
                ..
            })
        ));
        let nan = GeoPoint {
            lat: f64::NAN,
            lng: 0.0,
        };
        assert!(geo_point("location", &nan).is_err());
    }
}
