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

/// Specs with at least this many commands analyse their runs on two threads.
const PARALLEL_FROM_COMMANDS: usize = 256;
use crate::model::Spec;

/// Runs every check on a model.
///
/// `declarations_ok` says whether building the model found no error; the
/// flow checks run only then, because a flow graph with a name missing or
/// defined twice would report the consequences of that one mistake again
/// as cycles, dead ends and unreachable events.
pub fn run(spec: &Spec, declarations_ok: bool) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    naming::check(spec, &mut diags);
    let referenced = usage::check(spec, declarations_ok, &mut diags);
    recursion::check(spec, &mut diags);
    if !declarations_ok {
        return diags;
    }
    cycles::check(spec, &mut diags);
    handling::check(spec, &mut diags);
    // The run facts come from the last round of the join analysis, which
    // judged with exactly the joins that can fire.
    let (verdicts, runs) = joins::feasibility(spec);
    joins::check(spec, &verdicts, &mut diags);
    reach::check(spec, &verdicts, &referenced, &mut diags);
    let commands: Vec<_> = spec.commands().collect();
    let compensations = compensation::Compensations::new(spec);
    // Each command's run is analysed on its own: on a large spec, half of
    // them on another thread.
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
    let (dead_ends, uncompensated) = if commands.len() >= PARALLEL_FROM_COMMANDS {
        let (first, second) = commands.split_at(commands.len() / 2);
        std::thread::scope(|scope| {
            let other = scope.spawn(|| analyse(second));
            let (mut dead_a, mut uncompensated_a) = analyse(first);
            let (dead_b, uncompensated_b) = match other.join() {
                Ok(done) => done,
                // A panic there is a bug: let it surface as one here.
                Err(panic) => std::panic::resume_unwind(panic),
            };
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
