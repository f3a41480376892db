//! Every path generated code writes into the runtime, in one place: the
//! compiler's side of the contract whose runtime side is
//! `runtime/src/codegen.rs` (`choreo_runtime::codegen`).
//!
//! Code generation, the HTTP ingress and the files a scaffold keeps name
//! the runtime only through this file, and only inside that module: a
//! runtime refactor that keeps `choreo_runtime::codegen` whole cannot break
//! generated code, and one that does not fails here, at one place.
//! `compiler/tests/runtime_contract.rs` checks the generated code of every
//! corpus spec against it.

use proc_macro2::TokenStream;
use quote::quote;

/// The module generated code uses, as Rust source text: for templates and
/// for sample values written as text.
pub(crate) const MODULE: &str = "::choreo_runtime::codegen";

/// `item` (one of the functions below) as Rust source text.
pub(crate) fn text(item: &TokenStream) -> String {
    item.to_string().replace(' ', "")
}

/// One function per item: `name() -> ::choreo_runtime::codegen::Path`.
macro_rules! items {
    ($($(#[$doc:meta])* $name:ident => $($seg:ident)::+;)*) => {
        $(
            $(#[$doc])*
            pub(crate) fn $name() -> TokenStream {
                quote!(::choreo_runtime::codegen::$($seg)::+)
            }
        )*
    };
}

items! {
    /// serde, which the data types' derives name (`#[serde(crate = …)]`).
    serde => serde;

    // The spec's built-in types.
    /// `uuid`.
    uuid => Uuid;
    /// `timestamp`.
    timestamp => Timestamp;
    /// `duration`.
    duration => Duration;
    /// `decimal`.
    decimal => Decimal;
    /// `bytes`.
    bytes => Bytes;
    /// `json`.
    json => Json;

    // Messages and the service wiring.
    /// The trait of commands and events (their wire type).
    message => Message;
    /// An event's id.
    event_id => EventId;
    /// A broker's error.
    broker_error => BrokerError;
    /// A connected broker.
    shared_broker => SharedBroker;
    /// What the runtime tells a handler.
    context => Context;
    /// A handler's error.
    handler_error => HandlerError;
    /// A participant's service.
    service_definition => ServiceDefinition;
    /// One reaction of a service.
    reaction => Reaction;
    /// What triggers a reaction.
    trigger => Trigger;
    /// What a reaction emits.
    emit => Emit;
    /// The event a reaction handles.
    input => Input;
    /// `@retry`.
    retry_policy => RetryPolicy;
    /// Sends commands.
    client => Client;
    /// Topic names.
    topics => Topics;
    /// Inbox and state stores.
    stores => Stores;
    /// Where stores keep their data.
    store_options => StoreOptions;
    /// A service's options.
    service_options => ServiceOptions;
    /// A running service.
    service_handle => ServiceHandle;
    /// A service's error.
    service_error => ServiceError;

    // Progress.
    /// A choreography's reactions and terminal events.
    topology => Topology;
    /// Success or failure of a terminal event.
    terminal_kind => TerminalKind;
    /// Follows instances.
    instance_tracker => InstanceTracker;

    // The participants' test fixture.
    /// A participant run alone.
    participant_fixture => ParticipantFixture;
    /// Why a fixture failed.
    fixture_error => FixtureError;
    /// What a fixture saw emitted.
    emitted => Emitted;

    // The HTTP ingress (the runtime's `http` feature).
    /// axum, re-exported.
    axum => http::axum;
    /// The ingress' shared state.
    ingress_state => http::IngressState;
    /// The ingress' options.
    ingress_options => http::IngressOptions;
    /// A command request's headers.
    command_request => http::CommandRequest;
    /// Parses an instance key.
    parse_key => http::parse_key;
    /// Reads a body within the limit.
    read_body => http::read_body;
    /// Decodes a body.
    decode_body => http::decode_body;
    /// `202 Accepted`.
    accepted => http::accepted;
    /// `503`.
    unavailable => http::unavailable;
    /// `GET` of an instance's state.
    http_state => http::state;
}
