//! The resolved semantic model of a spec: names bound, types resolved,
//! attributes interpreted, and the flow graph built.
//!
//! [`build`] turns an [`ast::File`] into a [`Spec`]
//! and the diagnostics of name resolution (E0100–E0107). The model is built
//! even when there are errors, with whatever failed to resolve left out, so
//! that later stages can still look at the rest.

mod attributes;
mod flow;
mod namespace;
mod resolve;

use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast;
use std::time::Duration;

pub use crate::syntax::ast::{CompactString, Docs, TriggerKind};
pub use flow::Flow;

/// Builds the model of a parsed file, with the diagnostics found on the way.
pub fn build(file: &ast::File) -> (Spec, Vec<Diagnostic>) {
    resolve::build(file)
}

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            /// The index into the spec's list.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            pub(crate) fn from_index(index: usize) -> Self {
                // Specs are far smaller than 4 billion items; the parser
                // would have run out of memory long before.
                $name(u32::try_from(index).unwrap_or(u32::MAX))
            }
        }
    )*};
}

ids! {
    /// Index of a [`Record`] in [`Spec::records`].
    RecordId;
    /// Index of an [`Enum`] in [`Spec::enums`].
    EnumId;
    /// Index of a [`Message`] (command or event) in [`Spec::messages`].
    MessageId;
    /// Index of a [`Participant`] in [`Spec::participants`].
    ParticipantId;
    /// Index of a [`Reaction`] in [`Spec::reactions`].
    ReactionId;
}

/// A declared name and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The name, stored in place when short, as most are.
    pub text: CompactString,
    /// Where.
    pub span: Span,
}

impl Name {
    pub(crate) fn from_ident(ident: &ast::Ident) -> Self {
        Name {
            text: ident.name.clone(),
            span: ident.span,
        }
    }
}

/// A reference to a declaration, with the span of the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ref<T> {
    /// What it refers to.
    pub id: T,
    /// Where the reference was written.
    pub span: Span,
}

/// A whole choreography.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The choreography's name.
    pub name: Name,
    /// Its doc comment.
    pub docs: Docs,
    /// The `version`, if declared (and well-formed).
    pub version: Option<Version>,
    /// The correlation key (missing only in a spec with E0102).
    pub key: Option<Key>,
    /// Record types, in declaration order.
    pub records: Vec<Record>,
    /// Enums, in declaration order.
    pub enums: Vec<Enum>,
    /// Commands and events, in declaration order.
    pub messages: Vec<Message>,
    /// Participants, in declaration order.
    pub participants: Vec<Participant>,
    /// Every participant's reactions, in declaration order.
    pub reactions: Vec<Reaction>,
    /// The flow graph derived from the reactions.
    pub flow: Flow,
    /// The whole choreography.
    pub span: Span,
}

/// `version "1.2.0"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The parsed version.
    pub value: semver::Version,
    /// Where.
    pub span: Span,
}

/// `key name: Type`.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's name.
    pub name: Name,
    /// Its type (a scalar).
    pub ty: Scalar,
    /// Its doc comment.
    pub docs: Docs,
    /// The whole declaration.
    pub span: Span,
}

/// `@deprecated("why")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// The reason given, if any.
    pub reason: Option<String>,
    /// Where the attribute was written.
    pub span: Span,
}

/// `type Name { fields }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
    /// The fields, in order.
    pub fields: Vec<Field>,
    /// Set by `@deprecated`.
    pub deprecated: Option<Box<Deprecation>>,
    /// The whole item.
    pub span: Span,
}

/// A field of a record, command or event.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
    /// The type.
    pub ty: Type,
    /// Where the type was written.
    pub ty_span: Span,
    /// The whole field.
    pub span: Span,
}

/// `enum Name { A, B }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
    /// The variants, in order.
    pub variants: Vec<Variant>,
    /// Set by `@deprecated`.
    pub deprecated: Option<Box<Deprecation>>,
    /// The whole item.
    pub span: Span,
}

/// A variant of an enum.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
}

