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

/// The span of a pair without trailing whitespace: pest's implicit
/// whitespace is skipped before an optional part is tried, and stays in the
/// pair when the part is absent.
fn span(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.start() + pair.as_str().trim_end().len())
}

fn internal(pair: &Pair<'_, Rule>) -> Diagnostic {
    Diagnostic::new(
        Code::E0001,
        span(pair),
        format!(
            "internal error: unexpected {:?} in the parse tree",
            pair.as_rule()
        ),
    )
    .with_help("this is a bug in choreoc; please report it with the spec that caused it")
}

fn ident(pair: Pair<'_, Rule>) -> Ident {
    Ident {
        name: pair.as_str().to_string(),
        span: span(&pair),
    }
}

/// Lowers the `file` rule.
pub(super) fn file(text: &str, mut pairs: Pairs<'_, Rule>) -> Result<File> {
    let Some(file) = pairs.next() else {
        return Err(Diagnostic::new(Code::E0001, Span::default(), "empty parse").into());
    };
    let mut prefix = Prefix::default();
    let mut choreography = None;
    let mut trailing = Prefix::default();
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::doc | Rule::attribute if choreography.is_none() => {
                push_prefix(&mut prefix, pair)?;
            }
            Rule::doc | Rule::attribute => push_prefix(&mut trailing, pair)?,
            Rule::choreography => {
                choreography = Some(lower_choreography(text, std::mem::take(&mut prefix), pair)?)
            }
            Rule::EOI => {}
            _ => return Err(internal(&pair).into()),
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

fn push_prefix(prefix: &mut Prefix, pair: Pair<'_, Rule>) -> Result<()> {
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
        Rule::attribute => prefix.attrs.push(attribute(pair)?),
        _ => return Err(internal(&pair).into()),
    }
    Ok(())
}

