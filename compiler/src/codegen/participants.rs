//! A trait per participant, with one handler per reaction whose types admit
//! exactly what the spec declares, and the wiring that runs an
//! implementation on the runtime.

use super::names::{camel, id, snake, Namespace};
use super::{docs, runtime, Names};
use crate::model::{CheckedSpec, MessageId, ParticipantId, Reaction, ReactionId, TriggerKind};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

/// What the generator decided about one reaction.
pub(crate) struct ReactionPlan {
    pub id: ReactionId,
    /// The handler method and the runtime reaction name.
    pub method: Ident,
    pub name: String,
    /// The type the handler returns, as seen from the module's top level.
    pub output: TokenStream,
    /// The enum of the outcomes or of the triggers, in the participant's module.
    outcome_enum: Option<(Ident, Vec<OutcomeVariant>)>,
    trigger_enum: Option<(Ident, Vec<(Ident, MessageId)>)>,
}

/// A variant of an outcome enum and the events it carries.
type OutcomeVariant = (Ident, Vec<MessageId>);

/// What the generator decided about one participant.
pub(crate) struct ParticipantPlan {
    pub id: ParticipantId,
    pub trait_name: Ident,
    pub module: Ident,
    /// The argument name in `start_all`.
    pub arg: Ident,
    pub reactions: Vec<ReactionPlan>,
}

fn method_name(spec: &CheckedSpec, r: &Reaction) -> String {
    let sep = match r.trigger.kind {
        TriggerKind::Any => "_or_",
        TriggerKind::All => "_and_",
    };
    let parts: Vec<String> = r
        .trigger
        .ids()
        .map(|m| snake(spec.message_name(m)))
        .collect();
    format!("on_{}", parts.join(sep))
}

