//! The CloudEvents envelope around a message, as choreo-runtime publishes
//! it in structured mode (`choreo_runtime::envelope::json::encode`, what
//! every broker adapter writes): the attributes, choreo's extensions and
//! the payload in `data`. The envelope is the same for every message of a
//! spec but for `type` and `data`, so it is one shared definition
//! ([`definition`]) that each message's schema refers to and narrows
//! ([`schema`]).

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

/// The name of the envelope's shared definition, beside the records and
/// enums: the dot keeps it apart from the spec's names, which are
/// identifiers.
pub const NAME: &str = "choreo.CloudEvent";

/// The envelope's properties, every message's alike: `type` is any wire
/// type and `data` any payload, which each message's schema narrows.
fn properties(key: &Key) -> Map<String, Value> {
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
        string("The wire type, with the spec's major version: also the topic."),
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
    // Listed so that `additionalProperties` below leaves it to the
    // message's schema.
    p.insert(
        "data".into(),
        json!({ "description": "The payload: its schema is the message's." }),
    );
    p
}

/// The envelope every message of a spec shares, defined once as [`NAME`]:
/// the attributes, required or not, and the extensions. The key's type is
/// the spec's, so `correlationid`'s form is the same for every message.
pub fn definition(key: &Key) -> Value {
    let mut out = Map::new();
    out.insert("title".into(), "CloudEvent".into());
    out.insert(
        "description".into(),
        "A message as choreo-runtime publishes it: a CloudEvents 1.0 envelope in structured mode. Each message's schema refers to it and gives its `type` and its `data`.".into(),
    );
    out.insert("type".into(), "object".into());
    out.insert("properties".into(), Value::Object(properties(key)));
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

/// What one message adds to the shared envelope: its wire type as `type`
/// and `payload` as `data`, as the members of a `properties`.
pub fn narrowed(wire_type: &str, payload: Value) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("type".into(), json!({ "const": wire_type }));
    p.insert("data".into(), payload);
    p
}

/// The whole envelope schema of one message as a document of its own,
/// with `extra` (title, description, `$schema`): the shared envelope by
/// `$ref` to `reference`, where [`NAME`] is (in draft 2020-12 `$ref`
/// applies beside the other keywords), narrowed to the message.
pub fn schema(
    extra: Map<String, Value>,
    reference: &str,
    wire_type: &str,
    payload: Value,
) -> Value {
    let mut out = extra;
    out.insert("$ref".into(), reference.into());
    out.insert(
        "properties".into(),
        Value::Object(narrowed(wire_type, payload)),
    );
    Value::Object(out)
}
