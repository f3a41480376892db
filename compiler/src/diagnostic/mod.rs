//! Structured diagnostics: what the library returns and front ends render.

pub mod render;

use crate::source::Span;
use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The spec is accepted; something deserves attention.
    Warning,
    /// The spec is rejected.
    Error,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $code:ident => $severity:ident, $summary:literal;)*) => {
        /// Every diagnostic code the compiler can report; stable across releases.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[$doc])* $code,)*
        }

        impl Code {
            /// All codes, in order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            /// The code as written, e.g. `"E0201"`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// The severity this code always has.
            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$severity,)* }
            }

            /// A one-line summary of what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$code => $summary,)* }
            }

            /// Its long explanation, `compiler/explanations/<code>.md`.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$code => include_str!(
                        concat!("../../explanations/", stringify!($code), ".md")
                    ),)*
                }
            }
        }
    };
}

codes! {
    /// Syntax error.
    E0001 => Error, "syntax error";
    /// Duplicate definition.
    E0100 => Error, "duplicate definition";
    /// Unknown name.
    E0101 => Error, "unknown name";
    /// Correlation key missing, repeated or shadowed by a field.
    E0102 => Error, "correlation key missing, declared twice or shadowed";
    /// Unknown or misplaced attribute, or bad attribute arguments.
    E0103 => Error, "unknown or misplaced attribute, or bad attribute arguments";
    /// A record that contains itself directly.
    E0104 => Error, "record type contains itself";
    /// A command handled by no participant or by several.
    E0105 => Error, "command not handled by exactly one participant";
    /// A literal of the wrong form.
    E0106 => Error, "literal of the wrong form";
    /// No command: nothing can start an instance.
    E0107 => Error, "choreography without a command";
    /// Unbounded cycle in the flow graph.
    E0200 => Error, "cycle in the flow graph";
    /// Event emitted but consumed by nobody.
    E0201 => Error, "unhandled event";
    /// Event consumed but produced by nobody.
    E0202 => Error, "event never produced";
    /// Unreachable event, command or reaction.
    E0203 => Warning, "unreachable";
    /// A way an instance can go that never reaches a terminal event.
    E0204 => Error, "dead end";
    /// A join that can never fire.
    E0205 => Error, "join can never fire";
    /// A compensation of something that cannot have happened before.
    E0206 => Error, "compensation before what it undoes";
    /// Failure outcome reachable without a compensation having run.
    W0207 => Warning, "failure without compensation";
    /// Naming convention not followed.
    W0300 => Warning, "naming convention";
    /// Declared and never used.
    W0301 => Warning, "unused declaration";
    /// Use of a deprecated item.
    W0302 => Warning, "use of deprecated item";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(())
    }
}

/// A span with an optional message, pointing into the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there (may be empty).
    pub message: String,
}

impl Label {
    /// A label with a message.
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Label {
            span,
            message: message.into(),
        }
    }
}

/// One finding about a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning (an error code is always an error).
    pub severity: Severity,
    /// The headline, lowercase, user input in backticks.
    pub message: String,
    /// The place the diagnostic is about.
    pub primary: Label,
    /// Other places that explain it.
    pub labels: Vec<Label>,
    /// What to do about it.
    pub help: Option<String>,
    /// Further facts, shown as `= note:` lines.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's own severity, pointing at `span`.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label::new(span, ""),
            labels: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// Sets the message under the primary caret.
    pub fn with_primary_message(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label::new(span, message));
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by position, then code, so output is deterministic.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.primary.span.start, a.primary.span.end, a.code, &a.message).cmp(&(
            b.primary.span.start,
            b.primary.span.end,
            b.code,
            &b.message,
        ))
    });
}
