//! Samples of every message of a spec, built from its generated Rust
//! types, as Rust source: the wire-truth test of the exported JSON Schemas
//! (`tests/wire_truth.rs` of the workspace) compiles them, publishes them
//! through choreo-runtime and validates the bytes.
//!
//! The values come from the model, so that each type is seen at its
//! edges: integers at both ends of their range, empty and non-ASCII
//! strings, lists, maps and optionals empty and full, nested records,
//! each enum's first, middle and last variant. The bytes then come from
//! serde of the generated types, not from the schema.

use super::plan::NamingPlan;
use super::runtime;
use super::{data_types, runtime::text};
use crate::model::{CheckedSpec, Scalar, Type};
use std::fmt::Write;

/// How many samples of each message (and keys) are made: low ends, high
/// ends, values in between.
const SHAPES: usize = 3;

/// Lists, maps and optionals stop nesting below this depth (recursive
/// records hold themselves through them).
const MAX_DEPTH: usize = 3;

/// The samples of `spec` as Rust items, to be put in a module of their own
/// in a crate that depends on choreo-runtime:
///
/// - the generated data types ([`data_types`]);
/// - `pub type Decode = fn(&Envelope) -> Result<(), DecodeError>`;
/// - `pub fn keys() -> Vec<String>`: correlation keys, as text;
/// - `pub type Sample = (&'static str, &'static str, Vec<Payload>, Decode)`
///   and `pub fn messages() -> Vec<Sample>`: per message, its spec name,
///   its wire type (the generated `Message::TYPE`), typed payloads of
///   samples, and a function that decodes an envelope's data into the
///   generated type.
///
/// A message that no value can be built for (it holds an enum without
/// variants) has no samples.
pub fn wire_samples(spec: &CheckedSpec) -> String {
    let plan = NamingPlan::new(spec);
    let samples = Samples { spec, plan: &plan };
    let module = plan.module.to_string();
    let rt = runtime::MODULE.trim_end_matches("::codegen");
    let mut out = data_types(spec).to_string();
    let _ = write!(
        out,
        "\npub type Decode = fn(&{rt}::Envelope) -> ::std::result::Result<(), {rt}::DecodeError>;\npub type Sample = (&'static str, &'static str, ::std::vec::Vec<{rt}::Payload>, Decode);\n"
    );
    let keys: Vec<String> = (0..SHAPES)
        .filter_map(|shape| samples.value(&Type::Scalar(spec.key().ty), shape, 0))
        .map(|v| format!("::std::string::ToString::to_string(&({v}))"))
        .collect();
    let _ = writeln!(
        out,
        "pub fn keys() -> ::std::vec::Vec<::std::string::String> {{ ::std::vec![{}] }}",
        keys.join(", ")
    );
    let mut entries = Vec::new();
    for (i, (m, names)) in spec.messages.iter().zip(plan.messages()).enumerate() {
        let ty = format!("{module}::{}", names.ty);
        let payloads: Vec<String> = (0..SHAPES)
            .filter_map(|shape| samples.fields(&ty, &m.fields, &names.fields, shape, 0))
            .map(|v| format!("{rt}::Payload::typed({v})"))
            .collect();
        let _ = writeln!(
            out,
            "fn decode_{i}(e: &{rt}::Envelope) -> ::std::result::Result<(), {rt}::DecodeError> {{ e.decode::<{ty}>().map(|_| ()) }}"
        );
        entries.push(format!(
            "({:?}, <{ty} as {rt}::Message>::TYPE, ::std::vec![{}], decode_{i} as Decode)",
            m.name.text.as_str(),
            payloads.join(", ")
        ));
    }
    let _ = writeln!(
        out,
        "pub fn messages() -> ::std::vec::Vec<Sample> {{ ::std::vec![{}] }}",
        entries.join(",\n")
    );
    out
}

struct Samples<'a> {
    spec: &'a CheckedSpec,
    plan: &'a NamingPlan,
}

