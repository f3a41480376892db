//! W0301 (declared and never used, rule 13) and W0302 (use of a deprecated
//! item).

use crate::diagnostic::{Code, Diagnostic};
use crate::model::{Deprecation, MessageId, Spec, Type};
use crate::source::Span;

/// Reports both warnings; returns, per message, whether anything other than
/// its declaration refers to it. Unused declarations are not reported when
/// the declarations have errors: an unknown name is often a misspelt
/// reference to the very item that would then look unused.
pub(crate) fn check<'s>(
    spec: &'s Spec,
    declarations_ok: bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let mut record_used = vec![false; spec.records.len()];
    let mut enum_used = vec![false; spec.enums.len()];
    let mut message_used = vec![false; spec.messages.len()];
    let mut deprecated_uses: Vec<(Span, String, &'s Deprecation)> = Vec::new();

    for f in spec.fields() {
        let mut ty = &f.ty;
        loop {
            match ty {
                Type::List(inner) | Type::Map(inner) | Type::Optional(inner) => ty = inner,
                Type::Record(id) => {
                    record_used[id.index()] = true;
                    let r = spec.record(*id);
                    if let Some(dep) = &r.deprecated {
                        deprecated_uses.push((f.ty_span, format!("type `{}`", r.name.text), dep));
                    }
                    break;
                }
                Type::Enum(id) => {
                    enum_used[id.index()] = true;
                    let e = spec.enumeration(*id);
                    if let Some(dep) = &e.deprecated {
                        deprecated_uses.push((f.ty_span, format!("enum `{}`", e.name.text), dep));
                    }
                    break;
                }
                Type::Scalar(_) | Type::Error => break,
            }
        }
    }
    // Deprecated messages are rare: when there are none, a reference need
    // not read its message (on a large spec, a trip to memory each).
    let any_deprecated = spec.messages.iter().any(|m| m.deprecated.is_some());
    let mut use_message =
        |id: MessageId, span: Span, uses: &mut Vec<(Span, String, &'s Deprecation)>| {
            message_used[id.index()] = true;
            if !any_deprecated {
                return;
            }
            let m = spec.message(id);
            if let Some(dep) = &m.deprecated {
                uses.push((span, format!("{} `{}`", m.kind.as_str(), m.name.text), dep));
            }
        };
    for r in &spec.reactions {
        for t in &r.trigger.messages {
            use_message(t.id, t.span, &mut deprecated_uses);
        }
        for o in r.outcomes() {
            for e in &o.events {
                use_message(e.id, e.span, &mut deprecated_uses);
            }
        }
        if let Some(c) = r.compensates {
            use_message(c.id, c.span, &mut deprecated_uses);
        }
    }

    for (span, what, dep) in deprecated_uses {
        let mut d = Diagnostic::new(Code::W0302, span, format!("use of deprecated {what}"))
            .with_label(dep.span, "deprecated here");
        if let Some(reason) = &dep.reason {
            d = d.with_primary_message(reason.clone());
        }
        diags.push(d);
    }
    if !declarations_ok {
        return message_used;
    }
    for (i, r) in spec.records.iter().enumerate() {
        if !record_used[i] {
            diags.push(unused("type", &r.name.text, r.name.span));
        }
    }
    for (i, e) in spec.enums.iter().enumerate() {
        if !enum_used[i] {
            diags.push(unused("enum", &e.name.text, e.name.span));
        }
    }
    for id in spec.events() {
        let m = spec.message(id);
        if !message_used[id.index()] {
            diags.push(unused("event", &m.name.text, m.name.span));
        } else if m.external.is_some() && spec.flow.consumers(id).is_empty() {
            diags.push(
                Diagnostic::new(
                    Code::W0301,
                    m.name.span,
                    format!("external event `{}` is never consumed", m.name.text),
                )
                .with_primary_message("nothing reacts to it")
                .with_help("react to it in a participant, or remove it"),
            );
        }
    }
    message_used
}

fn unused(what: &str, name: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::W0301,
        span,
        format!("{what} `{name}` is declared but never used"),
    )
    .with_primary_message("nothing refers to it")
    .with_help("remove it, or refer to it where it was meant to be used")
}
