//! Rust tokens back to spec text, remembering where each token went.
//!
//! rustc hands a function-like macro its input as tokens: comments are gone,
//! `///` doc comments have become `#[doc = "…"]` attributes, `->` is a
//! joint `-` and a `>`, and the layout is only known through the tokens'
//! spans. The spec grammar cares about layout in two places — fields and
//! variants may be separated by newlines alone, and a doc comment runs to
//! the end of its line — so the text is rebuilt with the tokens where they
//! were: a newline wherever a token starts on a later line than the
//! previous one ended, spaces up to its column, nothing between tokens that
//! touched. A spec written inline therefore reads, line for line, like the
//! same spec in a file.
//!
//! Where spans carry no position (rustc before 1.88, or tokens made by
//! another macro), tokens are put on lines of their own, except after a
//! joint punctuation mark (`-` of `->`) or `@`: newlines are whitespace
//! everywhere else in the grammar, so any spec that parses in a file still
//! parses; only a missing separator between fields goes unnoticed.

use proc_macro2::{Delimiter, LineColumn, Spacing, Span, TokenStream, TokenTree};
use std::ops::Range;

/// Where one token went in the text.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    /// Its bytes in the text.
    pub range: Range<usize>,
    /// The token's span, for errors about these bytes.
    pub span: Span,
}

/// The spec text rebuilt from tokens, with every token's place in it.
#[derive(Debug, Default)]
pub(super) struct SpecText {
    /// The text, as the parser reads it.
    pub text: String,
    /// One entry per token (a doc comment and a delimiter count as one), in
    /// the order of the text.
    pub tokens: Vec<Placed>,
}

impl Placed {
    /// Where the token starts and ends in the Rust source, if its span
    /// tells.
    pub fn position(&self) -> Option<(LineColumn, LineColumn)> {
        position(self.span.start(), self.span.end())
    }
}

impl SpecText {
    /// Rebuilds the text of `input`.
    pub fn new(input: TokenStream) -> Self {
        let mut writer = Writer::default();
        writer.stream(input);
        writer.out
    }

    /// The tokens that the bytes `start..end` of the text touch: the first
    /// and the last of them. An empty range takes the token it falls in,
    /// else the next one, else the last one. `None` only without tokens.
    pub fn tokens_at(&self, start: usize, end: usize) -> Option<(&Placed, &Placed)> {
        let first_index = self
            .tokens
            .partition_point(|t| t.range.end <= start)
            .min(self.tokens.len().checked_sub(1)?);
        let first = &self.tokens[first_index];
        let last = self.tokens[first_index..]
            .iter()
            .take_while(|t| t.range.start < end)
            .last()
            .unwrap_or(first);
        Some((first, last))
    }
}

/// How the text ends, to decide what goes before the next token.
#[derive(Debug, Default)]
struct Writer {
    out: SpecText,
    /// Where the last token ended in the Rust source.
    last_end: Option<LineColumn>,
    /// The last piece was a doc comment: the next token needs a new line.
    after_doc: bool,
    /// The last token was a joint punctuation mark or `@`: the next one
    /// belongs to it.
    glued: bool,
}

impl Writer {
    fn stream(&mut self, input: TokenStream) {
        let tokens: Vec<TokenTree> = input.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            if let Some((doc, consumed)) = doc_attribute(&tokens[i..]) {
                self.doc(doc);
                i += consumed;
                continue;
            }
            match &tokens[i] {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::Parenthesis => ("(", ")"),
                        // A group invisible in the source (a fragment passed
                        // on by `macro_rules!`): only its tokens.
                        Delimiter::None => {
                            self.stream(group.stream());
                            i += 1;
                            continue;
                        }
                    };
                    self.token(open, group.span_open(), false);
                    self.stream(group.stream());
                    self.token(close, group.span_close(), false);
                }
                TokenTree::Punct(punct) => {
                    let glue = punct.spacing() == Spacing::Joint || punct.as_char() == '@';
                    self.token(&punct.as_char().to_string(), punct.span(), glue);
                }
                TokenTree::Ident(ident) => self.token(&ident.to_string(), ident.span(), false),
                TokenTree::Literal(literal) => {
                    self.token(&literal.to_string(), literal.span(), false)
                }
            }
            i += 1;
        }
    }

    /// Writes what separates the next token, at `at` in the Rust source
    /// when known, from the text so far.
    fn separate(&mut self, at: Option<(LineColumn, LineColumn)>) {
        if self.out.text.is_empty() {
            return;
        }
        match (self.last_end, at) {
            (Some(end), Some((start, _))) if start.line > end.line => {
                push_n(&mut self.out.text, '\n', start.line - end.line);
                push_n(&mut self.out.text, ' ', start.column);
            }
            (Some(end), Some((start, _)))
                if start.line == end.line && start.column >= end.column && !self.after_doc =>
            {
                push_n(&mut self.out.text, ' ', start.column - end.column);
            }
            // No usable positions: one token a line unless glued.
            _ if self.glued && !self.after_doc => {}
            _ => self.out.text.push('\n'),
        }
    }

    fn token(&mut self, text: &str, span: Span, glue: bool) {
        let at = position(span.start(), span.end());
        self.separate(at);
        let start = self.out.text.len();
        self.out.text.push_str(text);
        self.out.tokens.push(Placed {
            range: start..self.out.text.len(),
            span,
        });
        self.last_end = at.map(|(_, end)| end);
        self.after_doc = false;
        self.glued = glue;
    }

    /// A doc comment, one `///` line per line of its text.
    fn doc(&mut self, doc: Doc) {
        let at = position(doc.span.start(), doc.end);
        self.separate(at);
        let start = self.out.text.len();
        for (n, line) in doc.text.split('\n').enumerate() {
            if n > 0 {
                self.out.text.push('\n');
            }
            self.out
                .text
                .push_str(if doc.inner { "//!" } else { "///" });
            self.out
                .text
                .push_str(line.strip_suffix('\r').unwrap_or(line));
        }
        self.out.tokens.push(Placed {
            range: start..self.out.text.len(),
            span: doc.span,
        });
        self.last_end = at.map(|(_, end)| end);
        self.after_doc = true;
        self.glued = false;
    }
}

