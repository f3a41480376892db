//! JSON Schema (draft 2020-12) of every message of a checked spec, as the
//! bytes choreo-runtime publishes.
//!
//! [`JsonSchemas::of`] derives, per command and event, the schema of its
//! payload ([`JsonSchemas::payload`], the `data` of the envelope) and of
//! the whole CloudEvents envelope in structured mode
//! ([`JsonSchemas::message`]), so that a message as it lies on the broker
//! validates as it is. What all messages share is defined once and named
//! by `$ref`: the envelope's attributes ([`JsonSchemas::envelope`], the
//! definition [`envelope::NAME`]) and the records and enums
//! ([`JsonSchemas::definitions`]). [`JsonSchemas::files`] lays them out
//! as `choreoc export jsonschema` writes them: `defs.schema.json` with the
//! shared definitions and one `<Message>.schema.json` each.
//!
//! The schemas say what the runtime writes (strings for `decimal`,
//! RFC 3339 for `timestamp`, …); where its decoder is more lenient than
//! that, they say what it writes. Unknown payload fields are allowed, as
//! the generated types ignore them.

pub mod envelope;
#[cfg(test)]
mod tests;
pub mod types;

use crate::codegen::wire_names;
use crate::export::sorted::Sorted;
use crate::model::{MessageId, Settlement};
use crate::CheckedSpec;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The JSON Schema dialect of every document.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The file of the shared definitions.
pub const DEFS_FILE: &str = "defs.schema.json";

/// How message files name the shared definitions: `$ref` is this followed
/// by the record's or enum's name, or by [`envelope::NAME`].
pub const DEFS_REF_PREFIX: &str = "defs.schema.json#/$defs/";

/// One message's schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSchema {
    /// The message's name in the spec.
    pub name: String,
    /// Its wire type (also its topic without prefix).
    pub wire_type: String,
    /// The schema of its payload, the envelope's `data`.
    pub payload: Value,
    /// What its document says first ([`JsonSchemas::document`]): its doc
    /// comment, then what it is.
    pub description: String,
    /// Whether it is `@deprecated`.
    pub deprecated: bool,
}

/// The JSON Schemas of one spec.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchemas {
    /// Per message, by [`MessageId`] index.
    messages: Vec<MessageSchema>,
    /// Records and enums by name.
    definitions: BTreeMap<String, Value>,
    /// The envelope every message shares.
    envelope: Value,
    /// How a message's document names the envelope: `$ref`'s value.
    envelope_ref: String,
}

impl JsonSchemas {
    /// The schemas of `spec`, naming records, enums and the envelope as
    /// `defs.schema.json#/$defs/<Name>` ([`DEFS_REF_PREFIX`]).
    pub fn of(spec: &CheckedSpec) -> JsonSchemas {
        JsonSchemas::with_ref_prefix(spec, DEFS_REF_PREFIX)
    }

    /// The schemas of `spec`, naming records, enums and the envelope as
    /// `ref_prefix` followed by their name: `#/components/schemas/` puts
    /// them where an AsyncAPI document keeps its schemas.
    pub fn with_ref_prefix(spec: &CheckedSpec, ref_prefix: &str) -> JsonSchemas {
        JsonSchemas::with_wire_types(spec, ref_prefix, wire_names(spec).types)
    }

    /// [`JsonSchemas::with_ref_prefix`], given the messages' wire types by
    /// index, for a caller that has them already: they come from the
    /// naming plan of the generated code, which is not cheap to make.
    pub(crate) fn with_wire_types(
        spec: &CheckedSpec,
        ref_prefix: &str,
        wire_types: Vec<String>,
    ) -> JsonSchemas {
        let mut wire_types = wire_types.into_iter();
        let mut definitions = BTreeMap::new();
        for r in &spec.records {
            definitions.insert(r.name.text.to_string(), types::record(spec, r, ref_prefix));
        }
        for e in &spec.enums {
            definitions.insert(e.name.text.to_string(), types::enumeration(e));
        }
        let messages = spec
            .messages
            .iter()
            .map(|m| {
                let wire_type = wire_types.next().unwrap_or_default();
                let mut payload = Map::new();
                payload.insert("title".into(), m.name.text.as_str().into());
                payload.extend(types::fields(spec, &m.fields, ref_prefix));
                types::deprecated(&mut payload, m.deprecated.is_some());
                let mut payload = Value::Object(payload);
                types::describe(&mut payload, &m.docs);
                MessageSchema {
                    name: m.name.text.to_string(),
                    description: summary(m, &wire_type, spec.key().name.text.as_str()),
                    wire_type,
                    payload,
                    deprecated: m.deprecated.is_some(),
                }
            })
            .collect();
        JsonSchemas {
            messages,
            definitions,
            envelope: envelope::definition(spec.key()),
            envelope_ref: format!("{ref_prefix}{}", envelope::NAME),
        }
    }