impl Samples<'_> {
    /// A struct literal of `ty` with `fields` named `names`.
    fn fields(
        &self,
        ty: &str,
        fields: &[crate::model::Field],
        names: &[super::plan::Member],
        shape: usize,
        depth: usize,
    ) -> Option<String> {
        let mut parts = Vec::new();
        for (f, n) in fields.iter().zip(names) {
            parts.push(format!(
                "{}: {}",
                n.ident,
                self.value(&f.ty, shape, depth + 1)?
            ));
        }
        Some(format!("{ty} {{ {} }}", parts.join(", ")))
    }

    /// A Rust expression of `ty` in sample shape `shape` (0: low ends, 1:
    /// high ends, 2: in between); `None` when `ty` has no value.
    fn value(&self, ty: &Type, shape: usize, depth: usize) -> Option<String> {
        let module = &self.plan.module;
        let deep = depth >= MAX_DEPTH;
        Some(match ty {
            Type::Scalar(s) => scalar(*s, shape),
            Type::List(t) => {
                let n = if deep { 0 } else { [0, 2, 1][shape] };
                let items: Vec<String> = (0..n)
                    .map_while(|k| self.value(t, (shape + k) % SHAPES, depth + 1))
                    .collect();
                format!("::std::vec![{}]", items.join(", "))
            }
            Type::Map(t) => {
                let keys: &[&str] = if deep {
                    &[]
                } else {
                    [&[][..], &["ключ 🔑", ""][..], &["k"][..]][shape]
                };
                let entries: Vec<String> = keys
                    .iter()
                    .map_while(|k| {
                        Some(format!(
                            "(::std::string::String::from({k:?}), {})",
                            self.value(t, shape, depth + 1)?
                        ))
                    })
                    .collect();
                format!(
                    "::std::collections::BTreeMap::from([{}])",
                    entries.join(", ")
                )
            }
            Type::Optional(t) => match (shape, deep) {
                (0, _) | (_, true) => "::std::option::Option::None".to_string(),
                // `From` also boxes, where the field holds a recursive
                // record in a `Box`.
                _ => match self.value(t, shape, depth + 1) {
                    Some(v) => {
                        format!("::std::option::Option::Some(::std::convert::From::from({v}))")
                    }
                    None => "::std::option::Option::None".to_string(),
                },
            },
            Type::Record(r) => {
                let names = self.plan.record(*r);
                let ty = format!("{module}::{}", names.ty);
                let fields = &self.spec.record(*r).fields;
                self.fields(&ty, fields, &names.members, shape, depth)?
            }
            Type::Enum(e) => {
                let names = self.plan.enumeration(*e);
                let n = names.members.len();
                let pick = [0, n.saturating_sub(1), n / 2][shape];
                let variant = &names.members.get(pick)?.ident;
                format!("{module}::{}::{variant}", names.ty)
            }
            Type::Error => scalar(Scalar::Json, shape),
        })
    }
}

/// A scalar in sample shape `shape`.
fn scalar(s: Scalar, shape: usize) -> String {
    let path = |item: proc_macro2::TokenStream, rest: &str| format!("{}{rest}", text(&item));
    let pick = |options: [String; SHAPES]| options[shape].clone();
    match s {
        Scalar::Bool => pick(["false".into(), "true".into(), "true".into()]),
        Scalar::I32 => pick(["i32::MIN".into(), "i32::MAX".into(), "-1i32".into()]),
        Scalar::I64 => pick(["i64::MIN".into(), "i64::MAX".into(), "0i64".into()]),
        Scalar::U32 => pick(["0u32".into(), "u32::MAX".into(), "7u32".into()]),
        Scalar::U64 => pick(["0u64".into(), "u64::MAX".into(), "1u64".into()]),
        Scalar::F64 => pick(["-1.5e300f64".into(), "f64::MAX".into(), "0.1f64".into()]),
        Scalar::String => {
            // Escapes, quotes, control characters, scripts and emoji: what
            // a JSON writer must escape and what it must keep.
            let text = ["", "é \"quoted\" \\ \n\t 日本 🦀 \u{7f}\u{1}", "plain"][shape];
            format!("::std::string::String::from({text:?})")
        }
        Scalar::Uuid => pick([
            path(runtime::uuid(), "::nil()"),
            path(runtime::uuid(), "::max()"),
            path(runtime::uuid(), "::new_v4()"),
        ]),
        Scalar::Timestamp => pick([
            // 0001-01-01T00:00:00Z: the first instant RFC 3339 can write
            // (jiff writes earlier ones with a six-digit year).
            path(
                runtime::timestamp(),
                "::from_second(-62135596800).expect(\"in range\")",
            ),
            path(runtime::timestamp(), "::MAX"),
            path(runtime::timestamp(), "::now()"),
        ]),
        Scalar::Duration => pick([
            path(runtime::duration(), "::MIN"),
            path(runtime::duration(), "::MAX"),
            path(runtime::duration(), "::from_millis(1500)"),
        ]),
        Scalar::Decimal => pick([
            path(runtime::decimal(), "::MIN"),
            path(runtime::decimal(), "::MAX"),
            path(runtime::decimal(), "::from_i128_with_scale(-1, 28)"),
        ]),
        Scalar::Bytes => pick([
            path(runtime::bytes(), "::default()"),
            path(runtime::bytes(), "(::std::vec![0, 255, 250, 251])"),
            path(runtime::bytes(), "(::std::vec![251, 255, 191, 1, 2])"),
        ]),
        Scalar::Json => pick([
            path(runtime::json(), "::Null"),
            "::choreo_runtime::serde_json::json!({ \"nested\": [1, \"two\", null, { \"ü\": true }], \"big\": u64::MAX, \"neg\": i64::MIN })".into(),
            "::choreo_runtime::serde_json::json!([1.5, \"x\", false])".into(),
        ]),
    }
}
