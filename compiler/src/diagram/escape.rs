//! Escaping user text for each diagram format.
//!
//! Names are identifiers and would be safe almost anywhere, but doc
//! comments, `@http` paths and deprecation reasons are free text: quotes,
//! `<`, `&`, `]]>`, newlines, `%%`, backslashes and braces all occur in
//! real prose. Every string from a spec goes through one of these functions
//! on its way into a diagram, so that no such text can end a label early,
//! start a comment or inject markup.

/// Text for a Mermaid label or message: inside `["…"]` of a flowchart node,
/// after `:` of a sequence message or note, or in an `alt`/`par` label.
///
/// Mermaid decodes `#name;` and `#123;` entity codes in these places, so
/// every character that could mean something to its lexer or to HTML
/// (quotes, `#`, `%`, `;`, brackets, braces, `<`, `&`, backslash, backtick
/// and the like) becomes a numeric entity; letters, digits, spaces and
/// plain punctuation stay as they are so the source stays readable. `|`
/// and `:` are plain here: they only mean something in edge labels and
/// before a sequence message, where user text never goes. Newlines and other control
/// characters become spaces: a label is one line unless the renderer adds
/// `<br/>` itself.
pub fn mermaid_text(text: &str) -> String {
    one_line(text, |out, c| {
        if c.is_alphanumeric()
            || matches!(
                c,
                '_' | '-'
                    | '.'
                    | ','
                    | '/'
                    | '\''
                    | '!'
                    | '?'
                    | '+'
                    | '*'
                    | '='
                    | '@'
                    | '('
                    | ')'
                    | ':'
                    | '|'
            )
        {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", u32::from(c)));
        }
    })
}

/// Text for a Mermaid `accTitle:` or `accDescr:` line, which runs to the end
/// of the line and is not entity-decoded.
///
/// Newlines would end it, and Mermaid strips `%%` to the end of a line as a
/// comment wherever it stands, so line breaks become spaces and `%%` is
/// split.
pub fn mermaid_line(text: &str) -> String {
    one_line(text, |out, c| {
        if c == '%' && out.ends_with('%') {
            out.push(' ');
        }
        out.push(c);
    })
}

/// Text on one line: runs of whitespace and control characters become one
/// space, the ends are trimmed, and `push` writes every other character.
fn one_line(text: &str, mut push: impl FnMut(&mut String, char)) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        push(&mut out, c);
    }
    out.trim().to_owned()
}

/// The contents of a DOT double-quoted string (without the quotes).
///
/// A `"` would end the string and a backslash starts an escape (`\n`,
/// `\N`, `\G`, a line continuation), so both are escaped; a newline
/// becomes DOT's `\n` line break and other control characters spaces.
pub fn dot_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// XML character data or an attribute value (either quote).
///
/// `&`, `<`, `>` and both quotes become entities, which also defuses `]]>`
/// and `--`. Characters that XML 1.0 forbids (most control characters)
/// become spaces; tab and newline stay.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || matches!(c, '\u{fffe}' | '\u{ffff}') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mermaid_text_cannot_close_a_label_or_start_a_comment() {
        let nasty = "a \"quoted\" <b>&amp;</b> %% comment\n]]> {x} [y] |z| #1; back\\slash; end";
        let escaped = mermaid_text(nasty);
        // `;` stays only as the end of an entity code.
        for bad in ['"', '<', '>', '\n', '[', ']', '{', '}', '\\', '%', '&', '`'] {
            assert!(!escaped.contains(bad), "{bad:?} left in {escaped}");
        }
        for (i, _) in escaped.match_indices(';') {
            let code = escaped[..i].rsplit('#').next().unwrap_or_default();
            assert!(
                !code.is_empty() && code.chars().all(|c| c.is_ascii_digit()),
                "{escaped}"
            );
        }
        assert!(escaped.starts_with("a #34;quoted#34; #60;b#62;"));
        assert_eq!(mermaid_text("Plain text, fine."), "Plain text, fine.");
        assert_eq!(mermaid_text("  two\n\nlines  "), "two lines");
    }

    #[test]
    fn mermaid_line_stays_on_one_line() {
        assert_eq!(mermaid_line("a\nb %% c %%% d"), "a b % % c % % % d");
    }

    #[test]
    fn dot_string_escapes_quotes_and_backslashes() {
        assert_eq!(
            dot_string("say \"hi\"\\n\nnext"),
            "say \\\"hi\\\"\\\\n\\nnext"
        );
    }

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(
            xml("<a href='x'>&\"]]>\u{7}"),
            "&lt;a href=&apos;x&apos;&gt;&amp;&quot;]]&gt; "
        );
    }
}
