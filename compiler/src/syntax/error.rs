//! Turning pest's parse errors into E0001 diagnostics that say what was
//! expected, in the user's terms.

use super::{scan, Grammar, Rule};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use pest::error::{ErrorVariant, InputLocation};
use std::collections::BTreeSet;

/// Builds the diagnostic for a failed parse of `text`.
pub(super) fn from_pest(text: &str, err: &pest::error::Error<Rule>) -> Diagnostic {
    let mut at = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let positives = || match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| describe(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    match Detail::of(text) {
        // pest's own error stands where the last rule failed; a literal
        // token missing after part of a rule (`user_id u64` without its
        // `:`) is further on, and only the detailed parse sees it. That
        // is where the user's mistake is.
        Some(detail) if detail.position > at && !detail.tokens.is_empty() => {
            at = detail.position;
            expected.extend(detail.tokens);
        }
        Some(detail) if detail.position == at => {
            expected.extend(positives());
            expected.extend(detail.tokens);
        }
        _ => expected.extend(positives()),
    }
    // An identifier is what the grammar sees; what it names is what the
    // user wrote it for.
    if expected.len() == 1 && expected.contains("an identifier") {
        if let Some(role) = identifier_role(text, at) {
            expected = BTreeSet::from([role.to_string()]);
        }
    }
    // A string's opening quote is the string itself to a user.
    if expected.contains("a string") {
        expected.remove("`\"`");
    }
    // Where any item may start, say so once rather than list seven keywords.
    const ITEM_KEYWORDS: &[&str] = &[
        "`version`",
        "`key`",
        "`type`",
        "`enum`",
        "`command`",
        "`event`",
        "`participant`",
    ];
    if ITEM_KEYWORDS.iter().all(|k| expected.contains(*k)) {
        for k in ITEM_KEYWORDS {
            expected.remove(*k);
        }
        expected.insert("an item".to_string());
    }
    let found = found(text, at);
    let message = match expected.len() {
        0 => format!("unexpected {found}"),
        _ => format!("expected {}, found {found}", join(&expected)),
    };
    let end = (at + found_len(text, at)).min(text.len()).max(at);
    let mut diagnostic = Diagnostic::new(Code::E0001, Span::new(at, end), message)
        .with_primary_message(match expected.len() {
            0 => "unexpected here".to_string(),
            1 => format!("expected {}", join(&expected)),
            _ => "unexpected here".to_string(),
        });
    if let Some(open) = unclosed_brace(text).filter(|&open| open < at) {
        diagnostic = diagnostic.with_label(Span::new(open, open + 1), "unclosed delimiter");
    }
    if let Some(help) = help(text, at, &expected) {
        diagnostic = diagnostic.with_help(help);
    }
    diagnostic
}

/// Where the `{` that is never closed probably is, when `text` (comments
/// blanked) opens more braces than it closes: the first `{` whose `}`,
/// paired by nesting, sits on a line indented differently (the pairing
/// went wrong there, as it does after a forgotten `}`), or else the
/// innermost left open at the end. `None` when nothing is left open.
fn unclosed_brace(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut open: Vec<usize> = Vec::new();
    let mut mispaired: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i = scan::string_end(bytes, i);
                continue;
            }
            // Doc comments are all that is left of comments here.
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = scan::line_end(bytes, i);
                continue;
            }
            b'{' => open.push(i),
            b'}' => {
                if let Some(o) = open.pop() {
                    if mispaired.is_none() && indentation(text, o) != indentation(text, i) {
                        mispaired = Some(o);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    let innermost = *open.last()?;
    Some(mispaired.unwrap_or(innermost))
}

/// The leading whitespace of the line that holds byte `at`.
fn indentation(text: &str, at: usize) -> &str {
    let start = text
        .get(..at)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |n| n + 1);
    let line = text.get(start..).unwrap_or("");
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// What the grammar would have accepted at the furthest position any
/// attempt reached, found by parsing again with pest's detailed error
/// tracking (too slow to keep on always).
struct Detail {
    position: usize,
    /// The literal tokens expected there.
    tokens: Vec<String>,
}

impl Detail {
    fn of(text: &str) -> Option<Detail> {
        use pest::Parser as _;
        pest::set_error_detail(true);
        let result = Grammar::parse(Rule::file, text);
        pest::set_error_detail(false);
        let err = result.err()?;
        let attempts = err.parse_attempts()?;
        let tokens = attempts
            .expected_tokens()
            .into_iter()
            .map(|token| token.to_string())
            // Keywords are reported through their rules; ranges and built-ins
            // (`'a'..'z'`, `ANY`) say nothing useful to a user.
            .filter(|token| {
                !token.is_empty()
                    && !token.chars().all(|c| c.is_ascii_alphabetic())
                    && !token.contains("..")
                    && token != "BUILTIN_RULE"
                    // Doc comments and attributes may precede almost anything;
                    // listing them in every message would only add noise.
                    && token != "///"
                    && token != "@"
                    && token != "_"
                    && !token.chars().all(char::is_whitespace)
            })
            .map(|token| format!("`{token}`"))
            .collect();
        Some(Detail {
            position: attempts.max_position,
            tokens,
        })
    }
}

/// What an identifier expected at `at` would name, from the token before
/// it; `None` where that does not say.
fn identifier_role(text: &str, at: usize) -> Option<&'static str> {
    let before = text.get(..at)?.trim_end();
    if before.ends_with(':') || before.ends_with('<') {
        Some("a type")
    } else if before.ends_with("->") {
        Some("an event or `none`")
    } else if before.ends_with('+') || ends_with_word(before, "compensates") {
        Some("an event")
    } else if ends_with_word(before, "on") {
        Some("an event or command")
    } else {
        None
    }
}

/// Whether `text` ends with the whole word `word`, not a longer
/// identifier that ends with it.
fn ends_with_word(text: &str, word: &str) -> bool {
    text.strip_suffix(word)
        .is_some_and(|rest| !rest.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
}

/// How a grammar rule is called in messages; `None` for rules that are
/// implementation detail.
fn describe(rule: Rule) -> Option<String> {
    let s = match rule {
        Rule::ident => "an identifier",
        Rule::doc | Rule::doc_text => return None,
        Rule::attribute => return None,
        Rule::attr_args => "`(`",
        Rule::named_arg => "an argument",
        Rule::string | Rule::string_inner => "a string",
        Rule::duration => "a duration",
        Rule::integer => "an integer",
        Rule::kw_choreography | Rule::choreography => "`choreography`",
        Rule::kw_version | Rule::version_item => "`version`",
        Rule::kw_key | Rule::key_item => "`key`",
        Rule::kw_type | Rule::type_item => "`type`",
        Rule::kw_enum | Rule::enum_item => "`enum`",
        Rule::kw_command | Rule::command_item => "`command`",
        Rule::kw_event | Rule::event_item => "`event`",
        Rule::kw_participant | Rule::participant_item => "`participant`",
        Rule::kw_on | Rule::reaction => "`on`",
        Rule::kw_compensates | Rule::compensates => "`compensates`",
        Rule::field => "a field",
        Rule::variant => "a variant",
        Rule::comma => "`,`",
        Rule::type_expr => "a type",
        Rule::optional => "`?`",
        Rule::type_args => "`<`",
        Rule::trigger => "an event or command name",
        Rule::any_tail => "`|`",
        Rule::all_tail => "`&`",
        Rule::outcome => "an outcome",
        Rule::EOI => "end of file",
        _ => return None,
    };
    Some(s.to_string())
}

fn join(items: &BTreeSet<String>) -> String {
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What stands at `at`, for "found …".
fn found(text: &str, at: usize) -> String {
    let rest = text.get(at..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return "end of file".to_string();
    };
    let len = found_len(text, at);
    let token = &rest[..len];
    if c == '"' {
        "a string".to_string()
    } else if rest.starts_with("///") {
        "a doc comment".to_string()
    } else if c.is_control() || c == '\u{fffd}' {
        format!("character {}", c.escape_unicode())
    } else {
        format!("`{token}`")
    }
}

fn found_len(text: &str, at: usize) -> usize {
    let rest = text.get(at..).unwrap_or("");
    let mut chars = rest.chars();
    let Some(c) = chars.next() else { return 0 };
    if c.is_ascii_alphanumeric() || c == '_' {
        rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(rest.len())
    } else if rest.starts_with("->") {
        2
    } else if rest.starts_with("///") {
        3
    } else {
        c.len_utf8()
    }
}

/// A hint for frequent slips.
fn help(text: &str, at: usize, expected: &BTreeSet<String>) -> Option<String> {
    let rest = text.get(at..).unwrap_or("");
    if rest.starts_with("=>") || rest.starts_with("=") && expected.contains("`->`") {
        return Some("outcomes follow `->`, as in `on OrderPlaced -> StockReserved`".into());
    }
    if rest.starts_with(';') {
        return Some("items and fields are not terminated by `;`".into());
    }
    let before = text.get(..at).unwrap_or("").trim_end();
    if ends_with_word(before, "version") && rest.starts_with(|c: char| c.is_ascii_digit()) {
        let written = rest.split_whitespace().next().unwrap_or(rest);
        return Some(format!("the version is a string: `version \"{written}\"`"));
    }
    let word = &rest[..found_len(text, at)];
    if expected.contains("an item") && word.starts_with(|c: char| c.is_ascii_alphabetic()) {
        const ITEMS: &[&str] = &[
            "version",
            "key",
            "type",
            "enum",
            "command",
            "event",
            "participant",
        ];
        if let Some(best) = crate::suggest::closest(word, ITEMS.iter().copied()) {
            return Some(format!("did you mean `{best}`?"));
        }
        return Some(
            "items start with `version`, `key`, `type`, `enum`, `command`, `event` or `participant`"
                .into(),
        );
    }
    if expected.contains("`on`") && word.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Some("a participant's body is a list of reactions: `on Event -> Outcome`".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::{syntax, SourceFile};

    fn error(text: &str) -> crate::diagnostic::Diagnostic {
        let file = SourceFile::new("t.choreo", text);
        let mut errors = syntax::parse(&file).expect_err("a syntax error");
        assert_eq!(errors.len(), 1);
        errors.remove(0)
    }

    #[test]
    fn the_version_help_is_for_the_version_keyword_only() {
        let version = error("choreography S {\n    version 1.0.0\n}\n");
        assert_eq!(
            version.help.as_deref(),
            Some("the version is a string: `version \"1.0.0\"`")
        );
        let field = error("choreography S {\n    command P { app_version 1 }\n}\n");
        assert_eq!(field.message, "expected `:`, found `1`");
        assert_eq!(field.help, None);
    }

    #[test]
    fn an_unclosed_brace_is_found_by_its_indentation() {
        use super::unclosed_brace;
        // Balanced, or closed once too often: nothing is left open.
        assert_eq!(unclosed_brace("a {\n    b { }\n}\n"), None);
        assert_eq!(unclosed_brace("a { } }"), None);
        // Braces in strings and doc comments do not count.
        assert_eq!(unclosed_brace("a {\n    /// {\n    @x(\"{\")\n}\n"), None);
        // The enum's `{` pairs with the last `}`, indented differently.
        let text = "c {\n    enum E {\n        A\n    event B { }\n}\n";
        assert_eq!(unclosed_brace(text), text.find("E {").map(|at| at + 2));
        // Nothing mispaired: the innermost brace left open.
        assert_eq!(unclosed_brace("c {\n    event B { }\n"), Some(2));
    }

    #[test]
    fn a_missing_name_says_what_it_names() {
        let cases = [
            ("command P { a: }", "expected a type, found `}`"),
            ("command P { a: list< }", "expected a type, found `}`"),
            (
                "participant Q { on -> X }",
                "expected an event or command, found `->`",
            ),
            (
                "participant Q { on P -> }",
                "expected an event or `none`, found `}`",
            ),
            (
                "participant Q { on P -> A + }",
                "expected an event, found `}`",
            ),
        ];
        for (item, message) in cases {
            let text = format!("choreography S {{\n    {item}\n}}\n");
            assert_eq!(error(&text).message, message, "{item}");
        }
    }
}
