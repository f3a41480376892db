//! The objects of an AsyncAPI 3.0 document that the export writes, as
//! serde types: their fields serialize in the order the specification
//! lists them, maps keep the order they were filled in, and JSON values
//! (schemas, extension values) write their keys sorted, so that the same
//! spec always gives the same bytes whatever serde_json's features.

use crate::export::sorted::Sorted;
use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The `x-choreo-*` extensions of one object, in the order added.
pub type Extensions = IndexMap<String, Json>;

/// A JSON value (a schema, an extension's value) written with the keys of
/// its objects sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct Json(pub Value);

impl From<Value> for Json {
    fn from(v: Value) -> Self {
        Json(v)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Sorted(&self.0).serialize(serializer)
    }
}

/// The whole document.
#[derive(Debug, Clone, Serialize)]
pub struct Document {
    /// Always `3.0.0`.
    pub asyncapi: &'static str,
    /// The choreography.
    pub info: Info,
    /// The brokers given with `--server`.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub servers: IndexMap<String, Server>,
    /// `application/cloudevents+json`: every message is a structured
    /// CloudEvent.
    #[serde(rename = "defaultContentType")]
    pub default_content_type: &'static str,
    /// One per event and command, keyed by its name.
    pub channels: IndexMap<String, Channel>,
    /// What each participant (and the ingress) sends and receives.
    pub operations: IndexMap<String, Operation>,
    /// The messages and schemas the channels refer to.
    pub components: Components,
}

/// `info`.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The choreography's name.
    pub title: String,
    /// The spec's `version`, or `0.0.0` without one.
    pub version: String,
    /// The choreography's doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One tag per participant (and the ingress), which the operations
    /// carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// `x-choreo-*`.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A tag: a participant.
#[derive(Debug, Clone, Serialize)]
pub struct Tag {
    /// Its name.
    pub name: String,
    /// Its doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A broker a deployment runs on.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// `host:port`, or several, comma-separated, for a NATS cluster.
    pub host: String,
    /// `nats` or `redis`.
    pub protocol: &'static str,
    /// The Redis database (`/0`), when the URL names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pathname: Option<String>,
    /// `x-choreo-*`.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `{"$ref": "#/…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// The JSON pointer.
    #[serde(rename = "$ref")]
    pub reference: String,
}

impl Reference {
    /// A reference to `pointer` in this document (`#` added).
    pub fn local(pointer: impl std::fmt::Display) -> Self {
        Reference {
            reference: format!("#{pointer}"),
        }
    }
}

/// A topic: a NATS subject or a Redis stream.
#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    /// The subject or the stream's key.
    pub address: String,
    /// The message's doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The one message of the topic.
    pub messages: IndexMap<String, Reference>,
    /// `x-choreo-*`.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `send` or `receive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Publishes on the channel.
    Send,
    /// Consumes the channel.
    Receive,
}

/// What one participant does on one channel.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    /// `send` or `receive`.
    pub action: Action,
    /// The channel.
    pub channel: Reference,
    /// One line on who does what.
    pub summary: String,
    /// The reaction's doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The participant's tag.
    pub tags: Vec<Tag>,
    /// The channel's message.
    pub messages: Vec<Reference>,
    /// `x-choreo-*`.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// `components`.
#[derive(Debug, Clone, Serialize)]
pub struct Components {
    /// The envelope, the transport headers and every payload type.
    pub schemas: IndexMap<String, Json>,
    /// One per event and command.
    pub messages: IndexMap<String, Message>,
}

/// A message: the bytes published on a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// The event's or command's name.
    pub name: String,
    /// `event PlaceOrder` or `command PlaceOrder`.
    pub title: String,
    /// The doc comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `application/cloudevents+json`.
    #[serde(rename = "contentType")]
    pub content_type: &'static str,
    /// The transport's headers (NATS), if it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Json>,
    /// The envelope with the message's data.
    pub payload: Json,
    /// `x-choreo-*`.
    #[serde(flatten)]
    pub extensions: Extensions,
}
