//! The operations: what each participant receives and sends, reaction by
//! reaction; the commands the ingress sends; the `@external` events sent
//! from outside.
//!
//! An operation's key says who does what where:
//! `<Participant>.<reaction>.receive.<Message>`,
//! `<Participant>.<reaction>.send.<Event>`, `ingress.send.<Command>` and
//! `outside.send.<Event>`. Names are identifiers, so keys never clash;
//! a participant named `ingress` or `outside` moves the others' tag to
//! `ingress_` or `outside_`, as tags are told apart by name.

use super::channels::{message_reference, reference};
use super::document::{Action, Extensions, Operation, Tag};
use super::extensions::{self, put};
use super::{message_key, Context};
use crate::model::MessageId;
use indexmap::IndexMap;

/// The tag and key part of the ingress: the HTTP ingress and the clients
/// that publish commands (`permissions::INGRESS_USER`).
pub const INGRESS: &str = crate::export::permissions::INGRESS_USER;

/// The tag and key part of whatever publishes `@external` events.
pub const OUTSIDE: &str = "outside";

/// `base`, with `_` added while a participant has that name.
fn principal(spec: &crate::CheckedSpec, base: &str) -> String {
    let mut name = base.to_owned();
    while spec.participants.iter().any(|p| p.name.text == name) {
        name.push('_');
    }
    name
}

/// The ingress's tag.
pub(crate) fn ingress_tag(spec: &crate::CheckedSpec) -> Tag {
    Tag {
        name: principal(spec, INGRESS),
        description: Some(
            "The HTTP ingress and the clients that send commands; they start and steer instances."
                .to_owned(),
        ),
    }
}

/// The tag of what stands outside the choreography.
pub(crate) fn outside_tag(spec: &crate::CheckedSpec) -> Tag {
    Tag {
        name: principal(spec, OUTSIDE),
        description: Some(
            "Producers outside the choreography: they publish the `@external` events.".to_owned(),
        ),
    }
}

fn tag(name: &str) -> Vec<Tag> {
    vec![Tag {
        name: name.to_owned(),
        description: None,
    }]
}

/// Every operation: per participant in the spec's order, its reactions'
/// receives then sends; then the ingress's and the outside's sends.
pub(crate) fn operations(cx: &Context) -> IndexMap<String, Operation> {
    let spec = cx.spec;
    let mut out = IndexMap::new();
    for p in &spec.participants {
        let participant = p.name.text.as_str();
        for &rid in &p.reactions {
            let r = spec.reaction(rid);
            let name = cx.reaction(rid);
            let common = extensions::reaction(cx, name, r);
            for id in distinct(r.trigger.ids()) {
                let key = message_key(spec, id);
                let mut ext = common.clone();
                ext.extend(extensions::receiving(cx, participant, cx.topic(id), r));
                out.insert(
                    format!("{participant}.{name}.receive.{key}"),
                    operation(
                        Action::Receive,
                        &key,
                        format!("{participant} receives {key} ({name})"),
                        extensions::docs(&r.docs),
                        participant,
                        ext,
                    ),
                );
            }
            for id in distinct(r.emitted()) {
                let key = message_key(spec, id);
                let mut ext = common.clone();
                put(
                    &mut ext,
                    "source",
                    format!("{}/{participant}", spec.name.text).into(),
                );
                out.insert(
                    format!("{participant}.{name}.send.{key}"),
                    operation(
                        Action::Send,
                        &key,
                        format!("{participant} sends {key} ({name})"),
                        extensions::docs(&r.docs),
                        participant,
                        ext,
                    ),
                );
            }
        }
    }
    let ingress = principal(spec, INGRESS);
    for id in spec.commands() {
        let key = message_key(spec, id);
        let summary = match &spec.message(id).http {
            Some(route) => format!(
                "The ingress sends {key} ({} {})",
                route.method.as_str(),
                route.path
            ),
            None => format!("The ingress sends {key}"),
        };
        out.insert(
            format!("{ingress}.send.{key}"),
            operation(
                Action::Send,
                &key,
                summary,
                None,
                &ingress,
                Extensions::new(),
            ),
        );
    }
    let outside = principal(spec, OUTSIDE);
    for id in spec
        .events()
        .filter(|&id| spec.message(id).external.is_some())
    {
        let key = message_key(spec, id);
        out.insert(
            format!("{outside}.send.{key}"),
            operation(
                Action::Send,
                &key,
                format!("{key} is sent from outside the choreography"),
                None,
                &outside,
                Extensions::new(),
            ),
        );
    }
    out
}

fn operation(
    action: Action,
    key: &str,
    summary: String,
    description: Option<String>,
    who: &str,
    extensions: Extensions,
) -> Operation {
    Operation {
        action,
        channel: reference(key),
        summary,
        description,
        tags: tag(who),
        messages: vec![message_reference(key)],
        extensions,
    }
}

/// `ids` without repeats, in order.
fn distinct(ids: impl Iterator<Item = MessageId>) -> Vec<MessageId> {
    let mut out: Vec<MessageId> = Vec::new();
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}
