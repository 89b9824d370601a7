//! Registration, lookup and compatibility rules of the in-memory registry.

use super::*;

const V1: &str = r#"{"type":"record","name":"OrderPlaced","namespace":"doorstep",
    "fields":[{"name":"order_id","type":"string"}]}"#;
/// V1 plus an optional field with a default: BACKWARD and FORWARD compatible.
const V2_OPTIONAL: &str = r#"{"type":"record","name":"OrderPlaced","namespace":"doorstep",
    "fields":[{"name":"order_id","type":"string"},
              {"name":"note","type":["null","string"],"default":null}]}"#;
/// V1 plus a required field: not BACKWARD compatible (cannot read old data), but FORWARD.
const V2_REQUIRED: &str = r#"{"type":"record","name":"OrderPlaced","namespace":"doorstep",
    "fields":[{"name":"order_id","type":"string"},{"name":"total_cents","type":"long"}]}"#;
const OTHER: &str = r#"{"type":"record","name":"DriverPing","namespace":"doorstep",
    "fields":[{"name":"driver_id","type":"string"}]}"#;

fn req(schema: &str) -> SchemaRequest {
    SchemaRequest {
        schema: schema.to_owned(),
        schema_type: None,
        references: Vec::new(),
    }
}

fn register(reg: &mut Registry, subject: &str, schema: &str) -> u32 {
    match reg.register(subject, &req(schema)) {
        Ok(id) => id,
        Err(err) => panic!("registering under {subject} failed: {err}"),
    }
}

#[test]
fn same_schema_same_subject_returns_the_existing_id_without_a_new_version() {
    let mut reg = Registry::new();
    let a = register(&mut reg, "orders-value", V1);
    let b = register(&mut reg, "orders-value", V1);
    assert_eq!(a, b);
    assert_eq!(reg.versions("orders-value"), Ok(vec![1]));
}

#[test]
fn ids_are_global_and_shared_across_subjects_after_canonicalisation() {
    let mut reg = Registry::new();
    let a = register(&mut reg, "a-value", V1);
    let other = register(&mut reg, "c-value", OTHER);
    // Same schema, different whitespace and key order, under another subject.
    let reordered = r#"{"namespace":"doorstep","fields":[{"type":"string","name":"order_id"}],
        "name":"OrderPlaced","type":"record"}"#;
    let b = register(&mut reg, "b-value", reordered);
    assert_eq!(a, b);
    assert_ne!(a, other);
    assert_eq!(reg.subjects(), vec!["a-value", "b-value", "c-value"]);
    assert_eq!(
        reg.version("b-value", VersionSel::Latest).map(|v| v.id),
        Ok(a)
    );
}

#[test]
fn backward_default_refuses_a_new_required_field_with_409() {
    let mut reg = Registry::new();
    register(&mut reg, "s", V1);
    let err = reg.register("s", &req(V2_REQUIRED)).err();
    let err = err.unwrap_or_else(|| panic!("incompatible schema was accepted"));
    assert_eq!(err.status.as_u16(), 409);
    assert_eq!(err.code, 409);
    assert!(err.message.contains("total_cents"), "{}", err.message);
    assert_eq!(reg.versions("s"), Ok(vec![1]));
}

#[test]
fn backward_accepts_an_optional_field_as_version_2() {
    let mut reg = Registry::new();
    let v1 = register(&mut reg, "s", V1);
    let v2 = register(&mut reg, "s", V2_OPTIONAL);
    assert_ne!(v1, v2);
    let latest = reg.version("s", VersionSel::Latest);
    assert_eq!(latest.as_ref().map(|v| (v.version, v.id)), Ok((2, v2)));
    assert_eq!(
        reg.version("s", VersionSel::Number(1)).map(|v| v.id),
        Ok(v1)
    );
}

#[test]
fn level_none_and_forward_allow_what_backward_refuses() {
    let mut reg = Registry::new();
    register(&mut reg, "s", V1);
    reg.set_level(Some("s"), Level::Forward);
    assert!(reg.register("s", &req(V2_REQUIRED)).is_ok());

    let mut reg = Registry::new();
    reg.set_level(None, Level::None);
    register(&mut reg, "s", V1);
    assert!(reg.register("s", &req(OTHER)).is_ok());
}

#[test]
fn transitive_checks_every_earlier_version() {
    let old = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#;
    // Drops `a`, then re-adds `a` as a string with a default. Against the latest (v2)
    // that is fine; against v1 (a:int) the reader's string `a` cannot read an int.
    let v2 = r#"{"type":"record","name":"R","fields":[]}"#;
    let v3 = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string","default":""}]}"#;
    let mut reg = Registry::new();
    register(&mut reg, "plain", old);
    register(&mut reg, "plain", v2);
    assert!(reg.register("plain", &req(v3)).is_ok());

    let mut reg = Registry::new();
    reg.set_level(Some("t"), Level::BackwardTransitive);
    register(&mut reg, "t", old);
    register(&mut reg, "t", v2);
    let err = reg.register("t", &req(v3)).err();
    assert_eq!(err.map(|e| e.code), Some(409));
}

