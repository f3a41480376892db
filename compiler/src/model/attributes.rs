//! Interpreting attributes: which are known, where each may stand, and what
//! its arguments mean. Every problem with an attribute is E0103; a value
//! of the wrong size (a zero or overflowing duration or count) is E0106,
//! except `@bounded(0)` and `@deadline(0)`, which the language's attribute
//! table names as E0103.

use super::{Deprecation, HttpMethod, Retry, Settlement};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use crate::suggest;
use crate::syntax::ast::{AttrArg, Attribute, DurationUnit, Literal, LiteralKind};
use std::time::Duration;

/// What an attribute list stands before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Choreography,
    Version,
    Key,
    Type,
    Enum,
    Command,
    Event,
    Participant,
    Field,
    Variant,
    Reaction,
    /// Before a closing brace or the end of the file: nothing.
    Nothing,
}

impl Target {
    fn describe(self) -> &'static str {
        match self {
            Target::Choreography => "a choreography",
            Target::Version => "`version`",
            Target::Key => "`key`",
            Target::Type => "a type",
            Target::Enum => "an enum",
            Target::Command => "a command",
            Target::Event => "an event",
            Target::Participant => "a participant",
            Target::Field => "a field",
            Target::Variant => "a variant",
            Target::Reaction => "a reaction",
            Target::Nothing => "nothing",
        }
    }
}

const KNOWN: &[(&str, &[Target], &str)] = &[
    ("terminal", &[Target::Event], "events"),
    ("external", &[Target::Event], "events"),
    ("retry", &[Target::Reaction], "reactions"),
    ("timeout", &[Target::Reaction], "reactions"),
    ("bounded", &[Target::Reaction], "reactions"),
    ("http", &[Target::Command], "commands"),
    ("deadline", &[Target::Command], "commands"),
    (
        "deprecated",
        &[
            Target::Type,
            Target::Enum,
            Target::Command,
            Target::Event,
            Target::Participant,
        ],
        "types, enums, commands, events and participants",
    ),
];

/// The attributes of one node, interpreted, boxed as the model keeps them.
#[derive(Debug, Default)]
pub(super) struct Attrs {
    pub terminal: Option<(Settlement, Span)>,
    pub external: Option<Span>,
    pub retry: Option<Box<Retry>>,
    pub timeout: Option<Box<(Duration, Span)>>,
    pub bounded: Option<Box<(u32, Span)>>,
    /// Method, raw path and span; the path is checked once the key is known.
    pub http: Option<(HttpMethod, String, Span, Span)>,
    pub deadline: Option<Box<(Duration, Span)>>,
    pub deprecated: Option<Box<Deprecation>>,
}