    /// Every message's schemas, in the spec's order.
    pub fn messages(&self) -> &[MessageSchema] {
        &self.messages
    }

    /// The schemas of one message.
    pub fn get(&self, id: MessageId) -> Option<&MessageSchema> {
        self.messages.get(id.index())
    }

    /// The schema of a message's payload (the envelope's `data`); `null`
    /// for an id not of this spec.
    pub fn payload(&self, id: MessageId) -> Value {
        self.get(id).map_or(Value::Null, |m| m.payload.clone())
    }

    /// The schema of a message's whole envelope ([`JsonSchemas::document`]);
    /// `null` for an id not of this spec.
    pub fn message(&self, id: MessageId) -> Value {
        self.get(id).map_or(Value::Null, |m| self.document(m))
    }

    /// The document of one of [`JsonSchemas::messages`], the schema of the
    /// whole envelope as it lies on the broker: the shared envelope by
    /// `$ref`, narrowed to the message's `type` and `data`. It is made when
    /// asked for, as the AsyncAPI document, which names the envelope its
    /// own way, has no use for it.
    pub fn document(&self, m: &MessageSchema) -> Value {
        let mut head = Map::new();
        head.insert("$schema".into(), DIALECT.into());
        head.insert("title".into(), m.name.as_str().into());
        head.insert("description".into(), m.description.as_str().into());
        types::deprecated(&mut head, m.deprecated);
        envelope::schema(head, &self.envelope_ref, &m.wire_type, m.payload.clone())
    }

    /// The schemas taken apart, to move them into a document of one's own
    /// without copying: every message's (by [`MessageId`] index), the
    /// records' and enums' by name, and the envelope.
    pub fn into_parts(self) -> (Vec<MessageSchema>, BTreeMap<String, Value>, Value) {
        (self.messages, self.definitions, self.envelope)
    }

    /// The records' and enums' schemas by name, sorted.
    pub fn definitions(&self) -> &BTreeMap<String, Value> {
        &self.definitions
    }

    /// The envelope every message shares (the definition
    /// [`envelope::NAME`]): its attributes and extensions, with any `type`
    /// and any `data`, which each message's schema narrows.
    pub fn envelope(&self) -> &Value {
        &self.envelope
    }

    /// The document of the shared definitions: `{"$schema", "$defs"}`,
    /// the records, the enums and the envelope.
    pub fn defs(&self) -> Value {
        let mut defs: Map<String, Value> = self
            .definitions
            .iter()
            .map(|(name, schema)| (name.clone(), schema.clone()))
            .collect();
        defs.insert(envelope::NAME.into(), self.envelope.clone());
        let mut out = Map::new();
        out.insert("$schema".into(), DIALECT.into());
        out.insert("$defs".into(), Value::Object(defs));
        Value::Object(out)
    }

    /// The files `choreoc export jsonschema` writes, sorted by name:
    /// `defs.schema.json` and `<Message>.schema.json` per message, each
    /// pretty JSON with a trailing newline.
    pub fn files(&self) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = self
            .messages
            .iter()
            .map(|m| (format!("{}.schema.json", m.name), pretty(&self.document(m))))
            .collect();
        files.push((DEFS_FILE.to_string(), pretty(&self.defs())));
        files.sort();
        files
    }
}

/// What a message's document says first: its doc comment, then what it is.
fn summary(m: &crate::model::Message, wire_type: &str, key: &str) -> String {
    let mut what = format!(
        "The `{}` {} as choreo-runtime publishes it: a CloudEvents 1.0 envelope in structured mode, of type `{wire_type}`, whose `data` is the payload and whose `correlationid` is the instance's `{key}`.",
        m.name.text,
        m.kind.as_str()
    );
    match m.terminal {
        Some((Settlement::Success, _)) => {
            what.push_str(" Terminal: it settles the instance with success.")
        }
        Some((Settlement::Failure, _)) => {
            what.push_str(" Terminal: it settles the instance with failure.")
        }
        None => {}
    }
    if m.docs.is_empty() {
        what
    } else {
        format!("{}\n\n{what}", m.docs.text())
    }
}

/// Pretty JSON with a trailing newline, every object's keys sorted
/// ([`Sorted`]), so that the output is the same from run to run.
pub fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}
