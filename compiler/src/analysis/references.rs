//! What refers to what: per record, enum and message, whether anything
//! other than its declaration refers to it, and every reference to a
//! deprecated item. W0301 and W0302 report from it; E0203 leaves
//! unreferenced messages to W0301.

use crate::model::{Deprecation, MessageId, Spec, Type};
use crate::source::Span;

/// The references of a spec, gathered in one pass over its fields and
/// reactions.
pub(crate) struct References<'s> {
    /// Per record: referred to by a field.
    pub records: Vec<bool>,
    /// Per enum: referred to by a field.
    pub enums: Vec<bool>,
    /// Per message: referred to by a reaction.
    pub messages: Vec<bool>,
    /// Each reference to a deprecated item: where, what (e.g. "type `A`"),
    /// and its deprecation; fields first, then reactions, in order.
    pub deprecated_uses: Vec<(Span, String, &'s Deprecation)>,
}

impl<'s> References<'s> {
    pub fn new(spec: &'s Spec) -> Self {
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
                            deprecated_uses.push((
                                f.ty_span,
                                format!("type `{}`", r.name.text),
                                dep,
                            ));
                        }
                        break;
                    }
                    Type::Enum(id) => {
                        enum_used[id.index()] = true;
                        let e = spec.enumeration(*id);
                        if let Some(dep) = &e.deprecated {
                            deprecated_uses.push((
                                f.ty_span,
                                format!("enum `{}`", e.name.text),
                                dep,
                            ));
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
        References {
            records: record_used,
            enums: enum_used,
            messages: message_used,
            deprecated_uses,
        }
    }
}
