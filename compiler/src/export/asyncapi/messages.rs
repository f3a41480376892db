//! The messages: what lies on the broker for each event and command.
//!
//! The payload is the CloudEvent in structured mode that every adapter of
//! choreo-runtime publishes (`choreo_runtime::envelope::json::encode`):
//! its attributes, with `type` the message's wire type and
//! `correlationid` the instance key as text, and `data` the message's
//! fields. The schemas are the JSON Schema export's
//! ([`crate::export::jsonschema`]): the envelope, the same for every
//! message, once in `components/schemas` as `choreo.CloudEvent`, the
//! records and enums there under their names, and each payload all of the
//! envelope and its own `type` and `data`. They are JSON Schema 2020-12
//! using only keywords that draft 7, and so AsyncAPI's default schema
//! format, reads alike (hence `allOf`, as draft 7 ignores what stands
//! beside a `$ref`).
//!
//! The transport adds to it:
//!
//! - NATS: the header `Nats-Msg-Id`, the envelope's `id`, by which
//!   JetStream drops a second publish within the stream's duplicate window
//!   (a dead letter's is `<id>/dlq/<group>`);
//! - Redis: the stream entry has one field, `event`, whose value is the
//!   payload (`x-choreo-redis-field`); Redis has no headers.

use super::document::{Components, Extensions, Json, Message};
use super::extensions::{docs, put};
use super::{message_key, Broker, Context, CLOUDEVENTS_JSON};
use crate::export::jsonschema::types::object;
use crate::export::jsonschema::{envelope, JsonSchemas, MessageSchema};
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Where the records' and enums' schemas are: `components/schemas`.
pub const SCHEMAS: &str = "#/components/schemas/";

/// The key of the NATS headers' schema; the dot keeps it apart from the
/// spec's names, which are identifiers.
pub const NATS_HEADERS: &str = "choreo.NatsHeaders";

/// The field of a Redis stream entry that holds the payload
/// (`choreo_runtime::broker::redis`'s `FIELD`).
pub const REDIS_FIELD: &str = "event";

/// The JSON Schemas of `spec`, whose messages have `wire_types` (by
/// index), naming records, enums and the envelope where this document
/// keeps them.
pub(crate) fn json_schemas(spec: &crate::CheckedSpec, wire_types: Vec<String>) -> JsonSchemas {
    JsonSchemas::with_wire_types(spec, SCHEMAS, wire_types)
}

/// `components`, made of `schemas` (the spec's [`json_schemas`]), which
/// it takes apart rather than copying them.
pub(crate) fn components(cx: &Context, schemas: JsonSchemas) -> Components {
    let (messages, definitions, envelope) = schemas.into_parts();
    Components {
        schemas: component_schemas(cx, definitions, envelope),
        messages: component_messages(cx, messages),
    }
}

/// `components/schemas`: the envelope, the records and enums sorted by
/// name, then the transport's headers.
fn component_schemas(
    cx: &Context,
    definitions: BTreeMap<String, Value>,
    envelope: Value,
) -> IndexMap<String, Json> {
    let mut out = IndexMap::with_capacity(definitions.len() + 2);
    out.insert(envelope::NAME.to_owned(), Json(envelope));
    out.extend(
        definitions
            .into_iter()
            .map(|(name, schema)| (name, Json(schema))),
    );
    if cx.options.broker == Broker::Nats {
        out.insert(NATS_HEADERS.to_owned(), Json(nats_headers()));
    }
    out
}

fn nats_headers() -> Value {
    json!({
        "type": "object",
        "description": "The NATS headers choreo-runtime sets on a publish.",
        "required": ["Nats-Msg-Id"],
        "properties": {
            "Nats-Msg-Id": {
                "type": "string",
                "minLength": 1,
                "description": "The envelope's `id`: JetStream drops a second publish of it within the stream's duplicate window. A dead letter's is `<id>/dlq/<group>`."
            }
        }
    })
}

/// The payload of message `m`: all of the shared envelope and the
/// message's own `type` and `data`, titled with its name (which code
/// generators name their type after).
fn payload(m: MessageSchema) -> Value {
    let own = object([
        ("type", "object".into()),
        (
            "properties",
            Value::Object(envelope::narrowed(&m.wire_type, m.payload)),
        ),
    ]);
    let shared = object([("$ref", format!("{SCHEMAS}{}", envelope::NAME).into())]);
    object([
        ("title", m.name.into()),
        ("allOf", Value::Array(vec![shared, own])),
    ])
}

/// `components/messages`: one per event and command, in the spec's order
/// (`schemas` is by message index).
fn component_messages(cx: &Context, schemas: Vec<MessageSchema>) -> IndexMap<String, Message> {
    let spec = cx.spec;
    spec.message_ids()
        .zip(schemas)
        .map(|(id, schema)| {
            let m = spec.message(id);
            let key = message_key(spec, id);
            let payload = payload(schema);
            let mut extensions = Extensions::new();
            let headers = match cx.options.broker {
                Broker::Nats => Some(Json(json!({ "$ref": format!("{SCHEMAS}{NATS_HEADERS}") }))),
                Broker::Redis => {
                    put(&mut extensions, "redis-field", REDIS_FIELD.into());
                    None
                }
            };
            let message = Message {
                name: key.clone(),
                title: format!("{} {key}", m.kind.as_str()),
                description: docs(&m.docs),
                content_type: CLOUDEVENTS_JSON,
                headers,
                payload: Json(payload),
                extensions,
            };
            (key, message)
        })
        .collect()
}
