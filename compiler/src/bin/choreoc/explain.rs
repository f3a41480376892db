//! `choreoc explain`.

use crate::status;
use choreo_compiler::checks::CHECKS;
use choreo_compiler::evolution::Rule;

/// Explain a diagnostic code at length, with a spec that triggers it and
/// the same spec fixed; or a rule of `choreoc diff`, with a spec before and
/// after the change it finds.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code, e.g. `E0204`, or the rule id, e.g. `FIELD_REMOVED` (case
    /// does not matter).
    #[arg(value_name = "CODE")]
    code: String,
}

pub fn run(args: Args) -> u8 {
    match choreo_compiler::explain::lookup(&args.code) {
        Ok(text) => {
            out!("{text}");
            status::OK
        }
        Err(closest) => {
            let hint = closest
                .map(|id| format!("\nhelp: did you mean `{id}`?\n"))
                .unwrap_or_default();
            say!(
                "error: `{}` is not a choreo diagnostic code nor a `choreoc diff` rule\n{hint}\nthe codes, by the check that reports them:\n{}\n\nthe rules of `choreoc diff`:\n{}",
                args.code,
                codes_by_check(),
                diff_rules()
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

/// One line per rule of `choreoc diff`: its id, level and summary.
fn diff_rules() -> String {
    let width = Rule::ALL
        .iter()
        .map(|r| r.as_str().len())
        .max()
        .unwrap_or(0);
    Rule::ALL
        .iter()
        .map(|rule| {
            format!(
                "  {:width$}  {:8}  {}",
                rule.as_str(),
                rule.level().as_str(),
                rule.summary()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
