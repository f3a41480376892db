//! The envelope: CloudEvents 1.0 attributes, choreo's own attributes, data.
//!
//! | attribute | meaning |
//! |---|---|
//! | `id`, `source`, `specversion`, `type`, `time`, `datacontenttype` | CloudEvents 1.0 |
//! | `correlationid` | the instance key: every event of one instance carries it |
//! | `causationid` | the id of the event whose handling emitted this one |
//! | `traceparent`, `tracestate` | W3C trace context, continued from cause to effect |
//! | `choreoversion` | the `version` of the choreography spec |
//! | any other lower-case name | an extension (a "header"), carried unchanged |
//!
//! An envelope is one `Arc`: cloning it for every consumer group costs one
//! atomic increment.

mod id;
mod intern;
pub(crate) use intern::shared as interned;
pub mod json;
mod text;
mod trace;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use id::EventId;
use jiff::Timestamp;
pub use text::SharedStr;
pub use trace::{TraceParent, TraceParentError};

use crate::payload::{DecodeError, Message, Payload};

/// The CloudEvents version this runtime speaks.
pub const CLOUDEVENTS_VERSION: &str = "1.0";

/// The content type of JSON data.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// The source of envelopes whose builder was given none.
pub const DEFAULT_SOURCE: &str = "choreo";

/// Attribute names that are not extensions.
pub const RESERVED_ATTRIBUTES: &[&str] = &[
    "id",
    "source",
    "specversion",
    "type",
    "time",
    "datacontenttype",
    "dataschema",
    "subject",
    "data",
    "data_base64",
    "correlationid",
    "causationid",
    "traceparent",
    "tracestate",
    "choreoversion",
];

