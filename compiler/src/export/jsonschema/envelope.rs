//! The CloudEvents envelope around a message, as choreo-runtime publishes
//! it in structured mode (`choreo_runtime::envelope::json::encode`, what
//! every broker adapter writes): the attributes, choreo's extensions and
//! the payload in `data`.

use super::types::{TIMESTAMP_PATTERN, UUID_PATTERN};
use crate::model::{Key, Scalar};
use serde_json::{json, Map, Value};

/// The CloudEvents version the runtime writes.
pub const SPECVERSION: &str = "1.0";

/// The content type of the data the runtime writes.
pub const CONTENT_TYPE: &str = "application/json";

/// What a W3C `traceparent` of version 00 looks like, as the runtime
/// writes it.
pub const TRACEPARENT_PATTERN: &str = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";

/// An extension attribute's name, as the decoder takes it.
pub const EXTENSION_NAME_PATTERN: &str = "^[a-z0-9]+$";

/// Attribute names the decoder refuses although they look like extensions
/// (CloudEvents attributes choreo does not use).
pub const REFUSED_ATTRIBUTES: &[&str] = &["dataschema", "subject"];

/// The attributes every published message carries.
pub const REQUIRED: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "correlationid",
    "datacontenttype",
    "data",
];

/// The schema of `correlationid`: the key's value as text (`to_string`).
fn correlation(key: &Key) -> Value {
    let mut schema = match key.ty {
        Scalar::Uuid => json!({ "type": "string", "format": "uuid", "pattern": UUID_PATTERN }),
        Scalar::U32 | Scalar::U64 => json!({ "type": "string", "pattern": "^(0|[1-9][0-9]*)$" }),
        Scalar::I32 | Scalar::I64 => {
            json!({ "type": "string", "pattern": "^(0|-?[1-9][0-9]*)$" })
        }
        _ => json!({ "type": "string" }),
    };
    let text = format!(
        "The instance's correlation key `{}` ({}), as text.",
        key.name.text,
        key.ty.name()
    );
    if let Value::Object(map) = &mut schema {
        let docs = key.docs.text();
        let description = if docs.is_empty() {
            text
        } else {
            format!("{docs}\n\n{text}")
        };
        map.insert("description".into(), description.into());
    }
    schema
}

/// The envelope's properties; `data` is `payload`.
pub fn properties(key: &Key, wire_type: &str, payload: Value) -> Map<String, Value> {
    let string =
        |description: &str| json!({ "type": "string", "minLength": 1, "description": description });
    let mut p = Map::new();
    p.insert("specversion".into(), json!({ "const": SPECVERSION }));
    p.insert(
        "id".into(),
        string("The event's id: a UUID when the runtime made it, an idempotency key when a client gave one."),
    );
    p.insert("source".into(), string("Who published it."));
    p.insert(
        "type".into(),
        json!({ "const": wire_type, "description": "The wire type, with the spec's major version: also the topic." }),
    );
    p.insert(
        "time".into(),
        json!({ "type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN }),
    );
    p.insert("correlationid".into(), correlation(key));
    p.insert("datacontenttype".into(), json!({ "const": CONTENT_TYPE }));
    p.insert(
        "causationid".into(),
        string("The id of the event whose handling emitted this one."),
    );
    p.insert(
        "traceparent".into(),
        json!({ "type": "string", "pattern": TRACEPARENT_PATTERN, "description": "W3C trace context." }),
    );
    p.insert(
        "tracestate".into(),
        json!({ "type": "string", "description": "W3C trace state, carried unchanged." }),
    );
    p.insert(
        "choreoversion".into(),
        json!({ "type": "string", "description": "The `version` of the spec the publisher was built from." }),
    );
    p.insert("data".into(), payload);
    p
}

/// The whole envelope schema of one message, with `extra` (title,
/// description, `$schema`) first.
pub fn schema(extra: Map<String, Value>, key: &Key, wire_type: &str, payload: Value) -> Value {
    let mut out = extra;
    out.insert("type".into(), "object".into());
    out.insert(
        "properties".into(),
        Value::Object(properties(key, wire_type, payload)),
    );
    out.insert(
        "required".into(),
        REQUIRED.iter().map(|r| Value::from(*r)).collect(),
    );
    // Any other attribute is an extension, which the decoder keeps when
    // its name is lower-case letters and digits (and not a CloudEvents
    // attribute choreo does not use) and its value a string, a number or
    // a boolean, and refuses otherwise. The names above all fit.
    out.insert(
        "propertyNames".into(),
        json!({ "pattern": EXTENSION_NAME_PATTERN, "not": { "enum": REFUSED_ATTRIBUTES } }),
    );
    out.insert(
        "additionalProperties".into(),
        json!({ "type": ["string", "number", "boolean"] }),
    );
    Value::Object(out)
}