/// Interprets `attrs` standing before `target`.
pub(super) fn interpret(attrs: &[Attribute], target: Target, diags: &mut Vec<Diagnostic>) -> Attrs {
    let mut out = Attrs::default();
    if attrs.is_empty() {
        return out;
    }
    let mut seen: Vec<&Attribute> = Vec::new();
    for attr in attrs {
        let name = attr.name.name.as_str();
        let Some((_, allowed, where_ok)) = KNOWN.iter().find(|(n, _, _)| *n == name) else {
            let mut d = Diagnostic::new(
                Code::E0103,
                attr.name.span,
                format!("unknown attribute `@{name}`"),
            )
            .with_primary_message("not an attribute choreo knows");
            d = match suggest::closest(name, KNOWN.iter().map(|(n, _, _)| *n)) {
                Some(best) => d.with_help(format!("did you mean `@{best}`?")),
                None => d.with_help(
                    "the attributes are `@terminal`, `@external`, `@retry`, `@timeout`, \
                     `@bounded`, `@http`, `@deadline` and `@deprecated`",
                ),
            };
            diags.push(d);
            continue;
        };
        if !allowed.contains(&target) {
            let message = if target == Target::Nothing {
                format!("attribute `@{name}` qualifies nothing")
            } else {
                format!("`@{name}` cannot be used on {}", target.describe())
            };
            diags.push(
                Diagnostic::new(Code::E0103, attr.span, message)
                    .with_primary_message("misplaced attribute")
                    .with_help(format!("`@{name}` applies to {where_ok}")),
            );
            continue;
        }
        if let Some(first) = seen.iter().find(|a| a.name.name == name) {
            diags.push(
                Diagnostic::new(Code::E0103, attr.span, format!("`@{name}` is given twice"))
                    .with_primary_message("repeated here")
                    .with_label(first.span, "first given here")
                    .with_help("remove one of them"),
            );
            continue;
        }
        seen.push(attr);
        if let Some(d) = shape_error(attr) {
            diags.push(d);
            continue;
        }
        let mut args = Args::new(attr, diags);
        match name {
            "terminal" => {
                let settlement = match args.optional_positional_ident(&["success", "failure"]) {
                    Some(Some("failure")) => Some(Settlement::Failure),
                    Some(_) => Some(Settlement::Success),
                    None => None,
                };
                if args.finish() {
                    out.terminal = settlement.map(|s| (s, attr.span));
                }
            }
            "external" => {
                let well_formed = args.finish();
                out.external = well_formed.then_some(attr.span);
            }
            "retry" => {
                let max = args.named("max", Kind::Count);
                let backoff = args.named("backoff", Kind::Duration);
                if args.finish() {
                    if let (Some(Value::Count(max)), Some(Value::Duration(backoff))) =
                        (max, backoff)
                    {
                        out.retry = Some(Box::new(Retry {
                            max,
                            backoff,
                            span: attr.span,
                        }));
                    }
                }
            }
            "timeout" => {
                let d = args.positional(Kind::Duration, "the time limit, e.g. `@timeout(30s)`");
                if args.finish() {
                    if let Some(Value::Duration(d)) = d {
                        out.timeout = Some(Box::new((d, attr.span)));
                    }
                }
            }
            "bounded" => {
                let n = args.positional(Kind::Bound, "the number of firings, e.g. `@bounded(3)`");
                if args.finish() {
                    if let Some(Value::Count(n)) = n {
                        out.bounded = Some(Box::new((n, attr.span)));
                    }
                }
            }
            "http" => {
                let method =
                    args.positional(Kind::Method, "the method, e.g. `@http(POST \"/orders\")`");
                let path = args.positional(Kind::Path, "the path, e.g. `@http(POST \"/orders\")`");
                if args.finish() {
                    if let (Some(Value::Method(m)), Some(Value::Text(p, sp))) = (method, path) {
                        out.http = Some((m, p, sp, attr.span));
                    }
                }
            }
            "deadline" => {
                let d = args.positional(
                    Kind::Deadline,
                    "the time an instance has to settle, e.g. `@deadline(30m)`",
                );
                if args.finish() {
                    if let Some(Value::Duration(d)) = d {
                        out.deadline = Some(Box::new((d, attr.span)));
                    }
                }
            }
            "deprecated" => {
                let reason = args.optional_positional_string();
                if args.finish() {
                    out.deprecated = Some(Box::new(Deprecation {
                        reason,
                        span: attr.span,
                    }));
                }
            }
            _ => {}
        }
    }
    if let (Some(_), Some(ext)) = (out.terminal, out.external) {
        diags.push(
            Diagnostic::new(
                Code::E0103,
                ext,
                "an event cannot be both `@terminal` and `@external`",
            )
            .with_primary_message("`@external` here")
            .with_label(out.terminal.map_or(ext, |t| t.1), "`@terminal` here")
            .with_help(
                "an instance is settled by what its participants emit; \
                 let a participant react to the external event and emit a terminal one",
            ),
        );
        out.external = None;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Count,
    Bound,
    Duration,
    /// A duration that must be positive: zero is E0103, not E0106.
    Deadline,
    Method,
    Path,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Count | Kind::Bound => "an integer",
            Kind::Duration | Kind::Deadline => "a duration such as `200ms`, `30s`, `5m` or `2h`",
            Kind::Method => "an HTTP method (`GET`, `POST`, `PUT`, `PATCH` or `DELETE`)",
            Kind::Path => "a path string such as `\"/orders\"`",
        }
    }
}

enum Value {
    Count(u32),
    Duration(Duration),
    Method(HttpMethod),
    Text(String, Span),
}

/// The arguments of one attribute, consumed as they are interpreted; what
/// is left over at the end is reported.
struct Args<'a, 'd> {
    attr: &'a Attribute,
    positional: Vec<&'a Literal>,
    named: Vec<(&'a str, Span, &'a Literal)>,
    diags: &'d mut Vec<Diagnostic>,
    ok: bool,
}

