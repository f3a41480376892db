//! Machine-readable diagnostics: one JSON object per line, in the form the
//! design fixes. Lines and columns are 1-based; columns count characters;
//! `end_column` is one past the last character, like rustc's `column_end`.

use crate::diagnostic::Diagnostic;
use crate::source::{SourceFile, Span};
use serde::Serialize;

/// A secondary span of a [`JsonDiagnostic`].
#[derive(Debug, Clone, Serialize)]
pub struct JsonLabel {
    /// What is there.
    pub message: String,
    /// The file.
    pub file: String,
    /// First line.
    pub line: usize,
    /// First column.
    pub column: usize,
    /// Last line.
    pub end_line: usize,
    /// Column one past the end.
    pub end_column: usize,
}

/// One diagnostic as serialized.
#[derive(Debug, Clone, Serialize)]
pub struct JsonDiagnostic {
    /// e.g. `"E0200"`.
    pub code: String,
    /// `"error"` or `"warning"`.
    pub severity: String,
    /// The headline.
    pub message: String,
    /// The file.
    pub file: String,
    /// First line of the primary span.
    pub line: usize,
    /// First column of the primary span.
    pub column: usize,
    /// Last line of the primary span.
    pub end_line: usize,
    /// Column one past the end of the primary span.
    pub end_column: usize,
    /// The message under the primary span.
    pub label: String,
    /// Secondary spans.
    pub labels: Vec<JsonLabel>,
    /// What to do, if anything.
    pub help: Option<String>,
    /// Further notes.
    pub notes: Vec<String>,
}

impl JsonDiagnostic {
    /// Resolves a diagnostic's spans against its file.
    pub fn new(file: &SourceFile, d: &Diagnostic) -> Self {
        let (line, column, end_line, end_column) = position(file, d.primary.span);
        JsonDiagnostic {
            code: d.code.as_str().to_string(),
            severity: d.severity.as_str().to_string(),
            message: d.message.clone(),
            file: file.name().to_string(),
            line,
            column,
            end_line,
            end_column,
            label: d.primary.message.clone(),
            labels: d
                .labels
                .iter()
                .map(|l| {
                    let (line, column, end_line, end_column) = position(file, l.span);
                    JsonLabel {
                        message: l.message.clone(),
                        file: file.name().to_string(),
                        line,
                        column,
                        end_line,
                        end_column,
                    }
                })
                .collect(),
            help: d.help.clone(),
            notes: d.notes.clone(),
        }
    }
}

fn position(file: &SourceFile, span: Span) -> (usize, usize, usize, usize) {
    let start = file.line_col(span.start());
    let end = file.line_col(span.end().max(span.start()));
    (start.line, start.column, end.line, end.column)
}

/// One diagnostic as a single JSON line (no trailing newline).
pub fn json_line(file: &SourceFile, d: &Diagnostic) -> String {
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&JsonDiagnostic::new(file, d)).unwrap_or_default()
}
