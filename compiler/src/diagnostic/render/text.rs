//! rustc-style text: code, message, the source line with carets, labels
//! and `help:`.

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::SourceFile;
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

/// Whether to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// ANSI colours.
    Always,
    /// Plain text.
    Never,
}

/// Renders diagnostics of one file as text, as rustc would show them.
pub fn render_text(file: &SourceFile, diagnostics: &[Diagnostic], color: ColorMode) -> String {
    let files = SimpleFile::new(file.name(), file.text());
    let config = term::Config::default();
    let mut buffer = match color {
        ColorMode::Always => termcolor::Buffer::ansi(),
        ColorMode::Never => termcolor::Buffer::no_color(),
    };
    for d in diagnostics {
        let rendered = to_codespan(file, d);
        // Rendering into memory fails only on a span outside the file, which
        // the clamping in `to_codespan` rules out; fall back to a plain line.
        if term::emit(&mut buffer, &config, &files, &rendered).is_err() {
            let line = format!("{}[{}]: {}\n", d.severity.as_str(), d.code, d.message);
            // Writing to an in-memory buffer cannot fail.
            let _ = std::io::Write::write_all(&mut buffer, line.as_bytes());
        }
    }
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

fn clamp(file: &SourceFile, span: crate::Span) -> std::ops::Range<usize> {
    let len = file.text().len();
    let mut start = span.start().min(len);
    let mut end = span.end().clamp(start, len);
    while start > 0 && !file.text().is_char_boundary(start) {
        start -= 1;
    }
    while end < len && !file.text().is_char_boundary(end) {
        end += 1;
    }
    start..end
}

fn to_codespan(file: &SourceFile, d: &Diagnostic) -> cs::Diagnostic<()> {
    let base = match d.severity {
        Severity::Error => cs::Diagnostic::error(),
        Severity::Warning => cs::Diagnostic::warning(),
    };
    let mut labels =
        vec![cs::Label::primary((), clamp(file, d.primary.span)).with_message(&d.primary.message)];
    labels.extend(
        d.labels
            .iter()
            .map(|l| cs::Label::secondary((), clamp(file, l.span)).with_message(&l.message)),
    );
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    base.with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}
