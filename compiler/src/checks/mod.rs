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
    let verdicts = joins::feasibility(spec);
    joins::check(spec, &verdicts, &mut diags);
    reach::check(spec, &verdicts, &referenced, &mut diags);
    let fires = verdicts
        .iter()
        .map(|v| {
            !matches!(
                v,
                Some(joins::Verdict::NeverOccurs(_) | joins::Verdict::Exclusive(..))
            )
        })
        .collect();
    let runs = runs::Runs::new(spec, fires);
    let command_runs: Vec<runs::CommandRun> =
        spec.commands().map(|c| runs.command_run(c)).collect();
    for run in &command_runs {
        dead_ends::check(&runs, run, &mut diags);
    }
    compensation::check_order(&runs, &mut diags);
    compensation::check_missing(&runs, &command_runs, &mut diags);
    diags
}
