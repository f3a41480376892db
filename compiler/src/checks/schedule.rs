//! Runs the checks of [`CHECKS`] in the order their needs allow: the ones
//! that need the model alone first, on a large spec on another thread while
//! the join analysis is computed; then the ones that need the join analysis;
//! then the ones that judge each command's run, on a large spec half of the
//! commands on another thread.

use super::{Facts, Findings, Joined, Judge, Needs, Report, Run, CHECKS};
use crate::analysis::compensations::Compensations;
use crate::analysis::joins::feasibility;
use crate::analysis::references::References;
use crate::diagnostic::Diagnostic;
use crate::model::{MessageId, Spec};

/// Specs with at least this many commands are checked on two threads.
const PARALLEL_FROM_COMMANDS: usize = 256;

/// Runs every check on a model.
///
/// `declarations_ok` says whether building the model found no error; the
/// flow checks run only then, because a flow graph with a name missing or
/// defined twice would report the consequences of that one mistake again
/// as cycles, dead ends and unreachable events.
pub fn run(spec: &Spec, declarations_ok: bool) -> Vec<Diagnostic> {
    let parallel = spec.commands().nth(PARALLEL_FROM_COMMANDS - 1).is_some();
    run_on(spec, declarations_ok, parallel)
}

/// [`run`], on two threads when `parallel`, with the same result either way.
fn run_on(spec: &Spec, declarations_ok: bool, parallel: bool) -> Vec<Diagnostic> {
    // Per row, its diagnostics; concatenated in the table's order at the
    // end, so the order does not depend on which thread ran what.
    let mut found: Vec<Vec<Diagnostic>> = CHECKS.iter().map(|_| Vec::new()).collect();
    let early = |found: &mut [Vec<Diagnostic>]| {
        let references = References::new(spec);
        let facts = Facts {
            spec,
            declarations_ok,
            references: &references,
        };
        for (check, diags) in CHECKS.iter().zip(found.iter_mut()) {
            match check.run {
                Run::Model(f) => f(&facts, diags),
                Run::Flow(f) if declarations_ok => f(&facts, diags),
                _ => {}
            }
        }
        references
    };
    let later = CHECKS.iter().any(|c| c.needs() >= Needs::Joins);
    if !declarations_ok || !later {
        early(&mut found);
        return found.into_iter().flatten().collect();
    }
    // The join analysis is the longest analysis, and the checks that need
    // only the model need none of its results: on a large spec they run on
    // another thread meanwhile.
    let independent = |found: &mut [Vec<Diagnostic>]| (early(found), Compensations::new(spec));
    let ((references, compensations), (verdicts, runs)) = if parallel {
        std::thread::scope(|scope| {
            let other = scope.spawn(|| independent(&mut found));
            let joins = feasibility(spec);
            (join(other), joins)
        })
    } else {
        (independent(&mut found), feasibility(spec))
    };
    let joined = Joined {
        verdicts: &verdicts,
        runs: &runs,
        references: &references,
        compensations: &compensations,
    };
    for (check, diags) in CHECKS.iter().zip(found.iter_mut()) {
        if let Run::Joins(f) = check.run {
            f(&joined, diags);
        }
    }
    judge_each_run(&joined, spec, parallel, &mut found);
    found.into_iter().flatten().collect()
}

/// Runs the checks that judge each command's run. Each run is built once
/// and judged by all of them while it is in cache; on a large spec, half of
/// the commands on another thread.
fn judge_each_run(joined: &Joined<'_>, spec: &Spec, parallel: bool, found: &mut [Vec<Diagnostic>]) {
    let each: Vec<(usize, Judge, Report)> = CHECKS
        .iter()
        .enumerate()
        .filter_map(|(i, check)| match check.run {
            Run::EachCommand(judge, report) => Some((i, judge, report)),
            _ => None,
        })
        .collect();
    if each.is_empty() {
        return;
    }
    let commands: Vec<MessageId> = spec.commands().collect();
    let judge_all = |commands: &[MessageId]| {
        let mut findings: Vec<Findings> = each.iter().map(|_| Findings::default()).collect();
        for &c in commands {
            let run = joined.runs.command_run(c);
            for (&(_, judge, _), found) in each.iter().zip(findings.iter_mut()) {
                judge(joined, &run, found);
            }
        }
        findings
    };
    let findings = if parallel {
        let (first, second) = commands.split_at(commands.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| judge_all(second));
            let mut findings = judge_all(first);
            for (a, b) in findings.iter_mut().zip(join(other)) {
                a.extend(b);
            }
            findings
        })
    } else {
        judge_all(&commands)
    };
    for (&(i, _, report), judged) in each.iter().zip(findings) {
        report(joined, judged, &mut found[i]);
    }
}

/// What a scoped thread returned. A panic there is a bug: it surfaces as
/// one here.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    match thread.join() {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{reporting, Check};
    use crate::{model, syntax, SourceFile};
    use std::fmt::Write as _;

    /// A large spec with a finding of most kinds in every unit is reported
    /// the same, in the same order, on one thread as on two.
    #[test]
    fn two_threads_find_what_one_finds() {
        let mut text = String::from("choreography Many {\n    key id: uuid\n");
        for k in 0..(PARALLEL_FROM_COMMANDS + 10) {
            let _ = write!(
                text,
                "
    command Start{k} {{ }}
    event Looped{k} {{ }}
    event Back{k} {{ }}
    event Stuck{k} {{ }}
    event Never{k} {{ }}
    event Other{k} {{ }}
    @terminal event Done{k} {{ }}
    event gone_{k} {{ }}
    participant P{k} {{
        on Start{k} -> Looped{k} | Stuck{k} | Other{k}
        on Looped{k} -> Back{k}
        on Back{k} -> Looped{k} | Done{k}
        on Never{k} & Stuck{k} -> Done{k}
        on Other{k} -> gone_{k} compensates Done{k}
    }}
"
            );
        }
        text.push_str("}\n");
        let file = SourceFile::new("many.choreo", text);
        let ast = syntax::parse(&file).expect("the spec parses");
        let (spec, declared) = model::build(&ast);
        assert!(declared.iter().all(|d| !d.is_error()), "{declared:?}");
        let one = run_on(&spec, true, false);
        let two = run_on(&spec, true, true);
        let codes: std::collections::BTreeSet<_> = one.iter().map(|d| d.code).collect();
        assert!(codes.len() >= 5, "too few kinds of finding: {codes:?}");
        assert_eq!(one, two);
        // Each finding's code is in the row of a check the scheduler ran.
        for d in &one {
            let check = reporting(d.code).map(Check::needs);
            assert!(check.is_some_and(|needs| needs != Needs::Building), "{d:?}");
        }
    }
}
