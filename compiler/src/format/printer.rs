//! The canonical layout, written token by token in the order of the text.
//!
//! The syntax tree says what to write; the text says where each token
//! was, so that every comment found there ([`super::comments`]) is
//! written back between the same two tokens: on its own line when it
//! was on its own line, else at the end of the line of the token before.

use super::comments::{self, Comment, Kind};
use crate::syntax::ast::*;

/// What comes between the previous token and the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    /// Nothing: `name:`, `list<T>`, `@name(`.
    Tight,
    /// One space.
    Space,
    /// A new line at the current depth, after one blank line when the
    /// text had at least one there.
    Line,
}

/// One level of indentation.
const INDENT: &str = "    ";

/// Writes a parsed spec in the canonical layout.
pub(super) struct Printer<'s> {
    /// The text as written.
    text: &'s str,
    /// The text with its comments blanked: tokens only.
    skeleton: &'s str,
    /// Every comment of the text, in order.
    comments: Vec<Comment>,
    /// The first comment not written yet.
    next_comment: usize,
    /// What is written so far.
    out: String,
    /// Braces open around what is written next.
    depth: usize,
    /// Where the last token or comment written ends in the text.
    last_end: usize,
    /// Whether the last thing written is a line or doc comment, which
    /// runs to the end of its line.
    line_open: bool,
    /// Whether the last token written is an opening brace: no blank line
    /// follows one, even after a comment at the end of its line.
    after_open: bool,
}

impl<'s> Printer<'s> {
    /// A printer for `text`, whose comments and skeleton
    /// [`comments::collect`] gave.
    pub(super) fn new(text: &'s str, skeleton: &'s str, comments: Vec<Comment>) -> Self {
        Printer {
            text,
            skeleton,
            comments,
            next_comment: 0,
            out: String::with_capacity(text.len() + text.len() / 8),
            depth: 0,
            last_end: 0,
            line_open: false,
            after_open: false,
        }
    }

    /// The formatted text, once [`Printer::file`] has written the tree.
    pub(super) fn finish(mut self) -> String {
        self.flush(usize::MAX);
        self.trim_spaces();
        self.out.push('\n');
        self.out
    }

    /// Writes a whole file.
    pub(super) fn file(&mut self, file: &File) {
        let choreography = &file.choreography;
        let sep = self.attributes(&choreography.prefix.attrs, Sep::Line);
        self.word("choreography", sep);
        self.word(&choreography.name.name, Sep::Space);
        let close = choreography.span.end().saturating_sub(1);
        self.braced(
            &choreography.items,
            &choreography.trailing_attrs,
            close,
            false,
            Self::item,
        );
        for attr in &file.trailing_attrs {
            self.attribute(attr, Sep::Line);
        }
    }

    fn item(&mut self, item: &Item, sep: Sep) {
        let sep = self.attributes(&item.prefix.attrs, sep);
        let close = item.span.end().saturating_sub(1);
        match &item.kind {
            ItemKind::Version(literal) => {
                self.word("version", sep);
                self.literal(literal, Sep::Space);
            }
            ItemKind::Key { name, ty } => {
                self.word("key", sep);
                self.word(&name.name, Sep::Space);
                self.word(":", Sep::Tight);
                self.type_expr(ty, Sep::Space);
            }
            ItemKind::Type(record) => self.record("type", record, close, sep),
            ItemKind::Command(record) => self.record("command", record, close, sep),
            ItemKind::Event(record) => self.record("event", record, close, sep),
            ItemKind::Enum {
                name,
                variants,
                trailing_attrs,
            } => {
                self.word("enum", sep);
                self.word(&name.name, Sep::Space);
                let bare = variants.iter().all(|v| v.prefix.attrs.is_empty());
                self.braced(variants, trailing_attrs, close, bare, |p, variant, sep| {
                    let sep = p.attributes(&variant.prefix.attrs, sep);
                    p.word(&variant.name.name, sep);
                });
            }
            ItemKind::Participant {
                name,
                reactions,
                trailing_attrs,
            } => {
                self.word("participant", sep);
                self.word(&name.name, Sep::Space);
                self.braced(reactions, trailing_attrs, close, false, Self::reaction);
            }
        }
    }

    fn record(&mut self, keyword: &str, record: &Record, close: usize, sep: Sep) {
        self.word(keyword, sep);
        self.word(&record.name.name, Sep::Space);
        let bare = record.fields.iter().all(|f| f.prefix.attrs.is_empty());
        self.braced(
            &record.fields,
            &record.trailing_attrs,
            close,
            bare,
            |p, field, sep| {
                let sep = p.attributes(&field.prefix.attrs, sep);
                p.word(&field.name.name, sep);
                p.word(":", Sep::Tight);
                p.type_expr(&field.ty, Sep::Space);
            },
        );
    }

