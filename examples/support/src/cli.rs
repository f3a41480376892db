//! Running an example's command line from a function, so that another
//! program (the chaos harness) can run it as its own binary does.

use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

/// Parses `args` (the first is the program's name, as with
/// [`std::env::args_os`]) as `C`, then runs `run` on a multi-thread Tokio
/// runtime of its own and returns its exit code. Bad arguments are
/// printed as `C::parse` would print them, without ending the process
/// (help and version on standard output and 0, errors on standard error
/// and 2); a runtime that cannot start is exit code 2.
pub fn run<C, I, T, F>(args: I, run: impl FnOnce(C) -> F) -> ExitCode
where
    C: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
    F: Future<Output = ExitCode>,
{
    let cli = match C::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(cli))
}
