//! The names of each participant: its module and `start_all` argument,
//! and per reaction the handler, the runtime name, the outcome and trigger
//! enums with their variants, and a join handler's parameters.

use super::Namespace;
use crate::codegen::names::{camel, id, ident, snake};
use crate::model::{CheckedSpec, Participant, ParticipantId, Reaction, ReactionId, TriggerKind};
use proc_macro2::{Ident, Span};

/// Items every participant's module writes beside its enums.
const MODULE_FIXED: &[&str] = &["Fixture", "Consumes", "definition", "fixture", "EMITS"];
/// Parameters a handler has before the events it is given.
const HANDLER_FIXED: &[&str] = &["ctx", "self"];

/// The names of one participant.
pub(crate) struct ParticipantNames {
    /// The participant, in the spec.
    pub(crate) id: ParticipantId,
    /// Its trait, named as in the spec.
    pub(crate) trait_name: Ident,
    /// Its module, in the generated module's type namespace.
    pub(crate) module: Ident,
    /// Its argument in `start_all`.
    pub(crate) arg: Ident,
    /// Its reactions, in the spec's order.
    pub(crate) reactions: Vec<ReactionNames>,
}

/// The names of one reaction.
pub(crate) struct ReactionNames {
    /// The reaction, in the spec.
    pub(crate) id: ReactionId,
    /// The handler method.
    pub(crate) method: Ident,
    /// The reaction's name at run time: the method's name, which progress
    /// notices and inbox scopes carry.
    pub(crate) name: String,
    /// With two outcomes or more: the enum of them, one variant per
    /// outcome in the spec's order.
    pub(crate) outcome_enum: Option<EnumNames>,
    /// With an `|` of two triggers or more: the enum of them, one variant
    /// per trigger in the spec's order.
    pub(crate) trigger_enum: Option<EnumNames>,
    /// With an `&` of two triggers or more: one handler parameter per
    /// trigger in the spec's order; else empty (the handler takes `event`).
    pub(crate) join_params: Vec<Ident>,
}

/// An enum generated in a participant's module.
pub(crate) struct EnumNames {
    /// The enum.
    pub(crate) name: Ident,
    /// Its variants.
    pub(crate) variants: Vec<Ident>,
}

/// The handler's base name: `on_` and its triggers.
fn method_base(spec: &CheckedSpec, r: &Reaction) -> String {
    let sep = match r.trigger.kind {
        TriggerKind::Any => "_or_",
        TriggerKind::All => "_and_",
    };
    let parts: Vec<String> = r
        .trigger
        .ids()
        .map(|m| snake(spec.message_name(m)))
        .collect();
    format!("on_{}", parts.join(sep))
}

fn call_site(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// The run-time names of participant `p`'s reactions, in its order: its
/// handler methods' names, each `on_` and its triggers, made unique within
/// the participant. The plan names the methods by it, and
/// [`crate::codegen::wire_names`] takes it alone, without the rest of the
/// plan.
pub(crate) fn reaction_names(spec: &CheckedSpec, p: &Participant) -> Vec<String> {
    let mut methods = Namespace::default();
    p.reactions
        .iter()
        .map(|&rid| methods.fresh(&method_base(spec, spec.reaction(rid))))
        .collect()
}

/// Names every participant: modules in `types`, arguments in `args`.
pub(super) fn plan(
    spec: &CheckedSpec,
    types: &mut Namespace,
    args: &mut Namespace,
) -> Vec<ParticipantNames> {
    spec.participants
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let module = types.fresh(&snake(&p.name.text));
            let arg = args.fresh(&snake(&p.name.text));
            let mut local = Namespace::with(MODULE_FIXED);
            let reactions = p
                .reactions
                .iter()
                .zip(reaction_names(spec, p))
                .map(|(&rid, name)| reaction(spec, rid, name, &mut local))
                .collect();
            ParticipantNames {
                id: ParticipantId::from_index(pi),
                trait_name: id(&p.name.text),
                module: id(&module),
                arg: id(&arg),
                reactions,
            }
        })
        .collect()
}

/// Names one reaction, whose method is `name` ([`reaction_names`]): its
/// enums among the items of the participant's module, `local`.
fn reaction(
    spec: &CheckedSpec,
    rid: ReactionId,
    name: String,
    local: &mut Namespace,
) -> ReactionNames {
    let r = spec.reaction(rid);
    let base = camel(&name);
    let outcomes = r.outcomes();
    let outcome_enum = (outcomes.len() > 1).then(|| {
        let enum_name = call_site(&local.fresh(&format!("{base}Outcome")));
        let mut variants = Namespace::default();
        let labels = outcomes.iter().map(|o| {
            if o.is_none() {
                "Nothing".to_string()
            } else {
                o.ids()
                    .map(|e| camel(spec.message_name(e)))
                    .collect::<Vec<_>>()
                    .join("And")
            }
        });
        EnumNames {
            name: enum_name,
            variants: labels.map(|l| call_site(&variants.fresh(&l))).collect(),
        }
    });
    let several = r.trigger.messages.len() > 1;
    let trigger_enum = (r.trigger.kind == TriggerKind::Any && several).then(|| {
        let enum_name = call_site(&local.fresh(&format!("{base}Trigger")));
        let mut variants = Namespace::default();
        EnumNames {
            name: enum_name,
            variants: r
                .trigger
                .ids()
                .map(|m| call_site(&variants.fresh(&camel(spec.message_name(m)))))
                .collect(),
        }
    });
    let join_params = if r.trigger.kind == TriggerKind::All && several {
        let mut taken = Namespace::with(HANDLER_FIXED);
        r.trigger
            .ids()
            .map(|m| ident(&taken.fresh(&snake(spec.message_name(m)))).0)
            .collect()
    } else {
        Vec::new()
    };
    ReactionNames {
        id: rid,
        method: call_site(&name),
        name,
        outcome_enum,
        trigger_enum,
        join_params,
    }
}
