//! The typed context a handler receives: the instance key parsed into the
//! spec's key type, beside the runtime's own context.

use super::plan::NamingPlan;
use super::runtime;
use crate::model::CheckedSpec;
use proc_macro2::TokenStream;
use quote::quote;

/// The typed context handlers receive.
pub(crate) fn context(spec: &CheckedSpec, plan: &NamingPlan) -> TokenStream {
    let rt_context = runtime::context();
    let rt_event_id = runtime::event_id();
    let rt_handler_error = runtime::handler_error();
    let ctx = &plan.context;
    let key = &plan.key;
    let key_ty = spec.key().ty.name();
    quote! {
        /// What a handler knows about the event it handles.
        #[derive(::std::fmt::Debug, ::std::clone::Clone)]
        pub struct #ctx {
            key: #key,
            inner: #rt_context,
        }

        impl #ctx {
            /// Wraps the runtime's context, parsing the instance key.
            pub fn from_runtime(
                inner: #rt_context,
            ) -> ::std::result::Result<Self, #rt_handler_error> {
                let key = inner.instance_key().parse::<#key>().map_err(|e| {
                    #rt_handler_error::rejected(::std::format!(
                        "the instance key `{}` is not a valid {}: {}",
                        inner.instance_key(),
                        #key_ty,
                        e
                    ))
                })?;
                ::std::result::Result::Ok(Self { key, inner })
            }

            /// The instance this event belongs to.
            pub fn key(&self) -> &#key {
                &self.key
            }

            /// The id of the event being handled.
            pub fn event_id(&self) -> &#rt_event_id {
                self.inner.event_id()
            }

            /// The delivery attempt, from 1 (above 1 on a retry).
            pub fn attempt(&self) -> u32 {
                self.inner.attempt()
            }

            /// The runtime's own context: reaction name and tracing span.
            pub fn runtime(&self) -> &#rt_context {
                &self.inner
            }
        }
    }
}
