//! An AsyncAPI 3.0 document of a deployment of a spec on one broker: the
//! topics as channels, what each participant sends and receives as
//! operations, and the bytes published as messages.
//!
//! - **Channels** ([`channels`]): one per event and command, its address
//!   the topic exactly as choreo-runtime names it for the broker and the
//!   deployment's prefix ([`super::names`]): the subject on NATS
//!   (`<prefix>Ecommerce.v1.OrderPlaced`), the stream's key on Redis
//!   (`choreo:<prefix>Ecommerce.v1.OrderPlaced`).
//! - **Operations** ([`operations`]): per reaction of each participant, a
//!   `receive` for each message of its trigger and a `send` for each event
//!   of its outcomes; the ingress `send`s the commands, and whatever stands
//!   outside the choreography `send`s the `@external` events.
//! - **Messages** ([`messages`]): a CloudEvent in structured mode (the
//!   runtime's encoder, `choreo_runtime::envelope::json`), whose `data`
//!   has the message's type as its schema; on NATS the `Nats-Msg-Id`
//!   header the adapter sets; on Redis the stream entry's one field.
//! - What AsyncAPI has no word for (joins, compensations, retries,
//!   timeouts, bounds, terminal events, deadlines, the key) is kept in
//!   `x-choreo-*` extensions ([`extensions`]), so nothing of the flow is
//!   lost; doc comments become descriptions.
//!
//! Servers ([`servers`]) are given as `NAME=URL`; the document keeps the
//! host, port and Redis database of the URL and never its credentials or
//! settings.

pub mod channels;
pub mod document;
pub mod extensions;
pub mod messages;
pub mod operations;
pub mod servers;

use super::names;
use crate::codegen::wire_names;
use crate::CheckedSpec;
use document::{Document, Info, Tag};
pub use servers::{ServerError, ServerSpec};

/// The AsyncAPI version written.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The content type of a structured-mode CloudEvent in JSON.
pub const CLOUDEVENTS_JSON: &str = "application/cloudevents+json";

/// The broker a deployment runs on: it decides the channels' addresses,
/// the servers' protocol and the transport's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Broker {
    /// NATS JetStream: a topic is a subject.
    #[default]
    Nats,
    /// Redis Streams: a topic is a stream under the broker's key prefix.
    Redis,
}

impl Broker {
    /// The AsyncAPI protocol: `nats` or `redis`.
    pub fn protocol(self) -> &'static str {
        match self {
            Broker::Nats => "nats",
            Broker::Redis => "redis",
        }
    }

    /// Where the runtime publishes `topic` on this broker: the NATS
    /// subject, or the key of the Redis stream.
    pub fn address(self, topic: &str) -> String {
        match self {
            Broker::Nats => topic.to_owned(),
            Broker::Redis => names::redis_stream(names::REDIS_KEY_PREFIX, topic),
        }
    }
}

/// What the document describes besides the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The broker.
    pub broker: Broker,
    /// The deployment's prefix (the services' `Topics::new(prefix)`).
    pub prefix: String,
    /// The servers, in the order given.
    pub servers: Vec<ServerSpec>,
}

/// The document's text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// YAML.
    #[default]
    Yaml,
    /// JSON, indented.
    Json,
}

/// Writing the document failed (serde could not write a value; not
/// expected of the values this module makes).
#[derive(Debug, thiserror::Error)]
#[error("cannot write the AsyncAPI document: {0}")]
pub struct RenderError(String);

/// The AsyncAPI document of `spec` deployed as `options` say.
pub fn document(spec: &CheckedSpec, options: &Options) -> Document {
    let wire = wire_names(spec);
    let topics: Vec<String> = wire
        .types
        .iter()
        .map(|t| names::topic(&options.prefix, t))
        .collect();
    let context = Context {
        spec,
        options,
        topics: &topics,
        reactions: &wire.reactions,
    };
    let mut tags: Vec<Tag> = spec
        .participants
        .iter()
        .map(|p| Tag {
            name: p.name.text.to_string(),
            description: extensions::docs(&p.docs),
        })
        .collect();
    let operations = operations::operations(&context);
    if spec.commands().next().is_some() {
        tags.push(operations::ingress_tag(spec));
    }
    if spec.messages.iter().any(|m| m.external.is_some()) {
        tags.push(operations::outside_tag(spec));
    }
    Document {
        asyncapi: ASYNCAPI_VERSION,
        info: Info {
            title: spec.name.text.to_string(),
            version: spec
                .version
                .as_ref()
                .map_or_else(|| "0.0.0".to_owned(), |v| v.value.to_string()),
            description: extensions::docs(&spec.docs),
            tags,
            extensions: extensions::info(&context),
        },
        servers: options
            .servers
            .iter()
            .map(|s| (s.name.clone(), s.server(options.broker)))
            .collect(),
        default_content_type: CLOUDEVENTS_JSON,
        channels: channels::channels(&context),
        operations,
        components: messages::components(&context, messages::json_schemas(spec, wire.types)),
    }
}

/// The document as text, ending with a newline.
pub fn render(doc: &Document, format: Format) -> Result<String, RenderError> {
    let mut bytes = Vec::new();
    write(doc, format, &mut bytes).map_err(|e| RenderError(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| RenderError(e.to_string()))
}

/// Writes the document as text, ending with a newline, to `out`: the
/// bytes [`render`] returns, without holding them all (tens of MB at 10k
/// reactions). A document serde cannot write is an error of kind
/// `Other`.
pub fn write(doc: &Document, format: Format, out: impl std::io::Write) -> std::io::Result<()> {
    let mut out = LastByte { out, last: None };
    match format {
        Format::Yaml => serde_norway::to_writer(&mut out, doc).map_err(std::io::Error::other)?,
        Format::Json => serde_json::to_writer_pretty(&mut out, doc)?,
    }
    if out.last != Some(b'\n') {
        out.out.write_all(b"\n")?;
    }
    Ok(())
}

/// A writer that remembers the last byte written, to end the text with
/// exactly one newline whatever the format writes.
struct LastByte<W> {
    out: W,
    last: Option<u8>,
}

impl<W: std::io::Write> std::io::Write for LastByte<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        if let Some(&b) = buf[..n].last() {
            self.last = Some(b);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// What the parts of the document are made from.
pub(crate) struct Context<'a> {
    pub spec: &'a CheckedSpec,
    pub options: &'a Options,
    /// Each message's topic, by message index.
    pub topics: &'a [String],
    /// Each reaction's name (its store scope's last part), by index.
    pub reactions: &'a [String],
}

impl Context<'_> {
    /// The topic of message `id`.
    pub fn topic(&self, id: crate::model::MessageId) -> &str {
        self.topics.get(id.index()).map_or("", String::as_str)
    }

    /// The name of reaction `id`.
    pub fn reaction(&self, id: crate::model::ReactionId) -> &str {
        self.reactions.get(id.index()).map_or("", String::as_str)
    }
}

/// The key a message's channel and component have: its name.
pub(crate) fn message_key(spec: &CheckedSpec, id: crate::model::MessageId) -> String {
    spec.message_name(id).to_owned()
}
