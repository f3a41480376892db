//! What generated code builds: a participant's reactions and handlers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use smallvec::SmallVec;

use crate::broker::Backoff;
use crate::envelope::{Envelope, EventId, SharedStr};
use crate::payload::{DecodeError, Message, Payload};

/// What makes a reaction fire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `on A | B`: any one of these types.
    Any(Vec<SharedStr>),
    /// `on A & B`: a join, once per instance when all have arrived; the
    /// handler gets their envelopes in this order.
    All(Vec<SharedStr>),
}

impl Trigger {
    /// `on A | B | …`.
    pub fn any<T: Into<SharedStr>>(types: impl IntoIterator<Item = T>) -> Self {
        Trigger::Any(types.into_iter().map(Into::into).collect())
    }
    /// `on A & B & …`.
    pub fn all<T: Into<SharedStr>>(types: impl IntoIterator<Item = T>) -> Self {
        Trigger::All(types.into_iter().map(Into::into).collect())
    }
    /// The types named.
    pub fn types(&self) -> &[SharedStr] {
        match self {
            Trigger::Any(t) | Trigger::All(t) => t,
        }
    }
}

/// `@retry(max = N, backoff = D)`: up to `max` retries after the first
/// attempt, exponential back-off from `backoff` with jitter, then the
/// dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max: u32,
    /// The delay before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// `@retry(max, backoff)`.
    pub fn new(max: u32, backoff: Duration) -> Self {
        RetryPolicy { max, backoff }
    }

    /// The jittered delay before retry number `retry` (1 for the first).
    pub fn delay(&self, retry: u32) -> Duration {
        Backoff::exponential(self.backoff).delay(retry)
    }
}

/// Why a handler did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A failure that may pass: retried per `@retry`, then dead-lettered.
    #[error("handler failed: {0}")]
    Failed(String),
    /// A failure that will not pass: dead-lettered at once.
    #[error("handler rejected the event: {0}")]
    Rejected(String),
    /// The input did not decode: dead-lettered at once with the error.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The handler ran longer than its `@timeout` (retried like `Failed`).
    #[error("handler timed out after {0:?}")]
    Timeout(Duration),
}

impl HandlerError {
    /// A failure that may pass, from any error.
    pub fn failed(e: impl fmt::Display) -> Self {
        HandlerError::Failed(e.to_string())
    }
    /// A failure that will not pass, from any error.
    pub fn rejected(e: impl fmt::Display) -> Self {
        HandlerError::Rejected(e.to_string())
    }
    /// Whether retrying could help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, HandlerError::Failed(_) | HandlerError::Timeout(_))
    }
}

/// What one handling knows about itself.
#[derive(Clone)]
pub struct Context {
    pub(crate) instance: SharedStr,
    pub(crate) event_id: EventId,
    pub(crate) attempt: u32,
    pub(crate) reaction: SharedStr,
    pub(crate) span: tracing::Span,
}

impl Context {
    /// The instance key (`correlationid`).
    pub fn instance_key(&self) -> &str {
        &self.instance
    }
    /// The id of the triggering event (for a join: the one that completed it).
    pub fn event_id(&self) -> &EventId {
        &self.event_id
    }
    /// The delivery attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The reaction's name.
    pub fn reaction(&self) -> &str {
        &self.reaction
    }
    /// The span of this handling (the handler future already runs in it).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("instance", &self.instance)
            .field("event_id", &self.event_id)
            .field("attempt", &self.attempt)
            .field("reaction", &self.reaction)
            .finish()
    }
}

/// The triggering envelope(s) of one handling.
#[derive(Debug, Clone)]
pub struct Input {
    envelopes: SmallVec<[Envelope; 2]>,
}

impl Input {
    pub(crate) fn new(envelopes: SmallVec<[Envelope; 2]>) -> Self {
        Input { envelopes }
    }
    /// The triggering envelope (for a join, the first in declared order).
    pub fn envelope(&self) -> &Envelope {
        // Never empty: the runner builds an input from at least one envelope.
        &self.envelopes[0]
    }
    /// Every envelope: one for `on A | B`, all joined ones in declared
    /// order for `on A & B`.
    pub fn envelopes(&self) -> &[Envelope] {
        &self.envelopes
    }
    /// The wire type of the triggering envelope.
    pub fn ty(&self) -> &str {
        self.envelope().ty()
    }
    /// Decodes the envelope of type `M` (the first envelope if none has
    /// that type, so a mismatch is a decode error, not a panic).
    pub fn decode<M: Message>(&self) -> Result<M, DecodeError> {
        self.envelopes
            .iter()
            .find(|e| e.ty() == M::TYPE)
            .unwrap_or_else(|| self.envelope())
            .decode::<M>()
    }
}