    /// Writes `{ entries }`, the closing brace at `close` in the text.
    /// Entries that `may_share_line` stay on one line, separated by
    /// commas, when they were written on one line; otherwise each goes on
    /// its own line, without commas. An empty body is `{ }`.
    fn braced<T>(
        &mut self,
        entries: &[T],
        trailing_attrs: &[Attribute],
        close: usize,
        may_share_line: bool,
        entry: impl Fn(&mut Self, &T, Sep),
    ) {
        let open = self.next_token();
        let body = self.text.get(open + 1..close).unwrap_or_default();
        let commented = self
            .comments
            .get(self.next_comment..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| c.start < close)
            .any(|c| c.start > open);
        let empty = entries.is_empty() && trailing_attrs.is_empty() && !commented;
        let one_line =
            empty || (may_share_line && trailing_attrs.is_empty() && !body.contains(['\n', '\r']));
        self.word("{", Sep::Space);
        self.after_open = true;
        self.depth += 1;
        let sep = if one_line { Sep::Space } else { Sep::Line };
        for (i, e) in entries.iter().enumerate() {
            entry(self, e, sep);
            if one_line && i + 1 < entries.len() {
                self.word(",", Sep::Tight);
            } else {
                self.skip_comma();
            }
        }
        for attr in trailing_attrs {
            self.attribute(attr, Sep::Line);
        }
        let at = self.next_token();
        self.flush(at);
        self.depth = self.depth.saturating_sub(1);
        if one_line {
            self.separate(Sep::Space, at);
        } else {
            self.new_line(at, false);
        }
        self.consume("}", at);
    }

    fn reaction(&mut self, reaction: &Reaction, sep: Sep) {
        let sep = self.attributes(&reaction.prefix.attrs, sep);
        self.word("on", sep);
        let joiner = match reaction.trigger.kind {
            TriggerKind::Any => "|",
            TriggerKind::All => "&",
        };
        for (i, name) in reaction.trigger.names.iter().enumerate() {
            if i > 0 {
                self.word(joiner, Sep::Space);
            }
            self.word(&name.name, Sep::Space);
        }
        if let Some(outcomes) = &reaction.outcomes {
            self.word("->", Sep::Space);
            for (i, outcome) in outcomes.iter().enumerate() {
                if i > 0 {
                    self.word("|", Sep::Space);
                }
                match outcome {
                    Outcome::None(_) => self.word("none", Sep::Space),
                    Outcome::Emit(names, _) => {
                        for (j, name) in names.iter().enumerate() {
                            if j > 0 {
                                self.word("+", Sep::Space);
                            }
                            self.word(&name.name, Sep::Space);
                        }
                    }
                }
            }
        }
        if let Some(compensated) = &reaction.compensates {
            self.word("compensates", Sep::Space);
            self.word(&compensated.name, Sep::Space);
        }
    }

    /// Writes attributes each on its own line, the first after `sep`; the
    /// separator for what follows them.
    fn attributes(&mut self, attrs: &[Attribute], sep: Sep) -> Sep {
        let mut sep = sep;
        for attr in attrs {
            self.attribute(attr, sep);
            sep = Sep::Line;
        }
        sep
    }

    /// `@name` or `@name(a b, c = d)`: a named argument is set off by a
    /// comma and a space, as in `@retry(max = 3, backoff = 1s)`; between
    /// positional ones a space is enough, as in `@http(POST "/orders")`;
    /// whether the text had commas or not.
    fn attribute(&mut self, attr: &Attribute, sep: Sep) {
        self.word("@", sep);
        self.word(&attr.name.name, Sep::Tight);
        let Some(args) = &attr.args else {
            return;
        };
        self.word("(", Sep::Tight);
        for (i, arg) in args.iter().enumerate() {
            let named = |arg: &AttrArg| matches!(arg, AttrArg::Named { .. });
            let sep = match i.checked_sub(1).and_then(|p| args.get(p)) {
                None => Sep::Tight,
                Some(previous) if named(previous) || named(arg) => {
                    self.separate(Sep::Tight, self.last_end);
                    self.out.push(',');
                    Sep::Space
                }
                Some(_) => Sep::Space,
            };
            match arg {
                AttrArg::Positional(literal) => self.literal(literal, sep),
                AttrArg::Named { name, value } => {
                    self.word(&name.name, sep);
                    self.word("=", Sep::Space);
                    self.literal(value, Sep::Space);
                }
            }
            self.skip_comma();
        }
        self.word(")", Sep::Tight);
    }