fn attribute(pair: Pair<'_, Rule>) -> Result<Attribute> {
    let whole = span(&pair);
    let mut inner = pair.into_inner();
    let name = match inner.next() {
        Some(p) if p.as_rule() == Rule::ident => ident(p),
        Some(p) => return Err(internal(&p).into()),
        None => {
            return Err(Diagnostic::new(Code::E0001, whole, "expected an attribute name").into())
        }
    };
    let args = match inner.next() {
        None => None,
        Some(args) => Some(
            args.into_inner()
                .map(|arg| match arg.as_rule() {
                    Rule::named_arg => {
                        let mut parts = arg.clone().into_inner();
                        match (parts.next(), parts.next()) {
                            (Some(n), Some(v)) => Ok(AttrArg::Named {
                                name: ident(n),
                                value: literal(v)?,
                            }),
                            _ => Err(internal(&arg).into()),
                        }
                    }
                    _ => literal(arg).map(AttrArg::Positional),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    Ok(Attribute {
        name,
        args,
        span: whole,
    })
}

fn literal(pair: Pair<'_, Rule>) -> Result<Literal> {
    let sp = span(&pair);
    let kind = match pair.as_rule() {
        Rule::string => {
            let body = pair
                .clone()
                .into_inner()
                .next()
                .ok_or_else(|| internal(&pair))?;
            LiteralKind::String(unescape(body.as_str(), body.as_span().start())?)
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
                _ => return Err(internal(&pair).into()),
            };
            LiteralKind::Duration {
                digits: s[..digits_end].to_string(),
                unit,
            }
        }
        Rule::ident => LiteralKind::Ident(pair.as_str().to_string()),
        _ => return Err(internal(&pair).into()),
    };
    Ok(Literal { kind, span: sp })
}

fn lower_choreography(text: &str, prefix: Prefix, pair: Pair<'_, Rule>) -> Result<Choreography> {
    let whole = span(&pair);
    let mut name = None;
    let mut items = Vec::new();
    let mut trailing = Prefix::default();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::kw_choreography => {}
            Rule::ident => name = Some(ident(p)),
            Rule::member => items.push(member(text, p)?),
            Rule::doc | Rule::attribute => push_prefix(&mut trailing, p)?,
            _ => return Err(internal(&p).into()),
        }
    }
    let name = name.ok_or_else(|| Diagnostic::new(Code::E0001, whole, "expected a name"))?;
    Ok(Choreography {
        prefix,
        name,
        items,
        trailing_attrs: trailing.attrs,
        span: whole,
    })
}

fn member(text: &str, pair: Pair<'_, Rule>) -> Result<Item> {
    let mut prefix = Prefix::default();
    let mut item = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::doc | Rule::attribute => push_prefix(&mut prefix, p)?,
            _ => item = Some(p),
        }
    }
    let Some(item) = item else {
        return Err(Diagnostic::new(Code::E0001, Span::default(), "expected an item").into());
    };
    let whole = span(&item);
    let rule = item.as_rule();
    let mut inner = item.clone().into_inner();
    let keyword_span = inner.next().map(|k| span(&k)).unwrap_or(whole);
    let kind = match rule {
        Rule::version_item => {
            let lit = inner.next().ok_or_else(|| internal(&item))?;
            ItemKind::Version(literal(lit)?)
        }
        Rule::key_item => {
            let name = inner.next().ok_or_else(|| internal(&item))?;
            let ty = inner.next().ok_or_else(|| internal(&item))?;
            ItemKind::Key {
                name: ident(name),
                ty: type_expr(ty)?,
            }
        }
        Rule::type_item | Rule::command_item | Rule::event_item => {
            let name = inner.next().ok_or_else(|| internal(&item))?;
            let fields = inner.next().ok_or_else(|| internal(&item))?;
            let (fields, trailing_attrs) = field_list(text, fields)?;
            let record = Record {
                name: ident(name),
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
            let name = inner.next().ok_or_else(|| internal(&item))?;
            let variants = inner.next().ok_or_else(|| internal(&item))?;
            let (variants, trailing_attrs) = variant_list(text, variants)?;
            ItemKind::Enum {
                name: ident(name),
                variants,
                trailing_attrs,
            }
        }
        Rule::participant_item => {
            let name = inner.next().ok_or_else(|| internal(&item))?;
            let mut reactions = Vec::new();
            let mut trailing = Prefix::default();
            for p in inner {
                match p.as_rule() {
                    Rule::reaction => reactions.push(reaction(p)?),
                    Rule::doc | Rule::attribute => push_prefix(&mut trailing, p)?,
                    _ => return Err(internal(&p).into()),
                }
            }
            ItemKind::Participant {
                name: ident(name),
                reactions,
                trailing_attrs: trailing.attrs,
            }
        }
        _ => return Err(internal(&item).into()),
    };
    Ok(Item {
        prefix,
        kind,
        keyword_span,
        span: whole,
    })
}

/// Checks that two list entries are separated by a comma or a newline.
fn check_separated(text: &str, prev_end: Option<(usize, bool)>, next: Span) -> Result<()> {
    if let Some((end, had_comma)) = prev_end {
        let between = text.get(end..next.start).unwrap_or("");
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

fn field_list(text: &str, pair: Pair<'_, Rule>) -> Result<(Vec<Field>, Vec<Attribute>)> {
    let mut fields: Vec<Field> = Vec::new();
    let mut prev: Option<(usize, bool)> = None;
    let mut trailing = Prefix::default();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::field => {
                let whole = span(&p);
                let mut prefix = Prefix::default();
                let mut name = None;
                let mut ty = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::doc | Rule::attribute => push_prefix(&mut prefix, part)?,
                        Rule::ident => name = Some(ident(part)),
                        Rule::type_expr => ty = Some(type_expr(part)?),
                        _ => return Err(internal(&part).into()),
                    }
                }
                let (Some(name), Some(ty)) = (name, ty) else {
                    return Err(Diagnostic::new(Code::E0001, whole, "expected a field").into());
                };
                check_separated(text, prev, name.span)?;
                prev = Some((whole.end, false));
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
            Rule::doc | Rule::attribute => push_prefix(&mut trailing, p)?,
            _ => return Err(internal(&p).into()),
        }
    }
    Ok((fields, trailing.attrs))
}

