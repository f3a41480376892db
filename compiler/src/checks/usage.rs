//! W0301 (declared and never used) and W0302 (use of a deprecated
//! item), from the references the model's analysis gathered.

use super::Facts;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Span;

/// Reports both warnings. Unused declarations are not reported when the
/// declarations have errors: an unknown name is often a misspelt reference
/// to the very item that would then look unused.
pub(crate) fn check(facts: &Facts<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = facts.spec;
    let references = facts.references;
    let (record_used, enum_used, message_used) =
        (&references.records, &references.enums, &references.messages);
    for (span, what, dep) in &references.deprecated_uses {
        let mut d = Diagnostic::new(Code::W0302, *span, format!("use of deprecated {what}"))
            .with_label(dep.span, "deprecated here");
        if let Some(reason) = &dep.reason {
            d = d.with_primary_message(reason.clone());
        }
        diags.push(d);
    }
    if !facts.declarations_ok {
        return;
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
