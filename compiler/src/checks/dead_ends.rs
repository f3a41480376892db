//! E0204: a way an instance can go that never reaches a terminal event
//! (docs/language.md, "Checks": dead ends).
//!
//! For each command, "avoidable" is computed as a least fixed point over
//! the messages its runs can reach: a message is avoidable when it is not
//! terminal and either no terminal event can follow it at all (a cycle with
//! no way out, or a plain dead end), or every reaction that must fire when
//! it occurs has an outcome whose events are all avoidable. Being a least
//! fixed point, a cycle cannot justify itself: a cycle with a way out is
//! assumed to be left eventually, as docs/language.md says. The command has a
//! dead end exactly when it is avoidable, and the choices that made it so
//! are a concrete run to show.

use super::{Findings, Joined};
use crate::analysis::runs::{path_text, CommandRun, Runs};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::{MessageId, ReactionId};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;

/// Why a message of the witness run leads nowhere.
#[derive(Clone, Copy)]
enum Stop {
    /// It has no reaction that must fire, or those emit nothing.
    Ends,
    /// Nothing that can follow it is terminal.
    NoWayOut,
}

pub(crate) fn judge(joined: &Joined<'_>, run: &CommandRun, found: &mut Findings) {
    let runs = joined.runs;
    let spec = runs.spec;
    let n = run.region.len();

    // Per obligation reaction: per outcome, how many distinct events are not
    // yet avoidable; and who waits on the reaction.
    let mut reactions: HashMap<ReactionId, Vec<usize>> = HashMap::default();
    let mut waiters: HashMap<ReactionId, Vec<usize>> = HashMap::default();
    let mut missing = vec![0usize; n];
    for (i, obligations) in run.obligations.iter().enumerate() {
        for &rid in obligations {
            waiters.entry(rid).or_default().push(i);
            missing[i] += 1;
            reactions.entry(rid).or_insert_with(|| {
                spec.flow
                    .outcomes(rid)
                    .map(|o| distinct(o).count())
                    .collect()
            });
        }
    }
    // Where each message appears in an outcome of an obligation reaction.
    let mut appears: HashMap<MessageId, Vec<(ReactionId, usize)>> = HashMap::default();
    for &rid in reactions.keys() {
        for (o, outcome) in spec.flow.outcomes(rid).enumerate() {
            for e in distinct(outcome) {
                appears.entry(e).or_default().push((rid, o));
            }
        }
    }

    let mut avoidable: Vec<Option<Stop>> = vec![None; n];
    let mut chosen: HashMap<ReactionId, Option<usize>> = HashMap::default();
    let mut queue: VecDeque<usize> = VecDeque::new();

    // Reactions that can end right away: sinks, and `none` outcomes.
    let mut ready: Vec<ReactionId> = Vec::new();
    for (&rid, counts) in &reactions {
        if spec.flow.outcomes(rid).len() == 0 {
            chosen.insert(rid, None);
            ready.push(rid);
        } else if let Some(o) = counts.iter().position(|&c| c == 0) {
            chosen.insert(rid, Some(o));
            ready.push(rid);
        }
    }
    ready.sort();
    for (i, &m) in run.region.iter().enumerate() {
        if runs.terminal(m).is_some() {
            continue;
        }
        if !runs.reaches_terminal[m.index()] {
            avoidable[i] = Some(Stop::NoWayOut);
            queue.push_back(i);
        } else if missing[i] == 0 {
            avoidable[i] = Some(Stop::Ends);
            queue.push_back(i);
        }
    }
    let settle_reaction = |rid: ReactionId,
                           missing: &mut Vec<usize>,
                           avoidable: &mut Vec<Option<Stop>>,
                           queue: &mut VecDeque<usize>| {
        for &w in waiters.get(&rid).map_or(&[][..], Vec::as_slice) {
            missing[w] -= 1;
            let m = run.region[w];
            if missing[w] == 0 && avoidable[w].is_none() && runs.terminal(m).is_none() {
                avoidable[w] = Some(Stop::Ends);
                queue.push_back(w);
            }
        }
    };
    for rid in ready {
        settle_reaction(rid, &mut missing, &mut avoidable, &mut queue);
    }
    while let Some(i) = queue.pop_front() {
        let m = run.region[i];
        for &(rid, o) in appears.get(&m).map_or(&[][..], Vec::as_slice) {
            let Some(counts) = reactions.get_mut(&rid) else {
                continue;
            };
            counts[o] -= 1;
            if counts[o] == 0 && !chosen.contains_key(&rid) {
                chosen.insert(rid, Some(o));
                settle_reaction(rid, &mut missing, &mut avoidable, &mut queue);
            }
        }
    }

    if avoidable[0].is_none() {
        return;
    }
    report(runs, run, &avoidable, &chosen, &mut found.diags);
}