#[test]
fn check_reports_problems_against_a_named_or_default_version() {
    let mut reg = Registry::new();
    register(&mut reg, "s", V1);
    assert_eq!(
        reg.check("s", Some(VersionSel::Latest), &req(V2_OPTIONAL)),
        Ok(vec![])
    );
    let problems = reg.check("s", None, &req(V2_REQUIRED));
    assert!(problems.is_ok_and(|p| p.len() == 1));
    // Unknown subject: nothing to be incompatible with, unless a version is named.
    assert_eq!(reg.check("new", None, &req(V1)), Ok(vec![]));
    let err = reg.check("new", Some(VersionSel::Latest), &req(V1)).err();
    assert_eq!(err.map(|e| e.code), Some(40401));
    let err = reg.check("s", Some(VersionSel::Number(7)), &req(V1)).err();
    assert_eq!(err.map(|e| e.code), Some(40402));
}

#[test]
fn lookup_finds_the_version_or_says_why_not() {
    let mut reg = Registry::new();
    let id = register(&mut reg, "s", V1);
    let found = reg.lookup("s", &req(V1));
    assert_eq!(
        found.map(|v| (v.subject, v.id, v.version)),
        Ok(("s".to_owned(), id, 1))
    );
    assert_eq!(
        reg.lookup("s", &req(OTHER)).err().map(|e| e.code),
        Some(40403)
    );
    assert_eq!(
        reg.lookup("nope", &req(V1)).err().map(|e| e.code),
        Some(40401)
    );
}

#[test]
fn invalid_schema_and_unsupported_type_are_42201() {
    let mut reg = Registry::new();
    let err = reg.register("s", &req(r#"{"type":"record"}"#)).err();
    assert_eq!(
        err.as_ref().map(|e| (e.status.as_u16(), e.code)),
        Some((422, 42201))
    );
    let mut proto = req("syntax = \"proto3\";");
    proto.schema_type = Some("PROTOBUF".to_owned());
    assert_eq!(reg.register("s", &proto).err().map(|e| e.code), Some(42201));
    assert!(reg.subjects().is_empty());
}

#[test]
fn unknown_ids_subjects_and_versions_have_their_codes() {
    let mut reg = Registry::new();
    assert_eq!(reg.schema_by_id(1).err().map(|e| e.code), Some(40403));
    assert_eq!(reg.schema_by_id(0).err().map(|e| e.code), Some(40403));
    assert_eq!(reg.versions("x").err().map(|e| e.code), Some(40401));
    register(&mut reg, "x", V1);
    assert_eq!(
        reg.version("x", VersionSel::Number(2))
            .err()
            .map(|e| e.code),
        Some(40402)
    );
    assert_eq!(VersionSel::parse("0").err().map(|e| e.code), Some(42202));
    assert_eq!(VersionSel::parse("abc").err().map(|e| e.code), Some(42202));
    assert_eq!(VersionSel::parse("-1"), Ok(VersionSel::Latest));
}

#[test]
fn subject_levels_fall_back_to_global_only_when_asked() {
    let mut reg = Registry::new();
    assert_eq!(reg.level(None, false), Ok(Level::Backward));
    assert_eq!(
        reg.level(Some("s"), false).err().map(|e| e.code),
        Some(40408)
    );
    assert_eq!(reg.level(Some("s"), true), Ok(Level::Backward));
    reg.set_level(Some("s"), Level::Full);
    assert_eq!(reg.level(Some("s"), false), Ok(Level::Full));
    assert_eq!(reg.delete_level("s"), Ok(Level::Full));
    assert_eq!(reg.level(Some("s"), true), Ok(Level::Backward));
}

#[test]
fn references_resolve_through_other_subjects() {
    let point = r#"{"type":"record","name":"Point","namespace":"geo",
        "fields":[{"name":"lat","type":"double"},{"name":"lon","type":"double"}]}"#;
    let ping = r#"{"type":"record","name":"Ping","namespace":"doorstep",
        "fields":[{"name":"at","type":"geo.Point"}]}"#;
    let mut reg = Registry::new();
    let point_id = register(&mut reg, "geo.Point", point);
    let mut with_ref = req(ping);
    with_ref.references = vec![Reference {
        name: "geo.Point".to_owned(),
        subject: "geo.Point".to_owned(),
        version: 1,
    }];
    let ping_id = reg.register("pings-value", &with_ref);
    assert!(ping_id.is_ok_and(|id| id != point_id));
    let fetched = reg.version("pings-value", VersionSel::Latest);
    assert_eq!(fetched.map(|v| v.references.len()), Ok(1));
    // Without the reference the same text does not parse.
    assert_eq!(
        reg.register("other", &req(ping)).err().map(|e| e.code),
        Some(42201)
    );
    // A dangling reference is an invalid schema too.
    with_ref.references[0].version = 9;
    assert_eq!(
        reg.register("other", &with_ref).err().map(|e| e.code),
        Some(42201)
    );
}

#[test]
fn survives_a_json_round_trip() {
    let mut reg = Registry::new();
    let id = register(&mut reg, "s", V1);
    reg.set_level(Some("s"), Level::Full);
    let json = serde_json::to_string(&reg).unwrap_or_default();
    let back: Registry = match serde_json::from_str(&json) {
        Ok(r) => r,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(
        back.schema_by_id(id).map(|s| s.schema),
        reg.schema_by_id(id).map(|s| s.schema)
    );
    assert_eq!(back.level(Some("s"), false), Ok(Level::Full));
}
