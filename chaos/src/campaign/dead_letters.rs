//! The dead letters of a campaign, each once with its reason.

use choreo_runtime::sync::Recover;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use choreo_runtime::broker::{ObserveOptions, StartPosition, DLQ_GROUP, DLQ_REASON};
use choreo_runtime::service::BOUND_EXCEEDED;

use super::CampaignError;
use crate::report::DeadLetter;

/// Follows the dead-letter topics from their start, keeping each dead
/// letter once (by event id and group) with its reason.
pub(super) async fn watch(
    url: &str,
    topics: Vec<String>,
    into: Arc<Mutex<BTreeMap<(String, String), DeadLetter>>>,
) -> Result<tokio::task::JoinHandle<()>, CampaignError> {
    let broker = choreo_runtime::connect(url)
        .await
        .map_err(|e| CampaignError::Broker(e.to_string()))?;
    let mut options = ObserveOptions::new(topics);
    options.start = StartPosition::Earliest;
    let mut sub = broker
        .observe(options)
        .await
        .map_err(|e| CampaignError::Broker(e.to_string()))?;
    Ok(tokio::spawn(async move {
        let _broker = broker;
        loop {
            let batch = match sub.next_batch(64).await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                // A server restarting: the observer goes on once it is
                // back.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let mut map = into.locked();
            for d in batch {
                let e = d.envelope();
                let group = e.extension(DLQ_GROUP).unwrap_or_default().to_owned();
                map.entry((e.id().to_string(), group.clone()))
                    .or_insert_with(|| DeadLetter {
                        event: e.ty().to_owned(),
                        key: e.correlation_id().to_owned(),
                        group,
                        reason: e.extension(DLQ_REASON).unwrap_or_default().to_owned(),
                    });
            }
        }
    }))
}

/// Dead letters that show a `@bounded` round counted twice. No campaign's
/// choreography goes past a bound by design (the retry loop gives up
/// within its rounds), so a reaction dead-lettered for its bound counted
/// a firing whose delivery came again as a new one: a double effect.
pub(super) fn bounds_exceeded(dead: &[DeadLetter]) -> Vec<String> {
    dead.iter()
        .filter(|d| d.reason == BOUND_EXCEEDED)
        .map(|d| {
            format!(
                "{} of {} dead-lettered by {} past its bound: a round counted twice",
                d.event, d.key, d.group
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_past_its_bound_is_a_double_effect_and_others_are_not() {
        let letter = |reason: &str| DeadLetter {
            event: "Retries.v1.ChargeFailed".into(),
            key: "p-7".into(),
            group: "Retrier".into(),
            reason: reason.into(),
        };
        let found = bounds_exceeded(&[
            letter("bound exceeded"),
            letter("reaction on_cancel failed: handler rejected the event: too late"),
        ]);
        assert_eq!(
            found,
            ["Retries.v1.ChargeFailed of p-7 dead-lettered by Retrier past its bound: a round counted twice"]
        );
    }
}
