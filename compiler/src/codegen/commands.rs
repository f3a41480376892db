//! `Commands`: the typed way to send each command and `@external` event.

use super::docs::doc_lines;
use super::plan::NamingPlan;
use super::runtime;
use crate::model::CheckedSpec;
use proc_macro2::TokenStream;
use quote::quote;

/// The typed way to send each command (and `@external` event).
pub(crate) fn commands(spec: &CheckedSpec, plan: &NamingPlan) -> TokenStream {
    let rt_broker_error = runtime::broker_error();
    let rt_client = runtime::client();
    let rt_event_id = runtime::event_id();
    let rt_shared_broker = runtime::shared_broker();
    let rt_topics = runtime::topics();
    let commands = &plan.commands;
    let key = &plan.key;
    let source = format!("{}/commands", spec.name.text);
    let with_version = plan.version.as_ref().map(|v| quote!(.with_version(#v)));
    let sends = spec
        .messages
        .iter()
        .zip(plan.messages())
        .filter_map(|(m, names)| Some((m, &names.ty, names.send.as_ref()?)))
        .map(|(m, ty, method)| {
            let what = if m.is_command() {
                "command"
            } else {
                "external event"
            };
            let mut lines = vec![format!(
                "Sends the `{}` {what} for instance `key`.",
                m.name.text
            )];
            if !m.docs.is_empty() {
                lines.push(String::new());
                lines.extend(m.docs.lines.iter().cloned());
            }
            if let Some(http) = &m.http {
                lines.push(String::new());
                lines.push(format!(
                    "Also exposed as `{} {}`.",
                    http.method.as_str(),
                    http.path
                ));
            }
            let doc = doc_lines(&lines);
            let deprecated = m.deprecated.as_ref().map(|d| match &d.reason {
                Some(r) => quote!(#[deprecated(note = #r)]),
                None => quote!(#[deprecated]),
            });
            quote! {
                #doc
                #deprecated
                pub async fn #method(
                    &self,
                    key: &#key,
                    message: #ty,
                ) -> ::std::result::Result<#rt_event_id, #rt_broker_error> {
                    self.client.send(::std::string::ToString::to_string(key), message).await
                }
            }
        });
    quote! {
        /// Sends the choreography's commands and `@external` events.
        #[derive(::std::clone::Clone)]
        pub struct #commands {
            client: #rt_client,
        }

        impl #commands {
            /// Commands sent on `broker` under the default topic names.
            pub fn new(broker: #rt_shared_broker) -> Self {
                Self::with_topics(broker, #rt_topics::default())
            }

            /// Commands sent on `broker` under the given topic names.
            pub fn with_topics(
                broker: #rt_shared_broker,
                topics: #rt_topics,
            ) -> Self {
                Self::from_client(#rt_client::new(broker, topics, #source))
            }

            /// Commands sent through an existing client.
            pub fn from_client(client: #rt_client) -> Self {
                Self { client: client #with_version }
            }

            /// The underlying client.
            pub fn client(&self) -> &#rt_client {
                &self.client
            }

            #(#sends)*
        }
    }
}