/// The built-in scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scalar {
    /// `bool`
    Bool,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `f64`
    F64,
    /// `string`
    String,
    /// `uuid`
    Uuid,
    /// `timestamp`: an instant, RFC 3339 on the wire.
    Timestamp,
    /// `duration`
    Duration,
    /// `decimal`: exact, a string on the wire.
    Decimal,
    /// `bytes`: base64 on the wire.
    Bytes,
    /// `json`: any JSON value.
    Json,
}

impl Scalar {
    /// Every scalar, with its name in specs.
    pub const ALL: &'static [(&'static str, Scalar)] = &[
        ("bool", Scalar::Bool),
        ("i32", Scalar::I32),
        ("i64", Scalar::I64),
        ("u32", Scalar::U32),
        ("u64", Scalar::U64),
        ("f64", Scalar::F64),
        ("string", Scalar::String),
        ("uuid", Scalar::Uuid),
        ("timestamp", Scalar::Timestamp),
        ("duration", Scalar::Duration),
        ("decimal", Scalar::Decimal),
        ("bytes", Scalar::Bytes),
        ("json", Scalar::Json),
    ];

    /// The scalar a name stands for, if any.
    pub fn from_name(name: &str) -> Option<Scalar> {
        // A match, not a search of `ALL`: every field's type goes through
        // here, and most names are not scalars. A test keeps the two equal.
        Some(match name {
            "bool" => Scalar::Bool,
            "i32" => Scalar::I32,
            "i64" => Scalar::I64,
            "u32" => Scalar::U32,
            "u64" => Scalar::U64,
            "f64" => Scalar::F64,
            "string" => Scalar::String,
            "uuid" => Scalar::Uuid,
            "timestamp" => Scalar::Timestamp,
            "duration" => Scalar::Duration,
            "decimal" => Scalar::Decimal,
            "bytes" => Scalar::Bytes,
            "json" => Scalar::Json,
            _ => return None,
        })
    }

    /// The name in specs.
    pub fn name(self) -> &'static str {
        Scalar::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether a key may have this type: it must identify an instance by
    /// value, compare exactly and print as a string.
    pub fn is_key_type(self) -> bool {
        matches!(
            self,
            Scalar::String | Scalar::Uuid | Scalar::U32 | Scalar::U64 | Scalar::I32 | Scalar::I64
        )
    }
}

/// A resolved field type.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// A built-in scalar.
    Scalar(Scalar),
    /// `list<T>`
    List(Box<Type>),
    /// `map<string, T>`
    Map(Box<Type>),
    /// `T?`
    Optional(Box<Type>),
    /// A declared record.
    Record(RecordId),
    /// A declared enum.
    Enum(EnumId),
    /// A name that did not resolve (only in a spec with E0101).
    Error,
}

/// Whether a message is a command or an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A request from outside the choreography.
    Command,
    /// A fact a participant publishes.
    Event,
}

impl MessageKind {
    /// `"command"` or `"event"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Command => "command",
            MessageKind::Event => "event",
        }
    }
}

/// How a terminal event settles an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// `@terminal`
    Success,
    /// `@terminal(failure)`
    Failure,
}

/// An HTTP method for `@http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl HttpMethod {
    /// The method as written, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// `@http(METHOD "/path")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The method.
    pub method: HttpMethod,
    /// The path; it names the key in braces at most.
    pub path: String,
    /// Where the attribute was written.
    pub span: Span,
}

