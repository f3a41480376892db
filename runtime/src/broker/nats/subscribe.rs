//! Subscribing: a group's durable pull consumers on its topics (made if
//! there are none), the member that pulls from them, and the subscription
//! that keeps them registered for `close`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer;
use async_trait::async_trait;
use tokio::sync::mpsc;

use super::consume::MemberCtx;
use super::streams::{consumer_name, distinct_subjects};
use super::{unavailable, Consumers, Held, Inner};
use crate::broker::pull::{Member, PulledSubscription};
use crate::broker::{BrokerError, Delivery, StartPosition, SubscribeOptions, Subscription};
use crate::envelope::SharedStr;

/// How many times the creation of a consumer is asked for again after a
/// failure (a timeout on a busy cluster) before a subscription gives up.
const CREATE_TRIES: u32 = 4;
/// Subscribes a member of `options.group` to its topics
/// ([`Broker::subscribe`](crate::broker::Broker::subscribe)).
pub(super) async fn subscribe(
    inner: &Arc<Inner>,
    options: SubscribeOptions,
) -> Result<Box<dyn Subscription>, BrokerError> {
    options.validate()?;
    // Refused rather than ignored (as it was): a consumer that relies
    // on per-key order must not run on a broker without it (the
    // conformance case `per_key_order` checks the refusal).
    options.refuse_per_key_order("NATS JetStream")?;
    inner.life.check_open()?;
    let topics = distinct_subjects(&options.topics)?;
    let mut consumers = Vec::with_capacity(topics.len());
    for topic in &topics {
        let stream_name = inner.stream_for(topic).await?;
        let name = consumer_name(&options.group, topic);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            description: Some(format!("choreo group {} on {topic}", options.group)),
            deliver_policy: match options.start {
                StartPosition::Earliest => consumer::DeliverPolicy::All,
                StartPosition::Latest => consumer::DeliverPolicy::New,
                StartPosition::Since(t) => by_start_time(t)?,
            },
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: options.ack_wait,
            // Counted here: the delivery past `max_deliveries` is
            // dead-lettered by the adapter, not dropped by the server.
            max_deliver: -1,
            filter_subject: topic.clone(),
            max_ack_pending: -1,
            ..Default::default()
        };
        let stream = inner
            .js
            .get_stream_no_info(&stream_name)
            .await
            .map_err(|e| unavailable(&format!("stream {stream_name}"), e))?;
        // A cluster answers a consumer's creation once its replicas
        // agree, which on a busy one (or during a leader election)
        // can outlast the request timeout: the creation is asked for
        // again (it is idempotent) before the subscription gives up.
        let mut tries = 0;
        let consumer: consumer::PullConsumer = loop {
            match stream.get_or_create_consumer(&name, config.clone()).await {
                Ok(c) => break c,
                Err(e) if tries < CREATE_TRIES => {
                    tries += 1;
                    tracing::debug!(consumer = %name, error = %e, "consumer creation failed; asking again");
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                }
                Err(e) => return Err(unavailable(&format!("consumer {name}"), e)),
            }
        };
        consumers.push(consumer);
    }
    let member = Member::new(options.max_in_flight, options.ack_wait);
    let ctx = MemberCtx::new(inner.clone(), member.clone(), &options);
    let (tx, rx) = mpsc::unbounded_channel();
    let share = (options.max_in_flight / topics.len()).max(1);
    for (c, t) in consumers.iter().zip(&topics) {
        // Each puller ends by itself once the member stops.
        tokio::spawn(
            ctx.clone()
                .pull(c.clone(), SharedStr::from(t.clone()), share, tx.clone()),
        );
    }
    let live = Arc::new(Consumers {
        member: member.clone(),
        consumers,
    });
    inner.life.register(&live);
    Ok(Box::new(LiveSubscription {
        sub: PulledSubscription::new(rx, member, ctx),
        _live: live,
    }))
}

/// `DeliverPolicy::ByStartTime` at `t`. Made from its wire form, so that
/// this crate needs no dependency of its own on the `time` crate (whose
/// type the policy holds, at the version async-nats uses).
pub(super) fn by_start_time(t: jiff::Timestamp) -> Result<consumer::DeliverPolicy, BrokerError> {
    let wire = serde_json::json!({
        "deliver_policy": "by_start_time",
        "opt_start_time": t.to_string(),
    });
    serde_json::from_value(wire).map_err(|e| {
        BrokerError::InvalidOptions(format!("start time {t} is out of NATS's range: {e}"))
    })
}

/// A subscription that keeps its consumers registered for `close`.
struct LiveSubscription {
    sub: PulledSubscription<Held>,
    _live: Arc<Consumers>,
}

#[async_trait]
impl Subscription for LiveSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        self.sub.next_batch(max).await
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.sub.unsubscribe().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_keeps_its_nanoseconds() {
        let t: jiff::Timestamp = "2025-03-04T05:06:07.123456789Z".parse().unwrap();
        match by_start_time(t).unwrap() {
            consumer::DeliverPolicy::ByStartTime { start_time } => {
                assert_eq!(start_time.unix_timestamp_nanos(), t.as_nanosecond());
            }
            other => panic!("{other:?}"),
        }
    }
}
