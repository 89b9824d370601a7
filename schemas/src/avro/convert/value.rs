//! Helpers between apache-avro [`Value`]s and Rust values. Building is infallible; reading
//! checks the Avro type of every field and names the field in its [`DomainError`].

use crate::avro::error::DomainError;
use crate::model::Timestamp;
use apache_avro::types::Value;

/// Result of reading a field.
pub(crate) type Read<T> = Result<T, DomainError>;

/// A record value from `(field name, value)` pairs.
pub(crate) fn record<const N: usize>(fields: [(&'static str, Value); N]) -> Value {
    Value::Record(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

/// A `string`.
pub(crate) fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// A `long` carrying a `u32`.
pub(crate) fn long_u32(n: u32) -> Value {
    Value::Long(i64::from(n))
}

/// A `timestamp-millis`.
pub(crate) fn timestamp(t: Timestamp) -> Value {
    Value::TimestampMillis(t.as_millis())
}

/// A `["null", T]` union.
pub(crate) fn optional(value: Option<Value>) -> Value {
    match value {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(v) => Value::Union(1, Box::new(v)),
    }
}

/// The fields of a record value, taken out one by one.
pub(crate) struct Fields(Vec<(String, Value)>);

impl Fields {
    /// The fields of `value`, which must be a record.
    pub(crate) fn of(field: &'static str, value: Value) -> Read<Self> {
        match value {
            Value::Record(fields) => Ok(Self(fields)),
            other => Err(unexpected(field, "record", &other)),
        }
    }

    /// Takes the value of field `name`.
    pub(crate) fn take(&mut self, name: &'static str) -> Read<Value> {
        self.0
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| std::mem::replace(v, Value::Null))
            .ok_or(DomainError::MissingField { field: name })
    }

    /// Takes a `string` field.
    pub(crate) fn string(&mut self, name: &'static str) -> Read<String> {
        to_string(name, self.take(name)?)
    }

    /// Takes a `long` field.
    pub(crate) fn long(&mut self, name: &'static str) -> Read<i64> {
        to_long(name, self.take(name)?)
    }

    /// Takes a `long` field carrying a `u32`.
    pub(crate) fn long_u32(&mut self, name: &'static str) -> Read<u32> {
        let value = self.long(name)?;
        u32::try_from(value).map_err(|_| DomainError::OutOfRange {
            field: name,
            value,
            min: 0,
            max: i64::from(u32::MAX),
        })
    }

    /// Takes an `int` field.
    pub(crate) fn int(&mut self, name: &'static str) -> Read<i32> {
        match self.take(name)? {
            Value::Int(n) => Ok(n),
            other => Err(unexpected(name, "int", &other)),
        }
    }

    /// Takes a `double` field.
    pub(crate) fn double(&mut self, name: &'static str) -> Read<f64> {
        to_double(name, self.take(name)?)
    }

    /// Takes a `boolean` field.
    pub(crate) fn boolean(&mut self, name: &'static str) -> Read<bool> {
        match self.take(name)? {
            Value::Boolean(b) => Ok(b),
            other => Err(unexpected(name, "boolean", &other)),
        }
    }

    /// Takes a `bytes` field.
    pub(crate) fn bytes(&mut self, name: &'static str) -> Read<Vec<u8>> {
        to_bytes(name, self.take(name)?)
    }

    /// Takes a `timestamp-millis` field.
    pub(crate) fn timestamp(&mut self, name: &'static str) -> Read<Timestamp> {
        match self.take(name)? {
            Value::TimestampMillis(ms) | Value::Long(ms) => Ok(Timestamp::from_millis(ms)),
            other => Err(unexpected(name, "timestamp-millis", &other)),
        }
    }

    /// Takes a `["null", T]` field and reads its `T` with `read`.
    pub(crate) fn optional<T>(
        &mut self,
        name: &'static str,
        read: impl FnOnce(&'static str, Value) -> Read<T>,
    ) -> Read<Option<T>> {
        match self.take(name)? {
            Value::Union(0, inner) => match *inner {
                Value::Null => Ok(None),
                other => Err(unexpected(name, "null", &other)),
            },
            Value::Union(1, inner) => read(name, *inner).map(Some),
            Value::Union(index, _) => Err(DomainError::UnknownBranch { field: name, index }),
            other => Err(unexpected(name, "union", &other)),
        }
    }

    /// Takes a field and reads it with `read`.
    pub(crate) fn with<T>(
        &mut self,
        name: &'static str,
        read: impl FnOnce(&'static str, Value) -> Read<T>,
    ) -> Read<T> {
        read(name, self.take(name)?)
    }
}

/// Reads a `string`.
pub(crate) fn to_string(field: &'static str, value: Value) -> Read<String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(unexpected(field, "string", &other)),
    }
}

/// Reads a `long`.
pub(crate) fn to_long(field: &'static str, value: Value) -> Read<i64> {
    match value {
        Value::Long(n) => Ok(n),
        other => Err(unexpected(field, "long", &other)),
    }
}

/// Reads a `long` carrying a `u32`.
pub(crate) fn to_u32(field: &'static str, value: Value) -> Read<u32> {
    let value = to_long(field, value)?;
    u32::try_from(value).map_err(|_| DomainError::OutOfRange {
        field,
        value,
        min: 0,
        max: i64::from(u32::MAX),
    })
}

/// Reads a `double`.
pub(crate) fn to_double(field: &'static str, value: Value) -> Read<f64> {
    match value {
        Value::Double(x) => Ok(x),
        other => Err(unexpected(field, "double", &other)),
    }
}

/// Reads `bytes`.
pub(crate) fn to_bytes(field: &'static str, value: Value) -> Read<Vec<u8>> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(unexpected(field, "bytes", &other)),
    }
}

/// Reads an enum's symbol.
pub(crate) fn to_symbol(field: &'static str, value: Value) -> Read<String> {
    match value {
        Value::Enum(_, symbol) => Ok(symbol),
        other => Err(unexpected(field, "enum", &other)),
    }
}

/// Reads an `array`.
pub(crate) fn to_array(field: &'static str, value: Value) -> Read<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(unexpected(field, "array", &other)),
    }
}

/// The error for a value of the wrong Avro type.
pub(crate) fn unexpected(
    field: &'static str,
    expected: &'static str,
    found: &Value,
) -> DomainError {
    DomainError::UnexpectedValue {
        field,
        expected,
        found: type_name(found),
    }
}

/// The Avro type of a value, for messages.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Long(_) => "long",
        Value::Float(_) => "float",
        Value::Double(_) => "double",
        Value::Bytes(_) => "bytes",
        Value::String(_) => "string",
        Value::Fixed(..) => "fixed",
        Value::Enum(..) => "enum",
        Value::Union(..) => "union",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Record(_) => "record",
        Value::TimestampMillis(_) => "timestamp-millis",
        _ => "another logical type",
    }
}
