//! The Rust back end: from a checked spec, a module of typed Rust in which a
//! participant can only do what the spec allows.
//!
//! [`module`] returns the module as a `TokenStream` built with `quote!`
//! (what `choreo!` expands to); [`source`] pretty-prints it with
//! prettyplease for files (`choreoc generate`, [`crate::build`]). Items come
//! in the spec's order, so the output is deterministic. What the module
//! holds is described in `docs/codegen.md`.

mod crate_source;
mod http;
mod names;
mod participants;
pub(crate) mod runtime;
mod types;

use crate::model::{CheckedSpec, Docs, Settlement};
pub use crate_source::{CrateSource, CrateSourceError};
use names::{id, Namespace};
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

/// Names chosen for one module, so that spec names and generated helpers
/// never collide.
pub(crate) struct Names {
    /// The type namespace of the module.
    types: Namespace,
    /// Argument names of `start_all`.
    args: Namespace,
    key: Ident,
    context: Ident,
    commands: Ident,
    choreography: Ident,
    version: Option<Ident>,
    wire_prefix: String,
    record_cycles: Vec<usize>,
}

impl Names {
    fn new(spec: &CheckedSpec) -> Self {
        let mut types = Namespace::default();
        for name in spec
            .records
            .iter()
            .map(|r| &r.name.text)
            .chain(spec.enums.iter().map(|e| &e.name.text))
            .chain(spec.messages.iter().map(|m| &m.name.text))
            .chain(spec.participants.iter().map(|p| &p.name.text))
        {
            types.take(&id(name).to_string());
        }
        let mut make = |base: &str| Ident::new(&types.fresh(base), Span::call_site());
        let key = make("Key");
        let context = make("Context");
        let commands = make("Commands");
        let wire_prefix = match &spec.version {
            Some(v) => format!("{}.v{}.", spec.name.text, v.value.major),
            None => format!("{}.", spec.name.text),
        };
        let mut args = Namespace::default();
        for taken in ["broker", "stores", "options"] {
            args.take(taken);
        }
        Names {
            types,
            args,
            key,
            context,
            commands,
            choreography: Ident::new("CHOREOGRAPHY", Span::call_site()),
            version: spec
                .version
                .as_ref()
                .map(|_| Ident::new("VERSION", Span::call_site())),
            wire_prefix,
            record_cycles: types::recursive_records(spec),
        }
    }

    /// The wire type (and topic) of a message.
    fn wire_type(&self, message: &str) -> String {
        format!("{}{message}", self.wire_prefix)
    }
}

/// `#[doc]` attributes from a spec's doc comment, or `fallback` when it has
/// none (so every generated public item is documented).
pub(crate) fn docs(docs: &Docs, fallback: &str) -> TokenStream {
    if docs.is_empty() {
        doc_lines(&[fallback.to_string()])
    } else {
        doc_lines(&docs.lines)
    }
}

/// One `#[doc]` attribute per line, each with the leading space rustdoc
/// expects.
pub(crate) fn doc_lines(lines: &[String]) -> TokenStream {
    let attrs = lines.iter().map(|l| {
        let l = format!(" {l}");
        quote!(#[doc = #l])
    });
    quote!(#(#attrs)*)
}

/// The name of the generated module: the choreography's name in
/// snake_case (`TravelBooking` → `travel_booking`).
pub fn module_name(spec: &CheckedSpec) -> String {
    id(&names::snake(&spec.name.text)).to_string()
}

/// The names a spec's generated services use at run time: what a tool
/// that watches a deployment from outside (the monitor) must match, taken
/// from the same planning as the generated code so that the two cannot
/// drift apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireNames {
    /// Per message, by [`MessageId`](crate::model::MessageId) index: its
    /// wire type, which is also its topic.
    pub types: Vec<String>,
    /// Per reaction, by [`ReactionId`](crate::model::ReactionId) index: the
    /// reaction's name in progress notices and inbox scopes.
    pub reactions: Vec<String>,
}

/// The run-time names of `spec`'s messages and reactions.
pub fn wire_names(spec: &CheckedSpec) -> WireNames {
    let mut names = Names::new(spec);
    let types = spec
        .messages
        .iter()
        .map(|m| names.wire_type(&m.name.text))
        .collect();
    let mut reactions = vec![String::new(); spec.reactions.len()];
    for plan in participants::plan(spec, &mut names) {
        for r in plan.reactions {
            if let Some(slot) = reactions.get_mut(r.id.index()) {
                *slot = r.name;
            }
        }
    }
    WireNames { types, reactions }
}

/// What to generate beyond the module's core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// An axum HTTP ingress for the `@http` commands (`pub mod http`); the
    /// crate then needs choreo-runtime's `http` feature.
    pub http: bool,
}