/// The events of an outcome, each once: outcomes are a few events long.
fn distinct(ids: &[MessageId]) -> impl Iterator<Item = MessageId> + '_ {
    ids.iter()
        .enumerate()
        .filter(|&(i, e)| !ids[..i].contains(e))
        .map(|(_, &e)| e)
}

/// Follows the choices from the command and reports the deepest place the
/// run stops.
fn report(
    runs: &Runs<'_>,
    run: &CommandRun,
    avoidable: &[Option<Stop>],
    chosen: &HashMap<ReactionId, Option<usize>>,
    diags: &mut Vec<Diagnostic>,
) {
    let spec = runs.spec;
    let mut parent: HashMap<usize, (usize, ReactionId)> = HashMap::default();
    let mut seen = vec![false; run.region.len()];
    seen[0] = true;
    let mut order = vec![0usize];
    // Where the run ends: (message index, reaction that ended it, if any).
    let mut ends: Vec<(usize, Option<ReactionId>)> = Vec::new();
    let mut k = 0;
    while k < order.len() {
        let i = order[k];
        k += 1;
        if let Some(Stop::NoWayOut) = avoidable[i] {
            ends.push((i, None));
            continue;
        }
        let mut emitted_any = false;
        for &rid in &run.obligations[i] {
            let Some(choice) = chosen.get(&rid) else {
                continue;
            };
            let Some(o) = choice else {
                ends.push((i, Some(rid)));
                continue;
            };
            let outcome = &spec.reaction(rid).outcomes()[*o];
            if outcome.is_none() {
                ends.push((i, Some(rid)));
            }
            for e in outcome.ids() {
                emitted_any = true;
                if let Some(&j) = run.local.get(&e) {
                    if !seen[j] {
                        seen[j] = true;
                        parent.insert(j, (i, rid));
                        order.push(j);
                    }
                }
            }
        }
        if run.obligations[i].is_empty() && !emitted_any {
            ends.push((i, None));
        }
    }
    let depth = |mut i: usize| {
        let mut d = 0;
        while let Some(&(p, _)) = parent.get(&i) {
            d += 1;
            i = p;
        }
        d
    };
    let Some(&(end, ended_by)) = ends
        .iter()
        .max_by_key(|(i, _)| (depth(*i), std::cmp::Reverse(*i)))
    else {
        return;
    };
    let mut steps: Vec<(MessageId, Option<ReactionId>)> = Vec::new();
    let mut at = end;
    loop {
        match parent.get(&at) {
            Some(&(p, r)) => {
                steps.push((run.region[at], Some(r)));
                at = p;
            }
            None => {
                steps.push((run.region[at], None));
                break;
            }
        }
    }
    steps.reverse();
    let mut looped = false;
    if let Some(Stop::NoWayOut) = avoidable[end] {
        // Nothing after this message can be terminal, so any way on shows
        // where the run goes; follow the first one until it stops or loops.
        looped = extend_without_way_out(runs, run, &mut steps);
    }
    let path = path_text(spec, &steps);
    let start = spec.message(run.start);
    let last = steps.last().map_or(run.region[end], |(m, _)| *m);
    let last_name = spec.message_name(last);
    let emitted_at = steps
        .last()
        .and_then(|(_, r)| *r)
        .and_then(|r| spec.reaction(r).emission_span(last));
    let at_last = emitted_at.unwrap_or(spec.message(last).name.span);
    let (span, label, help) = match (avoidable[end], ended_by) {
        (Some(Stop::NoWayOut), _) if looped => (
            at_last,
            format!("the run comes back to `{last_name}` and circles with no way out to a terminal event"),
            format!("give the cycle through `{last_name}` a way out to a `@terminal` event"),
        ),
        (Some(Stop::NoWayOut), _) if spec.flow.consumers(last).is_empty() => (
            at_last,
            format!("nothing reacts to `{last_name}`"),
            format!(
                "add a reaction to `{last_name}` that leads to a `@terminal` event, or mark `{last_name}` `@terminal`"
            ),
        ),
        (Some(Stop::NoWayOut), _) => (
            at_last,
            format!("after `{last_name}`, no terminal event can ever be emitted"),
            format!("give the run a way from `{last_name}` to a `@terminal` event"),
        ),
        (_, Some(rid)) => {
            let r = spec.reaction(rid);
            let who = &spec.reaction_participant(rid).name.text;
            let what = if r.is_sink() {
                format!("`{who}` reacts to `{last_name}` and emits nothing")
            } else {
                format!("`{who}` can answer `{last_name}` with `none`")
            };
            (
                r.span,
                what,
                "let this path reach a `@terminal` event, or make its last event terminal".to_string(),
            )
        }
        _ if !spec.flow.consumers(last).is_empty() => {
            let join = spec.flow.consumers(last)[0];
            let members = spec
                .reaction(join)
                .trigger
                .ids()
                .map(|m| format!("`{}`", spec.message_name(m)))
                .collect::<Vec<_>>()
                .join(" & ");
            (
                at_last,
                format!(
                    "only the join {members} of `{}` takes `{last_name}`, and this run need not emit the rest",
                    spec.reaction_participant(join).name.text
                ),
                format!(
                    "make sure every way that emits `{last_name}` also leads to the other events of the join, or let a plain reaction handle `{last_name}`"
                ),
            )
        }
        _ => (
            at_last,
            format!("nothing reacts to `{last_name}`"),
            format!(
                "add a reaction to `{last_name}` that leads to a `@terminal` event, or mark `{last_name}` `@terminal`"
            ),
        ),
    };
    diags.push(
        Diagnostic::new(
            Code::E0204,
            span,
            format!(
                "dead end: an instance started by `{}` can stop without a terminal event: {path}",
                start.name.text
            ),
        )
        .with_primary_message(label)
        .with_label(
            start.name.span,
            "instances started by this command can end without an outcome",
        )
        .with_help(help),
    );
}

/// Extends a path past a message from which no terminal event is
/// reachable, following the first reaction that emits something each time;
/// returns whether the walk came back to a message already on the path.
fn extend_without_way_out(
    runs: &Runs<'_>,
    run: &CommandRun,
    steps: &mut Vec<(MessageId, Option<ReactionId>)>,
) -> bool {
    let spec = runs.spec;
    loop {
        let Some(&(at, _)) = steps.last() else {
            return false;
        };
        let Some(&i) = run.local.get(&at) else {
            return false;
        };
        let next = run.obligations[i].iter().find_map(|&rid| {
            spec.reaction(rid)
                .outcomes()
                .iter()
                .find_map(|o| o.ids().next())
                .map(|e| (e, rid))
        });
        let Some((e, rid)) = next else { return false };
        let looped = steps.iter().any(|(m, _)| *m == e);
        steps.push((e, Some(rid)));
        if looped {
            return true;
        }
    }
}
