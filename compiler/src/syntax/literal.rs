//! Decoding of string literals.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;

/// Decodes the escapes of a string literal's body; `offset` is the byte
/// offset of the body in the file, for error positions.
pub fn unescape(body: &str, offset: usize) -> Result<String, Box<Diagnostic>> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, escape)) = chars.next() else {
            return Err(bad_escape(offset + i, 1, "a string cannot end with `\\`"));
        };
        match escape {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'u' => {
                let rest = &body[i + 2..];
                let Some(close) = rest.strip_prefix('{').and_then(|r| r.find('}')) else {
                    return Err(bad_escape(
                        offset + i,
                        2,
                        "a unicode escape is written `\\u{…}` with 1 to 6 hex digits",
                    ));
                };
                let hex = &rest[1..=close];
                let len = 2 + close + 2;
                let value = (1..=6)
                    .contains(&hex.len())
                    .then(|| u32::from_str_radix(hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32);
                let Some(ch) = value else {
                    return Err(bad_escape(
                        offset + i,
                        len,
                        &format!("`\\u{{{hex}}}` is not a unicode scalar value"),
                    ));
                };
                out.push(ch);
                for _ in 0..close + 2 {
                    chars.next();
                }
            }
            other => {
                return Err(bad_escape(
                    offset + i,
                    1 + other.len_utf8(),
                    &format!("unknown escape `\\{other}`"),
                ))
            }
        }
    }
    Ok(out)
}

fn bad_escape(at: usize, len: usize, message: &str) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::new(Code::E0001, Span::new(at, at + len), message)
            .with_help("the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_escape() {
        assert_eq!(
            unescape(r#"a\"b\\c\nd\te\u{1F600}"#, 0).unwrap(),
            "a\"b\\c\nd\te\u{1F600}"
        );
    }

    #[test]
    fn rejects_unknown_and_bad_unicode_escapes() {
        let err = unescape(r"ab\q", 10).unwrap_err();
        assert_eq!(err.primary.span, Span::new(12, 14));
        assert!(unescape(r"\u{D800}", 0).is_err());
        assert!(unescape(r"\u{1234567}", 0).is_err());
        assert!(unescape(r"\u1234", 0).is_err());
        assert!(unescape(r"\u{}", 0).is_err());
    }
}
