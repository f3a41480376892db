//! A trait per participant, with one handler per reaction whose types admit
//! exactly what the spec declares, and the wiring that runs an
//! implementation on the runtime.

use super::docs::{doc_lines, docs};
use super::plan::{NamingPlan, ParticipantNames, ReactionNames};
use super::runtime;
use crate::model::{CheckedSpec, MessageId, Reaction, TriggerKind};
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

/// The type a handler returns, as seen from the module's top level.
pub(super) fn output(
    spec: &CheckedSpec,
    plan: &NamingPlan,
    participant: &ParticipantNames,
    rp: &ReactionNames,
) -> TokenStream {
    if let Some(outcomes) = &rp.outcome_enum {
        let module = &participant.module;
        let name = &outcomes.name;
        return quote!(#module::#name);
    }
    match spec.reaction(rp.id).outcomes() {
        [single] if !single.is_none() => {
            let tys: Vec<&Ident> = single.ids().map(|e| plan.message_type(e)).collect();
            match tys.as_slice() {
                [one] => quote!(#one),
                _ => quote!((#(#tys),*)),
            }
        }
        _ => quote!(()),
    }
}

/// The reaction as written in the spec, for docs (here and in the
/// scaffold's sketches).
pub(super) fn spec_text(spec: &CheckedSpec, r: &Reaction) -> String {
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
pub(super) fn params(
    spec: &CheckedSpec,
    plan: &NamingPlan,
    participant: &ParticipantNames,
    rp: &ReactionNames,
) -> Vec<(Ident, TokenStream)> {
    if let Some(triggers) = &rp.trigger_enum {
        let module = &participant.module;
        let name = &triggers.name;
        return vec![(format_ident!("event"), quote!(#module::#name))];
    }
    let r = spec.reaction(rp.id);
    if !rp.join_params.is_empty() {
        return rp
            .join_params
            .iter()
            .zip(r.trigger.ids())
            .map(|(name, m)| {
                let ty = plan.message_type(m);
                (name.clone(), quote!(#ty))
            })
            .collect();
    }
    let ty = r.trigger.ids().next().map(|m| plan.message_type(m));
    vec![(format_ident!("event"), quote!(#ty))]
}

/// The trait of one participant.
pub(crate) fn participant_trait(
    spec: &CheckedSpec,
    plan: &NamingPlan,
    participant: &ParticipantNames,
) -> TokenStream {
    let rt_handler_error = runtime::handler_error();
    let p = spec.participant(participant.id);
    let trait_name = &participant.trait_name;
    let doc = docs(
        &p.docs,
        &format!(
            "The `{}` participant: implement it to run the service.",
            p.name.text
        ),
    );
    let ctx = &plan.context;
    let methods = participant.reactions.iter().map(|rp| {
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
        let doc = doc_lines(&lines);
        let method = &rp.method;
        let output = output(spec, plan, participant, rp);
        let params = params(spec, plan, participant, rp)
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
    plan: &NamingPlan,
    participant: &ParticipantNames,
) -> TokenStream {
    let rt_emitted = runtime::emitted();
    let rt_fixture_error = runtime::fixture_error();
    let rt_message = runtime::message();
    let rt_participant_fixture = runtime::participant_fixture();
    let rt_service_definition = runtime::service_definition();
    let p = spec.participant(participant.id);
    let module = &participant.module;
    let trait_name = &participant.trait_name;
    let key = &plan.key;
    let pname = p.name.text.as_str();
    let mdoc = format!(" Types and wiring of the `{pname}` participant.");

    let mut enums = Vec::new();
    let mut reactions = Vec::new();
    let mut emits: Vec<MessageId> = Vec::new();
    for rp in &participant.reactions {
        let r = spec.reaction(rp.id);
        for e in r.emitted() {
            if !emits.contains(&e) {
                emits.push(e);
            }
        }
        if let Some(outcomes) = &rp.outcome_enum {
            let enum_name = &outcomes.name;
            let doc = format!(
                " The outcomes of `{}`: exactly one happens.",
                spec_text(spec, r)
            );
            let vs = outcomes.variants.iter().zip(r.outcomes()).map(|(v, o)| {
                let events: Vec<MessageId> = o.ids().collect();
                let tys = events.iter().map(|e| {
                    let t = plan.message_type(*e);
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
        if let Some(triggers) = &rp.trigger_enum {
            let enum_name = &triggers.name;
            let doc = format!(" What triggered `{}`: one of these.", spec_text(spec, r));
            let vs = triggers.variants.iter().zip(r.trigger.ids()).map(|(v, m)| {
                let t = plan.message_type(m);
                let vdoc = format!(" `{}` arrived.", spec.message_name(m));
                quote! { #[doc = #vdoc] #v(super::#t) }
            });
            enums.push(quote! {
                #[doc = #doc]
                #[derive(::std::fmt::Debug, ::std::clone::Clone, ::std::cmp::PartialEq)]
                pub enum #enum_name { #(#vs,)* }
            });
        }
        reactions.push(wiring(spec, plan, participant, rp));
    }

    let emit_types = emits.iter().map(|e| {
        let t = plan.message_type(*e);
        quote!(<super::#t as #rt_message>::TYPE)
    });
    let mut consumed: Vec<MessageId> = Vec::new();
    for rp in &participant.reactions {
        for m in spec.reaction(rp.id).trigger.ids() {
            if !consumed.contains(&m) {
                consumed.push(m);
            }
        }
    }
    let consumes = consumed.iter().map(|m| {
        let t = plan.message_type(*m);
        quote!(impl Consumes for super::#t {})
    });
    let version = plan.version.as_ref().map(|v| quote!(.version(super::#v)));
    let choreography = &plan.choreography;

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
    plan: &NamingPlan,
    participant: &ParticipantNames,
    rp: &ReactionNames,
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
    let context = &plan.context;
    let method = &rp.method;
    let name = &rp.name;
    let types = r.trigger.ids().map(|m| {
        let t = plan.message_type(m);
        quote!(<super::#t as #rt_message>::TYPE)
    });
    let trigger = if r.trigger.is_join() {
        quote!(#rt_trigger::all([#(#types),*]))
    } else {
        quote!(#rt_trigger::any([#(#types),*]))
    };

    // Decoding the input into the handler's arguments.
    let (decode, args) = if let Some(triggers) = &rp.trigger_enum {
        let enum_name = &triggers.name;
        let arms = triggers.variants.iter().zip(r.trigger.ids()).map(|(v, m)| {
            let t = plan.message_type(m);
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
        let params = params(spec, plan, participant, rp);
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
        (Some(outcomes), all) => {
            let enum_name = &outcomes.name;
            let arms = outcomes.variants.iter().zip(all).map(|(v, o)| {
                if o.is_none() {
                    quote!(#enum_name::#v => #rt_emit::none(),)
                } else {
                    let vars: Vec<Ident> = (0..o.events.len())
                        .map(|i| format_ident!("e{}", i))
                        .collect();
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
