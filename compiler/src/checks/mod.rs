//! The checks of the design's table that look at the model as a whole:
//! recursion (E0104), the flow checks (E0200–W0207) and the conventions
//! (W0300–W0302). Name resolution (E0100–E0107) happens while the model is
//! built.

mod compensation;
mod cycle_path;
mod cycles;
mod dead_ends;
mod dominance;
mod handling;
mod joins;
mod naming;
mod reach;
mod recursion;
mod runs;
mod usage;

use crate::diagnostic::Diagnostic;

/// Specs with at least this many commands are checked on two threads.
const PARALLEL_FROM_COMMANDS: usize = 256;
use crate::model::Spec;

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
    let declarations = |diags: &mut Vec<Diagnostic>| {
        naming::check(spec, diags);
        let referenced = usage::check(spec, declarations_ok, diags);
        recursion::check(spec, diags);
        referenced
    };
    if !declarations_ok {
        let mut diags = Vec::new();
        declarations(&mut diags);
        return diags;
    }
    // The join analysis is the longest check, and the checks before it
    // need none of its results: on a large spec they run on another thread
    // meanwhile.
    let independent = || {
        let mut diags = Vec::new();
        let referenced = declarations(&mut diags);
        cycles::check(spec, &mut diags);
        handling::check(spec, &mut diags);
        let compensations = compensation::Compensations::new(spec);
        (diags, referenced, compensations)
    };
    // The run facts come from the last round of the join analysis, which
    // judged with exactly the joins that can fire.
    let ((mut diags, referenced, compensations), (verdicts, runs)) = if parallel {
        std::thread::scope(|scope| {
            let other = scope.spawn(independent);
            let feasibility = joins::feasibility(spec);
            (join(other), feasibility)
        })
    } else {
        (independent(), joins::feasibility(spec))
    };
    joins::check(spec, &verdicts, &mut diags);
    reach::check(spec, &verdicts, &referenced, &mut diags);
    // Each command's run is analysed on its own: on a large spec, half of
    // them on another thread.
    let commands: Vec<_> = spec.commands().collect();
    let analyse = |commands: &[crate::model::MessageId]| {
        let mut dead_ends = Vec::new();
        let mut uncompensated = Vec::new();
        for &c in commands {
            let run = runs.command_run(c);
            dead_ends::check(&runs, &run, &mut dead_ends);
            compensations.failing_in(&runs, &run, &mut uncompensated);
        }
        (dead_ends, uncompensated)
    };
    let (dead_ends, uncompensated) = if parallel {
        let (first, second) = commands.split_at(commands.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| analyse(second));
            let (mut dead_a, mut uncompensated_a) = analyse(first);
            let (dead_b, uncompensated_b) = join(other);
            dead_a.extend(dead_b);
            uncompensated_a.extend(uncompensated_b);
            (dead_a, uncompensated_a)
        })
    } else {
        analyse(&commands)
    };
    diags.extend(dead_ends);
    compensation::check_order(&runs, &mut diags);
    compensation::report_missing(&runs, &compensations, uncompensated, &mut diags);
    diags
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
    }
}
