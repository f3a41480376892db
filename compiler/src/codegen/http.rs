//! The HTTP ingress of a spec's `@http` commands (option `http`): an axum
//! router whose routes decode the body into the command's type before
//! anything is sent, and read instances' state from a tracker.
//!
//! Each `@http(METHOD "/path")` command gets its route. Every collection
//! also gets `GET …/{key}`: the path itself when it names the key, else the
//! path followed by `/{key}` (`POST /orders` → `GET /orders/{order_id}`).
//!
//! A route's instance key comes from its path, else from the
//! `Choreo-Key` header; only a `uuid` key is generated when neither gives
//! it. docs/codegen.md says what each answer means.

use super::plan::NamingPlan;
use super::runtime;
use crate::model::{CheckedSpec, HttpMethod, Scalar};
use proc_macro2::TokenStream;
use quote::quote;
use std::collections::{BTreeMap, BTreeSet};

/// The `http` module, or nothing when the spec has no `@http` command.
pub(crate) fn module(spec: &CheckedSpec, plan: &NamingPlan) -> TokenStream {
    let rt_accepted = runtime::accepted();
    let rt_axum = runtime::axum();
    let rt_command_request = runtime::command_request();
    let rt_decode_body = runtime::decode_body();
    let rt_http_state = runtime::http_state();
    let rt_ingress_options = runtime::ingress_options();
    let rt_ingress_state = runtime::ingress_state();
    let rt_instance_tracker = runtime::instance_tracker();
    let rt_message = runtime::message();
    let rt_parse_key = runtime::parse_key();
    let rt_read_body = runtime::read_body();
    let rt_unavailable = runtime::unavailable();
    let key_name = spec.key().name.text.to_string();
    let placeholder = format!("{{{key_name}}}");
    let commands_ty = &plan.commands;
    let key_ty = &plan.key;
    let mut handlers = Vec::new();
    let mut routes: BTreeMap<String, Vec<TokenStream>> = BTreeMap::new();
    let mut with_state: BTreeSet<String> = BTreeSet::new();
    // Paths where a command itself answers GET keep it; the state route
    // goes elsewhere only where nothing else answers GET.
    let command_gets: BTreeSet<String> = spec
        .messages
        .iter()
        .filter_map(|m| m.http.as_ref())
        .filter(|r| r.method == HttpMethod::Get)
        .map(|r| r.path.clone())
        .collect();
    for (m, names) in spec.messages.iter().zip(plan.messages()) {
        let (Some(route), Some(handler)) = (&m.http, &names.http_handler) else {
            continue;
        };
        let ty = &names.ty;
        let keyed = route.path.contains(&placeholder);
        let collection = if keyed {
            route.path.clone()
        } else {
            format!("{}/{placeholder}", route.path.trim_end_matches('/'))
        };
        let location = |key: TokenStream| {
            let prefix = collection.replace(&placeholder, "");
            let (head, tail) =
                prefix.split_at(collection.find(&placeholder).unwrap_or(prefix.len()));
            quote!(::std::format!("{}{}{}", #head, #key, #tail))
        };
        let loc = location(quote!(key));
        let route_text = format!("{} {}", route.method.as_str(), route.path);
        let parse = |raw: TokenStream| {
            quote! {
                match #rt_parse_key(#raw, #key_name) {
                    ::std::result::Result::Ok(key) => key,
                    ::std::result::Result::Err(response) => return response,
                }
            }
        };
        // The key: from the path when it names it; else from the key
        // header, which only a `uuid` key may go without (a generated key
        // of any other type could collide with another instance's).
        let key_from = if keyed {
            let from_path = parse(quote!(&raw_key));
            quote!(let key: super::#key_ty = #from_path;)
        } else if spec.key().ty == Scalar::Uuid {
            let from_header = parse(quote!(raw));
            quote! {
                let key: super::#key_ty = match request.key_header() {
                    ::std::option::Option::Some(raw) => #from_header,
                    ::std::option::Option::None => request.new_uuid_key(),
                };
            }
        } else {
            let from_header = parse(quote!(raw));
            quote! {
                let raw = match request.required_key(#route_text, #key_name) {
                    ::std::result::Result::Ok(raw) => raw,
                    ::std::result::Result::Err(response) => return response,
                };
                let key: super::#key_ty = #from_header;
            }
        };
        let path_arg = keyed.then(
            || quote!(#rt_axum::extract::Path(raw_key): #rt_axum::extract::Path<::std::string::String>,),
        );
        let doc = format!(" `{route_text}`: sends `{}`.", m.name.text);
        handlers.push(quote! {
            #[doc = #doc]
            async fn #handler(
                #rt_axum::extract::State(ingress): #rt_axum::extract::State<Ingress>,
                #path_arg
                headers: #rt_axum::http::HeaderMap,
                body: ::std::result::Result<#rt_axum::body::Bytes, #rt_axum::extract::rejection::BytesRejection>,
            ) -> #rt_axum::response::Response {
                let body = match #rt_read_body(body, ingress.state.options().body_limit) {
                    ::std::result::Result::Ok(body) => body,
                    ::std::result::Result::Err(response) => return response,
                };
                let message: super::#ty = match #rt_decode_body(&body) {
                    ::std::result::Result::Ok(message) => message,
                    ::std::result::Result::Err(response) => return response,
                };
                let request = match #rt_command_request::read(
                    &headers,
                    <super::#ty as #rt_message>::TYPE,
                ) {
                    ::std::result::Result::Ok(request) => request,
                    ::std::result::Result::Err(response) => return response,
                };
                #key_from
                let key_text = ::std::string::ToString::to_string(&key);
                let id = match ingress.state.event_id(&request, &key_text, &body) {
                    ::std::result::Result::Ok(id) => id,
                    ::std::result::Result::Err(response) => return response,
                };
                match ingress.commands.client().send_with_id(key_text.clone(), message, id).await {
                    ::std::result::Result::Ok(id) => #rt_accepted(&key_text, &id, &#loc),
                    ::std::result::Result::Err(e) => #rt_unavailable(e),
                }
            }
        });
        let method = match route.method {
            HttpMethod::Get => quote!(get),
            HttpMethod::Post => quote!(post),
            HttpMethod::Put => quote!(put),
            HttpMethod::Patch => quote!(patch),
            HttpMethod::Delete => quote!(delete),
        };
        routes
            .entry(axum_path(&route.path))
            .or_default()
            .push(quote!(#method(#handler)));
        if !command_gets.contains(&collection) && with_state.insert(collection.clone()) {
            routes
                .entry(axum_path(&collection))
                .or_default()
                .insert(0, quote!(get(state)));
        }
    }
    if handlers.is_empty() {
        return TokenStream::new();
    }
    let route_calls = routes.iter().map(|(path, methods)| {
        let (first, rest) = methods
            .split_first()
            .map_or((None, &[][..]), |(f, r)| (Some(f), r));
        let chain = quote!(#rt_axum::routing::#first #(.#rest)*);
        quote!(.route(#path, #chain))
    });
    quote! {
        /// The HTTP ingress of the `@http` commands, and the state of each
        /// instance, on axum (choreo-runtime's `http` feature).
        pub mod http {
            /// What the routes share.
            #[derive(::std::clone::Clone)]
            pub struct Ingress {
                commands: super::#commands_ty,
                state: #rt_ingress_state,
            }

            /// The routes, with the default options
            /// (`choreo_runtime::http::IngressOptions::default()`): see
            /// [`router_with`].
            pub fn router(
                commands: super::#commands_ty,
                tracker: ::std::sync::Arc<#rt_instance_tracker>,
            ) -> #rt_axum::Router {
                router_with(commands, tracker, #rt_ingress_options::default())
            }

            /// The routes: one per `@http` command, and `GET` of each
            /// instance's state. A body over `options.body_limit` is
            /// answered `413`, one that does not decode `400`, and nothing
            /// is sent. Authentication is a tower layer added to the
            /// router, such as `choreo_runtime::http::bearer(token)`.
            pub fn router_with(
                commands: super::#commands_ty,
                tracker: ::std::sync::Arc<#rt_instance_tracker>,
                options: #rt_ingress_options,
            ) -> #rt_axum::Router {
                #rt_axum::Router::new()
                    #(#route_calls)*
                    .layer(#rt_axum::extract::DefaultBodyLimit::max(options.body_limit))
                    .with_state(Ingress {
                        commands,
                        state: #rt_ingress_state::new(tracker, options),
                    })
            }

            /// `GET`: how far the instance has got.
            async fn state(
                #rt_axum::extract::State(ingress): #rt_axum::extract::State<Ingress>,
                #rt_axum::extract::Path(key): #rt_axum::extract::Path<::std::string::String>,
            ) -> #rt_axum::response::Response {
                #rt_http_state(&ingress.state.tracker, &key)
            }

            #(#handlers)*
        }
    }
}

/// axum 0.8 writes path parameters as `{name}`, like specs.
fn axum_path(path: &str) -> String {
    path.to_string()
}