/// A token's start and end in the Rust source, if its span tells: rustc
/// before 1.88 gives line 0, and a span that covers nothing (as tokens built
/// in code have) is no real token's.
fn position(start: LineColumn, end: LineColumn) -> Option<(LineColumn, LineColumn)> {
    (start.line > 0 && (start.line, start.column) < (end.line, end.column)).then_some((start, end))
}

fn push_n(text: &mut String, c: char, n: usize) {
    text.extend(std::iter::repeat_n(c, n));
}

/// A `#[doc = "…"]` (or `#![doc = "…"]`) attribute, as rustc turns doc
/// comments into.
struct Doc {
    text: String,
    inner: bool,
    /// The `#`: for a doc comment, the whole comment.
    span: Span,
    /// Where the attribute ends.
    end: LineColumn,
}

/// The doc attribute at the start of `tokens`, and how many tokens it
/// takes.
fn doc_attribute(tokens: &[TokenTree]) -> Option<(Doc, usize)> {
    let TokenTree::Punct(hash) = tokens.first()? else {
        return None;
    };
    if hash.as_char() != '#' {
        return None;
    }
    let inner = matches!(tokens.get(1)?, TokenTree::Punct(p) if p.as_char() == '!');
    let at = if inner { 2 } else { 1 };
    let TokenTree::Group(group) = tokens.get(at)? else {
        return None;
    };
    if group.delimiter() != Delimiter::Bracket {
        return None;
    }
    let inside: Vec<TokenTree> = group.stream().into_iter().collect();
    let [TokenTree::Ident(name), TokenTree::Punct(eq), TokenTree::Literal(literal)] =
        inside.as_slice()
    else {
        return None;
    };
    if name != "doc" || eq.as_char() != '=' {
        return None;
    }
    let text = syn::parse2::<syn::LitStr>(TokenTree::Literal(literal.clone()).into())
        .ok()?
        .value();
    Some((
        Doc {
            text,
            inner,
            span: hash.span(),
            end: group.span().end(),
        },
        at + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn text(source: &str) -> String {
        SpecText::new(TokenStream::from_str(source).unwrap()).text
    }

    #[test]
    fn layout_is_kept_line_for_line() {
        let source = "/// Docs.\nchoreography A {\n    type T {\n        a: u32\n        b: list<string>?\n    }\n    @retry(max = 5, backoff = 200ms)\n    on X -> Y | Z\n}";
        assert_eq!(text(source), source);
    }

    #[test]
    fn comments_become_blank_and_doc_comments_stay() {
        assert_eq!(
            text("a // note\n/* block */ b\n    /// doc\nc"),
            "a\n            b\n    /// doc\nc"
        );
    }

    #[test]
    fn block_doc_comments_become_line_doc_comments() {
        assert_eq!(text("/** one\ntwo */ a"), "/// one\n///two \na");
    }

    #[test]
    fn strings_keep_their_source_form() {
        assert_eq!(
            text(r#"version "1.0\"x\u{41}""#),
            r#"version "1.0\"x\u{41}""#
        );
    }

    #[test]
    fn tokens_record_their_bytes() {
        let spec = SpecText::new(TokenStream::from_str("on A -> B").unwrap());
        let ranges: Vec<_> = spec.tokens.iter().map(|t| t.range.clone()).collect();
        assert_eq!(ranges, [0..2, 3..4, 5..6, 6..7, 8..9]);
        let (first, last) = spec.tokens_at(5, 7).unwrap();
        assert_eq!((first.range.start, last.range.end), (5, 7));
        // An empty range between tokens takes the next token; past the end,
        // the last one.
        assert_eq!(spec.tokens_at(4, 4).unwrap().0.range, 5..6);
        assert_eq!(spec.tokens_at(99, 99).unwrap().0.range, 8..9);
    }

    #[test]
    fn without_positions_tokens_go_on_lines_of_their_own() {
        // Tokens built in code have no positions.
        let tokens = quote::quote!(type T { a: u32 b: u32 } @retry on X -> Y);
        assert_eq!(
            SpecText::new(tokens).text,
            "type\nT\n{\na\n:\nu32\nb\n:\nu32\n}\n@retry\non\nX\n->\nY"
        );
    }
}
