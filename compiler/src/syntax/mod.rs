//! The syntax stage: text to [`ast::File`], or E0001 diagnostics.

pub mod ast;
mod error;
mod literal;
mod lower;
pub(crate) mod scan;

use crate::diagnostic::Diagnostic;
use crate::source::SourceFile;
use lower::{Lower, Piece};
use pest::Parser as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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

/// Files at least this large are parsed in pieces on two threads.
const PARALLEL_FROM_BYTES: usize = 256 * 1024;

/// About how large each piece of a large file is. Small enough that each
/// piece's parse tree (pest's token queue, tens of bytes per token) stays
/// a few megabytes that the next piece reuses, instead of one queue of
/// hundreds of megabytes grown by copying into freshly mapped memory,
/// which costs more than the parse itself on large files.
const PIECE_BYTES: usize = 512 * 1024;

/// Parses one file. On failure, every diagnostic is E0001.
pub fn parse(file: &SourceFile) -> Result<ast::File, Vec<Diagnostic>> {
    let len = file.text().len();
    if len > crate::source::MAX_SOURCE_BYTES {
        return Err(vec![Diagnostic::new(
            crate::diagnostic::Code::E0001,
            crate::Span::default(),
            format!(
                "the file is {len} bytes long; specs are limited to {} bytes",
                crate::source::MAX_SOURCE_BYTES
            ),
        )]);
    }
    let pieces = if len >= PARALLEL_FROM_BYTES {
        (len / PIECE_BYTES).max(2)
    } else {
        1
    };
    let scan::Scanned {
        text: mut blanked,
        bounds,
    } = scan::scan(file.text(), pieces).map_err(|d| vec![*d])?;
    if blanked.starts_with('\u{feff}') {
        // Keep offsets intact: the byte order mark becomes three spaces.
        blanked.to_mut().replace_range(0..3, "   ");
    }
    if !bounds.is_empty() {
        if let Some(file) = parse_in_pieces(&blanked, &bounds) {
            return Ok(file);
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

/// Parses the pieces of `text` between the offsets `bounds` (increasing,
/// at least one) on two threads, each taking the next piece not yet taken
/// until none is left: pieces differ in cost, and a busy host may slow one
/// thread, so a fixed half each would leave one thread idle at the end.
/// `None` when any piece fails (both threads then stop taking pieces): the
/// caller parses the whole text, so that a syntax error is reported
/// exactly as a sequential parse would.
fn parse_in_pieces(text: &str, bounds: &[usize]) -> Option<ast::File> {
    let mut starts = vec![0];
    starts.extend_from_slice(bounds);
    let last = starts.len() - 1;
    let piece = |index: usize| {
        let start = starts[index];
        let end = starts.get(index + 1).copied().unwrap_or(text.len());
        let rule = match index {
            0 => Rule::head,
            i if i == last => Rule::tail,
            _ => Rule::middle,
        };
        let pairs = Grammar::parse(rule, &text[start..end]).ok()?;
        Lower {
            text,
            offset: start,
        }
        .piece(pairs)
        .ok()
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let take_pieces = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index >= starts.len() {
                break;
            }
            match piece(index) {
                Some(lowered) => done.push((index, lowered)),
                None => failed.store(true, Ordering::Relaxed),
            }
        }
        done
    };
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(take_pieces);
        let first = take_pieces();
        (first, second.join().ok())
    });
    if failed.into_inner() {
        return None;
    }
    let mut slots: Vec<Option<Piece>> =
        std::iter::repeat_with(|| None).take(starts.len()).collect();
    for (index, lowered) in first.into_iter().chain(second?) {
        slots[index] = Some(lowered);
    }
    let mut pieces: Vec<Piece> = slots.into_iter().collect::<Option<_>>()?;
    let tail = pieces.pop()?;
    let mut rest = pieces.into_iter();
    let head = rest.next()?;
    Piece::join(head, rest.collect(), tail).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::synthetic_spec;

    fn sequential(text: &str) -> ast::File {
        let blanked = scan::scan(text, 1).unwrap().text;
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
        let expected = sequential(&text);
        for pieces in [2, 3, 7, 40] {
            let scan::Scanned {
                text: blanked,
                bounds,
            } = scan::scan(&text, pieces).unwrap();
            assert_eq!(bounds.len(), pieces - 1);
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
            let parsed = parse_in_pieces(&blanked, &bounds).expect("every piece parses");
            assert_eq!(parsed, expected, "{pieces} pieces");
            assert_eq!(parsed.trailing_attrs.len(), 1);
        }
    }

    #[test]
    fn a_syntax_error_in_a_large_file_is_reported_as_in_a_small_one() {
        // Large enough for three pieces; the error sits in the middle one.
        let good = synthetic_spec(12_000);
        assert!(good.len() / PIECE_BYTES >= 3);
        let at = good.len() / 2;
        let line_start = good[..at].rfind('\n').unwrap() + 1;
        let mut bad = good.clone();
        bad.insert_str(line_start, "    oops\n");
        let errors = parse(&SourceFile::new("big.choreo", bad.clone())).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].primary.span.start(), line_start + 4);
        assert!(
            errors[0].message.contains("found `oops`"),
            "{}",
            errors[0].message
        );
    }
}
