//! The comments of a spec, found in its text: the parser blanks plain
//! comments before it reads the text (`syntax::scan`) and keeps doc
//! comments only as lines of the node they document, so the formatter
//! takes both from the text, with their places.

use crate::syntax::scan::{block_comment_end, line_end, string_end};

/// What kind of comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `// …` (or `//// …`), to the end of the line.
    Line,
    /// `/* … */`, perhaps nested, perhaps over several lines.
    Block,
    /// `/// …`, to the end of the line.
    Doc,
}

/// One comment and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Its kind.
    pub kind: Kind,
    /// Offset of its first byte.
    pub start: usize,
    /// Offset one past its last byte.
    pub end: usize,
}

/// Every comment of `text` in order, and the text with each of them
/// replaced by spaces (newlines kept), where only tokens are left.
/// `None` when a block comment is unterminated, which the parser refuses
/// anyway.
pub fn collect(text: &str) -> Option<(Vec<Comment>, String)> {
    let bytes = text.as_bytes();
    let mut comments = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let is_doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                let (kind, end) = if is_doc {
                    // The grammar ends a doc comment at any line break,
                    // a lone carriage return included.
                    let end = bytes[i..]
                        .iter()
                        .position(|&b| b == b'\n' || b == b'\r')
                        .map_or(bytes.len(), |p| i + p);
                    (Kind::Doc, end)
                } else {
                    (Kind::Line, line_end(bytes, i))
                };
                comments.push(Comment {
                    kind,
                    start: i,
                    end,
                });
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = block_comment_end(bytes, i)?;
                comments.push(Comment {
                    kind: Kind::Block,
                    start: i,
                    end,
                });
                i = end;
            }
            b'"' => i = string_end(bytes, i),
            _ => i += 1,
        }
    }
    let mut skeleton = bytes.to_vec();
    for comment in &comments {
        for b in &mut skeleton[comment.start..comment.end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    if skeleton.starts_with("\u{feff}".as_bytes()) {
        skeleton[..3].copy_from_slice(b"   ");
    }
    // Comments start and end at ASCII bytes, so whole characters were
    // blanked and the bytes are UTF-8 again.
    let skeleton = String::from_utf8(skeleton).ok()?;
    Some((comments, skeleton))
}

/// The text of a comment as the formatter writes it: a doc comment as
/// the parser reads it (`///`, one space, the line without trailing
/// space), a line comment without trailing space, a block comment as it
/// is.
pub fn canonical(text: &str, comment: &Comment) -> String {
    let raw = text.get(comment.start..comment.end).unwrap_or_default();
    match comment.kind {
        Kind::Doc => {
            let line = raw.get(3..).unwrap_or_default();
            let line = line.strip_prefix(' ').unwrap_or(line).trim_end();
            if line.is_empty() {
                "///".to_string()
            } else {
                format!("/// {line}")
            }
        }
        Kind::Line => raw.trim_end().to_string(),
        Kind::Block => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_kind_and_skips_strings() {
        let text = "a // x\n/// doc\n//// plain\nb /* c /* d */ e */ \"// s\"";
        let (comments, skeleton) = collect(text).unwrap();
        let kinds: Vec<Kind> = comments.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [Kind::Line, Kind::Doc, Kind::Line, Kind::Block]);
        assert_eq!(skeleton.len(), text.len());
        assert_eq!(
            skeleton.split_whitespace().collect::<Vec<_>>(),
            ["a", "b", "\"//", "s\""]
        );
        assert_eq!(canonical(text, &comments[1]), "/// doc");
    }

    #[test]
    fn doc_comments_are_written_as_the_parser_reads_them() {
        for (raw, written) in [("///x  ", "/// x"), ("///", "///"), ("///   x", "///   x")] {
            let (comments, _) = collect(raw).unwrap();
            assert_eq!(canonical(raw, &comments[0]), written);
        }
    }
}
