//! The JSON Schema of each spec type, as serde writes the generated Rust
//! type: the forms of `choreo_runtime::types` and the derives of
//! `codegen::types` (fields by their spec names, unit enum variants as
//! strings, `T?` as `null` when absent).

use crate::model::{Docs, Enum, Field, Record, Scalar, Spec, Type};
use serde_json::{json, Map, Value};

/// A canonical lower-case hyphenated UUID, as the `uuid` crate writes it.
pub const UUID_PATTERN: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// An RFC 3339 instant as jiff writes a `Timestamp`: UTC (`Z`), seconds
/// always, a fraction only when there is one. (Offsets are allowed too:
/// other producers write them, and the decoder takes them.)
pub const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

/// An ISO 8601 duration as jiff writes a `SignedDuration`: an optional
/// sign, then hours, minutes and seconds (with up to nine decimals), at
/// least one of them.
pub const DURATION_PATTERN: &str =
    "^-?PT([0-9]+H([0-9]+M)?([0-9]+(\\.[0-9]{1,9})?S)?|[0-9]+M([0-9]+(\\.[0-9]{1,9})?S)?|[0-9]+(\\.[0-9]{1,9})?S)$";

/// A decimal as rust_decimal writes it: plain digits, no exponent.
pub const DECIMAL_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";

/// Standard base64 with padding.
pub const BASE64_PATTERN: &str = "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$";

/// The schema of a scalar.
pub fn scalar(s: Scalar) -> Value {
    match s {
        Scalar::Bool => json!({ "type": "boolean" }),
        Scalar::I32 => integer(i64::from(i32::MIN).into(), i32::MAX.into()),
        Scalar::I64 => integer(i64::MIN.into(), i64::MAX.into()),
        Scalar::U32 => integer(0.into(), u32::MAX.into()),
        Scalar::U64 => integer(0.into(), u64::MAX.into()),
        // serde_json writes a NaN or an infinity as `null`, which no
        // decoder takes back as an `f64`: only finite numbers travel.
        Scalar::F64 => json!({ "type": "number" }),
        Scalar::String => json!({ "type": "string" }),
        Scalar::Uuid => json!({ "type": "string", "format": "uuid", "pattern": UUID_PATTERN }),
        Scalar::Timestamp => {
            json!({ "type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN })
        }
        Scalar::Duration => json!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "An ISO 8601 duration of hours, minutes and seconds, e.g. `PT1H30M` or `-PT0.5S`.",
        }),
        Scalar::Decimal => json!({
            "type": "string",
            "pattern": DECIMAL_PATTERN,
            "description": "An exact decimal number, as a string to keep every digit.",
        }),
        Scalar::Bytes => json!({
            "type": "string",
            "contentEncoding": "base64",
            "pattern": BASE64_PATTERN,
        }),
        // Any JSON value.
        Scalar::Json => json!({}),
    }
}

fn integer(minimum: Value, maximum: Value) -> Value {
    json!({ "type": "integer", "minimum": minimum, "maximum": maximum })
}

/// An object of `entries`, moved in: `json!` would copy a `Value` it is
/// given (it serializes it anew), which for nested schemas adds up.
pub fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// The schema of a field type; records and enums are `$ref`s to
/// `ref_prefix` followed by their name.
pub fn of_type(spec: &Spec, ty: &Type, ref_prefix: &str) -> Value {
    match ty {
        Type::Scalar(s) => scalar(*s),
        Type::List(t) => object([
            ("type", "array".into()),
            ("items", of_type(spec, t, ref_prefix)),
        ]),
        Type::Map(t) => object([
            ("type", "object".into()),
            ("additionalProperties", of_type(spec, t, ref_prefix)),
        ]),
        // `None` is written as `null`; an absent field also reads as
        // `None` (see `fields`).
        Type::Optional(t) => object([(
            "anyOf",
            Value::Array(vec![
                of_type(spec, t, ref_prefix),
                json!({ "type": "null" }),
            ]),
        )]),
        Type::Record(r) => json!({ "$ref": format!("{ref_prefix}{}", spec.record(*r).name.text) }),
        Type::Enum(e) => {
            json!({ "$ref": format!("{ref_prefix}{}", spec.enumeration(*e).name.text) })
        }
        // A checked spec has none; the generated code makes it a `json`.
        Type::Error => scalar(Scalar::Json),
    }
}

/// The object schema of a record's or a message's fields.
///
/// Every field but an optional one is required: serde's derive reads a
/// missing `Option` field as `None` and refuses any other missing field.
/// Unknown fields are ignored by the generated types (no
/// `deny_unknown_fields`), so the schema allows them too.
pub fn fields(spec: &Spec, fields: &[Field], ref_prefix: &str) -> Map<String, Value> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for f in fields {
        let mut schema = of_type(spec, &f.ty, ref_prefix);
        describe(&mut schema, &f.docs);
        if !matches!(f.ty, Type::Optional(_)) {
            required.push(Value::from(f.name.text.as_str()));
        }
        properties.insert(f.name.text.to_string(), schema);
    }
    let mut out = Map::new();
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), Value::Object(properties));
    out.insert("required".into(), Value::Array(required));
    out.insert("additionalProperties".into(), Value::Bool(true));
    out
}

/// The schema of a record, with its doc comment.
pub fn record(spec: &Spec, r: &Record, ref_prefix: &str) -> Value {
    let mut out = Map::new();
    out.insert("title".into(), r.name.text.as_str().into());
    out.extend(fields(spec, &r.fields, ref_prefix));
    deprecated(&mut out, r.deprecated.is_some());
    let mut schema = Value::Object(out);
    describe(&mut schema, &r.docs);
    schema
}

/// The schema of an enum: its variants' names, as serde writes unit
/// variants. Variants' doc comments are listed in the description.
pub fn enumeration(e: &Enum) -> Value {
    let mut lines: Vec<String> = e.docs.lines.iter().cloned().collect();
    let documented: Vec<String> = e
        .variants
        .iter()
        .filter(|v| !v.docs.is_empty())
        .map(|v| format!("- `{}`: {}", v.name.text, v.docs.lines.join(" ")))
        .collect();
    if !documented.is_empty() {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(documented);
    }
    let variants: Vec<Value> = e
        .variants
        .iter()
        .map(|v| v.name.text.as_str().into())
        .collect();
    let mut out = Map::new();
    out.insert("title".into(), e.name.text.as_str().into());
    if !lines.is_empty() {
        out.insert("description".into(), lines.join("\n").into());
    }
    out.insert("type".into(), "string".into());
    out.insert("enum".into(), Value::Array(variants));
    deprecated(&mut out, e.deprecated.is_some());
    Value::Object(out)
}

/// Sets `description` from a doc comment, in front of any description the
/// schema already has (a scalar's note on its form).
pub fn describe(schema: &mut Value, docs: &Docs) {
    if docs.is_empty() {
        return;
    }
    let Value::Object(map) = schema else { return };
    let text = match map.get("description").and_then(Value::as_str) {
        Some(note) => format!("{}\n\n{note}", docs.text()),
        None => docs.text(),
    };
    map.insert("description".into(), text.into());
}

/// Marks an `@deprecated` item.
pub fn deprecated(map: &mut Map<String, Value>, yes: bool) {
    if yes {
        map.insert("deprecated".into(), Value::Bool(true));
    }
}