/// The messages a handling emits; the runtime fills in their attributes.
#[derive(Debug, Clone, Default)]
pub struct Emit {
    // Mostly one message: kept inline, no allocation per handling.
    pub(crate) messages: SmallVec<[(SharedStr, Payload); 1]>,
}

impl Emit {
    /// Emits nothing (a sink, or the `none` outcome).
    pub fn none() -> Self {
        Emit::default()
    }
    /// Emits one message.
    pub fn one<M: Message>(message: M) -> Self {
        Emit::none().and(message)
    }
    /// Adds a message (`A + B` outcomes emit several).
    pub fn and<M: Message>(mut self, message: M) -> Self {
        self.push(message);
        self
    }
    /// Adds a message.
    pub fn push<M: Message>(&mut self, message: M) {
        self.messages
            .push((SharedStr::from_static(M::TYPE), Payload::typed(message)));
    }
    /// Adds an already erased payload of wire type `ty`.
    pub fn push_payload(&mut self, ty: impl Into<SharedStr>, payload: Payload) {
        self.messages.push((ty.into(), payload));
    }
    /// How many messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }
    /// Whether nothing is emitted.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// The future a handler returns.
pub type HandlerFuture = BoxFuture<'static, Result<Emit, HandlerError>>;

/// A reaction's handler, type-erased.
pub type Handler = Arc<dyn Fn(Context, Input) -> HandlerFuture + Send + Sync>;

/// Runs a handler's future in a place of its own that is used again
/// handling after handling, so that a handler that finishes on its first
/// poll costs no allocation.
pub(crate) trait HandlerSlot: Send {
    /// Starts the handler and polls it once.
    fn run(
        &mut self,
        ctx: Context,
        input: Input,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Emit, HandlerError>>;
    /// The future that `run` left pending, to be polled to its end
    /// elsewhere; the slot is empty again.
    fn detach(&mut self) -> HandlerFuture;
    /// Drops what is in the slot (after a panic).
    fn reset(&mut self);
}

/// Makes [`HandlerSlot`]s for one handler.
pub(crate) trait SlotMaker: Send + Sync {
    fn slot(self: Arc<Self>) -> Box<dyn HandlerSlot>;
}

struct FnHandler<F>(F);

struct Slot<F, Fut> {
    handler: Arc<FnHandler<F>>,
    running: Pin<Box<Option<Fut>>>,
}

impl<F, Fut> SlotMaker for FnHandler<F>
where
    F: Fn(Context, Input) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Emit, HandlerError>> + Send + 'static,
{
    fn slot(self: Arc<Self>) -> Box<dyn HandlerSlot> {
        Box::new(Slot {
            handler: self,
            running: Box::pin(None),
        })
    }
}

impl<F, Fut> HandlerSlot for Slot<F, Fut>
where
    F: Fn(Context, Input) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Emit, HandlerError>> + Send + 'static,
{
    fn run(
        &mut self,
        ctx: Context,
        input: Input,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Emit, HandlerError>> {
        self.running.set(Some((self.handler.0)(ctx, input)));
        let polled = match self.running.as_mut().as_pin_mut() {
            Some(fut) => fut.poll(cx),
            None => std::task::Poll::Ready(Err(HandlerError::failed("handler slot empty"))),
        };
        if polled.is_ready() {
            self.running.set(None);
        }
        polled
    }

    fn detach(&mut self) -> HandlerFuture {
        Box::pin(Detached(std::mem::replace(
            &mut self.running,
            Box::pin(None),
        )))
    }

    fn reset(&mut self) {
        self.running.set(None);
    }
}

/// A handler future that went pending in a slot, polled to its end.
struct Detached<Fut>(Pin<Box<Option<Fut>>>);

impl<Fut: Future<Output = Result<Emit, HandlerError>>> Future for Detached<Fut> {
    type Output = Result<Emit, HandlerError>;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.0.as_mut().as_pin_mut() {
            Some(fut) => {
                let polled = fut.poll(cx);
                if polled.is_ready() {
                    self.0.set(None);
                }
                polled
            }
            None => std::task::Poll::Ready(Err(HandlerError::failed(
                "handler polled after it finished",
            ))),
        }
    }
}

/// One reaction of a participant.
#[derive(Clone)]
pub struct Reaction {
    pub(crate) name: SharedStr,
    pub(crate) trigger: Trigger,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) bound: Option<u32>,
    pub(crate) handler: Handler,
    pub(crate) slots: Arc<dyn SlotMaker>,
}

impl Reaction {
    /// A reaction named `name` (unique within its participant) running
    /// `handler` when `trigger` fires.
    pub fn new<F, Fut>(name: impl Into<SharedStr>, trigger: Trigger, handler: F) -> Self
    where
        F: Fn(Context, Input) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Emit, HandlerError>> + Send + 'static,
    {
        let handler = Arc::new(FnHandler(handler));
        let slots: Arc<dyn SlotMaker> = handler.clone();
        Reaction {
            name: name.into(),
            trigger,
            retry: None,
            timeout: None,
            bound: None,
            handler: Arc::new(move |ctx, input| Box::pin((handler.0)(ctx, input))),
            slots,
        }
    }
    /// `@retry(max, backoff)`.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
    /// `@timeout(d)`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// `@bounded(n)`.
    pub fn bounded(mut self, n: u32) -> Self {
        self.bound = Some(n);
        self
    }
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The trigger.
    pub fn trigger(&self) -> &Trigger {
        &self.trigger
    }
}

impl fmt::Debug for Reaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reaction")
            .field("name", &self.name)
            .field("trigger", &self.trigger)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("bound", &self.bound)
            .finish()
    }
}

