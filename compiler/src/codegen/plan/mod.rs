//! The naming plan: every name of the generated module, decided once from
//! the checked spec before anything is emitted.
//!
//! Spec names can collide with each other once cased (`OrderPlaced` and
//! `Order_Placed` both send as `order_placed`) and with the names the
//! emitters write as they are (`Key`, `router`, `ctx`). Each collision is
//! settled here with trailing underscores, in the spec's order, so the
//! emitters (types, participants, HTTP, wiring) only look names up by the
//! spec's ids and the output cannot depend on which emitter runs first.
//! `Namespace`, which hands out those names, is private to this module.

mod namespace;
mod participants;
#[cfg(test)]
mod tests;

use super::names::{id, ident, snake};
use crate::model::{CheckedSpec, EnumId, Field, MessageId, RecordId};
use namespace::Namespace;
pub(crate) use participants::{reaction_names, ParticipantNames, ReactionNames};
use proc_macro2::{Ident, Span};

/// A field of a record or message, or a variant of an enum.
pub(crate) struct Member {
    /// Its Rust identifier.
    pub(crate) ident: Ident,
    /// Whether serde needs `#[serde(rename)]` to keep the spec's name on
    /// the wire (names that cannot even be raw identifiers).
    pub(crate) renamed: bool,
}

impl Member {
    fn of(name: &str) -> Self {
        let (ident, renamed) = ident(name);
        Member { ident, renamed }
    }
}

/// The names of a record or an enum: the type, and its fields or variants
/// in the spec's order.
pub(crate) struct DataNames {
    /// The type's identifier.
    pub(crate) ty: Ident,
    /// Fields (records) or variants (enums), by position in the spec.
    pub(crate) members: Vec<Member>,
}

/// The names of a command or event.
pub(crate) struct MessageNames {
    /// The struct's identifier.
    pub(crate) ty: Ident,
    /// Its fields, by position in the spec.
    pub(crate) fields: Vec<Member>,
    /// Its wire type, which is also its topic.
    pub(crate) wire: String,
    /// The `Commands` method that sends it (commands and `@external`
    /// events only).
    pub(crate) send: Option<Ident>,
    /// The handler of its HTTP route (`@http` commands only).
    pub(crate) http_handler: Option<Ident>,
}

/// Every name the generated module uses; built by [`NamingPlan::new`].
pub(crate) struct NamingPlan {
    /// The module itself (`TravelBooking` → `travel_booking`).
    pub(crate) module: Ident,
    /// The constant holding the choreography's name.
    pub(crate) choreography: Ident,
    /// The constant holding the spec's version, when it has one.
    pub(crate) version: Option<Ident>,
    /// The instance key's type alias.
    pub(crate) key: Ident,
    /// The context handlers receive.
    pub(crate) context: Ident,
    /// The command sender.
    pub(crate) commands: Ident,
    records: Vec<DataNames>,
    enums: Vec<DataNames>,
    messages: Vec<MessageNames>,
    participants: Vec<ParticipantNames>,
}

/// Items the `http` module writes beside the command handlers.
const HTTP_FIXED: &[&str] = &["router", "router_with", "state", "Ingress"];
/// Methods `Commands` has beside the senders.
const COMMANDS_FIXED: &[&str] = &["new", "with_topics", "from_client", "client"];
/// Parameters `start_all` has before the participants.
const START_ALL_FIXED: &[&str] = &["broker", "stores", "options"];

/// The generated module's name: the choreography's name in snake_case.
/// A message's wire type: the spec's wire prefix
/// ([`CheckedSpec::wire_prefix`]) and its name.
pub(crate) fn wire_type(wire_prefix: &str, m: &crate::model::Message) -> String {
    format!("{wire_prefix}{}", m.name.text)
}

pub(crate) fn module_ident(spec: &CheckedSpec) -> Ident {
    id(&snake(&spec.name.text))
}

impl NamingPlan {
    /// Decides every name of `spec`'s module. The order is part of the
    /// output: in each namespace, earlier names keep their base and later
    /// ones get the underscores.
    pub(crate) fn new(spec: &CheckedSpec) -> Self {
        // The module's types: the spec's own keep their names; the
        // generated helpers, then the participants' modules, give way.
        let mut types = Namespace::default();
        for name in spec
            .records
            .iter()
            .map(|r| &r.name.text)
            .chain(spec.enums.iter().map(|e| &e.name.text))
            .chain(spec.messages.iter().map(|m| &m.name.text))
            .chain(spec.participants.iter().map(|p| &p.name.text))
        {
            types.take(&id(name).to_string());
        }
        let mut make = |base: &str| Ident::new(&types.fresh(base), Span::call_site());
        let key = make("Key");
        let context = make("Context");
        let commands = make("Commands");
        let mut args = Namespace::with(START_ALL_FIXED);
        let participants = participants::plan(spec, &mut types, &mut args);

        let wire_prefix = spec.wire_prefix();
        let mut senders = Namespace::with(COMMANDS_FIXED);
        let mut handlers = Namespace::with(HTTP_FIXED);
        let messages = spec
            .messages
            .iter()
            .map(|m| {
                let method = |ns: &mut Namespace| id(&ns.fresh(&snake(&m.name.text)));
                MessageNames {
                    ty: id(&m.name.text),
                    fields: members(&m.fields),
                    wire: wire_type(&wire_prefix, m),
                    send: (m.is_command() || m.external.is_some()).then(|| method(&mut senders)),
                    http_handler: m.http.is_some().then(|| method(&mut handlers)),
                }
            })
            .collect();
        NamingPlan {
            module: module_ident(spec),
            choreography: Ident::new("CHOREOGRAPHY", Span::call_site()),
            version: spec
                .version
                .as_ref()
                .map(|_| Ident::new("VERSION", Span::call_site())),
            key,
            context,
            commands,
            records: spec
                .records
                .iter()
                .map(|r| DataNames {
                    ty: id(&r.name.text),
                    members: members(&r.fields),
                })
                .collect(),
            enums: spec
                .enums
                .iter()
                .map(|e| DataNames {
                    ty: id(&e.name.text),
                    members: e
                        .variants
                        .iter()
                        .map(|v| Member::of(&v.name.text))
                        .collect(),
                })
                .collect(),
            messages,
            participants,
        }
    }

    /// The names of record `r`.
    pub(crate) fn record(&self, r: RecordId) -> &DataNames {
        &self.records[r.index()]
    }

    /// The names of enum `e`.
    pub(crate) fn enumeration(&self, e: EnumId) -> &DataNames {
        &self.enums[e.index()]
    }

    /// The names of message `m`.
    pub(crate) fn message(&self, m: MessageId) -> &MessageNames {
        &self.messages[m.index()]
    }

    /// The struct of message `m`, which the emitters name most often.
    pub(crate) fn message_type(&self, m: MessageId) -> &Ident {
        &self.message(m).ty
    }

    /// Every message's names, in the spec's order.
    pub(crate) fn messages(&self) -> &[MessageNames] {
        &self.messages
    }

    /// Every participant's names, in the spec's order.
    pub(crate) fn participants(&self) -> &[ParticipantNames] {
        &self.participants
    }
}

/// The fields of a record or message.
fn members(fields: &[Field]) -> Vec<Member> {
    fields.iter().map(|f| Member::of(&f.name.text)).collect()
}
