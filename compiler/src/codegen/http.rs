//! The HTTP ingress of a spec's `@http` commands (option `http`): an axum
//! router whose routes decode the body into the command's type before
//! anything is sent, and read instances' state from a tracker.
//!
//! Each `@http(METHOD "/path")` command gets its route. Every collection
//! also gets `GET …/{key}`: the path itself when it names the key, else the
//! path followed by `/{key}` (`POST /orders` → `GET /orders/{order_id}`).

use super::names::{id, Namespace};
use super::Names;
use crate::model::{CheckedSpec, HttpMethod, Scalar};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use std::collections::{BTreeMap, BTreeSet};

/// The `http` module, or nothing when the spec has no `@http` command.
pub(crate) fn module(spec: &CheckedSpec, names: &Names) -> TokenStream {
    let key_name = spec.key().name.text.to_string();
    let placeholder = format!("{{{key_name}}}");
    let commands_ty = &names.commands;
    let key_ty = &names.key;
    let mut handlers = Vec::new();
    let mut routes: BTreeMap<String, Vec<TokenStream>> = BTreeMap::new();
    let mut with_state: BTreeSet<String> = BTreeSet::new();
    let mut fns = Namespace::default();
    for fixed in ["router", "state", "Ingress"] {
        fns.take(fixed);
    }
    // Paths where a command itself answers GET keep it; the state route
    // goes elsewhere only where nothing else answers GET.
    let command_gets: BTreeSet<String> = spec
        .messages
        .iter()
        .filter_map(|m| m.http.as_ref())
        .filter(|r| r.method == HttpMethod::Get)
        .map(|r| r.path.clone())
        .collect();
    for (mid, m) in spec.message_ids().map(|i| (i, spec.message(i))) {
        let Some(route) = &m.http else { continue };
        let ty = id(&m.name.text);
        let send = super::command_method_ident(spec, mid);
        let handler = Ident::new(
            &fns.fresh(&super::names::snake(&m.name.text)),
            Span::call_site(),
        );
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
        let key_from = if keyed {
            quote! {
                let key: super::#key_ty = match ::choreo_runtime::http::parse_key(&raw_key, #key_name) {
                    ::std::result::Result::Ok(key) => key,
                    ::std::result::Result::Err(response) => return response,
                };
            }
        } else {
            new_key(spec.key().ty, key_ty)
        };
        let path_arg = keyed.then(
            || quote!(axum::extract::Path(raw_key): axum::extract::Path<::std::string::String>,),
        );
        let doc = format!(
            " `{} {}`: sends `{}`.",
            route.method.as_str(),
            route.path,
            m.name.text
        );
        handlers.push(quote! {
            #[doc = #doc]
            async fn #handler(
                axum::extract::State(ingress): axum::extract::State<Ingress>,
                #path_arg
                body: axum::body::Bytes,
            ) -> axum::response::Response {
                let message: super::#ty = match ::choreo_runtime::http::decode_body(&body) {
                    ::std::result::Result::Ok(message) => message,
                    ::std::result::Result::Err(response) => return response,
                };
                #key_from
                let key_text = ::std::string::ToString::to_string(&key);
                match ingress.commands.#send(&key, message).await {
                    ::std::result::Result::Ok(id) => ::choreo_runtime::http::accepted(&key_text, &id, &#loc),
                    ::std::result::Result::Err(e) => ::choreo_runtime::http::unavailable(e),
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
        let chain = quote!(axum::routing::#first #(.#rest)*);
        quote!(.route(#path, #chain))
    });
    quote! {
        /// The HTTP ingress of the `@http` commands, and the state of each
        /// instance, on axum (choreo-runtime's `http` feature).
        pub mod http {
            use ::choreo_runtime::http::axum;

            /// What the routes share.
            #[derive(::std::clone::Clone)]
            pub struct Ingress {
                commands: super::#commands_ty,
                tracker: ::std::sync::Arc<::choreo_runtime::progress::InstanceTracker>,
            }

            /// The routes: one per `@http` command, and `GET` of each
            /// instance's state. A body that does not decode is answered
            /// `400` and nothing is sent.
            pub fn router(
                commands: super::#commands_ty,
                tracker: ::std::sync::Arc<::choreo_runtime::progress::InstanceTracker>,
            ) -> axum::Router {
                axum::Router::new()
                    #(#route_calls)*
                    .with_state(Ingress { commands, tracker })
            }

            /// `GET`: how far the instance has got.
            async fn state(
                axum::extract::State(ingress): axum::extract::State<Ingress>,
                axum::extract::Path(key): axum::extract::Path<::std::string::String>,
            ) -> axum::response::Response {
                ::choreo_runtime::http::state(&ingress.tracker, &key)
            }

            #(#handlers)*
        }
    }
}

/// axum 0.8 writes path parameters as `{name}`, like specs.
fn axum_path(path: &str) -> String {
    path.to_string()
}

fn new_key(ty: Scalar, key_ty: &Ident) -> TokenStream {
    let make = match ty {
        Scalar::Uuid => quote!(::choreo_runtime::types::Uuid::new_v4()),
        Scalar::String => quote!(::std::string::ToString::to_string(
            &::choreo_runtime::types::Uuid::new_v4()
        )),
        Scalar::U64 => quote!(::choreo_runtime::http::new_numeric_key()),
        Scalar::U32 => {
            quote!((::choreo_runtime::http::new_numeric_key() % u64::from(u32::MAX)) as u32)
        }
        Scalar::I64 => {
            quote!((::choreo_runtime::http::new_numeric_key() % (i64::MAX as u64)) as i64)
        }
        Scalar::I32 => {
            quote!((::choreo_runtime::http::new_numeric_key() % (i32::MAX as u64)) as i32)
        }
        // Not a key type (E0102); unreachable for a checked spec.
        _ => quote!(::std::default::Default::default()),
    };
    quote!(let key: super::#key_ty = #make;)
}
