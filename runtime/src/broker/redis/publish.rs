//! Publishing: pipelined `XADD`s, or with deduplication one call of the
//! publish script per batch ([`super::scripts`]).

use ::redis::Value;
use bytes::Bytes;

use super::scripts::is_noscript;
use super::{ms, unavailable, Inner, FIELD};
use crate::broker::pull;
use crate::broker::BrokerError;
use crate::envelope::Envelope;

/// The stream and dedup-prefix keys of the topic published to last.
#[derive(Default)]
struct RunKeys {
    topic: String,
    stream: String,
    dedup: String,
}

impl RunKeys {
    fn of(&mut self, inner: &Inner, topic: &str) -> (&String, &String) {
        if self.stream.is_empty() || self.topic != topic {
            topic.clone_into(&mut self.topic);
            self.stream = inner.key(topic);
            self.dedup = format!("{}dedup:{topic}:", inner.options.key_prefix);
        }
        (&self.stream, &self.dedup)
    }
}

impl Inner {
    /// The id `publish_raw` deduplicates `env` by: its id when the broker
    /// deduplicates, else nothing (it would not be sent).
    pub(super) fn dedup_id(&self, env: &Envelope) -> String {
        if self.options.dedup_window.is_some() {
            pull::id_text(env)
        } else {
            String::new()
        }
    }

    /// Publishes events, each `(topic, body, dedup id)`, in order, in one
    /// round trip: plain `XADD`s in a pipeline, or with deduplication one
    /// call of the publish script.
    pub(super) async fn publish_raw(
        &self,
        items: &[(&str, Bytes, String)],
    ) -> Result<(), BrokerError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        // Batches mostly go to one topic: its keys are made once per run of
        // it (arguments are copied into the command as they are added).
        let mut keys = RunKeys::default();
        let Some(window) = self.options.dedup_window else {
            let mut pipe = ::redis::pipe();
            for (topic, body, _) in items {
                let cmd = pipe.cmd("XADD").arg(keys.of(self, topic).0);
                if let Some(max) = self.options.max_len {
                    cmd.arg("MAXLEN").arg("~").arg(max);
                }
                cmd.arg("*").arg(FIELD).arg(body.as_ref()).ignore();
            }
            return pipe
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| unavailable("publish", e));
        };
        let mut call = ::redis::cmd("EVALSHA");
        call.arg(self.publish.get_hash()).arg(2 * items.len());
        for (topic, _, _) in items {
            let (stream, dedup) = keys.of(self, topic);
            call.arg(stream).arg(dedup);
        }
        call.arg(ms(window).max(1))
            .arg(self.options.max_len.unwrap_or(0));
        for (_, body, dedup) in items {
            call.arg(dedup).arg(body.as_ref());
        }
        match call.query_async::<Value>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) if is_noscript(&e) => {
                // A new or restarted server: load the script and run again.
                self.publish
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(|e| unavailable("script", e))?;
                call.query_async::<Value>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable("publish", e))
            }
            Err(e) => Err(unavailable("publish", e)),
        }
    }
}