/// A participant: its choreography, its name (its consumer group) and its
/// reactions. Built at run time by generated code.
#[derive(Debug, Clone)]
pub struct ServiceDefinition {
    pub(crate) choreography: SharedStr,
    pub(crate) participant: SharedStr,
    pub(crate) version: Option<SharedStr>,
    pub(crate) reactions: Vec<Reaction>,
}

impl ServiceDefinition {
    /// Participant `participant` of `choreography`, with no reaction yet.
    pub fn new(choreography: impl Into<SharedStr>, participant: impl Into<SharedStr>) -> Self {
        ServiceDefinition {
            choreography: choreography.into(),
            participant: participant.into(),
            version: None,
            reactions: Vec::new(),
        }
    }
    /// The spec's `version`, stamped on every emitted envelope.
    pub fn version(mut self, version: impl Into<SharedStr>) -> Self {
        self.version = Some(version.into());
        self
    }
    /// Adds a reaction.
    pub fn reaction(mut self, reaction: Reaction) -> Self {
        self.reactions.push(reaction);
        self
    }
    /// The choreography's name.
    pub fn choreography(&self) -> &str {
        &self.choreography
    }
    /// The participant's name (= its consumer group).
    pub fn participant(&self) -> &str {
        &self.participant
    }
    /// The reactions.
    pub fn reactions(&self) -> &[Reaction] {
        &self.reactions
    }

    /// Checks what would make the service misbehave: no reaction, a
    /// reaction with no trigger type, two reactions with one name, a join
    /// naming a type twice.
    pub fn validate(&self) -> Result<(), String> {
        if self.reactions.is_empty() {
            return Err(format!("participant {} has no reaction", self.participant));
        }
        let mut names = std::collections::HashSet::new();
        for r in &self.reactions {
            if !names.insert(r.name.as_str()) {
                return Err(format!("two reactions named {}", r.name));
            }
            let types = r.trigger.types();
            if types.is_empty() {
                return Err(format!("reaction {} has no trigger type", r.name));
            }
            let distinct: std::collections::HashSet<&str> =
                types.iter().map(|t| t.as_str()).collect();
            if distinct.len() != types.len() {
                return Err(format!("reaction {} names a type twice", r.name));
            }
        }
        Ok(())
    }
}