impl<'a, 'd> Args<'a, 'd> {
    fn new(attr: &'a Attribute, diags: &'d mut Vec<Diagnostic>) -> Self {
        let mut positional = Vec::new();
        let mut named: Vec<(&str, Span, &Literal)> = Vec::new();
        let mut ok = true;
        for arg in attr.args.iter().flatten() {
            match arg {
                AttrArg::Positional(lit) => positional.push(lit),
                AttrArg::Named { name, value } => {
                    if let Some((_, first, _)) = named.iter().find(|(n, _, _)| *n == name.name) {
                        diags.push(
                            Diagnostic::new(
                                Code::E0103,
                                name.span,
                                format!(
                                    "argument `{}` of `@{}` is given twice",
                                    name.name, attr.name.name
                                ),
                            )
                            .with_label(*first, "first given here"),
                        );
                        ok = false;
                    } else {
                        named.push((&name.name, name.span, value));
                    }
                }
            }
        }
        Args {
            attr,
            positional,
            named,
            diags,
            ok,
        }
    }

    fn error(&mut self, span: Span, message: String, help: Option<String>) {
        let mut d = Diagnostic::new(Code::E0103, span, message);
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.diags.push(d);
        self.ok = false;
    }

    fn attr_name(&self) -> &str {
        &self.attr.name.name
    }

    fn positional(&mut self, kind: Kind, what: &str) -> Option<Value> {
        if self.positional.is_empty() {
            let name = self.attr_name().to_string();
            self.error(
                self.attr.span,
                format!("`@{name}` needs an argument"),
                Some(format!("give {what}")),
            );
            return None;
        }
        let lit = self.positional.remove(0);
        self.value(lit, kind)
    }

    fn named(&mut self, key: &str, kind: Kind) -> Option<Value> {
        let Some(pos) = self.named.iter().position(|(n, _, _)| *n == key) else {
            let name = self.attr_name().to_string();
            let example = match kind {
                Kind::Duration => format!("{key} = 200ms"),
                _ => format!("{key} = 3"),
            };
            self.error(
                self.attr.span,
                format!("`@{name}` is missing `{key}`"),
                Some(format!("add `{example}`")),
            );
            return None;
        };
        let (_, _, lit) = self.named.remove(pos);
        self.value(lit, kind)
    }

    fn optional_positional_ident(
        &mut self,
        allowed: &[&'static str],
    ) -> Option<Option<&'static str>> {
        if self.positional.is_empty() {
            return Some(None);
        }
        let lit = self.positional.remove(0);
        if let LiteralKind::Ident(word) = &lit.kind {
            if let Some(found) = allowed.iter().find(|a| **a == word) {
                return Some(Some(found));
            }
        }
        let name = self.attr_name().to_string();
        self.error(
            lit.span,
            format!("`@{name}` takes `{}`", allowed.join("` or `")),
            Some(format!(
                "write `@{name}` or `@{name}({})`",
                allowed.last().copied().unwrap_or_default()
            )),
        );
        None
    }

    fn optional_positional_string(&mut self) -> Option<String> {
        if self.positional.is_empty() {
            return None;
        }
        let lit = self.positional.remove(0);
        if let LiteralKind::String(s) = &lit.kind {
            return Some(s.clone());
        }
        let name = self.attr_name().to_string();
        self.error(
            lit.span,
            format!("`@{name}` takes a string, found {}", lit.kind.describe()),
            Some(format!("write `@{name}(\"why\")`")),
        );
        None
    }