/// A command or an event.
///
/// Attributes that few messages carry (`@http`, `@deprecated`) are boxed,
/// as are a reaction's `@retry`, `@timeout` and `@bounded`: a large spec
/// holds a hundred thousand messages and reactions, and the passes over
/// them read every byte of each, so an unset attribute costs 8 bytes
/// instead of 24 to 40. `@deprecated` is boxed on every item, so that it
/// reads the same everywhere.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Command or event.
    pub kind: MessageKind,
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
    /// The payload's fields.
    pub fields: Vec<Field>,
    /// Set by `@terminal`, with where it was written.
    pub terminal: Option<(Settlement, Span)>,
    /// Set by `@external`, with where it was written.
    pub external: Option<Span>,
    /// Set by `@http` on a command.
    pub http: Option<Box<HttpRoute>>,
    /// Set by `@deadline` on a command: the time an instance it starts has
    /// to settle before monitors report it stuck, with where it was
    /// written.
    pub deadline: Option<Box<(Duration, Span)>>,
    /// Set by `@deprecated`.
    pub deprecated: Option<Box<Deprecation>>,
    /// The whole item.
    pub span: Span,
}

impl Message {
    /// Whether this is an event.
    pub fn is_event(&self) -> bool {
        self.kind == MessageKind::Event
    }

    /// Whether this is a command.
    pub fn is_command(&self) -> bool {
        self.kind == MessageKind::Command
    }
}

/// `participant Name { reactions }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// The name.
    pub name: Name,
    /// The doc comment.
    pub docs: Docs,
    /// Its reactions, in declaration order.
    pub reactions: Vec<ReactionId>,
    /// Set by `@deprecated`.
    pub deprecated: Option<Box<Deprecation>>,
    /// The whole item.
    pub span: Span,
}

/// What a reaction reacts to.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// `|` (any) or `&` (a join).
    pub kind: TriggerKind,
    /// The commands and events, in the order written.
    pub messages: Vec<Ref<MessageId>>,
    /// The whole trigger.
    pub span: Span,
}

impl Trigger {
    /// Whether this is a join (`A & B`).
    pub fn is_join(&self) -> bool {
        self.kind == TriggerKind::All && self.messages.len() > 1
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.messages.iter().map(|r| r.id)
    }
}

/// One outcome: the events emitted together; empty for `none`.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The events, in the order written.
    pub events: Vec<Ref<MessageId>>,
    /// Where it was written.
    pub span: Span,
}

impl Outcome {
    /// Whether this is `none`.
    pub fn is_none(&self) -> bool {
        self.events.is_empty()
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.events.iter().map(|r| r.id)
    }
}

/// `@retry(max = N, backoff = D)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt.
    pub max: u32,
    /// The first back-off; it doubles on each retry.
    pub backoff: Duration,
    /// Where the attribute was written.
    pub span: Span,
}

/// A reaction of a participant. Its rarely set attributes are boxed, for
/// the reason given on [`Message`].
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    /// The participant it belongs to.
    pub participant: ParticipantId,
    /// The doc comment.
    pub docs: Docs,
    /// What it reacts to.
    pub trigger: Trigger,
    /// Its outcomes; `None` for a sink, which emits nothing.
    pub outcomes: Option<Vec<Outcome>>,
    /// The event it compensates.
    pub compensates: Option<Ref<MessageId>>,
    /// Set by `@retry`.
    pub retry: Option<Box<Retry>>,
    /// Set by `@timeout`, with where it was written.
    pub timeout: Option<Box<(Duration, Span)>>,
    /// Set by `@bounded`, with where it was written.
    pub bounded: Option<Box<(u32, Span)>>,
    /// The whole reaction, from `on`.
    pub span: Span,
}

impl Reaction {
    /// Whether the reaction emits nothing in any case (no `->`).
    pub fn is_sink(&self) -> bool {
        self.outcomes.is_none()
    }

    /// The outcomes; a sink has none.
    pub fn outcomes(&self) -> &[Outcome] {
        self.outcomes.as_deref().unwrap_or(&[])
    }

    /// Every event some outcome emits, possibly repeated.
    pub fn emitted(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.outcomes().iter().flat_map(Outcome::ids)
    }

    /// Where this reaction first names `id` among its outcomes.
    pub fn emission_span(&self, id: MessageId) -> Option<Span> {
        self.outcomes()
            .iter()
            .flat_map(|o| o.events.iter())
            .find(|e| e.id == id)
            .map(|e| e.span)
    }

