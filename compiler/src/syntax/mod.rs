//! The syntax stage: text to [`ast::File`], or E0001 diagnostics.

pub mod ast;
mod error;
mod literal;
mod lower;
mod scan;

use crate::diagnostic::Diagnostic;
use crate::source::SourceFile;
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

/// Parses one file. On failure, every diagnostic is E0001.
pub fn parse(file: &SourceFile) -> Result<ast::File, Vec<Diagnostic>> {
    let text = file
        .text()
        .strip_prefix('\u{feff}')
        .map_or(file.text(), |_| {
            // Keep offsets intact: the BOM becomes three spaces below.
            file.text()
        });
    let mut blanked = scan::blank_comments(text).map_err(|d| vec![*d])?;
    if blanked.starts_with('\u{feff}') {
        blanked.replace_range(0..3, "   ");
    }
    let pairs = match Grammar::parse(Rule::file, &blanked) {
        Ok(pairs) => pairs,
        Err(err) => return Err(vec![error::from_pest(&blanked, &err)]),
    };
    lower::Lower {
        text: &blanked,
        offset: 0,
    }
    .file(pairs)
    .map_err(|d| vec![*d])
}
