//! Payloads: the fields of every command and event that both specs have,
//! and of the records and enums they reach, compared by their wire shape.
//!
//! Records and enums are compared where a field reaches them, not by name:
//! their names never travel, so `Address` renamed `Location` with the same
//! fields is no change, and a record that lost a field changes every
//! message that reaches it. Such a change is reported once, at the record,
//! with the messages it affects.

use super::names::Names;
use super::{Finding, Rule};
use crate::model::{CheckedSpec, EnumId, Field, RecordId, Spec, Type};
use crate::source::Span;
use rustc_hash::{FxHashMap, FxHashSet};

pub(super) fn compare(
    old: &CheckedSpec,
    new: &CheckedSpec,
    new_names: &Names<'_>,
    out: &mut Vec<Finding>,
) {
    let mut walk = Walk {
        old,
        new,
        out,
        nodes: FxHashMap::default(),
    };
    for m in &old.messages {
        let Some(n) = new_names.counterpart(m) else {
            continue;
        };
        let owner = Owner {
            what: format!("{} `{}`", m.kind.as_str(), m.name.text),
            old: m.name.span,
            new: n.name.span,
        };
        let mut node = Node::default();
        walk.fields(&m.fields, &n.fields, &owner, &mut node);
        // Each finding is reached once per message, and each message is
        // walked once: no name is pushed twice.
        for index in walk.reached(&node) {
            walk.out[index].affects.push(m.name.text.to_string());
        }
    }
}

/// A record or enum of the old spec and the one the new spec has in its
/// place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Pair {
    Record(RecordId, RecordId),
    Enum(EnumId, EnumId),
}

/// What was found directly in a message or a pair, and the pairs it reaches.
#[derive(Debug, Default)]
struct Node {
    findings: Vec<usize>,
    children: Vec<Pair>,
}

/// Whose fields are compared: its description and both sides' names.
struct Owner {
    what: String,
    old: Span,
    new: Span,
}

struct Walk<'a> {
    old: &'a CheckedSpec,
    new: &'a CheckedSpec,
    out: &'a mut Vec<Finding>,
    /// Each pair compared once, whatever reaches it and however often; a
    /// pair being compared is already here, which ends recursive records.
    nodes: FxHashMap<Pair, Node>,
}

