//! Lowering pest's parse tree into the [`ast`](super::ast).
//!
//! The grammar already guarantees the shape, so a pair of an unexpected rule
//! here is a bug in this file, not in the input; it is reported as an
//! internal E0001 rather than a panic all the same.

use super::ast::*;
use super::literal::unescape;
use super::Rule;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;
use pest::iterators::{Pair, Pairs};

// Boxed: a parse fails at most once, and the happy path stays small.
type Result<T> = std::result::Result<T, Box<Diagnostic>>;

/// What one piece of a file holds; see [`Piece::join`].
#[derive(Default)]
pub(super) struct Piece {
    before: Prefix,
    start: Option<usize>,
    name: Option<Ident>,
    items: Vec<Item>,
    inside: Prefix,
    end: Option<usize>,
    after: Prefix,
}

impl Piece {
    /// The file made of a head piece, the middle pieces in order, and a
    /// tail piece. A middle piece holds items only; one that holds anything
    /// else (it never does: splits fall between members) is refused.
    pub(super) fn join(head: Piece, middles: Vec<Piece>, tail: Piece) -> Result<File> {
        let internal = || {
            Box::new(Diagnostic::new(
                Code::E0001,
                Span::default(),
                "internal error: pieces do not make a file",
            ))
        };
        let (Some(start), Some(name), Some(end)) = (head.start, head.name, tail.end) else {
            return Err(internal());
        };
        let mut items = head.items;
        items.reserve(middles.iter().map(|m| m.items.len()).sum::<usize>() + tail.items.len());
        for middle in middles {
            if middle.start.is_some()
                || middle.end.is_some()
                || !middle.inside.docs.is_empty()
                || !middle.inside.attrs.is_empty()
            {
                return Err(internal());
            }
            items.extend(middle.items);
        }
        items.extend(tail.items);
        Ok(File {
            choreography: Choreography {
                prefix: head.before,
                name,
                items,
                trailing_attrs: tail.inside.attrs,
                span: Span::new(start, end),
            },
            trailing_attrs: tail.after.attrs,
        })
    }
}

/// How many of `pairs` are `rule`s: lists are sized exactly, since a
/// large spec holds hundreds of thousands of short ones, and a vector
/// that grows starts with room for four.
fn count(pairs: &Pairs<'_, Rule>, rule: Rule) -> usize {
    pairs.clone().filter(|p| p.as_rule() == rule).count()
}

/// Lowers the parse tree of a text, or of a piece of it that starts at
/// byte `offset` (pest's positions are relative to the piece it parsed).
pub(super) struct Lower<'t> {
    /// The whole blanked text, for looking between tokens.
    pub text: &'t str,
    /// Where the parsed piece starts in `text`.
    pub offset: usize,
}