/// An envelope attribute was missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// A required attribute is absent.
    #[error("envelope has no `{0}` attribute")]
    Missing(&'static str),
    /// An attribute has a value of the wrong form.
    #[error("envelope attribute `{name}` is invalid: {reason}")]
    Invalid {
        /// The attribute.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The bytes are not a structured CloudEvent in JSON.
    #[error("envelope is not a JSON CloudEvent: {0}")]
    Malformed(String),
}

#[derive(Clone)]
struct Inner {
    id: EventId,
    source: SharedStr,
    ty: SharedStr,
    time: Timestamp,
    datacontenttype: Option<SharedStr>,
    correlation_id: SharedStr,
    causation_id: Option<EventId>,
    traceparent: Option<TraceParent>,
    tracestate: Option<SharedStr>,
    choreo_version: Option<SharedStr>,
    extensions: BTreeMap<String, String>,
    payload: Payload,
}

/// One event or command with its attributes.
#[derive(Clone)]
pub struct Envelope(Arc<Inner>);

impl Envelope {
    /// Starts an envelope of wire type `ty` for the instance `correlation_id`.
    pub fn builder(
        ty: impl Into<SharedStr>,
        correlation_id: impl Into<SharedStr>,
    ) -> EnvelopeBuilder {
        EnvelopeBuilder {
            inner: Inner {
                id: EventId::empty(),
                source: SharedStr::from_static(DEFAULT_SOURCE),
                ty: ty.into(),
                time: Timestamp::UNIX_EPOCH,
                datacontenttype: None,
                correlation_id: correlation_id.into(),
                causation_id: None,
                traceparent: None,
                tracestate: None,
                choreo_version: None,
                extensions: BTreeMap::new(),
                payload: Payload::empty(),
            },
            id_set: false,
            time_set: false,
            trace_set: false,
        }
    }

    /// An envelope carrying `message`, typed by `M::TYPE`.
    pub fn of<M: Message>(correlation_id: impl Into<SharedStr>, message: M) -> EnvelopeBuilder {
        Envelope::builder(M::TYPE, correlation_id).payload(Payload::typed(message))
    }

    /// The envelope of an event emitted by handling `cause`: same instance
    /// key, `causationid` = the cause's id, JSON content type, time now.
    /// (What the builder does, without moving a builder through each step:
    /// this runs once per emitted event.)
    pub fn caused_by(
        cause: &Envelope,
        id: EventId,
        ty: SharedStr,
        source: SharedStr,
        traceparent: TraceParent,
        choreo_version: Option<SharedStr>,
        payload: Payload,
    ) -> Envelope {
        Envelope(Arc::new(Inner {
            id,
            source,
            ty,
            time: Timestamp::now(),
            datacontenttype: Some(SharedStr::from_static(JSON_CONTENT_TYPE)),
            correlation_id: cause.0.correlation_id.clone(),
            causation_id: Some(cause.0.id.clone()),
            traceparent: Some(traceparent),
            tracestate: cause.0.tracestate.clone(),
            choreo_version,
            extensions: BTreeMap::new(),
            payload,
        }))
    }

    /// A builder holding every attribute of this envelope (same id).
    pub fn to_builder(&self) -> EnvelopeBuilder {
        EnvelopeBuilder {
            inner: (*self.0).clone(),
            id_set: true,
            time_set: true,
            trace_set: true,
        }
    }

    /// `id`.
    pub fn id(&self) -> &EventId {
        &self.0.id
    }
    /// `source`.
    pub fn source(&self) -> &str {
        &self.0.source
    }
    /// `type`: the wire type.
    pub fn ty(&self) -> &str {
        &self.0.ty
    }
    /// `type`, shared.
    pub fn ty_shared(&self) -> &SharedStr {
        &self.0.ty
    }
    /// `time`.
    pub fn time(&self) -> Timestamp {
        self.0.time
    }
    /// `datacontenttype`.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.0.datacontenttype.as_deref()
    }
    /// `correlationid`: the instance key.
    pub fn correlation_id(&self) -> &str {
        &self.0.correlation_id
    }
    /// `correlationid`, shared (emitted events reuse it without copying).
    pub fn correlation_shared(&self) -> &SharedStr {
        &self.0.correlation_id
    }
    /// `causationid`: the event whose handling emitted this one.
    pub fn causation_id(&self) -> Option<&EventId> {
        self.0.causation_id.as_ref()
    }
    /// `traceparent`.
    pub fn traceparent(&self) -> Option<TraceParent> {
        self.0.traceparent
    }
    /// `tracestate`, carried unchanged.
    pub fn tracestate(&self) -> Option<&str> {
        self.0.tracestate.as_deref()
    }
    /// `choreoversion`: the spec version.
    pub fn choreo_version(&self) -> Option<&str> {
        self.0.choreo_version.as_deref()
    }
    /// One extension attribute.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.0.extensions.get(name).map(String::as_str)
    }
    /// Every extension attribute, by name.
    pub fn extensions(&self) -> &BTreeMap<String, String> {
        &self.0.extensions
    }
    /// The data.
    pub fn payload(&self) -> &Payload {
        &self.0.payload
    }
    /// Decodes the data into `M`.
    pub fn decode<M: Message>(&self) -> Result<M, DecodeError> {
        self.0.payload.decode::<M>()
    }
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("Envelope");
        d.field("id", &i.id)
            .field("type", &i.ty)
            .field("source", &i.source)
            .field("correlationid", &i.correlation_id);
        if let Some(c) = &i.causation_id {
            d.field("causationid", c);
        }
        if !i.extensions.is_empty() {
            d.field("extensions", &i.extensions);
        }
        d.field("payload", &i.payload).finish()
    }
}

impl PartialEq for Envelope {
    /// Equal when every attribute and the data (as JSON) are equal.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        Arc::ptr_eq(a, b)
            || (a.id == b.id
                && a.source == b.source
                && a.ty == b.ty
                && a.time == b.time
                && a.datacontenttype == b.datacontenttype
                && a.correlation_id == b.correlation_id
                && a.causation_id == b.causation_id
                && a.traceparent == b.traceparent
                && a.tracestate == b.tracestate
                && a.choreo_version == b.choreo_version
                && a.extensions == b.extensions
                && a.payload == b.payload)
    }
}

