//! A pass over the raw text before the grammar sees it.
//!
//! Plain comments are replaced by spaces (newlines kept, so every byte offset
//! and line number stays what the user sees), nesting that would make the
//! recursive-descent parser recurse without bound is refused up front, and
//! a large file's cuts between members, where its pieces are parsed on two
//! threads, are found.

use std::borrow::Cow;

use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;

/// Deepest `<…>` nesting of types accepted; real specs need two or three.
pub const MAX_TYPE_NESTING: usize = 64;

/// What [`scan`] found.
#[derive(Debug)]
pub struct Scanned<'t> {
    /// The text with plain comments blanked out. A text without plain
    /// comments is returned as it is, not copied.
    pub text: Cow<'t, str>,
    /// Up to `pieces - 1` offsets that cut the text into about `pieces`
    /// pieces of equal size, each just after the `}` that closes a member
    /// of the choreography (depth 1), in increasing order. Fewer when the
    /// members are too few or too large.
    pub bounds: Vec<usize>,
}

/// The bytes the scan stops at; it skips every other byte in a tight loop,
/// which is most of the pass on real text.
const STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut k = 0;
    let special = *b"/\"<>{}";
    while k < special.len() {
        stops[special[k] as usize] = true;
        k += 1;
    }
    stops
};

/// One pass over `text`: blanks plain comments, finds where to cut it
/// into `pieces` for parsing in parallel, and refuses the first lexical
/// error. The cuts come from the same pass because a large spec is read
/// here before any thread can start on it: a second pass over the text
/// would be time both threads spend waiting.
pub fn scan(text: &str, pieces: usize) -> Result<Scanned<'_>, Box<Diagnostic>> {
    let bytes = text.as_bytes();
    // Copied when the first comment is found.
    let mut copy: Option<Vec<u8>> = None;
    let pieces = pieces.max(1);
    let mut bounds = Vec::with_capacity(pieces - 1);
    let target = |k: usize| bytes.len() / pieces * k;
    let mut next_cut = target(1);
    let mut depth = 0usize;
    let mut i = 0;
    let mut angle_depth = 0usize;
    while i < bytes.len() {
        match bytes[i..].iter().position(|&b| STOPS[usize::from(b)]) {
            Some(skipped) => i += skipped,
            None => break,
        }
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = line_end(bytes, i);
                let is_doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                if !is_doc {
                    blank(out(&mut copy, bytes), i, end);
                }
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = block_comment_end(bytes, i).ok_or_else(|| {
                    Box::new(Diagnostic::new(
                        Code::E0001,
                        Span::new(i, i + 2),
                        "unterminated block comment",
                    )
                    .with_primary_message("this comment is never closed")
                    .with_help("close it with `*/`; block comments nest, so every `/*` needs its own `*/`"))
                })?;
                blank(out(&mut copy, bytes), i, end);
                i = end;
            }
            b'"' => i = string_end(bytes, i),
            b'<' => {
                angle_depth += 1;
                if angle_depth > MAX_TYPE_NESTING {
                    return Err(Box::new(
                        Diagnostic::new(
                            Code::E0001,
                            Span::new(i, i + 1),
                            format!("types nested more than {MAX_TYPE_NESTING} levels deep"),
                        )
                        .with_primary_message("too deep")
                        .with_help("name an intermediate record with `type` instead"),
                    ));
                }
                i += 1;
            }
            b'>' if i > 0 && bytes[i - 1] != b'-' => {
                angle_depth = angle_depth.saturating_sub(1);
                i += 1;
            }
            b'{' => {
                // Types never span a brace, so a brace ends any nesting.
                angle_depth = 0;
                depth += 1;
                i += 1;
            }
            b'}' => {
                angle_depth = 0;
                depth = depth.saturating_sub(1);
                i += 1;
                if depth == 1 && i >= next_cut && bounds.len() + 1 < pieces {
                    bounds.push(i);
                    next_cut = target(bounds.len() + 1).max(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes were written over ASCII-delimited comment bodies, and
    // multi-byte characters inside comments were replaced byte by byte with
    // spaces, so the result is valid UTF-8 again.
    let text = match copy {
        None => Cow::Borrowed(text),
        Some(copy) => String::from_utf8(copy).map(Cow::Owned).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            Box::new(Diagnostic::new(
                Code::E0001,
                Span::new(at, at + 1),
                "invalid UTF-8",
            ))
        })?,
    };
    Ok(Scanned { text, bounds })
}

