//! Findings for people (rustc-style text, pointing into both specs) and
//! for tools (one JSON object, described in docs/evolution.md).

use choreo_compiler::diagnostic::render::ColorMode;
use choreo_compiler::evolution::{Comparison, Finding, Level, Side};
use choreo_compiler::{SourceFile, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use serde::Serialize;

/// The JSON format's version: raised when a field changes meaning or goes.
const JSON_FORMAT: u32 = 1;

/// The findings as text, each with the old and the new spec's lines, then
/// a summary and where to learn more.
pub fn text(old: &SourceFile, new: &SourceFile, c: &Comparison, color: ColorMode) -> String {
    let mut files = SimpleFiles::new();
    let ids = (
        files.add(old.name(), old.text()),
        files.add(new.name(), new.text()),
    );
    let config = term::Config::default();
    let mut buffer = match color {
        ColorMode::Always => termcolor::Buffer::ansi(),
        ColorMode::Never => termcolor::Buffer::no_color(),
    };
    for finding in &c.findings {
        let rendered = to_codespan(finding, ids, c);
        // Spans come from the specs they point into; rendering fails only
        // on one outside its file, which would be a bug: say it plainly.
        if term::emit(&mut buffer, &config, &files, &rendered).is_err() {
            let line = format!(
                "{}[{}]: {}\n",
                severity(finding).1,
                finding.rule,
                finding.message
            );
            let _ = std::io::Write::write_all(&mut buffer, line.as_bytes());
        }
    }
    let mut out = String::from_utf8_lossy(buffer.as_slice()).into_owned();
    out.push_str(&summary(old, new, c));
    out
}

/// How a finding is headed: an error fails the comparison, a warning is
/// a breaking change that a move of the wire types allows.
fn severity(f: &Finding) -> (cs::Severity, &'static str) {
    match (f.level(), f.allowed) {
        (Level::Breaking, false) => (cs::Severity::Error, "error"),
        (Level::Breaking, true) => (cs::Severity::Warning, "warning"),
        (Level::Safe, _) => (cs::Severity::Note, "note"),
    }
}

fn to_codespan(f: &Finding, (old, new): (usize, usize), c: &Comparison) -> cs::Diagnostic<usize> {
    let base = cs::Diagnostic::new(severity(f).0);
    // The new spec is what the reader is changing: its side is primary
    // when there is one. The old side is shown first, as it came first.
    let mut labels = Vec::new();
    if let Some(span) = f.old {
        let label = if f.new.is_some() {
            cs::Label::secondary(old, span.range())
        } else {
            cs::Label::primary(old, span.range())
        };
        labels.push(label.with_message("old"));
    }
    if let Some(span) = f.new {
        labels.push(cs::Label::primary(new, span.range()).with_message("new"));
    }
    let mut notes = vec![format!("{}: {}", f.level(), f.rule.summary())];
    if !f.affects.is_empty() {
        notes.push(format!("affects {}", affected(&f.affects)));
    }
    if f.allowed {
        notes.push(format!(
            "allowed: every wire type moves from `{}*` to `{}*`, so old and new services share no event",
            c.old.wire_prefix, c.new.wire_prefix
        ));
    }
    if let Some(help) = &f.help {
        notes.push(format!("help: {help}"));
    }
    base.with_code(f.rule.as_str())
        .with_message(&f.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// Messages named in a note at most; a record that every unit of a large
/// spec reaches would otherwise make one note of thousands of names (the
/// JSON lists them all).
const AFFECTS_SHOWN: usize = 8;

/// "`A`, `B`", or "`A`, …, `H` and 12 more".
fn affected(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(AFFECTS_SHOWN)
        .map(|a| format!("`{a}`"))
        .collect();
    let rest = names.len().saturating_sub(AFFECTS_SHOWN);
    if rest == 0 {
        shown.join(", ")
    } else {
        format!("{} and {rest} more", shown.join(", "))
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}")
}

/// The closing lines: the counts, and which command explains the rules.
fn summary(old: &SourceFile, new: &SourceFile, c: &Comparison) -> String {
    let (breaking, allowed, safe) = c.counts();
    let files = format!("`{}` to `{}`", old.name(), new.name());
    let mut out = if c.findings.is_empty() {
        format!("compared {files}: no change on the wire\n")
    } else if c.fails() {
        format!(
            "error: compared {files}: {}, {}: a rolling deployment would break\n",
            count(breaking, "breaking"),
            count(safe, "safe")
        )
    } else if allowed > 0 {
        format!(
            "compared {files}: {} (allowed by the move to `{}*`), {}\n",
            count(breaking, "breaking"),
            c.new.wire_prefix,
            count(safe, "safe")
        )
    } else {
        format!("compared {files}: {}\n", count(safe, "safe"))
    };
    if let Some(first) = c.findings.iter().find(|f| f.fails()).or(c.findings.first()) {
        out.push_str(&format!(
            "for more information about a rule, try `choreoc explain {}`.\n",
            first.rule
        ));
    }
    out
}

/// A span resolved against its file: 1-based lines and columns (columns
/// count characters, `end_column` is one past the end), and the byte range.
#[derive(Debug, Serialize)]
struct JsonSpan {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    start: usize,
    end: usize,
}

impl JsonSpan {
    fn new(file: &SourceFile, span: Span) -> Self {
        let (start, end) = (file.line_col(span.start()), file.line_col(span.end()));
        JsonSpan {
            file: file.name().to_string(),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            start: span.start(),
            end: span.end(),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonFinding<'a> {
    rule: &'static str,
    level: &'static str,
    allowed: bool,
    message: &'a str,
    old: Option<JsonSpan>,
    new: Option<JsonSpan>,
    affects: &'a [String],
    help: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct JsonSide {
    file: String,
    version: String,
    declared: bool,
    wire_prefix: String,
}

impl JsonSide {
    fn new(file: &SourceFile, side: &Side) -> Self {
        JsonSide {
            file: file.name().to_string(),
            version: side.version.to_string(),
            declared: side.declared,
            wire_prefix: side.wire_prefix.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonSummary {
    breaking: usize,
    allowed: usize,
    safe: usize,
    fails: bool,
}

#[derive(Debug, Serialize)]
struct JsonComparison<'a> {
    format: u32,
    old: JsonSide,
    new: JsonSide,
    moves_wire_types: bool,
    findings: Vec<JsonFinding<'a>>,
    summary: JsonSummary,
}

/// The comparison as one JSON object (pretty-printed).
pub fn json(old: &SourceFile, new: &SourceFile, c: &Comparison) -> String {
    let (breaking, allowed, safe) = c.counts();
    let findings = c
        .findings
        .iter()
        .map(|f| JsonFinding {
            rule: f.rule.as_str(),
            level: f.level().as_str(),
            allowed: f.allowed,
            message: &f.message,
            old: f.old.map(|s| JsonSpan::new(old, s)),
            new: f.new.map(|s| JsonSpan::new(new, s)),
            affects: &f.affects,
            help: f.help.as_deref(),
        })
        .collect();
    let value = JsonComparison {
        format: JSON_FORMAT,
        old: JsonSide::new(old, &c.old),
        new: JsonSide::new(new, &c.new),
        moves_wire_types: c.moves_wire_types(),
        findings,
        summary: JsonSummary {
            breaking,
            allowed,
            safe,
            fails: c.fails(),
        },
    };
    // Strings, integers and booleans always serialize.
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
