//! E0201 (emitted, consumed by nobody, not terminal) and E0202 (consumed,
//! produced by nobody, not external).

use super::Facts;
use crate::diagnostic::{Code, Diagnostic};

pub(crate) fn check(facts: &Facts<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = facts.spec;
    for id in spec.events() {
        let m = spec.message(id);
        let consumers = spec.flow.consumers(id);
        let producers = spec.flow.producers(id);
        if !producers.is_empty() && consumers.is_empty() && m.terminal.is_none() {
            let first = spec.reaction(producers[0]);
            let emitted_at = first.emission_span(id).unwrap_or(first.span);
            diags.push(
                Diagnostic::new(
                    Code::E0201,
                    m.name.span,
                    format!("event `{}` is emitted but nobody consumes it", m.name.text),
                )
                .with_primary_message("no reaction has this event in its trigger")
                .with_label(
                    emitted_at,
                    format!("emitted by `{}` here", spec.participant(first.participant).name.text),
                )
                .with_help(format!(
                    "add a reaction `on {}` to the participant that should act on it, or mark it `@terminal` if it ends the instance",
                    m.name.text
                )),
            );
        }
        if producers.is_empty() && !consumers.is_empty() && m.external.is_none() {
            let first = spec.reaction(consumers[0]);
            let consumed_at = first.trigger_span(id).unwrap_or(first.span);
            diags.push(
                Diagnostic::new(
                    Code::E0202,
                    m.name.span,
                    format!("event `{}` is consumed but nothing produces it", m.name.text),
                )
                .with_primary_message("no reaction emits this event")
                .with_label(
                    consumed_at,
                    format!("`{}` waits for it here", spec.participant(first.participant).name.text),
                )
                .with_help(format!(
                    "emit `{}` from a reaction, or mark it `@external` if it comes from outside the choreography",
                    m.name.text
                )),
            );
        }
    }
}
