//! E0206 (a compensation of something that cannot have happened before it)
//! and W0207 (a failure outcome reachable without a compensation running).

use super::{Findings, Joined};
use crate::analysis::runs::{CommandRun, Runs};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{MessageId, Settlement};
use rustc_hash::FxHashSet as HashSet;
use std::collections::VecDeque;

/// E0206 (docs/language.md, "Checks"): `compensates X` needs an instance in which X is emitted
/// before the reaction fires: X leads to the trigger, is emitted in the same
/// `+` as it, or comes from another source's run than the trigger.
pub(crate) fn check_order(joined: &Joined<'_>, diags: &mut Vec<Diagnostic>) {
    let runs = joined.runs;
    let spec = runs.spec;
    for rid in spec.reaction_ids() {
        let r = spec.reaction(rid);
        let Some(x) = r.compensates else { continue };
        let triggers: Vec<MessageId> = r.trigger.ids().collect();
        if triggers.is_empty() || triggers.contains(&x.id) {
            continue;
        }
        if runs.reaches_any(x.id, &triggers) {
            continue;
        }
        let siblings = spec.flow.producers(x.id).iter().any(|&other| {
            spec.reaction(other)
                .outcomes()
                .iter()
                .any(|o| o.ids().any(|e| e == x.id) && o.ids().any(|e| triggers.contains(&e)))
        });
        if siblings {
            continue;
        }
        let x_sources = runs.sources[x.id.index()];
        let other_source = triggers
            .iter()
            .any(|&t| x_sources.distinct_pair(runs.sources[t.index()]));
        if other_source {
            continue;
        }
        let x_name = spec.message_name(x.id);
        let trigger_names = triggers
            .iter()
            .map(|&t| format!("`{}`", spec.message_name(t)))
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diagnostic::new(
                Code::E0206,
                x.span,
                format!(
                    "`{}` compensates `{x_name}`, which cannot have been emitted before {trigger_names}",
                    spec.reaction_participant(rid).name.text
                ),
            )
            .with_primary_message(format!("`{x_name}` never precedes this reaction"))
            .with_label(r.trigger.span, "the compensation fires on this")
            .with_help(format!(
                "a compensation undoes something that already happened; trigger it on an event that follows `{x_name}`"
            )),
        );
    }
}

/// W0207 (docs/language.md, "Checks"): for each event X that has compensations, warn when a run
/// from some command can contain X and a failure terminal event while no
/// compensation of X fires.
///
/// Per command, the families of what a complete run from each message can
/// contain ({X seen, failure seen}, as bit sets) are computed as a least
/// fixed point over runs that never trigger a compensation of X: a
/// compensation's trigger events are forbidden. A join that compensates
/// counts as triggered as soon as any of its events occurs, which may miss
/// a warning but never invents one.
///
/// Judges one command's run, right after it is built, while it is in cache
/// and on the thread that built it: marks `(X, command)` for every
/// compensated event X that the run can emit and then fail without
/// compensating; [`report_missing`] then reports per event.
pub(crate) fn judge(joined: &Joined<'_>, run: &CommandRun, found: &mut Findings) {
    let runs = joined.runs;
    if joined.compensations.by_event.is_empty()
        || !run
            .region
            .iter()
            .any(|&m| runs.terminal(m) == Some(Settlement::Failure))
    {
        return;
    }
    for &x in &run.region {
        if let Some((_, forbidden)) = joined.compensations.by_event.get(&x) {
            if run_can_fail_uncompensated(runs, run, x, forbidden) {
                found.marks.push((x, run.start));
            }
        }
    }
}

/// Reports W0207 from what [`judge`] marked, given in the order of the
/// commands: one warning per event, in id order, naming the commands in
/// that order.
pub(crate) fn report_missing(joined: &Joined<'_>, found: Findings, diags: &mut Vec<Diagnostic>) {
    let runs = joined.runs;
    let mut found = found.marks;
    let spec = runs.spec;
    // Stable: the commands stay in order within each event.
    found.sort_by_key(|&(x, _)| x);
    for group in found.chunk_by(|a, b| a.0 == b.0) {
        let x = group[0].0;
        let warned_for: Vec<MessageId> = group.iter().map(|&(_, c)| c).collect();
        let Some((comps, _)) = joined.compensations.by_event.get(&x) else {
            continue;
        };
        let m = spec.message(x);
        let starters = warned_for
            .iter()
            .map(|&c| format!("`{}`", spec.message_name(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut d = Diagnostic::new(
            Code::W0207,
            m.name.span,
            format!(
                "an instance can fail after `{}` without compensating it",
                m.name.text
            ),
        )
        .with_primary_message(format!(
            "an instance started by {starters} can emit this, then settle with a failure outcome"
        ))
        .with_help(format!(
            "route every failure after `{}` through a reaction that `compensates {}`",
            m.name.text, m.name.text
        ));
        for &rid in comps {
            d = d.with_label(
                spec.reaction(rid).span,
                "this compensation does not run on that path",
            );
        }
        diags.push(d);
    }
}

const SEEN_X: u8 = 1;
const FAILED: u8 = 2;

/// A set of the four masks over {X seen, failure seen}, as a 4-bit set.
fn product(a: u8, b: u8) -> u8 {
    let mut out = 0u8;
    for i in 0..4u8 {
        if a & (1 << i) == 0 {
            continue;
        }
        for j in 0..4u8 {
            if b & (1 << j) != 0 {
                out |= 1 << (i | j);
            }
        }
    }
    out
}

fn run_can_fail_uncompensated(
    runs: &Runs<'_>,
    run: &CommandRun,
    x: MessageId,
    forbidden: &HashSet<MessageId>,
) -> bool {
    let spec = runs.spec;
    let n = run.region.len();
    let own = |m: MessageId| -> u8 {
        let mut mask = 0u8;
        if m == x {
            mask |= SEEN_X;
        }
        if runs.terminal(m) == Some(Settlement::Failure) {
            mask |= FAILED;
        }
        1 << mask
    };
    // Who must be re-evaluated when a message's family grows.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, obligations) in run.obligations.iter().enumerate() {
        for &rid in obligations {
            for e in spec.flow.emitted(rid) {
                if let Some(&j) = run.local.get(e) {
                    dependents[j].push(i);
                }
            }
        }
    }
    let mut family = vec![0u8; n];
    let mut queue: VecDeque<usize> = (0..n).rev().collect();
    let mut queued = vec![true; n];
    while let Some(i) = queue.pop_front() {
        queued[i] = false;
        let m = run.region[i];
        if forbidden.contains(&m) {
            continue;
        }
        let mut acc = own(m);
        for &rid in &run.obligations[i] {
            let outcomes = spec.flow.outcomes(rid);
            // A sink's only option is emitting nothing.
            let options = if outcomes.len() == 0 {
                1
            } else {
                outcomes.fold(0u8, |opts, o| {
                    let combined = o.iter().fold(1u8, |c, e| {
                        let f = run.local.get(e).map_or(0, |&j| family[j]);
                        product(c, f)
                    });
                    opts | combined
                })
            };
            acc = product(acc, options);
        }
        if acc | family[i] != family[i] {
            family[i] |= acc;
            for &d in &dependents[i] {
                if !queued[d] {
                    queued[d] = true;
                    queue.push_back(d);
                }
            }
        }
    }
    family[0] & (1 << (SEEN_X | FAILED)) != 0
}
