//! The choreo compiler: parses `.choreo` specs, checks them and derives code,
//! diagrams and exports.
//!
//! The pipeline runs one way: [`syntax`] (text to AST) → [`model`] (names
//! bound, types resolved, flow graph built) → [`checks`] (the flow and
//! convention analyses) → back ends. The library never prints: it returns
//! structured [`Diagnostic`]s, which front ends render with [`diagnostic::render`].
//!
//! ```
//! use choreo_compiler::{check, SourceFile};
//!
//! let file = SourceFile::new("shop.choreo", "choreography Shop { key id: uuid }");
//! let report = check(&file);
//! assert!(report.has_errors()); // E0107: no command
//! ```

// The parser pest derives without its `std` feature (see the workspace
// manifest) names `::alloc`.
extern crate alloc;

mod analysis;
pub mod builder;
/// The build-script support's former path.
#[deprecated(note = "renamed `choreo_compiler::builder`")]
pub mod build {
    pub use crate::builder::*;
}
pub mod checks;
pub mod codegen;
pub mod diagnostic;
pub mod diagram;
pub mod evolution;
pub mod explain;
pub mod export;
pub mod format;
mod lists;
pub mod macro_support;
pub mod model;
pub mod output;
/// The diagnostic renderer's former path.
#[deprecated(
    since = "0.2.0",
    note = "moved to `choreo_compiler::diagnostic::render`"
)]
pub mod render {
    pub use crate::diagnostic::render::*;
}
pub mod scaffold;
pub mod source;
mod suggest;
pub mod syntax;
#[doc(hidden)]
pub mod testing;

pub use diagnostic::{Code, Diagnostic, Severity};
pub use model::CheckedSpec;
pub use source::{SourceFile, Span};

/// The outcome of checking one file.
#[derive(Debug)]
pub struct Report {
    /// Every diagnostic, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// The model, when the file parsed (it may still have errors).
    pub spec: Option<model::Spec>,
}

impl Report {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The number of errors and of warnings.
    pub fn counts(&self) -> (usize, usize) {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        (errors, self.diagnostics.len() - errors)
    }

    /// The checked spec for the back ends, with the warnings; or every
    /// diagnostic when there is an error.
    pub fn into_checked(self) -> Result<(CheckedSpec, Vec<Diagnostic>), Vec<Diagnostic>> {
        if self.has_errors() {
            return Err(self.diagnostics);
        }
        match self.spec.and_then(CheckedSpec::new) {
            Some(spec) => Ok((spec, self.diagnostics)),
            None => Err(self.diagnostics),
        }
    }
}

/// Checks a file given as raw bytes, as read from disk: text that is not
/// UTF-8 is an E0001 at the first invalid byte (the returned file holds the
/// text with invalid bytes replaced, so the diagnostic can be shown).
pub fn check_bytes(name: &str, bytes: Vec<u8>) -> (SourceFile, Report) {
    match String::from_utf8(bytes) {
        Ok(text) => {
            let file = SourceFile::new(name, text);
            let report = check(&file);
            (file, report)
        }
        Err(err) => {
            let at = err.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
            // The lossy text replaces the bad bytes with U+FFFD at the same
            // starting offset, so `at` still points at the first of them.
            let replacement_len = '\u{fffd}'.len_utf8();
            let file = SourceFile::new(name, text);
            let diagnostic = Diagnostic::new(
                Code::E0001,
                Span::new(at, at + replacement_len),
                "the file is not valid UTF-8",
            )
            .with_primary_message("invalid byte here")
            .with_help("specs are UTF-8 text; check the file's encoding");
            let report = Report {
                diagnostics: vec![diagnostic],
                spec: None,
            };
            (file, report)
        }
    }
}

/// Parses, resolves and checks one file.
pub fn check(file: &SourceFile) -> Report {
    let ast = match syntax::parse(file) {
        Ok(ast) => ast,
        Err(diagnostics) => {
            return Report {
                diagnostics,
                spec: None,
            }
        }
    };
    let (spec, mut diagnostics) = model::build(&ast);
    // The syntax tree is not needed any more; freeing a large one takes a
    // while, which another thread can spend while the checks run.
    if file.text().len() >= 256 * 1024 {
        std::thread::spawn(move || drop(ast));
    } else {
        drop(ast);
    }
    let declarations_ok = !diagnostics.iter().any(Diagnostic::is_error);
    diagnostics.extend(checks::run(&spec, declarations_ok));
    diagnostic::sort(&mut diagnostics);
    Report {
        diagnostics,
        spec: Some(spec),
    }
}
