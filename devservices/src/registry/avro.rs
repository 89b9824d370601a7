//! Avro schema handling: validation, canonical text, identity, and compatibility.

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde_json::Value;

/// A validated Avro schema with its canonical text.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The parsed schema (named types from references resolved).
    pub schema: Schema,
    /// Canonical JSON text: apache-avro's full serialisation (like Java's
    /// `Schema.toString()`: keeps defaults, docs, aliases and logical types; drops whitespace
    /// and normalises shorthand such as `{"type": "string"}` to `"string"`). This is what the
    /// registry stores and returns.
    pub canonical: String,
    /// Key-order-independent form of `canonical`, used to decide whether two schemas are the
    /// same schema (and so share an id).
    pub identity: String,
}

/// Parses `text` as an Avro schema. `dependencies` are the texts of referenced schemas
/// (transitively, dependencies first), for schemas registered with `references`.
pub fn parse(text: &str, dependencies: &[String]) -> Result<Parsed, String> {
    let schema = if dependencies.is_empty() {
        Schema::parse_str(text)
    } else {
        Schema::parse_str_with_list(text, dependencies).map(|(schema, _)| schema)
    }
    .map_err(|err| format!("Invalid schema: {err}"))?;
    // Serialise straight to text to keep apache-avro's field order ("type", "name", ...),
    // as Java's `Schema.toString()` would; the identity sorts keys.
    let canonical = serde_json::to_string(&schema)
        .map_err(|err| format!("Invalid schema: cannot serialise it back: {err}"))?;
    let value: Value = serde_json::from_str(&canonical)
        .map_err(|err| format!("Invalid schema: cannot serialise it back: {err}"))?;
    let identity = sorted_json(&value);
    Ok(Parsed {
        schema,
        canonical,
        identity,
    })
}

/// Checks that data written with `writer` can be read with `reader`.
///
/// Partial compatibility (e.g. an enum losing symbols without a default, or a writer union
/// branch the reader cannot read) is an incompatibility, as in the Java implementation the
/// Confluent registry uses: some written data would fail to decode.
pub fn can_read(writer: &Schema, reader: &Schema) -> Result<(), String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => Ok(()),
        Ok(Compatibility::Partial) => Err(
            "reader schema can read only part of the data the writer schema allows \
             (missing enum symbols or union branches)"
                .to_owned(),
        ),
        Err(err) => Err(err.to_string()),
    }
}

/// Compact JSON with object keys sorted at every level, independent of `serde_json`'s
/// `preserve_order` feature.
fn sorted_json(value: &Value) -> String {
    let mut out = String::new();
    write_sorted(value, &mut out);
    out
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_sorted(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"Order","namespace":"doorstep",
        "fields":[{"name":"id","type":"string"}]}"#;

    fn p(text: &str) -> Parsed {
        match parse(text, &[]) {
            Ok(parsed) => parsed,
            Err(err) => panic!("{err}: {text}"),
        }
    }

    #[test]
    fn whitespace_key_order_and_shorthand_do_not_change_identity() {
        let a = p(V1);
        let b = p(
            r#"{ "fields": [ {"type": {"type": "string"}, "name": "id"} ],
                      "namespace": "doorstep", "name": "Order", "type": "record" }"#,
        );
        assert_eq!(a.identity, b.identity);
    }

    #[test]
    fn canonical_text_is_compact_and_starts_with_the_type() {
        let a = p(V1);
        assert!(
            a.canonical
                .starts_with(r#"{"type":"record","namespace":"doorstep","name":"Order""#),
            "{}",
            a.canonical
        );
        assert!(!a.canonical.contains(' '));
    }

    #[test]
    fn defaults_and_docs_are_part_of_identity() {
        let plain = p(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int"}]}"#);
        let with_default =
            p(r#"{"type":"record","name":"R","fields":[{"name":"n","type":"int","default":1}]}"#);
        let with_doc =
            p(r#"{"type":"record","name":"R","doc":"d","fields":[{"name":"n","type":"int"}]}"#);
        assert_ne!(plain.identity, with_default.identity);
        assert_ne!(plain.identity, with_doc.identity);
    }

    #[test]
    fn invalid_schemas_are_rejected() {
        assert!(parse("not json", &[]).is_err());
        assert!(parse(r#"{"type":"record","name":"R"}"#, &[]).is_err());
        assert!(parse(r#"{"type":"nope"}"#, &[]).is_err());
    }

    #[test]
    fn references_resolve_named_types() {
        let dep = r#"{"type":"record","name":"Point","namespace":"geo",
            "fields":[{"name":"lat","type":"double"},{"name":"lon","type":"double"}]}"#;
        let main = r#"{"type":"record","name":"Ping","fields":[{"name":"at","type":"geo.Point"}]}"#;
        assert!(parse(main, &[]).is_err());
        assert!(parse(main, &[dep.to_owned()]).is_ok());
    }

    #[test]
    fn adding_a_field_needs_a_default_to_be_readable() {
        let old = p(V1).schema;
        let with_default = p(r#"{"type":"record","name":"Order","namespace":"doorstep",
            "fields":[{"name":"id","type":"string"},{"name":"eta","type":["null","long"],"default":null}]}"#)
        .schema;
        let without = p(r#"{"type":"record","name":"Order","namespace":"doorstep",
            "fields":[{"name":"id","type":"string"},{"name":"eta","type":"long"}]}"#)
        .schema;
        assert!(can_read(&old, &with_default).is_ok());
        assert!(can_read(&old, &without).is_err());
        // Dropping a field is fine for the reader.
        assert!(can_read(&with_default, &old).is_ok());
    }

    #[test]
    fn enum_losing_symbols_is_incompatible() {
        let wide = p(r#"{"type":"enum","name":"S","symbols":["A","B"]}"#).schema;
        let narrow = p(r#"{"type":"enum","name":"S","symbols":["A"]}"#).schema;
        assert!(can_read(&narrow, &wide).is_ok());
        assert!(can_read(&wide, &narrow).is_err());
    }

    #[test]
    fn int_promotes_to_long_but_not_back() {
        let int = p(r#""int""#).schema;
        let long = p(r#""long""#).schema;
        assert!(can_read(&int, &long).is_ok());
        assert!(can_read(&long, &int).is_err());
    }
}
