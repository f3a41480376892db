//! The ecommerce example. Until the runtime and the code generator land,
//! it checks its spec and shows what the choreography holds.

use choreo_compiler::render::{render_text, ColorMode};
use choreo_compiler::{check, SourceFile};
use std::process::ExitCode;

const SPEC: &str = include_str!("../ecommerce.choreo");

fn main() -> ExitCode {
    let file = SourceFile::new("examples/ecommerce/ecommerce.choreo", SPEC);
    let report = check(&file);
    eprint!(
        "{}",
        render_text(&file, &report.diagnostics, ColorMode::Never)
    );
    let Ok((spec, _)) = report.into_checked() else {
        return ExitCode::FAILURE;
    };
    println!(
        "choreography {}: {} commands, {} events, {} participants, {} reactions; checks clean",
        spec.name.text,
        spec.commands().count(),
        spec.events().count(),
        spec.participants.len(),
        spec.reactions.len()
    );
    for p in &spec.participants {
        println!("  {}: {} reactions", p.name.text, p.reactions.len());
    }
    ExitCode::SUCCESS
}