/// Plans every participant: names of traits, modules, methods and enums.
pub(crate) fn plan(spec: &CheckedSpec, names: &mut Names) -> Vec<ParticipantPlan> {
    let mut plans = Vec::new();
    for (pi, p) in spec.participants.iter().enumerate() {
        let module = names.types.fresh(&snake(&p.name.text));
        let arg = names.args.fresh(&snake(&p.name.text));
        let mut methods = Namespace::default();
        let mut local = Namespace::default();
        for fixed in ["Fixture", "Consumes", "definition", "fixture", "EMITS"] {
            local.take(fixed);
        }
        let mut reactions = Vec::new();
        for &rid in &p.reactions {
            let r = spec.reaction(rid);
            let name = methods.fresh(&method_name(spec, r));
            let method = Ident::new(&name, Span::call_site());
            let base = camel(&name);
            let outcomes = r.outcomes();
            let (output, outcome_enum) = match outcomes {
                [] => (quote!(()), None),
                [single] if single.is_none() => (quote!(()), None),
                [single] => {
                    let tys: Vec<TokenStream> = single
                        .ids()
                        .map(|e| {
                            let t = id(spec.message_name(e));
                            quote!(#t)
                        })
                        .collect();
                    let output = if tys.len() == 1 {
                        tys[0].clone()
                    } else {
                        quote!((#(#tys),*))
                    };
                    (output, None)
                }
                many => {
                    let enum_name =
                        Ident::new(&local.fresh(&format!("{base}Outcome")), Span::call_site());
                    let mut variants = Namespace::default();
                    let vs = many
                        .iter()
                        .map(|o| {
                            let label = if o.is_none() {
                                "Nothing".to_string()
                            } else {
                                o.ids()
                                    .map(|e| camel(spec.message_name(e)))
                                    .collect::<Vec<_>>()
                                    .join("And")
                            };
                            let v = Ident::new(&variants.fresh(&label), Span::call_site());
                            (v, o.ids().collect::<Vec<_>>())
                        })
                        .collect::<Vec<_>>();
                    let module_ident = id(&module);
                    (quote!(#module_ident::#enum_name), Some((enum_name, vs)))
                }
            };
            let trigger_enum = (r.trigger.kind == TriggerKind::Any && r.trigger.messages.len() > 1)
                .then(|| {
                    let enum_name =
                        Ident::new(&local.fresh(&format!("{base}Trigger")), Span::call_site());
                    let mut variants = Namespace::default();
                    let vs = r
                        .trigger
                        .ids()
                        .map(|m| {
                            (
                                Ident::new(
                                    &variants.fresh(&camel(spec.message_name(m))),
                                    Span::call_site(),
                                ),
                                m,
                            )
                        })
                        .collect();
                    (enum_name, vs)
                });
            reactions.push(ReactionPlan {
                id: rid,
                method,
                name,
                output,
                outcome_enum,
                trigger_enum,
            });
        }
        plans.push(ParticipantPlan {
            id: ParticipantId::from_index(pi),
            trait_name: id(&p.name.text),
            module: id(&module),
            arg: id(&arg),
            reactions,
        });
    }
    plans
}

/// The reaction as written in the spec, for docs.
fn spec_text(spec: &CheckedSpec, r: &Reaction) -> String {
    let sep = if r.trigger.kind == TriggerKind::All {
        " & "
    } else {
        " | "
    };
    let trigger: Vec<&str> = r.trigger.ids().map(|m| spec.message_name(m)).collect();
    let mut text = format!("on {}", trigger.join(sep));
    if let Some(outcomes) = &r.outcomes {
        let outs: Vec<String> = outcomes
            .iter()
            .map(|o| {
                if o.is_none() {
                    "none".to_string()
                } else {
                    o.ids()
                        .map(|e| spec.message_name(e))
                        .collect::<Vec<_>>()
                        .join(" + ")
                }
            })
            .collect();
        text.push_str(" -> ");
        text.push_str(&outs.join(" | "));
    }
    if let Some(c) = r.compensates {
        text.push_str(" compensates ");
        text.push_str(spec.message_name(c.id));
    }
    text
}

/// The handler's event parameters, as (name, type at top level).
fn params(
    spec: &CheckedSpec,
    r: &Reaction,
    plan: &ReactionPlan,
    module: &Ident,
) -> Vec<(Ident, TokenStream)> {
    if let Some((enum_name, _)) = &plan.trigger_enum {
        return vec![(format_ident!("event"), quote!(#module::#enum_name))];
    }
    if r.trigger.kind == TriggerKind::All && r.trigger.messages.len() > 1 {
        let mut taken = Namespace::default();
        taken.take("ctx");
        taken.take("self");
        return r
            .trigger
            .ids()
            .map(|m| {
                let name = taken.fresh(&snake(spec.message_name(m)));
                let ty = id(spec.message_name(m));
                (super::names::ident(&name).0, quote!(#ty))
            })
            .collect();
    }
    let ty = r.trigger.ids().next().map(|m| id(spec.message_name(m)));
    vec![(format_ident!("event"), quote!(#ty))]
}

/// The trait of one participant.
pub(crate) fn participant_trait(
    spec: &CheckedSpec,
    names: &Names,
    plan: &ParticipantPlan,
) -> TokenStream {
    let rt_handler_error = runtime::handler_error();
    let p = spec.participant(plan.id);
    let trait_name = &plan.trait_name;
    let doc = docs(
        &p.docs,
        &format!(
            "The `{}` participant: implement it to run the service.",
            p.name.text
        ),
    );
    let ctx = &names.context;
    let methods = plan.reactions.iter().map(|rp| {
        let r = spec.reaction(rp.id);
        let mut lines = vec![format!("`{}`", spec_text(spec, r))];
        if !r.docs.is_empty() {
            lines.push(String::new());
            lines.extend(r.docs.lines.iter().cloned());
        }
        let mut notes = Vec::new();
        if let Some(retry) = r.retry.as_deref() {
            notes.push(format!(
                "retried up to {} times from {:?}",
                retry.max, retry.backoff
            ));
        }
        if let Some(&(t, _)) = r.timeout.as_deref() {
            notes.push(format!("times out after {t:?}"));
        }
        if let Some(&(n, _)) = r.bounded.as_deref() {
            notes.push(format!("fires at most {n} times per instance"));
        }
        if !notes.is_empty() {
            lines.push(String::new());
            lines.push(format!(
                "The runtime applies the spec's attributes: {}.",
                notes.join("; ")
            ));
        }
        let doc = super::doc_lines(&lines);
        let method = &rp.method;
        let output = &rp.output;
        let params = params(spec, r, rp, &plan.module)
            .into_iter()
            .map(|(n, t)| quote!(#n: #t));
        quote! {
            #doc
            fn #method(&self, ctx: #ctx, #(#params),*) -> impl ::std::future::Future<
                Output = ::std::result::Result<#output, #rt_handler_error>,
            > + ::std::marker::Send;
        }
    });
    quote! {
        #doc
        pub trait #trait_name: ::std::marker::Send + ::std::marker::Sync + 'static {
            #(#methods)*
        }
    }
}

/// The module of one participant: its enums, `definition`, and test fixture.
pub(crate) fn participant_module(
    spec: &CheckedSpec,
    names: &Names,
    plan: &ParticipantPlan,
) -> TokenStream {
    let rt_emitted = runtime::emitted();
    let rt_fixture_error = runtime::fixture_error();
    let rt_message = runtime::message();
    let rt_participant_fixture = runtime::participant_fixture();
    let rt_service_definition = runtime::service_definition();
    let p = spec.participant(plan.id);
    let module = &plan.module;
    let trait_name = &plan.trait_name;
    let key = &names.key;
    let pname = p.name.text.as_str();
    let mdoc = format!(" Types and wiring of the `{pname}` participant.");

    let mut enums = Vec::new();
    let mut reactions = Vec::new();
    let mut emits: Vec<MessageId> = Vec::new();
    for rp in &plan.reactions {
        let r = spec.reaction(rp.id);
        for e in r.emitted() {
            if !emits.contains(&e) {
                emits.push(e);
            }
        }
        if let Some((enum_name, variants)) = &rp.outcome_enum {
            let doc = format!(
                " The outcomes of `{}`: exactly one happens.",
                spec_text(spec, r)
            );
            let vs = variants.iter().map(|(v, events)| {
                let tys = events.iter().map(|e| {
                    let t = id(spec.message_name(*e));
                    quote!(super::#t)
                });
                let vdoc = if events.is_empty() {
                    " Emits nothing (`none`).".to_string()
                } else {
                    format!(
                        " Emits {}.",
                        events
                            .iter()
                            .map(|e| format!("`{}`", spec.message_name(*e)))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                };
                if events.is_empty() {
                    quote! { #[doc = #vdoc] #v }
                } else {
                    quote! { #[doc = #vdoc] #v(#(#tys),*) }
                }
            });
            enums.push(quote! {
                #[doc = #doc]
                #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                pub enum #enum_name { #(#vs,)* }
            });
        }
        if let Some((enum_name, variants)) = &rp.trigger_enum {
            let doc = format!(" What triggered `{}`: one of these.", spec_text(spec, r));
            let vs = variants.iter().map(|(v, m)| {
                let t = id(spec.message_name(*m));
                let vdoc = format!(" `{}` arrived.", spec.message_name(*m));
                quote! { #[doc = #vdoc] #v(super::#t) }
            });
            enums.push(quote! {
                #[doc = #doc]
                #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                pub enum #enum_name { #(#vs,)* }
            });
        }
        reactions.push(wiring(spec, names, plan, rp));
    }

    let emit_types = emits.iter().map(|e| {
        let t = id(spec.message_name(*e));
        quote!(<super::#t as #rt_message>::TYPE)
    });
    let mut consumed: Vec<MessageId> = Vec::new();
    for rp in &plan.reactions {
        for m in spec.reaction(rp.id).trigger.ids() {
            if !consumed.contains(&m) {
                consumed.push(m);
            }
        }
    }
    let consumes = consumed.iter().map(|m| {
        let t = id(spec.message_name(*m));
        quote!(impl Consumes for super::#t {})
    });
    let version = names.version.as_ref().map(|v| quote!(.version(super::#v)));
    let choreography = &names.choreography;

    quote! {
        #[doc = #mdoc]
        pub mod #module {
            #(#enums)*

            /// The wire types this participant's reactions can emit.
            pub const EMITS: &[&str] = &[#(#emit_types),*];

            /// The service definition that runs `participant` on the runtime,
            /// with the spec's `@retry`, `@timeout` and `@bounded` applied.
            pub fn definition<P: super::#trait_name>(participant: P) -> #rt_service_definition {
                let participant = ::std::sync::Arc::new(participant);
                #rt_service_definition::new(super::#choreography, #pname)
                    #version
                    #(.reaction(#reactions))*
            }

            /// The messages this participant consumes, which a [`Fixture`] can deliver.
            pub trait Consumes: #rt_message {}
            #(#consumes)*

            /// Runs the participant alone on a memory broker, to hand it
            /// events and see what it emits.
            pub struct Fixture {
                inner: #rt_participant_fixture,
            }

            /// Starts a [`Fixture`] for `participant`.
            pub async fn fixture<P: super::#trait_name>(
                participant: P,
            ) -> ::std::result::Result<Fixture, #rt_fixture_error> {
                let inner = #rt_participant_fixture::start(definition(participant), EMITS).await?;
                ::std::result::Result::Ok(Fixture { inner })
            }

            impl Fixture {
                /// Delivers `message` for instance `key`, waits until the
                /// participant has dealt with it, and returns what it emitted.
                pub async fn deliver<M: Consumes>(
                    &mut self,
                    key: &super::#key,
                    message: M,
                ) -> ::std::result::Result<#rt_emitted, #rt_fixture_error> {
                    self.inner.deliver(&::std::string::ToString::to_string(key), message).await
                }

                /// Stops the participant.
                pub async fn shutdown(self) {
                    self.inner.shutdown().await
                }
            }
        }
    }
}

/// The `Reaction` of one handler: decode, call, map the outcome to `Emit`.
fn wiring(
    spec: &CheckedSpec,
    names: &Names,
    plan: &ParticipantPlan,
    rp: &ReactionPlan,
) -> TokenStream {
    let rt_context = runtime::context();
    let rt_emit = runtime::emit();
    let rt_handler_error = runtime::handler_error();
    let rt_input = runtime::input();
    let rt_message = runtime::message();
    let rt_reaction = runtime::reaction();
    let rt_retry_policy = runtime::retry_policy();
    let rt_trigger = runtime::trigger();
    let r = spec.reaction(rp.id);
    let context = &names.context;
    let method = &rp.method;
    let name = &rp.name;
    let types = r.trigger.ids().map(|m| {
        let t = id(spec.message_name(m));
        quote!(<super::#t as #rt_message>::TYPE)
    });
    let trigger = if r.trigger.is_join() {
        quote!(#rt_trigger::all([#(#types),*]))
    } else {
        quote!(#rt_trigger::any([#(#types),*]))
    };

    // Decoding the input into the handler's arguments.
    let (decode, args) = if let Some((enum_name, variants)) = &rp.trigger_enum {
        let arms = variants.iter().map(|(v, m)| {
            let t = id(spec.message_name(*m));
            quote! {
                ty if ty == <super::#t as #rt_message>::TYPE => #enum_name::#v(input.decode()?),
            }
        });
        (
            quote! {
                let event = match input.ty() {
                    #(#arms)*
                    other => {
                        return ::std::result::Result::Err(#rt_handler_error::rejected(
                            ::std::format!("`{}` cannot trigger `{}`", other, #name),
                        ))
                    }
                };
            },
            vec![format_ident!("event")],
        )
    } else {
        let params = params(spec, r, rp, &plan.module);
        let lets = params.iter().map(|(n, t)| {
            // The parameter types are written for the top level.
            let t = quote!(super::#t);
            quote!(let #n: #t = input.decode()?;)
        });
        (
            quote!(#(#lets)*),
            params.into_iter().map(|(n, _)| n).collect(),
        )
    };

    // Mapping the outcome to what is emitted.
    let emit = match (&rp.outcome_enum, r.outcomes()) {
        (Some((enum_name, variants)), _) => {
            let arms = variants.iter().map(|(v, events)| {
                if events.is_empty() {
                    quote!(#enum_name::#v => #rt_emit::none(),)
                } else {
                    let vars: Vec<Ident> =
                        (0..events.len()).map(|i| format_ident!("e{}", i)).collect();
                    let first = &vars[0];
                    let rest = &vars[1..];
                    quote!(#enum_name::#v(#(#vars),*) => #rt_emit::one(#first)#(.and(#rest))*,)
                }
            });
            quote!(match outcome { #(#arms)* })
        }
        (None, [single]) if !single.is_none() => {
            let n = single.events.len();
            if n == 1 {
                quote!(#rt_emit::one(outcome))
            } else {
                let idx = (1..n).map(syn::Index::from);
                quote!(#rt_emit::one(outcome.0)#(.and(outcome.#idx))*)
            }
        }
        _ => quote!({
            let () = outcome;
            #rt_emit::none()
        }),
    };

    let mut reaction = quote! {
        {
            let participant = ::std::sync::Arc::clone(&participant);
            #rt_reaction::new(
                #name,
                #trigger,
                move |ctx: #rt_context, input: #rt_input| {
                    let participant = ::std::sync::Arc::clone(&participant);
                    async move {
                        let ctx = super::#context::from_runtime(ctx)?;
                        #decode
                        let outcome = participant.#method(ctx, #(#args),*).await?;
                        ::std::result::Result::Ok(#emit)
                    }
                },
            )
        }
    };
    if let Some(retry) = r.retry.as_deref() {
        let max = retry.max;
        let ms = u64::try_from(retry.backoff.as_millis()).unwrap_or(u64::MAX);
        reaction = quote!(#reaction.retry(#rt_retry_policy::new(#max, ::std::time::Duration::from_millis(#ms))));
    }
    if let Some(&(t, _)) = r.timeout.as_deref() {
        let ms = u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
        reaction = quote!(#reaction.timeout(::std::time::Duration::from_millis(#ms)));
    }
    if let Some(&(n, _)) = r.bounded.as_deref() {
        reaction = quote!(#reaction.bounded(#n));
    }
    reaction
}

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
pub(crate) fn sketches(spec: &CheckedSpec, names: &mut Names, m: &str) -> Vec<ParticipantSketch> {
    let plans = plan(spec, names);
    plans
        .iter()
        .map(|p| {
            let module = format!("{m}::{}", p.module);
            let handlers = p
                .reactions
                .iter()
                .map(|rp| {
                    let r = spec.reaction(rp.id);
                    let params = params(spec, r, rp, &p.module)
                        .into_iter()
                        .map(|(n, t)| (n.to_string(), format!("{m}::{}", compact(&t.to_string()))))
                        .collect();
                    let output = match &rp.outcome_enum {
                        Some((e, _)) => format!("{module}::{e}"),
                        None => {
                            let o = compact(&rp.output.to_string());
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
                        Some((e, variants)) => variants
                            .iter()
                            .map(|(v, evs)| {
                                (
                                    OutcomeShape::Variant(format!("{module}::{e}::{v}")),
                                    evs.clone(),
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
