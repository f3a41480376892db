//! The live feed: server-sent events, each a snapshot of the counts and
//! of the instances that need someone's attention.

use choreo_runtime::sync::Recover;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Serialize;

use super::api::Brief;
use super::Site;
use crate::{InstanceState, Lag, Summary};

/// How often a snapshot goes out.
const EVERY: Duration = Duration::from_millis(500);
/// The most instances of each list in one snapshot.
const LISTED: usize = 50;

/// What one event of the feed carries.
#[derive(Serialize)]
struct Snapshot {
    summary: Summary,
    lag: Lag,
    stuck: Vec<Brief>,
    violated: Vec<Brief>,
    dead_lettered: Vec<Brief>,
}

fn snapshot(site: &Site) -> Snapshot {
    let m = site.monitor();
    let list = |state| {
        m.instances(Some(state), LISTED)
            .into_iter()
            .map(Brief::from)
            .collect()
    };
    Snapshot {
        summary: m.summary(),
        lag: m.lag(),
        stuck: list(InstanceState::Stuck),
        violated: list(InstanceState::Violated),
        dead_lettered: list(InstanceState::DeadLettered),
    }
}

/// The snapshot as JSON, made at most once per [`EVERY`] whatever the
/// number of pages open: each one costs a pass over every instance.
fn shared(site: &Site) -> serde_json::Result<Arc<str>> {
    let mut cache = site.inner.snapshot.locked();
    if let Some((made, json)) = cache.as_ref() {
        if made.elapsed() < EVERY - Duration::from_millis(100) {
            return Ok(json.clone());
        }
    }
    let json: Arc<str> = serde_json::to_string(&snapshot(site))?.into();
    *cache = Some((Instant::now(), json.clone()));
    Ok(json)
}

pub(super) async fn feed(
    State(site): State<Site>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let closed = site.inner.closed.subscribe();
    let events = stream::unfold(
        (site, closed, true),
        |(site, mut closed, first)| async move {
            if !first {
                // The next tick, unless the server is stopping.
                tokio::select! {
                    () = tokio::time::sleep(EVERY) => {}
                    _ = closed.wait_for(|c| *c) => return None,
                }
            }
            if *closed.borrow() {
                return None;
            }
            let event = match shared(&site) {
                Ok(json) => Event::default().event("snapshot").data(&*json),
                Err(e) => Event::default().event("error").data(e.to_string()),
            };
            Some((Ok(event), (site, closed, false)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}
