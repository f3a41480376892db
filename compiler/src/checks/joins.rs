//! E0205: joins that can never fire, because no instance contains all of
//! their events (docs/language.md, "Checks": joins); the join analysis decides it.

use super::Joined;
use crate::analysis::joins::Verdict;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{MessageId, ReactionId, Spec};

/// Reports E0205 for every join that can never fire.
pub(crate) fn check(joined: &Joined<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = joined.runs.spec;
    let verdicts = joined.verdicts;
    for rid in spec.reaction_ids() {
        let r = spec.reaction(rid);
        let Some(verdict) = &verdicts[rid.index()] else {
            continue;
        };
        // Built only for the joins that fail.
        let cannot_fire = || {
            let participant = &spec.reaction_participant(rid).name.text;
            let joined = r
                .trigger
                .ids()
                .map(|m| format!("`{}`", spec.message_name(m)))
                .collect::<Vec<_>>()
                .join(" & ");
            Diagnostic::new(
                Code::E0205,
                r.trigger.span,
                format!("the join {joined} of `{participant}` can never fire"),
            )
        };
        let d = match verdict {
            Verdict::Fires => continue,
            Verdict::NeverOccurs(m) => cannot_fire()
            .with_primary_message(format!("`{}` never occurs", spec.message_name(*m)))
            .with_help(format!(
                "no run emits `{}`, so the join waits forever; make a reaction emit it or mark it `@external`",
                spec.message_name(*m)
            )),
            Verdict::Exclusive(a, b) => {
                let mut d = cannot_fire().with_primary_message(format!(
                    "`{}` and `{}` never occur in the same instance",
                    spec.message_name(*a),
                    spec.message_name(*b)
                ))
                .with_help("a join waits for all its events in one instance; join events that happen together, or react to each alone");
                if let Some((rid2, span)) = alternatives_of(spec, *a, *b) {
                    d = d.with_label(
                        span,
                        format!(
                            "they are alternative outcomes of this reaction of `{}`",
                            spec.reaction_participant(rid2).name.text
                        ),
                    );
                }
                d
            }
        };
        diags.push(d);
    }
}

/// A reaction that has `a` and `b` in different outcomes, with its span.
fn alternatives_of(spec: &Spec, a: MessageId, b: MessageId) -> Option<(ReactionId, crate::Span)> {
    spec.reaction_ids().find_map(|rid| {
        let r = spec.reaction(rid);
        let outs = r.outcomes();
        let ia = outs.iter().position(|o| o.ids().any(|e| e == a))?;
        let ib = outs.iter().position(|o| o.ids().any(|e| e == b))?;
        (ia != ib).then_some((rid, r.span))
    })
}