/// The generated module, `pub mod <name> { … }`, with default options.
pub fn module(spec: &CheckedSpec) -> TokenStream {
    module_with(spec, Options::default())
}

/// The generated module with `options`.
pub fn module_with(spec: &CheckedSpec, options: Options) -> TokenStream {
    let mut names = Names::new(spec);
    let plans = participants::plan(spec, &mut names);
    let module = id(&names::snake(&spec.name.text));

    let mut module_doc = if spec.docs.is_empty() {
        vec![format!("The `{}` choreography.", spec.name.text)]
    } else {
        spec.docs.lines.to_vec()
    };
    module_doc.push(String::new());
    module_doc.push(format!(
        "Generated by choreoc {} from the spec; do not edit. See `docs/codegen.md` of choreo.",
        env!("CARGO_PKG_VERSION")
    ));
    let module_doc = module_doc.iter().map(|l| {
        let l = format!(" {l}");
        quote!(#![doc = #l])
    });

    let choreography = &names.choreography;
    let chor_name = spec.name.text.as_str();
    let version = names
        .version
        .as_ref()
        .zip(spec.version.as_ref())
        .map(|(ident, v)| {
            let text = v.value.to_string();
            quote! {
                /// The spec's version, stamped on every event as `choreoversion`.
                pub const #ident: &str = #text;
            }
        });
    let key = types::key(spec, &names.key);
    let context = context(spec, &names);
    let records = types::records(spec, &names);
    let enums = types::enums(spec);
    let messages = types::messages(spec, &names);
    let traits = plans
        .iter()
        .map(|p| participants::participant_trait(spec, &names, p));
    let modules = plans
        .iter()
        .map(|p| participants::participant_module(spec, &names, p));
    let commands = commands(spec, &names);
    let topology = topology(spec, &names, &plans);
    let start_all = start_all(&plans);
    let http = if options.http {
        http::module(spec, &names)
    } else {
        TokenStream::new()
    };

    quote! {
        pub mod #module {
            #(#module_doc)*
            #![allow(
                deprecated,
                missing_docs,
                non_camel_case_types,
                non_snake_case,
                unused_imports,
                unused_qualifications,
                clippy::all,
                clippy::pedantic
            )]

            /// The choreography's name.
            pub const #choreography: &str = #chor_name;
            #version
            #key
            #context
            #(#records)*
            #(#enums)*
            #(#messages)*
            #(#traits)*
            #(#modules)*
            #commands
            #topology
            #start_all
            #http
        }
    }
}

/// The module as formatted Rust source, with a header saying where it came
/// from.
pub fn source(spec: &CheckedSpec) -> String {
    source_with(spec, Options::default())
}

/// The formatted module with `options`.
pub fn source_with(spec: &CheckedSpec, options: Options) -> String {
    let tokens = module_with(spec, options);
    let body = match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        // The generator builds valid Rust; should it not, the unformatted
        // tokens still compile errors at the right place for a bug report.
        Err(_) => tokens.to_string(),
    };
    format!(
        "// Generated by choreoc {} from the `{}` choreography. Do not edit:\n// changes are lost when it is generated again.\n\n{body}",
        env!("CARGO_PKG_VERSION"),
        spec.name.text
    )
}

