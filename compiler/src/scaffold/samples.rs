//! Sample values for scaffolded code: a valid outcome for every handler and
//! a sample command, as Rust source text.

use crate::codegen::runtime;
use crate::model::{CheckedSpec, MessageId, ReactionId, Scalar, Settlement, Type};
use proc_macro2::TokenStream;

/// A Rust expression of type `ty`; `m` is the generated module's path.
pub(crate) fn value(spec: &CheckedSpec, ty: &Type, m: &str) -> String {
    match ty {
        Type::Scalar(s) => scalar(*s),
        Type::List(_) => "::std::vec::Vec::new()".to_string(),
        Type::Map(_) => "::std::collections::BTreeMap::new()".to_string(),
        Type::Optional(_) => "::std::option::Option::None".to_string(),
        Type::Record(r) => {
            let rec = spec.record(*r);
            record(spec, &rec.name.text, &rec.fields, m)
        }
        Type::Enum(e) => {
            let en = spec.enumeration(*e);
            let name = crate::codegen::rust_ident(&en.name.text).0;
            match en.variants.first() {
                Some(v) => format!(
                    "{m}::{name}::{}",
                    crate::codegen::rust_ident(&v.name.text).0
                ),
                None => "todo!()".to_string(),
            }
        }
        Type::Error => scalar(Scalar::Json),
    }
}

fn scalar(s: Scalar) -> String {
    let of = |item: TokenStream, call: &str| format!("{}{call}", runtime::text(&item));
    match s {
        Scalar::Bool => "false".to_string(),
        Scalar::I32 | Scalar::I64 | Scalar::U32 | Scalar::U64 => "1".to_string(),
        Scalar::F64 => "1.0".to_string(),
        Scalar::String => "::std::string::String::from(\"example\")".to_string(),
        Scalar::Uuid => of(runtime::uuid(), "::new_v4()"),
        Scalar::Timestamp => of(runtime::timestamp(), "::now()"),
        Scalar::Duration => of(runtime::duration(), "::from_secs(1)"),
        Scalar::Decimal => of(runtime::decimal(), "::new(100, 2)"),
        Scalar::Bytes => of(runtime::bytes(), "::default()"),
        Scalar::Json => of(runtime::json(), "::Null"),
    }
}

fn record(spec: &CheckedSpec, name: &str, fields: &[crate::model::Field], m: &str) -> String {
    let ty = crate::codegen::rust_ident(name).0;
    if fields.is_empty() {
        return format!("{m}::{ty} {{}}");
    }
    let fields: Vec<String> = fields
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                crate::codegen::rust_ident(&f.name.text).0,
                value(spec, &f.ty, m)
            )
        })
        .collect();
    format!("{m}::{ty} {{ {} }}", fields.join(", "))
}

/// A sample of a command or event.
pub(crate) fn message(spec: &CheckedSpec, id: MessageId, m: &str) -> String {
    let msg = spec.message(id);
    record(spec, &msg.name.text, &msg.fields, m)
}

/// A fresh key per sample instance `i`.
pub(crate) fn key(spec: &CheckedSpec) -> String {
    match spec.key().ty {
        Scalar::Uuid => scalar(Scalar::Uuid),
        Scalar::String => "::std::format!(\"instance-{i}\")".to_string(),
        Scalar::U32 => "i as u32 + 1".to_string(),
        Scalar::U64 => "i as u64 + 1".to_string(),
        Scalar::I32 => "i as i32 + 1".to_string(),
        Scalar::I64 => "i as i64 + 1".to_string(),
        // Not a key type (E0102); never reached for a checked spec.
        _ => "::std::default::Default::default()".to_string(),
    }
}

/// Picks, for each reaction, the outcome that leads soonest to a success
/// (failing that, to any terminal event), so that the scaffold runs every
/// instance to an outcome out of the box.
pub(crate) struct OutcomeChooser {
    chosen: Vec<usize>,
}

const FAR: u32 = u32::MAX / 4;

impl OutcomeChooser {
    pub(crate) fn new(spec: &CheckedSpec) -> Self {
        let n = spec.messages.len();
        let mut dist = vec![FAR; n];
        for id in spec.message_ids() {
            match spec.message(id).terminal {
                Some((Settlement::Success, _)) => dist[id.index()] = 0,
                Some((Settlement::Failure, _)) => dist[id.index()] = 1_000,
                None => {}
            }
        }
        let outcome_cost = |dist: &[u32], r: ReactionId, o: usize| -> u32 {
            let outcome = &spec.reaction(r).outcomes()[o];
            if outcome.is_none() {
                FAR
            } else {
                outcome.ids().map(|e| dist[e.index()]).min().unwrap_or(FAR)
            }
        };
        // Relax until nothing improves; distances only fall, so this ends.
        loop {
            let mut changed = false;
            for id in spec.message_ids() {
                let best = spec
                    .flow
                    .consumers(id)
                    .iter()
                    .flat_map(|&r| (0..spec.reaction(r).outcomes().len()).map(move |o| (r, o)))
                    .map(|(r, o)| outcome_cost(&dist, r, o).saturating_add(1))
                    .min()
                    .unwrap_or(FAR);
                if best < dist[id.index()] {
                    dist[id.index()] = best;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let chosen = spec
            .reaction_ids()
            .map(|r| {
                (0..spec.reaction(r).outcomes().len())
                    .min_by_key(|&o| (outcome_cost(&dist, r, o), o))
                    .unwrap_or(0)
            })
            .collect();
        OutcomeChooser { chosen }
    }

    /// The index of the outcome to return for reaction `r`.
    pub(crate) fn outcome(&self, r: ReactionId) -> usize {
        self.chosen.get(r.index()).copied().unwrap_or(0)
    }
}
