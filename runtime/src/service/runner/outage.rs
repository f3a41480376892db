//! Waiting out an outage of the stores or the broker: held deliveries,
//! backed-off calls, a flag and a count for the service's health.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::super::options::bump;
use super::Runner;
use crate::envelope::{Envelope, SharedStr};
use crate::store::StoreError;

/// Something a service waits out (the stores, the broker): its flag,
/// its counter, and what the log says as it begins and ends.
struct Outage<'a> {
    down: &'a std::sync::atomic::AtomicBool,
    count: &'a std::sync::atomic::AtomicU64,
    began: &'static str,
    ended: &'static str,
}

impl Runner {
    /// Calls the stores until they answer. A store that fails is an
    /// outage to wait out, holding the delivery, never a handler's failure
    /// (which would use up `@retry` or dead-letter). Errors that no
    /// waiting mends (corrupt data, bad configuration) come back at once.
    pub(super) async fn patiently<T, Fut>(
        &self,
        what: &'static str,
        call: impl FnMut() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let stores = Outage {
            down: &self.counters.store_down,
            count: &self.counters.store_outages,
            began: "the stores do not answer; holding deliveries and retrying until they do",
            ended: "the stores answer again; resuming",
        };
        self.wait_out(stores, what, |e| matches!(e, StoreError::Backend(_)), call)
            .await
    }

    /// Publishes what handlers emitted, waiting out a broker outage: the
    /// handlers ran, and running them again for want of a publish would
    /// repeat their side effects. Errors no waiting mends come back at
    /// once.
    pub(super) async fn publish_patiently(
        &self,
        out: Vec<(SharedStr, Envelope)>,
    ) -> Result<(), crate::broker::BrokerError> {
        let broker = Outage {
            down: &self.counters.broker_down,
            count: &self.counters.broker_outages,
            began: "the broker does not take the handled events; keeping them and retrying until it does",
            ended: "the broker takes publishes again; resuming",
        };
        let unavailable = |e: &crate::broker::BrokerError| {
            matches!(e, crate::broker::BrokerError::Unavailable(_))
        };
        self.wait_out(broker, "publish", unavailable, || {
            self.broker.publish_batch(out.clone())
        })
        .await
    }

    /// Calls `call` until it succeeds or fails with an error that is not
    /// `transient`: the first transient failure of an outage is logged
    /// (warn), counted and flagged, and the recovery logged (info); calls
    /// back off from 50 ms to 2 s meanwhile. Once the service is stopping
    /// the last error comes back instead of waiting for ever.
    async fn wait_out<T, E, Fut>(
        &self,
        outage: Outage<'_>,
        what: &'static str,
        transient: impl Fn(&E) -> bool,
        mut call: impl FnMut() -> Fut,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut delay = Duration::from_millis(50);
        loop {
            match call().await {
                Ok(v) => {
                    if outage.down.load(Ordering::Relaxed)
                        && outage.down.swap(false, Ordering::Relaxed)
                    {
                        tracing::info!(participant = %self.def.participant, "{}", outage.ended);
                    }
                    return Ok(v);
                }
                Err(e) if transient(&e) && !self.counters.stopping.load(Ordering::Relaxed) => {
                    if !outage.down.swap(true, Ordering::Relaxed) {
                        bump(outage.count);
                        tracing::warn!(participant = %self.def.participant, what, error = %e, "{}", outage.began);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }
}