/// The typed context handlers receive.
fn context(spec: &CheckedSpec, names: &Names) -> TokenStream {
    let rt_context = runtime::context();
    let rt_event_id = runtime::event_id();
    let rt_handler_error = runtime::handler_error();
    let ctx = &names.context;
    let key = &names.key;
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

/// The typed way to send each command (and `@external` event).
fn commands(spec: &CheckedSpec, names: &Names) -> TokenStream {
    let rt_broker_error = runtime::broker_error();
    let rt_client = runtime::client();
    let rt_event_id = runtime::event_id();
    let rt_shared_broker = runtime::shared_broker();
    let rt_topics = runtime::topics();
    let commands = &names.commands;
    let key = &names.key;
    let source = format!("{}/commands", spec.name.text);
    let with_version = names.version.as_ref().map(|v| quote!(.with_version(#v)));
    let mut methods = Namespace::default();
    for fixed in ["new", "with_topics", "from_client", "client"] {
        methods.take(fixed);
    }
    let sends = spec
        .messages
        .iter()
        .filter(|m| m.is_command() || m.external.is_some())
        .map(|m| {
            let ty = id(&m.name.text);
            let method = id(&methods.fresh(&names::snake(&m.name.text)));
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

/// The choreography's topology, for the instance tracker.
fn topology(
    spec: &CheckedSpec,
    names: &Names,
    plans: &[participants::ParticipantPlan],
) -> TokenStream {
    let rt_message = runtime::message();
    let rt_terminal_kind = runtime::terminal_kind();
    let rt_topology = runtime::topology();
    let choreography = &names.choreography;
    let rt_message = &rt_message;
    let reactions = plans.iter().flat_map(|p| {
        let pname = spec.participant(p.id).name.text.to_string();
        p.reactions.iter().map(move |rp| {
            let r = spec.reaction(rp.id);
            let name = &rp.name;
            let types = r.trigger.ids().map(|m| {
                let t = id(spec.message_name(m));
                quote!(<#t as #rt_message>::TYPE)
            });
            quote!(.reaction(#pname, #name, [#(#types),*]))
        })
    });
    let events = spec.messages.iter().map(|m| {
        let t = id(&m.name.text);
        quote!(.event(<#t as #rt_message>::TYPE))
    });
    let terminals = spec.messages.iter().filter_map(|m| {
        let (s, _) = m.terminal?;
        let t = id(&m.name.text);
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
fn start_all(plans: &[participants::ParticipantPlan]) -> TokenStream {
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

/// What the scaffold needs to write user code against the generated
/// module found at path `module_path` (e.g. `crate::shop`).
pub(crate) fn scaffold_view(
    spec: &CheckedSpec,
    module_path: &str,
) -> (Names, Vec<participants::ParticipantSketch>) {
    let mut names = Names::new(spec);
    let sketches = participants::sketches(spec, &mut names, module_path);
    (names, sketches)
}

impl Names {
    /// The generated key type's name.
    pub(crate) fn key_name(&self) -> String {
        self.key.to_string()
    }
    /// The generated context type's name.
    pub(crate) fn context_name(&self) -> String {
        self.context.to_string()
    }
    /// The generated command sender's name.
    pub(crate) fn commands_name(&self) -> String {
        self.commands.to_string()
    }
}

pub(crate) use participants::{OutcomeShape, ParticipantSketch};

/// The name of the `Commands` method that sends message `m`.
pub(crate) fn command_method(spec: &CheckedSpec, m: crate::model::MessageId) -> String {
    command_method_ident(spec, m).to_string()
}

/// The `Commands` method that sends message `m`, as an identifier.
pub(crate) fn command_method_ident(spec: &CheckedSpec, m: crate::model::MessageId) -> Ident {
    let mut methods = Namespace::default();
    for fixed in ["new", "with_topics", "from_client", "client"] {
        methods.take(fixed);
    }
    let mut found = String::new();
    for msg in spec.message_ids() {
        let message = spec.message(msg);
        if !(message.is_command() || message.external.is_some()) {
            continue;
        }
        let name = methods.fresh(&names::snake(&message.name.text));
        if msg == m {
            found = name;
        }
    }
    id(&found)
}
pub(crate) use names::{camel as rust_camel, ident as rust_ident, snake as rust_snake};

/// The package name of the crate `choreoc generate` writes.
pub fn crate_name(spec: &CheckedSpec) -> String {
    format!(
        "{}-choreo",
        module_name(spec).trim_start_matches("r#").replace('_', "-")
    )
}

/// The files of a library crate exposing the generated module.
pub fn crate_files(spec: &CheckedSpec, deps: &CrateSource) -> Vec<crate::output::GeneratedFile> {
    crate_files_with(spec, deps, Options::default())
}

/// [`crate_files`] with `options`; the HTTP ingress turns on the runtime's
/// `http` feature.
pub fn crate_files_with(
    spec: &CheckedSpec,
    deps: &CrateSource,
    options: Options,
) -> Vec<crate::output::GeneratedFile> {
    let features: &[&str] = if options.http { &["http"] } else { &[] };
    let version = spec
        .version
        .as_ref()
        .map_or_else(|| "0.1.0".to_string(), |v| v.value.to_string());
    let cargo = format!(
        "# Generated by choreoc {tool} from the `{name}` choreography; regenerate it\n# with `choreoc generate`. Changes here are kept: choreoc then refuses to\n# overwrite this file until `--force` is given.\n\n[package]\nname = \"{package}\"\nversion = \"{version}\"\nedition = \"2021\"\npublish = false\ndescription = \"Typed services of the {name} choreography\"\n\n[dependencies]\nchoreo-runtime = {runtime}\n",
        tool = env!("CARGO_PKG_VERSION"),
        name = spec.name.text,
        package = crate_name(spec),
        runtime = deps.runtime_toml(features),
    );
    let lib = format!(
        "//! Typed services of the `{}` choreography, generated by choreoc.\n\n{}",
        spec.name.text,
        source_with(spec, options)
    );
    vec![
        crate::output::GeneratedFile::generated("Cargo.toml", cargo),
        crate::output::GeneratedFile::generated("src/lib.rs", lib),
    ]
}
