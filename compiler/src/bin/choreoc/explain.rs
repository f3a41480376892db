//! `choreoc explain`.

use crate::status;
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
            let known: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
            say!(
                "error: `{}` is not a choreo diagnostic code\n\nthe codes are: {}",
                args.code,
                known.join(", ")
            );
            status::FAILURE
        }
    }
}
