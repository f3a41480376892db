//! W0300: naming conventions (compiler/explanations/W0300.md). UpperCamelCase is
//! `[A-Z][A-Za-z0-9]*`, snake_case is `[a-z][a-z0-9_]*`; the key is judged
//! as a field, the choreography's name as a type.

use super::Facts;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Name;
use heck::{ToSnakeCase, ToUpperCamelCase};

fn is_upper_camel(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

fn is_snake(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn check(facts: &Facts<'_>, diags: &mut Vec<Diagnostic>) {
    let spec = facts.spec;
    let camel = |what: &str, name: &Name, diags: &mut Vec<Diagnostic>| {
        if !is_upper_camel(&name.text) {
            let better = name.text.to_upper_camel_case();
            let mut d = Diagnostic::new(
                Code::W0300,
                name.span,
                format!("{what} `{}` should be written in UpperCamelCase", name.text),
            );
            if is_upper_camel(&better) {
                d = d.with_help(format!("rename it `{better}`"));
            }
            diags.push(d);
        }
    };
    camel("choreography", &spec.name, diags);
    for r in &spec.records {
        camel("type", &r.name, diags);
    }
    for e in &spec.enums {
        camel("enum", &e.name, diags);
        for v in &e.variants {
            camel("variant", &v.name, diags);
        }
    }
    for m in &spec.messages {
        camel(m.kind.as_str(), &m.name, diags);
    }
    for p in &spec.participants {
        camel("participant", &p.name, diags);
    }
    let snake = |what: &str, name: &Name, diags: &mut Vec<Diagnostic>| {
        if !is_snake(&name.text) {
            let better = name.text.to_snake_case();
            let mut d = Diagnostic::new(
                Code::W0300,
                name.span,
                format!("{what} `{}` should be written in snake_case", name.text),
            );
            if is_snake(&better) {
                d = d.with_help(format!("rename it `{better}`"));
            }
            diags.push(d);
        }
    };
    if let Some(k) = &spec.key {
        snake("key", &k.name, diags);
    }
    for f in spec.fields() {
        snake("field", &f.name, diags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        assert!(is_upper_camel("OrderPlaced"));
        assert!(is_upper_camel("A1"));
        assert!(!is_upper_camel("orderPlaced"));
        assert!(!is_upper_camel("Order_Placed"));
        assert!(is_snake("order_id"));
        assert!(is_snake("a1_b"));
        assert!(!is_snake("orderId"));
        assert!(!is_snake("_x"));
    }
}
