//! What runs the choreography as a whole: its topology, for an instance
//! tracker, and `start_all`, which starts every participant.

use super::plan::NamingPlan;
use super::runtime;
use crate::model::{CheckedSpec, Settlement};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// The choreography's topology, for the instance tracker.
pub(crate) fn topology(spec: &CheckedSpec, plan: &NamingPlan) -> TokenStream {
    let rt_message = runtime::message();
    let rt_terminal_kind = runtime::terminal_kind();
    let rt_topology = runtime::topology();
    let choreography = &plan.choreography;
    let rt_message = &rt_message;
    let reactions = plan.participants().iter().flat_map(|p| {
        let pname = spec.participant(p.id).name.text.to_string();
        p.reactions.iter().map(move |rp| {
            let r = spec.reaction(rp.id);
            let name = &rp.name;
            let types = r.trigger.ids().map(|m| {
                let t = plan.message_type(m);
                quote!(<#t as #rt_message>::TYPE)
            });
            quote!(.reaction(#pname, #name, [#(#types),*]))
        })
    });
    let events = plan.messages().iter().map(|m| {
        let t = &m.ty;
        quote!(.event(<#t as #rt_message>::TYPE))
    });
    let terminals = spec
        .messages
        .iter()
        .zip(plan.messages())
        .filter_map(|(m, names)| {
            let (s, _) = m.terminal?;
            let t = &names.ty;
            let kind = match s {
                Settlement::Success => quote!(#rt_terminal_kind::Success),
                Settlement::Failure => quote!(#rt_terminal_kind::Failure),
            };
            Some(quote!(.terminal(<#t as #rt_message>::TYPE, #kind)))
        });
    quote! {
        /// Every reaction, event and terminal event of the choreography, for
        /// an `InstanceTracker` to follow instances with.
        pub fn topology() -> #rt_topology {
            #rt_topology::new(#choreography)
                #(#reactions)*
                #(#events)*
                #(#terminals)*
        }
    }
}

/// Starts every participant on one broker.
pub(crate) fn start_all(plan: &NamingPlan) -> TokenStream {
    let plans = plan.participants();
    let rt_service_error = runtime::service_error();
    let rt_service_handle = runtime::service_handle();
    let rt_service_options = runtime::service_options();
    let rt_shared_broker = runtime::shared_broker();
    let rt_store_options = runtime::store_options();
    let rt_stores = runtime::stores();
    let generics: Vec<Ident> = (0..plans.len())
        .map(|i| Ident::new(&format!("__P{i}"), Span::call_site()))
        .collect();
    let bounds = plans.iter().zip(&generics).map(|(p, g)| {
        let t = &p.trait_name;
        quote!(#g: #t)
    });
    let args = plans.iter().zip(&generics).map(|(p, g)| {
        let a = &p.arg;
        quote!(#a: #g)
    });
    let starts = plans.iter().map(|p| {
        let a = &p.arg;
        let m = &p.module;
        quote! {
            handles.push(#m::definition(#a).start(::std::clone::Clone::clone(&broker), ::std::clone::Clone::clone(&stores), ::std::clone::Clone::clone(&options)).await?);
        }
    });
    // `> >`, not `>>`: written apart, the two tokens print the same
    // whether they come from here or from the macro's re-lexed text.
    quote! {
        /// Starts every participant on `broker`, each as its own consumer
        /// group, and returns their handles (in the spec's order).
        ///
        /// `stores`: `None` for the broker's own durable stores under the
        /// topics' prefix (NATS Key-Value on NATS, keys on Redis, memory on
        /// the memory broker), or the stores to use.
        pub async fn start_all<#(#bounds),*>(
            broker: #rt_shared_broker,
            stores: impl ::std::convert::Into<::std::option::Option<#rt_stores> >,
            options: #rt_service_options,
            #(#args),*
        ) -> ::std::result::Result<::std::vec::Vec<#rt_service_handle>, #rt_service_error> {
            let stores = match ::std::convert::Into::into(stores) {
                ::std::option::Option::Some(stores) => stores,
                ::std::option::Option::None => {
                    let prefix = #rt_store_options::with_prefix(options.topics.prefix());
                    #rt_stores::of_broker(&broker, &prefix).await?
                }
            };
            let mut handles = ::std::vec::Vec::new();
            #(#starts)*
            ::std::result::Result::Ok(handles)
        }
    }
}
