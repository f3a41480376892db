//! The syntax stage: text to [`ast::File`], or E0001 diagnostics.

pub mod ast;
mod error;
mod literal;
mod lower;
mod scan;

use crate::diagnostic::Diagnostic;
use crate::source::SourceFile;
use lower::{Lower, Piece};
use pest::Parser as _;

pub use scan::MAX_TYPE_NESTING;

mod grammar {
    // pest_derive generates an undocumented `Rule` enum.
    #![allow(missing_docs)]

    /// The pest parser generated from `grammar.pest`.
    #[derive(pest_derive::Parser)]
    #[grammar = "syntax/grammar.pest"]
    pub struct Grammar;
}

pub(crate) use grammar::{Grammar, Rule};

/// Files at least this large are parsed in two pieces on two threads.
const PARALLEL_FROM_BYTES: usize = 256 * 1024;

/// Parses one file. On failure, every diagnostic is E0001.
pub fn parse(file: &SourceFile) -> Result<ast::File, Vec<Diagnostic>> {
    let mut blanked = scan::blank_comments(file.text()).map_err(|d| vec![*d])?;
    if blanked.starts_with('\u{feff}') {
        // Keep offsets intact: the byte order mark becomes three spaces.
        blanked.replace_range(0..3, "   ");
    }
    if blanked.len() >= PARALLEL_FROM_BYTES {
        if let Some(split) = scan::member_boundary_near_middle(&blanked) {
            if let Some(file) = parse_in_pieces(&blanked, split) {
                return Ok(file);
            }
        }
    }
    let pairs = match Grammar::parse(Rule::file, &blanked) {
        Ok(pairs) => pairs,
        Err(err) => return Err(vec![error::from_pest(&blanked, &err)]),
    };
    Lower {
        text: &blanked,
        offset: 0,
    }
    .file(pairs)
    .map_err(|d| vec![*d])
}

/// Parses the text before and after `split` on two threads. `None` when
/// either piece fails: the caller then parses the whole text, so that a
/// syntax error is reported exactly as a sequential parse would.
fn parse_in_pieces(text: &str, split: usize) -> Option<ast::File> {
    let (head_text, tail_text) = text.split_at(split);
    let piece = |rule: Rule, piece_text: &str, offset: usize| {
        let pairs = Grammar::parse(rule, piece_text).ok()?;
        Lower { text, offset }.piece(pairs).ok()
    };
    let (head, tail) = std::thread::scope(|scope| {
        let tail = scope.spawn(|| piece(Rule::tail, tail_text, split));
        let head = piece(Rule::head, head_text, 0);
        (head, tail.join().ok().flatten())
    });
    Piece::join(head?, tail?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::synthetic_spec;

    fn sequential(text: &str) -> ast::File {
        let blanked = scan::blank_comments(text).unwrap();
        let pairs = Grammar::parse(Rule::file, &blanked).unwrap();
        Lower {
            text: &blanked,
            offset: 0,
        }
        .file(pairs)
        .unwrap()
    }

    #[test]
    fn parsing_in_pieces_gives_the_same_tree() {
        let text = format!(
            "/// docs\n{}\n@deprecated /// dangling\n",
            synthetic_spec(3_000).replace("\n}\n", "\n    /// inner dangling\n}\n")
        );
        assert!(text.len() >= PARALLEL_FROM_BYTES);
        let blanked = scan::blank_comments(&text).unwrap();
        let split = scan::member_boundary_near_middle(&blanked).unwrap();
        let pieces = parse_in_pieces(&blanked, split).expect("both pieces parse");
        assert_eq!(pieces, sequential(&text));
        assert_eq!(pieces.trailing_attrs.len(), 1);
    }

    #[test]
    fn a_syntax_error_in_a_large_file_is_reported_as_in_a_small_one() {
        let good = synthetic_spec(3_000);
        let at = good.len() * 3 / 4;
        let line_start = good[..at].rfind('\n').unwrap() + 1;
        let mut bad = good.clone();
        bad.insert_str(line_start, "    oops\n");
        let errors = parse(&SourceFile::new("big.choreo", bad.clone())).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].primary.span.start, line_start + 4);
        assert!(
            errors[0].message.contains("found `oops`"),
            "{}",
            errors[0].message
        );
    }
}