pub(crate) fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| from + p)
}

/// End (exclusive) of the block comment opening at `start`, counting nesting.
pub(crate) fn block_comment_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// End (exclusive) of the string literal opening at `start`, or the end of
/// the text when it is unterminated (the grammar reports that).
pub(crate) fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The copy of `bytes` to blank comments in, made on first use.
fn out<'c>(copy: &'c mut Option<Vec<u8>>, bytes: &[u8]) -> &'c mut Vec<u8> {
    copy.get_or_insert_with(|| bytes.to_vec())
}

fn blank(out: &mut [u8], start: usize, end: usize) {
    for b in &mut out[start..end] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank_comments(text: &str) -> Result<Cow<'_, str>, Box<Diagnostic>> {
        scan(text, 1).map(|scanned| scanned.text)
    }

    fn member_boundaries(text: &str, pieces: usize) -> Vec<usize> {
        scan(text, pieces).unwrap().bounds
    }

    #[test]
    fn blanks_plain_comments_and_keeps_docs() {
        let text = "a // x\n/// doc\n//// plain\nb /* c /* d */ e */ f \"// s\"";
        let out = blank_comments(text).unwrap();
        assert_eq!(out.len(), text.len());
        assert_eq!(
            out,
            "a     \n/// doc\n          \nb                   f \"// s\""
        );
    }

    #[test]
    fn deeply_nested_block_comments_are_fine() {
        let text = format!("{}{}x", "/*".repeat(10_000), "*/".repeat(10_000));
        let out = blank_comments(&text).unwrap();
        assert!(out.ends_with('x'));
        assert_eq!(out.trim(), "x");
    }

    #[test]
    fn member_boundary_is_after_a_top_level_item() {
        let text = "choreography X { type A { a: u32 } /// {\n event B { s: string } event C { } }";
        let at = member_boundaries(text, 2);
        assert_eq!(at.len(), 1);
        assert!(
            text[..at[0]].ends_with("event B { s: string }"),
            "{}",
            &text[..at[0]]
        );
        assert!(member_boundaries("choreography X { }", 2).is_empty());
        // Three pieces: one cut after each of the first two items that end
        // past a third and two thirds of the text; never two cuts at once.
        let three = member_boundaries(text, 3);
        assert_eq!(three.len(), 2, "{three:?}");
        assert!(text[..three[0]].ends_with("type A { a: u32 }"));
        assert!(text[..three[1]].ends_with("event B { s: string }"));
        assert_eq!(member_boundaries(text, 50).len(), 3);
    }

    #[test]
    fn braces_in_comments_and_strings_are_not_cuts() {
        let text = "choreography X { /* } } */ // }\n @a(\"}\") event A { } /* { */ event B { } }";
        let Scanned {
            text: blanked,
            bounds,
        } = scan(text, 2).unwrap();
        assert_eq!(bounds.len(), 1);
        assert!(blanked[..bounds[0]].ends_with("event A { }"), "{bounds:?}");
        assert_eq!(blanked.len(), text.len());
        assert!(!blanked.contains("/*") && !blanked.contains("// }"));
    }

    #[test]
    fn unterminated_comment_is_reported_at_its_start() {
        let err = blank_comments("ab /* /* */").unwrap_err();
        assert_eq!(err.code, Code::E0001);
        assert_eq!(err.primary.span, Span::new(3, 5));
    }

    #[test]
    fn deep_type_nesting_is_refused() {
        let text = format!("key k: {}u32{}", "list<".repeat(100), ">".repeat(100));
        let err = blank_comments(&text).unwrap_err();
        assert!(err.message.contains("nested"));
    }

    #[test]
    fn multibyte_characters_in_comments_stay_valid() {
        let out = blank_comments("/* héllo */ x // ünïcode").unwrap();
        assert_eq!(out.trim(), "x");
    }
}
