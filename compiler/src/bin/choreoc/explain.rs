//! `choreoc explain`.

use crate::status;
use choreo_compiler::checks::CHECKS;
use choreo_compiler::Code;

/// Explain a diagnostic code at length, with a spec that triggers it and
/// the same spec fixed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code, e.g. `E0204` (case does not matter).
    #[arg(value_name = "CODE")]
    code: String,
}

pub fn run(args: Args) -> u8 {
    match args.code.parse::<Code>() {
        Ok(code) => {
            out!("{}", choreo_compiler::explain::explanation(code));
            status::OK
        }
        Err(()) => {
            say!(
                "error: `{}` is not a choreo diagnostic code\n\nthe codes, by the check that reports them:\n{}",
                args.code,
                codes_by_check()
            );
            status::FAILURE
        }
    }
}

/// One line per check of the compiler's table: its name and its codes.
fn codes_by_check() -> String {
    let width = CHECKS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    CHECKS
        .iter()
        .map(|check| {
            let codes: Vec<&str> = check.codes.iter().map(|c| c.as_str()).collect();
            format!("  {:width$}  {}", check.name, codes.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
