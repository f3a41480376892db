//! Build-script support, in the manner of tonic-build: generate a spec's
//! module into `OUT_DIR` from `build.rs`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), choreo_compiler::builder::BuildError> {
//!     choreo_compiler::builder::compile("specs/shop.choreo")
//! }
//! ```
//!
//! ```ignore
//! // src/lib.rs
//! include!(concat!(env!("OUT_DIR"), "/shop.rs")); // defines `pub mod shop`
//! ```

use crate::diagnostic::render::{render_text, ColorMode};
use crate::{Diagnostic, Severity, SourceFile};
use std::fmt;
use std::path::{Path, PathBuf};

/// A spec that does not check, or a file that cannot be read or written.
/// Its `Debug` form is the readable message too, because cargo prints the
/// error a build script's `main` returns with `{:?}`.
pub struct BuildError {
    message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

/// Generates the module of `spec` into `OUT_DIR`; see [`Builder`].
pub fn compile(spec: impl AsRef<Path>) -> Result<(), BuildError> {
    Builder::new().compile(spec).map(|_| ())
}

/// Options of a build-script generation.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    out_dir: Option<PathBuf>,
    options: crate::codegen::Options,
}

impl Builder {
    /// Defaults: write to `OUT_DIR`.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Also generates the HTTP ingress of the `@http` commands (`pub mod
    /// http` in the module; needs choreo-runtime's `http` feature).
    pub fn http(mut self, enabled: bool) -> Self {
        self.options.http = enabled;
        self
    }

    /// Writes somewhere else than `OUT_DIR`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Checks `spec` and writes `<module>.rs` (the module named after the
    /// choreography in snake_case); returns the written path. Prints
    /// `cargo:rerun-if-changed` for the spec and a `cargo:warning` per
    /// warning; errors fail the build with the rendered diagnostics.
    pub fn compile(&self, spec: impl AsRef<Path>) -> Result<PathBuf, BuildError> {
        let spec = spec.as_ref();
        println!("cargo:rerun-if-changed={}", spec.display());
        let bytes = std::fs::read(spec).map_err(|e| BuildError {
            message: format!("cannot read the choreo spec `{}`: {e}", spec.display()),
        })?;
        let (file, report) = crate::check_bytes(&spec.display().to_string(), bytes);
        for d in &report.diagnostics {
            if d.severity == Severity::Warning {
                println!(
                    "cargo:warning={}: {}[{}]: {}",
                    spec.display(),
                    d.severity.as_str(),
                    d.code,
                    d.message
                );
            }
        }
        let diagnostics = report.diagnostics.clone();
        let checked = match report.into_checked() {
            Ok((checked, _)) => checked,
            Err(_) => {
                return Err(BuildError {
                    message: errors_message(&file, &diagnostics),
                });
            }
        };
        let dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or_else(|| BuildError {
                message: "OUT_DIR is not set: call choreo_compiler::builder from a build script, or set Builder::out_dir".into(),
            })?,
        };
        let name = crate::codegen::module_name(&checked);
        let path = dir.join(format!("{}.rs", name.trim_start_matches("r#")));
        std::fs::write(&path, crate::codegen::source_with(&checked, self.options)).map_err(
            |e| BuildError {
                message: format!("cannot write `{}`: {e}", path.display()),
            },
        )?;
        Ok(path)
    }
}

/// How a spec with errors fails a build (here and in `choreo!`): a headline
/// naming the file and counting the errors, then every diagnostic as
/// `choreoc check` prints it, without colour.
pub(crate) fn errors_message(file: &SourceFile, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    format!(
        "the choreo spec `{}` has {errors} error{}:\n\n{}",
        file.name(),
        if errors == 1 { "" } else { "s" },
        render_text(file, diagnostics, ColorMode::Never)
    )
}
