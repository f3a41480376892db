//! Commands and events that come and go, their HTTP routes, and the
//! correlation key.

use super::names::Names;
use super::{Finding, Rule};
use crate::model::{CheckedSpec, HttpRoute, Message};

pub(super) fn compare(
    old: &CheckedSpec,
    new: &CheckedSpec,
    (old_names, new_names): &(Names<'_>, Names<'_>),
    out: &mut Vec<Finding>,
) {
    key(old, new, out);
    for m in &old.messages {
        let kind = m.kind.as_str();
        let name = &m.name.text;
        match new_names.counterpart(m) {
            None => {
                out.push(
                    Finding::new(
                        Rule::MessageRemoved,
                        format!("{kind} `{name}` is removed"),
                        Some(m.name.span),
                        None,
                    )
                    .affecting(vec![name.to_string()]),
                );
            }
            Some(n) => route(m, n, out),
        }
    }
    for m in &new.messages {
        if old_names.counterpart(m).is_none() {
            let kind = m.kind.as_str();
            out.push(
                Finding::new(
                    Rule::MessageAdded,
                    format!("{kind} `{}` is added", m.name.text),
                    None,
                    Some(m.name.span),
                )
                .affecting(vec![m.name.text.to_string()]),
            );
        }
    }
}

/// `POST /orders/{}`: the route as an HTTP client sees it, whatever the
/// placeholder is called (it can only name the key).
fn shown(route: &HttpRoute) -> String {
    let mut path = String::with_capacity(route.path.len());
    let mut in_braces = false;
    for c in route.path.chars() {
        match c {
            '{' => {
                in_braces = true;
                path.push_str("{}");
            }
            '}' => in_braces = false,
            _ if in_braces => {}
            _ => path.push(c),
        }
    }
    format!("{} {path}", route.method.as_str())
}

fn route(old: &Message, new: &Message, out: &mut Vec<Finding>) {
    let name = &old.name.text;
    let finding = match (old.http.as_deref(), new.http.as_deref()) {
        (Some(o), Some(n)) if shown(o) != shown(n) => Finding::new(
            Rule::HttpRouteChanged,
            format!(
                "the route of command `{name}` changes from `{}` to `{}`",
                shown(o),
                shown(n)
            ),
            Some(o.span),
            Some(n.span),
        ),
        (Some(o), None) => Finding::new(
            Rule::HttpRouteChanged,
            format!("the route `{}` of command `{name}` is removed", shown(o)),
            Some(o.span),
            Some(new.name.span),
        ),
        (None, Some(n)) => Finding::new(
            Rule::HttpRouteAdded,
            format!("command `{name}` gets the route `{}`", shown(n)),
            Some(old.name.span),
            Some(n.span),
        ),
        _ => return,
    };
    out.push(finding.affecting(vec![name.to_string()]));
}

fn key(old: &CheckedSpec, new: &CheckedSpec, out: &mut Vec<Finding>) {
    let (o, n) = (old.key(), new.key());
    if o.ty != n.ty {
        out.push(Finding::new(
            Rule::KeyChanged,
            format!(
                "the correlation key changes type from `{}` to `{}`",
                o.ty.name(),
                n.ty.name()
            ),
            Some(o.span),
            Some(n.span),
        ));
    } else if o.name.text != n.name.text {
        out.push(Finding::new(
            Rule::KeyRenamed,
            format!(
                "the correlation key `{}` is renamed `{}`",
                o.name.text, n.name.text
            ),
            Some(o.name.span),
            Some(n.name.span),
        ));
    }
}
