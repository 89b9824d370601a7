//! The rules every `.avsc` file follows, and the id table's rule. A new schema that breaks
//! one fails here, not in production.

use super::catalog;
use apache_avro::Schema;
use apache_avro::schema::ResolvedSchema;
use doorstep_schemas::avro::{SCHEMA_FILES, value_subject};
use doorstep_schemas::events::topics;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap()
}

/// Calls `visit(path, object)` for every JSON object in the schema.
fn walk<'a>(
    node: &'a Json,
    path: &str,
    visit: &mut impl FnMut(&str, &'a serde_json::Map<String, Json>),
) {
    match node {
        Json::Object(map) => {
            visit(path, map);
            for (k, v) in map {
                walk(v, &format!("{path}/{k}"), visit);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{path}/{i}"), visit);
            }
        }
        _ => {}
    }
}

fn is_timestamp(ty: &Json) -> bool {
    ty.get("type") == Some(&Json::from("long"))
        && ty.get("logicalType") == Some(&Json::from("timestamp-millis"))
}

#[test]
fn every_record_enum_and_field_has_a_doc() {
    for file in SCHEMA_FILES {
        walk(&json(file.text), file.path, &mut |path, obj| {
            let named = matches!(
                obj.get("type").and_then(Json::as_str),
                Some("record" | "enum")
            );
            let field = obj.contains_key("name") && !named;
            if named || field {
                let doc = obj.get("doc").and_then(Json::as_str).unwrap_or("");
                assert!(
                    !doc.trim().is_empty(),
                    "{path}: {:?} has no doc",
                    obj.get("name")
                );
            }
        });
    }
}

#[test]
fn optional_fields_are_null_first_with_a_null_default() {
    for file in SCHEMA_FILES {
        walk(&json(file.text), file.path, &mut |path, obj| {
            let Some(Json::Array(branches)) = obj.get("type") else {
                return;
            };
            if branches.iter().any(|b| b == "null") {
                assert_eq!(branches[0], "null", "{path}: null must be the first branch");
                assert_eq!(
                    obj.get("default"),
                    Some(&Json::Null),
                    "{path}: optional field without default null"
                );
            }
        });
    }
}

#[test]
fn times_are_timestamp_millis() {
    for file in SCHEMA_FILES {
        walk(&json(file.text), file.path, &mut |path, obj| {
            let Some(name) = obj.get("name").and_then(Json::as_str) else {
                return;
            };
            if name.ends_with("_at") || name == "at" || name == "timestamp" {
                assert!(
                    is_timestamp(&obj["type"]),
                    "{path}: {name} is not timestamp-millis"
                );
            }
        });
    }
}

#[test]
fn top_level_records_are_in_the_doorstep_namespace() {
    for file in SCHEMA_FILES {
        let root = json(file.text);
        assert_eq!(root["type"], "record", "{}", file.path);
        assert_eq!(root["namespace"], "io.doorstep.v1", "{}", file.path);
        assert!(
            root["doc"].as_str().unwrap().starts_with(file.topic),
            "{}: doc names its topic first",
            file.path
        );
    }
}

/// A named type (GeoPoint, Actor, OrderStatus, ...) is written out in each file that uses
/// it; every copy must be the same type on the wire.
#[test]
fn shared_named_types_are_identical_in_every_file() {
    let mut seen: BTreeMap<String, (String, &str)> = BTreeMap::new();
    for file in SCHEMA_FILES {
        let schema = Schema::parse_str(file.text).unwrap();
        let resolved = ResolvedSchema::try_from(&schema).unwrap();
        for (name, named) in resolved.get_names() {
            let canonical = named.canonical_form();
            let key = name.fullname(None);
            match seen.get(&key) {
                // The topic records themselves differ between versions on purpose.
                Some((_, _)) if key == schema.name().unwrap().fullname(None) => {}
                Some((other, path)) => assert_eq!(
                    &canonical, other,
                    "{key} differs between {path} and {}",
                    file.path
                ),
                None => {
                    seen.insert(key, (canonical, file.path));
                }
            }
        }
    }
    for shared in ["GeoPoint", "Actor", "ActorKind", "OrderStatus"] {
        assert!(
            seen.contains_key(&format!("io.doorstep.v1.{shared}")),
            "{shared}"
        );
    }
}

/// Ids are `topic number × 100 + version`; versions count from 1 without gaps; every topic
/// has a schema; the current one is at the top of `schemas/avro/`, older ones in `history/`.
#[test]
fn the_id_table_follows_its_rule() {
    let mut ids = BTreeSet::new();
    for (i, topic) in topics::ALL.iter().enumerate() {
        let number = u32::try_from(i + 1).unwrap();
        let versions: Vec<_> = SCHEMA_FILES.iter().filter(|f| f.topic == *topic).collect();
        assert!(!versions.is_empty(), "{topic} has no schema");
        for (v, file) in versions.iter().enumerate() {
            let version = u32::try_from(v + 1).unwrap();
            assert_eq!(file.version, version, "{}", file.path);
            assert_eq!(file.id, number * 100 + version, "{}", file.path);
            assert!(ids.insert(file.id));
            let current = v + 1 == versions.len();
            assert_eq!(!file.path.starts_with("history/"), current, "{}", file.path);
        }
        assert_eq!(catalog().current(topic), versions.last().copied());
    }
    assert_eq!(ids.len(), SCHEMA_FILES.len());
    assert_eq!(
        value_subject(topics::ORDER_EVENTS),
        "orders.events.v1-value"
    );
}

/// Every `.avsc` file in the repository is in the table (none forgotten).
#[test]
fn every_schema_file_is_in_the_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("avro");
    let mut on_disk = BTreeSet::new();
    for dir in [root.clone(), root.join("history")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "avsc") {
                on_disk.insert(
                    path.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let in_table: BTreeSet<String> = SCHEMA_FILES.iter().map(|f| f.path.to_owned()).collect();
    assert_eq!(on_disk, in_table);
    for file in SCHEMA_FILES {
        assert_eq!(
            std::fs::read_to_string(root.join(file.path)).unwrap(),
            file.text
        );
    }
}
