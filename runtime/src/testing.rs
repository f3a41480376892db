//! Test support for participants: hand one participant events and see what
//! it emits, in the manner of Axon's saga fixtures.
//!
//! A [`ParticipantFixture`] runs a participant's [`ServiceDefinition`] on a
//! memory broker of its own — the very machinery it runs on in production,
//! deduplication, retries, joins and bounds included — and waits after each
//! delivery until the participant has dealt with it. Generated code wraps it
//! in a typed fixture per participant (see `docs/codegen.md`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::memory::MemoryBroker;
use crate::broker::{SharedBroker, StartPosition, SubscribeOptions};
use crate::envelope::{Envelope, EventId};
use crate::payload::{DecodeError, Message};
use crate::progress::{DeadLetterRecord, InstanceTracker, Topology, TrackerOptions};
use crate::service::{Client, ServiceDefinition, ServiceHandle, ServiceOptions, Stores, Topics};

/// What can go wrong in a fixture.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The broker refused something.
    #[error("broker: {0}")]
    Broker(#[from] crate::broker::BrokerError),
    /// The service did not start.
    #[error("service: {0}")]
    Service(#[from] crate::service::ServiceError),
    /// The participant did not finish with a delivery in time.
    #[error("the participant did not finish handling `{0}` within {1:?}")]
    Timeout(String, Duration),
    /// An expectation about what was emitted does not hold.
    #[error("{0}")]
    Expectation(String),
    /// An emitted payload did not decode into the expected type.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// One participant running on a memory broker of its own.
pub struct ParticipantFixture {
    service: Option<ServiceHandle>,
    tracker: InstanceTracker,
    client: Client,
    emitted: Arc<Mutex<Vec<Envelope>>>,
    collector: tokio::task::JoinHandle<()>,
    /// Ids delivered by the test, and ids already reported as emitted.
    delivered: Vec<EventId>,
    reported: Vec<EventId>,
    timeout: Duration,
}

impl ParticipantFixture {
    /// Starts `definition`; `emits` are the wire types its reactions can
    /// emit, which the fixture collects.
    pub async fn start(
        definition: ServiceDefinition,
        emits: &[&'static str],
    ) -> Result<Self, FixtureError> {
        let broker: SharedBroker = Arc::new(MemoryBroker::new());
        let topics = Topics::default();
        let mut topology =
            Topology::new(definition.choreography().to_string()).with_service(&definition);
        for ty in emits {
            topology = topology.event(*ty);
        }
        let tracker = InstanceTracker::start(
            topology,
            broker.clone(),
            TrackerOptions {
                topics: topics.clone(),
                ..TrackerOptions::default()
            },
        )
        .await?;
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let collector = if emits.is_empty() {
            tokio::spawn(async {})
        } else {
            let mut options = SubscribeOptions::new(
                format!("choreo-fixture-{:016x}", fastrand::u64(..)),
                emits.iter().map(|t| topics.for_type(t)).collect::<Vec<_>>(),
            );
            options.start = StartPosition::Earliest;
            let mut sub = broker.subscribe(options).await?;
            let sink = emitted.clone();
            tokio::spawn(async move {
                while let Ok(Some(batch)) = sub.next_batch(256).await {
                    for delivery in batch {
                        if let Ok(mut all) = sink.lock() {
                            all.push(delivery.envelope().clone());
                        }
                        let _ = delivery.ack().await;
                    }
                }
            })
        };
        let service = definition
            .clone()
            .start(broker.clone(), Stores::memory(), ServiceOptions::default())
            .await?;
        let client = Client::new(broker, topics, "fixture");
        Ok(ParticipantFixture {
            service: Some(service),
            tracker,
            client,
            emitted,
            collector,
            delivered: Vec::new(),
            reported: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// How long [`deliver`](Self::deliver) waits for the participant.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Delivers `message` for instance `key` and waits until the
    /// participant has handled it (or dead-lettered it, or a join it belongs
    /// to waits for more); returns what it emitted since the last delivery,
    /// including what its own reactions to those emissions emitted.
    pub async fn deliver<M: Message>(
        &mut self,
        key: &str,
        message: M,
    ) -> Result<Emitted, FixtureError> {
        let id = self.client.send(key.to_string(), message).await?;
        self.delivered.push(id.clone());
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(progress) = self.tracker.instance(key) {
                let seen = progress.events.iter().any(|e| e.id == id);
                if seen && progress.pending.is_empty() {
                    // The tracker lists what the handling emitted; wait until
                    // the collector holds all of it too.
                    let expected: Vec<EventId> = progress
                        .events
                        .iter()
                        .filter(|e| {
                            !self.delivered.contains(&e.id) && !self.reported.contains(&e.id)
                        })
                        .map(|e| e.id.clone())
                        .collect();
                    let envelopes = self.collected(key, &expected);
                    if envelopes.len() == expected.len() {
                        self.reported.extend(expected);
                        return Ok(Emitted {
                            envelopes,
                            dead_letters: progress
                                .dead_letters
                                .into_iter()
                                .filter(|d| d.event_id == id)
                                .collect(),
                        });
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(FixtureError::Timeout(M::TYPE.to_string(), self.timeout));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn collected(&self, key: &str, ids: &[EventId]) -> Vec<Envelope> {
        let all = match self.emitted.lock() {
            Ok(all) => all.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        all.into_iter()
            .filter(|e| e.correlation_id() == key && ids.contains(e.id()))
            .collect()
    }

    /// Stops the participant and the fixture's helpers.
    pub async fn shutdown(mut self) {
        if let Some(service) = self.service.take() {
            let _ = service.shutdown().await;
        }
        self.collector.abort();
        self.tracker.shutdown().await;
    }
}

/// What one delivery made the participant emit.
#[derive(Debug, Clone, Default)]
pub struct Emitted {
    /// The emitted envelopes, in the order they were published.
    pub envelopes: Vec<Envelope>,
    /// Dead letters of the delivered event, with their reasons.
    pub dead_letters: Vec<DeadLetterRecord>,
}

impl Emitted {
    /// The wire types emitted.
    pub fn types(&self) -> Vec<&str> {
        self.envelopes.iter().map(|e| e.ty()).collect()
    }

    /// Whether nothing was emitted.
    pub fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
    }

    /// Every emitted message of type `M`.
    pub fn all<M: Message>(&self) -> Result<Vec<M>, FixtureError> {
        self.envelopes
            .iter()
            .filter(|e| e.ty() == M::TYPE)
            .map(|e| e.decode::<M>().map_err(FixtureError::from))
            .collect()
    }

    /// The message of type `M`, when exactly one was emitted of that type.
    pub fn one<M: Message>(&self) -> Result<M, FixtureError> {
        let mut all = self.all::<M>()?;
        match all.len() {
            1 => Ok(all.remove(0)),
            n => Err(FixtureError::Expectation(format!(
                "expected one `{}`, found {n} among {:?}",
                M::TYPE,
                self.types()
            ))),
        }
    }

    /// Fails unless exactly these wire types were emitted, in any order.
    pub fn expect_types(&self, expected: &[&str]) -> Result<(), FixtureError> {
        let mut got = self.types();
        let mut want = expected.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        if got == want {
            Ok(())
        } else {
            Err(FixtureError::Expectation(format!(
                "expected {want:?} to be emitted, found {got:?}"
            )))
        }
    }
}