impl Walk<'_> {
    fn push(&mut self, node: &mut Node, finding: Finding) {
        node.findings.push(self.out.len());
        self.out.push(finding);
    }

    fn fields(&mut self, old: &[Field], new: &[Field], owner: &Owner, node: &mut Node) {
        for o in old {
            match new.iter().find(|n| n.name.text == o.name.text) {
                Some(n) => self.field(o, n, owner, node),
                None => {
                    let rule = if matches!(o.ty, Type::Optional(_)) {
                        Rule::FieldRemovedOptional
                    } else {
                        Rule::FieldRemoved
                    };
                    let message = format!("field `{}` of {} is removed", o.name.text, owner.what);
                    self.push(
                        node,
                        Finding::new(rule, message, Some(o.span), Some(owner.new)),
                    );
                }
            }
        }
        for n in new {
            if old.iter().any(|o| o.name.text == n.name.text) {
                continue;
            }
            let (rule, which) = if matches!(n.ty, Type::Optional(_)) {
                (Rule::FieldAddedOptional, "optional")
            } else {
                (Rule::FieldAddedRequired, "required")
            };
            let message = format!("{which} field `{}` is added to {}", n.name.text, owner.what);
            self.push(
                node,
                Finding::new(rule, message, Some(owner.old), Some(n.span)),
            );
        }
    }

    fn field(&mut self, o: &Field, n: &Field, owner: &Owner, node: &mut Node) {
        let (old_inner, new_inner, rule) = match (&o.ty, &n.ty) {
            (Type::Optional(a), Type::Optional(b)) => (&**a, &**b, None),
            (Type::Optional(a), b) => (&**a, b, Some((Rule::FieldMadeRequired, "required"))),
            (a, Type::Optional(b)) => (a, &**b, Some((Rule::FieldMadeOptional, "optional"))),
            (a, b) => (a, b, None),
        };
        let (old_ty, new_ty) = (describe(self.old, &o.ty), describe(self.new, &n.ty));
        if let Some((rule, made)) = rule {
            let message = format!(
                "field `{}` of {} is made {made}: `{old_ty}` becomes `{new_ty}`",
                o.name.text, owner.what
            );
            self.push(
                node,
                Finding::new(rule, message, Some(o.ty_span), Some(n.ty_span)),
            );
        }
        if !self.same_shape(old_inner, new_inner, node) {
            let message = format!(
                "field `{}` of {} changes type from `{old_ty}` to `{new_ty}`",
                o.name.text, owner.what
            );
            self.push(
                node,
                Finding::new(
                    Rule::FieldTypeChanged,
                    message,
                    Some(o.ty_span),
                    Some(n.ty_span),
                ),
            );
        }
    }

    /// Whether the two types have the same shape at this level; records and
    /// enums they hold are compared as pairs, which `node` then reaches.
    fn same_shape(&mut self, old: &Type, new: &Type, node: &mut Node) -> bool {
        match (old, new) {
            (Type::Scalar(a), Type::Scalar(b)) => a == b,
            (Type::List(a), Type::List(b))
            | (Type::Map(a), Type::Map(b))
            | (Type::Optional(a), Type::Optional(b)) => self.same_shape(a, b, node),
            (&Type::Record(a), &Type::Record(b)) => {
                self.reach(node, Pair::Record(a, b));
                true
            }
            (&Type::Enum(a), &Type::Enum(b)) => {
                self.reach(node, Pair::Enum(a, b));
                true
            }
            _ => false,
        }
    }

    fn reach(&mut self, node: &mut Node, pair: Pair) {
        if !node.children.contains(&pair) {
            node.children.push(pair);
        }
        if self.nodes.contains_key(&pair) {
            return;
        }
        self.nodes.insert(pair, Node::default());
        let mut inner = Node::default();
        let (old, new) = (self.old, self.new);
        match pair {
            Pair::Record(a, b) => {
                let (o, n) = (old.record(a), new.record(b));
                let owner = Owner {
                    what: named("record", &o.name.text, &n.name.text),
                    old: o.name.span,
                    new: n.name.span,
                };
                self.fields(&o.fields, &n.fields, &owner, &mut inner);
            }
            Pair::Enum(a, b) => self.variants(a, b, &mut inner),
        }
        self.nodes.insert(pair, inner);
    }

    fn variants(&mut self, a: EnumId, b: EnumId, node: &mut Node) {
        let (o, n) = (self.old.enumeration(a), self.new.enumeration(b));
        let what = named("enum", &o.name.text, &n.name.text);
        for v in &o.variants {
            if !n.variants.iter().any(|w| w.name.text == v.name.text) {
                let message = format!("variant `{}` of {what} is removed", v.name.text);
                let finding = Finding::new(
                    Rule::EnumVariantRemoved,
                    message,
                    Some(v.name.span),
                    Some(n.name.span),
                );
                self.push(node, finding);
            }
        }
        for w in &n.variants {
            if !o.variants.iter().any(|v| v.name.text == w.name.text) {
                let message = format!("variant `{}` is added to {what}", w.name.text);
                let finding = Finding::new(
                    Rule::EnumVariantAdded,
                    message,
                    Some(o.name.span),
                    Some(w.name.span),
                );
                self.push(node, finding);
            }
        }
    }

    /// The findings of `node` and of every pair it reaches.
    fn reached(&self, node: &Node) -> Vec<usize> {
        let mut found = node.findings.clone();
        let mut seen: FxHashSet<Pair> = FxHashSet::default();
        let mut stack = node.children.clone();
        while let Some(pair) = stack.pop() {
            if !seen.insert(pair) {
                continue;
            }
            if let Some(inner) = self.nodes.get(&pair) {
                found.extend(&inner.findings);
                stack.extend(&inner.children);
            }
        }
        found.sort_unstable();
        found
    }
}

/// "record `Address`", or "record `Address` (now `Location`)".
fn named(what: &str, old: &str, new: &str) -> String {
    if old == new {
        format!("{what} `{old}`")
    } else {
        format!("{what} `{old}` (now `{new}`)")
    }
}

/// A type as a spec writes it.
fn describe(spec: &Spec, ty: &Type) -> String {
    match ty {
        Type::Scalar(s) => s.name().to_string(),
        Type::List(inner) => format!("list<{}>", describe(spec, inner)),
        Type::Map(inner) => format!("map<string, {}>", describe(spec, inner)),
        Type::Optional(inner) => format!("{}?", describe(spec, inner)),
        Type::Record(id) => spec.record(*id).name.text.to_string(),
        Type::Enum(id) => spec.enumeration(*id).name.text.to_string(),
        Type::Error => "?".to_string(),
    }
}
