//! Following a subscription as an observer (the instance tracker, the
//! monitor): batch after batch until told to stop or the subscription
//! ends, each batch handled and then settled in one go.

use std::time::Duration;

use tokio::sync::watch;

use super::{settle_all, Delivery, Settlement, Subscription};

/// Takes batches of up to `max` deliveries from `sub` until `stop` changes
/// or the subscription ends, hands each batch to `handle`, which says how
/// to settle each delivery, and settles them; then leaves the group. A
/// failed receive is logged as `who`'s and tried again after 100 ms.
/// `sub` may be an observer's ([`Broker::observe`](super::Broker::observe)):
/// settling is then a no-op, and leaving removes the observer.
pub async fn follow(
    mut sub: Box<dyn Subscription>,
    mut stop: watch::Receiver<bool>,
    who: &'static str,
    max: usize,
    mut handle: impl FnMut(Vec<Delivery>) -> Vec<(Delivery, Settlement)> + Send,
) {
    loop {
        let batch = tokio::select! {
            _ = stop.changed() => break,
            b = sub.next_batch(max) => b,
        };
        let deliveries = match batch {
            Ok(Some(ds)) => ds,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(who, error = %e, "receiving failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = settle_all(handle(deliveries)).await {
            tracing::warn!(who, error = %e, "settling failed");
        }
    }
    let _ = sub.unsubscribe().await;
}
