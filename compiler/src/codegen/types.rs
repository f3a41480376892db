//! Structs for types, commands and events; enums for enums; the mapping of
//! spec types to Rust types.

use super::docs::docs;
use super::plan::{Member, NamingPlan};
use super::runtime;
use crate::model::{CheckedSpec, EnumId, Field, RecordId, Scalar, Type};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use proc_macro2::TokenStream;
use quote::quote;

/// The Rust type of a built-in scalar.
pub(crate) fn scalar(s: Scalar) -> TokenStream {
    match s {
        Scalar::Bool => quote!(bool),
        Scalar::I32 => quote!(i32),
        Scalar::I64 => quote!(i64),
        Scalar::U32 => quote!(u32),
        Scalar::U64 => quote!(u64),
        Scalar::F64 => quote!(f64),
        Scalar::String => quote!(::std::string::String),
        Scalar::Uuid => runtime::uuid(),
        Scalar::Timestamp => runtime::timestamp(),
        Scalar::Duration => runtime::duration(),
        Scalar::Decimal => runtime::decimal(),
        Scalar::Bytes => runtime::bytes(),
        Scalar::Json => runtime::json(),
    }
}

/// Records that take part in a cycle of containment (through `list`, `map`
/// or `?`): an optional field holding one of them is boxed.
pub(crate) fn recursive_records(spec: &CheckedSpec) -> Vec<usize> {
    let mut graph: DiGraph<(), ()> = DiGraph::new();
    for _ in &spec.records {
        graph.add_node(());
    }
    fn edges(ty: &Type, out: &mut Vec<RecordId>) {
        match ty {
            Type::Record(id) => out.push(*id),
            Type::List(t) | Type::Map(t) | Type::Optional(t) => edges(t, out),
            _ => {}
        }
    }
    for (i, r) in spec.records.iter().enumerate() {
        let mut targets = Vec::new();
        for f in &r.fields {
            edges(&f.ty, &mut targets);
        }
        for t in targets {
            graph.add_edge(NodeIndex::new(i), NodeIndex::new(t.index()), ());
        }
    }
    let mut component = vec![usize::MAX; spec.records.len()];
    for (c, scc) in kosaraju_scc(&graph).into_iter().enumerate() {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if cyclic {
            for n in scc {
                component[n.index()] = c;
            }
        }
    }
    component
}

/// What the Rust type of a field depends on beyond the field itself.
struct Scope<'a> {
    plan: &'a NamingPlan,
    /// Per record, its cycle of containment, or `usize::MAX` (from
    /// [`recursive_records`]).
    cycles: &'a [usize],
    /// The record holding the field, for boxing recursive optionals.
    owner: Option<usize>,
}