fn variant_list(text: &str, pair: Pair<'_, Rule>) -> Result<(Vec<Variant>, Vec<Attribute>)> {
    let mut variants: Vec<Variant> = Vec::new();
    let mut prev: Option<(usize, bool)> = None;
    let mut trailing = Prefix::default();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::variant => {
                let whole = span(&p);
                let mut prefix = Prefix::default();
                let mut name = None;
                for part in p.into_inner() {
                    match part.as_rule() {
                        Rule::doc | Rule::attribute => push_prefix(&mut prefix, part)?,
                        Rule::ident => name = Some(ident(part)),
                        _ => return Err(internal(&part).into()),
                    }
                }
                let Some(name) = name else {
                    return Err(Diagnostic::new(Code::E0001, whole, "expected a variant").into());
                };
                check_separated(text, prev, name.span)?;
                prev = Some((whole.end, false));
                variants.push(Variant { prefix, name });
            }
            Rule::comma => {
                if let Some((_, had)) = prev.as_mut() {
                    *had = true;
                }
            }
            Rule::doc | Rule::attribute => push_prefix(&mut trailing, p)?,
            _ => return Err(internal(&p).into()),
        }
    }
    Ok((variants, trailing.attrs))
}

fn type_expr(pair: Pair<'_, Rule>) -> Result<TypeExpr> {
    let whole = span(&pair);
    let mut inner = pair.clone().into_inner();
    let atom = inner.next().ok_or_else(|| internal(&pair))?;
    let base = match atom.as_rule() {
        Rule::named_type => {
            let id = atom
                .clone()
                .into_inner()
                .next()
                .ok_or_else(|| internal(&atom))?;
            TypeExpr::Named(ident(id))
        }
        Rule::list_type => {
            let sp = span(&atom);
            let elem = atom
                .clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::type_expr)
                .ok_or_else(|| internal(&atom))?;
            TypeExpr::List(Box::new(type_expr(elem)?), sp)
        }
        Rule::map_type => {
            let sp = span(&atom);
            let value = atom
                .clone()
                .into_inner()
                .find(|p| p.as_rule() == Rule::type_expr)
                .ok_or_else(|| internal(&atom))?;
            TypeExpr::Map(Box::new(type_expr(value)?), sp)
        }
        _ => return Err(internal(&atom).into()),
    };
    Ok(match inner.next() {
        Some(opt) if opt.as_rule() == Rule::optional => TypeExpr::Optional(Box::new(base), whole),
        Some(other) => return Err(internal(&other).into()),
        None => base,
    })
}

fn reaction(pair: Pair<'_, Rule>) -> Result<Reaction> {
    let whole = span(&pair);
    let mut prefix = Prefix::default();
    let mut trigger = None;
    let mut outcomes = None;
    let mut compensates = None;
    let mut start = whole.start;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::doc | Rule::attribute => push_prefix(&mut prefix, p)?,
            Rule::kw_on => start = span(&p).start,
            Rule::trigger => trigger = Some(lower_trigger(p)?),
            Rule::outcomes => {
                outcomes = Some(p.into_inner().map(outcome).collect::<Result<Vec<_>>>()?)
            }
            Rule::compensates => {
                let name = p
                    .clone()
                    .into_inner()
                    .find(|q| q.as_rule() == Rule::ident)
                    .ok_or_else(|| internal(&p))?;
                compensates = Some(ident(name));
            }
            _ => return Err(internal(&p).into()),
        }
    }
    let trigger =
        trigger.ok_or_else(|| Diagnostic::new(Code::E0001, whole, "expected a trigger"))?;
    Ok(Reaction {
        prefix,
        trigger,
        outcomes,
        compensates,
        span: Span::new(start, whole.end),
    })
}

fn lower_trigger(pair: Pair<'_, Rule>) -> Result<Trigger> {
    let whole = span(&pair);
    let mut names = Vec::new();
    let mut kind = TriggerKind::Any;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::ident => names.push(ident(p)),
            Rule::any_tail => names.extend(p.into_inner().map(ident)),
            Rule::all_tail => {
                kind = TriggerKind::All;
                names.extend(p.into_inner().map(ident));
            }
            _ => return Err(internal(&p).into()),
        }
    }
    Ok(Trigger {
        kind,
        names,
        span: whole,
    })
}

fn outcome(pair: Pair<'_, Rule>) -> Result<Outcome> {
    let whole = span(&pair);
    let mut names = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::kw_none => return Ok(Outcome::None(whole)),
            Rule::ident => names.push(ident(p)),
            _ => return Err(internal(&p).into()),
        }
    }
    Ok(Outcome::Emit(names, whole))
}