/// Builds an [`Envelope`]; unset `id`, `time` and `traceparent` are made
/// fresh by [`EnvelopeBuilder::build`].
#[derive(Clone)]
pub struct EnvelopeBuilder {
    inner: Inner,
    id_set: bool,
    time_set: bool,
    trace_set: bool,
}

impl EnvelopeBuilder {
    /// Sets `id`.
    pub fn id(mut self, id: impl Into<EventId>) -> Self {
        self.inner.id = id.into();
        self.id_set = true;
        self
    }
    /// Sets `source`.
    pub fn source(mut self, source: impl Into<SharedStr>) -> Self {
        self.inner.source = source.into();
        self
    }
    /// Sets `type`.
    pub fn ty(mut self, ty: impl Into<SharedStr>) -> Self {
        self.inner.ty = ty.into();
        self
    }
    /// Sets `time`.
    pub fn time(mut self, time: Timestamp) -> Self {
        self.inner.time = time;
        self.time_set = true;
        self
    }
    /// Sets `datacontenttype` (defaults to JSON when there is data).
    pub fn datacontenttype(mut self, ct: impl Into<SharedStr>) -> Self {
        self.inner.datacontenttype = Some(ct.into());
        self
    }
    /// Sets `correlationid`.
    pub fn correlation_id(mut self, key: impl Into<SharedStr>) -> Self {
        self.inner.correlation_id = key.into();
        self
    }
    /// Sets `causationid`.
    pub fn causation_id(mut self, cause: impl Into<EventId>) -> Self {
        self.inner.causation_id = Some(cause.into());
        self
    }
    /// Sets `traceparent` (`None`: carry none).
    pub fn traceparent(mut self, tp: Option<TraceParent>) -> Self {
        self.inner.traceparent = tp;
        self.trace_set = true;
        self
    }
    /// Sets `tracestate`.
    pub fn tracestate(mut self, ts: impl Into<SharedStr>) -> Self {
        self.inner.tracestate = Some(ts.into());
        self
    }
    /// Sets `choreoversion`.
    pub fn choreo_version(mut self, v: impl Into<SharedStr>) -> Self {
        self.inner.choreo_version = Some(v.into());
        self
    }
    /// Sets the data.
    pub fn payload(mut self, payload: Payload) -> Self {
        self.inner.payload = payload;
        self
    }
    /// Sets an extension attribute; its name must be lower-case ASCII
    /// letters and digits and not one of [`RESERVED_ATTRIBUTES`].
    pub fn extension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, EnvelopeError> {
        let name = name.into();
        check_extension_name(&name)?;
        self.inner.extensions.insert(name, value.into());
        Ok(self)
    }

    /// The envelope.
    pub fn build(mut self) -> Envelope {
        if !self.time_set {
            self.inner.time = Timestamp::now();
        }
        if !self.id_set {
            let millis = u64::try_from(self.inner.time.as_millisecond()).unwrap_or(0);
            self.inner.id = EventId::new_v7(millis);
        }
        if !self.trace_set {
            self.inner.traceparent = Some(TraceParent::new_root());
        }
        if self.inner.datacontenttype.is_none() && !self.inner.payload.is_empty() {
            self.inner.datacontenttype = Some(SharedStr::from_static(JSON_CONTENT_TYPE));
        }
        Envelope(Arc::new(self.inner))
    }
}

/// Checks that `name` may be an extension attribute.
pub fn check_extension_name(name: &str) -> Result<(), EnvelopeError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !RESERVED_ATTRIBUTES.contains(&name);
    if valid {
        Ok(())
    } else {
        Err(EnvelopeError::Invalid {
            name: name.to_owned(),
            reason:
                "an extension name is lower-case ASCII letters and digits, not a reserved attribute"
                    .into(),
        })
    }
}
