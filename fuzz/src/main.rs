//! `choreo-fuzz`, the fuzz targets' command line:
//!
//! - `choreo-fuzz TARGET`, built with the `afl` feature by `cargo afl
//!   build`: the AFL++ entry point of a target (`check`, `generate` or
//!   `diagram`), fed by `afl-fuzz`;
//! - `choreo-fuzz TARGET FILE...`: replays files (crashes `afl-fuzz`
//!   found, say) through the target, prints the panic of each file that
//!   crashes it and exits with 1 if any did;
//! - `choreo-fuzz seeds ROOT DIR`: copies the seed corpus of the
//!   repository at ROOT into DIR, one flat file per spec.

use choreo_fuzz::{Outcome, Target};
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str =
    "usage: choreo-fuzz check|generate|diagram [FILE...]\n       choreo-fuzz seeds ROOT DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [seeds, root, dir] if seeds == "seeds" => copy_seeds(Path::new(root), Path::new(dir)),
        [target, files @ ..] => match target.parse::<Target>() {
            Ok(target) if files.is_empty() => fuzz(target),
            Ok(target) => replay(target, files),
            Err(message) => usage(&message),
        },
        [] => usage("no target given"),
    }
}

fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message}\n{USAGE}");
    ExitCode::from(2)
}

#[cfg(feature = "afl")]
fn fuzz(target: Target) -> ExitCode {
    afl::fuzz!(|data: &[u8]| {
        target.run(data);
    });
    ExitCode::SUCCESS
}

#[cfg(not(feature = "afl"))]
fn fuzz(_: Target) -> ExitCode {
    usage("no file to replay (fuzzing needs `cargo afl build --features afl`)")
}

fn replay(target: Target, files: &[String]) -> ExitCode {
    let (mut crashed, mut accepted) = (0, 0);
    for path in files {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => {
                eprintln!("error: cannot read `{path}`: {err}");
                return ExitCode::from(2);
            }
        };
        // The panic hook has printed the message and where it was raised
        // (under AFL++'s hook, the process has aborted).
        match std::panic::catch_unwind(|| target.run(&bytes)) {
            Ok(Outcome::Accepted) => accepted += 1,
            Ok(Outcome::Rejected) => {}
            Err(_) => {
                eprintln!("crash: {target} panicked on `{path}`");
                crashed += 1;
            }
        }
    }
    if crashed > 0 {
        eprintln!("{crashed} of {} files crashed {target}", files.len());
        ExitCode::FAILURE
    } else {
        eprintln!(
            "{} files: no crash in {target} ({accepted} checked clean)",
            files.len()
        );
        ExitCode::SUCCESS
    }
}

fn copy_seeds(root: &Path, dir: &Path) -> ExitCode {
    let copied = choreo_fuzz::seed_files(root).and_then(|files| {
        std::fs::create_dir_all(dir)?;
        for file in &files {
            // `tests/cases/valid/x.choreo` becomes `tests_cases_valid_x.choreo`.
            let relative = file.strip_prefix(root).unwrap_or(file);
            let name = relative.to_string_lossy().replace(['/', '\\'], "_");
            std::fs::copy(file, dir.join(name))?;
        }
        Ok(files.len())
    });
    match copied {
        Ok(n) => {
            eprintln!("{n} seeds in `{}`", dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "error: cannot copy the seeds into `{}`: {err}",
                dir.display()
            );
            ExitCode::from(2)
        }
    }
}
