//! Participants and their reactions: who consumes what.
//!
//! A participant's durable subscriptions are named after it, and the
//! events in flight for it wait there; its reactions decide which of them
//! it handles and how a join waits. Reactions have no names, so they are
//! matched by their triggers: the same trigger is the same reaction; a
//! left-over old reaction and a left-over new one that share a message are
//! one reaction whose trigger changed.

use super::names::Names;
use super::{Finding, Rule};
use crate::model::{CheckedSpec, Participant, Reaction, Spec, TriggerKind};
use rustc_hash::FxHashSet;

pub(super) fn compare(
    old: &CheckedSpec,
    new: &CheckedSpec,
    (old_names, new_names): &(Names<'_>, Names<'_>),
    out: &mut Vec<Finding>,
) {
    for p in &old.participants {
        match new_names.participant(&p.name.text) {
            Some(np) => reactions(old, new, p, np, out),
            None => out.push(Finding::new(
                Rule::ParticipantRemoved,
                format!("participant `{}` is removed", p.name.text),
                Some(p.name.span),
                None,
            )),
        }
    }
    for p in &new.participants {
        if old_names.participant(&p.name.text).is_none() {
            out.push(Finding::new(
                Rule::ParticipantAdded,
                format!("participant `{}` is added", p.name.text),
                None,
                Some(p.name.span),
            ));
        }
    }
}

/// A trigger by message names, the same whatever the order written:
/// whether it is a join, and the sorted names.
fn identity(spec: &Spec, r: &Reaction) -> (bool, Vec<String>) {
    let mut names: Vec<String> = r
        .trigger
        .ids()
        .map(|id| spec.message_name(id).to_string())
        .collect();
    names.sort_unstable();
    (r.trigger.kind == TriggerKind::All && names.len() > 1, names)
}

/// The trigger as a spec writes it, e.g. `A & B`.
fn written(spec: &Spec, r: &Reaction) -> String {
    let separator = if r.trigger.is_join() { " & " } else { " | " };
    r.trigger
        .ids()
        .map(|id| spec.message_name(id))
        .collect::<Vec<_>>()
        .join(separator)
}

fn reactions(
    old: &CheckedSpec,
    new: &CheckedSpec,
    op: &Participant,
    np: &Participant,
    out: &mut Vec<Finding>,
) {
    let name = &op.name.text;
    let old_reactions: Vec<_> = op.reactions.iter().map(|&r| old.reaction(r)).collect();
    let new_reactions: Vec<_> = np.reactions.iter().map(|&r| new.reaction(r)).collect();
    let old_keys: Vec<_> = old_reactions.iter().map(|r| identity(old, r)).collect();
    let new_keys: Vec<_> = new_reactions.iter().map(|r| identity(new, r)).collect();
    // Left-over reactions, by index: those whose trigger the other side
    // does not have.
    let old_set: FxHashSet<&(bool, Vec<String>)> = old_keys.iter().collect();
    let new_set: FxHashSet<&(bool, Vec<String>)> = new_keys.iter().collect();
    let mut old_left: Vec<usize> = (0..old_reactions.len())
        .filter(|&i| !new_set.contains(&old_keys[i]))
        .collect();
    let mut new_left: Vec<usize> = (0..new_reactions.len())
        .filter(|&i| !old_set.contains(&new_keys[i]))
        .collect();
    // Pair left-overs that share a message: one reaction, changed.
    old_left.retain(|&i| {
        let shares = |j: &usize| new_keys[*j].1.iter().any(|n| old_keys[i].1.contains(n));
        let Some(pos) = new_left.iter().position(shares) else {
            return true;
        };
        let j = new_left.remove(pos);
        let (o, n) = (old_reactions[i], new_reactions[j]);
        let mut affects = old_keys[i].1.clone();
        affects.extend(
            new_keys[j]
                .1
                .iter()
                .filter(|m| !old_keys[i].1.contains(m))
                .cloned(),
        );
        out.push(
            Finding::new(
                Rule::ReactionTriggerChanged,
                format!(
                    "the reaction of `{name}` on `{}` now reacts on `{}`",
                    written(old, o),
                    written(new, n)
                ),
                Some(o.trigger.span),
                Some(n.trigger.span),
            )
            .affecting(affects),
        );
        false
    });
    for i in old_left {
        let o = old_reactions[i];
        out.push(
            Finding::new(
                Rule::ReactionRemoved,
                format!(
                    "the reaction of `{name}` on `{}` is removed",
                    written(old, o)
                ),
                Some(o.trigger.span),
                Some(np.name.span),
            )
            .affecting(old_keys[i].1.clone()),
        );
    }
    for j in new_left {
        let n = new_reactions[j];
        out.push(
            Finding::new(
                Rule::ReactionAdded,
                format!("`{name}` gets a reaction on `{}`", written(new, n)),
                Some(op.name.span),
                Some(n.trigger.span),
            )
            .affecting(new_keys[j].1.clone()),
        );
    }
}
