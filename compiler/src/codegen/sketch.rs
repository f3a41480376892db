//! The participants as the scaffold writes them in user code: the names
//! and types of the generated traits, as Rust source text.

use super::participants::{output, params, spec_text};
use super::plan::NamingPlan;
use crate::model::{CheckedSpec, MessageId};

/// A participant's handlers as the scaffold writes them in user code: the
/// names and types the generated trait uses, as Rust source text, with the
/// module path `m` (e.g. `crate::shop`) in front of generated items.
pub(crate) struct HandlerSketch {
    pub method: String,
    /// `name: Type` parameters after `ctx`.
    pub params: Vec<(String, String)>,
    pub output: String,
    /// Per outcome: the expression that builds it, given an expression for
    /// each event it emits (in order), and those events.
    pub outcomes: Vec<(OutcomeShape, Vec<MessageId>)>,
    pub spec_text: String,
}

/// How an outcome value is written.
pub(crate) enum OutcomeShape {
    /// `()`: a sink or `none`.
    Unit,
    /// The event itself, or a tuple of events.
    Plain,
    /// `Enum::Variant(events…)`, or `Enum::Variant` for `none`.
    Variant(String),
}

/// A participant as the scaffold writes it.
pub(crate) struct ParticipantSketch {
    /// The participant's name in the spec.
    pub name: String,
    /// The path of its trait, e.g. `shop::Payment`.
    pub trait_path: String,
    /// The path of its module, e.g. `shop::payment`.
    pub module_path: String,
    pub handlers: Vec<HandlerSketch>,
}

/// Sketches of every handler of every participant, in the spec's order.
pub(crate) fn sketches(spec: &CheckedSpec, plan: &NamingPlan, m: &str) -> Vec<ParticipantSketch> {
    plan.participants()
        .iter()
        .map(|p| {
            let module = format!("{m}::{}", p.module);
            let handlers = p
                .reactions
                .iter()
                .map(|rp| {
                    let r = spec.reaction(rp.id);
                    let params = params(spec, plan, p, rp)
                        .into_iter()
                        .map(|(n, t)| (n.to_string(), format!("{m}::{}", compact(&t.to_string()))))
                        .collect();
                    let output = match &rp.outcome_enum {
                        Some(e) => format!("{module}::{}", e.name),
                        None => {
                            let o = compact(&output(spec, plan, p, rp).to_string());
                            if o == "()" {
                                o
                            } else if o.starts_with('(') {
                                let inner: Vec<String> = o
                                    .trim_matches(|c| c == '(' || c == ')')
                                    .split(',')
                                    .map(|t| format!("{m}::{}", t.trim()))
                                    .collect();
                                format!("({})", inner.join(", "))
                            } else {
                                format!("{m}::{o}")
                            }
                        }
                    };
                    let outcomes = match &rp.outcome_enum {
                        Some(e) => e
                            .variants
                            .iter()
                            .zip(r.outcomes())
                            .map(|(v, o)| {
                                (
                                    OutcomeShape::Variant(format!("{module}::{}::{v}", e.name)),
                                    o.ids().collect(),
                                )
                            })
                            .collect(),
                        None => match r.outcomes() {
                            [single] if !single.is_none() => {
                                vec![(OutcomeShape::Plain, single.ids().collect())]
                            }
                            _ => vec![(OutcomeShape::Unit, Vec::new())],
                        },
                    };
                    HandlerSketch {
                        method: rp.method.to_string(),
                        params,
                        output,
                        outcomes,
                        spec_text: spec_text(spec, r),
                    }
                })
                .collect();
            ParticipantSketch {
                name: spec.participant(p.id).name.text.to_string(),
                trait_path: format!("{m}::{}", p.trait_name),
                module_path: module,
                handlers,
            }
        })
        .collect()
}

/// Token text without the spaces `quote` puts between tokens.
fn compact(text: &str) -> String {
    text.replace(" :: ", "::")
        .replace(" ,", ",")
        .replace("( ", "(")
        .replace(" )", ")")
}
