//! Observing: plain `XREAD … BLOCK` over the topics' streams, on a
//! connection of its own; nothing left on the server.

use std::sync::Arc;

use ::redis::aio::ConnectionManager;
use ::redis::Value;
use bytes::Bytes;
use tokio::sync::mpsc;

use super::connect::connection;
use super::streams::{id_before, last_ids, read_entries, Entry};
use super::{ms, unavailable, Inner, FIELD};
use crate::broker::pull::{self, Observation};
use crate::broker::{BrokerError, ObserveOptions, StartPosition, Subscription};
use crate::envelope::{json, SharedStr};

/// Observes the topics of `options`
/// ([`Broker::observe`](crate::broker::Broker::observe)).
pub(super) async fn observe(
    inner: &Arc<Inner>,
    options: ObserveOptions,
) -> Result<Box<dyn Subscription>, BrokerError> {
    options.validate()?;
    inner.life.check_open()?;
    let streams = inner.streams(&options.topics);
    let o = &inner.options;
    // Blocking reads on a connection of their own: on a shared one
    // they would hold up every other command.
    let mut conn = connection(&inner.client, o, o.block + o.response_timeout).await?;
    let ids = match options.start {
        StartPosition::Earliest => vec!["0-0".to_owned(); streams.len()],
        StartPosition::Since(t) => vec![id_before(t); streams.len()],
        // `$` once, as concrete ids: a read after the first must go on
        // from what was there at the start.
        StartPosition::Latest => {
            let keys: Vec<String> = streams.iter().map(|(k, _)| k.clone()).collect();
            last_ids(&mut conn, &keys)
                .await
                .map_err(|e| unavailable("XREVRANGE", e))?
        }
    };
    // COUNT applies per stream: about `max_in_flight` over all.
    let count = (options.max_in_flight / streams.len().max(1)).max(1);
    let (tx, rx) = Observation::channel(options.max_in_flight);
    let reader = tokio::spawn(observe_streams(
        inner.clone(),
        conn,
        streams,
        ids,
        count,
        tx,
    ));
    // Plain reads leave nothing on the server to clean up.
    Ok(Box::new(Observation::new(rx, vec![reader], None)))
}

/// Reads `streams` after `ids` (one per stream) with plain `XREAD`s into
/// `tx` until the observation is stopped (the task aborted), its channel
/// closed or the broker closed; `count` entries per stream and read.
async fn observe_streams(
    inner: Arc<Inner>,
    mut conn: ConnectionManager,
    streams: Vec<(String, SharedStr)>,
    mut ids: Vec<String>,
    count: usize,
    tx: mpsc::Sender<pull::Observed>,
) {
    let closed = inner.life.closed();
    let block = ms(inner.options.block).max(1);
    let mut recent = json::Recent::default();
    loop {
        let mut cmd = ::redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS");
        for (key, _) in &streams {
            cmd.arg(key);
        }
        cmd.arg(&ids);
        // A stopped read needs no unblocking: the connection is this
        // observer's own, and goes when the task ends.
        let reply = tokio::select! {
            r = cmd.query_async::<Value>(&mut conn) => r,
            () = closed.stopped() => return,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "observing failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pull::RETRY_PAUSE) => continue,
                    () = closed.stopped() => return,
                }
            }
        };
        let mut got = Vec::new();
        read_entries(reply, &streams, &mut got);
        for Entry {
            stream, id, raw, ..
        } in got
        {
            let topic = &streams[stream].1;
            let decoded = match raw {
                Some(b) => json::decode_bytes_in(&Bytes::from(b), &mut recent),
                None => Err(crate::envelope::EnvelopeError::Malformed(format!(
                    "the stream entry has no field {FIELD:?}"
                ))),
            };
            let envelope = match decoded {
                Ok(env) => Some(env),
                Err(e) => {
                    // An observer dead-letters nothing: the groups do that.
                    tracing::warn!(topic = %topic, id, error = %e, "skipping an entry that is not an envelope");
                    None
                }
            };
            ids[stream] = id;
            let Some(envelope) = envelope else { continue };
            tokio::select! {
                sent = tx.send((topic.clone(), envelope)) => if sent.is_err() {
                    return;
                },
                () = closed.stopped() => return,
            }
        }
    }
}
