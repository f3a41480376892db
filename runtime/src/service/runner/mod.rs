//! Runs a participant against a broker: one consumer group per
//! participant, batches pulled within `max_in_flight`, each handled by a
//! task of its own, claimed and settled in groups.
//!
//! The runner's parts, each in a module of its own: its life (start, the
//! pull loop, the drain at shutdown) in `lifecycle`; one batch's task in
//! `batch_task`, its claims in `claims`, what it gathers and its flush in
//! `batch`; one delivery's handling in `delivery`, its verdict (retry,
//! dead letter) in `verdict`, a join's arrival in `join`, the handler's
//! run and what it emits in `handler`; waiting out an outage in
//! `outage`; the ids this process holds in `holding`; which reactions a
//! type triggers in `routes`.

mod batch;
mod batch_task;
mod claims;
mod delivery;
mod handler;
mod holding;
mod join;
mod lifecycle;
mod outage;
mod routes;
mod verdict;

use std::collections::HashMap;
use std::sync::Arc;

use super::definition::ServiceDefinition;
use super::options::{Counters, ServiceOptions};
use super::topics::TopicCache;
use crate::broker::{SharedBroker, SubscribeOptions};
use crate::envelope::{interned, SharedStr};
use crate::store::Stores;
use holding::Held;
use routes::Routes;

/// A running participant: its definition, broker, stores and options,
/// shared by the runner's parts, which keep their own state in their own
/// structs (`Routes`, `Held`, `TopicCache`).
pub(super) struct Runner {
    def: ServiceDefinition,
    broker: SharedBroker,
    stores: Stores,
    opts: ServiceOptions,
    source: SharedStr,
    /// Per reaction: its inbox and state scope.
    scopes: Vec<SharedStr>,
    /// Per wire type: the reactions it triggers.
    routes: Routes,
    /// The topics of the types the handlers emit.
    emit_topics: TopicCache,
    progress_topic: SharedStr,
    counters: Arc<Counters>,
    /// The event ids of the deliveries this process holds, unsettled (see
    /// [`Held`]).
    holding: Held,
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

impl Runner {
    fn new(
        def: ServiceDefinition,
        broker: SharedBroker,
        stores: Stores,
        opts: ServiceOptions,
    ) -> Self {
        let scopes = def
            .reactions
            .iter()
            .map(|r| {
                SharedStr::from(super::reaction_scope(
                    &def.choreography,
                    &def.participant,
                    &r.name,
                ))
            })
            .collect();
        let routes = Routes::new(&def);
        // Every emitted envelope carries the source: a counted copy would
        // have both cores update one reference count on every event.
        let source = match &opts.source {
            Some(s) => interned(s),
            None => interned(&format!("{}/{}", def.choreography, def.participant)),
        };
        let emit_topics = TopicCache::new(opts.topics.clone());
        let progress_topic = SharedStr::from(opts.topics.progress(&def.choreography));
        Runner {
            def,
            broker,
            stores,
            opts,
            source,
            scopes,
            routes,
            emit_topics,
            progress_topic,
            counters: Arc::new(Counters::default()),
            holding: Held::default(),
        }
    }

    fn subscribe_options(&self) -> SubscribeOptions {
        let mut topics: Vec<String> = self
            .routes
            .types()
            .map(|t| self.opts.topics.for_type(t))
            .collect();
        topics.sort();
        let mut o = SubscribeOptions::new(self.def.participant.to_string(), topics);
        o.start = self.opts.start;
        o.max_in_flight = self.opts.max_in_flight;
        // Whatever the handlers' timeouts: a handling that runs longer
        // keeps its delivery alive (see `Runner::process`).
        o.ack_wait = self.opts.ack_wait;
        o.max_deliveries = self.opts.max_deliveries.max(
            self.def
                .reactions
                .iter()
                .filter_map(|r| r.retry.map(|p| p.max.saturating_add(1)))
                .max()
                .unwrap_or(1),
        );
        o.per_key_order = self.opts.per_key_order;
        o
    }
}