    /// A literal exactly as written: a string keeps its escapes.
    fn literal(&mut self, literal: &Literal, sep: Sep) {
        let raw = self.text.get(literal.span.range()).unwrap_or_default();
        self.word(raw, sep);
    }

    fn type_expr(&mut self, ty: &TypeExpr, sep: Sep) {
        match ty {
            TypeExpr::Named(name) => self.word(&name.name, sep),
            TypeExpr::List(inner, _) => {
                self.word("list", sep);
                self.word("<", Sep::Tight);
                self.type_expr(inner, Sep::Tight);
                self.word(">", Sep::Tight);
            }
            TypeExpr::Map(value, _) => {
                self.word("map", sep);
                self.word("<", Sep::Tight);
                self.word("string", Sep::Tight);
                self.word(",", Sep::Tight);
                self.type_expr(value, Sep::Space);
                self.word(">", Sep::Tight);
            }
            TypeExpr::Optional(inner, _) => {
                self.type_expr(inner, sep);
                self.word("?", Sep::Tight);
            }
        }
    }

    /// Where the next token of the text starts.
    fn next_token(&self) -> usize {
        let rest = self.skeleton.get(self.last_end..).unwrap_or_default();
        self.last_end + (rest.len() - rest.trim_start().len())
    }

    /// Writes `word`, the next token of the text, after the comments
    /// before it and `sep`.
    fn word(&mut self, word: &str, sep: Sep) {
        let at = self.next_token();
        self.flush(at);
        self.separate(sep, at);
        self.consume(word, at);
    }

    /// Writes `word`, found at `at` in the text. Were it not there (a bug
    /// here), the text is not consumed, and `format` refuses the result
    /// when it checks it.
    fn consume(&mut self, word: &str, at: usize) {
        self.after_open = false;
        self.out.push_str(word);
        if self.skeleton.get(at..).is_some_and(|r| r.starts_with(word)) {
            self.last_end = at + word.len();
        }
    }

    /// Passes over an optional comma in the text, which the tree does not
    /// keep; the layout decides where commas go.
    fn skip_comma(&mut self) {
        let at = self.next_token();
        if self.skeleton.get(at..).is_some_and(|r| r.starts_with(',')) {
            self.flush(at);
            self.last_end = at + 1;
        }
    }

    fn separate(&mut self, sep: Sep, at: usize) {
        match sep {
            Sep::Line => self.new_line(at, true),
            // What follows a line comment continues on the next line, one
            // level deeper.
            Sep::Space | Sep::Tight if self.line_open => {
                self.depth += 1;
                self.new_line(at, false);
                self.depth -= 1;
            }
            Sep::Space if !self.out.is_empty() => self.out.push(' '),
            Sep::Space | Sep::Tight => {}
        }
    }

    /// Starts a line at the current depth, for something at `at` in the
    /// text; after a blank line when `keep_blank` and the text had one
    /// there, except just after an opening brace.
    fn new_line(&mut self, at: usize, keep_blank: bool) {
        self.line_open = false;
        self.trim_spaces();
        if self.out.is_empty() {
            return;
        }
        self.out.push('\n');
        let gap = self.text.get(self.last_end..at).unwrap_or_default();
        if keep_blank && gap.matches('\n').count() >= 2 && !self.after_open {
            self.out.push('\n');
        }
        for _ in 0..self.depth {
            self.out.push_str(INDENT);
        }
    }

    /// Writes the comments that start before `at`.
    fn flush(&mut self, at: usize) {
        while let Some(comment) = self.comments.get(self.next_comment) {
            if comment.start >= at {
                break;
            }
            let comment = comment.clone();
            self.next_comment += 1;
            let gap = self
                .text
                .get(self.last_end..comment.start)
                .unwrap_or_default();
            if self.line_open || gap.contains('\n') {
                self.new_line(comment.start, true);
            } else if !self.out.is_empty() {
                self.out.push(' ');
            }
            self.out.push_str(&comments::canonical(self.text, &comment));
            self.last_end = comment.end;
            self.line_open = comment.kind != Kind::Block;
        }
    }

    fn trim_spaces(&mut self) {
        let kept = self.out.trim_end_matches(' ').len();
        self.out.truncate(kept);
    }
}
