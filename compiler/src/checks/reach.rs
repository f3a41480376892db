//! E0203: events and reactions that no run can reach
//! (compiler/explanations/E0203.md).
//!
//! Reachability starts from every command and `@external` event; a plain
//! reaction fires once one of its alternatives is reachable, a join once all
//! its events are and it can fire at all (E0205 decides that).

use super::Joined;
use crate::analysis::joins::Verdict;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::MessageId;
use std::collections::VecDeque;

pub(crate) fn check(joined: &Joined<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = joined.runs.spec;
    let verdicts = joined.verdicts;
    let referenced = &joined.references.messages;
    let n = spec.messages.len();
    let mut reachable = vec![false; n];
    let mut waiting: Vec<usize> = spec
        .reaction_ids()
        .map(|r| {
            if spec.flow.is_join(r) {
                spec.flow.trigger(r).len()
            } else {
                1
            }
        })
        .collect();
    let mut queue: VecDeque<MessageId> = VecDeque::new();
    for id in spec.message_ids() {
        let m = spec.message(id);
        if m.is_command() || m.external.is_some() {
            reachable[id.index()] = true;
            queue.push_back(id);
        }
    }
    while let Some(x) = queue.pop_front() {
        for &rid in spec.flow.consumers(x) {
            if waiting[rid.index()] == 0 {
                continue;
            }
            waiting[rid.index()] -= 1;
            let join = spec.flow.is_join(rid);
            let fires = !join || waiting[rid.index()] == 0;
            let blocked = matches!(
                verdicts[rid.index()],
                Some(Verdict::NeverOccurs(_) | Verdict::Exclusive(..))
            );
            if !join {
                waiting[rid.index()] = 0;
            }
            if fires && !blocked {
                for &e in spec.flow.emitted(rid) {
                    if !reachable[e.index()] {
                        reachable[e.index()] = true;
                        queue.push_back(e);
                    }
                }
            }
        }
    }

    for id in spec.message_ids() {
        if reachable[id.index()] || !referenced[id.index()] {
            continue;
        }
        let m = spec.message(id);
        if !m.is_event() {
            continue;
        }
        // Consumed but never produced is E0202's; saying it again as
        // "unreachable" would add nothing.
        if spec.flow.producers(id).is_empty() {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::E0203,
            m.name.span,
            format!("event `{}` is unreachable", m.name.text),
        )
        .with_primary_message("no run from a command emits it")
        .with_help("check the reactions that emit it: none of them can fire in any instance");
        for &rid in spec.flow.producers(id).iter().take(3) {
            d = d.with_label(
                spec.reaction(rid).span,
                format!(
                    "emitted only by reactions like this one of `{}`, which never fires",
                    spec.reaction_participant(rid).name.text
                ),
            );
        }
        diags.push(d);
    }

    for rid in spec.reaction_ids() {
        let trigger = spec.flow.trigger(rid);
        if verdicts[rid.index()].is_some() || trigger.is_empty() {
            // Joins are E0205's to judge (see `analysis::joins`).
            continue;
        }
        let any_reachable = trigger.iter().any(|t| reachable[t.index()]);
        if any_reachable {
            continue;
        }
        // When every trigger is never produced at all, E0202 already says so.
        if trigger.iter().all(|&t| spec.flow.producers(t).is_empty()) {
            continue;
        }
        let r = spec.reaction(rid);
        diags.push(
            Diagnostic::new(
                Code::E0203,
                r.span,
                format!(
                    "this reaction of `{}` is unreachable",
                    spec.reaction_participant(rid).name.text
                ),
            )
            .with_primary_message("none of its triggers occurs in any run")
            .with_help("remove the reaction, or make one of its triggers reachable from a command"),
        );
    }
}