    /// Where this reaction names `id` in its trigger.
    pub fn trigger_span(&self, id: MessageId) -> Option<Span> {
        self.trigger
            .messages
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.span)
    }
}

impl Spec {
    /// The message with this id.
    pub fn message(&self, id: MessageId) -> &Message {
        &self.messages[id.index()]
    }

    /// The reaction with this id.
    pub fn reaction(&self, id: ReactionId) -> &Reaction {
        &self.reactions[id.index()]
    }

    /// The participant with this id.
    pub fn participant(&self, id: ParticipantId) -> &Participant {
        &self.participants[id.index()]
    }

    /// The record with this id.
    pub fn record(&self, id: RecordId) -> &Record {
        &self.records[id.index()]
    }

    /// The enum with this id.
    pub fn enumeration(&self, id: EnumId) -> &Enum {
        &self.enums[id.index()]
    }

    /// The name of a message.
    pub fn message_name(&self, id: MessageId) -> &str {
        &self.message(id).name.text
    }

    /// The participant a reaction belongs to.
    pub fn reaction_participant(&self, id: ReactionId) -> &Participant {
        self.participant(self.reaction(id).participant)
    }

    /// Every field of every record, command and event, in order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> + '_ {
        self.records
            .iter()
            .flat_map(|r| r.fields.iter())
            .chain(self.messages.iter().flat_map(|m| m.fields.iter()))
    }

    /// Ids of every message, in order.
    pub fn message_ids(&self) -> impl Iterator<Item = MessageId> {
        (0..self.messages.len()).map(MessageId::from_index)
    }

    /// Ids of every reaction, in order.
    pub fn reaction_ids(&self) -> impl Iterator<Item = ReactionId> {
        (0..self.reactions.len()).map(ReactionId::from_index)
    }

    /// Ids of the commands, in order.
    pub fn commands(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.message_ids()
            .filter(|&id| self.message(id).is_command())
    }

    /// Ids of the events, in order.
    pub fn events(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.message_ids().filter(|&id| self.message(id).is_event())
    }

    /// The message of this name.
    pub fn find_message(&self, name: &str) -> Option<MessageId> {
        self.message_ids().find(|&id| self.message_name(id) == name)
    }

    /// What every wire type (the CloudEvents `type`, also the topic) starts
    /// with: `Choreography.vMAJOR.`, or `Choreography.` without a `version`.
    /// Services whose prefixes differ never consume each other's events.
    pub fn wire_prefix(&self) -> String {
        match &self.version {
            Some(v) => format!("{}.v{}.", self.name.text, v.value.major),
            None => format!("{}.", self.name.text),
        }
    }

    /// The participant of this name.
    pub fn find_participant(&self, name: &str) -> Option<ParticipantId> {
        (0..self.participants.len())
            .map(ParticipantId::from_index)
            .find(|&id| self.participant(id).name.text == name)
    }
}

/// A spec that passed every check: the input of the back ends.
///
/// It can only be made from a spec without errors, so back ends may rely on
/// what the checks guarantee (a key, resolved names, no unbounded cycle).
#[derive(Debug, Clone)]
pub struct CheckedSpec {
    spec: Spec,
    key: Key,
}

impl CheckedSpec {
    /// Wraps a spec that has a key; `None` otherwise. Only [`crate::check`]
    /// and the test support call this, after the checks found no error.
    pub(crate) fn new(spec: Spec) -> Option<Self> {
        let key = spec.key.clone()?;
        Some(CheckedSpec { spec, key })
    }

    /// The correlation key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// The model.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }
}

impl std::ops::Deref for CheckedSpec {
    type Target = Spec;

    fn deref(&self) -> &Spec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::Scalar;

    #[test]
    fn scalar_names_round_trip() {
        for &(name, scalar) in Scalar::ALL {
            assert_eq!(Scalar::from_name(name), Some(scalar));
            assert_eq!(scalar.name(), name);
        }
        assert_eq!(Scalar::from_name("String"), None);
        assert_eq!(Scalar::from_name("list"), None);
    }
}