impl Lower<'_> {
    /// The span of a pair without trailing whitespace: pest's implicit
    /// whitespace is skipped before an optional part is tried, and stays in the
    /// pair when the part is absent.
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let start = self.offset + pair.as_span().start();
        Span::new(start, start + pair.as_str().trim_end().len())
    }

    fn internal(&self, pair: &Pair<'_, Rule>) -> Diagnostic {
        Diagnostic::new(
            Code::E0001,
            self.span(pair),
            format!(
                "internal error: unexpected {:?} in the parse tree",
                pair.as_rule()
            ),
        )
        .with_help("this is a bug in choreoc; please report it with the spec that caused it")
    }

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: CompactString::new(pair.as_str()),
            span: self.span(&pair),
        }
    }

    /// Lowers the `file` rule.
    pub(super) fn file(&self, mut pairs: Pairs<'_, Rule>) -> Result<File> {
        let Some(file) = pairs.next() else {
            return Err(Diagnostic::new(Code::E0001, Span::default(), "empty parse").into());
        };
        let mut prefix = Prefix::default();
        let mut choreography = None;
        let mut trailing = Prefix::default();
        for pair in file.into_inner() {
            match pair.as_rule() {
                Rule::doc | Rule::attribute if choreography.is_none() => {
                    self.push_prefix(&mut prefix, pair)?;
                }
                Rule::doc | Rule::attribute => self.push_prefix(&mut trailing, pair)?,
                Rule::choreography => {
                    choreography = Some(self.lower_choreography(std::mem::take(&mut prefix), pair)?)
                }
                Rule::EOI => {}
                _ => return Err(self.internal(&pair).into()),
            }
        }
        let Some(choreography) = choreography else {
            return Err(
                Diagnostic::new(Code::E0001, Span::default(), "expected `choreography`").into(),
            );
        };
        Ok(File {
            choreography,
            trailing_attrs: trailing.attrs,
        })
    }

    fn push_prefix(&self, prefix: &mut Prefix, pair: Pair<'_, Rule>) -> Result<()> {
        match pair.as_rule() {
            Rule::doc => {
                let line = pair
                    .into_inner()
                    .next()
                    .map(|p| p.as_str())
                    .unwrap_or_default();
                let line = line.strip_prefix(' ').unwrap_or(line);
                prefix.docs.lines.push(line.trim_end().to_string());
            }
            Rule::attribute => {
                let attr = self.attribute(pair)?;
                // Mostly one attribute: room for exactly that many, where a
                // growing list would start at four.
                let len = prefix.attrs.len();
                if len == prefix.attrs.capacity() {
                    prefix.attrs.reserve_exact(len.max(1));
                }
                prefix.attrs.push(attr);
            }
            _ => return Err(self.internal(&pair).into()),
        }
        Ok(())
    }

    fn attribute(&self, pair: Pair<'_, Rule>) -> Result<Attribute> {
        let whole = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = match inner.next() {
            Some(p) if p.as_rule() == Rule::ident => self.ident(p),
            Some(p) => return Err(self.internal(&p).into()),
            None => {
                return Err(
                    Diagnostic::new(Code::E0001, whole, "expected an attribute name").into(),
                )
            }
        };
        let args = match inner.next() {
            None => None,
            Some(args) => Some({
                let args = args.into_inner();
                let mut out = Vec::with_capacity(args.len());
                for arg in args {
                    out.push(match arg.as_rule() {
                        Rule::named_arg => {
                            let mut parts = arg.clone().into_inner();
                            match (parts.next(), parts.next()) {
                                (Some(n), Some(v)) => Ok(AttrArg::Named {
                                    name: self.ident(n),
                                    value: self.literal(v)?,
                                }),
                                _ => Err(self.internal(&arg).into()),
                            }
                        }
                        _ => self.literal(arg).map(AttrArg::Positional),
                    }?);
                }
                out
            }),
        };
        Ok(Attribute {
            name,
            args,
            span: whole,
        })
    }

    fn literal(&self, pair: Pair<'_, Rule>) -> Result<Literal> {
        let sp = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::string => {
                let body = pair
                    .clone()
                    .into_inner()
                    .next()
                    .ok_or_else(|| self.internal(&pair))?;
                LiteralKind::String(unescape(
                    body.as_str(),
                    self.offset + body.as_span().start(),
                )?)
            }
            Rule::integer => LiteralKind::Integer(pair.as_str().to_string()),
            Rule::duration => {
                let s = pair.as_str();
                let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
                let unit = match &s[digits_end..] {
                    "ms" => DurationUnit::Millis,
                    "s" => DurationUnit::Seconds,
                    "m" => DurationUnit::Minutes,
                    "h" => DurationUnit::Hours,
                    _ => return Err(self.internal(&pair).into()),
                };
                LiteralKind::Duration {
                    digits: s[..digits_end].to_string(),
                    unit,
                }
            }
            Rule::ident => LiteralKind::Ident(pair.as_str().to_string()),
            _ => return Err(self.internal(&pair).into()),
        };
        Ok(Literal { kind, span: sp })
    }

    /// Lowers the `head` or `tail` piece of a file parsed in two pieces.
    pub(super) fn piece(&self, mut pairs: Pairs<'_, Rule>) -> Result<Piece> {
        let Some(top) = pairs.next() else {
            return Err(Diagnostic::new(Code::E0001, Span::default(), "empty parse").into());
        };
        let mut piece = Piece::default();
        // Docs and attributes wait for what follows: an item takes them as
        // its own; the closing brace leaves them qualifying nothing.
        let mut pending = Prefix::default();
        for pair in top.into_inner() {
            match pair.as_rule() {
                Rule::doc | Rule::attribute if piece.end.is_some() => {
                    self.push_prefix(&mut piece.after, pair)?
                }
                Rule::doc | Rule::attribute => self.push_prefix(&mut pending, pair)?,
                Rule::kw_choreography => {
                    piece.start = Some(self.span(&pair).start());
                    piece.before = std::mem::take(&mut pending);
                }
                Rule::ident => piece.name = Some(self.ident(pair)),
                Rule::close => {
                    piece.end = Some(self.span(&pair).end());
                    piece.inside = std::mem::take(&mut pending);
                }
                Rule::EOI => {}
                _ => piece
                    .items
                    .push(self.item(std::mem::take(&mut pending), pair)?),
            }
        }
        if piece.end.is_none() {
            // A head or middle piece: docs after its last item would belong
            // to the next piece's first item, which the split never
            // separates from them; `join` refuses a piece that has some.
            piece.inside = pending;
        }
        Ok(piece)
    }

    fn lower_choreography(&self, prefix: Prefix, pair: Pair<'_, Rule>) -> Result<Choreography> {
        let whole = self.span(&pair);
        let mut name = None;
        let mut items = Vec::new();
        let mut pending = Prefix::default();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_choreography => {}
                Rule::ident => name = Some(self.ident(p)),
                Rule::doc | Rule::attribute => self.push_prefix(&mut pending, p)?,
                _ => items.push(self.item(std::mem::take(&mut pending), p)?),
            }
        }
        let trailing = pending;
        let name = name.ok_or_else(|| Diagnostic::new(Code::E0001, whole, "expected a name"))?;
        Ok(Choreography {
            prefix,
            name,
            items,
            trailing_attrs: trailing.attrs,
            span: whole,
        })
    }

    /// Lowers an item pair, with the docs and attributes written before it.
    fn item(&self, prefix: Prefix, item: Pair<'_, Rule>) -> Result<Item> {
        let whole = self.span(&item);
        let rule = item.as_rule();
        let mut inner = item.clone().into_inner();
        let keyword_span = inner.next().map(|k| self.span(&k)).unwrap_or(whole);
        let kind = match rule {
            Rule::version_item => {
                let lit = inner.next().ok_or_else(|| self.internal(&item))?;
                ItemKind::Version(self.literal(lit)?)
            }
            Rule::key_item => {
                let name = inner.next().ok_or_else(|| self.internal(&item))?;
                let ty = inner.next().ok_or_else(|| self.internal(&item))?;
                ItemKind::Key {
                    name: self.ident(name),
                    ty: self.type_expr(ty)?,
                }
            }
            Rule::type_item | Rule::command_item | Rule::event_item => {
                let name = inner.next().ok_or_else(|| self.internal(&item))?;
                let (fields, trailing_attrs) = self.field_list(inner)?;
                let record = Record {
                    name: self.ident(name),
                    fields,
                    trailing_attrs,
                };
                match rule {
                    Rule::type_item => ItemKind::Type(record),
                    Rule::command_item => ItemKind::Command(record),
                    _ => ItemKind::Event(record),
                }
            }
            Rule::enum_item => {
                let name = inner.next().ok_or_else(|| self.internal(&item))?;
                let (variants, trailing_attrs) = self.variant_list(inner)?;
                ItemKind::Enum {
                    name: self.ident(name),
                    variants,
                    trailing_attrs,
                }
            }
            Rule::participant_item => {
                let name = inner.next().ok_or_else(|| self.internal(&item))?;
                let mut reactions = Vec::with_capacity(count(&inner, Rule::reaction));
                let mut trailing = Prefix::default();
                for p in inner {
                    match p.as_rule() {
                        Rule::reaction => reactions.push(self.reaction(p)?),
                        Rule::doc | Rule::attribute => self.push_prefix(&mut trailing, p)?,
                        _ => return Err(self.internal(&p).into()),
                    }
                }
                ItemKind::Participant {
                    name: self.ident(name),
                    reactions,
                    trailing_attrs: trailing.attrs,
                }
            }
            _ => return Err(self.internal(&item).into()),
        };
        Ok(Item {
            prefix,
            kind,
            keyword_span,
            span: whole,
        })
    }

    /// Checks that two list entries are separated by a comma or a newline.
    fn check_separated(&self, prev_end: Option<(usize, bool)>, next: Span) -> Result<()> {
        if let Some((end, had_comma)) = prev_end {
            let between = self.text.get(end..next.start()).unwrap_or("");
            if !had_comma && !between.contains('\n') {
                return Err(Diagnostic::new(
                    Code::E0001,
                    next,
                    "expected `,` or a newline before this entry",
                )
                .with_primary_message("expected `,` or a newline before this")
                .with_help("fields and variants are separated by commas or newlines")
                .into());
            }
        }
        Ok(())
    }

    /// Lowers the fields of a record (the pairs after its name).
    fn field_list(&self, pairs: Pairs<'_, Rule>) -> Result<(Vec<Field>, ThinVec<Attribute>)> {
        let mut fields: Vec<Field> = Vec::with_capacity(count(&pairs, Rule::field));
        let mut prev: Option<(usize, bool)> = None;
        let mut trailing = Prefix::default();
        for p in pairs {
            match p.as_rule() {
                Rule::field => {
                    let whole = self.span(&p);
                    let mut prefix = Prefix::default();
                    let mut name = None;
                    let mut ty = None;
                    for part in p.into_inner() {
                        match part.as_rule() {
                            Rule::doc | Rule::attribute => self.push_prefix(&mut prefix, part)?,
                            Rule::ident => name = Some(self.ident(part)),
                            Rule::type_expr => ty = Some(self.type_expr(part)?),
                            _ => return Err(self.internal(&part).into()),
                        }
                    }
                    let (Some(name), Some(ty)) = (name, ty) else {
                        return Err(Diagnostic::new(Code::E0001, whole, "expected a field").into());
                    };
                    self.check_separated(prev, name.span)?;
                    prev = Some((whole.end(), false));
                    fields.push(Field {
                        prefix,
                        name,
                        ty,
                        span: whole,
                    });
                }
                Rule::comma => {
                    if let Some((_, had)) = prev.as_mut() {
                        *had = true;
                    }
                }
                Rule::doc | Rule::attribute => self.push_prefix(&mut trailing, p)?,
                _ => return Err(self.internal(&p).into()),
            }
        }
        Ok((fields, trailing.attrs))
    }

    /// Lowers the variants of an enum (the pairs after its name).
    fn variant_list(&self, pairs: Pairs<'_, Rule>) -> Result<(Vec<Variant>, ThinVec<Attribute>)> {
        let mut variants: Vec<Variant> = Vec::with_capacity(count(&pairs, Rule::variant));
        let mut prev: Option<(usize, bool)> = None;
        let mut trailing = Prefix::default();
        for p in pairs {
            match p.as_rule() {
                Rule::variant => {
                    let whole = self.span(&p);
                    let mut prefix = Prefix::default();
                    let mut name = None;
                    for part in p.into_inner() {
                        match part.as_rule() {
                            Rule::doc | Rule::attribute => self.push_prefix(&mut prefix, part)?,
                            Rule::ident => name = Some(self.ident(part)),
                            _ => return Err(self.internal(&part).into()),
                        }
                    }
                    let Some(name) = name else {
                        return Err(
                            Diagnostic::new(Code::E0001, whole, "expected a variant").into()
                        );
                    };
                    self.check_separated(prev, name.span)?;
                    prev = Some((whole.end(), false));
                    variants.push(Variant { prefix, name });
                }
                Rule::comma => {
                    if let Some((_, had)) = prev.as_mut() {
                        *had = true;
                    }
                }
                Rule::doc | Rule::attribute => self.push_prefix(&mut trailing, p)?,
                _ => return Err(self.internal(&p).into()),
            }
        }
        Ok((variants, trailing.attrs))
    }

    fn type_expr(&self, pair: Pair<'_, Rule>) -> Result<TypeExpr> {
        let whole = self.span(&pair);
        let mut name = None;
        let mut args: Option<(Vec<TypeExpr>, Span)> = None;
        let mut optional = false;
        for p in pair.clone().into_inner() {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::type_args => {
                    let sp = self.span(&p);
                    let inner = p
                        .into_inner()
                        .map(|p| self.type_expr(p))
                        .collect::<Result<Vec<_>>>()?;
                    args = Some((inner, sp));
                }
                Rule::optional => optional = true,
                _ => return Err(self.internal(&p).into()),
            }
        }
        let name = name.ok_or_else(|| self.internal(&pair))?;
        let base = match (name.name.as_str(), args) {
            (_, None) => TypeExpr::Named(name),
            ("list", Some((mut inner, sp))) if inner.len() == 1 => {
                TypeExpr::List(Box::new(inner.remove(0)), name.span.to(sp))
            }
            ("map", Some((mut inner, sp))) if inner.len() == 2 => {
                let value = inner.remove(1);
                match &inner[0] {
                    TypeExpr::Named(key) if key.name == "string" => {}
                    other => {
                        return Err(Diagnostic::new(
                            Code::E0001,
                            other.span(),
                            "map keys are strings: expected `string`",
                        )
                        .with_primary_message("expected `string`")
                        .with_help("write `map<string, T>`")
                        .into())
                    }
                }
                TypeExpr::Map(Box::new(value), name.span.to(sp))
            }
            ("list", Some((_, sp))) => {
                return Err(
                    Diagnostic::new(Code::E0001, sp, "`list` takes exactly one type")
                        .with_help("write `list<T>`")
                        .into(),
                )
            }
            ("map", Some((_, sp))) => {
                return Err(Diagnostic::new(
                    Code::E0001,
                    sp,
                    "`map` takes a key type and a value type",
                )
                .with_help("write `map<string, T>`")
                .into())
            }
            (other, Some((_, sp))) => {
                return Err(Diagnostic::new(
                    Code::E0001,
                    sp,
                    format!("`{other}` takes no type arguments"),
                )
                .with_help("only `list<T>` and `map<string, T>` take type arguments")
                .into())
            }
        };
        Ok(if optional {
            TypeExpr::Optional(Box::new(base), whole)
        } else {
            base
        })
    }

    fn reaction(&self, pair: Pair<'_, Rule>) -> Result<Reaction> {
        let whole = self.span(&pair);
        let mut prefix = Prefix::default();
        let mut trigger = None;
        let mut outcomes = None;
        let mut compensates = None;
        let mut start = whole.start;
        let inner = pair.into_inner();
        let outcome_count = count(&inner, Rule::outcome);
        for p in inner {
            match p.as_rule() {
                Rule::doc | Rule::attribute => self.push_prefix(&mut prefix, p)?,
                Rule::kw_on => start = self.span(&p).start,
                Rule::trigger => trigger = Some(self.lower_trigger(p)?),
                Rule::outcome => outcomes
                    .get_or_insert_with(|| Vec::with_capacity(outcome_count))
                    .push(self.outcome(p)?),
                Rule::compensates => {
                    let name = p
                        .clone()
                        .into_inner()
                        .find(|q| q.as_rule() == Rule::ident)
                        .ok_or_else(|| self.internal(&p))?;
                    compensates = Some(self.ident(name));
                }
                _ => return Err(self.internal(&p).into()),
            }
        }
        let trigger =
            trigger.ok_or_else(|| Diagnostic::new(Code::E0001, whole, "expected a trigger"))?;
        Ok(Reaction {
            prefix,
            trigger,
            outcomes,
            compensates,
            span: Span {
                start,
                end: whole.end,
            },
        })
    }

    fn lower_trigger(&self, pair: Pair<'_, Rule>) -> Result<Trigger> {
        let whole = self.span(&pair);
        let inner = pair.into_inner();
        let named = inner
            .clone()
            .map(|p| match p.as_rule() {
                Rule::any_tail | Rule::all_tail => p.into_inner().len(),
                _ => 1,
            })
            .sum();
        let mut names = ThinVec::with_capacity(named);
        let mut kind = TriggerKind::Any;
        for p in inner {
            match p.as_rule() {
                Rule::ident => names.push(self.ident(p)),
                Rule::any_tail => names.extend(p.into_inner().map(|p| self.ident(p))),
                Rule::all_tail => {
                    kind = TriggerKind::All;
                    names.extend(p.into_inner().map(|p| self.ident(p)));
                }
                _ => return Err(self.internal(&p).into()),
            }
        }
        Ok(Trigger {
            kind,
            names,
            span: whole,
        })
    }

    fn outcome(&self, pair: Pair<'_, Rule>) -> Result<Outcome> {
        let whole = self.span(&pair);
        let names: ThinVec<Ident> = pair.into_inner().map(|p| self.ident(p)).collect();
        if let Some(none) = names.iter().find(|n| n.name == "none") {
            if names.len() > 1 {
                return Err(Diagnostic::new(
                    Code::E0001,
                    none.span,
                    "`none` stands alone as an outcome",
                )
                .with_primary_message("cannot be combined with `+`")
                .with_help("`none` means the reaction emits nothing; write it as its own alternative: `-> A | none`")
                .into());
            }
            return Ok(Outcome::None(whole));
        }
        Ok(Outcome::Emit(names, whole))
    }
}