/// The Rust type of a field type, at the module's top level.
fn rust_type(scope: &Scope<'_>, ty: &Type) -> TokenStream {
    match ty {
        Type::Scalar(s) => scalar(*s),
        Type::List(t) => {
            let t = rust_type(scope, t);
            quote!(::std::vec::Vec<#t>)
        }
        Type::Map(t) => {
            let t = rust_type(scope, t);
            quote!(::std::collections::BTreeMap<::std::string::String, #t>)
        }
        Type::Optional(t) => {
            let inner = rust_type(scope, t);
            let boxed = match (&**t, scope.owner) {
                (Type::Record(target), Some(o)) => {
                    let c = scope.cycles;
                    c[target.index()] != usize::MAX && c[target.index()] == c[o]
                }
                _ => false,
            };
            if boxed {
                quote!(::std::option::Option<::std::boxed::Box<#inner>>)
            } else {
                quote!(::std::option::Option<#inner>)
            }
        }
        Type::Record(r) => {
            let name = &scope.plan.record(*r).ty;
            quote!(#name)
        }
        Type::Enum(e) => {
            let name = &scope.plan.enumeration(*e).ty;
            quote!(#name)
        }
        // A checked spec has no unresolved type.
        Type::Error => runtime::json(),
    }
}

/// The fields of a struct, named as `names` says.
fn fields(scope: &Scope<'_>, fields: &[Field], names: &[Member]) -> Vec<TokenStream> {
    fields
        .iter()
        .zip(names)
        .map(
            |(
                f,
                Member {
                    ident: name,
                    renamed,
                },
            )| {
                let ty = rust_type(scope, &f.ty);
                let doc = docs(&f.docs, &format!("The `{}` field.", f.name.text));
                let rename = renamed.then(|| {
                    let wire = f.name.text.as_str();
                    quote!(#[serde(rename = #wire)])
                });
                quote! {
                    #doc
                    #rename
                    pub #name: #ty
                }
            },
        )
        .collect()
}

/// `#[derive]`s and serde's crate path, shared by every generated data type.
fn data_attrs(copy: bool) -> TokenStream {
    let rt_serde = runtime::serde();
    let serde_crate = runtime::text(&rt_serde);
    let extra = copy.then(|| {
        quote!(
            ::std::marker::Copy,
            ::std::cmp::Eq,
            ::std::hash::Hash,
            ::std::cmp::PartialOrd,
            ::std::cmp::Ord,
        )
    });
    quote! {
        #[derive(
            ::std::fmt::Debug,
            ::std::clone::Clone,
            ::std::cmp::PartialEq,
            #extra
            #rt_serde::Serialize,
            #rt_serde::Deserialize,
        )]
        #[serde(crate = #serde_crate)]
    }
}

/// A struct per record.
pub(crate) fn records(spec: &CheckedSpec, plan: &NamingPlan) -> Vec<TokenStream> {
    let cycles = recursive_records(spec);
    spec.records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let names = plan.record(RecordId::from_index(i));
            let name = &names.ty;
            let doc = docs(&r.docs, &format!("The `{}` type.", r.name.text));
            let deprecated = r.deprecated.as_deref().map(deprecated);
            let attrs = data_attrs(false);
            let scope = Scope {
                plan,
                cycles: &cycles,
                owner: Some(i),
            };
            let fields = fields(&scope, &r.fields, &names.members);
            quote! {
                #doc
                #deprecated
                #attrs
                pub struct #name { #(#fields,)* }
            }
        })
        .collect()
}

/// An enum per spec enum.
pub(crate) fn enums(spec: &CheckedSpec, plan: &NamingPlan) -> Vec<TokenStream> {
    spec.enums
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let names = plan.enumeration(EnumId::from_index(i));
            let name = &names.ty;
            let doc = docs(&e.docs, &format!("The `{}` enum.", e.name.text));
            let deprecated = e.deprecated.as_deref().map(deprecated);
            let attrs = data_attrs(true);
            let variants = e.variants.iter().zip(&names.members).map(|(v, m)| {
                let Member {
                    ident: vname,
                    renamed,
                } = m;
                let vdoc = docs(&v.docs, &format!("`{}`.", v.name.text));
                let rename = renamed.then(|| {
                    let wire = v.name.text.as_str();
                    quote!(#[serde(rename = #wire)])
                });
                quote! { #vdoc #rename #vname }
            });
            quote! {
                #doc
                #deprecated
                #attrs
                pub enum #name { #(#variants,)* }
            }
        })
        .collect()
}

/// A struct per command and event, with its `Message` impl.
pub(crate) fn messages(spec: &CheckedSpec, plan: &NamingPlan) -> Vec<TokenStream> {
    let rt_message = runtime::message();
    let scope = Scope {
        plan,
        cycles: &[],
        owner: None,
    };
    spec.messages
        .iter()
        .zip(plan.messages())
        .map(|(m, names)| {
            let name = &names.ty;
            let kind = m.kind.as_str();
            let mut summary = format!("The `{}` {kind}.", m.name.text);
            if let Some((s, _)) = m.terminal {
                summary.push_str(match s {
                    crate::model::Settlement::Success => {
                        " Terminal: settles the instance with success."
                    }
                    crate::model::Settlement::Failure => {
                        " Terminal: settles the instance with failure."
                    }
                });
            }
            let doc = docs(&m.docs, &summary);
            let deprecated = m.deprecated.as_deref().map(deprecated);
            let attrs = data_attrs(false);
            let fields = fields(&scope, &m.fields, &names.fields);
            let wire = &names.wire;
            quote! {
                #doc
                #deprecated
                #attrs
                pub struct #name { #(#fields,)* }

                impl #rt_message for #name {
                    const TYPE: &'static str = #wire;
                }
            }
        })
        .collect()
}

fn deprecated(d: &crate::model::Deprecation) -> TokenStream {
    match &d.reason {
        Some(reason) => quote!(#[deprecated(note = #reason)]),
        None => quote!(#[deprecated]),
    }
}

/// The key type alias.
pub(crate) fn key(spec: &CheckedSpec, key_name: &proc_macro2::Ident) -> TokenStream {
    let ty = scalar(spec.key().ty);
    let doc = format!(
        " The correlation key `{}`: every event and command of one instance carries it.",
        spec.key().name.text
    );
    quote! {
        #[doc = #doc]
        pub type #key_name = #ty;
    }
}