    fn value(&mut self, lit: &Literal, kind: Kind) -> Option<Value> {
        let name = self.attr_name().to_string();
        let wrong = |this: &mut Self| {
            this.error(
                lit.span,
                format!(
                    "`@{name}` expects {}, found {}",
                    kind.expected(),
                    lit.kind.describe()
                ),
                None,
            );
            None
        };
        match (kind, &lit.kind) {
            (Kind::Count | Kind::Bound, LiteralKind::Integer(digits)) => {
                let Ok(n) = digits.parse::<u32>() else {
                    self.literal_error(
                        lit.span,
                        format!("`{digits}` is too large: the limit is {}", u32::MAX),
                    );
                    return None;
                };
                if n == 0 {
                    if kind == Kind::Bound {
                        self.error(
                            lit.span,
                            "`@bounded(0)` would forbid the reaction altogether".into(),
                            Some("a bound counts the firings allowed in one instance; it must be at least 1".into()),
                        );
                    } else {
                        self.literal_error(lit.span, "a count of zero".into());
                    }
                    return None;
                }
                Some(Value::Count(n))
            }
            (Kind::Duration | Kind::Deadline, LiteralKind::Duration { digits, unit }) => {
                let ms = digits
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_mul(unit.millis()));
                match ms {
                    None => {
                        self.literal_error(
                            lit.span,
                            format!("the duration `{digits}{}` overflows", unit_name(*unit)),
                        );
                        None
                    }
                    Some(0) if kind == Kind::Deadline => {
                        self.error(
                            lit.span,
                            "`@deadline` of zero: no instance could ever settle in time".into(),
                            Some("a deadline is the time an instance started by this command has to settle; give a positive duration, e.g. `@deadline(30m)`".into()),
                        );
                        None
                    }
                    Some(0) => {
                        self.literal_error(lit.span, "a duration of zero".into());
                        None
                    }
                    Some(ms) => Some(Value::Duration(Duration::from_millis(ms))),
                }
            }
            (Kind::Method, LiteralKind::Ident(word)) => {
                let method = match word.as_str() {
                    "GET" => HttpMethod::Get,
                    "POST" => HttpMethod::Post,
                    "PUT" => HttpMethod::Put,
                    "PATCH" => HttpMethod::Patch,
                    "DELETE" => HttpMethod::Delete,
                    _ => {
                        let upper = word.to_ascii_uppercase();
                        let help = ["GET", "POST", "PUT", "PATCH", "DELETE"]
                            .contains(&upper.as_str())
                            .then(|| format!("methods are written in capitals: `{upper}`"));
                        self.error(lit.span, format!("`{word}` is not an HTTP method"), help);
                        return None;
                    }
                };
                Some(Value::Method(method))
            }
            (Kind::Path, LiteralKind::String(path)) => Some(Value::Text(path.clone(), lit.span)),
            _ => wrong(self),
        }
    }

    fn literal_error(&mut self, span: Span, what: String) {
        let name = self.attr_name().to_string();
        self.diags.push(
            Diagnostic::new(Code::E0106, span, format!("{what} is not allowed in `@{name}`"))
                .with_help("durations and counts must be at least 1 and fit in 64 bits of milliseconds or 32 bits"),
        );
        self.ok = false;
    }

    /// Reports unused arguments; true when the attribute was well-formed.
    fn finish(mut self) -> bool {
        let name = self.attr_name().to_string();
        let extra_positional: Vec<Span> = self.positional.iter().map(|l| l.span).collect();
        for span in extra_positional {
            self.error(
                span,
                format!("unexpected argument to `@{name}`"),
                Some(usage(&name)),
            );
        }
        let extra_named: Vec<(String, Span)> = self
            .named
            .iter()
            .map(|(n, s, _)| (n.to_string(), *s))
            .collect();
        for (arg, span) in extra_named {
            self.error(
                span,
                format!("`@{name}` has no argument `{arg}`"),
                Some(usage(&name)),
            );
        }
        self.ok
    }
}

/// One error for arguments of the wrong shape altogether (positional where
/// names are expected, or the reverse), instead of one per argument.
fn shape_error(attr: &Attribute) -> Option<Diagnostic> {
    let name = attr.name.name.as_str();
    let args = attr.args.as_deref().unwrap_or_default();
    let named = args.iter().any(|a| matches!(a, AttrArg::Named { .. }));
    let positional = args.iter().any(|a| matches!(a, AttrArg::Positional(_)));
    let wrong = match name {
        "retry" => positional,
        _ => named,
    };
    wrong.then(|| {
        let what = if name == "retry" {
            "named arguments"
        } else {
            "no named arguments"
        };
        Diagnostic::new(Code::E0103, attr.span, format!("`@{name}` takes {what}"))
            .with_primary_message("arguments of the wrong form")
            .with_help(usage(name))
    })
}

fn unit_name(unit: DurationUnit) -> &'static str {
    match unit {
        DurationUnit::Millis => "ms",
        DurationUnit::Seconds => "s",
        DurationUnit::Minutes => "m",
        DurationUnit::Hours => "h",
    }
}

fn usage(name: &str) -> String {
    let form = match name {
        "terminal" => "`@terminal` or `@terminal(failure)`",
        "external" => "`@external`",
        "retry" => "`@retry(max = 5, backoff = 200ms)`",
        "timeout" => "`@timeout(30s)`",
        "bounded" => "`@bounded(3)`",
        "http" => "`@http(POST \"/orders\")`",
        "deadline" => "`@deadline(30m)`",
        "deprecated" => "`@deprecated(\"why\")`",
        _ => "",
    };
    format!("it is written {form}")
}
